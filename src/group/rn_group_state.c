/*
 * rn_group_state.c — one consumer group's state machine (Kafka's classic
 * group protocol) and its committed offsets.
 *
 * This is Kafka's GroupCoordinator/GroupMetadata logic, re-expressed without
 * purgatories: every timer is a deadline stored in the group, and the caller
 * (rn_coordinator.c) calls rn_group_tick() once rn_group_next_deadline() has
 * passed. Nothing here locks, sleeps or reads a clock; every call gets the
 * time in rn_group_env_t and answers parked requests through rn_group_ops_t.
 *
 *                 first member joins
 *     +-------+ ----------------------> +--------------------+
 *     | Empty |                         | PreparingRebalance | <-----------+
 *     +-------+ <---------------------- +--------------------+             |
 *       |  ^     join phase ends              | join phase ends with       |
 *       |  |     with no members              | members: generation + 1,   |
 *       |  |                                  | protocol chosen, JoinGroup |
 *       |  |                                  | answers sent               |
 *       |  |                                  v                            |
 *       |  |                         +---------------------+  member joins, |
 *       |  |                         | CompletingRebalance | -leaves, fails |
 *       |  |                         +---------------------+  or misses its |
 *       |  |                                  | leader's SyncGroup   sync -->+
 *       |  |                                  | stored: assignments sent     |
 *       |  |                                  v                            |
 *       |  |                             +--------+  leader/changed member  |
 *       |  |                             | Stable |  rejoins, member leaves |
 *       |  |                             +--------+  or its session ends -->+
 *       v  |
 *     +------+   DeleteGroups, or offsets expired in an Empty group; a Dead
 *     | Dead |   group is dropped from the coordinator at once.
 *     +------+
 *
 * The join phase (PreparingRebalance) ends when every known member has
 * rejoined and no MEMBER_ID_REQUIRED answer is outstanding, or when its timer
 * fires: the largest rebalance timeout (max.poll.interval.ms) of the members,
 * or, from Empty, group.initial.rebalance.delay.ms, extended while new members
 * keep arriving. Dynamic members that did not rejoin in time are removed;
 * static members (group.instance.id) stay, and one that comes back with an
 * unknown member id takes over its old identity without a rebalance when the
 * group is Stable (KIP-345).
 *
 * Sessions: every member has a deadline, pushed forward by heartbeats, joins,
 * syncs and commits. A member that is waiting in a join or a sync is not
 * expired (the rebalance timeout covers it), except a brand-new member, which
 * gets new_member_join_timeout_ms to finish its first join. After a join
 * phase the members must send SyncGroup within the rebalance timeout, or they
 * are removed and the group rebalances again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "rn_assert.h"
#include "rn_group.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"

const char *rn_group_state_name(rn_group_state_t s) {
    switch (s) {
    case RN_GS_EMPTY: return "Empty";
    case RN_GS_PREPARING_REBALANCE: return "PreparingRebalance";
    case RN_GS_COMPLETING_REBALANCE: return "CompletingRebalance";
    case RN_GS_STABLE: return "Stable";
    case RN_GS_DEAD: return "Dead";
    }
    return "Unknown";
}

static char *dup_str(rn_str_t s) {
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s.ptr, n);
    p[n] = 0;
    return p;
}

static bool str_is(const char *a, rn_str_t b) {
    if (!a) return b.len < 0;
    if (b.len < 0) return false;
    return strlen(a) == (size_t)b.len && !memcmp(a, b.ptr, (size_t)b.len);
}

static void set_str(char **dst, const char *src) {
    free(*dst);
    *dst = src ? strdup(src) : NULL;
}

/* ---- group and member lifetime ----------------------------------------- */

rn_group_t *rn_group_new(const char *group_id, size_t len, int32_t partition) {
    rn_group_t *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->group_id = dup_str((rn_str_t){group_id, (int32_t)len});
    if (!g->group_id) {
        free(g);
        return NULL;
    }
    g->group_id_len = len;
    g->partition = partition;
    g->state = RN_GS_EMPTY;
    g->state_timestamp_ms = -1;
    g->join_deadline_ms = -1;
    g->sync_deadline_ms = -1;
    g->session_check_ms = -1;
    g->nsubscribed = -1;
    g->heap_index = -1;
    g->heap_deadline_ms = -1;
    rn_map_init(&g->member_index);
    rn_map_init(&g->static_index);
    rn_map_init(&g->offsets);
    return g;
}

static void member_free_protocols(rn_member_t *m) {
    for (int32_t i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    m->protocols = NULL;
    m->nprotocols = 0;
}

static void member_free(rn_member_t *m) {
    member_free_protocols(m);
    free(m->member_id);
    free(m->group_instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->assignment);
    free(m);
}

static void free_subscribed(rn_group_t *g) {
    for (int32_t i = 0; i < g->nsubscribed; i++) free(g->subscribed[i]);
    free(g->subscribed);
    g->subscribed = NULL;
    g->nsubscribed = -1;
}

void rn_group_free(rn_group_t *g) {
    if (!g) return;
    RN_ASSERT(!rn_group_has_waiters(g));
    for (int32_t i = 0; i < g->nmembers; i++) member_free(g->members[i]);
    free(g->members);
    for (int32_t i = 0; i < g->npending; i++) free(g->pending[i].member_id);
    free(g->pending);
    rn_map_free(&g->member_index);
    rn_map_free(&g->static_index);
    size_t it = 0;
    void *v;
    while (rn_map_next(&g->offsets, &it, NULL, &v)) {
        rn_offset_t *o = v;
        free(o->metadata);
        free(o);
    }
    rn_map_free(&g->offsets);
    free_subscribed(g);
    free(g->group_id);
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader_id);
    free(g);
}

bool rn_group_has_waiters(const rn_group_t *g) {
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i]->join_waiter || g->members[i]->sync_waiter) return true;
    return false;
}

rn_member_t *rn_group_member(const rn_group_t *g, const char *member_id, size_t len) {
    if (!member_id || !len) return NULL;
    return rn_map_get(&g->member_index, member_id, len);
}

static rn_member_t *member_s(const rn_group_t *g, rn_str_t id) {
    return id.len > 0 ? rn_group_member(g, id.ptr, (size_t)id.len) : NULL;
}

static rn_member_t *static_member(const rn_group_t *g, rn_str_t instance) {
    return instance.len >= 0 ? rn_map_get(&g->static_index, instance.ptr ? instance.ptr : "", (size_t)instance.len)
                             : NULL;
}

static bool is_leader(const rn_group_t *g, const rn_member_t *m) {
    return g->leader_id && !strcmp(g->leader_id, m->member_id);
}

static int32_t pending_find(const rn_group_t *g, rn_str_t id) {
    for (int32_t i = 0; i < g->npending; i++)
        if (str_is(g->pending[i].member_id, id)) return i;
    return -1;
}

static void pending_remove_at(rn_group_t *g, int32_t i) {
    free(g->pending[i].member_id);
    g->pending[i] = g->pending[--g->npending];
}

static void lower_session_check(rn_group_t *g, int64_t deadline) {
    if (g->session_check_ms < 0 || deadline < g->session_check_ms) g->session_check_ms = deadline;
}

static void schedule_session(const rn_group_env_t *e, rn_group_t *g, rn_member_t *m, int64_t timeout_ms) {
    m->session_deadline_ms = e->now_ms + timeout_ms;
    lower_session_check(g, m->session_deadline_ms);
}

