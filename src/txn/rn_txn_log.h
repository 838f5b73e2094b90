/*
 * rn_txn_log.h — the records of __transaction_state in Kafka's layouts
 * (TransactionLogKey v0, TransactionLogValue v0; v1 read too). See
 * rn_txn_log.c for the bytes.
 */
#ifndef RN_TXN_LOG_H
#define RN_TXN_LOG_H

#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"

#define RN_TXN_STATE_TOPIC "__transaction_state"

/* Kafka's TransactionState ids, as stored in TransactionStatus. */
typedef enum {
    RN_TXN_EMPTY = 0,
    RN_TXN_ONGOING = 1,
    RN_TXN_PREPARE_COMMIT = 2,
    RN_TXN_PREPARE_ABORT = 3,
    RN_TXN_COMPLETE_COMMIT = 4,
    RN_TXN_COMPLETE_ABORT = 5,
    RN_TXN_DEAD = 6,
} rn_txn_state_t;

/* Kafka's names ("Empty", "Ongoing", ...), as DescribeTransactions answers them. */
const char *rn_txn_state_name(rn_txn_state_t s);
/* The state of a Kafka name, or -1. */
int rn_txn_state_from_name(rn_str_t name);

/* One partition of a transaction. */
typedef struct {
    char *topic;
    int32_t partition;
} rn_txn_tp_t;

typedef struct {
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    rn_txn_state_t state;
    int64_t last_update_ms;
    int64_t start_ms;
    /* The partitions (grouped by topic on the wire); parsing allocates them
     * (rn_txn_record_free). */
    rn_txn_tp_t *parts;
    int32_t nparts;
} rn_txn_record_t;

void rn_txn_log_key(rn_buf_t *out, rn_str_t txn_id);
/* Value v0. Fails (RN_ERR_NOMEM) only if sorting the partitions cannot allocate. */
rn_err_t rn_txn_log_value(rn_buf_t *out, const rn_txn_record_t *v);
/* Key v0: the transactional id (borrowed). RN_ERR_MALFORMED otherwise. */
rn_err_t rn_txn_log_parse_key(rn_bytes_t key, rn_str_t *txn_id);
/* Value v0/v1, at most `max_parts` partitions: RN_ERR_MALFORMED, RN_ERR_NOMEM. */
rn_err_t rn_txn_log_parse_value(rn_bytes_t value, int32_t max_parts, rn_txn_record_t *out);
void rn_txn_record_free(rn_txn_record_t *v);

#endif
