/*
 * rn_group.h — the group coordinator: consumer groups (Kafka's classic
 * protocol) and their committed offsets.
 *
 * Three layers, each in its own file:
 *
 *   rn_group_state.c   one group's state machine (members, generations,
 *                      protocol selection, rebalance/session/sync timers as
 *                      deadlines) and its offsets. Pure logic: no locks, no
 *                      I/O, no clock reads — time comes in through
 *                      rn_group_env_t and effects go out through
 *                      rn_group_ops_t, so unit tests drive it directly.
 *   rn_offsets_log.c   the record formats of __consumer_offsets (Kafka's
 *                      keys and values, byte for byte) and the hash that maps
 *                      a group to its offsets partition.
 *   rn_coordinator.c   the groups of this broker: one mutex, a timer thread,
 *                      persistence through the storage engine, replay at
 *                      start-up, offset expiry.
 *   rn_h_group.c       the request handlers (FindCoordinator ... OffsetDelete).
 *
 * The handler prototypes and the broker's start/free hooks are declared in
 * rn_broker.h, next to the other handlers.
 */
#ifndef RN_GROUP_H
#define RN_GROUP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rn_batch.h"
#include "rn_bytes.h"
#include "rn_err.h"
#include "rn_itopic.h"
#include "rn_map.h"

/* ---- one group ---------------------------------------------------------- */

typedef enum {
    RN_GS_EMPTY = 0,
    RN_GS_PREPARING_REBALANCE,
    RN_GS_COMPLETING_REBALANCE,
    RN_GS_STABLE,
    RN_GS_DEAD,
} rn_group_state_t;

/* Kafka's names ("Empty", "PreparingRebalance", ...). */
const char *rn_group_state_name(rn_group_state_t s);

typedef struct {
    char *name;
    uint8_t *metadata;
    int32_t metadata_len;
} rn_gprotocol_t;

typedef struct rn_member {
    char *member_id;
    char *group_instance_id; /* NULL: dynamic member */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    rn_gprotocol_t *protocols;
    int32_t nprotocols;
    uint8_t *assignment;
    int32_t assignment_len;
    bool awaiting_join; /* has (re)joined in the current PreparingRebalance */
    bool is_new;        /* joined, never completed a join phase */
    bool pending_sync;  /* got its JoinGroup answer, SyncGroup not yet seen */
    void *join_waiter;  /* a parked JoinGroup (opaque to this layer) */
    void *sync_waiter;  /* a parked SyncGroup */
    int64_t session_deadline_ms;
} rn_member_t;

typedef struct {
    char *member_id;
    int64_t deadline_ms;
} rn_pending_member_t;

/* One committed offset (Kafka's OffsetAndMetadata). */
typedef struct {
    int64_t offset;
    int32_t leader_epoch;    /* -1: none */
    char *metadata;          /* owned, NUL-terminated; may contain NULs, see len */
    int32_t metadata_len;    /* -1: null (stored as "") */
    int64_t commit_timestamp_ms;
    int64_t expire_timestamp_ms; /* -1: none (retention decided by the group) */
} rn_offset_t;

typedef struct rn_group {
    char *group_id;
    size_t group_id_len;
    int32_t partition; /* its __consumer_offsets partition */
    rn_group_state_t state;
    int64_t state_timestamp_ms; /* wall clock: when the state last changed */
    int32_t generation;
    char *protocol_type; /* NULL: none yet */
    char *protocol_name; /* NULL: none (Empty, or before the first generation) */
    char *leader_id;     /* a member's id (own copy); NULL when there are no members */

    rn_member_t **members; /* in join order */
    int32_t nmembers, members_cap;
    rn_map_t member_index; /* member id -> rn_member_t* */
    rn_map_t static_index; /* group.instance.id -> rn_member_t* */
    int32_t awaiting_join_count;
    rn_pending_member_t *pending; /* MEMBER_ID_REQUIRED handed out, not yet rejoined */
    int32_t npending, pending_cap;

    /* Timers, as deadlines on the monotonic clock (-1: not armed). */
    int64_t join_deadline_ms;     /* PreparingRebalance ends (delay or rebalance timeout) */
    bool join_initial;            /* the join phase is group.initial.rebalance.delay.ms */
    bool new_member_added;        /* a member joined during the initial delay */
    int64_t initial_remaining_ms; /* rebalance timeout left for more initial delays */
    int64_t sync_deadline_ms;     /* members must SyncGroup before this */
    int32_t sync_generation;
    int64_t session_check_ms;     /* no session or pending deadline is earlier */

    /* Topics the members subscribe to (consumer protocol), for OffsetDelete. */
    char **subscribed;
    int32_t nsubscribed; /* -1: unknown */

    rn_map_t offsets; /* topic '\0' be32(partition) -> rn_offset_t* */

    /* Coordinator bookkeeping (rn_coordinator.c). */
    int32_t heap_index; /* -1: not in the timer heap */
    int64_t heap_deadline_ms;
} rn_group_t;

