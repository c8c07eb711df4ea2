/* test_store_busy — waiting for another connection's write lock: the
 * busy handler's steps (short first, capped, giving up at the 5 s busy
 * timeout) and a write that waits for another process's transaction and
 * then succeeds. */
#include "t.h"
#include "store/store.h"
#include "store/store_sql.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TENANT "11111111-2222-3333-4444-555555555555"

TEST(store_busy_steps)
{
	CHECK_EQ_INT(store_busy_step_us(0), 25);         /* short waits first */
	CHECK_EQ_INT(store_busy_step_us(99), 25);
	CHECK_EQ_INT(store_busy_step_us(100), 50);       /* then doubling */
	CHECK_EQ_INT(store_busy_step_us(101), 100);
	CHECK_EQ_INT(store_busy_step_us(107), 6400);
	CHECK_EQ_INT(store_busy_step_us(108), 10000);    /* capped */
	CHECK_EQ_INT(store_busy_step_us(300), 10000);
	/* the waits reach the 5 s timeout (by less than a step), then it gives up */
	long long total = 0;
	int tries = 0;
	for (long us; (us = store_busy_step_us(tries)) != 0 && tries < 100000; tries++) total += us;
	CHECK(tries < 100000);
	CHECK(total >= 5000000 && total < 5010000);
	CHECK_EQ_INT(store_busy_step_us(tries + 1), 0);
}

TEST(store_write_waits_for_another_process)
{
	struct err err;
	char path[600];
	snprintf(path, sizeof path, "%s/busy.db", t_tmpdir());
	struct store *st = NULL;
	REQUIRE_OK(store_open(path, &st, &err), &err);
	struct store_tenant t = { .id = TENANT, .name = "Contoso" };
	REQUIRE_OK(store_tenant_put(st, &t, &err), &err);
	int ready[2];
	REQUIRE(pipe(ready) == 0);
	fflush(NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		/* the other process: holds the write lock 200 ms, then commits */
		struct store *other = NULL;
		struct err e;
		int ok = store_open(path, &other, &e) == 0 && store_begin(other, &e) == 0 &&
		         store_user_put(other, TENANT, "from-child", "{}", &e) == 0;
		ssize_t w = write(ready[1], ok ? "1" : "0", 1);
		usleep(200000);
		ok = ok && w == 1 && store_commit(other, &e) == 0;
		_exit(ok ? 0 : 1);
	}
	close(ready[1]);
	char c = 0;
	CHECK(read(ready[0], &c, 1) == 1 && c == '1');
	close(ready[0]);
	double t0 = time_mono();
	CHECK_OK(store_user_put(st, TENANT, "from-parent", "{}", &err), &err);   /* waits, not SQLITE_BUSY */
	CHECK(time_mono() - t0 >= 0.1);
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	long long n = 0;
	CHECK_OK(store_user_count(st, TENANT, STORE_USERS_ALL, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	store_close(st);
}

/* A connection that does not checkpoint leaves its commits in the WAL;
 * another connection's passive checkpoint copies them all. */
TEST(store_checkpoint_by_another_connection)
{
	struct err err;
	char path[600], wal[620];
	snprintf(path, sizeof path, "%s/ckpt.db", t_tmpdir());
	snprintf(wal, sizeof wal, "%s-wal", path);
	struct store *writer = NULL, *other = NULL;
	REQUIRE_OK(store_open(path, &writer, &err), &err);
	REQUIRE_OK(store_open(path, &other, &err), &err);
	REQUIRE_OK(store_autocheckpoint(writer, false, &err), &err);
	struct store_tenant t = { .id = TENANT, .name = "Contoso" };
	REQUIRE_OK(store_tenant_put(writer, &t, &err), &err);
	char *json = xmalloc(5000);
	memset(json, 'x', 4990);
	memcpy(json, "{\"a\":\"", 6);
	memcpy(json + 4990 - 2, "\"}", 3);
	for (int i = 0; i < 1500; i++) {   /* 1,500 commits of a page and more each: past the 1,000-page mark */
		char id[32];
		snprintf(id, sizeof id, "u%d", i);
		REQUIRE_OK(store_user_put(writer, TENANT, id, json, &err), &err);
	}
	free(json);
	struct stat sb;
	CHECK(stat(wal, &sb) == 0 && sb.st_size > 2000L * 4096);   /* nothing was checkpointed (with checkpoints it stays near 1,000 pages) */
	int frames = -1;
	CHECK_OK(store_checkpoint_passive(other, &frames, &err), &err);
	CHECK_EQ_INT(frames, 0);                                     /* all copied */
	long long n = 0;
	store_close(writer);
	CHECK_OK(store_user_count(other, TENANT, STORE_USERS_ALL, &n, &err), &err);
	CHECK_EQ_INT(n, 1500);
	store_close(other);
}
