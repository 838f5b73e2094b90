/*
 * rn_h_offsets.c — ListOffsets, OffsetForLeaderEpoch, DeleteRecords and
 * InitProducerId: the APIs that ask a partition about its offsets, move its
 * start, or hand out producer ids.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_batch.h"
#include "rn_broker.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"
#include "rn_txn.h"

#define RN_TS_LATEST (-1)
#define RN_TS_EARLIEST (-2)
#define RN_TS_MAX_TIMESTAMP (-3)
#define RN_TS_EARLIEST_LOCAL (-4)
#define RN_TS_LATEST_TIERED (-5)

/* Finds a partition and retains its log; error code otherwise. Takes topics_lock. */
static rn_err_t lookup(rn_broker_t *b, rn_str_t topic, int32_t partition, rn_log_t **log, int32_t *epoch) {
    if (topic.len <= 0) return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_partition_t *p = rn_broker_partition_locked(b, topic.ptr, (size_t)topic.len, partition);
    bool led = rn_partition_led_here(b, p);
    if (led) {
        *log = p->log;
        rn_log_retain(p->log);
        if (epoch) *epoch = p->leader_epoch;
    }
    pthread_rwlock_unlock(&b->topics_lock);
    return led ? RN_OK : p ? RN_ERR_NOT_LEADER_OR_FOLLOWER : RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
}

/*
 * The log answers time queries at batch granularity (its time index); Kafka
 * answers with the exact record. Read the batch(es) from `offset` and find the
 * first record with timestamp >= ts (or, for `max`, the record carrying the
 * batch's max timestamp).
 */
#define RN_REFINE_MAX_BYTES (16 << 20)
static void refine_by_records(rn_log_t *log, int64_t upper, int64_t ts, bool max, int64_t *offset, int64_t *timestamp) {
    if (*offset < 0) return;
    rn_log_read_t rd = {0};
    if (rn_log_read(log, *offset, 1, true, upper, &rd) != RN_OK || rd.len <= 0 || !rd.file) {
        if (rd.file) rn_fileref_release(rd.file);
        return;
    }
    int32_t len = rd.len > RN_REFINE_MAX_BYTES ? RN_REFINE_MAX_BYTES : rd.len;
    uint8_t *buf = malloc((size_t)len);
    rn_arena_t arena;
    rn_arena_init(&arena, (size_t)RN_REFINE_MAX_BYTES * 4);
    if (buf && pread(rd.file->fd, buf, (size_t)len, rd.file_pos) == len) {
        size_t pos = 0;
        bool done = false;
        while (!done && pos + RN_BATCH_HEADER_SIZE <= (size_t)len) {
            rn_batch_header_t bh;
            rn_batch_header_decode(buf + pos, &bh);
            size_t total = rn_batch_total_size(&bh);
            if (bh.batch_length < 0 || total > (size_t)len - pos) break;
            rn_record_iter_t it;
            if (!rn_batch_is_control(&bh) &&
                rn_record_iter_init(&it, buf + pos, total, (size_t)RN_REFINE_MAX_BYTES * 2, &arena) == RN_OK) {
                rn_record_t rec;
                while (rn_record_iter_next(&it, &rec)) {
                    int64_t rts = (bh.attributes & RN_BATCH_ATTR_LOG_APPEND_TIME) ? bh.max_timestamp : rec.timestamp;
                    if (rec.offset < *offset && !max) continue;
                    if ((max && rts == *timestamp) || (!max && rts >= ts)) {
                        *offset = rec.offset;
                        *timestamp = rts;
                        done = true;
                        break;
                    }
                }
            }
            pos += total;
            if (max) break; /* the max-timestamp record is in the first batch read */
        }
    }
    free(buf);
    rn_arena_reset(&arena);
    rn_fileref_release(rd.file);
}

