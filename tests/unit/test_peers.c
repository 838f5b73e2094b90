/*
 * test_peers.c — one-way node-to-node messages (src/cluster/rn_peers.c)
 * against real rn_net servers on loopback.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_header.h"
#include "rn_net.h"
#include "rn_peers.h"
#include "rn_test.h"
#include "test_net_util.h"

#define API_TEST 30000

typedef struct {
    rn_net_t *net;
    pthread_mutex_t lock;
    uint32_t got[4096];
    int ngot;
    int bad;
} srv_t;

static void collect(void *arg, const uint8_t *msg, size_t len) {
    srv_t *s = arg;
    uint32_t v = len >= 4 ? (uint32_t)rn_load_be32(msg) : 0xffffffffu;
    for (size_t i = 4; i < len; i++)
        if (msg[i] != (uint8_t)(v + i)) v = 0xfffffffeu; /* payload damaged */
    pthread_mutex_lock(&s->lock);
    if (s->ngot < 4096) s->got[s->ngot++] = v;
    pthread_mutex_unlock(&s->lock);
}

static void on_request(void *ctx, rn_req_t *req) {
    srv_t *s = ctx;
    rn_reader_t r;
    rn_reader_init(&r, req->frame, req->frame_len);
    rn_req_header_t h;
    if (rn_req_header_decode(&r, &h) || h.api_key != API_TEST ||
        rn_peers_each(req->frame + r.pos, rn_reader_remaining(&r), collect, s)) {
        s->bad++;
        rn_req_close(req, "bad peer request");
        return;
    }
    tn_respond_empty(req, &h);
}

static srv_t *srv_start(void) {
    srv_t *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    rn_net_config_t cfg = {.host = "127.0.0.1", .port = 0, .threads = 1};
    rn_net_handler_t hd = {on_request, s, NULL};
    ASSERT_EQ(rn_net_new(&s->net, &cfg, hd), RN_OK);
    ASSERT_EQ(rn_net_start(s->net), RN_OK);
    return s;
}

static void srv_stop(srv_t *s) {
    rn_net_stop(s->net);
    rn_net_free(s->net);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int srv_count(srv_t *s) {
    pthread_mutex_lock(&s->lock);
    int n = s->ngot;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static bool wait_count(srv_t *s, int n, int64_t ms) {
    int64_t end = rn_clock_mono_ms() + ms;
    while (srv_count(s) < n && rn_clock_mono_ms() < end) usleep(2000);
    return srv_count(s) >= n;
}

static void send_msg(rn_peers_t *p, int32_t to, uint32_t v, size_t len, bool expect) {
    uint8_t buf[70000];
    rn_store_be32(buf, v);
    for (size_t i = 4; i < len; i++) buf[i] = (uint8_t)(v + i);
    ASSERT_EQ(rn_peers_send(p, to, buf, len), expect);
}

RN_TEST(peers_deliver_in_order_in_batches) {
    srv_t *s = srv_start();
    rn_peers_config_t pc = {.self = 1, .api_key = API_TEST};
    rn_peers_t *p;
    ASSERT_EQ(rn_peers_new(&pc, &p), RN_OK);
    ASSERT_EQ(rn_peers_set(p, 2, "127.0.0.1", rn_net_port(s->net)), RN_OK);
    ASSERT_EQ(rn_peers_set(p, 1, "127.0.0.1", 1), RN_OK); /* itself: ignored */
    send_msg(p, 9, 0, 8, false);                            /* unknown peer */
    for (uint32_t i = 0; i < 1000; i++) send_msg(p, 2, i, 4 + (i * 37) % 3000, true);
    send_msg(p, 2, 1000, 65000, true);
    ASSERT_TRUE(wait_count(s, 1001, 10000));
    for (int i = 0; i <= 1000; i++) ASSERT_EQ(s->got[i], (uint32_t)i);
    ASSERT_EQ(s->bad, 0);
    rn_peers_free(p);
    srv_stop(s);
}

RN_TEST(peers_bound_queues_and_follow_address_changes) {
    rn_peers_config_t pc = {.self = 1, .api_key = API_TEST, .queue_max = 8, .timeout_ms = 500};
    rn_peers_t *p;
    ASSERT_EQ(rn_peers_new(&pc, &p), RN_OK);
    ASSERT_EQ(rn_peers_set(p, 2, "127.0.0.1", 1), RN_OK); /* nothing listens there */
    int accepted = 0;
    for (uint32_t i = 0; i < 100; i++) {
        uint8_t m[8] = {0};
        accepted += rn_peers_send(p, 2, m, sizeof(m));
    }
    ASSERT_LT(accepted, 100); /* the queue holds 8; the rest is dropped, not buffered */
    ASSERT_GT(rn_peers_dropped(p), 0);
    srv_t *s = srv_start();
    ASSERT_EQ(rn_peers_set(p, 2, "127.0.0.1", rn_net_port(s->net)), RN_OK);
    usleep(200 * 1000);
    for (uint32_t i = 0; i < 5; i++) send_msg(p, 2, 500 + i, 16, true);
    bool saw_last = false; /* messages queued before may arrive too */
    for (int64_t end = rn_clock_mono_ms() + 10000; !saw_last && rn_clock_mono_ms() < end; usleep(2000)) {
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < s->ngot; i++) saw_last |= s->got[i] == 504;
        pthread_mutex_unlock(&s->lock);
    }
    ASSERT_TRUE(saw_last);
    rn_peers_free(p);
    srv_stop(s);
}

static void count_msgs(void *arg, const uint8_t *msg, size_t len) { (*(int *)arg)++; }

RN_TEST(peers_each_refuses_malformed_bodies_whole) {
    uint8_t ok[] = {0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 0};
    int n = 0;
    ASSERT_EQ(rn_peers_each(ok, sizeof(ok), count_msgs, &n), RN_OK);
    ASSERT_EQ(n, 2);
    uint8_t short_len[] = {0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 9, 'b'};
    uint8_t trailing[] = {0, 0, 0, 1, 0, 0, 0, 1, 'a', 'x'};
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 'a'};
    n = 0;
    ASSERT_EQ(rn_peers_each(short_len, sizeof(short_len), count_msgs, &n), RN_ERR_MALFORMED);
    ASSERT_EQ(rn_peers_each(trailing, sizeof(trailing), count_msgs, &n), RN_ERR_MALFORMED);
    ASSERT_EQ(rn_peers_each(huge, sizeof(huge), count_msgs, &n), RN_ERR_MALFORMED);
    ASSERT_EQ(rn_peers_each(huge, 2, count_msgs, &n), RN_ERR_MALFORMED);
    ASSERT_EQ(n, 0); /* nothing delivered from a bad body */
}

int main(void) { return rn_test_main(); }
