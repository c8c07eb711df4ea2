/* graph_members — a group's transitiveMembers pages read from their text,
 * without a cJSON tree: a page of 999 members is ~80 KB and ~2,000 strings,
 * and building then freeing the tree cost more than everything else the
 * pull does for the group. One pass checks the whole text against JSON's
 * grammar and picks the ids, which are gathered into one buffer; strings
 * with escapes are decoded by json_scan. */
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

#include "util/json_scan.h"

#define MEMBERS_DEPTH 64

/* A cursor over the page's text. Every function checks what it passes
 * (JSON's grammar) and returns -1 on the first error, with s->p there. */
struct scan {
	const char *p, *end;
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Expects c (after blanks). */
static int expect(struct scan *s, char c)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != c) return -1;
	s->p++;
	return 0;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at s->p (after blanks): *v gets it with its quotes; *escaped
 * whether it holds a backslash (then it must be decoded). */
static int scan_string(struct scan *s, struct json_scan_value *v, bool *escaped)
{
	skip_ws(s);
	if (s->p >= s->end || *s->p != '"') return -1;
	const char *start = s->p++;
	*escaped = false;
	for (;;) {
		s->p = json_scan_skip_plain(s->p, s->end);
		if (s->p >= s->end) return -1;
		unsigned char c = (unsigned char)*s->p;
		if (c == '"') break;
		if (c < 0x20) return -1;
		if (c == '\\') {
			*escaped = true;
			if (s->end - s->p < 2) return -1;
			char e = s->p[1];
			if (e == 'u') {
				if (s->end - s->p < 6 || !is_hex(s->p[2]) || !is_hex(s->p[3]) || !is_hex(s->p[4]) ||
				    !is_hex(s->p[5]))
					return -1;
				s->p += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", e) || !e) return -1;
			s->p += 2;
			continue;
		}
		s->p++;
	}
	s->p++;
	*v = (struct json_scan_value){ JSON_SCAN_STRING, start, (size_t)(s->p - start) };
	return 0;
}

/* Whether the string v (quotes included, escaped or not) is lit. */
static bool string_is(const struct json_scan_value *v, bool escaped, const char *lit)
{
	size_t n = strlen(lit);
	if (!escaped) return v->len == n + 2 && memcmp(v->text + 1, lit, n) == 0;
	char tmp[64];
	return v->len <= sizeof tmp && json_scan_string(v, tmp, sizeof tmp) == (long)n && memcmp(tmp, lit, n) == 0;
}

static int scan_digits(struct scan *s)
{
	if (s->p >= s->end || *s->p < '0' || *s->p > '9') return -1;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
	return 0;
}

static int scan_number(struct scan *s)
{
	if (s->p < s->end && *s->p == '-') s->p++;
	if (s->p < s->end && *s->p == '0') s->p++;
	else if (scan_digits(s) != 0) return -1;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (scan_digits(s) != 0) return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
		if (scan_digits(s) != 0) return -1;
	}
	return 0;
}

static int scan_value(struct scan *s, int depth);

/* The members of an object (s->p past its '{'), each value checked; fn,
 * when set, gets every member's key instead of the check of its value. */
static int scan_object(struct scan *s, int depth,
                       int (*fn)(struct scan *s, const struct json_scan_value *key, bool escaped, void *ud), void *ud)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		struct json_scan_value key;
		bool escaped;
		if (scan_string(s, &key, &escaped) != 0 || expect(s, ':') != 0) return -1;
		if (fn ? fn(s, &key, escaped, ud) != 0 : scan_value(s, depth + 1) != 0) return -1;
		skip_ws(s);
		if (s->p >= s->end) return -1;
		char c = *s->p++;
		if (c == '}') return 0;
		if (c != ',') return -1;
	}
}

/* The elements of an array (s->p past its '['); fn, when set, reads each
 * element instead of the plain check. */
static int scan_array(struct scan *s, int depth, int (*fn)(struct scan *s, void *ud), void *ud)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (fn ? fn(s, ud) != 0 : scan_value(s, depth + 1) != 0) return -1;
		skip_ws(s);
		if (s->p >= s->end) return -1;
		char c = *s->p++;
		if (c == ']') return 0;
		if (c != ',') return -1;
	}
}

