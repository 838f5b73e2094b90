/*
 * rn_cli_common.h — what every runnel client tool shares.
 *
 *   rn_cli_t       one tool invocation: its name and usage text, the common
 *                  options (-b, -X, --json, --timeout, -v) and what librdkafka
 *                  reported about connection failures.
 *   rn_cli_args_t  an option iterator: -x VALUE, -xVALUE, --long VALUE,
 *                  --long=VALUE, "--" ends options; positionals anywhere.
 *   errors         librdkafka's codes turned into sentences in the user's
 *                  terms ("topic orders does not exist", "cannot reach
 *                  127.0.0.1:9092: connection refused").
 *   rn_cli_json_t  a streaming JSON writer (always valid JSON: strings are
 *                  escaped, invalid UTF-8 becomes U+FFFD).
 *   rn_cli_table_t a column-aligned human table.
 *
 * Exit statuses: RN_CLI_OK (0), RN_CLI_FAILED (1), RN_CLI_USAGE (2). Every
 * message goes to stderr as "<prog>: <sentence>"; data goes to stdout.
 *
 * Fast failure: librdkafka retries an unreachable broker until a timeout. The
 * tools instead stop as soon as every bootstrap broker has failed once
 * (RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) and report the reason librdkafka
 * logged for the last failed connection.
 */
#ifndef RN_CLI_COMMON_H
#define RN_CLI_COMMON_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RN_CLI_OK 0
#define RN_CLI_FAILED 1
#define RN_CLI_USAGE 2

#define RN_CLI_BOOTSTRAP_DEFAULT "127.0.0.1:9092"
#define RN_CLI_TIMEOUT_MS_DEFAULT 10000
#define RN_CLI_PROPS_MAX 64

/* The common options, as they appear in every usage text. */
#define RN_CLI_COMMON_HELP                                                                  \
    "common options:\n"                                                                     \
    "  -b, --bootstrap HOST:PORT[,...]  brokers to contact (default " RN_CLI_BOOTSTRAP_DEFAULT \
    ",\n"                                                                                   \
    "                                   or $RUNNEL_BOOTSTRAP)\n"                                \
    "  -X, --property KEY=VALUE         set a librdkafka client property\n"                    \
    "      --timeout MS                 how long to wait for the cluster (default 10000)\n"    \
    "  -v, --verbose                    show librdkafka's log\n"                               \
    "  -h, --help                       show this help\n"

typedef struct {
    const char *prog;  /* "runnel topic create" */
    const char *usage; /* full help text; its first paragraph is the short usage */
    const char *bootstrap;
    bool json;
    bool verbose;
    int timeout_ms;
    const char *props[RN_CLI_PROPS_MAX]; /* -X key=value, applied last */
    int props_n;

    /* Written by librdkafka's threads (log callback), read by the tool. */
    pthread_mutex_t lock;
    char conn_reason[256]; /* "connection refused", from the last failed connect */
    bool all_brokers_down; /* set from the error callback (rd_kafka_poll) */
    bool ever_connected;
    bool consumer_queue; /* rd_kafka_poll_set_consumer() was called: rd_kafka_poll() is off limits */
} rn_cli_t;

void rn_cli_init(rn_cli_t *c, const char *prog, const char *usage);
void rn_cli_free(rn_cli_t *c);

