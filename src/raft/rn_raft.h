/*
 * rn_raft.h — the metadata quorum's consensus core: Raft as a pure state machine.
 *
 * rn_raft_t owns no thread, socket, file or clock. It is driven by events the
 * embedding delivers — a message received (rn_raft_step), a timer tick
 * (rn_raft_tick), a client proposal (rn_raft_propose), a storage sync completed
 * (rn_raft_synced) — and does all its io through the rn_raft_io_t vtable:
 * sending messages, appending/truncating log entries, requesting an fsync,
 * persisting term and vote, saving a snapshot, reading the clock and a random
 * source. Swapping that vtable for a simulated network, disk and clock is how
 * tests/unit/test_raft_sim.c checks the safety properties over thousands of
 * seeded runs. The design, the invariants and how to replay a seed are in
 * docs/internals/raft.md.
 *
 * What it implements: leader election with pre-vote and randomized timeouts,
 * check-quorum (a leader that hears from no majority for an election timeout
 * steps down), log replication with the AppendEntries consistency check and
 * fast back-off (conflict term/index), commitment only of current-term entries
 * (a no-op is appended on election), snapshots (taken from the state machine
 * every snapshot_entries applied entries; sent in chunks to followers whose
 * next entry was compacted), voter-set changes one voter at a time (a config
 * entry takes effect as soon as it is appended, on every node), and learners
 * (members that get the log but never vote or count, e.g. brokers).
 *
 * Durability: term and vote are persisted (save_hardstate, durable on return)
 * before a vote is granted or a message of the new term is sent. Entries are
 * appended without waiting, then a sync is requested; a follower answers an
 * AppendEntries with success, and a leader counts itself toward a commit,
 * only for entries the storage has reported synced.
 *
 * Threading: one thread at a time. Callbacks may not call back into the same
 * rn_raft_t, with one exception: rn_raft_synced may be called from inside
 * io.sync (a synchronous store); it is then handled once the outer call ends.
 */
#ifndef RN_RAFT_H
#define RN_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"

#define RN_RAFT_MAX_VOTERS 16
#define RN_RAFT_MAX_APPEND_ENTRIES 64 /* entries per AppendEntries, whatever the config says */
#define RN_RAFT_NO_NODE (-1)

typedef enum {
    RN_RAFT_ENTRY_DATA = 0,   /* opaque bytes for the state machine */
    RN_RAFT_ENTRY_CONFIG = 1, /* a voter set (rn_raft_config_encode) */
    RN_RAFT_ENTRY_NOOP = 2,   /* appended by each new leader */
} rn_raft_entry_type_t;

typedef enum {
    RN_RAFT_FOLLOWER = 0,
    RN_RAFT_PRECANDIDATE = 1,
    RN_RAFT_CANDIDATE = 2,
    RN_RAFT_LEADER = 3,
} rn_raft_role_t;

/* One log entry. `data` is borrowed for the duration of the call it is passed to. */
typedef struct {
    uint64_t index;
    uint64_t term;
    uint8_t type; /* rn_raft_entry_type_t */
    const uint8_t *data;
    uint32_t len;
} rn_raft_entry_t;

/* A set of node ids (voters, or learners). */
typedef struct {
    uint32_t count;
    int32_t ids[RN_RAFT_MAX_VOTERS];
} rn_raft_voters_t;

/* What a snapshot covers: every entry up to `index` (whose term is `term`). */
typedef struct {
    uint64_t index;
    uint64_t term;
    rn_raft_voters_t voters;   /* the voter set in force at `index` */
    rn_raft_voters_t learners; /* and the learners (replicated to, never counted) */
} rn_raft_snap_meta_t;

/* ---- messages ------------------------------------------------------------ */

typedef enum {
    RN_RAFT_MSG_PREVOTE = 1,
    RN_RAFT_MSG_PREVOTE_RESP = 2,
    RN_RAFT_MSG_VOTE = 3,
    RN_RAFT_MSG_VOTE_RESP = 4,
    RN_RAFT_MSG_APPEND = 5,
    RN_RAFT_MSG_APPEND_RESP = 6,
    RN_RAFT_MSG_SNAPSHOT = 7,
    RN_RAFT_MSG_SNAPSHOT_RESP = 8,
    RN_RAFT_MSG_TIMEOUT_NOW = 9, /* leadership transfer: campaign now */
} rn_raft_msg_type_t;

/*
 * A message. Fields by type:
 *   PREVOTE, VOTE         term (PREVOTE: the term the sender would campaign in),
 *                         index/log_term = sender's last log entry
 *   *_RESP of votes       term, granted
 *   APPEND                term, index/log_term = prev entry, commit, entries
 *                         (indexes prev+1, prev+2, ...)
 *   APPEND_RESP           term, success, index = match index (success) or the
 *                         index the leader should retry from (reject);
 *                         log_term = conflicting term (0: none)
 *   SNAPSHOT              term, snap, offset, total, chunk, done
 *   SNAPSHOT_RESP         term, snap.index, offset = bytes received so far,
 *                         success = snapshot installed
 *   TIMEOUT_NOW           term (from the leader: start an election at once)
 * Entries and chunk borrow memory for the call (from the core when sending,
 * from the input buffer when decoded).
 */
