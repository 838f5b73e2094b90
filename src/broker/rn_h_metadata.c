/*
 * rn_h_metadata.c — ApiVersions, Metadata and DescribeCluster: what a client
 * asks first, to learn what this broker serves and where partitions live.
 */
#include <string.h>

#include "rn_broker.h"
#include "rn_cluster.h"
#include "rn_msg_gen.h"

#define RN_AUTHORIZED_OPS_OMITTED INT32_MIN

void rn_h_api_versions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_ApiVersionsRequest_t rq;
    rn_ApiVersionsRequest_init(&rq);
    rn_err_t rc = rn_ApiVersionsRequest_decode(body, h->api_version, &req->arena, &rq);
    rn_ApiVersionsResponse_t resp;
    rn_ApiVersionsResponse_init(&resp);
    /* KIP-511: a v3+ request whose body we cannot read still gets the list, with INVALID_REQUEST. */
    if (rc) resp.ErrorCode = RN_ERR_INVALID_REQUEST;
    size_t n = rn_handlers_count + rn_cluster_admin_handlers_count;
    rn_ApiVersionsResponse_ApiVersion_t *keys = rn_arena_calloc(&req->arena, n, sizeof(*keys));
    if (!keys) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const rn_handler_t *hd = i < rn_handlers_count ? &rn_handlers[i] : &rn_cluster_admin_handlers[i - rn_handlers_count];
        if (!rn_api_served_on(b, req, hd->api_key)) continue; /* a controller listener lists what it serves */
        rn_ApiVersionsResponse_ApiVersion_init(&keys[k]);
        keys[k].ApiKey = hd->api_key;
        keys[k].MinVersion = hd->min_version;
        keys[k].MaxVersion = hd->max_version;
        k++;
    }
    resp.ApiKeys = keys;
    resp.ApiKeys_count = (int32_t)k;
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_ApiVersionsResponse_encode, &resp);
}

