/*
 * rn_cli_config.c — `runnel config get|set`: topic and broker configs.
 *
 *   runnel config get topic TOPIC [KEY...]
 *   runnel config get broker [ID] [KEY...]
 *   runnel config set topic TOPIC KEY=VALUE... [--delete KEY]...
 *   runnel config set broker [ID] KEY=VALUE... [--delete KEY]...
 *
 * librdkafka 2.0.2 has AlterConfigs but not IncrementalAlterConfigs, and
 * AlterConfigs replaces a resource's whole dynamic set: anything left out
 * returns to its default. So a change reads the current dynamic values first
 * (DescribeConfigs, including synonyms, since a value set at this level can
 * hide behind a more specific one), merges the change in and sends the whole
 * set. Another client changing the same resource in between can be
 * overwritten: the same window kafka-configs.sh had before KIP-339. A dynamic
 * value the broker marks sensitive is not returned, so it cannot be carried
 * over; the change is refused rather than erasing it.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_cli.h"
#include "rn_cli_common.h"

static const char *type_word(rd_kafka_ResourceType_t type) {
    return type == RD_KAFKA_RESOURCE_TOPIC ? "topic" : "broker";
}

rd_kafka_event_t *rn_cli_describe_configs(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_ResourceType_t type,
                                          const char *const *names, int n) {
    rd_kafka_ConfigResource_t **res = calloc((size_t)n, sizeof(*res));
    if (!res) {
        rn_cli_fail(c, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) res[i] = rd_kafka_ConfigResource_new(type, names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rn_cli_admin_options(c, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(rk, res, (size_t)n, o, q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy_array(res, (size_t)n);
    free(res);
    rd_kafka_event_t *ev = rn_cli_admin_wait(c, rk, q, "DescribeConfigs");
    rd_kafka_queue_destroy(q);
    if (ev && rd_kafka_event_error(ev)) {
        rn_cli_fail_err(c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev),
                        (rn_cli_subject_t){type_word(type), n == 1 ? names[0] : ""});
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static int entry_cmp(const void *a, const void *b) {
    return strcmp(rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)a),
                  rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)b));
}

static bool key_wanted(const char *name, const char *const *keys, int keys_n) {
    if (keys_n == 0) return true;
    for (int i = 0; i < keys_n; i++)
        if (!strcmp(keys[i], name)) return true;
    return false;
}

void rn_cli_print_configs(const rd_kafka_ConfigResource_t *res, rn_cli_json_t *j, const char *const *keys,
                          int keys_n) {
    size_t n = 0;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res, &n);
    const rd_kafka_ConfigEntry_t **sorted = calloc(n + 1, sizeof(*sorted));
    if (!sorted) return;
    memcpy(sorted, entries, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), entry_cmp);
    rn_cli_table_t t;
    if (j)
        rn_cli_json_arr(j);
    else
        rn_cli_table_init(&t, 3, "CONFIG", "VALUE", "SOURCE");
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_ConfigEntry_t *e = sorted[i];
        if (!key_wanted(rd_kafka_ConfigEntry_name(e), keys, keys_n)) continue;
        const char *v = rd_kafka_ConfigEntry_value(e);
        bool sensitive = rd_kafka_ConfigEntry_is_sensitive(e);
        if (j) {
            rn_cli_json_obj(j);
            rn_cli_json_key(j, "name");
            rn_cli_json_str(j, rd_kafka_ConfigEntry_name(e));
            rn_cli_json_key(j, "value");
            rn_cli_json_str(j, v);
            rn_cli_json_key(j, "source");
            rn_cli_json_str(j, rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(e)));
            rn_cli_json_key(j, "default");
            rn_cli_json_bool(j, rd_kafka_ConfigEntry_is_default(e));
            rn_cli_json_key(j, "read_only");
            rn_cli_json_bool(j, rd_kafka_ConfigEntry_is_read_only(e));
            rn_cli_json_key(j, "sensitive");
            rn_cli_json_bool(j, sensitive);
            rn_cli_json_obj_end(j);
        } else {
            rn_cli_table_add(&t, "%s", rd_kafka_ConfigEntry_name(e));
            rn_cli_table_add(&t, "%s", sensitive ? "(sensitive)" : v ? v : "(null)");
            rn_cli_table_add(&t, "%s", rn_cli_config_source_word(rd_kafka_ConfigEntry_source(e)));
        }
    }
    if (j) {
        rn_cli_json_arr_end(j);
    } else {
        rn_cli_table_print(&t, stdout);
        rn_cli_table_free(&t);
    }
    free(sorted);
}

int32_t rn_cli_some_broker_id(const struct rd_kafka_metadata *md) {
    if (md->orig_broker_id >= 0) return md->orig_broker_id;
    return md->broker_cnt > 0 ? md->brokers[0].id : -1;
}

/* ---- the merge behind `config set` and `topic alter` ---- */

