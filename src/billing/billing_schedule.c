/* billing_schedule — `bill --schedules`: the lines of each tenant's Syncro
 * invoice schedule (recurring invoice) kept equal to what bill() says.
 * Reads the schedule, diffs it with the plan (billing_schedule_diff), and
 * sends only the changes, each through the write path with an audit row
 * (old → new quantity and price). Writes left open by a crash are settled
 * against the schedule as it is read next time: an add found there is
 * adopted, anything else is simply planned again. */
#include "billing/billing_internal.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *billing_sched_status_name(enum billing_sched_status s)
{
	static const char *const names[] = { "unchanged", "changed", "held", "no_data", "unmapped", "not_configured",
	                                     "failed", "invoiced" };
	return (size_t)s < ARRAY_LEN(names) ? names[s] : "?";
}

void billing_schedule_result_free(struct billing_schedule_result *r)
{
	if (!r) return;
	billing_plan_free(&r->plan);
	billing_changes_free(&r->changes);
	for (size_t i = 0; i < r->nleft; i++) billing_changes_free(&r->left[i].changes);
	free(r->left);
	memset(r, 0, sizeof *r);
}

__attribute__((format(printf, 3, 4)))
static void sched_error(struct billing_schedule_result *out, enum billing_sched_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof out->error, fmt, ap);
	va_end(ap);
	out->status = st;
}

static bool all_digits(const char *s)
{
	if (!*s) return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s)) return false;
	return true;
}

/* t's schedule is also tenant other's (as other_names, when it names it
 * otherwise: schedule id): refused, each would set its lines to its own
 * seats in turn so that the recurring invoice bills one tenant's. */
static void shared_error(struct billing_schedule_result *out, const struct billing_tenant *t, const char *other,
                         long long id, const char *other_names)
{
	char also[192] = "";
	if (other_names) snprintf(also, sizeof also, " (schedule %lld, which it names '%s')", id, other_names);
	sched_error(out, BILLING_SCHED_FAILED, "schedule '%s' of customer %lld is also tenant %s's%s: a recurring "
	            "invoice keeps one tenant's licences (each would set its lines to its own seats in turn); give each "
	            "tenant its own (billing_schedule in its entry of the config); neither is kept in step until then",
	            t->schedule, t->customer_id, other, also);
}

/* The tenant's schedule: by id (it must be the customer's) or by name
 * (ASCII case-insensitive, exactly one). */
static enum syncro_result find_schedule(struct billing_ctx *c, const struct billing_tenant *t,
                                        struct syncro_schedule *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (all_digits(t->schedule)) {
		enum syncro_result r = syncro_schedule_get(c->sy, strtoll(t->schedule, NULL, 10), out, err);
		if (r == SYNCRO_OK && out->customer_id != t->customer_id) {
			err_set(err, "schedule %lld belongs to customer %lld, not to the tenant's customer %lld", out->id,
			        out->customer_id, t->customer_id);
			return SYNCRO_INVALID;
		}
		return r;
	}
	struct syncro_schedule_list all;
	enum syncro_result r = syncro_schedules_list(c->sy, t->customer_id, &all, err);
	if (r != SYNCRO_OK) {
		syncro_schedule_list_free(&all);
		return r;
	}
	billing_schedules_note(c, t->customer_id, &all);
	size_t hits = 0, at = 0;
	struct buf names = {0};
	for (size_t i = 0; i < all.n; i++) {
		buf_printf(&names, "%s%lld '%s'", i ? ", " : "", all.items[i].id, all.items[i].name ? all.items[i].name : "");
		if (all.items[i].name && str_ieq(all.items[i].name, t->schedule)) {
			if (!hits++) at = i;
		}
	}
	if (hits == 1) {
		*out = all.items[at];
		memset(&all.items[at], 0, sizeof all.items[at]);
	} else if (hits == 0) {
		r = SYNCRO_NOT_FOUND;
		err_set(err, "customer %lld has no schedule named '%s' (%s%s)", t->customer_id, t->schedule,
		        all.n ? "its schedules: " : "it has no schedule", all.n ? names.data : "");
	} else {
		r = SYNCRO_AMBIGUOUS;
		err_set(err, "customer %lld has %zu schedules named '%s' (%s): name it by id", t->customer_id, hits,
		        t->schedule, names.data);
	}
	buf_free(&names);
	syncro_schedule_list_free(&all);
	return r;
}

