/* engine_sync — `entrasync sync` as a run over the selected tenants:
 * resolve each tenant's Syncro customer and load its policy, pull them all
 * from Graph, then per tenant recover open intents, plan every mirrored
 * user (streamed from the store in batches, never all held), apply the
 * non-destructive actions as they come and the destructive ones after the
 * removal guard, and report. One tenant's failure never stops the others;
 * a Syncro 401 stops the run. */
#include "engine/engine.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/config.h"
#include "engine/engine_policy.h"
#include "engine/engine_stream.h"
#include "graph/graph.h"
#include "util/log.h"
#include "util/shutdown.h"
#include "store/store.h"
#include "store/store_outbox.h"
#include "store/store_tenants.h"

#define MAX_ERRORS 200          /* error lines kept per tenant; the rest are counted */

/* One tenant's run. */
struct tenant_run {
	const struct engine_env *env;
	const struct engine_sync_opts *o;
	struct engine_report *rep;
	const struct config_tenant *ct;
	struct engine_tenant_report *r;
	struct engine_policy pol;
	bool ready;                          /* customer resolved and policy loaded */
	bool failed;                         /* a tenant-level failure (r->reason) */
	bool held;
	struct engine_apply ap;
	struct engine_contacts *ix;
	struct engine_contacts *made;        /* the run's: the contacts it made so far, every tenant's */
	struct engine_action *deferred;      /* destructive actions, applied after the guard */
	size_t ndeferred, capdeferred;
	bool pending_recovery;               /* a create's answer was lost */
	bool restamp_tx;                     /* a transaction of restamps is open */
	/* The users with an open conflict when the plan began (a real run);
	 * one planned as anything but a conflict has it closed. */
	char **conflicted;
	size_t nconflicted;
	struct str_index conflicted_at;      /* object id -> its index in conflicted */
	bool *conflict_closed;               /* per conflicted[i] */
	char *default_domain;
	double started;
	/* sync --verify: the linked users whose contact is gone from Syncro */
	struct str_index gone_at;            /* object id -> index into gone_contacts */
	char **gone_users;
	long long *gone_contacts;
	size_t ngone;
};

/* ------------------------------------------------------------ report helpers */

