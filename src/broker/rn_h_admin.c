/*
 * rn_h_admin.c — topic administration and configuration: CreateTopics,
 * DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
 * IncrementalAlterConfigs.
 *
 * Every answer carries Kafka's error code and, where the version has one, a
 * message that says what was wrong in the user's terms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_broker.h"
#include "rn_cluster.h"
#include "rn_logging.h"
#include "rn_msg_gen.h"

#define RN_RESOURCE_TOPIC 2
#define RN_RESOURCE_BROKER 4
#define RN_RESOURCE_BROKER_LOGGER 8

#define RN_OP_SET 0
#define RN_OP_DELETE 1
#define RN_OP_APPEND 2
#define RN_OP_SUBTRACT 3

static rn_str_t msg_or_null(rn_arena_t *a, rn_err_t rc, const char *msg) {
    if (!rc) return RN_STR_NULL;
    return rn_str_dup_arena(a, msg[0] ? msg : rn_err_name(rc));
}

/* ---- CreateTopics ---- */

void rn_h_create_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_cluster_create_topics(b, req, h, body); /* the active controller decides (src/cluster) */
}

/* ---- DeleteTopics ---- */

void rn_h_delete_topics(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_cluster_delete_topics(b, req, h, body); /* the active controller decides (src/cluster) */
}

/* ---- CreatePartitions ---- */

void rn_h_create_partitions(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_cluster_create_partitions(b, req, h, body); /* the active controller decides (src/cluster) */
}

/* ---- DescribeConfigs ---- */

static bool key_requested(const rn_DescribeConfigsRequest_DescribeConfigsResource_t *res, const char *name) {
    if (res->ConfigurationKeys_count < 0) return true;
    for (int32_t i = 0; i < res->ConfigurationKeys_count; i++)
        if (rn_str_eq_cstr(res->ConfigurationKeys[i], name)) return true;
    return false;
}

static void add_synonym(rn_arena_t *a, rn_DescribeConfigsResponse_DescribeConfigsResourceResult_t *c, const char *name,
                        const char *value, rn_config_source_t src) {
    rn_DescribeConfigsResponse_DescribeConfigsSynonym_t *s = &c->Synonyms[c->Synonyms_count++];
    rn_DescribeConfigsResponse_DescribeConfigsSynonym_init(s);
    s->Name = rn_str_dup_arena(a, name);
    s->Value = value ? rn_str_dup_arena(a, value) : RN_STR_NULL;
    s->Source = (int8_t)src;
}

/* Fill one config entry; topic == NULL means a broker config. topics_lock held. */
static void describe_one(rn_broker_t *b, rn_arena_t *a, const rn_config_def_t *d, const rn_topic_t *topic,
                         bool synonyms, bool docs, int16_t version,
                         rn_DescribeConfigsResponse_DescribeConfigsResourceResult_t *c) {
    rn_DescribeConfigsResponse_DescribeConfigsResourceResult_init(c);
    rn_config_source_t src;
    const char *v = topic ? rn_topic_config_value(&b->cfg, &topic->configs, d->name, &src)
                          : rn_broker_config_value(&b->cfg, d->name, &src);
    c->Name = rn_str_dup_arena(a, d->name);
    c->Value = v ? rn_str_dup_arena(a, v) : RN_STR_NULL;
    c->ReadOnly = topic ? false : d->read_only;
    c->IsDefault = src == RN_CS_DEFAULT;
    c->ConfigSource = (int8_t)src;
    if (version == 0 && !topic && src == RN_CS_STATIC_BROKER) c->ConfigSource = RN_CS_STATIC_BROKER;
    c->IsSensitive = false;
    c->ConfigType = (int8_t)d->type;
    c->Documentation = docs ? rn_str_dup_arena(a, d->doc) : RN_STR_NULL;
    c->Synonyms_count = 0;
    if (!synonyms) return;
    c->Synonyms = rn_arena_calloc(a, 5, sizeof(*c->Synonyms));
    if (!c->Synonyms) return;
    if (topic) {
        const char *tv = rn_config_set_get(&topic->configs, d->name);
        if (rn_config_set_find(&topic->configs, d->name)) add_synonym(a, c, d->name, tv, RN_CS_DYNAMIC_TOPIC);
    }
    const char *bkey = topic ? d->synonym : d->name;
    if (bkey) {
        const rn_config_entry_t *e;
        if ((e = rn_config_set_find(&b->cfg.dynamic, bkey))) add_synonym(a, c, bkey, e->value, RN_CS_DYNAMIC_BROKER);
        if ((e = rn_config_set_find(&b->cfg.dynamic_default, bkey)))
            add_synonym(a, c, bkey, e->value, RN_CS_DYNAMIC_DEFAULT_BROKER);
        if ((e = rn_config_set_find(&b->cfg.explicit_values, bkey)))
            add_synonym(a, c, bkey, e->value, RN_CS_STATIC_BROKER);
    }
    const rn_config_def_t *bd = topic && d->synonym ? rn_broker_config_def(d->synonym) : NULL;
    const char *defv = d->default_value;
    if (bd && !rn_config_set_find(&b->cfg.derived, bd->name) && bd->default_value) defv = bd->default_value;
    add_synonym(a, c, bkey ? bkey : d->name, defv, RN_CS_DEFAULT);
}

