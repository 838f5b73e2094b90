/*
 * test_raft_store.c — the file backend of Raft (src/raft/rn_raft_store.c):
 * round trips, torn and garbled log tails cut at open, truncation, snapshots
 * with compaction and interrupted compaction, damaged state files refused,
 * and a one-voter rn_raft_t running on it across restarts.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_log_internal.h"
#include "rn_logging.h"
#include "rn_raft_store.h"
#include "rn_test.h"

static char dir_buf[64];
static const char *tl_mkdtemp(void) {
    snprintf(dir_buf, sizeof(dir_buf), "/tmp/rn_test_raft_XXXXXX");
    if (!mkdtemp(dir_buf)) abort();
    return dir_buf;
}

/* The store's directory holds only its own files (and old-log in one test). */
static void tl_rmrf(const char *dir) {
    const char *names[] = {"raft-log", "raft-state", "raft-snapshot", "raft-log.tmp", "raft-state.tmp",
                           "raft-snapshot.tmp", "old-log", "old-log.tmp"};
    char p[600];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static rn_raft_store_limits_t lim = {.max_log_file_bytes = 1 << 20, .max_entry_bytes = 1024,
                                     .max_snapshot_bytes = 1 << 16};

static char path_buf[512];
static const char *file_in(const char *dir, const char *name) {
    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, name);
    return path_buf;
}

static off_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void append_range(rn_raft_store_t *st, uint64_t from, uint64_t to, uint64_t term) {
    for (uint64_t i = from; i <= to; i++) {
        char d[32];
        int n = snprintf(d, sizeof(d), "entry-%llu-t%llu", (unsigned long long)i, (unsigned long long)term);
        rn_raft_entry_t e = {.index = i, .term = term, .type = RN_RAFT_ENTRY_DATA, .data = (uint8_t *)d,
                             .len = (uint32_t)n};
        if (rn_raft_store_append(st, &e, 1) != RN_OK) abort();
    }
}

/* Reopens dir; boot holds what it found. */
static rn_raft_store_t *reopen(rn_raft_store_t *st, const char *dir, rn_raft_boot_t *boot) {
    if (st) rn_raft_store_close(st);
    rn_raft_store_t *n = NULL;
    if (rn_raft_store_open(dir, &lim, &n) != RN_OK) return NULL;
    if (rn_raft_store_boot(n, boot) != RN_OK) abort();
    return n;
}

/* A new store in a new directory holding entries 1..10 of `term`. */
static rn_raft_store_t *fresh_store(const char **dir, uint64_t term) {
    rn_raft_store_t *st = NULL;
    *dir = tl_mkdtemp();
    if (rn_raft_store_open(*dir, &lim, &st) != RN_OK) abort();
    append_range(st, 1, 10, term);
    return st;
}

static bool entry_is(const rn_raft_entry_t *e, uint64_t index, uint64_t term) {
    char d[32];
    int n = snprintf(d, sizeof(d), "entry-%llu-t%llu", (unsigned long long)index, (unsigned long long)term);
    return e->index == index && e->term == term && e->len == (uint32_t)n && !memcmp(e->data, d, (size_t)n);
}

RN_TEST(raft_store_round_trip) {
    const char *dir = tl_mkdtemp();
    rn_raft_store_t *st;
    rn_raft_boot_t boot;
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.term, 0);
    ASSERT_EQ(boot.vote, RN_RAFT_NO_NODE);
    ASSERT_EQ(boot.n_entries, 0);
    ASSERT_EQ(rn_raft_store_save_hardstate(st, 7, 3), RN_OK);
    append_range(st, 1, 10, 7);
    ASSERT_EQ(rn_raft_store_sync(st), RN_OK);
    ASSERT_TRUE((st = reopen(st, dir, &boot)) != NULL);
    ASSERT_EQ(boot.term, 7);
    ASSERT_EQ(boot.vote, 3);
    ASSERT_EQ(boot.n_entries, 10);
    for (uint64_t i = 0; i < 10; i++) ASSERT_TRUE(entry_is(&boot.entries[i], i + 1, 7));
    /* boot after writes reads the files again */
    append_range(st, 11, 12, 7);
    ASSERT_EQ(rn_raft_store_boot(st, &boot), RN_OK);
    ASSERT_EQ(boot.n_entries, 12);
    ASSERT_TRUE(entry_is(&boot.entries[11], 12, 7));
    rn_raft_store_close(st);
    tl_rmrf(dir);
}

