/*
 * rn_crc32c.c — CRC-32C for record batches.
 *
 * The hardware path uses the SSE4.2 crc32 instruction 8 bytes at a time; the
 * choice is made once at first use from cpuid. The software path is the classic
 * byte-wise table over the reflected polynomial 0x82F63B78.
 */
#include "rn_crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
}

uint32_t rn_crc32c_sw(uint32_t crc, const void *data, size_t len) {
    pthread_once(&table_once, table_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (len--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t c = ~crc & 0xffffffffu;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

uint32_t rn_crc32c(uint32_t crc, const void *data, size_t len) {
    return __builtin_cpu_supports("sse4.2") ? crc32c_hw(crc, data, len) : rn_crc32c_sw(crc, data, len);
}
#else
uint32_t rn_crc32c(uint32_t crc, const void *data, size_t len) { return rn_crc32c_sw(crc, data, len); }
#endif
