/*
 * test_meta_records.c — metadata record codec: every record type round-trips, and the decoder
 * rejects every truncation, a wrong version, an unknown type, trailing bytes and counts past
 * their bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "rn_meta_records.h"
#include "rn_test.h"

static void ids(rn_meta_ids_t *l, int n, ...) {
    __builtin_va_list ap;
    __builtin_va_start(ap, n);
    l->n = n;
    for (int i = 0; i < n; i++) l->ids[i] = __builtin_va_arg(ap, int);
    __builtin_va_end(ap);
}

static void uuid_fill(uint8_t id[16], uint8_t seed) {
    for (int i = 0; i < 16; i++) id[i] = (uint8_t)(seed + i * 7);
}

/* One record of every type, with every optional part present somewhere. */
static int sample_records(rn_meta_record_t *r) {
    int n = 0;
    memset(r, 0, 16 * sizeof(*r));
    r[n].type = RN_META_REGISTER_BROKER;
    r[n].reg.node_id = 3;
    uuid_fill(r[n].reg.incarnation, 1);
    r[n].reg.epoch = 42;
    r[n].reg.rack = RN_STR_LIT("rack-a");
    r[n].reg.nlisteners = 2;
    r[n].reg.listeners[0] = (rn_meta_listener_t){RN_STR_LIT("PLAINTEXT"), RN_STR_LIT("10.0.0.3"), 9092, 0};
    r[n].reg.listeners[1] = (rn_meta_listener_t){RN_STR_LIT("SSL"), RN_STR_LIT("h3.example"), 9093, 1};
    r[n].reg.fenced = true;
    n++;
    r[n].type = RN_META_REGISTER_BROKER; /* no rack, no listeners, shutting down */
    r[n].reg.node_id = 0;
    r[n].reg.epoch = 1;
    r[n].reg.rack = RN_STR_NULL;
    r[n].reg.in_controlled_shutdown = true;
    n++;
    r[n].type = RN_META_FENCE_BROKER, r[n].broker.node_id = 3, r[n].broker.epoch = 42, n++;
    r[n].type = RN_META_UNFENCE_BROKER, r[n].broker.node_id = 3, r[n].broker.epoch = 42, n++;
    r[n].type = RN_META_BROKER_SHUTDOWN, r[n].broker.node_id = 7, r[n].broker.epoch = INT64_MAX, n++;
    r[n].type = RN_META_TOPIC;
    r[n].topic.name = RN_STR_LIT("orders");
    uuid_fill(r[n].topic.id, 9);
    n++;
    r[n].type = RN_META_PARTITION;
    uuid_fill(r[n].part.topic_id, 9);
    r[n].part.partition = 5;
    ids(&r[n].part.replicas, 4, 1, 2, 3, 4);
    ids(&r[n].part.isr, 2, 1, 2);
    ids(&r[n].part.elr, 1, 3);
    ids(&r[n].part.adding, 1, 4);
    ids(&r[n].part.removing, 1, 3);
    r[n].part.leader = 1;
    r[n].part.leader_epoch = 7;
    r[n].part.partition_epoch = 11;
    r[n].part.leader_recovery_state = 1;
    n++;
    r[n].type = RN_META_PARTITION_CHANGE; /* every field */
    uuid_fill(r[n].change.topic_id, 9);
    r[n].change.partition = 5;
    r[n].change.fields = 127;
    r[n].change.leader = -1;
    ids(&r[n].change.isr, 0);
    ids(&r[n].change.elr, 2, 1, 2);
    ids(&r[n].change.replicas, 3, 1, 2, 3);
    ids(&r[n].change.adding, 0);
    ids(&r[n].change.removing, 0);
    r[n].change.leader_recovery_state = 0;
    n++;
    r[n].type = RN_META_PARTITION_CHANGE; /* only the ISR */
    uuid_fill(r[n].change.topic_id, 9);
    r[n].change.fields = RN_META_PC_ISR;
    ids(&r[n].change.isr, 3, 2, 1, 0);
    n++;
    r[n].type = RN_META_REMOVE_TOPIC, uuid_fill(r[n].remove_topic.topic_id, 9), n++;
    r[n].type = RN_META_CONFIG;
    r[n].config.resource_type = RN_META_RESOURCE_TOPIC;
    r[n].config.resource_name = RN_STR_LIT("orders");
    r[n].config.key = RN_STR_LIT("retention.ms");
    r[n].config.value = RN_STR_LIT("86400000");
    n++;
    r[n].type = RN_META_CONFIG; /* delete */
    r[n].config.resource_type = RN_META_RESOURCE_BROKER;
    r[n].config.resource_name = RN_STR_LIT("");
    r[n].config.key = RN_STR_LIT("min.insync.replicas");
    r[n].config.value = RN_STR_NULL;
    n++;
    r[n].type = RN_META_PRODUCER_IDS;
    r[n].pids.broker_id = 2;
    r[n].pids.broker_epoch = 17;
    r[n].pids.next_producer_id = 5000;
    n++;
    r[n].type = RN_META_NOOP, n++;
    return n;
}

