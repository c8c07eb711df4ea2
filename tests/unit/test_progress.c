/* test_progress — the terminal progress line draws a moved tenant count at
 * once, however soon after the last draw, and throttles the rest (forced
 * on with ENTRASYNC_PROGRESS=1, stderr sent to a file for the test). Its
 * text is tested in test_metrics.c (progress_line). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/progress.h"
#include "t.h"
#include "util/util.h"

/* Runs fn with stderr sent to a file; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
	char *path = xasprintf("%s/stderr", t_tmpdir());
	fflush(stderr);
	int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (saved < 0 || fd < 0) {
		free(path);
		return NULL;
	}
	dup2(fd, 2);
	close(fd);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char *text = NULL;
	struct err err;
	if (file_read(path, &text, NULL, &err) != 0) text = NULL;
	free(path);
	return text;
}

/* Three tenants ending within a few microseconds, with writes between. */
static void three_tenants(void)
{
	struct progress *p = progress_new("sync", 3);
	progress_update(p, 0, 1, 0);
	progress_update(p, 0, 2, 1);          /* too soon: not drawn */
	progress_update(p, 1, 3, 1);
	progress_update(p, 1, 4, 2);          /* too soon: not drawn */
	progress_update(p, 2, 5, 2);
	progress_update(p, 3, 6, 3);
	progress_finish(p);
}

TEST(progress_draws_each_tenant_done_at_once)
{
	const char *old = getenv("ENTRASYNC_PROGRESS");
	char *saved = old ? xstrdup(old) : NULL;
	setenv("ENTRASYNC_PROGRESS", "1", 1);
	char *out = capture_stderr(three_tenants);
	if (saved) setenv("ENTRASYNC_PROGRESS", saved, 1);
	else unsetenv("ENTRASYNC_PROGRESS");
	free(saved);
	REQUIRE(out != NULL);
	const char *d0 = strstr(out, "sync: 0/3 tenants, 1 request,");
	const char *d1 = strstr(out, "sync: 1/3 tenants, 3 requests, 1 write,");
	const char *d2 = strstr(out, "sync: 2/3 tenants, 5 requests, 2 writes,");
	const char *d3 = strstr(out, "sync: 3/3 tenants, 6 requests, 3 writes,");
	CHECK(d0 && d1 && d2 && d3);
	CHECK(d0 < d1 && d1 < d2 && d2 < d3);
	CHECK(strstr(out, "2 requests") == NULL);   /* throttled: same count, drawn 0.25 s ago at most */
	CHECK(strstr(out, "4 requests") == NULL);
	size_t len = strlen(out);
	CHECK(len >= 4 && strcmp(out + len - 4, "\r\033[K") == 0);   /* cleared at the end */
	free(out);
}
