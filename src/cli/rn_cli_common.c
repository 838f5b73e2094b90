/*
 * rn_cli_common.c — options, clients, error wording and output shared by the
 * runnel client tools (see rn_cli_common.h).
 */
#include "rn_cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- messages ---- */

void rn_cli_init(rn_cli_t *c, const char *prog, const char *usage) {
    memset(c, 0, sizeof(*c));
    c->prog = prog;
    c->usage = usage;
    const char *env = getenv("RUNNEL_BOOTSTRAP");
    c->bootstrap = env && env[0] ? env : RN_CLI_BOOTSTRAP_DEFAULT;
    c->timeout_ms = RN_CLI_TIMEOUT_MS_DEFAULT;
    pthread_mutex_init(&c->lock, NULL);
}

void rn_cli_free(rn_cli_t *c) {
    pthread_mutex_destroy(&c->lock);
}

static void vmsg(rn_cli_t *c, const char *prefix, const char *fmt, va_list ap) {
    fflush(stdout);
    fprintf(stderr, "%s: %s", c->prog, prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int rn_cli_fail(rn_cli_t *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(c, "", fmt, ap);
    va_end(ap);
    return RN_CLI_FAILED;
}

void rn_cli_warn(rn_cli_t *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(c, "warning: ", fmt, ap);
    va_end(ap);
}

/* The usage text's first paragraph (up to the first blank line). */
static void print_short_usage(rn_cli_t *c, FILE *f) {
    const char *u = c->usage;
    const char *end = strstr(u, "\n\n");
    fprintf(f, "%.*s\n", (int)(end ? (size_t)(end - u) : strlen(u)), u);
    fprintf(f, "Run '%s --help' for the options.\n", c->prog);
}

int rn_cli_usage_error(rn_cli_t *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(c, "", fmt, ap);
    va_end(ap);
    print_short_usage(c, stderr);
    return RN_CLI_USAGE;
}

/* ---- options ---- */

void rn_cli_args_init(rn_cli_args_t *a, rn_cli_t *c, int argc, char **argv) {
    memset(a, 0, sizeof(*a));
    a->cli = c;
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
    a->status = -1;
}

bool rn_cli_next(rn_cli_args_t *a) {
    if (a->status >= 0) return false;
    if (a->i > 0 && !a->positional && a->inline_val && !a->value_taken) {
        /* --flag=value for an option that takes none. */
        a->status = rn_cli_usage_error(a->cli, "option '%s' takes no value", a->arg);
        return false;
    }
    if (a->i >= a->argc) return false;
    const char *t = a->argv[a->i++];
    a->positional = false;
    a->arg = t;
    a->opt_short = 0;
    a->opt_long = NULL;
    a->opt_long_len = 0;
    a->inline_val = NULL;
    a->value_taken = false;
    if (a->options_done || t[0] != '-' || t[1] == '\0') {
        a->positional = true;
        return true;
    }
    if (t[1] == '-') {
        if (t[2] == '\0') {
            a->options_done = true;
            return rn_cli_next(a);
        }
        a->opt_long = t + 2;
        const char *eq = strchr(t + 2, '=');
        a->opt_long_len = eq ? (size_t)(eq - (t + 2)) : strlen(t + 2);
        if (eq) a->inline_val = eq + 1;
        return true;
    }
    a->opt_short = t[1];
    if (t[2]) a->inline_val = t + 2;
    return true;
}

bool rn_cli_is(rn_cli_args_t *a, char short_name, const char *long_name) {
    if (a->positional) return false;
    if (a->opt_short) return short_name && a->opt_short == short_name;
    return long_name && strlen(long_name) == a->opt_long_len && !strncmp(a->opt_long, long_name, a->opt_long_len);
}

bool rn_cli_value(rn_cli_args_t *a, const char **out) {
    a->value_taken = true;
    if (a->inline_val) {
        *out = a->inline_val;
        return true;
    }
    if (a->i >= a->argc) {
        a->status = rn_cli_usage_error(a->cli, "option '%s' needs a value", a->arg);
        return false;
    }
    *out = a->argv[a->i++];
    return true;
}

bool rn_cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

bool rn_cli_int(rn_cli_args_t *a, int64_t min, int64_t max, int64_t *out) {
    const char *v;
    if (!rn_cli_value(a, &v)) return false;
    if (!rn_cli_parse_int(v, min, max, out)) {
        a->status = rn_cli_usage_error(a->cli, "option '%s' needs a whole number from %lld to %lld, got '%s'", a->arg,
                                       (long long)min, (long long)max, v);
        return false;
    }
    return true;
}

bool rn_cli_common(rn_cli_args_t *a, bool json_ok) {
    rn_cli_t *c = a->cli;
    const char *v;
    if (rn_cli_is(a, 'h', "help")) {
        fputs(c->usage, stdout);
        a->status = RN_CLI_OK;
        return true;
    }
    if (rn_cli_is(a, 'b', "bootstrap") || rn_cli_is(a, 0, "bootstrap-server") || rn_cli_is(a, 0, "brokers")) {
        if (rn_cli_value(a, &v)) {
            if (!*v) a->status = rn_cli_usage_error(c, "option '%s' needs HOST:PORT", a->arg);
            c->bootstrap = v;
        }
        return true;
    }
    if (rn_cli_is(a, 'X', "property")) {
        if (!rn_cli_value(a, &v)) return true;
        const char *eq = strchr(v, '=');
        if (!eq || eq == v) {
            a->status = rn_cli_usage_error(c, "option '%s' needs KEY=VALUE, got '%s'", a->arg, v);
            return true;
        }
        if (c->props_n >= RN_CLI_PROPS_MAX) {
            a->status = rn_cli_usage_error(c, "at most %d -X properties", RN_CLI_PROPS_MAX);
            return true;
        }
        /* Check the name and value now, so a typo is a usage error. */
        char key[256], err[512];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - v), v);
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK)
            a->status = rn_cli_usage_error(c, "invalid client property '%s': %s", v, err);
        rd_kafka_conf_destroy(conf);
        c->props[c->props_n++] = v;
        return true;
    }
    if (rn_cli_is(a, 0, "timeout")) {
        int64_t ms;
        if (rn_cli_int(a, 1, INT_MAX, &ms)) c->timeout_ms = (int)ms;
        return true;
    }
    if (rn_cli_is(a, 'v', "verbose")) {
        c->verbose = true;
        return true;
    }
    if (json_ok && rn_cli_is(a, 0, "json")) {
        c->json = true;
        return true;
    }
    return false;
}

