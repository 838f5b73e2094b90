/*
 * rn_dispatch.c — from a request frame to its handler, and back.
 *
 * The header is decoded first; an API this broker does not serve, or a version
 * outside its range, is answered the way Kafka does: ApiVersions gets
 * UNSUPPORTED_VERSION with a v0 body listing what is served (KIP-511), anything
 * else closes the connection with a log line. A body that fails to decode
 * closes the connection too (Kafka's behaviour for malformed requests): there
 * is no safe way to answer a request whose fields could not be read.
 *
 * A broker that has not yet been unfenced holds client requests
 * (all but ApiVersions) until it is, for at most HOLD_MAX_MS: until then it is
 * in no Metadata answer, and a client that bootstrapped in that window would see
 * an empty cluster and back off for seconds. (Kafka's brokers do not even open
 * their listeners before.) Node-to-node APIs, and anything on a controller
 * listener, are never held. The held count is
 * bounded by the connections' in-flight limit.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rn_broker.h"
#include "rn_clock.h"
#include "rn_cluster.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"
#include "rn_quorum.h"
#include "rn_txn.h"

const rn_handler_t rn_handlers[] = {
    {RN_API_PRODUCE, 0, 9, rn_h_produce},
    {RN_API_FETCH, 0, 12, rn_h_fetch},
    {RN_API_LIST_OFFSETS, 0, 7, rn_h_list_offsets},
    {RN_API_METADATA, 0, 12, rn_h_metadata},
    {RN_API_API_VERSIONS, 0, 3, rn_h_api_versions},
    {RN_API_CREATE_TOPICS, 0, 7, rn_h_create_topics},
    {RN_API_DELETE_TOPICS, 0, 6, rn_h_delete_topics},
    {RN_API_DELETE_RECORDS, 0, 2, rn_h_delete_records},
    {RN_API_INIT_PRODUCER_ID, 0, 5, rn_h_init_producer_id},
    {RN_API_ADD_PARTITIONS_TO_TXN, 0, 4, rn_h_add_partitions_to_txn},
    {RN_API_ADD_OFFSETS_TO_TXN, 0, 4, rn_h_add_offsets_to_txn},
    {RN_API_END_TXN, 0, 4, rn_h_end_txn},
    {RN_API_TXN_OFFSET_COMMIT, 0, 4, rn_h_txn_offset_commit},
    {RN_API_DESCRIBE_TRANSACTIONS, 0, 0, rn_h_describe_transactions},
    {RN_API_LIST_TRANSACTIONS, 0, 1, rn_h_list_transactions},
    {RN_API_OFFSET_FOR_LEADER_EPOCH, 0, 4, rn_h_offset_for_leader_epoch},
    {RN_API_DESCRIBE_CONFIGS, 0, 4, rn_h_describe_configs},
    {RN_API_ALTER_CONFIGS, 0, 2, rn_h_alter_configs},
    {RN_API_CREATE_PARTITIONS, 0, 3, rn_h_create_partitions},
    {RN_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, rn_h_incremental_alter_configs},
    {RN_API_DESCRIBE_CLUSTER, 0, 1, rn_h_describe_cluster},
    {RN_API_FIND_COORDINATOR, 0, 4, rn_h_find_coordinator},
    {RN_API_JOIN_GROUP, 0, 9, rn_h_join_group},
    {RN_API_SYNC_GROUP, 0, 5, rn_h_sync_group},
    {RN_API_HEARTBEAT, 0, 4, rn_h_heartbeat},
    {RN_API_LEAVE_GROUP, 0, 5, rn_h_leave_group},
    {RN_API_OFFSET_COMMIT, 0, 8, rn_h_offset_commit},
    {RN_API_OFFSET_FETCH, 0, 8, rn_h_offset_fetch},
    {RN_API_LIST_GROUPS, 0, 4, rn_h_list_groups},
    {RN_API_DESCRIBE_GROUPS, 0, 5, rn_h_describe_groups},
    {RN_API_DELETE_GROUPS, 0, 2, rn_h_delete_groups},
    {RN_API_OFFSET_DELETE, 0, 0, rn_h_offset_delete},
};
const size_t rn_handlers_count = sizeof(rn_handlers) / sizeof(rn_handlers[0]);

/* The admin APIs the controller answers (advertised in ApiVersions) and then
 * the node-to-node ones (never advertised). */
