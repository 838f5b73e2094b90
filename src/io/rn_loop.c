/*
 * rn_loop.c — the event loop: fd watchers, a timer heap and a mailbox.
 *
 * Layout:
 *   - a poller backend (rn_loop_backend_t below) is the only code that talks to
 *     the kernel: epoll for readiness, an eventfd for wake-ups, CLOCK_MONOTONIC
 *     for time. A simulated io layer can later provide another backend without
 *     touching the rest of this file.
 *   - watchers live in a table indexed by fd. Each slot has a generation that
 *     is bumped on unwatch, and the epoll token carries (generation << 32 | fd),
 *     so an event already fetched for an fd that a callback closed (and that
 *     accept() may have reused) in the same batch is recognised and dropped.
 *   - timers are a binary min-heap of (deadline_ms, seq); seq breaks ties so
 *     timers with the same deadline fire in the order they were added, and
 *     bounds each iteration to timers that existed when it started. Each timer
 *     knows its heap index, so cancel is O(log n) and frees it at once.
 *   - the mailbox is a mutex-protected FIFO of fixed-size nodes. A poster only
 *     writes the eventfd when the queue goes from empty to non-empty; the loop
 *     clears the eventfd before taking the whole queue, so no wake-up is lost.
 *
 * Threading: everything except rn_loop_post and rn_loop_stop is loop-thread
 * only. rn_loop_current() is a thread-local set for the duration of rn_loop_run.
 */
#include "rn_loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_clock.h"
#include "rn_logging.h"

#define RN_LOOP_EVENTS_BATCH 256

struct rn_timer {
    int64_t deadline_ms;
    uint64_t seq;
    size_t heap_index;
    rn_loop_fn fn;
    void *arg;
};

typedef struct {
    rn_loop_io_fn fn;
    void *arg;
    uint32_t gen;
    int events;
    bool active;
} rn_watch_t;

typedef struct rn_post {
    struct rn_post *next;
    rn_loop_fn fn;
    void *arg;
} rn_post_t;

typedef struct rn_loop_backend {
    rn_err_t (*init)(rn_loop_t *loop);
    void (*fini)(rn_loop_t *loop);
    /* op: EPOLL_CTL_ADD / MOD / DEL; returns 0 or an errno value. */
    int (*ctl)(rn_loop_t *loop, int op, int fd, int events, uint64_t token);
    /* Waits up to timeout_ms (-1: forever) and calls loop_dispatch per event. */
    void (*poll)(rn_loop_t *loop, int timeout_ms);
    void (*wake)(rn_loop_t *loop); /* thread-safe */
    int64_t (*now_ns)(rn_loop_t *loop);
} rn_loop_backend_t;

struct rn_loop {
    int id;
    const rn_loop_backend_t *backend;
    int epfd;
    int wakefd;

    int64_t now_ns;
    int64_t now_ms;
    atomic_bool stop;

    rn_watch_t *watches; /* indexed by fd */
    size_t nwatches;

    rn_timer_t **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    pthread_mutex_t mu; /* guards the mailbox */
    rn_post_t *post_head, *post_tail;
};

static _Thread_local rn_loop_t *rn_loop_tls;

/* ---- dispatch (called by the backend) ---- */

static void loop_dispatch(rn_loop_t *loop, uint64_t token, int events) {
    int fd = (int)(uint32_t)token;
    uint32_t gen = (uint32_t)(token >> 32);
    if (fd < 0 || (size_t)fd >= loop->nwatches) return;
    rn_watch_t *w = &loop->watches[fd];
    if (!w->active || w->gen != gen) return; /* stale: unwatched earlier in this batch */
    if (!(events & RN_LOOP_ERROR)) events &= w->events;
    if (events) w->fn(w->arg, fd, events);
}

static void loop_drain_mailbox(rn_loop_t *loop) {
    pthread_mutex_lock(&loop->mu);
    rn_post_t *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->mu);
    while (p) {
        rn_post_t *next = p->next;
        rn_loop_fn fn = p->fn;
        void *arg = p->arg;
        free(p);
        fn(arg);
        p = next;
    }
}

