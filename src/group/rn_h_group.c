/*
 * rn_h_group.c — the group APIs: FindCoordinator, JoinGroup, SyncGroup,
 * Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
 * DescribeGroups, DeleteGroups, OffsetDelete.
 *
 * Each handler decodes its request into the request arena, takes the
 * coordinator lock, runs the group's state machine (rn_group_state.c) and
 * answers. Two kinds of answer wait:
 *
 *   JoinGroup / SyncGroup until the group decides: a malloc'd gwait_t is
 *     parked on the request's own loop (so broker shutdown completes it)
 *     and handed to the state machine as the member's waiter. Whoever
 *     completes it — any loop, or the coordinator's timer thread — encodes
 *     the response while holding the lock, marks it posted and rn_loop_post()s
 *     it to the request's loop, where gw_deliver() sends it and frees it.
 *     On shutdown the loop resumes every parked wait: one not yet posted is
 *     taken back from its member (rn_group_drop_waiter) and dropped; one
 *     already posted is left to gw_deliver.
 *   OffsetCommit / DeleteGroups / OffsetDelete until their records are
 *     durable: the produce-style ticket wait on the request's loop.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_broker.h"
#include "rn_cluster.h"
#include "rn_group.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"
#include "rn_txn.h"

#define RN_COMMIT_SYNC_TIMEOUT_MS 5000 /* Kafka's offsets.commit.timeout.ms */
#define RN_GROUP_OPS_AUTHORIZED ((1 << 3) | (1 << 6) | (1 << 8)) /* READ, DELETE, DESCRIBE */
#define RN_AUTHORIZED_OPS_OMITTED INT32_MIN

static rn_str_t cstr(const char *s) { return s ? rn_str_from_cstr(s) : RN_STR_NULL; }

static rn_str_t arena_str(rn_arena_t *a, const char *s, size_t len) {
    char *p = rn_arena_strndup(a, s ? s : "", len);
    return p ? (rn_str_t){p, (int32_t)len} : RN_STR_LIT("");
}

static rn_str_t arena_cstr(rn_arena_t *a, const char *s) {
    return s ? arena_str(a, s, strlen(s)) : RN_STR_NULL;
}

static rn_bytes_t arena_bytes(rn_arena_t *a, const uint8_t *p, int32_t len) {
    if (!p || len <= 0) return (rn_bytes_t){(const uint8_t *)"", 0};
    uint8_t *d = rn_arena_alloc(a, (size_t)len);
    if (!d) return (rn_bytes_t){(const uint8_t *)"", 0};
    memcpy(d, p, (size_t)len);
    return (rn_bytes_t){d, len};
}

static void count_error(rn_broker_t *b, const rn_req_header_t *h, int16_t err) {
    if (err && h->api_key >= 0 && h->api_key < 80) atomic_fetch_add(&b->stats.errors[h->api_key], 1);
}

/* Kafka shows a member's host as InetAddress.toString: "/127.0.0.1". */
static rn_str_t client_host(rn_arena_t *a, rn_req_t *req) {
    const char *peer = req->conn ? rn_conn_peer(req->conn) : "unknown";
    char host[80];
    size_t n = strlen(peer);
    const char *colon = strrchr(peer, ':');
    if (colon) n = (size_t)(colon - peer);
    if (n >= 2 && peer[0] == '[') {
        peer++;
        n -= 2;
    }
    snprintf(host, sizeof(host), "/%.*s", (int)n, peer);
    return arena_cstr(a, host);
}

/* ---- parked JoinGroup / SyncGroup --------------------------------------- */

typedef struct {
    rn_wait_t w; /* first: the wait is the context */
    rn_broker_t *b;
    rn_req_t *req;
    rn_req_header_t h;
    rn_group_t *group; /* while not posted */
    rn_buf_t out;      /* the encoded response, once posted */
    bool posted;       /* under the coordinator lock */
    rn_durable_t d;    /* a SyncGroup answer waits for its group's stored metadata */
} gwait_t;

static void gw_free(gwait_t *gw) {
    rn_durable_release(&gw->d);
    rn_buf_free(&gw->out);
    free(gw);
}

static void gw_send(gwait_t *gw);

/* The group metadata is replicated (or could not be): the answer, or an error in its place. */
static void gw_replicated(rn_broker_t *b, rn_req_t *req, void *ctx, rn_err_t err) {
    gwait_t *gw = ctx;
    if (err) {
        rn_SyncGroupResponse_t resp;
        rn_SyncGroupResponse_init(&resp);
        resp.ErrorCode = err == RN_ERR_NOT_COORDINATOR ? RN_ERR_NOT_COORDINATOR : RN_ERR_COORDINATOR_NOT_AVAILABLE;
        resp.ProtocolType = RN_STR_NULL;
        resp.ProtocolName = RN_STR_NULL;
        resp.Assignment = (rn_bytes_t){(const uint8_t *)"", 0};
        rn_buf_reset(&gw->out);
        rn_resp_header_encode(&gw->out, gw->h.api_key, gw->h.api_version, gw->h.correlation_id);
        rn_SyncGroupResponse_encode(&gw->out, gw->h.api_version, &resp);
        count_error(b, &gw->h, resp.ErrorCode);
    }
    (void)req;
    gw_send(gw);
}

static void gw_deliver(void *arg) {
    gwait_t *gw = arg;
    rn_broker_t *b = gw->b;
    rn_broker_unpark(rn_broker_loop_for(b, gw->req->loop), &gw->w);
    if (gw->d.n > 0) {
        rn_broker_when_replicated(b, gw->req, &gw->d, RN_COMMIT_SYNC_TIMEOUT_MS, gw_replicated, gw);
        return;
    }
    gw_send(gw);
}

static void gw_send(gwait_t *gw) {
    rn_broker_t *b = gw->b;
    if (rn_buf_err(&gw->out)) {
        RN_ERROR("group", "encoding a group response failed: %s", rn_err_name(rn_buf_err(&gw->out)));
        rn_req_close(gw->req, "group response could not be encoded");
    } else {
        atomic_fetch_add(&b->stats.bytes_out, rn_buf_total_len(&gw->out));
        rn_req_respond(gw->req, &gw->out);
    }
    gw_free(gw);
}

static void gw_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    (void)err;
    /* Wake-ups for data or syncs are not for us; a "time-out" here is the loop stopping. */
    if (!timed_out) return;
    gwait_t *gw = (gwait_t *)w;
    rn_group_coordinator_t *c = b->group_coordinator;
    pthread_mutex_lock(&c->lock);
    bool posted = gw->posted;
    if (!posted && gw->group) rn_group_drop_waiter(gw->group, gw);
    pthread_mutex_unlock(&c->lock);
    rn_broker_unpark(w->ctx, w);
    if (posted) return; /* gw_deliver, already queued on this loop, completes it */
    rn_req_no_response(gw->req);
    gw_free(gw);
}

static gwait_t *gw_new(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h) {
    gwait_t *gw = calloc(1, sizeof(*gw));
    if (!gw) return NULL;
    gw->b = b;
    gw->req = req;
    gw->h = *h;
    rn_buf_init(&gw->out, (size_t)1 << 30);
    gw->w.resume = gw_resume;
    rn_broker_park(rn_broker_loop_for(b, req->loop), &gw->w, -1);
    return gw;
}

static void gw_post(gwait_t *gw) {
    gw->posted = true;
    gw->group = NULL;
    rn_loop_post(gw->req->loop, gw_deliver, gw);
}

