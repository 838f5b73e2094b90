/*
 * rn_txn.c — the transaction coordinator.
 *
 * One entry per transactional id: its producer id and epoch, timeout, state
 * and the partitions written in the current transaction. Every producer of a
 * transactional id shares the producer id; InitProducerId bumps the epoch, so
 * an older instance (a zombie) is fenced: the coordinator answers its calls
 * with PRODUCER_FENCED and partitions refuse its batches (INVALID_PRODUCER_EPOCH)
 * once a marker with the newer epoch is written.
 *
 * State machine (Kafka's TransactionState):
 *
 *            InitProducerId                AddPartitionsToTxn
 *   (none) ──────────────────▶ EMPTY ─────────────────────────▶ ONGOING ◀──┐
 *                                ▲                                │  │      │ AddPartitionsToTxn
 *                                │                 EndTxn(commit) │  │      │
 *                                │                ┌───────────────┘  └──────┤ EndTxn(abort), or
 *                                │                ▼                         ▼ InitProducerId (fencing)
 *                                │         PREPARE_COMMIT             PREPARE_ABORT
 *                                │                │ markers written         │ markers written
 *                                │                ▼                         ▼
 *                                │         COMPLETE_COMMIT            COMPLETE_ABORT
 *                                │                │                         │
 *                                └────────────────┴─ AddPartitionsToTxn ────┴──▶ ONGOING
 *
 *   EMPTY / COMPLETE_* ──(idle past transactional.id.expiration.ms)──▶ DEAD (forgotten)
 *   ONGOING past transaction.timeout.ms: aborted by the coordinator with the
 *   epoch bumped (the producer is fenced), as Kafka does.
 *
 * PREPARE_* lasts while the markers are appended (under the coordinator lock),
 * so other threads never see it; it is kept for the persistent log to come,
 * where a prepare record written before the markers lets a restart finish the
 * transaction.
 *
 * Markers: EndTxn appends a control batch (producer id, the epoch, attributes
 * transactional|control, one record with key {version 0, type 0 ABORT | 1
 * COMMIT} and value {version 0, coordinatorEpoch 0}) to every partition of
 * the transaction and answers once they are durable (their sync ticket).
 *
 * Locking: one mutex for the table; marker appends take the topics lock
 * (shared) and each log's lock below it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_assert.h"
#include "rn_batch.h"
#include "rn_clock.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"
#include "rn_txn.h"

#define TXN_PARTITIONS_MAX 100000 /* partitions in one transaction */
#define RN_TXN_REAP_INTERVAL_MS 1000 /* how often timed-out transactions and idle ids are looked for */

typedef enum {
    TXN_EMPTY = 0,
    TXN_ONGOING,
    TXN_PREPARE_COMMIT,
    TXN_PREPARE_ABORT,
    TXN_COMPLETE_COMMIT,
    TXN_COMPLETE_ABORT,
    TXN_DEAD,
} txn_state_t;

typedef struct {
    char *topic;
    int32_t partition;
} txn_partition_t;

/* An offset sent with the transaction (TxnOffsetCommit), committed with it. */
typedef struct {
    char *group;
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int32_t metadata_len;
} txn_offset_t;

typedef struct {
    char *id;
    int64_t producer_id;
    int16_t epoch;
    int32_t timeout_ms;
    txn_state_t state;
    int64_t start_ms;       /* wall clock at the first partition of the current transaction */
    int64_t last_update_ms;
    txn_partition_t *parts;
    int32_t nparts, parts_cap;
    char **groups; /* AddOffsetsToTxn: groups whose offsets this transaction commits */
    int32_t ngroups, groups_cap;
    txn_offset_t *offsets; /* TxnOffsetCommit: pending until EndTxn */
    int32_t noffsets, offsets_cap;
} txn_t;

struct rn_txn_coordinator {
    pthread_mutex_t lock;
    rn_map_t txns; /* transactional id -> txn_t* */
    int64_t max_timeout_ms;
    int64_t id_expiration_ms;
    rn_broker_t *broker;
    /* The reaper thread: aborts transactions past their timeout, expires idle ids. */
    pthread_t reaper;
    bool reaper_started, stopping;
    pthread_cond_t wake;
};

