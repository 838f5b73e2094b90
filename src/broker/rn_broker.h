/*
 * rn_broker.h — the broker: topics and partitions over the storage engine,
 * request dispatch, and the waiting that requests do (produce for fsync,
 * fetch for data).
 *
 * Threads. Requests run on the network threads (one rn_loop each). Topic and
 * partition metadata is guarded by a read-write lock (`topics_lock`): handlers
 * take it shared, topic creation/deletion exclusive. Each partition's log has
 * its own lock inside the storage engine. Work that waits — a produce until its
 * sync ticket is durable, a fetch until min bytes arrive or its wait runs out —
 * is parked on its loop (rn_broker_loop_t) and woken by a coalesced
 * rn_loop_post from the log dir's flusher thread or from an appending thread.
 *
 * Partitions have a leader id, leader epoch, replica list and ISR, from the
 * metadata image (src/cluster; a lone node is a one-voter quorum of itself);
 * the high watermark comes from replication.
 */
#ifndef RN_BROKER_H
#define RN_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rn_config.h"
#include "rn_header.h"
#include "rn_histo.h"
#include "rn_log.h"
#include "rn_map.h"
#include "rn_net.h"

typedef struct rn_broker rn_broker_t;
typedef struct rn_topic rn_topic_t;

#define RN_PARTITION_MAX_REPLICAS 16

typedef struct {
    rn_topic_t *topic;
    int32_t index;
    rn_log_t *log; /* NULL when this node holds no replica */
    int32_t leader_id; /* -1: no leader */
    int32_t leader_epoch;
    int32_t nreplicas, nisr;
    int32_t replicas[RN_PARTITION_MAX_REPLICAS];
    int32_t isr[RN_PARTITION_MAX_REPLICAS];
} rn_partition_t;

struct rn_topic {
    char *name;
    uint8_t id[16];
    int32_t partition_count;
    rn_partition_t **partitions;
    rn_config_set_t configs; /* topic overrides */
    bool internal;
    atomic_int refs;
    bool deleted;
    atomic_uint_fast64_t bytes_in, bytes_out, messages_in; /* for metrics */
    /* Cached, resolved from configs under topics_lock. */
    int32_t max_message_bytes;
    bool compacted;
};

/* Parked work on one loop. */
typedef struct rn_wait rn_wait_t;
struct rn_wait {
    rn_wait_t *next, *prev;
    uint64_t sync_ticket;   /* produce: wait until durable (0: none) */
    bool wants_data;        /* fetch: re-check on data events */
    rn_timer_t *timer;      /* fetch: max wait */
    /* Called on the loop: `timed_out` when the timer fired, `err` if the log dir failed. */
    void (*resume)(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err);
    void *ctx;
};

typedef struct {
    rn_broker_t *broker;
    rn_loop_t *loop;
    rn_wait_t waits; /* sentinel of a circular list */
    atomic_int nwaits;
    int nheld; /* client requests held for the first unfencing (rn_dispatch.c; loop thread only) */
    atomic_bool wake_posted;
} rn_broker_loop_t;

#define RN_STATS_APIS 80
typedef struct rn_broker_stats {
    atomic_uint_fast64_t requests[RN_STATS_APIS], errors[RN_STATS_APIS];
    rn_histo_t latency[RN_STATS_APIS]; /* request received → response handed to the network */
    atomic_uint_fast64_t bytes_in, bytes_out, messages_in, bad_requests;
} rn_broker_stats_t;

typedef struct rn_metrics rn_metrics_t;
/* Broker state as /health reports it. */
enum { RN_STATE_RECOVERING = 0, RN_STATE_SERVING = 1, RN_STATE_STOPPING = 2 };

