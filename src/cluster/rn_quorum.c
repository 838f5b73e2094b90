/*
 * rn_quorum.c — a Raft node's runtime: store, peers, driver thread and
 * blocking proposals; the member thread that changes the voter set and joins
 * a quorum (see rn_quorum.h).
 *
 * The quorum's own entries and snapshot header (big-endian; str = u16 length + bytes):
 *
 *   address record   "\0RNQADDR" (8 bytes) | u8 version (1) | str cluster id |
 *                    u16 n | n × (i32 id | str host | u16 port)
 *                    a DATA entry; the metadata records never begin with a zero
 *                    byte (each entry starts with a record's non-zero length)
 *   snapshot         "\0RNQSNAP" | u32 length | an address record | the state
 *                    machine's snapshot (one without the header is all state machine's)
 *
 * Every record carries the whole address book; a node merges it (later
 * addresses replace earlier ones) as soon as the entry is appended — before it
 * commits, like Raft's configuration entries — so a restarted node can reach
 * the other members before anything commits. The static voters' addresses are
 * merged first.
 *
 * Join messages (internal API RN_API_RUNNEL_QUORUM_JOIN):
 *
 *   request          i16 version (0) | i32 node id | str host | u16 port | str cluster id
 *   answer           i16 error | i32 leader | str leader host | u16 leader port |
 *                    u16 nvoters × i32 | u16 nlearners × i32 | u32 length | address record
 *
 * Member changes (rn_quorum_change) run one at a time on the member thread:
 * adding a learner records its address first (an address record, committed)
 * and then appends the configuration; promoting one waits until its match
 * index reaches the commit index; a leader asked to remove itself hands its
 * leadership to another voter and answers NOT_LEADER_OR_FOLLOWER (the caller
 * asks the new leader).
 */
#include "rn_quorum.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_client.h"
#include "rn_clock.h"
#include "rn_cond.h"
#include "rn_logging.h"
#include "rn_peers.h"
#include "rn_raft_store.h"

#define TICK_MS 10
#define INBOX_MAX 8192
#define ADDR_MAGIC "\0RNQADDR"
#define SNAP_MAGIC "\0RNQSNAP"
#define MAGIC_LEN 8
#define JOIN_WAIT_MS 30000    /* a new node waits this long for a first answer */
#define JOIN_RETRY_MS 500
#define CHANGE_AGAIN_MS 3000  /* a change Raft refuses for now (previous one uncommitted) is retried this long */
#define CHANGE_WAIT_MS 10000  /* waiting for a change (or an address record) to be applied */

typedef struct inmsg {
    struct inmsg *next;
    size_t len;
    uint8_t data[];
} inmsg_t;

enum { P_QUEUED, P_PROPOSED, P_DONE };
enum { OP_DATA, OP_VOTER_ADD, OP_VOTER_REMOVE, OP_VOTER_DEMOTE, OP_LEARNER_ADD, OP_LEARNER_REMOVE };

typedef struct prop {
    struct prop *next;
    int state;
    int op;     /* OP_DATA: data[0..len) is proposed; else a member change of `member` */
    int32_t member;
    bool abandoned; /* the caller timed out: the driver frees it when done */
    uint64_t index, term;
    rn_err_t err;
    int32_t leader_hint;
    size_t len;
    uint8_t data[];
} prop_t;

struct rn_quorum {
    rn_quorum_config_t cfg;
    rn_raft_t *raft;
    rn_raft_store_t *store;
    rn_peers_t *peers;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    inmsg_t *inbox_head, *inbox_tail;
    int32_t inbox_count;
    prop_t *props;
    bool stopping;
    uint64_t pending_sync; /* a sync Raft asked for while it was being created */
    bool transfer_requested; /* rn_quorum_transfer_leadership: the driver hands leadership on */
    rn_raft_msg_limits_t limits;
    uint32_t election_ms;
    rn_raft_entry_t *ents;
    rn_buf_t sendbuf;
    uint64_t rng;
    /* Under lock: the address book, the cluster id, the status the driver publishes. */
    int32_t nbook;
    rn_quorum_voter_t book[RN_QUORUM_MEMBERS_MAX];
    char cluster_id[64];
    rn_quorum_status_t st;
    int32_t cu_ids[RN_QUORUM_MEMBERS_MAX]; /* driver: when each member was last caught up */
    int64_t cu_ms[RN_QUORUM_MEMBERS_MAX];
    /* The member thread: one change at a time (under lock). */
    pthread_t mthread;
    bool mthread_started;
    struct change *change;
    bool changes_stopping; /* rn_quorum_stop_changes: waits end, no new change */
    rn_client_t *join_client; /* member thread; interrupted at stop */
    atomic_int join_hint;     /* the leader the last join answer named */
    /* Read by other threads. */
    atomic_int leader;
    atomic_bool is_leader;
    _Atomic uint64_t applied, term;
};

static rn_err_t submit(rn_quorum_t *q, int op, int32_t member, const void *data, size_t len, int64_t timeout_ms,
                       uint64_t *index, int32_t *leader_hint);

rn_err_t rn_quorum_parse_voters(const char *s, rn_quorum_config_t *cfg, char *err, size_t errlen) {
    cfg->nvoters = 0;
    const char *p = s;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[300];
        if (n == 0 || n >= sizeof(item) || cfg->nvoters == RN_RAFT_MAX_VOTERS) goto bad;
        memcpy(item, p, n);
        item[n] = 0;
        char *at = strchr(item, '@'), *colon = strrchr(item, ':'), *e;
        if (!at || !colon || colon < at) goto bad;
        long id = strtol(item, &e, 10);
        if (e != at || id < 0 || id > INT32_MAX) goto bad;
        long port = strtol(colon + 1, &e, 10);
        if (*e || port <= 0 || port > 65535 || colon == at + 1) goto bad;
        rn_quorum_voter_t *v = &cfg->voters[cfg->nvoters++];
        v->id = (int32_t)id;
        v->port = (int)port;
        const char *h = at + 1;
        int hl = (int)(colon - h);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [IPv6] */
            h++;
            hl -= 2;
        }
        snprintf(v->host, sizeof(v->host), "%.*s", hl, h);
        for (int32_t i = 0; i + 1 < cfg->nvoters; i++)
            if (cfg->voters[i].id == v->id) goto bad;
        if (end && end[1] == 0) goto bad; /* trailing comma */
        p = end ? end + 1 : NULL;
    }
    if (cfg->nvoters > 0) return RN_OK;
bad:
    snprintf(err, errlen, "controller.quorum.voters: '%s' is not a list of id@host:port (at most %d, ids distinct)",
             s ? s : "", RN_RAFT_MAX_VOTERS);
    return RN_ERR_INVALID_CONFIG;
}

/* ---- the address book and address records ------------------------------------ */

/* Merges one address (q->lock held). */
static void book_put_locked(rn_quorum_t *q, int32_t id, const char *host, int port) {
    if (id < 0 || !host[0] || port <= 0 || port > 65535) return;
    int32_t i = 0;
    while (i < q->nbook && q->book[i].id != id) i++;
    if (i == q->nbook) {
        if (q->nbook == RN_QUORUM_MEMBERS_MAX) return; /* bounded: more members than Raft allows */
        q->nbook++;
    }
    q->book[i].id = id;
    q->book[i].port = port;
    snprintf(q->book[i].host, sizeof(q->book[i].host), "%s", host);
    if (q->peers) rn_peers_set(q->peers, id, host, port); /* its own id: ignored */
}

static bool book_get_locked(const rn_quorum_t *q, int32_t id, char *host, size_t hostlen, int *port) {
    for (int32_t i = 0; i < q->nbook; i++) {
        if (q->book[i].id != id) continue;
        snprintf(host, hostlen, "%s", q->book[i].host);
        *port = q->book[i].port;
        return true;
    }
    return false;
}

