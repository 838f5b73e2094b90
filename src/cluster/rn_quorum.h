/*
 * rn_quorum.h — the metadata quorum on one node: a Raft node (src/raft) on its
 * file store, talking to the other voters through rn_peers, driven by one
 * thread.
 *
 * The driver thread is the only one that touches the Raft state: it takes the
 * messages other nodes sent (rn_quorum_deliver, from the network threads),
 * the proposals of local callers (rn_quorum_propose), ticks the clock every
 * 10 ms, and fsyncs the store when Raft asks (synchronously: metadata is
 * small). Committed entries reach the state machine callbacks on that thread,
 * in log order, exactly once per start (from the snapshot on).
 *
 * rn_quorum_propose blocks its caller until the entry is applied here (RN_OK
 * with its index), until it is known lost (a different entry was committed at
 * its index: NOT_LEADER_OR_FOLLOWER), or for timeout_ms (REQUEST_TIMED_OUT).
 * A node that is not the leader answers NOT_LEADER_OR_FOLLOWER at once, with
 * the leader it knows of.
 */
#ifndef RN_QUORUM_H
#define RN_QUORUM_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"
#include "rn_raft.h"

typedef struct rn_quorum rn_quorum_t;

typedef struct {
    int32_t id;
    char host[256];
    int port;
} rn_quorum_voter_t;

typedef struct {
    int32_t node_id;
    int32_t nvoters;
    rn_quorum_voter_t voters[RN_RAFT_MAX_VOTERS];
    const char *dir;          /* the store (created if missing) */
    int16_t api_key;          /* the internal API that carries Raft messages */
    uint32_t election_timeout_ms; /* 0: Raft's default */
    uint32_t heartbeat_ms;        /* 0: Raft's default */
    /* The state machine (quorum thread). */
    void (*apply)(void *arg, uint64_t index, const uint8_t *data, size_t len);
    rn_err_t (*snapshot_take)(void *arg, uint64_t index, rn_buf_t *out);
    rn_err_t (*snapshot_load)(void *arg, uint64_t index, const uint8_t *data, size_t len);
    void (*leader_change)(void *arg, int32_t leader, uint64_t term); /* optional */
    void *arg;
} rn_quorum_config_t;

/* Parses controller.quorum.voters ("1@host:9093,2@host:9093"). INVALID_CONFIG
 * with a message when malformed. */
rn_err_t rn_quorum_parse_voters(const char *s, rn_quorum_config_t *cfg, char *err, size_t errlen);

rn_err_t rn_quorum_start(const rn_quorum_config_t *cfg, rn_quorum_t **out);
/* Stops the thread and the peers, fails waiting proposals, closes the store. */
void rn_quorum_stop(rn_quorum_t *q);

/* A Raft message from another node (copied; any thread). */
void rn_quorum_deliver(rn_quorum_t *q, const uint8_t *msg, size_t len);
/* The body of one internal-API request: a batch of messages (rn_peers format). */
rn_err_t rn_quorum_deliver_batch(rn_quorum_t *q, const uint8_t *body, size_t len);

rn_err_t rn_quorum_propose(rn_quorum_t *q, const void *data, size_t len, int64_t timeout_ms, uint64_t *index,
                           int32_t *leader_hint);

/* If this node leads, hand leadership to another voter (before a shutdown). */
void rn_quorum_transfer_leadership(rn_quorum_t *q);
int32_t rn_quorum_leader(rn_quorum_t *q); /* -1: unknown */
bool rn_quorum_is_leader(rn_quorum_t *q);
uint64_t rn_quorum_applied(rn_quorum_t *q);
uint64_t rn_quorum_term(rn_quorum_t *q);

#endif
