/*
 * rn_log_internal.h — shared internals of the storage engine (src/log only).
 *
 * Layers inside src/log, each file importing only from those above it:
 *
 *   rn_filecache.c       bounded LRU of open files (no fd per idle segment)
 *   rn_index.c           .index / .timeindex entries, pread + binary search
 *   rn_segment.c         one segment: on-disk format, batch scanner, append, position lookup
 *   rn_producer_state.c  idempotent producer table and its snapshot file
 *   rn_log_txn.c         ongoing transactions, last stable offset, aborted transactions
 *   rn_epoch_cache.c     leader epoch → start offset, leader-epoch-checkpoint file
 *   rn_recovery.c        loading a partition directory after a clean or unclean shutdown
 *   rn_partition_log.c   rn_log_t: append, read, offsets, roll
 *   rn_retention.c       time/size retention and DeleteRecords
 *   rn_cleaner.c         log compaction
 *   rn_logdir.c          rn_logdir_t: partitions, flusher thread, maintenance thread, checkpoints
 *
 * Locks, always taken in this order: dir->lock (partition map) → log->lock
 * (rwlock: appends, rolls, segment-list changes write; reads, lookups read) →
 * dir->flush_lock (dirty list, tickets) → dir->cache.lock (open files).
 * No file I/O is done while holding flush_lock or cache.lock except open(2).
 */
#ifndef RN_LOG_INTERNAL_H
#define RN_LOG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "rn_batch.h"
#include "rn_histo.h"
#include "rn_log.h"
#include "rn_map.h"

#define RN__TS_UNKNOWN INT64_MIN
#define RN__MAX_BATCH_BYTES (256 << 20) /* a length field above this is garbage */
#define RN__PRODUCER_BATCHES 5          /* Kafka's ProducerStateEntry.NumBatchesToRetain */
#define RN__SYNC_HELPERS 7              /* a round fdatasyncs up to 8 files at once */
/* Preallocation (durable logs with cfg.preallocate): the active segment is kept
 * RN__PREALLOC_CHUNK of written zeros ahead of its write position, while the
 * dir's zeros not yet written over stay under RN__PREALLOC_BUDGET and the dir
 * appends less than RN__PREALLOC_MAX_RATE bytes/s (above it, writing every
 * byte twice costs more disk time than the cheaper fdatasyncs save). */
#define RN__PREALLOC_CHUNK (1 << 20)
#define RN__PREALLOC_BUDGET (64LL << 20)
#define RN__PREALLOC_MAX_RATE (64LL << 20)

/* ---- file cache (rn_filecache.c) ---------------------------------------- */

typedef struct rn__cfile {
    rn_fileref_t *file; /* the cache's reference; NULL when closed (cache lock) */
    struct rn__cfile *prev, *next;
} rn__cfile_t;

typedef struct {
    pthread_mutex_t lock;
    rn__cfile_t lru; /* sentinel: lru.next is the most recently used */
    int open_count;
    int max_open;
} rn__filecache_t;

void rn__filecache_init(rn__filecache_t *c, int max_open);
void rn__filecache_destroy(rn__filecache_t *c);
/* A retained reference to cf's open file, opening `path` if needed (O_CREAT if create). */
rn_err_t rn__filecache_get(rn__filecache_t *c, rn__cfile_t *cf, const char *path, bool create, rn_fileref_t **out);
/* Close the cache's reference (holders of retained refs keep theirs). */
void rn__filecache_drop(rn__filecache_t *c, rn__cfile_t *cf);
int rn__filecache_open_count(rn__filecache_t *c);

/* ---- test hooks ---------------------------------------------------------- */

/* Returns an errno to inject for this operation, or 0. Tests only. */
enum { RN__IO_WRITE = 1, RN__IO_FSYNC = 2 };
extern int (*rn__log_io_hook)(int op, int fd, size_t len);
/* Segment data reads (batch scans), for tests that check a clean open reads none. */
extern atomic_long rn__log_data_reads;
/* Simulates a crash: stops the threads and frees the dir without syncing,
 * checkpointing or writing the clean marker (written data stays in the files). */
