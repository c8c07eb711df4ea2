/* test_commands — the face's shared parts: the command table, opts_parse
 * (values, =values, flags, "--", errors with suggestions) and the global
 * options taken out of argv before or after the command. */
#include "t.h"

#include "face/commands.h"

/* Splits the writable string line at spaces into argv (room for 16). */
static int split(char *line, char **argv)
{
	int n = 0;
	for (char *tok = strtok(line, " "); tok && n < 16; tok = strtok(NULL, " ")) argv[n++] = tok;
	argv[n] = NULL;
	return n;
}

TEST(commands_table_is_coherent)
{
	int n = 0;
	for (const struct command *c = commands; c->name; c++, n++) {
		char want[64];
		snprintf(want, sizeof want, "usage: entrasync %s", c->name);
		if (!str_starts(c->usage, want)) t_fail(__FILE__, __LINE__, "%s: usage does not start with '%s'", c->name, want);
		CHECK(c->summary && c->summary[0] && c->run);
		CHECK(command_find(c->name) == c);
	}
	CHECK(n >= 4);
	REQUIRE(command_find("lua"));
	CHECK(command_find("lua")->hidden);
	CHECK(!command_find("check")->hidden);
	CHECK(command_find("chec") == NULL);
}

TEST(commands_opts_parse_values_flags_positionals)
{
	const char *tenant = NULL, *limit = NULL;
	int dry = 0, npos = -1;
	const struct opt opts[] = {
		{ "--tenant", "ID", &tenant, NULL },
		{ "--dry-run", NULL, NULL, &dry },
		{ "--limit", "N", &limit, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	char argv_s[] = "--tenant a.example.com pos1 --dry-run --limit=5 - -- --x", *argv[17];
	int argv_n = split(argv_s, argv);
	char *pos[8];
	struct err err;
	REQUIRE_OK(opts_parse(argv_n, argv, opts, pos, &npos, &err), &err);
	CHECK_STR(tenant, "a.example.com");
	CHECK_STR(limit, "5");
	CHECK_EQ_INT(dry, 1);
	REQUIRE(npos == 3);
	CHECK_STR(pos[0], "pos1");
	CHECK_STR(pos[1], "-");                        /* a lone dash is an argument */
	CHECK_STR(pos[2], "--x");                      /* after "--" */
	/* positionals compacted in place into argv */
	char argv2_s[] = "x --dry-run y", *argv2[17];
	int argv2_n = split(argv2_s, argv2);
	REQUIRE_OK(opts_parse(argv2_n, argv2, opts, argv2, &npos, &err), &err);
	CHECK(npos == 2 && strcmp(argv2[0], "x") == 0 && strcmp(argv2[1], "y") == 0);
}

TEST(commands_opts_parse_errors)
{
	const char *tenant = NULL;
	int dry = 0, npos;
	const struct opt opts[] = {
		{ "--tenant", "ID", &tenant, NULL },
		{ "--dry-run", NULL, NULL, &dry },
		{ NULL, NULL, NULL, NULL },
	};
	char *pos[4];
	struct err err;
	char a1_s[] = "--dry-run=yes", *a1[17];
	int a1_n = split(a1_s, a1);
	CHECK(opts_parse(a1_n, a1, opts, pos, &npos, &err) != 0);
	CHECK_STR(err.msg, "option '--dry-run' takes no value");
	char a2_s[] = "--tenant", *a2[17];
	int a2_n = split(a2_s, a2);
	CHECK(opts_parse(a2_n, a2, opts, pos, &npos, &err) != 0);
	CHECK_STR(err.msg, "option '--tenant' needs a value (--tenant ID)");
	char a3_s[] = "--tenant=", *a3[17];
	int a3_n = split(a3_s, a3);
	CHECK(opts_parse(a3_n, a3, opts, pos, &npos, &err) != 0);
	CHECK_CONTAINS(err.msg, "option '--tenant' needs a value");
	char a4_s[] = "--tenant --dry-run", *a4[17];
	int a4_n = split(a4_s, a4);
	CHECK(opts_parse(a4_n, a4, opts, pos, &npos, &err) != 0);
	CHECK_CONTAINS(err.msg, "option '--tenant' needs a value");
	char a5_s[] = "--tennat x", *a5[17];
	int a5_n = split(a5_s, a5);
	CHECK(opts_parse(a5_n, a5, opts, pos, &npos, &err) != 0);
	CHECK_STR(err.msg, "unknown option '--tennat' (did you mean '--tenant'?)");
	char a6_s[] = "--confg=x", *a6[17];
	int a6_n = split(a6_s, a6);                  /* global options are suggested too */
	CHECK(opts_parse(a6_n, a6, opts, pos, &npos, &err) != 0);
	CHECK_STR(err.msg, "unknown option '--confg' (did you mean '--config'?)");
	char a7_s[] = "--zzzzzz", *a7[17];
	int a7_n = split(a7_s, a7);
	CHECK(opts_parse(a7_n, a7, opts, pos, &npos, &err) != 0);
	CHECK_STR(err.msg, "unknown option '--zzzzzz'");
	char a8_s[] = "--tenant-id x", *a8[17];
	int a8_n = split(a8_s, a8);            /* a longer name is not a match */
	CHECK(opts_parse(a8_n, a8, opts, pos, &npos, &err) != 0);
	CHECK_STR(err.msg, "unknown option '--tenant-id' (did you mean '--tenant'?)");
	char a9_s[] = "--tenant a --dry-run --tenant=b", *a9[17];
	int a9_n = split(a9_s, a9);                /* a second value: refused, the first not dropped silently */
	CHECK(opts_parse(a9_n, a9, opts, pos, &npos, &err) != 0);
	CHECK_STR(err.msg, "option '--tenant' is given twice ('a' and 'b'): it takes one ID");
	char a10_s[] = "--dry-run --dry-run --tenant a", *a10[17];
	int a10_n = split(a10_s, a10);             /* a flag twice is the flag */
	REQUIRE_OK(opts_parse(a10_n, a10, opts, pos, &npos, &err), &err);
	CHECK(dry == 1 && strcmp(tenant, "a") == 0);
}

TEST(commands_global_option_given_twice)
{
	struct global_opts g = { 0 };
	char *rest[8];
	int nrest;
	struct err err;
	char a_s[] = "--config a.lua status --config=b.lua", *a[17];
	int a_n = split(a_s, a);
	CHECK(global_opts_parse(a_n, a, &g, rest, &nrest, &err) != 0);
	CHECK_STR(err.msg, "option '--config' is given twice ('a.lua' and 'b.lua'): it takes one FILE");
}

TEST(commands_opts_take_list)
{
	struct opt_list l = { 0 };
	struct err err;
	char a1_s[] = "--tenant a,b --json --tenant=c --tenant ,d, -- --tenant e", *a1[17];
	int a1_n = split(a1_s, a1);
	int left = opts_take_list(a1_n, a1, "--tenant", "ID", &l, &err);
	REQUIRE(left == 4);
	CHECK(strcmp(a1[0], "--json") == 0 && strcmp(a1[1], "--") == 0 && strcmp(a1[2], "--tenant") == 0);
	REQUIRE(l.n == 4);
	CHECK(strcmp(l.v[0], "a") == 0 && strcmp(l.v[1], "b") == 0 && strcmp(l.v[2], "c") == 0 &&
	      strcmp(l.v[3], "d") == 0);
	opt_list_free(&l);
	char a2_s[] = "--tenant", *a2[17];
	int a2_n = split(a2_s, a2);
	CHECK(opts_take_list(a2_n, a2, "--tenant", "ID", &l, &err) < 0);
	CHECK_STR(err.msg, "option '--tenant' needs a value (--tenant ID)");
	char a3_s[] = "--tenant=,", *a3[17];
	int a3_n = split(a3_s, a3);
	CHECK(opts_take_list(a3_n, a3, "--tenant", "ID", &l, &err) < 0);
	CHECK_STR(err.msg, "option '--tenant' needs a value (--tenant ID)");
	opt_list_free(&l);
	char a4_s[] = "--tenant-id x", *a4[17];
	int a4_n = split(a4_s, a4);                /* another option, left for opts_parse */
	CHECK(opts_take_list(a4_n, a4, "--tenant", "ID", &l, &err) == 2 && l.n == 0);
}

TEST(commands_global_options_anywhere)
{
	struct global_opts g = { 0 };
	char *rest[16];
	int n = -1;
	struct err err;
	char argv_s[] = "--log-level debug check --config=x.lua --tenant y --lua-dir tests -- --config z", *argv[17];
	int argv_n = split(argv_s, argv);
	REQUIRE_OK(global_opts_parse(argv_n, argv, &g, rest, &n, &err), &err);
	CHECK_STR(g.log_level, "debug");
	CHECK_STR(g.config_path, "x.lua");
	CHECK_STR(g.lua_dir, "tests");
	CHECK(g.log_format == NULL);
	REQUIRE(n == 6);
	CHECK_STR(rest[0], "check");
	CHECK_STR(rest[1], "--tenant");
	CHECK_STR(rest[2], "y");
	CHECK_STR(rest[3], "--");                       /* the command sees where options end */
	CHECK_STR(rest[4], "--config");
	CHECK_STR(rest[5], "z");

	char h_s[] = "-h check", *h[17];
	int h_n = split(h_s, h);
	REQUIRE_OK(global_opts_parse(h_n, h, &g, rest, &n, &err), &err);
	CHECK(n == 2 && strcmp(rest[0], "help") == 0 && strcmp(rest[1], "check") == 0);
	char v_s[] = "--log-format json --version", *v[17];
	int v_n = split(v_s, v);
	REQUIRE_OK(global_opts_parse(v_n, v, &g, rest, &n, &err), &err);
	CHECK(n == 1 && strcmp(rest[0], "version") == 0);
	CHECK_STR(g.log_format, "json");
	char ch_s[] = "check --help --version", *ch[17];
	int ch_n = split(ch_s, ch);   /* after the command: the command's */
	REQUIRE_OK(global_opts_parse(ch_n, ch, &g, rest, &n, &err), &err);
	CHECK(n == 3 && strcmp(rest[1], "--help") == 0 && strcmp(rest[2], "--version") == 0);
	CHECK(command_wants_help(n - 1, rest + 1));
	char dd_s[] = "x -- -h", *dd[17];
	int dd_n = split(dd_s, dd);
	CHECK(!command_wants_help(dd_n, dd));

	struct global_opts g2 = { 0 };
	char bad1_s[] = "--log-level loud check", *bad1[17];
	int bad1_n = split(bad1_s, bad1);
	CHECK(global_opts_parse(bad1_n, bad1, &g2, rest, &n, &err) != 0);
	CHECK_STR(err.msg, "invalid value 'loud' for --log-level (expected error, warn, info, debug or trace)");
	g2 = (struct global_opts){ 0 };
	char bad2_s[] = "--log-format=jsn", *bad2[17];
	int bad2_n = split(bad2_s, bad2);
	CHECK(global_opts_parse(bad2_n, bad2, &g2, rest, &n, &err) != 0);
	CHECK_STR(err.msg, "invalid value 'jsn' for --log-format (expected human or json) (did you mean 'json'?)");
	g2 = (struct global_opts){ 0 };
	char bad3_s[] = "--verison", *bad3[17];
	int bad3_n = split(bad3_s, bad3);
	CHECK(global_opts_parse(bad3_n, bad3, &g2, rest, &n, &err) != 0);
	CHECK_STR(err.msg, "unknown option '--verison' (did you mean '--version'?)");
	g2 = (struct global_opts){ 0 };
	char bad4_s[] = "check --config", *bad4[17];
	int bad4_n = split(bad4_s, bad4);
	CHECK(global_opts_parse(bad4_n, bad4, &g2, rest, &n, &err) != 0);
	CHECK_STR(err.msg, "option '--config' needs a value (--config FILE)");
}
