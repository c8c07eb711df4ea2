/* json_scan — a JSON object's top-level members read from its text: a
 * recursive skipper that checks the structure as it goes, spans instead of
 * a tree, strings decoded on demand. No allocation. */
#include "util/json_scan.h"

#include <stdint.h>
#include <string.h>

#define KEY_MAX 256

struct scanner {
	const char *start, *p, *end;
	int depth;
};

static int fail(const struct scanner *s, struct err *err)
{
	return err_set(err, "invalid JSON at byte offset %zu", (size_t)(s->p - s->start));
}

static void skip_ws(struct scanner *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* At '"': moves past the closing quote (the first not escaped), 16 bytes
 * at a time where SSE2 is there. The string's escapes and characters are
 * checked when it is decoded (decode), not here. 0, or -1. */
static int skip_string(struct scanner *s)
{
	const char *q = s->p + 1, *e = s->end;
	for (;;) {
#if defined(__SSE2__)
		const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
		unsigned mask = 0;
		while (e - q >= 16) {
			__m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
			mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)));
			if (mask) break;
			q += 16;
		}
		if (mask) q += __builtin_ctz(mask);
		else
#endif
			while (q < e && *q != '"' && *q != '\\') q++;
		if (q >= e) break;
		if (*q == '"') {
			s->p = q + 1;
			return 0;
		}
		q += 2;   /* a backslash and the character it escapes */
		if (q > e) break;
	}
	s->p = e;
	return -1;
}

static bool is_digit(const struct scanner *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int skip_number(struct scanner *s)
{
	if (s->p < s->end && *s->p == '-') s->p++;
	if (!is_digit(s)) return -1;
	if (*s->p == '0') s->p++;
	else
		while (is_digit(s)) s->p++;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!is_digit(s)) return -1;
		while (is_digit(s)) s->p++;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
		if (!is_digit(s)) return -1;
		while (is_digit(s)) s->p++;
	}
	return 0;
}

static int skip_literal(struct scanner *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return -1;
	s->p += n;
	return 0;
}

static int skip_value(struct scanner *s, struct json_scan_value *v);