/* Which transitions exist: from → to. */
static bool transition_ok(txn_state_t from, txn_state_t to) {
    switch (to) {
    case TXN_EMPTY: return from == TXN_EMPTY || from == TXN_COMPLETE_COMMIT || from == TXN_COMPLETE_ABORT;
    case TXN_ONGOING:
        return from == TXN_EMPTY || from == TXN_ONGOING || from == TXN_COMPLETE_COMMIT || from == TXN_COMPLETE_ABORT;
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_ABORT: return from == TXN_ONGOING;
    case TXN_COMPLETE_COMMIT: return from == TXN_PREPARE_COMMIT;
    case TXN_COMPLETE_ABORT: return from == TXN_PREPARE_ABORT;
    case TXN_DEAD: return from == TXN_EMPTY || from == TXN_COMPLETE_COMMIT || from == TXN_COMPLETE_ABORT;
    }
    return false;
}

static void assert_txn_state(const txn_t *t) {
    RN_ASSERT(t->producer_id >= 0 && t->epoch >= 0);
    RN_ASSERT(t->state >= TXN_EMPTY && t->state <= TXN_DEAD);
    /* Only an open transaction (or one finishing) has partitions, groups and offsets. */
    bool open = t->state == TXN_ONGOING || t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT;
    RN_ASSERT(open || (t->nparts == 0 && t->ngroups == 0 && t->noffsets == 0));
    RN_ASSERT(t->state != TXN_ONGOING || t->nparts > 0 || t->ngroups > 0);
    RN_ASSERT(t->noffsets == 0 || t->ngroups > 0);
}

static void clear_txn_contents(txn_t *t) {
    for (int32_t i = 0; i < t->nparts; i++) free(t->parts[i].topic);
    t->nparts = 0;
    for (int32_t i = 0; i < t->ngroups; i++) free(t->groups[i]);
    t->ngroups = 0;
    for (int32_t i = 0; i < t->noffsets; i++) {
        free(t->offsets[i].group);
        free(t->offsets[i].topic);
        free(t->offsets[i].metadata);
    }
    t->noffsets = 0;
}

static void set_state(txn_t *t, txn_state_t to) {
    RN_ASSERT(transition_ok(t->state, to));
    t->state = to;
    t->last_update_ms = rn_clock_wall_ms();
    if (to == TXN_COMPLETE_COMMIT || to == TXN_COMPLETE_ABORT) clear_txn_contents(t);
    assert_txn_state(t);
}

static uint64_t end_txn_locked(rn_broker_t *b, txn_t *t, bool commit);

static void free_txn(txn_t *t) {
    clear_txn_contents(t);
    free(t->parts);
    free(t->groups);
    free(t->offsets);
    free(t->id);
    free(t);
}

/* One pass of the reaper (lock held): a transaction open longer than its
 * timeout is aborted with a bumped epoch, so its producer is fenced (Kafka
 * does the same); an id idle past transactional.id.expiration.ms is forgotten. */
static void reap_locked(rn_txn_coordinator_t *c, int64_t now) {
    size_t it = 0;
    const char *key;
    void *v;
    while (rn_map_next(&c->txns, &it, &key, &v)) {
        txn_t *t = v;
        if (t->state == TXN_ONGOING && now - t->start_ms > t->timeout_ms) {
            RN_INFO("txn", "%s: open for more than transaction.timeout.ms (%d ms); aborting it", t->id, t->timeout_ms);
            if (t->epoch < INT16_MAX - 1) t->epoch++;
            (void)end_txn_locked(c->broker, t, false);
        }
    }
    for (;;) { /* deleting while iterating is not allowed: one at a time */
        txn_t *dead = NULL;
        it = 0;
        while (!dead && rn_map_next(&c->txns, &it, &key, &v)) {
            txn_t *t = v;
            if ((t->state == TXN_EMPTY || t->state == TXN_COMPLETE_COMMIT || t->state == TXN_COMPLETE_ABORT) &&
                now - t->last_update_ms > c->id_expiration_ms)
                dead = t;
        }
        if (!dead) break;
        set_state(dead, TXN_DEAD);
        RN_INFO("txn", "%s: idle for more than transactional.id.expiration.ms; expired", dead->id);
        rn_map_del(&c->txns, dead->id, strlen(dead->id));
        free_txn(dead);
    }
}