static void tenant_error(struct tenant_run *tr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tenant_error(struct tenant_run *tr, const char *fmt, ...)
{
	struct engine_tenant_report *r = tr->r;
	r->n.errors++;
	if (r->nerrors >= MAX_ERRORS) {
		r->errors_dropped++;
		return;
	}
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	r->errors = xrealloc(r->errors, (r->nerrors + 1) * sizeof *r->errors);
	r->errors[r->nerrors++] = buf_steal(&b);
}

/* A tenant-level failure: status failed with the reason, nothing more runs
 * for this tenant. */
static void tenant_fail(struct tenant_run *tr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tenant_fail(struct tenant_run *tr, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	struct err e;
	snprintf(e.msg, sizeof e.msg, "%s", b.data);
	log_redact_err(&e);
	buf_free(&b);
	tenant_error(tr, "%s", e.msg);
	if (!tr->failed) {
		free(tr->r->reason);
		tr->r->reason = xstrdup(e.msg);
	}
	tr->failed = true;
	log_error("sync", "tenant %s: %s", tr->ct->id, e.msg);
}

/* Stops the run for a result that concerns every tenant (syncro_result_fatal:
 * a 401, the token's; Syncro found not answering), with msg, and fails tr. */
static void run_fatal(struct tenant_run *tr, enum syncro_result rc, const char *msg)
{
	struct engine_report *rep = tr->rep;
	if (!rep->fatal) {
		rep->fatal = true;
		if (rc == SYNCRO_UNAVAILABLE) {
			snprintf(rep->fatal_msg, sizeof rep->fatal_msg, "%.900s; the run stopped (the next run goes on "
			         "from here)", msg);
			snprintf(rep->fatal_why, sizeof rep->fatal_why, "Syncro not answering");
		} else {
			snprintf(rep->fatal_msg, sizeof rep->fatal_msg, "Syncro refused the API token: %.900s; "
			         "the run stopped", msg);
			snprintf(rep->fatal_why, sizeof rep->fatal_why, "Syncro 401");
		}
	}
	tenant_fail(tr, "%s", rep->fatal_msg);
}

/* "Name <mail>" of an action for messages. */
static const char *action_label(const struct engine_action *a)
{
	return a->label ? a->label : a->object_id;
}

static void record_done(struct tenant_run *tr, struct engine_action *a, enum syncro_result rc, const char *error)
{
	struct engine_tenant_report *r = tr->r;
	if (!tr->o->record_plan) {
		engine_action_free(a);
		return;
	}
	if (r->nplan == r->capplan) {
		r->capplan = r->capplan ? r->capplan * 2 : 64;
		r->plan = xrealloc(r->plan, r->capplan * sizeof *r->plan);
	}
	struct engine_done *d = &r->plan[r->nplan++];
	d->a = *a;
	memset(a, 0, sizeof *a);
	d->rc = rc;
	d->error = error ? xstrdup(error) : NULL;
}

/* ------------------------------------------------------------ applying */

/* Commits the open transaction of restamps (links taking a new plan stamp:
 * many store writes and no Syncro write, so they go in one transaction per
 * batch, committed before any Syncro write). */
static int restamps_commit(struct tenant_run *tr)
{
	struct err err;
	if (!tr->restamp_tx) return 0;
	tr->restamp_tx = false;
	if (store_commit(tr->env->st, &err) == 0) return 0;
	store_rollback(tr->env->st, NULL);
	tenant_fail(tr, "%s", err.msg);
	return -1;
}

static int restamp(struct tenant_run *tr, struct engine_action *a)
{
	struct engine_outcome out;
	struct err err;
	if (!tr->restamp_tx) {
		if (store_begin(tr->env->st, &err) != 0) {
			tenant_fail(tr, "%s", err.msg);
			return -1;
		}
		tr->restamp_tx = true;
	}
	if (engine_apply_action(&tr->ap, a, &out, &err) != 0) {
		tenant_fail(tr, "%s", err.msg);
		return -1;
	}
	return 0;
}

/* Applies one action now and counts it. Returns -1 when the tenant (or the
 * run) cannot go on; 1 when it was an update of a contact deleted in
 * Syncro (the link dropped: the planner plans the user again). Takes a. */
static int apply_now(struct tenant_run *tr, struct engine_action *a)
{
	struct engine_outcome out;
	struct err err;
	struct engine_counts *n = &tr->r->n;
	if (shutdown_requested()) {
		tenant_fail(tr, "not finished: stopped by a signal");
		engine_action_free(a);
		return -1;
	}
	if (restamps_commit(tr) != 0) {
		engine_action_free(a);
		return -1;
	}
	if (engine_apply_action(&tr->ap, a, &out, &err) != 0) {
		tenant_fail(tr, "%s", err.msg);
		engine_action_free(a);
		return -1;
	}
	if (out.wrote) tr->r->writes++;
	if (out.rc == SYNCRO_OK) {
		switch (a->kind) {
		case ENGINE_CREATE: n->created++; break;
		case ENGINE_ADOPT: n->adopted++; break;
		case ENGINE_UPDATE: n->updated++; break;
		case ENGINE_DELETE: n->removed++; break;
		case ENGINE_MARK: n->marked++; break;
		case ENGINE_CONFLICT: n->conflicts++; break;
		default: break;
		}
		if (a->kind == ENGINE_ADOPT) engine_contacts_take(tr->ix, a->customer_id, a->contact_id);
		/* a later user of the run with this address is not given a second
		 * one (an adopted contact is out of the index: taken) */
		if (a->kind == ENGINE_CREATE || a->kind == ENGINE_ADOPT)
			engine_contacts_made(tr->made, a->customer_id, a->kind == ENGINE_CREATE ? out.contact_id : a->contact_id,
			                     a->written.v[SYNCRO_F_EMAIL], tr->ct->id, a->object_id, a->kind == ENGINE_ADOPT);
		record_done(tr, a, SYNCRO_OK, NULL);
		return 0;
	}
	if (syncro_result_fatal(out.rc)) {
		run_fatal(tr, out.rc, out.error);
		record_done(tr, a, out.rc, out.error);
		return -1;
	}
	if (out.pending) {
		/* the create may have been applied: settled by recovery at the end */
		tr->pending_recovery = true;
		record_done(tr, a, out.rc, out.error);
		return 0;
	}
	if (out.link_dropped) {
		/* the contact was deleted in Syncro (by hand, or merged into a
		 * duplicate): the link is dropped. Entra is the source: an updated
		 * user is planned again at once, as one with no contact; a leaver's
		 * mark has nothing left to mark. Neither is an error. */
		bool again = a->kind == ENGINE_UPDATE;
		log_info("sync", "tenant %s: %s: contact %lld was deleted in Syncro: link dropped%s", tr->ct->id,
		         action_label(a), a->contact_id, again ? ", the user planned again" : "");
		record_done(tr, a, out.rc, again ? "contact deleted in Syncro: link dropped, the user planned again"
		                                 : "contact deleted in Syncro: link dropped, nothing left to mark");
		return again ? 1 : 0;
	}
	tenant_error(tr, "%s: %s failed (%s): %s", action_label(a), engine_kind_name(a->kind),
	             syncro_result_name(out.rc), out.error);
	record_done(tr, a, out.rc, out.error);
	return 0;
}

static int conflicted_add(const struct store_conflict *c, void *ud)
{
	struct tenant_run *tr = ud;
	tr->conflicted = xrealloc(tr->conflicted, (tr->nconflicted + 1) * sizeof *tr->conflicted);
	tr->conflicted[tr->nconflicted++] = xstrdup(c->object_id);
	return 0;
}

static void conflicted_free(struct tenant_run *tr)
{
	for (size_t i = 0; i < tr->nconflicted; i++) free(tr->conflicted[i]);
	free(tr->conflicted);
	free(tr->conflict_closed);
	str_index_free(&tr->conflicted_at);
	memset(&tr->conflicted_at, 0, sizeof tr->conflicted_at);
	tr->conflicted = NULL;
	tr->conflict_closed = NULL;
	tr->nconflicted = 0;
}

/* A user with an open conflict is planned as something else now (the
 * contacts were sorted out in Syncro, the user changed or left): the
 * conflict is closed (in the restamps' transaction when one is open). Once
 * per user; -1 when the store fails (the tenant fails). */
static int conflict_close(struct tenant_run *tr, const char *object_id)
{
	size_t i = str_index_get(&tr->conflicted_at, object_id);
	if (i == STR_INDEX_NONE || tr->conflict_closed[i]) return 0;
	tr->conflict_closed[i] = true;
	struct err err;
	if (store_conflict_resolve(tr->ap.ob, tr->ct->id, object_id, &err) == 0) return 0;
	tenant_fail(tr, "closing the conflict of user %s: %s", object_id, err.msg);
	return -1;
}

/* A user whose contact is gone from Syncro (sync --verify; or a leaver's,
 * read for on_leave): the link is dropped (in a real run) before the
 * user's action is routed; a user the plan skips is shown in the plan all
 * the same. Only what --verify found counts as verified gone. -1 when the
 * store fails. */
static int contact_gone(struct tenant_run *tr, struct engine_action *a)
{
	struct err err;
	if (!a->gone_read) tr->r->n.gone++;
	if (tr->o->dry_run) return 0;
	if (restamps_commit(tr) != 0) return -1;
	if (engine_apply_contact_gone(&tr->ap, a, &err) == 0) return 0;
	tenant_fail(tr, "%s", err.msg);
	return -1;
}

/* Routes a planned action: nothing to do, now, or after the guard (and
 * closes the user's open conflict when it is not one any more). */
static int dispatch(struct tenant_run *tr, struct engine_action *a)
{
	struct engine_counts *n = &tr->r->n;
	int rc = 0;
	if ((a->kind != ENGINE_CONFLICT && tr->nconflicted && conflict_close(tr, a->object_id) != 0) ||
	    (a->gone_contact && contact_gone(tr, a) != 0)) {
		engine_action_free(a);
		return -1;
	}
	switch (a->kind) {
	case ENGINE_SKIP:
		n->skipped++;
		if (a->gone_read) {   /* a leaver's: nothing left to mark */
			/* a leaver's contact deleted in Syncro, found when it was read
			 * for on_leave: said as when its mark finds it gone */
			log_info("sync", "tenant %s: %s: contact %lld was deleted in Syncro: link %s", tr->ct->id,
			         action_label(a), a->gone_contact, tr->o->dry_run ? "to be dropped" : "dropped");
			record_done(tr, a, SYNCRO_NOT_FOUND, tr->o->dry_run
			            ? "contact deleted in Syncro: link to be dropped, nothing left to mark"
			            : "contact deleted in Syncro: link dropped, nothing left to mark");
			return 0;
		}
		if (a->gone_contact) {
			record_done(tr, a, SYNCRO_OK, NULL);
			return 0;
		}
		break;
	case ENGINE_UNCHANGED:
	case ENGINE_KEEP:
		if (a->kind == ENGINE_UNCHANGED) n->unchanged++;
		else n->kept++;
		if (a->restamp && !tr->o->dry_run) rc = restamp(tr, a);
		break;
	case ENGINE_DELETE:
	case ENGINE_MARK:
		if (tr->ndeferred == tr->capdeferred) {
			tr->capdeferred = tr->capdeferred ? tr->capdeferred * 2 : 16;
			tr->deferred = xrealloc(tr->deferred, tr->capdeferred * sizeof *tr->deferred);
		}
		tr->deferred[tr->ndeferred++] = *a;
		memset(a, 0, sizeof *a);
		return 0;
	default:
		return apply_now(tr, a);
	}
	engine_action_free(a);
	return rc;
}

/* ------------------------------------------------------------ planner callbacks */

static int need_contacts(void *ud, long long customer_id, const char *label)
{
	struct tenant_run *tr = ud;
	struct err err;
	enum syncro_result lrc;
	if (engine_contacts_load(&tr->ap, tr->ix, customer_id, false, &lrc, &err) == 0) return 0;
	log_redact_err(&err);
	if (syncro_result_fatal(lrc)) {
		run_fatal(tr, lrc, err.msg);
		return -1;
	}
	tenant_error(tr, "%s: %s", label, err.msg);
	return 1;
}

static int contact_now(void *ud, long long contact_id, struct syncro_fields *out, const char *label)
{
	struct tenant_run *tr = ud;
	struct syncro_contact c = { 0 };
	struct err err;
	enum syncro_result rc = syncro_contact_get(tr->ap.sc, contact_id, &c, &err);
	if (rc == SYNCRO_OK) {
		*out = c.f;
		memset(&c.f, 0, sizeof c.f);
		syncro_contact_free(&c);
		return 0;
	}
	syncro_contact_free(&c);
	if (rc == SYNCRO_NOT_FOUND) return 2;
	log_redact_err(&err);
	if (syncro_result_fatal(rc)) {
		run_fatal(tr, rc, err.msg);
		return -1;
	}
	tenant_error(tr, "%s: reading contact %lld from Syncro: %s; nothing written", label, contact_id, err.msg);
	return 1;
}

static int emit(void *ud, struct engine_action *a)
{
	struct tenant_run *tr = ud;
	int rc = dispatch(tr, a);
	return rc < 0 || tr->failed || tr->rep->fatal ? -1 : rc;   /* 1: plan the user again */
}

static void user_error(void *ud, const char *label, const char *msg)
{
	tenant_error(ud, "%s: %s", label, msg);
}

static int batch_done(void *ud)
{
	return restamps_commit(ud);
}

/* ------------------------------------------------------------ one tenant */

static void apply_deferred(struct tenant_run *tr, long long links)
{
	struct err err;
	long long present = 0;
	char why[512];
	if (store_user_count(tr->env->st, tr->ct->id, STORE_USERS_PRESENT, &present, &err) != 0) {
		tenant_fail(tr, "%s", err.msg);
		return;
	}
	struct engine_guard g = {
		.links = links, .removals = (long long)tr->ndeferred, .present_users = present,
		.max_count = tr->pol.info->max_removals_count, .max_percent = tr->pol.info->max_removals_percent,
		.allow_removals = tr->o->allow_removals,
	};
	if (engine_guard_check(&g, why, sizeof why)) {
		tr->held = true;
		free(tr->r->reason);
		tr->r->reason = xstrdup(why);
		log_warn("sync", "tenant %s held: %s", tr->ct->id, why);
	}
	for (size_t i = 0; i < tr->ndeferred; i++) {
		struct engine_action *a = &tr->deferred[i];
		if (tr->held || tr->failed || tr->rep->fatal) {
			a->held = true;
			tr->r->n.held++;
			record_done(tr, a, SYNCRO_OK, NULL);
			continue;
		}
		apply_now(tr, a);
	}
	tr->ndeferred = 0;
}

/* A link, as verify_links collects them. */
struct link_ref {
	char *object_id;
	long long customer_id, contact_id;
};
struct link_refs {
	struct link_ref *v;
	size_t n, cap;
};

static int link_ref_add(const struct store_link *l, void *ud)
{
	struct link_refs *refs = ud;
	if (refs->n == refs->cap) {
		refs->cap = refs->cap ? refs->cap * 2 : 64;
		refs->v = xrealloc(refs->v, refs->cap * sizeof *refs->v);
	}
	refs->v[refs->n++] = (struct link_ref){ .object_id = xstrdup(l->object_id), .customer_id = l->customer_id,
	                                        .contact_id = l->contact_id };
	return 0;
}

/* sync --verify, a linked contact c that is there: the other contacts of
 * its customer with its e-mail (one a technician made beside it, an old
 * record, another tenant's user's) are listed in the report, a pair of this
 * tenant's links once; nothing is done about them (only a technician knows
 * which to keep: merge or delete in Syncro). -1 when the store fails. */
static int note_duplicates(struct tenant_run *tr, long long customer_id, const struct syncro_contact *c,
                           struct err *err)
{
	enum { MAX_SHOWN = 100, MAX_OTHERS = 8 };
	const struct syncro_contact *others[MAX_OTHERS];
	const char *email = c->f.v[SYNCRO_F_EMAIL];
	size_t n = engine_contacts_holding(tr->ix, customer_id, email, c->id, others, MAX_OTHERS);
	if (n > MAX_OTHERS) n = MAX_OTHERS;
	struct engine_tenant_report *r = tr->r;
	for (size_t k = 0; k < n; k++) {
		const struct syncro_contact *o = others[k];
		struct store_link ol = {0};
		int got = store_link_find_contact(tr->env->st, customer_id, o->id, &ol, err);
		if (got < 0) return -1;
		bool ours = got == 0 && strcmp(ol.tenant_id, tr->ct->id) == 0;
		char *held = got != 0 ? xstrdup("not linked")
		             : xasprintf("linked to user %s of tenant %s", ol.object_id, ol.tenant_id);
		store_link_free(&ol);
		if (ours && o->id < c->id) {   /* said from o's side */
			free(held);
			continue;
		}
		r->n.duplicates++;
		if (r->nduplicates >= MAX_SHOWN) {
			r->duplicates_dropped++;
			free(held);
			continue;
		}
		const char *name = c->f.v[SYNCRO_F_NAME], *oname = o->f.v[SYNCRO_F_NAME];
		r->duplicates = xrealloc(r->duplicates, (r->nduplicates + 1) * sizeof *r->duplicates);
		r->duplicates[r->nduplicates++] =
			xasprintf("contact #%lld (%s <%s>, linked) and contact #%lld (%s, %s) of customer %lld have the same "
			          "e-mail: merge or delete one in Syncro", c->id, name ? name : "?", email, o->id,
			          oname ? oname : "?", held, customer_id);
		free(held);
	}
	return 0;
}

/* sync --verify: every link of the tenant checked against its customer's
 * list of contacts (listed from Syncro once per customer, also in a dry
 * run; a list that cannot be had leaves that customer's links unchecked,
 * reported). A contact not listed is asked for by id: a 404 means it is
 * gone from Syncro (deleted, or merged into a duplicate), and its user goes
 * into tr->gone_at for the planner; one found in another customer was moved
 * by hand (reported, left alone). More not listed than the removal guard
 * allows (max_removals) are not asked for, reported, until --allow-removals:
 * a list cut short would otherwise cost a request per link. -1 when the
 * tenant cannot go on (store failure, Syncro 401). */
static int verify_links(struct tenant_run *tr)
{
	struct err err;
	struct link_refs refs = {0};
	long long *failed = NULL;   /* customers whose list could not be had */
	size_t *missing = NULL;     /* the links whose contact is not listed (indexes into refs) */
	size_t nfailed = 0, nmissing = 0;
	long long checked = 0, checked_present = 0;
	int rc = -1;
	if (store_link_each(tr->env->st, tr->ct->id, link_ref_add, &refs, &err) != 0) {
		tenant_fail(tr, "%s", err.msg);
		goto out;
	}
	missing = xcalloc(refs.n + 1, sizeof *missing);
	for (size_t i = 0; i < refs.n; i++) {
		const struct link_ref *l = &refs.v[i];
		bool skip = false;
		for (size_t k = 0; k < nfailed && !skip; k++) skip = failed[k] == l->customer_id;
		if (skip) continue;
		enum syncro_result lrc;
		if (engine_contacts_load(&tr->ap, tr->ix, l->customer_id, false, &lrc, &err) != 0) {
			log_redact_err(&err);
			if (syncro_result_fatal(lrc)) {
				run_fatal(tr, lrc, err.msg);
				goto out;
			}
			tenant_error(tr, "verify: %s: the links to its contacts are not checked", err.msg);
			failed = xrealloc(failed, (nfailed + 1) * sizeof *failed);
			failed[nfailed++] = l->customer_id;
			continue;
		}
		checked++;
		const struct syncro_contact *c = engine_contacts_get(tr->ix, l->customer_id, l->contact_id);
		if (!c) {
			missing[nmissing++] = i;
		} else if (note_duplicates(tr, l->customer_id, c, &err) != 0) {
			tenant_fail(tr, "%s", err.msg);
			goto out;
		}
	}
	struct engine_guard g = { .links = (long long)refs.n, .max_count = tr->pol.info->max_removals_count,
	                          .max_percent = tr->pol.info->max_removals_percent };
	long long limit = engine_guard_limit(&g);
	if ((long long)nmissing > limit && !tr->o->allow_removals) {
		tenant_error(tr, "verify: %zu of %zu linked contacts are not in Syncro's lists, more than the removal "
		             "guard allows (%lld): left alone (a list Syncro cut short looks the same); if they were "
		             "deleted in Syncro, rerun with --allow-removals", nmissing, refs.n, limit);
		tr->r->n.unverified = (long long)nmissing;
		tr->r->n.verified = checked - (long long)nmissing;
		rc = 0;
		goto out;
	}
	/* each one not listed asked for by id: gone only when Syncro says so (404);
	 * listed short, it is there; moved to another customer by hand, it is left
	 * alone and reported (the policy's customer and Syncro's disagree) */
	for (size_t i = 0; i < nmissing; i++) {
		const struct link_ref *l = &refs.v[missing[i]];
		struct syncro_contact c = {0};
		enum syncro_result grc = syncro_contact_get(tr->env->sc, l->contact_id, &c, &err);
		long long now_in = c.customer_id;
		syncro_contact_free(&c);
		if (syncro_result_fatal(grc)) {
			log_redact_err(&err);
			run_fatal(tr, grc, err.msg);
			goto out;
		}
		if (grc == SYNCRO_OK && now_in != l->customer_id)
			tenant_error(tr, "verify: user %s: contact #%lld was moved to Syncro customer %lld by hand; its link "
			             "and the policy say customer %lld: left as is (move it back in Syncro, or change the "
			             "policy's customer_id for the user)", l->object_id, l->contact_id, now_in, l->customer_id);
		if (grc == SYNCRO_OK) {
			checked_present++;
			continue;
		}
		if (grc != SYNCRO_NOT_FOUND) {
			log_redact_err(&err);
			tenant_error(tr, "verify: user %s: contact #%lld: %s: its link is not checked", l->object_id,
			             l->contact_id, err.msg);
			continue;
		}
		tr->gone_users = xrealloc(tr->gone_users, (tr->ngone + 1) * sizeof *tr->gone_users);
		tr->gone_contacts = xrealloc(tr->gone_contacts, (tr->ngone + 1) * sizeof *tr->gone_contacts);
		tr->gone_users[tr->ngone] = xstrdup(l->object_id);
		tr->gone_contacts[tr->ngone++] = l->contact_id;
	}
	tr->r->n.verified = checked - (long long)nmissing + checked_present;
	for (size_t i = 0; i < tr->ngone; i++) str_index_put(&tr->gone_at, tr->gone_users[i], i);
	if (tr->ngone)
		log_info("sync", "tenant %s: verify: %zu of %lld linked contacts gone from Syncro", tr->ct->id, tr->ngone,
		         checked);
	rc = 0;
out:
	for (size_t i = 0; i < refs.n; i++) free(refs.v[i].object_id);
	free(refs.v);
	free(failed);
	free(missing);
	return rc;
}

static void gone_free(struct tenant_run *tr)
{
	for (size_t i = 0; i < tr->ngone; i++) free(tr->gone_users[i]);
	free(tr->gone_users);
	free(tr->gone_contacts);
	str_index_free(&tr->gone_at);
	memset(&tr->gone_at, 0, sizeof tr->gone_at);
	tr->gone_users = NULL;
	tr->gone_contacts = NULL;
	tr->ngone = 0;
}

static void plan_all(struct tenant_run *tr)
{
	struct err err;
	long long links = 0;
	if (store_link_count(tr->ap.ob, tr->ct->id, &links, &err) != 0) {
		tenant_fail(tr, "%s", err.msg);
		goto out;
	}
	if (!tr->o->dry_run) {
		if (store_conflict_each_open(tr->ap.ob, tr->ct->id, conflicted_add, tr, &err) != 0) {
			tenant_fail(tr, "%s", err.msg);
			goto out;
		}
		for (size_t i = 0; i < tr->nconflicted; i++) str_index_put(&tr->conflicted_at, tr->conflicted[i], i);
		tr->conflict_closed = xcalloc(tr->nconflicted + 1, sizeof *tr->conflict_closed);
	}
	if (tr->o->verify && verify_links(tr) != 0) goto out;
	struct engine_planner p = {
		.st = tr->env->st, .ob = tr->ap.ob, .tenant_id = tr->ct->id, .pol = &tr->pol,
		.default_customer = tr->r->customer_id, .ix = tr->ix, .made = tr->made, .batch = tr->o->batch,
		.need_contacts = need_contacts, .contact_now = contact_now, .emit = emit, .user_error = user_error, .batch_done = batch_done, .ud = tr,
		.gone = tr->ngone ? &tr->gone_at : NULL, .gone_contacts = tr->gone_contacts,
	};
	int rc = engine_plan_tenant(&p, &err);
	if (restamps_commit(tr) != 0 && rc == 0) rc = -2;
	tr->r->n.users = p.users;
	if (rc == -1) tenant_fail(tr, "%s", err.msg);
	if (rc != 0) goto out;
	apply_deferred(tr, links);
out:
	for (size_t i = 0; i < tr->ndeferred; i++) engine_action_free(&tr->deferred[i]);
	tr->ndeferred = 0;
	conflicted_free(tr);
	gone_free(tr);
}

static void recovery_add(struct engine_recovery *to, const struct engine_recovery *r)
{
	to->open += r->open;
	to->relinked += r->relinked;
	to->not_applied += r->not_applied;
	to->superseded += r->superseded;
}

static void tenant_sync(struct tenant_run *tr)
{
	struct err err;
	struct engine_recovery rec;
	tr->ix = engine_contacts_new();
	if (engine_recover(&tr->ap, tr->ix, &rec, &err) != 0) {
		log_redact_err(&err);
		tenant_fail(tr, "recovering interrupted writes: %s", err.msg);
		return;
	}
	recovery_add(&tr->r->recovery, &rec);
	if (rec.open)
		log_info("sync", "tenant %s: recovered %lld interrupted write%s (%lld linked, %lld planned again)",
		         tr->ct->id, rec.open, rec.open == 1 ? "" : "s", rec.relinked, rec.not_applied + rec.superseded);
	plan_all(tr);
	if (tr->pending_recovery && !tr->rep->fatal) {
		/* creates whose answer was lost: settle them now, not next run */
		if (engine_recover(&tr->ap, tr->ix, &rec, &err) != 0) {
			log_redact_err(&err);
			tenant_error(tr, "recovering creates with a lost answer: %s", err.msg);
		} else {
			recovery_add(&tr->r->recovery, &rec);
			tr->r->n.created += rec.relinked;
			if (rec.not_applied)
				tenant_error(tr, "%lld create%s lost their answer and were not applied: created next run",
				             rec.not_applied, rec.not_applied == 1 ? "" : "s");
		}
	}
}

/* ------------------------------------------------------------ preparing */

int engine_tenants_select(const struct config *cfg, const char *const *names, size_t n, bool *sel, struct err *err)
{
	for (size_t i = 0; i < cfg->ntenants; i++) sel[i] = n == 0;
	for (size_t k = 0; k < n; k++) {
		bool found = false;
		for (size_t i = 0; i < cfg->ntenants; i++) {
			const struct config_tenant *t = &cfg->tenants[i];
			if (str_ieq(t->id, names[k]) || (t->name && str_ieq(t->name, names[k]))) {
				sel[i] = true;
				found = true;
			}
		}
		if (!found) {
			struct buf b = {0};
			config_tenant_unknown_hint(cfg, names[k], &b);
			err_set(err, "unknown tenant '%s' %s", names[k], b.data);
			buf_free(&b);
			return -1;
		}
	}
	return 0;
}

/* The kv key caching a verified customer's display name. */
static char *customer_name_key(long long id)
{
	return xasprintf("syncro.customer_name.%lld", id);
}

/* The tenant's Syncro customer into r->customer_id/_name. A customer given
 * by id that an earlier sync verified (the tenant row holds that id) is
 * not asked for again: its name comes from the store (kv), and a customer
 * deleted since shows as 404s on its contacts. By name, or not verified
 * yet: asked to Syncro (a read, also in a dry run). 0, or -1 (reported). */
static int resolve_customer(struct tenant_run *tr, long long verified, struct syncro_customer *cust)
{
	struct err err;
	const struct config_tenant *ct = tr->ct;
	/* one customer a run is asked for even when verified before: a run
	 * with nothing to write would send nothing, and a revoked or rotated
	 * API token went unnoticed (status ok) until a user changed */
	if (ct->syncro_customer_id && ct->syncro_customer_id == verified && tr->rep->syncro_asked) {
		char *key = customer_name_key(verified), *name = NULL;
		int got = store_kv_get(tr->env->st, key, &name, &err);
		free(key);
		if (got == 0) {
			tr->r->customer_id = verified;
			tr->r->customer_name = name;
			return 0;
		}
	}
	enum syncro_result src;
	if (ct->syncro_customer_id) src = syncro_customer_get(tr->env->sc, ct->syncro_customer_id, cust, &err);
	else if (ct->syncro_customer) src = syncro_customer_find(tr->env->sc, ct->syncro_customer, cust, &err);
	else src = (enum syncro_result)err_set(&err, "no Syncro customer configured (syncro_customer_id or syncro_customer)");
	if (src != SYNCRO_OK) {
		log_redact_err(&err);
		if (syncro_result_fatal(src)) run_fatal(tr, src, err.msg);
		else tenant_fail(tr, "Syncro customer: %s", err.msg);
		return -1;
	}
	tr->rep->syncro_asked = true;
	tr->r->customer_id = cust->id;
	const char *name = cust->business_name ? cust->business_name : cust->fullname ? cust->fullname : "";
	tr->r->customer_name = *name ? xstrdup(name) : NULL;
	if (!tr->o->dry_run && ct->syncro_customer_id) {
		char *key = customer_name_key(cust->id);
		if (store_kv_put(tr->env->st, key, name, &err) != 0) log_warn("sync", "%s", err.msg);
		free(key);
	}
	return 0;
}

/* Resolves the Syncro customer and loads the policy. */
static void tenant_prepare(struct tenant_run *tr)
{
	struct err err;
	const struct config_tenant *ct = tr->ct;
	const struct config *cfg = tr->env->cfg;
	struct store_tenant row = {0};
	int got = store_tenant_get(tr->env->st, ct->id, &row, &err);
	if (got < 0) {
		tenant_fail(tr, "%s", err.msg);
		return;
	}
	if (got == STORE_NOTFOUND) {
		struct store_tenant fresh = { .id = ct->id, .name = ct->name };
		if (store_tenant_put(tr->env->st, &fresh, &err) != 0) {
			tenant_fail(tr, "%s", err.msg);
			return;
		}
	} else if (row.default_domain) {
		tr->default_domain = xstrdup(row.default_domain);
	}
	char *last_hash = row.policy_hash ? xstrdup(row.policy_hash) : NULL;
	long long verified = row.syncro_customer_id;
	store_tenant_free(&row);

	struct syncro_customer cust = {0};
	if (resolve_customer(tr, verified, &cust) != 0) goto out;

	if (!ct->policy) {
		tenant_fail(tr, "no policy configured (policy = \"...\" at the top level or in the tenant)");
		goto out;
	}
	struct script_limits lim = { .instructions = cfg->limits.instructions, .seconds = cfg->limits.seconds, .memory_bytes = cfg->limits.memory_bytes };
	struct script_tenant st = { .id = ct->id, .name = ct->name, .default_domain = tr->default_domain,
	                            .syncro_customer_id = cust.id };
	if (engine_policy_load(&tr->pol, ct->policy, &lim, &st, &err) != 0) {
		log_redact_err(&err);
		tenant_fail(tr, "%s", err.msg);
		goto out;
	}
	tr->r->policy_changed = last_hash && strcmp(last_hash, tr->pol.hash) != 0;
	tr->ready = true;
out:
	free(last_hash);
	syncro_customer_free(&cust);
}

static void pull_all(struct tenant_run *trs, size_t n, struct engine_report *rep)
{
	struct err err;
	struct graph_pull_spec *specs = xcalloc(n + 1, sizeof *specs);
	struct graph_pull_result *res = xcalloc(n + 1, sizeof *res);
	size_t *which = xcalloc(n + 1, sizeof *which), k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!trs[i].ready) continue;
		const struct policy_info *pi = trs[i].pol.info;
		specs[k] = (struct graph_pull_spec){ .tenant_id = trs[i].ct->id, .name = trs[i].ct->name,
		                                     .groups = (const char *const *)pi->groups, .n_groups = pi->ngroups };
		which[k++] = i;
	}
	const struct engine_env *env = k ? trs[which[0]].env : NULL;
	if (k && graph_pull_workers(&(struct graph_pull_workers_opts){ .cfg = &env->cfg->graph, .database = env->cfg->database,
	                                                               .st = env->st, .gc = env->gc,
	                                                               .workers = env->cfg->graph.pull_workers,
	                                                               .http = &rep->pull_http },
	                            specs, k, res, &err) != 0) {
		log_redact_err(&err);
		for (size_t j = 0; j < k; j++) tenant_fail(&trs[which[j]], "pull from Graph: %s", err.msg);
	} else {
		for (size_t j = 0; j < k; j++) {
			if (!res[j].ok) tenant_fail(&trs[which[j]], "pull from Graph: %s", res[j].error);
			else if (res[j].warning[0])
				trs[which[j]].r->warning = xasprintf("pull from Graph: %s", res[j].warning);
			rep->graph_unavailable += res[j].unavailable;
		}
	}
	if (rep->graph_unavailable)
		snprintf(rep->graph_msg, sizeof rep->graph_msg, "Microsoft Graph was found not answering "
		         "(graph.outage_seconds): the pull stopped, %zu of %zu tenants not pulled, so not synced; the next "
		         "run goes on from here", rep->graph_unavailable, k);
	free(specs);
	free(res);
	free(which);
}

