/* engine — the sync engine: pull (Graph → store), plan (store + policy →
 * actions), apply (actions → Syncro), per tenant.
 *
 * This header has three parts:
 *   1. the plan (engine_plan.c): pure C over plain structs — no Lua, no
 *      HTTP, no SQLite — so every rule is unit-testable: desired contact
 *      fields vs the fields last written → create / adopt / update / leave
 *      (keep, delete, mark) / conflict / unchanged; the contact index used
 *      for adoption; the removal guard; field sets as JSON.
 *   2. apply (engine_apply.c): the ONE function every Syncro write goes
 *      through (intent → send → result + link + audit), its dry-run
 *      recorder, and the recovery of intents left open by a crash.
 *   3. the run (engine_sync.c): `entrasync sync` for every selected tenant,
 *      with a report for text and JSON output (engine_report.c). The loop
 *      over a tenant's mirror is engine_stream.h (plan stamps skip users
 *      whose inputs did not change); the policy as the engine calls it is
 *      engine_policy.h.
 *
 * Field sets are struct syncro_fields (syncro.h): v[f] owned strings, NULL
 * = absent; customer_id is held as decimal text like the other fields.
 * Rules the plan keeps (issue 4):
 *   - a NULL desired field is never written; a blank ("" or only spaces)
 *     desired value never blanks a Syncro field (treated as NULL);
 *   - create_only fields are written on create only;
 *   - e-mail compares ASCII case-insensitively, other fields exactly;
 *   - renames and e-mail changes are updates; a user who comes back
 *     (linked, in scope again) is updated, never created twice, and what
 *     a leaver's mark wrote goes back (the mark taken out) where contact()
 *     does not set the field. */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "graph/graph.h"
#include "syncro/syncro.h"
#include "util/util.h"

/* ================================================================ 1. plan */

/* What the plan decided for one user. */
enum engine_kind {
	ENGINE_SKIP,        /* not in scope and not linked: nothing to do */
	ENGINE_UNCHANGED,   /* linked and in scope, nothing differs */
	ENGINE_CREATE,      /* no link, no existing contact: POST */
	ENGINE_ADOPT,       /* no link, exactly one existing contact with the e-mail: link it,
	                     * PUT what differs (nothing sent when nothing differs) */
	ENGINE_UPDATE,      /* linked, some fields differ: PUT the changed fields */
	ENGINE_DELETE,      /* linked and leaving, on_leave "delete" */
	ENGINE_MARK,        /* linked and leaving, on_leave returned field changes that differ */
	ENGINE_KEEP,        /* linked and leaving, on_leave "keep" (or the marks are already there) */
	ENGINE_CONFLICT,    /* no link, several existing contacts with the e-mail: nothing done */
	ENGINE_NKINDS
};
/* "skip", "unchanged", "create", "adopt", "update", "delete", "mark", "keep", "conflict". */
const char *engine_kind_name(enum engine_kind k);
/* Kinds that remove or mark a contact: what the removal guard counts. */
bool engine_kind_destructive(enum engine_kind k);

/* Why a linked user leaves. */
enum engine_why {
	ENGINE_WHY_NONE,         /* in scope */
	ENGINE_WHY_DELETED,      /* removed in Entra (the mirror row is marked removed) */
	ENGINE_WHY_DISABLED,     /* present, out of scope, accountEnabled false */
	ENGINE_WHY_OUT_OF_SCOPE, /* present, enabled, include() said no */
};
/* NULL, "deleted", "disabled", "out_of_scope" (on_leave's `why`). */
const char *engine_why_name(enum engine_why w);

