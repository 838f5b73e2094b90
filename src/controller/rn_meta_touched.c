/*
 * rn_meta_touched.c — the topics metadata entries touch (rn_meta_touched.h).
 *
 * The names are a small array searched from its end: the records of one
 * decision name the same topic in a row, so the last name is nearly always
 * the one looked for.
 */
#include "rn_meta_touched.h"

#include <stdlib.h>
#include <string.h>

void rn_meta_touched_init(rn_meta_touched_t *t) { memset(t, 0, sizeof(*t)); }

void rn_meta_touched_reset(rn_meta_touched_t *t) {
    for (int32_t i = 0; i < t->n; i++) free(t->names[i]);
    t->n = 0;
    t->all = false;
}

void rn_meta_touched_free(rn_meta_touched_t *t) {
    rn_meta_touched_reset(t);
    free(t->names);
    rn_meta_touched_init(t);
}

void rn_meta_touched_set_all(rn_meta_touched_t *t) {
    rn_meta_touched_reset(t);
    t->all = true;
}

static int32_t find(const rn_meta_touched_t *t, const char *name, size_t len) {
    for (int32_t i = t->n - 1; i >= 0; i--)
        if (strlen(t->names[i]) == len && !memcmp(t->names[i], name, len)) return i;
    return -1;
}

bool rn_meta_touched_has(const rn_meta_touched_t *t, const char *name) {
    return t->all || find(t, name, strlen(name)) >= 0;
}

void rn_meta_touched_add(rn_meta_touched_t *t, const char *name, size_t len) {
    if (t->all || find(t, name, len) >= 0) return;
    if (t->n >= RN_META_TOUCHED_MAX) {
        rn_meta_touched_set_all(t);
        return;
    }
    if (t->n == t->cap) {
        int32_t cap = t->cap ? t->cap * 2 : 8;
        char **v = realloc(t->names, (size_t)cap * sizeof(*v));
        if (!v) {
            rn_meta_touched_set_all(t);
            return;
        }
        t->names = v;
        t->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s) {
        rn_meta_touched_set_all(t);
        return;
    }
    memcpy(s, name, len);
    s[len] = 0;
    t->names[t->n++] = s;
}

/* A topic by id: the image's, or one this entry creates (its Topic records, in `fresh`). */
typedef struct {
    uint8_t id[16];
    rn_str_t name;
} fresh_t;

#define FRESH_MAX 64

static void add_by_id(rn_meta_touched_t *t, const rn_meta_image_t *img, const fresh_t *fresh, int32_t nfresh,
                      const uint8_t id[16]) {
    const rn_meta_topic_t *mt = rn_meta_image_topic_by_id(img, id);
    if (mt) {
        rn_meta_touched_add(t, mt->name, strlen(mt->name));
        return;
    }
    for (int32_t i = nfresh - 1; i >= 0; i--)
        if (!memcmp(fresh[i].id, id, 16)) {
            rn_meta_touched_add(t, fresh[i].name.ptr, (size_t)fresh[i].name.len);
            return;
        }
    /* An unknown id: the record will not apply; nothing to follow. */
}

void rn_meta_touched_entry(rn_meta_touched_t *t, const rn_meta_image_t *img, const uint8_t *p, size_t len) {
    fresh_t fresh[FRESH_MAX];
    int32_t nfresh = 0;
    rn_meta_iter_t it;
    rn_meta_record_t rec;
    for (rn_meta_iter_init(&it, p, len); !t->all && rn_meta_iter_next(&it, &rec);) {
        switch (rec.type) {
        case RN_META_TOPIC:
            if (rec.topic.name.len <= 0) break;
            rn_meta_touched_add(t, rec.topic.name.ptr, (size_t)rec.topic.name.len);
            if (nfresh == FRESH_MAX) {
                rn_meta_touched_set_all(t); /* many topics in one entry: follow everything */
                break;
            }
            memcpy(fresh[nfresh].id, rec.topic.id, 16);
            fresh[nfresh++].name = rec.topic.name;
            break;
        case RN_META_PARTITION: add_by_id(t, img, fresh, nfresh, rec.part.topic_id); break;
        case RN_META_PARTITION_CHANGE: add_by_id(t, img, fresh, nfresh, rec.change.topic_id); break;
        case RN_META_REMOVE_TOPIC: add_by_id(t, img, fresh, nfresh, rec.remove_topic.topic_id); break;
        case RN_META_CONFIG:
            if (rec.config.resource_type != RN_META_RESOURCE_TOPIC) rn_meta_touched_set_all(t);
            else if (rec.config.resource_name.len > 0)
                rn_meta_touched_add(t, rec.config.resource_name.ptr, (size_t)rec.config.resource_name.len);
            break;
        default: /* brokers, producer ids, no-ops: no topic */
            break;
        }
    }
    if (it.err) rn_meta_touched_set_all(t);
}

void rn_meta_touched_move(rn_meta_touched_t *dst, rn_meta_touched_t *src) {
    *dst = *src;
    rn_meta_touched_init(src);
}
