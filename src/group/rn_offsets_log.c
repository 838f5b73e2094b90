/*
 * rn_offsets_log.c — the records of __consumer_offsets, in Kafka's layouts.
 *
 * __consumer_offsets is a compacted topic: every record has a key, and the
 * newest record of a key is its state; a record with a null value (tombstone)
 * deletes the key. Two kinds of key share the topic; the leading int16 is the
 * key's version and tells them apart. All integers big-endian, strings are
 * int16 length + UTF-8 (length -1: null), bytes are int32 length + data.
 *
 * Offset commit key (version 0 and 1, same layout; we write 1):
 *    0  int16   version = 1
 *    2  string  group
 *       string  topic
 *       int32   partition
 *
 * Offset commit value (we write v3, or v1 when an explicit expiry was asked
 * for by OffsetCommit v2-v4's RetentionTimeMs — Kafka does the same):
 *   v0: int16 0, int64 offset, string metadata, int64 commit_timestamp
 *   v1: int16 1, int64 offset, string metadata, int64 commit_timestamp, int64 expire_timestamp
 *   v2: int16 2, int64 offset, string metadata, int64 commit_timestamp
 *   v3: int16 3, int64 offset, int32 leader_epoch, string metadata, int64 commit_timestamp
 *   v4: as v3, flexible (compact string, trailing tagged fields) — read only
 *
 * Group metadata key (version 2):
 *    0  int16   version = 2
 *    2  string  group
 *
 * Group metadata value (we write v3):
 *   int16 version
 *   string protocol_type
 *   int32 generation
 *   nullable string protocol        (selected assignor, e.g. "range")
 *   nullable string leader          (member id)
 *   int64 current_state_timestamp   (v2+)
 *   int32 member count, then per member:
 *     string member_id
 *     nullable string group_instance_id  (v3+)
 *     string client_id
 *     string client_host
 *     int32 rebalance_timeout       (v1+)
 *     int32 session_timeout
 *     bytes subscription            (the member's metadata for the protocol)
 *     bytes assignment
 *   v4: the same, flexible — read only
 *
 * Keys of other versions (Kafka's newer group types) are skipped on replay.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_group.h"

int32_t rn_java_string_hash(const char *s, size_t len) {
    /* Java: h = 31*h + c over UTF-16 code units, int32 wrap-around. Invalid
     * UTF-8 decodes to U+FFFD per bad byte, as Java's decoder replaces it. */
    uint32_t h = 0;
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        uint8_t c = p[i];
        size_t n = 0;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xe0) == 0xc0 && i + 1 < len && (p[i + 1] & 0xc0) == 0x80 && c >= 0xc2) {
            cp = ((uint32_t)(c & 0x1f) << 6) | (p[i + 1] & 0x3f);
            n = 2;
        } else if ((c & 0xf0) == 0xe0 && i + 2 < len && (p[i + 1] & 0xc0) == 0x80 && (p[i + 2] & 0xc0) == 0x80) {
            cp = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(p[i + 1] & 0x3f) << 6) | (p[i + 2] & 0x3f);
            n = 3;
            if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd, n = 1;
        } else if ((c & 0xf8) == 0xf0 && i + 3 < len && (p[i + 1] & 0xc0) == 0x80 && (p[i + 2] & 0xc0) == 0x80 &&
                   (p[i + 3] & 0xc0) == 0x80) {
            cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[i + 1] & 0x3f) << 12) |
                 ((uint32_t)(p[i + 2] & 0x3f) << 6) | (p[i + 3] & 0x3f);
            n = 4;
            if (cp < 0x10000 || cp > 0x10ffff) cp = 0xfffd, n = 1;
        } else {
            cp = 0xfffd;
            n = 1;
        }
        i += n;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xd800 + (cp >> 10));
            h = 31 * h + (0xdc00 + (cp & 0x3ff));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)h;
}

int32_t rn_group_partition_for(const char *group_id, size_t len, int32_t partitions) {
    int32_t h = rn_java_string_hash(group_id, len);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h); /* Kafka's Utils.abs */
    return partitions > 0 ? a % partitions : 0;
}