static void encode_join(rn_buf_t *out, const rn_req_header_t *h, const rn_join_result_t *r) {
    rn_arena_t a;
    rn_arena_init(&a, (size_t)1 << 30);
    rn_JoinGroupResponse_t resp;
    rn_JoinGroupResponse_init(&resp);
    resp.ErrorCode = r->error;
    resp.GenerationId = r->generation;
    resp.ProtocolType = cstr(r->protocol_type);
    resp.ProtocolName = cstr(r->protocol_name);
    resp.Leader = cstr(r->leader_id ? r->leader_id : "");
    resp.SkipAssignment = r->skip_assignment;
    resp.MemberId = cstr(r->member_id ? r->member_id : "");
    resp.Members_count = 0;
    if (r->nmembers > 0) {
        resp.Members = rn_arena_calloc(&a, (size_t)r->nmembers, sizeof(*resp.Members));
        if (!resp.Members) {
            out->err = RN_ERR_NOMEM;
            rn_arena_reset(&a);
            return;
        }
        for (int32_t i = 0; i < r->nmembers; i++) {
            const rn_member_t *m = r->members[i];
            rn_JoinGroupResponse_JoinGroupResponseMember_t *x = &resp.Members[i];
            rn_JoinGroupResponse_JoinGroupResponseMember_init(x);
            x->MemberId = cstr(m->member_id);
            x->GroupInstanceId = cstr(m->group_instance_id);
            x->Metadata = (rn_bytes_t){(const uint8_t *)"", 0};
            for (int32_t j = 0; j < m->nprotocols; j++)
                if (r->protocol_name && !strcmp(m->protocols[j].name, r->protocol_name))
                    x->Metadata = (rn_bytes_t){m->protocols[j].metadata, m->protocols[j].metadata_len};
        }
        resp.Members_count = r->nmembers;
    }
    rn_resp_header_encode(out, h->api_key, h->api_version, h->correlation_id);
    rn_JoinGroupResponse_encode(out, h->api_version, &resp);
    rn_arena_reset(&a);
}

void rn__group_join_done(void *ctx, rn_group_t *g, void *waiter, const rn_join_result_t *r) {
    (void)ctx;
    (void)g;
    gwait_t *gw = waiter;
    RN_ASSERT(!gw->posted);
    encode_join(&gw->out, &gw->h, r);
    count_error(gw->b, &gw->h, r->error);
    gw_post(gw);
}

void rn__group_sync_done(void *ctx, rn_group_t *g, void *waiter, const rn_sync_result_t *r) {
    rn_group_coordinator_t *c = ctx;
    gwait_t *gw = waiter;
    RN_ASSERT(!gw->posted);
    if (!r->error && g && c->store_for == g && c->store_hw.log)
        rn_durable_hw(&gw->d, c->store_hw.log, c->store_hw.target, c->store_hw.epoch);
    rn_SyncGroupResponse_t resp;
    rn_SyncGroupResponse_init(&resp);
    resp.ErrorCode = r->error;
    resp.ProtocolType = cstr(r->protocol_type);
    resp.ProtocolName = cstr(r->protocol_name);
    resp.Assignment = r->assignment && r->assignment_len > 0 ? (rn_bytes_t){r->assignment, r->assignment_len}
                                                              : (rn_bytes_t){(const uint8_t *)"", 0};
    rn_resp_header_encode(&gw->out, gw->h.api_key, gw->h.api_version, gw->h.correlation_id);
    rn_SyncGroupResponse_encode(&gw->out, gw->h.api_version, &resp);
    count_error(gw->b, &gw->h, r->error);
    gw_post(gw);
}

/* ---- answers after the records are durable ------------------------------ */

typedef rn_fail_fn fail_fn;

static void respond_when_durable(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_durable_t *d,
                                 rn_encode_fn encode, void *resp, fail_fn fail) {
    rn_broker_respond_replicated(b, req, h, d, RN_COMMIT_SYNC_TIMEOUT_MS, encode, resp, fail,
                                 RN_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* Under c->lock: may this node serve the group now? */
static int16_t owns_group(rn_group_coordinator_t *c, rn_str_t group_id) {
    size_t len = group_id.len > 0 ? (size_t)group_id.len : 0;
    return rn__coord_owns(c, rn_group_partition_for(group_id.ptr ? group_id.ptr : "", len, c->otopic.partitions));
}

/* ---- FindCoordinator ---------------------------------------------------- */

typedef struct {
    int16_t err;
    rn_str_t msg;
    int32_t node;
    rn_str_t host;
    int32_t port;
} coord_t;

static int16_t group_owns(rn_broker_t *b, int32_t partition) {
    rn_group_coordinator_t *c = b->group_coordinator;
    pthread_mutex_lock(&c->lock);
    int16_t own = rn__coord_owns(c, partition);
    pthread_mutex_unlock(&c->lock);
    return own;
}

/* The coordinator of a group (a transactional id) is the leader
 * of its partition of __consumer_offsets (__transaction_state);
 * COORDINATOR_NOT_AVAILABLE while it has none, or while this node, the
 * leader, is still loading it. */
static coord_t locate(rn_broker_t *b, rn_arena_t *a, const char *listener, rn_itopic_t *t,
                      int16_t (*owns)(rn_broker_t *, int32_t), rn_str_t key) {
    coord_t x = {RN_ERR_COORDINATOR_NOT_AVAILABLE, RN_STR_NULL, -1, RN_STR_LIT(""), -1};
    if (rn_itopic_ensure(t)) {
        x.msg = RN_STR_LIT("The coordinator's internal topic is being created");
        return x;
    }
    size_t len = key.len > 0 ? (size_t)key.len : 0;
    int32_t p = rn_group_partition_for(key.ptr ? key.ptr : "", len, t->partitions);
    bool here;
    int32_t epoch;
    int32_t leader = rn_itopic_leader(t, p, &here, &epoch);
    if (leader < 0) {
        x.msg = RN_STR_LIT("The key's partition of the coordinator's topic has no leader");
        return x;
    }
    if (leader == b->cfg.node_id && (!here || owns(b, p))) {
        x.msg = RN_STR_LIT("The coordinator is loading the key's partition");
        return x;
    }
    char host[256];
    int port;
    if (!rn_cluster_broker_address(b, leader, listener, host, sizeof(host), &port)) {
        x.msg = RN_STR_LIT("The coordinator's address is not known yet");
        return x;
    }
    return (coord_t){0, RN_STR_NULL, leader, rn_str_dup_arena(a, host), port};
}

/* The coordinator's address at the listener the request came in on (as Metadata answers). */
static coord_t locate_key(rn_broker_t *b, rn_req_t *req, int8_t key_type, rn_str_t key) {
    const char *l = rn_broker_req_listener(b, req)->name;
    if (key_type == 1) return locate(b, &req->arena, l, rn_txn_state_topic(b), rn_txn_owns_partition, key);
    return locate(b, &req->arena, l, &b->group_coordinator->otopic, group_owns, key);
}

void rn_h_find_coordinator(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_FindCoordinatorRequest_t rq;
    rn_err_t rc = rn_FindCoordinatorRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    int16_t err = 0;
    rn_str_t msg = RN_STR_NULL;
    if (!c || (rq.KeyType == 1 && !rn_txn_state_topic(b))) {
        err = RN_ERR_COORDINATOR_NOT_AVAILABLE;
        msg = RN_STR_LIT("The coordinator is not running");
    } else if (rq.KeyType != 0 && rq.KeyType != 1) {
        err = RN_ERR_INVALID_REQUEST;
        msg = RN_STR_LIT("Unknown coordinator key type");
    }
    rn_FindCoordinatorResponse_t resp;
    rn_FindCoordinatorResponse_init(&resp);
    if (h->api_version < 4) {
        coord_t x = {err, msg, -1, RN_STR_LIT(""), -1};
        if (!err) x = locate_key(b, req, rq.KeyType, rq.Key);
        resp.ErrorCode = x.err;
        resp.ErrorMessage = x.msg;
        resp.NodeId = x.node;
        resp.Host = x.host;
        resp.Port = x.port;
        count_error(b, h, x.err);
    } else {
        int32_t n = rq.CoordinatorKeys_count > 0 ? rq.CoordinatorKeys_count : 0;
        resp.Coordinators = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp.Coordinators));
        if (!resp.Coordinators) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        resp.Coordinators_count = n;
        for (int32_t i = 0; i < n; i++) {
            rn_FindCoordinatorResponse_Coordinator_t *x = &resp.Coordinators[i];
            rn_FindCoordinatorResponse_Coordinator_init(x);
            x->Key = rq.CoordinatorKeys[i];
            coord_t y = {err, msg, -1, RN_STR_LIT(""), -1};
            if (!err) y = locate_key(b, req, rq.KeyType, x->Key);
            x->ErrorCode = y.err;
            x->ErrorMessage = y.msg;
            x->NodeId = y.node;
            x->Host = y.host;
            x->Port = y.port;
            count_error(b, h, y.err);
        }
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_FindCoordinatorResponse_encode, &resp);
}

