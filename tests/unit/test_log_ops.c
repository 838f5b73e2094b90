/* Unit tests for src/log: durability (group commit, lazy mode, offline, out of
 * space), idempotent producers, retention and DeleteRecords. */
#include <pthread.h>
#include <sys/mount.h>

#include "rn_test.h"
#include "test_log_util.h"

static rn_log_config_t cfg_default(void) {
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.retention_ms = -1;
    return c;
}

/* ---- group commit -------------------------------------------------------------- */

typedef struct {
    rn_log_t *log;
    int n;
    uint64_t max_ticket;
    int failures;
} appender_t;

static void *appender(void *arg) {
    appender_t *a = arg;
    uint64_t last = 0;
    for (int i = 0; i < a->n; i++) {
        rn_append_result_t res;
        if (tl_append(a->log, 1, 1000, 100, &res) != RN_OK || res.sync_ticket <= last) a->failures++;
        last = res.sync_ticket;
    }
    a->max_ticket = last;
    return NULL;
}

typedef struct {
    pthread_mutex_t mu;
    uint64_t last;
    int calls, nonmonotonic, errors;
} listener_t;

static void on_sync(void *arg, uint64_t ticket, rn_err_t err) {
    listener_t *l = arg;
    pthread_mutex_lock(&l->mu);
    if (err) l->errors++;
    else if (ticket < l->last) l->nonmonotonic++;
    if (!err) l->last = ticket;
    l->calls++;
    pthread_mutex_unlock(&l->mu);
}

RN_TEST(group_commit_many_appends_few_fsyncs) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    listener_t l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rn_logdir_on_sync(dir, on_sync, &l);
    rn_log_config_t c = cfg_default();
    enum { T = 8, N = 300 };
    appender_t a[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        rn_log_t *log;
        ASSERT_EQ(rn_logdir_create_log(dir, "gc", i % 4, &c, &log) == RN_OK || log != NULL, 1);
        a[i] = (appender_t){.log = log, .n = N};
        pthread_create(&th[i], NULL, appender, &a[i]);
    }
    uint64_t max_ticket = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(a[i].failures, 0);
        if (a[i].max_ticket > max_ticket) max_ticket = a[i].max_ticket;
    }
    ASSERT_EQ(max_ticket, T * N); /* one ticket per append */
    ASSERT_TRUE(tl_wait_ticket(dir, max_ticket));
    for (int p = 0; p < 4; p++) {
        rn_log_t *log = rn_logdir_find(dir, "gc", p);
        ASSERT_EQ(rn_log_high_watermark(log), rn_log_end_offset(log));
        ASSERT_EQ(rn_log_end_offset(log), 2 * N);
    }
    rn_logdir_stats_t st;
    rn_logdir_stats(dir, &st);
    printf("  group commit: %llu appends, %llu fsync rounds, %llu fsyncs\n", (unsigned long long)st.appends,
           (unsigned long long)st.fsync_rounds, (unsigned long long)st.fsyncs);
    ASSERT_EQ(st.appends, T * N);
    ASSERT_LT(st.fsync_rounds, st.appends);
    pthread_mutex_lock(&l.mu);
    ASSERT_EQ(l.nonmonotonic, 0);
    ASSERT_EQ(l.errors, 0);
    ASSERT_EQ(l.last, max_ticket);
    pthread_mutex_unlock(&l.mu);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(durable_high_watermark_waits_for_sync) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "hw", 0, &c, &log), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 5, 1, 10, &res), RN_OK);
    ASSERT_GT(res.sync_ticket, 0);
    ASSERT_TRUE(tl_wait_ticket(dir, res.sync_ticket));
    /* the listener runs after the HW moved */
    for (int i = 0; i < 1000 && rn_log_high_watermark(log) < 5; i++) usleep(1000);
    ASSERT_EQ(rn_log_high_watermark(log), 5);
    rn_log_read_t r;
    ASSERT_EQ(rn_log_read(log, 0, 1 << 20, true, rn_log_high_watermark(log), &r), RN_OK);
    ASSERT_GT(r.len, 0);
    rn_fileref_release(r.file);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(lazy_mode_no_tickets_hw_at_end) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    c.flush_messages = 50;
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "lazy", 0, &c, &log), RN_OK);
    for (int i = 0; i < 120; i++) {
        rn_append_result_t res;
        ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK);
        ASSERT_EQ(res.sync_ticket, 0);
        ASSERT_EQ(rn_log_high_watermark(log), i + 1);
    }
    /* flush.messages = 50: the flusher syncs in the background */
    rn_logdir_stats_t st;
    for (int i = 0; i < 2000; i++) {
        rn_logdir_stats(dir, &st);
        if (st.fsync_rounds >= 1) break;
        usleep(1000);
    }
    ASSERT_GE(st.fsync_rounds, 1); /* one per 50 messages at most, fewer if the flusher lags */
    ASSERT_LT(st.fsync_rounds, 60);
    /* flush.ms */
    c.flush_messages = INT64_MAX;
    c.flush_ms = 30;
    rn_log_t *log2;
    ASSERT_EQ(rn_logdir_create_log(dir, "lazyms", 0, &c, &log2), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log2, 1, 1, 10, &res), RN_OK);
    uint64_t rounds = st.fsync_rounds;
    for (int i = 0; i < 2000; i++) {
        rn_logdir_stats(dir, &st);
        if (st.fsync_rounds > rounds) break;
        usleep(1000);
    }
    ASSERT_GT(st.fsync_rounds, rounds);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

