/*
 * rn_raft.c — the Raft state machine (see rn_raft.h and docs/internals/raft.md).
 *
 * Roles:
 *
 *            timeout, voter            pre-votes from a majority
 *   FOLLOWER ─────────────► PRECANDIDATE ──────────────────► CANDIDATE
 *      ▲  ▲                    │   (term unchanged)          (term+1, vote self,
 *      │  └────────────────────┘ higher term / leader seen    persisted)
 *      │                                                        │ votes from
 *      │   higher term, check-quorum failed,                     │ a majority
 *      └── removed from the voter set once committed ◄── LEADER ◄┘ (no-op appended)
 *
 * The log in memory holds the entries after the snapshot: ents[i] is index
 * snap.index + 1 + i. Indexes: durable <= last (what storage has synced),
 * applied <= commit <= last, snap.index <= applied. assert_raft_state() checks
 * these after every event.
 *
 * One sync is in flight at a time (group commit): it covers every entry up to
 * sync_index; a truncation below that lowers it (and `durable`), so a
 * completion never vouches for an entry that was replaced meanwhile.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_logging.h"
#include "rn_raft.h"

#define ENTRY_OVERHEAD 32 /* bytes charged per entry against max_log_bytes */

enum { PEER_PROBE = 0, PEER_REPLICATE = 1, PEER_SNAPSHOT = 2 };

typedef struct {
    uint64_t term;
    uint8_t type;
    uint32_t len;
    uint8_t *data;
} log_ent_t;

typedef struct {
    int32_t id;
    int mode;
    uint64_t next;
    uint64_t match;
    uint32_t inflight; /* PROBE, SNAPSHOT: a message is outstanding (0/1) */
    int64_t last_resp_ms;
    int64_t progress_ms; /* when match last advanced (or replication restarted) */
    uint64_t snap_index; /* snapshot being sent and the offset acknowledged */
    uint64_t snap_offset;
} peer_t;

struct rn_raft {
    rn_raft_config_t cfg;
    rn_raft_io_t io;
    rn_raft_sm_t sm;
    rn_err_t failed;

    /* persistent */
    uint64_t term;
    int32_t vote;

    /* log */
    log_ent_t *ents;
    size_t n_ents, cap_ents;
    uint64_t log_bytes;
    rn_raft_snap_meta_t snap;
    uint8_t *snap_data;
    size_t snap_len;
    rn_raft_voters_t voters;  /* latest config in the log (or the snapshot's) */
    rn_raft_voters_t learners;
    uint64_t config_index;    /* index of that config entry (snap.index if none) */

    /* volatile */
    rn_raft_role_t role;
    int32_t leader;
    uint64_t commit, applied, durable;
    uint64_t applied_bytes; /* log_bytes of the applied entries above the snapshot */
    int64_t election_deadline_ms;
    int64_t heartbeat_deadline_ms;
    int64_t quorum_deadline_ms;
    int64_t leader_contact_ms;
    int32_t granted[RN_RAFT_MAX_VOTERS];
    uint32_t n_granted;

    /* storage sync */
    bool sync_inflight;
    uint64_t sync_ticket, sync_index, deferred_ticket;
    int depth;

    /* follower: the success answer waiting for a sync */
    bool ack_pending;
    int32_t ack_to;
    uint64_t ack_term, ack_index;

    /* follower: snapshot being received */
    rn_raft_snap_meta_t rx_meta;
    uint8_t *rx_data;
    size_t rx_len, rx_total;

    /* leader */
    peer_t peers[2 * RN_RAFT_MAX_VOTERS]; /* voters and learners */
    int32_t transfer_to; /* leadership being handed to (RN_RAFT_NO_NODE: none) */
    bool transfer_sent;
    int64_t transfer_deadline_ms;
    uint32_t n_peers;

    /* last notified to sm.role_change */
    rn_raft_role_t n_role;
    uint64_t n_term;
    int32_t n_leader;
};

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(rn_raft_t *r) { return r->io.now_ms(r->io.ctx); }

static uint64_t last_index(const rn_raft_t *r) { return r->snap.index + r->n_ents; }

static log_ent_t *ent(const rn_raft_t *r, uint64_t index) {
    RN_ASSERT(index > r->snap.index && index <= last_index(r));
    return &r->ents[index - r->snap.index - 1];
}

uint64_t rn_raft_term_at(const rn_raft_t *r, uint64_t index) {
    if (index == r->snap.index) return r->snap.term;
    if (index < r->snap.index || index > last_index(r)) return 0;
    return ent(r, index)->term;
}

static uint64_t last_term(const rn_raft_t *r) { return rn_raft_term_at(r, last_index(r)); }

static void fail(rn_raft_t *r, rn_err_t err, const char *what) {
    if (r->failed) return;
    RN_ERROR("raft", "node %d: %s failed (%s); the node stops", r->cfg.node_id, what, rn_err_name(err));
    r->failed = err;
}

static bool is_voter(const rn_raft_t *r, int32_t id) { return rn_raft_voters_has(&r->voters, id); }

static uint32_t quorum(const rn_raft_t *r) { return r->voters.count / 2 + 1; }

static void assert_raft_state(const rn_raft_t *r) {
    RN_ASSERT(r->applied <= r->commit);
    RN_ASSERT(r->commit <= last_index(r));
    RN_ASSERT(r->snap.index <= r->applied);
    RN_ASSERT(r->durable <= last_index(r));
    RN_ASSERT(r->durable >= r->snap.index);
    RN_ASSERT(r->role != RN_RAFT_LEADER || r->leader == r->cfg.node_id);
    RN_ASSERT(r->config_index >= r->snap.index && r->config_index <= last_index(r));
}

static void reset_election_timer(rn_raft_t *r) {
    uint64_t t = r->cfg.election_timeout_ms;
    /* The only voter has nobody to wait for: it campaigns at its next tick
     * (a zero-config single node is serving metadata at once, not after a timeout). */
    if (r->voters.count == 1 && is_voter(r, r->cfg.node_id)) {
        r->election_deadline_ms = now_ms(r);
        return;
    }
    r->election_deadline_ms = now_ms(r) + (int64_t)(t + r->io.random(r->io.ctx) % t);
}

static void send(rn_raft_t *r, rn_raft_msg_t *m, int32_t to) {
    m->from = r->cfg.node_id;
    m->to = to;
    m->term = m->term ? m->term : r->term;
    r->io.send(r->io.ctx, m);
}