RN_TEST(raft_store_torn_tail_is_cut) {
    const char *dir;
    rn_raft_boot_t boot;
    rn_raft_store_t *st = fresh_store(&dir, 2);
    rn_raft_store_close(st);
    const char *log = file_in(dir, "raft-log");
    off_t full = file_size(log);
    ASSERT_EQ(truncate(log, full - 5), 0); /* the last record torn */
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.n_entries, 9);
    ASSERT_TRUE(entry_is(&boot.entries[8], 9, 2));
    ASSERT_LT(file_size(log), full - 5); /* cut back to the end of record 9 */
    append_range(st, 10, 11, 3);           /* and the log goes on from there */
    ASSERT_TRUE((st = reopen(st, dir, &boot)) != NULL);
    ASSERT_EQ(boot.n_entries, 11);
    ASSERT_TRUE(entry_is(&boot.entries[10], 11, 3));
    /* only a header's worth torn off the end */
    rn_raft_store_close(st);
    ASSERT_EQ(truncate(log, file_size(log) - 30), 0);
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.n_entries, 10);
    rn_raft_store_close(st);
    tl_rmrf(dir);
}

RN_TEST(raft_store_garbled_record_cuts_the_rest) {
    const char *dir;
    rn_raft_boot_t boot;
    rn_raft_store_t *st = fresh_store(&dir, 1);
    rn_raft_store_close(st);
    /* flip one data byte in record 8: its CRC fails */
    const char *log = file_in(dir, "raft-log");
    int fd = open(log, O_RDWR);
    ASSERT_GE(fd, 0);
    uint8_t buf[4096];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    size_t at = 8;
    for (int i = 1; i < 8; i++) at += 8 + rn_load_be32(buf + at);
    buf[at + 8 + 20] ^= 0x40;
    ASSERT_EQ(pwrite(fd, buf + at + 8 + 20, 1, (off_t)(at + 8 + 20)), 1);
    close(fd);
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.n_entries, 7);
    ASSERT_EQ(file_size(log), (off_t)at);
    /* a length field that claims more than the file holds */
    rn_raft_store_close(st);
    fd = open(log, O_RDWR);
    uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
    size_t at6 = 8;
    for (int i = 1; i < 6; i++) at6 += 8 + rn_load_be32(buf + at6);
    ASSERT_EQ(pwrite(fd, big, 4, (off_t)at6), 4);
    close(fd);
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.n_entries, 5);
    rn_raft_store_close(st);
    tl_rmrf(dir);
}

RN_TEST(raft_store_truncate_suffix) {
    const char *dir;
    rn_raft_boot_t boot;
    rn_raft_store_t *st = fresh_store(&dir, 1);
    ASSERT_EQ(rn_raft_store_truncate(st, 6), RN_OK);
    ASSERT_EQ(rn_raft_store_last_index(st), 5);
    append_range(st, 6, 7, 2);
    ASSERT_EQ(rn_raft_store_sync(st), RN_OK);
    ASSERT_TRUE((st = reopen(st, dir, &boot)) != NULL);
    ASSERT_EQ(boot.n_entries, 7);
    ASSERT_TRUE(entry_is(&boot.entries[4], 5, 1));
    ASSERT_TRUE(entry_is(&boot.entries[5], 6, 2));
    ASSERT_TRUE(entry_is(&boot.entries[6], 7, 2));
    /* appends must continue the log */
    rn_raft_entry_t e = {.index = 9, .term = 2};
    ASSERT_EQ(rn_raft_store_append(st, &e, 1), RN_ERR_INVALID_ARG);
    rn_raft_store_close(st);
    tl_rmrf(dir);
}

static rn_raft_snap_meta_t meta3(uint64_t index, uint64_t term) {
    return (rn_raft_snap_meta_t){.index = index, .term = term, .voters = {.count = 3, .ids = {1, 2, 3}},
                                 .learners = {.count = 1, .ids = {7}}};
}

