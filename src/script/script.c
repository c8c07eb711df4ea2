/* script — sandboxed Lua states for untrusted tenant policies: the allow-
 * listed standard library, strict globals, `require` limited to the
 * runtime's entrasync.* modules, an instruction budget per call (count
 * hook) and a memory cap per state (counting allocator) that hold through
 * the policy's own pcall/xpcall, the one protected-call function every call
 * into Lua goes through, policy loading/validation and evaluation on users.
 * Contract and error formats: script.h. JSON <-> Lua: lua_json.c. */
#include "script/script.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "script/embed.h"
#include "util/log.h"
#include "script/lua_contact.h"
#include "script/lua_json.h"
#include "script/lua_costly.h"
#include "script/lua_strpat.h"
#include "script/lua_text.h"
#include "util/skus.h"
#include "util/snapshot.h"
#include "util/srcmap.h"

#define HANDLER_SLACK ((size_t)1 << 20)   /* extra bytes the error handler may use */
#define HOOK_MAX_INTERVAL 4096LL           /* the count hook fires at least this often (and checks the clock) */
#define PRINT_MAX_LINES 20                  /* print lines logged per call */
#define PRINT_MAX_BYTES 2000                /* of each */
#define HOOK_NOTE_EVERY 16                  /* ... and notes where the call is every this many firings */

/* Small blocks (most Lua objects: strings, tables, closures) come from a
 * per-state pool: free lists per 16-byte size class, carved from 64 KiB
 * chunks that go back to the system when the state is closed. Lua tells
 * the allocator each block's size, so no header is needed, and the pool
 * makes allocation and free a few instructions instead of malloc/free's
 * hundred. Disabled under AddressSanitizer so it sees every block. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_MAX 0
#else
#define POOL_MAX 512
#endif
#define POOL_GRAIN 16
#define POOL_CLASSES (512 / POOL_GRAIN)
#define POOL_CHUNK ((size_t)64 << 10)

struct pool_chunk {
	struct pool_chunk *next;
	max_align_t align[];           /* blocks start here, suitably aligned */
};

struct pool {
	void *free[POOL_CLASSES];      /* a free block's first word links the next */
	char *bump, *bump_end;         /* the unused part of the newest chunk */
	struct pool_chunk *chunks;
};

static inline size_t pool_class(size_t n)
{
	return (n - 1) / POOL_GRAIN;
}

static void *pool_get(struct pool *p, size_t n)
{
	size_t c = pool_class(n);
	void *b = p->free[c];
	if (b) {
		p->free[c] = *(void **)b;
		return b;
	}
	size_t sz = (c + 1) * POOL_GRAIN;
	if ((size_t)(p->bump_end - p->bump) < sz) {
		struct pool_chunk *ch = xmalloc(POOL_CHUNK);
		ch->next = p->chunks;
		p->chunks = ch;
		p->bump = (char *)ch->align;
		p->bump_end = (char *)ch + POOL_CHUNK;
	}
	b = p->bump;
	p->bump += sz;
	return b;
}

static inline void pool_put(struct pool *p, void *b, size_t n)
{
	size_t c = pool_class(n);
	*(void **)b = p->free[c];
	p->free[c] = b;
}

static void pool_destroy(struct pool *p)
{
	while (p->chunks) {
		struct pool_chunk *next = p->chunks->next;
		free(p->chunks);
		p->chunks = next;
	}
}

const char *const policy_contact_field_names[POLICY_NFIELDS] = {
	"name", "email", "phone", "mobile", "title", "address1", "address2",
	"city", "state", "zip", "notes",
};

bool policy_field_value_ok(int f, const char *v, size_t len, char *why, size_t cap)
{
	size_t max = f == POLICY_NOTES ? POLICY_NOTES_MAX : POLICY_FIELD_MAX;
	if (len > max) snprintf(why, cap, "is %zu bytes, more than the %zu a contact field may hold", len, max);
	else if (memchr(v, '\0', len)) snprintf(why, cap, "contains a NUL byte");
	else if (!str_utf8_valid(v, len)) snprintf(why, cap, "is not valid UTF-8");
	else return true;
	return false;
}

struct script {
	lua_State *L;
	struct script_limits lim;
	enum script_print print;

	/* memory accounting (sb_alloc) */
	struct pool pool;
	size_t mem_used;
	unsigned long mem_refused;     /* allocations refused so far (never reset) */
	bool in_handler;               /* message handler running: allow HANDLER_SLACK */

	/* the running call (protected_call) */
	const char *kind;              /* "policy error", "lua error" */
	const char *what;              /* "in include()" or NULL */
	long long budget_left;         /* instructions left in this call */
	int hook_interval;             /* the count hook's current interval */
	unsigned hook_fires;           /* firings in this call (notes where every HOOK_NOTE_EVERY) */
	int prints;                    /* print lines in this call (logged up to PRINT_MAX_LINES) */
	double deadline;               /* time_thread_cpu() past which the call fails; 0 = not started */
	bool budget_exceeded;
	bool over_time;                /* ... and it was the time limit, not the instruction count */
	bool mem_error;                /* a memory error was caught and re-raised */
	char budget_where[160];        /* "file:line" where the budget ran out */
	char mem_where[160];           /* "file:line" of the pcall that caught a memory error, or "" */
	/* where the call was at the count hook's last firing (every
	 * HOOK_MAX_INTERVAL instructions): a memory error that no pcall saw (Lua
	 * calls no message handler for those) is placed "near" it */
	char near_src[LUA_IDSIZE];
	int near_line;
	enum script_fail last_fail;

	/* registry refs, created at script_new so that later stores never grow
	 * the registry (storing into an existing slot does not allocate) */
	int ref_policy, ref_include, ref_contact, ref_tenant, ref_loaded, ref_names;
	const char *field_key[POLICY_NFIELDS];  /* interned contact field names */
	const char *customer_id_key;

	/* the loaded policy */
	bool have_policy;
	struct policy_info info;
	char include_where[300], contact_where[300];  /* "file:line" of the functions */

	struct buf warn;               /* pieces of a Lua warning */
	char *lua_dir;                 /* --lua-dir when the state was made, or NULL */
};

static char *g_lua_dir;

void script_set_lua_dir(const char *dir)
{
	free(g_lua_dir);
	g_lua_dir = dir ? xstrdup(dir) : NULL;
}

static struct script *script_of(lua_State *L)
{
	return *(struct script **)lua_getextraspace(L);
}

/* ---- limits ------------------------------------------------------------ */

/* The state's allocator: counts the bytes Lua asks for and refuses growth
 * past the cap (Lua then runs an emergency collection and retries, then
 * raises LUA_ERRMEM). Blocks up to POOL_MAX bytes live in the pool, larger
 * ones with malloc. Shrinking never fails, as Lua requires. */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct script *s = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		if (ptr) {
			if (old <= POOL_MAX) pool_put(&s->pool, ptr, old);
			else free(ptr);
		}
		s->mem_used -= old;
		return NULL;
	}
	if (nsize > old) {
		size_t cap = s->lim.memory_bytes + (s->in_handler ? HANDLER_SLACK : 0);
		if (s->mem_used - old + nsize > cap) {
			s->mem_refused++;
			return NULL;
		}
	}
	void *p;
	if (nsize <= POOL_MAX) {
		if (ptr && old <= POOL_MAX && pool_class(old) == pool_class(nsize)) {
			p = ptr;                                  /* same size class */
		} else {
			p = pool_get(&s->pool, nsize);
			if (ptr) {
				memcpy(p, ptr, old < nsize ? old : nsize);
				if (old <= POOL_MAX) pool_put(&s->pool, ptr, old);
				else free(ptr);
			}
		}
	} else if (ptr && old > POOL_MAX) {
		p = realloc(ptr, nsize);
		if (!p) {
			if (nsize <= old) return ptr;
			s->mem_refused++;
			return NULL;
		}
	} else {
		p = malloc(nsize);
		if (!p) {
			s->mem_refused++;
			return NULL;
		}
		if (ptr) {
			memcpy(p, ptr, old);
			pool_put(&s->pool, ptr, old);
		}
	}
	s->mem_used = s->mem_used - old + nsize;
	return p;
}

static void sb_hook(lua_State *L, lua_Debug *ar);

/* Arms the count hook for `budget` instructions (in int-sized steps). */
static void hook_arm(struct script *s, long long left)
{
	s->budget_left = left;
	s->hook_interval = (int)(left < HOOK_MAX_INTERVAL ? left : HOOK_MAX_INTERVAL);
	if (s->hook_interval < 1) s->hook_interval = 1;
	lua_sethook(s->L, sb_hook, LUA_MASKCOUNT, s->hook_interval);
}

/* Gives the running call a fresh instruction budget. */
static void budget_reset(struct script *s)
{
	s->budget_exceeded = false;
	s->over_time = false;
	s->hook_fires = 0;
	s->prints = 0;
	s->deadline = 0;   /* set at the hook's first firing: a short call never reads the clock */
	s->near_src[0] = '\0';
	s->near_line = 0;
	hook_arm(s, s->lim.instructions);
}

/* The memory error's place: where a pcall caught it, else "near" where the
 * count hook last saw the call, else "" (the error came before any). */
