/* report_html — the report as one self-contained HTML page (see report.h):
 * inline CSS, inline SVG charts (a Secure Score trend line per tenant, a
 * ranking with sparklines, licence utilisation bars), the findings. No
 * script, no external font, image or style sheet: it opens offline and
 * prints. */
#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTML_TOP_FINDINGS 25    /* findings listed at the top; the rest per tenant */

void report_html_escape(struct buf *out, const char *s)
{
	for (const char *p = s ? s : ""; *p; p++) {
		switch (*p) {
		case '&': buf_adds(out, "&amp;"); break;
		case '<': buf_adds(out, "&lt;"); break;
		case '>': buf_adds(out, "&gt;"); break;
		case '"': buf_adds(out, "&quot;"); break;
		case '\'': buf_adds(out, "&#39;"); break;
		default: buf_addc(out, *p);
		}
	}
}

static const char css[] =
	":root{--ink:#1d2433;--mute:#5b6475;--line:#e3e7ee;--bg:#f5f7fa;--card:#fff;--acc:#2f6fde;"
	"--good:#1a9b5b;--bad:#d64545;--warn:#d9901a}\n"
	"*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);"
	"font:14px/1.45 system-ui,-apple-system,'Segoe UI','DejaVu Sans',Arial,sans-serif}\n"
	"header{background:#1d2433;color:#fff;padding:28px 40px 24px}header h1{margin:0 0 4px;font-size:24px;"
	"font-weight:600}header p{margin:0;color:#aab3c5}\n"
	"main{padding:24px 40px 48px;max-width:1240px}\n"
	".cards{display:flex;gap:16px;flex-wrap:wrap;margin:-44px 0 24px}.kpi{background:var(--card);"
	"border-radius:10px;padding:14px 18px;min-width:170px;box-shadow:0 1px 3px rgba(0,0,0,.08)}"
	".kpi b{display:block;font-size:24px;font-weight:600;white-space:nowrap}.kpi span{color:var(--mute);font-size:12px;"
	"text-transform:uppercase;letter-spacing:.04em}\n"
	"section{background:var(--card);border-radius:10px;padding:18px 22px;margin:0 0 20px;"
	"box-shadow:0 1px 3px rgba(0,0,0,.08)}h2{font-size:17px;margin:0 0 12px;font-weight:600}"
	"h3{font-size:15px;margin:0 0 8px;font-weight:600}\n"
	"table{border-collapse:collapse;width:100%}th{text-align:left;color:var(--mute);font-weight:600;"
	"font-size:12px;text-transform:uppercase;letter-spacing:.03em;border-bottom:1px solid var(--line);"
	"padding:6px 8px}td{padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:middle}"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.d{white-space:nowrap}"
	"td.msg{overflow-wrap:anywhere}.wide{overflow-x:auto}\n"
	".up{color:var(--good)}.down{color:var(--bad)}.flat{color:var(--mute)}\n"
	".tenant{display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:22px}"
	".sub{color:var(--mute);font-size:12px}\n"
	".bar{position:relative;height:12px;background:#edf0f5;border-radius:6px;overflow:hidden;min-width:120px}"
	".bar i{position:absolute;left:0;top:0;bottom:0;border-radius:6px;background:var(--acc)}"
	".bar i.full{background:var(--warn)}.bar i.over{background:var(--bad)}\n"
	".lic td{padding:5px 6px}.lic td:first-child{width:42%}\n"
	".sev{display:inline-block;border-radius:4px;padding:1px 7px;font-size:11px;font-weight:700;"
	"text-transform:uppercase;color:#fff}.sev.crit{background:var(--bad)}.sev.warn{background:var(--warn)}"
	".sev.info{background:#8a94a6}\n"
	".alert{background:#fff4e5;border-left:4px solid var(--warn);padding:6px 10px;margin:8px 0;border-radius:4px}\n"
	"svg text{font-family:inherit}footer{color:var(--mute);font-size:12px;padding:0 40px 30px}\n"
	"@media (max-width:820px){header{padding:20px 16px 40px}main{padding:16px 10px 32px}section{padding:14px 12px}"
	".tenant{grid-template-columns:minmax(0,1fr)}.kpi{min-width:0;flex:1 1 140px}.opt{display:none}.bar{min-width:60px}"
	".lic td:first-child{width:auto;overflow-wrap:anywhere}"
	"footer{padding:0 16px 24px}}\n"
	"@media print{body{background:#fff}section{box-shadow:none;break-inside:avoid}}\n";

