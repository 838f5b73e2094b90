/*
 * rn_cli_cluster.c — `runnel cluster info`: the cluster id, the controller,
 * the brokers and how many topics and partitions there are, from one
 * Metadata request (librdkafka 2.0.2 has no DescribeCluster admin call).
 *
 * `runnel cluster quorum | add-controller | remove-controller`: the metadata
 * quorum's voter set (DescribeQuorum, AddRaftVoter, RemoveRaftVoter). librdkafka
 * has none of these calls, so they go through Runnel's own blocking client
 * (rn_client) with the generated codec: DescribeQuorum to each bootstrap server
 * in turn until one answers, following NOT_LEADER_OR_FOLLOWER to the leader
 * (whose address the answer's Nodes give); the changes then go to the leader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_cli.h"
#include "rn_cli_common.h"
#include "rn_client.h"
#include "rn_clock.h"
#include "rn_err.h"
#include "rn_msg_gen.h"

static const char INFO_USAGE[] =
    "usage: runnel cluster info [options]\n"
    "\n"
    "Show the cluster id, the controller and the brokers.\n"
    "\n"
    "options:\n"
    "      --json                       JSON: {cluster_id, controller, brokers: [{id, host, port}],\n"
    "                                   topics, partitions}\n" RN_CLI_COMMON_HELP;

static int broker_cmp(const void *a, const void *b) {
    int32_t x = ((const struct rd_kafka_metadata_broker *)a)->id, y = ((const struct rd_kafka_metadata_broker *)b)->id;
    return (x > y) - (x < y);
}

static int cluster_info(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel cluster info", INFO_USAGE);
    int status = rn_cli_common_only(&c, argc, argv);
    if (status >= 0) return status;
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    if (rc == RN_CLI_OK) {
        char *cluster_id = rd_kafka_clusterid(rk, c.timeout_ms);
        int32_t controller = rd_kafka_controllerid(rk, c.timeout_ms);
        struct rd_kafka_metadata_broker *brokers = calloc((size_t)md->broker_cnt + 1, sizeof(*brokers));
        if (brokers) {
            memcpy(brokers, md->brokers, (size_t)md->broker_cnt * sizeof(*brokers));
            qsort(brokers, (size_t)md->broker_cnt, sizeof(*brokers), broker_cmp);
        }
        long partitions = 0;
        for (int i = 0; i < md->topic_cnt; i++) partitions += md->topics[i].partition_cnt;
        if (c.json) {
            rn_cli_json_t j;
            rn_cli_json_init(&j, stdout);
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "cluster_id");
            rn_cli_json_str(&j, cluster_id);
            rn_cli_json_key(&j, "controller");
            if (controller >= 0) rn_cli_json_int(&j, controller);
            else rn_cli_json_null(&j);
            rn_cli_json_key(&j, "brokers");
            rn_cli_json_arr(&j);
            for (int i = 0; brokers && i < md->broker_cnt; i++) {
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "id");
                rn_cli_json_int(&j, brokers[i].id);
                rn_cli_json_key(&j, "host");
                rn_cli_json_str(&j, brokers[i].host);
                rn_cli_json_key(&j, "port");
                rn_cli_json_int(&j, brokers[i].port);
                rn_cli_json_obj_end(&j);
            }
            rn_cli_json_arr_end(&j);
            rn_cli_json_key(&j, "topics");
            rn_cli_json_int(&j, md->topic_cnt);
            rn_cli_json_key(&j, "partitions");
            rn_cli_json_int(&j, partitions);
            rn_cli_json_obj_end(&j);
            rn_cli_json_end(&j);
        } else {
            printf("cluster id: %s\n", cluster_id ? cluster_id : "(none)");
            if (controller >= 0) printf("controller: broker %d\n", controller);
            else printf("controller: (unknown)\n");
            printf("topics:     %d (%ld partitions)\n\n", md->topic_cnt, partitions);
            rn_cli_table_t t;
            rn_cli_table_init(&t, 4, "BROKER", "HOST", "PORT", "ROLE");
            for (int i = 0; brokers && i < md->broker_cnt; i++) {
                rn_cli_table_add(&t, "%d", brokers[i].id);
                rn_cli_table_add(&t, "%s", brokers[i].host);
                rn_cli_table_add(&t, "%d", brokers[i].port);
                rn_cli_table_add(&t, "%s", brokers[i].id == controller ? "controller" : "");
            }
            rn_cli_table_print(&t, stdout);
            rn_cli_table_free(&t);
        }
        free(brokers);
        if (cluster_id) rd_kafka_mem_free(rk, cluster_id);
        rd_kafka_metadata_destroy(md);
    }
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- the metadata quorum ------------------------------------------------------------------ */

