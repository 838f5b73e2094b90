/*
 * test_meta_image.c — the metadata image: applying each record type, the checks apply makes,
 * queries, limits, and snapshots (serialize → load → serialize gives the same bytes; damaged
 * snapshots are refused).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "test_controller_util.h"

static void uuid_fill(uint8_t id[16], uint8_t seed) {
    for (int i = 0; i < 16; i++) id[i] = (uint8_t)(seed * 13 + i + 1);
}

static rn_err_t add_broker(rn_meta_image_t *img, int32_t id, int64_t epoch, const char *rack, bool fenced) {
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_REGISTER_BROKER;
    env_reg_req(&rec.reg, id, rack, 1);
    rec.reg.epoch = epoch;
    rec.reg.fenced = fenced;
    return rn_meta_image_apply(img, &rec, epoch);
}

static rn_err_t add_topic(rn_meta_image_t *img, const char *name, uint8_t seed) {
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_TOPIC;
    rec.topic.name = rn_str_from_cstr(name);
    uuid_fill(rec.topic.id, seed);
    return rn_meta_image_apply(img, &rec, 0);
}

static rn_err_t add_partition(rn_meta_image_t *img, uint8_t seed, int32_t p, const rn_meta_ids_t *replicas,
                              int32_t leader) {
    rn_meta_record_t *rec = calloc(1, sizeof(*rec));
    rec->type = RN_META_PARTITION;
    uuid_fill(rec->part.topic_id, seed);
    rec->part.partition = p;
    rec->part.replicas = *replicas;
    rec->part.isr = *replicas;
    rec->part.leader = leader;
    rn_err_t err = rn_meta_image_apply(img, rec, 0);
    free(rec);
    return err;
}

static rn_err_t change(rn_meta_image_t *img, uint8_t seed, int32_t p, const rn_meta_change_rec_t *c) {
    rn_meta_record_t *rec = calloc(1, sizeof(*rec));
    rec->type = RN_META_PARTITION_CHANGE;
    rec->change = *c;
    uuid_fill(rec->change.topic_id, seed);
    rec->change.partition = p;
    rn_err_t err = rn_meta_image_apply(img, rec, 0);
    free(rec);
    return err;
}

static rn_err_t set_config(rn_meta_image_t *img, int8_t type, const char *name, const char *key, const char *value) {
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_CONFIG;
    rec.config.resource_type = type;
    rec.config.resource_name = rn_str_from_cstr(name);
    rec.config.key = rn_str_from_cstr(key);
    rec.config.value = value ? rn_str_from_cstr(value) : RN_STR_NULL;
    return rn_meta_image_apply(img, &rec, 0);
}

/* A small cluster: 3 brokers, topics "a" (2 partitions) and "b" (1), a few configs. */
static rn_meta_image_t *sample_image(void) {
    rn_meta_image_t *img = rn_meta_image_new(NULL);
    RN_ASSERT(add_broker(img, 2, 5, "r2", false) == RN_OK);
    RN_ASSERT(add_broker(img, 1, 4, "r1", false) == RN_OK);
    RN_ASSERT(add_broker(img, 3, 6, NULL, true) == RN_OK);
    RN_ASSERT(add_topic(img, "b", 2) == RN_OK);
    RN_ASSERT(add_topic(img, "a", 1) == RN_OK);
    rn_meta_ids_t r;
    IDS(&r, 1, 2, 3);
    RN_ASSERT(add_partition(img, 1, 0, &r, 1) == RN_OK);
    IDS(&r, 2, 3, 1);
    RN_ASSERT(add_partition(img, 1, 1, &r, 2) == RN_OK);
    IDS(&r, 2);
    RN_ASSERT(add_partition(img, 2, 0, &r, 2) == RN_OK);
    RN_ASSERT(set_config(img, RN_META_RESOURCE_TOPIC, "a", "retention.ms", "1000") == RN_OK);
    RN_ASSERT(set_config(img, RN_META_RESOURCE_TOPIC, "b", "cleanup.policy", "compact") == RN_OK);
    RN_ASSERT(set_config(img, RN_META_RESOURCE_BROKER, "", "min.insync.replicas", "2") == RN_OK);
    rn_meta_record_t rec = {.type = RN_META_PRODUCER_IDS};
    rec.pids.next_producer_id = 3000;
    RN_ASSERT(rn_meta_image_apply(img, &rec, 0) == RN_OK);
    return img;
}

