/*
 * rn_logdir.c — a log directory: its partitions, the flusher thread (group
 * commit), the maintenance thread (retention, compaction, checkpoints) and
 * the dir-level files.
 *
 * FILES in the log dir (Kafka's text formats):
 *   recovery-point-offset-checkpoint, log-start-offset-checkpoint,
 *   replication-offset-checkpoint (each partition's high watermark: written
 *   every hw_checkpoint_interval_ms and at a clean close, read at open)
 *       0\n                              version
 *       <count>\n
 *       <topic> <partition> <offset>\n   count lines
 *   .runnel_cleanshutdown                empty; present only between a clean
 *                                        close and the next open
 *   <topic>-<partition>.<ns>-delete/     a deleted partition being removed
 *
 * GROUP COMMIT. An append registers the files it wrote (retained filerefs) and
 * the log end they cover on the log's dirty entry, and in durable mode takes
 * a ticket — all under flush_lock, so a ticket is issued only once its data
 * is registered. A flusher round takes every due dirty log and the highest
 * ticket issued so far, drops the lock, fdatasyncs each file once (plus any
 * new directory entries), then publishes the ticket, advances each log's
 * synced end (its high watermark in durable mode) and its recovery point, and
 * calls the sync listener. Appends arriving during a round wait for the next:
 * many appends, one fdatasync per file per round.
 *
 * The flusher also measures the dir's append rate (bytes/s over >= 100 ms):
 * preallocation (rn_segment.c) stops above RN__PREALLOC_MAX_RATE.
 *
 * A failed write or fsync takes the dir offline: later appends and reads fail
 * with KAFKA_STORAGE_ERROR, the listener gets err once, nothing is retried.
 * Running out of space is not a failure of the dir: the append is cut back
 * and refused with RN_ERR_NOSPACE (retriable), reads keep working, and
 * appends resume once space is back.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_clock.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

#define CLEAN_MARKER ".runnel_cleanshutdown"

void rn_logdir_config_default(rn_logdir_config_t *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = "/tmp/runnel-logs";
    cfg->min_free_bytes = 0;
    cfg->max_open_files = 1024;
    cfg->recovery_threads = 4;
    cfg->retention_check_interval_ms = 300000;
    cfg->cleaner_dedupe_buffer_bytes = 128LL << 20;
    cfg->cleaner_backoff_ms = 15000;
    cfg->flush_scheduler_interval_ms = 1000;
    cfg->checkpoint_interval_ms = 60000;
    cfg->hw_checkpoint_interval_ms = 5000;
    rn_log_config_default(&cfg->defaults);
}

bool rn_logdir_offline(const rn_logdir_t *dir) { return atomic_load(&dir->offline); }
const char *rn_logdir_path(const rn_logdir_t *dir) { return dir->path; }
uint64_t rn_logdir_synced_ticket(const rn_logdir_t *dir) { return atomic_load(&dir->ticket_synced); }

void rn_logdir_on_sync(rn_logdir_t *dir, rn_logdir_sync_fn fn, void *arg) {
    pthread_mutex_lock(&dir->flush_lock);
    dir->sync_fn = fn;
    dir->sync_arg = arg;
    pthread_mutex_unlock(&dir->flush_lock);
}

rn_histo_t *rn_logdir_sync_histo(rn_logdir_t *dir) { return &dir->st_sync_round; }

void rn_logdir_stats(const rn_logdir_t *dir, rn_logdir_stats_t *out) {
    rn_logdir_t *d = (rn_logdir_t *)dir;
    out->fsyncs = atomic_load(&d->st_fsyncs);
    out->fsync_rounds = atomic_load(&d->st_fsync_rounds);
    out->fsync_ns_total = atomic_load(&d->st_fsync_ns);
    out->appends = atomic_load(&d->st_appends);
    out->append_bytes = atomic_load(&d->st_append_bytes);
    out->open_files = (uint64_t)rn__filecache_open_count(&d->cache);
    pthread_mutex_lock(&d->lock);
    out->partitions = d->logs.count;
    pthread_mutex_unlock(&d->lock);
}

void rn__logdir_fail(rn_logdir_t *dir, const char *what, const char *path, int err) {
    if (atomic_exchange(&dir->offline, true)) return;
    RN_ERROR("log", "%s failed on %s: %s; log dir %s is now offline", what, path, strerror(err), dir->path);
    pthread_mutex_lock(&dir->flush_lock);
    pthread_cond_broadcast(&dir->flush_cond);
    pthread_mutex_unlock(&dir->flush_lock);
}

rn_err_t rn__logdir_check_space(rn_logdir_t *dir, size_t len) {
    int64_t min = dir->cfg.min_free_bytes;
    if (min <= 0) return RN_OK;
    int64_t now = rn_clock_mono_ms();
    int64_t est = atomic_load(&dir->free_bytes);
    if (now - atomic_load(&dir->free_checked_ms) > 1000 || est - (int64_t)len < min) {
        struct statvfs sv;
        if (statvfs(dir->path, &sv) == 0) {
            est = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
            atomic_store(&dir->free_bytes, est);
            atomic_store(&dir->free_checked_ms, now);
        }
    }
    if (est - (int64_t)len < min) return RN_ERR_NOSPACE;
    atomic_fetch_sub(&dir->free_bytes, (int64_t)len);
    return RN_OK;
}

/* ---- flusher ----------------------------------------------------------------- */