static const struct report_day *newest(const struct report_tenant *t)
{
	return t->ndays ? &t->days[t->ndays - 1] : NULL;
}

static void delta_cell(struct buf *out, bool set, double v)
{
	if (!set) {
		buf_adds(out, "<td class=\"n flat\">&ndash;</td>");
		return;
	}
	if (fabs(v) < 0.005) v = 0;
	buf_printf(out, "<td class=\"n %s\">%s%.2f</td>", v > 0 ? "up" : v < 0 ? "down" : "flat",
	           v > 0 ? "+" : v < 0 ? "&minus;" : "", fabs(v));
}

static double day_x(const char *d)
{
	return (double)report_day_number(d);
}

/* The y range shown and its gridline step: the data's range widened by 5
 * points each way, at least 10 points tall; the step 5, 10 or 20 points
 * as it is tall; then both ends moved out to multiples of the step, within
 * 0..100, so that the gridlines sit on round values and frame the data. */
static void y_range(const struct report_tenant *t, size_t from, double *lo, double *hi, double *step)
{
	double mn = 100, mx = 0;
	for (size_t k = from; k < t->ndays; k++) {
		double p = report_percent(t->days[k].current, t->days[k].max);
		if (p < mn) mn = p;
		if (p > mx) mx = p;
	}
	*lo = floor(mn / 5) * 5 - 5;
	*hi = ceil(mx / 5) * 5 + 5;
	if (*hi - *lo < 10) *hi = *lo + 10;
	if (*lo < 0) *lo = 0;
	if (*hi > 100) *hi = 100;
	*step = (*hi - *lo) > 40 ? 20 : (*hi - *lo) > 20 ? 10 : 5;
	*lo = floor(*lo / *step) * *step;
	*hi = ceil(*hi / *step) * *step;
	if (*hi > 100) *hi = 100;
}

/* Appends prefix and "x,y", each "%.1f" (the charts' hundreds of thousands
 * of points: report_fmt_fixed, not printf). */
static void add_point(struct buf *out, const char *prefix, double x, double y)
{
	char t[2 * REPORT_FMT_CAP + 8];
	size_t n = strlen(prefix);
	memcpy(t, prefix, n);
	n += report_fmt_fixed(t + n, x, 1);
	t[n++] = ',';
	n += report_fmt_fixed(t + n, y, 1);
	buf_add(out, t, n);
}

/* A sparkline of the tenant's percent (for the ranking table). */
static void sparkline(struct buf *out, const struct report_tenant *t, size_t from)
{
	const double w = 120, h = 26;
	if (t->ndays - from < 2) {
		buf_adds(out, "<span class=\"sub\">&ndash;</span>");
		return;
	}
	double lo, hi, step, x0 = day_x(t->days[from].date), x1 = day_x(t->days[t->ndays - 1].date);
	y_range(t, from, &lo, &hi, &step);
	buf_printf(out, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
	           "aria-label=\"trend\"><polyline fill=\"none\" stroke=\"#2f6fde\" stroke-width=\"1.5\" points=\"",
	           w, h, w, h);
	for (size_t k = from; k < t->ndays; k++) {
		double p = report_percent(t->days[k].current, t->days[k].max);
		double x = 2 + (w - 4) * (day_x(t->days[k].date) - x0) / (x1 > x0 ? x1 - x0 : 1);
		double y = 2 + (h - 4) * (1 - (p - lo) / (hi - lo));
		add_point(out, k == from ? "" : " ", x, y);
	}
	buf_adds(out, "\"/></svg>");
}

/* The trend chart of one tenant: percent over the days shown, gridlines
 * with their values, first/middle/last dates, the newest value marked. */