static bool persist_hardstate(rn_raft_t *r, uint64_t term, int32_t vote) {
    rn_err_t err = r->io.save_hardstate(r->io.ctx, term, vote);
    if (err) {
        fail(r, err, "save_hardstate");
        return false;
    }
    r->term = term;
    r->vote = vote;
    return true;
}

static void request_sync(rn_raft_t *r) {
    if (r->failed || r->sync_inflight || r->durable >= last_index(r)) return;
    r->sync_inflight = true;
    r->sync_ticket++;
    r->sync_index = last_index(r);
    rn_err_t err = r->io.sync(r->io.ctx, r->sync_ticket);
    if (err) fail(r, err, "sync");
}

/* The members in force at index (the last config entry at or below it), in meta. */
static void config_at(const rn_raft_t *r, uint64_t index, rn_raft_snap_meta_t *meta) {
    for (uint64_t i = index; i > r->snap.index; i--) {
        const log_ent_t *e = ent(r, i);
        if (e->type == RN_RAFT_ENTRY_CONFIG &&
            rn_raft_config_decode(e->data, e->len, &meta->voters, &meta->learners) == RN_OK)
            return;
    }
    meta->voters = r->snap.voters;
    meta->learners = r->snap.learners;
}

static uint64_t config_index_at(const rn_raft_t *r, uint64_t index) {
    for (uint64_t i = index; i > r->snap.index; i--)
        if (ent(r, i)->type == RN_RAFT_ENTRY_CONFIG) return i;
    return r->snap.index;
}

static peer_t *find_peer(rn_raft_t *r, int32_t id) {
    for (uint32_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].id == id) return &r->peers[i];
    return NULL;
}

/* Leader: peers are exactly the voters and learners other than this node. */
static void sync_peers(rn_raft_t *r) {
    peer_t old[2 * RN_RAFT_MAX_VOTERS];
    uint32_t n_old = r->n_peers;
    memcpy(old, r->peers, sizeof(old));
    r->n_peers = 0;
    for (uint32_t i = 0; i < r->voters.count + r->learners.count; i++) {
        int32_t id = i < r->voters.count ? r->voters.ids[i] : r->learners.ids[i - r->voters.count];
        if (id == r->cfg.node_id) continue;
        peer_t *p = &r->peers[r->n_peers++];
        bool found = false;
        for (uint32_t j = 0; j < n_old; j++)
            if (old[j].id == id) {
                *p = old[j];
                found = true;
            }
        if (!found)
            *p = (peer_t){.id = id, .mode = PEER_PROBE, .next = last_index(r) + 1, .last_resp_ms = now_ms(r),
                          .progress_ms = now_ms(r)};
    }
}

static void update_config(rn_raft_t *r) {
    rn_raft_snap_meta_t m;
    config_at(r, last_index(r), &m);
    r->voters = m.voters;
    r->learners = m.learners;
    r->config_index = config_index_at(r, last_index(r));
    if (r->role == RN_RAFT_LEADER) sync_peers(r);
}

/* ---- the log ---------------------------------------------------------------- */

static bool log_push(rn_raft_t *r, const rn_raft_entry_t *e) {
    if (r->n_ents == r->cap_ents) {
        size_t cap = r->cap_ents ? r->cap_ents * 2 : 64;
        log_ent_t *n = realloc(r->ents, cap * sizeof(*n));
        if (!n) return false;
        r->ents = n;
        r->cap_ents = cap;
    }
    uint8_t *d = NULL;
    if (e->len) {
        d = malloc(e->len);
        if (!d) return false;
        memcpy(d, e->data, e->len);
    }
    r->ents[r->n_ents++] = (log_ent_t){.term = e->term, .type = e->type, .len = e->len, .data = d};
    r->log_bytes += e->len + ENTRY_OVERHEAD;
    return true;
}

/* Drops in-memory entries with index >= from (from > snap.index). */
static void log_drop_suffix(rn_raft_t *r, uint64_t from) {
    while (last_index(r) >= from) {
        log_ent_t *e = &r->ents[--r->n_ents];
        r->log_bytes -= e->len + ENTRY_OVERHEAD;
        free(e->data);
    }
}

/* Drops in-memory entries with index <= upto (upto > snap.index); caller moves snap. */
static void log_drop_prefix(rn_raft_t *r, uint64_t upto) {
    size_t k = (size_t)(upto - r->snap.index);
    if (k > r->n_ents) k = r->n_ents;
    for (size_t i = 0; i < k; i++) {
        r->log_bytes -= r->ents[i].len + ENTRY_OVERHEAD;
        free(r->ents[i].data);
    }
    if (k && r->ents) memmove(r->ents, r->ents + k, (r->n_ents - k) * sizeof(*r->ents));
    r->n_ents -= k;
}

/* Appends to memory and storage; a CONFIG entry takes effect here. */
static bool append_entries(rn_raft_t *r, const rn_raft_entry_t *es, size_t n) {
    if (n == 0) return true;
    rn_err_t err = r->io.append(r->io.ctx, es, n);
    if (err) {
        fail(r, err, "append");
        return false;
    }
    bool config = false;
    for (size_t i = 0; i < n; i++) {
        RN_ASSERT(es[i].index == last_index(r) + 1);
        if (!log_push(r, &es[i])) {
            fail(r, RN_ERR_NOMEM, "log allocation");
            return false;
        }
        config |= es[i].type == RN_RAFT_ENTRY_CONFIG;
    }
    if (config) update_config(r);
    return true;
}

static bool truncate_from(rn_raft_t *r, uint64_t from) {
    if (from <= r->commit) {
        /* a committed entry never changes: this is a safety bug, not input */
        RN_ERROR("raft", "node %d: refusing to truncate at %llu below commit %llu", r->cfg.node_id,
                 (unsigned long long)from, (unsigned long long)r->commit);
        fail(r, RN_ERR_CORRUPT, "truncate below commit");
        return false;
    }
    rn_err_t err = r->io.truncate(r->io.ctx, from);
    if (err) {
        fail(r, err, "truncate");
        return false;
    }
    log_drop_suffix(r, from);
    if (r->durable >= from) r->durable = from - 1;
    if (r->sync_index >= from) r->sync_index = from - 1;
    if (r->config_index >= from) update_config(r);
    return true;
}

/* ---- snapshots -------------------------------------------------------------- */

/* Every snapshot_entries applied entries, or once applied entries hold half of
 * max_log_bytes (else large entries would fill the log before the count and
 * proposals would be refused for good). */
