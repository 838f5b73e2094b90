/*
 * test_net.c — rn_net over real loopback sockets.
 *
 * The test handler speaks a tiny protocol. Request frame:
 *   u8 op | u32 delay_ms | u32 resp_len | payload...
 * ops: 'E' echo the frame, 'B' answer resp_len pattern bytes, 'N' no response,
 *      'C' rn_req_close, 'H' hold until shutdown, 'F' answer with file splices,
 *      'X' an overflowed (errored) buffer, 'Z' a splice past the end of the file.
 * Every response starts with u64 seq | u32 loop id. A delay > 0 completes the
 * request from a loop timer, so completions come out of order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_logging.h"
#include "rn_net.h"
#include "rn_test.h"

/* ---- the server side ---- */

#define MAX_LOOPS 4
#define FILE_BYTES (1 << 20)

typedef struct srv srv_t;

typedef struct held {
    srv_t *srv;
    rn_req_t *req;
    rn_timer_t *timer;
    struct held *prev, *next;
    uint8_t op;
    uint32_t resp_len;
} held_t;

struct srv {
    rn_net_t *net;
    rn_fileref_t *file;
    held_t *held[MAX_LOOPS]; /* per loop; touched only on that loop */
    atomic_int wrong_thread;
    atomic_int on_stop_calls;
    atomic_int completed_orphans;
};

static uint8_t pattern_byte(uint64_t seed, size_t i) { return (uint8_t)(seed * 131 + i * 7 + (i >> 8)); }

static void held_link(held_t *h) {
    int id = rn_loop_id(h->req->loop);
    h->next = h->srv->held[id];
    if (h->next) h->next->prev = h;
    h->prev = NULL;
    h->srv->held[id] = h;
}

static void held_unlink(held_t *h) {
    int id = rn_loop_id(h->req->loop);
    if (h->prev)
        h->prev->next = h->next;
    else
        h->srv->held[id] = h->next;
    if (h->next) h->next->prev = h->prev;
}

/* Completes h->req; h lives in the req's arena, so it is gone afterwards. */
static void srv_complete(srv_t *srv, rn_req_t *req, uint8_t op, uint32_t resp_len) {
    if (rn_req_orphaned(req)) atomic_fetch_add(&srv->completed_orphans, 1);
    if (op == 'N' || op == 'H') {
        rn_req_no_response(req);
        return;
    }
    if (op == 'C') {
        rn_req_close(req, "test asked to close");
        return;
    }
    rn_buf_t b;
    rn_buf_init(&b, 64u << 20);
    rn_buf_put_i64(&b, (int64_t)req->seq);
    rn_buf_put_u32(&b, (uint32_t)rn_loop_id(req->loop));
    if (op == 'E') {
        rn_buf_put(&b, req->frame, req->frame_len);
    } else if (op == 'B') {
        if (rn_buf_reserve(&b, resp_len)) {
            for (uint32_t i = 0; i < resp_len; i++) b.data[b.len + i] = pattern_byte(req->seq, i);
            b.len += resp_len;
        }
    } else if (op == 'X') { /* overflows its buffer: unusable, the connection must close */
        b.max = 20;
        rn_buf_put_zero(&b, 100);
    } else if (op == 'Z') { /* a region past the end of the file */
        rn_buf_put(&b, "HEAD", 4);
        rn_buf_splice_file(&b, srv->file, FILE_BYTES - 10, 100);
    } else if (op == 'F') {
        rn_buf_put(&b, "HEAD", 4);
        rn_buf_splice_file(&b, srv->file, 1000, 300000);
        rn_buf_put(&b, "MID", 3);
        rn_buf_splice_file(&b, srv->file, 500000, 10);
        rn_buf_splice_file(&b, srv->file, 0, 1); /* two regions back to back */
        rn_buf_put(&b, "TAIL", 4);
    }
    rn_req_respond(req, &b);
    rn_buf_free(&b); /* left empty by rn_req_respond: freeing is harmless */
}

static void srv_on_timer(void *arg) {
    held_t *h = arg;
    held_unlink(h);
    srv_complete(h->srv, h->req, h->op, h->resp_len);
}

