/*
 * rn_recovery.c — loading one partition directory at open.
 *
 * The log dir passes hints from its files: whether the clean-shutdown marker
 * was there, and this partition's lines of recovery-point-offset-checkpoint
 * and log-start-offset-checkpoint. The recovery point (RP) is an offset below
 * which everything was fdatasync'ed, including the indexes of sealed segments.
 *
 * RECOVERY CASES
 *
 *  #  what is found                                   what is done
 *  -- ----------------------------------------------  ---------------------------------------------
 *  1  clean marker, RP line, RP >= last segment base  trusted: log end = RP, sizes from stat(2),
 *     (and RP == base if the last segment is empty)   no segment data read; indexes loaded lazily
 *  2  clean marker but no RP line, or RP inconsistent as 4 with RP = base of the last segment
 *  3  no marker, no RP line (new partition)           as 4 with RP = base of the first segment
 *  4  no marker (crash)                               segments ending below RP: trusted as in 1.
 *                                                     From the segment holding RP on: keep the sane
 *                                                     prefix of its .index below RP, check the entry
 *                                                     it ends on against the log, then scan from
 *                                                     there: length, magic, offset order always; CRC
 *                                                     for batches ending at or past RP. The first
 *                                                     bad batch and all after it are truncated; the
 *                                                     rest of both indexes is rebuilt. Recovered
 *                                                     files are fdatasync'ed.
 *  5  a segment other than the last was truncated     later segments are deleted (offsets must be
 *                                                     contiguous with what survived)
 *  6  .index or .timeindex missing                    rebuilt from the segment (no CRC if below RP)
 *  7  .index size not a multiple of 8 (found lazily)  lookups scan from 0; maintenance rebuilds it
 *  8  .index entry not matching its batch (lazily)    same as 7
 *  9  no segment at all                               empty segment at log start (or 0)
 * 10  X.log.cleaned (compaction not committed)        deleted: the old segment X is intact
 * 11  X.log.swap (compaction committed)               renamed over X.log, X's indexes rebuilt
 * 12  *.tmp (checkpoint/snapshot being written)       deleted
 * 13  N.snapshot with N > log end                     deleted; the two newest others are kept and
 *                                                     the producer table is loaded lazily from them
 * 14  leader-epoch-checkpoint entries >= log end      dropped (entries below log start clamped)
 * 15  zeros after the last valid batch (a batch        the end of the log: cut off (logged at info),
 *     header with baseOffset 0 and batchLength 0:     not counted as a truncation (case 5 does not
 *     a preallocated tail, rn_segment.c)              apply); case 1 never meets one (clean close trims)
 * 16  X.txnindex without X.log                        deleted; then open and aborted transactions are
 *                                                     rebuilt (rn_log_txn.c: clean open from the files,
 *                                                     after a crash a scan from the newest snapshot)
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

typedef struct {
    int64_t base;
    int64_t size;
    bool has_index, has_timeindex;
} found_seg_t;

static int cmp_found(const void *a, const void *b) {
    int64_t x = ((const found_seg_t *)a)->base, y = ((const found_seg_t *)b)->base;
    return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* "<20 digits><ext>" → base offset, or -1. */
static int64_t parse_name(const char *name, const char *ext) {
    size_t n = strlen(name), e = strlen(ext);
    if (n != 20 + e || strcmp(name + 20, ext) != 0) return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

static found_seg_t *find_or_add(found_seg_t **v, int *n, int *cap, int64_t base) {
    for (int i = *n - 1; i >= 0 && i >= *n - 4; i--) /* files of a segment usually come together */
        if ((*v)[i].base == base) return &(*v)[i];
    for (int i = 0; i < *n; i++)
        if ((*v)[i].base == base) return &(*v)[i];
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 8;
        found_seg_t *nv = realloc(*v, (size_t)c * sizeof(*nv));
        if (!nv) return NULL;
        *v = nv;
        *cap = c;
    }
    found_seg_t *f = &(*v)[(*n)++];
    memset(f, 0, sizeof(*f));
    f->base = base;
    return f;
}

static rn_err_t sync_segment(rn_log_t *log, rn__segment_t *seg) {
    for (int k = 0; k < RN__F_COUNT; k++) {
        rn_fileref_t *f;
        rn_err_t err = rn__segment_file(log, seg, k, true, &f);
        if (err) return err;
        int r = rn__fdatasync(f->fd);
        rn_fileref_release(f);
        if (r < 0) {
            RN_ERROR("log", "%s: fdatasync failed: %s", log->path, strerror(errno));
            return RN_ERR_IO;
        }
    }
    return RN_OK;
}

