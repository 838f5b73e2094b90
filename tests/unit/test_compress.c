/* Unit tests for src/protocol/rn_compress: round trips, foreign framings, corrupt input, bombs. */
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

#include "rn_arena.h"
#include "rn_batch.h"
#include "rn_compress.h"
#include "rn_test.h"

static const int codecs[] = {RN_COMPRESSION_NONE, RN_COMPRESSION_GZIP, RN_COMPRESSION_SNAPPY, RN_COMPRESSION_LZ4,
                             RN_COMPRESSION_ZSTD};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

/* Deterministic data: compressible text-like or pseudo-random bytes. */
static uint8_t *make_data(size_t n, bool random) {
    uint8_t *d = malloc(n ? n : 1);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        if (random) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            d[i] = (uint8_t)x;
        } else {
            d[i] = (uint8_t)("the quick brown fox "[i % 20] + (i / 1000) % 3);
        }
    }
    return d;
}

static void roundtrip(int codec, const uint8_t *d, size_t n) {
    rn_buf_t c, u;
    rn_buf_init(&c, SIZE_MAX);
    rn_buf_init(&u, SIZE_MAX);
    ASSERT_EQ(rn_compress(codec, d, n, &c), RN_OK);
    ASSERT_EQ(rn_decompress(codec, c.data, c.len, &u, n), RN_OK);
    ASSERT_EQ(u.len, n);
    if (n) ASSERT_MEMEQ(u.data, d, n);
    /* one byte less allowed: LIMIT, output put back */
    if (n > 0) {
        rn_buf_reset(&u);
        rn_buf_put(&u, "xy", 2);
        ASSERT_EQ(rn_decompress(codec, c.data, c.len, &u, n - 1), RN_ERR_LIMIT);
        ASSERT_EQ(u.len, 2);
        ASSERT_EQ(rn_buf_err(&u), RN_OK);
    }
    /* through the arena */
    rn_arena_t a;
    rn_arena_init(&a, 64u << 20);
    const uint8_t *p;
    size_t plen;
    ASSERT_EQ(rn__decompress_arena(codec, c.data, c.len, n, &a, &p, &plen), RN_OK);
    ASSERT_EQ(plen, n);
    if (n) ASSERT_MEMEQ(p, d, n);
    if (n > 0) ASSERT_EQ(rn__decompress_arena(codec, c.data, c.len, n - 1, &a, &p, &plen), RN_ERR_LIMIT);
    rn_arena_reset(&a);
    rn_buf_free(&c);
    rn_buf_free(&u);
}

RN_TEST(roundtrip_all_codecs) {
    size_t sizes[] = {0, 1, 100, 65536, 100000, 300000};
    for (size_t c = 0; c < NCODECS; c++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            for (int r = 0; r < 2; r++) {
                uint8_t *d = make_data(sizes[s], r);
                roundtrip(codecs[c], d, sizes[s]);
                free(d);
            }
        }
    }
}

