/*
 * rn_conn.c — one client connection: 4-byte framing in, in-order responses out.
 *
 * Reading. The loop's shared 64 KiB buffer takes each read(); conn_consume()
 * parses frames out of it: a 4-byte big-endian size (kept across reads in
 * hdr[]), checked (<= 0 or > request_max_bytes closes the connection before
 * anything is allocated), then exactly `size` bytes allocated and filled. A
 * frame whose remaining body is at least a buffer's worth is read straight into
 * its allocation. When a frame completes it becomes a request: seq assigned,
 * appended to the queue, handed to the handler. So no per-connection read
 * buffer exists, except a "stash" of bytes read past a pause (below).
 *
 * The queue. Every request, from dispatch until its response is fully written,
 * sits in a FIFO in seq order:
 *
 *     dispatch            handler completes             head fully written
 *   ──────────► PENDING ─────────────────────► DONE ───────────────────────► freed
 *                  │ connection closes            │ connection closes
 *                  ▼                              ▼
 *               orphan ── handler completes ──► freed        freed
 *
 * The writer only ever looks at the head: it gathers the DONE responses from
 * the head onwards (each: 4-byte size prefix, memory pieces and file splices in
 * order) into one sendmsg (memory) or one sendfile (a splice), and stops at the
 * first PENDING one — so a response that completes early waits for earlier
 * ones. A DONE slot without a response (rn_req_no_response) is skipped.
 *
 * Back-pressure. The connection is "paused" while inflight (queued requests,
 * PENDING or DONE) >= inflight_max or queued response bytes > queued_max_bytes.
 * Parsing stops at a pause; bytes already read are kept in the stash. Read
 * interest is removed lazily — only when a read event arrives while paused —
 * so a brief pause costs no epoll_ctl. When writing drains the queue below the
 * bounds, read interest returns and a 0 ms timer replays the stash (the socket
 * may have nothing new to trigger a read event).
 *
 * Lifetime. refs = 1 while open + 1 per PENDING request + 1 while the resume
 * timer is armed, + a temporary one around callbacks that may close. Closing
 * frees every DONE request and marks PENDING ones orphans; the struct itself
 * goes when refs reaches 0, i.e. when the handler has completed the last one.
 *
 * Corking. While a read event is being processed, responses that the handler
 * completes synchronously are not written one by one: the queue is flushed
 * once at the end, so pipelined small requests share a sendmsg.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_logging.h"
#include "rn_net_int.h"

#define RN_NET_READS_PER_EVENT 8 /* fairness between connections of a loop */
#define RN_NET_SEGS_MAX 128      /* iovecs per sendmsg: 64 small responses */
#define RN_NET_SENDFILE_MAX ((size_t)1 << 30)

enum { RQ_PENDING = 1, RQ_DONE = 2 };

typedef struct rn__req {
    rn_req_t pub; /* first: rn_req_t * converts back */
    struct rn__req *next;
    uint8_t *frame_buf;
    uint8_t state;
    bool orphan;
    bool has_resp;
    uint8_t prefix[4];
    rn_buf_t resp;
} rn__req_t;

struct rn_conn {
    rn__worker_t *w;
    rn_loop_t *loop;
    int fd;
    int listener; /* the listener it was accepted on (rn_req_listener) */
    int refs;
    bool closed;
    bool reading; /* read interest set in epoll */
    bool writing; /* write interest set: waiting for socket space */
    bool corked;
    char peer[64];

    uint8_t hdr[4];
    uint32_t hdr_got;
    rn__req_t *rd_req; /* frame being read */
    size_t rd_got;
    uint8_t *stash; /* bytes read past a pause */
    size_t stash_off, stash_len;
    rn_timer_t *resume_timer;

    rn__req_t *q_head, *q_tail;
    size_t wpos; /* bytes of the head's framed response already written */
    uint64_t next_seq;
    int inflight;        /* requests in the queue */
    int pending;         /* of which PENDING */
    size_t queued_bytes; /* unsent bytes of DONE responses, prefixes included */
    int64_t last_active_ms;

    rn_conn_t *prev, *next; /* the worker's open connections */
};

