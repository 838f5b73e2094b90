/* Unit tests for legacy message sets (magic 0/1): up-conversion to v2 and down-conversion from v2. */
#include <stdlib.h>
#include <zlib.h>

#include "rn_arena.h"
#include "rn_batch.h"
#include "rn_compress.h"
#include "rn_test.h"

static rn_bytes_t B(const char *s) { return s ? (rn_bytes_t){(const uint8_t *)s, (int32_t)strlen(s)} : (rn_bytes_t){NULL, -1}; }

static bool bytes_eq(rn_bytes_t a, rn_bytes_t b) {
    if (a.len != b.len) return false;
    return a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

/* The test's own legacy encoder (written from the format, not from rn_msgset.c). */
static void put_msg(rn_buf_t *b, int64_t offset, int magic, int attr, int64_t ts, rn_bytes_t key, rn_bytes_t value) {
    rn_buf_t m;
    rn_buf_init(&m, 64 << 20);
    rn_buf_put_i8(&m, (int8_t)magic);
    rn_buf_put_i8(&m, (int8_t)attr);
    if (magic == 1) rn_buf_put_i64(&m, ts);
    rn_buf_put_bytes(&m, key, false);
    rn_buf_put_bytes(&m, value, false);
    rn_buf_put_i64(b, offset);
    rn_buf_put_i32(b, (int32_t)(m.len + 4));
    rn_buf_put_u32(b, (uint32_t)crc32(0, m.data, (uInt)m.len));
    rn_buf_put(b, m.data, m.len);
    rn_buf_free(&m);
}

/* A wrapper around an inner set compressed with codec (magic 0 lz4: Kafka 0.8's header checksum). */
static void put_wrapper(rn_buf_t *b, int64_t offset, int magic, int codec, int64_t ts, const rn_buf_t *inner) {
    rn_buf_t c;
    rn_buf_init(&c, 64 << 20);
    ASSERT_EQ(rn_compress_for_magic(codec, magic, inner->data, inner->len, &c), RN_OK);
    put_msg(b, offset, magic, codec, ts, B(NULL), (rn_bytes_t){c.data, (int32_t)c.len});
    rn_buf_free(&c);
}

typedef struct {
    int64_t offset;
    int magic, attr;
    int64_t ts;
    rn_bytes_t key, value;
} msg_t;

/* The test's own parser; checks every CRC. Returns the number of messages or -1. */
static int parse_set(const uint8_t *p, size_t len, msg_t *out, int max) {
    int n = 0;
    rn_reader_t r;
    rn_reader_init(&r, p, len);
    while (rn_reader_remaining(&r) > 0) {
        if (n == max) return -1;
        msg_t *m = &out[n];
        m->offset = rn_reader_i64(&r);
        int32_t size = rn_reader_i32(&r);
        const uint8_t *body = rn_reader_take(&r, (size_t)size);
        if (!body) return -1;
        if (rn_load_be32(body) != (uint32_t)crc32(0, body + 4, (uInt)size - 4)) return -1;
        rn_reader_t b;
        rn_reader_init(&b, body + 4, (size_t)size - 4);
        m->magic = rn_reader_i8(&b);
        m->attr = rn_reader_i8(&b);
        m->ts = m->magic == 1 ? rn_reader_i64(&b) : -1;
        m->key = rn_reader_bytes(&b, false);
        m->value = rn_reader_bytes(&b, false);
        if (b.err || rn_reader_remaining(&b)) return -1;
        n++;
    }
    return r.err ? -1 : n;
}

static rn_batch_validate_opts_t opts(void) {
    return (rn_batch_validate_opts_t){.max_batch_bytes = 1 << 20, .max_decompressed_bytes = 8 << 20,
                                      .full_validation = true};
}

typedef struct {
    int64_t offset, ts;
    const char *key, *value;
} want_t;

/* Validates `v2` as client batches and checks the records in order. Returns the batch count. */
static int check_v2(const rn_buf_t *v2, const want_t *want, int n) {
    rn_batch_validate_opts_t o = opts();
    int32_t nb = 0;
    int64_t nr = 0;
    ASSERT_EQ(rn_batch_validate_set(v2->data, v2->len, &o, NULL, &nb, &nr), RN_OK);
    ASSERT_EQ(nr, n);
    rn_arena_t a;
    rn_arena_init(&a, 16 << 20);
    int i = 0;
    for (size_t pos = 0; pos < v2->len;) {
        rn_batch_header_t h;
        rn_batch_header_decode(v2->data + pos, &h);
        ASSERT_EQ(h.base_offset, 0);
        rn_record_iter_t it;
        ASSERT_EQ(rn_record_iter_init(&it, v2->data + pos, rn_batch_total_size(&h), 8 << 20, &a), RN_OK);
        rn_record_t r;
        while (rn_record_iter_next(&it, &r)) {
            ASSERT_LT(i, n);
            ASSERT_EQ(r.timestamp, want[i].ts);
            ASSERT_TRUE(bytes_eq(r.key, B(want[i].key)));
            ASSERT_TRUE(bytes_eq(r.value, B(want[i].value)));
            ASSERT_EQ(r.header_count, 0);
            i++;
        }
        ASSERT_EQ(it.err, RN_OK);
        pos += rn_batch_total_size(&h);
    }
    ASSERT_EQ(i, n);
    rn_arena_reset(&a);
    return nb;
}

static const want_t plain3[] = {{0, 10, "k0", "v0"}, {1, 20, NULL, "v1"}, {2, 15, "k2", NULL}};

RN_TEST(up_plain_v0_v1) {
    for (int magic = 0; magic <= 1; magic++) {
        rn_buf_t in, out;
        rn_buf_init(&in, 1 << 20);
        rn_buf_init(&out, 1 << 20);
        for (int i = 0; i < 3; i++) put_msg(&in, i, magic, 0, plain3[i].ts, B(plain3[i].key), B(plain3[i].value));
        ASSERT_EQ(rn_records_magic(in.data, in.len), magic);
        rn_batch_validate_opts_t o = opts();
        ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &o, NULL), RN_OK);
        want_t w[3];
        memcpy(w, plain3, sizeof(w));
        if (magic == 0)
            for (int i = 0; i < 3; i++) w[i].ts = -1;
        ASSERT_EQ(check_v2(&out, w, 3), 1);
        ASSERT_EQ(rn_records_magic(out.data, out.len), 2);
        rn_batch_header_t h;
        rn_batch_header_decode(out.data, &h);
        ASSERT_EQ(h.max_timestamp, magic ? 20 : -1);
        ASSERT_EQ(rn_batch_codec(&h), RN_COMPRESSION_NONE);
        rn_buf_free(&in);
        rn_buf_free(&out);
    }
}

