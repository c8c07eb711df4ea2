/* http — the one HTTP engine of the runtime: a single-threaded libcurl multi
 * loop running many requests at once, with per-service pacing (token bucket),
 * per-lane in-flight caps and Retry-After holds, retries with backoff for
 * idempotent requests (and for any request refused with 429, which the
 * server did not process), verified TLS (an extra trust anchor adds to the system
 * store), capped response bodies, and one log line per attempt through
 * log_http (URLs redacted; request bodies and headers never logged).
 * It knows no service: Graph and Syncro specifics stay in their clients.
 *
 * Shape:
 *   struct http_engine   one curl multi handle, its connection cache, the loop.
 *   struct http_service  a remote API ("graph", "syncro"): pacing, global
 *                        in-flight cap, TLS anchor, timeouts, retry policy,
 *                        counters, optional on_response hook. Owned by the engine.
 *   struct http_lane     a sub-queue of a service (e.g. one per tenant): its own
 *                        in-flight cap and Retry-After hold, so one throttled
 *                        tenant waits without stalling the others. Every service
 *                        has a default lane. Owned by the service.
 *
 * Usage (asynchronous):
 *   struct http_engine *e = http_engine_new(NULL, &err);
 *   struct http_service *g = http_service_add(e, &(struct http_service_opts){
 *           .name = "graph", .base_url = "https://graph.microsoft.com/v1.0" }, &err);
 *   http_submit(g, &(struct http_request){ .url = "/users", .on_done = cb, .ctx = me }, &err);
 *   http_run(e, &err);          // returns when nothing is pending
 *   http_engine_free(e);
 * Completion callbacks run on the loop and may submit further requests (paging).
 *
 * Threading: everything here is single-threaded; call it from one thread.
 * Time: all delays (pacing, backoff, holds) are timers in the loop, never sleeps.
 * Not done here: redirects are not followed (a 3xx is handed back as is);
 * proxies come from libcurl's usual environment (https_proxy, no_proxy).
 * Each attempt is one log_http line: "service[/lane] METHOD /path?query ->
 * status in N ms (attempt k): note"; 2xx/3xx at debug, the rest at warn. */
#ifndef ENTRASYNC_HTTP_H
#define ENTRASYNC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/util.h"

struct http_engine;
struct http_service;
struct http_lane;

/* ---- Engine ---------------------------------------------------------- */

struct http_engine_opts {
	int max_connections;      /* connection cache size (CURLMOPT_MAXCONNECTS); 0 = at least 32, grown to the services' caps together */
	int max_host_connections; /* per host (CURLMOPT_MAX_HOST_CONNECTIONS); 0 = unlimited */
	/* Replaces the system CA bundle (curl's built-in default) with this PEM
	 * file for every service. For tests only (to prove that a service's
	 * ca_file adds to the system store); NULL in production. It does not turn
	 * verification off: nothing can. */
	const char *system_ca_file;
};

/* opts may be NULL (all defaults). Returns NULL and fills err on failure.
 * Initialises libcurl globally on first use. */
struct http_engine *http_engine_new(const struct http_engine_opts *opts, struct err *err);

/* Frees the engine, its services and lanes. Requests still pending are
 * completed first with error HTTP_ERR_CANCELLED (their on_done runs, so
 * callers can free their ctx); submits from those callbacks are refused.
 * NULL is a no-op. Must not be called from a callback. */
void http_engine_free(struct http_engine *e);

/* ---- Services and lanes ---------------------------------------------- */

struct http_retry_policy {
	int max_attempts;         /* attempts in all, including the first; 0 = 5; 1 = never retry */
	double max_total_wait;    /* cap on the sum of waits between attempts, s; 0 = 120 */
	double backoff_base;      /* backoff ceiling of the first retry, s; 0 = 0.5 */
	double backoff_max;       /* backoff ceiling never exceeds this, s; 0 = 30 */
};

struct http_response;

/* Called for every attempt that got an HTTP response (also those about to
 * be retried), before any retry decision is acted on; resp is only valid
 * during the call and has status, headers, retry_after, attempts (this
 * attempt's number), elapsed (this attempt's), method, url, service, lane
 * and ctx filled; the body is this attempt's. For logging service headers
 * such as x-ms-throttle-*. Must not submit, run the loop or free anything. */
typedef void (*http_response_hook)(struct http_service *svc, const struct http_response *resp,
                                   void *hook_ctx);

