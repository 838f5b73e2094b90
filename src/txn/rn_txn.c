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
 * State machine (Kafka's TransactionState; every arrow is a record written to
 * __transaction_state before the client hears of it):
 *
 *            InitProducerId                AddPartitionsToTxn / AddOffsetsToTxn
 *   (none) ──────────────────▶ EMPTY ─────────────────────────▶ ONGOING ◀──┐
 *                                ▲                                │  │      │ AddPartitionsToTxn
 *                                │                 EndTxn(commit) │  │      │
 *                                │                ┌───────────────┘  └──────┤ EndTxn(abort), timeout,
 *                                │                ▼                         ▼ InitProducerId (fencing)
 *                                │         PREPARE_COMMIT             PREPARE_ABORT
 *                                │                │ synced, then              │ markers written
 *                                │                │ markers written           │
 *                                │                ▼                         ▼
 *                                │         COMPLETE_COMMIT            COMPLETE_ABORT
 *                                │                │                         │
 *                                └─InitProducerId─┴─ AddPartitionsToTxn ────┴──▶ ONGOING
 *
 *   EMPTY / COMPLETE_* ──(idle past transactional.id.expiration.ms)──▶ DEAD
 *   (a tombstone; the entry is forgotten). transition_ok() lists the arrows;
 *   set_state() asserts them and assert_txn_state() the invariants.
 *
 * Why PREPARE_COMMIT is replicated before any COMMIT marker: once one partition
 * holds a COMMIT marker, the transaction must commit everywhere. If the
 * prepare record could be lost while a marker survived, the next coordinator would find
 * the transaction ONGOING and abort it — half committed, half aborted. Aborts
 * need no such wait: any state that survives a crash ends in an abort.
 *
 * Durability and loading. Records go to partition abs(javaHash(id)) % n of
 * __transaction_state (transaction.state.log.num.partitions), in Kafka's
 * layouts (rn_txn_log.c), through the internal-topic helper the group
 * coordinator uses too (rn_itopic.c), and are answered once replicated. This
 * node coordinates the ids of the partitions it leads: the reaper thread loads
 * and unloads them as leadership moves (like the group coordinator). Loading
 * a partition replays every record, the newest per id winning, tombstones
 * deleting; then:
 *
 *   state found when loading    what is done
 *   -------------------------   ---------------------------------------------
 *   EMPTY, COMPLETE_*           restored as is
 *   ONGOING                     restored with its start time: the reaper aborts
 *                               it once transaction.timeout.ms has passed
 *   PREPARE_COMMIT / _ABORT     finished: markers written to every partition,
 *                               then COMPLETE_COMMIT / _ABORT written
 *   unparsable record           skipped, counted, warned
 *
 * Markers: a control batch (producer id, the epoch, attributes
 * transactional|control, one record with key {version 0, type 0 ABORT | 1
 * COMMIT} and value {version 0, coordinatorEpoch}) in every partition of the
 * transaction. They go to each partition's leader (WriteTxnMarkers,
 * rn_h_markers.c, or a local append) from the reaper thread, retried until
 * every one is written and replicated; then COMPLETE_x is written and the
 * parked EndTxn answered. A PREPARE_x found when loading a partition is
 * finished the same way.
 *
 * Locking: one mutex for the table; appends take the topics lock (shared)
 * and each log's lock below it. Waits for replication happen outside the lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_assert.h"
#include "rn_batch.h"
#include "rn_client.h"
#include "rn_clock.h"
#include "rn_cluster.h"
#include "rn_group.h"
#include "rn_itopic.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"
#include "rn_txn.h"
#include "rn_txn_log.h"

#define TXN_PARTITIONS_MAX 100000 /* partitions in one transaction */
#define RN_TXN_REAP_INTERVAL_MS 1000 /* how often timed-out transactions and idle ids are looked for */
#define RN_TXN_MARKER_RETRY_MS 200   /* markers not written yet are sent again after this */
#define RN_TXN_MARKER_TIMEOUT_MS 5000 /* one round of WriteTxnMarkers */
#define RN_TXN_MARKER_BATCH 256       /* transactions completed per round */
#define RN_TXN_CLIENTS_MAX 64         /* connections to other nodes kept by the marker sender */
#define RN_TXN_SEGMENT_BYTES "104857600" /* Kafka's transaction.state.log.segment.bytes */

typedef rn_txn_state_t txn_state_t;
#define TXN_EMPTY RN_TXN_EMPTY
#define TXN_ONGOING RN_TXN_ONGOING
#define TXN_PREPARE_COMMIT RN_TXN_PREPARE_COMMIT
#define TXN_PREPARE_ABORT RN_TXN_PREPARE_ABORT
#define TXN_COMPLETE_COMMIT RN_TXN_COMPLETE_COMMIT
#define TXN_COMPLETE_ABORT RN_TXN_COMPLETE_ABORT
#define TXN_DEAD RN_TXN_DEAD

typedef rn_txn_tp_t txn_partition_t;

typedef struct {
    char *id;
    int32_t log_partition; /* of __transaction_state */
    int64_t producer_id;
    int16_t epoch;
    int32_t timeout_ms;
    txn_state_t state;
    int64_t start_ms;       /* wall clock at the first partition of the current transaction */
    int64_t last_update_ms;
    txn_partition_t *parts; /* AddOffsetsToTxn adds the group's __consumer_offsets partition */
    int32_t nparts, parts_cap;
    bool markers; /* in PREPARE_x with the prepare durable; the markers may go out */
} txn_t;

struct rn_txn_coordinator {
    pthread_mutex_t lock;
    rn_map_t txns; /* transactional id -> txn_t* */
    int64_t max_timeout_ms;
    int64_t id_expiration_ms;
    rn_broker_t *broker;
    rn_itopic_t stopic; /* __transaction_state */
    /* The reaper thread: aborts transactions past their timeout, expires idle ids. */
    pthread_t reaper;
    bool reaper_started, stopping;
    pthread_cond_t wake;
    /* The partitions of __transaction_state coordinated here (the reaper
     * thread loads and unloads them and sends the markers). */
    rn_iowner_t owned;
    bool markers_pending;
    struct { int32_t node; rn_client_t *cl; } clients[RN_TXN_CLIENTS_MAX]; /* to partition leaders */
    int32_t nclients;
};

static txn_t *txn_get(rn_txn_coordinator_t *c, rn_str_t id);

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
    /* Only an open transaction (or one finishing) has partitions; an ONGOING one has some. */
    bool open = t->state == TXN_ONGOING || t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT;
    RN_ASSERT(open || t->nparts == 0);
    RN_ASSERT(t->state != TXN_ONGOING || t->nparts > 0);
    RN_ASSERT(t->nparts <= t->parts_cap);
}

static void clear_txn_contents(txn_t *t) {
    for (int32_t i = 0; i < t->nparts; i++) free(t->parts[i].topic);
    t->nparts = 0;
}

static void set_state(txn_t *t, txn_state_t to) {
    RN_ASSERT(transition_ok(t->state, to));
    t->state = to;
    t->last_update_ms = rn_clock_wall_ms();
    if (to == TXN_COMPLETE_COMMIT || to == TXN_COMPLETE_ABORT) clear_txn_contents(t);
    assert_txn_state(t);
}

/* Writes t's current state (a tombstone for DEAD) to __transaction_state
 * (lock held); *d gains what makes the record durable. */
