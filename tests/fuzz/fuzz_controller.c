/*
 * fuzz_controller.c — libFuzzer target for the controller's decisions (src/controller/).
 *
 * The input is a program: its first byte sets the Raft entry size the decisions are cut into,
 * then each op is an opcode byte followed by its parameters (bytes past the end read as zero).
 * Ops cover every decision with arbitrary arguments — broker ids, epochs, partition counts and
 * replication factors (negative, huge), manual assignments, ISRs with strangers, duplicates and
 * stale epochs, election types, reassignment targets, config keys and values — the way a broken
 * or hostile peer could send them. Every decision must either fail cleanly (its batch left as
 * it was) or write records that apply without error, and the image must pass
 * rn_meta_image_check after every entry: a decision never crashes, never asserts, never breaks
 * an invariant, whatever it is asked.
 *
 * Seeds: tests/fuzz/corpus/controller/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_controller.h"
#include "rn_logging.h"
#include "rn_meta_image.h"

#define NB 8

typedef struct {
    const uint8_t *p;
    size_t len, pos;
} prog_t;

static uint8_t u8(prog_t *g) { return g->pos < g->len ? g->p[g->pos++] : 0; }
static int8_t i8(prog_t *g) { return (int8_t)u8(g); }

static int64_t offset;
static int64_t epochs[NB];

static void commit(rn_meta_image_t *img, rn_meta_batch_t *b, rn_meta_batch_mark_t before, rn_err_t err) {
    if (err && err != RN_ERR_NEW_LEADER_ELECTED) RN_ASSERT(b->buf.len == before.len && b->count == before.count);
    for (int32_t i = 0; i < rn_meta_batch_entries(b); i++) {
        const uint8_t *p;
        size_t len;
        rn_meta_batch_entry(b, i, &p, &len);
        RN_ASSERT(rn_meta_image_apply_entry(img, p, len, ++offset) == RN_OK);
        RN_ASSERT(rn_meta_image_check(img, NULL, 0) == NULL);
    }
    rn_meta_batch_reset(b);
}

static void ids(prog_t *g, rn_meta_ids_t *l, int max) {
    l->n = u8(g) % (max + 1);
    for (int32_t i = 0; i < l->n; i++) l->ids[i] = i8(g) % (NB + 1); /* -NB..NB: strangers and negatives */
}

static rn_str_t topic_name(prog_t *g, char *buf) {
    snprintf(buf, 8, "t%u", u8(g) % 4);
    return rn_str_from_cstr(buf);
}