static void srv_on_request(void *ctx, rn_req_t *req) {
    srv_t *srv = ctx;
    if (rn_loop_current() != req->loop) atomic_fetch_add(&srv->wrong_thread, 1);
    if (req->frame_len < 9) {
        rn_req_close(req, "short test frame");
        return;
    }
    uint8_t op = req->frame[0];
    uint32_t delay = rn_load_be32(req->frame + 1);
    uint32_t resp_len = rn_load_be32(req->frame + 5);
    if (delay == 0 && op != 'H') {
        srv_complete(srv, req, op, resp_len);
        return;
    }
    held_t *h = rn_arena_alloc(&req->arena, sizeof(*h));
    *h = (held_t){.srv = srv, .req = req, .op = op, .resp_len = resp_len};
    if (op != 'H') h->timer = rn_loop_timer_add(req->loop, delay, srv_on_timer, h);
    held_link(h);
}

/* Shutdown contract: complete whatever this loop still holds. */
static void srv_on_stop(void *ctx, rn_loop_t *loop) {
    srv_t *srv = ctx;
    atomic_fetch_add(&srv->on_stop_calls, 1);
    if (rn_loop_current() != loop) atomic_fetch_add(&srv->wrong_thread, 1);
    int id = rn_loop_id(loop);
    while (srv->held[id]) {
        held_t *h = srv->held[id];
        held_unlink(h);
        if (h->timer) rn_loop_timer_cancel(loop, h->timer);
        srv_complete(srv, h->req, h->op == 'H' ? 'N' : h->op, h->resp_len);
    }
}

static rn_net_config_t test_config(void) {
    return (rn_net_config_t){
        .host = "127.0.0.1",
        .port = 0,
        .threads = 2,
        .request_max_bytes = 1 << 20,
        .queued_max_bytes = 1 << 20,
        .inflight_max = 64,
        .idle_ms = 60000,
        .arena_max_bytes = 1 << 20,
        .stop_timeout_ms = 10000,
    };
}

static void srv_start(srv_t *srv, rn_net_config_t cfg, bool with_on_stop) {
    memset(srv, 0, sizeof(*srv));
    rn_net_handler_t h = {.on_request = srv_on_request, .ctx = srv, .on_stop = with_on_stop ? srv_on_stop : NULL};
    if (rn_net_new(&srv->net, &cfg, h) != RN_OK || rn_net_start(srv->net) != RN_OK) abort();
}

static void srv_finish(srv_t *srv) {
    rn_net_free(srv->net); /* stops too */
    srv->net = NULL;
    if (srv->file) rn_fileref_release(srv->file);
}

static rn_net_stats_t srv_stats(srv_t *srv) {
    rn_net_stats_t s;
    rn_net_stats(srv->net, &s);
    return s;
}

/* Polls cond for up to ms; the bound keeps every test finite. */
#define WAIT_UNTIL(cond, ms)                                                                   \
    do {                                                                                       \
        int64_t rn_deadline_ = rn_clock_mono_ms() + (ms);                                      \
        while (!(cond) && rn_clock_mono_ms() < rn_deadline_) usleep(2000);                     \
    } while (0)

/* ---- the client side (blocking sockets with timeouts) ---- */

static int cli_connect(int port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, void *p, size_t n) {
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

/* Builds a framed request into out (cap >= 13 + plen); returns its length. */
static size_t build_req(uint8_t *out, uint8_t op, uint32_t delay_ms, uint32_t resp_len, const uint8_t *payload,
                        size_t plen) {
    rn_store_be32(out, (uint32_t)(9 + plen));
    out[4] = op;
    rn_store_be32(out + 5, delay_ms);
    rn_store_be32(out + 9, resp_len);
    if (plen) memcpy(out + 13, payload, plen);
    return 13 + plen;
}

static bool send_req(int fd, uint8_t op, uint32_t delay_ms, uint32_t resp_len) {
    uint8_t b[13];
    return write_all(fd, b, build_req(b, op, delay_ms, resp_len, NULL, 0));
}

/* Reads one response frame into a malloc'd buffer; NULL on EOF/error/timeout. */
static uint8_t *read_frame(int fd, size_t *len) {
    uint8_t h[4];
    if (!read_all(fd, h, 4)) return NULL;
    uint32_t n = rn_load_be32(h);
    uint8_t *b = malloc(n ? n : 1);
    if (!read_all(fd, b, n)) {
        free(b);
        return NULL;
    }
    *len = n;
    return b;
}

/* True if the server closed the connection (EOF or reset) within ~10 s. */
static bool closed_by_server(int fd) {
    uint8_t b[256];
    for (;;) {
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r == 0) return true;
        if (r < 0) return errno == ECONNRESET;
    }
}

static uint64_t rd64(const uint8_t *p) { return rn_load_be64(p); }

/* ---- tests ---- */

/* Many connections × many pipelined requests, completed out of order by
 * timers, some with no response: responses arrive in request order, every one
 * with the right seq; frames are written in odd pieces on some connections. */
