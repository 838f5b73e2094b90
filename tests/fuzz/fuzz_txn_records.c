/*
 * fuzz_txn_records.c — libFuzzer target for the __transaction_state record
 * decoders (src/txn/rn_txn_log.c), which read whatever a damaged log holds at
 * start-up.
 *
 * The input is tried as a key and as a value. A value that parses re-encodes
 * (as v0), and that encoding parses to the same fields and encodes to the same
 * bytes again (a fixed point). Partition counts are bounded by the decoder's
 * limit argument, so nothing allocates without bound.
 *
 * Seeds: tests/fuzz/corpus/txn_records/ (keys, v0 and v1 values).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_txn_log.h"

#define MAX_PARTS 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    rn_bytes_t in = {data, (int32_t)size};
    rn_str_t id;
    if (rn_txn_log_parse_key(in, &id) == RN_OK) RN_ASSERT(id.len > 0 && (size_t)id.len + 4 == size);
    rn_txn_record_t v;
    if (rn_txn_log_parse_value(in, MAX_PARTS, &v) != RN_OK) return 0;
    RN_ASSERT(v.nparts >= 0 && v.nparts <= MAX_PARTS && v.state >= RN_TXN_EMPTY && v.state <= RN_TXN_DEAD);
    rn_buf_t a, b;
    rn_buf_init(&a, 4u << 20);
    rn_buf_init(&b, 4u << 20);
    RN_ASSERT(rn_txn_log_value(&a, &v) == RN_OK && !rn_buf_err(&a));
    rn_txn_record_t w;
    RN_ASSERT(rn_txn_log_parse_value((rn_bytes_t){a.data, (int32_t)a.len}, MAX_PARTS, &w) == RN_OK);
    RN_ASSERT(w.producer_id == v.producer_id && w.producer_epoch == v.producer_epoch &&
              w.timeout_ms == v.timeout_ms && w.state == v.state && w.nparts == v.nparts &&
              w.last_update_ms == v.last_update_ms && w.start_ms == v.start_ms);
    RN_ASSERT(rn_txn_log_value(&b, &w) == RN_OK && b.len == a.len && memcmp(a.data, b.data, a.len) == 0);
    rn_txn_record_free(&w);
    rn_txn_record_free(&v);
    rn_buf_free(&a);
    rn_buf_free(&b);
    return 0;
}
