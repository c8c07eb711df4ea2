/* lua_strpat — string.find, match, gmatch and gsub with Lua 5.4's pattern
 * language, every step charged to the policy's instruction budget (see
 * lua_strpat.h for why). The matcher is a backtracking one, as Lua's: a
 * pattern item is tried at a position, quantifiers expand greedily (*, +),
 * lazily (-) or optionally (?), captures are kept as (start, length) pairs
 * into the subject, %b, %f and back-references as in the reference manual
 * (§6.4.1). Results and error messages are Lua's. */
#include "script/lua_strpat.h"

#include <ctype.h>
#include <lauxlib.h>
#include <stddef.h>
#include <string.h>

#define PAT_ESC '%'
#define PAT_SPECIALS "^$*+?.([%-"
#define PAT_MAXCAPTURES 32          /* LUA_MAXCAPTURES */
#define PAT_MAXDEPTH 200            /* nested matches before "pattern too complex" (Lua's MAXCCALLS) */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define CHARGE_EVERY 4096           /* steps counted before they are charged */

struct matcher {
	const char *src_init, *src_end;  /* the subject */
	const char *p_end;               /* the pattern's end */
	lua_State *L;
	luastrpat_charge charge;
	unsigned long steps;             /* counted, not yet charged */
	int depth;                       /* nested matches left */
	int level;                       /* captures open or closed */
	struct {
		const char *init;
		ptrdiff_t len;               /* or CAP_UNFINISHED / CAP_POSITION */
	} capture[PAT_MAXCAPTURES];
};

static inline unsigned char uc(char c)
{
	return (unsigned char)c;
}

/* Counts n steps; charges them to the budget every CHARGE_EVERY (which
 * raises when the budget is spent). */
static inline void step(struct matcher *m, unsigned long n)
{
	m->steps += n;
	if (m->steps >= CHARGE_EVERY) {
		unsigned long s = m->steps;
		m->steps = 0;
		m->charge(m->L, s);
	}
}

static void charge_rest(struct matcher *m)
{
	if (m->steps) {
		unsigned long s = m->steps;
		m->steps = 0;
		m->charge(m->L, s);
	}
}

/* ---- pattern items ----------------------------------------------------- */

/* Does character class letter cl (a, d, s, ..., upper case for the
 * complement; any other character stands for itself) hold c? */
static int class_holds(int c, int cl)
{
	int res;
	switch (tolower(cl)) {
	case 'a': res = isalpha(c); break;
	case 'c': res = iscntrl(c); break;
	case 'd': res = isdigit(c); break;
	case 'g': res = isgraph(c); break;
	case 'l': res = islower(c); break;
	case 'p': res = ispunct(c); break;
	case 's': res = isspace(c); break;
	case 'u': res = isupper(c); break;
	case 'w': res = isalnum(c); break;
	case 'x': res = isxdigit(c); break;
	case 'z': res = c == 0; break;   /* deprecated in the manual, still in Lua 5.4's library */
	default: return cl == c;
	}
	if (isupper(cl)) res = !res;
	return res != 0;
}

/* The end of the single-character class at p (past a %x, a [set] or one
 * character). */