static void mem_place(const struct script *s, char *out, size_t cap)
{
	if (s->mem_where[0]) snprintf(out, cap, " at %s", s->mem_where);
	else if (s->near_src[0] && s->near_line > 0) snprintf(out, cap, " near %s:%d", s->near_src, s->near_line);
	else if (s->near_src[0]) snprintf(out, cap, " near %s", s->near_src);
	else out[0] = '\0';
}

/* "file:line" of the Lua function at stack level `level`, without
 * allocating in the state (it may be out of memory). */
static void where_at(lua_State *L, int level, char *out, size_t cap)
{
	lua_Debug ar;
	out[0] = '\0';
	if (lua_getstack(L, level, &ar) && lua_getinfo(L, "Sl", &ar)) {
		if (ar.currentline > 0) snprintf(out, cap, "%s:%d", ar.short_src, ar.currentline);
		else snprintf(out, cap, "%s", ar.short_src);
	}
}

/* The budget is spent: notes where (the Lua function at stack level
 * `level`; the first time), makes every further instruction raise again
 * (a policy's pcall cannot swallow the overrun and carry on), and raises.
 * Does not return. */
static void budget_raise(lua_State *L, struct script *s, int level)
{
	if (!s->budget_exceeded) {
		s->budget_exceeded = true;
		where_at(L, level, s->budget_where, sizeof s->budget_where);
		s->budget_left = 0;
		s->hook_interval = 1;
		lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
	}
	lua_pushfstring(L, "%s: %s", s->budget_where, s->over_time ? "time limit exceeded" : "instruction budget exceeded");
	lua_error(L);
}

/* "instruction budget exceeded (10000000 instructions)" or "time limit
 * exceeded (10 s of CPU per call)": what the call ran out of. */
static void budget_words(const struct script *s, char *out, size_t cap)
{
	if (s->over_time) snprintf(out, cap, "time limit exceeded (%g s of CPU per call)", s->lim.seconds);
	else snprintf(out, cap, "instruction budget exceeded (%lld instructions)", s->lim.instructions);
}

/* The count hook. Fires once per interval while the budget lasts; once it is
 * exceeded the interval drops to 1, so every further instruction raises
 * again — a policy's pcall cannot swallow the overrun and carry on. */
static void sb_hook(lua_State *L, lua_Debug *ar)
{
	struct script *s = script_of(L);
	if (!s->budget_exceeded) {
		long long left = s->budget_left - s->hook_interval;
		/* the time limit, in CPU time of the thread: a few instructions can
		 * cost much (comparing two strings of 50 MB, C functions on them),
		 * which no count sees. Its clock starts at the first firing (at most
		 * HOOK_MAX_INTERVAL instructions into the call). */
		double now = time_thread_cpu();
		if (s->deadline == 0) {
			s->deadline = now + s->lim.seconds;
		} else if (left > 0 && now > s->deadline) {
			s->over_time = true;
			left = 0;
		}
		if (left > 0) {
			/* note where the call is (no allocation: the state may be short of memory) */
			if (++s->hook_fires % HOOK_NOTE_EVERY == 1 && lua_getinfo(L, "Sl", ar)) {
				memcpy(s->near_src, ar->short_src, sizeof s->near_src);
				s->near_line = ar->currentline;
			}
			hook_arm(s, left);
			return;
		}
	}
	budget_raise(L, s, 0);
}

/* The pattern functions' steps (lua_strpat.c), charged to the running
 * call's budget as instructions are: spent, the call fails as the count
 * hook fails it, at the Lua line that called the pattern function. */
static void pattern_charge(lua_State *L, unsigned long steps)
{
	struct script *s = script_of(L);
	lua_Debug ar;
	/* a large piece of work may be the one that runs out of memory, before
	 * the count hook has seen the call: note its place for the message */
	if (steps >= 1024 && lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
		memcpy(s->near_src, ar.short_src, sizeof s->near_src);
		s->near_line = ar.currentline;
	}
	/* large pieces of work are where the time goes: the clock is checked
	 * here too, not only every few thousand instructions */
	if (steps >= 1024 && !s->budget_exceeded) {
		double now = time_thread_cpu();
		if (s->deadline == 0) s->deadline = now + s->lim.seconds;
		else if (now > s->deadline) {
			s->over_time = true;
			budget_raise(L, s, 1);
		}
	}
	if (!s->budget_exceeded) {
		s->budget_left -= (long long)steps;
		if (s->budget_left > 0) return;
	}
	budget_raise(L, s, 1);
}

/* "64 MiB", "1.5 MiB", "512 KiB" */
static void format_bytes(size_t n, char *out, size_t cap)
{
	if (n >= ((size_t)1 << 20) && n % ((size_t)1 << 20) == 0) snprintf(out, cap, "%zu MiB", n >> 20);
	else if (n >= ((size_t)1 << 20)) snprintf(out, cap, "%.1f MiB", (double)n / (1 << 20));
	else snprintf(out, cap, "%zu KiB", n >> 10);
}

/* ---- the one protected call -------------------------------------------- */

/* Message handler (like lua.c's): turns the error into "kind what: message"
 * — or the budget/memory wording — and appends a traceback. */
static int sb_msghandler(lua_State *L)
{
	struct script *s = script_of(L);
	s->in_handler = true;
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (!s->budget_exceeded && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	const char *what = s->what ? s->what : "";
	const char *sp = s->what ? " " : "";
	if (s->budget_exceeded) {
		char words[96];
		budget_words(s, words, sizeof words);
		msg = lua_pushfstring(L, "%s%s%s at %s", words, sp, what, s->budget_where);
	} else if (s->mem_error) {
		char mb[32], place[sizeof s->mem_where + LUA_IDSIZE];
		format_bytes(s->lim.memory_bytes, mb, sizeof mb);
		mem_place(s, place, sizeof place);
		msg = lua_pushfstring(L, "memory limit exceeded (%s)%s%s%s", mb, sp, what, place);
	} else {
		msg = lua_pushfstring(L, "%s%s%s: %s", s->kind, sp, what, msg);
	}
	/* a traceback only helps when Lua code is on the stack */
	lua_Debug ar;
	for (int level = 1; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "S", &ar) && ar.what[0] != 'C') {
			luaL_traceback(L, L, msg, 1);
			break;
		}
	}
	return 1;
}

/* Calls the function below its nargs arguments on the stack, with a fresh
 * budget and the traceback handler. On success leaves nresults values and
 * returns 0. On failure pops everything it was given, fills err with the
 * kind-worded message, records the kind (script_last_fail), resets the
 * state for the next call (a full collection after a memory error) and
 * returns -1. kind/what label the call ("policy error", "in include()"). */
static int protected_call(struct script *s, int nargs, int nresults, const char *kind, const char *what,
                          struct err *err)
{
	lua_State *L = s->L;
	int base = lua_gettop(L) - nargs;          /* index of the function */
	unsigned long refused = s->mem_refused;
	lua_pushcfunction(L, sb_msghandler);
	lua_insert(L, base);
	s->kind = kind;
	s->what = what;
	s->mem_error = false;
	s->mem_where[0] = '\0';
	s->in_handler = false;
	budget_reset(s);
	int status = lua_pcall(L, nargs, nresults, base);
	s->in_handler = false;
	if (status == LUA_OK) {
		lua_remove(L, base);
		s->last_fail = SCRIPT_OK;
		return 0;
	}
	bool mem = status == LUA_ERRMEM || s->mem_error ||
	           (status == LUA_ERRERR && s->mem_refused != refused && !s->budget_exceeded);
	char mb[32];
	format_bytes(s->lim.memory_bytes, mb, sizeof mb);
	const char *sp = s->what ? " " : "", *w = s->what ? s->what : "";
	if (s->budget_exceeded) {
		s->last_fail = SCRIPT_FAIL_BUDGET;
		if (status == LUA_ERRRUN && lua_type(L, -1) == LUA_TSTRING) err_set(err, "%s", lua_tostring(L, -1));
		else {
			char words[96];
			budget_words(s, words, sizeof words);
			err_set(err, "%s%s%s at %s", words, sp, w, s->budget_where);
		}
	} else if (mem) {
		s->last_fail = SCRIPT_FAIL_MEMORY;
		if (status == LUA_ERRRUN && lua_type(L, -1) == LUA_TSTRING) err_set(err, "%s", lua_tostring(L, -1));
		else {
			char place[sizeof s->mem_where + LUA_IDSIZE];
			mem_place(s, place, sizeof place);
			err_set(err, "memory limit exceeded (%s)%s%s%s", mb, sp, w, place);
		}
	} else {
		s->last_fail = SCRIPT_FAIL_ERROR;
		const char *m = lua_tostring(L, -1);
		err_set(err, "%s", m ? m : "error in error handling");
	}
	lua_settop(L, base - 1);
	s->budget_exceeded = false;
	s->over_time = false;
	s->mem_error = false;
	if (mem) lua_gc(L, LUA_GCCOLLECT);
	log_redact_err(err);
	return -1;
}

/* ---- the sandbox ------------------------------------------------------- */