RN_TEST(raft_store_snapshot_compacts) {
    const char *dir;
    rn_raft_boot_t boot;
    rn_raft_store_t *st = fresh_store(&dir, 1);
    rn_raft_snap_meta_t m = meta3(6, 1);
    ASSERT_EQ(rn_raft_store_save_snapshot(st, &m, (const uint8_t *)"state@6", 7, false), RN_OK);
    ASSERT_EQ(rn_raft_store_first_index(st), 7);
    append_range(st, 11, 12, 1);
    ASSERT_TRUE((st = reopen(st, dir, &boot)) != NULL);
    ASSERT_TRUE(boot.has_snapshot);
    ASSERT_EQ(boot.snap.index, 6);
    ASSERT_EQ(boot.snap.voters.count, 3);
    ASSERT_EQ(boot.snap.learners.count, 1);
    ASSERT_EQ(boot.snap.learners.ids[0], 7);
    ASSERT_EQ(boot.snap_len, 7);
    ASSERT_MEMEQ(boot.snap_data, "state@6", 7);
    ASSERT_EQ(boot.n_entries, 6);
    ASSERT_TRUE(entry_is(&boot.entries[0], 7, 1));
    ASSERT_TRUE(entry_is(&boot.entries[5], 12, 1));
    /* a snapshot that replaces the log (installed from a leader) */
    m = meta3(20, 4);
    ASSERT_EQ(rn_raft_store_save_snapshot(st, &m, (const uint8_t *)"state@20", 8, true), RN_OK);
    append_range(st, 21, 21, 4);
    ASSERT_TRUE((st = reopen(st, dir, &boot)) != NULL);
    ASSERT_EQ(boot.snap.index, 20);
    ASSERT_EQ(boot.n_entries, 1);
    ASSERT_TRUE(entry_is(&boot.entries[0], 21, 4));
    rn_raft_store_close(st);
    tl_rmrf(dir);
}

static void copy_file(const char *from, const char *to) {
    char *b;
    size_t len;
    if (rn__read_file(from, 1 << 20, &b, &len) != RN_OK) abort();
    if (rn__write_file_atomic(to, b, len, false) != RN_OK) abort();
    free(b);
}

RN_TEST(raft_store_interrupted_compaction) {
    const char *dir = tl_mkdtemp();
    char old[600], log[600];
    snprintf(log, sizeof(log), "%s/raft-log", dir);
    snprintf(old, sizeof(old), "%s/old-log", dir);
    rn_raft_store_t *st;
    rn_raft_boot_t boot;
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    append_range(st, 1, 10, 1);
    ASSERT_EQ(rn_raft_store_sync(st), RN_OK);
    copy_file(log, old);
    /* the snapshot written, the crash before the log was rewritten */
    rn_raft_snap_meta_t m = meta3(6, 1);
    ASSERT_EQ(rn_raft_store_save_snapshot(st, &m, (const uint8_t *)"s", 1, false), RN_OK);
    rn_raft_store_close(st);
    copy_file(old, log);
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.snap.index, 6);
    ASSERT_EQ(boot.n_entries, 4);
    ASSERT_TRUE(entry_is(&boot.entries[0], 7, 1));
    /* a snapshot at 6 of another term than the log's entry 6: the log goes */
    m = meta3(6, 9);
    ASSERT_EQ(rn_raft_store_save_snapshot(st, &m, (const uint8_t *)"s", 1, true), RN_OK);
    rn_raft_store_close(st);
    copy_file(old, log);
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.snap.term, 9);
    ASSERT_EQ(boot.n_entries, 0);
    ASSERT_EQ(rn_raft_store_first_index(st), 7);
    rn_raft_store_close(st);
    tl_rmrf(dir);
}

