/*
 * rn_peers.h — best-effort one-way messages to other nodes (the metadata
 * quorum's Raft traffic).
 *
 * One sender thread per peer drains that peer's queue and sends what it holds
 * as one request of a Runnel-internal API (rn_client over the peer's
 * listener); the receiving broker hands each message to its handler and
 * answers with an empty body. The body is u32 count, then per message u32
 * length + bytes. Delivery is best effort, as Raft expects: a full queue
 * drops the new message, a failed send drops the batch (and the connection is
 * retried after a short pause). Bounded: at most queue_max messages and
 * queue_max_bytes per peer.
 */
#ifndef RN_PEERS_H
#define RN_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_err.h"

typedef struct rn_peers rn_peers_t;

typedef struct {
    int32_t self;
    int16_t api_key;        /* the internal API the receiver dispatches on */
    int32_t queue_max;      /* messages per peer, default 1024 */
    size_t queue_max_bytes; /* per peer, default 64 MiB */
    size_t batch_max_bytes; /* per request, default 8 MiB */
    int64_t timeout_ms;     /* per request, default 5000 */
} rn_peers_config_t;

rn_err_t rn_peers_new(const rn_peers_config_t *cfg, rn_peers_t **out);
/* Stops the senders (queued messages are dropped) and frees. */
void rn_peers_free(rn_peers_t *p);
/* Adds a peer or changes its address. */
rn_err_t rn_peers_set(rn_peers_t *p, int32_t id, const char *host, int port);
/* Queues a copy of msg for `to` (unknown peer or full queue: dropped, false). */
bool rn_peers_send(rn_peers_t *p, int32_t to, const void *msg, size_t len);
/* Messages and bytes dropped so far (all peers). */
uint64_t rn_peers_dropped(const rn_peers_t *p);

/* Receiving side: calls fn for each message of a request body; MALFORMED if
 * the body does not parse (nothing is delivered then). */
rn_err_t rn_peers_each(const uint8_t *body, size_t len, void (*fn)(void *arg, const uint8_t *msg, size_t len),
                       void *arg);

#endif