typedef struct {
    char *name;
    char *value;
    char *old; /* effective value before the change */
    bool set;  /* part of the set to send */
} kv_t;

typedef struct {
    kv_t *v;
    int n, cap;
} kvs_t;

static kv_t *kvs_find(kvs_t *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name)) return &s->v[i];
    return NULL;
}

static kv_t *kvs_get(kvs_t *s, const char *name) {
    kv_t *e = kvs_find(s, name);
    if (e) return e;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        kv_t *v = realloc(s->v, (size_t)cap * sizeof(*v));
        if (!v) return NULL;
        s->v = v;
        s->cap = cap;
    }
    e = &s->v[s->n++];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    return e;
}

static void kv_put(char **slot, const char *v) {
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

static void kvs_free(kvs_t *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].value);
        free(s->v[i].old);
    }
    free(s->v);
}

int rn_cli_config_alter(rn_cli_t *c, rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                        const char *const *set, int set_n, const char *const *del, int del_n, bool dry_run) {
    rn_cli_subject_t subj = {type_word(type), name};
    rd_kafka_ConfigSource_t dyn = type == RD_KAFKA_RESOURCE_TOPIC ? RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG
                                                                  : RD_KAFKA_CONFIG_SOURCE_DYNAMIC_BROKER_CONFIG;
    for (int i = 0; i < set_n; i++)
        for (int k = 0; k < del_n; k++) {
            size_t kl = strlen(del[k]);
            if (!strncmp(set[i], del[k], kl) && set[i][kl] == '=')
                return rn_cli_usage_error(c, "config %s is both set and deleted", del[k]);
        }

    const char *names[1] = {name};
    rd_kafka_event_t *ev = rn_cli_describe_configs(c, rk, type, names, 1);
    if (!ev) return RN_CLI_FAILED;
    size_t nres = 0;
    const rd_kafka_ConfigResource_t **res =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
    if (nres != 1 || rd_kafka_ConfigResource_error(res[0])) {
        int rc = nres != 1 ? rn_cli_fail(c, "the broker answered about %zu resources, not 1", nres)
                           : rn_cli_fail_err(c, rd_kafka_ConfigResource_error(res[0]),
                                             rd_kafka_ConfigResource_error_string(res[0]), subj);
        rd_kafka_event_destroy(ev);
        return rc;
    }

    /* The current dynamic set at this level, and every key's effective value. */
    kvs_t all = {0};
    int rc = RN_CLI_OK;
    size_t n = 0;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res[0], &n);
    for (size_t i = 0; i < n && rc == RN_CLI_OK; i++) {
        const rd_kafka_ConfigEntry_t *e = entries[i];
        kv_t *kv = kvs_get(&all, rd_kafka_ConfigEntry_name(e));
        if (!kv || !kv->name) {
            rc = rn_cli_fail(c, "out of memory");
            break;
        }
        kv_put(&kv->old, rd_kafka_ConfigEntry_value(e));
        const char *dyn_value = NULL;
        bool is_dyn = false;
        if (rd_kafka_ConfigEntry_source(e) == dyn) {
            is_dyn = true;
            dyn_value = rd_kafka_ConfigEntry_value(e);
        } else {
            size_t ns = 0;
            const rd_kafka_ConfigEntry_t **syn = rd_kafka_ConfigEntry_synonyms(e, &ns);
            for (size_t k = 0; k < ns; k++)
                if (rd_kafka_ConfigEntry_source(syn[k]) == dyn &&
                    !strcmp(rd_kafka_ConfigEntry_name(syn[k]), rd_kafka_ConfigEntry_name(e))) {
                    is_dyn = true;
                    dyn_value = rd_kafka_ConfigEntry_value(syn[k]);
                }
        }
        if (!is_dyn) continue;
        if (rd_kafka_ConfigEntry_is_sensitive(e) || !dyn_value) {
            rc = rn_cli_fail(c,
                             "%s %s has a sensitive config %s whose value the broker does not reveal; changing other "
                             "configs would erase it (this client has only AlterConfigs)",
                             subj.kind, name, kv->name);
            break;
        }
        kv->set = true;
        kv_put(&kv->value, dyn_value);
    }

    /* Apply the change. */
    for (int i = 0; i < del_n && rc == RN_CLI_OK; i++) {
        kv_t *kv = kvs_find(&all, del[i]);
        if (!kv || !kv->set) {
            rn_cli_warn(c, "config %s is not set on %s %s; nothing to delete", del[i], subj.kind, name);
            continue;
        }
        kv->set = false;
    }
    kvs_t changes = {0};
    for (int i = 0; i < set_n && rc == RN_CLI_OK; i++) {
        const char *eq = strchr(set[i], '=');
        char *key = strndup(set[i], (size_t)(eq - set[i]));
        kv_t *kv = key ? kvs_get(&all, key) : NULL;
        free(key);
        if (!kv || !kv->name) {
            rc = rn_cli_fail(c, "out of memory");
            break;
        }
        kv->set = true;
        kv_put(&kv->value, eq + 1);
        kv_t *ch = kvs_get(&changes, kv->name);
        if (ch) {
            kv_put(&ch->old, kv->old);
            kv_put(&ch->value, eq + 1);
            ch->set = true;
        }
    }
    for (int i = 0; i < del_n && rc == RN_CLI_OK; i++) {
        kv_t *kv = kvs_find(&all, del[i]);
        if (!kv || kv->set) continue;
        kv_t *ch = kvs_get(&changes, kv->name);
        if (ch) kv_put(&ch->old, kv->old);
    }

    if (rc == RN_CLI_OK && changes.n == 0) {
        rn_cli_warn(c, "nothing to change");
    } else if (rc == RN_CLI_OK) {
        rd_kafka_ConfigResource_t *r = rd_kafka_ConfigResource_new(type, name);
        for (int i = 0; i < all.n; i++)
            if (all.v[i].set) rd_kafka_ConfigResource_set_config(r, all.v[i].name, all.v[i].value);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = rn_cli_admin_options(c, rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
        char err[256];
        if (dry_run) rd_kafka_AdminOptions_set_validate_only(o, 1, err, sizeof(err));
        rd_kafka_AlterConfigs(rk, &r, 1, o, q);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_ConfigResource_destroy(r);
        rd_kafka_event_t *aev = rn_cli_admin_wait(c, rk, q, "AlterConfigs");
        rd_kafka_queue_destroy(q);
        if (!aev) {
            rc = RN_CLI_FAILED;
        } else if (rd_kafka_event_error(aev)) {
            rc = rn_cli_fail_err(c, rd_kafka_event_error(aev), rd_kafka_event_error_string(aev), subj);
        } else {
            size_t na = 0;
            const rd_kafka_ConfigResource_t **ares =
                rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(aev), &na);
            for (size_t i = 0; i < na && rc == RN_CLI_OK; i++)
                if (rd_kafka_ConfigResource_error(ares[i]))
                    rc = rn_cli_fail_err(c, rd_kafka_ConfigResource_error(ares[i]),
                                         rd_kafka_ConfigResource_error_string(ares[i]), subj);
        }
        if (aev) rd_kafka_event_destroy(aev);
        if (rc == RN_CLI_OK && c->json) {
            rn_cli_json_t j;
            rn_cli_json_init(&j, stdout);
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "resource");
            rn_cli_json_str(&j, subj.kind);
            rn_cli_json_key(&j, "name");
            rn_cli_json_str(&j, name);
            rn_cli_json_key(&j, "dry_run");
            rn_cli_json_bool(&j, dry_run);
            rn_cli_json_key(&j, "changes");
            rn_cli_json_arr(&j);
            for (int i = 0; i < changes.n; i++) {
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "name");
                rn_cli_json_str(&j, changes.v[i].name);
                rn_cli_json_key(&j, "old");
                rn_cli_json_str(&j, changes.v[i].old);
                rn_cli_json_key(&j, "new");
                rn_cli_json_str(&j, changes.v[i].set ? changes.v[i].value : NULL);
                rn_cli_json_obj_end(&j);
            }
            rn_cli_json_arr_end(&j);
            rn_cli_json_obj_end(&j);
            rn_cli_json_end(&j);
        } else if (rc == RN_CLI_OK) {
            for (int i = 0; i < changes.n; i++) {
                const kv_t *ch = &changes.v[i];
                printf("%s %s: %s %s -> %s\n", subj.kind, name, ch->name, ch->old ? ch->old : "(unset)",
                       ch->set ? ch->value : "(default)");
            }
            if (dry_run) printf("dry run: the broker accepted the change; nothing was applied\n");
        }
    }
    kvs_free(&changes);
    kvs_free(&all);
    rd_kafka_event_destroy(ev);
    return rc;
}