static void *reaper_main(void *arg) {
    rn_txn_coordinator_t *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        reap_locked(c, rn_clock_wall_ms());
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + RN_TXN_REAP_INTERVAL_MS * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

rn_err_t rn_txn_coordinator_start(rn_broker_t *b, char *err, size_t errlen) {
    rn_txn_coordinator_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "transaction coordinator: out of memory");
        return RN_ERR_NOMEM;
    }
    pthread_mutex_init(&c->lock, NULL);
    rn_map_init(&c->txns);
    pthread_cond_init(&c->wake, NULL);
    c->max_timeout_ms = rn_broker_config_long(&b->cfg, "transaction.max.timeout.ms");
    c->id_expiration_ms = rn_broker_config_long(&b->cfg, "transactional.id.expiration.ms");
    c->broker = b;
    b->txn_coordinator = c;
    if (pthread_create(&c->reaper, NULL, reaper_main, c) != 0) {
        snprintf(err, errlen, "transaction coordinator: cannot start its thread");
        return RN_ERR_NOMEM;
    }
    c->reaper_started = true;
    return RN_OK;
}

void rn_txn_coordinator_free(rn_broker_t *b) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    if (!c) return;
    if (c->reaper_started) {
        pthread_mutex_lock(&c->lock);
        c->stopping = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->reaper, NULL);
    }
    size_t it = 0;
    const char *key;
    void *v;
    while (rn_map_next(&c->txns, &it, &key, &v)) free_txn(v);
    rn_map_free(&c->txns);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
    b->txn_coordinator = NULL;
}

static txn_t *txn_get(rn_txn_coordinator_t *c, rn_str_t id) {
    if (id.len <= 0) return NULL;
    return rn_map_get(&c->txns, id.ptr, (size_t)id.len);
}

/* Appends one marker to topic-partition; returns its sync ticket (0 if none or lost). */
static uint64_t write_marker(rn_broker_t *b, const txn_t *t, const txn_partition_t *p, int type) {
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_partition_t *part = rn_broker_partition_locked(b, p->topic, strlen(p->topic), p->partition);
    rn_log_t *log = part ? part->log : NULL;
    int32_t leader_epoch = part ? part->leader_epoch : -1;
    if (log) rn_log_retain(log);
    pthread_rwlock_unlock(&b->topics_lock);
    if (!log) return 0; /* deleted meanwhile: nothing to mark */
    rn_buf_t buf;
    rn_buf_init(&buf, 4096);
    rn_batch_builder_t bb;
    int64_t now = rn_clock_wall_ms();
    rn_batch_builder_init(&bb, &buf, 0, 0, 4096);
    bb.producer_id = t->producer_id;
    bb.producer_epoch = t->epoch;
    bb.attributes |= RN_BATCH_ATTR_TRANSACTIONAL | RN_BATCH_ATTR_CONTROL;
    uint8_t key[4] = {0, 0, 0, (uint8_t)type}, value[6] = {0};
    rn_batch_builder_add(&bb, now, (rn_bytes_t){key, 4}, (rn_bytes_t){value, 6}, 0, NULL, NULL);
    uint64_t ticket = 0;
    rn_err_t rc = rn_batch_builder_finish(&bb);
    if (!rc) {
        rn_append_opts_t ao = {.leader_epoch = leader_epoch, .now_ms = now, .is_internal = true};
        rn_append_result_t ar;
        rc = rn_log_append(log, buf.data, buf.len, &ao, &ar);
        if (!rc) ticket = ar.sync_ticket;
    }
    if (rc)
        RN_ERROR("txn", "%s marker for %s in %s-%d failed: %s", type == RN_CONTROL_COMMIT ? "COMMIT" : "ABORT", t->id,
                 p->topic, p->partition, rn_err_name(rc));
    rn_buf_free(&buf);
    rn_log_release(log);
    return ticket;
}

/* ONGOING → PREPARE_x → markers → COMPLETE_x (lock held). Returns the highest sync ticket. */
static uint64_t end_txn_locked(rn_broker_t *b, txn_t *t, bool commit) {
    set_state(t, commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT);
    uint64_t ticket = 0;
    for (int32_t i = 0; i < t->nparts; i++) {
        uint64_t tk = write_marker(b, t, &t->parts[i], commit ? RN_CONTROL_COMMIT : RN_CONTROL_ABORT);
        if (tk > ticket) ticket = tk;
    }
    if (commit && t->noffsets > 0) {
        /* The offsets sent with the transaction become visible now, group by group. */
        for (int32_t g = 0; g < t->ngroups; g++) {
            rn_txn_offset_t *offs = calloc((size_t)t->noffsets, sizeof(*offs));
            int32_t n = 0;
            for (int32_t i = 0; offs && i < t->noffsets; i++) {
                const txn_offset_t *o = &t->offsets[i];
                if (strcmp(o->group, t->groups[g]) != 0) continue;
                offs[n++] = (rn_txn_offset_t){o->topic, o->partition, o->offset, o->leader_epoch, o->metadata,
                                              o->metadata_len};
            }
            uint64_t tk = 0;
            rn_err_t rc = offs ? rn_group_commit_txn_offsets(b, t->groups[g], offs, n, &tk) : RN_ERR_NOMEM;
            if (rc) RN_ERROR("txn", "%s: committing offsets of group %s failed: %s", t->id, t->groups[g], rn_err_name(rc));
            if (tk > ticket) ticket = tk;
            free(offs);
        }
    }
    RN_DEBUG("txn", "%s: %s, %d partition(s), epoch %d", t->id, commit ? "committed" : "aborted", t->nparts, t->epoch);
    set_state(t, commit ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT);
    rn_broker_wake_all(b); /* lazy mode: the last stable offset moved */
    return ticket;
}

