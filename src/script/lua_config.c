/* lua_config — the config loader (config_load, see config.h). Runs the
 * trusted config file in its own plain Lua state (base, string, table,
 * math and env()), then walks the tables it set and fills struct config,
 * reporting every problem with file:line (lines come from srcmap, since Lua
 * keeps none for table fields). Part of the scripting layer only because it
 * includes lua.h; it shares no state with the policy sandbox (script.c).
 * The file is the operator's, trusted as the command line is, but a mistake
 * in it must end in a message naming its line, never in a hung daemon: the
 * chunk runs under an instruction budget and a memory cap, in one protected
 * call with a traceback, and cannot set a __gc metamethod (so no Lua runs
 * once the chunk has returned). */
#include "util/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "util/log.h"
#include "util/snapshot.h"
#include "util/srcmap.h"

/* Lua names the chunk this in its messages; they are rewritten to the path. */
#define CHUNK_TAG "entrasync-config"

/* The limits of running the config file: far above what a config of 50,000
 * tenants needs (measured: ~0.5 M instructions, 22 MiB of Lua memory). */
#define CONFIG_INSTRUCTIONS 100000000L
#define CONFIG_MEMORY ((size_t)256 << 20)
#define CONFIG_HOOK_STEP 10000
static long run_instructions = CONFIG_INSTRUCTIONS;
static size_t run_memory = CONFIG_MEMORY;

void config_set_run_limits(long instructions, size_t memory_bytes)
{
	run_instructions = instructions > 0 ? instructions : CONFIG_INSTRUCTIONS;
	run_memory = memory_bytes > 0 ? memory_bytes : CONFIG_MEMORY;
}

struct problem {
	int line;          /* 0 = no line known */
	size_t seq;        /* order found, to keep the sort stable */
	char *msg;         /* without the "file:line: " prefix */
};

struct loader {
	const char *path;  /* the config file as given: prefix of every message */
	const char *src;   /* its text, for srcmap */
	size_t len;
	struct srcmap *map; /* src tokenized once, on first use (owned) */
	lua_State *L;
	struct config *cfg;
	unsigned flags;
	/* while the chunk runs (limits_on): Lua memory in use and the
	 * instructions run, counted by the hook in CONFIG_HOOK_STEP steps */
	bool limits_on;
	size_t mem_used;
	long executed;
	bool over_budget;  /* the budget ran out: every instruction raises */
	int over_budget_line; /* the line running then */
	int over_memory_line; /* line of the Lua code whose allocation was refused; -1 = none yet */
	int default_policy_bad;   /* the top-level policy had a problem (already reported) */
	struct problem *probs;
	size_t nprobs;
};

/* A table of the config: how messages name it and where srcmap finds it. */
struct scope {
	char label[32];    /* "graph", "tenants[2]"; "" at the top level */
	const char *path[2];
	size_t depth;
	char item[24];     /* storage for a "#N" path element */
};

static const char *const top_keys[] = { "database", "graph", "syncro", "policy", "tenants", "csp", "limits",
	"actions", "billing", "alerts", "retention", NULL };
static const char *const graph_keys[] = { "client_id", "client_secret", "certificate", "private_key",
	"authority", "endpoint", "ca_file", "jwt_alg", "pull_workers", "outage_seconds", "timeout_seconds", NULL };
static const char *const syncro_keys[] = { "base_url", "subdomain", "api_key", "requests_per_minute", "ca_file",
                                           "outage_seconds", "timeout_seconds", NULL };
static const char *const tenant_keys[] = { "id", "name", "syncro_customer_id", "syncro_customer", "policy",
	"billing_schedule", NULL };
static const char *const csp_keys[] = { "partner_tenant", NULL };
static const char *const limits_keys[] = { "instructions", "memory_mb", "seconds", NULL };
static const char *const actions_keys[] = { "ticket_problem_type", "ticket_status_done", "ticket_status_failed", NULL };
static const char *const billing_keys[] = { "schedule", "on_removed", "max_decrease", "schedules_on_sync", NULL };
static const char *const max_decrease_keys[] = { "count", "percent", NULL };
static const char *const alerts_keys[] = { "enabled", "problem_type", "subject_prefix", "unused_days",
	                                           "failing_hours", NULL };
static const char *const retention_keys[] = { "runs_days", "audit_days", "score_detail_days", NULL };

static void problem(struct loader *ld, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(struct loader *ld, int line, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	ld->probs = xrealloc(ld->probs, (ld->nprobs + 1) * sizeof *ld->probs);
	ld->probs[ld->nprobs] = (struct problem){ line, ld->nprobs, buf_steal(&b) };
	ld->nprobs++;
}

static void scope_init(struct scope *sc, const char *name)
{
	memset(sc, 0, sizeof *sc);
	if (!name) return;
	snprintf(sc->label, sizeof sc->label, "%s", name);
	sc->path[0] = name;
	sc->depth = 1;
}

static void scope_tenant(struct scope *sc, size_t index)
{
	scope_init(sc, "tenants");
	snprintf(sc->label, sizeof sc->label, "tenants[%zu]", index);
	snprintf(sc->item, sizeof sc->item, "#%zu", index);
	sc->path[1] = sc->item;
	sc->depth = 2;
}

/* Line of key in scope (or of the scope's table when key is NULL); when the
 * exact place cannot be found, the nearest enclosing one; 0 if none. */
static int key_line(struct loader *ld, const struct scope *sc, const char *key)
{
	const char *p[3];
	size_t d = 0;
	for (; d < sc->depth; d++) p[d] = sc->path[d];
	if (key) p[d++] = key;
	if (!ld->src) return 0;
	if (!ld->map) ld->map = srcmap_new(ld->src, ld->len);   /* one tokenizing for every tenant's line */
	for (; d > 0; d--) {
		int line = srcmap_line(ld->map, p, d);
		if (line) return line;
	}
	return 0;
}

/* "graph.client_id", or "database" at the top level. */
static const char *full_key(const struct scope *sc, const char *key, char *buf, size_t cap)
{
	if (sc->label[0]) snprintf(buf, cap, "%s.%s", sc->label, key);
	else snprintf(buf, cap, "%s", key);
	return buf;
}

/* "a string", "a table", ... for the value at idx (never the value itself). */
static const char *type_phrase(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TNIL: return "nil";
	case LUA_TBOOLEAN: return "a boolean";
	case LUA_TNUMBER: return lua_isinteger(L, idx) ? "an integer" : "a number";
	case LUA_TSTRING: return "a string";
	case LUA_TTABLE: return "a table";
	case LUA_TFUNCTION: return "a function";
	default: return "a userdata or thread";
	}
}

static void type_problem(struct loader *ld, const struct scope *sc, const char *key, const char *expected)
{
	char fk[96];
	problem(ld, key_line(ld, sc, key), "%s must be %s, not %s", full_key(sc, key, fk, sizeof fk), expected,
	        type_phrase(ld->L, -1));
}

