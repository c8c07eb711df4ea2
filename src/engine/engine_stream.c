/* engine_stream — the planner's loop over a tenant's mirror: batches of
 * users with their link and groups, and the links of users gone from the
 * mirror in their place (store_plan_batch); what the planner reads of a
 * user's JSON text (json_scan), policy evaluation, adoption candidates, one
 * action per user to the caller. Holds one batch at a time. */
#include "engine/engine_stream.h"

#include <stdlib.h>
#include <string.h>


#include "util/json_scan.h"
#include "util/log.h"
#include "store/store.h"
#include "store/store_outbox.h"

#define DEFAULT_BATCH 500
#define MAX_CANDIDATES 64

/* A row of a batch, copied out of the store: its strings live in the
 * batch's arena (valid until the next batch is read). */
enum { COL_OBJECT_ID, COL_JSON, COL_REMOVED, COL_FIELDS, COL_GROUPS, COL_STAMP, COL_MARKED, NCOLS };
struct row {
	const char *object_id, *json, *removed, *fields, *groups, *stamp, *marked;
	size_t json_len;
	size_t at[NCOLS];     /* while reading: offsets into the arena + 1 (0 = NULL) */
	bool linked;
	long long contact_id, customer_id;
};

/* One batch of rows, their strings in one arena (no allocation per row
 * once the arena has grown to a batch's size). */
struct batch {
	struct row *v;
	size_t n, cap;
	struct buf arena;
	size_t max_json;      /* the longest JSON text seen (sizes the scratch buffer) */
};

/* Appends s (with its NUL) to the arena: its offset + 1, or 0 for NULL. */
static size_t arena_add(struct buf *a, const char *s)
{
	if (!s) return 0;
	size_t at = a->len;
	buf_add(a, s, strlen(s) + 1);
	return at + 1;
}

static int take_row(const struct store_plan_row *r, void *ud)
{
	struct batch *b = ud;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->v = xrealloc(b->v, b->cap * sizeof *b->v);
	}
	struct row *row = &b->v[b->n++];
	*row = (struct row){ .linked = r->linked, .contact_id = r->contact_id, .customer_id = r->customer_id };
	row->at[COL_OBJECT_ID] = arena_add(&b->arena, r->object_id);
	row->at[COL_JSON] = arena_add(&b->arena, r->json);
	row->at[COL_REMOVED] = arena_add(&b->arena, r->removed);
	row->at[COL_FIELDS] = arena_add(&b->arena, r->fields);
	row->at[COL_GROUPS] = r->groups && *r->groups ? arena_add(&b->arena, r->groups) : 0;
	row->at[COL_STAMP] = arena_add(&b->arena, r->stamp);
	row->at[COL_MARKED] = arena_add(&b->arena, r->marked);
	if (r->json) {
		row->json_len = b->arena.len - row->at[COL_JSON];
		if (row->json_len > b->max_json) b->max_json = row->json_len;
	}
	return 0;
}

/* After the batch is read (the arena no longer moves): offsets into pointers. */
static void batch_resolve(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct row *r = &b->v[i];
		const char **cols[NCOLS] = { &r->object_id, &r->json, &r->removed, &r->fields, &r->groups, &r->stamp,
		                             &r->marked };
		for (int k = 0; k < NCOLS; k++) *cols[k] = r->at[k] ? b->arena.data + r->at[k] - 1 : NULL;
	}
}

static void batch_clear(struct batch *b)
{
	b->n = 0;
	buf_reset(&b->arena);
}

/* What a conflict on another user's contact says to do when that user has
 * the address too. */
#define TWO_USERS_ONE_ADDRESS "one contact cannot be two users'; leave one of them out of the policy, or give one " \
                              "another address"

/* Makes sure customer cust's contacts are in the index (listed from
 * Syncro the first time). 0 ok, 1 skip the user (reported), -2 stopped. */
static int contacts_ready(struct engine_planner *p, long long cust, const char *label)
{
	if (engine_contacts_has(p->ix, cust)) return 0;
	int rc = p->need_contacts(p->ud, cust, label);
	return rc == 0 ? 0 : rc < 0 ? -2 : 1;
}

