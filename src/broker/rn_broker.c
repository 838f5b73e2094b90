/*
 * rn_broker.c — broker lifecycle: configuration, storage, metadata, network.
 *
 * Start-up order: resolve the configuration (an invalid value stops here with
 * the key named), open the log dir (recovering partitions in parallel), read
 * runnel.meta (cluster id, producer id block; topics from before the quorum,
 * imported later by src/cluster), start the cluster code (b->cluster: the
 * metadata quorum, a one-voter quorum of itself for a lone node, whose image
 * the topics follow) and the coordinators, then the network threads. Until
 * rn_cluster_init, b->cluster is NULL. Shutdown reverses it: stop the network
 * (no new requests; parked requests are dropped with their connections), then
 * close the log dir cleanly, which syncs everything and writes the
 * clean-shutdown marker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rn_broker.h"
#include "rn_clock.h"
#include "rn_cluster.h"
#include "rn_logging.h"
#include "rn_txn.h"

/* The loop's connections are closed: complete every parked request (its
 * response goes nowhere) so each request's memory is released. */
static void on_net_stop(void *ctx, rn_loop_t *loop) {
    rn_broker_t *b = ctx;
    if (!b->loops) return;
    rn_broker_loop_t *bl = rn_broker_loop_for(b, loop);
    while (bl->waits.next != &bl->waits) {
        rn_wait_t *w = bl->waits.next;
        w->resume(b, w, true, RN_OK);
        if (bl->waits.next == w) rn_broker_unpark(bl, w); /* resume must unpark; never loop forever */
    }
}

static int mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

rn_err_t rn_broker_new(rn_broker_t **out, const rn_config_set_t *explicit_values, char *err, size_t errlen) {
    rn_broker_t *b = calloc(1, sizeof(*b));
    if (!b) return RN_ERR_NOMEM;
    b->started_ms = rn_clock_wall_ms();
    rn_map_init(&b->topics);
    pthread_rwlock_init(&b->topics_lock, NULL);
    pthread_mutex_init(&b->meta_lock, NULL);
    rn_err_t rc = rn_broker_config_load(&b->cfg, explicit_values, err, errlen);
    if (rc) {
        rn_broker_free(b);
        return rc;
    }
    rn_log_set_level((rn_log_level_t)b->cfg.log_level);
    atomic_init(&b->state, RN_STATE_RECOVERING);
    /* Metrics first, so /health shows "recovering" while the log dir opens. */
    rc = rn_metrics_start(b);
    if (rc) {
        snprintf(err, errlen, "metrics.listeners: cannot listen on %s:%d", b->cfg.metrics_host, b->cfg.metrics_port);
        rn_broker_free(b);
        return rc;
    }
    if (mkdir_p(b->cfg.log_dir) != 0) {
        snprintf(err, errlen, "log.dirs: cannot create %s: %s", b->cfg.log_dir, strerror(errno));
        rn_broker_free(b);
        return RN_ERR_IO;
    }
    rn_logdir_config_t lc;
    rn_broker_logdir_config(&b->cfg, &lc);
    int64_t t0 = rn_clock_mono_ns();
    rc = rn_logdir_open(&lc, &b->logdir);
    if (rc) {
        snprintf(err, errlen, "log.dirs: cannot open %s: %s", b->cfg.log_dir, rn_err_name(rc));
        rn_broker_free(b);
        return rc;
    }
    rc = rn_broker_load_metadata(b);
    if (rc) {
        snprintf(err, errlen, "log.dirs: cannot load %s/runnel.meta: %s", b->cfg.log_dir, rn_err_name(rc));
        rn_broker_free(b);
        return rc;
    }
    rn_broker_apply_configs_locked(b); /* dynamic configs from runnel.meta */
    /* The metadata quorum replays the image; topics follow it once serving,
     * and the coordinators load the partitions of their topics this node leads. */
    rc = rn_cluster_init(b, err, errlen);
    if (!rc) rc = rn_group_coordinator_start(b, err, errlen);
    if (!rc) rc = rn_txn_coordinator_start(b, err, errlen);
    if (rc) {
        rn_broker_free(b);
        return rc;
    }
    RN_INFO("broker", "log dir %s open with %zu topic(s) in %.1f ms", b->cfg.log_dir, b->topics.count,
            (double)(rn_clock_mono_ns() - t0) / 1e6);
    *out = b;
    return RN_OK;
}

