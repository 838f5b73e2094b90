/*
 * rn_bench.c — `runnel bench produce|consume|e2e`: throughput and latency of a
 * Kafka-compatible broker, measured with librdkafka (the role of Kafka's
 * kafka-producer-perf-test and librdkafka's rdkafka_performance).
 *
 * This file holds what the three modes share: the options, the librdkafka
 * configuration, topic creation, the progress line and the final report, as
 * text or as one JSON object (for bench/run). The loops themselves live in
 * rn_bench_produce.c and rn_bench_consume.c; rn_bench_int.h explains how
 * messages are stamped for latency.
 *
 * Units: MB is 10^6 bytes of message value (keys and protocol overhead are
 * not counted); latencies are measured in nanoseconds and reported in ms.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rn_bench_int.h"
#include "rn_cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: runnel bench produce|consume|e2e [options]\n"
            "\n"
            "  produce   send messages, report acknowledged msgs/s, MB/s and ack latency\n"
            "  consume   read a topic from the beginning, report msgs/s, MB/s (and, for\n"
            "            messages written by `bench produce`, produce-to-consume latency)\n"
            "  e2e       a producer (paced with --rate) and a consumer in one process:\n"
            "            produce-to-consume latency percentiles\n"
            "\n"
            "options:\n"
            "  -b, --brokers LIST      bootstrap servers (default 127.0.0.1:9092)\n"
            "  -t, --topic NAME        topic (default runnel-bench)\n"
            "  -p, --partitions N      create the topic with N partitions (default 1;\n"
            "                          an existing topic is used as it is)\n"
            "      --no-create         do not create the topic (auto-creation may)\n"
            "  -n, --count N           messages to send / read (default: send 1000000, read up to\n"
            "                          the end of every partition; 0 = no limit)\n"
            "  -d, --duration SEC      stop after SEC seconds (default: no limit)\n"
            "                          a run stops at whichever of count and duration comes first\n"
            "  -s, --size BYTES        message value size (default 100)\n"
            "      --acks 0|1|all      producer acks (default all)\n"
            "      --linger-ms MS      producer linger (default 5; 0 with --window and in e2e)\n"
            "      --batch-size BYTES  producer batch.size (default librdkafka's)\n"
            "      --batch-messages N  producer batch.num.messages (default librdkafka's)\n"
            "  -z, --compression C     none|gzip|snappy|lz4|zstd (default none)\n"
            "      --window K          send K messages, wait for their K acks, repeat\n"
            "                          (the Kafka paper's producer batch; default 0: asynchronous)\n"
            "  -r, --rate R            target messages/s (default 0: as fast as possible)\n"
            "      --fetch-messages N  consumer: size each fetch for about N messages\n"
            "      --from-end          consumer: start at the end of the topic\n"
            "      --warmup SEC        e2e: latency of messages sent in the first SEC is not\n"
            "                          recorded (default 1)\n"
            "      --timeout SEC       give up when nothing progresses for SEC (default 30)\n"
            "  -X KEY=VALUE            any librdkafka property (repeatable; applied last)\n"
            "      --progress SEC      progress line interval on stderr (default 1; 0 = off)\n"
            "      --json              print the final report as one JSON object on stdout\n"
            "\n"
            "exit status: 0 ok, 1 failed (errors, lost messages, broker unreachable), 2 usage\n");
}

int64_t rn__bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void rn__bench_side_init(rn_bench_side_t *s) {
    memset(s, 0, sizeof(*s));
    rn_hdr_init(&s->lat);
    rn_hdr_init(&s->lat_interval);
}

void rn__bench_error(rn_bench_side_t *s, const char *msg) {
    atomic_fetch_add(&s->errors, 1);
    if (!s->first_error[0]) snprintf(s->first_error, sizeof(s->first_error), "%s", msg);
}

/* ---- librdkafka configuration ---------------------------------------------------- */

static bool conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen) {
    char e[256];
    if (rd_kafka_conf_set(c, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "%s=%s: %s", k, v, e);
        return false;
    }
    return true;
}

static bool conf_set_int(rd_kafka_conf_t *c, const char *k, long long v, char *err, size_t errlen) {
    char s[32];
    snprintf(s, sizeof(s), "%lld", v);
    return conf_set(c, k, s, err, errlen);
}

