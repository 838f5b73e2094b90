/*
 * rn_bench_int.h — internals shared by the `runnel bench` files.
 *
 *   rn_bench.c          options, topic setup, progress lines, the report (text or JSON)
 *   rn_bench_produce.c  the producer loop: asynchronous, windowed (send K, wait
 *                       for their K acks) or paced at a fixed rate
 *   rn_bench_consume.c  the consumer loop (simple consumer, no group) and `e2e`,
 *                       which runs a paced producer thread beside it
 *
 * Every message the bench produces carries a stamp in its first 16 bytes
 * (when the value is at least 16 bytes and is copied by librdkafka): a magic
 * and the CLOCK_MONOTONIC nanoseconds at which it was due to be sent. A
 * consumer on the same machine subtracts that stamp from its receive time,
 * which gives produce-to-consume latency without trusting broker timestamps.
 * With a target rate the stamp is the *intended* send time, so a producer
 * that falls behind shows up as latency (no coordinated omission).
 */
#ifndef RN_BENCH_INT_H
#define RN_BENCH_INT_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rn_hdr.h"

#define RN_BENCH_MAGIC UINT64_C(0x314843454e424e52) /* "RNBENCH1" little-endian */
#define RN_BENCH_STAMP_BYTES 16
/* Values up to this size are copied by librdkafka and stamped; larger ones
 * share one unstamped buffer, so 1 MB messages cost no client memcpy. */
#define RN_BENCH_COPY_MAX_BYTES 65536
#define RN_BENCH_CONF_MAX 64

typedef enum { RN_BENCH_PRODUCE, RN_BENCH_CONSUME, RN_BENCH_E2E } rn_bench_mode_t;

typedef struct {
    rn_bench_mode_t mode;
    const char *brokers;
    const char *topic;
    int partitions;         /* create the topic with this many; 0 = leave as is */
    int64_t count;          /* messages to produce / consume; 0 = no limit */
    double duration_s;      /* stop sending (consuming) after this; 0 = no limit */
    int size_bytes;         /* value size */
    const char *acks;       /* "0", "1", "all" */
    int linger_ms;          /* -1 = default (5 ms; 0 with --window or in e2e) */
    int batch_size_bytes;   /* -1 = librdkafka's default */
    int batch_messages;     /* -1 = librdkafka's default */
    const char *compression;
    int window;             /* 0 = asynchronous; K = send K, wait for their acks */
    double rate;            /* messages/s; 0 = as fast as possible */
    int fetch_messages;     /* consumer: size fetches for about this many messages; 0 = defaults */
    bool from_end;          /* consumer: start at the end instead of the beginning */
    bool create;            /* create the topic first (an existing one is fine) */
    bool json;
    double progress_s;      /* 0 = no progress line */
    double warmup_s;        /* e2e: ignore latencies of messages sent in the first seconds */
    double timeout_s;       /* give up draining / waiting this long after the last progress */
    int nconf;
    const char *conf[RN_BENCH_CONF_MAX]; /* -X key=value, in order */
} rn_bench_opts_t;

/* One side's counters. The atomics are read by the progress line of another
 * thread in e2e; the histograms belong to the thread that records them. */
typedef struct {
    _Atomic int64_t msgs;
    _Atomic int64_t bytes;
    _Atomic int64_t errors;
    _Atomic int64_t sent;      /* producer: handed to librdkafka */
    int64_t t_start_ns;        /* producer: first send; consumer: started */
    int64_t t_first_ns;        /* consumer: first message */
    int64_t t_last_ns;         /* last ack / last message */
    rn_hdr_t lat;              /* nanoseconds */
    rn_hdr_t lat_interval;     /* since the last progress line (same thread) */
    char first_error[256];
} rn_bench_side_t;

typedef struct {
    const rn_bench_opts_t *o;
    rn_bench_side_t *side;
    _Atomic bool *stop;        /* set by another thread to end the loop early */
    bool print_progress;       /* this loop prints the progress line */
    int64_t t0_ns;             /* the run's start, for the progress clock */
    int64_t count_start;       /* warmup: messages due before this instant carry no latency */
    bool record_latency;       /* consumer: record stamps (live reads, not a backlog) */
    /* e2e: the consumer stops once the producer is done and it has read every
     * acknowledged message; on_ready starts the producer once the consumer's
     * start offsets are fixed. */
    const rn_bench_side_t *peer;
    _Atomic bool *peer_done;
    void (*on_ready)(void *arg);
    void *ready_arg;
} rn_bench_run_t;

/* rn_bench.c */
rd_kafka_conf_t *rn__bench_conf(const rn_bench_opts_t *o, bool producer, char *err, size_t errlen);
int rn__bench_partition_count(rd_kafka_t *rk, const char *topic, char *err, size_t errlen);
void rn__bench_progress(const rn_bench_run_t *r, const char *what, int64_t now_ns, int64_t *prev_msgs,
                        int64_t *prev_ns, const rn_bench_side_t *other);
void rn__bench_side_init(rn_bench_side_t *s);
void rn__bench_error(rn_bench_side_t *s, const char *msg);
int64_t rn__bench_now_ns(void);

/* rn_bench_produce.c: returns 0 when every sent message was acknowledged. */
int rn__bench_produce(rn_bench_run_t *r);
/* rn_bench_consume.c */
int rn__bench_consume(rn_bench_run_t *r, int64_t expect);
int rn__bench_e2e(const rn_bench_opts_t *o, rn_bench_side_t *prod, rn_bench_side_t *cons);

#endif