rn_err_t rn_broker_start(rn_broker_t *b) {
    rn_net_config_t nc = {
        .host = b->cfg.listener_host,
        .port = b->cfg.listener_port,
        .threads = b->cfg.num_network_threads,
        .request_max_bytes = (size_t)b->cfg.socket_request_max_bytes,
        .queued_max_bytes = (size_t)b->cfg.queued_max_request_bytes,
        .inflight_max = b->cfg.queued_max_requests,
        .idle_ms = b->cfg.connections_max_idle_ms,
        .arena_max_bytes = (size_t)b->cfg.socket_request_max_bytes * 2 + (64u << 20),
        .max_connections = b->cfg.max_connections,
    };
    /* The other listeners (e.g. CONTROLLER://) are served by the same threads. */
    int main_listener = b->cfg.client_listener >= 0 ? b->cfg.client_listener : b->cfg.controller_listener;
    b->cfg.listeners[main_listener].net_index = 0;
    for (int i = 0; i < b->cfg.nlisteners && nc.nextra < RN_NET_LISTENERS_MAX - 1; i++) {
        if (i == main_listener) continue;
        b->cfg.listeners[i].net_index = 1 + nc.nextra;
        nc.extra[nc.nextra++] = (rn_net_listen_t){b->cfg.listeners[i].host, b->cfg.listeners[i].port};
    }
    rn_net_handler_t handler = {rn_broker_on_request, b, on_net_stop};
    rn_err_t rc = rn_net_new(&b->net, &nc, handler);
    if (rc) return rc;
    int nloops = rn_net_threads(b->net);
    rn_broker_loop_t *loops = calloc((size_t)nloops, sizeof(*loops));
    if (!loops) return RN_ERR_NOMEM;
    for (int i = 0; i < nloops; i++) {
        rn_broker_loop_t *bl = &loops[i];
        bl->broker = b;
        bl->loop = rn_net_loop(b->net, i);
        bl->waits.next = bl->waits.prev = &bl->waits;
        atomic_init(&bl->nwaits, 0);
        atomic_init(&bl->wake_posted, false);
    }
    /* Published whole: the metadata quorum already applies entries (and wakes loops) now. */
    b->loops = loops;
    atomic_store(&b->nloops, nloops);
    if (b->cfg.advertised_port == 0) b->cfg.advertised_port = rn_net_port(b->net);
    for (int i = 0; i < b->cfg.nlisteners; i++) /* ports asked as 0 are known now */
        if (b->cfg.listeners[i].adv_port == 0)
            b->cfg.listeners[i].adv_port = rn_net_listener_port(b->net, b->cfg.listeners[i].net_index);
    rc = rn_net_start(b->net); /* rn_cluster_init set the log dir's sync callback: it wakes waiters */
    if (!rc) rc = rn_cluster_start(b);
    if (rc) return rc;
    if (rn_cluster_ready(b)) atomic_store(&b->state, RN_STATE_SERVING); /* else at its first unfencing */
    RN_INFO("broker", "node %d speaking the Kafka protocol on %s:%d (advertised %s:%d), cluster id %s", b->cfg.node_id,
            b->cfg.listener_host, rn_net_port(b->net), b->cfg.advertised_host,
            b->cfg.advertised_port ? b->cfg.advertised_port : rn_net_port(b->net), b->cluster_id);
    return RN_OK;
}

int rn_broker_port(const rn_broker_t *b) { return b->net ? rn_net_port(b->net) : -1; }

const rn_listener_t *rn_broker_req_listener(const rn_broker_t *b, const rn_req_t *req) {
    int k = rn_req_listener(req);
    for (int i = 0; i < b->cfg.nlisteners; i++)
        if (b->cfg.listeners[i].net_index == k) return &b->cfg.listeners[i];
    return &b->cfg.listeners[0];
}

void rn_broker_stop(rn_broker_t *b) {
    atomic_store(&b->stopping, true);
    atomic_store(&b->state, RN_STATE_STOPPING);
    rn_cluster_controlled_shutdown(b, rn_broker_config_long(&b->cfg, "controlled.shutdown.timeout.ms"));
    rn_cluster_stop_begin(b);
    if (b->net) rn_net_stop(b->net);
}

void rn_broker_free(rn_broker_t *b) {
    if (!b) return;
    rn_metrics_stop(b);
    if (b->net) rn_net_free(b->net);
    rn_group_coordinator_stop(b); /* their threads use the cluster's replica manager and peers */
    rn_txn_coordinator_stop(b);
    rn_cluster_free(b); /* its follow thread calls into the coordinators */
    rn_txn_coordinator_free(b); /* after the network: no handler runs any more */
    rn_group_coordinator_free(b);
    /* The flusher may still call on_sync (which reads b->loops; every wait is
     * gone, so it posts nothing) until the log dir is closed: loops go last. */
    if (b->logdir) rn_logdir_on_sync(b->logdir, NULL, NULL);
    size_t it = 0;
    void *v;
    while (rn_map_next(&b->topics, &it, NULL, &v)) rn_topic_release(v);
    rn_map_free(&b->topics);
    if (b->logdir) rn_logdir_close(b->logdir);
    free(b->loops);
    rn_broker_config_free(&b->cfg);
    pthread_rwlock_destroy(&b->topics_lock);
    pthread_mutex_destroy(&b->meta_lock);
    free(b);
}
