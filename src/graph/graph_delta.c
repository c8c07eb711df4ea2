/* graph_delta — applying /users/delta pages to the store's mirror: one page
 * and the delta state that follows it in one transaction (so a crash at any
 * point resumes from the last committed page without loss), incremental
 * rounds merged property by property, full resyncs staged and swapped in
 * atomically when their round completes. Full rounds store each item's
 * own bytes from the page text when given (no re-printing). */
#include "graph/graph.h"

#include "util/json_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

bool graph_delta_needs_resync(const struct graph_error *ge)
{
	if (ge->status == 410) return true;
	const char *codes[] = { ge->code, ge->inner_code };
	for (size_t i = 0; i < ARRAY_LEN(codes); i++)
		if (str_ieq(codes[i], "syncStateNotFound") || str_ieq(codes[i], "resyncRequired") ||
		    str_ieq(codes[i], "SyncStateInvalid"))
			return true;
	return false;
}

char *graph_delta_merge(const char *old, const cJSON *item)
{
	cJSON *base = old ? cJSON_Parse(old) : NULL;
	if (!cJSON_IsObject(base)) {
		cJSON_Delete(base);
		base = cJSON_CreateObject();
	}
	for (const cJSON *p = item ? item->child : NULL; p; p = p->next) {
		if (!p->string || p->string[0] == '@') continue;
		/* "x@odata.type" style annotations of a property too */
		if (strchr(p->string, '@')) continue;
		cJSON *copy = cJSON_Duplicate(p, 1);
		if (cJSON_GetObjectItemCaseSensitive(base, p->string))
			cJSON_ReplaceItemInObjectCaseSensitive(base, p->string, copy);
		else
			cJSON_AddItemToObject(base, p->string, copy);
	}
	char *s = cJSON_PrintUnformatted(base);
	cJSON_Delete(base);
	char *out = xstrdup(s);
	cJSON_free(s);
	return out;
}

/* ---- the same merge on text -------------------------------------------
 * An incremental round merges a handful of changed properties into each
 * stored user: parsing and printing the whole stored object through cJSON
 * for that was most of the round's CPU. Here both objects are walked as
 * text (json_scan checks them whole) and the output is spliced from their
 * members' raw values: the stored members in their order, each replaced by
 * the item's value when the item has it, then the item's new members. */

struct merge_member {
	char key[256];
	struct json_scan_value v;
	bool used;
};

struct merge {
	struct merge_member *m;
	size_t n, cap;
	struct buf out;
	size_t emitted;
};

/* A name too long to be handed over stops the text merge (1): the caller
 * falls back to the cJSON merge rather than drop the member. */
static int merge_collect(void *ud, const char *key, const struct json_scan_value *v)
{
	struct merge *mg = ud;
	if (!key) return 1;
	if (key[0] == '@' || strchr(key, '@')) return 0;      /* annotations, as in graph_delta_merge */
	for (size_t i = 0; i < mg->n; i++)
		if (!strcmp(mg->m[i].key, key)) {               /* a repeated key: the last one wins */
			mg->m[i].v = *v;
			return 0;
		}
	if (mg->n == mg->cap) {
		mg->cap = mg->cap ? mg->cap * 2 : 16;
		mg->m = xrealloc(mg->m, mg->cap * sizeof *mg->m);
	}
	struct merge_member *x = &mg->m[mg->n++];
	snprintf(x->key, sizeof x->key, "%s", key);
	x->v = *v;
	x->used = false;
	return 0;
}