/* A bounded string: 1..cap-1 bytes without NUL (empty allowed with allow_empty). */
static bool take_str(rn_reader_t *rd, char *out, size_t cap, bool allow_empty) {
    rn_str_t v = rn_reader_str(rd, false);
    if (rn_reader_err(rd) || v.len < 0 || (size_t)v.len >= cap || (v.len == 0 && !allow_empty) ||
        (v.len && memchr(v.ptr, 0, (size_t)v.len))) {
        rn_reader_fail(rd, RN_ERR_MALFORMED);
        out[0] = 0;
        return false;
    }
    memcpy(out, v.ptr, (size_t)v.len);
    out[v.len] = 0;
    return true;
}

void rn_quorum_addrs_encode(const rn_quorum_addrs_t *a, rn_buf_t *out) {
    rn_buf_put(out, ADDR_MAGIC, MAGIC_LEN);
    rn_buf_put_i8(out, 1);
    rn_buf_put_str(out, rn_str_from_cstr(a->cluster_id), false);
    rn_buf_put_u16(out, (uint16_t)a->n);
    for (int32_t i = 0; i < a->n; i++) {
        rn_buf_put_i32(out, a->addrs[i].id);
        rn_buf_put_str(out, rn_str_from_cstr(a->addrs[i].host), false);
        rn_buf_put_u16(out, (uint16_t)a->addrs[i].port);
    }
}

rn_err_t rn_quorum_addrs_decode(const uint8_t *p, size_t len, rn_quorum_addrs_t *out) {
    memset(out, 0, sizeof(*out));
    rn_reader_t rd;
    rn_reader_init(&rd, p, len);
    const uint8_t *magic = rn_reader_take(&rd, MAGIC_LEN);
    if (!magic || memcmp(magic, ADDR_MAGIC, MAGIC_LEN) || rn_reader_i8(&rd) != 1) rn_reader_fail(&rd, RN_ERR_MALFORMED);
    take_str(&rd, out->cluster_id, sizeof(out->cluster_id), true);
    uint16_t n = rn_reader_u16(&rd);
    if (n > RN_QUORUM_MEMBERS_MAX) rn_reader_fail(&rd, RN_ERR_LIMIT);
    for (uint16_t i = 0; i < n && !rn_reader_err(&rd); i++) {
        rn_quorum_voter_t *v = &out->addrs[i];
        v->id = rn_reader_i32(&rd);
        take_str(&rd, v->host, sizeof(v->host), false);
        v->port = rn_reader_u16(&rd);
        if (v->id < 0 || v->port == 0) rn_reader_fail(&rd, RN_ERR_MALFORMED);
        for (uint16_t k = 0; k < i; k++)
            if (out->addrs[k].id == v->id) rn_reader_fail(&rd, RN_ERR_MALFORMED);
    }
    if (!rn_reader_err(&rd) && rn_reader_remaining(&rd)) rn_reader_fail(&rd, RN_ERR_MALFORMED);
    out->n = rn_reader_err(&rd) ? 0 : n;
    return rn_reader_err(&rd);
}

void rn_quorum_join_req_encode(const rn_quorum_join_req_t *r, rn_buf_t *out) {
    rn_buf_put_i16(out, 0);
    rn_buf_put_i32(out, r->id);
    rn_buf_put_str(out, rn_str_from_cstr(r->host), false);
    rn_buf_put_u16(out, (uint16_t)r->port);
    rn_buf_put_str(out, rn_str_from_cstr(r->cluster_id), false);
}

rn_err_t rn_quorum_join_req_decode(const uint8_t *p, size_t len, rn_quorum_join_req_t *out) {
    memset(out, 0, sizeof(*out));
    rn_reader_t rd;
    rn_reader_init(&rd, p, len);
    if (rn_reader_i16(&rd) != 0) rn_reader_fail(&rd, RN_ERR_MALFORMED);
    out->id = rn_reader_i32(&rd);
    take_str(&rd, out->host, sizeof(out->host), false);
    out->port = rn_reader_u16(&rd);
    take_str(&rd, out->cluster_id, sizeof(out->cluster_id), true);
    if (out->id < 0 || out->port == 0 || rn_reader_remaining(&rd)) rn_reader_fail(&rd, RN_ERR_MALFORMED);
    return rn_reader_err(&rd);
}

/* The whole book, with id at host:port in place of what it has for id (none: id < 0). */
static void addr_record_encode_locked(const rn_quorum_t *q, rn_buf_t *out, int32_t id, const char *host, int port) {
    rn_quorum_addrs_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.cluster_id, sizeof(a.cluster_id), "%s", q->cluster_id);
    for (int32_t i = 0; i < q->nbook; i++)
        if (q->book[i].id != id) a.addrs[a.n++] = q->book[i];
    if (id >= 0 && a.n < RN_QUORUM_MEMBERS_MAX) {
        a.addrs[a.n] = (rn_quorum_voter_t){.id = id, .port = port};
        snprintf(a.addrs[a.n].host, sizeof(a.addrs[a.n].host), "%s", host);
        a.n++;
    }
    rn_quorum_addrs_encode(&a, out);
}

static bool is_addr_record(const uint8_t *p, size_t len) {
    return len >= MAGIC_LEN && memcmp(p, ADDR_MAGIC, MAGIC_LEN) == 0;
}

/* Merges a record's addresses, and its cluster id if this node has none; nothing if it does
 * not parse (MALFORMED). */
static rn_err_t addr_record_merge(rn_quorum_t *q, const uint8_t *p, size_t len) {
    rn_quorum_addrs_t a;
    rn_err_t err = rn_quorum_addrs_decode(p, len, &a);
    if (err) return err;
    pthread_mutex_lock(&q->lock);
    if (!q->cluster_id[0]) snprintf(q->cluster_id, sizeof(q->cluster_id), "%s", a.cluster_id);
    for (int32_t i = 0; i < a.n; i++) book_put_locked(q, a.addrs[i].id, a.addrs[i].host, a.addrs[i].port);
    pthread_mutex_unlock(&q->lock);
    return RN_OK;
}

static void merge_entries(rn_quorum_t *q, const rn_raft_entry_t *e, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (e[i].type == RN_RAFT_ENTRY_DATA && is_addr_record(e[i].data, e[i].len) &&
            addr_record_merge(q, e[i].data, e[i].len))
            RN_WARN("quorum", "node %d: address record at %llu does not parse; ignored", q->cfg.node_id,
                    (unsigned long long)e[i].index);
}

/* ---- io and state machine hooks (driver thread) ---------------------------- */

static void io_send(void *ctx, const rn_raft_msg_t *m) {
    rn_quorum_t *q = ctx;
    rn_buf_reset(&q->sendbuf);
    if (rn_raft_msg_encode(m, &q->sendbuf) == RN_OK && !rn_buf_err(&q->sendbuf))
        rn_peers_send(q->peers, m->to, q->sendbuf.data, q->sendbuf.len);
}

static rn_err_t io_append(void *ctx, const rn_raft_entry_t *e, size_t n) {
    rn_quorum_t *q = ctx;
    merge_entries(q, e, n); /* addresses count once appended, as Raft's configurations */
    return rn_raft_store_append(q->store, e, n);
}

static rn_err_t io_truncate(void *ctx, uint64_t from) { return rn_raft_store_truncate(((rn_quorum_t *)ctx)->store, from); }

static rn_err_t io_sync(void *ctx, uint64_t ticket) {
    rn_quorum_t *q = ctx;
    rn_err_t err = rn_raft_store_sync(q->store);
    if (err) {
        RN_ERROR("quorum", "metadata log sync failed: %s", rn_err_name(err));
        return err;
    }
    if (q->raft)
        rn_raft_synced(q->raft, ticket);
    else
        q->pending_sync = ticket;
    return RN_OK;
}