static const char *item_end(struct matcher *m, const char *p)
{
	switch (*p++) {
	case PAT_ESC:
		if (p == m->p_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
		return p + 1;
	case '[':
		if (*p == '^') p++;
		do {   /* the first character of a set is taken as is, so "[]]" holds ']' */
			if (p == m->p_end) luaL_error(m->L, "malformed pattern (missing ']')");
			if (*(p++) == PAT_ESC && p < m->p_end) p++;
		} while (*p != ']');
		return p + 1;
	default:
		return p;
	}
}

/* Does the set [ ... ] from p (at '[') to ec (at its ']') hold c? */
static int set_holds(int c, const char *p, const char *ec)
{
	int yes = 1;
	if (*(p + 1) == '^') {
		yes = 0;
		p++;
	}
	while (++p < ec) {
		if (*p == PAT_ESC) {
			p++;
			if (class_holds(c, uc(*p))) return yes;
		} else if (*(p + 1) == '-' && p + 2 < ec) {
			p += 2;
			if (uc(*(p - 2)) <= c && c <= uc(*p)) return yes;
		} else if (uc(*p) == c) {
			return yes;
		}
	}
	return !yes;
}

/* Does the item p..ep match the character at s? */
static int item_matches(const struct matcher *m, const char *s, const char *p, const char *ep)
{
	if (s >= m->src_end) return 0;
	int c = uc(*s);
	switch (*p) {
	case '.': return 1;
	case PAT_ESC: return class_holds(c, uc(*(p + 1)));
	case '[': return set_holds(c, p, ep - 1);
	default: return uc(*p) == c;
	}
}

/* ---- the matcher ------------------------------------------------------- */

static const char *match(struct matcher *m, const char *s, const char *p);

/* %bxy at s: the shortest balanced x...y */
static const char *match_balance(struct matcher *m, const char *s, const char *p)
{
	if (p >= m->p_end - 1) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
	if (s >= m->src_end || *s != *p) return NULL;
	int open = *p, close = *(p + 1), depth = 1;
	while (++s < m->src_end) {
		step(m, 1);
		if (*s == close) {
			if (--depth == 0) return s + 1;
		} else if (*s == open) {
			depth++;
		}
	}
	return NULL;
}

/* item* (or item+ from s + 1): the longest run, then shorter ones */
static const char *expand_greedy(struct matcher *m, const char *s, const char *p, const char *ep)
{
	ptrdiff_t i = 0;
	while (item_matches(m, s + i, p, ep)) {
		i++;
		step(m, 1);
	}
	for (; i >= 0; i--) {
		const char *r = match(m, s + i, ep + 1);
		if (r) return r;
		step(m, 1);
	}
	return NULL;
}

/* item-: the shortest run that lets the rest match */
static const char *expand_lazy(struct matcher *m, const char *s, const char *p, const char *ep)
{
	for (;;) {
		const char *r = match(m, s, ep + 1);
		if (r) return r;
		if (!item_matches(m, s, p, ep)) return NULL;
		s++;
		step(m, 1);
	}
}

static const char *capture_open(struct matcher *m, const char *s, const char *p, ptrdiff_t what)
{
	if (m->level >= PAT_MAXCAPTURES) luaL_error(m->L, "too many captures");
	m->capture[m->level].init = s;
	m->capture[m->level].len = what;
	m->level++;
	const char *r = match(m, s, p);
	if (!r) m->level--;
	return r;
}

static const char *capture_close(struct matcher *m, const char *s, const char *p)
{
	int l = m->level - 1;
	while (l >= 0 && m->capture[l].len != CAP_UNFINISHED) l--;
	if (l < 0) luaL_error(m->L, "invalid pattern capture");
	m->capture[l].len = s - m->capture[l].init;
	const char *r = match(m, s, p);
	if (!r) m->capture[l].len = CAP_UNFINISHED;
	return r;
}

/* %1 .. %9: the text of that (closed) capture again */
static const char *match_backref(struct matcher *m, const char *s, int digit)
{
	int l = digit - '1';
	if (l < 0 || l >= m->level || m->capture[l].len == CAP_UNFINISHED)
		luaL_error(m->L, "invalid capture index %%%d", l + 1);
	/* a position capture has no text: Lua's length check never passes for it */
	if (m->capture[l].len < 0) return NULL;
	size_t len = (size_t)m->capture[l].len;
	step(m, 1 + len / 16);
	if ((size_t)(m->src_end - s) >= len && memcmp(m->capture[l].init, s, len) == 0) return s + len;
	return NULL;
}

/* Matches the pattern from p against the subject from s: the end of the
 * match, or NULL. Tail positions loop instead of recursing. */
static const char *match(struct matcher *m, const char *s, const char *p)
{
	if (m->depth-- == 0) luaL_error(m->L, "pattern too complex");
	while (p != m->p_end) {
		step(m, 1);
		switch (*p) {
		case '(':
			s = *(p + 1) == ')' ? capture_open(m, s, p + 2, CAP_POSITION) : capture_open(m, s, p + 1, CAP_UNFINISHED);
			goto done;
		case ')':
			s = capture_close(m, s, p + 1);
			goto done;
		case '$':
			if (p + 1 != m->p_end) break;    /* a '$' inside: an ordinary character */
			s = s == m->src_end ? s : NULL;
			goto done;
		case PAT_ESC:
			if (*(p + 1) == 'b') {
				s = match_balance(m, s, p + 2);
				if (!s) goto done;
				p += 4;
				continue;
			}
			if (*(p + 1) == 'f') {
				p += 2;
				if (*p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
				const char *ep = item_end(m, p);
				int prev = s == m->src_init ? '\0' : uc(*(s - 1));
				int here = s < m->src_end ? uc(*s) : '\0';
				if (!set_holds(prev, p, ep - 1) && set_holds(here, p, ep - 1)) {
					p = ep;
					continue;
				}
				s = NULL;
				goto done;
			}
			if (isdigit(uc(*(p + 1)))) {
				s = match_backref(m, s, uc(*(p + 1)));
				if (!s) goto done;
				p += 2;
				continue;
			}
			break;
		default:
			break;
		}
		/* a single-character item, perhaps quantified */
		const char *ep = item_end(m, p);
		if (!item_matches(m, s, p, ep)) {
			if (*ep == '*' || *ep == '?' || *ep == '-') {   /* zero of it will do */
				p = ep + 1;
				continue;
			}
			s = NULL;
			goto done;
		}
		switch (*ep) {
		case '?': {
			const char *r = match(m, s + 1, ep + 1);
			if (r) {
				s = r;
				goto done;
			}
			p = ep + 1;
			continue;
		}
		case '+': s = expand_greedy(m, s + 1, p, ep); goto done;
		case '*': s = expand_greedy(m, s, p, ep); goto done;
		case '-': s = expand_lazy(m, s, p, ep); goto done;
		default:
			s++;
			p = ep;
			continue;
		}
	}
done:
	m->depth++;
	return s;
}

/* ---- captures to Lua ----------------------------------------------------- */

/* Capture i of a match s..e: its text in *cap and its length, or
 * CAP_POSITION with the position pushed. Capture 0 of a pattern without
 * any is the whole match. */
static ptrdiff_t capture_get(struct matcher *m, int i, const char *s, const char *e, const char **cap)
{
	if (i >= m->level) {
		if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
		*cap = s;
		return e - s;
	}
	ptrdiff_t len = m->capture[i].len;
	*cap = m->capture[i].init;
	if (len == CAP_UNFINISHED) luaL_error(m->L, "unfinished capture");
	if (len == CAP_POSITION) lua_pushinteger(m->L, (m->capture[i].init - m->src_init) + 1);
	return len;
}

static void capture_push(struct matcher *m, int i, const char *s, const char *e)
{
	const char *cap;
	ptrdiff_t len = capture_get(m, i, s, e, &cap);
	if (len != CAP_POSITION) lua_pushlstring(m->L, cap, (size_t)len);
}

/* Pushes the captures (or the whole match when there are none and s is
 * given); returns how many. */
static int captures_push(struct matcher *m, const char *s, const char *e)
{
	int n = m->level == 0 && s ? 1 : m->level;
	luaL_checkstack(m->L, n, "too many captures");
	for (int i = 0; i < n; i++) capture_push(m, i, s, e);
	return n;
}

/* ---- the library functions --------------------------------------------- */

static void matcher_init(struct matcher *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
	m->L = L;
	m->src_init = s;
	m->src_end = s + ls;
	m->p_end = p + lp;
	m->steps = 0;
	m->charge = *(luastrpat_charge *)lua_touserdata(L, lua_upvalueindex(1));
}

static void matcher_reset(struct matcher *m)
{
	m->level = 0;
	m->depth = PAT_MAXDEPTH;
}

/* A start position of Lua's: 1-based, negative from the end, clamped to 1. */
static size_t start_at(lua_Integer pos, size_t len)
{
	if (pos > 0) return (size_t)pos;
	if (pos == 0) return 1;
	if (pos < -(lua_Integer)len) return 1;
	return len + (size_t)pos + 1;
}

static int no_specials(const char *p, size_t lp)
{
	for (size_t i = 0; i < lp; i++)
		if (p[i] && strchr(PAT_SPECIALS, p[i])) return 0;
	return 1;
}

/* The first occurrence of needle in hay (plain text), counting steps. */
static const char *plain_find(struct matcher *m, const char *hay, size_t lh, const char *needle, size_t ln)
{
	if (ln == 0) return hay;
	if (ln > lh) return NULL;
	const char *end = hay + (lh - ln) + 1;   /* the last start + 1 */
	for (const char *at = hay; at < end;) {
		const char *hit = memchr(at, *needle, (size_t)(end - at));
		step(m, 1 + (size_t)((hit ? hit : end) - at) / 64);
		if (!hit) return NULL;
		step(m, 1 + ln / 16);
		if (memcmp(hit + 1, needle + 1, ln - 1) == 0) return hit;
		at = hit + 1;
	}
	return NULL;
}

static int find_or_match(lua_State *L, int find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
	struct matcher m;
	matcher_init(&m, L, s, ls, p, lp);
	if (init > ls) {
		luaL_pushfail(L);
		return 1;
	}
	if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
		const char *hit = plain_find(&m, s + init, ls - init, p, lp);
		charge_rest(&m);
		if (hit) {
			lua_pushinteger(L, (hit - s) + 1);
			lua_pushinteger(L, (lua_Integer)((size_t)(hit - s) + lp));
			return 2;
		}
	} else {
		const char *at = s + init;
		int anchor = *p == '^';
		if (anchor) p++;   /* m.p_end stays the pattern's end */
		do {
			matcher_reset(&m);
			const char *e = match(&m, at, p);
			if (e) {
				charge_rest(&m);
				if (find) {
					lua_pushinteger(L, (at - s) + 1);
					lua_pushinteger(L, e - s);
					return captures_push(&m, NULL, NULL) + 2;
				}
				return captures_push(&m, at, e);
			}
			step(&m, 1);
		} while (at++ < m.src_end && !anchor);
		charge_rest(&m);
	}
	luaL_pushfail(L);
	return 1;
}

static int strpat_find(lua_State *L)
{
	return find_or_match(L, 1);
}

static int strpat_match(lua_State *L)
{
	return find_or_match(L, 0);
}

/* gmatch's state: the matcher over the subject and pattern kept as the
 * iterator's upvalues, where the next search starts, and the end of the
 * last match (an empty match there is not taken twice). */
struct gmatch_state {
	struct matcher m;
	const char *src;
	const char *p;
	const char *lastmatch;
};

static int gmatch_next(lua_State *L)
{
	struct gmatch_state *g = lua_touserdata(L, lua_upvalueindex(4));
	g->m.L = L;
	for (const char *src = g->src; src <= g->m.src_end; src++) {
		matcher_reset(&g->m);
		const char *e = match(&g->m, src, g->p);
		if (e && e != g->lastmatch) {
			g->src = g->lastmatch = e;
			charge_rest(&g->m);
			return captures_push(&g->m, src, e);
		}
		step(&g->m, 1);
	}
	charge_rest(&g->m);
	return 0;
}

static int strpat_gmatch(lua_State *L)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
	lua_settop(L, 2);
	/* upvalues of the iterator: the charge, the subject, the pattern (both
	 * kept alive: the matcher points into them), the state */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	struct gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
	if (init > ls) init = ls + 1;   /* past the end: no match */
	matcher_init(&g->m, L, s, ls, p, lp);
	g->src = s + init;
	g->p = p;
	g->lastmatch = NULL;
	lua_pushcclosure(L, gmatch_next, 4);
	return 1;
}

