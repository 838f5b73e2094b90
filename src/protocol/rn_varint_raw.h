/*
 * rn_varint_raw.h — inlined varint readers over a raw pointer range, for the
 * record walks on the produce path (validation) and in the record iterator.
 * Same limits as rn_reader_uvarint32 / rn_reader_varlong: each returns false,
 * leaving *pp alone, on a varint that is truncated or too long.
 * Internal to src/protocol.
 */
#ifndef RN_VARINT_RAW_H
#define RN_VARINT_RAW_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_bytes.h"

static inline __attribute__((always_inline)) bool raw_uvarint32(const uint8_t **pp, const uint8_t *end,
                                                                 uint32_t *out) {
    const uint8_t *p = *pp;
    if (__builtin_expect(p < end && *p < 0x80, 1)) {
        *out = *p;
        *pp = p + 1;
        return true;
    }
    if (__builtin_expect(end - p >= 2 && p[1] < 0x80, 1)) { /* two bytes: lengths and deltas up to 8191 */
        *out = (uint32_t)(p[0] & 0x7f) | (uint32_t)p[1] << 7;
        *pp = p + 2;
        return true;
    }
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (p >= end) return false;
        uint8_t b = *p++;
        if (shift == 28 && (b & 0x70)) return false; /* above 32 bits */
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            *pp = p;
            return true;
        }
    }
    return false;
}

static inline __attribute__((always_inline)) bool raw_varint(const uint8_t **pp, const uint8_t *end, int32_t *out) {
    uint32_t u;
    if (!raw_uvarint32(pp, end, &u)) return false;
    *out = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return true;
}

static inline __attribute__((always_inline)) bool raw_varlong(const uint8_t **pp, const uint8_t *end, int64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    if (__builtin_expect(end - p >= 2 && (p[0] < 0x80 || p[1] < 0x80), 1)) { /* one or two bytes */
        v = p[0] < 0x80 ? p[0] : (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
        *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
        *pp = p + (p[0] < 0x80 ? 1 : 2);
        return true;
    }
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return false;
        uint8_t b = *p++;
        if (shift == 63 && (b & 0x7e)) return false; /* above 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
            *pp = p;
            return true;
        }
    }
    return false;
}

/* Borrow a varint-length-prefixed byte string (-1: null; 0: empty, not NULL). */
static inline __attribute__((always_inline)) bool raw_varbytes(const uint8_t **pp, const uint8_t *end,
                                                                rn_bytes_t *b) {
    int32_t n;
    if (!raw_varint(pp, end, &n) || n < -1) return false;
    if (n == -1) {
        *b = (rn_bytes_t){NULL, -1};
        return true;
    }
    if ((size_t)n > (size_t)(end - *pp)) return false;
    *b = (rn_bytes_t){*pp, n};
    *pp += n;
    return true;
}

#endif
