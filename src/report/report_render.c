/* report_render — the text renderings of a report (see report.h): a table
 * for an 80-column terminal, CSV with the fixed headers, and JSON. */
#include "report/report.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* license_day (each tenant's newest snapshot day) was added last, so that readers of the older columns
 * by position read on */
#define LICENSES_CSV_HEADER \
	"tenant_id,tenant_name,sku_id,sku_part_number,sku_name,purchased,assigned,available,license_day\n"
#define USERS_CSV_HEADER "tenant_id,tenant_name,user_id,user_principal_name,display_name,skus\n"
#define SCORES_CSV_HEADER "tenant_id,tenant_name,date,current_score,max_score,percent\n"
#define FINDINGS_CSV_HEADER "tenant_id,tenant_name,severity,kind,sku_id,sku_name,user_principal_name,count,days,message\n"

/* ---- helpers ---------------------------------------------------------------------- */

/* Index just past the code point starting at s[i]. */
static size_t utf8_next(const char *s, size_t i)
{
	if (!s[i]) return i;
	i++;
	while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
	return i;
}

/* Columns of s (code points; every one counts as one column). */
static int utf8_width(const char *s)
{
	int w = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80) w++;
	return w;
}

void report_cell(struct buf *out, const char *text, int width, bool right)
{
	struct buf safe = { 0 };        /* names are the customer's text: no control character reaches the terminal */
	buf_add_term(&safe, text ? text : "");
	const char *s = safe.data ? safe.data : "";
	int w = utf8_width(s);
	if (w > width) {                 /* cut at a code point, mark with '~' */
		size_t i = 0;
		for (int col = 0; col < width - 1 && s[i]; col++) i = utf8_next(s, i);
		buf_add(out, s, i);
		buf_addc(out, '~');
	} else {
		if (right)
			for (int k = w; k < width; k++) buf_addc(out, ' ');
		buf_adds(out, s);
		if (!right)
			for (int k = w; k < width; k++) buf_addc(out, ' ');
	}
	buf_free(&safe);
}

void report_csv_field(struct buf *out, const char *text)
{
	if (!text) return;
	/* a cell a spreadsheet would take for a formula starts with a quote (OWASP's CSV injection advice) */
	bool formula = strchr("=+-@\t\r", text[0]) != NULL && text[0] != '\0';
	struct buf safe = { 0 };
	if (formula) buf_addc(&safe, '\'');
	buf_add_term(&safe, text);       /* and no control character: a CSV is printed on terminals too */
	const char *s = safe.data ? safe.data : "";
	if (!formula && !strpbrk(s, ",\"")) {
		buf_adds(out, s);
	} else {
		buf_addc(out, '"');
		for (const char *p = s; *p; p++) {
			if (*p == '"') buf_addc(out, '"');
			buf_addc(out, *p);
		}
		buf_addc(out, '"');
	}
	buf_free(&safe);
}

/* Trailing spaces off the line just written (cells pad to their width). */
static void end_line(struct buf *out)
{
	while (out->len && out->data[out->len - 1] == ' ') out->data[--out->len] = '\0';
	buf_addc(out, '\n');
}

static void fmt_num(char *b, size_t cap, long long v)
{
	snprintf(b, cap, "%lld", v);
}

static void fmt_delta(char *b, size_t cap, bool set, double v)
{
	if (!set) snprintf(b, cap, "-");
	else snprintf(b, cap, "%+.2f", fabs(v) < 0.005 ? 0.0 : v);
}

static const struct report_day *newest(const struct report_tenant *t)
{
	return t->ndays ? &t->days[t->ndays - 1] : NULL;
}

/* The first day index shown for the --days window: days after the newest
 * day of all tenants minus N. */
static void window_start(const struct report *r, const struct report_opts *o, char out[11])
{
	out[0] = '\0';
	if (o->kind != REPORT_SECURESCORE || o->days <= 0) return;
	char max[11] = "";
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_day *d = newest(&r->tenants[i]);
		if (d && strcmp(d->date, max) > 0) snprintf(max, sizeof max, "%s", d->date);
	}
	if (!max[0]) return;
	int y, m, dd;
	if (sscanf(max, "%4d-%2d-%2d", &y, &m, &dd) != 3) return;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = dd - o->days + 1, .tm_hour = 12 };
	time_t t = timegm(&tm);
	struct tm g;
	gmtime_r(&t, &g);
	strftime(out, 11, "%Y-%m-%d", &g);
}