/* Refuses t's schedule when it is also a schedule peer's (named by id
 * by one, by name by the other: one schedule, id): out says so. */
static bool shared_by_peer(struct billing_ctx *c, const struct billing_tenant *t, long long id,
                           struct billing_schedule_result *out)
{
	for (size_t i = 0; i < t->npeers; i++) {
		const struct billing_schedule_peer *pe = &t->peers[i];
		long long other = all_digits(pe->schedule) ? strtoll(pe->schedule, NULL, 10)
		                : billing_schedule_named(c, t->customer_id, pe->schedule);
		if (other != id) continue;
		shared_error(out, t, pe->tenant_id, id, pe->schedule);
		return true;
	}
	return false;
}

/* ---- audit and managed keys */

/* {"quantity": q, "unit_cents": c} of one side of a change (NULL when the
 * line does not exist on that side). */
static char *side_json(long long qty_centi, long long cents)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "quantity", (double)qty_centi / 100.0);
	if (cents >= 0) cJSON_AddNumberToObject(o, "unit_cents", (double)cents);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* What a change's result also writes: the managed key. */
struct managed_op {
	struct billing_ctx *c;
	const char *tenant_id;
	long long schedule_id;
	const char *key;
	long long line_id;
	bool forget;
};

static int managed_apply(void *ud, struct err *err)
{
	struct managed_op *m = ud;
	if (m->forget) return store_billing_sched_delete(m->c->sb, m->tenant_id, m->schedule_id, m->key, err);
	return store_billing_sched_put(m->c->sb, m->tenant_id, m->schedule_id, m->key, m->line_id, err);
}

/* ---- writes left open by an interrupted run */

struct open_write {
	long long id;
	char *action;
	char *key;
	long long schedule_id;
};
struct open_writes {
	struct open_write *v;
	size_t n;
};

static int collect_open(const struct store_billing_intent *in, void *ud)
{
	struct open_writes *ow = ud;
	if (in->period || !str_starts(in->action, "schedule.")) return 0;
	cJSON *p = cJSON_Parse(in->payload ? in->payload : "");
	const cJSON *sid = cJSON_GetObjectItemCaseSensitive(p, "schedule_id");
	ow->v = xrealloc(ow->v, (ow->n + 1) * sizeof *ow->v);
	ow->v[ow->n++] = (struct open_write){ in->id, xstrdup(in->action), xstrdup(in->target ? in->target : ""),
	                                      cJSON_IsNumber(sid) ? (long long)sid->valuedouble : 0 };
	cJSON_Delete(p);
	return 0;
}

/* The line of the schedule with key, or NULL. */
static const struct syncro_schedule_line *sched_line(const struct syncro_schedule *s, const char *key)
{
	for (size_t i = 0; i < s->nlines; i++) {
		char *k = billing_line_key(s->lines[i].product_id, s->lines[i].name);
		bool eq = strcmp(k, key) == 0;
		free(k);
		if (eq) return &s->lines[i];
	}
	return NULL;
}

/* Closes the tenant's open schedule writes on schedule s: an add whose
 * line is there is done (and managed, audited), the rest are closed as
 * superseded (the diff that follows plans them again). */
