/* Unit tests for src/group/: the group state machine (driven with a fake
 * clock and recorded answers) and the __consumer_offsets record formats. */
#include <stdlib.h>
#include <string.h>

#include "rn_group.h"
#include "rn_logging.h"
#include "rn_test.h"

/* ---- a fake coordinator: answers are recorded per waiter ---------------- */

#define MAXW 64

typedef struct {
    bool done;
    bool is_sync;
    int16_t error;
    int32_t generation;
    char member_id[320];
    char leader_id[320];
    char protocol[64];
    int32_t nmembers;
    bool skip;
    char assignment[64];
} answer_t;

static answer_t answers[MAXW];
static int stores;
static rn_err_t store_result;

static void join_done(void *ctx, rn_group_t *g, void *waiter, const rn_join_result_t *r) {
    answer_t *a = waiter;
    ASSERT_FALSE(a->done); /* exactly one answer per waiter */
    a->done = true;
    a->error = r->error;
    a->generation = r->generation;
    snprintf(a->member_id, sizeof(a->member_id), "%s", r->member_id ? r->member_id : "");
    snprintf(a->leader_id, sizeof(a->leader_id), "%s", r->leader_id ? r->leader_id : "");
    snprintf(a->protocol, sizeof(a->protocol), "%s", r->protocol_name ? r->protocol_name : "");
    a->nmembers = r->nmembers;
    a->skip = r->skip_assignment;
}

static void sync_done(void *ctx, rn_group_t *g, void *waiter, const rn_sync_result_t *r) {
    answer_t *a = waiter;
    ASSERT_FALSE(a->done);
    a->done = true;
    a->is_sync = true;
    a->error = r->error;
    snprintf(a->assignment, sizeof(a->assignment), "%.*s", r->assignment_len, r->assignment ? (const char *)r->assignment : "");
}

static rn_err_t store(void *ctx, rn_group_t *g) {
    stores++;
    return store_result;
}

static rn_group_config_t cfg = {
    .min_session_timeout_ms = 6000,
    .max_session_timeout_ms = 1800000,
    .initial_rebalance_delay_ms = 0,
    .max_size = 1000,
    .new_member_join_timeout_ms = 300000,
};
static rn_group_ops_t ops = {.join_done = join_done, .sync_done = sync_done, .store_group = store};

static rn_group_env_t env_at(int64_t now) {
    return (rn_group_env_t){.cfg = &cfg, .ops = &ops, .now_ms = now, .wall_ms = 1700000000000 + now};
}

static answer_t *fresh(int i) {
    memset(&answers[i], 0, sizeof(answers[i]));
    return &answers[i];
}

static const rn_str_t proto_names[2] = {{"range", 5}, {"roundrobin", 10}};
static const rn_bytes_t proto_md[2] = {{(const uint8_t *)"m-range", 7}, {(const uint8_t *)"m-rr", 4}};

static void join(rn_group_t *g, int64_t now, int w, const char *member, const char *instance, int version) {
    rn_join_params_t p = {
        .member_id = rn_str_from_cstr(member),
        .group_instance_id = instance ? rn_str_from_cstr(instance) : RN_STR_NULL,
        .client_id = RN_STR_LIT("cli"),
        .client_host = RN_STR_LIT("/127.0.0.1"),
        .protocol_type = RN_STR_LIT("consumer"),
        .session_timeout_ms = 10000,
        .rebalance_timeout_ms = 30000,
        .nprotocols = 2,
        .protocol_names = proto_names,
        .protocol_metadata = proto_md,
        .require_known_member_id = version >= 4,
        .support_skip_assignment = version >= 9,
        .waiter = fresh(w),
    };
    rn_group_env_t e = env_at(now);
    rn_group_join(&e, g, &p);
    rn_group_assert_state(g);
}

static void sync_(rn_group_t *g, int64_t now, int w, const char *member, int32_t gen, int nassign, const char **ids,
                  const char **as) {
    rn_str_t sids[8];
    rn_bytes_t sas[8];
    for (int i = 0; i < nassign; i++) {
        sids[i] = rn_str_from_cstr(ids[i]);
        sas[i] = (rn_bytes_t){(const uint8_t *)as[i], (int32_t)strlen(as[i])};
    }
    rn_sync_params_t p = {
        .member_id = rn_str_from_cstr(member),
        .group_instance_id = RN_STR_NULL,
        .generation = gen,
        .protocol_type = RN_STR_NULL,
        .protocol_name = RN_STR_NULL,
        .nassignments = nassign,
        .assignment_member_ids = sids,
        .assignments = sas,
        .waiter = fresh(w),
    };
    rn_group_env_t e = env_at(now);
    rn_group_sync(&e, g, &p);
    rn_group_assert_state(g);
}