RN_TEST(net_pipelined_out_of_order_completion_keeps_order) {
    srv_t srv;
    rn_net_config_t cfg = test_config();
    cfg.inflight_max = 32; /* below the pipeline depth: exercises pause/resume */
    srv_start(&srv, cfg, true);
    enum { CONNS = 16, REQS = 300 };
    int fds[CONNS];
    uint8_t ops[CONNS][REQS];
    uint16_t plens[CONNS][REQS];
    unsigned seed = 12345;
    for (int c = 0; c < CONNS; c++) {
        fds[c] = cli_connect(rn_net_port(srv.net), 0);
        ASSERT_TRUE(fds[c] >= 0);
    }
    uint8_t *buf = malloc(REQS * (13 + 3000));
    uint8_t payload[3000];
    for (int i = 0; i < 3000; i++) payload[i] = (uint8_t)(i * 13);
    for (int c = 0; c < CONNS; c++) {
        size_t len = 0;
        for (int i = 0; i < REQS; i++) {
            seed = seed * 1103515245 + 12345;
            ops[c][i] = (seed >> 16) % 10 == 0 ? 'N' : 'E';
            plens[c][i] = (uint16_t)((seed >> 8) % 7 == 0 ? (seed >> 4) % 3000 : (seed >> 4) % 40);
            uint32_t delay = (seed >> 20) % 4; /* 0..3 ms: out-of-order completion */
            len += build_req(buf + len, ops[c][i], delay, 0, payload, plens[c][i]);
        }
        if (c % 2 == 0) {
            ASSERT_TRUE(write_all(fds[c], buf, len));
        } else {
            for (size_t off = 0; off < len;) { /* dribble: frames and headers split across reads */
                seed = seed * 1103515245 + 12345;
                size_t k = 1 + (seed >> 16) % 700;
                if (k > len - off) k = len - off;
                ASSERT_TRUE(write_all(fds[c], buf + off, k));
                off += k;
            }
        }
    }
    free(buf);
    bool loop_seen[MAX_LOOPS] = {false};
    for (int c = 0; c < CONNS; c++) {
        for (int i = 0; i < REQS; i++) {
            if (ops[c][i] == 'N') continue;
            size_t n;
            uint8_t *f = read_frame(fds[c], &n);
            ASSERT_TRUE(f != NULL);
            ASSERT_EQ(n, 12 + 9 + plens[c][i]);
            ASSERT_EQ(rd64(f), i); /* seq = request number on this connection */
            uint32_t loop_id = rn_load_be32(f + 8);
            ASSERT_LT(loop_id, 2);
            loop_seen[loop_id] = true;
            ASSERT_EQ(f[12], 'E');
            ASSERT_MEMEQ(f + 21, payload, plens[c][i]);
            free(f);
        }
        close(fds[c]);
    }
    ASSERT_TRUE(loop_seen[0] && loop_seen[1]); /* SO_REUSEPORT spread the 16 connections */
    WAIT_UNTIL(srv_stats(&srv).connections_open == 0, 5000);
    rn_net_stats_t st = srv_stats(&srv);
    ASSERT_EQ(st.requests, CONNS * REQS);
    ASSERT_EQ(st.connections_total, CONNS);
    ASSERT_EQ(st.connections_open, 0);
    ASSERT_EQ(st.closed_bad_input, 0);
    ASSERT_EQ(st.bytes_queued, 0);
    ASSERT_EQ(atomic_load(&srv.wrong_thread), 0);
    srv_finish(&srv);
}

/* Frames bigger than the loop's read buffer are read straight into place. */
RN_TEST(net_large_frames_both_ways) {
    srv_t srv;
    srv_start(&srv, test_config(), true);
    int fd = cli_connect(rn_net_port(srv.net), 0);
    ASSERT_TRUE(fd >= 0);
    size_t plen = 700000;
    uint8_t *payload = malloc(plen), *req = malloc(13 + plen);
    for (size_t i = 0; i < plen; i++) payload[i] = pattern_byte(7, i);
    size_t len = build_req(req, 'E', 0, 0, payload, plen);
    for (int k = 0; k < 3; k++) ASSERT_TRUE(write_all(fd, req, len));
    ASSERT_TRUE(send_req(fd, 'B', 0, 900000));
    for (int k = 0; k < 3; k++) {
        size_t n;
        uint8_t *f = read_frame(fd, &n);
        ASSERT_TRUE(f != NULL);
        ASSERT_EQ(n, 12 + 9 + plen);
        ASSERT_EQ(rd64(f), k);
        ASSERT_MEMEQ(f + 21, payload, plen);
        free(f);
    }
    size_t n;
    uint8_t *f = read_frame(fd, &n);
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(n, 12 + 900000);
    for (size_t i = 0; i < 900000; i++)
        if (f[12 + i] != pattern_byte(3, i)) ASSERT_EQ(i, -1);
    free(f);
    free(payload);
    free(req);
    close(fd);
    srv_finish(&srv);
}