static void maybe_snapshot(rn_raft_t *r) {
    if (r->failed || r->applied == r->snap.index) return;
    if (r->applied - r->snap.index < r->cfg.snapshot_entries && r->applied_bytes < r->cfg.max_log_bytes / 2) return;
    rn_buf_t b;
    rn_buf_init(&b, r->cfg.max_snapshot_bytes);
    rn_err_t err = r->sm.snapshot_take(r->sm.ctx, r->applied, &b);
    if (!err) err = rn_buf_err(&b);
    if (err) {
        RN_WARN("raft", "node %d: snapshot at %llu failed: %s", r->cfg.node_id,
                (unsigned long long)r->applied, rn_err_name(err));
        rn_buf_free(&b);
        return;
    }
    rn_raft_snap_meta_t meta = {.index = r->applied, .term = rn_raft_term_at(r, r->applied)};
    config_at(r, r->applied, &meta);
    err = r->io.save_snapshot(r->io.ctx, &meta, b.data, b.len, false);
    if (err) {
        fail(r, err, "save_snapshot");
        rn_buf_free(&b);
        return;
    }
    if (!b.data && !(b.data = malloc(1))) {
        fail(r, RN_ERR_NOMEM, "snapshot buffer");
        return;
    }
    log_drop_prefix(r, meta.index);
    r->applied_bytes = 0;
    r->snap = meta;
    free(r->snap_data);
    r->snap_data = b.data; /* ownership moves out of the buffer */
    r->snap_len = b.len;
    if (r->durable < meta.index) r->durable = meta.index;
    if (r->config_index < meta.index) r->config_index = meta.index;
}

/* ---- applying ------------------------------------------------------------- */

static void become_follower(rn_raft_t *r, uint64_t term, int32_t leader);

static void apply_committed(rn_raft_t *r) {
    while (r->applied < r->commit && !r->failed) {
        uint64_t i = r->applied + 1;
        const log_ent_t *e = ent(r, i);
        rn_raft_entry_t x = {.index = i, .term = e->term, .type = e->type, .data = e->data, .len = e->len};
        r->applied = i;
        r->applied_bytes += e->len + ENTRY_OVERHEAD;
        r->sm.apply(r->sm.ctx, &x);
    }
    maybe_snapshot(r);
}

/* ---- leader: replication ---------------------------------------------------- */

static void send_snapshot_chunk(rn_raft_t *r, peer_t *p) {
    if (p->snap_index != r->snap.index) {
        p->snap_index = r->snap.index;
        p->snap_offset = 0;
    }
    uint64_t off = p->snap_offset <= r->snap_len ? p->snap_offset : 0;
    size_t n = r->snap_len - off;
    if (n > r->cfg.max_append_bytes) n = r->cfg.max_append_bytes;
    rn_raft_msg_t m = {.type = RN_RAFT_MSG_SNAPSHOT, .snap = r->snap, .offset = off, .total = r->snap_len,
                       .done = off + n == r->snap_len, .chunk = r->snap_data + off, .chunk_len = (uint32_t)n};
    p->inflight = 1;
    send(r, &m, p->id);
}

static uint32_t max_append_entries(const rn_raft_t *r) {
    return r->cfg.max_append_entries < RN_RAFT_MAX_APPEND_ENTRIES ? r->cfg.max_append_entries
                                                                   : RN_RAFT_MAX_APPEND_ENTRIES;
}

/* Sends entries from p->next (or an empty append at prev = p->next - 1). */
static void send_append(rn_raft_t *r, peer_t *p, bool empty) {
    if (p->next <= r->snap.index) {
        p->mode = PEER_SNAPSHOT;
        send_snapshot_chunk(r, p);
        return;
    }
    uint64_t prev = p->next - 1;
    rn_raft_entry_t es[RN_RAFT_MAX_APPEND_ENTRIES];
    uint32_t n = 0;
    size_t bytes = 0;
    uint32_t max_n = max_append_entries(r);
    for (uint64_t i = p->next; !empty && i <= last_index(r) && n < max_n; i++) {
        const log_ent_t *e = ent(r, i);
        if (n > 0 && bytes + e->len > r->cfg.max_append_bytes) break;
        es[n++] = (rn_raft_entry_t){.index = i, .term = e->term, .type = e->type, .data = e->data, .len = e->len};
        bytes += e->len;
    }
    rn_raft_msg_t m = {.type = RN_RAFT_MSG_APPEND, .index = prev, .log_term = rn_raft_term_at(r, prev),
                       .commit = r->commit, .n_entries = n, .entries = es};
    if (p->mode == PEER_PROBE)
        p->inflight = 1; /* one probe outstanding, entries or not */
    else
        p->next += n;
    send(r, &m, p->id);
}

/* Sends what the peer's mode allows: in REPLICATE a pipeline of at most
 * max_inflight full messages' worth of entries past the match index (counted
 * in entries, not messages: a follower answers several appends with one ack
 * once they are synced); one message otherwise. */
static void replicate_to(rn_raft_t *r, peer_t *p, bool heartbeat) {
    uint64_t window = (uint64_t)r->cfg.max_inflight * max_append_entries(r);
    switch (p->mode) {
    case PEER_REPLICATE:
        while (p->mode == PEER_REPLICATE && p->next <= last_index(r) && p->next - p->match - 1 < window) {
            send_append(r, p, false);
            heartbeat = false;
        }
        if (heartbeat) {
            /* an empty append at the match index: the follower has it */
            uint64_t next = p->next;
            p->next = p->match + 1;
            if (p->next <= r->snap.index) {
                p->mode = PEER_PROBE;
            } else {
                send_append(r, p, true);
                p->next = next;
            }
        }
        if (p->mode != PEER_PROBE) break;
        /* fall through */
    case PEER_PROBE:
        if (p->inflight == 0 || heartbeat) {
            p->inflight = 0;
            send_append(r, p, false);
        }
        break;
    case PEER_SNAPSHOT:
        if (p->inflight == 0 || heartbeat) send_snapshot_chunk(r, p);
        break;
    }
}

static void broadcast(rn_raft_t *r, bool heartbeat) {
    for (uint32_t i = 0; i < r->n_peers && !r->failed; i++) replicate_to(r, &r->peers[i], heartbeat);
}

static int cmp_u64_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void leader_maybe_commit(rn_raft_t *r) {
    uint64_t m[RN_RAFT_MAX_VOTERS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->voters.count; i++) {
        int32_t id = r->voters.ids[i];
        if (id == r->cfg.node_id) {
            m[n++] = r->durable;
        } else {
            peer_t *p = find_peer(r, id);
            m[n++] = p ? p->match : 0;
        }
    }
    qsort(m, n, sizeof(m[0]), cmp_u64_desc);
    uint64_t c = m[quorum(r) - 1];
    /* only an entry of the current term is committed by counting (§5.4.2) */
    if (c > r->commit && rn_raft_term_at(r, c) == r->term) {
        r->commit = c;
        apply_committed(r);
        if (r->failed) return;
        if (!is_voter(r, r->cfg.node_id) && r->commit >= r->config_index) {
            RN_INFO("raft", "node %d: removed from the voter set, stepping down", r->cfg.node_id);
            become_follower(r, r->term, RN_RAFT_NO_NODE);
        }
    }
}