struct rn_broker {
    rn_broker_config_t cfg;
    rn_logdir_t *logdir;
    rn_net_t *net;
    rn_broker_loop_t *loops;
    atomic_int nloops; /* 0 until the loops are set up (rn_broker_start): other threads may wake them */
    pthread_rwlock_t topics_lock;
    rn_map_t topics;          /* name -> rn_topic_t* */
    pthread_mutex_t meta_lock; /* serialises metadata file writes and producer id blocks */
    int64_t next_producer_id;
    int64_t producer_id_block_end;
    char cluster_id[64];
    atomic_bool stopping;
    atomic_int state;
    rn_metrics_t *metrics;
    rn_broker_stats_t stats;
    int64_t started_ms;
    struct rn_group_coordinator *group_coordinator; /* consumer groups (src/group/) */
    struct rn_txn_coordinator *txn_coordinator;     /* transactions (src/txn/) */
    struct rn_cluster *cluster;                     /* src/cluster/: set by rn_cluster_init (NULL before) */
};

rn_err_t rn_broker_new(rn_broker_t **out, const rn_config_set_t *explicit_values, char *err, size_t errlen);
rn_err_t rn_broker_start(rn_broker_t *b);
int rn_broker_port(const rn_broker_t *b);
/* The listener a request came in on (Metadata answers with its advertised addresses). */
const rn_listener_t *rn_broker_req_listener(const rn_broker_t *b, const rn_req_t *req);
void rn_broker_stop(rn_broker_t *b);
void rn_broker_free(rn_broker_t *b);

/* ---- topics (rn_topics.c) ---- */
/* Legal name check: INVALID_TOPIC_EXCEPTION with a message. */
rn_err_t rn_topic_name_validate(const char *name, size_t len, char *msg, size_t msglen);
/* Lookup under topics_lock (caller holds it, shared or exclusive). */
rn_topic_t *rn_broker_topic_locked(rn_broker_t *b, const char *name, size_t len);
rn_partition_t *rn_broker_partition_locked(rn_broker_t *b, const char *name, size_t len, int32_t partition);
rn_topic_t *rn_broker_topic_by_id_locked(rn_broker_t *b, const uint8_t id[16]);
void rn_topic_retain(rn_topic_t *t);
void rn_topic_release(rn_topic_t *t);
/* For src/cluster, which builds the registry from the metadata image. */
rn_topic_t *rn_topic_new(const char *name, size_t len, int32_t partitions);
void rn_topic_refresh_locked(rn_broker_t *b, rn_topic_t *t); /* cached config values */
rn_err_t rn_topic_grow_locked(rn_topic_t *t, int32_t partitions);
/* Is this node the partition's leader with a local log? (topics_lock held) */
static inline bool rn_partition_led_here(const rn_broker_t *b, const rn_partition_t *p) {
    return p && p->log && p->leader_id == b->cfg.node_id;
}

/* Dynamic broker configs: known, not read-only, valid values (INVALID_CONFIG naming the key). */
rn_err_t rn_broker_dynamic_configs_validate(const rn_config_set_t *configs, char *msg, size_t msglen);
/* The metadata image's sets for this node become its dynamic configs and take
 * effect (rn_broker_apply_configs_locked) if they differ; the old sets are handed back in the
 * arguments. Takes topics_lock exclusively. True if anything changed. */
bool rn_broker_replace_dynamic_configs(rn_broker_t *b, rn_config_set_t *per_broker, rn_config_set_t *defaults);
void rn_broker_apply_configs_locked(rn_broker_t *b);
/* IncrementalAlterConfigs' operations on a resource's explicit set (rn_h_admin.c). */
struct rn_IncrementalAlterConfigsRequest_AlterConfigsResource;
rn_err_t rn_admin_incremental_edit(rn_broker_t *b,
                                   const struct rn_IncrementalAlterConfigsRequest_AlterConfigsResource *res,
                                   rn_config_set_t *cs, char *msg, size_t msglen);
/* An AlterConfigs or IncrementalAlterConfigs request (by api_key), read alike (rn_h_admin.c;
 * the active controller's job reads it too). */
typedef struct {
    int16_t api_key;
    const void *rq; /* rn_AlterConfigsRequest_t or rn_IncrementalAlterConfigsRequest_t */
    int32_t n;      /* resources */
    bool validate_only;
} rn_admin_alter_t;
void rn_admin_alter_init(rn_admin_alter_t *v, int16_t api_key, const void *rq);
int8_t rn_admin_alter_type(const rn_admin_alter_t *v, int32_t i);
rn_str_t rn_admin_alter_name(const rn_admin_alter_t *v, int32_t i);
/* Resource i's new explicit set into *out (initialised, empty): AlterConfigs' set replaces the
 * current one; IncrementalAlterConfigs' operations edit a copy of `cur` (NULL: empty). */
