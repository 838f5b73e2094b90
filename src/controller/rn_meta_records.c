/*
 * rn_meta_records.c — encoding and decoding of metadata records (format: rn_meta_records.h).
 *
 * The encoder and decoder are written field by field, in the same order, per record type.
 * The decoder reads through an rn_reader_t (sticky error, never out of bounds), checks every
 * count against its RN_META_*_MAX bound and insists on consuming the record exactly.
 */
#include "rn_meta_records.h"

#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"

#define FLAG_FENCED 1
#define FLAG_SHUTDOWN 2

const char *rn_meta_type_name(uint8_t type) {
    switch (type) {
    case RN_META_REGISTER_BROKER: return "RegisterBroker";
    case RN_META_FENCE_BROKER: return "FenceBroker";
    case RN_META_UNFENCE_BROKER: return "UnfenceBroker";
    case RN_META_BROKER_SHUTDOWN: return "BrokerShutdown";
    case RN_META_TOPIC: return "Topic";
    case RN_META_PARTITION: return "Partition";
    case RN_META_PARTITION_CHANGE: return "PartitionChange";
    case RN_META_REMOVE_TOPIC: return "RemoveTopic";
    case RN_META_CONFIG: return "Config";
    case RN_META_PRODUCER_IDS: return "ProducerIds";
    case RN_META_NOOP: return "NoOp";
    default: return "unknown";
    }
}

/* ---- id lists ---- */

bool rn_meta_ids_contains(const rn_meta_ids_t *l, int32_t id) {
    for (int32_t i = 0; i < l->n; i++)
        if (l->ids[i] == id) return true;
    return false;
}

bool rn_meta_ids_add(rn_meta_ids_t *l, int32_t id) {
    if (rn_meta_ids_contains(l, id)) return true;
    if (l->n >= RN_META_REPLICAS_MAX) return false;
    l->ids[l->n++] = id;
    return true;
}

void rn_meta_ids_remove(rn_meta_ids_t *l, int32_t id) {
    int32_t w = 0;
    for (int32_t i = 0; i < l->n; i++)
        if (l->ids[i] != id) l->ids[w++] = l->ids[i];
    l->n = w;
}

bool rn_meta_ids_equal(const rn_meta_ids_t *a, const rn_meta_ids_t *b) {
    return a->n == b->n && memcmp(a->ids, b->ids, (size_t)a->n * sizeof(int32_t)) == 0;
}

bool rn_meta_ids_same_set(const rn_meta_ids_t *a, const rn_meta_ids_t *b) {
    if (a->n != b->n) return false;
    for (int32_t i = 0; i < a->n; i++)
        if (!rn_meta_ids_contains(b, a->ids[i])) return false;
    return true;
}

bool rn_meta_ids_distinct(const rn_meta_ids_t *l) {
    for (int32_t i = 0; i < l->n; i++)
        for (int32_t j = i + 1; j < l->n; j++)
            if (l->ids[i] == l->ids[j]) return false;
    return true;
}

/* ---- encoding ---- */

static void put_str(rn_buf_t *b, rn_str_t s) {
    RN_ASSERT(s.len <= RN_META_STR_MAX);
    rn_buf_put_str(b, s, true);
}

static void put_ids(rn_buf_t *b, const rn_meta_ids_t *l) {
    RN_ASSERT(l->n >= 0 && l->n <= RN_META_REPLICAS_MAX);
    rn_buf_put_uvarint(b, (uint64_t)l->n);
    for (int32_t i = 0; i < l->n; i++) rn_buf_put_varint(b, l->ids[i]);
}

