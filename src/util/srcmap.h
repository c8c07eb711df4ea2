/* srcmap — finds where a key is written in Lua source text, so that errors
 * about a config or policy table can name file:line even though Lua keeps
 * no line numbers for table fields. A small Lua tokenizer (comments, short
 * and long strings, names, punctuation); no Lua state involved. */
#ifndef ENTRASYNC_SRCMAP_H
#define ENTRASYNC_SRCMAP_H

#include <stddef.h>

/* Returns the 1-based line where the key path is written in src, or 0 when
 * it cannot be found. path[0] is a top-level assignment (`graph = {…}`) or a
 * field of the table the chunk returns (`return { include = … }`); each
 * further element is a field of the table constructor that is the previous
 * key's value. An element "#N" (N from 1) selects the Nth positional item of
 * that constructor, e.g. {"tenants", "#2", "policy"}. When a one-element
 * path is not found structurally, the first `name =` or `.name =` anywhere
 * is used (policies that build their table with `P.include = …`). With
 * depth 1 and a "#N" or a path that stops at a table, the line of that
 * value's opening is returned. */
int srcmap_key_line(const char *src, size_t len, const char *const *path, size_t depth);

/* The same, tokenizing the source once for many look-ups (a config with
 * thousands of tenants): srcmap_new copies nothing and keeps a pointer to
 * src, which must outlive the map. Positional items asked for in order
 * ("#1", "#2", ...) cost only the tokens between them (the map remembers
 * where the last one was). srcmap_free(NULL) is a no-op. */
struct srcmap;
struct srcmap *srcmap_new(const char *src, size_t len);
int srcmap_line(struct srcmap *map, const char *const *path, size_t depth);
void srcmap_free(struct srcmap *map);

#endif
