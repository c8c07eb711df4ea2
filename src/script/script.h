/* script — the scripting layer's C API: sandboxed Lua states (one per
 * tenant), policy loading and validation, protected calls with tracebacks,
 * instruction and memory limits, and policy evaluation on a user. The only
 * layer that includes lua.h (src/script/script.c and one src/script/lua_<namespace>.c per
 * binding namespace); this header does not, so every layer may use it.
 *
 * Sandbox (see script.c for the details): text chunks only (never bytecode);
 * base library without dofile/loadfile/warn, `load` forced to text mode,
 * collectgarbage limited to "count", setmetatable refusing __gc; string
 * without dump; table, math, utf8; os.time/os.date/os.clock only; no io,
 * debug, package, coroutine. `require` serves only the runtime's own
 * entrasync.* modules (compiled in, or from --lua-dir). Globals are strict:
 * reading an undefined global or assigning one is an error with file:line.
 * `print` goes to the log (info, event "policy"), or to stdout when the
 * state was made with script_set_print(s, SCRIPT_PRINT_STDOUT).
 *
 * Limits: every call into Lua gets a fresh instruction budget; the state
 * has a memory cap. Both hold through pcall/xpcall in the policy (the
 * sandbox's pcall/xpcall re-raise budget and memory errors). After a failed
 * call the state is reset and stays usable: the budget is restored at the
 * start of every call, and after a memory error a full collection runs.
 * What the policy itself keeps reachable survives (a policy that leaks into
 * its own upvalues keeps failing, call after call, and says so each time).
 * Known limits: time spent inside one C library call (a pathological
 * string.find pattern on a long subject) is not counted in instructions;
 * the memory cap counts the bytes Lua asks for, and small blocks freed by
 * Lua stay in the state's pool (bounded by the peak) until script_free.
 * rawset(_G, ...) and setmetatable(_G, ...) are refused, and one Lua state
 * per tenant keeps any other state out of reach.
 *
 * Errors are one line of kind and place, then a Lua traceback, e.g.
 *   policy error in include(): policies/acme.lua:12: attempt to index a nil value (field 'mail')
 *   instruction budget exceeded (10000000 instructions) in include() at policies/acme.lua:7
 *   memory limit exceeded (64 MiB) in contact()
 * A failing call fails its own unit of work only; the process carries on. */
#ifndef ENTRASYNC_SCRIPT_H
#define ENTRASYNC_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include "util/util.h"

struct script;                       /* one sandboxed lua_State + its limits */
struct cJSON;

#define SCRIPT_DEFAULT_INSTRUCTIONS 10000000LL
#define SCRIPT_DEFAULT_SECONDS 10.0
#define SCRIPT_DEFAULT_MEMORY       ((size_t)64 << 20)
#define SCRIPT_DEFAULT_JSON_DEPTH   64

struct script_limits {
	long long instructions;          /* per call into Lua; 0 = default (10,000,000) */
	double seconds;                  /* CPU seconds per call into Lua; 0 = default (10) */
	size_t memory_bytes;             /* per state; 0 = default (64 MiB) */
	int json_depth;                  /* nesting limit of JSON handed to Lua; 0 = default (64) */
};

/* --lua-dir: load the runtime's entrasync.* modules from DIR/entrasync/NAME.lua
 * instead of the copies compiled into the binary. NULL = embedded. The
 * string is copied; states created afterwards use it (each keeps its own
 * copy). The C modules (entrasync.json, entrasync.text) are always built
 * in. */
void script_set_lua_dir(const char *dir);

/* Creates a sandboxed state. *out is owned by the caller (script_free). */
int script_new(const struct script_limits *limits, struct script **out, struct err *err);
void script_free(struct script *s);

/* Where `print` goes: the log (default; info level, event "policy") or
 * stdout (the `entrasync lua` developer command). */
enum script_print { SCRIPT_PRINT_LOG, SCRIPT_PRINT_STDOUT };
void script_set_print(struct script *s, enum script_print where);

/* The kind of the last failed call, for callers that react differently
 * (e.g. count budget overruns). SCRIPT_OK after a successful call. */
