/*
 * rn_raft_msg.c — the wire encoding of Raft messages and of voter sets.
 *
 * Every number is an unsigned LEB128 varint ("uv" below), node ids included
 * (they must fit in int32 and be >= 0). A message is
 *
 *   u8 version (1) | u8 type | uv from | uv to | uv term | body
 *
 * and the body by type:
 *
 *   PREVOTE, VOTE            uv last_index | uv last_term
 *   PREVOTE_RESP, VOTE_RESP  u8 granted
 *   APPEND                   uv prev_index | uv prev_term | uv commit | uv n |
 *                            n × (uv term | u8 type | uv len | len bytes)
 *   APPEND_RESP              u8 success | uv index | uv conflict_term
 *   SNAPSHOT                 uv index | uv term | uv nvoters | nvoters × uv id |
 *                            uv nlearners | nlearners × uv id |
 *                            uv offset | uv total | u8 done | uv len | len bytes
 *   SNAPSHOT_RESP            uv index | uv offset | u8 success
 *   TIMEOUT_NOW              (nothing)
 *
 * The message must end exactly where its body does. The decoder trusts no
 * count or length: each is checked against the caller's limits and against the
 * bytes remaining before anything is borrowed, and it allocates nothing.
 *
 * A CONFIG entry's payload (rn_raft_config_encode) is the voters, u32 count then
 * count × i32, then the learners the same way, big-endian; ids >= 0 and all
 * distinct, 1..RN_RAFT_MAX_VOTERS voters, 0..RN_RAFT_MAX_VOTERS learners.
 */
#include <string.h>

#include "rn_raft.h"

#define MSG_VERSION 1

const char *rn_raft_msg_type_name(uint8_t type) {
    switch (type) {
    case RN_RAFT_MSG_PREVOTE: return "PreVote";
    case RN_RAFT_MSG_PREVOTE_RESP: return "PreVoteResp";
    case RN_RAFT_MSG_VOTE: return "Vote";
    case RN_RAFT_MSG_VOTE_RESP: return "VoteResp";
    case RN_RAFT_MSG_APPEND: return "Append";
    case RN_RAFT_MSG_APPEND_RESP: return "AppendResp";
    case RN_RAFT_MSG_SNAPSHOT: return "Snapshot";
    case RN_RAFT_MSG_SNAPSHOT_RESP: return "SnapshotResp";
    case RN_RAFT_MSG_TIMEOUT_NOW: return "TimeoutNow";
    default: return "?";
    }
}

static bool put_ids(rn_buf_t *out, const rn_raft_voters_t *v) {
    if (v->count > RN_RAFT_MAX_VOTERS) return false;
    rn_buf_put_uvarint(out, v->count);
    for (uint32_t i = 0; i < v->count; i++) {
        if (v->ids[i] < 0) return false;
        rn_buf_put_uvarint(out, (uint64_t)v->ids[i]);
    }
    return true;
}

rn_err_t rn_raft_msg_encode(const rn_raft_msg_t *m, rn_buf_t *out) {
    if (m->from < 0 || m->to < 0) return RN_ERR_INVALID_ARG;
    rn_buf_put_i8(out, MSG_VERSION);
    rn_buf_put_i8(out, (int8_t)m->type);
    rn_buf_put_uvarint(out, (uint64_t)m->from);
    rn_buf_put_uvarint(out, (uint64_t)m->to);
    rn_buf_put_uvarint(out, m->term);
    switch (m->type) {
    case RN_RAFT_MSG_PREVOTE:
    case RN_RAFT_MSG_VOTE:
        rn_buf_put_uvarint(out, m->index);
        rn_buf_put_uvarint(out, m->log_term);
        break;
    case RN_RAFT_MSG_PREVOTE_RESP:
    case RN_RAFT_MSG_VOTE_RESP: rn_buf_put_i8(out, m->granted ? 1 : 0); break;
    case RN_RAFT_MSG_APPEND:
        rn_buf_put_uvarint(out, m->index);
        rn_buf_put_uvarint(out, m->log_term);
        rn_buf_put_uvarint(out, m->commit);
        rn_buf_put_uvarint(out, m->n_entries);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            const rn_raft_entry_t *e = &m->entries[i];
            if (e->index != m->index + 1 + i) return RN_ERR_INVALID_ARG;
            rn_buf_put_uvarint(out, e->term);
            rn_buf_put_i8(out, (int8_t)e->type);
            rn_buf_put_uvarint(out, e->len);
            rn_buf_put(out, e->data, e->len);
        }
        break;
    case RN_RAFT_MSG_APPEND_RESP:
        rn_buf_put_i8(out, m->granted ? 1 : 0);
        rn_buf_put_uvarint(out, m->index);
        rn_buf_put_uvarint(out, m->log_term);
        break;
    case RN_RAFT_MSG_SNAPSHOT:
        rn_buf_put_uvarint(out, m->snap.index);
        rn_buf_put_uvarint(out, m->snap.term);
        if (!put_ids(out, &m->snap.voters) || !put_ids(out, &m->snap.learners)) return RN_ERR_INVALID_ARG;
        rn_buf_put_uvarint(out, m->offset);
        rn_buf_put_uvarint(out, m->total);
        rn_buf_put_i8(out, m->done ? 1 : 0);
        rn_buf_put_uvarint(out, m->chunk_len);
        rn_buf_put(out, m->chunk, m->chunk_len);
        break;
    case RN_RAFT_MSG_SNAPSHOT_RESP:
        rn_buf_put_uvarint(out, m->snap.index);
        rn_buf_put_uvarint(out, m->offset);
        rn_buf_put_i8(out, m->granted ? 1 : 0);
        break;
    case RN_RAFT_MSG_TIMEOUT_NOW: break;
    default: return RN_ERR_INVALID_ARG;
    }
    return rn_buf_err(out);
}

