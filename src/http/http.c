/* http — the libcurl multi engine (see http.h for the contract).
 *
 * A request ("call") moves through three places:
 *   ready    FIFO per lane; waits for the service's pacing token, the
 *            service and lane in-flight caps, and the lane's hold (the
 *            service lists its lanes that have ready calls, in round-robin
 *            order, so the scheduler never walks every tenant's lane);
 *   running  an easy handle added to the multi handle;
 *   waiting  between attempts (Retry-After or backoff), in the engine's
 *            heap of wake times until its own, then back to the FRONT of
 *            its lane's ready queue (a retry does not queue behind new work).
 * With thousands of tenants (lanes) and as many calls waiting out a 429 or
 * an outage, a turn of the loop costs what it starts and wakes, not what
 * merely exists.
 * One loop iteration (http_step): start what may start, drive curl, handle
 * completions (callbacks may submit more), then wait on curl's sockets with a
 * timeout that is the nearest of our own timers (wake times, lane holds, the
 * next pacing token) and curl's. Nothing ever sleeps.
 *
 * curl is driven by its socket interface (curl_multi_socket_action): curl
 * tells us which sockets to watch (on_curl_socket → epoll) and when its next
 * timeout is due (on_curl_timer), and we hand it only the sockets that are
 * ready. curl_multi_perform would instead visit every running transfer, and
 * poll each one's socket, on every call: quadratic in the transfers in flight
 * (a hundred tenants pulled at once made 13,000 poll calls for 400 requests).
 *
 * Trust: verification is always on. A service's ca_file certificates are
 * added to the OpenSSL X509_STORE of each new TLS context it creates
 * (CURLOPT_SSL_CTX_FUNCTION), on top of the system bundle curl loads. Such a
 * service gets its own curl share (connections + TLS sessions) and no CA
 * store cache, so a connection or session verified with its extra anchor is
 * never reused by a service that does not trust it. */
#include "http/http.h"

#include <curl/curl.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/log.h"
#include "util/shutdown.h"

#define HTTP_DEFAULT_MAX_CONNECTIONS 32
#define HTTP_DEFAULT_IN_FLIGHT 16
#define HTTP_DEFAULT_BODY_CAP ((size_t)64 << 20)

enum call_state { CALL_READY, CALL_RUNNING, CALL_WAITING, CALL_DONE };

struct call_list {
	struct http_call *head, *tail;
	size_t n;
};

/* One submitted request, owned by the engine from http_submit until its
 * on_done has returned. */
struct http_call {
	struct http_call *prev, *next;   /* in exactly one list (by state), or waiting: in the heap */
	enum call_state state;
	struct http_service *svc;
	struct http_lane *lane;
	char *method;
	char *url;
	char *log_path;                  /* path + query of url, for log lines */
	struct curl_slist *headers;
	char *body;                      /* copy of the request body or NULL */
	size_t body_len;
	bool has_body;
	bool idempotent;
	double timeout;
	http_done_fn on_done;
	void *ctx;
	double t_submit;                 /* time_mono at submit */
	double t_attempt;                /* time_mono at the start of this attempt */
	double t_wake;                   /* time_mono when a waiting call becomes ready */
	double waited;                   /* sum of scheduled retry waits */
	CURL *easy;                      /* while running */
	bool too_large;                  /* body cap hit during this attempt */
	char errbuf[CURL_ERROR_SIZE];
	struct http_response resp;       /* filled as attempts go */
};

struct http_lane {
	struct http_service *svc;
	char *label;                     /* "service" or "service/lane", for logs */
	int max_in_flight;               /* 0 = no lane cap */
	int in_flight;
	double hold_until;               /* time_mono; no start before this */
	struct call_list ready;
	struct http_lane *rprev, *rnext; /* in the service's list while its ready queue is not empty */
};

struct http_service {
	struct http_engine *e;
	char *name;
	char *base_url;
	double rate_per_sec;             /* 0 = unpaced */
	double burst;
	double tokens;
	double tokens_at;                /* time_mono of the last refill */
	int max_in_flight;
	int in_flight;
	double connect_timeout, total_timeout;
	size_t max_body;
	struct http_retry_policy retry;
	http_response_hook on_response;
	void *hook_ctx;
	STACK_OF(X509) *anchors;         /* extra trust anchors, or NULL */
	CURLSH *share;                   /* own connection/TLS-session cache when anchors */
	struct http_lane **lanes;        /* lanes[0] is the default lane */
	size_t n_lanes;
	/* the lanes whose ready queue is not empty, in round-robin order (a
	 * lane that starts a call goes to the back): the scheduler visits only
	 * these, not every tenant's lane on every turn of the loop */
	struct http_lane *rhead, *rtail;
	CURL **idle;                     /* easy handles kept for reuse */
	size_t n_idle, cap_idle;
	struct http_counters counters;
	int trip_attempts;               /* 0 = never down (see http_service_opts) */
	double trip_seconds;
	bool trip_two_lanes;
	int outage_attempts;             /* attempts in a row that got no answer or 502/503/504 */
	double outage_since;             /* time_mono the first of them started */
	const struct http_lane *outage_lane; /* the lane of the first of them */
	bool outage_lanes;               /* another lane's attempt is among them */
	bool down;
	char down_text[300];             /* why, for the calls ended unsent */
};

struct http_engine {
	CURLM *multi;
	char *system_ca_file;
	struct http_service **svcs;
	size_t n_svcs;
	struct call_list running;
	/* calls waiting for a retry's time: a binary min-heap by t_wake (a 429
	 * or an outage can leave thousands waiting, each with its own time) */
	struct http_call **waiting;
	size_t n_waiting, cap_waiting;
	struct call_list finished;       /* completed in drain(), owners not yet called */
	bool defer_completion;           /* finish_attempt parks completed calls on finished */
	bool long_holds;                 /* a lane may be held past its service's retry budget (fail_long_held) */
	bool any_down;                   /* a service was found down (fail_down) */
	size_t pending;                  /* ready + running + waiting + finished */
	bool in_loop;                    /* inside http_run/http_step/http_do */
	bool stop;
	bool closing;
	int epfd;                        /* epoll set of the sockets curl watches */
	double curl_due;                 /* curl's next timeout (time_mono), or -1 */
	bool plain_proxied;              /* an http:// request may go through a proxy (environment) */
	bool maxconn_fixed;              /* the caller chose the cache size */
	long maxconn;                    /* CURLMOPT_MAXCONNECTS now set */
	uint64_t rng;
};

/* ---- small helpers ----------------------------------------------------- */

static void list_push_back(struct call_list *l, struct http_call *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail) l->tail->next = c; else l->head = c;
	l->tail = c;
	l->n++;
}

static void list_push_front(struct call_list *l, struct http_call *c)
{
	c->prev = NULL;
	c->next = l->head;
	if (l->head) l->head->prev = c; else l->tail = c;
	l->head = c;
	l->n++;
}

static void list_remove(struct call_list *l, struct http_call *c)
{
	if (c->prev) c->prev->next = c->next; else l->head = c->next;
	if (c->next) c->next->prev = c->prev; else l->tail = c->prev;
	c->prev = c->next = NULL;
	l->n--;
}

