/*
 * rn_map.h — a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are copied into the map; values are opaque pointers the caller owns.
 * Not thread-safe: the owner serialises access.
 */
#ifndef RN_MAP_H
#define RN_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *key; /* NULL: empty; RN_MAP_TOMBSTONE: deleted */
    size_t key_len;
    size_t hash;
    void *value;
} rn_map_slot_t;

typedef struct {
    rn_map_slot_t *slots;
    size_t cap;   /* power of two */
    size_t count; /* live entries */
    size_t used;  /* live + tombstones */
} rn_map_t;

void rn_map_init(rn_map_t *m);
void rn_map_free(rn_map_t *m); /* frees keys, not values */
void *rn_map_get(const rn_map_t *m, const char *key, size_t key_len);
/* Insert or replace. Returns false only when memory runs out. */
bool rn_map_put(rn_map_t *m, const char *key, size_t key_len, void *value);
void *rn_map_del(rn_map_t *m, const char *key, size_t key_len); /* returns the old value */

/* Iterate: for (size_t i = 0; rn_map_next(m, &i, &k, &v);) ... */
bool rn_map_next(const rn_map_t *m, size_t *iter, const char **key, void **value);

size_t rn_hash_bytes(const void *p, size_t n);

#endif
