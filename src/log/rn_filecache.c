/*
 * rn_filecache.c — a bounded LRU of open segment files, and small file I/O helpers.
 *
 * A broker may hold 100,000 partitions, each with a few segments and three
 * files per segment; it cannot keep an fd open for each. Every segment file is
 * an rn__cfile_t embedded in its segment; while open it holds one reference to
 * an rn_fileref_t and sits on the dir's LRU list. Opening past max_open closes
 * the least recently used files (the cache's reference only: a Fetch response
 * or the flusher holding a retained reference keeps the fd until it is done).
 *
 * The cache lock only guards the list and the cfile pointers; open(2) runs
 * outside it, and a racing opener of the same cfile keeps the first winner.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_log_internal.h"
#include "rn_logging.h"

int (*rn__log_io_hook)(int op, int fd, size_t len);

void rn__filecache_init(rn__filecache_t *c, int max_open) {
    pthread_mutex_init(&c->lock, NULL);
    c->lru.next = c->lru.prev = &c->lru;
    c->lru.file = NULL;
    c->open_count = 0;
    c->max_open = max_open < 16 ? 16 : max_open;
}

void rn__filecache_destroy(rn__filecache_t *c) {
    /* Every segment drops its files before it is freed. */
    RN_ASSERT(c->open_count == 0);
    pthread_mutex_destroy(&c->lock);
}

static void lru_unlink(rn__cfile_t *cf) {
    cf->prev->next = cf->next;
    cf->next->prev = cf->prev;
    cf->prev = cf->next = NULL;
}

static void lru_push_front(rn__filecache_t *c, rn__cfile_t *cf) {
    cf->next = c->lru.next;
    cf->prev = &c->lru;
    c->lru.next->prev = cf;
    c->lru.next = cf;
}

rn_err_t rn__filecache_get(rn__filecache_t *c, rn__cfile_t *cf, const char *path, bool create, rn_fileref_t **out) {
    pthread_mutex_lock(&c->lock);
    if (cf->file) {
        rn_fileref_retain(cf->file);
        lru_unlink(cf);
        lru_push_front(c, cf);
        *out = cf->file;
        pthread_mutex_unlock(&c->lock);
        return RN_OK;
    }
    pthread_mutex_unlock(&c->lock);

    int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) {
        int e = errno;
        if (e != ENOENT) RN_ERROR("log", "open(%s) failed: %s", path, strerror(e));
        return e == ENOENT ? RN_ERR_NOT_FOUND : RN_ERR_IO;
    }
    rn_fileref_t *f = rn_fileref_new(fd);
    if (!f) {
        close(fd);
        return RN_ERR_NOMEM;
    }

    rn_fileref_t *victims[8];
    int nvictims = 0;
    pthread_mutex_lock(&c->lock);
    if (cf->file) { /* lost a race: use the winner's */
        rn_fileref_retain(cf->file);
        *out = cf->file;
        pthread_mutex_unlock(&c->lock);
        rn_fileref_release(f);
        return RN_OK;
    }
    cf->file = f;
    rn_fileref_retain(f);
    lru_push_front(c, cf);
    c->open_count++;
    while (c->open_count > c->max_open && nvictims < 8 && c->lru.prev != cf) {
        rn__cfile_t *v = c->lru.prev;
        lru_unlink(v);
        victims[nvictims++] = v->file;
        v->file = NULL;
        c->open_count--;
    }
    *out = f;
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < nvictims; i++) rn_fileref_release(victims[i]);
    return RN_OK;
}

void rn__filecache_drop(rn__filecache_t *c, rn__cfile_t *cf) {
    pthread_mutex_lock(&c->lock);
    rn_fileref_t *f = cf->file;
    if (f) {
        lru_unlink(cf);
        cf->file = NULL;
        c->open_count--;
    }
    pthread_mutex_unlock(&c->lock);
    rn_fileref_release(f);
}

int rn__filecache_open_count(rn__filecache_t *c) {
    pthread_mutex_lock(&c->lock);
    int n = c->open_count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* ---- I/O helpers ---------------------------------------------------------- */

ssize_t rn__pwrite_all(int fd, const void *p, size_t n, int64_t pos) {
    if (rn__log_io_hook) {
        int e = rn__log_io_hook(RN__IO_WRITE, fd, n);
        if (e) {
            errno = e;
            return -1;
        }
    }
    const uint8_t *b = p;
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, b + done, n - done, (off_t)(pos + (int64_t)done));
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

int rn__fdatasync(int fd) {
    if (rn__log_io_hook) {
        int e = rn__log_io_hook(RN__IO_FSYNC, fd, 0);
        if (e) {
            errno = e;
            return -1;
        }
    }
    return fdatasync(fd);
}

int rn__fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

rn_err_t rn__write_file_atomic(const char *path, const void *data, size_t len, bool sync) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) return RN_ERR_INVALID_ARG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        RN_ERROR("log", "open(%s) failed: %s", tmp, strerror(errno));
        return RN_ERR_IO;
    }
    if (rn__pwrite_all(fd, data, len, 0) < 0 || (sync && rn__fdatasync(fd) < 0)) {
        RN_ERROR("log", "writing %s failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return RN_ERR_IO;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        RN_ERROR("log", "rename(%s) failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return RN_ERR_IO;
    }
    if (sync) {
        char d[4096];
        snprintf(d, sizeof(d), "%s", path);
        if (rn__fsync_dir(dirname(d)) < 0) {
            RN_ERROR("log", "fsync(dir of %s) failed: %s", path, strerror(errno));
            return RN_ERR_IO;
        }
    }
    return RN_OK;
}

rn_err_t rn__read_file(const char *path, size_t max_bytes, char **out, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? RN_ERR_NOT_FOUND : RN_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size > max_bytes) {
        close(fd);
        return RN_ERR_LIMIT;
    }
    char *b = malloc((size_t)st.st_size + 1);
    if (!b) {
        close(fd);
        return RN_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    b[got] = 0;
    *out = b;
    *len = got;
    return RN_OK;
}
