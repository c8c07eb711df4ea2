/* test_graph_members — reading transitiveMembers pages from their text:
 * users kept (typed or untyped), other objects skipped, escapes decoded,
 * the nextLink, ids gathered over pages, and malformed text refused
 * without changing what was gathered. */
#include "t.h"
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

static const char page1[] =
	"{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#directoryObjects\",\n"
	" \"value\": [\n"
	"  {\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"u-1\"},\n"
	"  {\"id\":\"u-2\",\"@odata.type\":\"#microsoft.graph.user\",\"displayName\":{\"a\":[1,2.5e3,true,null]}},\n"
	"  {\"@odata.type\":\"#microsoft.graph.device\",\"id\":\"d-1\"},\n"
	"  {\"@odata.type\":\"#microsoft.graph.group\",\"id\":\"g-1\"},\n"
	"  {\"id\":\"u\\u002d3\"},\n"
	"  {\"@odata.type\":\"#microsoft.graph.\\u0075ser\",\"id\":\"u-4\"},\n"
	"  {\"id\":5}, {\"@odata.type\":\"#microsoft.graph.user\"}, 7, \"x\", [],\n"
	"  {\"id\":\"u-6\",\"id\":\"second\"}\n"
	" ],\n"
	" \"@odata.nextLink\":\"https://graph.microsoft.com/v1.0/groups/g/transitiveMembers?$skiptoken=a\\/b\"}";

static const char page2[] = "{\"value\":[{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"u-7\"}]}";

TEST(graph_members_page_users_and_next_link)
{
	struct graph_members m = { 0 };
	struct err err;
	char *next = NULL;
	REQUIRE_OK(graph_members_page(page1, strlen(page1), &m, &next, &err), &err);
	CHECK_EQ_INT(m.n, 5);
	CHECK_STR(next, "https://graph.microsoft.com/v1.0/groups/g/transitiveMembers?$skiptoken=a/b");
	free(next);
	REQUIRE_OK(graph_members_page(page2, strlen(page2), &m, &next, &err), &err);
	CHECK(next == NULL);
	CHECK_EQ_INT(m.n, 6);
	const char **ids = graph_members_list(&m);
	const char *want[] = { "u-1", "u-2", "u-3", "u-4", "u-6", "u-7" };
	for (size_t i = 0; i < 6; i++) CHECK_STR(ids[i], want[i]);
	CHECK(ids[6] == NULL);
	free(ids);
	graph_members_free(&m);
	CHECK_EQ_INT(m.n, 0);
}

TEST(graph_members_page_refuses_malformed_text)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"value\":[{\"id\":\"u-9\"}]",                 /* unclosed */
		"{\"value\":[{\"id\":\"u-9\"},]}",               /* trailing comma */
		"{\"value\":[{\"id\":\"u-9\" \"x\":1}]}",         /* missing comma */
		"{\"value\":[{\"id\":\"u-9\",\"n\":01}]}",        /* leading zero */
		"{\"value\":[{\"id\":\"u-9\",\"n\":tru}]}",       /* bad literal */
		"{\"value\":[{\"id\":\"u-\\q\"}]}",               /* bad escape */
		"{\"value\":[{\"id\":\"u-\\u12\"}]}",             /* short \\u */
		"{\"value\":[{\"id\":\"u-\x01\"}]}",              /* control character */
		"{\"value\":[{\"id\":\"u-9\"}]} x",              /* trailing text */
		"{\"value\":{\"id\":\"u-9\"}}",                  /* value not an array */
		"{\"@odata.nextLink\":\"x\"}",                   /* no value */
	};
	struct graph_members m = { 0 };
	struct err err;
	char *next = NULL;
	REQUIRE_OK(graph_members_page(page2, strlen(page2), &m, &next, &err), &err);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (graph_members_page(bad[i], strlen(bad[i]), &m, &next, &err) == 0) {
			t_fail(__FILE__, __LINE__, "accepted malformed page %zu: %s", i, bad[i]);
			free(next);
		}
		CHECK(next == NULL);
	}
	/* deep nesting is refused, not recursed without bound */
	struct buf deep = { 0 };
	buf_adds(&deep, "{\"value\":[{\"id\":\"u-8\",\"x\":");
	for (int i = 0; i < 200; i++) buf_addc(&deep, '[');
	for (int i = 0; i < 200; i++) buf_addc(&deep, ']');
	buf_adds(&deep, "}]}");
	CHECK(graph_members_page(deep.data, deep.len, &m, &next, &err) != 0);
	buf_free(&deep);
	CHECK_EQ_INT(m.n, 1);
	const char **ids = graph_members_list(&m);
	CHECK_STR(ids[0], "u-7");
	free(ids);
	graph_members_free(&m);
}

