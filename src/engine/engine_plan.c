/* engine_plan — the plan, as pure C over plain structs: one user's desired
 * contact fields against the fields last written (or an existing contact
 * found by e-mail) give one action; the contact index for adoption; the
 * removal guard; field sets as JSON. No Lua, no HTTP, no SQLite here. */
#include "engine/engine.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/json_scan.h"

static const char *const kind_names[ENGINE_NKINDS] = {
	[ENGINE_SKIP] = "skip", [ENGINE_UNCHANGED] = "unchanged", [ENGINE_CREATE] = "create",
	[ENGINE_ADOPT] = "adopt", [ENGINE_UPDATE] = "update", [ENGINE_DELETE] = "delete",
	[ENGINE_MARK] = "mark", [ENGINE_KEEP] = "keep", [ENGINE_CONFLICT] = "conflict",
};

const char *engine_kind_name(enum engine_kind k)
{
	return (unsigned)k < ENGINE_NKINDS ? kind_names[k] : "?";
}

bool engine_kind_destructive(enum engine_kind k)
{
	return k == ENGINE_DELETE || k == ENGINE_MARK;
}

const char *engine_why_name(enum engine_why w)
{
	switch (w) {
	case ENGINE_WHY_DELETED: return "deleted";
	case ENGINE_WHY_DISABLED: return "disabled";
	case ENGINE_WHY_OUT_OF_SCOPE: return "out_of_scope";
	case ENGINE_WHY_NONE: break;
	}
	return NULL;
}

/* syncro_fields_free, skipping the absent values (most of an action's
 * sets are empty: this runs several times per planned user). */
static void fields_clear(struct syncro_fields *fs)
{
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (!fs->v[f]) continue;
		free(fs->v[f]);
		fs->v[f] = NULL;
	}
}

/* syncro_fields_set without the free(NULL) and strdup(NULL) calls. */
static void field_copy(struct syncro_fields *fs, int f, const char *value)
{
	if (!fs->v[f] && !value) return;
	free(fs->v[f]);
	fs->v[f] = value ? xstrdup(value) : NULL;
}

void engine_link_free(struct engine_link *l)
{
	if (!l) return;
	fields_clear(&l->fields);
	fields_clear(&l->marked);
	fields_clear(&l->now);
	memset(l, 0, sizeof *l);
}

void engine_leave_free(struct engine_leave *l)
{
	if (!l) return;
	fields_clear(&l->changes);
	fields_clear(&l->now);
	memset(l, 0, sizeof *l);
}

void engine_action_free(struct engine_action *a)
{
	if (!a) return;
	if (a->pool) {
		/* every string in one block (engine_action_own) */
		free(a->pool);
		free(a->candidates);
		free(a->marked);
		memset(a, 0, sizeof *a);
		return;
	}
	free(a->object_id);
	free(a->label);
	free(a->reason);
	fields_clear(&a->before);
	fields_clear(&a->after);
	fields_clear(&a->written);
	free(a->candidates);
	free(a->marked);
	memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------ field sets */

bool engine_blank(const char *v)
{
	if (!v) return true;
	for (; *v; v++)
		if (!isspace((unsigned char)*v)) return false;
	return true;
}

bool engine_field_differs(enum syncro_field f, const char *want, const char *have)
{
	if (!want || !have) return want != have;
	if (f == SYNCRO_F_EMAIL) return !str_ieq(want, have);
	return strcmp(want, have) != 0;
}

void engine_fields_overlay(struct syncro_fields *dst, const struct syncro_fields *src)
{
	for (int f = 0; f < SYNCRO_NFIELDS; f++)
		if (src->v[f]) field_copy(dst, f, src->v[f]);
}

/* Is s a decimal integer that fits a long long? */
static bool is_integer(const char *s, long long *out)
{
	if (!s || !*s) return false;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (*end || (s[0] != '-' && !isdigit((unsigned char)s[0]))) return false;
	if (out) *out = v;
	return true;
}

char *engine_fields_to_json(const struct syncro_fields *fs)
{
	cJSON *o = cJSON_CreateObject();
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		const char *v = fs->v[f];
		long long n;
		if (!v) continue;
		if (f == SYNCRO_F_CUSTOMER_ID && is_integer(v, &n)) cJSON_AddNumberToObject(o, "customer_id", (double)n);
		else cJSON_AddStringToObject(o, syncro_field_name((enum syncro_field)f), v);
	}
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s) abort(); /* out of memory: as xmalloc does */
	return s;
}

