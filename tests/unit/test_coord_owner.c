/* Unit tests for rn_iowner_t (src/broker/rn_itopic.c): which partitions of a
 * coordinator's internal topic this node serves, as leadership moves. */
#include "rn_itopic.h"
#include "rn_test.h"

RN_TEST(owner_follows_leadership_and_loading) {
    rn_itopic_t t = {.name = "__consumer_offsets", .partitions = 50};
    rn_iowner_t o = {0};
    ASSERT_EQ(rn_iowner_check(&o, 0), RN_ERR_NOT_COORDINATOR); /* no topic yet */
    ASSERT_EQ(rn_iowner_check(&o, -1), RN_ERR_NOT_COORDINATOR);
    int32_t want[3] = {3, -1, 0};
    ASSERT_TRUE(rn_iowner_update(&o, &t, want, 3));
    ASSERT_TRUE(o.dirty);
    ASSERT_EQ(t.partitions, 3); /* the topic's count wins over the configured one */
    ASSERT_EQ(rn_iowner_check(&o, 0), RN_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    ASSERT_EQ(rn_iowner_check(&o, 1), RN_ERR_NOT_COORDINATOR);
    ASSERT_EQ(rn_iowner_check(&o, 2), RN_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    ASSERT_EQ(rn_iowner_check(&o, 3), RN_ERR_NOT_COORDINATOR);
    o.dirty = false;
    o.loaded[0] = 3; /* what the coordinator's thread does after a replay */
    o.loaded[2] = 0;
    ASSERT_EQ(rn_iowner_check(&o, 0), 0);
    ASSERT_EQ(rn_iowner_check(&o, 2), 0);
    ASSERT_FALSE(rn_iowner_update(&o, &t, want, 3)); /* the same image again: nothing to do */
    ASSERT_FALSE(o.dirty);
    /* Led again at a newer epoch: loading again (the state in memory may be stale). */
    want[0] = 5;
    ASSERT_TRUE(rn_iowner_update(&o, &t, want, 3));
    ASSERT_EQ(rn_iowner_check(&o, 0), RN_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    ASSERT_EQ(rn_iowner_check(&o, 2), 0);
    /* Leadership of 2 lost; then the topic gone: nothing is led. */
    want[2] = -1;
    ASSERT_TRUE(rn_iowner_update(&o, &t, want, 3));
    ASSERT_EQ(rn_iowner_check(&o, 2), RN_ERR_NOT_COORDINATOR);
    ASSERT_TRUE(rn_iowner_update(&o, &t, NULL, 0));
    for (int32_t p = 0; p < 3; p++) ASSERT_EQ(o.want[p], -1);
    ASSERT_EQ(rn_iowner_check(&o, 0), RN_ERR_NOT_COORDINATOR);
    rn_iowner_free(&o);
    ASSERT_EQ(o.n, 0);
}

int main(void) { return rn_test_main(); }
