/* Unit tests for preallocated segments (src/log/rn_segment.c): written zeros ahead
 * of the write position, reads bounded by the logical size, trimming on roll and
 * clean close, recovery of a zero tail after a crash, the dir's budget. */
#include "rn_test.h"
#include "test_log_util.h"

static rn_log_config_t prealloc_cfg(int64_t segment_bytes) {
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.segment_bytes = segment_bytes;
    c.index_interval_bytes = 512;
    c.retention_ms = -1; /* test timestamps are from 1970 */
    c.preallocate = true;
    return c; /* durable: flush.messages 1 */
}

static int64_t active_file_size(rn_log_t *log) {
    char p[600];
    rn__segment_path(log, rn__log_active(log)->base_offset, ".log", p, sizeof(p));
    return tl_file_size(p);
}

/* True if [from, to) of the active segment's file is all zeros. */
static bool zeros_in(rn_log_t *log, int64_t from, int64_t to) {
    char p[600];
    rn__segment_path(log, rn__log_active(log)->base_offset, ".log", p, sizeof(p));
    int fd = open(p, O_RDONLY);
    uint8_t buf[4096];
    bool ok = fd >= 0;
    for (int64_t pos = from; ok && pos < to;) {
        size_t n = to - pos < (int64_t)sizeof(buf) ? (size_t)(to - pos) : sizeof(buf);
        ok = pread(fd, buf, n, pos) == (ssize_t)n;
        for (size_t i = 0; ok && i < n; i++) ok = buf[i] == 0;
        pos += (int64_t)n;
    }
    if (fd >= 0) close(fd);
    return ok;
}

/* Everything from offset 0 reads back, and nothing past `end`: the zeros are never served. */
static void check_all(rn_log_t *log, int64_t end) {
    ASSERT_EQ(tl_read_through(log), end);
    rn_log_read_t r;
    ASSERT_EQ(rn_log_read(log, end, 1 << 20, true, INT64_MAX, &r), RN_OK);
    ASSERT_EQ(r.len, 0);
}

/* A fresh dir with one durable, preallocating log in it. */
typedef struct {
    const char *path;
    rn_logdir_config_t dc;
    rn_logdir_t *dir;
    rn_log_config_t c;
    rn_log_t *log;
    char topic[32];
} fx_t;

static void fx_open(fx_t *f, const char *topic, int64_t segment_bytes);

/* The same with "<prefix><n>" as the topic (one topic per round of a test). */
static void fx_open_nth(fx_t *f, const char *prefix, int n, int64_t segment_bytes) {
    char topic[32];
    snprintf(topic, sizeof(topic), "%s%d", prefix, n);
    fx_open(f, topic, segment_bytes);
}

static void fx_open(fx_t *f, const char *topic, int64_t segment_bytes) {
    ASSERT_LT(strlen(topic), sizeof(f->topic));
    strcpy(f->topic, topic);
    if (!f->path) {
        f->path = tl_mkdtemp();
        tl_dir_config(&f->dc, f->path);
    }
    ASSERT_EQ(rn_logdir_open(&f->dc, &f->dir), RN_OK);
    f->c = prealloc_cfg(segment_bytes);
    ASSERT_EQ(rn_logdir_create_log(f->dir, topic, 0, &f->c, &f->log), RN_OK);
}

static int64_t append_acked(rn_logdir_t *dir, rn_log_t *log, int n, int vlen) {
    int64_t end = -1;
    for (int i = 0; i < n; i++) {
        rn_append_result_t res;
        ASSERT_EQ(tl_append(log, 1 + i % 3, 1000 + i, vlen, &res), RN_OK);
        ASSERT_TRUE(res.sync_ticket > 0);
        ASSERT_TRUE(tl_wait_ticket(dir, res.sync_ticket));
        end = res.last_offset + 1;
    }
    return end;
}

/* After a reopen (the dir's default config does not preallocate): appends go on
 * at the end and preallocate again; returns the new end. */
static int64_t append_after_reopen(rn_logdir_t *dir, rn_log_t *log, const rn_log_config_t *c, int n) {
    int64_t end = rn_log_end_offset(log);
    rn_log_set_config(log, c);
    int64_t end2 = append_acked(dir, log, n, 50);
    ASSERT_EQ(end2, end + (n > 1 ? 1 + 2 : 1)); /* batches of 1, 2, 3 ... records */
    ASSERT_GT(active_file_size(log), rn__log_active(log)->size_bytes);
    check_all(log, end2);
    return end2;
}

