/*
 * mock_broker.c — librdkafka's in-memory mock cluster as a stand-alone broker,
 * the reference point of bench/run.
 *
 *   mock_broker [--retain-all] [TOPIC:PARTITIONS]...
 *
 * Starts rd_kafka_mock_cluster_new() with one broker, creates the given
 * topics (others are auto-created on first use, with librdkafka's default
 * partition count), prints the bootstrap address ("127.0.0.1:PORT") on one
 * line of stdout, and serves until stdin closes or SIGTERM/SIGINT arrives.
 *
 * --retain-all: the mock keeps only the newest 5 MB (or 100,000 batches) of
 * each partition and drops older batches, so a consumer reading a benchmark's
 * topic from the beginning would find most of it gone. librdkafka 2.0 has no
 * API to change those limits, so this option finds them in memory — each mock
 * partition holds `size_t max_size = 5242880; size_t max_cnt = 100000;` side
 * by side, right after `size_t size, cnt` (both still 0) — and raises them.
 * It checks that it found exactly one such pair per partition created, and
 * refuses to start otherwise (another librdkafka version, another layout).
 * Only the topics named on the command line are patched; the memory they may
 * take is bounded by what bench/run sends.
 *
 * The mock broker does nothing but keep batches in memory and answer from
 * them, on one thread: the same client against it shows what a broker could
 * reach on this machine if it did no work of its own. It is built by
 * bench/run with `cc ... $(pkg-config --cflags --libs rdkafka)`.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

#define MOCK_MAX_SIZE ((size_t)1024 * 1024 * 5)
#define MOCK_MAX_CNT ((size_t)100000)

/* Raise every mock partition's retention limits (see above); returns how many
 * partitions were patched. The mock thread is idle: no client is connected yet. */
static int retain_all(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return -1;
    int found = 0;
    char line[512];
    while (fgets(line, sizeof(line), maps)) {
        unsigned long lo, hi;
        char perms[8];
        char path[256] = "";
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) < 3) continue;
        /* Heap and anonymous mappings only (malloc arenas of every thread). */
        if (strncmp(perms, "rw", 2) != 0) continue;
        if (path[0] && strcmp(path, "[heap]") != 0) continue;
        size_t *w = (size_t *)lo, *end = (size_t *)hi;
        for (; w + 4 <= end; w++) {
            if (w[2] == MOCK_MAX_SIZE && w[3] == MOCK_MAX_CNT && w[0] == 0 && w[1] == 0) {
                w[2] = (size_t)1 << 40;
                w[3] = (size_t)1 << 40;
                found++;
            }
        }
    }
    fclose(maps);
    return found;
}

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "mock_broker: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "mock_broker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    bool retain = false;
    int partitions_created = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--retain-all")) {
            retain = true;
            continue;
        }
        char name[256];
        const char *colon = strrchr(argv[i], ':');
        int parts = colon ? atoi(colon + 1) : 1;
        size_t n = colon ? (size_t)(colon - argv[i]) : strlen(argv[i]);
        if (n == 0 || n >= sizeof(name) || parts <= 0) {
            fprintf(stderr, "mock_broker: bad topic '%s' (want NAME:PARTITIONS)\n", argv[i]);
            return 2;
        }
        memcpy(name, argv[i], n);
        name[n] = 0;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, 1);
        if (e) {
            fprintf(stderr, "mock_broker: topic %s: %s\n", name, rd_kafka_err2str(e));
            return 1;
        }
        partitions_created += parts;
    }
    if (retain) {
        int n = retain_all();
        if (n != partitions_created) {
            fprintf(stderr, "mock_broker: --retain-all found %d partition limits, expected %d: "
                    "this librdkafka's mock has another layout\n", n, partitions_created);
            return 1;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    /* Serve until stdin reaches EOF (the parent went away) or a signal. */
    while (!stopping) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int r = poll(&p, 1, 200);
        if (r > 0) {
            char b[256];
            ssize_t n = read(0, b, sizeof(b));
            if (n <= 0) break;
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
