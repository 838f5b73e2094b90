/*
 * rn_controller.c — controller decisions (see rn_controller.h, docs/internals/controller.md).
 *
 * Every change to a partition goes through one function, build_change(): it takes the current
 * partition and the wanted targets (ISR, replicas, reassignment lists), and
 *   1. drops uncleanly shut down brokers from the ELR (KIP-966),
 *   2. completes a reassignment whose target replicas are all in the ISR,
 *   3. elects a leader if the current one is no longer valid (or a preferred election asks):
 *      an active ISR member in replica order; with the ISR empty, an active ELR member, which
 *      becomes the ISR; failing that, if unclean election is allowed, any active replica
 *      (the ISR becomes just it, leader recovery state RECOVERING); else no leader (-1),
 *   4. keeps the ELR: empty while |ISR| ≥ min.insync.replicas, else (old ISR ∪ old ELR) minus the
 *      new ISR, within the replicas (these replicas have everything up to the high watermark,
 *      which stops advancing below min.insync.replicas),
 *   5. writes a PartitionChange with just the fields that differ (leader present when the
 *      leader changes or replicas were removed, which bumps the leader epoch), or nothing.
 * "Active" is a broker that is neither fenced nor in controlled shutdown, adjusted by the
 * decision's own sets of brokers leaving (being fenced / shutting down) and joining (unfenced).
 */
#include "rn_controller.h"

#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_logging.h"

typedef struct {
    int32_t id;
    int64_t last_ms;
} hb_t;

struct rn_controller {
    rn_ctl_config_t cfg;
    uint64_t rng;
    hb_t *hb; /* sorted by id, one per registered broker at most */
    int32_t nhb, hb_cap;
    const char *msg;
};

void rn_ctl_config_default(rn_ctl_config_t *cfg) {
    *cfg = (rn_ctl_config_t){
        .session_timeout_ms = 9000,
        .num_partitions = 1,
        .default_replication_factor = 1,
        .min_insync_replicas = 1,
        .unclean_leader_election_enable = false,
        .partitions_per_request_max = 10000,
        .producer_id_block_size = 1000,
        .batch_bytes_max = 64u << 20,
        .self_broker_id = -1,
    };
}

rn_controller_t *rn_ctl_new(const rn_ctl_config_t *cfg, uint64_t seed) {
    rn_controller_t *ctl = calloc(1, sizeof(*ctl));
    if (!ctl) return NULL;
    if (cfg)
        ctl->cfg = *cfg;
    else
        rn_ctl_config_default(&ctl->cfg);
    ctl->rng = seed ^ 0x9E3779B97F4A7C15ull;
    return ctl;
}

void rn_ctl_free(rn_controller_t *ctl) {
    if (!ctl) return;
    free(ctl->hb);
    free(ctl);
}

const char *rn_ctl_error_message(const rn_controller_t *ctl) { return ctl->msg; }

static rn_err_t fail(rn_controller_t *ctl, rn_err_t err, const char *msg) {
    ctl->msg = msg;
    return err;
}