/* ---- JoinGroup ---------------------------------------------------------- */

static void join_respond_now(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, int16_t err, rn_str_t member) {
    rn_JoinGroupResponse_t resp;
    rn_JoinGroupResponse_init(&resp);
    resp.ErrorCode = err;
    resp.GenerationId = -1;
    resp.ProtocolType = RN_STR_NULL;
    resp.ProtocolName = RN_STR_NULL;
    resp.Leader = RN_STR_LIT("");
    resp.MemberId = member.len >= 0 ? member : RN_STR_LIT("");
    resp.Members_count = 0;
    count_error(b, h, err);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_JoinGroupResponse_encode, &resp);
}

void rn_h_join_group(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_JoinGroupRequest_t rq;
    rn_err_t rc = rn_JoinGroupRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    if (rq.GroupId.len <= 0) {
        join_respond_now(b, req, h, RN_ERR_INVALID_GROUP_ID, rq.MemberId);
        return;
    }
    if (rn__coord_ensure_topic(c)) {
        join_respond_now(b, req, h, RN_ERR_COORDINATOR_NOT_AVAILABLE, rq.MemberId);
        return;
    }
    int32_t np = rq.Protocols_count > 0 ? rq.Protocols_count : 0;
    rn_str_t *names = rn_arena_calloc(a, (size_t)np + 1, sizeof(*names));
    rn_bytes_t *mds = rn_arena_calloc(a, (size_t)np + 1, sizeof(*mds));
    if (!names || !mds) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    for (int32_t i = 0; i < np; i++) {
        names[i] = rq.Protocols[i].Name;
        mds[i] = rq.Protocols[i].Metadata;
    }
    rn_join_params_t p = {
        .member_id = rq.MemberId,
        .group_instance_id = h->api_version >= 5 ? rq.GroupInstanceId : RN_STR_NULL,
        .client_id = h->client_id.len >= 0 ? h->client_id : RN_STR_LIT(""),
        .client_host = client_host(a, req),
        .protocol_type = rq.ProtocolType,
        .session_timeout_ms = rq.SessionTimeoutMs,
        .rebalance_timeout_ms = h->api_version >= 1 && rq.RebalanceTimeoutMs >= 0 ? rq.RebalanceTimeoutMs
                                                                                : rq.SessionTimeoutMs,
        .nprotocols = np,
        .protocol_names = names,
        .protocol_metadata = mds,
        .require_known_member_id = h->api_version >= 4,
        .support_skip_assignment = h->api_version >= 9,
    };
    gwait_t *gw = gw_new(b, req, h);
    if (!gw) {
        join_respond_now(b, req, h, RN_ERR_COORDINATOR_NOT_AVAILABLE, rq.MemberId);
        return;
    }
    p.waiter = gw;
    pthread_mutex_lock(&c->lock);
    rn_group_env_t e = rn__coord_env(c);
    int16_t own = owns_group(c, rq.GroupId);
    rn_group_t *g = own ? NULL : rn__coord_find(c, rq.GroupId);
    if (!g && !own && rq.MemberId.len <= 0) g = rn__coord_create(c, rq.GroupId);
    if (!g) {
        rn_join_result_t r = {.error = own                    ? own
                                       : rq.MemberId.len > 0 ? RN_ERR_UNKNOWN_MEMBER_ID
                                                              : RN_ERR_COORDINATOR_NOT_AVAILABLE,
                              .generation = -1,
                              .member_id = "",
                              .leader_id = ""};
        char *echo = rn_arena_strndup(a, rq.MemberId.ptr ? rq.MemberId.ptr : "", (size_t)(rq.MemberId.len > 0 ? rq.MemberId.len : 0));
        if (echo) r.member_id = echo;
        rn__group_join_done(c, NULL, gw, &r);
    } else {
        gw->group = g;
        rn_group_join(&e, g, &p);
        rn__coord_after(c, g);
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- SyncGroup ---------------------------------------------------------- */

static void sync_respond_now(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, int16_t err) {
    rn_SyncGroupResponse_t resp;
    rn_SyncGroupResponse_init(&resp);
    resp.ErrorCode = err;
    resp.ProtocolType = RN_STR_NULL;
    resp.ProtocolName = RN_STR_NULL;
    resp.Assignment = (rn_bytes_t){(const uint8_t *)"", 0};
    count_error(b, h, err);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_SyncGroupResponse_encode, &resp);
}

void rn_h_sync_group(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_SyncGroupRequest_t rq;
    rn_err_t rc = rn_SyncGroupRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    if (rq.GroupId.len <= 0) {
        sync_respond_now(b, req, h, RN_ERR_INVALID_GROUP_ID);
        return;
    }
    /* KIP-559: from v5 both must be given. */
    if (h->api_version >= 5 && (rq.ProtocolType.len < 0 || rq.ProtocolName.len < 0)) {
        sync_respond_now(b, req, h, RN_ERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    int32_t n = rq.Assignments_count > 0 ? rq.Assignments_count : 0;
    rn_str_t *ids = rn_arena_calloc(a, (size_t)n + 1, sizeof(*ids));
    rn_bytes_t *as = rn_arena_calloc(a, (size_t)n + 1, sizeof(*as));
    if (!ids || !as) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        ids[i] = rq.Assignments[i].MemberId;
        as[i] = rq.Assignments[i].Assignment;
    }
    gwait_t *gw = gw_new(b, req, h);
    if (!gw) {
        sync_respond_now(b, req, h, RN_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    rn_sync_params_t p = {
        .member_id = rq.MemberId,
        .group_instance_id = h->api_version >= 3 ? rq.GroupInstanceId : RN_STR_NULL,
        .generation = rq.GenerationId,
        .protocol_type = h->api_version >= 5 ? rq.ProtocolType : RN_STR_NULL,
        .protocol_name = h->api_version >= 5 ? rq.ProtocolName : RN_STR_NULL,
        .nassignments = n,
        .assignment_member_ids = ids,
        .assignments = as,
        .waiter = gw,
    };
    pthread_mutex_lock(&c->lock);
    rn_group_env_t e = rn__coord_env(c);
    int16_t own = owns_group(c, rq.GroupId);
    rn_group_t *g = own ? NULL : rn__coord_find(c, rq.GroupId);
    if (!g) {
        rn_sync_result_t r = {.error = own ? own : RN_ERR_UNKNOWN_MEMBER_ID};
        rn__group_sync_done(c, NULL, gw, &r);
    } else {
        gw->group = g;
        rn_group_sync(&e, g, &p);
        rn__coord_after(c, g);
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- Heartbeat ---------------------------------------------------------- */

void rn_h_heartbeat(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_HeartbeatRequest_t rq;
    rn_err_t rc = rn_HeartbeatRequest_decode(body, h->api_version, &req->arena, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_HeartbeatResponse_t resp;
    rn_HeartbeatResponse_init(&resp);
    if (rq.GroupId.len <= 0) {
        resp.ErrorCode = RN_ERR_INVALID_GROUP_ID;
    } else {
        pthread_mutex_lock(&c->lock);
        rn_group_env_t e = rn__coord_env(c);
        int16_t own = owns_group(c, rq.GroupId);
        rn_group_t *g = own ? NULL : rn__coord_find(c, rq.GroupId);
        if (!g) {
            resp.ErrorCode = own ? own : RN_ERR_UNKNOWN_MEMBER_ID;
        } else {
            resp.ErrorCode = (int16_t)rn_group_heartbeat(&e, g, rq.MemberId,
                                                         h->api_version >= 3 ? rq.GroupInstanceId : RN_STR_NULL,
                                                         rq.GenerationId);
            rn__coord_touch(c, g); /* O(log groups): no O(members) check per heartbeat */
        }
        pthread_mutex_unlock(&c->lock);
    }
    count_error(b, h, resp.ErrorCode);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_HeartbeatResponse_encode, &resp);
}

/* ---- LeaveGroup --------------------------------------------------------- */

void rn_h_leave_group(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_LeaveGroupRequest_t rq;
    rn_err_t rc = rn_LeaveGroupRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_LeaveGroupResponse_t resp;
    rn_LeaveGroupResponse_init(&resp);
    int32_t n = h->api_version >= 3 ? (rq.Members_count > 0 ? rq.Members_count : 0) : 1;
    rn_LeaveGroupRequest_MemberIdentity_t one;
    rn_LeaveGroupRequest_MemberIdentity_init(&one);
    one.MemberId = rq.MemberId;
    one.GroupInstanceId = RN_STR_NULL;
    const rn_LeaveGroupRequest_MemberIdentity_t *ids = h->api_version >= 3 ? rq.Members : &one;
    resp.Members = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp.Members));
    if (!resp.Members) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Members_count = n;
    if (rq.GroupId.len <= 0) {
        resp.ErrorCode = RN_ERR_INVALID_GROUP_ID;
        resp.Members_count = 0;
    } else {
        pthread_mutex_lock(&c->lock);
        rn_group_env_t e = rn__coord_env(c);
        int16_t own = owns_group(c, rq.GroupId);
        rn_group_t *g = own ? NULL : rn__coord_find(c, rq.GroupId);
        if (own) {
            resp.ErrorCode = own;
            resp.Members_count = 0;
            n = 0;
        }
        for (int32_t i = 0; i < n; i++) {
            rn_LeaveGroupResponse_MemberResponse_t *x = &resp.Members[i];
            rn_LeaveGroupResponse_MemberResponse_init(x);
            x->MemberId = ids[i].MemberId;
            x->GroupInstanceId = ids[i].GroupInstanceId;
            x->ErrorCode = g ? (int16_t)rn_group_leave(&e, g, ids[i].MemberId, ids[i].GroupInstanceId)
                             : RN_ERR_UNKNOWN_MEMBER_ID;
            if (g && g->state == RN_GS_DEAD) break;
        }
        if (g) rn__coord_after(c, g);
        pthread_mutex_unlock(&c->lock);
        /* v0-2 carry one member: its error is the answer. */
        if (h->api_version < 3 && !own) resp.ErrorCode = resp.Members[0].ErrorCode;
    }
    count_error(b, h, resp.ErrorCode);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_LeaveGroupResponse_encode, &resp);
}

/* ---- OffsetCommit ------------------------------------------------------- */

static bool partition_exists(rn_broker_t *b, rn_str_t topic, int32_t partition) {
    if (topic.len <= 0) return false;
    pthread_rwlock_rdlock(&b->topics_lock);
    bool ok = rn_broker_partition_locked(b, topic.ptr, (size_t)topic.len, partition) != NULL;
    pthread_rwlock_unlock(&b->topics_lock);
    return ok;
}

static void commit_fail(void *resp, int16_t err) {
    rn_OffsetCommitResponse_t *r = resp;
    for (int32_t i = 0; i < r->Topics_count; i++)
        for (int32_t j = 0; j < r->Topics[i].Partitions_count; j++)
            if (!r->Topics[i].Partitions[j].ErrorCode) r->Topics[i].Partitions[j].ErrorCode = err;
}

/* Kafka's OffsetAndMetadata for one committed partition: the commit time is
 * now unless v1 gave one; an expiry exists only when the client asked for a
 * retention (v2-v4) or gave a v1 timestamp. Null metadata is stored as "". */
static rn_offset_t commit_value(const rn_req_header_t *h, const rn_OffsetCommitRequest_OffsetCommitRequestPartition_t *pp,
                                int64_t now_ms, int64_t retention_ms, int64_t default_retention_ms) {
    rn_offset_t o = {
        .offset = pp->CommittedOffset,
        .leader_epoch = h->api_version >= 6 ? pp->CommittedLeaderEpoch : -1,
        .metadata = (char *)(pp->CommittedMetadata.len > 0 ? pp->CommittedMetadata.ptr : ""),
        .metadata_len = pp->CommittedMetadata.len > 0 ? pp->CommittedMetadata.len : 0,
        .commit_timestamp_ms = now_ms,
        .expire_timestamp_ms = retention_ms >= 0 ? now_ms + retention_ms : -1,
    };
    if (h->api_version == 1 && pp->CommitTimestamp != -1) {
        o.commit_timestamp_ms = pp->CommitTimestamp;
        o.expire_timestamp_ms = pp->CommitTimestamp + default_retention_ms;
    }
    return o;
}

void rn_h_offset_commit(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_OffsetCommitRequest_t rq;
    rn_err_t rc = rn_OffsetCommitRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_OffsetCommitResponse_t *resp = rn_arena_alloc(a, sizeof(*resp));
    int32_t nt = rq.Topics_count > 0 ? rq.Topics_count : 0;
    if (!resp || !(resp->Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp->Topics)))) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp->ThrottleTimeMs = 0;
    resp->Topics_count = nt;
    int32_t total = 0;
    for (int32_t i = 0; i < nt; i++) {
        const rn_OffsetCommitRequest_OffsetCommitRequestTopic_t *t = &rq.Topics[i];
        rn_OffsetCommitResponse_OffsetCommitResponseTopic_t *rt = &resp->Topics[i];
        rn_OffsetCommitResponse_OffsetCommitResponseTopic_init(rt);
        rt->Name = t->Name;
        int32_t np = t->Partitions_count > 0 ? t->Partitions_count : 0;
        rt->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*rt->Partitions));
        if (!rt->Partitions) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        rt->Partitions_count = np;
        for (int32_t j = 0; j < np; j++) {
            const rn_OffsetCommitRequest_OffsetCommitRequestPartition_t *pp = &t->Partitions[j];
            rn_OffsetCommitResponse_OffsetCommitResponsePartition_t *rp = &rt->Partitions[j];
            rn_OffsetCommitResponse_OffsetCommitResponsePartition_init(rp);
            rp->PartitionIndex = pp->PartitionIndex;
            if (!partition_exists(b, t->Name, pp->PartitionIndex))
                rp->ErrorCode = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (pp->CommittedMetadata.len > RN_OFFSET_METADATA_MAX_BYTES)
                rp->ErrorCode = RN_ERR_OFFSET_METADATA_TOO_LARGE;
            else
                total++;
        }
    }
    rn_durable_t dur;
    rn_durable_init(&dur);
    int16_t group_err = 0;
    if (total && rn__coord_ensure_topic(c)) group_err = RN_ERR_COORDINATOR_NOT_AVAILABLE;
    if (total && !group_err) {
        int32_t generation = h->api_version >= 1 ? rq.GenerationIdOrMemberEpoch : -1;
        rn_str_t member = h->api_version >= 1 ? rq.MemberId : RN_STR_LIT("");
        rn_str_t instance = h->api_version >= 7 ? rq.GroupInstanceId : RN_STR_NULL;
        pthread_mutex_lock(&c->lock);
        rn_group_env_t e = rn__coord_env(c);
        group_err = owns_group(c, rq.GroupId);
        rn_group_t *g = group_err ? NULL : rn__coord_find(c, rq.GroupId);
        if (!g && !group_err) {
            if (generation < 0)
                g = rn__coord_create(c, rq.GroupId); /* offsets without group management */
            else
                group_err = RN_ERR_ILLEGAL_GENERATION; /* a member of a group that is gone */
            if (!g && !group_err) group_err = RN_ERR_COORDINATOR_NOT_AVAILABLE;
        }
        if (g && !group_err) group_err = (int16_t)rn_group_validate_commit(&e, g, member, instance, generation);
        if (g && !group_err) {
            int64_t retention = h->api_version >= 2 && h->api_version <= 4 ? rq.RetentionTimeMs : -1;
            rn_irecords_t recs;
            rn_irecords_init(&recs, -1, -1);
            for (int32_t i = 0; i < nt; i++) {
                for (int32_t j = 0; j < resp->Topics[i].Partitions_count; j++) {
                    if (resp->Topics[i].Partitions[j].ErrorCode) continue;
                    const rn_OffsetCommitRequest_OffsetCommitRequestPartition_t *pp = &rq.Topics[i].Partitions[j];
                    rn_offset_t o = commit_value(h, pp, e.wall_ms, retention, c->retention_ms);
                    rn__orecords_offset(&recs, rq.GroupId, rq.Topics[i].Name, pp->PartitionIndex, &o);
                }
            }
            rc = rn__orecords_append(c, g->partition, &recs, &dur);
            if (rc) {
                group_err = (int16_t)(rc > 0 ? rc : RN_ERR_UNKNOWN_SERVER_ERROR);
            } else {
                /* Memory follows the log, in the same order (both under the lock). */
                for (int32_t i = 0; i < nt; i++) {
                    for (int32_t j = 0; j < resp->Topics[i].Partitions_count; j++) {
                        if (resp->Topics[i].Partitions[j].ErrorCode) continue;
                        const rn_OffsetCommitRequest_OffsetCommitRequestPartition_t *pp = &rq.Topics[i].Partitions[j];
                        rn_offset_t o = commit_value(h, pp, e.wall_ms, retention, c->retention_ms);
                        rn_group_offset_put(g, rq.Topics[i].Name.ptr, (size_t)rq.Topics[i].Name.len,
                                            pp->PartitionIndex, &o);
                    }
                }
            }
            rn_irecords_free(&recs);
        }
        if (g) rn__coord_after(c, g);
        pthread_mutex_unlock(&c->lock);
    }
    if (group_err) commit_fail(resp, group_err);
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < resp->Topics[i].Partitions_count; j++)
            count_error(b, h, resp->Topics[i].Partitions[j].ErrorCode);
    respond_when_durable(b, req, h, &dur, (rn_encode_fn)rn_OffsetCommitResponse_encode, resp, commit_fail);
}

