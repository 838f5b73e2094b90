/*
 * fuzz_raft_msg.c — libFuzzer target for the Raft message decoder and for the
 * Raft state machine fed with whatever decodes.
 *
 * Input: frames of u16 length (big-endian) + bytes. Each frame is decoded
 * with the limits of a small config; when it decodes,
 *   - encoding it again and decoding that gives the same message (and the
 *     same bytes once more), and
 *   - it is stepped into one of two rn_raft_t nodes of a three-voter cluster,
 *     one a follower and one made leader beforehand (addressed to that node,
 *     from node 2 or 3), with a clock tick between frames.
 * Oracle besides the sanitizers: the nodes' own invariant checks
 * (assert_raft_state after every event) never fire, and a stored snapshot or
 * log never exceeds the configured bounds.
 *
 * Seeds: tests/fuzz/corpus/raft_msg/ (written by test_raft_sim with
 * RN_RAFT_WRITE_SEEDS=dir: messages of every type from a simulated run).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_logging.h"
#include "rn_raft.h"

typedef struct {
    int64_t now;
    uint64_t rnd;
    rn_raft_t *r;
    uint64_t snap_bytes;
} fnode_t;

static void f_send(void *c, const rn_raft_msg_t *m) {
    /* what the node sends must encode */
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    RN_ASSERT(rn_raft_msg_encode(m, &b) == RN_OK);
    rn_buf_free(&b);
}
static rn_err_t f_append(void *c, const rn_raft_entry_t *e, size_t n) { return RN_OK; }
static rn_err_t f_truncate(void *c, uint64_t from) { return RN_OK; }
static rn_err_t f_sync(void *c, uint64_t ticket) {
    rn_raft_synced(((fnode_t *)c)->r, ticket);
    return RN_OK;
}
static rn_err_t f_hardstate(void *c, uint64_t t, int32_t v) { return RN_OK; }
static rn_err_t f_save_snapshot(void *c, const rn_raft_snap_meta_t *m, const uint8_t *d, size_t len, bool reset) {
    RN_ASSERT(m->voters.count >= 1 && m->voters.count <= RN_RAFT_MAX_VOTERS);
    ((fnode_t *)c)->snap_bytes = len;
    return RN_OK;
}
static int64_t f_now(void *c) { return ((fnode_t *)c)->now; }
static uint64_t f_random(void *c) { return ((fnode_t *)c)->rnd++; }
static void f_apply(void *c, const rn_raft_entry_t *e) {}
static rn_err_t f_take(void *c, uint64_t index, rn_buf_t *out) {
    rn_buf_put_i64(out, (int64_t)index);
    return rn_buf_err(out);
}
static rn_err_t f_load(void *c, const rn_raft_snap_meta_t *m, const uint8_t *d, size_t len) { return RN_OK; }

static rn_raft_config_t fuzz_config(void) {
    rn_raft_config_t cfg;
    rn_raft_config_defaults(&cfg);
    cfg.initial_voters = (rn_raft_voters_t){.count = 3, .ids = {1, 2, 3}};
    cfg.initial_learners = (rn_raft_voters_t){.count = 1, .ids = {4}};
    cfg.election_timeout_ms = 100;
    cfg.heartbeat_ms = 20;
    cfg.max_entry_bytes = 4096;
    cfg.max_append_bytes = 4096;
    cfg.max_append_entries = 16;
    cfg.max_log_bytes = 64 * 1024;
    cfg.snapshot_entries = 8;
    cfg.max_snapshot_bytes = 8192;
    return cfg;
}

static void start(fnode_t *n, const rn_raft_config_t *cfg) {
    memset(n, 0, sizeof(*n));
    rn_raft_io_t io = {.ctx = n, .send = f_send, .append = f_append, .truncate = f_truncate, .sync = f_sync,
                       .save_hardstate = f_hardstate, .save_snapshot = f_save_snapshot, .now_ms = f_now,
                       .random = f_random};
    rn_raft_sm_t sm = {.ctx = n, .apply = f_apply, .snapshot_take = f_take, .snapshot_load = f_load};
    rn_raft_boot_t boot = {.vote = RN_RAFT_NO_NODE};
    RN_ASSERT(rn_raft_new(cfg, &io, &sm, &boot, &n->r) == RN_OK);
}

