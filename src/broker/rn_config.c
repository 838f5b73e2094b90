/*
 * rn_config.c — configuration definitions, validation, .properties parsing and
 * resolution of effective values. See rn_config.h.
 *
 * Runnel differs from Kafka's defaults in a few deliberate places, marked
 * "runnel:" below: durable acks by default (log.flush.interval.messages=1:
 * fsync before ack, with group commit), a data dir under the working
 * directory, and a metrics listener.
 */
#include "rn_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "rn_logging.h"

#define L_MAX INT64_MAX
#define I_MAX INT32_MAX
#define B(name, type, def, min, max, one_of, doc) {name, type, def, min, max, one_of, NULL, false, doc}
#define BR(name, type, def, min, max, one_of, doc) {name, type, def, min, max, one_of, NULL, true, doc}

const rn_config_def_t rn_broker_config_defs[] = {
    BR("node.id", RN_CT_INT, "1", 0, I_MAX, NULL, "This broker's id in the cluster."),
    BR("broker.id", RN_CT_INT, NULL, -1, I_MAX, NULL, "Older name for node.id; when set it wins."),
    BR("process.roles", RN_CT_LIST, "broker,controller", 0, 0, "broker,controller", "Roles this node plays."),
    BR("listeners", RN_CT_LIST, "PLAINTEXT://127.0.0.1:9092", 0, 0, NULL, "Where the Kafka protocol is served."),
    BR("advertised.listeners", RN_CT_LIST, NULL, 0, 0, NULL, "Address given to clients; listeners when unset."),
    BR("listener.security.protocol.map", RN_CT_LIST, "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", 0, 0, NULL,
       "Security protocol per listener name (PLAINTEXT only)."),
    BR("controller.listener.names", RN_CT_LIST, NULL, 0, 0, NULL, "The listener controller traffic (Raft, broker registration and heartbeats) uses."),
    BR("controller.quorum.voters", RN_CT_LIST, NULL, 0, 0, NULL, "Metadata quorum voters (id@host:port)."),
    BR("controller.quorum.bootstrap.servers", RN_CT_LIST, NULL, 0, 0, NULL,
       "host:port of controllers a broker-only node asks for the quorum when controller.quorum.voters is unset."),
    BR("metadata.feed.max.bytes", RN_CT_LONG, "33554432", 1, L_MAX, NULL,
       "runnel: committed metadata entries a controller keeps for broker-only nodes; one further behind gets a snapshot."),
    BR("inter.broker.listener.name", RN_CT_STRING, NULL, 0, 0, NULL, "Listener used between brokers."),
    BR("broker.rack", RN_CT_STRING, NULL, 0, 0, NULL, "Rack of this broker, for replica placement."),
    BR("cluster.id", RN_CT_STRING, NULL, 0, 0, NULL, "runnel: cluster id; generated at first start when unset."),
    BR("log.dirs", RN_CT_LIST, "./data", 0, 0, NULL, "runnel: directory holding the partition logs."),
    BR("log.dir", RN_CT_STRING, NULL, 0, 0, NULL, "Single log directory; used when log.dirs is not set."),
    B("num.partitions", RN_CT_INT, "1", 1, 1000000, NULL, "Partitions of an auto-created topic."),
    B("default.replication.factor", RN_CT_SHORT, "1", 1, 32767, NULL, "Replication factor of auto-created topics."),
    B("auto.create.topics.enable", RN_CT_BOOLEAN, "true", 0, 0, NULL, "Create a topic on first use in Metadata or Produce."),
    B("delete.topic.enable", RN_CT_BOOLEAN, "true", 0, 0, NULL, "Allow DeleteTopics."),
    B("message.max.bytes", RN_CT_INT, "1048588", 0, I_MAX, NULL, "Largest record batch accepted."),
    BR("socket.request.max.bytes", RN_CT_INT, "104857600", 1, I_MAX, NULL, "Largest request frame accepted."),
    BR("socket.send.buffer.bytes", RN_CT_INT, "102400", -1, I_MAX, NULL, "SO_SNDBUF; -1 for the OS default."),
    BR("socket.receive.buffer.bytes", RN_CT_INT, "102400", -1, I_MAX, NULL, "SO_RCVBUF; -1 for the OS default."),
    BR("connections.max.idle.ms", RN_CT_LONG, "600000", 1, L_MAX, NULL, "Idle connections are closed after this."),
    BR("num.network.threads", RN_CT_INT, "0", 0, 256, NULL, "runnel: network threads; 0 = one per core."),
    BR("num.io.threads", RN_CT_INT, "8", 1, 256, NULL, "Accepted for compatibility; requests run on network threads."),
    BR("queued.max.requests", RN_CT_INT, "500", 1, I_MAX, NULL, "In-flight requests per connection before reads pause."),
    BR("queued.max.request.bytes", RN_CT_LONG, "-1", -1, L_MAX, NULL, "Unsent response bytes per connection before reads pause (-1: 64 MiB)."),
    BR("max.connections", RN_CT_INT, "2147483647", 0, I_MAX, NULL, "Connections accepted at most."),
    B("log.segment.bytes", RN_CT_INT, "1073741824", 14, I_MAX, NULL, "A segment rolls at this size."),
    B("log.roll.ms", RN_CT_LONG, NULL, 1, L_MAX, NULL, "A segment rolls at this age; log.roll.hours when unset."),
    B("log.roll.hours", RN_CT_INT, "168", 1, I_MAX, NULL, "A segment rolls at this age (hours)."),
    B("log.roll.jitter.ms", RN_CT_LONG, NULL, 0, L_MAX, NULL, "Accepted for compatibility."),
    B("log.retention.ms", RN_CT_LONG, NULL, -1, L_MAX, NULL, "Keep data this long (-1: forever); minutes/hours when unset."),
    B("log.retention.minutes", RN_CT_INT, NULL, -1, I_MAX, NULL, "Retention in minutes when log.retention.ms is unset."),
    B("log.retention.hours", RN_CT_INT, "168", -1, I_MAX, NULL, "Retention in hours when ms and minutes are unset."),
    B("log.retention.bytes", RN_CT_LONG, "-1", -1, L_MAX, NULL, "Keep at most this many bytes per partition (-1: no limit)."),
    BR("log.retention.check.interval.ms", RN_CT_LONG, "300000", 1, L_MAX, NULL, "How often retention runs."),
    B("log.flush.interval.messages", RN_CT_LONG, "1", 1, L_MAX, NULL,
      "runnel: 1 (default) = acks wait for fsync (group commit); more = lazy flush every N messages."),
    B("log.flush.interval.ms", RN_CT_LONG, NULL, 0, L_MAX, NULL, "Lazy flush: at most this long between fsyncs."),
    BR("log.flush.scheduler.interval.ms", RN_CT_LONG, "1000", 1, L_MAX, NULL, "How often lazy flush conditions are checked."),
    B("log.index.size.max.bytes", RN_CT_INT, "10485760", 4, I_MAX, NULL, "A segment rolls when its offset index is this big."),
    B("log.index.interval.bytes", RN_CT_INT, "4096", 0, I_MAX, NULL, "Bytes between offset index entries."),
    B("log.cleanup.policy", RN_CT_LIST, "delete", 0, 0, "delete,compact", "delete, compact or both."),
    BR("log.cleaner.enable", RN_CT_BOOLEAN, "true", 0, 0, NULL, "Run the compaction cleaner."),
    B("log.cleaner.dedupe.buffer.size", RN_CT_LONG, "134217728", 1024, L_MAX, NULL, "Memory for the cleaner's key map."),
    B("log.cleaner.backoff.ms", RN_CT_LONG, "15000", 0, L_MAX, NULL, "Sleep between cleaner passes with nothing to do."),
    B("log.cleaner.delete.retention.ms", RN_CT_LONG, "86400000", 0, L_MAX, NULL, "Tombstones are kept this long after cleaning."),
    B("log.cleaner.min.cleanable.ratio", RN_CT_DOUBLE, "0.5", 0, 1, NULL, "Dirty share of a log before it is cleaned."),
    B("log.cleaner.min.compaction.lag.ms", RN_CT_LONG, "0", 0, L_MAX, NULL, "Records younger than this are not compacted."),
    B("log.cleaner.max.compaction.lag.ms", RN_CT_LONG, "9223372036854775807", 1, L_MAX, NULL, "Compact records older than this even below the ratio."),
    B("log.segment.delete.delay.ms", RN_CT_LONG, "60000", 0, L_MAX, NULL, "Accepted for compatibility; files unlink at once."),
    B("log.preallocate", RN_CT_BOOLEAN, "true", 0, 0, NULL,
      "runnel: durable segments are kept up to 1 MiB of written zeros ahead (cheaper fdatasyncs)."),
    B("log.message.timestamp.type", RN_CT_STRING, "CreateTime", 0, 0, "CreateTime,LogAppendTime", "Timestamp kept in batches."),
    B("log.message.timestamp.difference.max.ms", RN_CT_LONG, "9223372036854775807", 0, L_MAX, NULL, "Accepted for compatibility."),
    B("log.message.downconversion.enable", RN_CT_BOOLEAN, "true", 0, 0, NULL, "Convert batches for old Fetch versions."),
    B("log.dir.min.free.bytes", RN_CT_LONG, "67108864", 0, L_MAX, NULL, "runnel: appends fail (retriable) below this free space."),
    BR("log.open.files.max", RN_CT_INT, "1024", 16, I_MAX, NULL, "runnel: open segment files kept in the file cache."),
    BR("num.recovery.threads.per.data.dir", RN_CT_INT, "4", 1, 256, NULL, "Threads recovering partitions at start-up."),
    B("compression.type", RN_CT_STRING, "producer", 0, 0, "uncompressed,zstd,lz4,snappy,gzip,producer", "Final compression of topic data."),
    B("min.insync.replicas", RN_CT_INT, "1", 1, I_MAX, NULL, "Replicas that must have a write for acks=all."),
    B("unclean.leader.election.enable", RN_CT_BOOLEAN, "false", 0, 0, NULL, "Allow out-of-sync replicas to lead."),
    BR("offsets.topic.num.partitions", RN_CT_INT, "50", 1, 100000, NULL, "Partitions of __consumer_offsets."),
    BR("offsets.topic.replication.factor", RN_CT_SHORT, "3", 1, 32767, NULL, "Replication of __consumer_offsets (capped at the brokers available)."),
    B("offsets.retention.minutes", RN_CT_INT, "10080", 1, I_MAX, NULL, "Offsets of empty groups expire after this."),
    B("offsets.retention.check.interval.ms", RN_CT_LONG, "600000", 1, L_MAX, NULL, "How often offsets expire."),
    B("group.initial.rebalance.delay.ms", RN_CT_INT, "3000", 0, I_MAX, NULL, "Wait for more members before the first rebalance."),
    B("group.min.session.timeout.ms", RN_CT_INT, "6000", 0, I_MAX, NULL, "Smallest session timeout a member may ask for."),
    B("group.max.session.timeout.ms", RN_CT_INT, "1800000", 0, I_MAX, NULL, "Largest session timeout a member may ask for."),
    B("group.max.size", RN_CT_INT, "2147483647", 1, I_MAX, NULL, "Members per group at most."),
    BR("transaction.state.log.num.partitions", RN_CT_INT, "50", 1, 100000, NULL, "Partitions of __transaction_state."),
    BR("transaction.state.log.replication.factor", RN_CT_SHORT, "3", 1, 32767, NULL, "Replication of __transaction_state (capped at the brokers available)."),
    B("transaction.max.timeout.ms", RN_CT_INT, "900000", 1, I_MAX, NULL, "Largest transaction timeout a producer may ask for."),
    B("transactional.id.expiration.ms", RN_CT_INT, "604800000", 1, I_MAX, NULL, "Idle transactional ids expire after this."),
    B("producer.id.expiration.ms", RN_CT_INT, "86400000", 1, I_MAX, NULL, "Idle producer ids are forgotten after this."),
    B("replica.lag.time.max.ms", RN_CT_LONG, "30000", 1, L_MAX, NULL, "A follower this far behind leaves the ISR."),
    BR("replica.high.watermark.checkpoint.interval.ms", RN_CT_LONG, "5000", 1, L_MAX, NULL,
       "How often each log dir's replication-offset-checkpoint (high watermarks) is written."),
    BR("replica.fetch.wait.max.ms", RN_CT_INT, "500", 1, I_MAX, NULL, "Longest wait of a follower's fetch for data."),
    BR("replica.fetch.max.bytes", RN_CT_INT, "1048576", 1024, I_MAX, NULL, "A follower's fetch: bytes per partition."),
    BR("replica.fetch.response.max.bytes", RN_CT_INT, "10485760", 1024, I_MAX, NULL, "A follower's fetch: bytes in all."),
    BR("replica.fetch.backoff.ms", RN_CT_INT, "1000", 0, I_MAX, NULL, "Pause after a failed follower fetch."),
    B("auto.leader.rebalance.enable", RN_CT_BOOLEAN, "true", 0, 0, NULL, "Move leadership back to preferred replicas."),
    B("leader.imbalance.check.interval.seconds", RN_CT_LONG, "300", 1, L_MAX, NULL, "How often leadership is rebalanced."),
    BR("controlled.shutdown.timeout.ms", RN_CT_LONG, "5000", 0, L_MAX, NULL, "runnel: SIGTERM waits this long for leaderships to move away."),
    BR("replica.selector.class", RN_CT_STRING, NULL, 0, 0, NULL, "Rack-aware follower fetching (KIP-392) with org.apache.kafka.common.replica.RackAwareReplicaSelector."),
    BR("controller.quorum.election.timeout.ms", RN_CT_INT, "500", 50, I_MAX, NULL, "runnel: metadata quorum election timeout (Kafka: 1000)."),
    BR("broker.heartbeat.interval.ms", RN_CT_INT, "250", 10, I_MAX, NULL, "runnel: how often a broker heartbeats the controller (Kafka: 2000)."),
    BR("broker.session.timeout.ms", RN_CT_INT, "1500", 100, I_MAX, NULL, "runnel: a broker without heartbeats this long is fenced (Kafka: 9000)."),
    BR("metrics.listeners", RN_CT_STRING, "127.0.0.1:9644", 0, 0, NULL, "runnel: host:port of the Prometheus endpoint; empty disables."),
    B("log.level", RN_CT_STRING, "info", 0, 0, "error,warn,info,debug", "runnel: log verbosity."),
};
const size_t rn_broker_config_defs_count = sizeof(rn_broker_config_defs) / sizeof(rn_broker_config_defs[0]);

