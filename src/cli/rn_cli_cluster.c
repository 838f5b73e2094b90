/*
 * rn_cli_cluster.c — `runnel cluster info`: the cluster id, the controller,
 * the brokers and how many topics and partitions there are, from one
 * Metadata request (librdkafka 2.0.2 has no DescribeCluster admin call).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_cli.h"
#include "rn_cli_common.h"

static const char INFO_USAGE[] =
    "usage: runnel cluster info [options]\n"
    "\n"
    "Show the cluster id, the controller and the brokers.\n"
    "\n"
    "options:\n"
    "      --json                       JSON: {cluster_id, controller, brokers: [{id, host, port}],\n"
    "                                   topics, partitions}\n" RN_CLI_COMMON_HELP;

static int broker_cmp(const void *a, const void *b) {
    int32_t x = ((const struct rd_kafka_metadata_broker *)a)->id, y = ((const struct rd_kafka_metadata_broker *)b)->id;
    return (x > y) - (x < y);
}

static int cluster_info(int argc, char **argv) {
    rn_cli_t c;
    rn_cli_init(&c, "runnel cluster info", INFO_USAGE);
    rn_cli_args_t a;
    rn_cli_args_init(&a, &c, argc, argv);
    while (rn_cli_next(&a))
        if (!rn_cli_common(&a, true)) rn_cli_unknown(&a);
    if (a.status >= 0) {
        rn_cli_free(&c);
        return a.status;
    }
    rd_kafka_t *rk = rn_cli_client(&c, RD_KAFKA_PRODUCER, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = rk ? rn_cli_metadata(&c, rk, &md) : RN_CLI_FAILED;
    if (rc == RN_CLI_OK) {
        char *cluster_id = rd_kafka_clusterid(rk, c.timeout_ms);
        int32_t controller = rd_kafka_controllerid(rk, c.timeout_ms);
        struct rd_kafka_metadata_broker *brokers = calloc((size_t)md->broker_cnt + 1, sizeof(*brokers));
        if (brokers) {
            memcpy(brokers, md->brokers, (size_t)md->broker_cnt * sizeof(*brokers));
            qsort(brokers, (size_t)md->broker_cnt, sizeof(*brokers), broker_cmp);
        }
        long partitions = 0;
        for (int i = 0; i < md->topic_cnt; i++) partitions += md->topics[i].partition_cnt;
        if (c.json) {
            rn_cli_json_t j;
            rn_cli_json_init(&j, stdout);
            rn_cli_json_obj(&j);
            rn_cli_json_key(&j, "cluster_id");
            rn_cli_json_str(&j, cluster_id);
            rn_cli_json_key(&j, "controller");
            if (controller >= 0) rn_cli_json_int(&j, controller);
            else rn_cli_json_null(&j);
            rn_cli_json_key(&j, "brokers");
            rn_cli_json_arr(&j);
            for (int i = 0; brokers && i < md->broker_cnt; i++) {
                rn_cli_json_obj(&j);
                rn_cli_json_key(&j, "id");
                rn_cli_json_int(&j, brokers[i].id);
                rn_cli_json_key(&j, "host");
                rn_cli_json_str(&j, brokers[i].host);
                rn_cli_json_key(&j, "port");
                rn_cli_json_int(&j, brokers[i].port);
                rn_cli_json_obj_end(&j);
            }
            rn_cli_json_arr_end(&j);
            rn_cli_json_key(&j, "topics");
            rn_cli_json_int(&j, md->topic_cnt);
            rn_cli_json_key(&j, "partitions");
            rn_cli_json_int(&j, partitions);
            rn_cli_json_obj_end(&j);
            rn_cli_json_end(&j);
        } else {
            printf("cluster id: %s\n", cluster_id ? cluster_id : "(none)");
            if (controller >= 0) printf("controller: broker %d\n", controller);
            else printf("controller: (unknown)\n");
            printf("topics:     %d (%ld partitions)\n\n", md->topic_cnt, partitions);
            rn_cli_table_t t;
            rn_cli_table_init(&t, 4, "BROKER", "HOST", "PORT", "ROLE");
            for (int i = 0; brokers && i < md->broker_cnt; i++) {
                rn_cli_table_add(&t, "%d", brokers[i].id);
                rn_cli_table_add(&t, "%s", brokers[i].host);
                rn_cli_table_add(&t, "%d", brokers[i].port);
                rn_cli_table_add(&t, "%s", brokers[i].id == controller ? "controller" : "");
            }
            rn_cli_table_print(&t, stdout);
            rn_cli_table_free(&t);
        }
        free(brokers);
        if (cluster_id) rd_kafka_mem_free(rk, cluster_id);
        rd_kafka_metadata_destroy(md);
    }
    if (rk) rd_kafka_destroy(rk);
    rn_cli_free(&c);
    return rc;
}

int rn_cli_cluster(int argc, char **argv) {
    static const rn_cli_verb_t verbs[] = {
        {"info", "cluster id, controller and brokers", cluster_info},
        {NULL, NULL, NULL},
    };
    return rn_cli_verbs("runnel cluster", "Look at the cluster.", verbs, argc, argv);
}
