#include "lib/log.h"
#include "lib/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static const char *prog_name = "klaxon";
static enum kx_log_level min_level = KX_LOG_INFO;

void kx_log_setup(const char *prog, enum kx_log_level min)
{
	prog_name = prog;
	min_level = min;
}

void kx_log(enum kx_log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	char ts[KX_TIME_STRLEN], msg[1024];
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One fprintf per line so concurrent threads do not interleave. */
	fprintf(stderr, "%s %s[%d]: %s: %s\n", kx_time_format(kx_now_ms(), ts), prog_name,
		(int)getpid(), names[level], msg);
}
