/*
 * rn_producer_state.c — idempotent producers: epoch and the last 5 batches per
 * producer id, the duplicate/sequence checks, and the snapshot file.
 *
 * Rules for a batch with producerId >= 0 (checked before anything is written):
 *
 *   producer          batch epoch      batch sequences              result
 *   ---------------   --------------   --------------------------   -----------------------------
 *   unknown           any              any                          append (newer Kafka accepts it)
 *   known, epoch E    < E              any                          INVALID_PRODUCER_EPOCH
 *   known, epoch E    > E              baseSequence == 0            append, forget E's batches
 *   known, epoch E    > E              baseSequence != 0            OUT_OF_ORDER_SEQUENCE_NUMBER
 *   known, epoch E    == E             [first,last] of a retained   duplicate: original offsets,
 *                                      batch                        nothing written
 *   known, epoch E    == E             first == lastSeq + 1 (wraps  append
 *                                      INT32_MAX → 0)
 *   known, epoch E    == E             otherwise                    OUT_OF_ORDER_SEQUENCE_NUMBER
 *   control batch     >= E             (no sequence)                append, epoch bumped
 *
 * The table is open addressing on the producer id; a partition without
 * idempotent producers holds no memory for it.
 *
 * SNAPSHOT FILE <offset:20 digits>.snapshot — the state after every batch
 * below <offset>; written at segment roll and clean shutdown:
 *   0   magic         4 bytes "RNPS"
 *   4   version       int16   2 (1 is read too: no transactions part)
 *   6   crc           uint32  CRC-32C of bytes [10, end)
 *   10  count         int32   producers
 *   14  count × producer:
 *         producerId int64, producerEpoch int16, batchCount int8 (<= 5, oldest first),
 *         batchCount × { firstSeq int32, lastSeq int32, firstOffset int64,
 *                        lastOffsetDelta int32, maxTimestamp int64 }   (28 bytes)
 *       v2: ongoing transactions (rn_log_txn.c):
 *         txnCount int32, txnCount × { producerId int64, firstOffset int64 }
 * A file with a bad magic, version, CRC or length is ignored (and the state
 * is rebuilt from an older snapshot or the log).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_crc32c.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

#define SNAP_HEADER 14
#define SNAP_PRODUCER 11
#define SNAP_BATCH 28
#define SNAP_TXN 16

void rn__pstate_init(rn__pstate_t *ps) { memset(ps, 0, sizeof(*ps)); }

void rn__pstate_free(rn__pstate_t *ps) {
    free(ps->slots);
    memset(ps, 0, sizeof(*ps));
}

static size_t slot_of(const rn__pstate_t *ps, int64_t pid) {
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (ps->cap - 1);
}

const rn__producer_t *rn__pstate_get(const rn__pstate_t *ps, int64_t producer_id) {
    if (ps->cap == 0) return NULL;
    for (size_t i = slot_of(ps, producer_id);; i = (i + 1) & (ps->cap - 1)) {
        if (ps->slots[i].producer_id == producer_id) return &ps->slots[i];
        if (ps->slots[i].producer_id == -1) return NULL;
    }
}

static bool grow(rn__pstate_t *ps, size_t cap) {
    rn__producer_t *ns = malloc(cap * sizeof(*ns));
    if (!ns) return false;
    for (size_t i = 0; i < cap; i++) ns[i].producer_id = -1;
    rn__pstate_t n = {ns, cap, 0};
    for (size_t i = 0; i < ps->cap; i++) {
        if (ps->slots[i].producer_id < 0) continue;
        size_t j = slot_of(&n, ps->slots[i].producer_id);
        while (ns[j].producer_id != -1) j = (j + 1) & (cap - 1);
        ns[j] = ps->slots[i];
        n.count++;
    }
    free(ps->slots);
    *ps = n;
    return true;
}

bool rn__pstate_put(rn__pstate_t *ps, const rn__producer_t *p) {
    RN_ASSERT(p->producer_id >= 0);
    if ((ps->count + 1) * 2 > ps->cap && !grow(ps, ps->cap ? ps->cap * 2 : 8)) return false;
    size_t i = slot_of(ps, p->producer_id);
    while (ps->slots[i].producer_id != -1 && ps->slots[i].producer_id != p->producer_id) i = (i + 1) & (ps->cap - 1);
    if (ps->slots[i].producer_id == -1) ps->count++;
    ps->slots[i] = *p;
    return true;
}

static int32_t seq_add(int32_t seq, int32_t n) {
    if (seq > INT32_MAX - n) return n - (INT32_MAX - seq) - 1;
    return seq + n;
}

rn_err_t rn__pstate_check(const rn__producer_t *known, const rn_batch_header_t *h, bool *dup, int64_t *dup_first,
                          int64_t *dup_last) {
    *dup = false;
    /* Markers, and coordinator-written batches without sequences (transactional
     * offset commits), are checked for their epoch only. */
    if (!known || rn_batch_is_control(h) || h->base_sequence < 0) return known && h->producer_epoch < known->epoch
                                                      ? RN_ERR_INVALID_PRODUCER_EPOCH
                                                      : RN_OK;
    if (h->producer_epoch < known->epoch) return RN_ERR_INVALID_PRODUCER_EPOCH;
    if (h->producer_epoch > known->epoch)
        return h->base_sequence == 0 ? RN_OK : RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    int32_t last_seq = seq_add(h->base_sequence, h->last_offset_delta);
    for (int i = 0; i < known->nbatches; i++) {
        const rn__pbatch_t *b = &known->batches[i];
        if (b->first_seq == h->base_sequence && b->last_seq == last_seq) {
            *dup = true;
            *dup_first = b->first_offset;
            *dup_last = b->first_offset + b->offset_delta;
            return RN_OK;
        }
    }
    if (known->nbatches == 0) return RN_OK;
    int32_t prev = known->batches[known->nbatches - 1].last_seq;
    return h->base_sequence == seq_add(prev, 1) ? RN_OK : RN_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