bool engine_stamp_matches(const char *link_stamp, const char *stamp, bool *leaving)
{
	if (leaving) *leaving = false;
	if (!link_stamp || !stamp || strlen(stamp) < 16 || strncmp(link_stamp, stamp, 16) != 0) return false;
	if (link_stamp[16] == '\0') return true;
	if (strcmp(link_stamp + 16, ":k") == 0) {
		if (leaving) *leaving = true;
		return true;
	}
	return false;
}

uint64_t engine_hash(uint64_t h, const void *data, size_t len)
{
	/* 8 bytes a step (multiply, xor-shift), then the tail byte by byte:
	 * a fingerprint of the plan's inputs, not a cryptographic hash */
	const unsigned char *p = data;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
		h ^= h >> 29;
		p += 8;
		len -= 8;
	}
	while (len--) h = (h ^ *p++) * 1099511628211ULL;
	h ^= h >> 32;
	return h;
}

/* Does the text at *p start with lit? Moves *p past it. */
static bool eat(const char **p, const char *lit, size_t n)
{
	const char *t = *p;
	for (size_t i = 0; i < n; i++)
		if (t[i] != lit[i]) return false;   /* also stops at the text's NUL */
	*p = t + n;
	return true;
}

/* Is s a decimal integer as "%lld" prints it ("0", or an optional '-' and
 * no leading zero), of at most 9 digits (so it fits an int)? */
static bool canonical_int(const char *s)
{
	size_t i = s[0] == '-', n = 0;
	if (s[i] == '0') return i == 0 && s[1] == '\0';
	for (; s[i + n]; n++)
		if (s[i + n] < '0' || s[i + n] > '9') return false;
	return n >= 1 && n <= 9;
}

/* Does the text at *p start with s as cJSON prints a string ('"', '\\'
 * and control characters escaped: \b \f \n \r \t, else \u00xx; the rest
 * as it is)? Moves *p past it. */
static bool eat_json_string(const char **p, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *t = *p;
	if (*t++ != '"') return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\') {
			if (*t++ != (char)c) return false;
			continue;
		}
		char e[7] = { '\\', 0 };
		switch (c) {
		case '"': case '\\': e[1] = (char)c; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default: memcpy(e + 1, "u00", 3); e[4] = hex[c >> 4]; e[5] = hex[c & 15]; break;
		}
		if (!eat(&t, e, strlen(e))) return false;
	}
	if (*t++ != '"') return false;
	*p = t;
	return true;
}

bool engine_fields_same_json(const struct syncro_fields *fs, const char *json)
{
	const char *p = json;
	bool first = true;
	if (!p || *p++ != '{') return false;
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		const char *v = fs->v[f], *name = syncro_field_name((enum syncro_field)f);
		long long n;
		if (engine_blank(v)) continue;
		if ((!first && *p++ != ',') || *p++ != '"' || !eat(&p, name, strlen(name)) || !eat(&p, "\":", 2))
			return false;
		first = false;
		if (f == SYNCRO_F_CUSTOMER_ID && canonical_int(v)) {
			/* printed as it stands */
			if (!eat(&p, v, strlen(v))) return false;
		} else if (f == SYNCRO_F_CUSTOMER_ID && is_integer(v, &n)) {
			/* cJSON prints an integral number that fits an int with "%d" */
			char num[24];
			if (n > 2147483647LL || n < -2147483647LL) return false;
			int len = snprintf(num, sizeof num, "%lld", n);
			if (!eat(&p, num, (size_t)len)) return false;
		} else if (!eat_json_string(&p, v)) {
			return false;
		}
	}
	return p[0] == '}' && p[1] == '\0';
}

/* syncro_field_lookup with the first letter compared inline (a link's
 * fields are read for every re-planned user). */
static int field_index(const char *key)
{
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		const char *name = syncro_field_name((enum syncro_field)f);
		if (name[0] == key[0] && strcmp(name, key) == 0) return f;
	}
	return -1;
}

/* Is a JSON number's text what it would print as through a double and
 * "%lld" (an integer of up to 15 digits, not "-0"), so it can be kept as
 * it stands? */
static bool plain_integer(const struct json_scan_value *v)
{
	const char *t = v->text;
	size_t n = v->len, i = t[0] == '-';
	if (n - i == 0 || n - i > 15 || (i && t[1] == '0')) return false;
	for (; i < n; i++)
		if (t[i] < '0' || t[i] > '9') return false;
	return true;
}

/* One member of a fields object into the set (strings, numbers as text;
 * other members and types ignored). */
