/*
 * rn_cluster_import.c — a single-node data directory joins the metadata log.
 *
 * Before the metadata quorum ran every node, a lone broker kept its topics in
 * runnel.meta. Such a directory opened by a quorum node (the default one-voter
 * quorum, after an upgrade) still has them: rn_broker_load_metadata read them
 * into the registry. At init they move here (out of the registry, so nothing
 * follows or drops them), their partition directories are kept from the orphan
 * sweep, and the first time this node is the active controller it writes them
 * into the metadata log under their own ids (rn_ctl_import_topic: the partitions
 * on this node alone, led by it once unfenced). Then runnel.meta is written
 * again without them. A crash between the two is harmless: a topic already in
 * the image under the same id counts as imported.
 *
 * The dynamic broker configs runnel.meta kept (bconfig: this node's, dconfig:
 * the cluster default) go the same way: taken out of the node's configuration
 * at init (it follows the image's from then on), written at activation as
 * Config records of broker "<node.id>" and "" for each key the image does not
 * have yet (a value set in the log meanwhile wins), and done once the image has
 * every key.
 */
#include "rn_cluster_import.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_logging.h"

typedef struct {
    char name[256];
    uint8_t id[16];
    int32_t npartitions;
    rn_config_set_t configs;
} legacy_topic_t;

struct rn_import {
    pthread_mutex_t lock;
    legacy_topic_t *v;
    int32_t n;
    rn_config_set_t per_broker, defaults; /* bconfig, dconfig lines; emptied once imported */
};

/* The broker resource of a legacy set: this node's id, or "" for the defaults. */
static const char *config_owner(const rn_import_t *im, const rn_config_set_t *set, int32_t node, char *buf,
                                size_t cap) {
    if (set == &im->defaults) return "";
    snprintf(buf, cap, "%d", node);
    return buf;
}

/* Every key of both sets in the image (img read-locked)? */
static bool configs_in_image(const rn_import_t *im, const rn_meta_image_t *img, int32_t node) {
    const rn_config_set_t *sets[2] = {&im->per_broker, &im->defaults};
    char id[16];
    for (int s = 0; s < 2; s++)
        for (size_t k = 0; k < sets[s]->n; k++)
            if (!rn_meta_image_config(img, RN_META_RESOURCE_BROKER, config_owner(im, sets[s], node, id, sizeof(id)),
                                      sets[s]->v[k].name))
                return false;
    return true;
}

rn_import_t *rn_import_take(rn_broker_t *b) {
    pthread_rwlock_wrlock(&b->topics_lock);
    size_t n = b->topics.count, nconfigs = b->cfg.dynamic.n + b->cfg.dynamic_default.n;
    rn_import_t *im = n || nconfigs ? calloc(1, sizeof(*im)) : NULL;
    if (im) im->v = calloc(n + 1, sizeof(*im->v));
    if (im && !im->v) {
        free(im);
        im = NULL;
    }
    if (!im) {
        pthread_rwlock_unlock(&b->topics_lock);
        if (n || nconfigs)
            RN_ERROR("cluster", "out of memory taking runnel.meta's %zu topic(s) and %zu config(s) for import", n,
                     nconfigs);
        return NULL;
    }
    pthread_mutex_init(&im->lock, NULL);
    /* Moved: from now on the node's dynamic configs are the image's (rn__follow_broker_configs). */
    im->per_broker = b->cfg.dynamic;
    im->defaults = b->cfg.dynamic_default;
    rn_config_set_init(&b->cfg.dynamic);
    rn_config_set_init(&b->cfg.dynamic_default);
    if (nconfigs) {
        rn_broker_apply_configs_locked(b);
        RN_INFO("cluster", "runnel.meta lists %zu dynamic broker config(s) from before the metadata quorum: they join "
                "the metadata log when this node is the active controller", nconfigs);
    }
    size_t it = 0;
    void *v;
    while (rn_map_next(&b->topics, &it, NULL, &v) && (size_t)im->n < n) {
        rn_topic_t *t = v;
        legacy_topic_t *l = &im->v[im->n++];
        snprintf(l->name, sizeof(l->name), "%s", t->name);
        memcpy(l->id, t->id, 16);
        l->npartitions = t->partition_count;
        l->configs = t->configs; /* moved */
        rn_config_set_init(&t->configs);
    }
    for (int32_t i = 0; i < im->n; i++) {
        rn_topic_t *t = rn_map_del(&b->topics, im->v[i].name, strlen(im->v[i].name));
        if (t) rn_topic_release(t);
    }
    pthread_rwlock_unlock(&b->topics_lock);
    if (im->n)
        RN_INFO("cluster", "runnel.meta lists %d topic(s) from before the metadata quorum: they join the metadata log "
                "when this node is the active controller", im->n);
    return im;
}

bool rn_import_pending(rn_import_t *im, const char *topic) {
    if (!im) return false;
    pthread_mutex_lock(&im->lock);
    bool found = false;
    for (int32_t i = 0; i < im->n && !found; i++) found = !strcmp(im->v[i].name, topic);
    pthread_mutex_unlock(&im->lock);
    return found;
}

