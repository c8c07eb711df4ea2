/* findings — the licence finding rules (see findings.h). */
#include "report/findings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "util/when.h"

static const char *const kind_names[FINDING_NKINDS] = {
	[FINDING_UNUSED] = "unused",
	[FINDING_OVER_ASSIGNED] = "over_assigned",
	[FINDING_DISABLED_USER] = "disabled_user",
	[FINDING_DELETED_USER] = "deleted_user",
	[FINDING_WARNING] = "warning",
	[FINDING_SUSPENDED] = "suspended",
	[FINDING_LOCKED_OUT] = "locked_out",
	[FINDING_SCORE_ALERT] = "score_alert",
	[FINDING_FAILING] = "failing",
};

const char *finding_kind_name(enum finding_kind k)
{
	return (unsigned)k < FINDING_NKINDS ? kind_names[k] : "?";
}

const char *finding_severity_name(enum finding_severity s)
{
	switch (s) {
	case FINDING_INFO: return "info";
	case FINDING_WARN: return "warn";
	case FINDING_CRIT: return "crit";
	}
	return "?";
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Appends a finding; message is taken over (already allocated). */
static struct finding *add(struct findings *f, enum finding_kind kind, enum finding_severity sev,
                           const char *tenant_id, char *message)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->v = xrealloc(f->v, f->cap * sizeof *f->v);
	}
	struct finding *x = &f->v[f->n++];
	memset(x, 0, sizeof *x);
	x->kind = kind;
	x->severity = sev;
	x->tenant_id = xstrdup(tenant_id);
	x->message = message;
	return x;
}

static struct finding *add_sku(struct findings *f, enum finding_kind kind, enum finding_severity sev,
                               const char *tenant_id, const struct findings_sku *s, long long count,
                               char *message)
{
	struct finding *x = add(f, kind, sev, tenant_id, message);
	x->sku_id = dup_or_null(s->sku_id);
	x->sku_name = dup_or_null(s->name);
	x->count = count;
	return x;
}

static const char *plural(long long n)
{
	return n == 1 ? "" : "s";
}

void findings_check_sku(struct findings *f, const char *tenant_id, const struct findings_sku *s,
                        int unused_threshold)
{
	const char *name = s->name ? s->name : s->sku_id;
	long long available = s->purchased - s->assigned;
	if (s->billable && unused_threshold > 0 && available > 0 && s->unused_days >= unused_threshold) {
		/* the run's days had fewer free seats than today: say how many were free all along */
		bool fewer = s->unused_least > 0 && s->unused_least < available;
		/* days of the run without a snapshot: the evidence is the snapshots, said as such */
		int snaps = s->unused_snapshots > 0 && s->unused_snapshots < s->unused_days ? s->unused_snapshots : 0;
		char during[96];
		if (snaps)
			snprintf(during, sizeof during, "in all %d snapshot%s over %d day%s", snaps, plural(snaps),
			         s->unused_days, plural(s->unused_days));
		else
			snprintf(during, sizeof during, "for %d day%s in a row", s->unused_days, plural(s->unused_days));
		char *message = fewer ? xasprintf("%s: %lld of %lld seat%s unused, at least %lld of them %s", name, available,
		                                  s->purchased, plural(s->purchased), s->unused_least, during)
		                      : xasprintf("%s: %lld of %lld seat%s unused %s", name, available, s->purchased,
		                                  plural(s->purchased), during);
		struct finding *x = add_sku(f, FINDING_UNUSED, FINDING_WARN, tenant_id, s, available, message);
		x->days = s->unused_days;
		x->snapshots = snaps ? snaps : s->unused_days;
		x->alert_text = xasprintf("%s: %lld of %lld seat%s unused", name, available, s->purchased,
		                          plural(s->purchased));
	}
	/* seats in the grace period still work: only more than enabled + grace is over-assigned */
	long long usable = s->purchased + (s->warning > 0 ? s->warning : 0);
	if (s->assigned > usable && s->warning > 0)
		add_sku(f, FINDING_OVER_ASSIGNED, FINDING_CRIT, tenant_id, s, s->assigned - usable,
		        xasprintf("%s: %lld seat%s assigned, only %lld usable (%lld purchased, %lld in the grace period): "
		                  "%lld over", name, s->assigned, plural(s->assigned), usable, s->purchased, s->warning,
		                  s->assigned - usable));
	else if (s->assigned > usable)
		add_sku(f, FINDING_OVER_ASSIGNED, FINDING_CRIT, tenant_id, s, s->assigned - usable,
		        xasprintf("%s: %lld seat%s assigned, only %lld purchased (%lld over)", name, s->assigned,
		                  plural(s->assigned), s->purchased, s->assigned - usable));
	if (s->warning > 0)
		add_sku(f, FINDING_WARNING, FINDING_WARN, tenant_id, s, s->warning,
		        xasprintf("%s: %lld seat%s in the grace period (expiring: renew or they are suspended)", name,
		                  s->warning, plural(s->warning)));
	if (s->suspended > 0)
		add_sku(f, FINDING_SUSPENDED, FINDING_CRIT, tenant_id, s, s->suspended,
		        xasprintf("%s: %lld seat%s suspended (unusable, data kept)", name, s->suspended,
		                  plural(s->suspended)));
	if (s->locked_out > 0)
		add_sku(f, FINDING_LOCKED_OUT, FINDING_CRIT, tenant_id, s, s->locked_out,
		        xasprintf("%s: %lld seat%s locked out", name, s->locked_out, plural(s->locked_out)));
}

