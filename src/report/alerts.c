/* alerts — report findings into Syncro tickets (see alerts.h): grouping,
 * the open-ticket state per (tenant, kind), dry-run plan lines, and the one
 * function every ticket write goes through (intent in the audit trail,
 * send, result). */
#include "report/alerts.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "report/metrics.h"
#include "util/log.h"
#include "util/shutdown.h"
#include "store/store_history.h"
#include "store/store_tenants.h"
#include "syncro/syncro.h"
#include "syncro/syncro_tickets.h"
#include "syncro/syncro_tickets_open.h"

#define ALERT_DEFAULT_PREFIX "[entrasync]"
#define ALERT_DEFAULT_PROBLEM "Other"

static const char *const kind_titles[FINDING_NKINDS] = {
	[FINDING_UNUSED] = "unused licences",
	[FINDING_OVER_ASSIGNED] = "licences over-assigned",
	[FINDING_DISABLED_USER] = "disabled users still hold licences",
	[FINDING_DELETED_USER] = "deleted users held licences",
	[FINDING_WARNING] = "licences expiring (grace period)",
	[FINDING_SUSPENDED] = "licences suspended",
	[FINDING_LOCKED_OUT] = "licences locked out",
	[FINDING_SCORE_ALERT] = "Secure Score alert",
	[FINDING_FAILING] = "Microsoft 365 pull or sync failing",
};

/* FNV-1a 64 of s, as 16 hex digits. */
static void digest_of(const char *a, const char *b, char out[17])
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = a; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ 0xFF) * 1099511628211ULL;
	for (const char *s = b; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static const char *tenant_name(const struct report *r, const char *id)
{
	for (size_t i = 0; i < r->ntenants; i++)
		if (strcmp(r->tenants[i].id, id) == 0) return r->tenants[i].name;
	return id;
}

void alerts_collect(const struct report *r, const char *prefix, struct alerts *out)
{
	memset(out, 0, sizeof *out);
	if (!prefix) prefix = ALERT_DEFAULT_PREFIX;
	struct buf *bodies = xcalloc(r->findings.n + 1, sizeof *bodies);
	struct buf *texts = xcalloc(r->findings.n + 1, sizeof *texts);   /* what the digest is of */
	out->v = xcalloc(r->findings.n + 1, sizeof *out->v);
	for (size_t i = 0; i < r->findings.n; i++) {
		const struct finding *f = &r->findings.v[i];
		const char *kind = finding_kind_name(f->kind);
		size_t k = 0;
		while (k < out->n && !(strcmp(out->v[k].tenant_id, f->tenant_id) == 0 && strcmp(out->v[k].kind, kind) == 0))
			k++;
		if (k == out->n) {
			out->v[k].tenant_id = xstrdup(f->tenant_id);
			out->v[k].tenant_name = xstrdup(tenant_name(r, f->tenant_id));
			out->v[k].kind = kind;
			out->n++;
		}
		out->v[k].count++;
		buf_printf(&bodies[k], "- %s\n", f->message);
		buf_printf(&texts[k], "- %s\n", f->alert_text ? f->alert_text : f->message);
	}
	for (size_t k = 0; k < out->n; k++) {
		struct alert *a = &out->v[k];
		const char *title = kind_titles[0];
		for (int j = 0; j < FINDING_NKINDS; j++)
			if (strcmp(finding_kind_name((enum finding_kind)j), a->kind) == 0) title = kind_titles[j];
		a->subject = xasprintf("%s %s: %s", prefix, a->tenant_name, title);
		a->body = xasprintf("entrasync found %zu issue%s of this kind for %s (%s):\n%s", a->count,
		                    a->count == 1 ? "" : "s", a->tenant_name, a->tenant_id,
		                    bodies[k].data ? bodies[k].data : "");
		digest_of(a->subject, texts[k].data ? texts[k].data : "", a->digest);
		buf_free(&bodies[k]);
		buf_free(&texts[k]);
	}
	free(bodies);
	free(texts);
}

void alerts_free(struct alerts *a)
{
	if (!a) return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].tenant_id);
		free(a->v[i].tenant_name);
		free(a->v[i].subject);
		free(a->v[i].body);
	}
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* ---- sending ---------------------------------------------------------------------- */

struct run {
	const struct config *cfg;
	struct store *st;
	const struct alerts_opts *o;
	FILE *plan;
	struct alerts_result *res;
	struct http_engine *e;
	struct syncro_client *sc;
	struct syncro_resource *tickets;
	size_t *twin;                /* per config tenant: store_tenant_twins, or NULL (not read) */
};

enum alert_op { ALERT_CREATE, ALERT_COMMENT };