uint64_t rn__logdir_mark_dirty(rn_logdir_t *dir, rn_log_t *log, rn_fileref_t **files, int nfiles, int64_t end_offset,
                               int64_t records, bool urgent, bool want_ticket) {
    bool lazy = !rn__log_durable(&log->cfg);
    int64_t flush_messages = log->cfg.flush_messages, flush_ms = log->cfg.flush_ms;
    pthread_mutex_lock(&dir->flush_lock);
    if (!log->in_dirty) {
        log->in_dirty = true;
        rn_log_retain(log);
        log->dirty_next = dir->dirty_head;
        dir->dirty_head = log;
        log->unflushed_msgs = 0;
        log->flush_deadline_ms = flush_ms == INT64_MAX ? INT64_MAX : rn_clock_mono_ms() + flush_ms;
    }
    for (int i = 0; i < nfiles; i++) {
        bool have = false;
        for (int32_t j = 0; j < log->ndirty_files && !have; j++) have = log->dirty_files[j] == files[i];
        if (have) continue;
        if (log->ndirty_files == log->dirty_files_cap) {
            int32_t cap = log->dirty_files_cap ? log->dirty_files_cap * 2 : 4;
            rn_fileref_t **n = realloc(log->dirty_files, (size_t)cap * sizeof(*n));
            if (!n) { /* cannot track it: sync it now instead */
                if (rn__fdatasync(files[i]->fd) < 0) rn__logdir_fail(dir, "fdatasync", log->path, errno);
                continue;
            }
            log->dirty_files = n;
            log->dirty_files_cap = cap;
        }
        rn_fileref_retain(files[i]);
        log->dirty_files[log->ndirty_files++] = files[i];
        dir->pinned_files++;
    }
    /* Lazy logs pin their files until flushed: bound that like the file cache. */
    if (dir->pinned_files > dir->cache.max_open) log->flush_urgent = true;
    if (end_offset > log->pending_end) log->pending_end = end_offset;
    log->unflushed_msgs += records;
    if (urgent || (lazy && flush_messages > 1 && log->unflushed_msgs >= flush_messages)) log->flush_urgent = true;
    uint64_t ticket = want_ticket ? ++dir->ticket_issued : 0;
    if (log->flush_urgent) pthread_cond_signal(&dir->flush_cond);
    pthread_mutex_unlock(&dir->flush_lock);
    return ticket;
}

void rn__logdir_mark_dir_dirty(rn_logdir_t *dir, rn_log_t *log, bool root) {
    pthread_mutex_lock(&dir->flush_lock);
    if (root) dir->root_dirty = true;
    if (log) {
        if (!log->in_dirty) {
            log->in_dirty = true;
            rn_log_retain(log);
            log->dirty_next = dir->dirty_head;
            dir->dirty_head = log;
            log->unflushed_msgs = 0;
            log->flush_deadline_ms = INT64_MAX;
        }
        log->needs_dir_sync = true;
    }
    pthread_mutex_unlock(&dir->flush_lock);
}

/* ---- parallel fdatasync ---- */

static void pool_work(rn_logdir_t *dir) {
    for (;;) {
        size_t i = atomic_fetch_add(&dir->pool_next, 1);
        if (i >= dir->pool_nfiles) break;
        if (atomic_load(&dir->pool_errno)) continue;
        if (rn__fdatasync(dir->pool_files[i]->fd) < 0) {
            int e = errno;
            atomic_store(&dir->pool_errno, e ? e : EIO);
        }
    }
}

static void *pool_main(void *arg) {
    rn_logdir_t *dir = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&dir->pool_lock);
    for (;;) {
        while (!dir->pool_stop && dir->pool_gen == seen) pthread_cond_wait(&dir->pool_cv, &dir->pool_lock);
        if (dir->pool_stop) break;
        seen = dir->pool_gen;
        pthread_mutex_unlock(&dir->pool_lock);
        pool_work(dir);
        pthread_mutex_lock(&dir->pool_lock);
        if (--dir->pool_active == 0) pthread_cond_signal(&dir->pool_done_cv);
    }
    pthread_mutex_unlock(&dir->pool_lock);
    return NULL;
}

/* fdatasyncs every file, several at once; 0 or the first errno. */
static int sync_files(rn_logdir_t *dir, rn_fileref_t **files, size_t n) {
    dir->pool_files = files;
    dir->pool_nfiles = n;
    atomic_store(&dir->pool_next, 0);
    atomic_store(&dir->pool_errno, 0);
    int helpers = n > 1 ? dir->npool : 0;
    if ((size_t)helpers > n - 1) helpers = (int)(n - 1);
    if (helpers > 0) {
        pthread_mutex_lock(&dir->pool_lock);
        dir->pool_active = dir->npool; /* every helper checks in, even with no file left */
        dir->pool_gen++;
        pthread_cond_broadcast(&dir->pool_cv);
        pthread_mutex_unlock(&dir->pool_lock);
    }
    pool_work(dir);
    if (helpers > 0) {
        pthread_mutex_lock(&dir->pool_lock);
        while (dir->pool_active > 0) pthread_cond_wait(&dir->pool_done_cv, &dir->pool_lock);
        pthread_mutex_unlock(&dir->pool_lock);
    }
    return atomic_load(&dir->pool_errno);
}

static void pool_start(rn_logdir_t *dir) {
    pthread_mutex_init(&dir->pool_lock, NULL);
    pthread_cond_init(&dir->pool_cv, NULL);
    pthread_cond_init(&dir->pool_done_cv, NULL);
    for (int i = 0; i < RN__SYNC_HELPERS; i++)
        if (pthread_create(&dir->pool[dir->npool], NULL, pool_main, dir) == 0) dir->npool++;
}

