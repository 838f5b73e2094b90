/*
 * test_meta_touched.c — which topics the controller's decisions touch: creation (a topic and
 * partitions the same entry names by a new id), new partitions, ISR and leadership changes,
 * topic configs, deletion (named through the image before the entry applies); broker records
 * touch none, a broker config and an undecodable entry touch all; the name bound.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_meta_touched.h"
#include "test_controller_util.h"

/* Notes the pending decision's entries (before they apply), then commits them. */
static rn_err_t note_commit(env_t *e, rn_meta_touched_t *t) {
    for (int32_t i = 0; i < rn_meta_batch_entries(&e->b); i++) {
        const uint8_t *p;
        size_t len;
        rn_meta_batch_entry(&e->b, i, &p, &len);
        rn_meta_touched_entry(t, e->img, p, len);
    }
    return env_commit(e);
}

static void three_brokers(env_t *e) {
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    env_init(e, &cfg, 7);
    for (int32_t id = 1; id <= 3; id++) ASSERT_EQ(env_add_broker(e, id, NULL, 1), RN_OK);
}

static void create(env_t *e, rn_meta_touched_t *t, const char *name, int32_t partitions) {
    rn_ctl_create_topic_t req = {.name = rn_str_from_cstr(name), .num_partitions = partitions, .replication_factor = 3};
    rn_ctl_create_topic_result_t res;
    ASSERT_EQ(rn_ctl_create_topic(e->ctl, e->img, &req, &e->b, &res), RN_OK);
    ASSERT_EQ(note_commit(e, t), RN_OK);
}

RN_TEST(decisions_touch_their_topics) {
    env_t e;
    three_brokers(&e);
    rn_meta_touched_t t;
    rn_meta_touched_init(&t);
    create(&e, &t, "a", 3);
    create(&e, &t, "b", 2);
    ASSERT_FALSE(t.all);
    ASSERT_EQ(t.n, 2);
    ASSERT_TRUE(rn_meta_touched_has(&t, "a") && rn_meta_touched_has(&t, "b"));
    ASSERT_FALSE(rn_meta_touched_has(&t, "c"));

    rn_meta_touched_reset(&t);
    ASSERT_EQ(rn_ctl_create_partitions(e.ctl, e.img, RN_STR_LIT("b"), 4, 0, NULL, false, &e.b), RN_OK);
    ASSERT_EQ(note_commit(&e, &t), RN_OK);
    ASSERT_EQ(t.n, 1);
    ASSERT_TRUE(rn_meta_touched_has(&t, "b"));

    rn_meta_touched_reset(&t);
    ASSERT_EQ(rn_ctl_alter_config(e.ctl, e.img, RN_META_RESOURCE_TOPIC, RN_STR_LIT("a"), RN_STR_LIT("retention.ms"),
                                  RN_STR_LIT("1000"), &e.b),
              RN_OK);
    ASSERT_EQ(note_commit(&e, &t), RN_OK);
    ASSERT_EQ(t.n, 1);
    ASSERT_TRUE(rn_meta_touched_has(&t, "a"));

    /* A broker fenced: its leaderships and ISR places move (PartitionChange) in both topics; the
     * fence record itself names none. */
    rn_meta_touched_reset(&t);
    ASSERT_EQ(rn_ctl_heartbeat(e.ctl, e.img, &(rn_ctl_heartbeat_t){1, e.epochs[1], e.offset, false, false}, e.now,
                               &e.b, &(rn_ctl_heartbeat_reply_t){0}),
              RN_OK);
    ASSERT_EQ(note_commit(&e, &t), RN_OK);
    ASSERT_EQ(t.n, 0); /* a heartbeat changes no topic */
    ASSERT_EQ(rn_ctl_heartbeat(e.ctl, e.img, &(rn_ctl_heartbeat_t){3, e.epochs[3], e.offset, true, false}, e.now, &e.b,
                               &(rn_ctl_heartbeat_reply_t){0}),
              RN_OK);
    ASSERT_EQ(note_commit(&e, &t), RN_OK);
    ASSERT_TRUE(rn_meta_touched_has(&t, "a") && rn_meta_touched_has(&t, "b"));
    ASSERT_FALSE(t.all);

    /* Deletion: named by id, which the image knows only before the entry applies. */
    rn_meta_touched_reset(&t);
    ASSERT_EQ(rn_ctl_delete_topic(e.ctl, e.img, RN_STR_LIT("a"), NULL, &e.b), RN_OK);
    ASSERT_EQ(note_commit(&e, &t), RN_OK);
    ASSERT_EQ(t.n, 1);
    ASSERT_TRUE(rn_meta_touched_has(&t, "a"));
    ASSERT_TRUE(rn_meta_image_topic_by_name(e.img, RN_STR_LIT("a")) == NULL);

    /* A cluster-wide config may govern every topic. */
    rn_meta_touched_reset(&t);
    ASSERT_EQ(rn_ctl_alter_config(e.ctl, e.img, RN_META_RESOURCE_BROKER, RN_STR_LIT(""),
                                  RN_STR_LIT("min.insync.replicas"), RN_STR_LIT("2"), &e.b),
              RN_OK);
    ASSERT_EQ(note_commit(&e, &t), RN_OK);
    ASSERT_TRUE(t.all);
    ASSERT_TRUE(rn_meta_touched_has(&t, "anything"));

    /* Moving hands everything over. */
    rn_meta_touched_t moved;
    rn_meta_touched_move(&moved, &t);
    ASSERT_TRUE(moved.all);
    ASSERT_FALSE(t.all);
    ASSERT_EQ(t.n, 0);
    rn_meta_touched_free(&moved);
    rn_meta_touched_free(&t);
    env_free(&e);
}

RN_TEST(bad_entries_and_many_names_touch_all) {
    rn_meta_image_t *img = rn_meta_image_new(NULL);
    rn_meta_touched_t t;
    rn_meta_touched_init(&t);
    uint8_t junk[] = {5, 0x42, 0x00, 0x01};
    rn_meta_touched_entry(&t, img, junk, sizeof(junk));
    ASSERT_TRUE(t.all);
    rn_meta_touched_reset(&t);
    ASSERT_FALSE(t.all);
    char name[32];
    for (int i = 0; i < RN_META_TOUCHED_MAX; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        rn_meta_touched_add(&t, name, strlen(name));
        rn_meta_touched_add(&t, name, strlen(name)); /* once each */
    }
    ASSERT_FALSE(t.all);
    ASSERT_EQ(t.n, RN_META_TOUCHED_MAX);
    rn_meta_touched_add(&t, "one-more", 8);
    ASSERT_TRUE(t.all);
    ASSERT_EQ(t.n, 0);
    rn_meta_touched_free(&t);
    rn_meta_image_free(img);
}

int main(void) { return rn_test_main(); }