/* Past JSON whitespace at p (Graph sends none between tokens: one test). */
static inline const char *ws_end(const char *p, const char *e)
{
	while (p < e && (unsigned char)*p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
	return p;
}

/* At '[' or '{': moves past the matching bracket, checking what is inside
 * (as skip_value would, value by value), without recursion: the kind of
 * each open level is a bit of a 64-bit stack (JSON_SCAN_DEPTH <= 64). On
 * failure s->p is where the text went wrong. */
static int skip_container(struct scanner *s)
{
	const char *p = s->p, *e = s->end;
	uint64_t objects = 0;     /* bit 0: the innermost open level is an object */
	int open = 0;
	int rc = -1;
	for (;;) {
		/* p at '{' or '[': open it */
		if (s->depth + open + 1 > JSON_SCAN_DEPTH) goto out;
		bool object = *p == '{';
		objects = objects << 1 | (uint64_t)object;
		open++;
		p = ws_end(p + 1, e);
		if (p < e && *p == (object ? '}' : ']')) {
			p++;
			goto closed;
		}
	next:   /* p at a member's key, or an element */
		if (objects & 1) {
			if (p >= e || *p != '"') goto out;
			s->p = p;
			if (skip_string(s) != 0) goto fail_at_s;
			p = ws_end(s->p, e);
			if (p >= e || *p != ':') goto out;
			p = ws_end(p + 1, e);
		}
		if (p >= e) goto out;
		if (*p == '{' || *p == '[') continue;
		s->p = p;
		switch (*p) {
		case '"': if (skip_string(s) != 0) goto fail_at_s; break;
		case 't': if (skip_literal(s, "true", 4) != 0) goto fail_at_s; break;
		case 'f': if (skip_literal(s, "false", 5) != 0) goto fail_at_s; break;
		case 'n': if (skip_literal(s, "null", 4) != 0) goto fail_at_s; break;
		default: if (skip_number(s) != 0) goto fail_at_s; break;
		}
		p = s->p;
	after:  /* p after a value: ',' or the close of its level */
		p = ws_end(p, e);
		if (p >= e) goto out;
		if (*p == ',') {
			p = ws_end(p + 1, e);
			goto next;
		}
		if (*p != ((objects & 1) ? '}' : ']')) goto out;
		p++;
	closed:
		objects >>= 1;
		if (--open == 0) break;
		goto after;
	}
	rc = 0;
out:
	s->p = p;
	return rc;
fail_at_s:
	return -1;
}

/* Skips the value at s->p (no leading whitespace) and describes it in *v. */
static int skip_value(struct scanner *s, struct json_scan_value *v)
{
	const char *at = s->p;
	int rc;
	if (s->p >= s->end) return -1;
	switch (*s->p) {
	case '"': v->type = JSON_SCAN_STRING; rc = skip_string(s); break;
	case '{': v->type = JSON_SCAN_OBJECT; rc = skip_container(s); break;
	case '[': v->type = JSON_SCAN_ARRAY; rc = skip_container(s); break;
	case 't': v->type = JSON_SCAN_TRUE; rc = skip_literal(s, "true", 4); break;
	case 'f': v->type = JSON_SCAN_FALSE; rc = skip_literal(s, "false", 5); break;
	case 'n': v->type = JSON_SCAN_NULL; rc = skip_literal(s, "null", 4); break;
	default: v->type = JSON_SCAN_NUMBER; rc = skip_number(s); break;
	}
	v->text = at;
	v->len = (size_t)(s->p - at);
	return rc;
}

/* Appends code point cp as UTF-8 at out; returns the bytes written. */
static size_t put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static unsigned long hex4(const char *p)
{
	return (unsigned long)(hex_value(p[0]) << 12 | hex_value(p[1]) << 8 | hex_value(p[2]) << 4 | hex_value(p[3]));
}

/* Decodes the string body raw[0..n) (between the quotes), checking it: no
 * raw control characters, only JSON's escapes. Each escape decodes to no
 * more bytes than it takes, so out needs n + 1 bytes at most. Returns the
 * length, or -1 (malformed, or cap too small). */
static long decode(const char *raw, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	const char *p = raw, *end = raw + n;
	if (cap == 0) return -1;
	while (p < end) {
		char tmp[4];
		size_t k;
		if (*p != '\\') {
			if ((unsigned char)*p < 0x20) goto bad;
			if (o + 1 >= cap) goto too_small;
			out[o++] = *p++;
			continue;
		}
		if (end - p < 2) goto bad;
		switch (p[1]) {
		case '"': case '\\': case '/': tmp[0] = p[1]; k = 1; p += 2; break;
		case 'b': tmp[0] = '\b'; k = 1; p += 2; break;
		case 'f': tmp[0] = '\f'; k = 1; p += 2; break;
		case 'n': tmp[0] = '\n'; k = 1; p += 2; break;
		case 'r': tmp[0] = '\r'; k = 1; p += 2; break;
		case 't': tmp[0] = '\t'; k = 1; p += 2; break;
		case 'u': {
			if (end - p < 6) goto bad;
			for (int i = 2; i < 6; i++)
				if (hex_value(p[i]) < 0) goto bad;
			unsigned long cp = hex4(p + 2);
			p += 6;
			if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
			    hex_value(p[2]) >= 0 && hex_value(p[3]) >= 0 && hex_value(p[4]) >= 0 && hex_value(p[5]) >= 0) {
				unsigned long lo = hex4(p + 2);
				if (lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					p += 6;
				}
			}
			if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
			k = put_utf8(tmp, cp);
			break;
		}
		default: goto bad;
		}
		if (o + k >= cap) goto too_small;
		memcpy(out + o, tmp, k);
		o += k;
	}
	out[o] = '\0';
	return (long)o;
too_small:
bad:
	out[0] = '\0';
	return -1;
}

long json_scan_string(const struct json_scan_value *v, char *out, size_t cap)
{
	if (v->type != JSON_SCAN_STRING || v->len < 2 || v->text[0] != '"' || v->text[v->len - 1] != '"') {
		if (cap) out[0] = '\0';
		return -1;
	}
	return decode(v->text + 1, v->len - 2, out, cap);
}