void rn__producer_apply(rn__producer_t *p, const rn_batch_header_t *h) {
    if (p->producer_id < 0) {
        memset(p, 0, sizeof(*p));
        p->producer_id = h->producer_id;
        p->epoch = h->producer_epoch;
    }
    if (h->producer_epoch != p->epoch) {
        p->epoch = h->producer_epoch;
        p->nbatches = 0;
    }
    if (rn_batch_is_control(h) || h->base_sequence < 0) return;
    if (p->nbatches == RN__PRODUCER_BATCHES) {
        memmove(&p->batches[0], &p->batches[1], (RN__PRODUCER_BATCHES - 1) * sizeof(p->batches[0]));
        p->nbatches--;
    }
    p->batches[p->nbatches++] = (rn__pbatch_t){
        .first_seq = h->base_sequence,
        .last_seq = seq_add(h->base_sequence, h->last_offset_delta),
        .first_offset = h->base_offset,
        .offset_delta = h->last_offset_delta,
        .timestamp = h->max_timestamp,
    };
}

bool rn__pstate_update(rn__pstate_t *ps, const rn_batch_header_t *h) {
    if (h->producer_id < 0) return true;
    const rn__producer_t *cur = rn__pstate_get(ps, h->producer_id);
    rn__producer_t p;
    if (cur) {
        p = *cur;
    } else {
        p.producer_id = -1;
    }
    rn__producer_apply(&p, h);
    return rn__pstate_put(ps, &p);
}

void rn__pstate_remove_below(rn__pstate_t *ps, int64_t offset) {
    bool any = false;
    for (size_t i = 0; i < ps->cap && !any; i++) {
        const rn__producer_t *p = &ps->slots[i];
        if (p->producer_id >= 0 && p->nbatches > 0 &&
            p->batches[p->nbatches - 1].first_offset + p->batches[p->nbatches - 1].offset_delta < offset)
            any = true;
    }
    if (!any) return;
    rn__pstate_t n;
    rn__pstate_init(&n);
    for (size_t i = 0; i < ps->cap; i++) {
        const rn__producer_t *p = &ps->slots[i];
        if (p->producer_id < 0) continue;
        if (p->nbatches > 0 && p->batches[p->nbatches - 1].first_offset + p->batches[p->nbatches - 1].offset_delta <
                                   offset)
            continue;
        if (!rn__pstate_put(&n, p)) { /* out of memory: keep the old table */
            rn__pstate_free(&n);
            return;
        }
    }
    rn__pstate_free(ps);
    *ps = n;
}

