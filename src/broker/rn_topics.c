/*
 * rn_topics.c — the topic registry: names, creation, deletion, partitions,
 * topic configs, and the metadata file that makes them durable.
 *
 * Topics live in the metadata log (src/cluster, src/controller); the registry
 * here follows it, as do the dynamic broker configs (Config records there). The
 * node's own file `<log.dirs>/runnel.meta` keeps what is not the log's: the
 * cluster id and the producer id block. It is text, rewritten whole on every
 * change: write `runnel.meta.tmp`, fsync, rename over `runnel.meta`, fsync the
 * directory. Lines:
 *
 *   runnel-meta 1
 *   cluster.id <id>
 *   producer.id.block.end <next unallocated producer id block start>
 *
 * A data directory from before the metadata quorum (a lone broker kept its
 * topics and dynamic broker configs here) also has
 *
 *   topic <name> <32 hex topic id> <partition count> <internal 0|1>
 *   tconfig <topic name> <key> <value, %-escaped; \N for null>
 *   bconfig <key> <value, %-escaped>            (dynamic, this node)
 *   dconfig <key> <value, %-escaped>            (dynamic, cluster default)
 *
 * which are read into the registry for src/cluster/rn_cluster_import.c to
 * move into the metadata log; the file is then written again without them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "rn_assert.h"
#include "rn_broker.h"
#include "rn_cluster.h"
#include "rn_logging.h"

#define RN_TOPIC_NAME_MAX 249
#define RN_PRODUCER_ID_BLOCK 1000

rn_err_t rn_topic_name_validate(const char *name, size_t len, char *msg, size_t msglen) {
    if (len == 0) {
        snprintf(msg, msglen, "Topic name is empty");
        return RN_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (len > RN_TOPIC_NAME_MAX) {
        snprintf(msg, msglen, "Topic name is longer than %d characters", RN_TOPIC_NAME_MAX);
        return RN_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        snprintf(msg, msglen, "Topic name cannot be '.' or '..'");
        return RN_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (len == strlen(RN_METADATA_TOPIC) && !memcmp(name, RN_METADATA_TOPIC, len)) {
        snprintf(msg, msglen, "Topic name '%s' is reserved for the metadata log", RN_METADATA_TOPIC);
        return RN_ERR_INVALID_TOPIC_EXCEPTION;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-')) {
            snprintf(msg, msglen, "Topic name '%.*s' is illegal: only ASCII letters, digits, '.', '_' and '-' are allowed",
                     (int)(len > 64 ? 64 : len), name);
            return RN_ERR_INVALID_TOPIC_EXCEPTION;
        }
    }
    return RN_OK;
}

void rn_topic_retain(rn_topic_t *t) { atomic_fetch_add(&t->refs, 1); }

static void topic_free(rn_topic_t *t) {
    for (int32_t i = 0; i < t->partition_count; i++) {
        if (t->partitions[i]) {
            if (t->partitions[i]->log) rn_log_release(t->partitions[i]->log);
            free(t->partitions[i]);
        }
    }
    free(t->partitions);
    rn_config_set_free(&t->configs);
    free(t->name);
    free(t);
}

void rn_topic_release(rn_topic_t *t) {
    if (t && atomic_fetch_sub(&t->refs, 1) == 1) topic_free(t);
}

rn_topic_t *rn_broker_topic_locked(rn_broker_t *b, const char *name, size_t len) {
    return rn_map_get(&b->topics, name, len);
}

rn_partition_t *rn_broker_partition_locked(rn_broker_t *b, const char *name, size_t len, int32_t partition) {
    rn_topic_t *t = rn_broker_topic_locked(b, name, len);
    if (!t || partition < 0 || partition >= t->partition_count) return NULL;
    return t->partitions[partition];
}

rn_topic_t *rn_broker_topic_by_id_locked(rn_broker_t *b, const uint8_t id[16]) {
    size_t it = 0;
    void *v;
    while (rn_map_next(&b->topics, &it, NULL, &v)) {
        rn_topic_t *t = v;
        if (!memcmp(t->id, id, 16)) return t;
    }
    return NULL;
}

void rn_topic_refresh_locked(rn_broker_t *b, rn_topic_t *t) {
    t->max_message_bytes = (int32_t)rn_topic_config_long(&b->cfg, &t->configs, "max.message.bytes");
    const char *p = rn_topic_config_value(&b->cfg, &t->configs, "cleanup.policy", NULL);
    t->compacted = p && strstr(p, "compact");
}

rn_err_t rn_topic_configs_validate(const rn_config_set_t *configs, char *msg, size_t msglen) {
    if (!configs) return RN_OK;
    for (size_t i = 0; i < configs->n; i++) {
        const rn_config_def_t *d = rn_topic_config_def(configs->v[i].name);
        if (!d) {
            snprintf(msg, msglen, "Unknown topic config name: %s", configs->v[i].name);
            return RN_ERR_INVALID_CONFIG;
        }
        if (!configs->v[i].value) {
            snprintf(msg, msglen, "Null value not supported for topic config: %s", d->name);
            return RN_ERR_INVALID_CONFIG;
        }
        if (rn_config_validate(d, configs->v[i].value, msg, msglen) != RN_OK) return RN_ERR_INVALID_CONFIG;
    }
    return RN_OK;
}

rn_topic_t *rn_topic_new(const char *name, size_t len, int32_t partitions) {
    rn_topic_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->name = strndup(name, len);
    t->partitions = calloc((size_t)(partitions > 0 ? partitions : 1), sizeof(*t->partitions));
    if (!t->name || !t->partitions) {
        free(t->name);
        free(t->partitions);
        free(t);
        return NULL;
    }
    t->partition_count = partitions;
    rn_config_set_init(&t->configs);
    atomic_init(&t->refs, 1);
    return t;
}

rn_err_t rn_topic_grow_locked(rn_topic_t *t, int32_t partitions) {
    if (partitions <= t->partition_count) return RN_OK;
    rn_partition_t **np = realloc(t->partitions, (size_t)partitions * sizeof(*np));
    if (!np) return RN_ERR_NOMEM;
    for (int32_t i = t->partition_count; i < partitions; i++) np[i] = NULL;
    t->partitions = np;
    t->partition_count = partitions;
    return RN_OK;
}

rn_err_t rn_broker_auto_create(rn_broker_t *b, const char *name, size_t len) {
    char msg[256];
    if (!b->cfg.auto_create_topics_enable) return RN_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    rn_err_t rc = rn_topic_name_validate(name, len, msg, sizeof(msg));
    if (rc) return rc;
    rn_cluster_auto_create(b, name, len); /* the controller creates it; the client retries until it is here */
    return RN_ERR_LEADER_NOT_AVAILABLE;
}

