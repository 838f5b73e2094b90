/* Unit tests for src/core: buffer, reader, varints, CRC-32C, arena, map. */
#include <stdlib.h>

#include "rn_arena.h"
#include "rn_bytes.h"
#include "rn_crc32c.h"
#include "rn_map.h"
#include "rn_test.h"

RN_TEST(varint_roundtrip) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    int64_t vals[] = {0, 1, -1, 63, -64, 64, 300, -300, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) rn_buf_put_varlong(&b, vals[i]);
    rn_buf_put_varint(&b, -5);
    rn_buf_put_uvarint(&b, 0xffffffffu);
    ASSERT_EQ(rn_buf_err(&b), RN_OK);
    rn_reader_t r;
    rn_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) ASSERT_EQ(rn_reader_varlong(&r), vals[i]);
    ASSERT_EQ(rn_reader_varint(&r), -5);
    ASSERT_EQ(rn_reader_uvarint32(&r), 0xffffffffu);
    ASSERT_EQ(rn_reader_err(&r), RN_OK);
    ASSERT_EQ(rn_reader_remaining(&r), 0);
    ASSERT_EQ(rn_varint_size(-1), 1);
    ASSERT_EQ(rn_varlong_size(300), 2);
    rn_buf_free(&b);
}

RN_TEST(reader_sticky_error) {
    uint8_t d[3] = {0, 1, 2};
    rn_reader_t r;
    rn_reader_init(&r, d, sizeof(d));
    ASSERT_EQ(rn_reader_i16(&r), 1);
    ASSERT_EQ(rn_reader_i32(&r), 0);
    ASSERT_EQ(rn_reader_err(&r), RN_ERR_TRUNCATED);
    ASSERT_EQ(rn_reader_i8(&r), 0);
    uint8_t bad[11];
    memset(bad, 0xff, sizeof(bad));
    rn_reader_init(&r, bad, sizeof(bad));
    (void)rn_reader_uvarint(&r);
    ASSERT_EQ(rn_reader_err(&r), RN_ERR_MALFORMED);
}

RN_TEST(strings_and_arrays) {
    rn_buf_t b;
    rn_buf_init(&b, 1024);
    rn_buf_put_str(&b, RN_STR_LIT("hello"), false);
    rn_buf_put_str(&b, RN_STR_NULL, false);
    rn_buf_put_str(&b, RN_STR_LIT("hi"), true);
    rn_buf_put_str(&b, RN_STR_NULL, true);
    rn_buf_put_array_len(&b, 3, true);
    rn_reader_t r;
    rn_reader_init(&r, b.data, b.len);
    rn_str_t s = rn_reader_str(&r, false);
    ASSERT_TRUE(rn_str_eq_cstr(s, "hello"));
    ASSERT_EQ(rn_reader_str(&r, false).len, -1);
    ASSERT_TRUE(rn_str_eq_cstr(rn_reader_str(&r, true), "hi"));
    ASSERT_EQ(rn_reader_str(&r, true).len, -1);
    /* 3 elements of >= 1 byte cannot fit in 0 remaining bytes */
    ASSERT_EQ(rn_reader_array_len(&r, true, 1, 100), -1);
    ASSERT_EQ(rn_reader_err(&r), RN_ERR_MALFORMED);
    rn_buf_free(&b);
}

RN_TEST(buf_limit_and_patch) {
    rn_buf_t b;
    rn_buf_init(&b, 8);
    size_t pos = rn_buf_put_i32(&b, 0);
    rn_buf_put_i32(&b, 7);
    rn_buf_patch_i32(&b, pos, 42);
    ASSERT_EQ(rn_load_be32(b.data), 42);
    rn_buf_put_i8(&b, 1);
    ASSERT_EQ(rn_buf_err(&b), RN_ERR_LIMIT);
    ASSERT_EQ(b.len, 8);
    rn_buf_free(&b);
}

RN_TEST(crc32c_known_values) {
    /* RFC 3720 B.4 test vector: 32 bytes of zeros */
    uint8_t z[32] = {0};
    ASSERT_EQ(rn_crc32c(0, z, 32), 0x8A9136AA);
    ASSERT_EQ(rn_crc32c(0, "123456789", 9), 0xE3069283);
    uint8_t data[1000];
    for (int i = 0; i < 1000; i++) data[i] = (uint8_t)(i * 7);
    ASSERT_EQ(rn_crc32c(0, data, 1000), rn_crc32c_sw(0, data, 1000));
    ASSERT_EQ(rn_crc32c(rn_crc32c(0, data, 333), data + 333, 667), rn_crc32c(0, data, 1000));
}

RN_TEST(arena_bound) {
    rn_arena_t a;
    rn_arena_init(&a, 64 * 1024);
    ASSERT_TRUE(rn_arena_alloc(&a, 1000) != NULL);
    ASSERT_TRUE(rn_arena_alloc(&a, 1 << 20) == NULL);
    ASSERT_TRUE(rn_arena_calloc(&a, SIZE_MAX / 2, 4) == NULL);
    char *s = rn_arena_strndup(&a, "abc", 3);
    ASSERT_STREQ(s, "abc");
    rn_arena_reset(&a);
    ASSERT_EQ(a.used_bytes, 0);
}

RN_TEST(map_basic) {
    rn_map_t m;
    rn_map_init(&m);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        ASSERT_TRUE(rn_map_put(&m, key, (size_t)n, (void *)(intptr_t)(i + 1)));
    }
    ASSERT_EQ(m.count, 1000);
    for (int i = 0; i < 1000; i += 2) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        ASSERT_EQ((intptr_t)rn_map_del(&m, key, (size_t)n), i + 1);
    }
    ASSERT_EQ(m.count, 500);
    ASSERT_EQ((intptr_t)rn_map_get(&m, "k1", 2), 2);
    ASSERT_TRUE(rn_map_get(&m, "k0", 2) == NULL);
    size_t it = 0, seen = 0;
    const char *k;
    void *v;
    while (rn_map_next(&m, &it, &k, &v)) seen++;
    ASSERT_EQ(seen, 500);
    rn_map_free(&m);
}

int main(void) { return rn_test_main(); }