static int settle_open(struct billing_ctx *c, const struct billing_tenant *t, const struct syncro_schedule *s,
                       struct billing_schedule_result *out, struct err *err)
{
	struct open_writes ow = {0};
	int rc = store_billing_intent_each_open(c->sb, t->id, collect_open, &ow, err);
	for (size_t i = 0; i < ow.n; i++) {
		struct open_write *o = &ow.v[i];
		if (rc == 0 && o->schedule_id == s->id) {
			const struct syncro_schedule_line *li = strcmp(o->action, "schedule.add") == 0 ? sched_line(s, o->key)
			                                                                               : NULL;
			struct billing_write w = { .tenant_id = t->id, .action = o->action, .target = o->key,
			                           .intent_id = o->id };
			if (li) {
				char *after = side_json(li->qty_centi, li->retail_cents);
				char object[96];
				snprintf(object, sizeof object, "schedule:%lld/%s", s->id, o->key);
				struct store_audit a = { .run_id = c->run_id, .tenant_id = t->id, .object_id = object,
				                         .action = "bill.schedule.add", .after = after, .actor = "entrasync",
				                         .result = "ok (found by a later run)" };
				struct managed_op m = { c, t->id, s->id, o->key, li->id, false };
				rc = billing_write_finish(c, &w, "done", li->id, NULL, &a, managed_apply, &m, err);
				free(after);
				out->recovered++;
			} else {
				rc = billing_write_finish(c, &w, "failed", 0, "interrupted; planned again from the schedule as it "
				                          "is", NULL, NULL, NULL, err);
			}
		}
		free(o->action);
		free(o->key);
	}
	free(ow.v);
	return rc;
}

/* ---- one change */

static char *change_payload(long long schedule_id, const struct billing_change *ch)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "schedule_id", (double)schedule_id);
	if (ch->line_id) cJSON_AddNumberToObject(o, "line_id", (double)ch->line_id);
	if (ch->product_id) cJSON_AddNumberToObject(o, "product_id", (double)ch->product_id);
	cJSON_AddStringToObject(o, "change", billing_change_kind_name(ch->kind));
	cJSON_AddNumberToObject(o, "old_quantity", (double)ch->old_qty_centi / 100.0);
	cJSON_AddNumberToObject(o, "new_quantity", (double)ch->new_qty_centi / 100.0);
	if (ch->set_price) cJSON_AddNumberToObject(o, "unit_cents", (double)ch->new_cents);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* Sends one change through the write path and records its result with
 * the audit row and the managed key. Returns -1 when the run must stop. */
