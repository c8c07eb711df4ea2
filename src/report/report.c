/* report — builds the report model from the store's history (see report.h):
 * one scan of the licence snapshots in storage order (each tenant's rows
 * kept as compact (day, SKU, free seats) triples, then its newest day and
 * the run of days each SKU has had seats free; the newest day's full rows
 * read per tenant), one scan of the Secure Score days (series, trends,
 * ranking), the user mirror for per-user licences and the disabled /
 * deleted-user findings, and the policy hooks. */
#include "report/report.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/skus.h"
#include "util/when.h"
#include "store/store_history.h"
#include "store/store_status.h"

const int report_trend_days[REPORT_NTRENDS] = { 7, 30, 90, 0 };

static const char *const kind_names[] = { "licenses", "securescore", "findings" };
static const char *const format_names[] = { "table", "csv", "json", "html" };

const char *report_kind_name(enum report_kind k)
{
	return (unsigned)k < ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

int report_kind_parse(const char *s, enum report_kind *out)
{
	for (size_t i = 0; i < ARRAY_LEN(kind_names); i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum report_kind)i;
			return 0;
		}
	return -1;
}

const char *report_format_name(enum report_format f)
{
	return (unsigned)f < ARRAY_LEN(format_names) ? format_names[f] : "?";
}

int report_format_parse(const char *s, enum report_format *out)
{
	for (size_t i = 0; i < ARRAY_LEN(format_names); i++)
		if (strcmp(s, format_names[i]) == 0) {
			*out = (enum report_format)i;
			return 0;
		}
	return -1;
}

double report_percent(double current, double max)
{
	return max > 0 ? current / max * 100.0 : 0.0;
}

void report_sku_shape_free(struct report_sku_shape *s)
{
	if (!s) return;
	free(s->name);
	free(s->group);
	memset(s, 0, sizeof *s);
}

/* ---- dates ----------------------------------------------------------------------- */