static void list_offset(rn_broker_t *b, rn_arena_t *a, int16_t version, int8_t isolation, rn_str_t topic,
                        const rn_ListOffsetsRequest_ListOffsetsPartition_t *rp,
                        rn_ListOffsetsResponse_ListOffsetsPartitionResponse_t *out) {
    out->PartitionIndex = rp->PartitionIndex;
    out->Timestamp = -1;
    out->Offset = -1;
    out->LeaderEpoch = -1;
    rn_log_t *log = NULL;
    int32_t epoch = 0;
    rn_err_t rc = lookup(b, topic, rp->PartitionIndex, &log, &epoch);
    if (rc) {
        out->ErrorCode = (int16_t)rc;
        return;
    }
    if (rp->CurrentLeaderEpoch >= 0 && rp->CurrentLeaderEpoch != epoch) {
        out->ErrorCode = rp->CurrentLeaderEpoch > epoch ? RN_ERR_UNKNOWN_LEADER_EPOCH : RN_ERR_FENCED_LEADER_EPOCH;
        rn_log_release(log);
        return;
    }
    int64_t offset = -1, ts = -1;
    int64_t latest = isolation == 1 ? rn_log_last_stable_offset(log) : rn_log_high_watermark(log);
    switch (rp->Timestamp) {
    case RN_TS_LATEST:
    case RN_TS_LATEST_TIERED:
        offset = latest;
        break;
    case RN_TS_EARLIEST:
    case RN_TS_EARLIEST_LOCAL:
        offset = rn_log_start_offset(log);
        break;
    case RN_TS_MAX_TIMESTAMP:
        rc = rn_log_max_timestamp(log, &offset, &ts);
        if (!rc && offset >= 0) {
            /* the log names the batch; find the record within it */
            refine_by_records(log, latest, ts, true, &offset, &ts);
        }
        break;
    default:
        rc = rn_log_offset_for_timestamp(log, rp->Timestamp, &offset, &ts);
        if (!rc) refine_by_records(log, latest, rp->Timestamp, false, &offset, &ts);
        /* Only offsets visible to this reader count. */
        if (!rc && offset >= latest) {
            offset = -1;
            ts = -1;
        }
        break;
    }
    if (rc) {
        out->ErrorCode = rc > 0 ? (int16_t)rc : RN_ERR_KAFKA_STORAGE_ERROR;
    } else {
        out->Offset = offset;
        out->Timestamp = ts;
        out->LeaderEpoch = epoch;
        if (version == 0) {
            /* v0: a list of offsets; we give the one asked for (at most MaxNumOffsets). */
            out->OldStyleOffsets_count = 0;
            if (rp->MaxNumOffsets > 0 && offset >= 0) {
                out->OldStyleOffsets = rn_arena_alloc(a, sizeof(int64_t));
                if (out->OldStyleOffsets) {
                    out->OldStyleOffsets[0] = offset;
                    out->OldStyleOffsets_count = 1;
                }
            }
        }
    }
    rn_log_release(log);
}

void rn_h_list_offsets(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_ListOffsetsRequest_t rq;
    rn_ListOffsetsRequest_init(&rq);
    rn_err_t rc = rn_ListOffsetsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_ListOffsetsResponse_t resp;
    rn_ListOffsetsResponse_init(&resp);
    int32_t nt = rq.Topics_count > 0 ? rq.Topics_count : 0;
    resp.Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp.Topics));
    if (!resp.Topics) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        rn_ListOffsetsResponse_ListOffsetsTopicResponse_t *tr = &resp.Topics[i];
        rn_ListOffsetsResponse_ListOffsetsTopicResponse_init(tr);
        tr->Name = rq.Topics[i].Name;
        int32_t np = rq.Topics[i].Partitions_count > 0 ? rq.Topics[i].Partitions_count : 0;
        tr->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*tr->Partitions));
        if (!tr->Partitions) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        tr->Partitions_count = np;
        for (int32_t j = 0; j < np; j++) {
            rn_ListOffsetsResponse_ListOffsetsPartitionResponse_init(&tr->Partitions[j]);
            list_offset(b, a, h->api_version, rq.IsolationLevel, rq.Topics[i].Name, &rq.Topics[i].Partitions[j],
                        &tr->Partitions[j]);
        }
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_ListOffsetsResponse_encode, &resp);
}