static void rlist_unlink(struct http_lane *l)
{
	struct http_service *s = l->svc;
	if (l->rprev) l->rprev->rnext = l->rnext;
	else s->rhead = l->rnext;
	if (l->rnext) l->rnext->rprev = l->rprev;
	else s->rtail = l->rprev;
	l->rprev = l->rnext = NULL;
}

static void rlist_append(struct http_lane *l)
{
	struct http_service *s = l->svc;
	l->rprev = s->rtail;
	l->rnext = NULL;
	if (s->rtail) s->rtail->rnext = l;
	else s->rhead = l;
	s->rtail = l;
}

/* Queues c on lane l's ready queue, at the back, or at the front for a
 * retry (it does not wait behind new work); the lane is then listed as
 * having ready calls. */
static void lane_ready_push(struct http_lane *l, struct http_call *c, bool front)
{
	bool listed = l->ready.head != NULL;
	if (front) list_push_front(&l->ready, c);
	else list_push_back(&l->ready, c);
	if (!listed) rlist_append(l);
}

/* The waiting heap: push a call; pop the one that wakes first. */
static void waiting_push(struct http_engine *e, struct http_call *c)
{
	if (e->n_waiting == e->cap_waiting) {
		e->cap_waiting = e->cap_waiting ? e->cap_waiting * 2 : 16;
		e->waiting = xrealloc(e->waiting, e->cap_waiting * sizeof *e->waiting);
	}
	size_t i = e->n_waiting++;
	while (i > 0 && e->waiting[(i - 1) / 2]->t_wake > c->t_wake) {
		e->waiting[i] = e->waiting[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	e->waiting[i] = c;
}

static struct http_call *waiting_pop(struct http_engine *e)
{
	struct http_call *top = e->waiting[0], *last = e->waiting[--e->n_waiting];
	size_t i = 0, n = e->n_waiting;
	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= n) break;
		if (k + 1 < n && e->waiting[k + 1]->t_wake < e->waiting[k]->t_wake) k++;
		if (e->waiting[k]->t_wake >= last->t_wake) break;
		e->waiting[i] = e->waiting[k];
		i = k;
	}
	if (n) e->waiting[i] = last;
	return top;
}

/* Takes c off lane l's ready queue; an emptied lane leaves the list. */
static void lane_ready_remove(struct http_lane *l, struct http_call *c)
{
	list_remove(&l->ready, c);
	if (!l->ready.head) rlist_unlink(l);
}

/* xorshift64*: uniform double in [0,1) for backoff jitter. */
static double rng_uniform(struct http_engine *e)
{
	uint64_t x = e->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	e->rng = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static long ms_from_s(double s)
{
	return s <= 0 ? 0 : (long)ceil(s * 1000.0);
}

/* Path and query of an absolute URL ("/" when none), for logs. */
static char *url_log_path(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	if (!*p) return xstrdup("/");
	size_t n = strcspn(p, "#");
	return xstrndup(p, n);
}

static bool method_is_idempotent(const char *m)
{
	static const char *const idem[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE" };
	for (size_t i = 0; i < ARRAY_LEN(idem); i++)
		if (strcmp(m, idem[i]) == 0) return true;
	return false;
}

static bool method_is_token(const char *m)
{
	if (!*m) return false;
	for (const char *p = m; *p; p++)
		if (*p < '!' || *p > '~' || strchr("()<>@,;:\\\"/[]?={}", *p)) return false;
	return true;
}

static bool status_is_retryable(long status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

/* Transport failures worth another attempt: the connection could not be
 * made, broke, or timed out. Certificate failures and our own aborts are not. */
static bool curlcode_is_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static bool curlcode_is_tls_verify(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
	       rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

/* ---- response ------------------------------------------------------------- */

static void headers_clear(struct http_response *r)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->n_headers = 0;
}

const char *http_response_header(const struct http_response *resp, const char *name)
{
	if (!resp || !name) return NULL;
	for (size_t i = resp->n_headers; i-- > 0;)
		if (str_ieq(resp->headers[i].name, name)) return resp->headers[i].value;
	return NULL;
}

void http_response_move(struct http_response *dst, struct http_response *src)
{
	*dst = *src;
	memset(src, 0, sizeof *src);
	src->retry_after = -1;
}

void http_response_free(struct http_response *resp)
{
	if (!resp) return;
	headers_clear(resp);
	buf_free(&resp->body);
	free(resp->method);
	free(resp->url);
	memset(resp, 0, sizeof *resp);
	resp->retry_after = -1;
}

/* ---- curl callbacks ------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_call *c = userp;
	size_t n = size * nmemb;
	if (c->resp.body.len + n > c->svc->max_body) {
		c->too_large = true;
		return 0;                        /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	buf_add(&c->resp.body, data, n);
	return n;
}

/* One header line. A status line starts a new header block (after a 1xx
 * or on a new attempt), so only the final response's headers are kept. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_call *c = userp;
	size_t n = size * nmemb, len = n;
	while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n')) len--;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		headers_clear(&c->resp);
		return n;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon || colon == data || data[0] == ' ' || data[0] == '\t') return n;
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t')) v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
	struct http_response *r = &c->resp;
	/* an uncompressed body's size is known: one allocation instead of
	 * doubling (and copying) as it arrives; capped, never trusted beyond */
	if ((size_t)(colon - data) == 14 && strncasecmp(data, "Content-Length", 14) == 0) {
		char *e = NULL;
		unsigned long long cl = strtoull(v, &e, 10);
		if (e && e > v && cl > 0 && cl <= c->svc->max_body && r->body.cap < cl + 1)
			buf_reserve(&r->body, (size_t)cl - r->body.len);
	}
	r->headers = xrealloc(r->headers, (r->n_headers + 1) * sizeof *r->headers);
	r->headers[r->n_headers].name = xstrndup(data, (size_t)(colon - data));
	r->headers[r->n_headers].value = xstrndup(v, (size_t)(end - v));
	r->n_headers++;
	return n;
}

/* Adds the service's extra anchors to the store of a new TLS context; the
 * system bundle curl loaded stays in it. A failed add (a duplicate, or out of
 * memory) can only make verification stricter, so it is not an error. */
static CURLcode on_ssl_ctx(CURL *curl, void *sslctx, void *userp)
{
	(void)curl;
	struct http_service *svc = userp;
	X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)sslctx);
	if (!store) return CURLE_SSL_CERTPROBLEM;
	for (int i = 0; i < sk_X509_num(svc->anchors); i++)
		X509_STORE_add_cert(store, sk_X509_value(svc->anchors, i));
	ERR_clear_error();
	return CURLE_OK;
}

/* ---- engine ---------------------------------------------------------------- */

/* curl's socket callback: watch socket s for what curl wants (in, out, both)
 * or stop watching it. socketp is what curl_multi_assign stored: non-NULL once
 * the socket is in the epoll set. Errors are logged, not returned: a socket we
 * fail to watch times out through curl's own timers. */
