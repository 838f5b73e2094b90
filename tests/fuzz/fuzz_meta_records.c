/*
 * fuzz_meta_records.c — libFuzzer target for the metadata record decoder, the image's apply and
 * snapshot loading (src/controller/).
 *
 * The input is used three ways:
 *   - as a metadata log entry: every record that decodes re-encodes, and decoding and encoding
 *     that again gives the same bytes (a fixed point); the entry is applied to an image, after which every
 *     partition must still satisfy rn_meta_partition_check, and the image must survive a
 *     snapshot round trip byte for byte;
 *   - as a snapshot, as given and with its CRC recomputed (so mutations reach the records);
 *     a snapshot that loads must round-trip: serialize(load(x)) loads and serializes identically;
 *   - either image, read as a node reads its dynamic broker configs (rn__image_broker_configs),
 *     then validated as the controller validates them.
 * Everything runs under the image's default limits and bounded buffers.
 *
 * Seeds: tests/fuzz/corpus/meta_records/ (an entry with every record type, broker configs, snapshots).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_broker.h"
#include "rn_cluster_int.h"
#include "rn_crc32c.h"
#include "rn_logging.h"
#include "rn_meta_image.h"
#include "rn_meta_records.h"

static void check_partitions(const rn_meta_image_t *img) {
    rn_meta_part_rec_t *r = malloc(sizeof(*r));
    for (int32_t i = 0; i < rn_meta_image_topic_count(img); i++) {
        const rn_meta_topic_t *t = rn_meta_image_topic_at(img, i);
        for (int32_t p = 0; p < t->npartitions; p++) {
            rn_meta_partition_get(t, p, r);
            RN_ASSERT(rn_meta_partition_check(r) == NULL);
        }
    }
    free(r);
}

/* serialize(img) == serialize(load(serialize(img))) */
static void snapshot_round_trip(const rn_meta_image_t *img) {
    rn_buf_t a, b;
    rn_buf_init(&a, 64u << 20);
    rn_buf_init(&b, 64u << 20);
    rn_meta_image_serialize(img, &a);
    RN_ASSERT(a.err == RN_OK);
    rn_meta_image_t *back = NULL;
    RN_ASSERT(rn_meta_image_load(&back, NULL, a.data, a.len) == RN_OK);
    rn_meta_image_serialize(back, &b);
    RN_ASSERT(b.err == RN_OK && a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    check_partitions(back);
    rn_meta_image_free(back);
    rn_buf_free(&a);
    rn_buf_free(&b);
}

/* What a node takes from the image as its dynamic broker configs (rn_cluster_admin.c), checked
 * as the controller checks them: any image gives bounded sets, any set validates or is refused. */
static void broker_configs(const rn_meta_image_t *img) {
    for (int32_t node = 0; node < 4; node++) {
        rn_config_set_t per, def;
        rn_config_set_init(&per);
        rn_config_set_init(&def);
        RN_ASSERT(rn__image_broker_configs(img, node, &per, &def));
        RN_ASSERT((int64_t)(per.n + def.n) <= rn_meta_image_config_count(img));
        char msg[256];
        (void)rn_broker_dynamic_configs_validate(&per, msg, sizeof(msg));
        (void)rn_broker_dynamic_configs_validate(&def, msg, sizeof(msg));
        rn_config_set_free(&per);
        rn_config_set_free(&def);
    }
}

static void as_entry(const uint8_t *data, size_t size) {
    rn_meta_record_t *rec = malloc(sizeof(*rec));
    rn_meta_iter_t it;
    rn_meta_record_t *again = malloc(sizeof(*again));
    rn_buf_t out, out2;
    rn_buf_init(&out, RN_META_RECORD_MAX);
    rn_buf_init(&out2, RN_META_RECORD_MAX);
    for (rn_meta_iter_init(&it, data, size); rn_meta_iter_next(&it, rec);) {
        /* Whatever decodes re-encodes within bounds, and that encoding is a fixed point. */
        rn_buf_reset(&out);
        rn_buf_reset(&out2);
        rn_meta_record_encode(rec, &out);
        RN_ASSERT(out.err == RN_OK);
        RN_ASSERT(rn_meta_record_decode(out.data, out.len, again) == RN_OK);
        rn_meta_record_encode(again, &out2);
        RN_ASSERT(out2.err == RN_OK && out.len == out2.len && memcmp(out.data, out2.data, out.len) == 0);
    }
    rn_buf_free(&out);
    rn_buf_free(&out2);
    free(again);
    free(rec);
    rn_meta_image_t *img = rn_meta_image_new(NULL);
    rn_err_t err = rn_meta_image_apply_entry(img, data, size, 1);
    RN_ASSERT(err != RN_OK || it.err == RN_OK);
    check_partitions(img);
    broker_configs(img);
    snapshot_round_trip(img);
    rn_meta_image_free(img);
}

static void as_snapshot(const uint8_t *data, size_t size) {
    rn_meta_image_t *img = NULL;
    if (rn_meta_image_load(&img, NULL, data, size) == RN_OK) {
        check_partitions(img);
        broker_configs(img);
        snapshot_round_trip(img);
        rn_meta_image_free(img);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rn_log_set_level(RN_LOG_ERROR);
    as_entry(data, size);
    as_snapshot(data, size);
    if (size >= 33) { /* the same with the CRC made right */
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        rn_store_be32(copy + 29, rn_crc32c(rn_crc32c(0, copy, 29), copy + 33, size - 33));
        as_snapshot(copy, size);
        free(copy);
    }
    return 0;
}
