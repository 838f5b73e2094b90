/*
 * rn_itopic.h — internal compacted topics (__consumer_offsets,
 * __transaction_state): creation on first use, batched appends, the replay
 * of a partition a coordinator takes over (rn_itopic.c).
 */
#ifndef RN_ITOPIC_H
#define RN_ITOPIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rn_batch.h"
#include "rn_broker.h"
#include "rn_bytes.h"
#include "rn_err.h"

typedef struct {
    struct rn_broker *b;
    const char *name;          /* static string */
    const char *subsystem;     /* log lines: "group", "txn" */
    const char *segment_bytes; /* segment.bytes of the topic when created */
    int32_t partitions;        /* corrected to the topic's count once it exists */
    int16_t replication_factor;
    atomic_bool ready;         /* the topic exists */
    _Atomic int64_t create_asked_ms; /* when the controller was last asked to create it */
} rn_itopic_t;

/* RN_OK once this node's registry has the topic; until then the active
 * controller is asked to create it (at most once a second) and the answer is
 * COORDINATOR_NOT_AVAILABLE. */
rn_err_t rn_itopic_ensure(rn_itopic_t *t);
/* The replication factor to create the topic with, given `brokers` usable
 * ones: the configured one, capped (with a log line) at what exists. */
int16_t rn_itopic_replication_factor(rn_itopic_t *t, int32_t brokers);

/* Records collected in one batch: write a key then its value into `scratch`,
 * then rn_irecords_add(key length). A producer id >= 0 makes the batch
 * transactional (that producer's, made visible by its COMMIT marker). */
typedef struct {
    rn_buf_t scratch;
    rn_buf_t batch;
    rn_batch_builder_t builder;
    int64_t timestamp_ms;
    int32_t count;
    int64_t producer_id;
    int16_t producer_epoch;
} rn_irecords_t;
void rn_irecords_init(rn_irecords_t *r, int64_t producer_id, int16_t producer_epoch);
void rn_irecords_free(rn_irecords_t *r);
void rn_irecords_add(rn_irecords_t *r, size_t key_len, bool tombstone);
/* Appends what was added as one batch to `partition` (nothing if empty) and
 * adds what makes it durable to *d: the partition's high watermark at this
 * leader epoch. RN_ERR_LIMIT: the records are too large; NOT_COORDINATOR:
 * this node does not lead the partition; COORDINATOR_NOT_AVAILABLE otherwise. */
rn_err_t rn_irecords_append(rn_itopic_t *t, int32_t partition, rn_irecords_t *r, rn_durable_t *d);

/* Every record of one partition from its log start to its end, in offset
 * order, control records included (h says which): a coordinator taking over
 * the partition. */
typedef void (*rn_itopic_record_fn)(void *ctx, int32_t partition, const rn_batch_header_t *h, const rn_record_t *rec);
void rn_itopic_replay_partition(rn_itopic_t *t, int32_t partition, rn_itopic_record_fn fn, void *ctx, int64_t *records);
/* Which partitions of the topic a coordinator serves. want[p]
 * is the leader epoch at which this node leads p (-1: it does not), from the
 * registry and the replica manager after each image; loaded[p] is the epoch
 * whose state the coordinator has in memory (-1: none). The coordinator's
 * own lock guards it. */
typedef struct {
    int32_t *want, *loaded;
    int32_t n;
    bool dirty; /* want changed: the coordinator's thread loads and unloads */
} rn_iowner_t;
/* want[] as this node sees it now (malloc'd, *n entries; NULL: no topic yet
 * or no memory). Takes the topics lock: call without the coordinator's lock. */
int32_t *rn_itopic_led_epochs(rn_itopic_t *t, int32_t *n);
/* Under the coordinator's lock: adopt want[] (n entries; partitions beyond are
 * led nowhere); true if anything changed (o->dirty set). Also corrects
 * t->partitions to the topic's count. */
bool rn_iowner_update(rn_iowner_t *o, rn_itopic_t *t, const int32_t *want, int32_t n);
/* Under the coordinator's lock (its thread): bring loaded[] to want[], unloading first, so a
 * partition led again at a newer epoch is replayed from its log afresh. */
void rn_iowner_apply(rn_iowner_t *o, void (*unload)(void *ctx, int32_t partition),
                     void (*load)(void *ctx, int32_t partition, int32_t epoch), void *ctx);
/* Under the coordinator's lock: 0, NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
int16_t rn_iowner_check(const rn_iowner_t *o, int32_t partition);
void rn_iowner_free(rn_iowner_t *o);

/* The partition's leader (-1: none or unknown) and whether this
 * node leads it, at which epoch (the replica manager's view). */
int32_t rn_itopic_leader(rn_itopic_t *t, int32_t partition, bool *here, int32_t *epoch);

#endif