static int on_curl_socket(CURL *easy, curl_socket_t sock, int what, void *userp, void *socketp)
{
	(void)easy;
	struct http_engine *e = userp;
	if (what == CURL_POLL_REMOVE) {
		if (socketp) epoll_ctl(e->epfd, EPOLL_CTL_DEL, sock, NULL);  /* may be closed already */
		curl_multi_assign(e->multi, sock, NULL);
		return 0;
	}
	struct epoll_event ev = { .events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
	                          .data.fd = sock };
	int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	int rc = epoll_ctl(e->epfd, op, sock, &ev);
	if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST) rc = epoll_ctl(e->epfd, EPOLL_CTL_MOD, sock, &ev);
	else if (rc < 0 && op == EPOLL_CTL_MOD && errno == ENOENT) rc = epoll_ctl(e->epfd, EPOLL_CTL_ADD, sock, &ev);
	if (rc < 0) log_warn("http", "epoll_ctl on socket %d: %s", (int)sock, strerror(errno));
	else if (!socketp) curl_multi_assign(e->multi, sock, e);
	return 0;
}

/* curl's timer callback: its next timeout in ms from now, or -1 for none. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct http_engine *e = userp;
	e->curl_due = timeout_ms < 0 ? -1 : time_mono() + (double)timeout_ms / 1000.0;
	return 0;
}

struct http_engine *http_engine_new(const struct http_engine_opts *opts, struct err *err)
{
	static bool curl_ready;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			err_set(err, "http: libcurl initialisation failed");
			return NULL;
		}
		curl_ready = true;
	}
	struct http_engine *e = xcalloc(1, sizeof *e);
	e->curl_due = -1;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		err_set(err, "http: epoll_create1: %s", strerror(errno));
		free(e);
		return NULL;
	}
	/* libcurl reads these for http:// URLs (http_proxy lower case only) */
	e->plain_proxied = getenv("http_proxy") || getenv("all_proxy") || getenv("ALL_PROXY");
	e->multi = curl_multi_init();
	if (!e->multi) {
		close(e->epfd);
		free(e);
		err_set(err, "http: curl_multi_init failed");
		return NULL;
	}
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
	e->maxconn_fixed = opts && opts->max_connections > 0;
	e->maxconn = e->maxconn_fixed ? opts->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
	curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, e->maxconn);
	if (opts && opts->max_host_connections > 0)
		curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)opts->max_host_connections);
	curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	if (opts && opts->system_ca_file) e->system_ca_file = xstrdup(opts->system_ca_file);
	e->rng = ((uint64_t)(time_now() * 1e6) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)e) | 1;
	return e;
}

static void call_free(struct http_call *c)
{
	free(c->method);
	free(c->url);
	free(c->log_path);
	curl_slist_free_all(c->headers);
	/* the body may hold a secret (a password being set, a client secret) */
	if (c->body) OPENSSL_cleanse(c->body, c->body_len + 1);
	free(c->body);
	http_response_free(&c->resp);
	free(c);
}

static void lane_free(struct http_lane *l)
{
	free(l->label);
	free(l);
}

static void service_free(struct http_service *s)
{
	for (size_t i = 0; i < s->n_idle; i++) curl_easy_cleanup(s->idle[i]);
	free(s->idle);
	if (s->share) curl_share_cleanup(s->share);
	if (s->anchors) sk_X509_pop_free(s->anchors, X509_free);
	for (size_t i = 0; i < s->n_lanes; i++) lane_free(s->lanes[i]);
	free(s->lanes);
	free(s->name);
	free(s->base_url);
	free(s);
}

static void complete_call(struct http_call *c);
static void release_easy(struct http_call *c);

/* Completes a call that will never run (engine shutting down). */
static void cancel_call(struct http_call *c)
{
	c->resp.error = HTTP_ERR_CANCELLED;
	snprintf(c->resp.error_text, sizeof c->resp.error_text, "cancelled: engine shut down");
	complete_call(c);
}

int http_cancel_all(struct http_engine *e, struct err *err)
{
	if (e->in_loop) return err_set(err, "http_cancel_all: called from inside the loop");
	bool was_closing = e->closing;
	e->closing = true;   /* submits from the callbacks below are refused */
	while (e->finished.head) {   /* completed already: their owners get the answer */
		struct http_call *c = e->finished.head;
		list_remove(&e->finished, c);
		complete_call(c);
	}
	while (e->running.head) {
		struct http_call *c = e->running.head;
		list_remove(&e->running, c);
		release_easy(c);
		cancel_call(c);
	}
	while (e->n_waiting) cancel_call(waiting_pop(e));
	for (size_t i = 0; i < e->n_svcs; i++)
		for (size_t j = 0; j < e->svcs[i]->n_lanes; j++) {
			struct http_lane *l = e->svcs[i]->lanes[j];
			while (l->ready.head) {
				struct http_call *c = l->ready.head;
				lane_ready_remove(l, c);
				cancel_call(c);
			}
		}
	e->closing = was_closing;
	return 0;
}

void http_engine_free(struct http_engine *e)
{
	if (!e) return;
	/* Cancel everything still pending, so owners can free their ctx. */
	struct err ignored;
	(void)http_cancel_all(e, &ignored);
	e->closing = true;
	for (size_t i = 0; i < e->n_svcs; i++) service_free(e->svcs[i]);
	free(e->svcs);
	curl_multi_cleanup(e->multi);
	close(e->epfd);
	free(e->system_ca_file);
	free(e->waiting);
	free(e);
}

/* ---- services and lanes ------------------------------------------------- */

/* Reads every PEM certificate of path into a new stack. */
static STACK_OF(X509) *load_anchors(const char *path, struct err *err)
{
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	if (!vi->ssl_version || strncmp(vi->ssl_version, "OpenSSL", 7) != 0) {
		err_set(err, "ca_file needs libcurl built with OpenSSL (this one uses %s)",
		        vi->ssl_version ? vi->ssl_version : "no TLS");
		return NULL;
	}
	BIO *bio = BIO_new_file(path, "r");
	if (!bio) {
		err_set(err, "ca_file %s: cannot open", path);
		return NULL;
	}
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *x;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) sk_X509_push(certs, x);
	ERR_clear_error();   /* the loop ends on a "no start line" error */
	BIO_free(bio);
	if (sk_X509_num(certs) == 0) {
		sk_X509_free(certs);
		err_set(err, "ca_file %s: no PEM certificate in it", path);
		return NULL;
	}
	return certs;
}

static struct http_lane *lane_new(struct http_service *svc, const char *name, int max_in_flight)
{
	struct http_lane *l = xcalloc(1, sizeof *l);
	l->svc = svc;
	l->label = name ? xasprintf("%s/%s", svc->name, name) : xstrdup(svc->name);
	l->max_in_flight = max_in_flight > 0 ? max_in_flight : 0;
	svc->lanes = xrealloc(svc->lanes, (svc->n_lanes + 1) * sizeof *svc->lanes);
	svc->lanes[svc->n_lanes++] = l;
	return l;
}

