/* engine_apply — the one path of every Syncro write: intent recorded and
 * committed → sent (or, in a dry run, recorded by a stand-in) → result,
 * link and audit row committed together; and the recovery of intents a
 * crash or a lost answer left open, by re-matching on e-mail. */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/log.h"
#include "store/store.h"
#include "store/store_outbox.h"

/* ------------------------------------------------------------ payloads */

/* The intent's payload: what is sent and what recovery needs.
 * {"customer_id":N,"contact_id":N,"fields":{…sent…},"written":{…}} */
static char *intent_payload(const struct engine_action *a)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "customer_id", (double)a->customer_id);
	if (a->contact_id) cJSON_AddNumberToObject(o, "contact_id", (double)a->contact_id);
	if (a->newer_than) cJSON_AddNumberToObject(o, "newer_than", (double)a->newer_than);
	char *sent = engine_fields_to_json(&a->after), *written = engine_fields_to_json(&a->written);
	cJSON_AddItemToObject(o, "fields", cJSON_Parse(sent));
	cJSON_AddItemToObject(o, "written", cJSON_Parse(written));
	free(sent);
	free(written);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s) abort();
	return s;
}

/* The JSON of a field set, or NULL when it is empty. */
static char *fields_json_or_null(const struct syncro_fields *fs)
{
	for (int f = 0; f < SYNCRO_NFIELDS; f++)
		if (fs->v[f]) return engine_fields_to_json(fs);
	return NULL;
}

/* ------------------------------------------------------------ the send */

/* A 404 on an update that moves the contact to another customer: the
 * contact, or that customer, is missing. Asked: when the contact is there,
 * the customer is the one missing (a policy's customer_id that names none):
 * SYNCRO_INVALID, the contact and its link left as they are (not taken for
 * a contact deleted in Syncro, whose link is dropped and its user made
 * again: a second contact once the id was mended). Else SYNCRO_NOT_FOUND
 * as it was. */
static enum syncro_result move_not_found(struct engine_apply *ap, const struct engine_action *a, struct err *err)
{
	struct syncro_contact c = {0};
	struct err gerr;
	enum syncro_result rc = syncro_contact_get(ap->sc, a->contact_id, &c, &gerr);
	if (rc == SYNCRO_OK) {
		err_set(err, "Syncro customer %s (the policy's customer_id) not found: contact #%lld stays with customer "
		        "%lld, its link kept", a->after.v[SYNCRO_F_CUSTOMER_ID], a->contact_id, c.customer_id);
		rc = SYNCRO_INVALID;
	} else if (rc == SYNCRO_NOT_FOUND) {
		err_set(err, "contact %lld not found (deleted in Syncro?)", a->contact_id);
	} else if (syncro_result_fatal(rc)) {
		err_set(err, "%s", gerr.msg);
	} else {
		err_set(err, "contact %lld, or customer %s it was to move to, not found; asking which: %s", a->contact_id,
		        a->after.v[SYNCRO_F_CUSTOMER_ID], gerr.msg);
		rc = SYNCRO_FAILED;   /* not known to be gone: the link stays */
	}
	syncro_contact_free(&c);
	return rc;
}

/* Sends the action's write. In a dry run nothing is sent: the recorder
 * answers OK (a create gets contact id 0). */
static enum syncro_result send_write(struct engine_apply *ap, const struct engine_action *a, long long *contact_id,
                                     struct err *err)
{
	struct syncro_contact c = {0};
	enum syncro_result rc = SYNCRO_OK;
	*contact_id = a->contact_id;
	if (ap->dry_run) {
		ap->recorded++;
		return SYNCRO_OK;
	}
	ap->sent++;
	switch (a->kind) {
	case ENGINE_CREATE:
		rc = syncro_contact_create(ap->sc, &a->after, &c, err);
		if (rc == SYNCRO_OK) *contact_id = c.id;
		break;
	case ENGINE_ADOPT:
	case ENGINE_UPDATE:
	case ENGINE_MARK:
		rc = syncro_contact_update(ap->sc, a->contact_id, &a->after, NULL, err);
		if (rc == SYNCRO_NOT_FOUND && a->after.v[SYNCRO_F_CUSTOMER_ID]) rc = move_not_found(ap, a, err);
		break;
	case ENGINE_DELETE:
		rc = syncro_contact_delete(ap->sc, a->contact_id, err);
		if (rc == SYNCRO_NOT_FOUND) rc = SYNCRO_OK;   /* already gone: the goal is reached */
		break;
	default:
		rc = SYNCRO_FAILED;
		err_set(err, "no write for a %s action", engine_kind_name(a->kind));
	}
	syncro_contact_free(&c);
	return rc;
}

