/*
 * rn_msgset.c — legacy message sets (magic 0 and 1) to and from v2 batches.
 *
 * Entry layout (big-endian), repeated with no count in front:
 *   0  offset        int64
 *   8  messageSize   int32   bytes after this field
 *  12  crc           uint32  CRC-32 (IEEE, zlib's crc32) of bytes [16, 12 + messageSize)
 *  16  magic         int8    0 or 1
 *  17  attributes    int8    bits 0-2 codec (0-3), bit 3 LogAppendTime (magic 1)
 *  18  timestamp     int64   magic 1 only
 *      key           int32 length (-1 null) + bytes
 *      value         int32 length (-1 null) + bytes
 * A compressed "wrapper" has a null key and a value that is a whole message
 * set compressed with its codec. Its offset is that of its last inner message.
 * Inner offsets are absolute for magic 0 and relative (0, 1, ...) for magic 1.
 *
 * Up (Produce v0-v2): every wrapper becomes one v2 batch recompressed with the
 * same codec; every run of plain messages becomes one uncompressed batch (split
 * where it would pass max_batch_bytes). Offsets start at 0 as a client's do;
 * the log assigns real ones. Magic 0 messages have no timestamp: -1.
 *
 * Down (Fetch v0-v3): every record of every non-control batch becomes a message
 * at its own offset. A compressed batch becomes one wrapper with the same codec,
 * except zstd, which old formats lack: its records go out uncompressed. Headers
 * are dropped; magic 0 drops timestamps too. A partial batch at the end (the
 * fetch size cut it) is left out, as Kafka does.
 */
#include <string.h>
#include <zlib.h>

#include "rn_assert.h"
#include "rn_batch.h"
#include "rn_compress.h"

#define LEGACY_LOG_OVERHEAD 12
#define LEGACY_OFF_CRC 12
#define LEGACY_OFF_MAGIC 16
#define LEGACY_MIN_SIZE_V0 14 /* crc, magic, attributes, key length, value length */
#define LEGACY_MIN_SIZE_V1 22 /* + timestamp */
#define LEGACY_ATTR_LOG_APPEND_TIME 0x08
#define V2_RECORD_OVERHEAD_MAX 32 /* varints of a record at their widest, with no headers */

int rn_records_magic(const uint8_t *data, size_t len) {
    if (!data || len <= RN_BATCH_OFF_MAGIC) return -1;
    return (int8_t)data[RN_BATCH_OFF_MAGIC];
}

typedef struct {
    int64_t offset;
    int8_t magic;
    int8_t attributes;
    int64_t timestamp; /* -1 for magic 0 */
    rn_bytes_t key;
    rn_bytes_t value;
    size_t size; /* whole entry, offset and size fields included */
} legacy_msg_t;

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* One entry at the start of p (rem bytes left). */
static rn_err_t legacy_parse(const uint8_t *p, size_t rem, size_t max_size, legacy_msg_t *m) {
    if (rem < LEGACY_LOG_OVERHEAD) return RN_ERR_CORRUPT_MESSAGE;
    int32_t msize = (int32_t)rn_load_be32(p + 8);
    if (msize < LEGACY_MIN_SIZE_V0) return RN_ERR_CORRUPT_MESSAGE;
    size_t size = LEGACY_LOG_OVERHEAD + (size_t)msize;
    if (max_size && size > max_size) return RN_ERR_MESSAGE_TOO_LARGE;
    if (size > rem) return RN_ERR_CORRUPT_MESSAGE;
    int8_t magic = (int8_t)p[LEGACY_OFF_MAGIC];
    if (magic != 0 && magic != 1) return RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    if (magic == 1 && msize < LEGACY_MIN_SIZE_V1) return RN_ERR_CORRUPT_MESSAGE;
    if (crc32_ieee(p + LEGACY_OFF_MAGIC, size - LEGACY_OFF_MAGIC) != rn_load_be32(p + LEGACY_OFF_CRC))
        return RN_ERR_CORRUPT_MESSAGE;
    rn_reader_t r;
    rn_reader_init(&r, p + LEGACY_OFF_MAGIC + 1, size - LEGACY_OFF_MAGIC - 1);
    m->offset = (int64_t)rn_load_be64(p);
    m->magic = magic;
    m->attributes = rn_reader_i8(&r);
    m->timestamp = magic == 1 ? rn_reader_i64(&r) : -1;
    m->key = rn_reader_bytes(&r, false);
    m->value = rn_reader_bytes(&r, false);
    m->size = size;
    if (r.err || rn_reader_remaining(&r) != 0) return RN_ERR_CORRUPT_MESSAGE;
    return RN_OK;
}