static void become_leader(rn_raft_t *r) {
    RN_DEBUG("raft", "node %d: leader of term %llu", r->cfg.node_id, (unsigned long long)r->term);
    r->role = RN_RAFT_LEADER;
    r->leader = r->cfg.node_id;
    r->transfer_to = RN_RAFT_NO_NODE;
    r->n_peers = 0;
    sync_peers(r);
    int64_t now = now_ms(r);
    r->heartbeat_deadline_ms = now + r->cfg.heartbeat_ms;
    r->quorum_deadline_ms = now + r->cfg.election_timeout_ms;
    rn_raft_entry_t noop = {.index = last_index(r) + 1, .term = r->term, .type = RN_RAFT_ENTRY_NOOP};
    if (!append_entries(r, &noop, 1)) return;
    request_sync(r);
    broadcast(r, false);
    leader_maybe_commit(r);
}

/* ---- elections ------------------------------------------------------------ */

static void become_follower(rn_raft_t *r, uint64_t term, int32_t leader) {
    if (term > r->term) {
        if (!persist_hardstate(r, term, RN_RAFT_NO_NODE)) return;
        r->ack_pending = false;
    }
    if (r->role != RN_RAFT_FOLLOWER || r->leader != leader)
        RN_DEBUG("raft", "node %d: follower in term %llu (leader %d)", r->cfg.node_id,
                 (unsigned long long)r->term, leader);
    r->role = RN_RAFT_FOLLOWER;
    r->leader = leader;
    r->n_peers = 0;
    r->transfer_to = RN_RAFT_NO_NODE;
    reset_election_timer(r);
}

static bool grant(rn_raft_t *r, int32_t id) {
    if (!is_voter(r, id)) return false;
    for (uint32_t i = 0; i < r->n_granted; i++)
        if (r->granted[i] == id) return false;
    r->granted[r->n_granted++] = id;
    return r->n_granted >= quorum(r);
}

static void ask_votes(rn_raft_t *r, uint8_t type, uint64_t term) {
    for (uint32_t i = 0; i < r->voters.count; i++) {
        int32_t id = r->voters.ids[i];
        if (id == r->cfg.node_id) continue;
        rn_raft_msg_t m = {.type = type, .term = term, .index = last_index(r), .log_term = last_term(r)};
        send(r, &m, id);
    }
}

/* Pre-vote (term unchanged, nothing persisted) or a real election (term + 1, vote self). */
static void campaign(rn_raft_t *r, bool pre) {
    if (!pre) {
        if (!persist_hardstate(r, r->term + 1, r->cfg.node_id)) return;
        RN_DEBUG("raft", "node %d: candidate in term %llu", r->cfg.node_id, (unsigned long long)r->term);
        r->ack_pending = false;
    }
    r->role = pre ? RN_RAFT_PRECANDIDATE : RN_RAFT_CANDIDATE;
    r->leader = RN_RAFT_NO_NODE;
    r->n_granted = 0;
    reset_election_timer(r);
    if (grant(r, r->cfg.node_id)) {
        if (pre)
            campaign(r, false);
        else
            become_leader(r);
        return;
    }
    ask_votes(r, pre ? RN_RAFT_MSG_PREVOTE : RN_RAFT_MSG_VOTE, pre ? r->term + 1 : r->term);
}

static bool log_up_to_date(const rn_raft_t *r, const rn_raft_msg_t *m) {
    uint64_t lt = last_term(r);
    return m->log_term > lt || (m->log_term == lt && m->index >= last_index(r));
}

static void on_prevote(rn_raft_t *r, const rn_raft_msg_t *m) {
    /* a node that hears from a leader does not help unseat it (thesis §9.6) */
    bool leader_alive = r->role == RN_RAFT_LEADER ||
                        (r->leader != RN_RAFT_NO_NODE &&
                         now_ms(r) - r->leader_contact_ms < (int64_t)r->cfg.election_timeout_ms);
    bool ok = m->term > r->term && !leader_alive && log_up_to_date(r, m);
    rn_raft_msg_t resp = {.type = RN_RAFT_MSG_PREVOTE_RESP, .term = ok ? m->term : r->term, .granted = ok};
    send(r, &resp, m->from);
}

static void on_vote(rn_raft_t *r, const rn_raft_msg_t *m) {
    bool ok = (r->vote == RN_RAFT_NO_NODE || r->vote == m->from) && r->role != RN_RAFT_LEADER &&
              log_up_to_date(r, m);
    if (ok && r->vote != m->from) {
        if (!persist_hardstate(r, r->term, m->from)) return;
    }
    if (ok) {
        r->role = RN_RAFT_FOLLOWER;
        reset_election_timer(r);
    }
    rn_raft_msg_t resp = {.type = RN_RAFT_MSG_VOTE_RESP, .granted = ok};
    send(r, &resp, m->from);
}

/* ---- follower: append and snapshot ------------------------------------------- */

static void send_ack(rn_raft_t *r) {
    if (!r->ack_pending || r->ack_term != r->term || r->durable < r->ack_index) return;
    r->ack_pending = false;
    rn_raft_msg_t resp = {.type = RN_RAFT_MSG_APPEND_RESP, .granted = true, .index = r->ack_index};
    send(r, &resp, r->ack_to);
}

static void reject_append(rn_raft_t *r, const rn_raft_msg_t *m) {
    rn_raft_msg_t resp = {.type = RN_RAFT_MSG_APPEND_RESP, .granted = false};
    uint64_t prev = m->index;
    if (prev > last_index(r)) {
        resp.index = last_index(r) + 1;
    } else {
        uint64_t ct = rn_raft_term_at(r, prev);
        uint64_t f = prev;
        while (f > r->snap.index + 1 && rn_raft_term_at(r, f - 1) == ct) f--;
        resp.index = f ? f : 1;
        resp.log_term = ct;
    }
    send(r, &resp, m->from);
}

static void heard_leader(rn_raft_t *r, const rn_raft_msg_t *m) {
    if (r->role != RN_RAFT_FOLLOWER || r->leader != m->from) become_follower(r, r->term, m->from);
    r->leader_contact_ms = now_ms(r);
    reset_election_timer(r);
}