typedef struct {
    const uint8_t *p; /* memory, or NULL for a file region */
    int fd;
    int64_t file_pos;
    size_t len;
} rn__seg_t;

static void conn_flush(rn_conn_t *c);
static void conn_on_readable(rn_conn_t *c);

/* ---- helpers ---- */

static void req_free(rn__req_t *r) {
    free(r->frame_buf);
    rn_arena_reset(&r->pub.arena);
    rn_buf_free(&r->resp);
    free(r);
}

/* The invariants of the diagram above, O(1). */
static void assert_conn_state(const rn_conn_t *c) {
    RN_ASSERT(c->pending >= 0 && c->refs >= c->pending + (c->closed ? 0 : 1));
    if (c->closed) {
        RN_ASSERT(c->fd < 0 && !c->q_head && !c->rd_req && !c->stash && !c->resume_timer);
        RN_ASSERT(c->inflight == 0 && c->queued_bytes == 0);
    } else {
        RN_ASSERT(c->fd >= 0 && c->inflight >= c->pending);
        RN_ASSERT((c->q_head == NULL) == (c->inflight == 0) && (c->q_head == NULL) == (c->q_tail == NULL));
        RN_ASSERT(c->wpos == 0 || (c->q_head->state == RQ_DONE && c->q_head->has_resp));
        RN_ASSERT(c->stash_off <= c->stash_len && (c->stash == NULL) == (c->stash_len == 0));
    }
}

static void conn_unref(rn_conn_t *c) {
    RN_ASSERT(c->refs > 0);
    if (--c->refs > 0) return;
    RN_ASSERT(c->closed && c->pending == 0 && !c->q_head && !c->resume_timer);
    free(c);
}

static bool conn_paused(const rn_conn_t *c) {
    const rn_net_config_t *cfg = &c->w->net->cfg;
    return c->inflight >= cfg->inflight_max || c->queued_bytes > cfg->queued_max_bytes;
}