static void tick(rn_group_t *g, int64_t now) {
    rn_group_env_t e = env_at(now);
    rn_group_tick(&e, g);
    rn_group_assert_state(g);
}

static rn_err_t hb(rn_group_t *g, int64_t now, const char *member, int32_t gen) {
    rn_group_env_t e = env_at(now);
    return rn_group_heartbeat(&e, g, rn_str_from_cstr(member), RN_STR_NULL, gen);
}

/* One member through the two-step join (v4+) and a sync; returns its id in out. */
static void single_member_stable(rn_group_t *g, char *out) {
    join(g, 0, 0, "", NULL, 5);
    ASSERT_TRUE(answers[0].done);
    ASSERT_EQ(answers[0].error, RN_ERR_MEMBER_ID_REQUIRED);
    ASSERT_TRUE(!strncmp(answers[0].member_id, "cli-", 4));
    strcpy(out, answers[0].member_id);
    join(g, 1, 1, out, NULL, 5);
    ASSERT_FALSE(answers[1].done); /* the initial delay (0 ms) runs on the timer */
    ASSERT_EQ(g->state, RN_GS_PREPARING_REBALANCE);
    tick(g, 1);
    ASSERT_TRUE(answers[1].done);
    ASSERT_EQ(answers[1].error, 0);
    ASSERT_EQ(answers[1].generation, 1);
    ASSERT_STREQ(answers[1].leader_id, out);
    ASSERT_EQ(answers[1].nmembers, 1);
    ASSERT_STREQ(answers[1].protocol, "range");
    ASSERT_EQ(g->state, RN_GS_COMPLETING_REBALANCE);
    const char *ids[] = {out};
    const char *as[] = {"A1"};
    sync_(g, 2, 2, out, 1, 1, ids, as);
    ASSERT_TRUE(answers[2].done);
    ASSERT_EQ(answers[2].error, 0);
    ASSERT_STREQ(answers[2].assignment, "A1");
    ASSERT_EQ(g->state, RN_GS_STABLE);
}

RN_TEST(group_two_step_join_and_sync) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    char m1[320];
    single_member_stable(g, m1);
    ASSERT_EQ(hb(g, 3, m1, 1), 0);
    ASSERT_EQ(hb(g, 3, m1, 0), RN_ERR_ILLEGAL_GENERATION);
    ASSERT_EQ(hb(g, 3, "nobody", 1), RN_ERR_UNKNOWN_MEMBER_ID);
    rn_group_free(g);
}

RN_TEST(group_second_member_rebalances) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    char m1[320], m2[320];
    single_member_stable(g, m1);
    /* v0 join: no MEMBER_ID_REQUIRED step */
    join(g, 100, 3, "", NULL, 0);
    ASSERT_FALSE(answers[3].done);
    ASSERT_EQ(g->state, RN_GS_PREPARING_REBALANCE);
    ASSERT_EQ(hb(g, 101, m1, 1), RN_ERR_REBALANCE_IN_PROGRESS);
    join(g, 102, 4, m1, NULL, 5); /* the old member rejoins: everyone is in */
    ASSERT_TRUE(answers[3].done && answers[4].done);
    ASSERT_EQ(answers[3].generation, 2);
    ASSERT_EQ(answers[4].generation, 2);
    strcpy(m2, answers[3].member_id);
    ASSERT_STREQ(answers[4].leader_id, m1); /* leader kept */
    ASSERT_EQ(answers[4].nmembers, 2);
    ASSERT_EQ(answers[3].nmembers, 0);
    /* follower syncs first and waits for the leader */
    sync_(g, 103, 5, m2, 2, 0, NULL, NULL);
    ASSERT_FALSE(answers[5].done);
    ASSERT_EQ(hb(g, 103, m2, 2), 0); /* heartbeats are fine while CompletingRebalance */
    const char *ids[] = {m1, m2};
    const char *as[] = {"A-1", "A-2"};
    sync_(g, 104, 6, m1, 2, 2, ids, as);
    ASSERT_TRUE(answers[5].done && answers[6].done);
    ASSERT_STREQ(answers[5].assignment, "A-2");
    ASSERT_STREQ(answers[6].assignment, "A-1");
    ASSERT_EQ(g->state, RN_GS_STABLE);
    /* a stale generation on sync */
    sync_(g, 105, 7, m2, 1, 0, NULL, NULL);
    ASSERT_EQ(answers[7].error, RN_ERR_ILLEGAL_GENERATION);
    rn_group_free(g);
}

