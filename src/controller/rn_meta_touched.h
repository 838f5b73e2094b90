/*
 * rn_meta_touched.h — which topics metadata entries touch, so that a node
 * following the image revisits only those (not every partition of every topic
 * on every entry).
 *
 * A topic is touched by its Topic record, a Partition or PartitionChange of
 * one of its partitions, its RemoveTopic, and a Config record of it. Broker
 * records touch no topic (the leadership and ISR changes they cause are
 * PartitionChange records of their own); a broker Config record touches every
 * topic (a cluster-wide default), as does a snapshot load, an entry that does
 * not decode, or more distinct names than RN_META_TOUCHED_MAX (then following
 * everything is cheaper than the list).
 *
 * Entries are noted before they are applied: a RemoveTopic names its topic by
 * id, which only the image before the entry knows; a Partition of a topic the
 * same entry creates is found through that entry's Topic record.
 *
 * Not thread-safe; the owner serialises access. Names are owned copies.
 */
#ifndef RN_META_TOUCHED_H
#define RN_META_TOUCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_meta_image.h"

#define RN_META_TOUCHED_MAX 1024

typedef struct {
    bool all; /* every topic */
    int32_t n, cap;
    char **names; /* distinct */
} rn_meta_touched_t;

void rn_meta_touched_init(rn_meta_touched_t *t); /* empty */
void rn_meta_touched_free(rn_meta_touched_t *t);
void rn_meta_touched_reset(rn_meta_touched_t *t); /* empty again */
void rn_meta_touched_set_all(rn_meta_touched_t *t);
/* Notes one topic by name (len bytes); past the bound or on OOM: all. */
void rn_meta_touched_add(rn_meta_touched_t *t, const char *name, size_t len);
bool rn_meta_touched_has(const rn_meta_touched_t *t, const char *name);
/* Notes the topics of an entry about to be applied to img. */
void rn_meta_touched_entry(rn_meta_touched_t *t, const rn_meta_image_t *img, const uint8_t *p, size_t len);
/* Hands everything noted in src to *dst (which must be empty or freed) and leaves src empty. */
void rn_meta_touched_move(rn_meta_touched_t *dst, rn_meta_touched_t *src);

#endif