static int apply_change(struct billing_ctx *c, const struct billing_tenant *t, long long schedule_id,
                        struct billing_change *ch, struct billing_schedule_result *out)
{
	char action[32], audit_action[48], object[96];
	snprintf(action, sizeof action, "schedule.%s", billing_change_kind_name(ch->kind));
	snprintf(audit_action, sizeof audit_action, "bill.%s", action);
	snprintf(object, sizeof object, "schedule:%lld/%s", schedule_id, ch->key);
	char *payload = change_payload(schedule_id, ch);
	struct billing_write w = { .tenant_id = t->id, .action = action, .target = ch->key, .payload = payload };
	struct err e = {{0}}, se = {{0}};
	struct syncro_schedule_line got = {0};
	enum syncro_result r = SYNCRO_FAILED;
	int rc = billing_write_begin(c, &w, &se);
	if (rc == 0) {
		switch (ch->kind) {
		case BILLING_ADD: {
			struct syncro_line_new l = { .product_id = ch->product_id, .item = ch->name,
			                             .quantity = ch->new_qty_centi / 100, .set_price = ch->set_price,
			                             .price_cents = ch->new_cents, .taxable = ch->taxable };
			r = syncro_schedule_line_add(c->sy, schedule_id, &l, &got, &e);
			break;
		}
		case BILLING_UPDATE:
		case BILLING_ZERO:
			r = syncro_schedule_line_update(c->sy, schedule_id, ch->line_id, ch->new_qty_centi, ch->set_price,
			                                ch->new_cents, &got, &e);
			break;
		case BILLING_REMOVE:
			r = syncro_schedule_line_remove(c->sy, schedule_id, ch->line_id, &e);
			if (r == SYNCRO_NOT_FOUND) r = SYNCRO_OK;   /* already gone */
			break;
		}
		billing_write_sent(c, &w);
	}
	long long line_id = ch->kind == BILLING_ADD ? got.id : ch->line_id;
	char *before = ch->kind == BILLING_ADD ? NULL : side_json(ch->old_qty_centi, ch->old_cents);
	char *after = ch->kind == BILLING_REMOVE ? NULL : side_json(ch->new_qty_centi, ch->new_cents);
	char *failed = r == SYNCRO_OK ? NULL : xasprintf("failed: %s", e.msg);
	struct store_audit a = { .run_id = c->run_id, .tenant_id = t->id, .object_id = object, .action = audit_action,
	                         .before = before, .after = after, .actor = "entrasync",
	                         .result = failed ? failed : "ok" };
	/* A line Syncro no longer has is forgotten (an add brings it back). */
	struct managed_op m = { c, t->id, schedule_id, ch->key, line_id,
	                        ch->kind == BILLING_REMOVE || r == SYNCRO_NOT_FOUND };
	if (rc == 0 && r == SYNCRO_OK)
		rc = billing_write_finish(c, &w, "done", line_id, NULL, &a, managed_apply, &m, &se);
	else if (rc == 0 && r != SYNCRO_UNKNOWN_OUTCOME)
		rc = billing_write_finish(c, &w, "failed", 0, e.msg, &a, r == SYNCRO_NOT_FOUND ? managed_apply : NULL, &m,
		                          &se);
	free(before);
	free(after);
	free(failed);
	free(payload);
	free(got.name);
	free(got.description);
	if (rc != 0) {
		out->fatal = true;
		sched_error(out, BILLING_SCHED_FAILED, "%s", se.msg);
		return -1;
	}
	if (r == SYNCRO_OK) {
		ch->applied = true;
		out->applied++;
		return 0;
	}
	ch->error = xstrdup(r == SYNCRO_UNKNOWN_OUTCOME ? "no clear answer: settled on the next run" : e.msg);
	out->failed++;
	if (!out->error[0]) snprintf(out->error, sizeof out->error, "%s", e.msg);
	if (r == SYNCRO_UNAUTHORIZED) {
		out->fatal = true;
		return -1;
	}
	return 0;
}

/* Records the lines adopted by the diff (matched by product or name) as
 * managed, in one transaction. */
static int adopt_keys(struct billing_ctx *c, const struct billing_tenant *t, const struct syncro_schedule *s,
                      char **before, size_t nbefore, const struct billing_changes *ch, struct err *err)
{
	if (store_billing_begin(c->sb, err) != 0) return -1;
	for (size_t i = 0; i < ch->nmanaged; i++) {
		bool known = false;
		for (size_t j = 0; j < nbefore && !known; j++) known = strcmp(before[j], ch->managed[i]) == 0;
		const struct syncro_schedule_line *li = sched_line(s, ch->managed[i]);
		if (known || !li) continue;
		if (store_billing_sched_put(c->sb, t->id, s->id, ch->managed[i], li->id, err) != 0) {
			store_billing_rollback(c->sb);
			return -1;
		}
	}
	return store_billing_commit(c->sb, err);
}

/* Diffs plan against schedule s (billing_schedule_diff) into *out. */
static void diff_schedule(const struct billing_plan *plan, const struct syncro_schedule *s, char **managed,
                          size_t nmanaged, const struct billing_sched_opts *o, struct billing_changes *out)
{
	struct err e = {{0}};
	struct billing_sched_line *have = xcalloc(s->nlines + 1, sizeof *have);
	for (size_t i = 0; i < s->nlines; i++)
		have[i] = (struct billing_sched_line){ .id = s->lines[i].id, .product_id = s->lines[i].product_id,
		                                       .name = s->lines[i].name, .qty_centi = s->lines[i].qty_centi,
		                                       .retail_cents = s->lines[i].retail_cents };
	billing_schedule_diff(plan, have, s->nlines, (const char *const *)managed, nmanaged, o, out, &e);
	free(have);
}

/* ---- schedules the tenant named before */

