/*
 * rn_cli_group.c — `runnel group list|describe|delete|reset-offsets`.
 *
 * Built on librdkafka 2.0.2's admin API: ListConsumerGroups (ListGroups),
 * DescribeConsumerGroups (FindCoordinator + DescribeGroups),
 * ListConsumerGroupOffsets (OffsetFetch), AlterConsumerGroupOffsets
 * (OffsetCommit with no member: the group must have no active members) and
 * DeleteGroups. Lag is a partition's high watermark (ListOffsets) minus the
 * group's committed offset.
 *
 * DescribeGroups answers an unknown group with the state Dead rather than an
 * error, so "does not exist" means: Dead, no members, no committed offsets.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_cli.h"
#include "rn_cli_common.h"

#define RN_CLI_GROUPS_MAX 256
#define RN_CLI_RESET_TOPICS_MAX 256

static rn_cli_subject_t group_subject(const char *name) {
    return (rn_cli_subject_t){"group", name};
}

static const char *state_word(rd_kafka_consumer_group_state_t s) {
    return rd_kafka_consumer_group_state_name(s);
}

static int tp_cmp(const void *a, const void *b) {
    const rd_kafka_topic_partition_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* ---- list ---- */

static const char LIST_USAGE[] =
    "usage: runnel group list [options]\n"
    "\n"
    "List consumer groups with their state.\n"
    "\n"
    "options:\n"
    "      --json                       JSON: [{group, state, simple}]\n" RN_CLI_COMMON_HELP;

typedef struct {
    const char *id;
    const char *state;
    bool simple;
} listing_t;

static int listing_cmp(const void *a, const void *b) {
    return strcmp(((const listing_t *)a)->id, ((const listing_t *)b)->id);
}

static int group_list(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel group list", LIST_USAGE);
    int status = rn_cli_common_only(&c, argc, argv);
    if (status >= 0) return status;
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_event_t *ev = NULL;
    if (rc == RN_CLI_OK) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = rn_cli_admin_options(&c, rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
        rd_kafka_ListConsumerGroups(rk, o, q);
        rd_kafka_AdminOptions_destroy(o);
        ev = rn_cli_admin_wait(&c, rk, q, "ListGroups");
        rd_kafka_queue_destroy(q);
        if (!ev) rc = RN_CLI_FAILED;
        else if (rd_kafka_event_error(ev))
            rc = rn_cli_fail_err(&c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), group_subject(""));
    }
    if (rc == RN_CLI_OK) {
        const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
        size_t nerr = 0, n = 0;
        const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
        for (size_t i = 0; i < nerr; i++) {
            char words[1024];
            rn_cli_err_words(&c, rd_kafka_error_code(errs[i]), rd_kafka_error_string(errs[i]), group_subject(""), words,
                             sizeof(words));
            rn_cli_warn(&c, "a broker could not list its groups: %s", words);
        }
        if (nerr) rc = RN_CLI_FAILED;
        const rd_kafka_ConsumerGroupListing_t **gl = rd_kafka_ListConsumerGroups_result_valid(res, &n);
        listing_t *v = calloc(n + 1, sizeof(*v));
        for (size_t i = 0; v && i < n; i++) {
            v[i].id = rd_kafka_ConsumerGroupListing_group_id(gl[i]);
            v[i].state = state_word(rd_kafka_ConsumerGroupListing_state(gl[i]));
            v[i].simple = rd_kafka_ConsumerGroupListing_is_simple_consumer_group(gl[i]);
        }
        if (v) qsort(v, n, sizeof(*v), listing_cmp);
        if (c.json) {
            rn_cli_json_t j;
            rn_cli_json_init(&j, stdout);
            rn_cli_json_arr(&j);
            for (size_t i = 0; v && i < n; i++) {
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "group");
                rn_cli_json_str(&j, v[i].id);
                rn_cli_json_key(&j, "state");
                rn_cli_json_str(&j, v[i].state);
                rn_cli_json_key(&j, "simple");
                rn_cli_json_bool(&j, v[i].simple);
                rn_cli_json_obj_end(&j);
            }
            rn_cli_json_arr_end(&j);
            rn_cli_json_end(&j);
        } else {
            rn_cli_table_t t;
            rn_cli_table_init(&t, 2, "GROUP", "STATE");
            for (size_t i = 0; v && i < n; i++) {
                rn_cli_table_add(&t, "%s", v[i].id);
                rn_cli_table_add(&t, "%s", v[i].state);
            }
            rn_cli_table_print(&t, stdout);
            rn_cli_table_free(&t);
        }
        free(v);
    }
    if (ev) rd_kafka_event_destroy(ev);
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- shared: describe one group, fetch its committed offsets ---- */

