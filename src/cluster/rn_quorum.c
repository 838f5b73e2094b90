/*
 * rn_quorum.c — a Raft node's runtime: store, peers, driver thread and
 * blocking proposals (see rn_quorum.h).
 */
#include "rn_quorum.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_clock.h"
#include "rn_cond.h"
#include "rn_logging.h"
#include "rn_peers.h"
#include "rn_raft_store.h"

#define TICK_MS 10
#define INBOX_MAX 8192

typedef struct inmsg {
    struct inmsg *next;
    size_t len;
    uint8_t data[];
} inmsg_t;

enum { P_QUEUED, P_PROPOSED, P_DONE };

typedef struct prop {
    struct prop *next;
    int state;
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
    rn_raft_entry_t *ents;
    rn_buf_t sendbuf;
    uint64_t rng;
    /* Read by other threads. */
    atomic_int leader;
    atomic_bool is_leader;
    _Atomic uint64_t applied, term;
};

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

/* ---- io and state machine hooks (driver thread) ---------------------------- */

static void io_send(void *ctx, const rn_raft_msg_t *m) {
    rn_quorum_t *q = ctx;
    rn_buf_reset(&q->sendbuf);
    if (rn_raft_msg_encode(m, &q->sendbuf) == RN_OK && !rn_buf_err(&q->sendbuf))
        rn_peers_send(q->peers, m->to, q->sendbuf.data, q->sendbuf.len);
}

static rn_err_t io_append(void *ctx, const rn_raft_entry_t *e, size_t n) {
    return rn_raft_store_append(((rn_quorum_t *)ctx)->store, e, n);
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
    if (e->type == RN_RAFT_ENTRY_DATA) q->cfg.apply(q->cfg.arg, e->index, e->data, e->len);
    atomic_store(&q->applied, e->index);
    settle(q, e->index, e->term, false);
}

static rn_err_t sm_take(void *ctx, uint64_t index, rn_buf_t *out) {
    rn_quorum_t *q = ctx;
    return q->cfg.snapshot_take(q->cfg.arg, index, out);
}

static rn_err_t sm_load(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data, size_t len) {
    rn_quorum_t *q = ctx;
    rn_err_t err = q->cfg.snapshot_load(q->cfg.arg, meta->index, data, len);
    if (!err) {
        atomic_store(&q->applied, meta->index);
        settle(q, meta->index, meta->term, true);
    }
    return err;
}

static void sm_role(void *ctx, rn_raft_role_t role, uint64_t term, int32_t leader) {
    rn_quorum_t *q = ctx;
    int32_t before = atomic_exchange(&q->leader, leader);
    atomic_store(&q->is_leader, role == RN_RAFT_LEADER);
    atomic_store(&q->term, term);
    if (before != leader) {
        RN_INFO("quorum", "node %d: metadata leader is %d (term %llu)%s", q->cfg.node_id, leader,
                (unsigned long long)term, role == RN_RAFT_LEADER ? ", this node" : "");
        if (q->cfg.leader_change) q->cfg.leader_change(q->cfg.arg, leader, term);
    }
}

/* ---- driver thread ------------------------------------------------------------ */

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
            rn_err_t err = rn_raft_propose(q->raft, p->data, p->len, &index, &hint);
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
        if (transfer && rn_raft_role(q->raft) == RN_RAFT_LEADER) {
            const rn_raft_voters_t *v = rn_raft_voters(q->raft);
            for (uint32_t i = 0; i < v->count; i++) {
                if (v->ids[i] == q->cfg.node_id) continue;
                RN_INFO("quorum", "node %d: handing metadata leadership to node %d", q->cfg.node_id, v->ids[i]);
                rn_raft_transfer_leadership(q->raft, v->ids[i]);
                break;
            }
        }
        int64_t now = rn_clock_mono_ms();
        if (now >= next_tick) {
            rn_raft_tick(q->raft);
            next_tick = now + TICK_MS;
        }
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

/* ---- public -------------------------------------------------------------------- */

