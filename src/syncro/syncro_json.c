/* syncro_json — Syncro's JSON shapes and the client's C records: contacts
 * (flat or wrapped), customers (wrapped or flat), contact request bodies,
 * the field table, and Syncro's assorted error bodies. No I/O. */
#include "syncro/syncro.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---- results and fields ------------------------------------------------------ */

const char *syncro_result_name(enum syncro_result r)
{
	switch (r) {
	case SYNCRO_OK: return "ok";
	case SYNCRO_NOT_FOUND: return "not_found";
	case SYNCRO_INVALID: return "invalid";
	case SYNCRO_UNAUTHORIZED: return "unauthorized";
	case SYNCRO_UNKNOWN_OUTCOME: return "unknown_outcome";
	case SYNCRO_FAILED: return "failed";
	case SYNCRO_AMBIGUOUS: return "ambiguous";
	case SYNCRO_UNAVAILABLE: return "unavailable";
	}
	return "failed";
}

bool syncro_result_recordable(enum syncro_result r)
{
	return r == SYNCRO_INVALID || r == SYNCRO_NOT_FOUND;
}

bool syncro_result_fatal(enum syncro_result r)
{
	return r == SYNCRO_UNAUTHORIZED || r == SYNCRO_UNAVAILABLE;
}

static const char *const field_names[SYNCRO_NFIELDS] = {
	[SYNCRO_F_NAME] = "name",         [SYNCRO_F_EMAIL] = "email",
	[SYNCRO_F_PHONE] = "phone",       [SYNCRO_F_MOBILE] = "mobile",
	[SYNCRO_F_TITLE] = "title",       [SYNCRO_F_ADDRESS1] = "address1",
	[SYNCRO_F_ADDRESS2] = "address2", [SYNCRO_F_CITY] = "city",
	[SYNCRO_F_STATE] = "state",       [SYNCRO_F_ZIP] = "zip",
	[SYNCRO_F_NOTES] = "notes",       [SYNCRO_F_CUSTOMER_ID] = "customer_id",
};

const char *syncro_field_name(enum syncro_field f)
{
	return (unsigned)f < SYNCRO_NFIELDS ? field_names[f] : "?";
}

int syncro_field_lookup(const char *name)
{
	for (int f = 0; name && f < SYNCRO_NFIELDS; f++)
		if (strcmp(field_names[f], name) == 0) return f;
	return -1;
}

void syncro_fields_set(struct syncro_fields *fs, enum syncro_field f, const char *value)
{
	if ((unsigned)f >= SYNCRO_NFIELDS) return;
	free(fs->v[f]);
	fs->v[f] = value ? xstrdup(value) : NULL;
}

void syncro_fields_free(struct syncro_fields *fs)
{
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		free(fs->v[f]);
		fs->v[f] = NULL;
	}
}

/* ---- records ------------------------------------------------------------------ */

void syncro_contact_free(struct syncro_contact *c)
{
	if (!c) return;
	syncro_fields_free(&c->f);
	free(c->properties_json);
	free(c->updated_at);
	memset(c, 0, sizeof *c);
}

void syncro_contact_list_free(struct syncro_contact_list *l)
{
	if (!l) return;
	for (size_t i = 0; i < l->n; i++) syncro_contact_free(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void syncro_customer_free(struct syncro_customer *c)
{
	if (!c) return;
	free(c->business_name);
	free(c->fullname);
	free(c->email);
	memset(c, 0, sizeof *c);
}

/* A JSON scalar as text: strings as they are, integral numbers without a
 * fraction, booleans as true/false. NULL for null, absent, arrays, objects. */
static char *scalar_text(const cJSON *v)
{
	if (cJSON_IsString(v)) return xstrdup(v->valuestring);
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (isfinite(d) && d == floor(d) && fabs(d) < 9e15) return xasprintf("%lld", (long long)d);
		return xasprintf("%.17g", d);
	}
	if (cJSON_IsBool(v)) return xstrdup(cJSON_IsTrue(v) ? "true" : "false");
	return NULL;
}

/* An integer id: a JSON number, or a string of digits (seen in some APIs).
 * 0 when absent or not an integer. */
static long long id_value(const cJSON *v)
{
	if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15)
		return (long long)v->valuedouble;
	if (cJSON_IsString(v) && v->valuestring[0]) {
		char *end;
		long long n = strtoll(v->valuestring, &end, 10);
		if (*end == '\0') return n;
	}
	return 0;
}

/* obj, or obj[key] when obj wraps its record in {"key":{…}}. */
static const cJSON *unwrap(const cJSON *obj, const char *key)
{
	const cJSON *inner = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsObject(inner) ? inner : obj;
}