static uint64_t rng_next(rn_controller_t *ctl) { /* splitmix64 */
    uint64_t z = (ctl->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- heartbeats (soft state) ---- */

static int32_t hb_find(const rn_controller_t *ctl, int32_t id) {
    int32_t lo = 0, hi = ctl->nhb;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (ctl->hb[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ctl->nhb && ctl->hb[lo].id == id ? lo : -lo - 1;
}

/* Record contact from `id`. Bounded: only registered brokers (the image's limit) get an entry. */
static void hb_touch(rn_controller_t *ctl, int32_t id, int64_t now_ms) {
    int32_t at = hb_find(ctl, id);
    if (at >= 0) {
        ctl->hb[at].last_ms = now_ms;
        return;
    }
    if (ctl->nhb == ctl->hb_cap) {
        int32_t ncap = ctl->hb_cap ? ctl->hb_cap * 2 : 16;
        hb_t *p = realloc(ctl->hb, (size_t)ncap * sizeof(*p));
        if (!p) return; /* the broker is then timed from activation, which only fences it sooner */
        ctl->hb = p;
        ctl->hb_cap = ncap;
    }
    at = -at - 1;
    memmove(&ctl->hb[at + 1], &ctl->hb[at], (size_t)(ctl->nhb - at) * sizeof(*ctl->hb));
    ctl->hb[at] = (hb_t){id, now_ms};
    ctl->nhb++;
}

static int64_t hb_last(const rn_controller_t *ctl, int32_t id) {
    int32_t at = hb_find(ctl, id);
    return at >= 0 ? ctl->hb[at].last_ms : INT64_MIN;
}

static bool session_valid(const rn_controller_t *ctl, const rn_meta_broker_t *b, int64_t now_ms) {
    int64_t last = hb_last(ctl, b->id);
    return !b->fenced && last != INT64_MIN && now_ms - last <= ctl->cfg.session_timeout_ms;
}

void rn_ctl_activate(rn_controller_t *ctl, const rn_meta_image_t *img, int64_t now_ms) {
    ctl->nhb = 0;
    for (int32_t i = 0; i < rn_meta_image_broker_count(img); i++)
        hb_touch(ctl, rn_meta_image_broker_at(img, i)->id, now_ms);
}

/* ---- topic-level settings ---- */

static const char *topic_config(const rn_meta_image_t *img, const char *topic, const char *key) {
    const char *v = rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, topic, key);
    return v ? v : rn_meta_image_config(img, RN_META_RESOURCE_BROKER, "", key);
}

static int32_t min_isr(const rn_controller_t *ctl, const rn_meta_image_t *img, const char *topic) {
    const char *v = topic_config(img, topic, "min.insync.replicas");
    if (v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*v && !*end && n >= 1 && n <= INT32_MAX) return (int32_t)n;
    }
    return ctl->cfg.min_insync_replicas;
}

static bool unclean_allowed(const rn_controller_t *ctl, const rn_meta_image_t *img, const char *topic) {
    const char *v = topic_config(img, topic, "unclean.leader.election.enable");
    if (v && strcmp(v, "true") == 0) return true;
    if (v && strcmp(v, "false") == 0) return false;
    return ctl->cfg.unclean_leader_election_enable;
}

/* ---- the partition change builder ---- */

enum { ELECT_IF_NEEDED, ELECT_PREFERRED };

typedef struct {
    const rn_meta_image_t *img;
    const rn_meta_ids_t *leaving;  /* ineligible although the image says active */
    const rn_meta_ids_t *joining;  /* eligible although the image says fenced */
    const rn_meta_ids_t *unclean;  /* uncleanly shut down: out of the ELR */
    int election;
    bool unclean_ok;
    int32_t min_isr;
    /* out */
    bool elected_unclean;
} build_opts_t;

static bool ids_has(const rn_meta_ids_t *l, int32_t id) { return l && rn_meta_ids_contains(l, id); }

static bool eligible(const build_opts_t *o, int32_t id) {
    if (ids_has(o->leaving, id)) return false;
    if (ids_has(o->joining, id)) return true;
    return rn_meta_image_broker_active(o->img, id);
}

static void ids_minus(rn_meta_ids_t *a, const rn_meta_ids_t *b) {
    for (int32_t i = 0; b && i < b->n; i++) rn_meta_ids_remove(a, b->ids[i]);
}

static void ids_keep_only(rn_meta_ids_t *a, const rn_meta_ids_t *b) {
    int32_t w = 0;
    for (int32_t i = 0; i < a->n; i++)
        if (rn_meta_ids_contains(b, a->ids[i])) a->ids[w++] = a->ids[i];
    a->n = w;
}

static bool valid_leader(const build_opts_t *o, const rn_meta_part_rec_t *t, int32_t id) {
    if (id < 0 || !eligible(o, id)) return false;
    return rn_meta_ids_contains(&t->isr, id) || (t->isr.n == 0 && rn_meta_ids_contains(&t->elr, id));
}

static void elect(build_opts_t *o, rn_meta_part_rec_t *t) {
    int32_t chosen = RN_META_NO_LEADER;
    int32_t preferred = t->replicas.ids[0];
    if (o->election == ELECT_PREFERRED && valid_leader(o, t, preferred))
        chosen = preferred;
    else if (valid_leader(o, t, t->leader))
        chosen = t->leader;
    for (int32_t i = 0; chosen < 0 && i < t->replicas.n; i++)
        if (valid_leader(o, t, t->replicas.ids[i])) chosen = t->replicas.ids[i];
    if (chosen >= 0 && !rn_meta_ids_contains(&t->isr, chosen)) { /* from the ELR (the ISR is empty) */
        rn_meta_ids_remove(&t->elr, chosen);
        t->isr.n = 0;
        rn_meta_ids_add(&t->isr, chosen);
    }
    if (chosen < 0 && t->isr.n == 0 && t->elr.n == 0 && t->replicas.n == 1 && eligible(o, t->replicas.ids[0])) {
        /* A lone replica back from an unclean shutdown: no other copy can hold more, so it leads
         * again with what its disk kept (KIP-966's balanced recovery, with a single candidate). */
        chosen = t->replicas.ids[0];
        rn_meta_ids_add(&t->isr, chosen);
    }
    for (int32_t i = 0; chosen < 0 && o->unclean_ok && i < t->replicas.n; i++) {
        if (!eligible(o, t->replicas.ids[i])) continue;
        chosen = t->replicas.ids[i];
        t->isr.n = 0;
        rn_meta_ids_add(&t->isr, chosen);
        t->leader_recovery_state = RN_META_LRS_RECOVERING;
        o->elected_unclean = true;
    }
    t->leader = chosen;
}

/* t: the wanted partition (cur with targets applied). Fills *c; returns whether anything changed. */
static bool build_change(build_opts_t *o, const rn_meta_part_rec_t *cur, rn_meta_part_rec_t *t,
                         rn_meta_change_rec_t *c) {
    ids_minus(&t->elr, o->unclean);
    /* Only active brokers may be in the ISR. */
    for (int32_t i = t->isr.n - 1; i >= 0; i--)
        if (!eligible(o, t->isr.ids[i]) && !rn_meta_ids_contains(&cur->isr, t->isr.ids[i]))
            rn_meta_ids_remove(&t->isr, t->isr.ids[i]);

    if (t->adding.n || t->removing.n) {
        rn_meta_ids_t target = t->replicas;
        ids_minus(&target, &t->removing);
        bool all_in = true;
        for (int32_t i = 0; i < target.n; i++) all_in = all_in && rn_meta_ids_contains(&t->isr, target.ids[i]);
        rn_meta_ids_t isr = t->isr;
        ids_minus(&isr, &t->removing);
        if (all_in && isr.n > 0) {
            t->replicas = target;
            t->isr = isr;
            ids_keep_only(&t->elr, &target);
            t->adding.n = t->removing.n = 0;
        }
    }

    bool need = t->leader < 0 || !valid_leader(o, t, t->leader) || !rn_meta_ids_contains(&t->isr, t->leader) ||
                (o->election == ELECT_PREFERRED && t->leader != t->replicas.ids[0]);
    if (need) elect(o, t);
    if (t->leader >= 0 && !rn_meta_ids_contains(&t->isr, t->leader)) t->leader = RN_META_NO_LEADER;

    if (t->isr.n >= o->min_isr || o->elected_unclean) {
        t->elr.n = 0;
    } else {
        rn_meta_ids_t elr = cur->isr;
        for (int32_t i = 0; i < cur->elr.n; i++) rn_meta_ids_add(&elr, cur->elr.ids[i]);
        ids_minus(&elr, &t->isr);
        ids_minus(&elr, o->unclean);
        ids_keep_only(&elr, &t->replicas);
        t->elr = elr;
    }

    /* A replica dropped from the assignment must stop following: a new leader epoch fences it. */
    bool bump = false;
    for (int32_t i = 0; i < cur->replicas.n; i++) bump |= !rn_meta_ids_contains(&t->replicas, cur->replicas.ids[i]);

    memset(c, 0, sizeof(*c));
    memcpy(c->topic_id, cur->topic_id, 16);
    c->partition = cur->partition;
    if (t->leader != cur->leader || bump) {
        c->fields |= RN_META_PC_LEADER;
        c->leader = t->leader;
    }
    if (!rn_meta_ids_equal(&t->isr, &cur->isr)) c->fields |= RN_META_PC_ISR, c->isr = t->isr;
    if (!rn_meta_ids_equal(&t->elr, &cur->elr)) c->fields |= RN_META_PC_ELR, c->elr = t->elr;
    if (!rn_meta_ids_equal(&t->replicas, &cur->replicas)) c->fields |= RN_META_PC_REPLICAS, c->replicas = t->replicas;
    if (!rn_meta_ids_equal(&t->adding, &cur->adding)) c->fields |= RN_META_PC_ADDING, c->adding = t->adding;
    if (!rn_meta_ids_equal(&t->removing, &cur->removing)) c->fields |= RN_META_PC_REMOVING, c->removing = t->removing;
    if (t->leader_recovery_state != cur->leader_recovery_state)
        c->fields |= RN_META_PC_LRS, c->leader_recovery_state = t->leader_recovery_state;
    if (c->fields) {
        /* What the image will hold: the epochs as apply computes them. */
        t->partition_epoch = cur->partition_epoch + 1;
        t->leader_epoch = cur->leader_epoch + ((c->fields & RN_META_PC_LEADER) ? 1 : 0);
        RN_ASSERT(rn_meta_partition_check(t) == NULL);
    }
    return c->fields != 0;
}

static void opts_for(build_opts_t *o, const rn_controller_t *ctl, const rn_meta_image_t *img,
                     const rn_meta_topic_t *topic) {
    memset(o, 0, sizeof(*o));
    o->img = img;
    o->election = ELECT_IF_NEEDED;
    o->min_isr = min_isr(ctl, img, topic->name);
    o->unclean_ok = unclean_allowed(ctl, img, topic->name);
}

static void emit_change(rn_meta_batch_t *out, const rn_meta_change_rec_t *c) {
    rn_meta_record_t *rec = calloc(1, sizeof(*rec));
    if (!rec) {
        if (!out->buf.err) out->buf.err = RN_ERR_NOMEM;
        return;
    }
    rec->type = RN_META_PARTITION_CHANGE;
    rec->change = *c;
    rn_meta_batch_add(out, rec);
    free(rec);
}

static void emit_broker(rn_meta_batch_t *out, uint8_t type, int32_t id, int64_t epoch) {
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = type;
    rec.broker.node_id = id;
    rec.broker.epoch = epoch;
    rn_meta_batch_add(out, &rec);
}

/* Undo what a failed decision appended, so `out` is as the caller passed it. */
static rn_err_t finish(rn_controller_t *ctl, rn_meta_batch_t *out, rn_meta_batch_mark_t mark, rn_err_t err) {
    if (!err && out->buf.err) err = fail(ctl, out->buf.err == RN_ERR_LIMIT ? RN_ERR_POLICY_VIOLATION : RN_ERR_UNKNOWN_SERVER_ERROR,
                                          "the change needs more metadata records than one batch may hold");
    if (err && err != RN_ERR_NEW_LEADER_ELECTED) rn_meta_batch_rollback(out, mark);
    if (!err) ctl->msg = NULL;
    return err;
}

/*
 * Brokers leave (fenced, shutting down, re-registered) and/or join (unfenced): revisit every
 * partition that one of them is in. Leaving brokers leave every ISR and leadership; joining ones
 * may take leadership of leaderless partitions; unclean ones leave every ELR.
 */
static void membership_changes(const rn_controller_t *ctl, const rn_meta_image_t *img, const rn_meta_ids_t *leaving,
                               const rn_meta_ids_t *joining, const rn_meta_ids_t *unclean, rn_meta_batch_t *out) {
    for (int32_t ti = 0; ti < rn_meta_image_topic_count(img); ti++) {
        const rn_meta_topic_t *topic = rn_meta_image_topic_at(img, ti);
        for (int32_t p = 0; p < topic->npartitions; p++) {
            rn_meta_part_rec_t cur, t;
            rn_meta_partition_get(topic, p, &cur);
            bool touch = false;
            for (int32_t i = 0; leaving && i < leaving->n; i++) touch |= rn_meta_ids_contains(&cur.isr, leaving->ids[i]);
            for (int32_t i = 0; unclean && i < unclean->n; i++) touch |= rn_meta_ids_contains(&cur.elr, unclean->ids[i]);
            for (int32_t i = 0; joining && i < joining->n; i++)
                touch |= cur.leader < 0 && rn_meta_ids_contains(&cur.replicas, joining->ids[i]);
            if (!touch) continue;
            build_opts_t o;
            opts_for(&o, ctl, img, topic);
            o.leaving = leaving;
            o.joining = joining;
            o.unclean = unclean;
            t = cur;
            ids_minus(&t.isr, leaving);
            rn_meta_change_rec_t c;
            if (build_change(&o, &cur, &t, &c)) emit_change(out, &c);
        }
    }
}

/* ---- brokers ---- */

rn_err_t rn_ctl_register_broker(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_meta_reg_t *req,
                                int64_t previous_broker_epoch, int64_t now_ms, rn_meta_batch_t *out,
                                int64_t *epoch) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    if (req->node_id < 0) return fail(ctl, RN_ERR_INVALID_REQUEST, "negative broker id");
    if (req->nlisteners < 0 || req->nlisteners > RN_META_LISTENERS_MAX)
        return fail(ctl, RN_ERR_INVALID_REQUEST, "too many listeners");
    bool strings_ok = req->rack.len <= RN_META_STR_MAX;
    for (int32_t i = 0; i < req->nlisteners; i++) {
        const rn_meta_listener_t *l = &req->listeners[i];
        strings_ok = strings_ok && l->name.len >= 0 && l->name.len <= RN_META_STR_MAX && l->host.len >= 0 &&
                     l->host.len <= RN_META_STR_MAX;
    }
    if (!strings_ok) return fail(ctl, RN_ERR_INVALID_REQUEST, "a rack, listener name or host too long (or null)");
    const rn_meta_broker_t *old = rn_meta_image_broker(img, req->node_id);
    if (old && memcmp(old->incarnation, req->incarnation, 16) == 0) {
        /* A retry of the registration that made the current epoch. */
        hb_touch(ctl, req->node_id, now_ms);
        *epoch = old->epoch;
        ctl->msg = NULL;
        return RN_OK;
    }
    /* The controller's own node registering anew: its old incarnation was this process's
     * predecessor (one node id, one voter), so it is gone: no session to wait out. */
    bool self = req->node_id == ctl->cfg.self_broker_id;
    if (old && !self && session_valid(ctl, old, now_ms))
        return fail(ctl, RN_ERR_DUPLICATE_BROKER_REGISTRATION, "another incarnation of this broker id holds a session");
    if (!old && rn_meta_image_broker_count(img) >= rn_meta_image_limits(img)->brokers_max)
        return fail(ctl, RN_ERR_POLICY_VIOLATION, "too many brokers");
    int64_t e = rn_meta_image_broker_epoch_hwm(img) + 1;
    rn_meta_record_t *rec = calloc(1, sizeof(*rec));
    if (!rec) return fail(ctl, RN_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
    if (old) { /* the old incarnation leaves first: nothing is ever led by a fenced broker */
        rn_meta_ids_t me = {1, {req->node_id}};
        bool unclean = previous_broker_epoch != old->epoch;
        membership_changes(ctl, img, &me, NULL, unclean ? &me : NULL, out);
    }
    rec->type = RN_META_REGISTER_BROKER;
    rec->reg = *req;
    rec->reg.epoch = e;
    rec->reg.fenced = true;
    rec->reg.in_controlled_shutdown = false;
    rn_meta_batch_add(out, rec);
    free(rec);
    rn_err_t err = finish(ctl, out, mark, RN_OK);
    if (!err) {
        hb_touch(ctl, req->node_id, now_ms);
        *epoch = e;
    }
    return err;
}

static bool leads_anything(const rn_meta_image_t *img, int32_t id) {
    return rn_meta_image_partitions_led_by(img, id, NULL, 0) > 0;
}

rn_err_t rn_ctl_heartbeat(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_ctl_heartbeat_t *req,
                          int64_t now_ms, rn_meta_batch_t *out, rn_ctl_heartbeat_reply_t *reply) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    memset(reply, 0, sizeof(*reply));
    const rn_meta_broker_t *b = rn_meta_image_broker(img, req->broker_id);
    if (!b) return fail(ctl, RN_ERR_BROKER_ID_NOT_REGISTERED, "broker not registered");
    if (b->epoch != req->broker_epoch) return fail(ctl, RN_ERR_STALE_BROKER_EPOCH, "stale broker epoch");
    hb_touch(ctl, b->id, now_ms);
    rn_meta_ids_t me = {1, {b->id}};
    reply->is_caught_up = req->current_metadata_offset >= b->reg_offset;
    reply->is_fenced = b->fenced;
    if (b->fenced) {
        if (req->want_shut_down) {
            reply->should_shut_down = true;
        } else if (!req->want_fence && reply->is_caught_up) {
            emit_broker(out, RN_META_UNFENCE_BROKER, b->id, b->epoch);
            membership_changes(ctl, img, NULL, &me, NULL, out);
            reply->is_fenced = false;
        }
    } else if (b->in_controlled_shutdown) {
        if (!leads_anything(img, b->id) && req->current_metadata_offset >= b->shutdown_offset) {
            emit_broker(out, RN_META_FENCE_BROKER, b->id, b->epoch);
            reply->should_shut_down = true;
            reply->is_fenced = true;
        }
    } else if (req->want_fence) { /* leaderships and ISR places go first, then the state */
        membership_changes(ctl, img, &me, NULL, NULL, out);
        emit_broker(out, RN_META_FENCE_BROKER, b->id, b->epoch);
        reply->is_fenced = true;
    } else if (req->want_shut_down) {
        membership_changes(ctl, img, &me, NULL, NULL, out);
        emit_broker(out, RN_META_BROKER_SHUTDOWN, b->id, b->epoch);
    }
    return finish(ctl, out, mark, RN_OK);
}

int32_t rn_ctl_tick(rn_controller_t *ctl, const rn_meta_image_t *img, int64_t now_ms, rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    rn_meta_ids_t expired = {0, {0}};
    for (int32_t i = 0; i < rn_meta_image_broker_count(img) && expired.n < RN_META_REPLICAS_MAX; i++) {
        const rn_meta_broker_t *b = rn_meta_image_broker_at(img, i);
        if (b->fenced) continue;
        int64_t last = hb_last(ctl, b->id);
        if (last == INT64_MIN) { /* registered through another controller: a session from now */
            hb_touch(ctl, b->id, now_ms);
            continue;
        }
        if (now_ms - last <= ctl->cfg.session_timeout_ms) continue;
        RN_INFO("controller", "broker %d: session expired (%lld ms since its last heartbeat), fencing it", b->id,
                (long long)(now_ms - last));
        expired.ids[expired.n++] = b->id;
    }
    if (expired.n) membership_changes(ctl, img, &expired, NULL, NULL, out);
    for (int32_t i = 0; i < expired.n; i++)
        emit_broker(out, RN_META_FENCE_BROKER, expired.ids[i], rn_meta_image_broker(img, expired.ids[i])->epoch);
    if (finish(ctl, out, mark, RN_OK)) {
        RN_ERROR("controller", "fencing %d brokers needs more than one batch of records", expired.n);
        return 0;
    }
    return expired.n;
}

/* ---- placement ---- */

static int32_t replica_index(int32_t first, int64_t shift, int32_t k, int32_t n) {
    int64_t s = 1 + (shift + k) % (n - 1);
    return (int32_t)((first + s) % n);
}

static bool str_eq_opt(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

rn_err_t rn_ctl_place_replicas(const rn_ctl_placement_broker_t *brokers, int32_t n, int32_t first_partition,
                               int32_t nparts, int32_t rf, int32_t start_index, int32_t shift, rn_meta_ids_t *out) {
    if (rf < 1 || rf > n || rf > RN_META_REPLICAS_MAX) return RN_ERR_INVALID_REPLICATION_FACTOR;
    bool racks = n > 0;
    for (int32_t i = 0; i < n; i++) racks = racks && brokers[i].rack;
    /* Rack-alternated order: racks sorted by name, each rack's brokers by id, taken round-robin. */
    const rn_ctl_placement_broker_t **order = malloc((size_t)n * sizeof(*order));
    const char **rack_names = malloc((size_t)n * sizeof(*rack_names));
    if (!order || !rack_names) {
        free(order);
        free(rack_names);
        return RN_ERR_NOMEM;
    }
    int32_t nracks = 0;
    if (!racks) {
        for (int32_t i = 0; i < n; i++) order[i] = &brokers[i];
    } else {
        for (int32_t i = 0; i < n; i++) {
            int32_t j = 0;
            while (j < nracks && strcmp(rack_names[j], brokers[i].rack) != 0) j++;
            if (j == nracks) {
                int32_t at = nracks++;
                while (at > 0 && strcmp(rack_names[at - 1], brokers[i].rack) > 0) {
                    rack_names[at] = rack_names[at - 1];
                    at--;
                }
                rack_names[at] = brokers[i].rack;
            }
        }
        int32_t filled = 0;
        for (int32_t round = 0; filled < n; round++) {
            for (int32_t r = 0; r < nracks; r++) { /* the round-th broker of rack r, if any */
                int32_t seen = 0;
                for (int32_t i = 0; i < n; i++) {
                    if (strcmp(brokers[i].rack, rack_names[r]) != 0) continue;
                    if (seen++ == round) {
                        order[filled++] = &brokers[i];
                        break;
                    }
                }
            }
        }
    }
    int64_t next_shift = shift;
    for (int32_t k = 0; k < nparts; k++) {
        int32_t pid = first_partition + k;
        if (pid > 0 && pid % n == 0) next_shift++;
        int32_t first = (int32_t)(((int64_t)pid + start_index) % n);
        rn_meta_ids_t *l = &out[k];
        l->n = 0;
        l->ids[l->n++] = order[first]->id;
        if (!racks) {
            for (int32_t j = 0; j < rf - 1; j++) l->ids[l->n++] = order[replica_index(first, next_shift, j, n)]->id;
            continue;
        }
        const char *used_racks[RN_META_REPLICAS_MAX];
        int32_t nused = 0;
        used_racks[nused++] = order[first]->rack;
        int32_t step = 0;
        for (int32_t j = 0; j < rf - 1; j++) {
            for (;; step++) {
                RN_ASSERT(step < 4 * n * n + 4);
                const rn_ctl_placement_broker_t *cand = order[replica_index(first, next_shift * nracks, step, n)];
                bool rack_used = false;
                for (int32_t u = 0; u < nused; u++) rack_used |= str_eq_opt(used_racks[u], cand->rack);
                bool broker_used = rn_meta_ids_contains(l, cand->id);
                if ((!rack_used || nused == nracks) && (!broker_used || l->n == n)) {
                    l->ids[l->n++] = cand->id;
                    if (!rack_used) used_racks[nused++] = cand->rack;
                    step++;
                    break;
                }
            }
        }
    }
    free(order);
    free(rack_names);
    return RN_OK;
}

/* Active brokers, sorted by id (the image's order). */
static int32_t active_brokers(const rn_meta_image_t *img, rn_ctl_placement_broker_t *out) {
    int32_t n = 0;
    for (int32_t i = 0; i < rn_meta_image_broker_count(img); i++) {
        const rn_meta_broker_t *b = rn_meta_image_broker_at(img, i);
        if (rn_meta_broker_active(b)) out[n++] = (rn_ctl_placement_broker_t){b->id, b->rack};
    }
    return n;
}

/* Placement for partitions [first, first+count) of a topic with factor rf, or a check of manual ones. */
static rn_err_t assign(rn_controller_t *ctl, const rn_meta_image_t *img, int32_t first, int32_t count, int32_t rf,
                       int32_t nmanual, const rn_meta_ids_t *manual, rn_meta_ids_t *out) {
    if (nmanual > 0) {
        if (nmanual != count) return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "one assignment per partition");
        for (int32_t k = 0; k < count; k++) {
            const rn_meta_ids_t *m = &manual[k];
            if (m->n < 1 || m->n > RN_META_REPLICAS_MAX || !rn_meta_ids_distinct(m))
                return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "an assignment is empty or repeats a broker");
            if (rf > 0 && m->n != rf)
                return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "assignments of different replication factors");
            bool any_active = false;
            for (int32_t i = 0; i < m->n; i++) {
                if (!rn_meta_image_broker(img, m->ids[i]))
                    return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "an assignment names an unregistered broker");
                any_active |= rn_meta_image_broker_active(img, m->ids[i]);
            }
            if (!any_active)
                return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "every broker of an assignment is fenced");
            rf = m->n;
            out[k] = *m;
        }
        return RN_OK;
    }
    int32_t nb = rn_meta_image_broker_count(img);
    rn_ctl_placement_broker_t *live = malloc((size_t)(nb ? nb : 1) * sizeof(*live));
    if (!live) return fail(ctl, RN_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
    int32_t n = active_brokers(img, live);
    rn_err_t err;
    if (rf > n) {
        err = fail(ctl, RN_ERR_INVALID_REPLICATION_FACTOR, "replication factor larger than the available brokers");
    } else {
        int32_t start = (int32_t)(rng_next(ctl) % (uint64_t)n);
        int32_t shift = (int32_t)(rng_next(ctl) % (uint64_t)n);
        err = rn_ctl_place_replicas(live, n, first, count, rf, start, shift, out);
        if (err) fail(ctl, err, "invalid replication factor");
    }
    free(live);
    return err;
}

