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
 *
 * The voter set changes at runtime (KIP-853's shape), one member at a time, on
 * a second thread (the member thread) that blocks on the driver as a proposal
 * does: a node that is no voter of its configuration (cfg.join) asks the
 * quorum to take it in (an internal request, rn_quorum_handle_join on the
 * receiving controller); the leader adds it as a learner — it replicates the
 * log but neither votes nor counts — and AddRaftVoter later promotes it, once
 * it has caught up. The members' Raft addresses travel in the log itself as
 * the quorum's own entries (address records, DATA entries that begin with a
 * magic the metadata records never start with: they never reach the state
 * machine) and in every snapshot (a header before the state machine's bytes),
 * so a restarted node knows every member's address before anything commits,
 * and the voter set in its log (or snapshot) wins over its static
 * configuration.
 */
#ifndef RN_QUORUM_H
#define RN_QUORUM_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"
#include "rn_raft.h"

#define RN_API_RUNNEL_QUORUM_JOIN 1002 /* internal: a controller asks to join the quorum */

typedef struct rn_quorum rn_quorum_t;

typedef struct {
    int32_t id;
    char host[256];
    int port;
} rn_quorum_voter_t;

#define RN_QUORUM_MEMBERS_MAX (2 * RN_RAFT_MAX_VOTERS) /* voters and learners */

typedef struct {
    int32_t node_id;
    int32_t nvoters; /* the static voters (0 allowed with join) */
    rn_quorum_voter_t voters[RN_RAFT_MAX_VOTERS];
    const char *dir;          /* the store (created if missing) */
    int16_t api_key;          /* the internal API that carries Raft messages */
    uint32_t election_timeout_ms; /* 0: Raft's default */
    uint32_t heartbeat_ms;        /* 0: Raft's default */
    uint32_t snapshot_entries;    /* 0: Raft's default */
    /* The state machine (quorum thread). */
    void (*apply)(void *arg, uint64_t index, const uint8_t *data, size_t len);
    rn_err_t (*snapshot_take)(void *arg, uint64_t index, rn_buf_t *out);
    rn_err_t (*snapshot_load)(void *arg, uint64_t index, const uint8_t *data, size_t len);
    void (*leader_change)(void *arg, int32_t leader, uint64_t term); /* optional */
    void *arg;
    const char *cluster_id; /* written into address records (a joining node learns it: NULL) */
    /* A node that is not among the static voters joins: it asks the voters and
     * these servers (ids -1) to take it in as a learner, telling them its own
     * Raft address (self_host:self_port). */
    bool join;
    int32_t nbootstrap;
    rn_quorum_voter_t bootstrap[RN_RAFT_MAX_VOTERS];
    char self_host[256];
    int self_port;
} rn_quorum_config_t;

/* One member as this node sees it (progress only on the leader). */
typedef struct {
    int32_t id;
    bool voter;
    int64_t log_end;        /* leader: its match index (its own: last index); -1: unknown */
    int64_t last_fetch_ms;  /* wall clock of its last answer to the leader; -1: unknown */
    int64_t caught_up_ms;   /* wall clock when it last matched the commit index; -1: never */
} rn_quorum_member_t;

typedef struct {
    int32_t node_id, leader;
    bool is_leader;
    uint64_t term, commit, last_index;
    int32_t nvoters, nmembers; /* members: the voters, then the learners */
    rn_quorum_member_t members[RN_QUORUM_MEMBERS_MAX];
} rn_quorum_status_t;

typedef enum {
    RN_QUORUM_ADD_LEARNER = 1, /* a joining node (any address given is recorded) */
    RN_QUORUM_ADD_VOTER = 2,   /* a learner that has caught up */
    RN_QUORUM_REMOVE_VOTER = 3,
} rn_quorum_op_t;

/* Called on the member thread when a change is done: RN_OK, or the Kafka error and a message
 * (NOT_LEADER_OR_FOLLOWER with the leader's id as `leader`: ask it instead). */
typedef void (*rn_quorum_change_cb)(void *arg, rn_err_t err, int32_t leader, const char *message);

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
/* The state published by the driver (a copy; any thread). */
void rn_quorum_status(rn_quorum_t *q, rn_quorum_status_t *out);
int32_t rn_quorum_voter_count(rn_quorum_t *q);
/* A member's Raft address as the log (or the static voters) gives it. */
bool rn_quorum_address(rn_quorum_t *q, int32_t id, char *host, size_t hostlen, int *port);
/* The cluster id the quorum carries (a joining node learns it); false: none yet. */
bool rn_quorum_cluster_id(rn_quorum_t *q, char *out, size_t cap);
/* Starts a voter change on the member thread; REQUEST_TIMED_OUT at once while another is
 * under way (one at a time, as Kafka), NOT_LEADER_OR_FOLLOWER off the leader. cb (may be NULL)
 * gets the outcome; timeout_ms bounds the wait for a learner to catch up. */
rn_err_t rn_quorum_change(rn_quorum_t *q, rn_quorum_op_t op, int32_t id, const char *host, int port,
                          int64_t timeout_ms, rn_quorum_change_cb cb, void *arg);
/* The quorum's own formats (rn_quorum.c has them byte by byte): an address record (the
 * members' Raft addresses and the cluster id, carried in the log and snapshots) and a join
 * request. Decoders check every length and count; a string holds no NUL. */
typedef struct {
    char cluster_id[64];
    int32_t n;
    rn_quorum_voter_t addrs[RN_QUORUM_MEMBERS_MAX]; /* ids >= 0, distinct; ports > 0 */
} rn_quorum_addrs_t;
typedef struct {
    int32_t id;
    char host[256];
    int port;
    char cluster_id[64]; /* "": unknown to the sender */
} rn_quorum_join_req_t;
void rn_quorum_addrs_encode(const rn_quorum_addrs_t *a, rn_buf_t *out);
rn_err_t rn_quorum_addrs_decode(const uint8_t *p, size_t len, rn_quorum_addrs_t *out);
void rn_quorum_join_req_encode(const rn_quorum_join_req_t *r, rn_buf_t *out);
rn_err_t rn_quorum_join_req_decode(const uint8_t *p, size_t len, rn_quorum_join_req_t *out);

/* Before the network stops: the change under way ends (its callback is called, within a few
 * seconds) and no other starts. */
void rn_quorum_stop_changes(rn_quorum_t *q);
/* A join request's body (internal API RN_API_RUNNEL_QUORUM_JOIN, network thread): answers
 * at once into out with the leader, the members and their addresses; the leader starts
 * adding the sender as a learner. MALFORMED if the body does not parse. */
rn_err_t rn_quorum_handle_join(rn_quorum_t *q, const uint8_t *body, size_t len, rn_buf_t *out);
bool rn_quorum_is_leader(rn_quorum_t *q);
uint64_t rn_quorum_applied(rn_quorum_t *q);
uint64_t rn_quorum_term(rn_quorum_t *q);

#endif