static const rn_handler_t internal_handlers[] = {
    {RN_API_ELECT_LEADERS, 0, 2, rn_h_elect_leaders},
    {RN_API_ALTER_PARTITION_REASSIGNMENTS, 0, 0, rn_h_alter_partition_reassignments},
    {RN_API_LIST_PARTITION_REASSIGNMENTS, 0, 0, rn_h_list_partition_reassignments},
    {RN_API_DESCRIBE_QUORUM, 0, 2, rn_h_describe_quorum},
    {RN_API_ADD_RAFT_VOTER, 0, 0, rn_h_add_raft_voter},
    {RN_API_REMOVE_RAFT_VOTER, 0, 0, rn_h_remove_raft_voter},
    {RN_API_RUNNEL_RAFT, 0, 0, rn_h_runnel_raft},
    {RN_API_RUNNEL_QUORUM_JOIN, 0, 0, rn_h_runnel_quorum_join},
    {RN_API_RUNNEL_METADATA, 0, 0, rn_h_runnel_metadata},
    {RN_API_BROKER_REGISTRATION, 0, 4, rn_h_broker_registration},
    {RN_API_BROKER_HEARTBEAT, 0, 1, rn_h_broker_heartbeat},
    {RN_API_ALTER_PARTITION, 0, 3, rn_h_alter_partition},
    {RN_API_WRITE_TXN_MARKERS, 0, 1, rn_h_write_txn_markers},
};
const rn_handler_t *const rn_cluster_admin_handlers = internal_handlers;
const size_t rn_cluster_admin_handlers_count = 6;

/* Kafka's listener scopes (the schemas' "listeners"): a controller listener (the one
 * controller.listener.names names) exposes only what a KRaft controller serves — no
 * Produce, Fetch, Metadata or group APIs — plus this project's controller APIs (1000+). */
static const int16_t controller_apis[] = {
    RN_API_API_VERSIONS,     RN_API_CREATE_TOPICS,          RN_API_DELETE_TOPICS,
    RN_API_DESCRIBE_CONFIGS, RN_API_ALTER_CONFIGS,          RN_API_CREATE_PARTITIONS,
    RN_API_ELECT_LEADERS,    RN_API_INCREMENTAL_ALTER_CONFIGS, RN_API_ALTER_PARTITION_REASSIGNMENTS,
    RN_API_LIST_PARTITION_REASSIGNMENTS, RN_API_DESCRIBE_QUORUM, RN_API_ALTER_PARTITION,
    RN_API_DESCRIBE_CLUSTER, RN_API_BROKER_REGISTRATION, RN_API_BROKER_HEARTBEAT,
    RN_API_ADD_RAFT_VOTER,   RN_API_REMOVE_RAFT_VOTER,
};

static bool on_controller_listener(const rn_broker_t *b, const rn_req_t *req) {
    int ctl = b->cfg.controller_listener;
    return ctl >= 0 && rn_broker_req_listener(b, req) == &b->cfg.listeners[ctl];
}

bool rn_api_served_on(const rn_broker_t *b, const rn_req_t *req, int16_t api_key) {
    if (!on_controller_listener(b, req)) return true;
    if (api_key >= RN_API_RUNNEL_RAFT) return true;
    for (size_t i = 0; i < sizeof(controller_apis) / sizeof(controller_apis[0]); i++)
        if (controller_apis[i] == api_key) return true;
    return false;
}

const rn_handler_t *rn_handler_find(int16_t api_key) {
    for (size_t i = 0; i < rn_handlers_count; i++)
        if (rn_handlers[i].api_key == api_key) return &rn_handlers[i];
    for (size_t i = 0; i < sizeof(internal_handlers) / sizeof(internal_handlers[0]); i++)
        if (internal_handlers[i].api_key == api_key) return &internal_handlers[i];
    return NULL;
}

