/*
 * rn_log_txn.c — transactions as a partition sees them: the ongoing
 * transaction of each producer, the last stable offset, and the aborted
 * transactions that read_committed fetches must be told about.
 *
 * A transactional batch (attribute bit 4) from a producer with no ongoing
 * transaction opens one at the batch's base offset. A control batch (bit 5)
 * written by the transaction coordinator closes the producer's transaction;
 * its one record's key is { version int16, type int16 } with type 0 = ABORT,
 * 1 = COMMIT. An ABORT marker records { producerId, firstOffset, lastOffset
 * = the marker's offset } in the aborted list (Kafka's AbortedTxn).
 *
 *   producer's state     batch                         next state
 *   ------------------   ---------------------------   -----------------------------------
 *   none                 transactional data            ongoing, first = batch base offset
 *   ongoing(first)       transactional data            ongoing(first)
 *   ongoing(first)       COMMIT marker at m            none
 *   ongoing(first)       ABORT marker at m             none, aborted += {pid, first, m}
 *   none                 marker                        none (a marker for a partition the
 *                                                      producer wrote nothing to)
 *
 * The last stable offset is min(high watermark, smallest first offset of an
 * ongoing transaction): read_committed consumers never read past it.
 *
 * Everything here is guarded by the log's write lock, except first_unstable,
 * an atomic read without the lock by rn_log_last_stable_offset.
 *
 * ON DISK. The aborted list is kept, as Kafka keeps it, in a .txnindex file
 * next to each segment, one 34-byte entry per ABORT marker in that segment,
 * appended (and fdatasync'ed in durable mode) when the marker is appended:
 *    0  int16  version = 0
 *    2  int64  producerId
 *   10  int64  firstOffset
 *   18  int64  lastOffset        (the ABORT marker)
 *   26  int64  lastStableOffset  (the partition's LSO right after the abort)
 * Ongoing transactions are kept in the producer snapshot (rn_producer_state.c,
 * version 2: producerId and firstOffset of each), written at segment roll and
 * clean shutdown. Retention deletes a .txnindex with its segment.
 *
 * REBUILDING AT OPEN (rn__log_load_txns), S = the newest producer snapshot:
 *
 *   open          ongoing                          aborted
 *   -----------   ------------------------------   --------------------------------------
 *   clean         S's list (a clean close writes   every .txnindex entry below the log end
 *                 S whenever the list may differ)
 *   after crash   S's list, then a scan of the     .txnindex entries below S (the files
 *                 batches from S (from the log     cut there), then the scan's ABORT
 *                 start without S) to the end      markers, appended to the files again
 *
 * Entries below the log start are dropped in memory; a log truncation cuts
 * the files (rn__txnindex_cut).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_bytes.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

#define TXNINDEX_ENTRY RN__TXNINDEX_ENTRY
#define TXNINDEX_EXT ".txnindex"

#define TXN_ABORTED_MAX 1000000 /* bound on the in-memory aborted list */

void rn__txns_free(rn__txns_t *t) {
    free(t->ongoing);
    free(t->aborted);
    memset(t, 0, sizeof(*t));
}

int rn__control_type(const uint8_t *batch, size_t total_size) {
    if (total_size <= RN_BATCH_HEADER_SIZE) return -1;
    rn_reader_t r;
    rn_reader_init(&r, batch + RN_BATCH_HEADER_SIZE, total_size - RN_BATCH_HEADER_SIZE);
    (void)rn_reader_varint(&r);  /* record length */
    (void)rn_reader_i8(&r);      /* attributes */
    (void)rn_reader_varlong(&r); /* timestampDelta */
    (void)rn_reader_varint(&r);  /* offsetDelta */
    int32_t klen = rn_reader_varint(&r);
    if (rn_reader_err(&r) || klen < 4) return -1;
    (void)rn_reader_i16(&r); /* version */
    int16_t type = rn_reader_i16(&r);
    if (rn_reader_err(&r) || (type != RN_CONTROL_ABORT && type != RN_CONTROL_COMMIT)) return -1;
    return type;
}