int16_t rn_txn_init_producer_id(rn_broker_t *b, rn_str_t txn_id, int32_t timeout_ms, int64_t producer_id,
                                int16_t producer_epoch, int64_t *out_id, int16_t *out_epoch) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    *out_id = -1;
    *out_epoch = -1;
    if (txn_id.len <= 0) return RN_ERR_INVALID_REQUEST;
    if (timeout_ms <= 0 || timeout_ms > c->max_timeout_ms) return RN_ERR_INVALID_TRANSACTION_TIMEOUT;
    pthread_mutex_lock(&c->lock);
    txn_t *t = txn_get(c, txn_id);
    int16_t err = RN_OK;
    if (!t) {
        if (producer_id >= 0) {
            err = RN_ERR_INVALID_PRODUCER_ID_MAPPING; /* KIP-360 recovery of an id we do not know */
            goto out;
        }
        int64_t id = rn_broker_alloc_producer_id(b);
        t = calloc(1, sizeof(*t));
        char *name = t ? strndup(txn_id.ptr, (size_t)txn_id.len) : NULL;
        if (id < 0 || !t || !name || !rn_map_put(&c->txns, name, strlen(name), t)) {
            free(t);
            free(name);
            err = id < 0 ? RN_ERR_KAFKA_STORAGE_ERROR : RN_ERR_UNKNOWN_SERVER_ERROR;
            goto out;
        }
        t->id = name;
        t->producer_id = id;
        t->epoch = 0;
        t->state = TXN_EMPTY;
    } else {
        if (producer_id >= 0 && (producer_id != t->producer_id || producer_epoch != t->epoch)) {
            /* KIP-360: only the current producer may bump its own epoch; a retry of
             * a bump that already happened gets the same answer. */
            if (producer_id == t->producer_id && producer_epoch == t->epoch - 1 && t->state != TXN_ONGOING) {
                *out_id = t->producer_id;
                *out_epoch = t->epoch;
                t->timeout_ms = timeout_ms;
                goto out;
            }
            err = RN_ERR_PRODUCER_FENCED;
            goto out;
        }
        if (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT) {
            err = RN_ERR_CONCURRENT_TRANSACTIONS;
            goto out;
        }
        /* Fence whoever holds the current epoch. */
        if (t->epoch >= INT16_MAX - 1) {
            int64_t id = rn_broker_alloc_producer_id(b);
            if (id < 0) {
                err = RN_ERR_KAFKA_STORAGE_ERROR;
                goto out;
            }
            if (t->state == TXN_ONGOING) {
                t->epoch++; /* the abort markers carry an epoch above the zombie's */
                (void)end_txn_locked(b, t, false);
            }
            t->producer_id = id;
            t->epoch = 0;
        } else {
            t->epoch++;
            if (t->state == TXN_ONGOING) (void)end_txn_locked(b, t, false);
        }
        if (t->state != TXN_EMPTY) set_state(t, TXN_EMPTY);
    }
    t->timeout_ms = timeout_ms;
    t->last_update_ms = rn_clock_wall_ms();
    *out_id = t->producer_id;
    *out_epoch = t->epoch;
    assert_txn_state(t);
out:
    pthread_mutex_unlock(&c->lock);
    return err;
}

/* The producer's id and epoch against the entry (lock held). */
static int16_t check_producer(const txn_t *t, int64_t producer_id, int16_t producer_epoch, int16_t fenced) {
    if (!t) return RN_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (producer_id != t->producer_id) return RN_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (producer_epoch != t->epoch) return fenced;
    return RN_OK;
}

static bool has_partition(const txn_t *t, const char *topic, size_t len, int32_t partition) {
    for (int32_t i = 0; i < t->nparts; i++)
        if (t->parts[i].partition == partition && strlen(t->parts[i].topic) == len &&
            memcmp(t->parts[i].topic, topic, len) == 0)
            return true;
    return false;
}

