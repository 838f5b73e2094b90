/*
 * rn_replica.c — the leader's follower bookkeeping (ISR, high watermark) and
 * the follower's application of fetched data. The rules are in rn_replica.h.
 */
#include "rn_replica.h"

#include <string.h>

#include "rn_batch.h"
#include "rn_crc32c.h"
#include "rn_logging.h"

bool rn_repl_in(const int32_t *set, int32_t n, int32_t id) {
    for (int32_t i = 0; i < n; i++)
        if (set[i] == id) return true;
    return false;
}

static int32_t replica_index(const rn_repl_leader_t *l, int32_t id) {
    for (int32_t i = 0; i < l->nreplicas; i++)
        if (l->replicas[i] == id) return i;
    return -1;
}

rn_err_t rn_repl_leader_init(rn_repl_leader_t *l, int32_t self, int32_t leader_epoch, const int32_t *replicas,
                             int32_t nreplicas, const int32_t *isr, int32_t nisr, int32_t min_isr, int64_t log_end,
                             int64_t high_watermark, int64_t now_ms) {
    if (nreplicas < 1 || nreplicas > RN_REPL_MAX_REPLICAS || nisr < 1 || nisr > nreplicas || min_isr < 1 ||
        !rn_repl_in(replicas, nreplicas, self) || !rn_repl_in(isr, nisr, self))
        return RN_ERR_INVALID_ARG;
    for (int32_t i = 0; i < nisr; i++)
        if (!rn_repl_in(replicas, nreplicas, isr[i])) return RN_ERR_INVALID_ARG;
    memset(l, 0, sizeof(*l));
    l->self = self;
    l->leader_epoch = leader_epoch;
    l->epoch_start_offset = log_end;
    l->min_isr = min_isr;
    l->nreplicas = nreplicas;
    memcpy(l->replicas, replicas, (size_t)nreplicas * sizeof(int32_t));
    rn_repl_leader_set_isr(l, isr, nisr);
    for (int32_t i = 0; i < nreplicas; i++)
        l->followers[i] = (rn_repl_follower_t){replicas[i], -1, now_ms, -1, -1};
    l->high_watermark = high_watermark;
    return RN_OK;
}

rn_err_t rn_repl_leader_on_fetch(rn_repl_leader_t *l, int32_t replica, int64_t fetch_offset, int64_t leader_end,
                                 int64_t now_ms) {
    int32_t i = replica_index(l, replica);
    if (i < 0 || replica == l->self) return RN_ERR_NOT_LEADER_OR_FOLLOWER;
    rn_repl_follower_t *f = &l->followers[i];
    f->log_end = fetch_offset;
    if (fetch_offset >= leader_end) {
        f->last_caught_up_ms = now_ms;
    } else if (f->leader_end_at_last_fetch >= 0 && fetch_offset >= f->leader_end_at_last_fetch &&
               f->last_fetch_ms > f->last_caught_up_ms) {
        f->last_caught_up_ms = f->last_fetch_ms;
    }
    f->last_fetch_ms = now_ms;
    f->leader_end_at_last_fetch = leader_end;
    return RN_OK;
}

/* The ISR counted for the high watermark: confirmed plus pending members. */
static int32_t maximal_isr(const rn_repl_leader_t *l, int32_t *out) {
    int32_t n = 0;
    for (int32_t i = 0; i < l->nisr; i++) out[n++] = l->isr[i];
    for (int32_t i = 0; i < l->npending; i++)
        if (!rn_repl_in(out, n, l->pending_isr[i])) out[n++] = l->pending_isr[i];
    return n;
}

bool rn_repl_leader_update_hw(rn_repl_leader_t *l, int64_t leader_durable_end) {
    int32_t set[2 * RN_REPL_MAX_REPLICAS];
    int32_t n = maximal_isr(l, set);
    if (n < l->min_isr) return false;
    int64_t hw = leader_durable_end;
    for (int32_t k = 0; k < n; k++) {
        if (set[k] == l->self) continue;
        int32_t i = replica_index(l, set[k]);
        int64_t end = i < 0 ? -1 : l->followers[i].log_end;
        if (end < hw) hw = end;
    }
    if (hw <= l->high_watermark) return false;
    l->high_watermark = hw;
    return true;
}

bool rn_repl_leader_wanted_isr(const rn_repl_leader_t *l, int64_t now_ms, int64_t lag_max_ms, int32_t *isr,
                               int32_t *nisr) {
    int32_t n = 0;
    for (int32_t r = 0; r < l->nreplicas; r++) {
        int32_t id = l->replicas[r];
        const rn_repl_follower_t *f = &l->followers[r];
        bool in_sync = now_ms - f->last_caught_up_ms <= lag_max_ms;
        bool keep;
        if (id == l->self) {
            keep = true;
        } else if (rn_repl_in(l->isr, l->nisr, id)) {
            keep = in_sync;
        } else { /* may join: holds everything committed and everything of this epoch's start */
            keep = in_sync && f->log_end >= 0 && f->log_end >= l->high_watermark &&
                   f->log_end >= l->epoch_start_offset;
        }
        if (keep) isr[n++] = id;
    }
    *nisr = n;
    const int32_t *cur = l->npending ? l->pending_isr : l->isr;
    int32_t ncur = l->npending ? l->npending : l->nisr;
    if (n != ncur) return true;
    for (int32_t i = 0; i < n; i++)
        if (!rn_repl_in(cur, ncur, isr[i])) return true;
    return false;
}

void rn_repl_leader_set_isr(rn_repl_leader_t *l, const int32_t *isr, int32_t nisr) {
    if (nisr > RN_REPL_MAX_REPLICAS) nisr = RN_REPL_MAX_REPLICAS;
    memmove(l->isr, isr, (size_t)nisr * sizeof(int32_t));
    l->nisr = nisr;
    l->npending = 0;
}