long json_scan_string_buf(const struct json_scan_value *v, struct buf *b)
{
	buf_reset(b);
	buf_reserve(b, v->len);
	long n = json_scan_string(v, b->data, b->cap);
	b->len = n > 0 ? (size_t)n : 0;
	b->data[b->len] = '\0';
	return n;
}

/* Opens the object: skips leading whitespace and '{'. */
static int open_object(struct scanner *s, const char *json, size_t len)
{
	*s = (struct scanner){ .start = json, .p = json, .end = json + len, .depth = 1 };
	skip_ws(s);
	if (s->p >= s->end || *s->p != '{') return -1;
	s->p++;
	skip_ws(s);
	return 0;
}

/* A member's key as found: raw (between the quotes) unless it has escapes,
 * then decoded into dec[KEY_MAX]. name/len: what to compare (len -1:
 * unusable, too long or malformed). */
struct member_key {
	const char *name;
	long len;
	char dec[KEY_MAX];
};

/* Reads a member's key (s->p at its '"') into *k, and the ':' after it;
 * s->p is then at the value. */
static int member_key_read(struct scanner *s, struct member_key *k)
{
	const char *raw = s->p + 1;
	if (s->p >= s->end || *s->p != '"' || skip_string(s) != 0) return -1;
	size_t n = (size_t)(s->p - raw) - 1;
	if (memchr(raw, '\\', n)) {
		k->name = k->dec;
		k->len = decode(raw, n, k->dec, KEY_MAX);
	} else {
		k->name = raw;
		k->len = n < KEY_MAX ? (long)n : -1;
	}
	skip_ws(s);
	if (s->p >= s->end || *s->p != ':') return -1;
	s->p++;
	skip_ws(s);
	return 0;
}

/* After a member's value: the ',' or close after it. *more: another
 * member (or element) follows. */
static int member_sep(struct scanner *s, char close, bool *more)
{
	skip_ws(s);
	if (s->p >= s->end) return -1;
	if (*s->p == ',') {
		s->p++;
		skip_ws(s);
		*more = true;
		return 0;
	}
	if (*s->p != close) return -1;
	s->p++;
	*more = false;
	return 0;
}

/* At a container's '[' or '{': enters it (one level deeper), past any
 * blanks; *more says whether it holds anything before close, which is
 * then passed. 0, or -1 when it would nest too deep. */
static int enter(struct scanner *s, char close, bool *more)
{
	if (++s->depth > JSON_SCAN_DEPTH) return -1;
	s->p++;
	skip_ws(s);
	*more = true;
	if (s->p < s->end && *s->p == close) {
		s->p++;
		*more = false;
	}
	return 0;
}

/* Reads one member (s->p at its key's '"'): its key into *k, its value into
 * *v, and the ',' or '}' after it. *more: another member follows. */
static int next_member(struct scanner *s, struct member_key *k, struct json_scan_value *v, bool *more)
{
	if (member_key_read(s, k) != 0 || skip_value(s, v) != 0) return -1;
	return member_sep(s, '}', more);
}

static bool key_is(const struct member_key *k, const char *name)
{
	return name[0] == k->name[0] && strncmp(name, k->name, (size_t)k->len) == 0 && name[k->len] == '\0';
}

int json_scan_members(const char *json, size_t len, const char *const *keys, size_t n,
                      struct json_scan_value *out, struct err *err)
{
	struct scanner s;
	size_t found = 0;
	for (size_t i = 0; i < n; i++) out[i] = (struct json_scan_value){ .type = JSON_SCAN_ABSENT };
	if (!json || open_object(&s, json, len) != 0) {
		if (!json) return err_set(err, "invalid JSON: no text");
		return fail(&s, err);
	}
	if (s.p < s.end && *s.p == '}') return 0;
	bool more = true;
	while (more && found < n) {
		struct member_key k;
		struct json_scan_value v;
		if (next_member(&s, &k, &v, &more) != 0) return fail(&s, err);
		if (k.len <= 0) continue;
		for (size_t i = 0; i < n; i++) {
			if (out[i].type != JSON_SCAN_ABSENT || !key_is(&k, keys[i])) continue;
			out[i] = v;
			found++;
			break;
		}
	}
	return 0;
}