static bool is_this_broker(rn_broker_t *b, rn_str_t name) {
    char id[16];
    snprintf(id, sizeof(id), "%d", b->cfg.node_id);
    return rn_str_eq_cstr(name, id);
}

void rn_h_describe_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_DescribeConfigsRequest_t rq;
    rn_DescribeConfigsRequest_init(&rq);
    rn_err_t rc = rn_DescribeConfigsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_DescribeConfigsResponse_t resp;
    rn_DescribeConfigsResponse_init(&resp);
    int32_t n = rq.Resources_count > 0 ? rq.Resources_count : 0;
    resp.Results = rn_arena_calloc(a, (size_t)n + 1, sizeof(*resp.Results));
    if (!resp.Results) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Results_count = n;
    pthread_rwlock_rdlock(&b->topics_lock);
    for (int32_t i = 0; i < n; i++) {
        const rn_DescribeConfigsRequest_DescribeConfigsResource_t *res = &rq.Resources[i];
        rn_DescribeConfigsResponse_DescribeConfigsResult_t *r = &resp.Results[i];
        rn_DescribeConfigsResponse_DescribeConfigsResult_init(r);
        r->ResourceType = res->ResourceType;
        r->ResourceName = res->ResourceName;
        r->ErrorMessage = RN_STR_NULL;
        const rn_config_def_t *defs = NULL;
        size_t ndefs = 0;
        const rn_topic_t *topic = NULL;
        if (res->ResourceType == RN_RESOURCE_TOPIC) {
            topic = res->ResourceName.len > 0
                        ? rn_broker_topic_locked(b, res->ResourceName.ptr, (size_t)res->ResourceName.len)
                        : NULL;
            if (!topic) {
                r->ErrorCode = RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                r->ErrorMessage = rn_str_printf_arena(a, "Topic '%.*s' does not exist.", res->ResourceName.len > 0 ? res->ResourceName.len : 0,
                                                      res->ResourceName.ptr);
                continue;
            }
            defs = rn_topic_config_defs;
            ndefs = rn_topic_config_defs_count;
        } else if (res->ResourceType == RN_RESOURCE_BROKER) {
            if (res->ResourceName.len > 0 && !is_this_broker(b, res->ResourceName)) {
                r->ErrorCode = RN_ERR_INVALID_REQUEST;
                r->ErrorMessage = rn_str_printf_arena(a, "Broker %.*s is not this broker (%d)", res->ResourceName.len,
                                                      res->ResourceName.ptr, b->cfg.node_id);
                continue;
            }
            defs = rn_broker_config_defs;
            ndefs = rn_broker_config_defs_count;
        } else if (res->ResourceType == RN_RESOURCE_BROKER_LOGGER) {
            r->Configs = rn_arena_calloc(a, 1, sizeof(*r->Configs));
            if (r->Configs) {
                rn_DescribeConfigsResponse_DescribeConfigsResourceResult_init(&r->Configs[0]);
                r->Configs[0].Name = RN_STR_LIT("root");
                static const char *const levels[] = {"error", "warn", "info", "debug"};
                int lvl = rn_log_level_current; /* the level in force, set by log.level or a logger change */
                r->Configs[0].Value = rn_str_dup_arena(a, levels[lvl >= 0 && lvl <= 3 ? lvl : RN_LOG_INFO]);
                r->Configs[0].ConfigSource = 6; /* DYNAMIC_BROKER_LOGGER_CONFIG */
                r->Configs[0].ConfigType = RN_CT_STRING;
                r->Configs_count = 1;
            }
            continue;
        } else {
            r->ErrorCode = RN_ERR_INVALID_REQUEST;
            r->ErrorMessage = rn_str_printf_arena(a, "Unsupported resource type %d", res->ResourceType);
            continue;
        }
        r->Configs = rn_arena_calloc(a, ndefs, sizeof(*r->Configs));
        if (!r->Configs) {
            r->ErrorCode = RN_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        int32_t k = 0;
        for (size_t j = 0; j < ndefs; j++) {
            if (!key_requested(res, defs[j].name)) continue;
            describe_one(b, a, &defs[j], topic, rq.IncludeSynonyms, rq.IncludeDocumentation, h->api_version,
                         &r->Configs[k++]);
        }
        r->Configs_count = k;
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_DescribeConfigsResponse_encode, &resp);
    pthread_rwlock_unlock(&b->topics_lock);
}