RN_TEST(brokers_topics_partitions_and_queries) {
    rn_meta_image_t *img = sample_image();
    ASSERT_EQ(rn_meta_image_broker_count(img), 3);
    ASSERT_EQ(rn_meta_image_broker_at(img, 0)->id, 1); /* sorted by id */
    const rn_meta_broker_t *b2 = rn_meta_image_broker(img, 2);
    ASSERT_TRUE(b2 != NULL);
    ASSERT_STREQ(b2->rack, "r2");
    ASSERT_EQ(b2->nlisteners, 1);
    ASSERT_STREQ(b2->listeners[0].host, "127.0.0.1");
    ASSERT_EQ(b2->listeners[0].port, 9094);
    ASSERT_TRUE(rn_meta_broker_listener(b2, "PLAINTEXT") == &b2->listeners[0]);
    ASSERT_TRUE(rn_meta_broker_listener(b2, "SSL") == NULL);
    ASSERT_TRUE(rn_meta_image_broker_active(img, 1));
    ASSERT_FALSE(rn_meta_image_broker_active(img, 3)); /* fenced */
    ASSERT_TRUE(rn_meta_image_broker(img, 3)->rack == NULL);
    ASSERT_EQ(rn_meta_image_broker_epoch_hwm(img), 6);

    ASSERT_EQ(rn_meta_image_topic_count(img), 2);
    ASSERT_STREQ(rn_meta_image_topic_at(img, 0)->name, "a");
    const rn_meta_topic_t *a = rn_meta_image_topic_by_name(img, RN_STR_LIT("a"));
    ASSERT_TRUE(a && a->npartitions == 2);
    ASSERT_TRUE(rn_meta_image_topic_by_id(img, a->id) == a);
    ASSERT_TRUE(rn_meta_image_topic_by_name(img, RN_STR_LIT("c")) == NULL);
    ASSERT_EQ(rn_meta_image_partition_count(img), 3);
    const rn_meta_partition_t *p = rn_meta_image_partition(img, a->id, 1);
    ASSERT_EQ(p->leader, 2);
    rn_meta_ids_t l;
    rn_meta_partition_list(p, RN_META_L_REPLICAS, &l);
    ASSERT_EQ(l.n, 3);
    ASSERT_EQ(l.ids[0], 2);
    ASSERT_TRUE(rn_meta_image_partition(img, a->id, 2) == NULL);

    rn_meta_tp_t led[4];
    ASSERT_EQ(rn_meta_image_partitions_led_by(img, 2, led, 4), 2);
    ASSERT_STREQ(led[0].topic->name, "a");
    ASSERT_EQ(led[0].partition, 1);
    ASSERT_STREQ(led[1].topic->name, "b");
    ASSERT_EQ(rn_meta_image_partitions_led_by(img, 2, led, 1), 2); /* count beyond max */
    ASSERT_EQ(rn_meta_image_partitions_led_by(img, 3, led, 4), 0);
    ASSERT_EQ(rn_meta_image_reassignments(img, led, 4), 0);

    ASSERT_STREQ(rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, "a", "retention.ms"), "1000");
    ASSERT_TRUE(rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, "a", "cleanup.policy") == NULL);
    ASSERT_EQ(rn_meta_image_next_producer_id(img), 3000);
    ASSERT_TRUE(rn_meta_image_check(img, NULL, 0) == NULL);
    rn_meta_image_free(img);
}

