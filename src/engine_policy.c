/* engine_policy — a tenant's policy for the engine: load (with its hash and
 * create_only mask), evaluate include + contact on a mirrored user, and
 * on_leave through a generated wrapper policy in a second sandbox (see
 * engine_policy.h for why). Uses script.h only; never lua.h. */
#include "engine_policy.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "embed.h"

_Static_assert(POLICY_NAME == (int)SYNCRO_F_NAME && POLICY_EMAIL == (int)SYNCRO_F_EMAIL &&
               POLICY_TITLE == (int)SYNCRO_F_TITLE && POLICY_NOTES == (int)SYNCRO_F_NOTES &&
               POLICY_NFIELDS == (int)SYNCRO_F_CUSTOMER_ID,
               "policy contact fields and Syncro fields share one order");

int engine_file_hash(const char *path, char out[65], struct err *err)
{
	char *text = NULL;
	size_t len = 0;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (file_read(path, &text, &len, err) != 0) return err_prefix(err, "policy hash");
	int ok = EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) == 1;
	free(text);
	if (!ok) return err_set(err, "policy hash: SHA-256 failed");
	for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* A long-bracket level that does not occur in text: "]" + n '=' + "]". */
static int bracket_level(const char *text)
{
	for (int n = 1; n < 64; n++) {
		char close[70];
		close[0] = ']';
		memset(close + 1, '=', (size_t)n);
		close[n + 1] = ']';
		close[n + 2] = '\0';
		if (!strstr(text, close)) return n;
	}
	return -1;
}

/* The wrapper policy: include(u, t) runs the real on_leave(u.c, u.why, t)
 * and says keep/delete (false + word) or changes (true); contact() returns
 * the changes table. The real file is loaded from a long string with
 * chunkname "@PATH", so its errors keep their file:line. */
static char *leave_wrapper(const char *path, const char *text, struct err *err)
{
	int lvl = bracket_level(text);
	if (lvl < 0) {
		err_set(err, "%s: cannot wrap the policy for on_leave", path);
		return NULL;
	}
	char eq[65];
	memset(eq, '=', (size_t)lvl);
	eq[lvl] = '\0';
	struct buf b = {0};
	buf_printf(&b, "local src = [%s[\n", eq);
	buf_adds(&b, text);
	buf_printf(&b, "]%s]\nlocal chunk = assert(load(src, ", eq);
	/* "@" .. path as a Lua string literal */
	buf_adds(&b, "\"@");
	for (const char *p = path; *p; p++) {
		if (*p == '"' || *p == '\\') buf_addc(&b, '\\');
		if (*p == '\n') buf_adds(&b, "\\n");
		else buf_addc(&b, *p);
	}
	buf_adds(&b, "\", \"t\"))\n"
	       "local on_leave = chunk().on_leave\n"
	       "local changes\n"
	       "return {\n"
	       "  include = function(u, t)\n"
	       "    changes = nil\n"
	       "    local r = on_leave(u.c, u.why, t)\n"
	       "    if r == \"keep\" or r == \"delete\" then return false, r end\n"
	       "    if type(r) == \"table\" then changes = r; return true end\n"
	       "    error(\"on_leave must return \\\"keep\\\", \\\"delete\\\" or a table of contact fields, got \" .. "
	       "(type(r) == \"string\" and (\"'\" .. r .. \"'\") or type(r)), 0)\n"
	       "  end,\n"
	       "  contact = function(u, t) local r = changes; changes = nil; return r end,\n"
	       "}\n");
	return buf_steal(&b);
}

/* Writes the wrapper to a private temporary file, loads it into a new
 * state, removes the file. */
