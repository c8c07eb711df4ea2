/* shutdown — a polite stop for long runs. After shutdown_install(), the
 * first SIGTERM or SIGINT only sets a flag: the run checks
 * shutdown_requested() between writes, finishes the write in flight,
 * records it, and stops (skipping what is left). A second signal of either
 * kind ends the process at once (the default action), for an operator who
 * really means it. The daemon forwards its SIGTERM to the running sync this
 * way. Async-signal-safe: the handler only sets a sig_atomic_t. */
#ifndef ENTRASYNC_SHUTDOWN_H
#define ENTRASYNC_SHUTDOWN_H

#include <stdbool.h>

/* Installs the SIGTERM and SIGINT handlers (idempotent). */
void shutdown_install(void);
/* The same for a worker process (a pull's): every signal only sets the
 * flag, never kills, since a Ctrl-C reaches the whole process group and its
 * parent passes the stop on too; the parent is the one a second signal kills. */
void shutdown_install_worker(void);
/* Has a stop been asked for since shutdown_install? */
bool shutdown_requested(void);
/* The signal that asked (SIGTERM / SIGINT), 0 when none. */
int shutdown_signal(void);
/* Asks for a stop from the program itself (and tests). */
void shutdown_request(int sig);
/* Forgets a stop asked for (tests: the flag would stop every later
 * request of the process, see http.c stop_waiting). */
void shutdown_reset(void);

#endif