typedef struct {
    uint8_t type;
    int32_t from;
    int32_t to;
    uint64_t term;
    uint64_t index;
    uint64_t log_term;
    uint64_t commit;
    bool granted; /* vote responses; success for APPEND_RESP / SNAPSHOT_RESP */
    uint32_t n_entries;
    const rn_raft_entry_t *entries;
    rn_raft_snap_meta_t snap;
    uint64_t offset;
    uint64_t total;
    bool done;
    const uint8_t *chunk;
    uint32_t chunk_len;
} rn_raft_msg_t;

/* Limits a decoder enforces: never more entries or bytes than these. */
typedef struct {
    uint32_t max_entries;
    uint32_t max_entry_bytes;
} rn_raft_msg_limits_t;

/* Appends the encoding of m to out (its `max` bounds the size). */
rn_err_t rn_raft_msg_encode(const rn_raft_msg_t *m, rn_buf_t *out);
/* Decodes p[0..len) into m; entries go to ents[0..max_entries) and borrow p. */
rn_err_t rn_raft_msg_decode(const uint8_t *p, size_t len, const rn_raft_msg_limits_t *lim,
                            rn_raft_entry_t *ents, rn_raft_msg_t *m);
const char *rn_raft_msg_type_name(uint8_t type);

/* CONFIG entry payload: voters then learners, each u32 count + i32 ids (big-endian);
 * 1..16 voters, 0..16 learners, all distinct. */
rn_err_t rn_raft_config_encode(const rn_raft_voters_t *voters, const rn_raft_voters_t *learners, rn_buf_t *out);
rn_err_t rn_raft_config_decode(const uint8_t *p, size_t len, rn_raft_voters_t *voters, rn_raft_voters_t *learners);
bool rn_raft_voters_has(const rn_raft_voters_t *v, int32_t id);
/* 1..16 voters, 0..16 learners, ids >= 0, no id twice across both. */
bool rn_raft_members_valid(const rn_raft_voters_t *voters, const rn_raft_voters_t *learners);

/* ---- io and state machine hooks ------------------------------------------ */

typedef struct {
    void *ctx;
    /* transport: best effort, may drop, delay, duplicate or reorder */
    void (*send)(void *ctx, const rn_raft_msg_t *m);
    /* storage: append continues the log (entries[0].index == last index + 1,
     * or the first index after a snapshot); truncate drops entries >= from.
     * Neither is durable until a later sync completes: sync(ticket) requests
     * an fsync of everything before it, and the embedding reports it with
     * rn_raft_synced(ticket). Tickets increase. */
    rn_err_t (*append)(void *ctx, const rn_raft_entry_t *entries, size_t n);
    rn_err_t (*truncate)(void *ctx, uint64_t from_index);
    rn_err_t (*sync)(void *ctx, uint64_t ticket);
    /* durable on return */
    rn_err_t (*save_hardstate)(void *ctx, uint64_t term, int32_t vote);
    /* durable on return; entries <= meta->index are no longer needed. With
     * reset_log every entry is dropped (the log restarts after the snapshot). */
    rn_err_t (*save_snapshot)(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data,
                              size_t len, bool reset_log);
    int64_t (*now_ms)(void *ctx);
    uint64_t (*random)(void *ctx);
} rn_raft_io_t;

typedef struct {
    void *ctx;
    /* Committed entries, in index order, each exactly once per incarnation
     * (after a restart: from the snapshot on). All types are delivered. */
    void (*apply)(void *ctx, const rn_raft_entry_t *e);
    /* Serialize the state as of the last applied entry (index) into out. */
    rn_err_t (*snapshot_take)(void *ctx, uint64_t index, rn_buf_t *out);
    /* Replace the state with a snapshot's. */
    rn_err_t (*snapshot_load)(void *ctx, const rn_raft_snap_meta_t *meta, const uint8_t *data,
                              size_t len);
    /* Role, term or known leader changed (optional). */
    void (*role_change)(void *ctx, rn_raft_role_t role, uint64_t term, int32_t leader_id);
} rn_raft_sm_t;

typedef struct {
    int32_t node_id;
    rn_raft_voters_t initial_voters; /* used when storage holds no config */
    rn_raft_voters_t initial_learners; /* likewise (may be empty) */
    uint32_t election_timeout_ms;    /* randomized in [t, 2t) */
    uint32_t heartbeat_ms;
    uint32_t max_entry_bytes;        /* a proposal larger is refused */
    uint32_t max_append_bytes;       /* entry bytes per AppendEntries / snapshot chunk */
    uint32_t max_append_entries;     /* entries per AppendEntries */
    uint32_t max_inflight;           /* unacknowledged AppendEntries per follower */
    uint64_t max_log_bytes;          /* in-memory log (entry bytes) above the snapshot */
    uint32_t snapshot_entries;       /* snapshot after this many applied entries */
    uint32_t max_snapshot_bytes;
} rn_raft_config_t;