/* Pushes t[key] (raw) and returns its type. */
static int get_field(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	return lua_rawget(L, t);
}

/* A secret (client secret, API key) is one token: Entra's client secrets and
 * Syncro's API keys have no spaces or control characters. One that has them
 * was pasted with a space or read from a file saved with Windows line ends
 * (a trailing carriage return), and would be refused by the service as a
 * wrong secret: say what is wrong, and where, without the value. Returns 1
 * after reporting a problem. */
static int secret_blemish(struct loader *ld, const struct scope *sc, const char *key, const char *s, size_t len)
{
	char fk[96];
	const char *what = NULL;
	size_t at = 0;
	for (size_t i = 0; i < len && !what; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r') what = "a carriage return";
		else if (c == '\n') what = "a line break";
		else if (c == '\t') what = "a tab";
		else if (c == ' ') what = "a space";
		else if (c < 0x20 || c == 0x7f) what = "a control character";
		at = i;
	}
	if (!what) return 0;
	const char *where = at == len - 1 ? "at its end" : at == 0 ? "at its start" : "inside it";
	const char *hint = !strcmp(what, "a carriage return") ? " (a file saved with Windows line ends?)" : "";
	problem(ld, key_line(ld, sc, key), "%s has %s %s%s: a secret has no spaces or control characters", full_key(sc, key,
	        fk, sizeof fk), what, where, hint);
	return 1;
}

/* Reads an optional string field into *out (malloc'd). Returns 1 when set,
 * 0 when absent, -1 after reporting a problem. Secrets are registered for
 * redaction before anything else happens to them. */
static int opt_string(struct loader *ld, int t, const struct scope *sc, const char *key, char **out, int secret)
{
	lua_State *L = ld->L;
	int rc = 0;
	char fk[96];
	int type = get_field(L, t, key);
	if (type == LUA_TNIL) goto out;
	rc = -1;
	if (type != LUA_TSTRING) {
		type_problem(ld, sc, key, "a string");
		goto out;
	}
	size_t len;
	const char *s = lua_tolstring(L, -1, &len);
	if (secret) log_secret_add(s);
	if (len == 0) {
		problem(ld, key_line(ld, sc, key), "%s must not be empty", full_key(sc, key, fk, sizeof fk));
		goto out;
	}
	if (strlen(s) != len) {
		problem(ld, key_line(ld, sc, key), "%s contains a NUL byte", full_key(sc, key, fk, sizeof fk));
		goto out;
	}
	if (secret && secret_blemish(ld, sc, key, s, len)) goto out;
	*out = xstrdup(s);
	rc = 1;
out:
	lua_pop(L, 1);
	return rc;
}

/* Optional number: with integer set, a whole number (a float without a
 * fraction counts) stored in *integer; else a finite number stored in
 * *number. 1 set, 0 absent, -1 problem. */
static int opt_numeric(struct loader *ld, int t, const struct scope *sc, const char *key, double *number,
                       long long *integer)
{
	lua_State *L = ld->L;
	int rc = 0;
	int type = get_field(L, t, key);
	if (type == LUA_TNIL) goto out;
	rc = -1;
	lua_Number n = type == LUA_TNUMBER ? lua_tonumber(L, -1) : NAN;
	lua_Integer v = 0;
	int ok;
	if (integer && type == LUA_TNUMBER && lua_isinteger(L, -1)) {
		v = lua_tointeger(L, -1);
		ok = 1;
	} else if (integer) {
		ok = floor(n) == n && lua_numbertointeger(n, &v);
	} else {
		ok = isfinite((double)n);
	}
	if (!ok && type == LUA_TNUMBER) {   /* a number, but not one that fits: say which */
		char fk[96];
		problem(ld, key_line(ld, sc, key), "%s must be %s, got %s", full_key(sc, key, fk, sizeof fk),
		        integer ? "an integer" : "a finite number",
		        isnan((double)n) ? "NaN" : isinf((double)n) ? "infinity" : integer && floor(n) == n ? "one too large"
		                                                                              : "a fraction");
		goto out;
	}
	if (!ok) {
		type_problem(ld, sc, key, integer ? "an integer" : "a finite number");
		goto out;
	}
	if (integer) *integer = (long long)v;
	else *number = (double)n;
	rc = 1;
out:
	lua_pop(L, 1);
	return rc;
}

/* Pushes the table at t[key] and returns its absolute index; else pushes
 * nothing and returns 0 when absent, -1 after reporting a wrong type. */
static int opt_table(struct loader *ld, int t, const struct scope *sc, const char *key)
{
	lua_State *L = ld->L;
	int type = get_field(L, t, key);
	if (type == LUA_TTABLE) return lua_gettop(L);
	if (type != LUA_TNIL) type_problem(ld, sc, key, "a table");
	lua_pop(L, 1);
	return type == LUA_TNIL ? 0 : -1;
}

/* Optional boolean: 1 set (*out filled), 0 absent, -1 problem. */
static int opt_bool(struct loader *ld, int t, const struct scope *sc, const char *key, bool *out)
{
	int type = get_field(ld->L, t, key);
	int rc = type == LUA_TNIL ? 0 : type == LUA_TBOOLEAN ? 1 : -1;
	if (rc < 0) type_problem(ld, sc, key, "true or false");
	else if (rc > 0) *out = lua_toboolean(ld->L, -1);
	lua_pop(ld->L, 1);
	return rc;
}

/* Optional Syncro schedule: a name (non-empty string) or an id (whole
 * number above 0, stored in digits). 1 set, 0 absent, -1 problem. */
static int opt_schedule(struct loader *ld, int t, const struct scope *sc, const char *key, char **out)
{
	int type = get_field(ld->L, t, key);
	lua_pop(ld->L, 1);
	if (type != LUA_TNUMBER) {
		if (type != LUA_TNIL && type != LUA_TSTRING) {
			get_field(ld->L, t, key);
			type_problem(ld, sc, key, "a schedule name (a string) or id (an integer)");
			lua_pop(ld->L, 1);
			return -1;
		}
		return opt_string(ld, t, sc, key, out, 0);
	}
	long long id = 0;
	int rc = opt_numeric(ld, t, sc, key, NULL, &id);
	if (rc > 0 && id <= 0) {
		char fk[96];
		problem(ld, key_line(ld, sc, key), "%s must be above 0 (a schedule id), or a schedule name",
		        full_key(sc, key, fk, sizeof fk));
		return -1;
	}
	if (rc > 0) *out = xasprintf("%lld", id);
	return rc;
}

static int in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0) return 1;
	return 0;
}

/* Reports every key of table t that is not in known. baseline (an index or
 * 0) holds names to ignore: the globals present before the config ran; with
 * a baseline, global functions (helpers the file defines) are ignored too. */
