/*
 * rn_batch.h — Kafka record batches (magic 2) and legacy message sets (magic 0/1).
 *
 * A RecordBatch v2 is both the wire format and Runnel's on-disk format, so this
 * code is hand-written and shared by the broker and the storage engine.
 *
 * RecordBatch v2 header (61 bytes, big-endian):
 *   0  baseOffset            int64
 *   8  batchLength           int32   bytes after this field (total = 12 + batchLength)
 *  12  partitionLeaderEpoch  int32
 *  16  magic                 int8    (2)
 *  17  crc                   uint32  CRC-32C of bytes [21, end)
 *  21  attributes            int16   bits 0-2 codec, 3 timestampType, 4 transactional, 5 control
 *  23  lastOffsetDelta       int32
 *  27  baseTimestamp         int64
 *  35  maxTimestamp          int64
 *  43  producerId            int64
 *  51  producerEpoch         int16
 *  53  baseSequence          int32
 *  57  recordCount           int32
 *  61  records...
 */
#ifndef RN_BATCH_H
#define RN_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_arena.h"
#include "rn_bytes.h"
#include "rn_err.h"

#define RN_BATCH_HEADER_SIZE 61
#define RN_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define RN__DEFAULT_MAX_DECOMPRESSED ((size_t)64 << 20) /* when a max_decompressed of 0 is given */

#define RN_BATCH_OFF_BASE_OFFSET 0
#define RN_BATCH_OFF_LENGTH 8
#define RN_BATCH_OFF_LEADER_EPOCH 12
#define RN_BATCH_OFF_MAGIC 16
#define RN_BATCH_OFF_CRC 17
#define RN_BATCH_OFF_ATTRIBUTES 21
#define RN_BATCH_OFF_LAST_OFFSET_DELTA 23
#define RN_BATCH_OFF_BASE_TIMESTAMP 27
#define RN_BATCH_OFF_MAX_TIMESTAMP 35
#define RN_BATCH_OFF_PRODUCER_ID 43
#define RN_BATCH_OFF_PRODUCER_EPOCH 51
#define RN_BATCH_OFF_BASE_SEQUENCE 53
#define RN_BATCH_OFF_RECORD_COUNT 57

enum {
    RN_COMPRESSION_NONE = 0,
    RN_COMPRESSION_GZIP = 1,
    RN_COMPRESSION_SNAPPY = 2,
    RN_COMPRESSION_LZ4 = 3,
    RN_COMPRESSION_ZSTD = 4,
};

#define RN_BATCH_ATTR_CODEC_MASK 0x07
#define RN_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define RN_BATCH_ATTR_TRANSACTIONAL 0x10
#define RN_BATCH_ATTR_CONTROL 0x20

typedef struct {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} rn_batch_header_t;

static inline size_t rn_batch_total_size(const rn_batch_header_t *h) {
    return RN_BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
}
static inline int64_t rn_batch_last_offset(const rn_batch_header_t *h) {
    return h->base_offset + h->last_offset_delta;
}
static inline int rn_batch_codec(const rn_batch_header_t *h) { return h->attributes & RN_BATCH_ATTR_CODEC_MASK; }
static inline bool rn_batch_is_control(const rn_batch_header_t *h) { return h->attributes & RN_BATCH_ATTR_CONTROL; }
static inline bool rn_batch_is_transactional(const rn_batch_header_t *h) {
    return h->attributes & RN_BATCH_ATTR_TRANSACTIONAL;
}

/* Decode the fixed header from at least RN_BATCH_HEADER_SIZE bytes (no checks). */
void rn_batch_header_decode(const uint8_t *p, rn_batch_header_t *h);

/* CRC-32C over [21, total) of a batch; compare with header crc. */
uint32_t rn_batch_compute_crc(const uint8_t *batch, size_t total_size);
/* Recompute and store the CRC after patching covered fields (e.g. maxTimestamp). */
void rn_batch_update_crc(uint8_t *batch, size_t total_size);

/* In-place patches of fields outside the CRC. */
void rn_batch_set_base_offset(uint8_t *batch, int64_t base_offset);
void rn_batch_set_leader_epoch(uint8_t *batch, int32_t epoch);

/*
 * One record, decoded from a batch (borrowed pointers into the decompressed
 * records buffer). Offsets/timestamps are absolute (base + delta).
 */