/* ---- failures --------------------------------------------------------------------- */

static atomic_int inject_write, inject_fsync;
static int hook(int op, int fd, size_t len) {
    if (op == RN__IO_WRITE) return atomic_load(&inject_write);
    if (op == RN__IO_FSYNC) return atomic_load(&inject_fsync);
    return 0;
}

RN_TEST(fsync_failure_takes_dir_offline) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    listener_t l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    rn_logdir_on_sync(dir, on_sync, &l);
    rn_log_config_t c = cfg_default();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "off", 0, &c, &log), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK);
    ASSERT_TRUE(tl_wait_ticket(dir, res.sync_ticket));
    rn__log_io_hook = hook;
    atomic_store(&inject_fsync, EIO);
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK);
    for (int i = 0; i < 2000 && !rn_logdir_offline(dir); i++) usleep(1000);
    ASSERT_TRUE(rn_logdir_offline(dir));
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&l.mu);
        int e = l.errors;
        pthread_mutex_unlock(&l.mu);
        if (e) break;
        usleep(1000);
    }
    pthread_mutex_lock(&l.mu);
    ASSERT_EQ(l.errors, 1);
    pthread_mutex_unlock(&l.mu);
    ASSERT_LT(rn_logdir_synced_ticket(dir), res.sync_ticket);
    ASSERT_EQ(rn_log_high_watermark(log), 1);
    atomic_store(&inject_fsync, 0); /* never retried, even once the disk is fine */
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_ERR_KAFKA_STORAGE_ERROR);
    rn_log_read_t r;
    ASSERT_EQ(rn_log_read(log, 0, 100, true, INT64_MAX, &r), RN_ERR_KAFKA_STORAGE_ERROR);
    rn__log_io_hook = NULL;
    rn_logdir_close(dir); /* no clean marker */
    char p[600];
    snprintf(p, sizeof(p), "%s/.runnel_cleanshutdown", path);
    ASSERT_EQ(tl_file_size(p), -1);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    ASSERT_FALSE(rn_logdir_offline(dir));
    ASSERT_EQ(rn_log_end_offset(rn_logdir_find(dir, "off", 0)), 2);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(write_failure_takes_dir_offline) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "woff", 0, &c, &log), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK);
    rn__log_io_hook = hook;
    atomic_store(&inject_write, EIO);
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_ERR_KAFKA_STORAGE_ERROR);
    atomic_store(&inject_write, 0);
    rn__log_io_hook = NULL;
    ASSERT_TRUE(rn_logdir_offline(dir));
    ASSERT_EQ(rn_log_end_offset(log), 1);
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_ERR_KAFKA_STORAGE_ERROR);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(enospc_injected_truncates_back_and_resumes) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    c.index_interval_bytes = 64;
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "full", 0, &c, &log), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 3, 1, 100, &res), RN_OK);
    char p[600];
    rn__segment_path(log, 0, ".log", p, sizeof(p));
    int64_t size = tl_file_size(p);
    rn__log_io_hook = hook;
    atomic_store(&inject_write, ENOSPC);
    ASSERT_EQ(tl_append(log, 3, 1, 100, &res), RN_ERR_NOSPACE);
    atomic_store(&inject_write, 0);
    rn__log_io_hook = NULL;
    ASSERT_FALSE(rn_logdir_offline(dir));
    ASSERT_EQ(tl_file_size(p), size);
    ASSERT_EQ(rn_log_end_offset(log), 3);
    rn_log_read_t r;
    ASSERT_EQ(rn_log_read(log, 0, 1 << 20, true, INT64_MAX, &r), RN_OK);
    ASSERT_EQ(r.len, size);
    rn_fileref_release(r.file);
    ASSERT_EQ(tl_append(log, 3, 1, 100, &res), RN_OK);
    ASSERT_EQ(res.base_offset, 3);
    ASSERT_EQ(rn_log_read(log, 4, 1 << 20, true, INT64_MAX, &r), RN_OK);
    ASSERT_EQ(r.file_pos, size);
    rn_fileref_release(r.file);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(min_free_bytes_refuses_appends) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    dc.min_free_bytes = INT64_MAX / 4;
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "minfree", 0, &c, &log), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_ERR_NOSPACE);
    ASSERT_FALSE(rn_logdir_offline(dir));
    ASSERT_EQ(rn_log_end_offset(log), 0);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

