/* rn_map.c — see rn_map.h. */
#include "rn_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char tombstone;
#define RN_MAP_TOMBSTONE (&tombstone)

size_t rn_hash_bytes(const void *p, size_t n) {
    /* FNV-1a, 64-bit */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

void rn_map_init(rn_map_t *m) { memset(m, 0, sizeof(*m)); }

void rn_map_free(rn_map_t *m) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != RN_MAP_TOMBSTONE) free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static rn_map_slot_t *find(const rn_map_t *m, const char *key, size_t len, size_t h) {
    if (!m->cap) return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        rn_map_slot_t *s = &m->slots[i];
        if (!s->key) return NULL;
        if (s->key != RN_MAP_TOMBSTONE && s->hash == h && s->key_len == len && !memcmp(s->key, key, len)) return s;
    }
}

void *rn_map_get(const rn_map_t *m, const char *key, size_t key_len) {
    rn_map_slot_t *s = find(m, key, key_len, rn_hash_bytes(key, key_len));
    return s ? s->value : NULL;
}

static bool grow(rn_map_t *m) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    if (m->count * 4 < m->cap) cap = m->cap; /* mostly tombstones: rehash in place size */
    rn_map_slot_t *slots = calloc(cap, sizeof(*slots));
    if (!slots) return false;
    for (size_t i = 0; i < m->cap; i++) {
        rn_map_slot_t *s = &m->slots[i];
        if (!s->key || s->key == RN_MAP_TOMBSTONE) continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key) j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->used = m->count;
    return true;
}

bool rn_map_put(rn_map_t *m, const char *key, size_t key_len, void *value) {
    size_t h = rn_hash_bytes(key, key_len);
    rn_map_slot_t *s = find(m, key, key_len, h);
    if (s) {
        s->value = value;
        return true;
    }
    if ((m->used + 1) * 4 >= m->cap * 3 && !grow(m)) return false;
    char *k = malloc(key_len + 1);
    if (!k) return false;
    memcpy(k, key, key_len);
    k[key_len] = 0;
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && m->slots[i].key != RN_MAP_TOMBSTONE) i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key) m->used++;
    m->slots[i] = (rn_map_slot_t){k, key_len, h, value};
    m->count++;
    return true;
}

void *rn_map_del(rn_map_t *m, const char *key, size_t key_len) {
    rn_map_slot_t *s = find(m, key, key_len, rn_hash_bytes(key, key_len));
    if (!s) return NULL;
    void *v = s->value;
    free(s->key);
    s->key = RN_MAP_TOMBSTONE;
    s->value = NULL;
    m->count--;
    return v;
}

bool rn_map_next(const rn_map_t *m, size_t *iter, const char **key, void **value) {
    while (*iter < m->cap) {
        rn_map_slot_t *s = &m->slots[(*iter)++];
        if (s->key && s->key != RN_MAP_TOMBSTONE) {
            if (key) *key = s->key;
            if (value) *value = s->value;
            return true;
        }
    }
    return false;
}
