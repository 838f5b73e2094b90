/*
 * Unit tests for replication beneath the network: follower appends, log
 * truncation and reset (src/log/rn_log_replica.c), and the leader/follower
 * rules of src/replication/rn_replica.c, with real logs in one process — a
 * "fetch" here is rn_log_read on the leader's log plus the divergence check,
 * exactly what the Fetch handler serves to a follower.
 */
#include "rn_replica.h"
#include "rn_test.h"
#include "test_log_util.h"

static rn_log_config_t small_cfg(void) {
    rn_log_config_t c;
    rn_log_config_default(&c);
    c.segment_bytes = 4096;
    c.index_interval_bytes = 256;
    c.retention_ms = -1;
    return c;
}

typedef struct {
    char path[320];
    rn_logdir_config_t dc;
    rn_logdir_t *dir;
} node_t;

static void node_open(node_t *n, const char *name) {
    snprintf(n->path, sizeof(n->path), "%s/%s", tl_dir, name);
    mkdir(n->path, 0755);
    tl_dir_config(&n->dc, n->path);
    ASSERT_EQ(rn_logdir_open(&n->dc, &n->dir), RN_OK);
}

static rn_log_t *node_log(node_t *n, bool follower) {
    rn_log_t *log = rn_logdir_find(n->dir, "r", 0);
    if (!log) {
        rn_log_config_t c = small_cfg();
        ASSERT_EQ(rn_logdir_create_log(n->dir, "r", 0, &c, &log), RN_OK);
    }
    rn_log_set_replicated(log, follower);
    return log;
}

/* Leader-style append of `nbatches` batches of 3 records at `epoch`. */
static void lead_append(rn_log_t *log, int nbatches, int32_t epoch, int key_base) {
    for (int i = 0; i < nbatches; i++) {
        rn_buf_t b;
        rn_buf_init(&b, 1 << 20);
        tl_batch(&b, 3, 1000 + key_base + i, key_base + i * 3, 40, NULL);
        rn_append_opts_t o = {.leader_epoch = epoch};
        rn_append_result_t res;
        ASSERT_EQ(rn_log_append(log, b.data, b.len, &o, &res), RN_OK);
        rn_buf_free(&b);
    }
}

/* What the leader's Fetch handler answers a follower: divergence first, then data. */
static rn_repl_fetched_t serve(rn_log_t *leader, int64_t fetch_offset, int32_t last_epoch, int32_t max_bytes,
                               uint8_t **buf) {
    rn_repl_fetched_t f = {0};
    *buf = NULL;
    f.diverging = (rn_epoch_end_t){-1, -1};
    f.high_watermark = rn_log_high_watermark(leader);
    f.log_start_offset = rn_log_start_offset(leader);
    if (rn_repl_diverging(leader, last_epoch, fetch_offset, &f.diverging)) return f;
    if (fetch_offset == rn_log_end_offset(leader)) return f;
    rn_log_read_t r;
    rn_err_t err = rn_log_read(leader, fetch_offset, max_bytes, true, INT64_MAX, &r);
    if (err) {
        f.error = (int16_t)err;
        return f;
    }
    *buf = tl_read_region(&r);
    f.records = *buf;
    f.records_len = (size_t)r.len;
    rn_fileref_release(r.file);
    return f;
}

/* Follows until the follower's log end equals the leader's; returns the rounds it took. */
static int follow(rn_log_t *leader, rn_log_t *follower, int32_t max_bytes) {
    for (int round = 1; round <= 200; round++) {
        uint8_t *buf;
        int64_t leo = rn_log_end_offset(follower);
        int32_t last = leo > rn_log_start_offset(follower) ? rn_log_latest_epoch(follower) : -1;
        rn_repl_fetched_t f = serve(leader, leo, last, max_bytes, &buf);
        uint64_t ticket;
        ASSERT_EQ(rn_repl_follower_apply(follower, &f, &ticket), RN_OK);
        free(buf);
        bool quiet = f.diverging.epoch < 0 && f.diverging.end_offset < 0 && f.records_len == 0;
        if (quiet && rn_log_end_offset(follower) == rn_log_end_offset(leader)) return round;
    }
    ASSERT_TRUE(!"follower did not converge");
    return -1;
}

