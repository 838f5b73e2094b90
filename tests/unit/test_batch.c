/* Unit tests for record batch v2: builder → validate → iterate, and every validation error. */
#include <stdlib.h>

#include "rn_arena.h"
#include "rn_batch.h"
#include "rn_compress.h"
#include "rn_crc32c.h"
#include "rn_test.h"

static const int codecs[] = {RN_COMPRESSION_NONE, RN_COMPRESSION_GZIP, RN_COMPRESSION_SNAPPY, RN_COMPRESSION_LZ4,
                             RN_COMPRESSION_ZSTD};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

static rn_bytes_t B(const char *s) { return s ? (rn_bytes_t){(const uint8_t *)s, (int32_t)strlen(s)} : (rn_bytes_t){NULL, -1}; }

static bool bytes_eq(rn_bytes_t a, rn_bytes_t b) {
    if (a.len != b.len) return false;
    return a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

static rn_batch_validate_opts_t client_opts(void) {
    return (rn_batch_validate_opts_t){
        .max_batch_bytes = 1 << 20,
        .max_decompressed_bytes = 8 << 20,
        .max_records = 100000,
        .full_validation = true,
    };
}

/* A batch of n records: key "k<i>" (null for i % 5 == 4), value "value-<i>" (null for i % 7 == 6), 2 headers on odd i. */
static void build(rn_buf_t *out, int codec, int n, int64_t base_offset) {
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, out, base_offset, codec, 16 << 20);
    for (int i = 0; i < n; i++) {
        char k[32], v[32];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        rn_bytes_t hk[2] = {B("h1"), B("h2")};
        rn_bytes_t hv[2] = {B("one"), B(NULL)};
        rn_batch_builder_add(&b, 1000 + i * 10 - (i == 2 ? 500 : 0), i % 5 == 4 ? B(NULL) : B(k),
                             i % 7 == 6 ? B(NULL) : B(v), i % 2 ? 2 : 0, hk, hv);
    }
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
}

static void check_records(const uint8_t *batch, size_t len, int n, int64_t base_offset) {
    rn_arena_t a;
    rn_arena_init(&a, 32 << 20);
    rn_record_iter_t it;
    ASSERT_EQ(rn_record_iter_init(&it, batch, len, 8 << 20, &a), RN_OK);
    ASSERT_EQ(it.h.record_count, n);
    ASSERT_EQ(it.h.last_offset_delta, n - 1);
    ASSERT_EQ(it.h.base_timestamp, 1000);
    ASSERT_EQ(it.h.max_timestamp, 1000 + (n - 1) * 10);
    ASSERT_EQ(it.h.producer_id, -1);
    ASSERT_EQ(it.h.producer_epoch, -1);
    ASSERT_EQ(it.h.base_sequence, -1);
    ASSERT_EQ(it.h.partition_leader_epoch, -1);
    rn_record_t r;
    int i = 0;
    while (rn_record_iter_next(&it, &r)) {
        char k[32], v[32];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        ASSERT_EQ(r.offset, base_offset + i);
        ASSERT_EQ(r.offset_delta, i);
        ASSERT_EQ(r.timestamp, 1000 + i * 10 - (i == 2 ? 500 : 0));
        ASSERT_TRUE(bytes_eq(r.key, i % 5 == 4 ? B(NULL) : B(k)));
        ASSERT_TRUE(bytes_eq(r.value, i % 7 == 6 ? B(NULL) : B(v)));
        ASSERT_EQ(r.header_count, i % 2 ? 2 : 0);
        if (i % 2) {
            /* h1 → "one", h2 → null, zigzag varints */
            static const uint8_t want[] = {4, 'h', '1', 6, 'o', 'n', 'e', 4, 'h', '2', 1};
            ASSERT_EQ(r.headers_len, sizeof(want));
            ASSERT_MEMEQ(r.headers, want, sizeof(want));
        } else {
            ASSERT_EQ(r.headers_len, 0);
        }
        i++;
    }
    ASSERT_EQ(it.err, RN_OK);
    ASSERT_EQ(i, n);
    rn_arena_reset(&a);
}

