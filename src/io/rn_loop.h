/*
 * rn_loop.h — one event loop per network thread (epoll), with timers and a
 * thread-safe mailbox.
 *
 * Everything that touches a connection runs on the loop that owns it. Other
 * threads (the log flusher, another loop) hand work over with rn_loop_post(),
 * which queues a callback and wakes the loop through an eventfd. Timers are a
 * min-heap of monotonic deadlines; a cancelled timer is never called.
 *
 * Readiness is level-triggered: a callback may stop reading before EAGAIN (to
 * be fair to other connections) and is simply called again next iteration.
 * Each iteration: wait (epoll_wait, bounded by the next timer), cache the
 * clock, run fd callbacks (the mailbox is one of them, via its eventfd), then
 * the timers that were due when the iteration started. A timer added by a
 * callback runs on a later iteration even with delay 0, so a timer re-arming
 * itself cannot starve I/O.
 *
 * Posted callbacks still queued when the loop is freed are dropped without
 * being called; timers still armed are freed without being called.
 */
#ifndef RN_LOOP_H
#define RN_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_err.h"

typedef struct rn_loop rn_loop_t;
typedef struct rn_timer rn_timer_t;

/* Events for rn_loop_watch: bitmask. RN_LOOP_ERROR is only ever reported (the
 * socket has an error or both directions hung up): it arrives whatever interest
 * is set, even 0, and the callback must unwatch or close the fd, otherwise the
 * level-triggered loop reports it again on every iteration. */
enum { RN_LOOP_READ = 1, RN_LOOP_WRITE = 2, RN_LOOP_ERROR = 4 };

typedef void (*rn_loop_io_fn)(void *arg, int fd, int events);
typedef void (*rn_loop_fn)(void *arg);

rn_err_t rn_loop_new(rn_loop_t **out, int id);
void rn_loop_free(rn_loop_t *loop);
int rn_loop_id(const rn_loop_t *loop);

/* Run until rn_loop_stop(); returns after the stop request is seen. */
void rn_loop_run(rn_loop_t *loop);
void rn_loop_stop(rn_loop_t *loop); /* thread-safe */

/* Register/modify/remove interest in fd. `events` 0 keeps fd registered but idle. */
rn_err_t rn_loop_watch(rn_loop_t *loop, int fd, int events, rn_loop_io_fn fn, void *arg);
rn_err_t rn_loop_modify(rn_loop_t *loop, int fd, int events);
void rn_loop_unwatch(rn_loop_t *loop, int fd);

/* Thread-safe: run fn(arg) on the loop's thread soon. */
void rn_loop_post(rn_loop_t *loop, rn_loop_fn fn, void *arg);

/* Timers (loop thread only). Returns NULL on allocation failure. */
rn_timer_t *rn_loop_timer_add(rn_loop_t *loop, int64_t delay_ms, rn_loop_fn fn, void *arg);
void rn_loop_timer_cancel(rn_loop_t *loop, rn_timer_t *t); /* t must not have fired */

/* The loop running on this thread, or NULL. */
rn_loop_t *rn_loop_current(void);
/* Monotonic time of the current loop iteration, in ms (cheap). */
int64_t rn_loop_now_ms(rn_loop_t *loop);
/* The same instant in ns (for latency stamps). */
int64_t rn_loop_now_ns(rn_loop_t *loop);
/* Armed timers (for tests and metrics; loop thread only). */
size_t rn_loop_timer_count(const rn_loop_t *loop);

#endif
