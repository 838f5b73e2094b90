/* rn_bench.c — `runnel bench`: placeholder until the benchmark suite lands. */
#include <stdio.h>

#include "rn_cli.h"

int rn_cli_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "runnel bench: not built yet\n");
    return 1;
}