/* A field the policy left out or gave as "". */
static bool blank(const char *v)
{
	return !v || !*v;
}

/* Does this action send a write? */
static bool action_writes(const struct engine_action *a)
{
	switch (a->kind) {
	case ENGINE_CREATE:
	case ENGINE_DELETE:
		return true;
	case ENGINE_ADOPT:
	case ENGINE_UPDATE:
	case ENGINE_MARK:
		return a->changed != 0;
	default:
		return false;
	}
}

/* ------------------------------------------------------------ recording */

/* Records the result in one transaction: intent, link, conflict, audit. */
static int record_result(struct engine_apply *ap, const struct engine_action *a, long long intent_id,
                         struct engine_outcome *out, struct err *err)
{
	const char *tenant = ap->tenant_id;
	bool ok = out->rc == SYNCRO_OK;
	char *before = fields_json_or_null(&a->before), *after = fields_json_or_null(&a->after);
	char *written = engine_fields_to_json(&a->written);
	struct buf result = {0};
	if (ok) buf_adds(&result, "ok");
	else buf_printf(&result, "%s: %s", syncro_result_name(out->rc), out->error);
	int rc = -1;
	if (store_begin(ap->st, err) != 0) goto out;
	if (intent_id) {
		const char *state = ok ? "done" : out->pending ? "sent" : "failed";
		if (store_intent_finish(ap->ob, intent_id, state, out->contact_id, ok ? NULL : out->error, err) != 0)
			goto fail;
	}
	if (ok) {
		if (a->kind == ENGINE_DELETE) {
			if (store_link_delete(ap->st, tenant, a->object_id, err) != 0) goto fail;
		} else {
			struct store_link l = { .tenant_id = tenant, .object_id = a->object_id, .contact_id = out->contact_id,
			                        .customer_id = a->customer_id, .fields = written,
			                        .stamp = a->stamp[0] ? a->stamp : NULL, .marked = a->marked };
			if (store_link_put(ap->st, &l, err) != 0) goto fail;
		}
		if ((a->kind == ENGINE_CREATE || a->kind == ENGINE_ADOPT) &&
		    store_conflict_resolve(ap->ob, tenant, a->object_id, err) != 0)
			goto fail;
	} else if (out->rc == SYNCRO_NOT_FOUND && (a->kind == ENGINE_UPDATE || a->kind == ENGINE_MARK)) {
		/* deleted in Syncro: drop the link, the next plan creates it again */
		if (store_link_delete(ap->st, tenant, a->object_id, err) != 0) goto fail;
		out->link_dropped = true;
	}
	struct store_audit au = {
		.run_id = ap->run_id, .tenant_id = tenant, .object_id = a->object_id, .contact_id = out->contact_id,
		.action = engine_kind_name(a->kind), .before = before, .after = after, .actor = "entrasync",
		.result = out->link_dropped ? "not_found: deleted in Syncro, link dropped" : result.data,
	};
	if (store_audit_append(ap->st, &au, NULL, err) != 0) goto fail;
	if (store_commit(ap->st, err) != 0) goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(ap->st, NULL);
out:
	free(before);
	free(after);
	free(written);
	buf_free(&result);
	return rc;
}

