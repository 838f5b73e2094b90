/*
 * rn_compress.h — the four Kafka codecs, from Debian's libraries.
 * gzip (zlib), snappy (raw and xerial-framed, as the Java client writes),
 * lz4 (frame format), zstd. Decompression output is bounded by `max_out`;
 * passing it fails with RN_ERR_LIMIT, bad input with RN_ERR_CORRUPT.
 */
#ifndef RN_COMPRESS_H
#define RN_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"

rn_err_t rn_decompress(int codec, const uint8_t *in, size_t in_len, rn_buf_t *out, size_t max_out);
rn_err_t rn_compress(int codec, const uint8_t *in, size_t in_len, rn_buf_t *out);

#endif
