/*
 * rn_replica_mgr.c — led and followed partitions, and the fetcher threads
 * (see rn_replica_mgr.h). Lock order: m->lock before any log lock; the
 * manager never takes m->lock while holding a log lock, and callbacks run
 * without m->lock.
 */
#include "rn_replica_mgr.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_arena.h"
#include "rn_client.h"
#include "rn_clock.h"
#include "rn_cond.h"
#include "rn_logging.h"
#include "rn_map.h"
#include "rn_msg_gen.h"

#define FETCH_VERSION 12
#define API_FETCH 1

enum { ROLE_NONE = 0, ROLE_LEADER = 1, ROLE_FOLLOWER = 2 };

typedef struct {
    rn_log_t *log; /* retained */
    char *topic;
    int32_t partition;
    int role;
    rn_partition_state_t st; /* st.topic points at `topic` */
    rn_repl_leader_t leader;
    bool fetch_failed; /* follower: the last answer for it was an error (logged once) */
    int64_t proposed_ms; /* leader: when the pending ISR was last sent */
} part_t;

/* A pending ISR change the image has not confirmed is sent again this often: the
 * controller may have refused it (a replica not yet unfenced) or the call failed. */
#define ISR_RESEND_MS 1000

typedef struct fetcher {
    rn_replica_mgr_t *m;
    int32_t leader;
    pthread_t thread;
    rn_client_t *client;
    char host[256];
    int port;
    struct fetcher *next;
} fetcher_t;

struct rn_replica_mgr {
    rn_replica_mgr_config_t cfg;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* syncs, partition changes, stop */
    rn_map_t parts;      /* "topic-partition" → part_t* */
    fetcher_t *fetchers;
    bool stopping;
};