static rn_err_t persist_locked(rn_txn_coordinator_t *c, const txn_t *t, rn_durable_t *d) {
    rn_irecords_t r;
    rn_irecords_init(&r, -1, -1);
    rn_txn_log_key(&r.scratch, rn_str_from_cstr(t->id));
    size_t kl = r.scratch.len;
    bool tombstone = t->state == TXN_DEAD;
    rn_err_t rc = RN_OK;
    if (!tombstone) {
        rn_txn_record_t v = {t->producer_id, t->epoch,     t->timeout_ms, t->state, t->last_update_ms,
                             t->start_ms,    t->parts,     t->nparts};
        rc = rn_txn_log_value(&r.scratch, &v);
    }
    if (!rc) {
        rn_irecords_add(&r, kl, tombstone);
        rc = rn_irecords_append(&c->stopic, t->log_partition, &r, d);
    }
    rn_irecords_free(&r);
    if (rc) {
        RN_WARN("txn", "%s: writing state %s to %s failed: %s", t->id, rn_txn_state_name(t->state), RN_TXN_STATE_TOPIC,
                rn_err_name(rc));
        return rc;
    }
    return RN_OK;
}

/* set_state, then the record. */
static rn_err_t transition_locked(rn_txn_coordinator_t *c, txn_t *t, txn_state_t to, rn_durable_t *d) {
    set_state(t, to);
    return persist_locked(c, t, d);
}

/* A transition nobody waits for (the reaper, the marker sender). */
static rn_err_t transition_nowait_locked(rn_txn_coordinator_t *c, txn_t *t, txn_state_t to) {
    rn_durable_t d;
    rn_durable_init(&d);
    rn_err_t rc = transition_locked(c, t, to, &d);
    rn_durable_release(&d);
    return rc;
}

static void free_txn(txn_t *t) {
    clear_txn_contents(t);
    free(t->parts);
    free(t->id);
    free(t);
}

static void complete_txn_locked(rn_txn_coordinator_t *c, txn_t *t);

/* ONGOING → PREPARE_ABORT → markers → COMPLETE_ABORT, with no wait between
 * (see the top: an abort needs none); *d gains what PREPARE_ABORT waits for. */
static void abort_txn_locked(rn_txn_coordinator_t *c, txn_t *t, rn_durable_t *d) {
    (void)transition_locked(c, t, TXN_PREPARE_ABORT, d);
    complete_txn_locked(c, t);
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
            rn_durable_t d;
            rn_durable_init(&d);
            abort_txn_locked(c, t, &d);
            rn_durable_release(&d);
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
        if (transition_nowait_locked(c, dead, TXN_DEAD)) break; /* try again next pass */
        RN_INFO("txn", "%s: idle for more than transactional.id.expiration.ms; expired", dead->id);
        rn_map_del(&c->txns, dead->id, strlen(dead->id));
        free_txn(dead);
    }
}

static void apply_leadership_locked(rn_txn_coordinator_t *c);
static void send_markers_locked(rn_txn_coordinator_t *c);

static void *reaper_main(void *arg) {
    rn_txn_coordinator_t *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        if (c->owned.dirty) apply_leadership_locked(c);
        reap_locked(c, rn_clock_wall_ms());
        if (c->markers_pending) send_markers_locked(c);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait_ms = c->markers_pending ? RN_TXN_MARKER_RETRY_MS : RN_TXN_REAP_INTERVAL_MS;
        if (c->owned.dirty) wait_ms = 0;
        int64_t ns = (int64_t)ts.tv_nsec + wait_ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- replay ------------------------------------------------------------- */

typedef struct {
    rn_txn_coordinator_t *c;
    int64_t bad;
} replay_ctx_t;

static void replay_record(void *ctx, int32_t partition, const rn_batch_header_t *h, const rn_record_t *rec) {
    replay_ctx_t *x = ctx;
    rn_txn_coordinator_t *c = x->c;
    if (rn_batch_is_control(h)) return;
    rn_str_t id;
    if (rn_txn_log_parse_key(rec->key, &id)) {
        x->bad++;
        return;
    }
    txn_t *t = rn_map_get(&c->txns, id.ptr, (size_t)id.len);
    rn_txn_record_t v = {0};
    bool forget = rec->value.len < 0;
    if (!forget) {
        if (rn_txn_log_parse_value(rec->value, TXN_PARTITIONS_MAX, &v) || v.producer_id < 0 || v.producer_epoch < 0) {
            rn_txn_record_free(&v);
            x->bad++;
            return;
        }
        forget = v.state == TXN_DEAD;
    }
    if (forget) {
        if (t) {
            rn_map_del(&c->txns, t->id, strlen(t->id));
            free_txn(t);
        }
        rn_txn_record_free(&v);
        return;
    }
    if (!t) {
        t = calloc(1, sizeof(*t));
        char *name = t ? strndup(id.ptr, (size_t)id.len) : NULL;
        if (!t || !name || !rn_map_put(&c->txns, name, strlen(name), t)) {
            free(t);
            free(name);
            rn_txn_record_free(&v);
            x->bad++;
            return;
        }
        t->id = name;
    }
    clear_txn_contents(t);
    free(t->parts);
    t->log_partition = partition;
    t->producer_id = v.producer_id;
    t->epoch = v.producer_epoch;
    t->timeout_ms = v.timeout_ms;
    t->state = v.state;
    t->last_update_ms = v.last_update_ms;
    t->start_ms = v.start_ms;
    t->parts = v.parts; /* taken over */
    t->nparts = t->parts_cap = v.nparts;
    bool open = t->state == TXN_ONGOING || t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT;
    if (!open) clear_txn_contents(t);
    if (t->state == TXN_ONGOING && t->nparts == 0) t->state = TXN_EMPTY; /* nothing was written in it */
}

/* ---- partitions led here, markers to their leaders ---------------------- */

/* Lock held: the transactional ids of a partition leave memory. */
static void unload_partition_locked(rn_txn_coordinator_t *c, int32_t partition) {
    size_t n = 0;
    for (;;) { /* deleting while iterating is not allowed: one at a time */
        txn_t *gone = NULL;
        size_t it = 0;
        const char *key;
        void *v;
        while (!gone && rn_map_next(&c->txns, &it, &key, &v))
            if (((txn_t *)v)->log_partition == partition) gone = v;
        if (!gone) break;
        rn_map_del(&c->txns, gone->id, strlen(gone->id));
        free_txn(gone);
        n++;
    }
    RN_INFO("txn", "%s-%d: no longer led here; unloaded %zu transactional id(s)", RN_TXN_STATE_TOPIC, partition, n);
}

/* Lock held: replay one partition; what was left in PREPARE_x is finished. */
static void load_partition_locked(rn_txn_coordinator_t *c, int32_t partition, int32_t epoch) {
    int64_t t0 = rn_clock_mono_ns(), records = 0;
    replay_ctx_t x = {.c = c};
    rn_itopic_replay_partition(&c->stopic, partition, replay_record, &x, &records);
    if (x.bad) RN_WARN("txn", "replay of %s-%d skipped %lld unreadable record(s)", RN_TXN_STATE_TOPIC, partition,
                       (long long)x.bad);
    size_t it = 0, n = 0, prepared = 0;
    const char *key;
    void *v;
    while (rn_map_next(&c->txns, &it, &key, &v)) {
        txn_t *t = v;
        if (t->log_partition != partition) continue;
        n++;
        if (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT) {
            RN_INFO("txn", "%s: was in %s at shutdown; writing its markers", t->id, rn_txn_state_name(t->state));
            t->markers = true;
            c->markers_pending = true;
            prepared++;
        }
    }
    RN_INFO("txn", "%s-%d: leader at epoch %d; loaded %zu transactional id(s) from %lld record(s) in %lld ms, "
            "%zu to finish", RN_TXN_STATE_TOPIC, partition, epoch, n, (long long)records,
            (long long)((rn_clock_mono_ns() - t0) / 1000000), prepared);
}

static void unload_cb(void *c, int32_t partition) { unload_partition_locked(c, partition); }
static void load_cb(void *c, int32_t partition, int32_t epoch) { load_partition_locked(c, partition, epoch); }
static void apply_leadership_locked(rn_txn_coordinator_t *c) { rn_iowner_apply(&c->owned, unload_cb, load_cb, c); }

void rn_txn_coordinator_follow(rn_broker_t *b) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    if (!c) return;
    int32_t n;
    int32_t *want = rn_itopic_led_epochs(&c->stopic, &n);
    if (!want) return;
    pthread_mutex_lock(&c->lock);
    if (rn_iowner_update(&c->owned, &c->stopic, want, n)) pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    free(want);
}