/* ---- transactional offsets ---------------------------------------------- */

#define RN_TXN_PENDING_MAX 1000000 /* offsets pending in open transactions, all groups */

static bool str_eq(const char *a, rn_str_t b) {
    return b.len >= 0 && strlen(a) == (size_t)b.len && memcmp(a, b.ptr, (size_t)b.len) == 0;
}

static void pending_clear(rn_txn_pending_t *p) {
    free(p->group);
    free(p->topic);
    free(p->o.metadata);
}

bool rn__pending_add(rn_group_coordinator_t *c, int64_t producer_id, rn_str_t group, rn_str_t topic, int32_t partition,
                     const rn_offset_t *o) {
    rn_txn_pending_t *p = NULL;
    for (size_t i = 0; i < c->npending && !p; i++) {
        rn_txn_pending_t *x = &c->pending[i];
        if (x->producer_id == producer_id && x->partition == partition && str_eq(x->group, group) &&
            str_eq(x->topic, topic))
            p = x;
    }
    int32_t mdl = o->metadata_len > 0 ? o->metadata_len : 0;
    char *md = malloc((size_t)mdl + 1);
    if (!md) return false;
    if (mdl) memcpy(md, o->metadata, (size_t)mdl);
    md[mdl] = 0;
    if (!p) {
        if (c->npending >= RN_TXN_PENDING_MAX) {
            free(md);
            return false;
        }
        if (c->npending == c->pending_cap) {
            size_t cap = c->pending_cap ? c->pending_cap * 2 : 16;
            rn_txn_pending_t *n = realloc(c->pending, cap * sizeof(*n));
            if (!n) {
                free(md);
                return false;
            }
            c->pending = n;
            c->pending_cap = cap;
        }
        char *g = strndup(group.ptr, (size_t)group.len), *t = strndup(topic.ptr, (size_t)topic.len);
        if (!g || !t) {
            free(g);
            free(t);
            free(md);
            return false;
        }
        p = &c->pending[c->npending++];
        *p = (rn_txn_pending_t){.producer_id = producer_id, .group = g, .topic = t, .partition = partition};
    } else {
        free(p->o.metadata);
    }
    p->o = *o;
    p->o.metadata = md;
    p->o.metadata_len = mdl;
    return true;
}