/* 2 GB, negative and zero size prefixes close that connection (logged, counted,
 * nothing allocated: ASan would choke on a 2 GB malloc) and others go on. */
RN_TEST(net_bad_frame_sizes_close_only_that_connection) {
    srv_t srv;
    srv_start(&srv, test_config(), true);
    int port = rn_net_port(srv.net);
    int good = cli_connect(port, 0);
    ASSERT_TRUE(good >= 0);
    static const uint32_t bad[] = {0x7fffffffu, 0xffffffffu, 0x80000000u, 0, (1u << 20) + 1};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int fd = cli_connect(port, 0);
        ASSERT_TRUE(fd >= 0);
        uint8_t h[4];
        rn_store_be32(h, bad[k]);
        ASSERT_TRUE(write_all(fd, h, 4));
        ASSERT_TRUE(closed_by_server(fd));
        close(fd);
        /* The good connection keeps working in between. */
        ASSERT_TRUE(send_req(good, 'E', 1, 0));
        size_t n;
        uint8_t *f = read_frame(good, &n);
        ASSERT_TRUE(f != NULL);
        ASSERT_EQ(rd64(f), k);
        free(f);
    }
    /* The exact maximum is accepted. */
    size_t plen = (1u << 20) - 9;
    uint8_t *req = calloc(1, 13 + plen);
    size_t len = build_req(req, 'B', 0, 5, NULL, 0);
    rn_store_be32(req, (uint32_t)(9 + plen));
    ASSERT_TRUE(write_all(good, req, 4 + 9 + plen));
    (void)len;
    free(req);
    size_t n;
    uint8_t *f = read_frame(good, &n);
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(n, 12 + 5);
    free(f);
    rn_net_stats_t st = srv_stats(&srv);
    ASSERT_EQ(st.closed_bad_input, 5);
    close(good);
    srv_finish(&srv);
}

static int make_test_file(uint8_t **content) {
    char path[] = "/tmp/rn_test_net_XXXXXX";
    int tfd = mkstemp(path);
    if (tfd < 0) return -1;
    unlink(path);
    *content = malloc(FILE_BYTES);
    for (size_t i = 0; i < FILE_BYTES; i++) (*content)[i] = pattern_byte(99, i);
    if (write(tfd, *content, FILE_BYTES) != FILE_BYTES) abort();
    return tfd;
}

/* A response made of memory pieces and file regions arrives byte-exact, and
 * the file references are released once sent. */
RN_TEST(net_file_splice_response_is_byte_exact) {
    srv_t srv;
    uint8_t *content;
    int tfd = make_test_file(&content);
    ASSERT_TRUE(tfd >= 0);
    srv_start(&srv, test_config(), true);
    srv.file = rn_fileref_new(tfd);
    int fd = cli_connect(rn_net_port(srv.net), 0);
    ASSERT_TRUE(fd >= 0);
    enum { N = 5 };
    for (int k = 0; k < N; k++) ASSERT_TRUE(send_req(fd, k % 2 ? 'E' : 'F', (uint32_t)(N - k) * 3, 0));
    for (int k = 0; k < N; k++) {
        size_t n;
        uint8_t *f = read_frame(fd, &n);
        ASSERT_TRUE(f != NULL);
        ASSERT_EQ(rd64(f), k);
        if (k % 2) {
            ASSERT_EQ(n, 12 + 9);
        } else {
            ASSERT_EQ(n, 12 + 4 + 300000 + 3 + 10 + 1 + 4);
            const uint8_t *p = f + 12;
            ASSERT_MEMEQ(p, "HEAD", 4);
            ASSERT_MEMEQ(p + 4, content + 1000, 300000);
            ASSERT_MEMEQ(p + 300004, "MID", 3);
            ASSERT_MEMEQ(p + 300007, content + 500000, 10);
            ASSERT_MEMEQ(p + 300017, content, 1);
            ASSERT_MEMEQ(p + 300018, "TAIL", 4);
        }
        free(f);
    }
    /* Only ours is left once the server has finished writing. */
    WAIT_UNTIL(atomic_load(&srv.file->refs) == 1, 3000);
    ASSERT_EQ(atomic_load(&srv.file->refs), 1);
    close(fd);
    free(content);
    srv_finish(&srv);
}

