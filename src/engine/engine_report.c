/* engine_report — what a sync did (or, in a dry run, would do), per
 * tenant: the text plan ("+" create, "~" update/adopt with "field: old →
 * new", "-" delete, "!" conflict or held, then counts) and the JSON report
 * ({"tenants":[{"id","name","status","created","updated","removed",
 * "unchanged",…,"errors":[…]}]}); the exit code; freeing. */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

void engine_report_free(struct engine_report *r)
{
	if (!r) return;
	for (size_t i = 0; i < r->n; i++) {
		struct engine_tenant_report *t = &r->t[i];
		free(t->id);
		free(t->name);
		free(t->reason);
		free(t->warning);
		free(t->customer_name);
		for (size_t k = 0; k < t->nerrors; k++) free(t->errors[k]);
		for (size_t k = 0; k < t->nduplicates; k++) free(t->duplicates[k]);
		free(t->duplicates);
		free(t->errors);
		for (size_t k = 0; k < t->nplan; k++) {
			engine_action_free(&t->plan[k].a);
			free(t->plan[k].error);
		}
		free(t->plan);
	}
	free(r->t);
	memset(r, 0, sizeof *r);
}

int engine_report_exit_code(const struct engine_report *r)
{
	if (r->fatal) return 1;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->t[i].status, "ok") != 0 || r->t[i].n.errors) return 1;
	return 0;
}

/* ------------------------------------------------------------ text */

#define VALUE_MAX 60

/* A field value for one line: (none) when absent, "" when blank, newlines
 * as \n, cut at VALUE_MAX characters. */
static void put_value(FILE *f, const char *v)
{
	if (!v) {
		fputs("(none)", f);
		return;
	}
	if (!*v) {
		fputs("\"\"", f);
		return;
	}
	size_t n = 0;
	for (const char *p = v; *p; p++, n++) {
		if (n == VALUE_MAX) {
			fputs("…", f);
			return;
		}
		if (*p == '\n') fputs("\\n", f);
		else if (*p == '\r') fputs("\\r", f);
		else if ((unsigned char)*p < 0x20 || *p == 0x7f) fputc('?', f);   /* no escape sequence reaches the terminal */
		else fputc(*p, f);
	}
}

static void put_changes(FILE *f, const struct engine_action *a)
{
	for (int k = 0; k < SYNCRO_NFIELDS; k++) {
		if (!(a->changed & (1u << k))) continue;
		fprintf(f, "      %s: ", syncro_field_name((enum syncro_field)k));
		if (a->kind == ENGINE_CREATE) {
			put_value(f, a->after.v[k]);
		} else {
			put_value(f, a->before.v[k]);
			fputs(" → ", f);
			put_value(f, a->after.v[k]);
		}
		fputc('\n', f);
	}
}

/* The action's label (the user's name and e-mail, from Microsoft) safe
 * for a terminal (str_term_safe), as a new string. */
static char *label_of(const struct engine_action *a)
{
	return str_term_safe(a->label ? a->label : a->object_id);
}

/* Text from a server or a policy (a name) on one line, safe for a
 * terminal: written through str_term_safe. */
static void put_text(FILE *f, const char *prefix, const char *text)
{
	char *safe = str_term_safe(text ? text : "");
	fprintf(f, "%s%s", prefix, safe);
	free(safe);
}

/* A message (an error, a reason: a server's or a policy's, a traceback
 * in it) on one line, safe for a terminal: through str_term_message. */
static void put_message(FILE *f, const char *prefix, const char *text)
{
	char *safe = str_term_message(text ? text : "");
	fprintf(f, "%s%s", prefix, safe);
	free(safe);
}