static void conn_close(rn_conn_t *c, rn_log_level_t level, const char *why) {
    if (c->closed) return;
    rn__worker_t *w = c->w;
    RN_LOG(level, "net", "closing connection from %s: %s", c->peer, why);
    c->closed = true;
    rn_loop_unwatch(c->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    if (c->resume_timer) {
        rn_loop_timer_cancel(c->loop, c->resume_timer);
        c->resume_timer = NULL;
        c->refs--; /* the open ref is still held */
    }
    free(c->stash);
    c->stash = NULL;
    c->stash_off = c->stash_len = 0;
    if (c->rd_req) {
        req_free(c->rd_req);
        c->rd_req = NULL;
    }
    for (rn__req_t *r = c->q_head, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (r->state == RQ_DONE)
            req_free(r);
        else
            r->orphan = true; /* the handler still holds it, and a ref on c */
    }
    c->q_head = c->q_tail = NULL;
    c->inflight = 0;
    rn__stat_sub(&w->stats.bytes_queued, c->queued_bytes);
    c->queued_bytes = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    rn__stat_sub(&w->stats.connections_open, 1);
    atomic_fetch_sub_explicit(&w->net->conns_open, 1, memory_order_relaxed);
    conn_unref(c);
}

/* ECONNRESET / EPIPE are how clients leave: debug. Anything else: warn. */
static void conn_close_errno(rn_conn_t *c, const char *call, int err) {
    char why[128];
    snprintf(why, sizeof(why), "%s() failed: %s", call, strerror(err));
    bool quiet = err == ECONNRESET || err == EPIPE || err == ETIMEDOUT || err == EHOSTUNREACH;
    conn_close(c, quiet ? RN_LOG_DEBUG : RN_LOG_WARN, why);
}

static void conn_apply_interest(rn_conn_t *c) {
    if (c->closed) return;
    int ev = (c->reading ? RN_LOOP_READ : 0) | (c->writing ? RN_LOOP_WRITE : 0);
    if (rn_loop_modify(c->loop, c->fd, ev) != RN_OK) conn_close(c, RN_LOG_ERROR, "epoll_ctl() failed");
}

static void conn_on_resume(void *arg) {
    rn_conn_t *c = arg;
    c->resume_timer = NULL;
    if (!c->closed) conn_on_readable(c);
    conn_unref(c); /* the timer's ref */
}

/* Called whenever the queue shrank or reading ended: reading resumes when the
 * connection is below its bounds again. Pausing is lazy (conn_on_readable). */
static void conn_update_read(rn_conn_t *c) {
    if (c->closed || c->w->stopping || conn_paused(c)) return;
    if (!c->reading) {
        c->reading = true;
        conn_apply_interest(c);
    }
    if (c->stash && !c->resume_timer && !c->closed) {
        c->resume_timer = rn_loop_timer_add(c->loop, 0, conn_on_resume, c);
        if (!c->resume_timer) {
            conn_close(c, RN_LOG_ERROR, "out of memory (timer)");
            return;
        }
        c->refs++;
    }
}

/* ---- requests in ---- */

static void conn_dispatch(rn_conn_t *c) {
    rn__worker_t *w = c->w;
    rn_net_t *net = w->net;
    rn__req_t *r = c->rd_req;
    c->rd_req = NULL;
    c->rd_got = 0;
    r->pub.conn = c;
    r->pub.loop = c->loop;
    r->pub.seq = c->next_seq++;
    r->pub.received_ns = rn_loop_now_ns(c->loop);
    rn_arena_init(&r->pub.arena, net->cfg.arena_max_bytes);
    r->state = RQ_PENDING;
    if (c->q_tail)
        c->q_tail->next = r;
    else
        c->q_head = r;
    c->q_tail = r;
    c->inflight++;
    c->pending++;
    c->refs++;
    w->pending++;
    rn__stat_add(&w->stats.requests, 1);
    rn__stat_add(&w->stats.requests_pending, 1);
    net->handler.on_request(net->handler.ctx, &r->pub);
}

/* Parses frames out of p[0..n); returns the bytes used. Stops early when the
 * connection closes or pauses (the caller keeps the rest). */
static size_t conn_consume(rn_conn_t *c, const uint8_t *p, size_t n) {
    const rn_net_config_t *cfg = &c->w->net->cfg;
    size_t off = 0;
    while (off < n && !c->closed && !conn_paused(c)) {
        if (!c->rd_req) {
            size_t take = 4 - c->hdr_got;
            if (take > n - off) take = n - off;
            memcpy(c->hdr + c->hdr_got, p + off, take);
            c->hdr_got += (uint32_t)take;
            off += take;
            if (c->hdr_got < 4) break;
            c->hdr_got = 0;
            int32_t size = (int32_t)rn_load_be32(c->hdr);
            if (size <= 0 || (uint64_t)size > cfg->request_max_bytes) {
                RN_WARN("net", "closing connection from %s: request size %" PRId32 " %s", c->peer, size,
                        size <= 0 ? "is not positive" : "exceeds socket.request.max.bytes");
                rn__stat_add(&c->w->stats.closed_bad_input, 1);
                conn_close(c, RN_LOG_DEBUG, "bad frame size");
                break;
            }
            rn__req_t *r = calloc(1, sizeof(*r));
            uint8_t *frame = r ? malloc((size_t)size) : NULL;
            if (!frame) {
                free(r);
                conn_close(c, RN_LOG_ERROR, "out of memory (request frame)");
                break;
            }
            r->frame_buf = frame;
            r->pub.frame = frame;
            r->pub.frame_len = (size_t)size;
            c->rd_req = r;
            c->rd_got = 0;
        }
        rn__req_t *r = c->rd_req;
        size_t take = r->pub.frame_len - c->rd_got;
        if (take > n - off) take = n - off;
        memcpy(r->frame_buf + c->rd_got, p + off, take);
        c->rd_got += take;
        off += take;
        if (c->rd_got == r->pub.frame_len) conn_dispatch(c);
    }
    return off;
}

static void conn_on_readable(rn_conn_t *c) {
    rn__worker_t *w = c->w;
    if (conn_paused(c) || w->stopping) {
        c->reading = false; /* the lazy half of pausing */
        conn_apply_interest(c);
        return;
    }
    c->corked = true;
    if (c->stash) {
        c->stash_off += conn_consume(c, c->stash + c->stash_off, c->stash_len - c->stash_off);
        if (!c->closed && c->stash_off == c->stash_len) {
            free(c->stash);
            c->stash = NULL;
            c->stash_off = c->stash_len = 0;
        }
    }
    for (int i = 0; i < RN_NET_READS_PER_EVENT && !c->closed && !c->stash && !conn_paused(c); i++) {
        uint8_t *dst = w->rbuf;
        size_t cap = RN_NET_RBUF_BYTES;
        rn__req_t *direct = NULL;
        if (c->rd_req && c->rd_req->pub.frame_len - c->rd_got >= RN_NET_RBUF_BYTES) {
            direct = c->rd_req;
            dst = direct->frame_buf + c->rd_got;
            cap = direct->pub.frame_len - c->rd_got;
        }
        ssize_t n = read(c->fd, dst, cap);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) conn_close_errno(c, "read", errno);
            break;
        }
        if (n == 0) {
            conn_close(c, RN_LOG_DEBUG, "closed by peer");
            break;
        }
        rn__stat_add(&w->stats.bytes_in, (uint64_t)n);
        c->last_active_ms = rn_loop_now_ms(c->loop);
        if (direct) {
            c->rd_got += (size_t)n;
            if (c->rd_got == direct->pub.frame_len) conn_dispatch(c);
        } else {
            size_t used = conn_consume(c, w->rbuf, (size_t)n);
            if (used < (size_t)n && !c->closed) {
                c->stash = malloc((size_t)n - used);
                if (!c->stash) {
                    conn_close(c, RN_LOG_ERROR, "out of memory (read stash)");
                    break;
                }
                memcpy(c->stash, w->rbuf + used, (size_t)n - used);
                c->stash_off = 0;
                c->stash_len = (size_t)n - used;
            }
        }
        if ((size_t)n < cap) break; /* drained for now */
    }
    c->corked = false;
    if (c->closed) return;
    if (!c->writing) conn_flush(c);
    conn_update_read(c);
    assert_conn_state(c);
}

