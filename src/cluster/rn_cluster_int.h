/*
 * rn_cluster_int.h — between rn_cluster.c (queue, threads, image) and the
 * files that carry out some of the active controller's jobs
 * (rn_cluster_admin.c: CreatePartitions, AlterConfigs,
 * IncrementalAlterConfigs). Not for use outside src/cluster.
 */
#ifndef RN_CLUSTER_INT_H
#define RN_CLUSTER_INT_H

#include "rn_cluster.h"
#include "rn_cluster_roles.h"
#include "rn_controller.h"
#include "rn_meta_image.h"
#include "rn_meta_records.h"

/* A controller-bound request: decoded into its arena, answered on its loop. */
typedef struct rn__job {
    struct rn__job *next;
    int kind;
    rn_broker_t *b;
    rn_req_t *req;
    rn_req_header_t h;
    void *rq;
    void *resp;
    rn_encode_fn encode;
    rn_err_t refuse; /* set: every item of the response gets this error, nothing is decided */
} rn__job_t;

/* The image under the lock decisions read it with (shared). */
const rn_meta_image_t *rn__cluster_image_rdlock(rn_cluster_t *c);
void rn__cluster_image_unlock(rn_cluster_t *c);
rn_controller_t *rn__cluster_ctl(rn_cluster_t *c);
/* The metadata quorum (NULL on a broker-only node) and the roles' runtime (rn_cluster_quorum.c). */
struct rn_quorum *rn__cluster_quorum(rn_cluster_t *c);
struct rn_roles *rn__cluster_roles(rn_cluster_t *c);
/* The quorum's settings for joining (a controller not among the static voters) and the
 * cluster id it writes into the log (rn_cluster_quorum.c). */
void rn_cluster_quorum_join_config(rn_broker_t *b, const rn_cluster_roles_t *roles, rn_quorum_config_t *qcfg);
/* Proposes a decision's entries, each waited for until applied here. */
rn_err_t rn__cluster_commit(rn_cluster_t *c, rn_meta_batch_t *batch);
/* Why a decision failed, for an ErrorMessage (never NULL). */
const char *rn__cluster_message(rn_cluster_t *c, rn_err_t err);

/* A resource's explicit configs as the image has them (image read-locked), added to *out;
 * false on OOM. Of a topic; of a node: its own (broker resource "<id>") and the cluster
 * default (broker resource ""). */
bool rn__image_resource_configs(const rn_meta_image_t *img, int8_t type, const char *name, rn_config_set_t *out);
bool rn__image_topic_configs(const rn_meta_image_t *img, const char *topic, rn_config_set_t *out);
bool rn__image_broker_configs(const rn_meta_image_t *img, int32_t node_id, rn_config_set_t *per_broker,
                              rn_config_set_t *defaults);
/* The node follows the image's dynamic broker configs (image read-locked; takes topics_lock):
 * they become its own, as AlterConfigs makes them on a single node, when they changed. */
void rn__follow_broker_configs(rn_broker_t *b, const rn_meta_image_t *img);

void rn__job_create_partitions(rn_cluster_t *c, rn__job_t *j, rn_meta_batch_t *batch);
/* AlterConfigs and IncrementalAlterConfigs (by j->h.api_key): topic and broker resources
 * decided, broker loggers checked, any other type refused — an answer per resource. */
void rn__job_alter_configs(rn_cluster_t *c, rn__job_t *j, rn_meta_batch_t *batch);

#endif
