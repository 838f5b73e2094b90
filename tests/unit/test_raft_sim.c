/*
 * test_raft_sim.c — deterministic simulation of a Raft cluster (src/raft).
 *
 * Every node is a real rn_raft_t whose io vtable is simulated: a network that
 * drops, delays, duplicates and reorders messages (all of them pass through the
 * real encoder and decoder) and is cut by partitions that come and heal; a disk
 * per node whose unsynced appends and truncations are lost on a crash (a random
 * prefix of them survives, the last append possibly torn); a virtual clock; a
 * PRNG seeded per run that drives everything, so a seed replays exactly.
 * Clients propose entries throughout; nodes crash and restart.
 *
 * After every event the checker verifies Raft's safety properties:
 *   election safety    at most one leader per term
 *   log matching       two logs with an entry of the same index and term are
 *                      identical up to it
 *   leader completeness a leader holds every entry committed in its term or before
 *   state-machine safety no two nodes apply different entries at one index (and
 *                      the state after index i, snapshot or replay, is the same)
 * and at the end of each seed liveness: once the network heals and every node
 * is up, a leader is elected and a proposal commits on every voter within a
 * bounded virtual time.
 *
 *   RN_RAFT_SEEDS=N   run N seeds (default 3000, about 20 s under ASan+UBSan)
 *   RN_RAFT_SEED_FIRST=F  start at seed F (default 1)
 *   RN_RAFT_SEED=S    run only seed S and print its event trace
 */
#include <stdlib.h>
#include <string.h>

#include "rn_logging.h"
#include "rn_raft.h"
#include "rn_test.h"

#define MAXN 5
#define QUEUE_MAX 20000
#define TICK_MS 10
#define MSG_MAX (64 * 1024)

/* ---- PRNG (splitmix64) -------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    h ^= 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t entry_hash(const rn_raft_entry_t *e) {
    uint64_t h = hash_bytes(e->term * 31 + e->type, e->data, e->len);
    return h ? h : 1;
}

/* ---- simulated disk -------------------------------------------------------------- */

typedef struct {
    uint64_t index, term;
    uint8_t type;
    uint32_t len;
    uint8_t *data;
} dent_t;

typedef struct {
    int kind; /* 1 append, 2 truncate */
    uint64_t seq;
    uint64_t from;
    dent_t *ents;
    size_t n;
} op_t;

typedef struct {
    uint64_t term;
    int32_t vote;
    bool has_snap;
    rn_raft_snap_meta_t snap;
    uint8_t *snap_data;
    size_t snap_len;
    dent_t *log;
    size_t n, cap;
    op_t *ops;
    size_t nops, capops;
    uint64_t op_seq;
} disk_t;

/* ---- events ------------------------------------------------------------------------ */

enum { EV_DELIVER = 1, EV_SYNC, EV_TICK, EV_FAULT, EV_PROPOSE };

typedef struct {
    int64_t time;
    uint64_t seq;
    int kind;
    int node;
    uint32_t inc;
    uint64_t a, b;
    uint8_t *bytes;
    size_t len;
} event_t;

typedef struct sim sim_t;

typedef struct {
    sim_t *sim;
    int id;
    bool up;
    uint32_t inc;
    rn_raft_t *r;
    disk_t disk;
    uint64_t sm_index, sm_roll; /* state machine: last applied index, rolling hash */
    bool dirty;
    uint64_t checked_commit;
    uint64_t snap_chunks_recv;
    bool io_failed; /* an injected storage error stopped it: restarted like a crash */
} node_t;

typedef struct {
    uint64_t hash;       /* entry hash */
    uint64_t roll;       /* state after applying it */
    uint64_t commit_term;
    bool committed, applied;
} gidx_t;

struct sim {
    uint64_t seed, rng;
    int n;
    int64_t now;
    uint64_t ev_seq;
    event_t *q;
    size_t nq;
    node_t nodes[MAXN + 1];
    rn_raft_config_t cfg;
    /* network */
    int group[MAXN + 1];
    uint32_t drop_pm, dup_pm, delay_max; /* per mille, ms */
    bool chaos;                          /* faults and proposals */
    bool membership;                     /* faults include voter changes */
    /* checker */
    int32_t *leader_of_term;
    size_t n_terms;
    gidx_t *g;
    size_t ng;
    uint64_t max_commit;
    char failure[512];
    bool trace;
    uint64_t events, proposals, snapshots_sent, crashes;
    uint64_t payload_counter;
};

static void sim_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void sim_fail(sim_t *s, const char *fmt, ...) {
    if (s->failure[0]) return;
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(s->failure, sizeof(s->failure), "t=%lld: ", (long long)s->now);
    vsnprintf(s->failure + k, sizeof(s->failure) - (size_t)k, fmt, ap);
    va_end(ap);
}

static uint64_t rnd(sim_t *s, uint64_t n) { return n ? rng_next(&s->rng) % n : 0; }

static void q_push(sim_t *s, event_t ev) {
    if (s->nq == QUEUE_MAX) {
        free(ev.bytes);
        return;
    }
    ev.seq = s->ev_seq++;
    size_t i = s->nq++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        event_t *e = &s->q[p];
        if (e->time < ev.time || (e->time == ev.time && e->seq < ev.seq)) break;
        s->q[i] = *e;
        i = p;
    }
    s->q[i] = ev;
}

static event_t q_pop(sim_t *s) {
    event_t top = s->q[0];
    event_t last = s->q[--s->nq];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nq) break;
        if (c + 1 < s->nq && (s->q[c + 1].time < s->q[c].time ||
                              (s->q[c + 1].time == s->q[c].time && s->q[c + 1].seq < s->q[c].seq)))
            c++;
        if (last.time < s->q[c].time || (last.time == s->q[c].time && last.seq < s->q[c].seq)) break;
        s->q[i] = s->q[c];
        i = c;
    }
    if (s->nq) s->q[i] = last;
    return top;
}

/* ---- disk ---------------------------------------------------------------------------- */

static dent_t dent_copy(const rn_raft_entry_t *e) {
    dent_t d = {.index = e->index, .term = e->term, .type = e->type, .len = e->len};
    if (e->len) {
        d.data = malloc(e->len);
        memcpy(d.data, e->data, e->len);
    }
    return d;
}

static uint64_t disk_last(const disk_t *d) {
    return d->n ? d->log[d->n - 1].index : (d->has_snap ? d->snap.index : 0);
}

static void disk_truncate(disk_t *d, uint64_t from) {
    while (d->n && d->log[d->n - 1].index >= from) free(d->log[--d->n].data);
}

static void disk_push(sim_t *s, disk_t *d, const dent_t *e) {
    if (d->has_snap && e->index <= d->snap.index) return;
    if (e->index != disk_last(d) + 1) {
        sim_fail(s, "disk: append of %llu after %llu", (unsigned long long)e->index,
                 (unsigned long long)disk_last(d));
        return;
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->log = realloc(d->log, d->cap * sizeof(*d->log));
    }
    dent_t c = *e;
    c.data = NULL;
    if (e->len) {
        c.data = malloc(e->len);
        memcpy(c.data, e->data, e->len);
    }
    d->log[d->n++] = c;
}

static void op_free(op_t *o) {
    for (size_t i = 0; i < o->n; i++) free(o->ents[i].data);
    free(o->ents);
}

