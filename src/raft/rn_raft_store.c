/*
 * rn_raft_store.c — Raft's log, term/vote and snapshot in files (see rn_raft_store.h).
 *
 * Three files in the directory, all integers big-endian:
 *
 *   raft-log        "RNRAFTL1", then one record per entry, appended:
 *                     u32 body length | u32 CRC-32C of the body |
 *                     body: u64 index | u64 term | u8 type | data
 *                   indexes consecutive, terms non-decreasing. Written with
 *                   pwrite at the end, made durable by fdatasync (sync); a
 *                   truncation is an ftruncate, durable with the next sync.
 *   raft-state      "RNRAFTS1" | u64 term | i32 vote | u32 CRC-32C of the 20 bytes before
 *   raft-snapshot   "RNRAFTP2" | u64 index | u64 term | u32 voter count | count × i32 |
 *                   u32 learner count | count × i32 |
 *                   u64 data length | data | u32 CRC-32C of everything before
 *
 * raft-state and raft-snapshot are replaced atomically (write "<name>.tmp",
 * fdatasync, rename, fsync the directory), so they are either old or new,
 * never torn. After a snapshot the log is rewritten the same way with only the
 * entries after it (or none, when the snapshot replaces the log).
 *
 * Recovery at open:
 *
 *   found                                         action
 *   ----------------------------------------------------------------------------
 *   "<name>.tmp"                                  an interrupted replacement: deleted
 *   no raft-state                                 term 0, no vote
 *   raft-state or raft-snapshot not exactly       RN_ERR_CORRUPT (they are never torn,
 *     their format or CRC                           so this is damage, not a crash)
 *   no raft-log, or shorter than its magic        created empty
 *   raft-log with another magic                   RN_ERR_CORRUPT
 *   a record cut short, over the entry limit,     the log is cut there, with all that
 *     failing its CRC, out of index order or        follows: an unsynced tail torn by a
 *     going back in term                            crash
 *   (always)                                      the log is fdatasync'ed before use
 *   entries at or below the snapshot index        dropped (a compaction was interrupted)
 *   an entry at the snapshot index with another   the whole log dropped (a snapshot
 *     term, or a gap after the snapshot             replacing the log was interrupted)
 *
 * A record damaged in the middle of synced data is handled like a torn tail
 * (the log is cut there): a crash tears only unsynced writes, but their order
 * on disk is not guaranteed, so garbage may be followed by valid records.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_crc32c.h"
#include "rn_log_internal.h" /* small-file helpers: atomic replace, read, pwrite, fdatasync */
#include "rn_logging.h"
#include "rn_raft_store.h"

#define LOG_MAGIC "RNRAFTL1"
#define STATE_MAGIC "RNRAFTS1"
#define SNAP_MAGIC "RNRAFTP2"
#define MAGIC_LEN 8
#define REC_HDR 8  /* length + crc */
#define BODY_HDR 17 /* index + term + type */
#define STATE_LEN 24

struct rn_raft_store {
    rn_raft_store_limits_t lim;
    char *log_path, *state_path, *snap_path;
    int fd;
    uint64_t end;    /* log file size */
    uint64_t first;  /* index of the first record (next index when empty) */
    uint64_t *pos;   /* position of each record */
    size_t n, cap;
    uint64_t last_term;
    uint64_t term;
    int32_t vote;
    bool has_snap;
    rn_raft_snap_meta_t snap;
    /* what open read, kept until boot_done; stale once anything is written */
    bool stale;
    char *snap_file;
    const uint8_t *snap_data;
    size_t snap_len;
    char *log_file;
    rn_raft_entry_t *boot_ents;
    size_t n_boot;
};

rn_raft_store_limits_t rn_raft_store_limits(const rn_raft_config_t *cfg) {
    return (rn_raft_store_limits_t){.max_log_file_bytes = 4 * cfg->max_log_bytes + 4096,
                                    .max_entry_bytes = cfg->max_entry_bytes,
                                    .max_snapshot_bytes = cfg->max_snapshot_bytes};
}

uint64_t rn_raft_store_first_index(const rn_raft_store_t *st) { return st->first; }
uint64_t rn_raft_store_last_index(const rn_raft_store_t *st) { return st->first + st->n - 1; }

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool push_pos(rn_raft_store_t *st, uint64_t pos) {
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        uint64_t *p = realloc(st->pos, cap * sizeof(*p));
        if (!p) return false;
        st->pos = p;
        st->cap = cap;
    }
    st->pos[st->n++] = pos;
    return true;
}

