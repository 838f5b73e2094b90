/*
 * test_cluster_configs.c — dynamic broker configs in cluster mode: the active controller writes
 * them as Config records (resource type BROKER, "" the cluster default, "<id>" one broker), every
 * node reads the records for its own id and the default out of the image
 * (rn__image_broker_configs, src/cluster/rn_cluster_admin.c) and makes them its dynamic configs
 * (rn_broker_replace_dynamic_configs, src/broker/rn_topics.c), where they resolve as a single
 * node's do: its own id's value, then the default, then the properties file, then the default.
 * Snapshots carry them; they are validated as a single node validates them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_broker.h"
#include "rn_cluster_int.h"
#include "test_controller_util.h"

/* One broker-config change decided by the controller and committed (applied to the image). */
static rn_err_t alter(env_t *e, const char *broker, const char *key, const char *value) {
    rn_meta_batch_reset(&e->b);
    rn_err_t err = rn_ctl_alter_config(e->ctl, e->img, RN_META_RESOURCE_BROKER, rn_str_from_cstr(broker),
                                       rn_str_from_cstr(key), value ? rn_str_from_cstr(value) : RN_STR_NULL, &e->b);
    if (err) return err;
    return env_commit(e);
}

/* A fresh cluster model with the changes (broker, key, value) committed, each checked. */
static void env_with(env_t *e, uint64_t seed, const char *const (*changes)[3], size_t n) {
    env_init(e, NULL, seed);
    for (size_t i = 0; i < n; i++) RN_ASSERT(alter(e, changes[i][0], changes[i][1], changes[i][2]) == RN_OK);
}

/* A broker shell with a loaded config and an empty registry: what rn_broker_replace_dynamic_configs
 * and rn_broker_apply_configs_locked touch. `node` is its node.id, num.partitions=5 in its file. */
static rn_broker_t *broker_shell(int32_t node) {
    rn_broker_t *b = calloc(1, sizeof(*b));
    RN_ASSERT(b);
    rn_config_set_t ex;
    rn_config_set_init(&ex);
    char id[16];
    snprintf(id, sizeof(id), "%d", node);
    RN_ASSERT(rn_config_set_put(&ex, "node.id", id));
    RN_ASSERT(rn_config_set_put(&ex, "num.partitions", "5"));
    char msg[256];
    RN_ASSERT(rn_broker_config_load(&b->cfg, &ex, msg, sizeof(msg)) == RN_OK);
    rn_config_set_free(&ex);
    pthread_rwlock_init(&b->topics_lock, NULL);
    rn_map_init(&b->topics);
    return b;
}

static void broker_shell_free(rn_broker_t *b) {
    size_t it = 0;
    void *v;
    while (rn_map_next(&b->topics, &it, NULL, &v)) rn_topic_release(v);
    rn_map_free(&b->topics);
    pthread_rwlock_destroy(&b->topics_lock);
    rn_broker_config_free(&b->cfg);
    free(b);
}

/* The node follows the image (what the follow thread does after a broker Config record). */
static bool follow(rn_broker_t *b, const rn_meta_image_t *img) {
    rn_config_set_t per, def;
    rn_config_set_init(&per);
    rn_config_set_init(&def);
    RN_ASSERT(rn__image_broker_configs(img, b->cfg.node_id, &per, &def));
    bool changed = rn_broker_replace_dynamic_configs(b, &per, &def);
    rn_config_set_free(&per);
    rn_config_set_free(&def);
    return changed;
}

/* The node resolves `key` to `value`, from `want`. */
static void expect_value(rn_broker_t *b, const char *key, const char *value, rn_config_source_t want) {
    rn_config_source_t src;
    ASSERT_STREQ(rn_broker_config_value(&b->cfg, key, &src), value);
    ASSERT_EQ(src, want);
}