/* Who holds the contact a link points to, for a conflict on it (*note):
 * a user who has left (gone from the directory: removed in the mirror, or
 * not there at all; or last planned as leaving: disabled, out of the
 * policy's scope, the link's stamp ends ":k"): 1, and the unlink that frees
 * the contact; else a user who is there with this address too (two tenants
 * of one customer): 2. -1 store failure (err). */
static int link_holder(struct engine_planner *p, const struct store_link *l, char *note, size_t cap,
                       struct err *err)
{
	struct store_user ou = { 0 };
	int rc = store_user_get(p->st, l->tenant_id, l->object_id, &ou, err);
	if (rc < 0) return -1;
	size_t sl = l->stamp ? strlen(l->stamp) : 0;
	const char *how = rc == STORE_NOTFOUND ? "no longer mirrored"
	                  : ou.removed && strcmp(ou.removed, "deleted") == 0 ? "deleted from the directory"
	                  : ou.removed ? "soft-deleted in the directory"
	                  : sl >= 2 && strcmp(l->stamp + sl - 2, ":k") == 0 ? "who left the policy's scope (disabled or excluded)"
	                  : NULL;
	if (how)
		snprintf(note, cap, "contact #%lld with this e-mail is linked to user %s of tenant %s, %s: "
		         "'entrasync unlink --tenant %s %s' lets the next sync adopt it for this user", l->contact_id,
		         l->object_id, l->tenant_id, how, l->tenant_id, l->object_id);
	else
		snprintf(note, cap, "contact #%lld with this e-mail is linked to user %s of tenant %s, who has it too: "
		         TWO_USERS_ONE_ADDRESS, l->contact_id, l->object_id, l->tenant_id);
	store_user_free(&ou);
	return how ? 1 : 2;
}

/* The first taken contact of the customer with one of the user's
 * addresses (mail, UPN, desired e-mail, in the order the match uses) that
 * is linked: noted in u as candidates() notes a linked match (1 a user who
 * left, 2 one who is there). 0 none, -1 store failure (err). */
static int taken_holder(struct engine_planner *p, struct engine_user *u, long long cust, char *note, size_t cap,
                        struct err *err)
{
	const char *keys[3] = { u->mail, u->upn, u->desired ? u->desired->v[SYNCRO_F_EMAIL] : NULL };
	for (size_t k = 0; k < 3; k++) {
		const struct syncro_contact *h[MAX_CANDIDATES];
		size_t nh = engine_contacts_holding(p->ix, cust, keys[k], 0, h, MAX_CANDIDATES);
		if (nh > MAX_CANDIDATES) nh = MAX_CANDIDATES;
		for (size_t i = 0; i < nh; i++) {
			struct store_link l = {0};
			int rc = store_link_find_contact(p->st, cust, h[i]->id, &l, err);
			int holder = rc == 0 ? link_holder(p, &l, note, cap, err) : 0;
			store_link_free(&l);
			if (rc < 0 || holder < 0) return -1;
			if (holder > 0) {
				u->taken_contact = h[i]->id;
				u->taken_note = note;
				return holder;
			}
		}
	}
	return 0;
}

/* For a user whose one candidate c would be adopted: when adopting it
 * would give it the user's e-mail (c was found by the UPN, or by another
 * address) while another contact of the customer has that e-mail (linked
 * or not), or a contact this run made or adopted has it, the customer
 * would end with two contacts for one address. Then that holder is noted
 * in u (taken_contact, taken_note in note, c as taken_also) and 1 is
 * returned: the user becomes a conflict, as a new user whose address a
 * linked contact has. 0: the adoption gives no second contact. */