static void put_action(FILE *f, const struct engine_done *d, bool dry)
{
	const struct engine_action *a = &d->a;
	char *label = label_of(a);
	const char *why = engine_why_name(a->why);
	if (a->gone_read && a->kind == ENGINE_SKIP) {
		/* a leaver's contact deleted by hand, found on reading it: no verify ran */
		fprintf(f, "  - %s (#%lld, %s)", label, a->gone_contact, why ? why : "left");
		put_text(f, " — ", d->error);
		fputc('\n', f);
		goto out;
	}
	if (a->gone_contact) {
		fprintf(f, "  - %s: contact #%lld is gone from Syncro: link %s\n", label,
		        a->gone_contact, dry ? "to be dropped" : "dropped");
		if (a->kind == ENGINE_SKIP) goto out;   /* out of scope or left: nothing more */
	}
	switch (a->kind) {
	case ENGINE_CREATE:
		fprintf(f, "  + %s", label);
		if (!dry && d->rc == SYNCRO_OK) fprintf(f, " (contact created)");
		break;
	case ENGINE_ADOPT:
		fprintf(f, "  ~ %s (adopt existing contact #%lld%s)", label, a->contact_id,
		        a->changed ? "" : ", nothing to change");
		break;
	case ENGINE_UPDATE:
		fprintf(f, "  ~ %s (#%lld)", label, a->contact_id);
		break;
	case ENGINE_MARK:
		fprintf(f, "  %s %s (#%lld, %s: marked)", a->held ? "!" : "~", label, a->contact_id, why);
		break;
	case ENGINE_DELETE:
		fprintf(f, "  %s %s (#%lld, %s: delete)", a->held ? "!" : "-", label, a->contact_id, why);
		break;
	case ENGINE_CONFLICT:
		fprintf(f, "  ! %s: conflict: ", label);
		put_message(f, "", a->reason);
		fprintf(f, "; nothing %s", a->contact_id ? "written" : "created");
		break;
	default:
		fprintf(f, "  %s %s", engine_kind_name(a->kind), label);
	}
	/* an update or mark of a contact deleted in Syncro: no failure (the
	 * link is dropped; an updated user is planned again, on the next line) */
	bool gone = d->rc == SYNCRO_NOT_FOUND && (a->kind == ENGINE_UPDATE || a->kind == ENGINE_MARK);
	if (a->held) fputs(" — held, not done", f);
	if (d->error && gone) put_message(f, " — ", d->error);
	else if (d->error) {
		fprintf(f, " — FAILED (%s): ", syncro_result_name(d->rc));
		put_message(f, "", d->error);
	}
	fputc('\n', f);
	/* a create's fields are in the JSON report; the text shows changes */
	if (a->kind != ENGINE_CREATE && a->kind != ENGINE_DELETE && a->kind != ENGINE_CONFLICT && !gone) put_changes(f, a);
out:
	free(label);
}