static int32_t find_ongoing(const rn__txns_t *t, int64_t pid) {
    for (int32_t i = 0; i < t->nongoing; i++)
        if (t->ongoing[i].producer_id == pid) return i;
    return -1;
}

static void update_first_unstable(rn__txns_t *t) {
    int64_t first = INT64_MAX;
    for (int32_t i = 0; i < t->nongoing; i++)
        if (t->ongoing[i].first_offset < first) first = t->ongoing[i].first_offset;
    atomic_store(&t->first_unstable, first);
}

bool rn__txns_apply(rn__txns_t *t, const rn_batch_header_t *h, int control_type) {
    if (h->producer_id < 0 || !rn_batch_is_transactional(h)) return true;
    int32_t i = find_ongoing(t, h->producer_id);
    if (!rn_batch_is_control(h)) {
        if (i >= 0) return true;
        if (t->nongoing == t->ongoing_cap) {
            int32_t cap = t->ongoing_cap ? t->ongoing_cap * 2 : 8;
            rn__txn_ongoing_t *n = realloc(t->ongoing, (size_t)cap * sizeof(*n));
            if (!n) return false;
            t->ongoing = n;
            t->ongoing_cap = cap;
        }
        t->ongoing[t->nongoing++] = (rn__txn_ongoing_t){h->producer_id, h->base_offset};
        update_first_unstable(t);
        return true;
    }
    if (i < 0) return true;
    int64_t first = t->ongoing[i].first_offset;
    t->ongoing[i] = t->ongoing[--t->nongoing];
    update_first_unstable(t);
    if (control_type != RN_CONTROL_ABORT) return true;
    if (t->naborted == t->aborted_cap) {
        if (t->aborted_cap >= TXN_ABORTED_MAX) return false;
        int32_t cap = t->aborted_cap ? t->aborted_cap * 2 : 8;
        rn_aborted_txn_t *n = realloc(t->aborted, (size_t)cap * sizeof(*n));
        if (!n) return false;
        t->aborted = n;
        t->aborted_cap = cap;
    }
    /* Markers are appended in offset order, so the list stays sorted by last offset. */
    RN_ASSERT(t->naborted == 0 || t->aborted[t->naborted - 1].last_offset < h->base_offset);
    t->aborted[t->naborted++] = (rn_aborted_txn_t){h->producer_id, first, h->base_offset};
    return true;
}

void rn__txns_remove_below(rn__txns_t *t, int64_t offset) {
    int32_t k = 0;
    while (k < t->naborted && t->aborted[k].last_offset < offset) k++;
    if (k == 0) return;
    memmove(t->aborted, t->aborted + k, (size_t)(t->naborted - k) * sizeof(*t->aborted));
    t->naborted -= k;
}

int64_t rn_log_last_stable_offset(const rn_log_t *log) {
    int64_t hw = atomic_load(&log->high_watermark);
    int64_t first = atomic_load(&log->txns.first_unstable);
    return first < hw ? first : hw;
}

int32_t rn_log_aborted_txns(rn_log_t *log, int64_t from, int64_t upper, rn_aborted_txn_t *out, int32_t max) {
    int32_t n = 0;
    pthread_rwlock_rdlock(&log->lock);
    const rn__txns_t *t = &log->txns;
    /* Sorted by last offset: skip those that ended before `from`. */
    int32_t lo = 0, hi = t->naborted;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (t->aborted[mid].last_offset < from) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (int32_t i = lo; i < t->naborted && n < max; i++)
        if (t->aborted[i].first_offset < upper) out[n++] = t->aborted[i];
    pthread_rwlock_unlock(&log->lock);
    return n;
}

/* ---- .txnindex ----------------------------------------------------------- */

void rn__txnindex_encode(uint8_t out[RN__TXNINDEX_ENTRY], const rn_aborted_txn_t *a, int64_t lso) {
    rn_store_be16(out, 0);
    rn_store_be64(out + 2, (uint64_t)a->producer_id);
    rn_store_be64(out + 10, (uint64_t)a->first_offset);
    rn_store_be64(out + 18, (uint64_t)a->last_offset);
    rn_store_be64(out + 26, (uint64_t)lso);
}

