/*
 * test_cluster_roles.c — process.roles and the listeners (src/cluster/rn_cluster_roles.c,
 * src/broker/rn_config.c): which configurations a node accepts, with the message it
 * refuses the others with; and the metadata feed broker-only nodes read
 * (src/cluster/rn_meta_feed.c): tail, eviction, snapshot fallback, codec.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_cluster_roles.h"
#include "rn_config.h"
#include "rn_meta_feed.h"
#include "rn_test.h"

/* Loads a broker config from "key=value" pairs (NULL-terminated) and checks its roles.
 * Returns the error; *msg gets the message. */
static rn_err_t roles_of(rn_cluster_roles_t *out, char *msg, size_t cap, ...) {
    rn_config_set_t set;
    rn_config_set_init(&set);
    va_list ap;
    va_start(ap, cap);
    for (const char *kv; (kv = va_arg(ap, const char *));) {
        const char *eq = strchr(kv, '=');
        rn_config_set_put_n(&set, kv, (size_t)(eq - kv), eq + 1, strlen(eq + 1), false);
    }
    va_end(ap);
    rn_broker_config_t cfg;
    msg[0] = 0;
    rn_err_t err = rn_broker_config_load(&cfg, &set, msg, cap);
    if (!err) err = rn_cluster_roles_parse(&cfg, out, msg, cap);
    rn_broker_config_free(&cfg);
    rn_config_set_free(&set);
    return err;
}

#define V3 "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095"

RN_TEST(combined_node_as_before) {
    rn_cluster_roles_t r;
    char msg[512];
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=2", V3, NULL), RN_OK);
    ASSERT_TRUE(r.broker && r.controller);
    ASSERT_EQ(r.nvoters, 3);
    ASSERT_EQ(r.voters[1].port, 9094);
    ASSERT_TRUE(!r.join);
    /* Not a voter: it joins the quorum (a learner until AddRaftVoter). */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=7", V3, NULL), RN_OK);
    ASSERT_TRUE(r.controller && r.join);
    /* Only bootstrap servers: joins too. */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=7", "controller.quorum.bootstrap.servers=127.0.0.1:9093", NULL),
              RN_OK);
    ASSERT_TRUE(r.controller && r.join && r.nvoters == 0 && r.nbootstrap == 1);
}

RN_TEST(controller_only_needs_voters_and_a_controller_listener) {
    rn_cluster_roles_t r;
    char msg[512];
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=1", "process.roles=controller",
                       "listeners=CONTROLLER://127.0.0.1:9093", "controller.listener.names=CONTROLLER", V3, NULL),
              RN_OK);
    ASSERT_TRUE(r.controller && !r.broker);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=1", "process.roles=controller",
                       "listeners=CONTROLLER://127.0.0.1:9093", "controller.listener.names=CONTROLLER", NULL),
              RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "controller.quorum.voters must list the voters") != NULL);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=1", "process.roles=controller", V3, NULL),
              RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "controller.listener.names must name") != NULL);
    /* A client listener on a controller-only node. */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=1", "process.roles=controller",
                       "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                       "controller.listener.names=CONTROLLER", V3, NULL),
              RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "serves no clients") != NULL);
    /* The controller listener named is not among listeners. */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=1", "process.roles=controller",
                       "listeners=CTL://127.0.0.1:9093", "listener.security.protocol.map=CTL:PLAINTEXT",
                       "controller.listener.names=CONTROLLER", V3, NULL),
              RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "names none of listeners") != NULL);
}

RN_TEST(broker_only_needs_the_controllers_and_is_no_voter) {
    rn_cluster_roles_t r;
    char msg[512];
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=4", "process.roles=broker", V3, NULL), RN_OK);
    ASSERT_TRUE(r.broker && !r.controller);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=4", "process.roles=broker",
                       "controller.quorum.bootstrap.servers=127.0.0.1:9093, [::1]:9094", NULL),
              RN_OK);
    ASSERT_EQ(r.nvoters, 0);
    ASSERT_EQ(r.nbootstrap, 2);
    ASSERT_STREQ(r.bootstrap[1].host, "::1");
    ASSERT_EQ(r.bootstrap[1].port, 9094);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=4", "process.roles=broker", NULL), RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "controller.quorum.bootstrap.servers") != NULL);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=4", "process.roles=broker",
                       "controller.quorum.bootstrap.servers=127.0.0.1", NULL),
              RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "is not a list of host:port") != NULL);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=2", "process.roles=broker", V3, NULL), RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "is a voter but process.roles=broker") != NULL);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=4", "process.roles=broker",
                       "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                       "controller.listener.names=CONTROLLER", V3, NULL),
              RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "runs no controller") != NULL);
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=70000", "process.roles=broker", V3, NULL),
              RN_ERR_INVALID_CONFIG);
}

