/* engine_policy — a tenant's policy for the engine: load (with its hash and
 * create_only mask), evaluate include + contact on a mirrored user, and
 * on_leave (script_policy_call, its answer checked here). Uses script.h
 * only; never lua.h. */
#include "engine/engine_policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "script/embed.h"
#include "util/snapshot.h"
#include "util/srcmap.h"

_Static_assert(POLICY_NAME == (int)SYNCRO_F_NAME && POLICY_EMAIL == (int)SYNCRO_F_EMAIL &&
               POLICY_TITLE == (int)SYNCRO_F_TITLE && POLICY_NOTES == (int)SYNCRO_F_NOTES &&
               POLICY_NFIELDS == (int)SYNCRO_F_CUSTOMER_ID,
               "policy contact fields and Syncro fields share one order");

/* Hex SHA-256 of text[0..len) into out[65]. */
static int text_hash(const char *text, size_t len, char out[65], struct err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) != 1) return err_set(err, "policy hash: SHA-256 failed");
	for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* "file:line" where the policy text writes on_leave (just "file" when it
 * cannot be found) into out[cap]. */
static void leave_place(const char *path, const char *text, size_t len, char *out, size_t cap)
{
	const char *key[] = { "on_leave" };
	int line = srcmap_key_line(text, len, key, 1);
	if (line > 0) snprintf(out, cap, "%s:%d", path, line);
	else snprintf(out, cap, "%s", path);
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
	/* read once: the text loaded is the text hashed (the plan stamp) */
	char *text = NULL;
	size_t len = 0;
	if (snapshot_file_read(path, &text, &len, err) != 0) {
		err_prefix(err, "cannot read policy");
		goto fail;
	}
	if (script_new(limits, &p->main, err) != 0) goto fail;
	if (script_policy_load_text(p->main, path, text, len, err) != 0) goto fail;
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
	if (text_hash(text, len, p->hash, err) != 0) goto fail;
	p->stamp_base = stamp_base(p->hash, t);
	if (p->info->on_leave == POLICY_ON_LEAVE_FUNCTION) leave_place(path, text, len, p->leave_where, sizeof p->leave_where);
	free(text);
	return 0;
fail:
	free(text);
	engine_policy_free(p);
	return -1;
}