rn_err_t rn_admin_alter_configs_of(rn_broker_t *b, const rn_admin_alter_t *v, int32_t i, const rn_config_set_t *cur,
                                   rn_config_set_t *out, char *msg, size_t msglen);
/* BROKER_LOGGER: every value a log level (INVALID_CONFIG); set on this node unless validate_only. */
rn_err_t rn_admin_alter_loggers(const rn_config_set_t *cs, bool validate_only, char *msg, size_t msglen);
/* Validate topic configs: INVALID_CONFIG with a message naming the key. */
rn_err_t rn_topic_configs_validate(const rn_config_set_t *configs, char *msg, size_t msglen);
/* Auto-create on Metadata/Produce if allowed; returns the error to report. */
rn_err_t rn_broker_auto_create(rn_broker_t *b, const char *name, size_t len);
/* Persist topics + broker dynamic config + producer id block (meta_lock held inside). */
rn_err_t rn_broker_save_metadata(rn_broker_t *b);
rn_err_t rn_broker_load_metadata(rn_broker_t *b);
int64_t rn_broker_alloc_producer_id(rn_broker_t *b);

/* ---- waiting (rn_wait.c) ---- */
rn_broker_loop_t *rn_broker_loop_for(rn_broker_t *b, rn_loop_t *loop);
void rn_broker_park(rn_broker_loop_t *bl, rn_wait_t *w, int64_t timeout_ms);
void rn_broker_unpark(rn_broker_loop_t *bl, rn_wait_t *w);
/* Thread-safe: something changed (append, sync, topic change); wake loops with waiters. */
void rn_broker_wake_all(rn_broker_t *b);
/* What rn_broker_when_replicated calls on the request's loop. */
typedef void (*rn_durable_fn)(rn_broker_t *b, rn_req_t *req, void *ctx, rn_err_t err);