/* Partition records for new partitions [first, first+count) with the given assignments. */
/* New partitions, their ISR the active replicas and the first of them leader; without an
 * image (an import), every replica in the ISR and no leader until one is unfenced. */
static void emit_new_partitions(const rn_meta_image_t *img, const uint8_t topic_id[16], int32_t first,
                                int32_t count, const rn_meta_ids_t *assignments, rn_meta_batch_t *out) {
    rn_meta_record_t *rec = calloc(1, sizeof(*rec));
    if (!rec) {
        if (!out->buf.err) out->buf.err = RN_ERR_NOMEM;
        return;
    }
    for (int32_t k = 0; k < count; k++) {
        memset(rec, 0, sizeof(*rec));
        rec->type = RN_META_PARTITION;
        rn_meta_part_rec_t *p = &rec->part;
        memcpy(p->topic_id, topic_id, 16);
        p->partition = first + k;
        p->replicas = assignments[k];
        for (int32_t i = 0; i < p->replicas.n; i++)
            if (!img || rn_meta_image_broker_active(img, p->replicas.ids[i])) p->isr.ids[p->isr.n++] = p->replicas.ids[i];
        p->leader = img ? p->isr.ids[0] : -1;
        rn_meta_batch_add(out, rec);
    }
    free(rec);
}

