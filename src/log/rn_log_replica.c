/*
 * rn_log_replica.c — what replication needs from a partition log beyond
 * append and read: the high watermark handed to the replication layer, the
 * replica's durable end, and truncation of a divergent tail (KIP-101) or of
 * the whole log (a follower behind the leader's log start).
 *
 * Truncation and the flusher. A flush round takes a log's pending end under
 * flush_lock and, after syncing, moves synced_end up to it. If the log was
 * truncated in between, that end may cover offsets that were cut and then
 * written again but not synced; log->truncations (bumped under the write lock
 * and flush_lock) makes such a round leave synced_end alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

void rn_log_set_replicated(rn_log_t *log, bool replicated) { atomic_store(&log->replicated, replicated); }

int64_t rn_log_local_durable_end(rn_log_t *log) {
    pthread_rwlock_rdlock(&log->lock);
    int64_t end = atomic_load(&log->log_end_offset);
    if (rn__log_durable(&log->cfg) && log->synced_end < end) end = log->synced_end;
    pthread_rwlock_unlock(&log->lock);
    return end;
}

void rn_log_set_high_watermark(rn_log_t *log, int64_t hw) {
    pthread_rwlock_wrlock(&log->lock);
    int64_t end = atomic_load(&log->log_end_offset);
    if (hw > end) hw = end;
    if (hw > atomic_load(&log->high_watermark)) atomic_store(&log->high_watermark, hw);
    pthread_rwlock_unlock(&log->lock);
}

int64_t rn_log_checkpointed_high_watermark(const rn_log_t *log) { return log->checkpoint_hw; }

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

rn_err_t rn_log_write_topic_id(rn_log_t *log, const uint8_t id[16]) {
    char text[64] = "version: 0\ntopic_id: ";
    size_t n = strlen(text);
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 16; i++) { /* 128 bits: 22 characters, no padding */
        acc = (acc << 8) | id[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            text[n++] = b64url[(acc >> bits) & 63];
        }
    }
    text[n++] = b64url[(acc << (6 - bits)) & 63];
    text[n++] = '\n';
    char path[4200];
    snprintf(path, sizeof(path), "%s/partition.metadata", log->path);
    return rn__write_file_atomic(path, text, n, true);
}

rn_err_t rn_log_read_topic_id(rn_log_t *log, uint8_t id[16]) {
    char path[4200], *data;
    size_t len;
    snprintf(path, sizeof(path), "%s/partition.metadata", log->path);
    struct stat st;
    if (stat(path, &st) < 0 && errno == ENOENT) return RN_ERR_NOT_FOUND;
    if (rn__read_file(path, 4096, &data, &len) != RN_OK) return RN_ERR_CORRUPT;
    const char *p = strstr(data, "topic_id: ");
    rn_err_t err = p ? RN_OK : RN_ERR_CORRUPT;
    uint32_t acc = 0;
    int bits = 0, k = 0;
    for (p = p ? p + 10 : NULL; !err && k < 16; p++) {
        const char *c = *p ? strchr(b64url, *p) : NULL;
        if (!c) {
            err = RN_ERR_CORRUPT;
            break;
        }
        acc = (acc << 6) | (uint32_t)(c - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            id[k++] = (uint8_t)(acc >> bits);
        }
    }
    free(data);
    return err;
}

void rn_log_clamp_high_watermark(rn_log_t *log, int64_t hw) {
    pthread_rwlock_wrlock(&log->lock);
    if (atomic_load(&log->high_watermark) > hw) atomic_store(&log->high_watermark, hw);
    pthread_rwlock_unlock(&log->lock);
}

rn_err_t rn_log_begin_epoch(rn_log_t *log, int32_t epoch) {
    pthread_rwlock_wrlock(&log->lock);
    rn_err_t err = RN_OK;
    if (rn__epochs_assign(&log->epochs, epoch, atomic_load(&log->log_end_offset))) err = rn__log_write_epochs(log);
    pthread_rwlock_unlock(&log->lock);
    return err;
}

/* Transaction state past a cut: open transactions that started there and
 * aborted ones whose marker was there are forgotten. (A COMMIT/ABORT marker
 * cut away leaves its transaction closed here until the new leader's marker
 * arrives; the coordinator writes markers to every partition again.) */
