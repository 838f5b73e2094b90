/*
 * rn_bytes.h — borrowed slices, an owned growable buffer, and a bounds-checked reader.
 *
 * rn_slice_t borrows memory; its owner states the lifetime at each use.
 * rn_str_t / rn_bytes_t are Kafka's nullable string and bytes: len == -1 means null.
 *
 * rn_buf_t owns a growable byte array bounded by `max` bytes. Every put returns
 * the position it wrote at, so lengths and CRCs can be patched afterwards. A write
 * past `max` (or a failed allocation) sets a sticky error that rn_buf_err()
 * reports once at the end; later writes are ignored.
 *
 * A buffer may also carry "splices": file regions (fd, position, length) that
 * belong between two memory positions. The network layer sends memory with
 * writev and splices with sendfile, so fetched log data never passes through
 * user space. rn_buf_total_len() counts both.
 *
 * rn_reader_t reads big-endian ints, varints and Kafka strings from a slice
 * with a sticky error flag: read everything, then check rn_reader_err() once.
 * A failed read returns zero values and never reads out of bounds.
 */
#ifndef RN_BYTES_H
#define RN_BYTES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_err.h"

typedef struct {
    const uint8_t *ptr;
    size_t len;
} rn_slice_t;

typedef struct {
    const char *ptr;
    int32_t len; /* -1: null */
} rn_str_t;

typedef struct {
    const uint8_t *ptr;
    int32_t len; /* -1: null */
} rn_bytes_t;

#define RN_STR_NULL ((rn_str_t){NULL, -1})
#define RN_STR_LIT(s) ((rn_str_t){(s), (int32_t)(sizeof(s) - 1)})
static inline rn_str_t rn_str_from_cstr(const char *s) {
    rn_str_t r = {s, -1};
    if (s) {
        size_t n = 0;
        while (s[n]) n++;
        r.len = (int32_t)n;
    }
    return r;
}
bool rn_str_eq(rn_str_t a, rn_str_t b);
bool rn_str_eq_cstr(rn_str_t a, const char *s);

/* A reference-counted open file, shared by a segment and in-flight responses. */
typedef struct rn_fileref {
    int fd;
    atomic_int refs;
} rn_fileref_t;

rn_fileref_t *rn_fileref_new(int fd); /* takes ownership of fd; refs = 1 */
void rn_fileref_retain(rn_fileref_t *f);
void rn_fileref_release(rn_fileref_t *f); /* closes fd at zero */

/* Kafka "records" field: memory bytes, or a region of a file (encode side). */
typedef struct {
    const uint8_t *ptr;
    int32_t len;         /* -1: null */
    rn_fileref_t *file;  /* when set, `len` bytes at `file_pos` are sent from the file */
    int64_t file_pos;
} rn_records_t;

typedef struct {
    size_t buf_pos; /* memory position the region comes before */
    rn_fileref_t *file;
    int64_t file_pos;
    size_t len;
} rn_buf_splice_t;

typedef struct rn_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* bound on len (memory only) */
    rn_err_t err;
    rn_buf_splice_t *splices;
    size_t nsplices;
    size_t splice_cap;
    size_t splice_bytes;
} rn_buf_t;

void rn_buf_init(rn_buf_t *b, size_t max);
void rn_buf_free(rn_buf_t *b); /* releases splice file refs too */
void rn_buf_reset(rn_buf_t *b); /* len = 0, drops splices, keeps memory */
static inline rn_err_t rn_buf_err(const rn_buf_t *b) { return b->err; }
static inline size_t rn_buf_total_len(const rn_buf_t *b) { return b->len + b->splice_bytes; }