rn_err_t rn_quorum_start(const rn_quorum_config_t *cfg, rn_quorum_t **out) {
    *out = NULL;
    if (!cfg->apply || !cfg->snapshot_take || !cfg->snapshot_load || cfg->nvoters < 1) return RN_ERR_INVALID_ARG;
    rn_quorum_t *q = calloc(1, sizeof(*q));
    if (!q) return RN_ERR_NOMEM;
    q->cfg = *cfg;
    pthread_mutex_init(&q->lock, NULL);
    rn_cond_init_mono(&q->cond);
    atomic_init(&q->leader, RN_RAFT_NO_NODE);
    q->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)cfg->node_id << 32) ^ (uint64_t)rn_clock_mono_ns();
    if (!q->rng) q->rng = 1;

    rn_raft_config_t rc;
    rn_raft_config_defaults(&rc);
    rc.node_id = cfg->node_id;
    rc.initial_voters.count = (uint32_t)cfg->nvoters;
    for (int32_t i = 0; i < cfg->nvoters; i++) rc.initial_voters.ids[i] = cfg->voters[i].id;
    if (cfg->election_timeout_ms) rc.election_timeout_ms = cfg->election_timeout_ms;
    if (cfg->heartbeat_ms) rc.heartbeat_ms = cfg->heartbeat_ms;
    q->limits = rn_raft_msg_limits(&rc);
    q->ents = calloc(q->limits.max_entries ? q->limits.max_entries : 1, sizeof(*q->ents));
    rn_buf_init(&q->sendbuf, (size_t)rc.max_append_bytes + (1 << 20));

    rn_peers_config_t pc = {.self = cfg->node_id, .api_key = cfg->api_key};
    rn_raft_store_limits_t sl = rn_raft_store_limits(&rc);
    rn_err_t err = q->ents ? rn_peers_new(&pc, &q->peers) : RN_ERR_NOMEM;
    for (int32_t i = 0; !err && i < cfg->nvoters; i++)
        err = rn_peers_set(q->peers, cfg->voters[i].id, cfg->voters[i].host, cfg->voters[i].port);
    if (!err) err = rn_raft_store_open(cfg->dir, &sl, &q->store);
    rn_raft_boot_t boot;
    if (!err) err = rn_raft_store_boot(q->store, &boot);
    if (!err) {
        rn_raft_io_t io = {.ctx = q, .send = io_send, .append = io_append, .truncate = io_truncate,
                           .sync = io_sync, .save_hardstate = io_hardstate, .save_snapshot = io_snapshot,
                           .now_ms = io_now, .random = io_random};
        rn_raft_sm_t sm = {.ctx = q, .apply = sm_apply, .snapshot_take = sm_take, .snapshot_load = sm_load,
                           .role_change = sm_role};
        err = rn_raft_new(&rc, &io, &sm, &boot, &q->raft);
        rn_raft_store_boot_done(q->store);
    }
    if (!err && q->pending_sync) rn_raft_synced(q->raft, q->pending_sync);
    if (!err && pthread_create(&q->thread, NULL, driver_main, q) != 0) err = RN_ERR_NOMEM;
    if (err) {
        RN_ERROR("quorum", "node %d: starting the metadata quorum in %s failed: %s", cfg->node_id, cfg->dir,
                 rn_err_name(err));
        rn_quorum_stop(q);
        return err;
    }
    q->thread_started = true;
    RN_INFO("quorum", "node %d: metadata quorum of %d voter(s), log in %s", cfg->node_id, cfg->nvoters, cfg->dir);
    *out = q;
    return RN_OK;
}

void rn_quorum_stop(rn_quorum_t *q) {
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    if (q->thread_started) pthread_join(q->thread, NULL);
    rn_peers_free(q->peers); /* no more sends: the driver is gone */
    pthread_mutex_lock(&q->lock);
    for (prop_t **pp = &q->props; *pp;) { /* fail what is still waiting; callers free theirs */
        prop_t *p = *pp;
        if (p->state != P_DONE) {
            p->state = P_DONE;
            p->err = RN_ERR_NOT_LEADER_OR_FOLLOWER;
            p->leader_hint = RN_RAFT_NO_NODE;
        }
        if (p->abandoned) {
            *pp = p->next;
            free(p);
        } else {
            pp = &p->next;
        }
    }
    pthread_cond_broadcast(&q->cond);
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

rn_err_t rn_quorum_propose(rn_quorum_t *q, const void *data, size_t len, int64_t timeout_ms, uint64_t *index,
                           int32_t *leader_hint) {
    *index = 0;
    *leader_hint = atomic_load(&q->leader);
    if (!atomic_load(&q->is_leader)) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    prop_t *p = malloc(sizeof(*p) + len);
    if (!p) return RN_ERR_NOMEM;
    memset(p, 0, sizeof(*p));
    p->len = len;
    memcpy(p->data, data, len);
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
    while (p->state != P_DONE && rn_clock_mono_ms() < deadline) rn_cond_wait_until(&q->cond, &q->lock, deadline);
    rn_err_t err;
    if (p->state == P_DONE) {
        err = p->err;
        *index = p->index;
        *leader_hint = p->leader_hint;
        unlink_prop(q, p);
        free(p);
        pthread_cond_broadcast(&q->cond); /* rn_quorum_stop may wait for this */
    } else {
        p->abandoned = true; /* the driver frees it once its fate is known */
        err = RN_ERR_REQUEST_TIMED_OUT;
    }
    pthread_mutex_unlock(&q->lock);
    return err;
}

void rn_quorum_transfer_leadership(rn_quorum_t *q) {
    pthread_mutex_lock(&q->lock);
    q->transfer_requested = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

int32_t rn_quorum_leader(rn_quorum_t *q) { return atomic_load(&q->leader); }
bool rn_quorum_is_leader(rn_quorum_t *q) { return atomic_load(&q->is_leader); }
uint64_t rn_quorum_applied(rn_quorum_t *q) { return atomic_load(&q->applied); }
uint64_t rn_quorum_term(rn_quorum_t *q) { return atomic_load(&q->term); }
