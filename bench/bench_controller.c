/*
 * bench_controller.c — how long the controller's work takes at scale (release build):
 *
 *   build/release/bench_controller [topics] [partitions_per_topic]   (default 10 × 10000, RF 3, 5 brokers)
 *
 * Prints, for a cluster of `topics` × `partitions_per_topic` partitions:
 *   - CreateTopics of one topic: decision time, records and bytes, apply time;
 *   - a broker's session expiring (fence + move its leaderships, leave its ISRs): the same;
 *   - the image as a snapshot: bytes, serialize time, load time.
 * The time is the median of 5 runs of each step (on fresh copies loaded from a snapshot).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rn_controller.h"
#include "rn_logging.h"
#include "rn_meta_image.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int64_t offset;

static void apply_or_die(rn_meta_image_t *img, rn_meta_batch_t *b) {
    if (rn_meta_batch_err(b) || rn_meta_image_apply_entry(img, b->buf.data, b->buf.len, ++offset)) {
        fprintf(stderr, "apply failed\n");
        exit(1);
    }
}

static rn_meta_image_t *copy_of(const rn_meta_image_t *img) {
    rn_buf_t s;
    rn_buf_init(&s, 1u << 30);
    rn_meta_image_serialize(img, &s);
    rn_meta_image_t *c = NULL;
    if (s.err || rn_meta_image_load(&c, NULL, s.data, s.len)) exit(1);
    rn_buf_free(&s);
    return c;
}

int main(int argc, char **argv) {
    int topics = argc > 1 ? atoi(argv[1]) : 10, per = argc > 2 ? atoi(argv[2]) : 10000;
    rn_log_set_level(RN_LOG_ERROR);
    rn_ctl_config_t cfg;
    rn_ctl_config_default(&cfg);
    rn_controller_t *ctl = rn_ctl_new(&cfg, 1);
    rn_meta_image_t *img = rn_meta_image_new(NULL);
    rn_meta_batch_t b;
    rn_meta_batch_init(&b, cfg.batch_bytes_max);
    int64_t now = 0;
    for (int32_t id = 1; id <= 5; id++) {
        rn_meta_reg_t r;
        memset(&r, 0, sizeof(r));
        r.node_id = id;
        r.incarnation[0] = (uint8_t)id;
        r.rack = RN_STR_NULL;
        r.nlisteners = 1;
        r.listeners[0] = (rn_meta_listener_t){RN_STR_LIT("PLAINTEXT"), RN_STR_LIT("127.0.0.1"), (uint16_t)(9092 + id), 0};
        int64_t epoch;
        rn_ctl_register_broker(ctl, img, &r, -1, now, &b, &epoch);
        apply_or_die(img, &b);
        rn_meta_batch_reset(&b);
        rn_ctl_heartbeat_t hb = {id, epoch, offset, false, false};
        rn_ctl_heartbeat_reply_t reply;
        rn_ctl_heartbeat(ctl, img, &hb, now, &b, &reply);
        apply_or_die(img, &b);
        rn_meta_batch_reset(&b);
    }
    for (int t = 0; t < topics; t++) {
        char name[32];
        snprintf(name, sizeof(name), "topic-%d", t);
        rn_ctl_create_topic_t req = {.name = rn_str_from_cstr(name), .num_partitions = per, .replication_factor = 3};
        rn_ctl_create_topic_result_t res;
        if (rn_ctl_create_topic(ctl, img, &req, &b, &res)) return 1;
        apply_or_die(img, &b);
        rn_meta_batch_reset(&b);
    }
    printf("cluster: 5 brokers, %d topics x %d partitions, RF 3 (%lld partitions)\n", topics, per,
           (long long)rn_meta_image_partition_count(img));

    double decide[5], apply[5], ser[5], load[5];
    int32_t records = 0;
    size_t bytes = 0;
    for (int run = 0; run < 5; run++) {
        rn_meta_image_t *c = copy_of(img);
        rn_ctl_create_topic_t req = {.name = RN_STR_LIT("one-more"), .num_partitions = per, .replication_factor = 3};
        rn_ctl_create_topic_result_t res;
        double t0 = now_ms();
        rn_ctl_create_topic(ctl, c, &req, &b, &res);
        double t1 = now_ms();
        apply_or_die(c, &b);
        decide[run] = t1 - t0;
        apply[run] = now_ms() - t1;
        records = b.count;
        bytes = b.buf.len;
        rn_meta_batch_reset(&b);
        rn_meta_image_free(c);
    }
    qsort(decide, 5, sizeof(double), cmp_double);
    qsort(apply, 5, sizeof(double), cmp_double);
    printf("CreateTopics (%d partitions): decide %.2f ms, %d records / %zu bytes, apply %.2f ms\n", per, decide[2],
           records, bytes, apply[2]);

    for (int run = 0; run < 5; run++) {
        rn_meta_image_t *c = copy_of(img);
        rn_ctl_activate(ctl, c, 0);
        for (int32_t id = 2; id <= 5; id++) { /* everyone but broker 1 keeps heartbeating */
            rn_ctl_heartbeat_t hb = {id, rn_meta_image_broker(c, id)->epoch, offset, false, false};
            rn_ctl_heartbeat_reply_t reply;
            rn_ctl_heartbeat(ctl, c, &hb, 9500, &b, &reply);
        }
        double t0 = now_ms();
        int32_t fenced = rn_ctl_tick(ctl, c, 9500, &b);
        double t1 = now_ms();
        apply_or_die(c, &b);
        if (fenced != 1 || rn_meta_image_partitions_led_by(c, 1, NULL, 0) != 0) return 1;
        decide[run] = t1 - t0;
        apply[run] = now_ms() - t1;
        records = b.count;
        bytes = b.buf.len;
        rn_meta_batch_reset(&b);
        rn_meta_image_free(c);
    }
    qsort(decide, 5, sizeof(double), cmp_double);
    qsort(apply, 5, sizeof(double), cmp_double);
    printf("session expiry of one broker: decide %.2f ms, %d records / %zu bytes, apply %.2f ms\n", decide[2], records,
           bytes, apply[2]);

    size_t snap_bytes = 0;
    for (int run = 0; run < 5; run++) {
        rn_buf_t s;
        rn_buf_init(&s, 1u << 30);
        double t0 = now_ms();
        rn_meta_image_serialize(img, &s);
        double t1 = now_ms();
        rn_meta_image_t *c = NULL;
        if (s.err || rn_meta_image_load(&c, NULL, s.data, s.len)) return 1;
        ser[run] = t1 - t0;
        load[run] = now_ms() - t1;
        snap_bytes = s.len;
        rn_meta_image_free(c);
        rn_buf_free(&s);
    }
    qsort(ser, 5, sizeof(double), cmp_double);
    qsort(load, 5, sizeof(double), cmp_double);
    printf("snapshot: %zu bytes, serialize %.2f ms, load %.2f ms\n", snap_bytes, ser[2], load[2]);
    rn_meta_batch_free(&b);
    rn_meta_image_free(img);
    rn_ctl_free(ctl);
    return 0;
}