static int adopt_gives_second(const struct engine_planner *p, struct engine_user *u, long long cust,
                              const struct syncro_contact *c, char *note, size_t cap)
{
	const char *want = u->desired->v[SYNCRO_F_EMAIL];
	if (engine_blank(want) || (p->pol->plan.create_only & (1u << SYNCRO_F_EMAIL)) ||
	    !engine_field_differs(SYNCRO_F_EMAIL, want, c->f.v[SYNCRO_F_EMAIL]))
		return 0;
	const struct syncro_contact *holder[1];
	const struct engine_made *mk = NULL;
	long long holder_id;
	if (engine_contacts_holding(p->ix, cust, want, c->id, holder, 1) > 0)
		holder_id = holder[0]->id;
	else if (p->made && (mk = engine_contacts_made_find(p->made, cust, want)) != NULL)
		holder_id = mk->contact_id;
	else
		return 0;
	/* a linked holder already noted keeps its note (who holds it, how to free it) */
	if (!(u->taken_note && u->taken_contact == holder_id && holder_id)) {
		if (mk && !holder_id)
			snprintf(note, cap, "the contact this run would make for user %s of tenant %s has the e-mail %s: "
			         "adopting contact #%lld for this user would give it that address too, a second contact; "
			         "nothing written", mk->object_id, mk->tenant_id, want, c->id);
		else
			snprintf(note, cap, "contact #%lld of customer %lld has the e-mail %s already: adopting contact #%lld "
			         "for this user would give it that address too, a second contact; nothing written",
			         holder_id, cust, want, c->id);
		u->taken_note = note;
	}
	u->taken_contact = holder_id;
	u->taken_also = c->id;
	return 1;
}

/* The existing, unlinked contacts of the user's desired customer matching
 * its e-mail. Linked ones (by any tenant) are taken out of the index; the
 * first whose user has left the directory, else the first whose user is
 * there with this address too, is noted in u->taken_contact (note holds
 * the message); with no contact, one this run made for another user with
 * this address is noted the same way. 0 ok, > 0 skip the user, -1 store
 * failure (err), -2 stopped. */
static int candidates(struct engine_planner *p, struct engine_user *u, const struct syncro_contact **out,
                      size_t *n, const char *label, char *note, size_t cap, struct err *err)
{
	long long cust = strtoll(u->desired->v[SYNCRO_F_CUSTOMER_ID], NULL, 10);
	*n = 0;
	int ready = contacts_ready(p, cust, label);
	if (ready != 0) return ready;
	int noted = 0;   /* what holds u->taken_contact: 1 a user who left, 2 one who is there */
	for (;;) {
		size_t m = engine_contacts_match(p->ix, cust, u, out, MAX_CANDIDATES), kept = 0;
		if (m > MAX_CANDIDATES) m = MAX_CANDIDATES;
		bool took = false;
		for (size_t i = 0; i < m; i++) {
			struct store_link l = {0};
			int rc = store_link_find_contact(p->st, cust, out[i]->id, &l, err);
			int holder = 0;
			if (rc == 0 && noted != 1) {
				char this_note[512];
				holder = link_holder(p, &l, this_note, sizeof this_note, err);
				if (holder > 0 && (!noted || holder < noted)) {
					snprintf(note, cap, "%s", this_note);
					u->taken_contact = out[i]->id;
					u->taken_note = note;
					noted = holder;
				}
			}
			store_link_free(&l);
			if (rc < 0 || holder < 0) return -1;
			if (rc == 0) {
				engine_contacts_take(p->ix, cust, out[i]->id);
				took = true;
			} else {
				out[kept++] = out[i];
			}
		}
		/* a linked match hid others (mail → UPN fallback): match again */
		if (!took) {
			*n = kept;
			break;
		}
	}
	if (*n == 1 && adopt_gives_second(p, u, cust, out[0], note, cap)) {
		*n = 0;
		return 0;
	}
	if (*n == 0 && !noted) {
		/* a linked contact an earlier user of the run matched is taken (out
		 * of the finds above) but still another user's: this user too is a
		 * conflict on it, not a new contact */
		int holder = taken_holder(p, u, cust, note, cap, err);
		if (holder < 0) return -1;
		if (holder > 0) noted = holder;
	}
	const struct engine_made *mk = *n || noted || !p->made ? NULL : engine_contacts_made_match(p->made, cust, u);
	if (mk) {
		if (mk->contact_id)
			snprintf(note, cap, "contact #%lld with this e-mail was %s by this run for user %s of tenant %s, "
			         "who has it too: " TWO_USERS_ONE_ADDRESS, mk->contact_id, mk->adopted ? "adopted" : "made",
			         mk->object_id, mk->tenant_id);
		else
			snprintf(note, cap, "the contact this run would make for user %s of tenant %s has this e-mail too: "
			         TWO_USERS_ONE_ADDRESS, mk->object_id, mk->tenant_id);
		u->taken_contact = mk->contact_id;
		u->taken_note = note;
	}
	return 0;
}

