/* report — licences and Secure Score across tenants: the report model built
 * from the store's snapshot history (report.c), its findings, and its
 * renderings as an 80-column table, CSV, JSON (report_render.c) and one
 * self-contained HTML page with inline SVG charts (report_html.c).
 *
 * Numbers (per tenant, from the daily snapshots):
 *   purchased = prepaidUnits.enabled, assigned = consumedUnits,
 *   available = purchased + warning - assigned: the seats that can still be
 *   used, those in the grace period included (Microsoft's prepaidUnits.warning:
 *   an expired subscription's seats, working until it is suspended);
 *   negative when over-assigned;
 *   suspended / warning / locked_out = prepaidUnits.*;
 *   percent = current / max x 100 (0 when max is 0), shown with two decimals;
 *   trends: percent now minus percent N days before the newest day (the
 *   newest stored day on or before it), for N = 7, 30, 90, and since the
 *   first stored day; absent when the history does not reach back so far.
 * Tenants are ranked by their newest percent (highest first).
 *
 * Policy hooks shape the numbers without reaching the store: see struct
 * report_hooks (bound to Lua in lua_license.c). Everything in a struct
 * report is owned by it (report_free). */
#ifndef ENTRASYNC_REPORT_H
#define ENTRASYNC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include "report/findings.h"
#include "store/store.h"
#include "util/util.h"

enum report_kind { REPORT_LICENSES, REPORT_SECURESCORE, REPORT_FINDINGS };
enum report_format { REPORT_TABLE, REPORT_CSV, REPORT_JSON, REPORT_HTML };

/* "licenses" / "securescore" / "findings"; "table" / "csv" / "json" / "html".
 * parse: 0 and *out, or -1 for an unknown name. */
const char *report_kind_name(enum report_kind k);
int report_kind_parse(const char *s, enum report_kind *out);
const char *report_format_name(enum report_format f);
int report_format_parse(const char *s, enum report_format *out);

#define REPORT_DEFAULT_UNUSED_DAYS 30
/* A run of unused seats goes on over a few days with no snapshot (pulls
 * failing: no evidence either way); more days than this in a row without
 * one end it. */
#define REPORT_UNUSED_MAX_GAP_DAYS 7
/* Microsoft makes each tenant's daily Secure Score at its own time of day: a
 * tenant pulled before its score of the day was made is one day behind the
 * others without anything wrong. More than that is stale. */
#define REPORT_SCORE_LAG_DAYS 1
#define REPORT_NTRENDS 4           /* 7, 30, 90 days, since tracking began */
extern const int report_trend_days[REPORT_NTRENDS];  /* 7, 30, 90, 0 (= since the first day) */

struct report_opts {
	enum report_kind kind;
	enum report_format format;
	const char *const *tenants;  /* tenant ids to report (NULL = every tenant in the store) */
	size_t ntenants;
	const char *const *scope;    /* without tenants: only these tenant ids (the configured ones;
	                              * the others are left out and named in report.left_out); NULL = all */
	size_t nscope;
	int days;                    /* securescore: the last N days of daily rows (0 = all);
	                              * licenses/findings: N days in a row for "unused" (0 = default) */
	int failing_hours;           /* licenses/findings: a tenant whose pulls and syncs have failed this
	                              * long is a finding (alerts.failing_hours); 0 = never */
	bool by_user;                /* licenses: per-user rows */
	bool controls;               /* securescore: per-control breakdown of the newest day */
	const char *title;           /* HTML title; NULL = "entrasync report" */
};

/* ---- policy hooks ----------------------------------------------------------- */

/* A SKU as the license hook sees it (sku = { sku_id, part, name, purchased,
 * assigned, available, suspended, warning, locked_out, status, applies_to }). */
struct report_sku_in {
	const char *sku_id, *part, *name, *status, *applies_to;
	long long purchased, assigned, available, suspended, warning, locked_out;
};
/* What the hook said; NULL / false fields keep the defaults. Strings owned
 * (report_sku_shape_free). */
struct report_sku_shape {
	char *name;                  /* rename */
	bool hide;                   /* leave the SKU out of reports and findings */
	bool billable_set, billable; /* default: billable unless the SKU is free */
	bool unit_price_set;
	double unit_price;
	char *group;                 /* bundle: SKUs with one group are added up */
};
void report_sku_shape_free(struct report_sku_shape *s);

/* s and prev = { date, current, max, percent } */
struct report_score_point {
	const char *date;
	double current, max, percent;
};

struct report_hooks {
	/* Returns 0 (out filled), 1 when the tenant's policy has no such hook, or
	 * -1 with err. NULL function = no hook for any tenant. */
	int (*license)(void *ctx, const char *tenant_id, const struct report_sku_in *sku,
	               struct report_sku_shape *out, struct err *err);
	/* *alert = a new string (free) or NULL; prev is NULL on the first day.
	 * Returns like license. */
	int (*secure_score)(void *ctx, const char *tenant_id, const struct report_score_point *s,
	                    const struct report_score_point *prev, char **alert, struct err *err);
	void *ctx;
};

/* ---- the model --------------------------------------------------------------- */

struct report_sku {
	char *sku_id, *part, *name, *status, *group;
	long long purchased, assigned, available, suspended, warning, locked_out;
	bool billable, hidden, known;  /* known: in Microsoft's SKU name table */
	bool unit_price_set;
	double unit_price;
	int unused_days;              /* days up to the newest with purchased - assigned > 0 on each snapshot
	                               * (gaps up to REPORT_UNUSED_MAX_GAP_DAYS without one included) */
	int unused_snapshots;         /* the snapshot days of that run (= unused_days when one a day) */
	long long unused_least;       /* the fewest seats free on a day of that run (0 when none) */
};

