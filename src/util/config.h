/* config — the runtime configuration (a trusted Lua file, see README):
 * plain C data, filled by the loader in src/script/lua_config.c (the scripting
 * layer, since only it includes lua.h) and read by every other layer.
 * The non-Lua parts (locating the file, freeing, URL policy, "did you
 * mean") live in src/util/config.c.
 * All strings are owned by the struct and freed by config_free. Secrets
 * (client_secret, api_key) are registered with log_secret_add as soon as
 * they are read. */
#ifndef ENTRASYNC_CONFIG_H
#define ENTRASYNC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "util/util.h"

struct config_graph {
	char *client_id;
	char *client_secret;      /* or certificate + private_key */
	char *certificate;        /* PEM file path (resolved) */
	char *private_key;        /* PEM file path (resolved) */
	char *jwt_alg;            /* "PS256" (default) or "RS256" */
	char *authority;          /* default https://login.microsoftonline.com (no trailing '/') */
	char *endpoint;           /* default https://graph.microsoft.com (no trailing '/') */
	char *ca_file;            /* extra trust anchor (resolved path) or NULL */
	int pull_workers;         /* worker processes of a pull; 0 = one per core (see graph_pull_workers_auto) */
	double outage_seconds;    /* a pull stops once Graph (or its token endpoint) has not answered this long;
	                           * 0 = default (60) */
	double timeout_seconds;   /* one attempt at Graph or its token endpoint gives up after this long;
	                           * 0 = default (120) */
};

struct config_syncro {
	char *base_url;           /* https://SUB.syncromsp.com/api/v1 (from subdomain too), no trailing '/' */
	char *api_key;
	double requests_per_minute; /* default 180; above 180 is allowed with a warning */
	char *ca_file;            /* extra trust anchor (resolved path) or NULL */
	double outage_seconds;    /* a run stops once Syncro has not answered this long; 0 = default (60) */
	double timeout_seconds;   /* one attempt at Syncro gives up after this long; 0 = default (60) */
};

struct config_tenant {
	char *id;                 /* GUID or domain */
	char *name;               /* display name, may be NULL */
	long long syncro_customer_id;  /* 0 when mapped by name */
	char *syncro_customer;    /* business_name, or NULL */
	char *policy;             /* resolved path; defaults to config.policy */
	char *billing_schedule;   /* its recurring invoice (name, or id in digits); NULL = billing.schedule */
	bool billing_schedule_off;     /* billing_schedule = false: invoiced per period, billing.schedule not taken */
	int line;                 /* line of this entry in the config file (0 = unknown) */
	int policy_line;          /* line of its `policy =` key, else of the default's */
};

struct config_limits {
	long long instructions;   /* per policy call; default 10,000,000 */
	double seconds;           /* CPU seconds per policy call; default 10 */
	size_t memory_bytes;      /* per Lua state; default 64 MiB */
};

/* actions = { ... }: Microsoft actions taken from Syncro tickets
 * (`entrasync user tickets`, and the sync run). All NULL when absent. */
struct config_actions {
	char *ticket_problem_type;  /* tickets of this problem type; NULL = ticket actions off */
	char *ticket_status_done;   /* status after a done action; NULL = unchanged */
	char *ticket_status_failed; /* after a refused or failed one; NULL = unchanged */
};

/* billing = { ... }: `entrasync bill --schedules` (and the sync run). */
struct config_billing {
	char *schedule;             /* default schedule of every tenant: name, or id in digits; NULL = none */
	bool remove;                /* on_removed = "remove" (else "zero", the default) */
	long long max_decrease_count;   /* max_decrease.count; -1 = unset (billing's default) */
	double max_decrease_percent;    /* max_decrease.percent (0..100); -1 = unset */
	bool schedules_on_sync;     /* a sync run also keeps the schedules in step (default false) */
};

/* alerts = { ... }: findings as Syncro tickets (alerts.h). */
struct config_alerts {
	bool enabled;               /* `report` (and the sync run) raise alerts; default false */
	char *problem_type;         /* never NULL after a load: default CONFIG_DEFAULT_ALERT_PROBLEM */
	char *subject_prefix;       /* never NULL after a load: default CONFIG_DEFAULT_ALERT_PREFIX */
	int unused_days;            /* "unused" threshold of the findings alerted on; default 30 */
	int failing_hours;          /* a tenant whose pulls and syncs have failed this long is a finding; default 24, 0 = never */
};

/* retention = { ... }: how long the history that only grows is kept, in
 * days (store_retention.h); 0 = for ever. */
struct config_retention {
	int runs_days;              /* runs, their per-tenant results, finished intents; default 90 */
	int audit_days;             /* the audit trail; default 0 (kept) */
	int score_detail_days;      /* Secure Score days' control scores; default 365; 0 or >= 90 */
};

struct config {
	char *path;               /* the config file, as given */
	char *dir;                /* its folder; relative paths resolve here */
	char *database;           /* resolved; default state/entrasync.db */
	char *policy;             /* resolved default policy path, or NULL */
	int policy_line;          /* line of the top-level `policy =` (0 = unset) */
	struct config_graph graph;
	struct config_syncro syncro;
	struct config_tenant *tenants;
	size_t ntenants;
	char *csp_partner_tenant; /* NULL when unset */
	struct config_limits limits;
	struct config_actions actions;
	struct config_billing billing;
	struct config_alerts alerts;
	struct config_retention retention;
};

