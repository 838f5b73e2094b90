/*
 * rn_coordinator.c — this broker's group coordinator: every group, their
 * timers, and their durable state in __consumer_offsets.
 *
 * Placement. A group lives in partition abs(hash(group id)) % n of
 * __consumer_offsets (Kafka's formula, rn_group_partition_for), and its
 * coordinator is that partition's leader (a lone node leads them all).
 *
 * Threads and locks. Requests arrive on the network loops; they take
 * `c->lock`, run the group's state machine (rn_group_state.c) and release it.
 * A JoinGroup or SyncGroup that must wait is parked on its own loop (an
 * rn_wait_t, so broker shutdown completes it) and attached to its member;
 * whoever completes it later — another loop's request or the timer thread —
 * encodes the answer and hands it to the request's loop with rn_loop_post
 * (rn_h_group.c). Timers: one thread here sleeps on a condition variable
 * (CLOCK_MONOTONIC) until the earliest group deadline in a min-heap (each
 * group is in the heap once, keyed by rn_group_next_deadline) or the next
 * offset-expiry pass, runs rn_group_tick for every due group, and sleeps
 * again. A request that makes a deadline earlier than the thread's wake-up
 * time signals it; heartbeats only push deadlines later, so they never do.
 *
 * Durability. Offset commits, DeleteGroups and OffsetDelete append their
 * records under the lock and answer once the high watermark covers the
 * append (docs/internals/replication.md). Group metadata (members,
 * assignments) is appended without waiting: losing the newest one in a crash
 * only makes the members rejoin (a SyncGroup answer still waits for it).
 *
 * Loading. This node coordinates the partitions of __consumer_offsets it
 * leads. After each metadata image the follow thread sets `owned.want`
 * (rn_group_coordinator_follow); the timer thread unloads a partition no
 * longer led at the epoch it was loaded at (its groups leave memory, parked
 * joins and syncs get NOT_COORDINATOR) and replays one newly led, under the
 * lock; requests meanwhile get COORDINATOR_LOAD_IN_PROGRESS or
 * NOT_COORDINATOR (rn__coord_owns). The replay reads the partition from its
 * log start, applying records in offset order, the newest record of a key
 * winning and tombstones deleting:
 *
 *   record                          effect
 *   offset key + value              group created if missing (Empty), offset set
 *   offset key + tombstone          offset deleted
 *   group key + value               members/generation/assignments restored:
 *                                   Stable with members, Empty without
 *   group key + tombstone           membership forgotten; group dropped unless
 *                                   it still has offsets
 *   offset key + value in a         pending for that producer id (a transactional
 *   transactional batch             offset commit, TxnOffsetCommit)
 *   COMMIT marker of a producer     its pending offsets in this partition applied
 *   ABORT marker of a producer      its pending offsets in this partition dropped
 *   other key versions              skipped
 *   unparsable key or value         skipped, counted, warned once per partition
 *
 * After replay every restored member gets a fresh session timeout, so
 * consumers that keep heartbeating across a broker restart (or a change of
 * coordinator) stay in their generation. Appends go only to partitions led
 * here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_broker.h"
#include "rn_clock.h"
#include "rn_group.h"
#include "rn_logging.h"

#define RN_NEW_MEMBER_JOIN_TIMEOUT_MS 300000
#define RN_OFFSETS_SEGMENT_BYTES "104857600" /* Kafka's offsets.topic.segment.bytes */

/* ---- environment ------------------------------------------------------- */

static rn_err_t store_group(void *ctx, rn_group_t *g);
static void apply_leadership(rn_group_coordinator_t *c);

rn_group_env_t rn__coord_env(rn_group_coordinator_t *c) {
    rn_group_env_t e = {
        .cfg = &c->cfg,
        .ops = &c->ops,
        .now_ms = rn_clock_mono_ms(),
        .wall_ms = rn_clock_wall_ms(),
    };
    return e;
}

/* ---- the timer heap ----------------------------------------------------- */

static bool heap_less(const rn_group_t *a, const rn_group_t *b) { return a->heap_deadline_ms < b->heap_deadline_ms; }

static void heap_swap(rn_group_coordinator_t *c, size_t i, size_t j) {
    rn_group_t *t = c->heap[i];
    c->heap[i] = c->heap[j];
    c->heap[j] = t;
    c->heap[i]->heap_index = (int32_t)i;
    c->heap[j]->heap_index = (int32_t)j;
}