RN_TEST(roundtrip_every_codec) {
    for (size_t c = 0; c < NCODECS; c++) {
        for (int n = 1; n <= 200; n *= 7) {
            rn_buf_t out;
            rn_buf_init(&out, 64 << 20);
            rn_buf_put(&out, "pre", 3); /* the builder appends */
            build(&out, codecs[c], n, 4242);
            ASSERT_EQ(rn_load_be32(out.data + 3 + RN_BATCH_OFF_LENGTH) + 12, out.len - 3);
            ASSERT_EQ(rn_batch_codec(&(rn_batch_header_t){.attributes = (int16_t)rn_load_be16(out.data + 3 + 21)}),
                      codecs[c]);
            rn_batch_validate_opts_t o = client_opts();
            int32_t nb = -1;
            int64_t nr = -1;
            ASSERT_EQ(rn_batch_validate_set(out.data + 3, out.len - 3, &o, NULL, &nb, &nr), RN_OK);
            ASSERT_EQ(nb, 1);
            ASSERT_EQ(nr, n);
            check_records(out.data + 3, out.len - 3, n, 4242);
            rn_buf_free(&out);
        }
    }
}

RN_TEST(several_batches) {
    rn_buf_t out;
    rn_buf_init(&out, 64 << 20);
    for (size_t c = 0; c < NCODECS; c++) build(&out, codecs[c], 10 + (int)c, 0);
    rn_batch_validate_opts_t o = client_opts();
    int32_t nb;
    int64_t nr;
    ASSERT_EQ(rn_batch_validate_set(out.data, out.len, &o, NULL, &nb, &nr), RN_OK);
    ASSERT_EQ(nb, 5);
    ASSERT_EQ(nr, 10 + 11 + 12 + 13 + 14);
    o.full_validation = false;
    ASSERT_EQ(rn_batch_validate_set(out.data, out.len, &o, NULL, &nb, &nr), RN_OK);
    ASSERT_EQ(nb, 5);
    ASSERT_EQ(rn_batch_validate_set(out.data, 0, &o, NULL, &nb, &nr), RN_OK);
    ASSERT_EQ(nb, 0);
    rn_buf_free(&out);
}

RN_TEST(big_values) {
    size_t n = 900 * 1000;
    uint8_t *v = malloc(n);
    for (size_t i = 0; i < n; i++) v[i] = (uint8_t)((i * 7) ^ (i >> 9));
    for (size_t c = 0; c < NCODECS; c++) {
        rn_buf_t out;
        rn_buf_init(&out, 64 << 20);
        rn_batch_builder_t b;
        rn_batch_builder_init(&b, &out, 0, codecs[c], 4 << 20);
        rn_batch_builder_add(&b, 5, B("big"), (rn_bytes_t){v, (int32_t)n}, 0, NULL, NULL);
        rn_batch_builder_add(&b, 6, B(NULL), (rn_bytes_t){v + 1, (int32_t)n - 1}, 0, NULL, NULL);
        ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
        rn_batch_validate_opts_t o = client_opts();
        o.max_batch_bytes = 2 << 20;
        int32_t nb;
        int64_t nr;
        ASSERT_EQ(rn_batch_validate_set(out.data, out.len, &o, NULL, &nb, &nr), RN_OK);
        rn_arena_t a;
        rn_arena_init(&a, 8 << 20);
        rn_record_iter_t it;
        ASSERT_EQ(rn_record_iter_init(&it, out.data, out.len, 4 << 20, &a), RN_OK);
        rn_record_t r;
        ASSERT_TRUE(rn_record_iter_next(&it, &r));
        ASSERT_EQ(r.value.len, (int32_t)n);
        ASSERT_MEMEQ(r.value.ptr, v, n);
        ASSERT_TRUE(rn_record_iter_next(&it, &r));
        ASSERT_EQ(r.key.len, -1);
        ASSERT_EQ(r.offset, 1);
        ASSERT_EQ(r.timestamp, 6);
        ASSERT_MEMEQ(r.value.ptr, v + 1, n - 1);
        ASSERT_FALSE(rn_record_iter_next(&it, &r));
        ASSERT_EQ(it.err, RN_OK);
        /* not enough decompression room: MESSAGE_TOO_LARGE */
        if (codecs[c] != RN_COMPRESSION_NONE) {
            ASSERT_EQ(rn_record_iter_init(&it, out.data, out.len, 1 << 20, &a), RN_ERR_MESSAGE_TOO_LARGE);
            o.max_decompressed_bytes = 1 << 20;
            ASSERT_EQ(rn_batch_validate_set(out.data, out.len, &o, NULL, &nb, &nr), RN_ERR_MESSAGE_TOO_LARGE);
            /* arena exhausted */
            rn_arena_t small;
            rn_arena_init(&small, 1 << 20);
            ASSERT_EQ(rn_record_iter_init(&it, out.data, out.len, 4 << 20, &small), RN_ERR_MESSAGE_TOO_LARGE);
            rn_arena_reset(&small);
        }
        rn_arena_reset(&a);
        rn_buf_free(&out);
    }
    free(v);
}