#define CONFIG_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define CONFIG_DEFAULT_ENDPOINT  "https://graph.microsoft.com"
#define CONFIG_DEFAULT_DATABASE  "state/entrasync.db"
#define CONFIG_DEFAULT_RPM       180.0
#define CONFIG_PULL_WORKERS_MAX  16     /* graph.pull_workers, pull --workers */
#define CONFIG_DEFAULT_INSTRUCTIONS 10000000LL
#define CONFIG_DEFAULT_SECONDS 10.0
#define CONFIG_DEFAULT_MEMORY_MB 64
#define CONFIG_DEFAULT_ALERT_PROBLEM "Other"
#define CONFIG_DEFAULT_ALERT_PREFIX  "[entrasync]"
#define CONFIG_DEFAULT_UNUSED_DAYS   30
#define CONFIG_DEFAULT_FAILING_HOURS 24
#define CONFIG_DEFAULT_RUNS_DAYS     90
#define CONFIG_DEFAULT_AUDIT_DAYS    0
#define CONFIG_DEFAULT_SCORE_DETAIL_DAYS 365
#define CONFIG_SCORE_DETAIL_MIN_DAYS 90      /* Graph keeps 90 days of Secure Score */

/* Where the config is: explicit_path when not NULL, else $ENTRASYNC_CONFIG
 * when set and non-empty, else "entrasync.lua" (the current folder).
 * Returns explicit_path, the environment string or a literal: never free. */
const char *config_locate(const char *explicit_path);

/* config_load_opts flags */
enum {
	/* Do not check that policy files exist (`entrasync check` reads each
	 * policy itself so that it can report every policy problem). */
	CONFIG_SKIP_POLICY_FILES = 1 << 0,
	/* A missing or empty `tenants` is no problem (`entrasync tenants
	 * discover`: a new CSP partner runs it to get the entries to paste). */
	CONFIG_TENANTS_OPTIONAL = 1 << 1,
};

/* Loads and validates the config file at path into *cfg (zeroed first).
 * The file runs in its own plain Lua state (base, string, table, math and
 * env(NAME [, default]); setmetatable refuses __gc) under the limits of
 * config_set_run_limits, in one protected call (a traceback when the error
 * comes from a function it called); it sets globals (global functions are taken as
 * helpers and ignored) or returns a table of the same keys.
 * Errors name the file and line ("entrasync.lua:12: unknown key 'tenant'
 * at top level (did you mean 'tenants'?)"). Every problem found is
 * reported, one per line, ordered by line, in err->msg (cut short with a
 * count when it does not fit). On failure *cfg is left empty; calling
 * config_free on it is harmless. Messages never hold secret values.
 * Implemented in lua_config.c. */
int config_load(const char *path, struct config *cfg, struct err *err);
int config_load_opts(const char *path, unsigned flags, struct config *cfg, struct err *err);
/* The same from the config's text in memory (len bytes): path names it in
 * messages and its folder is where relative paths resolve, as if the text
 * had been read from path. config_load_opts reads path through
 * snapshot_file_read (the daemon's accepted copy when a run has one, see
 * snapshot.h) and calls this. */
int config_load_text(const char *path, const char *text, size_t len, unsigned flags, struct config *cfg,
                     struct err *err);

/* The limits the config file's chunk runs under: 100 million Lua
 * instructions and 256 MiB of Lua memory (an endless loop or a runaway table
 * ends in a message naming its line). 0 restores a default. For tests, which
 * cannot wait for the real budget under valgrind. */
void config_set_run_limits(long instructions, size_t memory_bytes);

/* Frees every string and the tenant array, and zeroes *cfg. NULL is fine. */
void config_free(struct config *cfg);

/* Returns 0 when url is https:// (with a host), or http:// to a loopback
 * host (127.0.0.0/8, ::1, localhost). Else returns -1 and fills err with a
 * message naming key ("graph.endpoint 'http://x' ..."). TLS is always
 * verified; there is no switch to turn it off. */
int config_check_url(const char *key, const char *url, struct err *err);

/* Is s a tenant id: a GUID (8-4-4-4-12 hex) or a DNS domain name with at
 * least one dot ("contoso.onmicrosoft.com")? */
int config_is_tenant_id(const char *s);
/* A tenant id in lower case, in place. Both forms (GUIDs, domains) are
 * case-insensitive; the loader keeps them in lower case, as Microsoft
 * writes them, so that the store's rows (keyed by the config's text)
 * stay the same tenant whatever case the config is written in. */
void config_tenant_id_fold(char *s);

/* "Did you mean": the entry of valid (NULL-terminated) nearest to given —
 * Levenshtein distance <= 2 (and shorter than given), else one that given
 * is a prefix of (or that is a prefix of given). Leading dashes are
 * ignored for the prefix rule. NULL when nothing is close. */
const char *config_nearest(const char *given, const char *const *valid);
/* The configured tenant name or id nearest to given (config_nearest over
 * both, compared without case), or NULL. Borrowed from cfg. */
const char *config_tenant_nearest(const struct config *cfg, const char *given);
/* "unknown tenant 'X'" with what follows it appended to out: "(did you mean
 * 'Contoso'?)" when one is near, else the configured tenants, the first ten
 * and how many more. */
void config_tenant_unknown_hint(const struct config *cfg, const char *given, struct buf *out);

#endif