/* DescribeConsumerGroups for one group; the event (destroy it) and the description, or NULL after printing why. */
static rd_kafka_event_t *describe_group(rn_cli_t *c, rd_kafka_t *rk, const char *group,
                                        const rd_kafka_ConsumerGroupDescription_t **out) {
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rn_cli_admin_options(c, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    const char *groups[1] = {group};
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, o, q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_event_t *ev = rn_cli_admin_wait(c, rk, q, "DescribeGroups");
    rd_kafka_queue_destroy(q);
    if (!ev) return NULL;
    if (rd_kafka_event_error(ev)) {
        rn_cli_fail_err(c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), group_subject(group));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **d =
        rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    if (n != 1) {
        rn_cli_fail(c, "the broker described %zu groups, not 1", n);
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    const rd_kafka_error_t *e = rd_kafka_ConsumerGroupDescription_error(d[0]);
    if (e) {
        rn_cli_fail_err(c, rd_kafka_error_code(e), rd_kafka_error_string(e), group_subject(group));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    *out = d[0];
    return ev;
}

/* Committed offsets of a group: for `want` partitions, or all of them when want is NULL. */
static rd_kafka_topic_partition_list_t *committed_offsets(rn_cli_t *c, rd_kafka_t *rk, const char *group,
                                                          const rd_kafka_topic_partition_list_t *want) {
    rd_kafka_ListConsumerGroupOffsets_t *l = rd_kafka_ListConsumerGroupOffsets_new(group, want);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = rn_cli_admin_options(c, rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(rk, &l, 1, o, q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ListConsumerGroupOffsets_destroy(l);
    rd_kafka_event_t *ev = rn_cli_admin_wait(c, rk, q, "OffsetFetch");
    rd_kafka_queue_destroy(q);
    if (!ev) return NULL;
    rd_kafka_topic_partition_list_t *out = NULL;
    if (rd_kafka_event_error(ev)) {
        rn_cli_fail_err(c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), group_subject(group));
    } else {
        size_t n = 0;
        const rd_kafka_group_result_t **gr =
            rd_kafka_ListConsumerGroupOffsets_result_groups(rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
        const rd_kafka_error_t *e = n == 1 ? rd_kafka_group_result_error(gr[0]) : NULL;
        if (n != 1)
            rn_cli_fail(c, "the broker answered about %zu groups, not 1", n);
        else if (e)
            rn_cli_fail_err(c, rd_kafka_error_code(e), rd_kafka_error_string(e), group_subject(group));
        else
            out = rd_kafka_topic_partition_list_copy(rd_kafka_group_result_partitions(gr[0]));
    }
    rd_kafka_event_destroy(ev);
    return out;
}

/* ---- describe ---- */

static const char DESCRIBE_USAGE[] =
    "usage: runnel group describe GROUP... [options]\n"
    "\n"
    "Show a group's state, members and their partitions, and per partition the\n"
    "committed offset, the end of the log (high watermark) and the lag between.\n"
    "\n"
    "options:\n"
    "      --json                       JSON: [{group, state, coordinator, assignor, members: [{member_id,\n"
    "                                   client_id, host, assignment: [{topic, partition}]}], offsets:\n"
    "                                   [{topic, partition, committed, end, lag, member_id}]}]\n" RN_CLI_COMMON_HELP;

typedef struct {
    char *topic;
    int32_t partition;
    int64_t committed; /* -1: none */
    int64_t end;       /* -1: unknown */
    const char *member; /* member id, client id, host of the owner, or NULL */
    const char *client;
    const char *host;
} row_t;

static int row_cmp(const void *a, const void *b) {
    const row_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static row_t *row_get(row_t **rows, int *n, int *cap, const char *topic, int32_t partition) {
    for (int i = 0; i < *n; i++)
        if ((*rows)[i].partition == partition && !strcmp((*rows)[i].topic, topic)) return &(*rows)[i];
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        row_t *v = realloc(*rows, (size_t)nc * sizeof(*v));
        if (!v) return NULL;
        *rows = v;
        *cap = nc;
    }
    row_t *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof(*r));
    r->topic = strdup(topic);
    r->partition = partition;
    r->committed = -1;
    r->end = -1;
    return r;
}

static int describe_one(rn_cli_t *c, rd_kafka_t *rk, const char *group, rn_cli_json_t *j, bool first) {
    const rd_kafka_ConsumerGroupDescription_t *d = NULL;
    rd_kafka_event_t *ev = describe_group(c, rk, group, &d);
    if (!ev) return RN_CLI_FAILED;
    rd_kafka_topic_partition_list_t *committed = committed_offsets(c, rk, group, NULL);
    if (!committed) {
        rd_kafka_event_destroy(ev);
        return RN_CLI_FAILED;
    }
    row_t *rows = NULL;
    int nrows = 0, cap = 0;
    for (int i = 0; i < committed->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &committed->elems[i];
        if (tp->offset < 0 && tp->err) continue;
        row_t *r = row_get(&rows, &nrows, &cap, tp->topic, tp->partition);
        if (r) r->committed = tp->offset >= 0 ? tp->offset : -1;
    }
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(d);
    for (size_t m = 0; m < nmembers; m++) {
        const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(d, m);
        const rd_kafka_topic_partition_list_t *as =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(md));
        for (int i = 0; as && i < as->cnt; i++) {
            row_t *r = row_get(&rows, &nrows, &cap, as->elems[i].topic, as->elems[i].partition);
            if (!r) continue;
            r->member = rd_kafka_MemberDescription_consumer_id(md);
            r->client = rd_kafka_MemberDescription_client_id(md);
            r->host = rd_kafka_MemberDescription_host(md);
        }
    }
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(d);
    int rc = RN_CLI_OK;
    if (state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD && nmembers == 0 && nrows == 0)
        rc = rn_cli_fail_err(c, RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND, NULL, group_subject(group));
    for (int i = 0; rc == RN_CLI_OK && i < nrows; i++) {
        int64_t lo, hi;
        if (!rd_kafka_query_watermark_offsets(rk, rows[i].topic, rows[i].partition, &lo, &hi, c->timeout_ms))
            rows[i].end = hi;
    }
    if (rows) qsort(rows, (size_t)nrows, sizeof(*rows), row_cmp);
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    if (rc == RN_CLI_OK && j) {
        rn_cli_json_obj(j);
        rn_cli_json_key(j, "group");
        rn_cli_json_str(j, group);
        rn_cli_json_key(j, "state");
        rn_cli_json_str(j, state_word(state));
        rn_cli_json_key(j, "coordinator");
        if (coord) rn_cli_json_int(j, rd_kafka_Node_id(coord));
        else rn_cli_json_null(j);
        rn_cli_json_key(j, "assignor");
        rn_cli_json_str(j, assignor && *assignor ? assignor : NULL);
        rn_cli_json_key(j, "members");
        rn_cli_json_arr(j);
        for (size_t m = 0; m < nmembers; m++) {
            const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(d, m);
            const rd_kafka_topic_partition_list_t *as =
                rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(md));
            rn_cli_json_obj(j);
            rn_cli_json_key(j, "member_id");
            rn_cli_json_str(j, rd_kafka_MemberDescription_consumer_id(md));
            rn_cli_json_key(j, "client_id");
            rn_cli_json_str(j, rd_kafka_MemberDescription_client_id(md));
            rn_cli_json_key(j, "host");
            rn_cli_json_str(j, rd_kafka_MemberDescription_host(md));
            rn_cli_json_key(j, "assignment");
            rn_cli_json_arr(j);
            for (int i = 0; as && i < as->cnt; i++) {
                rn_cli_json_obj(j);
                rn_cli_json_key(j, "topic");
                rn_cli_json_str(j, as->elems[i].topic);
                rn_cli_json_key(j, "partition");
                rn_cli_json_int(j, as->elems[i].partition);
                rn_cli_json_obj_end(j);
            }
            rn_cli_json_arr_end(j);
            rn_cli_json_obj_end(j);
        }
        rn_cli_json_arr_end(j);
        rn_cli_json_key(j, "offsets");
        rn_cli_json_arr(j);
        for (int i = 0; i < nrows; i++) {
            const row_t *r = &rows[i];
            rn_cli_json_obj(j);
            rn_cli_json_key(j, "topic");
            rn_cli_json_str(j, r->topic);
            rn_cli_json_key(j, "partition");
            rn_cli_json_int(j, r->partition);
            rn_cli_json_key(j, "committed");
            if (r->committed >= 0) rn_cli_json_int(j, r->committed);
            else rn_cli_json_null(j);
            rn_cli_json_key(j, "end");
            if (r->end >= 0) rn_cli_json_int(j, r->end);
            else rn_cli_json_null(j);
            rn_cli_json_key(j, "lag");
            if (r->committed >= 0 && r->end >= 0) rn_cli_json_int(j, r->end > r->committed ? r->end - r->committed : 0);
            else rn_cli_json_null(j);
            rn_cli_json_key(j, "member_id");
            rn_cli_json_str(j, r->member);
            rn_cli_json_obj_end(j);
        }
        rn_cli_json_arr_end(j);
        rn_cli_json_obj_end(j);
    } else if (rc == RN_CLI_OK) {
        if (!first) printf("\n");
        printf("group %s: %s, %zu member%s", group, state_word(state), nmembers, nmembers == 1 ? "" : "s");
        if (assignor && *assignor) printf(", assignor %s", assignor);
        if (coord) printf(", coordinator broker %d", rd_kafka_Node_id(coord));
        printf("\n");
        if (nmembers) {
            printf("\n");
            rn_cli_table_t t;
            rn_cli_table_init(&t, 4, "MEMBER", "CLIENT-ID", "HOST", "PARTITIONS");
            for (size_t m = 0; m < nmembers; m++) {
                const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(d, m);
                const rd_kafka_topic_partition_list_t *as =
                    rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(md));
                rn_cli_table_add(&t, "%s", rd_kafka_MemberDescription_consumer_id(md));
                rn_cli_table_add(&t, "%s", rd_kafka_MemberDescription_client_id(md));
                rn_cli_table_add(&t, "%s", rd_kafka_MemberDescription_host(md));
                char buf[1024] = "";
                size_t o = 0;
                for (int i = 0; as && i < as->cnt && o < sizeof(buf); i++)
                    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s:%d", i ? " " : "", as->elems[i].topic,
                                          as->elems[i].partition);
                rn_cli_table_add(&t, "%s", as && as->cnt ? buf : "-");
            }
            rn_cli_table_print(&t, stdout);
            rn_cli_table_free(&t);
        }
        printf("\n");
        rn_cli_table_t t;
        rn_cli_table_init(&t, 6, "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER");
        for (int i = 0; i < nrows; i++) {
            const row_t *r = &rows[i];
            rn_cli_table_add(&t, "%s", r->topic);
            rn_cli_table_add(&t, "%d", r->partition);
            if (r->committed >= 0) rn_cli_table_add(&t, "%lld", (long long)r->committed);
            else rn_cli_table_add(&t, "-");
            if (r->end >= 0) rn_cli_table_add(&t, "%lld", (long long)r->end);
            else rn_cli_table_add(&t, "?");
            if (r->committed >= 0 && r->end >= 0)
                rn_cli_table_add(&t, "%lld", (long long)(r->end > r->committed ? r->end - r->committed : 0));
            else rn_cli_table_add(&t, "-");
            rn_cli_table_add(&t, "%s", r->member ? r->member : "-");
        }
        rn_cli_table_print(&t, stdout);
        rn_cli_table_free(&t);
    }
    for (int i = 0; i < nrows; i++) free(rows[i].topic);
    free(rows);
    rd_kafka_topic_partition_list_destroy(committed);
    rd_kafka_event_destroy(ev);
    return rc;
}

