/*
 * rn_meta_image.h — the cluster metadata image: the state the metadata log describes.
 *
 * Every node holds one image and applies the committed metadata records to it in log order
 * (rn_meta_image_apply_entry); the same records give the same image everywhere (apply is
 * deterministic: no time, no randomness, no hash-order iteration). The image holds brokers
 * (registrations, fenced / controlled-shutdown state), topics by name and by id, their
 * partitions (replicas, ISR, ELR, leader, epochs, reassignment), configs, and the producer id
 * high-water mark.
 *
 * Apply validates: a record that refers to something unknown, or that would break a partition
 * invariant (see rn_meta_partition_check), fails and leaves the image unchanged. Every kind of
 * object is bounded by rn_meta_limits_t; a record past a limit fails with RN_ERR_LIMIT.
 *
 * Snapshot format (rn_meta_image_serialize / rn_meta_image_load):
 *
 *   u32 magic "RNMS"  u8 version(0)  i64 applied_offset  i64 broker_epoch_hwm
 *   i64 next_producer_id  u32 crc32c(of everything else)  entry
 *
 * where entry is the image written as records (rn_meta_records.h): RegisterBroker per broker
 * by id (with its fenced / shutdown flags), Topic then its Partitions per topic by name, Config
 * per config by (type, name, key). Loading applies those records to an empty image.
 *
 * Not replicated: a broker's reg_offset and shutdown_offset (the log offsets its registration and
 * its controlled shutdown were applied at: a broker whose metadata offset has reached them has
 * seen them); after a load they are the snapshot's offset.
 *
 * Not thread-safe; the owner serialises access. To copy an image, serialize and load it.
 */
#ifndef RN_META_IMAGE_H
#define RN_META_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"
#include "rn_meta_records.h"

typedef struct {
    int32_t brokers_max;
    int32_t topics_max;
    int64_t partitions_max; /* across all topics */
    int32_t configs_max;
} rn_meta_limits_t;

#define RN_META_LIMITS_DEFAULT ((rn_meta_limits_t){1024, 100000, 1000000, 100000})

typedef struct {
    char *name;
    char *host;
    uint16_t port;
    int16_t security_protocol;
} rn_meta_listener_owned_t;

typedef struct {
    int32_t id;
    uint8_t incarnation[16];
    int64_t epoch;
    char *rack; /* NULL: none */
    int32_t nlisteners;
    rn_meta_listener_owned_t *listeners;
    bool fenced;
    bool in_controlled_shutdown;
    int64_t reg_offset;      /* offset its registration was applied at (not replicated) */
    int64_t shutdown_offset; /* offset its controlled shutdown began at, -1 (not replicated) */
} rn_meta_broker_t;

/* Which list of a partition. */
enum { RN_META_L_REPLICAS, RN_META_L_ISR, RN_META_L_ELR, RN_META_L_ADDING, RN_META_L_REMOVING, RN_META_L_COUNT };

typedef struct {
    int32_t *ids; /* the five lists back to back, in RN_META_L_* order */
    uint8_t n[RN_META_L_COUNT];
    int32_t leader;
    int32_t leader_epoch;
    int32_t partition_epoch;
    int8_t leader_recovery_state;
} rn_meta_partition_t;

typedef struct {
    char *name;
    uint8_t id[16];
    int32_t npartitions;
    rn_meta_partition_t *partitions; /* index = partition */
    int32_t cap;
} rn_meta_topic_t;

typedef struct {
    int8_t resource_type;
    char *resource_name;
    char *key;
    char *value;
} rn_meta_config_t;

typedef struct rn_meta_image rn_meta_image_t;

rn_meta_image_t *rn_meta_image_new(const rn_meta_limits_t *limits); /* NULL: defaults; NULL on OOM */
void rn_meta_image_free(rn_meta_image_t *img);

rn_err_t rn_meta_image_apply(rn_meta_image_t *img, const rn_meta_record_t *rec, int64_t offset);
/* Apply every record of an entry at `offset`. A structurally bad entry applies nothing; otherwise
 * each record is applied in turn and the first record error is returned (the rest still apply,
 * identically on every node). */
rn_err_t rn_meta_image_apply_entry(rn_meta_image_t *img, const uint8_t *p, size_t len, int64_t offset);

const rn_meta_limits_t *rn_meta_image_limits(const rn_meta_image_t *img);
int64_t rn_meta_image_offset(const rn_meta_image_t *img); /* last applied entry, -1 initially */
/* The log reached `offset` with entries that carry nothing for the image (never goes back). */
void rn_meta_image_advance(rn_meta_image_t *img, int64_t offset);
int64_t rn_meta_image_broker_epoch_hwm(const rn_meta_image_t *img);
int64_t rn_meta_image_next_producer_id(const rn_meta_image_t *img);