RN_TEST(group_session_timeout_removes_member) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    char m1[320];
    single_member_stable(g, m1);
    join(g, 100, 3, "", NULL, 0);
    join(g, 100, 4, m1, NULL, 5);
    char m2[320];
    strcpy(m2, answers[3].member_id);
    const char *ids[] = {m1, m2};
    const char *as[] = {"x", "y"};
    sync_(g, 101, 5, m1, 2, 2, ids, as);
    sync_(g, 101, 6, m2, 2, 0, NULL, NULL);
    ASSERT_EQ(g->state, RN_GS_STABLE);
    /* m1 keeps heartbeating, m2 goes silent */
    for (int64_t t = 2000; t <= 12000; t += 2000) {
        ASSERT_EQ(hb(g, t, m1, 2), 0);
        tick(g, t);
    }
    ASSERT_EQ(g->nmembers, 1);
    ASSERT_EQ(g->state, RN_GS_PREPARING_REBALANCE);
    ASSERT_EQ(hb(g, 12001, m2, 2), RN_ERR_UNKNOWN_MEMBER_ID);
    ASSERT_EQ(hb(g, 12001, m1, 2), RN_ERR_REBALANCE_IN_PROGRESS);
    join(g, 12002, 7, m1, NULL, 5);
    ASSERT_TRUE(answers[7].done);
    ASSERT_EQ(answers[7].generation, 3);
    rn_group_free(g);
}

RN_TEST(group_rebalance_timeout_drops_members_that_do_not_rejoin) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    char m1[320];
    single_member_stable(g, m1);
    join(g, 100, 3, "", NULL, 0); /* m1 never rejoins (max.poll.interval.ms) */
    for (int64_t t = 5000; t < 30100; t += 5000) {
        hb(g, t, m1, 1);
        tick(g, t);
        if (t < 30000) ASSERT_FALSE(answers[3].done);
    }
    tick(g, 30100);
    ASSERT_TRUE(answers[3].done);
    ASSERT_EQ(answers[3].generation, 2);
    ASSERT_EQ(g->nmembers, 1);
    ASSERT_STREQ(answers[3].leader_id, answers[3].member_id); /* the new member leads */
    rn_group_free(g);
}

RN_TEST(group_sync_timeout_removes_members) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    join(g, 0, 0, "", NULL, 0);
    tick(g, 0);
    ASSERT_TRUE(answers[0].done);
    ASSERT_EQ(g->state, RN_GS_COMPLETING_REBALANCE);
    /* no SyncGroup within the rebalance timeout (30 s) */
    for (int64_t t = 5000; t <= 30000; t += 5000) {
        hb(g, t, answers[0].member_id, 1);
        tick(g, t);
    }
    ASSERT_EQ(g->nmembers, 0);
    tick(g, 30001);
    ASSERT_EQ(g->state, RN_GS_EMPTY);
    ASSERT_EQ(g->generation, 2);
    rn_group_free(g);
}

