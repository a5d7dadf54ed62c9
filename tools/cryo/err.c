#include <fcntl.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "progress.h"

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

/* "pid N: " (or "tid N ") at the start of msg when the prefix already names
 * that pid/tid: skip it, so chains never read "pid 5: pid 5: ..." */
const char *err_skip_named(const char *prefix, const char *m)
{
	for (const char *k = prefix; (k = strstr(k, "id ")); k += 3) {
		size_t n = 3;

		if (k == prefix || (k[-1] != 'p' && k[-1] != 't'))
			continue;
		while (k[n] >= '0' && k[n] <= '9')
			n++;
		if (n == 3 || (k[n] && k[n] != ':' && k[n] != ' ' && k[n] != ')'))
			continue;
		if (!strncmp(m, k - 1, n + 1) && (m[n + 1] == ':' || m[n + 1] == ' ')) {
			m += n + 1;
			m += *m == ':';
			return m + (*m == ' ');
		}
	}
	return m;
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
	/* already "pid 5 ..." or "pid 5: ...": nothing to add */
	size_t fl = strlen(prefix);

	if (!strncmp(msg, prefix, fl) && (msg[fl] == ':' || msg[fl] == ' '))
		return err;
	memcpy(old, msg, sizeof(old));
	/* truncation of an over-long message is acceptable */
	size_t pl = strlen(prefix);

	if (pl + 2 < sizeof(msg)) {
		memcpy(msg, prefix, pl);
		memcpy(msg + pl, ": ", 2);
		const char *o = err_skip_named(prefix, old);
		size_t room = sizeof(msg) - pl - 3, ol = strlen(o);

		if (ol > room)
			ol = room;
		memcpy(msg + pl + 2, o, ol);
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

/* --log-file: every diagnostic, at every level, with a timestamp */
static FILE *log_file;

int log_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 || !(log_file = fdopen(fd, "a"))) {
		if (fd >= 0)
			close(fd);
		return err_sys(-errno, "log file %s", path);
	}
	setvbuf(log_file, NULL, _IOLBF, 0);
	return 0;
}

int log_fd(void)
{
	return log_file ? fileno(log_file) : -1;
}

static void emit(int level, const char *prefix, const char *fmt, va_list ap)
{
	va_list copy;

	if (log_file) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		va_copy(copy, ap);
		fprintf(log_file, "%lld.%06ld [%d] %s", (long long)ts.tv_sec, ts.tv_nsec / 1000,
			(int)getpid(), prefix);
		vfprintf(log_file, fmt, copy);
		fputc('\n', log_file);
		va_end(copy);
	}
	if (log_level < level)
		return;
	progress_erase();	/* never write over a progress line */
	fputs("cryo: ", stderr);
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(1, "warning: ", fmt, ap);
	va_end(ap);
}

void info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(2, "", fmt, ap);
	va_end(ap);
}

/* The one error line main() prints, also kept in the log file */
void report_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(0, "", fmt, ap);
	va_end(ap);
}