#define T(name, type, def, min, max, one_of, syn, doc) {name, type, def, min, max, one_of, syn, false, doc}

const rn_config_def_t rn_topic_config_defs[] = {
    T("cleanup.policy", RN_CT_LIST, "delete", 0, 0, "delete,compact", "log.cleanup.policy", "delete, compact or both."),
    T("compression.type", RN_CT_STRING, "producer", 0, 0, "uncompressed,zstd,lz4,snappy,gzip,producer", "compression.type",
      "Final compression of the topic's data."),
    T("delete.retention.ms", RN_CT_LONG, "86400000", 0, L_MAX, NULL, "log.cleaner.delete.retention.ms", "Tombstone lifetime after cleaning."),
    T("file.delete.delay.ms", RN_CT_LONG, "60000", 0, L_MAX, NULL, "log.segment.delete.delay.ms", "Accepted for compatibility."),
    T("flush.messages", RN_CT_LONG, "1", 1, L_MAX, NULL, "log.flush.interval.messages", "1 = fsync before ack; N = lazy flush."),
    T("flush.ms", RN_CT_LONG, "9223372036854775807", 0, L_MAX, NULL, "log.flush.interval.ms", "Lazy flush at most this far apart."),
    T("index.interval.bytes", RN_CT_INT, "4096", 0, I_MAX, NULL, "log.index.interval.bytes", "Bytes between offset index entries."),
    T("max.compaction.lag.ms", RN_CT_LONG, "9223372036854775807", 1, L_MAX, NULL, "log.cleaner.max.compaction.lag.ms", "Compact records older than this."),
    T("max.message.bytes", RN_CT_INT, "1048588", 0, I_MAX, NULL, "message.max.bytes", "Largest record batch accepted."),
    T("message.downconversion.enable", RN_CT_BOOLEAN, "true", 0, 0, NULL, "log.message.downconversion.enable", "Convert for old Fetch versions."),
    T("message.timestamp.difference.max.ms", RN_CT_LONG, "9223372036854775807", 0, L_MAX, NULL,
      "log.message.timestamp.difference.max.ms", "Accepted for compatibility."),
    T("message.timestamp.type", RN_CT_STRING, "CreateTime", 0, 0, "CreateTime,LogAppendTime", "log.message.timestamp.type",
      "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's."),
    T("min.cleanable.dirty.ratio", RN_CT_DOUBLE, "0.5", 0, 1, NULL, "log.cleaner.min.cleanable.ratio", "Dirty share before cleaning."),
    T("min.compaction.lag.ms", RN_CT_LONG, "0", 0, L_MAX, NULL, "log.cleaner.min.compaction.lag.ms", "Records younger are not compacted."),
    T("min.insync.replicas", RN_CT_INT, "1", 1, I_MAX, NULL, "min.insync.replicas", "Replicas that must have a write for acks=all."),
    T("preallocate", RN_CT_BOOLEAN, "true", 0, 0, NULL, "log.preallocate",
      "Durable segments are kept up to 1 MiB of written zeros ahead (cheaper fdatasyncs)."),
    T("retention.bytes", RN_CT_LONG, "-1", -1, L_MAX, NULL, "log.retention.bytes", "Bytes kept per partition (-1: no limit)."),
    T("retention.ms", RN_CT_LONG, "604800000", -1, L_MAX, NULL, "log.retention.ms", "Time data is kept (-1: forever)."),
    T("segment.bytes", RN_CT_INT, "1073741824", 14, I_MAX, NULL, "log.segment.bytes", "Segment size."),
    T("segment.index.bytes", RN_CT_INT, "10485760", 4, I_MAX, NULL, "log.index.size.max.bytes", "Offset index size per segment."),
    T("segment.jitter.ms", RN_CT_LONG, "0", 0, L_MAX, NULL, "log.roll.jitter.ms", "Accepted for compatibility."),
    T("segment.ms", RN_CT_LONG, "604800000", 1, L_MAX, NULL, "log.roll.ms", "Segment age before it rolls."),
    T("unclean.leader.election.enable", RN_CT_BOOLEAN, "false", 0, 0, NULL, "unclean.leader.election.enable", "Allow out-of-sync leaders."),
};
const size_t rn_topic_config_defs_count = sizeof(rn_topic_config_defs) / sizeof(rn_topic_config_defs[0]);