static rn_err_t open_log_fd(rn_raft_store_t *st) {
    if (st->fd >= 0) close(st->fd);
    st->fd = open(st->log_path, O_RDWR | O_CLOEXEC);
    if (st->fd < 0) {
        RN_ERROR("raft", "open(%s) failed: %s", st->log_path, strerror(errno));
        return RN_ERR_IO;
    }
    return RN_OK;
}

/* Replaces the log file with its records from index `from` on (none if from > last). */
static rn_err_t rewrite_log(rn_raft_store_t *st, uint64_t from, uint64_t next_if_empty) {
    uint64_t last = rn_raft_store_last_index(st);
    bool keep = st->n > 0 && from >= st->first && from <= last;
    uint64_t start = keep ? st->pos[from - st->first] : st->end;
    size_t tail = (size_t)(st->end - start);
    uint8_t *buf = malloc(MAGIC_LEN + tail);
    if (!buf) return RN_ERR_NOMEM;
    memcpy(buf, LOG_MAGIC, MAGIC_LEN);
    size_t got = 0;
    while (got < tail) {
        ssize_t r = pread(st->fd, buf + MAGIC_LEN + got, tail - got, (off_t)(start + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            RN_ERROR("raft", "reading %s failed: %s", st->log_path, r < 0 ? strerror(errno) : "short file");
            free(buf);
            return RN_ERR_IO;
        }
        got += (size_t)r;
    }
    rn_err_t err = rn__write_file_atomic(st->log_path, buf, MAGIC_LEN + tail, true);
    free(buf);
    st->stale = true;
    if (err) return err;
    if (keep) {
        size_t k = (size_t)(from - st->first);
        for (size_t i = k; i < st->n; i++) st->pos[i - k] = st->pos[i] - start + MAGIC_LEN;
        st->n -= k;
        st->first = from;
    } else {
        st->n = 0;
        st->first = next_if_empty;
    }
    st->end = MAGIC_LEN + tail;
    return open_log_fd(st);
}

/* ---- loading --------------------------------------------------------------------- */

static rn_err_t load_state(rn_raft_store_t *st) {
    char *b;
    size_t len;
    rn_err_t err = rn__read_file(st->state_path, 4096, &b, &len);
    if (err == RN_ERR_NOT_FOUND) {
        st->term = 0;
        st->vote = RN_RAFT_NO_NODE;
        return RN_OK;
    }
    if (err) return err;
    const uint8_t *p = (const uint8_t *)b;
    if (len != STATE_LEN || memcmp(p, STATE_MAGIC, MAGIC_LEN) || rn_crc32c(0, p, 20) != rn_load_be32(p + 20)) {
        RN_ERROR("raft", "%s is damaged", st->state_path);
        free(b);
        return RN_ERR_CORRUPT;
    }
    st->term = rn_load_be64(p + 8);
    st->vote = (int32_t)rn_load_be32(p + 16);
    free(b);
    return RN_OK;
}

static rn_err_t load_snapshot(rn_raft_store_t *st) {
    char *b;
    size_t len;
    rn_err_t err = rn__read_file(st->snap_path, (size_t)st->lim.max_snapshot_bytes + 4096, &b, &len);
    if (err == RN_ERR_NOT_FOUND) return RN_OK;
    if (err) return err;
    const uint8_t *p = (const uint8_t *)b;
    rn_reader_t rd;
    rn_reader_init(&rd, p, len);
    rn_reader_take(&rd, MAGIC_LEN);
    st->snap.index = (uint64_t)rn_reader_i64(&rd);
    st->snap.term = (uint64_t)rn_reader_i64(&rd);
    for (int k = 0; k < 2; k++) {
        rn_raft_voters_t *v = k ? &st->snap.learners : &st->snap.voters;
        uint32_t n = rn_reader_u32(&rd);
        if (n > RN_RAFT_MAX_VOTERS) rn_reader_fail(&rd, RN_ERR_MALFORMED);
        v->count = rn_reader_err(&rd) ? 0 : n;
        for (uint32_t i = 0; i < v->count; i++) v->ids[i] = rn_reader_i32(&rd);
    }
    if (!rn_raft_members_valid(&st->snap.voters, &st->snap.learners)) rn_reader_fail(&rd, RN_ERR_MALFORMED);
    uint64_t dlen = (uint64_t)rn_reader_i64(&rd);
    if (dlen > rn_reader_remaining(&rd)) rn_reader_fail(&rd, RN_ERR_TRUNCATED);
    st->snap_data = rn_reader_take(&rd, (size_t)dlen);
    st->snap_len = (size_t)dlen;
    size_t body = rd.pos;
    uint32_t crc = rn_reader_u32(&rd);
    if (rn_reader_err(&rd) || rn_reader_remaining(&rd) || memcmp(p, SNAP_MAGIC, MAGIC_LEN) ||
        rn_crc32c(0, p, body) != crc) {
        RN_ERROR("raft", "%s is damaged", st->snap_path);
        free(b);
        return RN_ERR_CORRUPT;
    }
    st->snap_file = b;
    st->has_snap = true;
    return RN_OK;
}

/* Scans the records of a log file read whole; returns where the valid ones end. */
static uint64_t scan_log(rn_raft_store_t *st, const uint8_t *p, size_t len) {
    uint64_t at = MAGIC_LEN;
    while (len - at >= REC_HDR) {
        uint32_t blen = rn_load_be32(p + at);
        if (blen < BODY_HDR || blen - BODY_HDR > st->lim.max_entry_bytes || blen > len - at - REC_HDR) break;
        const uint8_t *body = p + at + REC_HDR;
        if (rn_crc32c(0, body, blen) != rn_load_be32(p + at + 4)) break;
        uint64_t index = rn_load_be64(body), term = rn_load_be64(body + 8);
        if (body[16] > RN_RAFT_ENTRY_NOOP || index == 0) break;
        if (st->n ? index != rn_raft_store_last_index(st) + 1 || term < st->last_term : false) break;
        if (!st->n) st->first = index;
        if (!push_pos(st, at)) break;
        st->last_term = term;
        at += REC_HDR + blen;
    }
    return at;
}

static rn_err_t load_log(rn_raft_store_t *st) {
    char *b = NULL;
    size_t len = 0;
    rn_err_t err = rn__read_file(st->log_path, st->lim.max_log_file_bytes, &b, &len);
    if (err == RN_ERR_LIMIT) RN_ERROR("raft", "%s is larger than %llu bytes", st->log_path,
                                      (unsigned long long)st->lim.max_log_file_bytes);
    if (err && err != RN_ERR_NOT_FOUND) return err;
    st->first = 1;
    if (err == RN_ERR_NOT_FOUND || len < MAGIC_LEN) {
        free(b);
        st->end = 0;
        st->log_file = NULL;
        err = rn__write_file_atomic(st->log_path, LOG_MAGIC, MAGIC_LEN, true);
        st->end = MAGIC_LEN;
        return err ? err : open_log_fd(st);
    }
    if (memcmp(b, LOG_MAGIC, MAGIC_LEN)) {
        RN_ERROR("raft", "%s is not a raft log", st->log_path);
        free(b);
        return RN_ERR_CORRUPT;
    }
    st->log_file = b;
    st->end = scan_log(st, (const uint8_t *)b, len);
    if ((err = open_log_fd(st))) return err;
    if (st->end < len) {
        RN_WARN("raft", "%s: cutting %llu bytes of torn or damaged tail after index %llu", st->log_path,
                (unsigned long long)(len - st->end), (unsigned long long)rn_raft_store_last_index(st));
        if (ftruncate(st->fd, (off_t)st->end) < 0) {
            RN_ERROR("raft", "cutting %s failed: %s", st->log_path, strerror(errno));
            return RN_ERR_IO;
        }
    }
    /* what a crashed process left in the page cache is acknowledged as durable
     * once loaded (rn_raft_new): make it so before */
    return rn_raft_store_sync(st);
}

static uint64_t rec_term(const rn_raft_store_t *st, uint64_t index) {
    return rn_load_be64((const uint8_t *)st->log_file + st->pos[index - st->first] + REC_HDR + 8);
}

/* Brings the log in line with the snapshot after an interrupted compaction or reset. */
static rn_err_t reconcile(rn_raft_store_t *st) {
    if (!st->has_snap) return RN_OK;
    uint64_t si = st->snap.index, last = rn_raft_store_last_index(st);
    if (st->n == 0) {
        st->first = si + 1;
        return RN_OK;
    }
    bool gap = st->first > si + 1;
    bool other = st->first <= si && si <= last && rec_term(st, si) != st->snap.term;
    if (gap || other) {
        RN_WARN("raft", "%s does not continue the snapshot at %llu: dropped", st->log_path, (unsigned long long)si);
        return rewrite_log(st, last + 1, si + 1);
    }
    if (st->first <= si) return rewrite_log(st, si + 1, si + 1);
    return RN_OK;
}

rn_err_t rn_raft_store_open(const char *dir, const rn_raft_store_limits_t *lim, rn_raft_store_t **out) {
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        RN_ERROR("raft", "mkdir(%s) failed: %s", dir, strerror(errno));
        return RN_ERR_IO;
    }
    rn_raft_store_t *st = calloc(1, sizeof(*st));
    if (!st) return RN_ERR_NOMEM;
    st->lim = *lim;
    st->fd = -1;
    st->log_path = path_join(dir, "raft-log");
    st->state_path = path_join(dir, "raft-state");
    st->snap_path = path_join(dir, "raft-snapshot");
    rn_err_t err = RN_ERR_NOMEM;
    if (!st->log_path || !st->state_path || !st->snap_path) goto fail;
    const char *paths[] = {st->log_path, st->state_path, st->snap_path};
    for (int i = 0; i < 3; i++) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", paths[i]);
        unlink(tmp);
    }
    if ((err = load_state(st)) || (err = load_snapshot(st)) || (err = load_log(st)) || (err = reconcile(st)))
        goto fail;
    *out = st;
    return RN_OK;
