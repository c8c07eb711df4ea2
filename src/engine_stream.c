/* engine_stream — the planner's loop over a tenant's mirror: batches of
 * users with their link and groups (store_plan_batch), policy evaluation,
 * adoption candidates, one action per user to the caller; then links of
 * users gone from the mirror. Holds one batch at a time. */
#include "engine_stream.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "store.h"
#include "store_outbox.h"

#define DEFAULT_BATCH 500
#define MAX_CANDIDATES 64

/* A row of a batch, copied out of the store. */
struct row {
	char *object_id, *json, *removed, *fields, *groups;
	bool linked;
	long long contact_id, customer_id;
};

struct batch {
	struct row *v;
	size_t n, cap;
};

static int take_row(const struct store_plan_row *r, void *ud)
{
	struct batch *b = ud;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->v = xrealloc(b->v, b->cap * sizeof *b->v);
	}
	b->v[b->n++] = (struct row){
		.object_id = xstrdup(r->object_id), .json = r->json ? xstrdup(r->json) : NULL,
		.removed = r->removed ? xstrdup(r->removed) : NULL, .fields = r->fields ? xstrdup(r->fields) : NULL,
		.groups = r->groups && *r->groups ? xstrdup(r->groups) : NULL, .linked = r->linked,
		.contact_id = r->contact_id, .customer_id = r->customer_id,
	};
	return 0;
}

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct row *r = &b->v[i];
		free(r->object_id);
		free(r->json);
		free(r->removed);
		free(r->fields);
		free(r->groups);
	}
	b->n = 0;
}

static const char *json_string(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* The existing, unlinked contacts of the user's desired customer matching
 * its e-mail. Linked ones (by any tenant) are taken out of the index.
 * 0 ok, > 0 skip the user, -1 store failure (err), -2 stopped. */
static int candidates(struct engine_planner *p, const struct engine_user *u, const struct syncro_contact **out,
                      size_t *n, const char *label, struct err *err)
{
	long long cust = strtoll(u->desired->v[SYNCRO_F_CUSTOMER_ID], NULL, 10);
	*n = 0;
	if (!engine_contacts_has(p->ix, cust)) {
		int rc = p->need_contacts(p->ud, cust, label);
		if (rc != 0) return rc < 0 ? -2 : 1;
	}
	for (;;) {
		size_t m = engine_contacts_match(p->ix, cust, u, out, MAX_CANDIDATES), kept = 0;
		if (m > MAX_CANDIDATES) m = MAX_CANDIDATES;
		bool took = false;
		for (size_t i = 0; i < m; i++) {
			struct store_link l = {0};
			int rc = store_link_find_contact(p->st, cust, out[i]->id, &l, err);
			store_link_free(&l);
			if (rc < 0) return -1;
			if (rc == 0) {
				engine_contacts_take(p->ix, cust, out[i]->id);
				took = true;
			} else {
				out[kept++] = out[i];
			}
		}
		/* a linked match hid others (mail → UPN fallback): match again */
		if (!took) {
			*n = kept;
			return 0;
		}
	}
}

/* The row's plan stamp: the policy's stamp base and everything of the
 * user the plan reads (16 hex digits into out[17]). */
static void row_stamp(const struct engine_planner *p, const struct row *row, char out[17])
{
	uint64_t h = p->pol->stamp_base;
	const char *parts[] = { row->removed, row->json, row->groups };
	for (size_t i = 0; i < ARRAY_LEN(parts); i++)
		h = engine_hash(h, parts[i] ? parts[i] : "", parts[i] ? strlen(parts[i]) + 1 : 1);
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, h >>= 4) out[i] = hex[h & 15];
	out[16] = '\0';
}

/* "Name <addr>" (or whichever is known) into out[cap], without printf. */
static void make_label(char *out, size_t cap, const char *dn, const char *addr, const char *id)
{
	size_t n = 0;
	const char *parts[4] = { dn, dn && addr ? " <" : NULL, addr, dn && addr ? ">" : NULL };
	if (!dn && !addr) parts[0] = id;
	for (size_t i = 0; i < 4; i++) {
		if (!parts[i]) continue;
		size_t l = strlen(parts[i]);
		if (n + l >= cap) l = cap - 1 - n;
		memcpy(out + n, parts[i], l);
		n += l;
	}
	out[n] = '\0';
}

/* The fast path: a linked user whose inputs hash as when its link was last
 * written is unchanged (or, leaving, kept) without evaluating anything. */
static int emit_stamped(struct engine_planner *p, const struct row *row, const char *stamp, bool leaving)
{
	struct engine_action a = { .kind = leaving ? ENGINE_KEEP : ENGINE_UNCHANGED, .contact_id = row->contact_id,
	                           .customer_id = row->customer_id };
	a.object_id = xstrdup(row->object_id);
	snprintf(a.stamp, sizeof a.stamp, "%s%s", stamp, leaving ? ":k" : "");
	p->users++;
	p->stamped++;
	int rc = p->emit(p->ud, &a) < 0 ? -2 : 0;
	engine_action_free(&a);
	return rc;
}

