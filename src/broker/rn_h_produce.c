/*
 * rn_h_produce.c — Produce: validate record batches, append them, answer
 * once they are durable.
 *
 * Per partition: find (or auto-create) the topic; legacy message sets (magic
 * 0/1, Produce v0-v2 only) are converted to v2 batches; v2 batches are
 * validated (CRC, sizes, codec; record by record on compacted topics, whose
 * records need keys) and appended exactly as received — never recompressed.
 * The log rewrites offsets in place, so the request frame (a private buffer of
 * this request, see rn_net.h) is appended without a copy.
 *
 * acks=0 gets no response (an error closes the connection, as Kafka does, so
 * the client notices). acks=1 waits for the highest sync ticket of the
 * request: durable mode answers after the group commit that covers it, lazy
 * mode at once. A wait past TimeoutMs answers REQUEST_TIMED_OUT.
 *
 * Only the partition's leader appends (NOT_LEADER_OR_FOLLOWER elsewhere);
 * acks=all is refused with NOT_ENOUGH_REPLICAS while the ISR is below
 * min.insync.replicas, and answered once the high watermark — durable on
 * every ISR member — passes the batch (NOT_ENOUGH_REPLICAS_AFTER_APPEND if
 * the ISR shrinks below the minimum meanwhile). A transactional producer's
 * batches are checked with its coordinator when that is this node; elsewhere
 * the log's producer state fences older epochs.
 */
#include <stdio.h>
#include <string.h>

#include "rn_batch.h"
#include "rn_broker.h"
#include "rn_clock.h"
#include "rn_cluster.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"
#include "rn_txn.h"

#define RN_PRODUCE_MAX_DECOMPRESSED ((size_t)256 << 20)

/* acks=all on a replicated partition: answered once the high watermark passes `target`. */
typedef struct {
    rn_log_t *log; /* retained */
    int64_t target;
    rn_ProduceResponse_PartitionProduceResponse_t *pr;
} hw_wait_t;

typedef struct {
    rn_wait_t w; /* first: the wait is the context */
    rn_req_t *req;
    rn_req_header_t h;
    rn_ProduceResponse_t resp;
    hw_wait_t *hw; /* acks=all */
    int32_t nhw;
} produce_ctx_t;

static void release_hw(produce_ctx_t *pc) {
    for (int32_t i = 0; i < pc->nhw; i++) rn_log_release(pc->hw[i].log);
    pc->nhw = 0;
}

/* Every acks=all partition replicated? Those whose ISR fell below
 * min.insync.replicas meanwhile fail with NOT_ENOUGH_REPLICAS_AFTER_APPEND. */
static bool hw_reached(rn_broker_t *b, produce_ctx_t *pc) {
    bool all = true;
    for (int32_t i = 0; i < pc->nhw; i++) {
        hw_wait_t *hw = &pc->hw[i];
        if (hw->pr->ErrorCode || rn_log_high_watermark(hw->log) >= hw->target) continue;
        if (rn_replica_mgr_check_acks_all(rn_cluster_replicas(b), hw->log) != RN_OK) {
            hw->pr->ErrorCode = RN_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
            continue;
        }
        all = false;
    }
    return all;
}

static void produce_finish(rn_broker_t *b, produce_ctx_t *pc) {
    release_hw(pc);
    rn_broker_respond(b, pc->req, &pc->h, (rn_encode_fn)rn_ProduceResponse_encode, &pc->resp);
}

static void produce_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    produce_ctx_t *pc = (produce_ctx_t *)w;
    if (!timed_out && !err && !hw_reached(b, pc)) return; /* stay parked */
    rn_broker_unpark(w->ctx, w);
    if (timed_out || err) {
        for (int32_t i = 0; i < pc->resp.Responses_count; i++) {
            rn_ProduceResponse_TopicProduceResponse_t *t = &pc->resp.Responses[i];
            for (int32_t j = 0; j < t->PartitionResponses_count; j++) {
                rn_ProduceResponse_PartitionProduceResponse_t *p = &t->PartitionResponses[j];
                if (p->ErrorCode) continue;
                p->ErrorCode = timed_out ? RN_ERR_REQUEST_TIMED_OUT : RN_ERR_KAFKA_STORAGE_ERROR;
                p->BaseOffset = -1;
            }
        }
    }
    produce_finish(b, pc);
}

