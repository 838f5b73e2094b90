/*
 * rn_batch_records.c — the records inside a v2 batch: iteration and building.
 *
 * Record (all varints zigzag, as Kafka's, except where noted):
 *   length          varint   bytes after this field
 *   attributes      int8     unused
 *   timestampDelta  varlong  from baseTimestamp
 *   offsetDelta     varint   from baseOffset
 *   keyLength       varint   -1: null
 *   key             bytes
 *   valueLength     varint   -1: null
 *   value           bytes
 *   headerCount     varint
 *   headers         [headerKeyLength varint (>= 0), key, headerValueLength varint (-1: null), value]
 *
 * The iterator decodes one record per call with inlined varint readers over a
 * raw pointer range of exactly `length` bytes, so a record can never read into
 * its neighbour; any mismatch is INVALID_RECORD. The varint limits are the
 * rn_reader's (5 bytes for varints, the last within 32 bits; 10 for varlongs,
 * the last within 64), and rn_batch_validate.c walks records with the same
 * rules, so what validates also iterates. Compressed batches are decompressed
 * once, into the caller's arena, at init.
 *
 * The builder encodes uncompressed records into its own buffer and, at finish,
 * writes the header placeholder to `out`, the (compressed) records after it,
 * then patches lengths, deltas, timestamps and the CRC-32C.
 */
#include <string.h>

#include "rn_assert.h"
#include "rn_batch.h"
#include "rn_varint_raw.h"
#include "rn_compress.h"

/* ---- iteration ---- */

static rn_err_t iter_fail(rn_record_iter_t *it, rn_err_t err) {
    if (it->err == RN_OK) it->err = err;
    return it->err;
}

void rn__record_iter_init_records(rn_record_iter_t *it, const rn_batch_header_t *h, const uint8_t *records,
                                  size_t len) {
    it->h = *h;
    rn_reader_init(&it->r, records, len);
    it->index = 0;
    it->err = RN_OK;
}

