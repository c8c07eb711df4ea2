/* engine_stream — planning a tenant's whole mirror: the users are read from
 * the store in batches (never all held), each evaluated with the tenant's
 * policy (include/contact, on_leave for a leaving linked user), matched to
 * existing contacts when not linked, planned (engine_plan_user), and handed
 * to the caller one action at a time. Links whose user is gone from the
 * mirror come in object_id order with the users, as users deleted in
 * Entra. The caller decides what an
 * action becomes (applied, deferred, counted: engine_sync.c; counted only:
 * the benchmark). */
#ifndef ENGINE_STREAM_H
#define ENGINE_STREAM_H

#include "engine/engine.h"
#include "engine/engine_policy.h"

struct store;
struct store_outbox;

struct engine_planner {
	struct store *st;
	struct store_outbox *ob;
	const char *tenant_id;
	struct engine_policy *pol;
	long long default_customer;          /* the tenant's Syncro customer */
	struct engine_contacts *ix;          /* existing contacts by customer (filled by need_contacts) */
	const struct engine_contacts *made;  /* contacts the run made so far (engine_contacts_made), or NULL */
	size_t batch;                        /* users per store read; 0 = 500 */
	/* The linked users whose contact is gone from Syncro (sync --verify:
	 * object id -> index into gone_contacts), or NULL: each is planned as a
	 * user with no link, its action carrying gone_contact */
	const struct str_index *gone;
	const long long *gone_contacts;
	/* Makes sure customer_id's contacts are in ix: 0 ok, > 0 skip this user
	 * (the callback reported why), < 0 stop the tenant. */
	int (*need_contacts)(void *ud, long long customer_id, const char *label);
	/* The contact as Syncro has it now, for a leaver whose on_leave would
	 * change it, or a user in scope whose link holds no fields (made by
	 * `entrasync link`) (may be NULL: the link's fields are used): 0 read
	 * (*out filled, owned: syncro_fields_free), 2 not in Syncro any more,
	 * 1 skip this user (the callback reported why), < 0 stop the tenant. */
	int (*contact_now)(void *ud, long long contact_id, struct syncro_fields *out, const char *label);
	/* Takes the action (moves it out, or frees it): 0 go on, < 0 stop; 1
	 * when it was a linked user's update whose contact turned out deleted
	 * in Syncro (its link dropped): the user is planned again as one with
	 * no link, and that action emitted too. */
	int (*emit)(void *ud, struct engine_action *a);
	/* A problem with one user (policy error, unreadable link): it is
	 * skipped, the others go on. */
	void (*user_error)(void *ud, const char *label, const char *msg);
	/* After each batch (may be NULL): 0 go on, < 0 stop. */
	int (*batch_done)(void *ud);
	void *ud;
	long long users;                     /* out: users planned (also skipped ones) */
	long long stamped;                   /* out: of which unchanged by their stamp (not evaluated) */
};

/* Plans every mirrored user of the tenant. A linked user whose plan stamp
 * (the policy's stamp base + removed state + Graph JSON + groups) equals
 * the one its link holds is emitted unchanged (or kept, when leaving)
 * without evaluating the policy: a policy, program or tenant change
 * re-plans everyone, a change in Entra re-plans that user. Every action
 * carries its stamp (engine_action.stamp). Returns 0; -1 when the store
 * failed (err); -2 when a callback stopped it. Candidates for adoption
 * exclude contacts linked to anyone (any tenant), which are marked taken
 * in ix on the way. */
int engine_plan_tenant(struct engine_planner *p, struct err *err);

#endif
