/* Unit tests for src/log compaction: latest record per key, tombstones,
 * bounded offset map, batch metadata kept, swap leftovers at recovery. */
#include "rn_arena.h"
#include "rn_test.h"
#include "test_log_util.h"

typedef struct {
    int key;         /* -1: no key */
    int value;       /* -1: tombstone */
} kv_t;

static rn_err_t append_kvs(rn_log_t *log, const kv_t *kvs, int n, int64_t ts, int64_t pid, int32_t seq) {
    rn_buf_t out;
    rn_buf_init(&out, 1 << 20);
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, &out, 0, RN_COMPRESSION_NONE, 1 << 20);
    if (pid >= 0) {
        b.producer_id = pid;
        b.producer_epoch = 1;
        b.base_sequence = seq;
    }
    for (int i = 0; i < n; i++) {
        char k[16], v[32];
        int kl = snprintf(k, sizeof(k), "key%d", kvs[i].key);
        int vl = snprintf(v, sizeof(v), "value%d-%d", kvs[i].key, kvs[i].value);
        rn_batch_builder_add(&b, ts, kvs[i].key < 0 ? (rn_bytes_t){NULL, -1} : (rn_bytes_t){(uint8_t *)k, kl},
                             kvs[i].value < 0 ? (rn_bytes_t){NULL, -1} : (rn_bytes_t){(uint8_t *)v, vl}, 0, NULL,
                             NULL);
    }
    if (rn_batch_builder_finish(&b) != RN_OK) abort();
    rn_append_opts_t o = {.leader_epoch = 3};
    rn_append_result_t res;
    rn_err_t err = rn_log_append(log, out.data, out.len, &o, &res);
    rn_buf_free(&out);
    return err;
}

/* One record seen by a full scan of the log. */
typedef struct {
    int64_t offset;
    int key, value; /* value -1: tombstone */
    int64_t producer_id;
} seen_t;

static int scan_all(rn_log_t *log, seen_t *out, int max) {
    int n = 0;
    int64_t o = rn_log_start_offset(log);
    rn_arena_t arena;
    rn_arena_init(&arena, 1 << 24);
    while (o < rn_log_end_offset(log)) {
        rn_log_read_t r;
        if (rn_log_read(log, o, 1 << 20, true, INT64_MAX, &r) != RN_OK || r.len == 0) break;
        uint8_t *p = tl_read_region(&r);
        for (size_t pos = 0; pos < (size_t)r.len;) {
            rn_batch_header_t h;
            rn_batch_header_decode(p + pos, &h);
            if (rn_batch_compute_crc(p + pos, rn_batch_total_size(&h)) != h.crc) abort();
            rn_record_iter_t it;
            rn_arena_reset(&arena);
            if (rn_record_iter_init(&it, p + pos, rn_batch_total_size(&h), 1 << 22, &arena) != RN_OK) abort();
            rn_record_t rec;
            while (rn_record_iter_next(&it, &rec) && n < max) {
                seen_t *s = &out[n++];
                s->offset = rec.offset;
                s->key = rec.key.len < 0 ? -1 : atoi((const char *)rec.key.ptr + 3);
                s->value = -1;
                if (rec.value.len >= 0) {
                    char v[64];
                    snprintf(v, sizeof(v), "%.*s", rec.value.len, rec.value.ptr);
                    s->value = atoi(strchr(v, '-') + 1);
                }
                s->producer_id = h.producer_id;
            }
            if (it.err) abort();
            o = rn_batch_last_offset(&h) + 1;
            pos += rn_batch_total_size(&h);
        }
        free(p);
        rn_fileref_release(r.file);
    }
    rn_arena_reset(&arena);
    return n;
}

static rn_log_config_t compact_cfg(void) {
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.cleanup_policy = RN_CLEANUP_COMPACT;
    c.segment_bytes = 1500;
    c.min_cleanable_dirty_ratio = 0.01;
    c.delete_retention_ms = 24LL * 3600 * 1000;
    c.retention_ms = -1;
    c.flush_messages = 1000; /* lazy: HW at the end right away */
    return c;
}