/* The one function every ticket write goes through: records the intent in
 * the audit trail, sends, records the result. CREATE fills *ticket_id. */
static enum syncro_result alert_write(struct run *rn, enum alert_op op, const struct alert *a, long long customer_id,
                                      long long *ticket_id, struct err *err)
{
	const char *action = op == ALERT_CREATE ? "alert.ticket_create" : "alert.ticket_comment";
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "kind", a->kind);
	cJSON_AddStringToObject(j, "subject", a->subject);
	cJSON_AddNumberToObject(j, "customer_id", (double)customer_id);
	if (op == ALERT_COMMENT) cJSON_AddNumberToObject(j, "ticket_id", (double)*ticket_id);
	char *intent = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	struct store_audit row = { .tenant_id = a->tenant_id, .action = action, .after = intent,
	                           .actor = "entrasync", .result = "intent" };
	struct err ae;
	if (store_audit_append(rn->st, &row, NULL, &ae) != 0) log_warn("alerts", "audit: %s", ae.msg);
	enum syncro_result rc;
	char result[200];
	if (op == ALERT_CREATE) {
		struct syncro_ticket t;
		rc = syncro_ticket_create(rn->tickets, &(struct syncro_ticket_new){
			.customer_id = customer_id, .subject = a->subject,
			.problem_type = rn->o->problem_type ? rn->o->problem_type : ALERT_DEFAULT_PROBLEM, .body = a->body,
		}, &t, err);
		if (rc == SYNCRO_OK) *ticket_id = t.id;
		syncro_ticket_free(&t);
	} else {
		rc = syncro_ticket_comment(rn->tickets, *ticket_id, a->subject, a->body, err);
	}
	if (rc == SYNCRO_OK) snprintf(result, sizeof result, "ok: ticket %lld", *ticket_id);
	else snprintf(result, sizeof result, "failed: %.180s", err->msg);
	row.result = result;
	if (store_audit_append(rn->st, &row, NULL, &ae) != 0) log_warn("alerts", "audit: %s", ae.msg);
	free(intent);
	return rc;
}

/* The Syncro customer of a tenant: the config's id, else the store's, else
 * the config's name looked up (not in a dry run). 0 = none (a tenant no
 * longer in the config has none: no alert goes to a former customer);
 * *label says what is known for the plan line. */
static long long customer_of(struct run *rn, const char *tenant_id, char *label, size_t cap, struct err *err)
{
	const struct config_tenant *ct = NULL;
	for (size_t i = 0; i < rn->cfg->ntenants && !ct; i++)
		if (str_ieq(rn->cfg->tenants[i].id, tenant_id)) ct = &rn->cfg->tenants[i];
	if (!ct) {
		snprintf(label, cap, "the tenant is not in the config any more");
		return 0;
	}
	size_t at = (size_t)(ct - rn->cfg->tenants);
	if (rn->twin && rn->twin[at] < rn->cfg->ntenants) {   /* one alert per customer, not one per id */
		snprintf(label, cap, "the tenant is listed twice in the config (as %.80s too): list it once",
		         rn->cfg->tenants[rn->twin[at]].id);
		return 0;
	}
	long long id = ct->syncro_customer_id;
	if (!id) {
		struct store_tenant row;
		if (store_tenant_get(rn->st, tenant_id, &row, err) == 0) id = row.syncro_customer_id;
		store_tenant_free(&row);
	}
	if (id) {
		snprintf(label, cap, "customer %lld", id);
		return id;
	}
	if (!ct->syncro_customer) {
		snprintf(label, cap, "no Syncro customer mapped");
		return 0;
	}
	snprintf(label, cap, "customer '%s'", ct->syncro_customer);
	if (!rn->sc) return -1;    /* dry run: known by name only */
	struct syncro_customer c;
	enum syncro_result rc = syncro_customer_find(rn->sc, ct->syncro_customer, &c, err);
	id = rc == SYNCRO_OK ? c.id : 0;
	syncro_customer_free(&c);
	if (id) snprintf(label, cap, "customer %lld", id);
	return id;
}

static void now_iso(char out[32])
{
	time_iso8601(time_now(), out, 32);
}

/* Is ticket id open in Syncro for customer (0: any)? 1 yes, 0 no (closed,
 * deleted, or moved to another customer by a technician: no longer this
 * tenant's to write to), -1 could not tell (*rc, e). */