/* ---- epoll backend ---- */

static rn_err_t epoll_init(rn_loop_t *loop) {
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        RN_ERROR("io", "loop %d: epoll_create1() failed: %s", loop->id, strerror(errno));
        return RN_ERR_IO;
    }
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0) {
        RN_ERROR("io", "loop %d: eventfd() failed: %s", loop->id, strerror(errno));
        close(loop->epfd);
        loop->epfd = -1;
        return RN_ERR_IO;
    }
    /* The wake fd is not in the watch table: its token is all ones. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
        RN_ERROR("io", "loop %d: epoll_ctl(eventfd) failed: %s", loop->id, strerror(errno));
        close(loop->wakefd);
        close(loop->epfd);
        loop->epfd = loop->wakefd = -1;
        return RN_ERR_IO;
    }
    return RN_OK;
}

static void epoll_fini(rn_loop_t *loop) {
    if (loop->wakefd >= 0) close(loop->wakefd);
    if (loop->epfd >= 0) close(loop->epfd);
}

static int epoll_ctl_fd(rn_loop_t *loop, int op, int fd, int events, uint64_t token) {
    struct epoll_event ev = {.events = 0, .data.u64 = token};
    if (events & RN_LOOP_READ) ev.events |= EPOLLIN | EPOLLRDHUP;
    if (events & RN_LOOP_WRITE) ev.events |= EPOLLOUT;
    return epoll_ctl(loop->epfd, op, fd, &ev) < 0 ? errno : 0;
}

static void epoll_poll(rn_loop_t *loop, int timeout_ms) {
    struct epoll_event evs[RN_LOOP_EVENTS_BATCH];
    int n = epoll_wait(loop->epfd, evs, RN_LOOP_EVENTS_BATCH, timeout_ms);
    if (n < 0) {
        if (errno != EINTR) RN_ERROR("io", "loop %d: epoll_wait() failed: %s", loop->id, strerror(errno));
        n = 0;
    }
    loop->now_ns = loop->backend->now_ns(loop);
    loop->now_ms = loop->now_ns / 1000000;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == UINT64_MAX) {
            uint64_t v;
            ssize_t r = read(loop->wakefd, &v, sizeof(v)); /* clear before draining */
            (void)r;
            loop_drain_mailbox(loop);
            continue;
        }
        uint32_t e = evs[i].events;
        int events = 0;
        if (e & (EPOLLIN | EPOLLRDHUP)) events |= RN_LOOP_READ;
        if (e & EPOLLOUT) events |= RN_LOOP_WRITE;
        if (e & (EPOLLERR | EPOLLHUP)) events |= RN_LOOP_ERROR;
        loop_dispatch(loop, evs[i].data.u64, events);
    }
}

static void epoll_wake(rn_loop_t *loop) {
    uint64_t one = 1;
    for (;;) {
        ssize_t r = write(loop->wakefd, &one, sizeof(one));
        /* EAGAIN: the counter is saturated, so the loop is awake anyway. */
        if (r >= 0 || errno != EINTR) return;
    }
}

static int64_t mono_now_ns(rn_loop_t *loop) { return rn_clock_mono_ns(); }

static const rn_loop_backend_t rn_loop_epoll = {
    .init = epoll_init,
    .fini = epoll_fini,
    .ctl = epoll_ctl_fd,
    .poll = epoll_poll,
    .wake = epoll_wake,
    .now_ns = mono_now_ns,
};

/* ---- lifecycle ---- */

rn_err_t rn_loop_new(rn_loop_t **out, int id) {
    *out = NULL;
    rn_loop_t *loop = calloc(1, sizeof(*loop));
    if (!loop) return RN_ERR_NOMEM;
    loop->id = id;
    loop->backend = &rn_loop_epoll;
    loop->epfd = loop->wakefd = -1;
    atomic_init(&loop->stop, false);
    pthread_mutex_init(&loop->mu, NULL);
    rn_err_t err = loop->backend->init(loop);
    if (err) {
        pthread_mutex_destroy(&loop->mu);
        free(loop);
        return err;
    }
    loop->now_ns = loop->backend->now_ns(loop);
    loop->now_ms = loop->now_ns / 1000000;
    *out = loop;
    return RN_OK;
}

