/*
 * rn_retention.c — deleting old data: time and size retention, DeleteRecords,
 * and rebuilding indexes found bad by lookups.
 *
 * Only whole sealed segments are deleted, oldest first, and only those whose
 * offsets are all below the high watermark. A segment goes when any of:
 *   - its offsets are all below the log start offset (DeleteRecords moved it);
 *   - cleanup.policy has delete and its max timestamp (last .timeindex entry,
 *     or the file's mtime if it has no timestamps) is older than retention.ms;
 *   - cleanup.policy has delete and the log minus it is still >= retention.bytes.
 * The log start offset then moves to the next segment's base offset. Files are
 * unlinked right away; a Fetch response holding the segment's fileref keeps
 * reading from its open fd.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_log_internal.h"
#include "rn_logging.h"

static int64_t segment_time(rn_log_t *log, rn__segment_t *seg) {
    int64_t ts, off;
    if (rn__segment_max_timestamp(log, seg, &ts, &off) == RN_OK && ts >= 0) return ts;
    char path[4096];
    struct stat st;
    rn__segment_path(log, seg->base_offset, ".log", path, sizeof(path));
    if (stat(path, &st) < 0) return INT64_MAX; /* unknown: keep it */
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

int rn__log_retention(rn_log_t *log, int64_t now_ms) {
    pthread_rwlock_wrlock(&log->lock);
    if (log->deleted || log->nsegs < 2) {
        pthread_rwlock_unlock(&log->lock);
        return 0;
    }
    int64_t start = atomic_load(&log->log_start_offset), hw = atomic_load(&log->high_watermark);
    int32_t n = 0;
    /* segs[n + 1]->base_offset is the end of segs[n]; the active segment stays. */
    while (n < log->nsegs - 1 && log->segs[n + 1]->base_offset <= start) n++;
    if (log->cfg.cleanup_policy & RN_CLEANUP_DELETE) {
        if (log->cfg.retention_ms >= 0)
            while (n < log->nsegs - 1 && log->segs[n + 1]->base_offset <= hw &&
                   now_ms - segment_time(log, log->segs[n]) > log->cfg.retention_ms)
                n++;
        if (log->cfg.retention_bytes >= 0) {
            int64_t size = atomic_load(&log->size_bytes);
            for (int32_t i = 0; i < n; i++) size -= log->segs[i]->size_bytes;
            while (n < log->nsegs - 1 && log->segs[n + 1]->base_offset <= hw &&
                   size - log->segs[n]->size_bytes >= log->cfg.retention_bytes) {
                size -= log->segs[n]->size_bytes;
                n++;
            }
        }
    }
    if (n > 0) {
        int64_t new_start = log->segs[n]->base_offset;
        RN_INFO("log", "%s: retention deletes %d segments, log start %lld → %lld", log->path, n, (long long)start,
                (long long)(new_start > start ? new_start : start));
        rn__log_remove_head(log, n);
        rn__log_set_start(log, new_start);
    }
    pthread_rwlock_unlock(&log->lock);
    return n;
}

rn_err_t rn_log_delete_records(rn_log_t *log, int64_t offset, int64_t *new_log_start) {
    if (atomic_load(&log->dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    pthread_rwlock_wrlock(&log->lock);
    rn_err_t err = RN_OK;
    int64_t hw = atomic_load(&log->high_watermark);
    if (offset == -1) offset = hw; /* Kafka: -1 means the high watermark */
    if (log->deleted) {
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    } else if (offset < 0 || offset > hw) {
        err = RN_ERR_OFFSET_OUT_OF_RANGE;
    } else if (offset > atomic_load(&log->log_start_offset)) {
        rn__log_set_start(log, offset);
        int32_t n = 0;
        while (n < log->nsegs - 1 && log->segs[n + 1]->base_offset <= offset) n++;
        if (n > 0) rn__log_remove_head(log, n);
    }
    *new_log_start = atomic_load(&log->log_start_offset);
    pthread_rwlock_unlock(&log->lock);
    return err;
}

rn_err_t rn__log_rebuild_bad_indexes(rn_log_t *log) {
    rn_err_t err = RN_OK;
    pthread_rwlock_wrlock(&log->lock);
    for (int32_t i = 0; !err && !log->deleted && i < log->nsegs; i++) {
        rn__segment_t *seg = log->segs[i];
        if (!atomic_load(&seg->index_bad)) continue;
        RN_WARN("log", "%s: rebuilding the indexes of segment %lld", log->path, (long long)seg->base_offset);
        int64_t end;
        bool trunc;
        int64_t size = seg->size_bytes;
        /* No CRC checks: the data was accepted; a structural problem truncates. */
        err = rn__segment_recover(log, seg, INT64_MAX, true, false, log->cfg.index_interval_bytes, &end, &trunc);
        if (!err && trunc) {
            RN_ERROR("log", "%s: segment %lld is corrupt inside committed data", log->path,
                     (long long)seg->base_offset);
            atomic_fetch_sub(&log->size_bytes, size - seg->size_bytes);
        }
    }
    pthread_rwlock_unlock(&log->lock);
    return err;
}