/* ---- up: message set → v2 batches ---- */

typedef struct {
    rn_buf_t *out;
    const rn_batch_validate_opts_t *opts;
    size_t max_batch;
    size_t max_decompressed;
    rn_batch_builder_t run; /* plain messages since the last wrapper */
    bool run_open;
    rn_buf_t scratch; /* a wrapper's decompressed inner set */
} up_t;

static rn_err_t builder_err(rn_err_t err) { return err == RN_ERR_LIMIT ? RN_ERR_MESSAGE_TOO_LARGE : err; }

static rn_err_t run_flush(up_t *u) {
    if (!u->run_open) return RN_OK;
    u->run_open = false;
    return builder_err(rn_batch_builder_finish(&u->run));
}

static rn_err_t up_plain(up_t *u, const legacy_msg_t *m) {
    if (u->opts->require_keys && m->key.len < 0) return RN_ERR_INVALID_RECORD;
    size_t room = u->max_batch - RN_BATCH_HEADER_SIZE;
    if (u->run_open && (u->run.records.len + m->size + V2_RECORD_OVERHEAD_MAX > room ||
                        (u->opts->max_records > 0 && u->run.count >= u->opts->max_records) ||
                        u->run.count == INT32_MAX)) {
        rn_err_t err = run_flush(u);
        if (err) return err;
    }
    if (!u->run_open) {
        rn_batch_builder_init(&u->run, u->out, 0, RN_COMPRESSION_NONE, room);
        u->run_open = true;
    }
    rn_batch_builder_add(&u->run, m->timestamp, m->key, m->value, 0, NULL, NULL);
    return RN_OK;
}

static rn_err_t up_wrapper(up_t *u, const legacy_msg_t *w) {
    int codec = w->attributes & RN_BATCH_ATTR_CODEC_MASK;
    if (codec > RN_COMPRESSION_LZ4) return RN_ERR_UNSUPPORTED_COMPRESSION_TYPE; /* zstd needs magic 2 */
    if (w->value.len < 0) return RN_ERR_CORRUPT_MESSAGE;
    rn_err_t err = run_flush(u);
    if (err) return err;
    rn_buf_reset(&u->scratch);
    err = rn_decompress(codec, w->value.ptr, (size_t)w->value.len, &u->scratch, u->max_decompressed);
    if (err == RN_ERR_LIMIT) return RN_ERR_MESSAGE_TOO_LARGE;
    if (err == RN_ERR_NOMEM) return err;
    if (err) return RN_ERR_CORRUPT_MESSAGE;

    bool log_append = w->magic == 1 && (w->attributes & LEGACY_ATTR_LOG_APPEND_TIME);
    rn_batch_builder_t b;
    rn_batch_builder_init(&b, u->out, 0, codec, u->max_decompressed);
    if (log_append) b.attributes |= RN_BATCH_ATTR_LOG_APPEND_TIME;
    const uint8_t *p = u->scratch.data;
    size_t len = u->scratch.len;
    for (size_t pos = 0; pos < len;) {
        legacy_msg_t m;
        err = legacy_parse(p + pos, len - pos, 0, &m);
        if (!err && (m.attributes & RN_BATCH_ATTR_CODEC_MASK) != 0) err = RN_ERR_INVALID_RECORD; /* nested */
        if (!err && m.magic != w->magic) err = RN_ERR_INVALID_RECORD;
        if (!err && u->opts->require_keys && m.key.len < 0) err = RN_ERR_INVALID_RECORD;
        if (!err && ((u->opts->max_records > 0 && b.count >= u->opts->max_records) || b.count == INT32_MAX))
            err = RN_ERR_MESSAGE_TOO_LARGE;
        if (err) {
            rn_batch_builder_abort(&b);
            return err;
        }
        rn_batch_builder_add(&b, log_append ? w->timestamp : m.timestamp, m.key, m.value, 0, NULL, NULL);
        pos += m.size;
    }
    if (b.count == 0) {
        rn_batch_builder_abort(&b);
        return RN_ERR_INVALID_RECORD;
    }
    return builder_err(rn_batch_builder_finish(&b));
}