void rn__logdir_crash(rn_logdir_t *dir);
ssize_t rn__pwrite_all(int fd, const void *p, size_t n, int64_t pos); /* -1 with errno, or n */
int rn__fdatasync(int fd);
int rn__fsync_dir(const char *path);
/* Write a small file atomically: tmp, fsync (if sync), rename, fsync dir (if sync). */
rn_err_t rn__write_file_atomic(const char *path, const void *data, size_t len, bool sync);
/* Read a whole small file (malloc'd, NUL-terminated); RN_ERR_NOT_FOUND if absent. */
rn_err_t rn__read_file(const char *path, size_t max_bytes, char **out, size_t *len);

/* ---- indexes (rn_index.c) ------------------------------------------------ */

#define RN__INDEX_ENTRY 8      /* relativeOffset u32, position u32 */
#define RN__TIMEINDEX_ENTRY 12 /* timestamp i64, relativeOffset u32 */

/* Largest entry with relative offset <= rel (found=false: none). Entries are
 * read with pread; no index is held in memory. */
rn_err_t rn__index_lookup(int fd, int32_t entries, uint32_t rel, bool *found, uint32_t *entry_rel,
                          uint32_t *entry_pos);
/* Largest time entry with timestamp <= ts (found=false: none). */
rn_err_t rn__timeindex_lookup(int fd, int32_t entries, int64_t ts, bool *found, int64_t *entry_ts,
                              uint32_t *entry_rel);
rn_err_t rn__index_read(int fd, size_t entry_size, int32_t i, uint8_t *out);
static inline void rn__index_encode(uint8_t *p, uint32_t rel, uint32_t pos) {
    rn_store_be32(p, rel);
    rn_store_be32(p + 4, pos);
}
static inline void rn__timeindex_encode(uint8_t *p, int64_t ts, uint32_t rel) {
    rn_store_be64(p, (uint64_t)ts);
    rn_store_be32(p + 8, rel);
}

/* ---- segments (rn_segment.c) --------------------------------------------- */

enum { RN__F_LOG = 0, RN__F_INDEX = 1, RN__F_TIMEINDEX = 2, RN__F_COUNT = 3 };

typedef struct rn__segment {
    int64_t base_offset;
    int64_t size_bytes;           /* committed bytes of .log (its logical size) */
    int64_t prealloc_end;         /* 0, or the .log file's size: zeros from size_bytes to here */
    int64_t created_ms;           /* for segment.ms; 0 until the first append */
    _Atomic int64_t max_timestamp;        /* RN__TS_UNKNOWN until loaded from the .timeindex */
    _Atomic int64_t max_timestamp_offset; /* last offset of the batch holding max_timestamp */
    int64_t last_time_entry_ts;   /* timestamp of the last .timeindex entry (active segment) */
    atomic_int index_entries;     /* -1: not known until the file is first opened */
    atomic_int timeindex_entries;
    atomic_bool index_bad;        /* lookups fall back to scanning; maintenance rebuilds */
    int32_t bytes_since_index;
    bool append_ready;            /* the append-side fields above are loaded */
    rn__cfile_t files[RN__F_COUNT];
} rn__segment_t;

/* Reads batches sequentially through a buffer window. */
typedef struct {
    int fd;
    int64_t next_pos; /* where the next batch starts */
    int64_t end;      /* stop here (committed size) */
    uint8_t *buf;
    size_t cap;
    int64_t win_pos; /* window [win_pos, win_pos + win_len) */
    size_t win_len;
    /* the current batch (valid after RN_OK) */
    int64_t pos;
    size_t size;
    rn_batch_header_t h;
    const uint8_t *batch; /* whole batch, after rn__scan_body */
} rn__scan_t;

void rn__scan_init(rn__scan_t *s, int fd, int64_t pos, int64_t end);
void rn__scan_free(rn__scan_t *s);
/* RN_OK: the next batch's header; RN_ERR_NOT_FOUND at `end`; RN_ERR_CORRUPT:
 * short or malformed batch at s->pos (CRC not checked here); RN_ERR_IO. */
rn_err_t rn__scan_next(rn__scan_t *s);
/* Loads the whole current batch into s->batch. */
rn_err_t rn__scan_body(rn__scan_t *s);

