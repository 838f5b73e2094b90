/*
 * rn_cli_topic.c — `runnel topic create|list|describe|alter|delete|add-partitions`.
 *
 * Everything goes through librdkafka: Metadata for names, partitions, leaders,
 * replicas and ISR; ListOffsets (query_watermark_offsets) for each partition's
 * log start and high watermark; the admin API for CreateTopics, DeleteTopics,
 * CreatePartitions, DescribeConfigs and AlterConfigs (see rn_cli_config.c for
 * why `alter` reads before it writes).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_cli.h"
#include "rn_cli_common.h"

#define RN_CLI_TOPICS_MAX 256

static rn_cli_subject_t topic_subject(const char *name) {
    return (rn_cli_subject_t){"topic", name};
}

/* Report each topic's outcome of an admin operation; `tolerated` is an error
 * that counts as success (--if-exists, --if-not-exists). */
static int report_topic_results(rn_cli_t *c, const rd_kafka_topic_result_t **tr, size_t n, const char *verb,
                                rd_kafka_resp_err_t tolerated, const char *tolerated_word, const char *tolerated_fmt) {
    int rc = RN_CLI_OK;
    rn_cli_json_t j;
    if (c->json) {
        rn_cli_json_init(&j, stdout);
        rn_cli_json_arr(&j);
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_topic_result_name(tr[i]);
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
        char words[1024] = "";
        bool ok = !err || err == tolerated;
        if (!ok) {
            rn_cli_err_words(c, err, rd_kafka_topic_result_error_string(tr[i]), topic_subject(name), words,
                             sizeof(words));
            rn_cli_fail(c, "%s", words);
            rc = RN_CLI_FAILED;
        }
        if (c->json) {
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "topic");
            rn_cli_json_str(&j, name);
            rn_cli_json_key(&j, "result");
            rn_cli_json_str(&j, !ok ? "failed" : err ? tolerated_word : verb);
            rn_cli_json_key(&j, "error");
            rn_cli_json_str(&j, ok ? NULL : words);
            rn_cli_json_obj_end(&j);
        } else if (ok) {
            if (err)
                printf(tolerated_fmt, name);
            else
                printf("%s topic %s\n", verb, name);
        }
    }
    if (c->json) {
        rn_cli_json_arr_end(&j);
        rn_cli_json_end(&j);
    }
    return rc;
}

/* ---- create ---- */

static const char CREATE_USAGE[] =
    "usage: runnel topic create TOPIC... [-p PARTITIONS] [-r REPLICAS] [-c KEY=VALUE]... [options]\n"
    "\n"
    "Create topics.\n"
    "\n"
    "options:\n"
    "  -p, --partitions N               partitions per topic (default: the broker's num.partitions)\n"
    "  -r, --replication-factor N       replicas per partition (default: the broker's default)\n"
    "  -c, --config KEY=VALUE           a topic config, e.g. -c retention.ms=86400000 (repeatable)\n"
    "      --if-not-exists              succeed when the topic already exists\n"
    "      --dry-run                    only ask the broker to validate\n"
    "      --json                       JSON: [{topic, result, error}]\n" RN_CLI_COMMON_HELP;