static void on_append(rn_raft_t *r, const rn_raft_msg_t *m) {
    if (r->role == RN_RAFT_LEADER) {
        RN_WARN("raft", "node %d: append from %d in my own term %llu ignored", r->cfg.node_id, m->from,
                (unsigned long long)r->term);
        return;
    }
    heard_leader(r, m);
    if (r->failed) return;
    uint64_t prev = m->index;
    const rn_raft_entry_t *es = m->entries;
    uint32_t n = m->n_entries;
    if (prev < r->snap.index) {
        /* entries up to the snapshot are committed here already: skip them */
        uint64_t skip = r->snap.index - prev;
        if (skip > n) skip = n;
        es += skip;
        n -= (uint32_t)skip;
        prev = r->snap.index;
    } else if (prev > last_index(r) || rn_raft_term_at(r, prev) != m->log_term) {
        reject_append(r, m);
        return;
    }
    uint64_t match = prev;
    for (uint32_t i = 0; i < n; i++) {
        const rn_raft_entry_t *e = &es[i];
        if (e->len > r->cfg.max_entry_bytes || e->term > r->term || e->index != prev + 1 + i) {
            RN_WARN("raft", "node %d: bad entry %llu from %d", r->cfg.node_id, (unsigned long long)e->index, m->from);
            break;
        }
        if (e->index <= last_index(r)) {
            if (rn_raft_term_at(r, e->index) == e->term) {
                match = e->index;
                continue;
            }
            if (!truncate_from(r, e->index)) return;
        }
        if (r->log_bytes + e->len > 2 * r->cfg.max_log_bytes) break; /* full until a snapshot */
        if (!append_entries(r, e, 1)) return;
        match = e->index;
    }
    request_sync(r);
    uint64_t c = m->commit < match ? m->commit : match;
    if (c > r->commit) {
        r->commit = c;
        apply_committed(r);
    }
    if (r->ack_pending && r->ack_term == r->term && r->ack_to == m->from && r->ack_index > match) match = r->ack_index;
    r->ack_pending = true;
    r->ack_to = m->from;
    r->ack_term = r->term;
    r->ack_index = match;
    send_ack(r);
}

static void install_snapshot(rn_raft_t *r) {
    rn_raft_snap_meta_t meta = r->rx_meta;
    bool keep = meta.index <= last_index(r) && rn_raft_term_at(r, meta.index) == meta.term;
    rn_err_t err = r->io.save_snapshot(r->io.ctx, &meta, r->rx_data, r->rx_len, !keep);
    if (err) {
        fail(r, err, "save_snapshot");
        return;
    }
    err = r->sm.snapshot_load(r->sm.ctx, &meta, r->rx_data, r->rx_len);
    if (err) {
        fail(r, err, "snapshot_load");
        return;
    }
    if (keep) {
        log_drop_prefix(r, meta.index);
    } else {
        log_drop_prefix(r, last_index(r));
        r->n_ents = 0;
    }
    r->snap = meta;
    free(r->snap_data);
    r->snap_data = r->rx_data;
    r->snap_len = r->rx_len;
    r->rx_data = NULL;
    r->rx_len = r->rx_total = 0;
    r->commit = r->commit > meta.index ? r->commit : meta.index;
    r->applied = meta.index > r->applied ? meta.index : r->applied;
    r->applied_bytes = 0;
    if (r->durable < meta.index || !keep) r->durable = meta.index;
    if (r->sync_index < meta.index || !keep) r->sync_index = meta.index;
    update_config(r);
    apply_committed(r);
}

static void on_snapshot(rn_raft_t *r, const rn_raft_msg_t *m) {
    if (r->role == RN_RAFT_LEADER) return;
    heard_leader(r, m);
    if (r->failed) return;
    rn_raft_msg_t resp = {.type = RN_RAFT_MSG_SNAPSHOT_RESP, .snap = m->snap};
    if (!rn_raft_members_valid(&m->snap.voters, &m->snap.learners) || m->snap.term > r->term || m->snap.term == 0) {
        RN_WARN("raft", "node %d: malformed snapshot from %d ignored", r->cfg.node_id, m->from);
        return;
    }
    if (m->snap.index <= r->commit) {
        resp.granted = true; /* already have everything it covers */
        resp.snap.index = m->snap.index;
        send(r, &resp, m->from);
        return;
    }
    bool same = r->rx_data && r->rx_meta.index == m->snap.index && r->rx_meta.term == m->snap.term &&
                r->rx_total == m->total;
    if (m->offset == 0 && !same) {
        if (m->total > r->cfg.max_snapshot_bytes) {
            RN_WARN("raft", "node %d: snapshot of %llu bytes is over the limit", r->cfg.node_id,
                    (unsigned long long)m->total);
            send(r, &resp, m->from);
            return;
        }
        free(r->rx_data);
        r->rx_data = malloc(m->total ? m->total : 1);
        if (!r->rx_data) {
            fail(r, RN_ERR_NOMEM, "snapshot buffer");
            return;
        }
        r->rx_meta = m->snap;
        r->rx_total = m->total;
        r->rx_len = 0;
        same = true;
    }
    if (same && m->offset == r->rx_len) {
        if (m->chunk_len) memcpy(r->rx_data + r->rx_len, m->chunk, m->chunk_len);
        r->rx_len += m->chunk_len;
        if (m->done && r->rx_len == r->rx_total) {
            install_snapshot(r);
            if (r->failed) return;
            resp.granted = true;
        }
    }
    resp.offset = same ? r->rx_len : 0;
    send(r, &resp, m->from);
}

/* ---- leader: responses -------------------------------------------------------- */

/* Leadership transfer: once the target holds the whole log, tell it to campaign. */
static void maybe_timeout_now(rn_raft_t *r, peer_t *p) {
    if (r->role != RN_RAFT_LEADER || p->id != r->transfer_to || r->transfer_sent || p->match < last_index(r)) return;
    r->transfer_sent = true;
    rn_raft_msg_t m = {.type = RN_RAFT_MSG_TIMEOUT_NOW};
    send(r, &m, p->id);
}

