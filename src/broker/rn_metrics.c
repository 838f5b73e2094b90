/*
 * rn_metrics.c — Prometheus text exposition over HTTP on metrics.listeners
 * (default 127.0.0.1:9644), and /health.
 *
 * One small thread accepts a connection at a time (poll with a short timeout so
 * a stop is seen promptly), reads one request line within a bounded time and
 * size, answers, and closes: scrapes are rare and small, so nothing here is
 * on a request path of the Kafka listener. /health answers 200 while the
 * broker serves and 503 while it recovers or stops; the listener starts before
 * log recovery precisely so that "recovering" is observable.
 *
 * Everything rendered is read from atomic counters or under the topics lock
 * (shared), so a scrape never blocks produce or fetch for long.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <dirent.h>
#include <unistd.h>

#include "rn_broker.h"
#include "rn_clock.h"
#include "rn_logging.h"
#include "rn_group.h"
#include "rn_msg_gen.h"

#define RN_METRICS_REQ_MAX 8192
#define RN_METRICS_IO_TIMEOUT_MS 2000

struct rn_metrics {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
};

static void put(rn_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(rn_buf_t *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(tmp)) n = sizeof(tmp) - 1;
    rn_buf_put(b, tmp, (size_t)n);
}

static void render_histo(rn_buf_t *b, const char *name, const char *labels, rn_histo_t *h) {
    uint64_t cum = 0;
    for (int i = 0; i < RN_HISTO_NBOUNDS; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", (double)rn_histo_bounds_us[i] / 1e6,
            (unsigned long long)cum);
    }
    cum += atomic_load_explicit(&h->buckets[RN_HISTO_NBOUNDS], memory_order_relaxed);
    put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "", (unsigned long long)cum);
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    put(b, "%s_sum%s%s%s %.9f\n", name, open, labels, close, (double)atomic_load(&h->sum_ns) / 1e9);
    put(b, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)cum);
}

static void render_histo_family(rn_buf_t *b, const char *name, const char *help, rn_histo_t *h) {
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    render_histo(b, name, "", h);
}

static void process_metrics(rn_buf_t *b, rn_broker_t *br) {
    long rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &rss_pages) != 2) rss_pages = 0;
        fclose(f);
    }
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') fds++;
        closedir(d);
        fds--; /* the directory handle itself */
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    put(b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n");
    put(b, "process_resident_memory_bytes %ld\n", rss_pages * sysconf(_SC_PAGESIZE));
    put(b, "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds %d\n", fds);
    put(b, "# HELP process_max_fds Maximum number of open file descriptors.\n# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
        (unsigned long long)rl.rlim_cur);
    put(b, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n");
    put(b, "process_cpu_seconds_total %.3f\n", cpu);
    put(b, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n");
    put(b, "process_start_time_seconds %.3f\n", (double)br->started_ms / 1000.0);
}

/* A label value with Prometheus escapes (\\, \", \n); group ids are arbitrary. */
static const char *label_escape(const char *in, size_t len, char *out, size_t outlen) {
    size_t j = 0;
    for (size_t i = 0; i < len && j + 3 < outlen; i++) {
        char ch = in[i];
        if (ch == '\\' || ch == '"') {
            out[j++] = '\\';
            out[j++] = ch;
        } else if (ch == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else if (ch) {
            out[j++] = ch;
        }
    }
    out[j] = 0;
    return out;
}

/* Groups per state, members, and consumer lag (high watermark - committed
 * offset) per group and partition. Lock order: coordinator, then topics. */
static void group_metrics(rn_buf_t *b, rn_broker_t *br) {
    rn_group_coordinator_t *c = br->group_coordinator;
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    put(b, "# HELP runnel_groups Consumer groups known to the coordinator.\n# TYPE runnel_groups gauge\n");
    put(b, "runnel_groups %zu\n", c->groups.count);
    put(b, "# HELP runnel_group_members Members of each consumer group.\n# TYPE runnel_group_members gauge\n");
    size_t it = 0;
    void *v;
    while (rn_map_next(&c->groups, &it, NULL, &v)) {
        rn_group_t *g = v;
        char gid[512];
        label_escape(g->group_id, g->group_id_len, gid, sizeof(gid));
        put(b, "runnel_group_members{group=\"%s\",state=\"%s\"} %d\n", gid, rn_group_state_name(g->state), g->nmembers);
    }
    put(b, "# HELP runnel_group_lag Consumer lag: high watermark minus the committed offset.\n"
           "# TYPE runnel_group_lag gauge\n");
    put(b, "# HELP runnel_group_committed_offset Committed offset per group and partition.\n"
           "# TYPE runnel_group_committed_offset gauge\n");
    pthread_rwlock_rdlock(&br->topics_lock);
    it = 0;
    while (rn_map_next(&c->groups, &it, NULL, &v)) {
        rn_group_t *g = v;
        char gid[512];
        label_escape(g->group_id, g->group_id_len, gid, sizeof(gid));
        const char *topic;
        size_t tl;
        int32_t part;
        const rn_offset_t *o;
        for (size_t oi = 0; rn_group_offset_next(g, &oi, &topic, &tl, &part, &o);) {
            put(b, "runnel_group_committed_offset{group=\"%s\",topic=\"%.*s\",partition=\"%d\"} %lld\n", gid,
                (int)tl, topic, part, (long long)o->offset);
            rn_partition_t *p = rn_broker_partition_locked(br, topic, tl, part);
            if (!p || !p->log) continue;
            int64_t lag = rn_log_high_watermark(p->log) - o->offset;
            put(b, "runnel_group_lag{group=\"%s\",topic=\"%.*s\",partition=\"%d\"} %lld\n", gid, (int)tl, topic,
                part, (long long)(lag > 0 ? lag : 0));
        }
    }
    pthread_rwlock_unlock(&br->topics_lock);
    pthread_mutex_unlock(&c->lock);
}

void rn_metrics_render(rn_broker_t *br, rn_buf_t *b) {
    int state = atomic_load(&br->state);
    put(b, "# HELP runnel_up 1 while the broker serves, 0 while it recovers or stops.\n# TYPE runnel_up gauge\n");
    put(b, "runnel_up %d\n", state == RN_STATE_SERVING);

    /* Requests per API */
    put(b, "# HELP runnel_requests_total Requests received, per API.\n# TYPE runnel_requests_total counter\n");
    for (int k = 0; k < RN_STATS_APIS; k++) {
        const rn_api_info_t *a = rn_api_info_known((int16_t)k);
        uint64_t n = atomic_load(&br->stats.requests[k]);
        if (a && (n || rn_handler_find((int16_t)k))) put(b, "runnel_requests_total{api=\"%s\"} %llu\n", a->name, (unsigned long long)n);
    }
    put(b, "# HELP runnel_request_errors_total Partition or request level errors returned, per API.\n# TYPE runnel_request_errors_total counter\n");
    for (int k = 0; k < RN_STATS_APIS; k++) {
        const rn_api_info_t *a = rn_api_info_known((int16_t)k);
        if (a && rn_handler_find((int16_t)k))
            put(b, "runnel_request_errors_total{api=\"%s\"} %llu\n", a->name, (unsigned long long)atomic_load(&br->stats.errors[k]));
    }
    put(b, "# HELP runnel_request_duration_seconds Time from a request's last byte to its response, per API.\n"
           "# TYPE runnel_request_duration_seconds histogram\n");
    for (int k = 0; k < RN_STATS_APIS; k++) {
        const rn_api_info_t *a = rn_api_info_known((int16_t)k);
        if (!a || !rn_handler_find((int16_t)k)) continue;
        char labels[96];
        snprintf(labels, sizeof(labels), "api=\"%s\"", a->name);
        render_histo(b, "runnel_request_duration_seconds", labels, &br->stats.latency[k]);
    }
    put(b, "# HELP runnel_bad_requests_total Requests refused as malformed (connection closed).\n# TYPE runnel_bad_requests_total counter\n");
    put(b, "runnel_bad_requests_total %llu\n", (unsigned long long)atomic_load(&br->stats.bad_requests));
    put(b, "# HELP runnel_messages_in_total Records appended by producers.\n# TYPE runnel_messages_in_total counter\n");
    put(b, "runnel_messages_in_total %llu\n", (unsigned long long)atomic_load(&br->stats.messages_in));

    if (br->net) {
        rn_net_stats_t ns;
        rn_net_stats(br->net, &ns);
        put(b, "# HELP runnel_connections Open client connections.\n# TYPE runnel_connections gauge\nrunnel_connections %llu\n",
            (unsigned long long)ns.connections_open);
        put(b, "# HELP runnel_connections_total Connections accepted.\n# TYPE runnel_connections_total counter\nrunnel_connections_total %llu\n",
            (unsigned long long)ns.connections_total);
        put(b, "# HELP runnel_network_received_bytes_total Bytes read from clients.\n# TYPE runnel_network_received_bytes_total counter\n"
               "runnel_network_received_bytes_total %llu\n", (unsigned long long)ns.bytes_in);
        put(b, "# HELP runnel_network_sent_bytes_total Bytes written to clients.\n# TYPE runnel_network_sent_bytes_total counter\n"
               "runnel_network_sent_bytes_total %llu\n", (unsigned long long)ns.bytes_out);
    }
    if (br->logdir) {
        rn_logdir_stats_t ls;
        rn_logdir_stats(br->logdir, &ls);
        put(b, "# HELP runnel_fsyncs_total fdatasync calls issued on segment files.\n# TYPE runnel_fsyncs_total counter\n"
               "runnel_fsyncs_total %llu\n", (unsigned long long)ls.fsyncs);
        put(b, "# HELP runnel_fsync_rounds_total Group-commit rounds (one round covers every pending append).\n"
               "# TYPE runnel_fsync_rounds_total counter\nrunnel_fsync_rounds_total %llu\n", (unsigned long long)ls.fsync_rounds);
        put(b, "# HELP runnel_fsync_seconds Time spent in fdatasync.\n# TYPE runnel_fsync_seconds summary\n"
               "runnel_fsync_seconds_sum %.9f\nrunnel_fsync_seconds_count %llu\n", (double)ls.fsync_ns_total / 1e9,
            (unsigned long long)ls.fsyncs);
        render_histo_family(b, "runnel_fsync_round_seconds",
                            "Duration of each group-commit round (the fsync wait of an acknowledged produce).",
                            rn_logdir_sync_histo(br->logdir));
        put(b, "# HELP runnel_log_open_files Segment files held open by the file cache.\n# TYPE runnel_log_open_files gauge\n"
               "runnel_log_open_files %llu\n", (unsigned long long)ls.open_files);
        put(b, "# HELP runnel_log_dir_offline 1 when the log dir went offline after an I/O error.\n"
               "# TYPE runnel_log_dir_offline gauge\nrunnel_log_dir_offline %d\n", rn_logdir_offline(br->logdir) ? 1 : 0);
    }

    /* Per topic and partition (under the topics lock, shared). */
    pthread_rwlock_rdlock(&br->topics_lock);
    put(b, "# HELP runnel_topics Topics.\n# TYPE runnel_topics gauge\nrunnel_topics %zu\n", br->topics.count);
    static const char *tnames[3] = {"runnel_topic_bytes_in_total", "runnel_topic_bytes_out_total", "runnel_topic_messages_in_total"};
    static const char *thelp[3] = {"Record bytes produced to the topic.", "Record bytes fetched from the topic.",
                                   "Records produced to the topic."};
    for (int m = 0; m < 3; m++) {
        put(b, "# HELP %s %s\n# TYPE %s counter\n", tnames[m], thelp[m], tnames[m]);
        size_t it = 0;
        void *v;
        while (rn_map_next(&br->topics, &it, NULL, &v)) {
            rn_topic_t *t = v;
            uint64_t val = m == 0 ? atomic_load(&t->bytes_in) : m == 1 ? atomic_load(&t->bytes_out) : atomic_load(&t->messages_in);
            put(b, "%s{topic=\"%s\"} %llu\n", tnames[m], t->name, (unsigned long long)val);
        }
    }
    static const char *pnames[4] = {"runnel_partition_log_end_offset", "runnel_partition_log_start_offset",
                                    "runnel_partition_high_watermark", "runnel_partition_size_bytes"};
    static const char *phelp[4] = {"Offset the next appended record gets.", "First offset still in the log.",
                                   "Offset up to which consumers read.", "Bytes of segment data on disk."};
    for (int m = 0; m < 4; m++) {
        put(b, "# HELP %s %s\n# TYPE %s gauge\n", pnames[m], phelp[m], pnames[m]);
        size_t it = 0;
        void *v;
        while (rn_map_next(&br->topics, &it, NULL, &v)) {
            rn_topic_t *t = v;
            for (int32_t i = 0; i < t->partition_count; i++) {
                rn_partition_t *p = t->partitions[i];
                if (!p || !p->log) continue;
                int64_t val = m == 0 ? rn_log_end_offset(p->log)
                              : m == 1 ? rn_log_start_offset(p->log)
                              : m == 2 ? rn_log_high_watermark(p->log)
                                       : rn_log_size_bytes(p->log);
                put(b, "%s{topic=\"%s\",partition=\"%d\"} %lld\n", pnames[m], t->name, i, (long long)val);
            }
        }
    }
    pthread_rwlock_unlock(&br->topics_lock);
    group_metrics(b, br);
    process_metrics(b, br);
}

static void respond(int fd, int code, const char *ctype, const uint8_t *body, size_t len) {
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", code,
                     code == 200 ? "OK" : code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed"
                                      : code == 503 ? "Service Unavailable" : "Bad Request",
                     ctype, len);
    size_t off = 0, total = (size_t)n + len;
    while (off < total) {
        const uint8_t *p = off < (size_t)n ? (const uint8_t *)hdr + off : body + (off - (size_t)n);
        size_t chunk = off < (size_t)n ? (size_t)n - off : total - off;
        ssize_t w = send(fd, p, chunk, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return;
        }
        off += (size_t)w;
    }
}

static void serve_one(rn_broker_t *br, int fd) {
    struct timeval tv = {RN_METRICS_IO_TIMEOUT_MS / 1000, (RN_METRICS_IO_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[RN_METRICS_REQ_MAX + 1];
    size_t len = 0;
    while (len < RN_METRICS_REQ_MAX) {
        ssize_t n = recv(fd, req + len, RN_METRICS_REQ_MAX - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[len] = 0;
    char method[8] = "", path[256] = "";
    if (sscanf(req, "%7s %255s", method, path) != 2) {
        respond(fd, 400, "text/plain", (const uint8_t *)"bad request\n", 12);
        return;
    }
    char *q = strchr(path, '?');
    if (q) *q = 0;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        respond(fd, 405, "text/plain", (const uint8_t *)"method not allowed\n", 19);
        return;
    }
    if (!strcmp(path, "/health") || !strcmp(path, "/healthz")) {
        int state = atomic_load(&br->state);
        const char *msg = state == RN_STATE_SERVING ? "serving\n" : state == RN_STATE_RECOVERING ? "recovering\n" : "stopping\n";
        respond(fd, state == RN_STATE_SERVING ? 200 : 503, "text/plain", (const uint8_t *)msg, strlen(msg));
    } else if (!strcmp(path, "/metrics")) {
        rn_buf_t out;
        rn_buf_init(&out, (size_t)256 << 20);
        rn_metrics_render(br, &out);
        respond(fd, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
        rn_buf_free(&out);
    } else {
        respond(fd, 404, "text/plain", (const uint8_t *)"not found: try /metrics or /health\n", 35);
    }
}

static void *metrics_main(void *arg) {
    rn_broker_t *br = arg;
    rn_metrics_t *m = br->metrics;
    while (!atomic_load(&m->stop)) {
        struct pollfd pfd = {m->fd, POLLIN, 0};
        int r = poll(&pfd, 1, 200);
        if (r <= 0) continue;
        int c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        serve_one(br, c);
        close(c);
    }
    return NULL;
}

rn_err_t rn_metrics_start(rn_broker_t *br) {
    if (br->cfg.metrics_port < 0) return RN_OK;
    rn_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) return RN_ERR_NOMEM;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)br->cfg.metrics_port)};
    if (inet_pton(AF_INET, br->cfg.metrics_host, &sa.sin_addr) != 1) {
        RN_ERROR("metrics", "metrics.listeners: '%s' is not an IPv4 address", br->cfg.metrics_host);
        free(m);
        return RN_ERR_INVALID_ARG;
    }
    m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(m->fd, 16) != 0) {
        RN_ERROR("metrics", "cannot listen on %s:%d: %s", br->cfg.metrics_host, br->cfg.metrics_port, strerror(errno));
        if (m->fd >= 0) close(m->fd);
        free(m);
        return RN_ERR_IO;
    }
    socklen_t sl = sizeof(sa);
    getsockname(m->fd, (struct sockaddr *)&sa, &sl);
    m->port = ntohs(sa.sin_port);
    atomic_init(&m->stop, false);
    br->metrics = m;
    if (pthread_create(&m->thread, NULL, metrics_main, br) != 0) {
        close(m->fd);
        free(m);
        br->metrics = NULL;
        return RN_ERR_IO;
    }
    RN_INFO("metrics", "Prometheus metrics on http://%s:%d/metrics", br->cfg.metrics_host, m->port);
    return RN_OK;
}

int rn_metrics_port(const rn_broker_t *br) { return br->metrics ? br->metrics->port : -1; }

void rn_metrics_stop(rn_broker_t *br) {
    rn_metrics_t *m = br->metrics;
    if (!m) return;
    atomic_store(&m->stop, true);
    pthread_join(m->thread, NULL);
    close(m->fd);
    free(m);
    br->metrics = NULL;
}