static void check_keys(struct loader *ld, int t, const struct scope *sc, const char *const *known, int baseline)
{
	lua_State *L = ld->L;
	const char *name = sc->label[0] ? sc->label : "the top level";
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) == LUA_TSTRING) {
			const char *k = lua_tostring(L, -2);
			int skip = in_list(k, known);
			if (!skip && baseline) {
				lua_pushvalue(L, -2);
				skip = lua_rawget(L, baseline) != LUA_TNIL || lua_type(L, -2) == LUA_TFUNCTION;
				lua_pop(L, 1);
			}
			if (!skip) {
				const char *near = config_nearest(k, known);
				int tls = strstr(k, "verify") || strstr(k, "insecure") || strstr(k, "ssl") || strstr(k, "tls");
				struct buf hint = {0};
				if (near) buf_printf(&hint, " (did you mean '%s'?)", near);
				if (tls) buf_adds(&hint, "; TLS is always verified and cannot be turned off: use ca_file to add a trust anchor");
				problem(ld, key_line(ld, sc, k), "unknown key '%s' %s%s%s", k, sc->label[0] ? "in " : "at top level",
				        sc->label, hint.data ? hint.data : "");
				buf_free(&hint);
			}
		} else if (lua_isinteger(L, -2)) {
			char item[24];
			snprintf(item, sizeof item, "#%lld", (long long)lua_tointeger(L, -2));
			problem(ld, key_line(ld, sc, item), "%s has a value without a key (item %lld); write key = value",
			        name, (long long)lua_tointeger(L, -2));
		} else {
			problem(ld, key_line(ld, sc, NULL), "%s has a key of type %s; keys are names", name,
			        luaL_typename(L, -2));
		}
		lua_pop(L, 1);
	}
}

/* rel resolved against dir (absolute paths and dir "." unchanged). */
static char *resolve(const char *dir, const char *rel)
{
	if (rel[0] == '/' || strcmp(dir, ".") == 0) return xstrdup(rel);
	return xasprintf("%s/%s", dir, rel);
}

/* Reads an optional path field, resolved against the config's folder;
 * when must_read, the file must be a readable regular file (or be held by
 * the daemon's snapshot, which is what the run reads: snapshot.h). */
static int opt_path(struct loader *ld, int t, const struct scope *sc, const char *key, char **out, int must_read)
{
	char *rel = NULL;
	int rc = opt_string(ld, t, sc, key, &rel, 0);
	if (rc <= 0) return rc;
	char fk[96];
	if (strstr(rel, "-----BEGIN") || strchr(rel, '\n')) {   /* contents pasted in: never echoed */
		problem(ld, key_line(ld, sc, key), "%s holds PEM text, not a file name: give the path of the PEM file "
		        "(the value is not shown)", full_key(sc, key, fk, sizeof fk));
		free(rel);
		return -1;
	}
	*out = resolve(ld->cfg->dir, rel);
	free(rel);
	if (must_read && !snapshot_has(*out)) {
		struct stat st;
		if (stat(*out, &st) != 0 || access(*out, R_OK) != 0)
			problem(ld, key_line(ld, sc, key), "%s file '%s' cannot be read (%s)", full_key(sc, key, fk, sizeof fk),
			        *out, strerror(errno));
		else if (!S_ISREG(st.st_mode))
			problem(ld, key_line(ld, sc, key), "%s '%s' is not a regular file", full_key(sc, key, fk, sizeof fk), *out);
	}
	return 1;
}

/* Optional URL field: checked (config_check_url), trailing '/' removed. */
static void opt_url(struct loader *ld, int t, const struct scope *sc, const char *key, char **out, const char *dflt)
{
	char fk[96];
	struct err e;
	if (opt_string(ld, t, sc, key, out, 0) <= 0) {
		if (dflt && !*out) *out = xstrdup(dflt);
		return;
	}
	if (config_check_url(full_key(sc, key, fk, sizeof fk), *out, &e) != 0) problem(ld, key_line(ld, sc, key), "%s", e.msg);
	size_t n = strlen(*out);
	while (n > 0 && (*out)[n - 1] == '/') (*out)[--n] = '\0';
}

/* graph.endpoint is Graph's host: entrasync puts "/v1.0" after it. An
 * endpoint written with an API version at its end, as Graph's own URLs are
 * ("https://graph.microsoft.com/v1.0"), would send every request to
 * /v1.0/v1.0/...: the version is taken off, with a warning. */
static void endpoint_version_off(struct loader *ld, const struct scope *sc, char *endpoint)
{
	static const char *const versions[] = { "/v1.0", "/beta" };
	size_t n = endpoint ? strlen(endpoint) : 0;
	for (size_t i = 0; i < ARRAY_LEN(versions); i++) {
		size_t vl = strlen(versions[i]);
		if (n <= vl || strcasecmp(endpoint + n - vl, versions[i]) != 0) continue;
		log_warn("config", "%s:%d: graph.endpoint ends in '%s': taken off, entrasync adds /v1.0 itself (the "
		         "endpoint is the host, e.g. https://graph.microsoft.com)", ld->path, key_line(ld, sc, "endpoint"),
		         endpoint + n - vl);
		endpoint[n - vl] = '\0';
		return;
	}
}

/* Syncro's API is under /api/v1 of the account's host: a base_url with
 * another path answers 404 to every request; warned at load (a proxy may
 * have its own path, so not refused). */
static void base_url_path_check(struct loader *ld, const struct scope *sc, const char *url)
{
	static const char api[] = "/api/v1";
	size_t n = url ? strlen(url) : 0;
	if (!url || (n >= sizeof api - 1 && strcasecmp(url + n - (sizeof api - 1), api) == 0)) return;
	/* the URL is not repeated: it may hold a secret (the problems of config_check_url redact it) */
	log_warn("config", "%s:%d: syncro.base_url does not end in %s, where Syncro's API is "
	         "(https://SUBDOMAIN.syncromsp.com/api/v1): expect every Syncro request to fail with 404", ld->path,
	         key_line(ld, sc, "base_url"), api);
}

static void missing(struct loader *ld, const struct scope *sc, const char *key, const char *what)
{
	char fk[96];
	problem(ld, key_line(ld, sc, NULL), "%s is missing%s%s", full_key(sc, key, fk, sizeof fk), what ? ": " : "",
	        what ? what : "");
}

/* A section's duration in seconds (graph, syncro): 1 to max when given. */
static void opt_seconds(struct loader *ld, int t, const struct scope *sc, const char *key, double max, double *out)
{
	if (opt_numeric(ld, t, sc, key, out, NULL) > 0 && !(*out >= 1 && *out <= max)) {
		char fk[96];
		problem(ld, key_line(ld, sc, key), "%s must be from 1 to %g (seconds)", full_key(sc, key, fk, sizeof fk),
		        max);
	}
}

/* The section's outage_seconds (how long a service may give no answer
 * before the run stops waiting for it) and timeout_seconds (how long one
 * attempt may take, connecting to the answer's last byte). */
static void opt_service_times(struct loader *ld, int t, const struct scope *sc, double *outage, double *timeout)
{
	opt_seconds(ld, t, sc, "outage_seconds", 86400, outage);
	opt_seconds(ld, t, sc, "timeout_seconds", 600, timeout);
}

