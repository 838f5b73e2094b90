/*
 * rn_cluster_roles.c — process.roles (see rn_cluster_roles.h): the configuration
 * check, the controllers' metadata feed handler, the broker-only observer and
 * the forwarding of admin requests to the active controller.
 *
 * Threads: the observer (broker-only nodes) loops on one blocking call to a
 * controller at a time; the forwarder (brokers) takes forwarded requests one
 * at a time and posts each answer back to the request's loop. r->lock guards
 * the leader's address, the queue and the flags; no call is made under it.
 */
#include "rn_cluster_roles.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rn_client.h"
#include "rn_cluster.h"
#include "rn_clock.h"
#include "rn_cond.h"
#include "rn_header.h"
#include "rn_logging.h"
#include "rn_meta_feed.h"
#include "rn_msg_gen.h"

#define OBSERVER_WAIT_MS 500          /* a controller holds a fetch this long when nothing is new */
#define OBSERVER_FETCH_BYTES (4 << 20) /* entries per answer (a snapshot is whole) */
#define OBSERVER_BACKOFF_MS 100
#define BOOTSTRAP_WAIT_MS 30000
#define FORWARD_QUEUE_MAX 1000
#define FORWARD_DEADLINE_MS 10000
#define FORWARD_CLIENT_ID "runnel-forward"

/* ---- configuration ------------------------------------------------------------------ */

static const char *roles_value(const rn_broker_config_t *cfg) {
    const char *v = rn_broker_config_value(cfg, "process.roles", NULL);
    return v ? v : "";
}

void rn_cluster_roles_self_voter(const rn_broker_config_t *cfg, rn_quorum_voter_t *out) {
    const rn_listener_t *l = &cfg->listeners[cfg->controller_listener >= 0 ? cfg->controller_listener : 0];
    bool wildcard = !l->host[0] || !strcmp(l->host, "0.0.0.0") || !strcmp(l->host, "::");
    out->id = cfg->node_id;
    snprintf(out->host, sizeof(out->host), "%s", !wildcard ? l->host : !strcmp(l->host, "::") ? "::1" : "127.0.0.1");
    out->port = l->port;
}

/* "host:port,host:port" (IPv6 as [addr]:port). */
static bool parse_bootstrap(const char *s, rn_cluster_roles_t *out) {
    out->nbootstrap = 0;
    for (const char *p = s; p && *p;) {
        while (*p == ' ') p++;
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        while (n && p[n - 1] == ' ') n--;
        char item[300];
        if (n == 0 || n >= sizeof(item) || out->nbootstrap == RN_RAFT_MAX_VOTERS) return false;
        memcpy(item, p, n);
        item[n] = 0;
        char *colon = strrchr(item, ':'), *e;
        if (!colon || colon == item) return false;
        long port = strtol(colon + 1, &e, 10);
        if (*e || port <= 0 || port > 65535) return false;
        char *h = item;
        size_t hl = (size_t)(colon - item);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        rn_quorum_voter_t *v = &out->bootstrap[out->nbootstrap++];
        v->id = -1;
        v->port = (int)port;
        snprintf(v->host, sizeof(v->host), "%.*s", (int)hl, h);
        p = c ? c + 1 : NULL;
    }
    return out->nbootstrap > 0;
}