static void heap_up(rn_group_coordinator_t *c, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(c->heap[i], c->heap[p])) break;
        heap_swap(c, i, p);
        i = p;
    }
}

static void heap_down(rn_group_coordinator_t *c, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->heap_len && heap_less(c->heap[l], c->heap[m])) m = l;
        if (r < c->heap_len && heap_less(c->heap[r], c->heap[m])) m = r;
        if (m == i) break;
        heap_swap(c, i, m);
        i = m;
    }
}

static void heap_remove(rn_group_coordinator_t *c, rn_group_t *g) {
    if (g->heap_index < 0) return;
    size_t i = (size_t)g->heap_index;
    RN_ASSERT(i < c->heap_len && c->heap[i] == g);
    c->heap_len--;
    if (i != c->heap_len) {
        c->heap[i] = c->heap[c->heap_len];
        c->heap[i]->heap_index = (int32_t)i;
        heap_down(c, i);
        heap_up(c, i);
    }
    g->heap_index = -1;
    g->heap_deadline_ms = -1;
}

/* Put g in the heap at its next deadline (or take it out); wake the thread if it sleeps too long. */
static void heap_schedule(rn_group_coordinator_t *c, rn_group_t *g) {
    int64_t d = rn_group_next_deadline(g);
    if (d < 0) {
        heap_remove(c, g);
        return;
    }
    if (g->heap_index >= 0) {
        if (d == g->heap_deadline_ms) return;
        g->heap_deadline_ms = d;
        heap_down(c, (size_t)g->heap_index);
        heap_up(c, (size_t)g->heap_index);
    } else {
        if (c->heap_len == c->heap_cap) {
            size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
            rn_group_t **n = realloc(c->heap, cap * sizeof(*n));
            RN_ASSERT(n); /* a lost timer would strand a group: treat like any allocation abort */
            c->heap = n;
            c->heap_cap = cap;
        }
        g->heap_deadline_ms = d;
        g->heap_index = (int32_t)c->heap_len;
        c->heap[c->heap_len++] = g;
        heap_up(c, (size_t)g->heap_index);
    }
    if (d < c->wake_at_ms) pthread_cond_signal(&c->cond);
}

/* ---- groups ------------------------------------------------------------- */

rn_group_t *rn__coord_find(rn_group_coordinator_t *c, rn_str_t group_id) {
    if (group_id.len < 0) return NULL;
    return rn_map_get(&c->groups, group_id.ptr ? group_id.ptr : "", (size_t)group_id.len);
}

rn_group_t *rn__coord_create(rn_group_coordinator_t *c, rn_str_t group_id) {
    const char *id = group_id.ptr ? group_id.ptr : "";
    size_t len = group_id.len > 0 ? (size_t)group_id.len : 0;
    rn_group_t *g = rn_group_new(id, len, rn_group_partition_for(id, len, c->otopic.partitions));
    if (!g) return NULL;
    if (!rn_map_put(&c->groups, g->group_id, len, g)) {
        rn_group_free(g);
        return NULL;
    }
    return g;
}

void rn__coord_remove(rn_group_coordinator_t *c, rn_group_t *g) {
    if (c->store_for == g) c->store_for = NULL;
    heap_remove(c, g);
    rn_map_del(&c->groups, g->group_id, g->group_id_len);
    rn_group_free(g);
}

void rn__coord_after(rn_group_coordinator_t *c, rn_group_t *g) {
    rn_group_assert_state(g);
    /* A Dead group, or a shell left by a join that never got a member. */
    bool shell = g->state == RN_GS_EMPTY && g->generation == 0 && g->npending == 0 && !g->protocol_type &&
                 rn_group_offset_count(g) == 0;
    if (g->state == RN_GS_DEAD || shell) {
        rn__coord_remove(c, g);
        return;
    }
    heap_schedule(c, g);
}

void rn__coord_touch(rn_group_coordinator_t *c, rn_group_t *g) { heap_schedule(c, g); }

/* ---- __consumer_offsets ------------------------------------------------- */

rn_err_t rn__coord_ensure_topic(rn_group_coordinator_t *c) { return rn_itopic_ensure(&c->otopic); }