static size_t part_key(char *buf, size_t cap, const char *topic, int32_t partition) {
    int n = snprintf(buf, cap, "%s-%d", topic, partition);
    return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

static part_t *find_part(rn_replica_mgr_t *m, const char *topic, int32_t partition) {
    char key[320];
    size_t n = part_key(key, sizeof(key), topic, partition);
    return rn_map_get(&m->parts, key, n);
}

static void part_free(part_t *p) {
    rn_log_release(p->log);
    free(p->topic);
    free(p);
}

rn_err_t rn_replica_mgr_new(const rn_replica_mgr_config_t *cfg, rn_replica_mgr_t **out) {
    rn_replica_mgr_t *m = calloc(1, sizeof(*m));
    if (!m) return RN_ERR_NOMEM;
    m->cfg = *cfg;
    if (m->cfg.lag_max_ms <= 0) m->cfg.lag_max_ms = 30000;
    if (m->cfg.fetch_max_bytes <= 0) m->cfg.fetch_max_bytes = 10 << 20;
    if (m->cfg.fetch_partition_max_bytes <= 0) m->cfg.fetch_partition_max_bytes = 1 << 20;
    if (m->cfg.fetch_wait_max_ms <= 0) m->cfg.fetch_wait_max_ms = 500;
    if (m->cfg.fetch_backoff_ms <= 0) m->cfg.fetch_backoff_ms = 1000;
    if (m->cfg.request_timeout_ms <= 0) m->cfg.request_timeout_ms = 30000;
    pthread_mutex_init(&m->lock, NULL);
    rn_cond_init_mono(&m->cond);
    rn_map_init(&m->parts);
    *out = m;
    return RN_OK;
}

void rn_replica_mgr_free(rn_replica_mgr_t *m) {
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_broadcast(&m->cond);
    for (fetcher_t *f = m->fetchers; f; f = f->next)
        if (f->client) rn_client_interrupt(f->client);
    pthread_mutex_unlock(&m->lock);
    while (m->fetchers) {
        fetcher_t *f = m->fetchers;
        m->fetchers = f->next;
        pthread_join(f->thread, NULL);
        rn_client_free(f->client);
        free(f);
    }
    const char *k;
    void *v;
    for (size_t i = 0; rn_map_next(&m->parts, &i, &k, &v);) part_free(v);
    rn_map_free(&m->parts);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Waits on m->cond until the monotonic deadline (lock held). */
static void wait_until(rn_replica_mgr_t *m, int64_t deadline_ms) { rn_cond_wait_until(&m->cond, &m->lock, deadline_ms); }

/* ---- the fetcher thread ------------------------------------------------------- */

typedef struct {
    rn_log_t *log;
    int32_t leader_epoch;
} fetch_item_t;

/* The partitions followed from f->leader now (lock held); logs retained. */
static int32_t collect(rn_replica_mgr_t *m, fetcher_t *f, rn_arena_t *a, fetch_item_t **out) {
    int32_t n = 0, cap = (int32_t)m->parts.count;
    *out = cap ? rn_arena_calloc(a, (size_t)cap, sizeof(**out)) : NULL;
    const char *k;
    void *v;
    for (size_t i = 0; *out && rn_map_next(&m->parts, &i, &k, &v);) {
        part_t *p = v;
        if (p->role != ROLE_FOLLOWER || p->st.leader != f->leader) continue;
        rn_log_retain(p->log);
        (*out)[n++] = (fetch_item_t){p->log, p->st.leader_epoch};
    }
    return n;
}

/* Groups the items by topic into a v12 Fetch request. */
static rn_err_t build_request(rn_replica_mgr_t *m, fetch_item_t *items, int32_t n, rn_arena_t *a, rn_buf_t *out) {
    rn_FetchRequest_t rq;
    rn_FetchRequest_init(&rq);
    rq.ReplicaId = m->cfg.node_id;
    rq.MaxWaitMs = m->cfg.fetch_wait_max_ms;
    rq.MinBytes = 1;
    rq.MaxBytes = m->cfg.fetch_max_bytes;
    rq.SessionId = 0;
    rq.SessionEpoch = -1;
    rq.Topics = rn_arena_calloc(a, (size_t)n, sizeof(*rq.Topics));
    if (!rq.Topics) return RN_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        const char *topic = rn_log_topic(items[i].log);
        rn_FetchRequest_FetchTopic_t *t = NULL;
        for (int32_t j = 0; j < rq.Topics_count && !t; j++)
            if (strcmp(rq.Topics[j].Topic.ptr, topic) == 0) t = &rq.Topics[j];
        if (!t) {
            t = &rq.Topics[rq.Topics_count++];
            rn_FetchRequest_FetchTopic_init(t);
            t->Topic = (rn_str_t){topic, (int32_t)strlen(topic)};
            t->Partitions = rn_arena_calloc(a, (size_t)n, sizeof(*t->Partitions));
            if (!t->Partitions) return RN_ERR_NOMEM;
        }
        rn_FetchRequest_FetchPartition_t *fp = &t->Partitions[t->Partitions_count++];
        rn_FetchRequest_FetchPartition_init(fp);
        rn_log_t *log = items[i].log;
        int64_t leo = rn_log_end_offset(log), start = rn_log_start_offset(log);
        fp->Partition = rn_log_partition(log);
        fp->CurrentLeaderEpoch = items[i].leader_epoch;
        fp->FetchOffset = leo;
        fp->LastFetchedEpoch = leo > start ? rn_log_latest_epoch(log) : -1;
        fp->LogStartOffset = start;
        fp->PartitionMaxBytes = m->cfg.fetch_partition_max_bytes;
    }
    rn_FetchRequest_encode(out, FETCH_VERSION, &rq);
    return rn_buf_err(out);
}

static fetch_item_t *item_for(fetch_item_t *items, int32_t n, rn_str_t topic, int32_t partition) {
    for (int32_t i = 0; i < n; i++)
        if (rn_log_partition(items[i].log) == partition && (int32_t)strlen(rn_log_topic(items[i].log)) == topic.len &&
            memcmp(rn_log_topic(items[i].log), topic.ptr, (size_t)topic.len) == 0)
            return &items[i];
    return NULL;
}

/* Applies one partition's answer, if the partition is still followed from
 * this leader at this epoch; returns its sync ticket (0: nothing to wait for);
 * *failed when the local append or truncation failed (a full disk: back off). */
static uint64_t apply_partition(rn_replica_mgr_t *m, fetcher_t *f, fetch_item_t *it,
                                const rn_FetchResponse_PartitionData_t *pd, bool *failed) {
    rn_repl_fetched_t fr = {
        .error = pd->ErrorCode,
        .high_watermark = pd->HighWatermark,
        .log_start_offset = pd->LogStartOffset,
        .diverging = {pd->DivergingEpoch.Epoch, pd->DivergingEpoch.EndOffset},
        /* Our own receive buffer: appending as a follower never writes into it. */
        .records = (uint8_t *)pd->Records.ptr,
        .records_len = pd->Records.len > 0 ? (size_t)pd->Records.len : 0,
    };
    uint64_t ticket = 0;
    pthread_mutex_lock(&m->lock);
    part_t *p = find_part(m, rn_log_topic(it->log), rn_log_partition(it->log));
    if (!p || p->log != it->log || p->role != ROLE_FOLLOWER || p->st.leader != f->leader ||
        p->st.leader_epoch != it->leader_epoch) {
        pthread_mutex_unlock(&m->lock);
        return 0; /* the partition's state changed while this fetch was out */
    }
    rn_err_t err = rn_repl_follower_apply(it->log, &fr, &ticket);
    if (err == RN_ERR_OFFSET_OUT_OF_RANGE && pd->LogStartOffset >= 0)
        err = rn_repl_follower_out_of_range(it->log, pd->LogStartOffset, pd->HighWatermark);
    bool was_failed = p->fetch_failed;
    p->fetch_failed = err != RN_OK;
    *failed |= err != RN_OK;
    pthread_mutex_unlock(&m->lock);
    if (err && !was_failed)
        RN_WARN("replica", "%s-%d: fetch from node %d: %s", rn_log_topic(it->log), rn_log_partition(it->log), f->leader,
                rn_err_name(err));
    else if (!err && was_failed)
        RN_INFO("replica", "%s-%d: fetching from node %d again", rn_log_topic(it->log), rn_log_partition(it->log),
                f->leader);
    return ticket;
}

/* One fetch round: false when it failed (back off). */
static bool fetch_round(rn_replica_mgr_t *m, fetcher_t *f, fetch_item_t *items, int32_t n, rn_arena_t *a,
                        rn_buf_t *req, rn_buf_t *resp) {
    rn_buf_reset(req);
    if (build_request(m, items, n, a, req)) return false;
    char host[256];
    int port;
    if (!m->cfg.node_address || !m->cfg.node_address(m->cfg.arg, f->leader, host, sizeof(host), &port)) return false;
    if (!f->client || strcmp(host, f->host) != 0 || port != f->port) {
        rn_client_t *c;
        rn_client_config_t cc = {.host = host, .port = port, .client_id = "runnel-replica-fetcher",
                                 .timeout_ms = m->cfg.request_timeout_ms,
                                 .max_response_bytes = (size_t)m->cfg.fetch_max_bytes + (8 << 20)};
        if (rn_client_new(&cc, &c)) return false;
        pthread_mutex_lock(&m->lock);
        rn_client_t *old = f->client;
        f->client = c;
        if (m->stopping) rn_client_interrupt(c);
        pthread_mutex_unlock(&m->lock);
        rn_client_free(old);
        snprintf(f->host, sizeof(f->host), "%s", host);
        f->port = port;
    }
    rn_err_t err = rn_client_call_timeout(f->client, API_FETCH, FETCH_VERSION, req, resp,
                                          m->cfg.request_timeout_ms + m->cfg.fetch_wait_max_ms);
    if (err) {
        if (err != RN_ERR_AGAIN)
            RN_DEBUG("replica", "fetch from node %d (%s:%d) failed: %s", f->leader, host, port, rn_err_name(err));
        return false;
    }
    rn_reader_t r;
    rn_reader_init(&r, resp->data, resp->len);
    rn_FetchResponse_t fr;
    rn_FetchResponse_init(&fr);
    if (rn_FetchResponse_decode(&r, FETCH_VERSION, a, &fr) || fr.ErrorCode) {
        RN_WARN("replica", "fetch from node %d: bad or failed response (%s)", f->leader, rn_err_name(fr.ErrorCode));
        return false;
    }
    uint64_t ticket = 0;
    bool any_error = false;
    for (int32_t i = 0; i < fr.Responses_count; i++)
        for (int32_t j = 0; j < fr.Responses[i].Partitions_count; j++) {
            const rn_FetchResponse_PartitionData_t *pd = &fr.Responses[i].Partitions[j];
            fetch_item_t *it = item_for(items, n, fr.Responses[i].Topic, pd->PartitionIndex);
            if (!it) continue;
            uint64_t t = apply_partition(m, f, it, pd, &any_error);
            if (t > ticket) ticket = t;
            any_error |= pd->ErrorCode != 0;
        }
    /* Report only durable offsets: the next fetch waits for this round's sync. */
    pthread_mutex_lock(&m->lock);
    while (ticket && !m->stopping && rn_logdir_synced_ticket(m->cfg.logdir) < ticket &&
           !rn_logdir_offline(m->cfg.logdir))
        wait_until(m, rn_clock_mono_ms() + 100);
    pthread_mutex_unlock(&m->lock);
    return !any_error;
}

static void *fetcher_main(void *arg) {
    fetcher_t *f = arg;
    rn_replica_mgr_t *m = f->m;
    rn_arena_t arena;
    rn_arena_init(&arena, (size_t)64 << 20);
    rn_buf_t req, resp;
    rn_buf_init(&req, (size_t)16 << 20);
    rn_buf_init(&resp, (size_t)m->cfg.fetch_max_bytes + (8 << 20));
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        fetch_item_t *items;
        int32_t n = collect(m, f, &arena, &items);
        if (n == 0) {
            wait_until(m, rn_clock_mono_ms() + 1000);
            rn_arena_reset(&arena);
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        bool ok = fetch_round(m, f, items, n, &arena, &req, &resp);
        for (int32_t i = 0; i < n; i++) rn_log_release(items[i].log);
        rn_arena_reset(&arena);
        pthread_mutex_lock(&m->lock);
        if (!ok && !m->stopping) wait_until(m, rn_clock_mono_ms() + m->cfg.fetch_backoff_ms);
    }
    pthread_mutex_unlock(&m->lock);
    rn_buf_free(&req);
    rn_buf_free(&resp);
    rn_arena_reset(&arena);
    return NULL;
}

/* The fetcher for `leader`, started if new (lock held). */
static rn_err_t ensure_fetcher(rn_replica_mgr_t *m, int32_t leader) {
    for (fetcher_t *f = m->fetchers; f; f = f->next)
        if (f->leader == leader) return RN_OK;
    fetcher_t *f = calloc(1, sizeof(*f));
    if (!f) return RN_ERR_NOMEM;
    f->m = m;
    f->leader = leader;
    if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
        free(f);
        return RN_ERR_NOMEM;
    }
    f->next = m->fetchers;
    m->fetchers = f;
    RN_INFO("replica", "node %d: fetcher for leader %d started", m->cfg.node_id, leader);
    return RN_OK;
}