/* Print "<prog>: <message>" to stderr; returns RN_CLI_FAILED. */
int rn_cli_fail(rn_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "<prog>: <message>", the short usage and a --help hint; returns RN_CLI_USAGE. */
int rn_cli_usage_error(rn_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "<prog>: warning: <message>". */
void rn_cli_warn(rn_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- options ---- */

typedef struct {
    rn_cli_t *cli;
    int argc;
    char **argv;
    int i;
    bool options_done; /* after "--" */
    /* The current token: either a positional or an option. */
    bool positional;
    const char *arg;        /* positional value, or the option as typed ("--from") */
    char opt_short;         /* 'b' for -b, 0 for a long option */
    const char *opt_long;   /* "bootstrap" for --bootstrap (not NUL-terminated if inline) */
    size_t opt_long_len;
    const char *inline_val; /* "x" in --opt=x or -ox */
    bool value_taken;
    int status; /* -1 while parsing; RN_CLI_OK after --help, RN_CLI_USAGE after an error */
} rn_cli_args_t;

void rn_cli_args_init(rn_cli_args_t *a, rn_cli_t *c, int argc, char **argv);
/* Advance to the next token; false when the arguments end, after --help or after a usage error. */
bool rn_cli_next(rn_cli_args_t *a);
/* Does the current option have this short or long name? */
bool rn_cli_is(rn_cli_args_t *a, char short_name, const char *long_name);
/* The current option's value (inline or the next argument); false (usage error reported) if missing. */
bool rn_cli_value(rn_cli_args_t *a, const char **out);
bool rn_cli_int(rn_cli_args_t *a, int64_t min, int64_t max, int64_t *out);
/* Handle -b, -X, --timeout, -v, --help, and --json if json_ok; true if it was one of them. */
bool rn_cli_common(rn_cli_args_t *a, bool json_ok);
/* Report the current token as unknown (usage error). */
void rn_cli_unknown(rn_cli_args_t *a);
/* A command whose only options are the common ones (with --json): parses them. -1 to go on;
 * else the exit status, with c freed (--help, a usage error). */
int rn_cli_common_only(rn_cli_t *c, int argc, char **argv);
/* Parse a whole decimal integer in [min, max]. */
bool rn_cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* Run a verb table: `runnel <group> <verb> ...`, with --help listing the verbs. */
typedef struct {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
} rn_cli_verb_t;
int rn_cli_verbs(const char *prog, const char *about, const rn_cli_verb_t *verbs, int argc, char **argv);

/* ---- clients ---- */

/* A client of the given type with the common options applied on top of conf
 * (consumed, even on failure). NULL after printing why. */
rd_kafka_t *rn_cli_client(rn_cli_t *c, rd_kafka_type_t type, rd_kafka_conf_t *conf);
/* Set a property on conf; false after printing why (a usage error: status 2 in *status). */
bool rn_cli_conf_set(rn_cli_t *c, rd_kafka_conf_t *conf, const char *key, const char *value);
/* Metadata for all topics, failing fast when the cluster is unreachable. Returns an exit status. */
int rn_cli_metadata(rn_cli_t *c, rd_kafka_t *rk, const struct rd_kafka_metadata **md);
const struct rd_kafka_metadata_topic *rn_cli_md_topic(const struct rd_kafka_metadata *md, const char *name);
/* Wait for an admin result on q (up to --timeout plus a margin), serving rk's
 * callbacks meanwhile. NULL after printing why (timeout, unreachable). */
rd_kafka_event_t *rn_cli_admin_wait(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_queue_t *q, const char *what);
rd_kafka_AdminOptions_t *rn_cli_admin_options(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_admin_op_t op);
/* Has librdkafka given up on every bootstrap broker? (serves rk's error callback) */
bool rn_cli_unreachable(rn_cli_t *c, rd_kafka_t *rk);
/* "cannot reach 127.0.0.1:9092: connection refused" */
int rn_cli_fail_unreachable(rn_cli_t *c);

/* ---- errors ---- */

/* The subject of an error, for wording: kind is "topic", "group", "broker"... */
typedef struct {
    const char *kind;
    const char *name;
} rn_cli_subject_t;

/* Turn an error into a sentence about subject; broker_msg (may be NULL) is
 * what the broker said. */
void rn_cli_err_words(rn_cli_t *c, rd_kafka_resp_err_t err, const char *broker_msg, rn_cli_subject_t subject, char *out,
                      size_t out_len);
/* rn_cli_err_words, printed; returns RN_CLI_FAILED. */
int rn_cli_fail_err(rn_cli_t *c, rd_kafka_resp_err_t err, const char *broker_msg, rn_cli_subject_t subject);

/* ---- output ---- */

#define RN_CLI_JSON_DEPTH_MAX 32

typedef struct {
    FILE *out;    /* where the document goes when it is complete */
    FILE *f;      /* an in-memory stream until then, so a failure prints no half document */
    char *buf;
    size_t len;
    int depth;
    bool need_comma[RN_CLI_JSON_DEPTH_MAX];
    bool after_key;
} rn_cli_json_t;

void rn_cli_json_init(rn_cli_json_t *j, FILE *f);
void rn_cli_json_obj(rn_cli_json_t *j);
void rn_cli_json_obj_end(rn_cli_json_t *j);
void rn_cli_json_arr(rn_cli_json_t *j);
void rn_cli_json_arr_end(rn_cli_json_t *j);
void rn_cli_json_key(rn_cli_json_t *j, const char *key);
void rn_cli_json_str(rn_cli_json_t *j, const char *s); /* NULL writes null */
void rn_cli_json_strn(rn_cli_json_t *j, const void *p, size_t n);
void rn_cli_json_int(rn_cli_json_t *j, int64_t v);
void rn_cli_json_bool(rn_cli_json_t *j, bool v);
void rn_cli_json_null(rn_cli_json_t *j);
/* Ends the document with a newline and writes it out. */
void rn_cli_json_end(rn_cli_json_t *j);
/* Drops an unfinished document (after a failure). Harmless after rn_cli_json_end. */
void rn_cli_json_discard(rn_cli_json_t *j);

bool rn_cli_utf8_valid(const void *p, size_t n);
/* Standard base64 of n bytes into a malloc'd string. */
char *rn_cli_base64(const void *p, size_t n);

typedef struct {
    int ncols;
    char **cells; /* row-major, the header first */
    size_t n, cap;
} rn_cli_table_t;

/* ncols header names follow. */
void rn_cli_table_init(rn_cli_table_t *t, int ncols, ...);
/* Append one cell; rows wrap every ncols cells. Control characters print as '?'. */
void rn_cli_table_add(rn_cli_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rn_cli_table_print(rn_cli_table_t *t, FILE *f);
void rn_cli_table_free(rn_cli_table_t *t);

/* The friendly name of a config source for tables ("topic", "default"...). */
const char *rn_cli_config_source_word(rd_kafka_ConfigSource_t s);

/* ---- shared between tools ---- */

/* Change some configs of one resource, keeping its other dynamic configs
 * (AlterConfigs replaces the whole set, so the current dynamic set is read
 * first and merged). set: "key=value" strings; del: keys to return to their
 * default. Prints what changed; returns an exit status. (rn_cli_config.c) */
int rn_cli_config_alter(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                        const char *const *set, int set_n, const char *const *del, int del_n, bool dry_run);

/* DescribeConfigs for n resources of one type; the result event (destroy it)
 * or NULL after printing why. (rn_cli_config.c) */
rd_kafka_event_t *rn_cli_describe_configs(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_ResourceType_t type,
                                          const char *const *names, int n);
/* Print one resource's configs as a table, or as a JSON array into j when j is non-NULL. */
void rn_cli_print_configs(const rd_kafka_ConfigResource_t *res, rn_cli_json_t *j, const char *const *keys, int keys_n);
/* The id of the broker metadata came from (the one to ask about "this broker"). */
int32_t rn_cli_some_broker_id(const struct rd_kafka_metadata *md);

/* Read a timestamp: milliseconds since the epoch, or an ISO-8601 UTC time
 * (2024-05-01T12:00:00Z, 2024-05-01T12:00:00.250Z, 2024-05-01). */
bool rn_cli_parse_time_ms(const char *s, int64_t *out_ms);
/* Interpret \t \n \r \\ \0 in s, in place; returns the new length. */
size_t rn_cli_unescape(char *s);

#endif
