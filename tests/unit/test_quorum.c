/*
 * test_quorum.c — the metadata quorum runtime (src/cluster/rn_quorum.c):
 * three nodes in one process, each with its store in a temp dir and an rn_net
 * server that hands Raft messages to rn_quorum_deliver_batch, over loopback.
 * The state machine is a log of the applied entries, compared across nodes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rn_clock.h"
#include "rn_header.h"
#include "rn_net.h"
#include "rn_quorum.h"
#include "rn_test.h"
#include "test_net_util.h"

#define N 3
#define API_RAFT 30001
#define MAX_APPLIED 4096

typedef struct {
    int32_t id;
    char dir[300];
    rn_net_t *net;
    int port;
    rn_quorum_t *q;
    pthread_mutex_t lock;
    uint32_t applied[MAX_APPLIED]; /* the value in each applied entry, in order */
    int napplied;
} node_t;

static node_t nodes[N];
static char base[256];

static void on_request(void *ctx, rn_req_t *req) {
    node_t *n = ctx;
    rn_reader_t r;
    rn_reader_init(&r, req->frame, req->frame_len);
    rn_req_header_t h;
    if (!rn_req_header_decode(&r, &h) && h.api_key == RN_API_RUNNEL_QUORUM_JOIN && n->q) {
        rn_buf_t out;
        rn_buf_init(&out, 1 << 20);
        rn_resp_header_encode(&out, h.api_key, h.api_version, h.correlation_id);
        if (rn_quorum_handle_join(n->q, req->frame + r.pos, rn_reader_remaining(&r), &out) == RN_OK)
            rn_req_respond(req, &out);
        else
            rn_req_close(req, "bad join request");
        rn_buf_free(&out);
        return;
    }
    if (h.api_key != API_RAFT || !n->q ||
        rn_quorum_deliver_batch(n->q, req->frame + r.pos, rn_reader_remaining(&r))) {
        rn_req_close(req, "not a Raft batch");
        return;
    }
    tn_respond_empty(req, &h);
}

static void sm_apply(void *arg, uint64_t index, const uint8_t *data, size_t len) {
    node_t *n = arg;
    pthread_mutex_lock(&n->lock);
    if (len == 4 && n->napplied < MAX_APPLIED) n->applied[n->napplied++] = (uint32_t)rn_load_be32(data);
    pthread_mutex_unlock(&n->lock);
}

/* Snapshot = the applied list. */
static rn_err_t sm_take(void *arg, uint64_t index, rn_buf_t *out) {
    node_t *n = arg;
    pthread_mutex_lock(&n->lock);
    rn_buf_put_u32(out, (uint32_t)n->napplied);
    for (int i = 0; i < n->napplied; i++) rn_buf_put_u32(out, n->applied[i]);
    pthread_mutex_unlock(&n->lock);
    return rn_buf_err(out);
}

static rn_err_t sm_load(void *arg, uint64_t index, const uint8_t *data, size_t len) {
    node_t *n = arg;
    rn_reader_t r;
    rn_reader_init(&r, data, len);
    uint32_t cnt = rn_reader_u32(&r);
    if (cnt > MAX_APPLIED) return RN_ERR_CORRUPT;
    pthread_mutex_lock(&n->lock);
    n->napplied = (int)cnt;
    for (uint32_t i = 0; i < cnt; i++) n->applied[i] = rn_reader_u32(&r);
    pthread_mutex_unlock(&n->lock);
    return rn_reader_err(&r);
}

static void net_start(node_t *n) {
    rn_net_config_t nc = {.host = "127.0.0.1", .port = n->port, .threads = 1};
    rn_net_handler_t hd = {on_request, n, NULL};
    ASSERT_EQ(rn_net_new(&n->net, &nc, hd), RN_OK);
    ASSERT_EQ(rn_net_start(n->net), RN_OK);
    n->port = rn_net_port(n->net);
}