/* Names a policy may reach for but the sandbox leaves out. */
static const char *const unavailable_globals[] = {
	"io", "debug", "package", "dofile", "loadfile", "coroutine", "warn", "loadstring", "module", "setfenv",
	"getfenv", "jit", "ffi",
};

static int strict_index(lua_State *L)
{
	const char *k = lua_tostring(L, 2);
	if (!k) return luaL_error(L, "undefined global (a %s key)", luaL_typename(L, 2));
	for (size_t i = 0; i < ARRAY_LEN(unavailable_globals); i++)
		if (strcmp(k, unavailable_globals[i]) == 0)
			return luaL_error(L, "'%s' is not available in the policy sandbox", k);
	return luaL_error(L, "undefined global '%s'", k);
}

static int strict_newindex(lua_State *L)
{
	const char *k = lua_tostring(L, 2);
	return luaL_error(L, "assignment to undeclared global '%s'", k ? k : luaL_typename(L, 2));
}

static int os_index(lua_State *L)
{
	const char *k = lua_tostring(L, 2);
	return luaL_error(L, "'os.%s' is not available in the policy sandbox (only os.time, os.date, os.clock)",
	                  k ? k : "?");
}

/* print(...): to the log (info, event "policy", with the caller's place) or
 * to stdout for `entrasync lua`. */
static int sb_print(lua_State *L)
{
	struct script *s = script_of(L);
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1) luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	size_t len;
	const char *line = lua_tolstring(L, -1, &len);
	if (s->print == SCRIPT_PRINT_STDOUT) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
	} else if (++s->prints <= PRINT_MAX_LINES) {
		/* to the log: a line and a call's lines bounded (a policy printing
		 * megabytes per user would fill the journal) */
		luaL_where(L, 1);
		if (len > PRINT_MAX_BYTES)
			log_info("policy", "%s%.*s... (%zu bytes more)", lua_tostring(L, -1), PRINT_MAX_BYTES, line,
			         len - PRINT_MAX_BYTES);
		else
			log_info("policy", "%s%s", lua_tostring(L, -1), line);   /* where ends with ": " */
		if (s->prints == PRINT_MAX_LINES)
			log_info("policy", "%s(print: %d lines in this call; its further output is dropped)",
			         lua_tostring(L, -1), PRINT_MAX_LINES);
	}
	return 0;
}

/* pcall/xpcall that do not swallow budget or memory errors: those are
 * re-raised at once (with the same error object, so no allocation). */
static int reraise_if_fatal(lua_State *L, int status)
{
	struct script *s = script_of(L);
	if (status == LUA_ERRMEM && !s->mem_error) {
		s->mem_error = true;
		where_at(L, 1, s->mem_where, sizeof s->mem_where);
	}
	if (s->budget_exceeded || s->mem_error) return lua_error(L);
	return 0;
}

/* Results of a pcall/xpcall (as lbaselib.c's finishpcall): true and the
 * results above `extra` slots, or false and the error object. */
static int finish_pcall(lua_State *L, int status, int extra)
{
	if (status != LUA_OK) {
		reraise_if_fatal(L, status);
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - extra;
}

static int sb_pcall(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);        /* first result if no error */
	lua_insert(L, 1);
	return finish_pcall(L, lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0), 0);
}

/* The message handler xpcall installs around the policy's own: once the
 * budget or memory is exceeded it returns the error untouched without
 * running the policy's handler. (An error raised from the count hook leaves
 * Lua's allowhook off until the pcall unwinds, so a handler running then
 * would be outside the budget: a looping handler would never stop.) */
static int xpcall_handler(lua_State *L)
{
	struct script *s = script_of(L);
	if (s->budget_exceeded || s->mem_error) return 1;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

static int sb_xpcall(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, xpcall_handler, 1);
	lua_replace(L, 2);
	lua_pushboolean(L, 1);        /* first result */
	lua_pushvalue(L, 1);          /* the function */
	lua_rotate(L, 3, 2);          /* f, msgh, true, f, args... */
	return finish_pcall(L, lua_pcall(L, n - 2, LUA_MULTRET, 2), 2);
}

/* load(chunk [, chunkname [, mode]]): text only; the env argument is refused
 * so that loaded code stays under the strict globals. A chunk given as a
 * string is charged by its bytes first, as the costly string functions
 * are (lua_costly.c): compiling is C work no count sees (2.5 MB: ~50 ms).
 * A reader function's own instructions are counted as it runs. */
static int sb_load(lua_State *L)
{
	if (!lua_isnone(L, 4))
		return luaL_error(L, "load: the env argument is not available in the policy sandbox");
	if (lua_type(L, 1) == LUA_TSTRING) pattern_charge(L, (unsigned long)(lua_rawlen(L, 1) / 64 + 1));
	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_pushliteral(L, "t");
	lua_call(L, 3, LUA_MULTRET);
	return lua_gettop(L);
}

static int sb_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "collect");
	if (strcmp(opt, "count") != 0)
		return luaL_error(L, "collectgarbage: only \"count\" is available in the policy sandbox (got \"%s\")", opt);
	int kb = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
	lua_pushnumber(L, (lua_Number)kb + ((lua_Number)b / 1024));
	return 1;
}

/* setmetatable (as lbaselib.c's) refusing __gc: finalizers run with hooks
 * off, outside the instruction budget. */
static int sb_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc metamethods are not available in the policy sandbox");
		lua_pop(L, 1);
	}
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

/* rawset refusing the global table (strict globals cannot be bypassed). */
static int sb_rawset(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkany(L, 2);
	luaL_checkany(L, 3);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
	if (lua_rawequal(L, 1, -1))
		return luaL_error(L, "rawset: writing to the global table is not allowed in the policy sandbox");
	luajson_user_touch(L, 1);         /* a policy's user table no longer matches its text */
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 1;
}

/* entrasync.NAME[.NAME...] with NAME = [a-z0-9_]+ */
static bool module_name_ok(const char *name)
{
	if (strncmp(name, "entrasync.", 10) != 0) return false;
	const char *p = name + 10;
	bool seg = false;
	for (; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') seg = true;
		else if (*p == '.' && seg) seg = false;
		else return false;
	}
	return seg;
}

/* Loads the Lua source of a runtime module onto the stack as a function;
 * raises with a clear message when absent. */
static void load_module_source(lua_State *L, const char *name)
{
	int status;
	struct script *s = script_of(L);
	if (s->lua_dir) {
		struct buf path = {0};
		buf_printf(&path, "%s/entrasync/", s->lua_dir);
		for (const char *p = name + 10; *p; p++) buf_addc(&path, *p == '.' ? '/' : *p);
		buf_adds(&path, ".lua");
		char *text = NULL;
		size_t len = 0;
		struct err err;
		if (file_read(path.data, &text, &len, &err) != 0) {
			lua_pushfstring(L, "module '%s' not found: %s", name, err.msg);
			buf_free(&path);
			lua_error(L);
		}
		lua_pushfstring(L, "@%s", path.data);
		buf_free(&path);
		status = luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t");
		free(text);
		lua_remove(L, -2);
	} else {
		const struct embedded_lua *m = embedded_lua;
		while (m->name && strcmp(m->name, name) != 0) m++;
		if (!m->name) luaL_error(L, "module '%s' not found (no such runtime module)", name);
		lua_pushfstring(L, "@%s", m->path);
		status = luaL_loadbufferx(L, m->text, m->len, lua_tostring(L, -1), "t");
		lua_remove(L, -2);
	}
	if (status != LUA_OK) lua_error(L);
}

/* require(name): only the runtime's entrasync.* modules, cached per state. */
static int sb_require(lua_State *L)
{
	struct script *s = script_of(L);
	const char *name = luaL_checkstring(L, 1);
	lua_settop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_loaded);          /* 2: loaded */
	lua_pushvalue(L, 1);
	if (lua_rawget(L, 2) != LUA_TNIL) return 1;
	lua_pop(L, 1);
	if (!module_name_ok(name))
		return luaL_error(L, "module '%s' is not available: policies may only require the runtime's "
		                  "entrasync.* modules", name);
	if (strcmp(name, "entrasync.json") == 0) {
		luajson_open(L, s->lim.json_depth, pattern_charge);
	} else if (strcmp(name, "entrasync.text") == 0) {
		luatext_open(L);
	} else {
		load_module_source(L, name);
		lua_pushvalue(L, 1);
		lua_call(L, 1, 1);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lua_pushboolean(L, 1);
		}
	}
	lua_pushvalue(L, 1);
	lua_pushvalue(L, -2);
	lua_rawset(L, 2);
	return 1;
}

/* Replaces _G[name] by a C closure whose upvalue is the original. */
static void wrap_global(lua_State *L, const char *name, lua_CFunction f)
{
	lua_getglobal(L, name);
	lua_pushcclosure(L, f, 1);
	lua_setglobal(L, name);
}

static void set_global_fn(lua_State *L, const char *name, lua_CFunction f)
{
	if (f) lua_pushcfunction(L, f);
	else lua_pushnil(L);
	lua_setglobal(L, name);
}

static void warn_to_log(void *ud, const char *msg, int tocont)
{
	struct script *s = ud;
	if (!tocont && !s->warn.len && msg[0] == '@') return;   /* control message */
	buf_adds(&s->warn, msg);
	if (!tocont) {
		log_warn("policy", "Lua warning: %s", s->warn.data);
		buf_reset(&s->warn);
	}
}

