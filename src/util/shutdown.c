/* shutdown — the stop flag set by SIGTERM / SIGINT (see shutdown.h). */
#include "util/shutdown.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	if (stop_signal) {              /* the second one: stop now */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_signal = sig;
}

/* A worker's: every signal only sets the flag (its parent, which got the
 * same signal from the process group or passes its own on, decides). */
static void on_stop_flag(int sig)
{
	stop_signal = sig;
}

static void install(void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;       /* a signal never turns a read or write into EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

void shutdown_install(void)
{
	install(on_stop);
}

void shutdown_install_worker(void)
{
	install(on_stop_flag);
}

bool shutdown_requested(void)
{
	return stop_signal != 0;
}

int shutdown_signal(void)
{
	return (int)stop_signal;
}

void shutdown_request(int sig)
{
	stop_signal = sig ? sig : SIGTERM;
}

void shutdown_reset(void)
{
	stop_signal = 0;
}
