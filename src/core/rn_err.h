/*
 * rn_err.h — Runnel's one error type.
 *
 * rn_err_t is an int: RN_OK (0) is success, positive values are Kafka's wire
 * error codes (so a handler can put one straight into an ErrorCode field), and
 * internal conditions live in a separate negative range that never reaches the
 * wire. UNKNOWN_SERVER_ERROR is -1 on the wire; internally it is
 * RN_ERR_UNKNOWN_SERVER_ERROR and rn_err_wire() maps every internal error to it.
 */
#ifndef RN_ERR_H
#define RN_ERR_H

#include "rn_errcodes_gen.h"

typedef int rn_err_t;

#define RN_OK 0

enum {
#define RN__ERR_ENUM(name, code) RN_ERR_##name = code,
    RN_KAFKA_ERRORS(RN__ERR_ENUM)
#undef RN__ERR_ENUM
};

/* Internal errors: never sent to a client as-is. */
enum {
    RN_ERR_UNKNOWN_SERVER_ERROR = -1, /* also the wire code -1 */
    RN_ERR_TRUNCATED = -1001,         /* input ended inside a field */
    RN_ERR_MALFORMED = -1002,         /* input is structurally invalid */
    RN_ERR_LIMIT = -1003,             /* a configured bound was exceeded */
    RN_ERR_NOMEM = -1004,             /* allocation failed */
    RN_ERR_IO = -1005,                /* a system call failed (errno logged) */
    RN_ERR_NOT_FOUND = -1006,
    RN_ERR_EXISTS = -1007,
    RN_ERR_INVALID_ARG = -1008,
    RN_ERR_AGAIN = -1009, /* not ready yet; try later */
    RN_ERR_CORRUPT = -1010,
    RN_ERR_NOSPACE = -1011,
};

/* Kafka's name for a wire code, or an internal error's name. */
const char *rn_err_name(rn_err_t err);

/* The code to put on the wire: internal errors become UNKNOWN_SERVER_ERROR (-1). */
static inline short rn_err_wire(rn_err_t err) {
    return (short)(err >= 0 ? err : -1);
}

#endif
