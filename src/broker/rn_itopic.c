/*
 * rn_itopic.c — internal compacted topics: __consumer_offsets (the group
 * coordinator) and __transaction_state (the transaction coordinator).
 *
 * Both coordinators keep their state as keyed records in a compacted topic
 * and need the same three things, which live here:
 *
 *   rn_itopic_ensure      have the active controller create the topic on first
 *                         use (cleanup.policy=compact, the coordinator's
 *                         partition count and segment size)
 *   rn_irecords_*         collect records (key, value or tombstone) and append
 *                         them to one partition led here as one batch,
 *                         optionally as a transactional batch of a producer;
 *                         the caller waits for the high watermark to cover it
 *                         before answering
 *   rn_itopic_replay_partition
 *                         read a partition this node comes to lead from its log
 *                         start and hand each record (control records included,
 *                         with their batch header) to the coordinator in offset
 *                         order
 *
 * The caller serialises appends to a key (its own lock), so the log order of a
 * key is its memory order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_broker.h"
#include "rn_clock.h"
#include "rn_cluster.h"
#include "rn_itopic.h"
#include "rn_logging.h"

#define RN_REPLAY_READ_BYTES (1 << 20)
#define RN_IRECORDS_SCRATCH_MAX ((size_t)64 << 20)
#define RN_IRECORDS_BATCH_MAX ((size_t)128 << 20)

#define RN_ITOPIC_CREATE_RETRY_MS 1000

int16_t rn_itopic_replication_factor(rn_itopic_t *t, int32_t brokers) {
    int16_t rf = t->replication_factor > 0 ? t->replication_factor : 1;
    if (brokers >= 1 && rf > brokers) {
        RN_INFO(t->subsystem, "%s: replication factor %d capped at the %d broker(s) available", t->name, rf, brokers);
        rf = (int16_t)brokers;
    }
    return rf;
}

/* The registry follows the image; the controller is asked once a second until it has the topic. */
rn_err_t rn_itopic_ensure(rn_itopic_t *t) {
    if (atomic_load(&t->ready)) return RN_OK;
    rn_broker_t *b = t->b;
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_topic_t *topic = rn_broker_topic_locked(b, t->name, strlen(t->name));
    int32_t n = topic ? topic->partition_count : 0;
    pthread_rwlock_unlock(&b->topics_lock);
    if (topic) {
        if (n != t->partitions) {
            RN_INFO(t->subsystem, "%s has %d partitions (the configuration says %d): using the topic's count", t->name,
                    n, t->partitions);
            t->partitions = n;
        }
        atomic_store(&t->ready, true);
        return RN_OK;
    }
    int64_t now = rn_clock_mono_ms(), asked = atomic_load(&t->create_asked_ms);
    if ((asked == 0 || now - asked >= RN_ITOPIC_CREATE_RETRY_MS) &&
        atomic_compare_exchange_strong(&t->create_asked_ms, &asked, now))
        rn_cluster_create_internal(b, t);
    return RN_ERR_COORDINATOR_NOT_AVAILABLE;
}

int32_t rn_itopic_leader(rn_itopic_t *t, int32_t partition, bool *here, int32_t *epoch) {
    rn_broker_t *b = t->b;
    *here = false;
    *epoch = -1;
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_partition_t *p = rn_broker_partition_locked(b, t->name, strlen(t->name), partition);
    int32_t leader = p ? p->leader_id : -1;
    rn_log_t *log = p && rn_partition_led_here(b, p) ? p->log : NULL;
    if (log) rn_log_retain(log);
    pthread_rwlock_unlock(&b->topics_lock);
    if (log) {
        *here = rn_replica_mgr_leads(rn_cluster_replicas(b), log, epoch);
        rn_log_release(log);
    }
    return leader;
}

int32_t *rn_itopic_led_epochs(rn_itopic_t *t, int32_t *n) {
    rn_broker_t *b = t->b;
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_topic_t *topic = rn_broker_topic_locked(b, t->name, strlen(t->name));
    *n = topic ? topic->partition_count : 0;
    pthread_rwlock_unlock(&b->topics_lock);
    int32_t *want = calloc((size_t)*n + 1, sizeof(*want));
    if (!want) return NULL;
    for (int32_t p = 0; p < *n; p++) {
        bool here;
        int32_t epoch;
        rn_itopic_leader(t, p, &here, &epoch);
        want[p] = here ? epoch : -1;
    }
    return want;
}