fail:
    rn_raft_store_close(st);
    return err;
}

void rn_raft_store_close(rn_raft_store_t *st) {
    if (!st) return;
    rn_raft_store_boot_done(st);
    if (st->fd >= 0) close(st->fd);
    free(st->pos);
    free(st->log_path);
    free(st->state_path);
    free(st->snap_path);
    free(st);
}

rn_err_t rn_raft_store_boot(rn_raft_store_t *st, rn_raft_boot_t *out) {
    memset(out, 0, sizeof(*out));
    out->term = st->term;
    out->vote = st->vote;
    out->has_snapshot = st->has_snap;
    out->snap = st->snap;
    if (st->stale || (st->n && !st->log_file)) {
        /* written since open: read the files again (positions are current) */
        rn_raft_store_boot_done(st);
        size_t len = 0;
        rn_err_t err = load_snapshot(st);
        if (!err && st->n) err = rn__read_file(st->log_path, st->lim.max_log_file_bytes, &st->log_file, &len);
        if (!err && st->n && len < st->end) err = RN_ERR_CORRUPT;
        if (err) return err;
        st->stale = false;
    }
    if (st->has_snap) {
        out->snap_data = st->snap_data;
        out->snap_len = st->snap_len;
    }
    if (st->n == 0) return RN_OK;
    free(st->boot_ents);
    st->boot_ents = calloc(st->n, sizeof(*st->boot_ents));
    if (!st->boot_ents) return RN_ERR_NOMEM;
    const char *b = st->log_file;
    for (size_t i = 0; i < st->n; i++) {
        const uint8_t *rec = (const uint8_t *)b + st->pos[i];
        uint32_t blen = rn_load_be32(rec);
        const uint8_t *body = rec + REC_HDR;
        st->boot_ents[i] = (rn_raft_entry_t){.index = rn_load_be64(body), .term = rn_load_be64(body + 8),
                                             .type = body[16], .data = body + BODY_HDR, .len = blen - BODY_HDR};
    }
    out->entries = st->boot_ents;
    out->n_entries = st->n;
    return RN_OK;
}

