/*
 * fuzz_request.c — libFuzzer target for the request header and every
 * generated request/response body decoder.
 *
 * Input: one request frame without its 4-byte size (header, then body), as the
 * broker sees it. The header picks the API and version; the body is decoded
 * as that API's request (what the broker does) and, for extra coverage, as its
 * response, each under a bounded arena.
 *
 * Oracle besides the sanitizers: when a body decodes, encoding the result and
 * decoding that again must succeed and re-encode to the same bytes
 * (encode∘decode is idempotent), and the arena bound is never exceeded.
 *
 * Seeds: tests/fuzz/corpus/request/ (written by test_codec with RN_WRITE_SEEDS).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_arena.h"
#include "rn_assert.h"
#include "rn_bytes.h"
#include "rn_header.h"
#include "rn_msg_gen.h"

#define FUZZ_ARENA_MAX (1u << 20)

static void check_body(int16_t api_key, bool response, int16_t version, const uint8_t *p, size_t n) {
    rn_arena_t arena;
    rn_arena_init(&arena, FUZZ_ARENA_MAX);
    rn_reader_t r;
    rn_reader_init(&r, p, n);
    void *m = NULL;
    rn_err_t err = rn_msg_decode_any(api_key, response, version, &r, &arena, &m);
    RN_ASSERT(arena.used_bytes <= FUZZ_ARENA_MAX);
    RN_ASSERT(r.pos <= r.len);
    if (err != RN_OK) {
        rn_arena_reset(&arena);
        return;
    }

    size_t bound = 4 * n + 4096;
    rn_buf_t b1, b2;
    rn_buf_init(&b1, bound);
    rn_buf_init(&b2, bound);
    rn_msg_encode_any(api_key, response, version, &b1, m);
    RN_ASSERT(rn_buf_err(&b1) == RN_OK);
    RN_ASSERT(b1.len <= r.pos); /* normalizing never grows the encoding */

    rn_arena_t arena2;
    rn_arena_init(&arena2, FUZZ_ARENA_MAX);
    rn_reader_t r2;
    rn_reader_init(&r2, b1.data, b1.len);
    void *m2 = NULL;
    err = rn_msg_decode_any(api_key, response, version, &r2, &arena2, &m2);
    RN_ASSERT(err == RN_OK);
    RN_ASSERT(rn_reader_remaining(&r2) == 0);
    rn_msg_encode_any(api_key, response, version, &b2, m2);
    RN_ASSERT(rn_buf_err(&b2) == RN_OK);
    RN_ASSERT(b2.len == b1.len);
    RN_ASSERT(b1.len == 0 || memcmp(b1.data, b2.data, b1.len) == 0);

    rn_buf_free(&b1);
    rn_buf_free(&b2);
    rn_arena_reset(&arena);
    rn_arena_reset(&arena2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rn_reader_t r;
    rn_reader_init(&r, data, size);
    rn_req_header_t h;
    if (rn_req_header_decode(&r, &h) != RN_OK) return 0;
    RN_ASSERT(h.header_version >= 0 && h.header_version <= 2);
    RN_ASSERT(h.client_id.len < 0 || (const uint8_t *)h.client_id.ptr + h.client_id.len <= data + size);

    const uint8_t *body = data + r.pos;
    size_t body_len = rn_reader_remaining(&r);

    /* what the broker does */
    rn_arena_t arena;
    rn_arena_init(&arena, FUZZ_ARENA_MAX);
    rn_reader_t br;
    rn_reader_init(&br, body, body_len);
    rn_err_t err = rn_request_decode_any(h.api_key, h.api_version, &br, &arena);
    RN_ASSERT(arena.used_bytes <= FUZZ_ARENA_MAX);
    if (!rn_api_info(h.api_key)) RN_ASSERT(err == RN_ERR_UNSUPPORTED_VERSION);
    rn_arena_reset(&arena);

    check_body(h.api_key, false, h.api_version, body, body_len);
    check_body(h.api_key, true, h.api_version, body, body_len);
    return 0;
}