/* ---- responses out ---- */

static bool seg_emit(rn__seg_t *out, size_t *n, size_t *skip, rn__seg_t s) {
    if (s.len == 0) return true;
    if (*skip >= s.len) {
        *skip -= s.len;
        return true;
    }
    if (*n == RN_NET_SEGS_MAX) return false;
    if (s.p)
        s.p += *skip;
    else
        s.file_pos += (int64_t)*skip;
    s.len -= *skip;
    *skip = 0;
    out[(*n)++] = s;
    return s.p != NULL; /* nothing can follow a file region in one syscall */
}

/* b->data[from..to); an empty buffer may have data == NULL, and len 0 is skipped. */
static rn__seg_t mem_seg(const rn_buf_t *b, size_t from, size_t to) {
    RN_ASSERT(from <= to && to <= b->len);
    return (rn__seg_t){to > from ? b->data + from : NULL, -1, 0, to - from};
}

/* Appends the segments of r's framed response, after `skip` bytes; false if it
 * stopped early (segment array full, or a file region was emitted). */
static bool resp_segments(const rn__req_t *r, size_t skip, rn__seg_t *out, size_t *n) {
    const rn_buf_t *b = &r->resp;
    if (!seg_emit(out, n, &skip, (rn__seg_t){r->prefix, -1, 0, 4})) return false;
    size_t mpos = 0;
    for (size_t i = 0; i < b->nsplices; i++) {
        const rn_buf_splice_t *sp = &b->splices[i];
        if (!seg_emit(out, n, &skip, mem_seg(b, mpos, sp->buf_pos))) return false;
        mpos = sp->buf_pos;
        if (!seg_emit(out, n, &skip, (rn__seg_t){NULL, sp->file->fd, sp->file_pos, sp->len})) return false;
    }
    return seg_emit(out, n, &skip, mem_seg(b, mpos, b->len));
}

static void conn_pop(rn_conn_t *c) {
    rn__req_t *r = c->q_head;
    RN_ASSERT(r && r->state == RQ_DONE);
    c->q_head = r->next;
    if (!c->q_head) c->q_tail = NULL;
    c->inflight--;
    c->wpos = 0;
    req_free(r);
}

