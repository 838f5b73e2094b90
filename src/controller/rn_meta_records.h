/*
 * rn_meta_records.h — the cluster metadata records the controller writes to the Raft log.
 *
 * Every change to cluster metadata (brokers, topics, partition assignments and leadership,
 * configs, producer id blocks) is one record. The controller decides (rn_controller.h), the
 * records are proposed to Raft as one entry per decision (atomic), and every node applies the
 * committed entries in order to its metadata image (rn_meta_image.h).
 *
 * Wire format of one record (all of our own making; integers big-endian, "uv" = unsigned
 * LEB128 varint, "str" = uv(len+1) then bytes, 0 meaning null; "ids" = uv(count) then each id
 * as a zigzag varint):
 *
 *   u8 type  u8 version(0)  fields…  — no trailing bytes
 *
 *   RegisterBroker   i32 node_id, uuid incarnation, i64 epoch, str rack (nullable),
 *                    uv nlisteners × (str name, str host, u16 port, i16 security_protocol),
 *                    u8 flags (1 fenced, 2 in controlled shutdown)
 *   FenceBroker / UnfenceBroker / BrokerShutdown (controlled shutdown begins)
 *                    i32 node_id, i64 epoch
 *   Topic            str name, uuid topic_id
 *   Partition        uuid topic_id, i32 partition, ids replicas, ids isr, ids elr,
 *                    ids adding, ids removing, i32 leader, i32 leader_epoch,
 *                    i32 partition_epoch, i8 leader_recovery_state
 *   PartitionChange  uuid topic_id, i32 partition, u8 fields, then present fields in this
 *                    order: i32 leader (1), ids isr (2), ids elr (4), ids replicas (8),
 *                    ids adding (16), ids removing (32), i8 leader_recovery_state (64).
 *                    Applying bumps partition_epoch; a present leader also bumps leader_epoch
 *                    (the controller sets it to the same leader to force a bump).
 *   RemoveTopic      uuid topic_id
 *   Config           i8 resource_type (Kafka's: 2 topic, 4 broker), str resource_name,
 *                    str key, str value (null: delete the key)
 *   ProducerIds      i32 broker_id, i64 broker_epoch, i64 next_producer_id
 *   NoOp             (nothing)
 *
 * An entry (what one Raft log entry carries) is a sequence of uv(len) + record, to its end.
 *
 * Decoding checks every length against the input and every count against the RN_META_*_MAX
 * bounds below: any input either decodes or fails with RN_ERR_MALFORMED/TRUNCATED/LIMIT,
 * without allocating. A decoded record borrows its strings from the input bytes.
 */
#ifndef RN_META_RECORDS_H
#define RN_META_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"

#define RN_META_REPLICAS_MAX 32   /* replicas of one partition */
#define RN_META_LISTENERS_MAX 16  /* listeners of one broker */
#define RN_META_NAME_MAX 249      /* topic name, as Kafka */
#define RN_META_STR_MAX 65535     /* any other string (host, rack, config key/value) */
#define RN_META_RECORD_MAX (1u << 20)

#define RN_META_NO_LEADER (-1)

typedef enum {
    RN_META_REGISTER_BROKER = 1,
    RN_META_FENCE_BROKER = 2,
    RN_META_UNFENCE_BROKER = 3,
    RN_META_BROKER_SHUTDOWN = 4,
    RN_META_TOPIC = 5,
    RN_META_PARTITION = 6,
    RN_META_PARTITION_CHANGE = 7,
    RN_META_REMOVE_TOPIC = 8,
    RN_META_CONFIG = 9,
    RN_META_PRODUCER_IDS = 10,
    RN_META_NOOP = 11,
} rn_meta_type_t;

/* Kafka's ConfigResource types. */
#define RN_META_RESOURCE_TOPIC 2
#define RN_META_RESOURCE_BROKER 4

/* PartitionChange field bits. */
enum {
    RN_META_PC_LEADER = 1,
    RN_META_PC_ISR = 2,
    RN_META_PC_ELR = 4,
    RN_META_PC_REPLICAS = 8,
    RN_META_PC_ADDING = 16,
    RN_META_PC_REMOVING = 32,
    RN_META_PC_LRS = 64,
};

/* Leader recovery state (KIP-704): 1 after an unclean election until the leader recovers. */
#define RN_META_LRS_RECOVERED 0
#define RN_META_LRS_RECOVERING 1

typedef struct {
    int32_t n;
    int32_t ids[RN_META_REPLICAS_MAX];
} rn_meta_ids_t;

typedef struct {
    rn_str_t name;
    rn_str_t host;
    uint16_t port;
    int16_t security_protocol;
} rn_meta_listener_t;

typedef struct {
    int32_t node_id;
    uint8_t incarnation[16];
    int64_t epoch;
    rn_str_t rack; /* len -1: none */
    int32_t nlisteners;
    rn_meta_listener_t listeners[RN_META_LISTENERS_MAX];
    bool fenced;
    bool in_controlled_shutdown;
} rn_meta_reg_t;

