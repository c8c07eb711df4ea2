/* script — the scripting layer's C API: sandboxed Lua states (one per
 * tenant), policy loading and validation, protected calls with tracebacks,
 * instruction and memory limits. The only layer that includes lua.h
 * (src/script.c and one src/lua_<namespace>.c per binding namespace).
 * (The script helper completes this header; the declarations below are the
 * contract the face and the config loader rely on.) */
#ifndef ENTRASYNC_SCRIPT_H
#define ENTRASYNC_SCRIPT_H

#include <stddef.h>
#include "util.h"

struct script;                       /* one sandboxed lua_State + its limits */

struct script_limits {
	long long instructions;          /* per call into Lua; 0 = default (10,000,000) */
	size_t memory_bytes;             /* per state; 0 = default (64 MiB) */
};

/* --lua-dir: load the runtime's entrasync.* modules from DIR/entrasync/NAME.lua
 * instead of the copies compiled into the binary. NULL = embedded. */
void script_set_lua_dir(const char *dir);

/* Creates a sandboxed state. *out is owned by the caller (script_free). */
int script_new(const struct script_limits *limits, struct script **out, struct err *err);
void script_free(struct script *s);

/* Loads a policy file (text only, never bytecode), runs it under the limits,
 * and validates the table it returns: known keys with the right types;
 * unknown keys rejected with "file:line: unknown key 'x' in policy (did you
 * mean 'y'?)". The table is kept in the state for later calls. */
int script_policy_load(struct script *s, const char *path, struct err *err);

/* Runs a Lua file in the same sandbox as policies (the `entrasync lua`
 * developer command and the Lua tests): argv is available as the global
 * table `arg`. Errors carry file:line and a traceback. */
int script_run_file(struct script *s, const char *path, int argc, char **argv, struct err *err);

#endif
