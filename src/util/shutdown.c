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

void shutdown_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;       /* a signal never turns a read or write into EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
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
