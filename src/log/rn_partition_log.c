/*
 * rn_partition_log.c — one partition's log: a list of segments, the last one
 * active. Appends assign offsets, write the batches with one pwrite at the end
 * of the active segment, add index entries and register the segment with the
 * dir's flusher; reads find the segment by binary search over base offsets,
 * the position through the offset index, and return a file region.
 *
 * Offsets. log_start_offset <= (first batch of segs[0]) ... log_end_offset
 * (next offset to assign). high_watermark <= log_end_offset: the synced end in
 * durable mode, the log end in lazy mode.
 *
 * Memory per idle partition: this struct, the segment array and one
 * rn__segment_t per segment (no open files, no index in memory, no producer
 * table until an idempotent producer writes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_arena.h"
#include "rn_assert.h"
#include "rn_clock.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

void rn_log_config_default(rn_log_config_t *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->segment_bytes = 1LL << 30;
    cfg->segment_ms = 7LL * 24 * 3600 * 1000;
    cfg->index_max_bytes = 10LL << 20;
    cfg->index_interval_bytes = 4096;
    cfg->retention_ms = 7LL * 24 * 3600 * 1000;
    cfg->retention_bytes = -1;
    cfg->flush_messages = 1;
    cfg->flush_ms = INT64_MAX;
    cfg->cleanup_policy = RN_CLEANUP_DELETE;
    cfg->delete_retention_ms = 24LL * 3600 * 1000;
    cfg->min_compaction_lag_ms = 0;
    cfg->min_cleanable_dirty_ratio = 0.5;
    cfg->log_append_time = false;
}

bool rn__log_durable(const rn_log_config_t *cfg) { return cfg->flush_messages <= 1 && cfg->flush_ms == INT64_MAX; }

rn_log_t *rn__log_new(rn_logdir_t *dir, const char *topic, int32_t partition, const rn_log_config_t *cfg) {
    rn_log_t *log = calloc(1, sizeof(*log));
    if (!log) return NULL;
    size_t plen = strlen(dir->path) + strlen(topic) + 16;
    log->topic = strdup(topic);
    log->path = malloc(plen);
    if (!log->topic || !log->path) {
        free(log->topic);
        free(log->path);
        free(log);
        return NULL;
    }
    snprintf(log->path, plen, "%s/%s-%d", dir->path, topic, partition);
    log->dir = dir;
    log->partition = partition;
    log->cfg = *cfg;
    pthread_rwlock_init(&log->lock, NULL);
    atomic_init(&log->refs, 1);
    atomic_init(&log->log_start_offset, 0);
    atomic_init(&log->log_end_offset, 0);
    atomic_init(&log->high_watermark, 0);
    atomic_init(&log->txns.first_unstable, INT64_MAX);
    atomic_init(&log->size_bytes, 0);
    log->snapshot_offset = log->prev_snapshot_offset = -1;
    log->checkpoint_hw = -1;
    log->cleaner_offset = -1;
    return log;
}

void rn__log_free(rn_log_t *log) {
    for (int32_t i = 0; i < log->nsegs; i++) rn__segment_free(log, log->segs[i]);
    free(log->segs);
    RN_ASSERT(log->ndirty_files == 0);
    free(log->dirty_files);
    rn__epochs_free(&log->epochs);
    rn__pstate_free(&log->pstate);
    rn__txns_free(&log->txns);
    pthread_rwlock_destroy(&log->lock);
    free(log->topic);
    free(log->path);
    free(log);
}

void rn_log_retain(rn_log_t *log) { atomic_fetch_add(&log->refs, 1); }

void rn_log_release(rn_log_t *log) {
    if (log && atomic_fetch_sub(&log->refs, 1) == 1) rn__log_free(log);
}

const char *rn_log_topic(const rn_log_t *log) { return log->topic; }
int32_t rn_log_partition(const rn_log_t *log) { return log->partition; }

void rn_log_set_config(rn_log_t *log, const rn_log_config_t *cfg) {
    pthread_rwlock_wrlock(&log->lock);
    log->cfg = *cfg;
    pthread_rwlock_unlock(&log->lock);
}

int64_t rn_log_start_offset(const rn_log_t *log) { return atomic_load(&log->log_start_offset); }
int64_t rn_log_end_offset(const rn_log_t *log) { return atomic_load(&log->log_end_offset); }
int64_t rn_log_high_watermark(const rn_log_t *log) { return atomic_load(&log->high_watermark); }
int64_t rn_log_size_bytes(const rn_log_t *log) { return atomic_load(&log->size_bytes); }

int32_t rn__log_find_segment(const rn_log_t *log, int64_t offset) {
    int32_t lo = 0, hi = log->nsegs - 1, best = -1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

bool rn__log_push_segment(rn_log_t *log, rn__segment_t *seg) {
    if (log->nsegs == log->segs_cap) {
        int32_t cap = log->segs_cap ? log->segs_cap * 2 : 1;
        rn__segment_t **n = realloc(log->segs, (size_t)cap * sizeof(*n));
        if (!n) return false;
        log->segs = n;
        log->segs_cap = cap;
    }
    RN_ASSERT(log->nsegs == 0 || log->segs[log->nsegs - 1]->base_offset < seg->base_offset);
    log->segs[log->nsegs++] = seg;
    return true;
}

void rn__log_remove_head(rn_log_t *log, int32_t n) {
    RN_ASSERT(n < log->nsegs); /* the active segment stays */
    int64_t freed = 0;
    for (int32_t i = 0; i < n; i++) {
        freed += log->segs[i]->size_bytes;
        rn__segment_destroy(log, log->segs[i]);
    }
    memmove(log->segs, log->segs + n, (size_t)(log->nsegs - n) * sizeof(log->segs[0]));
    log->nsegs -= n;
    atomic_fetch_sub(&log->size_bytes, freed);
}