#define QUORUM_TOPIC "__cluster_metadata"

typedef struct {
    rn_arena_t arena;
    rn_DescribeQuorumResponse_t resp;
    const rn_DescribeQuorumResponse_PartitionData_t *p; /* the metadata partition */
    char host[256];                                     /* who answered */
    int port;
} quorum_view_t;

/* One call to host:port; the response body is copied into the arena and decoded there (its
 * strings borrow it). */
static rn_err_t raw_call(rn_cli_t *c, const char *host, int port, int16_t api, int16_t version, const rn_buf_t *body,
                         rn_arena_t *arena, void **msg) {
    /* A change may take the whole --timeout on the server (a new voter catching up): wait longer. */
    rn_client_config_t cc = {.host = host, .port = port, .client_id = "runnel-cli",
                             .timeout_ms = (int64_t)c->timeout_ms + 5000};
    rn_client_t *cl;
    rn_err_t err = rn_client_new(&cc, &cl);
    if (err) return err;
    rn_buf_t out;
    rn_buf_init(&out, 16 << 20);
    err = rn_client_call(cl, api, version, body, &out);
    uint8_t *copy = err ? NULL : rn_arena_alloc(arena, out.len + 1);
    if (!err && !copy) err = RN_ERR_LIMIT;
    rn_reader_t rd;
    if (copy) memcpy(copy, out.data, out.len);
    rn_reader_init(&rd, copy, copy ? out.len : 0);
    if (!err) err = rn_msg_decode_any(api, true, version, &rd, arena, msg);
    rn_buf_free(&out);
    rn_client_free(cl);
    return err;
}

static bool split_hostport(const char *s, size_t n, char *host, size_t hostlen, int *port) {
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':') colon = s + i;
    if (!colon || colon == s) return false;
    int64_t p;
    char num[16];
    size_t nl = (size_t)(s + n - colon - 1);
    if (nl == 0 || nl >= sizeof(num)) return false;
    memcpy(num, colon + 1, nl);
    num[nl] = 0;
    if (!rn_cli_parse_int(num, 1, 65535, &p)) return false;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') { /* [IPv6] */
        s++;
        hl -= 2;
    }
    snprintf(host, hostlen, "%.*s", (int)hl, s);
    *port = (int)p;
    return true;
}

static rn_err_t describe_at(rn_cli_t *c, const char *host, int port, quorum_view_t *v) {
    rn_DescribeQuorumRequest_t rq;
    rn_DescribeQuorumRequest_init(&rq);
    rn_DescribeQuorumRequest_TopicData_t t;
    rn_DescribeQuorumRequest_TopicData_init(&t);
    rn_DescribeQuorumRequest_PartitionData_t pd;
    rn_DescribeQuorumRequest_PartitionData_init(&pd);
    pd.PartitionIndex = 0;
    t.TopicName = RN_STR_LIT(QUORUM_TOPIC);
    t.Partitions = &pd;
    t.Partitions_count = 1;
    rq.Topics = &t;
    rq.Topics_count = 1;
    rn_buf_t body;
    rn_buf_init(&body, 4096);
    rn_DescribeQuorumRequest_encode(&body, 2, &rq);
    void *msg = NULL;
    rn_arena_reset(&v->arena);
    rn_err_t err = raw_call(c, host, port, RN_API_DESCRIBE_QUORUM, 2, &body, &v->arena, &msg);
    rn_buf_free(&body);
    if (err) return err;
    v->resp = *(rn_DescribeQuorumResponse_t *)msg;
    v->p = v->resp.Topics_count > 0 && v->resp.Topics[0].Partitions_count > 0 ? &v->resp.Topics[0].Partitions[0]
                                                                                : NULL;
    snprintf(v->host, sizeof(v->host), "%s", host);
    v->port = port;
    if (v->resp.ErrorCode) return (rn_err_t)v->resp.ErrorCode;
    return v->p ? (rn_err_t)v->p->ErrorCode : RN_ERR_MALFORMED;
}

static bool node_address(const quorum_view_t *v, int32_t id, char *host, size_t hostlen, int *port) {
    for (int32_t i = 0; i < v->resp.Nodes_count; i++) {
        const rn_DescribeQuorumResponse_Node_t *n = &v->resp.Nodes[i];
        if (n->NodeId != id || n->Listeners_count < 1 || n->Listeners[0].Host.len <= 0) continue;
        snprintf(host, hostlen, "%.*s", (int)n->Listeners[0].Host.len, n->Listeners[0].Host.ptr);
        *port = n->Listeners[0].Port;
        return true;
    }
    return false;
}