static int group_describe(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel group describe", DESCRIBE_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *groups[RN_CLI_GROUPS_MAX];
    int n = 0;
    while (rn_cli_next(&a)) {
        if (a.positional) {
            if (n < RN_CLI_GROUPS_MAX) groups[n++] = a.arg;
        } else if (!rn_cli_common(&a, true)) {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && n == 0) a.status = rn_cli_usage_error(&c, "which group?");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    if (md) rd_kafka_metadata_destroy(md);
    rn_cli_json_t j;
    rn_cli_json_init(&j, stdout);
    if (c.json) rn_cli_json_arr(&j);
    for (int i = 0; rc == RN_CLI_OK && i < n; i++) rc = describe_one(&c, rk, groups[i], c.json ? &j : NULL, i == 0);
    if (rc == RN_CLI_OK && c.json) {
        rn_cli_json_arr_end(&j);
        rn_cli_json_end(&j);
    } else {
        rn_cli_json_discard(&j);
    }
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- delete ---- */

static const char DELETE_USAGE[] =
    "usage: runnel group delete GROUP... [options]\n"
    "\n"
    "Delete consumer groups and their committed offsets. A group must have no\n"
    "active members.\n"
    "\n"
    "options:\n"
    "      --json                       JSON: [{group, result, error}]\n" RN_CLI_COMMON_HELP;

static int group_delete(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel group delete", DELETE_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *groups[RN_CLI_GROUPS_MAX];
    int n = 0;
    while (rn_cli_next(&a)) {
        if (a.positional) {
            if (n < RN_CLI_GROUPS_MAX) groups[n++] = a.arg;
        } else if (!rn_cli_common(&a, true)) {
            rn_cli_unknown(&a);
        }
    }
    if (a.status < 0 && n == 0) a.status = rn_cli_usage_error(&c, "which group?");
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_event_t *ev = NULL;
    if (rc == RN_CLI_OK) {
        rd_kafka_DeleteGroup_t *dg[RN_CLI_GROUPS_MAX];
        for (int i = 0; i < n; i++) dg[i] = rd_kafka_DeleteGroup_new(groups[i]);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = rn_cli_admin_options(&c, rk, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
        rd_kafka_DeleteGroups(rk, dg, (size_t)n, o, q);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_DeleteGroup_destroy_array(dg, (size_t)n);
        ev = rn_cli_admin_wait(&c, rk, q, "DeleteGroups");
        rd_kafka_queue_destroy(q);
        if (!ev) rc = RN_CLI_FAILED;
        else if (rd_kafka_event_error(ev))
            rc = rn_cli_fail_err(&c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev),
                                 group_subject(n == 1 ? groups[0] : ""));
    }
    if (rc == RN_CLI_OK) {
        size_t nr = 0;
        const rd_kafka_group_result_t **gr = rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &nr);
        rn_cli_json_t j;
        if (c.json) {
            rn_cli_json_init(&j, stdout);
            rn_cli_json_arr(&j);
        }
        for (size_t i = 0; i < nr; i++) {
            const char *name = rd_kafka_group_result_name(gr[i]);
            const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[i]);
            char words[1024] = "";
            if (e) {
                rn_cli_err_words(&c, rd_kafka_error_code(e), rd_kafka_error_string(e), group_subject(name), words,
                                 sizeof(words));
                rc = rn_cli_fail(&c, "%s", words);
            }
            if (c.json) {
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "group");
                rn_cli_json_str(&j, name);
                rn_cli_json_key(&j, "result");
                rn_cli_json_str(&j, e ? "failed" : "deleted");
                rn_cli_json_key(&j, "error");
                rn_cli_json_str(&j, e ? words : NULL);
                rn_cli_json_obj_end(&j);
            } else if (!e) {
                printf("deleted group %s\n", name);
            }
        }
        if (c.json) {
            rn_cli_json_arr_end(&j);
            rn_cli_json_end(&j);
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

/* ---- reset-offsets ---- */

static const char RESET_USAGE[] =
    "usage: runnel group reset-offsets GROUP (--topic TOPIC[:P,P...]... | --all-topics) --to WHERE\n"
    "                                  [--dry-run] [options]\n"
    "\n"
    "Move a group's committed offsets. The group must have no active members\n"
    "(stop its consumers first). Prints each partition's old and new offset.\n"
    "\n"
    "options:\n"
    "  -t, --topic TOPIC[:P,P...]       reset this topic (all partitions, or those listed); repeatable\n"
    "      --all-topics                 reset every partition the group has committed offsets for\n"
    "      --to WHERE                   earliest, latest, OFFSET (kept within each partition's\n"
    "                                   log start and end) or @TIMESTAMP (ms since the epoch, or\n"
    "                                   2024-05-01T12:00:00Z: the first message at or after it)\n"
    "      --dry-run                    show what would change, change nothing\n"
    "      --json                       JSON: {group, dry_run, offsets: [{topic, partition, old, new}]}\n" RN_CLI_COMMON_HELP;

static int group_reset_offsets(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel group reset-offsets", RESET_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    const char *group = NULL, *to = NULL;
    const char *topics[RN_CLI_RESET_TOPICS_MAX];
    int ntopics = 0;
    bool all_topics = false, dry_run = false;
    while (rn_cli_next(&a)) {
        const char *v;
        if (a.positional && !group) {
            group = a.arg;
        } else if (a.positional) {
            rn_cli_unknown(&a);
        } else if (rn_cli_common(&a, true)) {
        } else if (rn_cli_is(&a, 't', "topic")) {
            if (rn_cli_value(&a, &v) && ntopics < RN_CLI_RESET_TOPICS_MAX) topics[ntopics++] = v;
        } else if (rn_cli_is(&a, 0, "all-topics")) {
            all_topics = true;
        } else if (rn_cli_is(&a, 0, "to")) {
            rn_cli_value(&a, &to);
        } else if (rn_cli_is(&a, 0, "to-earliest")) {
            to = "earliest";
        } else if (rn_cli_is(&a, 0, "to-latest")) {
            to = "latest";
        } else if (rn_cli_is(&a, 0, "dry-run")) {
            dry_run = true;
        } else {
            rn_cli_unknown(&a);
        }
    }
    enum { TO_EARLIEST, TO_LATEST, TO_OFFSET, TO_TIME } kind = TO_EARLIEST;
    int64_t to_value = 0;
    if (a.status < 0 && !group) a.status = rn_cli_usage_error(&c, "which group?");
    if (a.status < 0 && (ntopics > 0) == all_topics)
        a.status = rn_cli_usage_error(&c, "give --topic TOPIC (repeatable) or --all-topics");
    if (a.status < 0 && !to) a.status = rn_cli_usage_error(&c, "where to? give --to earliest|latest|OFFSET|@TIMESTAMP");
    if (a.status < 0) {
        if (!strcmp(to, "earliest") || !strcmp(to, "beginning")) kind = TO_EARLIEST;
        else if (!strcmp(to, "latest") || !strcmp(to, "end")) kind = TO_LATEST;
        else if (to[0] == '@' && rn_cli_parse_time_ms(to + 1, &to_value)) kind = TO_TIME;
        else if (rn_cli_parse_int(to, 0, INT64_MAX / 4, &to_value)) kind = TO_OFFSET;
        else a.status = rn_cli_usage_error(&c, "--to takes earliest, latest, OFFSET or @TIMESTAMP, got '%s'", to);
    }
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;

    /* Only a group without active members can have its offsets moved. */
    const rd_kafka_ConsumerGroupDescription_t *d = NULL;
    rd_kafka_event_t *dev = rc == RN_CLI_OK ? describe_group(&c, rk, group, &d) : NULL;
    if (rc == RN_CLI_OK && !dev) rc = RN_CLI_FAILED;
    if (rc == RN_CLI_OK) {
        size_t members = rd_kafka_ConsumerGroupDescription_member_count(d);
        rd_kafka_consumer_group_state_t s = rd_kafka_ConsumerGroupDescription_state(d);
        if (members > 0 || (s != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY && s != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD))
            rc = rn_cli_fail(&c, "group %s is %s with %zu active member%s; stop its consumers before resetting offsets",
                             group, state_word(s), members, members == 1 ? "" : "s");
    }
    if (dev) rd_kafka_event_destroy(dev);

    /* Which partitions. */
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rc == RN_CLI_OK && all_topics) {
        parts = committed_offsets(&c, rk, group, NULL);
        if (!parts) rc = RN_CLI_FAILED;
        else if (parts->cnt == 0) rc = rn_cli_fail(&c, "group %s has no committed offsets; name the topics with --topic", group);
    } else if (rc == RN_CLI_OK) {
        parts = rd_kafka_topic_partition_list_new(16);
        for (int i = 0; rc == RN_CLI_OK && i < ntopics; i++) {
            char name[512];
            const char *colon = strrchr(topics[i], ':');
            snprintf(name, sizeof(name), "%.*s", (int)(colon ? (size_t)(colon - topics[i]) : strlen(topics[i])), topics[i]);
            const struct rd_kafka_metadata_topic *t = rn_cli_md_topic(md, name);
            if (!t) {
                rc = rn_cli_fail_err(&c, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, NULL, (rn_cli_subject_t){"topic", name});
                break;
            }
            if (!colon) {
                for (int p = 0; p < t->partition_cnt; p++) rd_kafka_topic_partition_list_add(parts, name, t->partitions[p].id);
                continue;
            }
            char *list = strdup(colon + 1), *save = NULL;
            for (char *tok = list ? strtok_r(list, ",", &save) : NULL; tok && rc == RN_CLI_OK; tok = strtok_r(NULL, ",", &save)) {
                int64_t p;
                if (!rn_cli_parse_int(tok, 0, INT32_MAX, &p))
                    rc = rn_cli_usage_error(&c, "--topic %s: '%s' is not a partition number", topics[i], tok);
                else if (p >= t->partition_cnt)
                    rc = rn_cli_fail(&c, "topic %s has %d partition%s (0-%d); there is no partition %lld", name,
                                     t->partition_cnt, t->partition_cnt == 1 ? "" : "s", t->partition_cnt - 1, (long long)p);
                else
                    rd_kafka_topic_partition_list_add(parts, name, (int32_t)p);
            }
            if (!list || (colon[1] == '\0' && rc == RN_CLI_OK))
                rc = rn_cli_usage_error(&c, "--topic %s: list partitions after ':'", topics[i]);
            free(list);
        }
    }
    if (parts) rd_kafka_topic_partition_list_sort(parts, NULL, NULL);

    /* Old offsets (for the report) and new ones. */
    rd_kafka_topic_partition_list_t *old = NULL;
    if (rc == RN_CLI_OK && all_topics) old = rd_kafka_topic_partition_list_copy(parts);
    else if (rc == RN_CLI_OK) old = committed_offsets(&c, rk, group, parts);
    if (rc == RN_CLI_OK && !old) rc = RN_CLI_FAILED;
    rd_kafka_topic_partition_list_t *target = parts ? rd_kafka_topic_partition_list_copy(parts) : NULL;
    if (rc == RN_CLI_OK && kind == TO_TIME) {
        for (int i = 0; i < target->cnt; i++) target->elems[i].offset = to_value;
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, target, c.timeout_ms);
        if (err) rc = rn_cli_fail_err(&c, err, NULL, group_subject(group));
    }
    for (int i = 0; rc == RN_CLI_OK && i < target->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &target->elems[i];
        int64_t lo, hi;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi, c.timeout_ms);
        if (err) {
            rc = rn_cli_fail_err(&c, err, NULL, (rn_cli_subject_t){"topic", tp->topic});
            break;
        }
        tp->err = RD_KAFKA_RESP_ERR_NO_ERROR;
        switch (kind) {
        case TO_EARLIEST: tp->offset = lo; break;
        case TO_LATEST: tp->offset = hi; break;
        case TO_OFFSET: tp->offset = to_value < lo ? lo : to_value > hi ? hi : to_value; break;
        case TO_TIME: if (tp->offset < 0) tp->offset = hi; break;
        }
    }

    if (rc == RN_CLI_OK && !dry_run) {
        rd_kafka_AlterConsumerGroupOffsets_t *al = rd_kafka_AlterConsumerGroupOffsets_new(group, target);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *o = rn_cli_admin_options(&c, rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
        rd_kafka_AlterConsumerGroupOffsets(rk, &al, 1, o, q);
        rd_kafka_AdminOptions_destroy(o);
        rd_kafka_AlterConsumerGroupOffsets_destroy(al);
        rd_kafka_event_t *ev = rn_cli_admin_wait(&c, rk, q, "OffsetCommit");
        rd_kafka_queue_destroy(q);
        if (!ev) {
            rc = RN_CLI_FAILED;
        } else if (rd_kafka_event_error(ev)) {
            rc = rn_cli_fail_err(&c, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), group_subject(group));
        } else {
            size_t n = 0;
            const rd_kafka_group_result_t **gr =
                rd_kafka_AlterConsumerGroupOffsets_result_groups(rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
            for (size_t i = 0; i < n && rc == RN_CLI_OK; i++) {
                const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[i]);
                if (e) {
                    rc = rn_cli_fail_err(&c, rd_kafka_error_code(e), rd_kafka_error_string(e), group_subject(group));
                    break;
                }
                const rd_kafka_topic_partition_list_t *pl = rd_kafka_group_result_partitions(gr[i]);
                for (int k = 0; pl && k < pl->cnt && rc == RN_CLI_OK; k++)
                    if (pl->elems[k].err) rc = rn_cli_fail_err(&c, pl->elems[k].err, NULL, group_subject(group));
            }
        }
        if (ev) rd_kafka_event_destroy(ev);
    }

    if (rc == RN_CLI_OK) {
        qsort(target->elems, (size_t)target->cnt, sizeof(*target->elems), tp_cmp);
        rn_cli_json_t j;
        rn_cli_table_t t;
        if (c.json) {
            rn_cli_json_init(&j, stdout);
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "group");
            rn_cli_json_str(&j, group);
            rn_cli_json_key(&j, "dry_run");
            rn_cli_json_bool(&j, dry_run);
            rn_cli_json_key(&j, "offsets");
            rn_cli_json_arr(&j);
        } else {
            rn_cli_table_init(&t, 4, "TOPIC", "PARTITION", "OLD", "NEW");
        }
        for (int i = 0; i < target->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &target->elems[i];
            const rd_kafka_topic_partition_t *op = rd_kafka_topic_partition_list_find(old, tp->topic, tp->partition);
            int64_t was = op && op->offset >= 0 ? op->offset : -1;
            if (c.json) {
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "topic");
                rn_cli_json_str(&j, tp->topic);
                rn_cli_json_key(&j, "partition");
                rn_cli_json_int(&j, tp->partition);
                rn_cli_json_key(&j, "old");
                if (was >= 0) rn_cli_json_int(&j, was);
                else rn_cli_json_null(&j);
                rn_cli_json_key(&j, "new");
                rn_cli_json_int(&j, tp->offset);
                rn_cli_json_obj_end(&j);
            } else {
                rn_cli_table_add(&t, "%s", tp->topic);
                rn_cli_table_add(&t, "%d", tp->partition);
                if (was >= 0) rn_cli_table_add(&t, "%lld", (long long)was);
                else rn_cli_table_add(&t, "-");
                rn_cli_table_add(&t, "%lld", (long long)tp->offset);
            }
        }
        if (c.json) {
            rn_cli_json_arr_end(&j);
            rn_cli_json_obj_end(&j);
            rn_cli_json_end(&j);
        } else {
            rn_cli_table_print(&t, stdout);
            rn_cli_table_free(&t);
            if (dry_run) printf("dry run: nothing was changed\n");
        }
    }
    if (target) rd_kafka_topic_partition_list_destroy(target);
    if (old) rd_kafka_topic_partition_list_destroy(old);
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (md) rd_kafka_metadata_destroy(md);
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

int rn_cli_group(int argc, char **argv) {
    static const rn_cli_verb_t verbs[] = {
        {"list", "list consumer groups", group_list},
        {"describe", "members, assignments, committed offsets and lag", group_describe},
        {"delete", "delete consumer groups", group_delete},
        {"reset-offsets", "move a group's committed offsets (with --dry-run)", group_reset_offsets},
        {NULL, NULL, NULL},
    };
    return rn_cli_verbs("runnel group", "Manage consumer groups.", verbs, argc, argv);
}