enum script_fail { SCRIPT_OK, SCRIPT_FAIL_ERROR, SCRIPT_FAIL_BUDGET, SCRIPT_FAIL_MEMORY };
enum script_fail script_last_fail(const struct script *s);

/* Bytes the state currently holds (its allocator's count). */
size_t script_memory_used(const struct script *s);

/* Runs a Lua file in the same sandbox as policies (the `entrasync lua`
 * developer command and the Lua tests): argv is available as the global
 * table `arg` (arg[0] = path, arg[1..argc] = argv). A first line starting
 * with '#' is skipped. Errors carry file:line and a traceback. */
int script_run_file(struct script *s, const char *path, int argc, char **argv, struct err *err);

/* Runs a chunk of Lua text (named `name` in messages) in the sandbox; for
 * tests and tools. Text only. */
int script_run_string(struct script *s, const char *code, const char *name, struct err *err);

/* ---- policies ---------------------------------------------------------- */

/* How a policy says what to do with the contact of a user who left. */
enum policy_on_leave {
	POLICY_ON_LEAVE_UNSET,           /* not given: the engine's default */
	POLICY_ON_LEAVE_KEEP,            /* "keep" */
	POLICY_ON_LEAVE_DELETE,          /* "delete" */
	POLICY_ON_LEAVE_FUNCTION,        /* a function(c, why, t) -> changes */
};

/* Policy functions present, as bits of policy_info.functions. */
enum {
	POLICY_FN_INCLUDE = 1 << 0, POLICY_FN_CONTACT = 1 << 1, POLICY_FN_LICENSE = 1 << 2,
	POLICY_FN_SECURE_SCORE = 1 << 3, POLICY_FN_BILL = 1 << 4, POLICY_FN_PROTECT = 1 << 5,
	POLICY_FN_ALLOW_ACTION = 1 << 6, POLICY_FN_ON_LEAVE = 1 << 7,
};

/* What script_policy_load validated and copied out of the policy table.
 * Owned by the script state (valid until the next load or script_free). */
struct policy_info {
	char *path;                      /* the policy file, as given */
	char *name, *description;        /* NULL when not given */
	char **groups;                   /* group names the policy looks at */
	size_t ngroups;
	char **create_only;              /* contact fields set at creation only */
	size_t ncreate_only;
	enum policy_on_leave on_leave;
	long long max_removals_count;    /* -1 = not given */
	double max_removals_percent;     /* -1 = not given; else 0..100 */
	unsigned functions;              /* POLICY_FN_* bits */
};

/* Loads a policy file (text only, never bytecode), runs it under the limits,
 * and validates the table it returns. Known keys and types:
 *   name, description: string; groups, create_only: list of strings
 *   (create_only items must be contact field names); include, contact,
 *   license, secure_score, bill, protect, allow_action: function;
 *   on_leave: function | "keep" | "delete"; max_removals: { count = integer
 *   >= 0, percent = number 0..100 }.
 * Unknown keys are rejected with "file:line: unknown key 'on_leve' in policy
 * table (did you mean 'on_leave'?)" (just "file:" when the line cannot be
 * found); wrong types with "file:line: policy key 'groups' must be a list of
 * strings, got number". The table is kept in the state for later calls; a
 * failed load leaves no policy loaded. */
int script_policy_load(struct script *s, const char *path, struct err *err);
/* The same from text already in memory (len bytes, need not end in NUL):
 * path names the chunk, so errors still read "path:line: ...".
 * script_policy_load reads path through snapshot_file_read (the daemon's
 * accepted copy when there is one, see snapshot.h) and calls this. */
int script_policy_load_text(struct script *s, const char *path, const char *text, size_t len, struct err *err);
const struct policy_info *script_policy_info(const struct script *s);   /* NULL before a load */

/* The tenant table `t` handed to every policy call: built once per state
 * (on this call) and reused. Strings may be NULL (then absent in t). */
struct script_tenant {
	const char *id;                  /* tenant GUID or domain */
	const char *name;
	const char *default_domain;
	long long syncro_customer_id;    /* 0 = absent */
};
int script_set_tenant(struct script *s, const struct script_tenant *t, struct err *err);