RN_TEST(up_compressed_wrappers) {
    int codecs[] = {RN_COMPRESSION_GZIP, RN_COMPRESSION_SNAPPY, RN_COMPRESSION_LZ4};
    for (int magic = 0; magic <= 1; magic++) {
        for (int c = 0; c < 3; c++) {
            rn_buf_t inner, in, out;
            rn_buf_init(&inner, 1 << 20);
            rn_buf_init(&in, 1 << 20);
            rn_buf_init(&out, 1 << 20);
            /* magic 1 inner offsets are relative; magic 0 ones absolute (any value works on produce) */
            for (int i = 0; i < 3; i++)
                put_msg(&inner, magic ? i : 100 + i, magic, 0, plain3[i].ts, B(plain3[i].key), B(plain3[i].value));
            put_msg(&in, 0, magic, 0, 5, B("p0"), B("plain"));
            put_wrapper(&in, 2, magic, codecs[c], 99, &inner);
            put_msg(&in, 3, magic, 0, 6, B("p1"), B("plain2"));
            rn_batch_validate_opts_t o = opts();
            ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &o, NULL), RN_OK);
            want_t w[5] = {{0, 5, "p0", "plain"}, plain3[0], plain3[1], plain3[2], {0, 6, "p1", "plain2"}};
            if (magic == 0)
                for (int i = 0; i < 5; i++) w[i].ts = -1;
            ASSERT_EQ(check_v2(&out, w, 5), 3);
            /* the middle batch keeps the wrapper's codec */
            rn_batch_header_t h;
            rn_batch_header_decode(out.data, &h);
            rn_batch_header_decode(out.data + rn_batch_total_size(&h), &h);
            ASSERT_EQ(rn_batch_codec(&h), codecs[c]);
            ASSERT_EQ(h.record_count, 3);

            /* LogAppendTime wrapper (magic 1): every record takes the wrapper's timestamp */
            if (magic == 1) {
                rn_buf_reset(&in);
                rn_buf_reset(&out);
                rn_buf_t cz;
                rn_buf_init(&cz, 1 << 20);
                ASSERT_EQ(rn_compress(codecs[c], inner.data, inner.len, &cz), RN_OK);
                put_msg(&in, 2, 1, codecs[c] | 0x08, 777, B(NULL), (rn_bytes_t){cz.data, (int32_t)cz.len});
                ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &o, NULL), RN_OK);
                rn_batch_header_decode(out.data, &h);
                ASSERT_TRUE(h.attributes & RN_BATCH_ATTR_LOG_APPEND_TIME);
                ASSERT_EQ(h.max_timestamp, 777);
                rn_buf_free(&cz);
            }
            rn_buf_free(&inner);
            rn_buf_free(&in);
            rn_buf_free(&out);
        }
    }
}