static void pool_stop(rn_logdir_t *dir) {
    pthread_mutex_lock(&dir->pool_lock);
    dir->pool_stop = true;
    pthread_cond_broadcast(&dir->pool_cv);
    pthread_mutex_unlock(&dir->pool_lock);
    for (int i = 0; i < dir->npool; i++) pthread_join(dir->pool[i], NULL);
    dir->npool = 0;
    pthread_mutex_destroy(&dir->pool_lock);
    pthread_cond_destroy(&dir->pool_cv);
    pthread_cond_destroy(&dir->pool_done_cv);
}

typedef struct {
    rn_log_t *log;
    rn_fileref_t **files;
    int32_t nfiles;
    int64_t end;
    uint64_t truncations; /* the log's count when taken: a truncation since voids `end` */
    bool dir_sync;
} taken_t;

static void report_offline(rn_logdir_t *dir) {
    /* flush_lock held */
    if (!atomic_load(&dir->offline) || dir->offline_reported) return;
    dir->offline_reported = true;
    rn_logdir_sync_fn fn = dir->sync_fn;
    void *arg = dir->sync_arg;
    uint64_t synced = atomic_load(&dir->ticket_synced);
    pthread_mutex_unlock(&dir->flush_lock);
    if (fn) fn(arg, synced, RN_ERR_KAFKA_STORAGE_ERROR);
    pthread_mutex_lock(&dir->flush_lock);
}

/* One round. flush_lock held on entry and exit; returns false if nothing was due. */
static bool flush_round(rn_logdir_t *dir, int64_t *next_deadline) {
    int64_t now = rn_clock_mono_ms();
    *next_deadline = INT64_MAX;
    int ntaken = 0, cap = 0;
    for (rn_log_t *l = dir->dirty_head; l; l = l->dirty_next) cap++;
    if (cap == 0 && !dir->root_dirty) return false;
    taken_t *taken = cap ? malloc((size_t)cap * sizeof(*taken)) : NULL;
    if (cap && !taken) return false;
    rn_log_t **pp = &dir->dirty_head;
    while (*pp) {
        rn_log_t *l = *pp;
        bool due = dir->flush_all || l->flush_urgent || now >= l->flush_deadline_ms || atomic_load(&dir->offline);
        if (!due) {
            if (l->flush_deadline_ms < *next_deadline) *next_deadline = l->flush_deadline_ms;
            pp = &l->dirty_next;
            continue;
        }
        *pp = l->dirty_next;
        l->dirty_next = NULL;
        l->in_dirty = false;
        taken[ntaken++] = (taken_t){l, l->dirty_files, l->ndirty_files, l->pending_end, l->truncations, l->needs_dir_sync};
        dir->pinned_files -= l->ndirty_files;
        l->dirty_files = NULL;
        l->ndirty_files = l->dirty_files_cap = 0;
        l->flush_urgent = l->needs_dir_sync = false;
        l->unflushed_msgs = 0;
    }
    bool root = dir->root_dirty;
    dir->root_dirty = false;
    if (ntaken == 0 && !root) {
        free(taken);
        return false;
    }
    uint64_t round_ticket = dir->ticket_issued;
    pthread_mutex_unlock(&dir->flush_lock);

    bool ok = !atomic_load(&dir->offline);
    int64_t t0 = rn_clock_mono_ns();
    uint64_t nsyncs = 0;
    /* Directory entries first: a new segment must be findable after a crash. */
    if (ok && root) {
        nsyncs++;
        if (rn__fsync_dir(dir->path) < 0) {
            rn__logdir_fail(dir, "fsync", dir->path, errno);
            ok = false;
        }
    }
    size_t nall = 0;
    for (int i = 0; ok && i < ntaken; i++) {
        nall += (size_t)taken[i].nfiles;
        if (taken[i].dir_sync) {
            nsyncs++;
            /* ENOENT: the partition was deleted (renamed away) meanwhile. */
            if (rn__fsync_dir(taken[i].log->path) < 0 && errno != ENOENT) {
                rn__logdir_fail(dir, "fsync", taken[i].log->path, errno);
                ok = false;
            }
        }
    }
    if (ok && nall > 0) {
        rn_fileref_t **all = malloc(nall * sizeof(*all));
        size_t k = 0;
        for (int i = 0; all && i < ntaken; i++)
            for (int32_t j = 0; j < taken[i].nfiles; j++) all[k++] = taken[i].files[j];
        int e = 0;
        if (all) {
            e = sync_files(dir, all, nall);
        } else { /* no memory for the list: one by one */
            for (int i = 0; !e && i < ntaken; i++)
                for (int32_t j = 0; !e && j < taken[i].nfiles; j++)
                    if (rn__fdatasync(taken[i].files[j]->fd) < 0) e = errno ? errno : EIO;
        }
        free(all);
        nsyncs += nall;
        if (e) {
            rn__logdir_fail(dir, "fdatasync", dir->path, e);
            ok = false;
        }
    }
    atomic_fetch_add(&dir->st_fsyncs, nsyncs);
    atomic_fetch_add(&dir->st_fsync_rounds, 1);
    int64_t round_ns = rn_clock_mono_ns() - t0;
    atomic_fetch_add(&dir->st_fsync_ns, (uint64_t)round_ns);
    if (nsyncs) rn_histo_observe_ns(&dir->st_sync_round, round_ns);

    for (int i = 0; i < ntaken; i++) {
        rn_log_t *l = taken[i].log;
        if (ok) {
            pthread_rwlock_wrlock(&l->lock);
            if (taken[i].truncations == l->truncations) {
                if (taken[i].end > l->synced_end) l->synced_end = taken[i].end;
                if (taken[i].end > l->recovery_point) l->recovery_point = taken[i].end;
            }
            int64_t hw = l->synced_end, end = atomic_load(&l->log_end_offset);
            if (hw > end) hw = end;
            if (rn__log_durable(&l->cfg) && !atomic_load(&l->replicated) && hw > atomic_load(&l->high_watermark))
                atomic_store(&l->high_watermark, hw);
            pthread_rwlock_unlock(&l->lock);
        }
        for (int32_t j = 0; j < taken[i].nfiles; j++) rn_fileref_release(taken[i].files[j]);
        free(taken[i].files);
        rn_log_release(l);
    }
    free(taken);

    pthread_mutex_lock(&dir->flush_lock);
    if (ok) {
        if (round_ticket > atomic_load(&dir->ticket_synced)) atomic_store(&dir->ticket_synced, round_ticket);
        rn_logdir_sync_fn fn = dir->sync_fn;
        void *arg = dir->sync_arg;
        if (fn) {
            pthread_mutex_unlock(&dir->flush_lock);
            fn(arg, round_ticket, RN_OK);
            pthread_mutex_lock(&dir->flush_lock);
        }
    } else {
        report_offline(dir);
    }
    dir->rounds_done++;
    pthread_cond_broadcast(&dir->round_cond);
    return true;
}