static bool has_transactional_batch(const uint8_t *data, size_t len) {
    for (size_t pos = 0; pos + RN_BATCH_HEADER_SIZE <= len;) {
        rn_batch_header_t bh;
        rn_batch_header_decode(data + pos, &bh);
        if (rn_batch_is_transactional(&bh)) return true;
        pos += rn_batch_total_size(&bh);
    }
    return false;
}

/* Append one partition's records; fills the partition response, returns the sync ticket. */
static uint64_t produce_partition(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_str_t txn_id,
                                  rn_str_t topic, const rn_ProduceRequest_PartitionProduceData_t *pd,
                                  rn_ProduceResponse_PartitionProduceResponse_t *pr, bool *appended,
                                  int16_t acks, produce_ctx_t *pc) {
    rn_arena_t *a = &req->arena;
    pr->Index = pd->Index;
    pr->BaseOffset = -1;
    pr->LogAppendTimeMs = -1;
    pr->LogStartOffset = -1;

    pthread_rwlock_rdlock(&b->topics_lock);
    rn_topic_t *t = rn_broker_topic_locked(b, topic.ptr, (size_t)topic.len);
    if (!t) {
        pthread_rwlock_unlock(&b->topics_lock);
        rn_err_t rc = rn_broker_auto_create(b, topic.ptr, (size_t)topic.len);
        if (rc) {
            pr->ErrorCode = rn_err_wire(rc);
            return 0;
        }
        pthread_rwlock_rdlock(&b->topics_lock);
        t = rn_broker_topic_locked(b, topic.ptr, (size_t)topic.len);
    }
    if (!t || pd->Index < 0 || pd->Index >= t->partition_count || !t->partitions[pd->Index]) {
        pthread_rwlock_unlock(&b->topics_lock);
        pr->ErrorCode = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return 0;
    }
    rn_partition_t *p = t->partitions[pd->Index];
    if (!rn_partition_led_here(b, p)) {
        pthread_rwlock_unlock(&b->topics_lock);
        pr->ErrorCode = RN_ERR_NOT_LEADER_OR_FOLLOWER;
        return 0;
    }
    rn_log_t *log = p->log;
    rn_log_retain(log);
    int32_t epoch = p->leader_epoch;
    rn_batch_validate_opts_t vo = {
        .max_batch_bytes = (size_t)(t->max_message_bytes > 0 ? t->max_message_bytes : 0),
        .max_decompressed_bytes = RN_PRODUCE_MAX_DECOMPRESSED,
        .max_records = INT32_MAX,
        .allow_control = false,
        .require_keys = t->compacted,
        .full_validation = true, /* records are checked (decompressed) so no consumer ever gets garbage */
    };
    bool internal = t->internal;
    rn_topic_retain(t);
    pthread_rwlock_unlock(&b->topics_lock);

    uint64_t ticket = 0;
    const rn_records_t *rec = &pd->Records;
    uint8_t *data = (uint8_t *)rec->ptr; /* the request frame is this request's own buffer */
    size_t len = rec->len > 0 ? (size_t)rec->len : 0;
    rn_buf_t converted;
    rn_buf_init(&converted, (size_t)b->cfg.socket_request_max_bytes * 2);
    rn_err_t rc = RN_OK;
    int magic = rn_records_magic(data, len);
    if (internal) {
        rc = RN_ERR_INVALID_REQUEST;
        pr->ErrorMessage = RN_STR_LIT("Internal topics cannot be written by clients");
    } else if (len == 0 || magic < 0) {
        rc = RN_ERR_CORRUPT_MESSAGE;
        pr->ErrorMessage = RN_STR_LIT("Empty or truncated record data");
    } else if (magic < 2) {
        if (h->api_version >= 3) {
            rc = RN_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
            pr->ErrorMessage = RN_STR_LIT("Produce v3+ requires record batches (magic 2)");
        } else {
            rc = rn_msgset_to_v2(data, len, &converted, &vo, a);
            if (!rc && rn_buf_err(&converted)) rc = RN_ERR_MESSAGE_TOO_LARGE;
            data = converted.data;
            len = converted.len;
        }
    } else if (magic > 2) {
        rc = RN_ERR_CORRUPT_MESSAGE;
        pr->ErrorMessage = RN_STR_LIT("Unknown record format (magic > 2)");
    }
    int32_t nbatches = 0;
    int64_t nrecords = 0;
    if (!rc) rc = rn_batch_validate_set(data, len, &vo, a, &nbatches, &nrecords);
    if (!rc && acks == -1) rc = rn_replica_mgr_check_acks_all(rn_cluster_replicas(b), log);
    if (!rc && txn_id.len >= 0) {
        /* Where this node coordinates the transaction, the partition must be in it. */
        rn_batch_header_t bh;
        rn_batch_header_decode(data, &bh);
        rc = rn_txn_check_produce(b, txn_id, bh.producer_id, bh.producer_epoch, topic, pd->Index);
    } else if (!rc && has_transactional_batch(data, len)) {
        /* Only a transactional producer, under its coordinator, may open a
         * transaction: a stray one would hold the last stable offset forever. */
        rc = RN_ERR_INVALID_RECORD;
        pr->ErrorMessage = RN_STR_LIT("Transactional batches need a TransactionalId");
    }
    if (!rc) {
        rn_append_opts_t ao = {.leader_epoch = epoch, .now_ms = rn_clock_wall_ms(), .is_internal = false};
        rn_append_result_t ar;
        rc = rn_log_append(log, data, len, &ao, &ar);
        if (!rc) {
            pr->BaseOffset = ar.base_offset;
            pr->LogAppendTimeMs = ar.log_append_time;
            pr->LogStartOffset = ar.log_start_offset;
            ticket = ar.sync_ticket;
            *appended = true; /* wake followers' parked fetches now, not after our sync */
            if (acks == -1 && pc->hw) { /* the high watermark says when (it implies our sync) */
                ticket = 0;
                rn_log_retain(log);
                pc->hw[pc->nhw++] = (hw_wait_t){log, ar.last_offset + 1, pr};
            }
            if (!ar.duplicate) {
                atomic_fetch_add(&b->stats.messages_in, (uint64_t)nrecords);
                atomic_fetch_add_explicit(&t->messages_in, (uint64_t)nrecords, memory_order_relaxed);
                atomic_fetch_add_explicit(&t->bytes_in, len, memory_order_relaxed);
            }
        }
    }
    if (rc) {
        if (rc == RN_ERR_NOSPACE) {
            pr->ErrorMessage = RN_STR_LIT("Log directory is full; retry after space is freed");
            rc = RN_ERR_KAFKA_STORAGE_ERROR;
        }
        if (rc < 0) {
            RN_WARN("broker", "produce to %.*s-%d failed: %s", topic.len, topic.ptr, pd->Index, rn_err_name(rc));
            rc = rc == RN_ERR_LIMIT ? RN_ERR_MESSAGE_TOO_LARGE : RN_ERR_UNKNOWN_SERVER_ERROR;
        }
        pr->ErrorCode = (int16_t)rc;
        if (rc == RN_ERR_CORRUPT_MESSAGE || rc == RN_ERR_INVALID_RECORD)
            RN_DEBUG("broker", "produce to %.*s-%d rejected: %s", topic.len, topic.ptr, pd->Index, rn_err_name(rc));
    }
    rn_buf_free(&converted);
    rn_log_release(log);
    rn_topic_release(t);
    return ticket;
}