RN_TEST(zero_config_is_a_one_voter_quorum) {
    rn_cluster_roles_t r;
    char msg[256];
    /* Nothing set: node.id 1, both roles, the lone voter at its own listener. */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "listeners=PLAINTEXT://127.0.0.1:9092", NULL), RN_OK);
    ASSERT_TRUE(r.broker && r.controller && r.implied);
    ASSERT_EQ(r.nvoters, 1);
    ASSERT_EQ(r.voters[0].id, 1);
    ASSERT_STREQ(r.voters[0].host, "127.0.0.1");
    ASSERT_EQ(r.voters[0].port, 9092);
    /* A wildcard listener is reached on loopback; the controller listener is the voter's. */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=7", "listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://:9093",
                       "controller.listener.names=CONTROLLER", NULL),
              RN_OK);
    ASSERT_TRUE(r.implied);
    ASSERT_EQ(r.voters[0].id, 7);
    ASSERT_STREQ(r.voters[0].host, "127.0.0.1");
    ASSERT_EQ(r.voters[0].port, 9093);
    /* Voters given: as configured, nothing implied. */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "node.id=1", V3, NULL), RN_OK);
    ASSERT_FALSE(r.implied);
    ASSERT_EQ(r.nvoters, 3);
    /* A lone role still needs to be told where the others are. */
    ASSERT_EQ(roles_of(&r, msg, sizeof(msg), "process.roles=broker", NULL), RN_ERR_INVALID_CONFIG);
}

RN_TEST(listeners_client_and_controller) {
    rn_config_set_t set;
    rn_broker_config_t cfg;
    char msg[256];
    rn_config_set_init(&set);
    rn_config_set_put(&set, "listeners", "CONTROLLER://127.0.0.1:9093, PLAINTEXT://0.0.0.0:9092");
    rn_config_set_put(&set, "controller.listener.names", "CONTROLLER");
    ASSERT_EQ(rn_broker_config_load(&cfg, &set, msg, sizeof(msg)), RN_OK);
    ASSERT_EQ(cfg.nlisteners, 2);
    ASSERT_EQ(cfg.controller_listener, 0);
    ASSERT_EQ(cfg.client_listener, 1);
    ASSERT_EQ(cfg.listener_port, 9092); /* clients' */
    ASSERT_STREQ(cfg.advertised_host, "127.0.0.1");
    ASSERT_EQ(cfg.advertised_port, 9092);
    rn_broker_config_free(&cfg);
    /* advertised.listeners: the entry of the client listener's name. */
    rn_config_set_put(&set, "advertised.listeners", "CONTROLLER://ctl:1,PLAINTEXT://kafka.example:19092");
    ASSERT_EQ(rn_broker_config_load(&cfg, &set, msg, sizeof(msg)), RN_OK);
    ASSERT_STREQ(cfg.advertised_host, "kafka.example");
    ASSERT_EQ(cfg.advertised_port, 19092);
    ASSERT_STREQ(cfg.listeners[0].adv_host, "ctl"); /* each listener its own entry */
    ASSERT_EQ(cfg.listeners[0].adv_port, 1);
    rn_broker_config_free(&cfg);
    /* Several client listeners: unnamed ones advertise their own address; the inter-broker
     * listener must be one of them. */
    rn_config_set_put(&set, "listeners", "INTERNAL://10.0.0.1:9092,EXTERNAL://0.0.0.0:9094,CONTROLLER://10.0.0.1:9093");
    rn_config_set_put(&set, "listener.security.protocol.map", "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT");
    rn_config_set_put(&set, "advertised.listeners", "EXTERNAL://kafka.example:9094");
    rn_config_set_put(&set, "inter.broker.listener.name", "INTERNAL");
    ASSERT_EQ(rn_broker_config_load(&cfg, &set, msg, sizeof(msg)), RN_OK);
    ASSERT_EQ(cfg.client_listener, 0);
    ASSERT_STREQ(cfg.listeners[0].adv_host, "10.0.0.1");
    ASSERT_STREQ(cfg.listeners[1].adv_host, "kafka.example");
    ASSERT_EQ(cfg.listeners[1].adv_port, 9094);
    rn_broker_config_free(&cfg);
    rn_config_set_put(&set, "inter.broker.listener.name", "CONTROLLER");
    ASSERT_NE(rn_broker_config_load(&cfg, &set, msg, sizeof(msg)), RN_OK);
    ASSERT_TRUE(strstr(msg, "inter.broker.listener.name") != NULL);
    rn_broker_config_free(&cfg);
    rn_config_set_del(&set, "inter.broker.listener.name");
    rn_config_set_put(&set, "listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
    rn_config_set_put(&set, "listeners", "CONTROLLER://127.0.0.1:9093, PLAINTEXT://0.0.0.0:9092");
    rn_config_set_put(&set, "advertised.listeners", "CONTROLLER://ctl:1,PLAINTEXT://kafka.example:19092");
    /* Refused: a name twice, no protocol for a name, a protocol other than PLAINTEXT, too many. */
    const char *bad[][2] = {
        {"PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2", "used twice"},
        {"INTERNAL://127.0.0.1:1", "no security protocol for listener INTERNAL"},
        {"SASL_SSL://127.0.0.1:1", "only PLAINTEXT is supported"},
        {"A://h:1,B://h:2,C://h:3,D://h:4,E://h:5", "at most 4 listeners"},
        {"PLAINTEXT://127.0.0.1", "not a list of NAME://host:port"},
    };
    rn_config_set_del(&set, "advertised.listeners");
    rn_config_set_put(&set, "listener.security.protocol.map", "A:PLAINTEXT,B:PLAINTEXT,C:PLAINTEXT,D:PLAINTEXT,E:PLAINTEXT");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rn_config_set_put(&set, "listeners", bad[i][0]);
        ASSERT_NE(rn_broker_config_load(&cfg, &set, msg, sizeof(msg)), RN_OK);
        if (!strstr(msg, bad[i][1])) printf("listeners=%s: %s\n", bad[i][0], msg);
        ASSERT_TRUE(strstr(msg, bad[i][1]) != NULL);
        rn_broker_config_free(&cfg);
    }
    rn_config_set_free(&set);
}