/* The schedules the tenant's lines are kept on (store_billing_sched_ids);
 * a store failure fails the run (out). */
static int kept_schedules(struct billing_ctx *c, const struct billing_tenant *t, long long **ids, size_t *n,
                          struct billing_schedule_result *out)
{
	struct err e = {{0}};
	if (store_billing_sched_ids(c->sb, t->id, ids, n, &e) == 0) return 0;
	out->fatal = true;
	sched_error(out, BILLING_SCHED_FAILED, "%s", e.msg);
	return -1;
}

/* Forgets the tenant's managed lines on schedule id (keys), in one
 * transaction: entrasync no longer keeps them. Not in a dry run. */
static int forget_schedule(struct billing_ctx *c, const struct billing_tenant *t, long long id, char **keys,
                           size_t n, struct err *err)
{
	if (c->dry_run) return 0;
	if (store_billing_begin(c->sb, err) != 0) return -1;
	for (size_t i = 0; i < n; i++)
		if (store_billing_sched_delete(c->sb, t->id, id, keys[i], err) != 0) {
			store_billing_rollback(c->sb);
			return -1;
		}
	return store_billing_commit(c->sb, err);
}

/* Who else keeps schedule id now: a tenant of the store with managed
 * lines on it, or a peer of t naming it (new string, free), or NULL. */
static int schedule_other_keeper(struct billing_ctx *c, const struct billing_tenant *t, long long id, char **other,
                                 struct err *err)
{
	if (store_billing_sched_other(c->sb, id, t->id, other, err) != 0) return -1;
	for (size_t i = 0; i < t->npeers && !*other; i++) {
		const char *s = t->peers[i].schedule;
		if ((all_digits(s) ? strtoll(s, NULL, 10) : billing_schedule_named(c, t->customer_id, s)) == id)
			*other = xstrdup(t->peers[i].tenant_id);
	}
	return 0;
}

/* Zeroes or removes (billing.on_removed) the tenant's managed lines on
 * schedule l->id, a schedule it named before, now that they bill on
 * new_id; then forgets them. Not when another tenant keeps that schedule
 * now (its lines are left to it) or this run's schedule is --schedule's;
 * a schedule deleted in Syncro is forgotten. No decrease guard: the seats
 * moved, they are billed on the new schedule. Returns -1 when the run
 * must stop (out->fatal). */
static int leave_schedule(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                          long long new_id, struct billing_left_schedule *l, struct billing_schedule_result *out)
{
	struct err e = {{0}};
	char **keys = NULL, *other = NULL;
	size_t nkeys = 0;
	struct syncro_schedule s = {0};
	int rc = 0;
	if (store_billing_sched_keys(c->sb, t->id, l->id, &keys, &nkeys, &e) != 0 ||
	    schedule_other_keeper(c, t, l->id, &other, &e) != 0) {
		rc = -1;
		goto out;
	}
	if (t->schedule_override) {
		snprintf(l->note, sizeof l->note, "not touched: --schedule names schedule %lld for this run only", new_id);
		goto out;
	}
	if (other) {
		snprintf(l->note, sizeof l->note, "now tenant %s's too: its lines there are left to it", other);
		rc = forget_schedule(c, t, l->id, keys, nkeys, &e);
		goto out;
	}
	enum syncro_result r = syncro_schedule_get(c->sy, l->id, &s, &e);
	if (r == SYNCRO_NOT_FOUND) {
		snprintf(l->note, sizeof l->note, "deleted in Syncro: nothing left there to bill");
		rc = forget_schedule(c, t, l->id, keys, nkeys, &e);
		goto out;
	}
	if (r != SYNCRO_OK) {
		l->failed = true;
		snprintf(l->note, sizeof l->note, "could not be read (%.300s): it may still bill the tenant's lines; the "
		         "next run tries again", e.msg);
		if (r == SYNCRO_UNAUTHORIZED) rc = -1;
		goto out;
	}
	snprintf(l->name, sizeof l->name, "%s", s.name ? s.name : "");
	if (!c->dry_run && settle_open(c, t, &s, out, &e) != 0) {
		rc = -1;
		goto out;
	}
	struct billing_plan none;
	billing_plan_init(&none, t->id, p);
	struct billing_sched_opts o = c->sched;
	o.allow_decrease = true;
	diff_schedule(&none, &s, keys, nkeys, &o, &l->changes);
	billing_plan_free(&none);
	long long failed = out->failed;
	for (size_t i = 0; i < l->changes.n && !c->dry_run && !out->fatal; i++)
		if (apply_change(c, t, l->id, &l->changes.v[i], out) != 0) rc = -1;
	if (out->failed > failed) {
		l->failed = true;
		snprintf(l->note, sizeof l->note, "the tenant's schedule before: its lines there still bill it (a change "
		         "failed); the next run tries again");
		goto out;
	}
	snprintf(l->note, sizeof l->note, "the tenant's schedule before: its lines there %s%s (they bill on schedule "
	         "%lld now)", c->dry_run ? "would be " : "", c->sched.remove ? "removed" : "set to 0", new_id);
	if (rc == 0) rc = forget_schedule(c, t, l->id, keys, nkeys, &e);
out:
	if (rc != 0 && !out->fatal) {
		out->fatal = true;
		sched_error(out, BILLING_SCHED_FAILED, "%s", e.msg);
	}
	for (size_t i = 0; i < nkeys; i++) free(keys[i]);
	free(keys);
	free(other);
	syncro_schedule_free(&s);
	return rc;
}