static rn_err_t idem_append(rn_log_t *log, int32_t seq) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    tl_batch_opts_t bo = {.producer_id = 7, .producer_epoch = 0, .base_sequence = seq};
    tl_batch(&b, 3, 1, seq, 10, &bo);
    rn_append_opts_t o = {.leader_epoch = 0};
    rn_append_result_t res;
    rn_err_t err = rn_log_append(log, b.data, b.len, &o, &res);
    rn_buf_free(&b);
    return err;
}

RN_TEST(full_disk_refuses_pipelined_idempotent_batches_alike) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "idemfull", 0, &c, &log), RN_OK);
    ASSERT_EQ(idem_append(log, 0), RN_OK);
    dir->cfg.min_free_bytes = INT64_MAX / 4; /* the disk fills */
    ASSERT_EQ(idem_append(log, 3), RN_ERR_NOSPACE);
    ASSERT_EQ(idem_append(log, 6), RN_ERR_NOSPACE); /* not OUT_OF_ORDER_SEQUENCE_NUMBER */
    dir->cfg.min_free_bytes = 0; /* space back: the retries go in, in order */
    ASSERT_EQ(idem_append(log, 3), RN_OK);
    ASSERT_EQ(idem_append(log, 6), RN_OK);
    ASSERT_EQ(rn_log_end_offset(log), 9);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(enospc_on_tiny_tmpfs) {
    const char *path = tl_mkdtemp();
    if (mount("tmpfs", path, "tmpfs", 0, "size=256k") != 0) {
        printf("  skipped: mount(tmpfs) not permitted here (%s); ENOSPC is covered by injection\n", strerror(errno));
        tl_rmrf(path);
        return;
    }
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "tiny", 0, &c, &log), RN_OK);
    rn_append_result_t res;
    rn_err_t err = RN_OK;
    int64_t end = 0;
    uint64_t ticket = 0;
    for (int i = 0; i < 1000 && err == RN_OK; i++) {
        err = tl_append(log, 4, 1, 1000, &res);
        if (!err) {
            end = res.last_offset + 1;
            ticket = res.sync_ticket;
        }
    }
    ASSERT_EQ(err, RN_ERR_NOSPACE);
    ASSERT_FALSE(rn_logdir_offline(dir));
    ASSERT_EQ(rn_log_end_offset(log), end);
    ASSERT_TRUE(tl_wait_ticket(dir, ticket));
    for (int i = 0; i < 1000 && rn_log_high_watermark(log) < end; i++) usleep(1000);
    rn_log_read_t r;
    ASSERT_EQ(rn_log_read(log, end - 1, 1 << 20, true, INT64_MAX, &r), RN_OK);
    ASSERT_GT(r.len, 0);
    rn_fileref_release(r.file);
    ASSERT_EQ(rn_log_delete_records(log, end - 1, &end), RN_OK); /* frees nothing in one segment... */
    rn_logdir_close(dir);
    umount(path);
    tl_rmrf(path);
}