typedef struct {
    uint8_t topic_id[16];
    int32_t partition;
    rn_meta_ids_t replicas, isr, elr, adding, removing;
    int32_t leader;
    int32_t leader_epoch;
    int32_t partition_epoch;
    int8_t leader_recovery_state;
} rn_meta_part_rec_t;

typedef struct {
    uint8_t topic_id[16];
    int32_t partition;
    uint8_t fields; /* RN_META_PC_* */
    int32_t leader;
    rn_meta_ids_t isr, elr, replicas, adding, removing;
    int8_t leader_recovery_state;
} rn_meta_change_rec_t;

typedef struct {
    uint8_t type;    /* rn_meta_type_t */
    uint8_t version; /* 0 */
    union {
        rn_meta_reg_t reg;
        struct {
            int32_t node_id;
            int64_t epoch;
        } broker; /* FENCE / UNFENCE / BROKER_SHUTDOWN */
        struct {
            rn_str_t name;
            uint8_t id[16];
        } topic;
        rn_meta_part_rec_t part;
        rn_meta_change_rec_t change;
        struct {
            uint8_t topic_id[16];
        } remove_topic;
        struct {
            int8_t resource_type;
            rn_str_t resource_name;
            rn_str_t key;
            rn_str_t value; /* len -1: delete */
        } config;
        struct {
            int32_t broker_id;
            int64_t broker_epoch;
            int64_t next_producer_id;
        } pids;
    };
} rn_meta_record_t;

/* Append one record's encoding to b (errors are sticky in b). Asserts the record is within bounds. */
void rn_meta_record_encode(const rn_meta_record_t *rec, rn_buf_t *b);
/* Decode exactly [p, p+len) as one record; strings borrow from p. */
rn_err_t rn_meta_record_decode(const uint8_t *p, size_t len, rn_meta_record_t *out);
const char *rn_meta_type_name(uint8_t type);

/*
 * The records of one decision, bounded by max bytes, cut into Raft entries of at most
 * entry_bytes_max bytes each (0: one entry; a record larger than that gets an entry of its
 * own). The caller proposes the entries in order. Decisions order their records so that the
 * image is consistent at every entry boundary: a decision cut short after any entry (leadership
 * lost) leaves a valid state that the next controller continues from.
 */
typedef struct {
    rn_buf_t buf;
    int32_t count;
    size_t entry_bytes_max;
    size_t *ends; /* where each closed entry ends; the last, open one ends at buf.len */
    int32_t nends, ends_cap;
} rn_meta_batch_t;

typedef struct {
    size_t len;
    int32_t count, nends;
} rn_meta_batch_mark_t;

void rn_meta_batch_init(rn_meta_batch_t *b, size_t max_bytes);
void rn_meta_batch_free(rn_meta_batch_t *b);
void rn_meta_batch_reset(rn_meta_batch_t *b);
void rn_meta_batch_add(rn_meta_batch_t *b, const rn_meta_record_t *rec);
static inline rn_err_t rn_meta_batch_err(const rn_meta_batch_t *b) { return rn_buf_err(&b->buf); }
int32_t rn_meta_batch_entries(const rn_meta_batch_t *b);
void rn_meta_batch_entry(const rn_meta_batch_t *b, int32_t i, const uint8_t **p, size_t *len);
/* Undo everything added since the mark (and a sticky error). */
static inline rn_meta_batch_mark_t rn_meta_batch_mark(const rn_meta_batch_t *b) {
    return (rn_meta_batch_mark_t){b->buf.len, b->count, b->nends};
}
void rn_meta_batch_rollback(rn_meta_batch_t *b, rn_meta_batch_mark_t m);

/* Iterate the records of an entry: for (rn_meta_iter_init(&it, p, n); rn_meta_iter_next(&it, &rec);) …;
 * then it.err tells whether the whole entry decoded. */
typedef struct {
    rn_reader_t r;
    rn_err_t err;
} rn_meta_iter_t;

void rn_meta_iter_init(rn_meta_iter_t *it, const uint8_t *p, size_t len);
bool rn_meta_iter_next(rn_meta_iter_t *it, rn_meta_record_t *out);

/* Small helpers on id lists. */
bool rn_meta_ids_contains(const rn_meta_ids_t *l, int32_t id);
bool rn_meta_ids_add(rn_meta_ids_t *l, int32_t id); /* no-op if present; false when full */
void rn_meta_ids_remove(rn_meta_ids_t *l, int32_t id);
bool rn_meta_ids_equal(const rn_meta_ids_t *a, const rn_meta_ids_t *b); /* same order */
bool rn_meta_ids_same_set(const rn_meta_ids_t *a, const rn_meta_ids_t *b);
bool rn_meta_ids_distinct(const rn_meta_ids_t *l);

#endif
