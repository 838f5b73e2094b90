/* Unit tests for the transaction side of src/log: ongoing transactions, the
 * last stable offset, COMMIT/ABORT control batches and the aborted list. */
#include "rn_clock.h"
#include "rn_test.h"
#include "test_log_util.h"

static rn_log_config_t cfg_lazy(void) {
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.retention_ms = -1;
    c.flush_messages = 1000000; /* lazy: the high watermark is the log end */
    return c;
}

/* A transactional data batch of n records. */
static rn_err_t txn_data(rn_log_t *log, int64_t pid, int32_t seq, int n, rn_append_result_t *res) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_batch_builder_t bb;
    rn_batch_builder_init(&bb, &b, 0, 0, 1 << 20);
    bb.producer_id = pid;
    bb.producer_epoch = 0;
    bb.base_sequence = seq;
    bb.attributes |= RN_BATCH_ATTR_TRANSACTIONAL;
    for (int i = 0; i < n; i++)
        rn_batch_builder_add(&bb, 1000 + i, (rn_bytes_t){(const uint8_t *)"k", 1}, (rn_bytes_t){(const uint8_t *)"v", 1},
                             0, NULL, NULL);
    if (rn_batch_builder_finish(&bb) != RN_OK) abort();
    rn_append_opts_t o = {.leader_epoch = 0};
    rn_err_t err = rn_log_append(log, b.data, b.len, &o, res);
    rn_buf_free(&b);
    return err;
}

/* A COMMIT or ABORT marker: key {version 0, type}, value {version 0, coordinatorEpoch 0}. */
static rn_err_t txn_marker(rn_log_t *log, int64_t pid, int type, rn_append_result_t *res) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_batch_builder_t bb;
    rn_batch_builder_init(&bb, &b, 0, 0, 1 << 20);
    bb.producer_id = pid;
    bb.producer_epoch = 0;
    bb.attributes |= RN_BATCH_ATTR_TRANSACTIONAL | RN_BATCH_ATTR_CONTROL;
    uint8_t key[4] = {0, 0, 0, (uint8_t)type}, val[6] = {0};
    rn_batch_builder_add(&bb, 2000, (rn_bytes_t){key, 4}, (rn_bytes_t){val, 6}, 0, NULL, NULL);
    if (rn_batch_builder_finish(&bb) != RN_OK) abort();
    rn_append_opts_t o = {.leader_epoch = 0, .is_internal = true};
    rn_err_t err = rn_log_append(log, b.data, b.len, &o, res);
    rn_buf_free(&b);
    return err;
}

RN_TEST(control_type_parsed_from_marker_key) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_batch_builder_t bb;
    rn_batch_builder_init(&bb, &b, 0, 0, 1 << 20);
    bb.attributes |= RN_BATCH_ATTR_TRANSACTIONAL | RN_BATCH_ATTR_CONTROL;
    uint8_t key[4] = {0, 0, 0, 1};
    rn_batch_builder_add(&bb, 1, (rn_bytes_t){key, 4}, (rn_bytes_t){key, 0}, 0, NULL, NULL);
    ASSERT_EQ(rn_batch_builder_finish(&bb), RN_OK);
    ASSERT_EQ(rn__control_type(b.data, b.len), RN_CONTROL_COMMIT);
    b.data[b.len - 3] = 7; /* the key type's low byte: then value length and header count, one byte each */
    ASSERT_EQ(rn__control_type(b.data, b.len), -1);
    ASSERT_EQ(rn__control_type(b.data, 40), -1);
    rn_buf_free(&b);
}

/* A fresh log dir (config in *dc, for reopening) with one lazy-mode log. */
static rn_log_t *lazy_log(const char *path, const char *topic, rn_logdir_config_t *dc, rn_logdir_t **dir) {
    tl_dir_config(dc, path);
    if (rn_logdir_open(dc, dir) != RN_OK) abort();
    rn_log_config_t c = cfg_lazy();
    rn_log_t *log;
    if (rn_logdir_create_log(*dir, topic, 0, &c, &log) != RN_OK) abort();
    return log;
}