static bool str_same(rn_str_t a, rn_str_t b) {
    return a.len == b.len && (a.len <= 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* Field-by-field comparison (the union holds borrowed pointers, so no memcmp). */
static bool record_same(const rn_meta_record_t *a, const rn_meta_record_t *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case RN_META_REGISTER_BROKER:
        if (a->reg.node_id != b->reg.node_id || a->reg.epoch != b->reg.epoch || !str_same(a->reg.rack, b->reg.rack) ||
            memcmp(a->reg.incarnation, b->reg.incarnation, 16) || a->reg.nlisteners != b->reg.nlisteners ||
            a->reg.fenced != b->reg.fenced || a->reg.in_controlled_shutdown != b->reg.in_controlled_shutdown)
            return false;
        for (int i = 0; i < a->reg.nlisteners; i++) {
            const rn_meta_listener_t *x = &a->reg.listeners[i], *y = &b->reg.listeners[i];
            if (!str_same(x->name, y->name) || !str_same(x->host, y->host) || x->port != y->port ||
                x->security_protocol != y->security_protocol)
                return false;
        }
        return true;
    case RN_META_FENCE_BROKER:
    case RN_META_UNFENCE_BROKER:
    case RN_META_BROKER_SHUTDOWN:
        return a->broker.node_id == b->broker.node_id && a->broker.epoch == b->broker.epoch;
    case RN_META_TOPIC: return str_same(a->topic.name, b->topic.name) && !memcmp(a->topic.id, b->topic.id, 16);
    case RN_META_PARTITION: {
        const rn_meta_part_rec_t *x = &a->part, *y = &b->part;
        return !memcmp(x->topic_id, y->topic_id, 16) && x->partition == y->partition &&
               rn_meta_ids_equal(&x->replicas, &y->replicas) && rn_meta_ids_equal(&x->isr, &y->isr) &&
               rn_meta_ids_equal(&x->elr, &y->elr) && rn_meta_ids_equal(&x->adding, &y->adding) &&
               rn_meta_ids_equal(&x->removing, &y->removing) && x->leader == y->leader &&
               x->leader_epoch == y->leader_epoch && x->partition_epoch == y->partition_epoch &&
               x->leader_recovery_state == y->leader_recovery_state;
    }
    case RN_META_PARTITION_CHANGE: {
        const rn_meta_change_rec_t *x = &a->change, *y = &b->change;
        if (memcmp(x->topic_id, y->topic_id, 16) || x->partition != y->partition || x->fields != y->fields) return false;
        uint8_t f = x->fields;
        return (!(f & RN_META_PC_LEADER) || x->leader == y->leader) &&
               (!(f & RN_META_PC_ISR) || rn_meta_ids_equal(&x->isr, &y->isr)) &&
               (!(f & RN_META_PC_ELR) || rn_meta_ids_equal(&x->elr, &y->elr)) &&
               (!(f & RN_META_PC_REPLICAS) || rn_meta_ids_equal(&x->replicas, &y->replicas)) &&
               (!(f & RN_META_PC_ADDING) || rn_meta_ids_equal(&x->adding, &y->adding)) &&
               (!(f & RN_META_PC_REMOVING) || rn_meta_ids_equal(&x->removing, &y->removing)) &&
               (!(f & RN_META_PC_LRS) || x->leader_recovery_state == y->leader_recovery_state);
    }
    case RN_META_REMOVE_TOPIC: return !memcmp(a->remove_topic.topic_id, b->remove_topic.topic_id, 16);
    case RN_META_CONFIG:
        return a->config.resource_type == b->config.resource_type &&
               str_same(a->config.resource_name, b->config.resource_name) && str_same(a->config.key, b->config.key) &&
               str_same(a->config.value, b->config.value);
    case RN_META_PRODUCER_IDS:
        return a->pids.broker_id == b->pids.broker_id && a->pids.broker_epoch == b->pids.broker_epoch &&
               a->pids.next_producer_id == b->pids.next_producer_id;
    case RN_META_NOOP: return true;
    }
    return false;
}

RN_TEST(every_record_round_trips) {
    rn_meta_record_t *recs = calloc(16, sizeof(*recs)), *back = calloc(1, sizeof(*back));
    int n = sample_records(recs);
    ASSERT_EQ(n, 14);
    for (int i = 0; i < n; i++) {
        rn_buf_t b;
        rn_buf_init(&b, 1 << 16);
        rn_meta_record_encode(&recs[i], &b);
        ASSERT_EQ(b.err, RN_OK);
        ASSERT_EQ(b.data[0], recs[i].type);
        ASSERT_EQ(b.data[1], 0); /* version */
        ASSERT_EQ(rn_meta_record_decode(b.data, b.len, back), RN_OK);
        if (!record_same(&recs[i], back)) RN_TEST_FAIL_("record %d (%s) differs after a round trip", i, rn_meta_type_name(recs[i].type));
        /* Re-encoding the decoded record gives the same bytes. */
        rn_buf_t b2;
        rn_buf_init(&b2, 1 << 16);
        rn_meta_record_encode(back, &b2);
        ASSERT_EQ(b2.len, b.len);
        ASSERT_MEMEQ(b2.data, b.data, b.len);
        rn_buf_free(&b2);
        rn_buf_free(&b);
    }
    free(recs);
    free(back);
}

RN_TEST(every_truncation_and_extension_is_rejected) {
    rn_meta_record_t *recs = calloc(16, sizeof(*recs)), *back = calloc(1, sizeof(*back));
    int n = sample_records(recs);
    for (int i = 0; i < n; i++) {
        rn_buf_t b;
        rn_buf_init(&b, 1 << 16);
        rn_meta_record_encode(&recs[i], &b);
        for (size_t cut = 0; cut < b.len; cut++) {
            rn_err_t err = rn_meta_record_decode(b.data, cut, back);
            if (err == RN_OK) RN_TEST_FAIL_("record %d decoded from %zu of %zu bytes", i, cut, b.len);
        }
        rn_buf_put_i8(&b, 0);
        ASSERT_EQ(rn_meta_record_decode(b.data, b.len, back), RN_ERR_MALFORMED);
        rn_buf_free(&b);
    }
    free(recs);
    free(back);
}

RN_TEST(bad_type_version_flags_and_counts) {
    rn_meta_record_t *rec = calloc(1, sizeof(*rec));
    uint8_t unknown[] = {99, 0};
    ASSERT_EQ(rn_meta_record_decode(unknown, 2, rec), RN_ERR_MALFORMED);
    uint8_t zero[] = {0, 0};
    ASSERT_EQ(rn_meta_record_decode(zero, 2, rec), RN_ERR_MALFORMED);
    uint8_t v1[] = {RN_META_NOOP, 1};
    ASSERT_EQ(rn_meta_record_decode(v1, 2, rec), RN_ERR_MALFORMED);
    uint8_t noop[] = {RN_META_NOOP, 0};
    ASSERT_EQ(rn_meta_record_decode(noop, 2, rec), RN_OK);
    ASSERT_EQ(rec->type, RN_META_NOOP);

    /* A PartitionChange with 33 ISR entries: over RN_META_REPLICAS_MAX. */
    rn_buf_t b;
    rn_buf_init(&b, 4096);
    rn_buf_put_i8(&b, RN_META_PARTITION_CHANGE);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_zero(&b, 16);
    rn_buf_put_i32(&b, 0);
    rn_buf_put_i8(&b, RN_META_PC_ISR);
    rn_buf_put_uvarint(&b, RN_META_REPLICAS_MAX + 1);
    for (int i = 0; i <= RN_META_REPLICAS_MAX; i++) rn_buf_put_varint(&b, i);
    ASSERT_EQ(rn_meta_record_decode(b.data, b.len, rec), RN_ERR_LIMIT);
    /* A huge count with no data behind it. */
    rn_buf_reset(&b);
    rn_buf_put_i8(&b, RN_META_PARTITION_CHANGE);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_zero(&b, 16);
    rn_buf_put_i32(&b, 0);
    rn_buf_put_i8(&b, RN_META_PC_ISR);
    rn_buf_put_uvarint(&b, UINT64_MAX);
    ASSERT_NE(rn_meta_record_decode(b.data, b.len, rec), RN_OK);
    /* Unknown PartitionChange field bit. */
    rn_buf_reset(&b);
    rn_buf_put_i8(&b, RN_META_PARTITION_CHANGE);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_zero(&b, 16);
    rn_buf_put_i32(&b, 0);
    rn_buf_put_i8(&b, (int8_t)0x80);
    ASSERT_EQ(rn_meta_record_decode(b.data, b.len, rec), RN_ERR_MALFORMED);
    /* Unknown broker flag. */
    rn_buf_reset(&b);
    rn_buf_put_i8(&b, RN_META_REGISTER_BROKER);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_i32(&b, 1);
    rn_buf_put_zero(&b, 16);
    rn_buf_put_i64(&b, 1);
    rn_buf_put_uvarint(&b, 0); /* null rack */
    rn_buf_put_uvarint(&b, 0); /* no listeners */
    rn_buf_put_i8(&b, 4);
    ASSERT_EQ(rn_meta_record_decode(b.data, b.len, rec), RN_ERR_MALFORMED);
    b.data[b.len - 1] = 3;
    ASSERT_EQ(rn_meta_record_decode(b.data, b.len, rec), RN_OK);
    ASSERT_TRUE(rec->reg.fenced && rec->reg.in_controlled_shutdown && rec->reg.rack.len == -1);
    /* 17 listeners. */
    b.len -= 2;
    rn_buf_put_uvarint(&b, RN_META_LISTENERS_MAX + 1);
    ASSERT_EQ(rn_meta_record_decode(b.data, b.len, rec), RN_ERR_LIMIT);
    /* A topic name longer than 249. */
    rn_buf_reset(&b);
    rn_buf_put_i8(&b, RN_META_TOPIC);
    rn_buf_put_i8(&b, 0);
    rn_buf_put_uvarint(&b, 251);
    rn_buf_put_zero(&b, 250 + 16);
    ASSERT_EQ(rn_meta_record_decode(b.data, b.len, rec), RN_ERR_MALFORMED);
    rn_buf_free(&b);
    free(rec);
}

RN_TEST(entries_iterate_in_order_and_reject_damage) {
    rn_meta_record_t *recs = calloc(16, sizeof(*recs)), *back = calloc(1, sizeof(*back));
    int n = sample_records(recs);
    rn_meta_batch_t batch;
    rn_meta_batch_init(&batch, 1 << 20);
    for (int i = 0; i < n; i++) rn_meta_batch_add(&batch, &recs[i]);
    ASSERT_EQ(batch.count, n);
    rn_meta_iter_t it;
    int seen = 0;
    for (rn_meta_iter_init(&it, batch.buf.data, batch.buf.len); rn_meta_iter_next(&it, back); seen++)
        ASSERT_TRUE(record_same(&recs[seen], back));
    ASSERT_EQ(it.err, RN_OK);
    ASSERT_EQ(seen, n);
    /* Cutting the entry anywhere inside a record fails the iteration. */
    for (size_t cut = 1; cut < batch.buf.len; cut++) {
        int k = 0;
        for (rn_meta_iter_init(&it, batch.buf.data, cut); rn_meta_iter_next(&it, back);) k++;
        ASSERT_TRUE(k < n);
    }
    rn_meta_iter_init(&it, batch.buf.data, batch.buf.len - 1);
    while (rn_meta_iter_next(&it, back)) {
    }
    ASSERT_NE(it.err, RN_OK);
    /* An empty entry has no records and no error. */
    rn_meta_iter_init(&it, batch.buf.data, 0);
    ASSERT_FALSE(rn_meta_iter_next(&it, back));
    ASSERT_EQ(it.err, RN_OK);
    /* The batch bound holds. */
    rn_meta_batch_t small;
    rn_meta_batch_init(&small, 64);
    for (int i = 0; i < n; i++) rn_meta_batch_add(&small, &recs[i]);
    ASSERT_EQ(rn_meta_batch_err(&small), RN_ERR_LIMIT);
    ASSERT_TRUE(small.buf.len <= 64);
    rn_meta_batch_reset(&small);
    ASSERT_EQ(rn_meta_batch_err(&small), RN_OK);
    rn_meta_batch_free(&small);
    rn_meta_batch_free(&batch);
    free(recs);
    free(back);
}

RN_TEST(batches_cut_into_entries_and_roll_back) {
    rn_meta_record_t *recs = calloc(16, sizeof(*recs)), *back = calloc(1, sizeof(*back));
    int n = sample_records(recs);
    rn_meta_batch_t b;
    rn_meta_batch_init(&b, 1 << 20);
    b.entry_bytes_max = 100;
    for (int i = 0; i < n; i++) rn_meta_batch_add(&b, &recs[i]);
    ASSERT_EQ(rn_meta_batch_err(&b), RN_OK);
    int32_t entries = rn_meta_batch_entries(&b);
    ASSERT_GT(entries, 2);
    /* The entries, in order, hold every record once; each is at most 100 bytes unless it is one record. */
    int seen = 0;
    size_t total = 0;
    for (int32_t i = 0; i < entries; i++) {
        const uint8_t *p;
        size_t len;
        rn_meta_batch_entry(&b, i, &p, &len);
        total += len;
        rn_meta_iter_t it;
        int in_entry = 0;
        for (rn_meta_iter_init(&it, p, len); rn_meta_iter_next(&it, back); in_entry++, seen++)
            ASSERT_TRUE(record_same(&recs[seen], back));
        ASSERT_EQ(it.err, RN_OK);
        ASSERT_GT(in_entry, 0);
        ASSERT_TRUE(len <= 100 || in_entry == 1);
    }
    ASSERT_EQ(seen, n);
    ASSERT_EQ(total, b.buf.len);
    /* Roll back to a mark taken mid-way: entries and records as they were. */
    rn_meta_batch_reset(&b);
    for (int i = 0; i < 5; i++) rn_meta_batch_add(&b, &recs[i]);
    rn_meta_batch_mark_t mark = rn_meta_batch_mark(&b);
    int32_t entries_at_mark = rn_meta_batch_entries(&b);
    for (int i = 5; i < n; i++) rn_meta_batch_add(&b, &recs[i]);
    rn_meta_batch_rollback(&b, mark);
    ASSERT_EQ(b.count, 5);
    ASSERT_EQ(rn_meta_batch_entries(&b), entries_at_mark);
    /* Unbounded entries: one. */
    rn_meta_batch_reset(&b);
    b.entry_bytes_max = 0;
    for (int i = 0; i < n; i++) rn_meta_batch_add(&b, &recs[i]);
    ASSERT_EQ(rn_meta_batch_entries(&b), 1);
    rn_meta_batch_reset(&b);
    ASSERT_EQ(rn_meta_batch_entries(&b), 0);
    rn_meta_batch_free(&b);
    free(recs);
    free(back);
}

RN_TEST(id_list_helpers) {
    rn_meta_ids_t a, b;
    ids(&a, 3, 1, 2, 3);
    ids(&b, 3, 3, 1, 2);
    ASSERT_TRUE(rn_meta_ids_same_set(&a, &b));
    ASSERT_FALSE(rn_meta_ids_equal(&a, &b));
    ASSERT_TRUE(rn_meta_ids_add(&a, 2));
    ASSERT_EQ(a.n, 3);
    rn_meta_ids_remove(&a, 2);
    ASSERT_EQ(a.n, 2);
    ASSERT_EQ(a.ids[1], 3);
    ASSERT_TRUE(rn_meta_ids_distinct(&a));
    a.ids[1] = 1;
    ASSERT_FALSE(rn_meta_ids_distinct(&a));
    a.n = 0;
    for (int i = 0; i < RN_META_REPLICAS_MAX; i++) ASSERT_TRUE(rn_meta_ids_add(&a, i));
    ASSERT_FALSE(rn_meta_ids_add(&a, 1000));
}

int main(void) { return rn_test_main(); }