/* Defaults: 1000 ms election timeout, 100 ms heartbeat, 1 MiB entries... */
void rn_raft_config_defaults(rn_raft_config_t *c);
/* Limits a transport should decode with, given this config; max_entries is always
 * RN_RAFT_MAX_APPEND_ENTRIES (size the entry array for it). */
rn_raft_msg_limits_t rn_raft_msg_limits(const rn_raft_config_t *c);

/* What storage held at startup (all borrowed for the call to rn_raft_new). */
typedef struct {
    uint64_t term;
    int32_t vote;
    bool has_snapshot;
    rn_raft_snap_meta_t snap;
    const uint8_t *snap_data;
    size_t snap_len;
    const rn_raft_entry_t *entries; /* consecutive, from snap.index + 1 (or 1) */
    size_t n_entries;
} rn_raft_boot_t;

typedef struct rn_raft rn_raft_t;

/* Loads the boot state (the snapshot goes to sm->snapshot_load). */
rn_err_t rn_raft_new(const rn_raft_config_t *cfg, const rn_raft_io_t *io, const rn_raft_sm_t *sm,
                     const rn_raft_boot_t *boot, rn_raft_t **out);
void rn_raft_free(rn_raft_t *r);

/* ---- events -------------------------------------------------------------- */

void rn_raft_tick(rn_raft_t *r);
void rn_raft_step(rn_raft_t *r, const rn_raft_msg_t *m);
void rn_raft_synced(rn_raft_t *r, uint64_t ticket);
/* Appends a DATA entry. RN_OK with *index set, or RN_ERR_NOT_LEADER_OR_FOLLOWER
 * (*leader_hint: the leader this node knows of, or RN_RAFT_NO_NODE),
 * RN_ERR_LIMIT (entry too large, or the log is full until a snapshot). */
rn_err_t rn_raft_propose(rn_raft_t *r, const void *data, size_t len, uint64_t *index,
                         int32_t *leader_hint);
/* Adds or removes one voter (leader only); adding a learner promotes it. RN_ERR_AGAIN
 * while a previous change is uncommitted or the leader has not committed an entry
 * of its term yet. */
rn_err_t rn_raft_change_voter(rn_raft_t *r, int32_t id, bool add, uint64_t *index);
/* Hands leadership to voter id (thesis §3.10): proposals are refused (NOT_LEADER,
 * hint id) while id is brought up to date, then id is told to campaign at once,
 * without pre-vote; given up after an election timeout. */
rn_err_t rn_raft_transfer_leadership(rn_raft_t *r, int32_t id);
/* Adds or removes one learner: a member that receives the log and applies it but
 * never votes or counts toward a commit (same rules as rn_raft_change_voter). */
rn_err_t rn_raft_change_learner(rn_raft_t *r, int32_t id, bool add, uint64_t *index);
/* Turns voter id into a learner in one configuration entry (a removed voter that keeps
 * receiving the log, so it learns it was removed); same rules as rn_raft_change_voter. */
rn_err_t rn_raft_demote_voter(rn_raft_t *r, int32_t id, uint64_t *index);

/* ---- state (for the embedding and the tests) ----------------------------- */

rn_raft_role_t rn_raft_role(const rn_raft_t *r);
uint64_t rn_raft_term(const rn_raft_t *r);
int32_t rn_raft_leader(const rn_raft_t *r);
int32_t rn_raft_node_id(const rn_raft_t *r);
uint64_t rn_raft_commit_index(const rn_raft_t *r);
uint64_t rn_raft_applied_index(const rn_raft_t *r);
uint64_t rn_raft_last_index(const rn_raft_t *r);
uint64_t rn_raft_durable_index(const rn_raft_t *r);
const rn_raft_snap_meta_t *rn_raft_snapshot_meta(const rn_raft_t *r);
const rn_raft_voters_t *rn_raft_voters(const rn_raft_t *r);
const rn_raft_voters_t *rn_raft_learners(const rn_raft_t *r);
/* Entry at index if held in memory (snapshot index < index <= last), else false. */
bool rn_raft_entry_at(const rn_raft_t *r, uint64_t index, rn_raft_entry_t *out);
/* Term of the entry at index (0 if unknown; the snapshot's term at its index). */
uint64_t rn_raft_term_at(const rn_raft_t *r, uint64_t index);
/* Leader: a member's replication as it knows it — its match index and when it
 * last answered (now_ms clock; 0: never). False if not leader or id is no peer. */
bool rn_raft_peer_progress(const rn_raft_t *r, int32_t id, uint64_t *match, int64_t *last_resp_ms);
/* Non-zero if storage failed: the node stopped (fsync failures are not retried). */
rn_err_t rn_raft_failed(const rn_raft_t *r);
const char *rn_raft_role_name(rn_raft_role_t role);

#endif