static int ticket_open(struct run *rn, long long id, long long customer, enum syncro_result *rc, struct err *e)
{
	struct syncro_ticket t;
	*rc = syncro_ticket_get(rn->tickets, id, &t, e);
	int open = *rc == SYNCRO_OK ? !syncro_ticket_closed(t.status) && (!customer || t.customer_id == customer)
	         : *rc == SYNCRO_NOT_FOUND ? 0 : -1;
	syncro_ticket_free(&t);
	return open;
}

/* An open ticket of the customer with the alert's subject (one an
 * interrupted run made, its answer lost; or the ticket of an alert that
 * cleared and came back): its id, 0 when none, -1 could not tell (e). */
static long long ticket_with_subject(struct run *rn, long long customer, const char *subject, enum syncro_result *rc,
                                     struct err *e)
{
	struct syncro_open_tickets l;
	if ((*rc = syncro_tickets_of_customer(rn->sc, customer, "Not Closed", &l, e)) != SYNCRO_OK) return -1;
	long long id = 0;
	for (size_t i = 0; i < l.n && !id; i++)
		if (l.items[i].subject && str_ieq(l.items[i].subject, subject) && !syncro_ticket_closed(l.items[i].status))
			id = l.items[i].id;
	syncro_open_tickets_free(&l);
	return id;
}

static int alert_failed(struct run *rn, const struct alert *a, enum syncro_result rc, const struct err *e,
                        struct err *err)
{
	fprintf(rn->plan, "alert %s/%s: FAILED: %s\n", a->tenant_name, a->kind, e->msg);
	rn->res->failed++;
	return syncro_result_fatal(rc) ? err_set(err, "%s", e->msg) : 0;
}

/* Did the last attempt to create this alert's ticket (the newest
 * alert.ticket_create row of the tenant with a->subject, among its last
 * 200 audit rows) end without an answer it could trust? Then a ticket
 * found open with that subject is most likely the one it made. */
struct create_lost {
	const char *subject;
	bool seen, lost;
};

static int create_row(const struct store_audit *au, void *ud)
{
	struct create_lost *c = ud;
	if (c->seen || strcmp(au->action, "alert.ticket_create") != 0 || !au->after || !au->result) return 0;
	cJSON *j = cJSON_Parse(au->after);
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(j, "subject");
	if (cJSON_IsString(sub) && !strcmp(sub->valuestring, c->subject) && strcmp(au->result, "intent") != 0) {
		c->seen = true;
		c->lost = strncmp(au->result, "ok", 2) != 0;
	}
	cJSON_Delete(j);
	return 0;
}

static bool create_answer_lost(struct run *rn, const struct alert *a)
{
	struct create_lost c = { .subject = a->subject };
	struct store_audit_filter f = { .tenant_id = a->tenant_id, .limit = 200, .newest_first = true };
	struct err e;
	if (store_audit_each(rn->st, &f, create_row, &c, &e) < 0) return false;
	return c.lost;
}

/* One alert: plan line, then create / comment / nothing. The ticket kept
 * for (tenant, kind) is read each run: an alert whose ticket was closed
 * or deleted while it still holds gets a new one. Before a ticket is
 * created, the customer's open tickets are looked through for one with
 * the alert's subject (an earlier run's whose answer was lost, or the
 * ticket of an alert that cleared and came back), which is used instead. */