rn_err_t rn_cluster_roles_parse(const rn_broker_config_t *cfg, rn_cluster_roles_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    const char *roles = roles_value(cfg);
    out->broker = rn_config_list_has(roles, "broker");
    out->controller = rn_config_list_has(roles, "controller");
    int32_t self = cfg->node_id;
    if (!out->broker && !out->controller) {
        snprintf(err, errlen, "process.roles: '%s': broker, controller or both", roles);
        return RN_ERR_INVALID_CONFIG;
    }
    if (self > 0xffff) {
        snprintf(err, errlen, "node.id: %d: cluster nodes have ids below 65536", self);
        return RN_ERR_INVALID_CONFIG;
    }
    const char *voters = rn_broker_config_value(cfg, "controller.quorum.voters", NULL);
    if (voters && *voters) {
        rn_quorum_config_t q;
        memset(&q, 0, sizeof(q));
        if (rn_quorum_parse_voters(voters, &q, err, errlen)) return RN_ERR_INVALID_CONFIG;
        out->nvoters = q.nvoters;
        memcpy(out->voters, q.voters, sizeof(out->voters));
    }
    const char *boot = rn_broker_config_value(cfg, "controller.quorum.bootstrap.servers", NULL);
    if (boot && *boot && !parse_bootstrap(boot, out)) {
        snprintf(err, errlen, "controller.quorum.bootstrap.servers: '%s' is not a list of host:port (at most %d)", boot,
                 RN_RAFT_MAX_VOTERS);
        return RN_ERR_INVALID_CONFIG;
    }
    if (out->broker && out->controller && out->nvoters == 0 && out->nbootstrap == 0) { /* zero-config */
        out->implied = true;
        out->nvoters = 1;
        rn_cluster_roles_self_voter(cfg, &out->voters[0]);
    }
    bool voter = false;
    for (int32_t i = 0; i < out->nvoters; i++) voter |= out->voters[i].id == self;
    const char *ctl_names = rn_broker_config_value(cfg, "controller.listener.names", NULL);
    bool has_ctl_names = ctl_names && *ctl_names;
    if (out->controller) {
        if (out->nvoters == 0 && out->nbootstrap == 0) {
            snprintf(err, errlen, "process.roles=%s: controller.quorum.voters must list the voters (id@host:port of "
                     "their controller listeners), or controller.quorum.bootstrap.servers name the quorum this "
                     "controller joins", roles);
            return RN_ERR_INVALID_CONFIG;
        }
        out->join = !voter; /* it asks the quorum to take it in as a learner; AddRaftVoter promotes it */
        if (has_ctl_names && cfg->controller_listener < 0) {
            snprintf(err, errlen, "controller.listener.names: '%s' names none of listeners (%s)", ctl_names,
                     rn_broker_config_value(cfg, "listeners", NULL));
            return RN_ERR_INVALID_CONFIG;
        }
        if (!out->broker) {
            if (!has_ctl_names) {
                snprintf(err, errlen, "process.roles=controller: controller.listener.names must name the listener "
                         "controller traffic uses (e.g. CONTROLLER, with listeners=CONTROLLER://host:port)");
                return RN_ERR_INVALID_CONFIG;
            }
            if (cfg->client_listener >= 0) {
                snprintf(err, errlen, "process.roles=controller: listener %s is not in controller.listener.names; a "
                         "controller-only node serves no clients", cfg->listeners[cfg->client_listener].name);
                return RN_ERR_INVALID_CONFIG;
            }
        }
    } else {
        if (out->nvoters == 0 && out->nbootstrap == 0) {
            snprintf(err, errlen, "process.roles=broker: set controller.quorum.voters or "
                     "controller.quorum.bootstrap.servers (where the controllers are)");
            return RN_ERR_INVALID_CONFIG;
        }
        if (voter) {
            snprintf(err, errlen, "controller.quorum.voters: node.id %d is a voter but process.roles=broker (give it "
                     "the controller role, or another node.id)", self);
            return RN_ERR_INVALID_CONFIG;
        }
        if (cfg->controller_listener >= 0) {
            snprintf(err, errlen, "listeners: %s is a controller listener (controller.listener.names) but "
                     "process.roles=broker runs no controller", cfg->listeners[cfg->controller_listener].name);
            return RN_ERR_INVALID_CONFIG;
        }
    }
    if (out->broker && cfg->client_listener < 0) {
        snprintf(err, errlen, "listeners: a broker needs a listener for clients besides controller.listener.names");
        return RN_ERR_INVALID_CONFIG;
    }
    return RN_OK;
}

/* ---- runtime -------------------------------------------------------------------------- */

typedef struct fwd {
    struct fwd *next;
    rn_roles_t *r;
    rn_req_t *req;
    int16_t api_key, api_version;
    int32_t correlation_id;
    rn_buf_t resp;
    bool ok;
    size_t len;
    uint8_t body[];
} fwd_t;

struct rn_roles {
    rn_roles_config_t cfg;
    rn_quorum_t *quorum;
    rn_meta_feed_t *feed; /* controllers */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    /* The observer (broker-only). */
    pthread_t obs_thread;
    bool obs_started;
    rn_client_t *obs_client;
    atomic_int leader;
    _Atomic uint64_t applied;
    char leader_host[256];
    int leader_port;
    bool have_cluster_id;
    /* Forwarding (brokers). */
    pthread_t fwd_thread;
    bool fwd_started;
    fwd_t *fwd_head, *fwd_tail;
    int32_t nfwd;
    rn_client_t *fwd_client;
    int32_t fwd_client_node;
};