/* Any value, checked and passed over. */
static int scan_value(struct scan *s, int depth)
{
	skip_ws(s);
	if (s->p >= s->end || depth > MEMBERS_DEPTH) return -1;
	struct json_scan_value v;
	bool escaped;
	switch (*s->p) {
	case '"': return scan_string(s, &v, &escaped);
	case '{': s->p++; return scan_object(s, depth, NULL, NULL);
	case '[': s->p++; return scan_array(s, depth, NULL, NULL);
	case 't': return s->end - s->p >= 4 && !memcmp(s->p, "true", 4) ? (s->p += 4, 0) : -1;
	case 'f': return s->end - s->p >= 5 && !memcmp(s->p, "false", 5) ? (s->p += 5, 0) : -1;
	case 'n': return s->end - s->p >= 4 && !memcmp(s->p, "null", 4) ? (s->p += 4, 0) : -1;
	default: return scan_number(s);
	}
}

/* One item of "value": its id and @odata.type as strings, when they are. */
struct item {
	struct json_scan_value id, type; /* JSON_SCAN_ABSENT, or the first one when a string */
	bool id_seen, type_seen;
	bool id_escaped, type_escaped;
};

static int item_member(struct scan *s, const struct json_scan_value *key, bool escaped, void *ud)
{
	struct item *it = ud;
	skip_ws(s);
	bool is_str = s->p < s->end && *s->p == '"';
	if (!it->id_seen && string_is(key, escaped, "id")) {
		it->id_seen = true;
		if (is_str) return scan_string(s, &it->id, &it->id_escaped);
	} else if (!it->type_seen && string_is(key, escaped, "@odata.type")) {
		it->type_seen = true;
		if (is_str) return scan_string(s, &it->type, &it->type_escaped);
	}
	return scan_value(s, 2);
}

/* Appends id[0..n) and its NUL to the page's ids. */
static void ids_add(struct graph_members *m, const char *id, size_t n)
{
	buf_reserve(&m->ids, n + 1);
	memcpy(m->ids.data + m->ids.len, id, n);
	m->ids.len += n + 1;               /* keeps the NUL */
	m->ids.data[m->ids.len - 1] = '\0';
	m->ids.data[m->ids.len] = '\0';
	m->n++;
}

/* The shape Graph sends for a user with $select=id, byte for byte: when
 * an item is exactly this with a 36-character GUID, it is read without
 * the general scan (which handles every other shape, blanks included). */
static const char user_item_head[] = "{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"";
#define USER_ITEM_HEAD_LEN (sizeof user_item_head - 1)
#define GUID_LEN 36


static bool user_item_fast(struct scan *s, struct graph_members *m)
{
	const char *p = s->p;
	if ((size_t)(s->end - p) < USER_ITEM_HEAD_LEN + GUID_LEN + 2 || memcmp(p, user_item_head, USER_ITEM_HEAD_LEN))
		return false;
	const char *id = p + USER_ITEM_HEAD_LEN;
	if (id[GUID_LEN] != '"' || id[GUID_LEN + 1] != '}') return false;
	if (!guid_at_36(id)) return false;   /* 38 bytes are there: the id, '"' and '}' */
	/* ids_add for 36 bytes, inline: a page appends ~1,000 of them */
	if (m->ids.len + GUID_LEN + 2 > m->ids.cap) buf_reserve(&m->ids, GUID_LEN + 1);
	char *o = m->ids.data + m->ids.len;
	memcpy(o, id, GUID_LEN);
	o[GUID_LEN] = '\0';
	o[GUID_LEN + 1] = '\0';
	m->ids.len += GUID_LEN + 1;
	m->n++;
	s->p = id + GUID_LEN + 2;
	return true;
}