int syncro_contact_from_json(const struct cJSON *json, struct syncro_contact *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	const cJSON *obj = unwrap(json, "contact");
	if (!cJSON_IsObject(obj)) return err_set(err, "contact is not a JSON object");
	out->id = id_value(cJSON_GetObjectItemCaseSensitive(obj, "id"));
	if (out->id <= 0) return err_set(err, "contact without an id");
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (f == SYNCRO_F_TITLE) continue;
		out->f.v[f] = scalar_text(cJSON_GetObjectItemCaseSensitive(obj, field_names[f]));
	}
	out->customer_id = id_value(cJSON_GetObjectItemCaseSensitive(obj, "customer_id"));
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(obj, "properties");
	if (cJSON_IsObject(props)) {
		out->properties_json = cJSON_PrintUnformatted(props);
		out->f.v[SYNCRO_F_TITLE] = scalar_text(cJSON_GetObjectItemCaseSensitive(props, "title"));
	}
	/* Syncro stores title in properties; a top-level one is taken only when
	 * properties has none (other shapes, older accounts). */
	if (!out->f.v[SYNCRO_F_TITLE])
		out->f.v[SYNCRO_F_TITLE] = scalar_text(cJSON_GetObjectItemCaseSensitive(obj, "title"));
	out->updated_at = scalar_text(cJSON_GetObjectItemCaseSensitive(obj, "updated_at"));
	return 0;
}

int syncro_customer_from_json(const struct cJSON *json, struct syncro_customer *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	const cJSON *obj = unwrap(json, "customer");
	if (!cJSON_IsObject(obj)) return err_set(err, "customer is not a JSON object");
	out->id = id_value(cJSON_GetObjectItemCaseSensitive(obj, "id"));
	if (out->id <= 0) return err_set(err, "customer without an id");
	out->business_name = scalar_text(cJSON_GetObjectItemCaseSensitive(obj, "business_name"));
	out->fullname = scalar_text(cJSON_GetObjectItemCaseSensitive(obj, "fullname"));
	out->email = scalar_text(cJSON_GetObjectItemCaseSensitive(obj, "email"));
	out->disabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "disabled"));
	return 0;
}

/* ---- request bodies ----------------------------------------------------------- */

/* Parses a customer id given as decimal text (surrounding blanks allowed). */
static bool parse_customer_id(const char *s, long long *out)
{
	char *end;
	while (*s == ' ') s++;
	if (!*s) return false;
	long long n = strtoll(s, &end, 10);
	while (*end == ' ') end++;
	if (*end || n <= 0) return false;
	*out = n;
	return true;
}

enum syncro_result syncro_contact_body(const struct syncro_fields *fs, bool create, char **out,
                                       struct err *err)
{
	*out = NULL;
	const char *cid_text = fs->v[SYNCRO_F_CUSTOMER_ID];
	long long cid = 0;
	if (create && !cid_text) {
		err_set(err, "a contact needs a customer_id to be created");
		return SYNCRO_INVALID;
	}
	if (cid_text && !parse_customer_id(cid_text, &cid)) {
		err_set(err, "customer_id '%.200s' is not a Syncro customer id (a whole number)", cid_text);
		return SYNCRO_INVALID;
	}
	cJSON *root = cJSON_CreateObject();
	if (cid_text) cJSON_AddItemToObject(root, "customer_id", cJSON_CreateNumber((double)cid));
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (f == SYNCRO_F_CUSTOMER_ID || !fs->v[f]) continue;
		cJSON_AddItemToObject(root, field_names[f], cJSON_CreateString(fs->v[f]));
	}
	/* The spec lists title only for PUT (stored as properties.title, observed
	 * live); on create, properties.title as well, so it lands either way. An
	 * update never sends properties: Syncro replaces the whole hash. */
	if (create && fs->v[SYNCRO_F_TITLE]) {
		cJSON *props = cJSON_AddObjectToObject(root, "properties");
		cJSON_AddItemToObject(props, "title", cJSON_CreateString(fs->v[SYNCRO_F_TITLE]));
	}
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!text) {
		err_set(err, "out of memory building a contact body");
		return SYNCRO_FAILED;
	}
	*out = xstrdup(text);
	cJSON_free(text);
	return SYNCRO_OK;
}

/* ---- error bodies --------------------------------------------------------------- */

/* Appends a string/number/array-of-those value, items joined by "; ". */
static void add_message_value(const cJSON *v, struct buf *out)
{
	if (cJSON_IsArray(v)) {
		const cJSON *it;
		size_t before = out->len;
		cJSON_ArrayForEach(it, v) {
			if (out->len > before) buf_adds(out, "; ");
			add_message_value(it, out);
		}
		return;
	}
	char *s = scalar_text(v);
	if (s) buf_adds(out, s);
	free(s);
}

void syncro_error_text(const char *body, struct buf *out)
{
	cJSON *root = body ? cJSON_Parse(body) : NULL;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return;
	}
	const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
	const cJSON *message = cJSON_GetObjectItemCaseSensitive(root, "message");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsObject(errors)) {
		/* {"email":["is not an email"], "mute_for":[…]}: "email: is not an email" */
		const cJSON *it;
		size_t before = out->len;
		cJSON_ArrayForEach(it, errors) {
			if (out->len > before) buf_adds(out, "; ");
			buf_printf(out, "%s: ", it->string);
			add_message_value(it, out);
		}
	} else if (errors && !cJSON_IsNull(errors)) {
		add_message_value(errors, out);
	} else if (message && !cJSON_IsNull(message)) {
		add_message_value(message, out);
	} else if (error && !cJSON_IsNull(error)) {
		add_message_value(error, out);
	}
	cJSON_Delete(root);
}