rn_err_t rn_record_iter_init(rn_record_iter_t *it, const uint8_t *batch, size_t total_size, size_t max_decompressed,
                             rn_arena_t *arena) {
    memset(it, 0, sizeof(*it));
    rn_reader_init(&it->r, NULL, 0);
    if (total_size < RN_BATCH_HEADER_SIZE) {
        if (total_size > RN_BATCH_OFF_MAGIC && batch[RN_BATCH_OFF_MAGIC] != 2)
            return iter_fail(it, RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
        return iter_fail(it, RN_ERR_CORRUPT_MESSAGE);
    }
    rn_batch_header_t h;
    rn_batch_header_decode(batch, &h);
    it->h = h;
    if (h.magic != 2) return iter_fail(it, RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD || rn_batch_total_size(&h) > total_size ||
        h.record_count < 0)
        return iter_fail(it, RN_ERR_CORRUPT_MESSAGE);
    const uint8_t *records = batch + RN_BATCH_HEADER_SIZE;
    size_t len = rn_batch_total_size(&h) - RN_BATCH_HEADER_SIZE;
    int codec = rn_batch_codec(&h);
    if (codec > RN_COMPRESSION_ZSTD) return iter_fail(it, RN_ERR_UNSUPPORTED_COMPRESSION_TYPE);
    if (codec != RN_COMPRESSION_NONE) {
        if (max_decompressed == 0) max_decompressed = RN__DEFAULT_MAX_DECOMPRESSED;
        const uint8_t *plain;
        size_t plain_len;
        rn_err_t err = rn__decompress_arena(codec, records, len, max_decompressed, arena, &plain, &plain_len);
        if (err == RN_ERR_LIMIT) return iter_fail(it, RN_ERR_MESSAGE_TOO_LARGE);
        if (err == RN_ERR_NOMEM) return iter_fail(it, RN_ERR_NOMEM);
        if (err) return iter_fail(it, RN_ERR_CORRUPT_MESSAGE);
        records = plain;
        len = plain_len;
    }
    rn__record_iter_init_records(it, &h, records, len);
    return RN_OK;
}

bool rn_record_iter_next(rn_record_iter_t *it, rn_record_t *rec) {
    if (it->err) return false;
    rn_reader_t *r = &it->r;
    size_t left = r->len - r->pos;
    const uint8_t *p = left ? r->p + r->pos : r->p; /* r->p may be NULL when there are no records */
    const uint8_t *end = left ? p + left : p;
    if (it->index >= it->h.record_count) {
        if (left != 0) iter_fail(it, RN_ERR_INVALID_RECORD);
        return false;
    }
    int32_t len;
    if (!raw_varint(&p, end, &len) || len < 0 || (size_t)len > (size_t)(end - p)) {
        iter_fail(it, RN_ERR_INVALID_RECORD);
        return false;
    }
    const uint8_t *rend = p + len;
    r->pos = (size_t)(rend - r->p);

    int64_t ts_delta;
    int32_t off_delta, nh;
    rn_bytes_t key, value, hvalue;
    if (p == rend) goto invalid; /* attributes */
    int8_t attributes = (int8_t)*p++;
    if (!raw_varlong(&p, rend, &ts_delta) || !raw_varint(&p, rend, &off_delta) || !raw_varbytes(&p, rend, &key) ||
        !raw_varbytes(&p, rend, &value) || !raw_varint(&p, rend, &nh))
        goto invalid;
    /* Each header needs at least two bytes (two one-byte varints). */
    if (nh < 0 || (size_t)nh > (size_t)(rend - p) / 2) goto invalid;
    const uint8_t *headers = p;
    for (int32_t i = 0; i < nh; i++) {
        int32_t klen;
        if (!raw_varint(&p, rend, &klen) || klen < 0 || (size_t)klen > (size_t)(rend - p)) goto invalid;
        p += klen;
        if (!raw_varbytes(&p, rend, &hvalue)) goto invalid;
    }
    if (p != rend) goto invalid;

    rec->attributes = attributes;
    rec->key = key;
    rec->value = value;
    rec->offset_delta = off_delta;
    rec->offset = (int64_t)((uint64_t)it->h.base_offset + (uint64_t)(int64_t)off_delta);
    if (it->h.attributes & RN_BATCH_ATTR_LOG_APPEND_TIME)
        rec->timestamp = it->h.max_timestamp;
    else
        rec->timestamp = (int64_t)((uint64_t)it->h.base_timestamp + (uint64_t)ts_delta);
    rec->header_count = nh;
    rec->headers = headers;
    rec->headers_len = (size_t)(rend - headers);
    it->index++;
    return true;

invalid:
    iter_fail(it, RN_ERR_INVALID_RECORD);
    return false;
}

/* ---- building ---- */

void rn_batch_builder_init(rn_batch_builder_t *b, rn_buf_t *out, int64_t base_offset, int codec, size_t max_bytes) {
    RN_ASSERT(codec >= RN_COMPRESSION_NONE && codec <= RN_COMPRESSION_ZSTD);
    memset(b, 0, sizeof(*b));
    b->out = out;
    b->start = out->len;
    rn_buf_init(&b->records, max_bytes);
    b->base_offset = base_offset;
    b->base_timestamp = -1;
    b->max_timestamp = -1;
    b->attributes = (int16_t)codec;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
    b->partition_leader_epoch = -1;
    b->max_bytes = max_bytes;
}

static size_t varbytes_size(rn_bytes_t v) {
    return v.len < 0 ? 1 : rn_varint_size(v.len) + (size_t)v.len;
}

static void put_varbytes(rn_buf_t *buf, rn_bytes_t v) {
    if (v.len < 0) {
        rn_buf_put_varint(buf, -1);
        return;
    }
    rn_buf_put_varint(buf, v.len);
    rn_buf_put(buf, v.ptr, (size_t)v.len);
}

/* Everything but the header bytes; `headers` NULL means write them from the arrays. */
static void add_record(rn_batch_builder_t *b, int64_t offset_delta, int64_t timestamp, rn_bytes_t key,
                       rn_bytes_t value, int32_t header_count, const rn_bytes_t *hkeys, const rn_bytes_t *hvalues,
                       const uint8_t *headers, size_t headers_len) {
    RN_ASSERT(header_count >= 0);
    RN_ASSERT(offset_delta >= 0 && offset_delta <= INT32_MAX);
    if (b->count == 0) b->base_timestamp = timestamp;
    if (b->count == 0 || timestamp > b->max_timestamp) b->max_timestamp = timestamp;
    if (b->count == 0 || offset_delta > b->last_offset_delta) b->last_offset_delta = (int32_t)offset_delta;
    int64_t ts_delta = (int64_t)((uint64_t)timestamp - (uint64_t)b->base_timestamp);

    if (!headers) {
        headers_len = 0;
        for (int32_t i = 0; i < header_count; i++) {
            RN_ASSERT(hkeys[i].len >= 0);
            headers_len += varbytes_size(hkeys[i]) + varbytes_size(hvalues[i]);
        }
    }
    size_t body = 1 + rn_varlong_size(ts_delta) + rn_varint_size((int32_t)offset_delta) + varbytes_size(key) +
                  varbytes_size(value) + rn_varint_size(header_count) + headers_len;
    if (body > INT32_MAX) {
        b->records.err = RN_ERR_LIMIT;
        return;
    }
    rn_buf_t *r = &b->records;
    rn_buf_put_varint(r, (int32_t)body);
    rn_buf_put_i8(r, 0);
    rn_buf_put_varlong(r, ts_delta);
    rn_buf_put_varint(r, (int32_t)offset_delta);
    put_varbytes(r, key);
    put_varbytes(r, value);
    rn_buf_put_varint(r, header_count);
    if (headers) {
        rn_buf_put(r, headers, headers_len);
    } else {
        for (int32_t i = 0; i < header_count; i++) {
            put_varbytes(r, hkeys[i]);
            put_varbytes(r, hvalues[i]);
        }
    }
    b->count++;
}

void rn_batch_builder_add(rn_batch_builder_t *b, int64_t timestamp, rn_bytes_t key, rn_bytes_t value,
                          int32_t header_count, const rn_bytes_t *header_keys, const rn_bytes_t *header_values) {
    add_record(b, b->count, timestamp, key, value, header_count, header_keys, header_values, NULL, 0);
}

void rn_batch_builder_add_raw_headers(rn_batch_builder_t *b, int64_t offset_delta, int64_t timestamp, rn_bytes_t key,
                                      rn_bytes_t value, int32_t header_count, const uint8_t *headers,
                                      size_t headers_len) {
    static const uint8_t none[1];
    add_record(b, offset_delta, timestamp, key, value, header_count, NULL, NULL, headers ? headers : none,
               headers ? headers_len : 0);
}

rn_err_t rn_batch_builder_finish(rn_batch_builder_t *b) {
    rn_buf_t *out = b->out;
    rn_err_t err = b->records.err ? b->records.err : out->err;
    if (err) {
        rn_batch_builder_abort(b);
        return err;
    }
    RN_ASSERT(out->len == b->start);
    rn_buf_put_zero(out, RN_BATCH_HEADER_SIZE);
    int codec = b->attributes & RN_BATCH_ATTR_CODEC_MASK;
    if (codec == RN_COMPRESSION_NONE)
        rn_buf_put(out, b->records.data, b->records.len);
    else
        err = rn_compress(codec, b->records.data, b->records.len, out);
    if (!err) err = out->err;
    size_t total = out->len - b->start;
    if (!err && total - RN_BATCH_LOG_OVERHEAD > INT32_MAX) err = RN_ERR_LIMIT;
    if (err) {
        out->len = b->start;
        if (out->err == RN_ERR_LIMIT) out->err = RN_OK; /* reported here instead */
        rn_batch_builder_abort(b);
        return err;
    }
    uint8_t *p = out->data + b->start;
    rn_store_be64(p + RN_BATCH_OFF_BASE_OFFSET, (uint64_t)b->base_offset);
    rn_store_be32(p + RN_BATCH_OFF_LENGTH, (uint32_t)(total - RN_BATCH_LOG_OVERHEAD));
    rn_store_be32(p + RN_BATCH_OFF_LEADER_EPOCH, (uint32_t)b->partition_leader_epoch);
    p[RN_BATCH_OFF_MAGIC] = 2;
    rn_store_be16(p + RN_BATCH_OFF_ATTRIBUTES, (uint16_t)b->attributes);
    rn_store_be32(p + RN_BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)b->last_offset_delta);
    rn_store_be64(p + RN_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)b->base_timestamp);
    rn_store_be64(p + RN_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
    rn_store_be64(p + RN_BATCH_OFF_PRODUCER_ID, (uint64_t)b->producer_id);
    rn_store_be16(p + RN_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)b->producer_epoch);
    rn_store_be32(p + RN_BATCH_OFF_BASE_SEQUENCE, (uint32_t)b->base_sequence);
    rn_store_be32(p + RN_BATCH_OFF_RECORD_COUNT, (uint32_t)b->count);
    rn_batch_update_crc(p, total);
    rn_batch_builder_abort(b);
    return RN_OK;
}

void rn_batch_builder_abort(rn_batch_builder_t *b) { rn_buf_free(&b->records); }
