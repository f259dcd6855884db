/* log.h — one-line log messages on stderr:
 * "2026-11-25T20:30:00Z klaxond[123]: warn: message". */
#ifndef KX_LOG_H
#define KX_LOG_H

enum kx_log_level { KX_LOG_DEBUG, KX_LOG_INFO, KX_LOG_WARN, KX_LOG_ERROR };

void kx_log_setup(const char *prog, enum kx_log_level min);
void kx_log(enum kx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