/* One user handed to the policy. The Lua table `u` has the Graph
 * properties under their Graph names (JSON null -> absent, so `u.mail or
 * u.userPrincipalName` works; null array items are json.null), plus:
 *   u.domain   lower-case domain of mail, else of userPrincipalName (or absent)
 *   u.groups   set of the given group names: u.groups["Sales"] == true
 *              (always a table, empty when ngroups is 0)
 *   u.licenses one { sku_id = "<guid>", part = "<skuPartNumber>", name =
 *              "<friendly name>" } per item of the user's own
 *              assignedLicenses, in order (part and name from the SKU table,
 *              skus.h; an unknown SKU has its sku_id as part and name);
 *              always a table
 * These three hide Graph members of the same names. Give the Graph object
 * either as a parsed cJSON object (graph) or as JSON text (json, len). From
 * text (the fast path) the whole object is checked first — malformed JSON
 * fails as "user: invalid JSON at byte offset ..." before any policy code
 * runs — and u is lazy: a member (u.domain, u.groups and u.licenses too)
 * becomes a Lua value when first read, so a policy that never reads
 * u.licenses pays nothing for it. pairs(u) and json.encode(u) see every
 * member; raw next(u)/rawget(u, k) only those converted so far. Nothing of
 * the text is kept after the call: members not read by then raise if a
 * policy kept u and touches them later. u's metatable is protected
 * (getmetatable(u) is false, setmetatable(u, ...) an error). A policy whose
 * contact is p.contact itself (policies/default.lua) gets its contact read
 * from the text in C (lua_contact.h): the same fields as calling p.contact,
 * without making Lua values (members it reads that way stay unread). */
struct policy_user {
	const struct cJSON *graph;
	const char *json;
	size_t len;
	const char *const *groups;
	size_t ngroups;
};

/* The contact fields a policy's contact() may return (Syncro contact
 * fields), in this order; customer_id is kept apart as a number. */
enum policy_contact_field {
	POLICY_NAME, POLICY_EMAIL, POLICY_PHONE, POLICY_MOBILE, POLICY_TITLE,
	POLICY_ADDRESS1, POLICY_ADDRESS2, POLICY_CITY, POLICY_STATE, POLICY_ZIP,
	POLICY_NOTES, POLICY_NFIELDS
};
extern const char *const policy_contact_field_names[POLICY_NFIELDS];
/* The longest value a policy may give a contact field (bytes): notes, and
 * every other field. Syncro's own fields are short; a policy that returns
 * megabytes is a mistake that would hold memory for every user. */
#define POLICY_NOTES_MAX 16384
#define POLICY_FIELD_MAX 4096
/* Whether v (len bytes) may be contact field f (enum above): no NUL byte,
 * valid UTF-8, within its length. false with *why ("is 2000000 bytes, more
 * than 16384"). */
bool policy_field_value_ok(int f, const char *v, size_t len, char *why, size_t cap);

/* The outcome of include() and contact() for one user. Strings live in one
 * block owned by the struct; free with policy_decision_free. */
struct policy_decision {
	bool include;                    /* include(u, t) returned true */
	const char *reason;              /* include's second result, or NULL */
	const char *field[POLICY_NFIELDS]; /* contact fields; NULL = not given */
	long long customer_id;           /* contact's customer_id; 0 = not given */
	char *block;                     /* owns the strings above */
};
void policy_decision_free(struct policy_decision *d);

/* Calls include(u, t) -> boolean [, reason] and, when included and the
 * policy has contact, contact(u, t) -> table of contact fields. Each call
 * gets the instruction budget. Contact values must be strings or numbers
 * (numbers become text: 12345 -> "12345"); nil leaves a field unset; any
 * other type, or an unknown field, is an error naming the contact
 * function's file:line ("policies/acme.lua:20: unknown contact field
 * 'emial' (did you mean 'email'?)"). customer_id must be an integer (or
 * digits). On failure *out is left empty (nothing to free). */
int script_policy_eval(struct script *s, const struct policy_user *user, struct policy_decision *out,
                       struct err *err);