/* Graph's own item shape (read by the fast path) and its near misses (read
 * by the general scan) give the same ids; a near miss that is not valid
 * JSON is still refused. */
TEST(graph_members_page_fast_shape_and_near_misses)
{
	static const char page[] =
		"{\"value\":["
		"{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"f13a95a1-a66d-49dd-8d07-a41f7e2065e3\"},"
		"{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"c8989116-4c04-4207-8f73-c1f8b6c4924c\",\"x\":1},"
		"{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"short-id\"},"
		"{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"5e7f29d6-7a7b-4cef-80f0-db3bbb79c0\\u0036\"},"
		"{\"@odata.type\":\"#microsoft.graph.group\",\"id\":\"a10359f4-a3cc-477f-9d2b-000000000001\"},"
		"{\"@odata.type\":\"#microsoft.graph.user\", \"id\":\"a10359f4-a3cc-477f-9d2b-000000000002\"},"
		"{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"a10359f4-a3cc-477f-9d2b-00000000000z\"}"
		"]}";
	struct graph_members m = { 0 };
	struct err err;
	char *next = NULL;
	REQUIRE_OK(graph_members_page(page, strlen(page), &m, &next, &err), &err);
	const char *want[] = { "f13a95a1-a66d-49dd-8d07-a41f7e2065e3", "c8989116-4c04-4207-8f73-c1f8b6c4924c",
	                       "short-id", "5e7f29d6-7a7b-4cef-80f0-db3bbb79c06",
	                       "a10359f4-a3cc-477f-9d2b-000000000002", "a10359f4-a3cc-477f-9d2b-00000000000z" };
	CHECK_EQ_INT(m.n, 6);
	const char **ids = graph_members_list(&m);
	for (size_t i = 0; i < 6 && i < m.n; i++) CHECK_STR(ids[i], want[i]);
	free(ids);
	/* the fast shape followed by a broken separator: refused, nothing added */
	static const char bad[] =
		"{\"value\":[{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"f13a95a1-a66d-49dd-8d07-a41f7e2065e3\"};]}";
	CHECK(graph_members_page(bad, strlen(bad), &m, &next, &err) != 0);
	CHECK_EQ_INT(m.n, 6);
	graph_members_free(&m);
}

/* A page at the start of more text (a $batch part's body read in place):
 * the bytes it spans, what follows not looked at; a malformed page is
 * refused as by graph_members_page. */
TEST(graph_members_page_prefix_spans_the_page)
{
	struct graph_members m = { 0 };
	struct err err;
	char *next = NULL;
	size_t used = 0;
	char text[256];
	snprintf(text, sizeof text, "%s}, {\"id\":\"x\" ,,, not JSON", page2);
	REQUIRE_OK(graph_members_page_prefix(text, strlen(text), &m, &next, &used, &err), &err);
	CHECK_EQ_INT((long)used, (long)strlen(page2));
	CHECK_EQ_INT(m.n, 1);
	CHECK(next == NULL);
	/* the whole-text reader refuses the same text */
	CHECK(graph_members_page(text, strlen(text), &m, &next, &err) < 0);
	CHECK_EQ_INT(m.n, 1);
	static const char bad[] = "{\"value\":[{\"id\":\"u\"},]}, more";
	CHECK(graph_members_page_prefix(bad, strlen(bad), &m, &next, &used, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid JSON at byte offset");
	CHECK_EQ_INT(m.n, 1);
	graph_members_free(&m);
}