typedef struct {
    int64_t offset;
    int64_t timestamp;
    int32_t offset_delta; /* as stored: offset - baseOffset */
    int8_t attributes;
    rn_bytes_t key;   /* len -1: null */
    rn_bytes_t value; /* len -1: null */
    int32_t header_count;
    const uint8_t *headers; /* raw header bytes (for re-encoding), header_count entries */
    size_t headers_len;
} rn_record_t;

typedef struct {
    size_t max_batch_bytes;         /* message.max.bytes: a batch larger is MESSAGE_TOO_LARGE (0: none) */
    size_t max_decompressed_bytes;  /* bound on decompression output (0: 64 MiB) */
    int64_t max_records;            /* bound on records per batch (0: none) */
    bool allow_control;             /* false for client produce; true (trusted source) also accepts empty batches */
    bool require_keys;              /* compacted topics: keyless records are INVALID_RECORD */
    bool full_validation;           /* iterate records (decompressing) to check each */
} rn_batch_validate_opts_t;

/*
 * Validate a Produce "records" payload of magic-2 batches, in place, returning a
 * Kafka error for the first bad batch: CORRUPT_MESSAGE (bad CRC, bad sizes,
 * lastOffsetDelta inconsistent with recordCount, truncated), INVALID_RECORD
 * (bad record framing, keyless record on compacted topic, control batch from a
 * client), UNSUPPORTED_COMPRESSION_TYPE (codec > 4), MESSAGE_TOO_LARGE,
 * UNSUPPORTED_FOR_MESSAGE_FORMAT (wrong magic). `count` receives the batches.
 * `arena` supplies scratch memory for decompression during full validation.
 */
rn_err_t rn_batch_validate_set(const uint8_t *data, size_t len, const rn_batch_validate_opts_t *opts,
                               rn_arena_t *arena, int32_t *batch_count, int64_t *record_count);
/*
 * Details of rn_batch_validate_set (first failing check wins):
 *   < 17 bytes left, or < 61 with magic 2         CORRUPT_MESSAGE
 *   magic != 2                                    UNSUPPORTED_FOR_MESSAGE_FORMAT
 *   batchLength < 49                              CORRUPT_MESSAGE
 *   12 + batchLength > max_batch_bytes            MESSAGE_TOO_LARGE
 *   batch runs past the payload                   CORRUPT_MESSAGE
 *   CRC-32C mismatch                              CORRUPT_MESSAGE
 *   codec 5..7                                    UNSUPPORTED_COMPRESSION_TYPE
 *   control batch and !allow_control              INVALID_RECORD
 *   recordCount < 0, lastOffsetDelta < 0,
 *   lastOffsetDelta != recordCount - 1,
 *   uncompressed records too short for the count  CORRUPT_MESSAGE
 *   recordCount > max_records (when > 0)          MESSAGE_TOO_LARGE
 *   recordCount == 0 and !allow_control           INVALID_RECORD
 * With full_validation or require_keys, every record is decoded:
 *   decompression fails                           CORRUPT_MESSAGE
 *   decompressed > max_decompressed_bytes         MESSAGE_TOO_LARGE
 *   bad record framing, offsetDelta != index,
 *   records left over or missing                  INVALID_RECORD
 *   null key and require_keys                     INVALID_RECORD
 * `arena` is unused (decompression uses one scratch buffer, freed before
 * returning); it may be NULL. Counts are written only on success.
 */

/* Iterate over records of one validated batch (decompresses into `arena`). */
typedef struct {
    rn_batch_header_t h;
    rn_reader_t r; /* over (decompressed) records */
    int32_t index;
    rn_err_t err;
} rn_record_iter_t;
rn_err_t rn_record_iter_init(rn_record_iter_t *it, const uint8_t *batch, size_t total_size, size_t max_decompressed,
                             rn_arena_t *arena);
/* Returns true and fills rec, or false at the end or on error (it->err). */
bool rn_record_iter_next(rn_record_iter_t *it, rn_record_t *rec);
/*
 * rn_record_iter_init checks only what it needs to stay in bounds (size,
 * magic 2, codec), not the CRC. Errors (also in it->err): CORRUPT_MESSAGE
 * (short batch, failed decompression), UNSUPPORTED_FOR_MESSAGE_FORMAT,
 * UNSUPPORTED_COMPRESSION_TYPE, MESSAGE_TOO_LARGE (decompressed size past
 * max_decompressed (0: 64 MiB) or arena exhausted). rn_record_iter_next fails with
 * INVALID_RECORD on bad framing, including bytes left after the last record
 * or fewer records than recordCount. offsetDelta is not required to equal the
 * index (compacted batches have gaps). With LOG_APPEND_TIME every record's
 * timestamp is the batch's maxTimestamp. Record pointers borrow from the batch
 * (uncompressed) or the arena.
 */
