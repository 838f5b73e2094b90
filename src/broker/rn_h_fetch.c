/*
 * rn_h_fetch.c — Fetch: whole record batches from the log, zero-copy.
 *
 * Each partition's data is a file region of its segment (rn_log_read), put in
 * the response as a splice that the network layer sends with sendfile: the
 * bytes never enter user space. Old clients (Fetch v0-v3) get the batches
 * converted to message sets of magic 0 or 1, which does copy.
 *
 * Limits: PartitionMaxBytes per partition and MaxBytes per response (capped at
 * RN_FETCH_RESPONSE_MAX), except that the first batch found is always returned
 * whole (KIP-74) so a batch larger than the limits never stalls a consumer.
 * Visibility: read_uncommitted reads up to the high watermark,
 * read_committed up to the last stable offset, with the aborted transactions
 * in the range returned.
 *
 * Consumers fetch from the partition leader
 * (NOT_LEADER_OR_FOLLOWER elsewhere); a follower's fetch (ReplicaId >= 0) is
 * served by the replica manager: to the log end, with the divergence check,
 * and its fetch offset counted toward the high watermark. With
 * replica.selector.class set to the rack-aware selector (KIP-392), a leader
 * sends a consumer of another rack to an in-sync replica in its rack
 * (PreferredReadReplica) and followers serve such consumers up to their own
 * high watermark.
 *
 * Long poll: with fewer than MinBytes available the request parks on its loop
 * until an append or sync wakes it, or MaxWaitMs passes; then it answers with
 * whatever is there. Fetch sessions (KIP-227) are declined (SessionId 0): every
 * request is a full fetch, which the protocol allows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rn_batch.h"
#include "rn_broker.h"
#include "rn_clock.h"
#include "rn_cluster.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"

#define RN_FETCH_RESPONSE_MAX (55 << 20)
#define RN_FETCH_MAX_DECOMPRESSED ((size_t)256 << 20)
#define RN_FETCH_ABORTED_MAX 4096 /* aborted transactions listed per partition */

typedef struct {
    rn_wait_t w;
    rn_req_t *req;
    rn_req_header_t h;
    rn_FetchRequest_t rq;
    rn_FetchResponse_t resp;
    rn_fileref_t **files; /* malloc: one per response partition, released after sending */
    size_t nfiles;
    int32_t total_bytes;
    bool partition_error; /* some partition has an error: answer now, as Kafka does */
} fetch_ctx_t;

static void release_files(fetch_ctx_t *fc) {
    for (size_t i = 0; i < fc->nfiles; i++) {
        rn_fileref_release(fc->files[i]);
        fc->files[i] = NULL;
    }
    fc->nfiles = 0;
}

/* Magic-0/1 copy of a file region for Fetch v0-v3. */
static rn_err_t down_convert(fetch_ctx_t *fc, rn_FetchResponse_PartitionData_t *pd, const rn_log_read_t *rd) {
    rn_arena_t *a = &fc->req->arena;
    uint8_t *raw = rn_arena_alloc(a, (size_t)rd->len);
    if (!raw) return RN_ERR_LIMIT;
    ssize_t n = pread(rd->file->fd, raw, (size_t)rd->len, rd->file_pos);
    if (n != rd->len) return RN_ERR_KAFKA_STORAGE_ERROR;
    rn_buf_t out;
    rn_buf_init(&out, RN_FETCH_RESPONSE_MAX);
    int8_t magic = fc->h.api_version <= 1 ? 0 : 1;
    rn_err_t rc = rn_batches_to_msgset(raw, (size_t)rd->len, magic, &out, RN_FETCH_MAX_DECOMPRESSED, a);
    if (!rc && rn_buf_err(&out)) rc = rn_buf_err(&out);
    if (!rc) {
        uint8_t *copy = rn_arena_alloc(a, out.len ? out.len : 1);
        if (!copy) {
            rc = RN_ERR_LIMIT;
        } else {
            memcpy(copy, out.data, out.len);
            pd->Records = (rn_records_t){copy, (int32_t)out.len, NULL, 0};
        }
    }
    rn_buf_free(&out);
    return rc;
}

/* read_committed: the aborted transactions overlapping the data returned, so
 * the client can drop their records (it keeps them apart by producer id and
 * offset range; a superset is harmless). */