/* Appends the replacement string (argument 3) for the match s..e, its %0 ..
 * %9 and %% expanded. */
static void add_string(struct matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
	lua_State *L = m->L;
	size_t l;
	const char *news = lua_tolstring(L, 3, &l);
	const char *p;
	while ((p = memchr(news, PAT_ESC, l)) != NULL) {
		luaL_addlstring(b, news, (size_t)(p - news));
		p++;
		if (*p == PAT_ESC) {
			luaL_addchar(b, *p);
		} else if (*p == '0') {
			luaL_addlstring(b, s, (size_t)(e - s));
		} else if (isdigit(uc(*p))) {
			const char *cap;
			ptrdiff_t len = capture_get(m, *p - '1', s, e, &cap);
			if (len == CAP_POSITION) luaL_addvalue(b);
			else luaL_addlstring(b, cap, (size_t)len);
		} else {
			luaL_error(L, "invalid use of '%c' in replacement string", PAT_ESC);
		}
		l -= (size_t)(p + 1 - news);
		news = p + 1;
	}
	luaL_addlstring(b, news, l);
}

/* Appends what replaces the match s..e (argument 3 of type tr: a string, a
 * table indexed by the first capture, a function called with the
 * captures); false or nil keeps the match. Returns whether it changed. */
static int add_value(struct matcher *m, luaL_Buffer *b, const char *s, const char *e, int tr)
{
	lua_State *L = m->L;
	switch (tr) {
	case LUA_TFUNCTION: {
		lua_pushvalue(L, 3);
		int n = captures_push(m, s, e);
		lua_call(L, n, 1);
		break;
	}
	case LUA_TTABLE:
		capture_push(m, 0, s, e);
		lua_gettable(L, 3);
		break;
	default:
		add_string(m, b, s, e);
		return 1;
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s, (size_t)(e - s));
		return 0;
	}
	if (!lua_isstring(L, -1)) return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	luaL_addvalue(b);
	return 1;
}

