/*
 * fuzz_quorum_msgs.c — libFuzzer target for the metadata quorum's own formats
 * (src/cluster/rn_quorum.c): the address record a node reads from the Raft log
 * and snapshots, and the join request a controller reads from a new node.
 *
 * Input: the first byte picks the decoder (even: address record, odd: join
 * request), the rest is its input. What decodes re-encodes to the same bytes,
 * and holds what the decoder promises (counts bounded, ids >= 0 and distinct,
 * ports > 0, strings NUL-terminated within their fields).
 * Seeds: tests/fuzz/corpus/quorum_msgs/.
 */
#include <stdint.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_quorum.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    rn_buf_t b;
    rn_buf_init(&b, 1 << 20);
    if ((data[0] & 1) == 0) {
        rn_quorum_addrs_t a;
        if (rn_quorum_addrs_decode(p, n, &a) == RN_OK) {
            RN_ASSERT(a.n >= 0 && a.n <= RN_QUORUM_MEMBERS_MAX);
            for (int32_t i = 0; i < a.n; i++) {
                RN_ASSERT(a.addrs[i].id >= 0 && a.addrs[i].port > 0 && a.addrs[i].port <= 65535);
                RN_ASSERT(strlen(a.addrs[i].host) > 0 && strlen(a.addrs[i].host) < sizeof(a.addrs[i].host));
                for (int32_t k = 0; k < i; k++) RN_ASSERT(a.addrs[k].id != a.addrs[i].id);
            }
            rn_quorum_addrs_encode(&a, &b);
            RN_ASSERT(!rn_buf_err(&b) && b.len == n && !memcmp(b.data, p, n));
        }
    } else {
        rn_quorum_join_req_t r;
        if (rn_quorum_join_req_decode(p, n, &r) == RN_OK) {
            RN_ASSERT(r.id >= 0 && r.port > 0 && r.host[0]);
            rn_quorum_join_req_encode(&r, &b);
            RN_ASSERT(!rn_buf_err(&b) && b.len == n && !memcmp(b.data, p, n));
        }
    }
    rn_buf_free(&b);
    return 0;
}