RN_TEST(prealloc_writes_zeros_ahead_and_reads_stop_at_logical_size) {
    fx_t f = {0};
    fx_open(&f, "pa", 64 << 20);
    rn_logdir_t *dir = f.dir;
    rn_log_t *log = f.log;
    int64_t end = append_acked(dir, log, 30, 100);
    rn__segment_t *seg = rn__log_active(log);
    int64_t logical = seg->size_bytes, file = active_file_size(log);
    ASSERT_EQ(rn_log_size_bytes(log), logical);
    ASSERT_EQ(seg->prealloc_end, file);
    ASSERT_GE(file - logical, RN__PREALLOC_CHUNK / 2);
    ASSERT_LE(file - logical, RN__PREALLOC_CHUNK);
    ASSERT_TRUE(zeros_in(log, logical, file));
    ASSERT_EQ(atomic_load(&dir->prealloc_bytes), file - logical);
    check_all(log, end);
    /* Appends write over the zeros; the file grows only when the room runs low. */
    int64_t before = file;
    end = append_acked(dir, log, 10, 100);
    ASSERT_EQ(active_file_size(log), before);
    ASSERT_EQ(atomic_load(&dir->prealloc_bytes), before - rn__log_active(log)->size_bytes);
    /* A big append: the room is topped up ahead of it. */
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 40, 5000, 20000, &res), RN_OK); /* ~800 KB */
    ASSERT_TRUE(tl_wait_ticket(dir, res.sync_ticket));
    end = res.last_offset + 1;
    seg = rn__log_active(log);
    ASSERT_GE(active_file_size(log) - seg->size_bytes, RN__PREALLOC_CHUNK / 2);
    ASSERT_TRUE(zeros_in(log, seg->size_bytes, active_file_size(log)));
    check_all(log, end);
    rn_logdir_close(dir);
    tl_rmrf(f.path);
}

RN_TEST(prealloc_trimmed_on_roll_and_clean_close) {
    fx_t f = {0};
    fx_open(&f, "roll", 256 << 10);
    rn_logdir_t *dir = f.dir;
    rn_log_t *log = f.log;
    rn_log_config_t c = f.c;
    int64_t end = append_acked(dir, log, 150, 5000);
    ASSERT_GT(log->nsegs, 2);
    for (int32_t i = 0; i + 1 < log->nsegs; i++) { /* sealed: file == logical size */
        char p[600];
        rn__segment_path(log, log->segs[i]->base_offset, ".log", p, sizeof(p));
        ASSERT_EQ(tl_file_size(p), log->segs[i]->size_bytes);
        ASSERT_EQ(log->segs[i]->prealloc_end, 0);
    }
    /* The active one: zeros up to segment.bytes at most (none past the roll). */
    int64_t file = active_file_size(log);
    ASSERT_GT(file, rn__log_active(log)->size_bytes);
    ASSERT_LE(file, c.segment_bytes);
    int nsegs = log->nsegs;
    rn_logdir_close(dir);

    atomic_store(&rn__log_data_reads, 0);
    ASSERT_EQ(rn_logdir_open(&f.dc, &dir), RN_OK);
    ASSERT_EQ(atomic_load(&rn__log_data_reads), 0); /* clean: sizes from stat, nothing scanned */
    log = rn_logdir_find(dir, "roll", 0);
    ASSERT_EQ(log->nsegs, nsegs);
    ASSERT_EQ(active_file_size(log), rn__log_active(log)->size_bytes); /* trimmed at close */
    ASSERT_EQ(rn_log_end_offset(log), end);
    ASSERT_EQ(atomic_load(&dir->prealloc_bytes), 0);
    check_all(log, end);
    append_after_reopen(dir, log, &c, 2);
    rn_logdir_close(dir);
    tl_rmrf(f.path);
}