/* Responses that cannot be sent whole close the connection instead of
 * desynchronising the stream; other connections carry on. */
RN_TEST(net_unusable_responses_close_the_connection) {
    srv_t srv;
    uint8_t *content;
    int tfd = make_test_file(&content);
    ASSERT_TRUE(tfd >= 0);
    srv_start(&srv, test_config(), true);
    srv.file = rn_fileref_new(tfd);
    int port = rn_net_port(srv.net);
    int fd = cli_connect(port, 0);
    ASSERT_TRUE(send_req(fd, 'E', 0, 0));
    ASSERT_TRUE(send_req(fd, 'X', 5, 0));
    size_t n;
    uint8_t *f = read_frame(fd, &n);
    ASSERT_TRUE(f != NULL);
    free(f);
    ASSERT_TRUE(closed_by_server(fd));
    close(fd);
    fd = cli_connect(port, 0);
    ASSERT_TRUE(send_req(fd, 'Z', 0, 0));
    uint8_t h[4];
    ASSERT_TRUE(read_all(fd, h, 4));
    ASSERT_EQ(rn_load_be32(h), 12 + 4 + 100); /* announced... */
    uint8_t body[200];
    ASSERT_TRUE(read_all(fd, body, 12 + 4 + 10)); /* ...but the file has only 10 of the 100 */
    ASSERT_MEMEQ(body + 16, content + FILE_BYTES - 10, 10);
    ASSERT_TRUE(closed_by_server(fd));
    close(fd);
    WAIT_UNTIL(srv_stats(&srv).connections_open == 0, 3000);
    ASSERT_EQ(srv_stats(&srv).connections_open, 0);
    WAIT_UNTIL(atomic_load(&srv.file->refs) == 1, 3000);
    ASSERT_EQ(atomic_load(&srv.file->refs), 1);
    free(content);
    srv_finish(&srv);
}

/* A client that resets its connection mid-frame, with requests pending. */
RN_TEST(net_client_reset_with_pending_requests_and_partial_frame) {
    srv_t srv;
    srv_start(&srv, test_config(), true);
    int port = rn_net_port(srv.net);
    for (int k = 0; k < 4; k++) {
        int fd = cli_connect(port, 0);
        ASSERT_TRUE(fd >= 0);
        for (int i = 0; i < 5; i++) ASSERT_TRUE(send_req(fd, 'E', 30, 0));
        ASSERT_TRUE(send_req(fd, 'B', 0, 4 << 20)); /* a big answer queued behind them */
        uint8_t part[13 + 100], payload[100] = {0};
        build_req(part, 'E', 0, 0, payload, sizeof(payload));
        ASSERT_TRUE(write_all(fd, part, k == 0 ? 2 : 40)); /* half a header / half a frame */
        WAIT_UNTIL(srv_stats(&srv).requests_pending >= 5, 3000);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd); /* RST */
        WAIT_UNTIL(srv_stats(&srv).connections_open == 0, 3000);
        ASSERT_EQ(srv_stats(&srv).connections_open, 0);
        WAIT_UNTIL(srv_stats(&srv).requests_pending == 0, 3000);
        ASSERT_EQ(srv_stats(&srv).requests_pending, 0);
    }
    ASSERT_EQ(atomic_load(&srv.completed_orphans), 20);
    ASSERT_EQ(srv_stats(&srv).bytes_queued, 0);
    srv_finish(&srv);
}

/* A client that sends many requests with big responses and reads nothing:
 * the server stops reading, so what it buffers stays within the bound, and
 * everything arrives in order once the client reads. */