/* The dir's append rate, for preallocation (flusher thread; at least 100 ms apart). */
static void measure_rate(rn_logdir_t *dir) {
    int64_t now = rn_clock_mono_ns();
    if (now - dir->rate_t0_ns < 100000000) return;
    uint64_t bytes = atomic_load(&dir->st_append_bytes);
    atomic_store(&dir->append_rate, (int64_t)((double)(bytes - dir->rate_bytes0) * 1e9 / (double)(now - dir->rate_t0_ns)));
    dir->rate_t0_ns = now;
    dir->rate_bytes0 = bytes;
}

static void *flusher_main(void *arg) {
    rn_logdir_t *dir = arg;
    pthread_mutex_lock(&dir->flush_lock);
    dir->rate_t0_ns = rn_clock_mono_ns();
    dir->rate_bytes0 = atomic_load(&dir->st_append_bytes);
    for (;;) {
        measure_rate(dir);
        report_offline(dir);
        int64_t next_deadline;
        bool did = flush_round(dir, &next_deadline);
        if (did) continue;
        if (dir->stopping) break;
        if (dir->flush_all) { /* nothing left: wake a waiting rn__logdir_flush_all */
            dir->flush_all = false;
            dir->rounds_done++;
            pthread_cond_broadcast(&dir->round_cond);
        }
        int64_t wait_ms = dir->cfg.flush_scheduler_interval_ms > 0 ? dir->cfg.flush_scheduler_interval_ms : 1000;
        int64_t now = rn_clock_mono_ms();
        if (next_deadline != INT64_MAX && next_deadline - now < wait_ms) wait_ms = next_deadline - now;
        if (wait_ms < 1) wait_ms = 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&dir->flush_cond, &dir->flush_lock, &ts);
    }
    pthread_mutex_unlock(&dir->flush_lock);
    return NULL;
}

/* ---- checkpoints --------------------------------------------------------------- */

typedef struct {
    rn_log_t **v;
    size_t n;
} log_list_t;

static log_list_t snapshot_logs(rn_logdir_t *dir) {
    log_list_t l = {NULL, 0};
    pthread_mutex_lock(&dir->lock);
    l.v = malloc((dir->logs.count + 1) * sizeof(*l.v));
    if (l.v) {
        const char *k;
        void *v;
        for (size_t it = 0; rn_map_next(&dir->logs, &it, &k, &v);) {
            rn_log_retain(v);
            l.v[l.n++] = v;
        }
    }
    pthread_mutex_unlock(&dir->lock);
    return l;
}

static void release_logs(log_list_t *l) {
    for (size_t i = 0; i < l->n; i++) rn_log_release(l->v[i]);
    free(l->v);
}

enum { CK_RECOVERY_POINT, CK_LOG_START, CK_HIGH_WATERMARK };

/* One checkpoint file: "0\n<n>\n" then "<topic> <partition> <offset>\n" per log. */
static rn_err_t write_checkpoint(rn_logdir_t *dir, const char *name, const log_list_t *logs, int which, bool clean) {
    size_t cap = 64;
    for (size_t i = 0; i < logs->n; i++) cap += strlen(logs->v[i]->topic) + 48;
    char *buf = malloc(cap);
    if (!buf) return RN_ERR_NOMEM;
    size_t n = (size_t)snprintf(buf, cap, "0\n%zu\n", logs->n);
    for (size_t i = 0; i < logs->n; i++) {
        rn_log_t *l = logs->v[i];
        pthread_rwlock_rdlock(&l->lock);
        int64_t v = which == CK_LOG_START        ? atomic_load(&l->log_start_offset)
                    : which == CK_HIGH_WATERMARK ? atomic_load(&l->high_watermark)
                    : clean                      ? atomic_load(&l->log_end_offset)
                                                 : l->recovery_point;
        pthread_rwlock_unlock(&l->lock);
        n += (size_t)snprintf(buf + n, cap - n, "%s %d %" PRId64 "\n", l->topic, l->partition, v);
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir->path, name);
    rn_err_t err = rn__write_file_atomic(path, buf, n, true);
    free(buf);
    return err;
}