RN_TEST(apply_refuses_what_would_break_the_image) {
    rn_meta_image_t *img = sample_image();
    rn_meta_ids_t r;
    IDS(&r, 1, 2);
    /* Leader outside the ISR. */
    rn_meta_record_t *rec = calloc(1, sizeof(*rec));
    rec->type = RN_META_PARTITION;
    uuid_fill(rec->part.topic_id, 2);
    rec->part.partition = 1;
    rec->part.replicas = r;
    IDS(&rec->part.isr, 1);
    rec->part.leader = 2;
    ASSERT_EQ(rn_meta_image_apply(img, rec, 0), RN_ERR_INVALID_ARG);
    /* A gap in partition numbers. */
    rec->part.leader = 1;
    rec->part.partition = 2;
    ASSERT_EQ(rn_meta_image_apply(img, rec, 0), RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    /* ISR outside the replicas, duplicate replicas, ISR ∩ ELR. */
    rec->part.partition = 1;
    IDS(&rec->part.isr, 1, 3);
    ASSERT_EQ(rn_meta_image_apply(img, rec, 0), RN_ERR_INVALID_ARG);
    IDS(&rec->part.isr, 1);
    IDS(&rec->part.replicas, 1, 1);
    ASSERT_EQ(rn_meta_image_apply(img, rec, 0), RN_ERR_INVALID_ARG);
    IDS(&rec->part.replicas, 1, 2);
    IDS(&rec->part.elr, 1);
    ASSERT_EQ(rn_meta_image_apply(img, rec, 0), RN_ERR_INVALID_ARG);
    rec->part.elr.n = 0;
    ASSERT_EQ(rn_meta_image_apply(img, rec, 0), RN_OK);
    ASSERT_EQ(rn_meta_image_partition_count(img), 4);
    ASSERT_EQ(rn_meta_image_apply(img, rec, 0), RN_ERR_EXISTS); /* partitions are added once */
    ASSERT_EQ(rn_meta_image_partition_count(img), 4);
    free(rec);

    /* Unknown topic, duplicate names and ids, bad names. */
    rn_meta_change_rec_t c = {.fields = RN_META_PC_LEADER, .leader = 2};
    ASSERT_EQ(change(img, 9, 0, &c), RN_ERR_UNKNOWN_TOPIC_ID);
    ASSERT_EQ(add_topic(img, "a", 7), RN_ERR_EXISTS);
    ASSERT_EQ(add_topic(img, "c", 1), RN_ERR_EXISTS);
    ASSERT_EQ(add_topic(img, "bad/name", 7), RN_ERR_INVALID_ARG);
    ASSERT_EQ(add_topic(img, "..", 7), RN_ERR_INVALID_ARG);
    ASSERT_EQ(add_topic(img, "__cluster_metadata", 7), RN_ERR_INVALID_ARG); /* the quorum's log directory */
    /* Fencing an unknown broker or a stale epoch. */
    rn_meta_record_t f = {.type = RN_META_FENCE_BROKER};
    f.broker.node_id = 9;
    ASSERT_EQ(rn_meta_image_apply(img, &f, 0), RN_ERR_BROKER_ID_NOT_REGISTERED);
    f.broker.node_id = 1;
    f.broker.epoch = 3;
    ASSERT_EQ(rn_meta_image_apply(img, &f, 0), RN_ERR_STALE_BROKER_EPOCH);
    f.broker.epoch = 4;
    ASSERT_EQ(rn_meta_image_apply(img, &f, 0), RN_OK);
    ASSERT_FALSE(rn_meta_image_broker_active(img, 1));
    /* Producer ids only move forward. */
    rn_meta_record_t pid = {.type = RN_META_PRODUCER_IDS};
    pid.pids.next_producer_id = 3000;
    ASSERT_EQ(rn_meta_image_apply(img, &pid, 0), RN_ERR_INVALID_ARG);
    ASSERT_TRUE(rn_meta_image_check(img, NULL, 0) == NULL);
    rn_meta_image_free(img);
}

RN_TEST(partition_change_bumps_epochs) {
    rn_meta_image_t *img = sample_image();
    const rn_meta_topic_t *a = rn_meta_image_topic_by_name(img, RN_STR_LIT("a"));
    rn_meta_part_rec_t p;
    rn_meta_partition_get(a, 0, &p);
    ASSERT_EQ(p.leader_epoch, 0);
    ASSERT_EQ(p.partition_epoch, 0);
    /* ISR shrink: partition epoch only. */
    rn_meta_change_rec_t c = {.fields = RN_META_PC_ISR};
    IDS(&c.isr, 1, 2);
    ASSERT_EQ(change(img, 1, 0, &c), RN_OK);
    rn_meta_partition_get(a, 0, &p);
    ASSERT_SET(p.isr, 1, 2);
    ASSERT_EQ(p.leader, 1);
    ASSERT_EQ(p.leader_epoch, 0);
    ASSERT_EQ(p.partition_epoch, 1);
    /* New leader (and ELR): both epochs. */
    c = (rn_meta_change_rec_t){.fields = RN_META_PC_LEADER | RN_META_PC_ISR | RN_META_PC_ELR, .leader = 2};
    IDS(&c.isr, 2);
    IDS(&c.elr, 1);
    ASSERT_EQ(change(img, 1, 0, &c), RN_OK);
    rn_meta_partition_get(a, 0, &p);
    ASSERT_EQ(p.leader, 2);
    ASSERT_EQ(p.leader_epoch, 1);
    ASSERT_EQ(p.partition_epoch, 2);
    ASSERT_SET(p.elr, 1);
    ASSERT_SET(p.replicas, 1, 2, 3);
    /* The same leader again still bumps the leader epoch (how removals fence old replicas). */
    c = (rn_meta_change_rec_t){.fields = RN_META_PC_LEADER, .leader = 2};
    ASSERT_EQ(change(img, 1, 0, &c), RN_OK);
    rn_meta_partition_get(a, 0, &p);
    ASSERT_EQ(p.leader_epoch, 2);
    ASSERT_EQ(p.partition_epoch, 3);
    /* A change that would break an invariant leaves the partition alone. */
    c = (rn_meta_change_rec_t){.fields = RN_META_PC_LEADER, .leader = 3};
    ASSERT_EQ(change(img, 1, 0, &c), RN_ERR_INVALID_ARG);
    c = (rn_meta_change_rec_t){.fields = RN_META_PC_REPLICAS};
    IDS(&c.replicas, 1, 3);
    ASSERT_EQ(change(img, 1, 0, &c), RN_ERR_INVALID_ARG); /* leader 2 / ISR {2} not in replicas */
    rn_meta_partition_get(a, 0, &p);
    ASSERT_EQ(p.partition_epoch, 3);
    ASSERT_EQ(change(img, 1, 5, &c), RN_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    rn_meta_image_free(img);
}

RN_TEST(configs_and_topic_removal) {
    rn_meta_image_t *img = sample_image();
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "a", "retention.ms", "2000"), RN_OK);
    ASSERT_STREQ(rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, "a", "retention.ms"), "2000");
    ASSERT_EQ(rn_meta_image_config_count(img), 3);
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "a", "segment.bytes", "1024"), RN_OK);
    ASSERT_EQ(rn_meta_image_config_count(img), 4);
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "a", "segment.bytes", NULL), RN_OK);
    ASSERT_TRUE(rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, "a", "segment.bytes") == NULL);
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "a", "nothing.there", NULL), RN_OK);
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "a", "", "x"), RN_ERR_INVALID_ARG);
    /* Sorted by (type, name, key). */
    ASSERT_STREQ(rn_meta_image_config_at(img, 0)->resource_name, "a");
    ASSERT_STREQ(rn_meta_image_config_at(img, 1)->resource_name, "b");
    ASSERT_EQ(rn_meta_image_config_at(img, 2)->resource_type, RN_META_RESOURCE_BROKER);

    const rn_meta_topic_t *a = rn_meta_image_topic_by_name(img, RN_STR_LIT("a"));
    uint8_t id[16];
    memcpy(id, a->id, 16);
    rn_meta_record_t rm = {.type = RN_META_REMOVE_TOPIC};
    memcpy(rm.remove_topic.topic_id, id, 16);
    ASSERT_EQ(rn_meta_image_apply(img, &rm, 0), RN_OK);
    ASSERT_TRUE(rn_meta_image_topic_by_name(img, RN_STR_LIT("a")) == NULL);
    ASSERT_TRUE(rn_meta_image_topic_by_id(img, id) == NULL);
    ASSERT_EQ(rn_meta_image_partition_count(img), 1);
    ASSERT_TRUE(rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, "a", "retention.ms") == NULL);
    ASSERT_EQ(rn_meta_image_config_count(img), 2);
    ASSERT_EQ(rn_meta_image_apply(img, &rm, 0), RN_ERR_UNKNOWN_TOPIC_ID);
    /* The name can be used again. */
    ASSERT_EQ(add_topic(img, "a", 5), RN_OK);
    rn_meta_image_free(img);
}