static int field_member(void *ud, const char *key, const struct json_scan_value *v)
{
	struct syncro_fields *fs = ud;
	if (!key) return 0;                /* no field has a name that long */
	int f = field_index(key);
	if (f < 0) return 0;
	if (v->type == JSON_SCAN_STRING) {
		char small[256];
		char *s = v->len <= sizeof small ? small : xmalloc(v->len);
		if (json_scan_string(v, s, v->len) >= 0) {
			free(fs->v[f]);
			fs->v[f] = s == small ? xstrdup(s) : s;
			return 0;
		}
		if (s != small) free(s);
		return -2;
	}
	if (v->type == JSON_SCAN_NUMBER && plain_integer(v)) {
		free(fs->v[f]);
		fs->v[f] = xstrndup(v->text, v->len);
	} else if (v->type == JSON_SCAN_NUMBER && v->len < 64) {
		char text[64], num[64];
		memcpy(text, v->text, v->len);
		text[v->len] = '\0';
		double d = strtod(text, NULL);
		if (d == floor(d) && fabs(d) < 9e15) snprintf(num, sizeof num, "%lld", (long long)d);
		else snprintf(num, sizeof num, "%.17g", d);
		syncro_fields_set(fs, (enum syncro_field)f, num);
	}
	return 0;
}

int engine_fields_from_json(const char *json, struct syncro_fields *fs, struct err *err)
{
	syncro_fields_free(fs);
	if (!json || !*json) return 0;
	int rc = json_scan_each_member(json, strlen(json), field_member, fs, err);
	if (rc == 0) return 0;
	syncro_fields_free(fs);
	return err_set(err, "contact fields are not a JSON object");
}

int engine_fields_mask(const char *const *names, size_t n, unsigned *mask, struct err *err)
{
	*mask = 0;
	for (size_t i = 0; i < n; i++) {
		int f = syncro_field_lookup(names[i]);
		if (f < 0 || f == SYNCRO_F_CUSTOMER_ID) return err_set(err, "create_only: unknown contact field '%s'", names[i]);
		*mask |= 1u << f;
	}
	return 0;
}

/* ------------------------------------------------------------ the plan */

enum engine_why engine_user_leaving(const struct engine_user *u)
{
	if (u->removed) return ENGINE_WHY_DELETED;
	if (u->included) return ENGINE_WHY_NONE;
	return u->disabled ? ENGINE_WHY_DISABLED : ENGINE_WHY_OUT_OF_SCOPE;
}

/* While an action is planned its strings are borrowed from the inputs
 * (engine_action_own copies them at the end). */
static char *borrow(const char *s)
{
	union { const char *c; char *m; } v = { s };
	return v.m;
}

static void action_start(struct engine_action *a, enum engine_kind kind, const struct engine_user *u)
{
	memset(a, 0, sizeof *a);
	a->kind = kind;
	a->object_id = borrow(u->object_id ? u->object_id : "");
	a->label = borrow(u->label);
	a->reason = borrow(u->reason);
}

/* The desired customer: the customer_id field as a number (0 = none). */
static long long desired_customer(const struct engine_user *u)
{
	long long id = 0;
	if (u->desired && is_integer(u->desired->v[SYNCRO_F_CUSTOMER_ID], &id) && id > 0) return id;
	return 0;
}

/* For each field of want that is to be written (non-blank, not excluded by
 * skip_mask) and differs from have: records before/after, sets the bit.
 * blank_ok: "" in want is a value to write (on_leave changes), not "leave
 * alone" (contact() values). */
static void diff_fields(struct engine_action *a, const struct syncro_fields *want, const struct syncro_fields *have,
                        unsigned skip_mask, bool blank_ok)
{
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		const char *w = want->v[f];
		if (!w || (skip_mask & (1u << f))) continue;
		if (!blank_ok && engine_blank(w)) continue;
		if (!engine_field_differs((enum syncro_field)f, w, have->v[f])) continue;
		a->changed |= 1u << f;
		a->before.v[f] = borrow(have->v[f]);
		a->after.v[f] = borrow(w);
	}
	/* have, with what is sent over it */
	for (int f = 0; f < SYNCRO_NFIELDS; f++)
		a->written.v[f] = a->after.v[f] ? a->after.v[f] : borrow(have->v[f]);
}

/* A mark's record for the link (a->marked): for each field it changes,
 * what the field had before it ("" for nothing), unless an earlier mark of
 * this leave has it already (its value from before that one stands). */
static void mark_record(struct engine_action *a, const struct engine_link *link)
{
	struct syncro_fields was = { 0 };   /* borrowed */
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (link->marked.v[f]) was.v[f] = link->marked.v[f];
		else if (a->changed & (1u << f)) was.v[f] = a->before.v[f] ? a->before.v[f] : borrow("");
	}
	a->marked = engine_fields_to_json(&was);
}

/* The value a field a mark wrote (wrote, over was) goes back to, from what
 * the contact has now: a mark that put text above the old value (wrote
 * ends with was, as p.mark's line above the notes) has that text taken out
 * of now, whatever was typed below it since; a mark that replaced the
 * value has was back while now is still what it wrote. Where the mark is
 * no longer found (taken out, or changed, by hand) now stands. Borrowed
 * from its arguments. */