const char *rn__segment_ext(int kind);
void rn__segment_path(const rn_log_t *log, int64_t base, const char *ext, char *out, size_t cap);
rn__segment_t *rn__segment_new(int64_t base_offset);
/* Drops cached files and frees (files stay on disk). */
void rn__segment_free(rn_log_t *log, rn__segment_t *seg);
/* Drops cached files, unlinks the files, frees. Open filerefs keep reading. */
void rn__segment_destroy(rn_log_t *log, rn__segment_t *seg);
rn_err_t rn__segment_file(rn_log_t *log, rn__segment_t *seg, int kind, bool create, rn_fileref_t **out);
/* Loads index entry counts and the last time entry so appends can continue. */
rn_err_t rn__segment_prepare_append(rn_log_t *log, rn__segment_t *seg);
/* Append index entries for one batch just written at `pos` (call in batch order). */
typedef struct {
    uint8_t idx[64 * RN__INDEX_ENTRY];
    uint8_t tidx[64 * RN__TIMEINDEX_ENTRY];
    int nidx, ntidx;
} rn__index_pending_t;
void rn__segment_note_batch(rn__segment_t *seg, rn__index_pending_t *pend, const rn_batch_header_t *h, int64_t pos,
                            int32_t index_interval_bytes);
rn_err_t rn__segment_write_index(rn_log_t *log, rn__segment_t *seg, rn__index_pending_t *pend);
/* Adds the final .timeindex entry (the segment's max timestamp) when it stops being active. */
rn_err_t rn__segment_seal(rn_log_t *log, rn__segment_t *seg);
/* Before an append of len bytes to the active segment (fd: its .log): writes
 * zeros ahead of the write position if the room left is under half a chunk
 * and the dir's budget and append rate allow. Best effort: failures only skip it. */
void rn__segment_preallocate(rn_log_t *log, rn__segment_t *seg, int fd, size_t len);
/* After size_bytes grew from old_size: the zeros written over leave the budget. */
void rn__segment_grew(rn_log_t *log, rn__segment_t *seg, int64_t old_size);
/* Cuts the .log file back to size_bytes if it has preallocated zeros (roll, clean close). */
rn_err_t rn__segment_trim(rn_log_t *log, rn__segment_t *seg);
/* The file was cut to size_bytes by the caller: forget its zeros. */
void rn__segment_prealloc_forget(rn_log_t *log, rn__segment_t *seg);
/* Position of the first batch whose last offset >= offset (seg->size_bytes if none). */
rn_err_t rn__segment_find(rn_log_t *log, rn__segment_t *seg, int64_t offset, int64_t *pos);
rn_err_t rn__segment_max_timestamp(rn_log_t *log, rn__segment_t *seg, int64_t *ts, int64_t *offset);
int32_t rn__segment_index_entries(rn_log_t *log, rn__segment_t *seg); /* -1 on error */
/*
 * Checks the segment from the last index entry below `check_from` (batches at
 * or after it get length, magic, offset order and CRC checks), truncates a bad
 * tail, and rewrites the index entries from there. full_rebuild: discard both
 * indexes first. contiguous: batch offsets must follow each other without
 * gaps (the last segment, which compaction never rewrites). Returns the next offset after the last valid batch (base
 * offset if empty) and whether anything was truncated.
 */
rn_err_t rn__segment_recover(rn_log_t *log, rn__segment_t *seg, int64_t check_from, bool full_rebuild,
                             bool contiguous, int32_t index_interval_bytes, int64_t *end_offset, bool *truncated);

/* ---- transactions (rn_log_txn.c) ---------------------------------------- */

typedef struct {
    int64_t producer_id;
    int64_t first_offset;
} rn__txn_ongoing_t;

typedef struct {
    rn__txn_ongoing_t *ongoing; /* one per producer with an open transaction */
    int32_t nongoing, ongoing_cap;
    rn_aborted_txn_t *aborted;  /* sorted by last_offset (the ABORT marker) */
    int32_t naborted, aborted_cap;
    _Atomic int64_t first_unstable; /* smallest ongoing first_offset, INT64_MAX none */
} rn__txns_t;

void rn__txns_free(rn__txns_t *t);
/* RN_CONTROL_ABORT/COMMIT from a control batch's record key, -1 if not a valid marker. */
int rn__control_type(const uint8_t *batch, size_t total_size);
/* Applies an appended batch (control_type from rn__control_type for markers). false: out of memory. */
bool rn__txns_apply(rn__txns_t *t, const rn_batch_header_t *h, int control_type);
/* Forgets aborted transactions whose marker lies below `offset`. */
void rn__txns_remove_below(rn__txns_t *t, int64_t offset);
/* After an append wrote `batch` (write lock held): the transaction state, and
 * the .txnindex entry of an ABORT marker. */
