/* test_snapshot — the daemon's snapshot of the config and policy texts:
 * a sealed memfd round trip (the fd refuses writes once sealed), unsealed
 * or malformed input refused, and loading a policy from text under its
 * original name (script_policy_load_text: errors keep file:line). The
 * process-wide use through ENTRASYNC_SNAPSHOT_FD is exercised by
 * tests/integration/test_daemon_reload.sh. */
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "script/script.h"
#include "util/snapshot.h"

TEST(snapshot_sealed_round_trip)
{
	struct snapshot s = { 0 }, back = { 0 };
	struct err err;
	int fd = -1;
	const char conf[] = "policy = \"p.lua\"\n-- 1 2\n";
	snapshot_add(&s, "conf/entrasync.lua", conf, strlen(conf));
	snapshot_add(&s, "conf/p.lua", "old", 3);
	snapshot_add(&s, "conf/p.lua", "return {}\n", 10);       /* replaces */
	snapshot_add(&s, "conf/empty.lua", "", 0);
	CHECK_EQ_INT(s.n, 3);
	REQUIRE_OK(snapshot_seal(&s, &fd, &err), &err);
	CHECK(write(fd, "x", 1) < 0 && errno == EPERM);            /* sealed */
	CHECK(ftruncate(fd, 0) != 0);
	REQUIRE_OK(snapshot_read_fd(fd, &back, &err), &err);
	CHECK_EQ_INT(back.n, 3);
	const struct snapshot_file *f = snapshot_get(&back, "conf/entrasync.lua");
	REQUIRE(f != NULL);
	CHECK_EQ_INT(f->len, strlen(conf));
	CHECK_STR(f->text, conf);
	f = snapshot_get(&back, "conf/p.lua");
	REQUIRE(f != NULL);
	CHECK_STR(f->text, "return {}\n");
	f = snapshot_get(&back, "conf/empty.lua");
	REQUIRE(f != NULL);
	CHECK_EQ_INT(f->len, 0);
	CHECK(snapshot_get(&back, "conf/other.lua") == NULL);
	close(fd);
	snapshot_free(&s);
	snapshot_free(&back);
}

/* A sealed memfd holding text (not written by snapshot_seal). */
static int sealed_fd(const char *text)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) return -1;
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

TEST(snapshot_refuses_unsealed_and_malformed)
{
	struct snapshot s = { 0 };
	struct err err;
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "entrasync-snapshot 1\nend\n", 25) == 25);
	CHECK(snapshot_read_fd(fd, &s, &err) != 0);
	CHECK_CONTAINS(err.msg, "not sealed");
	close(fd);

	static const char *const bad[] = {
		"something else\nend\n",
		"entrasync-snapshot 1\n3 4\nabc\n",                     /* runs past the end */
		"entrasync-snapshot 1\n3 2\nabcxy",                     /* no separator, no end */
		"entrasync-snapshot 1\nx 2\nabcxy\nend\n",              /* bad header */
		"entrasync-snapshot 1\n0 2\nxy\nend\n",                 /* empty path */
		"entrasync-snapshot 1\n1 1\naz\nend\nmore",             /* trailing bytes */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		fd = sealed_fd(bad[i]);
		REQUIRE(fd >= 0);
		if (snapshot_read_fd(fd, &s, &err) == 0) t_fail(__FILE__, __LINE__, "bad snapshot %zu accepted", i);
		CHECK_EQ_INT(s.n, 0);
		close(fd);
	}
	fd = sealed_fd("entrasync-snapshot 1\n1 1\naz\nend\n");
	REQUIRE(fd >= 0);
	REQUIRE_OK(snapshot_read_fd(fd, &s, &err), &err);
	CHECK(s.n == 1 && snapshot_get(&s, "a") && strcmp(snapshot_get(&s, "a")->text, "z") == 0);
	snapshot_free(&s);
	close(fd);
}

TEST(script_policy_load_text_keeps_the_file_name)
{
	struct script *s = NULL;
	struct err err;
	REQUIRE_OK(script_new(NULL, &s, &err), &err);
	const char good[] = "return { include = function(u, t) return true end, name = \"from memory\" }";
	REQUIRE_OK(script_policy_load_text(s, "conf/pol.lua", good, strlen(good), &err), &err);
	const struct policy_info *info = script_policy_info(s);
	REQUIRE(info != NULL);
	CHECK_STR(info->path, "conf/pol.lua");
	CHECK_STR(info->name, "from memory");
	CHECK(info->functions & POLICY_FN_INCLUDE);

	const char syntax[] = "return {\n  include = function(u, t)\n  return true\n}\n";
	CHECK(script_policy_load_text(s, "conf/pol.lua", syntax, strlen(syntax), &err) != 0);
	CHECK_CONTAINS(err.msg, "conf/pol.lua:");
	CHECK(script_policy_info(s) == NULL);                       /* a failed load leaves none */

	const char typo[] = "return {\n  include = function() return true end,\n  on_leve = \"keep\",\n}\n";
	CHECK(script_policy_load_text(s, "conf/pol.lua", typo, strlen(typo), &err) != 0);
	CHECK_CONTAINS(err.msg, "conf/pol.lua:3: unknown key 'on_leve'");
	/* the text's length is what counts, not a NUL */
	CHECK_OK(script_policy_load_text(s, "conf/pol.lua", good, strlen(good), &err), &err);
	script_free(s);
}