/* After the pull: tenants of the config that are one Microsoft tenant (by
 * the organization their pulls stored: its domain and its GUID, say) both
 * fail until it is listed once: synced under two ids, each would link and
 * bill the customer's contacts and licences on its own (contacts created
 * again, a second invoice, rows split between the two ids). */
static void same_tenant_twice(struct tenant_run *trs, size_t n)
{
	if (!n) return;
	const struct engine_env *env = trs[0].env;
	const struct config *cfg = env->cfg;
	struct err err;
	size_t *twin = xcalloc(cfg->ntenants + 1, sizeof *twin);
	if (store_tenant_twins(env->st, cfg->tenants, cfg->ntenants, twin, &err) != 0) {
		log_warn("sync", "%s", err.msg);
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		struct tenant_run *tr = &trs[k];
		size_t at = (size_t)(tr->ct - cfg->tenants);
		if (!tr->ready || tr->failed || twin[at] == cfg->ntenants) continue;
		tenant_fail(tr, "the same Microsoft tenant as tenant %s (line %d of the config): list it once; neither is "
		            "synced until then (under two ids its contacts would be linked, created and billed twice)",
		            cfg->tenants[twin[at]].id, cfg->tenants[twin[at]].line);
	}
out:
	free(twin);
}

/* ------------------------------------------------------------ finishing */