RN_TEST(net_backpressure_bounds_queued_bytes) {
    srv_t srv;
    rn_net_config_t cfg = test_config();
    cfg.queued_max_bytes = 256 * 1024;
    cfg.inflight_max = 8;
    srv_start(&srv, cfg, true);
    int fd = cli_connect(rn_net_port(srv.net), 64 * 1024);
    ASSERT_TRUE(fd >= 0);
    enum { N = 1000, RESP = 64 * 1024 };
    uint8_t *buf = malloc(N * 13);
    size_t len = 0;
    for (int i = 0; i < N; i++) len += build_req(buf + len, 'B', 0, RESP, NULL, 0);
    ASSERT_TRUE(write_all(fd, buf, len)); /* 13 KB: fits in the socket buffers */
    free(buf);
    /* Let the server run into the wall. */
    uint64_t prev = 0;
    for (int i = 0; i < 50; i++) {
        usleep(20000);
        uint64_t r = srv_stats(&srv).requests;
        if (i > 10 && r == prev) break;
        prev = r;
    }
    rn_net_stats_t st = srv_stats(&srv);
    ASSERT_LT(st.requests, N); /* it stopped reading */
    ASSERT_GT(st.requests, 0);
    ASSERT_LE(st.bytes_queued_conn_peak, cfg.queued_max_bytes + 12 + RESP + 4);
    ASSERT_LE(st.bytes_queued, cfg.queued_max_bytes + 12 + RESP + 4);
    for (int i = 0; i < N; i++) {
        size_t n;
        uint8_t *f = read_frame(fd, &n);
        ASSERT_TRUE(f != NULL);
        ASSERT_EQ(n, 12 + RESP);
        ASSERT_EQ(rd64(f), i);
        ASSERT_EQ(f[12 + 1000], pattern_byte((uint64_t)i, 1000));
        free(f);
    }
    st = srv_stats(&srv);
    ASSERT_EQ(st.requests, N);
    ASSERT_LE(st.bytes_queued_conn_peak, cfg.queued_max_bytes + 12 + RESP + 4);
    close(fd);
    srv_finish(&srv);
}

/* Idle connections close; a request held longer than idle_ms keeps its
 * connection open until the response is written, then idleness counts again. */
RN_TEST(net_idle_timeout_closes) {
    srv_t srv;
    rn_net_config_t cfg = test_config();
    cfg.idle_ms = 150;
    srv_start(&srv, cfg, true);
    int port = rn_net_port(srv.net);
    int idle = cli_connect(port, 0), busy = cli_connect(port, 0);
    ASSERT_TRUE(idle >= 0 && busy >= 0);
    int64_t t0 = rn_clock_mono_ms();
    ASSERT_TRUE(send_req(busy, 'E', 500, 0));
    ASSERT_TRUE(closed_by_server(idle));
    int64_t idle_took = rn_clock_mono_ms() - t0;
    ASSERT_GE(idle_took, 140);
    ASSERT_LT(idle_took, 2000);
    size_t n;
    uint8_t *f = read_frame(busy, &n);
    ASSERT_TRUE(f != NULL); /* not closed while the request was pending */
    ASSERT_GE(rn_clock_mono_ms() - t0, 490);
    free(f);
    ASSERT_TRUE(closed_by_server(busy));
    close(idle);
    close(busy);
    WAIT_UNTIL(srv_stats(&srv).connections_open == 0, 2000);
    ASSERT_EQ(srv_stats(&srv).connections_open, 0);
    srv_finish(&srv);
}

/* rn_req_close closes the connection; requests still pending on it complete
 * later into the void (their timers fire after the close). */
RN_TEST(net_req_close_with_requests_in_flight) {
    srv_t srv;
    srv_start(&srv, test_config(), true);
    int port = rn_net_port(srv.net);
    int fd = cli_connect(port, 0);
    ASSERT_TRUE(fd >= 0);
    ASSERT_TRUE(send_req(fd, 'E', 0, 0));   /* answered at once */
    ASSERT_TRUE(send_req(fd, 'E', 100, 0)); /* pending when the close comes */
    ASSERT_TRUE(send_req(fd, 'B', 150, 10)); /* likewise */
    ASSERT_TRUE(send_req(fd, 'C', 20, 0));
    ASSERT_TRUE(send_req(fd, 'E', 0, 0));   /* may or may not be read before the close */
    size_t n;
    uint8_t *f = read_frame(fd, &n);
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(rd64(f), 0);
    free(f);
    ASSERT_TRUE(closed_by_server(fd)); /* nothing after seq 0: seq 1 was still pending */
    close(fd);
    WAIT_UNTIL(atomic_load(&srv.completed_orphans) == 2, 3000);
    ASSERT_EQ(atomic_load(&srv.completed_orphans), 2);
    rn_net_stats_t st = srv_stats(&srv);
    ASSERT_EQ(st.requests_pending, 0);
    ASSERT_EQ(st.connections_open, 0);
    ASSERT_EQ(st.closed_bad_input, 1);
    /* A frame too short for the test protocol: the handler closes at once. */
    fd = cli_connect(port, 0);
    uint8_t h[6] = {0, 0, 0, 2, 'x', 'y'};
    ASSERT_TRUE(write_all(fd, h, sizeof(h)));
    ASSERT_TRUE(closed_by_server(fd));
    close(fd);
    srv_finish(&srv);
}