static void load_graph(struct loader *ld, int root, const struct scope *top)
{
	struct config_graph *g = &ld->cfg->graph;
	struct scope sc;
	scope_init(&sc, "graph");
	int t = opt_table(ld, root, top, "graph");
	if (t <= 0) {
		if (t == 0) problem(ld, 0, "graph is missing: the Microsoft Graph app (client_id and client_secret, or "
			        "certificate and private_key)");
		return;
	}
	check_keys(ld, t, &sc, graph_keys, 0);
	int has_id = opt_string(ld, t, &sc, "client_id", &g->client_id, 0);
	if (has_id == 0) missing(ld, &sc, "client_id", "the app's id");
	else if (has_id > 0 && !str_is_guid(g->client_id))   /* not echoed: a secret put here by mistake */
		problem(ld, key_line(ld, &sc, "client_id"), "graph.client_id must be the app's Application (client) ID, a "
		        "GUID such as 4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59 (the value given is not shown: it may be a "
		        "secret put in the wrong place)");
	int has_secret = opt_string(ld, t, &sc, "client_secret", &g->client_secret, 1);
	/* the certificate and key files are the credential's, read by each run
	 * (graph_auth.c): one that cannot be read fails the run's tenants with
	 * why, as an expired one does, instead of stopping every run (the daemon's
	 * included) before anything is recorded */
	int has_cert = opt_path(ld, t, &sc, "certificate", &g->certificate, 0);
	int has_key = opt_path(ld, t, &sc, "private_key", &g->private_key, 0);
	if (has_secret == 0 && has_cert == 0 && has_key == 0)
		problem(ld, key_line(ld, &sc, NULL), "graph needs client_secret, or certificate and private_key");
	else if (has_secret != 0 && (has_cert != 0 || has_key != 0))
		problem(ld, key_line(ld, &sc, has_cert ? "certificate" : "private_key"),
		        "graph: give either client_secret or certificate + private_key, not both");
	else if (has_secret == 0 && (has_cert == 0) != (has_key == 0))
		problem(ld, key_line(ld, &sc, has_cert ? "certificate" : "private_key"), "graph.%s needs graph.%s too",
		        has_cert ? "certificate" : "private_key", has_cert ? "private_key" : "certificate");
	if (opt_string(ld, t, &sc, "jwt_alg", &g->jwt_alg, 0) > 0) {
		if (strcasecmp(g->jwt_alg, "PS256") != 0 && strcasecmp(g->jwt_alg, "RS256") != 0)
			problem(ld, key_line(ld, &sc, "jwt_alg"), "graph.jwt_alg '%s' must be \"PS256\" or \"RS256\"", g->jwt_alg);
		for (char *c = g->jwt_alg; *c; c++) *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
	} else if (!g->jwt_alg) {
		g->jwt_alg = xstrdup("PS256");
	}
	opt_url(ld, t, &sc, "authority", &g->authority, CONFIG_DEFAULT_AUTHORITY);
	opt_url(ld, t, &sc, "endpoint", &g->endpoint, CONFIG_DEFAULT_ENDPOINT);
	endpoint_version_off(ld, &sc, g->endpoint);
	opt_path(ld, t, &sc, "ca_file", &g->ca_file, 1);
	long long workers = 0;
	if (opt_numeric(ld, t, &sc, "pull_workers", NULL, &workers) > 0) {
		if (workers < 1 || workers > CONFIG_PULL_WORKERS_MAX)
			problem(ld, key_line(ld, &sc, "pull_workers"), "graph.pull_workers %lld must be 1 to %d", workers,
			        CONFIG_PULL_WORKERS_MAX);
		else
			g->pull_workers = (int)workers;
	}
	opt_service_times(ld, t, &sc, &g->outage_seconds, &g->timeout_seconds);
	lua_pop(ld->L, 1);
}

/* A Syncro subdomain: letters, digits and inner '-' only. */
static int is_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-') return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-')) return 0;
	return 1;
}

static void load_syncro(struct loader *ld, int root, const struct scope *top)
{
	struct config_syncro *s = &ld->cfg->syncro;
	struct scope sc;
	scope_init(&sc, "syncro");
	s->requests_per_minute = CONFIG_DEFAULT_RPM;
	int t = opt_table(ld, root, top, "syncro");
	if (t <= 0) {
		if (t == 0) problem(ld, 0, "syncro is missing: the Syncro account (subdomain or base_url, and api_key)");
		return;
	}
	check_keys(ld, t, &sc, syncro_keys, 0);
	char *sub = NULL;
	int has_sub = opt_string(ld, t, &sc, "subdomain", &sub, 0);
	int has_base = get_field(ld->L, t, "base_url") != LUA_TNIL;
	lua_pop(ld->L, 1);
	if (has_sub != 0 && has_base) {
		problem(ld, key_line(ld, &sc, "subdomain"), "syncro: give either base_url or subdomain, not both");
	} else if (has_base) {
		opt_url(ld, t, &sc, "base_url", &s->base_url, NULL);
		base_url_path_check(ld, &sc, s->base_url);
	} else if (has_sub > 0) {
		if (!is_subdomain(sub))
			problem(ld, key_line(ld, &sc, "subdomain"), "syncro.subdomain '%.80s' must be only the account name "
			        "(e.g. 'acme' for https://acme.syncromsp.com)", sub);
		else
			s->base_url = xasprintf("https://%s.syncromsp.com/api/v1", sub);
	} else if (has_sub == 0) {
		problem(ld, key_line(ld, &sc, NULL), "syncro needs subdomain (e.g. 'acme') or base_url "
		        "(e.g. 'https://acme.syncromsp.com/api/v1')");
	}
	free(sub);
	if (opt_string(ld, t, &sc, "api_key", &s->api_key, 1) == 0) missing(ld, &sc, "api_key", "the Syncro API token");
	if (opt_numeric(ld, t, &sc, "requests_per_minute", &s->requests_per_minute, NULL) > 0) {
		int line = key_line(ld, &sc, "requests_per_minute");
		if (s->requests_per_minute <= 0)
			problem(ld, line, "syncro.requests_per_minute must be above 0");
		else if (s->requests_per_minute > CONFIG_DEFAULT_RPM)
			log_warn("config", "%s:%d: syncro.requests_per_minute %g is above Syncro's limit of 180 per minute; "
			         "expect HTTP 429 responses", ld->path, line, s->requests_per_minute);
	}
	opt_path(ld, t, &sc, "ca_file", &s->ca_file, 1);
	opt_service_times(ld, t, &sc, &s->outage_seconds, &s->timeout_seconds);
	lua_pop(ld->L, 1);
}

/* The policy field of a tenant or the top level: resolved; checked to
 * exist unless CONFIG_SKIP_POLICY_FILES. */
static int opt_policy(struct loader *ld, int t, const struct scope *sc, char **out, int *line)
{
	int rc = opt_path(ld, t, sc, "policy", out, !(ld->flags & CONFIG_SKIP_POLICY_FILES));
	if (rc > 0) *line = key_line(ld, sc, "policy");
	return rc;
}