/* Leaves every schedule other than new_id that the tenant's lines were
 * kept on (leave_schedule). Returns -1 when the run must stop. */
static int leave_old_schedules(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                               long long new_id, struct billing_schedule_result *out)
{
	long long *ids = NULL;
	size_t n = 0;
	if (kept_schedules(c, t, &ids, &n, out) != 0) return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (ids[i] == new_id) continue;
		out->left = xrealloc(out->left, (out->nleft + 1) * sizeof *out->left);
		struct billing_left_schedule *l = &out->left[out->nleft++];
		memset(l, 0, sizeof *l);
		l->id = ids[i];
		rc = leave_schedule(c, t, p, new_id, l, out);
		if (l->failed && !out->error[0])
			snprintf(out->error, sizeof out->error, "schedule %lld, the tenant's before: %s", l->id, l->note);
	}
	free(ids);
	return rc;
}

int billing_schedule_tenant(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                            struct billing_schedule_result *out)
{
	memset(out, 0, sizeof *out);
	billing_plan_init(&out->plan, t->id, p);
	if (t->twin) {
		sched_error(out, BILLING_SCHED_UNMAPPED, "the same Microsoft tenant as tenant %s of the config: list it "
		            "once; neither is billed until then", t->twin);
		return 0;
	}
	if (!t->customer_id) {
		sched_error(out, BILLING_SCHED_UNMAPPED, "no Syncro customer for the tenant");
		return 0;
	}
	if (!t->schedule || !*t->schedule) {
		long long *ids = NULL;
		size_t n = 0;
		if (kept_schedules(c, t, &ids, &n, out) != 0) return -1;
		char kept[160] = "";
		if (n)   /* left as they are: a schedule taken out of the config by mistake must not zero them */
			snprintf(kept, sizeof kept, "; its lines on schedule %lld, kept in step before, still bill it: name "
			         "a schedule again (they move to it), or set them to 0 in Syncro", ids[0]);
		free(ids);
		if (t->invoiced && !kept[0]) {
			sched_error(out, BILLING_SCHED_INVOICED, "billed by bill --period (billing_schedule = false in its "
			            "entry of the config): no recurring invoice to keep in step");
			return 0;
		}
		sched_error(out, BILLING_SCHED_NOT_CONFIGURED, "no schedule named for the tenant (billing.schedule or the "
		            "tenant's billing_schedule in the config, or --schedule NAME|ID)%s", kept);
		return 0;
	}
	if (t->schedule_twin) {   /* each would set the lines to its own seats in turn: one tenant's billed */
		shared_error(out, t, t->schedule_twin, 0, NULL);
		return 0;
	}
	struct err e = {{0}};
	bool has_data;
	billing_plan_free(&out->plan);
	if (billing_plan_tenant(c, t, p, &out->plan, &has_data, &e) != 0) {
		sched_error(out, BILLING_SCHED_FAILED, "%s", e.msg);
		return 0;
	}
	char today[16];
	if (!has_data && billing_period_vs(p, billing_now(c)) == 0 && strcmp(billing_today(c, today), p->first) == 0) {
		/* the month's first day, before its pull: the seats as the last pull of the month before saw them
		 * (what the schedule was last put in step with) */
		struct billing_period before;
		billing_period_prev(p, &before);
		billing_plan_free(&out->plan);
		if (billing_plan_tenant(c, t, &before, &out->plan, &has_data, &e) != 0) {
			sched_error(out, BILLING_SCHED_FAILED, "%s", e.msg);
			return 0;
		}
		if (has_data) snprintf(out->planned_from, sizeof out->planned_from, "%s", before.id);
	}
	if (!has_data) {
		sched_error(out, BILLING_SCHED_NO_DATA, "no licence snapshot of the tenant in %s yet: run entrasync pull "
		            "first (are the daily pulls running?)", p->id);
		return 0;
	}
	struct syncro_schedule s;
	enum syncro_result r = find_schedule(c, t, &s, &e);
	if (r != SYNCRO_OK) {
		syncro_schedule_free(&s);
		out->fatal = r == SYNCRO_UNAUTHORIZED;
		sched_error(out, BILLING_SCHED_FAILED, "%s", e.msg);
		return out->fatal ? -1 : 0;
	}
	if (shared_by_peer(c, t, s.id, out)) {   /* the same schedule named another way (by id, by name) */
		syncro_schedule_free(&s);
		return 0;
	}
	out->schedule_id = s.id;
	snprintf(out->schedule_name, sizeof out->schedule_name, "%s", s.name ? s.name : "");
	char **managed = NULL;
	size_t nmanaged = 0;
	int rc = 0;
	if ((!c->dry_run && settle_open(c, t, &s, out, &e) != 0) ||
	    store_billing_sched_keys(c->sb, t->id, s.id, &managed, &nmanaged, &e) != 0) {
		out->fatal = true;
		sched_error(out, BILLING_SCHED_FAILED, "%s", e.msg);
		rc = -1;
		goto out;
	}
	diff_schedule(&out->plan, &s, managed, nmanaged, &c->sched, &out->changes);
	if (!c->dry_run) {
		for (size_t i = 0; i < out->changes.n && !out->fatal; i++)
			if (!out->changes.v[i].held && apply_change(c, t, s.id, &out->changes.v[i], out) != 0) rc = -1;
		if (!out->fatal && adopt_keys(c, t, &s, managed, nmanaged, &out->changes, &e) != 0) {
			out->fatal = true;
			sched_error(out, BILLING_SCHED_FAILED, "%s", e.msg);
			rc = -1;
		}
	}
	/* its lines on the schedule it named before: they would bill it twice */
	if (!out->fatal && !out->failed && leave_old_schedules(c, t, p, s.id, out) != 0) rc = -1;
	bool left_failed = false, left_changed = false;
	for (size_t i = 0; i < out->nleft; i++) {
		left_failed |= out->left[i].failed;
		left_changed |= out->left[i].changes.n > 0;
	}
	if (out->fatal || out->failed || left_failed) out->status = BILLING_SCHED_FAILED;
	else if (out->changes.held) out->status = BILLING_SCHED_HELD;
	else if (out->changes.n || left_changed) out->status = BILLING_SCHED_CHANGED;
	else out->status = BILLING_SCHED_UNCHANGED;
out:
	for (size_t i = 0; i < nmanaged; i++) free(managed[i]);
	free(managed);
	syncro_schedule_free(&s);
	return rc;
}