static rn_err_t write_hw_checkpoint(rn_logdir_t *dir, const log_list_t *logs) {
    return write_checkpoint(dir, "replication-offset-checkpoint", logs, CK_HIGH_WATERMARK, false);
}

static rn_err_t write_checkpoints(rn_logdir_t *dir, const log_list_t *logs, bool clean) {
    rn_err_t err = write_checkpoint(dir, "recovery-point-offset-checkpoint", logs, CK_RECOVERY_POINT, clean);
    if (!err) err = write_checkpoint(dir, "log-start-offset-checkpoint", logs, CK_LOG_START, clean);
    if (!err) err = write_hw_checkpoint(dir, logs);
    return err;
}

/* "0\n<n>\n<topic> <partition> <offset>\n..." → map "<topic>-<partition>" → int64_t*. */
static void read_checkpoint(const char *dirpath, const char *name, rn_map_t *out) {
    char path[4096], *data;
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", dirpath, name);
    if (rn__read_file(path, 1u << 30, &data, &len) != RN_OK) return;
    char *save = NULL, *line = strtok_r(data, "\n", &save);
    int lineno = 0;
    long count = -1;
    for (; line; line = strtok_r(NULL, "\n", &save), lineno++) {
        if (lineno == 0) {
            if (strcmp(line, "0") != 0) break;
            continue;
        }
        if (lineno == 1) {
            count = strtol(line, NULL, 10);
            continue;
        }
        if (lineno - 2 >= count) break;
        char *sp2 = strrchr(line, ' ');
        if (!sp2) break;
        *sp2 = 0;
        char *sp1 = strrchr(line, ' ');
        if (!sp1) break;
        *sp1 = 0;
        long long part = strtoll(sp1 + 1, NULL, 10), off = strtoll(sp2 + 1, NULL, 10);
        char key[512];
        int kl = snprintf(key, sizeof(key), "%s-%lld", line, part);
        if (kl <= 0 || (size_t)kl >= sizeof(key)) continue;
        int64_t *v = malloc(sizeof(*v));
        if (!v) break;
        *v = off;
        free(rn_map_del(out, key, (size_t)kl));
        if (!rn_map_put(out, key, (size_t)kl, v)) free(v);
    }
    free(data);
}

static void free_checkpoint(rn_map_t *m) {
    const char *k;
    void *v;
    for (size_t it = 0; rn_map_next(m, &it, &k, &v);) free(v);
    rn_map_free(m);
}

/* ---- removing directories ------------------------------------------------------- */

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        char p[4096];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
            if (unlink(p) < 0 && errno == EISDIR) remove_tree(p);
        }
        closedir(d);
    }
    if (rmdir(path) < 0 && errno != ENOENT) RN_WARN("log", "rmdir(%s) failed: %s", path, strerror(errno));
}

/* ---- open / create / delete ------------------------------------------------------ */

static bool valid_topic(const char *topic) {
    size_t n = strlen(topic);
    if (n == 0 || n > 249 || !strcmp(topic, ".") || !strcmp(topic, "..")) return false;
    for (size_t i = 0; i < n; i++) {
        char c = topic[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

/* "<topic>-<partition>" → topic (written into buf) and partition. */
static bool parse_partition_dir(const char *name, char *topic, size_t cap, int32_t *partition) {
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || !dash[1]) return false;
    char *end;
    long p = strtol(dash + 1, &end, 10);
    if (*end || p < 0 || p > INT32_MAX) return false;
    size_t tl = (size_t)(dash - name);
    if (tl >= cap) return false;
    memcpy(topic, name, tl);
    topic[tl] = 0;
    if (!valid_topic(topic)) return false;
    *partition = (int32_t)p;
    return true;
}

typedef struct {
    rn_logdir_t *dir;
    rn_log_t **logs;
    rn__recover_hints_t *hints;
    size_t n;
    atomic_size_t next;
    atomic_int failed;
} load_job_t;

static void *load_worker(void *arg) {
    load_job_t *job = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n || atomic_load(&job->failed)) break;
        if (rn__log_load(job->logs[i], &job->hints[i]) != RN_OK) atomic_store(&job->failed, 1);
    }
    return NULL;
}

static void *maint_main(void *arg);