RN_TEST(group_leave_and_errors) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    char m1[320];
    single_member_stable(g, m1);
    rn_group_env_t e = env_at(10);
    ASSERT_EQ(rn_group_leave(&e, g, RN_STR_LIT("ghost"), RN_STR_NULL), RN_ERR_UNKNOWN_MEMBER_ID);
    ASSERT_EQ(rn_group_leave(&e, g, rn_str_from_cstr(m1), RN_STR_NULL), 0);
    rn_group_assert_state(g);
    tick(g, 10);
    ASSERT_EQ(g->state, RN_GS_EMPTY);
    int stores_before = stores;
    (void)stores_before;
    /* an inconsistent protocol type is refused only while there are members */
    join(g, 20, 1, "", NULL, 0);
    rn_join_params_t p = {
        .member_id = RN_STR_LIT(""),
        .group_instance_id = RN_STR_NULL,
        .client_id = RN_STR_LIT("c"),
        .client_host = RN_STR_LIT("/h"),
        .protocol_type = RN_STR_LIT("connect"),
        .session_timeout_ms = 10000,
        .rebalance_timeout_ms = 10000,
        .nprotocols = 1,
        .protocol_names = proto_names,
        .protocol_metadata = proto_md,
        .waiter = fresh(2),
    };
    e = env_at(21);
    rn_group_join(&e, g, &p);
    ASSERT_EQ(answers[2].error, RN_ERR_INCONSISTENT_GROUP_PROTOCOL);
    p.protocol_type = RN_STR_LIT("consumer");
    p.session_timeout_ms = 10;
    p.waiter = fresh(3);
    rn_group_join(&e, g, &p);
    ASSERT_EQ(answers[3].error, RN_ERR_INVALID_SESSION_TIMEOUT);
    /* the parked join is answered when the member is removed */
    ASSERT_FALSE(answers[1].done);
    ASSERT_EQ(g->nmembers, 1);
    tick(g, 21);
    ASSERT_TRUE(answers[1].done);
    rn_group_free(g);
}

RN_TEST(group_initial_rebalance_delay) {
    rn_group_config_t saved = cfg;
    cfg.initial_rebalance_delay_ms = 3000;
    rn_group_t *g = rn_group_new("g", 1, 0);
    join(g, 0, 0, "", NULL, 0);
    tick(g, 1000);
    ASSERT_FALSE(answers[0].done);
    join(g, 1000, 1, "", NULL, 0); /* arrives during the delay: the delay is extended once more */
    tick(g, 3000);
    ASSERT_FALSE(answers[0].done);
    ASSERT_EQ(rn_group_next_deadline(g) >= 6000, 1);
    tick(g, 6000);
    ASSERT_TRUE(answers[0].done && answers[1].done);
    ASSERT_EQ(answers[0].generation, 1); /* one generation for both */
    ASSERT_EQ(answers[1].generation, 1);
    cfg = saved;
    rn_group_free(g);
}

RN_TEST(group_pending_member_ids_are_bounded) {
    rn_group_config_t saved = cfg;
    cfg.max_size = 2;
    rn_group_t *g = rn_group_new("g", 1, 0);
    join(g, 0, 0, "", NULL, 5);
    join(g, 0, 1, "", NULL, 5);
    join(g, 0, 2, "", NULL, 5);
    ASSERT_EQ(answers[0].error, RN_ERR_MEMBER_ID_REQUIRED);
    ASSERT_EQ(answers[1].error, RN_ERR_MEMBER_ID_REQUIRED);
    ASSERT_EQ(answers[2].error, RN_ERR_GROUP_MAX_SIZE_REACHED);
    tick(g, 10001); /* handed-out ids expire after the session timeout */
    ASSERT_EQ(g->npending, 0);
    cfg = saved;
    rn_group_free(g);
}

RN_TEST(group_max_size) {
    rn_group_config_t saved = cfg;
    cfg.max_size = 2;
    rn_group_t *g = rn_group_new("g", 1, 0);
    join(g, 0, 0, "", NULL, 0);
    join(g, 0, 1, "", NULL, 0);
    join(g, 0, 2, "", NULL, 0);
    ASSERT_TRUE(answers[2].done);
    ASSERT_EQ(answers[2].error, RN_ERR_GROUP_MAX_SIZE_REACHED);
    tick(g, 0);
    ASSERT_TRUE(answers[0].done && answers[1].done);
    ASSERT_EQ(g->nmembers, 2);
    cfg = saved;
    /* answer the pending syncs' members by leaving, so the group holds no waiters */
    rn_group_free(g);
}

