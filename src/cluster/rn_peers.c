/*
 * rn_peers.c — per-peer sender threads for one-way node-to-node messages
 * (see rn_peers.h).
 */
#include "rn_peers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_bytes.h"
#include "rn_client.h"
#include "rn_clock.h"
#include "rn_cond.h"
#include "rn_logging.h"

typedef struct qmsg {
    struct qmsg *next;
    size_t len;
    uint8_t data[];
} qmsg_t;

typedef struct peer {
    rn_peers_t *owner;
    int32_t id;
    char host[256];
    int port;
    bool address_changed;
    qmsg_t *head, *tail;
    int32_t count;
    size_t bytes;
    pthread_t thread;
    rn_client_t *client;
    struct peer *next;
} peer_t;

struct rn_peers {
    rn_peers_config_t cfg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    peer_t *peers;
    bool stopping;
    atomic_uint_fast64_t dropped;
};

rn_err_t rn_peers_new(const rn_peers_config_t *cfg, rn_peers_t **out) {
    rn_peers_t *p = calloc(1, sizeof(*p));
    if (!p) return RN_ERR_NOMEM;
    p->cfg = *cfg;
    if (p->cfg.queue_max <= 0) p->cfg.queue_max = 1024;
    if (!p->cfg.queue_max_bytes) p->cfg.queue_max_bytes = (size_t)64 << 20;
    if (!p->cfg.batch_max_bytes) p->cfg.batch_max_bytes = (size_t)8 << 20;
    if (p->cfg.timeout_ms <= 0) p->cfg.timeout_ms = 5000;
    pthread_mutex_init(&p->lock, NULL);
    rn_cond_init_mono(&p->cond);
    *out = p;
    return RN_OK;
}

static void timed_wait(rn_peers_t *p, int64_t ms) { rn_cond_wait_until(&p->cond, &p->lock, rn_clock_mono_ms() + ms); }

/* Takes a batch off the queue into body (lock held); returns how many messages. */
static int32_t take_batch(rn_peers_t *p, peer_t *pe, rn_buf_t *body) {
    rn_buf_reset(body);
    rn_buf_put_u32(body, 0);
    int32_t n = 0;
    while (pe->head && (n == 0 || body->len + pe->head->len + 4 <= p->cfg.batch_max_bytes)) {
        qmsg_t *m = pe->head;
        pe->head = m->next;
        if (!pe->head) pe->tail = NULL;
        pe->count--;
        pe->bytes -= m->len;
        rn_buf_put_u32(body, (uint32_t)m->len);
        rn_buf_put(body, m->data, m->len);
        free(m);
        n++;
    }
    rn_buf_patch_u32(body, 0, (uint32_t)n);
    return n;
}

static void *sender_main(void *arg) {
    peer_t *pe = arg;
    rn_peers_t *p = pe->owner;
    rn_buf_t body, resp;
    rn_buf_init(&body, p->cfg.batch_max_bytes + (1 << 20));
    rn_buf_init(&resp, 1 << 20);
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        if (!pe->head) {
            timed_wait(p, 1000);
            continue;
        }
        if (pe->address_changed && pe->client) { /* closing only: fine under the lock */
            rn_client_free(pe->client);
            pe->client = NULL;
        }
        if (!pe->client) {
            rn_client_config_t cc = {.host = pe->host, .port = pe->port, .client_id = "runnel-peer",
                                     .timeout_ms = p->cfg.timeout_ms, .max_response_bytes = 1 << 20};
            if (rn_client_new(&cc, &pe->client) != RN_OK) {
                timed_wait(p, 100);
                continue;
            }
            pe->address_changed = false;
        }
        int32_t n = take_batch(p, pe, &body);
        rn_client_t *c = pe->client;
        pthread_mutex_unlock(&p->lock);
        rn_err_t err = rn_buf_err(&body) ? rn_buf_err(&body) : rn_client_call(c, p->cfg.api_key, 0, &body, &resp);
        pthread_mutex_lock(&p->lock);
        if (err) {
            atomic_fetch_add(&p->dropped, (uint64_t)n);
            if (!p->stopping) timed_wait(p, 50); /* peer down: don't spin; Raft resends */
        }
    }
    pthread_mutex_unlock(&p->lock);
    rn_buf_free(&body);
    rn_buf_free(&resp);
    return NULL;
}

