/*
 * rn_net.c — the server: one worker per network thread, each with its own loop
 * and its own SO_REUSEPORT listening socket per listener (the Kafka listener,
 * and e.g. a controller listener), so the kernel spreads incoming connections
 * and no lock is shared on the accept or request path.
 *
 * rn_net_new binds every listener (the first picks the port when 0 is asked,
 * the rest bind the same one) so rn_net_port works before rn_net_start.
 * Everything a worker does — accept, connections, its idle tick, shutdown —
 * runs on its loop's thread. The only cross-thread state is the total number
 * of open connections (max_connections) and the per-loop counters.
 *
 * Shutdown, as rn_net.h states it: rn_net_stop posts worker_shutdown to every
 * loop; each closes its listener and connections, tells the handler
 * (on_stop), then waits on its own loop for its pending requests to be
 * completed (rn__worker_drained) or for stop_timeout_ms, and stops; then the
 * threads are joined.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_logging.h"
#include "rn_net_int.h"

#define RN_NET_BACKLOG 1024
#define RN_NET_ACCEPTS_PER_EVENT 64
#define RN_NET_ACCEPT_RETRY_MS 100

/* ---- listening sockets ---- */

static int listen_on(const char *host, int port, int *bound_port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (rc != 0) {
        RN_ERROR("net", "cannot resolve listen address %s:%d: %s", host ? host : "*", port, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, RN_NET_BACKLOG) < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        RN_ERROR("net", "cannot listen on %s:%d: %s", host ? host : "*", port, strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        RN_ERROR("net", "getsockname() failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* ---- accepting ---- */

static void worker_on_accept(void *arg, int fd, int events);

static void worker_accept_resume(void *arg) {
    rn__worker_t *w = arg;
    w->accept_timer = NULL;
    for (int i = 0; !w->stopping && i < w->net->nlisteners; i++)
        if (w->listen_fds[i] >= 0) rn_loop_modify(w->loop, w->listen_fds[i], RN_LOOP_READ);
}

static void worker_on_accept(void *arg, int fd, int events) {
    rn__worker_t *w = arg;
    rn_net_t *net = w->net;
    for (int i = 0; i < RN_NET_ACCEPTS_PER_EVENT && !w->stopping; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) return;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
            /* Out of fds or memory: the listener stays readable, so a
             * level-triggered loop would spin. Pause accepting for a while. */
            RN_ERROR("net", "loop %d: accept4() failed: %s; pausing accepts for %d ms", w->index, strerror(err),
                     RN_NET_ACCEPT_RETRY_MS);
            if (!w->accept_timer) {
                w->accept_timer = rn_loop_timer_add(w->loop, RN_NET_ACCEPT_RETRY_MS, worker_accept_resume, w);
                if (w->accept_timer) rn_loop_modify(w->loop, fd, 0);
            }
            return;
        }
        int open = atomic_fetch_add_explicit(&net->conns_open, 1, memory_order_relaxed);
        if (net->cfg.max_connections > 0 && open >= net->cfg.max_connections) {
            atomic_fetch_sub_explicit(&net->conns_open, 1, memory_order_relaxed);
            rn__stat_add(&w->stats.connections_refused, 1);
            close(cfd);
            RN_INFO("net", "refusing a connection: %d connections open (max.connections %d)", open,
                    net->cfg.max_connections);
            continue;
        }
        int one = 1;
        if (setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
            RN_DEBUG("net", "setsockopt(TCP_NODELAY) failed: %s", strerror(errno));
        int listener = 0;
        for (int k = 0; k < net->nlisteners; k++)
            if (w->listen_fds[k] == fd) listener = k;
        rn__conn_accept(w, cfd, listener, (struct sockaddr *)&ss, len);
    }
}

/* ---- per-worker timers and lifecycle (on the worker's loop) ---- */

static int64_t tick_period_ms(const rn_net_t *net) {
    int64_t p = net->cfg.idle_ms / 2;
    return p < 10 ? 10 : p > 1000 ? 1000 : p;
}

static void worker_tick(void *arg) {
    rn__worker_t *w = arg;
    w->tick_timer = NULL;
    if (w->stopping) return;
    rn__conn_idle_scan(w);
    w->tick_timer = rn_loop_timer_add(w->loop, tick_period_ms(w->net), worker_tick, w);
    if (!w->tick_timer) RN_ERROR("net", "loop %d: out of memory: idle connections will not be closed", w->index);
}

static void worker_begin(void *arg) {
    rn__worker_t *w = arg;
    if (w->stopping) return;
    for (int i = 0; i < w->net->nlisteners; i++)
        if (rn_loop_watch(w->loop, w->listen_fds[i], RN_LOOP_READ, worker_on_accept, w) != RN_OK)
            RN_ERROR("net", "loop %d: cannot watch listening socket %d; this thread accepts nothing there", w->index, i);
    if (w->net->cfg.idle_ms > 0) worker_tick(w);
}

void rn__worker_drained(rn__worker_t *w) {
    RN_ASSERT(w->stopping && w->pending == 0);
    if (w->drain_timer) {
        rn_loop_timer_cancel(w->loop, w->drain_timer);
        w->drain_timer = NULL;
    }
    rn_loop_stop(w->loop);
}

static void worker_drain_timeout(void *arg) {
    rn__worker_t *w = arg;
    w->drain_timer = NULL;
    RN_ERROR("net", "loop %d: %d requests still with the handler %" PRId64 " ms after shutdown began; abandoning them",
             w->index, w->pending, w->net->cfg.stop_timeout_ms);
    w->abandoned = true;
    rn_loop_stop(w->loop);
}

static void worker_shutdown(void *arg) {
    rn__worker_t *w = arg;
    rn_net_t *net = w->net;
    w->stopping = true;
    for (int i = 0; i < net->nlisteners; i++) {
        if (w->listen_fds[i] < 0) continue;
        rn_loop_unwatch(w->loop, w->listen_fds[i]);
        close(w->listen_fds[i]);
        w->listen_fds[i] = -1;
    }
    if (w->tick_timer) rn_loop_timer_cancel(w->loop, w->tick_timer);
    if (w->accept_timer) rn_loop_timer_cancel(w->loop, w->accept_timer);
    w->tick_timer = w->accept_timer = NULL;
    rn__conn_close_all(w, "server shutting down");
    if (net->handler.on_stop) net->handler.on_stop(net->handler.ctx, w->loop);
    if (w->pending == 0) {
        rn_loop_stop(w->loop);
        return;
    }
    w->drain_timer = rn_loop_timer_add(w->loop, net->cfg.stop_timeout_ms, worker_drain_timeout, w);
    RN_ASSERT(w->drain_timer != NULL);
}

static void *worker_main(void *arg) {
    rn__worker_t *w = arg;
    rn_loop_run(w->loop);
    return NULL;
}

/* ---- public API ---- */

static void config_defaults(rn_net_config_t *c) {
    if (c->threads <= 0) c->threads = 1;
    if (c->request_max_bytes == 0) c->request_max_bytes = 104857600;
    if (c->request_max_bytes > INT32_MAX) c->request_max_bytes = INT32_MAX;
    if (c->queued_max_bytes == 0) c->queued_max_bytes = 16u << 20;
    if (c->inflight_max <= 0) c->inflight_max = 128;
    if (c->idle_ms == 0) c->idle_ms = 600000;
    if (c->arena_max_bytes == 0) c->arena_max_bytes = 64u << 20;
    if (c->stop_timeout_ms <= 0) c->stop_timeout_ms = 30000;
}

rn_err_t rn_net_new(rn_net_t **out, const rn_net_config_t *cfg, rn_net_handler_t handler) {
    *out = NULL;
    RN_ASSERT(handler.on_request != NULL);
    /* writev/sendfile on a socket the peer reset would raise SIGPIPE. */
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);

    rn_net_t *net = calloc(1, sizeof(*net));
    if (!net) return RN_ERR_NOMEM;
    net->cfg = *cfg;
    config_defaults(&net->cfg);
    if (cfg->nextra < 0 || cfg->nextra >= RN_NET_LISTENERS_MAX) {
        free(net);
        return RN_ERR_INVALID_ARG;
    }
    net->nlisteners = 1 + cfg->nextra;
    for (int i = 0; i < net->nlisteners; i++) {
        const char *h = i == 0 ? cfg->host : cfg->extra[i - 1].host;
        if (h && strlen(h) >= sizeof(net->host[i])) {
            free(net);
            return RN_ERR_INVALID_ARG;
        }
        snprintf(net->host[i], sizeof(net->host[i]), "%s", h ? h : "");
        net->ports[i] = i == 0 ? cfg->port : cfg->extra[i - 1].port;
    }
    net->cfg.host = net->host[0];
    net->handler = handler;
    atomic_init(&net->conns_open, 0);
    net->nworkers = net->cfg.threads;
    net->workers = calloc((size_t)net->nworkers, sizeof(*net->workers));
    if (!net->workers) {
        free(net);
        return RN_ERR_NOMEM;
    }
    for (int i = 0; i < net->nworkers; i++)
        for (int k = 0; k < RN_NET_LISTENERS_MAX; k++) net->workers[i].listen_fds[k] = -1;

    rn_err_t err = RN_OK;
    for (int i = 0; i < net->nworkers && !err; i++) {
        rn__worker_t *w = &net->workers[i];
        w->net = net;
        w->index = i;
        w->rbuf = malloc(RN_NET_RBUF_BYTES);
        if (!w->rbuf) {
            err = RN_ERR_NOMEM;
            break;
        }
        err = rn_loop_new(&w->loop, i);
        if (err) break;
        for (int k = 0; k < net->nlisteners && !err; k++) { /* the first worker picks a port asked as 0 */
            w->listen_fds[k] = listen_on(net->host[k], net->ports[k], &net->ports[k]);
            if (w->listen_fds[k] < 0) err = RN_ERR_IO;
        }
    }
    if (err) {
        net->stopped = true;
        rn_net_free(net);
        return err;
    }
    for (int k = 0; k < net->nlisteners; k++)
        RN_INFO("net", "listening on %s:%d with %d network threads", net->host[k][0] ? net->host[k] : "*", net->ports[k],
                net->nworkers);
    *out = net;
    return RN_OK;
}

int rn_net_port(const rn_net_t *net) { return net->ports[0]; }

int rn_net_listener_port(const rn_net_t *net, int i) { return i >= 0 && i < net->nlisteners ? net->ports[i] : -1; }

int rn_net_threads(const rn_net_t *net) { return net->nworkers; }

rn_loop_t *rn_net_loop(rn_net_t *net, int i) {
    RN_ASSERT(i >= 0 && i < net->nworkers);
    return net->workers[i].loop;
}

rn_err_t rn_net_start(rn_net_t *net) {
    RN_ASSERT(!net->started && !net->stopped);
    net->started = true;
    /* Network threads take no asynchronous signals: the main thread handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rn_err_t err = RN_OK;
    for (int i = 0; i < net->nworkers; i++) {
        rn__worker_t *w = &net->workers[i];
        rn_loop_post(w->loop, worker_begin, w);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            RN_ERROR("net", "pthread_create() failed: %s", strerror(rc));
            err = RN_ERR_IO;
            break;
        }
        w->thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) rn_net_stop(net);
    return err;
}

void rn_net_stop(rn_net_t *net) {
    if (net->stopped) return;
    net->stopped = true;
    for (int i = 0; i < net->nworkers; i++) RN_ASSERT(rn_loop_current() != net->workers[i].loop);
    for (int i = 0; i < net->nworkers; i++) {
        rn__worker_t *w = &net->workers[i];
        if (w->thread_started)
            rn_loop_post(w->loop, worker_shutdown, w);
        else if (w->loop)
            worker_shutdown(w); /* never ran: nothing can be pending */
    }
    for (int i = 0; i < net->nworkers; i++) {
        rn__worker_t *w = &net->workers[i];
        if (!w->thread_started) continue;
        pthread_join(w->thread, NULL);
        w->thread_started = false;
    }
    RN_INFO("net", "network threads stopped");
}

void rn_net_free(rn_net_t *net) {
    if (!net) return;
    rn_net_stop(net);
    for (int i = 0; i < net->nworkers; i++) {
        rn__worker_t *w = &net->workers[i];
        for (int k = 0; k < net->nlisteners; k++)
            if (w->listen_fds[k] >= 0) close(w->listen_fds[k]);
        rn_loop_free(w->loop);
        free(w->rbuf);
    }
    free(net->workers);
    free(net);
}

void rn_net_stats(const rn_net_t *net, rn_net_stats_t *out) {
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < net->nworkers; i++) {
        const rn__net_stats_t *s = &net->workers[i].stats;
#define RN__SUM(f) out->f += atomic_load_explicit(&s->f, memory_order_relaxed)
        RN__SUM(connections_open);
        RN__SUM(connections_total);
        RN__SUM(connections_refused);
        RN__SUM(bytes_in);
        RN__SUM(bytes_out);
        RN__SUM(requests);
        RN__SUM(requests_pending);
        RN__SUM(closed_bad_input);
        RN__SUM(bytes_queued);
#undef RN__SUM
        uint64_t peak = atomic_load_explicit(&s->bytes_queued_conn_peak, memory_order_relaxed);
        if (peak > out->bytes_queued_conn_peak) out->bytes_queued_conn_peak = peak;
    }
}