static const rn_meta_topic_t *topic_at(const rn_meta_image_t *img, prog_t *g) {
    int32_t n = rn_meta_image_topic_count(img);
    return n ? rn_meta_image_topic_at(img, u8(g) % n) : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rn_log_set_level(RN_LOG_ERROR);
    prog_t g = {data, size, 0};
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    cfg.partitions_per_request_max = 64;
    cfg.min_insync_replicas = 1 + u8(&g) % 3;
    rn_controller_t *ctl = rn_ctl_new(&cfg, 1);
    rn_meta_limits_t lim = {NB, 8, 256, 64};
    rn_meta_image_t *img = rn_meta_image_new(&lim);
    rn_meta_batch_t b;
    rn_meta_batch_init(&b, 1u << 20);
    b.entry_bytes_max = u8(&g) * 4u; /* 0: one entry per decision */
    offset = 0;
    memset(epochs, 0, sizeof(epochs));
    int64_t now = 0;
    char name[8];
    for (int ops = 0; g.pos < g.len && ops < 200; ops++) {
        rn_meta_batch_mark_t before = rn_meta_batch_mark(&b);
        rn_err_t err = RN_OK;
        int32_t id = i8(&g) % NB;
        switch (u8(&g) % 12) {
        case 0: { /* BrokerRegistration */
            rn_meta_reg_t r;
            memset(&r, 0, sizeof(r));
            r.node_id = id;
            r.incarnation[0] = u8(&g);
            r.rack = (u8(&g) & 1) ? RN_STR_LIT("r") : RN_STR_NULL;
            r.nlisteners = u8(&g) % (RN_META_LISTENERS_MAX + 2);
            for (int32_t i = 0; i < r.nlisteners && i < RN_META_LISTENERS_MAX; i++)
                r.listeners[i] = (rn_meta_listener_t){RN_STR_LIT("L"), RN_STR_LIT("h"), 1, 0};
            int64_t prev = (u8(&g) & 1) && id >= 0 ? epochs[id] : -1;
            int64_t e;
            err = rn_ctl_register_broker(ctl, img, &r, prev, now, &b, &e);
            if (!err && id >= 0) epochs[id] = e;
            break;
        }
        case 1: { /* BrokerHeartbeat */
            uint8_t f = u8(&g);
            rn_ctl_heartbeat_t hb = {id, id >= 0 ? epochs[id] + (f & 8 ? 1 : 0) : 0, (f & 4) ? 0 : offset, f & 1,
                                     (f & 2) != 0};
            rn_ctl_heartbeat_reply_t reply;
            err = rn_ctl_heartbeat(ctl, img, &hb, now, &b, &reply);
            break;
        }
        case 2: /* time passes */
            now += (int64_t)u8(&g) * 100;
            rn_ctl_tick(ctl, img, now, &b);
            break;
        case 3: { /* CreateTopics */
            rn_meta_ids_t as[4];
            int32_t nas = u8(&g) % 5;
            for (int32_t i = 0; i < nas; i++) ids(&g, &as[i], 6);
            rn_ctl_kv_t kv = {RN_STR_LIT("min.insync.replicas"), (u8(&g) & 1) ? RN_STR_LIT("2") : RN_STR_LIT("0")};
            rn_ctl_create_topic_t req = {.name = topic_name(&g, name), .num_partitions = i8(&g),
                                         .replication_factor = i8(&g), .nassignments = nas, .assignments = as,
                                         .nconfigs = u8(&g) % 2, .configs = &kv, .validate_only = u8(&g) % 4 == 0};
            rn_ctl_create_topic_result_t res;
            err = rn_ctl_create_topic(ctl, img, &req, &b, &res);
            break;
        }
        case 4: { /* CreatePartitions */
            rn_meta_ids_t as[4];
            int32_t nas = u8(&g) % 3;
            for (int32_t i = 0; i < nas; i++) ids(&g, &as[i], 4);
            err = rn_ctl_create_partitions(ctl, img, topic_name(&g, name), i8(&g), nas, as, false, &b);
            break;
        }
        case 5: { /* DeleteTopics, by name or by id */
            const rn_meta_topic_t *t = topic_at(img, &g);
            err = rn_ctl_delete_topic(ctl, img, (u8(&g) & 1) ? topic_name(&g, name) : RN_STR_NULL,
                                      t ? t->id : (const uint8_t *)"0123456789abcdef", &b);
            break;
        }
        case 6: { /* AlterPartition, close to right or not */
            const rn_meta_topic_t *t = topic_at(img, &g);
            if (!t) break;
            int32_t p = u8(&g) % (t->npartitions + 1);
            rn_meta_part_rec_t cur;
            if (p < t->npartitions)
                rn_meta_partition_get(t, p, &cur);
            else
                memset(&cur, 0, sizeof(cur));
            int32_t leader = (u8(&g) & 1) ? cur.leader : id;
            rn_ctl_alter_partition_t req = {.broker_id = leader,
                                            .broker_epoch = leader >= 0 && leader < NB ? epochs[leader] : 0,
                                            .partition = p,
                                            .leader_epoch = cur.leader_epoch + i8(&g) % 2,
                                            .partition_epoch = cur.partition_epoch + i8(&g) % 2,
                                            .leader_recovery_state = i8(&g) % 3};
            memcpy(req.topic_id, t->id, 16);
            ids(&g, &req.new_isr, 6);
            if (u8(&g) & 1) rn_meta_ids_add(&req.new_isr, leader);
            for (int i = 0; i < RN_META_REPLICAS_MAX; i++) req.new_isr_epochs[i] = -1;
            rn_meta_part_rec_t res;
            err = rn_ctl_alter_partition(ctl, img, &req, &b, &res);
            break;
        }
        case 7: { /* ElectLeaders */
            const rn_meta_topic_t *t = topic_at(img, &g);
            err = rn_ctl_elect_leader(ctl, img, i8(&g) % 3, t ? rn_str_from_cstr(t->name) : RN_STR_LIT("x"),
                                      i8(&g) % 4, &b);
            break;
        }
        case 8: { /* AlterPartitionReassignments */
            const rn_meta_topic_t *t = topic_at(img, &g);
            rn_meta_ids_t target;
            ids(&g, &target, 6);
            err = rn_ctl_reassign(ctl, img, t ? rn_str_from_cstr(t->name) : RN_STR_LIT("x"), i8(&g) % 4,
                                  (u8(&g) & 3) ? &target : NULL, &b);
            break;
        }
        case 9: { /* AlterConfigs */
            static const char *keys[] = {"min.insync.replicas", "unclean.leader.election.enable", "retention.ms"};
            static const char *vals[] = {"1", "2", "3", "0", "x", "true", "false", NULL};
            const char *v = vals[u8(&g) % 8];
            uint8_t kind = u8(&g) % 4;
            rn_str_t res = kind == 0 ? RN_STR_LIT("") : kind == 1 ? RN_STR_LIT("3") : topic_name(&g, name);
            err = rn_ctl_alter_config(ctl, img, kind < 2 ? RN_META_RESOURCE_BROKER : (int8_t)(kind == 2 ? 2 : 7), res,
                                      rn_str_from_cstr(keys[u8(&g) % 3]), v ? rn_str_from_cstr(v) : RN_STR_NULL, &b);
            break;
        }
        case 10:
            rn_ctl_rebalance_leaders(ctl, img, u8(&g) % 8, &b);
            break;
        case 11: {
            int64_t first;
            int32_t count;
            err = rn_ctl_alloc_producer_ids(ctl, img, id, id >= 0 ? epochs[id] : 0, &b, &first, &count);
            break;
        }
        }
        commit(img, &b, before, err);
    }
    rn_meta_batch_free(&b);
    rn_meta_image_free(img);
    rn_ctl_free(ctl);
    return 0;
}
