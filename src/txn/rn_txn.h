/*
 * rn_txn.h — the transaction coordinator: transactional ids, their producer
 * id and epoch, the partitions of each open transaction, and the COMMIT/ABORT
 * markers that end it (see rn_txn.c for the state machine).
 *
 * The state is kept in __transaction_state; the coordinator of an id is the
 * leader of its partition there (a lone node leads them all), which replays
 * the partition when it comes to lead it.
 */
#ifndef RN_TXN_H
#define RN_TXN_H

#include <stdint.h>

#include "rn_broker.h"
#include "rn_itopic.h"

typedef struct rn_txn_coordinator rn_txn_coordinator_t;

/* A state record not durable by then: the request fails (retriable). */
#define RN_TXN_SYNC_TIMEOUT_MS 30000

rn_err_t rn_txn_coordinator_start(rn_broker_t *b, char *err, size_t errlen);
/* Stops its thread (which uses the cluster's replica manager and peers). */
void rn_txn_coordinator_stop(rn_broker_t *b);
void rn_txn_coordinator_free(rn_broker_t *b);

/* InitProducerId with a TransactionalId: the error code, and the id/epoch to
 * answer once *d is replicated. */
int16_t rn_txn_init_producer_id(rn_broker_t *b, rn_str_t txn_id, int32_t timeout_ms, int64_t producer_id,
                                int16_t producer_epoch, int64_t *out_id, int16_t *out_epoch, rn_durable_t *d);

/* After the registry followed a new image: load the partitions
 * of __transaction_state led here, unload the others (the reaper thread). */
void rn_txn_coordinator_follow(rn_broker_t *b);
/* Can this node serve transactional ids of the partition now? 0,
 * NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
int16_t rn_txn_owns_partition(rn_broker_t *b, int32_t partition);
rn_itopic_t *rn_txn_state_topic(rn_broker_t *b); /* NULL: no coordinator */
/* A COMMIT or ABORT marker of the producer appended to a partition this node
 * leads (NOT_LEADER_OR_FOLLOWER otherwise); *d gains what makes it durable.
 * A marker in __consumer_offsets applies or drops the group offsets pending
 * in the transaction. */
rn_err_t rn_txn_append_marker(rn_broker_t *b, rn_str_t topic, int32_t partition, int64_t producer_id,
                              int16_t producer_epoch, bool commit, int32_t coordinator_epoch, rn_durable_t *d);
/* WriteTxnMarkers (node to node): from a transaction's coordinator. */
void rn_h_write_txn_markers(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);

/* Produce with a TransactionalId: may this producer write to the partition now?
 * Where this node coordinates the id: RN_OK, INVALID_PRODUCER_EPOCH (fenced),
 * INVALID_PRODUCER_ID_MAPPING or INVALID_TXN_STATE (partition not added to an
 * ongoing transaction); elsewhere RN_OK (the log's producer state fences). */
int16_t rn_txn_check_produce(rn_broker_t *b, rn_str_t txn_id, int64_t producer_id, int16_t producer_epoch,
                             rn_str_t topic, int32_t partition);

void rn_h_add_partitions_to_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_add_offsets_to_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_txn_offset_commit(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_end_txn(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_describe_transactions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_list_transactions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);

#endif
