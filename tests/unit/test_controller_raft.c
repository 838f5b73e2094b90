/*
 * test_controller_raft.c — controller decisions through the real Raft core (src/raft): one voter
 * on an in-memory log and clock, the image behind it as the state machine (rn_meta_sm, the
 * callbacks the metadata quorum takes). Every decision's records are proposed as Raft entries of
 * at most 512 bytes and applied at their Raft index; Raft takes snapshots from the image every few entries; a restart
 * from the kept snapshot and log rebuilds the same image.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_meta_sm.h"
#include "rn_raft.h"
#include "test_controller_util.h"

typedef struct {
    uint64_t index, term;
    uint8_t type;
    uint8_t *data;
    uint32_t len;
} mem_entry_t;

/* What a node's storage holds: hard state, snapshot, log. Synced at once. */
typedef struct {
    rn_raft_t *raft;
    rn_meta_sm_t *sm;
    uint64_t pending_sync;
    int64_t now;
    uint64_t rng;
    uint64_t term;
    int32_t vote;
    mem_entry_t ents[4096];
    size_t n;
    bool has_snap;
    rn_raft_snap_meta_t snap;
    uint8_t *snap_data;
    size_t snap_len;
    int snapshots_taken;
} mem_t;

static void drop_entries(mem_t *m, uint64_t lo, uint64_t hi) { /* drop lo <= index <= hi */
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->ents[i].index >= lo && m->ents[i].index <= hi)
            free(m->ents[i].data);
        else
            m->ents[w++] = m->ents[i];
    }
    m->n = w;
}

static void io_send(void *ctx, const rn_raft_msg_t *msg) { RN_ASSERT(0 && "a single voter sends nothing"); }

static rn_err_t io_append(void *ctx, const rn_raft_entry_t *e, size_t n) {
    mem_t *m = ctx;
    for (size_t i = 0; i < n; i++) {
        RN_ASSERT(m->n < sizeof(m->ents) / sizeof(m->ents[0]));
        mem_entry_t *d = &m->ents[m->n++];
        *d = (mem_entry_t){e[i].index, e[i].term, e[i].type, malloc(e[i].len ? e[i].len : 1), e[i].len};
        if (e[i].len) memcpy(d->data, e[i].data, e[i].len);
    }
    return RN_OK;
}

static rn_err_t io_truncate(void *ctx, uint64_t from) {
    drop_entries(ctx, from, UINT64_MAX);
    return RN_OK;
}

static rn_err_t io_sync(void *ctx, uint64_t ticket) {
    mem_t *m = ctx;
    if (m->raft)
        rn_raft_synced(m->raft, ticket);
    else
        m->pending_sync = ticket;
    return RN_OK;
}

static rn_err_t io_hardstate(void *ctx, uint64_t term, int32_t vote) {
    mem_t *m = ctx;
    m->term = term;
    m->vote = vote;
    return RN_OK;
}

static rn_err_t io_snapshot(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data, size_t len, bool reset) {
    mem_t *m = ctx;
    free(m->snap_data);
    m->snap_data = malloc(len ? len : 1);
    if (len) memcpy(m->snap_data, data, len);
    m->snap_len = len;
    m->snap = *meta;
    m->has_snap = true;
    m->snapshots_taken++;
    drop_entries(m, 0, reset ? UINT64_MAX : meta->index);
    return RN_OK;
}

static int64_t io_now(void *ctx) { return ((mem_t *)ctx)->now; }

