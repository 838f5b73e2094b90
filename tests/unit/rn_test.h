/*
 * rn_test.h — a tiny unit-test harness: assertions that print both operands.
 *
 *   RN_TEST(name) { ASSERT_EQ(1 + 1, 2); }
 *   int main(void) { return rn_test_main(); }
 *
 * Each RN_TEST registers itself; rn_test_main runs them all and prints one line
 * per test plus "N passed, N failed". A failed assertion ends that test only.
 */
#ifndef RN_TEST_H
#define RN_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef void (*rn_test_fn)(void);
typedef struct {
    const char *name;
    rn_test_fn fn;
} rn_test_case_t;

#define RN_TEST_MAX 512
static rn_test_case_t rn_test_cases[RN_TEST_MAX];
static int rn_test_ncases;
static jmp_buf rn_test_jmp;
static int rn_test_failed_flag;

#define RN_TEST(name)                                                          \
    static void name(void);                                                    \
    __attribute__((constructor)) static void rn_test_reg_##name(void) {        \
        if (rn_test_ncases < RN_TEST_MAX) rn_test_cases[rn_test_ncases++] = (rn_test_case_t){#name, name}; \
    }                                                                          \
    static void name(void)

#define RN_TEST_FAIL_(...)                                      \
    do {                                                        \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);       \
        fprintf(stderr, __VA_ARGS__);                           \
        fprintf(stderr, "\n");                                  \
        rn_test_failed_flag = 1;                                \
        longjmp(rn_test_jmp, 1);                                \
    } while (0)

#define ASSERT_TRUE(c) \
    do { if (!(c)) RN_TEST_FAIL_("ASSERT_TRUE(%s) failed", #c); } while (0)
#define ASSERT_FALSE(c) \
    do { if (c) RN_TEST_FAIL_("ASSERT_FALSE(%s) failed", #c); } while (0)
#define RN_ASSERT_CMP_(a, b, op)                                                           \
    do {                                                                                   \
        long long rn_a_ = (long long)(a), rn_b_ = (long long)(b);                          \
        if (!(rn_a_ op rn_b_))                                                             \
            RN_TEST_FAIL_("%s %s %s: %lld vs %lld", #a, #op, #b, rn_a_, rn_b_);            \
    } while (0)
#define ASSERT_EQ(a, b) RN_ASSERT_CMP_(a, b, ==)
#define ASSERT_NE(a, b) RN_ASSERT_CMP_(a, b, !=)
#define ASSERT_LT(a, b) RN_ASSERT_CMP_(a, b, <)
#define ASSERT_LE(a, b) RN_ASSERT_CMP_(a, b, <=)
#define ASSERT_GT(a, b) RN_ASSERT_CMP_(a, b, >)
#define ASSERT_GE(a, b) RN_ASSERT_CMP_(a, b, >=)
#define ASSERT_STREQ(a, b)                                                            \
    do {                                                                              \
        const char *rn_a_ = (a), *rn_b_ = (b);                                        \
        if (strcmp(rn_a_, rn_b_)) RN_TEST_FAIL_("%s == %s: \"%s\" vs \"%s\"", #a, #b, rn_a_, rn_b_); \
    } while (0)
#define ASSERT_MEMEQ(a, b, n)                                              \
    do {                                                                   \
        if (memcmp((a), (b), (n))) RN_TEST_FAIL_("memory %s != %s (%zu bytes)", #a, #b, (size_t)(n)); \
    } while (0)

static inline int rn_test_main(void) {
    /* volatile: these live across setjmp/longjmp */
    volatile int passed = 0, failed = 0;
    for (volatile int i = 0; i < rn_test_ncases; i++) {
        rn_test_failed_flag = 0;
        if (!setjmp(rn_test_jmp)) rn_test_cases[i].fn();
        if (rn_test_failed_flag) {
            failed++;
            printf("FAIL %s\n", rn_test_cases[i].name);
        } else {
            passed++;
            printf("ok   %s\n", rn_test_cases[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