static const rn_config_def_t *find_def(const rn_config_def_t *defs, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(defs[i].name, name)) return &defs[i];
    return NULL;
}

const rn_config_def_t *rn_broker_config_def(const char *name) {
    return find_def(rn_broker_config_defs, rn_broker_config_defs_count, name);
}

const rn_config_def_t *rn_topic_config_def(const char *name) {
    return find_def(rn_topic_config_defs, rn_topic_config_defs_count, name);
}

/* ---- typed parsing ---- */

bool rn_config_parse_long(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    while (isspace((unsigned char)*s)) s++;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s) return false;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return false;
    *out = v;
    return true;
}

bool rn_config_parse_double(const char *s, double *out) {
    if (!s || !*s) return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v)) return false;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return false;
    *out = v;
    return true;
}

bool rn_config_parse_bool(const char *s, bool *out) {
    if (!s) return false;
    if (!strcasecmp(s, "true")) {
        *out = true;
        return true;
    }
    if (!strcasecmp(s, "false")) {
        *out = false;
        return true;
    }
    return false;
}

static bool in_list(const char *one_of, const char *v, size_t vlen) {
    const char *p = one_of;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == vlen && !strncasecmp(p, v, n)) return true;
        if (!c) break;
        p = c + 1;
    }
    return false;
}