static rn_err_t list_aborted(fetch_ctx_t *fc, rn_FetchResponse_PartitionData_t *pd, rn_log_t *log, int64_t from,
                             int64_t upper) {
    rn_aborted_txn_t small[16];
    rn_aborted_txn_t *tx = small;
    int32_t n = rn_log_aborted_txns(log, from, upper, tx, 16);
    if (n == 16) {
        tx = malloc(RN_FETCH_ABORTED_MAX * sizeof(*tx));
        if (!tx) return RN_ERR_NOMEM;
        n = rn_log_aborted_txns(log, from, upper, tx, RN_FETCH_ABORTED_MAX);
    }
    pd->AbortedTransactions = n ? rn_arena_calloc(&fc->req->arena, (size_t)n, sizeof(*pd->AbortedTransactions)) : NULL;
    if (n && !pd->AbortedTransactions) {
        if (tx != small) free(tx);
        return RN_ERR_LIMIT;
    }
    for (int32_t i = 0; i < n; i++) {
        rn_FetchResponse_AbortedTransaction_init(&pd->AbortedTransactions[i]);
        pd->AbortedTransactions[i].ProducerId = tx[i].producer_id;
        pd->AbortedTransactions[i].FirstOffset = tx[i].first_offset;
    }
    pd->AbortedTransactions_count = n;
    if (tx != small) free(tx);
    return RN_OK;
}