/* Zero means "default" for every field. Strings are copied. */
struct http_service_opts {
	const char *name;         /* "graph", "syncro": used in logs (required) */
	const char *base_url;     /* prefix for request URLs starting with '/'; may be NULL */
	double rate_per_min;      /* pacing: requests (attempts) per minute; 0 = unpaced */
	double burst;             /* token bucket size; 0 = 1 (evenly spaced). Every
	                           * attempt (retries too) takes a token. */
	int max_in_flight;        /* over all lanes of the service; 0 = 16 */
	int default_lane_max_in_flight; /* 0 = no lane cap (service cap applies) */
	const char *ca_file;      /* extra trust anchor (PEM, may hold several
	                           * certificates), added to the system store; NULL = none.
	                           * Such a service keeps its own connections and TLS
	                           * sessions, never shared with other services. */
	double connect_timeout;   /* per attempt, s; 0 = 10 */
	double total_timeout;     /* per attempt, s; 0 = 120 */
	size_t max_body;          /* response body cap, bytes; 0 = 64 MiB */
	struct http_retry_policy retry;
	/* Outage stop: once trip_attempts attempts in a row (over all lanes)
	 * ended with no answer (connection refused or reset, timeout) or with
	 * 502/503/504, the first of them started at least trip_seconds ago, the
	 * service is down for the rest of the engine's life: the attempt that
	 * tripped it is not retried, and every call queued, waiting to try again
	 * or submitted later ends unsent with HTTP_ERR_DOWN; a call in flight
	 * that may be sent again (idempotent) ends without its answer, as a
	 * timeout does (HTTP_ERR_TRANSPORT, "its answer not waited for: ..."),
	 * and one that may not finishes as it is. Any other answer
	 * (2xx-4xx, 500, which can be one request's own) starts the count again.
	 * For a service whose requests go one after another (Syncro's writes),
	 * where each of thousands would otherwise wait out its own timeouts,
	 * or that many tenants wait on at once (Graph, its token endpoint).
	 * trip_attempts 0 = never. With trip_two_lanes, those attempts must
	 * also come from two lanes at least: one lane's own failures (a
	 * tenant's 503s, even once it is the last lane with work) never make
	 * the service down, however long they last. */
	int trip_attempts;
	double trip_seconds;
	bool trip_two_lanes;
	http_response_hook on_response; /* optional */
	void *hook_ctx;
};

/* Adds a service to the engine (owned by it; lives until http_engine_free).
 * Reads and checks ca_file now, so a bad anchor fails here with a clear
 * message. Returns NULL and fills err on failure. */
struct http_service *http_service_add(struct http_engine *e, const struct http_service_opts *opts,
                                      struct err *err);

/* Adds a lane to a service (owned by the service). name appears in logs as
 * "service/name" (use a tenant id or domain, not a secret). max_in_flight
 * 0 = no lane cap. Never fails (aborts on OOM). */
struct http_lane *http_lane_add(struct http_service *svc, const char *name, int max_in_flight);
struct http_lane *http_service_default_lane(struct http_service *svc);
const char *http_service_name(const struct http_service *svc);
/* Was svc found down (trip_attempts)? Then why (e.g. "syncro is not
 * answering: 5 attempts in a row over 64 s failed, the last: 503") into
 * why[cap] when why is not NULL. */
bool http_service_down(const struct http_service *svc, char *why, size_t cap);

/* Holds a lane: no new attempt starts on it for `seconds` from now (extends,
 * never shortens, an existing hold). The engine does this itself on a 429
 * with Retry-After; a client uses it for throttling it sees elsewhere (e.g.
 * per-part 429s in a Graph $batch). */
void http_lane_hold(struct http_lane *lane, double seconds);
/* Seconds left on the lane's hold, 0 when not held. */
double http_lane_held_for(const struct http_lane *lane);

/* Per-service counters since http_service_add. */
struct http_counters {
	uint64_t submitted;       /* requests submitted */
	uint64_t completed;       /* requests completed (on_done called) */
	uint64_t attempts;        /* attempts started (= requests + retries) */
	uint64_t retries;         /* attempts that were retries */
	uint64_t throttled;       /* 429 responses seen (all attempts) */
	uint64_t failures;        /* completed with an error, or a final 429/5xx */
	uint64_t transport_errors;/* attempts that ended without an HTTP status */
	double wait_seconds;      /* total retry wait scheduled (Retry-After + backoff) */
};
void http_service_counters(const struct http_service *svc, struct http_counters *out);
/* "after 3 attempts", "after 1 attempt; the last answer asked to wait
 * 86400 s (Retry-After)": how a request answered 429 ended, for the
 * message of its owner. Into out[cap]; returns out. */
const char *http_throttled_text(const struct http_response *r, char *out, size_t cap);
/* Adds c to *to, field by field (counters of another process's service). */
void http_counters_add(struct http_counters *to, const struct http_counters *c);

/* ---- Requests ---------------------------------------------------------- */

enum http_idempotency {
	HTTP_IDEMPOTENT_AUTO = 0, /* by method: GET HEAD PUT DELETE OPTIONS are; POST PATCH are not */
	HTTP_IDEMPOTENT_YES,      /* retry even though the method is not idempotent */
	HTTP_IDEMPOTENT_NO,       /* never retry (but after a 429: it was not processed) */
};

/* Why a request completed without a usable HTTP response. */
enum http_error {
	HTTP_ERR_NONE = 0,        /* got a status (any: 2xx..5xx); check resp->status */
	HTTP_ERR_TRANSPORT,       /* connect/TLS/timeout/reset; resp->error says which */
	HTTP_ERR_TLS_VERIFY,      /* the peer's certificate did not verify */
	HTTP_ERR_TOO_LARGE,       /* response body exceeded max_body */
	HTTP_ERR_CANCELLED,       /* engine freed before completion */
	HTTP_ERR_INVALID,         /* bad request (URL, method), never sent */
	HTTP_ERR_DOWN,            /* not sent: the service was found down (trip_attempts) */
};