/* Elects node 1 by ticking past its timeout and granting it node 2's votes. */
static void make_leader(fnode_t *n) {
    for (int i = 0; i < 30 && rn_raft_role(n->r) != RN_RAFT_PRECANDIDATE; i++) {
        n->now += 10;
        rn_raft_tick(n->r);
    }
    rn_raft_msg_t m = {.type = RN_RAFT_MSG_PREVOTE_RESP, .from = 2, .to = 1, .term = rn_raft_term(n->r) + 1,
                       .granted = true};
    rn_raft_step(n->r, &m);
    m.type = RN_RAFT_MSG_VOTE_RESP;
    m.term = rn_raft_term(n->r);
    rn_raft_step(n->r, &m);
    RN_ASSERT(rn_raft_role(n->r) == RN_RAFT_LEADER);
}

static bool msg_equal(const rn_raft_msg_t *a, const rn_raft_msg_t *b) {
    if (a->type != b->type || a->from != b->from || a->to != b->to || a->term != b->term || a->index != b->index ||
        a->log_term != b->log_term || a->commit != b->commit || a->granted != b->granted ||
        a->n_entries != b->n_entries || a->offset != b->offset || a->total != b->total || a->done != b->done ||
        a->chunk_len != b->chunk_len || a->snap.index != b->snap.index || a->snap.term != b->snap.term ||
        a->snap.voters.count != b->snap.voters.count)
        return false;
    if (a->chunk_len && memcmp(a->chunk, b->chunk, a->chunk_len)) return false;
    for (uint32_t i = 0; i < a->snap.voters.count; i++)
        if (a->snap.voters.ids[i] != b->snap.voters.ids[i]) return false;
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const rn_raft_entry_t *x = &a->entries[i], *y = &b->entries[i];
        if (x->index != y->index || x->term != y->term || x->type != y->type || x->len != y->len ||
            (x->len && memcmp(x->data, y->data, x->len)))
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool quiet;
    if (!quiet) {
        rn_log_set_level(RN_LOG_ERROR);
        quiet = true;
    }
    rn_raft_config_t cfg = fuzz_config();
    rn_raft_msg_limits_t lim = rn_raft_msg_limits(&cfg);
    fnode_t follower, leader;
    start(&follower, &cfg);
    start(&leader, &cfg);
    make_leader(&leader);
    rn_raft_entry_t ents[RN_RAFT_MAX_APPEND_ENTRIES], ents2[RN_RAFT_MAX_APPEND_ENTRIES];
    size_t at = 0;
    for (int frame = 0; at + 2 <= size && frame < 64; frame++) {
        size_t len = ((size_t)data[at] << 8) | data[at + 1];
        at += 2;
        if (len > size - at) len = size - at;
        rn_raft_msg_t m;
        if (rn_raft_msg_decode(data + at, len, &lim, ents, &m) == RN_OK) {
            rn_buf_t b;
            rn_buf_init(&b, 1 << 20);
            RN_ASSERT(rn_raft_msg_encode(&m, &b) == RN_OK);
            rn_raft_msg_t m2;
            RN_ASSERT(rn_raft_msg_decode(b.data, b.len, &lim, ents2, &m2) == RN_OK);
            RN_ASSERT(msg_equal(&m, &m2));
            rn_buf_free(&b);
            m.from = 2 + (int32_t)(m.from % 3); /* voters 2, 3 or learner 4 */
            m.to = 1;
            fnode_t *n = frame & 1 ? &leader : &follower;
            rn_raft_step(n->r, &m);
            n->now += 7;
            rn_raft_tick(n->r);
            RN_ASSERT(n->snap_bytes <= cfg.max_snapshot_bytes);
        }
        at += len;
    }
    rn_raft_free(follower.r);
    rn_raft_free(leader.r);
    return 0;
}