static int raise_one(struct run *rn, const struct alert *a, struct err *err)
{
	char label[200];
	struct err e = {{0}};
	long long customer = customer_of(rn, a->tenant_id, label, sizeof label, &e);
	if (customer == 0) {
		fprintf(rn->plan, "alert %s/%s: skipped: %s%s%s\n", a->tenant_name, a->kind, label, e.msg[0] ? ": " : "",
		        e.msg);
		rn->res->skipped++;
		return 0;
	}
	struct store_alert_ticket state;
	int have = store_history_alert_get(rn->st, a->tenant_id, a->kind, &state, err);
	if (have < 0) return -1;
	bool same = have == 0 && strcmp(state.digest, a->digest) == 0;
	if (rn->o->dry_run) {
		if (same)
			fprintf(rn->plan, "alert %s/%s: unchanged (ticket %lld, if still open)\n", a->tenant_name, a->kind,
			        state.ticket_id);
		else if (have == 0)
			fprintf(rn->plan, "alert %s/%s: skipped (dry run): would update ticket %lld: %s\n", a->tenant_name,
			        a->kind, state.ticket_id, a->subject);
		else
			fprintf(rn->plan, "alert %s/%s: skipped (dry run): would create a ticket for %s: %s\n", a->tenant_name,
			        a->kind, label, a->subject);
		if (same) rn->res->unchanged++;
		else rn->res->skipped++;
		return 0;
	}
	long long ticket = 0;
	const char *was = "";
	enum syncro_result rc;
	if (have == 0) {               /* still open in Syncro? */
		int open = ticket_open(rn, state.ticket_id, customer, &rc, &e);
		if (open < 0) return alert_failed(rn, a, rc, &e, err);
		if (open && same) {
			fprintf(rn->plan, "alert %s/%s: unchanged (ticket %lld)\n", a->tenant_name, a->kind, state.ticket_id);
			rn->res->unchanged++;
			return 0;
		}
		if (open) ticket = state.ticket_id;
		else was = " (the last one was closed, deleted or moved to another customer)";
	}
	bool adopted = false;
	if (!ticket) {
		long long found = ticket_with_subject(rn, customer, a->subject, &rc, &e);
		if (found < 0) return alert_failed(rn, a, rc, &e, err);
		ticket = found;
		adopted = found > 0;
	}
	bool open = ticket > 0;
	/* found by subject after this alert's own create lost its answer: that
	 * ticket has the text already (a comment would say it twice) */
	bool made_before = adopted && create_answer_lost(rn, a);
	if (!made_before) {
		rc = alert_write(rn, open ? ALERT_COMMENT : ALERT_CREATE, a, customer, &ticket, &e);
		if (rc != SYNCRO_OK) return alert_failed(rn, a, rc, &e, err);
	}
	bool kept = open && !adopted && have == 0;
	struct store_alert_ticket next = { .ticket_id = ticket, .occurrences = kept ? state.occurrences + 1 : 1 };
	now_iso(next.last_at);
	if (kept) snprintf(next.opened_at, sizeof next.opened_at, "%s", state.opened_at);
	else now_iso(next.opened_at);
	snprintf(next.digest, sizeof next.digest, "%s", a->digest);
	if (store_history_alert_put(rn->st, a->tenant_id, a->kind, &next, err) != 0) return -1;
	fprintf(rn->plan, "alert %s/%s: %s ticket %lld%s: %s\n", a->tenant_name, a->kind,
	        made_before ? "kept" : open ? "updated" : "created", ticket,
	        made_before ? " (made by the last run, whose answer was lost)"
	                    : adopted ? " (found open with this subject)" : was, a->subject);
	if (made_before) rn->res->unchanged++;
	else if (open) rn->res->updated++;
	else rn->res->created++;
	return 0;
}

/* A kept alert ticket of (tenant, kind) whose finding this report looked
 * for and did not find: a comment that it no longer holds when the ticket
 * is still open, and the ticket forgotten (if it comes back, its open
 * ticket is found again by subject, else a new one is made). */
static int clear_one(struct run *rn, const char *tenant_id, const char *tenant_name, enum finding_kind k,
                     struct err *err)
{
	const char *kind = finding_kind_name(k);
	struct store_alert_ticket state;
	int have = store_history_alert_get(rn->st, tenant_id, kind, &state, err);
	if (have < 0) return -1;
	if (have != 0) return 0;
	if (rn->o->dry_run) {
		fprintf(rn->plan, "alert %s/%s: skipped (dry run): would note on ticket %lld that it no longer holds\n",
		        tenant_name, kind, state.ticket_id);
		rn->res->skipped++;
		return 0;
	}
	struct err e = {{0}};
	enum syncro_result rc;
	char label[200];
	long long customer = customer_of(rn, tenant_id, label, sizeof label, &e);
	int open = ticket_open(rn, state.ticket_id, customer > 0 ? customer : 0, &rc, &e);
	if (open < 0) {
		fprintf(rn->plan, "alert %s/%s: FAILED: %s\n", tenant_name, kind, e.msg);
		rn->res->failed++;
		return syncro_result_fatal(rc) ? err_set(err, "%s", e.msg) : 0;
	}
	if (open) {
		char now[32];
		now_iso(now);
		struct alert c = { .tenant_id = xstrdup(tenant_id), .tenant_name = xstrdup(tenant_name), .kind = kind };
		c.subject = xasprintf("%s %s: %s", rn->o->subject_prefix ? rn->o->subject_prefix : ALERT_DEFAULT_PREFIX,
		                      tenant_name, kind_titles[k]);
		c.body = xasprintf("entrasync no longer finds this for %s (%s) as of %s: the ticket can be closed. If it "
		                   "comes back while this ticket is open, it is noted here again; after it is closed, in a "
		                   "new ticket.", tenant_name, tenant_id, now);
		long long ticket = state.ticket_id;
		rc = alert_write(rn, ALERT_COMMENT, &c, 0, &ticket, &e);
		free(c.tenant_id);
		free(c.tenant_name);
		free(c.subject);
		free(c.body);
		if (rc != SYNCRO_OK) {
			fprintf(rn->plan, "alert %s/%s: FAILED: %s\n", tenant_name, kind, e.msg);
			rn->res->failed++;
			return syncro_result_fatal(rc) ? err_set(err, "%s", e.msg) : 0;
		}
	}
	if (store_history_alert_put(rn->st, tenant_id, kind, NULL, err) != 0) return -1;
	fprintf(rn->plan, "alert %s/%s: cleared: %s ticket %lld\n", tenant_name, kind,
	        open ? "noted on" : "no longer holds; already closed:", state.ticket_id);
	rn->res->cleared++;
	return 0;
}

