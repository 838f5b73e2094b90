/*
 * fuzz_meta_feed.c — libFuzzer target for the metadata feed's wire format
 * (src/cluster/rn_meta_feed.c): what a broker-only node decodes from a
 * controller, and what a controller decodes from a broker.
 *
 * Input: u64 `from` (big-endian), then a response body. When it decodes,
 *   - the entries iterate to exactly the checked length, each index above the
 *     previous one and above `from`;
 *   - appended to a feed and read back after `from`, they encode to the same
 *     bytes (the controller's side writes what the broker's side accepts);
 *   - a snapshot's bytes lie inside the input.
 * The whole input is also decoded as a request, which must round-trip.
 * Seeds: tests/fuzz/corpus/meta_feed/.
 */
#include <stdint.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_meta_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rn_meta_feed_req_t rq;
    if (rn_meta_feed_req_decode(data, size, &rq) == RN_OK) {
        rn_buf_t b;
        rn_buf_init(&b, 64);
        rn_meta_feed_req_encode(&b, &rq);
        RN_ASSERT(b.len == size && !memcmp(b.data, data, size));
        rn_buf_free(&b);
    }
    if (size < 8) return 0;
    uint64_t from = 0;
    for (int i = 0; i < 8; i++) from = from << 8 | data[i];
    rn_meta_feed_resp_t r;
    if (rn_meta_feed_resp_decode(data + 8, size - 8, from, &r) != RN_OK || r.error) return 0;
    if (r.kind == RN_META_FEED_KIND_SNAPSHOT) {
        RN_ASSERT(r.snapshot >= data + 8 && r.snapshot + r.snapshot_len <= data + size);
        return 0;
    }
    rn_meta_feed_t *f = rn_meta_feed_new((size_t)1 << 30);
    rn_meta_feed_reset(f, from);
    size_t pos = 0;
    uint64_t index, prev = from;
    const uint8_t *p;
    size_t len;
    uint32_t n = 0;
    while (rn_meta_feed_resp_next(&r, &pos, &index, &p, &len)) {
        RN_ASSERT(index > prev);
        prev = index;
        rn_meta_feed_append(f, index, p, len);
        n++;
    }
    RN_ASSERT(n == r.count && pos == r.entries_len);
    rn_buf_t out;
    rn_buf_init(&out, (size_t)1 << 30);
    RN_ASSERT(rn_meta_feed_read(f, from, (size_t)1 << 30, &out));
    RN_ASSERT(out.len == 4 + r.entries_len && !memcmp(out.data + 4, r.entries, r.entries_len));
    rn_buf_free(&out);
    rn_meta_feed_free(f);
    return 0;
}