/* One transaction whose markers go out this round (copied: sent without the lock). */
typedef struct {
    char *id;
    int64_t producer_id;
    int16_t epoch;
    bool commit;
    int32_t coordinator_epoch;
    txn_partition_t *parts; /* borrowed topic names, copied below */
    int32_t nparts;
    bool ok;
} marker_job_t;

static rn_client_t *client_for(rn_txn_coordinator_t *c, int32_t node) {
    for (int32_t i = 0; i < c->nclients; i++)
        if (c->clients[i].node == node) return c->clients[i].cl;
    char host[256];
    int port;
    if (!rn_cluster_broker_address(c->broker, node, NULL, host, sizeof(host), &port)) return NULL;
    if (c->nclients == RN_TXN_CLIENTS_MAX) {
        rn_client_free(c->clients[0].cl); /* the oldest goes */
        memmove(&c->clients[0], &c->clients[1], (size_t)(c->nclients - 1) * sizeof(c->clients[0]));
        c->nclients--;
    }
    rn_client_config_t cc = {.host = host, .port = port, .client_id = "runnel-txn-markers",
                             .timeout_ms = RN_TXN_MARKER_TIMEOUT_MS};
    rn_client_t *cl;
    if (rn_client_new(&cc, &cl) != RN_OK) return NULL;
    c->clients[c->nclients].node = node;
    c->clients[c->nclients++].cl = cl;
    return cl;
}

/* This node leads the partition: append, then wait (bounded) for the high watermark. */
static bool marker_local(rn_broker_t *b, const marker_job_t *j, const txn_partition_t *p) {
    rn_durable_t d;
    rn_durable_init(&d);
    rn_err_t rc = rn_txn_append_marker(b, rn_str_from_cstr(p->topic), p->partition, j->producer_id, j->epoch,
                                       j->commit, j->coordinator_epoch, &d);
    int64_t deadline = rn_clock_mono_ms() + RN_TXN_MARKER_TIMEOUT_MS;
    while (!rc) {
        rc = rn_durable_check(b, &d);
        if (rc != RN_ERR_AGAIN || rn_clock_mono_ms() >= deadline || atomic_load(&b->stopping)) break;
        rc = RN_OK;
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
    rn_durable_release(&d);
    if (rc) RN_DEBUG("txn", "marker for %s-%d here: %s (retrying)", p->topic, p->partition, rn_err_name(rc));
    return rc == RN_OK;
}

/* Another node leads the partition: WriteTxnMarkers (v1), answered once replicated there. */
static bool marker_remote(rn_txn_coordinator_t *c, int32_t node, const marker_job_t *j, const txn_partition_t *p,
                          rn_arena_t *a) {
    rn_client_t *cl = client_for(c, node);
    if (!cl) return false;
    rn_WriteTxnMarkersRequest_t rq;
    rn_WriteTxnMarkersRequest_init(&rq);
    rn_WriteTxnMarkersRequest_WritableTxnMarker_t *m = rn_arena_calloc(a, 1, sizeof(*m));
    rn_WriteTxnMarkersRequest_WritableTxnMarkerTopic_t *t = rn_arena_calloc(a, 1, sizeof(*t));
    int32_t *idx = rn_arena_calloc(a, 1, sizeof(*idx));
    if (!m || !t || !idx) return false;
    rn_WriteTxnMarkersRequest_WritableTxnMarker_init(m);
    rn_WriteTxnMarkersRequest_WritableTxnMarkerTopic_init(t);
    m->ProducerId = j->producer_id;
    m->ProducerEpoch = j->epoch;
    m->TransactionResult = j->commit;
    m->CoordinatorEpoch = j->coordinator_epoch;
    t->Name = rn_str_from_cstr(p->topic);
    *idx = p->partition;
    t->PartitionIndexes = idx;
    t->PartitionIndexes_count = 1;
    m->Topics = t;
    m->Topics_count = 1;
    rq.Markers = m;
    rq.Markers_count = 1;
    rn_buf_t body, out;
    rn_buf_init(&body, (size_t)1 << 20);
    rn_buf_init(&out, (size_t)1 << 20);
    rn_WriteTxnMarkersRequest_encode(&body, 1, &rq);
    rn_err_t rc = rn_buf_err(&body) ? RN_ERR_LIMIT : rn_client_call(cl, RN_API_WRITE_TXN_MARKERS, 1, &body, &out);
    rn_WriteTxnMarkersResponse_t resp;
    if (!rc) {
        rn_reader_t r;
        rn_reader_init(&r, out.data, out.len);
        rc = rn_WriteTxnMarkersResponse_decode(&r, 1, a, &resp);
    }
    bool ok = !rc && resp.Markers_count == 1 && resp.Markers[0].Topics_count == 1 &&
              resp.Markers[0].Topics[0].Partitions_count == 1 && resp.Markers[0].Topics[0].Partitions[0].ErrorCode == 0;
    if (!ok)
        RN_DEBUG("txn", "WriteTxnMarkers to node %d for %s-%d: %s", node, p->topic, p->partition,
                 rc ? rn_err_name(rc) : "refused (retrying)");
    rn_buf_free(&body);
    rn_buf_free(&out);
    return ok;
}

static bool send_job(rn_txn_coordinator_t *c, marker_job_t *j, rn_arena_t *a) {
    rn_broker_t *b = c->broker;
    bool all = true;
    for (int32_t i = 0; i < j->nparts; i++) {
        const txn_partition_t *p = &j->parts[i];
        pthread_rwlock_rdlock(&b->topics_lock);
        rn_partition_t *part = rn_broker_partition_locked(b, p->topic, strlen(p->topic), p->partition);
        bool exists = rn_broker_topic_locked(b, p->topic, strlen(p->topic)) != NULL;
        int32_t leader = part ? part->leader_id : -1;
        pthread_rwlock_unlock(&b->topics_lock);
        bool ok;
        if (!exists)
            ok = true; /* deleted: nothing to mark */
        else if (leader < 0)
            ok = false;
        else if (leader == b->cfg.node_id)
            ok = marker_local(b, j, p);
        else
            ok = marker_remote(c, leader, j, p, a);
        all = all && ok;
    }
    return all;
}

/* Lock held on entry and exit; released while the markers travel. */
static void send_markers_locked(rn_txn_coordinator_t *c) {
    marker_job_t *jobs = calloc(RN_TXN_MARKER_BATCH, sizeof(*jobs));
    if (!jobs) return;
    int32_t njobs = 0;
    bool more = false;
    size_t it = 0;
    const char *key;
    void *v;
    while (rn_map_next(&c->txns, &it, &key, &v)) {
        txn_t *t = v;
        if (!t->markers || (t->state != TXN_PREPARE_COMMIT && t->state != TXN_PREPARE_ABORT)) continue;
        if (njobs == RN_TXN_MARKER_BATCH) {
            more = true;
            break;
        }
        marker_job_t *j = &jobs[njobs];
        j->id = strdup(t->id);
        j->parts = calloc((size_t)t->nparts + 1, sizeof(*j->parts));
        if (!j->id || !j->parts) {
            free(j->id);
            free(j->parts);
            more = true;
            break;
        }
        for (int32_t i = 0; i < t->nparts; i++) {
            j->parts[i].partition = t->parts[i].partition;
            j->parts[i].topic = strdup(t->parts[i].topic);
            if (j->parts[i].topic) j->nparts++;
        }
        j->producer_id = t->producer_id;
        j->epoch = t->epoch;
        j->commit = t->state == TXN_PREPARE_COMMIT;
        j->coordinator_epoch = t->log_partition < c->owned.n ? c->owned.loaded[t->log_partition] : 0;
        j->ok = j->nparts == t->nparts;
        njobs++;
    }
    pthread_mutex_unlock(&c->lock);
    RN_DEBUG("txn", "sending the markers of %d transaction(s)", njobs);
    rn_arena_t a;
    rn_arena_init(&a, (size_t)16 << 20);
    for (int32_t i = 0; i < njobs; i++) {
        if (jobs[i].ok) jobs[i].ok = send_job(c, &jobs[i], &a);
        rn_arena_reset(&a);
    }
    pthread_mutex_lock(&c->lock);
    bool pending = more;
    for (int32_t i = 0; i < njobs; i++) {
        marker_job_t *j = &jobs[i];
        txn_t *t = txn_get(c, rn_str_from_cstr(j->id));
        bool same = t && t->markers && t->producer_id == j->producer_id && t->epoch == j->epoch &&
                    t->state == (j->commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT);
        if (same && j->ok) {
            t->markers = false;
            RN_DEBUG("txn", "%s: %s, %d partition(s), epoch %d", t->id, j->commit ? "committed" : "aborted", t->nparts,
                     t->epoch);
            (void)transition_nowait_locked(c, t, j->commit ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT);
            rn_broker_wake_all(c->broker); /* parked EndTxn requests */
        } else if (same) {
            pending = true;
        }
        for (int32_t k = 0; k < j->nparts; k++) free(j->parts[k].topic);
        free(j->parts);
        free(j->id);
    }
    free(jobs);
    /* An EndTxn may have handed over more while the lock was released. */
    it = 0;
    while (!pending && rn_map_next(&c->txns, &it, &key, &v)) {
        const txn_t *t = v;
        pending = t->markers && (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT);
    }
    c->markers_pending = pending;
}

/* ---- lifecycle ---------------------------------------------------------- */

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
    c->stopic = (rn_itopic_t){
        .b = b,
        .name = RN_TXN_STATE_TOPIC,
        .subsystem = "txn",
        .segment_bytes = RN_TXN_SEGMENT_BYTES,
        .partitions = (int32_t)rn_broker_config_long(&b->cfg, "transaction.state.log.num.partitions"),
        .replication_factor = (int16_t)rn_broker_config_long(&b->cfg, "transaction.state.log.replication.factor"),
    };
    b->txn_coordinator = c; /* partitions load as this node comes to lead them */
    if (pthread_create(&c->reaper, NULL, reaper_main, c) != 0) {
        snprintf(err, errlen, "transaction coordinator: cannot start its thread");
        return RN_ERR_NOMEM;
    }
    c->reaper_started = true;
    return RN_OK;
}