struct report_user {
	char *object_id, *upn, *display_name;
	bool enabled;
	char *removed;                /* NULL or the mirror's reason */
	char **skus;                  /* display names */
	size_t nskus;
};

struct report_day {
	char date[11];
	double current, max;
};

struct report_control {
	char *name, *title, *category;
	double score, max;            /* max from the control profile, 0 when unknown */
};

struct report_tenant {
	char *id, *name;
	/* licences: the newest snapshot */
	char *license_day;            /* NULL when the tenant has no snapshot */
	struct report_sku *skus;
	size_t nskus;
	struct report_user *users;    /* --by-user: users holding licences */
	size_t nusers;
	/* Secure Score history (oldest first) and trends */
	struct report_day *days;
	size_t ndays;
	bool trend_set[REPORT_NTRENDS];
	double trend[REPORT_NTRENDS]; /* percentage points */
	int rank;                     /* 1 = best newest percent; 0 = no score */
	bool score_stale;             /* its newest score is more than REPORT_SCORE_LAG_DAYS older than the
	                               * report's newest (none stored since: its pulls failing) */
	double avg_all_tenants;       /* Microsoft's comparative averages (percent of max), < 0 = unknown */
	double avg_similar_seats;
	struct report_control *controls;  /* --controls: the newest day's per-control scores */
	size_t ncontrols;
	char *alert;                  /* the secure_score hook's alert for the newest day, or NULL */
	char *hook_error;             /* the first policy hook error of the tenant, or NULL */
};

struct report {
	char generated_at[32];
	int unused_days;              /* the threshold used */
	struct report_tenant *tenants;  /* in rank order, then name */
	size_t ntenants;
	struct findings findings;     /* sorted */
	bool checked[FINDING_NKINDS]; /* the kinds of finding this report looked for (a kind it did not look
	                               * for says nothing about whether its alerts still hold) */
	size_t nleft_out;             /* tenants in the store that the scope left out ... */
	struct buf left_out;          /* ... as "name (id), ..." */
};

/* Days since 1970-01-01 of "YYYY-MM-DD" (proleptic Gregorian), or LONG
 * minimum for anything else. */
long report_day_number(const char *d);

/* Newest percent of a tenant (0 when it has no score). */
double report_percent(double current, double max);

/* Builds the report from the store (tenant names from the store's tenants
 * table, else the id). hooks may be NULL. Reads everything the kind needs:
 * licences + findings for licenses and findings, scores + findings from
 * the secure_score hook for securescore (and findings). *out is new
 * (report_free). */
int report_build(struct store *st, const struct report_opts *o, const struct report_hooks *hooks,
                 struct report **out, struct err *err);
void report_free(struct report *r);

/* Renders r as o->format into out (appended). */
int report_render(const struct report *r, const struct report_opts *o, struct buf *out, struct err *err);
/* The renderers behind it (report_render.c, report_html.c). */
void report_render_table(const struct report *r, const struct report_opts *o, struct buf *out);
void report_render_csv(const struct report *r, const struct report_opts *o, struct buf *out);
int report_render_json(const struct report *r, const struct report_opts *o, struct buf *out, struct err *err);
void report_render_html(const struct report *r, const struct report_opts *o, struct buf *out);

/* Text helpers shared by the renderers: s cut or padded to width columns
 * (UTF-8 aware; a cut string ends with '~'), right-aligned when right. */
void report_cell(struct buf *out, const char *s, int width, bool right);
/* Appends s escaped for HTML text and attributes. */
void report_html_escape(struct buf *out, const char *s);
/* Appends s as a CSV field (quoted when it holds , " CR or LF). */
void report_csv_field(struct buf *out, const char *s);

/* The text of printf("%.Nf", v), byte for byte, without printf (report_fmt.c):
 * N = decimals, 0..4 (anything else goes to snprintf). out holds
 * REPORT_FMT_CAP bytes; returns the length. add: appended to out. */
#define REPORT_FMT_CAP 352
size_t report_fmt_fixed(char *out, double v, int decimals);
void report_add_fixed(struct buf *out, double v, int decimals);

/* ---- the policy binding (lua_license.c) --------------------------------------- */

struct config;
/* The license and secure_score hooks of each configured tenant's policy:
 * one sandboxed state per tenant, made on the tenant's first call (a
 * policy that does not load is reported once, as the hook error of its
 * tenants). cfg must outlive the binding. */
struct report_lua;
struct report_lua *report_lua_new(const struct config *cfg);
void report_lua_free(struct report_lua *rl);
/* Fills hooks with the binding's functions. */
void report_lua_hooks(struct report_lua *rl, struct report_hooks *hooks);

/* Checks what a license hook returned (a JSON object, or NULL for nil)
 * and fills *out: name (string), hide, billable (booleans), unit_price
 * (number >= 0), group (string); any other key or type is an error naming
 * it. And the same for secure_score: NULL or { alert = string } (an
 * absent/false alert = none). Exposed for tests. */
struct cJSON;
int report_shape_from_json(const struct cJSON *v, struct report_sku_shape *out, struct err *err);
int report_alert_from_json(const struct cJSON *v, char **alert, struct err *err);

#endif
