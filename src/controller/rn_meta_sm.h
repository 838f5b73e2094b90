/*
 * rn_meta_sm.h — the metadata image as the metadata quorum's state machine.
 *
 * The three callbacks have the shapes rn_quorum_config_t (src/cluster/rn_quorum.h) takes for
 * apply, snapshot_take and snapshot_load, with `arg` an rn_meta_sm_t: committed entries are
 * applied to the image at their Raft index (a controller decision's records, one entry each), a
 * snapshot is the image serialized as of an index, and loading one replaces the image.
 *
 * They run on the quorum's thread and replace sm->img on a snapshot load; whoever reads the
 * image from another thread serialises with them. An entry that does not apply is counted in
 * apply_errors and logged, and the rest of the log still applies (identically on every node).
 */
#ifndef RN_META_SM_H
#define RN_META_SM_H

#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"
#include "rn_meta_image.h"

typedef struct {
    rn_meta_image_t *img;
    rn_meta_limits_t limits;
    int64_t apply_errors;
} rn_meta_sm_t;

rn_err_t rn_meta_sm_init(rn_meta_sm_t *sm, const rn_meta_limits_t *limits); /* NULL: defaults */
void rn_meta_sm_free(rn_meta_sm_t *sm);

void rn_meta_sm_apply(void *arg, uint64_t index, const uint8_t *data, size_t len);
rn_err_t rn_meta_sm_snapshot_take(void *arg, uint64_t index, rn_buf_t *out);
rn_err_t rn_meta_sm_snapshot_load(void *arg, uint64_t index, const uint8_t *data, size_t len);

#endif
