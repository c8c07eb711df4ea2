/* unit-tests main — runs every TEST() linked in (or those whose name
 * contains argv[1]), one line per test, then "N passed, N failed". */
#include "t.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct t_case *g_head, **g_tail = &g_head;
static int g_failed_now, g_skipped_now;
static char g_tmp[512];

void t_register(struct t_case *tc)
{
	*g_tail = tc;
	g_tail = &tc->next;
}

void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stdout, "    %s:%d: ", file, line);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	g_failed_now++;
}

void t_skip(const char *why)
{
	fprintf(stdout, "    skipped: %s\n", why);
	g_skipped_now = 1;
}

const char *t_env(const char *name)
{
	const char *v = getenv(name);
	return (v && *v) ? v : NULL;
}

static int g_tmp_seq;
const char *t_tmpdir(void)
{
	const char *base = t_env("TESTS_TMP");
	snprintf(g_tmp, sizeof g_tmp, "%s/unit-%d-%d", base ? base : "/tmp", (int)getpid(), ++g_tmp_seq);
	mkdir(g_tmp, 0700);
	return g_tmp;
}

/* The paths t_write_file handed out, freed when the run ends. */
static char **g_paths;
static size_t g_npaths;

const char *t_write_file(const char *name, const char *text)
{
	size_t n = strlen(t_tmpdir()) + strlen(name) + 2;
	char *path = malloc(n);
	char **grown = realloc(g_paths, (g_npaths + 1) * sizeof *g_paths);
	if (!path || !grown) {
		free(path);
		return NULL;
	}
	g_paths = grown;
	snprintf(path, n, "%s/%s", g_tmp, name);
	g_paths[g_npaths++] = path;
	FILE *f = fopen(path, "w");
	if (!f) return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

char *t_env_swap(const char *name, const char *value)
{
	const char *old = getenv(name);
	char *saved = old ? strdup(old) : NULL;
	if (value) setenv(name, value, 1);
	else unsetenv(name);
	return saved;
}

void t_env_restore(const char *name, char *saved)
{
	if (saved) setenv(name, saved, 1);
	else unsetenv(name);
	free(saved);
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0;
	for (struct t_case *tc = g_head; tc; tc = tc->next) {
		if (argc > 1 && !strstr(tc->name, argv[1])) continue;
		g_failed_now = g_skipped_now = 0;
		fflush(stdout);
		tc->fn();
		if (g_failed_now) { failed++; printf("FAIL - %s\n", tc->name); }
		else if (g_skipped_now) { skipped++; printf("skip - %s\n", tc->name); }
		else { passed++; printf("ok - %s\n", tc->name); }
		fflush(stdout);
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	for (size_t i = 0; i < g_npaths; i++) free(g_paths[i]);
	free(g_paths);
	return failed ? 1 : 0;
}
