/*
 * test_controller.c — each controller decision against a small cluster (test_controller_util.h):
 * registration and heartbeats, fencing, topic creation and placement, AlterPartition and its
 * errors, ELR (KIP-966), unclean / preferred election, controlled shutdown, reassignment,
 * producer id blocks.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "test_controller_util.h"

static void cluster(env_t *e, int nbrokers, int32_t min_isr) {
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    cfg.min_insync_replicas = min_isr;
    env_init(e, &cfg, 42);
    for (int i = 1; i <= nbrokers; i++) RN_ASSERT(env_add_broker(e, i, NULL, 1) == RN_OK);
}

/* AlterPartition from the current leader with the current epochs. */
static rn_err_t alter(env_t *e, const char *topic, int32_t p, const rn_meta_ids_t *isr, rn_meta_part_rec_t *res) {
    rn_meta_part_rec_t cur;
    env_part(e, topic, p, &cur);
    rn_ctl_alter_partition_t req = {.broker_id = cur.leader,
                                    .broker_epoch = e->epochs[cur.leader],
                                    .partition = p,
                                    .leader_epoch = cur.leader_epoch,
                                    .partition_epoch = cur.partition_epoch,
                                    .new_isr = *isr};
    memcpy(req.topic_id, cur.topic_id, 16);
    for (int i = 0; i < RN_META_REPLICAS_MAX; i++) req.new_isr_epochs[i] = -1;
    rn_meta_part_rec_t tmp;
    rn_err_t err = rn_ctl_alter_partition(e->ctl, e->img, &req, &e->b, res ? res : &tmp);
    if (err == RN_OK || err == RN_ERR_NEW_LEADER_ELECTED) {
        rn_err_t aerr = env_commit(e);
        RN_ASSERT(aerr == RN_OK);
    }
    return err;
}

/* Topic `name` with one partition on exactly these replicas (the first is the preferred leader). */
static rn_err_t create_assigned(env_t *e, const char *name, const int32_t *replicas, size_t n) {
    rn_meta_ids_t as;
    env_ids(&as, (int)n, replicas);
    rn_ctl_create_topic_t req = {.name = rn_str_from_cstr(name), .num_partitions = -1, .replication_factor = -1,
                                 .nassignments = 1, .assignments = &as};
    rn_ctl_create_topic_result_t res;
    rn_err_t err = rn_ctl_create_topic(e->ctl, e->img, &req, &e->b, &res);
    return err ? err : env_commit(e);
}

static void check_image(env_t *e) {
    char where[300];
    const char *why = rn_meta_image_check(e->img, where, sizeof(where));
    if (why) RN_TEST_FAIL_("image invariant broken at %s: %s", where, why);
}

/* ---- brokers ---- */

RN_TEST(registration_fenced_until_caught_up) {
    env_t e;
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    env_init(&e, &cfg, 1);
    rn_meta_reg_t r;
    env_reg_req(&r, 1, "rack-x", 7);
    int64_t epoch = 0;
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &epoch), RN_OK);
    ASSERT_EQ(e.b.count, 1);
    ASSERT_EQ(env_commit(&e), RN_OK);
    e.epochs[1] = epoch;
    const rn_meta_broker_t *b = rn_meta_image_broker(e.img, 1);
    ASSERT_TRUE(b && b->fenced && b->epoch == epoch && epoch > 0);
    ASSERT_STREQ(b->rack, "rack-x");
    ASSERT_EQ(b->listeners[0].port, 9093);

    /* A heartbeat from behind the registration keeps it fenced. */
    rn_ctl_heartbeat_t hb = {1, epoch, e.offset - 1, false, false};
    rn_ctl_heartbeat_reply_t reply;
    ASSERT_EQ(rn_ctl_heartbeat(e.ctl, e.img, &hb, e.now, &e.b, &reply), RN_OK);
    ASSERT_TRUE(reply.is_fenced && !reply.is_caught_up);
    ASSERT_EQ(e.b.count, 0);
    /* Caught up: unfenced. */
    ASSERT_EQ(env_heartbeat(&e, 1, false, false, &reply), RN_OK);
    ASSERT_TRUE(!reply.is_fenced && reply.is_caught_up && !reply.should_shut_down);
    ASSERT_TRUE(rn_meta_image_broker_active(e.img, 1));

    /* Errors. */
    hb = (rn_ctl_heartbeat_t){1, epoch + 1, e.offset, false, false};
    ASSERT_EQ(rn_ctl_heartbeat(e.ctl, e.img, &hb, e.now, &e.b, &reply), RN_ERR_STALE_BROKER_EPOCH);
    hb.broker_id = 9;
    ASSERT_EQ(rn_ctl_heartbeat(e.ctl, e.img, &hb, e.now, &e.b, &reply), RN_ERR_BROKER_ID_NOT_REGISTERED);
    ASSERT_EQ(e.b.count, 0);

    /* A retry of the same incarnation: same epoch, nothing written. */
    int64_t again = 0;
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &again), RN_OK);
    ASSERT_EQ(again, epoch);
    ASSERT_EQ(e.b.count, 0);
    /* Another incarnation while the session lives: refused; once it expired: a new epoch. */
    env_reg_req(&r, 1, "rack-x", 8);
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, epoch, e.now + 1000, &e.b, &again),
              RN_ERR_DUPLICATE_BROKER_REGISTRATION);
    ASSERT_EQ(e.b.count, 0);
    ASSERT_TRUE(rn_ctl_error_message(e.ctl) != NULL);
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, epoch, e.now + 9001, &e.b, &again), RN_OK);
    ASSERT_GT(again, epoch);
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_TRUE(rn_meta_image_broker(e.img, 1)->fenced);
    env_free(&e);
}