static uint64_t io_random(void *ctx) {
    mem_t *m = ctx;
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

/* The quorum's shape of state machine, as rn_quorum passes it on: DATA entries only. */
static void sm_apply(void *ctx, const rn_raft_entry_t *e) {
    if (e->type == RN_RAFT_ENTRY_DATA) rn_meta_sm_apply(((mem_t *)ctx)->sm, e->index, e->data, e->len);
}
static rn_err_t sm_take(void *ctx, uint64_t index, rn_buf_t *out) {
    return rn_meta_sm_snapshot_take(((mem_t *)ctx)->sm, index, out);
}
static rn_err_t sm_load(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data, size_t len) {
    return rn_meta_sm_snapshot_load(((mem_t *)ctx)->sm, meta->index, data, len);
}

/* Boot a node from what m holds and wait until it leads and has applied its whole log. */
static void node_start(mem_t *m, rn_meta_sm_t *sm) {
    m->sm = sm;
    m->raft = NULL;
    m->pending_sync = 0;
    rn_raft_config_t cfg;
    rn_raft_config_defaults(&cfg);
    cfg.node_id = 1;
    cfg.initial_voters = (rn_raft_voters_t){1, {1}};
    cfg.snapshot_entries = 5;
    rn_raft_io_t io = {.ctx = m, .send = io_send, .append = io_append, .truncate = io_truncate, .sync = io_sync,
                       .save_hardstate = io_hardstate, .save_snapshot = io_snapshot, .now_ms = io_now,
                       .random = io_random};
    rn_raft_sm_t smv = {.ctx = m, .apply = sm_apply, .snapshot_take = sm_take, .snapshot_load = sm_load};
    rn_raft_entry_t *boot_ents = calloc(m->n ? m->n : 1, sizeof(*boot_ents));
    for (size_t i = 0; i < m->n; i++)
        boot_ents[i] = (rn_raft_entry_t){m->ents[i].index, m->ents[i].term, m->ents[i].type, m->ents[i].data, m->ents[i].len};
    rn_raft_boot_t boot = {.term = m->term, .vote = m->vote, .has_snapshot = m->has_snap, .snap = m->snap,
                           .snap_data = m->snap_data, .snap_len = m->snap_len, .entries = boot_ents, .n_entries = m->n};
    RN_ASSERT(rn_raft_new(&cfg, &io, &smv, &boot, &m->raft) == RN_OK);
    free(boot_ents);
    if (m->pending_sync) rn_raft_synced(m->raft, m->pending_sync);
    for (int i = 0; i < 1000 && (rn_raft_role(m->raft) != RN_RAFT_LEADER ||
                                 rn_raft_applied_index(m->raft) < rn_raft_last_index(m->raft));
         i++) {
        m->now += 10;
        rn_raft_tick(m->raft);
    }
    RN_ASSERT(rn_raft_role(m->raft) == RN_RAFT_LEADER);
}

/* Propose each entry of the last decision in order; returns the last index. */
static uint64_t propose(mem_t *m, env_t *e) {
    uint64_t index = 0;
    int32_t hint;
    RN_ASSERT(rn_meta_batch_entries(&e->b) > 0);
    for (int32_t i = 0; i < rn_meta_batch_entries(&e->b); i++) {
        const uint8_t *p;
        size_t len;
        rn_meta_batch_entry(&e->b, i, &p, &len);
        RN_ASSERT(rn_raft_propose(m->raft, p, len, &index, &hint) == RN_OK);
    }
    for (int i = 0; i < 100 && rn_raft_applied_index(m->raft) < index; i++) {
        m->now += 10;
        rn_raft_tick(m->raft);
    }
    RN_ASSERT(rn_raft_applied_index(m->raft) >= index);
    rn_meta_batch_reset(&e->b);
    e->offset = (int64_t)index;
    e->img = m->sm->img; /* a snapshot load may have replaced it */
    return index;
}

static void snapshot_of(const rn_meta_image_t *img, rn_buf_t *out) {
    rn_buf_init(out, 1u << 24);
    rn_meta_image_serialize(img, out);
    RN_ASSERT(out->err == RN_OK);
}

RN_TEST(decisions_through_raft_with_snapshots_and_restart) {
    static mem_t m; /* large: not on the stack */
    memset(&m, 0, sizeof(m));
    m.rng = 12345;
    rn_meta_sm_t sm;
    ASSERT_EQ(rn_meta_sm_init(&sm, NULL), RN_OK);
    node_start(&m, &sm);

    env_t e;
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    env_init(&e, &cfg, 3);
    rn_meta_image_free(e.img);
    e.img = sm.img; /* decisions read the image Raft applies to */
    e.b.entry_bytes_max = 512; /* bigger decisions span several Raft entries */
    for (int32_t id = 1; id <= 3; id++) {
        rn_meta_reg_t r;
        env_reg_req(&r, id, NULL, 1);
        ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &e.epochs[id]), RN_OK);
        uint64_t at = propose(&m, &e);
        ASSERT_EQ(rn_meta_image_broker(e.img, id)->reg_offset, (int64_t)at);
        rn_ctl_heartbeat_t hb = {id, e.epochs[id], (int64_t)at, false, false};
        rn_ctl_heartbeat_reply_t reply;
        ASSERT_EQ(rn_ctl_heartbeat(e.ctl, e.img, &hb, e.now, &e.b, &reply), RN_OK);
        ASSERT_FALSE(reply.is_fenced);
        propose(&m, &e);
        ASSERT_TRUE(rn_meta_image_broker_active(e.img, id));
    }
    ASSERT_EQ(rn_meta_sm_snapshot_load(&sm, 0, NULL, 0), RN_ERR_TRUNCATED); /* garbage refused, image kept */
    ASSERT_TRUE(sm.img == e.img);
    for (int t = 0; t < 4; t++) {
        char name[16];
        snprintf(name, sizeof(name), "topic%d", t);
        rn_ctl_create_topic_t req = {.name = rn_str_from_cstr(name), .num_partitions = 20, .replication_factor = 3};
        rn_ctl_create_topic_result_t res;
        ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_OK);
        propose(&m, &e);
    }
    rn_ctl_heartbeat_t hb = {2, e.epochs[2], e.offset, true, false};
    rn_ctl_heartbeat_reply_t reply;
    ASSERT_EQ(rn_ctl_heartbeat(e.ctl, e.img, &hb, e.now, &e.b, &reply), RN_OK);
    uint64_t last = propose(&m, &e);
    ASSERT_GT(m.snapshots_taken, 0); /* Raft snapshotted the image on its own */
    ASSERT_GT(rn_meta_image_offset(sm.img), 2 * 3 + 2 * 4); /* each topic took several entries */
    ASSERT_EQ(rn_meta_image_partition_count(e.img), 80);
    ASSERT_EQ(rn_meta_image_partitions_led_by(e.img, 2, NULL, 0), 0);
    ASSERT_EQ(sm.apply_errors, 0);
    ASSERT_EQ(rn_meta_image_offset(sm.img), (int64_t)last);
    rn_buf_t before;
    snapshot_of(sm.img, &before);

    /* Restart from the kept snapshot and log tail into a fresh image: the same bytes. */
    rn_raft_free(m.raft);
    e.img = NULL;
    rn_meta_sm_free(&sm);
    ASSERT_EQ(rn_meta_sm_init(&sm, NULL), RN_OK);
    node_start(&m, &sm);
    ASSERT_TRUE(m.has_snap && m.snap.index > 0);
    rn_buf_t after;
    snapshot_of(sm.img, &after);
    ASSERT_EQ(before.len, after.len);
    ASSERT_MEMEQ(before.data, after.data, before.len);
    ASSERT_TRUE(rn_meta_image_broker(sm.img, 2)->fenced);

    /* A snapshot newer than the index it claims is refused. */
    rn_buf_t snap;
    rn_buf_init(&snap, 1u << 24);
    ASSERT_EQ(rn_meta_sm_snapshot_take(&sm, last + 5, &snap), RN_OK);
    ASSERT_EQ(rn_meta_sm_snapshot_take(&sm, last, &e.b.buf), RN_ERR_INVALID_ARG);
    rn_meta_batch_reset(&e.b);
    ASSERT_EQ(rn_meta_sm_snapshot_load(&sm, last + 4, snap.data, snap.len), RN_ERR_CORRUPT);
    ASSERT_EQ(rn_meta_sm_snapshot_load(&sm, last + 5, snap.data, snap.len), RN_OK);
    ASSERT_EQ(rn_meta_image_offset(sm.img), (int64_t)last + 5);

    rn_buf_free(&before);
    rn_buf_free(&after);
    rn_buf_free(&snap);
    rn_raft_free(m.raft);
    drop_entries(&m, 0, UINT64_MAX);
    free(m.snap_data);
    rn_meta_sm_free(&sm);
    env_free(&e);
}

int main(void) { return rn_test_main(); }