rn_err_t rn__pstate_write_snapshot(const rn__pstate_t *ps, const rn__txns_t *txns, const char *path, bool sync) {
    size_t size = SNAP_HEADER;
    for (size_t i = 0; i < ps->cap; i++)
        if (ps->slots[i].producer_id >= 0) size += SNAP_PRODUCER + ps->slots[i].nbatches * SNAP_BATCH;
    int32_t ntxns = txns ? txns->nongoing : 0;
    size += 4 + (size_t)ntxns * SNAP_TXN;
    uint8_t *b = malloc(size);
    if (!b) return RN_ERR_NOMEM;
    memcpy(b, "RNPS", 4);
    rn_store_be16(b + 4, 2);
    rn_store_be32(b + 10, (uint32_t)ps->count);
    uint8_t *p = b + SNAP_HEADER;
    for (size_t i = 0; i < ps->cap; i++) {
        const rn__producer_t *e = &ps->slots[i];
        if (e->producer_id < 0) continue;
        rn_store_be64(p, (uint64_t)e->producer_id);
        rn_store_be16(p + 8, (uint16_t)e->epoch);
        p[10] = e->nbatches;
        p += SNAP_PRODUCER;
        for (int j = 0; j < e->nbatches; j++) {
            const rn__pbatch_t *x = &e->batches[j];
            rn_store_be32(p, (uint32_t)x->first_seq);
            rn_store_be32(p + 4, (uint32_t)x->last_seq);
            rn_store_be64(p + 8, (uint64_t)x->first_offset);
            rn_store_be32(p + 16, (uint32_t)x->offset_delta);
            rn_store_be64(p + 20, (uint64_t)x->timestamp);
            p += SNAP_BATCH;
        }
    }
    rn_store_be32(p, (uint32_t)ntxns);
    p += 4;
    for (int32_t i = 0; i < ntxns; i++) {
        rn_store_be64(p, (uint64_t)txns->ongoing[i].producer_id);
        rn_store_be64(p + 8, (uint64_t)txns->ongoing[i].first_offset);
        p += SNAP_TXN;
    }
    RN_ASSERT((size_t)(p - b) == size);
    rn_store_be32(b + 6, rn_crc32c(0, b + 10, size - 10));
    rn_err_t err = rn__write_file_atomic(path, b, size, sync);
    free(b);
    return err;
}

rn_err_t rn__pstate_read_snapshot(rn__pstate_t *ps, const char *path, rn__txns_t *txns) {
    char *data;
    size_t len;
    rn_err_t err = rn__read_file(path, 256u << 20, &data, &len);
    if (err) return err;
    const uint8_t *b = (const uint8_t *)data;
    err = RN_ERR_CORRUPT;
    uint16_t version = len >= SNAP_HEADER ? rn_load_be16(b + 4) : 0;
    if (len < SNAP_HEADER || memcmp(b, "RNPS", 4) || version < 1 || version > 2 ||
        rn_load_be32(b + 6) != rn_crc32c(0, b + 10, len - 10))
        goto out;
    uint32_t count = rn_load_be32(b + 10);
    size_t pos = SNAP_HEADER;
    rn__pstate_t n;
    rn__pstate_init(&n);
    for (uint32_t i = 0; i < count; i++) {
        if (pos + SNAP_PRODUCER > len) goto bad;
        rn__producer_t e;
        memset(&e, 0, sizeof(e));
        e.producer_id = (int64_t)rn_load_be64(b + pos);
        e.epoch = (int16_t)rn_load_be16(b + pos + 8);
        e.nbatches = b[pos + 10];
        pos += SNAP_PRODUCER;
        if (e.producer_id < 0 || e.nbatches > RN__PRODUCER_BATCHES || pos + (size_t)e.nbatches * SNAP_BATCH > len)
            goto bad;
        for (int j = 0; j < e.nbatches; j++) {
            rn__pbatch_t *x = &e.batches[j];
            x->first_seq = (int32_t)rn_load_be32(b + pos);
            x->last_seq = (int32_t)rn_load_be32(b + pos + 4);
            x->first_offset = (int64_t)rn_load_be64(b + pos + 8);
            x->offset_delta = (int32_t)rn_load_be32(b + pos + 16);
            x->timestamp = (int64_t)rn_load_be64(b + pos + 20);
            pos += SNAP_BATCH;
        }
        if (!rn__pstate_put(&n, &e)) {
            rn__pstate_free(&n);
            err = RN_ERR_NOMEM;
            goto out;
        }
    }
    if (version >= 2) {
        if (pos + 4 > len) goto bad;
        uint32_t ntxns = rn_load_be32(b + pos);
        pos += 4;
        if (ntxns > (len - pos) / SNAP_TXN) goto bad;
        for (uint32_t i = 0; txns && i < ntxns; i++) {
            rn_batch_header_t h = {.producer_id = (int64_t)rn_load_be64(b + pos + (size_t)i * SNAP_TXN),
                                   .base_offset = (int64_t)rn_load_be64(b + pos + (size_t)i * SNAP_TXN + 8),
                                   .attributes = RN_BATCH_ATTR_TRANSACTIONAL};
            if (h.producer_id < 0 || h.base_offset < 0) goto bad;
            if (!rn__txns_apply(txns, &h, -1)) {
                rn__pstate_free(&n);
                err = RN_ERR_NOMEM;
                goto out;
            }
        }
        pos += (size_t)ntxns * SNAP_TXN;
    }
    if (pos != len) goto bad;
    rn__pstate_free(ps);
    *ps = n;
    err = RN_OK;
    goto out;
bad:
    rn__pstate_free(&n);
    RN_WARN("log", "producer snapshot %s is corrupt; ignoring it", path);
out:
    free(data);
    return err;
}
