/*
 * rn_cli.h — the runnel command-line tools (everything but `runnel broker`).
 *
 * Each subcommand is a function taking the arguments after its name and
 * returning the exit status: 0 ok, 1 failed, 2 usage. They speak the Kafka
 * protocol through librdkafka, so they work against any Kafka-compatible
 * cluster, Runnel or not.
 */
#ifndef RN_CLI_H
#define RN_CLI_H

typedef struct {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
} rn_cli_command_t;

extern const rn_cli_command_t rn_cli_commands[];

/* Dispatch `runnel <command> ...`; returns -1 if the command is unknown. */
int rn_cli_dispatch(int argc, char **argv);
void rn_cli_print_commands(void);

/* Subcommands (one file each under src/cli/). */
int rn_cli_bench(int argc, char **argv);
int rn_cli_topic(int argc, char **argv);   /* rn_cli_topic.c */
int rn_cli_produce(int argc, char **argv); /* rn_cli_produce.c */
int rn_cli_consume(int argc, char **argv); /* rn_cli_consume.c */
int rn_cli_group(int argc, char **argv);   /* rn_cli_group.c */
int rn_cli_cluster(int argc, char **argv); /* rn_cli_cluster.c */
int rn_cli_config(int argc, char **argv);  /* rn_cli_config.c */

#endif
