/*
 * rn_cleaner.c — log compaction (cleanup.policy=compact): keep the latest
 * record per key.
 *
 * A pass over one log, run by the maintenance thread:
 *
 *   1. Cleanable range: sealed segments from the start, ending before the
 *      first one that is newer than min.compaction.lag.ms or not wholly below
 *      the last stable offset (the high watermark, or an open transaction). The dirty part starts at the cleaner offset (the
 *      end of the previous pass; the log start after an open). Skip the log if
 *      dirty bytes / cleanable bytes < min.cleanable.dirty.ratio.
 *   2. Offset map: scan the dirty records, key hash → latest offset, in a table
 *      of log.cleaner.dedupe.buffer.size bytes (16 bytes an entry, filled to
 *      3/4). When it is full the pass stops at that batch: `upper`; the rest is
 *      cleaned by the next pass. Keys are hashed to 64 bits: two keys with the
 *      same hash (odds ~ n²/2^65) would lose the older one's value.
 *   3. Rewrite every cleanable segment with offsets below `upper`, batch by
 *      batch, into <base>.log.cleaned: a record is dropped if the map holds a
 *      later offset for its key, or it is a tombstone (null value) whose batch
 *      is older than delete.retention.ms. A batch keeping every record is copied
 *      byte for byte; one keeping some is rebuilt with the same base offset,
 *      offset deltas, lastOffsetDelta, producer id/epoch/sequence, leader epoch,
 *      attributes and codec; one keeping none disappears (offsets stay valid:
 *      a read of a missing offset returns the next batch). Batches at or above
 *      `upper`, control batches and keyless records are kept. Data batches of
 *      aborted transactions (the partition's aborted list) are dropped whole
 *      and never count as a key's latest record in step 2, so an aborted
 *      write cannot take the place of the committed one before it.
 *   4. Swap, per segment: fdatasync the .cleaned file, rename it to
 *      <base>.log.swap, then under the log's write lock unlink the old
 *      indexes, rename .swap over .log, rebuild the indexes, fsync the dir.
 *      Recovery: a .cleaned file is deleted (old segment intact), a .swap file
 *      is renamed over .log, a missing index is rebuilt (rn_recovery.c cases
 *      6, 10, 11). Reads in flight keep the old file's fd.
 *
 * The segment list is only read under the lock; the reading and writing of
 * steps 2-3 run without it (sealed segments do not change), and a segment that
 * retention deleted meanwhile is skipped at swap time.
 *
 * Not done (Kafka does): grouping small cleaned segments into one, keeping the
 * last batch of each producer for its state, removing transaction markers
 * (they are kept), and a persisted cleaner-offset-checkpoint (a restart
 * re-cleans from the start).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_arena.h"
#include "rn_assert.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

typedef struct {
    uint64_t *hash; /* 0: empty */
    int64_t *offset;
    size_t cap, count, max_count;
} offset_map_t;

static bool map_init(offset_map_t *m, int64_t bytes) {
    size_t cap = (size_t)(bytes < 4096 ? 4096 : bytes) / 16;
    m->hash = calloc(cap, sizeof(uint64_t));
    m->offset = malloc(cap * sizeof(int64_t));
    m->cap = cap;
    m->count = 0;
    m->max_count = cap * 3 / 4;
    return m->hash && m->offset;
}

static void map_free(offset_map_t *m) {
    free(m->hash);
    free(m->offset);
}

static uint64_t key_hash(rn_bytes_t key) {
    uint64_t h = (uint64_t)rn_hash_bytes(key.ptr, (size_t)key.len);
    h ^= (uint64_t)key.len * 0x9E3779B97F4A7C15ull; /* splitmix finaliser */
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h ? h : 1;
}

static void map_put(offset_map_t *m, uint64_t h, int64_t offset) {
    for (size_t i = h % m->cap;; i = (i + 1) % m->cap) {
        if (m->hash[i] == h) {
            if (offset > m->offset[i]) m->offset[i] = offset;
            return;
        }
        if (m->hash[i] == 0) {
            m->hash[i] = h;
            m->offset[i] = offset;
            m->count++;
            return;
        }
    }
}

