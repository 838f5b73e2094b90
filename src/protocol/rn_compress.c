/*
 * rn_compress.c — gzip, snappy, lz4 and zstd for record batches and legacy
 * message sets (see rn_compress.h for the framings written and accepted).
 *
 * Decompressed data is untrusted in size: every decoder writes straight into
 * the output buffer through out_room(), which grows the buffer geometrically
 * and never lets the output pass max_out + 1 bytes. Producing that extra byte
 * is how "more output than allowed" is told apart from "exactly max_out"; it
 * ends in RN_ERR_LIMIT. A decoder that stops making progress, or whose input
 * ends inside a stream, fails with RN_ERR_CORRUPT, so no input can loop.
 */
#include "rn_compress.h"

#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "rn_assert.h"
#include "rn_batch.h"

#define OUT_CHUNK_MIN (64u * 1024)

/*
 * Writable bytes after out->len (at least 1, grown geometrically), such that
 * the bytes produced since `start` stay within `limit`. 0 when the limit or the
 * buffer's own max is reached (*err = RN_ERR_LIMIT) or allocation failed.
 */
static size_t out_room(rn_buf_t *out, size_t start, size_t limit, rn_err_t *err) {
    size_t produced = out->len - start;
    size_t allow = produced < limit ? limit - produced : 0;
    if (allow > out->max - out->len) allow = out->max - out->len;
    if (allow == 0) {
        *err = RN_ERR_LIMIT;
        return 0;
    }
    size_t room = out->cap - out->len;
    if (room == 0 || out->data == NULL) {
        size_t want = produced > OUT_CHUNK_MIN ? produced : OUT_CHUNK_MIN;
        if (want > allow) want = allow;
        if (!rn_buf_reserve(out, want)) {
            *err = out->err ? out->err : RN_ERR_NOMEM;
            return 0;
        }
        room = out->cap - out->len;
    }
    return room < allow ? room : allow;
}

static size_t limit_for(size_t max_out) { return max_out == SIZE_MAX ? SIZE_MAX : max_out + 1; }

/* ---- gzip ---- */

static rn_err_t gzip_decompress(const uint8_t *in, size_t in_len, rn_buf_t *out, size_t start, size_t limit) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    int rc = inflateInit2(&zs, 16 + MAX_WBITS);
    if (rc != Z_OK) return rc == Z_MEM_ERROR ? RN_ERR_NOMEM : RN_ERR_CORRUPT;
    const uint8_t *p = in;
    size_t left = in_len;
    rn_err_t err = RN_OK;
    for (;;) {
        size_t room = out_room(out, start, limit, &err);
        if (room == 0) break;
        uInt n_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
        uInt n_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        zs.next_in = (Bytef *)(uintptr_t)p;
        zs.avail_in = n_in;
        zs.next_out = out->data + out->len;
        zs.avail_out = n_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        p += n_in - zs.avail_in;
        left -= n_in - zs.avail_in;
        out->len += n_out - zs.avail_out;
        if (rc == Z_STREAM_END) {
            /* Another member follows: keep going. Anything else is ignored. */
            if (left >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            break;
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue; /* needs more room */
        err = rc == Z_MEM_ERROR ? RN_ERR_NOMEM : RN_ERR_CORRUPT; /* truncated, bad data, dictionary */
        break;
    }
    inflateEnd(&zs);
    return err;
}

static rn_err_t gzip_compress(const uint8_t *in, size_t in_len, rn_buf_t *out) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    int rc = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) return RN_ERR_NOMEM;
    if (!rn_buf_reserve(out, deflateBound(&zs, (uLong)in_len))) {
        deflateEnd(&zs);
        return out->err;
    }
    const uint8_t *p = in;
    size_t left = in_len;
    size_t start = out->len;
    rn_err_t err = RN_OK;
    for (;;) {
        size_t room = out_room(out, start, SIZE_MAX, &err);
        if (room == 0) break;
        uInt n_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
        uInt n_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        zs.next_in = (Bytef *)(uintptr_t)p;
        zs.avail_in = n_in;
        zs.next_out = out->data + out->len;
        zs.avail_out = n_out;
        rc = deflate(&zs, n_in == left ? Z_FINISH : Z_NO_FLUSH);
        p += n_in - zs.avail_in;
        left -= n_in - zs.avail_in;
        out->len += n_out - zs.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            err = RN_ERR_UNKNOWN_SERVER_ERROR;
            break;
        }
    }
    deflateEnd(&zs);
    return err;
}

