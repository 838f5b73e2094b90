/*
 * rn_meta_image.c — applying metadata records, snapshots, queries (see rn_meta_image.h).
 *
 * Layout: brokers in an array of pointers sorted by id; topics in an array of pointers sorted by
 * name plus a hash map by topic id; configs in an array sorted by (type, name, key). Sorted
 * arrays make every iteration (snapshots, queries) deterministic and binary-searchable;
 * inserting is O(n), which metadata rates afford.
 *
 * A partition keeps its five id lists in one allocation (rn_meta_partition_t.ids). Changes go
 * through the expanded form rn_meta_part_rec_t: expand, modify, check the invariants, store.
 */
#include "rn_meta_image.h"

#include <stdlib.h>
#include <string.h>

#include "rn_assert.h"
#include "rn_crc32c.h"
#include "rn_log.h"
#include "rn_logging.h"
#include "rn_map.h"

#define SNAP_MAGIC 0x524E4D53u /* "RNMS" */
#define SNAP_HEADER 33

struct rn_meta_image {
    rn_meta_limits_t lim;
    int64_t applied_offset;
    int64_t broker_epoch_hwm;
    int64_t next_producer_id;
    rn_meta_broker_t **brokers;
    int32_t nbrokers, brokers_cap;
    rn_meta_topic_t **topics;
    int32_t ntopics, topics_cap;
    rn_map_t topics_by_id;
    int64_t npartitions;
    rn_meta_config_t **configs;
    int32_t nconfigs, configs_cap;
};

/* ---- small helpers ---- */

static char *dup_str(rn_str_t s) {
    if (s.len < 0) return NULL;
    char *p = malloc((size_t)s.len + 1);
    if (!p) return NULL;
    if (s.len) memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = 0;
    return p;
}

static bool grow(void **arr, int32_t *cap, int32_t need, size_t elem) {
    if (need <= *cap) return true;
    int32_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p) return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static int cmp_str_len(const char *a, rn_str_t b) {
    size_t alen = strlen(a), n = alen < (size_t)b.len ? alen : (size_t)b.len;
    int c = memcmp(a, b.ptr, n);
    if (c) return c;
    return alen < (size_t)b.len ? -1 : alen > (size_t)b.len ? 1 : 0;
}