const char *engine_unmarked(const char *now, const char *wrote, const char *was)
{
	if (!now) now = "";
	if (!wrote) wrote = "";
	size_t lw = strlen(wrote), lv = strlen(was);
	if (lw > lv && strcmp(wrote + lw - lv, was) == 0) {
		size_t lm = lw - lv;   /* the mark's own text: wrote's first lm bytes */
		if (strncmp(now, wrote, lm) != 0) return now;
		const char *rest = now + lm;
		if (wrote[lm - 1] != '\n' && rest[0] == '\n') rest++;   /* the line break below the mark */
		return rest;
	}
	return strcmp(now, wrote) == 0 ? was : now;
}

/* A user back in scope whose contact a leaver's mark changed (link->marked):
 * each field it wrote that contact() does not set (or sets create-only)
 * goes back (engine_unmarked) from what Syncro has now (link->now; else
 * the link's fields), and is sent when that differs from what entrasync
 * last wrote (the rule of every field). The before is Syncro's. */
static void plan_unmark(struct engine_action *a, const struct engine_user *u, const struct engine_link *link,
                        unsigned create_only)
{
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		const char *was = link->marked.v[f];
		if (!was || f == SYNCRO_F_CUSTOMER_ID) continue;
		if (!engine_blank(u->desired->v[f]) && !(create_only & (1u << f))) continue;   /* contact() sets it */
		const char *wrote = link->fields.v[f], *now = link->have_now ? link->now.v[f] : wrote;
		const char *back = engine_unmarked(now, wrote, was);
		if (!engine_field_differs((enum syncro_field)f, back, wrote)) continue;
		a->changed |= 1u << f;
		a->before.v[f] = borrow(now);
		a->after.v[f] = a->written.v[f] = borrow(back);
	}
}

static int plan_linked_leaving(const struct engine_user *u, enum engine_why why, const struct engine_link *link,
                               const struct engine_leave *leave, struct engine_action *a, struct err *err)
{
	if (!leave) return err_set(err, "user %s leaves (%s) but on_leave was not evaluated", u->object_id,
	                           engine_why_name(why));
	switch (leave->kind) {
	case ENGINE_LEAVE_KEEP:
		action_start(a, ENGINE_KEEP, u);
		for (int f = 0; f < SYNCRO_NFIELDS; f++)
			a->written.v[f] = borrow(link->fields.v[f]);
		break;
	case ENGINE_LEAVE_DELETE:
		action_start(a, ENGINE_DELETE, u);
		for (int f = 0; f < SYNCRO_NFIELDS; f++)
			a->before.v[f] = borrow(link->fields.v[f]);
		break;
	case ENGINE_LEAVE_CHANGES:
		action_start(a, ENGINE_MARK, u);
		/* customer_id is not the policy's to move on leave */
		diff_fields(a, &leave->changes, &link->fields, 1u << SYNCRO_F_CUSTOMER_ID, true);
		if (!a->changed) a->kind = ENGINE_KEEP;
		/* what is replaced is what Syncro had, which a technician may have
		 * edited since entrasync wrote it; the link keeps what entrasync wrote */
		for (int f = 0; leave->have_now && f < SYNCRO_NFIELDS; f++)
			if (a->changed & (1u << f)) a->before.v[f] = borrow(leave->now.v[f]);
		if (a->changed) mark_record(a, link);
		break;
	default:
		return err_set(err, "user %s: bad on_leave outcome", u->object_id);
	}
	a->why = why;
	a->contact_id = link->contact_id;
	a->customer_id = link->customer_id;
	return 0;
}

/* The update of a linked contact (*a, planned) would give it an e-mail,
 * or move it to a customer, where other contacts of that customer (cands)
 * have that e-mail already: a conflict instead, nothing written, with the
 * message in msg. Sending the update would make a second contact with the
 * e-mail in the customer (a user renamed to an address a contact made by
 * hand has, moved by the policy to a customer that has a contact for them
 * already); which one is the person's is for a technician to say. */