void rn_meta_image_serialize(const rn_meta_image_t *img, rn_buf_t *out);
rn_err_t rn_meta_image_load(rn_meta_image_t **out, const rn_meta_limits_t *limits, const uint8_t *p, size_t len);

/* ---- queries ---- */
int32_t rn_meta_image_broker_count(const rn_meta_image_t *img);
const rn_meta_broker_t *rn_meta_image_broker_at(const rn_meta_image_t *img, int32_t i); /* by id */
const rn_meta_broker_t *rn_meta_image_broker(const rn_meta_image_t *img, int32_t id);
/* The broker's listener called `name` (e.g. the one a Metadata request came in on), or NULL. */
const rn_meta_listener_owned_t *rn_meta_broker_listener(const rn_meta_broker_t *b, const char *name);
/* Unfenced and not shutting down: may lead and be in an ISR. */
static inline bool rn_meta_broker_active(const rn_meta_broker_t *b) {
    return b && !b->fenced && !b->in_controlled_shutdown;
}
bool rn_meta_image_broker_active(const rn_meta_image_t *img, int32_t id);

int32_t rn_meta_image_topic_count(const rn_meta_image_t *img);
const rn_meta_topic_t *rn_meta_image_topic_at(const rn_meta_image_t *img, int32_t i); /* by name */
const rn_meta_topic_t *rn_meta_image_topic_by_name(const rn_meta_image_t *img, rn_str_t name);
const rn_meta_topic_t *rn_meta_image_topic_by_id(const rn_meta_image_t *img, const uint8_t id[16]);
int64_t rn_meta_image_partition_count(const rn_meta_image_t *img);
const rn_meta_partition_t *rn_meta_image_partition(const rn_meta_image_t *img, const uint8_t topic_id[16],
                                                    int32_t partition);

/* Copy one list / the whole partition out. */
void rn_meta_partition_list(const rn_meta_partition_t *p, int which, rn_meta_ids_t *out);
void rn_meta_partition_get(const rn_meta_topic_t *t, int32_t partition, rn_meta_part_rec_t *out);
static inline bool rn_meta_partition_reassigning(const rn_meta_partition_t *p) {
    return p->n[RN_META_L_ADDING] || p->n[RN_META_L_REMOVING];
}

typedef struct {
    const rn_meta_topic_t *topic;
    int32_t partition;
} rn_meta_tp_t;

/* Partitions whose leader is `broker_id`, in (topic name, partition) order: fills up to max,
 * returns how many there are. */
int64_t rn_meta_image_partitions_led_by(const rn_meta_image_t *img, int32_t broker_id, rn_meta_tp_t *out,
                                        int64_t max);
/* Partitions with a reassignment in progress (ListPartitionReassignments), same contract. */
int64_t rn_meta_image_reassignments(const rn_meta_image_t *img, rn_meta_tp_t *out, int64_t max);

int32_t rn_meta_image_config_count(const rn_meta_image_t *img);
const rn_meta_config_t *rn_meta_image_config_at(const rn_meta_image_t *img, int32_t i); /* by (type,name,key) */
const char *rn_meta_image_config(const rn_meta_image_t *img, int8_t resource_type, const char *resource_name,
                                 const char *key); /* NULL: unset */
/* One resource's configs: they are [*first, *first + count) of rn_meta_image_config_at. */
int32_t rn_meta_image_resource_configs(const rn_meta_image_t *img, int8_t resource_type, const char *resource_name,
                                       int32_t *first);

/* Kafka's rule: 1..249 chars of [a-zA-Z0-9._-], not "." or "..". */
bool rn_meta_topic_name_valid(rn_str_t name);

/* The structural invariants of one partition (also checked by apply): replicas non-empty and
 * distinct; ISR, ELR, adding, removing ⊆ replicas, distinct; ISR ∩ ELR = ∅; adding ∩ removing = ∅;
 * leader = -1 or leader ∈ ISR; epochs ≥ 0; recovery state 0 or 1. NULL if fine, else why. */
const char *rn_meta_partition_check(const rn_meta_part_rec_t *p);
/* Every partition's invariants, and every replica a registered broker. NULL if fine, else why
 * (a static string; `where` receives "topic/partition" when a partition is at fault). */
const char *rn_meta_image_check(const rn_meta_image_t *img, char *where, size_t where_len);

#endif