rn_err_t rn_broker_dynamic_configs_validate(const rn_config_set_t *configs, char *msg, size_t msglen) {
    for (size_t i = 0; i < configs->n; i++) {
        const rn_config_def_t *d = rn_broker_config_def(configs->v[i].name);
        if (!d) {
            snprintf(msg, msglen, "Unknown broker config name: %s", configs->v[i].name);
            return RN_ERR_INVALID_CONFIG;
        }
        if (d->read_only) {
            snprintf(msg, msglen, "Cannot update these configs dynamically: %s", d->name);
            return RN_ERR_INVALID_CONFIG;
        }
        if (!configs->v[i].value || rn_config_validate(d, configs->v[i].value, msg, msglen) != RN_OK) {
            if (!configs->v[i].value) snprintf(msg, msglen, "Null value not supported for config: %s", d->name);
            return RN_ERR_INVALID_CONFIG;
        }
    }
    return RN_OK;
}

bool rn_broker_replace_dynamic_configs(rn_broker_t *b, rn_config_set_t *per_broker, rn_config_set_t *defaults) {
    pthread_rwlock_wrlock(&b->topics_lock);
    bool changed = !rn_config_set_equal(per_broker, &b->cfg.dynamic) ||
                   !rn_config_set_equal(defaults, &b->cfg.dynamic_default);
    if (changed) {
        rn_config_set_t old_per = b->cfg.dynamic, old_def = b->cfg.dynamic_default;
        b->cfg.dynamic = *per_broker;
        b->cfg.dynamic_default = *defaults;
        *per_broker = old_per;
        *defaults = old_def;
        rn_broker_apply_configs_locked(b);
    }
    pthread_rwlock_unlock(&b->topics_lock);
    return changed;
}

