/*
 * rn_cluster_roles.h — process.roles: what a cluster node runs (KRaft's shape).
 *
 *   broker,controller  a voter of the metadata quorum that also hosts partitions (as before);
 *   controller         a voter only: Raft, the active controller's decisions, the controller
 *                      RPCs on its controller listener; never registers as a broker, so it
 *                      is in no Metadata response and never a replica;
 *   broker             not a Raft member: reads the committed metadata log from a controller
 *                      (rn_meta_feed: an observer), registers and heartbeats with the active
 *                      controller, hosts partitions, forwards admin requests to it.
 *
 * A broker-only node finds the controllers in controller.quorum.voters or, without it, in
 * controller.quorum.bootstrap.servers (KIP-853 style: any controller answers with the
 * leader's address). A controller not among controller.quorum.voters (or with only bootstrap
 * servers) joins the quorum as a learner (rn_quorum.h); AddRaftVoter makes it a voter.
 *
 * This file holds the configuration check (pure) and the runtime pieces the roles add to
 * rn_cluster.c: the controllers' side of the metadata feed (a handler that long-polls),
 * the brokers' observer thread, and the forwarding of admin requests to the controller.
 */
#ifndef RN_CLUSTER_ROLES_H
#define RN_CLUSTER_ROLES_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_broker.h"
#include "rn_quorum.h"

typedef struct {
    bool broker, controller;
    bool implied;    /* no voters or bootstrap servers configured: a one-voter quorum of this node */
    bool join; /* a controller not among controller.quorum.voters: it joins the quorum (a learner) */
    int32_t nvoters; /* controller.quorum.voters (0: unset) */
    rn_quorum_voter_t voters[RN_RAFT_MAX_VOTERS];
    int32_t nbootstrap; /* controller.quorum.bootstrap.servers (ids -1) */
    rn_quorum_voter_t bootstrap[RN_RAFT_MAX_VOTERS];
} rn_cluster_roles_t;

/* The voter a zero-config node (process.roles=broker,controller, neither voters nor
 * bootstrap servers) is to itself: node.id at its controller listener, else its first,
 * a wildcard host read as loopback. The port may be 0 (known once bound). */
void rn_cluster_roles_self_voter(const rn_broker_config_t *cfg, rn_quorum_voter_t *out);
/* Checks process.roles against node.id, the voters or bootstrap servers and the
 * listeners; INVALID_CONFIG with a message naming the key otherwise. */
rn_err_t rn_cluster_roles_parse(const rn_broker_config_t *cfg, rn_cluster_roles_t *out, char *err, size_t errlen);

/* ---- runtime ---- */

typedef struct rn_roles rn_roles_t;

typedef struct {
    rn_broker_t *b;
    const rn_cluster_roles_t *roles;
    /* The image's state-machine callbacks (they take the image lock): the observer feeds them. */
    void (*apply)(void *arg, uint64_t index, const uint8_t *data, size_t len);
    rn_err_t (*snapshot_load)(void *arg, uint64_t index, const uint8_t *data, size_t len);
    /* Controllers: the committed image serialized, and the offset it is at. */
    rn_err_t (*snapshot)(void *arg, rn_buf_t *out, uint64_t *index);
    /* Whether `id` is an active broker of the image (Metadata's ControllerId). */
    bool (*broker_active)(void *arg, int32_t id);
    /* Broker-only: the observer learned of another active controller (optional). */
    void (*leader_change)(void *arg, int32_t leader, uint64_t term);
    void *arg;
} rn_roles_config_t;

rn_err_t rn_roles_new(const rn_roles_config_t *cfg, rn_roles_t **out);
/* Controllers: the quorum, once started. */
void rn_roles_set_quorum(rn_roles_t *r, rn_quorum_t *q);
/* From the image's apply and snapshot-load callbacks (image lock held). */
void rn_roles_on_apply(rn_roles_t *r, uint64_t index, const uint8_t *data, size_t len);
void rn_roles_on_load(rn_roles_t *r, uint64_t index);
/* Broker-only: starts the observer; with only bootstrap servers, waits (bounded) for a
 * controller's first answer, which carries the cluster id. */
rn_err_t rn_roles_start_observer(rn_roles_t *r, char *err, size_t errlen);
/* Brokers: the forwarding thread. */
rn_err_t rn_roles_start(rn_roles_t *r);
void rn_roles_stop_begin(rn_roles_t *r); /* interrupts blocked calls */
void rn_roles_free(rn_roles_t *r);

int32_t rn_roles_leader(rn_roles_t *r);     /* the active controller as known here; -1 */
uint64_t rn_roles_applied(rn_roles_t *r);   /* the metadata offset applied here */
/* Metadata's ControllerId: the active controller if it is a broker clients can reach, else
 * this broker (it forwards), else the active controller. */
int32_t rn_roles_controller_id(rn_roles_t *r);
/* The controller listener of node `id` (the voters, or what a controller told the observer). */
bool rn_roles_controller_address(rn_roles_t *r, int32_t id, char *host, size_t hostlen, int *port);
/* Admin requests reaching a broker that is not the active controller go to the controller
 * and its answer back to the client (once: a forwarded request is never forwarded again).
 * True if taken. */
bool rn_roles_forward(rn_roles_t *r, rn_req_t *req, const rn_req_header_t *h, const rn_reader_t *body);

/* RN_API_RUNNEL_METADATA on a controller node. */
void rn_roles_handle_metadata(rn_roles_t *r, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body);

#endif
