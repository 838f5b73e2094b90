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

#include "rn_assert.h"

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

/* ---- answering once appended records are durable ------------------------ */

typedef struct {
    rn_wait_t w; /* first: the wait is the context */
    rn_req_t *req;
    rn_durable_fn done;
    void *ctx;
} durable_t;

static void durable_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    durable_t *d = (durable_t *)w;
    rn_broker_unpark(w->ctx, w);
    d->done(b, d->req, d->ctx, timed_out ? RN_ERR_REQUEST_TIMED_OUT : err);
}

void rn_broker_when_durable(rn_broker_t *b, rn_req_t *req, uint64_t ticket, int64_t timeout_ms, rn_durable_fn done,
                            void *ctx) {
    rn_logdir_t *dir = b->logdir;
    if (!ticket || rn_logdir_synced_ticket(dir) >= ticket || rn_logdir_offline(dir)) {
        done(b, req, ctx, ticket && rn_logdir_offline(dir) ? RN_ERR_KAFKA_STORAGE_ERROR : RN_OK);
        return;
    }
    durable_t *d = rn_arena_calloc(&req->arena, 1, sizeof(*d));
    if (!d) {
        done(b, req, ctx, RN_ERR_LIMIT);
        return;
    }
    d->req = req;
    d->done = done;
    d->ctx = ctx;
    d->w.sync_ticket = ticket;
    d->w.resume = durable_resume;
    rn_broker_park(rn_broker_loop_for(b, req->loop), &d->w, timeout_ms);
    /* The flusher may have published the ticket between the check and the park. */
    if (rn_logdir_synced_ticket(dir) >= ticket || rn_logdir_offline(dir))
        durable_resume(b, &d->w, false, rn_logdir_offline(dir) ? RN_ERR_KAFKA_STORAGE_ERROR : RN_OK);
}

typedef struct {
    rn_req_header_t h;
    rn_encode_fn encode;
    void *resp;
    rn_fail_fn fail;
    int16_t fail_code;
} respond_t;

static void respond_done(rn_broker_t *b, rn_req_t *req, void *ctx, rn_err_t err) {
    respond_t *r = ctx;
    if (err) r->fail(r->resp, r->fail_code);
    rn_broker_respond(b, req, &r->h, r->encode, r->resp);
}

void rn_broker_respond_durable(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, uint64_t ticket,
                               int64_t timeout_ms, rn_encode_fn encode, void *resp, rn_fail_fn fail,
                               int16_t fail_code) {
    respond_t *r = rn_arena_calloc(&req->arena, 1, sizeof(*r));
    if (!r) {
        fail(resp, fail_code);
        rn_broker_respond(b, req, h, encode, resp);
        return;
    }
    *r = (respond_t){*h, encode, resp, fail, fail_code};
    rn_broker_when_durable(b, req, ticket, timeout_ms, respond_done, r);
}