void rn__log_txns_append(rn_log_t *log, const uint8_t *batch, const rn_batch_header_t *h);
/* Calls fn for every batch whose last offset is >= from, to the log end
 * (rn_partition_log.c); a corrupt batch ends it with KAFKA_STORAGE_ERROR. */
typedef rn_err_t (*rn__scan_fn)(void *ctx, rn_log_t *log, rn__segment_t *seg, rn__scan_t *s);
rn_err_t rn__log_scan_from(rn_log_t *log, int64_t from, rn__scan_fn fn, void *ctx);
/* At open, after recovery: ongoing and aborted transactions (see rn_log_txn.c). */
rn_err_t rn__log_load_txns(rn_log_t *log, bool clean);
/* Drops .txnindex entries whose marker is at or past `from` (a truncation). */
void rn__txnindex_cut(rn_log_t *log, int64_t from);
#define RN__TXNINDEX_ENTRY 34
void rn__txnindex_encode(uint8_t out[RN__TXNINDEX_ENTRY], const rn_aborted_txn_t *a, int64_t lso);
bool rn__txnindex_decode(const uint8_t in[RN__TXNINDEX_ENTRY], rn_aborted_txn_t *a, int64_t *lso);

/* ---- producer state (rn_producer_state.c) -------------------------------- */

typedef struct {
    int32_t first_seq, last_seq;
    int64_t first_offset;
    int32_t offset_delta; /* last_offset - first_offset */
    int64_t timestamp;
} rn__pbatch_t;

typedef struct {
    int64_t producer_id; /* -1: empty slot */
    int16_t epoch;
    uint8_t nbatches; /* newest last */
    rn__pbatch_t batches[RN__PRODUCER_BATCHES];
} rn__producer_t;

typedef struct {
    rn__producer_t *slots;
    size_t cap, count;
} rn__pstate_t;

void rn__pstate_init(rn__pstate_t *ps);
void rn__pstate_free(rn__pstate_t *ps);
const rn__producer_t *rn__pstate_get(const rn__pstate_t *ps, int64_t producer_id);
/*
 * Checks an idempotent batch against the producer's entry (`known` may be a
 * staged copy or NULL for an unknown producer). RN_OK: append it; RN_OK with
 * *dup set: duplicate of a retained batch (offsets returned);
 * INVALID_PRODUCER_EPOCH or OUT_OF_ORDER_SEQUENCE_NUMBER otherwise.
 */
rn_err_t rn__pstate_check(const rn__producer_t *known, const rn_batch_header_t *h, bool *dup, int64_t *dup_first,
                          int64_t *dup_last);
/* Applies an appended batch to an entry (initialising it if producer_id is -1). */
void rn__producer_apply(rn__producer_t *p, const rn_batch_header_t *h);
bool rn__pstate_put(rn__pstate_t *ps, const rn__producer_t *p);
/* Applies a batch (from an append or a log scan); false only on ENOMEM. */
bool rn__pstate_update(rn__pstate_t *ps, const rn_batch_header_t *h);
/* Forgets producers whose last batch ends below `offset` (after the log start moves). */
void rn__pstate_remove_below(rn__pstate_t *ps, int64_t offset);
/* Snapshot v2 also holds the ongoing transactions of `txns` (NULL: none);
 * reading fills txns->ongoing if txns is not NULL (v1 files: none). */
rn_err_t rn__pstate_write_snapshot(const rn__pstate_t *ps, const rn__txns_t *txns, const char *path, bool sync);
rn_err_t rn__pstate_read_snapshot(rn__pstate_t *ps, const char *path, rn__txns_t *txns);

/* ---- leader epochs (rn_epoch_cache.c) ------------------------------------ */

typedef struct {
    int32_t epoch;
    int64_t start_offset;
} rn__epoch_entry_t;

typedef struct {
    rn__epoch_entry_t *v;
    int32_t n, cap;
} rn__epochs_t;

