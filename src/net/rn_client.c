/*
 * rn_client.c — the blocking inter-node client (see rn_client.h). A
 * non-blocking socket driven by poll(2) with deadlines, and an eventfd in
 * every poll so another thread can interrupt a wait.
 */
#include "rn_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_header.h"
#include "rn_logging.h"

struct rn_client {
    char *host;
    char *client_id;
    int port;
    int64_t timeout_ms;
    size_t max_response_bytes;
    int fd;       /* -1: not connected */
    int wake_fd;  /* eventfd: rn_client_interrupt */
    atomic_bool interrupted;
    int32_t next_correlation;
};

rn_err_t rn_client_new(const rn_client_config_t *cfg, rn_client_t **out) {
    *out = NULL;
    if (!cfg->host || cfg->port <= 0 || cfg->port > 65535) return RN_ERR_INVALID_ARG;
    rn_client_t *c = calloc(1, sizeof(*c));
    if (!c) return RN_ERR_NOMEM;
    c->host = strdup(cfg->host);
    c->client_id = strdup(cfg->client_id ? cfg->client_id : "runnel");
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!c->host || !c->client_id || c->wake_fd < 0) {
        if (c->wake_fd >= 0) close(c->wake_fd);
        free(c->host);
        free(c->client_id);
        free(c);
        return RN_ERR_NOMEM;
    }
    c->port = cfg->port;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    c->max_response_bytes = cfg->max_response_bytes ? cfg->max_response_bytes : (size_t)100 << 20;
    c->fd = -1;
    c->next_correlation = 1;
    *out = c;
    return RN_OK;
}

void rn_client_disconnect(rn_client_t *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

void rn_client_free(rn_client_t *c) {
    if (!c) return;
    rn_client_disconnect(c);
    close(c->wake_fd);
    free(c->host);
    free(c->client_id);
    free(c);
}

bool rn_client_connected(const rn_client_t *c) { return c->fd >= 0; }

void rn_client_interrupt(rn_client_t *c) {
    atomic_store(&c->interrupted, true);
    uint64_t one = 1;
    if (write(c->wake_fd, &one, sizeof(one)) < 0) { /* counter full: already signalled */
    }
}

/* Waits for `events` on the socket until the deadline: RN_OK, RN_ERR_IO (timeout) or RN_ERR_AGAIN. */
static rn_err_t wait_fd(rn_client_t *c, short events, int64_t deadline_ms) {
    for (;;) {
        if (atomic_load(&c->interrupted)) return RN_ERR_AGAIN;
        int64_t left = deadline_ms - rn_clock_mono_ms();
        if (left <= 0) return RN_ERR_IO;
        struct pollfd p[2] = {{c->fd, events, 0}, {c->wake_fd, POLLIN, 0}};
        int n = poll(p, 2, left > 1000 ? 1000 : (int)left);
        if (n < 0 && errno != EINTR) return RN_ERR_IO;
        if (n > 0 && p[0].revents) return RN_OK;
    }
}

static rn_err_t connect_now(rn_client_t *c, int64_t deadline_ms) {
    char port[16];
    snprintf(port, sizeof(port), "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(c->host, port, &hints, &res);
    if (gai != 0) {
        RN_WARN("client", "%s:%d: cannot resolve: %s", c->host, c->port, gai_strerror(gai));
        return RN_ERR_IO;
    }
    rn_err_t err = RN_ERR_IO;
    for (struct addrinfo *ai = res; ai && err; ai = ai->ai_next) {
        c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) continue;
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            err = RN_OK;
        } else if (errno == EINPROGRESS) {
            err = wait_fd(c, POLLOUT, deadline_ms);
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (!err && (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0)) err = RN_ERR_IO;
        }
        if (err) rn_client_disconnect(c);
        if (err == RN_ERR_AGAIN) break;
    }
    freeaddrinfo(res);
    return err;
}