/* One user as the plan sees it (all borrowed). */
struct engine_user {
	const char *object_id;               /* Entra object id: the identity */
	const char *label;                   /* for messages: name, mail or id (may be NULL) */
	const char *mail, *upn;              /* for the first link by e-mail (may be NULL) */
	bool removed;                        /* removed in Entra */
	bool disabled;                       /* accountEnabled is false */
	bool included;                       /* include() said yes (ignored when removed) */
	const char *reason;                  /* include()'s reason, or NULL */
	/* contact() fields when included, with customer_id set (the policy's, else
	 * the tenant's customer). NULL when not included. */
	const struct syncro_fields *desired;
	/* A contact with the user's e-mail that is another user's: linked to a
	 * user who has left (the directory: an account deleted and made again
	 * with the same address; or the policy's scope: the old account of a
	 * migration, disabled), linked to a user who is there with the same
	 * address (two tenants of one customer), or made by this run for
	 * another user: without a free candidate, the user is a conflict on it,
	 * not a new contact (a duplicate in Syncro). taken_note (NULL = none)
	 * says who holds it; taken_contact is its id (0: a contact the dry run
	 * would make). */
	long long taken_contact;
	const char *taken_note;
	/* With taken_note: the customer's contact that would have been adopted
	 * (found by the user's UPN, say) had adopting it not given it an e-mail
	 * taken_contact has; listed beside it in the conflict (0: none). */
	long long taken_also;
};

/* The link of a user to a Syncro contact (the store's row, fields parsed). */
struct engine_link {
	long long contact_id;
	long long customer_id;
	struct syncro_fields fields;         /* as last written (owned) */
	/* What a leaver's mark (an on_leave change) replaced: the values the
	 * fields it wrote had before it (links.marked; "" = none; all NULL:
	 * no mark). Owned. */
	struct syncro_fields marked;
	/* For a user back in scope with a mark: the contact as Syncro has it
	 * now (have_now; else the fields as last written stand for it). Owned. */
	struct syncro_fields now;
	bool have_now;
};
void engine_link_free(struct engine_link *l);

/* What on_leave said for a leaving linked user. */
enum engine_leave_kind { ENGINE_LEAVE_KEEP, ENGINE_LEAVE_DELETE, ENGINE_LEAVE_CHANGES };
struct engine_leave {
	enum engine_leave_kind kind;
	struct syncro_fields changes;        /* ENGINE_LEAVE_CHANGES: fields to set ("" blanks) */
	/* The contact as Syncro had it when on_leave was asked (read for a
	 * change: the "before" of what changes, in the plan and the audit),
	 * or all NULL (the link's fields are that before). Owned. */
	struct syncro_fields now;
	bool have_now;
};
void engine_leave_free(struct engine_leave *l);

/* Plan options of a tenant. */
struct engine_plan_opts {
	unsigned create_only;                /* bit (1u << enum syncro_field) per create-only field */
};