RN_TEST(raw_headers_gaps_and_log_append_time) {
    rn_buf_t out;
    rn_buf_init(&out, 1 << 20);
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, &out, 100, RN_COMPRESSION_LZ4, 1 << 20);
    static const uint8_t hdr[] = {2, 'x', 1};
    rn_batch_builder_add_raw_headers(&b, 0, 50, B("a"), B("1"), 1, hdr, sizeof(hdr));
    rn_batch_builder_add_raw_headers(&b, 3, 70, B("b"), B("2"), 0, NULL, 0);
    rn_batch_builder_add_raw_headers(&b, 7, 60, B("c"), B("3"), 0, NULL, 0);
    b.attributes |= RN_BATCH_ATTR_LOG_APPEND_TIME;
    b.producer_id = 77;
    b.producer_epoch = 3;
    b.base_sequence = 10;
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
    rn_arena_t a;
    rn_arena_init(&a, 1 << 20);
    rn_record_iter_t it;
    ASSERT_EQ(rn_record_iter_init(&it, out.data, out.len, 1 << 20, &a), RN_OK);
    ASSERT_EQ(it.h.last_offset_delta, 7);
    ASSERT_EQ(it.h.record_count, 3);
    ASSERT_EQ(it.h.max_timestamp, 70);
    ASSERT_EQ(it.h.producer_id, 77);
    ASSERT_EQ(it.h.producer_epoch, 3);
    ASSERT_EQ(it.h.base_sequence, 10);
    int64_t offsets[3];
    rn_record_t r;
    int i = 0;
    while (rn_record_iter_next(&it, &r)) {
        offsets[i++] = r.offset;
        ASSERT_EQ(r.timestamp, 70); /* log append time: maxTimestamp */
        if (r.offset == 100) {
            ASSERT_EQ(r.header_count, 1);
            ASSERT_EQ(r.headers_len, sizeof(hdr));
        }
    }
    ASSERT_EQ(it.err, RN_OK);
    ASSERT_EQ(i, 3);
    ASSERT_EQ(offsets[1], 103);
    ASSERT_EQ(offsets[2], 107);
    /* a compacted batch is fine for a trusted source without full validation, not for a client */
    rn_batch_validate_opts_t o = client_opts();
    ASSERT_EQ(rn_batch_validate_set(out.data, out.len, &o, NULL, NULL, NULL), RN_ERR_CORRUPT_MESSAGE);
    rn_arena_reset(&a);
    rn_buf_free(&out);
}

