/*
 * rn_replica_mgr.h — a node's replicas: which partitions it leads and which it
 * follows, the leader-side state of each led partition, and the fetcher
 * threads that copy followed partitions from their leaders.
 *
 * Input is partition state as the metadata image has it (leader, leader
 * epoch, replicas, ISR); rn_replica_mgr_set_partition makes this node leader
 * or follower of it (or neither). Output goes through callbacks: a leader's
 * high watermark moved (wake parked produce/fetch requests), a leader wants a
 * different ISR (send AlterPartition to the controller).
 *
 * Fetchers. One thread per leader node, like Kafka's replica fetcher threads:
 * a Fetch (v12, ReplicaId = this node) for all partitions followed from that
 * leader, with FetchOffset = the local log end, LastFetchedEpoch, and
 * CurrentLeaderEpoch; each partition's answer goes through
 * rn_repl_follower_apply. The next fetch is sent only once what was appended
 * is durable (group commit; rn_replica_mgr_on_sync), so the offset a follower
 * reports to its leader is always on its disk — a high watermark means
 * "durable on every ISR member". Errors back off for replica.fetch.backoff.ms.
 *
 * Threads. set_partition/remove/serve/tick/check may be called from any
 * thread; one mutex guards the partition table and the leader states. It is
 * held for a serve (no I/O but an index lookup) and while a fetcher applies a
 * partition's data (a write, rarely a truncation), so a partition's role
 * cannot change under an apply. A lock per partition would shorten that.
 */
#ifndef RN_REPLICA_MGR_H
#define RN_REPLICA_MGR_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_log.h"
#include "rn_msg_gen.h"
#include "rn_replica.h"

typedef struct rn_replica_mgr rn_replica_mgr_t;

/* One partition's state from the metadata image. */
typedef struct {
    const char *topic;
    int32_t partition;
    int32_t leader; /* -1: none */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t replicas[RN_REPL_MAX_REPLICAS];
    int32_t nreplicas;
    int32_t isr[RN_REPL_MAX_REPLICAS];
    int32_t nisr;
    int32_t min_isr; /* min.insync.replicas of the topic */
} rn_partition_state_t;

typedef struct {
    int32_t node_id;                   /* node.id */
    int64_t lag_max_ms;                /* replica.lag.time.max.ms */
    int32_t fetch_max_bytes;           /* replica.fetch.response.max.bytes */
    int32_t fetch_partition_max_bytes; /* replica.fetch.max.bytes */
    int32_t fetch_wait_max_ms;         /* replica.fetch.wait.max.ms */
    int64_t fetch_backoff_ms;          /* replica.fetch.backoff.ms */
    int64_t request_timeout_ms;        /* replica.socket.timeout.ms */
    /* Where node `id` listens (false: unknown now). */
    bool (*node_address)(void *arg, int32_t id, char *host, size_t hostlen, int *port);
    /* Some led partition's high watermark moved (any thread): wake waiters. */
    void (*hw_advanced)(void *arg);
    /* A leader wants this ISR for the partition (from rn_replica_mgr_tick). */
    void (*alter_isr)(void *arg, const char *topic, int32_t partition, int32_t leader_epoch, int32_t partition_epoch,
                      const int32_t *isr, int32_t nisr);
    void *arg;
    rn_logdir_t *logdir; /* durable appends: the fetcher waits for its sync ticket */
} rn_replica_mgr_config_t;

rn_err_t rn_replica_mgr_new(const rn_replica_mgr_config_t *cfg, rn_replica_mgr_t **out);
/* Stops the fetchers (interrupting their calls) and frees everything. */
void rn_replica_mgr_free(rn_replica_mgr_t *m);

/* Applies a partition state to the local replica `log`: leader (the log's
 * high watermark handed to replication, the epoch begun), follower (fetched
 * from the leader; high watermark from the leader), or neither (this node is
 * not a replica, or there is no leader: fetching stops). A state with an older
 * leader epoch than the one applied is ignored (RN_ERR_AGAIN). */
rn_err_t rn_replica_mgr_set_partition(rn_replica_mgr_t *m, rn_log_t *log, const rn_partition_state_t *st);
void rn_replica_mgr_remove(rn_replica_mgr_t *m, rn_log_t *log);

/* What the Fetch handler answers one partition of a follower's Fetch. */
typedef struct {
    int16_t error;
    int64_t high_watermark, log_start_offset, last_stable_offset;
    rn_epoch_end_t diverging; /* epoch -1, end -1: none */
    rn_log_read_t read;       /* file region to send (read.file retained, release it) */
} rn_repl_served_t;
rn_err_t rn_replica_mgr_serve(rn_replica_mgr_t *m, rn_log_t *log, int32_t replica_id, int32_t current_leader_epoch,
                              int64_t fetch_offset, int32_t last_fetched_epoch, int32_t max_bytes, bool min_one,
                              int64_t now_ms, rn_repl_served_t *out);
/* Puts a serve's result into a Fetch response partition; the records go as
 * a file splice, so s->read.file must stay retained until the response is sent. */
void rn_repl_served_to_response(const rn_repl_served_t *s, rn_FetchResponse_PartitionData_t *pd);
/* Produce with acks=all on a led partition: NOT_ENOUGH_REPLICAS below
 * min.insync.replicas, NOT_LEADER_OR_FOLLOWER if not led here. */
rn_err_t rn_replica_mgr_check_acks_all(rn_replica_mgr_t *m, rn_log_t *log);
/* The leader's own durable end moved (group commit round): recompute HWs. */
void rn_replica_mgr_on_sync(rn_replica_mgr_t *m);
/* Periodic (e.g. every second): ISR shrink/expand proposals through alter_isr. */
void rn_replica_mgr_tick(rn_replica_mgr_t *m, int64_t now_ms);
/* Is this node the leader of the log's partition, and at which epoch? */
bool rn_replica_mgr_leads(rn_replica_mgr_t *m, rn_log_t *log, int32_t *leader_epoch);

#endif