/* Broker configuration the state machine needs. */
typedef struct {
    int32_t min_session_timeout_ms;    /* group.min.session.timeout.ms */
    int32_t max_session_timeout_ms;    /* group.max.session.timeout.ms */
    int32_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms */
    int32_t max_size;                  /* group.max.size */
    int32_t new_member_join_timeout_ms; /* Kafka: 5 minutes */
} rn_group_config_t;

typedef struct {
    int16_t error;
    int32_t generation;
    const char *protocol_type; /* NULL: null */
    const char *protocol_name;
    const char *leader_id;
    const char *member_id;
    bool skip_assignment;
    /* For the leader: every member, with its metadata for protocol_name. */
    rn_member_t *const *members;
    int32_t nmembers;
} rn_join_result_t;

typedef struct {
    int16_t error;
    const char *protocol_type;
    const char *protocol_name;
    const uint8_t *assignment;
    int32_t assignment_len;
} rn_sync_result_t;

/* Effects, called with the coordinator lock held. Each waiter handed to
 * rn_group_join/rn_group_sync gets exactly one join_done/sync_done, unless it
 * is taken back with rn_group_drop_waiter. */
typedef struct {
    void *ctx;
    void (*join_done)(void *ctx, rn_group_t *g, void *waiter, const rn_join_result_t *r);
    void (*sync_done)(void *ctx, rn_group_t *g, void *waiter, const rn_sync_result_t *r);
    /* Persist the group's metadata (members, assignments) — Kafka's storeGroup. */
    rn_err_t (*store_group)(void *ctx, rn_group_t *g);
} rn_group_ops_t;

/* The world as one call sees it. */
typedef struct {
    const rn_group_config_t *cfg;
    const rn_group_ops_t *ops;
    int64_t now_ms;  /* monotonic */
    int64_t wall_ms; /* wall clock, for timestamps */
} rn_group_env_t;

typedef struct {
    rn_str_t member_id;         /* "" or null: unknown */
    rn_str_t group_instance_id; /* null: dynamic */
    rn_str_t client_id;
    rn_str_t client_host;
    rn_str_t protocol_type;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    int32_t nprotocols;
    const rn_str_t *protocol_names;
    const rn_bytes_t *protocol_metadata;
    bool require_known_member_id; /* JoinGroup v4+ */
    bool support_skip_assignment; /* JoinGroup v9+ */
    void *waiter;
} rn_join_params_t;

typedef struct {
    rn_str_t member_id;
    rn_str_t group_instance_id;
    int32_t generation;
    rn_str_t protocol_type; /* null: not checked */
    rn_str_t protocol_name;
    int32_t nassignments;
    const rn_str_t *assignment_member_ids;
    const rn_bytes_t *assignments;
    void *waiter;
} rn_sync_params_t;

rn_group_t *rn_group_new(const char *group_id, size_t len, int32_t partition);
/* The group must hold no waiters. */
void rn_group_free(rn_group_t *g);
/* Checks every invariant of the group's current state; aborts on a broken one. */
void rn_group_assert_state(const rn_group_t *g);

void rn_group_join(const rn_group_env_t *e, rn_group_t *g, const rn_join_params_t *p);
void rn_group_sync(const rn_group_env_t *e, rn_group_t *g, const rn_sync_params_t *p);
rn_err_t rn_group_heartbeat(const rn_group_env_t *e, rn_group_t *g, rn_str_t member_id, rn_str_t group_instance_id,
                            int32_t generation);
/* One LeaveGroup member identity: its error. */
rn_err_t rn_group_leave(const rn_group_env_t *e, rn_group_t *g, rn_str_t member_id, rn_str_t group_instance_id);
/* OffsetCommit validation (and the session refresh it implies). */
rn_err_t rn_group_validate_commit(const rn_group_env_t *e, rn_group_t *g, rn_str_t member_id,
                                  rn_str_t group_instance_id, int32_t generation);
/* Run every timer that is due; rn_group_next_deadline says when to call again. */
void rn_group_tick(const rn_group_env_t *e, rn_group_t *g);
int64_t rn_group_next_deadline(const rn_group_t *g); /* -1: none */
/* Take back a parked request (its connection's loop is stopping). */
void rn_group_drop_waiter(rn_group_t *g, void *waiter);
/* Answer every parked JoinGroup/SyncGroup of the group with `err` (its
 * coordinator is moving away). */