static bool uuid_zero(const uint8_t id[16]) {
    for (int i = 0; i < 16; i++)
        if (id[i]) return false;
    return true;
}

static void new_topic_id(rn_controller_t *ctl, const rn_meta_image_t *img, uint8_t id[16]) {
    do {
        rn_store_be64(id, rng_next(ctl));
        rn_store_be64(id + 8, rng_next(ctl));
        id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
        id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* variant */
    } while (uuid_zero(id) || rn_meta_image_topic_by_id(img, id));
}

/* ---- topics ---- */

static bool parse_positive_int(rn_str_t v) {
    if (v.len < 1 || v.len > 10) return false;
    int64_t n = 0;
    for (int32_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return false;
        n = n * 10 + (v.ptr[i] - '0');
    }
    return n >= 1 && n <= INT32_MAX;
}

/* Kafka: topics whose names differ only in '.' vs '_' collide in metric names. */
static bool collides(const rn_meta_image_t *img, rn_str_t name) {
    for (int32_t ti = 0; ti < rn_meta_image_topic_count(img); ti++) {
        const char *other = rn_meta_image_topic_at(img, ti)->name;
        if (strlen(other) != (size_t)name.len) continue;
        bool same = true;
        for (int32_t i = 0; i < name.len && same; i++)
            same = (other[i] == '.' ? '_' : other[i]) == (name.ptr[i] == '.' ? '_' : name.ptr[i]);
        if (same) return true;
    }
    return false;
}