static int64_t map_get(const offset_map_t *m, uint64_t h) {
    for (size_t i = h % m->cap;; i = (i + 1) % m->cap) {
        if (m->hash[i] == h) return m->offset[i];
        if (m->hash[i] == 0) return -1;
    }
}

/* A sealed segment as captured under the lock. */
typedef struct {
    rn__segment_t *seg;
    int64_t base, size;
    rn_fileref_t *file;
} cseg_t;

#define MAX_DECOMPRESSED (64u << 20)

/* The aborted transactions, copied under the lock (sorted by last offset). */
typedef struct {
    rn_aborted_txn_t *v;
    int32_t n;
} aborted_t;

/* Is h a data batch of an aborted transaction? The first aborted entry of its
 * producer ending at or after the batch is its transaction's, if any. */
static bool in_aborted(const aborted_t *ab, const rn_batch_header_t *h) {
    if (!rn_batch_is_transactional(h) || rn_batch_is_control(h) || h->producer_id < 0) return false;
    int32_t lo = 0, hi = ab->n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (ab->v[mid].last_offset < h->base_offset) lo = mid + 1;
        else hi = mid;
    }
    for (int32_t i = lo; i < ab->n; i++)
        if (ab->v[i].producer_id == h->producer_id) return ab->v[i].first_offset <= h->base_offset;
    return false;
}

/* Step 2: map the dirty records from `from`; returns the offset it got to. */
static rn_err_t build_map(rn_log_t *log, cseg_t *segs, int n, int64_t from, int64_t end, const aborted_t *ab,
                          offset_map_t *m, int64_t *upper) {
    rn_arena_t arena;
    rn_arena_init(&arena, MAX_DECOMPRESSED + (1u << 20));
    rn_err_t err = RN_OK;
    *upper = end;
    for (int i = 0; i < n && !err; i++) {
        if (segs[i].size == 0) continue;
        if (i + 1 < n && segs[i + 1].base <= from) continue;
        rn__scan_t s;
        rn__scan_init(&s, segs[i].file->fd, 0, segs[i].size);
        while ((err = rn__scan_next(&s)) == RN_OK) {
            if (rn_batch_last_offset(&s.h) < from || rn_batch_is_control(&s.h) || in_aborted(ab, &s.h)) continue;
            if (m->count + (size_t)(s.h.record_count > 0 ? s.h.record_count : 0) > m->max_count) {
                *upper = s.h.base_offset;
                err = RN_ERR_LIMIT;
                break;
            }
            if ((err = rn__scan_body(&s)) != RN_OK) break;
            rn_record_iter_t it;
            rn_arena_reset(&arena);
            if ((err = rn_record_iter_init(&it, s.batch, s.size, MAX_DECOMPRESSED, &arena)) != RN_OK) break;
            rn_record_t rec;
            while (rn_record_iter_next(&it, &rec))
                if (rec.offset >= from && rec.key.len >= 0) map_put(m, key_hash(rec.key), rec.offset);
            if ((err = it.err) != RN_OK) break;
        }
        rn__scan_free(&s);
        if (err == RN_ERR_NOT_FOUND) err = RN_OK;
    }
    rn_arena_reset(&arena);
    if (err == RN_ERR_LIMIT) err = RN_OK;
    return err;
}

typedef struct {
    int fd;
    int64_t pos;
    rn_buf_t buf;
} out_t;

static rn_err_t out_flush(out_t *o) {
    if (o->buf.len == 0) return RN_OK;
    if (rn__pwrite_all(o->fd, o->buf.data, o->buf.len, o->pos) < 0) {
        int e = errno;
        return e == ENOSPC || e == EDQUOT ? RN_ERR_NOSPACE : RN_ERR_IO;
    }
    o->pos += (int64_t)o->buf.len;
    rn_buf_reset(&o->buf);
    return RN_OK;
}