long report_day_number(const char *d)
{
	/* by hand: this runs for every point of every chart */
	if (!d) return -2147483647L - 1;
	for (int i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? d[i] != '-' : (d[i] < '0' || d[i] > '9')) return -2147483647L - 1;
	int y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
	int m = (d[5] - '0') * 10 + (d[6] - '0');
	int dd = (d[8] - '0') * 10 + (d[9] - '0');
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" of a day number. */
static void day_string(long z, char out[11])
{
	z += 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long y = yoe + era * 400;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	long d = doy - (153 * mp + 2) / 5 + 1;
	long m = mp + (mp < 10 ? 3 : -9);
	y += m <= 2;
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", (int)(y % 10000), (int)m, (int)d);
	memcpy(out, tmp, 10);
	out[10] = '\0';
}

/* ---- building ----------------------------------------------------------------------- */

/* One licence snapshot row of a tenant as the unused runs need it. */
struct seat_row {
	int32_t day;             /* report_day_number */
	int32_t free;            /* purchased - assigned (clamped to int32) */
	uint16_t sku;            /* index into the tenant's tenant_seats.skus */
};

/* A tenant's licence history gathered by the scan (any order). */
struct tenant_seats {
	struct seat_row *v;
	size_t n, cap;
	char **skus;             /* the SKU ids of its history */
	size_t nskus;
	size_t last;             /* the SKU of the previous row: a day's rows come in SKU order */
};

struct build {
	const struct report_opts *o;
	const struct report_hooks *hooks;
	struct report *r;
	struct store *st;
	struct err *err;
	struct report_tenant *cur;   /* the tenant of the row before (scans) */
	size_t *next;                /* per tenant: the tenant whose rows came after its rows last time */
	char day[11];                /* the day of the row before (licence scan) and its number */
	long day_number;
	struct tenant_seats *seats;  /* parallel to r->tenants (licence scan) */
	size_t capskus;              /* of cur->skus while its newest day is read */
};

static int tenant_cmp_id(const void *a, const void *b)
{
	return strcmp(((const struct report_tenant *)a)->id, ((const struct report_tenant *)b)->id);
}

static struct report_tenant *tenant_find(struct report *r, const char *id)
{
	union { const char *c; char *m; } v = { id };
	struct report_tenant key = { .id = v.m };
	if (!r->ntenants) return NULL;   /* no tenant asked for: r->tenants may be NULL, which bsearch may not get */
	return bsearch(&key, r->tenants, r->ntenants, sizeof *r->tenants, tenant_cmp_id);
}

/* The tenant of a scanned row: the row before's, or the one that followed
 * it last time (storage order repeats the pulls' tenant order day after
 * day), else a binary search. NULL for a tenant not asked for. */
static struct report_tenant *row_tenant(struct build *b, const char *id)
{
	struct report *r = b->r;
	if (b->cur && strcmp(b->cur->id, id) == 0) return b->cur;
	size_t *guess = b->cur ? &b->next[b->cur - r->tenants] : NULL;
	if (guess && *guess < r->ntenants && strcmp(r->tenants[*guess].id, id) == 0) return b->cur = &r->tenants[*guess];
	struct report_tenant *t = tenant_find(r, id);
	if (guess && t) *guess = (size_t)(t - r->tenants);
	return b->cur = t;
}

struct tenant_pick {
	const struct report_opts *o;
	struct report *r;
	size_t cap;
};

static bool tenant_wanted(const struct report_opts *o, const struct store_tenant *t)
{
	if (!o->tenants) return true;
	for (size_t i = 0; i < o->ntenants; i++)
		if (str_ieq(o->tenants[i], t->id) || (t->name && str_ieq(o->tenants[i], t->name)) ||
		    (t->default_domain && str_ieq(o->tenants[i], t->default_domain)))
			return true;
	return false;
}

/* Without a list of tenants asked for: is the tenant in the scope (the
 * configured tenants), when there is one? */
static bool tenant_in_scope(const struct report_opts *o, const struct store_tenant *t)
{
	if (o->tenants || !o->scope) return true;
	for (size_t i = 0; i < o->nscope; i++)
		if (str_ieq(o->scope[i], t->id)) return true;
	return false;
}

static int tenant_row(const struct store_tenant *t, void *ud)
{
	struct tenant_pick *p = ud;
	if (!tenant_wanted(p->o, t)) return 0;
	if (!tenant_in_scope(p->o, t)) {
		struct buf *b = &p->r->left_out;      /* printed on stderr: the name (Microsoft's) printed safe */
		buf_adds(b, b->len ? ", " : "");
		if (t->name && *t->name) {
			buf_add_term(b, t->name);
			buf_printf(b, " (%s)", t->id);
		} else {
			buf_adds(b, t->id);
		}
		p->r->nleft_out++;
		return 0;
	}
	if (p->r->ntenants == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->r->tenants = xrealloc(p->r->tenants, p->cap * sizeof *p->r->tenants);
	}
	struct report_tenant *x = &p->r->tenants[p->r->ntenants++];
	memset(x, 0, sizeof *x);
	x->id = xstrdup(t->id);
	x->name = xstrdup(t->name && *t->name ? t->name : t->id);
	x->avg_all_tenants = x->avg_similar_seats = -1;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Applies the license hook to one SKU (defaults without it). */
static void shape_sku(struct build *b, struct report_tenant *t, struct report_sku *s)
{
	const struct sku_info *info = skus_find(s->sku_id);
	if (!info) info = skus_find_part(s->part);
	s->known = info != NULL;
	s->name = xstrdup(skus_friendly_name(s->sku_id, s->part));
	s->billable = !skus_is_free(s->part);
	if (!b->hooks || !b->hooks->license) return;
	struct report_sku_in in = {
		.sku_id = s->sku_id, .part = s->part, .name = s->name, .status = s->status, .applies_to = NULL,
		.purchased = s->purchased, .assigned = s->assigned, .available = s->available,
		.suspended = s->suspended, .warning = s->warning, .locked_out = s->locked_out,
	};
	struct report_sku_shape sh = {0};
	struct err e = {{0}};
	int rc = b->hooks->license(b->hooks->ctx, t->id, &in, &sh, &e);
	if (rc < 0 && !t->hook_error) t->hook_error = xstrdup(e.msg);
	if (rc == 0) {
		if (sh.name && *sh.name) {
			free(s->name);
			s->name = sh.name;
			sh.name = NULL;
		}
		s->hidden = sh.hide;
		if (sh.billable_set) s->billable = sh.billable;
		if (sh.unit_price_set) {
			s->unit_price_set = true;
			s->unit_price = sh.unit_price;
		}
		if (sh.group && *sh.group) {
			s->group = sh.group;
			sh.group = NULL;
		}
	}
	report_sku_shape_free(&sh);
}


static int sku_cmp_name(const void *pa, const void *pb)
{
	const struct report_sku *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);
	return c ? c : strcmp(a->sku_id, b->sku_id);
}

/* The scan: a row of the licence history into its tenant's seats. */
static int seat_row(const struct store_license_seats *l, void *ud)
{
	struct build *b = ud;
	if (!row_tenant(b, l->tenant_id)) return 0;      /* a tenant not asked for */
	if (!l->day) return 0;
	if (strncmp(b->day, l->day, sizeof b->day) != 0) {   /* a day's rows come together */
		b->day_number = report_day_number(l->day);
		snprintf(b->day, sizeof b->day, "%s", l->day);
	}
	long day = b->day_number;
	if (day < INT32_MIN || day > INT32_MAX || !l->sku_id) return 0;   /* not a date */
	struct tenant_seats *ts = &b->seats[b->cur - b->r->tenants];
	size_t k = ts->last + 1 < ts->nskus ? ts->last + 1 : 0;
	if (k >= ts->nskus || strcmp(ts->skus[k], l->sku_id) != 0) {
		for (k = 0; k < ts->nskus && strcmp(ts->skus[k], l->sku_id) != 0; k++) {}
		if (k == ts->nskus) {
			if (k > UINT16_MAX) return 0;
			ts->skus = xrealloc(ts->skus, (k + 1) * sizeof *ts->skus);
			ts->skus[ts->nskus++] = xstrdup(l->sku_id);
		}
	}
	ts->last = k;
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 512;
		ts->v = xrealloc(ts->v, ts->cap * sizeof *ts->v);
	}
	long long unassigned = l->enabled - l->consumed;
	unassigned = unassigned > INT32_MAX ? INT32_MAX : unassigned < INT32_MIN ? INT32_MIN : unassigned;
	ts->v[ts->n++] = (struct seat_row){ (int32_t)day, (int32_t)unassigned, (uint16_t)k };
	return 0;
}

