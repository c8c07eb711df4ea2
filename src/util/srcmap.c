/* srcmap — locate table keys in Lua source text (see srcmap.h). */
#include "util/srcmap.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

enum tok_kind { TK_NAME, TK_PUNCT, TK_OTHER, TK_EOF };

struct tok {
	enum tok_kind kind;
	const char *s;   /* start in the source */
	size_t len;
	int line;
};

struct toks {
	struct tok *v;
	size_t n, cap;
};

static void toks_push(struct toks *t, enum tok_kind kind, const char *s, size_t len, int line)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 256;
		t->v = xrealloc(t->v, t->cap * sizeof *t->v);
	}
	t->v[t->n++] = (struct tok){ kind, s, len, line };
}

/* Level of a long bracket opening at p ("[[" = 0, "[==[" = 2), or -1. */
static int long_bracket_level(const char *p, const char *end)
{
	if (p >= end || *p != '[') return -1;
	int level = 0;
	p++;
	while (p < end && *p == '=') { level++; p++; }
	return (p < end && *p == '[') ? level : -1;
}

/* Skips a long bracket body starting at p (at its "["), counting lines. */
static const char *skip_long(const char *p, const char *end, int level, int *line)
{
	p += level + 2;
	while (p < end) {
		if (*p == '\n') (*line)++;
		if (*p == ']') {
			const char *q = p + 1;
			int l = 0;
			while (q < end && *q == '=') { l++; q++; }
			if (l == level && q < end && *q == ']') return q + 1;
		}
		p++;
	}
	return end;
}