RN_TEST(raft_store_damaged_state_refused) {
    const char *dir = tl_mkdtemp();
    rn_raft_store_t *st;
    rn_raft_boot_t boot;
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(rn_raft_store_save_hardstate(st, 5, 2), RN_OK);
    rn_raft_snap_meta_t m = meta3(0, 0);
    ASSERT_EQ(rn_raft_store_save_snapshot(st, &m, (const uint8_t *)"x", 1, false), RN_OK);
    rn_raft_store_close(st);
    /* a leftover temp file of an interrupted replacement is ignored */
    FILE *f = fopen(file_in(dir, "raft-state.tmp"), "w");
    fputs("junk", f);
    fclose(f);
    ASSERT_TRUE((st = reopen(NULL, dir, &boot)) != NULL);
    ASSERT_EQ(boot.term, 5);
    ASSERT_EQ(file_size(file_in(dir, "raft-state.tmp")), -1);
    rn_raft_store_close(st);
    /* one flipped bit in the term file: refused, not reset to term 0 */
    const char *state = file_in(dir, "raft-state");
    int fd = open(state, O_RDWR);
    uint8_t b;
    ASSERT_EQ(pread(fd, &b, 1, 12), 1);
    b ^= 1;
    ASSERT_EQ(pwrite(fd, &b, 1, 12), 1);
    close(fd);
    rn_raft_store_t *bad = NULL;
    ASSERT_EQ(rn_raft_store_open(dir, &lim, &bad), RN_ERR_CORRUPT);
    unlink(state);
    /* a snapshot file cut short is refused too */
    const char *snap = file_in(dir, "raft-snapshot");
    ASSERT_EQ(truncate(snap, file_size(snap) - 1), 0);
    ASSERT_EQ(rn_raft_store_open(dir, &lim, &bad), RN_ERR_CORRUPT);
    unlink(snap);
    /* a file that is not a raft log */
    f = fopen(file_in(dir, "raft-log"), "w");
    fputs("NOTRAFT!xxxxxxxxxxxxxxxxxxxxxxxxxx", f);
    fclose(f);
    ASSERT_EQ(rn_raft_store_open(dir, &lim, &bad), RN_ERR_CORRUPT);
    tl_rmrf(dir);
}

/* ---- a one-voter rn_raft_t on the file store --------------------------------------- */

typedef struct {
    rn_raft_store_t *st;
    rn_raft_t *r;
    int64_t now;
    uint64_t applied, roll;
} solo_t;

static void solo_send(void *c, const rn_raft_msg_t *m) { (void)c, (void)m; }
static rn_err_t solo_append(void *c, const rn_raft_entry_t *e, size_t n) {
    return rn_raft_store_append(((solo_t *)c)->st, e, n);
}
static rn_err_t solo_truncate(void *c, uint64_t from) { return rn_raft_store_truncate(((solo_t *)c)->st, from); }
static rn_err_t solo_sync(void *c, uint64_t ticket) {
    solo_t *s = c;
    rn_err_t err = rn_raft_store_sync(s->st);
    if (!err) rn_raft_synced(s->r, ticket); /* from inside io.sync: handled after the call */
    return err;
}
static rn_err_t solo_hardstate(void *c, uint64_t term, int32_t vote) {
    return rn_raft_store_save_hardstate(((solo_t *)c)->st, term, vote);
}
static rn_err_t solo_snapshot(void *c, const rn_raft_snap_meta_t *m, const uint8_t *d, size_t len, bool reset) {
    return rn_raft_store_save_snapshot(((solo_t *)c)->st, m, d, len, reset);
}
static int64_t solo_now(void *c) { return ((solo_t *)c)->now; }
static uint64_t solo_random(void *c) { return (uint64_t)((solo_t *)c)->now * 7919; }
static void solo_apply(void *c, const rn_raft_entry_t *e) {
    solo_t *s = c;
    s->applied = e->index;
    if (e->type == RN_RAFT_ENTRY_DATA) s->roll = s->roll * 31 + e->len;
}
static rn_err_t solo_take(void *c, uint64_t index, rn_buf_t *out) {
    rn_buf_put_i64(out, (int64_t)((solo_t *)c)->roll);
    return rn_buf_err(out);
}
static rn_err_t solo_load(void *c, const rn_raft_snap_meta_t *m, const uint8_t *d, size_t len) {
    solo_t *s = c;
    if (len != 8) return RN_ERR_CORRUPT;
    s->roll = rn_load_be64(d);
    s->applied = m->index;
    return RN_OK;
}

static rn_err_t solo_start_cfg(solo_t *s, const char *dir, rn_raft_config_t cfg) {
    s->applied = s->roll = 0;
    rn_raft_store_limits_t l = rn_raft_store_limits(&cfg);
    rn_err_t err = rn_raft_store_open(dir, &l, &s->st);
    if (err) return err;
    rn_raft_boot_t boot;
    if ((err = rn_raft_store_boot(s->st, &boot))) return err;
    rn_raft_io_t io = {.ctx = s, .send = solo_send, .append = solo_append, .truncate = solo_truncate,
                       .sync = solo_sync, .save_hardstate = solo_hardstate, .save_snapshot = solo_snapshot,
                       .now_ms = solo_now, .random = solo_random};
    rn_raft_sm_t sm = {.ctx = s, .apply = solo_apply, .snapshot_take = solo_take, .snapshot_load = solo_load};
    err = rn_raft_new(&cfg, &io, &sm, &boot, &s->r);
    rn_raft_store_boot_done(s->st);
    return err;
}