/* Opens the object in json[0..len) for a walk over all its members:
 * *more says whether it has any. 0, or -1 with err. */
static int open_walk(struct scanner *s, const char *json, size_t len, bool *more, struct err *err)
{
	if (!json) return err_set(err, "invalid JSON: no text");
	if (open_object(s, json, len) != 0) return fail(s, err);
	*more = true;
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		*more = false;
	}
	return 0;
}

int json_scan_each_member(const char *json, size_t len,
                          int (*fn)(void *ud, const char *key, const struct json_scan_value *v), void *ud,
                          struct err *err)
{
	struct scanner s;
	bool more;
	if (open_walk(&s, json, len, &more, err) != 0) return -1;
	while (more) {
		struct member_key k;
		struct json_scan_value v;
		if (next_member(&s, &k, &v, &more) != 0) return fail(&s, err);
		char name[KEY_MAX];
		if (k.len >= 0) {
			memcpy(name, k.name, (size_t)k.len);
			name[k.len] = '\0';
		}
		int rc = fn(ud, k.len >= 0 ? name : NULL, &v);
		if (rc) return rc;
	}
	skip_ws(&s);
	if (s.p != s.end) return fail(&s, err);
	return 0;
}

int json_scan_each_element(const char *json, size_t len,
                           int (*fn)(void *ud, size_t i, const struct json_scan_value *v), void *ud, struct err *err)
{
	struct scanner s = { .start = json, .p = json, .end = json + len, .depth = 1 };
	if (!json) return err_set(err, "invalid JSON: no text");
	skip_ws(&s);
	if (s.p >= s.end || *s.p != '[') return fail(&s, err);
	s.p++;
	skip_ws(&s);
	bool more = true;
	if (s.p < s.end && *s.p == ']') {
		s.p++;
		more = false;
	}
	for (size_t i = 0; more; i++) {
		struct json_scan_value v;
		if (skip_value(&s, &v) != 0) return fail(&s, err);
		skip_ws(&s);
		if (s.p >= s.end || (*s.p != ',' && *s.p != ']')) return fail(&s, err);
		more = *s.p == ',';
		s.p++;
		skip_ws(&s);
		int rc = fn(ud, i, &v);
		if (rc) return rc;
	}
	if (s.p != s.end) return fail(&s, err);
	return 0;
}

bool json_scan_strings_strict(const char *p, size_t n)
{
	const char *e = p + n;
	while (p < e) {
		const char *q = memchr(p, '"', (size_t)(e - p));
		if (!q) return true;
		p = q + 1;
		for (;;) {   /* inside a string */
			p = json_scan_skip_plain(p, e);
			if (p >= e) return false;
			if (*p == '"') {
				p++;
				break;
			}
			if (*p != '\\' || e - p < 2) return false;   /* a raw control character, or a cut escape */
			char c = p[1];
			if (c == 'u') {
				if (e - p < 6) return false;
				for (int k = 2; k < 6; k++)
					if (hex_value(p[k]) < 0) return false;
				p += 6;
			} else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
				p += 2;
			} else {
				return false;
			}
		}
	}
	return true;
}

/* The type of the value that starts with c. */
static enum json_scan_type type_of(char c)
{
	switch (c) {
	case '"': return JSON_SCAN_STRING;
	case '{': return JSON_SCAN_OBJECT;
	case '[': return JSON_SCAN_ARRAY;
	case 't': return JSON_SCAN_TRUE;
	case 'f': return JSON_SCAN_FALSE;
	case 'n': return JSON_SCAN_NULL;
	default: return JSON_SCAN_NUMBER;
	}
}

/* Finds keys[0..n) among the members of the object at s->p (element i of
 * the list) as json_scan_members does, reading it whole (s->p then past
 * its '}'); the reader, if any, may read its key's value itself. A value
 * that is not an object is skipped, its keys all absent. */