struct http_service *http_service_add(struct http_engine *e, const struct http_service_opts *o,
                                      struct err *err)
{
	if (!e || !o || !o->name || !*o->name) {
		err_set(err, "http_service_add: a service needs a name");
		return NULL;
	}
	if (o->rate_per_min < 0 || o->burst < 0 || o->connect_timeout < 0 || o->total_timeout < 0) {
		err_set(err, "http service %s: negative rate, burst or timeout", o->name);
		return NULL;
	}
	STACK_OF(X509) *anchors = NULL;
	if (o->ca_file && *o->ca_file) {
		anchors = load_anchors(o->ca_file, err);
		if (!anchors) {
			err_prefix(err, "http service %s", o->name);
			return NULL;
		}
	}
	struct http_service *s = xcalloc(1, sizeof *s);
	s->e = e;
	s->name = xstrdup(o->name);
	if (o->base_url) {
		s->base_url = xstrdup(o->base_url);
		size_t n = strlen(s->base_url);
		while (n > 0 && s->base_url[n - 1] == '/') s->base_url[--n] = '\0';
	}
	s->rate_per_sec = o->rate_per_min / 60.0;
	s->burst = o->burst >= 1 ? o->burst : 1;
	s->tokens = s->burst;
	s->tokens_at = time_mono();
	s->max_in_flight = o->max_in_flight > 0 ? o->max_in_flight : HTTP_DEFAULT_IN_FLIGHT;
	s->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 10;
	s->total_timeout = o->total_timeout > 0 ? o->total_timeout : 120;
	s->max_body = o->max_body > 0 ? o->max_body : HTTP_DEFAULT_BODY_CAP;
	s->retry = o->retry;
	if (s->retry.max_attempts <= 0) s->retry.max_attempts = 5;
	if (s->retry.max_total_wait <= 0) s->retry.max_total_wait = 120;
	if (s->retry.backoff_base <= 0) s->retry.backoff_base = 0.5;
	if (s->retry.backoff_max <= 0) s->retry.backoff_max = 30;
	s->trip_attempts = o->trip_attempts > 0 ? o->trip_attempts : 0;
	s->trip_seconds = o->trip_seconds > 0 ? o->trip_seconds : 0;
	s->trip_two_lanes = o->trip_two_lanes;
	s->on_response = o->on_response;
	s->hook_ctx = o->hook_ctx;
	s->anchors = anchors;
	if (anchors) {
		s->share = curl_share_init();
		if (!s->share) {
			service_free(s);
			err_set(err, "http service %s: curl_share_init failed", o->name);
			return NULL;
		}
		curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
		curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	}
	lane_new(s, NULL, o->default_lane_max_in_flight);
	e->svcs = xrealloc(e->svcs, (e->n_svcs + 1) * sizeof *e->svcs);
	e->svcs[e->n_svcs++] = s;
	/* Over HTTP/1.1 every request in flight holds a connection: a cache
	 * smaller than the services' caps together closes connections that the
	 * next request would have reused (a new TCP connect each time). */
	long want = 0;
	for (size_t i = 0; i < e->n_svcs; i++) want += e->svcs[i]->max_in_flight;
	if (!e->maxconn_fixed && want > e->maxconn) {
		e->maxconn = want;
		curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, e->maxconn);
	}
	return s;
}

struct http_lane *http_lane_add(struct http_service *svc, const char *name, int max_in_flight)
{
	return lane_new(svc, name && *name ? name : "lane", max_in_flight);
}

struct http_lane *http_service_default_lane(struct http_service *svc) { return svc->lanes[0]; }
const char *http_service_name(const struct http_service *svc) { return svc->name; }

bool http_service_down(const struct http_service *svc, char *why, size_t cap)
{
	if (svc->down && why && cap) snprintf(why, cap, "%s", svc->down_text);
	return svc->down;
}

void http_lane_hold(struct http_lane *lane, double seconds)
{
	if (!lane || !(seconds > 0)) return;
	double until = time_mono() + seconds;
	if (until > lane->hold_until) lane->hold_until = until;
}

double http_lane_held_for(const struct http_lane *lane)
{
	double left = lane->hold_until - time_mono();
	return left > 0 ? left : 0;
}

void http_service_counters(const struct http_service *svc, struct http_counters *out)
{
	*out = svc->counters;
}

const char *http_throttled_text(const struct http_response *r, char *out, size_t cap)
{
	int n = snprintf(out, cap, "after %d attempt%s", r->attempts, r->attempts == 1 ? "" : "s");
	if (r->retry_after > 0 && n >= 0 && (size_t)n < cap)
		snprintf(out + n, cap - (size_t)n, "; the last answer asked to wait %.0f s (Retry-After)", r->retry_after);
	return out;
}

void http_counters_add(struct http_counters *to, const struct http_counters *c)
{
	to->submitted += c->submitted;
	to->completed += c->completed;
	to->attempts += c->attempts;
	to->retries += c->retries;
	to->throttled += c->throttled;
	to->failures += c->failures;
	to->transport_errors += c->transport_errors;
	to->wait_seconds += c->wait_seconds;
}

/* ---- submit ------------------------------------------------------------------ */

static bool headers_have(const char *const *headers, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; headers && headers[i]; i++)
		if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':') return true;
	return false;
}

/* http_submit, also handing back the queued call (owned by the engine). */
static int submit_call(struct http_service *svc, const struct http_request *req, struct http_call **out,
                       struct err *err)
{
	if (!svc || !req) return err_set(err, "http_submit: no service or request");
	struct http_engine *e = svc->e;
	if (e->closing) return err_set(err, "http %s: engine is shutting down", svc->name);
	const char *method = req->method ? req->method : "GET";
	if (!method_is_token(method)) return err_set(err, "http %s: invalid method", svc->name);
	if (!req->url || !*req->url) return err_set(err, "http %s: request without URL", svc->name);
	if (req->url[0] == '/' && !svc->base_url)
		return err_set(err, "http %s: relative URL but the service has no base_url", svc->name);
	if (req->lane && req->lane->svc != svc)
		return err_set(err, "http %s: lane %s belongs to another service", svc->name, req->lane->label);
	if (req->body_len && !req->body) return err_set(err, "http %s: body_len without body", svc->name);

	struct http_call *c = xcalloc(1, sizeof *c);
	c->svc = svc;
	c->lane = req->lane ? req->lane : svc->lanes[0];
	c->method = xstrdup(method);
	c->url = req->url[0] == '/' ? xasprintf("%s%s", svc->base_url, req->url) : xstrdup(req->url);
	c->log_path = url_log_path(c->url);
	for (size_t i = 0; req->headers && req->headers[i]; i++)
		c->headers = curl_slist_append(c->headers, req->headers[i]);
	c->has_body = req->body != NULL || strcmp(method, "POST") == 0;
	if (req->body) {
		c->body = xmalloc(req->body_len + 1);
		memcpy(c->body, req->body, req->body_len);
		c->body[req->body_len] = '\0';
		c->body_len = req->body_len;
	}
	if (c->has_body) {
		if (req->content_type) {
			char *h = xasprintf("Content-Type: %s", req->content_type);
			c->headers = curl_slist_append(c->headers, h);
			free(h);
		} else if (!headers_have(req->headers, "Content-Type")) {
			c->headers = curl_slist_append(c->headers, "Content-Type:"); /* no form default */
		}
	}
	c->headers = curl_slist_append(c->headers, "Expect:");   /* no 100-continue round trip */
	c->idempotent = req->idempotent == HTTP_IDEMPOTENT_YES ||
	                (req->idempotent == HTTP_IDEMPOTENT_AUTO && method_is_idempotent(method));
	c->timeout = req->timeout > 0 ? req->timeout : svc->total_timeout;
	c->on_done = req->on_done;
	c->ctx = req->ctx;
	c->t_submit = time_mono();
	c->resp.retry_after = -1;
	c->state = CALL_READY;
	lane_ready_push(c->lane, c, false);
	e->pending++;
	svc->counters.submitted++;
	*out = c;
	return 0;
}