/* For a linked user in scope whose update would change its contact's
 * e-mail or move it to another customer: the other contacts of that
 * customer that have that e-mail, unless the contact has it there already
 * (the customer's contacts are listed for it only then; engine_plan_user
 * makes the user a conflict on them). 0 ok, > 0 skip the user, -2 stopped. */
static int holders(struct engine_planner *p, const struct engine_user *u, const struct engine_link *link,
                   const struct syncro_contact **out, size_t *n, const char *label)
{
	*n = 0;
	const char *want = u->desired->v[SYNCRO_F_EMAIL], *have = link->fields.v[SYNCRO_F_EMAIL];
	const char *cust_text = u->desired->v[SYNCRO_F_CUSTOMER_ID];
	long long cust = cust_text ? strtoll(cust_text, NULL, 10) : 0;
	bool mail_changes = !engine_blank(want) && !(p->pol->plan.create_only & (1u << SYNCRO_F_EMAIL)) &&
	                    engine_field_differs(SYNCRO_F_EMAIL, want, have);
	bool moves = cust > 0 && cust != link->customer_id;
	const char *email = mail_changes ? want : have;
	if ((!mail_changes && !moves) || engine_blank(email)) return 0;
	if (!moves) cust = link->customer_id;
	int ready = contacts_ready(p, cust, label);
	if (ready != 0) return ready;
	/* the contact has that e-mail in that customer already (a link made by
	 * hand to one of several, a technician who typed the new address):
	 * no second contact is made, whoever else has it */
	const struct syncro_contact *own = engine_contacts_get(p->ix, cust, link->contact_id);
	if (own && !engine_field_differs(SYNCRO_F_EMAIL, email, own->f.v[SYNCRO_F_EMAIL])) return 0;
	*n = engine_contacts_holding(p->ix, cust, email, link->contact_id, out, MAX_CANDIDATES);
	if (*n > MAX_CANDIDATES) *n = MAX_CANDIDATES;
	return 0;
}

/* The row's plan stamp: the policy's stamp base and everything of the
 * user the plan reads (16 hex digits into out[17]). */
static void row_stamp(const struct engine_planner *p, const struct row *row, char out[17])
{
	uint64_t h = p->pol->stamp_base;
	const char *parts[] = { row->removed, row->json, row->groups };
	for (size_t i = 0; i < ARRAY_LEN(parts); i++)
		h = engine_hash(h, parts[i] ? parts[i] : "", parts[i] ? strlen(parts[i]) + 1 : 1);
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, h >>= 4) out[i] = hex[h & 15];
	out[16] = '\0';
}

/* The action's stamp: the 16 digits, ":k" when the user is leaving. */
static void action_stamp(struct engine_action *a, const char stamp[17], bool leaving)
{
	_Static_assert(sizeof a->stamp >= 19, "16 digits, \":k\" and the NUL");
	memcpy(a->stamp, stamp, 16);
	memcpy(a->stamp + 16, leaving ? ":k" : "", leaving ? 3 : 1);
}

/* "Name <addr>" (or whichever is known) into out[cap], without printf. */
static void make_label(char *out, size_t cap, const char *dn, const char *addr, const char *id)
{
	size_t n = 0;
	const char *parts[4] = { dn, dn && addr ? " <" : NULL, addr, dn && addr ? ">" : NULL };
	if (!dn && !addr) parts[0] = id;
	for (size_t i = 0; i < 4; i++) {
		if (!parts[i]) continue;
		size_t l = strlen(parts[i]);
		if (n + l >= cap) l = cap - 1 - n;
		memcpy(out + n, parts[i], l);
		n += l;
	}
	out[n] = '\0';
}