RN_TEST(limits_are_enforced) {
    rn_meta_limits_t lim = {.brokers_max = 2, .topics_max = 1, .partitions_max = 2, .configs_max = 1};
    rn_meta_image_t *img = rn_meta_image_new(&lim);
    ASSERT_EQ(add_broker(img, 1, 1, NULL, false), RN_OK);
    ASSERT_EQ(add_broker(img, 2, 2, NULL, false), RN_OK);
    ASSERT_EQ(add_broker(img, 3, 3, NULL, false), RN_ERR_LIMIT);
    ASSERT_EQ(add_broker(img, 2, 4, NULL, false), RN_OK); /* re-registration is no new broker */
    ASSERT_EQ(add_broker(img, 2, 4, NULL, false), RN_ERR_STALE_BROKER_EPOCH); /* epochs only grow */
    ASSERT_EQ(add_topic(img, "x", 1), RN_OK);
    ASSERT_EQ(add_topic(img, "y", 2), RN_ERR_LIMIT);
    rn_meta_ids_t r;
    IDS(&r, 1);
    ASSERT_EQ(add_partition(img, 1, 0, &r, 1), RN_OK);
    ASSERT_EQ(add_partition(img, 1, 1, &r, 1), RN_OK);
    ASSERT_EQ(add_partition(img, 1, 2, &r, 1), RN_ERR_LIMIT);
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "x", "k", "v"), RN_OK);
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "x", "k2", "v"), RN_ERR_LIMIT);
    ASSERT_EQ(set_config(img, RN_META_RESOURCE_TOPIC, "x", "k", "w"), RN_OK); /* replacing is fine */
    rn_meta_image_free(img);
}