void rn_repl_leader_set_pending(rn_repl_leader_t *l, const int32_t *isr, int32_t nisr) {
    if (nisr > RN_REPL_MAX_REPLICAS) nisr = RN_REPL_MAX_REPLICAS;
    memmove(l->pending_isr, isr, (size_t)nisr * sizeof(int32_t));
    l->npending = nisr;
}

rn_err_t rn_repl_leader_check_acks_all(const rn_repl_leader_t *l) {
    return l->nisr < l->min_isr ? RN_ERR_NOT_ENOUGH_REPLICAS : RN_OK;
}

bool rn_repl_diverging(rn_log_t *leader_log, int32_t last_fetched_epoch, int64_t fetch_offset, rn_epoch_end_t *out) {
    if (last_fetched_epoch < 0) return false;
    int32_t e;
    int64_t end;
    if (rn_log_end_offset_for_epoch(leader_log, last_fetched_epoch, &e, &end) != RN_OK) return false;
    if (e < last_fetched_epoch || end < fetch_offset) {
        out->epoch = e;
        out->end_offset = end;
        return true;
    }
    return false;
}

/* ---- follower ----------------------------------------------------------------- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t rn_repl_truncation_offset(rn_log_t *log, rn_epoch_end_t leader, bool *done) {
    int64_t leo = rn_log_end_offset(log);
    *done = true;
    if (leader.end_offset < 0) return min64(rn_log_high_watermark(log), leo); /* the leader knows nothing */
    if (leader.epoch < 0) return min64(leader.end_offset, leo);
    int32_t fe;
    int64_t fend;
    if (rn_log_end_offset_for_epoch(log, leader.epoch, &fe, &fend) != RN_OK || fe < 0 || fend < 0)
        return min64(leader.end_offset, leo);
    if (fe != leader.epoch) { /* our epoch below theirs ends here; check again from there */
        *done = false;
        return min64(fend, leo);
    }
    return min64(min64(leader.end_offset, fend), leo);
}

/* Length of the whole, intact batches at the start of p (CORRUPT_MESSAGE on a bad one). */
static rn_err_t valid_prefix(const uint8_t *p, size_t len, size_t *out) {
    size_t pos = 0;
    while (len - pos >= RN_BATCH_HEADER_SIZE) {
        rn_batch_header_t h;
        rn_batch_header_decode(p + pos, &h);
        if (h.batch_length < RN_BATCH_HEADER_SIZE - RN_BATCH_LOG_OVERHEAD) return RN_ERR_CORRUPT_MESSAGE;
        size_t total = rn_batch_total_size(&h);
        if (total > len - pos) break; /* partial last batch: the fetch's byte limit cut it */
        if (h.magic != 2 || h.last_offset_delta < 0 || h.base_offset < 0) return RN_ERR_CORRUPT_MESSAGE;
        if (rn_batch_compute_crc(p + pos, total) != h.crc) return RN_ERR_CORRUPT_MESSAGE;
        pos += total;
    }
    *out = pos;
    return RN_OK;
}

rn_err_t rn_repl_follower_apply(rn_log_t *log, const rn_repl_fetched_t *f, uint64_t *appended_ticket) {
    *appended_ticket = 0;
    if (f->diverging.epoch >= 0 || f->diverging.end_offset >= 0) {
        bool done;
        int64_t to = rn_repl_truncation_offset(log, f->diverging, &done), end;
        return rn_log_truncate_to(log, to, &end);
    }
    if (f->error) return (rn_err_t)f->error;
    size_t len = 0;
    rn_err_t err = f->records ? valid_prefix(f->records, f->records_len, &len) : RN_OK;
    if (err) {
        RN_WARN("replica", "%s-%d: leader sent a corrupt batch; nothing appended", rn_log_topic(log),
                rn_log_partition(log));
        return err;
    }
    uint8_t *p = f->records;
    /* Skip batches we hold already; a batch straddling our end means our end
     * fell inside one of the leader's batches: cut back to its start. */
    while (len > 0) {
        rn_batch_header_t h;
        rn_batch_header_decode(p, &h);
        int64_t leo = rn_log_end_offset(log);
        if (h.base_offset >= leo) break;
        if (rn_batch_last_offset(&h) >= leo) {
            int64_t end;
            err = rn_log_truncate_to(log, h.base_offset, &end);
            if (err || end != h.base_offset) return err; /* cut further back: fetch again from there */
            break;
        }
        size_t total = rn_batch_total_size(&h);
        p += total;
        len -= total;
    }
    if (len > 0) {
        rn_append_opts_t o = {.leader_epoch = -1, .as_follower = true};
        rn_append_result_t res;
        err = rn_log_append(log, p, len, &o, &res);
        if (err) return err;
        *appended_ticket = res.sync_ticket;
    }
    if (f->high_watermark >= 0) rn_log_set_high_watermark(log, f->high_watermark);
    if (f->log_start_offset > rn_log_start_offset(log)) {
        int64_t to = min64(f->log_start_offset, rn_log_high_watermark(log)), start;
        if (to > rn_log_start_offset(log)) (void)rn_log_delete_records(log, to, &start);
    }
    return RN_OK;
}

rn_err_t rn_repl_follower_out_of_range(rn_log_t *log, int64_t leader_start, int64_t leader_end) {
    int64_t leo = rn_log_end_offset(log), end;
    if (leo > leader_end) return rn_log_truncate_to(log, leader_end, &end);
    if (leo < leader_start) return rn_log_reset_to(log, leader_start);
    return RN_OK;
}
