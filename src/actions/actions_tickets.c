/* actions_tickets — Microsoft actions taken from Syncro tickets: the run
 * (recovery of an interrupted run, then the open tickets of the problem
 * type), each ticket's decision (subject, contact link, allow_action,
 * protect), the crash-safe sequence intent → Graph → acted → comment +
 * status → done (store_actions.h), and the check of the user's live state
 * that keeps a resumed intent from acting twice. See actions.h. */
#include "actions/actions.h"
#include "actions/actions_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/shutdown.h"
#include "store/store_actions.h"
#include "syncro/syncro_tickets.h"
#include "syncro/syncro_tickets_open.h"

#define DEFAULT_OPEN_STATUS "Not Closed"
#define DEFAULT_MAX_ATTEMPTS 3
#define REVOKE_CLOCK_SLACK 300.0   /* s: a revocation this close before the attempt counts as ours */

struct run {
	const struct actions_env *env;
	const struct actions_ticket_opts *o;
	struct actions_ticket_report *rep;
	struct store_actions *sa;
	struct syncro_resource *tickets;
	struct actions_hooks **hooks;   /* per config tenant, loaded on first use */
	char **hook_errors;             /* per config tenant: why its policy did not load */
};

static char *ticket_policy(struct run *r, size_t ti, struct actions_target *t, const char *action,
                           long long customer_id, long long contact_id);

/* ---- subjects -------------------------------------------------------------- */

/* Does s start with word (case-insensitive), followed by the end or a
 * non-letter? Returns the length matched, else 0. Spaces in word match any
 * run of spaces, '-' or '_' in s. */
static size_t starts_word(const char *s, const char *word)
{
	const char *p = s;
	for (const char *w = word; *w; w++) {
		if (*w == ' ') {
			if (!(*p == ' ' || *p == '-' || *p == '_')) return 0;
			while (*p == ' ' || *p == '-' || *p == '_') p++;
			continue;
		}
		if (tolower((unsigned char)*p) != *w) return 0;
		p++;
	}
	return isalpha((unsigned char)*p) ? 0 : (size_t)(p - s);
}

static const char *skip_spaces(const char *p)
{
	while (isspace((unsigned char)*p)) p++;
	return p;
}

/* Characters that end an address or a word of free text. */
#define TOKEN_STOP ",;:()<>[]\"'|/"

/* An e-mail address at p (local@domain.tld, trailing dots dropped): its
 * length in the subject, the address copied to out (truncated to cap);
 * 0 when p holds no address. */
static size_t address_at(const char *p, char *out, size_t cap)
{
	size_t n = 0;
	while (p[n] && !isspace((unsigned char)p[n]) && !strchr(TOKEN_STOP, p[n])) n++;
	size_t len = n;
	while (len > 0 && p[len - 1] == '.') len--;
	const char *at = memchr(p, '@', len);
	if (!at || at == p || at + 1 >= p + len || !memchr(at + 1, '.', (size_t)(p + len - at - 1))) return 0;
	size_t c = len < cap ? len : cap - 1;
	memcpy(out, p, c);
	out[c] = '\0';
	return n;
}

/* A separator between the action (and its user) and free text at p (in a
 * string that starts at start): its length, else 0. A '-' inside a word
 * (Jean-Luc, jean-luc@contoso.com) is none. */
static size_t separator_at(const char *start, const char *p)
{
	if (*p == '-') return p == start || isspace((unsigned char)p[-1]) || isspace((unsigned char)p[1]) ? 1 : 0;
	if (*p && strchr(":,([/|", *p)) return 1;
	const unsigned char *u = (const unsigned char *)p;
	if (u[0] == 0xE2 && u[1] == 0x80 && (u[2] == 0x93 || u[2] == 0x94)) return 3;   /* – — */
	return 0;
}

/* The user part p: its first address (and whether it has others,
 * *several) into first, the rest of its text into words (runs of spaces as
 * one, an address's angle brackets dropped). */
static void user_part(const char *p, char *first, size_t first_cap, bool *several, char *words, size_t words_cap)
{
	size_t wl = 0, n;
	bool space = false;
	char other[320];
	for (const char *q = p; *q;) {
		bool start = q == p || isspace((unsigned char)q[-1]) || strchr(TOKEN_STOP, q[-1]);
		if (start && !isspace((unsigned char)*q) && (n = address_at(q, other, sizeof other))) {
			if (!first[0]) snprintf(first, first_cap, "%s", other);
			else if (!str_ieq(first, other)) *several = true;
			q += n;
			if (*q == '>') q++;
			if (wl && words[wl - 1] == '<') wl--;
			continue;
		}
		if (isspace((unsigned char)*q)) {
			space = wl > 0;
			q++;
			continue;
		}
		if (space && wl + 1 < words_cap) words[wl++] = ' ';
		space = false;
		if (wl + 1 < words_cap) words[wl++] = *q;
		q++;
	}
	while (wl && words[wl - 1] == ' ') wl--;
	words[wl] = '\0';
}

/* s as its words (letters, digits, '-' and the bytes of non-ASCII
 * letters), lower case, between single spaces, with a space first and last;
 * '.', '_' and '@' end a word ("lucas.zbinden@x" gives " lucas zbinden x "). */
static void words_fold(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	if (cap < 3) {
		if (cap) out[0] = '\0';
		return;
	}
	out[n++] = ' ';
	for (; *s && n + 2 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c >= 0x80) out[n++] = (char)tolower(c);
		else if (out[n - 1] != ' ') out[n++] = ' ';
	}
	if (out[n - 1] != ' ') out[n++] = ' ';
	out[n] = '\0';
	if (n == 1) out[0] = '\0';   /* no word */
}