void engine_report_print_text(FILE *f, const struct engine_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct engine_tenant_report *t = &r->t[i];
		fprintf(f, "%s%s%s%s", t->name ? t->name : t->id, t->name ? " (" : "", t->name ? t->id : "",
		        t->name ? ")" : "");
		if (t->customer_id) {
			fprintf(f, " → Syncro customer #%lld", t->customer_id);
			if (t->customer_name) put_text(f, " ", t->customer_name);
		}
		fprintf(f, "%s\n", r->dry_run ? " [dry run: nothing is written]" : "");
		if (t->policy_changed && !strcmp(t->status, "ok"))
			fprintf(f, "  policy changed since the last sync: every mirrored user re-planned\n");
		if (t->recovery.open)
			fprintf(f, "  recovered %lld interrupted write%s: %lld linked to the contact created, "
			        "%lld planned again\n", t->recovery.open, t->recovery.open == 1 ? "" : "s",
			        t->recovery.relinked, t->recovery.not_applied + t->recovery.superseded);
		for (size_t k = 0; k < t->nplan; k++) put_action(f, &t->plan[k], r->dry_run);
		if (!strcmp(t->status, "held")) put_message(f, "  ! held: ", t->reason), fputc('\n', f);
		if (t->warning) put_message(f, "  warning: ", t->warning), fputc('\n', f);
		const struct engine_counts *n = &t->n;
		fprintf(f, "  = %s: %lld created, %lld adopted, %lld updated, %lld removed, %lld marked, %lld unchanged, "
		        "%lld kept, %lld conflict%s, %lld held, %lld error%s; %lld Syncro write%s%s\n",
		        t->status, n->created, n->adopted, n->updated, n->removed, n->marked, n->unchanged, n->kept,
		        n->conflicts, n->conflicts == 1 ? "" : "s", n->held, n->errors, n->errors == 1 ? "" : "s",
		        t->writes, t->writes == 1 ? "" : "s", r->dry_run ? " would be sent" : " sent");
		if (n->verified || n->gone || n->unverified)
			fprintf(f, "  verified: %lld linked contact%s in Syncro, %lld gone%s\n", n->verified,
			        n->verified == 1 ? "" : "s", n->gone + n->unverified,
			        n->unverified ? " (left alone: see the error)" : n->gone ? " (their users planned again)" : "");
		for (size_t k = 0; k < t->nduplicates; k++) put_message(f, "  duplicate: ", t->duplicates[k]), fputc('\n', f);
		if (t->duplicates_dropped) fprintf(f, "  … and %zu more duplicates\n", t->duplicates_dropped);
		for (size_t k = 0; k < t->nerrors; k++) put_message(f, "  error: ", t->errors[k]), fputc('\n', f);
		if (t->errors_dropped) fprintf(f, "  … and %zu more errors\n", t->errors_dropped);
	}
	if (r->graph_msg[0]) fprintf(f, "error: %s\n", r->graph_msg);
	if (r->fatal) fprintf(f, "error: %s\n", r->fatal_msg);
}

/* ------------------------------------------------------------ JSON */

static void add_fieldset(cJSON *o, const char *key, const struct syncro_fields *fs, unsigned mask)
{
	cJSON *x = cJSON_AddObjectToObject(o, key);
	for (int k = 0; k < SYNCRO_NFIELDS; k++) {
		if (!(mask & (1u << k))) continue;
		const char *v = fs->v[k];
		if (v) cJSON_AddStringToObject(x, syncro_field_name((enum syncro_field)k), v);
		else cJSON_AddNullToObject(x, syncro_field_name((enum syncro_field)k));
	}
}

static cJSON *action_json(const struct engine_done *d)
{
	const struct engine_action *a = &d->a;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "action", engine_kind_name(a->kind));
	cJSON_AddStringToObject(o, "object_id", a->object_id);
	if (a->label) cJSON_AddStringToObject(o, "user", a->label);
	if (a->contact_id) cJSON_AddNumberToObject(o, "contact_id", (double)a->contact_id);
	if (a->customer_id) cJSON_AddNumberToObject(o, "customer_id", (double)a->customer_id);
	if (a->gone_contact) cJSON_AddNumberToObject(o, "gone_contact", (double)a->gone_contact);
	if (engine_why_name(a->why)) cJSON_AddStringToObject(o, "why", engine_why_name(a->why));
	if (a->changed && a->kind != ENGINE_DELETE) {
		if (a->kind != ENGINE_CREATE) add_fieldset(o, "before", &a->before, a->changed);
		add_fieldset(o, "after", &a->after, a->changed);
	}
	if (a->ncandidates) {
		cJSON *c = cJSON_AddArrayToObject(o, "candidates");
		for (size_t i = 0; i < a->ncandidates; i++) cJSON_AddItemToArray(c, cJSON_CreateNumber((double)a->candidates[i]));
	}
	if (a->kind == ENGINE_CONFLICT && a->reason) cJSON_AddStringToObject(o, "reason", a->reason);
	if (a->held) cJSON_AddBoolToObject(o, "held", 1);
	if (d->error) {
		cJSON_AddStringToObject(o, "result", syncro_result_name(d->rc));
		cJSON_AddStringToObject(o, "error", d->error);
	}
	return o;
}