RN_TEST(unknown_codec) {
    rn_buf_t b;
    rn_buf_init(&b, 1024);
    ASSERT_EQ(rn_compress(5, (const uint8_t *)"x", 1, &b), RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    ASSERT_EQ(rn_decompress(7, (const uint8_t *)"x", 1, &b, 100), RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    rn_buf_free(&b);
}

RN_TEST(xxh32_vectors) {
    ASSERT_EQ(rn__xxh32("", 0, 0), 0x02CC5D05u);
    ASSERT_EQ(rn__xxh32("abc", 3, 0), 0x32D153FFu);
    /* Check longer inputs against the content checksum liblz4 writes at the end of a frame. */
    size_t sizes[] = {5, 16, 17, 33, 1000, 4096};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *d = make_data(sizes[i], true);
        LZ4F_preferences_t prefs;
        memset(&prefs, 0, sizeof(prefs));
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        size_t bound = LZ4F_compressFrameBound(sizes[i], &prefs);
        uint8_t *f = malloc(bound);
        size_t n = LZ4F_compressFrame(f, bound, d, sizes[i], &prefs);
        ASSERT_FALSE(LZ4F_isError(n));
        uint32_t want = (uint32_t)f[n - 4] | ((uint32_t)f[n - 3] << 8) | ((uint32_t)f[n - 2] << 16) |
                        ((uint32_t)f[n - 1] << 24);
        ASSERT_EQ(rn__xxh32(d, sizes[i], 0), want);
        free(f);
        free(d);
    }
}

/* Hand-built xerial frame: magic, version, compatible version, then int32 length + raw snappy blocks. */
RN_TEST(snappy_xerial_and_raw) {
    uint8_t *d = make_data(50000, false);
    rn_buf_t f;
    rn_buf_init(&f, SIZE_MAX);
    const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    rn_buf_put(&f, magic, 8);
    rn_buf_put_i32(&f, 1);
    rn_buf_put_i32(&f, 1);
    size_t parts[] = {20000, 30000};
    size_t off = 0;
    for (int i = 0; i < 2; i++) {
        size_t clen = snappy_max_compressed_length(parts[i]);
        char *tmp = malloc(clen);
        ASSERT_EQ(snappy_compress((const char *)d + off, parts[i], tmp, &clen), SNAPPY_OK);
        rn_buf_put_i32(&f, (int32_t)clen);
        rn_buf_put(&f, tmp, clen);
        free(tmp);
        off += parts[i];
    }
    rn_buf_t u;
    rn_buf_init(&u, SIZE_MAX);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, f.data, f.len, &u, 1 << 20), RN_OK);
    ASSERT_EQ(u.len, 50000);
    ASSERT_MEMEQ(u.data, d, 50000);
    /* a limit between the blocks */
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, f.data, f.len, &u, 30000), RN_ERR_LIMIT);
    ASSERT_EQ(u.len, 0);
    /* header only: empty */
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, f.data, 16, &u, 100), RN_OK);
    ASSERT_EQ(u.len, 0);
    /* truncated block length, truncated block */
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, f.data, 18, &u, 1 << 20), RN_ERR_CORRUPT);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, f.data, f.len - 1, &u, 1 << 20), RN_ERR_CORRUPT);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, f.data, 12, &u, 1 << 20), RN_ERR_CORRUPT);

    /* raw snappy, as librdkafka writes */
    size_t clen = snappy_max_compressed_length(50000);
    char *raw = malloc(clen);
    ASSERT_EQ(snappy_compress((const char *)d, 50000, raw, &clen), SNAPPY_OK);
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, (uint8_t *)raw, clen, &u, 50000), RN_OK);
    ASSERT_MEMEQ(u.data, d, 50000);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, (uint8_t *)raw, clen, &u, 49999), RN_ERR_LIMIT);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, (uint8_t *)raw, clen / 2, &u, 50000), RN_ERR_CORRUPT);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_SNAPPY, (uint8_t *)raw, 0, &u, 50000), RN_ERR_CORRUPT);

    /* what we write is the xerial framing */
    rn_buf_t c;
    rn_buf_init(&c, SIZE_MAX);
    ASSERT_EQ(rn_compress(RN_COMPRESSION_SNAPPY, d, 50000, &c), RN_OK);
    ASSERT_MEMEQ(c.data, magic, 8);
    ASSERT_EQ(rn_load_be32(c.data + 8), 1);
    ASSERT_EQ(rn_load_be32(c.data + 12), 1);
    free(raw);
    free(d);
    rn_buf_free(&c);
    rn_buf_free(&f);
    rn_buf_free(&u);
}

RN_TEST(gzip_concatenated_members) {
    rn_buf_t c, u;
    rn_buf_init(&c, SIZE_MAX);
    rn_buf_init(&u, SIZE_MAX);
    ASSERT_EQ(rn_compress(RN_COMPRESSION_GZIP, (const uint8_t *)"hello ", 6, &c), RN_OK);
    ASSERT_EQ(rn_compress(RN_COMPRESSION_GZIP, (const uint8_t *)"world", 5, &c), RN_OK);
    ASSERT_EQ(c.data[0], 0x1f);
    ASSERT_EQ(c.data[1], 0x8b);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_GZIP, c.data, c.len, &u, 100), RN_OK);
    ASSERT_EQ(u.len, 11);
    ASSERT_MEMEQ(u.data, "hello world", 11);
    /* trailing bytes that are not a member are ignored, as GZIPInputStream does */
    rn_buf_put(&c, "\0\0\0", 3);
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_GZIP, c.data, c.len, &u, 100), RN_OK);
    ASSERT_EQ(u.len, 11);
    /* a truncated second member is not */
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_GZIP, c.data, c.len - 8, &u, 100), RN_ERR_CORRUPT);
    ASSERT_EQ(u.len, 0);
    /* zlib (not gzip) framing is refused */
    uint8_t z[64];
    uLongf zl = sizeof(z);
    ASSERT_EQ(compress(z, &zl, (const Bytef *)"abc", 3), Z_OK);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_GZIP, z, zl, &u, 100), RN_ERR_CORRUPT);
    rn_buf_free(&c);
    rn_buf_free(&u);
}