static void plan_second_contact(struct engine_action *a, const struct engine_link *link, bool moves,
                                const struct syncro_contact *const *cands, size_t ncands, struct buf *msg)
{
	const char *email = a->written.v[SYNCRO_F_EMAIL];
	buf_adds(msg, ncands > 1 ? "contacts" : "contact");
	for (size_t i = 0; i < ncands; i++) buf_printf(msg, "%s #%lld", i ? "," : "", cands[i]->id);
	buf_printf(msg, " of customer %lld %s the e-mail %s already: ", a->customer_id, ncands > 1 ? "have" : "has",
	           email ? email : "");
	if (moves)
		buf_printf(msg, "moving the user's contact #%lld there from customer %lld", link->contact_id,
		           link->customer_id);
	else
		buf_printf(msg, "giving it to the user's contact #%lld", link->contact_id);
	buf_adds(msg, " would make a second one");
	struct engine_action conflict;
	action_start(&conflict, ENGINE_CONFLICT, &(struct engine_user){ .object_id = a->object_id,
	                                                                .label = a->label });
	conflict.contact_id = a->contact_id;
	conflict.customer_id = a->customer_id;
	conflict.candidates = xcalloc(ncands, sizeof *conflict.candidates);
	conflict.ncandidates = ncands;
	for (size_t i = 0; i < ncands; i++) conflict.candidates[i] = cands[i]->id;
	conflict.reason = msg->data;
	*a = conflict;   /* the update's sets were borrowed: nothing to free */
}

/* engine_plan_user with the action's strings borrowed; a conflict's
 * message is written in msg. */
static int plan_borrowed(const struct engine_plan_opts *o, const struct engine_user *u,
                         const struct engine_link *link, const struct engine_leave *leave,
                         const struct syncro_contact *const *cands, size_t ncands, struct engine_action *out,
                         struct buf *msg, struct err *err)
{
	static const struct engine_plan_opts none = { 0 };
	if (!o) o = &none;
	memset(out, 0, sizeof *out);
	enum engine_why why = engine_user_leaving(u);
	if (why == ENGINE_WHY_NONE && !u->desired)
		return err_set(err, "user %s is included but has no contact fields", u->object_id);

	if (link) {
		if (why != ENGINE_WHY_NONE) return plan_linked_leaving(u, why, link, leave, out, err);
		action_start(out, ENGINE_UPDATE, u);
		out->contact_id = link->contact_id;
		out->customer_id = desired_customer(u);
		if (!out->customer_id) out->customer_id = link->customer_id;
		diff_fields(out, u->desired, &link->fields, o->create_only, false);
		plan_unmark(out, u, link, o->create_only);
		if (!out->changed) out->kind = ENGINE_UNCHANGED;
		bool moves = out->customer_id != link->customer_id;
		if (ncands > 0 && ((out->changed & (1u << SYNCRO_F_EMAIL)) || moves))
			plan_second_contact(out, link, moves, cands, ncands, msg);
		return 0;
	}

	if (why != ENGINE_WHY_NONE) {
		action_start(out, ENGINE_SKIP, u);
		out->why = why;
		return 0;
	}
	long long customer = desired_customer(u);
	if (!customer) return err_set(err, "user %s: no Syncro customer for the contact", u->object_id);

	if (ncands > 1) {
		action_start(out, ENGINE_CONFLICT, u);
		out->customer_id = customer;
		out->candidates = xcalloc(ncands, sizeof *out->candidates);
		out->ncandidates = ncands;
		buf_adds(msg, "contacts");
		for (size_t i = 0; i < ncands; i++) {
			out->candidates[i] = cands[i]->id;
			buf_printf(msg, "%s #%lld", i ? "," : "", cands[i]->id);
		}
		buf_printf(msg, " of customer %lld have this e-mail", customer);
		out->reason = msg->data;
		return 0;
	}
	if (ncands == 0 && u->taken_note) {
		action_start(out, ENGINE_CONFLICT, u);
		out->customer_id = customer;
		out->candidates = xcalloc(2, sizeof *out->candidates);
		/* taken_contact 0: a contact a dry run would make */
		if (u->taken_contact) out->candidates[out->ncandidates++] = u->taken_contact;
		if (u->taken_also) out->candidates[out->ncandidates++] = u->taken_also;
		out->reason = borrow(u->taken_note);
		return 0;
	}
	if (ncands == 1) {
		action_start(out, ENGINE_ADOPT, u);
		out->contact_id = cands[0]->id;
		out->customer_id = customer;
		diff_fields(out, u->desired, &cands[0]->f, o->create_only, false);
		return 0;
	}
	action_start(out, ENGINE_CREATE, u);
	out->customer_id = customer;
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		const char *w = u->desired->v[f];
		if (engine_blank(w)) continue;
		out->changed |= 1u << f;
		out->after.v[f] = out->written.v[f] = borrow(w);
	}
	return 0;
}