static void merge_emit(struct merge *mg, const char *key, const struct json_scan_value *v)
{
	size_t plain = 0;   /* a loop, not strcspn: that builds its table of 33 bytes on every call */
	while (key[plain] && key[plain] != '"' && key[plain] != '\\' && (unsigned char)key[plain] >= 0x20) plain++;
	if (!key[plain]) {
		/* names need no escape, as a rule: the member in one piece */
		buf_reserve(&mg->out, plain + v->len + 4);
		char *o = mg->out.data + mg->out.len;
		*o++ = mg->emitted++ ? ',' : '{';
		*o++ = '"';
		memcpy(o, key, plain);
		o += plain;
		*o++ = '"';
		*o++ = ':';
		memcpy(o, v->text, v->len);
		mg->out.len += plain + v->len + 4;
		mg->out.data[mg->out.len] = '\0';
		return;
	}
	buf_addc(&mg->out, mg->emitted++ ? ',' : '{');
	buf_addc(&mg->out, '"');
	buf_add(&mg->out, key, plain);
	for (const unsigned char *c = (const unsigned char *)key + plain; *c; c++) {
		if (*c == '"' || *c == '\\') {
			buf_addc(&mg->out, '\\');
			buf_addc(&mg->out, (char)*c);
		} else if (*c < 0x20) {
			buf_printf(&mg->out, "\\u%04x", *c);
		} else {
			buf_addc(&mg->out, (char)*c);
		}
	}
	buf_adds(&mg->out, "\":");
	buf_add(&mg->out, v->text, v->len);
}

static int merge_old_member(void *ud, const char *key, const struct json_scan_value *v)
{
	struct merge *mg = ud;
	if (!key) return 1;
	for (size_t i = 0; i < mg->n; i++)
		if (!strcmp(mg->m[i].key, key)) {
			mg->m[i].used = true;
			merge_emit(mg, key, &mg->m[i].v);
			return 0;
		}
	merge_emit(mg, key, v);
	return 0;
}

char *graph_delta_merge_text(const char *old, const char *item, size_t item_len)
{
	struct merge mg = { 0 };
	struct err err;
	char *out = NULL;
	size_t old_len = old ? strlen(old) : 0;
	buf_reserve(&mg.out, old_len + item_len + 2);   /* the merge fits in that but for escaped names: one allocation */
	if (json_scan_each_member(item, item_len, merge_collect, &mg, &err) != 0) goto out;
	int rc = old ? json_scan_each_member(old, old_len, merge_old_member, &mg, &err) : 0;
	if (rc > 0) goto out;             /* a name too long: the caller merges with cJSON */
	if (rc < 0) {
		/* not an object: start from an empty one (as graph_delta_merge) */
		buf_reset(&mg.out);
		mg.emitted = 0;
		for (size_t i = 0; i < mg.n; i++) mg.m[i].used = false;
	}
	for (size_t i = 0; i < mg.n; i++)
		if (!mg.m[i].used) merge_emit(&mg, mg.m[i].key, &mg.m[i].v);
	if (!mg.emitted) buf_addc(&mg.out, '{');
	buf_addc(&mg.out, '}');
	out = buf_steal(&mg.out);
out:
	buf_free(&mg.out);
	free(mg.m);
	return out;
}

/* The stored JSON of a complete item (a full round): the item itself
 * when it carries no annotation, else a copy without them. New string. */
static char *item_json(const cJSON *item)
{
	for (const cJSON *p = item->child; p; p = p->next)
		if (!p->string || strchr(p->string, '@')) return graph_delta_merge(NULL, item);
	char *s = cJSON_PrintUnformatted(item);
	char *out = xstrdup(s);
	cJSON_free(s);
	return out;
}

/* ---- the page's own text ----------------------------------------------
 * A full round stores each complete item as Graph sent it: its bytes are
 * sliced out of the page text instead of re-printed from the cJSON tree
 * (that printing cost as much CPU as the SQLite insert). The scanner below
 * only walks text cJSON has already accepted, to find where each element
 * of "value" starts and ends; it also refuses (the item is then printed
 * as before) anything a strict JSON reader could reject: a raw control
 * character in a string, or a number or literal outside JSON's grammar. */

struct span {
	const char *p;
	size_t n;
	bool verbatim;     /* the slice is strict JSON, fit to store as is */
};

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
	return p;
}

/* p at '"' of text NUL-terminated at or after end: past the closing
 * quote, or NULL. The inner loop needs no bound check: the NUL stops it
 * as any control character does. */
