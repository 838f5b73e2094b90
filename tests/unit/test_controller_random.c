/*
 * test_controller_random.c — seeded random sequences of cluster events (heartbeats, silences and
 * session expiry, fencing, restarts clean and unclean, controlled shutdowns, topic creation and
 * deletion, new partitions, AlterPartition shrinks and expansions, elections, reassignments,
 * config changes, producer id blocks), every decision's records applied as the next log entry, and after every
 * step the invariants:
 *   - every partition passes rn_meta_partition_check (leader ∈ ISR or -1, ISR/ELR ⊆ replicas,
 *     ISR ∩ ELR = ∅, …) and names registered brokers only;
 *   - leader epoch and partition epoch never go back; any change of a partition raises its
 *     partition epoch; a change of leader raises its leader epoch;
 *   - no partition is led by a fenced or shutting-down broker;
 *   - a leaderless partition has no active ISR member, nor (ISR empty) an active ELR member, nor
 *     (unclean election enabled for its topic) any active replica;
 *   - the ELR is empty while the ISR has at least min.insync.replicas members (the topic's, else
 *     the cluster default, both changed at random along the way);
 *   - the data model below: every leader chosen cleanly, every ISR and ELR member holds every
 *     committed record;
 * Most seeds cut each decision into small Raft entries (entry_bytes_max 100..800 bytes); the
 * safety invariants are checked after every entry, the rest after every decision;
 * and every few steps a snapshot round trip; at the end, replaying the log on a fresh image
 * gives the same snapshot bytes. A failing seed prints itself: RN_SEED=<n> replays just it;
 * RN_SEEDS=<n> runs seeds 1..n (default 60).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_logging.h"
#include "test_controller_util.h"

#define NBROKERS 5
#define STEPS 400
#define SEEDS 60

typedef struct {
    uint8_t id[16];
    int32_t partition;
    rn_meta_part_rec_t rec; /* as it was after the last step */
    rn_meta_ids_t holders;  /* model: replicas holding every committed record */
} seen_t;

static uint64_t rnd_state;
static int64_t type_counts[RN_META_NOOP + 1]; /* records applied, by type: shows what the runs exercised */
static int64_t leader_changes;
static uint32_t rnd(uint32_t n) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return n ? (uint32_t)(rnd_state % n) : 0;
}

static bool part_same(const rn_meta_part_rec_t *a, const rn_meta_part_rec_t *b) {
    return rn_meta_ids_equal(&a->replicas, &b->replicas) && rn_meta_ids_equal(&a->isr, &b->isr) &&
           rn_meta_ids_equal(&a->elr, &b->elr) && rn_meta_ids_equal(&a->adding, &b->adding) &&
           rn_meta_ids_equal(&a->removing, &b->removing) && a->leader == b->leader &&
           a->leader_recovery_state == b->leader_recovery_state;
}

typedef struct {
    seen_t *v;
    int n, cap;
} seen_set_t;

/*
 * The data model. A record commits (the high watermark passes it) only while the partition has a
 * leader and at least min.insync.replicas in its ISR; then exactly the ISR holds it. A follower
 * the leader adds to the ISR has caught up (holds everything committed); a broker restarting
 * uncleanly holds nothing for sure. Whoever the controller makes leader cleanly, and everyone
 * in the ISR and the ELR, must hold every committed record; only an unclean election (allowed
 * by config or asked for) may choose someone else, and then the committed history restarts
 * from what the new leader has.
 */
static seen_set_t model;
static bool step_unclean_elect; /* this step asked for (or allowed) an unclean election */
static int32_t step_lost_data;   /* this step restarted this broker uncleanly (0: none) */

/* After every entry of a decision: the safety invariants (the first failure is kept). */
typedef struct {
    env_t *e;
    const rn_ctl_config_t *cfg;
} entry_check_t;
static const char *entry_failure;
static char entry_where[200];
static const char *check(env_t *e, seen_set_t *s, int32_t dflt_min_isr, bool dflt_unclean, bool full, bool commit,
                         char *where, size_t wlen);
