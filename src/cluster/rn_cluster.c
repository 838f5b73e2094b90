/*
 * rn_cluster.c — this node in the cluster (see rn_cluster.h): the metadata image kept from
 * the quorum, the active controller's work queue, and the broker lifecycle
 * (registration, heartbeats, ISR changes, following the image).
 *
 * Locks, in this order: img_lock → b->topics_lock → (replica manager, logs).
 * c->lock guards the queues and flags; it is never held across any of them.
 */
#include "rn_cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "rn_assert.h"
#include "rn_client.h"
#include "rn_cluster_roles.h"
#include "rn_cluster_import.h"
#include "rn_cluster_int.h"
#include "rn_clock.h"
#include "rn_cond.h"
#include "rn_controller.h"
#include "rn_logging.h"
#include "rn_meta_image.h"
#include "rn_meta_sm.h"
#include "rn_meta_touched.h"
#include "rn_quorum.h"
#include "rn_group.h"
#include "rn_txn.h"
#include "rn_txn_log.h"

#define CTL_TICK_MS 100
#define RN_CLUSTER_ENTRY_BYTES (512 << 10)
#define PROPOSE_TIMEOUT_MS 5000
#define READY_HEARTBEAT_MS 10 /* heartbeats until the first unfencing */

enum {
    JOB_REGISTER, JOB_HEARTBEAT, JOB_ALTER, /* node to node: never forwarded */
    JOB_CREATE, JOB_DELETE, JOB_REASSIGN, JOB_ELECT, JOB_CREATE_PARTITIONS, JOB_CONFIGS
};

typedef rn__job_t job_t;

typedef struct isr_change {
    struct isr_change *next;
    char topic[256];
    int32_t partition, leader_epoch, partition_epoch, nisr;
    int32_t isr[RN_REPL_MAX_REPLICAS];
} isr_change_t;

typedef struct name_item {
    struct name_item *next;
    char name[256];
    rn_itopic_t *itopic; /* an internal topic: its partitions, replication and configs */
} name_item_t;

struct rn_cluster {
    rn_broker_t *b;
    rn_quorum_t *quorum;
    rn_quorum_config_t qcfg;
    rn_replica_mgr_t *mgr;
    pthread_rwlock_t img_lock;
    rn_meta_sm_t sm; /* sm.img: the committed image */
    rn_controller_t *ctl;
    uint64_t ctl_active_term; /* the term the controller was activated in (controller thread) */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_bool stopping;
    bool closing; /* the network has stopped: the controller thread may exit (c->lock) */
    job_t *jobs_head, *jobs_tail;
    int32_t njobs;
    uint64_t image_version, image_seen; /* bumped on apply; the lifecycle thread follows */
    rn_meta_touched_t touched;          /* topics the entries applied since the last follow touched */
    isr_change_t *isr_changes;
    name_item_t *auto_creates;
    pthread_t ctl_thread, life_thread, follow_thread;
    int nthreads; /* started: the controller thread, then (brokers) follow and lifecycle */
    bool threads_started;

    uint8_t incarnation[16];
    _Atomic int64_t broker_epoch; /* -1 until registered */
    atomic_bool ready; /* the registry has followed this broker's first unfencing: no more holding */
    bool swept;        /* orphans swept (at that first unfencing; follow thread) */
    bool want_shutdown, shutdown_ok; /* controlled shutdown: asked, granted (c->lock) */
    bool rack_selector;               /* replica.selector.class is the rack-aware one (KIP-392) */
    int32_t nracks;                   /* brokers' racks, refreshed from the image (c->lock) */
    struct { int32_t id; char rack[64]; } racks[64];
    rn_client_t *ctl_client;
    int32_t ctl_client_node;
    rn_cluster_roles_t roles_cfg; /* process.roles (rn_cluster_roles.c) */
    rn_import_t *import;          /* runnel.meta's topics not yet in the metadata log (rn_cluster_import.c) */
    rn_roles_t *roles;
    bool ctl_client_interrupted; /* by leader_changed (c->lock): replace it */
};

rn_replica_mgr_t *rn_cluster_replicas(rn_broker_t *b) { return b->cluster ? b->cluster->mgr : NULL; }

int32_t rn_cluster_controller_id(rn_broker_t *b) { return b->cluster ? rn_roles_controller_id(b->cluster->roles) : -1; }

bool rn_cluster_ready(rn_broker_t *b) { return !b->cluster || atomic_load(&b->cluster->ready); }

/* The first unfencing, followed (the partitions it leads are in the registry): the
 * node now lists itself in Metadata, so the client requests held since start
 * (rn_dispatch.c) go on, and /health says serving. */
static void became_ready(rn_cluster_t *c) {
    if (atomic_exchange(&c->ready, true)) return;
    RN_INFO("cluster", "node %d is unfenced: serving clients", c->b->cfg.node_id);
    int expected = RN_STATE_RECOVERING;
    atomic_compare_exchange_strong(&c->b->state, &expected, RN_STATE_SERVING);
    rn_broker_wake_all(c->b);
}

int64_t rn_cluster_producer_id(rn_broker_t *b, int64_t local_id) {
    /* Disjoint per node: the low 16 bits are the node id (node.id < 65536). */
    return local_id < 0 ? -1 : (local_id << 16) | (b->cfg.node_id & 0xffff);
}

/* ---- the image (quorum thread applies) ----------------------------------------- */