RN_TEST(builder_limits) {
    rn_buf_t out;
    rn_buf_init(&out, 1 << 20);
    rn_buf_put(&out, "abc", 3);
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, &out, 0, RN_COMPRESSION_NONE, 100);
    for (int i = 0; i < 20; i++) rn_batch_builder_add(&b, i, B("key"), B("value value"), 0, NULL, NULL);
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_ERR_LIMIT);
    ASSERT_EQ(out.len, 3);
    /* the output buffer too */
    rn_buf_t small;
    rn_buf_init(&small, 80);
    rn_batch_builder_init(&b, &small, 0, RN_COMPRESSION_GZIP, 1000);
    for (int i = 0; i < 5; i++) rn_batch_builder_add(&b, i, B("key"), B("value"), 0, NULL, NULL);
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_ERR_LIMIT);
    ASSERT_EQ(small.len, 0);
    ASSERT_EQ(rn_buf_err(&small), RN_OK);
    /* abandoned builder */
    rn_batch_builder_init(&b, &out, 0, RN_COMPRESSION_NONE, 1000);
    rn_batch_builder_add(&b, 1, B("k"), B("v"), 0, NULL, NULL);
    rn_batch_builder_abort(&b);
    /* empty batch */
    rn_batch_builder_init(&b, &out, 9, RN_COMPRESSION_ZSTD, 1000);
    ASSERT_EQ(rn_batch_builder_finish(&b), RN_OK);
    rn_batch_header_t h;
    rn_batch_header_decode(out.data + 3, &h);
    ASSERT_EQ(h.record_count, 0);
    ASSERT_EQ(h.base_timestamp, -1);
    ASSERT_EQ(h.max_timestamp, -1);
    rn_batch_validate_opts_t o = client_opts();
    ASSERT_EQ(rn_batch_validate_set(out.data + 3, out.len - 3, &o, NULL, NULL, NULL), RN_ERR_INVALID_RECORD);
    o.allow_control = true;
    ASSERT_EQ(rn_batch_validate_set(out.data + 3, out.len - 3, &o, NULL, NULL, NULL), RN_OK);
    rn_buf_free(&small);
    rn_buf_free(&out);
}

/* ---- crafted bad batches ---- */

/* A batch around hand-made (uncompressed) record bytes, compressed with codec. */
static void craft(rn_buf_t *out, int codec, const uint8_t *records, size_t len, int32_t count, int32_t last_delta,
                  int16_t extra_attr) {
    size_t start = out->len;
    rn_buf_put_zero(out, RN_BATCH_HEADER_SIZE);
    ASSERT_EQ(rn_compress(codec, records, len, out), RN_OK);
    uint8_t *p = out->data + start;
    size_t total = out->len - start;
    rn_store_be32(p + RN_BATCH_OFF_LENGTH, (uint32_t)(total - 12));
    rn_store_be32(p + RN_BATCH_OFF_LEADER_EPOCH, 0xffffffffu);
    p[RN_BATCH_OFF_MAGIC] = 2;
    rn_store_be16(p + RN_BATCH_OFF_ATTRIBUTES, (uint16_t)(codec | extra_attr));
    rn_store_be32(p + RN_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)last_delta);
    rn_store_be32(p + RN_BATCH_OFF_RECORD_COUNT, (uint32_t)count);
    rn_store_be64(p + RN_BATCH_OFF_PRODUCER_ID, UINT64_MAX);
    rn_batch_update_crc(p, total);
}

/* Record bytes for one record with the given offset delta, key and value (null when NULL). */
static void put_record(rn_buf_t *r, int32_t off_delta, const char *key, const char *value) {
    rn_buf_t body;
    rn_buf_init(&body, 1 << 20);
    rn_buf_put_i8(&body, 0);
    rn_buf_put_varlong(&body, 0);
    rn_buf_put_varint(&body, off_delta);
    rn_buf_put_varint(&body, key ? (int32_t)strlen(key) : -1);
    if (key) rn_buf_put(&body, key, strlen(key));
    rn_buf_put_varint(&body, value ? (int32_t)strlen(value) : -1);
    if (value) rn_buf_put(&body, value, strlen(value));
    rn_buf_put_varint(&body, 0);
    rn_buf_put_varint(r, (int32_t)body.len);
    rn_buf_put(r, body.data, body.len);
    rn_buf_free(&body);
}

static rn_err_t validate(const rn_buf_t *b, rn_batch_validate_opts_t o) {
    return rn_batch_validate_set(b->data, b->len, &o, NULL, NULL, NULL);
}

static void patch_and_crc(rn_buf_t *b, size_t off, uint8_t v) {
    b->data[off] = v;
    rn_batch_update_crc(b->data, b->len);
}