RN_TEST(up_errors) {
    rn_buf_t in, out, inner;
    rn_buf_init(&in, 1 << 20);
    rn_buf_init(&out, 1 << 20);
    rn_buf_init(&inner, 1 << 20);
    rn_batch_validate_opts_t o = opts();
    rn_buf_put(&out, "keep", 4);

    /* bad CRC */
    put_msg(&in, 0, 1, 0, 1, B("k"), B("value"));
    put_msg(&in, 1, 1, 0, 1, B("k"), B("value"));
    in.data[in.len - 1] ^= 1;
    ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    ASSERT_EQ(out.len, 4);
    ASSERT_EQ(rn_buf_err(&out), RN_OK);
    in.data[in.len - 1] ^= 1;
    ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &o, NULL), RN_OK);
    out.len = 4;
    /* truncated: partial message at the end, size below the minimum */
    ASSERT_EQ(rn_msgset_to_v2(in.data, in.len - 1, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    ASSERT_EQ(rn_msgset_to_v2(in.data, 8, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    rn_buf_t bad;
    rn_buf_init(&bad, 1 << 20);
    rn_buf_put(&bad, in.data, in.len);
    rn_store_be32(bad.data + 8, 13);
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    /* key length running past the message (CRC recomputed) */
    rn_buf_reset(&bad);
    put_msg(&bad, 0, 0, 0, -1, B("k"), B("v"));
    rn_store_be32(bad.data + 18, 50);
    rn_store_be32(bad.data + 12, (uint32_t)crc32(0, bad.data + 16, (uInt)bad.len - 16));
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    /* magic 2 data is not a message set */
    rn_buf_reset(&bad);
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, &bad, 0, RN_COMPRESSION_NONE, 1000);
    rn_batch_builder_add(&b, 1, B("k"), B("v"), 0, NULL, NULL);
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    /* too large */
    rn_batch_validate_opts_t small = o;
    small.max_batch_bytes = 30;
    ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &small, NULL), RN_ERR_MESSAGE_TOO_LARGE);
    /* keyless on a compacted topic */
    rn_buf_reset(&bad);
    put_msg(&bad, 0, 1, 0, 1, B(NULL), B("v"));
    rn_batch_validate_opts_t keys = o;
    keys.require_keys = true;
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &keys, NULL), RN_ERR_INVALID_RECORD);

    /* wrappers: zstd, codec 5, nested compression, bad inner CRC, empty, null value, inner magic mismatch */
    put_msg(&inner, 0, 1, 0, 1, B("k"), B("v"));
    rn_buf_reset(&bad);
    put_wrapper(&bad, 0, 1, RN_COMPRESSION_ZSTD, 1, &inner);
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    rn_buf_reset(&bad);
    put_msg(&bad, 0, 1, 5, 1, B(NULL), B("xx"));
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    rn_buf_t nested;
    rn_buf_init(&nested, 1 << 20);
    put_wrapper(&nested, 0, 1, RN_COMPRESSION_GZIP, 1, &inner);
    rn_buf_reset(&bad);
    put_wrapper(&bad, 0, 1, RN_COMPRESSION_GZIP, 1, &nested);
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_INVALID_RECORD);
    rn_buf_t broken;
    rn_buf_init(&broken, 1 << 20);
    rn_buf_put(&broken, inner.data, inner.len);
    broken.data[broken.len - 1] ^= 0x40;
    rn_buf_reset(&bad);
    put_wrapper(&bad, 0, 1, RN_COMPRESSION_SNAPPY, 1, &broken);
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    rn_buf_t empty;
    rn_buf_init(&empty, 16);
    rn_buf_reset(&bad);
    put_wrapper(&bad, 0, 1, RN_COMPRESSION_GZIP, 1, &empty);
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_INVALID_RECORD);
    rn_buf_reset(&bad);
    put_msg(&bad, 0, 1, RN_COMPRESSION_GZIP, 1, B(NULL), B(NULL));
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    rn_buf_reset(&bad);
    put_wrapper(&bad, 0, 0, RN_COMPRESSION_GZIP, 1, &inner);
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_INVALID_RECORD);
    /* corrupt compressed value behind a valid CRC */
    rn_buf_reset(&bad);
    put_msg(&bad, 0, 1, RN_COMPRESSION_LZ4, 1, B(NULL), B("not lz4 at all"));
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &o, NULL), RN_ERR_CORRUPT_MESSAGE);
    /* bomb */
    rn_buf_t zeros;
    rn_buf_init(&zeros, 64 << 20);
    rn_buf_put_zero(&zeros, 4 << 20);
    rn_buf_reset(&bad);
    put_wrapper(&bad, 0, 1, RN_COMPRESSION_GZIP, 1, &zeros);
    rn_batch_validate_opts_t bomb = o;
    bomb.max_decompressed_bytes = 1 << 20;
    ASSERT_EQ(rn_msgset_to_v2(bad.data, bad.len, &out, &bomb, NULL), RN_ERR_MESSAGE_TOO_LARGE);
    ASSERT_EQ(out.len, 4);

    rn_buf_free(&zeros);
    rn_buf_free(&empty);
    rn_buf_free(&broken);
    rn_buf_free(&nested);
    rn_buf_free(&bad);
    rn_buf_free(&inner);
    rn_buf_free(&in);
    rn_buf_free(&out);
}