/* ---- table ------------------------------------------------------------------------ */

static void wrapped(struct buf *out, const char *text, int width, int indent);

/* The newest licence snapshot day of the report's tenants ("" when none
 * has one). */
static void newest_license_day(const struct report *r, char out[11])
{
	out[0] = '\0';
	for (size_t i = 0; i < r->ntenants; i++) {
		const char *d = r->tenants[i].license_day;
		if (d && strcmp(d, out) > 0) snprintf(out, 11, "%s", d);
	}
}

/* The tenant column of the licence and Secure Score tables: name, with a
 * '*' after it when marked (its counts or score are of an older day than
 * the others'). */
static void tenant_cell(struct buf *out, const char *name, bool marked)
{
	if (!marked) {
		report_cell(out, name, 16, false);
		return;
	}
	struct buf b = { 0 };
	report_cell(&b, name, 15, false);
	while (b.len && b.data[b.len - 1] == ' ') b.data[--b.len] = '\0';
	buf_addc(&b, '*');
	report_cell(out, b.data, 16, false);
	buf_free(&b);
}

/* The licence table: every tenant's SKUs on its newest snapshot day. A
 * tenant whose newest day is older than the report's newest (its pulls
 * have failed since) is marked '*' and named with its day under the
 * table; a tenant with no snapshot is a line of its own. */
static void table_licenses(const struct report *r, const struct report_opts *o, struct buf *out)
{
	char a[32], b[32], c[32], d[32], newest[11];
	newest_license_day(r, newest);
	report_cell(out, "TENANT", 16, false);
	buf_addc(out, ' ');
	report_cell(out, "LICENCE", 28, false);
	buf_adds(out, " PURCH  ASSIGN  AVAIL   USED%");
	end_line(out);
	struct buf older = { 0 };
	for (size_t i = 0; newest[0] && i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		bool stale = t->license_day && strcmp(t->license_day, newest) < 0;
		if (stale) buf_printf(&older, "%s%s %s", older.len ? ", " : "", t->name, t->license_day);
		if (t->nskus == 0) {
			tenant_cell(out, t->name, stale);
			buf_adds(out, t->license_day ? " (every licence hidden by the policy)" : " (no licence snapshot yet)");
			end_line(out);
		}
		for (size_t k = 0; k < t->nskus; k++) {
			const struct report_sku *s = &t->skus[k];
			tenant_cell(out, k == 0 ? t->name : "", k == 0 && stale);
			buf_addc(out, ' ');
			report_cell(out, s->name, 28, false);
			fmt_num(a, sizeof a, s->purchased);
			fmt_num(b, sizeof b, s->assigned);
			fmt_num(c, sizeof c, s->available);
			if (s->purchased > 0) snprintf(d, sizeof d, "%.2f", 100.0 * (double)s->assigned / (double)s->purchased);
			else snprintf(d, sizeof d, "-");
			buf_addc(out, ' ');
			report_cell(out, a, 6, true);
			buf_addc(out, ' ');
			report_cell(out, b, 7, true);
			buf_addc(out, ' ');
			report_cell(out, c, 6, true);
			buf_addc(out, ' ');
			report_cell(out, d, 7, true);
			end_line(out);
		}
	}
	if (!newest[0]) {
		buf_adds(out, "(no licence snapshot: run 'entrasync pull' first)\n");
	} else {
		buf_printf(out, "Counts of %s, the newest snapshot day.\n", newest);
		if (older.len) {
			char *line = xasprintf("* counts of an older day (no snapshot since): %s.", older.data);
			wrapped(out, line, 80, 2);
			free(line);
		}
	}
	buf_free(&older);
	if (!o->by_user) return;
	buf_addc(out, '\n');
	report_cell(out, "TENANT", 16, false);
	buf_addc(out, ' ');
	report_cell(out, "USER", 32, false);
	buf_adds(out, " LICENCES");
	end_line(out);
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		for (size_t k = 0; k < t->nusers; k++) {
			const struct report_user *u = &t->users[k];
			struct buf names = {0};
			for (size_t j = 0; j < u->nskus; j++) buf_printf(&names, "%s%s", j ? ", " : "", u->skus[j]);
			if (u->removed) buf_adds(&names, " [deleted]");
			else if (!u->enabled) buf_adds(&names, " [disabled]");
			report_cell(out, k == 0 ? t->name : "", 16, false);
			buf_addc(out, ' ');
			report_cell(out, u->upn ? u->upn : u->object_id, 32, false);
			buf_addc(out, ' ');
			report_cell(out, names.data, 80 - 16 - 32 - 3, false);
			end_line(out);
			buf_free(&names);
		}
	}
}