bool rn_iowner_update(rn_iowner_t *o, rn_itopic_t *t, const int32_t *want, int32_t n) {
    if (n > o->n) {
        int32_t *w = realloc(o->want, (size_t)n * sizeof(*w));
        if (w) o->want = w;
        int32_t *l = w ? realloc(o->loaded, (size_t)n * sizeof(*l)) : NULL;
        if (l) o->loaded = l;
        if (!w || !l) return false; /* the next image tries again */
        for (int32_t p = o->n; p < n; p++) o->want[p] = o->loaded[p] = -1;
        o->n = n;
        t->partitions = n;
    }
    bool changed = false;
    for (int32_t p = 0; p < o->n; p++) {
        int32_t w = p < n ? want[p] : -1; /* the topic is gone: nothing is led */
        if (o->want[p] != w) changed = true;
        o->want[p] = w;
    }
    if (changed) o->dirty = true;
    return changed;
}

void rn_iowner_apply(rn_iowner_t *o, void (*unload)(void *ctx, int32_t partition),
                     void (*load)(void *ctx, int32_t partition, int32_t epoch), void *ctx) {
    o->dirty = false;
    for (int32_t p = 0; p < o->n; p++) {
        if (o->loaded[p] == o->want[p]) continue;
        if (o->loaded[p] >= 0) unload(ctx, p);
        o->loaded[p] = -1;
        if (o->want[p] >= 0) {
            load(ctx, p, o->want[p]);
            o->loaded[p] = o->want[p];
        }
    }
}

int16_t rn_iowner_check(const rn_iowner_t *o, int32_t partition) {
    if (partition < 0 || partition >= o->n || o->want[partition] < 0) return RN_ERR_NOT_COORDINATOR;
    return o->loaded[partition] == o->want[partition] ? 0 : RN_ERR_COORDINATOR_LOAD_IN_PROGRESS;
}

void rn_iowner_free(rn_iowner_t *o) {
    free(o->want);
    free(o->loaded);
    *o = (rn_iowner_t){0};
}

/* ---- appending ---------------------------------------------------------- */

static void builder_start(rn_irecords_t *r) {
    rn_batch_builder_init(&r->builder, &r->batch, 0, RN_COMPRESSION_NONE, RN_IRECORDS_BATCH_MAX);
    if (r->producer_id >= 0) {
        r->builder.producer_id = r->producer_id;
        r->builder.producer_epoch = r->producer_epoch;
        r->builder.attributes |= RN_BATCH_ATTR_TRANSACTIONAL;
    }
}

void rn_irecords_init(rn_irecords_t *r, int64_t producer_id, int16_t producer_epoch) {
    rn_buf_init(&r->scratch, RN_IRECORDS_SCRATCH_MAX);
    rn_buf_init(&r->batch, RN_IRECORDS_BATCH_MAX * 2);
    r->producer_id = producer_id;
    r->producer_epoch = producer_epoch;
    builder_start(r);
    r->timestamp_ms = rn_clock_wall_ms();
    r->count = 0;
}

void rn_irecords_free(rn_irecords_t *r) {
    rn_batch_builder_abort(&r->builder);
    rn_buf_free(&r->scratch);
    rn_buf_free(&r->batch);
}

void rn_irecords_add(rn_irecords_t *r, size_t key_len, bool tombstone) {
    rn_bytes_t key = {r->scratch.data, (int32_t)key_len};
    rn_bytes_t value = tombstone ? (rn_bytes_t){NULL, -1}
                                 : (rn_bytes_t){r->scratch.data + key_len, (int32_t)(r->scratch.len - key_len)};
    rn_batch_builder_add(&r->builder, r->timestamp_ms, key, value, 0, NULL, NULL);
    r->count++;
}

/* The log of partition `partition`, retained (NULL: no such partition). */
static rn_log_t *itopic_log(rn_itopic_t *t, int32_t partition, int32_t *leader_epoch, bool *led) {
    rn_broker_t *b = t->b;
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_partition_t *p = rn_broker_partition_locked(b, t->name, strlen(t->name), partition);
    rn_log_t *log = p ? p->log : NULL;
    *leader_epoch = p ? p->leader_epoch : 0;
    *led = rn_partition_led_here(b, p);
    if (log) rn_log_retain(log);
    pthread_rwlock_unlock(&b->topics_lock);
    return log;
}