RN_TEST(group_static_member_rejoins_without_rebalance) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    join(g, 0, 0, "", "inst-a", 5); /* static members skip MEMBER_ID_REQUIRED */
    join(g, 0, 1, "", "inst-b", 5);
    tick(g, 0);
    ASSERT_TRUE(answers[0].done && answers[1].done);
    char a[320], b[320];
    strcpy(a, answers[0].member_id);
    strcpy(b, answers[1].member_id);
    ASSERT_STREQ(answers[0].leader_id, a);
    const char *ids[] = {a, b};
    const char *as[] = {"PA", "PB"};
    sync_(g, 1, 2, a, 1, 2, ids, as);
    sync_(g, 1, 3, b, 1, 0, NULL, NULL);
    ASSERT_EQ(g->state, RN_GS_STABLE);
    /* b restarts: unknown member id, same instance id */
    join(g, 5000, 4, "", "inst-b", 5);
    ASSERT_TRUE(answers[4].done);
    ASSERT_EQ(answers[4].error, 0);
    ASSERT_EQ(answers[4].generation, 1);
    ASSERT_EQ(g->state, RN_GS_STABLE);
    ASSERT_NE(strcmp(answers[4].member_id, b), 0);
    char b2[320];
    strcpy(b2, answers[4].member_id);
    sync_(g, 5001, 5, b2, 1, 0, NULL, NULL);
    ASSERT_STREQ(answers[5].assignment, "PB"); /* same assignment, no rebalance */
    /* the old incarnation is fenced */
    rn_group_env_t e = env_at(5002);
    ASSERT_EQ(rn_group_heartbeat(&e, g, rn_str_from_cstr(b), RN_STR_LIT("inst-b"), 1), RN_ERR_FENCED_INSTANCE_ID);
    /* the leader restarts: pre-KIP-814 clients are told the old leader id (no assignment run) */
    join(g, 5003, 6, "", "inst-a", 5);
    ASSERT_EQ(answers[6].error, 0);
    ASSERT_STREQ(answers[6].leader_id, a);
    ASSERT_EQ(answers[6].nmembers, 0);
    ASSERT_EQ(g->state, RN_GS_STABLE);
    /* v9: the leader gets the members and SkipAssignment */
    join(g, 5004, 7, "", "inst-a", 9);
    ASSERT_TRUE(answers[7].skip);
    ASSERT_EQ(answers[7].nmembers, 2);
    ASSERT_STREQ(answers[7].leader_id, answers[7].member_id);
    ASSERT_EQ(g->generation, 1);
    rn_group_free(g);
}

RN_TEST(group_leader_rejoin_in_stable_rebalances) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    char m1[320];
    single_member_stable(g, m1);
    join(g, 10, 3, m1, NULL, 5);
    tick(g, 10);
    ASSERT_TRUE(answers[3].done);
    ASSERT_EQ(answers[3].generation, 2);
    rn_group_free(g);
}

RN_TEST(group_commit_validation) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    rn_group_env_t e = env_at(0);
    /* standalone commits into an empty group */
    ASSERT_EQ(rn_group_validate_commit(&e, g, RN_STR_LIT(""), RN_STR_NULL, -1), 0);
    char m1[320];
    single_member_stable(g, m1);
    e = env_at(10);
    ASSERT_EQ(rn_group_validate_commit(&e, g, RN_STR_LIT(""), RN_STR_NULL, -1), RN_ERR_UNKNOWN_MEMBER_ID);
    ASSERT_EQ(rn_group_validate_commit(&e, g, rn_str_from_cstr(m1), RN_STR_NULL, 7), RN_ERR_ILLEGAL_GENERATION);
    ASSERT_EQ(rn_group_validate_commit(&e, g, rn_str_from_cstr(m1), RN_STR_NULL, 1), 0);
    rn_group_free(g);
}

RN_TEST(group_offsets_and_expiry) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    rn_offset_t o = {.offset = 5, .leader_epoch = -1, .metadata = "md", .metadata_len = 2, .commit_timestamp_ms = 1000,
                     .expire_timestamp_ms = -1};
    ASSERT_EQ(rn_group_offset_put(g, "t", 1, 0, &o), 0);
    o.offset = 9;
    ASSERT_EQ(rn_group_offset_put(g, "t", 1, 0, &o), 0);
    ASSERT_EQ(rn_group_offset_put(g, "u", 1, 3, &o), 0);
    ASSERT_EQ(rn_group_offset_get(g, "t", 1, 0)->offset, 9);
    ASSERT_EQ(rn_group_offset_count(g), 2);
    ASSERT_TRUE(rn_group_offset_get(g, "t", 1, 1) == NULL);
    ASSERT_TRUE(rn_group_offset_del(g, "u", 1, 3));
    ASSERT_FALSE(rn_group_offset_del(g, "u", 1, 3));
    rn_group_free(g);
}

static int expired_n;
static void count_expired(void *arg, const char *t, size_t tl, int32_t p) { expired_n++; }