static int topic_create(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel topic create", CREATE_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *names[RN_CLI_TOPICS_MAX];
    const char *configs[RN_CLI_TOPICS_MAX];
    int nnames = 0, nconfigs = 0;
    int64_t partitions = -1, rf = -1;
    bool if_not_exists = false, dry_run = false;
    while (rn_cli_next(&a)) {
        const char *v;
        if (a.positional) {
            if (nnames < RN_CLI_TOPICS_MAX) names[nnames++] = a.arg;
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 'p', "partitions")) {
            rn_cli_int(&a, 1, INT32_MAX, &partitions);
        } else if (rn_cli_is(&a, 'r', "replication-factor")) {
            rn_cli_int(&a, 1, INT16_MAX, &rf);
        } else if (rn_cli_is(&a, 'c', "config")) {
            if (!rn_cli_value(&a, &v)) continue;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                a.status = rn_cli_usage_error(&c, "option '%s' needs KEY=VALUE, got '%s'", a.arg, v);
            else if (nconfigs < RN_CLI_TOPICS_MAX)
                configs[nconfigs++] = v;
        } else if (rn_cli_is(&a, 0, "if-not-exists")) {
            if_not_exists = true;
        } else if (rn_cli_is(&a, 0, "dry-run")) {
            dry_run = true;
        } else {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && nnames == 0) a.status = rn_cli_usage_error(&c, "which topic? (give at least one name)");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    if (!rk) {
        rn_cli_free(&c);
        return RN_CLI_FAILED;
    }
    int rc = RN_CLI_OK;
    rd_kafka_NewTopic_t *nt[RN_CLI_TOPICS_MAX];
    for (int i = 0; i < nnames; i++) {
        char err[512];
        nt[i] = rd_kafka_NewTopic_new(names[i], (int)partitions, (int)rf, err, sizeof(err));
        if (!nt[i]) {
            rc = rn_cli_fail(&c, "cannot create topic %s: %s", names[i], err);
            for (int k = 0; k < i; k++) rd_kafka_NewTopic_destroy(nt[k]);
            break;
        }
        for (int k = 0; k < nconfigs; k++) {
            const char *eq = strchr(configs[k], '=');
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - configs[k]), configs[k]);
            rd_kafka_NewTopic_set_config(nt[i], key, eq + 1);
        }
    }
    if (rc == RN_CLI_OK) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = rn_cli_admin_options(&c, rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        char err[256];
        if (dry_run) rd_kafka_AdminOptions_set_validate_only(o, 1, err, sizeof(err));
        rd_kafka_CreateTopics(rk, nt, (size_t)nnames, o, q);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_NewTopic_destroy_array(nt, (size_t)nnames);
        rd_kafka_event_t *ev = rn_cli_admin_wait(&c, rk, q, "CreateTopics");
        rd_kafka_queue_destroy(q);
        if (!ev) {
            rc = RN_CLI_FAILED;
        } else if (rd_kafka_event_error(ev)) {
            rc = rn_cli_fail_err(&c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev),
                                 topic_subject(nnames == 1 ? names[0] : ""));
        } else {
            size_t n = 0;
            const rd_kafka_topic_result_t **tr =
                rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
            rc = report_topic_results(&c, tr, n, dry_run ? "would create" : "created",
                                      if_not_exists ? RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS : RD_KAFKA_RESP_ERR_NO_ERROR,
                                      "exists", "topic %s already exists\n");
        }
        if (ev) rd_kafka_event_destroy(ev);
    }
    rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- list ---- */

static const char LIST_USAGE[] =
    "usage: runnel topic list [options]\n"
    "\n"
    "List topics with their partition count and replication factor. Internal\n"
    "topics (names starting with __) are shown with --all.\n"
    "\n"
    "options:\n"
    "  -a, --all                        include internal topics\n"
    "      --json                       JSON: [{name, partitions, replication_factor}]\n" RN_CLI_COMMON_HELP;

static int md_topic_cmp(const void *a, const void *b) {
    return strcmp((*(const struct rd_kafka_metadata_topic *const *)a)->topic,
                  (*(const struct rd_kafka_metadata_topic *const *)b)->topic);
}

static int md_rf(const struct rd_kafka_metadata_topic *t) {
    return t->partition_cnt > 0 ? t->partitions[0].replica_cnt : 0;
}

static int topic_list(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel topic list", LIST_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    bool all = false;
    while (rn_cli_next(&a)) {
        if (rn_cli_common(&a, true))
            ;
        else if (rn_cli_is(&a, 'a', "all"))
            all = true;
        else
            rn_cli_unknown(&a);
    }
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    if (rc == RN_CLI_OK) {
        const struct rd_kafka_metadata_topic **v = calloc((size_t)md->topic_cnt + 1, sizeof(*v));
        int n = 0;
        for (int i = 0; v && i < md->topic_cnt; i++)
            if (all || strncmp(md->topics[i].topic, "__", 2)) v[n++] = &md->topics[i];
        if (v) qsort(v, (size_t)n, sizeof(*v), md_topic_cmp);
        if (c.json) {
            rn_cli_json_t j;
            rn_cli_json_init(&j, stdout);
            rn_cli_json_arr(&j);
            for (int i = 0; i < n; i++) {
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "name");
                rn_cli_json_str(&j, v[i]->topic);
                rn_cli_json_key(&j, "partitions");
                rn_cli_json_int(&j, v[i]->partition_cnt);
                rn_cli_json_key(&j, "replication_factor");
                rn_cli_json_int(&j, md_rf(v[i]));
                rn_cli_json_obj_end(&j);
            }
            rn_cli_json_arr_end(&j);
            rn_cli_json_end(&j);
        } else {
            rn_cli_table_t t;
            rn_cli_table_init(&t, 3, "TOPIC", "PARTITIONS", "REPLICAS");
            for (int i = 0; i < n; i++) {
                rn_cli_table_add(&t, "%s", v[i]->topic);
                rn_cli_table_add(&t, "%d", v[i]->partition_cnt);
                rn_cli_table_add(&t, "%d", md_rf(v[i]));
            }
            rn_cli_table_print(&t, stdout);
            rn_cli_table_free(&t);
        }
        free(v);
        rd_kafka_metadata_destroy(md);
    }
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- describe ---- */