void rn_raft_store_boot_done(rn_raft_store_t *st) {
    free(st->boot_ents);
    free(st->snap_file);
    free(st->log_file);
    st->boot_ents = NULL;
    st->snap_file = st->log_file = NULL;
    st->snap_data = NULL;
}

/* ---- writing ------------------------------------------------------------------------ */

rn_err_t rn_raft_store_append(rn_raft_store_t *st, const rn_raft_entry_t *es, size_t n) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (es[i].index != st->first + st->n + i || es[i].len > st->lim.max_entry_bytes) return RN_ERR_INVALID_ARG;
        bytes += REC_HDR + BODY_HDR + es[i].len;
    }
    if (st->end + bytes > st->lim.max_log_file_bytes) {
        RN_ERROR("raft", "%s would grow past %llu bytes", st->log_path, (unsigned long long)st->lim.max_log_file_bytes);
        return RN_ERR_LIMIT;
    }
    st->stale = true;
    rn_buf_t b;
    rn_buf_init(&b, bytes);
    for (size_t i = 0; i < n; i++) {
        size_t at = rn_buf_put_u32(&b, BODY_HDR + es[i].len);
        rn_buf_put_u32(&b, 0);
        rn_buf_put_i64(&b, (int64_t)es[i].index);
        rn_buf_put_i64(&b, (int64_t)es[i].term);
        rn_buf_put_i8(&b, (int8_t)es[i].type);
        rn_buf_put(&b, es[i].data, es[i].len);
        if (!b.err) rn_buf_patch_u32(&b, at + 4, rn_crc32c(0, b.data + at + REC_HDR, BODY_HDR + es[i].len));
    }
    rn_err_t err = rn_buf_err(&b);
    if (!err && rn__pwrite_all(st->fd, b.data, b.len, (int64_t)st->end) < 0) {
        RN_ERROR("raft", "writing %s failed: %s", st->log_path, strerror(errno));
        err = RN_ERR_IO;
    }
    for (size_t i = 0, at = 0; !err && i < n; i++) {
        if (!push_pos(st, st->end + at)) err = RN_ERR_NOMEM;
        at += REC_HDR + BODY_HDR + es[i].len;
    }
    if (!err) st->end += b.len;
    rn_buf_free(&b);
    return err;
}

