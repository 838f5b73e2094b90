/*
 * rn_wait.c — parking requests on their loop until something happens.
 *
 * A parked rn_wait_t sits in its loop's list. Two things wake it:
 *   - a wake event (rn_broker_wake_all): posted once per loop however many
 *     appends/syncs happen meanwhile (the `wake_posted` flag coalesces them);
 *     on the loop, every wait whose sync ticket is now durable, and every wait
 *     that wants data, gets its resume() called;
 *   - its timer (fetch max wait): resume(timed_out = true).
 * resume() either completes the request and calls rn_broker_unpark(), or
 * leaves the wait parked. Everything here runs on the wait's own loop except
 * rn_broker_wake_all, which any thread may call.
 */
#include "rn_broker.h"

#include <stdlib.h>

#include "rn_assert.h"
#include "rn_cluster.h"

rn_broker_loop_t *rn_broker_loop_for(rn_broker_t *b, rn_loop_t *loop) {
    int id = rn_loop_id(loop);
    RN_ASSERT(id >= 0 && id < b->nloops);
    return &b->loops[id];
}

static void on_timer(void *arg) {
    rn_wait_t *w = arg;
    rn_broker_t *b = ((rn_broker_loop_t *)w->ctx)->broker;
    w->timer = NULL;
    w->resume(b, w, true, RN_OK);
}

void rn_broker_park(rn_broker_loop_t *bl, rn_wait_t *w, int64_t timeout_ms) {
    RN_ASSERT(w->next == NULL && w->prev == NULL);
    w->ctx = bl;
    w->prev = bl->waits.prev;
    w->next = &bl->waits;
    bl->waits.prev->next = w;
    bl->waits.prev = w;
    atomic_fetch_add(&bl->nwaits, 1);
    w->timer = NULL;
    if (timeout_ms >= 0) w->timer = rn_loop_timer_add(bl->loop, timeout_ms, on_timer, w);
}

void rn_broker_unpark(rn_broker_loop_t *bl, rn_wait_t *w) {
    if (!w->next) return;
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = NULL;
    atomic_fetch_sub(&bl->nwaits, 1);
    if (w->timer) {
        rn_loop_timer_cancel(bl->loop, w->timer);
        w->timer = NULL;
    }
}

static void on_wake(void *arg) {
    rn_broker_loop_t *bl = arg;
    atomic_store(&bl->wake_posted, false);
    rn_broker_t *b = bl->broker;
    uint64_t synced = rn_logdir_synced_ticket(b->logdir);
    rn_err_t err = rn_logdir_offline(b->logdir) ? RN_ERR_KAFKA_STORAGE_ERROR : RN_OK;
    /* Only the waits present now: resume() may complete (unpark) the current one. */
    rn_wait_t *end = bl->waits.prev;
    rn_wait_t *w = bl->waits.next;
    while (w != &bl->waits) {
        rn_wait_t *next = w->next;
        bool last = w == end;
        bool ready = w->wants_data || err || (w->sync_ticket && w->sync_ticket <= synced);
        if (ready) w->resume(b, w, false, err);
        if (last) break;
        w = next;
    }
}

void rn_broker_wake_all(rn_broker_t *b) {
    for (int i = 0; i < b->nloops; i++) {
        rn_broker_loop_t *bl = &b->loops[i];
        if (atomic_load(&bl->nwaits) == 0) continue;
        if (atomic_exchange(&bl->wake_posted, true)) continue;
        rn_loop_post(bl->loop, on_wake, bl);
    }
}

/* ---- answering once coordinator records are replicated ------------------ */

typedef struct {
    rn_req_header_t h;
    rn_encode_fn encode;
    void *resp;
    rn_fail_fn fail;
    int16_t fail_code;
} respond_t;

void rn_durable_hw(rn_durable_t *d, rn_log_t *log, int64_t target, int32_t epoch) {
    for (int32_t i = 0; i < d->n; i++) {
        if (d->hw[i].log != log) continue;
        if (d->hw[i].epoch != epoch) d->hw[i].epoch = -2; /* written under two epochs: the leadership moved */
        if (target > d->hw[i].target) d->hw[i].target = target;
        return;
    }
    if (d->n == d->cap) {
        int32_t cap = d->cap ? d->cap * 2 : 4;
        rn_hw_target_t *n = realloc(d->hw, (size_t)cap * sizeof(*n));
        if (!n) {
            d->nomem = true;
            return;
        }
        d->hw = n;
        d->cap = cap;
    }
    rn_log_retain(log);
    d->hw[d->n++] = (rn_hw_target_t){log, target, epoch};
}