rd_kafka_conf_t *rn__bench_conf(const rn_bench_opts_t *o, bool producer, char *err, size_t errlen) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = conf_set(c, "bootstrap.servers", o->brokers, err, errlen) &&
              conf_set(c, "client.id", producer ? "runnel-bench-producer" : "runnel-bench-consumer", err, errlen) &&
              conf_set(c, "log_level", "3", err, errlen);
    if (ok && producer) {
        int linger = o->linger_ms;
        if (linger < 0) linger = (o->window > 0 || o->mode == RN_BENCH_E2E) ? 0 : 5;
        ok = conf_set(c, "acks", o->acks, err, errlen) && conf_set_int(c, "linger.ms", linger, err, errlen) &&
             conf_set(c, "compression.codec", o->compression, err, errlen);
        if (ok && o->batch_size_bytes >= 0) ok = conf_set_int(c, "batch.size", o->batch_size_bytes, err, errlen);
        if (ok && o->batch_messages >= 0) ok = conf_set_int(c, "batch.num.messages", o->batch_messages, err, errlen);
        /* Big messages: let the queue hold a few of them whatever their size. */
        if (ok && (int64_t)o->size_bytes * 16 > 1000000)
            ok = conf_set_int(c, "message.max.bytes", (long long)o->size_bytes + 4096 > 1000000 ? o->size_bytes + 4096 : 1000000,
                              err, errlen);
    } else if (ok) {
        if (o->fetch_messages > 0) {
            /* About N messages per fetch: value plus a record's framing (~10-20 bytes). */
            long long per = (long long)o->fetch_messages * (o->size_bytes + 20) + 128;
            if (per < 1024) per = 1024;
            if (per > INT_MAX / 2) per = INT_MAX / 2;
            ok = conf_set_int(c, "max.partition.fetch.bytes", per, err, errlen) &&
                 conf_set_int(c, "fetch.max.bytes", per < 1000000 ? 1000000 : per, err, errlen) &&
                 conf_set_int(c, "receive.message.max.bytes", (per < 1000000 ? 1000000 : per) + 65536, err, errlen);
        } else if (o->size_bytes >= 65536) {
            /* Big messages: a fetch of 1 MB per partition (the default) would
             * carry one message per round trip; let it carry 16. */
            long long per = 16LL * (o->size_bytes + 1024);
            if (per > INT_MAX / 4) per = INT_MAX / 4;
            long long total = per < 52428800 ? 52428800 : per;
            ok = conf_set_int(c, "max.partition.fetch.bytes", per, err, errlen) &&
                 conf_set_int(c, "fetch.max.bytes", total, err, errlen) &&
                 conf_set_int(c, "receive.message.max.bytes", total + 65536, err, errlen);
        }
        if (ok) ok = conf_set(c, "enable.partition.eof", "true", err, errlen);
        if (ok && o->mode == RN_BENCH_E2E) ok = conf_set(c, "fetch.wait.max.ms", "100", err, errlen);
    }
    for (int i = 0; ok && i < o->nconf; i++) {
        const char *kv = o->conf[i];
        const char *eq = strchr(kv, '=');
        char k[128];
        size_t kl = (size_t)(eq - kv);
        if (kl >= sizeof(k)) kl = sizeof(k) - 1;
        memcpy(k, kv, kl);
        k[kl] = 0;
        ok = conf_set(c, k, eq + 1, err, errlen);
    }
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

/* ---- topic ---------------------------------------------------------------------- */

/* 0 created or there already; 1 CreateTopics failed (auto-creation may still
 * do); 2 bad arguments; 3 no broker reachable. */
static int create_topic(const rn_bench_opts_t *o, char *err, size_t errlen) {
    rd_kafka_conf_t *c = rn__bench_conf(o, true, err, errlen);
    if (!c) return 2;
    char e[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    if (!rk) {
        snprintf(err, errlen, "cannot create a client: %s", e);
        return 1;
    }
    int rc = 0;
    /* Reachable at all? (Otherwise CreateTopics would wait out its timeout.) */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t me = rd_kafka_metadata(rk, 0, NULL, &md, 5000);
    if (md) rd_kafka_metadata_destroy(md);
    if (me) {
        snprintf(err, errlen, "cannot reach %s: %s", o->brokers, rd_kafka_err2str(me));
        rd_kafka_destroy(rk);
        return 3;
    }
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(o->topic, o->partitions, 1, e, sizeof(e));
    if (!nt) {
        snprintf(err, errlen, "topic %s: %s", o->topic, e);
        rd_kafka_destroy(rk);
        return 2;
    }
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, 10000, e, sizeof(e));
    rd_kafka_AdminOptions_set_request_timeout(ao, 15000, e, sizeof(e));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    if (!ev) {
        snprintf(err, errlen, "CreateTopics %s: no answer in 20 s", o->topic);
        rc = 1;
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "CreateTopics %s: %s", o->topic, rd_kafka_event_error_string(ev));
        rc = 1;
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t te = rd_kafka_topic_result_error(tr[i]);
            if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                const char *es = rd_kafka_topic_result_error_string(tr[i]);
                snprintf(err, errlen, "CreateTopics %s: %s", o->topic, es ? es : rd_kafka_err2str(te));
                rc = 1;
            }
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return rc;
}