static int seat_cmp(const void *pa, const void *pb)
{
	const struct seat_row *a = pa, *b = pb;
	if (a->day != b->day) return a->day < b->day ? -1 : 1;
	return (a->sku > b->sku) - (a->sku < b->sku);
}

static void seats_free(struct tenant_seats *ts)
{
	for (size_t k = 0; k < ts->nskus; k++) free(ts->skus[k]);
	free(ts->skus);
	free(ts->v);
	memset(ts, 0, sizeof *ts);
}

/* Per SKU of the tenant's history, *start[k] = the oldest day of its run of
 * days with seats free up to the newest day, or LONG_MIN (not on the newest
 * day, or no seats free on it), *least[k] = the fewest seats free on a day
 * of that run and *snaps[k] = the snapshot days in it. Walks the days from
 * the newest back; a run is broken by a day without free seats, by a stored
 * day the SKU is missing from, and by more than REPORT_UNUSED_MAX_GAP_DAYS
 * days in a row with no snapshot at all (fewer do not break it: they are
 * counted in the run's days, not its snapshots). Sorts ts->v by day; returns
 * the newest day (LONG_MIN without rows). *start, *least and *snaps are new. */
static long seat_runs(struct tenant_seats *ts, long **start, long long **least, int **snaps)
{
	bool sorted = true;     /* rows written day by day come sorted */
	for (size_t i = 1; i < ts->n && sorted; i++) sorted = seat_cmp(&ts->v[i - 1], &ts->v[i]) <= 0;
	if (!sorted) qsort(ts->v, ts->n, sizeof *ts->v, seat_cmp);
	long *run = xcalloc(ts->nskus ? ts->nskus : 1, sizeof *run);
	bool *open = xcalloc(ts->nskus ? ts->nskus : 1, sizeof *open);
	bool *seen = xcalloc(ts->nskus ? ts->nskus : 1, sizeof *seen);
	long long *fewest = xcalloc(ts->nskus ? ts->nskus : 1, sizeof *fewest);
	int *count = xcalloc(ts->nskus ? ts->nskus : 1, sizeof *count);
	for (size_t k = 0; k < ts->nskus; k++) run[k] = LONG_MIN;
	size_t end = ts->n, active = 0;
	for (bool newest = true; end > 0 && (newest || active > 0); newest = false) {
		size_t begin = end;     /* the rows of one day: [begin, end) */
		while (begin > 0 && ts->v[begin - 1].day == ts->v[end - 1].day) begin--;
		/* the days between this one and the newer one had no snapshot: too many end every run */
		if (end < ts->n && (long)ts->v[end].day - ts->v[end - 1].day - 1 > REPORT_UNUSED_MAX_GAP_DAYS) break;
		for (size_t i = begin; i < end; i++) {
			const struct seat_row *row = &ts->v[i];
			seen[row->sku] = true;
			if (newest) {
				open[row->sku] = row->free > 0;
				active += row->free > 0;
			} else if (open[row->sku] && row->free <= 0) {
				open[row->sku] = false;
				active--;
			}
			if (open[row->sku]) {
				run[row->sku] = row->day;
				count[row->sku]++;
				if (fewest[row->sku] == 0 || row->free < fewest[row->sku]) fewest[row->sku] = row->free;
			}
		}
		for (size_t k = 0; k < ts->nskus; k++) {
			if (open[k] && !seen[k]) {
				open[k] = false;
				active--;
			}
			seen[k] = false;
		}
		end = begin;
	}
	free(open);
	free(seen);
	*start = run;
	*least = fewest;
	*snaps = count;
	return ts->n ? ts->v[ts->n - 1].day : LONG_MIN;
}