/* Kafka's GroupMetadata.isStaticMemberFenced. */
static bool static_fenced(const rn_group_t *g, rn_str_t instance, rn_str_t member_id) {
    rn_member_t *m = static_member(g, instance);
    return m && !str_is(m->member_id, member_id);
}

static void transition(const rn_group_env_t *e, rn_group_t *g, rn_group_state_t to) {
    bool ok = false;
    switch (to) {
    case RN_GS_EMPTY: ok = g->state == RN_GS_PREPARING_REBALANCE; break;
    case RN_GS_PREPARING_REBALANCE:
        ok = g->state == RN_GS_STABLE || g->state == RN_GS_COMPLETING_REBALANCE || g->state == RN_GS_EMPTY;
        break;
    case RN_GS_COMPLETING_REBALANCE: ok = g->state == RN_GS_PREPARING_REBALANCE; break;
    case RN_GS_STABLE: ok = g->state == RN_GS_COMPLETING_REBALANCE; break;
    case RN_GS_DEAD: ok = true; break;
    }
    RN_ASSERT(ok);
    g->state = to;
    g->state_timestamp_ms = e->wall_ms;
}

void rn_group_assert_state(const rn_group_t *g) {
    int32_t awaiting = 0, statics = 0;
    bool leader_found = false;
    for (int32_t i = 0; i < g->nmembers; i++) {
        const rn_member_t *m = g->members[i];
        RN_ASSERT(m->member_id && m->member_id[0]);
        RN_ASSERT(rn_map_get(&g->member_index, m->member_id, strlen(m->member_id)) == m);
        if (m->awaiting_join) awaiting++;
        if (m->join_waiter) RN_ASSERT(m->awaiting_join);
        if (m->group_instance_id) {
            statics++;
            RN_ASSERT(rn_map_get(&g->static_index, m->group_instance_id, strlen(m->group_instance_id)) == m);
        }
        if (g->leader_id && !strcmp(g->leader_id, m->member_id)) leader_found = true;
        if (m->sync_waiter) RN_ASSERT(g->state == RN_GS_COMPLETING_REBALANCE);
    }
    RN_ASSERT(g->member_index.count == (size_t)g->nmembers);
    RN_ASSERT(g->static_index.count == (size_t)statics);
    RN_ASSERT(awaiting == g->awaiting_join_count);
    RN_ASSERT(g->nmembers == 0 ? g->leader_id == NULL : leader_found);
    switch (g->state) {
    case RN_GS_EMPTY:
        RN_ASSERT(g->nmembers == 0);
        RN_ASSERT(g->join_deadline_ms < 0);
        RN_ASSERT(g->sync_deadline_ms < 0);
        RN_ASSERT(g->protocol_name == NULL);
        break;
    case RN_GS_PREPARING_REBALANCE:
        RN_ASSERT(g->join_deadline_ms >= 0);
        RN_ASSERT(g->sync_deadline_ms < 0);
        break;
    case RN_GS_COMPLETING_REBALANCE:
    case RN_GS_STABLE:
        RN_ASSERT(g->nmembers > 0);
        RN_ASSERT(g->protocol_name != NULL);
        RN_ASSERT(g->join_deadline_ms < 0);
        RN_ASSERT(awaiting == 0);
        break;
    case RN_GS_DEAD:
        RN_ASSERT(g->nmembers == 0);
        RN_ASSERT(g->npending == 0);
        RN_ASSERT(g->join_deadline_ms < 0);
        break;
    }
}

/* ---- answers ------------------------------------------------------------ */

static void join_error(const rn_group_env_t *e, rn_group_t *g, void *waiter, rn_err_t err, const char *member_id) {
    rn_join_result_t r = {
        .error = (int16_t)err,
        .generation = -1,
        .member_id = member_id ? member_id : "",
        .leader_id = "",
    };
    if (waiter) e->ops->join_done(e->ops->ctx, g, waiter, &r);
}

/* Answer a member's parked join with the group as it is now. */
static void join_answer(const rn_group_env_t *e, rn_group_t *g, rn_member_t *m, bool with_members,
                        const char *leader, bool skip) {
    void *w = m->join_waiter;
    m->join_waiter = NULL;
    if (m->awaiting_join) {
        m->awaiting_join = false;
        g->awaiting_join_count--;
    }
    if (!w) return;
    rn_join_result_t r = {
        .error = 0,
        .generation = g->generation,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol_name,
        .leader_id = leader ? leader : (g->leader_id ? g->leader_id : ""),
        .member_id = m->member_id,
        .skip_assignment = skip,
        .members = with_members ? g->members : NULL,
        .nmembers = with_members ? g->nmembers : 0,
    };
    e->ops->join_done(e->ops->ctx, g, w, &r);
}

static void join_fail_member(const rn_group_env_t *e, rn_group_t *g, rn_member_t *m, rn_err_t err,
                             const char *member_id) {
    void *w = m->join_waiter;
    m->join_waiter = NULL;
    if (m->awaiting_join) {
        m->awaiting_join = false;
        g->awaiting_join_count--;
    }
    join_error(e, g, w, err, member_id);
}

static void sync_answer(const rn_group_env_t *e, rn_group_t *g, rn_member_t *m, rn_err_t err) {
    void *w = m->sync_waiter;
    m->sync_waiter = NULL;
    if (!w) return;
    rn_sync_result_t r = {
        .error = (int16_t)err,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol_name,
        .assignment = err ? NULL : m->assignment,
        .assignment_len = err ? 0 : m->assignment_len,
    };
    e->ops->sync_done(e->ops->ctx, g, w, &r);
}

static void sync_error(const rn_group_env_t *e, rn_group_t *g, void *waiter, rn_err_t err) {
    rn_sync_result_t r = {.error = (int16_t)err};
    e->ops->sync_done(e->ops->ctx, g, waiter, &r);
}

void rn_group_fail_waiters(const rn_group_env_t *e, rn_group_t *g, rn_err_t err) {
    for (int32_t i = 0; i < g->nmembers; i++) {
        rn_member_t *m = g->members[i];
        join_fail_member(e, g, m, err, m->member_id);
        sync_answer(e, g, m, err);
    }
}

void rn_group_drop_waiter(rn_group_t *g, void *waiter) {
    for (int32_t i = 0; i < g->nmembers; i++) {
        rn_member_t *m = g->members[i];
        if (m->join_waiter == waiter) m->join_waiter = NULL; /* still awaiting: the join phase counts it */
        if (m->sync_waiter == waiter) m->sync_waiter = NULL;
    }
}

/* ---- protocols ---------------------------------------------------------- */

static bool member_supports(const rn_member_t *m, const char *name) {
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (!strcmp(m->protocols[i].name, name)) return true;
    return false;
}

static bool all_support(const rn_group_t *g, const char *name) {
    for (int32_t i = 0; i < g->nmembers; i++)
        if (!member_supports(g->members[i], name)) return false;
    return true;
}

/* Kafka's supportsProtocols: the first member sets the type; later ones must
 * match it and share at least one protocol with every member. */
static bool supports_protocols(const rn_group_t *g, const rn_join_params_t *p) {
    if (g->nmembers == 0) return p->protocol_type.len > 0 && p->nprotocols > 0;
    if (!g->protocol_type || !str_is(g->protocol_type, p->protocol_type)) return false;
    for (int32_t i = 0; i < p->nprotocols; i++) {
        char *name = dup_str(p->protocol_names[i]);
        bool ok = name && all_support(g, name);
        free(name);
        if (ok) return true;
    }
    return false;
}