static int strpat_gsub(lua_State *L)
{
	size_t srcl, lp;
	const char *src = luaL_checklstring(L, 1, &srcl);
	const char *p = luaL_checklstring(L, 2, &lp);
	const char *lastmatch = NULL;
	int tr = lua_type(L, 3);
	lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
	int anchor = *p == '^';
	lua_Integer n = 0;
	int changed = 0;
	luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
	                 "string/function/table");
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	if (anchor) {
		p++;
		lp--;
	}
	struct matcher m;
	matcher_init(&m, L, src, srcl, p, lp);
	while (n < max_s) {
		matcher_reset(&m);
		const char *e = match(&m, src, p);
		step(&m, 1);
		if (e && e != lastmatch) {
			n++;
			changed = add_value(&m, &b, src, e, tr) | changed;
			src = lastmatch = e;
		} else if (src < m.src_end) {
			luaL_addchar(&b, *src++);
		} else {
			break;
		}
		if (anchor) break;
	}
	charge_rest(&m);
	if (!changed) {
		lua_pushvalue(L, 1);
	} else {
		luaL_addlstring(&b, src, (size_t)(m.src_end - src));
		luaL_pushresult(&b);
	}
	lua_pushinteger(L, n);
	return 2;
}

void luastrpat_install(lua_State *L, int idx, luastrpat_charge charge)
{
	static const luaL_Reg fns[] = {
		{ "find", strpat_find }, { "match", strpat_match }, { "gmatch", strpat_gmatch }, { "gsub", strpat_gsub },
	};
	idx = lua_absindex(L, idx);
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		luastrpat_charge *c = lua_newuserdatauv(L, sizeof *c, 0);   /* upvalue 1: the charge */
		*c = charge;
		lua_pushcclosure(L, fns[i].func, 1);
		lua_setfield(L, idx, fns[i].name);
	}
}