/* Step 3 for one batch: appends what survives to o->buf; *changed if not copied whole. */
static rn_err_t clean_batch(const rn__scan_t *s, const offset_map_t *m, const aborted_t *ab, int64_t upper,
                            int64_t now_ms, int64_t delete_retention_ms, rn_arena_t *arena, out_t *o, bool *changed) {
    const rn_batch_header_t *h = &s->h;
    if (h->base_offset >= upper || rn_batch_is_control(h)) {
        rn_buf_put(&o->buf, s->batch, s->size);
        return rn_buf_err(&o->buf);
    }
    if (in_aborted(ab, h)) {
        *changed = true;
        return RN_OK;
    }
    bool old_tombstones = now_ms - h->max_timestamp > delete_retention_ms;
    rn_record_iter_t it;
    rn_arena_reset(arena);
    rn_err_t err = rn_record_iter_init(&it, s->batch, s->size, MAX_DECOMPRESSED, arena);
    if (err) return err;
    int32_t kept = 0, total = 0;
    rn_record_t rec;
    /* First pass: count survivors. */
    while (rn_record_iter_next(&it, &rec)) {
        total++;
        bool keep = true;
        if (rec.key.len >= 0) {
            int64_t latest = map_get(m, key_hash(rec.key));
            if (latest > rec.offset) keep = false;
            else if (rec.value.len < 0 && old_tombstones) keep = false;
        }
        kept += keep;
    }
    if (it.err) return it.err;
    if (kept == total) {
        rn_buf_put(&o->buf, s->batch, s->size);
        return rn_buf_err(&o->buf);
    }
    *changed = true;
    if (kept == 0) return RN_OK;
    rn_batch_builder_t b;
    size_t start = o->buf.len;
    rn_batch_builder_init(&b, &o->buf, h->base_offset, rn_batch_codec(h), MAX_DECOMPRESSED + s->size);
    b.attributes = (int16_t)(h->attributes & ~RN_BATCH_ATTR_CODEC_MASK) | (int16_t)rn_batch_codec(h);
    b.producer_id = h->producer_id;
    b.producer_epoch = h->producer_epoch;
    b.base_sequence = h->base_sequence;
    b.partition_leader_epoch = h->partition_leader_epoch;
    rn_record_iter_t it2;
    rn_record_iter_init(&it2, s->batch, s->size, MAX_DECOMPRESSED, arena); /* decompressed again: fine */
    while (rn_record_iter_next(&it2, &rec)) {
        if (rec.key.len >= 0) {
            int64_t latest = map_get(m, key_hash(rec.key));
            if (latest > rec.offset || (rec.value.len < 0 && old_tombstones)) continue;
        }
        rn_batch_builder_add_raw_headers(&b, rec.offset - h->base_offset, rec.timestamp, rec.key, rec.value,
                                         rec.header_count, rec.headers, rec.headers_len);
    }
    if (it2.err) {
        rn_batch_builder_abort(&b);
        return it2.err;
    }
    err = rn_batch_builder_finish(&b);
    if (err) return err;
    /* Keep the original lastOffsetDelta (producer sequences count on it) and, for
     * LogAppendTime, the original maxTimestamp. */
    uint8_t *p = o->buf.data + start;
    size_t total_size = o->buf.len - start;
    rn_store_be32(p + RN_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)h->last_offset_delta);
    if (h->attributes & RN_BATCH_ATTR_LOG_APPEND_TIME)
        rn_store_be64(p + RN_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)h->max_timestamp);
    rn_batch_update_crc(p, total_size);
    return RN_OK;
}