static void assert_same_logs(rn_log_t *a, rn_log_t *b) {
    size_t la, lb;
    uint8_t *pa = tl_log_bytes(a, &la), *pb = tl_log_bytes(b, &lb);
    ASSERT_EQ(rn_log_end_offset(a), rn_log_end_offset(b));
    ASSERT_EQ(la, lb);
    ASSERT_MEMEQ(pa, pb, la);
    free(pa);
    free(pb);
    for (int32_t e = 0; e <= rn_log_latest_epoch(a); e++) {
        int32_t ea, eb;
        int64_t oa, ob;
        ASSERT_EQ(rn_log_end_offset_for_epoch(a, e, &ea, &oa), RN_OK);
        ASSERT_EQ(rn_log_end_offset_for_epoch(b, e, &eb, &ob), RN_OK);
        ASSERT_EQ(ea, eb);
        ASSERT_EQ(oa, ob);
    }
}

RN_TEST(follower_copies_leader_byte_for_byte) {
    tl_mkdtemp();
    node_t a, b;
    node_open(&a, "a");
    node_open(&b, "b");
    rn_log_t *leader = node_log(&a, false), *follower = node_log(&b, true);
    lead_append(leader, 10, 1, 0);
    lead_append(leader, 15, 2, 100);
    lead_append(leader, 10, 4, 200);
    ASSERT_GT(follow(leader, follower, 1500), 3); /* small fetches: many rounds, rolls on both */
    assert_same_logs(leader, follower);
    /* Offsets the follower already holds are refused, not duplicated. */
    rn_log_read_t r;
    ASSERT_EQ(rn_log_read(leader, 0, 1, true, INT64_MAX, &r), RN_OK);
    uint8_t *p = tl_read_region(&r);
    rn_append_opts_t o = {.leader_epoch = -1, .as_follower = true};
    rn_append_result_t res;
    ASSERT_EQ(rn_log_append(follower, p, (size_t)r.len, &o, &res), RN_ERR_OFFSET_OUT_OF_RANGE);
    free(p);
    rn_fileref_release(r.file);
    /* The follower's high watermark follows the leader's (durable: its synced end). */
    for (int i = 0; i < 2000 && rn_log_high_watermark(leader) < rn_log_end_offset(leader); i++) usleep(1000);
    follow(leader, follower, 1500);
    ASSERT_EQ(rn_log_high_watermark(follower), rn_log_end_offset(leader));
    /* It survives a crash of the follower with its epochs. */
    rn__logdir_crash(b.dir);
    ASSERT_EQ(rn_logdir_open(&b.dc, &b.dir), RN_OK);
    follower = node_log(&b, true);
    assert_same_logs(leader, follower);
    rn_logdir_close(a.dir);
    rn_logdir_close(b.dir);
    tl_rmrf(tl_dir);
}