RN_TEST(session_timeout_fences_and_moves_leaders) {
    env_t e;
    cluster(&e, 3, 1);
    ASSERT_EQ(env_create(&e, "t", 6, 3), RN_OK);
    rn_meta_part_rec_t before[6], after;
    for (int p = 0; p < 6; p++) env_part(&e, "t", p, &before[p]);
    /* Brokers 2 and 3 keep heartbeating, broker 1 goes silent. */
    for (int step = 0; step < 4; step++) {
        e.now += 3000;
        ASSERT_EQ(env_heartbeat(&e, 2, false, false, NULL), RN_OK);
        ASSERT_EQ(env_heartbeat(&e, 3, false, false, NULL), RN_OK);
        int32_t fenced = rn_ctl_tick(e.ctl, e.img, e.now, &e.b);
        ASSERT_EQ(env_commit(&e), RN_OK);
        ASSERT_EQ(fenced, step < 3 ? 0 : 1); /* 12 s > 9 s; at 9 s exactly still alive */
    }
    ASSERT_TRUE(rn_meta_image_broker(e.img, 1)->fenced);
    ASSERT_EQ(rn_meta_image_partitions_led_by(e.img, 1, NULL, 0), 0);
    for (int p = 0; p < 6; p++) {
        env_part(&e, "t", p, &after);
        ASSERT_FALSE(rn_meta_ids_contains(&after.isr, 1));
        ASSERT_EQ(after.isr.n, 2);
        ASSERT_EQ(after.elr.n, 0); /* min.insync.replicas = 1 */
        ASSERT_GT(after.partition_epoch, before[p].partition_epoch);
        if (before[p].leader == 1) {
            ASSERT_NE(after.leader, 1);
            ASSERT_EQ(after.leader_epoch, before[p].leader_epoch + 1);
        } else {
            ASSERT_EQ(after.leader, before[p].leader);
            ASSERT_EQ(after.leader_epoch, before[p].leader_epoch);
        }
    }
    /* Nothing more to fence. */
    ASSERT_EQ(rn_ctl_tick(e.ctl, e.img, e.now, &e.b), 0);
    ASSERT_EQ(e.b.count, 0);
    /* Broker 1 comes back: unfenced, but it rejoins ISRs only through AlterPartition. */
    ASSERT_EQ(env_heartbeat(&e, 1, false, false, NULL), RN_OK);
    ASSERT_TRUE(rn_meta_image_broker_active(e.img, 1));
    env_part(&e, "t", 0, &after);
    ASSERT_FALSE(rn_meta_ids_contains(&after.isr, 1));
    check_image(&e);
    env_free(&e);
}

RN_TEST(want_fence_and_activate) {
    env_t e;
    cluster(&e, 2, 1);
    ASSERT_EQ(env_create(&e, "t", 2, 2), RN_OK);
    rn_ctl_heartbeat_reply_t reply;
    ASSERT_EQ(env_heartbeat(&e, 2, true, false, &reply), RN_OK);
    ASSERT_TRUE(reply.is_fenced);
    ASSERT_TRUE(rn_meta_image_broker(e.img, 2)->fenced);
    ASSERT_EQ(rn_meta_image_partitions_led_by(e.img, 1, NULL, 0), 2);
    /* A fenced broker that still wants to be fenced stays so. */
    ASSERT_EQ(env_heartbeat(&e, 2, true, false, &reply), RN_OK);
    ASSERT_TRUE(reply.is_fenced);
    /* A new active controller gives every broker a full session. */
    e.now += 100000;
    rn_ctl_activate(e.ctl, e.img, e.now);
    ASSERT_EQ(rn_ctl_tick(e.ctl, e.img, e.now + 9000, &e.b), 0);
    ASSERT_EQ(rn_ctl_tick(e.ctl, e.img, e.now + 9001, &e.b), 1);
    env_free(&e);
}

/* ---- topics ---- */

RN_TEST(create_topic_validation) {
    env_t e;
    cluster(&e, 3, 1);
    ASSERT_EQ(env_create(&e, "t", 3, 4), RN_ERR_INVALID_REPLICATION_FACTOR);
    ASSERT_EQ(env_create(&e, "t", 3, 0), RN_ERR_INVALID_REPLICATION_FACTOR);
    ASSERT_EQ(env_create(&e, "t", 0, 1), RN_ERR_INVALID_PARTITIONS);
    ASSERT_EQ(env_create(&e, "t", 10001, 1), RN_ERR_INVALID_PARTITIONS);
    ASSERT_EQ(env_create(&e, "bad name", 1, 1), RN_ERR_INVALID_TOPIC_EXCEPTION);
    ASSERT_EQ(env_create(&e, "", 1, 1), RN_ERR_INVALID_TOPIC_EXCEPTION);
    ASSERT_EQ(e.b.count, 0);
    ASSERT_EQ(env_create(&e, "t", -1, -1), RN_OK); /* num.partitions = 1, default.replication.factor = 1 */
    const rn_meta_topic_t *t = rn_meta_image_topic_by_name(e.img, RN_STR_LIT("t"));
    ASSERT_EQ(t->npartitions, 1);
    ASSERT_EQ(t->partitions[0].n[RN_META_L_REPLICAS], 1);
    ASSERT_EQ(env_create(&e, "t", 1, 1), RN_ERR_TOPIC_ALREADY_EXISTS);
    /* A fenced broker is no candidate: RF 3 needs three active brokers. */
    ASSERT_EQ(env_heartbeat(&e, 3, true, false, NULL), RN_OK);
    ASSERT_EQ(env_create(&e, "u", 1, 3), RN_ERR_INVALID_REPLICATION_FACTOR);
    ASSERT_EQ(env_create(&e, "u", 4, 2), RN_OK);
    const rn_meta_topic_t *u = rn_meta_image_topic_by_name(e.img, RN_STR_LIT("u"));
    for (int p = 0; p < 4; p++) {
        rn_meta_part_rec_t pr;
        rn_meta_partition_get(u, p, &pr);
        ASSERT_FALSE(rn_meta_ids_contains(&pr.replicas, 3));
        ASSERT_TRUE(rn_meta_ids_equal(&pr.isr, &pr.replicas));
        ASSERT_EQ(pr.leader, pr.replicas.ids[0]);
        ASSERT_EQ(pr.leader_epoch, 0);
    }
    check_image(&e);
    env_free(&e);
}