int http_submit(struct http_service *svc, const struct http_request *req, struct err *err)
{
	struct http_call *c;
	return submit_call(svc, req, &c, err);
}

/* ---- attempts ---------------------------------------------------------------- */

static CURL *take_easy(struct http_service *s)
{
	if (s->n_idle > 0) {
		CURL *h = s->idle[--s->n_idle];
		curl_easy_reset(h);
		return h;
	}
	return curl_easy_init();
}

/* Takes the call's easy handle out of the multi and keeps it for reuse. */
static void release_easy(struct http_call *c)
{
	if (!c->easy) return;
	struct http_service *s = c->svc;
	curl_multi_remove_handle(s->e->multi, c->easy);
	if (s->n_idle == s->cap_idle) {
		s->cap_idle = s->cap_idle ? s->cap_idle * 2 : 8;
		s->idle = xrealloc(s->idle, s->cap_idle * sizeof *s->idle);
	}
	s->idle[s->n_idle++] = c->easy;
	c->easy = NULL;
	s->in_flight--;
	c->lane->in_flight--;
}

/* Hands curl c's URL. A URL with a query (a deltaLink, a nextLink: 600
 * characters and more) goes in two pieces: curl parses only the part up
 * to the path, and sends path and query as the request target unparsed.
 * libcurl 7.88 copies a URL's query into the request line one character at
 * a time through its printf, and parses and re-prints the whole URL before:
 * ~160,000 instructions for a deltaLink, about what the rest of the request
 * costs. The target is what curl would send: Graph's links come encoded, and
 * curl does not re-encode a URL. Not when the request could go to an HTTP
 * proxy without a tunnel (that wants the absolute URL as its target), nor
 * for a URL with a fragment or without a path. */
static void set_url(struct http_call *c, CURL *h)
{
	const char *q = strchr(c->url, '?');
	const char *authority = strstr(c->url, "://");
	bool tls = strncmp(c->url, "https:", 6) == 0;
	const char *path = authority ? strchr(authority + 3, '/') : NULL;
	if (!q || !path || path > q || strchr(q, '#') || (!tls && c->svc->e->plain_proxied)) {
		curl_easy_setopt(h, CURLOPT_URL, c->url);
		return;
	}
	char *origin_path = xstrndup(c->url, (size_t)(q - c->url));
	curl_easy_setopt(h, CURLOPT_URL, origin_path);   /* curl keeps a copy */
	curl_easy_setopt(h, CURLOPT_REQUEST_TARGET, path);
	free(origin_path);
}

static void setup_easy(struct http_call *c, CURL *h)
{
	struct http_service *s = c->svc;
	set_url(c, h);
	curl_easy_setopt(h, CURLOPT_PRIVATE, c);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "entrasync/" ENTRASYNC_VERSION);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms_from_s(s->connect_timeout));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms_from_s(c->timeout));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	/* Trust: always verified; nothing in the API can change these two. */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->e->system_ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, s->e->system_ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	if (s->anchors) {
		curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, s);
#if LIBCURL_VERSION_NUM >= 0x075700   /* the CA store cache (and this option) came in 7.87 */
		curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);  /* never add to the shared store */
