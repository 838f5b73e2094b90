/*
 * rn_compress.h — the four Kafka codecs, from Debian's libraries.
 * gzip (zlib), snappy (raw and xerial-framed, as the Java client writes),
 * lz4 (frame format), zstd. Decompression output is bounded by `max_out`;
 * passing it fails with RN_ERR_LIMIT, bad input with RN_ERR_CORRUPT.
 *
 * Both functions append to `out` (whose own `max` also bounds them); on an
 * error `out->len` is put back where it was. Codec numbers are Kafka's
 * (RN_COMPRESSION_* in rn_batch.h); an unknown one is UNSUPPORTED_COMPRESSION_TYPE.
 *
 * What each codec writes, and what it accepts:
 *   gzip    writes one gzip member (level 6, as java.util.zip); reads
 *           concatenated members and ignores trailing bytes that do not start
 *           another member (as GZIPInputStream does).
 *   snappy  writes the xerial framing of snappy-java (the Java producer and the
 *           Java broker write it; librdkafka, the Java client and every other
 *           client read it): "\x82SNAPPY\0", int32 version 1, int32 compatible
 *           version 1, then blocks of int32 length + raw snappy, 32 KiB of input
 *           each. Reads that framing and plain raw snappy (what librdkafka writes).
 *   lz4     writes an LZ4 frame with independent 64 KiB blocks and no checksums
 *           (Kafka's Java reader decodes every block on its own). Reads any
 *           frame; a header checksum computed the Kafka 0.8 way (over the magic
 *           number too, still written for magic 0 messages) is accepted.
 *   zstd    writes one frame (level 3, content size included); reads
 *           concatenated frames, with or without content size, streaming.
 */
#ifndef RN_COMPRESS_H
#define RN_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "rn_arena.h"
#include "rn_bytes.h"
#include "rn_err.h"

rn_err_t rn_decompress(int codec, const uint8_t *in, size_t in_len, rn_buf_t *out, size_t max_out);
rn_err_t rn_compress(int codec, const uint8_t *in, size_t in_len, rn_buf_t *out);

/*
 * As rn_compress, for a legacy (magic 0/1) wrapper message: for magic 0 the LZ4
 * frame carries the header checksum Kafka 0.8/0.9 clients verify (XXH32 over
 * magic number and descriptor); everything else is as rn_compress.
 */
rn_err_t rn_compress_for_magic(int codec, int magic, const uint8_t *in, size_t in_len, rn_buf_t *out);

/*
 * Cross-file internal: decompress into memory from `arena` (lifetime: the
 * arena's). When the compressed data states its decompressed size (snappy,
 * zstd with content size) the output is written in place and an oversize claim
 * fails before anything is allocated; otherwise it goes through a temporary
 * buffer. RN_ERR_LIMIT also when the arena is exhausted.
 */
rn_err_t rn__decompress_arena(int codec, const uint8_t *in, size_t in_len, size_t max_out, rn_arena_t *arena,
                              const uint8_t **out, size_t *out_len);

/* Cross-file internal: XXH32 with seed (the LZ4 frame checksums). */
uint32_t rn__xxh32(const void *data, size_t len, uint32_t seed);

#endif
