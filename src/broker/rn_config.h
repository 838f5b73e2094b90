/*
 * rn_config.h — broker and topic configuration, by Kafka's names.
 *
 * Configuration is a table of definitions (name, type, default, bounds, allowed
 * values, the broker key a topic key falls back to) and sets of explicit
 * values. The broker's effective value of a key is: override on the command
 * line or in server.properties, else the embedded default. A topic's effective
 * value is: the topic's own override, else the broker's value of its synonym
 * (retention.ms ← log.retention.ms), else the default. DescribeConfigs reports
 * every key with its value, source and synonyms from these same tables.
 */
#ifndef RN_CONFIG_H
#define RN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rn_err.h"
#include "rn_log.h"

/* Kafka's ConfigType (DescribeConfigs v3+). */
typedef enum {
    RN_CT_BOOLEAN = 1,
    RN_CT_STRING = 2,
    RN_CT_INT = 3,
    RN_CT_SHORT = 4,
    RN_CT_LONG = 5,
    RN_CT_DOUBLE = 6,
    RN_CT_LIST = 7,
    RN_CT_CLASS = 8,
    RN_CT_PASSWORD = 9,
} rn_config_type_t;

/* Kafka's ConfigSource (DescribeConfigs v1+). */
typedef enum {
    RN_CS_DYNAMIC_TOPIC = 1,
    RN_CS_DYNAMIC_BROKER = 2,
    RN_CS_DYNAMIC_DEFAULT_BROKER = 3,
    RN_CS_STATIC_BROKER = 4,
    RN_CS_DEFAULT = 5,
} rn_config_source_t;

typedef struct {
    const char *name;
    rn_config_type_t type;
    const char *default_value; /* NULL: null */
    int64_t min, max;          /* numeric bounds (inclusive) */
    const char *one_of;        /* comma-separated allowed values (each list element), or NULL */
    const char *synonym;       /* topic keys: the broker key whose value is the default */
    bool read_only;            /* cannot be altered at runtime */
    const char *doc;
} rn_config_def_t;

extern const rn_config_def_t rn_broker_config_defs[];
extern const size_t rn_broker_config_defs_count;
extern const rn_config_def_t rn_topic_config_defs[];
extern const size_t rn_topic_config_defs_count;

const rn_config_def_t *rn_broker_config_def(const char *name);
const rn_config_def_t *rn_topic_config_def(const char *name);

/* Check `value` against the definition; on failure writes a message naming the key. */
rn_err_t rn_config_validate(const rn_config_def_t *def, const char *value, char *err, size_t errlen);

/* A set of explicit key=value pairs (owned strings). */
typedef struct {
    char *name;
    char *value; /* NULL: explicitly null */
} rn_config_entry_t;

typedef struct {
    rn_config_entry_t *v;
    size_t n, cap;
} rn_config_set_t;

void rn_config_set_init(rn_config_set_t *s);
void rn_config_set_free(rn_config_set_t *s);
const rn_config_entry_t *rn_config_set_find(const rn_config_set_t *s, const char *name);
const char *rn_config_set_get(const rn_config_set_t *s, const char *name); /* NULL if absent */
bool rn_config_set_put(rn_config_set_t *s, const char *name, const char *value);
bool rn_config_set_put_n(rn_config_set_t *s, const char *name, size_t name_len, const char *value, size_t value_len,
                         bool value_null);
bool rn_config_set_del(rn_config_set_t *s, const char *name);
bool rn_config_set_copy(rn_config_set_t *dst, const rn_config_set_t *src);
/* Same keys with the same values (null equals null), in any order. */
bool rn_config_set_equal(const rn_config_set_t *a, const rn_config_set_t *b);

/* Parse a Java-style .properties file into `s` (later keys win). */
rn_err_t rn_config_parse_properties(const char *path, rn_config_set_t *s, char *err, size_t errlen);
rn_err_t rn_config_parse_properties_text(const char *text, size_t len, rn_config_set_t *s);

