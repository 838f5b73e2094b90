/* main.c — the runnel binary: `runnel broker ...` and the CLI subcommands. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: runnel broker [server.properties] [--override key=value]...\n");
        return 2;
    }
    fprintf(stderr, "runnel: unknown command '%s'\n", argv[1]);
    return 2;
}