bool rn__txnindex_decode(const uint8_t in[RN__TXNINDEX_ENTRY], rn_aborted_txn_t *a, int64_t *lso) {
    a->producer_id = (int64_t)rn_load_be64(in + 2);
    a->first_offset = (int64_t)rn_load_be64(in + 10);
    a->last_offset = (int64_t)rn_load_be64(in + 18);
    *lso = (int64_t)rn_load_be64(in + 26);
    return rn_load_be16(in) == 0 && a->producer_id >= 0 && a->first_offset >= 0 && a->first_offset <= a->last_offset;
}

/* Appends one entry to the .txnindex of segment `base` (log lock held). */
static void txnindex_append(rn_log_t *log, int64_t base, const rn_aborted_txn_t *a, int64_t lso) {
    char path[4096];
    rn__segment_path(log, base, TXNINDEX_EXT, path, sizeof(path));
    uint8_t e[TXNINDEX_ENTRY];
    rn__txnindex_encode(e, a, lso);
    bool sync = rn__log_durable(&log->cfg);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;
    bool ok = fd >= 0 && write(fd, e, sizeof(e)) == (ssize_t)sizeof(e) && (!sync || rn__fdatasync(fd) == 0) &&
              fstat(fd, &st) == 0;
    int saved = errno;
    if (fd >= 0) close(fd);
    if (ok && sync && st.st_size == TXNINDEX_ENTRY && rn__fsync_dir(log->path) < 0) ok = false; /* a new file */
    /* A lost entry would show aborted data after a restart: the dir goes offline instead. */
    if (!ok) rn__logdir_fail(log->dir, "write", path, saved ? saved : EIO);
}

void rn__txnindex_cut(rn_log_t *log, int64_t from) {
    for (int32_t i = 0; i < log->nsegs; i++) {
        rn__segment_t *seg = log->segs[i];
        if (i + 1 < log->nsegs && log->segs[i + 1]->base_offset <= from) continue; /* all below `from` */
        char path[4096];
        rn__segment_path(log, seg->base_offset, TXNINDEX_EXT, path, sizeof(path));
        char *data;
        size_t len;
        if (rn__read_file(path, (size_t)TXN_ABORTED_MAX * TXNINDEX_ENTRY, &data, &len) != RN_OK) continue;
        size_t keep = 0;
        while (keep + TXNINDEX_ENTRY <= len) {
            rn_aborted_txn_t a;
            int64_t lso;
            if (!rn__txnindex_decode((const uint8_t *)data + keep, &a, &lso) || a.last_offset >= from) break;
            keep += TXNINDEX_ENTRY;
        }
        free(data);
        if (keep < len && truncate(path, (off_t)keep) < 0)
            RN_WARN("log", "truncate(%s) failed: %s", path, strerror(errno));
    }
}

/* Applies a batch to the transaction state and records a new ABORT in the
 * .txnindex of segment `base`. */
static bool apply_and_index(rn_log_t *log, int64_t base, const rn_batch_header_t *h, int control_type) {
    rn__txns_t *t = &log->txns;
    int32_t before = t->naborted;
    if (!rn__txns_apply(t, h, control_type)) return false;
    if (t->naborted > before) {
        int64_t first = atomic_load(&t->first_unstable);
        int64_t lso = first < h->base_offset + 1 ? first : h->base_offset + 1;
        txnindex_append(log, base, &t->aborted[t->naborted - 1], lso);
    }
    return true;
}

void rn__log_txns_append(rn_log_t *log, const uint8_t *batch, const rn_batch_header_t *h) {
    if (!rn_batch_is_transactional(h) || h->producer_id < 0) return;
    int type = rn_batch_is_control(h) ? rn__control_type(batch, rn_batch_total_size(h)) : -1;
    if (!apply_and_index(log, rn__log_active(log)->base_offset, h, type))
        RN_ERROR("log", "%s: out of memory tracking transactions", log->path);
}