static int load_leave_state(struct engine_policy *p, const char *path, const struct script_limits *limits,
                            const struct script_tenant *t, struct err *err)
{
	char *text = NULL, *wrapper = NULL;
	size_t len = 0;
	int rc = -1, fd = -1;
	const char *tmp = getenv("TMPDIR");
	char *tpl = xasprintf("%s/entrasync-on_leave-XXXXXX.lua", tmp && *tmp ? tmp : "/tmp");
	if (file_read(path, &text, &len, err) != 0) goto out;
	if (!(wrapper = leave_wrapper(path, text, err))) goto out;
	if ((fd = mkstemps(tpl, 4)) < 0) {
		err_set(err, "on_leave: cannot create a temporary file in %s", tmp && *tmp ? tmp : "/tmp");
		goto out;
	}
	size_t wlen = strlen(wrapper);
	if (write(fd, wrapper, wlen) != (ssize_t)wlen) {
		err_set(err, "on_leave: cannot write %s", tpl);
		goto out;
	}
	if (script_new(limits, &p->leave, err) != 0) goto out;
	if (script_policy_load(p->leave, tpl, err) != 0) goto out;
	if (t && script_set_tenant(p->leave, t, err) != 0) goto out;
	rc = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tpl);
	}
	free(tpl);
	free(text);
	free(wrapper);
	return rc;
}

/* The start of every plan stamp (see engine_policy.h). */
static uint64_t stamp_base(const char *hash, const struct script_tenant *t)
{
	char num[32];
	uint64_t h = engine_hash(ENGINE_STAMP_SEED, ENTRASYNC_VERSION, sizeof ENTRASYNC_VERSION);
	for (const struct embedded_lua *m = embedded_lua; m->name; m++) h = engine_hash(h, m->text, m->len);
	h = engine_hash(h, hash, strlen(hash) + 1);
	if (t) {
		const char *parts[] = { t->id, t->name, t->default_domain };
		for (size_t i = 0; i < ARRAY_LEN(parts); i++)
			h = engine_hash(h, parts[i] ? parts[i] : "", parts[i] ? strlen(parts[i]) + 1 : 1);
		snprintf(num, sizeof num, "%lld", t->syncro_customer_id);
		h = engine_hash(h, num, strlen(num) + 1);
	}
	return h;
}

int engine_policy_load(struct engine_policy *p, const char *path, const struct script_limits *limits,
                       const struct script_tenant *t, struct err *err)
{
	memset(p, 0, sizeof *p);
	if (script_new(limits, &p->main, err) != 0) goto fail;
	if (script_policy_load(p->main, path, err) != 0) goto fail;
	p->info = script_policy_info(p->main);
	if (!(p->info->functions & POLICY_FN_INCLUDE)) {
		err_set(err, "%s: the policy has no include function", path);
		goto fail;
	}
	if (t && script_set_tenant(p->main, t, err) != 0) goto fail;
	if (engine_fields_mask((const char *const *)p->info->create_only, p->info->ncreate_only, &p->plan.create_only,
	                       err) != 0) {
		err_prefix(err, "%s", path);
		goto fail;
	}
	if (engine_file_hash(path, p->hash, err) != 0) goto fail;
	p->stamp_base = stamp_base(p->hash, t);
	if (p->info->on_leave == POLICY_ON_LEAVE_FUNCTION && load_leave_state(p, path, limits, t, err) != 0) {
		err_prefix(err, "%s: on_leave", path);
		goto fail;
	}
	return 0;
fail:
	engine_policy_free(p);
	return -1;
}

void engine_policy_free(struct engine_policy *p)
{
	if (!p) return;
	script_free(p->main);
	script_free(p->leave);
	memset(p, 0, sizeof *p);
}

/* Splits the groups string into names and ids (pointers into copy). */
static size_t split_groups(char *copy, const char **out, size_t max)
{
	size_t n = 0;
	for (char *rec = copy; rec && *rec && n + 2 <= max;) {
		char *next = strchr(rec, '\x1E');
		if (next) *next++ = '\0';
		char *sep = strchr(rec, '\x1F');
		if (sep) {
			*sep = '\0';
			if (*rec) out[n++] = rec;
			if (sep[1]) out[n++] = sep + 1;
		} else if (*rec) {
			out[n++] = rec;
		}
		rec = next;
	}
	return n;
}

#define MAX_GROUP_KEYS 512

int engine_policy_eval(struct engine_policy *p, const cJSON *user, const char *groups, struct policy_decision *out,
                       struct err *err)
{
	return engine_policy_eval_json(p, user, NULL, groups, out, err);
}