/* Builds the response from the logs as they are now. Returns bytes of data. */
static int32_t fetch_build(rn_broker_t *b, fetch_ctx_t *fc) {
    rn_arena_t *a = &fc->req->arena;
    const rn_FetchRequest_t *rq = &fc->rq;
    rn_FetchResponse_t *resp = &fc->resp;
    release_files(fc);
    rn_FetchResponse_init(resp);
    resp->SessionId = 0;
    if (rq->SessionId != 0) {
        resp->ErrorCode = RN_ERR_FETCH_SESSION_ID_NOT_FOUND;
        resp->Responses_count = 0;
        return 0;
    }
    if (rq->SessionEpoch > 0) {
        resp->ErrorCode = RN_ERR_INVALID_FETCH_SESSION_EPOCH;
        resp->Responses_count = 0;
        return 0;
    }
    int64_t budget = fc->h.api_version >= 3 ? rq->MaxBytes : INT32_MAX;
    if (budget > RN_FETCH_RESPONSE_MAX) budget = RN_FETCH_RESPONSE_MAX;
    if (budget < 0) budget = 0;
    int32_t total = 0;
    bool committed = rq->IsolationLevel == 1;
    rn_replica_mgr_t *replicas = rn_cluster_replicas(b);
    bool replica_fetch = rq->ReplicaId >= 0;
    int32_t nt = rq->Topics_count > 0 ? rq->Topics_count : 0;
    resp->Responses = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp->Responses));
    if (!resp->Responses) {
        resp->ErrorCode = RN_ERR_UNKNOWN_SERVER_ERROR;
        return 0;
    }
    resp->Responses_count = nt;
    pthread_rwlock_rdlock(&b->topics_lock);
    for (int32_t i = 0; i < nt; i++) {
        const rn_FetchRequest_FetchTopic_t *ft = &rq->Topics[i];
        rn_FetchResponse_FetchableTopicResponse_t *tr = &resp->Responses[i];
        rn_FetchResponse_FetchableTopicResponse_init(tr);
        tr->Topic = ft->Topic;
        memcpy(tr->TopicId, ft->TopicId, 16);
        rn_topic_t *t = fc->h.api_version >= 13 ? rn_broker_topic_by_id_locked(b, ft->TopicId)
                                                 : (ft->Topic.len > 0 ? rn_broker_topic_locked(b, ft->Topic.ptr, (size_t)ft->Topic.len) : NULL);
        int32_t np = ft->Partitions_count > 0 ? ft->Partitions_count : 0;
        tr->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*tr->Partitions));
        if (!tr->Partitions) {
            tr->Partitions_count = 0;
            continue;
        }
        tr->Partitions_count = np;
        for (int32_t j = 0; j < np; j++) {
            const rn_FetchRequest_FetchPartition_t *fp = &ft->Partitions[j];
            rn_FetchResponse_PartitionData_t *pd = &tr->Partitions[j];
            rn_FetchResponse_PartitionData_init(pd);
            pd->PartitionIndex = fp->Partition;
            pd->HighWatermark = -1;
            pd->Records = (rn_records_t){NULL, 0, NULL, 0};
            rn_partition_t *p = t && fp->Partition >= 0 && fp->Partition < t->partition_count ? t->partitions[fp->Partition] : NULL;
            if (!p) {
                pd->ErrorCode = fc->h.api_version >= 13 && !t ? RN_ERR_UNKNOWN_TOPIC_ID : RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (replica_fetch) { /* a follower: to the log end, its progress noted (src/replication) */
                int32_t max = fp->PartitionMaxBytes;
                if (max > budget - total) max = (int32_t)(budget - total);
                rn_repl_served_t sv;
                if (!p->log) {
                    pd->ErrorCode = RN_ERR_NOT_LEADER_OR_FOLLOWER;
                    continue;
                }
                rn_replica_mgr_serve(replicas, p->log, rq->ReplicaId, fp->CurrentLeaderEpoch, fp->FetchOffset,
                                     fp->LastFetchedEpoch, max < 0 ? 0 : max, total == 0, rn_clock_mono_ms(), &sv);
                rn_repl_served_to_response(&sv, pd);
                if (sv.read.file) {
                    fc->files[fc->nfiles++] = sv.read.file;
                    total += sv.read.len;
                }
                continue;
            }
            bool follower_read = false; /* KIP-392: a consumer sent here by the leader (Fetch v11+) */
            if (!rn_partition_led_here(b, p)) {
                follower_read = p->log && fc->h.api_version >= 11 && rn_cluster_serves_followers_fetch(b);
                if (!follower_read) {
                    pd->ErrorCode = RN_ERR_NOT_LEADER_OR_FOLLOWER;
                    continue;
                }
            } else if (fc->h.api_version >= 11) {
                int32_t near = rn_cluster_preferred_read_replica(b, p, rq->RackId);
                if (near >= 0) { /* no data: the client fetches from `near` from now on */
                    pd->PreferredReadReplica = near;
                    pd->HighWatermark = rn_log_high_watermark(p->log);
                    pd->LastStableOffset = rn_log_last_stable_offset(p->log);
                    pd->LogStartOffset = rn_log_start_offset(p->log);
                    continue;
                }
            }
            if (fp->CurrentLeaderEpoch >= 0 && fp->CurrentLeaderEpoch != p->leader_epoch) {
                pd->ErrorCode = fp->CurrentLeaderEpoch > p->leader_epoch ? RN_ERR_UNKNOWN_LEADER_EPOCH : RN_ERR_FENCED_LEADER_EPOCH;
                continue;
            }
            rn_log_t *log = p->log;
            int64_t hw = rn_log_high_watermark(log);
            int64_t lso = rn_log_last_stable_offset(log);
            pd->HighWatermark = hw;
            pd->LastStableOffset = lso;
            pd->LogStartOffset = rn_log_start_offset(log);
            if (fc->h.api_version >= 4) pd->AbortedTransactions_count = committed ? 0 : -1; /* uncommitted: null */
            pd->PreferredReadReplica = -1;
            int64_t upper = committed ? lso : hw;
            int32_t max = fp->PartitionMaxBytes;
            if (max > budget - total) max = (int32_t)(budget - total);
            if (max < 0) max = 0;
            rn_log_read_t rd = {0};
            rn_err_t rc = rn_log_read(log, fp->FetchOffset, max, total == 0, upper, &rd);
            if (rc) {
                pd->ErrorCode = rc > 0 ? (int16_t)rc : RN_ERR_KAFKA_STORAGE_ERROR;
                continue;
            }
            if (rd.len <= 0 || !rd.file) {
                if (rd.file) rn_fileref_release(rd.file);
                continue;
            }
            if (committed && fc->h.api_version >= 4) {
                rc = list_aborted(fc, pd, log, fp->FetchOffset, upper);
                if (rc) {
                    rn_fileref_release(rd.file);
                    pd->ErrorCode = RN_ERR_UNKNOWN_SERVER_ERROR;
                    continue;
                }
            }
            if (fc->h.api_version <= 3) {
                rc = down_convert(fc, pd, &rd);
                rn_fileref_release(rd.file);
                if (rc) {
                    pd->ErrorCode = rc > 0 ? (int16_t)rc : RN_ERR_UNKNOWN_SERVER_ERROR;
                    pd->Records = (rn_records_t){NULL, 0, NULL, 0};
                    continue;
                }
                total += pd->Records.len;
            } else {
                pd->Records = (rn_records_t){NULL, rd.len, rd.file, rd.file_pos};
                fc->files[fc->nfiles++] = rd.file;
                total += rd.len;
            }
        }
    }
    pthread_rwlock_unlock(&b->topics_lock);
    fc->total_bytes = total;
    fc->partition_error = false;
    for (int32_t i = 0; i < resp->Responses_count && !fc->partition_error; i++)
        for (int32_t j = 0; j < resp->Responses[i].Partitions_count; j++)
            if (resp->Responses[i].Partitions[j].ErrorCode) {
                fc->partition_error = true;
                break;
            }
    return total;
}

