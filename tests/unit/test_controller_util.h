/*
 * test_controller_util.h — a small cluster model for controller tests: an image, a controller,
 * the batch a decision writes, the log offset and the clock. env_commit() plays Raft: it applies
 * the decision's records as the next entry, as the broker wiring will.
 */
#ifndef TEST_CONTROLLER_UTIL_H
#define TEST_CONTROLLER_UTIL_H

#include <stdio.h>
#include <string.h>

#include "rn_controller.h"
#include "rn_meta_image.h"
#include "rn_meta_records.h"
#include "rn_test.h"

typedef struct {
    rn_meta_image_t *img;
    rn_controller_t *ctl;
    rn_meta_batch_t b;
    int64_t offset;
    int64_t now;
    int64_t epochs[64]; /* broker epoch by id */
    rn_buf_t *log;      /* when set, every committed entry: u32 length, bytes */
    void (*on_entry)(void *arg); /* when set, called after each entry applies */
    void *on_entry_arg;
} env_t;

static inline void env_init(env_t *e, const rn_ctl_config_t *cfg, uint64_t seed) {
    memset(e, 0, sizeof(*e));
    e->img = rn_meta_image_new(NULL);
    e->ctl = rn_ctl_new(cfg, seed);
    rn_meta_batch_init(&e->b, 64u << 20);
    e->now = 1000000;
    rn_ctl_activate(e->ctl, e->img, e->now);
}

static inline void env_free(env_t *e) {
    rn_meta_batch_free(&e->b);
    rn_ctl_free(e->ctl);
    rn_meta_image_free(e->img);
}

/* Apply what the last decision(s) wrote, entry by entry (as Raft would commit them); returns
 * the first apply error. */
static inline rn_err_t env_commit(env_t *e) {
    rn_err_t first = RN_OK;
    for (int32_t i = 0; i < rn_meta_batch_entries(&e->b); i++) {
        const uint8_t *p;
        size_t len;
        rn_meta_batch_entry(&e->b, i, &p, &len);
        rn_err_t err = rn_meta_image_apply_entry(e->img, p, len, ++e->offset);
        if (err && !first) first = err;
        if (e->log) {
            rn_buf_put_u32(e->log, (uint32_t)len);
            rn_buf_put(e->log, p, len);
        }
        if (e->on_entry) e->on_entry(e->on_entry_arg);
    }
    rn_meta_batch_reset(&e->b);
    return first;
}

static inline void env_reg_req(rn_meta_reg_t *r, int32_t id, const char *rack, uint8_t incarnation) {
    memset(r, 0, sizeof(*r));
    r->node_id = id;
    memset(r->incarnation, incarnation, 16);
    r->incarnation[0] = (uint8_t)id;
    r->rack = rack ? rn_str_from_cstr(rack) : RN_STR_NULL;
    r->nlisteners = 1;
    r->listeners[0] = (rn_meta_listener_t){RN_STR_LIT("PLAINTEXT"), RN_STR_LIT("127.0.0.1"), (uint16_t)(9092 + id), 0};
}

static inline rn_err_t env_heartbeat(env_t *e, int32_t id, bool want_fence, bool want_shut_down,
                                     rn_ctl_heartbeat_reply_t *reply) {
    rn_ctl_heartbeat_t hb = {id, e->epochs[id], e->offset, want_fence, want_shut_down};
    rn_ctl_heartbeat_reply_t tmp;
    rn_err_t err = rn_ctl_heartbeat(e->ctl, e->img, &hb, e->now, &e->b, reply ? reply : &tmp);
    if (err == RN_OK) err = env_commit(e);
    return err;
}

/* Register broker `id` (a new incarnation) and unfence it with a caught-up heartbeat. */
static inline rn_err_t env_add_broker(env_t *e, int32_t id, const char *rack, uint8_t incarnation) {
    rn_meta_reg_t r;
    env_reg_req(&r, id, rack, incarnation);
    int64_t prev = e->epochs[id] ? e->epochs[id] : -1;
    rn_err_t err = rn_ctl_register_broker(e->ctl, e->img, &r, prev, e->now, &e->b, &e->epochs[id]);
    if (err) return err;
    if ((err = env_commit(e))) return err;
    return env_heartbeat(e, id, false, false, NULL);
}

static inline rn_err_t env_create(env_t *e, const char *name, int32_t partitions, int16_t rf) {
    rn_ctl_create_topic_t req = {.name = rn_str_from_cstr(name), .num_partitions = partitions, .replication_factor = rf};
    rn_ctl_create_topic_result_t res;
    rn_err_t err = rn_ctl_create_topic(e->ctl, e->img, &req, &e->b, &res);
    if (err == RN_OK) err = env_commit(e);
    return err;
}

static inline void env_part(env_t *e, const char *topic, int32_t p, rn_meta_part_rec_t *out) {
    const rn_meta_topic_t *t = rn_meta_image_topic_by_name(e->img, rn_str_from_cstr(topic));
    memset(out, 0, sizeof(*out));
    if (t && p < t->npartitions) rn_meta_partition_get(t, p, out);
}

static inline void env_ids(rn_meta_ids_t *l, int n, const int32_t *v) {
    l->n = n;
    for (int i = 0; i < n; i++) l->ids[i] = v[i];
}

#define IDS(l, ...)                                                   \
    do {                                                              \
        const int32_t ids_v_[] = {__VA_ARGS__};                       \
        env_ids((l), (int)(sizeof(ids_v_) / sizeof(ids_v_[0])), ids_v_); \
    } while (0)

/* The list holds exactly these ids, in any order. */
#define ASSERT_SET(l, ...)                                                                   \
    do {                                                                                     \
        rn_meta_ids_t want_;                                                                 \
        IDS(&want_, __VA_ARGS__);                                                            \
        if (!rn_meta_ids_same_set(&(l), &want_)) {                                           \
            char got_[256] = "";                                                             \
            for (int i_ = 0; i_ < (l).n; i_++)                                               \
                snprintf(got_ + strlen(got_), sizeof(got_) - strlen(got_), " %d", (l).ids[i_]); \
            RN_TEST_FAIL_("%s is {%s } not {%s}", #l, got_, #__VA_ARGS__);                   \
        }                                                                                    \
    } while (0)
#define ASSERT_EMPTY(l) ASSERT_EQ((l).n, 0)

#endif