static const char *skip_string(const char *p, const char *end, bool *strict)
{
	const unsigned char *u = (const unsigned char *)p + 1;
	for (;;) {
		while (*u != '"' && *u != '\\' && *u >= 0x20) u++;
		if ((const char *)u >= end) return NULL;
		if (*u == '"') return (const char *)u + 1;
		if (*u == '\\') {
			if ((const char *)u + 1 >= end) return NULL;  /* never past the NUL */
			u += 2;
		} else {
			*strict = false;
			u++;
		}
	}
}

static bool digits(const char **p, const char *end)
{
	const char *q = *p;
	while (*p < end && **p >= '0' && **p <= '9') (*p)++;
	return *p > q;
}

static bool token_end(char c)
{
	return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A number or literal starting at p: past it, or NULL; *strict cleared
 * when it is not JSON's grammar. */
static const char *skip_scalar(const char *p, const char *end, bool *strict)
{
	const char *lit = *p == 't' ? "true" : *p == 'f' ? "false" : *p == 'n' ? "null" : NULL;
	const char *q = p;
	if (lit) {
		size_t n = strlen(lit);
		if ((size_t)(end - p) >= n && !memcmp(p, lit, n)) q = p + n;
	} else {
		if (q < end && *q == '-') q++;
		if (q < end && *q == '0') q++;
		else if (!digits(&q, end)) *strict = false;
		if (q < end && *q == '.' && (q++, !digits(&q, end))) *strict = false;
		if (q < end && (*q == 'e' || *q == 'E')) {
			q++;
			if (q < end && (*q == '+' || *q == '-')) q++;
			if (!digits(&q, end)) *strict = false;
		}
	}
	/* whatever else cJSON took as part of the token */
	while (q < end && !token_end(*q)) {
		*strict = false;
		q++;
	}
	return q > p ? q : NULL;
}

/* One JSON value at p (after white space): past it, or NULL. */
static const char *skip_value(const char *p, const char *end, bool *strict)
{
	if (p >= end) return NULL;
	if (*p == '"') return skip_string(p, end, strict);
	if (*p != '{' && *p != '[') return skip_scalar(p, end, strict);
	int depth = 0;
	while (p < end) {
		char c = *p;
		if (c == '"') {
			p = skip_string(p, end, strict);
			if (!p) return NULL;
			continue;
		}
		if (c == '{' || c == '[') depth++;
		else if (c == '}' || c == ']') {
			if (--depth == 0) return p + 1;
		} else if (c != ',' && c != ':' && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			const char *q = skip_scalar(p, end, strict);
			if (!q) return NULL;
			p = q;
			continue;
		}
		p++;
	}
	return NULL;
}

/* The spans of the elements of the page's first top-level "value" array,
 * n of them (as cJSON found), into a new array; NULL when the text does
 * not line up with the tree (then every item is printed). */
static struct span *value_spans(const char *text, size_t len, size_t n)
{
	const char *p = text, *end = text + len;
	if (text[len] != '\0') return NULL;  /* skip_string relies on it */
	bool strict = true;
	p = skip_ws(p, end);
	if (p >= end || *p != '{') return NULL;
	p++;
	for (;;) {
		p = skip_ws(p, end);
		if (p >= end || *p != '"') return NULL;
		const char *key = p;
		p = skip_string(p, end, &strict);
		if (!p) return NULL;
		bool is_value = p - key == 7 && !memcmp(key, "\"value\"", 7);
		p = skip_ws(p, end);
		if (p >= end || *p != ':') return NULL;
		p = skip_ws(p + 1, end);
		if (is_value) break;
		p = skip_value(p, end, &strict);
		if (!p) return NULL;
		p = skip_ws(p, end);
		if (p >= end || *p != ',') return NULL;
		p++;
	}
	if (p >= end || *p != '[') return NULL;
	struct span *spans = xcalloc(n + 1, sizeof *spans);
	size_t k = 0;
	p = skip_ws(p + 1, end);
	while (p < end && *p != ']') {
		if (k == n) goto fail;
		bool ok = true;
		const char *q = skip_value(p, end, &ok);
		if (!q || *p != '{') goto fail;
		spans[k++] = (struct span){ .p = p, .n = (size_t)(q - p), .verbatim = ok };
		p = skip_ws(q, end);
		if (p < end && *p == ',') p = skip_ws(p + 1, end);
		else if (p >= end || *p != ']') goto fail;
	}
	if (k != n) goto fail;
	return spans;
fail:
	free(spans);
	return NULL;
}

/* Whether item (a complete object) can be stored as its text: no "@…"
 * annotation to drop. */
static bool item_plain(const cJSON *item)
{
	for (const cJSON *p = item->child; p; p = p->next)
		if (!p->string || strchr(p->string, '@')) return false;
	return true;
}

/* One item of a page; returns 0 or -1 with err. full: the page belongs to
 * a full round (initial or resync), whose items are complete objects.
 * text: the item's own bytes in the page when usable as is, else NULL. */
static int apply_item(struct store *st, const char *tenant_id, const cJSON *item, const struct span *text,
                      bool resync, bool full, struct graph_delta_counts *counts, struct err *err)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
	if (!cJSON_IsObject(item) || !cJSON_IsString(id) || !id->valuestring[0])
		return err_set(err, "a delta item has no id");
	const cJSON *removed = cJSON_GetObjectItemCaseSensitive(item, "@removed");
	if (removed) {
		const cJSON *why = cJSON_GetObjectItemCaseSensitive(removed, "reason");
		const char *reason = cJSON_IsString(why) && !strcmp(why->valuestring, "deleted") ? "deleted" : "changed";
		if (resync) /* counted by the swap, when it marks the live user */
			return store_mirror_stage_remove(st, tenant_id, id->valuestring, reason, err) ? -1 : 0;
		/* count only a real change: present before, or removed for another reason */
		struct store_user u = { 0 };
		int rc = store_user_get_json(st, tenant_id, id->valuestring, &u, err);
		if (rc < 0) return -1;
		bool change = rc == 0 && (!u.removed || strcmp(u.removed, reason) != 0);
		store_user_free(&u);
		if (rc == 0 && store_user_mark_removed(st, tenant_id, id->valuestring, reason, err) != 0) return -1;
		if (change && reason[0] == 'd') counts->removed_deleted++;
		else if (change) counts->removed_changed++;
		return 0;
	}
	char *json = NULL;
	int rc;
	if (full && text && text->verbatim && item_plain(item)) {
		rc = resync ? store_mirror_stage_put_n(st, tenant_id, id->valuestring, text->p, text->n, err)
		            : store_user_put_n(st, tenant_id, id->valuestring, text->p, text->n, err);
	} else if (resync) {
		/* A full round carries every selected property that is set. */
		json = item_json(item);
		rc = store_mirror_stage_put(st, tenant_id, id->valuestring, json, err);
	} else if (full) {
		json = item_json(item);
		rc = store_user_put(st, tenant_id, id->valuestring, json, err);
	} else {
		struct store_user u = { 0 };
		rc = store_user_get_json(st, tenant_id, id->valuestring, &u, err);
		if (rc < 0) return -1;
		bool present = rc == 0 && !u.removed;
		/* a user back after a removal (a restore: Graph sends it unannotated,
		 * whole, as a create) replaces what was stored before it left: a
		 * property cleared in between is absent now, not to be kept */
		const char *old = present ? u.json : NULL;
		json = text && text->verbatim ? graph_delta_merge_text(old, text->p, text->n) : NULL;
		if (!json) json = graph_delta_merge(old, item);
		store_user_free(&u);
		rc = present ? store_user_set_json_n(st, tenant_id, id->valuestring, json, strlen(json), err)
		             : store_user_put(st, tenant_id, id->valuestring, json, err);
	}
	free(json);
	if (rc != 0) return -1;
	counts->upserted++;
	return 0;
}