static rn_err_t append_batch(rn_itopic_t *t, int32_t partition, rn_irecords_t *r, rn_durable_t *d) {
    if (rn_buf_err(&r->scratch)) return RN_ERR_LIMIT;
    rn_err_t rc = rn_batch_builder_finish(&r->builder);
    if (rc) return rc == RN_ERR_LIMIT ? RN_ERR_LIMIT : RN_ERR_UNKNOWN_SERVER_ERROR;
    if (rn_itopic_ensure(t)) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    int32_t epoch;
    bool led;
    rn_log_t *log = itopic_log(t, partition, &epoch, &led);
    if (!log) return RN_ERR_NOT_COORDINATOR;
    int32_t repl_epoch = -1;
    if (!led || !rn_replica_mgr_leads(rn_cluster_replicas(t->b), log, &repl_epoch) || repl_epoch != epoch) {
        rn_log_release(log);
        return RN_ERR_NOT_COORDINATOR;
    }
    rn_append_opts_t ao = {.leader_epoch = epoch, .now_ms = r->timestamp_ms, .is_internal = true};
    rn_append_result_t ar;
    rc = rn_log_append(log, r->batch.data, r->batch.len, &ao, &ar);
    if (rc) {
        rn_log_release(log);
        RN_WARN(t->subsystem, "append to %s-%d failed: %s", t->name, partition, rn_err_name(rc));
        return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    rn_durable_hw(d, log, ar.last_offset + 1, epoch); /* the high watermark implies the sync */
    rn_broker_wake_all(t->b);                          /* followers' parked fetches */
    rn_log_release(log);
    return RN_OK;
}

rn_err_t rn_irecords_append(rn_itopic_t *t, int32_t partition, rn_irecords_t *r, rn_durable_t *d) {
    if (r->count == 0) return RN_OK;
    rn_err_t rc = append_batch(t, partition, r, d);
    /* Ready for the next batch either way (finish released the builder; abort is a no-op then). */
    rn_batch_builder_abort(&r->builder);
    rn_buf_reset(&r->batch);
    builder_start(r);
    r->count = 0;
    return rc;
}

/* ---- replay ------------------------------------------------------------- */

/* Reads [off, off + len) of the log into *buf (grown as needed); false on failure. */
static bool read_span(rn_log_read_t *rd, uint8_t **buf, size_t *cap) {
    if ((size_t)rd->len > *cap) {
        uint8_t *nb = realloc(*buf, (size_t)rd->len);
        if (!nb) return false;
        *buf = nb;
        *cap = (size_t)rd->len;
    }
    size_t got = 0;
    while (got < (size_t)rd->len) {
        ssize_t n = pread(rd->file->fd, *buf + got, (size_t)rd->len - got, rd->file_pos + (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got == (size_t)rd->len;
}

static void replay_partition(rn_itopic_t *t, rn_log_t *log, int32_t partition, rn_itopic_record_fn fn, void *ctx,
                             int64_t *records) {
    int64_t off = rn_log_start_offset(log), end = rn_log_end_offset(log), bad = 0;
    size_t cap = 0;
    uint8_t *buf = NULL;
    rn_arena_t a;
    rn_arena_init(&a, (size_t)256 << 20);
    while (off < end) {
        rn_log_read_t rd;
        rn_err_t rc = rn_log_read(log, off, RN_REPLAY_READ_BYTES, true, end, &rd);
        if (rc || rd.len <= 0) {
            if (rc) RN_WARN(t->subsystem, "replay of %s-%d stopped at offset %lld: %s", t->name, partition,
                            (long long)off, rn_err_name(rc));
            if (rd.file && !rc) rn_fileref_release(rd.file);
            break;
        }
        bool ok = read_span(&rd, &buf, &cap);
        size_t got = ok ? (size_t)rd.len : 0;
        rn_fileref_release(rd.file);
        if (!ok) {
            RN_ERROR(t->subsystem, "replay of %s-%d: read failed at offset %lld", t->name, partition, (long long)off);
            break;
        }
        int64_t next = off;
        size_t pos = 0;
        while (pos + RN_BATCH_HEADER_SIZE <= got) {
            rn_batch_header_t h;
            rn_batch_header_decode(buf + pos, &h);
            size_t total = rn_batch_total_size(&h);
            if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD || pos + total > got) break;
            rn_record_iter_t it;
            if (!rn_record_iter_init(&it, buf + pos, total, 0, &a)) {
                rn_record_t rec;
                while (rn_record_iter_next(&it, &rec)) {
                    if (rec.offset < off) continue;
                    fn(ctx, partition, &h, &rec);
                    (*records)++;
                }
                if (it.err) bad++;
            } else {
                bad++;
            }
            rn_arena_reset(&a);
            next = rn_batch_last_offset(&h) + 1;
            pos += total;
        }
        if (next <= off) break; /* no progress: a batch larger than the read, or damage */
        off = next;
    }
    rn_arena_reset(&a);
    free(buf);
    if (bad) RN_WARN(t->subsystem, "replay of %s-%d skipped %lld unreadable batch(es)", t->name, partition, (long long)bad);
}

void rn_itopic_replay_partition(rn_itopic_t *t, int32_t partition, rn_itopic_record_fn fn, void *ctx, int64_t *records) {
    int32_t epoch;
    bool led;
    rn_log_t *log = itopic_log(t, partition, &epoch, &led);
    if (!log) return;
    replay_partition(t, log, partition, fn, ctx, records);
    rn_log_release(log);
}