void rn__epochs_free(rn__epochs_t *e);
/* Records that `epoch` starts at `offset` if it is newer; true if it changed. */
bool rn__epochs_assign(rn__epochs_t *e, int32_t epoch, int64_t offset);
bool rn__epochs_truncate_end(rn__epochs_t *e, int64_t end_offset);     /* drop entries starting >= end */
bool rn__epochs_truncate_start(rn__epochs_t *e, int64_t start_offset); /* clamp entries below start */
void rn__epochs_end_offset(const rn__epochs_t *e, int32_t epoch, int64_t log_end, int32_t *out_epoch,
                           int64_t *out_end);
rn_err_t rn__epochs_write(const rn__epochs_t *e, const char *path);
rn_err_t rn__epochs_read(rn__epochs_t *e, const char *path);

/* ---- the partition log (rn_partition_log.c) ------------------------------ */

struct rn_log {
    rn_logdir_t *dir;
    pthread_rwlock_t lock;
    atomic_int refs;
    char *topic;
    int32_t partition;
    char *path; /* <dir>/<topic>-<partition> */
    rn_log_config_t cfg;

    rn__segment_t **segs; /* by base offset; the last is active */
    int32_t nsegs, segs_cap;

    _Atomic int64_t log_start_offset;
    _Atomic int64_t log_end_offset;
    _Atomic int64_t high_watermark;
    _Atomic int64_t size_bytes;
    int64_t synced_end;     /* everything below is fdatasync'ed */
    int64_t recovery_point; /* everything below is synced, indexes of sealed segments too */

    rn__epochs_t epochs;
    rn__pstate_t pstate;
    rn__txns_t txns;          /* write lock; txns.first_unstable is atomic */
    bool pstate_loaded;       /* loaded lazily on the first idempotent append */
    bool txns_rebuilt;        /* txns rebuilt by a scan at open: a clean close snapshots them */
    int64_t snapshot_offset;  /* newest producer snapshot on disk, -1 none */
    int64_t prev_snapshot_offset; /* the one before (kept in case recovery truncates below the newest) */
    int64_t cleaner_offset;   /* compaction: first offset not yet cleaned */
    int64_t checkpoint_hw;    /* from replication-offset-checkpoint at open, -1 none */
    bool deleted;
    atomic_bool replicated;   /* the replication layer owns the high watermark */
    uint64_t truncations;     /* bumped by rn_log_truncate_to/reset_to (write lock + flush_lock):
                                 a flush round taken before one must not move synced_end */

    /* Flush bookkeeping, guarded by dir->flush_lock. */
    struct rn_log *dirty_next;
    bool in_dirty;
    bool flush_urgent; /* durable acks waiting, or a rolled segment */
    int64_t pending_end;
    bool needs_dir_sync; /* a file was created in the partition directory */
    int64_t unflushed_msgs;
    int64_t flush_deadline_ms; /* lazy mode with flush.ms: monotonic ms, INT64_MAX none */
    rn_fileref_t **dirty_files;
    int32_t ndirty_files, dirty_files_cap;
};

rn_log_t *rn__log_new(rn_logdir_t *dir, const char *topic, int32_t partition, const rn_log_config_t *cfg);
void rn__log_free(rn_log_t *log);
bool rn__log_durable(const rn_log_config_t *cfg);
static inline rn__segment_t *rn__log_active(const rn_log_t *log) { return log->segs[log->nsegs - 1]; }
int32_t rn__log_find_segment(const rn_log_t *log, int64_t offset); /* largest base <= offset, or -1 */
bool rn__log_push_segment(rn_log_t *log, rn__segment_t *seg);
/* Removes segs[0..n) from the list (write lock held) and destroys them (files unlinked). */
void rn__log_remove_head(rn_log_t *log, int32_t n);
/* Seals the active segment and starts a new one at new_base (write lock held). */
rn_err_t rn__log_roll(rn_log_t *log, int64_t new_base, int64_t now_ms);
/* Loads producer state (snapshot + scan) if not yet loaded (write lock held). */
rn_err_t rn__log_load_pstate(rn_log_t *log);
void rn__log_set_start(rn_log_t *log, int64_t start); /* write lock held */
/* Writes <log end>.snapshot and deletes older ones but the previous. */
rn_err_t rn__log_snapshot_producers(rn_log_t *log, bool sync);
rn_err_t rn__log_write_epochs(rn_log_t *log);
/* Clean close of one log: seal, sync, snapshot. */
rn_err_t rn__log_close_clean(rn_log_t *log);