static void after_entry(void *arg) {
    entry_check_t *c = arg;
    const char *why = check(c->e, &model, c->cfg->min_insync_replicas, c->cfg->unclean_leader_election_enable, false,
                            false, entry_where, sizeof(entry_where));
    if (why && !entry_failure) entry_failure = why;
}

static void model_caught_up(const uint8_t topic_id[16], int32_t p, int32_t broker);
static void model_lost_data(int32_t broker) {
    for (int i = 0; i < model.n; i++) rn_meta_ids_remove(&model.v[i].holders, broker);
}

static seen_t *seen_find(seen_set_t *s, const uint8_t id[16], int32_t p) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i].partition == p && memcmp(s->v[i].id, id, 16) == 0) return &s->v[i];
    return NULL;
}

/* The min.insync.replicas in force for a topic: its own, the cluster default, the controller's. */
static int32_t topic_min_isr(env_t *e, const char *topic, int32_t dflt) {
    const char *v = rn_meta_image_config(e->img, RN_META_RESOURCE_TOPIC, topic, "min.insync.replicas");
    if (!v) v = rn_meta_image_config(e->img, RN_META_RESOURCE_BROKER, "", "min.insync.replicas");
    return v ? atoi(v) : dflt;
}

static bool topic_unclean(env_t *e, const char *topic, bool dflt) {
    const char *v = rn_meta_image_config(e->img, RN_META_RESOURCE_TOPIC, topic, "unclean.leader.election.enable");
    if (!v) v = rn_meta_image_config(e->img, RN_META_RESOURCE_BROKER, "", "unclean.leader.election.enable");
    return v ? strcmp(v, "true") == 0 : dflt;
}

/* Check every invariant; update the record of what each partition looked like. */
/* full: at the end of a decision (also liveness, and a record may commit); else after one of its
 * entries (safety only). */
static const char *check(env_t *e, seen_set_t *s, int32_t dflt_min_isr, bool dflt_unclean, bool full, bool commit,
                         char *where, size_t wlen) {
    const char *why = rn_meta_image_check(e->img, where, wlen);
    if (why) return why;
    for (int32_t ti = 0; ti < rn_meta_image_topic_count(e->img); ti++) {
        const rn_meta_topic_t *t = rn_meta_image_topic_at(e->img, ti);
        int32_t min_isr = topic_min_isr(e, t->name, dflt_min_isr);
        bool unclean = topic_unclean(e, t->name, dflt_unclean);
        for (int32_t p = 0; p < t->npartitions; p++) {
            rn_meta_part_rec_t r;
            rn_meta_partition_get(t, p, &r);
            snprintf(where, wlen, "%s/%d", t->name, p);
            if (r.leader >= 0 && !rn_meta_image_broker_active(e->img, r.leader))
                return "led by a fenced or shutting-down broker";
            if (full && r.leader < 0) {
                for (int32_t i = 0; i < r.isr.n; i++)
                    if (rn_meta_image_broker_active(e->img, r.isr.ids[i])) return "leaderless with an active ISR member";
                for (int32_t i = 0; r.isr.n == 0 && i < r.elr.n; i++)
                    if (rn_meta_image_broker_active(e->img, r.elr.ids[i])) return "leaderless with an active ELR member";
                if (r.replicas.n == 1 && rn_meta_image_broker_active(e->img, r.replicas.ids[0]))
                    return "leaderless with its lone replica active";
                for (int32_t i = 0; unclean && i < r.replicas.n; i++)
                    if (rn_meta_image_broker_active(e->img, r.replicas.ids[i]))
                        return "leaderless with an active replica and unclean election enabled";
            }
            if (full && r.isr.n >= min_isr && r.elr.n > 0) return "ELR kept while the ISR is at min.insync.replicas";
            seen_t *old = seen_find(s, t->id, p);
            if (old && r.leader >= 0 && !rn_meta_ids_contains(&old->holders, r.leader)) {
                bool lone = r.replicas.n == 1; /* its only copy leads again with what it kept */
                if (!lone && (r.leader_recovery_state != RN_META_LRS_RECOVERING || !(unclean || step_unclean_elect)))
                    return "a leader that may lack committed records, without an allowed unclean election";
                old->holders.n = 0; /* unclean: history restarts from the new leader */
                rn_meta_ids_add(&old->holders, r.leader);
            }
            for (int32_t i = 0; old && i < r.isr.n; i++)
                if (!rn_meta_ids_contains(&old->holders, r.isr.ids[i])) return "an ISR member may lack committed records";
            for (int32_t i = 0; old && i < r.elr.n; i++)
                if (!rn_meta_ids_contains(&old->holders, r.elr.ids[i])) return "an ELR member may lack committed records";
            if (old) {
                if (r.leader_epoch < old->rec.leader_epoch) return "leader epoch went back";
                if (r.partition_epoch < old->rec.partition_epoch) return "partition epoch went back";
                if (!part_same(&r, &old->rec) && r.partition_epoch == old->rec.partition_epoch)
                    return "partition changed without a new partition epoch";
                if (r.leader != old->rec.leader && r.leader_epoch == old->rec.leader_epoch)
                    return "leader changed without a new leader epoch";
                old->rec = r;
            } else {
                if (s->n == s->cap) {
                    s->cap = s->cap ? s->cap * 2 : 64;
                    s->v = realloc(s->v, (size_t)s->cap * sizeof(*s->v));
                }
                seen_t *n = &s->v[s->n++];
                memset(n, 0, sizeof(*n));
                memcpy(n->id, t->id, 16);
                n->partition = p;
                n->rec = r;
                n->holders = r.isr; /* a new partition: empty logs everywhere */
                old = n;
            }
            if (full && commit && r.leader >= 0 && r.isr.n >= min_isr) old->holders = r.isr; /* a record commits */
        }
    }
    return NULL;
}