RN_TEST(each_node_takes_its_own_id_over_the_cluster_default) {
    static const char *const changes[][3] = {{"", "message.max.bytes", "2000"},
                                             {"2", "message.max.bytes", "3000"},
                                             {"2", "auto.create.topics.enable", "false"},
                                             {"3", "num.partitions", "7"}};
    env_t e;
    env_with(&e, 1, changes, 4);

    rn_config_set_t per, def;
    rn_config_set_init(&per);
    rn_config_set_init(&def);
    ASSERT_TRUE(rn__image_broker_configs(e.img, 2, &per, &def));
    ASSERT_EQ(per.n, 2);
    ASSERT_STREQ(rn_config_set_get(&per, "message.max.bytes"), "3000");
    ASSERT_STREQ(rn_config_set_get(&per, "auto.create.topics.enable"), "false");
    ASSERT_EQ(def.n, 1);
    ASSERT_STREQ(rn_config_set_get(&def, "message.max.bytes"), "2000");
    rn_config_set_free(&per);
    rn_config_set_free(&def);

    rn_broker_t *n1 = broker_shell(1), *n2 = broker_shell(2), *n3 = broker_shell(3);
    /* A topic without its own max.message.bytes follows the broker's message.max.bytes. */
    rn_topic_t *t = rn_topic_new("orders", 6, 1);
    ASSERT_TRUE(t && rn_map_put(&n2->topics, t->name, 6, t));
    ASSERT_TRUE(follow(n1, e.img));
    ASSERT_TRUE(follow(n2, e.img));
    ASSERT_TRUE(follow(n3, e.img));
    ASSERT_FALSE(follow(n2, e.img)); /* nothing new: nothing to do */

    expect_value(n1, "message.max.bytes", "2000", RN_CS_DYNAMIC_DEFAULT_BROKER);
    ASSERT_EQ(n1->cfg.message_max_bytes, 2000);
    expect_value(n2, "message.max.bytes", "3000", RN_CS_DYNAMIC_BROKER);
    ASSERT_EQ(n2->cfg.message_max_bytes, 3000);
    ASSERT_EQ(t->max_message_bytes, 3000);
    ASSERT_FALSE(n2->cfg.auto_create_topics_enable);
    ASSERT_TRUE(n1->cfg.auto_create_topics_enable);
    expect_value(n3, "num.partitions", "7", RN_CS_DYNAMIC_BROKER);
    ASSERT_EQ(n3->cfg.num_partitions, 7);
    expect_value(n1, "num.partitions", "5", RN_CS_STATIC_BROKER);
    ASSERT_EQ(n1->cfg.num_partitions, 5);

    /* Deleting node 2's own value: the default is back in force there. */
    ASSERT_EQ(alter(&e, "2", "message.max.bytes", NULL), RN_OK);
    ASSERT_TRUE(follow(n2, e.img));
    expect_value(n2, "message.max.bytes", "2000", RN_CS_DYNAMIC_DEFAULT_BROKER);
    ASSERT_EQ(t->max_message_bytes, 2000);
    ASSERT_FALSE(follow(n3, e.img)); /* not node 3's: unchanged */
    /* And the default's: the properties file's (here Kafka's default). */
    ASSERT_EQ(alter(&e, "", "message.max.bytes", NULL), RN_OK);
    ASSERT_TRUE(follow(n2, e.img));
    expect_value(n2, "message.max.bytes", "1048588", RN_CS_DEFAULT);
    ASSERT_EQ(n2->cfg.message_max_bytes, 1048588);

    broker_shell_free(n1);
    broker_shell_free(n2);
    broker_shell_free(n3);
    env_free(&e);
}