#endif
		curl_easy_setopt(h, CURLOPT_SHARE, s->share);
	}
	if (strncmp(c->url, "https:", 6) == 0) curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
	/* libcurl re-sends a request whose reused connection turns out dead
	 * before any answer byte: for a POST that could apply it twice (a second
	 * contact, a second invoice). Non-idempotent requests get a connection of
	 * their own; a lost answer is then the caller's "unknown outcome". */
	if (!c->idempotent) curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	if (strcmp(c->method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(c->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(c->method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
		if (c->has_body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body ? c->body : "");
		}
	}
}

static void finish_attempt(struct http_call *c, CURLcode rc);

/* Starts the next attempt of a ready call (already taken off its queue).
 * When curl refuses the handle, the attempt ends at once as a transport
 * error (which may run the owner's callback). */
static void start_attempt(struct http_call *c, double now)
{
	struct http_service *s = c->svc;
	struct http_engine *e = s->e;
	c->resp.attempts++;
	s->counters.attempts++;
	if (c->resp.attempts > 1) s->counters.retries++;
	c->t_attempt = now;
	c->too_large = false;
	c->errbuf[0] = '\0';
	buf_reset(&c->resp.body);
	headers_clear(&c->resp);
	c->resp.status = 0;
	c->state = CALL_RUNNING;
	CURL *h = take_easy(s);
	if (!h) {
		snprintf(c->errbuf, sizeof c->errbuf, "curl_easy_init failed");
		finish_attempt(c, CURLE_FAILED_INIT);
		return;
	}
	c->easy = h;
	s->in_flight++;
	c->lane->in_flight++;
	setup_easy(c, h);
	CURLMcode mc = curl_multi_add_handle(e->multi, h);
	if (mc != CURLM_OK) {
		snprintf(c->errbuf, sizeof c->errbuf, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
		finish_attempt(c, CURLE_FAILED_INIT);
		return;
	}
	list_push_back(&e->running, c);
}

/* Hands the finished call to its owner and frees it. */
static void complete_call(struct http_call *c)
{
	struct http_service *s = c->svc;
	struct http_engine *e = s->e;
	c->state = CALL_DONE;
	e->pending--;
	s->counters.completed++;
	if (c->resp.error != HTTP_ERR_NONE || status_is_retryable(c->resp.status)) s->counters.failures++;
	struct http_response *r = &c->resp;
	r->elapsed = time_mono() - c->t_submit;
	r->method = c->method;
	r->url = c->url;
	c->method = c->url = NULL;
	r->service = s;
	r->lane = c->lane;
	r->ctx = c->ctx;
	if (r->error != HTTP_ERR_NONE) buf_free(&r->body);
	if (c->on_done) c->on_done(r, c->ctx);
	call_free(c);
}

/* Seconds to wait before the next attempt of c, or -1 to give up. *why
 * names the reason for the log note. */
static double retry_wait(struct http_call *c, const char **why)
{
	struct http_service *s = c->svc;
	if (c->resp.attempts >= s->retry.max_attempts) {
		*why = "giving up: attempts exhausted";
		return -1;
	}
	double wait;
	if (c->resp.retry_after >= 0) {
		wait = c->resp.retry_after;
		*why = "Retry-After";
	} else {
		wait = http_backoff_delay(&s->retry, c->resp.attempts, rng_uniform(s->e));
		*why = "backoff";
	}
	if (c->waited + wait > s->retry.max_total_wait) {
		*why = "giving up: retry wait budget exhausted";
		return -1;
	}
	return wait;
}

/* Counts c's attempt, just ended at now, toward its service's outage
 * (see trip_attempts in http.h): failed says it got no answer or a
 * 502/503/504; any other answer starts the count again (a refused TLS
 * certificate neither counts nor resets). Trips the
 * service down when the count, the time and (trip_two_lanes) the lanes
 * are reached. */
static void outage_count(struct http_call *c, bool failed, double now)
{
	struct http_service *s = c->svc;
	if (!failed) {
		if (c->resp.status) s->outage_attempts = 0;
		return;
	}
	if (s->outage_attempts++ == 0) {
		s->outage_since = c->t_attempt;
		s->outage_lane = c->lane;
		s->outage_lanes = false;
	} else if (c->lane != s->outage_lane) {
		s->outage_lanes = true;
	}
	if (s->down || !s->trip_attempts || s->outage_attempts < s->trip_attempts ||
	    now - s->outage_since < s->trip_seconds || (s->trip_two_lanes && !s->outage_lanes))
		return;
	s->down = true;
	s->e->any_down = true;
	char last[120];
	if (c->resp.status) snprintf(last, sizeof last, "%ld", c->resp.status);
	else snprintf(last, sizeof last, "%.100s", c->resp.error_text);
	snprintf(s->down_text, sizeof s->down_text, "%s is not answering: %d attempts in a row over %.0f s failed "
	         "(the last: %s)", s->name, s->outage_attempts, now - s->outage_since, last);
	log_warn("http", "%s; its requests not sent yet end now", s->down_text);
}

/* An attempt ended with curl code rc: retry it later or complete it. */
static void finish_attempt(struct http_call *c, CURLcode rc)
{
	struct http_service *s = c->svc;
	struct http_response *r = &c->resp;
	double now = time_mono();
	double took = now - c->t_attempt;
	long status = 0, conns = 0, ver = 0;
	if (c->easy) {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &conns);
		curl_easy_getinfo(c->easy, CURLINFO_HTTP_VERSION, &ver);
	}
	r->new_connections += conns;
	r->http_version = ver == CURL_HTTP_VERSION_1_0 ? 10 : ver == CURL_HTTP_VERSION_1_1 ? 11
	                : ver == CURL_HTTP_VERSION_2_0 ? 20 : ver == CURL_HTTP_VERSION_3 ? 30 : 0;
	release_easy(c);

	bool transport_ok = rc == CURLE_OK;
	r->error = HTTP_ERR_NONE;
	r->error_text[0] = '\0';
	bool retryable = false;
	if (c->too_large) {
		r->error = HTTP_ERR_TOO_LARGE;
		snprintf(r->error_text, sizeof r->error_text, "response body exceeds the limit of %zu bytes",
		         s->max_body);
	} else if (!transport_ok) {
		r->error = curlcode_is_tls_verify(rc) ? HTTP_ERR_TLS_VERIFY : HTTP_ERR_TRANSPORT;
		const char *msg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
		if (r->error == HTTP_ERR_TLS_VERIFY)
			snprintf(r->error_text, sizeof r->error_text, "TLS verification failed: %s", msg);
		else
			snprintf(r->error_text, sizeof r->error_text, "%s", msg);
		retryable = curlcode_is_retryable(rc);
		status = 0;
		s->counters.transport_errors++;
	} else {
		retryable = status_is_retryable(status);
	}
	r->status = status;
	outage_count(c, r->error == HTTP_ERR_TRANSPORT || status == 502 || status == 503 || status == 504, now);
	if (status == 429) s->counters.throttled++;
	const char *ra = status ? http_response_header(r, "Retry-After") : NULL;
	r->retry_after = ra ? http_parse_retry_after(ra, time_now()) : -1;
	if (status == 429 && r->retry_after > 0) {
		http_lane_hold(c->lane, r->retry_after);
		if (r->retry_after > s->retry.max_total_wait) s->e->long_holds = true;
	}

	if (status && s->on_response) {
		/* identity borrowed from the call for the hook's duration */
		r->elapsed = took;
		r->method = c->method;
		r->url = c->url;
		r->service = s;
		r->lane = c->lane;
		r->ctx = c->ctx;
		s->on_response(s, r, s->hook_ctx);
		r->method = r->url = NULL;
	}

	const char *why = NULL;
	double wait = -1;
	/* a 429 is a refusal: the request was not processed, so it is safe to
	 * send again whatever its method */
	if (retryable && (c->idempotent || status == 429)) wait = retry_wait(c, &why);
	else if (retryable) why = "not retried: not idempotent";
	if (wait >= 0 && shutdown_requested()) {   /* a Retry-After can be minutes: the stop comes first */
		wait = -1;
		why = "not retried: stopped by a signal";
	}
	char down_why[sizeof s->down_text + 16];
	if (s->down && (retryable || wait >= 0)) {
		wait = -1;
		snprintf(down_why, sizeof down_why, "not retried: %s", s->down_text);
		why = down_why;
	}
	struct buf note = {0};
	if (r->error != HTTP_ERR_NONE) buf_adds(&note, r->error_text);
	if (r->retry_after >= 0) buf_printf(&note, "%sRetry-After %.10g s", note.len ? "; " : "", r->retry_after);
	if (wait >= 0)
		buf_printf(&note, "%sretry in %.2f s (%s)", note.len ? "; " : "", wait, why);
	else if (why)
		buf_printf(&note, "%s%s", note.len ? "; " : "", why);
	log_http(c->lane->label, c->method, c->log_path, status, took, r->attempts, note.len ? note.data : NULL);
	buf_free(&note);

	if (wait >= 0) {
		c->waited += wait;
		s->counters.wait_seconds += wait;
		c->t_wake = now + wait;
		c->state = CALL_WAITING;
		waiting_push(s->e, c);
		return;
	}
	r->retryable = retryable;
	if (s->e->defer_completion) {
		list_push_back(&s->e->finished, c);
		return;
	}
	complete_call(c);
}

/* ---- the loop ------------------------------------------------------------------ */

static void refill(struct http_service *s, double now)
{
	if (s->rate_per_sec <= 0) return;
	s->tokens += (now - s->tokens_at) * s->rate_per_sec;
	if (s->tokens > s->burst) s->tokens = s->burst;
	s->tokens_at = now;
}

/* Next lane of s (round robin) that may start a call now, or NULL. */
static struct http_lane *next_startable_lane(struct http_service *s, double now)
{
	for (struct http_lane *l = s->rhead; l; l = l->rnext) {
		if (l->hold_until > now) continue;
		if (l->max_in_flight && l->in_flight >= l->max_in_flight) continue;
		if (l != s->rtail) {   /* round robin: its next call waits for the others' */
			rlist_unlink(l);
			rlist_append(l);
		}
		return l;
	}
	return NULL;
}

/* Wakes due waiting calls and starts every call that pacing, caps and holds
 * allow. */
static void schedule(struct http_engine *e)
{
	double now = time_mono();
	while (e->n_waiting && e->waiting[0]->t_wake <= now) {
		struct http_call *c = waiting_pop(e);
		c->state = CALL_READY;
		lane_ready_push(c->lane, c, true);
	}
	for (size_t i = 0; i < e->n_svcs; i++) {
		struct http_service *s = e->svcs[i];
		if (s->down) continue;   /* its calls end unsent (fail_down) */
		refill(s, now);
		while (s->in_flight < s->max_in_flight) {
			if (s->rate_per_sec > 0 && s->tokens < 1.0) break;
			struct http_lane *l = next_startable_lane(s, now);
			if (!l) break;
			struct http_call *c = l->ready.head;
			lane_ready_remove(l, c);
			if (s->rate_per_sec > 0) s->tokens -= 1.0;
			start_attempt(c, now);
		}
	}
}

/* Seconds until the nearest of our own timers, or -1 when none. */
static double next_timer(const struct http_engine *e)
{
	double now = time_mono(), best = -1;
#define CONSIDER(t) do { double d_ = (t) - now; if (d_ < 0) d_ = 0; if (best < 0 || d_ < best) best = d_; } while (0)
	if (e->n_waiting) CONSIDER(e->waiting[0]->t_wake);
	for (size_t i = 0; i < e->n_svcs; i++) {
		const struct http_service *s = e->svcs[i];
		if (s->in_flight >= s->max_in_flight) continue;
		bool ready = s->rhead != NULL;
		for (const struct http_lane *l = s->rhead; l; l = l->rnext)
			if (l->hold_until > now) CONSIDER(l->hold_until);
		if (ready && s->rate_per_sec > 0 && s->tokens < 1.0)
			CONSIDER(s->tokens_at + (1.0 - s->tokens) / s->rate_per_sec);
	}
#undef CONSIDER
	return best;
}

/* Lets curl act on its timeout when it is due. */
static int curl_timeout_due(struct http_engine *e, struct err *err)
{
	if (e->curl_due < 0 || e->curl_due > time_mono()) return 0;
	e->curl_due = -1;   /* curl sets the next one from inside the call */
	int still;
	CURLMcode mc = curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &still);
	if (mc != CURLM_OK) return err_set(err, "http: curl_multi_socket_action: %s", curl_multi_strerror(mc));
	return 0;
}