/* ---- JSON pages -------------------------------------------------------- */

/* Calls fn(ud, item, item_len) with the text of each element of the array
 * under the top-level member `key` of a JSON object (a Graph page's
 * "value"), without parsing the elements: one quick scan of the page, no
 * allocation. The items are checked only for balanced strings and
 * brackets; parse each one strictly (e.g. script_policy_eval with .json).
 * Returns 0 (also when key is absent), fn's first non-zero result, or -1
 * with err for a malformed page (byte offset, line, column). */
int script_json_each_item(const char *json, size_t len, const char *key,
                          int (*fn)(void *ud, const char *item, size_t len), void *ud, struct err *err);

/* Calls the loaded policy's function `name` (license, secure_score, ...)
 * with args (JSON values pushed as Lua values, null object members left
 * out; a NULL arg is nil) followed by the tenant table t, under the limits
 * (a fresh instruction budget). *result gets its first result converted to
 * JSON (NULL for nil; caller frees with cJSON_Delete). Errors name the
 * function ("policy error in license(): ...") as for include(). */
int script_policy_call(struct script *s, const char *name, const struct cJSON *const *args, size_t nargs,
                       struct cJSON **result, struct err *err);

/* Calls the loaded policy's verdict hook `hook` (protect, allow_action) on
 * one user as hook([lead,] u, t): lead, when not NULL, is a string first
 * argument (allow_action's action); u is the user table exactly as for
 * include() (struct policy_user: lazy from text, u.domain, u.groups,
 * u.licenses); t the tenant table. The hook answers as include does, true or
 * false [, reason (string or number)], except that nil counts as false. One
 * protected call under the limits (a fresh instruction budget), so errors
 * name the hook and the policy's file:line:
 *   policy error in protect(): policies/acme.lua:8: attempt to index a nil value
 *   instruction budget exceeded (10000000 instructions) in protect() at policies/acme.lua:9
 *   policies/acme.lua:5: protect() must return true or false [, reason], got string
 *   user in protect(): invalid JSON at byte offset 12 ...   (the caller's user text)
 * On success *yes and *reason (NULL when not given; caller frees) are set;
 * on failure *yes is false and *reason NULL. */
int script_policy_verdict(struct script *s, const char *hook, const char *lead, const struct policy_user *user,
                          bool *yes, char **reason, struct err *err);

/* Who asked for an action (a Syncro ticket's contact): allow_action's
 * fourth argument, a table { contact_id, self, user_id, mail, upn } (the
 * last three nil when the contact is linked to no user). */
struct policy_requester {
	long long contact_id;
	bool self;                 /* the requester is the user acted on */
	const char *user_id;       /* the Entra user the contact is linked to, or NULL */
	const char *mail, *upn;    /* that user's, or NULL */
};
/* script_policy_verdict with that fourth argument (req NULL: none). */
int script_policy_verdict_by(struct script *s, const char *hook, const char *lead, const struct policy_user *user,
                             const struct policy_requester *req, bool *yes, char **reason, struct err *err);

/* Calls the loaded policy's table hook `hook` (bill) as hook(args..., t):
 * arguments as for script_policy_call, one protected call under the limits
 * (a fresh instruction budget), errors naming the hook and the policy's
 * file:line as for script_policy_verdict. The hook answers a table, nil or
 * false:
 *   a table  *table gets it as JSON (an object; a list as an array; caller
 *            frees with cJSON_Delete), *declined is false
 *   nil      *table NULL, *declined false
 *   false    *table NULL, *declined true
 * Any other answer, or a table JSON cannot hold, is an error:
 *   policies/acme.lua:12: bill() must return a table, nil or false, got string
 *   policies/acme.lua:12: bill() returned a table that is not JSON: cannot encode a function value at $.f
 * where (where_cap bytes, may be NULL) gets the "file:line" of the hook's
 * definition ("" when there is no such hook), for the caller's own checks
 * of the table. On failure *table is NULL. */
int script_policy_table(struct script *s, const char *hook, const struct cJSON *const *args, size_t nargs,
                        struct cJSON **table, bool *declined, char *where, size_t where_cap, struct err *err);

#endif
