/* Unit tests for the records of __transaction_state (src/txn/rn_txn_log.c):
 * Kafka's TransactionLogKey v0 / TransactionLogValue v0 bytes, v1 (flexible)
 * reading, and bad input. */
#include <stdlib.h>

#include "rn_test.h"
#include "rn_txn_log.h"

static rn_bytes_t bytes_of(const rn_buf_t *b) { return (rn_bytes_t){b->data, (int32_t)b->len}; }

RN_TEST(key_is_version_0_and_the_id) {
    rn_buf_t b;
    rn_buf_init(&b, 1 << 16);
    rn_txn_log_key(&b, RN_STR_LIT("tx-1"));
    const uint8_t want[] = {0, 0, 0, 4, 't', 'x', '-', '1'};
    ASSERT_EQ(b.len, sizeof(want));
    ASSERT_MEMEQ(b.data, want, sizeof(want));
    rn_str_t id;
    ASSERT_EQ(rn_txn_log_parse_key(bytes_of(&b), &id), RN_OK);
    ASSERT_EQ(id.len, 4);
    ASSERT_MEMEQ(id.ptr, "tx-1", 4);
    b.data[1] = 1; /* another key version */
    ASSERT_EQ(rn_txn_log_parse_key(bytes_of(&b), &id), RN_ERR_MALFORMED);
    ASSERT_EQ(rn_txn_log_parse_key((rn_bytes_t){b.data, 3}, &id), RN_ERR_MALFORMED);
    rn_buf_free(&b);
}

RN_TEST(value_v0_layout_groups_partitions_by_topic) {
    rn_txn_tp_t parts[] = {{"b", 2}, {"a", 1}, {"b", 0}};
    rn_txn_record_t v = {.producer_id = 0x1122334455667788LL, .producer_epoch = 3, .timeout_ms = 60000,
                         .state = RN_TXN_PREPARE_COMMIT, .last_update_ms = 1000, .start_ms = 900,
                         .parts = parts, .nparts = 3};
    rn_buf_t b;
    rn_buf_init(&b, 1 << 16);
    ASSERT_EQ(rn_txn_log_value(&b, &v), RN_OK);
    const uint8_t want[] = {
        0, 0,                                           /* version 0 */
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* producer id */
        0, 3,                                           /* epoch */
        0, 0, 0xea, 0x60,                               /* timeout 60000 */
        2,                                              /* PrepareCommit */
        0, 0, 0, 2,                                     /* two topics, sorted */
        0, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1,              /* "a": [1] */
        0, 1, 'b', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2,  /* "b": [0, 2] */
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,                   /* last update 1000 */
        0, 0, 0, 0, 0, 0, 0x03, 0x84,                   /* start 900 */
    };
    ASSERT_EQ(b.len, sizeof(want));
    ASSERT_MEMEQ(b.data, want, sizeof(want));
    rn_txn_record_t back;
    ASSERT_EQ(rn_txn_log_parse_value(bytes_of(&b), 100, &back), RN_OK);
    ASSERT_EQ(back.producer_id, v.producer_id);
    ASSERT_EQ(back.producer_epoch, 3);
    ASSERT_EQ(back.timeout_ms, 60000);
    ASSERT_EQ(back.state, RN_TXN_PREPARE_COMMIT);
    ASSERT_EQ(back.last_update_ms, 1000);
    ASSERT_EQ(back.start_ms, 900);
    ASSERT_EQ(back.nparts, 3);
    ASSERT_STREQ(back.parts[0].topic, "a");
    ASSERT_EQ(back.parts[0].partition, 1);
    ASSERT_STREQ(back.parts[2].topic, "b");
    ASSERT_EQ(back.parts[2].partition, 2);
    rn_txn_record_free(&back);
    /* every truncation is refused, never read past */
    for (size_t n = 0; n < b.len; n++)
        ASSERT_EQ(rn_txn_log_parse_value((rn_bytes_t){b.data, (int32_t)n}, 100, &back), RN_ERR_MALFORMED);
    /* more partitions than allowed */
    ASSERT_EQ(rn_txn_log_parse_value(bytes_of(&b), 2, &back), RN_ERR_MALFORMED);
    /* an unknown state */
    b.data[16] = 9;
    ASSERT_EQ(rn_txn_log_parse_value(bytes_of(&b), 100, &back), RN_ERR_MALFORMED);
    rn_buf_free(&b);
}

RN_TEST(value_v1_flexible_is_read) {
    /* v1: compact strings/arrays, tagged fields (here a PreviousProducerId tag 0 at the end) */
    const uint8_t v1[] = {
        0, 1,                   /* version 1 */
        0, 0, 0, 0, 0, 0, 0, 7, /* producer id 7 */
        0, 1,                   /* epoch 1 */
        0, 0, 0x27, 0x10,       /* timeout 10000 */
        1,                      /* Ongoing */
        2,                      /* one topic (compact: n + 1) */
        2, 't',                 /* "t" */
        2, 0, 0, 0, 5,          /* [5] */
        0,                      /* topic's tagged fields */
        0, 0, 0, 0, 0, 0, 0, 9, /* last update */
        0, 0, 0, 0, 0, 0, 0, 8, /* start */
        1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 6, /* one tagged field: tag 0, 8 bytes */
    };
    rn_txn_record_t back;
    ASSERT_EQ(rn_txn_log_parse_value((rn_bytes_t){v1, sizeof(v1)}, 100, &back), RN_OK);
    ASSERT_EQ(back.producer_id, 7);
    ASSERT_EQ(back.state, RN_TXN_ONGOING);
    ASSERT_EQ(back.nparts, 1);
    ASSERT_STREQ(back.parts[0].topic, "t");
    ASSERT_EQ(back.parts[0].partition, 5);
    ASSERT_EQ(back.start_ms, 8);
    rn_txn_record_free(&back);
}

RN_TEST(state_names_are_kafkas) {
    ASSERT_STREQ(rn_txn_state_name(RN_TXN_EMPTY), "Empty");
    ASSERT_STREQ(rn_txn_state_name(RN_TXN_COMPLETE_ABORT), "CompleteAbort");
    ASSERT_EQ(rn_txn_state_from_name(RN_STR_LIT("PrepareAbort")), RN_TXN_PREPARE_ABORT);
    ASSERT_EQ(rn_txn_state_from_name(RN_STR_LIT("Dead")), RN_TXN_DEAD);
    ASSERT_EQ(rn_txn_state_from_name(RN_STR_LIT("ongoing")), -1);
}

int main(void) { return rn_test_main(); }