static int32_t read_node_id(rn_reader_t *rd) {
    uint32_t v = rn_reader_uvarint32(rd);
    if (v > INT32_MAX) rn_reader_fail(rd, RN_ERR_MALFORMED);
    return (int32_t)(v & INT32_MAX);
}

static bool read_flag(rn_reader_t *rd) {
    int8_t v = rn_reader_i8(rd);
    if (v != 0 && v != 1) rn_reader_fail(rd, RN_ERR_MALFORMED);
    return v == 1;
}

static void read_ids(rn_reader_t *rd, rn_raft_voters_t *v) {
    uint32_t n = rn_reader_uvarint32(rd);
    if (n > RN_RAFT_MAX_VOTERS) {
        rn_reader_fail(rd, RN_ERR_MALFORMED);
        return;
    }
    v->count = n;
    for (uint32_t i = 0; i < n; i++) v->ids[i] = read_node_id(rd);
}

/* A length that must fit in what is left of the input and under max. */
static uint32_t read_len(rn_reader_t *rd, uint32_t max) {
    uint32_t n = rn_reader_uvarint32(rd);
    if (rn_reader_err(rd)) return 0;
    if (n > max) {
        rn_reader_fail(rd, RN_ERR_LIMIT);
        return 0;
    }
    if (n > rn_reader_remaining(rd)) {
        rn_reader_fail(rd, RN_ERR_TRUNCATED);
        return 0;
    }
    return n;
}