/* Every tenant listed again (same id, case aside) is a problem naming the
 * first listing: found through an index of ids, not by comparing every
 * pair (configs list thousands of tenants). */
static void tenants_check_twice(struct loader *ld, const struct config *cfg)
{
	struct str_index first = { .fold = true };
	for (size_t i = 0; i < cfg->ntenants; i++) {
		if (!cfg->tenants[i].id) continue;
		size_t j = str_index_get(&first, cfg->tenants[i].id);
		if (j == STR_INDEX_NONE)
			str_index_put(&first, cfg->tenants[i].id, i);
		else
			problem(ld, cfg->tenants[i].line, "tenant '%s' is listed twice: tenants[%zu] (line %d) and tenants[%zu]",
			        cfg->tenants[i].id, j + 1, cfg->tenants[j].line, i + 1);
	}
	str_index_free(&first);
	/* one name for two tenants: --tenant NAME picks the first, alert tickets
	 * (whose subject is the name) and reports cannot tell them apart */
	struct str_index names = { .fold = true };
	for (size_t i = 0; i < cfg->ntenants; i++) {
		const char *name = cfg->tenants[i].name;
		if (!name) continue;
		size_t j = str_index_get(&names, name);
		if (j == STR_INDEX_NONE)
			str_index_put(&names, name, i);
		else
			log_warn("config", "%s:%d: tenants[%zu].name '%s' is also tenants[%zu]'s (line %d): give each tenant a "
			         "name of its own (--tenant by name, reports and alert tickets tell tenants apart by it)",
			         ld->path, cfg->tenants[i].line, i + 1, name, j + 1, cfg->tenants[j].line);
	}
	str_index_free(&names);
}

static void load_tenant(struct loader *ld, int t, size_t index, struct config_tenant *tn)
{
	struct scope sc;
	scope_tenant(&sc, index);
	tn->line = key_line(ld, &sc, NULL);
	check_keys(ld, t, &sc, tenant_keys, 0);
	if (opt_string(ld, t, &sc, "id", &tn->id, 0) == 0)
		problem(ld, tn->line, "%s.id is missing: the tenant's GUID or domain (e.g. 'contoso.onmicrosoft.com')", sc.label);
	else if (tn->id && !config_is_tenant_id(tn->id))
		problem(ld, key_line(ld, &sc, "id"), "%s.id '%s' is neither a GUID nor a domain name", sc.label, tn->id);
	opt_string(ld, t, &sc, "name", &tn->name, 0);
	int has_id = opt_numeric(ld, t, &sc, "syncro_customer_id", NULL, &tn->syncro_customer_id);
	if (has_id > 0 && tn->syncro_customer_id <= 0) {
		problem(ld, key_line(ld, &sc, "syncro_customer_id"), "%s.syncro_customer_id must be above 0", sc.label);
		has_id = -1;
	}
	int has_name = opt_string(ld, t, &sc, "syncro_customer", &tn->syncro_customer, 0);
	if (has_id == 0 && has_name == 0)
		problem(ld, tn->line, "%s needs syncro_customer_id (the Syncro customer's id) or syncro_customer "
		        "(its business name)", sc.label);
	else if (has_id != 0 && has_name != 0)
		problem(ld, key_line(ld, &sc, "syncro_customer"), "%s: give either syncro_customer_id or syncro_customer, "
		        "not both", sc.label);
	if (opt_policy(ld, t, &sc, &tn->policy, &tn->policy_line) == 0) {
		if (ld->cfg->policy) {
			tn->policy = xstrdup(ld->cfg->policy);
			tn->policy_line = ld->cfg->policy_line;
		} else if (!ld->default_policy_bad) {
			problem(ld, tn->line, "%s names no policy and there is no default policy (set policy = \"FILE\" "
			        "at the top level or in the tenant)", sc.label);
		}
	}
	/* false: the tenant is invoiced per period (bill --period), not by billing.schedule */
	int type = get_field(ld->L, t, "billing_schedule");
	bool off = type == LUA_TBOOLEAN && !lua_toboolean(ld->L, -1);
	lua_pop(ld->L, 1);
	if (off) tn->billing_schedule_off = true;
	else opt_schedule(ld, t, &sc, "billing_schedule", &tn->billing_schedule);
}

static void load_tenants(struct loader *ld, int root, const struct scope *top)
{
	lua_State *L = ld->L;
	struct config *cfg = ld->cfg;
	struct scope sc;
	scope_init(&sc, "tenants");
	int t = opt_table(ld, root, top, "tenants");
	if (t <= 0) {
		if (t == 0 && !(ld->flags & CONFIG_TENANTS_OPTIONAL))
			problem(ld, 0, "tenants is missing: list the customers' tenants, e.g. tenants = { { id = "
			        "\"contoso.onmicrosoft.com\", syncro_customer_id = 101 } }");
		return;
	}
	size_t n = (size_t)lua_rawlen(L, t);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && (size_t)lua_tointeger(L, -1) <= n) continue;
		if (lua_type(L, -1) == LUA_TSTRING)
			problem(ld, key_line(ld, &sc, lua_tostring(L, -1)), "tenants must be a list { {...}, {...} }; "
			        "'%s' is a named key", lua_tostring(L, -1));
		else
			problem(ld, key_line(ld, &sc, NULL), "tenants must be a list { {...}, {...} } without gaps");
	}
	if (n == 0 && !(ld->flags & CONFIG_TENANTS_OPTIONAL))
		problem(ld, key_line(ld, &sc, NULL), "tenants is empty: list at least one tenant");
	cfg->tenants = xcalloc(n, sizeof *cfg->tenants);
	cfg->ntenants = n;
	for (size_t i = 1; i <= n; i++) {
		struct config_tenant *tn = &cfg->tenants[i - 1];
		if (lua_rawgeti(L, t, (lua_Integer)i) != LUA_TTABLE) {
			struct scope ts;
			scope_tenant(&ts, i);
			problem(ld, key_line(ld, &ts, NULL), "tenants[%zu] must be a table, not %s", i, type_phrase(L, -1));
		} else {
			load_tenant(ld, lua_gettop(L), i, tn);
		}
		lua_pop(L, 1);
	}
	tenants_check_twice(ld, cfg);   /* its messages quote the ids as written */
	for (size_t i = 0; i < n; i++)
		if (cfg->tenants[i].id) config_tenant_id_fold(cfg->tenants[i].id);
	lua_pop(L, 1);
}

static void load_csp(struct loader *ld, int root, const struct scope *top)
{
	struct scope sc;
	scope_init(&sc, "csp");
	int t = opt_table(ld, root, top, "csp");
	if (t <= 0) return;
	check_keys(ld, t, &sc, csp_keys, 0);
	char **p = &ld->cfg->csp_partner_tenant;
	if (opt_string(ld, t, &sc, "partner_tenant", p, 0) == 0) missing(ld, &sc, "partner_tenant", "the partner's tenant id");
	else if (*p && !config_is_tenant_id(*p))
		problem(ld, key_line(ld, &sc, "partner_tenant"), "csp.partner_tenant '%s' is neither a GUID nor a domain name", *p);
	lua_pop(ld->L, 1);
}