/* ---- the feed ---- */

static void put(rn_meta_feed_t *f, uint64_t index, size_t len) {
    uint8_t buf[256];
    memset(buf, (int)(index & 0xff), len);
    rn_meta_feed_append(f, index, buf, len);
}

RN_TEST(feed_tail_eviction_and_coverage) {
    rn_meta_feed_t *f = rn_meta_feed_new(1000);
    ASSERT_TRUE(rn_meta_feed_covers(f, 0));
    for (uint64_t i = 1; i <= 5; i++) put(f, i * 2, 100); /* gaps: Raft's no-ops are not here */
    ASSERT_EQ(rn_meta_feed_last(f), 10);
    ASSERT_TRUE(rn_meta_feed_covers(f, 0));
    rn_buf_t out;
    rn_buf_init(&out, 1 << 20);
    ASSERT_TRUE(rn_meta_feed_read(f, 3, 1 << 20, &out));
    /* Entries after 3: 4, 6, 8, 10. */
    rn_buf_t resp;
    rn_buf_init(&resp, 1 << 20);
    rn_meta_feed_resp_header_encode(&resp, 0, 2, "127.0.0.1", 9093, "cid", RN_META_FEED_KIND_ENTRIES);
    rn_buf_put(&resp, out.data, out.len);
    rn_meta_feed_resp_t r;
    ASSERT_EQ(rn_meta_feed_resp_decode(resp.data, resp.len, 3, &r), RN_OK);
    ASSERT_EQ(r.count, 4);
    ASSERT_EQ(r.leader_id, 2);
    ASSERT_EQ(r.leader_port, 9093);
    ASSERT_EQ(r.cluster_id.len, 3);
    size_t pos = 0;
    uint64_t index, want = 4;
    const uint8_t *data;
    size_t len;
    while (rn_meta_feed_resp_next(&r, &pos, &index, &data, &len)) {
        ASSERT_EQ(index, want);
        ASSERT_EQ(len, 100);
        ASSERT_EQ(data[99], want);
        want += 2;
    }
    ASSERT_EQ(want, 12);
    /* A response's entries must lie above what the requester has. */
    ASSERT_EQ(rn_meta_feed_resp_decode(resp.data, resp.len, 4, &r), RN_ERR_MALFORMED);
    /* Every truncation is refused whole. */
    for (size_t cut = 0; cut < resp.len; cut++)
        ASSERT_EQ(rn_meta_feed_resp_decode(resp.data, cut, 3, &r), RN_ERR_MALFORMED);
    /* A byte limit still gives at least one entry. */
    rn_buf_reset(&out);
    ASSERT_TRUE(rn_meta_feed_read(f, 0, 1, &out));
    ASSERT_EQ(out.len, 4 + 12 + 100);

    /* Past 1000 bytes the oldest go: from 0 is no longer covered (a snapshot then). */
    for (uint64_t i = 6; i <= 12; i++) put(f, i * 2, 100);
    ASSERT_FALSE(rn_meta_feed_covers(f, 0));
    rn_buf_reset(&out);
    ASSERT_FALSE(rn_meta_feed_read(f, 0, 1 << 20, &out));
    ASSERT_EQ(out.len, 0);
    ASSERT_TRUE(rn_meta_feed_covers(f, rn_meta_feed_last(f)));
    /* A snapshot load: nothing before it. */
    rn_meta_feed_reset(f, 100);
    ASSERT_FALSE(rn_meta_feed_covers(f, 99));
    ASSERT_TRUE(rn_meta_feed_covers(f, 100));
    put(f, 90, 10); /* out of order: ignored */
    ASSERT_EQ(rn_meta_feed_last(f), 100);
    rn_buf_free(&out);
    rn_buf_free(&resp);
    rn_meta_feed_free(f);
}

