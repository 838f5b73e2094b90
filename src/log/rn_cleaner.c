/*
 * rn_cleaner.c — log compaction (not yet implemented: waits for rn_record_iter).
 */
#include "rn_log_internal.h"

int64_t rn__log_compact(rn_log_t *log, int64_t now_ms, int64_t dedupe_buffer_bytes) { return 0; }