static char *counts_json(const struct engine_tenant_report *r)
{
	const struct engine_counts *n = &r->n;
	return xasprintf("{\"created\":%lld,\"adopted\":%lld,\"updated\":%lld,\"removed\":%lld,\"marked\":%lld,"
	                 "\"kept\":%lld,\"unchanged\":%lld,\"conflicts\":%lld,\"skipped\":%lld,\"held\":%lld,"
	                 "\"errors\":%lld,\"writes\":%lld}", n->created, n->adopted, n->updated, n->removed,
	                 n->marked, n->kept, n->unchanged, n->conflicts, n->skipped, n->held, n->errors, r->writes);
}

static void tenant_finish(struct tenant_run *tr)
{
	struct err err;
	struct engine_tenant_report *r = tr->r;
	r->status = tr->failed || r->n.errors ? "failed" : tr->held ? "held" : "ok";
	if (!r->reason && r->n.errors && r->nerrors) r->reason = xstrdup(r->errors[0]);
	r->seconds = time_now() - tr->started;
	tr->rep->writes += r->writes;
	log_info("sync", "tenant %s: %s%s: %lld created, %lld adopted, %lld updated, %lld removed, %lld marked, "
	         "%lld unchanged, %lld conflicts, %lld held, %lld errors, %lld writes", r->id, r->status,
	         tr->rep->dry_run ? " (dry run)" : "", r->n.created, r->n.adopted, r->n.updated, r->n.removed,
	         r->n.marked, r->n.unchanged, r->n.conflicts, r->n.held, r->n.errors, r->writes);
	char *counts = counts_json(r);
	if (tr->rep->run_id &&
	    store_run_tenant_put(tr->env->st, tr->rep->run_id, r->id, r->status, counts,
	                         !strcmp(r->status, "ok") ? r->warning : r->reason, &err) != 0)
		log_error("sync", "%s", err.msg);
	free(counts);
	if (tr->rep->dry_run) return;
	struct store_tenant row = {0};
	if (store_tenant_get(tr->env->st, r->id, &row, &err) != 0) return;
	char now[32];
	time_iso8601(time_now(), now, sizeof now);
	struct store_tenant up = row;
	if (tr->ready && !tr->failed) up.policy_hash = tr->pol.hash;
	if (r->customer_id) up.syncro_customer_id = r->customer_id;
	up.last_sync_at = now;
	up.last_status = r->status;
	up.last_error = r->reason;
	if (store_tenant_put(tr->env->st, &up, &err) != 0) log_error("sync", "%s", err.msg);
	store_tenant_free(&row);
}