static void load_limits(struct loader *ld, int root, const struct scope *top)
{
	struct config_limits *lim = &ld->cfg->limits;
	struct scope sc;
	scope_init(&sc, "limits");
	lim->instructions = CONFIG_DEFAULT_INSTRUCTIONS;
	lim->memory_bytes = (size_t)CONFIG_DEFAULT_MEMORY_MB << 20;
	lim->seconds = CONFIG_DEFAULT_SECONDS;
	int t = opt_table(ld, root, top, "limits");
	if (t <= 0) return;
	check_keys(ld, t, &sc, limits_keys, 0);
	if (opt_numeric(ld, t, &sc, "instructions", NULL, &lim->instructions) > 0 && lim->instructions <= 0)
		problem(ld, key_line(ld, &sc, "instructions"), "limits.instructions must be above 0");
	double secs = 0;
	if (opt_numeric(ld, t, &sc, "seconds", &secs, NULL) > 0) {
		if (!(secs >= 0.01 && secs <= 3600))
			problem(ld, key_line(ld, &sc, "seconds"), "limits.seconds must be between 0.01 and 3600");
		else
			lim->seconds = secs;
	}
	double mb = 0;
	if (opt_numeric(ld, t, &sc, "memory_mb", &mb, NULL) > 0) {
		if (mb < 1 || mb > 1048576)
			problem(ld, key_line(ld, &sc, "memory_mb"), "limits.memory_mb must be between 1 and 1048576");
		else
			lim->memory_bytes = (size_t)(mb * 1048576.0);
	}
	lua_pop(ld->L, 1);
}

static void load_actions(struct loader *ld, int root, const struct scope *top)
{
	struct config_actions *a = &ld->cfg->actions;
	struct scope sc;
	scope_init(&sc, "actions");
	int t = opt_table(ld, root, top, "actions");
	if (t <= 0) return;
	check_keys(ld, t, &sc, actions_keys, 0);
	opt_string(ld, t, &sc, "ticket_problem_type", &a->ticket_problem_type, 0);
	opt_string(ld, t, &sc, "ticket_status_done", &a->ticket_status_done, 0);
	opt_string(ld, t, &sc, "ticket_status_failed", &a->ticket_status_failed, 0);
	if (!a->ticket_problem_type && (a->ticket_status_done || a->ticket_status_failed))
		problem(ld, key_line(ld, &sc, a->ticket_status_done ? "ticket_status_done" : "ticket_status_failed"),
		        "actions.%s needs actions.ticket_problem_type (the tickets' problem type)",
		        a->ticket_status_done ? "ticket_status_done" : "ticket_status_failed");
	lua_pop(ld->L, 1);
}

/* billing.max_decrease = { count = N, percent = P } */
static void load_max_decrease(struct loader *ld, int parent, const struct scope *billing)
{
	struct config_billing *b = &ld->cfg->billing;
	struct scope sc;
	scope_init(&sc, "billing");
	snprintf(sc.label, sizeof sc.label, "billing.max_decrease");
	sc.path[1] = "max_decrease";
	sc.depth = 2;
	int t = opt_table(ld, parent, billing, "max_decrease");
	if (t <= 0) return;
	check_keys(ld, t, &sc, max_decrease_keys, 0);
	if (opt_numeric(ld, t, &sc, "count", NULL, &b->max_decrease_count) > 0 && b->max_decrease_count < 0) {
		problem(ld, key_line(ld, &sc, "count"), "billing.max_decrease.count must be 0 or more");
		b->max_decrease_count = -1;
	}
	if (opt_numeric(ld, t, &sc, "percent", &b->max_decrease_percent, NULL) > 0 &&
	    (b->max_decrease_percent < 0 || b->max_decrease_percent > 100)) {
		problem(ld, key_line(ld, &sc, "percent"), "billing.max_decrease.percent must be between 0 and 100");
		b->max_decrease_percent = -1;
	}
	lua_pop(ld->L, 1);
}

static void load_billing(struct loader *ld, int root, const struct scope *top)
{
	struct config_billing *b = &ld->cfg->billing;
	struct scope sc;
	scope_init(&sc, "billing");
	b->max_decrease_count = -1;
	b->max_decrease_percent = -1;
	int t = opt_table(ld, root, top, "billing");
	if (t <= 0) return;
	check_keys(ld, t, &sc, billing_keys, 0);
	opt_schedule(ld, t, &sc, "schedule", &b->schedule);
	char *on_removed = NULL;
	if (opt_string(ld, t, &sc, "on_removed", &on_removed, 0) > 0) {
		if (strcmp(on_removed, "remove") == 0) b->remove = true;
		else if (strcmp(on_removed, "zero") != 0)
			problem(ld, key_line(ld, &sc, "on_removed"), "billing.on_removed '%s' must be \"zero\" or \"remove\"",
			        on_removed);
	}
	free(on_removed);
	load_max_decrease(ld, t, &sc);
	opt_bool(ld, t, &sc, "schedules_on_sync", &b->schedules_on_sync);
	lua_pop(ld->L, 1);
}

static void load_alerts(struct loader *ld, int root, const struct scope *top)
{
	struct config_alerts *a = &ld->cfg->alerts;
	struct scope sc;
	scope_init(&sc, "alerts");
	a->unused_days = CONFIG_DEFAULT_UNUSED_DAYS;
	a->failing_hours = CONFIG_DEFAULT_FAILING_HOURS;
	int t = opt_table(ld, root, top, "alerts");
	if (t > 0) {
		check_keys(ld, t, &sc, alerts_keys, 0);
		opt_bool(ld, t, &sc, "enabled", &a->enabled);
		opt_string(ld, t, &sc, "problem_type", &a->problem_type, 0);
		opt_string(ld, t, &sc, "subject_prefix", &a->subject_prefix, 0);
		long long days = 0;
		if (opt_numeric(ld, t, &sc, "unused_days", NULL, &days) > 0) {
			if (days < 1 || days > 100000)
				problem(ld, key_line(ld, &sc, "unused_days"), "alerts.unused_days must be between 1 and 100000");
			else
				a->unused_days = (int)days;
		}
		long long hours = 0;
		if (opt_numeric(ld, t, &sc, "failing_hours", NULL, &hours) > 0) {
			if (hours < 0 || hours > 8760)
				problem(ld, key_line(ld, &sc, "failing_hours"),
				        "alerts.failing_hours must be 0 (never) or from 1 to 8760 (a year)");
			else
				a->failing_hours = (int)hours;
		}
		lua_pop(ld->L, 1);
	}
	if (!a->problem_type) a->problem_type = xstrdup(CONFIG_DEFAULT_ALERT_PROBLEM);
	if (!a->subject_prefix) a->subject_prefix = xstrdup(CONFIG_DEFAULT_ALERT_PREFIX);
	/* its alert tickets would be read back as action requests (and each
	 * commented "not done") */
	const char *acts = ld->cfg->actions.ticket_problem_type;
	if (a->enabled && acts && str_ieq(acts, a->problem_type))
		problem(ld, key_line(ld, &sc, t > 0 ? "problem_type" : NULL), "alerts.problem_type and "
		        "actions.ticket_problem_type are both '%.80s': entrasync would take its own alert tickets for action "
		        "requests; give the alerts another problem type", acts);
}