RN_TEST(create_topic_configs_manual_assignment_validate_only) {
    env_t e;
    cluster(&e, 3, 1);
    rn_ctl_kv_t cfgs[] = {{RN_STR_LIT("retention.ms"), RN_STR_LIT("5000")},
                          {RN_STR_LIT("min.insync.replicas"), RN_STR_LIT("2")}};
    rn_meta_ids_t as[2];
    IDS(&as[0], 3, 1);
    IDS(&as[1], 2, 3);
    rn_ctl_create_topic_t req = {.name = RN_STR_LIT("m"), .num_partitions = -1, .replication_factor = -1,
                                 .nassignments = 2, .assignments = as, .nconfigs = 2, .configs = cfgs,
                                 .validate_only = true};
    rn_ctl_create_topic_result_t res;
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_OK);
    ASSERT_EQ(e.b.count, 0);
    ASSERT_EQ(res.num_partitions, 2);
    ASSERT_EQ(res.replication_factor, 2);
    req.validate_only = false;
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_OK);
    ASSERT_EQ(e.b.count, 1 + 2 + 2);
    ASSERT_EQ(env_commit(&e), RN_OK);
    rn_meta_part_rec_t p;
    env_part(&e, "m", 0, &p);
    ASSERT_EQ(p.replicas.ids[0], 3);
    ASSERT_EQ(p.leader, 3);
    ASSERT_STREQ(rn_meta_image_config(e.img, RN_META_RESOURCE_TOPIC, "m", "retention.ms"), "5000");
    ASSERT_TRUE(memcmp(rn_meta_image_topic_by_name(e.img, RN_STR_LIT("m"))->id, res.topic_id, 16) == 0);
    /* Configs the controller reads must parse; a key once. */
    rn_ctl_kv_t bad_cfgs[] = {{RN_STR_LIT("min.insync.replicas"), RN_STR_LIT("x")},
                              {RN_STR_LIT("retention.ms"), RN_STR_LIT("1")},
                              {RN_STR_LIT("retention.ms"), RN_STR_LIT("2")}};
    rn_ctl_create_topic_t creq = {.name = RN_STR_LIT("c"), .num_partitions = 1, .replication_factor = 1,
                                  .nconfigs = 1, .configs = bad_cfgs};
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &creq, &e.b, &res), RN_ERR_INVALID_CONFIG);
    creq.configs = bad_cfgs + 1;
    creq.nconfigs = 2;
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &creq, &e.b, &res), RN_ERR_INVALID_REQUEST);
    /* Bad assignments. */
    req.name = RN_STR_LIT("m2");
    IDS(&as[1], 2, 2);
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_ERR_INVALID_REPLICA_ASSIGNMENT);
    IDS(&as[1], 2, 9);
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_ERR_INVALID_REPLICA_ASSIGNMENT);
    IDS(&as[1], 2);
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_ERR_INVALID_REPLICA_ASSIGNMENT);
    req.num_partitions = 2;
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_ERR_INVALID_REQUEST);
    ASSERT_EQ(e.b.count, 0);
    env_free(&e);
}