void rn_loop_free(rn_loop_t *loop) {
    if (!loop) return;
    RN_ASSERT(rn_loop_tls != loop);
    for (size_t i = 0; i < loop->heap_len; i++) free(loop->heap[i]);
    free(loop->heap);
    rn_post_t *p = loop->post_head;
    while (p) {
        rn_post_t *next = p->next;
        free(p);
        p = next;
    }
    free(loop->watches);
    loop->backend->fini(loop);
    pthread_mutex_destroy(&loop->mu);
    free(loop);
}

int rn_loop_id(const rn_loop_t *loop) { return loop->id; }

rn_loop_t *rn_loop_current(void) { return rn_loop_tls; }

int64_t rn_loop_now_ms(rn_loop_t *loop) { return loop->now_ms; }

int64_t rn_loop_now_ns(rn_loop_t *loop) { return loop->now_ns; }

/* ---- timers ---- */

static bool timer_before(const rn_timer_t *a, const rn_timer_t *b) {
    return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void heap_set(rn_loop_t *loop, size_t i, rn_timer_t *t) {
    loop->heap[i] = t;
    t->heap_index = i;
}

static void heap_up(rn_loop_t *loop, size_t i) {
    rn_timer_t *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent])) break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(rn_loop_t *loop, size_t i) {
    rn_timer_t *t = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const rn_timer_t *best = t;
        if (l < loop->heap_len && timer_before(loop->heap[l], best)) m = l, best = loop->heap[l];
        if (r < loop->heap_len && timer_before(loop->heap[r], best)) m = r;
        if (m == i) break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

static void heap_remove(rn_loop_t *loop, rn_timer_t *t) {
    size_t i = t->heap_index;
    RN_ASSERT(i < loop->heap_len && loop->heap[i] == t);
    rn_timer_t *last = loop->heap[--loop->heap_len];
    if (last != t) {
        heap_set(loop, i, last);
        if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
            heap_up(loop, i);
        else
            heap_down(loop, i);
    }
    t->heap_index = SIZE_MAX;
}

rn_timer_t *rn_loop_timer_add(rn_loop_t *loop, int64_t delay_ms, rn_loop_fn fn, void *arg) {
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        rn_timer_t **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h) return NULL;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    rn_timer_t *t = malloc(sizeof(*t));
    if (!t) return NULL;
    if (delay_ms < 0) delay_ms = 0;
    t->deadline_ms = loop->now_ms + delay_ms;
    t->seq = loop->timer_seq++;
    t->fn = fn;
    t->arg = arg;
    loop->heap[loop->heap_len] = t;
    t->heap_index = loop->heap_len++;
    heap_up(loop, t->heap_index);
    return t;
}

void rn_loop_timer_cancel(rn_loop_t *loop, rn_timer_t *t) {
    if (!t) return;
    heap_remove(loop, t);
    free(t);
}

size_t rn_loop_timer_count(const rn_loop_t *loop) { return loop->heap_len; }

static void loop_run_timers(rn_loop_t *loop) {
    uint64_t seq_limit = loop->timer_seq;
    while (loop->heap_len > 0 && !atomic_load_explicit(&loop->stop, memory_order_relaxed)) {
        rn_timer_t *t = loop->heap[0];
        if (t->deadline_ms > loop->now_ms || t->seq >= seq_limit) break;
        heap_remove(loop, t);
        rn_loop_fn fn = t->fn;
        void *arg = t->arg;
        free(t); /* before the call: a fired timer is gone, and fn may add new ones */
        fn(arg);
    }
}

static int loop_timeout_ms(rn_loop_t *loop) {
    if (loop->heap_len == 0) return -1;
    int64_t d = loop->heap[0]->deadline_ms - loop->now_ms;
    if (d <= 0) return 0;
    return d > 60000 ? 60000 : (int)d;
}

/* ---- run / stop ---- */

