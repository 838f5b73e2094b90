/*
 * fuzz_batch.c — libFuzzer target for the record batch and message set decoders.
 *
 * The input is treated as a Produce records payload both ways:
 *   - v2: rn_batch_validate_set with full validation, then rn_record_iter over
 *     every batch that fits (CRC or not), then down-conversion to magic 0 and 1;
 *   - legacy: rn_msgset_to_v2.
 * Each input runs as given, and again with its CRCs recomputed (CRC-32C of
 * v2 batches, outer CRC-32 of legacy messages) so that mutations get past the
 * checksums into decompression and record decoding.
 * Everything runs under bounded arenas and buffers. Beyond "no crash, no leak"
 * it checks round-trip invariants: what the up-conversion writes is a set of
 * valid client batches, and what the down-conversion writes converts back up.
 *
 * Seeds: tests/fuzz/corpus/batch/ (batches in every codec, legacy message sets).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "rn_arena.h"
#include "rn_assert.h"
#include "rn_batch.h"

#define MAX_DECOMPRESSED (1u << 20)

static const rn_batch_validate_opts_t client = {
    .max_batch_bytes = 1u << 20,
    .max_decompressed_bytes = MAX_DECOMPRESSED,
    .max_records = 100000,
    .full_validation = true,
};

static const rn_batch_validate_opts_t trusted = {
    .max_decompressed_bytes = MAX_DECOMPRESSED * 8,
    .allow_control = true,
    .full_validation = true,
};

static volatile uint64_t sink;

/* With `valid` (the set passed full validation) every batch must iterate to its recordCount without error. */
static void iterate_batches(const uint8_t *data, size_t size, bool valid) {
    for (size_t pos = 0; size - pos >= RN_BATCH_HEADER_SIZE;) {
        rn_batch_header_t h;
        rn_batch_header_decode(data + pos, &h);
        if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD || rn_batch_total_size(&h) > size - pos)
            break;
        rn_arena_t a;
        rn_arena_init(&a, 2 * MAX_DECOMPRESSED);
        rn_record_iter_t it;
        rn_err_t err = rn_record_iter_init(&it, data + pos, rn_batch_total_size(&h), MAX_DECOMPRESSED, &a);
        RN_ASSERT(!valid || err == RN_OK);
        if (err == RN_OK) {
            rn_record_t r;
            int32_t n = 0;
            while (rn_record_iter_next(&it, &r)) {
                n++;
                uint64_t s = (uint64_t)r.offset + (uint64_t)r.timestamp + r.headers_len;
                if (r.key.len > 0) s += r.key.ptr[r.key.len - 1];
                if (r.value.len > 0) s += r.value.ptr[r.value.len - 1];
                if (r.headers_len > 0) s += r.headers[r.headers_len - 1];
                sink += s;
            }
            RN_ASSERT(!valid || (it.err == RN_OK && n == h.record_count));
        }
        rn_arena_reset(&a);
        pos += rn_batch_total_size(&h);
    }
}

static void down_and_back(const uint8_t *data, size_t size, int8_t magic) {
    rn_buf_t legacy;
    rn_buf_init(&legacy, 16u << 20);
    if (rn_batches_to_msgset(data, size, magic, &legacy, MAX_DECOMPRESSED, NULL) == RN_OK && legacy.len > 0) {
        rn_buf_t v2;
        rn_buf_init(&v2, 64u << 20);
        rn_err_t err = rn_msgset_to_v2(legacy.data, legacy.len, &v2, &trusted, NULL);
        RN_ASSERT(err == RN_OK);
        rn_buf_free(&v2);
    }
    rn_buf_free(&legacy);
}

/* Recompute every CRC-32C of the v2 batches in place, so mutations reach the record decoders. */
static void fix_v2_crcs(uint8_t *p, size_t size) {
    for (size_t pos = 0; size - pos >= RN_BATCH_HEADER_SIZE;) {
        rn_batch_header_t h;
        rn_batch_header_decode(p + pos, &h);
        if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD || rn_batch_total_size(&h) > size - pos)
            break;
        rn_batch_update_crc(p + pos, rn_batch_total_size(&h));
        pos += rn_batch_total_size(&h);
    }
}

/* The same for the outer CRC-32s of a legacy message set. */
static void fix_legacy_crcs(uint8_t *p, size_t size) {
    for (size_t pos = 0; size - pos >= 17;) {
        int32_t msize = (int32_t)rn_load_be32(p + pos + 8);
        if (msize < 5 || (size_t)msize > size - pos - 12) break;
        rn_store_be32(p + pos + 12, (uint32_t)crc32(0, p + pos + 16, (uInt)msize - 4));
        pos += 12 + (size_t)msize;
    }
}

static void run(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    if (size) memcpy(copy, data, size);
    if (rn_records_magic(data, size) == 2)
        fix_v2_crcs(copy, size);
    else
        fix_legacy_crcs(copy, size);
    if (size && memcmp(copy, data, size) != 0) run(copy, size);
    free(copy);
    return 0;
}

static void run(const uint8_t *data, size_t size) {
    int32_t batches = 0;
    int64_t records = 0;
    rn_arena_t arena;
    rn_arena_init(&arena, 4u << 20);
    rn_err_t v2_err = rn_batch_validate_set(data, size, &client, &arena, &batches, &records);
    rn_arena_reset(&arena);
    iterate_batches(data, size, v2_err == RN_OK);
    if (v2_err == RN_OK || rn_records_magic(data, size) == 2) {
        down_and_back(data, size, 0);
        down_and_back(data, size, 1);
    }

    rn_buf_t out;
    rn_buf_init(&out, 16u << 20);
    if (rn_msgset_to_v2(data, size, &out, &client, &arena) == RN_OK) {
        /* Whatever the up-conversion writes must pass as client batches. */
        rn_batch_validate_opts_t check = client;
        check.max_batch_bytes = 0; /* recompressing may grow a wrapper past the original */
        check.max_decompressed_bytes = MAX_DECOMPRESSED * 8;
        rn_err_t err = rn_batch_validate_set(out.data, out.len, &check, NULL, NULL, NULL);
        RN_ASSERT(err == RN_OK);
    }
    rn_buf_free(&out);
    rn_arena_reset(&arena);
}
