/*
 * rn_batch_validate.c — checking a Produce "records" payload before it is
 * appended to the log as received.
 *
 * Two tiers, because the broker stores batches without recompressing them:
 *   cheap (always)  sizes, magic, CRC-32C, codec, control bit, count vs
 *                   lastOffsetDelta: header reads plus one hardware CRC pass.
 *   full (opt-in)   decode every record (decompressing into one scratch buffer
 *                   reused across batches, bounded by max_decompressed_bytes):
 *                   framing, offsetDelta == index, keys when required.
 * The order of checks and the error for each are listed in rn_batch.h.
 *
 * The full tier is the produce path's main cost (a 100-byte record is about
 * ten varints), so it does not use rn_record_iter: records_valid() walks the
 * records with inlined varint readers over a raw pointer range, one-byte
 * varints first, and keeps no decoded record. It accepts exactly what
 * rn_record_iter_next accepts (same varint limits: 5 bytes for varints, the
 * last within 32 bits; 10 for varlongs, the last within 64; same per-field
 * checks, listed at records_valid), because a batch that validates here must
 * iterate later; every failure is INVALID_RECORD, so where it is found does
 * not change the answer.
 */
#include <string.h>

#include "rn_assert.h"
#include "rn_batch.h"
#include "rn_varint_raw.h"
#include "rn_compress.h"

#define MIN_RECORD_SIZE 7 /* length, attributes, timestampDelta, offsetDelta, keyLength, valueLength, headerCount */

/*
 * The records of one batch, [p, end), hold exactly `count` records, each
 *   length >= 0 and within what is left; then, within exactly `length` bytes:
 *   attributes (1 byte), timestampDelta (varlong), offsetDelta == its index,
 *   key and value (length >= -1, bytes within the record; key not null when
 *   require_keys), headerCount >= 0 and <= bytes left / 2, per header a key
 *   length >= 0 and a value length >= -1 with their bytes within the record,
 *   and nothing left over.
 */
static bool records_valid(const uint8_t *p, const uint8_t *end, int32_t count, bool require_keys) {
    for (int32_t index = 0; index < count; index++) {
        int32_t len;
        if (!raw_varint(&p, end, &len) || len < 0 || (size_t)len > (size_t)(end - p)) return false;
        const uint8_t *rend = p + len;
        if (p == rend) return false; /* attributes */
        p++;
        int64_t ts_delta;
        if (!raw_varlong(&p, rend, &ts_delta)) return false;
        int32_t off_delta;
        if (!raw_varint(&p, rend, &off_delta) || off_delta != index) return false;
        rn_bytes_t key, value;
        if (!raw_varbytes(&p, rend, &key) || (require_keys && key.len < 0)) return false;
        if (!raw_varbytes(&p, rend, &value)) return false;
        int32_t nh;
        if (!raw_varint(&p, rend, &nh) || nh < 0 || (size_t)nh > (size_t)(rend - p) / 2) return false;
        for (int32_t i = 0; i < nh; i++) {
            int32_t klen;
            if (!raw_varint(&p, rend, &klen) || klen < 0 || (size_t)klen > (size_t)(rend - p)) return false;
            p += klen;
            if (!raw_varbytes(&p, rend, &value)) return false;
        }
        if (p != rend) return false;
    }
    return p == end;
}

