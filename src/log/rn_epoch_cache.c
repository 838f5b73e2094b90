/*
 * rn_epoch_cache.c — leader epoch → start offset, and the leader-epoch-checkpoint file.
 *
 * An entry (epoch, start) is added on the first append stamped with a newer
 * leader epoch. OffsetForLeaderEpoch answers with the start offset of the next
 * higher epoch (or the log end for the latest), as Kafka's LeaderEpochFileCache.
 *
 * FILE <partition dir>/leader-epoch-checkpoint (Kafka's text format):
 *   0\n                      version
 *   <count>\n
 *   <epoch> <startOffset>\n  count lines, ascending
 * Written atomically (tmp, fsync, rename) whenever the cache changes; rare.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_log_internal.h"
#include "rn_logging.h"

void rn__epochs_free(rn__epochs_t *e) {
    free(e->v);
    memset(e, 0, sizeof(*e));
}

static bool push(rn__epochs_t *e, int32_t epoch, int64_t start) {
    if (e->n == e->cap) {
        int32_t cap = e->cap ? e->cap * 2 : 2;
        rn__epoch_entry_t *nv = realloc(e->v, (size_t)cap * sizeof(*nv));
        if (!nv) return false;
        e->v = nv;
        e->cap = cap;
    }
    e->v[e->n++] = (rn__epoch_entry_t){epoch, start};
    return true;
}

bool rn__epochs_assign(rn__epochs_t *e, int32_t epoch, int64_t offset) {
    if (epoch < 0) return false;
    if (e->n > 0 && epoch <= e->v[e->n - 1].epoch) return false;
    /* A newer epoch cannot start before an older one: drop conflicting entries. */
    while (e->n > 0 && e->v[e->n - 1].start_offset > offset) e->n--;
    return push(e, epoch, offset);
}

bool rn__epochs_truncate_end(rn__epochs_t *e, int64_t end_offset) {
    int32_t n = e->n;
    while (e->n > 0 && e->v[e->n - 1].start_offset >= end_offset) e->n--;
    return n != e->n;
}

bool rn__epochs_truncate_start(rn__epochs_t *e, int64_t start_offset) {
    int32_t keep_from = 0;
    for (int32_t i = 0; i < e->n; i++)
        if (e->v[i].start_offset <= start_offset) keep_from = i;
    if (e->n == 0 || (keep_from == 0 && e->v[0].start_offset >= start_offset)) return false;
    memmove(e->v, e->v + keep_from, (size_t)(e->n - keep_from) * sizeof(e->v[0]));
    e->n -= keep_from;
    if (e->v[0].start_offset < start_offset) e->v[0].start_offset = start_offset;
    return true;
}

void rn__epochs_end_offset(const rn__epochs_t *e, int32_t epoch, int64_t log_end, int32_t *out_epoch,
                           int64_t *out_end) {
    *out_epoch = -1;
    *out_end = -1;
    if (epoch < 0 || e->n == 0) return;
    if (epoch == e->v[e->n - 1].epoch) {
        *out_epoch = epoch;
        *out_end = log_end;
        return;
    }
    int32_t hi = -1;
    for (int32_t i = 0; i < e->n; i++)
        if (e->v[i].epoch > epoch) {
            hi = i;
            break;
        }
    if (hi < 0) return; /* newer than anything we know */
    *out_end = e->v[hi].start_offset;
    *out_epoch = hi == 0 ? epoch : e->v[hi - 1].epoch;
}

rn_err_t rn__epochs_write(const rn__epochs_t *e, const char *path) {
    size_t cap = 32 + (size_t)e->n * 48;
    char *b = malloc(cap);
    if (!b) return RN_ERR_NOMEM;
    size_t len = (size_t)snprintf(b, cap, "0\n%d\n", e->n);
    for (int32_t i = 0; i < e->n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%d %" PRId64 "\n", e->v[i].epoch, e->v[i].start_offset);
    rn_err_t err = rn__write_file_atomic(path, b, len, true);
    free(b);
    return err;
}

rn_err_t rn__epochs_read(rn__epochs_t *e, const char *path) {
    char *data;
    size_t len;
    rn_err_t err = rn__read_file(path, 16u << 20, &data, &len);
    if (err) return err;
    e->n = 0;
    char *p = data, *end;
    long version = strtol(p, &end, 10);
    long count = end != p ? strtol(end, &p, 10) : -1;
    err = RN_OK;
    if (version != 0 || count < 0) err = RN_ERR_CORRUPT;
    for (long i = 0; !err && i < count; i++) {
        long long epoch = strtoll(p, &end, 10);
        if (end == p) err = RN_ERR_CORRUPT;
        p = end;
        long long start = strtoll(p, &end, 10);
        if (end == p || epoch < 0 || epoch > INT32_MAX || start < 0) err = RN_ERR_CORRUPT;
        p = end;
        if (!err && !rn__epochs_assign(e, (int32_t)epoch, start)) err = RN_ERR_CORRUPT;
    }
    if (err) {
        RN_WARN("log", "%s is corrupt; ignoring it", path);
        e->n = 0;
    }
    free(data);
    return err;
}
