/*
 * test_raft_msg.c — the Raft message and voter-set encodings (src/raft/rn_raft_msg.c):
 * round trips of every type, and the decoder refusing what it must: every
 * truncation, trailing bytes, counts and lengths over the limits, bad flags,
 * versions and types, voter sets with duplicates or too many ids.
 */
#include "rn_raft.h"
#include "rn_test.h"

static const rn_raft_msg_limits_t lim = {.max_entries = 4, .max_entry_bytes = 16};

static rn_raft_entry_t ents_in[3] = {
    {.index = 8, .term = 3, .type = RN_RAFT_ENTRY_DATA, .data = (const uint8_t *)"hello", .len = 5},
    {.index = 9, .term = 3, .type = RN_RAFT_ENTRY_NOOP},
    {.index = 10, .term = 4, .type = RN_RAFT_ENTRY_CONFIG, .data = (const uint8_t *)"\0\0\0\1\0\0\0\7", .len = 8},
};

static rn_raft_msg_t sample(uint8_t type) {
    rn_raft_msg_t m = {.type = type, .from = 2, .to = 300, .term = 1ull << 40, .index = 7, .log_term = 3,
                       .commit = 6, .granted = true};
    if (type == RN_RAFT_MSG_APPEND) {
        m.n_entries = 3;
        m.entries = ents_in;
    }
    if (type == RN_RAFT_MSG_SNAPSHOT) {
        m.snap = (rn_raft_snap_meta_t){.index = 99, .term = 5, .voters = {.count = 3, .ids = {1, 2, 70000}},
                                       .learners = {.count = 1, .ids = {8}}};
        m.offset = 4;
        m.total = 10;
        m.chunk = (const uint8_t *)"abcdef";
        m.chunk_len = 6;
        m.done = true;
    }
    if (type == RN_RAFT_MSG_SNAPSHOT_RESP) {
        m.snap.index = 99;
        m.offset = 10;
    }
    return m;
}

static size_t encode(const rn_raft_msg_t *m, uint8_t *out, size_t cap) {
    rn_buf_t b;
    rn_buf_init(&b, cap);
    rn_err_t err = rn_raft_msg_encode(m, &b);
    size_t n = err ? 0 : b.len;
    if (n) memcpy(out, b.data, n);
    rn_buf_free(&b);
    return n;
}

RN_TEST(raft_msg_round_trip_every_type) {
    for (uint8_t t = RN_RAFT_MSG_PREVOTE; t <= RN_RAFT_MSG_TIMEOUT_NOW; t++) {
        rn_raft_msg_t m = sample(t), d;
        uint8_t buf[256];
        size_t n = encode(&m, buf, sizeof(buf));
        ASSERT_GT(n, 0);
        rn_raft_entry_t ents[4];
        ASSERT_EQ(rn_raft_msg_decode(buf, n, &lim, ents, &d), RN_OK);
        ASSERT_EQ(d.type, t);
        ASSERT_EQ(d.from, 2);
        ASSERT_EQ(d.to, 300);
        ASSERT_TRUE(d.term == 1ull << 40);
        switch (t) {
        case RN_RAFT_MSG_PREVOTE:
        case RN_RAFT_MSG_VOTE:
            ASSERT_EQ(d.index, 7);
            ASSERT_EQ(d.log_term, 3);
            break;
        case RN_RAFT_MSG_APPEND:
            ASSERT_EQ(d.index, 7);
            ASSERT_EQ(d.commit, 6);
            ASSERT_EQ(d.n_entries, 3);
            for (int i = 0; i < 3; i++) {
                ASSERT_EQ(d.entries[i].index, ents_in[i].index);
                ASSERT_EQ(d.entries[i].term, ents_in[i].term);
                ASSERT_EQ(d.entries[i].type, ents_in[i].type);
                ASSERT_EQ(d.entries[i].len, ents_in[i].len);
                if (d.entries[i].len) ASSERT_MEMEQ(d.entries[i].data, ents_in[i].data, ents_in[i].len);
            }
            break;
        case RN_RAFT_MSG_SNAPSHOT:
            ASSERT_EQ(d.snap.index, 99);
            ASSERT_EQ(d.snap.voters.count, 3);
            ASSERT_EQ(d.snap.voters.ids[2], 70000);
            ASSERT_EQ(d.snap.learners.count, 1);
            ASSERT_EQ(d.snap.learners.ids[0], 8);
            ASSERT_EQ(d.offset, 4);
            ASSERT_EQ(d.total, 10);
            ASSERT_TRUE(d.done);
            ASSERT_EQ(d.chunk_len, 6);
            ASSERT_MEMEQ(d.chunk, "abcdef", 6);
            break;
        case RN_RAFT_MSG_TIMEOUT_NOW: break;
        default: ASSERT_TRUE(d.granted);
        }
        /* every strict prefix fails, one more byte fails */
        for (size_t k = 0; k < n; k++) ASSERT_NE(rn_raft_msg_decode(buf, k, &lim, ents, &d), RN_OK);
        buf[n] = 0;
        ASSERT_EQ(rn_raft_msg_decode(buf, n + 1, &lim, ents, &d), RN_ERR_MALFORMED);
    }
}

