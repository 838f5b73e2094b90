/* rn_err.c — names for error codes, for logs and CLI messages. */
#include "rn_err.h"

const char *rn_err_name(rn_err_t err) {
    switch (err) {
    case RN_OK: return "NONE";
#define RN__ERR_CASE(name, code) case code: return #name;
        RN_KAFKA_ERRORS(RN__ERR_CASE)
#undef RN__ERR_CASE
    case RN_ERR_UNKNOWN_SERVER_ERROR: return "UNKNOWN_SERVER_ERROR";
    case RN_ERR_TRUNCATED: return "truncated";
    case RN_ERR_MALFORMED: return "malformed";
    case RN_ERR_LIMIT: return "limit exceeded";
    case RN_ERR_NOMEM: return "out of memory";
    case RN_ERR_IO: return "I/O error";
    case RN_ERR_NOT_FOUND: return "not found";
    case RN_ERR_EXISTS: return "exists";
    case RN_ERR_INVALID_ARG: return "invalid argument";
    case RN_ERR_AGAIN: return "again";
    case RN_ERR_CORRUPT: return "corrupt";
    case RN_ERR_NOSPACE: return "no space";
    default: return "unknown error";
    }
}