void rn__log_set_start(rn_log_t *log, int64_t start) {
    if (start <= atomic_load(&log->log_start_offset)) return;
    atomic_store(&log->log_start_offset, start);
    if (rn__epochs_truncate_start(&log->epochs, start)) rn__log_write_epochs(log);
    if (log->pstate_loaded) rn__pstate_remove_below(&log->pstate, start);
    rn__txns_remove_below(&log->txns, start);
}

rn_err_t rn__log_write_epochs(rn_log_t *log) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", log->path);
    rn_err_t err = rn__epochs_write(&log->epochs, path);
    if (err) RN_WARN("log", "%s: writing leader-epoch-checkpoint failed", log->path);
    return err;
}

rn_err_t rn__log_snapshot_producers(rn_log_t *log, bool sync) {
    int64_t at = atomic_load(&log->log_end_offset);
    if (!log->pstate_loaded || at == log->snapshot_offset) return RN_OK;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%020lld.snapshot", log->path, (long long)at);
    rn_err_t err = rn__pstate_write_snapshot(&log->pstate, &log->txns, path, sync);
    if (err) return err;
    if (log->prev_snapshot_offset >= 0) {
        snprintf(path, sizeof(path), "%s/%020lld.snapshot", log->path, (long long)log->prev_snapshot_offset);
        unlink(path);
    }
    log->prev_snapshot_offset = log->snapshot_offset;
    log->snapshot_offset = at;
    return RN_OK;
}

rn_err_t rn__log_scan_from(rn_log_t *log, int64_t from, rn__scan_fn fn, void *ctx) {
    int32_t i = rn__log_find_segment(log, from);
    if (i < 0) i = 0;
    for (; i < log->nsegs; i++) {
        rn__segment_t *seg = log->segs[i];
        int64_t pos = 0;
        rn_err_t err = rn__segment_find(log, seg, from, &pos);
        if (err) return err;
        rn_fileref_t *f;
        err = rn__segment_file(log, seg, RN__F_LOG, false, &f);
        if (err) return err;
        rn__scan_t s;
        rn__scan_init(&s, f->fd, pos, seg->size_bytes);
        while ((err = rn__scan_next(&s)) == RN_OK)
            if (rn_batch_last_offset(&s.h) >= from && (err = fn(ctx, log, seg, &s)) != RN_OK) break;
        rn__scan_free(&s);
        rn_fileref_release(f);
        if (err != RN_ERR_NOT_FOUND) return err == RN_ERR_CORRUPT ? RN_ERR_KAFKA_STORAGE_ERROR : err;
    }
    return RN_OK;
}

static rn_err_t scan_producer(void *ctx, rn_log_t *log, rn__segment_t *seg, rn__scan_t *s) {
    (void)ctx;
    (void)seg;
    return s->h.producer_id < 0 || rn__pstate_update(&log->pstate, &s->h) ? RN_OK : RN_ERR_NOMEM;
}

