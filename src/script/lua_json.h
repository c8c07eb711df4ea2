/* lua_json — JSON <-> Lua conversion for the scripting layer (internal:
 * only src/script/script.c and src/script/lua_*.c include this, since it needs lua.h).
 * Also builds the `entrasync.json` module table (decode, encode, null, array).
 *
 * Mapping (JSON -> Lua):
 *   object -> table with string keys; array -> sequence 1..n;
 *   string -> string (UTF-8 bytes kept as they are; \u escapes, surrogate
 *             pairs included, are decoded by cJSON to UTF-8);
 *   number -> integer when integral and |x| <= 2^53, else float. cJSON stores
 *             doubles, so integers beyond 2^53 are not exact: the text
 *             9007199254740993 (2^53+1) parses to the double 2^53 and so
 *             arrives as the integer 2^53; 2^53+2 arrives as a float;
 *   true/false -> boolean;
 *   null   -> the light userdata sentinel json.null (LUAJSON_NULL_SENTINEL),
 *             or, in LUAJSON_NULL_ABSENT mode, object members whose value is
 *             null are left out (array elements stay json.null so that
 *             positions hold). Policies' user tables use ABSENT mode.
 *   An empty JSON array decodes to an empty table carrying the json.array
 *   metatable, so it encodes back as [] (an unmarked empty table encodes {}).
 * Mapping (Lua -> JSON):
 *   a table whose keys are exactly 1..n (n >= 1) -> array; a table whose
 *   keys are all strings -> object with keys sorted bytewise (deterministic
 *   output); an empty table -> {} unless marked with json.array -> [];
 *   anything else (mixed keys, sparse arrays, functions, NaN/inf, strings
 *   that are not valid UTF-8 or hold NUL) is an error naming the path.
 *   Integers print without ".0" and exactly (json.encode emits integers
 *   beyond +-2^31 as raw digits, so int64 values survive).
 *
 * Functions marked "may raise" can throw Lua errors (memory, depth) and must
 * run inside a protected call (script.c's single protected-call function). */
#ifndef ENTRASYNC_LUA_JSON_H
#define ENTRASYNC_LUA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <lua.h>
#include "script/lua_costly.h"
#include "util/util.h"

#define LUAJSON_DEFAULT_DEPTH 64

enum luajson_null_mode {
	LUAJSON_NULL_SENTINEL,     /* null -> json.null */
	LUAJSON_NULL_ABSENT,       /* null object members are left out */
};

/* Pushes the json.null sentinel / tells whether the value at idx is it. */
void luajson_push_null(lua_State *L);
int luajson_is_null(lua_State *L, int idx);

/* Pushes v as a Lua value. Nesting deeper than max_depth (objects/arrays)
 * raises "JSON nested too deeply (more than N levels)". A top-level object
 * gets `extra` spare hash slots (for fields the caller adds). May raise. */
void luajson_push(lua_State *L, const cJSON *v, int max_depth, enum luajson_null_mode nulls, int extra);

/* Parses text[0..len) straight into a Lua value (a strict RFC 8259 parser
 * of its own: no cJSON tree in between) and pushes it, nulls as json.null.
 * A malformed text raises "invalid JSON at byte offset B (line L, column
 * C): why near '...'"; may raise. Same mapping as luajson_push. Duplicate
 * object keys: the first one wins (as cJSON's lookups). */
void luajson_push_text(lua_State *L, const char *text, size_t len, int max_depth);
/* The same with a null mode, and `extra` spare hash slots in a top-level
 * object (for fields the caller adds, so the table is not resized). */
void luajson_push_text_mode(lua_State *L, const char *text, size_t len, int max_depth, enum luajson_null_mode nulls,
                            int extra);

/* Members of a user table the caller computes instead of reading them from
 * the text (u.domain, u.groups, u.licenses): push(L, u, i, ud) pushes the
 * value of names[i] (nil: absent) for the user table at index u; it may read
 * u's other members. Called when the member is first read (or by pairs and
 * json.encode), during the call only. A JSON member of the same name is
 * hidden. At most LUAJSON_MAX_SYNTH names. */