static void trend_chart(struct buf *out, const struct report_tenant *t, size_t from)
{
	/* R leaves room right of the plot for the newest value's label */
	const double W = 600, H = 200, L = 40, R = 58, T = 14, B = 28;
	size_t n = t->ndays - from;
	if (n == 0 && t->ndays) {        /* none in the --days window */
		buf_printf(out, "<p class=\"sub\">No Secure Score in the days shown: the newest is of %s.</p>",
		           t->days[t->ndays - 1].date);
		return;
	}
	if (n == 0) {
		buf_adds(out, "<p class=\"sub\">No Secure Score stored yet.</p>");
		return;
	}
	double lo, hi, step, x0 = day_x(t->days[from].date), x1 = day_x(t->days[t->ndays - 1].date);
	y_range(t, from, &lo, &hi, &step);
	double span = x1 > x0 ? x1 - x0 : 1;
#define XPOS(d) (L + (W - L - R) * ((n == 1 ? 0.5 * span : day_x(d) - x0) / span))
#define YPOS(p) (T + (H - T - B) * (1 - ((p) - lo) / (hi - lo)))
	double *px = xcalloc(n, sizeof *px), *py = xcalloc(n, sizeof *py);   /* each point once */
	for (size_t k = from; k < t->ndays; k++) {
		px[k - from] = XPOS(t->days[k].date);
		py[k - from] = YPOS(report_percent(t->days[k].current, t->days[k].max));
	}
	buf_printf(out, "<svg width=\"100%%\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"Secure Score "
	           "trend of ", W, H);
	report_html_escape(out, t->name);
	buf_adds(out, "\">");
	for (double g = lo; g <= hi + 1e-9; g += step) {
		buf_printf(out, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e7ee\"/>"
		           "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" fill=\"#5b6475\" text-anchor=\"end\">%.0f%%</text>",
		           L, W - R, YPOS(g), YPOS(g), L - 6, YPOS(g) + 4, g);
	}
	/* area under the line, then the line */
	buf_printf(out, "<path fill=\"#2f6fde\" fill-opacity=\"0.10\" d=\"M%.1f,%.1f", px[0], YPOS(lo));
	for (size_t k = 0; k < n; k++) add_point(out, " L", px[k], py[k]);
	buf_printf(out, " L%.1f,%.1f Z\"/>", px[n - 1], YPOS(lo));
	buf_adds(out, "<polyline fill=\"none\" stroke=\"#2f6fde\" stroke-width=\"2\" stroke-linejoin=\"round\" "
	              "points=\"");
	for (size_t k = 0; k < n; k++) add_point(out, k ? " " : "", px[k], py[k]);
	buf_adds(out, "\"/>");
	free(px);
	free(py);
	const struct report_day *last = &t->days[t->ndays - 1];
	double lp = report_percent(last->current, last->max);
	buf_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#2f6fde\" stroke=\"#fff\" stroke-width=\"2\"/>",
	           XPOS(last->date), YPOS(lp));
	buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" font-weight=\"600\" fill=\"#1d2433\" "
	           "text-anchor=\"start\">%.2f%%</text>",
	           XPOS(last->date) + 8, YPOS(lp) + 4, lp);
	size_t mid = from + n / 2;
	const char *labels[3] = { t->days[from].date, n > 2 ? t->days[mid].date : NULL, last->date };
	const char *anchor[3] = { "start", "middle", "end" };
	for (int i = 0; i < 3; i++) {
		if (!labels[i] || (i == 2 && n == 1)) continue;
		buf_printf(out, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" fill=\"#5b6475\" text-anchor=\"%s\">%s</text>",
		           XPOS(labels[i]), H - 8, n == 1 ? "middle" : anchor[i], labels[i]);
	}
	buf_adds(out, "</svg>");
#undef XPOS
#undef YPOS
}

/* The first day index inside the --days window. */
static size_t first_shown(const struct report_tenant *t, const char *from)
{
	size_t k = 0;
	while (from[0] && k < t->ndays && strcmp(t->days[k].date, from) < 0) k++;
	return k;
}

