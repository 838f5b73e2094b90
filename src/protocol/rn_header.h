/*
 * rn_header.h — Kafka request and response headers.
 *
 * A request starts with api key and api version; which header version follows
 * depends on them:
 *   v0  api key, version, correlation id           (ControlledShutdown v0 only)
 *   v1  + client id (int16-length nullable string)
 *   v2  + tagged fields                            (the API version is flexible)
 * The client id stays a classic string even in v2, so any broker can read the
 * header of an ApiVersions request it does not understand. An unknown API key
 * is read as v1: that is enough to learn the correlation id and answer or
 * close.
 *
 * Responses use header v1 (correlation id + tagged fields) for flexible
 * versions and v0 otherwise, except ApiVersions, which always uses v0 so a
 * client can parse the answer to a version it guessed.
 */
#ifndef RN_HEADER_H
#define RN_HEADER_H

#include <stdint.h>

#include "rn_bytes.h"
#include "rn_err.h"

typedef struct {
    int16_t api_key, api_version;
    int32_t correlation_id;
    rn_str_t client_id; /* points into the input; len -1: null or absent (v0) */
    int header_version;
} rn_req_header_t;

/* Header version (0, 1 or 2) for a request of this API and version. */
int rn_req_header_version(int16_t api_key, int16_t api_version);

/* Read a request header; the reader is left at the start of the body. */
rn_err_t rn_req_header_decode(rn_reader_t *r, rn_req_header_t *h);
/* Write a request header (clients and tests); h->header_version is ignored. */
void rn_req_header_encode(rn_buf_t *b, const rn_req_header_t *h);

/* Response header version (0 or 1). */
int rn_resp_header_version(int16_t api_key, int16_t api_version);
void rn_resp_header_encode(rn_buf_t *b, int16_t api_key, int16_t api_version, int32_t correlation_id);

#endif