int16_t rn_txn_check_produce(rn_broker_t *b, rn_str_t txn_id, int64_t producer_id, int16_t producer_epoch,
                             rn_str_t topic, int32_t partition) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    pthread_mutex_lock(&c->lock);
    txn_t *t = txn_get(c, txn_id);
    int16_t err = check_producer(t, producer_id, producer_epoch, RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err && (t->state != TXN_ONGOING || !has_partition(t, topic.ptr, (size_t)topic.len, partition)))
        err = RN_ERR_INVALID_TXN_STATE;
    pthread_mutex_unlock(&c->lock);
    return err;
}

static bool has_group(const txn_t *t, const char *group, size_t len) {
    for (int32_t i = 0; i < t->ngroups; i++)
        if (strlen(t->groups[i]) == len && memcmp(t->groups[i], group, len) == 0) return true;
    return false;
}

static bool grow_array(void **arr, int32_t *cap, int32_t n, size_t elem) {
    if (n < *cap) return true;
    int32_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p) return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static int16_t add_partition_locked(txn_t *t, const char *topic, size_t len, int32_t partition) {
    if (has_partition(t, topic, len, partition)) return RN_OK;
    if (t->nparts >= TXN_PARTITIONS_MAX) return RN_ERR_INVALID_REQUEST;
    if (t->nparts == t->parts_cap) {
        int32_t cap = t->parts_cap ? t->parts_cap * 2 : 8;
        txn_partition_t *n = realloc(t->parts, (size_t)cap * sizeof(*n));
        if (!n) return RN_ERR_UNKNOWN_SERVER_ERROR;
        t->parts = n;
        t->parts_cap = cap;
    }
    char *name = strndup(topic, len);
    if (!name) return RN_ERR_UNKNOWN_SERVER_ERROR;
    t->parts[t->nparts++] = (txn_partition_t){name, partition};
    return RN_OK;
}

/* ---- AddPartitionsToTxn -------------------------------------------------- */

/* One transaction's topics: per-partition results; returns the error for all of them, if any. */
static void add_partitions(rn_broker_t *b, rn_arena_t *a, int16_t version, rn_str_t txn_id, int64_t pid,
                           int16_t epoch, int32_t ntopics,
                           const rn_AddPartitionsToTxnRequest_AddPartitionsToTxnTopic_t *topics,
                           rn_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_t **out, int32_t *nout) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    ntopics = ntopics > 0 ? ntopics : 0;
    rn_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_t *res = rn_arena_calloc(a, (size_t)ntopics + 1, sizeof(*res));
    *out = res;
    *nout = res ? ntopics : 0;
    if (!res) return;
    /* First pass: which partitions exist (UNKNOWN_TOPIC_OR_PARTITION fails the whole request). */
    bool any_unknown = false;
    pthread_rwlock_rdlock(&b->topics_lock);
    for (int32_t i = 0; i < ntopics; i++) {
        const rn_AddPartitionsToTxnRequest_AddPartitionsToTxnTopic_t *tp = &topics[i];
        rn_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_init(&res[i]);
        res[i].Name = tp->Name;
        int32_t np = tp->Partitions_count > 0 ? tp->Partitions_count : 0;
        res[i].ResultsByPartition = rn_arena_calloc(a, (size_t)np + 1, sizeof(*res[i].ResultsByPartition));
        res[i].ResultsByPartition_count = res[i].ResultsByPartition ? np : 0;
        rn_topic_t *tt = tp->Name.len > 0 ? rn_broker_topic_locked(b, tp->Name.ptr, (size_t)tp->Name.len) : NULL;
        for (int32_t j = 0; j < res[i].ResultsByPartition_count; j++) {
            rn_AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult_init(&res[i].ResultsByPartition[j]);
            res[i].ResultsByPartition[j].PartitionIndex = tp->Partitions[j];
            bool ok = tt && tp->Partitions[j] >= 0 && tp->Partitions[j] < tt->partition_count;
            res[i].ResultsByPartition[j].PartitionErrorCode = ok ? 0 : RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (!ok) any_unknown = true;
        }
    }
    pthread_rwlock_unlock(&b->topics_lock);
    int16_t err = RN_OK;
    pthread_mutex_lock(&c->lock);
    txn_t *t = txn_get(c, txn_id);
    err = check_producer(t, pid, epoch, version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err && (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT)) err = RN_ERR_CONCURRENT_TRANSACTIONS;
    if (!err && any_unknown) err = RN_ERR_OPERATION_NOT_ATTEMPTED;
    if (!err) {
        for (int32_t i = 0; i < *nout && !err; i++)
            for (int32_t j = 0; j < res[i].ResultsByPartition_count && !err; j++)
                err = add_partition_locked(t, res[i].Name.ptr, (size_t)res[i].Name.len,
                                           res[i].ResultsByPartition[j].PartitionIndex);
        if (t->nparts > 0 && t->state != TXN_ONGOING) {
            t->start_ms = rn_clock_wall_ms();
            set_state(t, TXN_ONGOING);
        }
        t->last_update_ms = rn_clock_wall_ms();
    }
    pthread_mutex_unlock(&c->lock);
    if (err)
        for (int32_t i = 0; i < *nout; i++)
            for (int32_t j = 0; j < res[i].ResultsByPartition_count; j++)
                if (!(err == RN_ERR_OPERATION_NOT_ATTEMPTED && res[i].ResultsByPartition[j].PartitionErrorCode))
                    res[i].ResultsByPartition[j].PartitionErrorCode = err;
}