static void on_append_resp(rn_raft_t *r, const rn_raft_msg_t *m) {
    peer_t *p = find_peer(r, m->from);
    if (r->role != RN_RAFT_LEADER || !p) return;
    p->last_resp_ms = now_ms(r);
    if (p->mode == PEER_PROBE) p->inflight = 0; /* the probe was answered */
    if (m->granted) {
        if (m->index > last_index(r)) return; /* cannot be ours */
        if (m->index > p->match) {
            p->match = m->index;
            p->progress_ms = p->last_resp_ms;
        }
        if (p->mode == PEER_PROBE) {
            p->progress_ms = p->last_resp_ms;
            /* the probe found where the logs agree: pipeline from there */
            p->mode = PEER_REPLICATE;
            p->next = p->match + 1;
        }
        if (p->next <= p->match) p->next = p->match + 1;
        leader_maybe_commit(r);
        maybe_timeout_now(r, p);
    } else {
        if (m->index <= p->match && p->mode == PEER_REPLICATE) return; /* stale */
        uint64_t next = m->index;
        if (m->log_term) {
            for (uint64_t i = m->index; i > r->snap.index && i <= last_index(r); i++) {
                if (rn_raft_term_at(r, i) != m->log_term) break;
                next = i + 1;
            }
        }
        if (next > last_index(r) + 1) next = last_index(r) + 1;
        if (next <= p->match) next = p->match + 1;
        if (next == 0) next = 1;
        p->next = next;
        p->mode = PEER_PROBE;
        p->inflight = 0;
    }
    if (!r->failed && r->role == RN_RAFT_LEADER) replicate_to(r, p, false);
}

static void on_snapshot_resp(rn_raft_t *r, const rn_raft_msg_t *m) {
    peer_t *p = find_peer(r, m->from);
    if (r->role != RN_RAFT_LEADER || !p) return;
    p->last_resp_ms = now_ms(r);
    if (p->mode != PEER_SNAPSHOT) return;
    p->inflight = 0;
    if (m->granted) {
        if (m->snap.index > p->match && m->snap.index <= last_index(r)) p->match = m->snap.index;
        p->next = p->match + 1;
        p->mode = PEER_PROBE;
        leader_maybe_commit(r);
    } else if (m->snap.index == p->snap_index) {
        p->snap_offset = m->offset;
    }
    if (!r->failed && r->role == RN_RAFT_LEADER) replicate_to(r, p, false);
}

/* ---- events -------------------------------------------------------------------- */

static void notify_role(rn_raft_t *r) {
    if (r->role == r->n_role && r->term == r->n_term && r->leader == r->n_leader) return;
    r->n_role = r->role;
    r->n_term = r->term;
    r->n_leader = r->leader;
    if (r->sm.role_change) r->sm.role_change(r->sm.ctx, r->role, r->term, r->leader);
}

static void handle_synced(rn_raft_t *r, uint64_t ticket) {
    if (!r->sync_inflight || ticket != r->sync_ticket) return;
    r->sync_inflight = false;
    if (r->sync_index > r->durable) r->durable = r->sync_index;
    if (r->role == RN_RAFT_LEADER)
        leader_maybe_commit(r);
    else
        send_ack(r);
    request_sync(r);
}

static bool enter(rn_raft_t *r) {
    if (r->failed) return false;
    r->depth++;
    return true;
}

static void leave(rn_raft_t *r) {
    if (r->depth == 1) {
        while (r->deferred_ticket && !r->failed) {
            uint64_t t = r->deferred_ticket;
            r->deferred_ticket = 0;
            handle_synced(r, t);
        }
        if (!r->failed) {
            notify_role(r);
            assert_raft_state(r);
        }
    }
    r->depth--;
}

void rn_raft_synced(rn_raft_t *r, uint64_t ticket) {
    if (r->depth > 0) {
        r->deferred_ticket = ticket;
        return;
    }
    if (!enter(r)) return;
    handle_synced(r, ticket);
    leave(r);
}

void rn_raft_tick(rn_raft_t *r) {
    if (!enter(r)) return;
    int64_t now = now_ms(r);
    if (r->role == RN_RAFT_LEADER) {
        if (r->transfer_to != RN_RAFT_NO_NODE && now >= r->transfer_deadline_ms) {
            RN_INFO("raft", "node %d: leadership transfer to %d gave up", r->cfg.node_id, r->transfer_to);
            r->transfer_to = RN_RAFT_NO_NODE;
        }
        if (now >= r->quorum_deadline_ms) {
            uint32_t alive = is_voter(r, r->cfg.node_id) ? 1 : 0;
            for (uint32_t i = 0; i < r->n_peers; i++)
                if (is_voter(r, r->peers[i].id) && now - r->peers[i].last_resp_ms < (int64_t)r->cfg.election_timeout_ms)
                    alive++;
            if (alive < quorum(r)) {
                RN_DEBUG("raft", "node %d: no quorum heard within the election timeout", r->cfg.node_id);
                become_follower(r, r->term, RN_RAFT_NO_NODE);
                leave(r);
                return;
            }
            r->quorum_deadline_ms = now + r->cfg.election_timeout_ms;
        }
        if (now >= r->heartbeat_deadline_ms) {
            r->heartbeat_deadline_ms = now + r->cfg.heartbeat_ms;
            for (uint32_t i = 0; i < r->n_peers; i++) {
                peer_t *p = &r->peers[i];
                /* sent entries unacknowledged for two heartbeats: lost, probe again */
                if (p->mode == PEER_REPLICATE && p->next > p->match + 1 &&
                    now - p->progress_ms >= 2 * (int64_t)r->cfg.heartbeat_ms) {
                    p->mode = PEER_PROBE;
                    p->next = p->match + 1;
                }
            }
            broadcast(r, true);
        }
    } else if (now >= r->election_deadline_ms) {
        /* a node its uncommitted config removes may still be needed to commit
         * that config (the voters it names may lack it): it campaigns while it
         * is a voter of the committed config, counting votes of the new one */
        rn_raft_snap_meta_t committed;
        config_at(r, r->commit, &committed);
        if (is_voter(r, r->cfg.node_id) || rn_raft_voters_has(&committed.voters, r->cfg.node_id))
            campaign(r, true);
        else
            reset_election_timer(r);
    }
    leave(r);
}

