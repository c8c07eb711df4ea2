/* bench main — runs every BENCH() (or those whose name contains argv[1]). */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct bench_case *g_head, **g_tail = &g_head;

void bench_register(struct bench_case *bc)
{
	*g_tail = bc;
	g_tail = &bc->next;
}

void bench_report(const char *name, double value, const char *unit, const char *note)
{
	printf("  %-44s %14.1f %s%s%s%s\n", name, value, unit, note ? "  (" : "", note ? note : "", note ? ")" : "");
	fflush(stdout);
}

const char *bench_env(const char *name)
{
	const char *v = getenv(name);
	return (v && *v) ? v : NULL;
}

int main(int argc, char **argv)
{
	for (struct bench_case *bc = g_head; bc; bc = bc->next) {
		if (argc > 1 && !strstr(bc->name, argv[1])) continue;
		printf("%s\n", bc->name);
		fflush(stdout);
		bc->fn();
	}
	return 0;
}