void rn_txn_coordinator_stop(rn_broker_t *b) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    if (!c || !c->reaper_started) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->reaper, NULL);
    c->reaper_started = false;
}

void rn_txn_coordinator_free(rn_broker_t *b) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    if (!c) return;
    rn_txn_coordinator_stop(b);
    size_t it = 0;
    const char *key;
    void *v;
    while (rn_map_next(&c->txns, &it, &key, &v)) free_txn(v);
    rn_map_free(&c->txns);
    rn_iowner_free(&c->owned);
    for (int32_t i = 0; i < c->nclients; i++) rn_client_free(c->clients[i].cl);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
    b->txn_coordinator = NULL;
}

static txn_t *txn_get(rn_txn_coordinator_t *c, rn_str_t id) {
    if (id.len <= 0) return NULL;
    return rn_map_get(&c->txns, id.ptr, (size_t)id.len);
}

/* Lock held: may this node serve the transactional id now? */
static int16_t owns_txn(rn_txn_coordinator_t *c, rn_str_t id) {
    size_t len = id.len > 0 ? (size_t)id.len : 0;
    return rn_iowner_check(&c->owned, rn_group_partition_for(id.ptr ? id.ptr : "", len, c->stopic.partitions));
}

int16_t rn_txn_owns_partition(rn_broker_t *b, int32_t partition) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    if (!c) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    pthread_mutex_lock(&c->lock);
    int16_t err = rn_iowner_check(&c->owned, partition);
    pthread_mutex_unlock(&c->lock);
    return err;
}

rn_itopic_t *rn_txn_state_topic(rn_broker_t *b) { return b->txn_coordinator ? &b->txn_coordinator->stopic : NULL; }

rn_err_t rn_txn_append_marker(rn_broker_t *b, rn_str_t topic, int32_t partition, int64_t producer_id,
                              int16_t producer_epoch, bool commit, int32_t coordinator_epoch, rn_durable_t *d) {
    if (topic.len <= 0) return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_partition_t *part = rn_broker_partition_locked(b, topic.ptr, (size_t)topic.len, partition);
    rn_log_t *log = part && rn_partition_led_here(b, part) ? part->log : NULL;
    int32_t leader_epoch = part ? part->leader_epoch : -1;
    if (log) rn_log_retain(log);
    pthread_rwlock_unlock(&b->topics_lock);
    if (!log) return part ? RN_ERR_NOT_LEADER_OR_FOLLOWER : RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    int32_t repl_epoch = -1;
    if (!rn_replica_mgr_leads(rn_cluster_replicas(b), log, &repl_epoch) || repl_epoch != leader_epoch) {
        rn_log_release(log);
        return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    }
    rn_buf_t buf;
    rn_buf_init(&buf, 4096);
    rn_batch_builder_t bb;
    int64_t now = rn_clock_wall_ms();
    rn_batch_builder_init(&bb, &buf, 0, 0, 4096);
    bb.producer_id = producer_id;
    bb.producer_epoch = producer_epoch;
    bb.attributes |= RN_BATCH_ATTR_TRANSACTIONAL | RN_BATCH_ATTR_CONTROL;
    int type = commit ? RN_CONTROL_COMMIT : RN_CONTROL_ABORT;
    uint8_t key[4] = {0, 0, 0, (uint8_t)type}, value[6] = {0};
    rn_store_be32(value + 2, (uint32_t)(coordinator_epoch > 0 ? coordinator_epoch : 0));
    rn_batch_builder_add(&bb, now, (rn_bytes_t){key, 4}, (rn_bytes_t){value, 6}, 0, NULL, NULL);
    rn_err_t rc = rn_batch_builder_finish(&bb);
    rn_append_result_t ar;
    if (!rc) {
        rn_append_opts_t ao = {.leader_epoch = leader_epoch, .now_ms = now, .is_internal = true};
        rc = rn_log_append(log, buf.data, buf.len, &ao, &ar);
    }
    if (rc) {
        RN_ERROR("txn", "%s marker of producer %lld in %.*s-%d failed: %s", commit ? "COMMIT" : "ABORT",
                 (long long)producer_id, topic.len, topic.ptr, partition, rn_err_name(rc));
        rc = rc > 0 ? rc : RN_ERR_KAFKA_STORAGE_ERROR;
    } else {
        rn_durable_hw(d, log, ar.last_offset + 1, leader_epoch);
        /* The offsets sent with the transaction become visible (or vanish) with the marker. */
        if (rn_str_eq_cstr(topic, RN_OFFSETS_TOPIC)) rn_group_txn_complete(b, partition, producer_id, commit);
        rn_broker_wake_all(b); /* the last stable offset moved; followers fetch the marker */
    }
    rn_buf_free(&buf);
    rn_log_release(log);
    return rc;
}