void rn_raft_step(rn_raft_t *r, const rn_raft_msg_t *m) {
    if (!enter(r)) return;
    if (m->to != r->cfg.node_id || m->from == r->cfg.node_id) goto out;
    if (m->term > r->term) {
        bool keep_term = m->type == RN_RAFT_MSG_PREVOTE || (m->type == RN_RAFT_MSG_PREVOTE_RESP && m->granted);
        if (!keep_term) {
            bool from_leader = m->type == RN_RAFT_MSG_APPEND || m->type == RN_RAFT_MSG_SNAPSHOT;
            become_follower(r, m->term, from_leader ? m->from : RN_RAFT_NO_NODE);
            if (r->failed) goto out;
        }
    } else if (m->term < r->term) {
        /* tell a stale leader or candidate about the newer term */
        rn_raft_msg_t resp = {.term = r->term};
        switch (m->type) {
        case RN_RAFT_MSG_APPEND: resp.type = RN_RAFT_MSG_APPEND_RESP; break;
        case RN_RAFT_MSG_SNAPSHOT: resp.type = RN_RAFT_MSG_SNAPSHOT_RESP; break;
        case RN_RAFT_MSG_PREVOTE: resp.type = RN_RAFT_MSG_PREVOTE_RESP; break;
        case RN_RAFT_MSG_VOTE: resp.type = RN_RAFT_MSG_VOTE_RESP; break;
        default: goto out;
        }
        send(r, &resp, m->from);
        goto out;
    }
    switch (m->type) {
    case RN_RAFT_MSG_PREVOTE: on_prevote(r, m); break;
    case RN_RAFT_MSG_PREVOTE_RESP:
        if (r->role == RN_RAFT_PRECANDIDATE && m->granted && m->term == r->term + 1 && grant(r, m->from))
            campaign(r, false);
        break;
    case RN_RAFT_MSG_VOTE: on_vote(r, m); break;
    case RN_RAFT_MSG_VOTE_RESP:
        if (r->role == RN_RAFT_CANDIDATE && m->granted && grant(r, m->from)) become_leader(r);
        break;
    case RN_RAFT_MSG_APPEND: on_append(r, m); break;
    case RN_RAFT_MSG_APPEND_RESP: on_append_resp(r, m); break;
    case RN_RAFT_MSG_SNAPSHOT: on_snapshot(r, m); break;
    case RN_RAFT_MSG_SNAPSHOT_RESP: on_snapshot_resp(r, m); break;
    case RN_RAFT_MSG_TIMEOUT_NOW:
        /* from the leader of this term: campaign without waiting or pre-voting */
        if (r->role == RN_RAFT_FOLLOWER && r->leader == m->from && is_voter(r, r->cfg.node_id)) {
            RN_INFO("raft", "node %d: leadership handed over by %d", r->cfg.node_id, m->from);
            campaign(r, false);
        }
        break;
    default: break;
    }
out:
    leave(r);
}

static rn_err_t leader_append(rn_raft_t *r, uint8_t type, const void *data, size_t len, uint64_t *index) {
    if (len > r->cfg.max_entry_bytes) return RN_ERR_LIMIT;
    if (r->log_bytes + len + ENTRY_OVERHEAD > r->cfg.max_log_bytes) return RN_ERR_LIMIT;
    rn_raft_entry_t e = {.index = last_index(r) + 1, .term = r->term, .type = type, .data = data,
                         .len = (uint32_t)len};
    if (!append_entries(r, &e, 1)) return r->failed;
    if (index) *index = e.index;
    request_sync(r);
    broadcast(r, false);
    leader_maybe_commit(r); /* a one-voter quorum */
    return RN_OK;
}

rn_err_t rn_raft_propose(rn_raft_t *r, const void *data, size_t len, uint64_t *index, int32_t *leader_hint) {
    if (leader_hint) *leader_hint = r->leader;
    if (r->failed) return r->failed;
    if (r->role != RN_RAFT_LEADER) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    if (r->transfer_to != RN_RAFT_NO_NODE) {
        if (leader_hint) *leader_hint = r->transfer_to;
        return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    }
    enter(r);
    rn_err_t err = leader_append(r, RN_RAFT_ENTRY_DATA, data, len, index);
    leave(r);
    return err;
}

rn_err_t rn_raft_transfer_leadership(rn_raft_t *r, int32_t id) {
    if (r->failed) return r->failed;
    if (r->role != RN_RAFT_LEADER) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    if (id == r->cfg.node_id) return RN_OK;
    peer_t *p = find_peer(r, id);
    if (!p || !is_voter(r, id)) return RN_ERR_INVALID_ARG;
    enter(r);
    r->transfer_to = id;
    r->transfer_sent = false;
    r->transfer_deadline_ms = now_ms(r) + r->cfg.election_timeout_ms;
    maybe_timeout_now(r, p);
    if (!r->transfer_sent) replicate_to(r, p, false);
    leave(r);
    return RN_OK;
}

static void set_without(rn_raft_voters_t *out, const rn_raft_voters_t *in, int32_t id) {
    out->count = 0;
    for (uint32_t i = 0; i < in->count; i++)
        if (in->ids[i] != id) out->ids[out->count++] = in->ids[i];
}

/* Appends a CONFIG entry that puts id among the voters, the learners, or neither. */
static rn_err_t change_member(rn_raft_t *r, int32_t id, bool voter, bool learner, uint64_t *index) {
    if (r->failed) return r->failed;
    if (r->role != RN_RAFT_LEADER) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    if (id < 0) return RN_ERR_INVALID_ARG;
    /* one change at a time, and only once this leader committed in its term */
    if (r->config_index > r->commit || rn_raft_term_at(r, r->commit) != r->term) return RN_ERR_AGAIN;
    rn_raft_voters_t v, l;
    set_without(&v, &r->voters, id);
    set_without(&l, &r->learners, id);
    rn_raft_voters_t *to = voter ? &v : learner ? &l : NULL;
    if (to) {
        if (to->count == RN_RAFT_MAX_VOTERS) return RN_ERR_LIMIT;
        to->ids[to->count++] = id;
    }
    if (!rn_raft_members_valid(&v, &l)) return RN_ERR_INVALID_ARG;
    rn_buf_t b;
    rn_buf_init(&b, 8 + 8 * RN_RAFT_MAX_VOTERS);
    rn_err_t err = rn_raft_config_encode(&v, &l, &b);
    if (!err) {
        enter(r);
        err = leader_append(r, RN_RAFT_ENTRY_CONFIG, b.data, b.len, index);
        leave(r);
    }
    rn_buf_free(&b);
    return err;
}

rn_err_t rn_raft_change_voter(rn_raft_t *r, int32_t id, bool add, uint64_t *index) {
    if (add == is_voter(r, id)) return RN_ERR_INVALID_ARG;
    return change_member(r, id, add, false, index);
}

rn_err_t rn_raft_change_learner(rn_raft_t *r, int32_t id, bool add, uint64_t *index) {
    if (is_voter(r, id) || add == rn_raft_voters_has(&r->learners, id)) return RN_ERR_INVALID_ARG;
    return change_member(r, id, false, add, index);
}

rn_err_t rn_raft_demote_voter(rn_raft_t *r, int32_t id, uint64_t *index) {
    if (!is_voter(r, id)) return RN_ERR_INVALID_ARG;
    return change_member(r, id, false, true, index);
}

