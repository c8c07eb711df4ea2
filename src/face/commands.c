/* commands — the command table, the option parser every command shares,
 * the global options, help texts and "did you mean" for the face. */
#include "face/commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/config.h"
#include "util/log.h"
#include "script/script.h"

const struct command commands[] = {
	{ "help", "Show the commands, or one command's help",
	  "usage: entrasync help [COMMAND]\n"
	  "\n"
	  "Lists the commands, the global options and the exit codes; with COMMAND,\n"
	  "shows that command's help (same as 'entrasync COMMAND --help').\n",
	  cmd_help, 0 },
	{ "version", "Print the version",
	  "usage: entrasync version\n"
	  "\n"
	  "Prints the program's version (same as 'entrasync --version').\n",
	  cmd_version, 0 },
	{ "demo", "Run the whole job end to end against bundled fake tenants (start here)",
	  "usage: entrasync demo [--keep]\n"
	  "\n"
	  "Starts the bundled fake Microsoft Graph and fake Syncro (tests/fakes, Python 3)\n"
	  "on 127.0.0.1 in a fresh temp folder, writes a config there mapping three\n"
	  "sample tenants (Contoso, Fabrikam, Northwind) to Syncro customers with\n"
	  "policies/default.lua, then runs 'sync --dry-run', 'sync' and 'sync' again,\n"
	  "and explains what was planned, created, adopted, updated and which conflict\n"
	  "was found, per tenant; then deletes a contact in Syncro and shows 'sync\n"
	  "--verify' finding it gone and making it again. Nothing leaves the machine;\n"
	  "takes a few seconds.\n"
	  "\n"
	  "  --keep   keep the temp folder (config, database, fake logs) to explore it\n"
	  "           with 'entrasync --config FOLDER/entrasync.lua status|audit|conflicts'\n"
	  "\n"
	  "Exit status: 0 the demo ran end to end, 1 a run had problems, 3 could not\n"
	  "start (python3 or the fakes missing, a fake did not start), 130 interrupted.\n",
	  cmd_demo, 0 },
	{ "check", "Validate the config and every policy it names",
	  "usage: entrasync check [--config FILE]\n"
	  "\n"
	  "Loads the config and every policy it names (the default policy and each\n"
	  "tenant's), reports every problem found with FILE:LINE, reads the Graph\n"
	  "certificate and key as a pull would (PEM, matching, valid now; a warning\n"
	  "from 30 days before it expires), and prints a short summary when all is\n"
	  "well. Touches neither the network nor the database.\n"
	  "\n"
	  "Exit status: 0 all fine, 2 the config, a policy or the certificate has a\n"
	  "problem.\n",
	  cmd_check, 0 },
	{ "lua", "Run a Lua file in the policy sandbox (developer command)",
	  "usage: entrasync lua [--instructions N] [--memory-mb N] [--seconds S] FILE [ARG...]\n"
	  "\n"
	  "Developer command: runs FILE in the same sandbox as policies (the limits\n"
	  "of one policy call apply to the whole file), with the entrasync.* modules\n"
	  "read from --lua-dir DIR when given, else the copies built into the\n"
	  "program. ARGs are in the global table 'arg' (arg[0] = FILE); print goes\n"
	  "to stdout. Put '--' before ARGs that look like global options.\n"
	  "  --instructions N   instruction budget (default 10000000)\n"
	  "  --memory-mb N      memory cap of the Lua state in MiB (default 64)\n"
	  "  --seconds S        CPU time limit (default 10)\n"
	  "\n"
	  "Exit status: 0 ok, 1 the script failed, 2 usage error.\n",
	  cmd_lua, 1 },
	{ "pull", "Pull users, groups, licences and Secure Score from Microsoft Graph",
	  "usage: entrasync pull [--tenant ID|NAME[,...]]... [--workers N]\n"
	  "\n"
	  "Reads every configured tenant (or those named by --tenant: repeated or\n"
	  "comma-separated; by id, name, or its GUID or a verified domain once pulled)\n"
	  "from Microsoft Graph into the local database, all tenants at once: users\n"
	  "(by delta: only what changed since the last pull), the groups each\n"
	  "tenant's policy declares, the organization, today's licences and the\n"
	  "Secure Score history. Touches nothing in Syncro. A tenant that fails (no\n"
	  "consent, missing permission...) is reported; the others go on. A Graph\n"
	  "credential that cannot be used (a refused secret, a certificate expired,\n"
	  "unreadable or not matching its key) fails every tenant with the reason.\n"
	  "\n"
	  "  --workers N   worker processes sharing the tenants (1 to 16; default\n"
	  "                graph.pull_workers, else one per core, at most one per\n"
	  "                16 tenants)\n"
	  "\n"
	  "Exit status: 0 all tenants pulled, 1 some failed, 2 usage or config error,\n"
	  "3 could not start (another run holds the lock, database unreadable).\n",
	  cmd_pull, 0 },
	{ "sync", "Pull from Graph, plan, and bring Syncro contacts in step",
	  "usage: entrasync sync [--tenant ID|NAME[,...]]... [--dry-run] [--json] [--allow-removals]\n"
	  "                      [--verify] [--metrics FILE]\n"
	  "\n"
	  "For every configured tenant (or those named with --tenant: repeated or\n"
	  "comma-separated; by id, name, or its GUID or a verified domain once pulled):\n"
	  "pulls the users from Microsoft Graph into the local mirror, plans the\n"
	  "contacts with the tenant's policy, and applies the plan to Syncro: creates,\n"
	  "adopts an existing contact with the user's e-mail, updates only what\n"
	  "changed, and handles leavers per on_leave. Prints per tenant:\n"
	  "  + create   ~ update/adopt (field: old → new)   - delete   ! conflict or held\n"
	  "\n"
	  "  --dry-run          plan and show, write nothing to Syncro (reads allowed)\n"
	  "  --json             print the report as JSON\n"
	  "  --allow-removals   release the removal guard for this run (a tenant is held\n"
	  "                     when more than max(5, 10%) of its linked contacts would be\n"
	  "                     deleted or marked, or Graph returned no users)\n"
	  "  --verify           also list each customer's contacts in Syncro and check\n"
	  "                     every linked contact is still there: one deleted (or\n"
	  "                     merged into a duplicate) has its link dropped and its\n"
	  "                     user planned again (the duplicate adopted, or created);\n"
	  "                     more gone than the removal guard allows: none, reported\n"
	  "                     (--allow-removals releases); other contacts with a\n"
	  "                     linked contact's e-mail are listed as duplicates. One\n"
	  "                     listing per customer, 50 contacts a request: a daily\n"
	  "                     or weekly check\n"
	  "  --metrics FILE     write the Prometheus metrics file after the run\n"
	  "\n"
	  "Then, each only when configured (one line each; \"steps\" in --json):\n"
	  "ticket actions (actions.ticket_problem_type), recurring invoices kept in\n"
	  "step (billing.schedules_on_sync), findings alerts (alerts.enabled). The\n"
	  "run's HTTP counters always go to the database (entrasync metrics).\n"
	  "SIGTERM/SIGINT: the write in flight finishes, nothing more is sent.\n"
	  "\n"
	  "Exit status: 0 all tenants ok, 1 a tenant failed or was held, or a step\n"
	  "failed, 2 usage or config error, 3 could not start (another run holds the\n"
	  "lock).\n",
	  cmd_sync, 0 },
	{ "policy", "Try a policy offline on a file of users: every decision and why",
	  "usage: entrasync policy test POLICY --users FILE [--json]\n"
	  "\n"
	  "Offline (no config, network or database): loads POLICY as a sync does and,\n"
	  "for every user in FILE (Graph-shaped: {\"value\":[...]} or a JSON array of\n"
	  "user objects), prints whether include() takes the user and why, the contact\n"
	  "fields contact() would write, and for a user left out what on_leave would do\n"
	  "if the user were linked (why: deleted for an @removed entry, disabled for\n"
	  "accountEnabled false, else out_of_scope). A user's \"memberOf\" list of\n"
	  "{displayName, id} fills u.groups; assignedLicenses fills u.licenses.\n"
	  "Samples: tests/fixtures/users/*.json.\n"
	  "\n"
	  "  --users FILE   the users to evaluate\n"
	  "  --json         print {\"included\",\"excluded\",\"errors\",\"users\":[...]}\n"
	  "\n"
	  "Exit status: 0 every user evaluated, 1 the policy failed on some user,\n"
	  "2 usage error, or the policy or the file cannot be loaded.\n",
	  cmd_policy, 0 },
	{ "tenants", "List the tenants and their last pull; discover CSP customers; forget one",
	  "usage: entrasync tenants [discover]\n"
	  "       entrasync tenants forget TENANT [--dry-run] [--audit]\n"
	  "\n"
	  "Lists the configured tenants with their last pull, then the tenants the\n"
	  "database still holds that are not in the config any more. With 'discover'\n"
	  "(needs csp.partner_tenant; the config need not list any tenant yet),\n"
	  "lists the partner tenant's customers from Microsoft Graph: tenant id,\n"
	  "default domain, name, whether it is in the config, whether the app can get\n"
	  "a token there, and config entries to paste for the customers not mapped yet.\n"
	  "\n"
	  "'forget' is for a customer you no longer manage: once its entry is out of\n"
	  "the config, it deletes everything the database keeps of that tenant (its\n"
	  "mirrored users, groups, links to Syncro contacts, licence and Secure Score\n"
	  "history, conflicts, write intents, run results, billing and ticket-action\n"
	  "records) in one transaction, and says what went. TENANT is the tenant's id,\n"
	  "default domain or name. Nothing is changed in Syncro or Microsoft 365: the\n"
	  "customer's contacts stay as they are. A tenant still in the config is\n"
	  "refused. Takes the run lock.\n"
	  "\n"
	  "  --dry-run   say what would be deleted; delete nothing\n"
	  "  --audit     delete its audit trail too (kept by default: the record of\n"
	  "              what was written to Syncro, under retention.audit_days)\n"
	  "\n"
	  "Exit status: 0 done, 1 (discover) /contracts could not be read, or the app\n"
	  "cannot get a token in a customer tenant or read there, 2 usage error or\n"
	  "(forget) the tenant is unknown or still in the config, 3 the run lock is\n"
	  "held or the database failed.\n",
	  cmd_tenants, 0 },
	{ "status", "Show each tenant's last pull and sync, counts, and the next run",
	  "usage: entrasync status [--tenant ID|NAME] [--json]\n"
	  "\n"
	  "Per tenant: the last pull and the last sync (when, ok / failed / held and\n"
	  "why, the counts), since when it has been failing, users mirrored, contacts\n"
	  "linked, conflicts open, writes not confirmed yet; and the daemon: running\n"
	  "or not, the next scheduled run, the last run's exit code; a run going on\n"
	  "now (by pid), or one killed before it finished. Reads the database only\n"
	  "(never the network).\n"
	  "\n"
	  "  --tenant ID|NAME   only this tenant (one; also its GUID or a verified domain)\n"
	  "  --json             print it as JSON\n"
	  "\n"
	  "Exit status: 0 every configured tenant's latest pull and sync were ok (or\n"
	  "never ran), 1 a configured tenant's latest failed or was held (a tenant no\n"
	  "longer in the config does not count) or a run was killed before it\n"
	  "finished, 2 usage or config error, 3 the database cannot be read.\n",
	  cmd_status, 0 },
	{ "audit", "List every write made to Syncro, with the fields before and after",
	  "usage: entrasync audit [--tenant ID|NAME] [--since DATE] [--contact ID] [--user USER]\n"
	  "                       [--run ID] [--limit N] [--json]\n"
	  "\n"
	  "Lists the audit trail, oldest first: when, tenant, action (create, adopt,\n"
	  "update, delete, mark, recover, link, unlink), the Syncro contact, the Entra\n"
	  "user, the outcome, and each field that changed as  field: before → after.\n"
	  "\n"
	  "  --tenant ID|NAME   only this tenant (one; also its GUID or a verified domain)\n"
	  "  --since DATE       from DATE on: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z (UTC),\n"
	  "                     or an age such as 7d, 12h, 30m\n"
	  "  --contact ID       only writes to this Syncro contact\n"
	  "  --user USER        only writes for this Entra user (object id, UPN or mail;\n"
	  "                     with --tenant: user names are per tenant)\n"
	  "  --run ID           only writes of this run\n"
	  "  --limit N          the newest N rows (still printed oldest first)\n"
	  "  --json             a JSON array, one object per write\n"
	  "\n"
	  "Exit status: 0 ok (also when nothing matches), 2 usage or config error,\n"
	  "3 the database cannot be read.\n",
	  cmd_audit, 0 },
	{ "conflicts", "List open conflicts (users left alone rather than duplicate a contact)",
	  "usage: entrasync conflicts [--tenant ID|NAME] [--json]\n"
	  "\n"
	  "Lists the open conflicts: Entra users the sync did not link because several\n"
	  "existing Syncro contacts have their e-mail, with the candidate contacts and\n"
	  "the command that resolves each one by hand:\n"
	  "  entrasync link --tenant T USER CONTACT_ID\n"
	  "or because the one contact with their e-mail is another user's: one who left\n"
	  "(an account deleted and made again, the old account of a migration): the\n"
	  "message names that user, and 'entrasync unlink --tenant T OLD_USER' lets the\n"
	  "next sync adopt the contact; or one who has the address too (two tenants of\n"
	  "one customer): leave one of them out of the policy;\n"
	  "or because a linked user's update would make a second contact with an\n"
	  "e-mail (renamed to the address of a contact made by hand; moved by the\n"
	  "policy to a customer that has a contact with it): delete or merge in Syncro\n"
	  "the one that is not theirs, or link the user to a candidate instead.\n"
	  "A conflict closes by itself once the user's next sync plans something else.\n"
	  "\n"
	  "Exit status: 0 ok, 2 usage or config error, 3 the database cannot be read.\n",
	  cmd_conflicts, 0 },
	{ "link", "Link an Entra user to a Syncro contact by hand (resolves a conflict)",
	  "usage: entrasync link --tenant ID|NAME [--customer ID] USER CONTACT_ID\n"
	  "\n"
	  "Links the Entra user USER (object id, UPN or mail, as mirrored by the last\n"
	  "pull) to the existing Syncro contact CONTACT_ID, replacing any link the user\n"
	  "had, and closes the user's open conflict. The next sync reads that contact\n"
	  "and updates the policy's fields that differ (it never creates another\n"
	  "one). The link is recorded in the audit trail with your user name. Takes\n"
	  "the run lock.\n"
	  "\n"
	  "  --tenant ID|NAME   the user's tenant (required; its Microsoft GUID or a\n"
	  "                     verified domain names it too)\n"
	  "  --customer ID      the contact's Syncro customer (default: the tenant's)\n"
	  "\n"
	  "Exit status: 0 linked, 2 usage error or no such user, or the contact is\n"
	  "linked to another user, 3 could not start (another run holds the lock).\n",
	  cmd_link, 0 },
	{ "unlink", "Remove an Entra user's link to its Syncro contact",
	  "usage: entrasync unlink --tenant ID|NAME USER\n"
	  "\n"
	  "Forgets the link of the Entra user USER (object id, UPN or mail). Nothing\n"
	  "is written to Syncro. On the next sync the user is matched again by e-mail\n"
	  "(adopting the contact when exactly one has it), as on a first sync.\n"
	  "Recorded in the audit trail. Takes the run lock.\n"
	  "\n"
	  "Exit status: 0 unlinked (or was not linked), 2 usage error or no such\n"
	  "user, 3 could not start (another run holds the lock).\n",
	  cmd_unlink, 0 },
	{ "report", "Licence and Secure Score reports, trends and findings across tenants",
	  "usage: entrasync report licenses|securescore|findings [--tenant ID|NAME[,...]]... [--days N]\n"
	  "                        [--by-user] [--controls] [--format table|csv|json|html]\n"
	  "                        [--out FILE] [--title TEXT] [--alerts|--no-alerts] [--dry-run]\n"
	  "       entrasync report billing --period YYYY-MM [--tenant ...] [--format table|csv|json|html]\n"
	  "                        [--out FILE]   (the billing reconciliation: see 'entrasync help bill')\n"
	  "\n"
	  "Reports from the daily snapshots kept in the local database (run 'entrasync\n"
	  "pull' to collect them; history is kept beyond Graph's 90 days):\n"
	  "  licenses     per tenant and SKU on its newest snapshot day: purchased, assigned,\n"
	  "               available (a tenant whose day is older than the others' is marked\n"
	  "               '*' with its day; CSV: the license_day column)\n"
	  "  securescore  tenants ranked by Secure Score percent, with the change over 7, 30\n"
	  "               and 90 days and since tracking began; CSV/JSON: one row per day\n"
	  "  findings     unused licences, over-assignment, disabled or deleted users holding\n"
	  "               licences, expiring/suspended/locked-out seats, policy alerts, and\n"
	  "               tenants entrasync has failed to pull or sync for\n"
	  "               alerts.failing_hours (24 by default)\n"
	  "  --tenant ID      only these tenants (repeated or comma-separated; id, name,\n"
	  "                   or its GUID or a verified domain once pulled)\n"
	  "  --days N         securescore: the last N days; licenses/findings: unused means\n"
	  "                   free for N days in a row (default 30)\n"
	  "  --by-user        licenses: also the users holding licences (CSV: their table\n"
	  "                   alone, one table a file)\n"
	  "  --controls       securescore: per-control scores of the newest day\n"
	  "  --format FORMAT  table (default, 80 columns), csv, json or html (one self-contained\n"
	  "                   page with charts; always holds licences, scores and findings)\n"
	  "  --out FILE       write to FILE instead of standard output\n"
	  "  --alerts         raise the findings as Syncro tickets (one open ticket per tenant\n"
	  "                   and kind; later runs update it) for this run; alerts.enabled in\n"
	  "                   the config does it on every run (problem type, subject prefix\n"
	  "                   and unused days from alerts = { ... }); --dry-run only prints\n"
	  "                   the plan\n"
	  "  --no-alerts      no alerts for this run, even with alerts.enabled\n"
	  "\n"
	  "Tenants no longer in the config are left out (and named on stderr) unless\n"
	  "--tenant names them; no alert goes to them.\n"
	  "\n"
	  "Exit status: 0 ok, 1 the report or an alert failed, 2 usage or config error,\n"
	  "3 no database yet, or another run holds the lock (--alerts).\n",
	  cmd_report, 0 },
	{ "bill", "Bill Microsoft licences through Syncro: period invoices, recurring invoices, reconciliation",
	  "usage: entrasync bill --period YYYY-MM [--tenant ID[,...]]... [--dry-run] [--json] [--open-period]\n"
	  "                      [--reinvoice]\n"
	  "       entrasync bill --schedules [--period YYYY-MM] [--tenant ...] [--schedule NAME|ID]\n"
	  "                      [--on-removed zero|remove] [--allow-decrease] [--dry-run] [--json]\n"
	  "       entrasync bill --report --period YYYY-MM [--tenant ...] [--format table|csv|json|html]\n"
	  "                      [--out FILE]\n"
	  "\n"
	  "Prices come from the tenant policy's bill(sku, t) hook, called for every SKU\n"
	  "with its counts over the period's daily snapshots (purchased, assigned,\n"
	  "available, peak_assigned, peak_purchased); it returns { product_id=, name=,\n"
	  "unit_price=, quantity=, taxable= }, nil (no price: listed as UNBILLED when\n"
	  "seats are assigned) or false (not billed). SKUs returning the same product\n"
	  "roll into one line.\n"
	  "\n"
	  "--period: one Syncro invoice per tenant for the month (a month that has\n"
	  "ended, unless --open-period: for the month still going only). The intent\n"
	  "is recorded before each write, so an interrupted run is completed by the\n"
	  "next one without a second invoice;\n"
	  "a tenant already invoiced is reported with the drift since, nothing sent.\n"
	  "An invoice recorded for the month but deleted in Syncro is reported as such;\n"
	  "--reinvoice makes a new one for it (an invoice still in Syncro is kept).\n"
	  "A tenant with a recurring invoice (its billing_schedule, or billing.schedule)\n"
	  "is billed by it, not invoiced per period: said, exit 0 (billing_schedule =\n"
	  "false in its entry to invoice it per period instead).\n"
	  "--schedules: keeps the lines of each tenant's recurring invoice (named by\n"
	  "--schedule, else the tenant's billing_schedule, else billing.schedule in\n"
	  "the config) equal to bill() for the current month (or --period): adds\n"
	  "missing lines, updates quantities (and prices the policy sets), zeroes or\n"
	  "removes products no longer billed (billing.on_removed, or --on-removed); a\n"
	  "drop of more than max(5 units, 10 %) (billing.max_decrease = { count,\n"
	  "percent }) is held unless --allow-decrease. Every change is an audit row.\n"
	  "A tenant whose config names another schedule than before: its lines on the\n"
	  "one before are set to 0 (or removed) once the new one is in step.\n"
	  "--report: per tenant and SKU, purchased, assigned, billed quantity and\n"
	  "amount, and the leaks (purchased not billed, billed not assigned, no price);\n"
	  "exit 1 when a tenant cannot be reconciled (bill() fails, an invoice is\n"
	  "incomplete).\n"
	  "--dry-run shows what would be sent and sends and stores nothing.\n"
	  "\n"
	  "Exit status: 0 all tenants ok, 1 some failed, were held or could not be\n"
	  "billed (no data, no Syncro customer), 2 usage or config error, 3 could not\n"
	  "start (another run holds the lock: a dry run and --report wait their turn\n"
	  "too, as they read Syncro, whose request budget a sync uses up).\n",
	  cmd_bill, 0 },
	{ "user", "Microsoft actions on the Entra user behind a Syncro contact",
	  "usage: entrasync user show|disable|enable|revoke-sessions|set-password TARGET\n"
	  "                      [--tenant T] [--yes] [--dry-run] [--json]\n"
	  "       entrasync user tickets [--problem-type TYPE] [--status-done S]\n"
	  "                      [--status-failed S] [--open-status S] [--dry-run]\n"
	  "\n"
	  "TARGET is a Syncro contact id, an e-mail, a UPN or an Entra object id,\n"
	  "resolved through the links and the mirror of the last pull (--tenant T\n"
	  "narrows to one tenant, by id or name). An ambiguous target is refused with\n"
	  "the candidates.\n"
	  "  show             what the database knows: enabled, licences, declared groups,\n"
	  "                   department, office, last pull, protection, the link and\n"
	  "                   the last writes to the contact\n"
	  "  disable, enable  PATCH /users/{id} accountEnabled\n"
	  "                   (needs User.EnableDisableAccount.All + User.Read.All)\n"
	  "  revoke-sessions  POST /users/{id}/revokeSignInSessions (User.RevokeSessions.All)\n"
	  "  set-password     PATCH /users/{id} passwordProfile, to be changed at the next\n"
	  "                   sign-in (User-PasswordProfile.ReadWrite.All): the first line\n"
	  "                   of standard input when it is not a terminal, else a strong\n"
	  "                   random password printed once, here, and nowhere else\n"
	  "  tickets          the actions asked for by open Syncro tickets of the config's\n"
	  "                   actions.ticket_problem_type (or --problem-type TYPE), each\n"
	  "                   ticket once. Subject: the action (disable, enable, revoke\n"
	  "                   sessions), then the user's e-mail or UPN (looked for in the\n"
	  "                   ticket customer's tenants only) or nothing or the ticket\n"
	  "                   contact's name (the contact is the user), then nothing or a\n"
	  "                   separator (: - , ( /) and any text: 'Disable jane@contoso.com\n"
	  "                   - left today', 'Revoke sessions: phone stolen'. The tenant\n"
	  "                   policy's allow_action decides; the outcome is posted as a\n"
	  "                   private comment and the status set to\n"
	  "                   actions.ticket_status_done / _failed (or --status-done /\n"
	  "                   --status-failed). --open-status S: the Syncro ticket status\n"
	  "                   that lists the open tickets (default \"Not Closed\")\n"
	  "A policy's protect(u, t) refuses actions on the users it protects. disable,\n"
	  "revoke-sessions and set-password ask for confirmation on a terminal, and need\n"
	  "--yes otherwise. --dry-run shows the request and changes nothing. Every action,\n"
	  "done or refused, is recorded in the audit with who ran it.\n"
	  "\n"
	  "Exit status: 0 done, 1 refused or failed, 2 usage (unknown or ambiguous\n"
	  "target, --yes needed), 3 could not start.\n",
	  cmd_user, 0 },
	{ "daemon", "Run sync on a schedule (for a service manager), e.g. --every 1h",
	  "usage: entrasync daemon --every DURATION [--jitter DURATION] [--metrics FILE]\n"
	  "                        [--command sync|pull] [--verify-every DURATION]\n"
	  "                        [-- SYNC-OPTIONS...]\n"
	  "\n"
	  "Runs 'entrasync sync' (or pull) now and then every DURATION, each run a\n"
	  "fresh process with the config and the policies as the daemon last accepted\n"
	  "them (at start, or at the last good reload: SIGHUP). A run still\n"
	  "going when the next is due is not started twice (that slot is skipped and\n"
	  "logged). A manual 'entrasync sync' and the daemon take turns on the run lock.\n"
	  "Options after '--' are given to each run (e.g. -- --tenant contoso); if the\n"
	  "first run ends in a usage error, the daemon stops (exit 2).\n"
	  "\n"
	  "  --every DURATION    the interval: 1h, 30m, 1h30m, 90s ... (1s to 366d)\n"
	  "  --jitter DURATION   start each run up to this much later, at random\n"
	  "  --metrics FILE      write Prometheus metrics to FILE (atomically) at start\n"
	  "                      and after every run (node_exporter textfile collector)\n"
	  "  --command COMMAND   sync (default) or pull\n"
	  "  --verify-every DURATION\n"
	  "                      give a sync run --verify when the last run that had it\n"
	  "                      started that long ago, e.g. 1d (the first run verifies;\n"
	  "                      the time is kept in the database)\n"
	  "\n"
	  "Signals: SIGTERM / SIGINT stop the daemon once the run in progress has\n"
	  "finished its write in flight; SIGHUP checks the config and the policies\n"
	  "again and logs the verdict (a bad config keeps the daemon's previous\n"
	  "settings; 'entrasync status' shows a broken policy, and a config file\n"
	  "that does not load stops status itself with its FILE:LINE). Runs use the\n"
	  "config and the policies as last accepted: an edit on disk takes effect at\n"
	  "the next good SIGHUP.\n"
	  "\n"
	  "Exit status: 0 stopped by a signal, 2 usage error, the config is not valid\n"
	  "at start, or the first run's options are wrong, 3 could not start (another\n"
	  "daemon runs on the database).\n",
	  cmd_daemon, 0 },
	{ "metrics", "Print or write the Prometheus metrics (node_exporter textfile)",
	  "usage: entrasync metrics [--output FILE]\n"
	  "\n"
	  "Prints the metrics in Prometheus text format, computed from the database:\n"
	  "runs by kind and status, the latest run's duration and success, the last\n"
	  "success time, writes by action and outcome, per-tenant outcomes and\n"
	  "failures, users mirrored, contacts linked, conflicts open, HTTP requests\n"
	  "and 429s by service, and the daemon's next run. With --output FILE, writes\n"
	  "FILE atomically (a temporary file renamed over it, mode 0644) for\n"
	  "node_exporter's textfile collector (name it *.prom). The daemon does the\n"
	  "same after every run with --metrics FILE.\n"
	  "\n"
	  "Exit status: 0 ok, 2 usage or config error, 3 the database cannot be read\n"
	  "or FILE cannot be written.\n",
	  cmd_metrics, 0 },
	{ "prune", "Delete the history older than the retention now, all of it",
	  "usage: entrasync prune [--dry-run] [--vacuum]\n"
	  "\n"
	  "Applies the config's retention = { runs_days, audit_days, score_detail_days }\n"
	  "now and to the end: runs and their per-tenant results and finished write\n"
	  "intents older than runs_days (each tenant's latest result of a kind kept),\n"
	  "audit rows older than audit_days, and the control scores of Secure Score\n"
	  "days older than score_detail_days. A pull or a sync does the same at its\n"
	  "end, at most 100,000 rows a table a run; run prune after shortening a\n"
	  "retention, or to see what it deletes.\n"
	  "\n"
	  "Options:\n"
	  "  --dry-run   count what would be deleted; delete nothing (the deletions are\n"
	  "              done and rolled back: it takes as long as the prune itself)\n"
	  "  --vacuum    then rewrite the database file without the freed pages (takes\n"
	  "              as long as copying the database, and as much free disk again)\n"
	  "\n"
	  "Exit status: 0 ok, 2 usage or config error, 3 could not start or could not\n"
	  "delete (lock held, database unreadable or refusing the change: the part\n"
	  "that failed is rolled back whole).\n",
	  cmd_prune, 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};

static const char *const global_names[] = { "--config", "--lua-dir", "--log-level", "--log-format", NULL };
static const char *const log_formats[] = { "human", "json", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", "trace", NULL };

const struct command *command_find(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0) return c;
	return NULL;
}

/* "unknown WHAT 'GIVEN' (did you mean 'X'?)" into b. */
static void format_unknown(struct buf *b, const char *what, const char *given, const char *const *valid)
{
	const char *near = config_nearest(given, valid);
	buf_printf(b, "unknown %s '%s'", what, given);
	if (near) buf_printf(b, " (did you mean '%s'?)", near);
}

int usage_fail(const char *cmd, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	fprintf(stderr, "entrasync%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", b.data ? b.data : "");
	buf_free(&b);
	return EXIT_USAGE;
}

int usage_unknown(const char *what, const char *given, const char *const *valid, const char *cmd)
{
	struct buf b = {0};
	format_unknown(&b, what, given, valid);
	usage_fail(cmd, "%s", b.data);
	buf_free(&b);
	return EXIT_USAGE;
}

int usage_unknown_command(const char *given)
{
	const char *names[32];
	size_t n = 0;
	for (const struct command *c = commands; c->name && n + 1 < ARRAY_LEN(names); c++)
		if (!c->hidden) names[n++] = c->name;
	names[n] = NULL;
	struct buf b = {0};
	format_unknown(&b, "command", given, names);
	if (!config_nearest(given, names)) buf_adds(&b, " (see 'entrasync help')");
	usage_fail(NULL, "%s", b.data);
	buf_free(&b);
	return EXIT_USAGE;
}

/* Is a the start of "--name" or "--name=…" for this option name? */
static int opt_named(const char *a, const char *name)
{
	size_t n = strlen(name);
	return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

/* The value of option name at argv[*i] (a is argv[*i], named name):
 * "--name=V" or "--name V" (*i moved past V). A separate value may not look
 * like a long option ("--config --log-level" is a missing value). NULL
 * with err when there is none. */
static const char *opt_value(const char *name, const char *metavar, int argc, char **argv, int *i, struct err *err)
{
	const char *eq = argv[*i] + strlen(name), *v = NULL;
	if (*eq == '=') v = eq + 1;
	else if (*i + 1 < argc && !(str_starts(argv[*i + 1], "--") && argv[*i + 1][2])) v = argv[++*i];
	if (!v || !*v) {
		err_set(err, "option '%s' needs a value (%s %s)", name, name, metavar);
		return NULL;
	}
	return v;
}

/* Matches argv[*i] against opts. Returns 1 when it is one of them (value
 * or flag stored, *i moved past a separate value), 0 when it is not, -1 on
 * a missing value, a value given to a flag, or a second value for an
 * option that takes one (err: the first would be silently dropped).
 * given[k] says whether opts[k] was seen already (room for every opt). */
static int opt_take(const struct opt *opts, bool *given, int argc, char **argv, int *i, struct err *err)
{
	const char *a = argv[*i];
	for (const struct opt *o = opts; o->name; o++) {
		if (!opt_named(a, o->name)) continue;
		const char *eq = a + strlen(o->name);
		if (!o->metavar) {
			if (*eq == '=') return err_set(err, "option '%s' takes no value", o->name);
			*o->flag = 1;
			return 1;
		}
		const char *v = opt_value(o->name, o->metavar, argc, argv, i, err);
		if (!v) return -1;
		if (given[o - opts])
			return err_set(err, "option '%s' is given twice ('%s' and '%s'): it takes one %s", o->name, *o->value, v,
			               o->metavar);
		given[o - opts] = true;
		*o->value = v;
		return 1;
	}
	return 0;
}

/* How many options opts has (up to its NULL name). */
static size_t opts_count(const struct opt *opts)
{
	size_t n = 0;
	while (opts[n].name) n++;
	return n;
}

void opt_list_free(struct opt_list *l)
{
	for (size_t i = 0; i < l->n; i++) free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Appends each comma-separated part of v (empty parts left out) to l. */
static void opt_list_add(struct opt_list *l, const char *v)
{
	for (const char *p = v; *p;) {
		size_t len = strcspn(p, ",");
		if (len) {
			l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
			l->v[l->n++] = xstrndup(p, len);
		}
		p += len + (p[len] == ',');
	}
}

int opts_take_list(int argc, char **argv, const char *name, const char *metavar, struct opt_list *list,
                   struct err *err)
{
	int out = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc) argv[out++] = argv[i++];
			break;
		}
		if (!opt_named(argv[i], name)) {
			argv[out++] = argv[i];
			continue;
		}
		const char *v = opt_value(name, metavar, argc, argv, &i, err);
		if (!v) return -1;
		size_t had = list->n;
		opt_list_add(list, v);
		if (list->n == had) return err_set(err, "option '%s' needs a value (%s %s)", name, name, metavar);
	}
	return out;
}