int engine_apply_contact_gone(struct engine_apply *ap, const struct engine_action *a, struct err *err)
{
	if (ap->dry_run || !a->gone_contact) return 0;
	struct store_link old = {0};
	char *before = NULL;
	int rc = -1;
	if (store_begin(ap->st, err) != 0) goto out;
	int got = store_link_get(ap->st, ap->tenant_id, a->object_id, &old, err);
	if (got < 0) goto fail;
	if (got == STORE_NOTFOUND || old.contact_id != a->gone_contact) {   /* gone already */
		store_rollback(ap->st, NULL);
		rc = 0;
		goto out;
	}
	before = xasprintf("{\"contact_id\":%lld,\"customer_id\":%lld}", old.contact_id, old.customer_id);
	struct store_audit au = {
		.run_id = ap->run_id, .tenant_id = ap->tenant_id, .object_id = a->object_id, .contact_id = old.contact_id,
		.action = "unlink", .before = before,
		.after = "{\"why\":\"the contact is gone from Syncro (sync --verify, or read for on_leave)\"}",
		.actor = "entrasync", .result = "ok",
	};
	if (store_link_delete(ap->st, ap->tenant_id, a->object_id, err) != 0 ||
	    store_audit_append(ap->st, &au, NULL, err) != 0 || store_commit(ap->st, err) != 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	store_rollback(ap->st, NULL);
out:
	store_link_free(&old);
	free(before);
	return rc;
}

/* A conflict: recorded as open with its candidates and the plan's message. */
static int record_conflict(struct engine_apply *ap, const struct engine_action *a, struct err *err)
{
	struct buf b = {0};
	buf_addc(&b, '[');
	for (size_t i = 0; i < a->ncandidates; i++) buf_printf(&b, "%s%lld", i ? "," : "", a->candidates[i]);
	buf_addc(&b, ']');
	int rc = store_conflict_open(ap->ob, ap->tenant_id, a->object_id, b.data, a->reason ? a->reason : "conflict",
	                             err);
	buf_free(&b);
	return rc;
}

int engine_apply_action(struct engine_apply *ap, const struct engine_action *a, struct engine_outcome *out,
                        struct err *err)
{
	memset(out, 0, sizeof *out);
	out->contact_id = a->contact_id;
	if ((a->kind == ENGINE_UNCHANGED || a->kind == ENGINE_KEEP) && a->restamp && !ap->dry_run) {
		/* nothing to send: the link takes the new plan stamp */
		return store_link_restamp(ap->ob, ap->tenant_id, a->object_id, a->stamp, err);
	}
	if (a->kind == ENGINE_CONFLICT) return ap->dry_run ? 0 : record_conflict(ap, a, err);
	if (a->kind == ENGINE_ADOPT && !a->changed) {
		/* nothing to send: link the contact as it is */
		return ap->dry_run ? 0 : record_result(ap, a, 0, out, err);
	}
	if (!action_writes(a)) return 0;
	if (a->kind == ENGINE_CREATE && blank(a->after.v[SYNCRO_F_NAME]) && blank(a->after.v[SYNCRO_F_EMAIL])) {
		/* a contact no one could tell from another (Syncro refuses it, or
		 * keeps a nameless one): a policy without contact(), or one that
		 * gives nothing for this user; not sent, said in the plan too */
		out->rc = SYNCRO_INVALID;
		snprintf(out->error, sizeof out->error, "not sent: the policy's contact() gives neither a name nor an "
		         "e-mail for this user (no contact function? contact = p.contact maps the usual fields)");
		return 0;
	}

	long long intent_id = 0;
	if (!ap->dry_run) {
		char *payload = intent_payload(a);
		int rc = store_intent_add(ap->ob, ap->run_id, ap->tenant_id, a->object_id, engine_kind_name(a->kind),
		                          payload, &intent_id, err);
		free(payload);
		if (rc != 0) return -1;
		if (ap->before_send) ap->before_send(ap->hook_ud, a);
	}
	struct err serr = {{0}};
	out->rc = send_write(ap, a, &out->contact_id, &serr);
	out->wrote = out->rc != SYNCRO_UNAVAILABLE;   /* that one was never sent */
	if (!ap->dry_run && ap->after_send) ap->after_send(ap->hook_ud, a);
	if (out->rc != SYNCRO_OK) {
		log_redact_err(&serr);
		snprintf(out->error, sizeof out->error, "%s", serr.msg);
		out->pending = out->rc == SYNCRO_UNKNOWN_OUTCOME && a->kind == ENGINE_CREATE;
	}
	if (ap->dry_run) return 0;
	return record_result(ap, a, intent_id, out, err);
}

/* ------------------------------------------------------------ contact lists */

int engine_contacts_load(struct engine_apply *ap, struct engine_contacts *ix, long long customer_id, bool refresh,
                         enum syncro_result *rc, struct err *err)
{
	*rc = SYNCRO_OK;
	if (!refresh && engine_contacts_has(ix, customer_id)) return 0;
	const char *failed = refresh ? NULL : engine_contacts_failed(ix, customer_id, rc);
	if (failed)   /* said in full for the first user: not asked again in this run */
		return err_set(err, "the contacts of Syncro customer %lld could not be listed (the error is above)",
		               customer_id);
	struct syncro_contact_list l = {0};
	*rc = syncro_contacts_list(ap->sc, customer_id, &l, err);
	if (*rc != SYNCRO_OK) {
		syncro_contact_list_free(&l);
		err_prefix(err, "listing the contacts of Syncro customer %lld", customer_id);
		engine_contacts_fail(ix, customer_id, *rc, err->msg);
		return -1;
	}
	engine_contacts_add(ix, customer_id, &l);
	return 0;
}

/* ------------------------------------------------------------ recovery */

struct open_intent {
	long long id;
	char *object_id;
	char *action;
	char *payload;
};

struct open_list {
	struct open_intent *v;
	size_t n, cap;
};

static int collect_intent(const struct store_intent *in, void *ud)
{
	struct open_list *l = ud;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = (struct open_intent){
		.id = in->id, .object_id = xstrdup(in->object_id ? in->object_id : ""), .action = xstrdup(in->action),
		.payload = xstrdup(in->payload ? in->payload : "{}"),
	};
	return 0;
}

/* Is the contact linked to anyone (any tenant) already? */
static int contact_linked(struct engine_apply *ap, long long customer_id, long long contact_id, bool *linked,
                          struct err *err)
{
	struct store_link l = {0};
	int rc = store_link_find_contact(ap->st, customer_id, contact_id, &l, err);
	if (rc < 0) return -1;
	*linked = rc == 0;
	store_link_free(&l);
	return 0;
}

/* The newest unlinked contact of the customer matching the sent e-mail (or,
 * with no e-mail sent, the name of an e-mail-less contact), newer than
 * newer_than (the customer's highest id when the create was planned: an
 * older one was there before it, made by hand). 0 = none. */
static int rematch(struct engine_apply *ap, struct engine_contacts *ix, long long customer_id, long long newer_than,
                   const struct syncro_fields *sent, long long *found, struct err *err)
{
	*found = 0;
	const char *email = sent->v[SYNCRO_F_EMAIL], *name = sent->v[SYNCRO_F_NAME];
	const struct syncro_contact *m[64];
	size_t n = 0;
	if (!engine_blank(email)) {
		n = engine_contacts_find(ix, customer_id, email, m, ARRAY_LEN(m));
		if (n > ARRAY_LEN(m)) n = ARRAY_LEN(m);
	} else if (!engine_blank(name)) {
		/* no e-mail: an e-mail-less contact with exactly this name */
		const struct syncro_contact *c;
		for (size_t i = 0; (c = engine_contacts_nth(ix, customer_id, i)) != NULL && n < ARRAY_LEN(m); i++)
			if (engine_blank(c->f.v[SYNCRO_F_EMAIL]) && c->f.v[SYNCRO_F_NAME] &&
			    strcmp(c->f.v[SYNCRO_F_NAME], name) == 0)
				m[n++] = c;
	}
	for (size_t i = 0; i < n; i++) {
		bool linked;
		if (contact_linked(ap, customer_id, m[i]->id, &linked, err) != 0) return -1;
		if (!linked && m[i]->id > newer_than && m[i]->id > *found) *found = m[i]->id;
	}
	return 0;
}

/* Closes an intent with an audit row, in one transaction; with link, the
 * user is linked to contact_id with the written fields. */
static int close_intent(struct engine_apply *ap, const struct open_intent *in, const struct store_link *link,
                        const char *state, const char *result, struct err *err)
{
	if (store_begin(ap->st, err) != 0) return -1;
	if (link && store_link_put(ap->st, link, err) != 0) goto fail;
	if (link && store_conflict_resolve(ap->ob, ap->tenant_id, in->object_id, err) != 0) goto fail;
	if (store_intent_finish(ap->ob, in->id, state, link ? link->contact_id : 0, strcmp(state, "done") ? result : NULL,
	                        err) != 0)
		goto fail;
	struct store_audit au = { .run_id = ap->run_id, .tenant_id = ap->tenant_id, .object_id = in->object_id,
	                          .contact_id = link ? link->contact_id : 0, .action = "recover", .actor = "entrasync",
	                          .result = result, .after = link ? link->fields : NULL };
	if (store_audit_append(ap->st, &au, NULL, err) != 0) goto fail;
	return store_commit(ap->st, err);
fail:
	store_rollback(ap->st, NULL);
	return -1;
}

static int recover_create(struct engine_apply *ap, struct engine_contacts *ix, const struct open_intent *in,
                          struct engine_recovery *rec, struct err *err)
{
	int rc = -1;
	struct syncro_fields sent = {0}, written = {0};
	cJSON *p = cJSON_Parse(in->payload);
	const cJSON *cust = cJSON_GetObjectItemCaseSensitive(p, "customer_id");
	long long customer = cJSON_IsNumber(cust) ? (long long)cust->valuedouble : 0;
	const cJSON *nt = cJSON_GetObjectItemCaseSensitive(p, "newer_than");   /* absent in older intents */
	long long newer_than = cJSON_IsNumber(nt) ? (long long)nt->valuedouble : 0;
	char *fj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(p, "fields"));
	char *wj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(p, "written"));
	if (!customer || engine_fields_from_json(fj, &sent, err) != 0 || engine_fields_from_json(wj, &written, err) != 0) {
		rc = close_intent(ap, in, NULL, "failed", "unreadable intent payload: planned again", err);
		rec->not_applied++;
		goto out;
	}
	/* already linked (the record did happen): nothing to recover */
	struct store_link have = {0};
	int got = store_link_get(ap->st, ap->tenant_id, in->object_id, &have, err);
	if (got < 0) goto out;
	store_link_free(&have);
	if (got == 0) {
		rc = close_intent(ap, in, NULL, "failed", "the user is linked already", err);
		rec->superseded++;
		goto out;
	}
	enum syncro_result lrc;
	if (engine_contacts_load(ap, ix, customer, true, &lrc, err) != 0) goto out;
	long long found;
	if (rematch(ap, ix, customer, newer_than, &sent, &found, err) != 0) goto out;
	if (found) {
		char *wjson = engine_fields_to_json(&written);
		struct store_link l = { .tenant_id = ap->tenant_id, .object_id = in->object_id, .contact_id = found,
		                        .customer_id = customer, .fields = wjson };
		char result[128];
		snprintf(result, sizeof result, "ok: the interrupted create was applied; linked to contact %lld", found);
		rc = close_intent(ap, in, &l, "done", result, err);
		free(wjson);
		if (rc == 0) engine_contacts_take(ix, customer, found);
		rec->relinked++;
	} else {
		rc = close_intent(ap, in, NULL, "failed", "not applied: no such contact in Syncro; planned again", err);
		rec->not_applied++;
	}
out:
	cJSON_Delete(p);
	free(fj);
	free(wj);
	syncro_fields_free(&sent);
	syncro_fields_free(&written);
	return rc;
}

int engine_recover(struct engine_apply *ap, struct engine_contacts *ix, struct engine_recovery *rec,
                   struct err *err)
{
	memset(rec, 0, sizeof *rec);
	if (ap->dry_run) return 0;
	struct open_list l = {0};
	int rc = store_intent_each_open(ap->ob, ap->tenant_id, collect_intent, &l, err);
	rec->open = (long long)l.n;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		const struct open_intent *in = &l.v[i];
		if (strcmp(in->action, "create") == 0) {
			rc = recover_create(ap, ix, in, rec, err);
		} else {
			rc = close_intent(ap, in, NULL, "failed", "interrupted: planned again", err);
			rec->superseded++;
		}
	}
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].object_id);
		free(l.v[i].action);
		free(l.v[i].payload);
	}
	free(l.v);
	return rc;
}