void rn_loop_run(rn_loop_t *loop) {
    rn_loop_t *prev = rn_loop_tls;
    rn_loop_tls = loop;
    loop->now_ns = loop->backend->now_ns(loop);
    loop->now_ms = loop->now_ns / 1000000;
    loop_drain_mailbox(loop); /* posts made before run started */
    while (!atomic_load_explicit(&loop->stop, memory_order_acquire)) {
        loop->backend->poll(loop, loop_timeout_ms(loop));
        if (atomic_load_explicit(&loop->stop, memory_order_acquire)) break;
        loop_run_timers(loop);
    }
    atomic_store_explicit(&loop->stop, false, memory_order_relaxed);
    rn_loop_tls = prev;
}

void rn_loop_stop(rn_loop_t *loop) {
    atomic_store_explicit(&loop->stop, true, memory_order_release);
    if (rn_loop_tls != loop) loop->backend->wake(loop);
}

/* ---- mailbox ---- */

void rn_loop_post(rn_loop_t *loop, rn_loop_fn fn, void *arg) {
    rn_post_t *p = malloc(sizeof(*p));
    /* A lost cross-thread completion would hang a request forever; a 24-byte
     * allocation failing means the process is beyond saving. */
    RN_ASSERT(p != NULL);
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->mu);
    bool was_empty = loop->post_head == NULL;
    if (loop->post_tail)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    pthread_mutex_unlock(&loop->mu);
    if (was_empty) loop->backend->wake(loop);
}

/* ---- fd watchers ---- */

static uint64_t watch_token(const rn_loop_t *loop, int fd) {
    return ((uint64_t)loop->watches[fd].gen << 32) | (uint32_t)fd;
}

rn_err_t rn_loop_watch(rn_loop_t *loop, int fd, int events, rn_loop_io_fn fn, void *arg) {
    RN_ASSERT(fd >= 0);
    if ((size_t)fd >= loop->nwatches) {
        size_t n = loop->nwatches ? loop->nwatches : 64;
        while (n <= (size_t)fd) n *= 2;
        rn_watch_t *w = realloc(loop->watches, n * sizeof(*w));
        if (!w) return RN_ERR_NOMEM;
        memset(w + loop->nwatches, 0, (n - loop->nwatches) * sizeof(*w));
        loop->watches = w;
        loop->nwatches = n;
    }
    rn_watch_t *w = &loop->watches[fd];
    RN_ASSERT(!w->active);
    int err = loop->backend->ctl(loop, EPOLL_CTL_ADD, fd, events, watch_token(loop, fd));
    if (err) {
        RN_ERROR("io", "loop %d: epoll_ctl(ADD, fd %d) failed: %s", loop->id, fd, strerror(err));
        return RN_ERR_IO;
    }
    w->fn = fn;
    w->arg = arg;
    w->events = events;
    w->active = true;
    return RN_OK;
}

rn_err_t rn_loop_modify(rn_loop_t *loop, int fd, int events) {
    RN_ASSERT(fd >= 0 && (size_t)fd < loop->nwatches && loop->watches[fd].active);
    rn_watch_t *w = &loop->watches[fd];
    if (w->events == events) return RN_OK;
    int err = loop->backend->ctl(loop, EPOLL_CTL_MOD, fd, events, watch_token(loop, fd));
    if (err) {
        RN_ERROR("io", "loop %d: epoll_ctl(MOD, fd %d) failed: %s", loop->id, fd, strerror(err));
        return RN_ERR_IO;
    }
    w->events = events;
    return RN_OK;
}

void rn_loop_unwatch(rn_loop_t *loop, int fd) {
    if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].active) return;
    rn_watch_t *w = &loop->watches[fd];
    int err = loop->backend->ctl(loop, EPOLL_CTL_DEL, fd, 0, 0);
    if (err && err != EBADF && err != ENOENT)
        RN_WARN("io", "loop %d: epoll_ctl(DEL, fd %d) failed: %s", loop->id, fd, strerror(err));
    w->active = false;
    w->fn = NULL;
    w->arg = NULL;
    w->events = 0;
    w->gen++;
}