void rn__pending_finish(rn_group_coordinator_t *c, int32_t partition, int64_t producer_id, bool commit) {
    size_t k = 0;
    for (size_t i = 0; i < c->npending; i++) {
        rn_txn_pending_t *p = &c->pending[i];
        rn_str_t gid = rn_str_from_cstr(p->group);
        if (p->producer_id != producer_id ||
            (partition >= 0 && rn_group_partition_for(gid.ptr, (size_t)gid.len, c->otopic.partitions) != partition)) {
            c->pending[k++] = *p;
            continue;
        }
        if (commit) {
            rn_group_t *g = rn__coord_find(c, gid);
            if (!g) g = rn__coord_create(c, gid);
            if (!g || rn_group_offset_put(g, p->topic, strlen(p->topic), p->partition, &p->o))
                RN_WARN("group", "group %s: cannot apply a committed transactional offset", p->group);
            if (g) rn__coord_after(c, g);
        }
        pending_clear(p);
    }
    c->npending = k;
}

void rn__pending_drop_partition(rn_group_coordinator_t *c, int32_t partition) {
    size_t k = 0;
    for (size_t i = 0; i < c->npending; i++) {
        rn_txn_pending_t *p = &c->pending[i];
        if (rn_group_partition_for(p->group, strlen(p->group), c->otopic.partitions) == partition)
            pending_clear(p);
        else
            c->pending[k++] = *p;
    }
    c->npending = k;
}

void rn__pending_free(rn_group_coordinator_t *c) {
    for (size_t i = 0; i < c->npending; i++) pending_clear(&c->pending[i]);
    free(c->pending);
    c->pending = NULL;
    c->npending = c->pending_cap = 0;
}