static void license_bars(struct buf *out, const struct report_tenant *t)
{
	if (!t->nskus) {
		buf_adds(out, "<p class=\"sub\">No licence snapshot yet.</p>");
		return;
	}
	buf_adds(out, "<div class=\"wide\"><table class=\"lic\"><tr><th>Licence</th><th>Utilisation</th><th class=\"n\">Assigned</th>"
	              "<th class=\"n\">Free</th></tr>");
	for (size_t k = 0; k < t->nskus; k++) {
		const struct report_sku *s = &t->skus[k];
		double pct = s->purchased > 0 ? 100.0 * (double)s->assigned / (double)s->purchased : (s->assigned ? 100 : 0);
		const char *cls = s->available < 0 ? "over" : pct >= 100 ? "full" : "";
		buf_adds(out, "<tr><td>");
		report_html_escape(out, s->name);
		if (!s->known) buf_adds(out, " <span class=\"sub\">(not in Microsoft's name table)</span>");
		if (s->status && strcmp(s->status, "Enabled") != 0) {
			buf_adds(out, " <span class=\"sev warn\">");
			report_html_escape(out, s->status);
			buf_adds(out, "</span>");
		}
		buf_printf(out, "</td><td><div class=\"bar\" title=\"%.2f%%\"><i class=\"%s\" style=\"width:%.1f%%\"></i>"
		           "</div></td><td class=\"n\">%lld / %lld</td><td class=\"n%s\">%lld</td></tr>",
		           pct, cls, pct > 100 ? 100 : pct, s->assigned, s->purchased,
		           s->available < 0 ? " down" : "", s->available);
	}
	buf_adds(out, "</table></div>");
}

/* The findings v[idx[0..n)] as a table; with the tenant column when
 * with_tenant (the overview). */
static void findings_table(struct buf *out, const struct report *r, const size_t *idx, size_t n, bool with_tenant)
{
	if (!n) {
		buf_adds(out, "<p class=\"sub\">No findings.</p>");
		return;
	}
	buf_adds(out, "<div class=\"wide\"><table><tr><th>Severity</th>");
	if (with_tenant) buf_adds(out, "<th>Tenant</th>");
	buf_adds(out, "<th>Finding</th></tr>");
	for (size_t i = 0; i < n; i++) {
		const struct finding *f = &r->findings.v[idx[i]];
		buf_printf(out, "<tr><td><span class=\"sev %s\">%s</span></td>", finding_severity_name(f->severity),
		           finding_severity_name(f->severity));
		if (with_tenant) {
			const char *name = f->tenant_id;
			for (size_t k = 0; k < r->ntenants; k++)
				if (strcmp(r->tenants[k].id, f->tenant_id) == 0) name = r->tenants[k].name;
			buf_adds(out, "<td>");
			report_html_escape(out, name);
			buf_adds(out, "</td>");
		}
		buf_adds(out, "<td class=\"msg\">");
		report_html_escape(out, f->message);
		buf_adds(out, "</td></tr>");
	}
	buf_adds(out, "</table></div>");
}

/* The findings' indexes grouped by tenant (each tenant's in the findings'
 * order), for the per-tenant tables without a pass over all findings per
 * tenant. */
struct by_tenant_entry {
	const char *tenant_id;
	size_t i;
};

struct by_tenant {
	struct by_tenant_entry *v;
	size_t *idx;             /* the i of v, in v's order */
	size_t n;
};

static int by_tenant_cmp(const void *pa, const void *pb)
{
	const struct by_tenant_entry *a = pa, *b = pb;
	int c = strcmp(a->tenant_id, b->tenant_id);
	return c ? c : (a->i > b->i) - (a->i < b->i);
}

static void by_tenant_init(struct by_tenant *bt, const struct findings *f)
{
	bt->n = f->n;
	bt->v = xcalloc(f->n ? f->n : 1, sizeof *bt->v);
	bt->idx = xcalloc(f->n ? f->n : 1, sizeof *bt->idx);
	for (size_t i = 0; i < f->n; i++) bt->v[i] = (struct by_tenant_entry){ f->v[i].tenant_id, i };
	qsort(bt->v, bt->n, sizeof *bt->v, by_tenant_cmp);
	for (size_t i = 0; i < f->n; i++) bt->idx[i] = bt->v[i].i;
}

static void by_tenant_free(struct by_tenant *bt)
{
	free(bt->v);
	free(bt->idx);
}

/* The run of tenant_id's findings: *n indexes from the returned pointer. */
static const size_t *by_tenant_get(const struct by_tenant *bt, const char *tenant_id, size_t *n)
{
	size_t lo = 0, hi = bt->n;
	while (lo < hi) {                /* the first with tenant id >= tenant_id */
		size_t mid = (lo + hi) / 2;
		if (strcmp(bt->v[mid].tenant_id, tenant_id) < 0) lo = mid + 1;
		else hi = mid;
	}
	size_t end = lo;
	while (end < bt->n && strcmp(bt->v[end].tenant_id, tenant_id) == 0) end++;
	*n = end - lo;
	return bt->idx + lo;
}