rn_err_t rn_roles_new(const rn_roles_config_t *cfg, rn_roles_t **out) {
    rn_roles_t *r = calloc(1, sizeof(*r));
    if (!r) return RN_ERR_NOMEM;
    r->cfg = *cfg;
    pthread_mutex_init(&r->lock, NULL);
    rn_cond_init_mono(&r->cond);
    atomic_init(&r->leader, -1);
    r->fwd_client_node = -1;
    if (cfg->roles->controller &&
        !(r->feed = rn_meta_feed_new((size_t)rn_broker_config_long(&cfg->b->cfg, "metadata.feed.max.bytes")))) {
        rn_roles_free(r);
        return RN_ERR_NOMEM;
    }
    *out = r;
    return RN_OK;
}

void rn_roles_set_quorum(rn_roles_t *r, rn_quorum_t *q) { r->quorum = q; }

void rn_roles_on_apply(rn_roles_t *r, uint64_t index, const uint8_t *data, size_t len) {
    if (!r) return;
    if (r->feed) {
        rn_meta_feed_append(r->feed, index, data, len);
        rn_broker_wake_all(r->cfg.b); /* parked metadata fetches answer */
    }
}

void rn_roles_on_load(rn_roles_t *r, uint64_t index) {
    if (!r) return;
    if (r->feed) {
        rn_meta_feed_reset(r->feed, index);
        rn_broker_wake_all(r->cfg.b);
    }
}

int32_t rn_roles_leader(rn_roles_t *r) {
    if (r->quorum) return rn_quorum_leader(r->quorum);
    return atomic_load(&r->leader);
}

uint64_t rn_roles_applied(rn_roles_t *r) {
    if (r->quorum) return rn_quorum_applied(r->quorum);
    return atomic_load(&r->applied);
}

int32_t rn_roles_controller_id(rn_roles_t *r) {
    int32_t leader = rn_roles_leader(r);
    if (leader >= 0 && r->cfg.broker_active(r->cfg.arg, leader)) return leader;
    return r->cfg.roles->broker ? r->cfg.b->cfg.node_id : leader;
}