RN_TEST(raft_msg_limits_enforced) {
    uint8_t buf[512];
    rn_raft_entry_t ents[4];
    rn_raft_msg_t m = sample(RN_RAFT_MSG_APPEND), d;
    rn_raft_entry_t five[5];
    for (int i = 0; i < 5; i++) five[i] = (rn_raft_entry_t){.index = 8 + (uint64_t)i, .term = 3};
    m.entries = five;
    m.n_entries = 5;
    size_t n = encode(&m, buf, sizeof(buf));
    ASSERT_EQ(rn_raft_msg_decode(buf, n, &lim, ents, &d), RN_ERR_LIMIT); /* 5 entries > 4 */
    /* an entry over max_entry_bytes */
    uint8_t big[17] = {0};
    rn_raft_entry_t one = {.index = 8, .term = 3, .data = big, .len = sizeof(big)};
    m.entries = &one;
    m.n_entries = 1;
    n = encode(&m, buf, sizeof(buf));
    ASSERT_EQ(rn_raft_msg_decode(buf, n, &lim, ents, &d), RN_ERR_LIMIT);
    /* entries whose indexes do not follow prev are not encoded */
    one.len = 1;
    one.index = 9;
    ASSERT_EQ(encode(&m, buf, sizeof(buf)), 0);
    /* a snapshot chunk that runs past its total */
    m = sample(RN_RAFT_MSG_SNAPSHOT);
    m.total = 8;
    n = encode(&m, buf, sizeof(buf));
    ASSERT_EQ(rn_raft_msg_decode(buf, n, &lim, ents, &d), RN_ERR_MALFORMED);
}