RN_TEST(feed_codec_snapshot_error_and_request) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_meta_feed_resp_header_encode(&b, 0, -1, "", 0, "c", RN_META_FEED_KIND_SNAPSHOT);
    rn_buf_put_i64(&b, 42);
    rn_buf_put_u32(&b, 3);
    rn_buf_put(&b, "abc", 3);
    rn_meta_feed_resp_t r;
    ASSERT_EQ(rn_meta_feed_resp_decode(b.data, b.len, 0, &r), RN_OK);
    ASSERT_EQ(r.kind, RN_META_FEED_KIND_SNAPSHOT);
    ASSERT_EQ(r.snapshot_index, 42);
    ASSERT_EQ(r.snapshot_len, 3);
    ASSERT_MEMEQ(r.snapshot, "abc", 3);
    rn_buf_put_i8(&b, 0); /* trailing byte */
    ASSERT_EQ(rn_meta_feed_resp_decode(b.data, b.len, 0, &r), RN_ERR_MALFORMED);
    rn_buf_reset(&b);
    rn_meta_feed_resp_header_encode(&b, 41, 3, "h", 1, "c", 7); /* an error: nothing follows */
    ASSERT_EQ(rn_meta_feed_resp_decode(b.data, b.len, 0, &r), RN_OK);
    ASSERT_EQ(r.error, 41);
    rn_buf_reset(&b);
    rn_meta_feed_resp_header_encode(&b, 0, 3, "h", 1, "c", 7); /* unknown kind */
    ASSERT_EQ(rn_meta_feed_resp_decode(b.data, b.len, 0, &r), RN_ERR_MALFORMED);
    rn_buf_reset(&b);
    rn_meta_feed_resp_header_encode(&b, 0, 3, "h", 1, "c", RN_META_FEED_KIND_ENTRIES);
    rn_buf_put_u32(&b, 0xffffffffu); /* a count the input cannot hold */
    ASSERT_EQ(rn_meta_feed_resp_decode(b.data, b.len, 0, &r), RN_ERR_MALFORMED);

    rn_buf_reset(&b);
    rn_meta_feed_req_t rq = {5, 77, 500, 1 << 20}, back;
    rn_meta_feed_req_encode(&b, &rq);
    ASSERT_EQ(rn_meta_feed_req_decode(b.data, b.len, &back), RN_OK);
    ASSERT_EQ(back.node_id, 5);
    ASSERT_EQ(back.from, 77);
    ASSERT_EQ(back.max_wait_ms, 500);
    ASSERT_EQ(rn_meta_feed_req_decode(b.data, b.len - 1, &back), RN_ERR_MALFORMED);
    rn_buf_free(&b);
}

int main(void) { return rn_test_main(); }
