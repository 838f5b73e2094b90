/*
 * bench_log.c — storage engine benchmark.
 *
 *   bench_log [--dir PATH] [--mb N] [--producers N] [--partitions N] [--batch BYTES]
 *             [--partition-kb N] [--only partitions|durable] [--preallocate 0|1]
 *
 * Reports:
 *   1. append throughput in lazy mode (flush.messages large: no fsync per ack)
 *   2. append throughput in durable mode with N producers, each waiting for
 *      its sync ticket before the next append (acks=all on one node), and the
 *      resulting fsyncs/s and appends per fsync round (group commit); with
 *      --preallocate 1 (the broker's default) segments get written zeros ahead
 *   3. open time for P partitions after a clean shutdown and after a crash
 *   4. heap bytes per idle partition (mallinfo2; meaningless under ASan)
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_batch.h"
#include "rn_clock.h"
#include "rn_log.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

static const char *g_dir = "/tmp/rn_bench_log";
static int64_t g_mb = 256;
static int g_producers = 16;
static int g_partitions = 10000;
static int g_batch = 16384;
static int g_partition_kb = 16; /* data per partition in the many-partitions case */
static const char *g_only = NULL;
static bool g_preallocate = false;

static void rmrf(const char *p) {
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    if (system(cmd) != 0) fprintf(stderr, "rm failed\n");
}

/* One batch of ~bytes made of 100-byte records. */
static void make_batch(rn_buf_t *out, int bytes) {
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, out, 0, RN_COMPRESSION_NONE, 64 << 20);
    static uint8_t val[100];
    memset(val, 'x', sizeof(val));
    int n = bytes / 110;
    if (n < 1) n = 1;
    for (int i = 0; i < n; i++)
        rn_batch_builder_add(&b, rn_clock_wall_ms(), (rn_bytes_t){NULL, -1}, (rn_bytes_t){val, 100}, 0, NULL, NULL);
    if (rn_batch_builder_finish(&b) != RN_OK) abort();
}

static void dir_cfg(rn_logdir_config_t *c) {
    rn_logdir_config_default(c);
    c->path = g_dir;
    c->max_open_files = 4096;
    c->recovery_threads = 8;
    c->flush_scheduler_interval_ms = 100;
}

/* ---- 1. lazy ---- */
static void bench_lazy(void) {
    rmrf(g_dir);
    rn_logdir_config_t dc;
    dir_cfg(&dc);
    rn_logdir_t *dir;
    if (rn_logdir_open(&dc, &dir)) abort();
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.flush_messages = INT64_MAX;
    c.segment_bytes = 128 << 20;
    rn_log_t *log;
    if (rn_logdir_create_log(dir, "lazy", 0, &c, &log)) abort();
    rn_buf_t b;
    rn_buf_init(&b, 64 << 20);
    make_batch(&b, g_batch);
    int64_t total = g_mb << 20, done = 0, n = 0;
    int64_t t0 = rn_clock_mono_ns();
    rn_append_opts_t o = {.leader_epoch = 0};
    while (done < total) {
        rn_append_result_t r;
        if (rn_log_append(log, b.data, b.len, &o, &r)) abort();
        done += (int64_t)b.len;
        n++;
    }
    double s = (double)(rn_clock_mono_ns() - t0) / 1e9;
    printf("lazy:    %6.0f MB/s, %8.0f appends/s (%d-byte batches, page cache, no fsync per append)\n",
           (double)done / s / 1e6, (double)n / s, (int)b.len);
    rn_buf_free(&b);
    rn_logdir_close(dir);
}

/* ---- 2. durable ---- */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t synced;
} waiter_t;