/* ---- construction --------------------------------------------------------------- */

void rn_raft_config_defaults(rn_raft_config_t *c) {
    memset(c, 0, sizeof(*c));
    c->node_id = 1;
    c->initial_voters = (rn_raft_voters_t){.count = 1, .ids = {1}};
    c->election_timeout_ms = 1000;
    c->heartbeat_ms = 100;
    c->max_entry_bytes = 1 << 20;
    c->max_append_bytes = 1 << 20;
    c->max_append_entries = 64;
    c->max_inflight = 8;
    c->max_log_bytes = 64u << 20;
    c->snapshot_entries = 20000;
    c->max_snapshot_bytes = 256u << 20;
}

rn_raft_msg_limits_t rn_raft_msg_limits(const rn_raft_config_t *c) {
    uint32_t chunk = c->max_append_bytes > c->max_entry_bytes ? c->max_append_bytes : c->max_entry_bytes;
    /* the hard cap, not this node's max_append_entries: peers may be configured otherwise */
    return (rn_raft_msg_limits_t){.max_entries = RN_RAFT_MAX_APPEND_ENTRIES, .max_entry_bytes = chunk};
}


rn_err_t rn_raft_new(const rn_raft_config_t *cfg, const rn_raft_io_t *io, const rn_raft_sm_t *sm,
                     const rn_raft_boot_t *boot, rn_raft_t **out) {
    if (cfg->node_id < 0 || !rn_raft_members_valid(&cfg->initial_voters, &cfg->initial_learners) || cfg->election_timeout_ms == 0 ||
        cfg->heartbeat_ms == 0 || cfg->max_inflight == 0 || cfg->max_append_entries == 0 ||
        cfg->max_append_bytes == 0 || cfg->snapshot_entries == 0)
        return RN_ERR_INVALID_ARG;
    rn_raft_t *r = calloc(1, sizeof(*r));
    if (!r) return RN_ERR_NOMEM;
    r->cfg = *cfg;
    r->io = *io;
    r->sm = *sm;
    r->term = boot->term;
    r->vote = boot->vote;
    r->leader = r->n_leader = RN_RAFT_NO_NODE;
    r->transfer_to = RN_RAFT_NO_NODE;
    r->snap.voters = cfg->initial_voters;
    r->snap.learners = cfg->initial_learners;
    rn_err_t err = RN_OK;
    if (boot->has_snapshot) {
        if (!rn_raft_members_valid(&boot->snap.voters, &boot->snap.learners) ||
            boot->snap_len > cfg->max_snapshot_bytes) {
            err = RN_ERR_CORRUPT;
            goto fail;
        }
        r->snap = boot->snap;
        r->snap_data = malloc(boot->snap_len ? boot->snap_len : 1);
        if (!r->snap_data) {
            err = RN_ERR_NOMEM;
            goto fail;
        }
        if (boot->snap_len) memcpy(r->snap_data, boot->snap_data, boot->snap_len);
        r->snap_len = boot->snap_len;
        err = sm->snapshot_load(sm->ctx, &r->snap, r->snap_data, r->snap_len);
        if (err) goto fail;
        r->commit = r->applied = r->snap.index;
    }
    for (size_t i = 0; i < boot->n_entries; i++) {
        const rn_raft_entry_t *e = &boot->entries[i];
        if (e->index <= r->snap.index) continue;
        if (e->index != last_index(r) + 1 || e->term > r->term || e->term < last_term(r)) {
            err = RN_ERR_CORRUPT;
            goto fail;
        }
        if (!log_push(r, e)) {
            err = RN_ERR_NOMEM;
            goto fail;
        }
    }
    r->durable = r->sync_index = last_index(r); /* what storage loaded is on disk */
    update_config(r);
    r->role = r->n_role = RN_RAFT_FOLLOWER;
    r->n_term = r->term;
    reset_election_timer(r);
    *out = r;
    return RN_OK;
fail:
    rn_raft_free(r);
    return err;
}

void rn_raft_free(rn_raft_t *r) {
    if (!r) return;
    log_drop_suffix(r, r->snap.index + 1);
    free(r->ents);
    free(r->snap_data);
    free(r->rx_data);
    free(r);
}

/* ---- state ---------------------------------------------------------------------- */

rn_raft_role_t rn_raft_role(const rn_raft_t *r) { return r->role; }
uint64_t rn_raft_term(const rn_raft_t *r) { return r->term; }
int32_t rn_raft_leader(const rn_raft_t *r) { return r->leader; }
int32_t rn_raft_node_id(const rn_raft_t *r) { return r->cfg.node_id; }
uint64_t rn_raft_commit_index(const rn_raft_t *r) { return r->commit; }
uint64_t rn_raft_applied_index(const rn_raft_t *r) { return r->applied; }
uint64_t rn_raft_last_index(const rn_raft_t *r) { return last_index(r); }
uint64_t rn_raft_durable_index(const rn_raft_t *r) { return r->durable; }
const rn_raft_snap_meta_t *rn_raft_snapshot_meta(const rn_raft_t *r) { return &r->snap; }
const rn_raft_voters_t *rn_raft_voters(const rn_raft_t *r) { return &r->voters; }
const rn_raft_voters_t *rn_raft_learners(const rn_raft_t *r) { return &r->learners; }
rn_err_t rn_raft_failed(const rn_raft_t *r) { return r->failed; }

bool rn_raft_peer_progress(const rn_raft_t *r, int32_t id, uint64_t *match, int64_t *last_resp_ms) {
    if (r->role != RN_RAFT_LEADER) return false;
    for (uint32_t i = 0; i < r->n_peers; i++) {
        if (r->peers[i].id != id) continue;
        *match = r->peers[i].match;
        *last_resp_ms = r->peers[i].last_resp_ms;
        return true;
    }
    return false;
}

bool rn_raft_entry_at(const rn_raft_t *r, uint64_t index, rn_raft_entry_t *out) {
    if (index <= r->snap.index || index > last_index(r)) return false;
    const log_ent_t *e = ent(r, index);
    *out = (rn_raft_entry_t){.index = index, .term = e->term, .type = e->type, .data = e->data, .len = e->len};
    return true;
}

const char *rn_raft_role_name(rn_raft_role_t role) {
    switch (role) {
    case RN_RAFT_FOLLOWER: return "follower";
    case RN_RAFT_PRECANDIDATE: return "precandidate";
    case RN_RAFT_CANDIDATE: return "candidate";
    case RN_RAFT_LEADER: return "leader";
    }
    return "?";
}