int syncro_pages_next(struct syncro_pages *pages, long long page, long long max_pages, const cJSON *root,
                      const cJSON *items, char *why, size_t cap)
{
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "meta"),
	                                                      "total_pages");
	size_t n = (size_t)cJSON_GetArraySize(items);
	long long tp = cJSON_IsNumber(total) ? (long long)total->valuedouble : -1;
	if (page == 1) {
		pages->total = tp;
		pages->len = n;
	} else if (tp != pages->total) {
		snprintf(why, cap, "page %lld says %lld pages where page 1 said %lld", page, tp, pages->total);
		return -1;
	}
	if (tp < 0) return page < max_pages && n > 0;
	bool last = page >= tp;
	if ((!last && (n != pages->len || n == 0)) || n > pages->len) {
		snprintf(why, cap, "page %lld of %lld has %zu items where page 1 had %zu", page, tp, n, pages->len);
		return -1;
	}
	return !last && page < max_pages;
}

/* ---- customers by business name ---------------------------------------------- */

/* name's letters and digits, case folded (utf8_fold_next), into key
 * (owned, *n of them): what stays of a name without its punctuation and
 * spaces. Every code point above U+00BF counts as a letter. */
static uint32_t *name_key(const char *name, size_t *n)
{
	uint32_t *key = xcalloc(strlen(name) + 1, sizeof *key);
	size_t len = 0;
	for (uint32_t c; (c = utf8_fold_next(&name));)
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c > 0xBF && c != 0xD7 && c != 0xF7 &&
		                                                           !(c >= 0x2000 && c <= 0x206F)))
			key[len++] = c;
	*n = len;
	return key;
}

enum syncro_name_match syncro_name_match(const char *business_name, const char *name)
{
	if (!business_name || !name || !*name) return SYNCRO_NAME_OTHER;
	if (str_ieq_utf8(business_name, name)) return SYNCRO_NAME_SAME;
	size_t nb, nn;
	uint32_t *kb = name_key(business_name, &nb), *kn = name_key(name, &nn);
	bool similar = false;
	for (size_t i = 0; nn && i + nn <= nb && !similar; i++)
		similar = memcmp(kb + i, kn, nn * sizeof *kn) == 0;
	free(kb);
	free(kn);
	return similar ? SYNCRO_NAME_SIMILAR : SYNCRO_NAME_OTHER;
}

void syncro_similar_add(struct buf *similar, size_t *n, const struct syncro_customer *c)
{
	if (!c->business_name || *n >= SYNCRO_SIMILAR_MAX) return;
	buf_printf(similar, "%s%lld '%s'", (*n)++ ? ", " : "", c->id, c->business_name);
}

enum syncro_result syncro_name_verdict(const struct syncro_customer *same, size_t n_same, const char *similar,
                                       struct err *err)
{
	if (n_same == 1) return SYNCRO_OK;
	if (n_same == 0) {
		if (similar && *similar)
			err_set(err, "no customer has this business name (similar: %s); set the tenant's syncro_customer to "
			        "the exact name or syncro_customer_id to the id", similar);
		else
			err_set(err, "no customer has this business name; check the tenant's syncro_customer or set "
			        "syncro_customer_id");
		return SYNCRO_NOT_FOUND;
	}
	struct buf list = {0};
	for (size_t i = 0; i < n_same && i < 20; i++)
		buf_printf(&list, "%s%lld '%s'", i ? ", " : "", same[i].id, same[i].business_name);
	if (n_same > 20) buf_printf(&list, " and %zu more", n_same - 20);
	err_set(err, "%zu customers have this business name: %s; set the tenant's syncro_customer_id to the one to "
	        "use", n_same, list.data);
	buf_free(&list);
	return SYNCRO_AMBIGUOUS;
}

enum syncro_result syncro_customer_pick(const struct syncro_customer *list, size_t n, const char *name,
                                        const struct syncro_customer **out, size_t *n_similar_out, struct err *err)
{
	struct syncro_customer *same = xcalloc(n, sizeof *same);   /* borrowed copies: their strings are list's */
	struct buf similar = {0};
	size_t n_same = 0, n_similar = 0;
	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		enum syncro_name_match m = syncro_name_match(list[i].business_name, name);
		if (m == SYNCRO_NAME_SAME) {
			if (!n_same) *out = &list[i];
			same[n_same++] = list[i];
		} else if (m == SYNCRO_NAME_SIMILAR) {
			syncro_similar_add(&similar, &n_similar, &list[i]);
		}
	}
	enum syncro_result r = syncro_name_verdict(same, n_same, similar.data, err);
	if (r != SYNCRO_OK) *out = NULL;
	if (n_similar_out) *n_similar_out = n_similar;
	free(same);
	buf_free(&similar);
	return r;
}
