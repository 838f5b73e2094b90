/* rn_header.c — see rn_header.h. Built on the generated RequestHeader/ResponseHeader codec. */
#include "rn_header.h"

#include "rn_msg_gen.h"

/* Requests whose header version is not what flexibility alone says. */
static const struct {
    int16_t api_key;
    int16_t max_version; /* versions <= this use header_version */
    int header_version;
} header_exceptions[] = {
    {RN_API_CONTROLLED_SHUTDOWN, 0, 0},
};

static bool is_flexible(const rn_api_info_t *api, int16_t api_version) {
    return api && api->flexible_min >= 0 && api_version >= api->flexible_min;
}

int rn_req_header_version(int16_t api_key, int16_t api_version) {
    for (size_t i = 0; i < sizeof(header_exceptions) / sizeof(header_exceptions[0]); i++)
        if (header_exceptions[i].api_key == api_key && api_version >= 0 &&
            api_version <= header_exceptions[i].max_version)
            return header_exceptions[i].header_version;
    return is_flexible(rn_api_info_known(api_key), api_version) ? 2 : 1;
}

rn_err_t rn_req_header_decode(rn_reader_t *r, rn_req_header_t *h) {
    rn_reader_t peek = *r;
    int16_t api_key = rn_reader_i16(&peek);
    int16_t api_version = rn_reader_i16(&peek);
    h->api_key = api_key;
    h->api_version = api_version;
    h->correlation_id = 0;
    h->client_id = RN_STR_NULL;
    h->header_version = rn_req_header_version(api_key, api_version);
    rn_RequestHeader_t rh;
    rn_err_t err = rn_RequestHeader_decode(r, (int16_t)h->header_version, NULL, &rh);
    h->correlation_id = rh.CorrelationId;
    h->client_id = rh.ClientId;
    if (h->header_version == 0) h->client_id = RN_STR_NULL;
    return err;
}

void rn_req_header_encode(rn_buf_t *b, const rn_req_header_t *h) {
    rn_RequestHeader_t rh;
    rn_RequestHeader_init(&rh);
    rh.RequestApiKey = h->api_key;
    rh.RequestApiVersion = h->api_version;
    rh.CorrelationId = h->correlation_id;
    rh.ClientId = h->client_id;
    rn_RequestHeader_encode(b, (int16_t)rn_req_header_version(h->api_key, h->api_version), &rh);
}

int rn_resp_header_version(int16_t api_key, int16_t api_version) {
    if (api_key == RN_API_API_VERSIONS) return 0;
    return is_flexible(rn_api_info_known(api_key), api_version) ? 1 : 0;
}

void rn_resp_header_encode(rn_buf_t *b, int16_t api_key, int16_t api_version, int32_t correlation_id) {
    rn_ResponseHeader_t rh;
    rn_ResponseHeader_init(&rh);
    rh.CorrelationId = correlation_id;
    rn_ResponseHeader_encode(b, (int16_t)rn_resp_header_version(api_key, api_version), &rh);
}