static void wake(rn_cluster_t *c) {
    pthread_mutex_lock(&c->lock);
    c->image_version++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* The image is the quorum's state machine (rn_meta_sm); these add the lock
 * other threads read it under, and wake the lifecycle thread. */
static void sm_apply(void *arg, uint64_t index, const uint8_t *data, size_t len) {
    rn_cluster_t *c = arg;
    pthread_rwlock_wrlock(&c->img_lock);
    pthread_mutex_lock(&c->lock);
    rn_meta_touched_entry(&c->touched, c->sm.img, data, len); /* before: a removed topic's name is in it */
    pthread_mutex_unlock(&c->lock);
    rn_meta_sm_apply(&c->sm, index, data, len);
    rn_roles_on_apply(c->roles, index, data, len);
    pthread_rwlock_unlock(&c->img_lock);
    wake(c);
}

static rn_err_t sm_take(void *arg, uint64_t index, rn_buf_t *out) {
    rn_cluster_t *c = arg;
    pthread_rwlock_rdlock(&c->img_lock);
    rn_err_t err = rn_meta_sm_snapshot_take(&c->sm, index, out);
    pthread_rwlock_unlock(&c->img_lock);
    return err;
}

static rn_err_t sm_load(void *arg, uint64_t index, const uint8_t *data, size_t len) {
    rn_cluster_t *c = arg;
    pthread_rwlock_wrlock(&c->img_lock);
    rn_err_t err = rn_meta_sm_snapshot_load(&c->sm, index, data, len);
    if (!err) rn_roles_on_load(c->roles, index);
    pthread_mutex_lock(&c->lock);
    rn_meta_touched_set_all(&c->touched);
    pthread_mutex_unlock(&c->lock);
    pthread_rwlock_unlock(&c->img_lock);
    wake(c);
    return err;
}

/* ---- replica manager callbacks ---------------------------------------------------- */

static bool node_address(void *arg, int32_t id, char *host, size_t hostlen, int *port) {
    rn_cluster_t *c = arg;
    bool ok = false;
    pthread_rwlock_rdlock(&c->img_lock);
    const rn_meta_broker_t *br = rn_meta_image_broker(c->sm.img, id);
    if (br && br->nlisteners > 0) {
        snprintf(host, hostlen, "%s", br->listeners[0].host);
        *port = br->listeners[0].port;
        ok = true;
    }
    pthread_rwlock_unlock(&c->img_lock);
    return ok;
}

static void hw_advanced(void *arg) { rn_broker_wake_all(((rn_cluster_t *)arg)->b); }

static void alter_isr(void *arg, const char *topic, int32_t partition, int32_t leader_epoch, int32_t partition_epoch,
                      const int32_t *isr, int32_t nisr) {
    rn_cluster_t *c = arg;
    isr_change_t *ch = calloc(1, sizeof(*ch));
    if (!ch) return; /* proposed again at the next tick */
    snprintf(ch->topic, sizeof(ch->topic), "%s", topic);
    ch->partition = partition;
    ch->leader_epoch = leader_epoch;
    ch->partition_epoch = partition_epoch;
    ch->nisr = nisr;
    memcpy(ch->isr, isr, (size_t)nisr * sizeof(int32_t));
    pthread_mutex_lock(&c->lock);
    ch->next = c->isr_changes;
    c->isr_changes = ch;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_logdir_sync(void *arg, uint64_t ticket, rn_err_t err) {
    rn_broker_t *b = arg;
    rn_broker_wake_all(b);
    if (b->cluster && b->cluster->mgr) rn_replica_mgr_on_sync(b->cluster->mgr);
}

/* ---- following the image (lifecycle thread) ---------------------------------------- */

static void partition_state(const rn_meta_topic_t *mt, int32_t i, const rn_meta_image_t *img, rn_partition_state_t *st,
                            int32_t default_min_isr) {
    rn_meta_part_rec_t pr;
    rn_meta_partition_get(mt, i, &pr);
    memset(st, 0, sizeof(*st));
    st->topic = mt->name;
    st->partition = i;
    st->leader = pr.leader;
    st->leader_epoch = pr.leader_epoch;
    st->partition_epoch = pr.partition_epoch;
    for (int32_t k = 0; k < pr.replicas.n && st->nreplicas < RN_REPL_MAX_REPLICAS; k++)
        st->replicas[st->nreplicas++] = pr.replicas.ids[k];
    for (int32_t k = 0; k < pr.isr.n && st->nisr < RN_REPL_MAX_REPLICAS; k++) st->isr[st->nisr++] = pr.isr.ids[k];
    const char *mi = rn_meta_image_config(img, RN_META_RESOURCE_TOPIC, mt->name, "min.insync.replicas");
    st->min_isr = mi ? atoi(mi) : default_min_isr;
    if (st->min_isr < 1) st->min_isr = 1;
}

static void drop_topic_locked(rn_cluster_t *c, rn_topic_t *t);

/* Brings one topic of the registry in line with the image (img_lock read-held).
 * False: something failed (memory, a log that could not be created) — try again. */
static bool follow_topic(rn_cluster_t *c, const rn_meta_image_t *img, const rn_meta_topic_t *mt) {
    rn_broker_t *b = c->b;
    int32_t self = b->cfg.node_id;
    int32_t default_min_isr = (int32_t)rn_broker_config_long(&b->cfg, "min.insync.replicas");
    size_t nlen = strlen(mt->name);
    pthread_rwlock_wrlock(&b->topics_lock);
    rn_topic_t *t = rn_broker_topic_locked(b, mt->name, nlen);
    if (t && memcmp(t->id, mt->id, 16) != 0) { /* an older topic of this name (deleted, then created again) */
        drop_topic_locked(c, t);
        t = NULL;
    }
    bool created = !t;
    if (!t) {
        t = rn_topic_new(mt->name, nlen, mt->npartitions);
        if (!t || !rn_map_put(&b->topics, t->name, nlen, t)) {
            if (t) rn_topic_release(t);
            pthread_rwlock_unlock(&b->topics_lock);
            return false;
        }
        memcpy(t->id, mt->id, 16);
        t->internal = mt->name[0] == '_' && mt->name[1] == '_';
        RN_INFO("cluster", "topic %s (%d partitions) from the metadata log", mt->name, mt->npartitions);
    }
    /* The topic's configs as the image has them: a change reaches every local replica's log. */
    rn_config_set_t want;
    rn_config_set_init(&want);
    bool configs_changed = false;
    if (rn__image_topic_configs(img, mt->name, &want) && (created || !rn_config_set_equal(&want, &t->configs))) {
        rn_config_set_t old = t->configs;
        t->configs = want;
        want = old;
        configs_changed = true;
    }
    rn_config_set_free(&want);
    rn_topic_refresh_locked(b, t); /* cheap; a topic read from runnel.meta at start has not had it */
    if (mt->npartitions > t->partition_count && rn_topic_grow_locked(t, mt->npartitions) != RN_OK) {
        pthread_rwlock_unlock(&b->topics_lock);
        return false;
    }
    rn_log_config_t lc;
    rn_topic_log_config(&b->cfg, &t->configs, &lc);
    rn_partition_state_t *states = calloc((size_t)mt->npartitions + 1, sizeof(*states));
    rn_log_t **logs = calloc((size_t)mt->npartitions + 1, sizeof(*logs));
    bool ok = states && logs;
    for (int32_t i = 0; states && logs && i < mt->npartitions; i++) {
        rn_partition_state_t *st = &states[i];
        partition_state(mt, i, img, st, default_min_isr);
        rn_partition_t *p = t->partitions[i];
        if (!p) {
            p = calloc(1, sizeof(*p));
            if (!p) {
                ok = false;
                continue;
            }
            p->topic = t;
            p->index = i;
            t->partitions[i] = p;
        }
        p->leader_id = st->leader;
        p->leader_epoch = st->leader_epoch;
        p->nreplicas = st->nreplicas;
        memcpy(p->replicas, st->replicas, sizeof(p->replicas));
        p->nisr = st->nisr;
        memcpy(p->isr, st->isr, sizeof(p->isr));
        if (rn_repl_in(st->replicas, st->nreplicas, self) && !p->log) {
            rn_log_t *log = rn_logdir_find(b->logdir, t->name, i);
            uint8_t id[16];
            rn_err_t idr = log ? rn_log_read_topic_id(log, id) : RN_ERR_NOT_FOUND;
            if (log && idr == RN_OK && memcmp(id, mt->id, 16) != 0) { /* partition.metadata: another incarnation */
                RN_INFO("cluster", "%s-%d: the local copy belongs to an older topic of this name; deleting it", t->name,
                        i);
                rn_logdir_delete_log(b->logdir, log);
                log = NULL;
            }
            if (log) {
                rn_log_retain(log);
                rn_log_set_config(log, &lc);
                if (idr == RN_ERR_NOT_FOUND) (void)rn_log_write_topic_id(log, mt->id);
            } else if (rn_logdir_create_log(b->logdir, t->name, i, &lc, &log) == RN_OK) {
                rn_log_retain(log);
                if (rn_log_write_topic_id(log, mt->id) != RN_OK)
                    RN_WARN("cluster", "%s-%d: writing partition.metadata failed", t->name, i);
            } else {
                log = NULL;
                ok = false;
            }
            if (log) { /* recovery set its high watermark to its end: it resumes from the checkpointed one */
                rn_log_set_replicated(log, true);
                int64_t hw = rn_log_checkpointed_high_watermark(log), start = rn_log_start_offset(log);
                rn_log_clamp_high_watermark(log, hw > start ? hw : start); /* never past the end: clamp lowers */
            }
            p->log = log;
        }
        if (p->log && !rn_repl_in(st->replicas, st->nreplicas, self)) { /* reassigned away: the copy goes */
            RN_INFO("cluster", "%s-%d: no longer a replica here; deleting the local copy", t->name, i);
            rn_replica_mgr_remove(c->mgr, p->log);
            rn_logdir_delete_log(b->logdir, p->log);
            rn_log_release(p->log);
            p->log = NULL;
        }
        if (p->log) {
            if (configs_changed) rn_log_set_config(p->log, &lc);
            rn_log_retain(p->log);
            logs[i] = p->log;
        }
    }
    /* The replica manager learns the new state before the registry's readers see it (still
     * under topics_lock; its lock nests inside, as on the Fetch path): a produce routed by
     * the new leadership must not find the leader not yet leading (NOT_LEADER_OR_FOLLOWER —
     * a non-idempotent producer's retry then lands after later batches: reordered). */
    for (int32_t i = 0; states && logs && i < mt->npartitions; i++) {
        if (!logs[i]) continue;
        rn_err_t err = rn_replica_mgr_set_partition(c->mgr, logs[i], &states[i]);
        if (err && err != RN_ERR_AGAIN)
            RN_WARN("cluster", "%s-%d: applying partition state failed: %s", mt->name, i, rn_err_name(err));
        rn_log_release(logs[i]);
    }
    pthread_rwlock_unlock(&b->topics_lock);
    free(states);
    free(logs);
    return ok;
}

static void drop_topic_locked(rn_cluster_t *c, rn_topic_t *t) {
    rn_broker_t *b = c->b;
    rn_map_del(&b->topics, t->name, strlen(t->name));
    t->deleted = true;
    for (int32_t p = 0; p < t->partition_count; p++) {
        rn_partition_t *pp = t->partitions[p];
        if (!pp || !pp->log) continue;
        rn_replica_mgr_remove(c->mgr, pp->log);
        rn_logdir_delete_log(b->logdir, pp->log);
    }
    RN_INFO("cluster", "topic %s deleted by the metadata log", t->name);
    rn_topic_release(t);
}

/* Topics the image no longer has go (img_lock read-held), in rounds of 64: the
 * registry must not change under its iterator. */
static void drop_deleted_topics(rn_cluster_t *c, const rn_meta_image_t *img) {
    rn_broker_t *b = c->b;
    pthread_rwlock_wrlock(&b->topics_lock);
    rn_topic_t *gone[64];
    int n;
    do {
        size_t it = 0;
        const char *k;
        void *v;
        n = 0;
        while (n < 64 && rn_map_next(&b->topics, &it, &k, &v)) {
            rn_topic_t *t = v;
            if (!rn_meta_image_topic_by_name(img, (rn_str_t){t->name, (int32_t)strlen(t->name)})) gone[n++] = t;
        }
        for (int i = 0; i < n; i++) drop_topic_locked(c, gone[i]);
    } while (n == 64);
    pthread_rwlock_unlock(&b->topics_lock);
}

/* The brokers' racks, for the Fetch path (which must not take img_lock under topics_lock). */
static void refresh_racks(rn_cluster_t *c, const rn_meta_image_t *img) {
    pthread_mutex_lock(&c->lock);
    c->nracks = 0;
    for (int32_t i = 0; i < rn_meta_image_broker_count(img) && c->nracks < 64; i++) {
        const rn_meta_broker_t *br = rn_meta_image_broker_at(img, i);
        if (!br->rack) continue;
        c->racks[c->nracks].id = br->id;
        snprintf(c->racks[c->nracks].rack, sizeof(c->racks[0].rack), "%s", br->rack);
        c->nracks++;
    }
    pthread_mutex_unlock(&c->lock);
}

int32_t rn_cluster_preferred_read_replica(rn_broker_t *b, const rn_partition_t *p, rn_str_t client_rack) {
    rn_cluster_t *c = b->cluster;
    if (!c || !c->rack_selector || client_rack.len <= 0) return -1;
    int32_t found = -1;
    bool leader_same = false;
    pthread_mutex_lock(&c->lock);
    for (int32_t i = 0; i < c->nracks; i++) {
        if (!rn_str_eq_cstr(client_rack, c->racks[i].rack)) continue;
        if (c->racks[i].id == p->leader_id) leader_same = true;
        for (int32_t k = 0; k < p->nisr && found < 0; k++)
            if (p->isr[k] == c->racks[i].id) found = c->racks[i].id;
    }
    pthread_mutex_unlock(&c->lock);
    return leader_same ? -1 : found; /* the leader itself is as near: no redirect */
}

bool rn_cluster_serves_followers_fetch(rn_broker_t *b) { return b->cluster && b->cluster->rack_selector; }

/* A topic the image dropped goes from the registry (and its logs from disk). */
static void drop_topic_named(rn_cluster_t *c, const char *name) {
    pthread_rwlock_wrlock(&c->b->topics_lock);
    rn_topic_t *t = rn_broker_topic_locked(c->b, name, strlen(name));
    if (t) drop_topic_locked(c, t);
    pthread_rwlock_unlock(&c->b->topics_lock);
}

typedef struct {
    rn_log_t **v;
    size_t n, cap;
} log_list_t;

static void collect_log(void *arg, rn_log_t *log) {
    log_list_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        rn_log_t **v = realloc(l->v, cap * sizeof(*v));
        if (!v) return; /* the rest is swept at the next start */
        l->v = v;
        l->cap = cap;
    }
    rn_log_retain(log);
    l->v[l->n++] = log;
}

/* Is this partition directory one the image says this node holds? */
static bool image_holds(const rn_meta_image_t *img, const char *topic, int32_t partition, int32_t self) {
    const rn_meta_topic_t *mt = rn_meta_image_topic_by_name(img, (rn_str_t){topic, (int32_t)strlen(topic)});
    if (!mt || partition >= mt->npartitions) return false;
    rn_meta_part_rec_t pr;
    rn_meta_partition_get(mt, partition, &pr);
    return rn_meta_ids_contains(&pr.replicas, self);
}

/* Orphans: partition directories on this disk that the image does not give this node — a topic
 * deleted, or a replica moved away, while it was down (img_lock read-held; at the node's first
 * unfencing, or after a snapshot load: an image that has every such change; a directory the image
 * gives this node is never one, followed yet or not). Internal topics ("__…": the metadata log's
 * own directory, coordinators' topics) are never touched; nor is anything while the image is
 * still empty (it knows nothing yet). */
static void sweep_orphans(rn_cluster_t *c, const rn_meta_image_t *img) {
    rn_broker_t *b = c->b;
    if (rn_meta_image_offset(img) < 0 || rn_meta_image_topic_count(img) == 0) return;
    log_list_t l = {0};
    rn_logdir_foreach(b->logdir, collect_log, &l);
    for (size_t i = 0; i < l.n; i++) {
        rn_log_t *log = l.v[i];
        const char *topic = rn_log_topic(log);
        int32_t part = rn_log_partition(log);
        bool orphan = strncmp(topic, "__", 2) != 0 && !image_holds(img, topic, part, b->cfg.node_id) &&
                      !rn_import_pending(c->import, topic);
        if (orphan) {
            pthread_rwlock_rdlock(&b->topics_lock);
            rn_partition_t *p = rn_broker_partition_locked(b, topic, strlen(topic), part);
            orphan = !p || p->log != log;
            pthread_rwlock_unlock(&b->topics_lock);
        }
        if (orphan) {
            RN_INFO("cluster", "%s-%d: not this node's in the metadata image (deleted or moved while it was down); "
                    "deleting the local copy", topic, part);
            rn_logdir_delete_log(b->logdir, log);
        }
        rn_log_release(log);
    }
    free(l.v);
}

/* A topic whose follow failed is followed again at the next round (within a second). */
static void retry(rn_cluster_t *c, const char *name) {
    pthread_mutex_lock(&c->lock);
    rn_meta_touched_add(&c->touched, name, strlen(name));
    pthread_mutex_unlock(&c->lock);
}

/* Brings the registry in line with the image for the topics the entries since
 * the last call touched (all of them after a snapshot load, and at start). */
static void follow_image(rn_cluster_t *c, const rn_meta_touched_t *touched) {
    pthread_rwlock_rdlock(&c->img_lock);
    if (touched->all && rn_meta_image_offset(c->sm.img) < 0) { /* nothing applied yet: all of it later */
        pthread_rwlock_unlock(&c->img_lock);
        pthread_mutex_lock(&c->lock);
        rn_meta_touched_set_all(&c->touched);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    refresh_racks(c, c->sm.img);
    const rn_meta_broker_t *me = rn_meta_image_broker(c->sm.img, c->b->cfg.node_id);
    bool unfenced = me && !me->fenced && me->epoch == c->broker_epoch;
    if (touched->all) { /* a broker Config record touches every topic (and its defaults) */
        rn__follow_broker_configs(c->b, c->sm.img);
        for (int32_t i = 0; i < rn_meta_image_topic_count(c->sm.img); i++) {
            const rn_meta_topic_t *mt = rn_meta_image_topic_at(c->sm.img, i);
            if (!follow_topic(c, c->sm.img, mt)) retry(c, mt->name);
        }
        drop_deleted_topics(c, c->sm.img);
        if (c->swept) sweep_orphans(c, c->sm.img); /* a snapshot loaded: a whole image */
    } else {
        for (int32_t i = 0; i < touched->n; i++) {
            const char *name = touched->names[i];
            const rn_meta_topic_t *mt = rn_meta_image_topic_by_name(c->sm.img, (rn_str_t){name, (int32_t)strlen(name)});
            if (!mt) drop_topic_named(c, name);
            else if (!follow_topic(c, c->sm.img, mt)) retry(c, name);
        }
    }
    /* The image a node's unfencing is in holds every change made while it was down (it caught
     * up to its registration first); one replayed from its own log at start may not. */
    if (unfenced && !c->swept) {
        sweep_orphans(c, c->sm.img);
        c->swept = true;
    }
    pthread_rwlock_unlock(&c->img_lock);
    if (unfenced) became_ready(c);
    rn_broker_wake_all(c->b);
    rn_group_coordinator_follow(c->b);
    rn_txn_coordinator_follow(c->b);
}

/* ---- calls to the active controller (lifecycle thread) ------------------------------ */

static rn_client_t *controller_client(rn_cluster_t *c) {
    int32_t leader = rn_roles_leader(c->roles);
    if (leader < 0) return NULL;
    pthread_mutex_lock(&c->lock);
    bool reuse = c->ctl_client && c->ctl_client_node == leader && !c->ctl_client_interrupted;
    pthread_mutex_unlock(&c->lock);
    if (reuse) return c->ctl_client;
    char host[256];
    int port;
    if (rn_roles_controller_address(c->roles, leader, host, sizeof(host), &port)) {
        rn_client_config_t cc = {.host = host, .port = port, .client_id = "runnel-broker",
                                 .timeout_ms = PROPOSE_TIMEOUT_MS + 2000};
        rn_client_t *cl;
        if (rn_client_new(&cc, &cl) != RN_OK) return NULL;
        pthread_mutex_lock(&c->lock);
        rn_client_t *old = c->ctl_client;
        c->ctl_client = cl;
        c->ctl_client_node = leader;
        c->ctl_client_interrupted = false;
        if (c->stopping) rn_client_interrupt(cl);
        pthread_mutex_unlock(&c->lock);
        rn_client_free(old);
        return cl;
    }
    return NULL;
}

/* A new metadata leader (quorum thread): a call still waiting on the old one
 * (unreachable across a partition) ends now rather than at its timeout, so this
 * node heartbeats the new controller within its session. */
static void leader_changed(void *arg, int32_t leader, uint64_t term) {
    (void)term;
    rn_cluster_t *c = arg;
    pthread_mutex_lock(&c->lock);
    if (leader >= 0 && c->ctl_client && c->ctl_client_node != leader) {
        rn_client_interrupt(c->ctl_client);
        c->ctl_client_interrupted = true;
    }
    pthread_cond_broadcast(&c->cond); /* the controller thread activates now, not at its next tick */
    pthread_mutex_unlock(&c->lock);
}

/* Encodes `rq`, calls the controller and decodes its response (arena) into *resp. */
static rn_err_t call_controller(rn_cluster_t *c, int16_t key, int16_t ver, rn_encode_fn enc, const void *rq,
                                void **resp, rn_arena_t *a) {
    *resp = NULL;
    rn_client_t *cl = controller_client(c);
    if (!cl) return RN_ERR_NOT_CONTROLLER;
    rn_buf_t body, out;
    rn_buf_init(&body, 16 << 20);
    rn_buf_init(&out, 16 << 20);
    enc(&body, ver, rq);
    rn_err_t err = rn_buf_err(&body) ? rn_buf_err(&body) : rn_client_call(cl, key, ver, &body, &out);
    if (!err) {
        rn_reader_t r;
        rn_reader_init(&r, out.data, out.len);
        err = rn_msg_decode_any(key, true, ver, &r, a, resp);
    }
    rn_buf_free(&body);
    rn_buf_free(&out);
    return err;
}

static void fill_registration(rn_cluster_t *c, rn_BrokerRegistrationRequest_t *rq, rn_arena_t *a) {
    rn_broker_t *b = c->b;
    rn_BrokerRegistrationRequest_init(rq);
    rq->BrokerId = b->cfg.node_id;
    rq->ClusterId = rn_str_dup_arena(a, b->cluster_id);
    memcpy(rq->IncarnationId, c->incarnation, 16);
    /* Every listener but the controller's, the one brokers replicate through first
     * (inter.broker.listener.name, else the client listener): followers use the first. */
    rq->Listeners = rn_arena_calloc(a, (size_t)b->cfg.nlisteners, sizeof(*rq->Listeners));
    const char *ibl = rn_broker_config_value(&b->cfg, "inter.broker.listener.name", NULL);
    int first = b->cfg.client_listener;
    for (int i = 0; ibl && *ibl && i < b->cfg.nlisteners; i++)
        if (!strcasecmp(b->cfg.listeners[i].name, ibl) && i != b->cfg.controller_listener) first = i;
    for (int k = -1; rq->Listeners && k < b->cfg.nlisteners; k++) {
        int i = k < 0 ? first : k;
        if ((k >= 0 && i == first) || i == b->cfg.controller_listener) continue;
        rn_BrokerRegistrationRequest_Listener_t *l = &rq->Listeners[rq->Listeners_count++];
        rn_BrokerRegistrationRequest_Listener_init(l);
        l->Name = rn_str_dup_arena(a, b->cfg.listeners[i].name);
        l->Host = rn_str_dup_arena(a, b->cfg.listeners[i].adv_host);
        l->Port = (uint16_t)b->cfg.listeners[i].adv_port;
    }
    const char *rack = rn_broker_config_value(&b->cfg, "broker.rack", NULL);
    rq->Rack = rack ? rn_str_dup_arena(a, rack) : RN_STR_NULL;
    rq->PreviousBrokerEpoch = c->broker_epoch;
}

static void send_isr_changes(rn_cluster_t *c, isr_change_t *list, rn_arena_t *a) {
    for (isr_change_t *ch = list; ch; ch = ch->next) {
        rn_AlterPartitionRequest_t rq;
        rn_AlterPartitionRequest_init(&rq);
        rq.BrokerId = c->b->cfg.node_id;
        rq.BrokerEpoch = c->broker_epoch;
        rn_AlterPartitionRequest_TopicData_t *td = rn_arena_calloc(a, 1, sizeof(*td));
        rn_AlterPartitionRequest_PartitionData_t *pd = rn_arena_calloc(a, 1, sizeof(*pd));
        if (!td || !pd) return;
        rn_AlterPartitionRequest_TopicData_init(td);
        rn_AlterPartitionRequest_PartitionData_init(pd);
        td->TopicName = rn_str_dup_arena(a, ch->topic);
        pthread_rwlock_rdlock(&c->img_lock);
        const rn_meta_topic_t *mt = rn_meta_image_topic_by_name(c->sm.img, td->TopicName);
        if (mt) memcpy(td->TopicId, mt->id, 16);
        pthread_rwlock_unlock(&c->img_lock);
        pd->PartitionIndex = ch->partition;
        pd->LeaderEpoch = ch->leader_epoch;
        pd->PartitionEpoch = ch->partition_epoch;
        pd->NewIsr = rn_arena_calloc(a, (size_t)ch->nisr + 1, sizeof(int32_t));
        if (!pd->NewIsr) return;
        memcpy(pd->NewIsr, ch->isr, (size_t)ch->nisr * sizeof(int32_t));
        pd->NewIsr_count = ch->nisr;
        td->Partitions = pd;
        td->Partitions_count = 1;
        rq.Topics = td;
        rq.Topics_count = 1;
        void *resp;
        rn_err_t err =
            call_controller(c, RN_API_ALTER_PARTITION, 1, (rn_encode_fn)rn_AlterPartitionRequest_encode, &rq, &resp, a);
        rn_AlterPartitionResponse_t *ar = resp;
        if (!err) err = ar->ErrorCode;
        if (!err && ar->Topics_count > 0 && ar->Topics[0].Partitions_count > 0)
            err = ar->Topics[0].Partitions[0].ErrorCode;
        if (err) { /* the leader's proposal stays pending until its partition is followed again */
            RN_DEBUG("cluster", "AlterPartition %s-%d: %s (the leader proposes again)", ch->topic, ch->partition,
                     rn_err_name(err));
            retry(c, ch->topic);
        }
    }
}

/* An internal topic (__consumer_offsets, __transaction_state): compacted, its
 * partition count, its replication factor capped at the usable brokers. */
static void internal_topic_spec(rn_cluster_t *c, rn_itopic_t *it, rn_CreateTopicsRequest_CreatableTopic_t *t,
                                rn_arena_t *a) {
    int32_t usable = 0;
    pthread_rwlock_rdlock(&c->img_lock);
    for (int32_t i = 0; i < rn_meta_image_broker_count(c->sm.img); i++)
        if (rn_meta_broker_active(rn_meta_image_broker_at(c->sm.img, i))) usable++;
    pthread_rwlock_unlock(&c->img_lock);
    t->NumPartitions = it->partitions;
    t->ReplicationFactor = rn_itopic_replication_factor(it, usable);
    t->Configs = rn_arena_calloc(a, 2, sizeof(*t->Configs));
    if (!t->Configs) return;
    rn_CreateTopicsRequest_CreatableTopicConfig_init(&t->Configs[0]);
    rn_CreateTopicsRequest_CreatableTopicConfig_init(&t->Configs[1]);
    t->Configs[0].Name = RN_STR_LIT("cleanup.policy");
    t->Configs[0].Value = RN_STR_LIT("compact");
    t->Configs[1].Name = RN_STR_LIT("segment.bytes");
    t->Configs[1].Value = rn_str_dup_arena(a, it->segment_bytes);
    t->Configs_count = 2;
    RN_INFO(it->subsystem, "asking the controller to create %s (%d partitions, replication factor %d)", it->name,
            t->NumPartitions, t->ReplicationFactor);
}

static void send_auto_creates(rn_cluster_t *c, name_item_t *list, rn_arena_t *a) {
    for (name_item_t *it = list; it; it = it->next) {
        rn_CreateTopicsRequest_t rq;
        rn_CreateTopicsRequest_init(&rq);
        rn_CreateTopicsRequest_CreatableTopic_t *t = rn_arena_calloc(a, 1, sizeof(*t));
        void *resp;
        if (!t) return;
        rn_CreateTopicsRequest_CreatableTopic_init(t);
        t->Name = rn_str_dup_arena(a, it->name);
        t->NumPartitions = c->b->cfg.num_partitions; /* this node's, dynamic configs included (as Kafka's brokers) */
        t->ReplicationFactor = -1;
        if (it->itopic) internal_topic_spec(c, it->itopic, t, a);
        rq.Topics = t;
        rq.Topics_count = 1;
        rq.timeoutMs = PROPOSE_TIMEOUT_MS;
        (void)call_controller(c, RN_API_CREATE_TOPICS, 5, (rn_encode_fn)rn_CreateTopicsRequest_encode, &rq, &resp, a);
    }
}

static void *life_main(void *arg) {
    rn_cluster_t *c = arg;
    rn_arena_t arena;
    rn_arena_init(&arena, (size_t)16 << 20);
    int64_t next_heartbeat = 0;
    bool fenced_logged = false;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        isr_change_t *changes = c->isr_changes;
        c->isr_changes = NULL;
        name_item_t *creates = c->auto_creates;
        c->auto_creates = NULL;
        pthread_mutex_unlock(&c->lock);

        int64_t now = rn_clock_mono_ms();
        if (now >= next_heartbeat) {
            next_heartbeat = now + rn_broker_config_long(&c->b->cfg, "broker.heartbeat.interval.ms");
            if (c->broker_epoch < 0) {
                rn_BrokerRegistrationRequest_t rq;
                fill_registration(c, &rq, &arena);
                rn_BrokerRegistrationResponse_t *resp;
                rn_err_t err = call_controller(c, RN_API_BROKER_REGISTRATION, 0,
                                               (rn_encode_fn)rn_BrokerRegistrationRequest_encode, &rq, (void **)&resp,
                                               &arena);
                if (!err) err = resp->ErrorCode;
                if (!err) {
                    c->broker_epoch = resp->BrokerEpoch;
                    RN_INFO("cluster", "node %d registered with the controller (broker epoch %lld)", c->b->cfg.node_id,
                            (long long)c->broker_epoch);
                    next_heartbeat = rn_clock_mono_ms(); /* the heartbeat that unfences it, at once */
                } else if (!atomic_load(&c->ready)) {
                    next_heartbeat = rn_clock_mono_ms() + READY_HEARTBEAT_MS; /* held clients wait */
                }
            } else {
                rn_BrokerHeartbeatRequest_t rq;
                rn_BrokerHeartbeatRequest_init(&rq);
                rq.BrokerId = c->b->cfg.node_id;
                rq.BrokerEpoch = c->broker_epoch;
                rq.CurrentMetadataOffset = (int64_t)rn_roles_applied(c->roles);
                pthread_mutex_lock(&c->lock);
                rq.WantShutDown = c->want_shutdown;
                pthread_mutex_unlock(&c->lock);
                rn_BrokerHeartbeatResponse_t *resp;
                rn_err_t err = call_controller(c, RN_API_BROKER_HEARTBEAT, 0,
                                               (rn_encode_fn)rn_BrokerHeartbeatRequest_encode, &rq, (void **)&resp,
                                               &arena);
                if (!err) err = resp->ErrorCode;
                if (err) RN_DEBUG("cluster", "heartbeat: %s", rn_err_name(err));
                if (err == RN_ERR_STALE_BROKER_EPOCH || err == RN_ERR_BROKER_ID_NOT_REGISTERED) c->broker_epoch = -1;
                if (!err && rq.WantShutDown && resp->ShouldShutDown) {
                    pthread_mutex_lock(&c->lock);
                    c->shutdown_ok = true; /* leaderships moved away: rn_cluster_controlled_shutdown may go on */
                    pthread_cond_broadcast(&c->cond);
                    pthread_mutex_unlock(&c->lock);
                }
                if (rq.WantShutDown) next_heartbeat = rn_clock_mono_ms() + 100;
                if (!err && resp->IsFenced != fenced_logged) {
                    fenced_logged = resp->IsFenced;
                    RN_INFO("cluster", "node %d is %s", c->b->cfg.node_id, resp->IsFenced ? "fenced" : "unfenced");
                }
                if (!err && resp->IsFenced && !atomic_load(&c->ready) && !rq.WantShutDown) /* held clients wait */
                    next_heartbeat = rn_clock_mono_ms() + READY_HEARTBEAT_MS;
            }
            rn_replica_mgr_tick(c->mgr, rn_clock_mono_ms());
        }
        if (c->broker_epoch >= 0) send_isr_changes(c, changes, &arena);
        send_auto_creates(c, creates, &arena);
        while (changes) {
            isr_change_t *n = changes->next;
            free(changes);
            changes = n;
        }
        while (creates) {
            name_item_t *n = creates->next;
            free(creates);
            creates = n;
        }
        rn_arena_reset(&arena);
        pthread_mutex_lock(&c->lock);
        if (!c->stopping && !c->isr_changes && !c->auto_creates) rn_cond_wait_until(&c->cond, &c->lock, next_heartbeat);
    }
    pthread_mutex_unlock(&c->lock);
    rn_arena_reset(&arena);
    return NULL;
}

/* Follows the image as it changes: a thread of its own, so that waiting on
 * the controller (registration, heartbeats) never delays it. */
static void *follow_main(void *arg) {
    rn_cluster_t *c = arg;
    int64_t last_ms = 0;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        if (c->image_seen == c->image_version) {
            rn_cond_wait_until(&c->cond, &c->lock, rn_clock_mono_ms() + 1000);
            bool retries = c->touched.all || c->touched.n > 0;
            if (!retries || rn_clock_mono_ms() < last_ms + 1000) continue; /* retries at most once a second */
        }
        last_ms = rn_clock_mono_ms();
        c->image_seen = c->image_version;
        rn_meta_touched_t touched;
        rn_meta_touched_move(&touched, &c->touched);
        pthread_mutex_unlock(&c->lock);
        follow_image(c, &touched);
        rn_meta_touched_free(&touched);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void queue_create(rn_broker_t *b, const char *name, size_t len, rn_itopic_t *itopic) {
    rn_cluster_t *c = b->cluster;
    if (!c || len >= sizeof(((name_item_t *)0)->name)) return;
    name_item_t *it = calloc(1, sizeof(*it));
    if (!it) return;
    memcpy(it->name, name, len);
    it->itopic = itopic;
    pthread_mutex_lock(&c->lock);
    it->next = c->auto_creates;
    c->auto_creates = it;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void rn_cluster_auto_create(rn_broker_t *b, const char *name, size_t len) { queue_create(b, name, len, NULL); }

void rn_cluster_create_internal(rn_broker_t *b, rn_itopic_t *t) { queue_create(b, t->name, strlen(t->name), t); }

bool rn_cluster_broker_address(rn_broker_t *b, int32_t id, const char *listener, char *host, size_t hostlen,
                               int *port) {
    rn_cluster_t *c = b->cluster;
    if (!c) return false;
    if (!listener) return node_address(c, id, host, hostlen, port);
    bool ok = false;
    pthread_rwlock_rdlock(&c->img_lock);
    const rn_meta_broker_t *br = rn_meta_image_broker(c->sm.img, id);
    const rn_meta_listener_owned_t *l = br ? rn_meta_broker_listener(br, listener) : NULL;
    if (!l && br && br->nlisteners > 0) l = &br->listeners[0];
    if (l) {
        snprintf(host, hostlen, "%s", l->host);
        *port = l->port;
        ok = true;
    }
    pthread_rwlock_unlock(&c->img_lock);
    return ok;
}

/* ---- the active controller (controller thread) ---------------------------------------- */

/* Why a controller request failed: the decision's reason, or the error's name
 * (a proposal that failed has no reason of the decision's). */
static const char *ctl_message(rn_cluster_t *c, rn_err_t err) {
    if (err == RN_ERR_NOT_CONTROLLER) return rn_err_name(err); /* refused or lost: no decision's reason */
    const char *m = rn_ctl_error_message(c->ctl);
    return m && *m ? m : rn_err_name(err);
}

const char *rn__cluster_message(rn_cluster_t *c, rn_err_t err) { return ctl_message(c, err); }
rn_controller_t *rn__cluster_ctl(rn_cluster_t *c) { return c->ctl; }
rn_quorum_t *rn__cluster_quorum(rn_cluster_t *c) { return c->quorum; }
rn_roles_t *rn__cluster_roles(rn_cluster_t *c) { return c->roles; }
const rn_meta_image_t *rn__cluster_image_rdlock(rn_cluster_t *c) {
    pthread_rwlock_rdlock(&c->img_lock);
    return c->sm.img;
}
void rn__cluster_image_unlock(rn_cluster_t *c) { pthread_rwlock_unlock(&c->img_lock); }

/* Proposes the decision's entries in order, each waited for until applied here. */
static rn_err_t commit(rn_cluster_t *c, rn_meta_batch_t *batch) {
    if (batch->count == 0) return RN_OK;
    if (rn_meta_batch_err(batch)) return RN_ERR_UNKNOWN_SERVER_ERROR;
    for (int32_t i = 0; i < rn_meta_batch_entries(batch); i++) {
        const uint8_t *p;
        size_t len;
        rn_meta_batch_entry(batch, i, &p, &len);
        uint64_t index;
        int32_t hint;
        rn_err_t err = rn_quorum_propose(c->quorum, p, len, PROPOSE_TIMEOUT_MS, &index, &hint);
        if (err) RN_DEBUG("cluster", "proposing a metadata entry failed: %s", rn_err_name(err));
        if (err) return err == RN_ERR_NOT_LEADER_OR_FOLLOWER ? RN_ERR_NOT_CONTROLLER : err;
    }
    return RN_OK;
}

rn_err_t rn__cluster_commit(rn_cluster_t *c, rn_meta_batch_t *batch) { return commit(c, batch); }

static void job_register(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_BrokerRegistrationRequest_t *rq = j->rq;
    rn_BrokerRegistrationResponse_t *resp = j->resp;
    rn_meta_reg_t reg;
    memset(&reg, 0, sizeof(reg));
    reg.node_id = rq->BrokerId;
    memcpy(reg.incarnation, rq->IncarnationId, 16);
    reg.rack = rq->Rack;
    for (int32_t i = 0; i < rq->Listeners_count && reg.nlisteners < RN_META_LISTENERS_MAX; i++) {
        rn_meta_listener_t *l = &reg.listeners[reg.nlisteners++];
        l->name = rq->Listeners[i].Name;
        l->host = rq->Listeners[i].Host;
        l->port = rq->Listeners[i].Port;
        l->security_protocol = rq->Listeners[i].SecurityProtocol;
    }
    int64_t epoch = -1;
    rn_err_t err = j->refuse;
    if (!err) {
        pthread_rwlock_rdlock(&c->img_lock);
        err = rn_ctl_register_broker(c->ctl, c->sm.img, &reg, rq->PreviousBrokerEpoch, rn_clock_mono_ms(), batch,
                                     &epoch);
        pthread_rwlock_unlock(&c->img_lock);
        if (!err) err = commit(c, batch);
    }
    resp->ErrorCode = rn_err_wire(err);
    resp->BrokerEpoch = err ? -1 : epoch;
}

static void job_heartbeat(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_BrokerHeartbeatRequest_t *rq = j->rq;
    rn_BrokerHeartbeatResponse_t *resp = j->resp;
    rn_ctl_heartbeat_t hb = {rq->BrokerId, rq->BrokerEpoch, rq->CurrentMetadataOffset, rq->WantFence,
                             rq->WantShutDown};
    rn_ctl_heartbeat_reply_t reply = {0};
    rn_err_t err = j->refuse;
    if (!err) {
        pthread_rwlock_rdlock(&c->img_lock);
        err = rn_ctl_heartbeat(c->ctl, c->sm.img, &hb, rn_clock_mono_ms(), batch, &reply);
        pthread_rwlock_unlock(&c->img_lock);
        if (!err) err = commit(c, batch);
    }
    resp->ErrorCode = rn_err_wire(err);
    resp->IsCaughtUp = reply.is_caught_up;
    resp->IsFenced = err ? true : reply.is_fenced;
    resp->ShouldShutDown = reply.should_shut_down;
}

static void job_alter(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_AlterPartitionRequest_t *rq = j->rq;
    rn_AlterPartitionResponse_t *resp = j->resp;
    rn_arena_t *a = &j->req->arena;
    resp->Topics = j->refuse ? NULL : rn_arena_calloc(a, (size_t)rq->Topics_count + 1, sizeof(*resp->Topics));
    if (!resp->Topics) {
        resp->ErrorCode = j->refuse ? j->refuse : RN_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    resp->Topics_count = rq->Topics_count;
    for (int32_t i = 0; i < rq->Topics_count; i++) {
        rn_AlterPartitionRequest_TopicData_t *td = &rq->Topics[i];
        rn_AlterPartitionResponse_TopicData_t *tr = &resp->Topics[i];
        rn_AlterPartitionResponse_TopicData_init(tr);
        tr->TopicName = td->TopicName;
        memcpy(tr->TopicId, td->TopicId, 16);
        tr->Partitions = rn_arena_calloc(a, (size_t)td->Partitions_count + 1, sizeof(*tr->Partitions));
        if (!tr->Partitions) continue;
        tr->Partitions_count = td->Partitions_count;
        for (int32_t k = 0; k < td->Partitions_count; k++) {
            rn_AlterPartitionRequest_PartitionData_t *pd = &td->Partitions[k];
            rn_AlterPartitionResponse_PartitionData_t *pr = &tr->Partitions[k];
            rn_AlterPartitionResponse_PartitionData_init(pr);
            pr->PartitionIndex = pd->PartitionIndex;
            rn_ctl_alter_partition_t ap;
            memset(&ap, 0, sizeof(ap));
            ap.broker_id = rq->BrokerId;
            ap.broker_epoch = rq->BrokerEpoch;
            ap.partition = pd->PartitionIndex;
            ap.leader_epoch = pd->LeaderEpoch;
            ap.partition_epoch = pd->PartitionEpoch;
            ap.leader_recovery_state = pd->LeaderRecoveryState;
            for (int32_t m = 0; m < pd->NewIsr_count && ap.new_isr.n < RN_META_REPLICAS_MAX; m++) {
                ap.new_isr_epochs[ap.new_isr.n] = -1;
                ap.new_isr.ids[ap.new_isr.n++] = pd->NewIsr[m];
            }
            rn_meta_part_rec_t result;
            rn_meta_batch_reset(batch);
            pthread_rwlock_rdlock(&c->img_lock);
            const rn_meta_topic_t *mt = rn_meta_image_topic_by_name(c->sm.img, td->TopicName);
            if (mt) memcpy(ap.topic_id, mt->id, 16);
            rn_err_t err = mt ? rn_ctl_alter_partition(c->ctl, c->sm.img, &ap, batch, &result)
                              : RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            pthread_rwlock_unlock(&c->img_lock);
            if (!err || err == RN_ERR_NEW_LEADER_ELECTED) {
                rn_err_t cerr = commit(c, batch);
                if (cerr) err = cerr;
            }
            pr->ErrorCode = rn_err_wire(err);
            if (!err) {
                pr->LeaderId = result.leader;
                pr->LeaderEpoch = result.leader_epoch;
                pr->PartitionEpoch = result.partition_epoch;
                pr->Isr = rn_arena_calloc(a, (size_t)result.isr.n + 1, sizeof(int32_t));
                if (pr->Isr) memcpy(pr->Isr, result.isr.ids, (size_t)result.isr.n * sizeof(int32_t));
                pr->Isr_count = pr->Isr ? result.isr.n : 0;
            }
        }
    }
}

/* What the broker knows and the controller does not: legal names, the topic configs
 * and their values (the messages single-node Kafka gives). */
static rn_err_t check_new_topic(const rn_CreateTopicsRequest_CreatableTopic_t *ct, char *msg, size_t msglen) {
    if (ct->Name.len < 0) return RN_ERR_INVALID_TOPIC_EXCEPTION;
    rn_err_t err = rn_topic_name_validate(ct->Name.ptr, (size_t)ct->Name.len, msg, msglen);
    for (int32_t k = 0; !err && k < ct->Configs_count; k++) { /* each entry, a key given twice too */
        rn_str_t key = ct->Configs[k].Name, value = ct->Configs[k].Value;
        rn_config_set_t one;
        rn_config_set_init(&one);
        if (!rn_config_set_put_n(&one, key.ptr ? key.ptr : "", key.len > 0 ? (size_t)key.len : 0, value.ptr,
                                 value.len > 0 ? (size_t)value.len : 0, value.len < 0))
            err = RN_ERR_UNKNOWN_SERVER_ERROR;
        else
            err = rn_topic_configs_validate(&one, msg, msglen);
        rn_config_set_free(&one);
    }
    return err;
}

static void job_create(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_CreateTopicsRequest_t *rq = j->rq;
    rn_CreateTopicsResponse_t *resp = j->resp;
    rn_arena_t *a = &j->req->arena;
    resp->Topics = rn_arena_calloc(a, (size_t)rq->Topics_count + 1, sizeof(*resp->Topics));
    resp->Topics_count = resp->Topics ? rq->Topics_count : 0;
    for (int32_t i = 0; i < resp->Topics_count; i++) {
        rn_CreateTopicsRequest_CreatableTopic_t *ct = &rq->Topics[i];
        rn_CreateTopicsResponse_CreatableTopicResult_t *tr = &resp->Topics[i];
        rn_CreateTopicsResponse_CreatableTopicResult_init(tr);
        tr->Name = ct->Name;
        rn_ctl_kv_t *kv = rn_arena_calloc(a, (size_t)ct->Configs_count + 1, sizeof(*kv));
        rn_meta_ids_t *asg = rn_arena_calloc(a, (size_t)ct->Assignments_count + 1, sizeof(*asg));
        if (!kv || !asg) {
            tr->ErrorCode = RN_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        for (int32_t k = 0; k < ct->Configs_count; k++) kv[k] = (rn_ctl_kv_t){ct->Configs[k].Name, ct->Configs[k].Value};
        for (int32_t k = 0; k < ct->Assignments_count; k++)
            for (int32_t m = 0; m < ct->Assignments[k].BrokerIds_count && asg[k].n < RN_META_REPLICAS_MAX; m++)
                asg[k].ids[asg[k].n++] = ct->Assignments[k].BrokerIds[m];
        rn_ctl_create_topic_t req = {ct->Name, ct->NumPartitions, ct->ReplicationFactor, ct->Assignments_count, asg,
                                     ct->Configs_count, kv, rq->validateOnly};
        rn_ctl_create_topic_result_t res;
        memset(&res, 0, sizeof(res));
        rn_meta_batch_reset(batch);
        rn_err_t err = j->refuse;
        char msg[256] = "";
        for (int32_t k = 0; k < rq->Topics_count && !err; k++) /* the same name twice: Kafka refuses both */
            if (k != i && rn_str_eq(rq->Topics[k].Name, ct->Name)) {
                err = RN_ERR_INVALID_REQUEST;
                snprintf(msg, sizeof(msg), "Create topics request from client contains multiple entries for topic %.*s",
                         ct->Name.len > 0 ? ct->Name.len : 0, ct->Name.ptr);
            }
        if (!err) err = check_new_topic(ct, msg, sizeof(msg));
        if (!err) {
            pthread_rwlock_rdlock(&c->img_lock);
            err = rn_ctl_create_topic(c->ctl, c->sm.img, &req, batch, &res);
            pthread_rwlock_unlock(&c->img_lock);
            if (!err) err = commit(c, batch);
        }
        tr->ErrorCode = rn_err_wire(err);
        if (err) {
            tr->ErrorMessage = rn_str_dup_arena(a, msg[0] ? msg : ctl_message(c, err));
            tr->NumPartitions = -1;
            tr->ReplicationFactor = -1;
        } else {
            memcpy(tr->TopicId, res.topic_id, 16);
            tr->NumPartitions = res.num_partitions;
            tr->ReplicationFactor = res.replication_factor;
        }
        tr->Configs_count = -1;
    }
}

/* What single-node Kafka refuses before the controller looks: deletion switched off
 * (delete.topic.enable, the active controller's), and the internal topics. */
static rn_err_t check_delete(rn_cluster_t *c, rn_str_t name, char *msg, size_t msglen) {
    if (!c->b->cfg.delete_topic_enable) {
        snprintf(msg, msglen, "Topic deletion is disabled.");
        return RN_ERR_TOPIC_DELETION_DISABLED;
    }
    if (rn_str_eq_cstr(name, RN_OFFSETS_TOPIC) || rn_str_eq_cstr(name, RN_TXN_STATE_TOPIC)) {
        snprintf(msg, msglen, "Internal topic %.*s cannot be deleted", name.len, name.ptr);
        return RN_ERR_INVALID_REQUEST;
    }
    return RN_OK;
}

static void job_delete(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_DeleteTopicsRequest_t *rq = j->rq;
    rn_DeleteTopicsResponse_t *resp = j->resp;
    rn_arena_t *a = &j->req->arena;
    bool by_state = j->h.api_version >= 6;
    int32_t n = by_state ? rq->Topics_count : rq->TopicNames_count;
    resp->Responses = rn_arena_calloc(a, (size_t)(n > 0 ? n : 0) + 1, sizeof(*resp->Responses));
    resp->Responses_count = resp->Responses && n > 0 ? n : 0;
    for (int32_t i = 0; i < resp->Responses_count; i++) {
        rn_DeleteTopicsResponse_DeletableTopicResult_t *tr = &resp->Responses[i];
        rn_DeleteTopicsResponse_DeletableTopicResult_init(tr);
        rn_str_t name = by_state ? rq->Topics[i].Name : rq->TopicNames[i];
        uint8_t id[16] = {0};
        if (by_state) memcpy(id, rq->Topics[i].TopicId, 16);
        tr->Name = name;
        memcpy(tr->TopicId, id, 16);
        rn_meta_batch_reset(batch);
        rn_err_t err = j->refuse;
        char msg[320] = "";
        if (!err) {
            pthread_rwlock_rdlock(&c->img_lock);
            const rn_meta_topic_t *mt = name.len >= 0 ? NULL : rn_meta_image_topic_by_id(c->sm.img, id);
            if (mt) tr->Name = rn_str_dup_arena(a, mt->name); /* by id: the answer names it */
            err = check_delete(c, mt ? tr->Name : name, msg, sizeof(msg));
            if (!err) err = rn_ctl_delete_topic(c->ctl, c->sm.img, name, id, batch);
            pthread_rwlock_unlock(&c->img_lock);
            if (!err) err = commit(c, batch);
        }
        tr->ErrorCode = rn_err_wire(err);
        if (err) tr->ErrorMessage = rn_str_dup_arena(a, msg[0] ? msg : ctl_message(c, err));
    }
}

static void job_reassign(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_AlterPartitionReassignmentsRequest_t *rq = j->rq;
    rn_AlterPartitionReassignmentsResponse_t *resp = j->resp;
    rn_arena_t *a = &j->req->arena;
    resp->Responses = rn_arena_calloc(a, (size_t)rq->Topics_count + 1, sizeof(*resp->Responses));
    resp->Responses_count = resp->Responses ? rq->Topics_count : 0;
    for (int32_t i = 0; i < resp->Responses_count; i++) {
        rn_AlterPartitionReassignmentsRequest_ReassignableTopic_t *t = &rq->Topics[i];
        rn_AlterPartitionReassignmentsResponse_ReassignableTopicResponse_t *tr = &resp->Responses[i];
        rn_AlterPartitionReassignmentsResponse_ReassignableTopicResponse_init(tr);
        tr->Name = t->Name;
        tr->Partitions = rn_arena_calloc(a, (size_t)t->Partitions_count + 1, sizeof(*tr->Partitions));
        tr->Partitions_count = tr->Partitions ? t->Partitions_count : 0;
        for (int32_t k = 0; k < tr->Partitions_count; k++) {
            rn_AlterPartitionReassignmentsRequest_ReassignablePartition_t *pp = &t->Partitions[k];
            rn_AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_t *pr = &tr->Partitions[k];
            rn_AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_init(pr);
            pr->PartitionIndex = pp->PartitionIndex;
            rn_meta_ids_t target = {0};
            for (int32_t m = 0; m < pp->Replicas_count && target.n < RN_META_REPLICAS_MAX; m++)
                target.ids[target.n++] = pp->Replicas[m];
            rn_meta_batch_reset(batch);
            rn_err_t err = j->refuse;
            if (!err) {
                pthread_rwlock_rdlock(&c->img_lock);
                err = rn_ctl_reassign(c->ctl, c->sm.img, t->Name, pp->PartitionIndex,
                                      pp->Replicas_count >= 0 ? &target : NULL, batch);
                pthread_rwlock_unlock(&c->img_lock);
                if (!err) err = commit(c, batch);
            }
            pr->ErrorCode = rn_err_wire(err);
            if (err) pr->ErrorMessage = rn_str_dup_arena(a, ctl_message(c, err));
        }
    }
}

/* ElectLeaders for one partition into its result slot. */
static void elect_one(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch, int8_t type, rn_str_t topic, int32_t partition,
                      rn_ElectLeadersResponse_PartitionResult_t *pr) {
    rn_ElectLeadersResponse_PartitionResult_init(pr);
    pr->PartitionId = partition;
    rn_meta_batch_reset(batch);
    rn_err_t err = j->refuse;
    if (!err) {
        pthread_rwlock_rdlock(&c->img_lock);
        err = rn_ctl_elect_leader(c->ctl, c->sm.img, type, topic, partition, batch);
        pthread_rwlock_unlock(&c->img_lock);
        if (!err) err = commit(c, batch);
    }
    pr->ErrorCode = rn_err_wire(err);
    if (err) pr->ErrorMessage = rn_str_dup_arena(&j->req->arena, ctl_message(c, err));
}

static void job_elect(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_ElectLeadersRequest_t *rq = j->rq;
    rn_ElectLeadersResponse_t *resp = j->resp;
    rn_arena_t *a = &j->req->arena;
    int8_t type = j->h.api_version >= 1 ? rq->ElectionType : RN_CTL_ELECT_PREFERRED;
    if (rq->TopicPartitions_count >= 0) {
        resp->ReplicaElectionResults = rn_arena_calloc(a, (size_t)rq->TopicPartitions_count + 1,
                                                       sizeof(*resp->ReplicaElectionResults));
        resp->ReplicaElectionResults_count = resp->ReplicaElectionResults ? rq->TopicPartitions_count : 0;
        for (int32_t i = 0; i < resp->ReplicaElectionResults_count; i++) {
            rn_ElectLeadersRequest_TopicPartitions_t *tp = &rq->TopicPartitions[i];
            rn_ElectLeadersResponse_ReplicaElectionResult_t *r = &resp->ReplicaElectionResults[i];
            rn_ElectLeadersResponse_ReplicaElectionResult_init(r);
            r->Topic = tp->Topic;
            r->PartitionResult = rn_arena_calloc(a, (size_t)tp->Partitions_count + 1, sizeof(*r->PartitionResult));
            r->PartitionResult_count = r->PartitionResult ? tp->Partitions_count : 0;
            for (int32_t k = 0; k < r->PartitionResult_count; k++)
                elect_one(c, j, batch, type, tp->Topic, tp->Partitions[k], &r->PartitionResult[k]);
        }
        return;
    }
    if (j->refuse) { /* null: all partitions — refused as a whole */
        resp->ErrorCode = j->refuse;
        return;
    }
    /* Null: every partition of every topic (snapshot of the names first: elections change the image). */
    pthread_rwlock_rdlock(&c->img_lock);
    int32_t nt = rn_meta_image_topic_count(c->sm.img);
    resp->ReplicaElectionResults = rn_arena_calloc(a, (size_t)nt + 1, sizeof(*resp->ReplicaElectionResults));
    int32_t *counts = rn_arena_calloc(a, (size_t)nt + 1, sizeof(int32_t));
    for (int32_t i = 0; resp->ReplicaElectionResults && counts && i < nt; i++) {
        const rn_meta_topic_t *mt = rn_meta_image_topic_at(c->sm.img, i);
        resp->ReplicaElectionResults[i].Topic = rn_str_dup_arena(a, mt->name);
        counts[i] = mt->npartitions;
    }
    pthread_rwlock_unlock(&c->img_lock);
    resp->ReplicaElectionResults_count = resp->ReplicaElectionResults && counts ? nt : 0;
    for (int32_t i = 0; i < resp->ReplicaElectionResults_count; i++) {
        rn_ElectLeadersResponse_ReplicaElectionResult_t *r = &resp->ReplicaElectionResults[i];
        rn_str_t topic = r->Topic;
        rn_ElectLeadersResponse_ReplicaElectionResult_init(r);
        r->Topic = topic;
        r->PartitionResult = rn_arena_calloc(a, (size_t)counts[i] + 1, sizeof(*r->PartitionResult));
        r->PartitionResult_count = r->PartitionResult ? counts[i] : 0;
        for (int32_t k = 0; k < r->PartitionResult_count; k++)
            elect_one(c, j, batch, type, topic, k, &r->PartitionResult[k]);
    }
}

static void respond_on_loop(void *arg) {
    job_t *j = arg;
    rn_broker_respond(j->b, j->req, &j->h, j->encode, j->resp); /* frees the arena, j with it */
}

static void run_job(rn_cluster_t *c, job_t *j, rn_meta_batch_t *batch) {
    rn_meta_batch_reset(batch);
    bool active = !c->stopping && c->quorum && rn_quorum_is_leader(c->quorum) &&
                  c->ctl_active_term == rn_quorum_term(c->quorum);
    /* Refused: each job fills its response's shape with the error, deciding nothing. */
    j->refuse = active ? RN_OK : RN_ERR_NOT_CONTROLLER;
    switch (j->kind) {
    case JOB_REGISTER: job_register(c, j, batch); break;
    case JOB_HEARTBEAT: job_heartbeat(c, j, batch); break;
    case JOB_ALTER: job_alter(c, j, batch); break;
    case JOB_CREATE: job_create(c, j, batch); break;
    case JOB_DELETE: job_delete(c, j, batch); break;
    case JOB_REASSIGN: job_reassign(c, j, batch); break;
    case JOB_ELECT: job_elect(c, j, batch); break;
    case JOB_CREATE_PARTITIONS: rn__job_create_partitions(c, j, batch); break;
    case JOB_CONFIGS: rn__job_alter_configs(c, j, batch); break;
    default: RN_ASSERT(false);
    }
    rn_loop_post(j->req->loop, respond_on_loop, j);
}

/* Becoming the active controller: first an entry of this term applied here, so
 * the image holds everything committed before; then sessions start afresh. */
/* runnel.meta's topics join the metadata log (rn_cluster_import.c), at each activation
 * until they have: a commit lost with the leadership is tried again by the next. */
static void import_topics(rn_cluster_t *c, rn_meta_batch_t *batch) {
    if (!c->import) return;
    rn_meta_batch_reset(batch);
    pthread_rwlock_rdlock(&c->img_lock);
    int32_t n = rn_import_records(c->import, c->ctl, c->sm.img, c->b->cfg.node_id, batch);
    pthread_rwlock_unlock(&c->img_lock);
    if (n > 0 && commit(c, batch) != RN_OK) return;
    pthread_rwlock_rdlock(&c->img_lock);
    rn_import_done(c->import, c->b, c->sm.img);
    pthread_rwlock_unlock(&c->img_lock);
}

static void maybe_activate(rn_cluster_t *c, rn_meta_batch_t *batch) {
    if (!c->quorum) return; /* process.roles=broker: jobs are answered NOT_CONTROLLER */
    uint64_t term = rn_quorum_term(c->quorum);
    if (!rn_quorum_is_leader(c->quorum) || c->ctl_active_term == term) return;
    rn_meta_batch_reset(batch);
    rn_meta_record_t noop;
    memset(&noop, 0, sizeof(noop));
    noop.type = RN_META_NOOP;
    rn_meta_batch_add(batch, &noop);
    if (commit(c, batch) != RN_OK) return;
    pthread_rwlock_rdlock(&c->img_lock);
    rn_ctl_activate(c->ctl, c->sm.img, rn_clock_mono_ms());
    pthread_rwlock_unlock(&c->img_lock);
    c->ctl_active_term = term;
    RN_INFO("cluster", "node %d is the active controller (term %llu)", c->b->cfg.node_id, (unsigned long long)term);
    import_topics(c, batch);
}

static void *ctl_main(void *arg) {
    rn_cluster_t *c = arg;
    rn_meta_batch_t batch;
    rn_meta_batch_init(&batch, (size_t)64 << 20);
    batch.entry_bytes_max = RN_CLUSTER_ENTRY_BYTES; /* under Raft's max_entry_bytes */
    int64_t next_tick = rn_clock_mono_ms() + CTL_TICK_MS;
    bool rebalance = true;
    rn_config_parse_bool(rn_broker_config_value(&c->b->cfg, "auto.leader.rebalance.enable", NULL), &rebalance);
    int64_t rebalance_ms =
        rebalance ? rn_broker_config_long(&c->b->cfg, "leader.imbalance.check.interval.seconds") * 1000 : 0;
    int64_t next_rebalance = rn_clock_mono_ms() + rebalance_ms;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        job_t *j = c->jobs_head;
        if (j) {
            c->jobs_head = j->next;
            if (!c->jobs_head) c->jobs_tail = NULL;
            c->njobs--;
        } else if (c->closing) {
            /* not at stopping: the network takes requests until it stops, and
             * each must be answered (NOT_CONTROLLER once stopping) */
            break;
        }
        pthread_mutex_unlock(&c->lock);
        if (!c->stopping) maybe_activate(c, &batch);
        if (j) run_job(c, j, &batch);
        int64_t now = rn_clock_mono_ms();
        if (now >= next_tick && !c->stopping) {
            next_tick = now + CTL_TICK_MS;
            if (c->quorum && rn_quorum_is_leader(c->quorum) && c->ctl_active_term == rn_quorum_term(c->quorum)) {
                rn_meta_batch_reset(&batch);
                pthread_rwlock_rdlock(&c->img_lock);
                int32_t fenced = rn_ctl_tick(c->ctl, c->sm.img, now, &batch);
                pthread_rwlock_unlock(&c->img_lock);
                if (fenced > 0) {
                    RN_INFO("cluster", "fencing %d broker(s) whose heartbeats stopped", fenced);
                    (void)commit(c, &batch);
                }
                if (rebalance_ms > 0 && now >= next_rebalance) { /* auto.leader.rebalance.enable */
                    next_rebalance = now + rebalance_ms;
                    rn_meta_batch_reset(&batch);
                    pthread_rwlock_rdlock(&c->img_lock);
                    int32_t moved = rn_ctl_rebalance_leaders(c->ctl, c->sm.img, 1000, &batch);
                    pthread_rwlock_unlock(&c->img_lock);
                    if (moved > 0) {
                        RN_INFO("cluster", "preferred-leader election for %d partition(s)", moved);
                        (void)commit(c, &batch);
                    }
                }
            }
        }
        pthread_mutex_lock(&c->lock);
        if (!c->jobs_head && !c->closing) rn_cond_wait_until(&c->cond, &c->lock, next_tick);
    }
    pthread_mutex_unlock(&c->lock);
    rn_meta_batch_free(&batch);
    return NULL;
}

/* Decodes a controller-bound request and queues it for the controller thread. */
static void submit(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body, int kind) {
    rn_cluster_t *c = b->cluster;
    if (c && rn_roles_forward(c->roles, req, h, body)) return; /* to the active controller, answered from there */
    rn_arena_t *a = &req->arena;
    job_t *j = rn_arena_calloc(a, 1, sizeof(*j));
    void *rq = NULL, *resp = rn_msg_new_any(h->api_key, true, a);
    if (!j || !resp) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    rn_err_t err = rn_msg_decode_any(h->api_key, false, h->api_version, body, a, &rq);
    if (err || !c) {
        rn_broker_bad_request(b, req, h, err ? err : RN_ERR_INVALID_REQUEST);
        return;
    }
    *j = (job_t){.kind = kind, .b = b, .req = req, .h = *h, .rq = rq, .resp = resp};
    switch (h->api_key) {
    case RN_API_BROKER_REGISTRATION: j->encode = (rn_encode_fn)rn_BrokerRegistrationResponse_encode; break;
    case RN_API_BROKER_HEARTBEAT: j->encode = (rn_encode_fn)rn_BrokerHeartbeatResponse_encode; break;
    case RN_API_ALTER_PARTITION: j->encode = (rn_encode_fn)rn_AlterPartitionResponse_encode; break;
    case RN_API_CREATE_TOPICS: j->encode = (rn_encode_fn)rn_CreateTopicsResponse_encode; break;
    case RN_API_ALTER_PARTITION_REASSIGNMENTS:
        j->encode = (rn_encode_fn)rn_AlterPartitionReassignmentsResponse_encode;
        break;
    case RN_API_ELECT_LEADERS: j->encode = (rn_encode_fn)rn_ElectLeadersResponse_encode; break;
    case RN_API_CREATE_PARTITIONS: j->encode = (rn_encode_fn)rn_CreatePartitionsResponse_encode; break;
    case RN_API_ALTER_CONFIGS: j->encode = (rn_encode_fn)rn_AlterConfigsResponse_encode; break;
    case RN_API_INCREMENTAL_ALTER_CONFIGS: j->encode = (rn_encode_fn)rn_IncrementalAlterConfigsResponse_encode; break;
    default: j->encode = (rn_encode_fn)rn_DeleteTopicsResponse_encode; break;
    }
    pthread_mutex_lock(&c->lock);
    if (c->njobs >= 10000) { /* bounded: a flood is refused, not queued */
        pthread_mutex_unlock(&c->lock);
        rn_req_close(req, "controller queue full");
        return;
    }
    if (c->jobs_tail) c->jobs_tail->next = j;
    else c->jobs_head = j;
    c->jobs_tail = j;
    c->njobs++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void rn_h_broker_registration(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_REGISTER);
}
void rn_h_broker_heartbeat(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_HEARTBEAT);
}
void rn_h_alter_partition(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_ALTER);
}
void rn_cluster_create_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_CREATE);
}
void rn_cluster_delete_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_DELETE);
}