/* err = "unknown option 'X' (did you mean …)" among extra and the global
 * options (and --help); "=value" is left out of the message. */
static int unknown_option(const char *given, const struct opt *extra, const char *const *more, struct err *err)
{
	const char *valid[64];
	size_t n = 0;
	for (const struct opt *o = extra; o && o->name && n < 40; o++) valid[n++] = o->name;
	for (size_t j = 0; global_names[j]; j++) valid[n++] = global_names[j];
	for (size_t j = 0; more && more[j] && n < 62; j++) valid[n++] = more[j];
	valid[n] = NULL;
	char *name = xstrndup(given, strcspn(given, "="));
	struct buf b = {0};
	format_unknown(&b, "option", name, valid);
	err_set(err, "%s", b.data);
	buf_free(&b);
	free(name);
	return -1;
}

int opts_parse(int argc, char **argv, const struct opt *opts, char **pos, int *npos, struct err *err)
{
	static const char *const help[] = { "--help", NULL };
	bool *given = xcalloc(opts_count(opts) + 1, sizeof *given);
	int rc = -1;
	*npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (++i < argc) pos[(*npos)++] = argv[i];
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			pos[(*npos)++] = argv[i];
			continue;
		}
		int r = opt_take(opts, given, argc, argv, &i, err);
		if (r < 0) goto out;
		if (r == 0) {
			unknown_option(a, opts, help, err);
			goto out;
		}
	}
	rc = 0;