void engine_report_print_json(FILE *f, const struct engine_report *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddBoolToObject(root, "dry_run", r->dry_run);
	cJSON *ts = cJSON_AddArrayToObject(root, "tenants");
	for (size_t i = 0; i < r->n; i++) {
		const struct engine_tenant_report *t = &r->t[i];
		const struct engine_counts *n = &t->n;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", t->id);
		if (t->name) cJSON_AddStringToObject(o, "name", t->name);
		else cJSON_AddNullToObject(o, "name");
		cJSON_AddStringToObject(o, "status", t->status);
		if (t->reason) cJSON_AddStringToObject(o, "reason", t->reason);
		if (t->warning) cJSON_AddStringToObject(o, "warning", t->warning);
		if (t->customer_id) cJSON_AddNumberToObject(o, "customer_id", (double)t->customer_id);
		const struct { const char *k; long long v; } nums[] = {
			{ "created", n->created }, { "adopted", n->adopted }, { "updated", n->updated },
			{ "removed", n->removed }, { "marked", n->marked }, { "unchanged", n->unchanged },
			{ "kept", n->kept }, { "conflicts", n->conflicts }, { "skipped", n->skipped },
			{ "held", n->held }, { "users", n->users }, { "writes", t->writes },
		};
		if (n->verified || n->gone || n->unverified) {
			cJSON *v = cJSON_AddObjectToObject(o, "verified");
			cJSON_AddNumberToObject(v, "present", (double)n->verified);
			cJSON_AddNumberToObject(v, "gone", (double)n->gone);
			cJSON_AddNumberToObject(v, "gone_left_alone", (double)n->unverified);
			cJSON_AddNumberToObject(v, "duplicates", (double)n->duplicates);
		}
		for (size_t k = 0; k < ARRAY_LEN(nums); k++) cJSON_AddNumberToObject(o, nums[k].k, (double)nums[k].v);
		cJSON_AddBoolToObject(o, "policy_changed", t->policy_changed);
		if (t->recovery.open) {
			cJSON *rc = cJSON_AddObjectToObject(o, "recovered");
			cJSON_AddNumberToObject(rc, "open", (double)t->recovery.open);
			cJSON_AddNumberToObject(rc, "relinked", (double)t->recovery.relinked);
			cJSON_AddNumberToObject(rc, "planned_again", (double)(t->recovery.not_applied + t->recovery.superseded));
		}
		cJSON *errs = cJSON_AddArrayToObject(o, "errors");
		for (size_t k = 0; k < t->nerrors; k++) cJSON_AddItemToArray(errs, cJSON_CreateString(t->errors[k]));
		if (t->errors_dropped) cJSON_AddNumberToObject(o, "errors_not_listed", (double)t->errors_dropped);
		if (t->nduplicates) {
			cJSON *dups = cJSON_AddArrayToObject(o, "duplicates");
			for (size_t k = 0; k < t->nduplicates; k++)
				cJSON_AddItemToArray(dups, cJSON_CreateString(t->duplicates[k]));
			if (t->duplicates_dropped)
				cJSON_AddNumberToObject(o, "duplicates_not_listed", (double)t->duplicates_dropped);
		}
		cJSON *plan = cJSON_AddArrayToObject(o, "plan");
		for (size_t k = 0; k < t->nplan; k++) cJSON_AddItemToArray(plan, action_json(&t->plan[k]));
		cJSON_AddItemToArray(ts, o);
	}
	if (r->graph_msg[0]) cJSON_AddStringToObject(root, "graph_error", r->graph_msg);
	if (r->fatal) cJSON_AddStringToObject(root, "error", r->fatal_msg);
	char *s = cJSON_Print(root);
	if (s) {
		fputs(s, f);
		fputc('\n', f);
	}
	cJSON_free(s);
	cJSON_Delete(root);
}