static void serialize(const rn_meta_image_t *img, rn_buf_t *b) {
    rn_buf_init(b, 1u << 24);
    rn_meta_image_serialize(img, b);
    RN_ASSERT(b->err == RN_OK);
}

RN_TEST(snapshot_round_trip) {
    rn_meta_image_t *img = sample_image();
    rn_meta_record_t sd = {.type = RN_META_BROKER_SHUTDOWN};
    sd.broker.node_id = 2;
    sd.broker.epoch = 5;
    ASSERT_EQ(rn_meta_image_apply(img, &sd, 0), RN_OK);
    ASSERT_EQ(rn_meta_image_apply_entry(img, NULL, 0, 77), RN_OK);
    rn_buf_t s1, s2;
    serialize(img, &s1);
    rn_meta_image_t *back;
    ASSERT_EQ(rn_meta_image_load(&back, NULL, s1.data, s1.len), RN_OK);
    serialize(back, &s2);
    ASSERT_EQ(s1.len, s2.len);
    ASSERT_MEMEQ(s1.data, s2.data, s1.len);
    /* The loaded image answers the same. */
    ASSERT_EQ(rn_meta_image_offset(back), 77);
    ASSERT_EQ(rn_meta_image_next_producer_id(back), 3000);
    ASSERT_EQ(rn_meta_image_broker_epoch_hwm(back), 6);
    ASSERT_TRUE(rn_meta_image_broker(back, 2)->in_controlled_shutdown);
    ASSERT_TRUE(rn_meta_image_broker(back, 3)->fenced);
    ASSERT_STREQ(rn_meta_image_broker(back, 1)->rack, "r1");
    ASSERT_STREQ(rn_meta_image_config(back, RN_META_RESOURCE_BROKER, "", "min.insync.replicas"), "2");
    const rn_meta_topic_t *a = rn_meta_image_topic_by_name(back, RN_STR_LIT("a"));
    rn_meta_part_rec_t p;
    rn_meta_partition_get(a, 1, &p);
    ASSERT_EQ(p.leader, 2);
    ASSERT_EQ(p.replicas.ids[2], 1);
    ASSERT_EQ(rn_meta_image_broker(back, 1)->reg_offset, 77); /* soft state: the snapshot's offset */

    /* Every truncation and every flipped byte is refused. */
    for (size_t cut = 0; cut < s1.len; cut++) {
        rn_meta_image_t *x = NULL;
        ASSERT_NE(rn_meta_image_load(&x, NULL, s1.data, cut), RN_OK);
        ASSERT_TRUE(x == NULL);
    }
    for (size_t i = 0; i < s1.len; i++) {
        s1.data[i] ^= 0x40;
        rn_meta_image_t *x = NULL;
        rn_err_t err = rn_meta_image_load(&x, NULL, s1.data, s1.len);
        s1.data[i] ^= 0x40;
        if (err == RN_OK) RN_TEST_FAIL_("snapshot with byte %zu flipped loaded", i);
    }
    /* A snapshot beyond this node's limits is refused. */
    rn_meta_image_t *x = NULL;
    ASSERT_EQ(rn_meta_image_load(&x, &(rn_meta_limits_t){1, 10, 10, 10}, s1.data, s1.len), RN_ERR_LIMIT);
    rn_buf_free(&s1);
    rn_buf_free(&s2);
    rn_meta_image_free(back);
    rn_meta_image_free(img);
}