/* Builds the sandbox in a fresh state (runs protected: it allocates). */
static int sb_init(lua_State *L)
{
	struct script *s = script_of(L);
	static const luaL_Reg libs[] = {
		{ LUA_GNAME, luaopen_base }, { LUA_STRLIBNAME, luaopen_string }, { LUA_TABLIBNAME, luaopen_table },
		{ LUA_MATHLIBNAME, luaopen_math }, { LUA_UTF8LIBNAME, luaopen_utf8 }, { LUA_OSLIBNAME, luaopen_os },
	};
	for (size_t i = 0; i < ARRAY_LEN(libs); i++) {
		luaL_requiref(L, libs[i].name, libs[i].func, 1);
		lua_pop(L, 1);
	}
	/* base: remove file access and bytecode paths, wrap the rest */
	set_global_fn(L, "dofile", NULL);
	set_global_fn(L, "loadfile", NULL);
	set_global_fn(L, "warn", NULL);
	set_global_fn(L, "print", sb_print);
	set_global_fn(L, "pcall", sb_pcall);
	set_global_fn(L, "xpcall", sb_xpcall);
	set_global_fn(L, "collectgarbage", sb_collectgarbage);
	set_global_fn(L, "require", sb_require);
	wrap_global(L, "load", sb_load);
	set_global_fn(L, "setmetatable", sb_setmetatable);
	set_global_fn(L, "rawset", sb_rawset);
	/* string: no dump; patterns matched under the budget (lua_strpat.c); the
	 * string metatable is hidden from getmetatable */
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	luastrpat_install(L, -1, pattern_charge);
	lua_getglobal(L, LUA_TABLIBNAME);
	lua_getglobal(L, LUA_UTF8LIBNAME);
	luacostly_install(L, -3, -2, -1, pattern_charge);   /* C loops the count hook cannot see */
	lua_pop(L, 3);
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);
	/* os: time, date, clock only */
	lua_getglobal(L, LUA_OSLIBNAME);
	lua_createtable(L, 0, 3);
	static const char *const os_keep[] = { "time", "date", "clock" };
	for (size_t i = 0; i < ARRAY_LEN(os_keep); i++) {
		lua_getfield(L, -2, os_keep[i]);
		lua_setfield(L, -2, os_keep[i]);
	}
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, os_index);
	lua_setfield(L, -2, "__index");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_setglobal(L, LUA_OSLIBNAME);
	lua_pop(L, 1);
	/* the libraries' entries in the registry's _LOADED are not reachable
	 * from Lua (no package, no debug), so they need no trimming */

	/* registry slots and interned names */
	lua_newtable(L);
	s->ref_loaded = luaL_ref(L, LUA_REGISTRYINDEX);
	int *refs[] = { &s->ref_policy, &s->ref_include, &s->ref_contact };
	for (size_t i = 0; i < ARRAY_LEN(refs); i++) {
		lua_pushboolean(L, 0);
		*refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_newtable(L);                     /* t until script_set_tenant */
	s->ref_tenant = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_createtable(L, POLICY_NFIELDS + 1, 0);
	for (int i = 0; i < POLICY_NFIELDS; i++) {
		lua_pushstring(L, policy_contact_field_names[i]);
		s->field_key[i] = lua_tostring(L, -1);
		lua_rawseti(L, -2, i + 1);
	}
	lua_pushliteral(L, "customer_id");
	s->customer_id_key = lua_tostring(L, -1);
	lua_rawseti(L, -2, POLICY_NFIELDS + 1);
	s->ref_names = luaL_ref(L, LUA_REGISTRYINDEX);

	/* strict globals, with a hidden metatable so it cannot be removed */
	lua_pushglobaltable(L);
	lua_createtable(L, 0, 3);
	lua_pushcfunction(L, strict_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, strict_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_pop(L, 1);
	return 0;
}

static int sb_panic(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	log_error("script", "unprotected Lua error: %s", msg ? msg : "?");
	abort();
}

int script_new(const struct script_limits *limits, struct script **out, struct err *err)
{
	*out = NULL;
	struct script *s = xcalloc(1, sizeof *s);
	if (limits) s->lim = *limits;
	if (s->lim.instructions <= 0) s->lim.instructions = SCRIPT_DEFAULT_INSTRUCTIONS;
	if (!(s->lim.seconds > 0)) s->lim.seconds = SCRIPT_DEFAULT_SECONDS;
	if (s->lim.memory_bytes == 0) s->lim.memory_bytes = SCRIPT_DEFAULT_MEMORY;
	if (s->lim.json_depth <= 0) s->lim.json_depth = SCRIPT_DEFAULT_JSON_DEPTH;
	s->ref_policy = s->ref_include = s->ref_contact = s->ref_tenant = s->ref_loaded = s->ref_names = LUA_NOREF;
	s->lua_dir = g_lua_dir ? xstrdup(g_lua_dir) : NULL;
	s->L = lua_newstate(sb_alloc, s);
	if (!s->L) {
		char mb[32];
		format_bytes(s->lim.memory_bytes, mb, sizeof mb);
		pool_destroy(&s->pool);
		free(s->lua_dir);
		free(s);
		return err_set(err, "cannot create a Lua state (memory limit %s)", mb);
	}
	*(struct script **)lua_getextraspace(s->L) = s;
	lua_atpanic(s->L, sb_panic);
	lua_setwarnf(s->L, warn_to_log, s);
	lua_pushcfunction(s->L, sb_init);
	if (protected_call(s, 0, 0, "lua error", "while creating the sandbox", err) != 0) {
		script_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

static void policy_info_clear(struct policy_info *pi)
{
	free(pi->path);
	free(pi->name);
	free(pi->description);
	for (size_t i = 0; i < pi->ngroups; i++) free(pi->groups[i]);
	free(pi->groups);
	for (size_t i = 0; i < pi->ncreate_only; i++) free(pi->create_only[i]);
	free(pi->create_only);
	memset(pi, 0, sizeof *pi);
	pi->max_removals_count = -1;
	pi->max_removals_percent = -1;
}

void script_free(struct script *s)
{
	if (!s) return;
	if (s->L) lua_close(s->L);
	pool_destroy(&s->pool);
	policy_info_clear(&s->info);
	buf_free(&s->warn);
	free(s->lua_dir);
	free(s);
}

void script_set_print(struct script *s, enum script_print where)
{
	s->print = where;
}

enum script_fail script_last_fail(const struct script *s)
{
	return s->last_fail;
}

size_t script_memory_used(const struct script *s)
{
	return s->mem_used;
}

/* ---- running files ----------------------------------------------------- */

struct run_args {
	const char *path;
	int argc;
	char **argv;
};

/* Sets the global `arg` = { [0] = path, argv... } (rawset: strict globals). */
static int set_arg_table(lua_State *L)
{
	const struct run_args *a = lua_touserdata(L, 1);
	lua_pushglobaltable(L);
	lua_pushliteral(L, "arg");
	lua_createtable(L, a->argc, 1);
	lua_pushstring(L, a->path);
	lua_rawseti(L, -2, 0);
	for (int i = 0; i < a->argc; i++) {
		lua_pushstring(L, a->argv[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_rawset(L, -3);
	return 0;
}

/* Compiles text as a chunk named "@name" (text mode only) onto the stack.
 * As lua.c's loadfile: a UTF-8 byte order mark (Windows editors write one)
 * is skipped, and a first line starting with '#' (a shebang) is read as a
 * comment; line numbers stay those of the file. UTF-16 text is refused as
 * such (Lua would stop at its first byte with "unexpected symbol"). */
static int load_text(struct script *s, const char *text, size_t len, const char *name, struct err *err)
{
	char chunkname[1100];
	snprintf(chunkname, sizeof chunkname, "@%s", name);
	if (text_is_utf16(text, len)) {
		s->last_fail = SCRIPT_FAIL_ERROR;
		return err_set(err, "%s is UTF-16 text (Windows Notepad's \"Unicode\"): save it as UTF-8", name);
	}
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		text += 3;
		len -= 3;
	}
	if (len > 0 && text[0] == '#') {
		const char *nl = memchr(text, '\n', len);
		len -= nl ? (size_t)(nl - text) : len;
		text = nl ? nl : text + len;
	}
	int status = luaL_loadbufferx(s->L, text, len, chunkname, "t");
	if (status != LUA_OK) {
		const char *m = lua_tostring(s->L, -1);
		err_set(err, "%s", m ? m : "cannot load chunk");
		lua_pop(s->L, 1);
		s->last_fail = status == LUA_ERRMEM ? SCRIPT_FAIL_MEMORY : SCRIPT_FAIL_ERROR;
		return -1;
	}
	return 0;
}

int script_run_file(struct script *s, const char *path, int argc, char **argv, struct err *err)
{
	int rc = -1;
	char *text = NULL;
	size_t len = 0;
	if (file_read(path, &text, &len, err) != 0) {
		err_prefix(err, "cannot read Lua file");
		goto out;
	}
	/* skip a "#!" first line, keeping its newline so line numbers hold */
	size_t skip = 0;
	if (len && text[0] == '#')
		while (skip < len && text[skip] != '\n') skip++;
	struct run_args a = { path, argc, argv };
	lua_pushcfunction(s->L, set_arg_table);
	lua_pushlightuserdata(s->L, &a);
	if (protected_call(s, 1, 0, "lua error", NULL, err) != 0) goto out;
	if (load_text(s, text + skip, len - skip, path, err) != 0) goto out;
	luaL_checkstack(s->L, argc + 1, "arguments");
	for (int i = 0; i < argc; i++) lua_pushstring(s->L, argv[i]);
	rc = protected_call(s, argc, 0, "lua error", NULL, err);
out:
	free(text);
	return rc;
}

int script_run_string(struct script *s, const char *code, const char *name, struct err *err)
{
	if (load_text(s, code, strlen(code), name, err) != 0) return -1;
	return protected_call(s, 0, 0, "lua error", NULL, err);
}

/* ---- policy loading ---------------------------------------------------- */

enum key_type { K_STRING, K_STRINGS, K_FUNCTION, K_ON_LEAVE, K_MAX_REMOVALS };

static const struct policy_key {
	const char *name;
	enum key_type type;
	unsigned fn_bit;
} policy_keys[] = {
	{ "name", K_STRING, 0 },
	{ "description", K_STRING, 0 },
	{ "groups", K_STRINGS, 0 },
	{ "create_only", K_STRINGS, 0 },
	{ "include", K_FUNCTION, POLICY_FN_INCLUDE },
	{ "contact", K_FUNCTION, POLICY_FN_CONTACT },
	{ "on_leave", K_ON_LEAVE, POLICY_FN_ON_LEAVE },
	{ "license", K_FUNCTION, POLICY_FN_LICENSE },
	{ "secure_score", K_FUNCTION, POLICY_FN_SECURE_SCORE },
	{ "bill", K_FUNCTION, POLICY_FN_BILL },
	{ "protect", K_FUNCTION, POLICY_FN_PROTECT },
	{ "allow_action", K_FUNCTION, POLICY_FN_ALLOW_ACTION },
	{ "max_removals", K_MAX_REMOVALS, 0 },
};

/* The source text of the policy being validated, for srcmap lines. */
struct load_ctx {
	struct script *s;
	const char *path;
	const char *src;
	size_t len;
	struct policy_info info;
};

/* "file:line" (or "file" when the line is unknown) of a key path. */
static void key_place(const struct load_ctx *c, const char *const *path, size_t depth, char *out, size_t cap)
{
	int line = srcmap_key_line(c->src, c->len, path, depth);
	if (line > 0) snprintf(out, cap, "%s:%d", c->path, line);
	else snprintf(out, cap, "%s", c->path);
}

/* The nearest name in names[] to given (edit distance <= 2 and less than
 * half of it), or NULL. */
static const char *did_you_mean(const char *given, const char *const *names, size_t n, size_t stride)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		const char *cand = *(const char *const *)((const char *)names + i * stride);
		size_t d = str_edit_distance(given, cand);
		if (d < best_d) {
			best_d = d;
			best = cand;
		}
	}
	size_t gl = strlen(given);
	if (best && best_d <= 2 && best_d * 2 < (gl > 2 ? gl : 2) + 1) return best;
	return NULL;
}

static int bad_type(const struct load_ctx *c, const char *key, const char *want, const char *got, struct err *err)
{
	char place[1100];
	const char *path[] = { key };
	key_place(c, path, 1, place, sizeof place);
	return err_set(err, "%s: policy key '%s' must be %s, got %s", place, key, want, got);
}

/* A list of strings at idx (a sequence 1..n of strings) into *out. When
 * allowed is not NULL every item must be one of its n_allowed names. */
static int read_strings(const struct load_ctx *c, int idx, const char *key, char ***out, size_t *n,
                        const char *const *allowed, size_t n_allowed, struct err *err)
{
	lua_State *L = c->s->L;
	if (lua_type(L, idx) != LUA_TTABLE) return bad_type(c, key, "a list of strings", luaL_typename(L, idx), err);
	size_t len = (size_t)lua_rawlen(L, idx), count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		count++;
		lua_pop(L, 1);
	}
	if (count != len) return bad_type(c, key, "a list of strings", "a table with non-list keys", err);
	*out = xcalloc(len ? len : 1, sizeof **out);
	*n = 0;
	for (size_t i = 1; i <= len; i++) {
		lua_rawgeti(L, idx, (lua_Integer)i);
		if (lua_type(L, -1) != LUA_TSTRING) {
			char got[64];
			snprintf(got, sizeof got, "a %s at position %zu", luaL_typename(L, -1), i);
			lua_pop(L, 1);
			return bad_type(c, key, "a list of strings", got, err);
		}
		const char *v = lua_tostring(L, -1);
		if (allowed) {
			bool ok = false;
			for (size_t k = 0; k < n_allowed && !ok; k++) ok = strcmp(v, allowed[k]) == 0;
			if (!ok) {
				char place[1100];
				const char *path[] = { key };
				key_place(c, path, 1, place, sizeof place);
				const char *dym = did_you_mean(v, allowed, n_allowed, sizeof *allowed);
				err_set(err, "%s: policy key '%s': unknown contact field '%s'%s%s%s", place, key, v,
				        dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
				lua_pop(L, 1);
				return -1;
			}
		}
		(*out)[(*n)++] = xstrdup(v);
		lua_pop(L, 1);
	}
	return 0;
}

static int read_max_removals(struct load_ctx *c, int idx, struct err *err)
{
	lua_State *L = c->s->L;
	if (lua_type(L, idx) != LUA_TTABLE)
		return bad_type(c, "max_removals", "a table { count = N, percent = P }", luaL_typename(L, idx), err);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		char place[1100];
		const char *path[] = { "max_removals", k ? k : "" };
		key_place(c, path, k ? 2 : 1, place, sizeof place);
		if (k && strcmp(k, "count") == 0) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0) {
				lua_pop(L, 2);
				return err_set(err, "%s: max_removals.count must be an integer >= 0", place);
			}
			c->info.max_removals_count = lua_tointeger(L, -1);
		} else if (k && strcmp(k, "percent") == 0) {
			double p = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
			if (!(p >= 0 && p <= 100)) {
				lua_pop(L, 2);
				return err_set(err, "%s: max_removals.percent must be a number from 0 to 100", place);
			}
			c->info.max_removals_percent = p;
		} else {
			static const char *const sub[] = { "count", "percent" };
			const char *dym = k ? did_you_mean(k, sub, 2, sizeof *sub) : NULL;
			lua_pop(L, 2);
			return err_set(err, "%s: unknown key '%s' in max_removals (count, percent)%s%s%s", place,
			               k ? k : "(not a string)", dym ? " (did you mean '" : "", dym ? dym : "",
			               dym ? "'?)" : "");
		}
		lua_pop(L, 1);
	}
	return 0;
}