#define LUAJSON_MAX_SYNTH 8
struct luajson_synth {
	const char *const *names;
	unsigned n;
	void (*push)(lua_State *L, int u, unsigned i, void *ud);   /* may raise */
	void *ud;
};

/* Pushes a user object as a lazy table: the whole text is checked first
 * (malformed JSON, nesting, non-object raise before anything is built),
 * then each top-level member becomes a Lua value on first access through
 * u's __index and is stored in u; null members are absent. Members this
 * state's earlier calls read are converted at once (the names a policy reads
 * are learnt, and re-learnt every 1,024 users), so that the policy's usual
 * reads cost no metamethod call. The synth members (may be NULL) are made
 * on first read. pairs(u) (its __pairs) and json.encode convert every
 * member first. An assignment to a member hides the original for good.
 * Caveats: raw next(u) and rawget(u, k) see only the members converted so
 * far; one lazy user per state at a time. The text is NOT copied: it (and
 * synth) must stay valid until luajson_user_release; after that, members
 * already converted stay in a kept u, and touching any other raises an
 * error (never a stale read). May raise. */
void luajson_push_user(lua_State *L, const char *text, size_t len, int max_depth, const struct luajson_synth *synth);
void luajson_user_release(lua_State *L);
/* Marks the current user table, when t is it, as changed by Lua (the
 * sandbox's rawset calls this; u's own __newindex does it itself, and its
 * metatable is protected). */
void luajson_user_touch(lua_State *L, int t);

/* What luajson_user_view sees of one member. */
enum luajson_view_kind {
	LUAJSON_VIEW_ABSENT,       /* no such member, or null */
	LUAJSON_VIEW_STRING,       /* a string without escapes: p, len are its bytes (no quotes) */
	LUAJSON_VIEW_OTHER,        /* anything else: p, len are its JSON text */
	LUAJSON_VIEW_LUA,          /* converted already, to a Lua value other than a string */
};
struct luajson_view {
	const char *p;
	size_t len;
	enum luajson_view_kind kind;
};
#define LUAJSON_MAX_VIEW 64
/* Reads members of the current lazy user table at t (luajson_push_user)
 * without making Lua values: out[i] for names[i] (the first member of that
 * name): from the text when not converted yet, else what u holds now (a
 * string then points into the Lua string, valid while u holds it). Returns
 * false when t is not the current lazy user, was made from a cJSON object
 * or eagerly, or Lua gave it a member it did not have (through __newindex
 * or the sandbox's rawset); then read u in Lua. names must be a static
 * array (its address keys a cache); n <= LUAJSON_MAX_VIEW. Never raises
 * (uses three stack slots when it can have them). */
bool luajson_user_view(lua_State *L, int t, const char *const *names, unsigned n, struct luajson_view *out);
/* Makes the plain user table at t (luajson_push of a cJSON object) the
 * state's current user with synth members made on first read, as above
 * (members of those names are removed first). Release it the same way.
 * May raise. */
void luajson_user_synth(lua_State *L, int t, const struct luajson_synth *synth);

/* Parses text with cJSON and reports malformed input with its byte offset,
 * line and column in err. Trailing non-space data is an error. The caller
 * frees the tree with cJSON_Delete. Never raises (plain C). */
int luajson_parse(const char *text, size_t len, cJSON **out, struct err *err);

/* Converts the Lua value at idx to a new cJSON tree (caller frees it).
 * Returns NULL and fills err (with a path such as "$.groups[2]") when the
 * value cannot be represented. Integers become cJSON numbers (doubles).
 * Does not raise Lua errors except on Lua memory exhaustion (lazy user
 * tables inside the value are converted in full first). */
cJSON *luajson_to_cjson(lua_State *L, int idx, int max_depth, struct err *err);

/* Pushes a new table: the `entrasync.json` module (decode, encode, null,
 * array, is_array). max_depth limits json.decode's nesting. charge (may be
 * NULL: nothing charged) is given the C work of decode and encode, which no
 * count hook sees: a step per 64 bytes of the text decode reads (before)
 * and of the text encode made (once made: no argument foretells the size
 * of a table's walk). May raise. */
void luajson_open(lua_State *L, int max_depth, luacostly_charge charge);

#endif