static rn_err_t validate_records(const uint8_t *batch, const rn_batch_header_t *h,
                                 const rn_batch_validate_opts_t *opts, rn_buf_t *scratch) {
    const uint8_t *records = batch + RN_BATCH_HEADER_SIZE;
    size_t len = rn_batch_total_size(h) - RN_BATCH_HEADER_SIZE;
    int codec = rn_batch_codec(h);
    if (codec != RN_COMPRESSION_NONE) {
        size_t max = opts->max_decompressed_bytes ? opts->max_decompressed_bytes : RN__DEFAULT_MAX_DECOMPRESSED;
        if ((uint64_t)h->record_count * MIN_RECORD_SIZE > max) return RN_ERR_MESSAGE_TOO_LARGE;
        rn_buf_reset(scratch);
        rn_err_t err = rn_decompress(codec, records, len, scratch, max);
        if (err == RN_ERR_LIMIT) return RN_ERR_MESSAGE_TOO_LARGE;
        if (err == RN_ERR_NOMEM) return err;
        if (err) return RN_ERR_CORRUPT_MESSAGE;
        records = scratch->data;
        len = scratch->len;
    }
    const uint8_t *end = len ? records + len : records; /* records may be NULL when empty */
    if (!records_valid(records, end, h->record_count, opts->require_keys)) return RN_ERR_INVALID_RECORD;
    return RN_OK;
}

/* One batch at the start of p (rem bytes left); *total gets its size. */
static rn_err_t validate_batch(const uint8_t *p, size_t rem, const rn_batch_validate_opts_t *opts, rn_buf_t *scratch,
                               size_t *total) {
    if (rem <= RN_BATCH_OFF_MAGIC) return RN_ERR_CORRUPT_MESSAGE;
    if (p[RN_BATCH_OFF_MAGIC] != 2) return RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (rem < RN_BATCH_HEADER_SIZE) return RN_ERR_CORRUPT_MESSAGE;
    rn_batch_header_t h;
    rn_batch_header_decode(p, &h);
    if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD) return RN_ERR_CORRUPT_MESSAGE;
    size_t size = rn_batch_total_size(&h);
    if (opts->max_batch_bytes && size > opts->max_batch_bytes) return RN_ERR_MESSAGE_TOO_LARGE;
    if (size > rem) return RN_ERR_CORRUPT_MESSAGE;
    if (rn_batch_compute_crc(p, size) != h.crc) return RN_ERR_CORRUPT_MESSAGE;
    if (rn_batch_codec(&h) > RN_COMPRESSION_ZSTD) return RN_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (rn_batch_is_control(&h) && !opts->allow_control) return RN_ERR_INVALID_RECORD;
    if (h.record_count < 0 || h.last_offset_delta < 0) return RN_ERR_CORRUPT_MESSAGE;
    if (h.record_count > 0 && h.last_offset_delta != h.record_count - 1) return RN_ERR_CORRUPT_MESSAGE;
    if (rn_batch_codec(&h) == RN_COMPRESSION_NONE &&
        (size_t)h.record_count > (size - RN_BATCH_HEADER_SIZE) / MIN_RECORD_SIZE)
        return RN_ERR_CORRUPT_MESSAGE;
    if (opts->max_records > 0 && h.record_count > opts->max_records) return RN_ERR_MESSAGE_TOO_LARGE;
    if (h.record_count == 0 && !opts->allow_control) return RN_ERR_INVALID_RECORD;
    *total = size;
    if (opts->full_validation || opts->require_keys) return validate_records(p, &h, opts, scratch);
    return RN_OK;
}

rn_err_t rn_batch_validate_set(const uint8_t *data, size_t len, const rn_batch_validate_opts_t *opts,
                               rn_arena_t *arena, int32_t *batch_count, int64_t *record_count) {
    (void)arena;
    RN_ASSERT(opts != NULL);
    rn_buf_t scratch;
    rn_buf_init(&scratch, SIZE_MAX);
    int32_t batches = 0;
    int64_t records = 0;
    rn_err_t err = RN_OK;
    for (size_t pos = 0; pos < len;) {
        size_t total = 0;
        err = validate_batch(data + pos, len - pos, opts, &scratch, &total);
        if (err) break;
        if (batches == INT32_MAX) {
            err = RN_ERR_CORRUPT_MESSAGE;
            break;
        }
        batches++;
        records += rn_load_be32(data + pos + RN_BATCH_OFF_RECORD_COUNT);
        pos += total;
    }
    rn_buf_free(&scratch);
    if (err) return err;
    if (batch_count) *batch_count = batches;
    if (record_count) *record_count = records;
    return RN_OK;
}
