/*
 * rn_log.h — Runnel's storage engine: partition logs in a log directory.
 *
 * A log dir holds one directory per partition, `<topic>-<partition>/`, with
 * segments named by their base offset (20 digits): `.log` (record batches
 * exactly as on the wire), `.index` (sparse offset index), `.timeindex` (time
 * index), plus `leader-epoch-checkpoint`; the log dir itself holds
 * `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
 * `replication-offset-checkpoint` (high watermarks) and the clean-shutdown
 * marker. Formats are documented byte by byte in rn_segment.c.
 *
 * Durability. Every append gets a "sync ticket". In durable mode (the default:
 * flush_messages <= 1) the log dir's flusher thread fdatasyncs every dirty
 * segment in one round (group commit) and then publishes the highest ticket
 * that round covered; callers answer acks=1/-1 producers only once their
 * ticket is synced. In lazy mode (flush_messages > 1 or flush_ms set) appends
 * return ticket 0 and the flusher syncs by count/time in the background.
 * A failed write or fsync takes the whole log dir offline: every later append
 * and read fails with KAFKA_STORAGE_ERROR; nothing is retried.
 *
 * Visibility. The high watermark is kept apart from the log end offset. A log
 * not marked replicated (the storage engine alone, as its tests and benches
 * use it) advances it itself: to the synced end in durable mode, to the log
 * end in lazy mode. A replicated log (rn_log_set_replicated; every partition
 * log the broker serves) leaves it to the replication layer, which sets it
 * from the replicas' log ends.
 *
 * Threads. All functions are thread-safe (each log has its own lock); the log
 * dir runs a flusher thread and a maintenance thread (retention, compaction,
 * checkpoints).
 */
#ifndef RN_LOG_H
#define RN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"
#include "rn_histo.h"

typedef struct rn_logdir rn_logdir_t;
typedef struct rn_log rn_log_t;

/* The metadata quorum's log directory is "<log dir>/__cluster_metadata-0" (as in
 * KRaft): a reserved name, never a topic. */
#define RN_METADATA_TOPIC "__cluster_metadata"

#define RN_CLEANUP_DELETE 1
#define RN_CLEANUP_COMPACT 2

/* Per-partition configuration (topic-level configs with broker defaults). */
typedef struct {
    int64_t segment_bytes;            /* segment.bytes (log.segment.bytes), 1 GiB */
    int64_t segment_ms;               /* segment.ms (log.roll.ms), 7 days */
    int64_t index_max_bytes;          /* segment.index.bytes (log.index.size.max.bytes), 10 MiB */
    int32_t index_interval_bytes;     /* index.interval.bytes (log.index.interval.bytes), 4096 */
    int64_t retention_ms;             /* retention.ms, 7 days; -1 unlimited */
    int64_t retention_bytes;          /* retention.bytes, -1 unlimited */
    int64_t flush_messages;           /* flush.messages; <= 1 means durable (fsync before ack) */
    int64_t flush_ms;                 /* flush.ms; INT64_MAX: none */
    int cleanup_policy;               /* RN_CLEANUP_* bits */
    int64_t delete_retention_ms;      /* delete.retention.ms, 1 day */
    int64_t min_compaction_lag_ms;    /* min.compaction.lag.ms, 0 */
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio, 0.5 */
    bool log_append_time;             /* message.timestamp.type=LogAppendTime */
    bool preallocate;                 /* preallocate: durable segments get written zeros ahead (false here) */
} rn_log_config_t;

void rn_log_config_default(rn_log_config_t *cfg);

typedef struct {
    const char *path;                /* the directory (created if missing) */
    int64_t min_free_bytes;          /* log.dir.min.free.bytes: appends below fail (retriable) */
    int max_open_files;              /* bound on cached open segment files */
    int recovery_threads;            /* num.recovery.threads.per.data.dir */
    int64_t retention_check_interval_ms; /* log.retention.check.interval.ms */
    int64_t cleaner_dedupe_buffer_bytes; /* log.cleaner.dedupe.buffer.size */
    int64_t cleaner_backoff_ms;      /* log.cleaner.backoff.ms */
    int64_t flush_scheduler_interval_ms; /* lazy-mode flush checks */
    int64_t checkpoint_interval_ms;  /* log.flush.offset.checkpoint.interval.ms: recovery points, log starts */
    int64_t hw_checkpoint_interval_ms; /* replica.high.watermark.checkpoint.interval.ms: high watermarks */
    rn_log_config_t defaults;        /* for partitions found on disk before their topic config is known */
} rn_logdir_config_t;

void rn_logdir_config_default(rn_logdir_config_t *cfg);

/* Opens (creating if needed) and recovers every partition in the dir, in
 * parallel. After a clean shutdown no segment data is read. */