static void run_summary(struct buf *b, const struct engine_report *rep)
{
	size_t ok = 0, failed = 0, held = 0;
	for (size_t i = 0; i < rep->n; i++) {
		const char *s = rep->t[i].status;
		if (!strcmp(s, "ok")) ok++;
		else if (!strcmp(s, "held")) held++;
		else failed++;
	}
	buf_printf(b, "{\"dry_run\":%s,\"tenants\":%zu,\"ok\":%zu,\"failed\":%zu,\"held\":%zu,\"writes\":%lld}",
	           rep->dry_run ? "true" : "false", rep->n, ok, failed, held, rep->writes);
}

int engine_sync(const struct engine_env *env, const struct engine_sync_opts *o, struct engine_report *rep,
                struct err *err)
{
	const struct config *cfg = env->cfg;
	memset(rep, 0, sizeof *rep);
	rep->dry_run = o->dry_run;
	bool *sel = xcalloc(cfg->ntenants + 1, sizeof *sel);
	struct tenant_run *trs = NULL;
	struct store_outbox *ob = NULL;
	struct engine_contacts *made = engine_contacts_new();
	int rc = -1;
	if (engine_tenants_select(cfg, o->tenants, o->ntenants, sel, err) != 0) goto out;
	if (store_outbox_open(env->st, &ob, err) != 0) goto out;
	if (store_run_begin(env->st, o->dry_run ? "sync-dry-run" : "sync", &rep->run_id, err) != 0) goto out;