/* A row of the tenant's newest day: one of its SKUs. */
static int newest_sku_row(const struct store_license *l, void *ud)
{
	struct build *b = ud;
	struct report_tenant *t = b->cur;
	if (t->nskus == b->capskus) {
		b->capskus = b->capskus ? b->capskus * 2 : 8;
		t->skus = xrealloc(t->skus, b->capskus * sizeof *t->skus);
	}
	struct report_sku *s = &t->skus[t->nskus++];
	memset(s, 0, sizeof *s);
	s->sku_id = xstrdup(l->sku_id);
	s->part = dup_or_null(l->sku_part_number);
	s->status = dup_or_null(l->capability_status);
	s->purchased = l->enabled;
	s->assigned = l->consumed;
	s->available = l->enabled + (l->warning > 0 ? l->warning : 0) - l->consumed;   /* grace seats still work */
	s->suspended = l->suspended;
	s->warning = l->warning;
	s->locked_out = l->locked_out;
	return 0;
}

/* The tenant's licences: the SKUs of its newest day, each with the length
 * of its run of days with free seats, shaped by the policy. */
static int tenant_licenses(struct build *b, struct store_history *h, struct report_tenant *t, struct tenant_seats *ts)
{
	long *run = NULL;
	long long *least = NULL;
	int *snaps = NULL;
	long newest = seat_runs(ts, &run, &least, &snaps);
	int rc = 0;
	if (newest != LONG_MIN) {
		char day[11];
		day_string(newest, day);
		t->license_day = xstrdup(day);
		b->cur = t;
		b->capskus = 0;
		rc = store_history_licenses_day_each(h, t->id, day, newest_sku_row, b, b->err);
		b->cur = NULL;
	}
	for (size_t i = 0; rc == 0 && i < t->nskus; i++) {
		struct report_sku *s = &t->skus[i];
		for (size_t k = 0; k < ts->nskus; k++)
			if (strcmp(ts->skus[k], s->sku_id) == 0 && run[k] != LONG_MIN) {
				s->unused_days = (int)(newest - run[k] + 1);
				s->unused_least = least[k];
				s->unused_snapshots = snaps[k];
			}
		shape_sku(b, t, s);
	}
	if (t->nskus > 1) qsort(t->skus, t->nskus, sizeof *t->skus, sku_cmp_name);
	free(run);
	free(least);
	free(snaps);
	return rc;
}

/* SKUs sharing a group become one row: ids and parts joined with '+', the
 * numbers added up, the shortest unused run kept. Hidden SKUs are left out. */
static void tenant_group_skus(struct report_tenant *t)
{
	size_t w = 0;
	for (size_t i = 0; i < t->nskus; i++) {
		struct report_sku *s = &t->skus[i];
		struct report_sku *into = NULL;
		for (size_t k = 0; s->group && k < w; k++)
			if (t->skus[k].group && strcmp(t->skus[k].group, s->group) == 0) into = &t->skus[k];
		if (!into) {
			t->skus[w] = *s;
			if (s->group) {      /* the group row is named after the group */
				free(t->skus[w].name);
				t->skus[w].name = xstrdup(s->group);
			}
			w++;
			continue;
		}
		char *ids = xasprintf("%s+%s", into->sku_id, s->sku_id);
		char *parts = xasprintf("%s+%s", into->part ? into->part : "", s->part ? s->part : "");
		free(into->sku_id);
		free(into->part);
		into->sku_id = ids;
		into->part = parts;
		into->purchased += s->purchased;
		into->assigned += s->assigned;
		into->available += s->available;
		into->suspended += s->suspended;
		into->warning += s->warning;
		into->locked_out += s->locked_out;
		if (s->unused_days < into->unused_days) {   /* the group's run is its shortest member's */
			into->unused_days = s->unused_days;
			into->unused_snapshots = s->unused_snapshots;
		}
		into->unused_least += s->unused_least;   /* each member had at least its own free all along */
		into->billable = into->billable || s->billable;
		into->known = into->known && s->known;
		if (s->unit_price_set) {
			into->unit_price_set = true;
			if (s->unit_price > into->unit_price) into->unit_price = s->unit_price;
		}
		free(s->sku_id);
		free(s->part);
		free(s->name);
		free(s->status);
		free(s->group);
	}
	t->nskus = w;
}

static void sku_free(struct report_sku *s)
{
	free(s->sku_id);
	free(s->part);
	free(s->name);
	free(s->status);
	free(s->group);
}

static void tenant_drop_hidden(struct report_tenant *t)
{
	size_t w = 0;
	for (size_t i = 0; i < t->nskus; i++) {
		if (t->skus[i].hidden) sku_free(&t->skus[i]);
		else t->skus[w++] = t->skus[i];
	}
	t->nskus = w;
}

/* The score scan (storage order: the tenant may change on every row). A
 * tenant's days grow to 128, then double at each power of two: the
 * capacity follows from ndays alone. */
static int score_row(const struct store_secure_score *sc, void *ud)
{
	struct build *b = ud;
	struct report_tenant *t = row_tenant(b, sc->tenant_id);
	if (!t) return 0;
	size_t n = t->ndays;
	if (n == 0 || (n >= 128 && (n & (n - 1)) == 0))
		t->days = xrealloc(t->days, (n ? 2 * n : 128) * sizeof *t->days);
	struct report_day *d = &t->days[t->ndays++];
	memcpy(d->date, sc->day, 10);
	d->date[10] = '\0';
	d->current = sc->current_score;
	d->max = sc->max_score;
	return 0;
}

