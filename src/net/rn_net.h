/*
 * rn_net.h — the Kafka network server: listeners, connections, framing.
 *
 * N network threads, each an rn_loop with its own SO_REUSEPORT listening socket
 * (the kernel spreads connections). A connection reads 4-byte big-endian size
 * frames; a size <= 0 or above `socket.request.max.bytes` is refused before any
 * allocation (logged, connection closed). Each complete frame becomes an rn_req_t
 * handed to the handler on the connection's loop. Many requests may be in flight
 * per connection; responses are sent strictly in request order, whatever order
 * they complete in. When unsent response bytes pass `queued_max_bytes` (or
 * in-flight requests pass `inflight_max`) the connection stops reading until
 * they drain (back-pressure). Idle connections (no request, nothing in flight)
 * are closed after `idle_ms`.
 *
 * Responses are rn_buf_t: memory plus file splices, sent with writev and
 * sendfile. The net layer prepends the 4-byte size.
 *
 * Config: a field left 0 takes its default — request_max_bytes 104857600,
 * queued_max_bytes 16 MiB, inflight_max 128, idle_ms 600000 (negative: never),
 * arena_max_bytes 64 MiB, threads 1, stop_timeout_ms 30000. Memory bound per
 * connection: a frame being read (<= request_max_bytes), at most 64 KiB of
 * bytes read past a pause, and queued responses up to queued_max_bytes plus
 * whatever the (at most inflight_max) requests already with the handler add.
 * Idle means: no request with the handler and no byte read or written for
 * idle_ms — so a client that stops reading its responses is also closed.
 *
 * Shutdown (rn_net_stop), per loop, on the loop's thread:
 *   1. the listener and every connection are closed; requests still with the
 *      handler become orphans: completing them (rn_req_respond, ..._close,
 *      ..._no_response) is still required and just frees them;
 *   2. handler.on_stop(ctx, loop) is called, if set: the handler should now
 *      complete (or drop with rn_req_no_response) every req it holds for this
 *      loop and cancel its own timers on it;
 *   3. the loop keeps running — timers and rn_loop_post still work, so a
 *      completion from another thread can still arrive — until the last req
 *      of the loop is completed; then the loop ends and rn_net_stop joins it.
 *      Past stop_timeout_ms it gives up: logs an error and ends the loop; the
 *      orphans then stay allocated forever and must never be completed.
 * After rn_net_stop returns, no handler callback runs; posts and timers left
 * on the loops are freed by rn_net_free without being called. rn_net_stop
 * must not be called from a network thread.
 */
#ifndef RN_NET_H
#define RN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_arena.h"
#include "rn_bytes.h"
#include "rn_err.h"
#include "rn_loop.h"

typedef struct rn_net rn_net_t;
typedef struct rn_conn rn_conn_t;

typedef struct rn_req {
    rn_conn_t *conn;       /* owning connection (kept alive until the req completes) */
    rn_loop_t *loop;       /* the connection's loop: complete the req on this thread */
    uint64_t seq;          /* per-connection request number */
    const uint8_t *frame;  /* request bytes after the size prefix; valid until completion */
    size_t frame_len;
    rn_arena_t arena;      /* request-scoped memory, freed at completion */
    int64_t received_ns;   /* monotonic time the frame was complete (the loop
                            * iteration's cached clock: no syscall per request) */
    void *user;            /* for the handler */
} rn_req_t;

typedef struct {
    /* Called on the connection's loop for each complete frame. The handler must
     * eventually call exactly one of rn_req_respond / rn_req_no_response /
     * rn_req_close, on that same loop. It may do so before returning. */
    void (*on_request)(void *ctx, rn_req_t *req);
    void *ctx;
    /* Optional. Called once per loop, on that loop, during rn_net_stop, after
     * the loop's listener and connections are closed (see "Shutdown" below). */
    void (*on_stop)(void *ctx, rn_loop_t *loop);
} rn_net_handler_t;

#define RN_NET_LISTENERS_MAX 4

typedef struct {
    const char *host;
    int port; /* 0: pick a free port */
} rn_net_listen_t;

typedef struct {
    const char *host;          /* e.g. "127.0.0.1" or "0.0.0.0" */
    int port;                  /* 0: pick a free port (see rn_net_port) */
    /* More listeners (e.g. a controller listener): every network thread
     * accepts on each, and their connections are served alike. */
    int nextra;
    rn_net_listen_t extra[RN_NET_LISTENERS_MAX - 1];
    int threads;               /* network threads (loops) */
    size_t request_max_bytes;  /* socket.request.max.bytes */
    size_t queued_max_bytes;   /* unsent response bytes before reads pause */
    int inflight_max;          /* requests in flight before reads pause */
    int64_t idle_ms;           /* connections.max.idle.ms */
    size_t arena_max_bytes;    /* per-request arena bound */
    int max_connections;       /* 0: unlimited */
    int64_t stop_timeout_ms;   /* rn_net_stop waits this long for pending reqs */
} rn_net_config_t;

rn_err_t rn_net_new(rn_net_t **out, const rn_net_config_t *cfg, rn_net_handler_t handler);
int rn_net_port(const rn_net_t *net);       /* bound port */
int rn_net_listener_port(const rn_net_t *net, int i); /* 0: the main listener, 1..nextra the extra ones */
rn_err_t rn_net_start(rn_net_t *net);       /* starts the threads */
void rn_net_stop(rn_net_t *net);            /* stops loops, joins threads, closes connections */
void rn_net_free(rn_net_t *net);
int rn_net_threads(const rn_net_t *net);
rn_loop_t *rn_net_loop(rn_net_t *net, int i);

/* Completion (loop thread only). `resp` is the response without the size
 * prefix; its contents (memory and splices) are taken over and the buf is left
 * empty. Safe to call after the connection closed: the response is dropped. */
void rn_req_respond(rn_req_t *req, rn_buf_t *resp);
void rn_req_no_response(rn_req_t *req);             /* e.g. acks=0 produce */
void rn_req_close(rn_req_t *req, const char *why);  /* logs why, closes the connection */

/* The listener the request's connection came in on: 0 the main one, 1.. the extra ones. */
int rn_req_listener(const rn_req_t *req);
/* Peer address as text, e.g. "127.0.0.1:53412" (for logs). */
const char *rn_conn_peer(const rn_conn_t *conn);
/* True once the connection is closed: the req's response will be dropped, so
 * a handler may skip expensive work (loop thread only). */
bool rn_req_orphaned(const rn_req_t *req);
/* Connection statistics for metrics (sums over the loops, read without locks). */
typedef struct {
    uint64_t connections_open, connections_total, bytes_in, bytes_out, requests, closed_bad_input;
    uint64_t connections_refused;    /* beyond max_connections */
    uint64_t requests_pending;       /* with the handler now */
    uint64_t bytes_queued;           /* response bytes waiting to be written now */
    uint64_t bytes_queued_conn_peak; /* most bytes ever queued on one connection */
} rn_net_stats_t;
void rn_net_stats(const rn_net_t *net, rn_net_stats_t *out);

#endif