static uint8_t *lz4_frame(const uint8_t *d, size_t n, const LZ4F_preferences_t *prefs, size_t *len) {
    size_t bound = LZ4F_compressFrameBound(n, prefs);
    uint8_t *f = malloc(bound);
    *len = LZ4F_compressFrame(f, bound, d, n, prefs);
    return f;
}

RN_TEST(lz4_frames_and_kafka_v0_checksum) {
    uint8_t *d = make_data(200000, false);
    rn_buf_t u;
    rn_buf_init(&u, SIZE_MAX);
    /* every frame option liblz4 offers */
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.contentSize = 200000;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    prefs.frameInfo.blockMode = LZ4F_blockLinked;
    prefs.frameInfo.blockSizeID = LZ4F_max256KB;
    size_t flen;
    uint8_t *f = lz4_frame(d, 200000, &prefs, &flen);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_LZ4, f, flen, &u, 200000), RN_OK);
    ASSERT_EQ(u.len, 200000);
    ASSERT_MEMEQ(u.data, d, 200000);
    /* a flipped content byte fails the content checksum */
    f[flen / 2] ^= 0x10;
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_LZ4, f, flen, &u, 200000), RN_ERR_CORRUPT);
    f[flen / 2] ^= 0x10;
    /* the header checksum: standard, Kafka's magic-0 one, or anything else */
    size_t hc_pos = 4 + 2 + 8;
    uint8_t good = f[hc_pos];
    f[hc_pos] = (uint8_t)(rn__xxh32(f, hc_pos, 0) >> 8);
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_LZ4, f, flen, &u, 200000), RN_OK);
    f[hc_pos] = good;
    uint8_t broken = (uint8_t)(rn__xxh32(f, hc_pos, 0) >> 8);
    uint8_t other = 0;
    while (other == good || other == broken) other++;
    f[hc_pos] = other;
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_LZ4, f, flen, &u, 200000), RN_ERR_CORRUPT);
    free(f);

    /* what we write for magic 0 carries the broken checksum, and still reads back */
    rn_buf_t c;
    rn_buf_init(&c, SIZE_MAX);
    ASSERT_EQ(rn_compress_for_magic(RN_COMPRESSION_LZ4, 0, d, 200000, &c), RN_OK);
    ASSERT_EQ(c.data[6], (uint8_t)(rn__xxh32(c.data, 6, 0) >> 8));
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_LZ4, c.data, c.len, &u, 200000), RN_OK);
    ASSERT_MEMEQ(u.data, d, 200000);
    /* and for v2 the standard one, with independent blocks */
    rn_buf_reset(&c);
    ASSERT_EQ(rn_compress(RN_COMPRESSION_LZ4, d, 200000, &c), RN_OK);
    ASSERT_EQ(c.data[6], (uint8_t)(rn__xxh32(c.data + 4, 2, 0) >> 8));
    ASSERT_TRUE(c.data[4] & 0x20);
    /* truncated frames */
    for (size_t cut = 0; cut < c.len; cut += c.len / 7 + 1) {
        rn_buf_reset(&u);
        ASSERT_EQ(rn_decompress(RN_COMPRESSION_LZ4, c.data, cut, &u, 200000), RN_ERR_CORRUPT);
    }
    rn_buf_free(&c);
    rn_buf_free(&u);
    free(d);
}

RN_TEST(zstd_streaming_without_content_size) {
    uint8_t *d = make_data(300000, false);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t bound = ZSTD_compressBound(300000) * 2;
    uint8_t *f = malloc(bound);
    size_t n1 = ZSTD_compress2(cc, f, bound, d, 100000);
    ASSERT_FALSE(ZSTD_isError(n1));
    ASSERT_EQ(ZSTD_getFrameContentSize(f, n1), ZSTD_CONTENTSIZE_UNKNOWN);
    /* a second frame after the first */
    size_t n2 = ZSTD_compress2(cc, f + n1, bound - n1, d + 100000, 200000);
    ASSERT_FALSE(ZSTD_isError(n2));
    rn_buf_t u;
    rn_buf_init(&u, SIZE_MAX);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_ZSTD, f, n1 + n2, &u, 300000), RN_OK);
    ASSERT_EQ(u.len, 300000);
    ASSERT_MEMEQ(u.data, d, 300000);
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_ZSTD, f, n1 + n2, &u, 299999), RN_ERR_LIMIT);
    rn_buf_reset(&u);
    ASSERT_EQ(rn_decompress(RN_COMPRESSION_ZSTD, f, n1 + n2 - 3, &u, 300000), RN_ERR_CORRUPT);
    rn_arena_t a;
    rn_arena_init(&a, 1 << 20);
    const uint8_t *p;
    size_t plen;
    ASSERT_EQ(rn__decompress_arena(RN_COMPRESSION_ZSTD, f, n1, 100000, &a, &p, &plen), RN_OK);
    ASSERT_EQ(plen, 100000);
    ASSERT_MEMEQ(p, d, 100000);
    /* arena too small for the output */
    rn_arena_reset(&a);
    rn_arena_init(&a, 50000);
    ASSERT_EQ(rn__decompress_arena(RN_COMPRESSION_ZSTD, f, n1, 100000, &a, &p, &plen), RN_ERR_LIMIT);
    rn_arena_reset(&a);
    ZSTD_freeCCtx(cc);
    free(f);
    free(d);
    rn_buf_free(&u);
}

