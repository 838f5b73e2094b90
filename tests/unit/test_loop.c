/* test_loop.c — rn_loop: timers (order, cancel), fd watchers, cross-thread posts, stop. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_loop.h"
#include "rn_test.h"

typedef struct {
    rn_loop_t *loop;
    int order[64];
    int n;
    int stop_after;
} timer_log_t;

typedef struct {
    timer_log_t *log;
    int id;
} timer_arg_t;

static void on_timer(void *arg) {
    timer_arg_t *a = arg;
    a->log->order[a->log->n++] = a->id;
    if (a->log->n == a->log->stop_after) rn_loop_stop(a->log->loop);
}

static void stop_loop(void *arg) { rn_loop_stop(arg); }

RN_TEST(loop_timers_fire_in_deadline_order) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 0), RN_OK);
    timer_log_t log = {.loop = loop, .stop_after = 6};
    /* Deadlines out of insertion order; equal deadlines keep insertion order. */
    static const int delays[6] = {30, 10, 20, 10, 0, 30};
    static const int expect[6] = {4, 1, 3, 2, 0, 5};
    timer_arg_t args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (timer_arg_t){&log, i};
        ASSERT_TRUE(rn_loop_timer_add(loop, delays[i], on_timer, &args[i]) != NULL);
    }
    ASSERT_EQ(rn_loop_timer_count(loop), 6);
    int64_t t0 = rn_clock_mono_ms();
    rn_loop_run(loop);
    int64_t took = rn_clock_mono_ms() - t0;
    ASSERT_EQ(log.n, 6);
    for (int i = 0; i < 6; i++) ASSERT_EQ(log.order[i], expect[i]);
    ASSERT_GE(took, 29);
    ASSERT_LT(took, 2000);
    ASSERT_EQ(rn_loop_timer_count(loop), 0);
    rn_loop_free(loop);
}

RN_TEST(loop_timer_cancel_frees_and_never_fires) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 0), RN_OK);
    timer_log_t log = {.loop = loop, .stop_after = -1};
    timer_arg_t args[40];
    rn_timer_t *t[40];
    /* Enough timers to exercise heap removal from the middle. */
    for (int i = 0; i < 40; i++) {
        args[i] = (timer_arg_t){&log, i};
        t[i] = rn_loop_timer_add(loop, (i * 7) % 13, on_timer, &args[i]);
        ASSERT_TRUE(t[i] != NULL);
    }
    for (int i = 0; i < 40; i += 2) rn_loop_timer_cancel(loop, t[i]);
    ASSERT_EQ(rn_loop_timer_count(loop), 20);
    ASSERT_TRUE(rn_loop_timer_add(loop, 40, stop_loop, loop) != NULL);
    rn_loop_run(loop);
    ASSERT_EQ(log.n, 20);
    int64_t last = -1;
    for (int i = 0; i < 20; i++) {
        int id = log.order[i];
        ASSERT_EQ(id % 2, 1);
        int64_t key = (int64_t)((id * 7) % 13) * 100 + id; /* deadline, then insertion order */
        ASSERT_GT(key, last);
        last = key;
    }
    /* A timer left armed at free is freed without running (ASan checks the leak). */
    ASSERT_TRUE(rn_loop_timer_add(loop, 100000, on_timer, &args[0]) != NULL);
    rn_loop_free(loop);
}

/* A timer that re-arms itself with delay 0 must not starve the loop. */
typedef struct {
    rn_loop_t *loop;
    int fired;
} rearm_t;

static void rearm(void *arg) {
    rearm_t *r = arg;
    r->fired++;
    rn_loop_timer_add(r->loop, 0, rearm, r);
}

RN_TEST(loop_zero_delay_rearm_does_not_starve) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 0), RN_OK);
    rearm_t r = {loop, 0};
    rn_loop_timer_add(loop, 0, rearm, &r);
    rn_loop_timer_add(loop, 20, stop_loop, loop);
    rn_loop_run(loop);
    ASSERT_GT(r.fired, 1);
    rn_loop_free(loop);
}

/* ---- posts from other threads ---- */

typedef struct {
    rn_loop_t *loop;
    atomic_int next_expected[4];
    int received;
    int total;
    int out_of_order;
    int not_on_loop;
} post_state_t;

typedef struct {
    post_state_t *st;
    int thread;
    int i;
} post_msg_t;