RN_TEST(net_max_connections_refuses_extra) {
    srv_t srv;
    rn_net_config_t cfg = test_config();
    cfg.max_connections = 3;
    srv_start(&srv, cfg, true);
    int port = rn_net_port(srv.net);
    int fds[5];
    for (int i = 0; i < 3; i++) {
        fds[i] = cli_connect(port, 0);
        ASSERT_TRUE(fds[i] >= 0);
    }
    WAIT_UNTIL(srv_stats(&srv).connections_open == 3, 3000);
    for (int i = 3; i < 5; i++) {
        fds[i] = cli_connect(port, 0);
        ASSERT_TRUE(fds[i] >= 0);
        ASSERT_TRUE(closed_by_server(fds[i]));
    }
    WAIT_UNTIL(srv_stats(&srv).connections_refused == 2, 3000);
    ASSERT_EQ(srv_stats(&srv).connections_refused, 2);
    ASSERT_TRUE(send_req(fds[0], 'E', 0, 0));
    size_t n;
    uint8_t *f = read_frame(fds[0], &n);
    ASSERT_TRUE(f != NULL);
    free(f);
    close(fds[1]); /* a slot frees up */
    WAIT_UNTIL(srv_stats(&srv).connections_open == 2, 3000);
    int again = cli_connect(port, 0);
    ASSERT_TRUE(send_req(again, 'E', 0, 0));
    f = read_frame(again, &n);
    ASSERT_TRUE(f != NULL);
    free(f);
    close(again);
    for (int i = 0; i < 5; i++)
        if (i != 1) close(fds[i]);
    srv_finish(&srv);
}

/* Shutdown with requests the handler still holds: on_stop completes them on
 * their loops; connections and the held requests are freed (ASan checks). */
RN_TEST(net_stop_with_pending_requests_and_on_stop) {
    srv_t srv;
    srv_start(&srv, test_config(), true);
    int port = rn_net_port(srv.net);
    int fds[8];
    for (int c = 0; c < 8; c++) {
        fds[c] = cli_connect(port, 0);
        ASSERT_TRUE(fds[c] >= 0);
        for (int i = 0; i < 5; i++) ASSERT_TRUE(send_req(fds[c], i % 2 ? 'H' : 'E', i % 2 ? 0 : 60000, 0));
    }
    WAIT_UNTIL(srv_stats(&srv).requests_pending == 40, 5000);
    ASSERT_EQ(srv_stats(&srv).requests_pending, 40);
    int64_t t0 = rn_clock_mono_ms();
    rn_net_stop(srv.net);
    ASSERT_LT(rn_clock_mono_ms() - t0, 2000);
    ASSERT_EQ(atomic_load(&srv.on_stop_calls), 2);
    ASSERT_EQ(atomic_load(&srv.completed_orphans), 40);
    ASSERT_EQ(atomic_load(&srv.wrong_thread), 0);
    rn_net_stats_t st = srv_stats(&srv);
    ASSERT_EQ(st.requests_pending, 0);
    ASSERT_EQ(st.connections_open, 0);
    for (int c = 0; c < 8; c++) {
        ASSERT_TRUE(closed_by_server(fds[c]));
        close(fds[c]);
    }
    /* Refused now: nobody listens. */
    ASSERT_EQ(cli_connect(port, 0), -1);
    srv_finish(&srv);
}

/* Without on_stop, rn_net_stop waits on the loops until the handler's own
 * timers have completed every request. */
RN_TEST(net_stop_drains_pending_requests_without_on_stop) {
    srv_t srv;
    srv_start(&srv, test_config(), false);
    int port = rn_net_port(srv.net);
    int fds[4];
    for (int c = 0; c < 4; c++) {
        fds[c] = cli_connect(port, 0);
        ASSERT_TRUE(fds[c] >= 0);
        for (int i = 0; i < 10; i++) ASSERT_TRUE(send_req(fds[c], 'E', 200 + (uint32_t)i * 10, 0));
    }
    WAIT_UNTIL(srv_stats(&srv).requests_pending == 40, 5000);
    int64_t t0 = rn_clock_mono_ms();
    rn_net_stop(srv.net);
    int64_t took = rn_clock_mono_ms() - t0;
    ASSERT_GE(took, 150);
    ASSERT_LT(took, 5000);
    ASSERT_EQ(atomic_load(&srv.completed_orphans), 40);
    ASSERT_EQ(srv_stats(&srv).requests_pending, 0);
    for (int c = 0; c < 4; c++) close(fds[c]);
    srv_finish(&srv);
}