rn_err_t rn_group_txn_offset_commit(rn_broker_t *b, rn_str_t group_id, int64_t producer_id, int16_t producer_epoch,
                                    const rn_txn_offset_t *offs, int32_t n, rn_durable_t *d) {
    rn_group_coordinator_t *c = b->group_coordinator;
    if (n <= 0) return RN_OK;
    if (group_id.len <= 0) return RN_ERR_INVALID_GROUP_ID;
    if (rn__coord_ensure_topic(c)) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    pthread_mutex_lock(&c->lock);
    int16_t own = owns_group(c, group_id);
    if (own) {
        pthread_mutex_unlock(&c->lock);
        return own;
    }
    rn_group_env_t e = rn__coord_env(c);
    int32_t partition = rn_group_partition_for(group_id.ptr, (size_t)group_id.len, c->otopic.partitions);
    rn_irecords_t recs;
    rn_irecords_init(&recs, producer_id, producer_epoch);
    for (int32_t i = 0; i < n; i++) {
        rn_offset_t o = {offs[i].offset, offs[i].leader_epoch, (char *)(offs[i].metadata.ptr ? offs[i].metadata.ptr : ""),
                         offs[i].metadata.len > 0 ? offs[i].metadata.len : 0, e.wall_ms, -1};
        rn__orecords_offset(&recs, group_id, offs[i].topic, offs[i].partition, &o);
    }
    rn_err_t rc = rn__orecords_append(c, partition, &recs, d);
    for (int32_t i = 0; i < n && !rc; i++) {
        rn_offset_t o = {offs[i].offset, offs[i].leader_epoch, (char *)offs[i].metadata.ptr,
                         offs[i].metadata.len > 0 ? offs[i].metadata.len : 0, e.wall_ms, -1};
        if (!rn__pending_add(c, producer_id, group_id, offs[i].topic, offs[i].partition, &o))
            rc = RN_ERR_UNKNOWN_SERVER_ERROR;
    }
    rn_irecords_free(&recs);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void rn_group_txn_complete(rn_broker_t *b, int32_t partition, int64_t producer_id, bool commit) {
    rn_group_coordinator_t *c = b->group_coordinator;
    pthread_mutex_lock(&c->lock);
    rn__pending_finish(c, partition, producer_id, commit);
    pthread_mutex_unlock(&c->lock);
}

int32_t rn_group_offsets_partition(rn_broker_t *b, rn_str_t group_id) {
    rn_group_coordinator_t *c = b->group_coordinator;
    /* The topic's count once it exists; until then (its creation asked for here) the
     * configured one it will be created with, as Kafka's partitionFor answers. */
    (void)rn__coord_ensure_topic(c);
    size_t len = group_id.len > 0 ? (size_t)group_id.len : 0;
    return rn_group_partition_for(group_id.ptr ? group_id.ptr : "", len, c->otopic.partitions);
}

/* ---- OffsetFetch -------------------------------------------------------- */

typedef struct {
    const char *topic;
    size_t topic_len;
    int32_t partition;
    const rn_offset_t *o;
} fetch_entry_t;

static int fetch_entry_cmp(const void *x, const void *y) {
    const fetch_entry_t *a = x, *b = y;
    size_t n = a->topic_len < b->topic_len ? a->topic_len : b->topic_len;
    int c = memcmp(a->topic, b->topic, n);
    if (c) return c;
    if (a->topic_len != b->topic_len) return a->topic_len < b->topic_len ? -1 : 1;
    return (a->partition > b->partition) - (a->partition < b->partition);
}

static void fill_fetched(rn_arena_t *a, rn_OffsetFetchResponse_OffsetFetchResponsePartitions_t *x, int32_t partition,
                         const rn_offset_t *o) {
    rn_OffsetFetchResponse_OffsetFetchResponsePartitions_init(x);
    x->PartitionIndex = partition;
    x->ErrorCode = 0;
    if (o) {
        x->CommittedOffset = o->offset;
        x->CommittedLeaderEpoch = o->leader_epoch;
        x->Metadata = arena_str(a, o->metadata, (size_t)(o->metadata_len > 0 ? o->metadata_len : 0));
    } else {
        x->CommittedOffset = -1;
        x->CommittedLeaderEpoch = -1;
        x->Metadata = RN_STR_LIT("");
    }
}

/* RequireStable: a partition with an offset pending in an open transaction
 * answers UNSTABLE_OFFSET_COMMIT (the client retries). */
static void mark_unstable(rn_broker_t *b, rn_str_t group_id, rn_OffsetFetchResponse_OffsetFetchResponseGroup_t *out) {
    rn_group_coordinator_t *c = b->group_coordinator;
    pthread_mutex_lock(&c->lock);
    for (size_t k = 0; k < c->npending; k++) {
        const rn_txn_pending_t *p = &c->pending[k];
        if (!str_eq(p->group, group_id)) continue;
        for (int32_t i = 0; i < out->Topics_count; i++)
            for (int32_t j = 0; j < out->Topics[i].Partitions_count; j++)
                if (out->Topics[i].Partitions[j].PartitionIndex == p->partition && str_eq(p->topic, out->Topics[i].Name))
                    out->Topics[i].Partitions[j].ErrorCode = RN_ERR_UNSTABLE_OFFSET_COMMIT;
    }
    pthread_mutex_unlock(&c->lock);
}

/* One group's answer, in the v8 shape; NULL topics means every committed offset. */
static rn_err_t fetch_group(rn_group_coordinator_t *c, rn_arena_t *a, rn_str_t group_id, int32_t ntopics,
                            const rn_str_t *names, const int32_t *counts, int32_t *const *indexes,
                            rn_OffsetFetchResponse_OffsetFetchResponseGroup_t *out) {
    rn_OffsetFetchResponse_OffsetFetchResponseGroup_init(out);
    out->GroupId = group_id;
    out->ErrorCode = 0;
    out->Topics_count = 0;
    rn_err_t rc = RN_OK;
    pthread_mutex_lock(&c->lock);
    out->ErrorCode = owns_group(c, group_id);
    rn_group_t *g = out->ErrorCode ? NULL : rn__coord_find(c, group_id);
    if (ntopics >= 0) {
        out->Topics = rn_arena_calloc(a, (size_t)ntopics + 1, sizeof(*out->Topics));
        if (!out->Topics) rc = RN_ERR_LIMIT;
        for (int32_t i = 0; !rc && i < ntopics; i++) {
            rn_OffsetFetchResponse_OffsetFetchResponseTopics_t *t = &out->Topics[i];
            rn_OffsetFetchResponse_OffsetFetchResponseTopics_init(t);
            t->Name = names[i];
            int32_t np = counts[i] > 0 ? counts[i] : 0;
            t->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*t->Partitions));
            if (!t->Partitions) {
                rc = RN_ERR_LIMIT;
                break;
            }
            t->Partitions_count = np;
            for (int32_t j = 0; j < np; j++) {
                const rn_offset_t *o =
                    g && names[i].len >= 0 ? rn_group_offset_get(g, names[i].ptr, (size_t)names[i].len, indexes[i][j]) : NULL;
                fill_fetched(a, &t->Partitions[j], indexes[i][j], o);
                t->Partitions[j].ErrorCode = out->ErrorCode; /* v0-1 have only these */
            }
        }
        out->Topics_count = rc ? 0 : ntopics;
    } else if (g && g->state != RN_GS_DEAD) {
        size_t n = rn_group_offset_count(g), k = 0;
        fetch_entry_t *es = rn_arena_calloc(a, n + 1, sizeof(*es));
        if (!es) rc = RN_ERR_LIMIT;
        size_t it = 0;
        while (!rc && k < n && rn_group_offset_next(g, &it, &es[k].topic, &es[k].topic_len, &es[k].partition, &es[k].o))
            k++;
        if (!rc) qsort(es, k, sizeof(*es), fetch_entry_cmp);
        int32_t nt = 0;
        for (size_t i = 0; !rc && i < k; i++)
            if (i == 0 || fetch_entry_cmp(&(fetch_entry_t){es[i - 1].topic, es[i - 1].topic_len, 0, NULL},
                                          &(fetch_entry_t){es[i].topic, es[i].topic_len, 0, NULL}))
                nt++;
        if (!rc) out->Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*out->Topics));
        if (!rc && !out->Topics) rc = RN_ERR_LIMIT;
        size_t i = 0;
        int32_t ti = 0;
        while (!rc && i < k) {
            size_t j = i;
            while (j < k && es[j].topic_len == es[i].topic_len && !memcmp(es[j].topic, es[i].topic, es[i].topic_len)) j++;
            rn_OffsetFetchResponse_OffsetFetchResponseTopics_t *t = &out->Topics[ti++];
            rn_OffsetFetchResponse_OffsetFetchResponseTopics_init(t);
            t->Name = arena_str(a, es[i].topic, es[i].topic_len);
            t->Partitions = rn_arena_calloc(a, j - i + 1, sizeof(*t->Partitions));
            if (!t->Partitions) {
                rc = RN_ERR_LIMIT;
                break;
            }
            t->Partitions_count = (int32_t)(j - i);
            for (size_t x = i; x < j; x++) fill_fetched(a, &t->Partitions[x - i], es[x].partition, es[x].o);
            i = j;
        }
        out->Topics_count = rc ? 0 : ti;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void rn_h_offset_fetch(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_OffsetFetchRequest_t rq;
    rn_err_t rc = rn_OffsetFetchRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_OffsetFetchResponse_t resp;
    rn_OffsetFetchResponse_init(&resp);
    if (h->api_version >= 8) {
        int32_t ng = rq.Groups_count > 0 ? rq.Groups_count : 0;
        resp.Groups = rn_arena_calloc(a, (size_t)ng + 1, sizeof(*resp.Groups));
        if (!resp.Groups) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        resp.Groups_count = ng;
        for (int32_t i = 0; i < ng; i++) {
            const rn_OffsetFetchRequest_OffsetFetchRequestGroup_t *rg = &rq.Groups[i];
            int32_t nt = rg->Topics_count;
            rn_str_t *names = rn_arena_calloc(a, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*names));
            int32_t *counts = rn_arena_calloc(a, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*counts));
            int32_t **idx = rn_arena_calloc(a, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*idx));
            if (!names || !counts || !idx) {
                rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
                return;
            }
            for (int32_t t = 0; t < nt; t++) {
                names[t] = rg->Topics[t].Name;
                counts[t] = rg->Topics[t].PartitionIndexes_count;
                idx[t] = rg->Topics[t].PartitionIndexes;
            }
            if (fetch_group(c, a, rg->GroupId, nt, names, counts, idx, &resp.Groups[i])) {
                rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
                return;
            }
            if (rq.RequireStable) mark_unstable(b, rg->GroupId, &resp.Groups[i]);
        }
    } else {
        int32_t nt = rq.Topics_count;
        if (h->api_version < 2 && nt < 0) nt = 0; /* v0-1: null is not "all" */
        rn_str_t *names = rn_arena_calloc(a, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*names));
        int32_t *counts = rn_arena_calloc(a, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*counts));
        int32_t **idx = rn_arena_calloc(a, (size_t)(nt > 0 ? nt : 0) + 1, sizeof(*idx));
        rn_OffsetFetchResponse_OffsetFetchResponseGroup_t one;
        if (!names || !counts || !idx) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        for (int32_t t = 0; t < nt; t++) {
            names[t] = rq.Topics[t].Name;
            counts[t] = rq.Topics[t].PartitionIndexes_count;
            idx[t] = rq.Topics[t].PartitionIndexes;
        }
        if (fetch_group(c, a, rq.GroupId, nt, names, counts, idx, &one)) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        if (h->api_version >= 7 && rq.RequireStable) mark_unstable(b, rq.GroupId, &one);
        /* The pre-v8 shape: same fields, other struct names. */
        resp.ErrorCode = one.ErrorCode;
        resp.Topics = rn_arena_calloc(a, (size_t)one.Topics_count + 1, sizeof(*resp.Topics));
        if (!resp.Topics) {
            rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
            return;
        }
        resp.Topics_count = one.Topics_count;
        for (int32_t t = 0; t < one.Topics_count; t++) {
            rn_OffsetFetchResponse_OffsetFetchResponseTopic_t *x = &resp.Topics[t];
            rn_OffsetFetchResponse_OffsetFetchResponseTopic_init(x);
            x->Name = one.Topics[t].Name;
            x->Partitions = rn_arena_calloc(a, (size_t)one.Topics[t].Partitions_count + 1, sizeof(*x->Partitions));
            if (!x->Partitions) {
                rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
                return;
            }
            x->Partitions_count = one.Topics[t].Partitions_count;
            for (int32_t p = 0; p < x->Partitions_count; p++) {
                const rn_OffsetFetchResponse_OffsetFetchResponsePartitions_t *s = &one.Topics[t].Partitions[p];
                rn_OffsetFetchResponse_OffsetFetchResponsePartition_t *d = &x->Partitions[p];
                rn_OffsetFetchResponse_OffsetFetchResponsePartition_init(d);
                d->PartitionIndex = s->PartitionIndex;
                d->CommittedOffset = s->CommittedOffset;
                d->CommittedLeaderEpoch = s->CommittedLeaderEpoch;
                d->Metadata = s->Metadata;
                d->ErrorCode = s->ErrorCode;
            }
        }
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_OffsetFetchResponse_encode, &resp);
}