/* Was an alert for (tenant, kind) raised this run? */
static bool alert_raised(const struct alerts *al, const char *tenant_id, const char *kind)
{
	for (size_t i = 0; i < al->n; i++)
		if (!strcmp(al->v[i].tenant_id, tenant_id) && !strcmp(al->v[i].kind, kind)) return true;
	return false;
}

/* The kept tickets the report's tenants have for kinds it looked for and
 * did not raise (each as tenant index * FINDING_NKINDS + kind). */
static int clears_find(struct run *rn, const struct report *r, const struct alerts *al, struct buf *out,
                       struct err *err)
{
	for (size_t i = 0; i < r->ntenants; i++)
		for (int k = 0; k < FINDING_NKINDS; k++) {
			if (!r->checked[k] || alert_raised(al, r->tenants[i].id, finding_kind_name((enum finding_kind)k)))
				continue;
			struct store_alert_ticket state;
			int have = store_history_alert_get(rn->st, r->tenants[i].id, finding_kind_name((enum finding_kind)k),
			                                   &state, err);
			if (have < 0) return -1;
			if (have != 0) continue;
			size_t v = i * FINDING_NKINDS + (size_t)k;
			buf_add(out, &v, sizeof v);
		}
	return 0;
}

int alerts_run(const struct config *cfg, struct store *st, const struct report *r, const struct alerts_opts *o,
               FILE *plan, struct alerts_result *res, struct err *err)
{
	memset(res, 0, sizeof *res);
	struct alerts al;
	alerts_collect(r, o->subject_prefix, &al);
	struct run rn = { .cfg = cfg, .st = st, .o = o, .plan = plan, .res = res };
	struct buf clears = {0};
	int rc = -1;
	rn.twin = xcalloc(cfg->ntenants + 1, sizeof *rn.twin);
	if (store_tenant_twins(st, cfg->tenants, cfg->ntenants, rn.twin, err) != 0) goto out;
	if (clears_find(&rn, r, &al, &clears, err) != 0) goto out;
	if (al.n == 0 && clears.len == 0) {
		fprintf(plan, "alerts: nothing to raise\n");
		rc = 0;
		goto out;
	}
	if (!o->dry_run) {
		struct syncro_opts so;
		syncro_opts_from_config(&cfg->syncro, &so);
		if (!(rn.e = http_engine_new(NULL, err))) goto out;
		if (!(rn.sc = syncro_client_new(rn.e, &so, err))) goto out;
		if (!(rn.tickets = syncro_resource_new(rn.sc, SYNCRO_TICKET_PERMISSIONS, err))) goto out;
	}
	for (size_t i = 0; i < al.n && !shutdown_requested(); i++)   /* a stop: the next run raises the rest */
		if (raise_one(&rn, &al.v[i], err) != 0) goto out;
	for (size_t off = 0; off + sizeof(size_t) <= clears.len && !shutdown_requested(); off += sizeof(size_t)) {
		size_t v;
		memcpy(&v, clears.data + off, sizeof v);
		const struct report_tenant *t = &r->tenants[v / FINDING_NKINDS];
		if (clear_one(&rn, t->id, t->name, (enum finding_kind)(v % FINDING_NKINDS), err) != 0) goto out;
	}
	fprintf(plan, "alerts: %d created, %d updated, %d unchanged, %d cleared, %d skipped, %d failed\n", res->created,
	        res->updated, res->unchanged, res->cleared, res->skipped, res->failed);
	rc = 0;
out:
	/* its Syncro requests, for the metrics (a failure to record them is only logged) */
	if (rn.sc) {
		struct err merr;
		if (metrics_record_service(st, syncro_client_service(rn.sc), NULL, &merr) != 0)
			log_warn("alerts", "the HTTP counters were not recorded for the metrics: %s", merr.msg);
	}
	buf_free(&clears);
	free(rn.twin);
	http_engine_free(rn.e);
	syncro_resource_free(rn.tickets);
	syncro_client_free(rn.sc);
	alerts_free(&al);
	return rc;
}
