#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static char msg[1024];
static int have_msg;
int log_level = 1;

static void vset(const char *fmt, va_list ap, const char *suffix)
{
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (suffix && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", suffix);
	have_msg = 1;
}

int err_set(int err, const char *fmt, ...)
{
	va_list ap;

	if (!have_msg) {
		va_start(ap, fmt);
		vset(fmt, ap, NULL);
		va_end(ap);
	}
	return err;
}

int err_sys(int err, const char *fmt, ...)
{
	va_list ap;

	if (!have_msg) {
		va_start(ap, fmt);
		vset(fmt, ap, strerror(err < 0 ? -err : err));
		va_end(ap);
	}
	return err;
}

int err_ctx(int err, const char *fmt, ...)
{
	char prefix[256], old[sizeof(msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (!have_msg) {
		snprintf(msg, sizeof(msg), "%s: %s", prefix, strerror(err < 0 ? -err : err));
		have_msg = 1;
		return err;
	}
	memcpy(old, msg, sizeof(old));
	/* truncation of an over-long message is acceptable */
	size_t pl = strlen(prefix);

	if (pl + 2 < sizeof(msg)) {
		memcpy(msg, prefix, pl);
		memcpy(msg + pl, ": ", 2);
		size_t room = sizeof(msg) - pl - 3, ol = strlen(old);

		if (ol > room)
			ol = room;
		memcpy(msg + pl + 2, old, ol);
		msg[pl + 2 + ol] = 0;
	}
	return err;
}

const char *err_msg(void)
{
	return have_msg ? msg : "unknown error";
}

void err_clear(void)
{
	have_msg = 0;
	msg[0] = 0;
}

void warn(const char *fmt, ...)
{
	va_list ap;

	if (log_level < 1)
		return;
	fputs("cryo: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void info(const char *fmt, ...)
{
	va_list ap;

	if (log_level < 2)
		return;
	fputs("cryo: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
