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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_cluster_int.h"
#include "rn_logging.h"

#define RESOURCE_TOPIC 2

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

/* The topic's explicit configs as the image has them (image read-locked). */
bool rn__image_topic_configs(const rn_meta_image_t *img, const char *topic, rn_config_set_t *out) {
    int32_t first, n = rn_meta_image_resource_configs(img, RESOURCE_TOPIC, topic, &first);
    for (int32_t k = first; k < first + n; k++) {
        const rn_meta_config_t *cf = rn_meta_image_config_at(img, k);
        if (!rn_config_set_put(out, cf->key, cf->value)) return false;
    }
    return true;
}

static rn_str_t cstr(const char *s) { return (rn_str_t){s, (int32_t)strlen(s)}; }

/* One topic resource: `i` indexes the request's resources. */
static rn_err_t alter_topic(rn_cluster_t *c, rn__job_t *j, int32_t i, rn_meta_batch_t *batch, char *msg,
                            size_t msglen) {
    bool incremental = j->h.api_key == RN_API_INCREMENTAL_ALTER_CONFIGS;
    rn_AlterConfigsRequest_t *arq = j->rq;
    rn_IncrementalAlterConfigsRequest_t *irq = j->rq;
    rn_str_t name = incremental ? irq->Resources[i].ResourceName : arq->Resources[i].ResourceName;
    bool validate_only = incremental ? irq->ValidateOnly : arq->ValidateOnly;
    if (name.len <= 0 || name.len > RN_META_NAME_MAX) {
        snprintf(msg, msglen, "Topic name is empty or too long");
        return RN_ERR_INVALID_REQUEST;
    }
    char topic[RN_META_NAME_MAX + 1];
    snprintf(topic, sizeof(topic), "%.*s", name.len, name.ptr);
    rn_config_set_t cur, next;
    rn_config_set_init(&cur);
    rn_config_set_init(&next);
    rn_err_t err = RN_OK;
    const rn_meta_image_t *img = rn__cluster_image_rdlock(c);
    if (!rn_meta_image_topic_by_name(img, name)) {
        snprintf(msg, msglen, "Topic '%s' does not exist.", topic);
        err = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    } else if (!rn__image_topic_configs(img, topic, &cur)) {
        err = RN_ERR_UNKNOWN_SERVER_ERROR;
    }
    rn__cluster_image_unlock(c);
    if (!err && incremental) {
        if (!rn_config_set_copy(&next, &cur)) err = RN_ERR_UNKNOWN_SERVER_ERROR;
        if (!err) err = rn_admin_incremental_edit(j->b, &irq->Resources[i], &next, msg, msglen);
    } else if (!err) {
        for (int32_t k = 0; !err && k < arq->Resources[i].Configs_count; k++) {
            const rn_AlterConfigsRequest_AlterableConfig_t *cf = &arq->Resources[i].Configs[k];
            if (cf->Name.len <= 0) continue;
            if (!rn_config_set_put_n(&next, cf->Name.ptr, (size_t)cf->Name.len, cf->Value.ptr,
                                     cf->Value.len > 0 ? (size_t)cf->Value.len : 0, cf->Value.len < 0))
                err = RN_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    if (!err) err = rn_topic_configs_validate(&next, msg, msglen);
    if (!err && !validate_only) {
        /* The difference, as one decision: deletes, then sets. */
        rn_meta_batch_reset(batch);
        rn_controller_t *ctl = rn__cluster_ctl(c);
        img = rn__cluster_image_rdlock(c);
        for (size_t k = 0; !err && k < cur.n; k++)
            if (!rn_config_set_find(&next, cur.v[k].name))
                err = rn_ctl_alter_config(ctl, img, RESOURCE_TOPIC, name, cstr(cur.v[k].name), RN_STR_NULL, batch);
        for (size_t k = 0; !err && k < next.n; k++) {
            const char *old = rn_config_set_get(&cur, next.v[k].name);
            if (rn_config_set_find(&cur, next.v[k].name) && old && !strcmp(old, next.v[k].value)) continue;
            err = rn_ctl_alter_config(ctl, img, RESOURCE_TOPIC, name, cstr(next.v[k].name), cstr(next.v[k].value),
                                      batch);
        }
        rn__cluster_image_unlock(c);
        if (err) snprintf(msg, msglen, "%s", rn__cluster_message(c, err));
        if (!err) err = rn__cluster_commit(c, batch);
        if (!err && batch->count > 0) RN_INFO("cluster", "topic %s: %d config change(s)", topic, batch->count);
    }
    rn_config_set_free(&cur);
    rn_config_set_free(&next);
    return err;
}

void rn__job_alter_configs(rn_cluster_t *c, rn__job_t *j, rn_meta_batch_t *batch) {
    bool incremental = j->h.api_key == RN_API_INCREMENTAL_ALTER_CONFIGS;
    rn_AlterConfigsRequest_t *arq = j->rq;
    rn_IncrementalAlterConfigsRequest_t *irq = j->rq;
    rn_arena_t *a = &j->req->arena;
    int32_t n = incremental ? irq->Resources_count : arq->Resources_count;
    if (n < 0) n = 0;
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
        int8_t type = incremental ? irq->Resources[i].ResourceType : arq->Resources[i].ResourceType;
        rn_str_t name = incremental ? irq->Resources[i].ResourceName : arq->Resources[i].ResourceName;
        char msg[512] = "";
        rn_err_t err = j->refuse;
        if (!err && type != RESOURCE_TOPIC) {
            err = RN_ERR_INVALID_REQUEST;
            snprintf(msg, sizeof(msg), "Only topic resources go to the controller");
        }
        if (!err) err = alter_topic(c, j, i, batch, msg, sizeof(msg));
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