rn_err_t rn__log_load(rn_log_t *log, const rn__recover_hints_t *hints) {
    if (hints->fresh) { /* a new partition: one empty segment, nothing to read */
        rn__segment_t *seg = rn__segment_new(0);
        if (!seg || !rn__log_push_segment(log, seg)) {
            free(seg);
            return RN_ERR_NOMEM;
        }
        seg->append_ready = true;
        seg->created_ms = rn_clock_wall_ms();
        atomic_store(&seg->index_entries, 0);
        atomic_store(&seg->timeindex_entries, 0);
        atomic_store(&seg->max_timestamp, -1);
        rn_fileref_t *f;
        rn_err_t err = rn__segment_file(log, seg, RN__F_LOG, true, &f);
        if (err) return err;
        rn_fileref_release(f);
        return RN_OK;
    }
    found_seg_t *found = NULL;
    int nfound = 0, capfound = 0;
    int64_t *snaps = NULL;
    int nsnaps = 0, capsnaps = 0;
    rn_err_t err = RN_OK;
    char path[4096], path2[4096];

    DIR *d = opendir(log->path);
    if (!d) {
        RN_ERROR("log", "opendir(%s) failed: %s", log->path, strerror(errno));
        return RN_ERR_IO;
    }
    struct dirent *de;
    while (!err && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        size_t n = strlen(name);
        int64_t base;
        snprintf(path, sizeof(path), "%s/%s", log->path, name);
        if ((n > 4 && !strcmp(name + n - 4, ".tmp")) || (n > 8 && !strcmp(name + n - 8, ".cleaned")) ||
            (n > 8 && !strcmp(name + n - 8, ".deleted"))) {
            unlink(path); /* cases 10, 12 */
        } else if ((base = parse_name(name, ".log.swap")) >= 0) {
            /* case 11: the compaction had committed; finish it. */
            rn__segment_path(log, base, ".log", path2, sizeof(path2));
            if (rename(path, path2) < 0) {
                RN_ERROR("log", "rename(%s) failed: %s", path, strerror(errno));
                err = RN_ERR_IO;
                break;
            }
            for (int k = RN__F_INDEX; k < RN__F_COUNT; k++) {
                rn__segment_path(log, base, rn__segment_ext(k), path2, sizeof(path2));
                unlink(path2);
            }
            found_seg_t *f = find_or_add(&found, &nfound, &capfound, base);
            if (!f) err = RN_ERR_NOMEM;
            else f->has_index = f->has_timeindex = false;
        } else if ((base = parse_name(name, ".log")) >= 0) {
            if (!find_or_add(&found, &nfound, &capfound, base)) err = RN_ERR_NOMEM;
        } else if ((base = parse_name(name, ".index")) >= 0) {
            found_seg_t *f = find_or_add(&found, &nfound, &capfound, base);
            if (!f) err = RN_ERR_NOMEM;
            else f->has_index = true;
        } else if ((base = parse_name(name, ".timeindex")) >= 0) {
            found_seg_t *f = find_or_add(&found, &nfound, &capfound, base);
            if (!f) err = RN_ERR_NOMEM;
            else f->has_timeindex = true;
        } else if ((base = parse_name(name, ".txnindex")) >= 0) {
            if (!find_or_add(&found, &nfound, &capfound, base)) err = RN_ERR_NOMEM; /* dropped below if orphaned */
        } else if ((base = parse_name(name, ".snapshot")) >= 0) {
            if (nsnaps == capsnaps) {
                int c = capsnaps ? capsnaps * 2 : 4;
                int64_t *ns = realloc(snaps, (size_t)c * sizeof(*ns));
                if (!ns) {
                    err = RN_ERR_NOMEM;
                    break;
                }
                snaps = ns;
                capsnaps = c;
            }
            snaps[nsnaps++] = base;
        }
    }
    closedir(d);
    if (err) goto out;

    /* Index files whose .log is gone (a delete interrupted after the .log). */
    int kept = 0;
    for (int i = 0; i < nfound; i++) {
        rn__segment_path(log, found[i].base, ".log", path, sizeof(path));
        struct stat st;
        if (stat(path, &st) < 0) {
            for (int k = RN__F_INDEX; k < RN__F_COUNT; k++) {
                rn__segment_path(log, found[i].base, rn__segment_ext(k), path2, sizeof(path2));
                unlink(path2);
            }
            rn__segment_path(log, found[i].base, ".txnindex", path2, sizeof(path2));
            unlink(path2);
            continue;
        }
        found[kept] = found[i];
        found[kept].has_index = found[i].has_index && found[i].has_timeindex;
        found[kept].size = st.st_size;
        kept++;
    }
    nfound = kept;
    if (nfound > 1) qsort(found, (size_t)nfound, sizeof(found[0]), cmp_found);

    int64_t log_start = hints->have_log_start ? hints->log_start : 0;
    if (nfound == 0) { /* case 9 */
        if (!found && !(found = malloc(sizeof(*found)))) {
            err = RN_ERR_NOMEM;
            goto out;
        }
        found[0] = (found_seg_t){log_start, 0, true, true};
        nfound = 1;
        rn__segment_path(log, log_start, ".log", path, sizeof(path));
        FILE *f = fopen(path, "a");
        if (!f) {
            err = RN_ERR_IO;
            goto out;
        }
        fclose(f);
    }
    int64_t total = 0;
    for (int i = 0; i < nfound; i++) {
        rn__segment_t *seg = rn__segment_new(found[i].base);
        if (!seg || !rn__log_push_segment(log, seg)) {
            free(seg);
            err = RN_ERR_NOMEM;
            goto out;
        }
        seg->size_bytes = found[i].size;
        total += found[i].size;
    }
    if (log_start < log->segs[0]->base_offset) log_start = log->segs[0]->base_offset;

    rn__segment_t *last = rn__log_active(log);
    int64_t log_end;
    int32_t check_idx; /* first segment to check batch by batch */
    int64_t rp;
    if (hints->clean && hints->have_recovery_point && hints->recovery_point >= last->base_offset &&
        (last->size_bytes > 0 || hints->recovery_point == last->base_offset)) {
        rp = hints->recovery_point; /* case 1 */
        check_idx = log->nsegs;
        log_end = rp;
    } else {
        if (hints->clean) rp = last->base_offset; /* case 2 */
        else rp = hints->have_recovery_point ? hints->recovery_point : log->segs[0]->base_offset; /* 3, 4 */
        check_idx = rn__log_find_segment(log, rp);
        if (check_idx < 0) check_idx = 0;
        log_end = last->base_offset;
    }

    /* Trusted segments with a missing index (case 6). */
    for (int32_t i = 0; i < check_idx && i < log->nsegs; i++) {
        if (found[i].has_index) continue;
        int64_t end;
        bool trunc;
        RN_WARN("log", "%s: segment %lld has no index; rebuilding it", log->path, (long long)log->segs[i]->base_offset);
        err = rn__segment_recover(log, log->segs[i], INT64_MAX, true, false, log->cfg.index_interval_bytes, &end,
                                  &trunc);
        if (!err) err = sync_segment(log, log->segs[i]);
        if (err) goto out;
    }
    for (int32_t i = check_idx; i < log->nsegs; i++) {
        rn__segment_t *seg = log->segs[i];
        int64_t end;
        bool trunc;
        int64_t before = seg->size_bytes;
        err = rn__segment_recover(log, seg, rp, !found[i].has_index, i == log->nsegs - 1, log->cfg.index_interval_bytes,
                                  &end, &trunc);
        if (err) goto out;
        total -= before - seg->size_bytes;
        err = sync_segment(log, seg);
        if (err) goto out;
        log_end = end;
        if (i + 1 < log->nsegs && (trunc || end > log->segs[i + 1]->base_offset)) { /* case 5 */
            RN_WARN("log", "%s: segment %lld was truncated; deleting %d later segments", log->path,
                    (long long)seg->base_offset, log->nsegs - i - 1);
            for (int32_t j = i + 1; j < log->nsegs; j++) {
                total -= log->segs[j]->size_bytes;
                rn__segment_destroy(log, log->segs[j]);
            }
            log->nsegs = i + 1;
            break;
        }
        if (i + 1 < log->nsegs) log_end = log->segs[i + 1]->base_offset;
    }
    if (check_idx < log->nsegs && rn__fsync_dir(log->path) < 0) {
        err = RN_ERR_IO;
        goto out;
    }
    if (log_start > log_end) log_start = log_end;

    atomic_store(&log->log_start_offset, log_start);
    atomic_store(&log->log_end_offset, log_end);
    atomic_store(&log->high_watermark, log_end);
    atomic_store(&log->size_bytes, total);
    log->synced_end = log->recovery_point = log_end;

    /* Leader epochs (case 14). */
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", log->path);
    rn_err_t e = rn__epochs_read(&log->epochs, path);
    if (e == RN_OK) {
        bool changed = rn__epochs_truncate_end(&log->epochs, log_end);
        changed |= rn__epochs_truncate_start(&log->epochs, log_start);
        if (changed) rn__log_write_epochs(log);
    }

    /* Producer snapshots (case 13). */
    if (nsnaps > 1) qsort(snaps, (size_t)nsnaps, sizeof(snaps[0]), cmp_i64);
    for (int i = nsnaps - 1; i >= 0; i--) {
        bool keep = snaps[i] <= log_end && (log->snapshot_offset < 0 || log->prev_snapshot_offset < 0);
        if (keep && log->snapshot_offset < 0) log->snapshot_offset = snaps[i];
        else if (keep) log->prev_snapshot_offset = snaps[i];
        else {
            snprintf(path, sizeof(path), "%s/%020lld.snapshot", log->path, (long long)snaps[i]);
            unlink(path);
        }
    }
    err = rn__log_load_txns(log, hints->clean && check_idx == log->nsegs); /* .txnindex, snapshot (rn_log_txn.c) */
out:
    free(found);
    free(snaps);
    if (err) RN_ERROR("log", "%s: loading failed: %s", log->path, rn_err_name(err));
    return err;
}