static const char DESCRIBE_USAGE[] =
    "usage: runnel topic describe TOPIC... [options]\n"
    "\n"
    "Show a topic's partitions (leader, replicas, in-sync replicas, log start\n"
    "offset, high watermark) and its configs with the source of each value.\n"
    "\n"
    "options:\n"
    "      --no-configs                 leave out the configs\n"
    "      --json                       JSON: [{name, partitions: [{partition, leader, replicas, isr,\n"
    "                                   log_start_offset, high_watermark}], configs: [...]}]\n" RN_CLI_COMMON_HELP;

static void ids(char *buf, size_t len, const int32_t *v, int n) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o < len; i++) o += (size_t)snprintf(buf + o, len - o, "%s%d", i ? "," : "", v[i]);
}

static void json_ids(rn_cli_json_t *j, const int32_t *v, int n) {
    rn_cli_json_arr(j);
    for (int i = 0; i < n; i++) rn_cli_json_int(j, v[i]);
    rn_cli_json_arr_end(j);
}

static int topic_describe(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel topic describe", DESCRIBE_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *names[RN_CLI_TOPICS_MAX];
    int nnames = 0;
    bool configs = true;
    while (rn_cli_next(&a)) {
        if (a.positional) {
            if (nnames < RN_CLI_TOPICS_MAX) names[nnames++] = a.arg;
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 0, "no-configs")) {
            configs = false;
        } else {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && nnames == 0) a.status = rn_cli_usage_error(&c, "which topic?");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    const struct rd_kafka_metadata_topic *mt[RN_CLI_TOPICS_MAX];
    for (int i = 0; rc == RN_CLI_OK && i < nnames; i++) {
        mt[i] = rn_cli_md_topic(md, names[i]);
        if (!mt[i]) rc = rn_cli_fail_err(&c, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, topic_subject(names[i]));
        else if (mt[i]->err)
            rc = rn_cli_fail_err(&c, mt[i]->err, NULL, topic_subject(names[i]));
    }
    rd_kafka_event_t *cev = NULL;
    const rd_kafka_ConfigResource_t **cres = NULL;
    size_t ncres = 0;
    if (rc == RN_CLI_OK && configs) {
        cev = rn_cli_describe_configs(&c, rk, RD_KAFKA_RESOURCE_TOPIC, names, nnames);
        if (!cev) rc = RN_CLI_FAILED;
        else cres = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(cev), &ncres);
    }
    rn_cli_json_t j;
    rn_cli_json_init(&j, stdout);
    if (c.json) rn_cli_json_arr(&j);
    for (int i = 0; rc == RN_CLI_OK && i < nnames; i++) {
        const struct rd_kafka_metadata_topic *t = mt[i];
        int np = t->partition_cnt;
        int64_t *lo = calloc((size_t)np + 1, sizeof(*lo)), *hi = calloc((size_t)np + 1, sizeof(*hi));
        rd_kafka_resp_err_t *oerr = calloc((size_t)np + 1, sizeof(*oerr));
        if (!lo || !hi || !oerr) {
            free(lo);
            free(hi);
            free(oerr);
            rc = rn_cli_fail(&c, "out of memory");
            break;
        }
        for (int p = 0; p < np; p++)
            oerr[p] = rd_kafka_query_watermark_offsets(rk, t->topic, t->partitions[p].id, &lo[p], &hi[p], c.timeout_ms);
        const rd_kafka_ConfigResource_t *cr = NULL;
        for (size_t k = 0; k < ncres; k++)
            if (!strcmp(rd_kafka_ConfigResource_name(cres[k]), t->topic)) cr = cres[k];
        if (c.json) {
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "name");
            rn_cli_json_str(&j, t->topic);
            rn_cli_json_key(&j, "replication_factor");
            rn_cli_json_int(&j, md_rf(t));
            rn_cli_json_key(&j, "partitions");
            rn_cli_json_arr(&j);
            for (int p = 0; p < np; p++) {
                const struct rd_kafka_metadata_partition *mp = &t->partitions[p];
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "partition");
                rn_cli_json_int(&j, mp->id);
                rn_cli_json_key(&j, "leader");
                rn_cli_json_int(&j, mp->leader);
                rn_cli_json_key(&j, "replicas");
                json_ids(&j, mp->replicas, mp->replica_cnt);
                rn_cli_json_key(&j, "isr");
                json_ids(&j, mp->isrs, mp->isr_cnt);
                rn_cli_json_key(&j, "log_start_offset");
                if (oerr[p]) rn_cli_json_null(&j);
                else rn_cli_json_int(&j, lo[p]);
                rn_cli_json_key(&j, "high_watermark");
                if (oerr[p]) rn_cli_json_null(&j);
                else rn_cli_json_int(&j, hi[p]);
                rn_cli_json_key(&j, "error");
                rn_cli_json_str(&j, mp->err ? rd_kafka_err2name(mp->err) : oerr[p] ? rd_kafka_err2name(oerr[p]) : NULL);
                rn_cli_json_obj_end(&j);
            }
            rn_cli_json_arr_end(&j);
            if (cr) {
                rn_cli_json_key(&j, "configs");
                if (rd_kafka_ConfigResource_error(cr)) rn_cli_json_null(&j);
                else rn_cli_print_configs(cr, &j, NULL, 0);
            }
            rn_cli_json_obj_end(&j);
        } else {
            if (i > 0) printf("\n");
            printf("topic %s: %d partition%s, replication factor %d\n\n", t->topic, np, np == 1 ? "" : "s", md_rf(t));
            rn_cli_table_t tb;
            rn_cli_table_init(&tb, 7, "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK", "MESSAGES");
            for (int p = 0; p < np; p++) {
                const struct rd_kafka_metadata_partition *mp = &t->partitions[p];
                char rep[256], isr[256];
                ids(rep, sizeof(rep), mp->replicas, mp->replica_cnt);
                ids(isr, sizeof(isr), mp->isrs, mp->isr_cnt);
                rn_cli_table_add(&tb, "%d", mp->id);
                if (mp->err) rn_cli_table_add(&tb, "%d (%s)", mp->leader, rd_kafka_err2name(mp->err));
                else rn_cli_table_add(&tb, "%d", mp->leader);
                rn_cli_table_add(&tb, "%s", rep);
                rn_cli_table_add(&tb, "%s", isr);
                if (oerr[p]) {
                    rn_cli_table_add(&tb, "? (%s)", rd_kafka_err2name(oerr[p]));
                    rn_cli_table_add(&tb, "?");
                    rn_cli_table_add(&tb, "?");
                } else {
                    rn_cli_table_add(&tb, "%lld", (long long)lo[p]);
                    rn_cli_table_add(&tb, "%lld", (long long)hi[p]);
                    rn_cli_table_add(&tb, "%lld", (long long)(hi[p] - lo[p]));
                }
            }
            rn_cli_table_print(&tb, stdout);
            rn_cli_table_free(&tb);
            if (cr && rd_kafka_ConfigResource_error(cr)) {
                char words[1024];
                rn_cli_err_words(&c, rd_kafka_ConfigResource_error(cr), rd_kafka_ConfigResource_error_string(cr),
                                 topic_subject(t->topic), words, sizeof(words));
                printf("\nconfigs: unavailable (%s)\n", words);
            } else if (cr) {
                printf("\n");
                rn_cli_print_configs(cr, NULL, NULL, 0);
            }
        }
        free(lo);
        free(hi);
        free(oerr);
    }
    if (rc == RN_CLI_OK && c.json) {
        rn_cli_json_arr_end(&j);
        rn_cli_json_end(&j);
    } else {
        rn_cli_json_discard(&j);
    }
    if (cev) rd_kafka_event_destroy(cev);
    if (md) rd_kafka_metadata_destroy(md);
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- alter ---- */

