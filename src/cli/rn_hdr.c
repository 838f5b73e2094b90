/*
 * rn_hdr.c — log-linear latency histogram (see rn_hdr.h).
 *
 * Index layout, with S = RN_HDR_SUB_BITS and H = 2^(S-1):
 *
 *   v < 2^S                 index v                          (exact)
 *   v >= 2^S, msb(v) = m    shift = m - S + 1
 *                           index = shift * H + (v >> shift)  (v >> shift is in [H, 2H))
 *
 * so consecutive power-of-two ranges map to consecutive runs of H indexes and
 * the layout has no holes. The inverse of an index is the range
 * [(i - shift*H) << shift, ((i - shift*H + 1) << shift) - 1].
 */
#include "rn_hdr.h"

#include <string.h>

#include "rn_assert.h"

#define SUB (1u << RN_HDR_SUB_BITS)
#define HALF (1u << (RN_HDR_SUB_BITS - 1))

static unsigned index_of(uint64_t v) {
    if (v < SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - RN_HDR_SUB_BITS + 1;
    unsigned i = shift * HALF + (unsigned)(v >> shift);
    RN_ASSERT(i < RN_HDR_BUCKETS);
    return i;
}

/* The highest value that lands in bucket i. */
static uint64_t highest_of(unsigned i) {
    if (i < SUB) return i;
    unsigned shift = i / HALF - 1;
    uint64_t m = i - shift * HALF;
    return ((m + 1) << shift) - 1;
}

void rn_hdr_init(rn_hdr_t *h) {
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void rn_hdr_record_n(rn_hdr_t *h, uint64_t value, uint64_t n) {
    if (n == 0) return;
    h->buckets[index_of(value)] += n;
    h->count += n;
    h->sum += value * n;
    if (value < h->min) h->min = value;
    if (value > h->max) h->max = value;
}

void rn_hdr_record(rn_hdr_t *h, uint64_t value) { rn_hdr_record_n(h, value, 1); }

void rn_hdr_add(rn_hdr_t *into, const rn_hdr_t *from) {
    if (from->count == 0) return;
    for (unsigned i = 0; i < RN_HDR_BUCKETS; i++) into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min) into->min = from->min;
    if (from->max > into->max) into->max = from->max;
}

uint64_t rn_hdr_quantile(const rn_hdr_t *h, double q) {
    if (h->count == 0) return 0;
    if (q <= 0) return h->min;
    if (q >= 1) return h->max;
    /* The rank of the sample at q, 1-based and rounded up, as HdrHistogram does. */
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count) rank++;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < RN_HDR_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = highest_of(i);
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

double rn_hdr_mean(const rn_hdr_t *h) { return h->count ? (double)h->sum / (double)h->count : 0; }