/* ---- runnel config get|set ---- */

static const char GET_USAGE[] =
    "usage: runnel config get topic TOPIC [KEY...] [options]\n"
    "       runnel config get broker [ID] [KEY...] [options]\n"
    "\n"
    "Show the configs of a topic or a broker with the source of each value\n"
    "(topic, broker (dynamic), cluster default (dynamic), broker config file,\n"
    "default). Without ID, the broker that answers. Without KEY, every config.\n"
    "\n"
    "options:\n"
    "      --non-default                only values that are not defaults\n"
    "      --json                       JSON: [{name, value, source, default, read_only, sensitive}]\n" RN_CLI_COMMON_HELP;

static const char SET_USAGE[] =
    "usage: runnel config set topic TOPIC KEY=VALUE... [--delete KEY]... [options]\n"
    "       runnel config set broker [ID] KEY=VALUE... [--delete KEY]... [options]\n"
    "\n"
    "Change configs of a topic or a broker. Configs not named keep their values;\n"
    "--delete returns a config to its default. Without ID, the broker that answers.\n"
    "\n"
    "options:\n"
    "  -d, --delete KEY                 return KEY to its default (repeatable)\n"
    "      --dry-run                    only ask the broker to validate the change\n"
    "      --json                       JSON: {resource, name, dry_run, changes: [{name, old, new}]}\n" RN_CLI_COMMON_HELP;