/* The addresses of the free text after the separator into out->text_address. */
static void text_addresses(const char *p, struct ticket_subject *out)
{
	char addr[320];
	size_t n;
	while (*p) {
		while (*p && (isspace((unsigned char)*p) || strchr(TOKEN_STOP, *p))) p++;
		if (!*p) break;
		if ((n = address_at(p, addr, sizeof addr))) {
			if (out->ntext < TICKET_TEXT_ADDRESSES) snprintf(out->text_address[out->ntext], sizeof addr, "%s", addr);
			out->ntext++;
			p += n;
			continue;
		}
		while (*p && !isspace((unsigned char)*p) && !strchr(TOKEN_STOP, *p)) p++;
	}
}

void actions_ticket_subject_parse(const char *subject, struct ticket_subject *out)
{
	static const struct {
		const char *word;
		enum graph_action a;
	} words[] = {
		{ "disable", GRAPH_ACTION_DISABLE },
		{ "enable", GRAPH_ACTION_ENABLE },
		{ "revoke sessions", GRAPH_ACTION_REVOKE_SESSIONS },
		{ "revoke sign in sessions", GRAPH_ACTION_REVOKE_SESSIONS },
		{ "set password", GRAPH_ACTION_SET_PASSWORD },
		{ "reset password", GRAPH_ACTION_SET_PASSWORD },
	};
	static const char *const nouns[] = { "account", "user", "sign in", "signin", "login", "log in" };
	memset(out, 0, sizeof *out);
	out->action = -1;
	if (!subject) return;
	const char *p = skip_spaces(subject);
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_LEN(words) && out->action < 0; i++)
		if ((n = starts_word(p, words[i].word))) out->action = (int)words[i].a;
	if (out->action < 0 || out->action == GRAPH_ACTION_SET_PASSWORD) return;
	p = skip_spaces(p + n);
	for (size_t i = 0; i < ARRAY_LEN(nouns); i++)
		if ((n = starts_word(p, nouns[i]))) {
			p = skip_spaces(p + n);
			break;
		}
	if ((n = starts_word(p, "for")) || (n = starts_word(p, "of"))) p = skip_spaces(p + n);
	/* the user: the words up to a separator or the end */
	const char *end = p;
	while (*end && !separator_at(p, end)) end++;
	size_t len = (size_t)(end - p);
	while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
	char *who = xstrndup(p, len);
	user_part(who, out->address, sizeof out->address, &out->several, out->name, sizeof out->name);
	free(who);
	if (*end) {
		const char *text = end + separator_at(p, end);
		text_addresses(text, out);
		words_fold(text, out->text, sizeof out->text);
	}
}

/* ---- helpers ------------------------------------------------------------- */

static const struct config_tenant *tenant_by_id(const struct config *cfg, const char *id, size_t *index)
{
	for (size_t i = 0; id && i < cfg->ntenants; i++)
		if (str_ieq(cfg->tenants[i].id, id)) {
			if (index) *index = i;
			return &cfg->tenants[i];
		}
	return NULL;
}

/* The hooks of config tenant i (NULL + *why when its policy does not load). */
static struct actions_hooks *run_hooks(struct run *r, size_t i, const char **why)
{
	*why = NULL;
	if (!r->hooks[i] && !r->hook_errors[i]) {
		struct err err = {{0}};
		if (actions_tenant_hooks(r->env, &r->env->cfg->tenants[i], &r->hooks[i], &err) != 0)
			r->hook_errors[i] = xstrdup(err.msg);
	}
	*why = r->hook_errors[i];
	return r->hooks[i];
}

/* Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.fff]Z", or -1. */
static double parse_iso(const char *s)
{
	struct tm tm = { 0 };
	double frac = 0;
	int n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	                 &tm.tm_sec, &n) != 6)
		return -1;
	if (s[n] == '.') frac = strtod(s + n, NULL);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double)timegm(&tm) + frac;
}

/* The audit actor of a ticket's action. */
static char *ticket_actor(const struct run *r, long long ticket_id)
{
	return xasprintf("syncro-ticket:%lld via %s", ticket_id, r->env->actor ? r->env->actor : "entrasync");
}

static void ticket_audit(const struct run *r, long long ticket_id, const struct actions_target *t, const char *what,
                         const char *before, const char *after, const char *result)
{
	struct actions_env e = *r->env;
	char *actor = ticket_actor(r, ticket_id);
	e.actor = actor;
	actions_audit(&e, t, what, before, after, result);
	free(actor);
}

static void say(const struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct run *r, const char *fmt, ...)
{
	va_list ap;
	struct buf b = {0}, red = {0};
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	log_redact(b.data, &red);
	/* one line per ticket: on env->out when given (the log then has it at debug) */
	log_write(r->env->out ? LOG_DEBUG : LOG_INFO, "actions.ticket", "%s", red.data);
	if (r->env->out) fprintf(r->env->out, "%s\n", red.data);
	buf_free(&b);
	buf_free(&red);
}

/* ---- comment and status ------------------------------------------------- */

static const char *action_word(const char *action)
{
	int a = graph_action_lookup(action);
	return a >= 0 ? graph_action_name((enum graph_action)a) : "not understood";
}

/* Posts the outcome of row a as a comment (unless resuming found it
 * already there), sets the status, marks the row done. A failure that may
 * pass leaves the row "acted" for the next run. */