void rn_h_add_partitions_to_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_AddPartitionsToTxnRequest_t rq;
    rn_AddPartitionsToTxnRequest_init(&rq);
    rn_err_t rc = rn_AddPartitionsToTxnRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_AddPartitionsToTxnResponse_t resp;
    rn_AddPartitionsToTxnResponse_init(&resp);
    if (h->api_version <= 3) {
        add_partitions(b, a, h->api_version, rq.V3AndBelowTransactionalId, rq.V3AndBelowProducerId,
                       rq.V3AndBelowProducerEpoch, rq.V3AndBelowTopics_count, rq.V3AndBelowTopics,
                       &resp.ResultsByTopicV3AndBelow, &resp.ResultsByTopicV3AndBelow_count);
    } else {
        int32_t n = rq.Transactions_count > 0 ? rq.Transactions_count : 0;
        resp.ResultsByTransaction = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp.ResultsByTransaction));
        resp.ResultsByTransaction_count = resp.ResultsByTransaction ? n : 0;
        for (int32_t i = 0; i < resp.ResultsByTransaction_count; i++) {
            const rn_AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction_t *tx = &rq.Transactions[i];
            rn_AddPartitionsToTxnResponse_AddPartitionsToTxnResult_init(&resp.ResultsByTransaction[i]);
            resp.ResultsByTransaction[i].TransactionalId = tx->TransactionalId;
            add_partitions(b, a, h->api_version, tx->TransactionalId, tx->ProducerId, tx->ProducerEpoch,
                           tx->Topics_count, tx->Topics, &resp.ResultsByTransaction[i].TopicResults,
                           &resp.ResultsByTransaction[i].TopicResults_count);
        }
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_AddPartitionsToTxnResponse_encode, &resp);
}

/* ---- EndTxn -------------------------------------------------------------- */

typedef struct {
    rn_wait_t w; /* first: the wait is the context */
    rn_req_t *req;
    rn_req_header_t h;
    rn_EndTxnResponse_t resp;
} end_ctx_t;

static void end_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    end_ctx_t *ec = (end_ctx_t *)w;
    rn_broker_unpark(w->ctx, w);
    if (timed_out || err) ec->resp.ErrorCode = RN_ERR_KAFKA_STORAGE_ERROR;
    rn_broker_respond(b, ec->req, &ec->h, (rn_encode_fn)rn_EndTxnResponse_encode, &ec->resp);
}

