/*
 * machine_limits.c — what this machine can do without any broker, the
 * ceilings bench/run compares Runnel with.
 *
 *   machine_limits DIR [SECONDS]      (SECONDS per measurement, default 2)
 *   machine_limits --warm MB          touch MB of fresh memory once, then free it
 *   machine_limits --sustained DIR SECONDS
 *                                     sequential 1 MB writes, fdatasync every 16 MB,
 *                                     for SECONDS (at most 16 GB): the disk's
 *                                     sustained rate once any burst allowance is spent
 *
 * Prints one JSON object with:
 *
 *   loopback_tcp_mb_s     one thread write()s 1 MB buffers to a 127.0.0.1 TCP
 *                         socket, another read()s them: the ceiling for bytes
 *                         a client can push into a broker (W4 produce)
 *   sendfile_mb_s         sendfile() from a 256 MB file already in the page
 *                         cache to a loopback socket, read by another thread:
 *                         the ceiling for a Fetch served from the log (W4 consume)
 *   write_mb_s            sequential 1 MB write()s to a new file in DIR, no sync
 *                         (page cache speed)
 *   write_fdatasync_mb_s  the same with fdatasync() after every 1 MB
 *   fdatasync_per_s,      4 KB appends to a new file in DIR, each followed by
 *   fdatasync_ms          fdatasync(): syncs a second and latency percentiles
 *                         (what one durable acknowledgement costs at least)
 *   overwrite_fdatasync_* the same, overwriting a 64 MB file written and synced
 *                         beforehand: no size change to commit, a pure data
 *                         flush (what preallocated segments would pay)
 *
 * --warm: in a VM whose memory the host backs lazily (Firecracker here, with
 * free page reporting), the first touch of a guest page costs a host fault:
 * ~400 MB/s against ~2,300 MB/s for memory the guest has used before. A broker
 * that fills never-used memory (page cache of a new log, a mock's heap) would
 * be measured against the hypervisor. bench/run warms as much memory as its
 * matrix uses first and prints the first-touch rate ({"first_touch_mb_s": ...}).
 *
 * MB is 10^6 bytes. Every measurement is bounded by SECONDS and by size;
 * files are removed at the end. Built by bench/run with plain cc.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MB 1000000.0
#define CHUNK (1 << 20)
#define SENDFILE_FILE_BYTES ((off_t)256 << 20)
#define WRITE_FILE_BYTES_MAX ((off_t)2 << 30)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "machine_limits: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A connected loopback TCP pair: *a is the sender, *b the receiver. */
static void tcp_pair(int *a, int *b) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(l, (struct sockaddr *)&sa, sl) || listen(l, 1) || getsockname(l, (struct sockaddr *)&sa, &sl))
        die("bind/listen");
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sl)) die("connect");
    *b = accept(l, NULL, NULL);
    if (*b < 0) die("accept");
    close(l);
}

typedef struct {
    int fd;
    long long bytes;
} sink_t;

static void *sink_main(void *arg) {
    sink_t *s = arg;
    char *buf = malloc(CHUNK);
    if (!buf) die("malloc");
    for (;;) {
        ssize_t n = read(s->fd, buf, CHUNK);
        if (n <= 0) break;
        s->bytes += n;
    }
    free(buf);
    return NULL;
}

static double loopback_tcp(double seconds) {
    int a, b;
    tcp_pair(&a, &b);
    sink_t s = {.fd = b};
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    char *buf = malloc(CHUNK);
    if (!buf) die("malloc");
    memset(buf, 'x', CHUNK);
    double t0 = now_s();
    while (now_s() - t0 < seconds)
        if (write(a, buf, CHUNK) <= 0) die("write");
    shutdown(a, SHUT_WR);
    pthread_join(t, NULL);
    double t1 = now_s();
    close(a);
    close(b);
    free(buf);
    return (double)s.bytes / (t1 - t0) / MB;
}

static double sendfile_rate(const char *dir, double seconds) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/ml_sendfile.tmp", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) die(path);
    unlink(path);
    char *buf = malloc(CHUNK);
    if (!buf) die("malloc");
    memset(buf, 'y', CHUNK);
    for (off_t o = 0; o < SENDFILE_FILE_BYTES; o += CHUNK)
        if (write(fd, buf, CHUNK) != CHUNK) die("write");
    /* Read it once: every page is in the page cache from here on. */
    for (off_t o = 0; o < SENDFILE_FILE_BYTES; o += CHUNK)
        if (pread(fd, buf, CHUNK, o) != CHUNK) die("pread");
    int a, b;
    tcp_pair(&a, &b);
    sink_t s = {.fd = b};
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    double t0 = now_s();
    off_t pos = 0;
    while (now_s() - t0 < seconds) {
        /* Fetch-sized pieces, as a broker would send them. */
        size_t want = CHUNK;
        if (pos >= SENDFILE_FILE_BYTES) pos = 0;
        ssize_t n = sendfile(a, fd, &pos, want);
        if (n <= 0) die("sendfile");
    }
    shutdown(a, SHUT_WR);
    pthread_join(t, NULL);
    double t1 = now_s();
    close(a);
    close(b);
    close(fd);
    free(buf);
    return (double)s.bytes / (t1 - t0) / MB;
}

static double seq_write(const char *dir, double seconds, int sync) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/ml_write.tmp", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die(path);
    char *buf = malloc(CHUNK);
    if (!buf) die("malloc");
    memset(buf, 'z', CHUNK);
    double t0 = now_s(), t1;
    off_t written = 0;
    while ((t1 = now_s()) - t0 < seconds && written < WRITE_FILE_BYTES_MAX) {
        if (write(fd, buf, CHUNK) != CHUNK) die("write");
        written += CHUNK;
        if (sync && fdatasync(fd)) die("fdatasync");
    }
    t1 = now_s();
    close(fd);
    unlink(path);
    free(buf);
    return (double)written / (t1 - t0) / MB;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* 4 KB writes, each followed by fdatasync. Appending grows the file, so each
 * sync also commits the new size (a journal commit on ext4); overwriting a
 * file written (and synced) beforehand is a pure data flush. */