RN_TEST(truncate_mid_batch_across_segments_then_reopen) {
    tl_mkdtemp();
    node_t a;
    node_open(&a, "a");
    rn_log_t *log = node_log(&a, false);
    lead_append(log, 40, 1, 0); /* 120 offsets over several 4 KB segments */
    lead_append(log, 10, 3, 500);
    int64_t end;
    /* Offset 31 lies inside the batch [30, 32]: the cut lands on 30. */
    ASSERT_EQ(rn_log_truncate_to(log, 31, &end), RN_OK);
    ASSERT_EQ(end, 30);
    ASSERT_EQ(rn_log_end_offset(log), 30);
    ASSERT_LE(rn_log_high_watermark(log), 30);
    ASSERT_EQ(rn_log_latest_epoch(log), 1); /* epoch 3 started at 120: gone */
    rn_log_read_t r;
    ASSERT_EQ(rn_log_read(log, 30, 1 << 20, true, INT64_MAX, &r), RN_OK); /* at the end: nothing */
    ASSERT_EQ(r.len, 0);
    ASSERT_EQ(rn_log_read(log, 31, 1 << 20, true, INT64_MAX, &r), RN_ERR_OFFSET_OUT_OF_RANGE);
    ASSERT_EQ(rn_log_read(log, 29, 1 << 20, true, INT64_MAX, &r), RN_OK);
    rn_fileref_release(r.file);
    int64_t off, ts;
    /* Batch i holds timestamps 1000+i .. 1002+i: the first record at >= 1009 is offset 3*7+2. */
    ASSERT_EQ(rn_log_offset_for_timestamp(log, 1000 + 9, &off, &ts), RN_OK);
    ASSERT_EQ(off, 23);
    ASSERT_EQ(rn_log_offset_for_timestamp(log, 1000 + 30, &off, &ts), RN_OK);
    ASSERT_EQ(off, -1);
    /* Appends continue from the cut, with a new epoch. */
    lead_append(log, 5, 5, 900);
    ASSERT_EQ(rn_log_end_offset(log), 45);
    int32_t e;
    ASSERT_EQ(rn_log_end_offset_for_epoch(log, 1, &e, &end), RN_OK);
    ASSERT_EQ(end, 30);
    /* Truncating at or past the end does nothing; below the start is refused. */
    ASSERT_EQ(rn_log_truncate_to(log, 45, &end), RN_OK);
    ASSERT_EQ(end, 45);
    ASSERT_EQ(rn_log_truncate_to(log, -1, &end), RN_ERR_OFFSET_OUT_OF_RANGE);
    size_t len_before;
    uint8_t *before = tl_log_bytes(log, &len_before);
    for (int i = 0; i < 2000 && rn_log_high_watermark(log) < 45; i++) usleep(1000);
    rn_logdir_close(a.dir); /* clean */
    ASSERT_EQ(rn_logdir_open(&a.dc, &a.dir), RN_OK);
    log = node_log(&a, false);
    ASSERT_EQ(rn_log_end_offset(log), 45);
    size_t len_after;
    uint8_t *after = tl_log_bytes(log, &len_after);
    ASSERT_EQ(len_before, len_after);
    ASSERT_MEMEQ(before, after, len_before);
    free(after);
    rn__logdir_crash(a.dir); /* and unclean: every batch re-checked */
    ASSERT_EQ(rn_logdir_open(&a.dc, &a.dir), RN_OK);
    log = node_log(&a, false);
    ASSERT_EQ(rn_log_end_offset(log), 45);
    ASSERT_EQ(rn_log_latest_epoch(log), 5);
    after = tl_log_bytes(log, &len_after);
    ASSERT_EQ(len_before, len_after);
    ASSERT_MEMEQ(before, after, len_before);
    free(after);
    free(before);
    rn_logdir_close(a.dir);
    tl_rmrf(tl_dir);
}

RN_TEST(truncate_forgets_idempotent_state_past_the_cut) {
    tl_mkdtemp();
    node_t a;
    node_open(&a, "a");
    rn_log_t *log = node_log(&a, false);
    for (int i = 0; i < 4; i++) {
        rn_buf_t b;
        rn_buf_init(&b, 1 << 20);
        tl_batch_opts_t po = {.producer_id = 7, .producer_epoch = 0, .base_sequence = i * 2};
        tl_batch(&b, 2, 5000, i * 2, 10, &po);
        rn_append_opts_t o = {.leader_epoch = 1};
        rn_append_result_t res;
        ASSERT_EQ(rn_log_append(log, b.data, b.len, &o, &res), RN_OK);
        rn_buf_free(&b);
    }
    int64_t end;
    ASSERT_EQ(rn_log_truncate_to(log, 4, &end), RN_OK); /* batches with sequences 4..7 cut */
    ASSERT_EQ(end, 4);
    /* The producer's retry of sequence 4 is now new data, not a duplicate. */
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    tl_batch_opts_t po = {.producer_id = 7, .producer_epoch = 0, .base_sequence = 4};
    tl_batch(&b, 2, 5000, 4, 10, &po);
    rn_append_opts_t o = {.leader_epoch = 2};
    rn_append_result_t res;
    ASSERT_EQ(rn_log_append(log, b.data, b.len, &o, &res), RN_OK);
    ASSERT_FALSE(res.duplicate);
    ASSERT_EQ(res.base_offset, 4);
    rn_buf_free(&b);
    rn_logdir_close(a.dir);
    tl_rmrf(tl_dir);
}