int32_t rn_import_records(rn_import_t *im, rn_controller_t *ctl, const rn_meta_image_t *img, int32_t node,
                          rn_meta_batch_t *out) {
    if (!im) return 0;
    int32_t added = 0;
    pthread_mutex_lock(&im->lock);
    for (int32_t i = 0; i < im->n; i++) {
        legacy_topic_t *l = &im->v[i];
        rn_str_t name = {l->name, (int32_t)strlen(l->name)};
        const rn_meta_topic_t *mt = rn_meta_image_topic_by_name(img, name);
        if (mt) {
            if (memcmp(mt->id, l->id, 16) != 0)
                RN_WARN("cluster", "runnel.meta's topic %s is not imported: the metadata log has another topic of "
                        "that name", l->name);
            continue;
        }
        rn_ctl_kv_t *kv = calloc(l->configs.n + 1, sizeof(*kv));
        if (!kv) break;
        for (size_t k = 0; k < l->configs.n; k++) {
            kv[k].key = (rn_str_t){l->configs.v[k].name, (int32_t)strlen(l->configs.v[k].name)};
            kv[k].value = (rn_str_t){l->configs.v[k].value, (int32_t)strlen(l->configs.v[k].value)};
        }
        rn_ctl_create_topic_t req = {.name = name, .num_partitions = l->npartitions, .replication_factor = 1,
                                     .nconfigs = (int32_t)l->configs.n, .configs = kv};
        rn_err_t err = rn_ctl_import_topic(ctl, img, &req, l->id, node, out);
        free(kv);
        if (err) {
            RN_WARN("cluster", "runnel.meta's topic %s could not be imported: %s (%s)", l->name, rn_err_name(err),
                    rn_ctl_error_message(ctl));
            continue;
        }
        added++;
    }
    rn_config_set_t *sets[2] = {&im->per_broker, &im->defaults};
    char id[16];
    for (int s = 0; s < 2; s++)
        for (size_t k = 0; k < sets[s]->n; k++) {
            const rn_config_entry_t *e = &sets[s]->v[k];
            const char *owner = config_owner(im, sets[s], node, id, sizeof(id));
            if (!e->value || rn_meta_image_config(img, RN_META_RESOURCE_BROKER, owner, e->name)) continue;
            rn_err_t err = rn_ctl_alter_config(ctl, img, RN_META_RESOURCE_BROKER, rn_str_from_cstr(owner),
                                               rn_str_from_cstr(e->name), rn_str_from_cstr(e->value), out);
            if (err) {
                RN_WARN("cluster", "runnel.meta's dynamic broker config %s could not be imported: %s (%s)", e->name,
                        rn_err_name(err), rn_ctl_error_message(ctl));
                rn_config_set_del(sets[s], e->name);
                k--;
                continue;
            }
            added++;
        }
    pthread_mutex_unlock(&im->lock);
    return added;
}

void rn_import_done(rn_import_t *im, rn_broker_t *b, const rn_meta_image_t *img) {
    if (!im) return;
    pthread_mutex_lock(&im->lock);
    int32_t kept = 0, done = 0;
    for (int32_t i = 0; i < im->n; i++) {
        legacy_topic_t *l = &im->v[i];
        const rn_meta_topic_t *mt = rn_meta_image_topic_by_name(img, (rn_str_t){l->name, (int32_t)strlen(l->name)});
        if (mt && !memcmp(mt->id, l->id, 16)) {
            RN_INFO("cluster", "topic %s (%d partitions) imported from runnel.meta into the metadata log", l->name,
                    l->npartitions);
            rn_config_set_free(&l->configs);
            done++;
        } else {
            im->v[kept++] = *l;
        }
    }
    im->n = kept;
    size_t nconfigs = im->per_broker.n + im->defaults.n;
    if (nconfigs && configs_in_image(im, img, b->cfg.node_id)) {
        RN_INFO("cluster", "%zu dynamic broker config(s) imported from runnel.meta into the metadata log", nconfigs);
        rn_config_set_free(&im->per_broker);
        rn_config_set_free(&im->defaults);
        rn_config_set_init(&im->per_broker);
        rn_config_set_init(&im->defaults);
        done++;
    }
    bool left = kept || im->per_broker.n || im->defaults.n;
    pthread_mutex_unlock(&im->lock);
    if (!done || left) return; /* runnel.meta keeps listing a topic (a config) until it is in the log */
    pthread_rwlock_rdlock(&b->topics_lock);
    rn_err_t err = rn_broker_save_metadata(b); /* it writes no topics (the metadata log has them) */
    pthread_rwlock_unlock(&b->topics_lock);
    if (err) RN_WARN("cluster", "rewriting runnel.meta after the import failed: %s", rn_err_name(err));
}

void rn_import_free(rn_import_t *im) {
    if (!im) return;
    for (int32_t i = 0; i < im->n; i++) rn_config_set_free(&im->v[i].configs);
    rn_config_set_free(&im->per_broker);
    rn_config_set_free(&im->defaults);
    free(im->v);
    pthread_mutex_destroy(&im->lock);
    free(im);
}
