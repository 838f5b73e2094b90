/*
 * rn_cli_produce.c — `runnel produce TOPIC [FILE]`: one message per line.
 *
 * How lines map to messages: the input is split at every '\n' byte and each
 * piece, without its '\n', is one message value, byte for byte: tabs, '\r',
 * NUL and invalid UTF-8 included. An empty line is a message with an empty
 * (not null) value. A last line without a trailing '\n' is a message too.
 * With --key-sep SEP, a line is split at the first SEP into key and value; a
 * line without SEP has a null key and the whole line as value. So
 * `runnel consume -f '%v\n'` (the default format) prints back exactly the
 * file that was produced, when the file ends with a newline.
 *
 * The producer is idempotent by default (enable.idempotence=true, acks=all):
 * retries never duplicate or reorder a partition's messages. --acks 0 or 1
 * turn idempotence off, since it needs acks=all.
 *
 * Progress: reading a file (not stdin) with stderr on a terminal draws a bar
 * of bytes read and messages acknowledged, at most ten times a second.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rn_cli.h"
#include "rn_cli_common.h"

#define RN_CLI_HEADERS_MAX 64

static const char USAGE[] =
    "usage: runnel produce TOPIC [FILE] [options]\n"
    "\n"
    "Send one message per line of FILE (or stdin) to TOPIC. Each line without its\n"
    "'\\n' is the message value, byte for byte; an empty line is an empty message.\n"
    "\n"
    "options:\n"
    "  -f, --file FILE                  read FILE instead of stdin (also: the 2nd argument)\n"
    "  -K, --key-sep SEP                split each line at the first SEP into key and value\n"
    "                                   (\\t, \\n, \\r, \\\\ are understood); no SEP: null key\n"
    "  -H, --header KEY=VALUE           add a header to every message (repeatable)\n"
    "  -p, --partition N                send every message to partition N (default: by key,\n"
    "                                   or spread out when there is no key)\n"
    "  -z, --compression CODEC          none, gzip, snappy, lz4 or zstd (default none)\n"
    "      --acks all|1|0               acknowledgement level (default all)\n"
    "      --no-idempotence             plain producer (the default is idempotent)\n"
    "      --linger-ms MS               batch for up to MS milliseconds (default 5)\n"
    "  -q, --quiet                      no summary and no progress bar\n"
    "      --json                       print the summary as JSON: {topic, messages, bytes, failed}\n" RN_CLI_COMMON_HELP;

typedef struct {
    rn_cli_t *cli;
    const char *topic;
    uint64_t acked, failed, acked_bytes;
    rd_kafka_resp_err_t first_err;
    char first_err_msg[512];
    int64_t first_err_line;
} prod_state_t;

static volatile sig_atomic_t stop_signal;
static prod_state_t *g_state; /* for the delivery callback, whose opaque is the rn_cli_t */