static void table_scores(const struct report *r, const struct report_opts *o, struct buf *out)
{
	char cur[32], pct[32], dl[REPORT_NTRENDS][32];
	buf_adds(out, "  # ");
	report_cell(out, "TENANT", 16, false);
	buf_adds(out, " DATE         SCORE     PCT      7d     30d     90d     all");
	end_line(out);
	size_t rows = 0;
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		const struct report_day *d = newest(t);
		if (!d) {               /* ranked last: a line of its own, so the missing are seen */
			if (r->tenants[0].ndays) {
				buf_adds(out, "    ");
				report_cell(out, t->name, 16, false);
				buf_adds(out, " (no Secure Score yet)");
				end_line(out);
			}
			continue;
		}
		snprintf(cur, sizeof cur, "%3d ", t->rank);
		buf_adds(out, cur);
		tenant_cell(out, t->name, t->score_stale);
		buf_addc(out, ' ');
		report_cell(out, d->date, 10, false);
		snprintf(cur, sizeof cur, "%.2f", d->current);
		snprintf(pct, sizeof pct, "%.2f", report_percent(d->current, d->max));
		buf_addc(out, ' ');
		report_cell(out, cur, 7, true);
		buf_addc(out, ' ');
		report_cell(out, pct, 7, true);
		for (int k = 0; k < REPORT_NTRENDS; k++) {
			fmt_delta(dl[k], sizeof dl[k], t->trend_set[k], t->trend[k]);
			buf_addc(out, ' ');
			report_cell(out, dl[k], 7, true);
		}
		end_line(out);
		rows++;
	}
	if (!rows) {
		buf_adds(out, "(no Secure Score stored: run 'entrasync pull' first)\n");
		return;
	}
	/* where "all" starts: the earliest first day, and the tenants whose history starts later */
	const char *first = NULL;
	for (size_t i = 0; i < r->ntenants; i++)
		if (r->tenants[i].ndays && (!first || strcmp(r->tenants[i].days[0].date, first) < 0))
			first = r->tenants[i].days[0].date;
	struct buf later = { 0 };
	for (size_t i = 0; i < r->ntenants; i++)
		if (r->tenants[i].ndays && strcmp(r->tenants[i].days[0].date, first) != 0)
			buf_printf(&later, "%s%s: %s", later.len ? ", " : "", r->tenants[i].name, r->tenants[i].days[0].date);
	buf_adds(out, "PCT = current / max x 100; 7d..all = change in percentage points;\n");
	char *line = xasprintf("all = since the first stored day, %s%s%s%s.", first, later.len ? " (" : "",
	                       later.len ? later.data : "", later.len ? ")" : "");
	wrapped(out, line, 80, 2);
	free(line);
	buf_free(&later);
	struct buf older = { 0 };
	for (size_t i = 0; i < r->ntenants; i++)
		if (r->tenants[i].score_stale)
			buf_printf(&older, "%s%s %s", older.len ? ", " : "", r->tenants[i].name, newest(&r->tenants[i])->date);
	if (older.len) {
		line = xasprintf("* score of an older day (none stored since: see 'entrasync status'): %s.",
		                 older.data);
		wrapped(out, line, 80, 2);
		free(line);
	}
	buf_free(&older);
	if (!o->tenants && o->days <= 0 && !o->controls) return;
	char from[11];
	window_start(r, o, from);
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		if (!t->ndays) continue;
		buf_addc(out, '\n');
		report_cell(out, t->name, 80, false);
		end_line(out);
		if ((o->tenants || o->days > 0) && from[0] && strcmp(newest(t)->date, from) < 0) {
			buf_printf(out, "(no Secure Score in the last %d days: the newest is of %s)\n", o->days, newest(t)->date);
		} else if (o->tenants || o->days > 0) {
			buf_adds(out, "DATE          CURRENT       MAX   PERCENT\n");
			for (size_t k = 0; k < t->ndays; k++) {
				const struct report_day *d = &t->days[k];
				if (from[0] && strcmp(d->date, from) < 0) continue;
				buf_printf(out, "%-10s %10.2f %9.2f %9.2f\n", d->date, d->current, d->max,
				           report_percent(d->current, d->max));
			}
		}
		if (o->controls && t->ncontrols) {
			buf_adds(out, "CONTROL                                              SCORE       MAX\n");
			for (size_t k = 0; k < t->ncontrols; k++) {
				const struct report_control *c = &t->controls[k];
				char s[32], m[32];
				report_cell(out, c->title ? c->title : c->name, 50, false);
				snprintf(s, sizeof s, "%.2f", c->score);
				if (c->max > 0) snprintf(m, sizeof m, "%.2f", c->max);
				else snprintf(m, sizeof m, "-");
				buf_addc(out, ' ');
				report_cell(out, s, 9, true);
				buf_addc(out, ' ');
				report_cell(out, m, 9, true);
				end_line(out);
			}
		}
	}
}

