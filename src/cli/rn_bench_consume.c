/*
 * rn_bench_consume.c — the consumer loop of `runnel bench`, and `e2e`.
 *
 * The consumer is librdkafka's simple (legacy) consumer: every partition of
 * the topic is started on one queue with rd_kafka_consume_start_queue(), no
 * consumer group, no offset commits — the broker is measured serving Fetch,
 * not coordinating a group. librdkafka prefetches (queued.min.messages), so
 * the loop mostly drains a local queue; throughput runs from the first
 * message to the last, which leaves connection setup out.
 *
 * The loop blocks for one message, then takes whatever else is already
 * queued without waiting: rd_kafka_consume_batch_queue() alone would wait
 * for a full batch or its timeout, which would show up as latency.
 *
 * It stops at --count messages, after --duration, when every partition has
 * reported end-of-partition (reading a backlog), when nothing arrived for
 * --timeout, or (e2e) once the producer is done and every acknowledged
 * message has been read.
 *
 * e2e: the consumer fixes its start offsets at the current high watermarks,
 * then starts the paced producer on a second thread; each message's stamp
 * (its due time) against its receive time is the produce-to-consume latency.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_bench_int.h"

#define BATCH_MAX 1024

typedef struct {
    rn_bench_run_t *r;
    int64_t next_progress_ns, prev_msgs, prev_ns;
} ticker_t;

static void tick(ticker_t *t, int64_t now, bool force) {
    rn_bench_run_t *r = t->r;
    if (!r->print_progress || (!force && now < t->next_progress_ns)) return;
    rn__bench_progress(r, "consume", now, &t->prev_msgs, &t->prev_ns, r->peer);
    rn_hdr_init(&r->side->lat_interval);
    t->next_progress_ns = now + (int64_t)(r->o->progress_s * 1e9);
}

static void take(rn_bench_run_t *r, rd_kafka_message_t *m, int64_t now, char *eof, int *neof, int nparts) {
    rn_bench_side_t *s = r->side;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && m->partition < nparts && !eof[m->partition]) {
            eof[m->partition] = 1;
            (*neof)++;
        }
    } else if (m->err) {
        char msg[256];
        snprintf(msg, sizeof(msg), "consume [%d]: %s", (int)m->partition, rd_kafka_message_errstr(m));
        rn__bench_error(s, msg);
    } else {
        if (!s->t_first_ns) s->t_first_ns = now;
        s->t_last_ns = now;
        atomic_fetch_add_explicit(&s->msgs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->bytes, (int64_t)m->len, memory_order_relaxed);
        if (m->partition >= 0 && m->partition < nparts && eof[m->partition]) {
            eof[m->partition] = 0;
            (*neof)--;
        }
        uint64_t magic;
        int64_t sent;
        if (r->record_latency && m->len >= RN_BENCH_STAMP_BYTES) {
            memcpy(&magic, m->payload, 8);
            memcpy(&sent, (const char *)m->payload + 8, 8);
            if (magic == RN_BENCH_MAGIC && sent >= r->count_start) {
                uint64_t lat = now > sent ? (uint64_t)(now - sent) : 0;
                rn_hdr_record(&s->lat, lat);
                rn_hdr_record(&s->lat_interval, lat);
            }
        }
    }
    rd_kafka_message_destroy(m);
}

int rn__bench_consume(rn_bench_run_t *r, int64_t expect) {
    const rn_bench_opts_t *o = r->o;
    rn_bench_side_t *s = r->side;
    bool live = o->from_end || o->mode == RN_BENCH_E2E;
    char err[512];
    rd_kafka_conf_t *c = rn__bench_conf(o, false, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "runnel bench: %s\n", err);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "runnel bench: cannot create a consumer: %s\n", err);
        return 1;
    }
    int nparts = rn__bench_partition_count(rk, o->topic, err, sizeof(err));
    if (nparts <= 0) {
        fprintf(stderr, "runnel bench: %s\n", err);
        rd_kafka_destroy(rk);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    char *eof = calloc((size_t)nparts, 1);
    rd_kafka_message_t **ms = calloc(BATCH_MAX, sizeof(*ms));
    int started = 0, rc = 0;
    if (!eof || !ms) {
        fprintf(stderr, "runnel bench: out of memory\n");
        rc = 1;
        goto done;
    }
    for (int p = 0; p < nparts; p++) {
        int64_t start = RD_KAFKA_OFFSET_BEGINNING;
        if (live) {
            /* An explicit offset, not OFFSET_END: what the producer sends
             * from now on is read even before the consumer has resolved
             * "end" with the broker. */
            int64_t lo = 0, hi = 0;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, o->topic, p, &lo, &hi, 10000);
            if (e) {
                fprintf(stderr, "runnel bench: watermarks of %s [%d]: %s\n", o->topic, p, rd_kafka_err2str(e));
                rc = 1;
                goto done;
            }
            start = hi;
        }
        if (rd_kafka_consume_start_queue(rkt, p, start, q) == -1) {
            fprintf(stderr, "runnel bench: cannot start consuming %s [%d]: %s\n", o->topic, p,
                    rd_kafka_err2str(rd_kafka_last_error()));
            rc = 1;
            goto done;
        }
        started = p + 1;
    }

    int64_t start = rn__bench_now_ns();
    s->t_start_ns = start;
    ticker_t t = {.r = r, .prev_ns = start, .next_progress_ns = start + (int64_t)(o->progress_s * 1e9)};
    if (r->on_ready) r->on_ready(r->ready_arg);
    int64_t end = o->duration_s > 0 && o->mode == RN_BENCH_CONSUME ? start + (int64_t)(o->duration_s * 1e9) : INT64_MAX;
    int64_t idle_ns = (int64_t)(o->timeout_s * 1e9);
    int64_t last_msg = start;
    int neof = 0;
    for (;;) {
        int64_t msgs = atomic_load_explicit(&s->msgs, memory_order_relaxed);
        if (expect > 0 && msgs >= expect) break;
        if (r->peer_done && atomic_load(r->peer_done) && msgs >= atomic_load(&r->peer->msgs)) break;
        if (!live && neof == nparts) break;
        if (atomic_load_explicit(r->stop, memory_order_relaxed)) break;
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 100);
        int64_t now = rn__bench_now_ns();
        if (m) {
            take(r, m, now, eof, &neof, nparts);
            ssize_t n = rd_kafka_consume_batch_queue(q, 0, ms, BATCH_MAX);
            for (ssize_t i = 0; i < n; i++) take(r, ms[i], now, eof, &neof, nparts);
            if (atomic_load_explicit(&s->msgs, memory_order_relaxed) != msgs) last_msg = now;
        }
        tick(&t, now, false);
        if (now >= end) break;
        if (now - last_msg > idle_ns) {
            if (expect > 0 || r->peer_done) {
                char msg[128];
                snprintf(msg, sizeof(msg), "nothing to read for %.0f s", o->timeout_s);
                rn__bench_error(s, msg);
            }
            break;
        }
    }
    if (r->print_progress && atomic_load(&s->msgs) != t.prev_msgs) tick(&t, rn__bench_now_ns(), true);
    if (expect > 0 && atomic_load(&s->msgs) < expect) {
        fprintf(stderr, "runnel bench: read %" PRId64 " of %" PRId64 " messages\n", atomic_load(&s->msgs), expect);
        rc = 1;
    }
