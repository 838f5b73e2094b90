/*
 * rn_cluster.h — this broker as one node of a Runnel cluster.
 *
 * Every node runs it: with controller.quorum.voters (or
 * controller.quorum.bootstrap.servers) unset, a node is a one-voter quorum of
 * itself (rn_cluster_roles_self_voter). process.roles says what the node runs
 * (rn_cluster_roles.h): a voter
 * of the metadata quorum and the controller, a broker, or both. Then:
 *   - the metadata quorum (rn_quorum: Raft over the voters' listeners, an
 *     internal API key) replicates the metadata log; every node applies it to
 *     its image (src/controller/rn_meta_image) — topics, partitions, leaders,
 *     ISR, brokers — and the broker's topic registry and replica manager
 *     follow the image;
 *   - the node that leads the quorum is the active controller: it serves
 *     BrokerRegistration, BrokerHeartbeat, AlterPartition, CreateTopics,
 *     DeleteTopics, CreatePartitions, AlterConfigs/IncrementalAlterConfigs
 *     (topics), reassignments and elections through the decisions of
 *     src/controller/rn_controller, one at a time, each proposed and applied
 *     before it is answered; it fences brokers whose heartbeats stop; the
 *     other nodes forward these admin requests to it and relay its answer;
 *   - a lifecycle thread registers this broker, heartbeats, forwards the
 *     replica manager's ISR changes (AlterPartition) and auto-created topics
 *     to the controller;
 *   - partitions replicate through src/replication (fetchers, ISR, high
 *     watermark); Produce and Fetch go to partition leaders
 *     (NOT_LEADER_OR_FOLLOWER elsewhere).
 */
#ifndef RN_CLUSTER_H
#define RN_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_broker.h"
#include "rn_itopic.h"
#include "rn_meta_feed.h"
#include "rn_msg_gen.h"
#include "rn_replica_mgr.h"

#define RN_API_RUNNEL_RAFT 1000 /* internal: a batch of Raft messages (rn_peers format) */

typedef struct rn_cluster rn_cluster_t;

/* Before the network starts: the quorum, the image replayed, the replica manager. */
rn_err_t rn_cluster_init(rn_broker_t *b, char *err, size_t errlen);
/* After the network started: the controller and lifecycle threads. */
rn_err_t rn_cluster_start(rn_broker_t *b);
/* SIGTERM: ask the controller to move this node's leaderships away and wait
 * (bounded) until it has; hand the metadata leadership on if held. */
void rn_cluster_controlled_shutdown(rn_broker_t *b, int64_t timeout_ms);
/* Before the network stops: queued controller work gets quick answers. */
void rn_cluster_stop_begin(rn_broker_t *b);
/* After the network stopped: threads, quorum, replica manager. */
void rn_cluster_free(rn_broker_t *b);

rn_replica_mgr_t *rn_cluster_replicas(rn_broker_t *b);
int32_t rn_cluster_controller_id(rn_broker_t *b); /* -1: none known */
/* Whether client requests are served: once this broker has been unfenced
 * (Kafka's brokers open their listeners only then); at once on a
 * controller-only node. */
bool rn_cluster_ready(rn_broker_t *b);
/* Metadata and DescribeCluster: the unfenced brokers at their listener called `listener`
 * (the one the request came in on; a broker without it: its first). */
int32_t rn_cluster_brokers(rn_broker_t *b, rn_arena_t *a, const char *listener,
                           rn_MetadataResponse_MetadataResponseBroker_t **out);
/* KIP-392 (replica.selector.class = RackAwareReplicaSelector): the in-sync
 * replica in the consumer's rack a leader sends it to (-1: stay), and whether
 * this node serves consumers' fetches as a follower (to its high watermark). */
int32_t rn_cluster_preferred_read_replica(rn_broker_t *b, const rn_partition_t *p, rn_str_t client_rack);
bool rn_cluster_serves_followers_fetch(rn_broker_t *b);
/* Asks the controller to create `name` with the defaults (auto.create.topics.enable). */
void rn_cluster_auto_create(rn_broker_t *b, const char *name, size_t len);
int64_t rn_cluster_producer_id(rn_broker_t *b, int64_t local_id);
/* Asks the controller to create an internal topic (the coordinators'). */
void rn_cluster_create_internal(rn_broker_t *b, rn_itopic_t *t);
/* Where broker `id` listens, from the image, at its listener called `listener`
 * (NULL, or one it lacks: its first, the inter-broker one); false: unknown. */
bool rn_cluster_broker_address(rn_broker_t *b, int32_t id, const char *listener, char *host, size_t hostlen,
                               int *port);

/* Handlers of the controller-bound and node-to-node APIs. */
void rn_h_runnel_raft(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
/* The metadata quorum's voter set (rn_cluster_quorum.c): DescribeQuorum, AddRaftVoter,
 * RemoveRaftVoter, and the internal join request of a new controller. */
void rn_h_describe_quorum(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_add_raft_voter(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_remove_raft_voter(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_runnel_quorum_join(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
/* Internal: a broker-only node reads the committed metadata log (rn_meta_feed.h). */
void rn_h_runnel_metadata(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_broker_registration(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_broker_heartbeat(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_alter_partition(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_alter_partition_reassignments(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_list_partition_reassignments(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_h_elect_leaders(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_cluster_create_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_cluster_delete_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
void rn_cluster_create_partitions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
/* AlterConfigs / IncrementalAlterConfigs with topic or broker resources: the controller answers
 * every resource (broker loggers are checked there, set by the node the client asked). */
void rn_cluster_alter_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);
/* Did another node forward this request to the controller (it did what was its own)? */
bool rn_cluster_request_forwarded(const rn_req_header_t *h);

#endif
