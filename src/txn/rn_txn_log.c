/*
 * rn_txn_log.c — the records of __transaction_state, in Kafka's layouts.
 *
 * __transaction_state is compacted: the newest record of a transactional id
 * is its state; a tombstone (null value) forgets the id (expired). A
 * transactional id lives in partition abs(javaHash(id)) % partitions, the
 * formula __consumer_offsets uses for groups. All integers big-endian;
 * strings int16 length + UTF-8.
 *
 * Key (TransactionLogKey, version 0):
 *    0  int16   version = 0
 *    2  string  transactional_id
 *
 * Value (TransactionLogValue; we write version 0):
 *    0  int16   version = 0
 *    2  int64   producer_id
 *   10  int16   producer_epoch
 *   12  int32   transaction_timeout_ms
 *   16  int8    transaction_status        0 Empty, 1 Ongoing, 2 PrepareCommit,
 *                                         3 PrepareAbort, 4 CompleteCommit,
 *                                         5 CompleteAbort, 6 Dead
 *   17  int32   topic count (-1: null), then per topic:
 *                 string topic
 *                 int32  partition count, then int32 partition ids
 *       int64   transaction_last_update_timestamp_ms
 *       int64   transaction_start_timestamp_ms
 *
 * Version 1 (read only) is the same fields in the flexible encoding (compact
 * strings and arrays, tagged fields after each structure; its tagged
 * PreviousProducerId, NextProducerId and ClientTransactionVersion are
 * skipped).
 */
#include <stdlib.h>
#include <string.h>

#include "rn_txn_log.h"

static const char *const state_names[] = {"Empty",          "Ongoing",       "PrepareCommit", "PrepareAbort",
                                          "CompleteCommit", "CompleteAbort", "Dead"};

const char *rn_txn_state_name(rn_txn_state_t s) {
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "Unknown";
}

int rn_txn_state_from_name(rn_str_t name) {
    for (int i = 0; i < (int)(sizeof(state_names) / sizeof(state_names[0])); i++)
        if (name.len == (int32_t)strlen(state_names[i]) && memcmp(name.ptr, state_names[i], (size_t)name.len) == 0)
            return i;
    return -1;
}

void rn_txn_log_key(rn_buf_t *out, rn_str_t txn_id) {
    rn_buf_put_i16(out, 0);
    rn_buf_put_str(out, txn_id, false);
}

static int cmp_tp(const void *x, const void *y) {
    const rn_txn_tp_t *a = *(const rn_txn_tp_t *const *)x, *b = *(const rn_txn_tp_t *const *)y;
    int c = strcmp(a->topic, b->topic);
    if (c) return c;
    return (a->partition > b->partition) - (a->partition < b->partition);
}

rn_err_t rn_txn_log_value(rn_buf_t *out, const rn_txn_record_t *v) {
    const rn_txn_tp_t **sorted = NULL;
    if (v->nparts > 0) {
        sorted = malloc((size_t)v->nparts * sizeof(*sorted));
        if (!sorted) return RN_ERR_NOMEM;
        for (int32_t i = 0; i < v->nparts; i++) sorted[i] = &v->parts[i];
        qsort(sorted, (size_t)v->nparts, sizeof(*sorted), cmp_tp);
    }
    rn_buf_put_i16(out, 0);
    rn_buf_put_i64(out, v->producer_id);
    rn_buf_put_i16(out, v->producer_epoch);
    rn_buf_put_i32(out, v->timeout_ms);
    rn_buf_put_i8(out, (int8_t)v->state);
    int32_t ntopics = 0;
    for (int32_t i = 0; i < v->nparts; i++)
        if (i == 0 || strcmp(sorted[i]->topic, sorted[i - 1]->topic) != 0) ntopics++;
    rn_buf_put_i32(out, ntopics);
    for (int32_t i = 0; i < v->nparts;) {
        int32_t j = i;
        while (j < v->nparts && strcmp(sorted[j]->topic, sorted[i]->topic) == 0) j++;
        rn_buf_put_str(out, rn_str_from_cstr(sorted[i]->topic), false);
        rn_buf_put_i32(out, j - i);
        for (int32_t k = i; k < j; k++) rn_buf_put_i32(out, sorted[k]->partition);
        i = j;
    }
    rn_buf_put_i64(out, v->last_update_ms);
    rn_buf_put_i64(out, v->start_ms);
    free(sorted);
    return RN_OK;
}

rn_err_t rn_txn_log_parse_key(rn_bytes_t key, rn_str_t *txn_id) {
    if (key.len < 2) return RN_ERR_MALFORMED;
    rn_reader_t r;
    rn_reader_init(&r, key.ptr, (size_t)key.len);
    int16_t v = rn_reader_i16(&r);
    *txn_id = rn_reader_str(&r, false);
    if (rn_reader_err(&r) || v != 0 || txn_id->len <= 0 || rn_reader_remaining(&r) != 0) return RN_ERR_MALFORMED;
    return RN_OK;
}

rn_err_t rn_txn_log_parse_value(rn_bytes_t value, int32_t max_parts, rn_txn_record_t *out) {
    memset(out, 0, sizeof(*out));
    if (value.len < 2) return RN_ERR_MALFORMED;
    rn_reader_t r;
    rn_reader_init(&r, value.ptr, (size_t)value.len);
    int16_t v = rn_reader_i16(&r);
    if (v < 0 || v > 1) return RN_ERR_MALFORMED;
    bool flex = v >= 1;
    out->producer_id = rn_reader_i64(&r);
    out->producer_epoch = rn_reader_i16(&r);
    out->timeout_ms = rn_reader_i32(&r);
    int8_t state = rn_reader_i8(&r);
    /* smallest topic: an empty string and an empty array */
    int32_t ntopics = rn_reader_array_len(&r, flex, flex ? 2 : 6, max_parts);
    if (rn_reader_err(&r) || state < RN_TXN_EMPTY || state > RN_TXN_DEAD) goto bad;
    out->state = (rn_txn_state_t)state;
    for (int32_t i = 0; i < ntopics; i++) {
        rn_str_t topic = rn_reader_str(&r, flex);
        int32_t n = rn_reader_array_len(&r, flex, 4, max_parts);
        if (rn_reader_err(&r) || topic.len <= 0 || memchr(topic.ptr, 0, (size_t)topic.len) || n < 0 ||
            n > max_parts - out->nparts)
            goto bad;
        rn_txn_tp_t *np = realloc(out->parts, (size_t)(out->nparts + n + 1) * sizeof(*np));
        if (!np) goto nomem;
        out->parts = np;
        for (int32_t k = 0; k < n; k++) {
            int32_t id = rn_reader_i32(&r);
            char *name = strndup(topic.ptr, (size_t)topic.len);
            if (!name) goto nomem;
            out->parts[out->nparts++] = (rn_txn_tp_t){name, id};
        }
        if (flex) rn_reader_skip_tagged(&r);
    }
    out->last_update_ms = rn_reader_i64(&r);
    out->start_ms = rn_reader_i64(&r);
    if (flex) rn_reader_skip_tagged(&r);
    if (rn_reader_err(&r) || rn_reader_remaining(&r) != 0) goto bad;
    return RN_OK;
bad:
    rn_txn_record_free(out);
    return RN_ERR_MALFORMED;
nomem:
    rn_txn_record_free(out);
    return RN_ERR_NOMEM;
}

void rn_txn_record_free(rn_txn_record_t *v) {
    for (int32_t i = 0; i < v->nparts; i++) free(v->parts[i].topic);
    free(v->parts);
    v->parts = NULL;
    v->nparts = 0;
}