void rn_h_offset_for_leader_epoch(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_OffsetForLeaderEpochRequest_t rq;
    rn_OffsetForLeaderEpochRequest_init(&rq);
    rn_err_t rc = rn_OffsetForLeaderEpochRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_OffsetForLeaderEpochResponse_t resp;
    rn_OffsetForLeaderEpochResponse_init(&resp);
    int32_t nt = rq.Topics_count > 0 ? rq.Topics_count : 0;
    resp.Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp.Topics));
    if (!resp.Topics) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        rn_OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_t *tr = &resp.Topics[i];
        rn_OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_init(tr);
        tr->Topic = rq.Topics[i].Topic;
        int32_t np = rq.Topics[i].Partitions_count > 0 ? rq.Topics[i].Partitions_count : 0;
        tr->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*tr->Partitions));
        if (!tr->Partitions) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        tr->Partitions_count = np;
        for (int32_t j = 0; j < np; j++) {
            const rn_OffsetForLeaderEpochRequest_OffsetForLeaderPartition_t *rp = &rq.Topics[i].Partitions[j];
            rn_OffsetForLeaderEpochResponse_EpochEndOffset_t *out = &tr->Partitions[j];
            rn_OffsetForLeaderEpochResponse_EpochEndOffset_init(out);
            out->Partition = rp->Partition;
            rn_log_t *log = NULL;
            int32_t epoch = 0;
            rc = lookup(b, tr->Topic, rp->Partition, &log, &epoch);
            if (rc) {
                out->ErrorCode = (int16_t)rc;
                continue;
            }
            if (rp->CurrentLeaderEpoch >= 0 && rp->CurrentLeaderEpoch != epoch) {
                out->ErrorCode = rp->CurrentLeaderEpoch > epoch ? RN_ERR_UNKNOWN_LEADER_EPOCH : RN_ERR_FENCED_LEADER_EPOCH;
            } else {
                int32_t e = -1;
                int64_t end = -1;
                rc = rn_log_end_offset_for_epoch(log, rp->LeaderEpoch, &e, &end);
                if (rc)
                    out->ErrorCode = rc > 0 ? (int16_t)rc : RN_ERR_KAFKA_STORAGE_ERROR;
                else {
                    out->LeaderEpoch = e;
                    out->EndOffset = end;
                }
            }
            rn_log_release(log);
        }
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_OffsetForLeaderEpochResponse_encode, &resp);
}

void rn_h_delete_records(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_DeleteRecordsRequest_t rq;
    rn_DeleteRecordsRequest_init(&rq);
    rn_err_t rc = rn_DeleteRecordsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_DeleteRecordsResponse_t resp;
    rn_DeleteRecordsResponse_init(&resp);
    int32_t nt = rq.Topics_count > 0 ? rq.Topics_count : 0;
    resp.Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp.Topics));
    if (!resp.Topics) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Topics_count = nt;
    for (int32_t i = 0; i < nt; i++) {
        rn_DeleteRecordsResponse_DeleteRecordsTopicResult_t *tr = &resp.Topics[i];
        rn_DeleteRecordsResponse_DeleteRecordsTopicResult_init(tr);
        tr->Name = rq.Topics[i].Name;
        int32_t np = rq.Topics[i].Partitions_count > 0 ? rq.Topics[i].Partitions_count : 0;
        tr->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*tr->Partitions));
        if (!tr->Partitions) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        tr->Partitions_count = np;
        for (int32_t j = 0; j < np; j++) {
            const rn_DeleteRecordsRequest_DeleteRecordsPartition_t *rp = &rq.Topics[i].Partitions[j];
            rn_DeleteRecordsResponse_DeleteRecordsPartitionResult_t *out = &tr->Partitions[j];
            rn_DeleteRecordsResponse_DeleteRecordsPartitionResult_init(out);
            out->PartitionIndex = rp->PartitionIndex;
            out->LowWatermark = -1;
            rn_log_t *log = NULL;
            rc = lookup(b, tr->Name, rp->PartitionIndex, &log, NULL);
            if (rc) {
                out->ErrorCode = (int16_t)rc;
                continue;
            }
            int64_t target = rp->Offset == -1 ? rn_log_high_watermark(log) : rp->Offset;
            if (target < 0 || target > rn_log_high_watermark(log)) {
                out->ErrorCode = RN_ERR_OFFSET_OUT_OF_RANGE;
            } else {
                int64_t low = -1;
                rc = rn_log_delete_records(log, target, &low);
                if (rc)
                    out->ErrorCode = rc > 0 ? (int16_t)rc : RN_ERR_KAFKA_STORAGE_ERROR;
                else
                    out->LowWatermark = low;
            }
            rn_log_release(log);
        }
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_DeleteRecordsResponse_encode, &resp);
}