/* ---- dispatch (rn_dispatch.c) ---- */
typedef void (*rn_handler_fn)(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
typedef struct {
    int16_t api_key;
    int16_t min_version, max_version;
    rn_handler_fn fn;
} rn_handler_t;
extern const rn_handler_t rn_handlers[];
extern const size_t rn_handlers_count;
extern const rn_handler_t *const rn_cluster_admin_handlers; /* the controller's admin APIs, then node-to-node ones */
extern const size_t rn_cluster_admin_handlers_count;
const rn_handler_t *rn_handler_find(int16_t api_key);
/* Whether the listener `req` came in on exposes api_key (a controller listener: KRaft's controller APIs). */
bool rn_api_served_on(const rn_broker_t *b, const rn_req_t *req, int16_t api_key);
void rn_broker_on_request(void *ctx, rn_req_t *req);

/* Encode header + body with `encode` and send. */
typedef void (*rn_encode_fn)(rn_buf_t *b, int16_t version, const void *msg);
void rn_broker_respond(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_encode_fn encode, const void *msg);
/* A request that could not be decoded: log, count, close. */
void rn_broker_bad_request(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_err_t err);
/* What a coordinator's answer waits for: the high watermark of each internal
 * partition it wrote, at the leader epoch it wrote under (the high watermark
 * implies the leader's own sync). */
typedef struct {
    rn_log_t *log; /* retained */
    int64_t target;
    int32_t epoch;
} rn_hw_target_t;
typedef struct {
    rn_hw_target_t *hw; /* malloc'd */
    int32_t n, cap;
    bool nomem;
} rn_durable_t;
static inline void rn_durable_init(rn_durable_t *d) { *d = (rn_durable_t){0}; }
/* Wait for log's high watermark to reach target (retains log). */
void rn_durable_hw(rn_durable_t *d, rn_log_t *log, int64_t target, int32_t epoch);
void rn_durable_release(rn_durable_t *d);
/* Now: RN_OK (durable), RN_ERR_AGAIN (not yet), NOT_COORDINATOR (a partition's
 * leadership moved), COORDINATOR_NOT_AVAILABLE (anything else). */
rn_err_t rn_durable_check(rn_broker_t *b, const rn_durable_t *d);
/* Calls done() on the request's loop once *d (taken over) is replicated (at
 * once if it holds nothing), with err: RN_OK, NOT_COORDINATOR when a
 * partition's leadership moved, COORDINATOR_NOT_AVAILABLE when it timed out,
 * the ISR fell below min.insync.replicas or the log dir went offline, or
 * RN_ERR_LIMIT. */
void rn_broker_when_replicated(rn_broker_t *b, rn_req_t *req, rn_durable_t *d, int64_t timeout_ms, rn_durable_fn done,
                               void *ctx);
/* Sends `resp` once *d (taken over) is replicated; if that fails,
 * fail(resp, code) first sets the response's error codes: NOT_COORDINATOR when
 * a partition's leadership moved, fail_code for anything else (timeout, the
 * ISR below min.insync.replicas, the log dir offline). */
typedef void (*rn_fail_fn)(void *resp, int16_t err);
void rn_broker_respond_replicated(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_durable_t *d,
                                  int64_t timeout_ms, rn_encode_fn encode, void *resp, rn_fail_fn fail,
                                  int16_t fail_code);

/* Handlers, one per API (rn_h_*.c). */
void rn_h_api_versions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_metadata(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_produce(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_fetch(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_list_offsets(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_create_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_delete_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_create_partitions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_describe_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_alter_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_incremental_alter_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_delete_records(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_describe_cluster(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_init_producer_id(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_offset_for_leader_epoch(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);

/* ---- metrics (rn_metrics.c): Prometheus text on metrics.listeners ---- */
rn_err_t rn_metrics_start(rn_broker_t *b);
void rn_metrics_stop(rn_broker_t *b);
int rn_metrics_port(const rn_broker_t *b);
/* Render the exposition text into `out` (also used by tests). */
void rn_metrics_render(rn_broker_t *b, rn_buf_t *out);

/* Group coordinator (src/group/): consumer groups and committed offsets.
 * start starts its timer thread (call after rn_cluster_init: it loads the
 * partitions of __consumer_offsets this node comes to lead); free stops it
 * (call after the network has stopped). */
rn_err_t rn_group_coordinator_start(rn_broker_t *b, char *err, size_t errlen);
void rn_group_coordinator_free(rn_broker_t *b);
void rn_group_coordinator_stop(rn_broker_t *b); /* its thread only (before the cluster goes) */
/* After the registry and the replica manager followed a new
 * image: the coordinator loads the partitions of __consumer_offsets this node
 * now leads and unloads those it no longer does (in its own thread). */
void rn_group_coordinator_follow(rn_broker_t *b);
/* For the transaction coordinator (src/txn/). TxnOffsetCommit: the offsets
 * are appended to the group's __consumer_offsets partition as a
 * transactional batch of producer_id/epoch, pending until the COMMIT marker;
 * *d: what makes it durable. NOT_COORDINATOR: the group is coordinated elsewhere. */
typedef struct {
    rn_str_t topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    rn_str_t metadata;
} rn_txn_offset_t;
rn_err_t rn_group_txn_offset_commit(rn_broker_t *b, rn_str_t group_id, int64_t producer_id, int16_t producer_epoch,
                                    const rn_txn_offset_t *offs, int32_t n, rn_durable_t *d);
/* A COMMIT/ABORT marker of producer_id was appended to partition `partition`
 * of __consumer_offsets: its pending offsets there become visible or vanish. */
void rn_group_txn_complete(rn_broker_t *b, int32_t partition, int64_t producer_id, bool commit);
/* The __consumer_offsets partition of a group (asking for the topic when it does not exist yet:
 * then the partition it will have, of the configured offsets.topic.num.partitions). */
int32_t rn_group_offsets_partition(rn_broker_t *b, rn_str_t group_id);
void rn_h_find_coordinator(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_join_group(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_sync_group(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_heartbeat(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_leave_group(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_offset_commit(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_offset_fetch(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_list_groups(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_describe_groups(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_delete_groups(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_offset_delete(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);

/* Helpers for handlers. */
rn_str_t rn_str_dup_arena(rn_arena_t *a, const char *s);
rn_str_t rn_str_printf_arena(rn_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
