/*
 * rn_cli_consume.c — `runnel consume TOPIC`: print a topic's messages.
 *
 * Without --group the tool assigns itself the partitions (all, or those named
 * with --partition) at the --from position and commits nothing. With --group
 * it joins the group, starts where the group's committed offsets say (--from
 * beginning|end only decides where a partition without one starts) and
 * commits what it printed: offsets are stored after each message is written,
 * and committed in the background and on exit, so --count N moves the group
 * exactly N messages.
 *
 * --exit-at-end stops once every assigned partition has reported its end
 * (RD_KAFKA_RESP_ERR__PARTITION_EOF) with no message after it.
 *
 * Output: --format, like kcat's -f (see USAGE), default "%v\n", so producing
 * a file with `runnel produce` and consuming it prints the same bytes. --json
 * prints one JSON object per message per line.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_cli.h"
#include "rn_cli_common.h"

#define RN_CLI_PARTITIONS_MAX 1024

static const char USAGE[] =
    "usage: runnel consume TOPIC [options]\n"
    "\n"
    "Print TOPIC's messages, by default each value followed by a newline.\n"
    "\n"
    "options:\n"
    "  -o, --from WHERE                 beginning (default), end, OFFSET, -N (N before the end)\n"
    "                                   or @TIMESTAMP (ms since the epoch, or 2024-05-01T12:00:00Z)\n"
    "  -g, --group GROUP                consume as a member of GROUP and commit offsets; the group's\n"
    "                                   committed offsets come first, --from beginning|end only\n"
    "                                   applies where there is none\n"
    "  -c, --count N                    exit after N messages\n"
    "  -e, --exit-at-end                exit when every partition has been read to its end\n"
    "  -p, --partition N                only partition N (repeatable; not with --group)\n"
    "      --isolation LEVEL            read_committed (default) or read_uncommitted\n"
    "  -f, --format FMT                 how to print each message (default '%v\\n'):\n"
    "                                     %v value (also %s)   %k key        %h headers k=v,k=v\n"
    "                                     %t topic             %p partition  %o offset\n"
    "                                     %T timestamp (ms)    %V / %K value / key length (-1: null)\n"
    "                                     %% a percent sign    \\n \\t \\r \\\\ escapes\n"
    "      --json                       one JSON object per line: {topic, partition, offset,\n"
    "                                   timestamp, key, value, headers}; a key or value that is not\n"
    "                                   UTF-8 is given as key_base64 / value_base64 instead\n" RN_CLI_COMMON_HELP;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
    stop_signal = sig;
}

typedef enum { FROM_BEGINNING, FROM_END, FROM_OFFSET, FROM_TAIL, FROM_TIME } from_kind_t;

typedef struct {
    bool assigned;
    bool eof;
} part_state_t;

typedef struct {
    rn_cli_t *cli;
    const char *topic;
    part_state_t *parts;
    int nparts;
} cons_state_t;

static cons_state_t *g_state; /* for the rebalance callback, whose opaque is the rn_cli_t */

static part_state_t *part(cons_state_t *s, int32_t id) {
    if (id < 0) return NULL;
    if (id >= s->nparts) {
        int n = id + 1;
        part_state_t *v = realloc(s->parts, (size_t)n * sizeof(*v));
        if (!v) return NULL;
        memset(v + s->nparts, 0, (size_t)(n - s->nparts) * sizeof(*v));
        s->parts = v;
        s->nparts = n;
    }
    return &s->parts[id];
}

static void mark_assigned(cons_state_t *s, const rd_kafka_topic_partition_list_t *l, bool assigned) {
    for (int i = 0; l && i < l->cnt; i++) {
        part_state_t *p = part(s, l->elems[i].partition);
        if (p) {
            p->assigned = assigned;
            p->eof = false;
        }
    }
}

static bool all_at_end(const cons_state_t *s) {
    int assigned = 0;
    for (int i = 0; i < s->nparts; i++) {
        if (!s->parts[i].assigned) continue;
        assigned++;
        if (!s->parts[i].eof) return false;
    }
    return assigned > 0;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    cons_state_t *s = g_state;
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) rd_kafka_error_destroy(e);
        } else {
            for (int i = 0; i < s->nparts; i++) s->parts[i].assigned = false;
            rd_kafka_assign(rk, parts);
        }
        mark_assigned(s, parts, true);
    } else {
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e) rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        mark_assigned(s, parts, false);
    }
}

/* ---- output ---- */

static void put_headers(FILE *out, const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) || !h) return;
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &val, &size); i++) {
        if (i) fputc(',', out);
        fputs(name, out);
        fputc('=', out);
        if (val) fwrite(val, 1, size, out);
    }
}