/* One retention.KEY: 0 (kept for ever) or days from min to 100000; *days
 * keeps its default when the key is absent or wrong. why says where min
 * comes from (NULL when it is 1). */
static void opt_retention_days(struct loader *ld, int t, const struct scope *sc, const char *key, int min,
                               const char *why, int *days)
{
	long long v = 0;
	if (opt_numeric(ld, t, sc, key, NULL, &v) <= 0) return;
	if (v < 0 || v > 100000 || (v > 0 && v < min))
		problem(ld, key_line(ld, sc, key), "retention.%s must be 0 (keep for ever) or from %d to 100000%s", key,
		        min, why ? why : "");
	else
		*days = (int)v;
}

static void load_retention(struct loader *ld, int root, const struct scope *top)
{
	struct config_retention *r = &ld->cfg->retention;
	struct scope sc;
	scope_init(&sc, "retention");
	r->runs_days = CONFIG_DEFAULT_RUNS_DAYS;
	r->audit_days = CONFIG_DEFAULT_AUDIT_DAYS;
	r->score_detail_days = CONFIG_DEFAULT_SCORE_DETAIL_DAYS;
	int t = opt_table(ld, root, top, "retention");
	if (t <= 0) return;
	check_keys(ld, t, &sc, retention_keys, 0);
	opt_retention_days(ld, t, &sc, "runs_days", 1, NULL, &r->runs_days);
	opt_retention_days(ld, t, &sc, "audit_days", 1, NULL, &r->audit_days);
	opt_retention_days(ld, t, &sc, "score_detail_days", CONFIG_SCORE_DETAIL_MIN_DAYS,
	                   " (Graph keeps 90 days of Secure Score)", &r->score_detail_days);
	lua_pop(ld->L, 1);
}

/* env(NAME [, default]): the value of an environment variable; an error
 * ("environment variable X is not set") when it is unset or empty and no
 * default is given. */
static int l_env(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *v = getenv(name);
	if (v && *v) {
		lua_pushstring(L, v);
		return 1;
	}
	if (!lua_isnoneornil(L, 2)) {
		lua_settop(L, 2);
		return 1;
	}
	return luaL_error(L, "environment variable %s is %s", name, v ? "empty" : "not set");
}

/* Appends a Lua error message to out with the chunk tag replaced by the
 * config path, and string literals Lua quotes ("near '\"...\"'",
 * "(constant '...')") replaced, since they may be secrets written inline. */
static void scrub_lua_message(const char *path, const char *msg, struct buf *out)
{
	const char *p = msg;
	while (*p) {
		if (str_starts(p, CHUNK_TAG ":")) {
			buf_adds(out, path);
			p += strlen(CHUNK_TAG);
		} else if (str_starts(p, "near '") && strchr("\"'[", p[6])) {
			buf_adds(out, "near a string literal");
			return;
		} else if (str_starts(p, "(constant '")) {
			const char *end = strstr(p, "')");
			buf_adds(out, "(a string constant)");
			if (!end) return;
			p = end + 2;
		} else {
			buf_addc(out, *p++);
		}
	}
}

/* The state's allocator: refuses to grow past run_memory while the chunk
 * runs (Lua then raises "not enough memory") and remembers the line of the
 * innermost Lua function that asked (walking the stack allocates nothing). */
static void *config_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct loader *ld = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		ld->mem_used -= old;
		return NULL;
	}
	if (nsize > old && ld->limits_on && ld->mem_used - old + nsize > run_memory) {
		lua_Debug ar;
		for (int level = 0; ld->over_memory_line < 0 && lua_getstack(ld->L, level, &ar); level++)
			if (lua_getinfo(ld->L, "l", &ar) && ar.currentline > 0) ld->over_memory_line = ar.currentline;
		if (ld->over_memory_line < 0) ld->over_memory_line = 0;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p) ld->mem_used = ld->mem_used - old + nsize;
	return p;
}

static struct loader *loader_of(lua_State *L)
{
	void *ud;
	lua_getallocf(L, &ud);
	return ud;
}

/* The count hook: once the budget is spent it fires on every instruction
 * and raises each time, so a pcall in the config cannot swallow it. The
 * message names the line that was running when the budget ran out
 * ("entrasync-config:N:", rewritten to the path like Lua's own). */
static void config_hook(lua_State *L, lua_Debug *ar)
{
	struct loader *ld = loader_of(L);
	if (!ld->over_budget) {
		ld->executed += CONFIG_HOOK_STEP;
		if (ld->executed < run_instructions) return;
		ld->over_budget = true;
		lua_getinfo(L, "l", ar);
		ld->over_budget_line = ar->currentline;
		lua_sethook(L, config_hook, LUA_MASKCOUNT, 1);
	}
	char n[48];
	if (run_instructions % 1000000 == 0) snprintf(n, sizeof n, "%ld million", run_instructions / 1000000);
	else snprintf(n, sizeof n, "%ld", run_instructions);
	lua_pushfstring(L, "%s:%d: the config ran more than %s Lua instructions (an endless loop?)", CHUNK_TAG,
	                ld->over_budget_line, n);
	lua_error(L);
}

/* Message handler of the chunk's one protected call (as lua.c's): the
 * message, and a traceback when the error comes from a function the chunk
 * called (two Lua frames or more; for the main chunk alone the line in the
 * message says it all). The limits are lifted first: the traceback may need
 * memory the cap refused. */
static int config_msghandler(lua_State *L)
{
	struct loader *ld = loader_of(L);
	ld->limits_on = false;
	lua_sethook(L, NULL, 0, 0);
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
		else msg = lua_pushfstring(L, "%s: error object is a %s value", CHUNK_TAG, luaL_typename(L, 1));
	}
	lua_Debug ar;
	int lua_frames = 0;
	for (int level = 1; lua_getstack(L, level, &ar); level++)
		if (lua_getinfo(L, "S", &ar) && ar.what[0] != 'C') lua_frames++;
	if (lua_frames >= 2) luaL_traceback(L, L, msg, 1);
	else lua_pushstring(L, msg);
	return 1;
}

/* setmetatable(t, mt) as the base library's, refusing a __gc field: a
 * finalizer would run Lua after the chunk, outside its limits. */
static int config_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "the config cannot set a __gc metamethod");
		lua_pop(L, 1);
	}
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

/* Runs the chunk; leaves the root table (returned table, or _G) at index 2
 * and the baseline of pre-existing globals at index 1 (or nil there when
 * the chunk returned a table). */