static void on_sync(void *arg, uint64_t t, rn_err_t err) {
    waiter_t *w = arg;
    pthread_mutex_lock(&w->mu);
    if (t > w->synced) w->synced = t;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

typedef struct {
    rn_log_t *log;
    waiter_t *w;
    int64_t bytes_target;
    int64_t bytes, appends;
    rn_buf_t b;
} producer_t;

static void *producer(void *arg) {
    producer_t *p = arg;
    rn_append_opts_t o = {.leader_epoch = 0};
    while (p->bytes < p->bytes_target) {
        rn_append_result_t r;
        if (rn_log_append(p->log, p->b.data, p->b.len, &o, &r)) abort();
        pthread_mutex_lock(&p->w->mu);
        while (p->w->synced < r.sync_ticket) pthread_cond_wait(&p->w->cv, &p->w->mu);
        pthread_mutex_unlock(&p->w->mu);
        p->bytes += (int64_t)p->b.len;
        p->appends++;
    }
    return NULL;
}

static void bench_durable(int producers, int partitions) {
    rmrf(g_dir);
    rn_logdir_config_t dc;
    dir_cfg(&dc);
    rn_logdir_t *dir;
    if (rn_logdir_open(&dc, &dir)) abort();
    waiter_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    rn_logdir_on_sync(dir, on_sync, &w);
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.segment_bytes = 128 << 20;
    c.preallocate = g_preallocate;
    producer_t *ps = calloc((size_t)producers, sizeof(*ps));
    pthread_t *th = calloc((size_t)producers, sizeof(*th));
    for (int i = 0; i < producers; i++) {
        rn_log_t *log;
        rn_err_t e = rn_logdir_create_log(dir, "durable", i % partitions, &c, &log);
        if (e && e != RN_ERR_EXISTS) abort();
        ps[i].log = log;
        ps[i].w = &w;
        ps[i].bytes_target = (g_mb << 20) / 4 / producers;
        rn_buf_init(&ps[i].b, 64 << 20);
        make_batch(&ps[i].b, g_batch);
    }
    rn_logdir_stats_t s0, s1;
    rn_logdir_stats(dir, &s0);
    int64_t t0 = rn_clock_mono_ns();
    for (int i = 0; i < producers; i++) pthread_create(&th[i], NULL, producer, &ps[i]);
    int64_t bytes = 0, appends = 0;
    for (int i = 0; i < producers; i++) {
        pthread_join(th[i], NULL);
        bytes += ps[i].bytes;
        appends += ps[i].appends;
        rn_buf_free(&ps[i].b);
    }
    double s = (double)(rn_clock_mono_ns() - t0) / 1e9;
    rn_logdir_stats(dir, &s1);
    double rounds = (double)(s1.fsync_rounds - s0.fsync_rounds), syncs = (double)(s1.fsyncs - s0.fsyncs);
    printf("durable: %6.1f MB/s, %8.0f acked appends/s, %6.0f fsyncs/s, %5.1f appends/round, "
           "%.3f ms/round (%d producers waiting on tickets, %d partitions%s)\n",
           (double)bytes / s / 1e6, (double)appends / s, syncs / s, (double)appends / (rounds ? rounds : 1),
           rounds ? (double)(s1.fsync_ns_total - s0.fsync_ns_total) / rounds / 1e6 : 0.0, producers, partitions,
           g_preallocate ? ", preallocated" : "");
    free(ps);
    free(th);
    rn_logdir_close(dir);
}

/* ---- 3 & 4. many partitions ---- */
static void bench_partitions(void) {
    rmrf(g_dir);
    rn_logdir_config_t dc;
    dir_cfg(&dc);
    rn_logdir_t *dir;
    if (rn_logdir_open(&dc, &dir)) abort();
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.flush_messages = INT64_MAX; /* lazy: setup speed */
    rn_buf_t b;
    rn_buf_init(&b, 64 << 20);
    make_batch(&b, 4096);
    int64_t t0 = rn_clock_mono_ns();
    for (int p = 0; p < g_partitions; p++) {
        rn_log_t *log;
        if (rn_logdir_create_log(dir, "many", p, &c, &log)) abort();
        for (int i = 0; i < g_partition_kb / 4; i++) {
            rn_append_result_t r;
            rn_append_opts_t o = {.leader_epoch = 0};
            if (rn_log_append(log, b.data, b.len, &o, &r)) abort();
        }
    }
    printf("setup:   %d partitions x %d KiB in %.2f s\n", g_partitions, g_partition_kb,
           (double)(rn_clock_mono_ns() - t0) / 1e9);
    rn_logdir_close(dir);

    /* clean open, with heap accounting */
    struct mallinfo2 m0 = mallinfo2();
    t0 = rn_clock_mono_ns();
    if (rn_logdir_open(&dc, &dir)) abort();
    double clean_ms = (double)(rn_clock_mono_ns() - t0) / 1e6;
    struct mallinfo2 m1 = mallinfo2();
    rn_logdir_stats_t st;
    rn_logdir_stats(dir, &st);
    printf("open:    %d partitions after a clean shutdown: %.1f ms (%.1f us/partition), %llu open files\n",
           g_partitions, clean_ms, clean_ms * 1000 / g_partitions, (unsigned long long)st.open_files);
    printf("memory:  %.0f heap bytes per idle partition (1 segment; sizeof rn_log_t %zu, rn__segment_t %zu)\n",
           (double)(m1.uordblks - m0.uordblks) / g_partitions, sizeof(rn_log_t), sizeof(rn__segment_t));
    rn__logdir_crash(dir);
    t0 = rn_clock_mono_ns();
    if (rn_logdir_open(&dc, &dir)) abort();
    double crash_ms = (double)(rn_clock_mono_ns() - t0) / 1e6;
    printf("open:    %d partitions after a crash (no recovery point: every batch CRC-checked, %d threads): %.1f ms\n",
           g_partitions, dc.recovery_threads, crash_ms);
    rn_buf_free(&b);
    rn_logdir_close(dir);
    rmrf(g_dir);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir")) g_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--mb")) g_mb = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--partition-kb")) g_partition_kb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only")) g_only = argv[i + 1];
        else if (!strcmp(argv[i], "--producers")) g_producers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--partitions")) g_partitions = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) g_batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--preallocate")) g_preallocate = atoi(argv[i + 1]) != 0;
        else {
            fprintf(stderr, "usage: bench_log [--dir PATH] [--mb N] [--producers N] [--partitions N] [--batch B] "
                            "[--partition-kb N] [--only partitions|durable] [--preallocate 0|1]\n");
            return 2;
        }
    }
    rn_log_set_level(RN_LOG_WARN);
    if (g_only && !strcmp(g_only, "durable")) {
        bench_durable(1, 1);
        bench_durable(g_producers, 1);
        bench_durable(g_producers, g_producers);
        return 0;
    }
    if (!g_only || strcmp(g_only, "partitions")) {
        bench_lazy();
        bench_durable(1, 1);
        bench_durable(g_producers, 1);
        bench_durable(g_producers, g_producers);
    }
    bench_partitions();
    return 0;
}