rn_err_t rn__log_load_pstate(rn_log_t *log) {
    if (log->pstate_loaded) return RN_OK;
    int64_t end = atomic_load(&log->log_end_offset);
    int64_t from = log->nsegs ? log->segs[0]->base_offset : 0;
    int64_t cand[2] = {log->snapshot_offset, log->prev_snapshot_offset};
    rn__pstate_free(&log->pstate);
    for (int k = 0; k < 2; k++) {
        if (cand[k] < 0 || cand[k] > end) continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%020lld.snapshot", log->path, (long long)cand[k]);
        if (rn__pstate_read_snapshot(&log->pstate, path, NULL) == RN_OK) {
            from = cand[k];
            break;
        }
    }
    /* Every idempotent batch in [from, log end) into the producer table. */
    rn_err_t err = rn__log_scan_from(log, from, scan_producer, NULL);
    if (err) {
        RN_ERROR("log", "%s: rebuilding producer state failed: %s", log->path, rn_err_name(err));
        rn__pstate_free(&log->pstate);
        return err;
    }
    rn__pstate_remove_below(&log->pstate, atomic_load(&log->log_start_offset));
    log->pstate_loaded = true;
    return RN_OK;
}

rn_err_t rn__log_roll(rn_log_t *log, int64_t new_base, int64_t now_ms) {
    rn__segment_t *old = rn__log_active(log);
    RN_ASSERT(new_base > old->base_offset);
    rn_err_t err = rn__segment_seal(log, old);
    if (!err) err = rn__segment_trim(log, old); /* sealed segments have no preallocated tail */
    if (err) return err;
    rn__segment_t *seg = rn__segment_new(new_base);
    if (!seg) return RN_ERR_NOMEM;
    seg->created_ms = now_ms;
    seg->append_ready = true;
    atomic_store(&seg->index_entries, 0);
    atomic_store(&seg->timeindex_entries, 0);
    atomic_store(&seg->max_timestamp, -1);
    rn_fileref_t *f;
    err = rn__segment_file(log, seg, RN__F_LOG, true, &f);
    if (err) {
        free(seg);
        return err;
    }
    rn_fileref_release(f);
    if (!rn__log_push_segment(log, seg)) {
        rn__segment_destroy(log, seg);
        return RN_ERR_NOMEM;
    }
    /* The sealed segment and its indexes get synced in the background; the
     * recovery point moves past it only after that. */
    rn_fileref_t *files[RN__F_COUNT];
    int n = 0;
    for (int k = 0; k < RN__F_COUNT; k++)
        if (rn__segment_file(log, old, k, true, &files[n]) == RN_OK) n++;
    rn__logdir_mark_dirty(log->dir, log, files, n, new_base, 0, true, false);
    for (int k = 0; k < n; k++) rn_fileref_release(files[k]);
    if (rn__log_snapshot_producers(log, false)) RN_WARN("log", "%s: producer snapshot failed", log->path);
    RN_DEBUG("log", "%s: rolled to segment %lld", log->path, (long long)new_base);
    return RN_OK;
}

/* ---- append ---------------------------------------------------------------- */

typedef struct {
    int64_t producer_id;
    rn__producer_t p; /* producer_id -1 inside: unknown producer */
} staged_t;

static staged_t *stage_find(staged_t *st, int n, int64_t pid) {
    for (int i = 0; i < n; i++)
        if (st[i].producer_id == pid) return &st[i];
    return NULL;
}

/* Everything an append changes in the active segment, to undo a failed write. */
typedef struct {
    int64_t size_bytes, max_ts, max_ts_off, last_time_entry_ts;
    int32_t idx, tidx, bytes_since_index;
} seg_undo_t;