/* ---- recovery (rn_recovery.c) --------------------------------------------- */

typedef struct {
    bool fresh;                 /* a directory just created: nothing to recover */
    bool clean;                 /* the clean-shutdown marker was present */
    bool have_recovery_point;
    int64_t recovery_point;     /* from recovery-point-offset-checkpoint */
    bool have_log_start;
    int64_t log_start;          /* from log-start-offset-checkpoint */
} rn__recover_hints_t;

rn_err_t rn__log_load(rn_log_t *log, const rn__recover_hints_t *hints);

/* ---- retention and cleaning ----------------------------------------------- */

/* One retention pass; returns the number of segments deleted. */
int rn__log_retention(rn_log_t *log, int64_t now_ms);
/* One compaction pass if the log is cleanable; returns bytes freed or an error. */
int64_t rn__log_compact(rn_log_t *log, int64_t now_ms, int64_t dedupe_buffer_bytes);
rn_err_t rn__log_rebuild_bad_indexes(rn_log_t *log);

/* ---- the log dir (rn_logdir.c) -------------------------------------------- */

struct rn_logdir {
    rn_logdir_config_t cfg;
    char *path;
    pthread_mutex_t lock; /* logs */
    rn_map_t logs;        /* "<topic>-<partition>" → rn_log_t* */
    rn__filecache_t cache;
    atomic_bool offline;
    bool offline_reported;

    pthread_mutex_t flush_lock;
    pthread_cond_t flush_cond;
    rn_log_t *dirty_head;
    uint64_t ticket_issued;
    _Atomic uint64_t ticket_synced;
    rn_logdir_sync_fn sync_fn;
    void *sync_arg;
    bool stopping;
    bool flush_all; /* close: sync every dirty log now */
    bool root_dirty; /* a partition directory was created or removed */
    int64_t pinned_files; /* filerefs held by dirty lists; past max_open_files lazy logs flush early */
    uint64_t rounds_done;
    pthread_cond_t round_cond; /* signalled after each round */
    pthread_t flusher;

    /* Helpers that fdatasync a round's files in parallel. */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cv, pool_done_cv;
    pthread_t pool[RN__SYNC_HELPERS];
    int npool, pool_active;
    uint64_t pool_gen;
    bool pool_stop;
    rn_fileref_t **pool_files;
    size_t pool_nfiles;
    atomic_size_t pool_next;
    atomic_int pool_errno;

    pthread_mutex_t maint_lock;
    pthread_cond_t maint_cond;
    bool maint_stopping;
    pthread_t maint;
    int64_t last_checkpoint_ms, last_retention_ms, last_clean_ms, last_hw_checkpoint_ms;
    pthread_mutex_t maint_run_lock; /* one maintenance pass at a time */

    _Atomic int64_t free_bytes;
    _Atomic int64_t free_checked_ms;

    _Atomic int64_t prealloc_bytes; /* zeros written ahead in active segments, not yet written over */
    _Atomic int64_t append_rate;    /* bytes/s appended, measured by the flusher over >= 100 ms */
    int64_t rate_t0_ns;             /* flusher only: start of the current measurement */
    uint64_t rate_bytes0;

    _Atomic uint64_t st_fsyncs, st_fsync_rounds, st_fsync_ns, st_appends, st_append_bytes;
    rn_histo_t st_sync_round; /* duration of each group-commit round (what an ack waits for) */
};

/* Takes the dir offline (idempotent): logged, reported to the sync listener. */
void rn__logdir_fail(rn_logdir_t *dir, const char *what, const char *path, int err);
/* After a write: registers files to sync (retaining them) with the log end
 * they cover; returns a new sync ticket if want_ticket (durable appends). */
uint64_t rn__logdir_mark_dirty(rn_logdir_t *dir, rn_log_t *log, rn_fileref_t **files, int nfiles, int64_t end_offset,
                               int64_t records, bool urgent, bool want_ticket);
/* A partition directory got a new entry: sync it (and the log dir for new partitions) next round. */
void rn__logdir_mark_dir_dirty(rn_logdir_t *dir, rn_log_t *log, bool root);
/* Free space check before writing `len` bytes: RN_OK or RN_ERR_NOSPACE. */
rn_err_t rn__logdir_check_space(rn_logdir_t *dir, size_t len);

#endif