/* Makes the first k pending ops durable (the last one torn after `keep` entries if keep < n). */
static void disk_apply_ops(sim_t *s, disk_t *d, size_t k, size_t keep_last) {
    for (size_t i = 0; i < k && i < d->nops; i++) {
        op_t *o = &d->ops[i];
        if (o->kind == 2) {
            disk_truncate(d, o->from);
        } else {
            size_t n = (i == k - 1 && keep_last < o->n) ? keep_last : o->n;
            for (size_t j = 0; j < n; j++) disk_push(s, d, &o->ents[j]);
        }
    }
    size_t done = k < d->nops ? k : d->nops;
    for (size_t i = 0; i < done; i++) op_free(&d->ops[i]);
    if (done) memmove(d->ops, d->ops + done, (d->nops - done) * sizeof(*d->ops));
    d->nops -= done;
}

static void disk_drop_ops(disk_t *d) {
    for (size_t i = 0; i < d->nops; i++) op_free(&d->ops[i]);
    d->nops = 0;
}

static op_t *disk_new_op(disk_t *d) {
    if (d->nops == d->capops) {
        d->capops = d->capops ? d->capops * 2 : 16;
        d->ops = realloc(d->ops, d->capops * sizeof(*d->ops));
    }
    op_t *o = &d->ops[d->nops++];
    memset(o, 0, sizeof(*o));
    o->seq = ++d->op_seq;
    return o;
}

static void disk_free(disk_t *d) {
    disk_drop_ops(d);
    free(d->ops);
    disk_truncate(d, 0);
    free(d->log);
    free(d->snap_data);
    memset(d, 0, sizeof(*d));
}

/* ---- io vtable ------------------------------------------------------------------------- */

static void trace_msg(sim_t *s, const char *what, const rn_raft_msg_t *m) {
    if (!s->trace) return;
    printf("t=%lld %s %d->%d %s term=%llu idx=%llu lt=%llu commit=%llu ok=%d n=%u snap=%llu off=%llu\n",
           (long long)s->now, what, m->from, m->to, rn_raft_msg_type_name(m->type), (unsigned long long)m->term,
           (unsigned long long)m->index, (unsigned long long)m->log_term, (unsigned long long)m->commit,
           m->granted, m->n_entries, (unsigned long long)m->snap.index, (unsigned long long)m->offset);
}

/* RN_RAFT_WRITE_SEEDS=dir: the first messages of each type become fuzz seeds
 * (tests/fuzz/corpus/raft_msg), each one frame: u16 length + bytes. */
static void write_seed(const rn_raft_msg_t *m, const uint8_t *p, size_t len) {
    static int written[16];
    const char *dir = getenv("RN_RAFT_WRITE_SEEDS");
    if (!dir || m->type >= 16 || written[m->type] >= 3 || len > 0xffff) return;
    if (m->type == RN_RAFT_MSG_APPEND && m->n_entries == 0 && written[m->type] == 0) return; /* want entries */
    char path[512];
    snprintf(path, sizeof(path), "%s/%s_%d", dir, rn_raft_msg_type_name(m->type), written[m->type]++);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    fwrite(hdr, 1, 2, f);
    fwrite(p, 1, len, f);
    fclose(f);
}

static void io_send(void *ctx, const rn_raft_msg_t *m) {
    node_t *nd = ctx;
    sim_t *s = nd->sim;
    if (nd->r && rn_raft_failed(nd->r)) sim_fail(s, "node %d sent a message after it stopped", nd->id);
    if (m->to < 1 || m->to > s->n) return;
    rn_buf_t b;
    rn_buf_init(&b, MSG_MAX);
    rn_err_t err = rn_raft_msg_encode(m, &b);
    if (err) {
        sim_fail(s, "encode failed: %s", rn_err_name(err));
        rn_buf_free(&b);
        return;
    }
    if (m->type == RN_RAFT_MSG_SNAPSHOT) s->snapshots_sent++;
    write_seed(m, b.data, b.len);
    int copies = 1;
    if (rnd(s, 1000) < s->drop_pm) copies = 0;
    else if (rnd(s, 1000) < s->dup_pm) copies = 2;
    trace_msg(s, copies ? "send" : "drop", m);
    for (int i = 0; i < copies; i++) {
        uint8_t *p = malloc(b.len);
        memcpy(p, b.data, b.len);
        q_push(s, (event_t){.time = s->now + 1 + (int64_t)rnd(s, s->delay_max), .kind = EV_DELIVER,
                            .node = m->to, .a = (uint64_t)m->from, .bytes = p, .len = b.len});
    }
    rn_buf_free(&b);
}

/* While chaos runs, one storage call in 4000 fails (the node must stop, unacknowledged). */
static bool disk_error(node_t *nd) {
    sim_t *s = nd->sim;
    if (!s->chaos || rnd(s, 4000)) return false;
    nd->io_failed = true;
    if (s->trace) printf("t=%lld storage error on node %d\n", (long long)s->now, nd->id);
    return true;
}

static rn_err_t io_append(void *ctx, const rn_raft_entry_t *es, size_t n) {
    node_t *nd = ctx;
    if (disk_error(nd)) return RN_ERR_IO;
    op_t *o = disk_new_op(&nd->disk);
    o->kind = 1;
    o->ents = malloc(n * sizeof(*o->ents));
    o->n = n;
    for (size_t i = 0; i < n; i++) o->ents[i] = dent_copy(&es[i]);
    nd->dirty = true;
    return RN_OK;
}

static rn_err_t io_truncate(void *ctx, uint64_t from) {
    node_t *nd = ctx;
    op_t *o = disk_new_op(&nd->disk);
    o->kind = 2;
    o->from = from;
    nd->dirty = true;
    return RN_OK;
}

static rn_err_t io_sync(void *ctx, uint64_t ticket) {
    node_t *nd = ctx;
    sim_t *s = nd->sim;
    if (disk_error(nd)) return RN_ERR_IO;
    q_push(s, (event_t){.time = s->now + (int64_t)rnd(s, 15), .kind = EV_SYNC, .node = nd->id, .inc = nd->inc,
                        .a = ticket, .b = nd->disk.op_seq});
    return RN_OK;
}

static rn_err_t io_save_hardstate(void *ctx, uint64_t term, int32_t vote) {
    node_t *nd = ctx;
    bool err = disk_error(nd);
    if (err && rnd(nd->sim, 2)) return RN_ERR_IO; /* else: renamed, but the dir fsync failed */
    nd->disk.term = term;
    nd->disk.vote = vote;
    return err ? RN_ERR_IO : RN_OK;
}

static rn_err_t io_save_snapshot(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data, size_t len,
                                 bool reset_log) {
    node_t *nd = ctx;
    disk_t *d = &nd->disk;
    free(d->snap_data);
    d->snap_data = malloc(len ? len : 1);
    if (len) memcpy(d->snap_data, data, len);
    d->snap_len = len;
    d->snap = *meta;
    d->has_snap = true;
    if (reset_log) {
        disk_truncate(d, 0);
        disk_drop_ops(d);
    } else {
        size_t k = 0;
        while (k < d->n && d->log[k].index <= meta->index) free(d->log[k++].data);
        if (k) memmove(d->log, d->log + k, (d->n - k) * sizeof(*d->log));
        d->n -= k;
    }
    nd->dirty = true;
    return RN_OK;
}

static int64_t io_now(void *ctx) { return ((node_t *)ctx)->sim->now; }
static uint64_t io_random(void *ctx) { return rng_next(&((node_t *)ctx)->sim->rng); }

/* ---- state machine ------------------------------------------------------------------------ */