/* DescribeQuorum from the leader: each bootstrap server in turn, then the leader it names. */
static int describe_quorum(rn_cli_t *c, quorum_view_t *v) {
    rn_arena_init(&v->arena, 16 << 20);
    const char *s = c->bootstrap;
    rn_err_t last = RN_ERR_IO;
    char first[300] = "";
    int64_t deadline = rn_clock_mono_ms() + c->timeout_ms;
    while (s && *s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        char host[256];
        int port;
        if (!split_hostport(s, n, host, sizeof(host), &port))
            return rn_cli_usage_error(c, "--bootstrap: '%.*s' is not host:port", (int)n, s);
        if (!first[0]) snprintf(first, sizeof(first), "%s:%d", host, port);
        for (int hops = 0; hops < 5; hops++) {
            last = describe_at(c, host, port, v);
            if (last != RN_ERR_NOT_LEADER_OR_FOLLOWER && last != RN_ERR_NOT_CONTROLLER) break;
            int32_t leader = v->p ? v->p->LeaderId : -1;
            if (leader >= 0 && node_address(v, leader, host, sizeof(host), &port)) continue;
            if (rn_clock_mono_ms() >= deadline) break;
            struct timespec ts = {0, 200 * 1000000}; /* no leader yet: ask again */
            nanosleep(&ts, NULL);
        }
        if (!last) return RN_CLI_OK;
        if (last != RN_ERR_IO) break;
        s = comma ? comma + 1 : NULL;
    }
    if (last == RN_ERR_IO) return rn_cli_fail(c, "cannot reach %s (or any other bootstrap server)", first);
    if (v->resp.ErrorMessage.len > 0)
        return rn_cli_fail(c, "the metadata quorum: %.*s", (int)v->resp.ErrorMessage.len, v->resp.ErrorMessage.ptr);
    return rn_cli_fail(c, "the metadata quorum: %s", rn_err_name(last));
}

static void age(char *out, size_t cap, int64_t ms, int64_t now) {
    if (ms < 0) snprintf(out, cap, "-");
    else if (now - ms < 1000) snprintf(out, cap, "%lld ms ago", (long long)(now - ms > 0 ? now - ms : 0));
    else snprintf(out, cap, "%.1f s ago", (double)(now - ms) / 1000.0);
}

static void json_replicas(rn_cli_json_t *j, const quorum_view_t *v, const rn_DescribeQuorumResponse_ReplicaState_t *r,
                          int32_t n) {
    rn_cli_json_arr(j);
    for (int32_t i = 0; i < n; i++) {
        rn_cli_json_obj(j);
        rn_cli_json_key(j, "id");
        rn_cli_json_int(j, r[i].ReplicaId);
        rn_cli_json_key(j, "log_end_offset");
        rn_cli_json_int(j, r[i].LogEndOffset);
        rn_cli_json_key(j, "lag");
        if (r[i].LogEndOffset >= 0) rn_cli_json_int(j, v->p->HighWatermark - r[i].LogEndOffset);
        else rn_cli_json_null(j);
        rn_cli_json_key(j, "last_fetch_timestamp");
        rn_cli_json_int(j, r[i].LastFetchTimestamp);
        rn_cli_json_key(j, "last_caught_up_timestamp");
        rn_cli_json_int(j, r[i].LastCaughtUpTimestamp);
        char host[256];
        int port;
        if (node_address(v, r[i].ReplicaId, host, sizeof(host), &port)) {
            rn_cli_json_key(j, "host");
            rn_cli_json_str(j, host);
            rn_cli_json_key(j, "port");
            rn_cli_json_int(j, port);
        }
        rn_cli_json_obj_end(j);
    }
    rn_cli_json_arr_end(j);
}

static void table_replicas(rn_cli_table_t *t, const quorum_view_t *v,
                           const rn_DescribeQuorumResponse_ReplicaState_t *r, int32_t n, bool voters) {
    int64_t now = rn_clock_wall_ms();
    for (int32_t i = 0; i < n; i++) {
        char host[256], fetch[32], caught[32];
        int port = 0;
        bool addr = node_address(v, r[i].ReplicaId, host, sizeof(host), &port);
        age(fetch, sizeof(fetch), r[i].LastFetchTimestamp, now);
        age(caught, sizeof(caught), r[i].LastCaughtUpTimestamp, now);
        rn_cli_table_add(t, "%d", r[i].ReplicaId);
        rn_cli_table_add(t, "%s", !voters ? "observer" : r[i].ReplicaId == v->p->LeaderId ? "leader" : "voter");
        rn_cli_table_add(t, "%lld", (long long)r[i].LogEndOffset);
        if (r[i].LogEndOffset >= 0) rn_cli_table_add(t, "%lld", (long long)(v->p->HighWatermark - r[i].LogEndOffset));
        else rn_cli_table_add(t, "-");
        rn_cli_table_add(t, "%s", fetch);
        rn_cli_table_add(t, "%s", caught);
        if (addr) rn_cli_table_add(t, "%s:%d", host, port);
        else rn_cli_table_add(t, "-");
    }
}