static int day_cmp(const void *a, const void *b)
{
	return strcmp(((const struct report_day *)a)->date, ((const struct report_day *)b)->date);
}

/* Oldest first (rows written day by day come so already). */
static void tenant_days_sort(struct report_tenant *t)
{
	for (size_t k = 1; k < t->ndays; k++)
		if (strcmp(t->days[k - 1].date, t->days[k].date) > 0) {
			qsort(t->days, t->ndays, sizeof *t->days, day_cmp);
			return;
		}
}

/* Index of the newest day on or before date (string compare: ISO dates
 * sort), or -1. */
static long day_on_or_before(const struct report_tenant *t, const char *date)
{
	size_t lo = 0, hi = t->ndays;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(t->days[mid].date, date) <= 0) lo = mid + 1;
		else hi = mid;
	}
	return (long)lo - 1;
}

static void tenant_trends(struct report_tenant *t)
{
	if (t->ndays == 0) return;
	const struct report_day *last = &t->days[t->ndays - 1];
	double now = report_percent(last->current, last->max);
	long newest = report_day_number(last->date);
	for (int i = 0; i < REPORT_NTRENDS; i++) {
		long idx;
		if (report_trend_days[i] == 0) {
			idx = 0;
		} else {
			char target[11];
			day_string(newest - report_trend_days[i], target);
			idx = day_on_or_before(t, target);
		}
		if (idx < 0 || (size_t)idx == t->ndays - 1) continue;
		t->trend_set[i] = true;
		t->trend[i] = now - report_percent(t->days[idx].current, t->days[idx].max);
	}
}

/* Microsoft's comparative averages of the newest day. */
static void tenant_averages(struct report_tenant *t, const char *json)
{
	cJSON *a = json ? cJSON_Parse(json) : NULL;
	const cJSON *it;
	cJSON_ArrayForEach(it, a) {
		const cJSON *basis = cJSON_GetObjectItemCaseSensitive(it, "basis");
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "averageScore");
		if (!cJSON_IsString(basis) || !cJSON_IsNumber(v)) continue;
		if (strcmp(basis->valuestring, "AllTenants") == 0) t->avg_all_tenants = v->valuedouble;
		else if (strcmp(basis->valuestring, "TotalSeats") == 0) t->avg_similar_seats = v->valuedouble;
	}
	cJSON_Delete(a);
}

static double json_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsNumber(v)) return v->valuedouble;
	if (cJSON_IsString(v)) return strtod(v->valuestring, NULL);
	return 0;
}

static const char *json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The per-control breakdown of the newest day, joined with the tenant's
 * control profiles (title, maxScore) when the store has them. */
static void tenant_controls(struct build *b, struct report_tenant *t, const char *json)
{
	cJSON *c = json ? cJSON_Parse(json) : NULL;
	char *pj = NULL;
	struct err e;
	cJSON *profiles = NULL;
	if (store_history_profiles_get(b->st, t->id, &pj, &e) == 0) profiles = cJSON_Parse(pj);
	free(pj);
	int n = cJSON_GetArraySize(c);
	t->controls = xcalloc(n > 0 ? (size_t)n : 1, sizeof *t->controls);
	const cJSON *it;
	cJSON_ArrayForEach(it, c) {
		const char *name = json_str(it, "controlName");
		if (!name) continue;
		struct report_control *x = &t->controls[t->ncontrols++];
		x->name = xstrdup(name);
		x->category = dup_or_null(json_str(it, "controlCategory"));
		x->score = json_num(it, "score");
		const cJSON *p;
		cJSON_ArrayForEach(p, profiles) {
			const char *id = json_str(p, "id");
			if (!id || strcmp(id, name) != 0) continue;
			x->title = dup_or_null(json_str(p, "title"));
			x->max = json_num(p, "maxScore");
		}
	}
	cJSON_Delete(c);
	cJSON_Delete(profiles);
}

/* The secure_score hook on the newest day (prev = the day before it). */
static void tenant_score_hook(struct build *b, struct report_tenant *t)
{
	if (!b->hooks || !b->hooks->secure_score || t->ndays == 0) return;
	const struct report_day *d = &t->days[t->ndays - 1];
	const struct report_day *p = t->ndays > 1 ? &t->days[t->ndays - 2] : NULL;
	struct report_score_point s = { d->date, d->current, d->max, report_percent(d->current, d->max) };
	struct report_score_point prev = { 0 };
	if (p) prev = (struct report_score_point){ p->date, p->current, p->max, report_percent(p->current, p->max) };
	char *alert = NULL;
	struct err e = {{0}};
	int rc = b->hooks->secure_score(b->hooks->ctx, t->id, &s, p ? &prev : NULL, &alert, &e);
	if (rc < 0 && !t->hook_error) t->hook_error = xstrdup(e.msg);
	if (rc == 0 && alert) {
		t->alert = alert;
		findings_add_alert(&b->r->findings, t->id, alert);
	} else {
		free(alert);
	}
}