/* Typed parsing helpers (strict: whole string, within range). */
bool rn_config_parse_long(const char *s, int64_t *out);
bool rn_config_parse_double(const char *s, double *out);
bool rn_config_parse_bool(const char *s, bool *out);
/* Whether `name` is an item of the comma-separated `list` (spaces trimmed, case-insensitive). */
bool rn_config_list_has(const char *list, const char *name);

#define RN_LISTENERS_MAX 4

/* One entry of `listeners`: NAME://host:port (a bare host:port is PLAINTEXT). */
typedef struct {
    char name[64];
    char host[256];
    int port;
    char adv_host[256]; /* what clients are told: advertised.listeners' entry of this name, else host:port */
    int adv_port;       /* 0 until bound when port is 0 */
    int net_index;      /* the rn_net listener serving it (set at start) */
} rn_listener_t;

/* The broker's configuration, resolved. */
typedef struct {
    rn_config_set_t explicit_values; /* from the file and --override: STATIC_BROKER_CONFIG */
    rn_config_set_t derived;         /* defaults computed from other keys (log.retention.ms from hours) */
    /* Set at runtime through AlterConfigs on the broker resource (persisted by the
     * broker); consulted first. Readers hold the broker's topics_lock. */
    rn_config_set_t dynamic;         /* resource name = this node id: DYNAMIC_BROKER_CONFIG */
    rn_config_set_t dynamic_default; /* resource name "": DYNAMIC_DEFAULT_BROKER_CONFIG */
    /* Resolved values used on hot paths. */
    int32_t node_id;
    /* `listeners`, in order. The client listener (listener_host/port) is the
     * first one not named in controller.listener.names (a controller-only node:
     * its controller listener); controller_listener indexes the listener named
     * there (-1: none: a combined node then takes controller traffic on its one
     * listener). */
    int nlisteners;
    rn_listener_t listeners[RN_LISTENERS_MAX];
    int client_listener, controller_listener;
    char listener_host[256];
    int listener_port;
    char advertised_host[256];
    int advertised_port;
    char log_dir[4096];
    int32_t num_partitions;
    int16_t default_replication_factor;
    bool auto_create_topics_enable;
    bool delete_topic_enable;
    int32_t message_max_bytes;
    int32_t socket_request_max_bytes;
    int64_t connections_max_idle_ms;
    int32_t num_network_threads;
    int32_t queued_max_requests;
    int64_t queued_max_request_bytes;
    int32_t max_connections;
    char cluster_id[64];
    char metrics_host[256];
    int metrics_port; /* -1: disabled */
    int log_level;
} rn_broker_config_t;

/* Build from explicit values; validates every key (unknown keys: warning
 * printed, kept). Returns RN_ERR_INVALID_ARG with `err` naming the key. */
rn_err_t rn_broker_config_load(rn_broker_config_t *cfg, const rn_config_set_t *explicit_values, char *err,
                               size_t errlen);
void rn_broker_config_free(rn_broker_config_t *cfg);

/* Effective broker value (explicit or default) as a string; NULL for null. */
const char *rn_broker_config_value(const rn_broker_config_t *cfg, const char *name, rn_config_source_t *source);
int64_t rn_broker_config_long(const rn_broker_config_t *cfg, const char *name);

/* Effective topic value: topic override, broker synonym, default. */
const char *rn_topic_config_value(const rn_broker_config_t *bcfg, const rn_config_set_t *topic, const char *name,
                                  rn_config_source_t *source);
int64_t rn_topic_config_long(const rn_broker_config_t *bcfg, const rn_config_set_t *topic, const char *name);

/* Fill the storage engine's per-partition config from topic + broker config. */
void rn_topic_log_config(const rn_broker_config_t *bcfg, const rn_config_set_t *topic, rn_log_config_t *out);
/* The storage engine's log-dir config from the broker config. */
void rn_broker_logdir_config(const rn_broker_config_t *bcfg, rn_logdir_config_t *out);

#endif
