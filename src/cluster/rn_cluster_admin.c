/*
 * rn_cluster_admin.c — the active controller's CreatePartitions, AlterConfigs
 * and IncrementalAlterConfigs (jobs of rn_cluster.c's controller queue, run on
 * its controller thread; other nodes forward these requests to it).
 *
 * CreatePartitions: one decision per topic (rn_ctl_create_partitions: the new
 * partitions placed rack-aware over the active brokers, or as the client
 * assigned them, with the topic's replication factor), proposed and applied
 * before the next. Every node's follow thread then grows its topic and opens
 * the replicas it holds.
 *
 * Configs: a topic's explicit configs are Config records in the metadata log.
 * For each topic resource the job takes the topic's set from the image,
 * computes the new one (AlterConfigs: the request's set replaces it;
 * IncrementalAlterConfigs: its operations edit it, rn_admin_incremental_edit),
 * validates it as a single node would (rn_topic_configs_validate), and writes
 * the difference — a record per key set or changed, a delete record per key
 * dropped — as one decision. Every node's follow thread applies the changed set
 * to its topic and to the logs of its replicas.
 *
 * Dynamic broker configs (resource type BROKER, "" for the cluster default or a
 * broker id, any broker's, from any node) go the same way: the set at that
 * level from the image, edited, validated as a single node validates them
 * (rn_broker_dynamic_configs_validate: known, not read-only, typed values), the
 * difference written as Config records. Every node follows the records for its
 * own id and the default (rn__follow_broker_configs, when an entry carried a
 * broker Config record or a snapshot was loaded): they replace its dynamic sets
 * and take effect as a single node's do (rn_broker_apply_configs_locked); its
 * own id's values override the default's. BROKER_LOGGER resources are the
 * receiving node's (rn_h_admin.c sets them before the request comes here); the
 * job only answers for them with the same check, so a request mixing topics,
 * brokers and loggers is answered per resource.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_cluster_int.h"
#include "rn_logging.h"

#define RN_RESOURCE_BROKER_LOGGER 8

static rn_str_t message(rn_arena_t *a, rn_err_t err, const char *msg) {
    if (!err) return RN_STR_NULL;
    return rn_str_dup_arena(a, msg && *msg ? msg : rn_err_name(err));
}

void rn__job_create_partitions(rn_cluster_t *c, rn__job_t *j, rn_meta_batch_t *batch) {
    rn_CreatePartitionsRequest_t *rq = j->rq;
    rn_CreatePartitionsResponse_t *resp = j->resp;
    rn_arena_t *a = &j->req->arena;
    int32_t n = rq->Topics_count > 0 ? rq->Topics_count : 0;
    resp->Results = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp->Results));
    resp->Results_count = resp->Results ? n : 0;
    for (int32_t i = 0; i < resp->Results_count; i++) {
        rn_CreatePartitionsRequest_CreatePartitionsTopic_t *t = &rq->Topics[i];
        rn_CreatePartitionsResponse_CreatePartitionsTopicResult_t *r = &resp->Results[i];
        rn_CreatePartitionsResponse_CreatePartitionsTopicResult_init(r);
        r->Name = t->Name;
        rn_err_t err = j->refuse;
        const char *msg = NULL;
        for (int32_t k = 0; !err && k < n; k++)
            if (k != i && rn_str_eq(rq->Topics[k].Name, t->Name)) {
                err = RN_ERR_INVALID_REQUEST;
                msg = "the topic appears more than once in the request";
            }
        int32_t nasg = t->Assignments_count > 0 ? t->Assignments_count : 0;
        rn_meta_ids_t *asg = err ? NULL : rn_arena_calloc(a, (size_t)nasg + 1, sizeof(*asg));
        if (!err && !asg) err = RN_ERR_UNKNOWN_SERVER_ERROR;
        for (int32_t k = 0; !err && k < nasg; k++) {
            if (t->Assignments[k].BrokerIds_count > RN_META_REPLICAS_MAX) {
                err = RN_ERR_INVALID_REPLICA_ASSIGNMENT;
                msg = "an assignment has too many replicas";
            }
            for (int32_t m = 0; !err && m < t->Assignments[k].BrokerIds_count; m++)
                asg[k].ids[asg[k].n++] = t->Assignments[k].BrokerIds[m];
        }
        if (!err) {
            rn_meta_batch_reset(batch);
            const rn_meta_image_t *img = rn__cluster_image_rdlock(c);
            err = rn_ctl_create_partitions(rn__cluster_ctl(c), img, t->Name, t->Count, nasg, asg, rq->ValidateOnly,
                                           batch);
            rn__cluster_image_unlock(c);
            if (err) msg = rn__cluster_message(c, err);
            if (!err) err = rn__cluster_commit(c, batch);
            if (!err && !rq->ValidateOnly)
                RN_INFO("cluster", "topic %.*s grows to %d partitions", t->Name.len, t->Name.ptr, t->Count);
        }
        if (err && !msg) msg = rn__cluster_message(c, err);
        r->ErrorCode = rn_err_wire(err);
        r->ErrorMessage = message(a, err, msg);
    }
}

/* A resource's explicit configs as the image has them (image read-locked). */
bool rn__image_resource_configs(const rn_meta_image_t *img, int8_t type, const char *name, rn_config_set_t *out) {
    int32_t first, n = rn_meta_image_resource_configs(img, type, name, &first);
    for (int32_t k = first; k < first + n; k++) {
        const rn_meta_config_t *cf = rn_meta_image_config_at(img, k);
        if (!rn_config_set_put(out, cf->key, cf->value)) return false;
    }
    return true;
}