void engine_policy_free(struct engine_policy *p)
{
	if (!p) return;
	script_free(p->main);
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

/* Refuses a call once the policy ran out of its limits too often in this
 * run (-1 with err), else 0. */
static int exhausted_check(const struct engine_policy *p, struct err *err)
{
	if (p->exhausted < ENGINE_POLICY_MAX_EXHAUSTED) return 0;
	return err_set(err, "not evaluated: the policy ran out of its limits for %d users already in this run, so it is "
	               "not called again until the next run; the first: %s", p->exhausted, p->exhausted_first);
}

/* After a failed call: counts it when it ran out of a limit. */
static void exhausted_note(struct engine_policy *p, const struct err *err)
{
	enum script_fail f = script_last_fail(p->main);
	if (f != SCRIPT_FAIL_BUDGET && f != SCRIPT_FAIL_MEMORY) return;
	if (p->exhausted++ == 0) {
		size_t n = strcspn(err->msg, "\n");   /* the message without its traceback */
		snprintf(p->exhausted_first, sizeof p->exhausted_first, "%.*s", (int)n, err->msg);
	}
}

int engine_policy_eval_json(struct engine_policy *p, const cJSON *user, const char *json, const char *groups,
                            struct policy_decision *out, struct err *err)
{
	if (exhausted_check(p, err) != 0) return -1;
	const char *gkeys[MAX_GROUP_KEYS];
	size_t ng = 0;
	char *gcopy = groups && *groups ? xstrdup(groups) : NULL;
	if (gcopy) ng = split_groups(gcopy, gkeys, MAX_GROUP_KEYS);
	/* u.licenses: made by the script layer from the user's assignedLicenses */
	struct policy_user pu = { .graph = json ? NULL : user, .json = json, .len = json ? strlen(json) : 0,
	                          .groups = gkeys, .ngroups = ng };
	int rc = script_policy_eval(p->main, &pu, out, err);
	free(gcopy);
	if (rc != 0) exhausted_note(p, err);
	return rc;
}

/* on_leave's errors: "policy error in on_leave(): FILE:LINE: ..." */
static int leave_error(const struct engine_policy *p, struct err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int leave_error(const struct engine_policy *p, struct err *err, const char *fmt, ...)
{
	char msg[sizeof err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return err_set(err, "policy error in on_leave(): %s: %s", p->leave_where, msg);
}

static const char *json_type_name(const cJSON *v)
{
	if (!v || cJSON_IsNull(v)) return "nil";
	if (cJSON_IsBool(v)) return "boolean";
	if (cJSON_IsNumber(v)) return "number";
	if (cJSON_IsString(v)) return "string";
	return "table";
}

/* The nearest contact field name to given (edit distance <= 2 and less
 * than half of it), or NULL. */
static const char *near_field(const char *given)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, gl = strlen(given);
	for (int f = 0; f < POLICY_NFIELDS; f++) {
		size_t d = str_edit_distance(given, policy_contact_field_names[f]);
		if (d < best_d) {
			best_d = d;
			best = policy_contact_field_names[f];
		}
	}
	return best && best_d <= 2 && best_d * 2 < (gl > 2 ? gl : 2) + 1 ? best : NULL;
}

/* on_leave's table of changes into out->changes: contact fields with
 * string or number values (customer_id accepted and ignored: not the
 * policy's to move on leave). */
static int leave_changes(const struct engine_policy *p, const cJSON *r, struct engine_leave *out, struct err *err)
{
	if (cJSON_IsArray(r) && cJSON_GetArraySize(r) > 0)
		return leave_error(p, err, "on_leave returned a list; contact fields are names like email");
	const cJSON *it;
	cJSON_ArrayForEach(it, r) {
		const char *k = it->string;
		int f = -1;
		for (int i = 0; k && i < POLICY_NFIELDS && f < 0; i++)
			if (strcmp(k, policy_contact_field_names[i]) == 0) f = i;
		if (k && f < 0 && strcmp(k, "customer_id") == 0) continue;
		if (f < 0) {
			const char *dym = k ? near_field(k) : NULL;
			return leave_error(p, err, "unknown contact field '%s'%s%s%s", k ? k : "?", dym ? " (did you mean '" : "",
			                   dym ? dym : "", dym ? "'?)" : "");
		}
		char num[64];
		const char *v = NULL;
		if (cJSON_IsString(it)) {
			v = it->valuestring;
		} else if (cJSON_IsNumber(it)) {
			double d = it->valuedouble;
			if (d == floor(d) && fabs(d) < 9e15) snprintf(num, sizeof num, "%lld", (long long)d);
			else snprintf(num, sizeof num, "%.14g", d);
			v = num;
		} else {
			return leave_error(p, err, "contact field '%s' must be a string, got %s", k, json_type_name(it));
		}
		char why[96];
		if (!policy_field_value_ok(f, v, strlen(v), why, sizeof why))
			return leave_error(p, err, "contact field '%s' %s", k, why);
		syncro_fields_set(&out->changes, (enum syncro_field)f, v);
	}
	return 0;
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
	/* c = {fields…, id = contact_id} */
	cJSON *cj = cJSON_CreateObject(), *wj = cJSON_CreateString(why), *r = NULL;
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (!c->v[f]) continue;
		long long n;
		char *end;
		if (f == SYNCRO_F_CUSTOMER_ID && (n = strtoll(c->v[f], &end, 10), *end == '\0'))
			cJSON_AddNumberToObject(cj, "customer_id", (double)n);
		else cJSON_AddStringToObject(cj, syncro_field_name((enum syncro_field)f), c->v[f]);
	}
	if (contact_id) cJSON_AddNumberToObject(cj, "id", (double)contact_id);
	const cJSON *args[] = { cj, wj };
	bool refused = exhausted_check(p, err) != 0;
	int rc = refused ? -1 : script_policy_call(p->main, "on_leave", args, 2, &r, err);
	cJSON_Delete(cj);
	cJSON_Delete(wj);
	if (refused) return -1;
	if (rc != 0) {
		exhausted_note(p, err);
		/* an answer the script layer could not read (NaN, a NUL byte, bad
		 * UTF-8): said at on_leave's place, as the other answer errors are */
		static const char answer[] = "policy error in on_leave(): its answer: ";
		if (str_starts(err->msg, answer)) {
			char tail[sizeof err->msg];
			snprintf(tail, sizeof tail, "%s", err->msg + strlen(answer));
			leave_error(p, err, "its answer: %s", tail);
		}
		return -1;
	}
	if (cJSON_IsString(r) && strcmp(r->valuestring, "keep") == 0) {
		out->kind = ENGINE_LEAVE_KEEP;
	} else if (cJSON_IsString(r) && strcmp(r->valuestring, "delete") == 0) {
		out->kind = ENGINE_LEAVE_DELETE;
	} else if (cJSON_IsObject(r) || cJSON_IsArray(r)) {
		out->kind = ENGINE_LEAVE_CHANGES;
		rc = leave_changes(p, r, out, err);
	} else if (cJSON_IsString(r)) {
		rc = leave_error(p, err, "on_leave must return \"keep\", \"delete\" or a table of contact fields, got '%s'",
		                 r->valuestring);
	} else {
		rc = leave_error(p, err, "on_leave must return \"keep\", \"delete\" or a table of contact fields, got %s",
		                 json_type_name(r));
	}
	cJSON_Delete(r);
	if (rc != 0) engine_leave_free(out);
	return rc;
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
