/*
 * test_replica_mgr.c — replication between nodes in one process over real
 * loopback TCP: each node has a log dir, a replica manager and an rn_net
 * server answering Fetch v12 the way the broker answers a follower (decode,
 * rn_replica_mgr_serve per partition, records as file splices). Followers'
 * fetcher threads use rn_client. Checks: followers copy the leader byte for
 * byte, the leader's high watermark waits for the ISR, failover truncates the
 * old leader's unreplicated tail, ISR shrink/expand proposals, acks=all below
 * min.insync.replicas.
 */
#include <pthread.h>

#include "rn_header.h"
#include "rn_msg_gen.h"
#include "rn_net.h"
#include "rn_replica_mgr.h"
#include "rn_test.h"
#include "test_log_util.h"

#define NODES 3

typedef struct node node_t;

typedef struct {
    node_t *node;
    rn_req_t *req;
    rn_req_header_t h;
} pending_t;

struct node {
    int32_t id;
    char path[320];
    rn_logdir_config_t dc;
    rn_logdir_t *dir;
    rn_replica_mgr_t *mgr;
    rn_net_t *net;
    atomic_int hw_events;
    pthread_mutex_t lock;
    int nproposals;
    int32_t last_isr[RN_REPL_MAX_REPLICAS];
    int32_t last_nisr;
};

static node_t nodes[NODES];

/* ---- the leader's Fetch handler ---- */