/* The configs the controller itself reads must parse (a delete, value len -1, always does). */
static rn_err_t check_config(rn_controller_t *ctl, rn_str_t key, rn_str_t value) {
    if (key.len < 1 || key.len > RN_META_STR_MAX || value.len > RN_META_STR_MAX)
        return fail(ctl, RN_ERR_INVALID_CONFIG, "bad config key or value");
    if (value.len >= 0 && rn_str_eq_cstr(key, "min.insync.replicas") && !parse_positive_int(value))
        return fail(ctl, RN_ERR_INVALID_CONFIG, "min.insync.replicas must be a positive integer");
    if (value.len >= 0 && rn_str_eq_cstr(key, "unclean.leader.election.enable") && !rn_str_eq_cstr(value, "true") &&
        !rn_str_eq_cstr(value, "false"))
        return fail(ctl, RN_ERR_INVALID_CONFIG, "unclean.leader.election.enable must be true or false");
    return RN_OK;
}

/* A new topic's records: configs first (a broker that sees the topic sees it with its
 * configs), the topic, its partitions (img NULL: an import, see emit_new_partitions). */
static void emit_topic(const rn_meta_image_t *img, const rn_ctl_create_topic_t *req, const uint8_t id[16], int32_t np,
                       const rn_meta_ids_t *assignments, rn_meta_batch_t *out) {
    rn_meta_record_t rec;
    for (int32_t i = 0; i < req->nconfigs; i++) {
        memset(&rec, 0, sizeof(rec));
        rec.type = RN_META_CONFIG;
        rec.config.resource_type = RN_META_RESOURCE_TOPIC;
        rec.config.resource_name = req->name;
        rec.config.key = req->configs[i].key;
        rec.config.value = req->configs[i].value;
        rn_meta_batch_add(out, &rec);
    }
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_TOPIC;
    rec.topic.name = req->name;
    memcpy(rec.topic.id, id, 16);
    rn_meta_batch_add(out, &rec);
    emit_new_partitions(img, id, 0, np, assignments, out);
}