/* Users of the mirror holding licences: per-user rows (--by-user) and the
 * disabled / deleted user findings. */
struct user_scan {
	struct build *b;
	struct report_tenant *t;
	size_t cap;
	double as_of;            /* when the tenant's data is of: the end of its newest snapshot day, else now */
};

static const char *sku_display(const struct report_tenant *t, const char *sku_id, bool *hidden)
{
	*hidden = false;
	for (size_t i = 0; i < t->nskus; i++) {
		const struct report_sku *s = &t->skus[i];
		/* grouped rows hold "a+b": match any member */
		const char *p = strstr(s->sku_id, sku_id);
		if (p && (p == s->sku_id || p[-1] == '+')) {
			*hidden = s->hidden;
			return s->name;
		}
	}
	return skus_friendly_name(sku_id, NULL);
}

static int user_row(const struct store_user *u, void *ud)
{
	struct user_scan *us = ud;
	cJSON *j = cJSON_Parse(u->json);
	const cJSON *lic = cJSON_GetObjectItemCaseSensitive(j, "assignedLicenses");
	int n = cJSON_GetArraySize(lic);
	if (n <= 0) {
		cJSON_Delete(j);
		return 0;
	}
	const char **names = xcalloc((size_t)n, sizeof *names);
	size_t k = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, lic) {
		const char *id = json_str(it, "skuId");
		bool hidden;
		if (!id) continue;
		const char *name = sku_display(us->t, id, &hidden);
		if (!hidden) names[k++] = name;
	}
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(j, "accountEnabled");
	const char *upn = json_str(j, "userPrincipalName");
	if (!upn) upn = json_str(j, "mail");
	struct findings_user fu = {
		.object_id = u->object_id, .upn = upn, .enabled = !cJSON_IsFalse(en),
		.removed = u->removed, .removed_at = u->removed_at, .as_of = us->as_of, .skus = names, .nskus = k,
	};
	findings_check_user(&us->b->r->findings, us->t->id, &fu);
	if (us->b->o->by_user && k > 0 && !findings_user_gone(&fu)) {
		struct report_tenant *t = us->t;
		if (t->nusers == us->cap) {
			us->cap = us->cap ? us->cap * 2 : 32;
			t->users = xrealloc(t->users, us->cap * sizeof *t->users);
		}
		struct report_user *x = &t->users[t->nusers++];
		memset(x, 0, sizeof *x);
		x->object_id = xstrdup(u->object_id);
		x->upn = dup_or_null(upn);
		x->display_name = dup_or_null(json_str(j, "displayName"));
		x->enabled = fu.enabled;
		x->removed = dup_or_null(u->removed);
		x->skus = xcalloc(k, sizeof *x->skus);
		for (size_t i = 0; i < k; i++) x->skus[i] = xstrdup(names[i]);
		x->nskus = k;
	}
	free(names);
	cJSON_Delete(j);
	return 0;
}

static int rank_cmp(const void *pa, const void *pb)
{
	const struct report_tenant *a = pa, *b = pb;
	if ((a->ndays > 0) != (b->ndays > 0)) return a->ndays > 0 ? -1 : 1;
	if (a->ndays > 0) {
		double x = report_percent(a->days[a->ndays - 1].current, a->days[a->ndays - 1].max);
		double y = report_percent(b->days[b->ndays - 1].current, b->days[b->ndays - 1].max);
		if (x != y) return x > y ? -1 : 1;
	}
	int c = strcmp(a->name, b->name);
	return c ? c : strcmp(a->id, b->id);
}