/* The action planned for a user. Everything owned; engine_action_free. */
struct engine_action {
	enum engine_kind kind;
	enum engine_why why;                 /* leave kinds: why the user leaves */
	char *object_id;
	char *label;                         /* may be NULL */
	char *reason;                        /* include()'s reason (skip); a conflict's message ("contacts #1,
	                                      * #2 of customer 7 have this e-mail", or who holds its one contact) */
	long long contact_id;                /* adopt/update/delete/mark/keep/unchanged; 0 for create */
	/* The contact the user's link points to, found gone from Syncro (not in
	 * its customer's list: sync --verify; or a 404 when a leaver's contact
	 * was read for on_leave, or one whose link holds no fields); the user
	 * is planned as one with no link, and
	 * the link is dropped before the action is applied. 0 = no. */
	long long gone_contact;
	/* gone_contact was found by reading the contact (for on_leave: the
	 * leaver, a skip, has nothing left to mark; or a link with no fields),
	 * not by --verify */
	bool gone_read;
	long long customer_id;               /* the contact's customer */
	/* create: the highest contact id the customer had when it was listed
	 * for this plan (0 = not known). A contact the create made has a
	 * higher one: recovery after a crash does not take an older contact
	 * (one made by hand) for the one the create may have made. */
	long long newer_than;
	unsigned changed;                    /* bits of the fields sent (create: every non-NULL) */
	struct syncro_fields before;         /* old values of the changed fields (delete: all known) */
	struct syncro_fields after;          /* the values sent (only the changed fields) */
	/* every known field after the write: the link's new fields (empty in
	 * an unchanged action from engine_plan_tenant: the link keeps its own) */
	struct syncro_fields written;
	long long *candidates;               /* conflict: the contacts with the e-mail */
	size_t ncandidates;
	bool held;                           /* destructive, not applied: the tenant is held */
	/* The plan stamp of the inputs that gave this action (engine_stream.h):
	 * kept in the link (links.stamp), so a later run whose inputs hash
	 * the same knows the user is unchanged without evaluating the policy.
	 * "" = none. restamp: unchanged/keep whose link holds another stamp
	 * (the link is rewritten with this one; nothing is sent). */
	char stamp[20];                      /* 16 hex digits, ":k" when the user is leaving */
	bool restamp;
	/* When set, the block holding every string above (engine_action_own):
	 * they are not to be freed or replaced one by one. */
	char *pool;
	/* mark: the link's marked values after it (JSON: what the fields any
	 * mark of this leave wrote had before the first), NULL otherwise (a
	 * link written for any other action has no mark left). Owned, not in
	 * the pool. */
	char *marked;
};
void engine_action_free(struct engine_action *a);
/* Copies the strings the action points to but does not own (object_id,
 * label, reason, the field sets) into one block it owns (a->pool): one
 * allocation instead of one per string. A written value that is the very
 * pointer sent (after) shares its copy. */
void engine_action_own(struct engine_action *a);

/* Why a linked user would leave (ENGINE_WHY_NONE when in scope). For a
 * user who is not linked the answer only says "not in scope". */
enum engine_why engine_user_leaving(const struct engine_user *u);

/* Plans one user.
 *   link     the user's link or NULL;
 *   leave    what on_leave said: needed (non-NULL) when link && leaving,
 *            else ignored — evaluate on_leave only then;
 *   cands    when not linked and included: the existing contacts of the
 *            desired customer matching the user's e-mail (mail, then UPN,
 *            see engine_contacts_match), none of them linked to anyone;
 *            when linked and in scope: the other contacts of the customer
 *            the contact is to be in that hold the e-mail it is to have
 *            (engine_contacts_holding), looked up when the update would
 *            change its e-mail or its customer. Then the user is a conflict
 *            (nothing written): the update would make a second contact with
 *            that e-mail in that customer.
 * Fills *out (zeroed first; engine_action_free it). Fails only on
 * inconsistent input (e.g. leave missing). */
int engine_plan_user(const struct engine_plan_opts *o, const struct engine_user *u,
                     const struct engine_link *link, const struct engine_leave *leave,
                     const struct syncro_contact *const *cands, size_t ncands, struct engine_action *out,
                     struct err *err);

/* ---- field sets */

/* Is the value blank: NULL, "" or only ASCII whitespace? */
bool engine_blank(const char *v);
/* The value a field that a leaver's mark set to wrote (over was, its value
 * before) goes back to when the user is back in scope, given what the
 * contact has in it now (NULL: nothing): now with the text the mark put
 * above was taken out (p.mark's line), was when the mark replaced the
 * value and now is still what it wrote, else now (the mark is gone or was
 * changed by hand). Borrowed from the arguments (or ""). */
const char *engine_unmarked(const char *now, const char *wrote, const char *was);
/* Does want differ from have for field f (email: case-insensitively)? */
bool engine_field_differs(enum syncro_field f, const char *want, const char *have);
/* Copies every non-NULL value of src into dst (replacing). */
void engine_fields_overlay(struct syncro_fields *dst, const struct syncro_fields *src);
/* The JSON object of the non-NULL fields (customer_id as a number when it is
 * an integer). New string (free). */