bool rn_buf_reserve(rn_buf_t *b, size_t extra);
size_t rn_buf_put(rn_buf_t *b, const void *p, size_t n);
size_t rn_buf_put_zero(rn_buf_t *b, size_t n);
size_t rn_buf_put_i8(rn_buf_t *b, int8_t v);
size_t rn_buf_put_i16(rn_buf_t *b, int16_t v);
size_t rn_buf_put_i32(rn_buf_t *b, int32_t v);
size_t rn_buf_put_i64(rn_buf_t *b, int64_t v);
size_t rn_buf_put_u16(rn_buf_t *b, uint16_t v);
size_t rn_buf_put_u32(rn_buf_t *b, uint32_t v);
size_t rn_buf_put_f64(rn_buf_t *b, double v);
size_t rn_buf_put_uvarint(rn_buf_t *b, uint64_t v); /* unsigned LEB128 */
size_t rn_buf_put_varint(rn_buf_t *b, int32_t v);   /* zigzag */
size_t rn_buf_put_varlong(rn_buf_t *b, int64_t v);  /* zigzag */
size_t rn_buf_put_uuid(rn_buf_t *b, const uint8_t uuid[16]);
/* Kafka string/bytes: compact = flexible-version encoding (uvarint len+1). */
size_t rn_buf_put_str(rn_buf_t *b, rn_str_t s, bool compact);
size_t rn_buf_put_bytes(rn_buf_t *b, rn_bytes_t s, bool compact);
size_t rn_buf_put_records(rn_buf_t *b, const rn_records_t *r, bool compact);
/* Array length: compact → uvarint(n+1), 0 for null (n < 0); else int32 n (-1 null). */
size_t rn_buf_put_array_len(rn_buf_t *b, int32_t n, bool compact);
/* Add a file region at the current memory position (retains f). */
void rn_buf_splice_file(rn_buf_t *b, rn_fileref_t *f, int64_t file_pos, size_t len);

void rn_buf_patch_i32(rn_buf_t *b, size_t pos, int32_t v);
void rn_buf_patch_u32(rn_buf_t *b, size_t pos, uint32_t v);
void rn_buf_patch_i64(rn_buf_t *b, size_t pos, int64_t v);
void rn_buf_patch_i16(rn_buf_t *b, size_t pos, int16_t v);

/* Size of uvarint/varint encodings (for precomputing lengths). */
size_t rn_uvarint_size(uint64_t v);
size_t rn_varint_size(int32_t v);
size_t rn_varlong_size(int64_t v);

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;
    rn_err_t err;
} rn_reader_t;

static inline void rn_reader_init(rn_reader_t *r, const void *p, size_t len) {
    r->p = (const uint8_t *)p;
    r->len = len;
    r->pos = 0;
    r->err = RN_OK;
}
static inline size_t rn_reader_remaining(const rn_reader_t *r) { return r->len - r->pos; }
static inline rn_err_t rn_reader_err(const rn_reader_t *r) { return r->err; }
static inline void rn_reader_fail(rn_reader_t *r, rn_err_t err) {
    if (r->err == RN_OK) r->err = err;
}

int8_t rn_reader_i8(rn_reader_t *r);
int16_t rn_reader_i16(rn_reader_t *r);
int32_t rn_reader_i32(rn_reader_t *r);
int64_t rn_reader_i64(rn_reader_t *r);
uint16_t rn_reader_u16(rn_reader_t *r);
uint32_t rn_reader_u32(rn_reader_t *r);
double rn_reader_f64(rn_reader_t *r);
uint64_t rn_reader_uvarint(rn_reader_t *r); /* at most 10 bytes */
uint32_t rn_reader_uvarint32(rn_reader_t *r); /* at most 5 bytes, fails above UINT32_MAX */
int32_t rn_reader_varint(rn_reader_t *r);
int64_t rn_reader_varlong(rn_reader_t *r);
void rn_reader_uuid(rn_reader_t *r, uint8_t out[16]);
/* Borrow n bytes (pointer into the input), or NULL with the error set. */
const uint8_t *rn_reader_take(rn_reader_t *r, size_t n);
void rn_reader_skip(rn_reader_t *r, size_t n);
rn_str_t rn_reader_str(rn_reader_t *r, bool compact);
rn_bytes_t rn_reader_bytes(rn_reader_t *r, bool compact);
/*
 * Array length: compact → uvarint-1; else int32. -1 means null. A count that
 * could not fit in the remaining input (each element needs >= min_elem_size
 * bytes) or exceeds `max` fails with RN_ERR_MALFORMED / RN_ERR_LIMIT, so a
 * decoded count never drives an unbounded allocation.
 */
int32_t rn_reader_array_len(rn_reader_t *r, bool compact, size_t min_elem_size, int32_t max);
/* Skip a tagged-field section, calling nothing: used for unknown tags. */
void rn_reader_skip_tagged(rn_reader_t *r);

/* Big-endian load/store helpers for fixed layouts (on-disk formats). */
static inline uint32_t rn_load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t rn_load_be64(const uint8_t *p) {
    return ((uint64_t)rn_load_be32(p) << 32) | rn_load_be32(p + 4);
}
static inline uint16_t rn_load_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void rn_store_be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void rn_store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void rn_store_be64(uint8_t *p, uint64_t v) {
    rn_store_be32(p, (uint32_t)(v >> 32));
    rn_store_be32(p + 4, (uint32_t)v);
}

#endif