/* ---- AlterConfigs / IncrementalAlterConfigs ---- */

void rn_admin_alter_init(rn_admin_alter_t *v, int16_t api_key, const void *rq) {
    v->api_key = api_key;
    v->rq = rq;
    if (api_key == RN_API_INCREMENTAL_ALTER_CONFIGS) {
        const rn_IncrementalAlterConfigsRequest_t *irq = rq;
        v->n = irq->Resources_count;
        v->validate_only = irq->ValidateOnly;
    } else {
        const rn_AlterConfigsRequest_t *arq = rq;
        v->n = arq->Resources_count;
        v->validate_only = arq->ValidateOnly;
    }
    if (v->n < 0) v->n = 0;
}

int8_t rn_admin_alter_type(const rn_admin_alter_t *v, int32_t i) {
    return v->api_key == RN_API_INCREMENTAL_ALTER_CONFIGS
               ? ((const rn_IncrementalAlterConfigsRequest_t *)v->rq)->Resources[i].ResourceType
               : ((const rn_AlterConfigsRequest_t *)v->rq)->Resources[i].ResourceType;
}

rn_str_t rn_admin_alter_name(const rn_admin_alter_t *v, int32_t i) {
    return v->api_key == RN_API_INCREMENTAL_ALTER_CONFIGS
               ? ((const rn_IncrementalAlterConfigsRequest_t *)v->rq)->Resources[i].ResourceName
               : ((const rn_AlterConfigsRequest_t *)v->rq)->Resources[i].ResourceName;
}

rn_err_t rn_admin_alter_configs_of(rn_broker_t *b, const rn_admin_alter_t *v, int32_t i, const rn_config_set_t *cur,
                                   rn_config_set_t *out, char *msg, size_t msglen) {
    if (v->api_key == RN_API_INCREMENTAL_ALTER_CONFIGS) {
        if (cur && !rn_config_set_copy(out, cur)) return RN_ERR_UNKNOWN_SERVER_ERROR;
        return rn_admin_incremental_edit(b, &((const rn_IncrementalAlterConfigsRequest_t *)v->rq)->Resources[i], out,
                                         msg, msglen);
    }
    const rn_AlterConfigsRequest_AlterConfigsResource_t *res = &((const rn_AlterConfigsRequest_t *)v->rq)->Resources[i];
    for (int32_t k = 0; k < res->Configs_count; k++) {
        const rn_AlterConfigsRequest_AlterableConfig_t *c = &res->Configs[k];
        if (c->Name.len <= 0) continue;
        if (!rn_config_set_put_n(out, c->Name.ptr, (size_t)c->Name.len, c->Value.ptr,
                                 c->Value.len > 0 ? (size_t)c->Value.len : 0, c->Value.len < 0))
            return RN_ERR_UNKNOWN_SERVER_ERROR;
    }
    return RN_OK;
}

rn_err_t rn_admin_alter_loggers(const rn_config_set_t *cs, bool validate_only, char *msg, size_t msglen) {
    for (size_t i = 0; i < cs->n; i++) {
        if (!cs->v[i].value || rn_log_level_parse(cs->v[i].value) < 0) {
            snprintf(msg, msglen, "Log level '%s' is not one of error, warn, info, debug",
                     cs->v[i].value ? cs->v[i].value : "null");
            return RN_ERR_INVALID_CONFIG;
        }
    }
    if (!validate_only)
        for (size_t i = 0; i < cs->n; i++) rn_log_set_level((rn_log_level_t)rn_log_level_parse(cs->v[i].value));
    return RN_OK;
}