static const char ALTER_USAGE[] =
    "usage: runnel topic alter TOPIC -c KEY=VALUE... [-d KEY]... [options]\n"
    "\n"
    "Change a topic's configs; configs not named keep their values.\n"
    "\n"
    "options:\n"
    "  -c, --config KEY=VALUE           set a config (repeatable)\n"
    "  -d, --delete-config KEY          return a config to its default (repeatable)\n"
    "      --dry-run                    only ask the broker to validate\n"
    "      --json                       JSON: {resource, name, dry_run, changes: [{name, old, new}]}\n" RN_CLI_COMMON_HELP;

static int topic_alter(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel topic alter", ALTER_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *name = NULL;
    const char *set[RN_CLI_TOPICS_MAX], *del[RN_CLI_TOPICS_MAX];
    int nset = 0, ndel = 0;
    bool dry_run = false;
    while (rn_cli_next(&a)) {
        const char *v;
        if (a.positional && !name) {
            name = a.arg;
        } else if (a.positional) {
            rn_cli_unknown(&a);
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 'c', "config")) {
            if (!rn_cli_value(&a, &v)) continue;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                a.status = rn_cli_usage_error(&c, "option '%s' needs KEY=VALUE, got '%s'", a.arg, v);
            else if (nset < RN_CLI_TOPICS_MAX)
                set[nset++] = v;
        } else if (rn_cli_is(&a, 'd', "delete-config")) {
            if (rn_cli_value(&a, &v) && ndel < RN_CLI_TOPICS_MAX) del[ndel++] = v;
        } else if (rn_cli_is(&a, 0, "dry-run")) {
            dry_run = true;
        } else {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && !name) a.status = rn_cli_usage_error(&c, "which topic?");
    if (a.status < 0 && nset + ndel == 0) a.status = rn_cli_usage_error(&c, "nothing to change: give -c KEY=VALUE or -d KEY");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    int rc = rk ? rn_cli_config_alter(&c, rk, RD_KAFKA_RESOURCE_TOPIC, name, set, nset, del, ndel, dry_run)
                : RN_CLI_FAILED;
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- delete ---- */

static const char DELETE_USAGE[] =
    "usage: runnel topic delete TOPIC... [options]\n"
    "\n"
    "Delete topics and all their messages.\n"
    "\n"
    "options:\n"
    "      --if-exists                  succeed when the topic does not exist\n"
    "      --json                       JSON: [{topic, result, error}]\n" RN_CLI_COMMON_HELP;

static int topic_delete(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel topic delete", DELETE_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *names[RN_CLI_TOPICS_MAX];
    int nnames = 0;
    bool if_exists = false;
    while (rn_cli_next(&a)) {
        if (a.positional) {
            if (nnames < RN_CLI_TOPICS_MAX) names[nnames++] = a.arg;
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 0, "if-exists")) {
            if_exists = true;
        } else {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && nnames == 0) a.status = rn_cli_usage_error(&c, "which topic?");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    if (!rk) {
        rn_cli_free(&c);
        return RN_CLI_FAILED;
    }
    rd_kafka_DeleteTopic_t *dt[RN_CLI_TOPICS_MAX];
    for (int i = 0; i < nnames; i++) dt[i] = rd_kafka_DeleteTopic_new(names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rn_cli_admin_options(&c, rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(rk, dt, (size_t)nnames, o, q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteTopic_destroy_array(dt, (size_t)nnames);
    rd_kafka_event_t *ev = rn_cli_admin_wait(&c, rk, q, "DeleteTopics");
    rd_kafka_queue_destroy(q);
    int rc = RN_CLI_OK;
    if (!ev) {
        rc = RN_CLI_FAILED;
    } else if (rd_kafka_event_error(ev)) {
        rc = rn_cli_fail_err(&c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev),
                             topic_subject(nnames == 1 ? names[0] : ""));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        rc = report_topic_results(&c, tr, n, "deleted",
                                  if_exists ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : RD_KAFKA_RESP_ERR_NO_ERROR,
                                  "absent", "topic %s does not exist; nothing to delete\n");
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- add-partitions ---- */

static const char ADDP_USAGE[] =
    "usage: runnel topic add-partitions TOPIC (-n COUNT | --total N) [options]\n"
    "\n"
    "Add partitions to a topic. Existing messages stay where they are, so keys\n"
    "map to different partitions afterwards.\n"
    "\n"
    "options:\n"
    "  -n, --num COUNT                  add COUNT partitions\n"
    "      --total N                    grow the topic to N partitions in all\n"
    "      --dry-run                    only ask the broker to validate\n"
    "      --json                       JSON: {topic, old_partitions, partitions, dry_run}\n" RN_CLI_COMMON_HELP;

static int topic_add_partitions(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel topic add-partitions", ADDP_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *name = NULL;
    int64_t add = -1, total = -1;
    bool dry_run = false;
    while (rn_cli_next(&a)) {
        if (a.positional && !name) {
            name = a.arg;
        } else if (a.positional) {
            rn_cli_unknown(&a);
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 'n', "num")) {
            rn_cli_int(&a, 1, INT32_MAX, &add);
        } else if (rn_cli_is(&a, 0, "total")) {
            rn_cli_int(&a, 1, INT32_MAX, &total);
        } else if (rn_cli_is(&a, 0, "dry-run")) {
            dry_run = true;
        } else {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && !name) a.status = rn_cli_usage_error(&c, "which topic?");
    if (a.status < 0 && (add < 0) == (total < 0)) a.status = rn_cli_usage_error(&c, "give exactly one of -n COUNT and --total N");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    const struct rd_kafka_metadata_topic *t = rc == RN_CLI_OK ? rn_cli_md_topic(md, name) : NULL;
    if (rc == RN_CLI_OK && !t) rc = rn_cli_fail_err(&c, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, topic_subject(name));
    int old = t ? t->partition_cnt : 0;
    int64_t want = add > 0 ? old + add : total;
    if (rc == RN_CLI_OK && want > INT32_MAX) rc = rn_cli_fail(&c, "topic %s cannot have %lld partitions", name, (long long)want);
    if (rc == RN_CLI_OK && want <= old)
        rc = rn_cli_fail(&c, "topic %s already has %d partitions; --total must be more (partitions cannot be removed)",
                         name, old);
    if (rc == RN_CLI_OK) {
        char err[512];
        rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(name, (size_t)want, err, sizeof(err));
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = rn_cli_admin_options(&c, rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
        if (dry_run) rd_kafka_AdminOptions_set_validate_only(o, 1, err, sizeof(err));
        rd_kafka_CreatePartitions(rk, &np, 1, o, q);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_NewPartitions_destroy(np);
        rd_kafka_event_t *ev = rn_cli_admin_wait(&c, rk, q, "CreatePartitions");
        rd_kafka_queue_destroy(q);
        if (!ev) {
            rc = RN_CLI_FAILED;
        } else if (rd_kafka_event_error(ev)) {
            rc = rn_cli_fail_err(&c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), topic_subject(name));
        } else {
            size_t n = 0;
            const rd_kafka_topic_result_t **tr =
                rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
            for (size_t i = 0; i < n && rc == RN_CLI_OK; i++)
                if (rd_kafka_topic_result_error(tr[i]))
                    rc = rn_cli_fail_err(&c, rd_kafka_topic_result_error(tr[i]), rd_kafka_topic_result_error_string(tr[i]),
                                         topic_subject(name));
        }
        if (ev) rd_kafka_event_destroy(ev);
        if (rc == RN_CLI_OK && c.json) {
            rn_cli_json_t j;
            rn_cli_json_init(&j, stdout);
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "topic");
            rn_cli_json_str(&j, name);
            rn_cli_json_key(&j, "old_partitions");
            rn_cli_json_int(&j, old);
            rn_cli_json_key(&j, "partitions");
            rn_cli_json_int(&j, want);
            rn_cli_json_key(&j, "dry_run");
            rn_cli_json_bool(&j, dry_run);
            rn_cli_json_obj_end(&j);
            rn_cli_json_end(&j);
        } else if (rc == RN_CLI_OK) {
            printf("topic %s %s %lld partitions (had %d)\n", name, dry_run ? "would have" : "now has", (long long)want, old);
        }
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

int rn_cli_topic(int argc, char **argv) {
    static const rn_cli_verb_t verbs[] = {
        {"create", "create topics", topic_create},
        {"list", "list topics", topic_list},
        {"describe", "partitions, leaders, replicas, ISR, offsets and configs", topic_describe},
        {"alter", "change a topic's configs", topic_alter},
        {"delete", "delete topics", topic_delete},
        {"add-partitions", "add partitions to a topic", topic_add_partitions},
        {NULL, NULL, NULL},
    };
    return rn_cli_verbs("runnel topic", "Manage topics.", verbs, argc, argv);
}