static const char *tenant_name(const struct report *r, const char *id)
{
	for (size_t i = 0; i < r->ntenants; i++)
		if (strcmp(r->tenants[i].id, id) == 0) return r->tenants[i].name;
	return id;
}

/* Message text wrapped at width, continuation lines indented by indent
 * (control characters shown as '?': messages hold the customer's names). */
static void wrapped(struct buf *out, const char *text, int width, int indent)
{
	char *safe = str_term_safe(text ? text : "");
	const char *s = safe;
	while (*s) {
		size_t len = strlen(s), cut = len;
		if (utf8_width(s) > width) {
			/* the last space within width columns */
			size_t i = 0, last_space = 0;
			for (int col = 0; col < width && s[i]; col++) {
				if (s[i] == ' ') last_space = i;
				i = utf8_next(s, i);
			}
			cut = last_space ? last_space : i;
		}
		buf_add(out, s, cut);
		buf_addc(out, '\n');
		s += cut;
		while (*s == ' ') s++;
		if (*s)
			for (int k = 0; k < indent; k++) buf_addc(out, ' ');
	}
	free(safe);
}

static void table_findings(const struct report *r, struct buf *out)
{
	buf_adds(out, "SEV   ");
	report_cell(out, "TENANT", 16, false);
	buf_adds(out, " FINDING");
	end_line(out);
	for (size_t i = 0; i < r->findings.n; i++) {
		const struct finding *f = &r->findings.v[i];
		report_cell(out, finding_severity_name(f->severity), 5, false);
		buf_addc(out, ' ');
		report_cell(out, tenant_name(r, f->tenant_id), 16, false);
		buf_addc(out, ' ');
		wrapped(out, f->message, 80 - 23, 23);
	}
	if (!r->findings.n) buf_adds(out, "(no findings)\n");
	else buf_printf(out, "%zu finding%s; unused = seats free for %d day%s in a row or more.\n", r->findings.n,
	                r->findings.n == 1 ? "" : "s", r->unused_days, r->unused_days == 1 ? "" : "s");
}

void report_render_table(const struct report *r, const struct report_opts *o, struct buf *out)
{
	switch (o->kind) {
	case REPORT_LICENSES: table_licenses(r, o, out); break;
	case REPORT_SECURESCORE: table_scores(r, o, out); break;
	case REPORT_FINDINGS: table_findings(r, out); break;
	}
	for (size_t i = 0; i < r->ntenants; i++)
		if (r->tenants[i].hook_error) {         /* wrapped to 80 columns like the findings */
			char *line = xasprintf("policy hook error (%s): %s", r->tenants[i].name, r->tenants[i].hook_error);
			wrapped(out, line, 78, 2);
			free(line);
		}
}

