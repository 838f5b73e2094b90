/*
 * rn_index.c — lookups in a segment's .index and .timeindex files.
 *
 * Nothing is held in memory: with 100,000 partitions a resident index per
 * segment would cost more than the data it speeds up. A lookup binary-searches
 * with 8- or 12-byte preads (served from the page cache) until the remaining
 * range fits in one 4 KiB read, then finishes in memory. Entries are sorted
 * (both offsets and timestamps only grow); a corrupt file can break that, so
 * callers verify the entry they land on against the log (rn_segment.c).
 *
 * Formats (big-endian, as Kafka writes them): see rn_segment.c.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "rn_log_internal.h"
#include "rn_logging.h"

#define WINDOW_ENTRIES 340 /* 340 * 12 ≈ 4 KiB */

static rn_err_t pread_full(int fd, void *p, size_t n, int64_t pos) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)p + got, n - got, (off_t)(pos + (int64_t)got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            RN_ERROR("log", "pread(index) failed: %s", strerror(errno));
            return RN_ERR_IO;
        }
        if (r == 0) return RN_ERR_CORRUPT; /* shorter than its entry count said */
        got += (size_t)r;
    }
    return RN_OK;
}

rn_err_t rn__index_read(int fd, size_t entry_size, int32_t i, uint8_t *out) {
    return pread_full(fd, out, entry_size, (int64_t)i * (int64_t)entry_size);
}

/* Key of entry i in a buffer: relative offset (index) or timestamp (time index). */
static int64_t key_of(const uint8_t *e, size_t entry_size) {
    return entry_size == RN__INDEX_ENTRY ? (int64_t)rn_load_be32(e) : (int64_t)rn_load_be64(e);
}

/* Index of the largest entry with key <= target, or -1. */
static rn_err_t search(int fd, size_t entry_size, int32_t entries, int64_t target, int32_t *found_i, uint8_t *entry) {
    int32_t lo = 0, hi = entries - 1, best = -1;
    uint8_t e[RN__TIMEINDEX_ENTRY];
    while (hi - lo + 1 > WINDOW_ENTRIES) {
        int32_t mid = lo + (hi - lo) / 2;
        rn_err_t err = rn__index_read(fd, entry_size, mid, e);
        if (err) return err;
        if (key_of(e, entry_size) <= target) {
            best = mid;
            memcpy(entry, e, entry_size);
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (hi >= lo) {
        uint8_t win[WINDOW_ENTRIES * RN__TIMEINDEX_ENTRY];
        size_t n = (size_t)(hi - lo + 1);
        rn_err_t err = pread_full(fd, win, n * entry_size, (int64_t)lo * (int64_t)entry_size);
        if (err) return err;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *w = win + i * entry_size;
            if (key_of(w, entry_size) > target) break;
            best = lo + (int32_t)i;
            memcpy(entry, w, entry_size);
        }
    }
    *found_i = best;
    return RN_OK;
}

rn_err_t rn__index_lookup(int fd, int32_t entries, uint32_t rel, bool *found, uint32_t *entry_rel,
                          uint32_t *entry_pos) {
    uint8_t e[RN__INDEX_ENTRY];
    int32_t i = -1;
    *found = false;
    if (entries <= 0) return RN_OK;
    rn_err_t err = search(fd, RN__INDEX_ENTRY, entries, rel, &i, e);
    if (err || i < 0) return err;
    *found = true;
    *entry_rel = rn_load_be32(e);
    *entry_pos = rn_load_be32(e + 4);
    return RN_OK;
}

rn_err_t rn__timeindex_lookup(int fd, int32_t entries, int64_t ts, bool *found, int64_t *entry_ts,
                              uint32_t *entry_rel) {
    uint8_t e[RN__TIMEINDEX_ENTRY];
    int32_t i = -1;
    *found = false;
    if (entries <= 0) return RN_OK;
    rn_err_t err = search(fd, RN__TIMEINDEX_ENTRY, entries, ts, &i, e);
    if (err || i < 0) return err;
    *found = true;
    *entry_ts = (int64_t)rn_load_be64(e);
    *entry_rel = rn_load_be32(e + 8);
    return RN_OK;
}