static gidx_t *gat(sim_t *s, uint64_t i) {
    if (i >= s->ng) {
        size_t n = s->ng ? s->ng : 256;
        while (n <= i) n *= 2;
        s->g = realloc(s->g, n * sizeof(*s->g));
        memset(s->g + s->ng, 0, (n - s->ng) * sizeof(*s->g));
        s->ng = n;
    }
    return &s->g[i];
}

static void sm_apply(void *ctx, const rn_raft_entry_t *e) {
    node_t *nd = ctx;
    sim_t *s = nd->sim;
    if (e->index != nd->sm_index + 1) {
        sim_fail(s, "node %d applied %llu after %llu", nd->id, (unsigned long long)e->index,
                 (unsigned long long)nd->sm_index);
        return;
    }
    uint64_t h = entry_hash(e);
    nd->sm_index = e->index;
    nd->sm_roll = hash_bytes(nd->sm_roll, &h, sizeof(h));
    gidx_t *g = gat(s, e->index);
    if (!g->applied) {
        g->applied = true;
        g->hash = g->hash ? g->hash : h;
        g->roll = nd->sm_roll;
    }
    if (g->hash != h || g->roll != nd->sm_roll)
        sim_fail(s, "state machine safety: node %d applied a different entry at %llu", nd->id,
                 (unsigned long long)e->index);
}

/* A snapshot: index, rolling hash, then filler bytes so transfers take several chunks. */
static rn_err_t sm_snapshot_take(void *ctx, uint64_t index, rn_buf_t *out) {
    node_t *nd = ctx;
    if (index != nd->sm_index) sim_fail(nd->sim, "snapshot at %llu but applied %llu", (unsigned long long)index,
                                        (unsigned long long)nd->sm_index);
    rn_buf_put_i64(out, (int64_t)index);
    rn_buf_put_i64(out, (int64_t)nd->sm_roll);
    size_t fill = 200 + index % 300;
    for (size_t i = 0; i < fill; i++) rn_buf_put_i8(out, (int8_t)(index * 31 + i));
    return rn_buf_err(out);
}