char *engine_fields_to_json(const struct syncro_fields *fs);
/* Parses such an object (strings, numbers → text; other members ignored)
 * into *fs (emptied first). NULL or "" gives an empty set. */
int engine_fields_from_json(const char *json, struct syncro_fields *fs, struct err *err);
/* Is json exactly the text engine_fields_to_json writes for the non-blank
 * fields of fs? Then parsing json gives those fields, and a re-plan need
 * not parse it. Compared as it goes, nothing built. False when unsure. */
bool engine_fields_same_json(const struct syncro_fields *fs, const char *json);
/* Does the link's stamp (the links.stamp column: 16 hex digits, ":k" when
 * the user was leaving; NULL = none) carry this stamp's 16 digits?
 * *leaving (optional) gets whether it ends in ":k". */
bool engine_stamp_matches(const char *link_stamp, const char *stamp, bool *leaving);
/* A fast 64-bit fingerprint of len bytes, continuing from h (start:
 * ENGINE_STAMP_SEED). Not cryptographic. */
#define ENGINE_STAMP_SEED 14695981039346656037ULL
uint64_t engine_hash(uint64_t h, const void *data, size_t len);
/* create_only names → bits; unknown names fail naming them. */
int engine_fields_mask(const char *const *names, size_t n, unsigned *mask, struct err *err);

/* ---- the contact index: a customer's existing contacts by e-mail */

struct engine_contacts;
struct engine_contacts *engine_contacts_new(void);
void engine_contacts_free(struct engine_contacts *ix);
/* Was the customer's list added? */
bool engine_contacts_has(const struct engine_contacts *ix, long long customer_id);
/* A customer whose list could not be read in this run: the result and the
 * message (borrowed), else NULL. Kept so that its later users do not ask
 * again (each listing with its retries) nor repeat the error at length. */
const char *engine_contacts_failed(const struct engine_contacts *ix, long long customer_id, enum syncro_result *rc);
void engine_contacts_fail(struct engine_contacts *ix, long long customer_id, enum syncro_result rc, const char *msg);
/* Adds (takes over) a customer's contact list; *list is emptied. Replaces a
 * list added before for that customer. */
void engine_contacts_add(struct engine_contacts *ix, long long customer_id, struct syncro_contact_list *list);
/* The contacts of customer_id whose e-mail equals email case-insensitively
 * (up to max into out; returns how many match in all). Contacts marked
 * taken are left out. Borrowed pointers, valid until the list is replaced. */
size_t engine_contacts_find(const struct engine_contacts *ix, long long customer_id, const char *email,
                            const struct syncro_contact **out, size_t max);
/* The contacts of customer_id whose e-mail equals email case-insensitively,
 * taken or not, but for the contact except_id (up to max into out; returns
 * how many in all). */
size_t engine_contacts_holding(const struct engine_contacts *ix, long long customer_id, const char *email,
                               long long except_id, const struct syncro_contact **out, size_t max);
/* A contact made (or adopted) by this run (contact_id; 0 in a dry run,
 * which makes none) with this e-mail, for user object_id of tenant_id. */
struct engine_made {
	long long contact_id;
	char *email;
	char *tenant_id;
	char *object_id;
	bool adopted;                        /* an existing contact the run adopted, not one it made */
};
/* Records a contact this run made or adopted (in a registry of the run's,
 * apart from the tenants' indexes): a later user of the run with its
 * e-mail, of any tenant, is then not given a second one, in a dry run too. */
void engine_contacts_made(struct engine_contacts *ix, long long customer_id, long long contact_id, const char *email,
                          const char *tenant_id, const char *object_id, bool adopted);
/* The contact this run made in customer_id with email (any case), or NULL. */
const struct engine_made *engine_contacts_made_find(const struct engine_contacts *ix, long long customer_id,
                                                    const char *email);
/* The same for a user, by the addresses engine_contacts_match uses, in its order. */
const struct engine_made *engine_contacts_made_match(const struct engine_contacts *ix, long long customer_id,
                                                     const struct engine_user *u);
