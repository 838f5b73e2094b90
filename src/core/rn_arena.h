/*
 * rn_arena.h — request-scoped bump allocator, freed in one go.
 *
 * Memory comes in chunks from malloc; the arena refuses (returns NULL) once the
 * total would pass `max_bytes`, so a decoded request can never allocate without
 * bound. Allocations are 8-byte aligned and zeroed.
 */
#ifndef RN_ARENA_H
#define RN_ARENA_H

#include <stddef.h>

typedef struct rn_arena_chunk rn_arena_chunk_t;

typedef struct {
    rn_arena_chunk_t *head;
    size_t used_bytes;  /* bytes handed out plus chunk headers */
    size_t max_bytes;
} rn_arena_t;

void rn_arena_init(rn_arena_t *a, size_t max_bytes);
void *rn_arena_alloc(rn_arena_t *a, size_t size);          /* zeroed; NULL past the bound */
void *rn_arena_calloc(rn_arena_t *a, size_t n, size_t size); /* overflow-checked */
char *rn_arena_strndup(rn_arena_t *a, const char *s, size_t n);
void rn_arena_reset(rn_arena_t *a); /* frees all chunks */

#endif