/* After broker-level config changes: re-resolve what depends on them. */
void rn_broker_apply_configs_locked(rn_broker_t *b) {
    /* Only a changed log.level resets the level: a broker logger's (BROKER_LOGGER) stands meanwhile. */
    int lvl = rn_log_level_parse(rn_broker_config_value(&b->cfg, "log.level", NULL));
    if (lvl >= 0 && lvl != b->cfg.log_level) {
        b->cfg.log_level = lvl;
        rn_log_set_level((rn_log_level_t)lvl);
    }
    int64_t v;
    bool flag;
    if (rn_config_parse_long(rn_broker_config_value(&b->cfg, "num.partitions", NULL), &v)) b->cfg.num_partitions = (int32_t)v;
    if (rn_config_parse_long(rn_broker_config_value(&b->cfg, "message.max.bytes", NULL), &v)) b->cfg.message_max_bytes = (int32_t)v;
    if (rn_config_parse_bool(rn_broker_config_value(&b->cfg, "auto.create.topics.enable", NULL), &flag))
        b->cfg.auto_create_topics_enable = flag;
    if (rn_config_parse_bool(rn_broker_config_value(&b->cfg, "delete.topic.enable", NULL), &flag))
        b->cfg.delete_topic_enable = flag;
    size_t it = 0;
    void *tv;
    while (rn_map_next(&b->topics, &it, NULL, &tv)) {
        rn_topic_t *t = tv;
        rn_topic_refresh_locked(b, t);
        rn_log_config_t lc;
        rn_topic_log_config(&b->cfg, &t->configs, &lc);
        for (int32_t i = 0; i < t->partition_count; i++)
            if (t->partitions[i]) rn_log_set_config(t->partitions[i]->log, &lc);
    }
}

/* ---- metadata file ---- */

static char *unescape(const char *s) {
    if (!strcmp(s, "\\N")) return NULL;
    char *out = malloc(strlen(s) + 1);
    if (!out) return NULL;
    if (!strcmp(s, "%")) {
        out[0] = 0;
        return out;
    }
    size_t j = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '%' && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[j++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = 0;
    return out;
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Caller holds topics_lock (shared or exclusive) and meta_lock. */
static rn_err_t save_metadata_locked(rn_broker_t *b) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/runnel.meta", b->cfg.log_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        RN_ERROR("broker", "open %s failed: %s", tmp, strerror(errno));
        return RN_ERR_IO;
    }
    fprintf(f, "runnel-meta 1\ncluster.id %s\nproducer.id.block.end %lld\n", b->cluster_id,
            (long long)b->producer_id_block_end);
    /* Dynamic broker configs are Config records of the metadata log (rn_cluster_import.c moves a
     * pre-quorum file's into it). */
    int bad = ferror(f);
    if (fflush(f) != 0) bad = 1;
    if (!bad && fdatasync(fileno(f)) != 0) bad = 1;
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0 || fsync_dir(b->cfg.log_dir) != 0) {
        RN_ERROR("broker", "writing %s failed: %s", path, strerror(errno));
        unlink(tmp);
        return RN_ERR_IO;
    }
    return RN_OK;
}

/* Caller holds topics_lock (shared or exclusive). Lock order: topics_lock, then meta_lock. */
rn_err_t rn_broker_save_metadata(rn_broker_t *b) {
    pthread_mutex_lock(&b->meta_lock);
    rn_err_t rc = save_metadata_locked(b);
    pthread_mutex_unlock(&b->meta_lock);
    return rc;
}

/* Producer ids come in blocks whose end is saved before any id of the block is
 * handed out, so ids are never reused after a crash. -1 on storage failure. */