#define RN_RESPONSE_MAX_BYTES ((size_t)1 << 30)
#define HOLD_MAX_MS 5000

typedef struct {
    rn_wait_t w; /* first: resume() gets it */
    rn_req_t *req;
    rn_req_header_t h;
    const rn_handler_t *hd;
    rn_reader_t body;
} held_t;

static void held_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    held_t *hr = (held_t *)w;
    if (!timed_out && !err && !rn_cluster_ready(b) && !atomic_load(&b->stopping)) return;
    if (timed_out) RN_WARN("broker", "served a request held %d ms for this broker's unfencing", HOLD_MAX_MS);
    rn_broker_loop_t *bl = rn_broker_loop_for(b, hr->req->loop);
    rn_broker_unpark(bl, w);
    bl->nheld--;
    hr->hd->fn(b, hr->req, &hr->h, &hr->body);
}

/* Whether the request waits for the broker's first unfencing (see the top). While any
 * is held on this loop, the ones after it are too: a connection's requests keep their
 * order (waits resume in the order they were parked). */
static bool hold(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, const rn_handler_t *hd, rn_reader_t *body) {
    bool client_api = hd >= rn_handlers && hd < rn_handlers + rn_handlers_count && !on_controller_listener(b, req);
    rn_broker_loop_t *bl = rn_broker_loop_for(b, req->loop);
    if ((rn_cluster_ready(b) && bl->nheld == 0) || !client_api || h->api_key == RN_API_API_VERSIONS) return false;
    held_t *hr = rn_arena_calloc(&req->arena, 1, sizeof(*hr));
    if (!hr) return false;
    hr->req = req;
    hr->h = *h;
    hr->hd = hd;
    hr->body = *body;
    hr->w.wants_data = true; /* resumed on every wake: the first unfencing posts one */
    hr->w.resume = held_resume;
    rn_broker_park(bl, &hr->w, HOLD_MAX_MS);
    if (bl->nheld++ == 0) held_resume(b, &hr->w, false, RN_OK); /* it may have been unfenced meanwhile */
    return true;
}

void rn_broker_respond(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_encode_fn encode, const void *msg) {
    rn_buf_t out;
    rn_buf_init(&out, RN_RESPONSE_MAX_BYTES);
    rn_resp_header_encode(&out, h->api_key, h->api_version, h->correlation_id);
    encode(&out, h->api_version, msg);
    if (rn_buf_err(&out)) {
        RN_ERROR("broker", "encoding response to api %d v%d failed: %s", h->api_key, h->api_version,
                 rn_err_name(rn_buf_err(&out)));
        rn_buf_free(&out);
        rn_req_close(req, "response could not be encoded");
        return;
    }
    atomic_fetch_add(&b->stats.bytes_out, rn_buf_total_len(&out));
    if (h->api_key >= 0 && h->api_key < RN_STATS_APIS)
        rn_histo_observe_ns(&b->stats.latency[h->api_key], rn_clock_mono_ns() - req->received_ns);
    rn_req_respond(req, &out);
    rn_buf_free(&out);
}

void rn_broker_bad_request(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_err_t err) {
    atomic_fetch_add(&b->stats.bad_requests, 1);
    if (h && h->api_key >= 0 && h->api_key < 80) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
    char why[160];
    snprintf(why, sizeof(why), "malformed %s v%d request (correlation id %d): %s",
             h && rn_api_info(h->api_key) ? rn_api_info(h->api_key)->name : "unknown", h ? h->api_version : -1,
             h ? h->correlation_id : -1, rn_err_name(err));
    rn_req_close(req, why);
}

