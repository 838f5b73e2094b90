/*
 * rn_cluster_quorum.c — the metadata quorum's voter set over the Kafka protocol (KIP-853's
 * shape): DescribeQuorum (55), AddRaftVoter (80), RemoveRaftVoter (81), and the internal
 * join request a new controller sends (RN_API_RUNNEL_QUORUM_JOIN).
 *
 * The metadata leader (the active controller) answers; a broker that is not it forwards the
 * request there (rn_roles_forward), a controller that is not it answers NOT_CONTROLLER
 * (DescribeQuorum: NOT_LEADER_OR_FOLLOWER with the leader's id, as KRaft does). A change runs
 * on the quorum's member thread (rn_quorum_change) and is answered on the request's loop once
 * applied, or refused: REQUEST_TIMED_OUT while another change is under way or the new voter
 * has not caught up, DUPLICATE_VOTER, VOTER_NOT_FOUND, INCONSISTENT_CLUSTER_ID. A leader asked
 * to remove itself hands its leadership to another voter first; the member thread then sends
 * the request on to the new leader and relays its answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_client.h"
#include "rn_cluster_int.h"
#include "rn_cluster_roles.h"
#include "rn_header.h"
#include "rn_log.h"
#include "rn_logging.h"
#include "rn_quorum.h"

#define CHANGE_TIMEOUT_DEFAULT_MS 30000
#define RELAY_TIMEOUT_MS 20000

/* A voter change waiting on the member thread; answered on the request's loop. */
typedef struct {
    rn_broker_t *b;
    rn_req_t *req;
    rn_req_header_t h;
    int32_t id;
    uint8_t dir_id[16];
    rn_err_t err;
    char message[512];
} change_ctx_t;

static rn_quorum_t *quorum_of(rn_broker_t *b) { return b->cluster ? rn__cluster_quorum(b->cluster) : NULL; }

/* A ClusterId given (null or empty: not given) must be this cluster's. */
static bool cluster_id_ok(rn_broker_t *b, rn_str_t id) {
    return id.len <= 0 || ((size_t)id.len == strlen(b->cluster_id) && memcmp(id.ptr, b->cluster_id, (size_t)id.len) == 0);
}

static rn_str_t message_or_null(rn_arena_t *a, rn_err_t err, const char *msg) {
    return err && msg && msg[0] ? rn_str_dup_arena(a, msg) : RN_STR_NULL;
}

/* A broker-only node sends these on to the active controller; a member of the quorum answers
 * itself (NOT_LEADER_OR_FOLLOWER / NOT_CONTROLLER with the leader: it knows where it is). */
static bool forwarded(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    return b->cluster && !quorum_of(b) && rn_roles_forward(rn__cluster_roles(b->cluster), req, h, body);
}

/* ---- DescribeQuorum ------------------------------------------------------------------------ */

static void fill_replica(rn_DescribeQuorumResponse_ReplicaState_t *r, const rn_quorum_member_t *m) {
    rn_DescribeQuorumResponse_ReplicaState_init(r);
    r->ReplicaId = m->id;
    r->LogEndOffset = m->log_end;
    r->LastFetchTimestamp = m->last_fetch_ms;
    r->LastCaughtUpTimestamp = m->caught_up_ms;
}

static void fill_partition(rn_arena_t *a, rn_DescribeQuorumResponse_PartitionData_t *p, const rn_quorum_status_t *st) {
    p->LeaderId = st->leader;
    p->LeaderEpoch = (int32_t)st->term;
    p->HighWatermark = (int64_t)st->commit;
    p->CurrentVoters = rn_arena_calloc(a, (size_t)st->nmembers + 1, sizeof(*p->CurrentVoters));
    p->Observers = rn_arena_calloc(a, (size_t)st->nmembers + 1, sizeof(*p->Observers));
    p->CurrentVoters_count = p->Observers_count = 0;
    for (int32_t i = 0; p->CurrentVoters && p->Observers && i < st->nmembers; i++) {
        const rn_quorum_member_t *m = &st->members[i];
        if (m->voter) fill_replica(&p->CurrentVoters[p->CurrentVoters_count++], m);
        else fill_replica(&p->Observers[p->Observers_count++], m);
    }
}