RN_TEST(group_offsets_expire_by_rules) {
    rn_group_t *g = rn_group_new("g", 1, 0);
    rn_offset_t o = {.offset = 5, .leader_epoch = -1, .metadata = "", .metadata_len = 0, .commit_timestamp_ms = 1000,
                     .expire_timestamp_ms = -1};
    rn_group_offset_put(g, "t", 1, 0, &o);
    o.expire_timestamp_ms = 1200;
    rn_group_offset_put(g, "t", 1, 1, &o);
    expired_n = 0;
    rn_group_expired_offsets(g, 1500, 1000, count_expired, NULL);
    ASSERT_EQ(expired_n, 1); /* only the explicit expiry */
    expired_n = 0;
    rn_group_expired_offsets(g, 2000, 1000, count_expired, NULL);
    ASSERT_EQ(expired_n, 2);
    /* a group with members keeps its offsets */
    char m1[320];
    single_member_stable(g, m1);
    expired_n = 0;
    ASSERT_EQ(g->nsubscribed, -1); /* the test metadata is not a ConsumerProtocolSubscription */
    rn_group_expired_offsets(g, 100000, 1000, count_expired, NULL);
    ASSERT_EQ(expired_n, 0);
    /* a Stable consumer group expires offsets of topics it no longer subscribes to */
    g->nsubscribed = 0;
    rn_group_expired_offsets(g, 100000, 1000, count_expired, NULL);
    ASSERT_EQ(expired_n, 2);
    rn_group_free(g);
}

/* ---- records ------------------------------------------------------------ */

RN_TEST(group_java_hash_and_partition) {
    ASSERT_EQ(rn_java_string_hash("", 0), 0);
    ASSERT_EQ(rn_java_string_hash("a", 1), 97);
    ASSERT_EQ(rn_java_string_hash("hello", 5), 99162322);
    ASSERT_EQ(rn_java_string_hash("\xc3\xa9", 2), 233);                 /* é */
    ASSERT_EQ(rn_java_string_hash("\xf0\x9f\x98\x80", 4), 55357 * 31 + 56832); /* U+1F600 as a surrogate pair */
    ASSERT_EQ(rn_java_string_hash("polygenelubricants", 18), INT32_MIN);
    ASSERT_EQ(rn_group_partition_for("polygenelubricants", 18, 50), 0); /* Utils.abs(MIN_VALUE) = 0 */
    ASSERT_EQ(rn_group_partition_for("hello", 5, 50), 99162322 % 50);
    int32_t h = rn_java_string_hash("console-consumer-1", 18);
    ASSERT_EQ(rn_group_partition_for("console-consumer-1", 18, 50), (h < 0 ? -h : h) % 50);
}

RN_TEST(group_offset_records_round_trip) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_offsets_key_offset(&b, RN_STR_LIT("grp"), RN_STR_LIT("topic"), 7);
    /* int16 1, "grp", "topic", int32 7 */
    static const uint8_t want[] = {0, 1, 0, 3, 'g', 'r', 'p', 0, 5, 't', 'o', 'p', 'i', 'c', 0, 0, 0, 7};
    ASSERT_EQ(b.len, sizeof(want));
    ASSERT_MEMEQ(b.data, want, sizeof(want));
    rn_okey_t k;
    ASSERT_EQ(rn_offsets_parse_key((rn_bytes_t){b.data, (int32_t)b.len}, &k), 0);
    ASSERT_EQ(k.kind, RN_OKEY_OFFSET);
    ASSERT_TRUE(rn_str_eq_cstr(k.group, "grp") && rn_str_eq_cstr(k.topic, "topic"));
    ASSERT_EQ(k.partition, 7);

    rn_buf_reset(&b);
    rn_offset_t o = {.offset = 1234, .leader_epoch = 3, .metadata = "meta", .metadata_len = 4,
                     .commit_timestamp_ms = 1700000000000, .expire_timestamp_ms = -1};
    rn_offsets_value_offset(&b, &o);
    ASSERT_EQ(b.data[1], 3); /* v3 */
    rn_offset_t r;
    ASSERT_EQ(rn_offsets_parse_offset_value((rn_bytes_t){b.data, (int32_t)b.len}, &r), 0);
    ASSERT_EQ(r.offset, 1234);
    ASSERT_EQ(r.leader_epoch, 3);
    ASSERT_EQ(r.metadata_len, 4);
    ASSERT_MEMEQ(r.metadata, "meta", 4);
    ASSERT_EQ(r.commit_timestamp_ms, 1700000000000);
    ASSERT_EQ(r.expire_timestamp_ms, -1);
    rn_buf_reset(&b);
    o.expire_timestamp_ms = 1700000009999;
    rn_offsets_value_offset(&b, &o);
    ASSERT_EQ(b.data[1], 1); /* v1 carries the expiry */
    ASSERT_EQ(rn_offsets_parse_offset_value((rn_bytes_t){b.data, (int32_t)b.len}, &r), 0);
    ASSERT_EQ(r.expire_timestamp_ms, 1700000009999);
    ASSERT_EQ(r.leader_epoch, -1);
    /* v0 written by an old broker: offset, metadata, timestamp */
    static const uint8_t v0[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 5};
    ASSERT_EQ(rn_offsets_parse_offset_value((rn_bytes_t){v0, sizeof(v0)}, &r), 0);
    ASSERT_EQ(r.offset, 9);
    ASSERT_EQ(r.commit_timestamp_ms, 5);
    static const uint8_t bad[] = {0, 3, 1};
    ASSERT_NE(rn_offsets_parse_offset_value((rn_bytes_t){bad, sizeof(bad)}, &r), 0);
    rn_buf_free(&b);
}