/* ---- snappy ---- */

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
#define XERIAL_BLOCK_SIZE (32u * 1024)

static bool is_xerial(const uint8_t *in, size_t in_len) {
    return in_len >= sizeof(xerial_magic) && memcmp(in, xerial_magic, sizeof(xerial_magic)) == 0;
}

static rn_err_t snappy_block(const uint8_t *in, size_t n, rn_buf_t *out, size_t start, size_t limit) {
    size_t ulen;
    if (n == 0 || snappy_uncompressed_length((const char *)in, n, &ulen) != SNAPPY_OK) return RN_ERR_CORRUPT;
    size_t produced = out->len - start;
    if (ulen >= limit - produced) return RN_ERR_LIMIT;
    if (ulen == 0) return snappy_validate_compressed_buffer((const char *)in, n) == SNAPPY_OK ? RN_OK : RN_ERR_CORRUPT;
    if (!rn_buf_reserve(out, ulen)) return out->err;
    size_t got = ulen;
    if (snappy_uncompress((const char *)in, n, (char *)out->data + out->len, &got) != SNAPPY_OK || got != ulen)
        return RN_ERR_CORRUPT;
    out->len += ulen;
    return RN_OK;
}

/* Walks the xerial blocks; with `out` NULL only sums their stated sizes into *total. */
static rn_err_t xerial_walk(const uint8_t *in, size_t in_len, rn_buf_t *out, size_t start, size_t limit,
                            size_t *total) {
    if (in_len < XERIAL_HEADER_SIZE) return RN_ERR_CORRUPT;
    size_t pos = XERIAL_HEADER_SIZE;
    size_t sum = 0;
    while (pos < in_len) {
        if (in_len - pos < 4) return RN_ERR_CORRUPT;
        size_t blen = rn_load_be32(in + pos);
        pos += 4;
        if (blen > in_len - pos) return RN_ERR_CORRUPT;
        if (out) {
            rn_err_t err = snappy_block(in + pos, blen, out, start, limit);
            if (err) return err;
        } else {
            size_t ulen;
            if (blen == 0 || snappy_uncompressed_length((const char *)in + pos, blen, &ulen) != SNAPPY_OK)
                return RN_ERR_CORRUPT;
            if (ulen > SIZE_MAX - sum) return RN_ERR_LIMIT;
            sum += ulen;
        }
        pos += blen;
    }
    if (total) *total = sum;
    return RN_OK;
}

static rn_err_t snappy_decompress(const uint8_t *in, size_t in_len, rn_buf_t *out, size_t start, size_t limit) {
    if (is_xerial(in, in_len)) {
        rn_err_t err = xerial_walk(in, in_len, out, start, limit, NULL);
        if (err != RN_ERR_CORRUPT) return err;
        /* Raw snappy can in principle begin with the same bytes: try that too. */
        out->len = start;
        rn_err_t raw = snappy_block(in, in_len, out, start, limit);
        return raw == RN_OK ? RN_OK : err;
    }
    return snappy_block(in, in_len, out, start, limit);
}

static rn_err_t snappy_compress_xerial(const uint8_t *in, size_t in_len, rn_buf_t *out) {
    rn_buf_put(out, xerial_magic, sizeof(xerial_magic));
    rn_buf_put_i32(out, 1); /* version */
    rn_buf_put_i32(out, 1); /* compatible version */
    for (size_t pos = 0; pos < in_len && !out->err;) {
        size_t n = in_len - pos < XERIAL_BLOCK_SIZE ? in_len - pos : XERIAL_BLOCK_SIZE;
        size_t len_pos = rn_buf_put_i32(out, 0);
        size_t clen = snappy_max_compressed_length(n);
        if (!rn_buf_reserve(out, clen)) break;
        if (snappy_compress((const char *)in + pos, n, (char *)out->data + out->len, &clen) != SNAPPY_OK)
            return RN_ERR_UNKNOWN_SERVER_ERROR;
        out->len += clen;
        rn_buf_patch_i32(out, len_pos, (int32_t)clen);
        pos += n;
    }
    return out->err;
}