int engine_policy_eval_json(struct engine_policy *p, const cJSON *user, const char *json, const char *groups,
                            struct policy_decision *out, struct err *err)
{
	const char *gkeys[MAX_GROUP_KEYS];
	size_t ng = 0;
	char *gcopy = groups && *groups ? xstrdup(groups) : NULL;
	if (gcopy) ng = split_groups(gcopy, gkeys, MAX_GROUP_KEYS);
	/* u.licenses: made by the script layer from the user's assignedLicenses */
	struct policy_user pu = { .graph = json ? NULL : user, .json = json, .len = json ? strlen(json) : 0,
	                          .groups = gkeys, .ngroups = ng };
	int rc = script_policy_eval(p->main, &pu, out, err);
	free(gcopy);
	return rc;
}

/* Replaces "in include()" / "in contact()" of the wrapper's messages. */
static void name_on_leave(struct err *err)
{
	static const char *const from[] = { "in include()", "in contact()" };
	for (size_t i = 0; i < ARRAY_LEN(from); i++) {
		char *at = strstr(err->msg, from[i]);
		if (!at) continue;
		struct buf b = {0};
		buf_add(&b, err->msg, (size_t)(at - err->msg));
		buf_adds(&b, "in on_leave()");
		buf_adds(&b, at + strlen(from[i]));
		err_set(err, "%s", b.data);
		buf_free(&b);
	}
}

int engine_policy_on_leave(struct engine_policy *p, const struct syncro_fields *c, long long contact_id,
                           const char *why, struct engine_leave *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	switch (p->info->on_leave) {
	case POLICY_ON_LEAVE_UNSET:
	case POLICY_ON_LEAVE_KEEP:
		out->kind = ENGINE_LEAVE_KEEP;
		return 0;
	case POLICY_ON_LEAVE_DELETE:
		out->kind = ENGINE_LEAVE_DELETE;
		return 0;
	case POLICY_ON_LEAVE_FUNCTION:
		break;
	}
	if (!p->leave) return err_set(err, "on_leave: not loaded");
	/* u = { c = {fields…, id = contact_id}, why = why } */
	cJSON *u = cJSON_CreateObject(), *cj = cJSON_AddObjectToObject(u, "c");
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (!c->v[f]) continue;
		long long n;
		char *end;
		if (f == SYNCRO_F_CUSTOMER_ID && (n = strtoll(c->v[f], &end, 10), *end == '\0'))
			cJSON_AddNumberToObject(cj, "customer_id", (double)n);
		else cJSON_AddStringToObject(cj, syncro_field_name((enum syncro_field)f), c->v[f]);
	}
	if (contact_id) cJSON_AddNumberToObject(cj, "id", (double)contact_id);
	cJSON_AddStringToObject(u, "why", why);
	struct policy_decision d;
	struct policy_user pu = { .graph = u };
	int rc = script_policy_eval(p->leave, &pu, &d, err);
	cJSON_Delete(u);
	if (rc != 0) {
		name_on_leave(err);
		return -1;
	}
	if (!d.include) {
		out->kind = d.reason && strcmp(d.reason, "delete") == 0 ? ENGINE_LEAVE_DELETE : ENGINE_LEAVE_KEEP;
	} else {
		out->kind = ENGINE_LEAVE_CHANGES;
		for (int f = 0; f < POLICY_NFIELDS && f < SYNCRO_F_CUSTOMER_ID; f++)
			if (d.field[f]) syncro_fields_set(&out->changes, (enum syncro_field)f, d.field[f]);
	}
	policy_decision_free(&d);
	return 0;
}

void engine_desired_fields(const struct policy_decision *d, long long default_customer, struct syncro_fields *out)
{
	syncro_fields_free(out);
	/* policy_contact_field and syncro_field share the order name..notes */
	for (int f = 0; f < POLICY_NFIELDS && f < SYNCRO_F_CUSTOMER_ID; f++)
		if (d->field[f]) syncro_fields_set(out, (enum syncro_field)f, d->field[f]);
	long long cust = d->customer_id > 0 ? d->customer_id : default_customer;
	if (cust > 0) {
		char num[32];
		snprintf(num, sizeof num, "%lld", cust);
		syncro_fields_set(out, SYNCRO_F_CUSTOMER_ID, num);
	}
}