RN_TEST(placement_matches_kafka_round_robin) {
    /* Kafka's documented layout for 5 brokers, 10 partitions, RF 3, start index 0, shift 0. */
    rn_ctl_placement_broker_t b[5];
    for (int i = 0; i < 5; i++) b[i] = (rn_ctl_placement_broker_t){i, NULL};
    rn_meta_ids_t out[10];
    ASSERT_EQ(rn_ctl_place_replicas(b, 5, 0, 10, 3, 0, 0, out), RN_OK);
    const int32_t want[10][3] = {{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
                                 {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}};
    for (int p = 0; p < 10; p++) {
        ASSERT_EQ(out[p].n, 3);
        for (int r = 0; r < 3; r++)
            if (out[p].ids[r] != want[p][r]) RN_TEST_FAIL_("partition %d replica %d: %d, want %d", p, r, out[p].ids[r], want[p][r]);
    }
    ASSERT_EQ(rn_ctl_place_replicas(b, 5, 0, 1, 6, 0, 0, out), RN_ERR_INVALID_REPLICATION_FACTOR);
}

RN_TEST(placement_spreads_across_racks) {
    /* Six brokers on three racks, unevenly numbered: every partition of RF 3 spans all racks. */
    const char *racks[6] = {"a", "a", "b", "c", "b", "c"};
    rn_ctl_placement_broker_t b[6];
    for (int i = 0; i < 6; i++) b[i] = (rn_ctl_placement_broker_t){i + 1, racks[i]};
    rn_meta_ids_t out[12];
    int leaders[7] = {0};
    for (int32_t start = 0; start < 6; start++) {
        ASSERT_EQ(rn_ctl_place_replicas(b, 6, 0, 12, 3, start, start, out), RN_OK);
        for (int p = 0; p < 12; p++) {
            ASSERT_TRUE(rn_meta_ids_distinct(&out[p]));
            bool seen[3] = {false, false, false};
            for (int r = 0; r < 3; r++) seen[racks[out[p].ids[r] - 1][0] - 'a'] = true;
            ASSERT_TRUE(seen[0] && seen[1] && seen[2]);
            if (start == 0) leaders[out[p].ids[0]]++;
        }
    }
    for (int i = 1; i <= 6; i++) ASSERT_EQ(leaders[i], 2); /* leadership round-robin */
    /* Through the controller: brokers registered with racks. */
    env_t e;
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    env_init(&e, &cfg, 5);
    for (int i = 1; i <= 6; i++) ASSERT_EQ(env_add_broker(&e, i, racks[i - 1], 1), RN_OK);
    ASSERT_EQ(env_create(&e, "r", 8, 3), RN_OK);
    for (int p = 0; p < 8; p++) {
        rn_meta_part_rec_t pr;
        env_part(&e, "r", p, &pr);
        bool seen[3] = {false, false, false};
        for (int r = 0; r < 3; r++) seen[racks[pr.replicas.ids[r] - 1][0] - 'a'] = true;
        ASSERT_TRUE(seen[0] && seen[1] && seen[2]);
    }
    env_free(&e);
}

RN_TEST(create_partitions_and_delete_topic) {
    env_t e;
    cluster(&e, 3, 1);
    ASSERT_EQ(env_create(&e, "t", 2, 2), RN_OK);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("t"), 2, 0, NULL, false, &e.b), RN_ERR_INVALID_PARTITIONS);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("x"), 5, 0, NULL, false, &e.b),
              RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("t"), 5, 0, NULL, true, &e.b), RN_OK);
    ASSERT_EQ(e.b.count, 0);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("t"), 5, 0, NULL, false, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    const rn_meta_topic_t *t = rn_meta_image_topic_by_name(e.img, RN_STR_LIT("t"));
    ASSERT_EQ(t->npartitions, 5);
    for (int p = 0; p < 5; p++) ASSERT_EQ(t->partitions[p].n[RN_META_L_REPLICAS], 2);
    rn_meta_ids_t as[1];
    IDS(&as[0], 3);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("t"), 6, 1, as, false, &e.b),
              RN_ERR_INVALID_REPLICA_ASSIGNMENT); /* the topic's replication factor is 2 */
    IDS(&as[0], 3, 1);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("t"), 7, 1, as, false, &e.b),
              RN_ERR_INVALID_REPLICA_ASSIGNMENT);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("t"), 6, 1, as, false, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    rn_meta_part_rec_t p5;
    env_part(&e, "t", 5, &p5);
    ASSERT_EQ(p5.leader, 3);

    uint8_t id[16];
    memcpy(id, t->id, 16);
    ASSERT_EQ(rn_ctl_delete_topic(e.ctl, e.img, RN_STR_LIT("nope"), NULL, &e.b), RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    uint8_t zero[16] = {0};
    ASSERT_EQ(rn_ctl_delete_topic(e.ctl, e.img, RN_STR_NULL, zero, &e.b), RN_ERR_UNKNOWN_TOPIC_ID);
    ASSERT_EQ(rn_ctl_delete_topic(e.ctl, e.img, RN_STR_NULL, id, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_TRUE(rn_meta_image_topic_by_name(e.img, RN_STR_LIT("t")) == NULL);
    ASSERT_EQ(rn_meta_image_partition_count(e.img), 0);
    env_free(&e);
}

/* ---- AlterPartition ---- */

RN_TEST(alter_partition_shrink_expand_and_errors) {
    env_t e;
    cluster(&e, 3, 1);
    ASSERT_EQ(env_create(&e, "t", 1, 3), RN_OK);
    rn_meta_part_rec_t cur, res;
    env_part(&e, "t", 0, &cur);
    int32_t leader = cur.leader;
    int32_t other = cur.replicas.ids[1], third = cur.replicas.ids[2];
    rn_meta_ids_t isr;
    IDS(&isr, leader, other);
    ASSERT_EQ(alter(&e, "t", 0, &isr, &res), RN_OK);
    rn_meta_part_rec_t now;
    env_part(&e, "t", 0, &now);
    ASSERT_SET(now.isr, leader, other);
    ASSERT_EQ(now.leader, leader);
    ASSERT_EQ(now.leader_epoch, cur.leader_epoch);
    ASSERT_EQ(now.partition_epoch, cur.partition_epoch + 1);
    ASSERT_EQ(res.partition_epoch, now.partition_epoch); /* the response is what the image holds */
    ASSERT_TRUE(rn_meta_ids_equal(&res.isr, &now.isr));
    /* The same ISR again: nothing to write. */
    ASSERT_EQ(alter(&e, "t", 0, &isr, &res), RN_OK);
    ASSERT_EQ(e.b.count, 0);
    IDS(&isr, leader, other, third);
    ASSERT_EQ(alter(&e, "t", 0, &isr, &res), RN_OK);
    env_part(&e, "t", 0, &now);
    ASSERT_EQ(now.isr.n, 3);

    /* The error cases, each from a request that is otherwise right. */
    rn_ctl_alter_partition_t req = {.broker_id = leader, .broker_epoch = e.epochs[leader], .partition = 0,
                                    .leader_epoch = now.leader_epoch, .partition_epoch = now.partition_epoch};
    memcpy(req.topic_id, now.topic_id, 16);
    IDS(&req.new_isr, leader, other);
    for (int i = 0; i < RN_META_REPLICAS_MAX; i++) req.new_isr_epochs[i] = -1;
    rn_ctl_alter_partition_t bad;
#define EXPECT(mutation, code)                                                     \
    do {                                                                           \
        bad = req;                                                                 \
        mutation;                                                                  \
        ASSERT_EQ(rn_ctl_alter_partition(e.ctl, e.img, &bad, &e.b, &res), code);   \
        ASSERT_EQ(e.b.count, 0);                                                   \
    } while (0)
    EXPECT(bad.broker_epoch++, RN_ERR_STALE_BROKER_EPOCH);
    EXPECT(bad.topic_id[0] ^= 1, RN_ERR_UNKNOWN_TOPIC_ID);
    EXPECT(bad.partition = 1, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    EXPECT(bad.leader_epoch--, RN_ERR_FENCED_LEADER_EPOCH);
    EXPECT(bad.leader_epoch++, RN_ERR_NOT_CONTROLLER);
    EXPECT(bad.partition_epoch--, RN_ERR_INVALID_UPDATE_VERSION);
    EXPECT((bad.broker_id = other, bad.broker_epoch = e.epochs[other]), RN_ERR_INVALID_REQUEST);
    EXPECT(IDS(&bad.new_isr, other), RN_ERR_INVALID_REQUEST);        /* without the leader */
    EXPECT(IDS(&bad.new_isr, leader, 17), RN_ERR_INVALID_REQUEST);   /* not a replica */
    EXPECT(IDS(&bad.new_isr, leader, leader), RN_ERR_INVALID_REQUEST);
    EXPECT(bad.new_isr_epochs[1] = e.epochs[other] + 1, RN_ERR_INELIGIBLE_REPLICA);
    EXPECT(bad.leader_recovery_state = 1, RN_ERR_INVALID_REQUEST);
    ASSERT_EQ(env_heartbeat(&e, third, true, false, NULL), RN_OK); /* fenced: no ISR member */
    env_part(&e, "t", 0, &now);
    req.partition_epoch = now.partition_epoch;
    req.leader_epoch = now.leader_epoch;
    EXPECT(IDS(&bad.new_isr, leader, third), RN_ERR_INELIGIBLE_REPLICA);
#undef EXPECT
    check_image(&e);
    env_free(&e);
}

/* ---- ELR (KIP-966) and elections ---- */

RN_TEST(elr_keeps_last_in_sync_replicas_eligible) {
    env_t e;
    cluster(&e, 3, 2);
    const int32_t assigned[] = {1, 2, 3};
    ASSERT_EQ(create_assigned(&e, "t", assigned, sizeof(assigned) / sizeof(assigned[0])), RN_OK);
    rn_meta_part_rec_t p;
    /* Fence 3: ISR {1,2} is still >= min ISR 2, no ELR. */
    ASSERT_EQ(env_heartbeat(&e, 3, true, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.isr, 1, 2);
    ASSERT_EMPTY(p.elr);
    /* Fence 2: ISR {1} < 2, so 2 (which has every committed record) goes to the ELR. */
    ASSERT_EQ(env_heartbeat(&e, 2, true, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.isr, 1);
    ASSERT_SET(p.elr, 2);
    ASSERT_EQ(p.leader, 1);
    /* Fence 1: the ISR empties, no leader, both in the ELR. */
    int32_t epoch_before = p.leader_epoch;
    ASSERT_EQ(env_heartbeat(&e, 1, true, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EMPTY(p.isr);
    ASSERT_SET(p.elr, 1, 2);
    ASSERT_EQ(p.leader, -1);
    ASSERT_EQ(p.leader_epoch, epoch_before + 1);
    /* 3 returns: not eligible (it was out of sync), the partition stays leaderless. */
    ASSERT_EQ(env_heartbeat(&e, 3, false, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, -1);
    /* 2 returns: elected from the ELR, it becomes the ISR. */
    ASSERT_EQ(env_heartbeat(&e, 2, false, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, 2);
    ASSERT_SET(p.isr, 2);
    ASSERT_SET(p.elr, 1);
    ASSERT_EQ(p.leader_recovery_state, 0);
    /* 1 restarts uncleanly (its previous epoch is not the registered one): out of the ELR. */
    rn_meta_reg_t r;
    env_reg_req(&r, 1, NULL, 2);
    int64_t epoch;
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &epoch), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    e.epochs[1] = epoch;
    env_part(&e, "t", 0, &p);
    ASSERT_EMPTY(p.elr);
    /* The leader adds 1 and 3 back: ISR >= 2 again. */
    ASSERT_EQ(env_heartbeat(&e, 1, false, false, NULL), RN_OK);
    rn_meta_ids_t isr;
    IDS(&isr, 2, 1, 3);
    ASSERT_EQ(alter(&e, "t", 0, &isr, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.isr.n, 3);
    ASSERT_EMPTY(p.elr);
    check_image(&e);
    env_free(&e);
}

RN_TEST(clean_restart_stays_in_elr) {
    env_t e;
    cluster(&e, 2, 2);
    ASSERT_EQ(env_create(&e, "t", 1, 2), RN_OK);
    rn_meta_part_rec_t p;
    env_part(&e, "t", 0, &p);
    int32_t a = p.leader, b = p.replicas.ids[1];
    ASSERT_EQ(env_heartbeat(&e, b, true, false, NULL), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, a, true, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.elr, a, b);
    /* a restarts cleanly (passes its previous epoch): stays eligible and, caught up, leads. */
    rn_meta_reg_t r;
    env_reg_req(&r, a, NULL, 9);
    int64_t epoch;
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, e.epochs[a], e.now, &e.b, &epoch), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    e.epochs[a] = epoch;
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.elr, a, b);
    ASSERT_EQ(env_heartbeat(&e, a, false, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, a);
    ASSERT_SET(p.isr, a);
    ASSERT_SET(p.elr, b);
    env_free(&e);
}

RN_TEST(unclean_election_only_when_allowed) {
    env_t e;
    cluster(&e, 2, 1);
    ASSERT_EQ(env_create(&e, "t", 1, 2), RN_OK);
    rn_meta_part_rec_t p;
    env_part(&e, "t", 0, &p);
    int32_t a = p.leader, b = p.replicas.ids[1];
    rn_meta_ids_t isr;
    IDS(&isr, a); /* b falls behind */
    ASSERT_EQ(alter(&e, "t", 0, &isr, NULL), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, a, true, false, NULL), RN_OK); /* the only in-sync replica goes */
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, -1);
    ASSERT_EMPTY(p.isr);
    ASSERT_SET(p.elr, a);
    /* b is alive but not eligible. */
    ASSERT_EQ(env_heartbeat(&e, b, false, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, -1);
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, RN_CTL_ELECT_PREFERRED, RN_STR_LIT("t"), 0, &e.b),
              RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE);
    /* ElectLeaders(unclean) is the operator's explicit choice. */
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, RN_CTL_ELECT_UNCLEAN, RN_STR_LIT("t"), 0, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, b);
    ASSERT_SET(p.isr, b);
    ASSERT_EMPTY(p.elr);
    ASSERT_EQ(p.leader_recovery_state, RN_META_LRS_RECOVERING);
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, RN_CTL_ELECT_UNCLEAN, RN_STR_LIT("t"), 0, &e.b),
              RN_ERR_ELECTION_NOT_NEEDED);
    /* Recovered: the leader reports it, and only then may the ISR grow. */
    ASSERT_EQ(env_heartbeat(&e, a, false, false, NULL), RN_OK);
    IDS(&isr, b, a);
    ASSERT_EQ(alter(&e, "t", 0, &isr, NULL), RN_ERR_INVALID_REQUEST);
    IDS(&isr, b);
    ASSERT_EQ(alter(&e, "t", 0, &isr, NULL), RN_OK); /* leader_recovery_state 0 = recovered */
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader_recovery_state, RN_META_LRS_RECOVERED);
    env_free(&e);

    /* With the topic's unclean.leader.election.enable, a returning broker is elected by itself. */
    cluster(&e, 2, 1);
    rn_ctl_kv_t cfg = {RN_STR_LIT("unclean.leader.election.enable"), RN_STR_LIT("true")};
    rn_ctl_create_topic_t req = {.name = RN_STR_LIT("u"), .num_partitions = 1, .replication_factor = 2,
                                 .nconfigs = 1, .configs = &cfg};
    rn_ctl_create_topic_result_t res;
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    env_part(&e, "u", 0, &p);
    a = p.leader, b = p.replicas.ids[1];
    IDS(&isr, a);
    ASSERT_EQ(alter(&e, "u", 0, &isr, NULL), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, b, true, false, NULL), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, a, true, false, NULL), RN_OK);
    env_part(&e, "u", 0, &p);
    ASSERT_EQ(p.leader, -1);
    ASSERT_EQ(env_heartbeat(&e, b, false, false, NULL), RN_OK);
    env_part(&e, "u", 0, &p);
    ASSERT_EQ(p.leader, b);
    ASSERT_EQ(p.leader_recovery_state, RN_META_LRS_RECOVERING);
    env_free(&e);
}