rn_err_t rn_ctl_create_topic(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_ctl_create_topic_t *req,
                             rn_meta_batch_t *out, rn_ctl_create_topic_result_t *res) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    memset(res, 0, sizeof(*res));
    if (!rn_meta_topic_name_valid(req->name))
        return fail(ctl, RN_ERR_INVALID_TOPIC_EXCEPTION, "topic names are 1-249 characters of [a-zA-Z0-9._-]");
    if (rn_meta_image_topic_by_name(img, req->name)) return fail(ctl, RN_ERR_TOPIC_ALREADY_EXISTS, "topic exists");
    if (collides(img, req->name))
        return fail(ctl, RN_ERR_INVALID_TOPIC_EXCEPTION,
                    "the name collides with an existing topic's ('.' and '_' are one in metric names)");
    if (rn_meta_image_topic_count(img) >= rn_meta_image_limits(img)->topics_max)
        return fail(ctl, RN_ERR_POLICY_VIOLATION, "the cluster's topic limit is reached");
    if (req->nconfigs < 0 || (int64_t)rn_meta_image_config_count(img) + req->nconfigs > rn_meta_image_limits(img)->configs_max)
        return fail(ctl, RN_ERR_POLICY_VIOLATION, "the cluster's config limit would be exceeded");
    int32_t np = req->num_partitions, rf = req->replication_factor;
    if (req->nassignments > 0) {
        if (np != -1 || rf != -1)
            return fail(ctl, RN_ERR_INVALID_REQUEST, "both an assignment and a partition count or replication factor");
        np = req->nassignments;
        rf = -1;
    } else {
        if (np == -1) np = ctl->cfg.num_partitions;
        if (rf == -1) rf = ctl->cfg.default_replication_factor;
        if (np <= 0) return fail(ctl, RN_ERR_INVALID_PARTITIONS, "partition count must be positive");
        if (rf <= 0) return fail(ctl, RN_ERR_INVALID_REPLICATION_FACTOR, "replication factor must be positive");
    }
    if (np > ctl->cfg.partitions_per_request_max)
        return fail(ctl, RN_ERR_INVALID_PARTITIONS, "too many partitions in one request");
    if (rn_meta_image_partition_count(img) + np > rn_meta_image_limits(img)->partitions_max)
        return fail(ctl, RN_ERR_POLICY_VIOLATION, "the cluster's partition limit would be exceeded");
    for (int32_t i = 0; i < req->nconfigs; i++) {
        rn_err_t err = check_config(ctl, req->configs[i].key, req->configs[i].value);
        if (err) return err;
        if (req->configs[i].value.len < 0) return fail(ctl, RN_ERR_INVALID_CONFIG, "a new topic's config without a value");
        for (int32_t j = 0; j < i; j++)
            if (rn_str_eq(req->configs[i].key, req->configs[j].key))
                return fail(ctl, RN_ERR_INVALID_REQUEST, "a config key given twice");
    }
    rn_meta_ids_t *assignments = malloc((size_t)np * sizeof(*assignments));
    if (!assignments) return fail(ctl, RN_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
    rn_err_t err = assign(ctl, img, 0, np, rf, req->nassignments, req->assignments, assignments);
    if (!err) {
        new_topic_id(ctl, img, res->topic_id);
        res->num_partitions = np;
        res->replication_factor = (int16_t)assignments[0].n;
    }
    if (!err && !req->validate_only) emit_topic(img, req, res->topic_id, np, assignments, out);
    free(assignments);
    return finish(ctl, out, mark, err);
}

rn_err_t rn_ctl_import_topic(rn_controller_t *ctl, const rn_meta_image_t *img, const rn_ctl_create_topic_t *req,
                             const uint8_t topic_id[16], int32_t node, rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    int32_t np = req->num_partitions;
    if (!rn_meta_topic_name_valid(req->name)) return fail(ctl, RN_ERR_INVALID_TOPIC_EXCEPTION, "bad topic name");
    if (rn_meta_image_topic_by_name(img, req->name)) return fail(ctl, RN_ERR_TOPIC_ALREADY_EXISTS, "topic exists");
    if (uuid_zero(topic_id) || rn_meta_image_topic_by_id(img, topic_id))
        return fail(ctl, RN_ERR_INVALID_REQUEST, "the topic id is zero or taken");
    if (np <= 0 || rn_meta_image_partition_count(img) + np > rn_meta_image_limits(img)->partitions_max ||
        rn_meta_image_topic_count(img) >= rn_meta_image_limits(img)->topics_max ||
        (int64_t)rn_meta_image_config_count(img) + req->nconfigs > rn_meta_image_limits(img)->configs_max)
        return fail(ctl, RN_ERR_POLICY_VIOLATION, "the cluster's limits would be exceeded");
    for (int32_t i = 0; i < req->nconfigs; i++) {
        rn_err_t err = check_config(ctl, req->configs[i].key, req->configs[i].value);
        if (err) return err;
    }
    rn_meta_ids_t *assignments = malloc((size_t)np * sizeof(*assignments));
    if (!assignments) return fail(ctl, RN_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
    for (int32_t k = 0; k < np; k++) assignments[k] = (rn_meta_ids_t){1, {node}};
    emit_topic(NULL, req, topic_id, np, assignments, out);
    free(assignments);
    return finish(ctl, out, mark, RN_OK);
}

rn_err_t rn_ctl_create_partitions(rn_controller_t *ctl, const rn_meta_image_t *img, rn_str_t name, int32_t count,
                                  int32_t nassignments, const rn_meta_ids_t *assignments, bool validate_only,
                                  rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    const rn_meta_topic_t *t = rn_meta_image_topic_by_name(img, name);
    if (!t) return fail(ctl, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "unknown topic");
    if (count <= t->npartitions)
        return fail(ctl, RN_ERR_INVALID_PARTITIONS, "a topic's partition count can only grow");
    int32_t add = count - t->npartitions;
    if (add > ctl->cfg.partitions_per_request_max)
        return fail(ctl, RN_ERR_INVALID_PARTITIONS, "too many partitions in one request");
    if (rn_meta_image_partition_count(img) + add > rn_meta_image_limits(img)->partitions_max)
        return fail(ctl, RN_ERR_POLICY_VIOLATION, "the cluster's partition limit would be exceeded");
    if (nassignments > 0 && nassignments != add)
        return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "one assignment per new partition");
    int32_t rf = t->npartitions > 0 ? t->partitions[0].n[RN_META_L_REPLICAS] - t->partitions[0].n[RN_META_L_ADDING]
                                    : ctl->cfg.default_replication_factor;
    rn_meta_ids_t *lists = malloc((size_t)add * sizeof(*lists));
    if (!lists) return fail(ctl, RN_ERR_UNKNOWN_SERVER_ERROR, "out of memory");
    rn_err_t err = assign(ctl, img, t->npartitions, add, rf, nassignments, assignments, lists); /* same factor as the topic */
    if (!err && !validate_only) emit_new_partitions(img, t->id, t->npartitions, add, lists, out);
    free(lists);
    return finish(ctl, out, mark, err);
}

rn_err_t rn_ctl_delete_topic(rn_controller_t *ctl, const rn_meta_image_t *img, rn_str_t name,
                             const uint8_t topic_id[16], rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    const rn_meta_topic_t *t = name.len >= 0 ? rn_meta_image_topic_by_name(img, name)
                                             : (topic_id ? rn_meta_image_topic_by_id(img, topic_id) : NULL);
    if (!t)
        return fail(ctl, name.len >= 0 ? RN_ERR_UNKNOWN_TOPIC_OR_PARTITION : RN_ERR_UNKNOWN_TOPIC_ID, "unknown topic");
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_REMOVE_TOPIC;
    memcpy(rec.remove_topic.topic_id, t->id, 16);
    rn_meta_batch_add(out, &rec);
    return finish(ctl, out, mark, RN_OK);
}

/* ---- partitions ---- */

