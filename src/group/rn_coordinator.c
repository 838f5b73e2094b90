/*
 * rn_coordinator.c — this broker's group coordinator: every group, their
 * timers, and their durable state in __consumer_offsets.
 *
 * Placement. A group lives in partition abs(hash(group id)) % n of
 * __consumer_offsets (Kafka's formula, rn_group_partition_for), and its
 * coordinator is that partition's leader. With one node every partition is
 * led here, so FindCoordinator always names this broker; the partition is
 * still computed and every record goes to it, so moving leadership later
 * moves groups with it.
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
 * records under the lock and answer once the log dir has synced the append
 * (the same ticket wait as Produce). Group metadata (members, assignments) is
 * appended without waiting: losing the newest one in a crash only makes the
 * members rejoin.
 *
 * Start-up replay reads every partition of __consumer_offsets from its log
 * start, applying records in offset order, the newest record of a key
 * winning and tombstones deleting:
 *
 *   record                          effect
 *   offset key + value              group created if missing (Empty), offset set
 *   offset key + tombstone          offset deleted
 *   group key + value               members/generation/assignments restored:
 *                                   Stable with members, Empty without
 *   group key + tombstone           membership forgotten; group dropped unless
 *                                   it still has offsets
 *   other key versions              skipped
 *   unparsable key or value         skipped, counted, warned once per partition
 *
 * After replay every restored member gets a fresh session timeout, so
 * consumers that keep heartbeating across a broker restart stay in their
 * generation. Replay runs before the network starts, so no request ever sees
 * a half-loaded coordinator.
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
#define RN_REPLAY_READ_BYTES (1 << 20)

/* ---- environment ------------------------------------------------------- */

static rn_err_t store_group(void *ctx, rn_group_t *g);

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
    rn_group_t *g = rn_group_new(id, len, rn_group_partition_for(id, len, c->partitions));
    if (!g) return NULL;
    if (!rn_map_put(&c->groups, g->group_id, len, g)) {
        rn_group_free(g);
        return NULL;
    }
    return g;
}

