/*
 * main.c — the runnel binary.
 *
 *   runnel broker [server.properties] [--override key=value]...
 *   runnel broker --check-config FILE   validate and print the effective values
 *   runnel version
 *
 * The broker blocks SIGINT/SIGTERM in every thread and waits for them here,
 * so shutdown always runs on this thread: stop the network, then close the log
 * dir cleanly (sync, checkpoints, clean-shutdown marker).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rn_broker.h"
#include "rn_cli.h"
#include "rn_config.h"
#include "rn_logging.h"

#define RN_VERSION "0.1.0"

static void usage(FILE *f) {
    fprintf(f,
            "usage: runnel <command> [options]\n"
            "\n"
            "commands:\n"
            "  broker [server.properties] [--override key=value]...   run a broker\n"
            "  broker --check-config FILE [--override key=value]...   validate a configuration\n"
            "  version                                                print the version\n"
            "  <tool> --help                                          the tools below\n"
            "\n"
            "With no properties file the broker runs on embedded defaults:\n"
            "127.0.0.1:9092, data in ./data, fsync before acknowledging (group commit).\n"
            "\ntools:\n");
    if (f == stdout) rn_cli_print_commands();
}

static int broker_main(int argc, char **argv) {
    rn_config_set_t props;
    rn_config_set_init(&props);
    const char *file = NULL;
    bool check = false;
    char err[512] = "";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rn_config_set_free(&props);
            return 0;
        } else if (!strcmp(a, "--override") && i + 1 < argc) {
            const char *kv = argv[++i];
            const char *eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                fprintf(stderr, "runnel: --override needs key=value, got '%s'\n", kv);
                rn_config_set_free(&props);
                return 2;
            }
            rn_config_set_put_n(&props, kv, (size_t)(eq - kv), eq + 1, strlen(eq + 1), false);
        } else if (!strncmp(a, "--override=", 11)) {
            const char *kv = a + 11;
            const char *eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                fprintf(stderr, "runnel: --override needs key=value, got '%s'\n", kv);
                rn_config_set_free(&props);
                return 2;
            }
            rn_config_set_put_n(&props, kv, (size_t)(eq - kv), eq + 1, strlen(eq + 1), false);
        } else if (!strcmp(a, "--check-config")) {
            check = true;
            if (i + 1 < argc && argv[i + 1][0] != '-') file = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "runnel: unknown option '%s'\n", a);
            usage(stderr);
            rn_config_set_free(&props);
            return 2;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "runnel: unexpected argument '%s'\n", a);
            rn_config_set_free(&props);
            return 2;
        }
    }
    /* The file first, then overrides on top. */
    rn_config_set_t all;
    rn_config_set_init(&all);
    if (file && rn_config_parse_properties(file, &all, err, sizeof(err)) != RN_OK) {
        fprintf(stderr, "runnel: %s\n", err);
        rn_config_set_free(&props);
        rn_config_set_free(&all);
        return 1;
    }
    for (size_t i = 0; i < props.n; i++) rn_config_set_put(&all, props.v[i].name, props.v[i].value);
    rn_config_set_free(&props);

    if (check) {
        rn_broker_config_t cfg;
        rn_err_t rc = rn_broker_config_load(&cfg, &all, err, sizeof(err));
        rn_config_set_free(&all);
        if (rc) {
            fprintf(stderr, "runnel: invalid configuration: %s\n", err);
            rn_broker_config_free(&cfg);
            return 1;
        }
        for (size_t i = 0; i < rn_broker_config_defs_count; i++) {
            rn_config_source_t src;
            const char *v = rn_broker_config_value(&cfg, rn_broker_config_defs[i].name, &src);
            printf("%s=%s%s\n", rn_broker_config_defs[i].name, v ? v : "", src == RN_CS_STATIC_BROKER ? "" : "  # default");
        }
        rn_broker_config_free(&cfg);
        return 0;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rn_broker_t *b = NULL;
    rn_err_t rc = rn_broker_new(&b, &all, err, sizeof(err));
    rn_config_set_free(&all);
    if (rc) {
        fprintf(stderr, "runnel: cannot start: %s\n", err[0] ? err : rn_err_name(rc));
        return 1;
    }
    rc = rn_broker_start(b);
    if (rc) {
        RN_ERROR("broker", "cannot start the network: %s", rn_err_name(rc));
        rn_broker_free(b);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    RN_INFO("broker", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rn_broker_stop(b);
    rn_broker_free(b);
    RN_INFO("broker", "shutdown complete");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "broker")) return broker_main(argc - 2, argv + 2);
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("runnel %s\n", RN_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    int rc = rn_cli_dispatch(argc - 1, argv + 1);
    if (rc >= 0) return rc;
    fprintf(stderr, "runnel: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