rn_err_t rn_ctl_alter_partition(rn_controller_t *ctl, const rn_meta_image_t *img,
                                const rn_ctl_alter_partition_t *req, rn_meta_batch_t *out,
                                rn_meta_part_rec_t *result) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    const rn_meta_broker_t *b = rn_meta_image_broker(img, req->broker_id);
    if (!b || b->epoch != req->broker_epoch) return fail(ctl, RN_ERR_STALE_BROKER_EPOCH, "stale broker epoch");
    const rn_meta_topic_t *topic = rn_meta_image_topic_by_id(img, req->topic_id);
    if (!topic) return fail(ctl, RN_ERR_UNKNOWN_TOPIC_ID, "unknown topic id");
    if (req->partition < 0 || req->partition >= topic->npartitions)
        return fail(ctl, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "unknown partition");
    rn_meta_part_rec_t cur;
    rn_meta_partition_get(topic, req->partition, &cur);
    if (req->leader_epoch > cur.leader_epoch)
        return fail(ctl, RN_ERR_NOT_CONTROLLER, "the leader epoch is ahead of this controller's image");
    if (req->leader_epoch < cur.leader_epoch) return fail(ctl, RN_ERR_FENCED_LEADER_EPOCH, "stale leader epoch");
    if (req->broker_id != cur.leader) return fail(ctl, RN_ERR_INVALID_REQUEST, "the requester is not the leader");
    if (req->partition_epoch > cur.partition_epoch)
        return fail(ctl, RN_ERR_NOT_CONTROLLER, "the partition epoch is ahead of this controller's image");
    if (req->partition_epoch < cur.partition_epoch)
        return fail(ctl, RN_ERR_INVALID_UPDATE_VERSION, "stale partition epoch");
    const rn_meta_ids_t *isr = &req->new_isr;
    if (isr->n < 1 || isr->n > RN_META_REPLICAS_MAX || !rn_meta_ids_distinct(isr))
        return fail(ctl, RN_ERR_INVALID_REQUEST, "the new ISR is empty or repeats a replica");
    for (int32_t i = 0; i < isr->n; i++)
        if (!rn_meta_ids_contains(&cur.replicas, isr->ids[i]))
            return fail(ctl, RN_ERR_INVALID_REQUEST, "the new ISR names a broker that is not a replica");
    if (!rn_meta_ids_contains(isr, cur.leader)) return fail(ctl, RN_ERR_INVALID_REQUEST, "the new ISR lacks the leader");
    if (req->leader_recovery_state != RN_META_LRS_RECOVERED && req->leader_recovery_state != RN_META_LRS_RECOVERING)
        return fail(ctl, RN_ERR_INVALID_REQUEST, "bad leader recovery state");
    if (req->leader_recovery_state == RN_META_LRS_RECOVERING && cur.leader_recovery_state == RN_META_LRS_RECOVERED)
        return fail(ctl, RN_ERR_INVALID_REQUEST, "a recovered partition cannot go back to recovering");
    if (cur.leader_recovery_state == RN_META_LRS_RECOVERING && isr->n > 1)
        return fail(ctl, RN_ERR_INVALID_REQUEST, "the ISR cannot grow while the leader recovers");
    for (int32_t i = 0; i < isr->n; i++) {
        const rn_meta_broker_t *m = rn_meta_image_broker(img, isr->ids[i]);
        if (!rn_meta_broker_active(m) || (req->new_isr_epochs[i] != -1 && m->epoch != req->new_isr_epochs[i]))
            return fail(ctl, RN_ERR_INELIGIBLE_REPLICA, "the new ISR names a fenced, shutting down or restarted broker");
    }
    build_opts_t o;
    opts_for(&o, ctl, img, topic);
    o.unclean_ok = false;
    rn_meta_part_rec_t t = cur;
    t.isr = *isr;
    t.leader_recovery_state = req->leader_recovery_state;
    rn_meta_change_rec_t c;
    bool changed = build_change(&o, &cur, &t, &c);
    if (changed) emit_change(out, &c);
    *result = changed ? t : cur;
    rn_err_t err = changed && t.leader != cur.leader ? fail(ctl, RN_ERR_NEW_LEADER_ELECTED, "a new leader was elected")
                                                     : RN_OK;
    return finish(ctl, out, mark, err);
}

/* The partition a request names, and the builder options for it. */
static rn_err_t find_partition(rn_controller_t *ctl, const rn_meta_image_t *img, rn_str_t name, int32_t partition,
                               rn_meta_part_rec_t *cur, build_opts_t *o) {
    const rn_meta_topic_t *topic = rn_meta_image_topic_by_name(img, name);
    if (!topic || partition < 0 || partition >= topic->npartitions)
        return fail(ctl, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "unknown topic or partition");
    rn_meta_partition_get(topic, partition, cur);
    opts_for(o, ctl, img, topic);
    return RN_OK;
}

rn_err_t rn_ctl_elect_leader(rn_controller_t *ctl, const rn_meta_image_t *img, int8_t election_type,
                             rn_str_t name, int32_t partition, rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    rn_meta_part_rec_t cur, t;
    build_opts_t o;
    rn_err_t err = find_partition(ctl, img, name, partition, &cur, &o);
    if (err) return err;
    t = cur;
    if (election_type == RN_CTL_ELECT_PREFERRED) {
        int32_t preferred = cur.replicas.ids[0];
        if (cur.leader == preferred) return fail(ctl, RN_ERR_ELECTION_NOT_NEEDED, "the preferred replica leads");
        if (!rn_meta_ids_contains(&cur.isr, preferred) || !eligible(&o, preferred))
            return fail(ctl, RN_ERR_PREFERRED_LEADER_NOT_AVAILABLE, "the preferred replica is not in the ISR or not active");
        o.election = ELECT_PREFERRED;
        o.unclean_ok = false;
    } else if (election_type == RN_CTL_ELECT_UNCLEAN) {
        if (cur.leader >= 0 && eligible(&o, cur.leader))
            return fail(ctl, RN_ERR_ELECTION_NOT_NEEDED, "the partition has a leader");
        o.unclean_ok = true;
    } else {
        return fail(ctl, RN_ERR_INVALID_REQUEST, "unknown election type");
    }
    rn_meta_change_rec_t c;
    if (build_change(&o, &cur, &t, &c)) emit_change(out, &c);
    if (t.leader < 0) return finish(ctl, out, mark, fail(ctl, RN_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE, "no replica can lead"));
    return finish(ctl, out, mark, RN_OK);
}

int32_t rn_ctl_rebalance_leaders(rn_controller_t *ctl, const rn_meta_image_t *img, int32_t max,
                                 rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    int32_t n = 0;
    for (int32_t ti = 0; ti < rn_meta_image_topic_count(img) && n < max; ti++) {
        const rn_meta_topic_t *topic = rn_meta_image_topic_at(img, ti);
        for (int32_t p = 0; p < topic->npartitions && n < max; p++) {
            rn_meta_part_rec_t cur, t;
            rn_meta_partition_get(topic, p, &cur);
            int32_t preferred = cur.replicas.ids[0];
            if (cur.leader == preferred || !rn_meta_ids_contains(&cur.isr, preferred) ||
                !rn_meta_image_broker_active(img, preferred))
                continue;
            build_opts_t o;
            opts_for(&o, ctl, img, topic);
            o.election = ELECT_PREFERRED;
            t = cur;
            rn_meta_change_rec_t c;
            if (build_change(&o, &cur, &t, &c)) {
                emit_change(out, &c);
                n++;
            }
        }
    }
    return finish(ctl, out, mark, RN_OK) ? 0 : n;
}