/* PREPARE_x → markers in every partition → COMPLETE_x (lock held). For a
 * commit the PREPARE_COMMIT record must already be durable. The partitions'
 * leaders may be other nodes: the reaper thread sends the markers
 * (WriteTxnMarkers) and writes COMPLETE_x once all are written. */
static void complete_txn_locked(rn_txn_coordinator_t *c, txn_t *t) {
    RN_ASSERT(t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT);
    t->markers = true;
    c->markers_pending = true;
    pthread_cond_signal(&c->wake);
}

/* ---- InitProducerId ------------------------------------------------------ */

int16_t rn_txn_init_producer_id(rn_broker_t *b, rn_str_t txn_id, int32_t timeout_ms, int64_t producer_id,
                                int16_t producer_epoch, int64_t *out_id, int16_t *out_epoch, rn_durable_t *d) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    *out_id = -1;
    *out_epoch = -1;
    if (txn_id.len <= 0) return RN_ERR_INVALID_REQUEST;
    if (timeout_ms <= 0 || timeout_ms > c->max_timeout_ms) return RN_ERR_INVALID_TRANSACTION_TIMEOUT;
    if (rn_itopic_ensure(&c->stopic)) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    pthread_mutex_lock(&c->lock);
    int16_t err = owns_txn(c, txn_id);
    txn_t *t = err ? NULL : txn_get(c, txn_id);
    if (err) {
        goto out;
    } else if (!t) {
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
        t->log_partition = rn_group_partition_for(txn_id.ptr, (size_t)txn_id.len, c->stopic.partitions);
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
        /* Fence whoever holds the current epoch: an open transaction is aborted
         * with markers carrying an epoch above the zombie's. */
        if (t->state == TXN_ONGOING) {
            if (t->epoch < INT16_MAX - 1) t->epoch++;
            abort_txn_locked(c, t, d);
            /* The markers go out in the background: the client retries (Kafka does this). */
            err = RN_ERR_CONCURRENT_TRANSACTIONS;
            goto out;
        }
        if (t->epoch >= INT16_MAX - 1) {
            int64_t id = rn_broker_alloc_producer_id(b);
            if (id < 0) {
                err = RN_ERR_KAFKA_STORAGE_ERROR;
                goto out;
            }
            t->producer_id = id;
            t->epoch = 0;
        } else {
            t->epoch++;
        }
    }
    t->timeout_ms = timeout_ms;
    set_state(t, TXN_EMPTY);
    if (persist_locked(c, t, d)) err = RN_ERR_COORDINATOR_NOT_AVAILABLE;
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

/* A write in a transaction (a batch, or offsets) to `topic`-`partition`, checked against the
 * transaction when this node is also its coordinator: the producer's id and epoch (`fenced`
 * otherwise), and the partition added to the ongoing transaction. When the coordinator is another
 * node (or still loading here) nothing is checked: the log's producer state fences, and there is
 * no KIP-890 verification across nodes yet. */
static int16_t check_local_txn(rn_broker_t *b, rn_str_t txn_id, int64_t producer_id, int16_t producer_epoch,
                               int16_t fenced, const char *topic, size_t topic_len, int32_t partition) {
    rn_txn_coordinator_t *c = b->txn_coordinator;
    pthread_mutex_lock(&c->lock);
    int16_t err = RN_OK;
    if (owns_txn(c, txn_id) == RN_OK) {
        txn_t *t = txn_get(c, txn_id);
        err = check_producer(t, producer_id, producer_epoch, fenced);
        if (!err && (t->state != TXN_ONGOING || !has_partition(t, topic, topic_len, partition)))
            err = RN_ERR_INVALID_TXN_STATE;
    }
    pthread_mutex_unlock(&c->lock);
    return err;
}