static void txns_truncate(rn__txns_t *t, int64_t end) {
    int32_t k = 0;
    int64_t first = INT64_MAX;
    for (int32_t i = 0; i < t->nongoing; i++) {
        if (t->ongoing[i].first_offset >= end) continue;
        t->ongoing[k++] = t->ongoing[i];
        if (t->ongoing[i].first_offset < first) first = t->ongoing[i].first_offset;
    }
    t->nongoing = k;
    atomic_store(&t->first_unstable, first);
    while (t->naborted > 0 && t->aborted[t->naborted - 1].last_offset >= end) t->naborted--;
}

/* Producer snapshots at or past the new end describe cut batches. */
static void drop_snapshots_from(rn_log_t *log, int64_t end) {
    int64_t *slots[2] = {&log->snapshot_offset, &log->prev_snapshot_offset};
    for (int i = 0; i < 2; i++) {
        if (*slots[i] < 0 || *slots[i] <= end) continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%020lld.snapshot", log->path, (long long)*slots[i]);
        if (unlink(path) < 0 && errno != ENOENT) RN_WARN("log", "unlink(%s) failed: %s", path, strerror(errno));
        *slots[i] = -1;
    }
    if (log->snapshot_offset < 0 && log->prev_snapshot_offset >= 0) {
        log->snapshot_offset = log->prev_snapshot_offset;
        log->prev_snapshot_offset = -1;
    }
}

/* Everything derived from offsets at or past `end` goes (write lock held). */
static void forget_past(rn_log_t *log, int64_t end, rn_fileref_t *synced_file) {
    atomic_store(&log->log_end_offset, end);
    if (atomic_load(&log->high_watermark) > end) atomic_store(&log->high_watermark, end);
    if (log->synced_end > end) log->synced_end = end;
    if (log->recovery_point > end) log->recovery_point = end;
    if (log->cleaner_offset > end) log->cleaner_offset = end;
    if (rn__epochs_truncate_end(&log->epochs, end)) rn__log_write_epochs(log);
    rn__pstate_free(&log->pstate);
    rn__pstate_init(&log->pstate);
    log->pstate_loaded = false; /* reloaded from a snapshot below the cut + a scan */
    drop_snapshots_from(log, end);
    txns_truncate(&log->txns, end);
    rn__txnindex_cut(log, end);

    rn_logdir_t *dir = log->dir;
    pthread_mutex_lock(&dir->flush_lock);
    log->truncations++;
    if (log->pending_end > end) log->pending_end = end;
    pthread_mutex_unlock(&dir->flush_lock);
    /* The cut itself is synced in the background like an append. */
    if (synced_file) rn__logdir_mark_dirty(dir, log, &synced_file, 1, end, 0, true, false);
}

/* A failed cut leaves the log in an unknown state: the dir goes offline. */
static rn_err_t storage_failed(rn_log_t *log, const char *what, rn_err_t err) {
    if (err == RN_ERR_NOMEM) return err;
    rn__logdir_fail(log->dir, what, log->path, EIO);
    return RN_ERR_KAFKA_STORAGE_ERROR;
}