static void tokenize(const char *src, size_t len, struct toks *out)
{
	const char *p = src, *end = src + len;
	int line = 1;
	if (p + 1 < end && p[0] == '#' && p[1] == '!')       /* shebang line */
		while (p < end && *p != '\n') p++;
	while (p < end) {
		char c = *p;
		if (c == '\n') { line++; p++; continue; }
		if (isspace((unsigned char)c)) { p++; continue; }
		if (c == '-' && p + 1 < end && p[1] == '-') {
			p += 2;
			int lvl = long_bracket_level(p, end);
			if (lvl >= 0) p = skip_long(p, end, lvl, &line);
			else while (p < end && *p != '\n') p++;
			continue;
		}
		if (c == '"' || c == '\'') {
			const char *s = p++;
			int l0 = line;
			while (p < end && *p != c && *p != '\n') {
				if (*p == '\\' && p + 1 < end) { if (p[1] == '\n') line++; p++; }
				p++;
			}
			if (p < end && *p == c) p++;
			toks_push(out, TK_OTHER, s, (size_t)(p - s), l0);
			continue;
		}
		if (c == '[') {
			int lvl = long_bracket_level(p, end);
			if (lvl >= 0) {
				const char *s = p;
				int l0 = line;
				p = skip_long(p, end, lvl, &line);
				toks_push(out, TK_OTHER, s, (size_t)(p - s), l0);
				continue;
			}
		}
		if (isalpha((unsigned char)c) || c == '_') {
			const char *s = p;
			while (p < end && (isalnum((unsigned char)*p) || *p == '_')) p++;
			toks_push(out, TK_NAME, s, (size_t)(p - s), line);
			continue;
		}
		if (isdigit((unsigned char)c)) {
			const char *s = p;
			while (p < end && (isalnum((unsigned char)*p) || *p == '.' || *p == '_' ||
			                   ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E' || p[-1] == 'p' || p[-1] == 'P'))))
				p++;
			toks_push(out, TK_OTHER, s, (size_t)(p - s), line);
			continue;
		}
		/* two-char operators that contain '=' must not look like assignment */
		if ((c == '=' || c == '~' || c == '<' || c == '>') && p + 1 < end && p[1] == '=') {
			toks_push(out, TK_PUNCT, p, 2, line);
			p += 2;
			continue;
		}
		toks_push(out, TK_PUNCT, p, 1, line);
		p++;
	}
	toks_push(out, TK_EOF, end, 0, line);
}

static bool tok_is(const struct tok *t, const char *s)
{
	return t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

static bool is_open(const struct tok *t)
{
	return t->kind == TK_PUNCT && (tok_is(t, "{") || tok_is(t, "(") || tok_is(t, "["));
}

static bool is_close(const struct tok *t)
{
	return t->kind == TK_PUNCT && (tok_is(t, "}") || tok_is(t, ")") || tok_is(t, "]"));
}

/* Is token i the start of `name =` (a key or an assignment)? */
static bool is_key_at(const struct toks *t, size_t i, const char *name)
{
	return t->v[i].kind == TK_NAME && t->v[i].len == strlen(name) &&
	       memcmp(t->v[i].s, name, t->v[i].len) == 0 &&
	       i + 1 < t->n && t->v[i + 1].kind == TK_PUNCT && tok_is(&t->v[i + 1], "=");
}

/* Where the scan for a positional item last stopped: item `item` of the
 * constructor opening at token `open` starts at token `pos` (0: none).
 * The items of a list are asked for in order (a config's tenants, one
 * after the other), so the next one is looked for from there: each look-up
 * reads only the tokens since the last, not the whole list again. */
struct item_memo {
	size_t open, pos;
	long item;
};

/* Looks for key `name` (or "#N") among the direct fields of the table
 * constructor whose "{" is token open. Returns the token index of the
 * field's value, or 0. memo (or NULL) remembers where a "#N" was found. */
static size_t field_in(const struct toks *t, size_t open, const char *name, struct item_memo *memo)
{
	int depth = 0;
	long want = (name[0] == '#') ? strtol(name + 1, NULL, 10) : 0;
	long item = 1;
	bool item_start = true, item_is_named = false;
	size_t from = open + 1;
	if (want && memo && memo->pos && memo->open == open && memo->item <= want) {
		from = memo->pos;   /* the start of an item: depth 0, item_start */
		item = memo->item;
	}
	for (size_t i = from; i < t->n && t->v[i].kind != TK_EOF; i++) {
		const struct tok *k = &t->v[i];
		if (depth == 0) {
			if (k->kind == TK_PUNCT && tok_is(k, "}")) return 0;
			if (item_start) {
				item_is_named = (k->kind == TK_NAME && i + 1 < t->n && tok_is(&t->v[i + 1], "=")) ||
				                (k->kind == TK_PUNCT && tok_is(k, "["));
				if (!want && is_key_at(t, i, name)) return i + 2;
				if (want && !item_is_named && item == want) {
					if (memo) *memo = (struct item_memo){ .open = open, .pos = i, .item = want };
					return i;
				}
				item_start = false;
			}
			if (k->kind == TK_PUNCT && (tok_is(k, ",") || tok_is(k, ";"))) {
				if (!item_is_named) item++;
				item_start = true;
				continue;
			}
		}
		if (is_open(k)) depth++;
		else if (is_close(k)) depth--;
	}
	return 0;
}

/* Top-level: `name = …` at nesting depth 0 (a global assignment, not a
 * local), or a field of the constructor after a depth-0 `return`. */
static size_t top_level(const struct toks *t, const char *name)
{
	int depth = 0;
	for (size_t i = 0; i < t->n && t->v[i].kind != TK_EOF; i++) {
		const struct tok *k = &t->v[i];
		if (depth == 0 && is_key_at(t, i, name) && (i == 0 || !tok_is(&t->v[i - 1], "local")) &&
		    (i == 0 || !tok_is(&t->v[i - 1], ".")))
			return i + 2;
		if (depth == 0 && k->kind == TK_NAME && tok_is(k, "return") && i + 1 < t->n && tok_is(&t->v[i + 1], "{")) {
			size_t v = field_in(t, i + 1, name, NULL);
			if (v) return v;
		}
		if (is_open(k)) depth++;
		else if (is_close(k)) depth--;
		/* function bodies do not change brace depth; a key inside one is not
		 * a top-level key, but policies rarely assign globals there */
	}
	return 0;
}

struct srcmap {
	struct toks t;
	struct item_memo memo;
};

struct srcmap *srcmap_new(const char *src, size_t len)
{
	struct srcmap *map = xcalloc(1, sizeof *map);
	tokenize(src ? src : "", src ? len : 0, &map->t);
	return map;
}

void srcmap_free(struct srcmap *map)
{
	if (!map) return;
	free(map->t.v);
	free(map);
}

int srcmap_line(struct srcmap *map, const char *const *path, size_t depth)
{
	const struct toks *t = &map->t;
	if (depth == 0) return 0;
	size_t at = top_level(t, path[0]);
	if (!at && depth == 1) {
		for (size_t i = 1; i < t->n; i++)
			if (is_key_at(t, i, path[0])) return t->v[i].line;
		return 0;
	}
	for (size_t d = 1; at && d < depth; d++) {
		if (!tok_is(&t->v[at], "{")) return 0;
		at = field_in(t, at, path[d], &map->memo);
	}
	if (!at) return 0;
	/* report the key's own line (two tokens before a named value) */
	const char *last = path[depth - 1];
	return (last[0] != '#' && at >= 2) ? t->v[at - 2].line : t->v[at].line;
}

int srcmap_key_line(const char *src, size_t len, const char *const *path, size_t depth)
{
	if (!src || depth == 0) return 0;
	struct srcmap *map = srcmap_new(src, len);
	int line = srcmap_line(map, path, depth);
	srcmap_free(map);
	return line;
}