void rn__orecords_offset(rn_irecords_t *r, rn_str_t group, rn_str_t topic, int32_t partition, const rn_offset_t *o) {
    rn_buf_reset(&r->scratch);
    rn_offsets_key_offset(&r->scratch, group, topic, partition);
    size_t kl = r->scratch.len;
    if (o) rn_offsets_value_offset(&r->scratch, o);
    rn_irecords_add(r, kl, o == NULL);
}

void rn__orecords_group(rn_irecords_t *r, const rn_group_t *g, bool tombstone) {
    rn_buf_reset(&r->scratch);
    rn_offsets_key_group(&r->scratch, (rn_str_t){g->group_id, (int32_t)g->group_id_len});
    size_t kl = r->scratch.len;
    if (!tombstone) rn_offsets_value_group(&r->scratch, g);
    rn_irecords_add(r, kl, tombstone);
}

rn_err_t rn__orecords_append(rn_group_coordinator_t *c, int32_t partition, rn_irecords_t *r, rn_durable_t *d) {
    rn_err_t rc = rn_irecords_append(&c->otopic, partition, r, d);
    return rc == RN_ERR_LIMIT ? RN_ERR_INVALID_COMMIT_OFFSET_SIZE : rc;
}

/* rn_group_ops_t.store_group: Kafka's storeGroup, without waiting for it to
 * be durable (losing the newest one only makes the members rejoin). */
static rn_err_t store_group(void *ctx, rn_group_t *g) {
    rn_group_coordinator_t *c = ctx;
    rn_irecords_t r;
    rn_irecords_init(&r, -1, -1);
    rn__orecords_group(&r, g, false);
    rn_durable_t d;
    rn_durable_init(&d);
    rn_err_t rc = rn__orecords_append(c, g->partition, &r, &d);
    if (c->store_hw.log) rn_log_release(c->store_hw.log);
    c->store_hw.log = NULL;
    c->store_for = NULL;
    if (!rc && d.n == 1) { /* the SyncGroup answers that follow wait for it */
        c->store_hw = d.hw[0];
        rn_log_retain(c->store_hw.log);
        c->store_for = g;
    }
    rn_durable_release(&d);
    rn_irecords_free(&r);
    return rc;
}

/* ---- offset expiry ------------------------------------------------------ */

typedef struct {
    rn_group_t *g;
    rn_irecords_t *r;
    char **topics;
    int32_t *partitions;
    size_t n, cap;
} expiry_t;

static void expiry_collect(void *arg, const char *topic, size_t topic_len, int32_t partition) {
    expiry_t *x = arg;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        char **t = realloc(x->topics, cap * sizeof(*t));
        if (!t) return;
        x->topics = t;
        int32_t *p = realloc(x->partitions, cap * sizeof(*p));
        if (!p) return;
        x->partitions = p;
        x->cap = cap;
    }
    x->topics[x->n] = strndup(topic, topic_len);
    if (!x->topics[x->n]) return;
    x->partitions[x->n++] = partition;
}

static void expire_offsets(rn_group_coordinator_t *c) {
    rn_group_env_t e = rn__coord_env(c);
    /* Collect first: removing groups while iterating the map would skip some. */
    size_t n = c->groups.count, k = 0;
    rn_group_t **all = calloc(n + 1, sizeof(*all));
    if (!all) return;
    size_t it = 0;
    void *v;
    while (k < n && rn_map_next(&c->groups, &it, NULL, &v)) all[k++] = v;
    int64_t expired_total = 0, groups_removed = 0;
    for (size_t i = 0; i < k; i++) {
        rn_group_t *g = all[i];
        expiry_t x = {.g = g};
        rn_group_expired_offsets(g, e.wall_ms, c->retention_ms, expiry_collect, &x);
        bool dead = g->state == RN_GS_EMPTY && g->npending == 0 && rn_group_offset_count(g) == x.n;
        if (x.n || dead) {
            rn_irecords_t r;
            rn_irecords_init(&r, -1, -1);
            rn_str_t gid = {g->group_id, (int32_t)g->group_id_len};
            for (size_t j = 0; j < x.n; j++)
                rn__orecords_offset(&r, gid, rn_str_from_cstr(x.topics[j]), x.partitions[j], NULL);
            if (dead) rn__orecords_group(&r, g, true);
            rn_durable_t d;
            rn_durable_init(&d);
            rn_err_t rc = rn__orecords_append(c, g->partition, &r, &d);
            rn_durable_release(&d);
            rn_irecords_free(&r);
            if (!rc) {
                for (size_t j = 0; j < x.n; j++) rn_group_offset_del(g, x.topics[j], strlen(x.topics[j]), x.partitions[j]);
                expired_total += (int64_t)x.n;
                if (dead) {
                    rn_group_set_dead(&e, g);
                    groups_removed++;
                }
                rn__coord_after(c, g);
            }
        }
        for (size_t j = 0; j < x.n; j++) free(x.topics[j]);
        free(x.topics);
        free(x.partitions);
    }
    free(all);
    if (expired_total || groups_removed)
        RN_INFO("group", "expired %lld offset(s), removed %lld empty group(s)", (long long)expired_total,
                (long long)groups_removed);
}