bool rn__image_topic_configs(const rn_meta_image_t *img, const char *topic, rn_config_set_t *out) {
    return rn__image_resource_configs(img, RN_META_RESOURCE_TOPIC, topic, out);
}

bool rn__image_broker_configs(const rn_meta_image_t *img, int32_t node_id, rn_config_set_t *per_broker,
                              rn_config_set_t *defaults) {
    char id[16];
    snprintf(id, sizeof(id), "%d", node_id);
    return rn__image_resource_configs(img, RN_META_RESOURCE_BROKER, id, per_broker) &&
           rn__image_resource_configs(img, RN_META_RESOURCE_BROKER, "", defaults);
}

void rn__follow_broker_configs(rn_broker_t *b, const rn_meta_image_t *img) {
    rn_config_set_t per, def;
    rn_config_set_init(&per);
    rn_config_set_init(&def);
    if (rn__image_broker_configs(img, b->cfg.node_id, &per, &def)) {
        size_t nper = per.n, ndef = def.n;
        if (rn_broker_replace_dynamic_configs(b, &per, &def))
            RN_INFO("cluster", "dynamic broker configs from the metadata log: %zu for node %d, %zu cluster-wide", nper,
                    b->cfg.node_id, ndef);
    } else {
        RN_WARN("cluster", "out of memory reading the dynamic broker configs; kept the previous ones");
    }
    rn_config_set_free(&per);
    rn_config_set_free(&def);
}

static rn_str_t cstr(const char *s) { return (rn_str_t){s, (int32_t)strlen(s)}; }

/* A broker resource's name: "" (the cluster default) or a broker id. */
static bool broker_name_ok(rn_str_t name) {
    if (name.len == 0) return true;
    if (name.len < 0 || name.len > 10) return false;
    int64_t id = 0;
    for (int32_t i = 0; i < name.len; i++) {
        if (name.ptr[i] < '0' || name.ptr[i] > '9') return false;
        id = id * 10 + (name.ptr[i] - '0');
    }
    return id <= INT32_MAX;
}

/* One resource of the request: topics and brokers decided, broker loggers only checked (the
 * node the client asked has set them; this is its answer). */