RN_TEST(preferred_leader_election) {
    env_t e;
    cluster(&e, 3, 1);
    ASSERT_EQ(env_create(&e, "t", 3, 3), RN_OK);
    rn_meta_part_rec_t p;
    env_part(&e, "t", 0, &p);
    int32_t pref = p.replicas.ids[0];
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, RN_CTL_ELECT_PREFERRED, RN_STR_LIT("t"), 0, &e.b),
              RN_ERR_ELECTION_NOT_NEEDED);
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, RN_CTL_ELECT_PREFERRED, RN_STR_LIT("t"), 7, &e.b),
              RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, 5, RN_STR_LIT("t"), 0, &e.b), RN_ERR_INVALID_REQUEST);
    /* The preferred leader is fenced and comes back: not in the ISR, so not available. */
    ASSERT_EQ(env_heartbeat(&e, pref, true, false, NULL), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, pref, false, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_NE(p.leader, pref);
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, RN_CTL_ELECT_PREFERRED, RN_STR_LIT("t"), 0, &e.b),
              RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE);
    /* It catches up and rejoins the ISR: now it can lead again. */
    rn_meta_ids_t isr = p.isr;
    rn_meta_ids_add(&isr, pref);
    ASSERT_EQ(alter(&e, "t", 0, &isr, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    int32_t epoch = p.leader_epoch;
    ASSERT_EQ(rn_ctl_elect_leader(e.ctl, e.img, RN_CTL_ELECT_PREFERRED, RN_STR_LIT("t"), 0, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, pref);
    ASSERT_EQ(p.leader_epoch, epoch + 1);
    env_free(&e);
}

RN_TEST(rebalance_moves_leadership_back_to_preferred_replicas) {
    env_t e;
    cluster(&e, 3, 1);
    ASSERT_EQ(env_create(&e, "t", 6, 3), RN_OK);
    ASSERT_EQ(rn_ctl_rebalance_leaders(e.ctl, e.img, 100, &e.b), 0); /* balanced from the start */
    /* Broker 1 bounces: it loses its leaderships and comes back out of every ISR. */
    ASSERT_EQ(env_heartbeat(&e, 1, true, false, NULL), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, 1, false, false, NULL), RN_OK);
    ASSERT_EQ(rn_meta_image_partitions_led_by(e.img, 1, NULL, 0), 0);
    ASSERT_EQ(rn_ctl_rebalance_leaders(e.ctl, e.img, 100, &e.b), 0); /* not in sync yet */
    int32_t preferred_by_1 = 0;
    for (int p = 0; p < 6; p++) {
        rn_meta_part_rec_t pr;
        env_part(&e, "t", p, &pr);
        rn_meta_ids_t isr = pr.isr;
        rn_meta_ids_add(&isr, 1);
        ASSERT_EQ(alter(&e, "t", p, &isr, NULL), RN_OK);
        preferred_by_1 += pr.replicas.ids[0] == 1;
    }
    ASSERT_EQ(preferred_by_1, 2);
    ASSERT_EQ(rn_ctl_rebalance_leaders(e.ctl, e.img, 1, &e.b), 1); /* bounded */
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_EQ(rn_ctl_rebalance_leaders(e.ctl, e.img, 100, &e.b), 1);
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_EQ(rn_meta_image_partitions_led_by(e.img, 1, NULL, 0), 2);
    ASSERT_EQ(rn_ctl_rebalance_leaders(e.ctl, e.img, 100, &e.b), 0);
    check_image(&e);
    env_free(&e);
}

/* ---- controlled shutdown ---- */

RN_TEST(controlled_shutdown_moves_leadership_first) {
    env_t e;
    cluster(&e, 3, 1);
    ASSERT_EQ(env_create(&e, "t", 6, 2), RN_OK);
    ASSERT_GT(rn_meta_image_partitions_led_by(e.img, 1, NULL, 0), 0);
    rn_ctl_heartbeat_reply_t reply;
    ASSERT_EQ(env_heartbeat(&e, 1, false, true, &reply), RN_OK);
    ASSERT_FALSE(reply.should_shut_down); /* it has not yet seen that it lost its leaderships */
    const rn_meta_broker_t *b = rn_meta_image_broker(e.img, 1);
    ASSERT_TRUE(b->in_controlled_shutdown && !b->fenced);
    ASSERT_EQ(rn_meta_image_partitions_led_by(e.img, 1, NULL, 0), 0);
    for (int p = 0; p < 6; p++) {
        rn_meta_part_rec_t pr;
        env_part(&e, "t", p, &pr);
        ASSERT_FALSE(rn_meta_ids_contains(&pr.isr, 1));
        ASSERT_NE(pr.leader, -1); /* RF 2 on 3 brokers: another replica took over */
    }
    /* Not eligible for new topics either. */
    ASSERT_EQ(env_create(&e, "u", 1, 3), RN_ERR_INVALID_REPLICATION_FACTOR);
    /* The next heartbeat, having applied the metadata: shut down now, fenced. */
    ASSERT_EQ(env_heartbeat(&e, 1, false, true, &reply), RN_OK);
    ASSERT_TRUE(reply.should_shut_down && reply.is_fenced);
    ASSERT_TRUE(rn_meta_image_broker(e.img, 1)->fenced);
    check_image(&e);
    env_free(&e);
}

/* ---- reassignment ---- */

RN_TEST(reassignment_adds_then_removes) {
    env_t e;
    cluster(&e, 4, 1);
    const int32_t assigned[] = {1, 2};
    ASSERT_EQ(create_assigned(&e, "t", assigned, sizeof(assigned) / sizeof(assigned[0])), RN_OK);
    ASSERT_EQ(rn_ctl_reassign(e.ctl, e.img, RN_STR_LIT("t"), 0, NULL, &e.b), RN_ERR_NO_REASSIGNMENT_IN_PROGRESS);
    rn_meta_ids_t target;
    IDS(&target, 3, 9);
    ASSERT_EQ(rn_ctl_reassign(e.ctl, e.img, RN_STR_LIT("t"), 0, &target, &e.b), RN_ERR_INVALID_REPLICA_ASSIGNMENT);
    IDS(&target, 3, 4);
    ASSERT_EQ(rn_ctl_reassign(e.ctl, e.img, RN_STR_LIT("t"), 0, &target, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    rn_meta_part_rec_t p;
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.replicas, 3, 4, 1, 2);
    ASSERT_SET(p.adding, 3, 4);
    ASSERT_SET(p.removing, 1, 2);
    ASSERT_SET(p.isr, 1, 2);
    ASSERT_EQ(p.leader, 1);
    rn_meta_tp_t tp[2];
    ASSERT_EQ(rn_meta_image_reassignments(e.img, tp, 2), 1);
    /* 3 catches up: still waiting for 4. */
    rn_meta_ids_t isr;
    IDS(&isr, 1, 2, 3);
    ASSERT_EQ(alter(&e, "t", 0, &isr, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.adding.n, 2);
    int32_t epoch = p.leader_epoch;
    /* 4 catches up: the reassignment completes, 1 and 2 go, leadership moves to the target. */
    IDS(&isr, 1, 2, 3, 4);
    rn_meta_part_rec_t out;
    ASSERT_EQ(alter(&e, "t", 0, &isr, &out), RN_ERR_NEW_LEADER_ELECTED);
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.replicas, 3, 4);
    ASSERT_SET(p.isr, 3, 4);
    ASSERT_EMPTY(p.adding);
    ASSERT_EMPTY(p.removing);
    ASSERT_EQ(p.leader, 3);
    ASSERT_EQ(p.leader_epoch, epoch + 1);
    ASSERT_EQ(out.leader, 3);
    ASSERT_EQ(rn_meta_image_reassignments(e.img, tp, 2), 0);
    check_image(&e);
    env_free(&e);
}

RN_TEST(reassignment_cancel_and_immediate) {
    env_t e;
    cluster(&e, 4, 1);
    const int32_t assigned[] = {1, 2, 3};
    ASSERT_EQ(create_assigned(&e, "t", assigned, sizeof(assigned) / sizeof(assigned[0])), RN_OK);
    rn_meta_ids_t target;
    IDS(&target, 4, 2, 3);
    ASSERT_EQ(rn_ctl_reassign(e.ctl, e.img, RN_STR_LIT("t"), 0, &target, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    rn_meta_part_rec_t p;
    env_part(&e, "t", 0, &p);
    int32_t epoch = p.leader_epoch;
    ASSERT_SET(p.adding, 4);
    /* Cancel: back to {1,2,3}; 4 is dropped, so the leader epoch moves. */
    ASSERT_EQ(rn_ctl_reassign(e.ctl, e.img, RN_STR_LIT("t"), 0, NULL, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.replicas, 1, 2, 3);
    ASSERT_EMPTY(p.adding);
    ASSERT_EQ(p.leader, 1);
    ASSERT_EQ(p.leader_epoch, epoch + 1);
    /* Shrinking to replicas already in sync completes at once. */
    IDS(&target, 2, 3);
    ASSERT_EQ(rn_ctl_reassign(e.ctl, e.img, RN_STR_LIT("t"), 0, &target, &e.b), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.replicas, 2, 3);
    ASSERT_SET(p.isr, 2, 3);
    ASSERT_EQ(p.leader, 2);
    ASSERT_EMPTY(p.removing);
    check_image(&e);
    env_free(&e);
}

/* ---- configs ---- */

static rn_err_t set_cfg(env_t *e, int8_t type, const char *name, const char *key, const char *value) {
    rn_err_t err = rn_ctl_alter_config(e->ctl, e->img, type, rn_str_from_cstr(name), rn_str_from_cstr(key),
                                       value ? rn_str_from_cstr(value) : RN_STR_NULL, &e->b);
    return err ? err : env_commit(e);
}

RN_TEST(alter_config_validates_and_keeps_elr_consistent) {
    env_t e;
    cluster(&e, 3, 2);
    const int32_t assigned[] = {1, 2, 3};
    ASSERT_EQ(create_assigned(&e, "t", assigned, 3), RN_OK);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "nope", "retention.ms", "1"), RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "t", "min.insync.replicas", "0"), RN_ERR_INVALID_CONFIG);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "t", "min.insync.replicas", "two"), RN_ERR_INVALID_CONFIG);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "t", "unclean.leader.election.enable", "yes"), RN_ERR_INVALID_CONFIG);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_BROKER, "x1", "log.retention.ms", "1"), RN_ERR_INVALID_REQUEST);
    ASSERT_EQ(set_cfg(&e, 3, "t", "k", "v"), RN_ERR_INVALID_REQUEST);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_BROKER, "2", "log.retention.ms", "1"), RN_OK);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "t", "retention.ms", "1000"), RN_OK);
    ASSERT_STREQ(rn_meta_image_config(e.img, RN_META_RESOURCE_TOPIC, "t", "retention.ms"), "1000");
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "t", "retention.ms", NULL), RN_OK);
    ASSERT_TRUE(rn_meta_image_config(e.img, RN_META_RESOURCE_TOPIC, "t", "retention.ms") == NULL);

    /* ISR {1} with min ISR 2: 2 is in the ELR. */
    ASSERT_EQ(env_heartbeat(&e, 3, true, false, NULL), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, 2, true, false, NULL), RN_OK);
    rn_meta_part_rec_t p;
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.elr, 2);
    /* The cluster default moves to 3 (the topic has no override): the ELR is cleared. */
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_BROKER, "", "min.insync.replicas", "3"), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EMPTY(p.elr);
    ASSERT_EQ(p.leader, 1);
    /* The topic-level value now decides: fencing 1 puts it in the ELR under min ISR 2. */
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "t", "min.insync.replicas", "2"), RN_OK);
    ASSERT_EQ(env_heartbeat(&e, 1, true, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_SET(p.elr, 1);
    ASSERT_EQ(p.leader, -1);
    /* 3 is back but was not in sync; enabling unclean election on the topic elects it. */
    ASSERT_EQ(env_heartbeat(&e, 3, false, false, NULL), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, -1);
    ASSERT_EQ(set_cfg(&e, RN_META_RESOURCE_TOPIC, "t", "unclean.leader.election.enable", "true"), RN_OK);
    env_part(&e, "t", 0, &p);
    ASSERT_EQ(p.leader, 3);
    ASSERT_EQ(p.leader_recovery_state, RN_META_LRS_RECOVERING);
    ASSERT_EMPTY(p.elr);
    check_image(&e);
    env_free(&e);
}

RN_TEST(decisions_respect_the_image_limits) {
    /* Every decision's records must apply: the image's limits are checked before writing. */
    env_t e;
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    env_init(&e, &cfg, 1);
    rn_meta_image_free(e.img);
    rn_meta_limits_t lim = {.brokers_max = 2, .topics_max = 1, .partitions_max = 3, .configs_max = 1};
    e.img = rn_meta_image_new(&lim);
    ASSERT_EQ(env_add_broker(&e, 1, NULL, 1), RN_OK);
    ASSERT_EQ(env_add_broker(&e, 2, NULL, 1), RN_OK);
    rn_meta_reg_t r;
    env_reg_req(&r, 3, NULL, 1);
    int64_t epoch;
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &epoch), RN_ERR_POLICY_VIOLATION);
    ASSERT_EQ(env_create(&e, "a", 4, 1), RN_ERR_POLICY_VIOLATION); /* 4 partitions > 3 */
    rn_ctl_kv_t kv[2] = {{RN_STR_LIT("retention.ms"), RN_STR_LIT("1")}, {RN_STR_LIT("segment.ms"), RN_STR_LIT("1")}};
    rn_ctl_create_topic_t req = {.name = RN_STR_LIT("a"), .num_partitions = 2, .replication_factor = 1,
                                 .nconfigs = 2, .configs = kv};
    rn_ctl_create_topic_result_t res;
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_ERR_POLICY_VIOLATION); /* 2 configs > 1 */
    req.nconfigs = 1;
    ASSERT_EQ(rn_ctl_create_topic(e.ctl, e.img, &req, &e.b, &res), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_EQ(env_create(&e, "b", 1, 1), RN_ERR_POLICY_VIOLATION); /* one topic at most */
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("a"), 4, 0, NULL, false, &e.b), RN_ERR_POLICY_VIOLATION);
    ASSERT_EQ(rn_ctl_alter_config(e.ctl, e.img, RN_META_RESOURCE_TOPIC, RN_STR_LIT("a"), RN_STR_LIT("segment.ms"),
                                  RN_STR_LIT("1"), &e.b),
              RN_ERR_POLICY_VIOLATION);
    ASSERT_EQ(rn_ctl_alter_config(e.ctl, e.img, RN_META_RESOURCE_TOPIC, RN_STR_LIT("a"), RN_STR_LIT("retention.ms"),
                                  RN_STR_LIT("2"), &e.b),
              RN_OK); /* replacing a value needs no room */
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_EQ(e.b.count, 0);
    env_free(&e);
}