/* Rewrites one segment into <base>.log.cleaned; *changed false: nothing to swap. */
static rn_err_t clean_segment(rn_log_t *log, const cseg_t *cs, const offset_map_t *m, const aborted_t *ab,
                              int64_t upper, int64_t now_ms, bool *changed, int64_t *new_size) {
    char path[4096];
    rn__segment_path(log, cs->base, ".log.cleaned", path, sizeof(path));
    out_t o = {.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), .pos = 0};
    if (o.fd < 0) {
        RN_ERROR("log", "open(%s) failed: %s", path, strerror(errno));
        return RN_ERR_IO;
    }
    rn_buf_init(&o.buf, SIZE_MAX);
    rn_arena_t arena;
    rn_arena_init(&arena, MAX_DECOMPRESSED + (1u << 20));
    rn__scan_t s;
    rn__scan_init(&s, cs->file->fd, 0, cs->size);
    rn_err_t err;
    *changed = false;
    while ((err = rn__scan_next(&s)) == RN_OK) {
        if ((err = rn__scan_body(&s)) != RN_OK) break;
        err = clean_batch(&s, m, ab, upper, now_ms, log->cfg.delete_retention_ms, &arena, &o, changed);
        if (!err && o.buf.len >= (1u << 20)) err = out_flush(&o);
        if (err) break;
    }
    if (err == RN_ERR_NOT_FOUND) err = out_flush(&o);
    if (!err && *changed && rn__fdatasync(o.fd) < 0) err = RN_ERR_IO;
    *new_size = o.pos;
    rn__scan_free(&s);
    rn_arena_reset(&arena);
    rn_buf_free(&o.buf);
    close(o.fd);
    if (err || !*changed) {
        unlink(path);
        return err;
    }
    char swap[4096];
    rn__segment_path(log, cs->base, ".log.swap", swap, sizeof(swap));
    if (rename(path, swap) < 0 || rn__fsync_dir(log->path) < 0) {
        RN_ERROR("log", "rename(%s) failed: %s", path, strerror(errno));
        unlink(path);
        return RN_ERR_IO;
    }
    return RN_OK;
}

/* Step 4 for one segment (write lock held). */
static rn_err_t swap_in(rn_log_t *log, const cseg_t *cs, int64_t new_size) {
    char swap[4096], path[4096];
    rn__segment_path(log, cs->base, ".log.swap", swap, sizeof(swap));
    int32_t i = rn__log_find_segment(log, cs->base);
    if (log->deleted || i < 0 || i >= log->nsegs - 1 || log->segs[i] != cs->seg ||
        log->segs[i]->base_offset != cs->base || log->segs[i]->size_bytes != cs->size) {
        unlink(swap); /* retention or DeleteRecords removed it meanwhile */
        return RN_OK;
    }
    rn__segment_t *seg = log->segs[i];
    for (int k = 0; k < RN__F_COUNT; k++) rn__filecache_drop(&log->dir->cache, &seg->files[k]);
    for (int k = RN__F_INDEX; k < RN__F_COUNT; k++) {
        rn__segment_path(log, cs->base, rn__segment_ext(k), path, sizeof(path));
        unlink(path);
    }
    rn__segment_path(log, cs->base, ".log", path, sizeof(path));
    if (rename(swap, path) < 0) {
        RN_ERROR("log", "rename(%s) failed: %s", swap, strerror(errno));
        return RN_ERR_IO;
    }
    atomic_fetch_sub(&log->size_bytes, seg->size_bytes - new_size);
    seg->size_bytes = new_size;
    atomic_store(&seg->index_entries, -1);
    atomic_store(&seg->timeindex_entries, -1);
    atomic_store(&seg->max_timestamp, RN__TS_UNKNOWN);
    int64_t end;
    bool trunc;
    rn_err_t err =
        rn__segment_recover(log, seg, INT64_MAX, true, false, log->cfg.index_interval_bytes, &end, &trunc);
    if (!err) err = rn__segment_seal(log, seg);
    for (int k = RN__F_INDEX; !err && k < RN__F_COUNT; k++) {
        rn_fileref_t *f;
        err = rn__segment_file(log, seg, k, true, &f);
        if (!err) {
            if (rn__fdatasync(f->fd) < 0) err = RN_ERR_IO;
            rn_fileref_release(f);
        }
    }
    if (!err && rn__fsync_dir(log->path) < 0) err = RN_ERR_IO;
    return err;
}