/* KIP-511: an ApiVersions request of a version we don't know gets a v0 answer. */
static void api_versions_unsupported(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h) {
    rn_ApiVersionsResponse_t resp;
    rn_ApiVersionsResponse_init(&resp);
    resp.ErrorCode = RN_ERR_UNSUPPORTED_VERSION;
    resp.ApiKeys_count = 0;
    rn_ApiVersionsResponse_ApiVersion_t *keys = rn_arena_calloc(&req->arena, rn_handlers_count, sizeof(*keys));
    if (keys) {
        for (size_t i = 0; i < rn_handlers_count; i++) {
            rn_ApiVersionsResponse_ApiVersion_init(&keys[i]);
            keys[i].ApiKey = rn_handlers[i].api_key;
            keys[i].MinVersion = rn_handlers[i].min_version;
            keys[i].MaxVersion = rn_handlers[i].max_version;
        }
        resp.ApiKeys = keys;
        resp.ApiKeys_count = (int32_t)rn_handlers_count;
    }
    rn_req_header_t h0 = *h;
    h0.api_version = 0;
    rn_broker_respond(b, req, &h0, (rn_encode_fn)rn_ApiVersionsResponse_encode, &resp);
}

void rn_broker_on_request(void *ctx, rn_req_t *req) {
    rn_broker_t *b = ctx;
    rn_reader_t r;
    rn_reader_init(&r, req->frame, req->frame_len);
    rn_req_header_t h;
    memset(&h, 0, sizeof(h));
    atomic_fetch_add(&b->stats.bytes_in, req->frame_len + 4);
    rn_reader_t start = r;
    rn_err_t rc = rn_req_header_decode(&r, &h);
    if (rc && h.api_key == RN_API_API_VERSIONS) {
        /* KIP-511 leniency: a client probing a newer ApiVersions may send a v1
         * header; read it as one so it still gets the list of versions. */
        r = start;
        h.api_key = rn_reader_i16(&r);
        h.api_version = rn_reader_i16(&r);
        h.correlation_id = rn_reader_i32(&r);
        h.client_id = rn_reader_str(&r, false);
        h.header_version = 1;
        rc = rn_reader_err(&r);
    }
    if (rc) {
        rn_broker_bad_request(b, req, &h, rc);
        return;
    }
    if (h.api_key >= 0 && h.api_key < 80) atomic_fetch_add(&b->stats.requests[h.api_key], 1);
    const rn_handler_t *hd = rn_handler_find(h.api_key);
    if (!hd) {
        char why[96];
        snprintf(why, sizeof(why), "unsupported api key %d (correlation id %d)", h.api_key, h.correlation_id);
        atomic_fetch_add(&b->stats.bad_requests, 1);
        rn_req_close(req, why);
        return;
    }
    if (!rn_api_served_on(b, req, h.api_key)) {
        char why[128];
        snprintf(why, sizeof(why), "%s is not served on controller listener %s (correlation id %d)",
                 rn_api_info(h.api_key) ? rn_api_info(h.api_key)->name : "api", rn_broker_req_listener(b, req)->name,
                 h.correlation_id);
        atomic_fetch_add(&b->stats.bad_requests, 1);
        rn_req_close(req, why);
        return;
    }
    if (h.api_version < hd->min_version || h.api_version > hd->max_version) {
        if (h.api_key == RN_API_API_VERSIONS) {
            api_versions_unsupported(b, req, &h);
            return;
        }
        char why[128];
        snprintf(why, sizeof(why), "unsupported %s version %d (served: %d-%d)",
                 rn_api_info(h.api_key) ? rn_api_info(h.api_key)->name : "internal", h.api_version, hd->min_version,
                 hd->max_version);
        atomic_fetch_add(&b->stats.bad_requests, 1);
        rn_req_close(req, why);
        return;
    }
    if (hold(b, req, &h, hd, &r)) return;
    hd->fn(b, req, &h, &r);
}

rn_str_t rn_str_dup_arena(rn_arena_t *a, const char *s) {
    size_t n = strlen(s);
    char *p = rn_arena_strndup(a, s, n);
    if (!p) return (rn_str_t){"", 0};
    return (rn_str_t){p, (int32_t)n};
}

rn_str_t rn_str_printf_arena(rn_arena_t *a, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof(tmp)) n = sizeof(tmp) - 1;
    char *p = rn_arena_strndup(a, tmp, (size_t)n);
    if (!p) return (rn_str_t){"", 0};
    return (rn_str_t){p, n};
}