static void encode_body(const rn_meta_record_t *rec, rn_buf_t *b) {
    switch (rec->type) {
    case RN_META_REGISTER_BROKER: {
        const rn_meta_reg_t *g = &rec->reg;
        RN_ASSERT(g->nlisteners >= 0 && g->nlisteners <= RN_META_LISTENERS_MAX);
        rn_buf_put_i32(b, g->node_id);
        rn_buf_put_uuid(b, g->incarnation);
        rn_buf_put_i64(b, g->epoch);
        put_str(b, g->rack);
        rn_buf_put_uvarint(b, (uint64_t)g->nlisteners);
        for (int32_t i = 0; i < g->nlisteners; i++) {
            put_str(b, g->listeners[i].name);
            put_str(b, g->listeners[i].host);
            rn_buf_put_u16(b, g->listeners[i].port);
            rn_buf_put_i16(b, g->listeners[i].security_protocol);
        }
        rn_buf_put_i8(b, (int8_t)((g->fenced ? FLAG_FENCED : 0) | (g->in_controlled_shutdown ? FLAG_SHUTDOWN : 0)));
        break;
    }
    case RN_META_FENCE_BROKER:
    case RN_META_UNFENCE_BROKER:
    case RN_META_BROKER_SHUTDOWN:
        rn_buf_put_i32(b, rec->broker.node_id);
        rn_buf_put_i64(b, rec->broker.epoch);
        break;
    case RN_META_TOPIC:
        RN_ASSERT(rec->topic.name.len >= 0 && rec->topic.name.len <= RN_META_NAME_MAX);
        put_str(b, rec->topic.name);
        rn_buf_put_uuid(b, rec->topic.id);
        break;
    case RN_META_PARTITION: {
        const rn_meta_part_rec_t *p = &rec->part;
        rn_buf_put_uuid(b, p->topic_id);
        rn_buf_put_i32(b, p->partition);
        put_ids(b, &p->replicas);
        put_ids(b, &p->isr);
        put_ids(b, &p->elr);
        put_ids(b, &p->adding);
        put_ids(b, &p->removing);
        rn_buf_put_i32(b, p->leader);
        rn_buf_put_i32(b, p->leader_epoch);
        rn_buf_put_i32(b, p->partition_epoch);
        rn_buf_put_i8(b, p->leader_recovery_state);
        break;
    }
    case RN_META_PARTITION_CHANGE: {
        const rn_meta_change_rec_t *c = &rec->change;
        RN_ASSERT(c->fields < 128);
        rn_buf_put_uuid(b, c->topic_id);
        rn_buf_put_i32(b, c->partition);
        rn_buf_put_i8(b, (int8_t)c->fields);
        if (c->fields & RN_META_PC_LEADER) rn_buf_put_i32(b, c->leader);
        if (c->fields & RN_META_PC_ISR) put_ids(b, &c->isr);
        if (c->fields & RN_META_PC_ELR) put_ids(b, &c->elr);
        if (c->fields & RN_META_PC_REPLICAS) put_ids(b, &c->replicas);
        if (c->fields & RN_META_PC_ADDING) put_ids(b, &c->adding);
        if (c->fields & RN_META_PC_REMOVING) put_ids(b, &c->removing);
        if (c->fields & RN_META_PC_LRS) rn_buf_put_i8(b, c->leader_recovery_state);
        break;
    }
    case RN_META_REMOVE_TOPIC:
        rn_buf_put_uuid(b, rec->remove_topic.topic_id);
        break;
    case RN_META_CONFIG:
        rn_buf_put_i8(b, rec->config.resource_type);
        put_str(b, rec->config.resource_name);
        put_str(b, rec->config.key);
        put_str(b, rec->config.value);
        break;
    case RN_META_PRODUCER_IDS:
        rn_buf_put_i32(b, rec->pids.broker_id);
        rn_buf_put_i64(b, rec->pids.broker_epoch);
        rn_buf_put_i64(b, rec->pids.next_producer_id);
        break;
    case RN_META_NOOP:
        break;
    default:
        RN_UNREACHABLE();
    }
}

void rn_meta_record_encode(const rn_meta_record_t *rec, rn_buf_t *b) {
    rn_buf_put_i8(b, (int8_t)rec->type);
    rn_buf_put_i8(b, 0);
    encode_body(rec, b);
}

/* ---- decoding ---- */

static rn_str_t get_str(rn_reader_t *r, int32_t max, bool nullable) {
    rn_str_t s = rn_reader_str(r, true);
    if (r->err) return RN_STR_NULL;
    if (s.len > max || (!nullable && s.len < 0)) rn_reader_fail(r, RN_ERR_MALFORMED);
    return s;
}

static void get_ids(rn_reader_t *r, rn_meta_ids_t *l) {
    uint64_t n = rn_reader_uvarint(r);
    l->n = 0;
    if (r->err) return;
    if (n > RN_META_REPLICAS_MAX) {
        rn_reader_fail(r, RN_ERR_LIMIT);
        return;
    }
    for (uint64_t i = 0; i < n && !r->err; i++) l->ids[l->n++] = rn_reader_varint(r);
    if (r->err) l->n = 0;
}