void rn_offsets_key_offset(rn_buf_t *out, rn_str_t group, rn_str_t topic, int32_t partition) {
    rn_buf_put_i16(out, 1);
    rn_buf_put_str(out, group, false);
    rn_buf_put_str(out, topic, false);
    rn_buf_put_i32(out, partition);
}

void rn_offsets_key_group(rn_buf_t *out, rn_str_t group) {
    rn_buf_put_i16(out, 2);
    rn_buf_put_str(out, group, false);
}

void rn_offsets_value_offset(rn_buf_t *out, const rn_offset_t *o) {
    rn_str_t md = {o->metadata ? o->metadata : "", o->metadata_len > 0 ? o->metadata_len : 0};
    if (o->expire_timestamp_ms >= 0) {
        rn_buf_put_i16(out, 1);
        rn_buf_put_i64(out, o->offset);
        rn_buf_put_str(out, md, false);
        rn_buf_put_i64(out, o->commit_timestamp_ms);
        rn_buf_put_i64(out, o->expire_timestamp_ms);
        return;
    }
    rn_buf_put_i16(out, 3);
    rn_buf_put_i64(out, o->offset);
    rn_buf_put_i32(out, o->leader_epoch);
    rn_buf_put_str(out, md, false);
    rn_buf_put_i64(out, o->commit_timestamp_ms);
}

static rn_str_t cstr_or_null(const char *s) { return s ? rn_str_from_cstr(s) : RN_STR_NULL; }

static const rn_gprotocol_t *member_protocol(const rn_member_t *m, const char *name) {
    if (!name) return NULL;
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (!strcmp(m->protocols[i].name, name)) return &m->protocols[i];
    return NULL;
}

void rn_offsets_value_group(rn_buf_t *out, const rn_group_t *g) {
    rn_buf_put_i16(out, 3);
    rn_buf_put_str(out, rn_str_from_cstr(g->protocol_type ? g->protocol_type : ""), false);
    rn_buf_put_i32(out, g->generation);
    rn_buf_put_str(out, cstr_or_null(g->protocol_name), false);
    rn_buf_put_str(out, cstr_or_null(g->leader_id), false);
    rn_buf_put_i64(out, g->state_timestamp_ms);
    rn_buf_put_i32(out, g->nmembers);
    for (int32_t i = 0; i < g->nmembers; i++) {
        const rn_member_t *m = g->members[i];
        rn_buf_put_str(out, rn_str_from_cstr(m->member_id), false);
        rn_buf_put_str(out, cstr_or_null(m->group_instance_id), false);
        rn_buf_put_str(out, rn_str_from_cstr(m->client_id), false);
        rn_buf_put_str(out, rn_str_from_cstr(m->client_host), false);
        rn_buf_put_i32(out, m->rebalance_timeout_ms);
        rn_buf_put_i32(out, m->session_timeout_ms);
        const rn_gprotocol_t *p = member_protocol(m, g->protocol_name);
        rn_buf_put_bytes(out, p ? (rn_bytes_t){p->metadata, p->metadata_len} : (rn_bytes_t){NULL, 0}, false);
        rn_buf_put_bytes(out, (rn_bytes_t){m->assignment, m->assignment ? m->assignment_len : 0}, false);
    }
}

rn_err_t rn_offsets_parse_key(rn_bytes_t key, rn_okey_t *out) {
    memset(out, 0, sizeof(*out));
    if (key.len < 2) return RN_ERR_MALFORMED;
    rn_reader_t r;
    rn_reader_init(&r, key.ptr, (size_t)key.len);
    int16_t v = rn_reader_i16(&r);
    if (v == 0 || v == 1) {
        out->kind = RN_OKEY_OFFSET;
        out->group = rn_reader_str(&r, false);
        out->topic = rn_reader_str(&r, false);
        out->partition = rn_reader_i32(&r);
        if (!rn_reader_err(&r) && (out->group.len < 0 || out->topic.len < 0)) return RN_ERR_MALFORMED;
    } else if (v == 2) {
        out->kind = RN_OKEY_GROUP;
        out->group = rn_reader_str(&r, false);
        if (!rn_reader_err(&r) && out->group.len < 0) return RN_ERR_MALFORMED;
    } else {
        out->kind = RN_OKEY_OTHER;
        return RN_OK;
    }
    return rn_reader_err(&r) ? RN_ERR_MALFORMED : RN_OK;
}