static const char QUORUM_USAGE[] =
    "usage: runnel cluster quorum [options]\n"
    "\n"
    "Show the metadata quorum: its leader (the active controller), epoch and high watermark,\n"
    "the voters and the observers (controllers replicating the log that are not voters yet),\n"
    "each with its log end offset, lag and when it last fetched and was caught up.\n"
    "\n"
    "options:\n"
    "      --json                       JSON: {leader, epoch, high_watermark, voters: [...],\n"
    "                                   observers: [...]}, each {id, log_end_offset, lag,\n"
    "                                   last_fetch_timestamp, last_caught_up_timestamp, host, port}\n" RN_CLI_COMMON_HELP;

static int cluster_quorum(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel cluster quorum", QUORUM_USAGE);
    int status = rn_cli_common_only(&c, argc, argv);
    if (status >= 0) return status;
    quorum_view_t v;
    memset(&v, 0, sizeof(v));
    int rc = describe_quorum(&c, &v);
    if (rc == RN_CLI_OK && c.json) {
        rn_cli_json_t j;
        rn_cli_json_init(&j, stdout);
        rn_cli_json_obj(&j);
        rn_cli_json_key(&j, "leader");
        rn_cli_json_int(&j, v.p->LeaderId);
        rn_cli_json_key(&j, "epoch");
        rn_cli_json_int(&j, v.p->LeaderEpoch);
        rn_cli_json_key(&j, "high_watermark");
        rn_cli_json_int(&j, v.p->HighWatermark);
        rn_cli_json_key(&j, "voters");
        json_replicas(&j, &v, v.p->CurrentVoters, v.p->CurrentVoters_count);
        rn_cli_json_key(&j, "observers");
        json_replicas(&j, &v, v.p->Observers, v.p->Observers_count);
        rn_cli_json_obj_end(&j);
        rn_cli_json_end(&j);
    } else if (rc == RN_CLI_OK) {
        printf("leader:         %d\nepoch:          %d\nhigh watermark: %lld\n\n", v.p->LeaderId, v.p->LeaderEpoch,
               (long long)v.p->HighWatermark);
        rn_cli_table_t t;
        rn_cli_table_init(&t, 7, "NODE", "ROLE", "LOG END", "LAG", "LAST FETCH", "CAUGHT UP", "ADDRESS");
        table_replicas(&t, &v, v.p->CurrentVoters, v.p->CurrentVoters_count, true);
        table_replicas(&t, &v, v.p->Observers, v.p->Observers_count, false);
        rn_cli_table_print(&t, stdout);
        rn_cli_table_free(&t);
    }
    rn_arena_reset(&v.arena);
    rn_cli_free(&c);
    return rc;
}

static const char ADD_USAGE[] =
    "usage: runnel cluster add-controller NODE_ID [options]\n"
    "\n"
    "Make a controller a voter of the metadata quorum (AddRaftVoter). Start it first with\n"
    "process.roles=controller (or broker,controller) and controller.quorum.bootstrap.servers\n"
    "naming the quorum: it joins as an observer and replicates the metadata log; it is\n"
    "promoted once it has caught up (else REQUEST_TIMED_OUT). One change at a time.\n"
    "\n"
    "options:\n"
    "      --listener HOST:PORT         where the quorum reaches it (default: the address it\n"
    "                                   joined with)\n" RN_CLI_COMMON_HELP;

static const char REMOVE_USAGE[] =
    "usage: runnel cluster remove-controller NODE_ID [options]\n"
    "\n"
    "Remove a voter from the metadata quorum (RemoveRaftVoter). The leader removing itself\n"
    "hands its leadership to another voter first; a removed node still running stays an\n"
    "observer, and removing an observer (one that has gone) takes it out altogether.\n"
    "One change at a time.\n"
    "\n" RN_CLI_COMMON_HELP;

