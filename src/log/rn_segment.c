/*
 * rn_segment.c — one log segment: its files, a batch scanner, appends of index
 * entries, position lookup and recovery of a segment.
 *
 * ON-DISK FORMAT (all integers big-endian, as Kafka writes them)
 *
 * <dir>/<topic>-<partition>/                  one directory per partition
 *   <base:20 digits>.log                      record batches, exactly as on the wire
 *   <base>.index                              sparse offset index
 *   <base>.timeindex                          sparse time index
 *   <offset:20 digits>.snapshot               producer state (rn_producer_state.c)
 *   leader-epoch-checkpoint                   (rn_epoch_cache.c)
 *   *.cleaned, *.swap                         compaction in progress (rn_cleaner.c)
 *
 * .log — a sequence of RecordBatch v2 (layout in rn_batch.h), each
 *   0   baseOffset            int64   absolute offset of the first record
 *   8   batchLength           int32   bytes after this field
 *   12  partitionLeaderEpoch  int32
 *   16  magic                 int8    2
 *   17  crc                   uint32  CRC-32C of bytes [21, 12 + batchLength)
 *   21  ... attributes, lastOffsetDelta, timestamps, producer, records
 * Batches are contiguous from position 0; offsets strictly increase from
 * batch to batch (compaction may leave gaps). The segment's base offset (its
 * file name) is <= the first batch's baseOffset. An append that fails is
 * truncated away before anyone can see it. A segment holds at most
 * segment.bytes (and < 2 GiB: index positions are 32-bit) unless a single
 * append is larger.
 *
 * Preallocated tail. The committed (logical) size is size_bytes; the file may
 * be longer: the active segment of a durable log with `preallocate` is kept up
 * to 1 MiB of *written* zeros ahead of its write position, so an ack's
 * fdatasync overwrites blocks that exist and changes no file size (no journal
 * commit: ~0.12 ms instead of ~0.2 ms here). The zeros are written by the
 * append that finds less than half a chunk of room, and synced by the next
 * round. Reads and scans stop at size_bytes. The file is cut to size_bytes
 * when the segment is sealed (roll) and at clean shutdown, so sealed segments
 * and a cleanly closed log have file size == logical size. After a crash the
 * first zero batch header (baseOffset 0, batchLength 0: never a valid batch)
 * after the last valid batch is the end of the log: recovery cuts the zeros
 * off without counting it as damage.
 *
 * .index — 8-byte entries, sorted:
 *   0   relativeOffset  uint32  (lastOffset of the batch) - segment base
 *   4   position        uint32  position of that batch in .log
 * An entry is added before a batch once more than index.interval.bytes were
 * written since the previous entry (so the first batch has none: position 0
 * is implied). The file is exactly entries * 8 bytes (no preallocation); it
 * is not synced for acks — it is rebuilt from .log after a crash — but it is
 * synced when its segment is sealed and at clean shutdown.
 *
 * .timeindex — 12-byte entries, sorted, timestamps strictly increasing:
 *   0   timestamp       int64   largest timestamp in the segment so far
 *   8   relativeOffset  uint32  lastOffset of the batch holding it - base
 * Added together with .index entries when the largest timestamp grew, plus
 * one final entry when the segment is sealed (rolled or closed), so the last
 * entry of a sealed segment is its max timestamp (used by retention).
 *
 * Lookups (rn__segment_find): the .index gives the position of the last
 * indexed batch ending at or before the target; batch headers are scanned from
 * there. The entry landed on is checked against the batch header found at its
 * position; a mismatch marks the index bad (lookups then scan from position 0
 * until the maintenance thread rebuilds it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_clock.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

#define SCAN_WINDOW (64 * 1024)

atomic_long rn__log_data_reads;

/* ---- scanner -------------------------------------------------------------- */

void rn__scan_init(rn__scan_t *s, int fd, int64_t pos, int64_t end) {
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->next_pos = pos;
    s->end = end;
    s->win_pos = -1;
}

void rn__scan_free(rn__scan_t *s) {
    free(s->buf);
    s->buf = NULL;
}

