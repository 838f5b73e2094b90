/*
 * rn_replica.h — partition replication logic, Kafka's design: the leader's
 * view of its followers (log ends, caught-up times, ISR, high watermark) and
 * the follower's handling of a fetch response (append as follower, truncate a
 * divergent tail by leader epoch, follow the high watermark and log start).
 *
 * No sockets and no threads here: the fetcher and the Fetch handler call these
 * with the partition's log and the time, so every rule is unit-tested with two
 * real logs in one process (tests/unit/test_replica.c).
 *
 * The rules (Kafka's, with its configuration names):
 * - A follower's log end is the fetch offset of its latest Fetch: it asks for
 *   offset N only once it holds everything below N (durably: the fetcher
 *   fetches again only after its append is synced).
 * - A follower is caught up at time t if it fetched at or past the leader's
 *   log end at t, or past the leader's log end as of its previous fetch (then
 *   at that fetch's time). It leaves the ISR when it has not been caught up for
 *   replica.lag.time.max.ms; it may rejoin once its log end reaches the high
 *   watermark and the start of the current leader epoch.
 * - High watermark = the smallest log end in the ISR, the leader counting its
 *   own durable end. It never moves back, and it moves only while the ISR has
 *   at least min.insync.replicas members (KIP-966). While an ISR change is in
 *   flight the larger of the two sets counts (Kafka's "maximal ISR").
 * - acks=all is refused with NOT_ENOUGH_REPLICAS while the ISR is smaller than
 *   min.insync.replicas, and is answered once the high watermark passes it.
 * - Divergence (KIP-101, KIP-320 via Fetch v12 LastFetchedEpoch): the leader
 *   answers a fetch whose last fetched epoch ends, in the leader's log, before
 *   the fetch offset (or is unknown there) with the diverging epoch and its
 *   end offset; the follower truncates to where the two logs agree — never to
 *   its high watermark alone.
 */
#ifndef RN_REPLICA_H
#define RN_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_err.h"
#include "rn_log.h"

#define RN_REPL_MAX_REPLICAS 16

typedef struct {
    int32_t epoch;      /* -1: none */
    int64_t end_offset; /* -1: unknown */
} rn_epoch_end_t;

/* ---- leader side ------------------------------------------------------------ */

typedef struct {
    int32_t id;
    int64_t log_end;             /* -1 until its first fetch */
    int64_t last_caught_up_ms;
    int64_t last_fetch_ms;
    int64_t leader_end_at_last_fetch;
} rn_repl_follower_t;

typedef struct {
    int32_t self;
    int32_t leader_epoch;
    int64_t epoch_start_offset; /* the leader's log end when this epoch began */
    int32_t min_isr;
    int32_t nreplicas, nisr, npending;
    int32_t replicas[RN_REPL_MAX_REPLICAS];
    int32_t isr[RN_REPL_MAX_REPLICAS];
    int32_t pending_isr[RN_REPL_MAX_REPLICAS]; /* proposed, not yet confirmed */
    rn_repl_follower_t followers[RN_REPL_MAX_REPLICAS]; /* same order as replicas; self unused */
    int64_t high_watermark;
} rn_repl_leader_t;

/* Becoming leader at `leader_epoch` with the log ending at `log_end`. Followers
 * start as caught up now (Kafka gives them a full lag period). */
rn_err_t rn_repl_leader_init(rn_repl_leader_t *l, int32_t self, int32_t leader_epoch, const int32_t *replicas,
                             int32_t nreplicas, const int32_t *isr, int32_t nisr, int32_t min_isr, int64_t log_end,
                             int64_t high_watermark, int64_t now_ms);
/* A follower's Fetch at `fetch_offset` (the leader's log end is `leader_end`).
 * NOT_LEADER_OR_FOLLOWER for a node that is not a replica. */
rn_err_t rn_repl_leader_on_fetch(rn_repl_leader_t *l, int32_t replica, int64_t fetch_offset, int64_t leader_end,
                                 int64_t now_ms);
/* Recomputes the high watermark with the leader's own durable end; returns
 * true if it moved (it is then in l->high_watermark). */
bool rn_repl_leader_update_hw(rn_repl_leader_t *l, int64_t leader_durable_end);
/* The ISR the leader should propose now (shrink: lagging members; expand:
 * caught-up replicas), or false if it is right as it is. */
bool rn_repl_leader_wanted_isr(const rn_repl_leader_t *l, int64_t now_ms, int64_t lag_max_ms, int32_t *isr,
                               int32_t *nisr);
/* The controller's answer arrived (or a newer partition state): adopt `isr`. */
void rn_repl_leader_set_isr(rn_repl_leader_t *l, const int32_t *isr, int32_t nisr);
void rn_repl_leader_set_pending(rn_repl_leader_t *l, const int32_t *isr, int32_t nisr);
/* acks=all admission before the append. */
rn_err_t rn_repl_leader_check_acks_all(const rn_repl_leader_t *l);
bool rn_repl_in(const int32_t *set, int32_t n, int32_t id);

/* Leader: the Fetch v12+ divergence check for a follower that last fetched
 * `last_fetched_epoch` and now asks for `fetch_offset`. True (and *out set)
 * when its log diverges from the leader's. */
bool rn_repl_diverging(rn_log_t *leader_log, int32_t last_fetched_epoch, int64_t fetch_offset, rn_epoch_end_t *out);

/* ---- follower side ---------------------------------------------------------- */

/* One partition of a leader's Fetch response, as the follower received it. */
typedef struct {
    int16_t error;             /* Kafka error code */
    int64_t high_watermark;
    int64_t log_start_offset;
    rn_epoch_end_t diverging;  /* epoch -1: none */
    uint8_t *records;          /* batches as stored by the leader; a trailing partial batch is ignored */
    size_t records_len;
} rn_repl_fetched_t;

/* Where the follower truncates for the leader's diverging epoch (Kafka's
 * getTruncationOffset); *done is false when another round of the check is
 * needed (the follower's own epoch for it differs). */
int64_t rn_repl_truncation_offset(rn_log_t *log, rn_epoch_end_t leader, bool *done);
/* Applies one fetched partition to the follower's log: truncation on
 * divergence, validation (sizes, magic, CRC; a partial last batch dropped) and
 * append of the batches with the leader's offsets and epochs, then the high
 * watermark (min of the leader's and the local log end) and the log start.
 * *appended_ticket: durable appends' sync ticket (fetch again once synced), 0
 * if none. Errors: CORRUPT_MESSAGE (bad batch from the leader; nothing
 * appended), OFFSET_OUT_OF_RANGE, storage errors. */
rn_err_t rn_repl_follower_apply(rn_log_t *log, const rn_repl_fetched_t *f, uint64_t *appended_ticket);
/* The leader answered OFFSET_OUT_OF_RANGE: its log is [leader_start, leader_end).
 * A follower past the leader's end truncates to it; one before its start resets. */
rn_err_t rn_repl_follower_out_of_range(rn_log_t *log, int64_t leader_start, int64_t leader_end);

#endif