#define RN_CLI_ARGS_MAX 256

typedef struct {
    rd_kafka_ResourceType_t type;
    const char *name;
    char id_buf[16];
    const char *rest[RN_CLI_ARGS_MAX];
    int rest_n;
} target_t;

/* Split positionals into TYPE NAME REST...; a broker's NAME is optional (digits). */
static int parse_target(rn_cli_t *c, const char **pos, int n, target_t *t) {
    memset(t, 0, sizeof(*t));
    if (n < 1) return rn_cli_usage_error(c, "say which: topic TOPIC or broker [ID]");
    int i = 1;
    if (!strcmp(pos[0], "topic")) {
        t->type = RD_KAFKA_RESOURCE_TOPIC;
        if (n < 2) return rn_cli_usage_error(c, "which topic?");
        t->name = pos[i++];
    } else if (!strcmp(pos[0], "broker")) {
        t->type = RD_KAFKA_RESOURCE_BROKER;
        int64_t id;
        if (n > 1 && rn_cli_parse_int(pos[1], 0, INT32_MAX, &id)) t->name = pos[i++];
    } else {
        return rn_cli_usage_error(c, "unknown resource type '%s' (topic or broker)", pos[0]);
    }
    for (; i < n; i++) t->rest[t->rest_n++] = pos[i];
    return -1;
}

/* Fill in the broker id when none was given; check it when one was (librdkafka
 * would wait for an unknown broker until the timeout). */