/* Kafka's selectProtocol: among protocols every member supports, each member
 * votes for its most preferred; most votes wins (ties: the first member's order). */
static const char *select_protocol(const rn_group_t *g) {
    if (g->nmembers == 0) return NULL;
    const rn_member_t *first = g->members[0];
    const char *best = NULL;
    int32_t best_votes = -1;
    for (int32_t c = 0; c < first->nprotocols; c++) {
        const char *cand = first->protocols[c].name;
        if (!all_support(g, cand)) continue;
        int32_t votes = 0;
        for (int32_t i = 0; i < g->nmembers; i++) {
            const rn_member_t *m = g->members[i];
            for (int32_t j = 0; j < m->nprotocols; j++) {
                if (all_support(g, m->protocols[j].name)) {
                    if (!strcmp(m->protocols[j].name, cand)) votes++;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static bool member_matches(const rn_member_t *m, const rn_join_params_t *p) {
    if (m->nprotocols != p->nprotocols) return false;
    for (int32_t i = 0; i < p->nprotocols; i++) {
        if (!str_is(m->protocols[i].name, p->protocol_names[i])) return false;
        rn_bytes_t md = p->protocol_metadata[i];
        int32_t len = md.len > 0 ? md.len : 0;
        if (m->protocols[i].metadata_len != len) return false;
        if (len && memcmp(m->protocols[i].metadata, md.ptr, (size_t)len)) return false;
    }
    return true;
}

static bool member_set_protocols(rn_member_t *m, const rn_join_params_t *p) {
    rn_gprotocol_t *ps = calloc((size_t)(p->nprotocols > 0 ? p->nprotocols : 1), sizeof(*ps));
    if (!ps) return false;
    for (int32_t i = 0; i < p->nprotocols; i++) {
        ps[i].name = dup_str(p->protocol_names[i]);
        rn_bytes_t md = p->protocol_metadata[i];
        ps[i].metadata_len = md.len > 0 ? md.len : 0;
        ps[i].metadata = malloc((size_t)ps[i].metadata_len + 1);
        if (!ps[i].name || !ps[i].metadata) {
            for (int32_t j = 0; j <= i; j++) {
                free(ps[j].name);
                free(ps[j].metadata);
            }
            free(ps);
            return false;
        }
        if (ps[i].metadata_len) memcpy(ps[i].metadata, md.ptr, (size_t)ps[i].metadata_len);
    }
    member_free_protocols(m);
    m->protocols = ps;
    m->nprotocols = p->nprotocols;
    return true;
}

/* The consumer protocol's subscriptions name the topics (for OffsetDelete). */
static void compute_subscribed(rn_group_t *g) {
    free_subscribed(g);
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") || !g->protocol_name) return;
    rn_map_t set;
    rn_map_init(&set);
    bool ok = true;
    rn_arena_t a;
    rn_arena_init(&a, (size_t)64 << 20);
    for (int32_t i = 0; i < g->nmembers && ok; i++) {
        const rn_member_t *m = g->members[i];
        const rn_gprotocol_t *p = NULL;
        for (int32_t j = 0; j < m->nprotocols; j++)
            if (!strcmp(m->protocols[j].name, g->protocol_name)) p = &m->protocols[j];
        if (!p || p->metadata_len < 2) {
            ok = false;
            break;
        }
        rn_reader_t r;
        rn_reader_init(&r, p->metadata, (size_t)p->metadata_len);
        int16_t v = rn_reader_i16(&r);
        rn_ConsumerProtocolSubscription_t sub;
        if (v < 0 || rn_ConsumerProtocolSubscription_decode(&r, v > 3 ? 3 : v, &a, &sub)) {
            ok = false;
            break;
        }
        for (int32_t t = 0; t < sub.Topics_count; t++)
            if (sub.Topics[t].len > 0 && !rn_map_put(&set, sub.Topics[t].ptr, (size_t)sub.Topics[t].len, NULL)) ok = false;
    }
    if (ok) {
        g->subscribed = calloc(set.count + 1, sizeof(char *));
        if (g->subscribed) {
            g->nsubscribed = 0;
            size_t it = 0;
            const char *k;
            while (rn_map_next(&set, &it, &k, NULL)) g->subscribed[g->nsubscribed++] = strdup(k);
        }
    }
    rn_arena_reset(&a);
    rn_map_free(&set);
}

bool rn_group_is_subscribed(const rn_group_t *g, const char *topic, size_t len) {
    for (int32_t i = 0; i < g->nsubscribed; i++)
        if (strlen(g->subscribed[i]) == len && !memcmp(g->subscribed[i], topic, len)) return true;
    return false;
}

/* ---- membership --------------------------------------------------------- */

static int32_t group_rebalance_timeout(const rn_group_t *g) {
    int32_t t = 0;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i]->rebalance_timeout_ms > t) t = g->members[i]->rebalance_timeout_ms;
    return t;
}

static bool members_add(rn_group_t *g, rn_member_t *m) {
    if (g->nmembers == g->members_cap) {
        int32_t cap = g->members_cap ? g->members_cap * 2 : 4;
        rn_member_t **n = realloc(g->members, (size_t)cap * sizeof(*n));
        if (!n) return false;
        g->members = n;
        g->members_cap = cap;
    }
    if (!rn_map_put(&g->member_index, m->member_id, strlen(m->member_id), m)) return false;
    if (m->group_instance_id &&
        !rn_map_put(&g->static_index, m->group_instance_id, strlen(m->group_instance_id), m)) {
        rn_map_del(&g->member_index, m->member_id, strlen(m->member_id));
        return false;
    }
    g->members[g->nmembers++] = m;
    if (!g->leader_id) g->leader_id = strdup(m->member_id);
    if (m->awaiting_join) g->awaiting_join_count++;
    return true;
}

/* Kafka's GroupMetadata.remove: drops the member (its waiters must be answered). */
static void members_remove(rn_group_t *g, rn_member_t *m) {
    RN_ASSERT(!m->join_waiter && !m->sync_waiter);
    int32_t i = 0;
    while (i < g->nmembers && g->members[i] != m) i++;
    RN_ASSERT(i < g->nmembers);
    memmove(&g->members[i], &g->members[i + 1], (size_t)(g->nmembers - i - 1) * sizeof(*g->members));
    g->nmembers--;
    rn_map_del(&g->member_index, m->member_id, strlen(m->member_id));
    if (m->group_instance_id) rn_map_del(&g->static_index, m->group_instance_id, strlen(m->group_instance_id));
    if (m->awaiting_join) g->awaiting_join_count--;
    if (is_leader(g, m)) set_str(&g->leader_id, g->nmembers ? g->members[0]->member_id : NULL);
    member_free(m);
}

static void prepare_rebalance(const rn_group_env_t *e, rn_group_t *g, const char *reason);
static void try_complete_join(const rn_group_env_t *e, rn_group_t *g);

static void maybe_prepare_rebalance(const rn_group_env_t *e, rn_group_t *g, const char *reason) {
    if (g->state == RN_GS_STABLE || g->state == RN_GS_COMPLETING_REBALANCE || g->state == RN_GS_EMPTY)
        prepare_rebalance(e, g, reason);
}

/* Kafka's removeMemberAndUpdateGroup. */
static void remove_member_and_update(const rn_group_env_t *e, rn_group_t *g, rn_member_t *m, const char *reason) {
    join_fail_member(e, g, m, RN_ERR_UNKNOWN_MEMBER_ID, "");
    /* Not Kafka (which leaves it unanswered): a parked sync is told to rejoin. */
    if (m->sync_waiter) sync_answer(e, g, m, RN_ERR_REBALANCE_IN_PROGRESS);
    RN_INFO("group", "group %s: removing member %s (%s)", g->group_id, m->member_id, reason);
    members_remove(g, m);
    switch (g->state) {
    case RN_GS_DEAD:
    case RN_GS_EMPTY: break;
    case RN_GS_STABLE:
    case RN_GS_COMPLETING_REBALANCE: maybe_prepare_rebalance(e, g, reason); break;
    case RN_GS_PREPARING_REBALANCE: try_complete_join(e, g); break;
    }
}

static void reset_and_propagate_assignment_error(const rn_group_env_t *e, rn_group_t *g, rn_err_t err) {
    for (int32_t i = 0; i < g->nmembers; i++) {
        rn_member_t *m = g->members[i];
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        sync_answer(e, g, m, err);
    }
}

static void prepare_rebalance(const rn_group_env_t *e, rn_group_t *g, const char *reason) {
    if (g->state == RN_GS_COMPLETING_REBALANCE) reset_and_propagate_assignment_error(e, g, RN_ERR_REBALANCE_IN_PROGRESS);
    g->sync_deadline_ms = -1;
    int32_t rebalance_timeout = group_rebalance_timeout(g);
    if (g->state == RN_GS_EMPTY) {
        int32_t delay = e->cfg->initial_rebalance_delay_ms;
        g->join_initial = true;
        g->new_member_added = false;
        g->initial_remaining_ms = rebalance_timeout > delay ? rebalance_timeout - delay : 0;
        g->join_deadline_ms = e->now_ms + delay;
    } else {
        g->join_initial = false;
        g->join_deadline_ms = e->now_ms + rebalance_timeout;
    }
    transition(e, g, RN_GS_PREPARING_REBALANCE);
    RN_INFO("group", "group %s: preparing to rebalance in generation %d (%s)", g->group_id, g->generation, reason);
    try_complete_join(e, g);
}

static rn_member_t *member_new(const rn_join_params_t *p, const char *member_id) {
    rn_member_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->member_id = strdup(member_id);
    m->group_instance_id = p->group_instance_id.len >= 0 ? dup_str(p->group_instance_id) : NULL;
    m->client_id = dup_str(p->client_id);
    m->client_host = dup_str(p->client_host);
    m->session_timeout_ms = p->session_timeout_ms;
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    if (!m->member_id || !m->client_id || !m->client_host || (p->group_instance_id.len >= 0 && !m->group_instance_id) ||
        !member_set_protocols(m, p)) {
        member_free(m);
        return NULL;
    }
    return m;
}

static void add_member_and_rebalance(const rn_group_env_t *e, rn_group_t *g, const rn_join_params_t *p,
                                     const char *member_id) {
    rn_member_t *m = member_new(p, member_id);
    if (m) {
        m->awaiting_join = true;
        m->is_new = true;
        m->join_waiter = p->waiter;
    }
    bool first = g->nmembers == 0;
    if (!m || !members_add(g, m)) {
        if (m) {
            m->join_waiter = NULL;
            member_free(m);
        }
        join_error(e, g, p->waiter, RN_ERR_UNKNOWN_SERVER_ERROR, member_id);
        return;
    }
    if (first) {
        free(g->protocol_type);
        g->protocol_type = dup_str(p->protocol_type);
    }
    if (g->state == RN_GS_PREPARING_REBALANCE && g->generation == 0) g->new_member_added = true;
    /* New members cannot heartbeat (no member id yet): their join is bounded instead. */
    schedule_session(e, g, m, e->cfg->new_member_join_timeout_ms);
    char reason[160];
    snprintf(reason, sizeof(reason), "adding new member %s", member_id);
    maybe_prepare_rebalance(e, g, reason);
}

static void update_member_and_rebalance(const rn_group_env_t *e, rn_group_t *g, rn_member_t *m,
                                        const rn_join_params_t *p, const char *reason) {
    if (!member_set_protocols(m, p)) {
        join_error(e, g, p->waiter, RN_ERR_UNKNOWN_SERVER_ERROR, m->member_id);
        return;
    }
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    m->session_timeout_ms = p->session_timeout_ms;
    /* A second JoinGroup from the same member replaces the first (its client gave up on it). */
    if (m->join_waiter) join_error(e, g, m->join_waiter, RN_ERR_REBALANCE_IN_PROGRESS, m->member_id);
    m->join_waiter = p->waiter;
    if (!m->awaiting_join) {
        m->awaiting_join = true;
        g->awaiting_join_count++;
    }
    maybe_prepare_rebalance(e, g, reason);
}

static void make_member_id(const rn_join_params_t *p, char *out, size_t outlen) {
    /* client id + "-" + a version-4 UUID, as Kafka builds member ids. */
    static _Atomic uint64_t seq;
    uint8_t u[16];
    if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
        uint64_t x = (uint64_t)(uintptr_t)out ^ ((uint64_t)++seq * 0x9e3779b97f4a7c15ull) ^ (uint64_t)time(NULL);
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            u[i] = (uint8_t)x;
        }
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    int cl = p->client_id.len > 0 ? (p->client_id.len > 200 ? 200 : p->client_id.len) : 0;
    snprintf(out, outlen, "%.*s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", cl,
             cl ? p->client_id.ptr : "", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
             u[12], u[13], u[14], u[15]);
}

/* KIP-345: a static member came back with an unknown member id. */
static void update_static_member_and_rebalance(const rn_group_env_t *e, rn_group_t *g, rn_member_t *m,
                                               const rn_join_params_t *p, const char *new_id) {
    char *old_id = strdup(m->member_id);
    char *current_leader = g->leader_id ? strdup(g->leader_id) : NULL;
    if (!old_id || (g->leader_id && !current_leader)) {
        free(old_id);
        free(current_leader);
        join_error(e, g, p->waiter, RN_ERR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    /* The old instance is fenced: whatever it waits for ends with FENCED_INSTANCE_ID. */
    join_fail_member(e, g, m, RN_ERR_FENCED_INSTANCE_ID, old_id);
    if (m->sync_waiter) sync_answer(e, g, m, RN_ERR_FENCED_INSTANCE_ID);
    char *nid = strdup(new_id);
    if (!nid || !rn_map_put(&g->member_index, nid, strlen(nid), m)) {
        free(nid);
        free(old_id);
        free(current_leader);
        join_error(e, g, p->waiter, RN_ERR_UNKNOWN_SERVER_ERROR, "");
        return;
    }
    rn_map_del(&g->member_index, old_id, strlen(old_id));
    free(m->member_id);
    m->member_id = nid;
    if (current_leader && !strcmp(current_leader, old_id)) set_str(&g->leader_id, nid);
    schedule_session(e, g, m, m->session_timeout_ms);
    if (!member_set_protocols(m, p)) {
        free(old_id);
        free(current_leader);
        join_error(e, g, p->waiter, RN_ERR_UNKNOWN_SERVER_ERROR, nid);
        return;
    }
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    m->session_timeout_ms = p->session_timeout_ms;
    m->join_waiter = p->waiter;
    m->awaiting_join = true;
    g->awaiting_join_count++;
    switch (g->state) {
    case RN_GS_STABLE: {
        const char *next = select_protocol(g);
        if (next && g->protocol_name && !strcmp(next, g->protocol_name)) {
            RN_INFO("group", "group %s: static member %s rejoined as %s without a rebalance", g->group_id,
                    m->group_instance_id, nid);
            rn_err_t rc = e->ops->store_group(e->ops->ctx, g);
            if (rc) {
                join_fail_member(e, g, m, rc, nid);
            } else {
                bool leader = is_leader(g, m);
                bool skip = p->support_skip_assignment && leader;
                /* Before KIP-814 the old leader id is returned, so the rejoined
                 * leader does not run an assignment a Stable group would drop. */
                join_answer(e, g, m, skip, skip ? g->leader_id : (current_leader ? current_leader : ""), skip);
            }
        } else {
            maybe_prepare_rebalance(e, g, "static member joined with a protocol change");
        }
        break;
    }
    case RN_GS_COMPLETING_REBALANCE:
        /* The leader may already be assigning for the old member id. */
        prepare_rebalance(e, g, "static member rejoined during CompletingRebalance");
        break;
    case RN_GS_PREPARING_REBALANCE: break;
    case RN_GS_EMPTY:
    case RN_GS_DEAD: RN_UNREACHABLE();
    }
    free(old_id);
    free(current_leader);
}

/* Kafka's acceptJoiningMember (group.max.size). */
static bool accept_joining(const rn_group_env_t *e, const rn_group_t *g, rn_str_t member_id) {
    rn_member_t *m = member_s(g, member_id);
    switch (g->state) {
    case RN_GS_EMPTY:
    case RN_GS_DEAD: return true;
    case RN_GS_PREPARING_REBALANCE: return (m && m->awaiting_join) || g->awaiting_join_count < e->cfg->max_size;
    case RN_GS_COMPLETING_REBALANCE:
    case RN_GS_STABLE: return m || g->nmembers < e->cfg->max_size;
    }
    return false;
}

void rn_group_join(const rn_group_env_t *e, rn_group_t *g, const rn_join_params_t *p) {
    bool unknown = p->member_id.len <= 0;
    char echo[512];
    snprintf(echo, sizeof(echo), "%.*s", p->member_id.len > 0 ? p->member_id.len : 0,
             p->member_id.len > 0 ? p->member_id.ptr : "");
    if (p->session_timeout_ms < e->cfg->min_session_timeout_ms ||
        p->session_timeout_ms > e->cfg->max_session_timeout_ms) {
        join_error(e, g, p->waiter, RN_ERR_INVALID_SESSION_TIMEOUT, echo);
        return;
    }
    if (g->state == RN_GS_DEAD) {
        /* The group is being deleted or unloaded: the client retries. */
        join_error(e, g, p->waiter, RN_ERR_COORDINATOR_NOT_AVAILABLE, echo);
        return;
    }
    if (!accept_joining(e, g, p->member_id)) {
        rn_member_t *m = member_s(g, p->member_id);
        if (m) remove_member_and_update(e, g, m, "group is full");
        join_error(e, g, p->waiter, RN_ERR_GROUP_MAX_SIZE_REACHED, "");
        return;
    }
    if (!supports_protocols(g, p)) {
        join_error(e, g, p->waiter, RN_ERR_INCONSISTENT_GROUP_PROTOCOL, echo);
        return;
    }
    if (unknown) {
        char new_id[320];
        make_member_id(p, new_id, sizeof(new_id));
        rn_member_t *sm = static_member(g, p->group_instance_id);
        if (sm) {
            update_static_member_and_rebalance(e, g, sm, p, new_id);
        } else if (p->require_known_member_id && p->group_instance_id.len < 0) {
            /* KIP-394: hand out the id; the member comes back with it. Ids handed
             * out are bounded like members, so a retry storm cannot grow the list. */
            if (g->npending >= e->cfg->max_size) {
                join_error(e, g, p->waiter, RN_ERR_GROUP_MAX_SIZE_REACHED, "");
                return;
            }
            if (g->npending == g->pending_cap) {
                int32_t cap = g->pending_cap ? g->pending_cap * 2 : 4;
                rn_pending_member_t *n = realloc(g->pending, (size_t)cap * sizeof(*n));
                if (!n) {
                    join_error(e, g, p->waiter, RN_ERR_UNKNOWN_SERVER_ERROR, "");
                    return;
                }
                g->pending = n;
                g->pending_cap = cap;
            }
            char *id = strdup(new_id);
            if (!id) {
                join_error(e, g, p->waiter, RN_ERR_UNKNOWN_SERVER_ERROR, "");
                return;
            }
            g->pending[g->npending].member_id = id;
            g->pending[g->npending].deadline_ms = e->now_ms + p->session_timeout_ms;
            lower_session_check(g, g->pending[g->npending].deadline_ms);
            g->npending++;
            join_error(e, g, p->waiter, RN_ERR_MEMBER_ID_REQUIRED, new_id);
        } else {
            add_member_and_rebalance(e, g, p, new_id);
        }
    } else {
        int32_t pi = pending_find(g, p->member_id);
        rn_member_t *m = member_s(g, p->member_id);
        if (pi >= 0) {
            pending_remove_at(g, pi);
            add_member_and_rebalance(e, g, p, echo);
        } else if (static_fenced(g, p->group_instance_id, p->member_id)) {
            join_error(e, g, p->waiter, RN_ERR_FENCED_INSTANCE_ID, echo);
        } else if (!m || (p->group_instance_id.len >= 0 && !static_member(g, p->group_instance_id))) {
            join_error(e, g, p->waiter, RN_ERR_UNKNOWN_MEMBER_ID, echo);
        } else {
            char reason[160];
            snprintf(reason, sizeof(reason), "member %s rejoining in %s", m->member_id, rn_group_state_name(g->state));
            switch (g->state) {
            case RN_GS_PREPARING_REBALANCE: update_member_and_rebalance(e, g, m, p, reason); break;
            case RN_GS_COMPLETING_REBALANCE:
                if (member_matches(m, p)) {
                    /* It missed the JoinGroup answer: send the current generation again. */
                    rn_join_result_t r = {
                        .generation = g->generation,
                        .protocol_type = g->protocol_type,
                        .protocol_name = g->protocol_name,
                        .leader_id = g->leader_id,
                        .member_id = m->member_id,
                        .members = is_leader(g, m) ? g->members : NULL,
                        .nmembers = is_leader(g, m) ? g->nmembers : 0,
                    };
                    e->ops->join_done(e->ops->ctx, g, p->waiter, &r);
                } else {
                    update_member_and_rebalance(e, g, m, p, reason);
                }
                break;
            case RN_GS_STABLE:
                if (is_leader(g, m) || !member_matches(m, p)) {
                    /* The leader rejoins to reassign (e.g. topic metadata changed). */
                    update_member_and_rebalance(e, g, m, p, reason);
                } else {
                    rn_join_result_t r = {
                        .generation = g->generation,
                        .protocol_type = g->protocol_type,
                        .protocol_name = g->protocol_name,
                        .leader_id = g->leader_id,
                        .member_id = m->member_id,
                    };
                    e->ops->join_done(e->ops->ctx, g, p->waiter, &r);
                }
                break;
            case RN_GS_EMPTY:
            case RN_GS_DEAD: join_error(e, g, p->waiter, RN_ERR_UNKNOWN_MEMBER_ID, echo); break;
            }
        }
    }
    if (g->state == RN_GS_PREPARING_REBALANCE) try_complete_join(e, g);
}

/* ---- completing the join phase ------------------------------------------ */

static bool maybe_elect_new_joined_leader(rn_group_t *g) {
    if (!g->leader_id) return false;
    rn_member_t *leader = rn_group_member(g, g->leader_id, strlen(g->leader_id));
    if (leader && leader->awaiting_join) return true;
    for (int32_t i = 0; i < g->nmembers; i++) {
        if (g->members[i]->awaiting_join) {
            set_str(&g->leader_id, g->members[i]->member_id);
            return true;
        }
    }
    return false;
}

static void init_next_generation(const rn_group_env_t *e, rn_group_t *g) {
    g->generation++;
    if (g->nmembers > 0) {
        set_str(&g->protocol_name, select_protocol(g));
        compute_subscribed(g);
        transition(e, g, RN_GS_COMPLETING_REBALANCE);
    } else {
        set_str(&g->protocol_name, NULL);
        compute_subscribed(g);
        transition(e, g, RN_GS_EMPTY);
    }
    for (int32_t i = 0; i < g->nmembers; i++) g->members[i]->pending_sync = false;
}

static void complete_join(const rn_group_env_t *e, rn_group_t *g) {
    g->join_deadline_ms = -1;
    /* Dynamic members that did not rejoin in time are gone (max.poll.interval.ms). */
    for (int32_t i = 0; i < g->nmembers;) {
        rn_member_t *m = g->members[i];
        if (!m->awaiting_join && !m->group_instance_id) {
            join_fail_member(e, g, m, RN_ERR_UNKNOWN_MEMBER_ID, "");
            if (m->sync_waiter) sync_answer(e, g, m, RN_ERR_REBALANCE_IN_PROGRESS);
            RN_INFO("group", "group %s: member %s did not rejoin within the rebalance timeout", g->group_id,
                    m->member_id);
            members_remove(g, m);
            continue;
        }
        i++;
    }
    if (g->state == RN_GS_DEAD) return;
    if (!maybe_elect_new_joined_leader(g) && g->nmembers > 0) {
        /* Only static members that have not come back: wait another round. */
        RN_WARN("group", "group %s could not complete rebalance because no members rejoined", g->group_id);
        g->join_initial = false;
        g->join_deadline_ms = e->now_ms + group_rebalance_timeout(g);
        return;
    }
    init_next_generation(e, g);
    if (g->state == RN_GS_EMPTY) {
        RN_INFO("group", "group %s with generation %d is now empty", g->group_id, g->generation);
        (void)e->ops->store_group(e->ops->ctx, g);
        return;
    }
    RN_INFO("group", "group %s: stabilized generation %d (%s) with %d member(s), leader %s", g->group_id,
            g->generation, g->protocol_name, g->nmembers, g->leader_id);
    for (int32_t i = 0; i < g->nmembers; i++) {
        rn_member_t *m = g->members[i];
        join_answer(e, g, m, is_leader(g, m), NULL, false);
        schedule_session(e, g, m, m->session_timeout_ms);
        m->is_new = false;
        m->pending_sync = true;
    }
    g->sync_generation = g->generation;
    g->sync_deadline_ms = e->now_ms + group_rebalance_timeout(g);
}

static void try_complete_join(const rn_group_env_t *e, rn_group_t *g) {
    if (g->state != RN_GS_PREPARING_REBALANCE || g->join_initial) return;
    if (g->awaiting_join_count == g->nmembers && g->npending == 0) complete_join(e, g);
}

/* ---- sync, heartbeat, leave, commit ------------------------------------- */

void rn_group_sync(const rn_group_env_t *e, rn_group_t *g, const rn_sync_params_t *p) {
    rn_member_t *m = member_s(g, p->member_id);
    rn_err_t err = RN_OK;
    if (g->state == RN_GS_DEAD)
        err = RN_ERR_COORDINATOR_NOT_AVAILABLE;
    else if (static_fenced(g, p->group_instance_id, p->member_id))
        err = RN_ERR_FENCED_INSTANCE_ID;
    else if (!m)
        err = RN_ERR_UNKNOWN_MEMBER_ID;
    else if (p->generation != g->generation)
        err = RN_ERR_ILLEGAL_GENERATION;
    else if ((p->protocol_type.len >= 0 && !str_is(g->protocol_type, p->protocol_type)) ||
             (p->protocol_name.len >= 0 && !str_is(g->protocol_name, p->protocol_name)))
        err = RN_ERR_INCONSISTENT_GROUP_PROTOCOL;
    else if (g->state == RN_GS_EMPTY)
        err = RN_ERR_UNKNOWN_MEMBER_ID;
    else if (g->state == RN_GS_PREPARING_REBALANCE)
        err = RN_ERR_REBALANCE_IN_PROGRESS;
    if (err) {
        sync_error(e, g, p->waiter, err);
        return;
    }
    m->pending_sync = false;
    if (g->state == RN_GS_STABLE) {
        rn_sync_result_t r = {
            .protocol_type = g->protocol_type,
            .protocol_name = g->protocol_name,
            .assignment = m->assignment,
            .assignment_len = m->assignment_len,
        };
        e->ops->sync_done(e->ops->ctx, g, p->waiter, &r);
        schedule_session(e, g, m, m->session_timeout_ms);
        return;
    }
    /* CompletingRebalance: wait for the leader's assignment. */
    if (m->sync_waiter) sync_error(e, g, m->sync_waiter, RN_ERR_REBALANCE_IN_PROGRESS);
    m->sync_waiter = p->waiter;
    if (!is_leader(g, m)) return;
    /* The leader's assignments; members it left out get an empty one. */
    for (int32_t i = 0; i < g->nmembers; i++) {
        rn_member_t *x = g->members[i];
        free(x->assignment);
        x->assignment = NULL;
        x->assignment_len = 0;
    }
    for (int32_t i = 0; i < p->nassignments; i++) {
        rn_member_t *x = member_s(g, p->assignment_member_ids[i]);
        if (!x) continue;
        rn_bytes_t a = p->assignments[i];
        int32_t len = a.len > 0 ? a.len : 0;
        free(x->assignment);
        x->assignment = malloc((size_t)len + 1);
        x->assignment_len = x->assignment ? len : 0;
        if (x->assignment && len) memcpy(x->assignment, a.ptr, (size_t)len);
    }
    rn_err_t rc = e->ops->store_group(e->ops->ctx, g);
    if (rc) {
        reset_and_propagate_assignment_error(e, g, rc);
        maybe_prepare_rebalance(e, g, "storing the group assignment failed");
        return;
    }
    for (int32_t i = 0; i < g->nmembers; i++) {
        rn_member_t *x = g->members[i];
        if (x->sync_waiter) {
            sync_answer(e, g, x, RN_OK);
            schedule_session(e, g, x, x->session_timeout_ms);
        }
    }
    transition(e, g, RN_GS_STABLE);
    RN_INFO("group", "group %s: assignment for generation %d received from leader %s", g->group_id, g->generation,
            m->member_id);
}

rn_err_t rn_group_heartbeat(const rn_group_env_t *e, rn_group_t *g, rn_str_t member_id, rn_str_t group_instance_id,
                            int32_t generation) {
    if (g->state == RN_GS_DEAD) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    if (static_fenced(g, group_instance_id, member_id)) return RN_ERR_FENCED_INSTANCE_ID;
    rn_member_t *m = member_s(g, member_id);
    if (!m) return RN_ERR_UNKNOWN_MEMBER_ID;
    if (generation != g->generation) return RN_ERR_ILLEGAL_GENERATION;
    switch (g->state) {
    case RN_GS_EMPTY: return RN_ERR_UNKNOWN_MEMBER_ID;
    case RN_GS_COMPLETING_REBALANCE:
    case RN_GS_STABLE: schedule_session(e, g, m, m->session_timeout_ms); return RN_OK;
    case RN_GS_PREPARING_REBALANCE:
        schedule_session(e, g, m, m->session_timeout_ms);
        return RN_ERR_REBALANCE_IN_PROGRESS;
    case RN_GS_DEAD: break;
    }
    return RN_ERR_COORDINATOR_NOT_AVAILABLE;
}

rn_err_t rn_group_leave(const rn_group_env_t *e, rn_group_t *g, rn_str_t member_id, rn_str_t group_instance_id) {
    if (g->state == RN_GS_DEAD) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    if (member_id.len <= 0) {
        /* Administrative removal by group.instance.id. */
        rn_member_t *m = static_member(g, group_instance_id);
        if (!m) return RN_ERR_UNKNOWN_MEMBER_ID;
        remove_member_and_update(e, g, m, "removed by group.instance.id");
        return RN_OK;
    }
    int32_t pi = pending_find(g, member_id);
    if (pi >= 0) {
        pending_remove_at(g, pi);
        if (g->state == RN_GS_PREPARING_REBALANCE) try_complete_join(e, g);
        return RN_OK;
    }
    if (static_fenced(g, group_instance_id, member_id)) return RN_ERR_FENCED_INSTANCE_ID;
    rn_member_t *m = member_s(g, member_id);
    if (!m) return RN_ERR_UNKNOWN_MEMBER_ID;
    remove_member_and_update(e, g, m, "the member left the group");
    return RN_OK;
}

rn_err_t rn_group_validate_commit(const rn_group_env_t *e, rn_group_t *g, rn_str_t member_id,
                                  rn_str_t group_instance_id, int32_t generation) {
    if (g->state == RN_GS_DEAD) return RN_ERR_COORDINATOR_NOT_AVAILABLE;
    if (generation >= 0 || member_id.len > 0 || group_instance_id.len >= 0) {
        if (static_fenced(g, group_instance_id, member_id)) return RN_ERR_FENCED_INSTANCE_ID;
        rn_member_t *m = member_s(g, member_id);
        if (!m) return RN_ERR_UNKNOWN_MEMBER_ID;
        if (generation != g->generation) return RN_ERR_ILLEGAL_GENERATION;
        if (g->state == RN_GS_COMPLETING_REBALANCE) return RN_ERR_REBALANCE_IN_PROGRESS;
        schedule_session(e, g, m, m->session_timeout_ms);
        return RN_OK;
    }
    /* A commit without member or generation: only for groups without members. */
    if (g->state != RN_GS_EMPTY) return RN_ERR_UNKNOWN_MEMBER_ID;
    return RN_OK;
}

void rn_group_set_dead(const rn_group_env_t *e, rn_group_t *g) {
    RN_ASSERT(g->state == RN_GS_EMPTY && g->nmembers == 0);
    for (int32_t i = 0; i < g->npending; i++) free(g->pending[i].member_id);
    g->npending = 0;
    g->join_deadline_ms = g->sync_deadline_ms = g->session_check_ms = -1;
    transition(e, g, RN_GS_DEAD);
}

/* ---- timers ------------------------------------------------------------- */

int64_t rn_group_next_deadline(const rn_group_t *g) {
    int64_t d = -1;
    int64_t c[3] = {g->join_deadline_ms, g->sync_deadline_ms, g->session_check_ms};
    for (int i = 0; i < 3; i++)
        if (c[i] >= 0 && (d < 0 || c[i] < d)) d = c[i];
    return d;
}

static void sessions_check(const rn_group_env_t *e, rn_group_t *g) {
    g->session_check_ms = -1;
    for (int32_t i = 0; i < g->npending;) {
        if (g->pending[i].deadline_ms <= e->now_ms) {
            RN_INFO("group", "group %s: pending member %s expired", g->group_id, g->pending[i].member_id);
            pending_remove_at(g, i);
            if (g->state == RN_GS_PREPARING_REBALANCE) try_complete_join(e, g);
            continue;
        }
        lower_session_check(g, g->pending[i].deadline_ms);
        i++;
    }
    for (int32_t i = 0; i < g->nmembers;) {
        rn_member_t *m = g->members[i];
        if (m->session_deadline_ms <= e->now_ms) {
            bool waiting = m->awaiting_join || m->sync_waiter;
            if (m->is_new || !waiting) {
                remove_member_and_update(e, g, m, m->is_new ? "its first join timed out" : "session timeout");
                i = 0; /* the array changed; restart (each pass removes or reschedules) */
                continue;
            }
            schedule_session(e, g, m, m->session_timeout_ms);
        }
        lower_session_check(g, m->session_deadline_ms);
        i++;
    }
}

void rn_group_tick(const rn_group_env_t *e, rn_group_t *g) {
    if (g->join_deadline_ms >= 0 && g->join_deadline_ms <= e->now_ms && g->state == RN_GS_PREPARING_REBALANCE) {
        if (g->join_initial && g->new_member_added && g->initial_remaining_ms > 0 &&
            e->cfg->initial_rebalance_delay_ms > 0) {
            /* More members arrived during the delay: wait a bit longer (Kafka's InitialDelayedJoin). */
            int64_t delay = e->cfg->initial_rebalance_delay_ms;
            if (delay > g->initial_remaining_ms) delay = g->initial_remaining_ms;
            g->new_member_added = false;
            g->initial_remaining_ms -= delay;
            g->join_deadline_ms = e->now_ms + delay;
        } else {
            g->join_initial = false;
            complete_join(e, g);
        }
    }
    if (g->sync_deadline_ms >= 0 && g->sync_deadline_ms <= e->now_ms) {
        g->sync_deadline_ms = -1;
        if (g->sync_generation == g->generation &&
            (g->state == RN_GS_COMPLETING_REBALANCE || g->state == RN_GS_STABLE)) {
            bool removed = false;
            for (int32_t i = 0; i < g->nmembers;) {
                rn_member_t *m = g->members[i];
                if (m->pending_sync) {
                    join_fail_member(e, g, m, RN_ERR_UNKNOWN_MEMBER_ID, "");
                    if (m->sync_waiter) sync_answer(e, g, m, RN_ERR_REBALANCE_IN_PROGRESS);
                    RN_INFO("group", "group %s: member %s did not send SyncGroup in time", g->group_id, m->member_id);
                    members_remove(g, m);
                    removed = true;
                    continue;
                }
                i++;
            }
            if (removed) maybe_prepare_rebalance(e, g, "members missed their SyncGroup");
        }
    }
    if (g->session_check_ms >= 0 && g->session_check_ms <= e->now_ms) sessions_check(e, g);
}

/* ---- replay ------------------------------------------------------------- */

rn_err_t rn_group_load(const rn_group_env_t *e, rn_group_t *g, const rn_stored_group_t *s) {
    RN_ASSERT(!rn_group_has_waiters(g));
    /* The newest record wins: drop what an older one loaded. */
    while (g->nmembers) {
        rn_member_t *m = g->members[g->nmembers - 1];
        members_remove(g, m);
    }
    free(g->protocol_type);
    g->protocol_type = s->protocol_type.len > 0 ? dup_str(s->protocol_type) : NULL;
    set_str(&g->protocol_name, NULL);
    if (s->protocol_name.len >= 0 && s->nmembers > 0) g->protocol_name = dup_str(s->protocol_name);
    g->generation = s->generation;
    g->join_deadline_ms = g->sync_deadline_ms = -1;
    g->session_check_ms = -1;
    for (int32_t i = 0; i < s->nmembers; i++) {
        const rn_stored_member_t *sm = &s->members[i];
        rn_str_t proto = g->protocol_name ? rn_str_from_cstr(g->protocol_name) : RN_STR_LIT("");
        rn_bytes_t md = sm->subscription;
        rn_join_params_t p = {
            .group_instance_id = sm->group_instance_id,
            .client_id = sm->client_id,
            .client_host = sm->client_host,
            .session_timeout_ms = sm->session_timeout_ms,
            .rebalance_timeout_ms = sm->rebalance_timeout_ms,
            .nprotocols = 1,
            .protocol_names = &proto,
            .protocol_metadata = &md,
        };
        char *id = dup_str(sm->member_id);
        rn_member_t *m = id ? member_new(&p, id) : NULL;
        free(id);
        if (m && sm->assignment.len > 0) {
            m->assignment = malloc((size_t)sm->assignment.len);
            if (m->assignment) {
                memcpy(m->assignment, sm->assignment.ptr, (size_t)sm->assignment.len);
                m->assignment_len = sm->assignment.len;
            }
        }
        if (!m || !members_add(g, m)) {
            if (m) member_free(m);
            return RN_ERR_NOMEM;
        }
        schedule_session(e, g, m, m->session_timeout_ms);
    }
    if (g->nmembers) {
        if (s->leader_id.len > 0 && member_s(g, s->leader_id)) {
            free(g->leader_id);
            g->leader_id = dup_str(s->leader_id);
        }
        if (!g->protocol_name) g->protocol_name = strdup("");
        g->state = RN_GS_STABLE;
    } else {
        g->state = RN_GS_EMPTY;
    }
    g->state_timestamp_ms = s->state_timestamp_ms >= 0 ? s->state_timestamp_ms : e->wall_ms;
    compute_subscribed(g);
    return RN_OK;
}

/* ---- offsets ------------------------------------------------------------ */

#define RN_OFFSET_KEY_MAX 512

static size_t offset_key(char *out, const char *topic, size_t topic_len, int32_t partition) {
    if (topic_len > RN_OFFSET_KEY_MAX - 5) topic_len = RN_OFFSET_KEY_MAX - 5;
    memcpy(out, topic, topic_len);
    out[topic_len] = 0;
    rn_store_be32((uint8_t *)out + topic_len + 1, (uint32_t)partition);
    return topic_len + 5;
}

rn_err_t rn_group_offset_put(rn_group_t *g, const char *topic, size_t topic_len, int32_t partition,
                             const rn_offset_t *o) {
    char key[RN_OFFSET_KEY_MAX];
    size_t kl = offset_key(key, topic, topic_len, partition);
    rn_offset_t *cur = rn_map_get(&g->offsets, key, kl);
    int32_t mdl = o->metadata_len > 0 ? o->metadata_len : 0;
    char *md = malloc((size_t)mdl + 1);
    if (!md) return RN_ERR_NOMEM;
    if (mdl) memcpy(md, o->metadata, (size_t)mdl);
    md[mdl] = 0;
    if (!cur) {
        cur = malloc(sizeof(*cur));
        if (!cur || !rn_map_put(&g->offsets, key, kl, cur)) {
            free(cur);
            free(md);
            return RN_ERR_NOMEM;
        }
    } else {
        free(cur->metadata);
    }
    *cur = *o;
    cur->metadata = md;
    cur->metadata_len = mdl;
    return RN_OK;
}

const rn_offset_t *rn_group_offset_get(const rn_group_t *g, const char *topic, size_t topic_len, int32_t partition) {
    char key[RN_OFFSET_KEY_MAX];
    size_t kl = offset_key(key, topic, topic_len, partition);
    return rn_map_get(&g->offsets, key, kl);
}

bool rn_group_offset_del(rn_group_t *g, const char *topic, size_t topic_len, int32_t partition) {
    char key[RN_OFFSET_KEY_MAX];
    size_t kl = offset_key(key, topic, topic_len, partition);
    rn_offset_t *o = rn_map_del(&g->offsets, key, kl);
    if (!o) return false;
    free(o->metadata);
    free(o);
    return true;
}

size_t rn_group_offset_count(const rn_group_t *g) { return g->offsets.count; }

bool rn_group_offset_next(const rn_group_t *g, size_t *iter, const char **topic, size_t *topic_len, int32_t *partition,
                          const rn_offset_t **o) {
    const char *k;
    void *v;
    if (!rn_map_next(&g->offsets, iter, &k, &v)) return false;
    size_t tl = strlen(k);
    *topic = k;
    *topic_len = tl;
    *partition = (int32_t)rn_load_be32((const uint8_t *)k + tl + 1);
    *o = v;
    return true;
}

void rn_group_expired_offsets(const rn_group_t *g, int64_t wall_ms, int64_t retention_ms,
                              void (*fn)(void *arg, const char *topic, size_t topic_len, int32_t partition),
                              void *arg) {
    /* Kafka 2.1+ (KIP-211): a group with members keeps its offsets, except for
     * topics a Stable consumer group no longer subscribes to; an Empty group's
     * offsets expire retention after it became Empty; a group without a
     * protocol (standalone consumers) expires each offset retention after
     * its commit. An explicit expire timestamp (OffsetCommit v2-v4) wins. */
    enum { NONE, FROM_EMPTY, FROM_COMMIT, UNSUBSCRIBED } mode = NONE;
    if (g->protocol_type && g->state == RN_GS_EMPTY)
        mode = FROM_EMPTY;
    else if (g->protocol_type && !strcmp(g->protocol_type, "consumer") && g->nsubscribed >= 0 &&
             g->state == RN_GS_STABLE)
        mode = UNSUBSCRIBED;
    else if (!g->protocol_type)
        mode = FROM_COMMIT;
    if (mode == NONE) return;
    size_t it = 0;
    const char *t;
    size_t tl;
    int32_t p;
    const rn_offset_t *o;
    while (rn_group_offset_next(g, &it, &t, &tl, &p, &o)) {
        if (mode == UNSUBSCRIBED && rn_group_is_subscribed(g, t, tl)) continue;
        bool expired;
        if (o->expire_timestamp_ms >= 0) {
            expired = wall_ms >= o->expire_timestamp_ms;
        } else {
            int64_t base = o->commit_timestamp_ms;
            if (mode == FROM_EMPTY && g->state_timestamp_ms >= 0) base = g->state_timestamp_ms;
            expired = wall_ms - base >= retention_ms;
        }
        if (expired) fn(arg, t, tl, p);
    }
}