/* The fast path: a linked user whose inputs hash as when its link was last
 * written is unchanged (or, leaving, kept) without evaluating anything. */
static int emit_stamped(struct engine_planner *p, const struct row *row, const char *stamp, bool leaving)
{
	struct engine_action a = { .kind = leaving ? ENGINE_KEEP : ENGINE_UNCHANGED, .contact_id = row->contact_id,
	                           .customer_id = row->customer_id };
	a.object_id = xstrdup(row->object_id);
	action_stamp(&a, stamp, leaving);
	p->users++;
	p->stamped++;
	int rc = p->emit(p->ud, &a) < 0 ? -2 : 0;
	engine_action_free(&a);
	return rc;
}

/* The planner's state over a tenant: the batch being planned and the
 * buffer the users' strings are decoded into. */
struct stream {
	struct batch b;
	struct buf scratch;   /* holds a row's decoded strings: json_len + 1 bytes */
};

/* The members of a user's JSON the planner reads itself (the policy gets
 * the text). */
enum { UK_ENABLED, UK_MAIL, UK_UPN, UK_NAME, UK_N };
static const char *const user_keys[UK_N] = {
	[UK_ENABLED] = "accountEnabled", [UK_MAIL] = "mail", [UK_UPN] = "userPrincipalName",
	[UK_NAME] = "displayName",
};

/* A string member decoded into scratch at *used; NULL when absent, not a
 * string or "". */
static const char *user_string(const struct json_scan_value *v, struct buf *scratch, size_t *used)
{
	if (v->type != JSON_SCAN_STRING) return NULL;
	long n = json_scan_string(v, scratch->data + *used, scratch->cap - *used);
	if (n <= 0) return NULL;
	const char *s = scratch->data + *used;
	*used += (size_t)n + 1;
	return s;
}

#define LABEL_MAX 512

/* The user's mail, UPN and label ("Name <addr>", label[LABEL_MAX]) from
 * its scanned members, decoded into the scratch buffer: only for a user
 * who needs them (not for a re-planned unchanged one). */
static void user_strings(struct stream *sm, const struct json_scan_value *uv, const struct row *row,
                         struct engine_user *u, char *label)
{
	size_t used = 0;
	u->mail = user_string(&uv[UK_MAIL], &sm->scratch, &used);
	u->upn = user_string(&uv[UK_UPN], &sm->scratch, &used);
	make_label(label, LABEL_MAX, user_string(&uv[UK_NAME], &sm->scratch, &used), u->mail ? u->mail : u->upn,
	           row->object_id);
	u->label = label;
}

/* The desired contact fields as engine_desired_fields makes them, but
 * borrowed from the decision (and num[32] for the customer id) instead of
 * copied: valid while d is; never syncro_fields_free'd. */
static void desired_borrowed(const struct policy_decision *d, long long default_customer, char num[32],
                             struct syncro_fields *out)
{
	memset(out, 0, sizeof *out);
	for (int f = 0; f < POLICY_NFIELDS && f < SYNCRO_F_CUSTOMER_ID; f++) {
		union { const char *c; char *m; } v = { d->field[f] };
		out->v[f] = v.m;
	}
	long long cust = d->customer_id > 0 ? d->customer_id : default_customer;
	if (cust > 0) {
		/* "%lld", without printf: the digits from the end */
		char *at = num + 31;
		*at = '\0';
		for (unsigned long long c = (unsigned long long)cust; c; c /= 10) *--at = (char)('0' + c % 10);
		out->v[SYNCRO_F_CUSTOMER_ID] = at;
	}
}

/* engine_plan_user's action for a linked user in scope whose link holds
 * exactly the desired fields: unchanged, its customer the desired one.
 * Like a stamped user's, it carries no label and no field sets (nothing is
 * written; the link keeps its fields), which spares decoding the user's
 * strings and copying the fields per user. */