/* ---- partition state ---------------------------------------------------------- */

/* Leader state for a new epoch, keeping what is known of followers (lock held). */
static rn_err_t become_leader(rn_replica_mgr_t *m, part_t *p, const rn_partition_state_t *st, int64_t now) {
    rn_repl_leader_t old = p->leader;
    bool had = p->role == ROLE_LEADER;
    rn_err_t err = rn_repl_leader_init(&p->leader, m->cfg.node_id, st->leader_epoch, st->replicas, st->nreplicas,
                                       st->isr, st->nisr, st->min_isr > 0 ? st->min_isr : 1,
                                       rn_log_end_offset(p->log), rn_log_high_watermark(p->log), now);
    if (err) return err;
    if (had && old.leader_epoch == st->leader_epoch) { /* same epoch (ISR or replicas changed): keep progress */
        p->leader.epoch_start_offset = old.epoch_start_offset;
        for (int32_t i = 0; i < p->leader.nreplicas; i++)
            for (int32_t j = 0; j < old.nreplicas; j++)
                if (old.followers[j].id == p->leader.followers[i].id) p->leader.followers[i] = old.followers[j];
    } else {
        err = rn_log_begin_epoch(p->log, st->leader_epoch);
        RN_INFO("replica", "%s-%d: leader at epoch %d (log end %lld, ISR of %d)", p->topic, p->partition,
                st->leader_epoch, (long long)rn_log_end_offset(p->log), st->nisr);
    }
    p->role = ROLE_LEADER;
    return err;
}