static void quorum_start(node_t *n) {
    rn_quorum_config_t qc = {.node_id = n->id, .dir = n->dir, .api_key = API_RAFT, .election_timeout_ms = 300,
                             .heartbeat_ms = 50, .apply = sm_apply, .snapshot_take = sm_take,
                             .snapshot_load = sm_load, .arg = n};
    char voters[512] = "", err[256];
    for (int i = 0; i < N; i++) {
        char one[64];
        snprintf(one, sizeof(one), "%s%d@127.0.0.1:%d", i ? "," : "", nodes[i].id, nodes[i].port);
        strcat(voters, one);
    }
    ASSERT_EQ(rn_quorum_parse_voters(voters, &qc, err, sizeof(err)), RN_OK);
    pthread_mutex_lock(&n->lock);
    n->napplied = 0; /* a restart applies again from the snapshot on */
    pthread_mutex_unlock(&n->lock);
    ASSERT_EQ(rn_quorum_start(&qc, &n->q), RN_OK);
}

static void cluster_start(void) {
    snprintf(base, sizeof(base), "/tmp/rn_test_quorum_XXXXXX");
    ASSERT_TRUE(mkdtemp(base) != NULL);
    for (int i = 0; i < N; i++) {
        node_t *n = &nodes[i];
        memset(n, 0, sizeof(*n));
        n->id = i + 1;
        pthread_mutex_init(&n->lock, NULL);
        snprintf(n->dir, sizeof(n->dir), "%s/n%d", base, n->id);
        net_start(n);
    }
    for (int i = 0; i < N; i++) quorum_start(&nodes[i]);
}

static void cluster_stop(void) {
    for (int i = 0; i < N; i++) {
        if (nodes[i].net) {
            rn_net_stop(nodes[i].net);
            rn_net_free(nodes[i].net);
        }
        rn_quorum_stop(nodes[i].q);
        nodes[i].q = NULL;
        nodes[i].net = NULL;
        pthread_mutex_destroy(&nodes[i].lock);
    }
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", base);
}

/* The node that leads, once all running nodes agree (-1 on timeout). */
static int32_t await_leader(int64_t ms) {
    for (int64_t end = rn_clock_mono_ms() + ms; rn_clock_mono_ms() < end; usleep(5000)) {
        for (int i = 0; i < N; i++)
            if (nodes[i].q && rn_quorum_is_leader(nodes[i].q)) return nodes[i].id;
    }
    return -1;
}

/* Proposes v through whichever node leads, following hints; RN_OK once applied there. */
static rn_err_t propose(uint32_t v) {
    uint8_t d[4];
    rn_store_be32(d, v);
    for (int attempt = 0; attempt < 200; attempt++) {
        int32_t leader = await_leader(3000);
        if (leader < 0) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
        uint64_t index;
        int32_t hint;
        rn_err_t err = rn_quorum_propose(nodes[leader - 1].q, d, 4, 2000, &index, &hint);
        if (err == RN_OK) return RN_OK;
        usleep(20000);
    }
    return RN_ERR_REQUEST_TIMED_OUT;
}

static int applied_count(node_t *n) {
    pthread_mutex_lock(&n->lock);
    int c = n->napplied;
    pthread_mutex_unlock(&n->lock);
    return c;
}

static bool all_applied(int count, int64_t ms) {
    for (int64_t end = rn_clock_mono_ms() + ms; rn_clock_mono_ms() < end; usleep(5000)) {
        bool ok = true;
        for (int i = 0; i < N; i++) ok &= !nodes[i].q || applied_count(&nodes[i]) >= count;
        if (ok) return true;
    }
    return false;
}

static void assert_same_history(void) {
    for (int i = 1; i < N; i++) {
        if (!nodes[i].q) continue;
        int c = applied_count(&nodes[i]) < applied_count(&nodes[0]) ? applied_count(&nodes[i]) : applied_count(&nodes[0]);
        ASSERT_MEMEQ(nodes[i].applied, nodes[0].applied, (size_t)c * 4);
    }
}