/* ---- ListGroups / DescribeGroups ---------------------------------------- */

static bool state_matches(rn_group_state_t s, const rn_str_t *filter, int32_t n) {
    if (n <= 0) return true;
    const char *name = rn_group_state_name(s);
    size_t len = strlen(name);
    for (int32_t i = 0; i < n; i++) {
        if (filter[i].len != (int32_t)len) continue;
        size_t k = 0;
        while (k < len && tolower((unsigned char)filter[i].ptr[k]) == tolower((unsigned char)name[k])) k++;
        if (k == len) return true;
    }
    return false;
}

void rn_h_list_groups(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_ListGroupsRequest_t rq;
    rn_err_t rc = rn_ListGroupsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_ListGroupsResponse_t resp;
    rn_ListGroupsResponse_init(&resp);
    pthread_mutex_lock(&c->lock);
    size_t n = c->groups.count, k = 0;
    resp.Groups = rn_arena_calloc(a, n + 1, sizeof(*resp.Groups));
    if (resp.Groups) {
        size_t it = 0;
        void *v;
        while (k < n && rn_map_next(&c->groups, &it, NULL, &v)) {
            rn_group_t *g = v;
            if (g->state == RN_GS_DEAD) continue;
            if (h->api_version >= 4 && !state_matches(g->state, rq.StatesFilter, rq.StatesFilter_count)) continue;
            rn_ListGroupsResponse_ListedGroup_t *x = &resp.Groups[k++];
            rn_ListGroupsResponse_ListedGroup_init(x);
            x->GroupId = arena_str(a, g->group_id, g->group_id_len);
            x->ProtocolType = arena_cstr(a, g->protocol_type ? g->protocol_type : "");
            x->GroupState = rn_str_from_cstr(rn_group_state_name(g->state));
            x->GroupType = RN_STR_LIT("classic");
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (!resp.Groups) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Groups_count = (int32_t)k;
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_ListGroupsResponse_encode, &resp);
}

void rn_h_describe_groups(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_DescribeGroupsRequest_t rq;
    rn_err_t rc = rn_DescribeGroupsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_DescribeGroupsResponse_t resp;
    rn_DescribeGroupsResponse_init(&resp);
    int32_t n = rq.Groups_count > 0 ? rq.Groups_count : 0;
    resp.Groups = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp.Groups));
    if (!resp.Groups) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Groups_count = n;
    bool oom = false;
    pthread_mutex_lock(&c->lock);
    for (int32_t i = 0; i < n && !oom; i++) {
        rn_DescribeGroupsResponse_DescribedGroup_t *x = &resp.Groups[i];
        rn_DescribeGroupsResponse_DescribedGroup_init(x);
        x->GroupId = rq.Groups[i];
        x->ErrorCode = 0;
        x->AuthorizedOperations = rq.IncludeAuthorizedOperations ? RN_GROUP_OPS_AUTHORIZED : RN_AUTHORIZED_OPS_OMITTED;
        x->Members_count = 0;
        x->ErrorCode = owns_group(c, rq.Groups[i]);
        rn_group_t *g = x->ErrorCode ? NULL : rn__coord_find(c, rq.Groups[i]);
        if (!g) {
            x->GroupState = RN_STR_LIT("Dead");
            x->ProtocolType = RN_STR_LIT("");
            x->ProtocolData = RN_STR_LIT("");
            continue;
        }
        bool stable = g->state == RN_GS_STABLE;
        x->GroupState = rn_str_from_cstr(rn_group_state_name(g->state));
        x->ProtocolType = arena_cstr(a, g->protocol_type ? g->protocol_type : "");
        x->ProtocolData = stable ? arena_cstr(a, g->protocol_name ? g->protocol_name : "") : RN_STR_LIT("");
        x->Members = rn_arena_calloc(a, (size_t)g->nmembers + 1, sizeof(*x->Members));
        if (!x->Members) {
            oom = true;
            break;
        }
        x->Members_count = g->nmembers;
        for (int32_t j = 0; j < g->nmembers; j++) {
            const rn_member_t *m = g->members[j];
            rn_DescribeGroupsResponse_DescribedGroupMember_t *y = &x->Members[j];
            rn_DescribeGroupsResponse_DescribedGroupMember_init(y);
            y->MemberId = arena_cstr(a, m->member_id);
            y->GroupInstanceId = arena_cstr(a, m->group_instance_id);
            y->ClientId = arena_cstr(a, m->client_id);
            y->ClientHost = arena_cstr(a, m->client_host);
            y->MemberMetadata = (rn_bytes_t){(const uint8_t *)"", 0};
            y->MemberAssignment = (rn_bytes_t){(const uint8_t *)"", 0};
            if (stable) {
                for (int32_t p = 0; p < m->nprotocols; p++)
                    if (g->protocol_name && !strcmp(m->protocols[p].name, g->protocol_name))
                        y->MemberMetadata = arena_bytes(a, m->protocols[p].metadata, m->protocols[p].metadata_len);
                y->MemberAssignment = arena_bytes(a, m->assignment, m->assignment_len);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (oom) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_DescribeGroupsResponse_encode, &resp);
}

/* ---- DeleteGroups / OffsetDelete ---------------------------------------- */

static void delete_groups_fail(void *resp, int16_t err) {
    rn_DeleteGroupsResponse_t *r = resp;
    for (int32_t i = 0; i < r->Results_count; i++)
        if (!r->Results[i].ErrorCode) r->Results[i].ErrorCode = err;
}

void rn_h_delete_groups(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_DeleteGroupsRequest_t rq;
    rn_err_t rc = rn_DeleteGroupsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_DeleteGroupsResponse_t *resp = rn_arena_alloc(a, sizeof(*resp));
    int32_t n = rq.GroupsNames_count > 0 ? rq.GroupsNames_count : 0;
    if (!resp || !(resp->Results = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp->Results)))) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp->ThrottleTimeMs = 0;
    resp->Results_count = n;
    rn_durable_t dur;
    rn_durable_init(&dur);
    pthread_mutex_lock(&c->lock);
    rn_group_env_t e = rn__coord_env(c);
    for (int32_t i = 0; i < n; i++) {
        rn_DeleteGroupsResponse_DeletableGroupResult_t *x = &resp->Results[i];
        rn_DeleteGroupsResponse_DeletableGroupResult_init(x);
        x->GroupId = rq.GroupsNames[i];
        int16_t own = owns_group(c, rq.GroupsNames[i]);
        rn_group_t *g = own ? NULL : rn__coord_find(c, rq.GroupsNames[i]);
        if (own) {
            x->ErrorCode = own;
        } else if (!g || g->state == RN_GS_DEAD) {
            x->ErrorCode = RN_ERR_GROUP_ID_NOT_FOUND;
        } else if (g->state != RN_GS_EMPTY) {
            x->ErrorCode = RN_ERR_NON_EMPTY_GROUP;
        } else {
            /* Tombstones for every offset and for the group, in one batch. */
            rn_irecords_t recs;
            rn_irecords_init(&recs, -1, -1);
            rn_str_t gid = {g->group_id, (int32_t)g->group_id_len};
            size_t it = 0;
            const char *t;
            size_t tl;
            int32_t p;
            const rn_offset_t *o;
            while (rn_group_offset_next(g, &it, &t, &tl, &p, &o))
                rn__orecords_offset(&recs, gid, (rn_str_t){t, (int32_t)tl}, p, NULL);
            rn__orecords_group(&recs, g, true);
            rc = rn__orecords_append(c, g->partition, &recs, &dur);
            rn_irecords_free(&recs);
            if (rc) {
                x->ErrorCode = (int16_t)(rc > 0 ? rc : RN_ERR_UNKNOWN_SERVER_ERROR);
            } else {
                RN_INFO("group", "group %s deleted", g->group_id);
                rn_group_set_dead(&e, g);
                rn__coord_after(c, g); /* frees it */
            }
        }
        count_error(b, h, x->ErrorCode);
    }
    pthread_mutex_unlock(&c->lock);
    respond_when_durable(b, req, h, &dur, (rn_encode_fn)rn_DeleteGroupsResponse_encode, resp, delete_groups_fail);
}

