/*
 * rn_meta_feed.c — the tail of the applied metadata log and the wire format
 * broker-only nodes read it with (see rn_meta_feed.h).
 *
 * The feed is a FIFO of copied entries under its own mutex: appended on the
 * quorum's thread, read on network threads.
 */
#include "rn_meta_feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct ent {
    struct ent *next;
    uint64_t index;
    size_t len;
    uint8_t data[];
} ent_t;

struct rn_meta_feed {
    pthread_mutex_t lock;
    size_t max_bytes, bytes;
    uint64_t base, last; /* holds every entry in (base, last] */
    ent_t *head, *tail;
};

rn_meta_feed_t *rn_meta_feed_new(size_t max_bytes) {
    rn_meta_feed_t *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    pthread_mutex_init(&f->lock, NULL);
    f->max_bytes = max_bytes;
    return f;
}

static void drop_all(rn_meta_feed_t *f) {
    while (f->head) {
        ent_t *e = f->head;
        f->head = e->next;
        free(e);
    }
    f->tail = NULL;
    f->bytes = 0;
}

void rn_meta_feed_free(rn_meta_feed_t *f) {
    if (!f) return;
    drop_all(f);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void rn_meta_feed_reset(rn_meta_feed_t *f, uint64_t base) {
    pthread_mutex_lock(&f->lock);
    drop_all(f);
    f->base = f->last = base;
    pthread_mutex_unlock(&f->lock);
}

void rn_meta_feed_append(rn_meta_feed_t *f, uint64_t index, const uint8_t *data, size_t len) {
    ent_t *e = malloc(sizeof(*e) + len);
    pthread_mutex_lock(&f->lock);
    if (index <= f->last) { /* never happens: the quorum applies in order */
        pthread_mutex_unlock(&f->lock);
        free(e);
        return;
    }
    if (!e) { /* out of memory: a gap — forget what came before, requesters get a snapshot */
        drop_all(f);
        f->base = f->last = index;
        pthread_mutex_unlock(&f->lock);
        return;
    }
    e->next = NULL;
    e->index = index;
    e->len = len;
    memcpy(e->data, data, len);
    if (f->tail) f->tail->next = e;
    else f->head = e;
    f->tail = e;
    f->bytes += len + 12;
    f->last = index;
    while (f->bytes > f->max_bytes && f->head != f->tail) {
        ent_t *old = f->head;
        f->head = old->next;
        f->bytes -= old->len + 12;
        f->base = old->index; /* everything up to it is gone */
        free(old);
    }
    pthread_mutex_unlock(&f->lock);
}

uint64_t rn_meta_feed_last(rn_meta_feed_t *f) {
    pthread_mutex_lock(&f->lock);
    uint64_t v = f->last;
    pthread_mutex_unlock(&f->lock);
    return v;
}

bool rn_meta_feed_covers(rn_meta_feed_t *f, uint64_t from) {
    pthread_mutex_lock(&f->lock);
    bool ok = from >= f->base;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

bool rn_meta_feed_read(rn_meta_feed_t *f, uint64_t from, size_t max_bytes, rn_buf_t *out) {
    pthread_mutex_lock(&f->lock);
    if (from < f->base) {
        pthread_mutex_unlock(&f->lock);
        return false;
    }
    size_t count_pos = rn_buf_put_u32(out, 0);
    uint32_t count = 0;
    size_t bytes = 0;
    for (ent_t *e = f->head; e; e = e->next) {
        if (e->index <= from) continue;
        if (count > 0 && bytes + e->len + 12 > max_bytes) break;
        rn_buf_put_i64(out, (int64_t)e->index);
        rn_buf_put_u32(out, (uint32_t)e->len);
        rn_buf_put(out, e->data, e->len);
        bytes += e->len + 12;
        count++;
    }
    pthread_mutex_unlock(&f->lock);
    rn_buf_patch_u32(out, count_pos, count);
    return true;
}

/* ---- wire ---- */

void rn_meta_feed_req_encode(rn_buf_t *out, const rn_meta_feed_req_t *rq) {
    rn_buf_put_i32(out, rq->node_id);
    rn_buf_put_i64(out, rq->from);
    rn_buf_put_i32(out, rq->max_wait_ms);
    rn_buf_put_i32(out, rq->max_bytes);
}

rn_err_t rn_meta_feed_req_decode(const uint8_t *p, size_t len, rn_meta_feed_req_t *rq) {
    rn_reader_t r;
    rn_reader_init(&r, p, len);
    rq->node_id = rn_reader_i32(&r);
    rq->from = rn_reader_i64(&r);
    rq->max_wait_ms = rn_reader_i32(&r);
    rq->max_bytes = rn_reader_i32(&r);
    if (rn_reader_err(&r) || rn_reader_remaining(&r) || rq->from < 0) return RN_ERR_MALFORMED;
    return RN_OK;
}

static void put_short_str(rn_buf_t *out, const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n > UINT16_MAX) n = UINT16_MAX;
    rn_buf_put_u16(out, (uint16_t)n);
    rn_buf_put(out, s ? s : "", n);
}

void rn_meta_feed_resp_header_encode(rn_buf_t *out, int16_t error, int32_t leader_id, const char *leader_host,
                                     int32_t leader_port, const char *cluster_id, uint8_t kind) {
    rn_buf_put_i16(out, error);
    rn_buf_put_i32(out, leader_id);
    put_short_str(out, leader_host);
    rn_buf_put_i32(out, leader_port);
    put_short_str(out, cluster_id);
    rn_buf_put_i8(out, (int8_t)kind);
}

static rn_str_t get_short_str(rn_reader_t *r) {
    uint16_t n = rn_reader_u16(r);
    const uint8_t *p = rn_reader_take(r, n);
    return p ? (rn_str_t){(const char *)p, n} : (rn_str_t){"", 0};
}

rn_err_t rn_meta_feed_resp_decode(const uint8_t *p, size_t len, uint64_t from, rn_meta_feed_resp_t *resp) {
    memset(resp, 0, sizeof(*resp));
    rn_reader_t r;
    rn_reader_init(&r, p, len);
    resp->error = rn_reader_i16(&r);
    resp->leader_id = rn_reader_i32(&r);
    resp->leader_host = get_short_str(&r);
    resp->leader_port = rn_reader_i32(&r);
    resp->cluster_id = get_short_str(&r);
    resp->kind = (uint8_t)rn_reader_i8(&r);
    if (rn_reader_err(&r)) return RN_ERR_MALFORMED;
    if (resp->error) return rn_reader_remaining(&r) ? RN_ERR_MALFORMED : RN_OK;
    if (resp->kind == RN_META_FEED_KIND_SNAPSHOT) {
        resp->snapshot_index = (uint64_t)rn_reader_i64(&r);
        uint32_t n = rn_reader_u32(&r);
        resp->snapshot = rn_reader_take(&r, n);
        resp->snapshot_len = n;
        if (rn_reader_err(&r) || rn_reader_remaining(&r) || resp->snapshot_index > INT64_MAX) return RN_ERR_MALFORMED;
        return RN_OK;
    }
    if (resp->kind != RN_META_FEED_KIND_ENTRIES) return RN_ERR_MALFORMED;
    resp->count = rn_reader_u32(&r);
    resp->entries = p + r.pos;
    uint64_t prev = from;
    for (uint32_t i = 0; i < resp->count && !rn_reader_err(&r); i++) {
        uint64_t index = (uint64_t)rn_reader_i64(&r);
        uint32_t n = rn_reader_u32(&r);
        rn_reader_skip(&r, n);
        if (index <= prev || index > INT64_MAX) return RN_ERR_MALFORMED;
        prev = index;
    }
    if (rn_reader_err(&r) || rn_reader_remaining(&r)) return RN_ERR_MALFORMED;
    resp->entries_len = (size_t)(p + r.pos - resp->entries);
    return RN_OK;
}

bool rn_meta_feed_resp_next(const rn_meta_feed_resp_t *resp, size_t *pos, uint64_t *index, const uint8_t **data,
                            size_t *len) {
    if (*pos + 12 > resp->entries_len) return false;
    rn_reader_t r;
    rn_reader_init(&r, resp->entries + *pos, resp->entries_len - *pos);
    *index = (uint64_t)rn_reader_i64(&r);
    uint32_t n = rn_reader_u32(&r);
    *data = rn_reader_take(&r, n);
    *len = n;
    if (rn_reader_err(&r)) return false;
    *pos += 12 + n;
    return true;
}