static int build_licenses(struct build *b, struct store_history *h)
{
	const char *only = b->r->ntenants == 1 ? b->r->tenants[0].id : NULL;
	b->seats = xcalloc(b->r->ntenants ? b->r->ntenants : 1, sizeof *b->seats);
	b->cur = NULL;
	int rc = store_history_license_seats_each(h, only, seat_row, b, b->err);
	b->cur = NULL;
	for (size_t i = 0; rc == 0 && i < b->r->ntenants; i++) {
		rc = tenant_licenses(b, h, &b->r->tenants[i], &b->seats[i]);
		seats_free(&b->seats[i]);
	}
	for (size_t i = 0; i < b->r->ntenants; i++) seats_free(&b->seats[i]);
	free(b->seats);
	b->seats = NULL;
	if (rc != 0) return -1;
	int threshold = b->r->unused_days;
	const char *newest_day = NULL;   /* the newest licence day of all the tenants */
	for (size_t i = 0; i < b->r->ntenants; i++) {
		const char *d = b->r->tenants[i].license_day;
		if (d && (!newest_day || strcmp(d, newest_day) > 0)) newest_day = d;
	}
	for (size_t i = 0; i < b->r->ntenants; i++) {
		struct report_tenant *t = &b->r->tenants[i];
		size_t first = b->r->findings.n;
		for (size_t k = 0; k < t->nskus; k++) {
			const struct report_sku *s = &t->skus[k];
			if (s->hidden) continue;
			struct findings_sku fs = {
				.sku_id = s->sku_id, .name = s->name, .purchased = s->purchased, .assigned = s->assigned,
				.suspended = s->suspended, .warning = s->warning, .locked_out = s->locked_out,
				.unused_days = s->unused_days, .unused_least = s->unused_least,
				.unused_snapshots = s->unused_snapshots, .billable = s->billable,
			};
			findings_check_sku(&b->r->findings, t->id, &fs, threshold);
		}
		/* counts older than the others' (its pulls failing, its licences not readable): the day they are of */
		if (t->license_day && newest_day && strcmp(t->license_day, newest_day) < 0)
			findings_mark_day(&b->r->findings, first, t->license_day);
		/* Microsoft's 30 days run whatever this tenant's snapshots do: counted
		 * to the newest day of all the tenants, not its own (it may be stale) */
		double newest = newest_day ? when_parse_iso(newest_day) : -1;
		struct user_scan us = { .b = b, .t = t, .as_of = newest >= 0 ? newest + 86400 - 1 : time_now() };
		if (store_user_each(b->st, t->id, STORE_USERS_ALL, user_row, &us, b->err) != 0) return -1;
		tenant_drop_hidden(t);
		tenant_group_skus(t);
	}
	return 0;
}

/* The failing finding of each tenant whose pulls and syncs have failed
 * for o->failing_hours or more. */
static int build_failing(struct build *b)
{
	double now = time_now();
	for (size_t i = 0; i < b->r->ntenants; i++) {
		const struct report_tenant *t = &b->r->tenants[i];
		struct store_status_failing sf;
		if (store_status_failing_get(b->st, t->id, &sf, b->err) != 0) return -1;
		struct findings_failing x = { .since = sf.since, .runs = sf.runs, .reason = sf.reason,
		                              .last_reached = sf.last_reached };
		findings_check_failing(&b->r->findings, t->id, &x, now, b->o->failing_hours);
		store_status_failing_free(&sf);
	}
	return 0;
}

/* Marks the tenants whose newest score is more than REPORT_SCORE_LAG_DAYS
 * older than the newest of all the report's tenants. */
static void tenants_mark_stale_scores(struct report *r)
{
	long newest = LONG_MIN;
	for (size_t i = 0; i < r->ntenants; i++) {
		const struct report_tenant *t = &r->tenants[i];
		long d = t->ndays ? report_day_number(t->days[t->ndays - 1].date) : LONG_MIN;
		if (d > newest) newest = d;
	}
	for (size_t i = 0; i < r->ntenants; i++) {
		struct report_tenant *t = &r->tenants[i];
		t->score_stale = t->ndays && report_day_number(t->days[t->ndays - 1].date) < newest - REPORT_SCORE_LAG_DAYS;
	}
}

/* Findings need only the secure_score hook's two newest days per tenant. */
static int build_score_alerts(struct build *b, struct store_history *h)
{
	if (!b->hooks || !b->hooks->secure_score) return 0;
	for (size_t i = 0; i < b->r->ntenants; i++) {
		struct report_tenant *t = &b->r->tenants[i];
		struct store_secure_score sc[2];
		char days[2][11];
		size_t n;
		if (store_history_scores_newest(h, t->id, 2, sc, days, &n, b->err) != 0) return -1;
		t->days = xcalloc(2, sizeof *t->days);
		for (size_t k = 0; k < n; k++) {          /* oldest first */
			struct report_day *d = &t->days[n - 1 - k];
			memcpy(d->date, days[k], 11);
			d->current = sc[k].current_score;
			d->max = sc[k].max_score;
		}
		t->ndays = n;
		tenant_score_hook(b, t);
	}
	tenants_mark_stale_scores(b->r);
	return 0;
}

static int build_scores(struct build *b, struct store_history *h)
{
	if (b->o->kind == REPORT_FINDINGS && b->o->format != REPORT_HTML) return build_score_alerts(b, h);
	const char *only = b->r->ntenants == 1 ? b->r->tenants[0].id : NULL;
	b->cur = NULL;
	if (store_history_scores_each(h, only, NULL, false, score_row, b, b->err) != 0) return -1;
	b->cur = NULL;
	for (size_t i = 0; i < b->r->ntenants; i++) {
		struct report_tenant *t = &b->r->tenants[i];
		tenant_days_sort(t);
		tenant_trends(t);
		tenant_score_hook(b, t);
		if (t->ndays == 0 || (b->o->kind != REPORT_SECURESCORE && b->o->format != REPORT_HTML)) continue;
		struct store_secure_score sc;
		int rc = store_history_score_get(h, t->id, t->days[t->ndays - 1].date, &sc, b->err);
		if (rc < 0) return -1;
		if (rc == 0) {
			tenant_averages(t, sc.averages);
			if (b->o->controls) tenant_controls(b, t, sc.controls);
		}
		store_history_score_free(&sc);
	}
	tenants_mark_stale_scores(b->r);
	return 0;
}