/* 16 MB of zeros, allowed 1 MB: every codec stops at the limit. */
RN_TEST(decompression_bombs) {
    size_t n = 16u << 20;
    uint8_t *zeros = calloc(1, n);
    for (size_t c = 1; c < NCODECS; c++) {
        rn_buf_t cb, u;
        rn_buf_init(&cb, SIZE_MAX);
        rn_buf_init(&u, SIZE_MAX);
        ASSERT_EQ(rn_compress(codecs[c], zeros, n, &cb), RN_OK);
        ASSERT_LT(cb.len, n / 10);
        ASSERT_EQ(rn_decompress(codecs[c], cb.data, cb.len, &u, 1u << 20), RN_ERR_LIMIT);
        ASSERT_EQ(u.len, 0);
        ASSERT_LE(u.cap, (2u << 20) + 1);
        rn_arena_t a;
        rn_arena_init(&a, 4u << 20);
        const uint8_t *p;
        size_t plen;
        ASSERT_EQ(rn__decompress_arena(codecs[c], cb.data, cb.len, 1u << 20, &a, &p, &plen), RN_ERR_LIMIT);
        rn_arena_reset(&a);
        /* the output buffer's own bound counts too */
        rn_buf_t small;
        rn_buf_init(&small, 1000);
        ASSERT_EQ(rn_decompress(codecs[c], cb.data, cb.len, &small, SIZE_MAX), RN_ERR_LIMIT);
        ASSERT_EQ(small.len, 0);
        rn_buf_free(&small);
        rn_buf_free(&cb);
        rn_buf_free(&u);
    }
    free(zeros);
}

/* Corrupt input: truncations must fail; random damage must never crash and must leave out as it was. */
RN_TEST(corrupt_inputs) {
    uint8_t *d = make_data(70000, false);
    for (size_t c = 1; c < NCODECS; c++) {
        rn_buf_t cb, u;
        rn_buf_init(&cb, SIZE_MAX);
        rn_buf_init(&u, SIZE_MAX);
        ASSERT_EQ(rn_compress(codecs[c], d, 70000, &cb), RN_OK);
        for (size_t cut = 0; cut < cb.len; cut += cb.len / 13 + 1) {
            rn_buf_reset(&u);
            rn_err_t err = rn_decompress(codecs[c], cb.data, cut, &u, 1 << 20);
            ASSERT_EQ(err, RN_ERR_CORRUPT);
            ASSERT_EQ(u.len, 0);
        }
        uint32_t x = 12345;
        for (int round = 0; round < 300; round++) {
            uint8_t *m = malloc(cb.len);
            memcpy(m, cb.data, cb.len);
            for (int k = 0; k < 1 + round % 4; k++) {
                x = x * 1103515245u + 12345u;
                m[(x >> 8) % cb.len] ^= (uint8_t)(1u << (x % 8));
            }
            rn_buf_reset(&u);
            rn_err_t err = rn_decompress(codecs[c], m, cb.len, &u, 1 << 20);
            ASSERT_TRUE(err == RN_OK || err == RN_ERR_CORRUPT || err == RN_ERR_LIMIT);
            if (err) ASSERT_EQ(u.len, 0);
            free(m);
        }
        /* garbage */
        uint8_t junk[300];
        for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)(i * 37 + c);
        rn_buf_reset(&u);
        rn_err_t err = rn_decompress(codecs[c], junk, sizeof(junk), &u, 1 << 20);
        ASSERT_TRUE(err == RN_ERR_CORRUPT || err == RN_ERR_LIMIT || err == RN_OK);
        rn_buf_free(&cb);
        rn_buf_free(&u);
    }
    free(d);
}

int main(void) { return rn_test_main(); }