static void on_signal(int sig) {
    stop_signal = sig;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    prod_state_t *st = g_state;
    if (!m->err) {
        st->acked++;
        st->acked_bytes += m->len + m->key_len;
        return;
    }
    if (st->failed++ == 0) {
        st->first_err = m->err;
        st->first_err_line = (int64_t)(intptr_t)m->_private;
        /* Not rd_kafka_message_errstr(): for a delivery report it returns the
         * payload, which is not a string. */
        st->first_err_msg[0] = '\0';
    }
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human_bytes(char *buf, size_t len, double b) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

static void draw_progress(uint64_t read, uint64_t total, const prod_state_t *st, double started, bool final) {
    char r[32], t[32], rate[32];
    human_bytes(r, sizeof(r), (double)read);
    human_bytes(t, sizeof(t), (double)total);
    double el = mono_s() - started;
    human_bytes(rate, sizeof(rate), el > 0 ? (double)read / el : 0);
    int pct = total ? (int)(read * 100 / total) : 100;
    if (pct > 100) pct = 100;
    const int width = 30;
    char bar[64];
    int fill = pct * width / 100;
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %3d%%  %s / %s  %llu acked  %s/s\033[K%s", bar, pct, r, t, (unsigned long long)st->acked,
            rate, final ? "\n" : "");
    fflush(stderr);
}

int rn_cli_produce(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel produce", USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *topic = NULL, *file = NULL, *compression = NULL, *acks = "all";
    char *key_sep = NULL;
    size_t key_sep_len = 0;
    const char *headers[RN_CLI_HEADERS_MAX];
    int nheaders = 0;
    int64_t partition = RD_KAFKA_PARTITION_UA, linger_ms = 5;
    bool idempotent = true, quiet = false;
    while (rn_cli_next(&a)) {
        const char *v;
        if (a.positional) {
            if (!topic) topic = a.arg;
            else if (!file) file = a.arg;
            else rn_cli_unknown(&a);
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 'f', "file")) {
            if (rn_cli_value(&a, &v)) {
                if (file) a.status = rn_cli_usage_error(&c, "only one input file");
                file = v;
            }
        } else if (rn_cli_is(&a, 'K', "key-sep") || rn_cli_is(&a, 0, "key-separator")) {
            if (!rn_cli_value(&a, &v)) continue;
            free(key_sep);
            key_sep = strdup(v);
            key_sep_len = key_sep ? rn_cli_unescape(key_sep) : 0;
            if (key_sep_len == 0) a.status = rn_cli_usage_error(&c, "option '%s' needs a non-empty separator", a.arg);
        } else if (rn_cli_is(&a, 'H', "header")) {
            if (!rn_cli_value(&a, &v)) continue;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                a.status = rn_cli_usage_error(&c, "option '%s' needs KEY=VALUE, got '%s'", a.arg, v);
            else if (nheaders >= RN_CLI_HEADERS_MAX)
                a.status = rn_cli_usage_error(&c, "at most %d headers", RN_CLI_HEADERS_MAX);
            else
                headers[nheaders++] = v;
        } else if (rn_cli_is(&a, 'p', "partition")) {
            rn_cli_int(&a, 0, INT32_MAX, &partition);
        } else if (rn_cli_is(&a, 'z', "compression")) {
            if (!rn_cli_value(&a, &v)) continue;
            if (strcmp(v, "none") && strcmp(v, "gzip") && strcmp(v, "snappy") && strcmp(v, "lz4") && strcmp(v, "zstd"))
                a.status = rn_cli_usage_error(&c, "unknown compression '%s' (none, gzip, snappy, lz4, zstd)", v);
            compression = v;
        } else if (rn_cli_is(&a, 0, "acks")) {
            if (!rn_cli_value(&a, &v)) continue;
            if (!strcmp(v, "all") || !strcmp(v, "-1")) {
                acks = "all";
            } else if (!strcmp(v, "1") || !strcmp(v, "0")) {
                acks = v;
                idempotent = false;
            } else {
                a.status = rn_cli_usage_error(&c, "--acks takes all, 1 or 0, got '%s'", v);
            }
        } else if (rn_cli_is(&a, 0, "no-idempotence")) {
            idempotent = false;
        } else if (rn_cli_is(&a, 0, "linger-ms")) {
            rn_cli_int(&a, 0, 900000, &linger_ms);
        } else if (rn_cli_is(&a, 'q', "quiet")) {
            quiet = true;
        } else {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && !topic) a.status = rn_cli_usage_error(&c, "which topic?");
    if (a.status >= 0) {
        free(key_sep);
        rn_cli_free(&c);
        return a.status;
    }

    FILE *in = stdin;
    uint64_t total_bytes = 0;
    if (file && strcmp(file, "-")) {
        in = fopen(file, "rb");
        if (!in) {
            int e = errno;
            free(key_sep);
            int rc = rn_cli_fail(&c, "cannot read %s: %s", file, strerror(e));
            rn_cli_free(&c);
            return rc;
        }
        struct stat sb;
        if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) total_bytes = (uint64_t)sb.st_size;
    }
    bool progress = !quiet && in != stdin && total_bytes > 0 && isatty(STDERR_FILENO);

    prod_state_t st = {.cli = &c, .topic = topic};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char linger[32];
    snprintf(linger, sizeof(linger), "%lld", (long long)linger_ms);
    bool ok = rn_cli_conf_set(&c, conf, "enable.idempotence", idempotent ? "true" : "false") &&
              rn_cli_conf_set(&c, conf, "acks", acks) && rn_cli_conf_set(&c, conf, "linger.ms", linger) &&
              (!compression || rn_cli_conf_set(&c, conf, "compression.codec", compression));
    rd_kafka_t *rk = NULL;
    if (ok) {
        g_state = &st;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, conf);
    } else {
        rd_kafka_conf_destroy(conf);
    }
    int rc = rk ? RN_CLI_OK : RN_CLI_FAILED;

    /* The topic must exist: a clear message beats a broker's auto-creation or
     * librdkafka's retries until message.timeout.ms. */
    const struct rd_kafka_metadata *md = NULL;
    if (rc == RN_CLI_OK) rc = rn_cli_metadata(&c, rk, &md);
    if (rc == RN_CLI_OK) {
        const struct rd_kafka_metadata_topic *t = rn_cli_md_topic(md, topic);
        if (!t)
            rc = rn_cli_fail(&c, "topic %s does not exist (create it with: runnel topic create %s)", topic, topic);
        else if (t->err)
            rc = rn_cli_fail_err(&c, t->err, NULL, (rn_cli_subject_t){"topic", topic});
        else if (partition != RD_KAFKA_PARTITION_UA && partition >= t->partition_cnt)
            rc = rn_cli_fail(&c, "topic %s has %d partition%s (0-%d); there is no partition %lld", topic,
                             t->partition_cnt, t->partition_cnt == 1 ? "" : "s", t->partition_cnt - 1,
                             (long long)partition);
        rd_kafka_metadata_destroy(md);
    }

    rd_kafka_headers_t *hdrs = NULL;
    if (nheaders) {
        hdrs = rd_kafka_headers_new((size_t)nheaders);
        for (int i = 0; i < nheaders; i++) {
            const char *eq = strchr(headers[i], '=');
            rd_kafka_header_add(hdrs, headers[i], eq - headers[i], eq + 1, (ssize_t)strlen(eq + 1));
        }
    }

    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    char *line = NULL;
    size_t cap = 0;
    uint64_t sent = 0, read_bytes = 0;
    int64_t line_no = 0;
    double started = mono_s(), last_draw = 0;
    while (rc == RN_CLI_OK && !stop_signal) {
        errno = 0;
        ssize_t n = getline(&line, &cap, in);
        if (n < 0) {
            if (ferror(in)) rc = rn_cli_fail(&c, "cannot read %s: %s", file ? file : "stdin", strerror(errno));
            break;
        }
        line_no++;
        read_bytes += (uint64_t)n;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        const char *key = NULL, *val = line;
        size_t key_len = 0, val_len = len;
        if (key_sep) {
            const char *p = memmem(line, len, key_sep, key_sep_len);
            if (p) {
                key = line;
                key_len = (size_t)(p - line);
                val = p + key_sep_len;
                val_len = len - key_len - key_sep_len;
            }
        }
        for (;;) {
            rd_kafka_headers_t *h = hdrs ? rd_kafka_headers_copy(hdrs) : NULL;
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)val, val_len),
                RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)(intptr_t)line_no),
                RD_KAFKA_V_END);
            if (!err) break;
            if (h) rd_kafka_headers_destroy(h);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !stop_signal) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            char words[1024];
            rn_cli_err_words(&c, err, NULL, (rn_cli_subject_t){"topic", topic}, words, sizeof(words));
            if (progress) fputc('\n', stderr);
            rc = rn_cli_fail(&c, "line %lld: %s", (long long)line_no, words);
            break;
        }
        if (rc) break;
        sent++;
        rd_kafka_poll(rk, 0);
        if (st.failed) break; /* stop at the first failure, don't pile on more */
        if (progress) {
            double now = mono_s();
            if (now - last_draw >= 0.1) {
                draw_progress(read_bytes, total_bytes, &st, started, false);
                last_draw = now;
            }
        }
    }
    free(line);
    if (in != stdin) fclose(in);

    /* Wait for every acknowledgement; on a second signal stop waiting. */
    if (rk) {
        if (stop_signal) {
            rn_cli_warn(&c, "interrupted; waiting for %d unacknowledged message(s)", rd_kafka_outq_len(rk));
            stop_signal = 0;
        }
        while (rd_kafka_outq_len(rk) > 0 && !stop_signal) {
            rd_kafka_poll(rk, 100);
            if (progress) draw_progress(read_bytes, total_bytes, &st, started, false);
        }
        rd_kafka_flush(rk, 100);
        if (progress) draw_progress(read_bytes, total_bytes, &st, started, true);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    if (rc == RN_CLI_OK && st.failed) {
        char words[1024];
        rn_cli_err_words(&c, st.first_err, st.first_err_msg, (rn_cli_subject_t){"topic", topic}, words, sizeof(words));
        rc = rn_cli_fail(&c, "%llu message(s) not delivered; the first, line %lld: %s", (unsigned long long)st.failed,
                         (long long)st.first_err_line, words);
    }
    if (rc == RN_CLI_OK && sent != st.acked) rc = rn_cli_fail(&c, "%llu message(s) not acknowledged",
                                                             (unsigned long long)(sent - st.acked));
    if (rk && c.json) {
        rn_cli_json_t j;
        rn_cli_json_init(&j, stdout);
        rn_cli_json_obj(&j);
        rn_cli_json_key(&j, "topic");
        rn_cli_json_str(&j, topic);
        rn_cli_json_key(&j, "messages");
        rn_cli_json_int(&j, (int64_t)st.acked);
        rn_cli_json_key(&j, "bytes");
        rn_cli_json_int(&j, (int64_t)st.acked_bytes);
        rn_cli_json_key(&j, "failed");
        rn_cli_json_int(&j, (int64_t)(sent - st.acked));
        rn_cli_json_obj_end(&j);
        rn_cli_json_end(&j);
    } else if (rk && !quiet && (rc == RN_CLI_OK || st.acked)) {
        char b[32];
        human_bytes(b, sizeof(b), (double)st.acked_bytes);
        fprintf(stderr, "%s: %llu message%s (%s) acknowledged by %s in %.2f s\n", c.prog, (unsigned long long)st.acked,
                st.acked == 1 ? "" : "s", b, topic, mono_s() - started);
    }
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    if (rk) rd_kafka_destroy(rk);
    free(key_sep);
    rn_cli_free(&c);
    return rc;
}