RN_TEST(up_splits_long_runs) {
    rn_buf_t in, out;
    rn_buf_init(&in, 1 << 20);
    rn_buf_init(&out, 1 << 20);
    want_t w[100];
    char vals[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(vals[i], sizeof(vals[i]), "v%03d", i);
        put_msg(&in, i, 1, 0, i, B("key"), B(vals[i]));
        w[i] = (want_t){0, i, "key", vals[i]};
    }
    rn_batch_validate_opts_t o = opts();
    o.max_batch_bytes = 500;
    ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &o, NULL), RN_OK);
    int nb = check_v2(&out, w, 100);
    ASSERT_GE(nb, 3);
    for (size_t pos = 0; pos < out.len;) {
        rn_batch_header_t h;
        rn_batch_header_decode(out.data + pos, &h);
        ASSERT_LE(rn_batch_total_size(&h), 500);
        pos += rn_batch_total_size(&h);
    }
    o.max_batch_bytes = 0;
    o.max_records = 7;
    rn_buf_reset(&out);
    ASSERT_EQ(rn_msgset_to_v2(in.data, in.len, &out, &o, NULL), RN_OK);
    ASSERT_EQ(check_v2(&out, w, 100), 15);
    rn_buf_free(&in);
    rn_buf_free(&out);
}

/* ---- down ---- */

