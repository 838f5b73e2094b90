/* rn_bytes.c — see rn_bytes.h. */
#include "rn_bytes.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_assert.h"

bool rn_str_eq(rn_str_t a, rn_str_t b) {
    if (a.len != b.len) return false;
    if (a.len <= 0) return true;
    return memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

bool rn_str_eq_cstr(rn_str_t a, const char *s) { return rn_str_eq(a, rn_str_from_cstr(s)); }

rn_fileref_t *rn_fileref_new(int fd) {
    rn_fileref_t *f = malloc(sizeof(*f));
    if (!f) return NULL;
    f->fd = fd;
    atomic_init(&f->refs, 1);
    return f;
}

void rn_fileref_retain(rn_fileref_t *f) { atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed); }

void rn_fileref_release(rn_fileref_t *f) {
    if (!f) return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
        if (f->fd >= 0) close(f->fd);
        free(f);
    }
}

void rn_buf_init(rn_buf_t *b, size_t max) {
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void rn_buf_reset(rn_buf_t *b) {
    for (size_t i = 0; i < b->nsplices; i++) rn_fileref_release(b->splices[i].file);
    b->nsplices = 0;
    b->splice_bytes = 0;
    b->len = 0;
    b->err = RN_OK;
}

void rn_buf_free(rn_buf_t *b) {
    rn_buf_reset(b);
    free(b->splices);
    free(b->data);
    memset(b, 0, sizeof(*b));
}

bool rn_buf_reserve(rn_buf_t *b, size_t extra) {
    if (b->err) return false;
    if (extra > b->max || b->len > b->max - extra) {
        b->err = RN_ERR_LIMIT;
        return false;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max) cap = b->max;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->err = RN_ERR_NOMEM;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

size_t rn_buf_put(rn_buf_t *b, const void *p, size_t n) {
    size_t pos = b->len;
    if (!rn_buf_reserve(b, n)) return pos;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return pos;
}

size_t rn_buf_put_zero(rn_buf_t *b, size_t n) {
    size_t pos = b->len;
    if (!rn_buf_reserve(b, n)) return pos;
    memset(b->data + b->len, 0, n);
    b->len += n;
    return pos;
}

size_t rn_buf_put_i8(rn_buf_t *b, int8_t v) { return rn_buf_put(b, &v, 1); }

size_t rn_buf_put_i16(rn_buf_t *b, int16_t v) { return rn_buf_put_u16(b, (uint16_t)v); }

size_t rn_buf_put_u16(rn_buf_t *b, uint16_t v) {
    uint8_t t[2];
    rn_store_be16(t, v);
    return rn_buf_put(b, t, 2);
}

size_t rn_buf_put_i32(rn_buf_t *b, int32_t v) { return rn_buf_put_u32(b, (uint32_t)v); }

size_t rn_buf_put_u32(rn_buf_t *b, uint32_t v) {
    uint8_t t[4];
    rn_store_be32(t, v);
    return rn_buf_put(b, t, 4);
}

size_t rn_buf_put_i64(rn_buf_t *b, int64_t v) {
    uint8_t t[8];
    rn_store_be64(t, (uint64_t)v);
    return rn_buf_put(b, t, 8);
}

size_t rn_buf_put_f64(rn_buf_t *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    return rn_buf_put_i64(b, (int64_t)u);
}

size_t rn_buf_put_uvarint(rn_buf_t *b, uint64_t v) {
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    return rn_buf_put(b, t, n);
}

size_t rn_buf_put_varint(rn_buf_t *b, int32_t v) {
    return rn_buf_put_uvarint(b, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

size_t rn_buf_put_varlong(rn_buf_t *b, int64_t v) {
    return rn_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

size_t rn_buf_put_uuid(rn_buf_t *b, const uint8_t uuid[16]) { return rn_buf_put(b, uuid, 16); }

static size_t put_len(rn_buf_t *b, int32_t len, bool compact, bool i16) {
    if (compact) return rn_buf_put_uvarint(b, len < 0 ? 0 : (uint64_t)len + 1);
    return i16 ? rn_buf_put_i16(b, (int16_t)len) : rn_buf_put_i32(b, len);
}

size_t rn_buf_put_str(rn_buf_t *b, rn_str_t s, bool compact) {
    size_t pos = put_len(b, s.len < 0 ? -1 : s.len, compact, true);
    if (s.len > 0) rn_buf_put(b, s.ptr, (size_t)s.len);
    return pos;
}

size_t rn_buf_put_bytes(rn_buf_t *b, rn_bytes_t s, bool compact) {
    size_t pos = put_len(b, s.len < 0 ? -1 : s.len, compact, false);
    if (s.len > 0) rn_buf_put(b, s.ptr, (size_t)s.len);
    return pos;
}

size_t rn_buf_put_records(rn_buf_t *b, const rn_records_t *r, bool compact) {
    size_t pos = put_len(b, r->len < 0 ? -1 : r->len, compact, false);
    if (r->len <= 0) return pos;
    if (r->file)
        rn_buf_splice_file(b, r->file, r->file_pos, (size_t)r->len);
    else
        rn_buf_put(b, r->ptr, (size_t)r->len);
    return pos;
}

size_t rn_buf_put_array_len(rn_buf_t *b, int32_t n, bool compact) {
    return put_len(b, n < 0 ? -1 : n, compact, false);
}

void rn_buf_splice_file(rn_buf_t *b, rn_fileref_t *f, int64_t file_pos, size_t len) {
    if (b->err || len == 0) return;
    if (b->nsplices == b->splice_cap) {
        size_t cap = b->splice_cap ? b->splice_cap * 2 : 8;
        rn_buf_splice_t *s = realloc(b->splices, cap * sizeof(*s));
        if (!s) {
            b->err = RN_ERR_NOMEM;
            return;
        }
        b->splices = s;
        b->splice_cap = cap;
    }
    rn_fileref_retain(f);
    b->splices[b->nsplices++] = (rn_buf_splice_t){b->len, f, file_pos, len};
    b->splice_bytes += len;
}

void rn_buf_patch_i16(rn_buf_t *b, size_t pos, int16_t v) {
    if (b->err) return;
    RN_ASSERT(pos + 2 <= b->len);
    rn_store_be16(b->data + pos, (uint16_t)v);
}

void rn_buf_patch_i32(rn_buf_t *b, size_t pos, int32_t v) { rn_buf_patch_u32(b, pos, (uint32_t)v); }

void rn_buf_patch_u32(rn_buf_t *b, size_t pos, uint32_t v) {
    if (b->err) return;
    RN_ASSERT(pos + 4 <= b->len);
    rn_store_be32(b->data + pos, v);
}

void rn_buf_patch_i64(rn_buf_t *b, size_t pos, int64_t v) {
    if (b->err) return;
    RN_ASSERT(pos + 8 <= b->len);
    rn_store_be64(b->data + pos, (uint64_t)v);
}

size_t rn_uvarint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t rn_varint_size(int32_t v) { return rn_uvarint_size((uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31))); }

size_t rn_varlong_size(int64_t v) { return rn_uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); }

/* ---- reader ---- */

const uint8_t *rn_reader_take(rn_reader_t *r, size_t n) {
    if (r->err) return NULL;
    if (n > r->len - r->pos) {
        r->err = RN_ERR_TRUNCATED;
        r->pos = r->len;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

void rn_reader_skip(rn_reader_t *r, size_t n) { (void)rn_reader_take(r, n); }

int8_t rn_reader_i8(rn_reader_t *r) {
    const uint8_t *p = rn_reader_take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

uint16_t rn_reader_u16(rn_reader_t *r) {
    const uint8_t *p = rn_reader_take(r, 2);
    return p ? rn_load_be16(p) : 0;
}

int16_t rn_reader_i16(rn_reader_t *r) { return (int16_t)rn_reader_u16(r); }

uint32_t rn_reader_u32(rn_reader_t *r) {
    const uint8_t *p = rn_reader_take(r, 4);
    return p ? rn_load_be32(p) : 0;
}

int32_t rn_reader_i32(rn_reader_t *r) { return (int32_t)rn_reader_u32(r); }

int64_t rn_reader_i64(rn_reader_t *r) {
    const uint8_t *p = rn_reader_take(r, 8);
    return p ? (int64_t)rn_load_be64(p) : 0;
}

double rn_reader_f64(rn_reader_t *r) {
    uint64_t u = (uint64_t)rn_reader_i64(r);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

uint64_t rn_reader_uvarint(rn_reader_t *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t *p = rn_reader_take(r, 1);
        if (!p) return 0;
        if (shift == 63 && (*p & 0x7e)) break; /* would overflow 64 bits */
        v |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80)) return v;
    }
    rn_reader_fail(r, RN_ERR_MALFORMED);
    return 0;
}

uint32_t rn_reader_uvarint32(rn_reader_t *r) {
    /* Fast path: most varints in record batches (lengths, deltas) fit in one byte. */
    if (r->err == RN_OK && r->pos < r->len && r->p[r->pos] < 0x80) return r->p[r->pos++];
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        const uint8_t *p = rn_reader_take(r, 1);
        if (!p) return 0;
        if (shift == 28 && (*p & 0x70)) break;
        v |= (uint32_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80)) return v;
    }
    rn_reader_fail(r, RN_ERR_MALFORMED);
    return 0;
}

int32_t rn_reader_varint(rn_reader_t *r) {
    uint32_t u = rn_reader_uvarint32(r);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t rn_reader_varlong(rn_reader_t *r) {
    uint64_t u = rn_reader_uvarint(r);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

void rn_reader_uuid(rn_reader_t *r, uint8_t out[16]) {
    const uint8_t *p = rn_reader_take(r, 16);
    if (p)
        memcpy(out, p, 16);
    else
        memset(out, 0, 16);
}

static int32_t read_len(rn_reader_t *r, bool compact, bool i16) {
    if (compact) {
        uint32_t n = rn_reader_uvarint32(r);
        if (r->err) return -1;
        if (n > INT32_MAX) {
            rn_reader_fail(r, RN_ERR_MALFORMED);
            return -1;
        }
        return (int32_t)n - 1;
    }
    int32_t n = i16 ? rn_reader_i16(r) : rn_reader_i32(r);
    if (r->err) return -1;
    if (n < -1) {
        rn_reader_fail(r, RN_ERR_MALFORMED);
        return -1;
    }
    return n;
}

rn_str_t rn_reader_str(rn_reader_t *r, bool compact) {
    rn_str_t s = RN_STR_NULL;
    int32_t n = read_len(r, compact, true);
    if (r->err || n < 0) return s;
    const uint8_t *p = rn_reader_take(r, (size_t)n);
    if (!p) return s;
    s.ptr = (const char *)p;
    s.len = n;
    return s;
}

rn_bytes_t rn_reader_bytes(rn_reader_t *r, bool compact) {
    rn_bytes_t s = {NULL, -1};
    int32_t n = read_len(r, compact, false);
    if (r->err || n < 0) return s;
    const uint8_t *p = rn_reader_take(r, (size_t)n);
    if (!p) return s;
    s.ptr = p;
    s.len = n;
    return s;
}

int32_t rn_reader_array_len(rn_reader_t *r, bool compact, size_t min_elem_size, int32_t max) {
    int32_t n = read_len(r, compact, false);
    if (r->err || n < 0) return -1;
    if (min_elem_size == 0) min_elem_size = 1;
    if ((size_t)n > rn_reader_remaining(r) / min_elem_size) {
        rn_reader_fail(r, RN_ERR_MALFORMED);
        return -1;
    }
    if (n > max) {
        rn_reader_fail(r, RN_ERR_LIMIT);
        return -1;
    }
    return n;
}

void rn_reader_skip_tagged(rn_reader_t *r) {
    uint32_t n = rn_reader_uvarint32(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        (void)rn_reader_uvarint32(r); /* tag */
        uint32_t size = rn_reader_uvarint32(r);
        rn_reader_skip(r, size);
    }
}