static void print_formatted(FILE *out, const char *fmt, const rd_kafka_message_t *m, const char *topic) {
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            fputc(*p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p == '0' ? '\0' : *p, out);
            continue;
        }
        if (*p != '%' || !p[1]) {
            fputc(*p, out);
            continue;
        }
        rd_kafka_timestamp_type_t tstype;
        switch (*++p) {
        case 'v':
        case 's':
            if (m->payload) fwrite(m->payload, 1, m->len, out);
            break;
        case 'k':
            if (m->key) fwrite(m->key, 1, m->key_len, out);
            break;
        case 'V':
        case 'S':
            fprintf(out, "%lld", m->payload ? (long long)m->len : -1LL);
            break;
        case 'K':
            fprintf(out, "%lld", m->key ? (long long)m->key_len : -1LL);
            break;
        case 't':
            fputs(topic, out);
            break;
        case 'p':
            fprintf(out, "%d", m->partition);
            break;
        case 'o':
            fprintf(out, "%lld", (long long)m->offset);
            break;
        case 'T':
            fprintf(out, "%lld", (long long)rd_kafka_message_timestamp(m, &tstype));
            break;
        case 'h':
            put_headers(out, m);
            break;
        case '%':
            fputc('%', out);
            break;
        default:
            fputc('%', out);
            fputc(*p, out);
        }
    }
}

static void json_bytes(rn_cli_json_t *j, const char *name, const void *p, size_t n) {
    char key[32];
    if (!p) {
        rn_cli_json_key(j, name);
        rn_cli_json_null(j);
    } else if (rn_cli_utf8_valid(p, n)) {
        rn_cli_json_key(j, name);
        rn_cli_json_strn(j, p, n);
    } else {
        snprintf(key, sizeof(key), "%s_base64", name);
        rn_cli_json_key(j, key);
        char *b = rn_cli_base64(p, n);
        rn_cli_json_str(j, b ? b : "");
        free(b);
    }
}

static void print_json(FILE *out, const rd_kafka_message_t *m, const char *topic) {
    rn_cli_json_t j;
    rn_cli_json_init(&j, out);
    rn_cli_json_obj(&j);
    rn_cli_json_key(&j, "topic");
    rn_cli_json_str(&j, topic);
    rn_cli_json_key(&j, "partition");
    rn_cli_json_int(&j, m->partition);
    rn_cli_json_key(&j, "offset");
    rn_cli_json_int(&j, m->offset);
    rd_kafka_timestamp_type_t tstype;
    rn_cli_json_key(&j, "timestamp");
    rn_cli_json_int(&j, rd_kafka_message_timestamp(m, &tstype));
    json_bytes(&j, "key", m->key, m->key_len);
    json_bytes(&j, "value", m->payload, m->len);
    rn_cli_json_key(&j, "headers");
    rn_cli_json_arr(&j);
    rd_kafka_headers_t *h = NULL;
    if (!rd_kafka_message_headers(m, &h) && h) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &val, &size); i++) {
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "key");
            rn_cli_json_str(&j, name);
            json_bytes(&j, "value", val, size);
            rn_cli_json_obj_end(&j);
        }
    }
    rn_cli_json_arr_end(&j);
    rn_cli_json_obj_end(&j);
    rn_cli_json_end(&j);
}

/* ---- start positions ---- */

static bool parse_from(const char *v, from_kind_t *kind, int64_t *value) {
    if (!strcmp(v, "beginning") || !strcmp(v, "earliest") || !strcmp(v, "start")) {
        *kind = FROM_BEGINNING;
        return true;
    }
    if (!strcmp(v, "end") || !strcmp(v, "latest")) {
        *kind = FROM_END;
        return true;
    }
    if (v[0] == '@') {
        *kind = FROM_TIME;
        return rn_cli_parse_time_ms(v + 1, value);
    }
    if (v[0] == '-') {
        *kind = FROM_TAIL;
        return rn_cli_parse_int(v + 1, 1, INT64_MAX / 4, value);
    }
    *kind = FROM_OFFSET;
    return rn_cli_parse_int(v, 0, INT64_MAX / 4, value);
}

/* Resolve @TIMESTAMP into offsets; a partition with no message that late starts at its end. */
static int resolve_times(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, int64_t ts) {
    for (int i = 0; i < l->cnt; i++) l->elems[i].offset = ts;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, c->timeout_ms);
    if (err) return rn_cli_fail_err(c, err, NULL, (rn_cli_subject_t){"topic", l->cnt ? l->elems[0].topic : ""});
    for (int i = 0; i < l->cnt; i++) {
        if (l->elems[i].err)
            return rn_cli_fail_err(c, l->elems[i].err, NULL, (rn_cli_subject_t){"topic", l->elems[i].topic});
        if (l->elems[i].offset < 0) l->elems[i].offset = RD_KAFKA_OFFSET_END;
    }
    return RN_CLI_OK;
}