static rn_err_t sm_snapshot_load(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data, size_t len) {
    node_t *nd = ctx;
    sim_t *s = nd->sim;
    if (len < 16) {
        sim_fail(s, "node %d: short snapshot", nd->id);
        return RN_ERR_CORRUPT;
    }
    uint64_t index = rn_load_be64(data), roll = rn_load_be64(data + 8);
    size_t fill = 200 + index % 300;
    bool ok = index == meta->index && len == 16 + fill;
    for (size_t i = 0; ok && i < fill; i++) ok = data[16 + i] == (uint8_t)(index * 31 + i);
    if (!ok) {
        sim_fail(s, "node %d: snapshot content does not match its meta (%llu)", nd->id,
                 (unsigned long long)meta->index);
        return RN_ERR_CORRUPT;
    }
    gidx_t *g = gat(s, index);
    if (g->applied && g->roll != roll)
        sim_fail(s, "state machine safety: node %d loaded a snapshot at %llu with another state", nd->id,
                 (unsigned long long)index);
    nd->sm_index = index;
    nd->sm_roll = roll;
    return RN_OK;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static void node_start(sim_t *s, int id) {
    node_t *nd = &s->nodes[id];
    disk_t *d = &nd->disk;
    nd->inc++;
    nd->sm_index = 0;
    nd->sm_roll = 0;
    nd->io_failed = false;
    nd->checked_commit = 0;
    rn_raft_entry_t *es = calloc(d->n ? d->n : 1, sizeof(*es));
    for (size_t i = 0; i < d->n; i++)
        es[i] = (rn_raft_entry_t){.index = d->log[i].index, .term = d->log[i].term, .type = d->log[i].type,
                                  .data = d->log[i].data, .len = d->log[i].len};
    rn_raft_boot_t boot = {.term = d->term, .vote = d->term ? d->vote : RN_RAFT_NO_NODE, .has_snapshot = d->has_snap,
                           .snap = d->snap, .snap_data = d->snap_data, .snap_len = d->snap_len,
                           .entries = es, .n_entries = d->n};
    rn_raft_config_t cfg = s->cfg;
    cfg.node_id = id;
    rn_raft_io_t io = {.ctx = nd, .send = io_send, .append = io_append, .truncate = io_truncate, .sync = io_sync,
                       .save_hardstate = io_save_hardstate, .save_snapshot = io_save_snapshot, .now_ms = io_now,
                       .random = io_random};
    rn_raft_sm_t sm = {.ctx = nd, .apply = sm_apply, .snapshot_take = sm_snapshot_take,
                       .snapshot_load = sm_snapshot_load};
    rn_err_t err = rn_raft_new(&cfg, &io, &sm, &boot, &nd->r);
    free(es);
    if (err) {
        sim_fail(s, "node %d failed to start: %s", id, rn_err_name(err));
        return;
    }
    nd->up = true;
    nd->dirty = true;
    if (s->trace) printf("t=%lld start node %d term=%llu last=%llu\n", (long long)s->now, id,
                         (unsigned long long)d->term, (unsigned long long)rn_raft_last_index(nd->r));
    q_push(s, (event_t){.time = s->now + 1 + (int64_t)rnd(s, TICK_MS), .kind = EV_TICK, .node = id, .inc = nd->inc});
}

static void node_crash(sim_t *s, int id) {
    node_t *nd = &s->nodes[id];
    if (!nd->up) return;
    disk_t *d = &nd->disk;
    /* the OS may have written some of the unsynced ops, the last one torn */
    size_t k = (size_t)rnd(s, d->nops + 1);
    size_t keep = k ? (size_t)rnd(s, d->ops[k - 1].n + 1) : 0;
    if (s->trace) printf("t=%lld crash node %d (%zu of %zu unsynced ops survive)\n", (long long)s->now, id, k, d->nops);
    disk_apply_ops(s, d, k, keep);
    disk_drop_ops(d);
    rn_raft_free(nd->r);
    nd->r = NULL;
    nd->up = false;
    nd->inc++;
    s->crashes++;
}

/* ---- checker ------------------------------------------------------------------------------- */

static bool entries_equal(const rn_raft_entry_t *a, const rn_raft_entry_t *b) {
    return a->term == b->term && a->type == b->type && a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

static void check_log_matching(sim_t *s, node_t *a, node_t *b) {
    uint64_t lo = rn_raft_snapshot_meta(a->r)->index, lo2 = rn_raft_snapshot_meta(b->r)->index;
    if (lo2 > lo) lo = lo2;
    uint64_t hi = rn_raft_last_index(a->r), hi2 = rn_raft_last_index(b->r);
    if (hi2 < hi) hi = hi2;
    bool same = false;
    for (uint64_t i = hi; i > lo; i--) {
        rn_raft_entry_t x, y;
        rn_raft_entry_at(a->r, i, &x);
        rn_raft_entry_at(b->r, i, &y);
        if (!same && x.term == y.term) same = true;
        if (same && !entries_equal(&x, &y)) {
            sim_fail(s, "log matching: nodes %d and %d differ at %llu below a common entry", a->id, b->id,
                     (unsigned long long)i);
            return;
        }
    }
}

static void check_node(sim_t *s, node_t *nd) {
    rn_raft_t *r = nd->r;
    if (rn_raft_failed(r)) {
        if (!nd->io_failed) sim_fail(s, "node %d stopped: %s", nd->id, rn_err_name(rn_raft_failed(r)));
        node_crash(s, nd->id); /* stopped on a storage error: the operator restarts it */
        return;
    }
    uint64_t term = rn_raft_term(r);
    if (rn_raft_role(r) == RN_RAFT_LEADER) {
        if (term >= s->n_terms) {
            size_t n = s->n_terms ? s->n_terms : 64;
            while (n <= term) n *= 2;
            s->leader_of_term = realloc(s->leader_of_term, n * sizeof(int32_t));
            for (size_t i = s->n_terms; i < n; i++) s->leader_of_term[i] = RN_RAFT_NO_NODE;
            s->n_terms = n;
        }
        if (s->leader_of_term[term] == RN_RAFT_NO_NODE) s->leader_of_term[term] = nd->id;
        if (s->leader_of_term[term] != nd->id)
            sim_fail(s, "election safety: nodes %d and %d both leaders of term %llu", s->leader_of_term[term], nd->id,
                     (unsigned long long)term);
    }
    /* newly committed entries: record them, or compare with the record */
    uint64_t c = rn_raft_commit_index(r);
    for (uint64_t i = nd->checked_commit + 1; i <= c; i++) {
        rn_raft_entry_t e;
        if (!rn_raft_entry_at(r, i, &e)) continue; /* inside the snapshot */
        gidx_t *g = gat(s, i);
        uint64_t h = entry_hash(&e);
        if (!g->committed) {
            if (g->hash && g->hash != h) {
                sim_fail(s, "node %d committed at %llu an entry other than one applied", nd->id, (unsigned long long)i);
                return;
            }
            g->committed = true;
            g->hash = h;
            g->commit_term = term;
        } else if (g->hash != h) {
            sim_fail(s, "committed entry %llu differs on node %d", (unsigned long long)i, nd->id);
            return;
        }
        if (i > s->max_commit) s->max_commit = i;
    }
    if (c > nd->checked_commit) nd->checked_commit = c;
}

static void check_leader_completeness(sim_t *s, node_t *nd) {
    rn_raft_t *r = nd->r;
    uint64_t term = rn_raft_term(r);
    for (uint64_t i = rn_raft_snapshot_meta(r)->index + 1; i <= s->max_commit; i++) {
        gidx_t *g = gat(s, i);
        if (!g->committed || g->commit_term > term) continue;
        rn_raft_entry_t e;
        if (!rn_raft_entry_at(r, i, &e) || entry_hash(&e) != g->hash) {
            sim_fail(s, "leader completeness: leader %d of term %llu lacks entry %llu committed in term %llu", nd->id,
                     (unsigned long long)term, (unsigned long long)i, (unsigned long long)g->commit_term);
            return;
        }
    }
}

static void check_all(sim_t *s) {
    for (int i = 1; i <= s->n && !s->failure[0]; i++) {
        node_t *nd = &s->nodes[i];
        if (!nd->up) continue;
        check_node(s, nd);
        if (!nd->up) continue; /* restarted after a storage error */
        if (nd->dirty) {
            for (int j = 1; j <= s->n; j++)
                if (j != i && s->nodes[j].up) check_log_matching(s, nd, &s->nodes[j]);
            nd->dirty = false;
        }
        if (rn_raft_role(nd->r) == RN_RAFT_LEADER) check_leader_completeness(s, nd);
    }
}

/* ---- driver --------------------------------------------------------------------------------- */

static void deliver(sim_t *s, event_t *ev) {
    node_t *nd = &s->nodes[ev->node];
    /* a partition also cuts what is in flight */
    if (!nd->up || s->group[ev->a] != s->group[ev->node]) return;
    rn_raft_entry_t ents[RN_RAFT_MAX_APPEND_ENTRIES];
    rn_raft_msg_t m;
    rn_raft_msg_limits_t lim = rn_raft_msg_limits(&s->cfg);
    rn_err_t err = rn_raft_msg_decode(ev->bytes, ev->len, &lim, ents, &m);
    if (err) {
        sim_fail(s, "decode of an encoded message failed: %s", rn_err_name(err));
        return;
    }
    trace_msg(s, "recv", &m);
    if (m.type == RN_RAFT_MSG_SNAPSHOT) nd->snap_chunks_recv++;
    rn_raft_step(nd->r, &m);
}

static void propose(sim_t *s, int id) {
    node_t *nd = &s->nodes[id];
    if (!nd->up) return;
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "s%llu-p%llu-", (unsigned long long)s->seed, (unsigned long long)++s->payload_counter);
    size_t len = (size_t)n + (size_t)rnd(s, sizeof(buf) - (size_t)n);
    for (size_t i = (size_t)n; i < len; i++) buf[i] = (char)('a' + i % 26);
    uint64_t index = 0;
    int32_t hint = RN_RAFT_NO_NODE;
    rn_err_t err = rn_raft_propose(nd->r, buf, len, &index, &hint);
    if (err == RN_ERR_NOT_LEADER_OR_FOLLOWER && hint > 0 && hint <= s->n && s->nodes[hint].up && hint != id) {
        nd = &s->nodes[hint];
        err = rn_raft_propose(nd->r, buf, len, &index, &hint);
    }
    if (!err) s->proposals++;
    if (s->trace && !err) printf("t=%lld propose at node %d -> index %llu\n", (long long)s->now, nd->id,
                                 (unsigned long long)index);
}

static node_t *sim_leader(sim_t *s);

static void fault(sim_t *s) {
    int id = 1 + (int)rnd(s, (uint64_t)s->n);
    if (rnd(s, 10) == 0) {
        node_t *l = sim_leader(s);
        rn_err_t err = l ? rn_raft_transfer_leadership(l->r, id) : RN_OK;
        if (s->trace && l) printf("t=%lld leader %d hands over to %d: %s\n", (long long)s->now, l->id, id,
                                  rn_err_name(err));
        return;
    }
    switch (rnd(s, s->membership ? 12 : 9)) {
    case 11: {
        node_t *l = sim_leader(s);
        if (!l || rn_raft_voters_has(rn_raft_voters(l->r), id)) break;
        bool add = !rn_raft_voters_has(rn_raft_learners(l->r), id);
        rn_err_t err = rn_raft_change_learner(l->r, id, add, NULL);
        if (s->trace) printf("t=%lld %s learner %d at leader %d: %s\n", (long long)s->now, add ? "add" : "remove", id,
                             l->id, rn_err_name(err));
        break;
    }
    case 9:
    case 10: {
        node_t *l = sim_leader(s);
        if (!l) break;
        bool add = !rn_raft_voters_has(rn_raft_voters(l->r), id), demote = !add && rnd(s, 2);
        rn_err_t err = demote ? rn_raft_demote_voter(l->r, id, NULL) : rn_raft_change_voter(l->r, id, add, NULL);
        if (s->trace) printf("t=%lld %s voter %d at leader %d: %s\n", (long long)s->now,
                             add ? "add" : demote ? "demote" : "remove", id, l->id, rn_err_name(err));
        break;
    }
    case 0: node_crash(s, id); break;
    case 1:
    case 8: {
        node_t *l = NULL;
        for (int i = 1; i <= s->n; i++)
            if (s->nodes[i].up && rn_raft_role(s->nodes[i].r) == RN_RAFT_LEADER) l = &s->nodes[i];
        if (l) node_crash(s, l->id);
        break;
    }
    case 2:
    case 3:
        for (int i = 1; i <= s->n; i++)
            if (!s->nodes[i].up) {
                node_start(s, i);
                break;
            }
        break;
    case 4:
        for (int i = 1; i <= s->n; i++) s->group[i] = (int)rnd(s, 2);
        if (s->trace) printf("t=%lld partition\n", (long long)s->now);
        break;
    case 5:
        for (int i = 1; i <= s->n; i++) s->group[i] = 0;
        if (s->trace) printf("t=%lld heal\n", (long long)s->now);
        break;
    case 6:
        s->drop_pm = (uint32_t)rnd(s, 300);
        s->dup_pm = (uint32_t)rnd(s, 100);
        s->delay_max = 1 + (uint32_t)rnd(s, 60);
        break;
    case 7:
        for (int i = 1; i <= s->n; i++) s->group[i] = i == id;
        if (s->trace) printf("t=%lld isolate node %d\n", (long long)s->now, id);
        break;
    }
}

static void run_event(sim_t *s, event_t *ev) {
    s->now = ev->time;
    s->events++;
    node_t *nd = ev->node ? &s->nodes[ev->node] : NULL;
    switch (ev->kind) {
    case EV_DELIVER: deliver(s, ev); break;
    case EV_SYNC:
        if (nd->up && nd->inc == ev->inc) {
            size_t k = 0;
            while (k < nd->disk.nops && nd->disk.ops[k].seq <= ev->b) k++;
            disk_apply_ops(s, &nd->disk, k, SIZE_MAX);
            rn_raft_synced(nd->r, ev->a);
        }
        break;
    case EV_TICK:
        if (nd->up && nd->inc == ev->inc) {
            rn_raft_tick(nd->r);
            q_push(s, (event_t){.time = s->now + TICK_MS, .kind = EV_TICK, .node = ev->node, .inc = ev->inc});
        }
        break;
    case EV_FAULT:
        if (s->chaos) {
            fault(s);
            q_push(s, (event_t){.time = s->now + 20 + (int64_t)rnd(s, 300), .kind = EV_FAULT});
        }
        break;
    case EV_PROPOSE:
        if (s->chaos) {
            propose(s, 1 + (int)rnd(s, (uint64_t)s->n));
            q_push(s, (event_t){.time = s->now + 5 + (int64_t)rnd(s, 60), .kind = EV_PROPOSE});
        }
        break;
    }
    free(ev->bytes);
    check_all(s);
}

/* Runs events until virtual time `until` or a failure. */
static void sim_run_until(sim_t *s, int64_t until) {
    while (s->nq && !s->failure[0] && s->q[0].time <= until) {
        event_t ev = q_pop(s);
        run_event(s, &ev);
    }
    if (s->now < until) s->now = until;
}

static void sim_config(rn_raft_config_t *c, int n_voters) {
    rn_raft_config_defaults(c);
    c->initial_voters.count = (uint32_t)n_voters;
    for (int i = 0; i < n_voters; i++) c->initial_voters.ids[i] = i + 1;
    c->election_timeout_ms = 150;
    c->heartbeat_ms = 30;
    c->max_append_bytes = 256;
    c->max_append_entries = 8;
    c->max_inflight = 4;
    c->max_log_bytes = 64 * 1024;
    c->snapshot_entries = 40;
    c->max_snapshot_bytes = 64 * 1024;
    c->max_entry_bytes = 1024;
}

/* A cluster of n nodes (the first n_voters of them voters); start them with sim_start. */
static sim_t *sim_new(uint64_t seed, int n, int n_voters) {
    sim_t *s = calloc(1, sizeof(*s));
    s->seed = seed;
    s->rng = seed * 0x2545f4914f6cdd1dull + 1;
    s->n = n;
    s->q = malloc(QUEUE_MAX * sizeof(*s->q));
    s->delay_max = 10;
    sim_config(&s->cfg, n_voters);
    for (int i = 1; i <= n; i++) {
        s->nodes[i].sim = s;
        s->nodes[i].id = i;
    }
    return s;
}

static void sim_start(sim_t *s) {
    for (int i = 1; i <= s->n; i++) node_start(s, i);
}

static void sim_free(sim_t *s) {
    while (s->nq) free(q_pop(s).bytes);
    free(s->q);
    for (int i = 1; i <= s->n; i++) {
        rn_raft_free(s->nodes[i].r);
        disk_free(&s->nodes[i].disk);
    }
    free(s->leader_of_term);
    free(s->g);
    free(s);
}

static node_t *sim_leader(sim_t *s) {
    node_t *best = NULL;
    for (int i = 1; i <= s->n; i++) {
        node_t *nd = &s->nodes[i];
        if (nd->up && rn_raft_role(nd->r) == RN_RAFT_LEADER &&
            (!best || rn_raft_term(nd->r) > rn_raft_term(best->r)))
            best = nd;
    }
    return best;
}

/* Heals everything, then requires a leader and a proposal committed on every
 * voter within `bound_ms` of virtual time. */
static void sim_liveness(sim_t *s, int64_t bound_ms) {
    s->chaos = false;
    for (int i = 1; i <= s->n; i++) {
        s->group[i] = 0;
        if (!s->nodes[i].up) node_start(s, i);
    }
    s->drop_pm = s->dup_pm = 0;
    s->delay_max = 10;
    int64_t deadline = s->now + bound_ms;
    uint64_t idx = 0, term = 0;
    while (!s->failure[0] && s->now < deadline) {
        sim_run_until(s, s->now + 20);
        node_t *l = sim_leader(s);
        if (!l) continue;
        if (idx && rn_raft_term_at(l->r, idx) != term) idx = 0; /* lost with an old leader */
        if (!idx) {
            char p[] = "liveness";
            int32_t hint;
            if (rn_raft_propose(l->r, p, sizeof(p), &idx, &hint) == RN_OK) term = rn_raft_term(l->r);
            continue;
        }
        bool all = true;
        for (int set = 0; set < 2; set++) {
            const rn_raft_voters_t *v = set ? rn_raft_learners(l->r) : rn_raft_voters(l->r);
            for (uint32_t k = 0; k < v->count; k++) {
                node_t *nd = &s->nodes[v->ids[k]];
                if (!nd->up || rn_raft_applied_index(nd->r) < idx) all = false;
            }
        }
        if (all) return;
    }
    sim_fail(s, "liveness: no proposal applied on every voter and learner within %lld ms after healing",
             (long long)bound_ms);
}

static uint64_t total_events, total_ms, total_commits, total_crashes;

static bool run_seed(uint64_t seed, bool trace, int64_t chaos_ms) {
    /* odd seeds: 5 nodes; seeds 1 mod 4 start with 3 voters and change voters and
     * learners as they go, seeds 3 mod 4 have 3 voters and 2 learners */
    int n = seed % 2 ? 5 : 3;
    bool membership = seed % 4 == 1;
    sim_t *s = sim_new(seed, n, n == 5 ? 3 : n);
    s->membership = membership;
    if (seed % 4 == 3) s->cfg.initial_learners = (rn_raft_voters_t){.count = 2, .ids = {4, 5}};
    /* vary batching per seed: one entry per message makes more interleavings */
    s->cfg.max_append_entries = 1 + (uint32_t)rnd(s, 8);
    s->cfg.max_inflight = 1 + (uint32_t)rnd(s, 4);
    s->trace = trace;
    sim_start(s);
    s->chaos = true;
    q_push(s, (event_t){.time = 100, .kind = EV_FAULT});
    q_push(s, (event_t){.time = 50, .kind = EV_PROPOSE});
    sim_run_until(s, chaos_ms);
    if (!s->failure[0]) sim_liveness(s, 10000);
    bool ok = !s->failure[0];
    total_events += s->events;
    total_ms += (uint64_t)s->now;
    total_commits += s->max_commit;
    total_crashes += s->crashes;
    if (!ok) printf("seed %llu (%d nodes) FAILED: %s\n  replay: RN_RAFT_SEED=%llu ./test_raft_sim\n",
                    (unsigned long long)seed, n, s->failure, (unsigned long long)seed);
    if (trace)
        printf("seed %llu: %llu events, %llu proposals, %llu crashes, %llu snapshot chunks, commit %llu\n",
               (unsigned long long)seed, (unsigned long long)s->events, (unsigned long long)s->proposals,
               (unsigned long long)s->crashes, (unsigned long long)s->snapshots_sent,
               (unsigned long long)s->max_commit);
    sim_free(s);
    return ok;
}

RN_TEST(raft_sim_seeds) {
    const char *one = getenv("RN_RAFT_SEED");
    if (one) {
        rn_log_set_level(RN_LOG_DEBUG);
        ASSERT_TRUE(run_seed(strtoull(one, NULL, 10), true, 3000));
        return;
    }
    const char *ns = getenv("RN_RAFT_SEEDS");
    const char *first = getenv("RN_RAFT_SEED_FIRST");
    uint64_t n = ns ? strtoull(ns, NULL, 10) : 3000;
    uint64_t base = first ? strtoull(first, NULL, 10) : 1;
    uint64_t failed = 0;
    rn_log_level_current = -1; /* injected storage errors log; the replay shows them */
    for (uint64_t seed = base; seed < base + n && failed < 5; seed++)
        if (!run_seed(seed, false, 3000)) failed++;
    printf("  %llu seeds, %llu failed: %llu events, %llu s of virtual time, %llu entries committed, %llu crashes\n",
           (unsigned long long)n, (unsigned long long)failed, (unsigned long long)total_events,
           (unsigned long long)(total_ms / 1000), (unsigned long long)total_commits, (unsigned long long)total_crashes);
    rn_log_set_level(RN_LOG_ERROR);
    ASSERT_EQ(failed, 0);
}

/* ---- targeted scenarios ------------------------------------------------------------------- */

typedef bool (*pred_fn)(sim_t *s, int arg);

/* Runs event by event until pred holds (checked after each event) or max_ms pass. */
static bool run_until(sim_t *s, pred_fn pred, int arg, int64_t max_ms) {
    int64_t deadline = s->now + max_ms;
    while (!s->failure[0]) {
        if (pred(s, arg)) return true;
        if (!s->nq || s->q[0].time > deadline) break;
        event_t ev = q_pop(s);
        run_event(s, &ev);
    }
    return !s->failure[0] && pred(s, arg);
}

static bool p_leader(sim_t *s, int term_above) {
    node_t *l = sim_leader(s);
    return l && rn_raft_term(l->r) > (uint64_t)term_above;
}

static uint64_t p_index;
static bool p_all_applied(sim_t *s, int mask) {
    for (int i = 1; i <= s->n; i++)
        if ((mask & (1 << i)) && (!s->nodes[i].up || rn_raft_applied_index(s->nodes[i].r) < p_index)) return false;
    return true;
}
static bool p_commit(sim_t *s, int id) { return rn_raft_commit_index(s->nodes[id].r) >= p_index; }

static int all_mask(sim_t *s) { return ((1 << (s->n + 1)) - 1) & ~1; }

static void set_groups(sim_t *s, const int *g) {
    for (int i = 1; i <= s->n; i++) s->group[i] = g[i];
}

/* Proposes at the current leader (waiting for one) and waits until the nodes in mask applied it. */
static bool commit_one(sim_t *s, int mask, const char *what) {
    for (int tries = 0; tries < 20 && !s->failure[0]; tries++) {
        if (!run_until(s, p_leader, 0, 3000)) return false;
        node_t *l = sim_leader(s);
        int32_t hint;
        if (rn_raft_propose(l->r, what, strlen(what), &p_index, &hint) != RN_OK) continue;
        if (run_until(s, p_all_applied, mask, 3000)) return true;
    }
    return false;
}

#define ASSERT_SIM_OK(s)                                                               \
    do {                                                                               \
        if ((s)->failure[0]) RN_TEST_FAIL_("simulation failed: %s", (s)->failure);      \
    } while (0)

/*
 * Figure 8 of the Raft paper: an entry of an old term replicated to a majority
 * by a later leader is not committed by counting. Built with partitions:
 * A leads and gives X (index i) to B only; E wins a later term among C, D, E
 * and is cut off at once (its no-op at i is only its own); A or B wins again,
 * replicates X to C, is cut off as soon as it says i is committed; then E, C,
 * D meet. Counting replicas of X would let E overwrite a committed entry.
 */
RN_TEST(raft_sim_figure8) {
    sim_t *s = sim_new(8, 5, 5);
    s->cfg.max_append_entries = 1;
    s->cfg.max_inflight = 1;
    s->delay_max = 3;
    sim_start(s);
    ASSERT_TRUE(commit_one(s, all_mask(s), "first"));
    int a = sim_leader(s)->id, b = a % 5 + 1, c = b % 5 + 1, d = c % 5 + 1, e = d % 5 + 1;
    int g1[MAXN + 1] = {0};
    g1[a] = g1[b] = 1, g1[c] = 2, g1[d] = 3, g1[e] = 4;
    set_groups(s, g1);
    uint64_t i;
    int32_t hint;
    ASSERT_EQ(rn_raft_propose(s->nodes[a].r, "X", 1, &i, &hint), RN_OK);
    sim_run_until(s, s->now + 100);
    ASSERT_LT(rn_raft_commit_index(s->nodes[a].r), i);
    /* C, D, E elect a leader W, cut off at once */
    int t1 = (int)rn_raft_term(s->nodes[a].r);
    g1[c] = g1[d] = g1[e] = 2;
    set_groups(s, g1);
    ASSERT_TRUE(run_until(s, p_leader, t1, 3000));
    int w = sim_leader(s)->id;
    ASSERT_TRUE(w == c || w == d || w == e);
    g1[w] = 5;
    set_groups(s, g1);
    int others[2], k = 0;
    for (int x = 1; x <= 5; x++)
        if (x != a && x != b && x != w) others[k++] = x;
    /* A, B and one of the others: A or B wins and replicates X */
    int tw = (int)rn_raft_term(s->nodes[w].r);
    g1[a] = g1[b] = g1[others[0]] = 1;
    g1[others[1]] = 3;
    set_groups(s, g1);
    ASSERT_TRUE(run_until(s, p_leader, tw, 3000));
    int l = sim_leader(s)->id;
    ASSERT_TRUE(l == a || l == b);
    p_index = i;
    ASSERT_TRUE(run_until(s, p_commit, l, 3000));
    /* cut the leader off the moment it counts i committed; E meets C and D */
    int g2[MAXN + 1] = {0};
    g2[l] = 6, g2[l == a ? b : a] = 7;
    g2[w] = g2[others[0]] = g2[others[1]] = 8;
    set_groups(s, g2);
    sim_run_until(s, s->now + 3000);
    ASSERT_SIM_OK(s);
    sim_liveness(s, 10000);
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* A leader cut off keeps no client entry; after healing it follows and converges. */
RN_TEST(raft_sim_leader_isolated) {
    sim_t *s = sim_new(11, 5, 5);
    sim_start(s);
    for (int j = 0; j < 5; j++) ASSERT_TRUE(commit_one(s, all_mask(s), "before"));
    int l = sim_leader(s)->id;
    int g[MAXN + 1] = {0};
    g[l] = 1;
    set_groups(s, g);
    uint64_t lost;
    int32_t hint;
    ASSERT_EQ(rn_raft_propose(s->nodes[l].r, "lost", 4, &lost, &hint), RN_OK);
    int mask = all_mask(s) & ~(1 << l);
    ASSERT_TRUE(run_until(s, p_leader, (int)rn_raft_term(s->nodes[l].r), 3000));
    for (int j = 0; j < 3; j++) ASSERT_TRUE(commit_one(s, mask, "during"));
    ASSERT_LT(rn_raft_commit_index(s->nodes[l].r), lost);
    sim_run_until(s, s->now + 1000);
    ASSERT_NE(rn_raft_role(s->nodes[l].r), RN_RAFT_LEADER); /* check-quorum stepped it down */
    memset(g, 0, sizeof(g));
    set_groups(s, g);
    ASSERT_TRUE(commit_one(s, all_mask(s), "after"));
    rn_raft_entry_t e;
    ASSERT_TRUE(rn_raft_entry_at(s->nodes[l].r, lost, &e) || rn_raft_snapshot_meta(s->nodes[l].r)->index >= lost);
    ASSERT_FALSE(e.len == 4 && !memcmp(e.data, "lost", 4));
    node_t *n = sim_leader(s);
    ASSERT_EQ(rn_raft_term(s->nodes[l].r), rn_raft_term(n->r));
    ASSERT_EQ(s->nodes[l].sm_roll, n->sm_roll);
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* Nodes 1..count all see a voter set of count (removed nodes never hear of their removal). */
static bool p_voters(sim_t *s, int count) {
    for (int i = 1; i <= count; i++)
        if (s->nodes[i].up && rn_raft_voters(s->nodes[i].r)->count != (uint32_t)count) return false;
    return true;
}

enum { CH_VOTER_ADD, CH_VOTER_REMOVE, CH_LEARNER_ADD, CH_DEMOTE };

/* One configuration change at the leader (waiting for one), retried until it commits there. */
static void change_member(sim_t *s, int id, int op) {
    for (int tries = 0; tries < 200 && !s->failure[0]; tries++) {
        if (!run_until(s, p_leader, 0, 3000)) break;
        rn_raft_t *r = sim_leader(s)->r;
        rn_err_t err = op == CH_LEARNER_ADD ? rn_raft_change_learner(r, id, true, &p_index)
                       : op == CH_DEMOTE    ? rn_raft_demote_voter(r, id, &p_index)
                                            : rn_raft_change_voter(r, id, op == CH_VOTER_ADD, &p_index);
        if (err == RN_OK && run_until(s, p_commit, sim_leader(s) ? sim_leader(s)->id : 1, 2000)) return;
        sim_run_until(s, s->now + 20);
    }
    sim_fail(s, "member change %d of %d did not commit", op, id);
}

static void change_voter(sim_t *s, int id, bool add) { change_member(s, id, add ? CH_VOTER_ADD : CH_VOTER_REMOVE); }

/* Voter set 3 -> 4 -> 5 (a quorum of 3 survives two crashes) -> 4 -> 3. */
RN_TEST(raft_sim_membership) {
    sim_t *s = sim_new(21, 5, 3);
    sim_start(s);
    ASSERT_TRUE(commit_one(s, 0xe, "three"));
    ASSERT_LE(sim_leader(s)->id, 3);
    change_voter(s, 4, true);
    change_voter(s, 5, true);
    ASSERT_SIM_OK(s);
    ASSERT_TRUE(commit_one(s, all_mask(s), "five"));
    ASSERT_TRUE(p_voters(s, 5));
    /* two of five down: the other three still commit */
    int l = sim_leader(s)->id, down = 0;
    for (int i = 1; i <= 5 && down < 2; i++)
        if (i != l) node_crash(s, i), down++;
    int mask = 0;
    for (int i = 1; i <= 5; i++)
        if (s->nodes[i].up) mask |= 1 << i;
    ASSERT_TRUE(commit_one(s, mask, "three of five"));
    for (int i = 1; i <= 5; i++)
        if (!s->nodes[i].up) node_start(s, i);
    change_voter(s, 4, false);
    change_voter(s, 5, false);
    ASSERT_SIM_OK(s);
    ASSERT_TRUE(commit_one(s, 0xe, "three again"));
    ASSERT_TRUE(run_until(s, p_voters, 3, 2000));
    /* removed nodes do not disturb: the leader keeps its term */
    node_t *ld = sim_leader(s);
    ASSERT_LE(ld->id, 3);
    uint64_t term = rn_raft_term(ld->r);
    sim_run_until(s, s->now + 3000);
    ASSERT_EQ(rn_raft_term(ld->r), term);
    ASSERT_EQ(rn_raft_role(ld->r), RN_RAFT_LEADER);
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* Learners get every entry but never count: with two of three voters down the
 * two learners cannot make a commit; a learner is promoted to voter. */
RN_TEST(raft_sim_learners) {
    sim_t *s = sim_new(51, 5, 3);
    s->cfg.initial_learners = (rn_raft_voters_t){.count = 2, .ids = {4, 5}};
    sim_start(s);
    for (int j = 0; j < 3; j++) ASSERT_TRUE(commit_one(s, all_mask(s), "to all five"));
    sim_run_until(s, s->now + 2000);
    for (int i = 4; i <= 5; i++) {
        ASSERT_EQ(rn_raft_role(s->nodes[i].r), RN_RAFT_FOLLOWER); /* never campaigned */
        ASSERT_EQ(s->nodes[i].sm_roll, sim_leader(s)->sm_roll);
    }
    int l = sim_leader(s)->id, down = l % 3 + 1;
    node_crash(s, down);
    ASSERT_TRUE(commit_one(s, all_mask(s) & ~(1 << down), "two voters"));
    /* the second voter down: learners up, nothing commits */
    int other = 6 - l - down;
    node_crash(s, other);
    uint64_t idx;
    int32_t hint;
    node_t *ld = &s->nodes[l];
    if (rn_raft_role(ld->r) == RN_RAFT_LEADER) {
        ASSERT_EQ(rn_raft_propose(ld->r, "stuck", 5, &idx, &hint), RN_OK);
        sim_run_until(s, s->now + 100);
        ASSERT_LT(rn_raft_commit_index(ld->r), idx);
        ASSERT_GE(rn_raft_last_index(s->nodes[4].r), idx); /* replicated to the learners */
    }
    node_start(s, down);
    node_start(s, other);
    ASSERT_TRUE(commit_one(s, all_mask(s), "all back"));
    /* promote learner 4 */
    change_voter(s, 4, true);
    ASSERT_SIM_OK(s);
    ASSERT_TRUE(commit_one(s, all_mask(s), "promoted"));
    for (int i = 1; i <= 5; i++) {
        ASSERT_EQ(rn_raft_voters(s->nodes[i].r)->count, 4);
        ASSERT_EQ(rn_raft_learners(s->nodes[i].r)->count, 1);
    }
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* The runtime's path (src/cluster/rn_quorum.c): one voter grown to three, each newcomer a
 * learner first (crashed and restarted while it catches up) then promoted, with messages
 * dropped and duplicated throughout; the first voter crashed, the two others go on; it comes
 * back and is demoted to a learner: it learns that from the log and never campaigns again. */
RN_TEST(raft_sim_grow_from_one_voter) {
    sim_t *s = sim_new(71, 3, 1);
    sim_start(s);
    ASSERT_TRUE(commit_one(s, 1 << 1, "alone"));
    s->drop_pm = 100;
    s->dup_pm = 50;
    for (int id = 2; id <= 3; id++) {
        change_member(s, id, CH_LEARNER_ADD);
        sim_run_until(s, s->now + 5);
        node_crash(s, id); /* mid catch-up */
        ASSERT_TRUE(commit_one(s, (1 << id) - 2, "while the learner is down"));
        node_start(s, id);
        ASSERT_TRUE(commit_one(s, (1 << (id + 1)) - 2, "learner caught up"));
        ASSERT_EQ(rn_raft_role(s->nodes[id].r), RN_RAFT_FOLLOWER);
        change_member(s, id, CH_VOTER_ADD);
        ASSERT_SIM_OK(s);
    }
    ASSERT_TRUE(commit_one(s, all_mask(s), "three voters"));
    ASSERT_TRUE(run_until(s, p_voters, 3, 3000));
    node_crash(s, 1);
    ASSERT_TRUE(commit_one(s, (1 << 2) | (1 << 3), "without the first"));
    ASSERT_TRUE(sim_leader(s)->id != 1);
    node_start(s, 1);
    change_member(s, 1, CH_DEMOTE);
    ASSERT_TRUE(commit_one(s, all_mask(s), "demoted"));
    for (int i = 1; i <= 3; i++) {
        ASSERT_EQ(rn_raft_voters(s->nodes[i].r)->count, 2);
        ASSERT_TRUE(rn_raft_voters_has(rn_raft_learners(s->nodes[i].r), 1));
    }
    node_t *ld = sim_leader(s);
    uint64_t term = rn_raft_term(ld->r);
    sim_run_until(s, s->now + 3000);
    ASSERT_EQ(rn_raft_term(ld->r), term); /* the learner never campaigned */
    ASSERT_NE(rn_raft_role(s->nodes[1].r), RN_RAFT_LEADER);
    ASSERT_SIM_OK(s);
    sim_liveness(s, 10000);
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* Leadership handed over: the target leads within a few round trips, well under
 * an election timeout; proposals meanwhile point at the target. */
RN_TEST(raft_sim_leader_transfer) {
    sim_t *s = sim_new(61, 5, 5);
    sim_start(s);
    ASSERT_TRUE(commit_one(s, all_mask(s), "before"));
    for (int round = 0; round < 4; round++) {
        node_t *l = sim_leader(s);
        int target = l->id % 5 + 1;
        uint64_t term = rn_raft_term(l->r);
        ASSERT_EQ(rn_raft_transfer_leadership(l->r, target), RN_OK);
        uint64_t idx;
        int32_t hint = 0;
        if (rn_raft_role(l->r) == RN_RAFT_LEADER) {
            ASSERT_EQ(rn_raft_propose(l->r, "x", 1, &idx, &hint), RN_ERR_NOT_LEADER_OR_FOLLOWER);
            ASSERT_EQ(hint, target);
        }
        int64_t start = s->now;
        ASSERT_TRUE(run_until(s, p_leader, (int)term, 1000));
        ASSERT_EQ(sim_leader(s)->id, target);
        ASSERT_EQ(rn_raft_term(sim_leader(s)->r), term + 1);
        ASSERT_LT(s->now - start, (int64_t)s->cfg.election_timeout_ms);
        printf("  handover %d -> %d in %lld ms of virtual time\n", l->id, target, (long long)(s->now - start));
        ASSERT_TRUE(commit_one(s, all_mask(s), "after"));
    }
    ASSERT_EQ(rn_raft_transfer_leadership(sim_leader(s)->r, 9), RN_ERR_INVALID_ARG);
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* The only voter leads at its first tick, before any election timeout, and
 * again at once after a restart. */
RN_TEST(raft_sim_single_voter) {
    sim_t *s = sim_new(71, 1, 1);
    sim_start(s);
    int64_t start = s->now;
    ASSERT_TRUE(run_until(s, p_leader, 0, 1000));
    ASSERT_LT(s->now - start, (int64_t)s->cfg.election_timeout_ms);
    ASSERT_TRUE(commit_one(s, all_mask(s), "alone"));
    node_crash(s, 1);
    node_start(s, 1);
    start = s->now;
    ASSERT_TRUE(run_until(s, p_leader, 1, 1000));
    ASSERT_LT(s->now - start, (int64_t)s->cfg.election_timeout_ms);
    ASSERT_TRUE(commit_one(s, all_mask(s), "after restart"));
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* A node down while the others compact their logs catches up by snapshot. */
RN_TEST(raft_sim_snapshot_install) {
    sim_t *s = sim_new(31, 3, 3);
    sim_start(s);
    ASSERT_TRUE(commit_one(s, all_mask(s), "start"));
    int l = sim_leader(s)->id, x = l % 3 + 1;
    node_crash(s, x);
    int mask = all_mask(s) & ~(1 << x);
    char buf[32];
    for (int j = 0; j < 150; j++) {
        snprintf(buf, sizeof(buf), "entry %d", j);
        ASSERT_TRUE(commit_one(s, mask, buf));
    }
    node_t *ld = sim_leader(s);
    ASSERT_GT(rn_raft_snapshot_meta(ld->r)->index, 100);
    node_start(s, x);
    uint64_t recv = s->nodes[x].snap_chunks_recv;
    p_index = rn_raft_commit_index(ld->r);
    ASSERT_TRUE(run_until(s, p_all_applied, all_mask(s), 3000));
    ASSERT_GT(s->nodes[x].snap_chunks_recv, recv + 1); /* several chunks */
    ASSERT_GT(rn_raft_snapshot_meta(s->nodes[x].r)->index, 0);
    ASSERT_EQ(s->nodes[x].sm_roll, s->nodes[l].sm_roll);
    ASSERT_SIM_OK(s);
    sim_free(s);
}

/* No faults, clients as fast as the log allows: 5000 entries of 100 bytes on 3 nodes.
 * Prints the virtual time it took (network 1-11 ms a hop, syncs 0-15 ms). */
RN_TEST(raft_sim_throughput) {
    sim_t *s = sim_new(41, 3, 3);
    s->cfg.max_append_entries = 64;
    s->cfg.max_append_bytes = 64 * 1024;
    s->cfg.snapshot_entries = 1000;
    sim_start(s);
    ASSERT_TRUE(run_until(s, p_leader, 0, 3000));
    int64_t start = s->now;
    char payload[100];
    memset(payload, 'x', sizeof(payload));
    int accepted = 0;
    uint64_t last = 0;
    while (accepted < 5000 && s->now - start < 60000 && !s->failure[0]) {
        node_t *l = sim_leader(s);
        for (int k = 0; l && k < 200 && accepted < 5000; k++) {
            int32_t hint;
            if (rn_raft_propose(l->r, payload, sizeof(payload), &last, &hint) != RN_OK) break;
            accepted++;
        }
        sim_run_until(s, s->now + 5);
    }
    p_index = last;
    ASSERT_TRUE(run_until(s, p_all_applied, all_mask(s), 10000));
    int64_t took = s->now - start;
    printf("  5000 entries committed and applied on 3 nodes in %lld ms of virtual time\n", (long long)took);
    ASSERT_LT(took, 20000);
    ASSERT_SIM_OK(s);
    sim_free(s);
}

int main(void) {
    rn_log_set_level(RN_LOG_ERROR);
    return rn_test_main();
}