static void conn_advance(rn_conn_t *c, size_t n) {
    while (n > 0) {
        rn__req_t *r = c->q_head;
        RN_ASSERT(r && r->state == RQ_DONE);
        if (!r->has_resp) {
            conn_pop(c);
            continue;
        }
        size_t left = 4 + rn_buf_total_len(&r->resp) - c->wpos;
        size_t k = n < left ? n : left;
        c->wpos += k;
        n -= k;
        c->queued_bytes -= k;
        rn__stat_sub(&c->w->stats.bytes_queued, k);
        if (k == left) conn_pop(c);
    }
}

/* Writes as much of the queue as the socket takes. */
static void conn_flush(rn_conn_t *c) {
    rn__worker_t *w = c->w;
    bool blocked = false; /* the socket is full: wait for EPOLLOUT */
    while (!c->closed) {
        while (c->q_head && c->q_head->state == RQ_DONE && !c->q_head->has_resp) conn_pop(c);
        if (!c->q_head || c->q_head->state != RQ_DONE) break;

        rn__seg_t segs[RN_NET_SEGS_MAX];
        size_t nsegs = 0, skip = c->wpos;
        for (rn__req_t *r = c->q_head; r && r->state == RQ_DONE; r = r->next) {
            if (!r->has_resp) continue;
            if (!resp_segments(r, skip, segs, &nsegs)) break;
            skip = 0;
        }
        RN_ASSERT(nsegs > 0);
        ssize_t n;
        size_t want;
        if (!segs[0].p) {
            off_t pos = (off_t)segs[0].file_pos;
            want = segs[0].len < RN_NET_SENDFILE_MAX ? segs[0].len : RN_NET_SENDFILE_MAX;
            n = sendfile(c->fd, segs[0].fd, &pos, want);
            if (n == 0) {
                conn_close(c, RN_LOG_ERROR, "sendfile() hit the end of the file: spliced region is past EOF");
                break;
            }
        } else {
            struct iovec iov[RN_NET_SEGS_MAX];
            size_t k = 0;
            want = 0;
            for (; k < nsegs && segs[k].p; k++) {
                iov[k].iov_base = (void *)segs[k].p;
                iov[k].iov_len = segs[k].len;
                want += segs[k].len;
            }
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = k};
            n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                blocked = true;
                break;
            }
            conn_close_errno(c, segs[0].p ? "sendmsg" : "sendfile", errno);
            break;
        }
        rn__stat_add(&w->stats.bytes_out, (uint64_t)n);
        c->last_active_ms = rn_loop_now_ms(c->loop);
        conn_advance(c, (size_t)n);
        if ((size_t)n < want) { /* a short write: the next one would only say EAGAIN */
            blocked = true;
            break;
        }
    }
    if (c->closed) return;
    if (c->writing != blocked) {
        c->writing = blocked;
        conn_apply_interest(c);
    }
    conn_update_read(c);
    assert_conn_state(c);
}

static void conn_on_io(void *arg, int fd, int events) {
    rn_conn_t *c = arg;
    c->refs++;
    if (events & RN_LOOP_ERROR) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            conn_close_errno(c, "socket", err);
        else
            conn_close(c, RN_LOG_DEBUG, "hung up");
    }
    if (!c->closed && (events & RN_LOOP_WRITE)) conn_flush(c);
    if (!c->closed && (events & RN_LOOP_READ)) conn_on_readable(c);
    conn_unref(c);
}

/* ---- completion ---- */

