/* rn_cond.h — condition variables on the monotonic clock, with waits to a deadline in ms. */
#ifndef RN_COND_H
#define RN_COND_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline void rn_cond_init_mono(pthread_cond_t *c) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

/* Waits (mutex held) until signalled or the monotonic clock reaches deadline_ms. */
static inline void rn_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ms) {
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(c, m, &ts);
}

#endif