RN_TEST(header_errors) {
    rn_buf_t good;
    rn_buf_init(&good, 1 << 20);
    build(&good, RN_COMPRESSION_NONE, 5, 0);
    rn_batch_validate_opts_t o = client_opts();
    ASSERT_EQ(validate(&good, o), RN_OK);
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
#define RESET() (rn_buf_reset(&b), rn_buf_put(&b, good.data, good.len))

    /* bad CRC */
    RESET();
    b.data[b.len - 1] ^= 1;
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);
    RESET();
    b.data[RN_BATCH_OFF_CRC] ^= 0x80;
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);
    /* fields outside the CRC may change */
    RESET();
    rn_batch_set_base_offset(b.data, 999);
    rn_batch_set_leader_epoch(b.data, 5);
    ASSERT_EQ(validate(&b, o), RN_OK);

    /* short: under 17 bytes, under 61 bytes, batch running past the payload, a trailing partial batch */
    ASSERT_EQ(rn_batch_validate_set(good.data, 10, &o, NULL, NULL, NULL), RN_ERR_CORRUPT_MESSAGE);
    ASSERT_EQ(rn_batch_validate_set(good.data, 40, &o, NULL, NULL, NULL), RN_ERR_CORRUPT_MESSAGE);
    ASSERT_EQ(rn_batch_validate_set(good.data, good.len - 1, &o, NULL, NULL, NULL), RN_ERR_CORRUPT_MESSAGE);
    RESET();
    rn_buf_put(&b, good.data, 30);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);
    RESET();
    rn_buf_put(&b, good.data, 70);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);

    /* batchLength below the header */
    RESET();
    rn_store_be32(b.data + RN_BATCH_OFF_LENGTH, 48);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);
    rn_store_be32(b.data + RN_BATCH_OFF_LENGTH, 0xffffffffu);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);

    /* wrong magic */
    RESET();
    b.data[RN_BATCH_OFF_MAGIC] = 1;
    ASSERT_EQ(validate(&b, o), RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    b.data[RN_BATCH_OFF_MAGIC] = 3;
    ASSERT_EQ(validate(&b, o), RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);

    /* lastOffsetDelta inconsistent with recordCount */
    RESET();
    patch_and_crc(&b, RN_BATCH_OFF_LAST_OFFSET_DELTA + 3, 3);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);
    RESET();
    patch_and_crc(&b, RN_BATCH_OFF_LAST_OFFSET_DELTA, 0x80);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);
    /* negative record count, and a count the bytes cannot hold */
    RESET();
    patch_and_crc(&b, RN_BATCH_OFF_RECORD_COUNT, 0xff);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);
    RESET();
    rn_store_be32(b.data + RN_BATCH_OFF_RECORD_COUNT, 1000000);
    rn_store_be32(b.data + RN_BATCH_OFF_LAST_OFFSET_DELTA, 999999);
    rn_batch_update_crc(b.data, b.len);
    ASSERT_EQ(validate(&b, o), RN_ERR_CORRUPT_MESSAGE);

    /* codec 7 (and 5) */
    RESET();
    patch_and_crc(&b, RN_BATCH_OFF_ATTRIBUTES + 1, 7);
    ASSERT_EQ(validate(&b, o), RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    RESET();
    patch_and_crc(&b, RN_BATCH_OFF_ATTRIBUTES + 1, 5);
    ASSERT_EQ(validate(&b, o), RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);

    /* oversize */
    rn_batch_validate_opts_t small = o;
    small.max_batch_bytes = good.len - 1;
    ASSERT_EQ(validate(&good, small), RN_ERR_MESSAGE_TOO_LARGE);
    small.max_batch_bytes = good.len;
    ASSERT_EQ(validate(&good, small), RN_OK);
    small.max_records = 4;
    ASSERT_EQ(validate(&good, small), RN_ERR_MESSAGE_TOO_LARGE);

    /* control batch from a client */
    RESET();
    patch_and_crc(&b, RN_BATCH_OFF_ATTRIBUTES + 1, RN_BATCH_ATTR_CONTROL);
    ASSERT_EQ(validate(&b, o), RN_ERR_INVALID_RECORD);
    rn_batch_validate_opts_t trusted = o;
    trusted.allow_control = true;
    ASSERT_EQ(validate(&b, trusted), RN_OK);
#undef RESET
    rn_buf_free(&b);
    rn_buf_free(&good);
}