static void offset_delete_fail(void *resp, int16_t err) {
    rn_OffsetDeleteResponse_t *r = resp;
    for (int32_t i = 0; i < r->Topics_count; i++)
        for (int32_t j = 0; j < r->Topics[i].Partitions_count; j++)
            if (!r->Topics[i].Partitions[j].ErrorCode) r->Topics[i].Partitions[j].ErrorCode = err;
}

void rn_h_offset_delete(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_OffsetDeleteRequest_t rq;
    rn_err_t rc = rn_OffsetDeleteRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_group_coordinator_t *c = b->group_coordinator;
    rn_OffsetDeleteResponse_t *resp = rn_arena_alloc(a, sizeof(*resp));
    int32_t nt = rq.Topics_count > 0 ? rq.Topics_count : 0;
    if (!resp || !(resp->Topics = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp->Topics)))) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp->ThrottleTimeMs = 0;
    resp->ErrorCode = 0;
    resp->Topics_count = 0;
    rn_durable_t dur;
    rn_durable_init(&dur);
    pthread_mutex_lock(&c->lock);
    int16_t own = owns_group(c, rq.GroupId);
    rn_group_t *g = own ? NULL : rn__coord_find(c, rq.GroupId);
    bool live = g && (g->state == RN_GS_PREPARING_REBALANCE || g->state == RN_GS_COMPLETING_REBALANCE ||
                      g->state == RN_GS_STABLE);
    bool consumer = g && g->protocol_type && !strcmp(g->protocol_type, "consumer");
    if (own) {
        resp->ErrorCode = own;
    } else if (!g || g->state == RN_GS_DEAD) {
        resp->ErrorCode = RN_ERR_GROUP_ID_NOT_FOUND;
    } else if (live && !consumer) {
        resp->ErrorCode = RN_ERR_NON_EMPTY_GROUP;
    } else {
        rn_irecords_t recs;
        rn_irecords_init(&recs, -1, -1);
        rn_str_t gid = {g->group_id, (int32_t)g->group_id_len};
        resp->Topics_count = nt;
        for (int32_t i = 0; i < nt; i++) {
            const rn_OffsetDeleteRequest_OffsetDeleteRequestTopic_t *t = &rq.Topics[i];
            rn_OffsetDeleteResponse_OffsetDeleteResponseTopic_t *rt = &resp->Topics[i];
            rn_OffsetDeleteResponse_OffsetDeleteResponseTopic_init(rt);
            rt->Name = t->Name;
            int32_t np = t->Partitions_count > 0 ? t->Partitions_count : 0;
            rt->Partitions = rn_arena_calloc(a, (size_t)np + 1, sizeof(*rt->Partitions));
            rt->Partitions_count = rt->Partitions ? np : 0;
            bool subscribed = live && t->Name.len > 0 && rn_group_is_subscribed(g, t->Name.ptr, (size_t)t->Name.len);
            for (int32_t j = 0; j < rt->Partitions_count; j++) {
                rn_OffsetDeleteResponse_OffsetDeleteResponsePartition_t *rp = &rt->Partitions[j];
                rn_OffsetDeleteResponse_OffsetDeleteResponsePartition_init(rp);
                int32_t pi = t->Partitions[j].PartitionIndex;
                rp->PartitionIndex = pi;
                if (!partition_exists(b, t->Name, pi))
                    rp->ErrorCode = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                else if (subscribed)
                    rp->ErrorCode = RN_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
                else if (rn_group_offset_get(g, t->Name.ptr, (size_t)t->Name.len, pi))
                    rn__orecords_offset(&recs, gid, t->Name, pi, NULL);
            }
        }
        rc = rn__orecords_append(c, g->partition, &recs, &dur);
        rn_irecords_free(&recs);
        if (rc) {
            offset_delete_fail(resp, (int16_t)(rc > 0 ? rc : RN_ERR_UNKNOWN_SERVER_ERROR));
        } else {
            for (int32_t i = 0; i < nt; i++)
                for (int32_t j = 0; j < resp->Topics[i].Partitions_count; j++)
                    if (!resp->Topics[i].Partitions[j].ErrorCode)
                        rn_group_offset_del(g, rq.Topics[i].Name.ptr, (size_t)rq.Topics[i].Name.len,
                                            resp->Topics[i].Partitions[j].PartitionIndex);
        }
        rn__coord_after(c, g);
    }
    pthread_mutex_unlock(&c->lock);
    count_error(b, h, resp->ErrorCode);
    respond_when_durable(b, req, h, &dur, (rn_encode_fn)rn_OffsetDeleteResponse_encode, resp, offset_delete_fail);
}