int16_t rn_txn_check_produce(rn_broker_t *b, rn_str_t txn_id, int64_t producer_id, int16_t producer_epoch,
                             rn_str_t topic, int32_t partition) {
    return check_local_txn(b, txn_id, producer_id, producer_epoch, RN_ERR_INVALID_PRODUCER_EPOCH, topic.ptr,
                           topic.len > 0 ? (size_t)topic.len : 0, partition);
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

/* After partitions were added (lock held): ONGOING, written down. */
static int16_t begin_or_extend_locked(rn_txn_coordinator_t *c, txn_t *t, rn_durable_t *d) {
    if (t->state != TXN_ONGOING) t->start_ms = rn_clock_wall_ms();
    set_state(t, TXN_ONGOING);
    return persist_locked(c, t, d) ? RN_ERR_COORDINATOR_NOT_AVAILABLE : RN_OK;
}

/* ---- AddPartitionsToTxn -------------------------------------------------- */

/* One transaction's topics: per-partition results; returns the error for all of them, if any. */
static void add_partitions(rn_broker_t *b, rn_arena_t *a, int16_t version, rn_str_t txn_id, int64_t pid,
                           int16_t epoch, int32_t ntopics,
                           const rn_AddPartitionsToTxnRequest_AddPartitionsToTxnTopic_t *topics,
                           rn_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_t **out, int32_t *nout,
                           rn_durable_t *d) {
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
    pthread_mutex_lock(&c->lock);
    int16_t err = owns_txn(c, txn_id);
    txn_t *t = err ? NULL : txn_get(c, txn_id);
    if (!err) err = check_producer(t, pid, epoch, version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err && (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT)) err = RN_ERR_CONCURRENT_TRANSACTIONS;
    if (!err && any_unknown) err = RN_ERR_OPERATION_NOT_ATTEMPTED;
    if (!err) {
        int32_t before = t->nparts;
        for (int32_t i = 0; i < *nout && !err; i++)
            for (int32_t j = 0; j < res[i].ResultsByPartition_count && !err; j++)
                err = add_partition_locked(t, res[i].Name.ptr, (size_t)res[i].Name.len,
                                           res[i].ResultsByPartition[j].PartitionIndex);
        /* A retry that adds nothing new needs no record. */
        if (!err && t->nparts > 0 && (t->nparts != before || t->state != TXN_ONGOING))
            err = begin_or_extend_locked(c, t, d);
    }
    pthread_mutex_unlock(&c->lock);
    if (err)
        for (int32_t i = 0; i < *nout; i++)
            for (int32_t j = 0; j < res[i].ResultsByPartition_count; j++)
                if (!(err == RN_ERR_OPERATION_NOT_ATTEMPTED && res[i].ResultsByPartition[j].PartitionErrorCode))
                    res[i].ResultsByPartition[j].PartitionErrorCode = err;
}

static void add_partitions_fail(void *resp, int16_t err) {
    rn_AddPartitionsToTxnResponse_t *r = resp;
    if (r->ErrorCode == 0) r->ErrorCode = err; /* v4 top level */
    for (int32_t i = 0; i < r->ResultsByTopicV3AndBelow_count; i++)
        for (int32_t j = 0; j < r->ResultsByTopicV3AndBelow[i].ResultsByPartition_count; j++)
            r->ResultsByTopicV3AndBelow[i].ResultsByPartition[j].PartitionErrorCode = err;
    for (int32_t k = 0; k < r->ResultsByTransaction_count; k++)
        for (int32_t i = 0; i < r->ResultsByTransaction[k].TopicResults_count; i++)
            for (int32_t j = 0; j < r->ResultsByTransaction[k].TopicResults[i].ResultsByPartition_count; j++)
                r->ResultsByTransaction[k].TopicResults[i].ResultsByPartition[j].PartitionErrorCode = err;
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
    rn_AddPartitionsToTxnResponse_t *resp = rn_arena_calloc(a, 1, sizeof(*resp));
    if (!resp) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    rn_AddPartitionsToTxnResponse_init(resp);
    rn_durable_t dur;
    rn_durable_init(&dur);
    if (h->api_version <= 3) {
        add_partitions(b, a, h->api_version, rq.V3AndBelowTransactionalId, rq.V3AndBelowProducerId,
                       rq.V3AndBelowProducerEpoch, rq.V3AndBelowTopics_count, rq.V3AndBelowTopics,
                       &resp->ResultsByTopicV3AndBelow, &resp->ResultsByTopicV3AndBelow_count, &dur);
    } else {
        int32_t n = rq.Transactions_count > 0 ? rq.Transactions_count : 0;
        resp->ResultsByTransaction = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp->ResultsByTransaction));
        resp->ResultsByTransaction_count = resp->ResultsByTransaction ? n : 0;
        for (int32_t i = 0; i < resp->ResultsByTransaction_count; i++) {
            const rn_AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction_t *tx = &rq.Transactions[i];
            rn_AddPartitionsToTxnResponse_AddPartitionsToTxnResult_init(&resp->ResultsByTransaction[i]);
            resp->ResultsByTransaction[i].TransactionalId = tx->TransactionalId;
            add_partitions(b, a, h->api_version, tx->TransactionalId, tx->ProducerId, tx->ProducerEpoch,
                           tx->Topics_count, tx->Topics, &resp->ResultsByTransaction[i].TopicResults,
                           &resp->ResultsByTransaction[i].TopicResults_count, &dur);
        }
    }
    rn_broker_respond_replicated(b, req, h, &dur, RN_TXN_SYNC_TIMEOUT_MS,
                                 (rn_encode_fn)rn_AddPartitionsToTxnResponse_encode, resp, add_partitions_fail,
                                 RN_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* ---- EndTxn -------------------------------------------------------------- */

/* EndTxn(commit) runs in two steps on the request's loop: PREPARE_COMMIT is
 * written and replicated, then the markers go out and the answer waits for
 * COMPLETE_COMMIT. */
typedef struct {
    rn_req_header_t h;
    rn_EndTxnResponse_t resp;
    rn_str_t txn_id;
} end_ctx_t;

static void end_fail(void *resp, int16_t err) { ((rn_EndTxnResponse_t *)resp)->ErrorCode = err; }

static void end_respond(rn_broker_t *b, rn_req_t *req, end_ctx_t *ec, rn_durable_t *d) {
    if (ec->resp.ErrorCode && ec->h.api_key >= 0) atomic_fetch_add(&b->stats.errors[ec->h.api_key], 1);
    rn_broker_respond_replicated(b, req, &ec->h, d, RN_TXN_SYNC_TIMEOUT_MS, (rn_encode_fn)rn_EndTxnResponse_encode,
                                 &ec->resp, end_fail, RN_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* EndTxn is answered once the markers are written and the
 * transaction is COMPLETE_x, so the client's next
 * transaction never meets CONCURRENT_TRANSACTIONS and a read_committed
 * consumer sees the data as soon as the commit returns. */
typedef struct {
    rn_wait_t w; /* first: the wait is the context */
    rn_req_t *req;
    end_ctx_t *ec;
    bool commit;
} end_wait_t;

/* Lock held: RN_OK (done), RN_ERR_AGAIN (markers still travelling), NOT_COORDINATOR (unloaded). */
static rn_err_t end_state_locked(rn_txn_coordinator_t *c, const end_wait_t *ew) {
    txn_t *t = txn_get(c, ew->ec->txn_id);
    if (!t || t->producer_id != ew->ec->resp.ProducerId || t->epoch != ew->ec->resp.ProducerEpoch)
        return RN_ERR_NOT_COORDINATOR;
    if (t->state == (ew->commit ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT)) return RN_OK;
    if (t->state == (ew->commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT)) return RN_ERR_AGAIN;
    return RN_ERR_NOT_COORDINATOR;
}

static void end_wait_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    end_wait_t *ew = (end_wait_t *)w;
    rn_txn_coordinator_t *c = b->txn_coordinator;
    pthread_mutex_lock(&c->lock);
    rn_err_t st = end_state_locked(c, ew);
    pthread_mutex_unlock(&c->lock);
    if (st == RN_ERR_AGAIN && !timed_out && !err) return; /* stay parked */
    rn_broker_unpark(w->ctx, w);
    /* Still in PREPARE_x after the wait: the client retries (CONCURRENT_TRANSACTIONS until done). */
    if (st) ew->ec->resp.ErrorCode = st == RN_ERR_AGAIN ? RN_ERR_CONCURRENT_TRANSACTIONS : RN_ERR_NOT_COORDINATOR;
    rn_durable_t none;
    rn_durable_init(&none);
    end_respond(b, ew->req, ew->ec, &none);
}

static void end_wait_complete(rn_broker_t *b, rn_req_t *req, end_ctx_t *ec, bool commit) {
    end_wait_t *ew = rn_arena_calloc(&req->arena, 1, sizeof(*ew));
    rn_durable_t none;
    rn_durable_init(&none);
    if (!ew) {
        ec->resp.ErrorCode = RN_ERR_CONCURRENT_TRANSACTIONS;
        end_respond(b, req, ec, &none);
        return;
    }
    ew->req = req;
    ew->ec = ec;
    ew->commit = commit;
    ew->w.wants_data = true; /* the reaper wakes data waiters when it completes transactions */
    ew->w.resume = end_wait_resume;
    rn_broker_park(rn_broker_loop_for(b, req->loop), &ew->w, RN_TXN_SYNC_TIMEOUT_MS);
    end_wait_resume(b, &ew->w, false, RN_OK);
}

static void end_aborted(rn_broker_t *b, rn_req_t *req, void *ctx, rn_err_t err) {
    end_ctx_t *ec = ctx;
    if (err) {
        rn_durable_t none;
        rn_durable_init(&none);
        ec->resp.ErrorCode = err == RN_ERR_NOT_COORDINATOR ? RN_ERR_NOT_COORDINATOR : RN_ERR_COORDINATOR_NOT_AVAILABLE;
        end_respond(b, req, ec, &none);
        return;
    }
    end_wait_complete(b, req, ec, false);
}

/* PREPARE_COMMIT is durable: the markers may go out. */
static void end_prepared(rn_broker_t *b, rn_req_t *req, void *ctx, rn_err_t err) {
    end_ctx_t *ec = ctx;
    rn_txn_coordinator_t *c = b->txn_coordinator;
    if (err) { /* the state stays PREPARE_COMMIT: a restart (or the next coordinator) finishes it */
        rn_durable_t none;
        rn_durable_init(&none);
        ec->resp.ErrorCode = err == RN_ERR_NOT_COORDINATOR ? RN_ERR_NOT_COORDINATOR : RN_ERR_COORDINATOR_NOT_AVAILABLE;
        end_respond(b, req, ec, &none);
        return;
    }
    pthread_mutex_lock(&c->lock);
    txn_t *t = txn_get(c, ec->txn_id);
    /* Nobody else moves a transaction out of PREPARE_COMMIT; unloaded meanwhile,
     * the new coordinator finishes it. */
    bool same = t && t->state == TXN_PREPARE_COMMIT && t->producer_id == ec->resp.ProducerId &&
                t->epoch == ec->resp.ProducerEpoch;
    if (same) complete_txn_locked(c, t);
    pthread_mutex_unlock(&c->lock);
    if (!same) {
        rn_durable_t none;
        rn_durable_init(&none);
        ec->resp.ErrorCode = RN_ERR_NOT_COORDINATOR;
        end_respond(b, req, ec, &none);
        return;
    }
    end_wait_complete(b, req, ec, true);
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
    ec->h = *h;
    ec->txn_id = rq.TransactionalId;
    rn_EndTxnResponse_init(&ec->resp);
    ec->resp.ProducerId = -1;
    ec->resp.ProducerEpoch = -1;
    rn_txn_coordinator_t *c = b->txn_coordinator;
    rn_durable_t d;
    rn_durable_init(&d);
    bool prepared = false, aborting = false;
    pthread_mutex_lock(&c->lock);
    int16_t err = owns_txn(c, rq.TransactionalId);
    txn_t *t = err ? NULL : txn_get(c, rq.TransactionalId);
    if (!err)
        err = check_producer(t, rq.ProducerId, rq.ProducerEpoch,
                             h->api_version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err) {
        switch (t->state) {
        case TXN_ONGOING:
            if (rq.Committed) {
                if (transition_locked(c, t, TXN_PREPARE_COMMIT, &d)) err = RN_ERR_COORDINATOR_NOT_AVAILABLE;
                prepared = true; /* even if the record failed: the state is PREPARE_COMMIT now */
            } else {
                abort_txn_locked(c, t, &d);
                aborting = true; /* the markers go out in the background */
            }
            break;
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
    if (prepared && !err) {
        rn_broker_when_replicated(b, req, &d, RN_TXN_SYNC_TIMEOUT_MS, end_prepared, ec);
        return;
    }
    if (aborting && !err) {
        rn_broker_when_replicated(b, req, &d, RN_TXN_SYNC_TIMEOUT_MS, end_aborted, ec);
        return;
    }
    end_respond(b, req, ec, &d);
}

/* ---- AddOffsetsToTxn ----------------------------------------------------- */

static void add_offsets_fail(void *resp, int16_t err) { ((rn_AddOffsetsToTxnResponse_t *)resp)->ErrorCode = err; }

/* The group's __consumer_offsets partition joins the transaction (Kafka does
 * the same): its COMMIT marker makes the transaction's offsets visible. */
void rn_h_add_offsets_to_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_AddOffsetsToTxnRequest_t rq;
    rn_AddOffsetsToTxnRequest_init(&rq);
    rn_err_t rc = rn_AddOffsetsToTxnRequest_decode(body, h->api_version, &req->arena, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_AddOffsetsToTxnResponse_t *resp = rn_arena_calloc(&req->arena, 1, sizeof(*resp));
    if (!resp) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    rn_AddOffsetsToTxnResponse_init(resp);
    rn_txn_coordinator_t *c = b->txn_coordinator;
    rn_durable_t d;
    rn_durable_init(&d);
    int16_t err = RN_OK;
    if (rq.GroupId.len <= 0) err = RN_ERR_INVALID_GROUP_ID;
    int32_t opart = err ? -1 : rn_group_offsets_partition(b, rq.GroupId);
    pthread_mutex_lock(&c->lock);
    if (!err) err = owns_txn(c, rq.TransactionalId);
    txn_t *t = err ? NULL : txn_get(c, rq.TransactionalId);
    if (!err)
        err = check_producer(t, rq.ProducerId, rq.ProducerEpoch,
                             h->api_version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH);
    if (!err && (t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT)) err = RN_ERR_CONCURRENT_TRANSACTIONS;
    if (!err && (t->state != TXN_ONGOING || !has_partition(t, RN_OFFSETS_TOPIC, strlen(RN_OFFSETS_TOPIC), opart))) {
        err = add_partition_locked(t, RN_OFFSETS_TOPIC, strlen(RN_OFFSETS_TOPIC), opart);
        if (!err) err = begin_or_extend_locked(c, t, &d);
    }
    if (t) assert_txn_state(t);
    pthread_mutex_unlock(&c->lock);
    resp->ErrorCode = err;
    if (err && h->api_key >= 0) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
    rn_broker_respond_replicated(b, req, h, &d, RN_TXN_SYNC_TIMEOUT_MS,
                                 (rn_encode_fn)rn_AddOffsetsToTxnResponse_encode, resp, add_offsets_fail,
                                 RN_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* ---- TxnOffsetCommit ----------------------------------------------------- */

static void txn_offset_commit_fail(void *resp, int16_t err) {
    rn_TxnOffsetCommitResponse_t *r = resp;
    for (int32_t i = 0; i < r->Topics_count; i++)
        for (int32_t j = 0; j < r->Topics[i].Partitions_count; j++)
            if (!r->Topics[i].Partitions[j].ErrorCode) r->Topics[i].Partitions[j].ErrorCode = err;
}

/* The offsets go to __consumer_offsets as a transactional batch of the
 * producer (rn_group_txn_offset_commit); the COMMIT marker makes them visible. */
void rn_h_txn_offset_commit(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_TxnOffsetCommitRequest_t rq;
    rn_TxnOffsetCommitRequest_init(&rq);
    rn_err_t rc = rn_TxnOffsetCommitRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_TxnOffsetCommitResponse_t *resp = rn_arena_calloc(a, 1, sizeof(*resp));
    int32_t nt = rq.Topics_count > 0 ? rq.Topics_count : 0;
    int32_t total = 0;
    for (int32_t i = 0; i < nt; i++) total += rq.Topics[i].Partitions_count > 0 ? rq.Topics[i].Partitions_count : 0;
    rn_txn_offset_t *offs = rn_arena_calloc(a, (size_t)total + 1, sizeof(*offs));
    if (resp) {
        rn_TxnOffsetCommitResponse_init(resp);
        resp->Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp->Topics));
    }
    if (!resp || !resp->Topics || !offs) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp->Topics_count = nt;
    /* This is the group's coordinator, the transaction's may be another node
     * (as in Kafka, the group coordinator does not ask it): the marker there
     * decides whether the offsets become visible. When it is this node, the
     * offsets' partition must have been added (AddOffsetsToTxn first). */
    int16_t err = rq.GroupId.len <= 0 ? RN_ERR_INVALID_GROUP_ID : RN_OK;
    if (!err)
        err = check_local_txn(b, rq.TransactionalId, rq.ProducerId, rq.ProducerEpoch,
                              h->api_version >= 2 ? RN_ERR_PRODUCER_FENCED : RN_ERR_INVALID_PRODUCER_EPOCH,
                              RN_OFFSETS_TOPIC, strlen(RN_OFFSETS_TOPIC), rn_group_offsets_partition(b, rq.GroupId));
    int32_t n = 0;
    for (int32_t i = 0; i < nt; i++) {
        const rn_TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic_t *tp = &rq.Topics[i];
        rn_TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic_t *rt = &resp->Topics[i];
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
            if (!e && pp->CommittedMetadata.len > RN_OFFSET_METADATA_MAX_BYTES) e = RN_ERR_OFFSET_METADATA_TOO_LARGE;
            if (!e)
                offs[n++] = (rn_txn_offset_t){tp->Name, pp->PartitionIndex, pp->CommittedOffset,
                                              h->api_version >= 2 ? pp->CommittedLeaderEpoch : -1,
                                              pp->CommittedMetadata};
            rt->Partitions[j].ErrorCode = e;
        }
    }
    rn_durable_t dur;
    rn_durable_init(&dur);
    int16_t werr = n ? (int16_t)rn_group_txn_offset_commit(b, rq.GroupId, rq.ProducerId, rq.ProducerEpoch, offs, n, &dur)
                     : RN_OK;
    if (werr) txn_offset_commit_fail(resp, werr > 0 ? werr : RN_ERR_UNKNOWN_SERVER_ERROR);
    for (int32_t i = 0; i < resp->Topics_count && h->api_key >= 0; i++)
        for (int32_t j = 0; j < resp->Topics[i].Partitions_count; j++)
            if (resp->Topics[i].Partitions[j].ErrorCode) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
    rn_broker_respond_replicated(b, req, h, &dur, RN_TXN_SYNC_TIMEOUT_MS,
                                 (rn_encode_fn)rn_TxnOffsetCommitResponse_encode, resp, txn_offset_commit_fail,
                                 RN_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* ---- DescribeTransactions, ListTransactions ------------------------------ */

static int64_t txn_start_ms(const txn_t *t) {
    bool open = t->state == TXN_ONGOING || t->state == TXN_PREPARE_COMMIT || t->state == TXN_PREPARE_ABORT;
    return open ? t->start_ms : -1;
}

/* One id's answer (lock held); strings and arrays copied into the arena. */
static void describe_one(rn_arena_t *a, const txn_t *t, rn_DescribeTransactionsResponse_TransactionState_t *out) {
    out->TransactionState = rn_str_dup_arena(a, rn_txn_state_name(t->state));
    out->TransactionTimeoutMs = t->timeout_ms;
    out->TransactionStartTimeMs = txn_start_ms(t);
    out->ProducerId = t->producer_id;
    out->ProducerEpoch = t->epoch;
    /* Partitions grouped by topic, in the order they joined. */
    out->Topics = rn_arena_calloc(a, (size_t)t->nparts + 1, sizeof(*out->Topics));
    int32_t *ids = rn_arena_calloc(a, (size_t)t->nparts + 1, sizeof(*ids));
    if (!out->Topics || !ids) {
        out->ErrorCode = RN_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    bool *done = rn_arena_calloc(a, (size_t)t->nparts + 1, sizeof(*done));
    int32_t used = 0;
    for (int32_t i = 0; done && i < t->nparts; i++) {
        if (done[i]) continue;
        rn_DescribeTransactionsResponse_TopicData_t *td = &out->Topics[out->Topics_count++];
        rn_DescribeTransactionsResponse_TopicData_init(td);
        td->Topic = rn_str_dup_arena(a, t->parts[i].topic);
        td->Partitions = ids + used;
        for (int32_t j = i; j < t->nparts; j++) {
            if (done[j] || strcmp(t->parts[j].topic, t->parts[i].topic) != 0) continue;
            done[j] = true;
            ids[used++] = t->parts[j].partition;
            td->Partitions_count++;
        }
    }
}

void rn_h_describe_transactions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_DescribeTransactionsRequest_t rq;
    rn_DescribeTransactionsRequest_init(&rq);
    rn_err_t rc = rn_DescribeTransactionsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_DescribeTransactionsResponse_t resp;
    rn_DescribeTransactionsResponse_init(&resp);
    int32_t n = rq.TransactionalIds_count > 0 ? rq.TransactionalIds_count : 0;
    resp.TransactionStates = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp.TransactionStates));
    if (!resp.TransactionStates) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.TransactionStates_count = n;
    rn_txn_coordinator_t *c = b->txn_coordinator;
    pthread_mutex_lock(&c->lock);
    for (int32_t i = 0; i < n; i++) {
        rn_DescribeTransactionsResponse_TransactionState_t *out = &resp.TransactionStates[i];
        rn_DescribeTransactionsResponse_TransactionState_init(out);
        out->TransactionalId = rq.TransactionalIds[i];
        out->TransactionState = RN_STR_LIT("");
        out->ProducerId = -1;
        out->ProducerEpoch = -1;
        out->TransactionStartTimeMs = -1;
        out->ErrorCode = owns_txn(c, rq.TransactionalIds[i]);
        const txn_t *t = out->ErrorCode ? NULL : txn_get(c, rq.TransactionalIds[i]);
        if (t) describe_one(a, t, out);
        else if (!out->ErrorCode) out->ErrorCode = RN_ERR_TRANSACTIONAL_ID_NOT_FOUND;
        if (out->ErrorCode && h->api_key >= 0) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
    }
    pthread_mutex_unlock(&c->lock);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_DescribeTransactionsResponse_encode, &resp);
}

/* Kafka's filters: states by name, producer ids, and (v1) open longer than DurationFilter ms. */
static bool list_match(const txn_t *t, const rn_ListTransactionsRequest_t *rq, const bool *states, int64_t now) {
    if (t->state == TXN_DEAD) return false;
    if (rq->StateFilters_count > 0 && !states[t->state]) return false;
    if (rq->ProducerIdFilters_count > 0) {
        bool found = false;
        for (int32_t i = 0; i < rq->ProducerIdFilters_count && !found; i++)
            found = rq->ProducerIdFilters[i] == t->producer_id;
        if (!found) return false;
    }
    return rq->DurationFilter < 0 || now - t->start_ms > rq->DurationFilter;
}

void rn_h_list_transactions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_ListTransactionsRequest_t rq;
    rn_ListTransactionsRequest_init(&rq);
    rq.DurationFilter = -1;
    rn_err_t rc = rn_ListTransactionsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    if (h->api_version < 1) rq.DurationFilter = -1;
    rn_ListTransactionsResponse_t resp;
    rn_ListTransactionsResponse_init(&resp);
    bool states[TXN_DEAD + 1] = {false};
    int32_t nf = rq.StateFilters_count > 0 ? rq.StateFilters_count : 0;
    resp.UnknownStateFilters = rn_arena_calloc(a, (size_t)nf + 1, sizeof(*resp.UnknownStateFilters));
    if (!resp.UnknownStateFilters) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    for (int32_t i = 0; i < nf; i++) {
        int s = rn_txn_state_from_name(rq.StateFilters[i]);
        if (s >= 0) states[s] = true;
        else resp.UnknownStateFilters[resp.UnknownStateFilters_count++] = rq.StateFilters[i];
    }
    rn_txn_coordinator_t *c = b->txn_coordinator;
    int64_t now = rn_clock_wall_ms();
    pthread_mutex_lock(&c->lock);
    resp.TransactionStates = rn_arena_calloc(a, c->txns.count + 1, sizeof(*resp.TransactionStates));
    size_t it = 0;
    const char *key;
    void *v;
    while (resp.TransactionStates && rn_map_next(&c->txns, &it, &key, &v)) {
        const txn_t *t = v;
        if (!list_match(t, &rq, states, now)) continue;
        rn_ListTransactionsResponse_TransactionState_t *out = &resp.TransactionStates[resp.TransactionStates_count++];
        rn_ListTransactionsResponse_TransactionState_init(out);
        out->TransactionalId = rn_str_dup_arena(a, t->id);
        out->ProducerId = t->producer_id;
        out->TransactionState = rn_str_dup_arena(a, rn_txn_state_name(t->state));
    }
    pthread_mutex_unlock(&c->lock);
    if (!resp.TransactionStates) resp.ErrorCode = RN_ERR_UNKNOWN_SERVER_ERROR;
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_ListTransactionsResponse_encode, &resp);
}