static rn_err_t send_all(rn_client_t *c, const uint8_t *p, size_t n, int64_t deadline_ms) {
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) return RN_ERR_IO;
        rn_err_t err = wait_fd(c, POLLOUT, deadline_ms);
        if (err) return err;
    }
    return RN_OK;
}

static rn_err_t recv_all(rn_client_t *c, uint8_t *p, size_t n, int64_t deadline_ms) {
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) return RN_ERR_IO;
        rn_err_t err = wait_fd(c, POLLIN, deadline_ms);
        if (err) return err;
    }
    return RN_OK;
}

static rn_err_t call(rn_client_t *c, int16_t api_key, int16_t api_version, const rn_buf_t *body, rn_buf_t *resp,
                     int64_t timeout_ms) {
    if (body->splice_bytes) return RN_ERR_INVALID_ARG;
    int64_t deadline = rn_clock_mono_ms() + timeout_ms;
    rn_err_t err = RN_OK;
    if (c->fd < 0) err = connect_now(c, deadline);
    if (err) return err;

    int32_t corr = c->next_correlation++;
    if (c->next_correlation == INT32_MAX) c->next_correlation = 1;
    rn_buf_t req;
    rn_buf_init(&req, (size_t)1 << 30);
    rn_buf_put_i32(&req, 0); /* size, patched below */
    rn_req_header_t h = {.api_key = api_key, .api_version = api_version, .correlation_id = corr};
    h.client_id = (rn_str_t){c->client_id, (int32_t)strlen(c->client_id)};
    rn_req_header_encode(&req, &h);
    rn_buf_put(&req, body->data, body->len);
    err = rn_buf_err(&req);
    if (!err) {
        rn_buf_patch_i32(&req, 0, (int32_t)(req.len - 4));
        err = send_all(c, req.data, req.len, deadline);
    }
    rn_buf_free(&req);

    int resp_hv = rn_resp_header_version(api_key, api_version);
    while (!err) {
        uint8_t szb[4];
        err = recv_all(c, szb, 4, deadline);
        if (err) break;
        int32_t size = (int32_t)rn_load_be32(szb);
        if (size < 4 || (size_t)size > c->max_response_bytes) {
            RN_WARN("client", "%s:%d: response size %d refused", c->host, c->port, size);
            err = size < 4 ? RN_ERR_MALFORMED : RN_ERR_LIMIT;
            break;
        }
        rn_buf_reset(resp);
        if (!rn_buf_reserve(resp, (size_t)size)) {
            err = RN_ERR_NOMEM;
            break;
        }
        err = recv_all(c, resp->data, (size_t)size, deadline);
        if (err) break;
        rn_reader_t r;
        rn_reader_init(&r, resp->data, (size_t)size);
        int32_t got = rn_reader_i32(&r);
        if (resp_hv >= 1) rn_reader_skip_tagged(&r);
        if (rn_reader_err(&r) || got != corr) {
            RN_WARN("client", "%s:%d: response for correlation id %d, expected %d", c->host, c->port, got, corr);
            err = RN_ERR_MALFORMED;
            break;
        }
        /* Hand back the body alone. */
        size_t hdr = r.pos;
        memmove(resp->data, resp->data + hdr, (size_t)size - hdr);
        resp->len = (size_t)size - hdr;
        return RN_OK;
    }
    rn_client_disconnect(c);
    return err;
}

rn_err_t rn_client_call_timeout(rn_client_t *c, int16_t api_key, int16_t api_version, const rn_buf_t *body,
                                rn_buf_t *resp, int64_t timeout_ms) {
    return call(c, api_key, api_version, body, resp, timeout_ms > 0 ? timeout_ms : c->timeout_ms);
}

rn_err_t rn_client_call(rn_client_t *c, int16_t api_key, int16_t api_version, const rn_buf_t *body, rn_buf_t *resp) {
    return rn_client_call_timeout(c, api_key, api_version, body, resp, c->timeout_ms);
}
