/*
 * rn_h_markers.c — WriteTxnMarkers (API 27), node to node: a
 * transaction's coordinator asks each partition's leader to append the
 * COMMIT or ABORT marker of a producer. Only the leader appends
 * (NOT_LEADER_OR_FOLLOWER elsewhere); the answer waits, as Kafka's does with
 * acks=all, until the high watermark covers the marker, so a marker the
 * coordinator has counted cannot be lost with a leader. A marker in
 * __consumer_offsets also applies (COMMIT) or drops (ABORT) the transaction's
 * pending group offsets on this node, the groups' coordinator.
 */
#include "rn_broker.h"
#include "rn_msg_gen.h"
#include "rn_txn.h"

#define RN_MARKERS_TIMEOUT_MS 5000 /* the sender's client waits a little longer */

static void markers_fail(void *resp, int16_t err) {
    rn_WriteTxnMarkersResponse_t *r = resp;
    if (err == RN_ERR_NOT_COORDINATOR) err = RN_ERR_NOT_LEADER_OR_FOLLOWER; /* leadership moved meanwhile */
    for (int32_t i = 0; i < r->Markers_count; i++)
        for (int32_t j = 0; j < r->Markers[i].Topics_count; j++)
            for (int32_t k = 0; k < r->Markers[i].Topics[j].Partitions_count; k++)
                if (!r->Markers[i].Topics[j].Partitions[k].ErrorCode) r->Markers[i].Topics[j].Partitions[k].ErrorCode = err;
}

void rn_h_write_txn_markers(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_WriteTxnMarkersRequest_t rq;
    rn_WriteTxnMarkersRequest_init(&rq);
    rn_err_t rc = rn_WriteTxnMarkersRequest_decode(body, h->api_version, a, &rq);
    rn_WriteTxnMarkersResponse_t *resp = rc ? NULL : rn_arena_calloc(a, 1, sizeof(*resp));
    int32_t nm = rq.Markers_count > 0 ? rq.Markers_count : 0;
    if (resp) resp->Markers = rn_arena_calloc(a, (size_t)nm + 1, sizeof(*resp->Markers));
    if (rc || !resp || !resp->Markers) {
        rn_broker_bad_request(b, req, h, rc ? rc : RN_ERR_LIMIT);
        return;
    }
    resp->Markers_count = nm;
    rn_durable_t d;
    rn_durable_init(&d);
    for (int32_t i = 0; i < nm; i++) {
        const rn_WriteTxnMarkersRequest_WritableTxnMarker_t *m = &rq.Markers[i];
        rn_WriteTxnMarkersResponse_WritableTxnMarkerResult_t *mr = &resp->Markers[i];
        mr->ProducerId = m->ProducerId;
        int32_t nt = m->Topics_count > 0 ? m->Topics_count : 0;
        mr->Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*mr->Topics));
        mr->Topics_count = mr->Topics ? nt : 0;
        for (int32_t j = 0; j < mr->Topics_count; j++) {
            const rn_WriteTxnMarkersRequest_WritableTxnMarkerTopic_t *t = &m->Topics[j];
            rn_WriteTxnMarkersResponse_WritableTxnMarkerTopicResult_t *tr = &mr->Topics[j];
            tr->Name = t->Name;
            int32_t np = t->PartitionIndexes_count > 0 ? t->PartitionIndexes_count : 0;
            tr->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*tr->Partitions));
            tr->Partitions_count = tr->Partitions ? np : 0;
            for (int32_t k = 0; k < tr->Partitions_count; k++) {
                tr->Partitions[k].PartitionIndex = t->PartitionIndexes[k];
                rn_err_t err = m->ProducerId < 0 || m->ProducerEpoch < 0
                                   ? RN_ERR_INVALID_REQUEST
                                   : rn_txn_append_marker(b, t->Name, t->PartitionIndexes[k], m->ProducerId,
                                                          m->ProducerEpoch, m->TransactionResult, m->CoordinatorEpoch, &d);
                tr->Partitions[k].ErrorCode = rn_err_wire(err);
                if (err && h->api_key >= 0) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
            }
        }
    }
    rn_broker_respond_replicated(b, req, h, &d, RN_MARKERS_TIMEOUT_MS, (rn_encode_fn)rn_WriteTxnMarkersResponse_encode,
                                 resp, markers_fail, RN_ERR_NOT_ENOUGH_REPLICAS);
}
