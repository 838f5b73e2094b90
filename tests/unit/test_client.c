/*
 * test_client.c — the blocking inter-node client (src/net/rn_client.c)
 * against a real rn_net server on loopback. The server reads the request
 * header and, by the request body's first byte, answers with another
 * correlation id ('W'), never answers ('N'), closes ('C'), or else echoes the
 * body.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_client.h"
#include "rn_clock.h"
#include "rn_header.h"
#include "rn_net.h"
#include "rn_test.h"

typedef struct {
    rn_net_t *net;
    rn_req_t *held[64];
    int nheld;
} srv_t;

static void srv_on_request(void *ctx, rn_req_t *req) {
    srv_t *srv = ctx;
    rn_reader_t r;
    rn_reader_init(&r, req->frame, req->frame_len);
    rn_req_header_t h;
    if (rn_req_header_decode(&r, &h) || rn_reader_remaining(&r) == 0) {
        rn_req_close(req, "bad test request");
        return;
    }
    const uint8_t *body = req->frame + r.pos;
    size_t blen = rn_reader_remaining(&r);
    if (body[0] == 'N') {
        if (srv->nheld < 64) srv->held[srv->nheld++] = req;
        else rn_req_no_response(req);
        return;
    }
    if (body[0] == 'C') {
        rn_req_close(req, "test asked to close");
        return;
    }
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_resp_header_encode(&b, h.api_key, h.api_version, body[0] == 'W' ? h.correlation_id + 100 : h.correlation_id);
    rn_buf_put(&b, body, blen);
    rn_req_respond(req, &b);
    rn_buf_free(&b);
}

static void srv_on_stop(void *ctx, rn_loop_t *loop) {
    srv_t *srv = ctx;
    for (int i = 0; i < srv->nheld; i++) rn_req_no_response(srv->held[i]);
    srv->nheld = 0;
}

static srv_t *srv_start(void) {
    srv_t *srv = calloc(1, sizeof(*srv));
    rn_net_config_t cfg = {.host = "127.0.0.1", .port = 0, .threads = 1};
    rn_net_handler_t hd = {srv_on_request, srv, srv_on_stop};
    ASSERT_EQ(rn_net_new(&srv->net, &cfg, hd), RN_OK);
    ASSERT_EQ(rn_net_start(srv->net), RN_OK);
    return srv;
}

static void srv_stop(srv_t *srv) {
    rn_net_stop(srv->net);
    rn_net_free(srv->net);
    free(srv);
}

static rn_client_t *client_for(srv_t *srv, int64_t timeout_ms, size_t max_resp) {
    rn_client_config_t cc = {.host = "127.0.0.1",
                             .port = rn_net_port(srv->net),
                             .client_id = "test-client",
                             .timeout_ms = timeout_ms,
                             .max_response_bytes = max_resp};
    rn_client_t *c;
    ASSERT_EQ(rn_client_new(&cc, &c), RN_OK);
    return c;
}

static rn_err_t call_with(rn_client_t *c, int16_t key, int16_t ver, const char *body, rn_buf_t *resp) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_buf_put(&b, body, strlen(body));
    rn_err_t err = rn_client_call(c, key, ver, &b, resp);
    rn_buf_free(&b);
    return err;
}

RN_TEST(client_round_trips_classic_and_flexible_headers) {
    srv_t *srv = srv_start();
    rn_client_t *c = client_for(srv, 5000, 0);
    rn_buf_t resp;
    rn_buf_init(&resp, 1 << 20);
    /* Metadata v1: header v1 / response v0. Fetch v12: header v2 / response v1 (tagged fields). */
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ(call_with(c, 3, 1, "Ehello", &resp), RN_OK);
        ASSERT_EQ(resp.len, 6);
        ASSERT_MEMEQ(resp.data, "Ehello", 6);
        ASSERT_EQ(call_with(c, 1, 12, "Eflexible body", &resp), RN_OK);
        ASSERT_EQ(resp.len, 14);
        ASSERT_MEMEQ(resp.data, "Eflexible body", 14);
    }
    ASSERT_TRUE(rn_client_connected(c));
    rn_buf_free(&resp);
    rn_client_free(c);
    srv_stop(srv);
}

RN_TEST(client_reconnects_after_close_and_refuses_stray_frames) {
    srv_t *srv = srv_start();
    rn_client_t *c = client_for(srv, 5000, 0);
    rn_buf_t resp;
    rn_buf_init(&resp, 1 << 20);
    ASSERT_EQ(call_with(c, 3, 1, "Ea", &resp), RN_OK);
    ASSERT_EQ(call_with(c, 3, 1, "C", &resp), RN_ERR_IO); /* server closed */
    ASSERT_FALSE(rn_client_connected(c));
    ASSERT_EQ(call_with(c, 3, 1, "Eb", &resp), RN_OK); /* reconnected */
    ASSERT_EQ(call_with(c, 3, 1, "W", &resp), RN_ERR_MALFORMED); /* wrong correlation id */
    ASSERT_FALSE(rn_client_connected(c));
    ASSERT_EQ(call_with(c, 3, 1, "Ec", &resp), RN_OK);
    rn_buf_free(&resp);
    rn_client_free(c);
    srv_stop(srv);
}

RN_TEST(client_bounds_waits_and_response_sizes) {
    srv_t *srv = srv_start();
    rn_client_t *c = client_for(srv, 300, 64);
    rn_buf_t resp;
    rn_buf_init(&resp, 1 << 20);
    int64_t t0 = rn_clock_mono_ms();
    ASSERT_EQ(call_with(c, 3, 1, "N", &resp), RN_ERR_IO); /* no answer: the timeout */
    int64_t took = rn_clock_mono_ms() - t0;
    ASSERT_GE(took, 290);
    ASSERT_LT(took, 3000);
    char big[200];
    memset(big, 'L', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    ASSERT_EQ(call_with(c, 3, 1, big, &resp), RN_ERR_LIMIT); /* 200 bytes > 64 */
    ASSERT_EQ(call_with(c, 3, 1, "Eok", &resp), RN_OK);
    rn_buf_free(&resp);
    rn_client_free(c);
    srv_stop(srv);
    /* Nothing listening: a prompt error, not a hang. */
    rn_client_config_t cc = {.host = "127.0.0.1", .port = 1, .timeout_ms = 2000};
    ASSERT_EQ(rn_client_new(&cc, &c), RN_OK);
    rn_buf_init(&resp, 1 << 20);
    ASSERT_EQ(call_with(c, 3, 1, "Ex", &resp), RN_ERR_IO);
    rn_buf_free(&resp);
    rn_client_free(c);
}

static void *interrupt_later(void *arg) {
    usleep(200 * 1000);
    rn_client_interrupt(arg);
    return NULL;
}

RN_TEST(client_interrupt_ends_a_blocked_call) {
    srv_t *srv = srv_start();
    rn_client_t *c = client_for(srv, 60000, 0);
    rn_buf_t resp;
    rn_buf_init(&resp, 1 << 20);
    pthread_t t;
    pthread_create(&t, NULL, interrupt_later, c);
    int64_t t0 = rn_clock_mono_ms();
    ASSERT_EQ(call_with(c, 3, 1, "N", &resp), RN_ERR_AGAIN);
    ASSERT_LT(rn_clock_mono_ms() - t0, 5000);
    pthread_join(t, NULL);
    ASSERT_EQ(call_with(c, 3, 1, "Ey", &resp), RN_ERR_AGAIN); /* sticky: shutting down */
    rn_buf_free(&resp);
    rn_client_free(c);
    srv_stop(srv);
}

int main(void) { return rn_test_main(); }