/* ---- idempotent producers -------------------------------------------------------- */

static rn_err_t idem(rn_log_t *log, int64_t pid, int16_t epoch, int32_t seq, int n, rn_append_result_t *res) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    tl_batch_opts_t o = {.producer_id = pid, .producer_epoch = epoch, .base_sequence = seq};
    tl_batch(&b, n, 1000, seq, 20, &o);
    rn_append_opts_t ao = {.leader_epoch = 0};
    rn_err_t err = rn_log_append(log, b.data, b.len, &ao, res);
    rn_buf_free(&b);
    return err;
}

RN_TEST(idempotent_producer_rules) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    c.segment_bytes = 600;
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "idem", 0, &c, &log), RN_OK);
    rn_append_result_t r;
    ASSERT_EQ(idem(log, 7, 0, 0, 3, &r), RN_OK); /* 0..2 */
    ASSERT_EQ(r.base_offset, 0);
    ASSERT_EQ(idem(log, 7, 0, 3, 2, &r), RN_OK); /* 3..4 */
    ASSERT_EQ(idem(log, 9, 4, 100, 1, &r), RN_OK); /* unknown producer: any sequence */
    ASSERT_EQ(r.base_offset, 5);
    /* duplicates of retained batches: original offsets, nothing written */
    ASSERT_EQ(idem(log, 7, 0, 0, 3, &r), RN_OK);
    ASSERT_TRUE(r.duplicate);
    ASSERT_EQ(r.base_offset, 0);
    ASSERT_EQ(r.last_offset, 2);
    ASSERT_EQ(idem(log, 7, 0, 3, 2, &r), RN_OK);
    ASSERT_TRUE(r.duplicate);
    ASSERT_EQ(r.base_offset, 3);
    ASSERT_EQ(rn_log_end_offset(log), 6);
    /* gaps and overlaps */
    ASSERT_EQ(idem(log, 7, 0, 6, 1, &r), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    ASSERT_EQ(idem(log, 7, 0, 4, 2, &r), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* epochs */
    ASSERT_EQ(idem(log, 9, 3, 101, 1, &r), RN_ERR_INVALID_PRODUCER_EPOCH);
    ASSERT_EQ(idem(log, 9, 5, 101, 1, &r), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    ASSERT_EQ(idem(log, 9, 5, 0, 1, &r), RN_OK);
    ASSERT_EQ(r.base_offset, 6);
    ASSERT_EQ(rn_log_end_offset(log), 7);
    /* only the last 5 batches are remembered */
    int32_t seq = 5;
    for (int i = 0; i < 6; i++, seq++) ASSERT_EQ(idem(log, 7, 0, seq, 1, &r), RN_OK);
    ASSERT_EQ(idem(log, 7, 0, seq - 5, 1, &r), RN_OK);
    ASSERT_TRUE(r.duplicate);
    ASSERT_EQ(idem(log, 7, 0, seq - 6, 1, &r), RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* sequence wraps around INT32_MAX */
    ASSERT_EQ(idem(log, 11, 0, INT32_MAX - 1, 2, &r), RN_OK);
    ASSERT_EQ(idem(log, 11, 0, 0, 1, &r), RN_OK);
    int64_t end = rn_log_end_offset(log);
    ASSERT_GT(log->nsegs, 2); /* snapshots were written at rolls */

    /* after a clean reopen */
    rn_logdir_close(dir);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "idem", 0);
    ASSERT_EQ(idem(log, 7, 0, seq - 1, 1, &r), RN_OK);
    ASSERT_TRUE(r.duplicate);
    ASSERT_EQ(idem(log, 11, 0, 1, 1, &r), RN_OK);
    ASSERT_FALSE(r.duplicate);
    ASSERT_EQ(r.base_offset, end);
    end++;

    /* after a crash: snapshot at the last roll + scan of the tail */
    rn__logdir_crash(dir);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "idem", 0);
    ASSERT_EQ(idem(log, 11, 0, 1, 1, &r), RN_OK);
    ASSERT_TRUE(r.duplicate);
    ASSERT_EQ(r.base_offset, end - 1);
    ASSERT_EQ(idem(log, 7, 0, seq, 1, &r), RN_OK);
    ASSERT_FALSE(r.duplicate);
    ASSERT_EQ(idem(log, 9, 5, 1, 1, &r), RN_OK);
    ASSERT_EQ(idem(log, 9, 4, 2, 1, &r), RN_ERR_INVALID_PRODUCER_EPOCH);

    /* and with every snapshot gone: rebuilt from the log */
    rn__logdir_crash(dir);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -f %s/idem-0/*.snapshot", path);
    ASSERT_EQ(system(cmd), 0);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "idem", 0);
    ASSERT_EQ(idem(log, 9, 5, 1, 1, &r), RN_OK);
    ASSERT_TRUE(r.duplicate);
    ASSERT_EQ(idem(log, 7, 0, seq + 1, 1, &r), RN_OK);
    ASSERT_FALSE(r.duplicate);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(producer_snapshot_roundtrip_and_corruption) {
    const char *path = tl_mkdtemp();
    rn__pstate_t ps;
    rn__pstate_init(&ps);
    for (int64_t pid = 0; pid < 100; pid++) {
        for (int j = 0; j < 1 + pid % 7; j++) {
            rn_batch_header_t h = {.producer_id = pid, .producer_epoch = (int16_t)(pid % 3), .base_sequence = j * 2,
                                   .last_offset_delta = 1, .base_offset = pid * 100 + j * 2, .max_timestamp = 5};
            ASSERT_TRUE(rn__pstate_update(&ps, &h));
        }
    }
    char p[600];
    snprintf(p, sizeof(p), "%s/00000000000000000042.snapshot", path);
    ASSERT_EQ(rn__pstate_write_snapshot(&ps, NULL, p, false), RN_OK);
    rn__pstate_t back;
    rn__pstate_init(&back);
    ASSERT_EQ(rn__pstate_read_snapshot(&back, p, NULL), RN_OK);
    ASSERT_EQ(back.count, 100);
    for (int64_t pid = 0; pid < 100; pid++) {
        const rn__producer_t *a = rn__pstate_get(&ps, pid), *b = rn__pstate_get(&back, pid);
        ASSERT_TRUE(a && b);
        ASSERT_EQ(a->nbatches, b->nbatches);
        ASSERT_EQ(a->nbatches, pid % 7 + 1 > 5 ? 5 : pid % 7 + 1);
        ASSERT_MEMEQ(a->batches, b->batches, sizeof(a->batches[0]) * a->nbatches);
    }
    rn__pstate_remove_below(&back, 5000);
    ASSERT_EQ(back.count, 50);
    int fd = open(p, O_RDWR);
    uint8_t x = 0x77;
    ASSERT_EQ(pwrite(fd, &x, 1, 100), 1);
    close(fd);
    ASSERT_EQ(rn__pstate_read_snapshot(&back, p, NULL), RN_ERR_CORRUPT);
    ASSERT_EQ(back.count, 50); /* untouched */
    rn__pstate_free(&ps);
    rn__pstate_free(&back);
    tl_rmrf(path);
}

/* ---- retention ---------------------------------------------------------------------- */

RN_TEST(retention_by_time_and_size) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    c.segment_bytes = 2000;
    c.retention_ms = 3600 * 1000;
    c.flush_messages = 100; /* lazy: HW at the log end, no waiting */
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "ret", 0, &c, &log), RN_OK);
    int64_t now = rn_clock_wall_ms();
    /* 20 old batches (2 days ago), then 20 recent ones */
    rn_append_result_t r;
    for (int i = 0; i < 20; i++) ASSERT_EQ(tl_append(log, 2, now - 2 * 86400 * 1000LL, 200, &r), RN_OK);
    int64_t first_recent = rn_log_end_offset(log);
    for (int i = 0; i < 20; i++) ASSERT_EQ(tl_append(log, 2, now, 200, &r), RN_OK);
    int nsegs = log->nsegs;
    ASSERT_GT(nsegs, 6);
    rn_log_read_t rd;
    ASSERT_EQ(rn_log_read(log, 0, 1 << 20, true, INT64_MAX, &rd), RN_OK); /* an in-flight read */
    rn_logdir_maintain(dir);
    int64_t start = rn_log_start_offset(log);
    ASSERT_GT(start, 0);
    ASSERT_LE(start, first_recent);
    ASSERT_LT(log->nsegs, nsegs);
    /* every deleted segment was old; the segment holding first_recent stays */
    ASSERT_LE(log->segs[0]->base_offset, first_recent);
    rn_log_read_t r2;
    ASSERT_EQ(rn_log_read(log, 0, 100, true, INT64_MAX, &r2), RN_ERR_OFFSET_OUT_OF_RANGE);
    ASSERT_EQ(rn_log_read(log, start, 100, true, INT64_MAX, &r2), RN_OK);
    rn_fileref_release(r2.file);
    uint8_t *p = tl_read_region(&rd); /* the deleted segment is still readable */
    rn_batch_header_t h;
    rn_batch_header_decode(p, &h);
    ASSERT_EQ(h.base_offset, 0);
    free(p);
    rn_fileref_release(rd.file);

    /* size: keep at most ~3 segments' worth */
    int64_t seg_size = log->segs[0]->size_bytes;
    rn_log_config_t c2 = c;
    c2.retention_bytes = 3 * seg_size;
    rn_log_set_config(log, &c2);
    rn_logdir_maintain(dir);
    ASSERT_LE(rn_log_size_bytes(log), 3 * seg_size + log->segs[log->nsegs - 1]->size_bytes);
    ASSERT_GE(rn_log_size_bytes(log) + seg_size, 3 * seg_size);
    int64_t start2 = rn_log_start_offset(log);
    ASSERT_GT(start2, start);

    /* reopen keeps the log start */
    rn_logdir_close(dir);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "ret", 0);
    ASSERT_EQ(rn_log_start_offset(log), start2);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(delete_records_moves_log_start) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = cfg_default();
    c.segment_bytes = 1500;
    c.flush_messages = 100;
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "dr", 0, &c, &log), RN_OK);
    rn_append_result_t r;
    for (int i = 0; i < 30; i++) ASSERT_EQ(tl_append(log, 3, 1, 100, &r), RN_OK);
    int nsegs = log->nsegs;
    int64_t ns;
    ASSERT_EQ(rn_log_delete_records(log, 91, &ns), RN_ERR_OFFSET_OUT_OF_RANGE);
    ASSERT_EQ(rn_log_delete_records(log, 40, &ns), RN_OK);
    ASSERT_EQ(ns, 40);
    ASSERT_EQ(rn_log_start_offset(log), 40);
    ASSERT_LT(log->nsegs, nsegs);
    ASSERT_LE(log->segs[0]->base_offset, 40);
    rn_log_read_t rd;
    ASSERT_EQ(rn_log_read(log, 39, 100, true, INT64_MAX, &rd), RN_ERR_OFFSET_OUT_OF_RANGE);
    ASSERT_EQ(rn_log_read(log, 40, 100, true, INT64_MAX, &rd), RN_OK);
    uint8_t *p = tl_read_region(&rd);
    rn_batch_header_t h;
    rn_batch_header_decode(p, &h);
    ASSERT_EQ(h.base_offset, 39); /* the batch holding 40 */
    free(p);
    rn_fileref_release(rd.file);
    ASSERT_EQ(rn_log_delete_records(log, 10, &ns), RN_OK); /* never backwards */
    ASSERT_EQ(ns, 40);
    ASSERT_EQ(rn_log_delete_records(log, -1, &ns), RN_OK); /* -1: the high watermark */
    ASSERT_EQ(ns, 90);
    ASSERT_EQ(log->nsegs, 1);
    int64_t off, ts;
    ASSERT_EQ(rn_log_offset_for_timestamp(log, 0, &off, &ts), RN_OK);
    ASSERT_EQ(off, -1);
    ASSERT_EQ(tl_append(log, 1, 1, 1, &r), RN_OK);
    ASSERT_EQ(r.base_offset, 90);
    ASSERT_EQ(r.log_start_offset, 90);
    rn__logdir_crash(dir); /* no checkpoint written: start comes back from the segments */
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "dr", 0);
    ASSERT_EQ(rn_log_end_offset(log), 91);
    ASSERT_LE(rn_log_start_offset(log), 90);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

int main(void) { return rn_test_main(); }