rn_err_t rn_offsets_parse_offset_value(rn_bytes_t value, rn_offset_t *out) {
    memset(out, 0, sizeof(*out));
    out->leader_epoch = -1;
    out->expire_timestamp_ms = -1;
    if (value.len < 2) return RN_ERR_MALFORMED;
    rn_reader_t r;
    rn_reader_init(&r, value.ptr, (size_t)value.len);
    int16_t v = rn_reader_i16(&r);
    if (v < 0 || v > 4) return RN_ERR_MALFORMED;
    out->offset = rn_reader_i64(&r);
    if (v >= 3) out->leader_epoch = rn_reader_i32(&r);
    rn_str_t md = rn_reader_str(&r, v >= 4);
    out->commit_timestamp_ms = rn_reader_i64(&r);
    if (v == 1) out->expire_timestamp_ms = rn_reader_i64(&r);
    if (v >= 4) rn_reader_skip_tagged(&r);
    if (rn_reader_err(&r)) return RN_ERR_MALFORMED;
    out->metadata = (char *)md.ptr; /* borrowed; the caller copies */
    out->metadata_len = md.len;
    return RN_OK;
}

rn_err_t rn_offsets_parse_group_value(rn_bytes_t value, rn_stored_group_t *out) {
    memset(out, 0, sizeof(*out));
    if (value.len < 2) return RN_ERR_MALFORMED;
    rn_reader_t r;
    rn_reader_init(&r, value.ptr, (size_t)value.len);
    int16_t v = rn_reader_i16(&r);
    if (v < 0 || v > 4) return RN_ERR_MALFORMED;
    bool flex = v >= 4;
    out->protocol_type = rn_reader_str(&r, flex);
    out->generation = rn_reader_i32(&r);
    out->protocol_name = rn_reader_str(&r, flex);
    out->leader_id = rn_reader_str(&r, flex);
    out->state_timestamp_ms = v >= 2 ? rn_reader_i64(&r) : -1;
    /* smallest member: 3 empty strings, 2 int32, 2 empty bytes */
    int32_t n = rn_reader_array_len(&r, flex, 3 * (flex ? 1 : 2) + 8 + 2 * (flex ? 1 : 4), 1 << 20);
    if (rn_reader_err(&r)) return RN_ERR_MALFORMED;
    if (n < 0) n = 0;
    if (n > 0) {
        out->members = calloc((size_t)n, sizeof(*out->members));
        if (!out->members) return RN_ERR_NOMEM;
    }
    out->nmembers = n;
    for (int32_t i = 0; i < n; i++) {
        rn_stored_member_t *m = &out->members[i];
        m->member_id = rn_reader_str(&r, flex);
        m->group_instance_id = v >= 3 ? rn_reader_str(&r, flex) : RN_STR_NULL;
        m->client_id = rn_reader_str(&r, flex);
        m->client_host = rn_reader_str(&r, flex);
        m->rebalance_timeout_ms = v >= 1 ? rn_reader_i32(&r) : -1;
        m->session_timeout_ms = rn_reader_i32(&r);
        if (v == 0) m->rebalance_timeout_ms = m->session_timeout_ms;
        m->subscription = rn_reader_bytes(&r, flex);
        m->assignment = rn_reader_bytes(&r, flex);
        if (flex) rn_reader_skip_tagged(&r);
        if (!rn_reader_err(&r) && m->member_id.len <= 0) rn_reader_fail(&r, RN_ERR_MALFORMED);
    }
    if (flex) rn_reader_skip_tagged(&r);
    if (rn_reader_err(&r)) {
        free(out->members);
        out->members = NULL;
        out->nmembers = 0;
        return RN_ERR_MALFORMED;
    }
    return RN_OK;
}