/* ---- lz4 ---- */

#define LZ4_FRAME_MAGIC 0x184D2204u
#define LZ4_HEADER_MAX 19 /* magic 4 + FLG + BD + content size 8 + dict id 4 + HC */

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint32_t rn__xxh32(const void *data, size_t len, uint32_t seed) {
    const uint32_t p1 = 2654435761u, p2 = 2246822519u, p3 = 3266489917u, p4 = 668265263u, p5 = 374761393u;
    const uint8_t *p = data;
    const uint8_t *end = p + len;
    uint32_t h;
    if (len >= 16) {
        uint32_t v[4] = {seed + p1 + p2, seed + p2, seed, seed - p1};
        while (end - p >= 16) {
            for (int i = 0; i < 4; i++, p += 4) v[i] = rotl32(v[i] + load_le32(p) * p2, 13) * p1;
        }
        h = rotl32(v[0], 1) + rotl32(v[1], 7) + rotl32(v[2], 12) + rotl32(v[3], 18);
    } else {
        h = seed + p5;
    }
    h += (uint32_t)len;
    for (; end - p >= 4; p += 4) h = rotl32(h + load_le32(p) * p3, 17) * p4;
    for (; p < end; p++) h = rotl32(h + *p * p5, 11) * p1;
    h ^= h >> 15;
    h *= p2;
    h ^= h >> 13;
    h *= p3;
    h ^= h >> 16;
    return h;
}

/*
 * Copy the frame header into hdr with the header checksum recomputed the
 * standard way, accepting either the standard or Kafka's magic-0 checksum.
 */
static rn_err_t lz4_fixed_header(const uint8_t *in, size_t in_len, uint8_t *hdr, size_t *hdr_len) {
    if (in_len < 7 || load_le32(in) != LZ4_FRAME_MAGIC) return RN_ERR_CORRUPT;
    uint8_t flg = in[4];
    size_t desc = 2 + ((flg & 0x08) ? 8 : 0) + ((flg & 0x01) ? 4 : 0);
    size_t n = 4 + desc + 1;
    if (in_len < n) return RN_ERR_CORRUPT;
    uint8_t proper = (uint8_t)(rn__xxh32(in + 4, desc, 0) >> 8);
    uint8_t broken = (uint8_t)(rn__xxh32(in, 4 + desc, 0) >> 8);
    uint8_t hc = in[4 + desc];
    if (hc != proper && hc != broken) return RN_ERR_CORRUPT;
    memcpy(hdr, in, n);
    hdr[n - 1] = proper;
    *hdr_len = n;
    return RN_OK;
}

static rn_err_t lz4_decompress(const uint8_t *in, size_t in_len, rn_buf_t *out, size_t start, size_t limit) {
    uint8_t hdr[LZ4_HEADER_MAX];
    size_t hdr_len;
    rn_err_t err = lz4_fixed_header(in, in_len, hdr, &hdr_len);
    if (err) return err;
    LZ4F_dctx *dctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) return RN_ERR_NOMEM;
    /* The fixed-up header first, then the rest of the input. */
    const uint8_t *src = hdr;
    size_t left = hdr_len;
    bool body = false;
    for (;;) {
        if (left == 0 && !body) {
            src = in + hdr_len;
            left = in_len - hdr_len;
            body = true;
        }
        size_t room = out_room(out, start, limit, &err);
        if (room == 0) break;
        size_t n_out = room, n_in = left;
        size_t hint = LZ4F_decompress(dctx, out->data + out->len, &n_out, src, &n_in, NULL);
        out->len += n_out;
        src += n_in;
        left -= n_in;
        if (LZ4F_isError(hint)) {
            err = RN_ERR_CORRUPT;
            break;
        }
        if (hint == 0) break; /* end of frame; trailing bytes are ignored, as Kafka's reader does */
        if (n_out == room) continue; /* output full: more may be buffered inside */
        if (left == 0 && body) {
            err = RN_ERR_CORRUPT; /* input ended inside the frame */
            break;
        }
        if (n_in == 0 && n_out == 0 && left > 0) {
            err = RN_ERR_CORRUPT;
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    return err;
}

static rn_err_t lz4_compress(const uint8_t *in, size_t in_len, rn_buf_t *out, bool kafka_v0_checksum) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t bound = LZ4F_compressFrameBound(in_len, &prefs);
    size_t start = out->len;
    if (!rn_buf_reserve(out, bound)) return out->err;
    size_t n = LZ4F_compressFrame(out->data + out->len, bound, in, in_len, &prefs);
    if (LZ4F_isError(n)) return RN_ERR_UNKNOWN_SERVER_ERROR;
    out->len += n;
    if (kafka_v0_checksum) {
        /* No content size or dictionary: the descriptor is FLG, BD; HC at 6. */
        uint8_t *f = out->data + start;
        RN_ASSERT(n >= 7 && (f[4] & 0x09) == 0);
        f[6] = (uint8_t)(rn__xxh32(f, 6, 0) >> 8);
    }
    return RN_OK;
}

