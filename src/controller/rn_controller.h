/*
 * rn_controller.h — the controller's decisions: (metadata image, event, time) → records.
 *
 * A pure library: no threads, no sockets, no clock (now_ms is a parameter), randomness from a
 * seeded generator. The active controller calls one decision per event; the decision reads the
 * image, appends the records that carry it out to `out` and returns RN_OK or Kafka's error code
 * for the request. `out` cuts them into Raft entries of at most out->entry_bytes_max bytes, and
 * the records are ordered so that the image is consistent after every entry (e.g. leaderships
 * move before a broker is fenced, an unfence comes before the elections it allows). The caller
 * proposes the entries in order, and must apply them to the image (speculatively, at the indexes
 * Raft returned) before taking the next decision: decisions read the image as it is.
 * When a decision fails, `out` is left as it was, except for RN_ERR_NEW_LEADER_ELECTED from
 * rn_ctl_alter_partition, whose records must be proposed all the same (Kafka's semantics).
 *
 * The only state kept here, outside the image, is soft: the last heartbeat time of each broker
 * (rn_ctl_activate gives every broker a fresh session when this node becomes active) and the
 * random generator.
 *
 * What each decision does, and the invariants they keep, are in docs/internals/controller.md.
 */
#ifndef RN_CONTROLLER_H
#define RN_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_err.h"
#include "rn_meta_image.h"
#include "rn_meta_records.h"

typedef struct {
    int64_t session_timeout_ms;          /* broker.session.timeout.ms (9000) */
    int32_t num_partitions;              /* num.partitions (1): CreateTopics with -1 */
    int16_t default_replication_factor;  /* default.replication.factor (1): CreateTopics with -1 */
    int32_t min_insync_replicas;         /* min.insync.replicas (1), unless the topic sets it */
    bool unclean_leader_election_enable; /* unclean.leader.election.enable (false), unless the topic sets it */
    int32_t partitions_per_request_max;  /* partitions one CreateTopics/CreatePartitions may add (10000) */
    int32_t producer_id_block_size;      /* producer ids handed out per AllocateProducerIds (1000, as Kafka) */
    size_t batch_bytes_max;              /* what to give rn_meta_batch_init: one decision's records (64 MiB) */
    int32_t self_broker_id;              /* the controller's own node when it is also a broker (-1: none) */
} rn_ctl_config_t;

void rn_ctl_config_default(rn_ctl_config_t *cfg);

typedef struct rn_controller rn_controller_t;

rn_controller_t *rn_ctl_new(const rn_ctl_config_t *cfg, uint64_t seed); /* NULL on OOM */
void rn_ctl_free(rn_controller_t *ctl);
/* Why the last decision failed (a static string), for a response's ErrorMessage. */
const char *rn_ctl_error_message(const rn_controller_t *ctl);

/* This node became the active controller: every registered broker gets a session from now. */
void rn_ctl_activate(rn_controller_t *ctl, const rn_meta_image_t *img, int64_t now_ms);

/* ---- brokers ---- */

/* BrokerRegistration. req->epoch and the flags are ignored; the broker is registered fenced and
 * its new epoch is returned in *epoch. previous_broker_epoch (-1 when unknown) other than the
 * broker's current epoch marks an unclean shutdown: the broker leaves every ELR (KIP-966). */
rn_err_t rn_ctl_register_broker(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_meta_reg_t *req,
                                int64_t previous_broker_epoch, int64_t now_ms, rn_meta_batch_t *out,
                                int64_t *epoch);

typedef struct {
    int32_t broker_id;
    int64_t broker_epoch;
    int64_t current_metadata_offset;
    bool want_fence;
    bool want_shut_down;
} rn_ctl_heartbeat_t;

typedef struct {
    bool is_caught_up;
    bool is_fenced;
    bool should_shut_down;
} rn_ctl_heartbeat_reply_t;

/* BrokerHeartbeat: session bookkeeping, unfence when caught up, fence on request, controlled
 * shutdown (leaderships and ISR memberships move away first; should_shut_down once the broker
 * leads nothing and has seen that). The reply describes the state after `out` applies. */
rn_err_t rn_ctl_heartbeat(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_ctl_heartbeat_t *req,
                          int64_t now_ms, rn_meta_batch_t *out, rn_ctl_heartbeat_reply_t *reply);

/* Fence the brokers whose session (broker.session.timeout.ms) expired, up to 32 per call (call
 * again for more). Returns how many. */
int32_t rn_ctl_tick(rn_controller_t *ctl, const rn_meta_image_t *img, int64_t now_ms, rn_meta_batch_t *out);

/* ---- topics ---- */

typedef struct {
    rn_str_t key;
    rn_str_t value;
} rn_ctl_kv_t;

typedef struct {
    rn_str_t name;
    int32_t num_partitions;     /* -1: num.partitions */
    int16_t replication_factor; /* -1: default.replication.factor */
    int32_t nassignments;       /* manual assignment, one per partition (then the two above are -1) */
    const rn_meta_ids_t *assignments;
    int32_t nconfigs;
    const rn_ctl_kv_t *configs;
    bool validate_only;         /* decide, but write no records */
} rn_ctl_create_topic_t;