/* The topic's partition count once every partition has a leader; waits up to
 * 10 s (a just-created topic may take a metadata round or two). */
int rn__bench_partition_count(rd_kafka_t *rk, const char *topic, char *err, size_t errlen) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = rn__bench_now_ns() + 10 * 1000000000LL;
    int n = -1;
    snprintf(err, errlen, "topic %s: no metadata", topic);
    while (n < 0 && rn__bench_now_ns() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (e) {
            snprintf(err, errlen, "metadata for %s: %s", topic, rd_kafka_err2str(e));
        } else if (md->topic_cnt == 1 && md->topics[0].err) {
            snprintf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        } else if (md->topic_cnt == 1 && md->topics[0].partition_cnt > 0) {
            bool led = true;
            for (int i = 0; i < md->topics[0].partition_cnt; i++)
                if (md->topics[0].partitions[i].leader < 0 || md->topics[0].partitions[i].err) led = false;
            if (led) n = md->topics[0].partition_cnt;
        }
        if (md) rd_kafka_metadata_destroy(md);
        if (n < 0) usleep(100 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* ---- progress and report -------------------------------------------------------- */

void rn__bench_progress(const rn_bench_run_t *r, const char *what, int64_t now_ns, int64_t *prev_msgs,
                        int64_t *prev_ns, const rn_bench_side_t *other) {
    const rn_bench_side_t *s = r->side;
    int64_t msgs = atomic_load(&s->msgs);
    double dt = (double)(now_ns - *prev_ns) / 1e9;
    double rate = dt > 0 ? (double)(msgs - *prev_msgs) / dt : 0;
    char lat[64] = "";
    if (s->lat_interval.count)
        snprintf(lat, sizeof(lat), "  p99 %.2f ms  max %.2f ms", (double)rn_hdr_quantile(&s->lat_interval, 0.99) / 1e6,
                 (double)s->lat_interval.max / 1e6);
    char extra[96] = "";
    if (other)
        snprintf(extra, sizeof(extra), "  (acked %" PRId64 ")", atomic_load(&other->msgs));
    else if (r->o->mode == RN_BENCH_PRODUCE)
        snprintf(extra, sizeof(extra), "  in flight %" PRId64,
                 atomic_load(&s->sent) - msgs - atomic_load(&s->errors));
    fprintf(stderr, "[%6.1f s] %s %" PRId64 " msgs  %.0f msgs/s  %.1f MB/s%s%s%s\n", (double)(now_ns - r->t0_ns) / 1e9,
            what, msgs, rate, rate * r->o->size_bytes / 1e6, lat, extra,
            atomic_load(&s->errors) ? "  ERRORS" : "");
    *prev_msgs = msgs;
    *prev_ns = now_ns;
}

static double side_elapsed_s(const rn_bench_side_t *s, bool consumer) {
    int64_t from = consumer && s->t_first_ns ? s->t_first_ns : s->t_start_ns;
    if (!s->t_last_ns || s->t_last_ns <= from) return 0;
    return (double)(s->t_last_ns - from) / 1e9;
}

static void json_side(FILE *f, const rn_bench_side_t *s, bool consumer, int size) {
    double el = side_elapsed_s(s, consumer);
    int64_t msgs = atomic_load(&s->msgs), bytes = atomic_load(&s->bytes);
    /* A consumer's rate runs from its first message to its last: one message
     * has no rate. */
    double rate = el > 0 ? (double)(consumer ? msgs - 1 : msgs) / el : 0;
    double mbs = el > 0 ? (double)(consumer ? bytes - size : bytes) / el / 1e6 : 0;
    if (rate < 0) rate = 0;
    if (mbs < 0) mbs = 0;
    fprintf(f, "\"messages\":%" PRId64 ",\"bytes\":%" PRId64 ",\"errors\":%" PRId64 ",\"elapsed_s\":%.6f", msgs, bytes,
            atomic_load(&s->errors), el);
    fprintf(f, ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f", rate, mbs);
    const rn_hdr_t *h = &s->lat;
    fprintf(f,
            ",\"latency_ms\":{\"count\":%" PRIu64 ",\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f,\"mean\":%.4f}",
            h->count, (double)rn_hdr_quantile(h, 0.5) / 1e6, (double)rn_hdr_quantile(h, 0.99) / 1e6,
            (double)rn_hdr_quantile(h, 0.999) / 1e6, (double)h->max / 1e6, rn_hdr_mean(h) / 1e6);
    if (s->first_error[0]) {
        fputs(",\"first_error\":\"", f);
        for (const char *p = s->first_error; *p; p++)
            if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
            else if ((unsigned char)*p < 0x20) fputc(' ', f);
            else fputc(*p, f);
        fputc('"', f);
    }
}

static void text_side(FILE *f, const char *what, const char *latwhat, const rn_bench_side_t *s, bool consumer, int size) {
    double el = side_elapsed_s(s, consumer);
    int64_t msgs = atomic_load(&s->msgs), bytes = atomic_load(&s->bytes);
    double rate = el > 0 ? (double)(consumer ? msgs - 1 : msgs) / el : 0;
    double mbs = el > 0 ? (double)(consumer ? bytes - size : bytes) / el / 1e6 : 0;
    fprintf(f, "%s: %" PRId64 " msgs, %.1f MB in %.2f s: %.0f msgs/s, %.2f MB/s", what, msgs, (double)bytes / 1e6, el,
            rate > 0 ? rate : 0, mbs > 0 ? mbs : 0);
    if (atomic_load(&s->errors)) fprintf(f, ", %" PRId64 " errors (first: %s)", atomic_load(&s->errors), s->first_error);
    fputc('\n', f);
    const rn_hdr_t *h = &s->lat;
    if (h->count)
        fprintf(f, "  %s latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f  (%" PRIu64 " samples)\n",
                latwhat, (double)rn_hdr_quantile(h, 0.5) / 1e6, (double)rn_hdr_quantile(h, 0.99) / 1e6,
                (double)rn_hdr_quantile(h, 0.999) / 1e6, (double)h->max / 1e6, rn_hdr_mean(h) / 1e6, h->count);
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static const char *mode_name(rn_bench_mode_t m) {
    return m == RN_BENCH_PRODUCE ? "produce" : m == RN_BENCH_CONSUME ? "consume" : "e2e";
}

static void report(const rn_bench_opts_t *o, const rn_bench_side_t *prod, const rn_bench_side_t *cons, double cpu) {
    if (o->json) {
        FILE *f = stdout;
        fprintf(f, "{\"mode\":\"%s\",\"topic\":\"%s\",\"size\":%d,\"window\":%d,\"rate\":%.1f,\"acks\":\"%s\"",
                mode_name(o->mode), o->topic, o->size_bytes, o->window, o->rate, o->acks);
        fprintf(f, ",\"compression\":\"%s\",\"client_cpu_s\":%.3f,", o->compression, cpu);
        if (o->mode == RN_BENCH_PRODUCE) {
            json_side(f, prod, false, o->size_bytes);
        } else if (o->mode == RN_BENCH_CONSUME) {
            json_side(f, cons, true, o->size_bytes);
        } else {
            /* e2e: the top level is the consumer side (its latency is
             * produce-to-consume); the producer's acks are nested. */
            json_side(f, cons, true, o->size_bytes);
            fputs(",\"produce\":{", f);
            json_side(f, prod, false, o->size_bytes);
            fputc('}', f);
        }
        fputs("}\n", f);
        fflush(f);
        return;
    }
    if (prod) text_side(stdout, "produce", "ack", prod, false, o->size_bytes);
    if (cons) text_side(stdout, "consume", "produce-to-consume", cons, true, o->size_bytes);
    int64_t n = prod ? atomic_load(&prod->msgs) : atomic_load(&cons->msgs);
    printf("client CPU: %.2f s (%.2f us/msg)\n", cpu, n ? cpu * 1e6 / (double)n : 0.0);
}

/* ---- options -------------------------------------------------------------------- */

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static bool one_of(const char *s, const char *const *set) {
    for (; *set; set++)
        if (!strcmp(s, *set)) return true;
    return false;
}

/* Parses argv into o; returns 0, or 2 after printing why. */
static int parse_opts(rn_bench_opts_t *o, int argc, char **argv) {
    static const char *const acks_set[] = {"0", "1", "all", "-1", NULL};
    static const char *const comp_set[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        char *val = NULL;
        char name[64];
        /* --opt=value or --opt value */
        char *eq = (a[0] == '-' && a[1] == '-') ? strchr(a, '=') : NULL;
        if (eq) {
            size_t nl = (size_t)(eq - a);
            if (nl >= sizeof(name)) nl = sizeof(name) - 1;
            memcpy(name, a, nl);
            name[nl] = 0;
            val = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
        }
#define FLAG(s) (!strcmp(name, s))
#define NEEDVAL()                                                                   \
    do {                                                                            \
        if (!val) {                                                                 \
            if (i + 1 >= argc) {                                                    \
                fprintf(stderr, "runnel bench: %s needs a value\n", name);          \
                return 2;                                                           \
            }                                                                       \
            val = argv[++i];                                                        \
        }                                                                           \
    } while (0)
#define BAD()                                                                       \
    do {                                                                            \
        fprintf(stderr, "runnel bench: bad value for %s: '%s'\n", name, val);       \
        return 2;                                                                   \
    } while (0)
        int64_t v;
        double d;
        if (FLAG("-b") || FLAG("--brokers") || FLAG("--bootstrap-server")) {
            NEEDVAL();
            o->brokers = val;
        } else if (FLAG("-t") || FLAG("--topic")) {
            NEEDVAL();
            if (!*val) BAD();
            o->topic = val;
        } else if (FLAG("-p") || FLAG("--partitions")) {
            NEEDVAL();
            if (!parse_i64(val, 1, 100000, &v)) BAD();
            o->partitions = (int)v;
        } else if (FLAG("--no-create")) {
            o->create = false;
        } else if (FLAG("-n") || FLAG("--count")) {
            NEEDVAL();
            if (!parse_i64(val, 0, INT64_MAX / 2, &v)) BAD();
            o->count = v;
        } else if (FLAG("-d") || FLAG("--duration")) {
            NEEDVAL();
            if (!parse_double(val, 0, 86400 * 7, &d)) BAD();
            o->duration_s = d;
        } else if (FLAG("-s") || FLAG("--size")) {
            NEEDVAL();
            if (!parse_i64(val, 0, 512 * 1024 * 1024, &v)) BAD();
            o->size_bytes = (int)v;
        } else if (FLAG("--acks")) {
            NEEDVAL();
            if (!one_of(val, acks_set)) BAD();
            o->acks = !strcmp(val, "-1") ? "all" : val;
        } else if (FLAG("--linger-ms") || FLAG("--linger")) {
            NEEDVAL();
            if (!parse_i64(val, 0, 900000, &v)) BAD();
            o->linger_ms = (int)v;
        } else if (FLAG("--batch-size")) {
            NEEDVAL();
            if (!parse_i64(val, 1, INT_MAX, &v)) BAD();
            o->batch_size_bytes = (int)v;
        } else if (FLAG("--batch-messages")) {
            NEEDVAL();
            if (!parse_i64(val, 1, 1000000, &v)) BAD();
            o->batch_messages = (int)v;
        } else if (FLAG("-z") || FLAG("--compression")) {
            NEEDVAL();
            if (!one_of(val, comp_set)) BAD();
            o->compression = val;
        } else if (FLAG("--window")) {
            NEEDVAL();
            if (!parse_i64(val, 0, 1000000, &v)) BAD();
            o->window = (int)v;
        } else if (FLAG("-r") || FLAG("--rate")) {
            NEEDVAL();
            if (!parse_double(val, 0, 1e9, &d)) BAD();
            o->rate = d;
        } else if (FLAG("--fetch-messages")) {
            NEEDVAL();
            if (!parse_i64(val, 0, 10000000, &v)) BAD();
            o->fetch_messages = (int)v;
        } else if (FLAG("--from-end")) {
            o->from_end = true;
        } else if (FLAG("--warmup")) {
            NEEDVAL();
            if (!parse_double(val, 0, 3600, &d)) BAD();
            o->warmup_s = d;
        } else if (FLAG("--timeout")) {
            NEEDVAL();
            if (!parse_double(val, 0.1, 3600, &d)) BAD();
            o->timeout_s = d;
        } else if (FLAG("-X")) {
            NEEDVAL();
            if (!strchr(val, '=') || val[0] == '=') BAD();
            if (o->nconf == RN_BENCH_CONF_MAX) {
                fprintf(stderr, "runnel bench: at most %d -X options\n", RN_BENCH_CONF_MAX);
                return 2;
            }
            o->conf[o->nconf++] = val;
        } else if (FLAG("--progress")) {
            NEEDVAL();
            if (!parse_double(val, 0, 3600, &d)) BAD();
            o->progress_s = d;
        } else if (FLAG("--json")) {
            o->json = true;
        } else {
            fprintf(stderr, "runnel bench: unknown option '%s'\n", a);
            return 2;
        }
#undef FLAG
#undef NEEDVAL
#undef BAD
    }
    if (o->count < 0) o->count = o->mode == RN_BENCH_CONSUME ? 0 : 1000000;
    if (o->count == 0 && o->duration_s == 0 && o->mode != RN_BENCH_CONSUME) {
        fprintf(stderr, "runnel bench: --count 0 needs a --duration\n");
        return 2;
    }
    if (o->mode == RN_BENCH_E2E && o->window > 0) {
        fprintf(stderr, "runnel bench: e2e paces with --rate; --window is for produce\n");
        return 2;
    }
    return 0;
}

int rn_cli_bench(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    rn_bench_opts_t o = {
        .brokers = "127.0.0.1:9092",
        .topic = "runnel-bench",
        .partitions = 1,
        .count = -1, /* default below: 1000000 to send, everything there is to read */
        .size_bytes = 100,
        .acks = "all",
        .linger_ms = -1,
        .batch_size_bytes = -1,
        .batch_messages = -1,
        .compression = "none",
        .create = true,
        .progress_s = 1,
        .warmup_s = 1,
        .timeout_s = 30,
    };
    if (!strcmp(argv[0], "produce")) o.mode = RN_BENCH_PRODUCE;
    else if (!strcmp(argv[0], "consume")) o.mode = RN_BENCH_CONSUME;
    else if (!strcmp(argv[0], "e2e")) o.mode = RN_BENCH_E2E;
    else {
        fprintf(stderr, "runnel bench: unknown mode '%s' (produce, consume or e2e)\n", argv[0]);
        usage(stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    int rc = parse_opts(&o, argc - 1, argv + 1);
    if (rc) return rc;

    char err[512] = "";
    rd_kafka_conf_t *probe = rn__bench_conf(&o, true, err, sizeof(err));
    if (!probe) {
        fprintf(stderr, "runnel bench: %s\n", err);
        return 2;
    }
    rd_kafka_conf_destroy(probe);
    probe = rn__bench_conf(&o, false, err, sizeof(err));
    if (!probe) {
        fprintf(stderr, "runnel bench: %s\n", err);
        return 2;
    }
    rd_kafka_conf_destroy(probe);

    if (o.create && o.mode != RN_BENCH_CONSUME) {
        /* Not fatal: a broker without CreateTopics may still auto-create. */
        rc = create_topic(&o, err, sizeof(err));
        if (rc == 2 || rc == 3) {
            fprintf(stderr, "runnel bench: %s\n", err);
            return rc == 3 ? 1 : 2;
        }
        if (rc) fprintf(stderr, "runnel bench: warning: %s; going on with the topic as it is\n", err);
    }

    rn_bench_side_t *prod = malloc(sizeof(*prod)), *cons = malloc(sizeof(*cons));
    if (!prod || !cons) {
        fprintf(stderr, "runnel bench: out of memory\n");
        free(prod);
        free(cons);
        return 1;
    }
    rn__bench_side_init(prod);
    rn__bench_side_init(cons);
    double cpu0 = cpu_s();
    _Atomic bool stop = false;
    if (o.mode == RN_BENCH_PRODUCE) {
        rn_bench_run_t r = {.o = &o, .side = prod, .stop = &stop, .print_progress = o.progress_s > 0,
                            .t0_ns = rn__bench_now_ns()};
        rc = rn__bench_produce(&r);
    } else if (o.mode == RN_BENCH_CONSUME) {
        rn_bench_run_t r = {.o = &o, .side = cons, .stop = &stop, .print_progress = o.progress_s > 0,
                            .t0_ns = rn__bench_now_ns()};
        r.record_latency = o.from_end;
        rc = rn__bench_consume(&r, o.count);
    } else {
        rc = rn__bench_e2e(&o, prod, cons);
    }
    double cpu = cpu_s() - cpu0;
    report(&o, o.mode == RN_BENCH_CONSUME ? NULL : prod, o.mode == RN_BENCH_PRODUCE ? NULL : cons, cpu);
    free(prod);
    free(cons);
    return rc;
}
