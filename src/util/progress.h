/* progress — a one-line progress display for long runs on a terminal:
 * "sync: 3/12 tenants, 1234 requests, 56 writes, 0:42, about 2:48 left".
 * Shown on stderr only when stderr is a terminal (quiet in cron, systemd,
 * pipes and files); ENTRASYNC_PROGRESS=0 turns it off, =1 forces it on.
 * Redrawn at most 4 times a second, cleared by progress_finish so the
 * report that follows starts on a clean line. Log lines written while it
 * shows simply overwrite it; the next update redraws it.
 *
 * Use: p = progress_new("sync", ntenants); after each tenant (and as
 * requests go) progress_update(p, done, requests, writes);
 * progress_finish(p). A NULL p (display off) is accepted everywhere. */
#ifndef ENTRASYNC_PROGRESS_H
#define ENTRASYNC_PROGRESS_H

#include <stddef.h>

struct progress;

/* NULL when the display is off (not a terminal, or ENTRASYNC_PROGRESS=0). */
struct progress *progress_new(const char *what, long long total);
/* Records the numbers; redraws when the last draw is 0.25 s old, or at
 * once when the count of done items moved (a tenant ended: rare, and the
 * line a user watches). */
void progress_update(struct progress *p, long long done, long long requests, long long writes);
/* Clears the line and frees p. */
void progress_finish(struct progress *p);

/* The line for these numbers after elapsed seconds (no newline): the ETA
 * is elapsed / done * (total - done), shown once something is done. */
void progress_format(char *out, size_t cap, const char *what, long long done, long long total, long long requests,
                     long long writes, double elapsed);

#endif
