/* test_srcmap — key → line location in Lua source. */
#include "t.h"
#include "util/srcmap.h"
#include "util/util.h"

static int line_of(const char *src, const char *a, const char *b, const char *c)
{
	const char *path[3] = { a, b, c };
	size_t depth = c ? 3 : b ? 2 : 1;
	return srcmap_key_line(src, strlen(src), path, depth);
}

TEST(srcmap_config_keys)
{
	const char *src =
		"-- config\n"                                    /* 1 */
		"database = \"state/x.db\"\n"                    /* 2 */
		"graph = { client_id = \"abc\",\n"               /* 3 */
		"  client_secret = env(\"X\"), -- a = comment\n" /* 4 */
		"  authority = [[https://x\n"                    /* 5 */
		"=]], endpoint = 'e' }\n"                        /* 6 */
		"tenants = {\n"                                  /* 7 */
		"  { id = \"a\", name = \"A\" },\n"              /* 8 */
		"  { id = \"b\",\n"                              /* 9 */
		"    polcy = \"p.lua\" },\n"                     /* 10 */
		"}\n"                                            /* 11 */
		"if database == 'x' then end\n";                 /* 12 */
	CHECK_EQ_INT(line_of(src, "database", NULL, NULL), 2);
	CHECK_EQ_INT(line_of(src, "graph", NULL, NULL), 3);
	CHECK_EQ_INT(line_of(src, "graph", "client_secret", NULL), 4);
	CHECK_EQ_INT(line_of(src, "graph", "endpoint", NULL), 6);
	CHECK_EQ_INT(line_of(src, "tenants", "#2", NULL), 9);
	CHECK_EQ_INT(line_of(src, "tenants", "#2", "polcy"), 10);
	CHECK_EQ_INT(line_of(src, "tenants", "#1", "name"), 8);
	CHECK_EQ_INT(line_of(src, "graph", "nosuch", NULL), 0);
	CHECK_EQ_INT(line_of(src, "a", NULL, NULL), 0);   /* only inside a comment */
}

TEST(srcmap_policy_keys)
{
	const char *src =
		"local p = require 'entrasync.policy'\n"          /* 1 */
		"local groups = { 'x' }\n"                        /* 2 */
		"return {\n"                                      /* 3 */
		"  groups = groups,\n"                            /* 4 */
		"  include = function(u) return u.x == 1 end,\n"  /* 5 */
		"  on_leve = p.mark('x'),\n"                      /* 6 */
		"}\n";
	CHECK_EQ_INT(line_of(src, "groups", NULL, NULL), 4);
	CHECK_EQ_INT(line_of(src, "on_leve", NULL, NULL), 6);
	const char *src2 =
		"local P = {}\n"
		"P.include = function() return true end\n"
		"P.contakt = function() end\n"
		"return P\n";
	CHECK_EQ_INT(line_of(src2, "contakt", NULL, NULL), 3);
}

/* One map asked for a list's items in order, backwards and by key: the
 * same lines as a fresh map for each look-up (the map resumes where its
 * last positional item was found). */
TEST(srcmap_items_in_order_on_one_map)
{
	struct buf src = { 0 };
	buf_adds(&src, "x = 1\ntenants = {\n");
	int want_line[41] = { 0 }, line = 3;
	for (int i = 1; i <= 40; i++) {
		want_line[i] = line;
		if (i % 7 == 0) {   /* a named field between the items, and one spread over lines */
			buf_printf(&src, "  named = { 1, 2 }, { id = \"t%d\",\n    policy = \"p,{}.lua\" },\n", i);
			line += 2;
		} else {
			buf_printf(&src, "  { id = \"t%d\", list = { \"a\", { \"b\" } } },\n", i);
			line++;
		}
	}
	buf_adds(&src, "}\n");
	struct srcmap *map = srcmap_new(src.data, src.len);
	char item[16];
	const char *path[3] = { "tenants", item, "policy" };
	for (int i = 1; i <= 40; i++) {
		snprintf(item, sizeof item, "#%d", i);
		CHECK_EQ_INT(srcmap_line(map, path, 2), want_line[i]);
		CHECK_EQ_INT(srcmap_line(map, path, 2), srcmap_key_line(src.data, src.len, path, 2));
		if (i % 7 == 0) CHECK_EQ_INT(srcmap_line(map, path, 3), want_line[i] + 1);
	}
	for (int i = 40; i >= 1; i -= 3) {
		snprintf(item, sizeof item, "#%d", i);
		CHECK_EQ_INT(srcmap_line(map, path, 2), want_line[i]);
	}
	snprintf(item, sizeof item, "#%d", 41);
	CHECK_EQ_INT(srcmap_line(map, path, 2), 0);   /* no such item */
	srcmap_free(map);
	buf_free(&src);
}