/* Log data: batches at offsets 100 (plain, 3), 103 (gzip, 3), control at 106, 107 (zstd, 2), 109 (lz4, 2, gaps). */
static void make_log(rn_buf_t *log) {
    rn_batch_builder_t b;
    int codecs[] = {RN_COMPRESSION_NONE, RN_COMPRESSION_GZIP};
    for (int c = 0; c < 2; c++) {
        rn_batch_builder_init(&b, log, 100 + c * 3, codecs[c], 1 << 20);
        for (int i = 0; i < 3; i++) {
            rn_bytes_t hk = B("h"), hv = B("x");
            rn_batch_builder_add(&b, plain3[i].ts, B(plain3[i].key), B(plain3[i].value), 1, &hk, &hv);
        }
        ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
    }
    rn_batch_builder_init(&b, log, 106, RN_COMPRESSION_NONE, 1 << 20);
    rn_batch_builder_add(&b, 30, B("\0\0\0\1"), B(""), 0, NULL, NULL);
    b.attributes |= RN_BATCH_ATTR_CONTROL | RN_BATCH_ATTR_TRANSACTIONAL;
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
    rn_batch_builder_init(&b, log, 107, RN_COMPRESSION_ZSTD, 1 << 20);
    rn_batch_builder_add(&b, 40, B("z0"), B("zv0"), 0, NULL, NULL);
    rn_batch_builder_add(&b, 41, B("z1"), B("zv1"), 0, NULL, NULL);
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
    rn_batch_builder_init(&b, log, 109, RN_COMPRESSION_LZ4, 1 << 20);
    rn_batch_builder_add_raw_headers(&b, 0, 50, B("l0"), B("lv0"), 0, NULL, 0);
    rn_batch_builder_add_raw_headers(&b, 4, 55, B("l1"), B("lv1"), 0, NULL, 0);
    b.attributes |= RN_BATCH_ATTR_LOG_APPEND_TIME;
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
}

/* Flattened expectation: absolute offset, timestamp, key, value. */
static const want_t log_records[] = {
    {100, 10, "k0", "v0"}, {101, 20, NULL, "v1"}, {102, 15, "k2", NULL}, {103, 10, "k0", "v0"},
    {104, 20, NULL, "v1"}, {105, 15, "k2", NULL}, {107, 40, "z0", "zv0"}, {108, 41, "z1", "zv1"},
    {109, 55, "l0", "lv0"}, {113, 55, "l1", "lv1"},
};

RN_TEST(down_v1_and_v0) {
    rn_buf_t log;
    rn_buf_init(&log, 1 << 20);
    make_log(&log);
    for (int magic = 0; magic <= 1; magic++) {
        rn_buf_t out;
        rn_buf_init(&out, 1 << 20);
        ASSERT_EQ(rn_batches_to_msgset(log.data, log.len, (int8_t)magic, &out, 1 << 20, NULL), RN_OK);
        ASSERT_EQ(rn_records_magic(out.data, out.len), magic);
        msg_t outer[32];
        int n = parse_set(out.data, out.len, outer, 32);
        /* 3 plain, 1 gzip wrapper, 2 plain (zstd is sent uncompressed), 1 lz4 wrapper */
        ASSERT_EQ(n, 7);
        int k = 0;
        for (int i = 0; i < n; i++) {
            msg_t *m = &outer[i];
            ASSERT_EQ(m->magic, magic);
            int codec = m->attr & 7;
            if (codec == 0) {
                ASSERT_EQ(m->offset, log_records[k].offset);
                ASSERT_EQ(m->ts, magic ? log_records[k].ts : -1);
                ASSERT_TRUE(bytes_eq(m->key, B(log_records[k].key)));
                ASSERT_TRUE(bytes_eq(m->value, B(log_records[k].value)));
                k++;
                continue;
            }
            ASSERT_TRUE(i == 3 ? codec == RN_COMPRESSION_GZIP : codec == RN_COMPRESSION_LZ4);
            ASSERT_EQ(m->key.len, -1);
            if (codec == RN_COMPRESSION_LZ4 && magic == 0) /* Kafka 0.8's header checksum */
                ASSERT_EQ(m->value.ptr[6], (uint8_t)(rn__xxh32(m->value.ptr, 6, 0) >> 8));
            rn_buf_t inner;
            rn_buf_init(&inner, 1 << 20);
            ASSERT_EQ(rn_decompress(codec, m->value.ptr, (size_t)m->value.len, &inner, 1 << 20), RN_OK);
            msg_t in[8];
            int ni = parse_set(inner.data, inner.len, in, 8);
            ASSERT_GT(ni, 0);
            /* wrapper offset is the last inner one; magic 1 inner offsets are relative */
            ASSERT_EQ(m->offset, log_records[k + ni - 1].offset);
            if (magic == 1 && codec == RN_COMPRESSION_LZ4) {
                ASSERT_TRUE(m->attr & 0x08);
                ASSERT_EQ(m->ts, 55);
            }
            for (int j = 0; j < ni; j++, k++) {
                int64_t abs = magic == 1 ? m->offset - in[ni - 1].offset + in[j].offset : in[j].offset;
                ASSERT_EQ(abs, log_records[k].offset);
                ASSERT_EQ(in[j].attr, 0);
                ASSERT_EQ(in[j].ts, magic ? log_records[k].ts : -1);
                ASSERT_TRUE(bytes_eq(in[j].key, B(log_records[k].key)));
                ASSERT_TRUE(bytes_eq(in[j].value, B(log_records[k].value)));
            }
            rn_buf_free(&inner);
        }
        ASSERT_EQ(k, 10);

        /* and back up: the same keys and values */
        rn_buf_t up;
        rn_buf_init(&up, 1 << 20);
        rn_batch_validate_opts_t o = opts();
        ASSERT_EQ(rn_msgset_to_v2(out.data, out.len, &up, &o, NULL), RN_OK);
        want_t w[10];
        for (int i = 0; i < 10; i++) {
            w[i] = log_records[i];
            if (magic == 0) w[i].ts = -1;
        }
        ASSERT_EQ(check_v2(&up, w, 10), 4);
        rn_buf_free(&up);
        rn_buf_free(&out);
    }
    rn_buf_free(&log);
}