static rn_err_t io_hardstate(void *ctx, uint64_t term, int32_t vote) {
    return rn_raft_store_save_hardstate(((rn_quorum_t *)ctx)->store, term, vote);
}

static rn_err_t io_snapshot(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data, size_t len, bool reset) {
    return rn_raft_store_save_snapshot(((rn_quorum_t *)ctx)->store, meta, data, len, reset);
}

static int64_t io_now(void *ctx) { return rn_clock_mono_ms(); }

static uint64_t io_random(void *ctx) {
    rn_quorum_t *q = ctx;
    q->rng ^= q->rng << 13;
    q->rng ^= q->rng >> 7;
    q->rng ^= q->rng << 17;
    return q->rng;
}

/* Resolves proposals waiting on `index` (lock taken here). */
static void settle(rn_quorum_t *q, uint64_t index, uint64_t term, bool by_snapshot) {
    pthread_mutex_lock(&q->lock);
    for (prop_t **pp = &q->props; *pp;) {
        prop_t *p = *pp;
        bool hit = p->state == P_PROPOSED && (by_snapshot ? p->index <= index : p->index == index);
        if (!hit) {
            pp = &p->next;
            continue;
        }
        p->state = P_DONE;
        /* Our entry if the term matches; after a snapshot we cannot tell: the caller retries. */
        p->err = !by_snapshot && p->term == term ? RN_OK : RN_ERR_NOT_LEADER_OR_FOLLOWER;
        p->leader_hint = atomic_load(&q->leader);
        if (p->abandoned) {
            *pp = p->next;
            free(p);
            continue;
        }
        pp = &p->next;
    }
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static void sm_apply(void *ctx, const rn_raft_entry_t *e) {
    rn_quorum_t *q = ctx;
    if (e->type == RN_RAFT_ENTRY_DATA && !is_addr_record(e->data, e->len))
        q->cfg.apply(q->cfg.arg, e->index, e->data, e->len);
    atomic_store(&q->applied, e->index);
    settle(q, e->index, e->term, false);
}

static rn_err_t sm_take(void *ctx, uint64_t index, rn_buf_t *out) {
    rn_quorum_t *q = ctx;
    rn_buf_put(out, SNAP_MAGIC, MAGIC_LEN);
    size_t at = rn_buf_put_u32(out, 0), start = out->len;
    pthread_mutex_lock(&q->lock);
    addr_record_encode_locked(q, out, -1, NULL, 0);
    pthread_mutex_unlock(&q->lock);
    if (!rn_buf_err(out)) rn_buf_patch_u32(out, at, (uint32_t)(out->len - start));
    return q->cfg.snapshot_take(q->cfg.arg, index, out);
}

static rn_err_t sm_load(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data, size_t len) {
    rn_quorum_t *q = ctx;
    if (len >= MAGIC_LEN + 4 && memcmp(data, SNAP_MAGIC, MAGIC_LEN) == 0) { /* the addresses, then the state */
        uint32_t n = rn_load_be32(data + MAGIC_LEN);
        if (n > len - MAGIC_LEN - 4 || addr_record_merge(q, data + MAGIC_LEN + 4, n)) return RN_ERR_MALFORMED;
        data += MAGIC_LEN + 4 + n;
        len -= MAGIC_LEN + 4 + (size_t)n;
    }
    rn_err_t err = q->cfg.snapshot_load(q->cfg.arg, meta->index, data, len);
    if (!err) {
        atomic_store(&q->applied, meta->index);
        settle(q, meta->index, meta->term, true);
    }
    return err;
}

/* Fails the proposals waiting for their entry (NOT_LEADER_OR_FOLLOWER, hint `leader`):
 * the proposed ones, and with `queued` those not yet proposed too (only when the driver is
 * gone: it owns a queued proposal). Frees the abandoned ones; lock held. */
static void fail_waiting(rn_quorum_t *q, int32_t leader, bool queued) {
    for (prop_t **pp = &q->props; *pp;) {
        prop_t *p = *pp;
        if (p->state == P_PROPOSED || (queued && p->state == P_QUEUED)) {
            p->state = P_DONE;
            p->err = RN_ERR_NOT_LEADER_OR_FOLLOWER;
            p->leader_hint = leader;
        }
        if (p->abandoned && p->state == P_DONE) {
            *pp = p->next;
            free(p);
        } else {
            pp = &p->next;
        }
    }
    pthread_cond_broadcast(&q->cond);
}

static void sm_role(void *ctx, rn_raft_role_t role, uint64_t term, int32_t leader) {
    rn_quorum_t *q = ctx;
    int32_t before = atomic_exchange(&q->leader, leader);
    bool was_leader = atomic_exchange(&q->is_leader, role == RN_RAFT_LEADER);
    atomic_store(&q->term, term);
    if (was_leader && role != RN_RAFT_LEADER) {
        /* Leadership lost (Kafka's controller renounces): a proposal waiting for its entry
         * fails now, not at its timeout; the entry may still commit under the next leader,
         * as the caller's retry finds. The driver fails the queued ones as it proposes them. */
        pthread_mutex_lock(&q->lock);
        fail_waiting(q, leader, false);
        pthread_mutex_unlock(&q->lock);
    }
    if (before != leader) {
        RN_INFO("quorum", "node %d: metadata leader is %d (term %llu)%s", q->cfg.node_id, leader,
                (unsigned long long)term, role == RN_RAFT_LEADER ? ", this node" : "");
        if (q->cfg.leader_change) q->cfg.leader_change(q->cfg.arg, leader, term);
    }
}

/* ---- driver thread ------------------------------------------------------------ */

/* The member's caught-up time (driver; 0 slots reused as members come and go). */
static int64_t *caught_up_slot(rn_quorum_t *q, int32_t id) {
    int free_slot = -1;
    for (int i = 0; i < RN_QUORUM_MEMBERS_MAX; i++) {
        if (q->cu_ids[i] == id && q->cu_ms[i] != 0) return &q->cu_ms[i];
        if (free_slot < 0 && q->cu_ms[i] == 0) free_slot = i;
    }
    if (free_slot < 0) return NULL;
    q->cu_ids[free_slot] = id;
    q->cu_ms[free_slot] = -1;
    return &q->cu_ms[free_slot];
}

/* Driver: the state other threads read (rn_quorum_status). */
static void publish(rn_quorum_t *q) {
    rn_raft_t *r = q->raft;
    rn_quorum_status_t st;
    memset(&st, 0, sizeof(st));
    st.node_id = q->cfg.node_id;
    st.leader = rn_raft_leader(r);
    st.is_leader = rn_raft_role(r) == RN_RAFT_LEADER;
    st.term = rn_raft_term(r);
    st.commit = rn_raft_commit_index(r);
    st.last_index = rn_raft_last_index(r);
    const rn_raft_voters_t *v = rn_raft_voters(r), *l = rn_raft_learners(r);
    st.nvoters = (int32_t)v->count;
    int64_t mono = rn_clock_mono_ms(), wall = rn_clock_wall_ms();
    bool keep[RN_QUORUM_MEMBERS_MAX] = {false};
    for (uint32_t i = 0; i < v->count + l->count && st.nmembers < RN_QUORUM_MEMBERS_MAX; i++) {
        rn_quorum_member_t *m = &st.members[st.nmembers++];
        m->id = i < v->count ? v->ids[i] : l->ids[i - v->count];
        m->voter = i < v->count;
        m->log_end = m->last_fetch_ms = m->caught_up_ms = -1;
        if (!st.is_leader) continue;
        int64_t *cu = caught_up_slot(q, m->id);
        uint64_t match = 0;
        int64_t last = 0;
        if (m->id == q->cfg.node_id) {
            m->log_end = (int64_t)st.last_index;
            if (cu) *cu = wall;
        } else if (rn_raft_peer_progress(r, m->id, &match, &last)) {
            m->log_end = (int64_t)match;
            m->last_fetch_ms = last > 0 ? wall - (mono - last) : -1;
            if (cu && match >= st.commit && last > 0) *cu = wall;
        }
        m->caught_up_ms = cu ? *cu : -1;
        if (cu) keep[cu - q->cu_ms] = true;
    }
    for (int i = 0; i < RN_QUORUM_MEMBERS_MAX; i++) /* forget members that left */
        if (!keep[i] && st.is_leader) q->cu_ms[i] = 0;
    pthread_mutex_lock(&q->lock);
    q->st = st;
    pthread_mutex_unlock(&q->lock);
}

/* Driver: the voter to hand leadership to — the one that answered last (a live one). */
static int32_t transfer_target(rn_quorum_t *q) {
    const rn_raft_voters_t *v = rn_raft_voters(q->raft);
    int32_t best = RN_RAFT_NO_NODE;
    int64_t best_ms = -1;
    for (uint32_t i = 0; i < v->count; i++) {
        uint64_t match;
        int64_t last = 0;
        if (v->ids[i] == q->cfg.node_id) continue;
        if (!rn_raft_peer_progress(q->raft, v->ids[i], &match, &last)) last = 0;
        if (last > best_ms) {
            best = v->ids[i];
            best_ms = last;
        }
    }
    return best;
}

static rn_err_t driver_submit(rn_quorum_t *q, const prop_t *p, uint64_t *index, int32_t *hint) {
    *hint = rn_raft_leader(q->raft);
    switch (p->op) {
    case OP_VOTER_ADD: return rn_raft_change_voter(q->raft, p->member, true, index);
    case OP_VOTER_REMOVE: return rn_raft_change_voter(q->raft, p->member, false, index);
    case OP_VOTER_DEMOTE: return rn_raft_demote_voter(q->raft, p->member, index);
    case OP_LEARNER_ADD: return rn_raft_change_learner(q->raft, p->member, true, index);
    case OP_LEARNER_REMOVE: return rn_raft_change_learner(q->raft, p->member, false, index);
    default: return rn_raft_propose(q->raft, p->data, p->len, index, hint);
    }
}

static void *driver_main(void *arg) {
    rn_quorum_t *q = arg;
    int64_t next_tick = rn_clock_mono_ms(); /* the first tick at once: a lone voter leads at it */
    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        inmsg_t *in = q->inbox_head;
        q->inbox_head = q->inbox_tail = NULL;
        q->inbox_count = 0;
        prop_t *queued[64];
        int nq = 0;
        for (prop_t *p = q->props; p && nq < 64; p = p->next)
            if (p->state == P_QUEUED) queued[nq++] = p;
        pthread_mutex_unlock(&q->lock);

        while (in) {
            inmsg_t *next = in->next;
            rn_raft_msg_t m;
            if (rn_raft_msg_decode(in->data, in->len, &q->limits, q->ents, &m) == RN_OK)
                rn_raft_step(q->raft, &m);
            else
                RN_WARN("quorum", "node %d: undecodable Raft message of %zu bytes dropped", q->cfg.node_id, in->len);
            free(in);
            in = next;
        }
        for (int i = 0; i < nq; i++) { /* only this thread moves a prop out of P_QUEUED */
            prop_t *p = queued[i];
            uint64_t index = 0;
            int32_t hint = RN_RAFT_NO_NODE;
            rn_err_t err = driver_submit(q, p, &index, &hint);
            pthread_mutex_lock(&q->lock);
            if (err) {
                p->state = P_DONE;
                p->err = err;
                p->leader_hint = hint;
            } else if (p->state == P_QUEUED) {
                p->index = index;
                p->term = rn_raft_term(q->raft);
                /* A lone voter commits and applies inside rn_raft_propose: then it is ours, done. */
                p->state = atomic_load(&q->applied) >= index ? P_DONE : P_PROPOSED;
                if (p->state == P_DONE) p->err = RN_OK;
            }
            pthread_cond_broadcast(&q->cond);
            pthread_mutex_unlock(&q->lock);
        }
        pthread_mutex_lock(&q->lock);
        bool transfer = q->transfer_requested;
        q->transfer_requested = false;
        pthread_mutex_unlock(&q->lock);
        int32_t to = transfer && rn_raft_role(q->raft) == RN_RAFT_LEADER ? transfer_target(q) : RN_RAFT_NO_NODE;
        if (to != RN_RAFT_NO_NODE) {
            RN_INFO("quorum", "node %d: handing metadata leadership to node %d", q->cfg.node_id, to);
            rn_raft_transfer_leadership(q->raft, to);
        }
        int64_t now = rn_clock_mono_ms();
        if (now >= next_tick) {
            rn_raft_tick(q->raft);
            next_tick = now + TICK_MS;
        }
        publish(q);
        pthread_mutex_lock(&q->lock);
        /* Free abandoned proposals that finished. */
        for (prop_t **pp = &q->props; *pp;) {
            prop_t *p = *pp;
            if (p->abandoned && p->state == P_DONE) {
                *pp = p->next;
                free(p);
            } else {
                pp = &p->next;
            }
        }
        bool work = q->inbox_head != NULL;
        for (prop_t *p = q->props; p && !work; p = p->next) work = p->state == P_QUEUED;
        if (!work && !q->stopping) rn_cond_wait_until(&q->cond, &q->lock, next_tick);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}


/* ---- voter changes and joining (member thread) ------------------------------------ */

typedef struct change {
    rn_quorum_op_t op;
    int32_t id;
    char host[256];
    int port;
    int64_t timeout_ms;
    rn_quorum_change_cb cb;
    void *arg;
} change_t;

typedef struct {
    rn_err_t error;
    int32_t leader;
    char leader_host[256];
    int leader_port;
    rn_raft_voters_t voters, learners;
} join_answer_t;

static const rn_quorum_member_t *find_member(const rn_quorum_status_t *st, int32_t id) {
    for (int32_t i = 0; i < st->nmembers; i++)
        if (st->members[i].id == id) return &st->members[i];
    return NULL;
}

/* Sleeps up to ms; false once the quorum stops. */
static bool member_nap(rn_quorum_t *q, int64_t ms) {
    int64_t until = rn_clock_mono_ms() + ms;
    pthread_mutex_lock(&q->lock);
    while (!q->stopping && !q->changes_stopping && rn_clock_mono_ms() < until)
        rn_cond_wait_until(&q->cond, &q->lock, until);
    bool ok = !q->stopping && !q->changes_stopping;
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static rn_err_t change_error(rn_err_t err, char *msg, size_t cap, const char *what) {
    switch (err) {
    case RN_OK: return RN_OK;
    case RN_ERR_NOT_LEADER_OR_FOLLOWER: snprintf(msg, cap, "%s: this node lost the metadata leadership", what); break;
    case RN_ERR_REQUEST_TIMED_OUT: snprintf(msg, cap, "%s: not applied in time", what); break;
    case RN_ERR_LIMIT: snprintf(msg, cap, "%s: at most %d voters and %d learners", what, RN_RAFT_MAX_VOTERS,
                                RN_RAFT_MAX_VOTERS); return RN_ERR_INVALID_REQUEST;
    default: snprintf(msg, cap, "%s: %s", what, rn_err_name(err)); break;
    }
    return err == RN_ERR_NOT_LEADER_OR_FOLLOWER || err == RN_ERR_REQUEST_TIMED_OUT ? err : RN_ERR_INVALID_REQUEST;
}

/* A configuration change through the driver; Raft's AGAIN (a change or this leader's first
 * commit pending) is retried for a while, then REQUEST_TIMED_OUT as in Kafka. */
static rn_err_t member_op(rn_quorum_t *q, int op, int32_t id, char *msg, size_t cap, const char *what) {
    int64_t until = rn_clock_mono_ms() + CHANGE_AGAIN_MS;
    for (;;) {
        uint64_t index;
        int32_t hint;
        rn_err_t err = submit(q, op, id, NULL, 0, CHANGE_WAIT_MS, &index, &hint);
        if (err != RN_ERR_AGAIN) return change_error(err, msg, cap, what);
        if (rn_clock_mono_ms() >= until || !member_nap(q, 20)) {
            snprintf(msg, cap, "%s: a previous voter change is not committed yet", what);
            return RN_ERR_REQUEST_TIMED_OUT;
        }
    }
}

/* Records id's address in the log (an address record with the whole book), unless it is there. */
static rn_err_t record_address(rn_quorum_t *q, int32_t id, const char *host, int port, char *msg, size_t cap) {
    char h[256];
    int pt = 0;
    rn_buf_t b;
    rn_buf_init(&b, 64 << 10);
    pthread_mutex_lock(&q->lock);
    bool same = book_get_locked(q, id, h, sizeof(h), &pt) && pt == port && strcmp(h, host) == 0;
    if (!same) addr_record_encode_locked(q, &b, id, host, port); /* merged here once appended */
    pthread_mutex_unlock(&q->lock);
    rn_err_t err = RN_OK;
    if (!same) {
        uint64_t index;
        int32_t hint;
        err = rn_buf_err(&b) ? rn_buf_err(&b) : submit(q, OP_DATA, -1, b.data, b.len, CHANGE_WAIT_MS, &index, &hint);
        char what[64];
        snprintf(what, sizeof(what), "recording node %d's address", id);
        err = change_error(err, msg, cap, what);
    }
    rn_buf_free(&b);
    return err;
}

/* Until id's match index reaches the commit index (and it answered lately). */
static rn_err_t wait_caught_up(rn_quorum_t *q, int32_t id, int64_t timeout_ms, char *msg, size_t cap) {
    int64_t deadline = rn_clock_mono_ms() + (timeout_ms < 1000 ? 1000 : timeout_ms > 60000 ? 60000 : timeout_ms);
    rn_quorum_status_t st;
    for (;;) {
        rn_quorum_status(q, &st);
        const rn_quorum_member_t *m = find_member(&st, id);
        if (!st.is_leader) return change_error(RN_ERR_NOT_LEADER_OR_FOLLOWER, msg, cap, "adding a voter");
        int64_t recent = rn_clock_wall_ms() - 2 * (int64_t)q->election_ms;
        if (m && m->log_end >= 0 && (uint64_t)m->log_end >= st.commit && m->last_fetch_ms >= recent) return RN_OK;
        if (rn_clock_mono_ms() >= deadline || !member_nap(q, 50)) {
            snprintf(msg, cap, "node %d has not caught up with the metadata log (at %lld of %llu); is it running?", id,
                     m ? (long long)m->log_end : -1LL, (unsigned long long)st.commit);
            return RN_ERR_REQUEST_TIMED_OUT;
        }
    }
}

static rn_err_t run_change(rn_quorum_t *q, const change_t *ch, int32_t *hint, char *msg, size_t cap) {
    rn_quorum_status_t st;
    rn_quorum_status(q, &st);
    *hint = st.leader;
    if (!st.is_leader) {
        snprintf(msg, cap, "node %d is not the metadata leader", q->cfg.node_id);
        return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    }
    const rn_quorum_member_t *m = find_member(&st, ch->id);
    rn_err_t err = RN_OK;
    switch (ch->op) {
    case RN_QUORUM_ADD_LEARNER:
        if (ch->host[0]) err = record_address(q, ch->id, ch->host, ch->port, msg, cap);
        if (err || m) return err;
        err = member_op(q, OP_LEARNER_ADD, ch->id, msg, cap, "adding a learner");
        if (!err) RN_INFO("quorum", "node %d: node %d is a learner of the metadata quorum", q->cfg.node_id, ch->id);
        return err;
    case RN_QUORUM_ADD_VOTER:
        if (m && m->voter) {
            snprintf(msg, cap, "node %d is already a voter", ch->id);
            return RN_ERR_DUPLICATE_VOTER;
        }
        if (!m) {
            snprintf(msg, cap, "node %d does not replicate the metadata log: start it as a controller with "
                     "controller.quorum.bootstrap.servers naming this quorum first", ch->id);
            return RN_ERR_INVALID_REQUEST;
        }
        if (ch->host[0]) err = record_address(q, ch->id, ch->host, ch->port, msg, cap);
        if (!err) err = wait_caught_up(q, ch->id, ch->timeout_ms, msg, cap);
        if (!err) err = member_op(q, OP_VOTER_ADD, ch->id, msg, cap, "adding a voter");
        if (!err) RN_INFO("quorum", "node %d: node %d is a voter of the metadata quorum", q->cfg.node_id, ch->id);
        return err;
    case RN_QUORUM_REMOVE_VOTER:
        if (m && !m->voter) { /* an observer (e.g. a removed voter that has gone): out of the quorum */
            err = member_op(q, OP_LEARNER_REMOVE, ch->id, msg, cap, "removing an observer");
            if (!err) RN_INFO("quorum", "node %d: node %d is no longer an observer", q->cfg.node_id, ch->id);
            return err;
        }
        if (!m) {
            snprintf(msg, cap, "node %d is not a voter", ch->id);
            return RN_ERR_VOTER_NOT_FOUND;
        }
        if (st.nvoters == 1) {
            snprintf(msg, cap, "node %d is the only voter", ch->id);
            return RN_ERR_INVALID_REQUEST;
        }
        if (ch->id == q->cfg.node_id) { /* the leader leaves: another voter leads first, then removes it */
            rn_quorum_transfer_leadership(q);
            int64_t deadline = rn_clock_mono_ms() + CHANGE_WAIT_MS;
            while (rn_quorum_is_leader(q) || rn_quorum_leader(q) < 0 || rn_quorum_leader(q) == q->cfg.node_id) {
                if (rn_clock_mono_ms() >= deadline || !member_nap(q, 20)) {
                    snprintf(msg, cap, "node %d could not hand the metadata leadership on", ch->id);
                    return RN_ERR_REQUEST_TIMED_OUT;
                }
            }
            *hint = rn_quorum_leader(q);
            snprintf(msg, cap, "node %d handed the metadata leadership to node %d", ch->id, *hint);
            return RN_ERR_NOT_LEADER_OR_FOLLOWER;
        }
        /* A live one stays a learner (an observer, as in KRaft) so that it learns it was removed
         * instead of campaigning on an old configuration; a silent one leaves altogether. */
        bool live = m->last_fetch_ms >= rn_clock_wall_ms() - 2 * (int64_t)q->election_ms;
        err = member_op(q, live ? OP_VOTER_DEMOTE : OP_VOTER_REMOVE, ch->id, msg, cap, "removing a voter");
        if (!err)
            RN_INFO("quorum", "node %d: node %d is no longer a voter%s", q->cfg.node_id, ch->id,
                    live ? " (it stays an observer)" : "");
        return err;
    }
    return RN_ERR_INVALID_ARG;
}

/* One join request to host:port; the answer's addresses are merged. */
static rn_err_t join_ask(rn_quorum_t *q, const char *host, int port, join_answer_t *a) {
    memset(a, 0, sizeof(*a));
    rn_client_config_t cc = {.host = host, .port = port, .client_id = "runnel-quorum-join", .timeout_ms = 5000,
                             .max_response_bytes = 1 << 20};
    rn_client_t *cl;
    rn_err_t err = rn_client_new(&cc, &cl);
    if (err) return err;
    pthread_mutex_lock(&q->lock);
    q->join_client = cl;
    if (q->stopping || q->changes_stopping) rn_client_interrupt(cl);
    char cid[64];
    snprintf(cid, sizeof(cid), "%s", q->cluster_id);
    pthread_mutex_unlock(&q->lock);
    rn_buf_t body, out;
    rn_buf_init(&body, 4096);
    rn_buf_init(&out, 1 << 20);
    rn_quorum_join_req_t jr = {.id = q->cfg.node_id, .port = q->cfg.self_port};
    snprintf(jr.host, sizeof(jr.host), "%s", q->cfg.self_host);
    snprintf(jr.cluster_id, sizeof(jr.cluster_id), "%s", cid);
    rn_quorum_join_req_encode(&jr, &body);
    err = rn_client_call(cl, RN_API_RUNNEL_QUORUM_JOIN, 0, &body, &out);
    pthread_mutex_lock(&q->lock);
    q->join_client = NULL;
    pthread_mutex_unlock(&q->lock);
    rn_client_free(cl);
    if (!err) {
        rn_reader_t rd;
        rn_reader_init(&rd, out.data, out.len);
        a->error = (rn_err_t)rn_reader_i16(&rd);
        a->leader = rn_reader_i32(&rd);
        rn_str_t lh = rn_reader_str(&rd, false);
        a->leader_port = rn_reader_u16(&rd);
        if (lh.len > 0 && lh.len < (int32_t)sizeof(a->leader_host))
            snprintf(a->leader_host, sizeof(a->leader_host), "%.*s", (int)lh.len, lh.ptr);
        for (int k = 0; k < 2; k++) {
            rn_raft_voters_t *v = k ? &a->learners : &a->voters;
            uint16_t n = rn_reader_u16(&rd);
            if (n > RN_RAFT_MAX_VOTERS) rn_reader_fail(&rd, RN_ERR_LIMIT);
            for (uint16_t i = 0; i < n && !rn_reader_err(&rd); i++) v->ids[v->count++] = rn_reader_i32(&rd);
        }
        uint32_t rlen = rn_reader_u32(&rd);
        const uint8_t *rec = rlen <= rn_reader_remaining(&rd) ? rn_reader_take(&rd, rlen) : NULL;
        if (rn_reader_err(&rd) || !rec || rn_reader_remaining(&rd) || (rlen && addr_record_merge(q, rec, rlen)) ||
            (a->voters.count && !rn_raft_members_valid(&a->voters, &a->learners)))
            err = RN_ERR_MALFORMED;
        if (!err && a->leader >= 0 && a->leader_host[0] && a->leader_port > 0) { /* ask it next */
            pthread_mutex_lock(&q->lock);
            book_put_locked(q, a->leader, a->leader_host, a->leader_port);
            pthread_mutex_unlock(&q->lock);
            atomic_store(&q->join_hint, a->leader);
        }
    }
    rn_buf_free(&body);
    rn_buf_free(&out);
    return err;
}

/* Where to ask to join, turn by turn: the leader if its address is known, the static voters,
 * the bootstrap servers. */
static bool join_target(rn_quorum_t *q, uint32_t turn, char *host, size_t hostlen, int *port) {
    int32_t leader = rn_quorum_leader(q);
    if (leader < 0) leader = atomic_load(&q->join_hint);
    if (leader >= 0 && leader != q->cfg.node_id && (turn & 1) == 0 &&
        rn_quorum_address(q, leader, host, hostlen, port))
        return true;
    int32_t n = q->cfg.nvoters + q->cfg.nbootstrap;
    for (int32_t k = 0; k < n; k++) {
        int32_t i = (int32_t)((turn / 2 + (uint32_t)k) % (uint32_t)n);
        const rn_quorum_voter_t *v = i < q->cfg.nvoters ? &q->cfg.voters[i] : &q->cfg.bootstrap[i - q->cfg.nvoters];
        if (v->id == q->cfg.node_id) continue;
        snprintf(host, hostlen, "%s", v->host);
        *port = v->port;
        return true;
    }
    return false;
}

/* Member thread, join mode: while this node is no member of its configuration, ask. */
static void join_step(rn_quorum_t *q, uint32_t *turn) {
    rn_quorum_status_t st;
    rn_quorum_status(q, &st);
    if (find_member(&st, q->cfg.node_id)) return;
    char host[256];
    int port;
    if (!join_target(q, (*turn)++, host, sizeof(host), &port)) return;
    join_answer_t a;
    rn_err_t err = join_ask(q, host, port, &a);
    RN_DEBUG("quorum", "node %d: asked %s:%d to join the metadata quorum: %s", q->cfg.node_id, host, port,
             rn_err_name(err ? err : a.error));
}

static void *member_main(void *arg) {
    rn_quorum_t *q = arg;
    uint32_t turn = 0;
    int64_t next_join = 0;
    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        change_t *ch = q->change;
        if (ch) {
            pthread_mutex_unlock(&q->lock);
            char msg[512] = "";
            int32_t hint = RN_RAFT_NO_NODE;
            rn_err_t err = run_change(q, ch, &hint, msg, sizeof(msg));
            if (err) RN_INFO("quorum", "node %d: voter change refused: %s (%s)", q->cfg.node_id, msg, rn_err_name(err));
            if (ch->cb) ch->cb(ch->arg, err, hint, msg);
            pthread_mutex_lock(&q->lock);
            q->change = NULL;
            free(ch);
            pthread_cond_broadcast(&q->cond);
            continue;
        }
        int64_t now = rn_clock_mono_ms();
        if (q->cfg.join && now >= next_join) {
            pthread_mutex_unlock(&q->lock);
            join_step(q, &turn);
            pthread_mutex_lock(&q->lock);
            next_join = rn_clock_mono_ms() + JOIN_RETRY_MS;
            continue;
        }
        rn_cond_wait_until(&q->cond, &q->lock, q->cfg.join ? next_join : now + 1000);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* Before starting Raft on a joining node with an empty store: the voters and their addresses
 * (and the cluster id) from any controller, waited for up to JOIN_WAIT_MS. */
static rn_err_t join_first(rn_quorum_t *q, rn_raft_voters_t *voters) {
    int64_t deadline = rn_clock_mono_ms() + JOIN_WAIT_MS;
    for (uint32_t turn = 1;; turn += 2) { /* odd turns: no leader is known yet */
        char host[256];
        int port;
        join_answer_t a;
        if (!join_target(q, turn, host, sizeof(host), &port)) return RN_ERR_INVALID_CONFIG;
        rn_err_t err = join_ask(q, host, port, &a);
        char cid[64];
        bool have_cid = rn_quorum_cluster_id(q, cid, sizeof(cid));
        if (!err && rn_raft_voters_has(&a.voters, q->cfg.node_id)) {
            /* A voter with an empty log (a lost or new disk) could vote twice in a term or count
             * toward a commit it does not hold: it must be removed first. */
            RN_ERROR("quorum", "node %d is a voter of the metadata quorum but its log in %s is empty: another "
                     "node has this node.id, or this one lost its disk (then remove it first: runnel cluster "
                     "remove-controller %d, and start it again)", q->cfg.node_id, q->cfg.dir, q->cfg.node_id);
            return RN_ERR_INCONSISTENT_VOTER_SET;
        }
        if (!err && a.voters.count > 0 && have_cid) {
            *voters = a.voters;
            RN_INFO("quorum", "node %d: joining the metadata quorum of cluster %s through %s:%d (leader %d)",
                    q->cfg.node_id, cid, host, port, a.leader);
            return RN_OK;
        }
        RN_DEBUG("quorum", "node %d: join through %s:%d: %s", q->cfg.node_id, host, port,
                 rn_err_name(err ? err : a.error));
        if (rn_clock_mono_ms() >= deadline) return RN_ERR_REQUEST_TIMED_OUT;
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
}

rn_err_t rn_quorum_change(rn_quorum_t *q, rn_quorum_op_t op, int32_t id, const char *host, int port,
                          int64_t timeout_ms, rn_quorum_change_cb cb, void *arg) {
    if (id < 0) return RN_ERR_INVALID_REQUEST;
    if (!atomic_load(&q->is_leader)) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    change_t *ch = calloc(1, sizeof(*ch));
    if (!ch) return RN_ERR_NOMEM;
    *ch = (change_t){.op = op, .id = id, .port = port, .timeout_ms = timeout_ms, .cb = cb, .arg = arg};
    if (host && port > 0) snprintf(ch->host, sizeof(ch->host), "%s", host);
    pthread_mutex_lock(&q->lock);
    rn_err_t err = q->stopping || q->changes_stopping ? RN_ERR_NOT_LEADER_OR_FOLLOWER
                   : q->change                       ? RN_ERR_REQUEST_TIMED_OUT
                                                     : RN_OK;
    if (!err) {
        q->change = ch;
        pthread_cond_broadcast(&q->cond);
    }
    pthread_mutex_unlock(&q->lock);
    if (err) free(ch);
    return err;
}

rn_err_t rn_quorum_handle_join(rn_quorum_t *q, const uint8_t *body, size_t len, rn_buf_t *out) {
    rn_quorum_join_req_t jr;
    if (rn_quorum_join_req_decode(body, len, &jr)) return RN_ERR_MALFORMED;
    int32_t id = jr.id;
    int port = jr.port;
    const char *host = jr.host;
    rn_quorum_status_t st;
    rn_quorum_status(q, &st);
    char mine[64];
    rn_err_t err = RN_OK;
    if (jr.cluster_id[0] && rn_quorum_cluster_id(q, mine, sizeof(mine)) && strcmp(jr.cluster_id, mine))
        err = RN_ERR_INCONSISTENT_CLUSTER_ID;
    else if (!st.is_leader)
        err = RN_ERR_NOT_CONTROLLER;
    else if (id != q->cfg.node_id) {
        char known[256];
        int kport = 0;
        pthread_mutex_lock(&q->lock);
        bool same = book_get_locked(q, id, known, sizeof(known), &kport) && kport == port && !strcmp(known, host);
        pthread_mutex_unlock(&q->lock);
        if (!find_member(&st, id) || !same) { /* taken in (or its new address recorded) by the member thread */
            rn_err_t e = rn_quorum_change(q, RN_QUORUM_ADD_LEARNER, id, host, port, 0, NULL, NULL);
            err = e ? e : RN_ERR_REQUEST_TIMED_OUT; /* under way: ask again */
        }
    }
    char lhost[256] = "";
    int lport = 0;
    if (st.leader < 0 || !rn_quorum_address(q, st.leader, lhost, sizeof(lhost), &lport)) lhost[0] = 0;
    rn_buf_put_i16(out, (int16_t)rn_err_wire(err));
    rn_buf_put_i32(out, st.leader);
    rn_buf_put_str(out, rn_str_from_cstr(lhost), false);
    rn_buf_put_u16(out, (uint16_t)lport);
    for (int k = 0; k < 2; k++) {
        uint16_t n = 0;
        for (int32_t i = 0; i < st.nmembers; i++) n += st.members[i].voter == !k;
        rn_buf_put_u16(out, n);
        for (int32_t i = 0; i < st.nmembers; i++)
            if (st.members[i].voter == !k) rn_buf_put_i32(out, st.members[i].id);
    }
    size_t at = rn_buf_put_u32(out, 0), start = out->len;
    pthread_mutex_lock(&q->lock);
    addr_record_encode_locked(q, out, -1, NULL, 0);
    pthread_mutex_unlock(&q->lock);
    if (!rn_buf_err(out)) rn_buf_patch_u32(out, at, (uint32_t)(out->len - start));
    return rn_buf_err(out);
}

/* ---- public -------------------------------------------------------------------- */

rn_err_t rn_quorum_start(const rn_quorum_config_t *cfg, rn_quorum_t **out) {
    *out = NULL;
    if (!cfg->apply || !cfg->snapshot_take || !cfg->snapshot_load || (cfg->nvoters < 1 && !cfg->join))
        return RN_ERR_INVALID_ARG;
    rn_quorum_t *q = calloc(1, sizeof(*q));
    if (!q) return RN_ERR_NOMEM;
    q->cfg = *cfg;
    q->cfg.cluster_id = NULL; /* copied below */
    if (cfg->cluster_id) snprintf(q->cluster_id, sizeof(q->cluster_id), "%s", cfg->cluster_id);
    pthread_mutex_init(&q->lock, NULL);
    rn_cond_init_mono(&q->cond);
    atomic_init(&q->leader, RN_RAFT_NO_NODE);
    atomic_init(&q->join_hint, RN_RAFT_NO_NODE);
    q->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)cfg->node_id << 32) ^ (uint64_t)rn_clock_mono_ns();
    if (!q->rng) q->rng = 1;
    q->st.leader = RN_RAFT_NO_NODE;
    q->st.node_id = cfg->node_id;

    rn_raft_config_t rc;
    rn_raft_config_defaults(&rc);
    rc.node_id = cfg->node_id;
    rc.initial_voters.count = (uint32_t)cfg->nvoters;
    for (int32_t i = 0; i < cfg->nvoters; i++) rc.initial_voters.ids[i] = cfg->voters[i].id;
    if (cfg->election_timeout_ms) rc.election_timeout_ms = cfg->election_timeout_ms;
    if (cfg->heartbeat_ms) rc.heartbeat_ms = cfg->heartbeat_ms;
    if (cfg->snapshot_entries) rc.snapshot_entries = cfg->snapshot_entries;
    q->election_ms = rc.election_timeout_ms;
    q->limits = rn_raft_msg_limits(&rc);
    q->ents = calloc(q->limits.max_entries ? q->limits.max_entries : 1, sizeof(*q->ents));
    rn_buf_init(&q->sendbuf, (size_t)rc.max_append_bytes + (1 << 20));

    rn_peers_config_t pc = {.self = cfg->node_id, .api_key = cfg->api_key};
    rn_raft_store_limits_t sl = rn_raft_store_limits(&rc);
    rn_err_t err = q->ents ? rn_peers_new(&pc, &q->peers) : RN_ERR_NOMEM;
    for (int32_t i = 0; !err && i < cfg->nvoters; i++) /* the static addresses; the log's replace them */
        book_put_locked(q, cfg->voters[i].id, cfg->voters[i].host, cfg->voters[i].port);
    if (!err) err = rn_raft_store_open(cfg->dir, &sl, &q->store);
    rn_raft_boot_t boot;
    if (!err) err = rn_raft_store_boot(q->store, &boot);
    if (!err) {
        bool has_config = boot.has_snapshot;
        for (size_t i = 0; i < boot.n_entries; i++) has_config |= boot.entries[i].type == RN_RAFT_ENTRY_CONFIG;
        merge_entries(q, boot.entries, boot.n_entries);
        if (cfg->join && !has_config) { /* a new node: who the voters are, from the quorum */
            err = join_first(q, &rc.initial_voters);
            if (err == RN_ERR_REQUEST_TIMED_OUT)
                RN_ERROR("quorum", "node %d: no controller of controller.quorum.bootstrap.servers (or voters) took "
                         "this node in within %d s", cfg->node_id, JOIN_WAIT_MS / 1000);
        } else if (rc.initial_voters.count == 0) { /* the store has the configuration: this is not used */
            rc.initial_voters = (rn_raft_voters_t){.count = 1, .ids = {cfg->node_id}};
        }
    }
    if (!err) {
        rn_raft_io_t io = {.ctx = q, .send = io_send, .append = io_append, .truncate = io_truncate,
                           .sync = io_sync, .save_hardstate = io_hardstate, .save_snapshot = io_snapshot,
                           .now_ms = io_now, .random = io_random};
        rn_raft_sm_t sm = {.ctx = q, .apply = sm_apply, .snapshot_take = sm_take, .snapshot_load = sm_load,
                           .role_change = sm_role};
        err = rn_raft_new(&rc, &io, &sm, &boot, &q->raft);
    }
    if (q->store) rn_raft_store_boot_done(q->store);
    if (!err && q->pending_sync) rn_raft_synced(q->raft, q->pending_sync);
    if (!err) publish(q);
    if (!err && pthread_create(&q->thread, NULL, driver_main, q) != 0) err = RN_ERR_NOMEM;
    if (!err) q->thread_started = true;
    if (!err && pthread_create(&q->mthread, NULL, member_main, q) != 0) err = RN_ERR_NOMEM;
    if (!err) q->mthread_started = true;
    if (err) {
        RN_ERROR("quorum", "node %d: starting the metadata quorum in %s failed: %s", cfg->node_id, cfg->dir,
                 rn_err_name(err));
        rn_quorum_stop(q);
        return err;
    }
    RN_INFO("quorum", "node %d: metadata quorum of %d voter(s)%s, log in %s", cfg->node_id,
            (int)rn_raft_voters(q->raft)->count, rn_raft_voters_has(rn_raft_voters(q->raft), cfg->node_id) ? "" :
            " (this node is not one of them)", cfg->dir);
    *out = q;
    return RN_OK;
}

void rn_quorum_stop(rn_quorum_t *q) {
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    if (q->join_client) rn_client_interrupt(q->join_client);
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    if (q->mthread_started) pthread_join(q->mthread, NULL); /* its waits end on stopping */
    if (q->thread_started) pthread_join(q->thread, NULL);
    free(q->change); /* never started: its caller's request is closed with the network */
    rn_peers_free(q->peers); /* no more sends: the driver is gone */
    pthread_mutex_lock(&q->lock);
    fail_waiting(q, RN_RAFT_NO_NODE, true); /* callers free theirs */
    while (q->props) rn_cond_wait_until(&q->cond, &q->lock, rn_clock_mono_ms() + 10); /* callers unlink theirs */
    while (q->inbox_head) {
        inmsg_t *m = q->inbox_head;
        q->inbox_head = m->next;
        free(m);
    }
    pthread_mutex_unlock(&q->lock);
    rn_raft_free(q->raft);
    rn_raft_store_close(q->store);
    rn_buf_free(&q->sendbuf);
    free(q->ents);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

void rn_quorum_deliver(rn_quorum_t *q, const uint8_t *msg, size_t len) {
    inmsg_t *m = malloc(sizeof(*m) + len);
    if (!m) return;
    m->next = NULL;
    m->len = len;
    memcpy(m->data, msg, len);
    pthread_mutex_lock(&q->lock);
    if (q->stopping || q->inbox_count >= INBOX_MAX) { /* Raft resends what is lost */
        pthread_mutex_unlock(&q->lock);
        free(m);
        return;
    }
    if (q->inbox_tail) q->inbox_tail->next = m;
    else q->inbox_head = m;
    q->inbox_tail = m;
    q->inbox_count++;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static void deliver_one(void *arg, const uint8_t *msg, size_t len) { rn_quorum_deliver(arg, msg, len); }

rn_err_t rn_quorum_deliver_batch(rn_quorum_t *q, const uint8_t *body, size_t len) {
    return rn_peers_each(body, len, deliver_one, q);
}

static void unlink_prop(rn_quorum_t *q, prop_t *p) {
    for (prop_t **pp = &q->props; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

/* Queues a proposal (OP_DATA) or a member change for the driver and waits until it is applied
 * here, known lost, the timeout passes or the quorum stops. */
static rn_err_t submit(rn_quorum_t *q, int op, int32_t member, const void *data, size_t len, int64_t timeout_ms,
                       uint64_t *index, int32_t *leader_hint) {
    *index = 0;
    *leader_hint = atomic_load(&q->leader);
    if (!atomic_load(&q->is_leader)) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    prop_t *p = malloc(sizeof(*p) + len);
    if (!p) return RN_ERR_NOMEM;
    memset(p, 0, sizeof(*p));
    p->op = op;
    p->member = member;
    p->len = len;
    if (len) memcpy(p->data, data, len);
    int64_t deadline = rn_clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&q->lock);
    if (q->stopping) {
        pthread_mutex_unlock(&q->lock);
        free(p);
        return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    }
    p->next = q->props;
    q->props = p;
    pthread_cond_broadcast(&q->cond);
    while (p->state != P_DONE && !q->stopping && !q->changes_stopping && rn_clock_mono_ms() < deadline)
        rn_cond_wait_until(&q->cond, &q->lock, deadline);
    rn_err_t err;
    if (p->state == P_DONE) {
        err = p->err;
        *index = p->index;
        *leader_hint = p->leader_hint;
        unlink_prop(q, p);
        free(p);
        pthread_cond_broadcast(&q->cond); /* rn_quorum_stop may wait for this */
    } else {
        p->abandoned = true; /* the driver (or rn_quorum_stop) frees it once its fate is known */
        err = RN_ERR_REQUEST_TIMED_OUT;
    }
    pthread_mutex_unlock(&q->lock);
    return err;
}

rn_err_t rn_quorum_propose(rn_quorum_t *q, const void *data, size_t len, int64_t timeout_ms, uint64_t *index,
                           int32_t *leader_hint) {
    return submit(q, OP_DATA, -1, data, len, timeout_ms, index, leader_hint);
}

void rn_quorum_stop_changes(rn_quorum_t *q) {
    int64_t deadline = rn_clock_mono_ms() + 3000;
    pthread_mutex_lock(&q->lock);
    q->changes_stopping = true;
    if (q->join_client) rn_client_interrupt(q->join_client);
    pthread_cond_broadcast(&q->cond);
    while (q->change && rn_clock_mono_ms() < deadline) rn_cond_wait_until(&q->cond, &q->lock, deadline);
    pthread_mutex_unlock(&q->lock);
}

void rn_quorum_transfer_leadership(rn_quorum_t *q) {
    pthread_mutex_lock(&q->lock);
    q->transfer_requested = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

int32_t rn_quorum_leader(rn_quorum_t *q) { return atomic_load(&q->leader); }

void rn_quorum_status(rn_quorum_t *q, rn_quorum_status_t *out) {
    pthread_mutex_lock(&q->lock);
    *out = q->st;
    pthread_mutex_unlock(&q->lock);
}

int32_t rn_quorum_voter_count(rn_quorum_t *q) {
    pthread_mutex_lock(&q->lock);
    int32_t n = q->st.nvoters;
    pthread_mutex_unlock(&q->lock);
    return n;
}

bool rn_quorum_address(rn_quorum_t *q, int32_t id, char *host, size_t hostlen, int *port) {
    pthread_mutex_lock(&q->lock);
    bool ok = book_get_locked(q, id, host, hostlen, port);
    pthread_mutex_unlock(&q->lock);
    return ok;
}

bool rn_quorum_cluster_id(rn_quorum_t *q, char *out, size_t cap) {
    pthread_mutex_lock(&q->lock);
    bool ok = q->cluster_id[0] != 0;
    snprintf(out, cap, "%s", q->cluster_id);
    pthread_mutex_unlock(&q->lock);
    return ok;
}
bool rn_quorum_is_leader(rn_quorum_t *q) { return atomic_load(&q->is_leader); }
uint64_t rn_quorum_applied(rn_quorum_t *q) { return atomic_load(&q->applied); }
uint64_t rn_quorum_term(rn_quorum_t *q) { return atomic_load(&q->term); }