void rn_cluster_create_partitions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_CREATE_PARTITIONS);
}
void rn_cluster_alter_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_CONFIGS);
}

void rn_h_alter_partition_reassignments(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_REASSIGN);
}
void rn_h_elect_leaders(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    submit(b, req, h, body, JOB_ELECT);
}

static int32_t *copy_ids_arena(rn_arena_t *a, const rn_meta_ids_t *l) {
    int32_t *v = rn_arena_calloc(a, (size_t)l->n + 1, sizeof(int32_t));
    if (v) memcpy(v, l->ids, (size_t)l->n * sizeof(int32_t));
    return v;
}

/* Answered from this node's image: what is being reassigned now. */
void rn_h_list_partition_reassignments(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_cluster_t *c = b->cluster;
    rn_arena_t *a = &req->arena;
    rn_ListPartitionReassignmentsRequest_t rq;
    rn_err_t err = rn_ListPartitionReassignmentsRequest_decode(body, h->api_version, a, &rq);
    if (err || !c) {
        rn_broker_bad_request(b, req, h, err ? err : RN_ERR_INVALID_REQUEST);
        return;
    }
    rn_ListPartitionReassignmentsResponse_t resp;
    rn_ListPartitionReassignmentsResponse_init(&resp);
    pthread_rwlock_rdlock(&c->img_lock);
    int64_t n = rn_meta_image_reassignments(c->sm.img, NULL, 0);
    rn_meta_tp_t *tps = n > 0 ? rn_arena_calloc(a, (size_t)n, sizeof(*tps)) : NULL;
    if (tps) rn_meta_image_reassignments(c->sm.img, tps, n);
    resp.Topics = rn_arena_calloc(a, (size_t)(tps ? n : 0) + 1, sizeof(*resp.Topics));
    for (int64_t i = 0; tps && resp.Topics && i < n; i++) {
        const rn_meta_topic_t *mt = tps[i].topic;
        bool wanted = rq.Topics_count < 0;
        for (int32_t k = 0; !wanted && k < rq.Topics_count; k++)
            if (rn_str_eq_cstr(rq.Topics[k].Name, mt->name))
                for (int32_t m = 0; !wanted && m < rq.Topics[k].PartitionIndexes_count; m++)
                    wanted = rq.Topics[k].PartitionIndexes[m] == tps[i].partition;
        if (!wanted) continue;
        rn_ListPartitionReassignmentsResponse_OngoingTopicReassignment_t *t =
            resp.Topics_count > 0 && rn_str_eq_cstr(resp.Topics[resp.Topics_count - 1].Name, mt->name)
                ? &resp.Topics[resp.Topics_count - 1]
                : NULL;
        if (!t) {
            t = &resp.Topics[resp.Topics_count++];
            rn_ListPartitionReassignmentsResponse_OngoingTopicReassignment_init(t);
            t->Name = rn_str_dup_arena(a, mt->name);
            t->Partitions = rn_arena_calloc(a, (size_t)mt->npartitions + 1, sizeof(*t->Partitions));
            if (!t->Partitions) continue;
        }
        rn_ListPartitionReassignmentsResponse_OngoingPartitionReassignment_t *pr = &t->Partitions[t->Partitions_count++];
        rn_ListPartitionReassignmentsResponse_OngoingPartitionReassignment_init(pr);
        rn_meta_part_rec_t rec;
        rn_meta_partition_get(mt, tps[i].partition, &rec);
        pr->PartitionIndex = tps[i].partition;
        pr->Replicas = copy_ids_arena(a, &rec.replicas);
        pr->Replicas_count = pr->Replicas ? rec.replicas.n : 0;
        pr->AddingReplicas = copy_ids_arena(a, &rec.adding);
        pr->AddingReplicas_count = pr->AddingReplicas ? rec.adding.n : 0;
        pr->RemovingReplicas = copy_ids_arena(a, &rec.removing);
        pr->RemovingReplicas_count = pr->RemovingReplicas ? rec.removing.n : 0;
    }
    pthread_rwlock_unlock(&c->img_lock);
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_ListPartitionReassignmentsResponse_encode, &resp);
}