RN_TEST(registration_rejects_oversized_strings) {
    env_t e;
    cluster(&e, 1, 1);
    rn_meta_reg_t r;
    env_reg_req(&r, 2, NULL, 1);
    char *big = malloc(RN_META_STR_MAX + 1);
    memset(big, 'h', RN_META_STR_MAX + 1);
    r.listeners[0].host = (rn_str_t){big, RN_META_STR_MAX + 1};
    int64_t epoch;
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &epoch), RN_ERR_INVALID_REQUEST);
    r.listeners[0].host = RN_STR_LIT("h");
    r.rack = (rn_str_t){big, RN_META_STR_MAX + 1};
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &epoch), RN_ERR_INVALID_REQUEST);
    r.nlisteners = RN_META_LISTENERS_MAX + 1;
    ASSERT_EQ(rn_ctl_register_broker(e.ctl, e.img, &r, -1, e.now, &e.b, &epoch), RN_ERR_INVALID_REQUEST);
    ASSERT_EQ(e.b.count, 0);
    free(big);
    env_free(&e);
}

/* ---- producer ids ---- */

RN_TEST(producer_id_blocks) {
    env_t e;
    cluster(&e, 2, 1);
    int64_t first;
    int32_t count;
    ASSERT_EQ(rn_ctl_alloc_producer_ids(e.ctl, e.img, 1, e.epochs[1] + 1, &e.b, &first, &count),
              RN_ERR_STALE_BROKER_EPOCH);
    ASSERT_EQ(rn_ctl_alloc_producer_ids(e.ctl, e.img, 1, e.epochs[1], &e.b, &first, &count), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_EQ(first, 0);
    ASSERT_EQ(count, 1000);
    ASSERT_EQ(rn_ctl_alloc_producer_ids(e.ctl, e.img, 2, e.epochs[2], &e.b, &first, &count), RN_OK);
    ASSERT_EQ(env_commit(&e), RN_OK);
    ASSERT_EQ(first, 1000);
    ASSERT_EQ(rn_meta_image_next_producer_id(e.img), 2000);
    env_free(&e);
}

int main(void) { return rn_test_main(); }