/* ---- zstd ---- */

static int zstd_window_log_max(size_t max_out) {
    /* Frames written without a content size use the level's full window even
       for small data, so allow 16 MiB windows at least; at most zstd's default 128 MiB. */
    int wlog = 24;
    while (wlog < 27 && ((size_t)1 << wlog) < max_out) wlog++;
    return wlog;
}

static rn_err_t zstd_err(size_t rc) {
    switch (ZSTD_getErrorCode(rc)) {
    case ZSTD_error_memory_allocation: return RN_ERR_NOMEM;
    case ZSTD_error_frameParameter_windowTooLarge: return RN_ERR_LIMIT;
    default: return RN_ERR_CORRUPT;
    }
}

static rn_err_t zstd_decompress(const uint8_t *in, size_t in_len, rn_buf_t *out, size_t start, size_t limit) {
    if (in_len == 0) return RN_ERR_CORRUPT;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx) return RN_ERR_NOMEM;
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, zstd_window_log_max(limit - 1));
    ZSTD_inBuffer ib = {in, in_len, 0};
    rn_err_t err = RN_OK;
    for (;;) {
        size_t room = out_room(out, start, limit, &err);
        if (room == 0) break;
        ZSTD_outBuffer ob = {out->data + out->len, room, 0};
        size_t in_before = ib.pos;
        size_t rc = ZSTD_decompressStream(dctx, &ob, &ib);
        out->len += ob.pos;
        if (ZSTD_isError(rc)) {
            err = zstd_err(rc);
            break;
        }
        if (rc == 0 && ib.pos == ib.size) break; /* last frame complete and flushed */
        if (ob.pos == room) continue;
        if (ib.pos == ib.size || (ib.pos == in_before && ob.pos == 0)) {
            err = RN_ERR_CORRUPT; /* input ended inside a frame */
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return err;
}

static rn_err_t zstd_compress(const uint8_t *in, size_t in_len, rn_buf_t *out) {
    size_t bound = ZSTD_compressBound(in_len);
    if (!rn_buf_reserve(out, bound)) return out->err;
    size_t n = ZSTD_compress(out->data + out->len, bound, in, in_len, 3);
    if (ZSTD_isError(n)) return zstd_err(n) == RN_ERR_NOMEM ? RN_ERR_NOMEM : RN_ERR_UNKNOWN_SERVER_ERROR;
    out->len += n;
    return RN_OK;
}

/* ---- dispatch ---- */

rn_err_t rn_decompress(int codec, const uint8_t *in, size_t in_len, rn_buf_t *out, size_t max_out) {
    if (out->err) return out->err;
    size_t start = out->len;
    size_t limit = limit_for(max_out);
    rn_err_t err;
    switch (codec) {
    case RN_COMPRESSION_NONE:
        if (in_len > max_out) return RN_ERR_LIMIT;
        rn_buf_put(out, in, in_len);
        err = out->err;
        break;
    case RN_COMPRESSION_GZIP: err = gzip_decompress(in, in_len, out, start, limit); break;
    case RN_COMPRESSION_SNAPPY: err = snappy_decompress(in, in_len, out, start, limit); break;
    case RN_COMPRESSION_LZ4: err = lz4_decompress(in, in_len, out, start, limit); break;
    case RN_COMPRESSION_ZSTD: err = zstd_decompress(in, in_len, out, start, limit); break;
    default: return RN_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    }
    if (err == RN_OK && out->len - start > max_out) err = RN_ERR_LIMIT;
    if (err) {
        out->len = start;
        /* A limit we hit on purpose is not the buffer's failure: clear it. */
        if (out->err == RN_ERR_LIMIT && err == RN_ERR_LIMIT) out->err = RN_OK;
    }
    return err;
}

rn_err_t rn_compress_for_magic(int codec, int magic, const uint8_t *in, size_t in_len, rn_buf_t *out) {
    if (out->err) return out->err;
    size_t start = out->len;
    rn_err_t err;
    switch (codec) {
    case RN_COMPRESSION_NONE:
        rn_buf_put(out, in, in_len);
        err = out->err;
        break;
    case RN_COMPRESSION_GZIP: err = gzip_compress(in, in_len, out); break;
    case RN_COMPRESSION_SNAPPY: err = snappy_compress_xerial(in, in_len, out); break;
    case RN_COMPRESSION_LZ4: err = lz4_compress(in, in_len, out, magic == 0); break;
    case RN_COMPRESSION_ZSTD: err = zstd_compress(in, in_len, out); break;
    default: return RN_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    }
    if (!err) err = out->err;
    if (err) out->len = start;
    return err;
}

rn_err_t rn_compress(int codec, const uint8_t *in, size_t in_len, rn_buf_t *out) {
    return rn_compress_for_magic(codec, 2, in, in_len, out);
}

/* The decompressed size, when the data states it (and is not lying, which decoding checks). */
static bool stated_size(int codec, const uint8_t *in, size_t in_len, size_t *size, rn_err_t *err) {
    *err = RN_OK;
    if (codec == RN_COMPRESSION_SNAPPY) {
        if (is_xerial(in, in_len)) {
            if (xerial_walk(in, in_len, NULL, 0, 0, size) == RN_OK) return true;
            return false; /* maybe raw after all: let decoding decide */
        }
        if (in_len > 0 && snappy_uncompressed_length((const char *)in, in_len, size) == SNAPPY_OK) return true;
        *err = RN_ERR_CORRUPT;
        return false;
    }
    if (codec == RN_COMPRESSION_ZSTD && in_len > 0) {
        if (ZSTD_findFrameCompressedSize(in, in_len) != in_len) return false; /* several frames, or broken */
        unsigned long long n = ZSTD_getFrameContentSize(in, in_len);
        if (n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR || n > SIZE_MAX) return false;
        *size = (size_t)n;
        return true;
    }
    return false;
}

rn_err_t rn__decompress_arena(int codec, const uint8_t *in, size_t in_len, size_t max_out, rn_arena_t *arena,
                              const uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    size_t size;
    rn_err_t err;
    if (stated_size(codec, in, in_len, &size, &err)) {
        if (size > max_out) return RN_ERR_LIMIT;
        uint8_t *mem = rn_arena_alloc(arena, size ? size : 1);
        if (!mem) return RN_ERR_LIMIT;
        /* A buffer over fixed memory: max == cap, so it can never realloc. */
        rn_buf_t fixed;
        rn_buf_init(&fixed, size ? size : 1);
        fixed.data = mem;
        fixed.cap = fixed.max;
        err = rn_decompress(codec, in, in_len, &fixed, size);
        if (err == RN_ERR_LIMIT) err = RN_ERR_CORRUPT; /* more data than stated */
        if (err == RN_OK && fixed.len != size) err = RN_ERR_CORRUPT;
        if (err) return err;
        *out = mem;
        *out_len = size;
        return RN_OK;
    }
    if (err) return err;
    rn_buf_t tmp;
    rn_buf_init(&tmp, max_out == SIZE_MAX ? SIZE_MAX : max_out + 1);
    err = rn_decompress(codec, in, in_len, &tmp, max_out);
    if (err == RN_OK) {
        uint8_t *mem = rn_arena_alloc(arena, tmp.len ? tmp.len : 1);
        if (!mem) {
            err = RN_ERR_LIMIT;
        } else {
            if (tmp.len) memcpy(mem, tmp.data, tmp.len);
            *out = mem;
            *out_len = tmp.len;
        }
    }
    rn_buf_free(&tmp);
    return err;
}
