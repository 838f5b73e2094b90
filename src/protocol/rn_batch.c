/*
 * rn_batch.c — record batch v2 header access, CRC, in-place patches.
 * (Validation, record iteration, the builder and legacy message-set conversion
 * are in rn_batch_validate.c, rn_batch_records.c and rn_msgset.c.)
 */
#include "rn_batch.h"

#include "rn_crc32c.h"

void rn_batch_header_decode(const uint8_t *p, rn_batch_header_t *h) {
    h->base_offset = (int64_t)rn_load_be64(p + RN_BATCH_OFF_BASE_OFFSET);
    h->batch_length = (int32_t)rn_load_be32(p + RN_BATCH_OFF_LENGTH);
    h->partition_leader_epoch = (int32_t)rn_load_be32(p + RN_BATCH_OFF_LEADER_EPOCH);
    h->magic = (int8_t)p[RN_BATCH_OFF_MAGIC];
    h->crc = rn_load_be32(p + RN_BATCH_OFF_CRC);
    h->attributes = (int16_t)rn_load_be16(p + RN_BATCH_OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)rn_load_be32(p + RN_BATCH_OFF_LAST_OFFSET_DELTA);
    h->base_timestamp = (int64_t)rn_load_be64(p + RN_BATCH_OFF_BASE_TIMESTAMP);
    h->max_timestamp = (int64_t)rn_load_be64(p + RN_BATCH_OFF_MAX_TIMESTAMP);
    h->producer_id = (int64_t)rn_load_be64(p + RN_BATCH_OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)rn_load_be16(p + RN_BATCH_OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)rn_load_be32(p + RN_BATCH_OFF_BASE_SEQUENCE);
    h->record_count = (int32_t)rn_load_be32(p + RN_BATCH_OFF_RECORD_COUNT);
}

uint32_t rn_batch_compute_crc(const uint8_t *batch, size_t total_size) {
    return rn_crc32c(0, batch + RN_BATCH_OFF_ATTRIBUTES, total_size - RN_BATCH_OFF_ATTRIBUTES);
}

void rn_batch_update_crc(uint8_t *batch, size_t total_size) {
    rn_store_be32(batch + RN_BATCH_OFF_CRC, rn_batch_compute_crc(batch, total_size));
}

void rn_batch_set_base_offset(uint8_t *batch, int64_t base_offset) {
    rn_store_be64(batch + RN_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void rn_batch_set_leader_epoch(uint8_t *batch, int32_t epoch) {
    rn_store_be32(batch + RN_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
}