/* ---- the timer thread --------------------------------------------------- */

static void *timer_thread(void *arg) {
    rn_group_coordinator_t *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        if (c->owned.dirty) apply_leadership(c);
        rn_group_env_t e = rn__coord_env(c);
        while (c->heap_len && c->heap[0]->heap_deadline_ms <= e.now_ms) {
            rn_group_t *g = c->heap[0];
            rn_group_tick(&e, g);
            rn__coord_after(c, g);
            if (c->heap_len && c->heap[0] == g && g->heap_deadline_ms <= e.now_ms) {
                /* A deadline that does not move would spin this thread: a bug, but not a fatal one. */
                RN_ERROR("group", "group %s: timer made no progress in state %s", g->group_id,
                         rn_group_state_name(g->state));
                heap_remove(c, g);
            }
        }
        if (e.now_ms >= c->next_expiry_ms) {
            expire_offsets(c);
            c->next_expiry_ms = rn_clock_mono_ms() + c->retention_check_ms;
        }
        int64_t wake = c->next_expiry_ms;
        if (c->heap_len && c->heap[0]->heap_deadline_ms < wake) wake = c->heap[0]->heap_deadline_ms;
        c->wake_at_ms = wake;
        struct timespec ts;
        ts.tv_sec = (time_t)(wake / 1000);
        ts.tv_nsec = (long)(wake % 1000) * 1000000L;
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- replay ------------------------------------------------------------- */

static void apply_record(rn_group_coordinator_t *c, const rn_group_env_t *e, const rn_record_t *rec, int64_t *bad) {
    rn_okey_t k;
    if (rec->key.len <= 0 || rn_offsets_parse_key(rec->key, &k)) {
        (*bad)++;
        return;
    }
    if (k.kind == RN_OKEY_OTHER) return;
    rn_group_t *g = rn__coord_find(c, k.group);
    if (k.kind == RN_OKEY_OFFSET) {
        if (rec->value.len < 0) {
            if (g) rn_group_offset_del(g, k.topic.ptr, (size_t)k.topic.len, k.partition);
            return;
        }
        rn_offset_t o;
        if (rn_offsets_parse_offset_value(rec->value, &o)) {
            (*bad)++;
            return;
        }
        if (!g) g = rn__coord_create(c, k.group);
        if (!g || rn_group_offset_put(g, k.topic.ptr, (size_t)k.topic.len, k.partition, &o)) (*bad)++;
        return;
    }
    if (rec->value.len < 0) {
        if (!g) return;
        if (rn_group_offset_count(g) == 0) {
            rn__coord_remove(c, g);
            return;
        }
        rn_stored_group_t none = {.protocol_type = RN_STR_LIT(""), .protocol_name = RN_STR_NULL,
                                  .leader_id = RN_STR_NULL, .state_timestamp_ms = -1};
        rn_group_load(e, g, &none);
        free(g->protocol_type);
        g->protocol_type = NULL;
        g->generation = 0;
        return;
    }
    rn_stored_group_t s;
    if (rn_offsets_parse_group_value(rec->value, &s)) {
        (*bad)++;
        return;
    }
    if (!g) g = rn__coord_create(c, k.group);
    if (!g || rn_group_load(e, g, &s)) (*bad)++;
    free(s.members);
}

typedef struct {
    rn_group_coordinator_t *c;
    rn_group_env_t e;
    int64_t bad;
} replay_ctx_t;

/* A transactional offset commit waits for its producer's marker (see
 * rn_txn_pending_t): a COMMIT applies it, an ABORT drops it. */
static void replay_record(void *ctx, int32_t partition, const rn_batch_header_t *h, const rn_record_t *rec) {
    replay_ctx_t *x = ctx;
    if (rn_batch_is_control(h)) {
        int16_t type = rec->key.len >= 4 ? (int16_t)rn_load_be16(rec->key.ptr + 2) : -1;
        if (type == RN_CONTROL_COMMIT || type == RN_CONTROL_ABORT)
            rn__pending_finish(x->c, partition, h->producer_id, type == RN_CONTROL_COMMIT);
        return;
    }
    if (rn_batch_is_transactional(h) && h->producer_id >= 0) {
        rn_okey_t k;
        rn_offset_t o;
        if (rec->key.len <= 0 || rn_offsets_parse_key(rec->key, &k) || k.kind != RN_OKEY_OFFSET || rec->value.len < 0 ||
            rn_offsets_parse_offset_value(rec->value, &o) ||
            !rn__pending_add(x->c, h->producer_id, k.group, k.topic, k.partition, &o))
            x->bad++;
        return;
    }
    apply_record(x->c, &x->e, rec, &x->bad);
}

/* The groups of one partition, collected (the map must not change under its iterator). */
static size_t groups_of(rn_group_coordinator_t *c, int32_t partition, rn_group_t ***out) {
    size_t n = c->groups.count, k = 0;
    rn_group_t **all = calloc(n + 1, sizeof(*all));
    *out = all;
    if (!all) return 0;
    size_t it = 0;
    void *v;
    while (k < n && rn_map_next(&c->groups, &it, NULL, &v))
        if (((rn_group_t *)v)->partition == partition) all[k++] = v;
    return k;
}

/* After a replay: offset tombstones may have left empty shells; schedule the
 * rest. Returns how many groups were loaded. */
static size_t settle_loaded(rn_group_coordinator_t *c, int32_t partition) {
    rn_group_t **gs;
    size_t n = groups_of(c, partition, &gs);
    for (size_t i = 0; i < n; i++) {
        rn_group_t *g = gs[i];
        if (g->state == RN_GS_EMPTY && rn_group_offset_count(g) == 0 && !g->protocol_type)
            rn__coord_remove(c, g);
        else
            rn__coord_after(c, g);
    }
    free(gs);
    return n;
}

/* ---- coordinating the partitions led here -------------------------------- */

int16_t rn__coord_owns(rn_group_coordinator_t *c, int32_t partition) { return rn_iowner_check(&c->owned, partition); }

int16_t rn__coord_check(rn_group_coordinator_t *c, rn_str_t group_id) {
    if (rn__coord_ensure_topic(c)) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    pthread_mutex_lock(&c->lock);
    int32_t p = rn_group_partition_for(group_id.ptr ? group_id.ptr : "", group_id.len > 0 ? (size_t)group_id.len : 0,
                                       c->otopic.partitions);
    int16_t err = rn__coord_owns(c, p);
    pthread_mutex_unlock(&c->lock);
    return err;
}

/* Leadership of the partition is gone: its groups leave memory; members
 * parked in JoinGroup/SyncGroup get NOT_COORDINATOR and find the new one. */
static void unload_partition(rn_group_coordinator_t *c, int32_t partition) {
    rn_group_env_t e = rn__coord_env(c);
    rn_group_t **gs;
    size_t n = groups_of(c, partition, &gs);
    for (size_t i = 0; i < n; i++) {
        rn_group_fail_waiters(&e, gs[i], RN_ERR_NOT_COORDINATOR);
        rn__coord_remove(c, gs[i]);
    }
    free(gs);
    rn__pending_drop_partition(c, partition);
    RN_INFO("group", "%s-%d: no longer led here; unloaded %zu group(s)", RN_OFFSETS_TOPIC, partition, n);
}

/* This node leads the partition: replay it (see the top). */
static void load_partition(rn_group_coordinator_t *c, int32_t partition, int32_t epoch) {
    int64_t t0 = rn_clock_mono_ns(), records = 0;
    replay_ctx_t x = {.c = c, .e = rn__coord_env(c)};
    rn_itopic_replay_partition(&c->otopic, partition, replay_record, &x, &records);
    if (x.bad) RN_WARN("group", "replay of %s-%d skipped %lld unreadable record(s)", RN_OFFSETS_TOPIC, partition,
                       (long long)x.bad);
    size_t n = settle_loaded(c, partition);
    RN_INFO("group", "%s-%d: leader at epoch %d; loaded %zu group(s) from %lld record(s) in %lld ms", RN_OFFSETS_TOPIC,
            partition, epoch, n, (long long)records, (long long)((rn_clock_mono_ns() - t0) / 1000000));
}

/* Timer thread, under c->lock (rn_iowner_apply's callbacks). */
static void unload_cb(void *c, int32_t partition) { unload_partition(c, partition); }
static void load_cb(void *c, int32_t partition, int32_t epoch) { load_partition(c, partition, epoch); }
static void apply_leadership(rn_group_coordinator_t *c) { rn_iowner_apply(&c->owned, unload_cb, load_cb, c); }

void rn_group_coordinator_follow(rn_broker_t *b) {
    rn_group_coordinator_t *c = b->group_coordinator;
    if (!c) return;
    int32_t n;
    int32_t *want = rn_itopic_led_epochs(&c->otopic, &n);
    if (!want) return; /* the next image change tries again */
    pthread_mutex_lock(&c->lock);
    if (rn_iowner_update(&c->owned, &c->otopic, want, n)) pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    free(want);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int32_t cfg_int(rn_broker_t *b, const char *key) {
    int64_t v = rn_broker_config_long(&b->cfg, key);
    return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

rn_err_t rn_group_coordinator_start(rn_broker_t *b, char *err, size_t errlen) {
    rn_group_coordinator_t *c = calloc(1, sizeof(*c));
    if (!c) return RN_ERR_NOMEM;
    c->b = b;
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    rn_map_init(&c->groups);
    c->cfg.min_session_timeout_ms = cfg_int(b, "group.min.session.timeout.ms");
    c->cfg.max_session_timeout_ms = cfg_int(b, "group.max.session.timeout.ms");
    c->cfg.initial_rebalance_delay_ms = cfg_int(b, "group.initial.rebalance.delay.ms");
    c->cfg.max_size = cfg_int(b, "group.max.size");
    c->cfg.new_member_join_timeout_ms = RN_NEW_MEMBER_JOIN_TIMEOUT_MS;
    c->ops = (rn_group_ops_t){.ctx = c, .join_done = rn__group_join_done, .sync_done = rn__group_sync_done,
                              .store_group = store_group};
    c->otopic = (rn_itopic_t){.b = b, .name = RN_OFFSETS_TOPIC, .subsystem = "group",
                              .segment_bytes = RN_OFFSETS_SEGMENT_BYTES,
                              .partitions = cfg_int(b, "offsets.topic.num.partitions"),
                              .replication_factor = (int16_t)cfg_int(b, "offsets.topic.replication.factor")};
    c->retention_ms = rn_broker_config_long(&b->cfg, "offsets.retention.minutes") * 60000;
    c->retention_check_ms = rn_broker_config_long(&b->cfg, "offsets.retention.check.interval.ms");
    c->next_expiry_ms = rn_clock_mono_ms() + c->retention_check_ms;
    c->wake_at_ms = INT64_MAX;
    b->group_coordinator = c; /* partitions load as this node comes to lead them */
    int rc = pthread_create(&c->thread, NULL, timer_thread, c);
    if (rc) {
        snprintf(err, errlen, "group coordinator: cannot start its timer thread: %s", strerror(rc));
        return RN_ERR_IO;
    }
    c->thread_started = true;
    return RN_OK;
}

void rn_group_coordinator_stop(rn_broker_t *b) {
    rn_group_coordinator_t *c = b->group_coordinator;
    if (!c || !c->thread_started) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    c->thread_started = false;
}

void rn_group_coordinator_free(rn_broker_t *b) {
    rn_group_coordinator_t *c = b->group_coordinator;
    if (!c) return;
    rn_group_coordinator_stop(b);
    size_t it = 0;
    void *v;
    while (rn_map_next(&c->groups, &it, NULL, &v)) {
        rn_group_t *g = v;
        /* The network is stopped: every parked request was completed or dropped. */
        RN_ASSERT(!rn_group_has_waiters(g));
        rn_group_free(g);
    }
    rn_map_free(&c->groups);
    rn__pending_free(c);
    rn_iowner_free(&c->owned);
    if (c->store_hw.log) rn_log_release(c->store_hw.log);
    free(c->heap);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    b->group_coordinator = NULL;
}