rn_err_t rn_config_validate(const rn_config_def_t *def, const char *value, char *err, size_t errlen) {
    if (!value) {
        if (def->default_value == NULL) return RN_OK;
        snprintf(err, errlen, "%s: a value is required", def->name);
        return RN_ERR_INVALID_ARG;
    }
    int64_t l;
    double d;
    bool b;
    switch (def->type) {
    case RN_CT_INT:
    case RN_CT_SHORT:
    case RN_CT_LONG:
        if (!rn_config_parse_long(value, &l)) {
            snprintf(err, errlen, "%s: '%s' is not a whole number", def->name, value);
            return RN_ERR_INVALID_ARG;
        }
        if (l < def->min || l > def->max) {
            snprintf(err, errlen, "%s: %lld is out of range [%lld, %lld]", def->name, (long long)l,
                     (long long)def->min, (long long)def->max);
            return RN_ERR_INVALID_ARG;
        }
        return RN_OK;
    case RN_CT_DOUBLE:
        if (!rn_config_parse_double(value, &d)) {
            snprintf(err, errlen, "%s: '%s' is not a number", def->name, value);
            return RN_ERR_INVALID_ARG;
        }
        if (d < (double)def->min || d > (double)def->max) {
            snprintf(err, errlen, "%s: %g is out of range [%lld, %lld]", def->name, d, (long long)def->min,
                     (long long)def->max);
            return RN_ERR_INVALID_ARG;
        }
        return RN_OK;
    case RN_CT_BOOLEAN:
        if (!rn_config_parse_bool(value, &b)) {
            snprintf(err, errlen, "%s: '%s' is not true or false", def->name, value);
            return RN_ERR_INVALID_ARG;
        }
        return RN_OK;
    case RN_CT_LIST:
        if (def->one_of) {
            const char *p = value;
            size_t items = 0;
            for (;;) {
                while (*p == ' ') p++;
                const char *c = strchr(p, ',');
                size_t n = c ? (size_t)(c - p) : strlen(p);
                while (n && p[n - 1] == ' ') n--;
                if (n == 0 && !c && items > 0) break;
                if (!in_list(def->one_of, p, n)) {
                    snprintf(err, errlen, "%s: '%.*s' is not one of %s", def->name, (int)n, p, def->one_of);
                    return RN_ERR_INVALID_ARG;
                }
                items++;
                if (!c) break;
                p = c + 1;
            }
        }
        return RN_OK;
    default:
        if (def->one_of && !in_list(def->one_of, value, strlen(value))) {
            snprintf(err, errlen, "%s: '%s' is not one of %s", def->name, value, def->one_of);
            return RN_ERR_INVALID_ARG;
        }
        return RN_OK;
    }
}

/* ---- sets ---- */

void rn_config_set_init(rn_config_set_t *s) { memset(s, 0, sizeof(*s)); }

void rn_config_set_free(rn_config_set_t *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].value);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

const rn_config_entry_t *rn_config_set_find(const rn_config_set_t *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name)) return &s->v[i];
    return NULL;
}

const char *rn_config_set_get(const rn_config_set_t *s, const char *name) {
    const rn_config_entry_t *e = rn_config_set_find(s, name);
    return e ? e->value : NULL;
}

bool rn_config_set_put_n(rn_config_set_t *s, const char *name, size_t name_len, const char *value, size_t value_len,
                         bool value_null) {
    char *v = NULL;
    if (!value_null) {
        v = strndup(value ? value : "", value ? value_len : 0);
        if (!v) return false;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (strlen(s->v[i].name) == name_len && !strncmp(s->v[i].name, name, name_len)) {
            free(s->v[i].value);
            s->v[i].value = v;
            return true;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        rn_config_entry_t *nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv) {
            free(v);
            return false;
        }
        s->v = nv;
        s->cap = cap;
    }
    char *n = strndup(name, name_len);
    if (!n) {
        free(v);
        return false;
    }
    s->v[s->n++] = (rn_config_entry_t){n, v};
    return true;
}