static void model_caught_up(const uint8_t topic_id[16], int32_t p, int32_t broker) {
    seen_t *m = seen_find(&model, topic_id, p);
    if (m) rn_meta_ids_add(&m->holders, broker);
}

static const rn_meta_topic_t *random_topic(env_t *e) {
    int32_t n = rn_meta_image_topic_count(e->img);
    return n ? rn_meta_image_topic_at(e->img, (int32_t)rnd((uint32_t)n)) : NULL;
}

/* One random event; its records are committed by the caller. */
static void step(env_t *e, int *topic_seq, uint8_t *incarnations) {
    int32_t id = 1 + (int32_t)rnd(NBROKERS);
    const rn_meta_broker_t *b = rn_meta_image_broker(e->img, id);
    rn_ctl_heartbeat_reply_t reply;
    switch (rnd(15)) {
    case 0:
    case 1:
    case 2: { /* a heartbeat; rarely asking to be fenced or to shut down */
        if (!b) break;
        uint32_t r = rnd(20);
        rn_ctl_heartbeat_t hb = {id, e->epochs[id], e->offset, r == 0, r == 1};
        rn_ctl_heartbeat(e->ctl, e->img, &hb, e->now, &e->b, &reply);
        break;
    }
    case 3: { /* time passes: everyone but one heartbeats, then the session check */
        e->now += 1000 + rnd(6000);
        int32_t silent = 1 + (int32_t)rnd(NBROKERS);
        for (int32_t i = 1; i <= NBROKERS; i++) {
            if (i == silent || !rn_meta_image_broker(e->img, i)) continue;
            rn_ctl_heartbeat_t hb = {i, e->epochs[i], e->offset, false, false};
            if (rn_ctl_heartbeat(e->ctl, e->img, &hb, e->now, &e->b, &reply) == RN_OK) {
                RN_ASSERT(env_commit(e) == RN_OK);
            }
        }
        rn_ctl_tick(e->ctl, e->img, e->now, &e->b);
        break;
    }
    case 4: { /* a (re)start: a new incarnation, clean or not */
        rn_meta_reg_t r;
        env_reg_req(&r, id, (id % 2) ? "odd" : "even", ++incarnations[id]);
        int64_t prev = b && rnd(2) ? b->epoch : -1;
        int64_t epoch;
        if (b && !b->fenced) e->now += 9001; /* its old session has to lapse first */
        if (rn_ctl_register_broker(e->ctl, e->img, &r, prev, e->now, &e->b, &epoch) == RN_OK) {
            if (b && prev != b->epoch) step_lost_data = id; /* an unclean shutdown loses unsynced records */
            e->epochs[id] = epoch;
        }
        break;
    }
    case 5: { /* create a topic */
        char name[32];
        snprintf(name, sizeof(name), "t%d", (*topic_seq)++);
        rn_ctl_create_topic_t req = {.name = rn_str_from_cstr(name), .num_partitions = 1 + (int32_t)rnd(4),
                                     .replication_factor = (int16_t)(1 + rnd(3))};
        rn_ctl_create_topic_result_t res;
        rn_ctl_create_topic(e->ctl, e->img, &req, &e->b, &res);
        break;
    }
    case 6: { /* delete or grow a topic */
        const rn_meta_topic_t *t = random_topic(e);
        if (!t) break;
        if (rnd(3) == 0)
            rn_ctl_delete_topic(e->ctl, e->img, rn_str_from_cstr(t->name), NULL, &e->b);
        else
            rn_ctl_create_partitions(e->ctl, e->img, rn_str_from_cstr(t->name), t->npartitions + 1, 0, NULL, false,
                                     &e->b);
        break;
    }
    case 7:
    case 8:
    case 9: { /* a leader shrinks or expands its ISR */
        const rn_meta_topic_t *t = random_topic(e);
        if (!t) break;
        int32_t p = (int32_t)rnd((uint32_t)t->npartitions);
        rn_meta_part_rec_t cur;
        rn_meta_partition_get(t, p, &cur);
        if (cur.leader < 0) break;
        rn_ctl_alter_partition_t req = {.broker_id = cur.leader, .broker_epoch = e->epochs[cur.leader],
                                        .partition = p, .leader_epoch = cur.leader_epoch,
                                        .partition_epoch = cur.partition_epoch, .new_isr = cur.isr};
        memcpy(req.topic_id, t->id, 16);
        for (int i = 0; i < RN_META_REPLICAS_MAX; i++) req.new_isr_epochs[i] = -1;
        int32_t r = cur.replicas.ids[rnd((uint32_t)cur.replicas.n)];
        if (r == cur.leader) break;
        if (rn_meta_ids_contains(&cur.isr, r))
            rn_meta_ids_remove(&req.new_isr, r);
        else
            rn_meta_ids_add(&req.new_isr, r);
        if (rnd(8) == 0) req.partition_epoch--; /* now and then a stale one */
        rn_meta_part_rec_t res;
        rn_err_t err = rn_ctl_alter_partition(e->ctl, e->img, &req, &e->b, &res);
        if ((err == RN_OK || err == RN_ERR_NEW_LEADER_ELECTED) && rn_meta_ids_contains(&req.new_isr, r))
            model_caught_up(t->id, p, r); /* the leader only adds a follower that has caught up */
        break;
    }
    case 10: { /* ElectLeaders, or the periodic preferred-leader rebalance */
        const rn_meta_topic_t *t = random_topic(e);
        if (!t) break;
        if (rnd(3) == 0) {
            rn_ctl_rebalance_leaders(e->ctl, e->img, 1 + (int32_t)rnd(4), &e->b);
            break;
        }
        step_unclean_elect = rnd(4) == 0;
        rn_ctl_elect_leader(e->ctl, e->img, (int8_t)(step_unclean_elect ? RN_CTL_ELECT_UNCLEAN : RN_CTL_ELECT_PREFERRED),
                            rn_str_from_cstr(t->name), (int32_t)rnd((uint32_t)t->npartitions), &e->b);
        break;
    }
    case 11:
    case 12: { /* reassign (or cancel) */
        const rn_meta_topic_t *t = random_topic(e);
        if (!t) break;
        rn_meta_ids_t target = {0, {0}};
        int32_t n = 1 + (int32_t)rnd(3);
        while (target.n < n) rn_meta_ids_add(&target, 1 + (int32_t)rnd(NBROKERS));
        rn_ctl_reassign(e->ctl, e->img, rn_str_from_cstr(t->name), (int32_t)rnd((uint32_t)t->npartitions),
                        rnd(4) == 0 ? NULL : &target, &e->b);
        break;
    }
    case 14: { /* min.insync.replicas of a topic or the cluster, or a topic's unclean election */
        const rn_meta_topic_t *t = random_topic(e);
        char v[8];
        snprintf(v, sizeof(v), "%u", 1 + rnd(3));
        uint32_t what = rnd(5);
        bool enable = rnd(3) == 0;
        if (what == 4 || what == 1) step_unclean_elect = enable; /* it allows the elections it triggers */
        if (what == 4)
            rn_ctl_alter_config(e->ctl, e->img, RN_META_RESOURCE_BROKER, RN_STR_LIT(""),
                                RN_STR_LIT("unclean.leader.election.enable"),
                                enable ? RN_STR_LIT("true") : RN_STR_LIT("false"), &e->b);
        else if (what == 0)
            rn_ctl_alter_config(e->ctl, e->img, RN_META_RESOURCE_BROKER, RN_STR_LIT(""), RN_STR_LIT("min.insync.replicas"),
                                rn_str_from_cstr(v), &e->b);
        else if (t && what == 1)
            rn_ctl_alter_config(e->ctl, e->img, RN_META_RESOURCE_TOPIC, rn_str_from_cstr(t->name),
                                RN_STR_LIT("unclean.leader.election.enable"),
                                enable ? RN_STR_LIT("true") : RN_STR_LIT("false"), &e->b);
        else if (t)
            rn_ctl_alter_config(e->ctl, e->img, RN_META_RESOURCE_TOPIC, rn_str_from_cstr(t->name),
                                RN_STR_LIT("min.insync.replicas"), rnd(4) ? rn_str_from_cstr(v) : RN_STR_NULL, &e->b);
        break;
    }
    case 13: {
        int64_t first;
        int32_t count;
        if (b) rn_ctl_alloc_producer_ids(e->ctl, e->img, id, e->epochs[id], &e->b, &first, &count);
        break;
    }
    }
}