RN_TEST(reset_to_starts_empty_at_offset) {
    tl_mkdtemp();
    node_t a;
    node_open(&a, "a");
    rn_log_t *log = node_log(&a, true);
    lead_append(log, 30, 1, 0);
    ASSERT_EQ(rn_log_reset_to(log, 1000), RN_OK);
    ASSERT_EQ(rn_log_start_offset(log), 1000);
    ASSERT_EQ(rn_log_end_offset(log), 1000);
    ASSERT_EQ(rn_log_high_watermark(log), 1000);
    ASSERT_EQ(rn_log_latest_epoch(log), -1);
    /* A leader's batch at 1000 (epoch 6) follows. */
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    tl_batch(&b, 3, 77, 0, 10, NULL);
    rn_batch_set_base_offset(b.data, 1000);
    rn_batch_set_leader_epoch(b.data, 6);
    rn_append_opts_t o = {.leader_epoch = -1, .as_follower = true};
    rn_append_result_t res;
    ASSERT_EQ(rn_log_append(log, b.data, b.len, &o, &res), RN_OK);
    ASSERT_EQ(res.base_offset, 1000);
    ASSERT_EQ(rn_log_end_offset(log), 1003);
    rn_buf_free(&b);
    rn_logdir_close(a.dir);
    ASSERT_EQ(rn_logdir_open(&a.dc, &a.dir), RN_OK);
    log = node_log(&a, true);
    ASSERT_EQ(rn_log_start_offset(log), 1000);
    ASSERT_EQ(rn_log_end_offset(log), 1003);
    ASSERT_EQ(rn_log_latest_epoch(log), 6);
    rn_logdir_close(a.dir);
    tl_rmrf(tl_dir);
}

RN_TEST(replicated_log_leaves_high_watermark_to_replication) {
    tl_mkdtemp();
    node_t a;
    node_open(&a, "a");
    rn_log_t *log = node_log(&a, true);
    rn_append_result_t res;
    ASSERT_EQ(tl_append(log, 5, 1, 10, &res), RN_OK);
    ASSERT_TRUE(tl_wait_ticket(a.dir, res.sync_ticket));
    ASSERT_EQ(rn_log_high_watermark(log), 0);
    ASSERT_EQ(rn_log_local_durable_end(log), 5);
    rn_log_set_high_watermark(log, 3);
    ASSERT_EQ(rn_log_high_watermark(log), 3);
    rn_log_set_high_watermark(log, 2); /* never back */
    ASSERT_EQ(rn_log_high_watermark(log), 3);
    rn_log_set_high_watermark(log, 99); /* never past the log end */
    ASSERT_EQ(rn_log_high_watermark(log), 5);
    rn_logdir_close(a.dir);
    tl_rmrf(tl_dir);
}

/* KIP-101's first case: a follower that only knows an old high watermark must
 * not cut committed data, and a leader that failed must lose its unreplicated tail. */
RN_TEST(divergent_tail_truncated_by_epoch_not_high_watermark) {
    tl_mkdtemp();
    node_t a, b;
    node_open(&a, "a");
    node_open(&b, "b");
    rn_log_t *la = node_log(&a, true), *lb = node_log(&b, true);
    lead_append(la, 5, 1, 0); /* A leads epoch 1: [0, 15) */
    follow(la, lb, 1 << 20);
    ASSERT_EQ(rn_log_end_offset(lb), 15);
    lead_append(la, 5, 1, 50); /* [15, 30) never reaches B */
    rn_log_set_high_watermark(la, 6); /* A learnt of commits up to 6 only */
    /* A fails; B leads epoch 2 and writes [15, 21). */
    rn_log_set_replicated(lb, false);
    ASSERT_EQ(rn_log_begin_epoch(lb, 2), RN_OK);
    lead_append(lb, 2, 2, 80);
    /* A returns as a follower. */
    uint8_t *buf;
    rn_repl_fetched_t f = serve(lb, rn_log_end_offset(la), rn_log_latest_epoch(la), 1 << 20, &buf);
    ASSERT_EQ(f.diverging.epoch, 1);
    ASSERT_EQ(f.diverging.end_offset, 15);
    bool done;
    ASSERT_EQ(rn_repl_truncation_offset(la, f.diverging, &done), 15);
    ASSERT_TRUE(done);
    uint64_t t;
    ASSERT_EQ(rn_repl_follower_apply(la, &f, &t), RN_OK);
    ASSERT_EQ(rn_log_end_offset(la), 15); /* not 6: committed data stays */
    follow(lb, la, 1 << 20);
    assert_same_logs(la, lb);
    rn_logdir_close(a.dir);
    rn_logdir_close(b.dir);
    tl_rmrf(tl_dir);
}