int64_t rn_broker_alloc_producer_id(rn_broker_t *b) {
    pthread_rwlock_rdlock(&b->topics_lock);
    pthread_mutex_lock(&b->meta_lock);
    int64_t id = -1;
    if (b->next_producer_id >= b->producer_id_block_end) {
        int64_t old_end = b->producer_id_block_end;
        b->producer_id_block_end = old_end + RN_PRODUCER_ID_BLOCK;
        if (save_metadata_locked(b) != RN_OK) {
            b->producer_id_block_end = old_end;
            goto out;
        }
        b->next_producer_id = old_end;
    }
    id = b->next_producer_id++;
out:
    pthread_mutex_unlock(&b->meta_lock);
    pthread_rwlock_unlock(&b->topics_lock);
    return rn_cluster_producer_id(b, id);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* At start-up, before serving: read runnel.meta (its topics, if any, are imported: see the top). */
rn_err_t rn_broker_load_metadata(rn_broker_t *b) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/runnel.meta", b->cfg.log_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT) {
            RN_ERROR("broker", "open %s failed: %s", path, strerror(errno));
            return RN_ERR_IO;
        }
        /* Fresh dir: a new cluster id (or the configured one). */
        if (b->cfg.cluster_id[0]) {
            snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", b->cfg.cluster_id);
        } else {
            static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            uint8_t rnd[22];
            if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                for (size_t i = 0; i < sizeof(rnd); i++) rnd[i] = (uint8_t)rand();
            for (size_t i = 0; i < sizeof(rnd); i++) b->cluster_id[i] = alphabet[rnd[i] & 63];
            b->cluster_id[sizeof(rnd)] = 0;
        }
        b->producer_id_block_end = 0;
        b->next_producer_id = 0;
        return rn_broker_save_metadata(b);
    }
    char *line = NULL;
    size_t cap = 0;
    rn_err_t rc = RN_OK;
    int lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        char *save = NULL;
        char *kind = strtok_r(line, " ", &save);
        if (!kind) continue;
        if (!strcmp(kind, "runnel-meta")) continue;
        if (!strcmp(kind, "cluster.id")) {
            char *id = strtok_r(NULL, " ", &save);
            snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", id ? id : "");
        } else if (!strcmp(kind, "producer.id.block.end")) {
            char *v = strtok_r(NULL, " ", &save);
            b->producer_id_block_end = v ? strtoll(v, NULL, 10) : 0;
            b->next_producer_id = b->producer_id_block_end; /* never reuse ids handed out before */
        } else if (!strcmp(kind, "topic")) {
            char *name = strtok_r(NULL, " ", &save), *id = strtok_r(NULL, " ", &save);
            char *np = strtok_r(NULL, " ", &save), *internal = strtok_r(NULL, " ", &save);
            if (!name || !id || !np || strlen(id) != 32) {
                rc = RN_ERR_CORRUPT;
                break;
            }
            int32_t n = (int32_t)strtol(np, NULL, 10);
            if (n <= 0 || n > 100000) {
                rc = RN_ERR_CORRUPT;
                break;
            }
            rn_topic_t *t = rn_topic_new(name, strlen(name), n);
            if (!t) {
                rc = RN_ERR_NOMEM;
                break;
            }
            for (int i = 0; i < 16; i++) {
                int hi = hexval(id[2 * i]), lo = hexval(id[2 * i + 1]);
                if (hi < 0 || lo < 0) rc = RN_ERR_CORRUPT;
                t->id[i] = (uint8_t)((hi << 4) | lo);
            }
            t->internal = internal && !strcmp(internal, "1");
            if (rc || !rn_map_put(&b->topics, t->name, strlen(t->name), t)) {
                topic_free(t);
                if (!rc) rc = RN_ERR_NOMEM;
                break;
            }
        } else if (!strcmp(kind, "tconfig") || !strcmp(kind, "bconfig") || !strcmp(kind, "dconfig")) {
            bool topic = kind[0] == 't';
            char *name = topic ? strtok_r(NULL, " ", &save) : NULL;
            char *key = strtok_r(NULL, " ", &save), *val = strtok_r(NULL, " ", &save);
            if (!key || !val || (topic && !name)) {
                rc = RN_ERR_CORRUPT;
                break;
            }
            char *v = unescape(val);
            rn_config_set_t *set = kind[0] == 'd' ? &b->cfg.dynamic_default : &b->cfg.dynamic;
            if (topic) {
                rn_topic_t *t = rn_map_get(&b->topics, name, strlen(name));
                if (!t) {
                    free(v);
                    rc = RN_ERR_CORRUPT;
                    break;
                }
                set = &t->configs;
            }
            rn_config_set_put(set, key, v);
            free(v);
        } else {
            RN_WARN("broker", "%s:%d: unknown line kind '%s' ignored", path, lineno, kind);
        }
    }
    free(line);
    fclose(f);
    if (rc) {
        RN_ERROR("broker", "%s:%d: corrupt metadata file (%s)", path, lineno, rn_err_name(rc));
        return rc;
    }
    return RN_OK;
}
