/* embed — the runtime's own Lua modules (lua/entrasync/NAME.lua) compiled into
 * the binary by src/tools/embedgen.c. Terminated by an entry with name NULL. */
#ifndef ENTRASYNC_EMBED_H
#define ENTRASYNC_EMBED_H
#include <stddef.h>

struct embedded_lua {
	const char *name;   /* module name, e.g. "entrasync.policy" */
	const char *path;   /* source path in the repo, for messages */
	const char *text;
	size_t len;
};

extern const struct embedded_lua embedded_lua[];

#endif