/* ---- CSV ------------------------------------------------------------------------- */

static void csv_tenant(struct buf *out, const struct report_tenant *t)
{
	report_csv_field(out, t->id);
	buf_addc(out, ',');
	report_csv_field(out, t->name);
	buf_addc(out, ',');
}

/* The licence holders' CSV table: a row per user, their SKUs' names joined by "; ". */
static void csv_users(struct buf *out, const struct report *r)
{
	buf_adds(out, USERS_CSV_HEADER);
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		for (size_t k = 0; k < t->nusers; k++) {
			const struct report_user *u = &t->users[k];
			struct buf names = {0};
			for (size_t j = 0; j < u->nskus; j++) buf_printf(&names, "%s%s", j ? "; " : "", u->skus[j]);
			csv_tenant(out, t);
			report_csv_field(out, u->object_id);
			buf_addc(out, ',');
			report_csv_field(out, u->upn);
			buf_addc(out, ',');
			report_csv_field(out, u->display_name);
			buf_addc(out, ',');
			report_csv_field(out, names.data);
			buf_addc(out, '\n');
			buf_free(&names);
		}
	}
}

void report_render_csv(const struct report *r, const struct report_opts *o, struct buf *out)
{
	if (o->kind == REPORT_LICENSES) {
		/* one table a CSV file (a spreadsheet imports one): --by-user gives the users' */
		if (o->by_user) {
			csv_users(out, r);
			return;
		}
		buf_adds(out, LICENSES_CSV_HEADER);
		for (size_t i = 0; i < r->ntenants; i++) {
			const struct report_tenant *t = &r->tenants[i];
			const char *day = t->license_day ? t->license_day : "";
			if (t->nskus == 0) {          /* no snapshot (or nothing shown): a row without a SKU */
				csv_tenant(out, t);
				buf_printf(out, ",,,,,,%s\n", day);
			}
			for (size_t k = 0; k < t->nskus; k++) {
				const struct report_sku *s = &t->skus[k];
				csv_tenant(out, t);
				report_csv_field(out, s->sku_id);
				buf_addc(out, ',');
				report_csv_field(out, s->part);
				buf_addc(out, ',');
				report_csv_field(out, s->name);
				buf_printf(out, ",%lld,%lld,%lld,%s\n", s->purchased, s->assigned, s->available, day);
			}
		}
		return;
	}
	if (o->kind == REPORT_SECURESCORE) {
		char from[11];
		window_start(r, o, from);
		buf_adds(out, SCORES_CSV_HEADER);
		for (size_t i = 0; i < r->ntenants; i++) {
			const struct report_tenant *t = &r->tenants[i];
			/* no score yet, or none in the --days window: a row with only its id and name (as JSON's "days": []) */
			if (t->ndays == 0 || (from[0] && strcmp(newest(t)->date, from) < 0)) {
				csv_tenant(out, t);
				buf_adds(out, ",,,\n");
			}
			for (size_t k = 0; k < t->ndays; k++) {
				const struct report_day *d = &t->days[k];
				if (from[0] && strcmp(d->date, from) < 0) continue;
				csv_tenant(out, t);            /* "%s,%.2f,%.2f,%.2f\n" without printf */
				buf_adds(out, d->date);
				buf_addc(out, ',');
				report_add_fixed(out, d->current, 2);
				buf_addc(out, ',');
				report_add_fixed(out, d->max, 2);
				buf_addc(out, ',');
				report_add_fixed(out, report_percent(d->current, d->max), 2);
				buf_addc(out, '\n');
			}
		}
		return;
	}
	buf_adds(out, FINDINGS_CSV_HEADER);
	for (size_t i = 0; i < r->findings.n; i++) {
		const struct finding *f = &r->findings.v[i];
		report_csv_field(out, f->tenant_id);
		buf_addc(out, ',');
		report_csv_field(out, tenant_name(r, f->tenant_id));
		buf_printf(out, ",%s,%s,", finding_severity_name(f->severity), finding_kind_name(f->kind));
		report_csv_field(out, f->sku_id);
		buf_addc(out, ',');
		report_csv_field(out, f->sku_name);
		buf_addc(out, ',');
		report_csv_field(out, f->upn);
		buf_printf(out, ",%lld,%d,", f->count, f->days);
		report_csv_field(out, f->message);
		buf_addc(out, '\n');
	}
}