/* A node that became leader and appended nothing before losing the leadership holds an
 * epoch entry at its log end the new leader never had: the first fetch's diverging epoch
 * removes it (no cut), so the next fetches append. It used to stay, and every fetch got
 * the same diverging epoch back: the follower never caught up (never rejoined the ISR). */
RN_TEST(empty_epoch_at_the_log_end_is_dropped_on_divergence) {
    tl_mkdtemp();
    node_t a, b;
    node_open(&a, "a");
    node_open(&b, "b");
    rn_log_t *la = node_log(&a, true), *lb = node_log(&b, true);
    lead_append(lb, 2, 0, 0); /* B leads epoch 0: [0, 6) */
    follow(lb, la, 1 << 20);
    rn_log_set_replicated(la, false);
    ASSERT_EQ(rn_log_begin_epoch(la, 1), RN_OK); /* A leads epoch 1, appends nothing */
    ASSERT_EQ(rn_log_latest_epoch(la), 1);
    rn_log_set_replicated(la, true);
    rn_log_set_replicated(lb, false);
    ASSERT_EQ(rn_log_begin_epoch(lb, 2), RN_OK); /* then B leads epoch 2 and writes [6, 12) */
    lead_append(lb, 2, 2, 40);
    uint8_t *buf;
    rn_repl_fetched_t f = serve(lb, rn_log_end_offset(la), rn_log_latest_epoch(la), 1 << 20, &buf);
    ASSERT_EQ(f.diverging.epoch, 0);
    ASSERT_EQ(f.diverging.end_offset, 6);
    uint64_t t;
    ASSERT_EQ(rn_repl_follower_apply(la, &f, &t), RN_OK);
    ASSERT_EQ(rn_log_end_offset(la), 6);
    ASSERT_EQ(rn_log_latest_epoch(la), 0); /* epoch 1 is gone */
    ASSERT_TRUE(follow(lb, la, 1 << 20) <= 2);
    assert_same_logs(la, lb);
    rn_logdir_close(a.dir);
    rn_logdir_close(b.dir);
    tl_rmrf(tl_dir);
}

/* Epoch histories that differ in several places converge in more than one round. */
RN_TEST(divergence_over_several_epochs_converges) {
    tl_mkdtemp();
    node_t a, b;
    node_open(&a, "a");
    node_open(&b, "b");
    rn_log_t *la = node_log(&a, false), *lb = node_log(&b, true);
    lead_append(la, 4, 1, 0); /* both: epoch 1, [0, 12) */
    follow(la, lb, 1 << 20);
    lead_append(la, 3, 3, 40); /* A alone: epoch 3 at 12 */
    rn_log_set_replicated(lb, false);
    lead_append(lb, 2, 2, 60); /* B alone: epoch 2 at 12, epoch 4 at 18 */
    ASSERT_EQ(rn_log_begin_epoch(lb, 4), RN_OK);
    lead_append(lb, 3, 4, 70);
    rn_log_set_replicated(la, true);
    int rounds = follow(lb, la, 1 << 20);
    ASSERT_GE(rounds, 3); /* diverge at 3 → back to 1 → data */
    assert_same_logs(la, lb);
    int32_t e;
    int64_t end;
    ASSERT_EQ(rn_log_end_offset_for_epoch(la, 2, &e, &end), RN_OK);
    ASSERT_EQ(e, 2);
    ASSERT_EQ(end, 18);
    ASSERT_EQ(rn_log_end_offset_for_epoch(la, 3, &e, &end), RN_OK);
    ASSERT_EQ(e, 2); /* epoch 3 never happened in the surviving history */
    rn_logdir_close(a.dir);
    rn_logdir_close(b.dir);
    tl_rmrf(tl_dir);
}