rn_err_t rn_raft_msg_decode(const uint8_t *p, size_t len, const rn_raft_msg_limits_t *lim,
                            rn_raft_entry_t *ents, rn_raft_msg_t *m) {
    rn_reader_t rd;
    rn_reader_init(&rd, p, len);
    memset(m, 0, sizeof(*m));
    if (rn_reader_i8(&rd) != MSG_VERSION) return rn_reader_err(&rd) ? rn_reader_err(&rd) : RN_ERR_MALFORMED;
    m->type = (uint8_t)rn_reader_i8(&rd);
    m->from = read_node_id(&rd);
    m->to = read_node_id(&rd);
    m->term = rn_reader_uvarint(&rd);
    switch (m->type) {
    case RN_RAFT_MSG_PREVOTE:
    case RN_RAFT_MSG_VOTE:
        m->index = rn_reader_uvarint(&rd);
        m->log_term = rn_reader_uvarint(&rd);
        break;
    case RN_RAFT_MSG_PREVOTE_RESP:
    case RN_RAFT_MSG_VOTE_RESP: m->granted = read_flag(&rd); break;
    case RN_RAFT_MSG_APPEND: {
        m->index = rn_reader_uvarint(&rd);
        m->log_term = rn_reader_uvarint(&rd);
        m->commit = rn_reader_uvarint(&rd);
        /* each entry takes at least 3 bytes */
        uint32_t n = rn_reader_uvarint32(&rd);
        if (rn_reader_err(&rd)) break;
        if (n > lim->max_entries) return RN_ERR_LIMIT;
        if ((size_t)n * 3 > rn_reader_remaining(&rd)) return RN_ERR_TRUNCATED;
        if (m->index > UINT64_MAX - n) return RN_ERR_MALFORMED;
        for (uint32_t i = 0; i < n && !rn_reader_err(&rd); i++) {
            rn_raft_entry_t *e = &ents[i];
            e->index = m->index + 1 + i;
            e->term = rn_reader_uvarint(&rd);
            e->type = (uint8_t)rn_reader_i8(&rd);
            if (e->type > RN_RAFT_ENTRY_NOOP) rn_reader_fail(&rd, RN_ERR_MALFORMED);
            e->len = read_len(&rd, lim->max_entry_bytes);
            e->data = e->len ? rn_reader_take(&rd, e->len) : NULL;
        }
        m->n_entries = n;
        m->entries = ents;
        break;
    }
    case RN_RAFT_MSG_APPEND_RESP:
        m->granted = read_flag(&rd);
        m->index = rn_reader_uvarint(&rd);
        m->log_term = rn_reader_uvarint(&rd);
        break;
    case RN_RAFT_MSG_SNAPSHOT: {
        m->snap.index = rn_reader_uvarint(&rd);
        m->snap.term = rn_reader_uvarint(&rd);
        read_ids(&rd, &m->snap.voters);
        read_ids(&rd, &m->snap.learners);
        m->offset = rn_reader_uvarint(&rd);
        m->total = rn_reader_uvarint(&rd);
        m->done = read_flag(&rd);
        m->chunk_len = read_len(&rd, lim->max_entry_bytes);
        m->chunk = m->chunk_len ? rn_reader_take(&rd, m->chunk_len) : NULL;
        if (!rn_reader_err(&rd) && (m->offset > m->total || m->total - m->offset < m->chunk_len))
            return RN_ERR_MALFORMED;
        break;
    }
    case RN_RAFT_MSG_SNAPSHOT_RESP:
        m->snap.index = rn_reader_uvarint(&rd);
        m->offset = rn_reader_uvarint(&rd);
        m->granted = read_flag(&rd);
        break;
    case RN_RAFT_MSG_TIMEOUT_NOW: break;
    default: return RN_ERR_MALFORMED;
    }
    if (rn_reader_err(&rd)) return rn_reader_err(&rd);
    if (rn_reader_remaining(&rd) != 0) return RN_ERR_MALFORMED;
    return RN_OK;
}

/* ---- voter sets ------------------------------------------------------------ */

bool rn_raft_voters_has(const rn_raft_voters_t *v, int32_t id) {
    for (uint32_t i = 0; i < v->count; i++)
        if (v->ids[i] == id) return true;
    return false;
}

bool rn_raft_members_valid(const rn_raft_voters_t *voters, const rn_raft_voters_t *learners) {
    if (voters->count == 0 || voters->count > RN_RAFT_MAX_VOTERS || learners->count > RN_RAFT_MAX_VOTERS)
        return false;
    for (uint32_t i = 0; i < voters->count + learners->count; i++) {
        int32_t id = i < voters->count ? voters->ids[i] : learners->ids[i - voters->count];
        if (id < 0) return false;
        for (uint32_t j = 0; j < i; j++)
            if (id == (j < voters->count ? voters->ids[j] : learners->ids[j - voters->count])) return false;
    }
    return true;
}

rn_err_t rn_raft_config_encode(const rn_raft_voters_t *voters, const rn_raft_voters_t *learners, rn_buf_t *out) {
    static const rn_raft_voters_t none;
    if (!learners) learners = &none;
    if (!rn_raft_members_valid(voters, learners)) return RN_ERR_INVALID_ARG;
    for (int k = 0; k < 2; k++) {
        const rn_raft_voters_t *v = k ? learners : voters;
        rn_buf_put_u32(out, v->count);
        for (uint32_t i = 0; i < v->count; i++) rn_buf_put_i32(out, v->ids[i]);
    }
    return rn_buf_err(out);
}

rn_err_t rn_raft_config_decode(const uint8_t *p, size_t len, rn_raft_voters_t *voters, rn_raft_voters_t *learners) {
    rn_reader_t rd;
    rn_reader_init(&rd, p, len);
    for (int k = 0; k < 2; k++) {
        rn_raft_voters_t *v = k ? learners : voters;
        uint32_t n = rn_reader_u32(&rd);
        if (rn_reader_err(&rd) || n > RN_RAFT_MAX_VOTERS || (size_t)n * 4 > rn_reader_remaining(&rd))
            return RN_ERR_MALFORMED;
        v->count = n;
        for (uint32_t i = 0; i < n; i++) v->ids[i] = rn_reader_i32(&rd);
    }
    if (rn_reader_remaining(&rd) || !rn_raft_members_valid(voters, learners)) return RN_ERR_MALFORMED;
    return RN_OK;
}