	size_t n = 0;
	for (size_t i = 0; i < cfg->ntenants; i++) n += sel[i];
	trs = xcalloc(n + 1, sizeof *trs);
	rep->t = xcalloc(n + 1, sizeof *rep->t);
	rep->n = n;
	for (size_t i = 0, k = 0; i < cfg->ntenants; i++) {
		if (!sel[i]) continue;
		struct tenant_run *tr = &trs[k];
		tr->env = env;
		tr->o = o;
		tr->rep = rep;
		tr->ct = &cfg->tenants[i];
		tr->r = &rep->t[k];
		tr->r->id = xstrdup(tr->ct->id);
		tr->r->name = tr->ct->name ? xstrdup(tr->ct->name) : NULL;
		tr->started = time_now();
		tr->made = made;
		tr->ap = (struct engine_apply){ .st = env->st, .ob = ob, .sc = env->sc, .dry_run = o->dry_run,
		                                .run_id = rep->run_id, .tenant_id = tr->ct->id,
		                                .before_send = o->before_send, .after_send = o->after_send,
		                                .hook_ud = o->hook_ud };
		k++;
	}
	for (size_t i = 0; i < n && !rep->fatal; i++) {
		if (shutdown_requested()) tenant_fail(&trs[i], "not started: stopped by a signal");
		else tenant_prepare(&trs[i]);
	}
	if (!o->skip_pull && !rep->fatal) {
		if (!env->gc) {
			for (size_t i = 0; i < n; i++)
				if (trs[i].ready) tenant_fail(&trs[i], "no Graph client");
		} else {
			pull_all(trs, n, rep);
		}
	}
	if (!rep->fatal) same_tenant_twice(trs, n);
	for (size_t i = 0; i < n; i++) {
		struct tenant_run *tr = &trs[i];
		if (rep->fatal && !tr->failed) tenant_fail(tr, "not synced: the run stopped (%s)", rep->fatal_why);
		if (tr->ready && !tr->failed && shutdown_requested()) tenant_fail(tr, "not synced: stopped by a signal");
		if (tr->ready && !tr->failed) tenant_sync(tr);
		tenant_finish(tr);
		if (o->on_tenant_done) o->on_tenant_done(o->tenant_done_ud, i + 1, n, tr->r);
	}
	struct buf sum = {0};
	run_summary(&sum, rep);
	int ex = engine_report_exit_code(rep);
	if (store_run_finish(env->st, rep->run_id, rep->fatal ? "failed" : ex ? "partial" : "ok", sum.data, err) != 0) {
		buf_free(&sum);
		goto out;
	}
	buf_free(&sum);
	rc = 0;
out:
	for (size_t i = 0; trs && i < rep->n; i++) {
		engine_policy_free(&trs[i].pol);
		engine_contacts_free(trs[i].ix);
		free(trs[i].deferred);
		free(trs[i].default_domain);
	}
	free(trs);
	free(sel);
	engine_contacts_free(made);
	store_outbox_close(ob);
	return rc;
}