RN_TEST(quorum_elects_a_leader_and_replicates_in_order) {
    cluster_start();
    ASSERT_GT(await_leader(5000), 0);
    for (uint32_t v = 0; v < 200; v++) ASSERT_EQ(propose(v), RN_OK);
    ASSERT_TRUE(all_applied(200, 5000));
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 200; k++) ASSERT_EQ(nodes[i].applied[k], (uint32_t)k);
    /* A follower refuses at once, naming the leader. */
    int32_t leader = await_leader(1000);
    node_t *f = &nodes[leader % N];
    uint64_t index;
    int32_t hint;
    uint8_t d[4] = {0};
    ASSERT_EQ(rn_quorum_propose(f->q, d, 4, 1000, &index, &hint), RN_ERR_NOT_LEADER_OR_FOLLOWER);
    ASSERT_EQ(hint, leader);
    cluster_stop();
}

RN_TEST(quorum_survives_leader_loss_and_restarts_from_its_store) {
    cluster_start();
    for (uint32_t v = 0; v < 50; v++) ASSERT_EQ(propose(v), RN_OK);
    /* Stop the leader (network and quorum): the other two elect a new one and go on. */
    int32_t old = await_leader(1000);
    node_t *o = &nodes[old - 1];
    rn_net_stop(o->net);
    rn_net_free(o->net);
    o->net = NULL;
    rn_quorum_stop(o->q);
    o->q = NULL;
    for (uint32_t v = 50; v < 100; v++) ASSERT_EQ(propose(v), RN_OK);
    int32_t now = await_leader(1000);
    ASSERT_NE(now, old);
    /* The old leader restarts from its files, on its old port, and catches up. */
    net_start(o);
    quorum_start(o);
    ASSERT_TRUE(all_applied(100, 10000));
    assert_same_history();
    for (int k = 0; k < 100; k++) ASSERT_EQ(o->applied[k], (uint32_t)k);
    ASSERT_EQ(propose(100), RN_OK);
    ASSERT_TRUE(all_applied(101, 5000));
    assert_same_history();
    cluster_stop();
}

/* A leader that loses its quorum with a proposal waiting fails it when it steps down (within
 * about an election timeout), not at the proposal's own timeout: a stopping controller is not
 * held up by requests nobody can commit any more. */
RN_TEST(quorum_proposal_fails_when_the_leader_steps_down) {
    cluster_start();
    ASSERT_EQ(propose(1), RN_OK);
    int32_t leader = await_leader(1000);
    for (int i = 0; i < N; i++) {
        node_t *n = &nodes[i];
        if (n->id == leader) continue;
        rn_net_stop(n->net);
        rn_net_free(n->net);
        n->net = NULL;
        rn_quorum_stop(n->q);
        n->q = NULL;
    }
    uint8_t d[4] = {0, 0, 0, 2};
    uint64_t index;
    int32_t hint;
    int64_t t0 = rn_clock_mono_ms();
    ASSERT_EQ(rn_quorum_propose(nodes[leader - 1].q, d, 4, 10000, &index, &hint), RN_ERR_NOT_LEADER_OR_FOLLOWER);
    ASSERT_LT(rn_clock_mono_ms() - t0, 3000); /* election timeout 300 ms */
    ASSERT_FALSE(rn_quorum_is_leader(nodes[leader - 1].q));
    cluster_stop();
}

/* One voter: the entry commits inside the proposal; the caller hears so at once. */
RN_TEST(quorum_single_voter_commits_at_once) {
    snprintf(base, sizeof(base), "/tmp/rn_test_quorum_XXXXXX");
    ASSERT_TRUE(mkdtemp(base) != NULL);
    node_t *n = &nodes[0];
    memset(n, 0, sizeof(*n));
    n->id = 1;
    pthread_mutex_init(&n->lock, NULL);
    snprintf(n->dir, sizeof(n->dir), "%s/solo", base);
    rn_quorum_config_t qc = {.node_id = 1, .dir = n->dir, .api_key = API_RAFT, .election_timeout_ms = 100,
                             .heartbeat_ms = 20, .apply = sm_apply, .snapshot_take = sm_take, .snapshot_load = sm_load,
                             .arg = n, .nvoters = 1};
    qc.voters[0] = (rn_quorum_voter_t){.id = 1, .host = "127.0.0.1", .port = 1};
    ASSERT_EQ(rn_quorum_start(&qc, &n->q), RN_OK);
    for (int64_t end = rn_clock_mono_ms() + 5000; !rn_quorum_is_leader(n->q) && rn_clock_mono_ms() < end;) usleep(5000);
    ASSERT_TRUE(rn_quorum_is_leader(n->q));
    for (uint32_t v = 0; v < 20; v++) {
        uint8_t d[4];
        rn_store_be32(d, v);
        uint64_t index;
        int32_t hint;
        int64_t t0 = rn_clock_mono_ms();
        ASSERT_EQ(rn_quorum_propose(n->q, d, 4, 2000, &index, &hint), RN_OK);
        ASSERT_LT(rn_clock_mono_ms() - t0, 1000);
    }
    ASSERT_EQ(applied_count(n), 20);
    rn_quorum_stop(n->q);
    n->q = NULL;
    pthread_mutex_destroy(&n->lock);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
}

