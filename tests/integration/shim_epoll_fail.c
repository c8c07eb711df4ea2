/* shim_epoll_fail — a test shim loaded with LD_PRELOAD by
 * test_pull_loop_failure.sh: the event loop's epoll_wait fails (ENOMEM),
 * so the pull's loop fails with requests still in flight: the one way it
 * fails short of a bug (epoll or curl's multi interface refusing). It
 * fails from the SHIM_EPOLL_FAIL_AT-th call on, or from the first call
 * after a send() whose bytes hold SHIM_EPOLL_FAIL_AFTER_SEND (a point in
 * the run that does not depend on timing: that request is in flight).
 * Counted per process; every other call goes to the real function. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static int failing;   /* set once the trigger was seen */

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, const void *, size_t, int);
	if (!real) real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
	const char *mark = getenv("SHIM_EPOLL_FAIL_AFTER_SEND");
	ssize_t n = real(fd, buf, len, flags);
	if (mark && *mark && n > 0 && memmem(buf, (size_t)n, mark, strlen(mark))) failing = 1;
	return n;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	static int (*real)(int, struct epoll_event *, int, int);
	static int calls;
	if (!real) real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
	const char *at = getenv("SHIM_EPOLL_FAIL_AT");
	if (at && ++calls >= atoi(at)) failing = 1;
	if (failing) {
		errno = ENOMEM;
		return -1;
	}
	return real(epfd, events, maxevents, timeout);
}
