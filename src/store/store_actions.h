/* store_actions — the store's state for Microsoft actions taken from Syncro
 * tickets: one row per ticket, so that each ticket is acted on at most once
 * and a run interrupted anywhere is finished by the next one.
 *
 * A row moves through these states (each write commits on its own, so a
 * crash leaves the last one reached):
 *   intent      claimed, the Graph call is about to be made (or may have
 *               been made: a crash here is resolved by reading the user's
 *               live state before acting again);
 *   acted       the outcome is known (ok / refused / failed) and recorded,
 *               the comment is not posted yet;
 *   commenting  the comment is being posted (a crash here is resolved by
 *               looking for the comment's marker before posting again);
 *   done        comment posted, status set.
 *
 * The table comes with the store's schema (migration 4 in
 * src/store/store_schema.c). store_actions_close before store_close.
 *
 * Connection: the store's own (store_sqlite / store_stmt), so these writes
 * join a caller's store_begin/store_commit; outside one each commits on its
 * own, which is what the states above rely on. Conventions as in store.h
 * (0 / negative + err / STORE_NOTFOUND; *_get results owned,
 * freed with store_ticket_action_free; callback rows borrowed). */
#ifndef ENTRASYNC_STORE_ACTIONS_H
#define ENTRASYNC_STORE_ACTIONS_H

#include <stdbool.h>
#include "store/store.h"
#include "util/util.h"

struct store_actions;

/* A handle on st's ticket_actions (cannot fail today; err kept for the
 * API's shape). */
int store_actions_open(struct store *st, struct store_actions **out, struct err *err);
void store_actions_close(struct store_actions *sa);

struct store_ticket_action {
	long long ticket_id;
	long long customer_id;     /* 0 = unknown */
	long long contact_id;      /* 0 = none */
	const char *tenant_id;     /* NULL when the contact is not linked */
	const char *object_id;
	const char *label;         /* the user, for messages (UPN or id) */
	const char *action;        /* "disable" | "enable" | "revoke-sessions" | "set-password" (refused),
	                            * "ticket" (the subject names no action) */
	const char *state;         /* "intent" | "acted" | "commenting" | "done" */
	const char *outcome;       /* NULL (intent), "ok", "refused", "failed" */
	const char *message;       /* what the comment says */
	long long attempts;        /* Graph attempts made */
	const char *attempted_at;  /* when the last Graph attempt started (ISO-8601) */
	const char *created_at;
	const char *updated_at;
};
void store_ticket_action_free(struct store_ticket_action *a);

/* Claims a ticket: inserts the row a (state and outcome as given) unless
 * the ticket already has one. *claimed says whether this call inserted it. */
int store_ticket_action_claim(struct store_actions *sa, const struct store_ticket_action *a, bool *claimed,
                              struct err *err);
int store_ticket_action_get(struct store_actions *sa, long long ticket_id, struct store_ticket_action *out,
                            struct err *err);
/* Moves a ticket's row to state with outcome and message (NULL keeps the
 * stored value). */
int store_ticket_action_set(struct store_actions *sa, long long ticket_id, const char *state, const char *outcome,
                            const char *message, struct err *err);
/* Counts a Graph attempt: attempts + 1, attempted_at = now. */
int store_ticket_action_attempt(struct store_actions *sa, long long ticket_id, struct err *err);
/* Calls cb for each row not "done", oldest first. */
int store_ticket_action_each_open(struct store_actions *sa,
                                  int (*cb)(const struct store_ticket_action *a, void *ud), void *ud,
                                  struct err *err);

#endif