rn_err_t rn_logdir_open(const rn_logdir_config_t *cfg, rn_logdir_t **out);
/* Clean shutdown: sync everything, write checkpoints and the clean marker. */
void rn_logdir_close(rn_logdir_t *dir);
bool rn_logdir_offline(const rn_logdir_t *dir);
const char *rn_logdir_path(const rn_logdir_t *dir);

/* Every partition log in the dir (found at open or created since). */
void rn_logdir_foreach(rn_logdir_t *dir, void (*fn)(void *arg, rn_log_t *log), void *arg);
rn_log_t *rn_logdir_find(rn_logdir_t *dir, const char *topic, int32_t partition);
/* RN_ERR_EXISTS (with *out set to the existing log) if the partition is already there. */
rn_err_t rn_logdir_create_log(rn_logdir_t *dir, const char *topic, int32_t partition, const rn_log_config_t *cfg,
                              rn_log_t **out);
/* Deletes the partition's files (asynchronously) and drops it from the dir.
 * The rn_log_t stays valid until the last reference is released. */
rn_err_t rn_logdir_delete_log(rn_logdir_t *dir, rn_log_t *log);

/* Group commit notification: called from the flusher thread after each sync
 * round with the highest ticket now durable, or with err != RN_OK when the dir
 * went offline (waiters must then fail). */
typedef void (*rn_logdir_sync_fn)(void *arg, uint64_t synced_ticket, rn_err_t err);
void rn_logdir_on_sync(rn_logdir_t *dir, rn_logdir_sync_fn fn, void *arg);
uint64_t rn_logdir_synced_ticket(const rn_logdir_t *dir);

/* Statistics for metrics and benchmarks. */
typedef struct {
    uint64_t fsyncs, fsync_rounds, fsync_ns_total, appends, append_bytes;
    uint64_t open_files, partitions;
} rn_logdir_stats_t;
void rn_logdir_stats(const rn_logdir_t *dir, rn_logdir_stats_t *out);
/* Durations of group-commit rounds that synced something (an ack's fsync wait). */
rn_histo_t *rn_logdir_sync_histo(rn_logdir_t *dir);
/* Runs one maintenance pass now (retention, compaction, checkpoints), as the
 * maintenance thread does every retention_check_interval_ms. For tests and tools. */
void rn_logdir_maintain(rn_logdir_t *dir);

/* References: a log found through the dir is borrowed while the dir's caller
 * holds it registered; retain it to keep it across a concurrent delete. */
void rn_log_retain(rn_log_t *log);
void rn_log_release(rn_log_t *log);

const char *rn_log_topic(const rn_log_t *log);
int32_t rn_log_partition(const rn_log_t *log);
void rn_log_set_config(rn_log_t *log, const rn_log_config_t *cfg);

typedef struct {
    int32_t leader_epoch;        /* stamped into each batch's partitionLeaderEpoch */
    int64_t now_ms;              /* LogAppendTime, if the topic uses it */
    bool is_internal;            /* coordinator writes: control batches allowed */
    bool as_follower;            /* replica of the leader's log: batches keep their offsets and
                                    leader epochs (the first must start at or after the log end,
                                    each after the previous), no producer checks, no LogAppendTime
                                    rewrite; the epoch cache follows the batches' epochs */
} rn_append_opts_t;

typedef struct {
    int64_t base_offset;      /* first offset assigned (or of the duplicate) */
    int64_t last_offset;
    int64_t log_append_time;  /* -1 unless LogAppendTime */
    int64_t log_start_offset;
    uint64_t sync_ticket;     /* durable mode: wait for this; 0: nothing to wait for */
    bool duplicate;           /* idempotent retry: nothing written, original offsets */
} rn_append_result_t;

/*
 * Append validated magic-2 batches (mutable: baseOffset, partitionLeaderEpoch
 * and, for LogAppendTime, maxTimestamp + CRC are rewritten in place). For
 * idempotent batches (producerId >= 0) the producer's epoch and sequence are
 * checked against its last 5 batches: a duplicate returns the original offsets
 * with `duplicate` set; otherwise OUT_OF_ORDER_SEQUENCE_NUMBER or
 * INVALID_PRODUCER_EPOCH. Errors: KAFKA_STORAGE_ERROR (dir offline or write
 * failed), RN_ERR_NOSPACE mapped by callers to a retriable error, etc. On any
 * error nothing of the batches is visible.
 */
rn_err_t rn_log_append(rn_log_t *log, uint8_t *batches, size_t len, const rn_append_opts_t *opts,
                       rn_append_result_t *out);

typedef struct {
    rn_fileref_t *file; /* retained for the caller (release it), NULL if len == 0 */
    int64_t file_pos;
    int32_t len;        /* whole batches */
} rn_log_read_t;

/*
 * Read whole batches starting at the batch containing `offset`, from one
 * segment, up to `max_bytes` (the first batch is returned whole even when it is
 * larger, if `min_one`), stopping before any batch with offsets >= `upper`
 * (exclusive; e.g. the high watermark). OFFSET_OUT_OF_RANGE when offset is
 * below the log start or above the log end.
 */