bool rn_roles_controller_address(rn_roles_t *r, int32_t id, char *host, size_t hostlen, int *port) {
    const rn_cluster_roles_t *ro = r->cfg.roles;
    if (r->quorum && rn_quorum_address(r->quorum, id, host, hostlen, port)) return true; /* the log's, first */
    for (int32_t i = 0; i < ro->nvoters; i++) {
        if (ro->voters[i].id != id) continue;
        snprintf(host, hostlen, "%s", ro->voters[i].host);
        *port = ro->voters[i].port;
        return true;
    }
    bool ok = false;
    pthread_mutex_lock(&r->lock);
    if (!r->quorum && id >= 0 && id == atomic_load(&r->leader) && r->leader_host[0]) {
        snprintf(host, hostlen, "%s", r->leader_host);
        *port = r->leader_port;
        ok = true;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

/* Sleeps up to ms unless stopping (r->lock not held). */
static void nap(rn_roles_t *r, int64_t ms) {
    int64_t until = rn_clock_mono_ms() + ms;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping && rn_clock_mono_ms() < until) rn_cond_wait_until(&r->cond, &r->lock, until);
    pthread_mutex_unlock(&r->lock);
}

/* ---- the controllers' side of the feed --------------------------------------------------- */

typedef struct {
    rn_wait_t w; /* first: the wait is the context */
    rn_roles_t *r;
    rn_req_t *req;
    rn_req_header_t h;
    rn_meta_feed_req_t rq;
} meta_wait_t;

static void metadata_respond(rn_roles_t *r, rn_req_t *req, const rn_req_header_t *h, const rn_meta_feed_req_t *rq) {
    rn_buf_t out;
    rn_buf_init(&out, (size_t)1 << 30);
    rn_resp_header_encode(&out, h->api_key, h->api_version, h->correlation_id);
    int32_t leader = r && r->quorum ? rn_quorum_leader(r->quorum) : -1;
    char host[256] = "";
    int port = 0;
    if (leader >= 0 && !rn_roles_controller_address(r, leader, host, sizeof(host), &port)) host[0] = 0;
    const char *cluster_id = r ? r->cfg.b->cluster_id : "";
    size_t max_bytes = rq->max_bytes < (64 << 10) ? (64 << 10) : rq->max_bytes > (16 << 20) ? (16 << 20) : (size_t)rq->max_bytes;
    if (!r || !r->quorum || !r->feed) {
        rn_meta_feed_resp_header_encode(&out, RN_ERR_NOT_CONTROLLER, leader, host, port, cluster_id,
                                        RN_META_FEED_KIND_ENTRIES);
    } else if (rn_meta_feed_covers(r->feed, (uint64_t)rq->from)) {
        size_t mark = out.len;
        rn_meta_feed_resp_header_encode(&out, 0, leader, host, port, cluster_id, RN_META_FEED_KIND_ENTRIES);
        if (!rn_meta_feed_read(r->feed, (uint64_t)rq->from, max_bytes, &out)) { /* evicted meanwhile: next time */
            out.len = mark;
            rn_meta_feed_resp_header_encode(&out, 0, leader, host, port, cluster_id, RN_META_FEED_KIND_ENTRIES);
            rn_buf_put_u32(&out, 0);
        }
    } else {
        rn_buf_t snap;
        rn_buf_init(&snap, (size_t)512 << 20);
        uint64_t index = 0;
        rn_err_t err = r->cfg.snapshot(r->cfg.arg, &snap, &index);
        if (err) {
            rn_meta_feed_resp_header_encode(&out, rn_err_wire(err), leader, host, port, cluster_id,
                                            RN_META_FEED_KIND_ENTRIES);
        } else {
            rn_meta_feed_resp_header_encode(&out, 0, leader, host, port, cluster_id, RN_META_FEED_KIND_SNAPSHOT);
            rn_buf_put_i64(&out, (int64_t)index);
            rn_buf_put_u32(&out, (uint32_t)snap.len);
            rn_buf_put(&out, snap.data, snap.len);
        }
        rn_buf_free(&snap);
    }
    if (rn_buf_err(&out)) {
        rn_buf_free(&out);
        rn_req_close(req, "metadata feed response could not be encoded");
        return;
    }
    rn_req_respond(req, &out);
    rn_buf_free(&out);
}

static bool nothing_new(rn_roles_t *r, const rn_meta_feed_req_t *rq) {
    return rn_meta_feed_covers(r->feed, (uint64_t)rq->from) && rn_meta_feed_last(r->feed) <= (uint64_t)rq->from;
}

static void metadata_resume(rn_broker_t *b, rn_wait_t *w, bool timed_out, rn_err_t err) {
    meta_wait_t *m = (meta_wait_t *)w;
    if (!timed_out && !err && nothing_new(m->r, &m->rq) && !atomic_load(&b->stopping)) return; /* stay parked */
    rn_broker_unpark(w->ctx, w);
    metadata_respond(m->r, m->req, &m->h, &m->rq);
}

void rn_roles_handle_metadata(rn_roles_t *r, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_meta_feed_req_t rq;
    if (rn_meta_feed_req_decode(body->p + body->pos, rn_reader_remaining(body), &rq)) {
        rn_req_close(req, "malformed metadata feed request");
        return;
    }
    if (r && r->quorum && r->feed && rq.max_wait_ms > 0 && nothing_new(r, &rq)) {
        meta_wait_t *m = rn_arena_calloc(&req->arena, 1, sizeof(*m));
        if (m) {
            m->r = r;
            m->req = req;
            m->h = *h;
            m->rq = rq;
            m->w.wants_data = true;
            m->w.resume = metadata_resume;
            rn_broker_park(rn_broker_loop_for(r->cfg.b, req->loop), &m->w, rq.max_wait_ms > 5000 ? 5000 : rq.max_wait_ms);
            return;
        }
    }
    metadata_respond(r, req, h, &rq);
}

/* ---- the observer (broker-only nodes) ----------------------------------------------------- */

/* Where to ask next: the leader if known, else the voters and bootstrap servers in turn. */
static bool observer_target(rn_roles_t *r, uint32_t turn, char *host, size_t hostlen, int *port) {
    pthread_mutex_lock(&r->lock);
    bool leader_known = atomic_load(&r->leader) >= 0 && r->leader_host[0];
    if (leader_known) {
        snprintf(host, hostlen, "%s", r->leader_host);
        *port = r->leader_port;
    }
    pthread_mutex_unlock(&r->lock);
    if (leader_known) return true;
    const rn_cluster_roles_t *ro = r->cfg.roles;
    int32_t n = ro->nvoters + ro->nbootstrap;
    if (n == 0) return false;
    int32_t i = (int32_t)(turn % (uint32_t)n);
    const rn_quorum_voter_t *v = i < ro->nvoters ? &ro->voters[i] : &ro->bootstrap[i - ro->nvoters];
    snprintf(host, hostlen, "%s", v->host);
    *port = v->port;
    return true;
}

static void forget_leader(rn_roles_t *r) {
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->leader, -1);
    r->leader_host[0] = 0;
    pthread_mutex_unlock(&r->lock);
}