static void ticket_finish(struct run *r, const struct store_ticket_action *a, bool resuming)
{
	struct err err = {{0}};   /* zeroed here and below: syncro_tickets.c redacts err even on success */
	char marker[64];
	snprintf(marker, sizeof marker, "[entrasync ticket %lld]", a->ticket_id);
	bool ok = a->outcome && !strcmp(a->outcome, "ok");
	bool understood = graph_action_lookup(a->action) >= 0;
	const char *status = ok ? r->o->status_done : understood ? r->o->status_failed : NULL;
	bool found = false;
	enum syncro_result rc = SYNCRO_OK;
	if (resuming && (rc = syncro_ticket_comment_find(r->env->sc, a->ticket_id, marker, &found, &err)) != SYNCRO_OK) {
		if (rc == SYNCRO_NOT_FOUND) goto gone;
		say(r, "ticket %lld: cannot read its comments, will try again next run: %s", a->ticket_id, err.msg);
		r->rep->pending++;
		return;
	}
	if (!found) {
		char *subject = xasprintf("Microsoft action: %s", action_word(a->action));
		char *actor = ticket_actor(r, a->ticket_id);
		char *body = xasprintf("%s%s.%s\n\n-- entrasync (%s)\n%s", ok ? "Done: " : "Not done: ",
		                       a->message ? a->message : "", ok ? "" : "\nNo Microsoft action was taken.", actor,
		                       marker);
		rc = syncro_ticket_comment(r->tickets, a->ticket_id, subject, body, &err);   /* hidden, not e-mailed */
		free(subject);
		free(actor);
		free(body);
		if (rc == SYNCRO_NOT_FOUND) goto gone;
		if (rc != SYNCRO_OK) {
			say(r, "ticket %lld: the comment could not be posted (%s), will try again next run: %s", a->ticket_id,
			    syncro_result_name(rc), err.msg);
			r->rep->pending++;
			return;
		}
	}
	if (status && (rc = syncro_ticket_update(r->tickets, a->ticket_id, status, NULL, &err)) != SYNCRO_OK) {
		if (rc == SYNCRO_NOT_FOUND) goto gone;
		say(r, "ticket %lld: the status could not be set to '%s', will try again next run: %s", a->ticket_id, status,
		    err.msg);
		r->rep->pending++;
		return;
	}
	goto done;
gone:
	say(r, "ticket %lld: deleted in Syncro before its outcome could be posted", a->ticket_id);
	status = NULL;   /* none was set */
done:
	if (store_ticket_action_set(r->sa, a->ticket_id, "done", NULL, NULL, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", a->ticket_id, err.msg);
		return;
	}
	if (ok) r->rep->done++;
	else if (!strcmp(a->outcome ? a->outcome : "", "failed")) r->rep->failed++;
	else r->rep->refused++;
	if (resuming) r->rep->resumed++;
	say(r, "ticket %lld: %s%s%s%s%s", a->ticket_id, ok ? "done: " : "not done: ", a->message ? a->message : "",
	    status ? " (status set to '" : "", status ? status : "", status ? "')" : "");
}

/* Records the outcome of row ticket_id and finishes it. */
static void ticket_outcome(struct run *r, long long ticket_id, const char *outcome, const char *message,
                           bool resuming)
{
	struct err err = {{0}};
	struct store_ticket_action a;
	if (store_ticket_action_set(r->sa, ticket_id, "acted", outcome, message, &err) != 0 ||
	    store_ticket_action_get(r->sa, ticket_id, &a, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", ticket_id, err.msg);
		return;
	}
	ticket_finish(r, &a, resuming);
	store_ticket_action_free(&a);
}

/* ---- acting ---------------------------------------------------------------- */

/* Makes the Graph call of an intent and records its outcome. */
static void ticket_act(struct run *r, const struct store_ticket_action *a, struct actions_target *t, bool resuming)
{
	struct err err = {{0}};
	enum graph_action ga = (enum graph_action)graph_action_lookup(a->action);
	if (store_ticket_action_attempt(r->sa, a->ticket_id, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", a->ticket_id, err.msg);
		return;
	}
	struct graph_tenant *gt = graph_tenant_get(r->env->gc, t->tenant->id);
	enum graph_action_status st = graph_action_run(r->env->engine, gt, ga, t->object_id, t->label, NULL, &err);
	/* not known to be applied, or not applied for want of a token (a credential
	 * or a consent fixed by the next run): left pending, tried again */
	bool again = st == GRAPH_ACTION_UNKNOWN || st == GRAPH_ACTION_NOT_SENT;
	if (again && a->attempts + 1 < (r->o->max_attempts > 0 ? r->o->max_attempts : DEFAULT_MAX_ATTEMPTS)) {
		say(r, "ticket %lld: %s of %s: %s (attempt %lld), will check and try again next run: %s", a->ticket_id,
		    a->action, t->label, st == GRAPH_ACTION_NOT_SENT ? "not applied yet" : "no answer yet",
		    a->attempts + 1, err.msg);
		r->rep->pending++;
		return;
	}
	char *msg;
	if (st == GRAPH_ACTION_OK) {
		char *before, *after;
		actions_change_json(t, ga, &before, &after);
		ticket_audit(r, a->ticket_id, t, a->action, before, after, "ok");
		actions_mirror_note(r->env, t, ga);
		free(before);
		free(after);
		const char *note = actions_caveat(t, ga);
		msg = xasprintf("%s %s (%s)%s%s", actions_done_words[ga], t->label, actions_tenant_label(t->tenant),
		                note ? ". Note: " : "", note ? note : "");
		ticket_outcome(r, a->ticket_id, "ok", msg, resuming);
	} else {
		char *row = xasprintf("failed: %s", err.msg);
		ticket_audit(r, a->ticket_id, t, a->action, NULL, NULL, row);
		free(row);
		msg = xasprintf("%s%s", again ? "gave up after several attempts: " : "", err.msg);
		ticket_outcome(r, a->ticket_id, "failed", msg, resuming);
	}
	free(msg);
}

/* Is the intent of a already in effect on the live user? 1 yes, 0 no, -1
 * unknown for now (err), -2 never: Graph does not know the user (404:
 * deleted, or soft-deleted, since). */
static int already_applied(struct run *r, const struct store_ticket_action *a, const struct actions_target *t,
                           struct err *err)
{
	enum graph_action ga = (enum graph_action)graph_action_lookup(a->action);
	cJSON *u = NULL;
	struct graph_tenant *gt = graph_tenant_get(r->env->gc, t->tenant->id);
	enum graph_action_status st = graph_user_fetch(r->env->engine, gt, t->object_id,
	                                               "id,accountEnabled,signInSessionsValidFromDateTime", &u, err);
	if (st == GRAPH_ACTION_NOT_FOUND) return -2;
	if (st != GRAPH_ACTION_OK) return -1;
	int rc = 0;
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(u, "accountEnabled");
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(u, "signInSessionsValidFromDateTime");
	if (ga == GRAPH_ACTION_DISABLE) rc = cJSON_IsFalse(en);
	else if (ga == GRAPH_ACTION_ENABLE) rc = cJSON_IsTrue(en);
	else if (ga == GRAPH_ACTION_REVOKE_SESSIONS) {
		double tried = parse_iso(a->attempted_at);
		double valid = cJSON_IsString(since) ? parse_iso(since->valuestring) : -1;
		rc = tried > 0 && valid > 0 && valid >= tried - REVOKE_CLOCK_SLACK;
	}
	cJSON_Delete(u);
	return rc;
}

/* A resumed ticket closed or deleted in Syncro (how) before its action was
 * confirmed: not acted on, nothing posted to it, its row done. */
static void ticket_dropped(struct run *r, const struct store_ticket_action *a, const struct actions_target *t,
                           const char *how)
{
	struct err err = {{0}};
	char *res = xasprintf("refused: the ticket was %s in Syncro before the action was confirmed", how);
	ticket_audit(r, a->ticket_id, t, a->action, NULL, NULL, res);
	free(res);
	if (store_ticket_action_set(r->sa, a->ticket_id, "done", "refused", "the ticket was closed or deleted", &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", a->ticket_id, err.msg);
		return;
	}
	r->rep->refused++;
	r->rep->resumed++;
	say(r, "ticket %lld: %s in Syncro before the %s of %s was confirmed: not acted on", a->ticket_id, how, a->action,
	    t->label);
}

/* Finishes a row an interrupted run left. */
static void ticket_resume(struct run *r, const struct store_ticket_action *a)
{
	struct err err = {{0}};
	if (!strcmp(a->state, "acted")) {
		ticket_finish(r, a, true);
		return;
	}
	/* intent: did the Graph call happen before the interruption? */
	size_t ti = 0;
	const struct config_tenant *ct = tenant_by_id(r->env->cfg, a->tenant_id, &ti);
	struct actions_target t;
	if (!ct) {
		ticket_outcome(r, a->ticket_id, "failed", "the tenant of this ticket's contact is no longer configured",
		               true);
		return;
	}
	if (actions_target_load(r->env, ct, a->object_id, &t, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", a->ticket_id, err.msg);
		actions_target_free(&t);
		return;
	}
	int applied = a->attempted_at ? already_applied(r, a, &t, &err) : 0;
	if (applied == 1) {
		char *before, *after;
		enum graph_action ga = (enum graph_action)graph_action_lookup(a->action);
		actions_change_json(&t, ga, &before, &after);
		ticket_audit(r, a->ticket_id, &t, a->action, before, after,
		             "ok (found in effect after an interrupted run; not sent again)");
		actions_mirror_note(r->env, &t, ga);
		free(before);
		free(after);
		char *msg = xasprintf("%s %s (%s)", actions_done_words[ga], t.label, actions_tenant_label(ct));
		ticket_outcome(r, a->ticket_id, "ok", msg, true);
		free(msg);
	} else if (applied == 0) {
		/* not in effect: the action is tried again only if the ticket still
		 * asks for it (not closed or deleted meanwhile: a technician's way to
		 * cancel it) and the policy still allows it */
		struct err te = {{0}};
		struct syncro_ticket tk;
		enum syncro_result tr = syncro_ticket_get(r->tickets, a->ticket_id, &tk, &te);
		bool closed = tr == SYNCRO_OK && syncro_ticket_closed(tk.status);
		syncro_ticket_free(&tk);
		char *why = NULL;
		if (tr == SYNCRO_NOT_FOUND || closed) {
			ticket_dropped(r, a, &t, tr == SYNCRO_NOT_FOUND ? "deleted" : "closed");
		} else if (tr != SYNCRO_OK) {
			say(r, "ticket %lld: cannot read the ticket yet, will try again next run: %s", a->ticket_id, te.msg);
			r->rep->pending++;
		} else if ((why = ticket_policy(r, ti, &t, a->action, a->customer_id, a->contact_id)) != NULL) {
			char *res = xasprintf("refused: %s", why);
			ticket_audit(r, a->ticket_id, &t, a->action, NULL, NULL, res);
			free(res);
			ticket_outcome(r, a->ticket_id, "refused", why, true);
		} else {
			ticket_act(r, a, &t, true);
		}
		free(why);
	} else if (applied == -2) {
		char *msg = xasprintf("%s is no longer in Entra (Graph answers 404: deleted since the ticket was taken); "
		                      "nothing more was done", t.label);
		ticket_audit(r, a->ticket_id, &t, a->action, NULL, NULL, "failed: the user is gone from Entra (404)");
		ticket_outcome(r, a->ticket_id, "failed", msg, true);
		free(msg);
	} else if (!strcmp(a->action, "revoke-sessions")) {
		/* cannot tell whether the sessions were revoked: do not revoke twice */
		ticket_outcome(r, a->ticket_id, "failed", "interrupted run, and the user's state cannot be read to tell "
		               "whether the sessions were revoked; not sent again: check and revoke by hand", true);
	} else if (a->attempts + 1 >= (r->o->max_attempts > 0 ? r->o->max_attempts : DEFAULT_MAX_ATTEMPTS)) {
		/* each run that cannot read the state counts as an attempt: a ticket
		 * is not left pending (and every run failing) for ever */
		char *msg = xasprintf("gave up after %lld attempts: the user's state could not be read to tell whether the "
		                      "%s was done (%s); check the account by hand", a->attempts + 1, a->action, err.msg);
		ticket_audit(r, a->ticket_id, &t, a->action, NULL, NULL, "failed: gave up, state unreadable");
		ticket_outcome(r, a->ticket_id, "failed", msg, true);
		free(msg);
	} else {
		struct err ae = {{0}};
		if (store_ticket_action_attempt(r->sa, a->ticket_id, &ae) != 0)
			log_error("actions.ticket", "ticket %lld: %s", a->ticket_id, ae.msg);
		say(r, "ticket %lld: cannot read the user's state yet (attempt %lld), will try again next run: %s",
		    a->ticket_id, a->attempts + 1, err.msg);
		r->rep->pending++;
	}
	actions_target_free(&t);
}

static int collect_open(const struct store_ticket_action *a, void *ud)
{
	struct buf *ids = ud;
	buf_add(ids, &a->ticket_id, sizeof a->ticket_id);
	return 0;
}

/* Was ticket id among those this run resumed (ids: long longs)? */
static bool resumed_now(const struct buf *ids, long long id)
{
	for (size_t i = 0; i + sizeof(long long) <= ids->len; i += sizeof(long long)) {
		long long v;
		memcpy(&v, ids->data + i, sizeof v);
		if (v == id) return true;
	}
	return false;
}

/* ---- new tickets ------------------------------------------------------------ */

/* The link of the ticket's contact: (tenant index, object id). */
static int ticket_link(struct run *r, const struct syncro_open_ticket *tk, size_t *ti, char **object_id, struct err *err)
{
	const struct config *cfg = r->env->cfg;
	struct store_link l;
	*object_id = NULL;
	int rc = tk->customer_id ? store_link_find_contact(r->env->st, tk->customer_id, tk->contact_id, &l, err)
	                         : STORE_NOTFOUND;
	if (rc < 0) return -1;
	if (rc == 0) {
		if (tenant_by_id(cfg, l.tenant_id, ti)) *object_id = xstrdup(l.object_id);
		store_link_free(&l);
	}
	return 0;
}

/* Lower case, runs of spaces, '.' and '_' as one space, trimmed. */
static void name_fold(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	bool space = false;
	for (; *s && n + 1 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (isspace(c) || c == '.' || c == '_') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < cap) out[n++] = ' ';
		space = false;
		out[n++] = (char)tolower(c);
	}
	out[n] = '\0';
}

/* Does name (from a subject) name user u: its display name, given name,
 * surname, given name and surname, or the part before '@' of its mail or
 * UPN (case and spacing aside)? */
static bool user_has_name(const cJSON *u, const char *name)
{
	char want[200], have[400];
	name_fold(name, want, sizeof want);
	if (!want[0]) return true;
	static const char *const keys[] = { "displayName", "givenName", "surname", "mail", "userPrincipalName" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, keys[i]);
		if (!cJSON_IsString(v)) continue;
		char part[400];
		snprintf(part, sizeof part, "%s", v->valuestring);
		if (i >= 3) part[strcspn(part, "@")] = '\0';
		name_fold(part, have, sizeof have);
		if (!strcmp(have, want)) return true;
	}
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(u, "givenName"), *f = cJSON_GetObjectItemCaseSensitive(u, "surname");
	if (cJSON_IsString(g) && cJSON_IsString(f)) {
		char full[400];
		snprintf(full, sizeof full, "%s %s", g->valuestring, f->valuestring);
		name_fold(full, have, sizeof have);
		if (!strcmp(have, want)) return true;
	}
	return false;
}

/* The Syncro customer of config tenant ct: the config's id, else the
 * store's (a tenant mapped by name); 0 = unknown. */
static long long tenant_customer(struct run *r, const struct config_tenant *ct)
{
	if (ct->syncro_customer_id) return ct->syncro_customer_id;
	struct store_tenant row;
	struct err err;
	long long id = 0;
	if (store_tenant_get(r->env->st, ct->id, &row, &err) == 0) {
		id = row.syncro_customer_id;
		store_tenant_free(&row);
	}
	return id;
}

/* The user a ticket's subject names by address, looked for only in the
 * tenants of the ticket's customer (a ticket never reaches another
 * customer's users): (tenant index, object id), or *why (new string) when
 * none or more than one user has that e-mail or UPN. -1 on a store error. */
static int ticket_named_user(struct run *r, const struct syncro_open_ticket *tk, const char *named, size_t *ti,
                             char **object_id, char **why, struct err *err)
{
	const struct config *cfg = r->env->cfg;
	size_t found = 0, tenants = 0;
	struct buf more = {0};
	*object_id = NULL;
	if (!tk->customer_id) {
		*why = xasprintf("the subject names %s, but the ticket has no customer to look for that user in", named);
		return 0;
	}
	for (size_t i = 0; i < cfg->ntenants; i++) {
		if (tenant_customer(r, &cfg->tenants[i]) != tk->customer_id) continue;
		tenants++;
		struct actions_target t;
		struct err e = {{0}};
		int rc = actions_resolve(r->env, named, cfg->tenants[i].id, &t, &e);
		if (rc == ACTIONS_ERROR) {
			*err = e;
			actions_target_free(&t);
			buf_free(&more);
			free(*object_id);
			*object_id = NULL;
			return -1;
		}
		if (rc == ACTIONS_OK) {
			if (found++ == 0) {
				*ti = i;
				*object_id = xstrdup(t.object_id);
			}
			buf_printf(&more, "%s%s (%s)", more.len ? ", " : "", t.label, actions_tenant_label(&cfg->tenants[i]));
		} else if (rc == ACTIONS_AMBIGUOUS) {
			found += 2;
			buf_printf(&more, "%s%s", more.len ? ", " : "", t.candidates);
		}
		actions_target_free(&t);
	}
	if (!tenants)
		*why = xasprintf("the subject names %s, but customer %lld is mapped to no configured tenant", named,
		                 tk->customer_id);
	else if (!found)
		*why = xasprintf("the subject names %s, but no user of customer %lld's tenant%s has that e-mail or UPN (as "
		                 "of the last pull)", named, tk->customer_id, tenants == 1 ? "" : "s");
	else if (found > 1)
		*why = xasprintf("the subject names %s, which matches more than one user: %s; name the one meant by "
		                 "their UPN", named, more.data);
	if (*why) {
		free(*object_id);
		*object_id = NULL;
	}
	buf_free(&more);
	return 0;
}

/* Whether user u has the e-mail address a (mail, UPN or another of its
 * mails). */
static bool user_has_address(const cJSON *u, const char *a)
{
	static const char *const keys[] = { "mail", "userPrincipalName" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, keys[i]);
		if (cJSON_IsString(v) && str_ieq(v->valuestring, a)) return true;
	}
	const cJSON *o, *others = cJSON_GetObjectItemCaseSensitive(u, "otherMails");
	cJSON_ArrayForEach(o, others)
		if (cJSON_IsString(o) && str_ieq(o->valuestring, a)) return true;
	return false;
}

/* Why the subject does not name t alone (new string), or NULL: a name beside
 * the address that is not the addressed user's, an address in the text after
 * the separator that is not t's (a manager who asked, a colleague: never the
 * target, and never acted on in t's place). */
static char *subject_mismatch(const struct ticket_subject *sub, const struct actions_target *t)
{
	if (sub->address[0] && sub->name[0] && !user_has_name(t->user, sub->name))
		return xasprintf("the subject names '%s' and %s, which are not one user (%s has that address): name one "
		                 "user", sub->name, sub->address, t->label);
	if (sub->ntext > TICKET_TEXT_ADDRESSES)
		return xasprintf("the text after the action names %d addresses: a ticket acts on one user", sub->ntext);
	for (int i = 0; i < sub->ntext; i++)
		if (!user_has_address(t->user, sub->text_address[i]))
			return xasprintf("the text after the action names %s, who is not the user it would act on (%s): the user "
			                 "is named right after the action ('Disable %s'), else it is the ticket's contact; one "
			                 "user per ticket", sub->text_address[i], t->label, sub->text_address[i]);
	return NULL;
}

/* Does the folded text (words_fold) hold the words of name (a user's
 * display name, given name, surname, "given surname", mail's local part),
 * as whole words? Names under 3 letters are not looked for. */
static bool text_names(const char *text, const char *name)
{
	char want[200];
	words_fold(name, want, sizeof want);
	return strlen(want) >= 5 && strstr(text, want) != NULL;   /* " abc ": three letters at least */
}

/* Another present user of t's tenant whom the text after the separator
 * names (their display name, given name, surname, given name and surname, or
 * the part before '@' of their mail or UPN, as whole words): its label in
 * out[cap], true. A manager reporting a leaver writes the leaver's name
 * there ("Disable account - Lucas Zbinden left today"), and the user acted
 * on would be the ticket's contact, the manager: refused instead. */
struct text_scan {
	const char *text, *target;
	char *out;
	size_t cap;
	bool found;
};

static int text_scan_user(const struct store_user *su, void *ud)
{
	struct text_scan *sc = ud;
	if (sc->found || !strcmp(su->object_id, sc->target)) return 0;
	cJSON *u = cJSON_Parse(su->json);
	static const char *const keys[] = { "displayName", "givenName", "surname", "mail", "userPrincipalName" };
	for (size_t i = 0; u && i < ARRAY_LEN(keys) && !sc->found; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, keys[i]);
		if (!cJSON_IsString(v)) continue;
		char part[400];
		snprintf(part, sizeof part, "%s", v->valuestring);
		if (i >= 3) part[strcspn(part, "@")] = '\0';
		if (text_names(sc->text, part)) {
			const cJSON *label = cJSON_GetObjectItemCaseSensitive(u, "userPrincipalName");
			snprintf(sc->out, sc->cap, "%s (%s)", part, cJSON_IsString(label) ? label->valuestring : su->object_id);
			sc->found = true;
		}
	}
	cJSON_Delete(u);
	return 0;
}

/* The text's words with t's own names taken out (a requester may write
 * their own name: "Disable: Mia's phone was stolen"). */
static void text_without_own_names(const char *text, const cJSON *u, char *out, size_t cap)
{
	snprintf(out, cap, "%s", text);
	static const char *const keys[] = { "displayName", "givenName", "surname", "mail", "userPrincipalName" };
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, keys[i]);
		if (!cJSON_IsString(v)) continue;
		char part[400], want[200];
		snprintf(part, sizeof part, "%s", v->valuestring);
		if (i >= 3) part[strcspn(part, "@")] = '\0';
		words_fold(part, want, sizeof want);
		size_t wl = strlen(want);
		if (wl < 3) continue;
		for (char *hit; (hit = strstr(out, want)) != NULL;)   /* " mia " -> " " */
			memmove(hit + 1, hit + wl, strlen(hit + wl) + 1);
	}
}

