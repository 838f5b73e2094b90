/* rn_histo.c — the bucket bounds of rn_histo_t. */
#include "rn_histo.h"

const int64_t rn_histo_bounds_us[RN_HISTO_NBOUNDS] = RN_HISTO_BOUNDS_US;