static int resolve_broker(rn_cli_t *c, rd_kafka_t *rk, target_t *t) {
    if (t->type != RD_KAFKA_RESOURCE_BROKER) return RN_CLI_OK;
    const struct rd_kafka_metadata *md = NULL;
    int rc = rn_cli_metadata(c, rk, &md);
    if (rc) return rc;
    if (!t->name) {
        snprintf(t->id_buf, sizeof(t->id_buf), "%d", rn_cli_some_broker_id(md));
        t->name = t->id_buf;
    } else {
        bool found = false;
        char ids[256] = "";
        size_t o = 0;
        for (int i = 0; i < md->broker_cnt; i++) {
            if (md->brokers[i].id == atoi(t->name)) found = true;
            if (o < sizeof(ids))
                o += (size_t)snprintf(ids + o, sizeof(ids) - o, "%s%d", i ? ", " : "", md->brokers[i].id);
        }
        if (!found) rc = rn_cli_fail(c, "broker %s is not in the cluster (brokers: %s)", t->name, ids);
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

static int config_get(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel config get", GET_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *pos[RN_CLI_ARGS_MAX];
    int npos = 0;
    bool non_default = false;
    while (rn_cli_next(&a)) {
        if (a.positional && npos < RN_CLI_ARGS_MAX)
            pos[npos++] = a.arg;
        else if (rn_cli_common(&a, true))
            ;
        else if (rn_cli_is(&a, 0, "non-default"))
            non_default = true;
        else
            rn_cli_unknown(&a);
    }
    target_t t;
    int rc = a.status >= 0 ? a.status : parse_target(&c, pos, npos, &t);
    if (rc >= 0) {
        rn_cli_free(&c);
        return rc;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    rc = rk ? resolve_broker(&c, rk, &t) : RN_CLI_FAILED;
    rd_kafka_event_t *ev = NULL;
    if (rc == RN_CLI_OK) {
        const char *names[1] = {t.name};
        ev = rn_cli_describe_configs(&c, rk, t.type, names, 1);
        if (!ev) rc = RN_CLI_FAILED;
    }
    if (ev) {
        size_t nres = 0;
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
        if (nres != 1) {
            rc = rn_cli_fail(&c, "the broker answered about %zu resources, not 1", nres);
        } else if (rd_kafka_ConfigResource_error(res[0])) {
            rc = rn_cli_fail_err(&c, rd_kafka_ConfigResource_error(res[0]), rd_kafka_ConfigResource_error_string(res[0]),
                                 (rn_cli_subject_t){type_word(t.type), t.name});
        } else {
            /* Keys the broker does not know are worth saying out loud. */
            size_t n = 0;
            const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res[0], &n);
            for (int k = 0; k < t.rest_n && rc == RN_CLI_OK; k++) {
                bool found = false;
                for (size_t i = 0; i < n && !found; i++) found = !strcmp(rd_kafka_ConfigEntry_name(entries[i]), t.rest[k]);
                if (!found) rc = rn_cli_fail(&c, "%s %s has no config named %s", type_word(t.type), t.name, t.rest[k]);
            }
            /* --non-default: name the keys that are not defaults. */
            const char **keys = t.rest;
            int keys_n = t.rest_n;
            const char **nd = NULL;
            if (rc == RN_CLI_OK && non_default) {
                nd = calloc(n + 1, sizeof(*nd));
                keys_n = 0;
                for (size_t i = 0; nd && i < n; i++) {
                    const char *name = rd_kafka_ConfigEntry_name(entries[i]);
                    if (rd_kafka_ConfigEntry_source(entries[i]) != RD_KAFKA_CONFIG_SOURCE_DEFAULT_CONFIG &&
                        (t.rest_n == 0 || key_wanted(name, t.rest, t.rest_n)))
                        nd[keys_n++] = name;
                }
                keys = nd;
                if (keys_n == 0) keys_n = -1; /* nothing matches */
            }
            if (rc == RN_CLI_OK) {
                if (c.json) {
                    rn_cli_json_t j;
                    rn_cli_json_init(&j, stdout);
                    if (keys_n < 0) {
                        rn_cli_json_arr(&j);
                        rn_cli_json_arr_end(&j);
                    } else {
                        rn_cli_print_configs(res[0], &j, keys, keys_n);
                    }
                    rn_cli_json_end(&j);
                } else if (keys_n >= 0) {
                    rn_cli_print_configs(res[0], NULL, keys, keys_n);
                }
            }
            free(nd);
        }
        rd_kafka_event_destroy(ev);
    }
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

static int config_set(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel config set", SET_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *pos[RN_CLI_ARGS_MAX];
    const char *del[RN_CLI_ARGS_MAX];
    int npos = 0, ndel = 0;
    bool dry_run = false;
    while (rn_cli_next(&a)) {
        const char *v;
        if (a.positional && npos < RN_CLI_ARGS_MAX)
            pos[npos++] = a.arg;
        else if (rn_cli_common(&a, true))
            ;
        else if (rn_cli_is(&a, 'd', "delete")) {
            if (rn_cli_value(&a, &v) && ndel < RN_CLI_ARGS_MAX) del[ndel++] = v;
        } else if (rn_cli_is(&a, 0, "dry-run"))
            dry_run = true;
        else
            rn_cli_unknown(&a);
    }
    target_t t;
    int rc = a.status >= 0 ? a.status : parse_target(&c, pos, npos, &t);
    for (int i = 0; rc < 0 && i < t.rest_n; i++) {
        const char *eq = strchr(t.rest[i], '=');
        if (!eq || eq == t.rest[i]) rc = rn_cli_usage_error(&c, "expected KEY=VALUE, got '%s'", t.rest[i]);
    }
    if (rc < 0 && t.rest_n == 0 && ndel == 0) rc = rn_cli_usage_error(&c, "nothing to set: give KEY=VALUE or --delete KEY");
    if (rc >= 0) {
        rn_cli_free(&c);
        return rc;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    rc = rk ? resolve_broker(&c, rk, &t) : RN_CLI_FAILED;
    if (rc == RN_CLI_OK) rc = rn_cli_config_alter(&c, rk, t.type, t.name, t.rest, t.rest_n, del, ndel, dry_run);
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

int rn_cli_config(int argc, char **argv) {
    static const rn_cli_verb_t verbs[] = {
        {"get", "show topic or broker configs and where each value comes from", config_get},
        {"set", "change topic or broker configs", config_set},
        {NULL, NULL, NULL},
    };
    return rn_cli_verbs("runnel config", "Read and change topic and broker configs.", verbs, argc, argv);
}