static rn_err_t solo_start(solo_t *s, const char *dir) {
    rn_raft_config_t cfg;
    rn_raft_config_defaults(&cfg);
    cfg.snapshot_entries = 25;
    return solo_start_cfg(s, dir, cfg);
}

static void solo_stop(solo_t *s) {
    rn_raft_free(s->r);
    rn_raft_store_close(s->st);
    s->r = NULL;
    s->st = NULL;
}

static void solo_until_leader(solo_t *s) {
    for (int i = 0; i < 400 && rn_raft_role(s->r) != RN_RAFT_LEADER; i++) {
        s->now += 10;
        rn_raft_tick(s->r);
    }
}

RN_TEST(raft_store_one_voter_restarts) {
    const char *dir = tl_mkdtemp();
    solo_t s = {0};
    ASSERT_EQ(solo_start(&s, dir), RN_OK);
    solo_until_leader(&s);
    ASSERT_EQ(rn_raft_role(s.r), RN_RAFT_LEADER);
    uint64_t idx = 0;
    int32_t hint;
    for (int i = 0; i < 60; i++) {
        char d[16];
        int n = snprintf(d, sizeof(d), "v%d", i);
        ASSERT_EQ(rn_raft_propose(s.r, d, (size_t)n, &idx, &hint), RN_OK);
        ASSERT_EQ(rn_raft_commit_index(s.r), idx); /* a one-voter quorum commits on sync */
    }
    uint64_t roll = s.roll, term = rn_raft_term(s.r);
    ASSERT_EQ(s.applied, idx);
    ASSERT_GE(rn_raft_snapshot_meta(s.r)->index, 50);
    solo_stop(&s);
    /* restart: the snapshot plus the log give the same state; a new term */
    ASSERT_EQ(solo_start(&s, dir), RN_OK);
    ASSERT_EQ(rn_raft_term(s.r), term);
    ASSERT_EQ(rn_raft_last_index(s.r), idx);
    solo_until_leader(&s);
    ASSERT_EQ(rn_raft_role(s.r), RN_RAFT_LEADER);
    ASSERT_GT(rn_raft_term(s.r), term);
    ASSERT_GE(s.applied, idx);
    ASSERT_EQ(s.roll, roll);
    ASSERT_EQ(rn_raft_propose(s.r, "more", 4, &idx, &hint), RN_OK);
    ASSERT_EQ(rn_raft_commit_index(s.r), idx);
    solo_stop(&s);
    tl_rmrf(dir);
}

/* Large entries fill max_log_bytes long before snapshot_entries: a snapshot by
 * bytes frees the log, proposals never stall. */
RN_TEST(raft_store_snapshot_by_bytes) {
    const char *dir = tl_mkdtemp();
    solo_t s = {0};
    rn_raft_config_t cfg;
    rn_raft_config_defaults(&cfg);
    cfg.max_log_bytes = 8192;
    cfg.snapshot_entries = 100000;
    ASSERT_EQ(solo_start_cfg(&s, dir, cfg), RN_OK);
    solo_until_leader(&s);
    ASSERT_EQ(rn_raft_role(s.r), RN_RAFT_LEADER);
    char big[400];
    memset(big, 'b', sizeof(big));
    uint64_t idx;
    int32_t hint;
    for (int i = 0; i < 200; i++) ASSERT_EQ(rn_raft_propose(s.r, big, sizeof(big), &idx, &hint), RN_OK);
    ASSERT_EQ(rn_raft_commit_index(s.r), idx);
    ASSERT_GT(rn_raft_snapshot_meta(s.r)->index, 150);
    ASSERT_LE(rn_raft_last_index(s.r) - rn_raft_snapshot_meta(s.r)->index, 12);
    solo_stop(&s);
    tl_rmrf(dir);
}

int main(void) {
    rn_log_set_level(RN_LOG_ERROR);
    return rn_test_main();
}