RN_TEST(lso_stops_at_ongoing_transaction_and_moves_on_commit) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    rn_logdir_t *dir;
    rn_log_t *log = lazy_log(path, "t", &dc, &dir);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 3, 1, 10, &res), RN_OK); /* 0..2 plain */
    ASSERT_EQ(rn_log_last_stable_offset(log), 3);
    ASSERT_EQ(txn_data(log, 7, 0, 2, &res), RN_OK); /* 3..4 pid 7 */
    ASSERT_EQ(res.base_offset, 3);
    ASSERT_EQ(txn_data(log, 8, 0, 1, &res), RN_OK); /* 5 pid 8 */
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK); /* 6 plain */
    ASSERT_EQ(rn_log_high_watermark(log), 7);
    ASSERT_EQ(rn_log_last_stable_offset(log), 3);
    ASSERT_EQ(txn_data(log, 7, 2, 1, &res), RN_OK); /* 7 pid 7, same transaction */
    ASSERT_EQ(rn_log_last_stable_offset(log), 3);
    /* read_committed reads stop before the first unstable offset */
    rn_log_read_t rd;
    ASSERT_EQ(rn_log_read(log, 0, 1 << 20, true, rn_log_last_stable_offset(log), &rd), RN_OK);
    ASSERT_GT(rd.len, 0);
    uint8_t *data = tl_read_region(&rd);
    rn_batch_header_t h;
    rn_batch_header_decode(data, &h);
    ASSERT_EQ(h.base_offset + h.last_offset_delta, 2); /* only the plain batch */
    ASSERT_EQ((int64_t)rn_batch_total_size(&h), rd.len);
    free(data);
    rn_fileref_release(rd.file);
    ASSERT_EQ(rn_log_read(log, 3, 1 << 20, true, rn_log_last_stable_offset(log), &rd), RN_OK);
    ASSERT_EQ(rd.len, 0);
    if (rd.file) rn_fileref_release(rd.file);
    ASSERT_EQ(txn_marker(log, 7, RN_CONTROL_COMMIT, &res), RN_OK); /* 8 */
    ASSERT_EQ(res.base_offset, 8);
    ASSERT_EQ(rn_log_last_stable_offset(log), 5); /* pid 8 still open */
    rn_aborted_txn_t tx[4];
    ASSERT_EQ(rn_log_aborted_txns(log, 0, 100, tx, 4), 0);
    ASSERT_EQ(txn_marker(log, 8, RN_CONTROL_ABORT, &res), RN_OK); /* 9 */
    ASSERT_EQ(rn_log_last_stable_offset(log), 10);
    ASSERT_EQ(rn_log_aborted_txns(log, 0, 100, tx, 4), 1);
    ASSERT_EQ(tx[0].producer_id, 8);
    ASSERT_EQ(tx[0].first_offset, 5);
    ASSERT_EQ(tx[0].last_offset, 9);
    /* range filters: ended before `from`, or starting at/after `upper` */
    ASSERT_EQ(rn_log_aborted_txns(log, 10, 100, tx, 4), 0);
    ASSERT_EQ(rn_log_aborted_txns(log, 0, 5, tx, 4), 0);
    ASSERT_EQ(rn_log_aborted_txns(log, 9, 6, tx, 4), 1);
    /* a marker for a producer with nothing open changes nothing */
    ASSERT_EQ(txn_marker(log, 9, RN_CONTROL_ABORT, &res), RN_OK); /* 10 */
    ASSERT_EQ(rn_log_aborted_txns(log, 0, 100, tx, 4), 1);
    ASSERT_EQ(rn_log_last_stable_offset(log), 11);
    /* a new transaction of pid 8, sequences continue */
    ASSERT_EQ(txn_data(log, 8, 1, 1, &res), RN_OK); /* 11 */
    ASSERT_EQ(rn_log_last_stable_offset(log), 11);
    ASSERT_EQ(txn_marker(log, 8, RN_CONTROL_ABORT, &res), RN_OK); /* 12 */
    ASSERT_EQ(rn_log_aborted_txns(log, 0, 100, tx, 4), 2);
    ASSERT_EQ(tx[1].first_offset, 11);
    ASSERT_EQ(tx[1].last_offset, 12);
    ASSERT_EQ(rn_log_aborted_txns(log, 10, 100, tx, 4), 1);
    ASSERT_EQ(tx[0].first_offset, 11);
    /* DeleteRecords past the first abort forgets it */
    int64_t start;
    ASSERT_EQ(rn_log_delete_records(log, 10, &start), RN_OK);
    ASSERT_EQ(rn_log_aborted_txns(log, 0, 100, tx, 4), 1);
    ASSERT_EQ(rn_log_last_stable_offset(log), 13);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(durable_lso_never_passes_high_watermark) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    tl_dir_config(&dc, path);
    rn_logdir_t *dir;
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    rn_log_config_t c;
    rn_log_config_default(&c);
    rn_log_t *log;
    ASSERT_EQ(rn_logdir_create_log(dir, "d", 0, &c, &log), RN_OK);
    rn_append_result_t res;
    ASSERT_EQ(txn_data(log, 3, 0, 4, &res), RN_OK);
    ASSERT_LE(rn_log_last_stable_offset(log), 0);
    ASSERT_EQ(txn_marker(log, 3, RN_CONTROL_COMMIT, &res), RN_OK);
    ASSERT_LE(rn_log_last_stable_offset(log), rn_log_high_watermark(log));
    for (int i = 0; i < 2000 && rn_log_last_stable_offset(log) < 5; i++) usleep(1000);
    ASSERT_EQ(rn_log_last_stable_offset(log), 5);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

