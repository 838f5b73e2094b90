/*
 * rn_loop.h — one event loop per network thread (epoll), with timers and a
 * thread-safe mailbox.
 *
 * Everything that touches a connection runs on the loop that owns it. Other
 * threads (the log flusher, another loop) hand work over with rn_loop_post(),
 * which queues a callback and wakes the loop through an eventfd. Timers are a
 * min-heap of monotonic deadlines; a cancelled timer is never called.
 */
#ifndef RN_LOOP_H
#define RN_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_err.h"

typedef struct rn_loop rn_loop_t;
typedef struct rn_timer rn_timer_t;

/* Events for rn_loop_watch: bitmask. */
enum { RN_LOOP_READ = 1, RN_LOOP_WRITE = 2 };

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

#endif