/* One answer: the leader's address, the cluster id, then the snapshot or entries. */
static rn_err_t observer_take(rn_roles_t *r, const rn_meta_feed_resp_t *resp) {
    pthread_mutex_lock(&r->lock);
    int32_t before = atomic_load(&r->leader);
    if (resp->leader_id >= 0 && resp->leader_host.len > 0 && resp->leader_host.len < (int32_t)sizeof(r->leader_host)) {
        memcpy(r->leader_host, resp->leader_host.ptr, (size_t)resp->leader_host.len);
        r->leader_host[resp->leader_host.len] = 0;
        r->leader_port = resp->leader_port;
        atomic_store(&r->leader, resp->leader_id);
    } else {
        atomic_store(&r->leader, -1);
        r->leader_host[0] = 0;
    }
    if (!r->have_cluster_id && resp->cluster_id.len > 0 && resp->cluster_id.len < (int32_t)sizeof(r->cfg.b->cluster_id)) {
        memcpy(r->cfg.b->cluster_id, resp->cluster_id.ptr, (size_t)resp->cluster_id.len);
        r->cfg.b->cluster_id[resp->cluster_id.len] = 0;
        r->have_cluster_id = true;
        pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    if (before != resp->leader_id && resp->leader_id >= 0) {
        RN_INFO("cluster", "node %d: the active controller is node %d (%.*s:%d)", r->cfg.b->cfg.node_id,
                resp->leader_id, (int)resp->leader_host.len, resp->leader_host.ptr, resp->leader_port);
        if (r->cfg.leader_change) r->cfg.leader_change(r->cfg.arg, resp->leader_id, 0);
    }
    if (resp->error) return (rn_err_t)resp->error;
    if (resp->kind == RN_META_FEED_KIND_SNAPSHOT) {
        rn_err_t err = r->cfg.snapshot_load(r->cfg.arg, resp->snapshot_index, resp->snapshot, resp->snapshot_len);
        if (err) {
            RN_WARN("cluster", "node %d: metadata snapshot at %llu refused: %s", r->cfg.b->cfg.node_id,
                    (unsigned long long)resp->snapshot_index, rn_err_name(err));
            return err;
        }
        RN_INFO("cluster", "node %d: metadata snapshot at offset %llu loaded", r->cfg.b->cfg.node_id,
                (unsigned long long)resp->snapshot_index);
        atomic_store(&r->applied, resp->snapshot_index);
        return RN_OK;
    }
    size_t pos = 0;
    uint64_t index;
    const uint8_t *data;
    size_t len;
    while (rn_meta_feed_resp_next(resp, &pos, &index, &data, &len)) {
        r->cfg.apply(r->cfg.arg, index, data, len);
        atomic_store(&r->applied, index);
    }
    return RN_OK;
}

static void *observer_main(void *arg) {
    rn_roles_t *r = arg;
    rn_buf_t body, out;
    rn_buf_init(&body, 64);
    rn_buf_init(&out, (size_t)600 << 20);
    uint32_t turn = 0;
    char cur_host[256] = "";
    int cur_port = -1;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop) break;
        char host[256];
        int port;
        if (!observer_target(r, turn, host, sizeof(host), &port)) break;
        if (!r->obs_client || port != cur_port || strcmp(host, cur_host)) {
            rn_client_config_t cc = {.host = host, .port = port, .client_id = "runnel-observer",
                                     .timeout_ms = OBSERVER_WAIT_MS + 5000, .max_response_bytes = (size_t)600 << 20};
            rn_client_t *cl;
            if (rn_client_new(&cc, &cl) != RN_OK) {
                nap(r, OBSERVER_BACKOFF_MS);
                continue;
            }
            pthread_mutex_lock(&r->lock);
            rn_client_t *old = r->obs_client;
            r->obs_client = cl;
            if (r->stopping) rn_client_interrupt(cl);
            pthread_mutex_unlock(&r->lock);
            rn_client_free(old);
            snprintf(cur_host, sizeof(cur_host), "%s", host);
            cur_port = port;
        }
        uint64_t from = atomic_load(&r->applied);
        rn_meta_feed_req_t rq = {r->cfg.b->cfg.node_id, (int64_t)from, OBSERVER_WAIT_MS, OBSERVER_FETCH_BYTES};
        rn_buf_reset(&body);
        rn_buf_reset(&out);
        rn_meta_feed_req_encode(&body, &rq);
        rn_err_t err = rn_client_call_timeout(r->obs_client, RN_API_RUNNEL_METADATA, 0, &body, &out,
                                              OBSERVER_WAIT_MS + 5000);
        rn_meta_feed_resp_t resp;
        if (!err) err = rn_meta_feed_resp_decode(out.data, out.len, from, &resp);
        if (!err) err = observer_take(r, &resp);
        if (err) {
            RN_DEBUG("cluster", "node %d: reading the metadata log from %s:%d: %s", r->cfg.b->cfg.node_id, cur_host,
                     cur_port, rn_err_name(err));
            forget_leader(r);
            turn++;
            nap(r, OBSERVER_BACKOFF_MS);
        }
    }
    rn_buf_free(&body);
    rn_buf_free(&out);
    return NULL;
}