/* Plans one row and emits the action. 0 go on, -1 store failure, -2 stopped. */
static int plan_row(struct engine_planner *p, const struct row *row, struct err *err)
{
	char stamp[17];
	bool leaving_stamp;
	row_stamp(p, row, stamp);
	if (row->linked && engine_link_has_stamp(row->fields, stamp, &leaving_stamp))
		return emit_stamped(p, row, stamp, leaving_stamp);

	struct err uerr;
	int rc = 0;
	cJSON *js = row->json ? cJSON_Parse(row->json) : NULL;
	struct engine_user u = { .object_id = row->object_id };
	struct policy_decision d = {0};
	struct syncro_fields desired = {0};
	struct engine_link link = { .contact_id = row->contact_id, .customer_id = row->customer_id };
	struct engine_leave leave = {0};
	struct engine_action a = {0};
	char label[512];

	u.removed = row->removed != NULL || !js;
	u.disabled = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(js, "accountEnabled"));
	u.mail = json_string(js, "mail");
	u.upn = json_string(js, "userPrincipalName");
	make_label(label, sizeof label, json_string(js, "displayName"), u.mail ? u.mail : u.upn, row->object_id);
	u.label = label;
	p->users++;

	if (!u.removed) {
		if (engine_policy_eval_json(p->pol, js, row->json, row->groups, &d, &uerr) != 0) {
			p->user_error(p->ud, label, uerr.msg);
			goto out;
		}
		u.included = d.include;
		u.reason = d.reason;
		if (d.include) {
			engine_desired_fields(&d, p->default_customer, &desired);
			u.desired = &desired;
		}
	}
	if (row->linked && engine_fields_from_json(row->fields, &link.fields, &uerr) != 0) {
		err_prefix(&uerr, "link to contact %lld", row->contact_id);
		p->user_error(p->ud, label, uerr.msg);
		goto out;
	}
	enum engine_why why = engine_user_leaving(&u);
	if (row->linked && why != ENGINE_WHY_NONE &&
	    engine_policy_on_leave(p->pol, &link.fields, row->contact_id, engine_why_name(why), &leave, &uerr) != 0) {
		p->user_error(p->ud, label, uerr.msg);
		goto out;
	}
	const struct syncro_contact *cands[MAX_CANDIDATES];
	size_t ncands = 0;
	if (!row->linked && why == ENGINE_WHY_NONE) {
		int c = candidates(p, &u, cands, &ncands, label, err);
		if (c != 0) {
			rc = c > 0 ? 0 : c;
			goto out;
		}
	}
	if (engine_plan_user(&p->pol->plan, &u, row->linked ? &link : NULL, &leave, cands, ncands, &a, &uerr) != 0) {
		p->user_error(p->ud, label, uerr.msg);
		goto out;
	}
	snprintf(a.stamp, sizeof a.stamp, "%s%s", stamp, why != ENGINE_WHY_NONE ? ":k" : "");
	a.restamp = row->linked && (a.kind == ENGINE_UNCHANGED || a.kind == ENGINE_KEEP);
	if (p->emit(p->ud, &a) < 0) rc = -2;
out:
	engine_action_free(&a);
	engine_leave_free(&leave);
	engine_link_free(&link);
	syncro_fields_free(&desired);
	policy_decision_free(&d);
	cJSON_Delete(js);
	return rc;
}

int engine_plan_tenant(struct engine_planner *p, struct err *err)
{
	struct batch b = {0};
	char *after = xstrdup("");
	size_t limit = p->batch ? p->batch : DEFAULT_BATCH;
	int rc = 0;
	for (;;) {
		char *last = NULL;
		batch_clear(&b);
		if (store_plan_batch(p->ob, p->tenant_id, after, (long long)limit, take_row, &b, &last, err) != 0) {
			free(last);
			rc = -1;
			goto out;
		}
		free(after);
		after = last;
		for (size_t i = 0; i < b.n; i++)
			if ((rc = plan_row(p, &b.v[i], err)) != 0) goto out;
		if (p->batch_done && p->batch_done(p->ud) < 0) {
			rc = -2;
			goto out;
		}
		if (b.n < limit) break;
	}
	batch_clear(&b);
	/* links whose user is not in the mirror at all: gone from Entra */
	if (store_plan_orphans(p->ob, p->tenant_id, take_row, &b, err) != 0) {
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < b.n; i++)
		if ((rc = plan_row(p, &b.v[i], err)) != 0) goto out;
	if (p->batch_done && p->batch_done(p->ud) < 0) rc = -2;
out:
	batch_clear(&b);
	free(b.v);
	free(after);
	return rc;
}