RN_TEST(net_ipv6_listener) {
    srv_t srv;
    rn_net_config_t cfg = test_config();
    cfg.host = "::1";
    cfg.threads = 1;
    memset(&srv, 0, sizeof(srv));
    rn_net_handler_t h = {.on_request = srv_on_request, .ctx = &srv};
    if (rn_net_new(&srv.net, &cfg, h) != RN_OK) {
        printf("  (no IPv6 loopback here: skipped)\n");
        return;
    }
    ASSERT_EQ(rn_net_start(srv.net), RN_OK);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)rn_net_port(srv.net))};
    sa.sin6_addr = in6addr_loopback;
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ASSERT_TRUE(send_req(fd, 'E', 0, 0));
    size_t n;
    uint8_t *f = read_frame(fd, &n);
    ASSERT_TRUE(f != NULL);
    free(f);
    close(fd);
    srv_finish(&srv);
}

/* Extra listeners (a controller listener): each thread accepts on every one, and
 * connections from either are served alike; ports asked as 0 are picked per listener. */
RN_TEST(net_extra_listeners) {
    srv_t srv;
    rn_net_config_t cfg = test_config();
    cfg.nextra = 2;
    cfg.extra[0] = (rn_net_listen_t){"127.0.0.1", 0};
    cfg.extra[1] = (rn_net_listen_t){"127.0.0.1", 0};
    srv_start(&srv, cfg, false);
    int ports[3];
    for (int i = 0; i < 3; i++) {
        ports[i] = rn_net_listener_port(srv.net, i);
        ASSERT_GT(ports[i], 0);
        for (int k = 0; k < i; k++) ASSERT_NE(ports[i], ports[k]);
    }
    ASSERT_EQ(ports[0], rn_net_port(srv.net));
    ASSERT_EQ(rn_net_listener_port(srv.net, 3), -1);
    for (int round = 0; round < 4; round++) /* several connections each: both threads' sockets */
        for (int i = 0; i < 3; i++) {
            int fd = cli_connect(ports[i], 0);
            ASSERT_TRUE(fd >= 0);
            ASSERT_TRUE(send_req(fd, 'E', 0, 0));
            size_t n;
            uint8_t *f = read_frame(fd, &n);
            ASSERT_TRUE(f != NULL);
            free(f);
            close(fd);
        }
    srv_finish(&srv);
    /* Too many listeners: refused. */
    cfg.nextra = RN_NET_LISTENERS_MAX;
    rn_net_t *net;
    rn_net_handler_t h = {.on_request = srv_on_request, .ctx = &srv};
    ASSERT_EQ(rn_net_new(&net, &cfg, h), RN_ERR_INVALID_ARG);
}

/* Stop without start, and free without stop, are both fine. */
RN_TEST(net_lifecycle_edges) {
    srv_t srv;
    memset(&srv, 0, sizeof(srv));
    rn_net_config_t cfg = test_config();
    rn_net_handler_t h = {.on_request = srv_on_request, .ctx = &srv};
    rn_net_t *net;
    ASSERT_EQ(rn_net_new(&net, &cfg, h), RN_OK);
    ASSERT_GT(rn_net_port(net), 0);
    ASSERT_EQ(rn_net_threads(net), 2);
    ASSERT_TRUE(rn_net_loop(net, 1) != NULL);
    rn_net_free(net);
    ASSERT_EQ(rn_net_new(&net, &cfg, h), RN_OK);
    ASSERT_EQ(rn_net_start(net), RN_OK);
    int fd = cli_connect(rn_net_port(net), 0);
    ASSERT_TRUE(fd >= 0);
    ASSERT_TRUE(send_req(fd, 'E', 0, 0));
    size_t n;
    uint8_t *f = read_frame(fd, &n);
    ASSERT_TRUE(f != NULL);
    free(f);
    rn_net_free(net);
    close(fd);
    /* A port in use by a non-reuseport socket fails cleanly. */
    int blocker = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(blocker, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ASSERT_EQ(listen(blocker, 1), 0);
    socklen_t sl = sizeof(sa);
    getsockname(blocker, (struct sockaddr *)&sa, &sl);
    cfg.port = ntohs(sa.sin_port);
    ASSERT_NE(rn_net_new(&net, &cfg, h), RN_OK);
    close(blocker);
}

int main(void) {
    rn_log_set_level(RN_LOG_INFO);
    return rn_test_main();
}