void findings_mark_day(struct findings *f, size_t from, const char *day)
{
	for (size_t i = from; i < f->n; i++) {
		struct finding *x = &f->v[i];
		if (!x->alert_text) x->alert_text = xstrdup(x->message);   /* an alert compares what it was */
		char *was = x->message;
		x->message = xasprintf("%s (licence counts of %s, the tenant's newest)", was, day);
		free(was);
	}
}

/* "A, B and C" of the user's licence names. */
static void join_names(struct buf *b, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_printf(b, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", names[i]);
}

bool findings_user_gone(const struct findings_user *u)
{
	if (!u->removed) return false;
	if (strcmp(u->removed, "deleted") == 0) return true;
	double at = u->removed_at ? when_parse_iso(u->removed_at) : -1;
	return at >= 0 && u->as_of - at >= FINDINGS_RESTORE_DAYS * 86400.0;
}

void findings_check_user(struct findings *f, const char *tenant_id, const struct findings_user *u)
{
	if (u->nskus == 0 || findings_user_gone(u)) return;
	const char *who = u->upn ? u->upn : u->object_id;
	struct buf b = {0};
	enum finding_kind kind;
	if (u->removed) {
		kind = FINDING_DELETED_USER;
		buf_printf(&b, "deleted user %s was last seen holding ", who);
		join_names(&b, u->skus, u->nskus);
		double at = u->removed_at ? when_parse_iso(u->removed_at) : -1;
		if (at >= 0) {
			char until[16];
			time_day(at + FINDINGS_RESTORE_DAYS * 86400.0, until, sizeof until);
			buf_printf(&b, " (deleted %.10s, restorable until %s)", u->removed_at, until);
		}
	} else if (!u->enabled) {
		kind = FINDING_DISABLED_USER;
		buf_printf(&b, "disabled user %s holds ", who);
		join_names(&b, u->skus, u->nskus);
	} else {
		return;
	}
	struct finding *x = add(f, kind, FINDING_WARN, tenant_id, buf_steal(&b));
	x->user_id = dup_or_null(u->object_id);
	x->upn = dup_or_null(who);
	x->count = (long long)u->nskus;
}

void findings_add_alert(struct findings *f, const char *tenant_id, const char *message)
{
	add(f, FINDING_SCORE_ALERT, FINDING_WARN, tenant_id, xstrdup(message ? message : "Secure Score alert"));
}

/* reason without the " (trace id …)" and " (request-id …)" it may carry,
 * as a new string. */
static char *reason_stable(const char *reason)
{
	static const char *const ids[] = { " (trace id ", " (request-id " };
	struct buf b = { 0 };
	const char *p = reason;
	for (;;) {
		const char *next = NULL;
		for (size_t i = 0; i < ARRAY_LEN(ids); i++) {
			const char *q = strstr(p, ids[i]);
			if (q && (!next || q < next)) next = q;
		}
		const char *close = next ? strchr(next, ')') : NULL;
		if (!close) break;
		buf_add(&b, p, (size_t)(next - p));
		p = close + 1;
	}
	buf_add(&b, p, strlen(p));
	return b.data ? b.data : xstrdup("");
}

void findings_check_failing(struct findings *f, const char *tenant_id, const struct findings_failing *x, double now,
                            int hours)
{
	double since = x->since ? when_parse_iso(x->since) : -1;
	if (hours <= 0 || x->runs <= 0 || since < 0 || now - since < (double)hours * 3600.0) return;
	char *reason = reason_stable(x->reason && *x->reason ? x->reason : "no reason recorded");
	if (x->last_reached)
		add(f, FINDING_FAILING, FINDING_CRIT, tenant_id,
		    xasprintf("entrasync has not pulled or synced this tenant since %s (failing since %s): %s",
		              x->last_reached, x->since, reason));
	else   /* never reached, or the history of it is gone (retention) */
		add(f, FINDING_FAILING, FINDING_CRIT, tenant_id,
		    xasprintf("entrasync has failed to pull or sync this tenant since %s: %s", x->since, reason));
	free(reason);
}

static int cmp_str(const char *a, const char *b)
{
	if (!a || !b) return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int finding_cmp(const void *pa, const void *pb)
{
	const struct finding *a = pa, *b = pb;
	if (a->severity != b->severity) return a->severity > b->severity ? -1 : 1;
	int c = strcmp(a->tenant_id, b->tenant_id);
	if (c) return c;
	if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
	c = cmp_str(a->sku_name, b->sku_name);
	return c ? c : cmp_str(a->upn, b->upn);
}

void findings_sort(struct findings *f)
{
	if (f->n > 1) qsort(f->v, f->n, sizeof *f->v, finding_cmp);
}

void findings_free(struct findings *f)
{
	if (!f) return;
	for (size_t i = 0; i < f->n; i++) {
		struct finding *x = &f->v[i];
		free(x->tenant_id);
		free(x->sku_id);
		free(x->sku_name);
		free(x->user_id);
		free(x->upn);
		free(x->message);
		free(x->alert_text);
	}
	free(f->v);
	memset(f, 0, sizeof *f);
}