/* Responding frees the request's arena (fc included); the file references
 * live in a malloc'd array so they can be released after the response took
 * its own references. */
static void count_bytes_out(rn_broker_t *b, const fetch_ctx_t *fc) {
    pthread_rwlock_rdlock(&b->topics_lock);
    for (int32_t i = 0; i < fc->resp.Responses_count; i++) {
        const rn_FetchResponse_FetchableTopicResponse_t *tr = &fc->resp.Responses[i];
        uint64_t bytes = 0;
        for (int32_t j = 0; j < tr->Partitions_count; j++)
            if (tr->Partitions[j].Records.len > 0) bytes += (uint64_t)tr->Partitions[j].Records.len;
        if (!bytes || tr->Topic.len <= 0) continue;
        rn_topic_t *t = rn_broker_topic_locked(b, tr->Topic.ptr, (size_t)tr->Topic.len);
        if (t) atomic_fetch_add_explicit(&t->bytes_out, bytes, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&b->topics_lock);
}

static void fetch_send(rn_broker_t *b, fetch_ctx_t *fc) {
    count_bytes_out(b, fc);
    size_t n = fc->nfiles;
    rn_fileref_t **files = fc->files;
    rn_broker_respond(b, fc->req, &fc->h, (rn_encode_fn)rn_FetchResponse_encode, &fc->resp);
    for (size_t i = 0; i < n; i++) rn_fileref_release(files[i]);
    free(files);
}

static void fetch_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    fetch_ctx_t *fc = (fetch_ctx_t *)w;
    int32_t got = fetch_build(b, fc);
    if (!timed_out && !err && got < fc->rq.MinBytes && !fc->partition_error) {
        release_files(fc);
        return; /* stay parked */
    }
    rn_broker_unpark(w->ctx, w);
    fetch_send(b, fc);
}

void rn_h_fetch(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    fetch_ctx_t *fc = rn_arena_alloc(a, sizeof(*fc));
    if (!fc) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    rn_FetchRequest_init(&fc->rq);
    rn_err_t rc = rn_FetchRequest_decode(body, h->api_version, a, &fc->rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    fc->req = req;
    fc->h = *h;
    size_t nparts = 0;
    for (int32_t i = 0; i < fc->rq.Topics_count; i++)
        nparts += fc->rq.Topics[i].Partitions_count > 0 ? (size_t)fc->rq.Topics[i].Partitions_count : 0;
    fc->files = calloc(nparts + 1, sizeof(*fc->files)); /* freed by fetch_send */
    if (!fc->files) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    int32_t got = fetch_build(b, fc);
    if (got >= fc->rq.MinBytes || fc->rq.MaxWaitMs <= 0 || fc->resp.ErrorCode || fc->partition_error ||
        atomic_load(&b->stopping)) {
        fetch_send(b, fc);
        return;
    }
    release_files(fc);
    fc->w.wants_data = true;
    fc->w.resume = fetch_resume;
    rn_broker_park(rn_broker_loop_for(b, req->loop), &fc->w, fc->rq.MaxWaitMs);
    /* Data may have arrived between the build and the park (a wake we missed). */
    fetch_resume(b, &fc->w, false, RN_OK);
}