typedef struct {
    uint8_t topic_id[16];
    int32_t num_partitions;
    int16_t replication_factor;
} rn_ctl_create_topic_result_t;

rn_err_t rn_ctl_create_topic(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_ctl_create_topic_t *req,
                             rn_meta_batch_t *out, rn_ctl_create_topic_result_t *res);

/* A topic of a single-node data directory (runnel.meta, written before the quorum ran) joins
 * the metadata log under its own id (its partition directories carry it), with its configs
 * (req: name, num_partitions, configs), every partition on `node` alone, in its ISR and
 * leaderless until that broker is unfenced (it then leads, as after a whole-cluster restart). */
rn_err_t rn_ctl_import_topic(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_ctl_create_topic_t *req,
                             const uint8_t topic_id[16], int32_t node, rn_meta_batch_t *out);

/* CreatePartitions: grow `name` to `count` partitions (assignments: one per new partition, or 0). */
rn_err_t rn_ctl_create_partitions(rn_controller_t *ctl, const rn_meta_image_t *img, rn_str_t name, int32_t count,
                                  int32_t nassignments, const rn_meta_ids_t *assignments, bool validate_only,
                                  rn_meta_batch_t *out);

/* DeleteTopics, by name or (name.len < 0) by id. */
rn_err_t rn_ctl_delete_topic(rn_controller_t *ctl, const rn_meta_image_t *img, rn_str_t name,
                             const uint8_t topic_id[16], rn_meta_batch_t *out);

/* ---- partitions ---- */

typedef struct {
    int32_t broker_id;
    int64_t broker_epoch;
    uint8_t topic_id[16];
    int32_t partition;
    int32_t leader_epoch;
    int32_t partition_epoch;
    rn_meta_ids_t new_isr;
    int64_t new_isr_epochs[RN_META_REPLICAS_MAX]; /* -1: not checked (AlterPartition < v3) */
    int8_t leader_recovery_state;
} rn_ctl_alter_partition_t;

/* AlterPartition from a partition leader. On RN_OK and NEW_LEADER_ELECTED *result is the
 * partition as it will be once `out` applies (what the response carries). */
rn_err_t rn_ctl_alter_partition(rn_controller_t *ctl, const rn_meta_image_t *img,
                                const rn_ctl_alter_partition_t *req, rn_meta_batch_t *out,
                                rn_meta_part_rec_t *result);

#define RN_CTL_ELECT_PREFERRED 0
#define RN_CTL_ELECT_UNCLEAN 1

/* ElectLeaders for one partition. */
rn_err_t rn_ctl_elect_leader(rn_controller_t *ctl, const rn_meta_image_t *img, int8_t election_type,
                             rn_str_t topic, int32_t partition, rn_meta_batch_t *out);

/* auto.leader.rebalance.enable: preferred-leader elections for up to `max` partitions whose
 * preferred replica (the first) is an active ISR member but does not lead, in (topic, partition)
 * order. Returns how many; the caller runs it every leader.imbalance.check.interval.seconds. */
int32_t rn_ctl_rebalance_leaders(rn_controller_t *ctl, const rn_meta_image_t *img, int32_t max,
                                 rn_meta_batch_t *out);

/* AlterPartitionReassignments for one partition: target replicas, or NULL to cancel. */
rn_err_t rn_ctl_reassign(rn_controller_t *ctl, const rn_meta_image_t *img, rn_str_t topic, int32_t partition,
                         const rn_meta_ids_t *target, rn_meta_batch_t *out);

/* AlterConfigs / IncrementalAlterConfigs, one key (value len -1 deletes it): a topic's config
 * (resource type 2; the topic must exist), the cluster default (type 4, name "") or one broker's
 * (type 4, its id). min.insync.replicas must be a positive integer and
 * unclean.leader.election.enable true or false (INVALID_CONFIG). A change of min.insync.replicas
 * clears the ELR of the partitions it governs (KIP-966); enabling unclean election elects
 * leaders for the leaderless partitions it governs. */
rn_err_t rn_ctl_alter_config(rn_controller_t *ctl, const rn_meta_image_t *img, int8_t resource_type,
                             rn_str_t resource_name, rn_str_t key, rn_str_t value, rn_meta_batch_t *out);

/* AllocateProducerIds: a block of producer_id_block_size ids starting at *first. */
rn_err_t rn_ctl_alloc_producer_ids(rn_controller_t *ctl, const rn_meta_image_t *img, int32_t broker_id,
                                   int64_t broker_epoch, rn_meta_batch_t *out, int64_t *first, int32_t *count);

/* ---- placement (exposed for tests) ---- */

typedef struct {
    int32_t id;
    const char *rack; /* NULL: none */
} rn_ctl_placement_broker_t;

/* Kafka's replica assignment over `brokers` (sorted by id): round-robin from start_index with
 * the follower shift, rack-alternating when every broker has a rack. Writes nparts lists. */
rn_err_t rn_ctl_place_replicas(const rn_ctl_placement_broker_t *brokers, int32_t nbrokers, int32_t first_partition,
                               int32_t nparts, int32_t rf, int32_t start_index, int32_t shift, rn_meta_ids_t *out);

#endif
