/*
 * test_log_util.h — helpers for the storage engine tests: temp dirs, batch
 * building, reading back a returned file region.
 */
#ifndef TEST_LOG_UTIL_H
#define TEST_LOG_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_batch.h"
#include "rn_clock.h"
#include "rn_log.h"
#include "rn_log_internal.h"

static char tl_dir[256];

static const char *tl_mkdtemp(void) {
    snprintf(tl_dir, sizeof(tl_dir), "/tmp/rn_test_log_XXXXXX");
    if (!mkdtemp(tl_dir)) abort();
    return tl_dir;
}

static inline void tl_rmrf(const char *path) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", path);
}

static inline void tl_dir_config(rn_logdir_config_t *c, const char *path) {
    rn_logdir_config_default(c);
    c->path = path;
    c->retention_check_interval_ms = 3600 * 1000; /* tests call rn_logdir_maintain */
    c->cleaner_backoff_ms = 3600 * 1000;
    c->checkpoint_interval_ms = 3600 * 1000;
    c->flush_scheduler_interval_ms = 20;
}

typedef struct {
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int codec;
} tl_batch_opts_t;

/* Appends one batch of n records (key "k<key_base+i>", value of vlen bytes) to out. */
static inline void tl_batch(rn_buf_t *out, int n, int64_t ts, int key_base, int vlen, const tl_batch_opts_t *o) {
    key_base %= 1000000;
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, out, 0, o ? o->codec : 0, 64 << 20);
    if (o && o->producer_id >= 0) {
        b.producer_id = o->producer_id;
        b.producer_epoch = o->producer_epoch;
        b.base_sequence = o->base_sequence;
    }
    char key[32];
    char *val = malloc((size_t)vlen + 1);
    for (int i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof(key), "k%d", key_base + i);
        for (int j = 0; j < vlen; j++) val[j] = (char)('a' + (key_base + i + j) % 26);
        rn_batch_builder_add(&b, ts + i, (rn_bytes_t){(const uint8_t *)key, kl},
                             (rn_bytes_t){(const uint8_t *)val, vlen}, 0, NULL, NULL);
    }
    free(val);
    if (rn_batch_builder_finish(&b) != RN_OK) abort();
}

static inline rn_err_t tl_append(rn_log_t *log, int n, int64_t ts, int vlen, rn_append_result_t *res) {
    rn_buf_t b;
    rn_buf_init(&b, 64 << 20);
    tl_batch(&b, n, ts, 0, vlen, NULL);
    rn_append_opts_t o = {.leader_epoch = 0};
    rn_err_t err = rn_log_append(log, b.data, b.len, &o, res);
    rn_buf_free(&b);
    return err;
}

/* Reads a returned region into memory (caller frees). */
static uint8_t *tl_read_region(const rn_log_read_t *r) {
    uint8_t *p = malloc((size_t)r->len + 1);
    ssize_t got = pread(r->file->fd, p, (size_t)r->len, (off_t)r->file_pos);
    if (got != r->len) abort();
    return p;
}

/* The whole log, every batch from the log start, as one malloc'd byte string. */
static inline uint8_t *tl_log_bytes(rn_log_t *log, size_t *len) {
    rn_buf_t all;
    rn_buf_init(&all, 256 << 20);
    for (int64_t off = rn_log_start_offset(log); off < rn_log_end_offset(log);) {
        rn_log_read_t r;
        if (rn_log_read(log, off, 1 << 20, true, INT64_MAX, &r) != RN_OK || r.len <= 0) abort();
        uint8_t *d = tl_read_region(&r);
        rn_buf_put(&all, d, (size_t)r.len);
        for (size_t pos = 0; pos < (size_t)r.len;) {
            rn_batch_header_t h;
            rn_batch_header_decode(d + pos, &h);
            off = rn_batch_last_offset(&h) + 1;
            pos += rn_batch_total_size(&h);
        }
        free(d);
        rn_fileref_release(r.file);
    }
    if (rn_buf_err(&all)) abort();
    *len = all.len;
    return all.data;
}

/* Every batch from the log start, read through rn_log_read: checks that offsets
 * follow each other and CRCs match; returns the offset after the last batch, or -1. */
static inline int64_t tl_read_through(rn_log_t *log) {
    size_t len;
    uint8_t *d = tl_log_bytes(log, &len);
    int64_t offset = rn_log_start_offset(log);
    for (size_t pos = 0; pos < len && offset >= 0;) {
        rn_batch_header_t h;
        rn_batch_header_decode(d + pos, &h);
        bool ok = h.base_offset == offset && rn_batch_compute_crc(d + pos, rn_batch_total_size(&h)) == h.crc;
        offset = ok ? rn_batch_last_offset(&h) + 1 : -1;
        pos += rn_batch_total_size(&h);
    }
    free(d);
    return offset;
}

/* Waits (bounded) until the dir's synced ticket reaches t. */
static inline bool tl_wait_ticket(rn_logdir_t *dir, uint64_t t) {
    for (int i = 0; i < 5000; i++) {
        if (rn_logdir_synced_ticket(dir) >= t) return true;
        usleep(1000);
    }
    return false;
}

static inline int64_t tl_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

#endif