static rn_err_t scan_fill(rn__scan_t *s, int64_t pos, size_t need) {
    if (s->win_pos >= 0 && s->win_pos <= pos && pos + (int64_t)need <= s->win_pos + (int64_t)s->win_len)
        return RN_OK;
    size_t want = need > SCAN_WINDOW ? need : SCAN_WINDOW;
    if (s->cap < want) {
        uint8_t *nb = realloc(s->buf, want);
        if (!nb) return RN_ERR_NOMEM;
        s->buf = nb;
        s->cap = want;
    }
    size_t n = s->cap;
    if ((int64_t)n > s->end - pos) n = (size_t)(s->end - pos);
    size_t got = 0;
    atomic_fetch_add_explicit(&rn__log_data_reads, 1, memory_order_relaxed);
    while (got < n) {
        ssize_t r = pread(s->fd, s->buf + got, n - got, (off_t)(pos + (int64_t)got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            RN_ERROR("log", "pread(segment) failed: %s", strerror(errno));
            s->win_pos = -1;
            return RN_ERR_IO;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    s->win_pos = pos;
    s->win_len = got;
    return got >= need ? RN_OK : RN_ERR_CORRUPT; /* the file is shorter than we thought */
}

rn_err_t rn__scan_next(rn__scan_t *s) {
    int64_t pos = s->next_pos;
    s->batch = NULL;
    if (pos >= s->end) return RN_ERR_NOT_FOUND;
    s->pos = pos;
    int64_t remaining = s->end - pos;
    if (remaining < RN_BATCH_HEADER_SIZE) return RN_ERR_CORRUPT;
    rn_err_t err = scan_fill(s, pos, RN_BATCH_HEADER_SIZE);
    if (err) return err;
    rn_batch_header_decode(s->buf + (pos - s->win_pos), &s->h);
    int64_t total = RN_BATCH_LOG_OVERHEAD + (int64_t)s->h.batch_length;
    if (s->h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD || total > remaining ||
        total > RN__MAX_BATCH_BYTES || s->h.magic != 2 || s->h.last_offset_delta < 0 || s->h.base_offset < 0)
        return RN_ERR_CORRUPT;
    s->size = (size_t)total;
    s->next_pos = pos + total;
    return RN_OK;
}

rn_err_t rn__scan_body(rn__scan_t *s) {
    rn_err_t err = scan_fill(s, s->pos, s->size);
    if (err) return err;
    s->batch = s->buf + (s->pos - s->win_pos);
    return RN_OK;
}

/* ---- files ---------------------------------------------------------------- */

const char *rn__segment_ext(int kind) {
    static const char *ext[RN__F_COUNT] = {".log", ".index", ".timeindex"};
    return ext[kind];
}

void rn__segment_path(const rn_log_t *log, int64_t base, const char *ext, char *out, size_t cap) {
    snprintf(out, cap, "%s/%020lld%s", log->path, (long long)base, ext);
}

rn__segment_t *rn__segment_new(int64_t base_offset) {
    rn__segment_t *seg = calloc(1, sizeof(*seg));
    if (!seg) return NULL;
    seg->base_offset = base_offset;
    atomic_init(&seg->max_timestamp, RN__TS_UNKNOWN);
    atomic_init(&seg->max_timestamp_offset, base_offset);
    seg->last_time_entry_ts = RN__TS_UNKNOWN;
    atomic_init(&seg->index_entries, -1);
    atomic_init(&seg->timeindex_entries, -1);
    atomic_init(&seg->index_bad, false);
    return seg;
}

void rn__segment_free(rn_log_t *log, rn__segment_t *seg) {
    if (!seg) return;
    for (int k = 0; k < RN__F_COUNT; k++) rn__filecache_drop(&log->dir->cache, &seg->files[k]);
    free(seg);
}

void rn__segment_destroy(rn_log_t *log, rn__segment_t *seg) {
    char path[4096];
    for (int k = 0; k < RN__F_COUNT; k++) {
        rn__filecache_drop(&log->dir->cache, &seg->files[k]);
        rn__segment_path(log, seg->base_offset, rn__segment_ext(k), path, sizeof(path));
        if (unlink(path) < 0 && errno != ENOENT) RN_WARN("log", "unlink(%s) failed: %s", path, strerror(errno));
    }
    rn__segment_path(log, seg->base_offset, ".txnindex", path, sizeof(path)); /* aborted transactions, if any */
    if (unlink(path) < 0 && errno != ENOENT) RN_WARN("log", "unlink(%s) failed: %s", path, strerror(errno));
    free(seg);
}

rn_err_t rn__segment_file(rn_log_t *log, rn__segment_t *seg, int kind, bool create, rn_fileref_t **out) {
    char path[4096];
    rn__segment_path(log, seg->base_offset, rn__segment_ext(kind), path, sizeof(path));
    return rn__filecache_get(&log->dir->cache, &seg->files[kind], path, create || kind != RN__F_LOG, out);
}

/* Entry count from the file size; a size that is not a whole number of entries marks the index bad. */
static int32_t load_count(rn_log_t *log, rn__segment_t *seg, int kind, atomic_int *count) {
    int n = atomic_load(count);
    if (n >= 0) return n;
    rn_fileref_t *f;
    if (rn__segment_file(log, seg, kind, true, &f)) return -1;
    struct stat st;
    int r = fstat(f->fd, &st);
    rn_fileref_release(f);
    if (r < 0) return -1;
    size_t es = kind == RN__F_INDEX ? RN__INDEX_ENTRY : RN__TIMEINDEX_ENTRY;
    if ((size_t)st.st_size % es != 0 || st.st_size / (off_t)es > INT32_MAX) atomic_store(&seg->index_bad, true);
    n = (int)((size_t)st.st_size / es);
    atomic_store(count, n);
    return n;
}

int32_t rn__segment_index_entries(rn_log_t *log, rn__segment_t *seg) {
    return load_count(log, seg, RN__F_INDEX, &seg->index_entries);
}

/* Last entry of the time index: the segment's max timestamp once it is sealed. */
static rn_err_t load_last_time_entry(rn_log_t *log, rn__segment_t *seg, bool *found, int64_t *ts, int64_t *offset) {
    *found = false;
    int32_t n = load_count(log, seg, RN__F_TIMEINDEX, &seg->timeindex_entries);
    if (n < 0) return RN_ERR_IO;
    if (n == 0) return RN_OK;
    rn_fileref_t *f;
    rn_err_t err = rn__segment_file(log, seg, RN__F_TIMEINDEX, true, &f);
    if (err) return err;
    uint8_t e[RN__TIMEINDEX_ENTRY];
    err = rn__index_read(f->fd, RN__TIMEINDEX_ENTRY, n - 1, e);
    rn_fileref_release(f);
    if (err) return err;
    *found = true;
    *ts = (int64_t)rn_load_be64(e);
    *offset = seg->base_offset + rn_load_be32(e + 8);
    return RN_OK;
}

rn_err_t rn__segment_max_timestamp(rn_log_t *log, rn__segment_t *seg, int64_t *ts, int64_t *offset) {
    int64_t t = atomic_load(&seg->max_timestamp);
    if (t == RN__TS_UNKNOWN) {
        bool found;
        int64_t o = seg->base_offset;
        rn_err_t err = load_last_time_entry(log, seg, &found, &t, &o);
        if (err) return err;
        if (!found) t = -1;
        atomic_store(&seg->max_timestamp_offset, o);
        atomic_store(&seg->max_timestamp, t);
    }
    *ts = t;
    *offset = atomic_load(&seg->max_timestamp_offset);
    return RN_OK;
}

rn_err_t rn__segment_prepare_append(rn_log_t *log, rn__segment_t *seg) {
    if (seg->append_ready) return RN_OK;
    int32_t n = rn__segment_index_entries(log, seg);
    if (n < 0) return RN_ERR_IO;
    bool found;
    int64_t ts = 0, off = 0;
    rn_err_t err = load_last_time_entry(log, seg, &found, &ts, &off);
    if (err) return err;
    seg->last_time_entry_ts = found ? ts : RN__TS_UNKNOWN;
    if (atomic_load(&seg->max_timestamp) == RN__TS_UNKNOWN) {
        atomic_store(&seg->max_timestamp_offset, found ? off : seg->base_offset);
        atomic_store(&seg->max_timestamp, found ? ts : -1);
    }
    seg->bytes_since_index = (int32_t)(seg->size_bytes > INT32_MAX ? INT32_MAX : seg->size_bytes);
    if (n > 0 && !atomic_load(&seg->index_bad)) {
        rn_fileref_t *f;
        err = rn__segment_file(log, seg, RN__F_INDEX, true, &f);
        if (err) return err;
        uint8_t e[RN__INDEX_ENTRY];
        err = rn__index_read(f->fd, RN__INDEX_ENTRY, n - 1, e);
        rn_fileref_release(f);
        if (err == RN_OK) {
            int64_t since = seg->size_bytes - rn_load_be32(e + 4);
            seg->bytes_since_index = (int32_t)(since < 0 ? 0 : since > INT32_MAX ? INT32_MAX : since);
        }
    }
    if (seg->created_ms == 0) seg->created_ms = rn_clock_wall_ms();
    seg->append_ready = true;
    return RN_OK;
}

void rn__segment_note_batch(rn__segment_t *seg, rn__index_pending_t *pend, const rn_batch_header_t *h, int64_t pos,
                            int32_t index_interval_bytes) {
    int64_t last = rn_batch_last_offset(h);
    if (h->max_timestamp > atomic_load(&seg->max_timestamp)) {
        atomic_store(&seg->max_timestamp_offset, last);
        atomic_store(&seg->max_timestamp, h->max_timestamp);
    }
    if (seg->bytes_since_index > index_interval_bytes) {
        RN_ASSERT(pend->nidx < 64 && pend->ntidx < 64);
        rn__index_encode(pend->idx + pend->nidx * RN__INDEX_ENTRY, (uint32_t)(last - seg->base_offset),
                         (uint32_t)pos);
        pend->nidx++;
        int64_t mts = atomic_load(&seg->max_timestamp);
        if (seg->last_time_entry_ts == RN__TS_UNKNOWN || mts > seg->last_time_entry_ts) {
            rn__timeindex_encode(pend->tidx + pend->ntidx * RN__TIMEINDEX_ENTRY, mts,
                                 (uint32_t)(atomic_load(&seg->max_timestamp_offset) - seg->base_offset));
            pend->ntidx++;
            seg->last_time_entry_ts = mts;
        }
        seg->bytes_since_index = 0;
    }
    int64_t since = (int64_t)seg->bytes_since_index + (int64_t)RN_BATCH_LOG_OVERHEAD + h->batch_length;
    seg->bytes_since_index = (int32_t)(since > INT32_MAX ? INT32_MAX : since);
}

static rn_err_t write_entries(rn_log_t *log, rn__segment_t *seg, int kind, atomic_int *count, const uint8_t *p,
                              int n, size_t es) {
    if (n == 0) return RN_OK;
    int32_t have = load_count(log, seg, kind, count);
    if (have < 0) return RN_ERR_IO;
    rn_fileref_t *f;
    rn_err_t err = rn__segment_file(log, seg, kind, true, &f);
    if (err) return err;
    ssize_t w = rn__pwrite_all(f->fd, p, (size_t)n * es, (int64_t)have * (int64_t)es);
    int e = errno;
    if (w < 0) {
        /* Leave no partial entry behind. */
        if (ftruncate(f->fd, (off_t)((int64_t)have * (int64_t)es)) < 0) e = EIO;
        rn_fileref_release(f);
        if (e == ENOSPC || e == EDQUOT) return RN_ERR_NOSPACE;
        RN_ERROR("log", "writing %s%s failed: %s", log->path, rn__segment_ext(kind), strerror(e));
        return RN_ERR_IO;
    }
    rn_fileref_release(f);
    atomic_store(count, have + n);
    return RN_OK;
}

rn_err_t rn__segment_write_index(rn_log_t *log, rn__segment_t *seg, rn__index_pending_t *pend) {
    rn_err_t err = RN_OK;
    if (!atomic_load(&seg->index_bad)) {
        err = write_entries(log, seg, RN__F_INDEX, &seg->index_entries, pend->idx, pend->nidx, RN__INDEX_ENTRY);
        if (!err)
            err = write_entries(log, seg, RN__F_TIMEINDEX, &seg->timeindex_entries, pend->tidx, pend->ntidx,
                                RN__TIMEINDEX_ENTRY);
    }
    pend->nidx = pend->ntidx = 0;
    return err;
}

rn_err_t rn__segment_seal(rn_log_t *log, rn__segment_t *seg) {
    rn_err_t err = rn__segment_prepare_append(log, seg);
    if (err) return err;
    int64_t mts = atomic_load(&seg->max_timestamp);
    if (seg->size_bytes == 0 || mts < 0 || atomic_load(&seg->index_bad)) return RN_OK;
    if (seg->last_time_entry_ts != RN__TS_UNKNOWN && mts <= seg->last_time_entry_ts) return RN_OK;
    uint8_t e[RN__TIMEINDEX_ENTRY];
    rn__timeindex_encode(e, mts, (uint32_t)(atomic_load(&seg->max_timestamp_offset) - seg->base_offset));
    err = write_entries(log, seg, RN__F_TIMEINDEX, &seg->timeindex_entries, e, 1, RN__TIMEINDEX_ENTRY);
    if (!err) seg->last_time_entry_ts = mts;
    return err;
}

/* ---- preallocation ---------------------------------------------------------- */

static int64_t prealloc_room(const rn__segment_t *seg) {
    return seg->prealloc_end > seg->size_bytes ? seg->prealloc_end - seg->size_bytes : 0;
}

void rn__segment_prealloc_forget(rn_log_t *log, rn__segment_t *seg) {
    atomic_fetch_sub(&log->dir->prealloc_bytes, prealloc_room(seg));
    seg->prealloc_end = 0;
}

/* Writes zeros to [from, to); 0 or an errno. */
static int write_zeros(int fd, int64_t from, int64_t to) {
    static const uint8_t zeros[64 * 1024];
    int hook = rn__log_io_hook ? rn__log_io_hook(RN__IO_WRITE, fd, (size_t)(to - from)) : 0;
    if (hook) return hook;
    struct iovec iov[16];
    for (int i = 0; i < 16; i++) iov[i] = (struct iovec){(void *)zeros, sizeof(zeros)};
    while (from < to) {
        int64_t left = to - from;
        int n = 0;
        for (; n < 16 && left > 0; n++) {
            iov[n].iov_len = left < (int64_t)sizeof(zeros) ? (size_t)left : sizeof(zeros);
            left -= (int64_t)iov[n].iov_len;
        }
        ssize_t w = pwritev(fd, iov, n, (off_t)from);
        for (int i = 0; i < n; i++) iov[i].iov_len = sizeof(zeros);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        from += w;
    }
    return 0;
}

void rn__segment_preallocate(rn_log_t *log, rn__segment_t *seg, int fd, size_t len) {
    rn_logdir_t *dir = log->dir;
    int64_t need = seg->size_bytes + (int64_t)len;
    int64_t have = seg->prealloc_end ? seg->prealloc_end : seg->size_bytes; /* the file's size */
    if (have - need >= RN__PREALLOC_CHUNK / 2) return;
    int64_t cap = log->cfg.segment_bytes < (int64_t)INT32_MAX ? log->cfg.segment_bytes : (int64_t)INT32_MAX;
    int64_t to = need + RN__PREALLOC_CHUNK < cap ? need + RN__PREALLOC_CHUNK : cap; /* none past the roll */
    int64_t from = have > need ? have : need; /* [have, need) gets this append's data */
    if (to <= from) return;
    int64_t room_before = prealloc_room(seg), room_after = to - seg->size_bytes;
    if (atomic_load(&dir->append_rate) > RN__PREALLOC_MAX_RATE ||
        atomic_load(&dir->prealloc_bytes) + room_after - room_before > RN__PREALLOC_BUDGET ||
        rn__logdir_check_space(dir, (size_t)(to - from)) != RN_OK)
        return;
    int e = write_zeros(fd, from, to);
    if (e) {
        /* Leave the file as it was; if even that fails, remember the larger end
         * so the zeros are trimmed with the rest. */
        RN_DEBUG("log", "%s: preallocating %lld bytes failed: %s", log->path, (long long)(to - from), strerror(e));
        if (ftruncate(fd, (off_t)have) == 0) return;
    }
    seg->prealloc_end = to;
    atomic_fetch_add(&dir->prealloc_bytes, room_after - room_before);
}

void rn__segment_grew(rn_log_t *log, rn__segment_t *seg, int64_t old_size) {
    if (!seg->prealloc_end) return;
    int64_t used = (seg->size_bytes < seg->prealloc_end ? seg->size_bytes : seg->prealloc_end) - old_size;
    if (used > 0) atomic_fetch_sub(&log->dir->prealloc_bytes, used);
    if (seg->size_bytes >= seg->prealloc_end) seg->prealloc_end = 0;
}

rn_err_t rn__segment_trim(rn_log_t *log, rn__segment_t *seg) {
    if (!seg->prealloc_end) return RN_OK;
    rn_fileref_t *f;
    rn_err_t err = rn__segment_file(log, seg, RN__F_LOG, true, &f);
    if (err) return err;
    int r = ftruncate(f->fd, (off_t)seg->size_bytes);
    int e = errno;
    rn_fileref_release(f);
    if (r < 0) {
        RN_ERROR("log", "%s: trimming segment %lld to %lld bytes failed: %s", log->path, (long long)seg->base_offset,
                 (long long)seg->size_bytes, strerror(e));
        return RN_ERR_IO;
    }
    rn__segment_prealloc_forget(log, seg);
    return RN_OK;
}

rn_err_t rn__segment_find(rn_log_t *log, rn__segment_t *seg, int64_t offset, int64_t *pos) {
    int64_t size = seg->size_bytes;
    *pos = 0;
    if (size == 0 || offset <= seg->base_offset) return RN_OK;
    rn_fileref_t *lf;
    rn_err_t err = rn__segment_file(log, seg, RN__F_LOG, false, &lf);
    if (err) return err == RN_ERR_NOT_FOUND ? RN_ERR_KAFKA_STORAGE_ERROR : err;

    int64_t start = 0, expect_last = -1;
    int32_t n = rn__segment_index_entries(log, seg);
    if (n > 0 && !atomic_load(&seg->index_bad) && offset - seg->base_offset <= (int64_t)UINT32_MAX) {
        rn_fileref_t *xf;
        err = rn__segment_file(log, seg, RN__F_INDEX, true, &xf);
        if (!err) {
            bool found;
            uint32_t erel = 0, epos = 0;
            err = rn__index_lookup(xf->fd, n, (uint32_t)(offset - seg->base_offset), &found, &erel, &epos);
            rn_fileref_release(xf);
            if (!err && found) {
                start = epos;
                expect_last = seg->base_offset + erel;
            }
        }
        if (err || start >= size) {
            atomic_store(&seg->index_bad, true);
            start = 0;
            expect_last = -1;
        }
    }

    rn__scan_t s;
    for (;;) {
        rn__scan_init(&s, lf->fd, start, size);
        bool restart = false;
        *pos = size;
        while ((err = rn__scan_next(&s)) == RN_OK) {
            if (expect_last >= 0) {
                if (rn_batch_last_offset(&s.h) != expect_last) { /* the index lied */
                    RN_WARN("log", "%s: index entry for offset %lld does not match segment %lld; scanning",
                            log->path, (long long)expect_last, (long long)seg->base_offset);
                    atomic_store(&seg->index_bad, true);
                    restart = true;
                    break;
                }
                expect_last = -1;
            }
            if (rn_batch_last_offset(&s.h) >= offset) {
                *pos = s.pos;
                break;
            }
        }
        rn__scan_free(&s);
        if (!restart) break;
        start = 0;
        expect_last = -1;
    }
    rn_fileref_release(lf);
    if (err == RN_ERR_NOT_FOUND) err = RN_OK;
    if (err == RN_ERR_CORRUPT) {
        RN_ERROR("log", "%s: corrupt batch in committed data of segment %lld", log->path, (long long)seg->base_offset);
        err = RN_ERR_KAFKA_STORAGE_ERROR;
    }
    return err;
}

/* ---- recovery of one segment ---------------------------------------------- */

static rn_err_t read_index_file(int fd, size_t es, uint8_t **out, int32_t *n) {
    struct stat st;
    *out = NULL;
    *n = 0;
    if (fstat(fd, &st) < 0) return RN_ERR_IO;
    size_t cnt = (size_t)st.st_size / es;
    if (cnt == 0) return RN_OK;
    if (cnt > (64u << 20) / es) cnt = (64u << 20) / es; /* bounded: beyond is garbage anyway */
    uint8_t *b = malloc(cnt * es);
    if (!b) return RN_ERR_NOMEM;
    size_t got = 0;
    while (got < cnt * es) {
        ssize_t r = pread(fd, b + got, cnt * es - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    *out = b;
    *n = (int32_t)(got / es);
    return RN_OK;
}

/* True if the bytes at pos (up to a batch's baseOffset and batchLength) are all
 * zero: a preallocated tail, not a damaged batch. */
static bool zero_header_at(int fd, int64_t pos, int64_t file_size) {
    uint8_t hb[RN_BATCH_LOG_OVERHEAD];
    size_t n = file_size - pos < (int64_t)sizeof(hb) ? (size_t)(file_size - pos) : sizeof(hb);
    if (n == 0 || pread(fd, hb, n, (off_t)pos) != (ssize_t)n) return false;
    for (size_t i = 0; i < n; i++)
        if (hb[i]) return false;
    return true;
}

/* Reads the batch header at pos; true if it is a sane batch ending at `last`. */
static bool header_matches(int fd, int64_t pos, int64_t file_size, int64_t last) {
    uint8_t hb[RN_BATCH_HEADER_SIZE];
    if (pos + RN_BATCH_HEADER_SIZE > file_size) return false;
    atomic_fetch_add_explicit(&rn__log_data_reads, 1, memory_order_relaxed);
    if (pread(fd, hb, sizeof(hb), (off_t)pos) != (ssize_t)sizeof(hb)) return false;
    rn_batch_header_t h;
    rn_batch_header_decode(hb, &h);
    return h.magic == 2 && h.batch_length >= RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD &&
           pos + RN_BATCH_LOG_OVERHEAD + h.batch_length <= file_size && rn_batch_last_offset(&h) == last;
}

rn_err_t rn__segment_recover(rn_log_t *log, rn__segment_t *seg, int64_t check_from, bool full_rebuild,
                             bool contiguous, int32_t index_interval_bytes, int64_t *end_offset, bool *truncated) {
    rn_fileref_t *lf = NULL, *xf = NULL, *tf = NULL;
    uint8_t *idx = NULL, *tidx = NULL;
    rn__scan_t s;
    rn__scan_init(&s, -1, 0, 0);
    *truncated = false;
    *end_offset = seg->base_offset;
    rn_err_t err = rn__segment_file(log, seg, RN__F_LOG, true, &lf);
    if (!err) err = rn__segment_file(log, seg, RN__F_INDEX, true, &xf);
    if (!err) err = rn__segment_file(log, seg, RN__F_TIMEINDEX, true, &tf);
    if (err) goto out;
    struct stat st;
    if (fstat(lf->fd, &st) < 0) {
        err = RN_ERR_IO;
        goto out;
    }
    int64_t file_size = st.st_size;
    if (file_size > (int64_t)UINT32_MAX) file_size = (int64_t)UINT32_MAX; /* positions are 32-bit */

    /* Keep the prefix of index entries that is sane, below check_from, and whose
     * last entry points at the batch it claims; resume scanning at that batch. */
    int32_t nidx = 0, ntidx = 0, keep = 0, tkeep = 0;
    int64_t resume_pos = 0, resume_base = seg->base_offset;
    int64_t max_ts = -1, max_ts_off = seg->base_offset, last_tentry = RN__TS_UNKNOWN;
    if (!full_rebuild) {
        err = read_index_file(xf->fd, RN__INDEX_ENTRY, &idx, &nidx);
        if (!err) err = read_index_file(tf->fd, RN__TIMEINDEX_ENTRY, &tidx, &ntidx);
        if (err) goto out;
        int64_t prev_rel = -1, prev_pos = -1;
        while (keep < nidx) {
            const uint8_t *e = idx + (size_t)keep * RN__INDEX_ENTRY;
            int64_t rel = rn_load_be32(e), pos = rn_load_be32(e + 4);
            if (rel <= prev_rel || pos <= prev_pos || pos >= file_size || seg->base_offset + rel >= check_from) break;
            prev_rel = rel;
            prev_pos = pos;
            keep++;
        }
        for (int tries = 0; keep > 0; tries++) {
            const uint8_t *e = idx + (size_t)(keep - 1) * RN__INDEX_ENTRY;
            int64_t pos = rn_load_be32(e + 4);
            if (tries < 4 && header_matches(lf->fd, pos, file_size, seg->base_offset + rn_load_be32(e))) {
                uint8_t hb[RN_BATCH_HEADER_SIZE];
                rn_batch_header_t h;
                if (pread(lf->fd, hb, sizeof(hb), (off_t)pos) != (ssize_t)sizeof(hb)) {
                    keep = 0;
                    break;
                }
                rn_batch_header_decode(hb, &h);
                resume_pos = pos;
                resume_base = h.base_offset;
                break;
            }
            keep = tries < 4 ? keep - 1 : 0;
        }
        int64_t prev_ts = INT64_MIN;
        prev_rel = -1;
        while (keep > 0 && tkeep < ntidx) {
            const uint8_t *e = tidx + (size_t)tkeep * RN__TIMEINDEX_ENTRY;
            int64_t ts = (int64_t)rn_load_be64(e), rel = rn_load_be32(e + 8);
            if (ts <= prev_ts || rel < prev_rel || seg->base_offset + rel >= resume_base) break;
            prev_ts = ts;
            prev_rel = rel;
            tkeep++;
        }
        if (tkeep > 0) {
            max_ts = last_tentry = prev_ts;
            max_ts_off = seg->base_offset + prev_rel;
        }
    }
    if (keep < nidx || full_rebuild) {
        if (ftruncate(xf->fd, (off_t)keep * RN__INDEX_ENTRY) < 0) err = RN_ERR_IO;
    }
    if (tkeep < ntidx || full_rebuild) {
        if (ftruncate(tf->fd, (off_t)tkeep * RN__TIMEINDEX_ENTRY) < 0) err = RN_ERR_IO;
    }
    if (err) goto out;
    atomic_store(&seg->index_entries, keep);
    atomic_store(&seg->timeindex_entries, tkeep);
    atomic_store(&seg->index_bad, false);
    atomic_store(&seg->max_timestamp, max_ts);
    atomic_store(&seg->max_timestamp_offset, max_ts_off);
    seg->last_time_entry_ts = last_tentry;
    seg->bytes_since_index = 0;

    /* Scan from there: structure always, CRC for batches at or past check_from. */
    rn__scan_init(&s, lf->fd, resume_pos, file_size);
    rn__index_pending_t pend = {0};
    int64_t next = resume_base, good_end = resume_pos;
    int32_t prev_epoch = INT32_MIN;
    const char *why = NULL;
    bool zero_tail = false;
    for (;;) {
        err = rn__scan_next(&s);
        if (err == RN_ERR_NOT_FOUND) {
            err = RN_OK;
            break;
        }
        if (err == RN_ERR_CORRUPT) {
            zero_tail = zero_header_at(lf->fd, s.pos, file_size);
            why = zero_tail ? NULL : "torn or malformed batch";
            err = RN_OK;
            break;
        }
        if (err) goto out;
        /* baseOffset and partitionLeaderEpoch are outside the CRC: check them by
         * their order. Appends leave no gaps; only compaction does, and it never
         * touches the last (active) segment. */
        if (s.h.base_offset < next || (contiguous && s.h.base_offset != next)) {
            why = "offsets out of order";
            break;
        }
        if (s.h.partition_leader_epoch < prev_epoch || s.h.partition_leader_epoch < -1) {
            why = "leader epoch out of order";
            break;
        }
        prev_epoch = s.h.partition_leader_epoch;
        if (rn_batch_last_offset(&s.h) - seg->base_offset > INT32_MAX) {
            why = "offset beyond the segment's range";
            break;
        }
        if (rn_batch_last_offset(&s.h) >= check_from) {
            err = rn__scan_body(&s);
            if (err) goto out;
            if (rn_batch_compute_crc(s.batch, s.size) != s.h.crc) {
                why = "CRC mismatch";
                break;
            }
        }
        rn__segment_note_batch(seg, &pend, &s.h, s.pos, index_interval_bytes);
        if (pend.nidx == 64 || pend.ntidx == 64) {
            err = rn__segment_write_index(log, seg, &pend);
            if (err) goto out;
        }
        next = rn_batch_last_offset(&s.h) + 1;
        good_end = s.next_pos;
    }
    err = rn__segment_write_index(log, seg, &pend);
    if (err) goto out;
    if (good_end < st.st_size) {
        if (zero_tail)
            RN_INFO("log", "%s: segment %lld ends at position %lld; trimming %lld preallocated bytes", log->path,
                    (long long)seg->base_offset, (long long)good_end, (long long)(st.st_size - good_end));
        else
            RN_WARN("log", "%s: segment %lld: %s at position %lld, truncating %lld bytes", log->path,
                    (long long)seg->base_offset, why ? why : "trailing bytes", (long long)good_end,
                    (long long)(st.st_size - good_end));
        if (ftruncate(lf->fd, (off_t)good_end) < 0) {
            RN_ERROR("log", "ftruncate(%s) failed: %s", log->path, strerror(errno));
            err = RN_ERR_IO;
            goto out;
        }
        *truncated = !zero_tail;
    }
    rn__segment_prealloc_forget(log, seg);
    seg->size_bytes = good_end;
    seg->append_ready = true;
    if (seg->created_ms == 0) seg->created_ms = rn_clock_wall_ms();
    *end_offset = next;
out:
    rn__scan_free(&s);
    free(idx);
    free(tidx);
    rn_fileref_release(lf);
    rn_fileref_release(xf);
    rn_fileref_release(tf);
    return err;
}
