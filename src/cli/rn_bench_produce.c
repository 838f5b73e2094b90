/*
 * rn_bench_produce.c — the producer loop of `runnel bench`.
 *
 * Three shapes, as kafka-producer-perf-test and rdkafka_performance have them:
 *
 *   asynchronous (--window 0)  hand messages to librdkafka as fast as its
 *                              queue takes them (or at --rate); it batches them
 *                              by linger.ms / batch.size and keeps many
 *                              requests in flight
 *   windowed (--window K)      enqueue K messages in one rd_kafka_produce_batch()
 *                              call to one partition (they leave as one batch),
 *                              then wait until all K are acknowledged: the
 *                              Kafka paper's "batch size", a synchronous client
 *   paced (--rate R)           either of the above, each message (window) due at
 *                              start + i/R; the stamp is the due time
 *
 * The ack latency of a message is from the moment it was handed to
 * librdkafka (or was due, when paced) to its delivery report. Delivery
 * reports are served by rd_kafka_poll() on this thread, so the histograms
 * need no locking. Throughput is acknowledged messages over the time from the
 * first send to the last acknowledgement.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_bench_int.h"

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    rn_bench_run_t *r = opaque;
    rn_bench_side_t *s = r->side;
    int64_t now = rn__bench_now_ns();
    if (m->err) {
        char msg[256];
        snprintf(msg, sizeof(msg), "delivery failed: %s", rd_kafka_err2str(m->err));
        rn__bench_error(s, msg);
    } else {
        atomic_fetch_add_explicit(&s->msgs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->bytes, (int64_t)m->len, memory_order_relaxed);
        int64_t sent = (int64_t)(intptr_t)m->_private;
        if (sent >= r->count_start) {
            uint64_t lat = now > sent ? (uint64_t)(now - sent) : 0;
            rn_hdr_record(&s->lat, lat);
            rn_hdr_record(&s->lat_interval, lat);
        }
    }
    s->t_last_ns = now;
}

static void stamp(char *buf, bool stamped, int64_t t) {
    if (!stamped) return;
    uint64_t magic = RN_BENCH_MAGIC;
    memcpy(buf, &magic, 8);
    memcpy(buf + 8, &t, 8);
}

/* Sleep (serving delivery reports) until `due`. */
static void wait_until(rd_kafka_t *rk, int64_t due) {
    for (;;) {
        int64_t now = rn__bench_now_ns();
        if (now >= due) return;
        int64_t left = due - now;
        if (left > 2000000) {
            rd_kafka_poll(rk, 1);
        } else {
            rd_kafka_poll(rk, 0);
            struct timespec ts = {.tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
    }
}

typedef struct {
    rn_bench_run_t *r;
    int64_t next_progress_ns, prev_msgs, prev_ns;
} ticker_t;

static void tick(ticker_t *t, int64_t now) {
    rn_bench_run_t *r = t->r;
    if (!r->print_progress || now < t->next_progress_ns) return;
    rn__bench_progress(r, "produce", now, &t->prev_msgs, &t->prev_ns, NULL);
    rn_hdr_init(&r->side->lat_interval);
    t->next_progress_ns = now + (int64_t)(r->o->progress_s * 1e9);
}

static int64_t in_flight(const rn_bench_side_t *s) {
    return atomic_load(&s->sent) - atomic_load(&s->msgs) - atomic_load(&s->errors);
}

int rn__bench_produce(rn_bench_run_t *r) {
    const rn_bench_opts_t *o = r->o;
    rn_bench_side_t *s = r->side;
    char err[512];
    rd_kafka_conf_t *c = rn__bench_conf(o, true, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "runnel bench: %s\n", err);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_opaque(c, r);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "runnel bench: cannot create a producer: %s\n", err);
        return 1;
    }
    /* Metadata first: fails fast when the broker is unreachable, and the
     * connection is up before the clock starts. */
    int nparts = rn__bench_partition_count(rk, o->topic, err, sizeof(err));
    if (nparts <= 0) {
        fprintf(stderr, "runnel bench: %s\n", err);
        rd_kafka_destroy(rk);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    size_t buflen = o->size_bytes < RN_BENCH_STAMP_BYTES ? RN_BENCH_STAMP_BYTES : (size_t)o->size_bytes;
    char *buf = malloc(buflen);
    int window = o->window;
    rd_kafka_message_t *batch = window > 0 ? calloc((size_t)window, sizeof(*batch)) : NULL;
    if (!buf || (window > 0 && !batch)) {
        fprintf(stderr, "runnel bench: out of memory\n");
        free(buf);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return 1;
    }
    /* The same value for every message, as kafka-producer-perf-test does:
     * letters, so compression has something to do but not everything. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < buflen; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (char)('a' + x % 26);
    }
    bool copy = o->size_bytes <= RN_BENCH_COPY_MAX_BYTES;
    bool stamped = copy && o->size_bytes >= RN_BENCH_STAMP_BYTES;
    int flags = copy ? RD_KAFKA_MSG_F_COPY : 0;

    ticker_t t = {.r = r};
    int64_t start = rn__bench_now_ns();
    s->t_start_ns = start;
    t.prev_ns = start;
    t.next_progress_ns = start + (int64_t)(o->progress_s * 1e9);
    int64_t end = o->duration_s > 0 ? start + (int64_t)(o->duration_s * 1e9) : INT64_MAX;
    int64_t limit = o->count > 0 ? o->count : INT64_MAX;
    double ns_per_msg = o->rate > 0 ? 1e9 / o->rate : 0;
    int64_t sent = 0; /* attempted */
    int64_t enq = 0;  /* taken by librdkafka: each ends in a delivery report */
    int partition = 0;
    int rc = 0;

    while (sent < limit && !atomic_load_explicit(r->stop, memory_order_relaxed)) {
        int64_t now = rn__bench_now_ns();
        if (ns_per_msg > 0) {
            int64_t due = start + (int64_t)((double)sent * ns_per_msg);
            if (due >= end) break;
            if (due > now) wait_until(rk, due);
            now = due;
        } else if (now >= end) {
            break;
        }
        if (window > 0) {
            int k = (int)(limit - sent < window ? limit - sent : window);
            stamp(buf, stamped, now);
            for (int i = 0; i < k; i++) {
                memset(&batch[i], 0, sizeof(batch[i]));
                batch[i].payload = buf;
                batch[i].len = (size_t)o->size_bytes;
                batch[i]._private = (void *)(intptr_t)now;
            }
            int n = rd_kafka_produce_batch(rkt, partition, flags, batch, k);
            for (int i = 0; i < k; i++)
                if (batch[i].err) {
                    char msg[256];
                    snprintf(msg, sizeof(msg), "produce: %s", rd_kafka_err2str(batch[i].err));
                    rn__bench_error(s, msg);
                }
            sent += k;
            enq += n;
            atomic_store(&s->sent, enq);
            partition = (partition + 1) % nparts;
            int64_t last_change = rn__bench_now_ns(), last_acked = atomic_load(&s->msgs);
            while (in_flight(s) > 0) {
                rd_kafka_poll(rk, 100);
                int64_t n2 = rn__bench_now_ns();
                tick(&t, n2);
                if (atomic_load(&s->msgs) != last_acked) {
                    last_acked = atomic_load(&s->msgs);
                    last_change = n2;
                } else if (n2 - last_change > (int64_t)(o->timeout_s * 1e9)) {
                    break; /* reported as unacknowledged below */
                }
            }
            if (in_flight(s) > 0) break;
            continue;
        }
        stamp(buf, stamped, now);
        for (;;) {
            if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, flags, buf, (size_t)o->size_bytes, NULL, 0,
                                 (void *)(intptr_t)now) == 0)
                break;
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                char msg[256];
                snprintf(msg, sizeof(msg), "produce: %s", rd_kafka_err2str(e));
                rn__bench_error(s, msg);
                rc = 1;
                goto drain;
            }
            rd_kafka_poll(rk, 1);
            tick(&t, rn__bench_now_ns());
        }
        sent++;
        enq++;
        if ((sent & 127) == 0) {
            atomic_store_explicit(&s->sent, enq, memory_order_relaxed);
            rd_kafka_poll(rk, 0);
            tick(&t, rn__bench_now_ns());
        }
    }
drain:
    atomic_store(&s->sent, enq);
    {
        int64_t last_change = rn__bench_now_ns(), last_done = -1;
        while (in_flight(s) > 0) {
            rd_kafka_flush(rk, 100);
            int64_t now = rn__bench_now_ns();
            tick(&t, now);
            int64_t done = atomic_load(&s->msgs) + atomic_load(&s->errors);
            if (done != last_done) {
                last_done = done;
                last_change = now;
            } else if (now - last_change > (int64_t)(o->timeout_s * 1e9)) {
                int64_t left = in_flight(s);
                char msg[128];
                snprintf(msg, sizeof(msg), "%" PRId64 " messages not acknowledged after %.0f s", left, o->timeout_s);
                fprintf(stderr, "runnel bench: %s\n", msg);
                rn__bench_error(s, msg);
                rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_poll(rk, 500);
                break;
            }
        }
    }
    if (r->print_progress) {
        int64_t now = rn__bench_now_ns();
        t.next_progress_ns = 0;
        tick(&t, now);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(batch);
    free(buf);
    if (atomic_load(&s->errors) || atomic_load(&s->msgs) == 0) rc = 1;
    return rc;
}