/* v2: where each member listens for the quorum's traffic. */
static void fill_nodes(rn_broker_t *b, rn_arena_t *a, rn_DescribeQuorumResponse_t *resp, rn_quorum_t *q,
                       const rn_quorum_status_t *st) {
    const rn_broker_config_t *cfg = &b->cfg;
    int li = cfg->controller_listener >= 0 ? cfg->controller_listener : cfg->client_listener;
    const char *name = li >= 0 ? cfg->listeners[li].name : "CONTROLLER";
    resp->Nodes = rn_arena_calloc(a, (size_t)st->nmembers + 1, sizeof(*resp->Nodes));
    resp->Nodes_count = 0;
    for (int32_t i = 0; resp->Nodes && i < st->nmembers; i++) {
        char host[256];
        int port;
        if (!rn_quorum_address(q, st->members[i].id, host, sizeof(host), &port)) continue;
        rn_DescribeQuorumResponse_Node_t *n = &resp->Nodes[resp->Nodes_count];
        rn_DescribeQuorumResponse_Node_init(n);
        n->NodeId = st->members[i].id;
        n->Listeners = rn_arena_calloc(a, 1, sizeof(*n->Listeners));
        if (!n->Listeners) continue;
        rn_DescribeQuorumResponse_Listener_init(n->Listeners);
        n->Listeners->Name = rn_str_dup_arena(a, name);
        n->Listeners->Host = rn_str_dup_arena(a, host);
        n->Listeners->Port = (uint16_t)port;
        n->Listeners_count = 1;
        resp->Nodes_count++;
    }
}

void rn_h_describe_quorum(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_quorum_t *q = quorum_of(b);
    if (forwarded(b, req, h, body)) return;
    rn_arena_t *a = &req->arena;
    rn_DescribeQuorumRequest_t rq;
    rn_err_t err = rn_DescribeQuorumRequest_decode(body, h->api_version, a, &rq);
    if (err) {
        rn_broker_bad_request(b, req, h, err);
        return;
    }
    rn_DescribeQuorumResponse_t resp;
    rn_DescribeQuorumResponse_init(&resp);
    resp.ErrorMessage = RN_STR_NULL;
    rn_quorum_status_t st;
    memset(&st, 0, sizeof(st));
    if (q) rn_quorum_status(q, &st);
    if (!q) {
        resp.ErrorCode = b->cluster ? RN_ERR_NOT_CONTROLLER : RN_ERR_INVALID_REQUEST;
        resp.ErrorMessage = rn_str_dup_arena(a, b->cluster ? "this node is no member of the metadata quorum"
                                                           : "not a cluster node (no metadata quorum)");
    }
    resp.Topics = rn_arena_calloc(a, (size_t)(rq.Topics_count > 0 ? rq.Topics_count : 0) + 1, sizeof(*resp.Topics));
    if (!resp.Topics) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    for (int32_t t = 0; q && t < rq.Topics_count; t++) {
        const rn_DescribeQuorumRequest_TopicData_t *rt = &rq.Topics[t];
        rn_DescribeQuorumResponse_TopicData_t *ot = &resp.Topics[resp.Topics_count++];
        rn_DescribeQuorumResponse_TopicData_init(ot);
        ot->TopicName = rt->TopicName;
        ot->Partitions = rn_arena_calloc(a, (size_t)(rt->Partitions_count > 0 ? rt->Partitions_count : 0) + 1,
                                         sizeof(*ot->Partitions));
        for (int32_t i = 0; ot->Partitions && i < rt->Partitions_count; i++) {
            rn_DescribeQuorumResponse_PartitionData_t *p = &ot->Partitions[ot->Partitions_count++];
            rn_DescribeQuorumResponse_PartitionData_init(p);
            p->ErrorMessage = RN_STR_NULL;
            p->PartitionIndex = rt->Partitions[i].PartitionIndex;
            if (!rn_str_eq_cstr(rt->TopicName, RN_METADATA_TOPIC) || p->PartitionIndex != 0) {
                p->ErrorCode = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (!st.is_leader) {
                p->ErrorCode = RN_ERR_NOT_LEADER_OR_FOLLOWER;
                p->LeaderId = st.leader;
                p->LeaderEpoch = (int32_t)st.term;
            } else {
                fill_partition(a, p, &st);
            }
        }
    }
    if (q && h->api_version >= 2) fill_nodes(b, a, &resp, q, &st); /* off the leader too: where it is */
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_DescribeQuorumResponse_encode, &resp);
}

/* ---- AddRaftVoter / RemoveRaftVoter ------------------------------------------------------- */