/* "file:line" where the function at idx is defined. */
static void function_place(lua_State *L, int idx, char *out, size_t cap)
{
	lua_Debug ar;
	lua_pushvalue(L, idx);
	if (!lua_getinfo(L, ">S", &ar)) snprintf(out, cap, "?");
	else if (ar.source[0] == '@') snprintf(out, cap, "%s:%d", ar.source + 1, ar.linedefined);
	else snprintf(out, cap, "%s:%d", ar.short_src, ar.linedefined);
}

/* Validates the policy table at idx into c->info (no Lua code runs: raw
 * access only, and nothing here allocates in the Lua state). */
static int validate_policy(struct load_ctx *c, int idx, struct err *err)
{
	lua_State *L = c->s->L;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int v = lua_gettop(L);
		if (lua_type(L, -2) != LUA_TSTRING) {
			char k[64];
			if (lua_isinteger(L, -2)) snprintf(k, sizeof k, "[%lld]", (long long)lua_tointeger(L, -2));
			else snprintf(k, sizeof k, "(a %s key)", luaL_typename(L, -2));
			lua_pop(L, 2);
			return err_set(err, "%s: unexpected item %s in policy table (policy keys are names like include = ...)",
			               c->path, k);
		}
		const char *k = lua_tostring(L, -2);
		const struct policy_key *pk = NULL;
		for (size_t i = 0; i < ARRAY_LEN(policy_keys) && !pk; i++)
			if (strcmp(k, policy_keys[i].name) == 0) pk = &policy_keys[i];
		if (!pk) {
			char place[1100];
			const char *path[] = { k };
			key_place(c, path, 1, place, sizeof place);
			const char *dym = did_you_mean(k, &policy_keys[0].name, ARRAY_LEN(policy_keys), sizeof *policy_keys);
			err_set(err, "%s: unknown key '%s' in policy table%s%s%s", place, k, dym ? " (did you mean '" : "",
			        dym ? dym : "", dym ? "'?)" : "");
			lua_pop(L, 2);
			return -1;
		}
		int rc = 0;
		int t = lua_type(L, v);
		switch (pk->type) {
		case K_STRING:
			if (t != LUA_TSTRING) rc = bad_type(c, k, "a string", luaL_typename(L, v), err);
			else if (strcmp(k, "name") == 0) c->info.name = xstrdup(lua_tostring(L, v));
			else c->info.description = xstrdup(lua_tostring(L, v));
			break;
		case K_STRINGS:
			if (strcmp(k, "groups") == 0)
				rc = read_strings(c, v, k, &c->info.groups, &c->info.ngroups, NULL, 0, err);
			else
				rc = read_strings(c, v, k, &c->info.create_only, &c->info.ncreate_only,
				                  policy_contact_field_names, POLICY_NFIELDS, err);
			break;
		case K_FUNCTION:
			if (t != LUA_TFUNCTION) rc = bad_type(c, k, "a function", luaL_typename(L, v), err);
			else c->info.functions |= pk->fn_bit;
			break;
		case K_ON_LEAVE:
			if (t == LUA_TFUNCTION) {
				c->info.on_leave = POLICY_ON_LEAVE_FUNCTION;
				c->info.functions |= pk->fn_bit;
			} else if (t == LUA_TSTRING && strcmp(lua_tostring(L, v), "keep") == 0) {
				c->info.on_leave = POLICY_ON_LEAVE_KEEP;
			} else if (t == LUA_TSTRING && strcmp(lua_tostring(L, v), "delete") == 0) {
				c->info.on_leave = POLICY_ON_LEAVE_DELETE;
			} else {
				char got[96];
				if (t == LUA_TSTRING) snprintf(got, sizeof got, "\"%.60s\"", lua_tostring(L, v));
				else snprintf(got, sizeof got, "%s", luaL_typename(L, v));
				rc = bad_type(c, k, "a function, \"keep\" or \"delete\"", got, err);
			}
			break;
		case K_MAX_REMOVALS:
			rc = read_max_removals(c, v, err);
			break;
		}
		lua_settop(L, v - 1);
		if (rc != 0) {
			lua_pop(L, 1);
			return rc;
		}
	}
	return 0;
}