int graph_delta_apply_page(struct store *st, const char *tenant_id, const cJSON *page,
                           const struct store_delta *cur, struct graph_delta_counts *counts, bool *complete,
                           struct err *err)
{
	return graph_delta_apply_page_text(st, tenant_id, page, NULL, 0, cur, counts, complete, err);
}

int graph_delta_apply_page_text(struct store *st, const char *tenant_id, const cJSON *page, const char *text,
                                size_t text_len, const struct store_delta *cur, struct graph_delta_counts *counts,
                                bool *complete, struct err *err)
{
	*complete = false;
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(page, "value");
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(page, "@odata.nextLink");
	const cJSON *delta = cJSON_GetObjectItemCaseSensitive(page, "@odata.deltaLink");
	if (!cJSON_IsArray(value))
		return err_set(err, "tenant %s: a users/delta page has no \"value\" array", tenant_id);
	if (cJSON_IsString(next) == cJSON_IsString(delta))
		return err_set(err, "tenant %s: a users/delta page has %s", tenant_id,
		               cJSON_IsString(next) ? "both @odata.nextLink and @odata.deltaLink"
		                                    : "neither @odata.nextLink nor @odata.deltaLink");
	struct graph_delta_counts c = { 0 };
	bool resync = cur->resync;
	/* Rounds without a deltaLink to start from are full rounds; resyncs too. */
	bool full = resync || !cur->delta_link;
	struct span *spans = NULL;
	if (text) spans = value_spans(text, text_len, (size_t)cJSON_GetArraySize(value));
	if (store_begin(st, err) != 0) {
		free(spans);
		return -1;
	}
	size_t k = 0;
	for (const cJSON *item = value->child; item; item = item->next, k++)
		if (apply_item(st, tenant_id, item, spans ? &spans[k] : NULL, resync, full, &c, err) != 0) goto fail;
	free(spans);
	spans = NULL;
	struct store_delta d = { 0 };
	if (cJSON_IsString(next)) {
		char now[32];
		time_iso8601(time_now(), now, sizeof now);
		d.delta_link = cur->delta_link;
		d.next_link = next->valuestring;
		d.round_started_at = cur->round_started_at ? cur->round_started_at : now;
		d.resync = resync;
		if (store_delta_put(st, tenant_id, "users", &d, err) != 0) goto fail;
	} else {
		if (resync && store_mirror_swap(st, tenant_id, &c.swapped_removed, err) != 0) goto fail;
		d.delta_link = delta->valuestring;
		if (store_delta_put(st, tenant_id, "users", &d, err) != 0) goto fail;
	}
	if (store_commit(st, err) != 0) goto fail;
	counts->upserted += c.upserted;
	counts->removed_changed += c.removed_changed;
	counts->removed_deleted += c.removed_deleted;
	counts->swapped_removed += c.swapped_removed;
	*complete = cJSON_IsString(delta);
	return 0;
fail:
	free(spans);
	{
		struct err ignored;
		store_rollback(st, &ignored);
	}
	return err_prefix(err, "tenant %s: users/delta page not applied", tenant_id);
}

int graph_delta_start_resync(struct store *st, const char *tenant_id, const char *first_url, struct err *err)
{
	struct store_delta cur = { 0 };
	if (store_delta_get(st, tenant_id, "users", &cur, err) < 0) return -1;
	if (store_begin(st, err) != 0) {
		store_delta_free(&cur);
		return -1;
	}
	char now[32];
	time_iso8601(time_now(), now, sizeof now);
	struct store_delta d = { .delta_link = cur.delta_link, .next_link = first_url, .round_started_at = now,
	                         .resync = true };
	int rc = -1;
	if (store_mirror_stage_clear(st, tenant_id, err) != 0) goto out;
	if (store_delta_put(st, tenant_id, "users", &d, err) != 0) goto out;
	rc = store_commit(st, err);
out:
	if (rc != 0) {
		struct err ignored;
		store_rollback(st, &ignored);
	}
	store_delta_free(&cur);
	return rc;
}