/* ---- JSON ------------------------------------------------------------------------- */

static double round2(double v)
{
	return round(v * 100.0) / 100.0;
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v) cJSON_AddStringToObject(o, k, v);
	else cJSON_AddNullToObject(o, k);
}

static cJSON *json_day(const struct report_day *d)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "date", d->date);
	cJSON_AddNumberToObject(j, "current", d->current);
	cJSON_AddNumberToObject(j, "max", d->max);
	cJSON_AddNumberToObject(j, "percent", round2(report_percent(d->current, d->max)));
	return j;
}

static cJSON *json_scores(const struct report_tenant *t, const char *from)
{
	cJSON *s = cJSON_CreateObject();
	const struct report_day *d = newest(t);
	if (d) cJSON_AddItemToObject(s, "latest", json_day(d));
	else cJSON_AddNullToObject(s, "latest");
	cJSON_AddNumberToObject(s, "rank", t->rank);
	cJSON_AddBoolToObject(s, "stale", t->score_stale);
	cJSON_AddNumberToObject(s, "days_tracked", (double)t->ndays);
	add_str(s, "tracking_since", t->ndays ? t->days[0].date : NULL);
	static const char *const names[REPORT_NTRENDS] = { "d7", "d30", "d90", "all" };
	cJSON *tr = cJSON_AddObjectToObject(s, "trends");
	for (int k = 0; k < REPORT_NTRENDS; k++) {
		if (t->trend_set[k]) cJSON_AddNumberToObject(tr, names[k], round2(t->trend[k]));
		else cJSON_AddNullToObject(tr, names[k]);
	}
	cJSON *av = cJSON_AddObjectToObject(s, "averages");
	if (t->avg_all_tenants >= 0) cJSON_AddNumberToObject(av, "all_tenants", t->avg_all_tenants);
	if (t->avg_similar_seats >= 0) cJSON_AddNumberToObject(av, "total_seats", t->avg_similar_seats);
	/* the days as raw text: a cJSON object per day is most of the time for
	 * 1,000 tenants x 365 days */
	struct buf days = {0};
	buf_addc(&days, '[');
	for (size_t k = 0; k < t->ndays; k++) {
		const struct report_day *dy = &t->days[k];
		if (from[0] && strcmp(dy->date, from) < 0) continue;
		buf_printf(&days, "%s{\"date\":\"%s\",\"current\":%.15g,\"max\":%.15g,\"percent\":%.15g}",
		           days.len > 1 ? "," : "", dy->date, dy->current, dy->max, round2(report_percent(dy->current, dy->max)));
	}
	buf_addc(&days, ']');
	cJSON_AddItemToObject(s, "days", cJSON_CreateRaw(days.data));
	buf_free(&days);
	if (t->ncontrols) {
		cJSON *cs = cJSON_AddArrayToObject(s, "controls");
		for (size_t k = 0; k < t->ncontrols; k++) {
			const struct report_control *c = &t->controls[k];
			cJSON *x = cJSON_CreateObject();
			cJSON_AddStringToObject(x, "name", c->name);
			add_str(x, "title", c->title);
			add_str(x, "category", c->category);
			cJSON_AddNumberToObject(x, "score", c->score);
			if (c->max > 0) cJSON_AddNumberToObject(x, "max", c->max);
			cJSON_AddItemToArray(cs, x);
		}
	}
	add_str(s, "alert", t->alert);
	return s;
}