static void change_respond_on_loop(void *arg) {
    change_ctx_t *x = arg;
    rn_arena_t *a = &x->req->arena;
    if (x->h.api_key == RN_API_ADD_RAFT_VOTER) {
        rn_AddRaftVoterResponse_t resp;
        rn_AddRaftVoterResponse_init(&resp);
        resp.ErrorCode = rn_err_wire(x->err);
        resp.ErrorMessage = message_or_null(a, x->err, x->message);
        rn_broker_respond(x->b, x->req, &x->h, (rn_encode_fn)rn_AddRaftVoterResponse_encode, &resp);
    } else {
        rn_RemoveRaftVoterResponse_t resp;
        rn_RemoveRaftVoterResponse_init(&resp);
        resp.ErrorCode = rn_err_wire(x->err);
        resp.ErrorMessage = message_or_null(a, x->err, x->message);
        rn_broker_respond(x->b, x->req, &x->h, (rn_encode_fn)rn_RemoveRaftVoterResponse_encode, &resp);
    }
    free(x);
}

/* The leader removed from the voters handed its leadership on: the new leader removes it
 * (member thread; bounded). */
static void relay_remove(change_ctx_t *x, rn_quorum_t *q, int32_t leader) {
    char host[256];
    int port;
    if (leader < 0 || !rn_quorum_address(q, leader, host, sizeof(host), &port)) return;
    rn_client_config_t cc = {.host = host, .port = port, .client_id = "runnel-quorum", .timeout_ms = RELAY_TIMEOUT_MS};
    rn_client_t *cl;
    if (rn_client_new(&cc, &cl)) return;
    rn_RemoveRaftVoterRequest_t rq;
    rn_RemoveRaftVoterRequest_init(&rq);
    rq.ClusterId = rn_str_from_cstr(x->b->cluster_id);
    rq.VoterId = x->id;
    memcpy(rq.VoterDirectoryId, x->dir_id, 16);
    rn_buf_t body, out;
    rn_buf_init(&body, 4096);
    rn_buf_init(&out, 1 << 20);
    rn_RemoveRaftVoterRequest_encode(&body, 0, &rq);
    rn_err_t err = rn_client_call(cl, RN_API_REMOVE_RAFT_VOTER, 0, &body, &out);
    rn_arena_t a;
    rn_arena_init(&a, 1 << 20);
    rn_RemoveRaftVoterResponse_t resp;
    rn_reader_t rd;
    rn_reader_init(&rd, out.data, out.len);
    if (!err) err = rn_RemoveRaftVoterResponse_decode(&rd, 0, &a, &resp);
    if (!err) {
        x->err = (rn_err_t)resp.ErrorCode;
        snprintf(x->message, sizeof(x->message), "%.*s", resp.ErrorMessage.len > 0 ? (int)resp.ErrorMessage.len : 0,
                 resp.ErrorMessage.ptr ? resp.ErrorMessage.ptr : "");
    } else {
        RN_WARN("quorum", "relaying RemoveRaftVoter to node %d failed: %s", leader, rn_err_name(err));
    }
    rn_arena_reset(&a);
    rn_buf_free(&body);
    rn_buf_free(&out);
    rn_client_free(cl);
}

static void change_done(void *arg, rn_err_t err, int32_t leader, const char *message) {
    change_ctx_t *x = arg;
    x->err = err;
    snprintf(x->message, sizeof(x->message), "%s", message ? message : "");
    rn_quorum_t *q = quorum_of(x->b);
    if (err == RN_ERR_NOT_LEADER_OR_FOLLOWER && x->h.api_key == RN_API_REMOVE_RAFT_VOTER && q &&
        leader != x->b->cfg.node_id)
        relay_remove(x, q, leader);
    if (x->err == RN_ERR_NOT_LEADER_OR_FOLLOWER) x->err = RN_ERR_NOT_CONTROLLER; /* the admin client's retry */
    rn_loop_post(x->req->loop, change_respond_on_loop, x);
}