RN_TEST(keyless_on_compacted) {
    for (size_t c = 0; c < NCODECS; c++) {
        rn_buf_t b;
        rn_buf_init(&b, 1 << 20);
        build(&b, codecs[c], 4, 0); /* no null key below index 4 */
        rn_batch_validate_opts_t o = client_opts();
        o.full_validation = false;
        o.require_keys = true;
        ASSERT_EQ(validate(&b, o), RN_OK);
        rn_buf_reset(&b);
        build(&b, codecs[c], 5, 0); /* record 4 has a null key */
        ASSERT_EQ(validate(&b, o), RN_ERR_INVALID_RECORD);
        o.require_keys = false;
        ASSERT_EQ(validate(&b, o), RN_OK);
        rn_buf_free(&b);
    }
}

RN_TEST(record_framing_errors) {
    for (size_t c = 0; c < NCODECS; c++) {
        int codec = codecs[c];
        rn_batch_validate_opts_t o = client_opts();
        rn_batch_validate_opts_t cheap = o;
        cheap.full_validation = false;
        rn_buf_t r, b;
        rn_buf_init(&r, 1 << 20);
        rn_buf_init(&b, 1 << 20);

        /* well-formed baseline */
        put_record(&r, 0, "a", "x");
        put_record(&r, 1, "b", "y");
        put_record(&r, 2, "c", "z");
        craft(&b, codec, r.data, r.len, 3, 2, 0);
        ASSERT_EQ(validate(&b, o), RN_OK);

        /* truncated last record: the cheap path cannot see it, full validation does */
        rn_buf_reset(&b);
        craft(&b, codec, r.data, r.len - 2, 3, 2, 0);
        ASSERT_EQ(validate(&b, o), RN_ERR_INVALID_RECORD);
        if (codec != RN_COMPRESSION_NONE) ASSERT_EQ(validate(&b, cheap), RN_OK);

        /* fewer records than counted */
        rn_buf_reset(&b);
        rn_buf_t two;
        rn_buf_init(&two, 1 << 20);
        put_record(&two, 0, "a", "x");
        put_record(&two, 1, "b", "y");
        craft(&b, codec, two.data, two.len, 3, 2, 0);
        /* uncompressed, 18 bytes cannot hold 3 records: caught by the cheap check */
        ASSERT_EQ(validate(&b, o), codec == RN_COMPRESSION_NONE ? RN_ERR_CORRUPT_MESSAGE : RN_ERR_INVALID_RECORD);
        /* more bytes than counted records */
        rn_buf_reset(&b);
        craft(&b, codec, r.data, r.len, 2, 1, 0);
        ASSERT_EQ(validate(&b, o), RN_ERR_INVALID_RECORD);
        /* offsetDelta not the index */
        rn_buf_reset(&two);
        put_record(&two, 0, "a", "x");
        put_record(&two, 5, "b", "y");
        rn_buf_reset(&b);
        craft(&b, codec, two.data, two.len, 2, 1, 0);
        ASSERT_EQ(validate(&b, o), RN_ERR_INVALID_RECORD);
        /* a record length that disagrees with its fields: one byte longer, with a spare byte */
        rn_buf_reset(&two);
        put_record(&two, 0, "a", "x");
        two.data[0] += 2; /* zigzag: +1 */
        rn_buf_put_i8(&two, 0);
        rn_buf_reset(&b);
        craft(&b, codec, two.data, two.len, 1, 0, 0);
        ASSERT_EQ(validate(&b, o), RN_ERR_INVALID_RECORD);
        /* key length -2, negative header count, null header key, overlong length varint */
        static const struct {
            uint8_t len;
            uint8_t bytes[10];
        } cases[] = {
            {5, {8, 0, 0, 0, 3}},
            {7, {12, 0, 0, 0, 1, 1, 1}},
            {9, {16, 0, 0, 0, 1, 1, 2, 1, 1}},
            {6, {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}},
        };
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
            rn_buf_reset(&b);
            craft(&b, codec, cases[k].bytes, cases[k].len, 1, 0, 0);
            bool too_short = codec == RN_COMPRESSION_NONE && cases[k].len < 7; /* the cheap check sees these */
            ASSERT_EQ(validate(&b, o), too_short ? RN_ERR_CORRUPT_MESSAGE : RN_ERR_INVALID_RECORD);
        }
        /* decompression bomb past max_decompressed_bytes */
        if (codec != RN_COMPRESSION_NONE) {
            size_t n = 4 << 20;
            uint8_t *zeros = calloc(1, n);
            rn_buf_t big;
            rn_buf_init(&big, 16 << 20);
            rn_batch_builder_t bb;
            rn_batch_builder_init(&bb, &big, 0, codec, 8 << 20);
            rn_batch_builder_add(&bb, 0, B("k"), (rn_bytes_t){zeros, (int32_t)n}, 0, NULL, NULL);
            ASSERT_EQ(rn_batch_builder_finish(&bb), RN_OK);
            ASSERT_LT(big.len, 1 << 20);
            rn_batch_validate_opts_t bomb = o;
            bomb.max_decompressed_bytes = 1 << 20;
            ASSERT_EQ(validate(&big, bomb), RN_ERR_MESSAGE_TOO_LARGE);
            bomb.full_validation = false;
            ASSERT_EQ(validate(&big, bomb), RN_OK);
            /* damaged compressed data behind a valid CRC */
            rn_buf_reset(&b);
            craft(&b, codec, r.data, r.len, 3, 2, 0);
            rn_buf_t cut;
            rn_buf_init(&cut, 1 << 20);
            rn_buf_put(&cut, b.data, b.len - 3);
            rn_store_be32(cut.data + RN_BATCH_OFF_LENGTH, (uint32_t)(cut.len - 12));
            rn_batch_update_crc(cut.data, cut.len);
            ASSERT_EQ(validate(&cut, o), RN_ERR_CORRUPT_MESSAGE);
            rn_arena_t a;
            rn_arena_init(&a, 1 << 20);
            rn_record_iter_t it;
            ASSERT_EQ(rn_record_iter_init(&it, cut.data, cut.len, 1 << 20, &a), RN_ERR_CORRUPT_MESSAGE);
            rn_arena_reset(&a);
            rn_buf_free(&cut);
            rn_buf_free(&big);
            free(zeros);
        }
        rn_buf_free(&two);
        rn_buf_free(&r);
        rn_buf_free(&b);
    }
}