static bool text_names_another(struct run *r, const struct ticket_subject *sub, const struct actions_target *t,
                               char *out, size_t cap)
{
	if (!sub->text[0] || !t->tenant || !t->object_id) return false;
	char text[sizeof sub->text];
	text_without_own_names(sub->text, t->user, text, sizeof text);
	struct text_scan sc = { .text = text, .target = t->object_id, .out = out, .cap = cap };
	struct err err;
	if (store_user_each(r->env->st, t->tenant->id, STORE_USERS_PRESENT, text_scan_user, &sc, &err) != 0) {
		snprintf(out, cap, "(the tenant's users could not be read: %.400s)", err.msg);
		return true;   /* not known not to: refused */
	}
	return sc.found;
}

/* The tenant's policy on acting on t: allow_action, then protect. NULL
 * when it may be done, else why not (new string). */
/* Who asked (the ticket's contact of customer_id) for allow_action: the
 * Entra user it is linked to, when it is, and whether that is t. The
 * strings are held in *keep (freed by the caller with cJSON_Delete) and
 * *id (free). */
static void requester_of(struct run *r, long long customer_id, long long contact_id, const struct actions_target *t,
                         struct policy_requester *req, cJSON **keep, char **id)
{
	*req = (struct policy_requester){ .contact_id = contact_id };
	*keep = NULL;
	*id = NULL;
	struct err err;
	size_t ti;
	struct syncro_open_ticket tk = { .customer_id = customer_id, .contact_id = contact_id };
	if (!contact_id || ticket_link(r, &tk, &ti, id, &err) != 0 || !*id) return;
	req->user_id = *id;
	req->self = t->object_id && !strcmp(*id, t->object_id);
	struct store_user u;
	if (store_user_get_json(r->env->st, r->env->cfg->tenants[ti].id, *id, &u, &err) == 0) {
		*keep = u.json ? cJSON_Parse(u.json) : NULL;
		store_user_free(&u);
	}
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(*keep, "mail");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(*keep, "userPrincipalName");
	if (cJSON_IsString(m)) req->mail = m->valuestring;
	if (cJSON_IsString(p)) req->upn = p->valuestring;
}