RN_TEST(down_partial_and_limits) {
    rn_buf_t log, out;
    rn_buf_init(&log, 1 << 20);
    rn_buf_init(&out, 1 << 20);
    make_log(&log);
    rn_batch_header_t h;
    rn_batch_header_decode(log.data, &h);
    size_t first = rn_batch_total_size(&h);
    /* a partial second batch is left out */
    ASSERT_EQ(rn_batches_to_msgset(log.data, first + 30, 1, &out, 1 << 20, NULL), RN_OK);
    msg_t m[8];
    ASSERT_EQ(parse_set(out.data, out.len, m, 8), 3);
    rn_buf_reset(&out);
    ASSERT_EQ(rn_batches_to_msgset(log.data, first + 70, 1, &out, 1 << 20, NULL), RN_OK);
    ASSERT_EQ(parse_set(out.data, out.len, m, 8), 3);
    /* an output too small for everything keeps whole batches */
    rn_buf_t small;
    rn_buf_init(&small, 200);
    ASSERT_EQ(rn_batches_to_msgset(log.data, log.len, 1, &small, 1 << 20, NULL), RN_OK);
    ASSERT_EQ(parse_set(small.data, small.len, m, 8), 3);
    ASSERT_EQ(rn_buf_err(&small), RN_OK);
    rn_buf_t tiny;
    rn_buf_init(&tiny, 20);
    ASSERT_EQ(rn_batches_to_msgset(log.data, log.len, 1, &tiny, 1 << 20, NULL), RN_ERR_LIMIT);
    ASSERT_EQ(tiny.len, 0);
    /* wrong magic in the log data */
    rn_buf_t bad;
    rn_buf_init(&bad, 1 << 20);
    rn_buf_put(&bad, log.data, log.len);
    bad.data[first + RN_BATCH_OFF_MAGIC] = 1;
    rn_buf_reset(&out);
    ASSERT_EQ(rn_batches_to_msgset(bad.data, bad.len, 1, &out, 1 << 20, NULL), RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    ASSERT_EQ(out.len, 0);
    /* decompression past the bound */
    rn_buf_free(&bad);
    rn_buf_init(&bad, 64 << 20);
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, &bad, 0, RN_COMPRESSION_GZIP, 8 << 20);
    static uint8_t zeros[2 << 20];
    rn_batch_builder_add(&b, 0, B("k"), (rn_bytes_t){zeros, (int32_t)sizeof(zeros)}, 0, NULL, NULL);
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
    ASSERT_EQ(rn_batches_to_msgset(bad.data, bad.len, 0, &out, 1 << 20, NULL), RN_ERR_MESSAGE_TOO_LARGE);
    ASSERT_EQ(rn_records_magic(bad.data, 10), -1);
    rn_buf_free(&bad);
    rn_buf_free(&tiny);
    rn_buf_free(&small);
    rn_buf_free(&log);
    rn_buf_free(&out);
}

int main(void) { return rn_test_main(); }