void engine_action_own(struct engine_action *a)
{
	enum { MAX_STRINGS = 3 + 3 * SYNCRO_NFIELDS };
	char **slot[MAX_STRINGS];
	size_t len[MAX_STRINGS], n = 0, size = 0;
	const char *sent[SYNCRO_NFIELDS];
	memcpy(sent, a->after.v, sizeof sent);
	/* the strings to copy: written values that are the ones sent are not */
	char **one[3] = { &a->object_id, &a->label, &a->reason };
	for (int i = 0; i < 3; i++)
		if (*one[i]) slot[n++] = one[i];
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (a->before.v[f]) slot[n++] = &a->before.v[f];
		if (a->after.v[f]) slot[n++] = &a->after.v[f];
		if (a->written.v[f] && a->written.v[f] != sent[f]) slot[n++] = &a->written.v[f];
	}
	for (size_t i = 0; i < n; i++) size += (len[i] = strlen(*slot[i])) + 1;
	char *pool = xmalloc(size ? size : 1), *at = pool;
	for (size_t i = 0; i < n; i++) {
		memcpy(at, *slot[i], len[i] + 1);
		*slot[i] = at;
		at += len[i] + 1;
	}
	/* written as sent: the same copy */
	for (int f = 0; f < SYNCRO_NFIELDS; f++)
		if (a->written.v[f] && a->written.v[f] == sent[f]) a->written.v[f] = a->after.v[f];
	a->pool = pool;
}

int engine_plan_user(const struct engine_plan_opts *o, const struct engine_user *u,
                     const struct engine_link *link, const struct engine_leave *leave,
                     const struct syncro_contact *const *cands, size_t ncands, struct engine_action *out,
                     struct err *err)
{
	struct buf msg = { 0 };
	int rc = plan_borrowed(o, u, link, leave, cands, ncands, out, &msg, err);
	if (rc != 0) {
		free(out->candidates);
		free(out->marked);
		memset(out, 0, sizeof *out);
	} else {
		engine_action_own(out);
	}
	buf_free(&msg);
	return rc;
}

/* ------------------------------------------------------------ contact index */

/* One customer's contacts, with an index sorted by lower-case e-mail. */
struct ix_entry {
	char *email;                 /* lower-case */
	size_t at;                   /* index into list.items */
};
struct ix_id {
	long long id;
	size_t at;                   /* index into list.items */
};
struct ix_customer {
	long long customer_id;
	struct syncro_contact_list list;
	bool *taken;                 /* per item */
	struct ix_entry *by_email;
	size_t n_email;
	struct ix_id *by_id;         /* every item, by contact id (list.n of them) */
	struct engine_made *made;    /* contacts this run made (engine_contacts_made) */
	size_t n_made;
	struct str_index made_by_email; /* e-mail (any case) -> its first index in made */
};
struct ix_failed {
	long long customer_id;
	enum syncro_result rc;
	char *msg;
};

struct engine_contacts {
	struct ix_customer *c;
	size_t n, cap;
	struct ix_failed *failed;      /* customers whose list could not be read in this run */
	size_t nfailed;
};

struct engine_contacts *engine_contacts_new(void)
{
	return xcalloc(1, sizeof(struct engine_contacts));
}

static void ix_customer_free(struct ix_customer *c)
{
	syncro_contact_list_free(&c->list);
	free(c->taken);
	for (size_t i = 0; i < c->n_email; i++) free(c->by_email[i].email);
	free(c->by_email);
	free(c->by_id);
	for (size_t i = 0; i < c->n_made; i++) {
		free(c->made[i].email);
		free(c->made[i].tenant_id);
		free(c->made[i].object_id);
	}
	free(c->made);
	str_index_free(&c->made_by_email);
	memset(c, 0, sizeof *c);
}

void engine_contacts_free(struct engine_contacts *ix)
{
	if (!ix) return;
	for (size_t i = 0; i < ix->n; i++) ix_customer_free(&ix->c[i]);
	free(ix->c);
	for (size_t i = 0; i < ix->nfailed; i++) free(ix->failed[i].msg);
	free(ix->failed);
	free(ix);
}

const char *engine_contacts_failed(const struct engine_contacts *ix, long long customer_id, enum syncro_result *rc)
{
	for (size_t i = 0; i < ix->nfailed; i++)
		if (ix->failed[i].customer_id == customer_id) {
			*rc = ix->failed[i].rc;
			return ix->failed[i].msg;
		}
	return NULL;
}

void engine_contacts_fail(struct engine_contacts *ix, long long customer_id, enum syncro_result rc, const char *msg)
{
	enum syncro_result had;
	if (engine_contacts_failed(ix, customer_id, &had)) return;
	ix->failed = xrealloc(ix->failed, (ix->nfailed + 1) * sizeof *ix->failed);
	ix->failed[ix->nfailed++] = (struct ix_failed){ customer_id, rc, xstrdup(msg) };
}

static struct ix_customer *ix_find(const struct engine_contacts *ix, long long customer_id)
{
	for (size_t i = 0; i < ix->n; i++)
		if (ix->c[i].customer_id == customer_id) return &ix->c[i];
	return NULL;
}