static _Atomic int change_err = -1000;
static void on_change(void *arg, rn_err_t err, int32_t leader, const char *message) { change_err = err; }

static rn_quorum_config_t grow_config(node_t *n) {
    rn_quorum_config_t qc = {.node_id = n->id, .dir = n->dir, .api_key = API_RAFT, .election_timeout_ms = 300,
                             .heartbeat_ms = 50, .snapshot_entries = 20, .apply = sm_apply, .snapshot_take = sm_take,
                             .snapshot_load = sm_load, .arg = n, .self_port = n->port};
    snprintf(qc.self_host, sizeof(qc.self_host), "127.0.0.1");
    if (n->id == 1) { /* the static one voter */
        qc.nvoters = 1;
        qc.voters[0] = (rn_quorum_voter_t){.id = 1, .host = "127.0.0.1", .port = nodes[0].port};
        qc.cluster_id = "grow-test";
    } else { /* joins through node 1 */
        qc.join = true;
        qc.nbootstrap = 1;
        qc.bootstrap[0] = (rn_quorum_voter_t){.id = -1, .host = "127.0.0.1", .port = nodes[0].port};
    }
    return qc;
}

static const rn_quorum_member_t *member_of(const rn_quorum_status_t *st, int32_t id) {
    for (int32_t i = 0; i < st->nmembers; i++)
        if (st->members[i].id == id) return &st->members[i];
    return NULL;
}

/* A one-voter quorum that has compacted its log; a node outside it joins (a learner, through
 * the join request), catches up from a snapshot, is promoted; both restart from their files:
 * the voter set and the addresses come from the log and snapshot, not the static config. */