static int32_t *copy_ids(rn_arena_t *a, const int32_t *ids, int32_t n) {
    int32_t *v = rn_arena_alloc(a, (size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (v && n > 0) memcpy(v, ids, (size_t)n * sizeof(int32_t));
    return v;
}

static int32_t *one_node(rn_arena_t *a, int32_t id) {
    int32_t *v = rn_arena_alloc(a, sizeof(int32_t));
    if (v) *v = id;
    return v;
}

/* Fill one topic entry (topics_lock held shared). */
static void fill_topic(rn_broker_t *b, rn_arena_t *a, rn_MetadataResponse_MetadataResponseTopic_t *rt, rn_topic_t *t,
                       bool include_ops) {
    rt->ErrorCode = 0;
    rt->Name = rn_str_dup_arena(a, t->name);
    memcpy(rt->TopicId, t->id, 16);
    rt->IsInternal = t->internal;
    rt->TopicAuthorizedOperations = include_ops ? 0x0ff8 : RN_AUTHORIZED_OPS_OMITTED;
    rt->Partitions = rn_arena_calloc(a, (size_t)t->partition_count, sizeof(*rt->Partitions));
    if (!rt->Partitions) {
        rt->ErrorCode = RN_ERR_UNKNOWN_SERVER_ERROR;
        rt->Partitions_count = 0;
        return;
    }
    rt->Partitions_count = t->partition_count;
    for (int32_t i = 0; i < t->partition_count; i++) {
        rn_MetadataResponse_MetadataResponsePartition_t *rp = &rt->Partitions[i];
        rn_MetadataResponse_MetadataResponsePartition_init(rp);
        rn_partition_t *p = t->partitions[i];
        rp->PartitionIndex = i;
        bool local_offline = p && p->log && p->leader_id == b->cfg.node_id && rn_logdir_offline(b->logdir);
        if (!p || p->leader_id < 0 || local_offline) {
            rp->ErrorCode = local_offline ? RN_ERR_KAFKA_STORAGE_ERROR : RN_ERR_LEADER_NOT_AVAILABLE;
            rp->LeaderId = -1;
        } else {
            rp->LeaderId = p->leader_id;
            rp->LeaderEpoch = p->leader_epoch;
        }
        rp->ReplicaNodes = p ? copy_ids(a, p->replicas, p->nreplicas) : NULL;
        rp->ReplicaNodes_count = rp->ReplicaNodes ? p->nreplicas : 0;
        rp->IsrNodes = p ? copy_ids(a, p->isr, p->nisr) : NULL;
        rp->IsrNodes_count = rp->IsrNodes ? p->nisr : 0;
        rp->OfflineReplicas_count = 0;
        if (rp->ErrorCode == RN_ERR_KAFKA_STORAGE_ERROR) {
            rp->OfflineReplicas = one_node(a, b->cfg.node_id);
            rp->OfflineReplicas_count = rp->OfflineReplicas ? 1 : 0;
        }
    }
}

static bool uuid_zero(const uint8_t id[16]) {
    for (int i = 0; i < 16; i++)
        if (id[i]) return false;
    return true;
}

void rn_h_metadata(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_MetadataRequest_t rq;
    rn_MetadataRequest_init(&rq);
    rn_err_t rc = rn_MetadataRequest_decode(body, h->api_version, &req->arena, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_arena_t *a = &req->arena;
    rn_MetadataResponse_t resp;
    rn_MetadataResponse_init(&resp);
    resp.Brokers_count = rn_cluster_brokers(b, a, rn_broker_req_listener(b, req)->name, &resp.Brokers);
    resp.ControllerId = rn_cluster_controller_id(b);
    resp.ClusterId = rn_str_dup_arena(a, b->cluster_id);
    resp.ClusterAuthorizedOperations = rq.IncludeClusterAuthorizedOperations ? 0 : RN_AUTHORIZED_OPS_OMITTED;
    bool include_ops = rq.IncludeTopicAuthorizedOperations;

    /* v0: an empty list means all topics; v1+: null means all. */
    bool all = rq.Topics_count < 0 || (h->api_version == 0 && rq.Topics_count == 0);
    bool allow_auto = h->api_version < 4 ? true : rq.AllowAutoTopicCreation;

    if (!all && allow_auto && b->cfg.auto_create_topics_enable) {
        for (int32_t i = 0; i < rq.Topics_count; i++) {
            rn_str_t n = rq.Topics[i].Name;
            if (n.len <= 0) continue;
            pthread_rwlock_rdlock(&b->topics_lock);
            bool exists = rn_broker_topic_locked(b, n.ptr, (size_t)n.len) != NULL;
            pthread_rwlock_unlock(&b->topics_lock);
            if (!exists) (void)rn_broker_auto_create(b, n.ptr, (size_t)n.len);
        }
    }

    pthread_rwlock_rdlock(&b->topics_lock);
    if (all) {
        size_t n = b->topics.count, k = 0;
        resp.Topics = rn_arena_calloc(a, n ? n : 1, sizeof(*resp.Topics));
        if (resp.Topics) {
            size_t it = 0;
            void *v;
            while (rn_map_next(&b->topics, &it, NULL, &v) && k < n) {
                rn_MetadataResponse_MetadataResponseTopic_init(&resp.Topics[k]);
                fill_topic(b, a, &resp.Topics[k], v, include_ops);
                k++;
            }
        }
        resp.Topics_count = (int32_t)k;
    } else {
        resp.Topics = rn_arena_calloc(a, rq.Topics_count ? (size_t)rq.Topics_count : 1, sizeof(*resp.Topics));
        resp.Topics_count = resp.Topics ? rq.Topics_count : 0;
        for (int32_t i = 0; i < resp.Topics_count; i++) {
            rn_MetadataResponse_MetadataResponseTopic_t *rt = &resp.Topics[i];
            rn_MetadataResponse_MetadataResponseTopic_init(rt);
            rn_str_t n = rq.Topics[i].Name;
            rn_topic_t *t = NULL;
            if (n.len >= 0)
                t = rn_broker_topic_locked(b, n.ptr, (size_t)n.len);
            else if (!uuid_zero(rq.Topics[i].TopicId))
                t = rn_broker_topic_by_id_locked(b, rq.Topics[i].TopicId);
            if (t) {
                fill_topic(b, a, rt, t, include_ops);
                continue;
            }
            rt->Name = n;
            memcpy(rt->TopicId, rq.Topics[i].TopicId, 16);
            rt->TopicAuthorizedOperations = include_ops ? 0 : RN_AUTHORIZED_OPS_OMITTED;
            char msg[256];
            if (n.len < 0)
                rt->ErrorCode = RN_ERR_UNKNOWN_TOPIC_ID;
            else if (rn_topic_name_validate(n.ptr, (size_t)n.len, msg, sizeof(msg)))
                rt->ErrorCode = RN_ERR_INVALID_TOPIC_EXCEPTION;
            else if (allow_auto && b->cfg.auto_create_topics_enable)
                rt->ErrorCode = RN_ERR_LEADER_NOT_AVAILABLE; /* creation failed or raced: retry */
            else
                rt->ErrorCode = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            rt->Partitions_count = 0;
        }
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_MetadataResponse_encode, &resp);
    pthread_rwlock_unlock(&b->topics_lock);
}

void rn_h_describe_cluster(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_DescribeClusterRequest_t rq;
    rn_DescribeClusterRequest_init(&rq);
    rn_err_t rc = rn_DescribeClusterRequest_decode(body, h->api_version, &req->arena, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_arena_t *a = &req->arena;
    rn_DescribeClusterResponse_t resp;
    rn_DescribeClusterResponse_init(&resp);
    resp.EndpointType = rq.EndpointType;
    if (rq.EndpointType != 1) {
        resp.ErrorCode = RN_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp.ErrorMessage = RN_STR_LIT("Only brokers (endpoint type 1) are described");
    }
    resp.ClusterId = rn_str_dup_arena(a, b->cluster_id);
    resp.ControllerId = rn_cluster_controller_id(b);
    resp.ClusterAuthorizedOperations = rq.IncludeClusterAuthorizedOperations ? 0 : RN_AUTHORIZED_OPS_OMITTED;
    /* The unfenced brokers of the image, as Metadata lists them. */
    rn_MetadataResponse_MetadataResponseBroker_t *mb;
    int32_t n = rn_cluster_brokers(b, a, rn_broker_req_listener(b, req)->name, &mb);
    resp.Brokers = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp.Brokers));
    for (int32_t i = 0; resp.Brokers && mb && i < n; i++) {
        rn_DescribeClusterResponse_DescribeClusterBroker_init(&resp.Brokers[i]);
        resp.Brokers[i].BrokerId = mb[i].NodeId;
        resp.Brokers[i].Host = mb[i].Host;
        resp.Brokers[i].Port = mb[i].Port;
        resp.Brokers[i].Rack = mb[i].Rack;
    }
    resp.Brokers_count = resp.Brokers && mb ? n : 0;
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_DescribeClusterResponse_encode, &resp);
}