#define HTTP_EPOLL_BATCH 64

/* Takes every transfer curl reports done out of the multi: its slot is
 * given back, and the call is retried later (waiting) or parked on
 * e->finished for drain to hand to its owner. */
static void collect_done(struct http_engine *e)
{
	int left;
	CURLMsg *m;
	e->defer_completion = true;
	while ((m = curl_multi_info_read(e->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE) continue;
		char *priv = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		struct http_call *c = (struct http_call *)priv;
		CURLcode rc = m->data.result;
		if (!c) continue;
		list_remove(&e->running, c);
		finish_attempt(c, rc);
	}
	e->defer_completion = false;
}

/* Lets curl act on the sockets ready now, without waiting. 0, or -1 with
 * err when curl fails. */
static int sockets_act(struct http_engine *e, int wait_ms, struct err *err)
{
	struct epoll_event evs[HTTP_EPOLL_BATCH];
	int n = epoll_wait(e->epfd, evs, HTTP_EPOLL_BATCH, wait_ms);
	if (n < 0 && errno != EINTR) return err_set(err, "http: epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) | (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
		            (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
		int still;
		CURLMcode mc = curl_multi_socket_action(e->multi, evs[i].data.fd, flags, &still);
		if (mc != CURLM_OK) return err_set(err, "http: curl_multi_socket_action: %s", curl_multi_strerror(mc));
	}
	return curl_timeout_due(e, err);
}

/* Finishes every transfer curl reports done; returns how many owners it
 * called. The slots come first, the owners' callbacks (parsing, storing:
 * most of the CPU) after: every finished transfer gives its slot back,
 * the waiting calls start and curl sends them, then the callbacks run in
 * order, and between two of them the answers that arrived meanwhile are
 * read and their slots reused the same way. So the requests in flight
 * stay at the caps while the answers are handled, instead of waiting for
 * a whole burst of them to be. */
static int drain(struct http_engine *e)
{
	int n = 0;
	struct err ignored = {0};   /* a failure of curl shows again in the loop's next call */
	collect_done(e);
	while (e->finished.head) {
		schedule(e);   /* the slots just freed, and what the last callback submitted */
		(void)curl_timeout_due(e, &ignored);
		struct http_call *c = e->finished.head;
		list_remove(&e->finished, c);
		complete_call(c);   /* may run callbacks that submit */
		n++;
		if (!e->finished.head) break;   /* the loop goes on from here */
		(void)sockets_act(e, 0, &ignored);
		collect_done(e);
	}
	return n;
}

/* Ends call c, not sent (again), as cancelled with text: through the
 * finished list, as any completion. Logged at level (LOG_INFO, LOG_WARN). */
static void end_unsent(struct http_engine *e, struct http_call *c, int level, const char *text)
{
	c->resp.error = c->svc->down ? HTTP_ERR_DOWN : HTTP_ERR_CANCELLED;
	snprintf(c->resp.error_text, sizeof c->resp.error_text, "%s", text);
	if (level == LOG_WARN) log_warn("http", "%s %s: %s", c->method, c->log_path, text);
	else log_info("http", "%s %s: %s", c->method, c->log_path, text);
	list_push_back(&e->finished, c);
}

/* After a stop was asked for (SIGTERM, SIGINT: shutdown_requested), no
 * call waits out a Retry-After or a backoff, which can be minutes (a
 * service manager kills a stop that takes them): each call waiting to try
 * again, and each not yet sent in a lane held by a Retry-After, ends now,
 * cancelled. Calls in flight finish as they are; a new failure is not
 * retried (finish_attempt). */
static void stop_waiting(struct http_engine *e)
{
	while (e->n_waiting)
		end_unsent(e, waiting_pop(e), LOG_INFO, "cancelled: stopped by a signal while waiting to try again");
	double now = time_mono();
	for (size_t i = 0; i < e->n_svcs; i++)
		for (size_t j = 0; j < e->svcs[i]->n_lanes; j++) {
			struct http_lane *l = e->svcs[i]->lanes[j];
			while (l->hold_until > now && l->ready.head) {
				struct http_call *c = l->ready.head;
				lane_ready_remove(l, c);
				end_unsent(e, c, LOG_INFO, "cancelled: stopped by a signal while its service asked to wait "
				           "(Retry-After)");
			}
		}
}

/* A service that answers 429 with a Retry-After longer than a request may
 * wait (its retry budget, max_total_wait; a day has been seen) holds its
 * lane that long: the calls queued on such a lane are not sent and end now,
 * failed with the reason, instead of waiting the hold out (a run that hung
 * for a day, holding the run lock). Once no lane is held that long, off. */
static void fail_long_held(struct http_engine *e)
{
	double now = time_mono();
	bool still = false;
	for (size_t i = 0; i < e->n_svcs; i++) {
		struct http_service *s = e->svcs[i];
		for (size_t j = 0; j < s->n_lanes; j++) {
			struct http_lane *l = s->lanes[j];
			double left = l->hold_until - now;
			if (left <= s->retry.max_total_wait) continue;
			still = true;
			while (l->ready.head) {
				struct http_call *c = l->ready.head;
				lane_ready_remove(l, c);
				char text[200];
				snprintf(text, sizeof text, "not sent: %s asked to wait %.0f s more (429 Retry-After), longer "
				         "than the %.0f s a request may wait", s->name, left, s->retry.max_total_wait);
				end_unsent(e, c, LOG_WARN, text);
			}
		}
	}
	e->long_holds = still;
}

/* end_unsent of a call of a service found down. */
static void end_down(struct http_engine *e, struct http_call *c)
{
	char text[sizeof c->svc->down_text + 16];
	snprintf(text, sizeof text, "not sent: %s", c->svc->down_text);
	end_unsent(e, c, LOG_INFO, text);
}

/* Ends call c, in flight on a service found down and fit to be sent again
 * (idempotent), without waiting for its answer: from a service that gives
 * none it would come after a whole timeout more (the requests a pull
 * started as the first failures gave their slots back held it two minutes
 * past the stop), and whatever it says, the calls after it end unsent. It
 * ends as an attempt with no answer (a timeout) does, for its owner too. */
static void abandon_running(struct http_engine *e, struct http_call *c)
{
	list_remove(&e->running, c);
	release_easy(c);
	c->svc->counters.transport_errors++;
	c->resp.status = 0;
	c->resp.error = HTTP_ERR_TRANSPORT;
	c->resp.retryable = true;
	snprintf(c->resp.error_text, sizeof c->resp.error_text, "its answer not waited for: %s", c->svc->down_text);
	log_http(c->lane->label, c->method, c->log_path, 0, time_mono() - c->t_attempt, c->resp.attempts,
	         c->resp.error_text);
	list_push_back(&e->finished, c);
}

/* Ends, unsent, every call of a service found down (outage_count) that
 * is queued or waiting to try again; of the calls in flight, those that
 * may be sent again end without their answer (abandon_running), the
 * others (a POST) finish as they are. Runs each turn of the loop once a
 * service is down, for the calls submitted since. */
static void fail_down(struct http_engine *e)
{
	for (struct http_call *c = e->running.head, *next; c; c = next) {
		next = c->next;
		if (c->svc->down && c->idempotent) abandon_running(e, c);
	}
	size_t keep = 0, n = e->n_waiting;
	struct http_call **gone = NULL;
	size_t n_gone = 0;
	for (size_t i = 0; i < n; i++) {
		struct http_call *c = e->waiting[i];
		if (c->svc->down) {
			gone = xrealloc(gone, (n_gone + 1) * sizeof *gone);
			gone[n_gone++] = c;
		} else {
			e->waiting[keep++] = c;
		}
	}
	if (n_gone) {   /* the heap rebuilt from what stays */
		e->n_waiting = 0;
		for (size_t i = 0; i < keep; i++) waiting_push(e, e->waiting[i]);
		for (size_t i = 0; i < n_gone; i++) end_down(e, gone[i]);
	}
	free(gone);
	for (size_t i = 0; i < e->n_svcs; i++) {
		struct http_service *s = e->svcs[i];
		if (!s->down) continue;
		for (size_t j = 0; j < s->n_lanes; j++) {
			struct http_lane *l = s->lanes[j];
			while (l->ready.head) {
				struct http_call *c = l->ready.head;
				lane_ready_remove(l, c);
				end_down(e, c);
			}
		}
	}
}

/* One loop iteration (see http_step); the caller has set in_loop. */
static int loop_once(struct http_engine *e, int max_wait_ms, struct err *err)
{
	if (e->long_holds) fail_long_held(e);
	if (e->any_down) fail_down(e);
	if (shutdown_requested()) stop_waiting(e);
	schedule(e);           /* new handles: curl asks for a 0 ms timeout */
	if (curl_timeout_due(e, err) < 0) return -1;
	if (drain(e) > 0) return 0;
	schedule(e);
	double t = next_timer(e);
	if (e->curl_due >= 0) {
		double d = e->curl_due - time_mono();
		if (d < 0) d = 0;
		if (t < 0 || d < t) t = d;
	}
	long wait_ms = max_wait_ms < 0 ? 0 : max_wait_ms;
	if (t >= 0 && ms_from_s(t) < wait_ms) wait_ms = ms_from_s(t);
	if (e->pending == 0) wait_ms = 0;
	if (sockets_act(e, (int)wait_ms, err) < 0) return -1;
	drain(e);
	return 0;
}

int http_step(struct http_engine *e, int max_wait_ms, struct err *err)
{
	if (e->in_loop) return err_set(err, "http_step: called from inside the loop");
	e->in_loop = true;
	int rc = loop_once(e, max_wait_ms, err);
	e->in_loop = false;
	return rc;
}

int http_run(struct http_engine *e, struct err *err)
{
	if (e->in_loop) return err_set(err, "http_run: called from inside the loop");
	e->stop = false;
	e->in_loop = true;
	int rc = 0;
	while (rc == 0 && e->pending > 0 && !e->stop) rc = loop_once(e, 1000, err);
	e->in_loop = false;
	return rc;
}
void http_stop(struct http_engine *e) { e->stop = true; }
size_t http_pending(const struct http_engine *e) { return e->pending; }

struct sync_slot {
	bool done;
	struct http_response *out;
};

static void sync_done(struct http_response *resp, void *ctx)
{
	struct sync_slot *slot = ctx;
	http_response_move(slot->out, resp);
	slot->done = true;
}

int http_do(struct http_service *svc, const struct http_request *req, struct http_response *out,
            struct err *err)
{
	memset(out, 0, sizeof *out);
	out->retry_after = -1;
	if (!svc || !req) return err_set(err, "http_do: no service or request");
	struct http_engine *e = svc->e;
	if (e->in_loop) return err_set(err, "http_do: called from inside the loop");
	struct sync_slot slot = { false, out };
	struct http_request r = *req;
	r.on_done = sync_done;
	r.ctx = &slot;
	struct http_call *c;
	if (submit_call(svc, &r, &c, err) < 0) return -1;
	e->in_loop = true;
	int rc = 0;
	while (rc == 0 && !slot.done) rc = loop_once(e, 1000, err);
	e->in_loop = false;
	if (rc < 0) {
		/* The loop failed: the call stays queued, but must never report
		 * to this stack frame again. */
		if (!slot.done) c->on_done = NULL;
		return -1;
	}
	out->ctx = req->ctx;
	if (out->error == HTTP_ERR_NONE) return 0;
	err_set(err, "%s %s: %s", out->method, out->url, out->error_text);
	log_redact_err(err);
	return -1;
}