rn_err_t rn_raft_store_truncate(rn_raft_store_t *st, uint64_t from) {
    if (st->n == 0 || from > rn_raft_store_last_index(st)) return RN_OK;
    if (from < st->first) return RN_ERR_INVALID_ARG;
    uint64_t at = st->pos[from - st->first];
    st->stale = true;
    if (ftruncate(st->fd, (off_t)at) < 0) {
        RN_ERROR("raft", "truncating %s failed: %s", st->log_path, strerror(errno));
        return RN_ERR_IO;
    }
    st->n = (size_t)(from - st->first);
    st->end = at;
    return RN_OK;
}

rn_err_t rn_raft_store_sync(rn_raft_store_t *st) {
    if (rn__fdatasync(st->fd) < 0) {
        RN_ERROR("raft", "fdatasync(%s) failed: %s", st->log_path, strerror(errno));
        return RN_ERR_IO;
    }
    return RN_OK;
}

rn_err_t rn_raft_store_save_hardstate(rn_raft_store_t *st, uint64_t term, int32_t vote) {
    uint8_t b[STATE_LEN];
    memcpy(b, STATE_MAGIC, MAGIC_LEN);
    rn_store_be64(b + 8, term);
    rn_store_be32(b + 16, (uint32_t)vote);
    rn_store_be32(b + 20, rn_crc32c(0, b, 20));
    rn_err_t err = rn__write_file_atomic(st->state_path, b, sizeof(b), true);
    if (!err) {
        st->term = term;
        st->vote = vote;
    }
    return err;
}

rn_err_t rn_raft_store_save_snapshot(rn_raft_store_t *st, const rn_raft_snap_meta_t *meta, const uint8_t *data,
                                     size_t len, bool reset_log) {
    if (len > st->lim.max_snapshot_bytes || !rn_raft_members_valid(&meta->voters, &meta->learners))
        return RN_ERR_INVALID_ARG;
    rn_buf_t b;
    rn_buf_init(&b, 64 + 8 * RN_RAFT_MAX_VOTERS + len);
    rn_buf_put(&b, SNAP_MAGIC, MAGIC_LEN);
    rn_buf_put_i64(&b, (int64_t)meta->index);
    rn_buf_put_i64(&b, (int64_t)meta->term);
    for (int k = 0; k < 2; k++) {
        const rn_raft_voters_t *v = k ? &meta->learners : &meta->voters;
        rn_buf_put_u32(&b, v->count);
        for (uint32_t i = 0; i < v->count; i++) rn_buf_put_i32(&b, v->ids[i]);
    }
    rn_buf_put_i64(&b, (int64_t)len);
    rn_buf_put(&b, data, len);
    if (!b.err) rn_buf_put_u32(&b, rn_crc32c(0, b.data, b.len));
    rn_err_t err = rn_buf_err(&b);
    if (!err) err = rn__write_file_atomic(st->snap_path, b.data, b.len, true);
    rn_buf_free(&b);
    st->stale = true;
    if (err) return err;
    st->has_snap = true;
    st->snap = *meta;
    /* the log keeps only what follows the snapshot */
    uint64_t last = rn_raft_store_last_index(st);
    if (reset_log || st->n == 0 || meta->index >= last) return rewrite_log(st, last + 1, meta->index + 1);
    if (meta->index >= st->first) return rewrite_log(st, meta->index + 1, meta->index + 1);
    return RN_OK;
}