rn_err_t rn_meta_record_decode(const uint8_t *p, size_t len, rn_meta_record_t *out) {
    memset(out, 0, sizeof(*out));
    if (len > RN_META_RECORD_MAX) return RN_ERR_LIMIT;
    rn_reader_t rd, *r = &rd;
    rn_reader_init(r, p, len);
    out->type = (uint8_t)rn_reader_i8(r);
    out->version = (uint8_t)rn_reader_i8(r);
    if (r->err) return r->err;
    if (out->version != 0) return RN_ERR_MALFORMED;
    switch (out->type) {
    case RN_META_REGISTER_BROKER: {
        rn_meta_reg_t *g = &out->reg;
        g->node_id = rn_reader_i32(r);
        rn_reader_uuid(r, g->incarnation);
        g->epoch = rn_reader_i64(r);
        g->rack = get_str(r, RN_META_STR_MAX, true);
        uint64_t n = rn_reader_uvarint(r);
        if (!r->err && n > RN_META_LISTENERS_MAX) rn_reader_fail(r, RN_ERR_LIMIT);
        for (uint64_t i = 0; i < n && !r->err; i++) {
            rn_meta_listener_t *l = &g->listeners[g->nlisteners++];
            l->name = get_str(r, RN_META_STR_MAX, false);
            l->host = get_str(r, RN_META_STR_MAX, false);
            l->port = rn_reader_u16(r);
            l->security_protocol = rn_reader_i16(r);
        }
        int8_t flags = rn_reader_i8(r);
        if (flags & ~(FLAG_FENCED | FLAG_SHUTDOWN)) rn_reader_fail(r, RN_ERR_MALFORMED);
        g->fenced = flags & FLAG_FENCED;
        g->in_controlled_shutdown = flags & FLAG_SHUTDOWN;
        break;
    }
    case RN_META_FENCE_BROKER:
    case RN_META_UNFENCE_BROKER:
    case RN_META_BROKER_SHUTDOWN:
        out->broker.node_id = rn_reader_i32(r);
        out->broker.epoch = rn_reader_i64(r);
        break;
    case RN_META_TOPIC:
        out->topic.name = get_str(r, RN_META_NAME_MAX, false);
        rn_reader_uuid(r, out->topic.id);
        break;
    case RN_META_PARTITION: {
        rn_meta_part_rec_t *pr = &out->part;
        rn_reader_uuid(r, pr->topic_id);
        pr->partition = rn_reader_i32(r);
        get_ids(r, &pr->replicas);
        get_ids(r, &pr->isr);
        get_ids(r, &pr->elr);
        get_ids(r, &pr->adding);
        get_ids(r, &pr->removing);
        pr->leader = rn_reader_i32(r);
        pr->leader_epoch = rn_reader_i32(r);
        pr->partition_epoch = rn_reader_i32(r);
        pr->leader_recovery_state = rn_reader_i8(r);
        break;
    }
    case RN_META_PARTITION_CHANGE: {
        rn_meta_change_rec_t *c = &out->change;
        rn_reader_uuid(r, c->topic_id);
        c->partition = rn_reader_i32(r);
        c->fields = (uint8_t)rn_reader_i8(r);
        if (c->fields >= 128) rn_reader_fail(r, RN_ERR_MALFORMED);
        if (c->fields & RN_META_PC_LEADER) c->leader = rn_reader_i32(r);
        if (c->fields & RN_META_PC_ISR) get_ids(r, &c->isr);
        if (c->fields & RN_META_PC_ELR) get_ids(r, &c->elr);
        if (c->fields & RN_META_PC_REPLICAS) get_ids(r, &c->replicas);
        if (c->fields & RN_META_PC_ADDING) get_ids(r, &c->adding);
        if (c->fields & RN_META_PC_REMOVING) get_ids(r, &c->removing);
        if (c->fields & RN_META_PC_LRS) c->leader_recovery_state = rn_reader_i8(r);
        break;
    }
    case RN_META_REMOVE_TOPIC:
        rn_reader_uuid(r, out->remove_topic.topic_id);
        break;
    case RN_META_CONFIG:
        out->config.resource_type = rn_reader_i8(r);
        out->config.resource_name = get_str(r, RN_META_STR_MAX, false);
        out->config.key = get_str(r, RN_META_STR_MAX, false);
        out->config.value = get_str(r, RN_META_STR_MAX, true);
        break;
    case RN_META_PRODUCER_IDS:
        out->pids.broker_id = rn_reader_i32(r);
        out->pids.broker_epoch = rn_reader_i64(r);
        out->pids.next_producer_id = rn_reader_i64(r);
        break;
    case RN_META_NOOP:
        break;
    default:
        return RN_ERR_MALFORMED;
    }
    if (r->err) return r->err;
    if (rn_reader_remaining(r) != 0) return RN_ERR_MALFORMED;
    return RN_OK;
}

