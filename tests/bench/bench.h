/* bench.h — benchmark registration for `make bench`: BENCH(name) adds a
 * benchmark; each prints its own measured figures with bench_report. */
#ifndef ENTRASYNC_BENCH_H
#define ENTRASYNC_BENCH_H

struct bench_case {
	const char *name;
	void (*fn)(void);
	struct bench_case *next;
};
void bench_register(struct bench_case *bc);
/* Prints "name: value unit (note)" and keeps it for the summary. */
void bench_report(const char *name, double value, const char *unit, const char *note);
/* Env var or NULL (the runner exports the fakes' addresses). */
const char *bench_env(const char *name);

#define BENCH(name)                                                               \
	static void bench_##name(void);                                               \
	static struct bench_case bcase_##name = { #name, bench_##name, 0 };           \
	__attribute__((constructor)) static void breg_##name(void) { bench_register(&bcase_##name); } \
	static void bench_##name(void)

#endif