/* Matches a user: the contacts with u->mail; if none, with u->upn; if none,
 * with the desired e-mail. Returns how many (up to max in out). */
size_t engine_contacts_match(const struct engine_contacts *ix, long long customer_id, const struct engine_user *u,
                             const struct syncro_contact **out, size_t max);
/* The i-th contact of the customer's list (taken or not), or NULL past the end. */
const struct syncro_contact *engine_contacts_nth(const struct engine_contacts *ix, long long customer_id, size_t i);
/* The highest contact id of the customer's list, or 0 (not listed, none). */
long long engine_contacts_max_id(const struct engine_contacts *ix, long long customer_id);
/* Marks a contact as taken (linked): later finds leave it out. */
void engine_contacts_take(struct engine_contacts *ix, long long customer_id, long long contact_id);
/* The contact with this id in the customer's list, or NULL. */
const struct syncro_contact *engine_contacts_get(const struct engine_contacts *ix, long long customer_id,
                                                 long long contact_id);

/* ---- the removal guard */

#define ENGINE_MAX_REMOVALS_COUNT   5
#define ENGINE_MAX_REMOVALS_PERCENT 10.0

struct engine_guard {
	long long links;                     /* the tenant's linked contacts */
	long long removals;                  /* deletes + marks this run would make */
	long long present_users;             /* users present in the mirror after the pull */
	long long max_count;                 /* policy max_removals.count; < 0 = default */
	double max_percent;                  /* policy max_removals.percent; < 0 = default */
	bool allow_removals;                 /* sync --allow-removals */
};
/* true when the tenant must be held (nothing destructive done), with the
 * reason in reason[cap]: more removals than max(count, percent % of links),
 * or no user in the mirror while links exist. allow_removals releases. */
bool engine_guard_check(const struct engine_guard *g, char *reason, size_t cap);
/* The most removals g lets through: max(count, percent % of the links). */
long long engine_guard_limit(const struct engine_guard *g);

/* ================================================================ 2. apply */

struct store;
struct store_outbox;

/* What applying needs for one tenant. Borrowed pointers. */
struct engine_apply {
	struct store *st;
	struct store_outbox *ob;
	struct syncro_client *sc;            /* listing always; writes unless dry_run */
	bool dry_run;                        /* writes recorded, not sent; the store left alone */
	long long run_id;                    /* 0 = none */
	const char *tenant_id;
	/* Test hook: runs after the intent is committed, right before the send
	 * (crash tests kill the process here). NULL = none. */
	void (*before_send)(void *ud, const struct engine_action *a);
	/* Test hook: runs after the send returned, before its result is
	 * recorded (crash tests kill the process here). NULL = none. */
	void (*after_send)(void *ud, const struct engine_action *a);
	void *hook_ud;
	/* counters */
	long long sent;                      /* Syncro writes sent (whatever their answer) */
	long long recorded;                  /* dry run: writes that would have been sent */
};

/* The outcome of one action. */
struct engine_outcome {
	enum syncro_result rc;               /* SYNCRO_OK, or why it failed */
	long long contact_id;                /* the contact written (create: the new one) */
	char error[1024];                    /* when rc != SYNCRO_OK */
	bool wrote;                          /* a Syncro write was sent (or recorded) */
	bool link_dropped;                   /* 404 on update/mark: the link is gone (an update's user is planned again) */
	bool pending;                        /* unknown outcome of a create: left for recovery */
};