/* Common to both: forwarding, checks, then the change. */
static void change_start(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_quorum_op_t op, rn_str_t cluster,
                         int32_t id, const uint8_t dir_id[16], const char *host, int port, int64_t timeout_ms) {
    change_ctx_t *x = calloc(1, sizeof(*x));
    if (!x) {
        rn_broker_bad_request(b, req, h, RN_ERR_NOMEM);
        return;
    }
    *x = (change_ctx_t){.b = b, .req = req, .h = *h, .id = id};
    memcpy(x->dir_id, dir_id, 16);
    rn_quorum_t *q = quorum_of(b);
    if (!cluster_id_ok(b, cluster)) {
        x->err = RN_ERR_INCONSISTENT_CLUSTER_ID;
        snprintf(x->message, sizeof(x->message), "this is cluster %s", b->cluster_id);
    } else if (!q) {
        x->err = b->cluster ? RN_ERR_NOT_CONTROLLER : RN_ERR_INVALID_REQUEST;
        snprintf(x->message, sizeof(x->message), "%s", b->cluster ? "this node is no member of the metadata quorum"
                                                                  : "not a cluster node (no metadata quorum)");
    } else {
        /* Once taken, x belongs to the member thread (change_done may run before this returns). */
        rn_err_t err = rn_quorum_change(q, op, id, host, port, timeout_ms, change_done, x);
        if (!err) return;
        x->err = err;
        if (x->err == RN_ERR_REQUEST_TIMED_OUT)
            snprintf(x->message, sizeof(x->message), "another voter change is under way; one at a time");
        else if (x->err == RN_ERR_NOT_LEADER_OR_FOLLOWER)
            snprintf(x->message, sizeof(x->message), "node %d is not the metadata leader (node %d is)", b->cfg.node_id,
                     rn_quorum_leader(q));
        if (x->err == RN_ERR_NOT_LEADER_OR_FOLLOWER) x->err = RN_ERR_NOT_CONTROLLER;
    }
    change_respond_on_loop(x);
}


void rn_h_add_raft_voter(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    if (forwarded(b, req, h, body)) return;
    rn_AddRaftVoterRequest_t rq;
    rn_err_t err = rn_AddRaftVoterRequest_decode(body, h->api_version, &req->arena, &rq);
    if (err) {
        rn_broker_bad_request(b, req, h, err);
        return;
    }
    char host[256] = "";
    int port = 0;
    if (rq.Listeners_count > 0 && rq.Listeners[0].Host.len > 0 && rq.Listeners[0].Host.len < (int32_t)sizeof(host)) {
        snprintf(host, sizeof(host), "%.*s", (int)rq.Listeners[0].Host.len, rq.Listeners[0].Host.ptr);
        port = rq.Listeners[0].Port;
    }
    change_start(b, req, h, RN_QUORUM_ADD_VOTER, rq.ClusterId, rq.VoterId, rq.VoterDirectoryId, host, port,
                 rq.TimeoutMs > 0 ? rq.TimeoutMs : CHANGE_TIMEOUT_DEFAULT_MS);
}

void rn_h_remove_raft_voter(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    if (forwarded(b, req, h, body)) return;
    rn_RemoveRaftVoterRequest_t rq;
    rn_err_t err = rn_RemoveRaftVoterRequest_decode(body, h->api_version, &req->arena, &rq);
    if (err) {
        rn_broker_bad_request(b, req, h, err);
        return;
    }
    change_start(b, req, h, RN_QUORUM_REMOVE_VOTER, rq.ClusterId, rq.VoterId, rq.VoterDirectoryId, NULL, 0,
                 CHANGE_TIMEOUT_DEFAULT_MS);
}

/* ---- joining ---------------------------------------------------------------------------- */

void rn_cluster_quorum_join_config(rn_broker_t *b, const rn_cluster_roles_t *roles, rn_quorum_config_t *qcfg) {
    qcfg->cluster_id = roles->join ? NULL : b->cluster_id; /* a joining node learns the quorum's */
    qcfg->join = roles->join;
    qcfg->nbootstrap = roles->nbootstrap;
    memcpy(qcfg->bootstrap, roles->bootstrap, sizeof(qcfg->bootstrap));
    /* Where the others reach this node's Raft: its controller listener, else its only one. */
    const rn_broker_config_t *cfg = &b->cfg;
    int li = cfg->controller_listener >= 0 ? cfg->controller_listener : cfg->client_listener;
    if (li < 0) return;
    const rn_listener_t *l = &cfg->listeners[li];
    snprintf(qcfg->self_host, sizeof(qcfg->self_host), "%s", l->adv_host[0] ? l->adv_host : l->host);
    qcfg->self_port = l->adv_port ? l->adv_port : l->port;
}

void rn_h_runnel_quorum_join(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_quorum_t *q = quorum_of(b);
    rn_buf_t out;
    rn_buf_init(&out, 1 << 20);
    rn_resp_header_encode(&out, h->api_key, h->api_version, h->correlation_id);
    rn_err_t err = q ? rn_quorum_handle_join(q, body->p + body->pos, rn_reader_remaining(body), &out)
                     : RN_ERR_INVALID_REQUEST;
    if (err) {
        rn_buf_free(&out);
        rn_broker_bad_request(b, req, h, err);
        return;
    }
    rn_req_respond(req, &out);
    rn_buf_free(&out);
}