RN_TEST(prealloc_zero_tail_recovered_after_crash) {
    fx_t f = {0};
    for (int with_rp = 0; with_rp < 2; with_rp++) {
        fx_open_nth(&f, "crash", with_rp, 64 << 10);
        rn_logdir_t *dir = f.dir;
        rn_log_t *log = f.log;
        int64_t end = append_acked(dir, log, 40, 3000);
        ASSERT_GT(log->nsegs, 1);
        if (with_rp) {
            rn_logdir_maintain(dir); /* a recovery point inside the active segment */
            end = append_acked(dir, log, 3, 50);
        }
        int64_t logical = rn__log_active(log)->size_bytes;
        ASSERT_GT(active_file_size(log), logical);
        char logpath[600];
        rn__segment_path(log, rn__log_active(log)->base_offset, ".log", logpath, sizeof(logpath));
        if (!with_rp) {
            /* A sealed segment whose trim never reached the disk (power loss right
             * after a roll, before the round that syncs it and moves the recovery
             * point past it): zeros after its last batch must not cost later segments. */
            char sealed[600];
            rn__segment_path(log, log->segs[log->nsegs - 2]->base_offset, ".log", sealed, sizeof(sealed));
            ASSERT_EQ(truncate(sealed, tl_file_size(sealed) + 5000), 0);
        }
        int nsegs = log->nsegs;
        rn__logdir_crash(dir); /* kill -9: no trim, no checkpoint, no clean marker */
        ASSERT_GT(tl_file_size(logpath), logical);

        atomic_store(&rn__log_data_reads, 0);
        ASSERT_EQ(rn_logdir_open(&f.dc, &dir), RN_OK);
        ASSERT_GT(atomic_load(&rn__log_data_reads), 0); /* it did recover */
        log = rn_logdir_find(dir, f.topic, 0);
        ASSERT_TRUE(log != NULL);
        ASSERT_EQ(log->nsegs, nsegs);
        ASSERT_EQ(rn_log_end_offset(log), end); /* every acked batch is there */
        ASSERT_EQ(tl_file_size(logpath), logical); /* the zeros are cut off */
        int64_t files = 0;
        for (int32_t i = 0; i < log->nsegs; i++) {
            char sp[600];
            rn__segment_path(log, log->segs[i]->base_offset, ".log", sp, sizeof(sp));
            ASSERT_EQ(tl_file_size(sp), log->segs[i]->size_bytes);
            files += log->segs[i]->size_bytes;
        }
        ASSERT_EQ(rn_log_size_bytes(log), files);
        check_all(log, end);
        /* appends continue at the end, preallocating again */
        append_after_reopen(dir, log, &f.c, 2);
        rn_logdir_close(dir);
    }
    tl_rmrf(f.path);
}

RN_TEST(prealloc_unsynced_batch_in_the_zeros_is_cut) {
    /* A crash before the last batch's pages reached the disk: its header is
     * there but its body is still zeros (CRC mismatch), or only zeros remain. */
    fx_t f = {0};
    for (int header_too = 0; header_too < 2; header_too++) {
        fx_open_nth(&f, "torn", header_too, 64 << 20);
        rn_logdir_t *dir = f.dir;
        rn_log_t *log = f.log;
        int64_t end = append_acked(dir, log, 20, 200);
        int64_t pos = rn__log_active(log)->size_bytes;
        rn_append_result_t res;
        ASSERT_EQ(tl_append(log, 3, 1, 3000, &res), RN_OK); /* ~9 KB, "not synced" */
        ASSERT_TRUE(tl_wait_ticket(dir, res.sync_ticket));
        char p[600];
        rn__segment_path(log, rn__log_active(log)->base_offset, ".log", p, sizeof(p));
        int fd = open(p, O_WRONLY);
        static const uint8_t z[8192];
        int64_t from = header_too ? pos : pos + 4096; /* keep the first page, or nothing */
        ASSERT_EQ(pwrite(fd, z, sizeof(z), from), (ssize_t)sizeof(z));
        close(fd);
        rn__logdir_crash(dir);
        ASSERT_EQ(rn_logdir_open(&f.dc, &dir), RN_OK);
        log = rn_logdir_find(dir, f.topic, 0);
        ASSERT_EQ(rn_log_end_offset(log), end);
        ASSERT_EQ(tl_file_size(p), pos);
        check_all(log, end);
        rn_logdir_close(dir);
    }
    tl_rmrf(f.path);
}

static int fail_writes;
static int hook(int op, int fd, size_t len) { return op == RN__IO_WRITE && fail_writes ? ENOSPC : 0; }