int report_build(struct store *st, const struct report_opts *o, const struct report_hooks *hooks,
                 struct report **out, struct err *err)
{
	int rc = -1;
	struct store_history *h = NULL;
	struct report *r = xcalloc(1, sizeof *r);
	struct build b = { .o = o, .hooks = hooks, .r = r, .st = st, .err = err };
	time_iso8601(time_now(), r->generated_at, sizeof r->generated_at);
	r->unused_days = o->kind != REPORT_SECURESCORE && o->days > 0 ? o->days : REPORT_DEFAULT_UNUSED_DAYS;
	struct tenant_pick pick = { .o = o, .r = r };
	if (store_tenant_each(st, tenant_row, &pick, err) != 0) goto out;
	if (o->tenants && r->ntenants < o->ntenants) {
		for (size_t i = 0; i < o->ntenants; i++) {
			bool found = false;
			for (size_t k = 0; k < r->ntenants && !found; k++)
				found = str_ieq(o->tenants[i], r->tenants[k].id) || str_ieq(o->tenants[i], r->tenants[k].name);
			if (!found) {
				err_set(err, "tenant '%s' is not in the database (pull it first: entrasync pull)", o->tenants[i]);
				goto out;
			}
		}
	}
	if (r->ntenants > 1) qsort(r->tenants, r->ntenants, sizeof *r->tenants, tenant_cmp_id);
	b.next = xcalloc(r->ntenants ? r->ntenants : 1, sizeof *b.next);
	for (size_t i = 0; i < r->ntenants; i++) b.next[i] = SIZE_MAX;
	if (store_history_open(st, &h, err) != 0) goto out;
	/* HTML is the whole picture: licences, scores and findings. */
	bool html = o->format == REPORT_HTML;
	if (o->kind != REPORT_SECURESCORE || html) {
		if (build_licenses(&b, h) != 0) goto out;
		for (int k = 0; k < FINDING_NKINDS; k++)
			r->checked[k] = k != FINDING_SCORE_ALERT && k != FINDING_FAILING;
	}
	if ((o->kind != REPORT_SECURESCORE || html) && o->failing_hours > 0) {
		if (build_failing(&b) != 0) goto out;
		r->checked[FINDING_FAILING] = true;
	}
	if (o->kind != REPORT_LICENSES || html) {
		if (build_scores(&b, h) != 0) goto out;
		r->checked[FINDING_SCORE_ALERT] = true;
	}
	int rank = 0;
	if (r->ntenants > 1) qsort(r->tenants, r->ntenants, sizeof *r->tenants, rank_cmp);
	for (size_t i = 0; i < r->ntenants; i++)
		if (r->tenants[i].ndays) r->tenants[i].rank = ++rank;
	findings_sort(&r->findings);
	rc = 0;
out:
	store_history_close(h);
	free(b.next);
	if (rc != 0) {
		report_free(r);
		r = NULL;
	}
	*out = r;
	return rc;
}

void report_free(struct report *r)
{
	if (!r) return;
	buf_free(&r->left_out);
	for (size_t i = 0; i < r->ntenants; i++) {
		struct report_tenant *t = &r->tenants[i];
		free(t->id);
		free(t->name);
		free(t->license_day);
		for (size_t k = 0; k < t->nskus; k++) sku_free(&t->skus[k]);
		free(t->skus);
		for (size_t k = 0; k < t->nusers; k++) {
			struct report_user *u = &t->users[k];
			free(u->object_id);
			free(u->upn);
			free(u->display_name);
			free(u->removed);
			for (size_t j = 0; j < u->nskus; j++) free(u->skus[j]);
			free(u->skus);
		}
		free(t->users);
		free(t->days);
		for (size_t k = 0; k < t->ncontrols; k++) {
			free(t->controls[k].name);
			free(t->controls[k].title);
			free(t->controls[k].category);
		}
		free(t->controls);
		free(t->alert);
		free(t->hook_error);
	}
	free(r->tenants);
	findings_free(&r->findings);
	free(r);
}

int report_render(const struct report *r, const struct report_opts *o, struct buf *out, struct err *err)
{
	switch (o->format) {
	case REPORT_TABLE: report_render_table(r, o, out); return 0;
	case REPORT_CSV: report_render_csv(r, o, out); return 0;
	case REPORT_JSON: return report_render_json(r, o, out, err);
	case REPORT_HTML: report_render_html(r, o, out); return 0;
	}
	return err_set(err, "unknown report format");
}