rn_err_t rn_roles_start_observer(rn_roles_t *r, char *err, size_t errlen) {
    if (r->quorum || r->obs_started) return RN_OK;
    if (pthread_create(&r->obs_thread, NULL, observer_main, r) != 0) return RN_ERR_NOMEM;
    r->obs_started = true;
    if (r->cfg.roles->nvoters > 0) return RN_OK; /* the cluster id comes from the voters, as on the controllers */
    int64_t deadline = rn_clock_mono_ms() + BOOTSTRAP_WAIT_MS;
    pthread_mutex_lock(&r->lock);
    while (!r->have_cluster_id && rn_clock_mono_ms() < deadline) rn_cond_wait_until(&r->cond, &r->lock, deadline);
    bool ok = r->have_cluster_id;
    pthread_mutex_unlock(&r->lock);
    if (!ok) {
        snprintf(err, errlen, "controller.quorum.bootstrap.servers: no controller answered within %d s",
                 BOOTSTRAP_WAIT_MS / 1000);
        return RN_ERR_INVALID_CONFIG;
    }
    return RN_OK;
}

/* ---- forwarding (brokers) --------------------------------------------------------------- */

static void forward_done_on_loop(void *arg) {
    fwd_t *f = arg;
    if (f->ok) {
        rn_buf_t out;
        rn_buf_init(&out, (size_t)1 << 30);
        rn_resp_header_encode(&out, f->api_key, f->api_version, f->correlation_id);
        rn_buf_put(&out, f->resp.data, f->resp.len);
        rn_req_respond(f->req, &out);
        rn_buf_free(&out);
    } else {
        rn_req_close(f->req, "the active controller could not be reached to forward the request");
    }
    rn_buf_free(&f->resp);
    free(f);
}

static rn_client_t *forward_client(rn_roles_t *r, int32_t leader) {
    if (r->fwd_client && r->fwd_client_node == leader) return r->fwd_client;
    char host[256];
    int port;
    if (!rn_roles_controller_address(r, leader, host, sizeof(host), &port)) return NULL;
    rn_client_config_t cc = {.host = host, .port = port, .client_id = FORWARD_CLIENT_ID, .timeout_ms = 15000};
    rn_client_t *cl;
    if (rn_client_new(&cc, &cl) != RN_OK) return NULL;
    pthread_mutex_lock(&r->lock);
    rn_client_t *old = r->fwd_client;
    r->fwd_client = cl;
    r->fwd_client_node = leader;
    if (r->stopping) rn_client_interrupt(cl);
    pthread_mutex_unlock(&r->lock);
    rn_client_free(old);
    return cl;
}

