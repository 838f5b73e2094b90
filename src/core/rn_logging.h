/*
 * rn_logging.h — one line per event: time, level, subsystem, message.
 *
 * Written to stderr with a single write() so lines from threads never mix.
 * Nothing on the hot path logs per message; per-connection problems log once.
 */
#ifndef RN_LOGGING_H
#define RN_LOGGING_H

typedef enum { RN_LOG_ERROR = 0, RN_LOG_WARN = 1, RN_LOG_INFO = 2, RN_LOG_DEBUG = 3 } rn_log_level_t;

extern int rn_log_level_current;

void rn_log_set_level(rn_log_level_t level);
/* "error" | "warn" | "info" | "debug" (also Kafka's "ERROR", "WARN", "TRACE"...); -1 if unknown */
int rn_log_level_parse(const char *s);
void rn_log_write(rn_log_level_t level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RN_LOG(level, subsys, ...)                                         \
    do {                                                                   \
        if ((int)(level) <= rn_log_level_current) rn_log_write(level, subsys, __VA_ARGS__); \
    } while (0)
#define RN_ERROR(subsys, ...) RN_LOG(RN_LOG_ERROR, subsys, __VA_ARGS__)
#define RN_WARN(subsys, ...) RN_LOG(RN_LOG_WARN, subsys, __VA_ARGS__)
#define RN_INFO(subsys, ...) RN_LOG(RN_LOG_INFO, subsys, __VA_ARGS__)
#define RN_DEBUG(subsys, ...) RN_LOG(RN_LOG_DEBUG, subsys, __VA_ARGS__)

#endif