rn_err_t rn_log_truncate_to(rn_log_t *log, int64_t offset, int64_t *new_end) {
    if (atomic_load(&log->dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    pthread_rwlock_wrlock(&log->lock);
    rn_err_t err = RN_OK;
    rn_fileref_t *lf = NULL;
    int64_t end = atomic_load(&log->log_end_offset);
    *new_end = end;
    if (log->deleted) {
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        goto out;
    }
    if (offset >= end) {
        /* Nothing to cut, but an epoch this node began as leader without appending a batch
         * (a start offset at the log end) is not the leader's: while it stays, every fetch
         * reports it as the last fetched epoch, gets a diverging epoch back and never
         * appends (Kafka's truncateTo drops it too). */
        if (rn__epochs_truncate_end(&log->epochs, end)) rn__log_write_epochs(log);
        goto out;
    }
    if (offset < atomic_load(&log->log_start_offset)) {
        err = RN_ERR_OFFSET_OUT_OF_RANGE;
        goto out;
    }
    int32_t i = rn__log_find_segment(log, offset);
    if (i < 0) i = 0;
    rn__segment_t *seg = log->segs[i];
    int64_t pos;
    err = rn__segment_prepare_append(log, seg);
    if (!err) err = rn__segment_find(log, seg, offset, &pos);
    if (!err) err = rn__segment_file(log, seg, RN__F_LOG, true, &lf);
    if (err) goto io_fail;

    int64_t freed = 0;
    for (int32_t j = i + 1; j < log->nsegs; j++) {
        freed += log->segs[j]->size_bytes;
        rn__segment_destroy(log, log->segs[j]);
    }
    log->nsegs = i + 1;
    freed += seg->size_bytes - pos;
    if (ftruncate(lf->fd, (off_t)pos) < 0) {
        RN_ERROR("log", "%s: ftruncate to %lld failed: %s", log->path, (long long)pos, strerror(errno));
        err = RN_ERR_IO;
        goto io_fail;
    }
    /* Re-derive the segment's indexes and append state from what is left. */
    int64_t seg_end;
    bool cut;
    err = rn__segment_recover(log, seg, offset, false, false, log->cfg.index_interval_bytes, &seg_end, &cut);
    if (err) goto io_fail;
    atomic_fetch_sub(&log->size_bytes, freed);
    forget_past(log, seg_end, lf);
    *new_end = seg_end;
    RN_INFO("log", "%s: truncated to offset %lld (asked %lld, log end was %lld)", log->path, (long long)seg_end,
            (long long)offset, (long long)end);
    goto out;

io_fail:
    err = storage_failed(log, "truncate", err);
out:
    pthread_rwlock_unlock(&log->lock);
    rn_fileref_release(lf);
    return err;
}

rn_err_t rn_log_reset_to(rn_log_t *log, int64_t offset) {
    if (offset < 0) return RN_ERR_INVALID_ARG;
    if (atomic_load(&log->dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    pthread_rwlock_wrlock(&log->lock);
    rn_err_t err = RN_OK;
    rn_fileref_t *lf = NULL;
    if (log->deleted) {
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        goto out;
    }
    /* The new segment first: if it cannot be made, the log stays as it was. */
    rn__segment_t *seg = NULL;
    if (offset != rn__log_active(log)->base_offset) {
        seg = rn__segment_new(offset);
        if (!seg) {
            err = RN_ERR_NOMEM;
            goto out;
        }
        err = rn__segment_file(log, seg, RN__F_LOG, true, &lf);
        if (err) {
            free(seg);
            goto io_fail;
        }
    }
    int64_t freed = 0;
    for (int32_t j = 0; j < log->nsegs; j++) {
        if (!seg && j == log->nsegs - 1) break; /* the active one is reused, emptied */
        freed += log->segs[j]->size_bytes;
        rn__segment_destroy(log, log->segs[j]);
    }
    if (seg) {
        log->segs[0] = seg;
    } else {
        seg = log->segs[0] = log->segs[log->nsegs - 1];
        freed += seg->size_bytes;
        err = rn__segment_file(log, seg, RN__F_LOG, true, &lf);
        if (!err && ftruncate(lf->fd, 0) < 0) err = RN_ERR_IO;
        bool cut;
        int64_t seg_end;
        if (!err) err = rn__segment_recover(log, seg, 0, true, true, log->cfg.index_interval_bytes, &seg_end, &cut);
        if (err) goto io_fail;
    }
    log->nsegs = 1;
    seg->append_ready = true;
    seg->size_bytes = 0;
    seg->created_ms = rn_clock_wall_ms();
    atomic_store(&seg->index_entries, 0);
    atomic_store(&seg->timeindex_entries, 0);
    atomic_store(&seg->max_timestamp, -1);
    atomic_fetch_sub(&log->size_bytes, freed);
    rn__epochs_truncate_end(&log->epochs, INT64_MIN);
    rn__log_write_epochs(log);
    log->txns.nongoing = log->txns.naborted = 0;
    forget_past(log, offset, lf);
    drop_snapshots_from(log, -1);
    atomic_store(&log->log_start_offset, offset);
    atomic_store(&log->high_watermark, offset);
    log->synced_end = log->recovery_point = offset;
    log->cleaner_offset = -1;
    rn__logdir_mark_dir_dirty(log->dir, log, false);
    RN_INFO("log", "%s: reset to start at offset %lld", log->path, (long long)offset);
    goto out;

io_fail:
    err = storage_failed(log, "reset", err);
out:
    pthread_rwlock_unlock(&log->lock);
    rn_fileref_release(lf);
    return err;
}