static char *ticket_policy(struct run *r, size_t ti, struct actions_target *t, const char *action,
                           long long customer_id, long long contact_id)
{
	struct err err = {{0}};
	char *why = NULL;
	const char *load_err;
	struct actions_hooks *h = run_hooks(r, ti, &load_err);
	struct actions_verdict v = { 0 };
	struct policy_user pu;
	actions_target_policy_user(t, &pu);
	bool prot = false;
	char *pwhy = NULL, *req_id = NULL;
	struct policy_requester req;
	cJSON *req_user = NULL;
	requester_of(r, customer_id, contact_id, t, &req, &req_user, &req_id);
	if (!h) {
		why = xasprintf("the tenant's policy does not load: %s", load_err);
	} else if (!actions_hooks_has_allow(h)) {
		why = xasprintf("the policy of %s has no allow_action hook: ticket actions are off for this tenant",
		                actions_tenant_label(t->tenant));
	} else if (actions_hook_allow(h, action, &pu, &req, &v, &err) != 0) {
		why = xasprintf("allow_action() failed: %s", err.msg);
	} else if (!v.yes) {
		why = xasprintf("the policy's allow_action said no%s%s", v.reason ? ": " : "", v.reason ? v.reason : "");
	} else if (actions_target_protected(h, t, &prot, &pwhy), prot) {
		why = xasprintf("%s is protected by the tenant's policy%s%s", t->label, pwhy ? ": " : "", pwhy ? pwhy : "");
	}
	free(pwhy);
	free(req_id);
	cJSON_Delete(req_user);
	actions_verdict_free(&v);
	return why;
}