out:
	free(given);
	return rc;
}

int command_args(const char *cmd, int argc, char **argv, const struct opt *opts, int max_pos, int *npos)
{
	static const struct opt none[] = { { NULL, NULL, NULL, NULL } };
	struct err err;
	if (opts_parse(argc, argv, opts ? opts : none, argv, npos, &err) != 0) return usage_fail(cmd, "%s", err.msg);
	if (*npos > max_pos) return usage_fail(cmd, "unexpected argument '%s'", argv[max_pos]);
	return 0;
}

/* err = "invalid value 'V' for OPT (expected A, B or C) (did you mean …)". */
static int invalid_value(const char *opt, const char *v, const char *const *valid, struct err *err)
{
	struct buf b = {0};
	buf_printf(&b, "invalid value '%s' for %s (expected ", v, opt);
	for (size_t i = 0; valid[i]; i++)
		buf_printf(&b, "%s%s", i == 0 ? "" : valid[i + 1] ? ", " : " or ", valid[i]);
	buf_addc(&b, ')');
	const char *near = config_nearest(v, valid);
	if (near) buf_printf(&b, " (did you mean '%s'?)", near);
	err_set(err, "%s", b.data);
	buf_free(&b);
	return -1;
}

int global_opts_parse(int argc, char **argv, struct global_opts *g, char **rest, int *nrest, struct err *err)
{
	static char help_cmd[] = "help", version_cmd[] = "version";
	static const char *const before_cmd[] = { "--help", "--version", NULL };
	const struct opt gopts[] = {
		{ "--config", "FILE", &g->config_path, NULL },
		{ "--lua-dir", "DIR", &g->lua_dir, NULL },
		{ "--log-level", "LEVEL", &g->log_level, NULL },
		{ "--log-format", "FORMAT", &g->log_format, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	bool given[ARRAY_LEN(gopts)] = { false };
	int have_cmd = 0;
	*nrest = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--") == 0) {             /* the rest belongs to the command, untouched */
			while (i < argc) rest[(*nrest)++] = argv[i++];
			break;
		}
		int r = opt_take(gopts, given, argc, argv, &i, err);
		if (r < 0) return -1;
		if (r > 0) continue;
		if (!have_cmd) {
			if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) a = help_cmd;
			else if (strcmp(a, "--version") == 0) a = version_cmd;
			else if (a[0] == '-' && a[1]) return unknown_option(a, NULL, before_cmd, err);
			have_cmd = 1;
		}
		rest[(*nrest)++] = a;
	}
	if (g->log_level && log_level_parse(g->log_level) < 0)
		return invalid_value("--log-level", g->log_level, log_levels, err);
	if (g->log_format && strcmp(g->log_format, "human") != 0 && strcmp(g->log_format, "json") != 0)
		return invalid_value("--log-format", g->log_format, log_formats, err);
	struct stat st;
	if (g->lua_dir && (stat(g->lua_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
		return err_set(err, "--lua-dir '%s' is not a directory", g->lua_dir);
	return 0;
}

void global_opts_apply(const struct global_opts *g)
{
	if (g->log_level) log_set_level((enum log_level)log_level_parse(g->log_level));
	if (g->log_format) log_set_format(strcmp(g->log_format, "json") == 0 ? LOG_JSON : LOG_HUMAN);
	if (g->lua_dir) script_set_lua_dir(g->lua_dir);
}

int command_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
	return 0;
}

static const char global_help[] =
	"Global options (before or after the command):\n"
	"  --config FILE        the config file (default: $ENTRASYNC_CONFIG, else ./entrasync.lua)\n"
	"  --lua-dir DIR        load the runtime's Lua modules from DIR instead of the built-in copies\n"
	"  --log-level LEVEL    error, warn, info (default), debug or trace\n"
	"  --log-format FORMAT  human (default) or json\n"
	"  -h, --help           show help\n"
	"  --version            print the version\n";

static const char exit_help[] =
	"Exit status:\n"
	"  0  success\n"
	"  1  some tenant failed or was held\n"
	"  2  usage or config error\n"
	"  3  could not start (lock held, store unreadable)\n";

void commands_print_help(FILE *f, int brief)
{
	fputs("usage: entrasync <command> [options]\n\n", f);
	if (!brief)
		fputs("Keeps Syncro MSP contacts in step with each customer's Microsoft Entra ID.\n\n", f);
	fputs("Commands:\n", f);
	for (const struct command *c = commands; c->name; c++)
		if (!c->hidden) fprintf(f, "  %-10s %s\n", c->name, c->summary);
	if (brief) {
		fputs("\nRun 'entrasync help' for the options and exit codes, 'entrasync help COMMAND' for a command.\n", f);
		return;
	}
	fprintf(f, "\n%s\n%s\nRun 'entrasync help COMMAND' or 'entrasync COMMAND --help' for a command's options.\n",
	        global_help, exit_help);
}

void command_print_usage(const struct command *c, FILE *f)
{
	fprintf(f, "%s\n%s", c->usage, global_help);
}

int commands_finish_output(int rc)
{
	errno = 0;
	int failed = fflush(stdout) != 0 || ferror(stdout);
	if (!failed || errno == EPIPE) return rc;
	fprintf(stderr, "entrasync: cannot write the output: %s\n", errno ? strerror(errno) : "write error");
	return rc ? rc : EXIT_PARTIAL;
}