/* One resource of a request that names no topic or broker (those go to the active
 * controller, below): this node's loggers, or a type no node serves. */
static rn_err_t alter_here(rn_broker_t *b, const rn_admin_alter_t *v, int32_t i, char *msg, size_t msglen) {
    int8_t type = rn_admin_alter_type(v, i);
    if (type != RN_RESOURCE_BROKER_LOGGER) {
        snprintf(msg, msglen, "Unsupported resource type %d", type);
        return RN_ERR_INVALID_REQUEST;
    }
    rn_config_set_t cs;
    rn_config_set_init(&cs);
    rn_err_t rc = rn_admin_alter_configs_of(b, v, i, NULL, &cs, msg, msglen);
    if (!rc) rc = rn_admin_alter_loggers(&cs, v->validate_only, msg, msglen);
    rn_config_set_free(&cs);
    return rc;
}

/* As KRaft: topic and broker configs are the active controller's (the request goes there
 * whole, forwarded by a node that is not it, and the answer comes from there); broker
 * loggers are this node's, set here first — the controller answers for them with the same
 * check, deciding nothing. A request of loggers only stays here. True if taken. */
static bool alter_in_cluster(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, const rn_admin_alter_t *v,
                             rn_reader_t *body) {
    bool to_controller = false;
    for (int32_t i = 0; i < v->n; i++) {
        int8_t type = rn_admin_alter_type(v, i);
        to_controller |= type == RN_RESOURCE_TOPIC || type == RN_RESOURCE_BROKER;
    }
    if (!to_controller) return false;
    for (int32_t i = 0; i < v->n && !rn_cluster_request_forwarded(h); i++) {
        if (rn_admin_alter_type(v, i) != RN_RESOURCE_BROKER_LOGGER) continue;
        char msg[512] = "";
        rn_config_set_t cs;
        rn_config_set_init(&cs);
        if (rn_admin_alter_configs_of(b, v, i, NULL, &cs, msg, sizeof(msg)) == RN_OK)
            (void)rn_admin_alter_loggers(&cs, v->validate_only, msg, sizeof(msg));
        rn_config_set_free(&cs);
    }
    rn_cluster_alter_configs(b, req, h, body);
    return true;
}

void rn_h_alter_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_AlterConfigsRequest_t rq;
    rn_AlterConfigsRequest_init(&rq);
    rn_reader_t again = *body;
    rn_err_t rc = rn_AlterConfigsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_admin_alter_t v;
    rn_admin_alter_init(&v, h->api_key, &rq);
    if (alter_in_cluster(b, req, h, &v, &again)) return;
    rn_AlterConfigsResponse_t resp;
    rn_AlterConfigsResponse_init(&resp);
    resp.Responses = rn_arena_calloc(a, (size_t)v.n + 1, sizeof(*resp.Responses));
    if (!resp.Responses) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Responses_count = v.n;
    for (int32_t i = 0; i < v.n; i++) {
        rn_AlterConfigsResponse_AlterConfigsResourceResponse_t *r = &resp.Responses[i];
        rn_AlterConfigsResponse_AlterConfigsResourceResponse_init(r);
        r->ResourceType = rq.Resources[i].ResourceType;
        r->ResourceName = rq.Resources[i].ResourceName;
        char msg[512] = "";
        rc = alter_here(b, &v, i, msg, sizeof(msg));
        r->ErrorCode = rn_err_wire(rc);
        r->ErrorMessage = msg_or_null(a, rc, msg);
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_AlterConfigsResponse_encode, &resp);
}

/* APPEND/SUBTRACT on a comma-separated list value. */
static char *list_edit(const char *cur, const char *item, bool append) {
    size_t cap = (cur ? strlen(cur) : 0) + strlen(item) + 2;
    char *out = calloc(1, cap);
    if (!out) return NULL;
    bool present = false;
    const char *p = cur ? cur : "";
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        bool same = n == strlen(item) && !strncmp(p, item, n);
        if (same) present = true;
        if (n && !(same && !append)) {
            if (*out) strcat(out, ",");
            strncat(out, p, n);
        }
        if (!c) break;
        p = c + 1;
    }
    if (append && !present) {
        if (*out) strcat(out, ",");
        strcat(out, item);
    }
    return out;
}

/* IncrementalAlterConfigs' operations on `cs` (the resource's explicit set): SET, DELETE, and
 * APPEND/SUBTRACT on list values (starting from the default when the key is unset). */
