/*
 * rn_client.h — a small blocking Kafka-protocol client for traffic between
 * Runnel nodes: followers fetching from leaders, brokers calling the
 * controller, the metadata quorum's peers. Each user owns its client and a
 * thread to block on (as Kafka's replica fetcher threads do); nothing here
 * touches an event loop.
 *
 * One request at a time: rn_client_call writes a framed request (header v1 or
 * v2 as the API version requires) and reads frames until the one with its
 * correlation id (a stray frame closes the connection: the protocol keeps
 * order). The connection is made on first use and after any failure; a
 * failed call closes it so the next call reconnects. Every wait is bounded by
 * the client's timeout; responses above max_response_bytes close the
 * connection before any allocation. rn_client_interrupt (any thread, for
 * shutdown) makes a blocked call return RN_ERR_AGAIN within a second, and
 * every later call at once.
 */
#ifndef RN_CLIENT_H
#define RN_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"

typedef struct rn_client rn_client_t;

typedef struct {
    const char *host;
    int port;
    const char *client_id;     /* sent in every request header */
    int64_t timeout_ms;        /* connect, send and each response wait; default 30000 */
    size_t max_response_bytes; /* default 100 MiB */
} rn_client_config_t;

rn_err_t rn_client_new(const rn_client_config_t *cfg, rn_client_t **out);
void rn_client_free(rn_client_t *c);
/* Sends `body` (the request body, encoded by the generated codec) and waits
 * for the response; *resp (caller-provided, initialised) receives the response
 * body after its header. Errors: RN_ERR_IO (connect/send/receive failed or
 * timed out), RN_ERR_LIMIT (response too large), RN_ERR_MALFORMED (bad frame),
 * RN_ERR_AGAIN (interrupted). */
rn_err_t rn_client_call(rn_client_t *c, int16_t api_key, int16_t api_version, const rn_buf_t *body,
                        rn_buf_t *resp);
/* Like rn_client_call but waits `timeout_ms` for this response (a Fetch that
 * may wait on the server side for max_wait_ms needs more than the default). */
rn_err_t rn_client_call_timeout(rn_client_t *c, int16_t api_key, int16_t api_version, const rn_buf_t *body,
                                rn_buf_t *resp, int64_t timeout_ms);
void rn_client_interrupt(rn_client_t *c);
bool rn_client_connected(const rn_client_t *c);
void rn_client_disconnect(rn_client_t *c);

#endif