static void answer_fetch(void *arg) {
    pending_t *pf = arg;
    node_t *n = pf->node;
    rn_req_t *req = pf->req;
    rn_reader_t r;
    rn_reader_init(&r, req->frame, req->frame_len);
    rn_req_header_t h;
    rn_req_header_decode(&r, &h);
    rn_FetchRequest_t rq;
    rn_FetchRequest_init(&rq);
    if (h.api_key != 1 || h.api_version != 12 || rn_FetchRequest_decode(&r, 12, &req->arena, &rq)) {
        rn_req_close(req, "test server: not a Fetch v12");
        return;
    }
    rn_FetchResponse_t resp;
    rn_FetchResponse_init(&resp);
    resp.Responses = rn_arena_calloc(&req->arena, (size_t)rq.Topics_count + 1, sizeof(*resp.Responses));
    resp.Responses_count = rq.Topics_count;
    rn_fileref_t *files[64];
    int nfiles = 0;
    for (int32_t i = 0; i < rq.Topics_count; i++) {
        rn_FetchResponse_FetchableTopicResponse_t *tr = &resp.Responses[i];
        rn_FetchResponse_FetchableTopicResponse_init(tr);
        tr->Topic = rq.Topics[i].Topic;
        tr->Partitions_count = rq.Topics[i].Partitions_count;
        tr->Partitions = rn_arena_calloc(&req->arena, (size_t)tr->Partitions_count + 1, sizeof(*tr->Partitions));
        char topic[256];
        snprintf(topic, sizeof(topic), "%.*s", (int)rq.Topics[i].Topic.len, rq.Topics[i].Topic.ptr);
        for (int32_t j = 0; j < tr->Partitions_count; j++) {
            const rn_FetchRequest_FetchPartition_t *fp = &rq.Topics[i].Partitions[j];
            rn_FetchResponse_PartitionData_t *pd = &tr->Partitions[j];
            rn_FetchResponse_PartitionData_init(pd);
            pd->PartitionIndex = fp->Partition;
            rn_log_t *log = rn_logdir_find(n->dir, topic, fp->Partition);
            if (!log) {
                pd->ErrorCode = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            rn_repl_served_t s;
            rn_replica_mgr_serve(n->mgr, log, rq.ReplicaId, fp->CurrentLeaderEpoch, fp->FetchOffset,
                                 fp->LastFetchedEpoch, fp->PartitionMaxBytes, true, rn_clock_mono_ms(), &s);
            rn_repl_served_to_response(&s, pd);
            if (s.read.file && nfiles < 64) files[nfiles++] = s.read.file;
            else if (s.read.file) rn_fileref_release(s.read.file);
        }
    }
    rn_buf_t out;
    rn_buf_init(&out, 64 << 20);
    rn_resp_header_encode(&out, h.api_key, h.api_version, h.correlation_id);
    rn_FetchResponse_encode(&out, 12, &resp);
    rn_req_respond(req, &out);
    rn_buf_free(&out);
    for (int i = 0; i < nfiles; i++) rn_fileref_release(files[i]);
}

static void on_request(void *ctx, rn_req_t *req) {
    pending_t *pf = rn_arena_alloc(&req->arena, sizeof(*pf));
    pf->node = ctx;
    pf->req = req;
    rn_loop_timer_add(req->loop, 5, answer_fetch, pf); /* a short long-poll: no busy loop */
}

/* ---- node plumbing ---- */

static bool node_address(void *arg, int32_t id, char *host, size_t hostlen, int *port) {
    if (id < 1 || id > NODES || !nodes[id - 1].net) return false;
    snprintf(host, hostlen, "127.0.0.1");
    *port = rn_net_port(nodes[id - 1].net);
    return true;
}

static void hw_advanced(void *arg) { atomic_fetch_add(&((node_t *)arg)->hw_events, 1); }

static void alter_isr(void *arg, const char *topic, int32_t partition, int32_t leader_epoch, int32_t partition_epoch,
                      const int32_t *isr, int32_t nisr) {
    node_t *n = arg;
    pthread_mutex_lock(&n->lock);
    n->nproposals++;
    memcpy(n->last_isr, isr, (size_t)nisr * sizeof(int32_t));
    n->last_nisr = nisr;
    pthread_mutex_unlock(&n->lock);
}

static void on_sync(void *arg, uint64_t ticket, rn_err_t err) { rn_replica_mgr_on_sync(((node_t *)arg)->mgr); }

static void node_start(node_t *n, int32_t id, int64_t lag_max_ms) {
    memset(n, 0, sizeof(*n));
    n->id = id;
    pthread_mutex_init(&n->lock, NULL);
    snprintf(n->path, sizeof(n->path), "%s/n%d", tl_dir, id);
    mkdir(n->path, 0755);
    tl_dir_config(&n->dc, n->path);
    ASSERT_EQ(rn_logdir_open(&n->dc, &n->dir), RN_OK);
    rn_replica_mgr_config_t mc = {.node_id = id,
                                  .lag_max_ms = lag_max_ms,
                                  .fetch_wait_max_ms = 50,
                                  .fetch_backoff_ms = 50,
                                  .request_timeout_ms = 2000,
                                  .fetch_partition_max_bytes = 8192,
                                  .node_address = node_address,
                                  .hw_advanced = hw_advanced,
                                  .alter_isr = alter_isr,
                                  .arg = n,
                                  .logdir = n->dir};
    ASSERT_EQ(rn_replica_mgr_new(&mc, &n->mgr), RN_OK);
    rn_logdir_on_sync(n->dir, on_sync, n);
    rn_net_config_t nc = {.host = "127.0.0.1", .port = 0, .threads = 1};
    rn_net_handler_t hd = {on_request, n, NULL};
    ASSERT_EQ(rn_net_new(&n->net, &nc, hd), RN_OK);
    ASSERT_EQ(rn_net_start(n->net), RN_OK);
}

static void node_stop(node_t *n) {
    rn_net_stop(n->net);
    rn_replica_mgr_free(n->mgr);
    rn_logdir_close(n->dir);
    rn_net_free(n->net);
    n->net = NULL;
    pthread_mutex_destroy(&n->lock);
}

static rn_log_t *node_log(node_t *n) {
    rn_log_t *log = rn_logdir_find(n->dir, "t", 0);
    if (!log) {
        rn_log_config_t c;
        rn_log_config_default(&c);
        c.segment_bytes = 16384;
        c.retention_ms = -1;
        ASSERT_EQ(rn_logdir_create_log(n->dir, "t", 0, &c, &log), RN_OK);
    }
    return log;
}

static rn_partition_state_t state(int32_t leader, int32_t epoch, int32_t nrep, const int32_t *isr, int32_t nisr,
                                  int32_t min_isr) {
    rn_partition_state_t st = {.topic = "t", .partition = 0, .leader = leader, .leader_epoch = epoch,
                               .partition_epoch = epoch, .nreplicas = nrep, .nisr = nisr, .min_isr = min_isr};
    for (int32_t i = 0; i < nrep; i++) st.replicas[i] = i + 1;
    memcpy(st.isr, isr, (size_t)nisr * sizeof(int32_t));
    return st;
}

static void apply_all(const rn_partition_state_t *st, int nnodes) {
    for (int i = 0; i < nnodes; i++) ASSERT_EQ(rn_replica_mgr_set_partition(nodes[i].mgr, node_log(&nodes[i]), st), RN_OK);
}

static int64_t produce(rn_log_t *log, int nbatches, int32_t epoch) {
    rn_append_result_t res = {0};
    for (int i = 0; i < nbatches; i++) {
        rn_buf_t b;
        rn_buf_init(&b, 1 << 20);
        tl_batch(&b, 4, 1000 + i, i * 4, 100, NULL);
        rn_append_opts_t o = {.leader_epoch = epoch};
        ASSERT_EQ(rn_log_append(log, b.data, b.len, &o, &res), RN_OK);
        rn_buf_free(&b);
    }
    return res.last_offset + 1;
}

/* Waits (bounded) until cond() holds. */
static bool eventually(bool (*cond)(void *), void *arg, int64_t ms) {
    int64_t end = rn_clock_mono_ms() + ms;
    while (rn_clock_mono_ms() < end) {
        if (cond(arg)) return true;
        usleep(2000);
    }
    return cond(arg);
}

static bool all_caught_up(void *arg) {
    int n = *(int *)arg;
    rn_log_t *l0 = node_log(&nodes[0]);
    for (int i = 0; i < n; i++) {
        rn_log_t *l = node_log(&nodes[i]);
        if (rn_log_end_offset(l) != rn_log_end_offset(l0)) return false;
    }
    return rn_log_high_watermark(l0) == rn_log_end_offset(l0);
}

static bool followers_know_hw(void *arg) {
    int n = *(int *)arg;
    for (int i = 1; i < n; i++)
        if (rn_log_high_watermark(node_log(&nodes[i])) != rn_log_high_watermark(node_log(&nodes[0]))) return false;
    return true;
}

static void assert_identical(int n) {
    uint8_t *p0;
    size_t l0;
    p0 = tl_log_bytes(node_log(&nodes[0]), &l0);
    for (int i = 1; i < n; i++) {
        uint8_t *p;
        size_t l;
        p = tl_log_bytes(node_log(&nodes[i]), &l);
        ASSERT_EQ(l, l0);
        ASSERT_MEMEQ(p, p0, l0);
        free(p);
    }
    free(p0);
}

RN_TEST(three_replicas_copy_the_leader_and_the_hw_waits_for_them) {
    tl_mkdtemp();
    for (int i = 0; i < NODES; i++) node_start(&nodes[i], i + 1, 30000);
    int32_t isr[] = {1, 2, 3};
    rn_partition_state_t st = state(1, 1, 3, isr, 3, 2);
    apply_all(&st, NODES);
    rn_log_t *leader = node_log(&nodes[0]);
    int64_t end = produce(leader, 200, 1); /* ~100 KB in 8 KB fetches, several segments */
    ASSERT_EQ(end, 800);
    int n = NODES;
    ASSERT_TRUE(eventually(all_caught_up, &n, 20000));
    ASSERT_EQ(rn_log_high_watermark(leader), 800);
    ASSERT_GT(atomic_load(&nodes[0].hw_events), 0);
    assert_identical(NODES);
    /* Followers learn the final high watermark with their next fetch. */
    ASSERT_TRUE(eventually(followers_know_hw, &n, 5000));
    ASSERT_EQ(rn_replica_mgr_check_acks_all(nodes[0].mgr, leader), RN_OK);
    ASSERT_EQ(rn_replica_mgr_check_acks_all(nodes[1].mgr, node_log(&nodes[1])), RN_ERR_NOT_LEADER_OR_FOLLOWER);
    /* A fetch from a node that is not a replica, and one from an old epoch. */
    rn_repl_served_t s;
    rn_replica_mgr_serve(nodes[0].mgr, leader, 9, 1, 0, -1, 100, true, rn_clock_mono_ms(), &s);
    ASSERT_EQ(s.error, RN_ERR_NOT_LEADER_OR_FOLLOWER);
    rn_replica_mgr_serve(nodes[0].mgr, leader, 2, 0, 0, -1, 100, true, rn_clock_mono_ms(), &s);
    ASSERT_EQ(s.error, RN_ERR_FENCED_LEADER_EPOCH);
    for (int i = 0; i < NODES; i++) node_stop(&nodes[i]);
    tl_rmrf(tl_dir);
}

static bool two_caught_up(void *arg) {
    rn_log_t *a = node_log(&nodes[0]), *b = node_log(&nodes[1]);
    return rn_log_end_offset(a) == rn_log_end_offset(b) && rn_log_high_watermark(b) == rn_log_end_offset(b);
}

RN_TEST(failover_truncates_the_old_leaders_unreplicated_tail) {
    tl_mkdtemp();
    for (int i = 0; i < 2; i++) node_start(&nodes[i], i + 1, 30000);
    int32_t isr[] = {1, 2};
    rn_partition_state_t st = state(1, 1, 2, isr, 2, 1);
    apply_all(&st, 2);
    produce(node_log(&nodes[0]), 20, 1);
    int n = 2;
    ASSERT_TRUE(eventually(all_caught_up, &n, 20000));
    /* Node 2 stops following (as if cut off); node 1 writes 10 more batches alone. */
    rn_partition_state_t none = st;
    none.leader = -1;
    ASSERT_EQ(rn_replica_mgr_set_partition(nodes[1].mgr, node_log(&nodes[1]), &none), RN_OK);
    produce(node_log(&nodes[0]), 10, 1);
    ASSERT_EQ(rn_log_end_offset(node_log(&nodes[0])), 120);
    ASSERT_EQ(rn_log_end_offset(node_log(&nodes[1])), 80);
    /* The controller moves leadership to node 2 (epoch 2); node 2 writes 5 batches. */
    rn_partition_state_t st2 = state(2, 2, 2, isr, 2, 1);
    ASSERT_EQ(rn_replica_mgr_set_partition(nodes[1].mgr, node_log(&nodes[1]), &st2), RN_OK);
    produce(node_log(&nodes[1]), 5, 2);
    ASSERT_EQ(rn_replica_mgr_set_partition(nodes[0].mgr, node_log(&nodes[0]), &st2), RN_OK);
    ASSERT_TRUE(eventually(two_caught_up, NULL, 20000));
    ASSERT_EQ(rn_log_end_offset(node_log(&nodes[0])), 100); /* 80 shared + 5 batches of epoch 2 */
    int32_t e;
    int64_t end;
    ASSERT_EQ(rn_log_end_offset_for_epoch(node_log(&nodes[0]), 1, &e, &end), RN_OK);
    ASSERT_EQ(end, 80);
    /* A stale state (epoch 1) is ignored. */
    ASSERT_EQ(rn_replica_mgr_set_partition(nodes[0].mgr, node_log(&nodes[0]), &st), RN_ERR_AGAIN);
    uint8_t *p0, *p1;
    size_t l0, l1;
    p0 = tl_log_bytes(node_log(&nodes[0]), &l0);
    p1 = tl_log_bytes(node_log(&nodes[1]), &l1);
    ASSERT_EQ(l0, l1);
    ASSERT_MEMEQ(p0, p1, l0);
    free(p0);
    free(p1);
    for (int i = 0; i < 2; i++) node_stop(&nodes[i]);
    tl_rmrf(tl_dir);
}

static bool proposed_isr_of(void *arg) {
    int want = *(int *)arg;
    rn_replica_mgr_tick(nodes[0].mgr, rn_clock_mono_ms());
    pthread_mutex_lock(&nodes[0].lock);
    bool ok = nodes[0].nproposals > 0 && nodes[0].last_nisr == want;
    pthread_mutex_unlock(&nodes[0].lock);
    return ok;
}

static bool proposed_again(void *arg) {
    rn_replica_mgr_tick(nodes[0].mgr, rn_clock_mono_ms());
    pthread_mutex_lock(&nodes[0].lock);
    bool ok = nodes[0].nproposals > *(int *)arg;
    pthread_mutex_unlock(&nodes[0].lock);
    return ok;
}

RN_TEST(isr_shrinks_and_expands_and_min_isr_guards_acks_all) {
    tl_mkdtemp();
    for (int i = 0; i < NODES; i++) node_start(&nodes[i], i + 1, 300); /* replica.lag.time.max.ms = 300 */
    int32_t isr[] = {1, 2, 3};
    rn_partition_state_t st = state(1, 1, 3, isr, 3, 2);
    apply_all(&st, NODES);
    rn_log_t *leader = node_log(&nodes[0]);
    produce(leader, 10, 1);
    int n = NODES;
    ASSERT_TRUE(eventually(all_caught_up, &n, 20000));
    /* Nodes 2 and 3 stop fetching: both drop out of the ISR. */
    rn_partition_state_t gone = st;
    gone.leader = -1;
    for (int i = 1; i < NODES; i++)
        ASSERT_EQ(rn_replica_mgr_set_partition(nodes[i].mgr, node_log(&nodes[i]), &gone), RN_OK);
    int want = 1;
    ASSERT_TRUE(eventually(proposed_isr_of, &want, 5000));
    ASSERT_EQ(nodes[0].last_isr[0], 1);
    /* The controller accepts: ISR {1} < min.insync.replicas 2. */
    int32_t only[] = {1};
    rn_partition_state_t shrunk = state(1, 1, 3, only, 1, 2);
    shrunk.partition_epoch = 2;
    ASSERT_EQ(rn_replica_mgr_set_partition(nodes[0].mgr, leader, &shrunk), RN_OK);
    ASSERT_EQ(rn_replica_mgr_check_acks_all(nodes[0].mgr, leader), RN_ERR_NOT_ENOUGH_REPLICAS);
    int64_t hw = rn_log_high_watermark(leader);
    produce(leader, 3, 1);
    usleep(100 * 1000);
    rn_replica_mgr_on_sync(nodes[0].mgr);
    ASSERT_EQ(rn_log_high_watermark(leader), hw); /* no advance with the ISR below the minimum */
    /* Node 2 comes back, catches up and is proposed back in. */
    ASSERT_EQ(rn_replica_mgr_set_partition(nodes[1].mgr, node_log(&nodes[1]), &shrunk), RN_OK);
    want = 2;
    ASSERT_TRUE(eventually(proposed_isr_of, &want, 10000));
    /* The controller refuses it (node 2 not yet unfenced there): the leader sends it again. */
    pthread_mutex_lock(&nodes[0].lock);
    int sent = nodes[0].nproposals;
    pthread_mutex_unlock(&nodes[0].lock);
    ASSERT_TRUE(eventually(proposed_again, &sent, 5000));
    ASSERT_EQ(nodes[0].last_nisr, 2);
    int32_t back[] = {1, 2};
    rn_partition_state_t grown = state(1, 1, 3, back, 2, 2);
    grown.partition_epoch = 3;
    ASSERT_EQ(rn_replica_mgr_set_partition(nodes[0].mgr, leader, &grown), RN_OK);
    ASSERT_EQ(rn_replica_mgr_check_acks_all(nodes[0].mgr, leader), RN_OK);
    n = 2;
    ASSERT_TRUE(eventually(all_caught_up, &n, 20000)); /* the HW moves again */
    ASSERT_EQ(rn_log_high_watermark(leader), 52);
    for (int i = 0; i < NODES; i++) node_stop(&nodes[i]);
    tl_rmrf(tl_dir);
}

int main(void) { return rn_test_main(); }