rn_err_t rn_admin_incremental_edit(rn_broker_t *b, const rn_IncrementalAlterConfigsRequest_AlterConfigsResource_t *res,
                                   rn_config_set_t *cs, char *msg, size_t msglen) {
    rn_err_t rc = RN_OK;
    for (int32_t k = 0; k < res->Configs_count && !rc; k++) {
        const rn_IncrementalAlterConfigsRequest_AlterableConfig_t *c = &res->Configs[k];
        char name[256], value[4096];
        snprintf(name, sizeof(name), "%.*s", c->Name.len > 0 ? c->Name.len : 0, c->Name.ptr ? c->Name.ptr : "");
        snprintf(value, sizeof(value), "%.*s", c->Value.len > 0 ? c->Value.len : 0, c->Value.ptr ? c->Value.ptr : "");
        const rn_config_def_t *d = res->ResourceType == RN_RESOURCE_TOPIC ? rn_topic_config_def(name)
                                                                          : rn_broker_config_def(name);
        switch (c->ConfigOperation) {
        case RN_OP_SET:
            if (!rn_config_set_put(cs, name, c->Value.len < 0 ? NULL : value)) rc = RN_ERR_UNKNOWN_SERVER_ERROR;
            break;
        case RN_OP_DELETE:
            rn_config_set_del(cs, name);
            break;
        case RN_OP_APPEND:
        case RN_OP_SUBTRACT: {
            if (res->ResourceType != RN_RESOURCE_BROKER_LOGGER && (!d || d->type != RN_CT_LIST)) {
                rc = RN_ERR_INVALID_CONFIG;
                snprintf(msg, msglen, "Config %s is not a list: APPEND and SUBTRACT need one", name);
                break;
            }
            pthread_rwlock_rdlock(&b->topics_lock);
            const char *cur = rn_config_set_find(cs, name) ? rn_config_set_get(cs, name)
                              : res->ResourceType == RN_RESOURCE_TOPIC ? rn_topic_config_value(&b->cfg, NULL, name, NULL)
                                                                       : rn_broker_config_value(&b->cfg, name, NULL);
            char *nv = list_edit(cur, value, c->ConfigOperation == RN_OP_APPEND);
            pthread_rwlock_unlock(&b->topics_lock);
            if (!nv || !rn_config_set_put(cs, name, nv)) rc = RN_ERR_UNKNOWN_SERVER_ERROR;
            free(nv);
            break;
        }
        default:
            rc = RN_ERR_INVALID_REQUEST;
            snprintf(msg, msglen, "Unknown config operation %d", c->ConfigOperation);
        }
    }
    return rc;
}

void rn_h_incremental_alter_configs(rn_broker_t *b, rn_req_t *req, const rn_req_header_t *h, rn_reader_t *body) {
    rn_arena_t *a = &req->arena;
    rn_IncrementalAlterConfigsRequest_t rq;
    rn_IncrementalAlterConfigsRequest_init(&rq);
    rn_reader_t again = *body;
    rn_err_t rc = rn_IncrementalAlterConfigsRequest_decode(body, h->api_version, a, &rq);
    if (rc) {
        rn_broker_bad_request(b, req, h, rc);
        return;
    }
    rn_admin_alter_t v;
    rn_admin_alter_init(&v, h->api_key, &rq);
    if (alter_in_cluster(b, req, h, &v, &again)) return;
    rn_IncrementalAlterConfigsResponse_t resp;
    rn_IncrementalAlterConfigsResponse_init(&resp);
    resp.Responses = rn_arena_calloc(a, (size_t)v.n + 1, sizeof(*resp.Responses));
    if (!resp.Responses) {
        rn_broker_bad_request(b, req, h, RN_ERR_LIMIT);
        return;
    }
    resp.Responses_count = v.n;
    for (int32_t i = 0; i < v.n; i++) {
        rn_IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_t *r = &resp.Responses[i];
        rn_IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init(r);
        r->ResourceType = rq.Resources[i].ResourceType;
        r->ResourceName = rq.Resources[i].ResourceName;
        char msg[512] = "";
        rc = alter_here(b, &v, i, msg, sizeof(msg));
        r->ErrorCode = rn_err_wire(rc);
        r->ErrorMessage = msg_or_null(a, rc, msg);
    }
    rn_broker_respond(b, req, h, (rn_encode_fn)rn_IncrementalAlterConfigsResponse_encode, &resp);
}