int64_t rn__log_compact(rn_log_t *log, int64_t now_ms, int64_t dedupe_buffer_bytes) {
    /* Capture the cleanable segments. */
    pthread_rwlock_rdlock(&log->lock);
    if (log->deleted || !(log->cfg.cleanup_policy & RN_CLEANUP_COMPACT) || log->nsegs < 2) {
        pthread_rwlock_unlock(&log->lock);
        return 0;
    }
    int64_t hw = rn_log_last_stable_offset(log), lag = log->cfg.min_compaction_lag_ms;
    double ratio = log->cfg.min_cleanable_dirty_ratio;
    int64_t from = log->cleaner_offset >= 0 ? log->cleaner_offset : atomic_load(&log->log_start_offset);
    cseg_t *segs = calloc((size_t)log->nsegs, sizeof(*segs));
    int n = 0;
    rn_err_t err = segs ? RN_OK : RN_ERR_NOMEM;
    int64_t clean_bytes = 0, dirty_bytes = 0;
    for (int32_t i = 0; !err && i < log->nsegs - 1; i++) {
        rn__segment_t *seg = log->segs[i];
        int64_t ts, off;
        if (log->segs[i + 1]->base_offset > hw) break;
        if (rn__segment_max_timestamp(log, seg, &ts, &off) != RN_OK || (lag > 0 && now_ms - ts < lag)) break;
        if (rn__segment_file(log, seg, RN__F_LOG, false, &segs[n].file) != RN_OK) break;
        segs[n].seg = seg;
        segs[n].base = seg->base_offset;
        segs[n].size = seg->size_bytes;
        if (log->segs[i + 1]->base_offset <= from) clean_bytes += seg->size_bytes;
        else dirty_bytes += seg->size_bytes;
        n++;
    }
    int64_t end = n > 0 ? log->segs[n]->base_offset : 0;
    aborted_t ab = {NULL, 0};
    if (!err && n > 0 && log->txns.naborted > 0) {
        ab.v = malloc((size_t)log->txns.naborted * sizeof(*ab.v));
        if (ab.v) {
            memcpy(ab.v, log->txns.aborted, (size_t)log->txns.naborted * sizeof(*ab.v));
            ab.n = log->txns.naborted;
        } else {
            err = RN_ERR_NOMEM;
        }
    }
    pthread_rwlock_unlock(&log->lock);

    int64_t freed = 0;
    if (err || n == 0 || dirty_bytes == 0 || (double)dirty_bytes / (double)(clean_bytes + dirty_bytes) < ratio)
        goto out;

    offset_map_t m;
    if (!map_init(&m, dedupe_buffer_bytes)) {
        map_free(&m);
        err = RN_ERR_NOMEM;
        goto out;
    }
    int64_t upper;
    err = build_map(log, segs, n, from, end, &ab, &m, &upper);
    if (!err && upper <= from) {
        RN_WARN("log", "%s: dedupe buffer too small for one batch; not compacting", log->path);
        err = RN_ERR_LIMIT;
    }
    for (int i = 0; !err && i < n && segs[i].base < upper; i++) {
        bool changed;
        int64_t new_size;
        err = clean_segment(log, &segs[i], &m, &ab, upper, now_ms, &changed, &new_size);
        if (err || !changed) continue;
        pthread_rwlock_wrlock(&log->lock);
        err = swap_in(log, &segs[i], new_size);
        pthread_rwlock_unlock(&log->lock);
        if (err) {
            rn__logdir_fail(log->dir, "compaction swap", log->path, EIO);
            break;
        }
        freed += segs[i].size - new_size;
    }
    map_free(&m);
    if (!err) {
        pthread_rwlock_wrlock(&log->lock);
        log->cleaner_offset = upper;
        pthread_rwlock_unlock(&log->lock);
        RN_INFO("log", "%s: compacted below offset %lld, %lld bytes freed", log->path, (long long)upper,
                (long long)freed);
    }
out:
    for (int i = 0; i < n; i++) rn_fileref_release(segs[i].file);
    free(segs);
    free(ab.v);
    return err ? err : freed;
}