RN_TEST(entries_apply_all_or_nothing_on_damage) {
    rn_meta_image_t *img = rn_meta_image_new(NULL);
    rn_meta_batch_t b;
    rn_meta_batch_init(&b, 1 << 20);
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_REGISTER_BROKER;
    env_reg_req(&rec.reg, 1, NULL, 1);
    rec.reg.epoch = 1;
    rn_meta_batch_add(&b, &rec);
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_TOPIC;
    rec.topic.name = RN_STR_LIT("t");
    uuid_fill(rec.topic.id, 1);
    rn_meta_batch_add(&b, &rec);
    ASSERT_NE(rn_meta_image_apply_entry(img, b.buf.data, b.buf.len - 1, 1), RN_OK);
    ASSERT_EQ(rn_meta_image_broker_count(img), 0);
    ASSERT_EQ(rn_meta_image_offset(img), -1);
    ASSERT_EQ(rn_meta_image_apply_entry(img, b.buf.data, b.buf.len, 1), RN_OK);
    ASSERT_EQ(rn_meta_image_broker_count(img), 1);
    ASSERT_EQ(rn_meta_image_topic_count(img), 1);
    ASSERT_EQ(rn_meta_image_offset(img), 1);
    ASSERT_EQ(rn_meta_image_broker(img, 1)->reg_offset, 1);
    /* Replayed on a second image: identical snapshots. */
    rn_meta_image_t *img2 = rn_meta_image_new(NULL);
    ASSERT_EQ(rn_meta_image_apply_entry(img2, b.buf.data, b.buf.len, 1), RN_OK);
    rn_buf_t s1, s2;
    serialize(img, &s1);
    serialize(img2, &s2);
    ASSERT_EQ(s1.len, s2.len);
    ASSERT_MEMEQ(s1.data, s2.data, s1.len);
    rn_buf_free(&s1);
    rn_buf_free(&s2);
    rn_meta_batch_free(&b);
    rn_meta_image_free(img2);
    rn_meta_image_free(img);
}

int main(void) { return rn_test_main(); }