RN_TEST(txnindex_entry_layout) {
    rn_aborted_txn_t a = {0x0102030405060708LL, 17, 42}, b;
    uint8_t e[RN__TXNINDEX_ENTRY];
    rn__txnindex_encode(e, &a, 43);
    ASSERT_EQ(e[0], 0); /* version int16 0 */
    ASSERT_EQ(e[1], 0);
    ASSERT_EQ(e[2], 0x01); /* producerId big-endian */
    ASSERT_EQ(e[9], 0x08);
    ASSERT_EQ(e[17], 17); /* firstOffset */
    ASSERT_EQ(e[25], 42); /* lastOffset */
    ASSERT_EQ(e[33], 43); /* lastStableOffset */
    int64_t lso;
    ASSERT_TRUE(rn__txnindex_decode(e, &b, &lso));
    ASSERT_EQ(b.producer_id, a.producer_id);
    ASSERT_EQ(b.first_offset, 17);
    ASSERT_EQ(b.last_offset, 42);
    ASSERT_EQ(lso, 43);
    e[1] = 1; /* unknown version */
    ASSERT_FALSE(rn__txnindex_decode(e, &b, &lso));
}

/* The state a read_committed fetch depends on: LSO and the aborted list. */
static void check_txn_state(rn_log_t *log, int64_t lso, int32_t naborted, int64_t last_first) {
    ASSERT_EQ(rn_log_last_stable_offset(log), lso);
    rn_aborted_txn_t tx[8];
    int32_t n = rn_log_aborted_txns(log, 0, INT64_MAX, tx, 8);
    ASSERT_EQ(n, naborted);
    if (n > 0) ASSERT_EQ(tx[n - 1].first_offset, last_first);
}

/* Aborted transactions in two segments and one open transaction survive a
 * clean close, a crash (rebuilt from the snapshot + a scan) and retention. */