/* Applies one planned action — the ONE path of every Syncro write:
 *   1. records the intent (outbox row, committed);
 *   2. sends it (dry run: a recorder stands in for the send, nothing is
 *      written to the store either);
 *   3. records, in one transaction, the intent's result, the link (put,
 *      or dropped after a delete / a 404) and an audit row (time, tenant,
 *      Entra id, contact id, action, fields before → after, result).
 * Syncro failures are outcomes (out->rc): 422 → recorded against the
 * contact; 404 on update/mark → link dropped; 404 on delete → already gone
 * (success); a create whose answer was lost → intent left pending for
 * engine_recover; 401 → out->rc SYNCRO_UNAUTHORIZED (the caller stops).
 * Actions that write nothing to Syncro (adopt with nothing to change, a
 * conflict) are recorded in the store only; so is an unchanged/kept link
 * taking a new plan stamp (restamp), inside the caller's transaction when
 * one is open. Skip, and unchanged/keep without restamp: nothing.
 * Returns -1 only when the store fails (err). */
int engine_apply_action(struct engine_apply *ap, const struct engine_action *a, struct engine_outcome *out,
                        struct err *err);
/* An action whose user's contact is gone from Syncro (a->gone_contact,
 * sync --verify): drops the link and writes its audit row ("unlink",
 * result "not_found: …"), in one transaction, before the action itself is
 * applied. Nothing in a dry run. -1 when the store fails (err). */
int engine_apply_contact_gone(struct engine_apply *ap, const struct engine_action *a, struct err *err);

/* Loads (or, with refresh, reloads) a customer's contacts into the index
 * (a Syncro read, also in a dry run), leaving out none: linked contacts are
 * filtered at match time. */
int engine_contacts_load(struct engine_apply *ap, struct engine_contacts *ix, long long customer_id, bool refresh,
                         enum syncro_result *rc, struct err *err);

/* What recovery did. */
struct engine_recovery {
	long long open;                      /* open intents found */
	long long relinked;                  /* creates found applied: linked to the contact */
	long long not_applied;               /* creates not found: planned again */
	long long superseded;                /* other writes: planned again */
};

/* Recovers the tenant's open intents (left by a crash between a send and
 * its record, or an unknown outcome): a create is re-matched by e-mail (or,
 * without one, by name) among the unlinked contacts of its customer, listed
 * afresh: found → linked (the newest match), not found → closed "not
 * applied" so the plan creates it; other writes are closed and planned
 * again. Never creates anything itself. A dry run recovers nothing. */
int engine_recover(struct engine_apply *ap, struct engine_contacts *ix, struct engine_recovery *rec,
                   struct err *err);

/* ================================================================ 3. the run */

struct config;
struct graph_client;

struct engine_tenant_report;   /* below; for on_tenant_done */
struct engine_sync_opts {
	const char *const *tenants;          /* ids or names (case-insensitive); NULL/0 = every tenant */
	size_t ntenants;
	bool dry_run;                        /* plan + recorder: no Syncro write, no link/audit/intent */
	bool allow_removals;                 /* release the removal guard for this run */
	bool skip_pull;                      /* plan from the mirror as it is (no Graph) */
	bool record_plan;                    /* keep the actions in the report (for printing) */
	/* List the customers' contacts and check every linked user's contact is
	 * still there (a deleted one: link dropped, the user planned again) */
	bool verify;
	size_t batch;                        /* users read per store batch; 0 = 500 */
	/* passed to struct engine_apply (crash tests) */
	void (*before_send)(void *ud, const struct engine_action *a);
	void (*after_send)(void *ud, const struct engine_action *a);
	void *hook_ud;
	/* Called as each tenant ends (ok, failed or held; r is its finished
	 * report), in order, before the next one starts: done of total tenants
	 * have ended. NULL = not called. */
	void (*on_tenant_done)(void *ud, size_t done, size_t total, const struct engine_tenant_report *r);
	void *tenant_done_ud;
};

/* Counts of one tenant (what was done, or in a dry run what would be). */
struct engine_counts {
	long long created, adopted, updated, removed, marked, kept, unchanged, conflicts, skipped, held, errors;
	long long users;                     /* mirrored users planned */
	long long gone;                      /* linked contacts found gone from Syncro (verify) */
	long long verified;                  /* linked contacts found in Syncro's lists (verify) */
	long long unverified;                /* gone, but more than the guard allows: left alone (verify) */
	long long duplicates;                /* other contacts with a linked contact's e-mail (verify) */
};