static void req_complete(rn_req_t *req, rn_buf_t *resp) {
    rn__req_t *r = (rn__req_t *)req;
    rn_conn_t *c = req->conn;
    rn__worker_t *w = c->w;
    RN_ASSERT(r->state == RQ_PENDING);
    RN_ASSERT(rn_loop_current() == c->loop || !w->thread_started);
    free(r->frame_buf);
    r->frame_buf = NULL;
    req->frame = NULL;
    rn_arena_reset(&req->arena);
    c->pending--;
    w->pending--;
    rn__stat_sub(&w->stats.requests_pending, 1);

    if (resp) {
        size_t max = resp->max;
        r->resp = *resp;
        rn_buf_init(resp, max);
    }
    if (r->orphan) {
        req_free(r);
    } else {
        r->state = RQ_DONE;
        if (resp) {
            size_t total = rn_buf_total_len(&r->resp);
            if (rn_buf_err(&r->resp) != RN_OK || total > INT32_MAX) {
                /* Sending part of a response would desynchronise the stream. */
                RN_ERROR("net", "closing connection from %s: response to request %" PRIu64 " is unusable (%s, %zu bytes)",
                         c->peer, req->seq, rn_err_name(rn_buf_err(&r->resp)), total);
                conn_close(c, RN_LOG_DEBUG, "bad response");
            } else {
                r->has_resp = true;
                rn_store_be32(r->prefix, (uint32_t)total);
                c->queued_bytes += 4 + total;
                rn__stat_add(&w->stats.bytes_queued, 4 + total);
                rn__stat_max(&w->stats.bytes_queued_conn_peak, c->queued_bytes);
            }
        }
        if (!c->closed && !c->corked && !c->writing && c->q_head->state == RQ_DONE) conn_flush(c);
    }
    assert_conn_state(c);
    conn_unref(c); /* the pending request's ref */
    if (w->stopping && w->pending == 0) rn__worker_drained(w);
}

void rn_req_respond(rn_req_t *req, rn_buf_t *resp) {
    RN_ASSERT(resp != NULL);
    req_complete(req, resp);
}

void rn_req_no_response(rn_req_t *req) { req_complete(req, NULL); }

void rn_req_close(rn_req_t *req, const char *why) {
    rn_conn_t *c = req->conn;
    if (!c->closed) {
        RN_INFO("net", "closing connection from %s: %s", c->peer, why ? why : "closed by handler");
        rn__stat_add(&c->w->stats.closed_bad_input, 1);
        conn_close(c, RN_LOG_DEBUG, "closed by handler");
    }
    req_complete(req, NULL);
}

bool rn_req_orphaned(const rn_req_t *req) { return ((const rn__req_t *)req)->orphan; }

const char *rn_conn_peer(const rn_conn_t *conn) { return conn->peer; }

/* ---- accept / idle / shutdown ---- */

static void format_peer(char *out, size_t cap, const struct sockaddr *sa) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%d", ip, port);
    } else {
        snprintf(out, cap, "unknown");
    }
}

void rn__conn_accept(rn__worker_t *w, int fd, int listener, const struct sockaddr *sa, socklen_t salen) {
    rn_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        RN_ERROR("net", "out of memory accepting a connection");
        close(fd);
        atomic_fetch_sub_explicit(&w->net->conns_open, 1, memory_order_relaxed);
        return;
    }
    c->w = w;
    c->loop = w->loop;
    c->fd = fd;
    c->listener = listener;
    c->refs = 1;
    c->reading = true;
    c->last_active_ms = rn_loop_now_ms(w->loop);
    format_peer(c->peer, sizeof(c->peer), sa);
    if (rn_loop_watch(w->loop, fd, RN_LOOP_READ, conn_on_io, c) != RN_OK) {
        close(fd);
        free(c);
        atomic_fetch_sub_explicit(&w->net->conns_open, 1, memory_order_relaxed);
        return;
    }
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    rn__stat_add(&w->stats.connections_open, 1);
    rn__stat_add(&w->stats.connections_total, 1);
    RN_DEBUG("net", "loop %d: accepted connection from %s", w->index, c->peer);
}

void rn__conn_idle_scan(rn__worker_t *w) {
    int64_t idle_ms = w->net->cfg.idle_ms;
    int64_t now = rn_loop_now_ms(w->loop);
    for (rn_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next;
        if (c->pending == 0 && now - c->last_active_ms >= idle_ms)
            conn_close(c, RN_LOG_DEBUG, "idle (connections.max.idle.ms)");
    }
}

void rn__conn_close_all(rn__worker_t *w, const char *why) {
    while (w->conns) conn_close(w->conns, RN_LOG_DEBUG, why);
}

int rn_req_listener(const rn_req_t *req) { return req->conn ? req->conn->listener : 0; }