rn_err_t rn_replica_mgr_set_partition(rn_replica_mgr_t *m, rn_log_t *log, const rn_partition_state_t *st) {
    if (st->nreplicas > RN_REPL_MAX_REPLICAS || st->nisr > RN_REPL_MAX_REPLICAS || st->nreplicas < 0 || st->nisr < 0)
        return RN_ERR_INVALID_ARG;
    int64_t now = rn_clock_mono_ms();
    rn_err_t err = RN_OK;
    bool notify = false;
    pthread_mutex_lock(&m->lock);
    part_t *p = find_part(m, rn_log_topic(log), rn_log_partition(log));
    if (p && st->leader_epoch < p->st.leader_epoch) {
        pthread_mutex_unlock(&m->lock);
        return RN_ERR_AGAIN;
    }
    if (!p) {
        char key[320];
        size_t kn = part_key(key, sizeof(key), rn_log_topic(log), rn_log_partition(log));
        p = calloc(1, sizeof(*p));
        if (p) p->topic = strdup(rn_log_topic(log));
        if (!p || !p->topic || !rn_map_put(&m->parts, key, kn, p)) {
            if (p) free(p->topic);
            free(p);
            pthread_mutex_unlock(&m->lock);
            return RN_ERR_NOMEM;
        }
        rn_log_retain(log);
        p->log = log;
        p->partition = rn_log_partition(log);
    }
    int32_t self = m->cfg.node_id;
    bool replica = rn_repl_in(st->replicas, st->nreplicas, self);
    if (replica && st->leader == self) {
        err = become_leader(m, p, st, now);
        rn_log_set_replicated(log, true);
        notify = rn_repl_leader_update_hw(&p->leader, rn_log_local_durable_end(log));
        if (notify) rn_log_set_high_watermark(log, p->leader.high_watermark);
    } else if (replica && st->leader >= 0) {
        if (p->role != ROLE_FOLLOWER || p->st.leader != st->leader || p->st.leader_epoch != st->leader_epoch)
            RN_INFO("replica", "%s-%d: follower of node %d at epoch %d", p->topic, p->partition, st->leader,
                    st->leader_epoch);
        p->role = ROLE_FOLLOWER;
        rn_log_set_replicated(log, true);
        err = ensure_fetcher(m, st->leader);
    } else {
        p->role = ROLE_NONE;
        rn_log_set_replicated(log, true); /* no leader: nothing becomes visible */
    }
    p->st = *st;
    p->st.topic = p->topic;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (notify && m->cfg.hw_advanced) m->cfg.hw_advanced(m->cfg.arg);
    return err;
}

