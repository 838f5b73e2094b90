/*
 * rn_meta_sm.c — the metadata image behind the quorum's state machine callbacks (rn_meta_sm.h).
 *
 * The image's offset is the Raft index of the last entry it has seen. Entries that carry
 * nothing for the image (Raft's no-ops and voter changes, which the quorum does not pass on)
 * leave gaps; a snapshot taken at index i covers them, so taking one first advances the image
 * to i. Loading checks that the snapshot is no newer than the index Raft says it covers.
 */
#include "rn_meta_sm.h"

#include "rn_logging.h"

rn_err_t rn_meta_sm_init(rn_meta_sm_t *sm, const rn_meta_limits_t *limits) {
    sm->limits = limits ? *limits : RN_META_LIMITS_DEFAULT;
    sm->apply_errors = 0;
    sm->img = rn_meta_image_new(&sm->limits);
    return sm->img ? RN_OK : RN_ERR_NOMEM;
}

void rn_meta_sm_free(rn_meta_sm_t *sm) {
    rn_meta_image_free(sm->img);
    sm->img = NULL;
}

void rn_meta_sm_apply(void *arg, uint64_t index, const uint8_t *data, size_t len) {
    rn_meta_sm_t *sm = arg;
    if (index > INT64_MAX) return;
    rn_err_t err = rn_meta_image_apply_entry(sm->img, data, len, (int64_t)index);
    if (err) {
        sm->apply_errors++;
        RN_WARN("controller", "metadata entry %llu: %s", (unsigned long long)index, rn_err_name(err));
    }
}

rn_err_t rn_meta_sm_snapshot_take(void *arg, uint64_t index, rn_buf_t *out) {
    rn_meta_sm_t *sm = arg;
    if (index > INT64_MAX || rn_meta_image_offset(sm->img) > (int64_t)index) return RN_ERR_INVALID_ARG;
    rn_meta_image_advance(sm->img, (int64_t)index);
    rn_meta_image_serialize(sm->img, out);
    return rn_buf_err(out);
}

rn_err_t rn_meta_sm_snapshot_load(void *arg, uint64_t index, const uint8_t *data, size_t len) {
    rn_meta_sm_t *sm = arg;
    if (index > INT64_MAX) return RN_ERR_INVALID_ARG;
    rn_meta_image_t *img;
    rn_err_t err = rn_meta_image_load(&img, &sm->limits, data, len);
    if (err) return err;
    if (rn_meta_image_offset(img) > (int64_t)index) {
        rn_meta_image_free(img);
        return RN_ERR_CORRUPT;
    }
    rn_meta_image_advance(img, (int64_t)index);
    rn_meta_image_free(sm->img);
    sm->img = img;
    return RN_OK;
}