void rn_cli_unknown(rn_cli_args_t *a) {
    if (a->positional)
        a->status = rn_cli_usage_error(a->cli, "unexpected argument '%s'", a->arg);
    else
        a->status = rn_cli_usage_error(a->cli, "unknown option '%s'", a->arg);
}

int rn_cli_common_only(rn_cli_t *c, int argc, char **argv) {
    rn_cli_args_t a;
    rn_cli_args_init(&a, c, argc, argv);
    while (rn_cli_next(&a))
        if (!rn_cli_common(&a, true)) rn_cli_unknown(&a);
    if (a.status >= 0) rn_cli_free(c);
    return a.status;
}

int rn_cli_verbs(const char *prog, const char *about, const rn_cli_verb_t *verbs, int argc, char **argv) {
    FILE *f = stdout;
    int rc = RN_CLI_OK;
    if (argc < 1) {
        f = stderr;
        rc = RN_CLI_USAGE;
        fprintf(stderr, "%s: which one? (a subcommand is needed)\n", prog);
    } else if (strcmp(argv[0], "--help") && strcmp(argv[0], "-h") && strcmp(argv[0], "help")) {
        for (const rn_cli_verb_t *v = verbs; v->name; v++)
            if (!strcmp(argv[0], v->name)) return v->main(argc - 1, argv + 1);
        f = stderr;
        rc = RN_CLI_USAGE;
        fprintf(stderr, "%s: unknown subcommand '%s'\n", prog, argv[0]);
    }
    fprintf(f, "usage: %s <subcommand> [options]\n\n%s\n\nsubcommands:\n", prog, about);
    for (const rn_cli_verb_t *v = verbs; v->name; v++) fprintf(f, "  %-16s %s\n", v->name, v->summary);
    fprintf(f, "\nRun '%s <subcommand> --help' for its options.\n", prog);
    return rc;
}

/* ---- clients ---- */

/* "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 0ms in state CONNECT)"
 * -> "connection refused". */