static void kpis(struct buf *out, const struct report *r)
{
	long long purchased = 0, assigned = 0, free_seats = 0;
	double sum = 0;
	size_t scored = 0, crit = 0;
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		for (size_t k = 0; k < t->nskus; k++) {
			if (!t->skus[k].billable) continue;
			purchased += t->skus[k].purchased;
			assigned += t->skus[k].assigned;
			if (t->skus[k].available > 0) free_seats += t->skus[k].available;
		}
		const struct report_day *d = newest(t);
		if (d) {
			sum += report_percent(d->current, d->max);
			scored++;
		}
	}
	for (size_t i = 0; i < r->findings.n; i++) crit += r->findings.v[i].severity == FINDING_CRIT;
	buf_printf(out, "<div class=\"cards\"><div class=\"kpi\"><span>Tenants</span><b>%zu</b></div>", r->ntenants);
	if (scored)
		buf_printf(out, "<div class=\"kpi\"><span>Average Secure Score</span><b>%.2f%%</b></div>", sum / (double)scored);
	buf_printf(out, "<div class=\"kpi\"><span>Billable seats assigned</span><b>%lld / %lld</b></div>"
	           "<div class=\"kpi\"><span>Unused billable seats</span><b>%lld</b></div>"
	           "<div class=\"kpi\"><span>Findings &middot; critical</span><b>%zu &middot; %zu</b></div></div>",
	           assigned, purchased, free_seats, r->findings.n, crit);
}