static int voter_change(int argc, char **argv, bool add) {
    rn_cli_t c;
    rn_cli_init(&c, add ? "runnel cluster add-controller" : "runnel cluster remove-controller",
                add ? ADD_USAGE : REMOVE_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    int64_t id = -1;
    const char *listener = NULL;
    while (rn_cli_next(&a)) {
        if (a.positional) {
            if (id >= 0 || !rn_cli_parse_int(a.arg, 0, INT32_MAX, &id)) {
                a.status = rn_cli_usage_error(&c, "'%s': one node id (a whole number) expected", a.arg);
                break;
            }
        } else if (add && rn_cli_is(&a, 0, "listener")) {
            if (!rn_cli_value(&a, &listener)) break;
        } else if (!rn_cli_common(&a, false)) {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && id < 0) a.status = rn_cli_usage_error(&c, "which node? give its node id");
    char lhost[256] = "";
    int lport = 0;
    if (a.status < 0 && listener && !split_hostport(listener, strlen(listener), lhost, sizeof(lhost), &lport))
        a.status = rn_cli_usage_error(&c, "--listener: '%s' is not host:port", listener);
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    quorum_view_t v;
    memset(&v, 0, sizeof(v));
    int rc = describe_quorum(&c, &v);
    char host[256];
    int port;
    if (rc == RN_CLI_OK && !node_address(&v, v.p->LeaderId, host, sizeof(host), &port)) {
        snprintf(host, sizeof(host), "%s", v.host); /* the one that answered (it forwarded) */
        port = v.port;
    }
    rn_buf_t body;
    rn_buf_init(&body, 4096);
    int16_t api = add ? RN_API_ADD_RAFT_VOTER : RN_API_REMOVE_RAFT_VOTER;
    if (add) {
        rn_AddRaftVoterRequest_t rq;
        rn_AddRaftVoterRequest_init(&rq);
        rn_AddRaftVoterRequest_Listener_t l;
        rn_AddRaftVoterRequest_Listener_init(&l);
        rq.ClusterId = RN_STR_NULL;
        rq.TimeoutMs = c.timeout_ms;
        rq.VoterId = (int32_t)id;
        if (lhost[0]) {
            l.Name = RN_STR_LIT("CONTROLLER");
            l.Host = rn_str_from_cstr(lhost);
            l.Port = (uint16_t)lport;
            rq.Listeners = &l;
            rq.Listeners_count = 1;
        }
        rn_AddRaftVoterRequest_encode(&body, 0, &rq);
    } else {
        rn_RemoveRaftVoterRequest_t rq;
        rn_RemoveRaftVoterRequest_init(&rq);
        rq.ClusterId = RN_STR_NULL;
        rq.VoterId = (int32_t)id;
        rn_RemoveRaftVoterRequest_encode(&body, 0, &rq);
    }
    void *msg = NULL;
    rn_err_t err = rc == RN_CLI_OK ? raw_call(&c, host, port, api, 0, &body, &v.arena, &msg) : RN_OK;
    if (rc == RN_CLI_OK && err) {
        rc = rn_cli_fail(&c, "cannot reach the active controller at %s:%d: %s", host, port, rn_err_name(err));
    } else if (rc == RN_CLI_OK) {
        /* Both responses begin ThrottleTimeMs, ErrorCode, ErrorMessage. */
        const rn_AddRaftVoterResponse_t *r = msg;
        if (r->ErrorCode)
            rc = rn_cli_fail(&c, "%s node %lld: %s%s%.*s", add ? "adding" : "removing", (long long)id,
                             rn_err_name((rn_err_t)r->ErrorCode), r->ErrorMessage.len > 0 ? ": " : "",
                             r->ErrorMessage.len > 0 ? (int)r->ErrorMessage.len : 0,
                             r->ErrorMessage.ptr ? r->ErrorMessage.ptr : "");
        else
            printf("node %lld %s\n", (long long)id, add ? "is a voter" : "is out of the voters");
    }
    rn_buf_free(&body);
    rn_arena_reset(&v.arena);
    rn_cli_free(&c);
    return rc;
}

static int cluster_add_controller(int argc, char **argv) { return voter_change(argc, argv, true); }
static int cluster_remove_controller(int argc, char **argv) { return voter_change(argc, argv, false); }

int rn_cli_cluster(int argc, char **argv) {
    static const rn_cli_verb_t verbs[] = {
        {"info", "cluster id, controller and brokers", cluster_info},
        {"quorum", "the metadata quorum: leader, voters, observers and their lag", cluster_quorum},
        {"add-controller", "make a controller that replicates the metadata log a voter", cluster_add_controller},
        {"remove-controller", "remove a voter from the metadata quorum", cluster_remove_controller},
        {NULL, NULL, NULL},
    };
    return rn_cli_verbs("runnel cluster", "Look at the cluster and change its metadata quorum.", verbs, argc, argv);
}
