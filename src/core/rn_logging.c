/* rn_logging.c — see rn_logging.h. */
#include "rn_logging.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int rn_log_level_current = RN_LOG_INFO;

void rn_log_set_level(rn_log_level_t level) { rn_log_level_current = (int)level; }

int rn_log_level_parse(const char *s) {
    if (!strcasecmp(s, "error") || !strcasecmp(s, "fatal")) return RN_LOG_ERROR;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning")) return RN_LOG_WARN;
    if (!strcasecmp(s, "info")) return RN_LOG_INFO;
    if (!strcasecmp(s, "debug") || !strcasecmp(s, "trace")) return RN_LOG_DEBUG;
    return -1;
}

void rn_log_write(rn_log_level_t level, const char *subsys, const char *fmt, ...) {
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s [%s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     names[level], subsys);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}