static int scan_record(struct scanner *s, size_t i, const char *const *keys, size_t n,
                       const struct json_scan_reader *reader, struct json_scan_value *out)
{
	for (size_t j = 0; j < n; j++) out[j] = (struct json_scan_value){ .type = JSON_SCAN_ABSENT };
	if (s->p >= s->end || *s->p != '{') {
		struct json_scan_value v;
		return skip_value(s, &v);
	}
	bool more;
	if (enter(s, '}', &more) != 0) return -1;
	while (more) {
		struct member_key k;
		struct json_scan_value v;
		if (member_key_read(s, &k) != 0) return -1;
		size_t j = n;
		if (k.len > 0)
			for (j = 0; j < n; j++)
				if (out[j].type == JSON_SCAN_ABSENT && key_is(&k, keys[j])) break;
		size_t took = 0;
		if (reader && j == reader->key && s->p < s->end)
			took = reader->read(reader->ud, i, out, s->p, (size_t)(s->end - s->p));
		if (took) {
			v = (struct json_scan_value){ type_of(*s->p), s->p, took };
			s->p += took;
		} else if (skip_value(s, &v) != 0) {
			return -1;
		}
		if (j < n) out[j] = v;
		if (member_sep(s, '}', &more) != 0) return -1;
	}
	s->depth--;
	return 0;
}

/* At the '[' of the array: fn for each element's record (scan_record),
 * s->p then past the ']'. */
static int scan_records(struct scanner *s, const char *const *keys, size_t n, const struct json_scan_reader *reader,
                        int (*fn)(void *ud, size_t i, const struct json_scan_value *vals), void *ud, int *stop)
{
	struct json_scan_value vals[JSON_SCAN_RECORD_KEYS + 1];   /* + the element itself */
	bool more;
	if (n > JSON_SCAN_RECORD_KEYS || enter(s, ']', &more) != 0) return -1;
	for (size_t i = 0; more; i++) {
		const char *start = s->p;
		if (scan_record(s, i, keys, n, reader, vals) != 0) return -1;
		vals[n] = (struct json_scan_value){ type_of(*start), start, (size_t)(s->p - start) };
		if (member_sep(s, ']', &more) != 0) return -1;
		*stop = fn(ud, i, vals);
		if (*stop) return 0;
	}
	s->depth--;
	return 0;
}

int json_scan_each_record(const char *json, size_t len, const char *key, const char *const *keys, size_t n,
                          const struct json_scan_reader *reader,
                          int (*fn)(void *ud, size_t i, const struct json_scan_value *vals), void *ud, bool *found,
                          struct err *err)
{
	return json_scan_each_record_also(json, len, key, keys, n, reader, fn, ud, found, NULL, 0, NULL, err);
}

int json_scan_each_record_also(const char *json, size_t len, const char *key, const char *const *keys, size_t n,
                               const struct json_scan_reader *reader,
                               int (*fn)(void *ud, size_t i, const struct json_scan_value *vals), void *ud,
                               bool *found, const char *const *also, size_t n_also, struct json_scan_value *also_out,
                               struct err *err)
{
	struct scanner s;
	bool more;
	*found = false;
	for (size_t j = 0; j < n_also; j++) also_out[j] = (struct json_scan_value){ .type = JSON_SCAN_ABSENT };
	if (open_walk(&s, json, len, &more, err) != 0) return -1;
	while (more) {
		struct member_key k;
		struct json_scan_value v;
		if (member_key_read(&s, &k) != 0) return fail(&s, err);
		if (!*found && k.len > 0 && key_is(&k, key) && s.p < s.end && *s.p == '[') {
			*found = true;
			int stop = 0;
			if (scan_records(&s, keys, n, reader, fn, ud, &stop) != 0) return fail(&s, err);
			if (stop) return stop;
		} else if (skip_value(&s, &v) != 0) {
			return fail(&s, err);
		} else if (k.len > 0) {
			for (size_t j = 0; j < n_also; j++)
				if (also_out[j].type == JSON_SCAN_ABSENT && key_is(&k, also[j])) {
					also_out[j] = v;
					break;
				}
		}
		if (member_sep(&s, '}', &more) != 0) return fail(&s, err);
	}
	skip_ws(&s);
	if (s.p != s.end) return fail(&s, err);
	return 0;
}