rn_err_t rn_ctl_reassign(rn_controller_t *ctl, const rn_meta_image_t *img, rn_str_t name, int32_t partition,
                         const rn_meta_ids_t *target, rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    rn_meta_part_rec_t cur, t;
    build_opts_t o;
    rn_err_t err = find_partition(ctl, img, name, partition, &cur, &o);
    if (err) return err;
    t = cur;
    rn_meta_ids_t orig = cur.replicas;
    ids_minus(&orig, &cur.adding);
    if (!target) {
        if (!cur.adding.n && !cur.removing.n)
            return fail(ctl, RN_ERR_NO_REASSIGNMENT_IN_PROGRESS, "no reassignment in progress");
        t.replicas = orig;
        ids_keep_only(&t.isr, &orig);
        if (t.isr.n == 0)
            return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "no replica of the original assignment is in sync");
        ids_keep_only(&t.elr, &orig);
        t.adding.n = t.removing.n = 0;
    } else {
        if (target->n < 1 || target->n > RN_META_REPLICAS_MAX || !rn_meta_ids_distinct(target))
            return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "the target is empty or repeats a broker");
        for (int32_t i = 0; i < target->n; i++)
            if (!rn_meta_image_broker(img, target->ids[i]))
                return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "the target names an unregistered broker");
        rn_meta_ids_t adding = *target, removing = orig, all = *target;
        ids_minus(&adding, &orig);
        ids_minus(&removing, target);
        for (int32_t i = 0; i < removing.n; i++)
            if (!rn_meta_ids_add(&all, removing.ids[i]))
                return fail(ctl, RN_ERR_INVALID_REPLICA_ASSIGNMENT, "too many replicas during the reassignment");
        t.replicas = all;
        t.adding = adding;
        t.removing = removing;
        ids_keep_only(&t.isr, &all);
        ids_keep_only(&t.elr, &all);
    }
    rn_meta_change_rec_t c;
    if (build_change(&o, &cur, &t, &c)) emit_change(out, &c);
    return finish(ctl, out, mark, RN_OK);
}

/* ---- configs ---- */

/* Does the (type, name) resource's value of `key` decide it for `topic`? */
static bool governs(const rn_meta_image_t *img, int8_t type, rn_str_t name, const char *key,
                    const rn_meta_topic_t *topic) {
    if (type == RN_META_RESOURCE_TOPIC) return rn_str_eq_cstr(name, topic->name);
    return name.len == 0 && !rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, topic->name, key);
}

rn_err_t rn_ctl_alter_config(rn_controller_t *ctl, const rn_meta_image_t *img, int8_t resource_type,
                             rn_str_t resource_name, rn_str_t key, rn_str_t value, rn_meta_batch_t *out) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    if (resource_name.len < 0 || resource_name.len > RN_META_STR_MAX)
        return fail(ctl, RN_ERR_INVALID_REQUEST, "bad resource name");
    if (resource_type == RN_META_RESOURCE_TOPIC) {
        if (!rn_meta_image_topic_by_name(img, resource_name))
            return fail(ctl, RN_ERR_UNKNOWN_TOPIC_OR_PARTITION, "unknown topic");
    } else if (resource_type == RN_META_RESOURCE_BROKER) {
        if (resource_name.len > 0 && !parse_positive_int(resource_name) && !rn_str_eq_cstr(resource_name, "0"))
            return fail(ctl, RN_ERR_INVALID_REQUEST, "a broker resource is a broker id or empty");
    } else {
        return fail(ctl, RN_ERR_INVALID_REQUEST, "only topic and broker configs are kept here");
    }
    rn_err_t err = check_config(ctl, key, value);
    if (err) return err;
    char *cname = strndup(resource_name.ptr ? resource_name.ptr : "", (size_t)resource_name.len);
    char *ckey = strndup(key.ptr, (size_t)key.len);
    bool is_new = cname && ckey && !rn_meta_image_config(img, resource_type, cname, ckey);
    free(cname);
    free(ckey);
    if (value.len >= 0 && is_new && rn_meta_image_config_count(img) >= rn_meta_image_limits(img)->configs_max)
        return fail(ctl, RN_ERR_POLICY_VIOLATION, "the cluster's config limit is reached");
    bool is_min_isr = rn_str_eq_cstr(key, "min.insync.replicas");
    bool is_unclean = rn_str_eq_cstr(key, "unclean.leader.election.enable");
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_CONFIG;
    rec.config.resource_type = resource_type;
    rec.config.resource_name = resource_name;
    rec.config.key = key;
    rec.config.value = value;
    /* A new min.insync.replicas comes after the ELRs it invalidates are cleared (an empty ELR is
     * always consistent); enabling unclean election comes before the elections it allows. */
    if (!is_min_isr) rn_meta_batch_add(out, &rec);
    bool enable_unclean = is_unclean && rn_str_eq_cstr(value, "true");
    for (int32_t ti = 0; (is_min_isr || enable_unclean) && ti < rn_meta_image_topic_count(img); ti++) {
        const rn_meta_topic_t *topic = rn_meta_image_topic_at(img, ti);
        if (!governs(img, resource_type, resource_name, is_min_isr ? "min.insync.replicas" : "unclean.leader.election.enable", topic))
            continue;
        for (int32_t p = 0; p < topic->npartitions; p++) {
            rn_meta_part_rec_t cur, t;
            rn_meta_partition_get(topic, p, &cur);
            rn_meta_change_rec_t c;
            if (is_min_isr && cur.elr.n > 0) {
                memset(&c, 0, sizeof(c));
                memcpy(c.topic_id, cur.topic_id, 16);
                c.partition = p;
                c.fields = RN_META_PC_ELR;
                emit_change(out, &c);
            } else if (enable_unclean && cur.leader < 0) {
                build_opts_t o;
                opts_for(&o, ctl, img, topic);
                o.unclean_ok = true;
                t = cur;
                if (build_change(&o, &cur, &t, &c)) emit_change(out, &c);
            }
        }
    }
    if (is_min_isr) rn_meta_batch_add(out, &rec);
    return finish(ctl, out, mark, RN_OK);
}

rn_err_t rn_ctl_alloc_producer_ids(rn_controller_t *ctl, const rn_meta_image_t *img, int32_t broker_id,
                                   int64_t broker_epoch, rn_meta_batch_t *out, int64_t *first, int32_t *count) {
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(out);
    const rn_meta_broker_t *b = rn_meta_image_broker(img, broker_id);
    if (!b || b->epoch != broker_epoch) return fail(ctl, RN_ERR_STALE_BROKER_EPOCH, "stale broker epoch");
    int64_t start = rn_meta_image_next_producer_id(img);
    int32_t n = ctl->cfg.producer_id_block_size;
    if (n < 1 || start > INT64_MAX - n) return fail(ctl, RN_ERR_UNKNOWN_SERVER_ERROR, "producer ids exhausted");
    rn_meta_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.type = RN_META_PRODUCER_IDS;
    rec.pids.broker_id = broker_id;
    rec.pids.broker_epoch = broker_epoch;
    rec.pids.next_producer_id = start + n;
    rn_meta_batch_add(out, &rec);
    rn_err_t err = finish(ctl, out, mark, RN_OK);
    if (!err) {
        *first = start;
        *count = n;
    }
    return err;
}
