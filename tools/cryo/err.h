/* Error context: functions return 0 or -errno; the innermost failure
 * records a message naming the pid/object/reason, callers on the way up may
 * prefix context, and main() prints it once. */
#ifndef CRYO_ERR_H
#define CRYO_ERR_H

#include <errno.h>

/* Record "msg" (printf-style) with err (a negative errno) and return err.
 * The first message recorded wins until err_clear(); later calls only
 * return their err, so inner context is never overwritten by outer noise. */
int err_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like err_set, appending ": strerror(-err)". */
int err_sys(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the recorded message with "ctx: " and return err. */
int err_ctx(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *err_msg(void);
/* m without a leading "pid N"/"tid N" that prefix already names */
const char *err_skip_named(const char *prefix, const char *m);
void err_clear(void);

/* Diagnostics that are not errors (stderr, honouring --quiet/--verbose). */
extern int log_level;	/* 0 quiet, 1 normal, 2 verbose */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The final error line ("cryo: ..."), on stderr even with --quiet */
void report_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* --log-file: append every diagnostic at every level to path */
int log_open(const char *path);
int log_fd(void);		/* its fd, or -1 */

#endif