static void connection_reason(const char *buf, char *out, size_t out_len) {
    const char *r = strstr(buf, ": ");
    r = r ? r + 2 : buf;
    const char *p;
    char tmp[256];
    if ((p = strstr(r, "Failed to resolve")) && (p = strstr(p, "': "))) {
        snprintf(tmp, sizeof(tmp), "cannot resolve the host name (%s", p + 3);
    } else if ((p = strstr(r, "Connect to ")) && (p = strstr(p, " failed: "))) {
        snprintf(tmp, sizeof(tmp), "%s", p + 9);
    } else {
        snprintf(tmp, sizeof(tmp), "%s", r);
    }
    char *after = strstr(tmp, " (after ");
    if (after) *after = '\0';
    if (strstr(tmp, "cannot resolve") == tmp) strncat(tmp, ")", sizeof(tmp) - strlen(tmp) - 1);
    if (isupper((unsigned char)tmp[0]) && !isupper((unsigned char)tmp[1])) tmp[0] = (char)tolower((unsigned char)tmp[0]);
    snprintf(out, out_len, "%s", tmp);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    rn_cli_t *c = rd_kafka_opaque(rk);
    if (c->verbose) fprintf(stderr, "%s: librdkafka %s: %s\n", c->prog, fac, buf);
    if (!strcmp(fac, "FAIL") && (strstr(buf, "Connect to ") || strstr(buf, "Failed to resolve"))) {
        pthread_mutex_lock(&c->lock);
        connection_reason(buf, c->conn_reason, sizeof(c->conn_reason));
        pthread_mutex_unlock(&c->lock);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    rn_cli_t *c = opaque;
    pthread_mutex_lock(&c->lock);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) c->all_brokers_down = true;
    if ((err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE) && !c->conn_reason[0] &&
        (strstr(reason, "Connect to ") || strstr(reason, "Failed to resolve")))
        connection_reason(reason, c->conn_reason, sizeof(c->conn_reason));
    pthread_mutex_unlock(&c->lock);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof(why));
        rn_cli_warn(c, "the client hit a fatal error: %s", why);
    }
}

bool rn_cli_conf_set(rn_cli_t *c, rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) == RD_KAFKA_CONF_OK) return true;
    rn_cli_fail(c, "invalid client property %s=%s: %s", key, value, err);
    return false;
}

rd_kafka_t *rn_cli_client(rn_cli_t *c, rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    if (!conf) conf = rd_kafka_conf_new();
    bool ok = rn_cli_conf_set(c, conf, "bootstrap.servers", c->bootstrap) &&
              rn_cli_conf_set(c, conf, "client.id", "runnel-cli") &&
              rn_cli_conf_set(c, conf, "log.connection.close", "false");
    for (int i = 0; ok && i < c->props_n; i++) {
        const char *eq = strchr(c->props[i], '=');
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - c->props[i]), c->props[i]);
        ok = rn_cli_conf_set(c, conf, key, eq + 1);
    }
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        rn_cli_fail(c, "cannot set up the Kafka client: %s", err);
    }
    return rk;
}

bool rn_cli_unreachable(rn_cli_t *c, rd_kafka_t *rk) {
    if (!c->consumer_queue) rd_kafka_poll(rk, 0); /* serves error_cb */
    pthread_mutex_lock(&c->lock);
    bool down = c->all_brokers_down;
    pthread_mutex_unlock(&c->lock);
    return down;
}

int rn_cli_fail_unreachable(rn_cli_t *c) {
    pthread_mutex_lock(&c->lock);
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", c->conn_reason[0] ? c->conn_reason : "no broker answered");
    pthread_mutex_unlock(&c->lock);
    return rn_cli_fail(c, "cannot reach %s: %s", c->bootstrap, reason);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rn_cli_metadata(rn_cli_t *c, rd_kafka_t *rk, const struct rd_kafka_metadata **md) {
    int64_t deadline = now_ms() + c->timeout_ms;
    rd_kafka_resp_err_t err;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        err = rd_kafka_metadata(rk, 1, NULL, md, (int)(left < 500 ? left : 500));
        if (!err) {
            c->ever_connected = true;
            return RN_CLI_OK;
        }
        if (rn_cli_unreachable(c, rk)) return rn_cli_fail_unreachable(c);
        if (err != RD_KAFKA_RESP_ERR__TRANSPORT && err != RD_KAFKA_RESP_ERR__TIMED_OUT)
            return rn_cli_fail_err(c, err, NULL, (rn_cli_subject_t){"cluster", c->bootstrap});
    }
    pthread_mutex_lock(&c->lock);
    bool failed_connect = c->conn_reason[0];
    pthread_mutex_unlock(&c->lock);
    if (failed_connect) return rn_cli_fail_unreachable(c);
    return rn_cli_fail(c, "no answer from %s within %d ms (raise --timeout?)", c->bootstrap, c->timeout_ms);
}

