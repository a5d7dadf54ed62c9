/* Progress line for dump and restore: see progress.h for when it shows.
 *
 * progress_add() sits in page copy loops, so its common path is one
 * clock read and a compare; drawing happens at most every 100 ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "progress.h"

#define REDRAW_NS	100000000ull	/* 10 redraws a second at most */
#define DEFAULT_DELAY_MS 1000		/* quick operations show nothing */

static struct {
	int active;		/* between start and end, and allowed to draw */
	int drawn;		/* a line is on the terminal now */
	int disabled;
	const char *what;
	uint64_t total, done;
	uint64_t t0, next_draw;	/* CLOCK_MONOTONIC ns */
	int width;		/* of the last line drawn, to blank it */
} pg;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The delay is overridable so that tests can see the line on small
 * workloads without a multi-second dump. */
static uint64_t delay_ns(void)
{
	const char *s = getenv("CRYO_PROGRESS_DELAY_MS");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return DEFAULT_DELAY_MS * 1000000ull;
	v = strtoul(s, &end, 10);
	if (*end || v > 3600000)
		return DEFAULT_DELAY_MS * 1000000ull;
	return (uint64_t)v * 1000000ull;
}

static void human(char *buf, size_t len, double v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
}

void progress_start(uint64_t total_bytes, const char *what)
{
	int disabled = pg.disabled;

	progress_erase();	/* a line left by an operation never ended */
	memset(&pg, 0, sizeof(pg));
	pg.disabled = disabled;
	pg.active = !pg.disabled && log_level >= 1 && isatty(STDERR_FILENO);
	if (!pg.active)
		return;
	pg.what = what ? what : "working";
	pg.total = total_bytes;
	pg.t0 = now_ns();
	pg.next_draw = pg.t0 + delay_ns();
}

static void draw(uint64_t t)
{
	char done[32], total[32], rate[32], eta[32] = "", line[160];
	double secs = (double)(t - pg.t0) / 1e9;
	double bps = secs > 0 ? (double)pg.done / secs : 0;
	int n;

	human(done, sizeof(done), (double)pg.done);
	human(rate, sizeof(rate), bps);
	if (pg.total && pg.done <= pg.total) {
		human(total, sizeof(total), (double)pg.total);
		if (bps > 0)
			snprintf(eta, sizeof(eta), ", ETA %.0fs",
				 (double)(pg.total - pg.done) / bps);
		n = snprintf(line, sizeof(line), "cryo: %s: %s of %s (%.0f%%), %s/s%s",
			     pg.what, done, total, 100.0 * (double)pg.done / (double)pg.total,
			     rate, eta);
	} else {
		n = snprintf(line, sizeof(line), "cryo: %s: %s, %s/s", pg.what, done, rate);
	}
	if (n < 0)
		return;
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	/* pad over a longer previous line instead of relying on "\e[K",
	 * which is not on every terminal */
	fprintf(stderr, "\r%s%*s", line, pg.width > n ? pg.width - n : 0, "");
	fflush(stderr);
	pg.width = n;
	pg.drawn = 1;
}

void progress_add(uint64_t bytes)
{
	uint64_t t;

	if (!pg.active)
		return;
	pg.done += bytes;
	t = now_ns();
	if (t < pg.next_draw)
		return;
	pg.next_draw = t + REDRAW_NS;
	draw(t);
}

void progress_erase(void)
{
	if (!pg.drawn)
		return;
	fprintf(stderr, "\r%*s\r", pg.width, "");
	fflush(stderr);
	pg.drawn = 0;
	pg.width = 0;
}

void progress_end(void)
{
	progress_erase();
	pg.active = 0;
}

void progress_disable(void)
{
	progress_end();
	pg.disabled = 1;
}