rn_err_t rn_msgset_to_v2(const uint8_t *data, size_t len, rn_buf_t *out, const rn_batch_validate_opts_t *opts,
                         rn_arena_t *arena) {
    (void)arena;
    RN_ASSERT(opts != NULL);
    up_t u;
    memset(&u, 0, sizeof(u));
    u.out = out;
    u.opts = opts;
    u.max_batch = opts->max_batch_bytes ? opts->max_batch_bytes : (size_t)INT32_MAX;
    if (u.max_batch < RN_BATCH_HEADER_SIZE + V2_RECORD_OVERHEAD_MAX) u.max_batch = RN_BATCH_HEADER_SIZE + V2_RECORD_OVERHEAD_MAX;
    u.max_decompressed = opts->max_decompressed_bytes ? opts->max_decompressed_bytes : RN__DEFAULT_MAX_DECOMPRESSED;
    rn_buf_init(&u.scratch, SIZE_MAX);
    size_t out_start = out->len;
    rn_err_t err = out->err;
    for (size_t pos = 0; pos < len && !err;) {
        legacy_msg_t m;
        err = legacy_parse(data + pos, len - pos, opts->max_batch_bytes, &m);
        if (err) break;
        if ((m.attributes & RN_BATCH_ATTR_CODEC_MASK) == RN_COMPRESSION_NONE)
            err = up_plain(&u, &m);
        else
            err = up_wrapper(&u, &m);
        pos += m.size;
    }
    if (!err) err = run_flush(&u);
    if (u.run_open) rn_batch_builder_abort(&u.run);
    rn_buf_free(&u.scratch);
    if (err) {
        out->len = out_start;
        if (out->err == RN_ERR_LIMIT) out->err = RN_OK; /* reported as MESSAGE_TOO_LARGE */
    }
    return err;
}

/* ---- down: v2 batches → message set ---- */

static void put_legacy(rn_buf_t *out, int64_t offset, int8_t magic, int8_t attributes, int64_t timestamp,
                       rn_bytes_t key, rn_bytes_t value) {
    rn_buf_put_i64(out, offset);
    size_t size_pos = rn_buf_put_i32(out, 0);
    size_t crc_pos = rn_buf_put_u32(out, 0);
    rn_buf_put_i8(out, magic);
    rn_buf_put_i8(out, attributes);
    if (magic == 1) rn_buf_put_i64(out, timestamp);
    rn_buf_put_bytes(out, key, false);
    rn_buf_put_bytes(out, value, false);
    if (out->err) return;
    rn_buf_patch_i32(out, size_pos, (int32_t)(out->len - size_pos - 4));
    rn_buf_patch_u32(out, crc_pos, crc32_ieee(out->data + crc_pos + 4, out->len - crc_pos - 4));
}

typedef struct {
    rn_buf_t *out;
    int8_t magic;
    size_t max_decompressed;
    rn_buf_t scratch; /* decompressed records */
    rn_buf_t inner;   /* uncompressed inner message set of a wrapper */
    rn_buf_t value;   /* compressed inner set */
} down_t;