static void forward_one(rn_roles_t *r, fwd_t *f) {
    int64_t deadline = rn_clock_mono_ms() + FORWARD_DEADLINE_MS;
    rn_buf_t body;
    rn_buf_init(&body, f->len + 1);
    rn_buf_put(&body, f->body, f->len);
    while (!f->ok && rn_clock_mono_ms() < deadline) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop) break;
        int32_t leader = rn_roles_leader(r);
        rn_client_t *cl = leader >= 0 ? forward_client(r, leader) : NULL;
        if (cl) {
            rn_buf_reset(&f->resp);
            rn_err_t err = rn_client_call(cl, f->api_key, f->api_version, &body, &f->resp);
            if (!err) {
                f->ok = true;
                break;
            }
            RN_DEBUG("cluster", "forwarding api %d to node %d: %s", f->api_key, leader, rn_err_name(err));
        }
        nap(r, OBSERVER_BACKOFF_MS);
    }
    rn_buf_free(&body);
    rn_loop_post(f->req->loop, forward_done_on_loop, f);
}

static void *forward_main(void *arg) {
    rn_roles_t *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        fwd_t *f = r->fwd_head;
        if (f) {
            r->fwd_head = f->next;
            if (!r->fwd_head) r->fwd_tail = NULL;
            r->nfwd--;
        } else if (r->stopping) {
            break;
        } else {
            rn_cond_wait_until(&r->cond, &r->lock, rn_clock_mono_ms() + 1000);
            continue;
        }
        pthread_mutex_unlock(&r->lock);
        forward_one(r, f); /* after stopping: fails at once, the connection is closed */
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

bool rn_cluster_request_forwarded(const rn_req_header_t *h) { return rn_str_eq_cstr(h->client_id, FORWARD_CLIENT_ID); }

bool rn_roles_forward(rn_roles_t *r, rn_req_t *req, const rn_req_header_t *h, const rn_reader_t *body) {
    if (!r || !r->cfg.roles->broker || !r->fwd_started) return false;
    if (h->api_key == RN_API_BROKER_REGISTRATION || h->api_key == RN_API_BROKER_HEARTBEAT ||
        h->api_key == RN_API_ALTER_PARTITION)
        return false; /* brokers' own calls: NOT_CONTROLLER sends them to the right node */
    if (r->quorum && rn_quorum_is_leader(r->quorum)) return false;
    if (rn_cluster_request_forwarded(h)) return false; /* forwarded once already */
    size_t len = rn_reader_remaining(body);
    fwd_t *f = malloc(sizeof(*f) + len);
    if (!f) return false;
    memset(f, 0, sizeof(*f));
    f->r = r;
    f->req = req;
    f->api_key = h->api_key;
    f->api_version = h->api_version;
    f->correlation_id = h->correlation_id;
    f->len = len;
    memcpy(f->body, body->p + body->pos, len);
    rn_buf_init(&f->resp, (size_t)100 << 20);
    pthread_mutex_lock(&r->lock);
    if (r->stopping || r->nfwd >= FORWARD_QUEUE_MAX) {
        pthread_mutex_unlock(&r->lock);
        rn_buf_free(&f->resp);
        free(f);
        rn_req_close(req, "forwarding queue full");
        return true;
    }
    if (r->fwd_tail) r->fwd_tail->next = f;
    else r->fwd_head = f;
    r->fwd_tail = f;
    r->nfwd++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return true;
}

rn_err_t rn_roles_start(rn_roles_t *r) {
    if (!r->cfg.roles->broker) return RN_OK;
    if (pthread_create(&r->fwd_thread, NULL, forward_main, r) != 0) return RN_ERR_NOMEM;
    r->fwd_started = true;
    return RN_OK;
}

void rn_roles_stop_begin(rn_roles_t *r) {
    if (!r) return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    if (r->obs_client) rn_client_interrupt(r->obs_client);
    if (r->fwd_client) rn_client_interrupt(r->fwd_client);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void rn_roles_free(rn_roles_t *r) {
    if (!r) return;
    rn_roles_stop_begin(r);
    if (r->obs_started) pthread_join(r->obs_thread, NULL);
    if (r->fwd_started) pthread_join(r->fwd_thread, NULL);
    rn_client_free(r->obs_client);
    rn_client_free(r->fwd_client);
    while (r->fwd_head) { /* never started or stopped early: the network is gone, nobody answers */
        fwd_t *f = r->fwd_head;
        r->fwd_head = f->next;
        rn_buf_free(&f->resp);
        free(f);
    }
    rn_meta_feed_free(r->feed);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