void rn__coord_remove(rn_group_coordinator_t *c, rn_group_t *g) {
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

rn_err_t rn__coord_ensure_topic(rn_group_coordinator_t *c) {
    if (atomic_load(&c->topic_ready)) return RN_OK;
    rn_broker_t *b = c->b;
    pthread_rwlock_rdlock(&b->topics_lock);
    bool exists = rn_broker_topic_locked(b, RN_OFFSETS_TOPIC, strlen(RN_OFFSETS_TOPIC)) != NULL;
    pthread_rwlock_unlock(&b->topics_lock);
    if (!exists) {
        rn_config_set_t cfg;
        rn_config_set_init(&cfg);
        rn_config_set_put(&cfg, "cleanup.policy", "compact");
        rn_config_set_put(&cfg, "segment.bytes", RN_OFFSETS_SEGMENT_BYTES);
        rn_topic_create_t spec = {
            .num_partitions = c->partitions,
            .replication_factor = c->replication_factor,
            .configs = &cfg,
            .internal = true,
        };
        char msg[256] = "";
        rn_err_t rc = rn_broker_create_topic(b, RN_OFFSETS_TOPIC, strlen(RN_OFFSETS_TOPIC), &spec, msg, sizeof(msg));
        rn_config_set_free(&cfg);
        if (rc && rc != RN_ERR_TOPIC_ALREADY_EXISTS) {
            RN_WARN("group", "cannot create %s: %s (%s)", RN_OFFSETS_TOPIC, rn_err_name(rc), msg);
            return RN_ERR_COORDINATOR_NOT_AVAILABLE;
        }
        if (!rc) RN_INFO("group", "created %s with %d partitions", RN_OFFSETS_TOPIC, c->partitions);
    }
    atomic_store(&c->topic_ready, true);
    return RN_OK;
}

void rn__orecords_init(rn_orecords_t *r) {
    rn_buf_init(&r->scratch, (size_t)64 << 20);
    rn_buf_init(&r->batch, (size_t)256 << 20);
    rn_batch_builder_init(&r->builder, &r->batch, 0, RN_COMPRESSION_NONE, (size_t)128 << 20);
    r->timestamp_ms = rn_clock_wall_ms();
    r->count = 0;
}

void rn__orecords_free(rn_orecords_t *r) {
    rn_batch_builder_abort(&r->builder);
    rn_buf_free(&r->scratch);
    rn_buf_free(&r->batch);
}

static void orecords_add(rn_orecords_t *r, size_t key_len, bool tombstone) {
    rn_bytes_t key = {r->scratch.data, (int32_t)key_len};
    rn_bytes_t value = tombstone ? (rn_bytes_t){NULL, -1}
                                 : (rn_bytes_t){r->scratch.data + key_len, (int32_t)(r->scratch.len - key_len)};
    rn_batch_builder_add(&r->builder, r->timestamp_ms, key, value, 0, NULL, NULL);
    r->count++;
}

void rn__orecords_offset(rn_orecords_t *r, rn_str_t group, rn_str_t topic, int32_t partition, const rn_offset_t *o) {
    rn_buf_reset(&r->scratch);
    rn_offsets_key_offset(&r->scratch, group, topic, partition);
    size_t kl = r->scratch.len;
    if (o) rn_offsets_value_offset(&r->scratch, o);
    orecords_add(r, kl, o == NULL);
}

void rn__orecords_group(rn_orecords_t *r, const rn_group_t *g, bool tombstone) {
    rn_buf_reset(&r->scratch);
    rn_offsets_key_group(&r->scratch, (rn_str_t){g->group_id, (int32_t)g->group_id_len});
    size_t kl = r->scratch.len;
    if (!tombstone) rn_offsets_value_group(&r->scratch, g);
    orecords_add(r, kl, tombstone);
}

static rn_err_t orecords_append_batch(rn_group_coordinator_t *c, int32_t partition, rn_orecords_t *r,
                                      uint64_t *ticket) {
    if (rn_buf_err(&r->scratch)) return RN_ERR_INVALID_COMMIT_OFFSET_SIZE;
    rn_err_t rc = rn_batch_builder_finish(&r->builder);
    if (rc) return rc == RN_ERR_LIMIT ? RN_ERR_INVALID_COMMIT_OFFSET_SIZE : RN_ERR_UNKNOWN_SERVER_ERROR;
    rn_broker_t *b = c->b;
    if (rn__coord_ensure_topic(c)) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_partition_t *p = rn_broker_partition_locked(b, RN_OFFSETS_TOPIC, strlen(RN_OFFSETS_TOPIC), partition);
    rn_log_t *log = p ? p->log : NULL;
    int32_t epoch = p ? p->leader_epoch : 0;
    if (log) rn_log_retain(log);
    pthread_rwlock_unlock(&b->topics_lock);
    if (!log) {
        atomic_store(&c->topic_ready, false); /* deleted under us: create it again next time */
        return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    rn_append_opts_t ao = {.leader_epoch = epoch, .now_ms = r->timestamp_ms, .is_internal = true};
    rn_append_result_t ar;
    rc = rn_log_append(log, r->batch.data, r->batch.len, &ao, &ar);
    rn_log_release(log);
    if (rc) {
        RN_WARN("group", "append to %s-%d failed: %s", RN_OFFSETS_TOPIC, partition, rn_err_name(rc));
        return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    *ticket = ar.sync_ticket;
    if (!ar.sync_ticket) rn_broker_wake_all(b); /* lazy mode: visible now */
    return RN_OK;
}

rn_err_t rn__orecords_append(rn_group_coordinator_t *c, int32_t partition, rn_orecords_t *r, uint64_t *ticket) {
    *ticket = 0;
    if (r->count == 0) return RN_OK;
    rn_err_t rc = orecords_append_batch(c, partition, r, ticket);
    /* Ready for the next batch either way (finish released the builder; abort is a no-op then). */
    rn_batch_builder_abort(&r->builder);
    rn_buf_reset(&r->batch);
    rn_batch_builder_init(&r->builder, &r->batch, 0, RN_COMPRESSION_NONE, (size_t)128 << 20);
    r->count = 0;
    return rc;
}

/* rn_group_ops_t.store_group: Kafka's storeGroup, without waiting for the sync. */
static rn_err_t store_group(void *ctx, rn_group_t *g) {
    rn_group_coordinator_t *c = ctx;
    rn_orecords_t r;
    rn__orecords_init(&r);
    rn__orecords_group(&r, g, false);
    uint64_t ticket;
    rn_err_t rc = rn__orecords_append(c, g->partition, &r, &ticket);
    rn__orecords_free(&r);
    return rc;
}

/* ---- offset expiry ------------------------------------------------------ */

typedef struct {
    rn_group_t *g;
    rn_orecords_t *r;
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
            rn_orecords_t r;
            rn__orecords_init(&r);
            rn_str_t gid = {g->group_id, (int32_t)g->group_id_len};
            for (size_t j = 0; j < x.n; j++)
                rn__orecords_offset(&r, gid, rn_str_from_cstr(x.topics[j]), x.partitions[j], NULL);
            if (dead) rn__orecords_group(&r, g, true);
            uint64_t ticket;
            rn_err_t rc = rn__orecords_append(c, g->partition, &r, &ticket);
            rn__orecords_free(&r);
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

static void replay_partition(rn_group_coordinator_t *c, rn_log_t *log, int32_t partition, int64_t *records) {
    rn_group_env_t e = rn__coord_env(c);
    int64_t off = rn_log_start_offset(log), end = rn_log_end_offset(log), bad = 0;
    size_t cap = 0;
    uint8_t *buf = NULL;
    rn_arena_t a;
    rn_arena_init(&a, (size_t)256 << 20);
    while (off < end) {
        rn_log_read_t rd;
        rn_err_t rc = rn_log_read(log, off, RN_REPLAY_READ_BYTES, true, end, &rd);
        if (rc || rd.len <= 0) {
            if (rc) RN_WARN("group", "replay of %s-%d stopped at offset %lld: %s", RN_OFFSETS_TOPIC, partition,
                            (long long)off, rn_err_name(rc));
            if (rd.file && !rc) rn_fileref_release(rd.file);
            break;
        }
        if ((size_t)rd.len > cap) {
            uint8_t *nb = realloc(buf, (size_t)rd.len);
            if (!nb) {
                rn_fileref_release(rd.file);
                break;
            }
            buf = nb;
            cap = (size_t)rd.len;
        }
        size_t got = 0;
        while (got < (size_t)rd.len) {
            ssize_t n = pread(rd.file->fd, buf + got, (size_t)rd.len - got, rd.file_pos + (off_t)got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += (size_t)n;
        }
        rn_fileref_release(rd.file);
        if (got < (size_t)rd.len) {
            RN_ERROR("group", "replay of %s-%d: read failed at offset %lld", RN_OFFSETS_TOPIC, partition, (long long)off);
            break;
        }
        int64_t next = off;
        size_t pos = 0;
        while (pos + RN_BATCH_HEADER_SIZE <= got) {
            rn_batch_header_t h;
            rn_batch_header_decode(buf + pos, &h);
            size_t total = rn_batch_total_size(&h);
            if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD || pos + total > got) break;
            if (!rn_batch_is_control(&h)) {
                rn_record_iter_t it;
                if (!rn_record_iter_init(&it, buf + pos, total, 0, &a)) {
                    rn_record_t rec;
                    while (rn_record_iter_next(&it, &rec)) {
                        if (rec.offset < off) continue;
                        apply_record(c, &e, &rec, &bad);
                        (*records)++;
                    }
                    if (it.err) bad++;
                } else {
                    bad++;
                }
                rn_arena_reset(&a);
            }
            next = rn_batch_last_offset(&h) + 1;
            pos += total;
        }
        if (next <= off) break; /* no progress: a batch larger than the read, or damage */
        off = next;
    }
    rn_arena_reset(&a);
    free(buf);
    if (bad) RN_WARN("group", "replay of %s-%d skipped %lld unreadable record(s)", RN_OFFSETS_TOPIC, partition, (long long)bad);
}

static void replay(rn_group_coordinator_t *c) {
    rn_broker_t *b = c->b;
    int64_t t0 = rn_clock_mono_ns();
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_topic_t *t = rn_broker_topic_locked(b, RN_OFFSETS_TOPIC, strlen(RN_OFFSETS_TOPIC));
    if (t) rn_topic_retain(t);
    pthread_rwlock_unlock(&b->topics_lock);
    if (!t) return;
    if (t->partition_count != c->partitions) {
        RN_WARN("group", "%s has %d partitions, offsets.topic.num.partitions is %d: using the topic's count",
                RN_OFFSETS_TOPIC, t->partition_count, c->partitions);
        c->partitions = t->partition_count;
    }
    atomic_store(&c->topic_ready, true);
    int64_t records = 0;
    pthread_mutex_lock(&c->lock);
    for (int32_t i = 0; i < t->partition_count; i++) {
        rn_partition_t *p = t->partitions[i];
        if (p && p->log) replay_partition(c, p->log, i, &records);
    }
    /* Offset tombstones may have left empty shells; schedule the rest. */
    size_t n = c->groups.count, k = 0;
    rn_group_t **all = calloc(n + 1, sizeof(*all));
    if (all) {
        size_t it = 0;
        void *v;
        while (k < n && rn_map_next(&c->groups, &it, NULL, &v)) all[k++] = v;
        for (size_t i = 0; i < k; i++) {
            rn_group_t *g = all[i];
            if (g->state == RN_GS_EMPTY && rn_group_offset_count(g) == 0 && !g->protocol_type)
                rn__coord_remove(c, g);
            else
                rn__coord_after(c, g);
        }
        free(all);
    }
    c->loaded_records = records;
    c->loaded_groups = (int64_t)c->groups.count;
    pthread_mutex_unlock(&c->lock);
    rn_topic_release(t);
    c->load_ms = (rn_clock_mono_ns() - t0) / 1000000;
    RN_INFO("group", "loaded %lld group(s) from %lld record(s) of %s in %lld ms", (long long)c->loaded_groups,
            (long long)records, RN_OFFSETS_TOPIC, (long long)c->load_ms);
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
    c->partitions = cfg_int(b, "offsets.topic.num.partitions");
    c->replication_factor = (int16_t)cfg_int(b, "offsets.topic.replication.factor");
    c->retention_ms = rn_broker_config_long(&b->cfg, "offsets.retention.minutes") * 60000;
    c->retention_check_ms = rn_broker_config_long(&b->cfg, "offsets.retention.check.interval.ms");
    c->next_expiry_ms = rn_clock_mono_ms() + c->retention_check_ms;
    c->wake_at_ms = INT64_MAX;
    atomic_init(&c->topic_ready, false);
    b->group_coordinator = c;
    replay(c);
    int rc = pthread_create(&c->thread, NULL, timer_thread, c);
    if (rc) {
        snprintf(err, errlen, "group coordinator: cannot start its timer thread: %s", strerror(rc));
        return RN_ERR_IO;
    }
    c->thread_started = true;
    return RN_OK;
}

void rn_group_coordinator_free(rn_broker_t *b) {
    rn_group_coordinator_t *c = b->group_coordinator;
    if (!c) return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->lock);
        c->stopping = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
    }
    size_t it = 0;
    void *v;
    while (rn_map_next(&c->groups, &it, NULL, &v)) {
        rn_group_t *g = v;
        /* The network is stopped: every parked request was completed or dropped. */
        RN_ASSERT(!rn_group_has_waiters(g));
        rn_group_free(g);
    }
    rn_map_free(&c->groups);
    free(c->heap);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    b->group_coordinator = NULL;
}