typedef void (*http_done_fn)(struct http_response *resp, void *ctx);

/* A request as the caller describes it. Everything is copied by
 * http_submit, so the caller's strings and body may be freed right after. */
struct http_request {
	const char *method;       /* "GET" when NULL; any token (PATCH, DELETE...) */
	const char *url;          /* absolute, or "/path?query" appended to the service base_url */
	const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL.
	                           * May hold Authorization: never logged. */
	const void *body;         /* request body or NULL */
	size_t body_len;
	const char *content_type; /* sent as Content-Type when body is set; NULL = none */
	enum http_idempotency idempotent;
	struct http_lane *lane;   /* NULL = the service's default lane; must belong to the service */
	double timeout;           /* total timeout per attempt, s; 0 = the service's */
	http_done_fn on_done;     /* called once on completion (may be NULL) */
	void *ctx;                /* handed to on_done */
};

struct http_header {
	char *name;
	char *value;
};

/* The outcome of a request. In on_done it is owned by the engine and freed
 * when the callback returns, unless the callback moves it out with
 * http_response_move (or steals resp->body with buf_steal). */
struct http_response {
	long status;              /* HTTP status of the last attempt; 0 = none */
	enum http_error error;    /* HTTP_ERR_NONE when a status was received */
	char error_text[384];     /* curl's (or our) message when error != NONE, else "" */
	bool retryable;           /* the final outcome (429, 500/502/503/504, transport
	                           * error) could succeed if tried again: set when retries
	                           * ran out, or the request was not idempotent */
	double retry_after;       /* last Retry-After the server gave, s; -1 = none */
	struct buf body;          /* decoded (gzip) body; empty on error */
	struct http_header *headers; /* of the last response; use http_response_header */
	size_t n_headers;
	double elapsed;           /* s from submit to completion, waits included */
	int attempts;             /* attempts made (1 = no retry) */
	long new_connections;     /* connections opened, over all attempts */
	long http_version;        /* 10, 11, 20, 30 of the last attempt; 0 = none */
	/* Request identity, for the caller's messages (URL unredacted: redact
	 * before showing). Owned by the response. */
	char *method;
	char *url;
	struct http_service *service;
	struct http_lane *lane;
	void *ctx;                /* the request's ctx */
};

/* Value of the last header `name` (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *resp, const char *name);
/* Moves src into dst (dst must be zeroed or freed); src becomes empty. */
void http_response_move(struct http_response *dst, struct http_response *src);
/* Frees what the response owns and zeroes it. */
void http_response_free(struct http_response *resp);

/* Queues a request on svc (lane req->lane or the default lane). It starts
 * when pacing, caps and holds allow, inside http_run/http_step. Fails only
 * for invalid input or while the engine is being freed. */
int http_submit(struct http_service *svc, const struct http_request *req, struct err *err);

/* Runs the loop until no request is pending (queued, waiting, in flight) or
 * http_stop is called. Not reentrant: refused from a callback. */
int http_run(struct http_engine *e, struct err *err);
/* One loop iteration: waits at most max_wait_ms for activity or a timer,
 * then processes completions. For callers that interleave their own work. */
int http_step(struct http_engine *e, int max_wait_ms, struct err *err);
/* Makes http_run return after the current iteration (requests stay queued). */
void http_stop(struct http_engine *e);
/* Cancels every pending request (queued, waiting, in flight): each one's
 * on_done runs now with HTTP_ERR_CANCELLED, and a submit from those
 * callbacks is refused. For an owner about to free the ctx of requests it
 * can no longer wait for (a loop that failed). The engine stays usable.
 * Refused from a callback. */
int http_cancel_all(struct http_engine *e, struct err *err);
/* Requests pending in the engine (all services). */
size_t http_pending(const struct http_engine *e);

/* Synchronous convenience: submits req (its on_done/ctx are ignored), runs
 * the loop until it completes (other pending requests progress too) and
 * moves the outcome into *out (caller frees with http_response_free; out is
 * filled on failure too). Returns 0 when an HTTP status was received (any
 * status: check out->status), -1 with err set (redacted) otherwise. Not
 * callable from a callback. */
int http_do(struct http_service *svc, const struct http_request *req, struct http_response *out,
            struct err *err);

/* Backoff ceiling-with-full-jitter for retry number `retry` (1 = first
 * retry): uniform in [0, min(backoff_max, backoff_base * 2^(retry-1))], u in
 * [0,1) the random draw. Exposed for tests. */
double http_backoff_delay(const struct http_retry_policy *p, int retry, double u);
/* Parses a Retry-After value: integer or fractional seconds, or an HTTP
 * date (relative to now_wall, seconds since the epoch). Returns seconds to
 * wait (>= 0), or -1 when unparseable. Exposed for tests. */
double http_parse_retry_after(const char *value, double now_wall);

#endif