/* Cross-file internal: iterate records already decompressed (borrowed) for header h. */
void rn__record_iter_init_records(rn_record_iter_t *it, const rn_batch_header_t *h, const uint8_t *records,
                                  size_t len);

/*
 * Batch builder: writes a complete v2 batch into a rn_buf_t (records
 * uncompressed or compressed with `codec`). Used for control batches, format
 * conversion, tests and the CLI.
 */
typedef struct {
    rn_buf_t *out;
    size_t start;
    rn_buf_t records; /* uncompressed records */
    int64_t base_offset;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t count;
    int16_t attributes;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t partition_leader_epoch;
    int32_t last_offset_delta; /* largest offset delta added */
    size_t max_bytes;
} rn_batch_builder_t;

void rn_batch_builder_init(rn_batch_builder_t *b, rn_buf_t *out, int64_t base_offset, int codec, size_t max_bytes);
void rn_batch_builder_add(rn_batch_builder_t *b, int64_t timestamp, rn_bytes_t key, rn_bytes_t value,
                          int32_t header_count, const rn_bytes_t *header_keys, const rn_bytes_t *header_values);
/* Adds a record with pre-encoded headers (as found in rn_record_t). */
void rn_batch_builder_add_raw_headers(rn_batch_builder_t *b, int64_t offset_delta, int64_t timestamp, rn_bytes_t key,
                                      rn_bytes_t value, int32_t header_count, const uint8_t *headers,
                                      size_t headers_len);
rn_err_t rn_batch_builder_finish(rn_batch_builder_t *b); /* compresses, writes header+CRC */
/* Releases a builder that will not be finished (finish releases it too). */
void rn_batch_builder_abort(rn_batch_builder_t *b);
/*
 * Builder details: init appends nothing; finish appends the whole batch to
 * `out` at `start`. `max_bytes` bounds the uncompressed records; past it (or
 * past out->max) finish returns RN_ERR_LIMIT and `out` is left as it was.
 * Defaults: partitionLeaderEpoch, producerId, producerEpoch, baseSequence -1;
 * attributes = codec (set more bits, e.g. RN_BATCH_ATTR_CONTROL, before
 * finish). baseTimestamp is the first record's timestamp, maxTimestamp the
 * largest; an empty batch gets -1 for both and lastOffsetDelta 0. rn_batch_builder_add
 * uses offset delta = number of records added so far.
 */

/*
 * Legacy message sets (magic 0 and 1), Produce <= v2 and Fetch <= v3.
 * Up: a message set (possibly with wrapped compressed messages) becomes v2
 * batches in `out` (CORRUPT_MESSAGE on a bad CRC-32 or framing).
 * Down: v2 batches become a magic-`magic` message set in `out` (uncompressed
 * if the source was; recompressed with the same codec otherwise).
 */
rn_err_t rn_msgset_to_v2(const uint8_t *data, size_t len, rn_buf_t *out, const rn_batch_validate_opts_t *opts,
                         rn_arena_t *arena);
rn_err_t rn_batches_to_msgset(const uint8_t *data, size_t len, int8_t magic, rn_buf_t *out, size_t max_decompressed,
                              rn_arena_t *arena);
/*
 * Conversion details. rn_msgset_to_v2 checks every CRC-32 (CORRUPT_MESSAGE),
 * refuses codecs zstd and above (UNSUPPORTED_COMPRESSION_TYPE), magic 2
 * entries (UNSUPPORTED_FOR_MESSAGE_FORMAT), nested compression, inner magic
 * different from the wrapper's and empty wrappers (INVALID_RECORD), and uses
 * opts->max_batch_bytes (per legacy entry, MESSAGE_TOO_LARGE; plain runs are
 * split to stay under it), max_decompressed_bytes, max_records and
 * require_keys. Output batches have baseOffset 0, producer fields -1.
 * rn_batches_to_msgset skips control batches, leaves out a partial batch at
 * the end, and when `out` reaches its max keeps the whole batches converted so
 * far (RN_ERR_LIMIT if not even the first fits). On error `out` is put back as
 * it was. For both, `arena` is unused (may be NULL) and a max of 0 means 64 MiB.
 */
/* Magic byte of the first entry in a records payload (offset 16 for all formats), or -1. */
int rn_records_magic(const uint8_t *data, size_t len);

#endif