static bool run_seed(uint64_t seed, int32_t *steps_done) {
    rnd_state = seed * 0x9E3779B97F4A7C15ull + 1;
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    cfg.min_insync_replicas = 1 + (int32_t)rnd(3);
    cfg.unclean_leader_election_enable = rnd(4) == 0;
    env_t e;
    env_init(&e, &cfg, seed);
    rn_buf_t log; /* every entry, for the replay at the end */
    rn_buf_init(&log, 64u << 20);
    e.log = &log;
    uint8_t incarnations[NBROKERS + 1] = {0};
    /* Most seeds cut decisions into small Raft entries: invariants must hold between them too. */
    e.b.entry_bytes_max = rnd(3) == 0 ? 0 : 100 + rnd(700);
    entry_check_t ec = {&e, &cfg};
    entry_failure = NULL;
    e.on_entry = after_entry;
    e.on_entry_arg = &ec;
    for (int32_t i = 1; i <= NBROKERS; i++) RN_ASSERT(env_add_broker(&e, i, (i % 2) ? "odd" : "even", ++incarnations[i]) == RN_OK);
    memset(&model, 0, sizeof(model));
    int topic_seq = 0;
    bool ok = true;
    char where[300];
    for (int32_t s = 0; s < STEPS && ok; s++) {
        step_unclean_elect = false;
        step_lost_data = 0;
        step(&e, &topic_seq, incarnations);
        rn_err_t err = env_commit(&e);
        if (err) {
            fprintf(stderr, "seed %llu step %d: a decision's records did not apply: %s\n", (unsigned long long)seed, s,
                    rn_err_name(err));
            ok = false;
            break;
        }
        /* The restarted broker's loss counts once its registration has gone through (until then
         * the metadata still shows the incarnation that had the records). */
        if (step_lost_data) model_lost_data(step_lost_data);
        const char *why = entry_failure;
        if (!why) why = check(&e, &model, cfg.min_insync_replicas, cfg.unclean_leader_election_enable, true, rnd(2) == 0,
                              where, sizeof(where));
        else
            snprintf(where, sizeof(where), "%s, between two entries of one decision", entry_where);
        if (why) {
            fprintf(stderr, "seed %llu step %d: %s (%s)\n", (unsigned long long)seed, s, why, where);
            ok = false;
        }
        if (ok && s % 50 == 49) {
            rn_buf_t a, b2;
            rn_buf_init(&a, 1u << 24);
            rn_buf_init(&b2, 1u << 24);
            rn_meta_image_serialize(e.img, &a);
            rn_meta_image_t *back = NULL;
            ok = a.err == RN_OK && rn_meta_image_load(&back, NULL, a.data, a.len) == RN_OK;
            if (ok) rn_meta_image_serialize(back, &b2);
            ok = ok && a.len == b2.len && memcmp(a.data, b2.data, a.len) == 0;
            if (!ok) fprintf(stderr, "seed %llu step %d: snapshot round trip differs\n", (unsigned long long)seed, s);
            rn_meta_image_free(back);
            rn_buf_free(&a);
            rn_buf_free(&b2);
        }
        *steps_done += 1;
    }
    /* Replay: the log alone gives the same image, byte for byte. */
    if (ok) {
        rn_meta_image_t *replay = rn_meta_image_new(NULL);
        int64_t offset = 0;
        for (size_t pos = 0; ok && pos + 4 <= log.len;) {
            uint32_t n = rn_load_be32(log.data + pos);
            ok = rn_meta_image_apply_entry(replay, log.data + pos + 4, n, ++offset) == RN_OK;
            rn_meta_iter_t it;
            rn_meta_record_t *rec = malloc(sizeof(*rec));
            for (rn_meta_iter_init(&it, log.data + pos + 4, n); rn_meta_iter_next(&it, rec);) {
                type_counts[rec->type]++;
                if (rec->type == RN_META_PARTITION_CHANGE && (rec->change.fields & RN_META_PC_LEADER)) leader_changes++;
            }
            free(rec);
            pos += 4 + n;
        }
        rn_buf_t a, b2;
        rn_buf_init(&a, 1u << 24);
        rn_buf_init(&b2, 1u << 24);
        rn_meta_image_serialize(e.img, &a);
        rn_meta_image_serialize(replay, &b2);
        ok = ok && log.err == RN_OK && a.len == b2.len && memcmp(a.data, b2.data, a.len) == 0;
        if (!ok) fprintf(stderr, "seed %llu: replaying the log gives another image\n", (unsigned long long)seed);
        rn_buf_free(&a);
        rn_buf_free(&b2);
        rn_meta_image_free(replay);
    }
    free(model.v);
    model.v = NULL;
    rn_buf_free(&log);
    env_free(&e);
    return ok;
}