static void on_post(void *arg) {
    post_msg_t *m = arg;
    post_state_t *st = m->st;
    if (rn_loop_current() != st->loop) st->not_on_loop++;
    int want = atomic_load(&st->next_expected[m->thread]);
    if (m->i != want) st->out_of_order++;
    atomic_store(&st->next_expected[m->thread], m->i + 1);
    if (++st->received == st->total) rn_loop_stop(st->loop);
    free(m);
}

typedef struct {
    post_state_t *st;
    int thread;
    int count;
} poster_t;

static void *poster_main(void *arg) {
    poster_t *p = arg;
    for (int i = 0; i < p->count; i++) {
        post_msg_t *m = malloc(sizeof(*m));
        *m = (post_msg_t){p->st, p->thread, i};
        rn_loop_post(p->st->loop, on_post, m);
        if (i % 100 == 0) usleep(100);
    }
    return NULL;
}

RN_TEST(loop_post_from_threads_runs_in_order_on_loop) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 3), RN_OK);
    ASSERT_EQ(rn_loop_id(loop), 3);
    post_state_t st = {.loop = loop, .total = 4 * 2000};
    poster_t p[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (poster_t){&st, i, 2000};
        ASSERT_EQ(pthread_create(&th[i], NULL, poster_main, &p[i]), 0);
    }
    ASSERT_TRUE(rn_loop_timer_add(loop, 10000, stop_loop, loop) != NULL); /* bound the test */
    ASSERT_TRUE(rn_loop_current() == NULL);
    rn_loop_run(loop);
    ASSERT_TRUE(rn_loop_current() == NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    ASSERT_EQ(st.received, st.total);
    ASSERT_EQ(st.out_of_order, 0);
    ASSERT_EQ(st.not_on_loop, 0);
    rn_loop_free(loop);
}

/* ---- stop from another thread, now_ms ---- */

typedef struct {
    rn_loop_t *loop;
    int delay_ms;
} stopper_t;

static void *stopper_main(void *arg) {
    stopper_t *s = arg;
    usleep((useconds_t)s->delay_ms * 1000);
    rn_loop_stop(s->loop);
    return NULL;
}

RN_TEST(loop_stop_from_another_thread_wakes_idle_loop) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 0), RN_OK);
    stopper_t s = {loop, 30};
    pthread_t th;
    int64_t t0 = rn_clock_mono_ms();
    ASSERT_EQ(pthread_create(&th, NULL, stopper_main, &s), 0);
    rn_loop_run(loop); /* nothing armed: blocks in epoll_wait until the stop */
    int64_t took = rn_clock_mono_ms() - t0;
    pthread_join(th, NULL);
    ASSERT_GE(took, 25);
    ASSERT_LT(took, 5000);
    ASSERT_GE(rn_loop_now_ms(loop), t0);
    /* Stop before run: run returns at once; the loop can be run again afterwards. */
    rn_loop_stop(loop);
    rn_loop_run(loop);
    rn_loop_timer_add(loop, 1, stop_loop, loop);
    rn_loop_run(loop);
    rn_loop_free(loop);
}

/* ---- fd watchers ---- */

typedef struct {
    rn_loop_t *loop;
    int fds[2];
    int reads, writes, errors;
    char got[16];
    size_t ngot;
} pipe_state_t;

static void on_sock(void *arg, int fd, int events) {
    pipe_state_t *st = arg;
    if (events & RN_LOOP_ERROR) {
        st->errors++;
        rn_loop_unwatch(st->loop, fd);
        rn_loop_stop(st->loop);
        return;
    }
    if (events & RN_LOOP_WRITE) {
        st->writes++;
        rn_loop_modify(st->loop, fd, RN_LOOP_READ); /* level-triggered: drop write interest */
    }
    if (events & RN_LOOP_READ) {
        st->reads++;
        ssize_t n = read(fd, st->got + st->ngot, sizeof(st->got) - st->ngot);
        if (n > 0) st->ngot += (size_t)n;
        if (n == 0) {
            rn_loop_unwatch(st->loop, fd);
            rn_loop_stop(st->loop);
        }
    }
}

static void write_hello(void *arg) {
    pipe_state_t *st = arg;
    ssize_t n = write(st->fds[1], "hello", 5);
    (void)n;
}

