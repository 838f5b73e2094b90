/* rn_arena.c — see rn_arena.h. */
#include "rn_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct rn_arena_chunk {
    rn_arena_chunk_t *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

#define RN_ARENA_CHUNK_MIN 4096

void rn_arena_init(rn_arena_t *a, size_t max_bytes) {
    a->head = NULL;
    a->used_bytes = 0;
    a->max_bytes = max_bytes;
}

void *rn_arena_alloc(rn_arena_t *a, size_t size) {
    size = (size + 7) & ~(size_t)7;
    if (size == 0) size = 8;
    rn_arena_chunk_t *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t csize = size > RN_ARENA_CHUNK_MIN ? size : RN_ARENA_CHUNK_MIN;
        if (c && c->size * 2 > csize && c->size < (1u << 20)) csize = c->size * 2;
        size_t total = sizeof(rn_arena_chunk_t) + csize;
        if (total > a->max_bytes || a->used_bytes > a->max_bytes - total) {
            /* retry with the exact size before refusing */
            csize = size;
            total = sizeof(rn_arena_chunk_t) + csize;
            if (total > a->max_bytes || a->used_bytes > a->max_bytes - total) return NULL;
        }
        c = malloc(total);
        if (!c) return NULL;
        c->size = csize;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->used_bytes += sizeof(rn_arena_chunk_t);
    }
    void *p = c->data + c->used;
    c->used += size;
    a->used_bytes += size;
    memset(p, 0, size);
    return p;
}

void *rn_arena_calloc(rn_arena_t *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return rn_arena_alloc(a, n * size);
}

char *rn_arena_strndup(rn_arena_t *a, const char *s, size_t n) {
    char *p = rn_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void rn_arena_reset(rn_arena_t *a) {
    rn_arena_chunk_t *c = a->head;
    while (c) {
        rn_arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->used_bytes = 0;
}
