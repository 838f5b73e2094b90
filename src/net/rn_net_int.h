/*
 * rn_net_int.h — what rn_net.c (listeners, threads, lifecycle) and rn_conn.c
 * (one connection: framing, response queue, writes) share. Not a public header.
 */
#ifndef RN_NET_INT_H
#define RN_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "rn_net.h"

#define RN_NET_RBUF_BYTES (64 * 1024) /* per-loop read buffer, shared by its connections */

/*
 * Counters are per loop and written only by that loop's thread, so an update is
 * a relaxed load + store (no locked instruction); rn_net_stats sums them.
 */
typedef struct {
    _Atomic uint64_t connections_open, connections_total, connections_refused;
    _Atomic uint64_t bytes_in, bytes_out, requests, requests_pending, closed_bad_input;
    _Atomic uint64_t bytes_queued, bytes_queued_conn_peak;
} rn__net_stats_t;

static inline void rn__stat_add(_Atomic uint64_t *s, uint64_t v) {
    atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + v, memory_order_relaxed);
}
static inline void rn__stat_sub(_Atomic uint64_t *s, uint64_t v) {
    atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) - v, memory_order_relaxed);
}
static inline void rn__stat_max(_Atomic uint64_t *s, uint64_t v) {
    if (v > atomic_load_explicit(s, memory_order_relaxed)) atomic_store_explicit(s, v, memory_order_relaxed);
}

typedef struct rn__worker {
    rn_net_t *net;
    int index;
    rn_loop_t *loop;
    int listen_fds[RN_NET_LISTENERS_MAX]; /* one per listener (-1: none) */
    pthread_t thread;
    bool thread_started;
    bool stopping;  /* shutdown began: no accepting, no reading */
    bool abandoned; /* stop timed out with reqs still pending: leak, never free */
    uint8_t *rbuf;  /* RN_NET_RBUF_BYTES */
    rn_conn_t *conns; /* open connections (doubly linked) */
    int pending;      /* reqs with the handler, over all connections (incl. orphans) */
    rn_timer_t *tick_timer, *accept_timer, *drain_timer;
    rn__net_stats_t stats;
} rn__worker_t;

struct rn_net {
    rn_net_config_t cfg;
    char host[RN_NET_LISTENERS_MAX][256];
    rn_net_handler_t handler;
    int nlisteners;
    int ports[RN_NET_LISTENERS_MAX];
    int nworkers;
    rn__worker_t *workers;
    atomic_int conns_open; /* over all loops, for max_connections */
    bool started, stopped;
};

/* rn_conn.c */
void rn__conn_accept(rn__worker_t *w, int fd, int listener, const struct sockaddr *sa, socklen_t salen);
void rn__conn_close_all(rn__worker_t *w, const char *why);
void rn__conn_idle_scan(rn__worker_t *w);

/* rn_net.c: the last pending req of a stopping worker completed. */
void rn__worker_drained(rn__worker_t *w);

#endif