int script_policy_load(struct script *s, const char *path, struct err *err)
{
	char *src = NULL;
	size_t len = 0;
	if (snapshot_file_read(path, &src, &len, err) != 0) {
		/* a failed load leaves no policy loaded */
		s->have_policy = false;
		policy_info_clear(&s->info);
		return err_prefix(err, "cannot read policy");
	}
	int rc = script_policy_load_text(s, path, src, len, err);
	free(src);
	return rc;
}

int script_policy_load_text(struct script *s, const char *path, const char *src, size_t len, struct err *err)
{
	int rc = -1;
	lua_State *L = s->L;
	int top = lua_gettop(L);
	struct load_ctx c = { .s = s, .path = path, .src = src, .len = len };
	c.info.max_removals_count = -1;
	c.info.max_removals_percent = -1;
	/* a failed load leaves no policy loaded */
	s->have_policy = false;
	policy_info_clear(&s->info);
	if (load_text(s, src, len, path, err) != 0) goto out;
	if (protected_call(s, 0, 1, "policy error", NULL, err) != 0) goto out;
	if (!lua_istable(L, -1)) {
		err_set(err, "%s: the policy must return a table, got %s", path, luaL_typename(L, -1));
		goto out;
	}
	int idx = lua_gettop(L);
	if (validate_policy(&c, idx, err) != 0) goto out;
	/* keep the table and its functions (stores into existing registry slots) */
	lua_pushvalue(L, idx);
	lua_rawseti(L, LUA_REGISTRYINDEX, s->ref_policy);
	lua_pushliteral(L, "include");
	lua_rawget(L, idx);
	if (lua_isfunction(L, -1)) function_place(L, -1, s->include_where, sizeof s->include_where);
	lua_rawseti(L, LUA_REGISTRYINDEX, s->ref_include);
	lua_pushliteral(L, "contact");
	lua_rawget(L, idx);
	if (lua_isfunction(L, -1)) function_place(L, -1, s->contact_where, sizeof s->contact_where);
	lua_rawseti(L, LUA_REGISTRYINDEX, s->ref_contact);
	c.info.path = xstrdup(path);
	s->info = c.info;
	memset(&c.info, 0, sizeof c.info);
	s->have_policy = true;
	rc = 0;
out:
	if (rc != 0) policy_info_clear(&c.info);
	lua_settop(L, top);
	return rc;
}

const struct policy_info *script_policy_info(const struct script *s)
{
	return s->have_policy ? &s->info : NULL;
}

/* ---- tenant and evaluation --------------------------------------------- */

static void set_string_field(lua_State *L, const char *k, const char *v)
{
	if (!v) return;
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

struct tenant_arg {
	const struct script_tenant *t;
};

static int build_tenant(lua_State *L)
{
	struct script *s = script_of(L);
	const struct script_tenant *t = ((const struct tenant_arg *)lua_touserdata(L, 1))->t;
	lua_createtable(L, 0, 4);
	set_string_field(L, "id", t->id);
	set_string_field(L, "name", t->name);
	set_string_field(L, "default_domain", t->default_domain);
	if (t->syncro_customer_id) {
		lua_pushinteger(L, t->syncro_customer_id);
		lua_setfield(L, -2, "syncro_customer_id");
	}
	lua_rawseti(L, LUA_REGISTRYINDEX, s->ref_tenant);
	return 0;
}

int script_set_tenant(struct script *s, const struct script_tenant *t, struct err *err)
{
	struct tenant_arg a = { t };
	lua_pushcfunction(s->L, build_tenant);
	lua_pushlightuserdata(s->L, &a);
	return protected_call(s, 1, 0, "lua error", "while building the tenant table", err);
}

struct eval_ctx {
	struct script *s;
	const struct policy_user *user;
	const cJSON *graph;
	struct luajson_synth synth;    /* u's computed members (lazy users) */
	struct policy_decision *out;
	struct err *err;
	int rc;
	/* script_policy_verdict: the hook, its first argument or NULL, its
	 * "in NAME()", and its answer (reason owned) */
	const char *hook, *lead, *what;
	const struct policy_requester *req;   /* verdict: a fourth argument, or NULL */
	bool yes;
	char *reason;
};

/* Pushes the lower-cased domain of the address at idx, or returns 0. */
static int push_domain(lua_State *L, int idx)
{
	if (lua_type(L, idx) != LUA_TSTRING) return 0;
	size_t len;
	const char *a = lua_tolstring(L, idx, &len);
	const char *at = memrchr(a, '@', len);
	if (!at || at + 1 == a + len) return 0;
	size_t n = (size_t)(a + len - at - 1);
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, n);
	for (size_t i = 0; i < n; i++) {
		char ch = at[1 + i];
		p[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	luaL_pushresultsize(&b, n);
	return 1;
}

/* u.licenses from the user table at u: one { sku_id, part, name } per item
 * of u.assignedLicenses with a string skuId, part and name from the SKU
 * table; an unknown SKU gets its id for both. */
static void push_licenses(lua_State *L, int u)
{
	luaL_checkstack(L, 8, "u.licenses");
	lua_getfield(L, u, "assignedLicenses");
	int al = lua_gettop(L);
	lua_Integer n = lua_type(L, al) == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, al) : 0;
	lua_createtable(L, (int)(n < 64 ? n : 64), 0);
	int out = al + 1;
	lua_Integer k = 0;
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, al, i) == LUA_TTABLE && lua_getfield(L, -1, "skuId") == LUA_TSTRING) {
			const char *id = lua_tostring(L, -1);
			const struct sku_info *si = skus_find(id);
			lua_createtable(L, 0, 3);
			lua_pushvalue(L, -2);
			lua_setfield(L, -2, "sku_id");
			lua_pushstring(L, si ? si->part_number : id);
			lua_setfield(L, -2, "part");
			lua_pushstring(L, skus_friendly_name(id, si ? si->part_number : NULL));
			lua_setfield(L, -2, "name");
			lua_rawseti(L, out, ++k);
		}
		lua_settop(L, out);
	}
	lua_remove(L, al);
}

/* The members script.c adds to every user table (see script.h). */
enum { USER_DOMAIN, USER_GROUPS, USER_LICENSES, USER_NSYNTH };
static const char *const user_synth_names[USER_NSYNTH] = { "domain", "groups", "licenses" };

/* luajson_synth's push: member i of user table u (ud: the eval_ctx). */
static void push_user_synth(lua_State *L, int u, unsigned i, void *ud)
{
	const struct policy_user *in = ((const struct eval_ctx *)ud)->user;
	u = lua_absindex(L, u);
	switch (i) {
	case USER_DOMAIN: {
		int top = lua_gettop(L);
		lua_getfield(L, u, "mail");
		if (!push_domain(L, -1)) {
			lua_getfield(L, u, "userPrincipalName");
			if (!push_domain(L, -1)) lua_pushnil(L);
		}
		lua_replace(L, top + 1);
		lua_settop(L, top + 1);
		return;
	}
	case USER_GROUPS:
		lua_createtable(L, 0, (int)in->ngroups);
		for (size_t g = 0; g < in->ngroups; g++) {
			lua_pushstring(L, in->groups[g]);
			lua_pushboolean(L, 1);
			lua_rawset(L, -3);
		}
		return;
	case USER_LICENSES:
		push_licenses(L, u);
		return;
	}
	lua_pushnil(L);
}