bool engine_contacts_has(const struct engine_contacts *ix, long long customer_id)
{
	return ix_find(ix, customer_id) != NULL;
}

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	for (char *p = d; *p; p++) *p = (char)tolower((unsigned char)*p);
	return d;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct ix_entry *x = a, *y = b;
	int c = strcmp(x->email, y->email);
	if (c) return c;
	return x->at < y->at ? -1 : x->at > y->at;
}

static int id_cmp(const void *a, const void *b)
{
	const struct ix_id *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

void engine_contacts_add(struct engine_contacts *ix, long long customer_id, struct syncro_contact_list *list)
{
	struct ix_customer *c = ix_find(ix, customer_id);
	if (c) {
		ix_customer_free(c);
	} else {
		if (ix->n == ix->cap) {
			ix->cap = ix->cap ? ix->cap * 2 : 4;
			ix->c = xrealloc(ix->c, ix->cap * sizeof *ix->c);
		}
		c = &ix->c[ix->n++];
		memset(c, 0, sizeof *c);
	}
	c->customer_id = customer_id;
	c->list = *list;
	memset(list, 0, sizeof *list);
	c->taken = xcalloc(c->list.n ? c->list.n : 1, sizeof *c->taken);
	c->by_email = xcalloc(c->list.n ? c->list.n : 1, sizeof *c->by_email);
	for (size_t i = 0; i < c->list.n; i++) {
		const char *e = c->list.items[i].f.v[SYNCRO_F_EMAIL];
		if (engine_blank(e)) continue;
		c->by_email[c->n_email].email = lower_dup(e);
		c->by_email[c->n_email].at = i;
		c->n_email++;
	}
	qsort(c->by_email, c->n_email, sizeof *c->by_email, entry_cmp);
	/* by id: a verify run looks up every link's contact (a linear scan
	 * each was links x contacts per customer) */
	c->by_id = xcalloc(c->list.n ? c->list.n : 1, sizeof *c->by_id);
	for (size_t i = 0; i < c->list.n; i++) c->by_id[i] = (struct ix_id){ c->list.items[i].id, i };
	qsort(c->by_id, c->list.n, sizeof *c->by_id, id_cmp);
}

/* The contacts of customer_id with this e-mail (any case), taken ones
 * only with with_taken, the contact except_id never. */
static size_t contacts_with_email(const struct engine_contacts *ix, long long customer_id, const char *email,
                                  bool with_taken, long long except_id, const struct syncro_contact **out,
                                  size_t max)
{
	const struct ix_customer *c = ix_find(ix, customer_id);
	if (!c || engine_blank(email) || !c->n_email) return 0;
	char *key = lower_dup(email);
	/* lower bound */
	size_t lo = 0, hi = c->n_email;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(c->by_email[mid].email, key) < 0) lo = mid + 1;
		else hi = mid;
	}
	size_t n = 0;
	for (size_t i = lo; i < c->n_email && strcmp(c->by_email[i].email, key) == 0; i++) {
		size_t at = c->by_email[i].at;
		if ((c->taken[at] && !with_taken) || c->list.items[at].id == except_id) continue;
		if (n < max) out[n] = &c->list.items[at];
		n++;
	}
	free(key);
	return n;
}

size_t engine_contacts_find(const struct engine_contacts *ix, long long customer_id, const char *email,
                            const struct syncro_contact **out, size_t max)
{
	return contacts_with_email(ix, customer_id, email, false, 0, out, max);
}

size_t engine_contacts_holding(const struct engine_contacts *ix, long long customer_id, const char *email,
                               long long except_id, const struct syncro_contact **out, size_t max)
{
	return contacts_with_email(ix, customer_id, email, true, except_id, out, max);
}

/* The addresses a user is matched by, in order: mail, UPN, the desired
 * e-mail (any may be NULL). */
static void match_keys(const struct engine_user *u, const char *keys[3])
{
	keys[0] = u->mail;
	keys[1] = u->upn;
	keys[2] = u->desired ? u->desired->v[SYNCRO_F_EMAIL] : NULL;
}

size_t engine_contacts_match(const struct engine_contacts *ix, long long customer_id, const struct engine_user *u,
                             const struct syncro_contact **out, size_t max)
{
	const char *keys[3];
	match_keys(u, keys);
	for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
		size_t n = engine_contacts_find(ix, customer_id, keys[k], out, max);
		if (n) return n;
	}
	return 0;
}

static struct ix_customer *ix_item(const struct engine_contacts *ix, long long customer_id, long long contact_id,
                                   size_t *at)
{
	struct ix_customer *c = ix_find(ix, customer_id);
	if (!c || !c->list.n) return NULL;
	const struct ix_id key = { contact_id, 0 };
	const struct ix_id *hit = bsearch(&key, c->by_id, c->list.n, sizeof *c->by_id, id_cmp);
	if (!hit) return NULL;
	*at = hit->at;
	return c;
}

