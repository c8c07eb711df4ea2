/* progress — the terminal progress line (see progress.h). */
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

#define PROGRESS_REDRAW_S 0.25

struct progress {
	char *what;
	long long total;
	double started;            /* monotonic */
	double drawn_at;
	long long last_done;
	int drawn;                 /* a line is on the screen */
};

/* "42s" under a minute, "m:ss" under an hour, else "h:mm:ss". */
static void clock_text(double s, char *out, size_t cap)
{
	long long t = s > 0 ? (long long)(s + 0.5) : 0;
	if (t < 60) snprintf(out, cap, "%llds", t);
	else if (t < 3600) snprintf(out, cap, "%lld:%02lld", t / 60, t % 60);
	else snprintf(out, cap, "%lld:%02lld:%02lld", t / 3600, (t / 60) % 60, t % 60);
}

void progress_format(char *out, size_t cap, const char *what, long long done, long long total, long long requests,
                     long long writes, double elapsed)
{
	char el[32], eta[32];
	clock_text(elapsed, el, sizeof el);
	int n = snprintf(out, cap, "%s: %lld/%lld tenant%s, %lld request%s, %lld write%s, %s", what, done, total,
	                 total == 1 ? "" : "s", requests, requests == 1 ? "" : "s", writes, writes == 1 ? "" : "s", el);
	if (n < 0 || (size_t)n >= cap || done <= 0 || done >= total) return;
	clock_text(elapsed / (double)done * (double)(total - done), eta, sizeof eta);
	snprintf(out + n, cap - (size_t)n, ", about %s left", eta);
}

struct progress *progress_new(const char *what, long long total)
{
	const char *env = getenv("ENTRASYNC_PROGRESS");
	if (env && strcmp(env, "0") == 0) return NULL;
	if (!(env && strcmp(env, "1") == 0) && !isatty(STDERR_FILENO)) return NULL;
	struct progress *p = xcalloc(1, sizeof *p);
	p->what = xstrdup(what);
	p->total = total;
	p->started = time_mono();
	p->drawn_at = -1;
	return p;
}

void progress_update(struct progress *p, long long done, long long requests, long long writes)
{
	if (!p) return;
	double now = time_mono();
	if (p->drawn_at >= 0 && now - p->drawn_at < PROGRESS_REDRAW_S && done == p->last_done) return;
	char line[256];
	progress_format(line, sizeof line, p->what, done, p->total, requests, writes, now - p->started);
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	p->drawn = 1;
	p->drawn_at = now;
	p->last_done = done;
}

void progress_finish(struct progress *p)
{
	if (!p) return;
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	free(p->what);
	free(p);
}