/* An action as it went: the plan and its outcome. */
struct engine_done {
	struct engine_action a;
	enum syncro_result rc;               /* SYNCRO_OK when done (or recorded) */
	char *error;                         /* NULL when fine */
};

struct engine_tenant_report {
	char *id, *name;                     /* name may be NULL */
	const char *status;                  /* "ok" | "failed" | "held" */
	char *reason;                        /* why held / failed (NULL when ok) */
	char *warning;                       /* what the pull could not read that the sync does without
	                                      * (a missing permission for licences, Secure Score), or NULL */
	long long customer_id;
	char *customer_name;                 /* may be NULL */
	bool policy_changed;                 /* the policy's hash differs from the last sync's */
	struct engine_counts n;
	char **errors;                       /* one line each */
	size_t nerrors, errors_dropped;
	/* sync --verify: another contact of the customer with a linked
	 * contact's e-mail (made in Syncro beside it), one line each */
	char **duplicates;
	size_t nduplicates, duplicates_dropped;
	struct engine_done *plan;            /* record_plan: actions other than skip/unchanged/keep */
	size_t nplan, capplan;
	struct engine_recovery recovery;
	long long writes;                    /* Syncro writes sent (dry run: that would be sent) */
	double seconds;
};

struct engine_report {
	struct engine_tenant_report *t;
	size_t n;
	bool dry_run;
	bool fatal;                          /* the run stopped (Syncro 401, or Syncro not answering) */
	char fatal_msg[1024];
	char fatal_why[48];                  /* "Syncro 401", "Syncro not answering": for the tenants skipped */
	bool syncro_asked;                   /* a customer was asked for this run (the API token known to work) */
	size_t graph_unavailable;            /* tenants not pulled: Graph was found not answering (the pull
	                                      * stopped; the tenants pulled before are synced) */
	char graph_msg[256];                 /* then what the run says of it, else "" */
	long long run_id;
	long long writes;
	struct graph_pull_http pull_http;    /* the HTTP counters of the pull's worker processes */
};
void engine_report_free(struct engine_report *r);
/* 0 when every tenant is ok with no error, else 1 (EXIT_PARTIAL). */
int engine_report_exit_code(const struct engine_report *r);
/* The plan / result per tenant: "+" create, "~" update/adopt with
 * "field: old → new", "-" delete, "!" conflict or held; then counts. */
void engine_report_print_text(FILE *f, const struct engine_report *r);
/* {"dry_run":…,"tenants":[{"id","name","status","created","updated","removed",
 * "unchanged",…,"errors":[…],"plan":[…]}]} */
void engine_report_print_json(FILE *f, const struct engine_report *r);

/* What a run uses (borrowed). gc may be NULL with skip_pull. */
struct engine_env {
	const struct config *cfg;
	struct store *st;
	struct graph_client *gc;
	struct syncro_client *sc;
};

/* Syncs the selected tenants: for each, resolves its Syncro customer,
 * loads its policy; pulls them all from Graph; then per tenant recovers
 * open intents, plans every mirrored user (streamed from the store in
 * batches), applies non-destructive actions as they come and destructive
 * ones after the removal guard. One tenant's failure never stops the
 * others; a Syncro 401 stops the run (rep->fatal). Fills *rep (free with
 * engine_report_free) also on failure. Returns -1 only when the run cannot
 * start (unknown --tenant, store failure starting the run). */
/* Marks in sel[cfg->ntenants] the tenants named (id or name, any case);
 * none named = all. Fails naming an unknown one and listing the others. */
int engine_tenants_select(const struct config *cfg, const char *const *names, size_t n, bool *sel, struct err *err);

int engine_sync(const struct engine_env *env, const struct engine_sync_opts *o, struct engine_report *rep,
                struct err *err);

#endif