static rn_err_t alter_one(rn_cluster_t *c, rn__job_t *j, const rn_admin_alter_t *v, int32_t i, rn_meta_batch_t *batch,
                          char *msg, size_t msglen) {
    int8_t type = rn_admin_alter_type(v, i);
    rn_str_t name = rn_admin_alter_name(v, i);
    rn_config_set_t cur, next;
    rn_config_set_init(&cur);
    rn_config_set_init(&next);
    rn_err_t err = RN_OK;
    if (type == RN_RESOURCE_BROKER_LOGGER) {
        err = rn_admin_alter_configs_of(j->b, v, i, NULL, &next, msg, msglen);
        if (!err) err = rn_admin_alter_loggers(&next, true, msg, msglen);
        rn_config_set_free(&next);
        return err;
    }
    if (j->refuse) return j->refuse;
    if (type == RN_META_RESOURCE_TOPIC && (name.len <= 0 || name.len > RN_META_NAME_MAX)) {
        snprintf(msg, msglen, "Topic name is empty or too long");
        return RN_ERR_INVALID_REQUEST;
    }
    if (type == RN_META_RESOURCE_BROKER && !broker_name_ok(name)) {
        snprintf(msg, msglen, "Broker resource name '%.*s' is neither empty (the cluster default) nor a broker id",
                 name.len > 64 ? 64 : name.len, name.ptr);
        return RN_ERR_INVALID_REQUEST;
    }
    if (type != RN_META_RESOURCE_TOPIC && type != RN_META_RESOURCE_BROKER) {
        snprintf(msg, msglen, "Unsupported resource type %d", type);
        return RN_ERR_INVALID_REQUEST;
    }
    char cname[RN_META_NAME_MAX + 1];
    snprintf(cname, sizeof(cname), "%.*s", name.len, name.ptr ? name.ptr : "");
    const rn_meta_image_t *img = rn__cluster_image_rdlock(c);
    if (type == RN_META_RESOURCE_TOPIC && !rn_meta_image_topic_by_name(img, name)) {
        snprintf(msg, msglen, "Topic '%s' does not exist.", cname);
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    } else if (!rn__image_resource_configs(img, type, cname, &cur)) {
        err = RN_ERR_UNKNOWN_SERVER_ERROR;
    }
    rn__cluster_image_unlock(c);
    if (!err) err = rn_admin_alter_configs_of(j->b, v, i, &cur, &next, msg, msglen);
    if (!err)
        err = type == RN_META_RESOURCE_TOPIC ? rn_topic_configs_validate(&next, msg, msglen)
                                             : rn_broker_dynamic_configs_validate(&next, msg, msglen);
    if (!err && !v->validate_only) {
        /* The difference, as one decision: deletes, then sets. */
        rn_meta_batch_reset(batch);
        rn_controller_t *ctl = rn__cluster_ctl(c);
        img = rn__cluster_image_rdlock(c);
        for (size_t k = 0; !err && k < cur.n; k++)
            if (!rn_config_set_find(&next, cur.v[k].name))
                err = rn_ctl_alter_config(ctl, img, type, name, cstr(cur.v[k].name), RN_STR_NULL, batch);
        for (size_t k = 0; !err && k < next.n; k++) {
            const char *old = rn_config_set_get(&cur, next.v[k].name);
            if (rn_config_set_find(&cur, next.v[k].name) && old && !strcmp(old, next.v[k].value)) continue;
            err = rn_ctl_alter_config(ctl, img, type, name, cstr(next.v[k].name), cstr(next.v[k].value), batch);
        }
        rn__cluster_image_unlock(c);
        if (err) snprintf(msg, msglen, "%s", rn__cluster_message(c, err));
        if (!err) err = rn__cluster_commit(c, batch);
        if (!err && batch->count > 0)
            RN_INFO("cluster", "%s %s: %d config change(s)", type == RN_META_RESOURCE_TOPIC ? "topic" : "broker",
                    type == RN_META_RESOURCE_TOPIC || name.len > 0 ? cname : "default", batch->count);
    }
    rn_config_set_free(&cur);
    rn_config_set_free(&next);
    return err;
}

void rn__job_alter_configs(rn_cluster_t *c, rn__job_t *j, rn_meta_batch_t *batch) {
    rn_admin_alter_t v;
    rn_admin_alter_init(&v, j->h.api_key, j->rq);
    bool incremental = v.api_key == RN_API_INCREMENTAL_ALTER_CONFIGS;
    rn_arena_t *a = &j->req->arena;
    int32_t n = v.n;
    rn_AlterConfigsResponse_AlterConfigsResourceResponse_t *ar = NULL;
    rn_IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_t *ir = NULL;
    if (incremental) {
        rn_IncrementalAlterConfigsResponse_t *resp = j->resp;
        ir = resp->Responses = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp->Responses));
        resp->Responses_count = ir ? n : 0;
        if (!ir) return;
    } else {
        rn_AlterConfigsResponse_t *resp = j->resp;
        ar = resp->Responses = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp->Responses));
        resp->Responses_count = ar ? n : 0;
        if (!ar) return;
    }
    for (int32_t i = 0; i < n; i++) {
        int8_t type = rn_admin_alter_type(&v, i);
        rn_str_t name = rn_admin_alter_name(&v, i);
        char msg[512] = "";
        rn_err_t err = alter_one(c, j, &v, i, batch, msg, sizeof(msg));
        if (err && !msg[0]) snprintf(msg, sizeof(msg), "%s", rn__cluster_message(c, err));
        if (incremental) {
            rn_IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init(&ir[i]);
            ir[i] = (rn_IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_t){
                rn_err_wire(err), message(a, err, msg), type, name};
        } else {
            rn_AlterConfigsResponse_AlterConfigsResourceResponse_init(&ar[i]);
            ar[i] = (rn_AlterConfigsResponse_AlterConfigsResourceResponse_t){rn_err_wire(err), message(a, err, msg),
                                                                             type, name};
        }
    }
}