/* Every .txnindex entry of the log below `below`, in order. */
static rn_err_t load_aborted(rn_log_t *log, int64_t below) {
    rn__txns_t *t = &log->txns;
    for (int32_t i = 0; i < log->nsegs; i++) {
        char path[4096];
        rn__segment_path(log, log->segs[i]->base_offset, TXNINDEX_EXT, path, sizeof(path));
        char *data;
        size_t len;
        rn_err_t err = rn__read_file(path, (size_t)TXN_ABORTED_MAX * TXNINDEX_ENTRY, &data, &len);
        if (err == RN_ERR_NOT_FOUND) continue;
        if (err) return err;
        for (size_t pos = 0; pos + TXNINDEX_ENTRY <= len; pos += TXNINDEX_ENTRY) {
            rn_aborted_txn_t a;
            int64_t lso;
            if (!rn__txnindex_decode((const uint8_t *)data + pos, &a, &lso) || a.last_offset >= below) break;
            if (t->naborted > 0 && t->aborted[t->naborted - 1].last_offset >= a.last_offset) break; /* out of order */
            if (t->naborted == t->aborted_cap) {
                int32_t cap = t->aborted_cap ? t->aborted_cap * 2 : 8;
                rn_aborted_txn_t *n = t->aborted_cap >= TXN_ABORTED_MAX ? NULL : realloc(t->aborted, (size_t)cap * sizeof(*n));
                if (!n) {
                    free(data);
                    return RN_ERR_NOMEM;
                }
                t->aborted = n;
                t->aborted_cap = cap;
            }
            t->aborted[t->naborted++] = a;
        }
        free(data);
    }
    return RN_OK;
}

/* rn__log_scan_from: one batch at or after the scan's start (after a crash). */
static rn_err_t scan_txn(void *ctx, rn_log_t *log, rn__segment_t *seg, rn__scan_t *s) {
    (void)ctx;
    if (!rn_batch_is_transactional(&s->h) || s->h.producer_id < 0) return RN_OK;
    int type = -1;
    if (rn_batch_is_control(&s->h)) {
        rn_err_t err = rn__scan_body(s);
        if (err) return err;
        type = rn__control_type(s->batch, s->size);
    }
    return apply_and_index(log, seg->base_offset, &s->h, type) ? RN_OK : RN_ERR_NOMEM;
}

rn_err_t rn__log_load_txns(rn_log_t *log, bool clean) {
    int64_t end = atomic_load(&log->log_end_offset), snap = log->snapshot_offset;
    rn__txns_t *t = &log->txns;
    t->nongoing = t->naborted = 0;
    if (snap >= 0) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%020lld.snapshot", log->path, (long long)snap);
        rn__pstate_t tmp;
        rn__pstate_init(&tmp);
        rn_err_t err = rn__pstate_read_snapshot(&tmp, path, t);
        rn__pstate_free(&tmp);
        if (err) { /* unreadable: rebuild from the log */
            t->nongoing = 0;
            snap = -1;
            clean = false;
        }
    }
    /* Clean: the snapshot and the files are the state. After a crash: scan from the snapshot. */
    int64_t from = clean ? end : (snap >= 0 ? snap : (log->nsegs ? log->segs[0]->base_offset : 0));
    if (!clean) rn__txnindex_cut(log, from);
    rn_err_t err = load_aborted(log, from);
    if (!err && from < end) {
        err = rn__log_scan_from(log, from, scan_txn, NULL);
        log->txns_rebuilt = true; /* the next clean close writes a snapshot with them */
    }
    int64_t first = INT64_MAX;
    for (int32_t i = 0; i < t->nongoing; i++)
        if (t->ongoing[i].first_offset < first) first = t->ongoing[i].first_offset;
    atomic_store(&t->first_unstable, first);
    rn__txns_remove_below(t, atomic_load(&log->log_start_offset));
    if (err) RN_ERROR("log", "%s: rebuilding transaction state failed: %s", log->path, rn_err_name(err));
    else if (t->nongoing || t->naborted)
        RN_INFO("log", "%s: %d open and %d aborted transaction(s)", log->path, t->nongoing, t->naborted);
    return err;
}