static cJSON *json_sku(const struct report_sku *s)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "sku_id", s->sku_id);
	add_str(j, "sku_part_number", s->part);
	cJSON_AddStringToObject(j, "sku_name", s->name);
	cJSON_AddBoolToObject(j, "known_sku", s->known);
	add_str(j, "group", s->group);
	cJSON_AddNumberToObject(j, "purchased", (double)s->purchased);
	cJSON_AddNumberToObject(j, "assigned", (double)s->assigned);
	cJSON_AddNumberToObject(j, "available", (double)s->available);
	cJSON_AddNumberToObject(j, "suspended", (double)s->suspended);
	cJSON_AddNumberToObject(j, "warning", (double)s->warning);
	cJSON_AddNumberToObject(j, "locked_out", (double)s->locked_out);
	add_str(j, "status", s->status);
	cJSON_AddNumberToObject(j, "unused_days", s->unused_days);
	cJSON_AddNumberToObject(j, "unused_snapshots", s->unused_snapshots);
	cJSON_AddBoolToObject(j, "billable", s->billable);
	if (s->unit_price_set) {
		cJSON_AddNumberToObject(j, "unit_price", s->unit_price);
		cJSON_AddNumberToObject(j, "monthly_cost", round2(s->unit_price * (double)s->purchased));
	}
	return j;
}

int report_render_json(const struct report *r, const struct report_opts *o, struct buf *out, struct err *err)
{
	char from[11];
	window_start(r, o, from);
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "report", report_kind_name(o->kind));
	cJSON_AddStringToObject(root, "generated_at", r->generated_at);
	if (o->kind != REPORT_SECURESCORE) cJSON_AddNumberToObject(root, "unused_days_threshold", r->unused_days);
	cJSON *ts = cJSON_AddArrayToObject(root, "tenants");
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "tenant_id", t->id);
		cJSON_AddStringToObject(j, "tenant_name", t->name);
		if (o->kind != REPORT_SECURESCORE) {
			add_str(j, "license_day", t->license_day);
			cJSON *skus = cJSON_AddArrayToObject(j, "licenses");
			for (size_t k = 0; k < t->nskus; k++) cJSON_AddItemToArray(skus, json_sku(&t->skus[k]));
		}
		if (o->by_user && o->kind == REPORT_LICENSES) {
			cJSON *us = cJSON_AddArrayToObject(j, "users");
			for (size_t k = 0; k < t->nusers; k++) {
				const struct report_user *u = &t->users[k];
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "user_id", u->object_id);
				add_str(x, "user_principal_name", u->upn);
				add_str(x, "display_name", u->display_name);
				cJSON_AddBoolToObject(x, "enabled", u->enabled);
				add_str(x, "removed", u->removed);
				cJSON *sk = cJSON_AddArrayToObject(x, "skus");
				for (size_t m = 0; m < u->nskus; m++) cJSON_AddItemToArray(sk, cJSON_CreateString(u->skus[m]));
				cJSON_AddItemToArray(us, x);
			}
		}
		if (o->kind != REPORT_LICENSES) cJSON_AddItemToObject(j, "secure_score", json_scores(t, from));
		add_str(j, "policy_error", t->hook_error);
		cJSON_AddItemToArray(ts, j);
	}
	cJSON *fs = cJSON_AddArrayToObject(root, "findings");
	for (size_t i = 0; i < r->findings.n; i++) {
		const struct finding *f = &r->findings.v[i];
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "tenant_id", f->tenant_id);
		cJSON_AddStringToObject(x, "kind", finding_kind_name(f->kind));
		cJSON_AddStringToObject(x, "severity", finding_severity_name(f->severity));
		add_str(x, "sku_id", f->sku_id);
		add_str(x, "sku_name", f->sku_name);
		add_str(x, "user_id", f->user_id);
		add_str(x, "user_principal_name", f->upn);
		cJSON_AddNumberToObject(x, "count", (double)f->count);
		if (f->kind == FINDING_UNUSED) {
			cJSON_AddNumberToObject(x, "days", f->days);
			cJSON_AddNumberToObject(x, "snapshots", f->snapshots);
		}
		cJSON_AddStringToObject(x, "message", f->message);
		cJSON_AddItemToArray(fs, x);
	}
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text) return err_set(err, "report: out of memory rendering JSON");
	buf_adds(out, text);
	buf_addc(out, '\n');
	cJSON_free(text);
	return 0;
}