static int run_chunk(struct loader *ld, struct err *err)
{
	lua_State *L = ld->L;
	luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
	luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
	luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
	lua_settop(L, 0);
	lua_register(L, "env", l_env);
	lua_register(L, "setmetatable", config_setmetatable);
	lua_newtable(L);                                 /* 1: baseline */
	lua_pushglobaltable(L);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_pushboolean(L, 1);
		lua_rawset(L, 1);
	}
	lua_pop(L, 1);
	if (text_is_utf16(ld->src, ld->len))
		return err_set(err, "%s is UTF-16 text (Windows Notepad's \"Unicode\"): save it as UTF-8", ld->path);
	size_t skip = (ld->len >= 3 && memcmp(ld->src, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;   /* UTF-8 BOM */
	int rc = luaL_loadbufferx(L, ld->src + skip, ld->len - skip, "=" CHUNK_TAG, "t");
	if (rc == LUA_OK) {                              /* 2: handler, 3: chunk */
		lua_pushcfunction(L, config_msghandler);
		lua_insert(L, -2);
		ld->over_memory_line = -1;
		ld->limits_on = true;
		lua_sethook(L, config_hook, LUA_MASKCOUNT, CONFIG_HOOK_STEP);
		rc = lua_pcall(L, 0, 1, 2);
		ld->limits_on = false;
		lua_sethook(L, NULL, 0, 0);
		lua_remove(L, 2);                            /* 2: the result or error */
	}
	if (rc == LUA_ERRMEM) {                          /* no handler ran for it */
		char cap[32];
		if (run_memory % ((size_t)1 << 20) == 0) snprintf(cap, sizeof cap, "%zu MiB", run_memory >> 20);
		else snprintf(cap, sizeof cap, "%zu KiB", run_memory >> 10);
		if (ld->over_memory_line > 0)
			return err_set(err, "%s:%d: the config needs more than %s of Lua memory (a table that never stops "
			               "growing?)", ld->path, ld->over_memory_line, cap);
		return err_set(err, "%s: the config needs more than %s of Lua memory", ld->path, cap);
	}
	if (rc != LUA_OK) {
		struct buf b = {0};
		const char *msg = lua_tostring(L, -1);
		if (msg) scrub_lua_message(ld->path, msg, &b);
		else buf_printf(&b, "%s: error object is %s", ld->path, luaL_typename(L, -1));
		err_set(err, "%s", b.data);
		buf_free(&b);
		return -1;
	}
	if (lua_istable(L, -1)) {                         /* `return { ... }` style */
		lua_pushnil(L);
		lua_replace(L, 1);
		return 0;
	}
	if (!lua_isnil(L, -1))
		return err_set(err, "%s: the config must set globals (or return a table), not return %s", ld->path,
		               type_phrase(L, -1));
	lua_pop(L, 1);
	lua_pushglobaltable(L);
	return 0;
}

static int problem_cmp(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;
	unsigned lx = x->line ? (unsigned)x->line : UINT_MAX, ly = y->line ? (unsigned)y->line : UINT_MAX;
	if (lx != ly) return lx < ly ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Joins the problems, sorted by line, into err (whole lines only). */
static void problems_to_err(struct loader *ld, struct err *err)
{
	qsort(ld->probs, ld->nprobs, sizeof *ld->probs, problem_cmp);
	struct buf all = {0};
	size_t shown = 0;
	for (size_t i = 0; i < ld->nprobs; i++) {
		struct buf line = {0};
		if (ld->probs[i].line) buf_printf(&line, "%s:%d: %s", ld->path, ld->probs[i].line, ld->probs[i].msg);
		else buf_printf(&line, "%s: %s", ld->path, ld->probs[i].msg);
		size_t room = sizeof err->msg - 40;    /* keep room for the "and N more" line */
		if (i + 1 == ld->nprobs) room = sizeof err->msg - 1;
		if (shown == 0 || all.len + 1 + line.len <= room) {
			if (shown) buf_addc(&all, '\n');
			buf_add(&all, line.data, line.len);
			shown++;
		}
		buf_free(&line);
	}
	if (shown < ld->nprobs) buf_printf(&all, "%s(and %zu more problems)", shown ? "\n" : "", ld->nprobs - shown);
	err_set(err, "%s", all.data ? all.data : "");
	log_redact_err(err);   /* a secret read by then (client_secret, api_key) put in another key is not echoed */
	buf_free(&all);
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash) return xstrdup(".");
	if (slash == path) return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

int config_load_opts(const char *path, unsigned flags, struct config *cfg, struct err *err)
{
	char *src = NULL;
	size_t len = 0;
	memset(cfg, 0, sizeof *cfg);
	if (snapshot_file_read(path, &src, &len, err) != 0) {
		err_prefix(err, "cannot read config");
		log_redact_err(err);
		return -1;
	}
	int rc = config_load_text(path, src, len, flags, cfg, err);
	free(src);
	return rc;
}

int config_load_text(const char *path, const char *src, size_t len, unsigned flags, struct config *cfg,
                     struct err *err)
{
	struct loader ld = { .path = path, .src = src, .len = len, .cfg = cfg, .flags = flags };
	int rc = -1;
	memset(cfg, 0, sizeof *cfg);
	ld.L = lua_newstate(config_alloc, &ld);
	if (!ld.L) {
		err_set(err, "%s: cannot create a Lua state", path);
		goto out;
	}
	if (run_chunk(&ld, err) != 0) goto out;
	cfg->path = xstrdup(path);
	cfg->dir = dir_of(path);
	struct scope top;
	scope_init(&top, NULL);
	int root = 2, baseline = lua_isnil(ld.L, 1) ? 0 : 1;
	check_keys(&ld, root, &top, top_keys, baseline);
	if (opt_path(&ld, root, &top, "database", &cfg->database, 0) == 0)
		cfg->database = resolve(cfg->dir, CONFIG_DEFAULT_DATABASE);
	if (opt_policy(&ld, root, &top, &cfg->policy, &cfg->policy_line) < 0) ld.default_policy_bad = 1;
	load_graph(&ld, root, &top);
	load_syncro(&ld, root, &top);
	load_tenants(&ld, root, &top);
	load_csp(&ld, root, &top);
	load_limits(&ld, root, &top);
	load_actions(&ld, root, &top);
	load_billing(&ld, root, &top);
	load_alerts(&ld, root, &top);
	load_retention(&ld, root, &top);
	if (ld.nprobs) {
		problems_to_err(&ld, err);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		config_free(cfg);
		if (err) log_redact_err(err);
	}
	for (size_t i = 0; i < ld.nprobs; i++) free(ld.probs[i].msg);
	free(ld.probs);
	srcmap_free(ld.map);
	if (ld.L) lua_close(ld.L);
	return rc;
}

int config_load(const char *path, struct config *cfg, struct err *err)
{
	return config_load_opts(path, 0, cfg, err);
}
