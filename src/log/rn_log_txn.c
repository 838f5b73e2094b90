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
 * Not yet persistent: the state lives in memory only (Kafka keeps the aborted
 * list in a .txnindex per segment and the ongoing ones in producer snapshots).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_bytes.h"
#include "rn_log_internal.h"

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