static void plan_same(const struct engine_user *u, const struct row *row, struct engine_action *a)
{
	const char *cust = u->desired->v[SYNCRO_F_CUSTOMER_ID];
	memset(a, 0, sizeof *a);
	a->kind = ENGINE_UNCHANGED;
	a->object_id = xstrdup(row->object_id);
	a->reason = u->reason ? xstrdup(u->reason) : NULL;
	a->contact_id = row->contact_id;
	a->customer_id = cust ? strtoll(cust, NULL, 10) : 0;   /* digits from desired_borrowed, > 0 */
	if (!a->customer_id) a->customer_id = row->customer_id;
}

/* A linked user in scope whose contact was deleted in Syncro (emit said
 * so on the update's 404; the link is dropped): planned again as a user
 * with no link, as on their first sync (a contact with their e-mail adopted,
 * as after a technician merged duplicates; none: created; several: a
 * conflict), and emitted with the same stamp. 0 go on, -1 store failure,
 * -2 stopped. */
static int plan_unlinked_again(struct engine_planner *p, struct engine_user *u, const char *stamp, const char *label,
                               struct err *err)
{
	const struct syncro_contact *cands[MAX_CANDIDATES];
	size_t ncands = 0;
	char taken_note[512];
	struct engine_action a = {0};
	struct err uerr;
	u->taken_contact = 0;
	u->taken_note = NULL;
	u->taken_also = 0;
	int c = candidates(p, u, cands, &ncands, label, taken_note, sizeof taken_note, err);
	if (c != 0) return c > 0 ? 0 : c;
	if (engine_plan_user(&p->pol->plan, u, NULL, NULL, cands, ncands, &a, &uerr) != 0) {
		p->user_error(p->ud, label, uerr.msg);
		return 0;
	}
	action_stamp(&a, stamp, false);
	if (a.kind == ENGINE_CREATE) a.newer_than = engine_contacts_max_id(p->ix, a.customer_id);
	int rc = p->emit(p->ud, &a) < 0 ? -2 : 0;
	engine_action_free(&a);
	return rc;
}

/* Would on_leave's answer change the contact (a field that differs from
 * what entrasync last wrote; customer_id is not on_leave's to change)? */
static bool leave_changes(const struct engine_leave *leave, const struct syncro_fields *written)
{
	if (leave->kind != ENGINE_LEAVE_CHANGES) return false;
	for (int f = 0; f < SYNCRO_NFIELDS; f++)
		if (f != SYNCRO_F_CUSTOMER_ID && leave->changes.v[f] &&
		    engine_field_differs((enum syncro_field)f, leave->changes.v[f], written->v[f]))
			return true;
	return false;
}

/* The linked contact as Syncro has it now (p->contact_now, non-NULL), in
 * the link's customer whatever Syncro says, into *now (empty; owned
 * after). 0 read; 2 gone from Syncro; 1 skip the user (said why); < 0 stop. */
static int contact_read(struct engine_planner *p, const struct engine_link *link, struct syncro_fields *now,
                        const char *label)
{
	int c = p->contact_now(p->ud, link->contact_id, now, label);
	if (c != 0) return c;
	char cust[32];
	snprintf(cust, sizeof cust, "%lld", link->customer_id);
	syncro_fields_set(now, SYNCRO_F_CUSTOMER_ID, link->customer_id > 0 ? cust : NULL);
	return 0;
}

/* A leaver whose on_leave would change its contact (a mark at the top of
 * its notes): the contact is read from Syncro and on_leave asked again
 * with it as it is there now, so that what a technician typed into it (a
 * note) is built on, not replaced by what entrasync last wrote. 0 go on
 * with *leave; 2 the contact is gone from Syncro (nothing left to mark:
 * the link is dropped); 1 skip the user (said why); < 0 stop. */