RN_TEST(transactions_survive_reopen_and_crash) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    rn_logdir_t *dir;
    rn_log_t *log = lazy_log(path, "r", &dc, &dir);
    rn_append_result_t res;
    ASSERT_EQ(txn_data(log, 5, 0, 2, &res), RN_OK);                  /* 0..1 pid 5 */
    ASSERT_EQ(txn_marker(log, 5, RN_CONTROL_ABORT, &res), RN_OK);     /* 2 */
    pthread_rwlock_wrlock(&log->lock);
    ASSERT_EQ(rn__log_roll(log, 3, rn_clock_wall_ms()), RN_OK);                  /* segment 3 */
    pthread_rwlock_unlock(&log->lock);
    ASSERT_EQ(txn_data(log, 6, 0, 1, &res), RN_OK);                   /* 3 pid 6 */
    ASSERT_EQ(txn_marker(log, 6, RN_CONTROL_ABORT, &res), RN_OK);     /* 4 */
    ASSERT_EQ(txn_data(log, 7, 0, 3, &res), RN_OK);                   /* 5..7 pid 7, left open */
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK);                 /* 8 plain */
    check_txn_state(log, 5, 2, 3);
    char idx[4096];
    rn__segment_path(log, 3, ".txnindex", idx, sizeof(idx));
    ASSERT_EQ(tl_file_size(idx), 34);
    rn_logdir_close(dir);

    /* clean: from the .txnindex files and the snapshot */
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "r", 0);
    check_txn_state(log, 5, 2, 3);
    /* more after the snapshot, then a crash: the scan finds them */
    ASSERT_EQ(txn_data(log, 8, 0, 1, &res), RN_OK);                   /* 9 pid 8 */
    ASSERT_EQ(txn_marker(log, 7, RN_CONTROL_ABORT, &res), RN_OK);     /* 10 */
    ASSERT_TRUE(tl_wait_ticket(dir, res.sync_ticket));
    check_txn_state(log, 9, 3, 5);
    rn__logdir_crash(dir);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "r", 0);
    check_txn_state(log, 9, 3, 5);
    ASSERT_EQ(tl_file_size(idx), 2 * 34); /* the scan's entry replaced the one past the snapshot, no duplicate */
    ASSERT_EQ(txn_marker(log, 8, RN_CONTROL_COMMIT, &res), RN_OK);    /* 11 */
    ASSERT_TRUE(tl_wait_ticket(dir, res.sync_ticket)); /* reopened with the default (durable) config */
    check_txn_state(log, 12, 3, 5);
    rn_logdir_close(dir);

    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "r", 0);
    check_txn_state(log, 12, 3, 5);
    /* the first segment goes: its aborted transaction and its .txnindex with it */
    char idx0[4096];
    rn__segment_path(log, 0, ".txnindex", idx0, sizeof(idx0));
    ASSERT_EQ(tl_file_size(idx0), 34);
    int64_t start;
    ASSERT_EQ(rn_log_delete_records(log, 3, &start), RN_OK);
    rn_logdir_maintain(dir);
    check_txn_state(log, 12, 2, 5);
    /* a .txnindex left by a delete interrupted after its .log went: removed at open */
    char orphan[4096];
    rn__segment_path(log, 1, ".txnindex", orphan, sizeof(orphan));
    rn_logdir_close(dir);
    ASSERT_EQ(tl_file_size(idx0), -1);
    FILE *f = fopen(orphan, "w");
    ASSERT_TRUE(f != NULL);
    fwrite(idx0, 1, 34, f); /* any 34 bytes */
    fclose(f);
    ASSERT_EQ(rn_logdir_open(&dc, &dir), RN_OK);
    log = rn_logdir_find(dir, "r", 0);
    check_txn_state(log, 12, 2, 5);
    ASSERT_EQ(tl_file_size(orphan), -1);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

/* A transactional data batch with key k and value v (one record). */
static void txn_kv(rn_log_t *log, int64_t pid, int32_t seq, const char *k, const char *v) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_batch_builder_t bb;
    rn_batch_builder_init(&bb, &b, 0, 0, 1 << 20);
    bb.producer_id = pid;
    bb.producer_epoch = 0;
    bb.base_sequence = seq;
    bb.attributes |= RN_BATCH_ATTR_TRANSACTIONAL;
    rn_batch_builder_add(&bb, rn_clock_wall_ms(), (rn_bytes_t){(const uint8_t *)k, (int32_t)strlen(k)},
                         (rn_bytes_t){(const uint8_t *)v, (int32_t)strlen(v)}, 0, NULL, NULL);
    if (rn_batch_builder_finish(&bb) != RN_OK) abort();
    rn_append_opts_t o = {.leader_epoch = 0};
    rn_append_result_t res;
    if (rn_log_append(log, b.data, b.len, &o, &res) != RN_OK) abort();
    rn_buf_free(&b);
}