RN_TEST(follower_drops_partial_batch_and_refuses_corrupt_one) {
    tl_mkdtemp();
    node_t a, b;
    node_open(&a, "a");
    node_open(&b, "b");
    rn_log_t *la = node_log(&a, false), *lb = node_log(&b, true);
    lead_append(la, 3, 1, 0);
    uint8_t *buf;
    rn_repl_fetched_t f = serve(la, 0, -1, 1 << 20, &buf);
    rn_batch_header_t h;
    rn_batch_header_decode(buf, &h);
    size_t first = rn_batch_total_size(&h);
    f.records_len = first + 20; /* the byte limit cut the second batch */
    uint64_t t;
    ASSERT_EQ(rn_repl_follower_apply(lb, &f, &t), RN_OK);
    ASSERT_EQ(rn_log_end_offset(lb), 3);
    free(buf);
    f = serve(la, 3, 1, 1 << 20, &buf);
    buf[first / 2] ^= 0x40; /* a flipped bit inside the next batch */
    ASSERT_EQ(rn_repl_follower_apply(lb, &f, &t), RN_ERR_CORRUPT_MESSAGE);
    ASSERT_EQ(rn_log_end_offset(lb), 3);
    free(buf);
    follow(la, lb, 1 << 20);
    assert_same_logs(la, lb);
    rn_logdir_close(a.dir);
    rn_logdir_close(b.dir);
    tl_rmrf(tl_dir);
}

RN_TEST(follower_out_of_range_truncates_or_resets) {
    tl_mkdtemp();
    node_t a;
    node_open(&a, "a");
    rn_log_t *log = node_log(&a, true);
    lead_append(log, 10, 1, 0);
    ASSERT_EQ(rn_repl_follower_out_of_range(log, 0, 12), RN_OK); /* ahead of the leader's end */
    ASSERT_EQ(rn_log_end_offset(log), 12);
    ASSERT_EQ(rn_repl_follower_out_of_range(log, 500, 800), RN_OK); /* behind its start */
    ASSERT_EQ(rn_log_start_offset(log), 500);
    ASSERT_EQ(rn_log_end_offset(log), 500);
    rn_logdir_close(a.dir);
    tl_rmrf(tl_dir);
}