static int leave_again(struct engine_planner *p, long long contact_id, const struct engine_link *link,
                       enum engine_why why, struct engine_leave *leave, const char *label)
{
	if (!p->contact_now) return 0;
	struct syncro_fields now = { 0 };
	struct err err;
	int c = contact_read(p, link, &now, label);
	if (c != 0) return c;   /* 2: gone from Syncro */
	struct engine_leave again = { 0 };
	int rc = engine_policy_on_leave(p->pol, &now, contact_id, engine_why_name(why), &again, &err);
	if (rc != 0) {
		p->user_error(p->ud, label, err.msg);
		syncro_fields_free(&now);
		engine_leave_free(&again);
		return 1;
	}
	engine_leave_free(leave);
	*leave = again;
	leave->now = now;   /* moved */
	leave->have_now = true;
	return 0;
}

/* Plans one row and emits the action. 0 go on, -1 store failure, -2 stopped. */
static int plan_row(struct engine_planner *p, struct stream *sm, const struct row *row, struct err *err)
{
	char stamp[17];
	bool leaving_stamp;
	row_stamp(p, row, stamp);
	/* a link whose contact is gone from Syncro counts as none */
	size_t gone_at = row->linked && p->gone ? str_index_get(p->gone, row->object_id) : STR_INDEX_NONE;
	bool linked = row->linked && gone_at == STR_INDEX_NONE;
	if (linked && engine_stamp_matches(row->stamp, stamp, &leaving_stamp))
		return emit_stamped(p, row, stamp, leaving_stamp);

	struct err uerr;
	int rc = 0;
	struct json_scan_value uv[UK_N] = {{0}};
	struct engine_user u = { .object_id = row->object_id };
	struct policy_decision d = {0};
	struct syncro_fields desired = {0};   /* borrowed (desired_borrowed) */
	char desired_customer[32];
	struct engine_link link = { .contact_id = row->contact_id, .customer_id = row->customer_id };
	struct engine_leave leave = {0};
	struct engine_action a = {0};
	char label[LABEL_MAX];
	long long gone_now = 0;   /* the link's contact, found gone when read (for on_leave, or a link with no fields) */

	p->users++;
	if (row->json && json_scan_members(row->json, row->json_len, user_keys, UK_N, uv, &uerr) != 0) {
		err_prefix(&uerr, "user");
		if (!row->removed) {
			make_label(label, sizeof label, NULL, NULL, row->object_id);
			p->user_error(p->ud, label, uerr.msg);
			return 0;
		}
		memset(uv, 0, sizeof uv);   /* removed anyway: only its label is lost */
	}
	u.removed = row->removed != NULL || !row->json;
	u.disabled = uv[UK_ENABLED].type == JSON_SCAN_FALSE;

	if (!u.removed) {
		if (engine_policy_eval_json(p->pol, NULL, row->json, row->groups, &d, &uerr) != 0) {
			user_strings(sm, uv, row, &u, label);
			p->user_error(p->ud, label, uerr.msg);
			goto out;
		}
		u.included = d.include;
		u.reason = d.reason;
		if (d.include) {
			desired_borrowed(&d, p->default_customer, desired_customer, &desired);
			u.desired = &desired;
		}
	}
	enum engine_why why = engine_user_leaving(&u);
	if (linked && why == ENGINE_WHY_NONE && !row->marked && engine_fields_same_json(&desired, row->fields)) {
		/* the link holds exactly the desired fields (the common re-plan
		 * after a policy change): unchanged, the link left unparsed */
		plan_same(&u, row, &a);
		goto emit;
	}
	user_strings(sm, uv, row, &u, label);
	if (linked && (engine_fields_from_json(row->fields, &link.fields, &uerr) != 0 ||
	               engine_fields_from_json(row->marked, &link.marked, &uerr) != 0)) {
		err_prefix(&uerr, "link to contact %lld", row->contact_id);
		p->user_error(p->ud, label, uerr.msg);
		goto out;
	}
	if (linked && why == ENGINE_WHY_NONE && (!row->fields || row->marked) && p->contact_now) {
		/* a link made by hand (`entrasync link`) holds no fields: the
		 * contact is read, so that the plan's before is what Syncro has
		 * and only what differs is sent, as for an adopted contact; a
		 * user back in scope whose contact was marked when they left:
		 * read, so the mark is taken out of it as it is now (what a
		 * technician typed since is kept) */
		int c = contact_read(p, &link, row->fields ? &link.now : &link.fields, label);
		link.have_now = c == 0 && row->fields;
		if (c == 2) {
			gone_now = row->contact_id;   /* planned as a user with no link */
			linked = false;
		} else if (c != 0) {
			rc = c > 0 ? 0 : -2;
			goto out;
		}
	}
	if (linked && why != ENGINE_WHY_NONE &&
	    engine_policy_on_leave(p->pol, &link.fields, row->contact_id, engine_why_name(why), &leave, &uerr) != 0) {
		p->user_error(p->ud, label, uerr.msg);
		goto out;
	}
	if (linked && why != ENGINE_WHY_NONE && leave_changes(&leave, &link.fields)) {
		int c = leave_again(p, row->contact_id, &link, why, &leave, label);
		if (c == 2) {
			/* planned as a leaver with no link, the link dropped: the dry run
			 * says so too, and no write is sent to a contact known gone */
			gone_now = row->contact_id;
			linked = false;
		} else if (c != 0) {
			rc = c > 0 ? 0 : -2;
			goto out;
		}
	}
	const struct syncro_contact *cands[MAX_CANDIDATES];
	size_t ncands = 0;
	char taken_note[512];
	if (why == ENGINE_WHY_NONE) {
		int c = linked ? holders(p, &u, &link, cands, &ncands, label)
		               : candidates(p, &u, cands, &ncands, label, taken_note, sizeof taken_note, err);
		if (c != 0) {
			rc = c > 0 ? 0 : c;
			goto out;
		}
	}
	if (engine_plan_user(&p->pol->plan, &u, linked ? &link : NULL, &leave, cands, ncands, &a, &uerr) != 0) {
		p->user_error(p->ud, label, uerr.msg);
		goto out;
	}
emit:
	if (gone_at != STR_INDEX_NONE) a.gone_contact = p->gone_contacts[gone_at];
	else if (gone_now) {
		a.gone_contact = gone_now;
		a.gone_read = true;
	}
	if (a.kind == ENGINE_CREATE) a.newer_than = engine_contacts_max_id(p->ix, a.customer_id);
	action_stamp(&a, stamp, why != ENGINE_WHY_NONE);
	a.restamp = linked && (a.kind == ENGINE_UNCHANGED || a.kind == ENGINE_KEEP);
	int said = p->emit(p->ud, &a);   /* 1: the contact is gone, plan the user again */
	if (said < 0) rc = -2;
	else if (said == 1 && linked && why == ENGINE_WHY_NONE && u.label)
		rc = plan_unlinked_again(p, &u, stamp, label, err);
out:
	engine_action_free(&a);
	engine_leave_free(&leave);
	engine_link_free(&link);
	policy_decision_free(&d);
	return rc;
}