RN_TEST(raft_msg_bad_header_and_fields) {
    uint8_t buf[256];
    rn_raft_entry_t ents[4];
    rn_raft_msg_t m = sample(RN_RAFT_MSG_VOTE_RESP), d;
    size_t n = encode(&m, buf, sizeof(buf));
    buf[0] = 2; /* version */
    ASSERT_EQ(rn_raft_msg_decode(buf, n, &lim, ents, &d), RN_ERR_MALFORMED);
    buf[0] = 1;
    buf[1] = 10; /* type */
    ASSERT_EQ(rn_raft_msg_decode(buf, n, &lim, ents, &d), RN_ERR_MALFORMED);
    buf[1] = RN_RAFT_MSG_VOTE_RESP;
    buf[n - 1] = 2; /* a flag is 0 or 1 */
    ASSERT_EQ(rn_raft_msg_decode(buf, n, &lim, ents, &d), RN_ERR_MALFORMED);
    /* a node id above INT32_MAX */
    uint8_t id[] = {1, RN_RAFT_MSG_VOTE_RESP, 0x80, 0x80, 0x80, 0x80, 0x08, 1, 1, 1};
    ASSERT_NE(rn_raft_msg_decode(id, sizeof(id), &lim, ents, &d), RN_OK);
    /* a snapshot naming 17 voters, or 17 learners */
    uint8_t sv[] = {1, RN_RAFT_MSG_SNAPSHOT, 1, 2, 1, 5, 1, 17};
    ASSERT_EQ(rn_raft_msg_decode(sv, sizeof(sv), &lim, ents, &d), RN_ERR_MALFORMED);
    uint8_t sl[] = {1, RN_RAFT_MSG_SNAPSHOT, 1, 2, 1, 5, 1, 1, 3, 17};
    ASSERT_EQ(rn_raft_msg_decode(sl, sizeof(sl), &lim, ents, &d), RN_ERR_MALFORMED);
    /* an entry count that cannot fit in what is left */
    uint8_t cnt[] = {1, RN_RAFT_MSG_APPEND, 1, 2, 1, 0, 0, 0, 4, 0, 0};
    ASSERT_EQ(rn_raft_msg_decode(cnt, sizeof(cnt), &lim, ents, &d), RN_ERR_TRUNCATED);
    /* negative node ids are not encoded */
    m.from = -1;
    ASSERT_EQ(encode(&m, buf, sizeof(buf)), 0);
}

RN_TEST(raft_config_encoding) {
    rn_raft_voters_t v = {.count = 3, .ids = {1, 5, 9}}, l = {.count = 1, .ids = {4}}, dv, dl;
    rn_buf_t b;
    rn_buf_init(&b, 128);
    ASSERT_EQ(rn_raft_config_encode(&v, &l, &b), RN_OK);
    ASSERT_EQ(b.len, 24);
    ASSERT_EQ(rn_raft_config_decode(b.data, b.len, &dv, &dl), RN_OK);
    ASSERT_EQ(dv.count, 3);
    ASSERT_TRUE(rn_raft_voters_has(&dv, 9));
    ASSERT_FALSE(rn_raft_voters_has(&dv, 4));
    ASSERT_EQ(dl.count, 1);
    ASSERT_TRUE(rn_raft_voters_has(&dl, 4));
    ASSERT_EQ(rn_raft_config_decode(b.data, b.len - 1, &dv, &dl), RN_ERR_MALFORMED);
    b.data[23] = 5; /* learner 5 is a voter too */
    ASSERT_EQ(rn_raft_config_decode(b.data, b.len, &dv, &dl), RN_ERR_MALFORMED);
    b.data[11] = 1; /* voters 1, 1, 9: a duplicate */
    b.data[23] = 4;
    ASSERT_EQ(rn_raft_config_decode(b.data, b.len, &dv, &dl), RN_ERR_MALFORMED);
    rn_buf_reset(&b);
    ASSERT_EQ(rn_raft_config_encode(&v, NULL, &b), RN_OK); /* no learners */
    ASSERT_EQ(b.len, 20);
    ASSERT_EQ(rn_raft_config_decode(b.data, b.len, &dv, &dl), RN_OK);
    ASSERT_EQ(dl.count, 0);
    rn_buf_free(&b);
    uint8_t zero[8] = {0}; /* no voters */
    ASSERT_EQ(rn_raft_config_decode(zero, 8, &dv, &dl), RN_ERR_MALFORMED);
    uint8_t many[8] = {0, 0, 0, 17};
    ASSERT_EQ(rn_raft_config_decode(many, 8, &dv, &dl), RN_ERR_MALFORMED);
    rn_raft_voters_t none = {0};
    rn_buf_init(&b, 128);
    ASSERT_EQ(rn_raft_config_encode(&none, NULL, &b), RN_ERR_INVALID_ARG);
    ASSERT_EQ(rn_raft_config_encode(&v, &v, &b), RN_ERR_INVALID_ARG); /* overlapping */
    rn_buf_free(&b);
}

int main(void) { return rn_test_main(); }