RN_TEST(random_event_sequences_keep_the_invariants) {
    rn_log_set_level(RN_LOG_ERROR);
    const char *only = getenv("RN_SEED");
    int32_t steps = 0;
    const char *count = getenv("RN_SEEDS"); /* a longer soak: RN_SEEDS=5000 */
    uint64_t first = only ? strtoull(only, NULL, 10) : 1;
    uint64_t last = only ? first : (count ? strtoull(count, NULL, 10) : SEEDS);
    for (uint64_t seed = first; seed <= last; seed++)
        if (!run_seed(seed, &steps)) RN_TEST_FAIL_("seed %llu failed (RN_SEED=%llu to replay)", (unsigned long long)seed, (unsigned long long)seed);
    printf("  %d steps over %llu seeds; records applied:", steps, (unsigned long long)(last - first + 1));
    for (int t = 1; t <= RN_META_NOOP; t++)
        if (type_counts[t]) printf(" %s %lld", rn_meta_type_name((uint8_t)t), (long long)type_counts[t]);
    printf("; leader changes %lld\n", (long long)leader_changes);
    /* The runs must have exercised the interesting paths, or the invariants proved little. */
    ASSERT_GT(type_counts[RN_META_FENCE_BROKER], 0);
    ASSERT_GT(type_counts[RN_META_BROKER_SHUTDOWN], 0);
    ASSERT_GT(type_counts[RN_META_REMOVE_TOPIC], 0);
    ASSERT_GT(type_counts[RN_META_CONFIG], 0);
    ASSERT_GT(leader_changes, 0);
}

int main(void) { return rn_test_main(); }