void rn_group_fail_waiters(const rn_group_env_t *e, rn_group_t *g, rn_err_t err);
/* Group → Dead (DeleteGroups, expiry); only from Empty. */
void rn_group_set_dead(const rn_group_env_t *e, rn_group_t *g);

/* Restore from __consumer_offsets (replay): the stored group metadata. */
typedef struct {
    rn_str_t member_id, group_instance_id, client_id, client_host;
    int32_t rebalance_timeout_ms, session_timeout_ms;
    rn_bytes_t subscription, assignment;
} rn_stored_member_t;
typedef struct {
    rn_str_t protocol_type; /* "" when none */
    int32_t generation;
    rn_str_t protocol_name; /* null when none */
    rn_str_t leader_id;
    int64_t state_timestamp_ms; /* -1: none */
    int32_t nmembers;
    rn_stored_member_t *members;
} rn_stored_group_t;
rn_err_t rn_group_load(const rn_group_env_t *e, rn_group_t *g, const rn_stored_group_t *s);

bool rn_group_is_subscribed(const rn_group_t *g, const char *topic, size_t len);
bool rn_group_has_waiters(const rn_group_t *g);
rn_member_t *rn_group_member(const rn_group_t *g, const char *member_id, size_t len);

/* Offsets of one group. put takes a copy of the metadata. */
rn_err_t rn_group_offset_put(rn_group_t *g, const char *topic, size_t topic_len, int32_t partition,
                             const rn_offset_t *o);
const rn_offset_t *rn_group_offset_get(const rn_group_t *g, const char *topic, size_t topic_len, int32_t partition);
bool rn_group_offset_del(rn_group_t *g, const char *topic, size_t topic_len, int32_t partition);
size_t rn_group_offset_count(const rn_group_t *g);
/* Iterate: for (size_t it = 0; rn_group_offset_next(g, &it, &t, &tl, &p, &o);) */
bool rn_group_offset_next(const rn_group_t *g, size_t *iter, const char **topic, size_t *topic_len, int32_t *partition,
                          const rn_offset_t **o);
/* Offsets past retention (Kafka's removeExpiredOffsets rules), for the caller
 * to tombstone and delete. Calls fn for each. */
void rn_group_expired_offsets(const rn_group_t *g, int64_t wall_ms, int64_t retention_ms,
                              void (*fn)(void *arg, const char *topic, size_t topic_len, int32_t partition),
                              void *arg);

/* ---- __consumer_offsets records (rn_offsets_log.c) ---------------------- */

#define RN_OFFSETS_TOPIC "__consumer_offsets"
#define RN_OFFSET_METADATA_MAX_BYTES 4096 /* Kafka's offset.metadata.max.bytes */

/* Kafka's Utils.abs(groupId.hashCode) % partitions, with Java's String.hashCode
 * over UTF-16 code units of the UTF-8 id. */
int32_t rn_java_string_hash(const char *s, size_t len);
int32_t rn_group_partition_for(const char *group_id, size_t len, int32_t partitions);

/* Keys: offset commit (version 1) and group metadata (version 2). */
void rn_offsets_key_offset(rn_buf_t *out, rn_str_t group, rn_str_t topic, int32_t partition);
void rn_offsets_key_group(rn_buf_t *out, rn_str_t group);
/* Offset commit value: v1 when an expire timestamp is set, v3 otherwise. */
void rn_offsets_value_offset(rn_buf_t *out, const rn_offset_t *o);
/* Group metadata value v3. */
void rn_offsets_value_group(rn_buf_t *out, const rn_group_t *g);

typedef enum { RN_OKEY_OFFSET = 1, RN_OKEY_GROUP = 2, RN_OKEY_OTHER = 3 } rn_okey_kind_t;
typedef struct {
    rn_okey_kind_t kind;
    rn_str_t group, topic; /* borrowed from the key bytes */
    int32_t partition;
} rn_okey_t;
rn_err_t rn_offsets_parse_key(rn_bytes_t key, rn_okey_t *out);
/* Offset value v0-v3 (v4+ flexible read too): metadata borrowed from the bytes. */
rn_err_t rn_offsets_parse_offset_value(rn_bytes_t value, rn_offset_t *out);
/* Group value v0-v3 (v4 flexible too); members allocated from `arena`-like malloc: free with free(s->members). */
rn_err_t rn_offsets_parse_group_value(rn_bytes_t value, rn_stored_group_t *out);

/* ---- the coordinator (rn_coordinator.c) --------------------------------- */

struct rn_broker;
typedef struct rn_group_coordinator rn_group_coordinator_t;