/* Appends the item's id when it is a user. */
static int item_read(struct scan *s, void *ud)
{
	struct graph_members *m = ud;
	struct item it = { .id.type = JSON_SCAN_ABSENT, .type.type = JSON_SCAN_ABSENT };
	skip_ws(s);
	if (user_item_fast(s, m)) return 0;
	if (s->p >= s->end || *s->p != '{') return scan_value(s, 2);   /* not an object: no member */
	s->p++;
	if (scan_object(s, 2, item_member, &it) != 0) return -1;
	if (it.id.type != JSON_SCAN_STRING) return 0;
	/* users only: devices, contacts and nested groups are not contacts */
	if (it.type.type == JSON_SCAN_STRING && !string_is(&it.type, it.type_escaped, "#microsoft.graph.user"))
		return 0;
	if (!it.id_escaped) {
		ids_add(m, it.id.text + 1, it.id.len - 2);
		return 0;
	}
	buf_reserve(&m->ids, it.id.len);
	char *out = m->ids.data + m->ids.len;
	long d = json_scan_string(&it.id, out, it.id.len);
	if (d < 0) return 0;               /* e.g. a \u0000: no id */
	m->ids.len += (size_t)d + 1;       /* keeps the NUL */
	m->ids.data[m->ids.len] = '\0';
	m->n++;
	return 0;
}

/* The page's top level: "value" read item by item, "@odata.nextLink". */
struct page {
	struct graph_members *m;
	bool seen_value;
	struct json_scan_value next;
	bool next_escaped;
};

static int page_member(struct scan *s, const struct json_scan_value *key, bool escaped, void *ud)
{
	struct page *pg = ud;
	skip_ws(s);
	char c = s->p < s->end ? *s->p : 0;
	if (c == '[' && !pg->seen_value && string_is(key, escaped, "value")) {
		pg->seen_value = true;
		s->p++;
		return scan_array(s, 1, item_read, pg->m);
	}
	if (c == '"' && pg->next.type == JSON_SCAN_ABSENT && string_is(key, escaped, "@odata.nextLink"))
		return scan_string(s, &pg->next, &pg->next_escaped);
	return scan_value(s, 1);
}

/* The page object at text's start; with whole, nothing but blanks may
 * follow it, else *used gets the bytes it spans. */
static int members_page_read(const char *text, size_t len, bool whole, struct graph_members *m, char **next_link,
                             size_t *used, struct err *err)
{
	struct scan s = { text, text + len };
	struct page pg = { .m = m, .next.type = JSON_SCAN_ABSENT };
	size_t len0 = m->ids.len, n0 = m->n;
	*next_link = NULL;
	if (expect(&s, '{') != 0 || scan_object(&s, 0, page_member, &pg) != 0 ||
	    (whole && (skip_ws(&s), s.p != s.end))) {
		err_set(err, "invalid JSON at byte offset %zu", (size_t)(s.p - text));
		goto fail;
	}
	if (!pg.seen_value) {
		err_set(err, "the page has no \"value\" array");
		goto fail;
	}
	if (pg.next.type == JSON_SCAN_STRING) {
		struct buf b = { 0 };
		if (json_scan_string_buf(&pg.next, &b) >= 0) *next_link = buf_steal(&b);
		buf_free(&b);
	}
	if (used) *used = (size_t)(s.p - text);
	return 0;
fail:
	m->ids.len = len0;
	m->n = n0;
	if (m->ids.data) m->ids.data[len0] = '\0';
	return -1;
}

int graph_members_page(const char *text, size_t len, struct graph_members *m, char **next_link, struct err *err)
{
	return members_page_read(text, len, true, m, next_link, NULL, err);
}

int graph_members_page_prefix(const char *text, size_t len, struct graph_members *m, char **next_link, size_t *used,
                              struct err *err)
{
	return members_page_read(text, len, false, m, next_link, used, err);
}

const char **graph_members_list(const struct graph_members *m)
{
	const char **v = xcalloc(m->n + 1, sizeof *v);
	const char *p = m->ids.data;
	for (size_t i = 0; i < m->n; i++) {
		v[i] = p;
		p += strlen(p) + 1;
	}
	return v;
}

void graph_members_free(struct graph_members *m)
{
	buf_free(&m->ids);
	m->n = 0;
}
