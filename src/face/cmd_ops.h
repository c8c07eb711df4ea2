/* cmd_ops — what the operator commands (status, audit, conflicts, link,
 * unlink; pull and sync for the retention) share: loading the config for its database and tenants, naming
 * a tenant by id or name, opening the store,
 * and printing a contact-field diff. */
#ifndef ENTRASYNC_CMD_OPS_H
#define ENTRASYNC_CMD_OPS_H

#include <stdbool.h>
#include "face/commands.h"
#include "util/config.h"
#include "store/store.h"
#include "store/store_retention.h"
#include "store/store_status.h"
#include "util/util.h"

/* The tenant id that `given` names: a configured tenant's id or name
 * (ASCII case-insensitive), else given itself (a tenant only the store
 * knows). Borrowed from cfg or given. */
const char *ops_tenant_id(const struct config *cfg, const char *given);
/* The same, and when given is no configured id or name: the configured
 * tenant that is the same Microsoft tenant by the organization its last
 * pull stored (its GUID when the config names it by domain, or a verified
 * domain). st may be NULL. Borrowed from cfg or given. */
const char *ops_tenant_id_in(const struct config *cfg, struct store *st, const char *given);

/* Whether `given` names a tenant: a configured one (id or name, any case)
 * or one the store holds (st may be NULL: no database yet). */
bool ops_tenant_known(const struct config *cfg, struct store *st, const char *given);
/* For a --tenant that names no tenant: prints "unknown tenant 'x' (did you
 * mean 'y'?)" (or the configured names), the one message of every command,
 * and returns EXIT_USAGE. A given with a comma is a list given to a command
 * that takes one tenant: said so. */
int ops_tenant_unknown(const char *cmd, const struct config *cfg, const char *given);

/* For a command that acts on configured tenants (pull, sync, bill): marks
 * in sel[cfg->ntenants] each tenant names has (ops_tenant_id_in: id, name,
 * or its GUID or a verified domain known from the pulls; st may be NULL),
 * every tenant when names is empty. 0, or EXIT_USAGE after
 * ops_tenant_unknown's message for a name that is none of them. */
int ops_tenants_select(const char *cmd, const struct config *cfg, struct store *st, const struct opt_list *names,
                       bool *sel);
/* For a command that reads what the store holds (report): ids[k] = the
 * tenant names->v[k] names: a configured one (as ops_tenants_select:
 * borrowed from cfg), else one only the store holds, by its row's id or
 * name (names->v[k] itself). 0, EXIT_USAGE after ops_tenant_unknown's
 * message, or EXIT_NOSTART when the store cannot be read (said). */
int ops_tenants_resolve(const char *cmd, const struct config *cfg, struct store *st, const struct opt_list *names,
                        const char **ids);

/* Loads the config (policies not read) for command cmd. Prints the problem
 * and returns EXIT_USAGE on failure, else 0. */
int ops_config_load(const char *cmd, const struct global_opts *g, struct config *cfg);

/* Opens the store of cfg. When the database does not exist yet and create
 * is false, returns STORE_NOTFOUND with *st NULL. Prints the problem and
 * returns EXIT_NOSTART on failure. */
int ops_store_open(const char *cmd, const struct config *cfg, bool create, struct store **st);

/* One changed field of a before/after pair of JSON objects. */
struct ops_change {
	char *field;
	char *before;              /* JSON text of the value, NULL = absent */
	char *after;
};
/* The fields whose values differ between before and after (JSON objects or
 * NULL), in after's order then before's. *out: ops_changes_free. */
size_t ops_changes(const char *before, const char *after, struct ops_change **out);
void ops_changes_free(struct ops_change *v, size_t n);

/* What p says was deleted, appended to out ("3 runs older than 90 days (300
 * tenant results), 12 finished intents older than 90 days"); nothing when
 * nothing was. */
void ops_pruned_text(const struct config_retention *r, const struct store_pruned *p, struct buf *out);
/* The store's retention from the config's. */
struct store_retention ops_retention_of(const struct config *cfg);

/* Writes s (NULL: nothing) to stdout safe for a terminal (str_term_safe):
 * for text from Microsoft, Syncro or a policy (names, errors, values). */
void ops_put(const char *s);

/* The configured tenant whose id is exactly id, a store row's key (a row
 * left by an id whose case changed in the config is not configured), or
 * NULL. */
const struct config_tenant *ops_tenant_configured(const struct config *cfg, const char *id);
/* The config's tenant that the store's tenant row id stands for: the one
 * of that id, else one the config names another way (the GUID or a
 * verified domain of the organization the row's last pull stored) that has
 * no row of its own yet: the next pull or sync renames the row to it
 * (ops_tenants_rekey). NULL when none: the config no longer has it. */
const struct config_tenant *ops_tenant_row_configured(const struct config *cfg, struct store *st, const char *id);
/* The other way round: the id of the store's row that configured tenant ct
 * stands for when it has no row of its own (new string), else NULL. */
char *ops_tenant_row_of(const struct config *cfg, struct store *st, const struct config_tenant *ct);

/* Before a pull or a sync: each configured tenant the store does not know
 * by its id, but knows as the same Microsoft tenant under another id (its
 * domain before its GUID, say: by the organization its last pull stored),
 * gets that tenant's rows, renamed (store_tenant_rekey), so that it keeps
 * its links and its contacts are not created again. Says each on the log.
 * A row another configured tenant has is left alone (the config names one
 * tenant twice: a warning). 0, or -1 with err. */
int ops_tenants_rekey(const struct config *cfg, struct store *st, struct err *err);

/* After a run that wrote (pull, sync; not a dry run): deletes the history
 * older than cfg's retention (store_prune) and describes what went in *out
 * ("3 runs older than 90 days (300 tenant results), 12 finished intents"),
 * left empty when nothing did. 0, or -1 with err. */
int ops_retention(const struct config *cfg, struct store *st, struct store_pruned *p, struct buf *out,
                  struct err *err);

/* A pull or a sync started by hand, a timer or cron (not a daemon's run:
 * the daemon says it at each run itself) warns when the Graph certificate
 * expires within GRAPH_CERT_WARN_DAYS, or has: their logs are all such an
 * install reads. */
void ops_cert_warn(const struct config *cfg);

#endif