/* A transactional offset commit (TxnOffsetCommit) written to
 * __consumer_offsets in its producer's transactional batch, invisible until
 * that producer's COMMIT marker lands there (dropped by ABORT). */
typedef struct {
    int64_t producer_id;
    char *group;
    char *topic;
    int32_t partition;
    rn_offset_t o; /* metadata owned */
} rn_txn_pending_t;

struct rn_group_coordinator {
    struct rn_broker *b;
    /* One lock for every group: operations are short (a join is O(members),
     * a heartbeat O(1)), appends to the page cache happen under it so the log
     * order of a key is its memory order, and fsync waits happen outside it. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* wakes the timer thread (CLOCK_MONOTONIC) */
    pthread_t thread;
    bool thread_started;
    bool stopping;
    rn_map_t groups;     /* group id -> rn_group_t* */
    rn_group_t **heap;   /* min-heap of groups by next deadline */
    size_t heap_len, heap_cap;
    int64_t wake_at_ms;  /* when the timer thread will look next */
    rn_group_config_t cfg;
    rn_group_ops_t ops;
    rn_itopic_t otopic;  /* __consumer_offsets */
    rn_txn_pending_t *pending; /* transactional offsets awaiting their marker */
    size_t npending, pending_cap;
    int64_t retention_ms;
    int64_t retention_check_ms;
    int64_t next_expiry_ms;
    /* The partitions of __consumer_offsets this node coordinates
     * (set by rn_group_coordinator_follow; the timer thread loads and unloads). */
    rn_iowner_t owned;
    /* The newest group metadata record stored (of store_for):
     * SyncGroup answers wait until the high watermark covers it. */
    rn_hw_target_t store_hw;
    const rn_group_t *store_for;
};

/* Can this node serve a group of `partition` now (under c->lock)? 0,
 * NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
int16_t rn__coord_owns(rn_group_coordinator_t *c, int32_t partition);
/* The same for a group id (takes and releases c->lock). */
int16_t rn__coord_check(rn_group_coordinator_t *c, rn_str_t group_id);

/* The environment of one call (time now, config, effects). */
rn_group_env_t rn__coord_env(rn_group_coordinator_t *c);
/* Under c->lock. */
rn_group_t *rn__coord_find(rn_group_coordinator_t *c, rn_str_t group_id);
rn_group_t *rn__coord_create(rn_group_coordinator_t *c, rn_str_t group_id);
/* After any change to g: checks its invariants, drops it if it is Dead or
 * an empty shell, and moves its timer. */
void rn__coord_after(rn_group_coordinator_t *c, rn_group_t *g);
/* After a heartbeat (no state change, deadlines only later): just the timer. */
void rn__coord_touch(rn_group_coordinator_t *c, rn_group_t *g);
/* Removes and frees a group (it must hold no waiters). */
void rn__coord_remove(rn_group_coordinator_t *c, rn_group_t *g);
/* Transactional offsets (rn_h_group.c), under c->lock: one more pending
 * offset (false: out of memory or over the limit), and a producer's COMMIT
 * (applied to their groups) or ABORT (dropped) for the groups of one
 * partition of __consumer_offsets (-1: every partition). */
bool rn__pending_add(rn_group_coordinator_t *c, int64_t producer_id, rn_str_t group, rn_str_t topic, int32_t partition,
                     const rn_offset_t *o);
void rn__pending_finish(rn_group_coordinator_t *c, int32_t partition, int64_t producer_id, bool commit);
void rn__pending_free(rn_group_coordinator_t *c);
/* Forget the pending offsets of the groups of one partition (unloaded). */
void rn__pending_drop_partition(rn_group_coordinator_t *c, int32_t partition);
/* Creates __consumer_offsets if it does not exist yet (not under c->lock). */
rn_err_t rn__coord_ensure_topic(rn_group_coordinator_t *c);

/* Records for __consumer_offsets (rn_irecords_t, rn_itopic.h): collect, then append as one batch. */
void rn__orecords_offset(rn_irecords_t *r, rn_str_t group, rn_str_t topic, int32_t partition, const rn_offset_t *o);
void rn__orecords_group(rn_irecords_t *r, const rn_group_t *g, bool tombstone);
/* Appends to the group's partition; *d: what to wait for before answering. */
rn_err_t rn__orecords_append(rn_group_coordinator_t *c, int32_t partition, rn_irecords_t *r, rn_durable_t *d);

/* Answers to parked requests (rn_h_group.c). */
void rn__group_join_done(void *ctx, rn_group_t *g, void *waiter, const rn_join_result_t *r);
void rn__group_sync_done(void *ctx, rn_group_t *g, void *waiter, const rn_sync_result_t *r);

#endif