static void fsync_latency(const char *dir, double seconds, int overwrite, double *per_s, double *p50, double *p99,
                          double *p999, double *max) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/ml_fsync.tmp", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die(path);
    char buf[4096];
    memset(buf, 'w', sizeof(buf));
    size_t cap = 1 << 20, n = 0;
    off_t pre = (off_t)64 << 20;
    if (overwrite) {
        for (off_t o = 0; o < pre; o += (off_t)sizeof(buf))
            if (pwrite(fd, buf, sizeof(buf), o) != (ssize_t)sizeof(buf)) die("pwrite");
        if (fsync(fd)) die("fsync");
    }
    double *lat = malloc(cap * sizeof(double));
    if (!lat) die("malloc");
    double t0 = now_s(), t1 = t0;
    off_t pos = 0;
    while (t1 - t0 < seconds && n < cap && (!overwrite || pos + (off_t)sizeof(buf) <= pre)) {
        double a = now_s();
        if (pwrite(fd, buf, sizeof(buf), pos) != (ssize_t)sizeof(buf)) die("pwrite");
        pos += (off_t)sizeof(buf);
        if (fdatasync(fd)) die("fdatasync");
        t1 = now_s();
        lat[n++] = (t1 - a) * 1e3;
    }
    close(fd);
    unlink(path);
    qsort(lat, n, sizeof(double), cmp_double);
    *per_s = (double)n / (t1 - t0);
    *p50 = lat[n / 2];
    *p99 = lat[(size_t)((double)n * 0.99)];
    *p999 = lat[(size_t)((double)n * 0.999)];
    *max = lat[n - 1];
    free(lat);
}

/* The whole run's rate and the rate over its second half (a virtual disk may
 * take a few GB at a burst rate, then throttle). */
static int sustained(const char *dir, double seconds) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/ml_sustained.tmp", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die(path);
    unlink(path);
    char *buf = malloc(CHUNK);
    if (!buf) die("malloc");
    memset(buf, 's', CHUNK);
    double t0 = now_s(), t = t0, half_t = 0;
    off_t written = 0, half_w = 0;
    while ((t = now_s()) - t0 < seconds && written < ((off_t)16 << 30)) {
        if (write(fd, buf, CHUNK) != CHUNK) die("write");
        written += CHUNK;
        if (written % ((off_t)16 << 20) == 0 && fdatasync(fd)) die("fdatasync");
        if (!half_t && t - t0 >= seconds / 2) {
            half_t = t;
            half_w = written;
        }
    }
    if (fdatasync(fd)) die("fdatasync");
    t = now_s();
    close(fd);
    free(buf);
    double second_half = half_t ? (double)(written - half_w) / (t - half_t) / MB : 0;
    printf("{\"sustained_write_mb_s\":%.1f,\"sustained_write_second_half_mb_s\":%.1f,\"sustained_written_mb\":%.0f}\n",
           (double)written / (t - t0) / MB, second_half, (double)written / MB);
    return 0;
}

static int warm(long mb) {
    size_t n = (size_t)mb << 20;
    double t0 = now_s();
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    for (size_t o = 0; o < n; o += 4096) p[o] = 1;
    double t1 = now_s();
    munmap(p, n);
    printf("{\"warmed_mb\":%ld,\"first_touch_mb_s\":%.1f}\n", mb, (double)n / MB / (t1 - t0));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--sustained")) {
        double secs = atof(argv[3]);
        if (!(secs > 0 && secs <= 120)) {
            fprintf(stderr, "machine_limits: --sustained DIR SECONDS (at most 120)\n");
            return 2;
        }
        return sustained(argv[2], secs);
    }
    if (argc == 3 && !strcmp(argv[1], "--warm")) {
        long mb = atol(argv[2]);
        if (mb <= 0 || mb > (1L << 20)) {
            fprintf(stderr, "machine_limits: --warm needs a size in MB\n");
            return 2;
        }
        return warm(mb);
    }
    if (argc < 2 || argc > 3 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: machine_limits DIR [SECONDS]\n");
        return 2;
    }
    const char *dir = argv[1];
    double seconds = argc == 3 ? atof(argv[2]) : 2;
    if (!(seconds > 0 && seconds <= 60)) {
        fprintf(stderr, "machine_limits: SECONDS must be in (0, 60]\n");
        return 2;
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) die(dir);
    double tcp = loopback_tcp(seconds);
    double sf = sendfile_rate(dir, seconds);
    double w = seq_write(dir, seconds, 0);
    double ws = seq_write(dir, seconds, 1);
    double per_s, p50, p99, p999, max;
    fsync_latency(dir, seconds, 0, &per_s, &p50, &p99, &p999, &max);
    double o_per_s, o50, o99, o999, omax;
    fsync_latency(dir, seconds, 1, &o_per_s, &o50, &o99, &o999, &omax);
    printf("{\"loopback_tcp_mb_s\":%.1f,\"sendfile_mb_s\":%.1f,\"write_mb_s\":%.1f,\"write_fdatasync_mb_s\":%.1f,"
           "\"fdatasync_per_s\":%.1f,\"fdatasync_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
           "\"overwrite_fdatasync_per_s\":%.1f,"
           "\"overwrite_fdatasync_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}\n",
           tcp, sf, w, ws, per_s, p50, p99, p999, max, o_per_s, o50, o99, o999, omax);
    return 0;
}