rn_err_t rn_peers_set(rn_peers_t *p, int32_t id, const char *host, int port) {
    if (id == p->cfg.self) return RN_OK;
    pthread_mutex_lock(&p->lock);
    peer_t *pe = p->peers;
    while (pe && pe->id != id) pe = pe->next;
    if (pe) {
        if (strcmp(pe->host, host) != 0 || pe->port != port) {
            snprintf(pe->host, sizeof(pe->host), "%s", host);
            pe->port = port;
            pe->address_changed = true;
        }
        pthread_mutex_unlock(&p->lock);
        return RN_OK;
    }
    pe = calloc(1, sizeof(*pe));
    if (!pe) {
        pthread_mutex_unlock(&p->lock);
        return RN_ERR_NOMEM;
    }
    pe->owner = p;
    pe->id = id;
    snprintf(pe->host, sizeof(pe->host), "%s", host);
    pe->port = port;
    if (pthread_create(&pe->thread, NULL, sender_main, pe) != 0) {
        free(pe);
        pthread_mutex_unlock(&p->lock);
        return RN_ERR_NOMEM;
    }
    pe->next = p->peers;
    p->peers = pe;
    pthread_mutex_unlock(&p->lock);
    return RN_OK;
}

bool rn_peers_send(rn_peers_t *p, int32_t to, const void *msg, size_t len) {
    qmsg_t *m = malloc(sizeof(*m) + len);
    if (!m) return false;
    m->next = NULL;
    m->len = len;
    memcpy(m->data, msg, len);
    pthread_mutex_lock(&p->lock);
    peer_t *pe = p->peers;
    while (pe && pe->id != to) pe = pe->next;
    if (!pe || p->stopping || pe->count >= p->cfg.queue_max || pe->bytes + len > p->cfg.queue_max_bytes) {
        pthread_mutex_unlock(&p->lock);
        free(m);
        atomic_fetch_add(&p->dropped, 1);
        return false;
    }
    if (pe->tail) pe->tail->next = m;
    else pe->head = m;
    pe->tail = m;
    pe->count++;
    pe->bytes += len;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return true;
}

uint64_t rn_peers_dropped(const rn_peers_t *p) { return atomic_load(&p->dropped); }

void rn_peers_free(rn_peers_t *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    for (peer_t *pe = p->peers; pe; pe = pe->next)
        if (pe->client) rn_client_interrupt(pe->client);
    pthread_mutex_unlock(&p->lock);
    while (p->peers) {
        peer_t *pe = p->peers;
        p->peers = pe->next;
        pthread_join(pe->thread, NULL);
        while (pe->head) {
            qmsg_t *m = pe->head;
            pe->head = m->next;
            free(m);
        }
        rn_client_free(pe->client);
        free(pe);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

rn_err_t rn_peers_each(const uint8_t *body, size_t len, void (*fn)(void *arg, const uint8_t *msg, size_t len),
                       void *arg) {
    rn_reader_t r;
    rn_reader_init(&r, body, len);
    uint32_t n = rn_reader_u32(&r);
    for (uint32_t i = 0; i < n && !rn_reader_err(&r); i++) { /* check the whole body before delivering */
        uint32_t l = rn_reader_u32(&r);
        rn_reader_skip(&r, l);
    }
    if (rn_reader_err(&r) || rn_reader_remaining(&r) != 0) return RN_ERR_MALFORMED;
    rn_reader_init(&r, body, len);
    n = rn_reader_u32(&r);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = rn_reader_u32(&r);
        const uint8_t *m = rn_reader_take(&r, l);
        fn(arg, m, l);
    }
    return RN_OK;
}