void rn_durable_release(rn_durable_t *d) {
    for (int32_t i = 0; i < d->n; i++) rn_log_release(d->hw[i].log);
    free(d->hw);
    rn_durable_init(d);
}

typedef struct {
    rn_wait_t w; /* first: the wait is the context */
    rn_req_t *req;
    rn_durable_t d;
    rn_durable_fn done;
    void *ctx;
} repl_wait_t;

rn_err_t rn_durable_check(rn_broker_t *b, const rn_durable_t *d) {
    if (d->nomem) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    rn_replica_mgr_t *m = rn_cluster_replicas(b);
    bool pending = false;
    for (int32_t i = 0; i < d->n; i++) {
        const rn_hw_target_t *t = &d->hw[i];
        int32_t epoch = -1;
        if (!rn_replica_mgr_leads(m, t->log, &epoch) || epoch != t->epoch) return RN_ERR_NOT_COORDINATOR;
        if (rn_log_high_watermark(t->log) >= t->target) continue;
        if (rn_replica_mgr_check_acks_all(m, t->log) != RN_OK) return RN_ERR_COORDINATOR_NOT_AVAILABLE; /* below min.insync.replicas */
        pending = true;
    }
    return pending ? RN_ERR_AGAIN : RN_OK;
}

static rn_err_t repl_check(rn_broker_t *b, repl_wait_t *rw) { return rn_durable_check(b, &rw->d); }

static void repl_finish(rn_broker_t *b, repl_wait_t *rw, rn_err_t err) {
    rn_durable_release(&rw->d);
    rw->done(b, rw->req, rw->ctx, err);
}

static void repl_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    repl_wait_t *rw = (repl_wait_t *)w;
    rn_err_t rc = timed_out || err ? RN_ERR_COORDINATOR_NOT_AVAILABLE : repl_check(b, rw);
    if (rc == RN_ERR_AGAIN) return; /* stay parked */
    rn_broker_unpark(w->ctx, w);
    repl_finish(b, rw, rc);
}

void rn_broker_when_replicated(rn_broker_t *b, rn_req_t *req, rn_durable_t *d, int64_t timeout_ms, rn_durable_fn done,
                               void *ctx) {
    repl_wait_t *rw = rn_arena_calloc(&req->arena, 1, sizeof(*rw));
    if (!rw) {
        rn_durable_release(d);
        done(b, req, ctx, RN_ERR_LIMIT);
        return;
    }
    rw->req = req;
    rw->d = *d;
    rn_durable_init(d);
    rw->done = done;
    rw->ctx = ctx;
    rn_err_t rc = repl_check(b, rw);
    if (rc != RN_ERR_AGAIN) {
        repl_finish(b, rw, rc);
        return;
    }
    rw->w.wants_data = true; /* high watermark moves and leadership changes wake data waiters */
    rw->w.resume = repl_resume;
    rn_broker_park(rn_broker_loop_for(b, req->loop), &rw->w, timeout_ms);
    repl_resume(b, &rw->w, false, RN_OK); /* it may have moved before the park */
}

static void respond_replicated_done(rn_broker_t *b, rn_req_t *req, void *ctx, rn_err_t err) {
    respond_t *r = ctx;
    if (err) r->fail(r->resp, err == RN_ERR_NOT_COORDINATOR ? RN_ERR_NOT_COORDINATOR : r->fail_code);
    rn_broker_respond(b, req, &r->h, r->encode, r->resp);
}

void rn_broker_respond_replicated(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_durable_t *d,
                                  int64_t timeout_ms, rn_encode_fn encode, void *resp, rn_fail_fn fail,
                                  int16_t fail_code) {
    respond_t *r = rn_arena_calloc(&req->arena, 1, sizeof(*r));
    if (!r) {
        rn_durable_release(d);
        fail(resp, fail_code);
        rn_broker_respond(b, req, h, encode, resp);
        return;
    }
    *r = (respond_t){*h, encode, resp, fail, fail_code};
    rn_broker_when_replicated(b, req, d, timeout_ms, respond_replicated_done, r);
}