bool rn_config_set_put(rn_config_set_t *s, const char *name, const char *value) {
    return rn_config_set_put_n(s, name, strlen(name), value, value ? strlen(value) : 0, value == NULL);
}

bool rn_config_set_del(rn_config_set_t *s, const char *name) {
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->v[i].name, name)) {
            free(s->v[i].name);
            free(s->v[i].value);
            s->v[i] = s->v[--s->n];
            return true;
        }
    }
    return false;
}

bool rn_config_set_copy(rn_config_set_t *dst, const rn_config_set_t *src) {
    rn_config_set_init(dst);
    for (size_t i = 0; i < src->n; i++)
        if (!rn_config_set_put(dst, src->v[i].name, src->v[i].value)) {
            rn_config_set_free(dst);
            return false;
        }
    return true;
}

bool rn_config_set_equal(const rn_config_set_t *a, const rn_config_set_t *b) {
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++) {
        const rn_config_entry_t *e = rn_config_set_find(b, a->v[i].name);
        if (!e || (!e->value != !a->v[i].value) || (e->value && strcmp(e->value, a->v[i].value))) return false;
    }
    return true;
}

/* ---- .properties ---- */

/* Unescape a properties key or value in place-ish into a new string. */
static char *prop_unescape(const char *p, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            switch (e) {
            case 't': c = '\t'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 'f': c = '\f'; break;
            default: c = e; break;
            }
        }
        out[j++] = c;
    }
    out[j] = 0;
    return out;
}

rn_err_t rn_config_parse_properties_text(const char *text, size_t len, rn_config_set_t *s) {
    /* Join continuation lines into logical lines first. */
    char *line = malloc(len + 1);
    if (!line) return RN_ERR_NOMEM;
    size_t i = 0;
    rn_err_t rc = RN_OK;
    while (i < len) {
        size_t ll = 0;
        /* skip leading whitespace */
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\f')) i++;
        bool first = true;
        for (;;) {
            size_t start = i;
            while (i < len && text[i] != '\n' && text[i] != '\r') i++;
            size_t end = i;
            if (i < len && text[i] == '\r') i++;
            if (i < len && text[i] == '\n') i++;
            if (first && start < end && (text[start] == '#' || text[start] == '!')) {
                ll = 0;
                break;
            }
            first = false;
            /* count trailing backslashes */
            size_t bs = 0;
            while (end - bs > start && text[end - bs - 1] == '\\') bs++;
            bool cont = (bs % 2) == 1;
            size_t copy_end = cont ? end - 1 : end;
            memcpy(line + ll, text + start, copy_end - start);
            ll += copy_end - start;
            if (!cont || i >= len) break;
            while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\f')) i++;
        }
        if (ll == 0) continue;
        /* split key / value */
        size_t k = 0;
        while (k < ll && !(line[k] == '=' || line[k] == ':' || line[k] == ' ' || line[k] == '\t')) {
            if (line[k] == '\\') k++;
            k++;
        }
        if (k > ll) k = ll;
        size_t v = k;
        while (v < ll && (line[v] == ' ' || line[v] == '\t')) v++;
        if (v < ll && (line[v] == '=' || line[v] == ':')) v++;
        while (v < ll && (line[v] == ' ' || line[v] == '\t')) v++;
        size_t vend = ll;
        while (vend > v && (line[vend - 1] == ' ' || line[vend - 1] == '\t')) vend--;
        char *key = prop_unescape(line, k);
        char *val = prop_unescape(line + v, vend - v);
        if (!key || !val || !rn_config_set_put(s, key, val)) rc = RN_ERR_NOMEM;
        free(key);
        free(val);
        if (rc) break;
    }
    free(line);
    return rc;
}

rn_err_t rn_config_parse_properties(const char *path, rn_config_set_t *s, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return RN_ERR_IO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            if (cap > (64u << 20)) {
                snprintf(err, errlen, "%s: larger than 64 MiB", path);
                free(buf);
                fclose(f);
                return RN_ERR_LIMIT;
            }
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return RN_ERR_NOMEM;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    fclose(f);
    rn_err_t rc = rn_config_parse_properties_text(buf ? buf : "", len, s);
    free(buf);
    return rc;
}

/* ---- broker config ---- */

static bool parse_hostport(const char *s, char *host, size_t hostlen, int *port) {
    /* Accepts "NAME://host:port" or "host:port"; IPv6 as [addr]:port. */
    const char *p = strstr(s, "://");
    p = p ? p + 3 : s;
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (p[i] == ':') colon = p + i;
    if (!colon) return false;
    size_t hl = (size_t)(colon - p);
    if (hl >= 2 && p[0] == '[' && p[hl - 1] == ']') {
        p++;
        hl -= 2;
    }
    if (hl >= hostlen) return false;
    memcpy(host, p, hl);
    host[hl] = 0;
    if (hl == 0) snprintf(host, hostlen, "0.0.0.0");
    char portbuf[16];
    const char *ps = colon + 1;
    size_t plen = (size_t)((end ? end : ps + strlen(ps)) - ps);
    if (plen == 0 || plen >= sizeof(portbuf)) return false;
    memcpy(portbuf, ps, plen);
    portbuf[plen] = 0;
    int64_t v;
    if (!rn_config_parse_long(portbuf, &v) || v < 0 || v > 65535) return false;
    *port = (int)v;
    return true;
}

/* The name of a "NAME://host:port" item (PLAINTEXT for a bare host:port). */
static bool listener_name(const char *item, size_t n, char *name, size_t cap) {
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < n && !sep; i++)
        if (item[i] == ':' && item[i + 1] == '/' && item[i + 2] == '/') sep = item + i;
    size_t nl = sep ? (size_t)(sep - item) : strlen("PLAINTEXT");
    if ((sep && nl == 0) || nl >= cap) return false;
    memcpy(name, sep ? item : "PLAINTEXT", nl);
    name[nl] = 0;
    for (size_t i = 0; i < nl; i++) name[i] = (char)toupper((unsigned char)name[i]);
    return true;
}