void rn_h_runnel_raft(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    if (!b->cluster || !b->cluster->quorum ||
        rn_quorum_deliver_batch(b->cluster->quorum, body->p + body->pos, rn_reader_remaining(body))) {
        rn_broker_bad_request(b, req, h, RN_ERR_MALFORMED);
        return;
    }
    rn_buf_t out;
    rn_buf_init(&out, 64);
    rn_resp_header_encode(&out, h->api_key, h->api_version, h->correlation_id);
    rn_req_respond(req, &out);
    rn_buf_free(&out);
}

void rn_h_runnel_metadata(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_roles_handle_metadata(b->cluster ? b->cluster->roles : NULL, req, h, body);
}

/* ---- Metadata's brokers -------------------------------------------------------------- */

int32_t rn_cluster_brokers(rn_broker_t *b, rn_arena_t *a, const char *listener,
                           rn_MetadataResponse_MetadataResponseBroker_t **out) {
    rn_cluster_t *c = b->cluster;
    *out = NULL;
    pthread_rwlock_rdlock(&c->img_lock);
    int32_t n = rn_meta_image_broker_count(c->sm.img), k = 0;
    rn_MetadataResponse_MetadataResponseBroker_t *v = rn_arena_calloc(a, (size_t)n + 1, sizeof(*v));
    for (int32_t i = 0; v && i < n; i++) {
        const rn_meta_broker_t *br = rn_meta_image_broker_at(c->sm.img, i);
        if (br->fenced || br->nlisteners == 0) continue;
        rn_MetadataResponse_MetadataResponseBroker_init(&v[k]);
        const rn_meta_listener_owned_t *l = listener ? rn_meta_broker_listener(br, listener) : NULL;
        v[k].NodeId = br->id;
        v[k].Host = rn_str_dup_arena(a, l ? l->host : br->listeners[0].host);
        v[k].Port = l ? l->port : br->listeners[0].port;
        v[k].Rack = br->rack ? rn_str_dup_arena(a, br->rack) : RN_STR_NULL;
        k++;
    }
    pthread_rwlock_unlock(&c->img_lock);
    *out = v;
    return k;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

void rn_cluster_stop_begin(rn_broker_t *b);

/* Every node must report the same cluster id: derive it from the voter list
 * they share (22 characters of URL-safe base64, like Kafka's ids). */
static void cluster_id_from_voters(const char *voters, char *out, size_t cap) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;
    for (const char *p = voters; *p; p++) {
        h1 = (h1 ^ (uint8_t)*p) * 0x100000001b3ull;
        h2 = (h2 ^ (uint8_t)*p) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    size_t n = 0;
    for (int i = 0; i < 22 && n + 1 < cap; i++) {
        uint64_t v = i < 11 ? h1 >> (6 * i) : h2 >> (6 * (i - 11));
        out[n++] = b64[v & 63];
    }
    out[n] = 0;
}

/* The image serialized for a broker-only node the feed cannot serve (rn_cluster_roles.c). */
static rn_err_t image_snapshot(void *arg, rn_buf_t *out, uint64_t *index) {
    rn_cluster_t *c = arg;
    pthread_rwlock_wrlock(&c->img_lock);
    int64_t off = rn_meta_image_offset(c->sm.img);
    rn_meta_image_serialize(c->sm.img, out);
    pthread_rwlock_unlock(&c->img_lock);
    *index = off > 0 ? (uint64_t)off : 0;
    return rn_buf_err(out);
}

static bool image_broker_active(void *arg, int32_t id) {
    rn_cluster_t *c = arg;
    pthread_rwlock_rdlock(&c->img_lock);
    bool ok = rn_meta_image_broker_active(c->sm.img, id);
    pthread_rwlock_unlock(&c->img_lock);
    return ok;
}

rn_err_t rn_cluster_init(rn_broker_t *b, char *err, size_t errlen) {
    rn_cluster_roles_t roles;
    if (rn_cluster_roles_parse(&b->cfg, &roles, err, errlen)) return RN_ERR_INVALID_CONFIG;
    rn_cluster_t *c = calloc(1, sizeof(*c));
    if (!c) return RN_ERR_NOMEM;
    c->b = b;
    c->broker_epoch = -1;
    c->ctl_client_node = -1;
    pthread_mutex_init(&c->lock, NULL);
    rn_cond_init_mono(&c->cond);
    pthread_rwlock_init(&c->img_lock, NULL);
    rn_meta_touched_init(&c->touched);
    rn_meta_touched_set_all(&c->touched); /* the first follow covers everything */
    b->cluster = c;
    if (getrandom(c->incarnation, 16, 0) != 16) c->incarnation[0] = (uint8_t)b->cfg.node_id;
    rn_err_t rc = rn_meta_sm_init(&c->sm, NULL);
    if (rc) return rc;
    rn_ctl_config_t cc;
    rn_ctl_config_default(&cc);
    cc.session_timeout_ms = rn_broker_config_long(&b->cfg, "broker.session.timeout.ms");
    cc.num_partitions = b->cfg.num_partitions;
    cc.default_replication_factor = b->cfg.default_replication_factor;
    cc.min_insync_replicas = (int32_t)rn_broker_config_long(&b->cfg, "min.insync.replicas");
    cc.self_broker_id = roles.broker && roles.controller ? b->cfg.node_id : -1;
    c->ctl = rn_ctl_new(&cc, (uint64_t)rn_clock_mono_ns() ^ (uint64_t)b->cfg.node_id);
    if (!c->ctl) return RN_ERR_NOMEM;

    c->roles_cfg = roles;
    c->import = rn_import_take(b);
    if (c->import && !roles.controller)
        RN_WARN("cluster", "a broker-only node cannot import runnel.meta's topics: start it once as a controller "
                "(their data is kept meanwhile)");
    c->qcfg.nvoters = roles.nvoters;
    memcpy(c->qcfg.voters, roles.voters, sizeof(c->qcfg.voters));
    const char *sel = rn_broker_config_value(&b->cfg, "replica.selector.class", NULL);
    c->rack_selector = sel && strstr(sel, "RackAwareReplicaSelector");
    if (roles.nvoters > 0 && !roles.implied) /* else runnel.meta's, or (bootstrap servers only) the controllers' */
        cluster_id_from_voters(rn_broker_config_value(&b->cfg, "controller.quorum.voters", NULL), b->cluster_id,
                               sizeof(b->cluster_id));
    rn_roles_config_t rcfg = {.b = b, .roles = &c->roles_cfg, .apply = sm_apply, .snapshot_load = sm_load,
                              .snapshot = image_snapshot, .broker_active = image_broker_active,
                              .leader_change = leader_changed, .arg = c};
    rc = rn_roles_new(&rcfg, &c->roles);
    if (rc) return rc;
    rn_replica_mgr_config_t mc = {
        .node_id = b->cfg.node_id,
        .lag_max_ms = rn_broker_config_long(&b->cfg, "replica.lag.time.max.ms"),
        .fetch_max_bytes = (int32_t)rn_broker_config_long(&b->cfg, "replica.fetch.response.max.bytes"),
        .fetch_partition_max_bytes = (int32_t)rn_broker_config_long(&b->cfg, "replica.fetch.max.bytes"),
        .fetch_wait_max_ms = (int32_t)rn_broker_config_long(&b->cfg, "replica.fetch.wait.max.ms"),
        .fetch_backoff_ms = rn_broker_config_long(&b->cfg, "replica.fetch.backoff.ms"),
        .node_address = node_address,
        .hw_advanced = hw_advanced,
        .alter_isr = alter_isr,
        .arg = c,
        .logdir = b->logdir,
    };
    rc = rn_replica_mgr_new(&mc, &c->mgr);
    if (rc) return rc;
    rn_logdir_on_sync(b->logdir, on_logdir_sync, b);

    static char dir[4200];
    snprintf(dir, sizeof(dir), "%s/" RN_METADATA_TOPIC "-0", b->cfg.log_dir);
    c->qcfg.node_id = b->cfg.node_id;
    c->qcfg.dir = dir;
    c->qcfg.api_key = RN_API_RUNNEL_RAFT;
    c->qcfg.election_timeout_ms = (uint32_t)rn_broker_config_long(&b->cfg, "controller.quorum.election.timeout.ms");
    c->qcfg.heartbeat_ms = c->qcfg.election_timeout_ms / 10 > 10 ? c->qcfg.election_timeout_ms / 10 : 10;
    c->qcfg.apply = sm_apply;
    c->qcfg.snapshot_take = sm_take;
    c->qcfg.snapshot_load = sm_load;
    c->qcfg.leader_change = leader_changed;
    c->qcfg.arg = c;
    if (!roles.controller) /* process.roles=broker: an observer of the metadata log, not a Raft member */
        return rn_roles_start_observer(c->roles, err, errlen);
    rn_cluster_quorum_join_config(b, &roles, &c->qcfg); /* a controller outside the static voters joins */
    rc = rn_quorum_start(&c->qcfg, &c->quorum);
    if (rc) {
        snprintf(err, errlen, "metadata quorum: cannot start in %s: %s", dir, rn_err_name(rc));
        return rc;
    }
    if (c->qcfg.join) rn_quorum_cluster_id(c->quorum, b->cluster_id, sizeof(b->cluster_id));
    rn_roles_set_quorum(c->roles, c->quorum);
    return RN_OK;
}

rn_err_t rn_cluster_start(rn_broker_t *b) {
    rn_cluster_t *c = b->cluster;
    pthread_t *threads[] = {&c->ctl_thread, &c->follow_thread, &c->life_thread};
    void *(*mains[])(void *) = {ctl_main, follow_main, life_main};
    /* A controller-only node neither registers nor hosts partitions: the controller thread only. */
    c->nthreads = c->roles_cfg.broker ? 3 : 1;
    if (c->roles_cfg.implied && c->roles_cfg.voters[0].port == 0) { /* bound now: its brokers part calls it there */
        const rn_broker_config_t *cfg = &b->cfg;
        c->roles_cfg.voters[0].port = cfg->listeners[cfg->controller_listener >= 0 ? cfg->controller_listener : 0].adv_port;
    }
    atomic_store(&c->ready, !c->roles_cfg.broker); /* nothing to hold for on a controller-only node */
    if (rn_roles_start(c->roles)) return RN_ERR_NOMEM;
    for (int i = 0; i < c->nthreads; i++) {
        if (pthread_create(threads[i], NULL, mains[i], c) == 0) continue;
        rn_cluster_stop_begin(b);
        while (i-- > 0) pthread_join(*threads[i], NULL);
        return RN_ERR_NOMEM;
    }
    c->threads_started = true;
    return RN_OK;
}

void rn_cluster_controlled_shutdown(rn_broker_t *b, int64_t timeout_ms) {
    rn_cluster_t *c = b->cluster;
    if (!c || !c->threads_started) return;
    int64_t deadline = rn_clock_mono_ms() + timeout_ms;
    if (!c->roles_cfg.broker) goto metadata_leadership;
    /* Nobody can grant it without a metadata quorum (the last node of a stopping cluster):
     * after an election timeout without a leader it stops waiting. */
    int64_t patience = rn_broker_config_long(&b->cfg, "controller.quorum.election.timeout.ms"), leaderless_since = -1;
    bool no_quorum = false;
    pthread_mutex_lock(&c->lock);
    c->want_shutdown = true;
    pthread_cond_broadcast(&c->cond);
    for (int64_t now; !c->shutdown_ok && c->broker_epoch >= 0 && (now = rn_clock_mono_ms()) < deadline;) {
        if (rn_roles_leader(c->roles) >= 0) leaderless_since = -1; /* lock-free */
        else if (leaderless_since < 0) leaderless_since = now;
        else if ((no_quorum = now - leaderless_since >= patience)) break;
        rn_cond_wait_until(&c->cond, &c->lock, now + 50 < deadline ? now + 50 : deadline);
    }
    bool ok = c->shutdown_ok;
    pthread_mutex_unlock(&c->lock);
    RN_INFO("cluster", "node %d: controlled shutdown %s", b->cfg.node_id,
            ok ? "granted (no partition led here)" : no_quorum ? "impossible: no metadata quorum" : "not confirmed in time");
metadata_leadership:
    /* The metadata leadership goes too, so the next controller starts at once. */
    if (c->quorum && rn_quorum_voter_count(c->quorum) > 1 && rn_quorum_is_leader(c->quorum)) { /* a lone voter has nobody */
        rn_quorum_transfer_leadership(c->quorum);
        while (rn_quorum_is_leader(c->quorum) && rn_clock_mono_ms() < deadline + 2000) {
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

void rn_cluster_stop_begin(rn_broker_t *b) {
    rn_cluster_t *c = b->cluster;
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true; /* queued controller work is answered NOT_CONTROLLER from now on */
    if (c->ctl_client) rn_client_interrupt(c->ctl_client);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    rn_roles_stop_begin(c->roles);
    if (c->quorum) rn_quorum_stop_changes(c->quorum); /* a voter change under way is answered now */
}

void rn_cluster_free(rn_broker_t *b) {
    rn_cluster_t *c = b->cluster;
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    c->closing = true;
    if (c->ctl_client) rn_client_interrupt(c->ctl_client);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (c->threads_started) {
        pthread_join(c->ctl_thread, NULL);
        if (c->nthreads > 1) {
            pthread_join(c->life_thread, NULL);
            pthread_join(c->follow_thread, NULL);
        }
    }
    rn_quorum_stop(c->quorum); /* its applies reach c->roles */
    rn_roles_free(c->roles);   /* joins the observer (its applies reach the image) and the forwarder */
    if (b->logdir) rn_logdir_on_sync(b->logdir, NULL, NULL);
    rn_replica_mgr_free(c->mgr);
    rn_client_free(c->ctl_client);
    rn_import_free(c->import);
    while (c->isr_changes) {
        isr_change_t *n = c->isr_changes->next;
        free(c->isr_changes);
        c->isr_changes = n;
    }
    while (c->auto_creates) {
        name_item_t *n = c->auto_creates->next;
        free(c->auto_creates);
        c->auto_creates = n;
    }
    rn_ctl_free(c->ctl);
    rn_meta_touched_free(&c->touched);
    rn_meta_sm_free(&c->sm);
    pthread_rwlock_destroy(&c->img_lock);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    b->cluster = NULL;
}
