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
 *      with a report for text and JSON output.
 *
 * Field sets are struct syncro_fields (syncro.h): v[f] owned strings, NULL
 * = absent; customer_id is held as decimal text like the other fields.
 * Rules the plan keeps (issue 4):
 *   - a NULL desired field is never written; a blank ("" or only spaces)
 *     desired value never blanks a Syncro field (treated as NULL);
 *   - create_only fields are written on create only;
 *   - e-mail compares ASCII case-insensitively, other fields exactly;
 *   - renames and e-mail changes are updates; a user who comes back
 *     (linked, in scope again) is updated, never created twice. */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "syncro.h"
#include "util.h"

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
};

/* The link of a user to a Syncro contact (the store's row, fields parsed). */
struct engine_link {
	long long contact_id;
	long long customer_id;
	struct syncro_fields fields;         /* as last written (owned) */
};
void engine_link_free(struct engine_link *l);

/* What on_leave said for a leaving linked user. */
enum engine_leave_kind { ENGINE_LEAVE_KEEP, ENGINE_LEAVE_DELETE, ENGINE_LEAVE_CHANGES };
struct engine_leave {
	enum engine_leave_kind kind;
	struct syncro_fields changes;        /* ENGINE_LEAVE_CHANGES: fields to set ("" blanks) */
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
	char *reason;                        /* include()'s reason (skip), or a message */
	long long contact_id;                /* adopt/update/delete/mark/keep/unchanged; 0 for create */
	long long customer_id;               /* the contact's customer */
	unsigned changed;                    /* bits of the fields sent (create: every non-NULL) */
	struct syncro_fields before;         /* old values of the changed fields (delete: all known) */
	struct syncro_fields after;          /* the values sent (only the changed fields) */
	struct syncro_fields written;        /* every known field after the write: the link's new fields */
	long long *candidates;               /* conflict: the contacts with the e-mail */
	size_t ncandidates;
	bool held;                           /* destructive, not applied: the tenant is held */
};
void engine_action_free(struct engine_action *a);

/* Why a linked user would leave (ENGINE_WHY_NONE when in scope). For a
 * user who is not linked the answer only says "not in scope". */
enum engine_why engine_user_leaving(const struct engine_user *u);

/* Plans one user.
 *   link     the user's link or NULL;
 *   leave    what on_leave said: needed (non-NULL) when link && leaving,
 *            else ignored — evaluate on_leave only then;
 *   cands    when not linked and included: the existing contacts of the
 *            desired customer matching the user's e-mail (mail, then UPN,
 *            see engine_contacts_match), none of them linked to anyone.
 * Fills *out (zeroed first; engine_action_free it). Fails only on
 * inconsistent input (e.g. leave missing). */
int engine_plan_user(const struct engine_plan_opts *o, const struct engine_user *u,
                     const struct engine_link *link, const struct engine_leave *leave,
                     const struct syncro_contact *const *cands, size_t ncands, struct engine_action *out,
                     struct err *err);

/* ---- field sets */

/* Is the value blank: NULL, "" or only ASCII whitespace? */
bool engine_blank(const char *v);
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
/* create_only names → bits; unknown names fail naming them. */
int engine_fields_mask(const char *const *names, size_t n, unsigned *mask, struct err *err);

/* ---- the contact index: a customer's existing contacts by e-mail */

struct engine_contacts;
struct engine_contacts *engine_contacts_new(void);
void engine_contacts_free(struct engine_contacts *ix);
/* Was the customer's list added? */
bool engine_contacts_has(const struct engine_contacts *ix, long long customer_id);
/* Adds (takes over) a customer's contact list; *list is emptied. Replaces a
 * list added before for that customer. */
void engine_contacts_add(struct engine_contacts *ix, long long customer_id, struct syncro_contact_list *list);
/* The contacts of customer_id whose e-mail equals email case-insensitively
 * (up to max into out; returns how many match in all). Contacts marked
 * taken are left out. Borrowed pointers, valid until the list is replaced. */
size_t engine_contacts_find(const struct engine_contacts *ix, long long customer_id, const char *email,
                            const struct syncro_contact **out, size_t max);
/* Matches a user: the contacts with u->mail; if none, with u->upn; if none,
 * with the desired e-mail. Returns how many (up to max in out). */
size_t engine_contacts_match(const struct engine_contacts *ix, long long customer_id, const struct engine_user *u,
                             const struct syncro_contact **out, size_t max);
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

#endif