/* Checks: in the cleaned part every key appears once at its latest offset. */
static void check_compacted(rn_log_t *log, int64_t clean_below, const int64_t *latest, int nkeys) {
    static seen_t seen[20000];
    int n = scan_all(log, seen, 20000);
    int64_t prev = -1;
    for (int i = 0; i < n; i++) {
        ASSERT_GT(seen[i].offset, prev);
        prev = seen[i].offset;
        if (seen[i].offset >= clean_below || seen[i].key < 0 || seen[i].key >= nkeys) continue;
        ASSERT_EQ(seen[i].offset, latest[seen[i].key]);
    }
}

RN_TEST(compaction_keeps_latest_per_key_and_drops_old_tombstones) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = compact_cfg();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "cmp", 0, &c, &log), RN_OK);
    enum { K = 30 };
    int64_t latest[K];
    int64_t now = rn_clock_wall_ms(), old = now - 3 * 86400 * 1000LL;
    int64_t off = 0;
    /* 8 rounds over all keys, 5 keys per batch; idempotent producer 42 */
    int32_t seq = 0;
    for (int round = 0; round < 8; round++) {
        for (int k0 = 0; k0 < K; k0 += 5) {
            kv_t kvs[5];
            for (int i = 0; i < 5; i++) kvs[i] = (kv_t){k0 + i, round};
            ASSERT_EQ(append_kvs(log, kvs, 5, old, 42, seq), RN_OK);
            seq += 5;
            for (int i = 0; i < 5; i++) latest[k0 + i] = off + i;
            off += 5;
        }
    }
    /* old tombstones for keys 0-4, a recent tombstone for key 5 */
    kv_t tomb[5] = {{0, -1}, {1, -1}, {2, -1}, {3, -1}, {4, -1}};
    ASSERT_EQ(append_kvs(log, tomb, 5, old, -1, 0), RN_OK);
    for (int i = 0; i < 5; i++) latest[i] = off + i;
    off += 5;
    kv_t t5 = {5, -1};
    ASSERT_EQ(append_kvs(log, &t5, 1, now, -1, 0), RN_OK);
    latest[5] = off++;
    /* filler so the above is sealed */
    for (int i = 0; i < 12; i++) {
        kv_t f = {1000 + i, 1};
        ASSERT_EQ(append_kvs(log, &f, 1, now, -1, 0), RN_OK);
        off++;
    }
    int64_t size_before = rn_log_size_bytes(log);
    int64_t active_base = rn__log_active(log)->base_offset;
    ASSERT_GT(active_base, latest[5]);

    rn_logdir_maintain(dir);
    ASSERT_LT(rn_log_size_bytes(log), size_before / 2);
    ASSERT_EQ(rn_log_end_offset(log), off);
    static seen_t seen[5000];
    int n = scan_all(log, seen, 5000);
    int have[K] = {0};
    for (int i = 0; i < n; i++) {
        if (seen[i].key >= 0 && seen[i].key < K) {
            have[seen[i].key]++;
            ASSERT_EQ(seen[i].offset, latest[seen[i].key]);
            if (seen[i].key >= 6) ASSERT_EQ(seen[i].value, 7);
            if (seen[i].key >= 6) ASSERT_EQ(seen[i].producer_id, 42);
        }
    }
    for (int k = 0; k < 5; k++) ASSERT_EQ(have[k], 0); /* old tombstones gone with their keys */
    ASSERT_EQ(have[5], 1);                              /* recent tombstone kept */
    for (int k = 6; k < K; k++) ASSERT_EQ(have[k], 1);
    /* every offset still readable: a compacted-away offset reads the next batch */
    for (int64_t o = rn_log_start_offset(log); o < off; o++) {
        rn_log_read_t r;
        ASSERT_EQ(rn_log_read(log, o, 1 << 20, true, INT64_MAX, &r), RN_OK);
        ASSERT_GT(r.len, 0);
        uint8_t *p = tl_read_region(&r);
        rn_batch_header_t h;
        rn_batch_header_decode(p, &h);
        ASSERT_GE(rn_batch_last_offset(&h), o);
        free(p);
        rn_fileref_release(r.file);
    }
    /* the producer's sequence state is intact: the next sequence is accepted */
    kv_t next = {7, 8};
    ASSERT_EQ(append_kvs(log, &next, 1, now, 42, seq), RN_OK);
    off++;

    /* survives a clean reopen and a crash */
    rn_logdir_close(dir);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "cmp", 0);
    ASSERT_EQ(rn_log_end_offset(log), off);
    check_compacted(log, active_base, latest, K);
    rn__logdir_crash(dir);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "cmp", 0);
    ASSERT_EQ(rn_log_end_offset(log), off);
    check_compacted(log, active_base, latest, K);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(compaction_with_small_dedupe_buffer_takes_several_passes) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    dc.cleaner_dedupe_buffer_bytes = 4096; /* 256 slots, 192 keys per pass */
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = compact_cfg();
    c.segment_bytes = 4000;
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "cmp2", 0, &c, &log), RN_OK);
    enum { K = 500 };
    static int64_t latest[K];
    int64_t now = rn_clock_wall_ms();
    int64_t off = 0;
    for (int round = 0; round < 3; round++) {
        for (int k0 = 0; k0 < K; k0 += 10) {
            kv_t kvs[10];
            for (int i = 0; i < 10; i++) kvs[i] = (kv_t){k0 + i, round};
            ASSERT_EQ(append_kvs(log, kvs, 10, now, -1, 0), RN_OK);
            for (int i = 0; i < 10; i++) latest[k0 + i] = off + i;
            off += 10;
        }
    }
    kv_t f = {K + 1, 0};
    for (int i = 0; i < 60; i++, off++) ASSERT_EQ(append_kvs(log, &f, 1, now, -1, 0), RN_OK);
    latest[0] = latest[0]; /* key K+1 is outside the checked range */
    int64_t active_base = rn__log_active(log)->base_offset;
    int64_t size_before = rn_log_size_bytes(log);
    for (int pass = 0; pass < 12; pass++) rn_logdir_maintain(dir);
    ASSERT_EQ(log->cleaner_offset, active_base);
    ASSERT_LT(rn_log_size_bytes(log), size_before / 2);
    static seen_t seen[20000];
    int n = scan_all(log, seen, 20000);
    static int have[K];
    for (int i = 0; i < n; i++) {
        if (seen[i].key < 0 || seen[i].key >= K || seen[i].offset >= active_base) continue;
        have[seen[i].key]++;
        ASSERT_EQ(seen[i].offset, latest[seen[i].key]);
        ASSERT_EQ(seen[i].value, 2);
    }
    for (int k = 0; k < K; k++) ASSERT_EQ(have[k], 1);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(recovery_finishes_or_drops_compaction_leftovers) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c = compact_cfg();
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "swp", 0, &c, &log), RN_OK);
    for (int i = 0; i < 80; i++) {
        kv_t kv = {i % 4, i};
        ASSERT_EQ(append_kvs(log, &kv, 1, rn_clock_wall_ms(), -1, 0), RN_OK);
    }
    ASSERT_GT(log->nsegs, 3);
    int64_t end = rn_log_end_offset(log);
    int64_t b1 = log->segs[1]->base_offset;
    char p[600], q[600], cmd[2000];
    /* segment 1's cleaned copy was committed (.swap) but not yet renamed:
     * simulate with the original bytes, and garble the live .log */
    rn__segment_path(log, b1, ".log", p, sizeof(p));
    rn__segment_path(log, b1, ".log.swap", q, sizeof(q));
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && truncate -s 3 '%s'", p, q, p);
    ASSERT_EQ(system(cmd), 0);
    /* and a .cleaned that never got committed */
    rn__segment_path(log, 0, ".log.cleaned", q, sizeof(q));
    snprintf(cmd, sizeof(cmd), "echo junk > '%s'", q);
    ASSERT_EQ(system(cmd), 0);
    rn__logdir_crash(dir);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "swp", 0);
    ASSERT_EQ(rn_log_end_offset(log), end);
    ASSERT_EQ(tl_file_size(q), -1);
    static seen_t seen[100];
    ASSERT_EQ(scan_all(log, seen, 100), 80);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

int main(void) { return rn_test_main(); }
