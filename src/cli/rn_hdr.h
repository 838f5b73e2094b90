/*
 * rn_hdr.h — a fixed-size, HDR-style latency histogram for the benchmark tools.
 *
 * Values are non-negative 64-bit integers (the bench tools record nanoseconds).
 * Buckets are log-linear, as in HdrHistogram: values below 2^RN_HDR_SUB_BITS
 * are counted exactly; above that, every power-of-two range is split into
 * 2^(RN_HDR_SUB_BITS-1) equal sub-buckets, so a reported percentile is at most
 * 1/128 (0.8 %) above the true value. The whole histogram is one flat array
 * (about 58 KB): recording is a shift, a count-leading-zeros and an increment,
 * with no allocation, so it can sit in a delivery callback.
 *
 * Not thread-safe: each thread records into its own histogram and they are
 * merged with rn_hdr_add().
 */
#ifndef RN_HDR_H
#define RN_HDR_H

#include <stdint.h>

#define RN_HDR_SUB_BITS 8
#define RN_HDR_BUCKETS (((64 - RN_HDR_SUB_BITS) << (RN_HDR_SUB_BITS - 1)) + (1 << RN_HDR_SUB_BITS))

typedef struct {
    uint64_t count;
    uint64_t sum; /* for the mean; wraps only after ~584 years of nanoseconds */
    uint64_t min;
    uint64_t max;
    uint64_t buckets[RN_HDR_BUCKETS];
} rn_hdr_t;

void rn_hdr_init(rn_hdr_t *h);
void rn_hdr_record(rn_hdr_t *h, uint64_t value);
/* Record `n` samples of the same value (a window of messages acknowledged together). */
void rn_hdr_record_n(rn_hdr_t *h, uint64_t value, uint64_t n);
void rn_hdr_add(rn_hdr_t *into, const rn_hdr_t *from);
/* The value at quantile q in [0, 1] (the highest value equivalent to the
 * bucket holding it, capped at the exact max); 0 for an empty histogram. */
uint64_t rn_hdr_quantile(const rn_hdr_t *h, double q);
double rn_hdr_mean(const rn_hdr_t *h);

#endif