const struct rd_kafka_metadata_topic *rn_cli_md_topic(const struct rd_kafka_metadata *md, const char *name) {
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, name)) return &md->topics[i];
    return NULL;
}

rd_kafka_AdminOptions_t *rn_cli_admin_options(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_admin_op_t op) {
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
    char err[256];
    rd_kafka_AdminOptions_set_request_timeout(o, c->timeout_ms, err, sizeof(err));
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS)
        rd_kafka_AdminOptions_set_operation_timeout(o, c->timeout_ms, err, sizeof(err));
    return o;
}

rd_kafka_event_t *rn_cli_admin_wait(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_queue_t *q, const char *what) {
    int64_t deadline = now_ms() + c->timeout_ms + 5000;
    while (now_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (ev) return ev;
        if (rn_cli_unreachable(c, rk)) {
            rn_cli_fail_unreachable(c);
            return NULL;
        }
    }
    rn_cli_fail(c, "no answer to %s from %s within %d ms (raise --timeout?)", what, c->bootstrap, c->timeout_ms);
    return NULL;
}

/* ---- errors ---- */

void rn_cli_err_words(rn_cli_t *c, rd_kafka_resp_err_t err, const char *broker_msg, rn_cli_subject_t s, char *out,
                      size_t out_len) {
    const char *kind = s.kind ? s.kind : "resource";
    const char *name = s.name ? s.name : "";
    const char *bm = broker_msg && broker_msg[0] ? broker_msg : NULL;
    /* librdkafka repeats its own err2str as the message when the broker sent none. */
    if (bm && !strcmp(bm, rd_kafka_err2str(err))) bm = NULL;
    char detail[600] = "";
    if (bm) snprintf(detail, sizeof(detail), ": %s", bm);
    switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        if (!strcmp(kind, "topic"))
            snprintf(out, out_len, "topic %s does not exist", name);
        else
            snprintf(out, out_len, "%s %s: unknown topic or partition%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        snprintf(out, out_len, "topic %s does not exist", name);
        return;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        snprintf(out, out_len, "%s %s: no such partition%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        snprintf(out, out_len, "topic %s already exists", name);
        return;
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
        snprintf(out, out_len, "invalid config for %s %s%s", kind, name, bm ? detail : ": the broker refused a value");
        return;
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
        snprintf(out, out_len, "invalid partition count for %s %s%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
        snprintf(out, out_len, "invalid replication factor for %s %s%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
        snprintf(out, out_len, "invalid replica assignment for %s %s%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        snprintf(out, out_len, "invalid topic name '%s'%s", name, detail);
        return;
    case RD_KAFKA_RESP_ERR_TOPIC_DELETION_DISABLED:
        snprintf(out, out_len, "the cluster does not allow deleting topics (delete.topic.enable=false)");
        return;
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        snprintf(out, out_len, "the cluster's policy refused the change to %s %s%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
        snprintf(out, out_len, "group %s does not exist", name);
        return;
    case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
        snprintf(out, out_len, "group %s still has active members; stop its consumers first", name);
        return;
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
        snprintf(out, out_len, "invalid group name '%s'", name);
        return;
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
        if (!strcmp(kind, "group")) {
            snprintf(out, out_len, "group %s is active (members are consuming); stop its consumers first", name);
            return;
        }
        break;
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
        snprintf(out, out_len, "the group coordinator for %s %s is not available yet; try again", kind, name);
        return;
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
        snprintf(out, out_len, "the broker at %s does not support this operation%s", c->bootstrap, detail);
        return;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        snprintf(out, out_len, "message too large for %s %s%s", kind, name,
                 bm ? detail
                    : " (limits: the client's message.max.bytes, -X message.max.bytes=N; the topic's "
                      "max.message.bytes)");
        return;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        snprintf(out, out_len, "not authorized to do this to %s %s%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
        snprintf(out, out_len, "offset out of range for %s %s%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        snprintf(out, out_len, "not enough in-sync replicas for %s %s (min.insync.replicas)%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
        snprintf(out, out_len, "the broker's storage failed for %s %s%s", kind, name, detail);
        return;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE: {
        pthread_mutex_lock(&c->lock);
        snprintf(out, out_len, "cannot reach %s: %s", c->bootstrap, c->conn_reason[0] ? c->conn_reason : "connection lost");
        pthread_mutex_unlock(&c->lock);
        return;
    }
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        snprintf(out, out_len, "timed out after %d ms working on %s %s (raise --timeout?)", c->timeout_ms, kind, name);
        return;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        snprintf(out, out_len, "messages to %s %s were not acknowledged in time (message.timeout.ms)", kind, name);
        return;
    default:
        break;
    }
    snprintf(out, out_len, "%s %s: %s (%s)", kind, name, bm ? bm : rd_kafka_err2str(err), rd_kafka_err2name(err));
}

int rn_cli_fail_err(rn_cli_t *c, rd_kafka_resp_err_t err, const char *broker_msg, rn_cli_subject_t subject) {
    char words[1024];
    rn_cli_err_words(c, err, broker_msg, subject, words, sizeof(words));
    return rn_cli_fail(c, "%s", words);
}

/* ---- JSON ---- */

void rn_cli_json_init(rn_cli_json_t *j, FILE *f) {
    memset(j, 0, sizeof(*j));
    j->out = f;
    j->f = open_memstream(&j->buf, &j->len);
    if (!j->f) j->f = f; /* no memory: write straight through */
}

static void json_pre_value(rn_cli_json_t *j) {
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->need_comma[j->depth]) fputc(',', j->f);
    j->need_comma[j->depth] = true;
}

static void json_open(rn_cli_json_t *j, char ch) {
    json_pre_value(j);
    fputc(ch, j->f);
    if (j->depth + 1 < RN_CLI_JSON_DEPTH_MAX) j->depth++;
    j->need_comma[j->depth] = false;
}

static void json_close(rn_cli_json_t *j, char ch) {
    fputc(ch, j->f);
    if (j->depth > 0) j->depth--;
}

void rn_cli_json_obj(rn_cli_json_t *j) {
    json_open(j, '{');
}
void rn_cli_json_obj_end(rn_cli_json_t *j) {
    json_close(j, '}');
}
void rn_cli_json_arr(rn_cli_json_t *j) {
    json_open(j, '[');
}
void rn_cli_json_arr_end(rn_cli_json_t *j) {
    json_close(j, ']');
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned char b = p[0];
    if (b < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool rn_cli_utf8_valid(const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq(s + i, n - i);
        if (!l) return false;
        i += l;
    }
    return true;
}

void rn_cli_json_strn(rn_cli_json_t *j, const void *p, size_t n) {
    json_pre_value(j);
    const unsigned char *s = p;
    FILE *f = j->f;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
            i++;
        } else if (ch == '\n') {
            fputs("\\n", f);
            i++;
        } else if (ch == '\t') {
            fputs("\\t", f);
            i++;
        } else if (ch == '\r') {
            fputs("\\r", f);
            i++;
        } else if (ch < 0x20 || ch == 0x7F) {
            fprintf(f, "\\u%04x", ch);
            i++;
        } else if (ch < 0x80) {
            fputc(ch, f);
            i++;
        } else {
            size_t l = utf8_seq(s + i, n - i);
            if (l) {
                fwrite(s + i, 1, l, f);
                i += l;
            } else {
                fputs("\\ufffd", f);
                i++;
            }
        }
    }
    fputc('"', f);
}

void rn_cli_json_key(rn_cli_json_t *j, const char *key) {
    rn_cli_json_strn(j, key, strlen(key));
    fputc(':', j->f);
    j->after_key = true;
}

void rn_cli_json_str(rn_cli_json_t *j, const char *s) {
    if (!s)
        rn_cli_json_null(j);
    else
        rn_cli_json_strn(j, s, strlen(s));
}

void rn_cli_json_int(rn_cli_json_t *j, int64_t v) {
    json_pre_value(j);
    fprintf(j->f, "%lld", (long long)v);
}

void rn_cli_json_bool(rn_cli_json_t *j, bool v) {
    json_pre_value(j);
    fputs(v ? "true" : "false", j->f);
}

void rn_cli_json_null(rn_cli_json_t *j) {
    json_pre_value(j);
    fputs("null", j->f);
}

void rn_cli_json_end(rn_cli_json_t *j) {
    fputc('\n', j->f);
    if (j->f != j->out) {
        fclose(j->f);
        fwrite(j->buf, 1, j->len, j->out);
        free(j->buf);
        j->buf = NULL;
        j->f = j->out;
    }
}

void rn_cli_json_discard(rn_cli_json_t *j) {
    if (j->f && j->f != j->out) {
        fclose(j->f);
        free(j->buf);
        j->buf = NULL;
    }
    j->f = j->out;
}

char *rn_cli_base64(const void *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n) v |= s[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* ---- tables ---- */

static void table_push(rn_cli_table_t *t, char *cell) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **v = realloc(t->cells, cap * sizeof(*v));
        if (!v) {
            free(cell);
            return;
        }
        t->cells = v;
        t->cap = cap;
    }
    for (char *p = cell; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) *p = '?';
    t->cells[t->n++] = cell;
}

void rn_cli_table_init(rn_cli_table_t *t, int ncols, ...) {
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    va_list ap;
    va_start(ap, ncols);
    for (int i = 0; i < ncols; i++) {
        char *s = strdup(va_arg(ap, const char *));
        if (s) table_push(t, s);
    }
    va_end(ap);
}

void rn_cli_table_add(rn_cli_table_t *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    if (!s) s = strdup("?");
    if (s) table_push(t, s);
}

/* Display width: code points, not bytes. */
static size_t cell_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

void rn_cli_table_print(rn_cli_table_t *t, FILE *f) {
    size_t nc = (size_t)t->ncols;
    size_t *w = calloc(nc, sizeof(*w));
    if (!w) return;
    for (size_t i = 0; i < t->n; i++) {
        size_t cw = cell_width(t->cells[i]);
        if (cw > w[i % nc]) w[i % nc] = cw;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t col = i % nc;
        bool last = col == nc - 1 || i == t->n - 1;
        fputs(t->cells[i], f);
        if (last) {
            fputc('\n', f);
        } else {
            for (size_t k = cell_width(t->cells[i]); k < w[col] + 2; k++) fputc(' ', f);
        }
    }
    free(w);
}

void rn_cli_table_free(rn_cli_table_t *t) {
    for (size_t i = 0; i < t->n; i++) free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

const char *rn_cli_config_source_word(rd_kafka_ConfigSource_t s) {
    switch (s) {
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG: return "topic";
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG: return "broker (dynamic)";
    case RD_KAFKA_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: return "cluster default (dynamic)";
    case RD_KAFKA_CONFIG_SOURCE_STATIC_BROKER_CONFIG: return "broker config file";
    case RD_KAFKA_CONFIG_SOURCE_DEFAULT_CONFIG: return "default";
    default: return "unknown";
    }
}

/* ---- small parsers ---- */

bool rn_cli_parse_time_ms(const char *s, int64_t *out_ms) {
    if (rn_cli_parse_int(s, 0, INT64_MAX / 2, out_ms)) return true;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3) return false;
    const char *p = s + n;
    if (*p == 'T' || *p == ' ') {
        int k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &k) != 2) return false;
        p += 1 + k;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &k) != 1) return false;
            p += 1 + k;
            if (*p == '.') {
                int digits = 0;
                p++;
                while (isdigit((unsigned char)*p)) {
                    if (digits < 3) ms = ms * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (!digits) return false;
                for (; digits < 3; digits++) ms *= 10;
            }
        }
    }
    if (*p == 'Z') p++;
    if (*p) return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t < 0) return false;
    *out_ms = (int64_t)t * 1000 + ms;
    return true;
}

size_t rn_cli_unescape(char *s) {
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            char e = s[++i];
            s[o++] = e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == '0' ? '\0' : e;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}
