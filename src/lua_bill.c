/* lua_bill — the policy's bill(sku, t) hook (billing_hook.h), through
 * script.h's public API only: the policy is validated by
 * script_policy_load, then a generated wrapper policy is loaded in the same
 * sandboxed state; its include(u, t) calls the real bill(u.sku, t) and
 * returns the table as JSON text in include's reason, which
 * billing_item_from_json checks. The wrapper is written to a private
 * temporary file (script_policy_load reads files) and removed at once. */
#include "billing_hook.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot.h"

struct billing_hook {
	struct script *s;
	char *path;
	char *wrapper;                     /* the wrapper's file name, kept out of tracebacks */
};

/* The long-bracket level (number of '=') whose closing bracket does not
 * occur in text, or -1. */
static int long_bracket_level(const char *text)
{
	char close[40];
	for (int n = 0; n < 32; n++) {
		close[0] = ']';
		memset(close + 1, '=', (size_t)n);
		close[n + 1] = ']';
		close[n + 2] = '\0';
		if (!strstr(text, close)) return n;
	}
	return -1;
}

/* Appends text as a Lua long string literal [==[…]==] (the newline after
 * the opening bracket is dropped by Lua, so one is added). */
static int add_long_string(struct buf *b, const char *text)
{
	int n = long_bracket_level(text);
	if (n < 0) return -1;
	buf_addc(b, '[');
	for (int i = 0; i < n; i++) buf_addc(b, '=');
	buf_adds(b, "[\n");
	buf_adds(b, text);
	buf_addc(b, ']');
	for (int i = 0; i < n; i++) buf_addc(b, '=');
	buf_addc(b, ']');
	return 0;
}

/* The wrapper policy around the policy text of path. */
static char *wrapper_text(const char *path, const char *text, struct err *err)
{
	struct buf b = {0};
	if (str_starts(text, "\xEF\xBB\xBF")) text += 3;   /* a UTF-8 BOM */
	buf_adds(&b, "local src = ");
	if (add_long_string(&b, text) != 0) goto fail;
	buf_adds(&b, "\nlocal name = ");
	char *chunkname = xasprintf("@%s", path);
	int rc = add_long_string(&b, chunkname);
	free(chunkname);
	if (rc != 0) goto fail;
	buf_adds(&b,
		"\nlocal bill = assert(load(src, name, \"t\"))().bill\n"
		"local encode = require(\"entrasync.json\").encode\n"
		"return {\n"
		"  include = function(u, t)\n"
		"    local r = bill(u.sku, t)\n"
		"    if r == nil then return false end\n"
		"    if r == false then return false, \"free\" end\n"
		"    if type(r) ~= \"table\" then\n"
		"      error(\"bill() must return a table, nil or false, got \" .. type(r), 0)\n"
		"    end\n"
		"    return true, encode(r)\n"
		"  end,\n"
		"}\n");
	return buf_steal(&b);
fail:
	buf_free(&b);
	err_set(err, "%s: cannot wrap the policy's bill()", path);
	return NULL;
}

/* Writes text to a private temporary file and loads it as the state's
 * policy; the file is removed before returning. *name gets its name. */
static int load_wrapper(struct script *s, const char *text, char **name, struct err *err)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir) dir = "/tmp";
	char *tmp = xasprintf("%s/entrasync-bill-XXXXXX.lua", dir);
	int rc = -1, fd = mkstemps(tmp, 4);
	if (fd < 0) {
		err_set(err, "bill(): cannot create a temporary file in %s", dir);
		goto out;
	}
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len) {
		err_set(err, "bill(): cannot write %s", tmp);
		goto out;
	}
	rc = script_policy_load(s, tmp, err);
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	*name = tmp;
	return rc;
}

int billing_hook_open(const char *path, const struct script_limits *limits, struct billing_hook **out,
                      struct err *err)
{
	struct billing_hook *h = xcalloc(1, sizeof *h);
	char *text = NULL, *wrapper = NULL;
	int rc = -1;
	*out = NULL;
	h->path = xstrdup(path);
	if (script_new(limits, &h->s, err) != 0) goto out;
	if (script_policy_load(h->s, path, err) != 0) goto out;
	if (!(script_policy_info(h->s)->functions & POLICY_FN_BILL)) {
		err_set(err, "%s: the policy has no bill function (bill = function(sku, t) ... end)", path);
		goto out;
	}
	if (snapshot_file_read(path, &text, NULL, err) != 0) goto out;
	if (!(wrapper = wrapper_text(path, text, err))) goto out;
	if (load_wrapper(h->s, wrapper, &h->wrapper, err) != 0) {
		err_prefix(err, "%s: bill()", path);
		goto out;
	}
	*out = h;
	rc = 0;
out:
	free(text);
	free(wrapper);
	if (rc != 0) billing_hook_free(h);
	return rc;
}

void billing_hook_free(struct billing_hook *h)
{
	if (!h) return;
	script_free(h->s);
	free(h->path);
	free(h->wrapper);
	free(h);
}

const char *billing_hook_path(const struct billing_hook *h)
{
	return h->path;
}

int billing_hook_set_tenant(struct billing_hook *h, const struct script_tenant *t, struct err *err)
{
	return script_set_tenant(h->s, t, err);
}

/* The wrapper's messages say include(): they are bill()'s; traceback
 * lines of the wrapper itself (and of the C call into it) are left out. */
static void say_bill(const struct billing_hook *h, struct err *err)
{
	struct buf b = {0};
	const char *at = strstr(err->msg, "include()");
	if (at) {
		buf_add(&b, err->msg, (size_t)(at - err->msg));
		buf_adds(&b, "bill()");
		at += strlen("include()");
	} else {
		at = err->msg;
	}
	for (const char *line = at; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
		char *one = xstrndup(line, len);
		bool ours = (h->wrapper && strstr(one, h->wrapper)) || strstr(one, "[C]: in ?");
		if (!ours) buf_adds(&b, one);
		free(one);
		line += len;
	}
	while (b.len && b.data[b.len - 1] == '\n') b.data[--b.len] = '\0';
	err_set(err, "%s", b.data ? b.data : "");
	buf_free(&b);
}

int billing_hook_call(struct billing_hook *h, const struct billing_usage *u, const struct billing_period *p,
                      enum billing_verdict *v, struct billing_item *item, struct err *err)
{
	struct policy_decision d;
	cJSON *arg = billing_usage_cjson(u, p);
	struct policy_user pu = { .graph = arg };
	int rc = script_policy_eval(h->s, &pu, &d, err);
	cJSON_Delete(arg);
	memset(item, 0, sizeof *item);
	*v = BILLING_NOT_BILLED;
	if (rc != 0) {
		say_bill(h, err);
		return -1;
	}
	if (!d.include) {
		*v = d.reason && strcmp(d.reason, "free") == 0 ? BILLING_FREE : BILLING_NOT_BILLED;
	} else if (billing_item_from_json(d.reason, u, item, err) == 0) {
		*v = BILLING_BILLED;
	} else {
		err_prefix(err, "%s", h->path);
		rc = -1;
	}
	policy_decision_free(&d);
	return rc;
}
