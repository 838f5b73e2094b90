/*
 * rn_assert.h — invariants, always on (release builds too).
 * A broken invariant is a programmer error: print where and abort.
 */
#ifndef RN_ASSERT_H
#define RN_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define RN_ASSERT(cond)                                                              \
    do {                                                                             \
        if (__builtin_expect(!(cond), 0)) {                                          \
            fprintf(stderr, "assertion failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#define RN_UNREACHABLE() RN_ASSERT(0 && "unreachable")

#endif
