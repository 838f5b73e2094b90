/*
 * rn_meta_feed.h — the committed metadata log as broker-only nodes read it.
 *
 * A broker-only node (process.roles=broker) is not a Raft member: it asks a
 * controller for the committed metadata entries after the last one it applied
 * (the internal API RN_API_RUNNEL_METADATA), the way KRaft's brokers fetch the
 * metadata log as observers. Each controller node keeps the tail of what its
 * quorum applied in a feed: every DATA entry after `base`, bounded in bytes
 * (the oldest go first). A requester behind `base` gets the controller's
 * image as a snapshot instead, then entries from the snapshot's offset.
 *
 * Wire format (all integers big-endian):
 *   request:  i32 node id, i64 from (last applied index, 0: none),
 *             i32 max wait ms, i32 max bytes
 *   response: i16 error, i32 leader id (-1: unknown), u16 length + leader
 *             host, i32 leader port, u16 length + cluster id, u8 kind, then
 *               kind 0 (entries):  u32 count, count × (u64 index, u32 length, bytes)
 *               kind 1 (snapshot): u64 index, u32 length, bytes (rn_meta_image_serialize)
 * Entries of a response have increasing indexes, all above `from`.
 * Decoding checks every length against the input; a response that does not
 * decode whole is refused whole (nothing applied).
 */
#ifndef RN_META_FEED_H
#define RN_META_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"

#define RN_API_RUNNEL_METADATA 1001 /* internal: a broker-only node reads the metadata log */
#define RN_META_FEED_KIND_ENTRIES 0
#define RN_META_FEED_KIND_SNAPSHOT 1

typedef struct rn_meta_feed rn_meta_feed_t;

rn_meta_feed_t *rn_meta_feed_new(size_t max_bytes);
void rn_meta_feed_free(rn_meta_feed_t *f);
/* The state was replaced by a snapshot at `base`: the feed holds nothing before it. */
void rn_meta_feed_reset(rn_meta_feed_t *f, uint64_t base);
/* A committed entry, in index order (copied); the oldest go past max_bytes. */
void rn_meta_feed_append(rn_meta_feed_t *f, uint64_t index, const uint8_t *data, size_t len);
uint64_t rn_meta_feed_last(rn_meta_feed_t *f); /* the last index appended (or the base) */
/* Whether the feed holds everything after `from` (false: send a snapshot). */
bool rn_meta_feed_covers(rn_meta_feed_t *f, uint64_t from);
/* Writes "u32 count, entries" of the entries after `from`, up to max_bytes
 * (at least one entry). False (nothing written) if it does not cover `from`. */
bool rn_meta_feed_read(rn_meta_feed_t *f, uint64_t from, size_t max_bytes, rn_buf_t *out);

typedef struct {
    int32_t node_id;
    int64_t from;
    int32_t max_wait_ms, max_bytes;
} rn_meta_feed_req_t;

void rn_meta_feed_req_encode(rn_buf_t *out, const rn_meta_feed_req_t *rq);
rn_err_t rn_meta_feed_req_decode(const uint8_t *p, size_t len, rn_meta_feed_req_t *rq);

typedef struct {
    int16_t error;
    int32_t leader_id;
    rn_str_t leader_host; /* borrowed from the input */
    int32_t leader_port;
    rn_str_t cluster_id;
    uint8_t kind;
    /* kind 0 */
    uint32_t count;
    const uint8_t *entries; /* `count` × (u64 index, u32 length, bytes), checked */
    size_t entries_len;
    /* kind 1 */
    uint64_t snapshot_index;
    const uint8_t *snapshot;
    size_t snapshot_len;
} rn_meta_feed_resp_t;

/* The header of a response (up to `kind`); the caller then writes the payload. */
void rn_meta_feed_resp_header_encode(rn_buf_t *out, int16_t error, int32_t leader_id, const char *leader_host,
                                     int32_t leader_port, const char *cluster_id, uint8_t kind);
/* Decodes and checks a whole response; entries must be above `from` and increasing. */
rn_err_t rn_meta_feed_resp_decode(const uint8_t *p, size_t len, uint64_t from, rn_meta_feed_resp_t *resp);
/* The i-th entry in turn: call with *pos = 0 first (the response was checked by decode). */
bool rn_meta_feed_resp_next(const rn_meta_feed_resp_t *resp, size_t *pos, uint64_t *index, const uint8_t **data,
                            size_t *len);

#endif