/* Pushes the user table u (see struct policy_user). Runs before any policy
 * code, with the error kind "user", so malformed JSON fails as "user:
 * invalid JSON ...". From text u is lazy; from a cJSON object its members
 * are converted now; its computed members are made when read, either way. */
static void push_user(lua_State *L, struct eval_ctx *c)
{
	const struct policy_user *in = c->user;
	c->synth = (struct luajson_synth){ user_synth_names, USER_NSYNTH, push_user_synth, c };
	if (!c->graph) {
		luajson_push_user(L, in->json ? in->json : "", in->json ? in->len : 0, c->s->lim.json_depth, &c->synth);
		return;
	}
	if (!cJSON_IsObject(c->graph)) luaL_error(L, "the user must be a JSON object");
	luajson_push(L, c->graph, c->s->lim.json_depth, LUAJSON_NULL_ABSENT, USER_NSYNTH);
	luajson_user_synth(L, -1, &c->synth);
}
/* Calls policy function fn(..., u, t) (the function and its nargs
 * arguments are pushed by the caller) with a fresh budget; errors propagate
 * to protected_call. */
static void call_policy_function(struct script *s, const char *what, int nargs, int nresults)
{
	s->what = what;
	budget_reset(s);
	lua_call(s->L, nargs, nresults);
}

static int contact_field(const struct script *s, const char *k)
{
	for (int i = 0; i < POLICY_NFIELDS; i++)
		if (k == s->field_key[i]) return i;           /* interned: same pointer */
	if (k == s->customer_id_key) return POLICY_NFIELDS;
	for (int i = 0; i < POLICY_NFIELDS; i++)
		if (strcmp(k, policy_contact_field_names[i]) == 0) return i;
	if (strcmp(k, "customer_id") == 0) return POLICY_NFIELDS;
	return -1;
}

/* Reads contact()'s table at idx into pointers into Lua strings (valid while
 * the table is on the stack). Returns 0, or -1 with c->err filled. */
static int read_contact(struct eval_ctx *c, int idx, const char **val, size_t *vlen)
{
	struct script *s = c->s;
	lua_State *L = s->L;
	if (!lua_istable(L, idx))
		return err_set(c->err, "%s: contact() must return a table of contact fields, got %s", s->contact_where,
		               luaL_typename(L, idx));
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			const char *tn = luaL_typename(L, -2);
			return err_set(c->err, "%s: contact() returned a table with a %s key (fields are names like email)",
			               s->contact_where, tn);
		}
		const char *k = lua_tostring(L, -2);
		int f = contact_field(s, k);
		int t = lua_type(L, -1);
		if (f < 0) {
			const char *dym = did_you_mean(k, policy_contact_field_names, POLICY_NFIELDS, sizeof(char *));
			return err_set(c->err, "%s: unknown contact field '%s'%s%s%s", s->contact_where, k,
			               dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
		}
		if (f == POLICY_NFIELDS) {
			int isnum = 0;
			lua_Integer id = lua_tointegerx(L, -1, &isnum);   /* integers, integral floats, digit strings */
			if (!isnum || id < 0)
				return err_set(c->err, "%s: contact field 'customer_id' must be a positive integer, got %s",
				               s->contact_where, luaL_typename(L, -1));
			c->out->customer_id = id;
		} else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
			if (t == LUA_TNUMBER && !lua_isinteger(L, -1) && !isfinite((double)lua_tonumber(L, -1)))
				return err_set(c->err, "%s: contact field '%s' is %s: not a value for Syncro", s->contact_where, k,
				               isnan((double)lua_tonumber(L, -1)) ? "NaN" : "infinite");
			val[f] = lua_tolstring(L, -1, &vlen[f]);   /* converts a number in the value slot */
			char why[96];
			if (!policy_field_value_ok(f, val[f], vlen[f], why, sizeof why))
				return err_set(c->err, "%s: contact field '%s' %s", s->contact_where, k, why);
		} else {
			return err_set(c->err, "%s: contact field '%s' must be a string, got %s", s->contact_where, k,
			               luaL_typename(L, -1));
		}
		lua_pop(L, 1);
	}
	return 0;
}

/* Copies the reason and the fields into one owned block. */
static void decision_fill(struct policy_decision *d, const char *reason, size_t rlen, const char **val,
                          const size_t *vlen)
{
	size_t total = reason ? rlen + 1 : 0;
	for (int i = 0; i < POLICY_NFIELDS; i++)
		if (val[i]) total += vlen[i] + 1;
	if (!total) return;
	char *p = d->block = xmalloc(total);
	if (reason) {
		memcpy(p, reason, rlen + 1);
		d->reason = p;
		p += rlen + 1;
	}
	for (int i = 0; i < POLICY_NFIELDS; i++) {
		if (!val[i]) continue;
		memcpy(p, val[i], vlen[i]);      /* Lua strings or the user's text: no NUL of their own */
		p[vlen[i]] = '\0';
		d->field[i] = p;
		p += vlen[i] + 1;
	}
}

/* Reads the answer of a verdict function (include, protect, allow_action):
 * true or false at idx [, a reason at idx + 1, string or number]; nil
 * counts as false when nil_false. name and where ("file:line" of its
 * definition) word the errors. Sets *yes and *reason (a Lua string, valid
 * while it is on the stack, or NULL); else sets c->rc/c->err and returns
 * -1. */
static int read_verdict(struct eval_ctx *c, int idx, const char *name, const char *where, bool nil_false,
                        bool *yes, const char **reason, size_t *rlen)
{
	lua_State *L = c->s->L;
	if (!lua_isboolean(L, idx) && !(nil_false && lua_isnil(L, idx)))
		return c->rc = err_set(c->err, "%s: %s() must return true or false [, reason], got %s", where, name,
		                       luaL_typename(L, idx));
	*yes = lua_toboolean(L, idx);
	*reason = NULL;
	*rlen = 0;
	int rt = lua_type(L, idx + 1);
	if (rt == LUA_TSTRING || rt == LUA_TNUMBER)
		*reason = lua_tolstring(L, idx + 1, rlen);
	else if (rt != LUA_TNIL)
		return c->rc = err_set(c->err, "%s: %s()'s reason must be a string, got %s", where, name,
		                       luaL_typename(L, idx + 1));
	return 0;
}

/* Runs include and contact for one user (inside protected_call). Policy
 * errors raise; contract violations of the results set c->rc/c->err. */
static int eval_user(lua_State *L)
{
	struct eval_ctx *c = lua_touserdata(L, 1);
	struct script *s = c->s;
	luaL_checkstack(L, 10, "policy evaluation");
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_include);
	lua_replace(L, 1);                                         /* 1 include */
	s->kind = "user";
	s->what = NULL;
	push_user(L, c);                                           /* 2 u */
	s->kind = "policy error";
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_tenant);         /* 3 t */
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	call_policy_function(s, "in include()", 2, 2);           /* 4 verdict, 5 reason */
	const char *reason = NULL;
	size_t rlen = 0;
	if (read_verdict(c, 4, "include", s->include_where, false, &c->out->include, &reason, &rlen) != 0) return 0;
	const char *val[POLICY_NFIELDS] = { 0 };
	size_t vlen[POLICY_NFIELDS] = { 0 };
	if (c->out->include && (s->info.functions & POLICY_FN_CONTACT)) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_contact);
		/* contact = p.contact on an unchanged lazy user: straight from the
		 * text (the same contact, no Lua values; see lua_contact.h) */
		if (lua_tocfunction(L, -1) == luacontact_lua && luacontact_fast(L, 2, val, vlen)) {
			decision_fill(c->out, reason, rlen, val, vlen);
			return 0;
		}
		lua_pushvalue(L, 2);
		lua_pushvalue(L, 3);
		call_policy_function(s, "in contact()", 2, 1);       /* 6 contact table */
		if (read_contact(c, 6, val, vlen) != 0) {
			c->rc = -1;
			return 0;
		}
	}
	decision_fill(c->out, reason, rlen, val, vlen);
	return 0;
}

void policy_decision_free(struct policy_decision *d)
{
	if (!d) return;
	free(d->block);
	memset(d, 0, sizeof *d);
}

int script_policy_eval(struct script *s, const struct policy_user *user, struct policy_decision *out,
                       struct err *err)
{
	int rc = -1;
	memset(out, 0, sizeof *out);
	if (!s->have_policy) return err_set(err, "no policy loaded");
	if (!(s->info.functions & POLICY_FN_INCLUDE))
		return err_set(err, "%s: the policy has no include function", s->info.path);
	struct eval_ctx c = { .s = s, .user = user, .graph = user->graph, .out = out, .err = err };
	lua_pushcfunction(s->L, eval_user);
	lua_pushlightuserdata(s->L, &c);
	int called = protected_call(s, 1, 0, "user", NULL, err);
	luajson_user_release(s->L);   /* the text is the caller's: u must not outlive this call */
	if (called != 0) goto out;
	if (c.rc != 0) {
		s->last_fail = SCRIPT_FAIL_ERROR;
		log_redact_err(err);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) policy_decision_free(out);
	return rc;
}

/* ---- generic policy calls (license, secure_score, ...) ------------------ */