RN_TEST(iterator_refuses_garbage) {
    rn_arena_t a;
    rn_arena_init(&a, 1 << 20);
    rn_record_iter_t it;
    rn_record_t r;
    uint8_t junk[100];
    memset(junk, 0xab, sizeof(junk));
    ASSERT_EQ(rn_record_iter_init(&it, junk, 10, 1000, &a), RN_ERR_CORRUPT_MESSAGE);
    ASSERT_FALSE(rn_record_iter_next(&it, &r));
    ASSERT_EQ(rn_record_iter_init(&it, junk, sizeof(junk), 1000, &a), RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    junk[RN_BATCH_OFF_MAGIC] = 2;
    ASSERT_EQ(rn_record_iter_init(&it, junk, sizeof(junk), 1000, &a), RN_ERR_CORRUPT_MESSAGE);
    rn_store_be32(junk + RN_BATCH_OFF_LENGTH, sizeof(junk) - 12);
    rn_store_be32(junk + RN_BATCH_OFF_RECORD_COUNT, 3);
    rn_store_be16(junk + RN_BATCH_OFF_ATTRIBUTES, 0);
    ASSERT_EQ(rn_record_iter_init(&it, junk, sizeof(junk), 1000, &a), RN_OK);
    while (rn_record_iter_next(&it, &r)) {
    }
    ASSERT_EQ(it.err, RN_ERR_INVALID_RECORD);
    rn_store_be16(junk + RN_BATCH_OFF_ATTRIBUTES, 6);
    ASSERT_EQ(rn_record_iter_init(&it, junk, sizeof(junk), 1000, &a), RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    rn_arena_reset(&a);
}

int main(void) { return rn_test_main(); }