RN_TEST(quorum_grows_from_one_voter_through_a_learner) {
    snprintf(base, sizeof(base), "/tmp/rn_test_quorum_XXXXXX");
    ASSERT_TRUE(mkdtemp(base) != NULL);
    memset(nodes, 0, sizeof(nodes));
    for (int i = 0; i < 2; i++) {
        nodes[i].id = i + 1;
        pthread_mutex_init(&nodes[i].lock, NULL);
        snprintf(nodes[i].dir, sizeof(nodes[i].dir), "%s/g%d", base, i + 1);
        net_start(&nodes[i]);
    }
    pthread_mutex_init(&nodes[2].lock, NULL);
    rn_quorum_config_t qc1 = grow_config(&nodes[0]), qc2 = grow_config(&nodes[1]);
    ASSERT_EQ(rn_quorum_start(&qc1, &nodes[0].q), RN_OK);
    ASSERT_EQ(await_leader(5000), 1);
    for (uint32_t v = 0; v < 60; v++) ASSERT_EQ(propose(v), RN_OK); /* snapshots every 20 */
    ASSERT_EQ(rn_quorum_start(&qc2, &nodes[1].q), RN_OK);
    char cid[64];
    ASSERT_TRUE(rn_quorum_cluster_id(nodes[1].q, cid, sizeof(cid)));
    ASSERT_STREQ(cid, "grow-test");
    ASSERT_TRUE(all_applied(60, 10000)); /* from node 1's snapshot, then entries */
    assert_same_history();
    rn_quorum_status_t st;
    const rn_quorum_member_t *m = NULL;
    for (int64_t end = rn_clock_mono_ms() + 10000; rn_clock_mono_ms() < end; usleep(10000)) {
        rn_quorum_status(nodes[0].q, &st);
        m = member_of(&st, 2);
        if (m && m->log_end >= (int64_t)st.commit && m->last_fetch_ms > 0) break;
    }
    ASSERT_TRUE(m != NULL && !m->voter); /* a learner: it replicates, it does not vote */
    ASSERT_EQ(st.nvoters, 1);
    ASSERT_EQ(rn_quorum_voter_count(nodes[1].q), 1);
    /* A voter change: one at a time. */
    change_err = -1000;
    ASSERT_EQ(rn_quorum_change(nodes[0].q, RN_QUORUM_ADD_VOTER, 2, NULL, 0, 5000, on_change, NULL), RN_OK);
    rn_err_t second = rn_quorum_change(nodes[0].q, RN_QUORUM_REMOVE_VOTER, 1, NULL, 0, 5000, on_change, NULL);
    ASSERT_TRUE(second == RN_ERR_REQUEST_TIMED_OUT || second == RN_OK); /* OK only if the first ended already */
    for (int64_t end = rn_clock_mono_ms() + 10000; change_err == -1000 && rn_clock_mono_ms() < end;) usleep(5000);
    if (second == RN_OK) usleep(300000);
    ASSERT_EQ(rn_quorum_voter_count(nodes[0].q), 2);
    for (uint32_t v = 60; v < 80; v++) ASSERT_EQ(propose(v), RN_OK);
    ASSERT_TRUE(all_applied(80, 5000));
    /* Both restart: node 1's static config names one voter, its files two. */
    for (int i = 0; i < 2; i++) {
        rn_quorum_stop(nodes[i].q);
        nodes[i].q = NULL;
    }
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&nodes[i].lock);
        nodes[i].napplied = 0;
        pthread_mutex_unlock(&nodes[i].lock);
    }
    ASSERT_EQ(rn_quorum_start(&qc1, &nodes[0].q), RN_OK);
    ASSERT_EQ(rn_quorum_start(&qc2, &nodes[1].q), RN_OK);
    ASSERT_EQ(rn_quorum_voter_count(nodes[0].q), 2);
    char host[256];
    int port = 0;
    ASSERT_TRUE(rn_quorum_address(nodes[0].q, 2, host, sizeof(host), &port));
    ASSERT_EQ(port, nodes[1].port);
    ASSERT_TRUE(await_leader(5000) > 0);
    ASSERT_EQ(propose(80), RN_OK);
    ASSERT_TRUE(all_applied(81, 5000));
    assert_same_history();
    /* A voter back with an empty log (a lost disk) is refused: it could vote twice in a term. */
    rn_quorum_stop(nodes[1].q);
    nodes[1].q = NULL;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", nodes[1].dir);
    ASSERT_EQ(system(cmd), 0);
    ASSERT_EQ(rn_quorum_start(&qc2, &nodes[1].q), RN_ERR_INCONSISTENT_VOTER_SET);
    ASSERT_TRUE(nodes[1].q == NULL);
    cluster_stop();
}

RN_TEST(quorum_voters_parse) {
    rn_quorum_config_t qc;
    char err[256];
    ASSERT_EQ(rn_quorum_parse_voters("1@localhost:9093,2@10.0.0.2:9093,3@[::1]:9094", &qc, err, sizeof(err)), RN_OK);
    ASSERT_EQ(qc.nvoters, 3);
    ASSERT_EQ(qc.voters[1].id, 2);
    ASSERT_STREQ(qc.voters[1].host, "10.0.0.2");
    ASSERT_EQ(qc.voters[2].port, 9094);
    const char *bad[] = {"", "1@host", "x@h:1", "1@h:0", "1@h:70000", "1@h:1,1@h:2", "1@:5", "1@h:1,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_EQ(rn_quorum_parse_voters(bad[i], &qc, err, sizeof(err)), RN_ERR_INVALID_CONFIG);
}

int main(void) { return rn_test_main(); }