/* The values of key k left in the log, oldest first, into out (NUL-separated count returned). */
static int values_of(rn_log_t *log, const char *k, char out[][8], int max) {
    int n = 0;
    int64_t off = rn_log_start_offset(log), end = rn_log_end_offset(log);
    rn_arena_t a;
    rn_arena_init(&a, 1 << 20);
    while (off < end) {
        rn_log_read_t rd;
        if (rn_log_read(log, off, 1 << 20, true, end, &rd) != RN_OK || rd.len <= 0) break;
        uint8_t *data = tl_read_region(&rd);
        rn_fileref_release(rd.file);
        for (size_t pos = 0; pos + RN_BATCH_HEADER_SIZE <= (size_t)rd.len;) {
            rn_batch_header_t h;
            rn_batch_header_decode(data + pos, &h);
            rn_record_iter_t it;
            rn_record_t rec;
            if (!rn_batch_is_control(&h) && rn_record_iter_init(&it, data + pos, rn_batch_total_size(&h), 0, &a) == RN_OK)
                while (rn_record_iter_next(&it, &rec))
                    if (rec.key.len == (int32_t)strlen(k) && !memcmp(rec.key.ptr, k, strlen(k)) && n < max) {
                        snprintf(out[n++], 8, "%.*s", (int)rec.value.len, (const char *)rec.value.ptr);
                    }
            off = rn_batch_last_offset(&h) + 1;
            pos += rn_batch_total_size(&h);
            rn_arena_reset(&a);
        }
        free(data);
    }
    rn_arena_reset(&a);
    return n;
}

/* Compaction drops aborted transactional records and never lets one stand
 * for its key's latest value; an open transaction is not compacted. */
RN_TEST(compaction_drops_aborted_records_and_keeps_the_committed_value) {
    const char *path = tl_mkdtemp();
    rn_logdir_config_t dc;
    rn_logdir_t *dir;
    rn_log_t *log = lazy_log(path, "c", &dc, &dir);
    log->cfg.cleanup_policy = RN_CLEANUP_COMPACT;
    log->cfg.min_cleanable_dirty_ratio = 0.01;
    rn_append_result_t res;
    txn_kv(log, 1, 0, "k", "v1");                                /* 0 committed */
    ASSERT_EQ(txn_marker(log, 1, RN_CONTROL_COMMIT, &res), RN_OK); /* 1 */
    txn_kv(log, 2, 0, "k", "v2");                                /* 2 aborted */
    ASSERT_EQ(txn_marker(log, 2, RN_CONTROL_ABORT, &res), RN_OK);  /* 3 */
    txn_kv(log, 3, 0, "j", "open");                              /* 4 left open */
    pthread_rwlock_wrlock(&log->lock);
    ASSERT_EQ(rn__log_roll(log, rn_log_end_offset(log), rn_clock_wall_ms()), RN_OK);
    pthread_rwlock_unlock(&log->lock);
    ASSERT_EQ(tl_append(log, 1, 1, 10, &res), RN_OK);
    pthread_rwlock_wrlock(&log->lock);
    ASSERT_EQ(rn__log_roll(log, rn_log_end_offset(log), rn_clock_wall_ms()), RN_OK);
    pthread_rwlock_unlock(&log->lock);
    /* the open transaction (LSO 4) holds the segment back */
    ASSERT_EQ(rn__log_compact(log, rn_clock_wall_ms(), 1 << 20), 0);
    char vals[4][8];
    ASSERT_EQ(values_of(log, "k", vals, 4), 2);
    ASSERT_EQ(txn_marker(log, 3, RN_CONTROL_COMMIT, &res), RN_OK);
    ASSERT_GT(rn__log_compact(log, rn_clock_wall_ms(), 1 << 20), 0);
    ASSERT_EQ(values_of(log, "k", vals, 4), 1);
    ASSERT_STREQ(vals[0], "v1");
    ASSERT_EQ(values_of(log, "j", vals, 4), 1);
    rn_logdir_close(dir);
    tl_rmrf(path);
}

int main(void) { return rn_test_main(); }