/* ---- entries ---- */

void rn_meta_batch_init(rn_meta_batch_t *b, size_t max_bytes) {
    memset(b, 0, sizeof(*b));
    rn_buf_init(&b->buf, max_bytes);
}

void rn_meta_batch_free(rn_meta_batch_t *b) {
    rn_buf_free(&b->buf);
    free(b->ends);
    b->ends = NULL;
    b->count = b->nends = b->ends_cap = 0;
}

void rn_meta_batch_reset(rn_meta_batch_t *b) {
    rn_buf_reset(&b->buf);
    b->count = 0;
    b->nends = 0;
}

void rn_meta_batch_rollback(rn_meta_batch_t *b, rn_meta_batch_mark_t m) {
    b->buf.len = m.len;
    b->buf.err = RN_OK;
    b->count = m.count;
    b->nends = m.nends;
}

int32_t rn_meta_batch_entries(const rn_meta_batch_t *b) {
    size_t open_start = b->nends ? b->ends[b->nends - 1] : 0;
    return b->nends + (b->buf.len > open_start ? 1 : 0);
}

void rn_meta_batch_entry(const rn_meta_batch_t *b, int32_t i, const uint8_t **p, size_t *len) {
    RN_ASSERT(i >= 0 && i < rn_meta_batch_entries(b));
    size_t start = i ? b->ends[i - 1] : 0, end = i < b->nends ? b->ends[i] : b->buf.len;
    *p = b->buf.data + start;
    *len = end - start;
}

/* Close the open entry if `more` bytes would take it past entry_bytes_max. */
static void maybe_cut(rn_meta_batch_t *b, size_t more) {
    size_t open_start = b->nends ? b->ends[b->nends - 1] : 0;
    if (!b->entry_bytes_max || b->buf.len == open_start || b->buf.len - open_start + more <= b->entry_bytes_max)
        return;
    if (b->nends == b->ends_cap) {
        /* Every entry holds a record, so there are never more entries than bytes allowed. */
        int32_t ncap = b->ends_cap ? b->ends_cap * 2 : 16;
        size_t *p = realloc(b->ends, (size_t)ncap * sizeof(*p));
        if (!p) {
            if (!b->buf.err) b->buf.err = RN_ERR_NOMEM;
            return;
        }
        b->ends = p;
        b->ends_cap = ncap;
    }
    b->ends[b->nends++] = b->buf.len;
}

void rn_meta_batch_add(rn_meta_batch_t *b, const rn_meta_record_t *rec) {
    /* Encode once into a scratch buffer to learn the length, then copy with its prefix. */
    rn_buf_t tmp;
    rn_buf_init(&tmp, RN_META_RECORD_MAX);
    rn_meta_record_encode(rec, &tmp);
    if (tmp.err) {
        if (b->buf.err == RN_OK) b->buf.err = tmp.err;
    } else if (!b->buf.err) {
        maybe_cut(b, rn_uvarint_size(tmp.len) + tmp.len);
        rn_buf_put_uvarint(&b->buf, tmp.len);
        rn_buf_put(&b->buf, tmp.data, tmp.len);
        b->count++;
    }
    rn_buf_free(&tmp);
}

void rn_meta_iter_init(rn_meta_iter_t *it, const uint8_t *p, size_t len) {
    rn_reader_init(&it->r, p, len);
    it->err = RN_OK;
}

bool rn_meta_iter_next(rn_meta_iter_t *it, rn_meta_record_t *out) {
    if (it->err || rn_reader_remaining(&it->r) == 0) return false;
    uint64_t n = rn_reader_uvarint(&it->r);
    if (it->r.err == RN_OK && n > rn_reader_remaining(&it->r)) rn_reader_fail(&it->r, RN_ERR_TRUNCATED);
    const uint8_t *p = it->r.err ? NULL : rn_reader_take(&it->r, (size_t)n);
    if (!p) {
        it->err = it->r.err ? it->r.err : RN_ERR_TRUNCATED;
        return false;
    }
    it->err = rn_meta_record_decode(p, (size_t)n, out);
    return it->err == RN_OK;
}