void engine_contacts_made(struct engine_contacts *ix, long long customer_id, long long contact_id, const char *email,
                          const char *tenant_id, const char *object_id, bool adopted)
{
	if (engine_blank(email)) return;
	struct ix_customer *c = ix_find(ix, customer_id);
	if (!c) {
		struct syncro_contact_list none = { 0 };
		engine_contacts_add(ix, customer_id, &none);
		c = ix_find(ix, customer_id);
	}
	c->made = xrealloc(c->made, (c->n_made + 1) * sizeof *c->made);
	c->made[c->n_made] = (struct engine_made){ .contact_id = contact_id, .email = xstrdup(email),
	                                           .tenant_id = xstrdup(tenant_id), .object_id = xstrdup(object_id),
	                                           .adopted = adopted };
	/* keyed by the entry's own copy (it does not move when made grows) */
	c->made_by_email.fold = true;
	if (str_index_get(&c->made_by_email, email) == STR_INDEX_NONE)
		str_index_put(&c->made_by_email, c->made[c->n_made].email, c->n_made);
	c->n_made++;
}

const struct engine_made *engine_contacts_made_find(const struct engine_contacts *ix, long long customer_id,
                                                    const char *email)
{
	const struct ix_customer *c = ix_find(ix, customer_id);
	if (!c || engine_blank(email)) return NULL;
	size_t i = str_index_get(&c->made_by_email, email);
	return i == STR_INDEX_NONE ? NULL : &c->made[i];
}

const struct engine_made *engine_contacts_made_match(const struct engine_contacts *ix, long long customer_id,
                                                     const struct engine_user *u)
{
	const char *keys[3];
	match_keys(u, keys);
	for (size_t k = 0; k < ARRAY_LEN(keys); k++) {
		const struct engine_made *m = engine_contacts_made_find(ix, customer_id, keys[k]);
		if (m) return m;
	}
	return NULL;
}

const struct syncro_contact *engine_contacts_nth(const struct engine_contacts *ix, long long customer_id, size_t i)
{
	const struct ix_customer *c = ix_find(ix, customer_id);
	return c && i < c->list.n ? &c->list.items[i] : NULL;
}

long long engine_contacts_max_id(const struct engine_contacts *ix, long long customer_id)
{
	const struct ix_customer *c = ix_find(ix, customer_id);
	return c && c->list.n ? c->by_id[c->list.n - 1].id : 0;   /* by_id is sorted by id */
}

void engine_contacts_take(struct engine_contacts *ix, long long customer_id, long long contact_id)
{
	size_t at;
	struct ix_customer *c = ix_item(ix, customer_id, contact_id, &at);
	if (c) c->taken[at] = true;
}

const struct syncro_contact *engine_contacts_get(const struct engine_contacts *ix, long long customer_id,
                                                 long long contact_id)
{
	size_t at;
	struct ix_customer *c = ix_item(ix, customer_id, contact_id, &at);
	return c ? &c->list.items[at] : NULL;
}

/* ------------------------------------------------------------ removal guard */

long long engine_guard_limit(const struct engine_guard *g)
{
	long long count = g->max_count >= 0 ? g->max_count : ENGINE_MAX_REMOVALS_COUNT;
	double percent = g->max_percent >= 0 ? g->max_percent : ENGINE_MAX_REMOVALS_PERCENT;
	long long by_percent = (long long)floor((double)g->links * percent / 100.0);
	return count > by_percent ? count : by_percent;
}

bool engine_guard_check(const struct engine_guard *g, char *reason, size_t cap)
{
	if (reason && cap) reason[0] = '\0';
	if (g->allow_removals) return false;
	if (g->links > 0 && g->present_users == 0) {
		if (reason) snprintf(reason, cap, "Graph returned no users while %lld contact%s linked (empty source)",
		                     g->links, g->links == 1 ? " is" : "s are");
		return true;
	}
	long long count = g->max_count >= 0 ? g->max_count : ENGINE_MAX_REMOVALS_COUNT;
	double percent = g->max_percent >= 0 ? g->max_percent : ENGINE_MAX_REMOVALS_PERCENT;
	long long limit = engine_guard_limit(g);
	if (g->removals > limit) {
		if (reason) snprintf(reason, cap, "%lld of %lld linked contacts would be deleted or marked "
		                     "(limit %lld: max_removals count %lld, %g%%); rerun with --allow-removals "
		                     "to release", g->removals, g->links, limit, count, percent);
		return true;
	}
	return false;
}