RN_TEST(leader_high_watermark_and_isr) {
    rn_repl_leader_t l;
    int32_t reps[] = {1, 2, 3};
    ASSERT_EQ(rn_repl_leader_init(&l, 1, 5, reps, 3, reps, 3, 2, 100, 90, 0), RN_OK);
    ASSERT_EQ(rn_repl_leader_init(&l, 4, 5, reps, 3, reps, 3, 2, 100, 90, 0), RN_ERR_INVALID_ARG);
    ASSERT_EQ(rn_repl_leader_init(&l, 1, 5, reps, 3, reps, 3, 2, 100, 90, 0), RN_OK);
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 9, 10, 100, 0), RN_ERR_NOT_LEADER_OR_FOLLOWER);
    /* Followers at 95 and 100: HW = min over the ISR, the leader counting its durable end. */
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 2, 95, 100, 10), RN_OK);
    ASSERT_FALSE(rn_repl_leader_update_hw(&l, 100)); /* replica 3 not heard from: unknown end */
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 3, 100, 100, 10), RN_OK);
    ASSERT_TRUE(rn_repl_leader_update_hw(&l, 100));
    ASSERT_EQ(l.high_watermark, 95);
    ASSERT_TRUE(rn_repl_leader_update_hw(&l, 100) == false);
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 2, 100, 120, 20), RN_OK);
    ASSERT_TRUE(rn_repl_leader_update_hw(&l, 98)); /* the leader's own sync bounds it */
    ASSERT_EQ(l.high_watermark, 98);
    /* Replica 3 stops fetching: out of the ISR after replica.lag.time.max.ms. */
    int32_t isr[RN_REPL_MAX_REPLICAS], n;
    ASSERT_FALSE(rn_repl_leader_wanted_isr(&l, 5000, 30000, isr, &n));
    ASSERT_TRUE(rn_repl_leader_wanted_isr(&l, 40000, 30000, isr, &n));
    ASSERT_EQ(n, 1); /* 2 also: its last caught-up time is 10 (fetch at 20 was behind 120) */
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 2, 120, 120, 39000), RN_OK);
    ASSERT_TRUE(rn_repl_leader_wanted_isr(&l, 40000, 30000, isr, &n));
    ASSERT_EQ(n, 2);
    ASSERT_TRUE(rn_repl_in(isr, n, 1) && rn_repl_in(isr, n, 2));
    rn_repl_leader_set_pending(&l, isr, n);
    ASSERT_FALSE(rn_repl_leader_wanted_isr(&l, 40000, 30000, isr, &n)); /* already proposed */
    /* While pending, the larger set counts: 3 (at 100) still holds the HW back. */
    ASSERT_TRUE(rn_repl_leader_update_hw(&l, 120));
    ASSERT_EQ(l.high_watermark, 100);
    rn_repl_leader_set_isr(&l, isr, n);
    ASSERT_TRUE(rn_repl_leader_update_hw(&l, 120));
    ASSERT_EQ(l.high_watermark, 120);
    ASSERT_EQ(rn_repl_leader_check_acks_all(&l), RN_OK);
    /* ISR {1} < min.insync.replicas 2: acks=all refused, the HW stays. */
    int32_t only_me[] = {1};
    rn_repl_leader_set_isr(&l, only_me, 1);
    ASSERT_EQ(rn_repl_leader_check_acks_all(&l), RN_ERR_NOT_ENOUGH_REPLICAS);
    ASSERT_FALSE(rn_repl_leader_update_hw(&l, 150));
    ASSERT_EQ(l.high_watermark, 120);
    /* 3 comes back: it may rejoin only once it holds the high watermark. */
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 3, 110, 150, 41000), RN_OK);
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 2, 150, 150, 41000), RN_OK);
    ASSERT_TRUE(rn_repl_leader_wanted_isr(&l, 41000, 30000, isr, &n));
    ASSERT_EQ(n, 2);
    ASSERT_FALSE(rn_repl_in(isr, n, 3));
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 3, 150, 150, 41500), RN_OK);
    ASSERT_TRUE(rn_repl_leader_wanted_isr(&l, 41500, 30000, isr, &n));
    ASSERT_EQ(n, 3);
}

RN_TEST(caught_up_time_uses_the_previous_fetch) {
    rn_repl_leader_t l;
    int32_t reps[] = {1, 2};
    ASSERT_EQ(rn_repl_leader_init(&l, 1, 0, reps, 2, reps, 2, 1, 0, 0, 0), RN_OK);
    /* The leader keeps growing; the follower always reaches where the leader was at its last fetch. */
    int64_t leader_end = 100;
    ASSERT_EQ(rn_repl_leader_on_fetch(&l, 2, 50, leader_end, 1000), RN_OK);
    for (int64_t t = 2000; t <= 60000; t += 1000) {
        int64_t was = leader_end;
        leader_end += 100;
        ASSERT_EQ(rn_repl_leader_on_fetch(&l, 2, was, leader_end, t), RN_OK);
    }
    int32_t isr[RN_REPL_MAX_REPLICAS], n;
    ASSERT_FALSE(rn_repl_leader_wanted_isr(&l, 60000, 30000, isr, &n)); /* never more than 1 s behind */
    /* A follower stuck at one offset falls out. */
    for (int64_t t = 61000; t <= 95000; t += 1000) ASSERT_EQ(rn_repl_leader_on_fetch(&l, 2, 10, 9999, t), RN_OK);
    ASSERT_TRUE(rn_repl_leader_wanted_isr(&l, 95000, 30000, isr, &n));
    ASSERT_EQ(n, 1);
}

int main(void) { return rn_test_main(); }