RN_TEST(a_snapshot_carries_the_broker_configs) {
    static const char *const changes[][3] = {
        {"", "log.retention.ms", "60000"}, {"1", "log.retention.ms", "120000"}, {"1", "num.partitions", "3"}};
    env_t e;
    env_with(&e, 2, changes, 3);
    rn_buf_t s;
    rn_buf_init(&s, 1u << 20);
    rn_meta_image_serialize(e.img, &s);
    ASSERT_EQ(s.err, RN_OK);
    rn_meta_image_t *back = NULL;
    ASSERT_EQ(rn_meta_image_load(&back, NULL, s.data, s.len), RN_OK);
    rn_config_set_t per[2], def[2];
    for (int i = 0; i < 2; i++) {
        rn_config_set_init(&per[i]);
        rn_config_set_init(&def[i]);
        ASSERT_TRUE(rn__image_broker_configs(i ? back : e.img, 1, &per[i], &def[i]));
    }
    ASSERT_EQ(per[1].n, 2);
    ASSERT_TRUE(rn_config_set_equal(&per[0], &per[1]));
    ASSERT_TRUE(rn_config_set_equal(&def[0], &def[1]));
    ASSERT_STREQ(rn_config_set_get(&def[1], "log.retention.ms"), "60000");
    /* A restarted node that loads it has them. */
    rn_broker_t *n1 = broker_shell(1);
    ASSERT_TRUE(follow(n1, back));
    expect_value(n1, "log.retention.ms", "120000", RN_CS_DYNAMIC_BROKER);
    for (int i = 0; i < 2; i++) {
        rn_config_set_free(&per[i]);
        rn_config_set_free(&def[i]);
    }
    broker_shell_free(n1);
    rn_meta_image_free(back);
    rn_buf_free(&s);
    env_free(&e);
}

static rn_err_t validate1(const char *key, const char *value, char *msg, size_t cap) {
    rn_config_set_t cs;
    rn_config_set_init(&cs);
    RN_ASSERT(rn_config_set_put(&cs, key, value));
    msg[0] = 0;
    rn_err_t err = rn_broker_dynamic_configs_validate(&cs, msg, cap);
    rn_config_set_free(&cs);
    return err;
}

RN_TEST(broker_configs_are_validated_as_on_a_single_node) {
    char msg[256];
    ASSERT_EQ(validate1("message.max.bytes", "5000", msg, sizeof(msg)), RN_OK);
    ASSERT_EQ(validate1("no.such.key", "1", msg, sizeof(msg)), RN_ERR_INVALID_CONFIG);
    ASSERT_STREQ(msg, "Unknown broker config name: no.such.key");
    ASSERT_EQ(validate1("log.dirs", "/tmp/x", msg, sizeof(msg)), RN_ERR_INVALID_CONFIG);
    ASSERT_STREQ(msg, "Cannot update these configs dynamically: log.dirs");
    ASSERT_EQ(validate1("message.max.bytes", NULL, msg, sizeof(msg)), RN_ERR_INVALID_CONFIG);
    ASSERT_STREQ(msg, "Null value not supported for config: message.max.bytes");
    ASSERT_EQ(validate1("message.max.bytes", "lots", msg, sizeof(msg)), RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "message.max.bytes") != NULL);
    ASSERT_EQ(validate1("log.level", "loud", msg, sizeof(msg)), RN_ERR_INVALID_CONFIG);
    ASSERT_TRUE(strstr(msg, "log.level") != NULL);
}

RN_TEST(the_controller_takes_a_broker_id_or_the_default) {
    env_t e;
    env_init(&e, NULL, 3);
    ASSERT_EQ(alter(&e, "x1", "message.max.bytes", "1"), RN_ERR_INVALID_REQUEST);
    ASSERT_EQ(alter(&e, "-1", "message.max.bytes", "1"), RN_ERR_INVALID_REQUEST);
    ASSERT_EQ(alter(&e, "0", "message.max.bytes", "1"), RN_OK); /* node.id 0 exists in Kafka */
    ASSERT_EQ(alter(&e, "42", "message.max.bytes", "1"), RN_OK); /* not registered yet: kept for it */
    ASSERT_STREQ(rn_meta_image_config(e.img, RN_META_RESOURCE_BROKER, "42", "message.max.bytes"), "1");
    /* min.insync.replicas as a cluster default is the controller's too: it must parse. */
    ASSERT_EQ(alter(&e, "", "min.insync.replicas", "zero"), RN_ERR_INVALID_CONFIG);
    ASSERT_EQ(alter(&e, "", "min.insync.replicas", "2"), RN_OK);
    env_free(&e);
}

int main(void) { return rn_test_main(); }
