/* t.h — the C unit-test harness: TEST(name) registers a test at load time;
 * CHECK* record a failure with file:line and go on; REQUIRE* end the test.
 * tests/unit/main.c runs them and ends with "N passed, N failed". */
#ifndef ENTRASYNC_T_H
#define ENTRASYNC_T_H

#include <stdio.h>
#include <string.h>

struct t_case {
	const char *name;
	const char *file;
	void (*fn)(void);
	struct t_case *next;
};

void t_register(struct t_case *tc);
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A test needing a service the runner did not start (env var unset) calls
 * t_skip and returns; skips are counted apart. */
void t_skip(const char *why);
/* Path of a fresh scratch directory for this test (under $TESTS_TMP or /tmp),
 * removed when the run passes. */
const char *t_tmpdir(void);
/* Writes text to NAME in a fresh scratch directory (t_tmpdir); the path,
 * valid until the run ends, or NULL when the file cannot be written. */
const char *t_write_file(const char *name, const char *text);
/* Sets env var name to value (NULL: unsets it) and returns what it held
 * (a new string, or NULL) for t_env_restore, which puts it back and frees
 * it. */
char *t_env_swap(const char *name, const char *value);
void t_env_restore(const char *name, char *saved);
/* Env var or NULL; t_env_required skips the test when unset. */
const char *t_env(const char *name);

#define TEST(name)                                                             \
	static void test_##name(void);                                             \
	static struct t_case tcase_##name = { #name, __FILE__, test_##name, NULL }; \
	__attribute__((constructor)) static void treg_##name(void) { t_register(&tcase_##name); } \
	static void test_##name(void)

#define CHECK(cond) do { if (!(cond)) t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
#define REQUIRE(cond) do { if (!(cond)) { t_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); return; } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b); } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b) != 0) t_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *_h = (hay), *_n = (needle); \
	if (!_h || !strstr(_h, _n)) t_fail(__FILE__, __LINE__, "\"%s\" contains \"%s\"", _h ? _h : "(null)", _n); } while (0)
/* A call returning 0 on success with a struct err: fail with its message. */
#define CHECK_OK(call, errp) do { if ((call) != 0) t_fail(__FILE__, __LINE__, "%s failed: %s", #call, (errp)->msg); } while (0)
#define REQUIRE_OK(call, errp) do { if ((call) != 0) { t_fail(__FILE__, __LINE__, "%s failed: %s", #call, (errp)->msg); return; } } while (0)

#endif
