/* graph_delta — applying /users/delta pages to the store's mirror: one page
 * and the delta state that follows it in one transaction (so a crash at any
 * point resumes from the last committed page without loss), incremental
 * rounds merged property by property, full resyncs staged and swapped in
 * atomically when their round completes. */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

#include "store.h"

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

/* One item of a page; returns 0 or -1 with err. full: the page belongs to
 * a full round (initial or resync), whose items are complete objects. */
static int apply_item(struct store *st, const char *tenant_id, const cJSON *item, bool resync, bool full,
                      struct graph_delta_counts *counts, struct err *err)
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
		int rc = store_user_get(st, tenant_id, id->valuestring, &u, err);
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
	if (resync) {
		/* A full round carries every selected property that is set. */
		json = item_json(item);
		rc = store_mirror_stage_put(st, tenant_id, id->valuestring, json, err);
	} else if (full) {
		json = item_json(item);
		rc = store_user_put(st, tenant_id, id->valuestring, json, err);
	} else {
		struct store_user u = { 0 };
		rc = store_user_get(st, tenant_id, id->valuestring, &u, err);
		if (rc < 0) return -1;
		json = graph_delta_merge(rc == STORE_NOTFOUND ? NULL : u.json, item);
		store_user_free(&u);
		rc = store_user_put(st, tenant_id, id->valuestring, json, err);
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
	if (store_begin(st, err) != 0) return -1;
	for (const cJSON *item = value->child; item; item = item->next)
		if (apply_item(st, tenant_id, item, resync, full, &c, err) != 0) goto fail;
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