bool rn_meta_topic_name_valid(rn_str_t name) {
    if (name.len < 1 || name.len > RN_META_NAME_MAX) return false;
    if (rn_str_eq_cstr(name, RN_METADATA_TOPIC)) return false; /* the quorum's own log directory */
    if ((name.len == 1 && name.ptr[0] == '.') || (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
        return false;
    for (int32_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/* ---- lifecycle ---- */

rn_meta_image_t *rn_meta_image_new(const rn_meta_limits_t *limits) {
    rn_meta_image_t *img = calloc(1, sizeof(*img));
    if (!img) return NULL;
    img->lim = limits ? *limits : RN_META_LIMITS_DEFAULT;
    img->applied_offset = -1;
    img->broker_epoch_hwm = 0;
    img->next_producer_id = 0;
    rn_map_init(&img->topics_by_id);
    return img;
}

static void broker_free(rn_meta_broker_t *b) {
    if (!b) return;
    for (int32_t i = 0; i < b->nlisteners; i++) {
        free(b->listeners[i].name);
        free(b->listeners[i].host);
    }
    free(b->listeners);
    free(b->rack);
    free(b);
}

static void topic_free(rn_meta_topic_t *t) {
    for (int32_t i = 0; i < t->npartitions; i++) free(t->partitions[i].ids);
    free(t->partitions);
    free(t->name);
    free(t);
}

static void config_free(rn_meta_config_t *c) {
    free(c->resource_name);
    free(c->key);
    free(c->value);
    free(c);
}

void rn_meta_image_free(rn_meta_image_t *img) {
    if (!img) return;
    for (int32_t i = 0; i < img->nbrokers; i++) broker_free(img->brokers[i]);
    for (int32_t i = 0; i < img->ntopics; i++) topic_free(img->topics[i]);
    for (int32_t i = 0; i < img->nconfigs; i++) config_free(img->configs[i]);
    free(img->brokers);
    free(img->topics);
    free(img->configs);
    rn_map_free(&img->topics_by_id);
    free(img);
}

const rn_meta_limits_t *rn_meta_image_limits(const rn_meta_image_t *img) { return &img->lim; }
int64_t rn_meta_image_offset(const rn_meta_image_t *img) { return img->applied_offset; }
void rn_meta_image_advance(rn_meta_image_t *img, int64_t offset) {
    if (offset > img->applied_offset) img->applied_offset = offset;
}
int64_t rn_meta_image_broker_epoch_hwm(const rn_meta_image_t *img) { return img->broker_epoch_hwm; }
int64_t rn_meta_image_next_producer_id(const rn_meta_image_t *img) { return img->next_producer_id; }

/* ---- brokers ---- */

/* Index of broker `id`, or -(insertion point) - 1. */
static int32_t broker_find(const rn_meta_image_t *img, int32_t id) {
    int32_t lo = 0, hi = img->nbrokers;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (img->brokers[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < img->nbrokers && img->brokers[lo]->id == id ? lo : -lo - 1;
}

int32_t rn_meta_image_broker_count(const rn_meta_image_t *img) { return img->nbrokers; }
const rn_meta_broker_t *rn_meta_image_broker_at(const rn_meta_image_t *img, int32_t i) {
    return i >= 0 && i < img->nbrokers ? img->brokers[i] : NULL;
}
const rn_meta_listener_owned_t *rn_meta_broker_listener(const rn_meta_broker_t *b, const char *name) {
    for (int32_t i = 0; b && i < b->nlisteners; i++)
        if (strcmp(b->listeners[i].name, name) == 0) return &b->listeners[i];
    return NULL;
}

const rn_meta_broker_t *rn_meta_image_broker(const rn_meta_image_t *img, int32_t id) {
    int32_t i = broker_find(img, id);
    return i >= 0 ? img->brokers[i] : NULL;
}
bool rn_meta_image_broker_active(const rn_meta_image_t *img, int32_t id) {
    return rn_meta_broker_active(rn_meta_image_broker(img, id));
}

static rn_err_t apply_register(rn_meta_image_t *img, const rn_meta_reg_t *g, int64_t offset) {
    if (g->node_id < 0) return RN_ERR_INVALID_ARG;
    int32_t at = broker_find(img, g->node_id);
    if (at < 0 && img->nbrokers >= img->lim.brokers_max) return RN_ERR_LIMIT;
    if (at >= 0 && g->epoch <= img->brokers[at]->epoch) return RN_ERR_STALE_BROKER_EPOCH; /* epochs only grow */
    rn_meta_broker_t *b = calloc(1, sizeof(*b));
    if (!b) return RN_ERR_NOMEM;
    b->id = g->node_id;
    memcpy(b->incarnation, g->incarnation, 16);
    b->epoch = g->epoch;
    b->fenced = g->fenced;
    b->in_controlled_shutdown = g->in_controlled_shutdown;
    b->reg_offset = offset;
    b->shutdown_offset = g->in_controlled_shutdown ? offset : -1;
    bool ok = true;
    if (g->rack.len >= 0) ok = (b->rack = dup_str(g->rack)) != NULL;
    if (ok && g->nlisteners > 0) ok = (b->listeners = calloc((size_t)g->nlisteners, sizeof(*b->listeners))) != NULL;
    for (int32_t i = 0; ok && i < g->nlisteners; i++) {
        b->nlisteners++;
        b->listeners[i].port = g->listeners[i].port;
        b->listeners[i].security_protocol = g->listeners[i].security_protocol;
        ok = (b->listeners[i].name = dup_str(g->listeners[i].name)) && (b->listeners[i].host = dup_str(g->listeners[i].host));
    }
    if (ok && at < 0) ok = grow((void **)&img->brokers, &img->brokers_cap, img->nbrokers + 1, sizeof(*img->brokers));
    if (!ok) {
        broker_free(b);
        return RN_ERR_NOMEM;
    }
    if (at >= 0) {
        broker_free(img->brokers[at]);
        img->brokers[at] = b;
    } else {
        at = -at - 1;
        memmove(&img->brokers[at + 1], &img->brokers[at], (size_t)(img->nbrokers - at) * sizeof(*img->brokers));
        img->brokers[at] = b;
        img->nbrokers++;
    }
    if (g->epoch > img->broker_epoch_hwm) img->broker_epoch_hwm = g->epoch;
    return RN_OK;
}

static rn_err_t apply_broker_state(rn_meta_image_t *img, const rn_meta_record_t *rec, int64_t offset) {
    int32_t at = broker_find(img, rec->broker.node_id);
    if (at < 0) return RN_ERR_BROKER_ID_NOT_REGISTERED;
    rn_meta_broker_t *b = img->brokers[at];
    if (b->epoch != rec->broker.epoch) return RN_ERR_STALE_BROKER_EPOCH;
    switch (rec->type) {
    case RN_META_FENCE_BROKER:
        b->fenced = true;
        b->in_controlled_shutdown = false;
        break;
    case RN_META_UNFENCE_BROKER:
        b->fenced = false;
        b->in_controlled_shutdown = false;
        break;
    default:
        if (b->fenced) return RN_ERR_INVALID_ARG;
        b->in_controlled_shutdown = true;
        b->shutdown_offset = offset;
        break;
    }
    return RN_OK;
}

/* ---- topics and partitions ---- */

static int32_t topic_find(const rn_meta_image_t *img, rn_str_t name) {
    int32_t lo = 0, hi = img->ntopics;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (cmp_str_len(img->topics[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < img->ntopics && cmp_str_len(img->topics[lo]->name, name) == 0 ? lo : -lo - 1;
}

int32_t rn_meta_image_topic_count(const rn_meta_image_t *img) { return img->ntopics; }
const rn_meta_topic_t *rn_meta_image_topic_at(const rn_meta_image_t *img, int32_t i) {
    return i >= 0 && i < img->ntopics ? img->topics[i] : NULL;
}
const rn_meta_topic_t *rn_meta_image_topic_by_name(const rn_meta_image_t *img, rn_str_t name) {
    if (name.len < 0) return NULL;
    int32_t i = topic_find(img, name);
    return i >= 0 ? img->topics[i] : NULL;
}
const rn_meta_topic_t *rn_meta_image_topic_by_id(const rn_meta_image_t *img, const uint8_t id[16]) {
    return rn_map_get(&img->topics_by_id, (const char *)id, 16);
}
int64_t rn_meta_image_partition_count(const rn_meta_image_t *img) { return img->npartitions; }

const rn_meta_partition_t *rn_meta_image_partition(const rn_meta_image_t *img, const uint8_t topic_id[16],
                                                    int32_t partition) {
    const rn_meta_topic_t *t = rn_meta_image_topic_by_id(img, topic_id);
    if (!t || partition < 0 || partition >= t->npartitions) return NULL;
    return &t->partitions[partition];
}

static bool uuid_zero(const uint8_t id[16]) {
    for (int i = 0; i < 16; i++)
        if (id[i]) return false;
    return true;
}

static rn_err_t apply_topic(rn_meta_image_t *img, const rn_meta_record_t *rec) {
    if (!rn_meta_topic_name_valid(rec->topic.name) || uuid_zero(rec->topic.id)) return RN_ERR_INVALID_ARG;
    int32_t at = topic_find(img, rec->topic.name);
    if (at >= 0 || rn_meta_image_topic_by_id(img, rec->topic.id)) return RN_ERR_EXISTS;
    if (img->ntopics >= img->lim.topics_max) return RN_ERR_LIMIT;
    rn_meta_topic_t *t = calloc(1, sizeof(*t));
    if (!t) return RN_ERR_NOMEM;
    memcpy(t->id, rec->topic.id, 16);
    if (!(t->name = dup_str(rec->topic.name)) ||
        !grow((void **)&img->topics, &img->topics_cap, img->ntopics + 1, sizeof(*img->topics)) ||
        !rn_map_put(&img->topics_by_id, (const char *)t->id, 16, t)) {
        topic_free(t);
        return RN_ERR_NOMEM;
    }
    at = -at - 1;
    memmove(&img->topics[at + 1], &img->topics[at], (size_t)(img->ntopics - at) * sizeof(*img->topics));
    img->topics[at] = t;
    img->ntopics++;
    return RN_OK;
}

static void config_remove_resource(rn_meta_image_t *img, int8_t type, const char *name);

static rn_err_t apply_remove_topic(rn_meta_image_t *img, const rn_meta_record_t *rec) {
    rn_meta_topic_t *t = rn_map_get(&img->topics_by_id, (const char *)rec->remove_topic.topic_id, 16);
    if (!t) return RN_ERR_UNKNOWN_TOPIC_ID;
    int32_t at = topic_find(img, rn_str_from_cstr(t->name));
    RN_ASSERT(at >= 0 && img->topics[at] == t);
    memmove(&img->topics[at], &img->topics[at + 1], (size_t)(img->ntopics - at - 1) * sizeof(*img->topics));
    img->ntopics--;
    rn_map_del(&img->topics_by_id, (const char *)t->id, 16);
    img->npartitions -= t->npartitions;
    config_remove_resource(img, RN_META_RESOURCE_TOPIC, t->name);
    topic_free(t);
    return RN_OK;
}

void rn_meta_partition_list(const rn_meta_partition_t *p, int which, rn_meta_ids_t *out) {
    RN_ASSERT(which >= 0 && which < RN_META_L_COUNT);
    size_t off = 0;
    for (int i = 0; i < which; i++) off += p->n[i];
    out->n = p->n[which];
    if (out->n) memcpy(out->ids, p->ids + off, (size_t)out->n * sizeof(int32_t));
}

void rn_meta_partition_get(const rn_meta_topic_t *t, int32_t partition, rn_meta_part_rec_t *out) {
    RN_ASSERT(partition >= 0 && partition < t->npartitions);
    const rn_meta_partition_t *p = &t->partitions[partition];
    memcpy(out->topic_id, t->id, 16);
    out->partition = partition;
    rn_meta_partition_list(p, RN_META_L_REPLICAS, &out->replicas);
    rn_meta_partition_list(p, RN_META_L_ISR, &out->isr);
    rn_meta_partition_list(p, RN_META_L_ELR, &out->elr);
    rn_meta_partition_list(p, RN_META_L_ADDING, &out->adding);
    rn_meta_partition_list(p, RN_META_L_REMOVING, &out->removing);
    out->leader = p->leader;
    out->leader_epoch = p->leader_epoch;
    out->partition_epoch = p->partition_epoch;
    out->leader_recovery_state = p->leader_recovery_state;
}

static bool subset(const rn_meta_ids_t *a, const rn_meta_ids_t *b) {
    for (int32_t i = 0; i < a->n; i++)
        if (!rn_meta_ids_contains(b, a->ids[i])) return false;
    return true;
}

static bool disjoint(const rn_meta_ids_t *a, const rn_meta_ids_t *b) {
    for (int32_t i = 0; i < a->n; i++)
        if (rn_meta_ids_contains(b, a->ids[i])) return false;
    return true;
}

const char *rn_meta_partition_check(const rn_meta_part_rec_t *p) {
    if (p->partition < 0) return "negative partition";
    if (p->replicas.n < 1) return "no replicas";
    for (int32_t i = 0; i < p->replicas.n; i++)
        if (p->replicas.ids[i] < 0) return "negative replica id";
    const rn_meta_ids_t *lists[] = {&p->replicas, &p->isr, &p->elr, &p->adding, &p->removing};
    for (int i = 0; i < 5; i++)
        if (!rn_meta_ids_distinct(lists[i])) return "duplicate id in a replica list";
    if (!subset(&p->isr, &p->replicas)) return "ISR not a subset of replicas";
    if (!subset(&p->elr, &p->replicas)) return "ELR not a subset of replicas";
    if (!subset(&p->adding, &p->replicas) || !subset(&p->removing, &p->replicas))
        return "adding/removing not a subset of replicas";
    if (!disjoint(&p->isr, &p->elr)) return "ISR and ELR overlap";
    if (!disjoint(&p->adding, &p->removing)) return "adding and removing overlap";
    if (p->adding.n >= p->replicas.n || p->removing.n >= p->replicas.n)
        return "reassignment with an empty original or target assignment";
    if (p->leader != RN_META_NO_LEADER && !rn_meta_ids_contains(&p->isr, p->leader)) return "leader not in ISR";
    if (p->leader_epoch < 0 || p->partition_epoch < 0) return "negative epoch";
    if (p->leader_recovery_state != RN_META_LRS_RECOVERED && p->leader_recovery_state != RN_META_LRS_RECOVERING)
        return "bad leader recovery state";
    return NULL;
}

/* Store an expanded partition into slot p (replacing its lists). */
static rn_err_t partition_store(rn_meta_partition_t *p, const rn_meta_part_rec_t *r) {
    const rn_meta_ids_t *lists[] = {&r->replicas, &r->isr, &r->elr, &r->adding, &r->removing};
    size_t total = 0;
    for (int i = 0; i < RN_META_L_COUNT; i++) total += (size_t)lists[i]->n;
    int32_t *ids = malloc(total * sizeof(int32_t));
    if (!ids) return RN_ERR_NOMEM;
    size_t off = 0;
    for (int i = 0; i < RN_META_L_COUNT; i++) {
        if (lists[i]->n) memcpy(ids + off, lists[i]->ids, (size_t)lists[i]->n * sizeof(int32_t));
        off += (size_t)lists[i]->n;
        p->n[i] = (uint8_t)lists[i]->n;
    }
    free(p->ids);
    p->ids = ids;
    p->leader = r->leader;
    p->leader_epoch = r->leader_epoch;
    p->partition_epoch = r->partition_epoch;
    p->leader_recovery_state = r->leader_recovery_state;
    return RN_OK;
}

static rn_err_t apply_partition(rn_meta_image_t *img, const rn_meta_part_rec_t *r) {
    rn_meta_topic_t *t = rn_map_get(&img->topics_by_id, (const char *)r->topic_id, 16);
    if (!t) return RN_ERR_UNKNOWN_TOPIC_ID;
    /* Partitions are only ever added, in order; later changes are PartitionChanges (whose epochs
     * only grow). */
    if (r->partition < t->npartitions) return RN_ERR_EXISTS;
    if (r->partition != t->npartitions) return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (rn_meta_partition_check(r)) return RN_ERR_INVALID_ARG;
    if (img->npartitions >= img->lim.partitions_max) return RN_ERR_LIMIT;
    if (!grow((void **)&t->partitions, &t->cap, t->npartitions + 1, sizeof(*t->partitions))) return RN_ERR_NOMEM;
    rn_meta_partition_t *p = &t->partitions[t->npartitions];
    memset(p, 0, sizeof(*p));
    rn_err_t err = partition_store(p, r);
    if (err) return err;
    t->npartitions++;
    img->npartitions++;
    return RN_OK;
}

static rn_err_t apply_change(rn_meta_image_t *img, const rn_meta_change_rec_t *c) {
    rn_meta_topic_t *t = rn_map_get(&img->topics_by_id, (const char *)c->topic_id, 16);
    if (!t) return RN_ERR_UNKNOWN_TOPIC_ID;
    if (c->partition < 0 || c->partition >= t->npartitions) return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    rn_meta_part_rec_t r;
    rn_meta_partition_get(t, c->partition, &r);
    if (r.partition_epoch == INT32_MAX) return RN_ERR_INVALID_ARG;
    r.partition_epoch++;
    if (c->fields & RN_META_PC_LEADER) {
        if (r.leader_epoch == INT32_MAX) return RN_ERR_INVALID_ARG;
        r.leader = c->leader;
        r.leader_epoch++;
    }
    if (c->fields & RN_META_PC_ISR) r.isr = c->isr;
    if (c->fields & RN_META_PC_ELR) r.elr = c->elr;
    if (c->fields & RN_META_PC_REPLICAS) r.replicas = c->replicas;
    if (c->fields & RN_META_PC_ADDING) r.adding = c->adding;
    if (c->fields & RN_META_PC_REMOVING) r.removing = c->removing;
    if (c->fields & RN_META_PC_LRS) r.leader_recovery_state = c->leader_recovery_state;
    if (rn_meta_partition_check(&r)) return RN_ERR_INVALID_ARG;
    return partition_store(&t->partitions[c->partition], &r);
}

/* ---- configs ---- */

static int config_cmp(const rn_meta_config_t *c, int8_t type, const char *name, const char *key) {
    if (c->resource_type != type) return c->resource_type < type ? -1 : 1;
    int n = strcmp(c->resource_name, name);
    return n ? n : strcmp(c->key, key);
}

static int32_t config_find(const rn_meta_image_t *img, int8_t type, const char *name, const char *key) {
    int32_t lo = 0, hi = img->nconfigs;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (config_cmp(img->configs[mid], type, name, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < img->nconfigs && config_cmp(img->configs[lo], type, name, key) == 0 ? lo : -lo - 1;
}

static void config_remove_at(rn_meta_image_t *img, int32_t at) {
    config_free(img->configs[at]);
    memmove(&img->configs[at], &img->configs[at + 1], (size_t)(img->nconfigs - at - 1) * sizeof(*img->configs));
    img->nconfigs--;
}

static void config_remove_resource(rn_meta_image_t *img, int8_t type, const char *name) {
    for (int32_t i = img->nconfigs - 1; i >= 0; i--)
        if (img->configs[i]->resource_type == type && strcmp(img->configs[i]->resource_name, name) == 0)
            config_remove_at(img, i);
}

int32_t rn_meta_image_config_count(const rn_meta_image_t *img) { return img->nconfigs; }
const rn_meta_config_t *rn_meta_image_config_at(const rn_meta_image_t *img, int32_t i) {
    return i >= 0 && i < img->nconfigs ? img->configs[i] : NULL;
}
int32_t rn_meta_image_resource_configs(const rn_meta_image_t *img, int8_t type, const char *name, int32_t *first) {
    int32_t at = config_find(img, type, name, ""); /* "" sorts before every key */
    if (at < 0) at = -at - 1;
    int32_t n = 0;
    while (at + n < img->nconfigs && img->configs[at + n]->resource_type == type &&
           !strcmp(img->configs[at + n]->resource_name, name))
        n++;
    *first = at;
    return n;
}

const char *rn_meta_image_config(const rn_meta_image_t *img, int8_t type, const char *name, const char *key) {
    int32_t at = config_find(img, type, name, key);
    return at >= 0 ? img->configs[at]->value : NULL;
}

static bool has_nul(rn_str_t s) { return s.len > 0 && memchr(s.ptr, 0, (size_t)s.len) != NULL; }

static rn_err_t apply_config(rn_meta_image_t *img, const rn_meta_record_t *rec) {
    rn_str_t sname = rec->config.resource_name, skey = rec->config.key, sval = rec->config.value;
    if (skey.len < 1 || has_nul(sname) || has_nul(skey) || has_nul(sval)) return RN_ERR_INVALID_ARG;
    char *name = dup_str(sname), *key = dup_str(skey);
    rn_err_t err = RN_OK;
    if (!name || !key) {
        err = RN_ERR_NOMEM;
        goto out;
    }
    int32_t at = config_find(img, rec->config.resource_type, name, key);
    if (sval.len < 0) {
        if (at >= 0) config_remove_at(img, at);
        goto out;
    }
    char *value = dup_str(sval);
    if (!value) {
        err = RN_ERR_NOMEM;
        goto out;
    }
    if (at >= 0) {
        free(img->configs[at]->value);
        img->configs[at]->value = value;
        goto out;
    }
    rn_meta_config_t *c = NULL;
    if (img->nconfigs >= img->lim.configs_max) {
        err = RN_ERR_LIMIT;
    } else if (!grow((void **)&img->configs, &img->configs_cap, img->nconfigs + 1, sizeof(*img->configs)) ||
               !(c = calloc(1, sizeof(*c)))) {
        err = RN_ERR_NOMEM;
    }
    if (err) {
        free(value);
        goto out;
    }
    c->resource_type = rec->config.resource_type;
    c->resource_name = name;
    c->key = key;
    c->value = value;
    name = key = NULL;
    at = -at - 1;
    memmove(&img->configs[at + 1], &img->configs[at], (size_t)(img->nconfigs - at) * sizeof(*img->configs));
    img->configs[at] = c;
    img->nconfigs++;
out:
    free(name);
    free(key);
    return err;
}

/* ---- apply ---- */

rn_err_t rn_meta_image_apply(rn_meta_image_t *img, const rn_meta_record_t *rec, int64_t offset) {
    switch (rec->type) {
    case RN_META_REGISTER_BROKER: return apply_register(img, &rec->reg, offset);
    case RN_META_FENCE_BROKER:
    case RN_META_UNFENCE_BROKER:
    case RN_META_BROKER_SHUTDOWN: return apply_broker_state(img, rec, offset);
    case RN_META_TOPIC: return apply_topic(img, rec);
    case RN_META_PARTITION: return apply_partition(img, &rec->part);
    case RN_META_PARTITION_CHANGE: return apply_change(img, &rec->change);
    case RN_META_REMOVE_TOPIC: return apply_remove_topic(img, rec);
    case RN_META_CONFIG: return apply_config(img, rec);
    case RN_META_PRODUCER_IDS:
        if (rec->pids.next_producer_id <= img->next_producer_id) return RN_ERR_INVALID_ARG;
        img->next_producer_id = rec->pids.next_producer_id;
        return RN_OK;
    case RN_META_NOOP: return RN_OK;
    default: return RN_ERR_MALFORMED;
    }
}

rn_err_t rn_meta_image_apply_entry(rn_meta_image_t *img, const uint8_t *p, size_t len, int64_t offset) {
    rn_meta_iter_t it;
    rn_meta_record_t rec;
    for (rn_meta_iter_init(&it, p, len); rn_meta_iter_next(&it, &rec);) {
    }
    if (it.err) return it.err;
    rn_err_t first = RN_OK;
    for (rn_meta_iter_init(&it, p, len); rn_meta_iter_next(&it, &rec);) {
        rn_err_t err = rn_meta_image_apply(img, &rec, offset);
        if (err) {
            RN_WARN("controller", "metadata record %s at offset %lld not applied: %s", rn_meta_type_name(rec.type),
                    (long long)offset, rn_err_name(err));
            if (!first) first = err;
        }
    }
    rn_meta_image_advance(img, offset);
    return first;
}

/* ---- queries over partitions ---- */

static int64_t collect(const rn_meta_image_t *img, int32_t leader, rn_meta_tp_t *out, int64_t max) {
    int64_t n = 0;
    for (int32_t i = 0; i < img->ntopics; i++) {
        const rn_meta_topic_t *t = img->topics[i];
        for (int32_t j = 0; j < t->npartitions; j++) {
            const rn_meta_partition_t *p = &t->partitions[j];
            bool match = leader >= 0 ? p->leader == leader : rn_meta_partition_reassigning(p);
            if (!match) continue;
            if (n < max) out[n] = (rn_meta_tp_t){t, j};
            n++;
        }
    }
    return n;
}

int64_t rn_meta_image_partitions_led_by(const rn_meta_image_t *img, int32_t broker_id, rn_meta_tp_t *out,
                                        int64_t max) {
    return broker_id < 0 ? 0 : collect(img, broker_id, out, max);
}

int64_t rn_meta_image_reassignments(const rn_meta_image_t *img, rn_meta_tp_t *out, int64_t max) {
    return collect(img, -1, out, max);
}

const char *rn_meta_image_check(const rn_meta_image_t *img, char *where, size_t where_len) {
    for (int32_t i = 0; i < img->ntopics; i++) {
        const rn_meta_topic_t *t = img->topics[i];
        for (int32_t j = 0; j < t->npartitions; j++) {
            rn_meta_part_rec_t r;
            rn_meta_partition_get(t, j, &r);
            const char *why = rn_meta_partition_check(&r);
            for (int32_t k = 0; !why && k < r.replicas.n; k++)
                if (!rn_meta_image_broker(img, r.replicas.ids[k])) why = "replica not a registered broker";
            if (why) {
                if (where && where_len) snprintf(where, where_len, "%s/%d", t->name, j);
                return why;
            }
        }
    }
    return NULL;
}

/* ---- snapshots ---- */

static rn_str_t str_of(const char *s) { return rn_str_from_cstr(s); }

void rn_meta_image_serialize(const rn_meta_image_t *img, rn_buf_t *out) {
    rn_buf_put_u32(out, SNAP_MAGIC);
    rn_buf_put_i8(out, 0);
    rn_buf_put_i64(out, img->applied_offset);
    rn_buf_put_i64(out, img->broker_epoch_hwm);
    rn_buf_put_i64(out, img->next_producer_id);
    size_t crc_pos = rn_buf_put_u32(out, 0);
    rn_meta_batch_t body;
    rn_meta_batch_init(&body, out->max);
    rn_meta_record_t *rec = malloc(sizeof(*rec));
    if (!rec) {
        if (!out->err) out->err = RN_ERR_NOMEM;
        rn_meta_batch_free(&body);
        return;
    }
    for (int32_t i = 0; i < img->nbrokers; i++) {
        const rn_meta_broker_t *b = img->brokers[i];
        memset(rec, 0, sizeof(*rec));
        rec->type = RN_META_REGISTER_BROKER;
        rec->reg.node_id = b->id;
        memcpy(rec->reg.incarnation, b->incarnation, 16);
        rec->reg.epoch = b->epoch;
        rec->reg.rack = str_of(b->rack);
        rec->reg.nlisteners = b->nlisteners;
        for (int32_t k = 0; k < b->nlisteners; k++)
            rec->reg.listeners[k] = (rn_meta_listener_t){str_of(b->listeners[k].name), str_of(b->listeners[k].host),
                                                         b->listeners[k].port, b->listeners[k].security_protocol};
        rec->reg.fenced = b->fenced;
        rec->reg.in_controlled_shutdown = b->in_controlled_shutdown;
        rn_meta_batch_add(&body, rec);
    }
    for (int32_t i = 0; i < img->ntopics; i++) {
        const rn_meta_topic_t *t = img->topics[i];
        memset(rec, 0, sizeof(*rec));
        rec->type = RN_META_TOPIC;
        rec->topic.name = str_of(t->name);
        memcpy(rec->topic.id, t->id, 16);
        rn_meta_batch_add(&body, rec);
        for (int32_t j = 0; j < t->npartitions; j++) {
            memset(rec, 0, sizeof(*rec));
            rec->type = RN_META_PARTITION;
            rn_meta_partition_get(t, j, &rec->part);
            rn_meta_batch_add(&body, rec);
        }
    }
    for (int32_t i = 0; i < img->nconfigs; i++) {
        const rn_meta_config_t *c = img->configs[i];
        memset(rec, 0, sizeof(*rec));
        rec->type = RN_META_CONFIG;
        rec->config.resource_type = c->resource_type;
        rec->config.resource_name = str_of(c->resource_name);
        rec->config.key = str_of(c->key);
        rec->config.value = str_of(c->value);
        rn_meta_batch_add(&body, rec);
    }
    free(rec);
    if (body.buf.err) {
        if (!out->err) out->err = body.buf.err;
    } else {
        rn_buf_put(out, body.buf.data, body.buf.len);
        if (!out->err) {
            uint32_t crc = rn_crc32c(0, out->data + crc_pos - (SNAP_HEADER - 4), SNAP_HEADER - 4);
            rn_buf_patch_u32(out, crc_pos, rn_crc32c(crc, body.buf.data, body.buf.len));
        }
    }
    rn_meta_batch_free(&body);
}

rn_err_t rn_meta_image_load(rn_meta_image_t **out, const rn_meta_limits_t *limits, const uint8_t *p, size_t len) {
    *out = NULL;
    if (len < SNAP_HEADER) return RN_ERR_TRUNCATED;
    if (rn_load_be32(p) != SNAP_MAGIC || p[4] != 0) return RN_ERR_CORRUPT;
    int64_t offset = (int64_t)rn_load_be64(p + 5);
    int64_t hwm = (int64_t)rn_load_be64(p + 13);
    int64_t next_pid = (int64_t)rn_load_be64(p + 21);
    if (rn_load_be32(p + 29) != rn_crc32c(rn_crc32c(0, p, 29), p + SNAP_HEADER, len - SNAP_HEADER)) return RN_ERR_CORRUPT;
    rn_meta_image_t *img = rn_meta_image_new(limits);
    if (!img) return RN_ERR_NOMEM;
    rn_meta_iter_t it;
    rn_meta_record_t rec;
    rn_err_t err = RN_OK;
    for (rn_meta_iter_init(&it, p + SNAP_HEADER, len - SNAP_HEADER); !err && rn_meta_iter_next(&it, &rec);) {
        bool allowed = rec.type == RN_META_REGISTER_BROKER || rec.type == RN_META_TOPIC ||
                       rec.type == RN_META_PARTITION || rec.type == RN_META_CONFIG;
        err = allowed ? rn_meta_image_apply(img, &rec, offset) : RN_ERR_CORRUPT;
    }
    if (!err) err = it.err;
    if (!err && (hwm < img->broker_epoch_hwm || next_pid < 0)) err = RN_ERR_CORRUPT;
    if (err) {
        rn_meta_image_free(img);
        return err;
    }
    img->applied_offset = offset;
    img->broker_epoch_hwm = hwm;
    img->next_producer_id = next_pid;
    *out = img;
    return RN_OK;
}