void report_render_html(const struct report *r, const struct report_opts *o, struct buf *out)
{
	const char *title = o->title ? o->title : "entrasync report";
	char from[11] = "";
	if (o->kind == REPORT_SECURESCORE && o->days > 0) {
		/* same window as the text formats: the newest day of all minus N-1 */
		double mx = 0;
		for (size_t i = 0; i < r->ntenants; i++)
			if (r->tenants[i].ndays) {
				double x = day_x(newest(&r->tenants[i])->date);
				if (x > mx) mx = x;
			}
		for (size_t i = 0; i < r->ntenants && !from[0]; i++)
			for (size_t k = 0; k < r->tenants[i].ndays; k++)
				if (day_x(r->tenants[i].days[k].date) > mx - o->days) {
					snprintf(from, sizeof from, "%s", r->tenants[i].days[k].date);
					break;
				}
	}
	buf_adds(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	              "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
	report_html_escape(out, title);
	buf_printf(out, "</title><style>%s</style></head><body>\n<header><h1>", css);
	report_html_escape(out, title);
	buf_printf(out, "</h1><p>Licences and Secure Score of %zu tenant%s &middot; generated %s</p></header>\n<main>\n",
	           r->ntenants, r->ntenants == 1 ? "" : "s", r->generated_at);
	kpis(out, r);

	bool any_scores = false;
	for (size_t i = 0; i < r->ntenants; i++) any_scores = any_scores || r->tenants[i].ndays;
	if (any_scores) {
		size_t nstale = 0;
		buf_adds(out, "<section><h2>Secure Score ranking</h2><div class=\"wide\"><table><tr><th class=\"n\">#</th>"
		              "<th>Tenant</th><th class=\"opt\">Date</th><th class=\"n opt\">Score</th><th class=\"n\">Percent</th>"
		              "<th class=\"n\">7 days</th>"
		              "<th class=\"n\">30 days</th><th class=\"n\">90 days</th><th class=\"n\">Since start</th>"
		              "<th>Trend</th></tr>\n");
		for (size_t i = 0; i < r->ntenants; i++) {
			const struct report_tenant *t = &r->tenants[i];
			const struct report_day *d = newest(t);
			if (!d) {            /* ranked last: named, so the missing are seen */
				buf_adds(out, "<tr><td class=\"n\">&ndash;</td><td>");
				report_html_escape(out, t->name);
				buf_adds(out, "</td><td colspan=\"8\" class=\"sub\">No Secure Score yet.</td></tr>\n");
				continue;
			}
			buf_printf(out, "<tr><td class=\"n\">%d</td><td>", t->rank);
			report_html_escape(out, t->name);
			if (t->score_stale) {
				buf_adds(out, "*");
				nstale++;
			}
			buf_printf(out, "</td><td class=\"d opt\">%s</td><td class=\"n opt\">%.2f / %.2f</td>"
			           "<td class=\"n\"><b>%.2f%%</b></td>",
			           d->date, d->current, d->max, report_percent(d->current, d->max));
			for (int k = 0; k < REPORT_NTRENDS; k++) delta_cell(out, t->trend_set[k], t->trend[k]);
			buf_adds(out, "<td>");
			sparkline(out, t, first_shown(t, from));
			buf_adds(out, "</td></tr>\n");
		}
		buf_adds(out, "</table></div><p class=\"sub\">Percent = current / max &times; 100. Changes are in percentage "
		              "points against the newest stored day on or before 7, 30 and 90 days earlier, and against "
		              "the first stored day.");
		if (nstale)
			buf_adds(out, " * The score of an older day (its date): none stored since, see "
			              "<code>entrasync status</code>.");
		buf_adds(out, "</p></section>\n");
	}
	if (r->findings.n || o->kind == REPORT_FINDINGS) {
		buf_adds(out, "<section><h2>Findings</h2>");
		size_t top[HTML_TOP_FINDINGS], ntop = r->findings.n < HTML_TOP_FINDINGS ? r->findings.n : HTML_TOP_FINDINGS;
		for (size_t i = 0; i < ntop; i++) top[i] = i;
		findings_table(out, r, top, ntop, true);
		if (r->findings.n > HTML_TOP_FINDINGS)
			buf_printf(out, "<p class=\"sub\">The %d most urgent of %zu; each tenant's section below lists its own.</p>",
			           HTML_TOP_FINDINGS, r->findings.n);
		buf_printf(out, "<p class=\"sub\">Unused: billable seats free for %d day%s in a row or more.</p></section>\n",
		           r->unused_days, r->unused_days == 1 ? "" : "s");
	}
	struct by_tenant bt;
	by_tenant_init(&bt, &r->findings);
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		buf_adds(out, "<section><h2>");
		report_html_escape(out, t->name);
		buf_adds(out, " <span class=\"sub\">");
		report_html_escape(out, t->id);
		buf_adds(out, "</span></h2>");
		if (t->alert) {
			buf_adds(out, "<div class=\"alert\">");
			report_html_escape(out, t->alert);
			buf_adds(out, "</div>");
		}
		buf_adds(out, "<div class=\"tenant\"><div><h3>Secure Score</h3>");
		trend_chart(out, t, first_shown(t, from));
		if (t->ndays) {
			buf_printf(out, "<p class=\"sub\">%zu day%s tracked since %s", t->ndays, t->ndays == 1 ? "" : "s",
			           t->days[0].date);
			if (t->avg_all_tenants >= 0)
				buf_printf(out, " &middot; Microsoft average, all tenants: %.2f", t->avg_all_tenants);
			if (t->avg_similar_seats >= 0)
				buf_printf(out, " &middot; similar size: %.2f", t->avg_similar_seats);
			buf_adds(out, "</p>");
		}
		buf_adds(out, "</div><div><h3>Licences");
		if (t->license_day) buf_printf(out, " <span class=\"sub\">%s</span>", t->license_day);
		buf_adds(out, "</h3>");
		license_bars(out, t);
		buf_adds(out, "</div></div>");
		size_t nf = 0;
		const size_t *mine = by_tenant_get(&bt, t->id, &nf);
		if (nf) {
			buf_adds(out, "<h3 style=\"margin-top:14px\">Findings</h3>");
			findings_table(out, r, mine, nf, false);
		}
		if (t->hook_error) {
			buf_adds(out, "<p class=\"down\">Policy hook error: ");
			report_html_escape(out, t->hook_error);
			buf_adds(out, "</p>");
		}
		buf_adds(out, "</section>\n");
	}
	by_tenant_free(&bt);
	buf_adds(out, "</main><footer>entrasync &middot; numbers from the daily snapshots kept in the local database"
	              "</footer></body></html>\n");
}