done:
    for (int p = 0; p < started; p++) rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(eof);
    free(ms);
    if (atomic_load(&s->errors) || atomic_load(&s->msgs) == 0) rc = rc ? rc : 1;
    return rc;
}

/* ---- e2e -------------------------------------------------------------------------- */

typedef struct {
    rn_bench_run_t prod;
    rn_bench_run_t *cons;
    _Atomic bool done;
    int rc;
    pthread_t thread;
    bool running;
} e2e_t;

static void *producer_main(void *arg) {
    e2e_t *e = arg;
    e->rc = rn__bench_produce(&e->prod);
    atomic_store(&e->done, true);
    return NULL;
}

/* Called by the consumer once its start offsets are fixed. */
static void start_producer(void *arg) {
    e2e_t *e = arg;
    int64_t now = rn__bench_now_ns();
    e->prod.t0_ns = now;
    e->prod.count_start = now + (int64_t)(e->prod.o->warmup_s * 1e9);
    e->cons->count_start = e->prod.count_start;
    if (pthread_create(&e->thread, NULL, producer_main, e) == 0) {
        e->running = true;
    } else {
        fprintf(stderr, "runnel bench: cannot start the producer thread\n");
        e->rc = 1;
        atomic_store(&e->done, true);
    }
}

int rn__bench_e2e(const rn_bench_opts_t *o, rn_bench_side_t *prod, rn_bench_side_t *cons) {
    _Atomic bool stop_prod = false, stop_cons = false;
    e2e_t *e = calloc(1, sizeof(*e));
    if (!e) return 1;
    e->prod = (rn_bench_run_t){.o = o, .side = prod, .stop = &stop_prod};
    atomic_store(&e->done, false);
    rn_bench_run_t cr = {.o = o,
                         .side = cons,
                         .stop = &stop_cons,
                         .print_progress = o->progress_s > 0,
                         .t0_ns = rn__bench_now_ns(),
                         .count_start = INT64_MAX,
                         .record_latency = true,
                         .peer = prod,
                         .peer_done = &e->done,
                         .on_ready = start_producer,
                         .ready_arg = e};
    e->cons = &cr;
    int rc = rn__bench_consume(&cr, 0);
    /* The consumer may give up first (broker gone): stop the producer too. */
    atomic_store(&stop_prod, true);
    if (e->running) pthread_join(e->thread, NULL);
    if (e->rc && !rc) rc = e->rc;
    free(e);
    return rc;
}