static void undo_segment(rn_log_t *log, rn__segment_t *seg, const seg_undo_t *u, rn_fileref_t *lf, bool *ok) {
    *ok = ftruncate(lf->fd, (off_t)u->size_bytes) == 0;
    rn_fileref_t *f;
    if (atomic_load(&seg->index_entries) != u->idx && rn__segment_file(log, seg, RN__F_INDEX, true, &f) == RN_OK) {
        if (ftruncate(f->fd, (off_t)u->idx * RN__INDEX_ENTRY) < 0) *ok = false;
        rn_fileref_release(f);
    }
    if (atomic_load(&seg->timeindex_entries) != u->tidx &&
        rn__segment_file(log, seg, RN__F_TIMEINDEX, true, &f) == RN_OK) {
        if (ftruncate(f->fd, (off_t)u->tidx * RN__TIMEINDEX_ENTRY) < 0) *ok = false;
        rn_fileref_release(f);
    }
    atomic_store(&seg->index_entries, u->idx);
    atomic_store(&seg->timeindex_entries, u->tidx);
    atomic_store(&seg->max_timestamp, u->max_ts);
    atomic_store(&seg->max_timestamp_offset, u->max_ts_off);
    seg->last_time_entry_ts = u->last_time_entry_ts;
    seg->bytes_since_index = u->bytes_since_index;
    seg->size_bytes = u->size_bytes;
    rn__segment_prealloc_forget(log, seg); /* the cut took the zeros too */
}

