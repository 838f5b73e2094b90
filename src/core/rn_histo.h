/*
 * rn_histo.h — a fixed-bucket latency histogram with atomic counters, cheap
 * enough for hot paths (one relaxed increment per observation, plus the sum),
 * rendered as a Prometheus histogram.
 */
#ifndef RN_HISTO_H
#define RN_HISTO_H

#include <stdatomic.h>
#include <stdint.h>

/* Upper bounds in microseconds; the last bucket is +Inf. */
#define RN_HISTO_BOUNDS_US                                                                                          \
    {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, \
     10000000}
#define RN_HISTO_NBOUNDS 17

typedef struct {
    atomic_uint_fast64_t buckets[RN_HISTO_NBOUNDS + 1]; /* non-cumulative; last = +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
} rn_histo_t;

extern const int64_t rn_histo_bounds_us[RN_HISTO_NBOUNDS];

static inline void rn_histo_observe_ns(rn_histo_t *h, int64_t ns) {
    if (ns < 0) ns = 0;
    int64_t us = ns / 1000;
    int i = 0;
    while (i < RN_HISTO_NBOUNDS && us > rn_histo_bounds_us[i]) i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)ns, memory_order_relaxed);
}

#endif