int rn_cli_consume(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel consume", USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *topic = NULL, *group = NULL, *format = "%v\\n", *isolation = "read_committed";
    from_kind_t from = FROM_BEGINNING;
    bool from_given = false, exit_at_end = false;
    int64_t from_value = 0, count = -1;
    int32_t only[RN_CLI_PARTITIONS_MAX];
    int nonly = 0;
    while (rn_cli_next(&a)) {
        const char *v;
        int64_t n;
        if (a.positional) {
            if (!topic) topic = a.arg;
            else rn_cli_unknown(&a);
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 'o', "from") || rn_cli_is(&a, 0, "offset")) {
            if (!rn_cli_value(&a, &v)) continue;
            from_given = true;
            if (!parse_from(v, &from, &from_value))
                a.status = rn_cli_usage_error(&c, "--from takes beginning, end, OFFSET, -N or @TIMESTAMP, got '%s'", v);
        } else if (rn_cli_is(&a, 'g', "group")) {
            if (rn_cli_value(&a, &v)) group = v;
            if (group && !*group) a.status = rn_cli_usage_error(&c, "the group name is empty");
        } else if (rn_cli_is(&a, 'c', "count")) {
            rn_cli_int(&a, 1, INT64_MAX, &count);
        } else if (rn_cli_is(&a, 'e', "exit-at-end") || rn_cli_is(&a, 0, "exit")) {
            exit_at_end = true;
        } else if (rn_cli_is(&a, 'p', "partition")) {
            if (rn_cli_int(&a, 0, INT32_MAX, &n)) {
                if (nonly < RN_CLI_PARTITIONS_MAX) only[nonly++] = (int32_t)n;
            }
        } else if (rn_cli_is(&a, 0, "isolation")) {
            if (!rn_cli_value(&a, &v)) continue;
            if (strcmp(v, "read_committed") && strcmp(v, "read_uncommitted"))
                a.status = rn_cli_usage_error(&c, "--isolation takes read_committed or read_uncommitted, got '%s'", v);
            isolation = v;
        } else if (rn_cli_is(&a, 'f', "format")) {
            rn_cli_value(&a, &format);
        } else {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && !topic) a.status = rn_cli_usage_error(&c, "which topic?");
    if (a.status < 0 && group && nonly)
        a.status = rn_cli_usage_error(&c, "--partition cannot be used with --group (the group assigns partitions)");
    if (a.status < 0 && group && from_given && from != FROM_BEGINNING && from != FROM_END)
        a.status = rn_cli_usage_error(&c,
                                      "with --group, --from takes beginning or end (the group's committed offsets come "
                                      "first; move them with: runnel group reset-offsets)");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }

    cons_state_t st = {.cli = &c, .topic = topic};
    g_state = &st;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bool ok = rn_cli_conf_set(&c, conf, "isolation.level", isolation) &&
              rn_cli_conf_set(&c, conf, "enable.partition.eof", exit_at_end ? "true" : "false") &&
              /* The end shows as an empty fetch, which the broker holds for up to this long. */
              (!exit_at_end || rn_cli_conf_set(&c, conf, "fetch.wait.max.ms", "100")) &&
              rn_cli_conf_set(&c, conf, "auto.offset.reset", from == FROM_END ? "latest" : "earliest");
    if (ok && group)
        ok = rn_cli_conf_set(&c, conf, "group.id", group) && rn_cli_conf_set(&c, conf, "enable.auto.offset.store", "false");
    else if (ok) /* librdkafka 2.0.2 wants a group.id even to assign(); it never joins or commits here */
        ok = rn_cli_conf_set(&c, conf, "group.id", "runnel-cli-consume") &&
             rn_cli_conf_set(&c, conf, "enable.auto.commit", "false") &&
             (from != FROM_OFFSET || rn_cli_conf_set(&c, conf, "auto.offset.reset", "error"));
    rd_kafka_t *rk = NULL;
    if (ok) {
        if (group) rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rk = rn_cli_client(&c, RD_KAFKA_CONSUMER, conf);
    } else {
        rd_kafka_conf_destroy(conf);
    }
    int rc = rk ? RN_CLI_OK : RN_CLI_FAILED;

    const struct rd_kafka_metadata *md = NULL;
    const struct rd_kafka_metadata_topic *mt = NULL;
    bool started = false; /* subscribed or assigned */
    if (rc == RN_CLI_OK) rc = rn_cli_metadata(&c, rk, &md);
    if (rc == RN_CLI_OK) {
        mt = rn_cli_md_topic(md, topic);
        if (!mt) rc = rn_cli_fail_err(&c, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, (rn_cli_subject_t){"topic", topic});
        else if (mt->err) rc = rn_cli_fail_err(&c, mt->err, NULL, (rn_cli_subject_t){"topic", topic});
    }
    for (int i = 0; rc == RN_CLI_OK && i < nonly; i++)
        if (only[i] >= mt->partition_cnt)
            rc = rn_cli_fail(&c, "topic %s has %d partition%s (0-%d); there is no partition %d", topic, mt->partition_cnt,
                             mt->partition_cnt == 1 ? "" : "s", mt->partition_cnt - 1, only[i]);
    if (rc == RN_CLI_OK) {
        rd_kafka_poll_set_consumer(rk);
        c.consumer_queue = true;
    }

    if (rc == RN_CLI_OK && group) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        started = true;
        if (err) rc = rn_cli_fail_err(&c, err, NULL, (rn_cli_subject_t){"group", group});
    } else if (rc == RN_CLI_OK) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nonly ? nonly : mt->partition_cnt);
        if (nonly)
            for (int i = 0; i < nonly; i++) rd_kafka_topic_partition_list_add(l, topic, only[i]);
        else
            for (int i = 0; i < mt->partition_cnt; i++) rd_kafka_topic_partition_list_add(l, topic, mt->partitions[i].id);
        for (int i = 0; i < l->cnt; i++)
            l->elems[i].offset = from == FROM_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING
                                 : from == FROM_END     ? RD_KAFKA_OFFSET_END
                                 : from == FROM_TAIL    ? RD_KAFKA_OFFSET_TAIL(from_value)
                                                        : from_value;
        if (from == FROM_TIME) rc = resolve_times(&c, rk, l, from_value);
        if (rc == RN_CLI_OK) {
            rd_kafka_resp_err_t err = rd_kafka_assign(rk, l);
            started = true;
            if (err) rc = rn_cli_fail_err(&c, err, NULL, (rn_cli_subject_t){"topic", topic});
            else mark_assigned(&st, l, true);
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (md) rd_kafka_metadata_destroy(md);

    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    FILE *out = stdout;
    int64_t printed = 0;
    bool warned_transport = false;
    while (rc == RN_CLI_OK && !stop_signal && (count < 0 || printed < count)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            /* Idle: let a reader at the end of a pipe see what we have. */
            fflush(out);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            part_state_t *p = part(&st, m->partition);
            if (p) p->eof = true;
            rd_kafka_message_destroy(m);
            if (exit_at_end && all_at_end(&st)) break;
            continue;
        }
        if (m->err) {
            char words[1024];
            char sub[64];
            snprintf(sub, sizeof(sub), "%d", m->partition);
            rn_cli_err_words(&c, m->err, rd_kafka_message_errstr(m), (rn_cli_subject_t){"topic", topic}, words,
                             sizeof(words));
            switch (m->err) {
            case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
            case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
            case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
            case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
            case RD_KAFKA_RESP_ERR__FATAL:
            case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
                rc = rn_cli_fail(&c, "%s", words);
                break;
            case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
            case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
                rc = rn_cli_fail(&c, "offset %lld is out of range for topic %s partition %s (see runnel topic describe %s)",
                                 (long long)from_value, topic, sub, topic);
                break;
            case RD_KAFKA_RESP_ERR__TRANSPORT:
            case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
                if (!warned_transport) rn_cli_warn(&c, "%s; retrying", words);
                warned_transport = true;
                break;
            default:
                rn_cli_warn(&c, "%s", words);
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        part_state_t *p = part(&st, m->partition);
        if (p) p->eof = false;
        if (c.json)
            print_json(out, m, topic);
        else
            print_formatted(out, format, m, topic);
        printed++;
        if (group) {
            /* A fresh list each time: an element caches its partition internally. */
            rd_kafka_topic_partition_list_t *store = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(store, topic, m->partition)->offset = m->offset + 1;
            rd_kafka_offsets_store(rk, store);
            rd_kafka_topic_partition_list_destroy(store);
        }
        rd_kafka_message_destroy(m);
        if (ferror(out)) rc = rn_cli_fail(&c, "cannot write the output");
    }
    if (fflush(out) != 0 && rc == RN_CLI_OK) rc = rn_cli_fail(&c, "cannot write the output");
    if (rk) {
        /* Commit what was printed now, so a failure is reported; close then leaves the group. */
        if (group && printed > 0) {
            rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);
            if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET && rc == RN_CLI_OK)
                rc = rn_cli_fail_err(&c, err, NULL, (rn_cli_subject_t){"group", group});
        }
        if (started) {
            rd_kafka_consumer_close(rk);
            rd_kafka_destroy(rk);
        } else {
            /* Never subscribed or assigned: nothing to leave, and closing
             * would wait for a coordinator that may be unreachable. */
            rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(st.parts);
    rn_cli_free(&c);
    return rc;
}