/* Decides and claims a new ticket; acts when allowed. The user acted on is
 * the one the subject names by address, else the ticket's contact. */
static void ticket_new(struct run *r, const struct syncro_open_ticket *tk)
{
	struct err err = {{0}};
	struct ticket_subject sub;
	actions_ticket_subject_parse(tk->subject, &sub);
	int ga = sub.action;
	const char *named = sub.address;
	struct actions_target t = { 0 };
	char *why = NULL, *object_id = NULL;
	size_t ti = 0;
	/* "ticket" stands for a subject that names no action (audit "user.ticket") */
	const char *action = ga >= 0 ? graph_action_name((enum graph_action)ga) : "ticket";
	if (ga < 0) {
		why = xasprintf("the subject '%s' does not start with an action entrasync takes from tickets (disable, "
		                "enable, revoke sessions)", tk->subject ? tk->subject : "");
	} else if (ga == GRAPH_ACTION_SET_PASSWORD) {
		why = xstrdup("set-password is never taken from a ticket: run 'entrasync user set-password' at a terminal");
	} else if (sub.several) {
		why = xasprintf("the subject names more than one user (%s and another): one user per ticket", named);
	} else if (named[0]) {
		if (ticket_named_user(r, tk, named, &ti, &object_id, &why, &err) != 0) {
			log_error("actions.ticket", "ticket %lld: %s", tk->id, err.msg);
			return;
		}
		if (!why && actions_target_load(r->env, &r->env->cfg->tenants[ti], object_id, &t, &err) != 0) {
			log_error("actions.ticket", "ticket %lld: %s", tk->id, err.msg);
			goto out;
		}
		if (!why && t.removed) why = xasprintf("%s was removed from Entra (as of the last pull)", t.label);
	} else if (!tk->contact_id) {
		why = xstrdup("the ticket has no contact and its subject names no user");
	} else if (ticket_link(r, tk, &ti, &object_id, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", tk->id, err.msg);
		return;
	} else if (!object_id) {
		why = xasprintf("contact %lld is not linked to a Microsoft user of a configured tenant", tk->contact_id);
	} else if (actions_target_load(r->env, &r->env->cfg->tenants[ti], object_id, &t, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", tk->id, err.msg);
		goto out;
	} else if (t.removed) {
		why = xasprintf("%s was removed from Entra (as of the last pull)", t.label);
	} else if (sub.name[0] && !user_has_name(t.user, sub.name)) {
		why = xasprintf("the subject names '%s', but the ticket's contact %lld is %s: the user acted on is the one "
		                "the subject names by e-mail ('Disable jane@contoso.com'), else the ticket's contact",
		                sub.name, tk->contact_id, t.label);
	}
	if (!why && t.tenant) why = subject_mismatch(&sub, &t);
	char other[500];
	if (!why && t.tenant && text_names_another(r, &sub, &t, other, sizeof other))
		why = xasprintf("the text after the action names %s, another user than the one it would act on (%s): the "
		                "user is named right after the action ('Disable jane@contoso.com'), else it is the ticket's "
		                "contact; one user per ticket", other, t.label);
	if (!why && t.tenant)   /* the user is known: the policy decides */
		why = ticket_policy(r, ti, &t, action, tk->customer_id, tk->contact_id);
	if (r->o->dry_run) {
		if (why) say(r, "ticket %lld: dry run: would not act: %s", tk->id, why);
		else say(r, "ticket %lld: dry run: would %s %s (%s) (needs %s)", tk->id, action, t.label,
		         actions_tenant_label(t.tenant), graph_action_permission((enum graph_action)ga));
		goto out;
	}
	bool claimed = false;
	struct store_ticket_action row = {
		.ticket_id = tk->id, .customer_id = tk->customer_id, .contact_id = tk->contact_id,
		.tenant_id = t.tenant ? t.tenant->id : NULL, .object_id = t.object_id, .label = t.label, .action = action,
		.state = why ? "acted" : "intent", .outcome = why ? "refused" : NULL, .message = why };
	if (store_ticket_action_claim(r->sa, &row, &claimed, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", tk->id, err.msg);
		goto out;
	}
	if (!claimed) {
		r->rep->already++;
		goto out;
	}
	if (why) {
		char *res = xasprintf("refused: %s", why);
		if (!t.link.contact_id) t.link.contact_id = tk->contact_id;
		ticket_audit(r, tk->id, &t, action, NULL, NULL, res);
		free(res);
		ticket_outcome(r, tk->id, "refused", why, false);
		goto out;
	}
	struct store_ticket_action a;
	if (store_ticket_action_get(r->sa, tk->id, &a, &err) != 0) {
		log_error("actions.ticket", "ticket %lld: %s", tk->id, err.msg);
		goto out;
	}
	ticket_act(r, &a, &t, false);
	store_ticket_action_free(&a);
out:
	free(why);
	free(object_id);
	actions_target_free(&t);
}

/* ---- the run ----------------------------------------------------------------- */

/* Is the ticket of Syncro customer customer_id one the run may take
 * (o->tenants: a selected tenant has that customer)? */
static bool customer_selected(struct run *r, long long customer_id)
{
	if (!r->o->tenants) return true;
	for (size_t i = 0; i < r->env->cfg->ntenants; i++)
		if (r->o->tenants[i] && tenant_customer(r, &r->env->cfg->tenants[i]) == customer_id) return true;
	return false;
}

/* Is config tenant tenant_id (a ticket left pending for it) among the run's? */
static bool tenant_selected(struct run *r, const char *tenant_id)
{
	if (!r->o->tenants || !tenant_id) return true;
	size_t i;
	return tenant_by_id(r->env->cfg, tenant_id, &i) && r->o->tenants[i];
}

int actions_process_tickets(const struct actions_env *env, const struct actions_ticket_opts *o,
                            struct actions_ticket_report *rep, struct err *err)
{
	memset(rep, 0, sizeof *rep);
	if (!o->problem_type || !*o->problem_type) return err_set(err, "tickets: no problem type configured");
	if (!env->sc || !env->gc || !env->engine) return err_set(err, "tickets: needs the Syncro and Graph clients");
	struct run r = { .env = env, .o = o, .rep = rep };
	size_t n = env->cfg->ntenants;
	r.hooks = xcalloc(n + 1, sizeof *r.hooks);
	r.hook_errors = xcalloc(n + 1, sizeof *r.hook_errors);
	struct syncro_open_tickets list = { 0 };
	struct buf ids = {0};
	int rc = -1;
	if (!(r.tickets = syncro_resource_new(env->sc, SYNCRO_TICKET_PERMISSIONS, err))) goto out;
	if (store_actions_open(env->st, &r.sa, err) != 0) goto out;
	if (store_ticket_action_each_open(r.sa, collect_open, &ids, err) < 0) goto out;
	for (size_t i = 0; i + sizeof(long long) <= ids.len; i += sizeof(long long)) {
		long long id;
		memcpy(&id, ids.data + i, sizeof id);
		struct store_ticket_action a;
		if (store_ticket_action_get(r.sa, id, &a, err) != 0) goto out;
		if (!tenant_selected(&r, a.tenant_id)) {
			/* another tenant's: its own run */
		} else if (o->dry_run) {
			/* said, and counted: the real run takes them up first */
			rep->pending++;
			say(&r, "ticket %lld: dry run: left from an earlier run (%s of %s, state %s, attempt %lld): would "
			    "check the user's state, then finish it", a.ticket_id, a.action, a.label ? a.label : "?", a.state,
			    a.attempts);
		} else {
			ticket_resume(&r, &a);
		}
		store_ticket_action_free(&a);
	}
	enum syncro_result sr = syncro_open_tickets_list(env->sc, o->open_status ? o->open_status : DEFAULT_OPEN_STATUS,
	                                                 o->problem_type, &list, err);
	if (sr != SYNCRO_OK) {
		err_prefix(err, "tickets of problem type '%s'", o->problem_type);
		goto out;
	}
	for (size_t i = 0; i < list.n && !shutdown_requested(); i++) {   /* a stop: the next run takes the rest */
		const struct syncro_open_ticket *tk = &list.items[i];
		if (!customer_selected(&r, tk->customer_id)) continue;   /* another tenant's: its own run */
		rep->seen++;
		struct store_ticket_action a;
		int got = store_ticket_action_get(r.sa, tk->id, &a, err);
		if (got < 0) goto out;
		if (got == 0) {
			if (!resumed_now(&ids, tk->id)) rep->already++;   /* else counted by its resume */
			store_ticket_action_free(&a);
			continue;
		}
		ticket_new(&r, tk);
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) {
		actions_hooks_free(r.hooks[i]);
		free(r.hook_errors[i]);
	}
	free(r.hooks);
	free(r.hook_errors);
	buf_free(&ids);
	syncro_open_tickets_free(&list);
	syncro_resource_free(r.tickets);
	store_actions_close(r.sa);
	return rc;
}