static void close_peer(void *arg) {
    pipe_state_t *st = arg;
    close(st->fds[1]);
    st->fds[1] = -1;
}

RN_TEST(loop_watch_read_write_and_hangup) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 0), RN_OK);
    pipe_state_t st = {.loop = loop};
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, st.fds), 0);
    ASSERT_EQ(rn_loop_watch(loop, st.fds[0], RN_LOOP_READ | RN_LOOP_WRITE, on_sock, &st), RN_OK);
    rn_loop_timer_add(loop, 5, write_hello, &st);
    rn_loop_timer_add(loop, 20, close_peer, &st);
    rn_loop_timer_add(loop, 5000, stop_loop, loop); /* bound */
    rn_loop_run(loop);
    ASSERT_EQ(st.writes, 1);
    ASSERT_GE(st.reads, 1);
    ASSERT_EQ(st.ngot, 5);
    ASSERT_MEMEQ(st.got, "hello", 5);
    close(st.fds[0]);
    rn_loop_free(loop);
}

/* Interest 0 still reports errors/hang-ups, as RN_LOOP_ERROR. */
RN_TEST(loop_idle_watch_reports_hangup_as_error) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 0), RN_OK);
    pipe_state_t st = {.loop = loop};
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, st.fds), 0);
    ASSERT_EQ(rn_loop_watch(loop, st.fds[0], 0, on_sock, &st), RN_OK);
    rn_loop_timer_add(loop, 5, close_peer, &st);
    rn_loop_timer_add(loop, 5000, stop_loop, loop);
    rn_loop_run(loop);
    ASSERT_EQ(st.errors, 1);
    ASSERT_EQ(st.reads, 0);
    close(st.fds[0]);
    rn_loop_free(loop);
}

/* A callback that closes another fd in the same batch must not see its event,
 * even when the fd number is reused by a new watch at once. */
typedef struct {
    rn_loop_t *loop;
    int a[2], b[2];
    int a_calls, wrong_calls;
} stale_t;

static void on_wrong(void *arg, int fd, int events) {
    stale_t *st = arg;
    st->wrong_calls++;
    rn_loop_unwatch(st->loop, fd);
}

static void on_stale_a(void *arg, int fd, int events) {
    stale_t *st = arg;
    st->a_calls++;
    /* Whichever of the two runs first closes the other and reuses its number. */
    int other = fd == st->a[0] ? st->b[0] : st->a[0];
    rn_loop_unwatch(st->loop, other);
    close(other);
    int p[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p) == 0) {
        /* p[0] very likely takes `other`'s number; it has nothing to read. */
        rn_loop_watch(st->loop, p[0], 0, on_wrong, st);
        rn_loop_unwatch(st->loop, p[0]);
        rn_loop_watch(st->loop, p[0], RN_LOOP_READ, on_wrong, st);
        if (fd == st->a[0]) {
            st->b[0] = p[0];
            close(st->b[1]);
            st->b[1] = p[1];
        } else {
            st->a[0] = p[0];
            close(st->a[1]);
            st->a[1] = p[1];
        }
    }
    rn_loop_unwatch(st->loop, fd);
    rn_loop_stop(st->loop);
}

RN_TEST(loop_stale_events_are_dropped) {
    rn_loop_t *loop;
    ASSERT_EQ(rn_loop_new(&loop, 0), RN_OK);
    stale_t st = {.loop = loop};
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, st.a), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, st.b), 0);
    ASSERT_EQ(write(st.a[1], "x", 1), 1);
    ASSERT_EQ(write(st.b[1], "x", 1), 1);
    ASSERT_EQ(rn_loop_watch(loop, st.a[0], RN_LOOP_READ, on_stale_a, &st), RN_OK);
    ASSERT_EQ(rn_loop_watch(loop, st.b[0], RN_LOOP_READ, on_stale_a, &st), RN_OK);
    rn_loop_run(loop);
    ASSERT_EQ(st.a_calls, 1);
    ASSERT_EQ(st.wrong_calls, 0);
    rn_loop_unwatch(loop, st.a[0]);
    rn_loop_unwatch(loop, st.b[0]);
    close(st.a[0]);
    close(st.a[1]);
    close(st.b[0]);
    close(st.b[1]);
    rn_loop_free(loop);
}

int main(void) { return rn_test_main(); }
