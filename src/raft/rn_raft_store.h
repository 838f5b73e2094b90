/*
 * rn_raft_store.h — Raft's durable state in a directory of files.
 *
 * The storage half of rn_raft_io_t, on real files: an append-only log with a
 * CRC-32C per entry, the term and vote in a file replaced atomically, and the
 * latest snapshot in another. The formats and the recovery rules are at the
 * top of rn_raft_store.c.
 *
 * The embedding's io vtable forwards append/truncate/sync/save_hardstate/
 * save_snapshot here; rn_raft_store_sync is synchronous (fdatasync), so the
 * embedding may report the ticket with rn_raft_synced straight away (rn_raft
 * accepts that from inside io.sync) or run it on another thread.
 *
 * Usage:
 *   rn_raft_store_open(dir, &limits, &st);
 *   rn_raft_store_boot(st, &boot);      // what was on disk, borrowed from st
 *   rn_raft_new(&cfg, &io, &sm, &boot, &raft);
 *   rn_raft_store_boot_done(st);        // frees the boot copy
 */
#ifndef RN_RAFT_STORE_H
#define RN_RAFT_STORE_H

#include "rn_raft.h"

typedef struct rn_raft_store rn_raft_store_t;

typedef struct {
    uint64_t max_log_file_bytes; /* a larger log file is refused at open */
    uint32_t max_entry_bytes;
    uint32_t max_snapshot_bytes;
} rn_raft_store_limits_t;

/* Limits that fit a raft config (the log file may hold 4 × max_log_bytes). */
rn_raft_store_limits_t rn_raft_store_limits(const rn_raft_config_t *cfg);

/* Opens (creating) dir and recovers it: a torn or garbled log tail is cut off. */
rn_err_t rn_raft_store_open(const char *dir, const rn_raft_store_limits_t *lim, rn_raft_store_t **out);
void rn_raft_store_close(rn_raft_store_t *st);

/* What the store holds; valid until rn_raft_store_boot_done or the next write. */
rn_err_t rn_raft_store_boot(rn_raft_store_t *st, rn_raft_boot_t *out);
void rn_raft_store_boot_done(rn_raft_store_t *st);

rn_err_t rn_raft_store_append(rn_raft_store_t *st, const rn_raft_entry_t *entries, size_t n);
rn_err_t rn_raft_store_truncate(rn_raft_store_t *st, uint64_t from_index);
rn_err_t rn_raft_store_sync(rn_raft_store_t *st);
rn_err_t rn_raft_store_save_hardstate(rn_raft_store_t *st, uint64_t term, int32_t vote);
rn_err_t rn_raft_store_save_snapshot(rn_raft_store_t *st, const rn_raft_snap_meta_t *meta, const uint8_t *data,
                                     size_t len, bool reset_log);

/* Log bookkeeping, for tests: first and last index held (last < first when empty). */
uint64_t rn_raft_store_first_index(const rn_raft_store_t *st);
uint64_t rn_raft_store_last_index(const rn_raft_store_t *st);

#endif