struct named_call {
	struct script *s;
	const char *name;
	const cJSON *const *args;
	size_t nargs;
	cJSON *result;
	struct err *err;
	int rc;
};

/* On an empty stack: 1 the policy table, 2 its function `name` (raw
 * lookup). Returns 0, or -1 with err filled when there is no such function. */
static int push_policy_function(struct script *s, const char *name, struct err *err)
{
	lua_State *L = s->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_policy);
	lua_pushstring(L, name);
	lua_rawget(L, 1);
	if (!lua_isfunction(L, 2)) return err_set(err, "%s: the policy has no %s function", s->info.path, name);
	return 0;
}

/* Pushes c's arguments (JSON values as Lua values, null object members
 * left out, NULL as nil) and then the tenant table t. */
static void push_call_args(const struct named_call *c)
{
	lua_State *L = c->s->L;
	for (size_t i = 0; i < c->nargs; i++) {
		if (c->args[i]) luajson_push(L, c->args[i], c->s->lim.json_depth, LUAJSON_NULL_ABSENT, 0);
		else lua_pushnil(L);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->s->ref_tenant);
}

static int call_named(lua_State *L)
{
	struct named_call *c = lua_touserdata(L, 1);
	struct script *s = c->s;
	lua_settop(L, 0);
	luaL_checkstack(L, (int)c->nargs + 4, "policy call");
	if (push_policy_function(s, c->name, c->err) != 0) {      /* 1 the policy table, 2 the function */
		c->rc = -1;
		return 0;
	}
	push_call_args(c);
	budget_reset(s);
	lua_call(L, (int)c->nargs + 1, 1);
	if (!lua_isnil(L, -1)) {
		c->result = luajson_to_cjson(L, -1, s->lim.json_depth, c->err);
		if (!c->result) c->rc = -1;
	}
	return 0;
}

int script_policy_call(struct script *s, const char *name, const cJSON *const *args, size_t nargs,
                       cJSON **result, struct err *err)
{
	char what[80];
	*result = NULL;
	if (!s->have_policy) return err_set(err, "no policy loaded");
	struct named_call c = { .s = s, .name = name, .args = args, .nargs = nargs, .err = err };
	snprintf(what, sizeof what, "in %s()", name);
	lua_pushcfunction(s->L, call_named);
	lua_pushlightuserdata(s->L, &c);
	if (protected_call(s, 1, 0, "policy error", what, err) != 0 || c.rc != 0) {
		if (c.rc != 0) {   /* the answer could not be read (NaN, a NUL byte...): say whose */
			s->last_fail = SCRIPT_FAIL_ERROR;
			if (!str_starts(err->msg, "policy error")) err_prefix(err, "policy error %s: its answer", what);
			log_redact_err(err);
		}
		cJSON_Delete(c.result);
		return -1;
	}
	*result = c.result;
	return 0;
}

/* ---- table hooks (bill) ------------------------------------------------- */

struct table_call {
	struct named_call call;        /* the hook, its arguments, *result and the contract's rc/err */
	const char *what;              /* "in bill()" */
	bool declined;                 /* the hook answered false */
	char *where;                   /* the hook's "file:line" (where_cap bytes), or NULL */
	size_t where_cap;
};

/* Calls hook(args..., t) (inside protected_call) and reads its answer: a
 * table (converted to JSON), nil or false. As call_verdict: policy errors
 * raise, contract violations set rc/err. */
static int call_table(lua_State *L)
{
	struct table_call *tc = lua_touserdata(L, 1);
	struct named_call *c = &tc->call;
	struct script *s = c->s;
	lua_settop(L, 0);
	luaL_checkstack(L, (int)c->nargs + 4, "policy hook");
	if (push_policy_function(s, c->name, c->err) != 0) {      /* 1 the policy table, 2 the hook */
		c->rc = -1;
		return 0;
	}
	char where[300];
	function_place(L, 2, where, sizeof where);
	if (tc->where) snprintf(tc->where, tc->where_cap, "%s", where);
	push_call_args(c);
	call_policy_function(s, tc->what, (int)c->nargs + 1, 1); /* 2 the answer */
	int t = lua_type(L, 2);
	if (t == LUA_TNIL) return 0;
	if (t == LUA_TBOOLEAN && !lua_toboolean(L, 2)) {
		tc->declined = true;
		return 0;
	}
	if (t != LUA_TTABLE) {
		c->rc = err_set(c->err, "%s: %s() must return a table, nil or false, got %s", where, c->name,
		                luaL_typename(L, 2));
		return 0;
	}
	struct err why;
	c->result = luajson_to_cjson(L, 2, s->lim.json_depth, &why);
	if (!c->result) c->rc = err_set(c->err, "%s: %s() returned a table that is not JSON: %s", where, c->name, why.msg);
	return 0;
}

int script_policy_table(struct script *s, const char *hook, const cJSON *const *args, size_t nargs, cJSON **table,
                        bool *declined, char *where, size_t where_cap, struct err *err)
{
	char what[80];
	*table = NULL;
	*declined = false;
	if (where && where_cap) where[0] = '\0';
	if (!s->have_policy) return err_set(err, "no policy loaded");
	snprintf(what, sizeof what, "in %s()", hook);
	struct table_call tc = { .call = { .s = s, .name = hook, .args = args, .nargs = nargs, .err = err },
	                         .what = what, .where = where_cap ? where : NULL, .where_cap = where_cap };
	lua_pushcfunction(s->L, call_table);
	lua_pushlightuserdata(s->L, &tc);
	if (protected_call(s, 1, 0, "policy error", what, err) != 0) {
		cJSON_Delete(tc.call.result);
		return -1;
	}
	if (tc.call.rc != 0) {
		s->last_fail = SCRIPT_FAIL_ERROR;
		log_redact_err(err);
		cJSON_Delete(tc.call.result);
		return -1;
	}
	*table = tc.call.result;
	*declined = tc.declined;
	return 0;
}

/* ---- verdict hooks (protect, allow_action) ------------------------------ */

/* Calls hook([lead,] u, t) for one user (inside protected_call) and reads
 * its verdict. As eval_user: policy errors raise, contract violations set
 * c->rc/c->err. */
static int call_verdict(lua_State *L)
{
	struct eval_ctx *c = lua_touserdata(L, 1);
	struct script *s = c->s;
	lua_settop(L, 0);
	luaL_checkstack(L, 10, "policy hook");
	if (push_policy_function(s, c->hook, c->err) != 0) {      /* 1 the policy table, 2 the hook */
		c->rc = -1;
		return 0;
	}
	char where[300];
	function_place(L, 2, where, sizeof where);
	if (c->lead) lua_pushstring(L, c->lead);
	s->kind = "user";                                          /* "user in protect(): invalid JSON ..." */
	push_user(L, c);
	s->kind = "policy error";
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_tenant);
	if (c->req) {                                              /* who asked: { contact_id, self, user_id, mail, upn } */
		lua_createtable(L, 0, 5);
		lua_pushinteger(L, (lua_Integer)c->req->contact_id);
		lua_setfield(L, -2, "contact_id");
		lua_pushboolean(L, c->req->self);
		lua_setfield(L, -2, "self");
		if (c->req->user_id) lua_pushstring(L, c->req->user_id), lua_setfield(L, -2, "user_id");
		if (c->req->mail) lua_pushstring(L, c->req->mail), lua_setfield(L, -2, "mail");
		if (c->req->upn) lua_pushstring(L, c->req->upn), lua_setfield(L, -2, "upn");
	}
	int nargs = lua_gettop(L) - 2;
	call_policy_function(s, c->what, nargs, 2);               /* 2 verdict, 3 reason */
	const char *reason = NULL;
	size_t rlen = 0;
	if (read_verdict(c, 2, c->hook, where, true, &c->yes, &reason, &rlen) != 0) return 0;
	if (reason) c->reason = xstrdup(reason);                   /* nothing raises after this */
	return 0;
}

int script_policy_verdict(struct script *s, const char *hook, const char *lead, const struct policy_user *user,
                          bool *yes, char **reason, struct err *err)
{
	return script_policy_verdict_by(s, hook, lead, user, NULL, yes, reason, err);
}

int script_policy_verdict_by(struct script *s, const char *hook, const char *lead, const struct policy_user *user,
                             const struct policy_requester *req, bool *yes, char **reason, struct err *err)
{
	char what[80];
	*yes = false;
	*reason = NULL;
	if (!s->have_policy) return err_set(err, "no policy loaded");
	snprintf(what, sizeof what, "in %s()", hook);
	struct eval_ctx c = { .s = s, .user = user, .graph = user->graph, .err = err, .hook = hook, .lead = lead,
	                      .what = what, .req = req };
	lua_pushcfunction(s->L, call_verdict);
	lua_pushlightuserdata(s->L, &c);
	int called = protected_call(s, 1, 0, "policy error", what, err);
	luajson_user_release(s->L);   /* the text is the caller's: u must not outlive this call */
	if (called != 0) return -1;
	if (c.rc != 0) {
		s->last_fail = SCRIPT_FAIL_ERROR;
		log_redact_err(err);
		return -1;
	}
	*yes = c.yes;
	*reason = c.reason;
	return 0;
}