bool rn_config_list_has(const char *list, const char *name) {
    for (const char *p = list; p && *p;) {
        while (*p == ' ') p++;
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        while (n && p[n - 1] == ' ') n--;
        if (n == strlen(name) && !strncasecmp(p, name, n)) return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

/* The security protocol listener `name` maps to in listener.security.protocol.map
 * (into proto); false if it has none. */
static bool listener_protocol(const char *map, const char *name, char *proto, size_t cap) {
    for (const char *p = map; p && *p;) {
        while (*p == ' ') p++;
        const char *c = strchr(p, ','), *colon = strchr(p, ':');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (colon && (!c || colon < c) && (size_t)(colon - p) == strlen(name) && !strncasecmp(p, name, strlen(name))) {
            size_t pl = n - (size_t)(colon + 1 - p);
            while (pl && colon[pl] == ' ') pl--;
            snprintf(proto, cap, "%.*s", (int)pl, colon + 1);
            return true;
        }
        p = c ? c + 1 : NULL;
    }
    const char *known[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcasecmp(name, known[i])) {
            snprintf(proto, cap, "%s", known[i]);
            return true;
        }
    return false;
}

/* listeners, advertised.listeners, controller.listener.names and
 * listener.security.protocol.map into cfg's listener fields. */
static rn_err_t resolve_listeners(rn_broker_config_t *cfg, char *err, size_t errlen) {
    const char *s = rn_broker_config_value(cfg, "listeners", NULL);
    const char *ctl_names = rn_broker_config_value(cfg, "controller.listener.names", NULL);
    const char *map = rn_broker_config_value(cfg, "listener.security.protocol.map", NULL);
    cfg->nlisteners = 0;
    cfg->client_listener = cfg->controller_listener = -1;
    for (const char *p = s; p && *p;) {
        while (*p == ' ') p++;
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (cfg->nlisteners == RN_LISTENERS_MAX) {
            snprintf(err, errlen, "listeners: at most %d listeners", RN_LISTENERS_MAX);
            return RN_ERR_INVALID_ARG;
        }
        rn_listener_t *l = &cfg->listeners[cfg->nlisteners];
        char item[600];
        snprintf(item, sizeof(item), "%.*s", (int)(n < sizeof(item) ? n : sizeof(item) - 1), p);
        if (n == 0 || n >= sizeof(item) || !listener_name(item, n, l->name, sizeof(l->name)) ||
            !parse_hostport(item, l->host, sizeof(l->host), &l->port)) {
            snprintf(err, errlen, "listeners: '%s' is not a list of NAME://host:port", s);
            return RN_ERR_INVALID_ARG;
        }
        for (int i = 0; i < cfg->nlisteners; i++)
            if (!strcmp(cfg->listeners[i].name, l->name)) {
                snprintf(err, errlen, "listeners: the name %s is used twice", l->name);
                return RN_ERR_INVALID_ARG;
            }
        char proto[32];
        if (!listener_protocol(map, l->name, proto, sizeof(proto))) {
            snprintf(err, errlen, "listener.security.protocol.map: no security protocol for listener %s", l->name);
            return RN_ERR_INVALID_ARG;
        }
        if (strcasecmp(proto, "PLAINTEXT")) {
            snprintf(err, errlen, "listener.security.protocol.map: listener %s uses %s; only PLAINTEXT is supported",
                     l->name, proto);
            return RN_ERR_INVALID_ARG;
        }
        if (ctl_names && rn_config_list_has(ctl_names, l->name)) {
            if (cfg->controller_listener < 0) cfg->controller_listener = cfg->nlisteners;
        } else if (cfg->client_listener < 0) {
            cfg->client_listener = cfg->nlisteners;
        }
        cfg->nlisteners++;
        p = c ? c + 1 : NULL;
    }
    if (cfg->nlisteners == 0) {
        snprintf(err, errlen, "listeners: '%s' is not NAME://host:port", s ? s : "");
        return RN_ERR_INVALID_ARG;
    }
    rn_listener_t *main = &cfg->listeners[cfg->client_listener >= 0 ? cfg->client_listener : cfg->controller_listener];
    snprintf(cfg->listener_host, sizeof(cfg->listener_host), "%s", main->host);
    cfg->listener_port = main->port;

    /* advertised.listeners: per listener, the entry of its name; the client listener also
     * takes the first entry if that one names no listener. */
    s = rn_broker_config_value(cfg, "advertised.listeners", NULL);
    for (int i = 0; i < cfg->nlisteners; i++) {
        rn_listener_t *l = &cfg->listeners[i];
        snprintf(l->adv_host, sizeof(l->adv_host), "%s", strcmp(l->host, "0.0.0.0") ? l->host : "127.0.0.1");
        l->adv_port = l->port;
        const char *pick = NULL;
        for (const char *p = s; p && *p;) {
            while (*p == ' ') p++;
            const char *c = strchr(p, ',');
            char name[64];
            if (listener_name(p, c ? (size_t)(c - p) : strlen(p), name, sizeof(name)) && !strcmp(name, l->name)) {
                pick = p;
                break;
            }
            p = c ? c + 1 : NULL;
        }
        if (!pick && s && *s && l == main) { /* an entry named for no listener: the client listener's (as before) */
            char name[64];
            const char *c = strchr(s, ',');
            bool named_for_one = false;
            if (listener_name(s, c ? (size_t)(c - s) : strlen(s), name, sizeof(name)))
                for (int k = 0; k < cfg->nlisteners; k++) named_for_one |= !strcmp(cfg->listeners[k].name, name);
            if (!named_for_one) pick = s;
        }
        if (pick && !parse_hostport(pick, l->adv_host, sizeof(l->adv_host), &l->adv_port)) {
            snprintf(err, errlen, "advertised.listeners: '%s' is not NAME://host:port", s);
            return RN_ERR_INVALID_ARG;
        }
    }
    snprintf(cfg->advertised_host, sizeof(cfg->advertised_host), "%s", main->adv_host);
    cfg->advertised_port = main->adv_port;
    const char *ibl = rn_broker_config_value(cfg, "inter.broker.listener.name", NULL);
    if (ibl && *ibl) {
        int found = -1;
        for (int i = 0; i < cfg->nlisteners; i++)
            if (!strcasecmp(cfg->listeners[i].name, ibl) && i != cfg->controller_listener) found = i;
        if (found < 0) {
            snprintf(err, errlen, "inter.broker.listener.name: %s is not one of listeners (and not a controller one)", ibl);
            return RN_ERR_INVALID_ARG;
        }
    }
    return RN_OK;
}

const char *rn_broker_config_value(const rn_broker_config_t *cfg, const char *name, rn_config_source_t *source) {
    const rn_config_entry_t *e = rn_config_set_find(&cfg->dynamic, name);
    if (e) {
        if (source) *source = RN_CS_DYNAMIC_BROKER;
        return e->value;
    }
    e = rn_config_set_find(&cfg->dynamic_default, name);
    if (e) {
        if (source) *source = RN_CS_DYNAMIC_DEFAULT_BROKER;
        return e->value;
    }
    e = rn_config_set_find(&cfg->explicit_values, name);
    if (e) {
        if (source) *source = RN_CS_STATIC_BROKER;
        return e->value;
    }
    if (source) *source = RN_CS_DEFAULT;
    e = rn_config_set_find(&cfg->derived, name);
    if (e) return e->value;
    const rn_config_def_t *d = rn_broker_config_def(name);
    return d ? d->default_value : NULL;
}

int64_t rn_broker_config_long(const rn_broker_config_t *cfg, const char *name) {
    int64_t v = 0;
    const char *s = rn_broker_config_value(cfg, name, NULL);
    if (!s || !rn_config_parse_long(s, &v)) return -1;
    return v;
}

static void derive(rn_broker_config_t *cfg) {
    char buf[32];
    const rn_config_set_t *ex = &cfg->explicit_values;
    if (!rn_config_set_get(ex, "log.retention.ms")) {
        int64_t v;
        const char *m = rn_config_set_get(ex, "log.retention.minutes");
        const char *h = rn_broker_config_value(cfg, "log.retention.hours", NULL);
        if (m && rn_config_parse_long(m, &v))
            snprintf(buf, sizeof(buf), "%lld", v < 0 ? -1LL : (long long)v * 60000LL);
        else if (h && rn_config_parse_long(h, &v))
            snprintf(buf, sizeof(buf), "%lld", v < 0 ? -1LL : (long long)v * 3600000LL);
        else
            snprintf(buf, sizeof(buf), "604800000");
        rn_config_set_put(&cfg->derived, "log.retention.ms", buf);
    }
    if (!rn_config_set_get(ex, "log.roll.ms")) {
        int64_t v = 168;
        rn_config_parse_long(rn_broker_config_value(cfg, "log.roll.hours", NULL), &v);
        snprintf(buf, sizeof(buf), "%lld", (long long)v * 3600000LL);
        rn_config_set_put(&cfg->derived, "log.roll.ms", buf);
    }
    if (!rn_config_set_get(ex, "log.flush.interval.ms")) rn_config_set_put(&cfg->derived, "log.flush.interval.ms", "9223372036854775807");
    if (!rn_config_set_get(ex, "log.roll.jitter.ms")) rn_config_set_put(&cfg->derived, "log.roll.jitter.ms", "0");
}

rn_err_t rn_broker_config_load(rn_broker_config_t *cfg, const rn_config_set_t *explicit_values, char *err,
                               size_t errlen) {
    memset(cfg, 0, sizeof(*cfg));
    if (!rn_config_set_copy(&cfg->explicit_values, explicit_values)) return RN_ERR_NOMEM;
    rn_config_set_init(&cfg->derived);
    rn_config_set_init(&cfg->dynamic);
    rn_config_set_init(&cfg->dynamic_default);
    for (size_t i = 0; i < explicit_values->n; i++) {
        const rn_config_entry_t *e = &explicit_values->v[i];
        const rn_config_def_t *d = rn_broker_config_def(e->name);
        if (!d) {
            RN_WARN("config", "unknown configuration key '%s' (ignored)", e->name);
            continue;
        }
        rn_err_t rc = rn_config_validate(d, e->value, err, errlen);
        if (rc) return rc;
    }
    derive(cfg);

    int64_t v;
    const char *s;
    s = rn_config_set_get(&cfg->explicit_values, "broker.id");
    if (!s || !rn_config_parse_long(s, &v) || v < 0) v = rn_broker_config_long(cfg, "node.id");
    cfg->node_id = (int32_t)v;

    rn_err_t lrc = resolve_listeners(cfg, err, errlen);
    if (lrc) return lrc;

    s = rn_config_set_get(&cfg->explicit_values, "log.dirs");
    if (!s) s = rn_config_set_get(&cfg->explicit_values, "log.dir");
    if (!s) s = rn_broker_config_value(cfg, "log.dirs", NULL);
    {
        const char *c = strchr(s, ',');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        if (n == 0 || n >= sizeof(cfg->log_dir)) {
            snprintf(err, errlen, "log.dirs: '%s' is not a usable directory", s);
            return RN_ERR_INVALID_ARG;
        }
        if (c) RN_WARN("config", "log.dirs lists several directories; only the first (%.*s) is used", (int)n, s);
        memcpy(cfg->log_dir, s, n);
        cfg->log_dir[n] = 0;
    }

    cfg->num_partitions = (int32_t)rn_broker_config_long(cfg, "num.partitions");
    cfg->default_replication_factor = (int16_t)rn_broker_config_long(cfg, "default.replication.factor");
    bool b = true;
    rn_config_parse_bool(rn_broker_config_value(cfg, "auto.create.topics.enable", NULL), &b);
    cfg->auto_create_topics_enable = b;
    b = true;
    rn_config_parse_bool(rn_broker_config_value(cfg, "delete.topic.enable", NULL), &b);
    cfg->delete_topic_enable = b;
    cfg->message_max_bytes = (int32_t)rn_broker_config_long(cfg, "message.max.bytes");
    cfg->socket_request_max_bytes = (int32_t)rn_broker_config_long(cfg, "socket.request.max.bytes");
    cfg->connections_max_idle_ms = rn_broker_config_long(cfg, "connections.max.idle.ms");
    cfg->num_network_threads = (int32_t)rn_broker_config_long(cfg, "num.network.threads");
    if (cfg->num_network_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->num_network_threads = (int32_t)(n > 0 ? (n > 16 ? 16 : n) : 1);
    }
    cfg->queued_max_requests = (int32_t)rn_broker_config_long(cfg, "queued.max.requests");
    cfg->queued_max_request_bytes = rn_broker_config_long(cfg, "queued.max.request.bytes");
    if (cfg->queued_max_request_bytes <= 0) cfg->queued_max_request_bytes = 64 << 20;
    cfg->max_connections = (int32_t)rn_broker_config_long(cfg, "max.connections");
    s = rn_broker_config_value(cfg, "cluster.id", NULL);
    snprintf(cfg->cluster_id, sizeof(cfg->cluster_id), "%s", s ? s : "");
    s = rn_broker_config_value(cfg, "metrics.listeners", NULL);
    cfg->metrics_port = -1;
    if (s && *s && !parse_hostport(s, cfg->metrics_host, sizeof(cfg->metrics_host), &cfg->metrics_port)) {
        snprintf(err, errlen, "metrics.listeners: '%s' is not host:port", s);
        return RN_ERR_INVALID_ARG;
    }
    cfg->log_level = rn_log_level_parse(rn_broker_config_value(cfg, "log.level", NULL));
    if (cfg->log_level < 0) cfg->log_level = RN_LOG_INFO;
    return RN_OK;
}

void rn_broker_config_free(rn_broker_config_t *cfg) {
    rn_config_set_free(&cfg->explicit_values);
    rn_config_set_free(&cfg->derived);
    rn_config_set_free(&cfg->dynamic);
    rn_config_set_free(&cfg->dynamic_default);
}

/* ---- topic config ---- */

const char *rn_topic_config_value(const rn_broker_config_t *bcfg, const rn_config_set_t *topic, const char *name,
                                  rn_config_source_t *source) {
    if (topic) {
        const rn_config_entry_t *e = rn_config_set_find(topic, name);
        if (e) {
            if (source) *source = RN_CS_DYNAMIC_TOPIC;
            return e->value;
        }
    }
    const rn_config_def_t *d = rn_topic_config_def(name);
    if (!d) return NULL;
    if (d->synonym && bcfg) {
        rn_config_source_t bs;
        const char *v = rn_broker_config_value(bcfg, d->synonym, &bs);
        if (v || bs != RN_CS_DEFAULT) {
            if (source) *source = bs;
            if (v) return v;
        }
    }
    if (source) *source = RN_CS_DEFAULT;
    return d->default_value;
}

int64_t rn_topic_config_long(const rn_broker_config_t *bcfg, const rn_config_set_t *topic, const char *name) {
    int64_t v = -1;
    const char *s = rn_topic_config_value(bcfg, topic, name, NULL);
    if (s) rn_config_parse_long(s, &v);
    return v;
}

void rn_topic_log_config(const rn_broker_config_t *bcfg, const rn_config_set_t *topic, rn_log_config_t *out) {
    rn_log_config_default(out);
    out->segment_bytes = rn_topic_config_long(bcfg, topic, "segment.bytes");
    out->segment_ms = rn_topic_config_long(bcfg, topic, "segment.ms");
    out->index_max_bytes = rn_topic_config_long(bcfg, topic, "segment.index.bytes");
    out->index_interval_bytes = (int32_t)rn_topic_config_long(bcfg, topic, "index.interval.bytes");
    out->retention_ms = rn_topic_config_long(bcfg, topic, "retention.ms");
    out->retention_bytes = rn_topic_config_long(bcfg, topic, "retention.bytes");
    out->flush_messages = rn_topic_config_long(bcfg, topic, "flush.messages");
    out->flush_ms = rn_topic_config_long(bcfg, topic, "flush.ms");
    out->delete_retention_ms = rn_topic_config_long(bcfg, topic, "delete.retention.ms");
    out->min_compaction_lag_ms = rn_topic_config_long(bcfg, topic, "min.compaction.lag.ms");
    double d = 0.5;
    rn_config_parse_double(rn_topic_config_value(bcfg, topic, "min.cleanable.dirty.ratio", NULL), &d);
    out->min_cleanable_dirty_ratio = d;
    const char *p = rn_topic_config_value(bcfg, topic, "cleanup.policy", NULL);
    out->cleanup_policy = 0;
    if (p && strcasestr(p, "delete")) out->cleanup_policy |= RN_CLEANUP_DELETE;
    if (p && strcasestr(p, "compact")) out->cleanup_policy |= RN_CLEANUP_COMPACT;
    const char *t = rn_topic_config_value(bcfg, topic, "message.timestamp.type", NULL);
    out->log_append_time = t && !strcasecmp(t, "LogAppendTime");
    const char *pa = rn_topic_config_value(bcfg, topic, "preallocate", NULL);
    out->preallocate = pa && !strcasecmp(pa, "true");
}

void rn_broker_logdir_config(const rn_broker_config_t *bcfg, rn_logdir_config_t *out) {
    rn_logdir_config_default(out);
    out->path = bcfg->log_dir;
    out->min_free_bytes = rn_broker_config_long(bcfg, "log.dir.min.free.bytes");
    out->max_open_files = (int)rn_broker_config_long(bcfg, "log.open.files.max");
    out->recovery_threads = (int)rn_broker_config_long(bcfg, "num.recovery.threads.per.data.dir");
    out->retention_check_interval_ms = rn_broker_config_long(bcfg, "log.retention.check.interval.ms");
    out->cleaner_dedupe_buffer_bytes = rn_broker_config_long(bcfg, "log.cleaner.dedupe.buffer.size");
    out->cleaner_backoff_ms = rn_broker_config_long(bcfg, "log.cleaner.backoff.ms");
    out->flush_scheduler_interval_ms = rn_broker_config_long(bcfg, "log.flush.scheduler.interval.ms");
    out->hw_checkpoint_interval_ms = rn_broker_config_long(bcfg, "replica.high.watermark.checkpoint.interval.ms");
    rn_topic_log_config(bcfg, NULL, &out->defaults);
}
