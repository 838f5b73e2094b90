/*
 * test_crc32c.c — the hardware CRC-32C paths (one chain, three chains with the
 * shift-table join) against the byte-wise table version.
 *
 * Lengths cover every path boundary (the 768-byte three-chain threshold, the
 * 24 KiB long block, the tails below 8 bytes) and random lengths up to 100 KB,
 * each at every start alignment 0..7 and with random seeds (continuations).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_crc32c.h"
#include "rn_test.h"

#define MAX_LEN (100 * 1024)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint8_t *random_buffer(size_t n) {
    uint8_t *p = malloc(n);
    ASSERT_TRUE(p != NULL);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rng();
    return p;
}

static void check(const uint8_t *p, size_t len, uint32_t seed) {
    uint32_t want = rn_crc32c_sw(seed, p, len);
    uint32_t got = rn_crc32c(seed, p, len);
    if (got != want) {
        fprintf(stderr, "len %zu align %u seed %08x: got %08x want %08x\n", len, (unsigned)((uintptr_t)p & 7),
                (unsigned)seed, (unsigned)got, (unsigned)want);
    }
    ASSERT_EQ(got, want);
}

RN_TEST(crc32c_known_values_all_paths) {
    ASSERT_EQ(rn_crc32c(0, "123456789", 9), 0xE3069283);
    /* 4 KiB of zeros (three chains) and 64 KiB of 0xff (long blocks), against the table. */
    uint8_t *z = calloc(1, 65536);
    ASSERT_TRUE(z != NULL);
    ASSERT_EQ(rn_crc32c(0, z, 4096), rn_crc32c_sw(0, z, 4096));
    memset(z, 0xff, 65536);
    ASSERT_EQ(rn_crc32c(0, z, 65536), rn_crc32c_sw(0, z, 65536));
    free(z);
}

RN_TEST(crc32c_boundaries_every_alignment) {
    uint8_t *buf = random_buffer(MAX_LEN + 8);
    static const size_t lens[] = {0,    1,    7,    8,    9,     255,   256,   767,   768,   769,  775,
                                  776,  1535, 1536, 1537, 2303,  2304,  24575, 24576, 24577, 24583,
                                  25343, 25344, 49151, 49152, 49153, 73728, 74496, MAX_LEN};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        for (size_t align = 0; align < 8; align++) {
            check(buf + align, lens[i], 0);
            check(buf + align, lens[i], (uint32_t)rng());
        }
    free(buf);
}

RN_TEST(crc32c_random_lengths_and_alignments) {
    uint8_t *buf = random_buffer(MAX_LEN + 64);
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t)(rng() % (MAX_LEN + 1));
        if (i % 2) len %= 4096; /* dwell on the short-block region too */
        size_t align = (size_t)(rng() % 64);
        check(buf + align, len, (i % 3) ? 0 : (uint32_t)rng());
    }
    free(buf);
}

RN_TEST(crc32c_continuation_equals_whole) {
    uint8_t *buf = random_buffer(MAX_LEN);
    uint32_t whole = rn_crc32c_sw(0, buf, MAX_LEN);
    for (int i = 0; i < 200; i++) {
        size_t cut = (size_t)(rng() % (MAX_LEN + 1));
        ASSERT_EQ(rn_crc32c(rn_crc32c(0, buf, cut), buf + cut, MAX_LEN - cut), whole);
    }
    free(buf);
}

int main(void) { return rn_test_main(); }