/* Reads the batch after *after into sm->b (*after becomes where the next
 * one starts, NULL after the last), and makes room in the scratch buffer
 * for its longest user. */
static int read_batch(struct engine_planner *p, struct stream *sm, char **after, long long limit, struct err *err)
{
	char *next = NULL;
	batch_clear(&sm->b);
	int rc = store_plan_batch(p->ob, p->tenant_id, *after, limit, take_row, &sm->b, &next, err);
	free(*after);
	*after = next;
	if (rc != 0) return -1;
	batch_resolve(&sm->b);
	buf_reset(&sm->scratch);
	buf_reserve(&sm->scratch, sm->b.max_json + 1);
	return 0;
}

int engine_plan_tenant(struct engine_planner *p, struct err *err)
{
	struct stream sm = {0};
	char *after = xstrdup("");
	long long limit = p->batch ? (long long)p->batch : DEFAULT_BATCH;
	int rc = 0;
	do {
		if (read_batch(p, &sm, &after, limit, err) != 0) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < sm.b.n && !rc; i++) rc = plan_row(p, &sm, &sm.b.v[i], err);
		if (!rc && p->batch_done && p->batch_done(p->ud) < 0) rc = -2;
	} while (!rc && after);
	free(sm.b.v);
	buf_free(&sm.b.arena);
	buf_free(&sm.scratch);
	free(after);
	return rc;
}