void rn_replica_mgr_remove(rn_replica_mgr_t *m, rn_log_t *log) {
    char key[320];
    size_t kn = part_key(key, sizeof(key), rn_log_topic(log), rn_log_partition(log));
    pthread_mutex_lock(&m->lock);
    part_t *p = rn_map_del(&m->parts, key, kn);
    pthread_mutex_unlock(&m->lock);
    if (p) part_free(p); /* a fetcher holding the log keeps its own reference */
}

/* ---- leader side ---------------------------------------------------------------- */

rn_err_t rn_replica_mgr_serve(rn_replica_mgr_t *m, rn_log_t *log, int32_t replica_id, int32_t current_leader_epoch,
                              int64_t fetch_offset, int32_t last_fetched_epoch, int32_t max_bytes, bool min_one,
                              int64_t now_ms, rn_repl_served_t *out) {
    memset(out, 0, sizeof(*out));
    out->diverging = (rn_epoch_end_t){-1, -1};
    out->high_watermark = out->log_start_offset = out->last_stable_offset = -1;
    bool moved = false;
    pthread_mutex_lock(&m->lock);
    part_t *p = find_part(m, rn_log_topic(log), rn_log_partition(log));
    if (!p || p->role != ROLE_LEADER) {
        out->error = RN_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (current_leader_epoch >= 0 && current_leader_epoch != p->leader.leader_epoch) {
        out->error = current_leader_epoch < p->leader.leader_epoch ? RN_ERR_FENCED_LEADER_EPOCH
                                                                   : RN_ERR_UNKNOWN_LEADER_EPOCH;
    } else {
        out->log_start_offset = rn_log_start_offset(log);
        int64_t leo = rn_log_end_offset(log);
        if (rn_repl_diverging(log, last_fetched_epoch, fetch_offset, &out->diverging)) {
            /* no progress recorded: the follower must truncate first */
        } else if (fetch_offset > leo || fetch_offset < out->log_start_offset) {
            out->error = RN_ERR_OFFSET_OUT_OF_RANGE;
        } else {
            out->error = (int16_t)rn_repl_leader_on_fetch(&p->leader, replica_id, fetch_offset, leo, now_ms);
            if (!out->error) moved = rn_repl_leader_update_hw(&p->leader, rn_log_local_durable_end(log));
            if (moved) rn_log_set_high_watermark(log, p->leader.high_watermark);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (moved && m->cfg.hw_advanced) m->cfg.hw_advanced(m->cfg.arg);
    out->high_watermark = rn_log_high_watermark(log);
    out->last_stable_offset = rn_log_last_stable_offset(log);
    if (out->error || out->diverging.epoch >= 0 || out->diverging.end_offset >= 0) return RN_OK;
    /* Followers read to the log end, not the high watermark. */
    rn_err_t err = rn_log_read(log, fetch_offset, max_bytes, min_one, INT64_MAX, &out->read);
    if (err) out->error = err > 0 ? (int16_t)err : RN_ERR_KAFKA_STORAGE_ERROR;
    return RN_OK;
}

void rn_repl_served_to_response(const rn_repl_served_t *s, rn_FetchResponse_PartitionData_t *pd) {
    pd->ErrorCode = s->error;
    pd->HighWatermark = s->high_watermark;
    pd->LastStableOffset = s->last_stable_offset;
    pd->LogStartOffset = s->log_start_offset;
    pd->DivergingEpoch.Epoch = s->diverging.epoch;
    pd->DivergingEpoch.EndOffset = s->diverging.end_offset;
    pd->PreferredReadReplica = -1;
    pd->Records = s->read.len > 0 && s->read.file ? (rn_records_t){NULL, s->read.len, s->read.file, s->read.file_pos}
                                                  : (rn_records_t){NULL, 0, NULL, 0};
}

rn_err_t rn_replica_mgr_check_acks_all(rn_replica_mgr_t *m, rn_log_t *log) {
    pthread_mutex_lock(&m->lock);
    part_t *p = find_part(m, rn_log_topic(log), rn_log_partition(log));
    rn_err_t err = !p || p->role != ROLE_LEADER ? RN_ERR_NOT_LEADER_OR_FOLLOWER
                                                 : rn_repl_leader_check_acks_all(&p->leader);
    pthread_mutex_unlock(&m->lock);
    return err;
}

bool rn_replica_mgr_leads(rn_replica_mgr_t *m, rn_log_t *log, int32_t *leader_epoch) {
    pthread_mutex_lock(&m->lock);
    part_t *p = find_part(m, rn_log_topic(log), rn_log_partition(log));
    bool leads = p && p->role == ROLE_LEADER;
    if (leads && leader_epoch) *leader_epoch = p->leader.leader_epoch;
    pthread_mutex_unlock(&m->lock);
    return leads;
}

void rn_replica_mgr_on_sync(rn_replica_mgr_t *m) {
    bool moved = false;
    pthread_mutex_lock(&m->lock);
    const char *k;
    void *v;
    for (size_t i = 0; rn_map_next(&m->parts, &i, &k, &v);) {
        part_t *p = v;
        if (p->role != ROLE_LEADER || !rn_repl_leader_update_hw(&p->leader, rn_log_local_durable_end(p->log)))
            continue;
        rn_log_set_high_watermark(p->log, p->leader.high_watermark);
        moved = true;
    }
    pthread_cond_broadcast(&m->cond); /* fetchers waiting for their append to be durable */
    pthread_mutex_unlock(&m->lock);
    if (moved && m->cfg.hw_advanced) m->cfg.hw_advanced(m->cfg.arg);
}

typedef struct {
    char topic[256];
    int32_t partition, leader_epoch, partition_epoch, nisr;
    int32_t isr[RN_REPL_MAX_REPLICAS];
    bool resend;
} isr_proposal_t;

void rn_replica_mgr_tick(rn_replica_mgr_t *m, int64_t now_ms) {
    if (!m->cfg.alter_isr) return;
    isr_proposal_t props[32];
    int nprops = 0;
    pthread_mutex_lock(&m->lock);
    const char *k;
    void *v;
    for (size_t i = 0; nprops < 32 && rn_map_next(&m->parts, &i, &k, &v);) {
        part_t *p = v;
        isr_proposal_t *pr = &props[nprops];
        if (p->role != ROLE_LEADER) continue;
        bool changed = rn_repl_leader_wanted_isr(&p->leader, now_ms, m->cfg.lag_max_ms, pr->isr, &pr->nisr);
        bool resend = !changed && p->leader.npending > 0 && now_ms - p->proposed_ms >= ISR_RESEND_MS;
        if (!changed && !resend) continue;
        if (resend) { /* the same proposal, still pending: it keeps counting for the high watermark */
            memcpy(pr->isr, p->leader.pending_isr, (size_t)p->leader.npending * sizeof(int32_t));
            pr->nisr = p->leader.npending;
        }
        rn_repl_leader_set_pending(&p->leader, pr->isr, pr->nisr);
        p->proposed_ms = now_ms;
        pr->resend = resend;
        snprintf(pr->topic, sizeof(pr->topic), "%s", p->topic);
        pr->partition = p->partition;
        pr->leader_epoch = p->st.leader_epoch;
        pr->partition_epoch = p->st.partition_epoch;
        nprops++;
    }
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < nprops; i++) {
        if (props[i].resend)
            RN_DEBUG("replica", "%s-%d: proposing an ISR of %d replicas again", props[i].topic, props[i].partition,
                     props[i].nisr);
        else
            RN_INFO("replica", "%s-%d: proposing an ISR of %d replicas", props[i].topic, props[i].partition,
                    props[i].nisr);
        m->cfg.alter_isr(m->cfg.arg, props[i].topic, props[i].partition, props[i].leader_epoch,
                         props[i].partition_epoch, props[i].isr, props[i].nisr);
    }
}