void rn_h_end_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_EndTxnRequest_t rq;
    rn_EndTxnRequest_init(&rq);
    rn_err_t rc = rn_EndTxnRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    end_ctx_t *ec = rn_arena_calloc(a, 1, sizeof(*ec));
    if (!ec) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    ec->req = req;
    ec->h = *h;
    rn_EndTxnResponse_init(&ec->resp);
    ec->resp.ProducerId = -1;
    ec->resp.ProducerEpoch = -1;
    rn_txn_coordinator_t *c = b->txn_coordinator;
    uint64_t ticket = 0;
    pthread_mutex_lock(&c->lock);
    txn_t *t = txn_get(c, rq.TransactionalId);
    int16_t err = check_producer(t, rq.ProducerId, rq.ProducerEpoch,
                                 h->api_version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err) {
        switch (t->state) {
        case TXN_ONGOING: ticket = end_txn_locked(b, t, rq.Committed); break;
        case TXN_COMPLETE_COMMIT: /* a retry of what was done answers OK */
        case TXN_COMPLETE_ABORT:
            if ((t->state == TXN_COMPLETE_COMMIT) != rq.Committed) err = RN_ERR_INVALID_TXN_STATE;
            break;
        case TXN_PREPARE_COMMIT:
        case TXN_PREPARE_ABORT: err = RN_ERR_CONCURRENT_TRANSACTIONS; break;
        case TXN_EMPTY:
        case TXN_DEAD: err = RN_ERR_INVALID_TXN_STATE; break;
        }
    }
    if (!err) {
        ec->resp.ProducerId = t->producer_id;
        ec->resp.ProducerEpoch = t->epoch;
    }
    pthread_mutex_unlock(&c->lock);
    ec->resp.ErrorCode = err;
    if (err && h->api_key >= 0) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
    if (ticket && rn_logdir_synced_ticket(b->logdir) < ticket && !rn_logdir_offline(b->logdir)) {
        rn_broker_loop_t *bl = rn_broker_loop_for(b, req->loop);
        ec->w.sync_ticket = ticket;
        ec->w.resume = end_resume;
        rn_broker_park(bl, &ec->w, -1);
        /* The flusher may have published the ticket between the check and the park. */
        if (rn_logdir_synced_ticket(b->logdir) >= ticket || rn_logdir_offline(b->logdir))
            end_resume(b, &ec->w, false, rn_logdir_offline(b->logdir) ? RN_ERR_KAFKA_STORAGE_ERROR : RN_OK);
        return;
    }
    if (ticket && rn_logdir_offline(b->logdir)) ec->resp.ErrorCode = RN_ERR_KAFKA_STORAGE_ERROR;
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_EndTxnResponse_encode, &ec->resp);
}

/* ---- AddOffsetsToTxn ----------------------------------------------------- */

void rn_h_add_offsets_to_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_AddOffsetsToTxnRequest_t rq;
    rn_AddOffsetsToTxnRequest_init(&rq);
    rn_err_t rc = rn_AddOffsetsToTxnRequest_decode(body, h->api_version, &req->arena, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_AddOffsetsToTxnResponse_t resp;
    rn_AddOffsetsToTxnResponse_init(&resp);
    rn_txn_coordinator_t *c = b->txn_coordinator;
    pthread_mutex_lock(&c->lock);
    txn_t *t = txn_get(c, rq.TransactionalId);
    int16_t err = check_producer(t, rq.ProducerId, rq.ProducerEpoch,
                                 h->api_version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err && rq.GroupId.len <= 0) err = RN_ERR_INVALID_GROUP_ID;
    if (!err && (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT)) err = RN_ERR_CONCURRENT_TRANSACTIONS;
    if (!err && !has_group(t, rq.GroupId.ptr, (size_t)rq.GroupId.len)) {
        char *g = strndup(rq.GroupId.ptr, (size_t)rq.GroupId.len);
        if (!g || t->ngroups >= TXN_PARTITIONS_MAX ||
            !grow_array((void **)&t->groups, &t->groups_cap, t->ngroups, sizeof(*t->groups))) {
            free(g);
            err = RN_ERR_UNKNOWN_SERVER_ERROR;
        } else {
            t->groups[t->ngroups++] = g;
        }
    }
    if (!err && t->state != TXN_ONGOING) {
        t->start_ms = rn_clock_wall_ms();
        set_state(t, TXN_ONGOING);
    }
    if (t) assert_txn_state(t);
    pthread_mutex_unlock(&c->lock);
    resp.ErrorCode = err;
    if (err && h->api_key >= 0) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_AddOffsetsToTxnResponse_encode, &resp);
}

/* ---- TxnOffsetCommit ----------------------------------------------------- */