rn_err_t rn_log_append(rn_log_t *log, uint8_t *batches, size_t len, const rn_append_opts_t *opts,
                       rn_append_result_t *out) {
    memset(out, 0, sizeof(*out));
    out->base_offset = out->last_offset = -1;
    out->log_append_time = -1;
    rn_logdir_t *dir = log->dir;
    if (atomic_load(&dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    if (len == 0) return RN_ERR_INVALID_ARG;

    /* Structure only: the caller validated CRCs and records. */
    bool follower = opts->as_follower;
    int nbatches = 0, nidem = 0;
    int64_t records = 0, delta_total = 0, first_base = -1, follower_end = -1;
    for (size_t pos = 0; pos < len;) {
        if (len - pos < RN_BATCH_HEADER_SIZE) return RN_ERR_CORRUPT_MESSAGE;
        rn_batch_header_t h;
        rn_batch_header_decode(batches + pos, &h);
        if (h.magic != 2 || h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD ||
            (size_t)h.batch_length > len - pos - RN_BATCH_LOG_OVERHEAD || h.last_offset_delta < 0)
            return RN_ERR_CORRUPT_MESSAGE;
        if (rn_batch_is_control(&h) && !opts->is_internal && !follower) return RN_ERR_INVALID_RECORD;
        if (follower) { /* leader-assigned offsets: increasing (compaction may leave gaps) */
            if (h.base_offset < 0 || h.base_offset < follower_end || h.base_offset > INT64_MAX - h.last_offset_delta - 1)
                return RN_ERR_CORRUPT_MESSAGE;
            if (first_base < 0) first_base = h.base_offset;
            follower_end = rn_batch_last_offset(&h) + 1;
        }
        nbatches++;
        nidem += h.producer_id >= 0;
        records += h.record_count;
        delta_total += (int64_t)h.last_offset_delta + 1;
        pos += rn_batch_total_size(&h);
    }

    staged_t stage_small[8];
    staged_t *stage = nidem <= 8 ? stage_small : malloc((size_t)nidem * sizeof(staged_t));
    if (!stage) return RN_ERR_NOMEM;
    int nstage = 0;
    rn_fileref_t *lf = NULL;
    rn_err_t err = RN_OK;

    pthread_rwlock_wrlock(&log->lock);
    int64_t now = opts->now_ms > 0 ? opts->now_ms : rn_clock_wall_ms();
    int64_t log_end = atomic_load(&log->log_end_offset);
    if (log->deleted) {
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        goto out;
    }
    /* A full disk refuses every append alike, before the producer checks: a producer's next
     * pipelined batch must get the same retriable error as the one that found the disk full,
     * not OUT_OF_ORDER_SEQUENCE_NUMBER for the gap it left (fatal to an idempotent producer). */
    err = rn__logdir_check_space(dir, len);
    if (err) goto out;
    if (follower) {
        if (first_base < log_end) {
            err = RN_ERR_OFFSET_OUT_OF_RANGE;
            goto out;
        }
        delta_total = follower_end - log_end; /* a gap after the log end counts as offsets used */
        if (nidem > 0 && rn__log_load_pstate(log)) {
            err = RN_ERR_KAFKA_STORAGE_ERROR;
            goto out;
        }
    }

    /* Producer checks against the state as it will be after earlier batches of this request. */
    if (nidem > 0 && !follower) {
        err = rn__log_load_pstate(log);
        if (err) {
            err = RN_ERR_KAFKA_STORAGE_ERROR;
            goto out;
        }
        int64_t next = log_end;
        for (size_t pos = 0; pos < len;) {
            rn_batch_header_t h;
            rn_batch_header_decode(batches + pos, &h);
            pos += rn_batch_total_size(&h);
            h.base_offset = next;
            next += (int64_t)h.last_offset_delta + 1;
            if (h.producer_id < 0) continue;
            staged_t *st = stage_find(stage, nstage, h.producer_id);
            if (!st) {
                st = &stage[nstage++];
                st->producer_id = h.producer_id;
                const rn__producer_t *cur = rn__pstate_get(&log->pstate, h.producer_id);
                if (cur) {
                    st->p = *cur;
                } else {
                    st->p.producer_id = -1;
                }
            }
            bool dup = false;
            int64_t dfirst = 0, dlast = 0;
            err = rn__pstate_check(st->p.producer_id >= 0 ? &st->p : NULL, &h, &dup, &dfirst, &dlast);
            if (err) goto out;
            if (dup) {
                out->duplicate = true;
                out->base_offset = dfirst;
                out->last_offset = dlast;
                out->log_start_offset = atomic_load(&log->log_start_offset);
                goto out;
            }
            rn__producer_apply(&st->p, &h);
        }
    }

    /* Roll first if this append would not fit the active segment. */
    rn__segment_t *seg = rn__log_active(log);
    err = rn__segment_prepare_append(log, seg);
    if (err) goto io_fail;
    int64_t last_offset = log_end + delta_total - 1;
    int64_t idx_room = log->cfg.index_max_bytes;
    bool full = seg->size_bytes + (int64_t)len > log->cfg.segment_bytes ||
                seg->size_bytes + (int64_t)len > (int64_t)INT32_MAX ||
                now - seg->created_ms >= log->cfg.segment_ms ||
                ((int64_t)atomic_load(&seg->index_entries) + nbatches) * RN__INDEX_ENTRY > idx_room ||
                ((int64_t)atomic_load(&seg->timeindex_entries) + nbatches + 1) * RN__TIMEINDEX_ENTRY > idx_room ||
                last_offset - seg->base_offset > INT32_MAX;
    if (seg->size_bytes > 0 && full) {
        err = rn__log_roll(log, follower ? first_base : log_end, now);
        if (err) goto io_fail;
        seg = rn__log_active(log);
    }
    /* Assign offsets (and LogAppendTime) in place; a follower keeps the leader's. */
    int64_t next = follower ? follower_end : log_end;
    for (size_t pos = 0; pos < len && !follower;) {
        uint8_t *b = batches + pos;
        rn_batch_header_t h;
        rn_batch_header_decode(b, &h);
        rn_batch_set_base_offset(b, next);
        if (opts->leader_epoch >= 0) rn_batch_set_leader_epoch(b, opts->leader_epoch);
        if (log->cfg.log_append_time) {
            /* As Kafka: only maxTimestamp and the timestamp-type bit change; record
             * deltas stay relative to baseTimestamp. */
            rn_store_be16(b + RN_BATCH_OFF_ATTRIBUTES, (uint16_t)(h.attributes | RN_BATCH_ATTR_LOG_APPEND_TIME));
            rn_store_be64(b + RN_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)now);
            rn_batch_update_crc(b, rn_batch_total_size(&h));
        }
        next += (int64_t)h.last_offset_delta + 1;
        pos += rn_batch_total_size(&h);
    }

    err = rn__segment_file(log, seg, RN__F_LOG, true, &lf);
    if (err) goto io_fail;
    seg_undo_t undo = {seg->size_bytes,
                       atomic_load(&seg->max_timestamp),
                       atomic_load(&seg->max_timestamp_offset),
                       seg->last_time_entry_ts,
                       atomic_load(&seg->index_entries),
                       atomic_load(&seg->timeindex_entries),
                       seg->bytes_since_index};
    bool durable = rn__log_durable(&log->cfg);
    if (durable && log->cfg.preallocate) rn__segment_preallocate(log, seg, lf->fd, len);
    if (rn__pwrite_all(lf->fd, batches, len, seg->size_bytes) < 0) {
        int e = errno;
        err = (e == ENOSPC || e == EDQUOT) ? RN_ERR_NOSPACE : RN_ERR_IO;
        RN_ERROR("log", "%s: write of %zu bytes at %lld failed: %s", log->path, len, (long long)seg->size_bytes,
                 strerror(e));
    } else {
        rn__index_pending_t pend;
        pend.nidx = pend.ntidx = 0;
        for (size_t pos = 0; pos < len && !err;) {
            rn_batch_header_t h;
            rn_batch_header_decode(batches + pos, &h);
            rn__segment_note_batch(seg, &pend, &h, seg->size_bytes + (int64_t)pos, log->cfg.index_interval_bytes);
            if (pend.nidx == 64 || pend.ntidx == 64) err = rn__segment_write_index(log, seg, &pend);
            pos += rn_batch_total_size(&h);
        }
        if (!err) err = rn__segment_write_index(log, seg, &pend);
    }
    if (err) {
        /* Nothing of this append may stay visible: cut the files back. */
        bool ok;
        undo_segment(log, seg, &undo, lf, &ok);
        if (err == RN_ERR_NOSPACE && ok) {
            RN_WARN("log", "%s: out of space; append refused, segment truncated back", log->path);
            goto out;
        }
        rn__logdir_fail(dir, "write", log->path, EIO);
        err = RN_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }

    seg->size_bytes += (int64_t)len;
    rn__segment_grew(log, seg, undo.size_bytes);
    atomic_store(&log->log_end_offset, next);
    atomic_fetch_add(&log->size_bytes, (int64_t)len);
    bool epochs_changed = false;
    if (follower) {
        for (size_t pos = 0; pos < len;) {
            rn_batch_header_t h;
            rn_batch_header_decode(batches + pos, &h);
            if (h.partition_leader_epoch >= 0)
                epochs_changed |= rn__epochs_assign(&log->epochs, h.partition_leader_epoch, h.base_offset);
            pos += rn_batch_total_size(&h);
        }
    } else if (opts->leader_epoch >= 0) {
        epochs_changed = rn__epochs_assign(&log->epochs, opts->leader_epoch, log_end);
    }
    if (epochs_changed) rn__log_write_epochs(log);
    if (nidem > 0) {
        for (size_t pos = 0; pos < len;) {
            rn_batch_header_t h;
            rn_batch_header_decode(batches + pos, &h);
            if (h.producer_id >= 0 && !rn__pstate_update(&log->pstate, &h)) {
                /* Cannot happen short of ENOMEM; the next load rebuilds it from the log. */
                log->pstate_loaded = false;
                rn__pstate_free(&log->pstate);
                break;
            }
            rn__log_txns_append(log, batches + pos, &h);
            pos += rn_batch_total_size(&h);
        }
    }
    atomic_fetch_add(&dir->st_appends, 1);
    atomic_fetch_add(&dir->st_append_bytes, len);

    out->sync_ticket = rn__logdir_mark_dirty(dir, log, &lf, 1, next, records, durable, durable);
    if (!durable && !atomic_load(&log->replicated)) atomic_store(&log->high_watermark, next);
    out->base_offset = follower ? first_base : log_end;
    out->last_offset = next - 1;
    out->log_append_time = log->cfg.log_append_time ? now : -1;
    out->log_start_offset = atomic_load(&log->log_start_offset);
    goto out;

io_fail:
    if (err == RN_ERR_NOMEM) goto out;
    rn__logdir_fail(dir, "segment I/O", log->path, EIO);
    err = RN_ERR_KAFKA_STORAGE_ERROR;
out:
    pthread_rwlock_unlock(&log->lock);
    rn_fileref_release(lf);
    if (stage != stage_small) free(stage);
    return err;
}

/* ---- read ------------------------------------------------------------------ */

rn_err_t rn_log_read(rn_log_t *log, int64_t offset, int32_t max_bytes, bool min_one, int64_t upper,
                     rn_log_read_t *out) {
    memset(out, 0, sizeof(*out));
    if (atomic_load(&log->dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    rn_err_t err = RN_OK;
    pthread_rwlock_rdlock(&log->lock);
    int64_t start = atomic_load(&log->log_start_offset), end = atomic_load(&log->log_end_offset);
    if (log->deleted || offset < start || offset > end) {
        err = log->deleted ? RN_ERR_UNKNOWN_TOPIC_OR_PARTITION : RN_ERR_OFFSET_OUT_OF_RANGE;
        goto out;
    }
    if (offset == end || offset >= upper || max_bytes < 0) goto out;
    int32_t i = rn__log_find_segment(log, offset);
    if (i < 0) i = 0;
    for (; i < log->nsegs; i++) {
        rn__segment_t *seg = log->segs[i];
        int64_t pos;
        err = rn__segment_find(log, seg, offset, &pos);
        if (err) goto out;
        if (pos >= seg->size_bytes) continue; /* nothing at or after offset here (compaction gaps) */
        rn_fileref_t *f;
        err = rn__segment_file(log, seg, RN__F_LOG, false, &f);
        if (err) {
            if (err == RN_ERR_NOT_FOUND) err = RN_ERR_KAFKA_STORAGE_ERROR;
            goto out;
        }
        rn__scan_t s;
        rn__scan_init(&s, f->fd, pos, seg->size_bytes);
        int64_t total = 0;
        while ((err = rn__scan_next(&s)) == RN_OK) {
            if (rn_batch_last_offset(&s.h) >= upper) break;
            if (total + (int64_t)s.size > max_bytes) {
                if (total == 0 && min_one) total = (int64_t)s.size;
                break;
            }
            total += (int64_t)s.size;
        }
        rn__scan_free(&s);
        if (err == RN_ERR_CORRUPT && total == 0) {
            RN_ERROR("log", "%s: corrupt batch at %lld in segment %lld", log->path, (long long)s.pos,
                     (long long)seg->base_offset);
            err = RN_ERR_KAFKA_STORAGE_ERROR;
            rn_fileref_release(f);
            goto out;
        }
        if (err == RN_ERR_IO) {
            rn_fileref_release(f);
            goto out;
        }
        err = RN_OK;
        if (total == 0) {
            rn_fileref_release(f);
        } else {
            out->file = f;
            out->file_pos = pos;
            out->len = (int32_t)total;
        }
        break;
    }
out:
    pthread_rwlock_unlock(&log->lock);
    return err;
}

/* ---- offsets ---------------------------------------------------------------- */

/* Within one segment: first batch from `pos` whose maxTimestamp >= ts. */
static rn_err_t find_ts_in_segment(rn_log_t *log, rn__segment_t *seg, int64_t ts, bool *found, int64_t *offset,
                                   int64_t *timestamp) {
    *found = false;
    int64_t from = seg->base_offset;
    rn_fileref_t *tf;
    int32_t tn = atomic_load(&seg->timeindex_entries);
    if (tn < 0) {
        int64_t dts, doff;
        rn_err_t e = rn__segment_max_timestamp(log, seg, &dts, &doff); /* loads the count */
        if (e) return e;
        tn = atomic_load(&seg->timeindex_entries);
    }
    if (tn > 0 && !atomic_load(&seg->index_bad) && rn__segment_file(log, seg, RN__F_TIMEINDEX, true, &tf) == RN_OK) {
        bool f;
        int64_t ets;
        uint32_t erel;
        if (rn__timeindex_lookup(tf->fd, tn, ts, &f, &ets, &erel) == RN_OK && f) from = seg->base_offset + erel;
        rn_fileref_release(tf);
    }
    int64_t start = atomic_load(&log->log_start_offset);
    if (from < start) from = start;
    int64_t pos;
    rn_err_t err = rn__segment_find(log, seg, from, &pos);
    if (err) return err;
    rn_fileref_t *lf;
    err = rn__segment_file(log, seg, RN__F_LOG, false, &lf);
    if (err) return err == RN_ERR_NOT_FOUND ? RN_ERR_KAFKA_STORAGE_ERROR : err;
    rn__scan_t s;
    rn__scan_init(&s, lf->fd, pos, seg->size_bytes);
    rn_arena_t arena;
    rn_arena_init(&arena, (64u << 20) + (1u << 20));
    while ((err = rn__scan_next(&s)) == RN_OK) {
        if (s.h.max_timestamp < ts || rn_batch_last_offset(&s.h) < start) continue;
        *found = true;
        *offset = s.h.base_offset > start ? s.h.base_offset : start;
        *timestamp = s.h.max_timestamp;
        /* With LogAppendTime every record has the batch's timestamp; otherwise
         * find the first record at or after ts. */
        if (!(s.h.attributes & RN_BATCH_ATTR_LOG_APPEND_TIME) && !rn_batch_is_control(&s.h) &&
            rn__scan_body(&s) == RN_OK) {
            rn_record_iter_t it;
            rn_record_t rec;
            if (rn_record_iter_init(&it, s.batch, s.size, 64u << 20, &arena) == RN_OK)
                while (rn_record_iter_next(&it, &rec))
                    if (rec.timestamp >= ts && rec.offset >= start) {
                        *offset = rec.offset;
                        *timestamp = rec.timestamp;
                        break;
                    }
        }
        break;
    }
    rn_arena_reset(&arena);
    rn__scan_free(&s);
    rn_fileref_release(lf);
    if (err == RN_ERR_NOT_FOUND) err = RN_OK;
    return err == RN_ERR_CORRUPT ? RN_ERR_KAFKA_STORAGE_ERROR : err;
}

rn_err_t rn_log_offset_for_timestamp(rn_log_t *log, int64_t ts, int64_t *offset, int64_t *timestamp) {
    *offset = -1;
    *timestamp = -1;
    if (atomic_load(&log->dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    rn_err_t err = RN_OK;
    pthread_rwlock_rdlock(&log->lock);
    int64_t start = atomic_load(&log->log_start_offset);
    int32_t i = rn__log_find_segment(log, start);
    for (i = i < 0 ? 0 : i; i < log->nsegs; i++) {
        rn__segment_t *seg = log->segs[i];
        int64_t mts, moff;
        err = rn__segment_max_timestamp(log, seg, &mts, &moff);
        if (err) break;
        if (seg->size_bytes == 0 || mts < ts) continue;
        bool found;
        err = find_ts_in_segment(log, seg, ts, &found, offset, timestamp);
        if (err || found) break;
    }
    pthread_rwlock_unlock(&log->lock);
    return err;
}

rn_err_t rn_log_max_timestamp(rn_log_t *log, int64_t *offset, int64_t *timestamp) {
    *offset = -1;
    *timestamp = -1;
    if (atomic_load(&log->dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    rn_err_t err = RN_OK;
    pthread_rwlock_rdlock(&log->lock);
    int64_t start = atomic_load(&log->log_start_offset);
    for (int32_t i = 0; i < log->nsegs; i++) {
        int64_t mts, moff;
        err = rn__segment_max_timestamp(log, log->segs[i], &mts, &moff);
        if (err) break;
        if (log->segs[i]->size_bytes > 0 && mts > *timestamp && moff >= start) {
            *timestamp = mts;
            *offset = moff;
        }
    }
    pthread_rwlock_unlock(&log->lock);
    return err;
}

rn_err_t rn_log_end_offset_for_epoch(rn_log_t *log, int32_t epoch, int32_t *out_epoch, int64_t *out_end_offset) {
    pthread_rwlock_rdlock(&log->lock);
    rn__epochs_end_offset(&log->epochs, epoch, atomic_load(&log->log_end_offset), out_epoch, out_end_offset);
    pthread_rwlock_unlock(&log->lock);
    return RN_OK;
}

int32_t rn_log_latest_epoch(const rn_log_t *log) {
    rn_log_t *l = (rn_log_t *)log;
    pthread_rwlock_rdlock(&l->lock);
    int32_t e = l->epochs.n ? l->epochs.v[l->epochs.n - 1].epoch : -1;
    pthread_rwlock_unlock(&l->lock);
    return e;
}

rn_err_t rn__log_close_clean(rn_log_t *log) {
    pthread_rwlock_wrlock(&log->lock);
    rn_err_t err = RN_OK;
    if (log->nsegs > 0) {
        rn__segment_t *seg = rn__log_active(log);
        err = rn__segment_seal(log, seg);
        if (!err) err = rn__segment_trim(log, seg); /* the next open trusts the file's size */
        for (int k = 0; !err && k < RN__F_COUNT; k++) {
            /* Only files that are open can have unsynced writes: ours or the flusher's
             * (the final flush round ran before this). */
            rn_fileref_t *f;
            if (rn__segment_file(log, seg, k, true, &f)) {
                err = RN_ERR_IO;
                break;
            }
            if (rn__fdatasync(f->fd) < 0) {
                rn__logdir_fail(log->dir, "fdatasync", log->path, errno);
                err = RN_ERR_IO;
            }
            rn_fileref_release(f);
        }
        /* Open transactions live in the snapshot: make sure it says what is open now. */
        if (!err && !log->pstate_loaded && (log->txns.nongoing > 0 || log->txns_rebuilt)) err = rn__log_load_pstate(log);
        if (!err) err = rn__log_snapshot_producers(log, true);
        if (!err) {
            log->synced_end = atomic_load(&log->log_end_offset);
            log->recovery_point = log->synced_end;
        }
    }
    pthread_rwlock_unlock(&log->lock);
    return err;
}
