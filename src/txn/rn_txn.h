/*
 * rn_txn.h — the transaction coordinator: transactional ids, their producer
 * id and epoch, the partitions of each open transaction, and the COMMIT/ABORT
 * markers that end it (see rn_txn.c for the state machine).
 *
 * This node coordinates every transactional id. Its state is kept in
 * __transaction_state and replayed at start-up.
 */
#ifndef RN_TXN_H
#define RN_TXN_H

#include <stdint.h>

#include "rn_broker.h"

typedef struct rn_txn_coordinator rn_txn_coordinator_t;

/* A state record not durable by then: the request fails (retriable). */
#define RN_TXN_SYNC_TIMEOUT_MS 30000

rn_err_t rn_txn_coordinator_start(rn_broker_t *b, char *err, size_t errlen);
void rn_txn_coordinator_free(rn_broker_t *b);

/* InitProducerId with a TransactionalId: the error code, and the id/epoch to
 * answer once *ticket is durable. */
int16_t rn_txn_init_producer_id(rn_broker_t *b, rn_str_t txn_id, int32_t timeout_ms, int64_t producer_id,
                                int16_t producer_epoch, int64_t *out_id, int16_t *out_epoch, uint64_t *ticket);

/* Produce with a TransactionalId: may this producer write to the partition now?
 * RN_OK, INVALID_PRODUCER_EPOCH (fenced), INVALID_PRODUCER_ID_MAPPING or
 * INVALID_TXN_STATE (partition not added to an ongoing transaction). */
int16_t rn_txn_check_produce(rn_broker_t *b, rn_str_t txn_id, int64_t producer_id, int16_t producer_epoch,
                             rn_str_t topic, int32_t partition);

void rn_h_add_partitions_to_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_add_offsets_to_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_txn_offset_commit(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_end_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_describe_transactions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_list_transactions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);

#endif