RN_TEST(prealloc_failures_skip_it_and_undo_keeps_the_accounting) {
    fx_t f = {0};
    fx_open(&f, "nospc", 64 << 20);
    rn_logdir_t *dir = f.dir;
    rn_log_t *log = f.log;
    /* Zeros cannot be written: the append goes on without them. */
    rn__log_io_hook = hook;
    fail_writes = 1;
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_ERR_NOSPACE); /* the data write fails too */
    ASSERT_EQ(active_file_size(log), 0);
    ASSERT_EQ(atomic_load(&dir->prealloc_bytes), 0);
    ASSERT_FALSE(rn_logdir_offline(dir));
    fail_writes = 0;
    rn__log_io_hook = NULL;
    int64_t end = append_acked(dir, log, 2, 10);
    ASSERT_GT(atomic_load(&dir->prealloc_bytes), 0);
    /* The data write fails after the zeros were written: cut back, nothing counted. */
    rn__log_io_hook = hook;
    int64_t size = rn__log_active(log)->size_bytes;
    fail_writes = 1;
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_ERR_NOSPACE);
    fail_writes = 0;
    rn__log_io_hook = NULL;
    ASSERT_EQ(active_file_size(log), size);
    ASSERT_EQ(atomic_load(&dir->prealloc_bytes), 0);
    end = append_acked(dir, log, 2, 10);
    check_all(log, end);
    rn_logdir_close(dir);
    tl_rmrf(f.path);
}

RN_TEST(prealloc_budget_bounds_the_dir_and_delete_returns_it) {
    fx_t f = {0};
    fx_open(&f, "many", 64 << 20); /* partition 0 */
    rn_logdir_t *dir = f.dir;
    int nlogs = (int)(RN__PREALLOC_BUDGET / RN__PREALLOC_CHUNK) + 4;
    int with_zeros = 0;
    rn_log_t *first = f.log;
    for (int p = 0; p < nlogs; p++) {
        rn_log_t *log = first;
        if (p > 0) ASSERT_EQ(rn_logdir_create_log(dir, "many", p, &f.c, &log), RN_OK);
        rn_append_result_t res;
        ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK);
        with_zeros += active_file_size(log) > rn__log_active(log)->size_bytes;
        ASSERT_LE(atomic_load(&dir->prealloc_bytes), RN__PREALLOC_BUDGET);
    }
    ASSERT_LT(with_zeros, nlogs);
    ASSERT_GE(with_zeros, nlogs - 8);
    int64_t before = atomic_load(&dir->prealloc_bytes);
    int64_t room = first->segs[0]->prealloc_end - first->segs[0]->size_bytes;
    ASSERT_GT(room, 0);
    ASSERT_EQ(rn_logdir_delete_log(dir, first), RN_OK);
    ASSERT_EQ(atomic_load(&dir->prealloc_bytes), before - room);
    rn_logdir_close(dir);
    tl_rmrf(f.path);
}

RN_TEST(prealloc_off_in_lazy_mode_and_when_disabled) {
    fx_t f = {0};
    fx_open(&f, "on", 64 << 20);
    rn_logdir_t *dir = f.dir;
    rn_log_config_t lazy = f.c, off = f.c;
    lazy.flush_messages = 1000;
    off.preallocate = false;
    rn_log_t *a, *b;
    ASSERT_EQ(rn_logdir_create_log(dir, "lazy", 0, &lazy, &a), RN_OK);
    ASSERT_EQ(rn_logdir_create_log(dir, "off", 0, &off, &b), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(a, 2, 1, 10, &res), RN_OK);
    ASSERT_EQ(tl_append(b, 2, 1, 10, &res), RN_OK);
    ASSERT_EQ(active_file_size(a), rn__log_active(a)->size_bytes);
    ASSERT_EQ(active_file_size(b), rn__log_active(b)->size_bytes);
    ASSERT_EQ(atomic_load(&dir->prealloc_bytes), 0);
    rn_append_result_t r2;
    ASSERT_EQ(tl_append(f.log, 2, 1, 10, &r2), RN_OK); /* the same shape does preallocate on a durable log */
    ASSERT_GT(atomic_load(&dir->prealloc_bytes), 0);
    rn_logdir_close(dir);
    tl_rmrf(f.path);
}

int main(void) { return rn_test_main(); }