static rn_err_t down_batch(down_t *d, const uint8_t *batch, const rn_batch_header_t *h) {
    const uint8_t *records = batch + RN_BATCH_HEADER_SIZE;
    size_t len = rn_batch_total_size(h) - RN_BATCH_HEADER_SIZE;
    int codec = rn_batch_codec(h);
    if (codec > RN_COMPRESSION_ZSTD) return RN_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    if (codec != RN_COMPRESSION_NONE) {
        rn_buf_reset(&d->scratch);
        rn_err_t err = rn_decompress(codec, records, len, &d->scratch, d->max_decompressed);
        if (err == RN_ERR_LIMIT) return RN_ERR_MESSAGE_TOO_LARGE;
        if (err == RN_ERR_NOMEM) return err;
        if (err) return RN_ERR_CORRUPT_MESSAGE;
        records = d->scratch.data;
        len = d->scratch.len;
    }
    rn_record_iter_t it;
    rn__record_iter_init_records(&it, h, records, len);
    int8_t ts_attr = (d->magic == 1 && (h->attributes & RN_BATCH_ATTR_LOG_APPEND_TIME)) ? LEGACY_ATTR_LOG_APPEND_TIME : 0;
    rn_record_t rec;
    if (codec == RN_COMPRESSION_NONE || codec == RN_COMPRESSION_ZSTD) {
        while (rn_record_iter_next(&it, &rec))
            put_legacy(d->out, rec.offset, d->magic, ts_attr, rec.timestamp, rec.key, rec.value);
        return it.err ? it.err : d->out->err;
    }

    rn_buf_reset(&d->inner);
    int64_t first = 0, last = 0;
    int32_t n = 0;
    while (rn_record_iter_next(&it, &rec)) {
        if (n == 0) first = rec.offset;
        last = rec.offset;
        int64_t inner_offset = d->magic == 1 ? (int64_t)((uint64_t)rec.offset - (uint64_t)first) : rec.offset;
        put_legacy(&d->inner, inner_offset, d->magic, 0, rec.timestamp, rec.key, rec.value);
        n++;
    }
    if (it.err) return it.err;
    if (d->inner.err) return d->inner.err;
    if (n == 0) return RN_OK;
    rn_buf_reset(&d->value);
    rn_err_t err = rn_compress_for_magic(codec, d->magic, d->inner.data, d->inner.len, &d->value);
    if (err) return err;
    rn_bytes_t value = {d->value.data, (int32_t)d->value.len};
    if (d->value.len > INT32_MAX) return RN_ERR_LIMIT;
    put_legacy(d->out, last, d->magic, (int8_t)(codec | ts_attr), h->max_timestamp, (rn_bytes_t){NULL, -1}, value);
    return d->out->err;
}

rn_err_t rn_batches_to_msgset(const uint8_t *data, size_t len, int8_t magic, rn_buf_t *out, size_t max_decompressed,
                              rn_arena_t *arena) {
    (void)arena;
    RN_ASSERT(magic == 0 || magic == 1);
    down_t d;
    memset(&d, 0, sizeof(d));
    d.out = out;
    d.magic = magic;
    d.max_decompressed = max_decompressed ? max_decompressed : RN__DEFAULT_MAX_DECOMPRESSED;
    rn_buf_init(&d.scratch, SIZE_MAX);
    rn_buf_init(&d.inner, SIZE_MAX);
    rn_buf_init(&d.value, SIZE_MAX);
    size_t out_start = out->len;
    rn_err_t err = out->err;
    if (err) return err;
    for (size_t pos = 0; pos < len && !err;) {
        size_t done_len = out->len; /* end of the last whole converted batch */
        size_t rem = len - pos;
        const uint8_t *p = data + pos;
        if (rem > RN_BATCH_OFF_MAGIC && p[RN_BATCH_OFF_MAGIC] != 2) {
            err = RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
            break;
        }
        if (rem < RN_BATCH_HEADER_SIZE) break; /* partial batch at the end */
        rn_batch_header_t h;
        rn_batch_header_decode(p, &h);
        if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD || h.record_count < 0) {
            err = RN_ERR_CORRUPT_MESSAGE;
            break;
        }
        size_t total = rn_batch_total_size(&h);
        if (total > rem) break; /* partial batch at the end */
        if (!rn_batch_is_control(&h)) err = down_batch(&d, p, &h);
        if (err == RN_ERR_LIMIT && out->err == RN_ERR_LIMIT) {
            /* `out` is full: keep the whole batches converted so far. */
            out->len = done_len;
            out->err = RN_OK;
            if (done_len > out_start) err = RN_OK;
            break;
        }
        pos += total;
    }
    rn_buf_free(&d.scratch);
    rn_buf_free(&d.inner);
    rn_buf_free(&d.value);
    if (err) {
        out->len = out_start;
        out->err = RN_OK; /* reported by the return value */
    }
    return err;
}