/*
 * A TransactionalId is the transaction coordinator's (src/txn/). Idempotent
 * producers: KIP-360: a producer that sends its current id and epoch gets
 * the epoch bumped (a new id when the epoch would overflow), so it can reset
 * its sequences after an abortable error without losing its identity.
 */
static void init_producer_id_fail(void *resp, int16_t err) {
    rn_InitProducerIdResponse_t *r = resp;
    r->ErrorCode = err;
    r->ProducerId = -1;
    r->ProducerEpoch = -1;
}

void rn_h_init_producer_id(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_InitProducerIdRequest_t rq;
    rn_InitProducerIdRequest_init(&rq);
    rn_err_t rc = rn_InitProducerIdRequest_decode(body, h->api_version, &req->arena, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_InitProducerIdResponse_t *resp = rn_arena_calloc(&req->arena, 1, sizeof(*resp));
    if (!resp) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    rn_InitProducerIdResponse_init(resp);
    resp->ProducerId = -1;
    resp->ProducerEpoch = -1;
    rn_durable_t d;
    rn_durable_init(&d);
    if (rq.TransactionalId.len >= 0 && !b->txn_coordinator) {
        resp->ErrorCode = RN_ERR_COORDINATOR_NOT_AVAILABLE;
    } else if (rq.TransactionalId.len >= 0) {
        resp->ErrorCode = rn_txn_init_producer_id(b, rq.TransactionalId, rq.TransactionTimeoutMs, rq.ProducerId,
                                                  rq.ProducerEpoch, &resp->ProducerId, &resp->ProducerEpoch, &d);
        if (resp->ErrorCode == RN_ERR_PRODUCER_FENCED && h->api_version < 4)
            resp->ErrorCode = RN_ERR_INVALID_PRODUCER_EPOCH; /* PRODUCER_FENCED is v4+ */
    } else if (rq.ProducerId >= 0 && rq.ProducerEpoch >= 0 && rq.ProducerEpoch < INT16_MAX - 1) {
        resp->ProducerId = rq.ProducerId;
        resp->ProducerEpoch = (int16_t)(rq.ProducerEpoch + 1);
    } else {
        int64_t id = rn_broker_alloc_producer_id(b);
        if (id < 0) {
            resp->ErrorCode = RN_ERR_KAFKA_STORAGE_ERROR;
        } else {
            resp->ProducerId = id;
            resp->ProducerEpoch = 0;
        }
    }
    /* A transactional id's new epoch is answered once its record is durable. */
    rn_broker_respond_replicated(b, req, h, &d, RN_TXN_SYNC_TIMEOUT_MS, (rn_encode_fn)rn_InitProducerIdResponse_encode,
                                 resp, init_producer_id_fail, RN_ERR_COORDINATOR_NOT_AVAILABLE);
}
