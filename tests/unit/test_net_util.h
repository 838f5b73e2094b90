/* test_net_util.h — small helpers for tests that run rn_net servers. */
#ifndef TEST_NET_UTIL_H
#define TEST_NET_UTIL_H

#include "rn_header.h"
#include "rn_net.h"

/* Answers a request with its response header and an empty body. */
static inline void tn_respond_empty(rn_req_t *req, const rn_req_header_t *h) {
    rn_buf_t b;
    rn_buf_init(&b, 1024);
    rn_resp_header_encode(&b, h->api_key, h->api_version, h->correlation_id);
    rn_req_respond(req, &b);
    rn_buf_free(&b);
}

#endif