rn_err_t rn_log_read(rn_log_t *log, int64_t offset, int32_t max_bytes, bool min_one, int64_t upper,
                     rn_log_read_t *out);

int64_t rn_log_start_offset(const rn_log_t *log);
int64_t rn_log_end_offset(const rn_log_t *log);
int64_t rn_log_high_watermark(const rn_log_t *log);
/* min(high watermark, first offset of the oldest ongoing transaction) — rn_log_txn.c */
int64_t rn_log_last_stable_offset(const rn_log_t *log);
int64_t rn_log_size_bytes(const rn_log_t *log);

/* Control record key types (COMMIT/ABORT markers written by the transaction coordinator). */
#define RN_CONTROL_ABORT 0
#define RN_CONTROL_COMMIT 1

/* An aborted transaction: its data lies in [first_offset, last_offset], the ABORT marker at last_offset. */
typedef struct {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;
} rn_aborted_txn_t;

/* Aborted transactions overlapping [from, upper) (that end at or after `from`
 * and start below `upper`), by marker offset, at most `max`. Returns the count. */
int32_t rn_log_aborted_txns(rn_log_t *log, int64_t from, int64_t upper, rn_aborted_txn_t *out, int32_t max);

/* ListOffsets by time: first offset whose timestamp >= ts (-1/-1 when none). */
rn_err_t rn_log_offset_for_timestamp(rn_log_t *log, int64_t ts, int64_t *offset, int64_t *timestamp);
/* ListOffsets MAX_TIMESTAMP: offset and timestamp of the record with the largest timestamp. */
rn_err_t rn_log_max_timestamp(rn_log_t *log, int64_t *offset, int64_t *timestamp);
/* DeleteRecords: move the log start offset (<= high watermark). */
rn_err_t rn_log_delete_records(rn_log_t *log, int64_t offset, int64_t *new_log_start);
/* OffsetForLeaderEpoch: end offset of `epoch` (largest epoch <= it). */
rn_err_t rn_log_end_offset_for_epoch(rn_log_t *log, int32_t epoch, int32_t *out_epoch, int64_t *out_end_offset);
int32_t rn_log_latest_epoch(const rn_log_t *log);

/* ---- replication (rn_log_replica.c) -------------------------------------- */

/* A replicated log no longer moves its own high watermark (see Visibility). */
void rn_log_set_replicated(rn_log_t *log, bool replicated);
/* The end of what this replica holds durably: the synced end in durable mode,
 * the log end in lazy mode. A leader counts itself in the ISR with this. */
int64_t rn_log_local_durable_end(rn_log_t *log);
/* Replicated logs: the high watermark, clamped to [current, log end]; it only
 * moves forward (truncation is the one thing that lowers it). */
void rn_log_set_high_watermark(rn_log_t *log, int64_t hw);
/* partition.metadata (Kafka's file in the partition directory: "version: 0" and
 * "topic_id: <URL-safe base64 of the 16 bytes>"): which incarnation of a topic
 * name the directory holds. Read: RN_ERR_NOT_FOUND without the file,
 * RN_ERR_CORRUPT if it does not parse. Write: replaced atomically, synced. */
rn_err_t rn_log_read_topic_id(rn_log_t *log, uint8_t id[16]);
rn_err_t rn_log_write_topic_id(rn_log_t *log, const uint8_t id[16]);
/* The high watermark replication-offset-checkpoint held for this partition
 * when the dir was opened (written every hw_checkpoint_interval_ms and at a
 * clean close), -1 if none: a restarted replica resumes from it. */
int64_t rn_log_checkpointed_high_watermark(const rn_log_t *log);
/* Lowers the high watermark to `hw` if it is above (a replica that does not
 * know what was committed starts low and learns it from replication). */
void rn_log_clamp_high_watermark(rn_log_t *log, int64_t hw);
/* Removes every batch at or past `offset` (a follower's divergent tail, KIP-101).
 * The cut falls on a batch boundary: the new log end is the base offset of the
 * batch holding `offset`, so it may be below `offset`. Later segments, index
 * entries, leader epochs, producer and transaction state past it go too.
 * OFFSET_OUT_OF_RANGE below the log start (use rn_log_reset_to). */
rn_err_t rn_log_truncate_to(rn_log_t *log, int64_t offset, int64_t *new_end);
/* Drops the whole log and starts it empty at `offset` (a follower that fell
 * behind the leader's log start). */
rn_err_t rn_log_reset_to(rn_log_t *log, int64_t offset);
/* Becoming leader at `epoch`: it starts at the log end (Kafka assigns the
 * epoch in the cache at once, so a follower's divergence check can find it
 * before the new leader has appended anything). */
rn_err_t rn_log_begin_epoch(rn_log_t *log, int32_t epoch);

#endif