RN_TEST(group_metadata_record_round_trip) {
    rn_group_t *g = rn_group_new("gm", 2, 0);
    join(g, 0, 0, "", "static-1", 5);
    join(g, 0, 1, "", NULL, 0);
    tick(g, 0);
    const char *ids[] = {answers[0].member_id, answers[1].member_id};
    const char *as[] = {"ASSIGN-0", "ASSIGN-1"};
    sync_(g, 1, 2, answers[0].member_id, 1, 2, ids, as);
    sync_(g, 1, 3, answers[1].member_id, 1, 0, NULL, NULL);
    ASSERT_EQ(g->state, RN_GS_STABLE);
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    rn_offsets_key_group(&b, RN_STR_LIT("gm"));
    rn_okey_t k;
    ASSERT_EQ(rn_offsets_parse_key((rn_bytes_t){b.data, (int32_t)b.len}, &k), 0);
    ASSERT_EQ(k.kind, RN_OKEY_GROUP);
    rn_buf_reset(&b);
    rn_offsets_value_group(&b, g);
    rn_stored_group_t s;
    ASSERT_EQ(rn_offsets_parse_group_value((rn_bytes_t){b.data, (int32_t)b.len}, &s), 0);
    ASSERT_TRUE(rn_str_eq_cstr(s.protocol_type, "consumer"));
    ASSERT_TRUE(rn_str_eq_cstr(s.protocol_name, "range"));
    ASSERT_EQ(s.generation, 1);
    ASSERT_EQ(s.nmembers, 2);
    ASSERT_TRUE(rn_str_eq_cstr(s.members[0].group_instance_id, "static-1"));
    ASSERT_EQ(s.members[1].group_instance_id.len, -1);
    ASSERT_TRUE(rn_str_eq_cstr(s.members[0].client_host, "/127.0.0.1"));
    ASSERT_EQ(s.members[0].session_timeout_ms, 10000);
    ASSERT_EQ(s.members[0].rebalance_timeout_ms, 30000);
    ASSERT_EQ(s.members[0].subscription.len, 7); /* the "range" metadata */
    ASSERT_EQ(s.members[1].assignment.len, 8);
    /* load into a fresh group: Stable, same members, same assignments */
    rn_group_t *g2 = rn_group_new("gm", 2, 0);
    rn_group_env_t e = env_at(100);
    ASSERT_EQ(rn_group_load(&e, g2, &s), 0);
    rn_group_assert_state(g2);
    ASSERT_EQ(g2->state, RN_GS_STABLE);
    ASSERT_EQ(g2->generation, 1);
    ASSERT_STREQ(g2->leader_id, g->leader_id);
    ASSERT_EQ(rn_group_heartbeat(&e, g2, rn_str_from_cstr(answers[1].member_id), RN_STR_NULL, 1), 0);
    rn_member_t *m = rn_group_member(g2, answers[1].member_id, strlen(answers[1].member_id));
    ASSERT_TRUE(m != NULL);
    ASSERT_EQ(m->assignment_len, 8);
    ASSERT_MEMEQ(m->assignment, "ASSIGN-1", 8);
    free(s.members);
    rn_buf_free(&b);
    rn_group_free(g2);
    rn_group_free(g);
}

int main(void) {
    rn_log_set_level(RN_LOG_WARN);
    return rn_test_main();
}