void rn_h_produce(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_ProduceRequest_t rq;
    rn_ProduceRequest_init(&rq);
    rn_err_t rc = rn_ProduceRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    produce_ctx_t *pc = rn_arena_alloc(a, sizeof(*pc));
    if (!pc) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    pc->req = req;
    pc->h = *h;
    rn_ProduceResponse_init(&pc->resp);
    int16_t acks = rq.Acks;
    bool bad_acks = acks != 0 && acks != 1 && acks != -1;
    bool transactional = rq.TransactionalId.len >= 0;
    pc->resp.Responses_count = rq.TopicData_count > 0 ? rq.TopicData_count : 0;
    pc->resp.Responses = rn_arena_calloc(a, (size_t)pc->resp.Responses_count + 1, sizeof(*pc->resp.Responses));
    if (!pc->resp.Responses) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    uint64_t ticket = 0;
    bool appended = false, any_error = false;
    if (acks == -1) {
        size_t nparts = 0;
        for (int32_t i = 0; i < pc->resp.Responses_count; i++)
            nparts += rq.TopicData[i].PartitionData_count > 0 ? (size_t)rq.TopicData[i].PartitionData_count : 0;
        pc->hw = rn_arena_calloc(a, nparts + 1, sizeof(*pc->hw));
        if (!pc->hw) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
    }
    for (int32_t i = 0; i < pc->resp.Responses_count; i++) {
        const rn_ProduceRequest_TopicProduceData_t *td = &rq.TopicData[i];
        rn_ProduceResponse_TopicProduceResponse_t *tr = &pc->resp.Responses[i];
        rn_ProduceResponse_TopicProduceResponse_init(tr);
        tr->Name = td->Name;
        int32_t np = td->PartitionData_count > 0 ? td->PartitionData_count : 0;
        tr->PartitionResponses = rn_arena_calloc(a, (size_t)np + 1, sizeof(*tr->PartitionResponses));
        if (!tr->PartitionResponses) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        tr->PartitionResponses_count = np;
        for (int32_t j = 0; j < np; j++) {
            rn_ProduceResponse_PartitionProduceResponse_t *pr = &tr->PartitionResponses[j];
            rn_ProduceResponse_PartitionProduceResponse_init(pr);
            if (bad_acks || (transactional && rq.TransactionalId.len == 0) || td->Name.len <= 0) {
                pr->Index = td->PartitionData[j].Index;
                pr->BaseOffset = -1;
                pr->ErrorCode = bad_acks ? RN_ERR_INVALID_REQUIRED_ACKS
                                : transactional ? RN_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                                                : RN_ERR_INVALID_TOPIC_EXCEPTION;
            } else {
                uint64_t t = produce_partition(b, req, h, rq.TransactionalId, td->Name, &td->PartitionData[j], pr,
                                               &appended, acks, pc);
                if (t > ticket) ticket = t;
            }
            if (pr->ErrorCode) {
                any_error = true;
                if (h->api_key >= 0) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
            }
        }
    }
    if (appended) rn_broker_wake_all(b); /* followers' fetches, and lazy mode's consumers */
    if (acks == 0) {
        release_hw(pc);
        rn_histo_observe_ns(&b->stats.latency[RN_API_PRODUCE], rn_clock_mono_ns() - req->received_ns);
        if (any_error)
            rn_req_close(req, "acks=0 produce failed; closing so the client refreshes its metadata");
        else
            rn_req_no_response(req);
        return;
    }
    if (ticket && rn_logdir_synced_ticket(b->logdir) < ticket && !rn_logdir_offline(b->logdir)) {
        rn_broker_loop_t *bl = rn_broker_loop_for(b, req->loop);
        pc->w.sync_ticket = ticket;
        pc->w.resume = produce_resume;
        rn_broker_park(bl, &pc->w, rq.TimeoutMs > 0 ? rq.TimeoutMs : -1);
        /* The flusher may have published the ticket between the check and the park. */
        if (rn_logdir_synced_ticket(b->logdir) >= ticket || rn_logdir_offline(b->logdir))
            produce_resume(b, &pc->w, false, rn_logdir_offline(b->logdir) ? RN_ERR_KAFKA_STORAGE_ERROR : RN_OK);
        return;
    }
    if (ticket && rn_logdir_offline(b->logdir)) {
        produce_resume(b, &pc->w, false, RN_ERR_KAFKA_STORAGE_ERROR);
        return;
    }
    if (pc->nhw > 0 && !hw_reached(b, pc)) { /* acks=all: until the ISR has it */
        pc->w.wants_data = true;
        pc->w.resume = produce_resume;
        rn_broker_park(rn_broker_loop_for(b, req->loop), &pc->w, rq.TimeoutMs > 0 ? rq.TimeoutMs : -1);
        produce_resume(b, &pc->w, false, RN_OK); /* the high watermark may have moved before the park */
        return;
    }
    produce_finish(b, pc);
}