static int mkdir_p(const char *path) {
    char p[4096];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

rn_err_t rn_logdir_open(const rn_logdir_config_t *cfg, rn_logdir_t **out) {
    *out = NULL;
    if (mkdir_p(cfg->path) < 0) {
        RN_ERROR("log", "mkdir(%s) failed: %s", cfg->path, strerror(errno));
        return RN_ERR_KAFKA_STORAGE_ERROR;
    }
    rn_logdir_t *dir = calloc(1, sizeof(*dir));
    if (!dir) return RN_ERR_NOMEM;
    dir->cfg = *cfg;
    dir->path = strdup(cfg->path);
    dir->cfg.path = dir->path;
    pthread_mutex_init(&dir->lock, NULL);
    rn_map_init(&dir->logs);
    rn__filecache_init(&dir->cache, cfg->max_open_files);
    pthread_mutex_init(&dir->flush_lock, NULL);
    pthread_cond_init(&dir->flush_cond, NULL);
    pthread_cond_init(&dir->round_cond, NULL);
    pthread_mutex_init(&dir->maint_lock, NULL);
    pthread_cond_init(&dir->maint_cond, NULL);
    pthread_mutex_init(&dir->maint_run_lock, NULL);
    int64_t now = rn_clock_mono_ms();
    dir->last_checkpoint_ms = dir->last_retention_ms = dir->last_clean_ms = dir->last_hw_checkpoint_ms = now;
    atomic_store(&dir->free_checked_ms, INT64_MIN / 2);

    char path[4096];
    snprintf(path, sizeof(path), "%s/" CLEAN_MARKER, dir->path);
    struct stat st;
    bool clean = stat(path, &st) == 0;
    rn_map_t rp, ls, hw;
    rn_map_init(&rp);
    rn_map_init(&ls);
    rn_map_init(&hw);
    read_checkpoint(dir->path, "recovery-point-offset-checkpoint", &rp);
    read_checkpoint(dir->path, "log-start-offset-checkpoint", &ls);
    read_checkpoint(dir->path, "replication-offset-checkpoint", &hw);

    size_t n = 0, cap = 0;
    rn_log_t **logs = NULL;
    rn__recover_hints_t *hints = NULL;
    rn_err_t err = RN_OK;
    DIR *d = opendir(dir->path);
    if (!d) {
        err = RN_ERR_KAFKA_STORAGE_ERROR;
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        size_t nl = strlen(name);
        snprintf(path, sizeof(path), "%s/%s", dir->path, name);
        if (nl > 7 && !strcmp(name + nl - 7, "-delete")) {
            remove_tree(path);
            continue;
        }
        char topic[256];
        int32_t part;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || !parse_partition_dir(name, topic, sizeof(topic), &part))
            continue;
        if (!strcmp(topic, RN_METADATA_TOPIC)) continue; /* the metadata quorum's Raft log (src/cluster), not a partition */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            rn_log_t **nl2 = realloc(logs, cap * sizeof(*logs));
            rn__recover_hints_t *nh = realloc(hints, cap * sizeof(*hints));
            if (nl2) logs = nl2;
            if (nh) hints = nh;
            if (!nl2 || !nh) {
                err = RN_ERR_NOMEM;
                break;
            }
        }
        rn_log_t *log = rn__log_new(dir, topic, part, &cfg->defaults);
        if (!log) {
            err = RN_ERR_NOMEM;
            break;
        }
        rn__recover_hints_t *h = &hints[n];
        memset(h, 0, sizeof(*h));
        h->clean = clean;
        int64_t *v = rn_map_get(&rp, name, nl);
        if (v) {
            h->have_recovery_point = true;
            h->recovery_point = *v;
        }
        v = rn_map_get(&ls, name, nl);
        if (v) {
            h->have_log_start = true;
            h->log_start = *v;
        }
        v = rn_map_get(&hw, name, nl);
        if (v && *v >= 0) log->checkpoint_hw = *v;
        logs[n++] = log;
    }
    closedir(d);
    if (err) goto fail;

    /* Recover partitions in parallel. */
    int64_t t0 = rn_clock_mono_ns();
    load_job_t job = {.dir = dir, .logs = logs, .hints = hints, .n = n};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, 0);
    int nthreads = cfg->recovery_threads > 0 ? cfg->recovery_threads : 1;
    if ((size_t)nthreads > n) nthreads = n ? (int)n : 1;
    pthread_t th[64];
    if (nthreads > 64) nthreads = 64;
    int started = 0;
    for (int i = 1; i < nthreads; i++)
        if (pthread_create(&th[started], NULL, load_worker, &job) == 0) started++;
    load_worker(&job);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (atomic_load(&job.failed)) {
        err = RN_ERR_KAFKA_STORAGE_ERROR;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        char key[512];
        int kl = snprintf(key, sizeof(key), "%s-%d", logs[i]->topic, logs[i]->partition);
        if (!rn_map_put(&dir->logs, key, (size_t)kl, logs[i])) {
            err = RN_ERR_NOMEM;
            goto fail;
        }
        logs[i] = NULL;
    }
    RN_INFO("log", "opened %s: %zu partitions (%s) in %.1f ms", dir->path, n,
            clean ? "clean shutdown" : n ? "unclean shutdown: recovered" : "new or empty",
            (double)(rn_clock_mono_ns() - t0) / 1e6);
    free(logs);
    free(hints);
    logs = NULL;
    hints = NULL;
    free_checkpoint(&rp);
    free_checkpoint(&ls);
    free_checkpoint(&hw);

    /* The marker goes only now: a crash from here on must recover. */
    snprintf(path, sizeof(path), "%s/" CLEAN_MARKER, dir->path);
    if (clean && (unlink(path) < 0 || rn__fsync_dir(dir->path) < 0)) {
        RN_ERROR("log", "removing %s failed: %s", path, strerror(errno));
        err = RN_ERR_KAFKA_STORAGE_ERROR;
        goto fail_running;
    }
    pool_start(dir);
    if (pthread_create(&dir->flusher, NULL, flusher_main, dir) != 0) {
        pool_stop(dir);
        err = RN_ERR_IO;
        goto fail_running;
    }
    if (pthread_create(&dir->maint, NULL, maint_main, dir) != 0) {
        pthread_mutex_lock(&dir->flush_lock);
        dir->stopping = true;
        pthread_cond_signal(&dir->flush_cond);
        pthread_mutex_unlock(&dir->flush_lock);
        pthread_join(dir->flusher, NULL);
        pool_stop(dir);
        err = RN_ERR_IO;
        goto fail_running;
    }
    *out = dir;
    return RN_OK;

fail:
    for (size_t i = 0; i < n; i++)
        if (logs[i]) rn__log_free(logs[i]);
    free(logs);
    free(hints);
    free_checkpoint(&rp);
    free_checkpoint(&ls);
    free_checkpoint(&hw);
fail_running: {
    const char *k;
    void *v;
    for (size_t it = 0; rn_map_next(&dir->logs, &it, &k, &v);) rn__log_free(v);
}
    rn_map_free(&dir->logs);
    rn__filecache_destroy(&dir->cache);
    free(dir->path);
    free(dir);
    return err;
}

