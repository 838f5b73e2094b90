/* rn_cli.c — the table of runnel subcommands and their dispatch. */
#include "rn_cli.h"

#include <stdio.h>
#include <string.h>

const rn_cli_command_t rn_cli_commands[] = {
    {"bench", "benchmark a Kafka-compatible broker (produce, consume, e2e)", rn_cli_bench},
    {"topic", "create, list, describe, alter, delete topics; add partitions", rn_cli_topic},
    {"produce", "send lines from stdin or a file to a topic", rn_cli_produce},
    {"consume", "print a topic's messages", rn_cli_consume},
    {"group", "list, describe, delete consumer groups; reset their offsets", rn_cli_group},
    {"cluster", "show the cluster's brokers and controller", rn_cli_cluster},
    {"config", "read and change topic and broker configs", rn_cli_config},
    {NULL, NULL, NULL},
};

int rn_cli_dispatch(int argc, char **argv) {
    for (const rn_cli_command_t *c = rn_cli_commands; c->name; c++)
        if (!strcmp(argv[0], c->name)) return c->main(argc - 1, argv + 1);
    return -1;
}

void rn_cli_print_commands(void) {
    for (const rn_cli_command_t *c = rn_cli_commands; c->name; c++) printf("  %-10s %s\n", c->name, c->summary);
}