/* Stores (or replaces) one pending offset (lock held). */
static int16_t put_offset_locked(txn_t *t, rn_str_t group, rn_str_t topic,
                                 const rn_TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition_t *pp,
                                 int16_t version) {
    txn_offset_t *o = NULL;
    for (int32_t i = 0; i < t->noffsets && !o; i++) {
        txn_offset_t *x = &t->offsets[i];
        if (x->partition == pp->PartitionIndex && strlen(x->group) == (size_t)group.len &&
            memcmp(x->group, group.ptr, (size_t)group.len) == 0 && strlen(x->topic) == (size_t)topic.len &&
            memcmp(x->topic, topic.ptr, (size_t)topic.len) == 0)
            o = x;
    }
    int32_t mdl = pp->CommittedMetadata.len > 0 ? pp->CommittedMetadata.len : 0;
    char *md = malloc((size_t)mdl + 1);
    if (!md) return RN_ERR_UNKNOWN_SERVER_ERROR;
    if (mdl) memcpy(md, pp->CommittedMetadata.ptr, (size_t)mdl);
    md[mdl] = 0;
    if (!o) {
        if (t->noffsets >= TXN_PARTITIONS_MAX ||
            !grow_array((void **)&t->offsets, &t->offsets_cap, t->noffsets, sizeof(*t->offsets))) {
            free(md);
            return RN_ERR_UNKNOWN_SERVER_ERROR;
        }
        char *g = strndup(group.ptr, (size_t)group.len), *tp = strndup(topic.ptr, (size_t)topic.len);
        if (!g || !tp) {
            free(g);
            free(tp);
            free(md);
            return RN_ERR_UNKNOWN_SERVER_ERROR;
        }
        o = &t->offsets[t->noffsets++];
        *o = (txn_offset_t){.group = g, .topic = tp, .partition = pp->PartitionIndex};
    } else {
        free(o->metadata);
    }
    o->offset = pp->CommittedOffset;
    o->leader_epoch = version >= 2 ? pp->CommittedLeaderEpoch : -1;
    o->metadata = md;
    o->metadata_len = mdl;
    return RN_OK;
}

void rn_h_txn_offset_commit(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_TxnOffsetCommitRequest_t rq;
    rn_TxnOffsetCommitRequest_init(&rq);
    rn_err_t rc = rn_TxnOffsetCommitRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_TxnOffsetCommitResponse_t resp;
    rn_TxnOffsetCommitResponse_init(&resp);
    int32_t nt = rq.Topics_count > 0 ? rq.Topics_count : 0;
    resp.Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp.Topics));
    if (!resp.Topics) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Topics_count = nt;
    rn_txn_coordinator_t *c = b->txn_coordinator;
    pthread_mutex_lock(&c->lock);
    txn_t *t = txn_get(c, rq.TransactionalId);
    int16_t err = check_producer(t, rq.ProducerId, rq.ProducerEpoch,
                                 h->api_version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err && (t->state != TXN_ONGOING || !has_group(t, rq.GroupId.ptr, (size_t)(rq.GroupId.len > 0 ? rq.GroupId.len : 0))))
        err = RN_ERR_INVALID_TXN_STATE; /* AddOffsetsToTxn first */
    for (int32_t i = 0; i < nt; i++) {
        const rn_TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic_t *tp = &rq.Topics[i];
        rn_TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic_t *rt = &resp.Topics[i];
        rn_TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic_init(rt);
        rt->Name = tp->Name;
        int32_t np = tp->Partitions_count > 0 ? tp->Partitions_count : 0;
        rt->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*rt->Partitions));
        rt->Partitions_count = rt->Partitions ? np : 0;
        for (int32_t j = 0; j < rt->Partitions_count; j++) {
            const rn_TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition_t *pp = &tp->Partitions[j];
            rn_TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition_init(&rt->Partitions[j]);
            rt->Partitions[j].PartitionIndex = pp->PartitionIndex;
            int16_t e = err;
            if (!e && tp->Name.len <= 0) e = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (!e && pp->CommittedMetadata.len > 4096) e = RN_ERR_OFFSET_METADATA_TOO_LARGE;
            if (!e) e = put_offset_locked(t, rq.GroupId, tp->Name, pp, h->api_version);
            rt->Partitions[j].ErrorCode = e;
            if (e && h->api_key >= 0) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
        }
    }
    if (t) assert_txn_state(t);
    pthread_mutex_unlock(&c->lock);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_TxnOffsetCommitResponse_encode, &resp);
}

bool rn_txn_offset_pending(rn_broker_t *b, rn_str_t group_id, rn_str_t topic, int32_t partition) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    if (!c || group_id.len <= 0 || topic.len <= 0) return false;
    bool found = false;
    pthread_mutex_lock(&c->lock);
    size_t it = 0;
    const char *key;
    void *v;
    while (!found && rn_map_next(&c->txns, &it, &key, &v)) {
        const txn_t *t = v;
        for (int32_t i = 0; i < t->noffsets && !found; i++) {
            const txn_offset_t *o = &t->offsets[i];
            found = o->partition == partition && strlen(o->group) == (size_t)group_id.len &&
                    memcmp(o->group, group_id.ptr, (size_t)group_id.len) == 0 && strlen(o->topic) == (size_t)topic.len &&
                    memcmp(o->topic, topic.ptr, (size_t)topic.len) == 0;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}