rn_log_t *rn_logdir_find(rn_logdir_t *dir, const char *topic, int32_t partition) {
    char key[512];
    int kl = snprintf(key, sizeof(key), "%s-%d", topic, partition);
    if (kl <= 0 || (size_t)kl >= sizeof(key)) return NULL;
    pthread_mutex_lock(&dir->lock);
    rn_log_t *l = rn_map_get(&dir->logs, key, (size_t)kl);
    pthread_mutex_unlock(&dir->lock);
    return l;
}

void rn_logdir_foreach(rn_logdir_t *dir, void (*fn)(void *arg, rn_log_t *log), void *arg) {
    log_list_t l = snapshot_logs(dir);
    for (size_t i = 0; i < l.n; i++) fn(arg, l.v[i]);
    release_logs(&l);
}

rn_err_t rn_logdir_create_log(rn_logdir_t *dir, const char *topic, int32_t partition, const rn_log_config_t *cfg,
                              rn_log_t **out) {
    *out = NULL;
    if (atomic_load(&dir->offline)) return RN_ERR_KAFKA_STORAGE_ERROR;
    if (!valid_topic(topic) || partition < 0) return RN_ERR_INVALID_TOPIC_EXCEPTION;
    char key[512];
    int kl = snprintf(key, sizeof(key), "%s-%d", topic, partition);
    pthread_mutex_lock(&dir->lock);
    rn_log_t *log = rn_map_get(&dir->logs, key, (size_t)kl);
    if (log) {
        pthread_mutex_unlock(&dir->lock);
        *out = log;
        return RN_ERR_EXISTS;
    }
    rn_err_t err = RN_OK;
    log = rn__log_new(dir, topic, partition, cfg);
    if (!log) {
        err = RN_ERR_NOMEM;
        goto out;
    }
    rn__recover_hints_t hints = {0};
    if (mkdir(log->path, 0755) == 0) {
        hints.fresh = true;
    } else if (errno != EEXIST) {
        RN_ERROR("log", "mkdir(%s) failed: %s", log->path, strerror(errno));
        err = RN_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    err = rn__log_load(log, &hints); /* empty: creates the first segment; leftovers: recovered */
    if (err) {
        err = RN_ERR_KAFKA_STORAGE_ERROR;
        goto out;
    }
    if (!rn_map_put(&dir->logs, key, (size_t)kl, log)) {
        err = RN_ERR_NOMEM;
        goto out;
    }
    rn__logdir_mark_dir_dirty(dir, log, true);
    *out = log;
out:
    pthread_mutex_unlock(&dir->lock);
    if (err && log) rn__log_free(log);
    return err;
}

rn_err_t rn_logdir_delete_log(rn_logdir_t *dir, rn_log_t *log) {
    char key[512];
    int kl = snprintf(key, sizeof(key), "%s-%d", log->topic, log->partition);
    pthread_mutex_lock(&dir->lock);
    rn_log_t *found = rn_map_get(&dir->logs, key, (size_t)kl);
    if (found != log) {
        pthread_mutex_unlock(&dir->lock);
        return RN_ERR_NOT_FOUND;
    }
    rn_map_del(&dir->logs, key, (size_t)kl);
    pthread_mutex_unlock(&dir->lock);

    pthread_rwlock_wrlock(&log->lock);
    log->deleted = true;
    if (log->nsegs > 0) rn__segment_prealloc_forget(log, rn__log_active(log)); /* out of the dir's budget */
    for (int32_t i = 0; i < log->nsegs; i++)
        for (int k = 0; k < RN__F_COUNT; k++) rn__filecache_drop(&dir->cache, &log->segs[i]->files[k]);
    char gone[4096];
    snprintf(gone, sizeof(gone), "%s.%lld-delete", log->path, (long long)rn_clock_mono_ns());
    rn_err_t err = RN_OK;
    if (rename(log->path, gone) < 0) {
        RN_ERROR("log", "rename(%s) failed: %s", log->path, strerror(errno));
        err = RN_ERR_KAFKA_STORAGE_ERROR;
    }
    pthread_rwlock_unlock(&log->lock);
    if (!err) {
        if (rn__fsync_dir(dir->path) < 0) RN_WARN("log", "fsync(%s) failed: %s", dir->path, strerror(errno));
        remove_tree(gone); /* in-flight reads keep their open files */
    }
    rn_log_release(log); /* the dir's reference */
    return err;
}

/* ---- maintenance ------------------------------------------------------------------- */

static void maintain(rn_logdir_t *dir, bool force) {
    pthread_mutex_lock(&dir->maint_run_lock);
    int64_t now = rn_clock_mono_ms(), wall = rn_clock_wall_ms();
    log_list_t logs = snapshot_logs(dir);
    bool offline = atomic_load(&dir->offline);
    if (!offline && (force || now - dir->last_retention_ms >= dir->cfg.retention_check_interval_ms)) {
        dir->last_retention_ms = now;
        for (size_t i = 0; i < logs.n; i++) {
            rn__log_retention(logs.v[i], wall);
            rn__log_rebuild_bad_indexes(logs.v[i]);
        }
    }
    if (!offline && (force || now - dir->last_clean_ms >= dir->cfg.cleaner_backoff_ms)) {
        dir->last_clean_ms = now;
        for (size_t i = 0; i < logs.n; i++)
            if (logs.v[i]->cfg.cleanup_policy & RN_CLEANUP_COMPACT)
                rn__log_compact(logs.v[i], wall, dir->cfg.cleaner_dedupe_buffer_bytes);
    }
    if (!offline && (force || now - dir->last_checkpoint_ms >= dir->cfg.checkpoint_interval_ms)) {
        dir->last_checkpoint_ms = dir->last_hw_checkpoint_ms = now;
        if (write_checkpoints(dir, &logs, false) != RN_OK) RN_WARN("log", "%s: writing checkpoints failed", dir->path);
    } else if (!offline && now - dir->last_hw_checkpoint_ms >= dir->cfg.hw_checkpoint_interval_ms) {
        dir->last_hw_checkpoint_ms = now;
        if (write_hw_checkpoint(dir, &logs) != RN_OK) RN_WARN("log", "%s: writing high watermarks failed", dir->path);
    }
    release_logs(&logs);
    pthread_mutex_unlock(&dir->maint_run_lock);
}

void rn_logdir_maintain(rn_logdir_t *dir) { maintain(dir, true); }

static void *maint_main(void *arg) {
    rn_logdir_t *dir = arg;
    int64_t tick = dir->cfg.retention_check_interval_ms;
    if (dir->cfg.cleaner_backoff_ms < tick) tick = dir->cfg.cleaner_backoff_ms;
    if (dir->cfg.checkpoint_interval_ms < tick) tick = dir->cfg.checkpoint_interval_ms;
    if (dir->cfg.hw_checkpoint_interval_ms > 0 && dir->cfg.hw_checkpoint_interval_ms < tick)
        tick = dir->cfg.hw_checkpoint_interval_ms;
    if (tick < 10) tick = 10;
    pthread_mutex_lock(&dir->maint_lock);
    while (!dir->maint_stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += tick / 1000;
        ts.tv_nsec += (tick % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&dir->maint_cond, &dir->maint_lock, &ts);
        if (dir->maint_stopping) break;
        pthread_mutex_unlock(&dir->maint_lock);
        maintain(dir, false);
        pthread_mutex_lock(&dir->maint_lock);
    }
    pthread_mutex_unlock(&dir->maint_lock);
    return NULL;
}

/* ---- close ---------------------------------------------------------------------------- */

static void free_dir(rn_logdir_t *dir);

void rn__logdir_crash(rn_logdir_t *dir) {
    pthread_mutex_lock(&dir->maint_lock);
    dir->maint_stopping = true;
    pthread_cond_signal(&dir->maint_cond);
    pthread_mutex_unlock(&dir->maint_lock);
    pthread_join(dir->maint, NULL);
    pthread_mutex_lock(&dir->flush_lock);
    dir->stopping = true;
    pthread_cond_signal(&dir->flush_cond);
    pthread_mutex_unlock(&dir->flush_lock);
    pthread_join(dir->flusher, NULL);
    pool_stop(dir);
    free_dir(dir);
}

void rn_logdir_close(rn_logdir_t *dir) {
    if (!dir) return;
    pthread_mutex_lock(&dir->maint_lock);
    dir->maint_stopping = true;
    pthread_cond_signal(&dir->maint_cond);
    pthread_mutex_unlock(&dir->maint_lock);
    pthread_join(dir->maint, NULL);

    /* Final rounds: everything registered gets synced, then the flusher stops. */
    pthread_mutex_lock(&dir->flush_lock);
    dir->flush_all = true;
    dir->stopping = true;
    pthread_cond_signal(&dir->flush_cond);
    pthread_mutex_unlock(&dir->flush_lock);
    pthread_join(dir->flusher, NULL);
    pool_stop(dir);

    log_list_t logs = snapshot_logs(dir);
    bool ok = !atomic_load(&dir->offline);
    for (size_t i = 0; ok && i < logs.n; i++)
        if (rn__log_close_clean(logs.v[i]) != RN_OK) ok = false;
    ok = ok && !atomic_load(&dir->offline);
    char path[4096];
    if (ok && write_checkpoints(dir, &logs, true) == RN_OK) {
        snprintf(path, sizeof(path), "%s/" CLEAN_MARKER, dir->path);
        if (rn__write_file_atomic(path, "", 0, true) != RN_OK) RN_WARN("log", "%s: writing the clean marker failed", dir->path);
    } else {
        RN_WARN("log", "%s: not a clean shutdown; the next open recovers", dir->path);
    }
    release_logs(&logs);
    free_dir(dir);
}

static void free_dir(rn_logdir_t *dir) {
    /* Anything still marked dirty (close_clean synced it itself; a crash drops it). */
    for (rn_log_t *l = dir->dirty_head, *next; l; l = next) {
        next = l->dirty_next;
        for (int32_t j = 0; j < l->ndirty_files; j++) rn_fileref_release(l->dirty_files[j]);
        l->ndirty_files = 0;
        l->in_dirty = false;
        rn_log_release(l);
    }
    dir->dirty_head = NULL;
    const char *k;
    void *v;
    for (size_t it = 0; rn_map_next(&dir->logs, &it, &k, &v);) rn_log_release(v);
    rn_map_free(&dir->logs);
    rn__filecache_destroy(&dir->cache);
    pthread_mutex_destroy(&dir->lock);
    pthread_mutex_destroy(&dir->flush_lock);
    pthread_cond_destroy(&dir->flush_cond);
    pthread_cond_destroy(&dir->round_cond);
    pthread_mutex_destroy(&dir->maint_lock);
    pthread_cond_destroy(&dir->maint_cond);
    pthread_mutex_destroy(&dir->maint_run_lock);
    free(dir->path);
    free(dir);
}
