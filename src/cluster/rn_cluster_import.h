/*
 * rn_cluster_import.h — runnel.meta's topics and dynamic broker configs (a
 * single-node data directory from before the metadata quorum) join the metadata log. See rn_cluster_import.c.
 */
#ifndef RN_CLUSTER_IMPORT_H
#define RN_CLUSTER_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_broker.h"
#include "rn_controller.h"
#include "rn_meta_image.h"

typedef struct rn_import rn_import_t;

/* At init: moves the registry's topics and the node's dynamic broker configs (read from
 * runnel.meta) here. NULL when there are none. */
rn_import_t *rn_import_take(rn_broker_t *b);
/* Whether `topic` still waits for its import (its directories are not orphans). NULL: false. */
bool rn_import_pending(rn_import_t *im, const char *topic);
/* The active controller (img read-locked): the records importing every pending topic the
 * image does not have yet, its partitions on `node`, and every pending broker config key the
 * image does not have (broker "<node>" and ""). Returns how many topics and configs. */
int32_t rn_import_records(rn_import_t *im, rn_controller_t *ctl, const rn_meta_image_t *img, int32_t node,
                          rn_meta_batch_t *out);
/* After the commit (img read-locked): what the image now has is done; once nothing is left,
 * runnel.meta is written again without topics and broker configs. */
void rn_import_done(rn_import_t *im, rn_broker_t *b, const rn_meta_image_t *img);
void rn_import_free(rn_import_t *im);

#endif
