/* replay_graph.c — a small, fast HTTP/1.1 server that replays an exchange
 * recorded from the Python fake Graph (tests/fakes/fake_graph.py, POST
 * /_fake/record) byte for byte, after the same added latency, so that a
 * benchmark of `entrasync pull` measures entrasync and the latency, not the
 * fake's CPU. Standalone: libc and OpenSSL's libcrypto (SHA-256) only, none of
 * the src/ files.
 *
 *   replay-graph [--host H] [--port N] [--port-file F] [--latency-ms MS] RECORD_FILE
 *
 * RECORD_FILE: one JSON object per line, as fake_graph.py writes it: method,
 * target (path + query as received), authorization (header value or ""),
 * body_sha256 (hex), status, reason, headers ([name, value] pairs as sent),
 * body (base64 of the bytes sent, after gzip), drop (null, "close", "reset").
 * Strings are the latin-1 text of the bytes on the wire: a \u00XX escape is
 * the byte XX. Other keys are ignored.
 *
 * A request's key is method + target + authorization + sha256(body). Each key
 * holds its recorded responses in order: the first request with that key gets
 * the first, a retry the next; past the last, the last again. A request with
 * no recorded key gets a 500 with a short JSON body and counts as a miss
 * (the first ones are reported on stderr). GET /_replay/stats answers
 * {"requests":N,"misses":M,"unserved":K,"cpu_seconds":S,"phase_seconds":P}
 * (K: recorded responses never sent; S: the server's own CPU, user+sys; P:
 * from the first request's arrival to the last answer's sending, over the
 * requests since the previous stats call: the client's network phase) and
 * is not counted. Every answer is sent latency ms after its request has
 * fully arrived (one timerfd; the latency being the same for every request,
 * the queue of waiting answers is in due order); pipelined requests on a
 * connection are answered in order. A recorded dropped response is sent as it
 * was (head and the half of the body written) and the connection is then
 * closed (shut down, or reset for "reset"): what the client saw, but not
 * necessarily with the same timing of the close.
 *
 * Single-threaded: epoll over non-blocking sockets (HTTP/1.1 keep-alive, any
 * number of connections), request bodies by Content-Length or chunked,
 * "Expect: 100-continue" answered (at once, ahead of any answer still waiting
 * on that connection: a client that waits for it does not pipeline).
 * SIGTERM/SIGINT: prints
 * "replay-graph: N requests, M misses" on stderr and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <openssl/evp.h>

#define REPLAY_MAX_HEAD   (64 * 1024)          /* request line + headers */
#define REPLAY_MAX_BODY   (64 * 1024 * 1024)
#define REPLAY_MISS_SHOWN 20                   /* misses reported on stderr */

enum replay_drop { DROP_NONE, DROP_CLOSE, DROP_RESET };

/* A growable byte buffer; data is malloc'd, freed by its owner. */
struct sbuf {
	char *data;
	size_t len, cap;
};

/* One recorded response, rendered: status line, headers, blank line, body. */
struct reply {
	char *bytes;
	size_t len;
	enum replay_drop drop;
	bool served;
};

/* One request key and its recorded responses (served in order). */
struct entry {
	char *key;                /* method \n target \n authorization \n sha256 hex */
	size_t key_len;
	uint64_t hash;
	struct reply *replies;
	size_t n, cap, next;
	struct entry *chain;
};

/* A response queued on a connection, being written. */
struct out {
	struct out *next;
	const char *data;         /* into a reply, or owned */
	size_t len, off;
	char *owned;              /* freed with the item (NULL: data is a reply's) */
	enum replay_drop drop;    /* close or reset the connection once written */
	bool close_after;         /* the request said Connection: close */
};

struct conn {
	struct conn *next, *prev; /* all connections */
	int fd;
	struct sbuf in;           /* bytes received, not yet a complete request */
	bool continue_sent;       /* 100 Continue sent for the request being read */
	struct out *out_head, *out_tail;
	bool want_out;            /* EPOLLOUT registered */
	bool read_eof;            /* the peer shut its side: no more requests */
	bool closed;              /* fd closed; freed once no pending answer names it */
	unsigned pending;         /* answers waiting for their time */
};

/* An answer waiting for its time (a FIFO in due order). */
struct pending {
	struct pending *next;
	struct conn *c;
	struct out *o;
	uint64_t due_ns;
};

struct server {
	int ep, lfd, tfd, sfd;
	uint64_t latency_ns;
	struct entry **slots;
	size_t nslots, nentries, nreplies;
	struct conn *conns;
	struct pending *pend_head, *pend_tail;
	uint64_t requests, misses;
	uint64_t first_request_ns, last_sent_ns;  /* since the last stats call; 0 = none */
	bool stop;
};

/* epoll tags for the non-connection descriptors */
static char tag_listen, tag_timer, tag_signal;

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

static void die_oom(void)
{
	fputs("replay-graph: out of memory\n", stderr);
	exit(2);
}

static void *xrealloc_or_die(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) die_oom();
	return q;
}

static void sbuf_add(struct sbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1) cap *= 2;
		b->data = xrealloc_or_die(b->data, cap);
		b->cap = cap;
	}
	if (n) memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0) return;
	if ((size_t)n < sizeof tmp) {
		sbuf_add(b, tmp, (size_t)n);
		return;
	}
	char *big = xrealloc_or_die(NULL, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sbuf_add(b, big, (size_t)n);
	free(big);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603u;
	for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211u;
	return h;
}

/* sha256 hex of p[0..n) into hex[65]. */
static int sha256_hex(const void *p, size_t n, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) return -1;
	for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* The key of a request: method \n target \n authorization \n sha256 hex. */
static void make_key(struct sbuf *k, const char *method, size_t mlen, const char *target, size_t tlen,
                     const char *auth, size_t alen, const char *sha)
{
	k->len = 0;
	sbuf_add(k, method, mlen);
	sbuf_add(k, "\n", 1);
	sbuf_add(k, target, tlen);
	sbuf_add(k, "\n", 1);
	sbuf_add(k, auth, alen);
	sbuf_add(k, "\n", 1);
	sbuf_add(k, sha, strlen(sha));
}

/* ---------------------------------------------------------------------------------------- */
/* the table of recorded exchanges */

static struct entry *table_find(struct server *s, const char *key, size_t len, uint64_t h)
{
	for (struct entry *e = s->slots[h % s->nslots]; e; e = e->chain)
		if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) return e;
	return NULL;
}

/* Appends reply r (ownership of r->bytes passes to the table) to key's list. */
static void table_add(struct server *s, const char *key, size_t len, struct reply r)
{
	uint64_t h = fnv1a(key, len);
	struct entry *e = table_find(s, key, len, h);
	if (!e) {
		e = xrealloc_or_die(NULL, sizeof *e);
		memset(e, 0, sizeof *e);
		e->key = xrealloc_or_die(NULL, len + 1);
		memcpy(e->key, key, len);
		e->key[len] = '\0';
		e->key_len = len;
		e->hash = h;
		e->chain = s->slots[h % s->nslots];
		s->slots[h % s->nslots] = e;
		s->nentries++;
	}
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 2;
		e->replies = xrealloc_or_die(e->replies, e->cap * sizeof *e->replies);
	}
	e->replies[e->n++] = r;
	s->nreplies++;
}

static void table_free(struct server *s)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct entry *e = s->slots[i];
		while (e) {
			struct entry *next = e->chain;
			for (size_t k = 0; k < e->n; k++) free(e->replies[k].bytes);
			free(e->replies);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(s->slots);
	s->slots = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* the record file: a minimal JSON reader for the lines fake_graph.py writes */

struct jcur {
	const char *p, *end;
};

static void j_ws(struct jcur *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n')) j->p++;
}

static bool j_eat(struct jcur *j, char c)
{
	j_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Reads a JSON string into out (replacing its contents): escapes decoded, a
 * \uXXXX above 0xFF refused (the record's strings are latin-1 bytes). */
static int j_string(struct jcur *j, struct sbuf *out)
{
	out->len = 0;
	sbuf_add(out, "", 0);
	if (!j_eat(j, '"')) return -1;
	while (j->p < j->end && *j->p != '"') {
		const char *run = j->p;
		while (j->p < j->end && *j->p != '"' && *j->p != '\\') j->p++;
		sbuf_add(out, run, (size_t)(j->p - run));
		if (j->p >= j->end || *j->p == '"') break;
		if (j->end - j->p < 2) return -1;
		char c = j->p[1], b;
		j->p += 2;
		switch (c) {
		case '"': case '\\': case '/': b = c; break;
		case 'b': b = '\b'; break;
		case 'f': b = '\f'; break;
		case 'n': b = '\n'; break;
		case 'r': b = '\r'; break;
		case 't': b = '\t'; break;
		case 'u': {
			if (j->end - j->p < 4) return -1;
			int v = 0;
			for (int i = 0; i < 4; i++) {
				int d = hexval(j->p[i]);
				if (d < 0) return -1;
				v = v * 16 + d;
			}
			if (v > 0xFF) return -1;
			j->p += 4;
			b = (char)v;
			break;
		}
		default: return -1;
		}
		sbuf_add(out, &b, 1);
	}
	return j_eat(j, '"') ? 0 : -1;
}

/* Skips any JSON value (depth-limited). */
static int j_skip(struct jcur *j, int depth)
{
	struct sbuf tmp = { 0 };
	int rc = -1;
	j_ws(j);
	if (depth > 32 || j->p >= j->end) goto out;
	if (*j->p == '"') {
		rc = j_string(j, &tmp);
	} else if (*j->p == '{' || *j->p == '[') {
		char close = *j->p == '{' ? '}' : ']';
		j->p++;
		if (j_eat(j, close)) {
			rc = 0;
			goto out;
		}
		do {
			if (close == '}' && (j_string(j, &tmp) != 0 || !j_eat(j, ':'))) goto out;
			if (j_skip(j, depth + 1) != 0) goto out;
		} while (j_eat(j, ','));
		rc = j_eat(j, close) ? 0 : -1;
	} else {
		while (j->p < j->end && strchr("-+.0123456789eEtruefalsn", *j->p)) j->p++;
		rc = 0;
	}
out:
	free(tmp.data);
	return rc;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Appends the base64 text in[0..n) decoded to out; -1 on a bad character. */
static int b64_decode(const char *in, size_t n, struct sbuf *out)
{
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=') break;
		int v = b64val(in[i]);
		if (v < 0) return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			char byte = (char)((acc >> bits) & 0xFF);
			sbuf_add(out, &byte, 1);
		}
	}
	return 0;
}

/* One record line parsed into its key and rendered reply. */
struct record {
	struct sbuf method, target, auth, sha, reason, body64, drop, head;
	long status;
};

static void record_free(struct record *r)
{
	free(r->method.data);
	free(r->target.data);
	free(r->auth.data);
	free(r->sha.data);
	free(r->reason.data);
	free(r->body64.data);
	free(r->drop.data);
	free(r->head.data);
}

/* Parses the record line [p, end) into r (fields replaced); r->head gets the
 * rendered header lines ("Name: value\r\n" each). 0, or -1 when malformed. */
static int record_parse(const char *p, const char *end, struct record *r)
{
	struct jcur j = { p, end };
	struct sbuf key = { 0 }, name = { 0 }, value = { 0 };
	int rc = -1;
	r->status = -1;
	r->method.len = r->target.len = r->auth.len = r->sha.len = r->reason.len = 0;
	r->body64.len = r->drop.len = r->head.len = 0;
	if (!j_eat(&j, '{')) goto out;
	if (j_eat(&j, '}')) goto out;
	do {
		if (j_string(&j, &key) != 0 || !j_eat(&j, ':')) goto out;
		struct sbuf *dst = !strcmp(key.data, "method") ? &r->method
		                 : !strcmp(key.data, "target") ? &r->target
		                 : !strcmp(key.data, "authorization") ? &r->auth
		                 : !strcmp(key.data, "body_sha256") ? &r->sha
		                 : !strcmp(key.data, "reason") ? &r->reason
		                 : !strcmp(key.data, "body") ? &r->body64 : NULL;
		j_ws(&j);
		if (dst) {
			if (j_string(&j, dst) != 0) goto out;
		} else if (!strcmp(key.data, "drop")) {
			if (j.p < j.end && *j.p == '"') {
				if (j_string(&j, &r->drop) != 0) goto out;
			} else if (j_skip(&j, 0) != 0) {
				goto out;
			}
		} else if (!strcmp(key.data, "status")) {
			char *stop;
			r->status = strtol(j.p, &stop, 10);
			if (stop == j.p || stop > j.end) goto out;
			j.p = stop;
		} else if (!strcmp(key.data, "headers")) {
			if (!j_eat(&j, '[')) goto out;
			if (!j_eat(&j, ']')) {
				do {
					if (!j_eat(&j, '[') || j_string(&j, &name) != 0 || !j_eat(&j, ',') ||
					    j_string(&j, &value) != 0 || !j_eat(&j, ']'))
						goto out;
					sbuf_add(&r->head, name.data, name.len);
					sbuf_add(&r->head, ": ", 2);
					sbuf_add(&r->head, value.data, value.len);
					sbuf_add(&r->head, "\r\n", 2);
				} while (j_eat(&j, ','));
				if (!j_eat(&j, ']')) goto out;
			}
		} else if (j_skip(&j, 0) != 0) {
			goto out;
		}
	} while (j_eat(&j, ','));
	if (!j_eat(&j, '}')) goto out;
	if (r->status < 100 || r->status > 999 || !r->method.len || !r->target.len || r->sha.len != 64) goto out;
	rc = 0;
out:
	free(key.data);
	free(name.data);
	free(value.data);
	return rc;
}

/* Loads the record file into s's table. 0, or -1 with a message on stderr. */
static int records_load(struct server *s, const char *path)
{
	FILE *f = fopen(path, "r");
	struct record r = { 0 };
	struct sbuf key = { 0 }, resp = { 0 };
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	int rc = -1;
	if (!f) {
		fprintf(stderr, "replay-graph: %s: %s\n", path, strerror(errno));
		goto out;
	}
	ssize_t n;
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		const char *end = line + n;
		while (end > line && (end[-1] == '\n' || end[-1] == '\r')) end--;
		if (end == line) continue;
		if (record_parse(line, end, &r) != 0) {
			fprintf(stderr, "replay-graph: %s:%ld: not a record line\n", path, lineno);
			goto out;
		}
		resp.len = 0;
		sbuf_addf(&resp, "HTTP/1.1 %ld %s\r\n", r.status, r.reason.len ? r.reason.data : "");
		sbuf_add(&resp, r.head.data, r.head.len);
		sbuf_add(&resp, "\r\n", 2);
		if (b64_decode(r.body64.data, r.body64.len, &resp) != 0) {
			fprintf(stderr, "replay-graph: %s:%ld: body is not base64\n", path, lineno);
			goto out;
		}
		struct reply rep = { .len = resp.len };
		rep.drop = !r.drop.len ? DROP_NONE : !strcmp(r.drop.data, "reset") ? DROP_RESET : DROP_CLOSE;
		rep.bytes = resp.data;    /* the table owns it now */
		resp = (struct sbuf){ 0 };
		make_key(&key, r.method.data, r.method.len, r.target.data, r.target.len, r.auth.data, r.auth.len,
		         r.sha.data);
		table_add(s, key.data, key.len, rep);
	}
	if (ferror(f)) {
		fprintf(stderr, "replay-graph: %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (f) fclose(f);
	free(line);
	free(key.data);
	free(resp.data);
	record_free(&r);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* connections */

static void conn_events(struct server *s, struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	ev.events = (c->read_eof ? 0u : (uint32_t)EPOLLIN) | (c->want_out ? (uint32_t)EPOLLOUT : 0u);
	epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void out_free(struct out *o)
{
	free(o->owned);
	free(o);
}

/* Closes c's socket (reset: RST instead of FIN) and drops what it had queued;
 * c itself is freed by conns_sweep once no pending answer names it. */
static void conn_close(struct server *s, struct conn *c, bool reset)
{
	if (c->closed) return;
	if (reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->closed = true;
	while (c->out_head) {
		struct out *o = c->out_head;
		c->out_head = o->next;
		out_free(o);
	}
	c->out_tail = NULL;
	free(c->in.data);
	c->in = (struct sbuf){ 0 };
}

/* Frees the closed connections no pending answer names (called between
 * batches of events, so that no event in hand points to a freed one). */
static void conns_sweep(struct server *s)
{
	struct conn *c = s->conns;
	while (c) {
		struct conn *next = c->next;
		if (c->closed && !c->pending) {
			if (c->prev) c->prev->next = c->next;
			else s->conns = c->next;
			if (c->next) c->next->prev = c->prev;
			free(c);
		}
		c = next;
	}
}

/* Writes what c has queued, as far as the socket takes it; closes c after a
 * dropped or a Connection: close answer, or when the peer has gone and
 * nothing is left to answer. */
static void conn_flush(struct server *s, struct conn *c)
{
	while (!c->closed && c->out_head) {
		struct out *o = c->out_head;
		ssize_t n = send(c->fd, o->data + o->off, o->len - o->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->want_out) {
					c->want_out = true;
					conn_events(s, c);
				}
				return;
			}
			conn_close(s, c, false);
			return;
		}
		o->off += (size_t)n;
		if (o->off < o->len) continue;
		c->out_head = o->next;
		if (!c->out_head) c->out_tail = NULL;
		enum replay_drop drop = o->drop;
		bool close_after = o->close_after;
		out_free(o);
		if (drop != DROP_NONE) {
			if (drop == DROP_CLOSE) shutdown(c->fd, SHUT_RDWR);
			conn_close(s, c, drop == DROP_RESET);
			return;
		}
		if (close_after) {
			conn_close(s, c, false);
			return;
		}
	}
	if (c->closed) return;
	if (c->want_out) {
		c->want_out = false;
		conn_events(s, c);
	}
	if (c->read_eof && !c->pending) conn_close(s, c, false);
}

static void conn_queue(struct server *s, struct conn *c, struct out *o)
{
	o->next = NULL;
	if (c->out_tail) c->out_tail->next = o;
	else c->out_head = o;
	c->out_tail = o;
	conn_flush(s, c);
}

static struct out *out_owned(char *data, size_t len)
{
	struct out *o = xrealloc_or_die(NULL, sizeof *o);
	memset(o, 0, sizeof *o);
	o->owned = data;
	o->data = data;
	o->len = len;
	return o;
}

/* Queues answer o for c, to be sent latency ns from now. */
static void schedule(struct server *s, struct conn *c, struct out *o)
{
	struct pending *p = xrealloc_or_die(NULL, sizeof *p);
	p->next = NULL;
	p->c = c;
	p->o = o;
	p->due_ns = now_ns() + s->latency_ns;
	c->pending++;
	bool was_empty = !s->pend_head;
	if (s->pend_tail) s->pend_tail->next = p;
	else s->pend_head = p;
	s->pend_tail = p;
	if (was_empty) {
		struct itimerspec it = { .it_value = { .tv_sec = (time_t)(p->due_ns / 1000000000u),
		                                       .tv_nsec = (long)(p->due_ns % 1000000000u) } };
		if (!it.it_value.tv_sec && !it.it_value.tv_nsec) it.it_value.tv_nsec = 1;
		timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &it, NULL);
	}
}

/* Sends the answers whose time has come, then re-arms the timer. */
static void pending_fire(struct server *s)
{
	uint64_t buf;
	while (read(s->tfd, &buf, sizeof buf) > 0) { /* drain */ }
	uint64_t now = now_ns();
	while (s->pend_head && s->pend_head->due_ns <= now) {
		struct pending *p = s->pend_head;
		s->pend_head = p->next;
		if (!s->pend_head) s->pend_tail = NULL;
		struct conn *c = p->c;
		c->pending--;
		if (c->closed) {
			out_free(p->o);
		} else {
			conn_queue(s, c, p->o);
			s->last_sent_ns = now;
		}
		free(p);
	}
	if (s->pend_head) {
		struct itimerspec it = { .it_value = { .tv_sec = (time_t)(s->pend_head->due_ns / 1000000000u),
		                                       .tv_nsec = (long)(s->pend_head->due_ns % 1000000000u) } };
		timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &it, NULL);
	}
}

/* An answer the replay makes itself (stats, misses, errors), owned. */
static struct out *out_json(int status, const char *reason, const char *json, bool close_after)
{
	struct sbuf b = { 0 };
	sbuf_addf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s", status,
	          reason, strlen(json), close_after ? "Connection: close\r\n" : "", json);
	struct out *o = out_owned(b.data, b.len);
	o->close_after = close_after;
	return o;
}

/* A miss on stderr (the first ones), with a hint when the method and target
 * were recorded with another authorization or body. */
static void miss_report(struct server *s, const char *key, size_t key_len)
{
	if (s->misses > REPLAY_MISS_SHOWN) return;
	const char *nl = memchr(key, '\n', key_len);
	const char *nl2 = nl ? memchr(nl + 1, '\n', key_len - (size_t)(nl + 1 - key)) : NULL;
	size_t mt_len = nl2 ? (size_t)(nl2 - key) + 1 : key_len;
	bool same_target = false;
	for (size_t i = 0; i < s->nslots && !same_target; i++)
		for (struct entry *e = s->slots[i]; e && !same_target; e = e->chain)
			same_target = e->key_len >= mt_len && memcmp(e->key, key, mt_len) == 0;
	int mlen = nl ? (int)(nl - key) : 0;
	int tlen = nl2 ? (int)(nl2 - nl - 1) : 0;
	if (tlen > 300) tlen = 300;
	fprintf(stderr, "replay-graph: miss: %.*s %.*s%s\n", mlen, key, tlen, nl ? nl + 1 : "",
	        same_target ? " (recorded with another authorization or body)" : "");
	if (s->misses == REPLAY_MISS_SHOWN) fputs("replay-graph: (further misses not shown)\n", stderr);
}

/* What the request line + headers say (pointers into the input buffer). */
struct req {
	const char *method, *target, *auth;
	size_t mlen, tlen, alen;
	size_t head_len;          /* through the blank line */
	long long content_length; /* -1: none */
	bool chunked, expect_continue, close;
};

static bool token_is(const char *v, size_t n, const char *word)
{
	size_t w = strlen(word);
	for (size_t i = 0; i + w <= n; i++)
		if (strncasecmp(v + i, word, w) == 0) return true;
	return false;
}

/* Parses the head of the request at the start of in[0..n): 1 complete (r
 * filled), 0 incomplete, -1 malformed. */
static int req_head(const char *in, size_t n, struct req *r)
{
	memset(r, 0, sizeof *r);
	r->content_length = -1;
	const char *end = memmem(in, n, "\r\n\r\n", 4);
	if (!end) return n > REPLAY_MAX_HEAD ? -1 : 0;
	r->head_len = (size_t)(end - in) + 4;
	const char *eol = memmem(in, r->head_len, "\r\n", 2);
	const char *sp1 = memchr(in, ' ', (size_t)(eol - in));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp1 == in || sp2 == sp1 + 1) return -1;
	r->method = in;
	r->mlen = (size_t)(sp1 - in);
	r->target = sp1 + 1;
	r->tlen = (size_t)(sp2 - sp1 - 1);
	r->close = (size_t)(eol - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
	r->auth = "";
	for (const char *line = eol + 2; line < end; line = eol + 2) {
		eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon) return -1;
		size_t nlen = (size_t)(colon - line);
		const char *v = colon + 1, *vend = eol;
		while (v < vend && (*v == ' ' || *v == '\t')) v++;
		while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
		size_t vlen = (size_t)(vend - v);
		if (nlen == 14 && !strncasecmp(line, "content-length", 14)) {
			char *stop;
			r->content_length = strtoll(v, &stop, 10);
			if (stop != vend || r->content_length < 0) return -1;
		} else if (nlen == 17 && !strncasecmp(line, "transfer-encoding", 17)) {
			r->chunked = token_is(v, vlen, "chunked");
		} else if (nlen == 6 && !strncasecmp(line, "expect", 6)) {
			r->expect_continue = token_is(v, vlen, "100-continue");
		} else if (nlen == 13 && !strncasecmp(line, "authorization", 13)) {
			r->auth = v;
			r->alen = vlen;
		} else if (nlen == 10 && !strncasecmp(line, "connection", 10)) {
			if (token_is(v, vlen, "close")) r->close = true;
			else if (token_is(v, vlen, "keep-alive")) r->close = false;
		}
	}
	return 1;
}

/* Decodes the chunked body at p[0..n) into body: the bytes it takes (through
 * the trailers' blank line), 0 when incomplete, -1 when malformed. */
static long long chunked_body(const char *p, size_t n, struct sbuf *body)
{
	size_t pos = 0;
	body->len = 0;
	for (;;) {
		const char *eol = memmem(p + pos, n - pos, "\r\n", 2);
		if (!eol) return n - pos > 1024 ? -1 : 0;
		char *stop;
		unsigned long long size = strtoull(p + pos, &stop, 16);
		if (stop == p + pos || (stop < eol && *stop != ';' && *stop != ' ')) return -1;
		pos = (size_t)(eol - p) + 2;
		if (size == 0) {
			for (;;) {   /* trailers, up to the blank line */
				eol = memmem(p + pos, n - pos, "\r\n", 2);
				if (!eol) return 0;
				bool blank = eol == p + pos;
				pos = (size_t)(eol - p) + 2;
				if (blank) return (long long)pos;
			}
		}
		if (size > REPLAY_MAX_BODY || body->len + size > REPLAY_MAX_BODY) return -1;
		if (n - pos < size + 2) return 0;
		sbuf_add(body, p + pos, (size_t)size);
		pos += (size_t)size;
		if (memcmp(p + pos, "\r\n", 2) != 0) return -1;
		pos += 2;
	}
}

/* The answer to a complete request: the next recorded response for its key,
 * the stats, or a miss. */
static struct out *answer(struct server *s, const struct req *r, const char *body, size_t blen)
{
	static const char stats_path[] = "/_replay/stats";
	if (r->mlen == 3 && !memcmp(r->method, "GET", 3) && r->tlen == sizeof stats_path - 1 &&
	    !memcmp(r->target, stats_path, r->tlen)) {
		size_t unserved = 0;
		for (size_t i = 0; i < s->nslots; i++)
			for (struct entry *e = s->slots[i]; e; e = e->chain)
				for (size_t k = 0; k < e->n; k++) unserved += !e->replies[k].served;
		struct rusage ru;
		double cpu = 0;
		if (getrusage(RUSAGE_SELF, &ru) == 0)
			cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
		double phase = s->first_request_ns && s->last_sent_ns > s->first_request_ns
		                       ? (double)(s->last_sent_ns - s->first_request_ns) / 1e9
		                       : 0;
		s->first_request_ns = s->last_sent_ns = 0;
		char json[240];
		snprintf(json, sizeof json,
		         "{\"requests\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"unserved\":%zu,\"cpu_seconds\":%.6f,"
		         "\"phase_seconds\":%.6f}",
		         s->requests, s->misses, unserved, cpu, phase);
		return out_json(200, "OK", json, r->close);
	}
	s->requests++;
	if (!s->first_request_ns) s->first_request_ns = now_ns();
	char sha[65];
	struct sbuf key = { 0 };
	struct out *o = NULL;
	if (sha256_hex(body, blen, sha) != 0) {
		o = out_json(500, "Internal Server Error", "{\"error\":{\"code\":\"replayError\",\"message\":\"sha256 failed\"}}",
		             r->close);
		goto out;
	}
	make_key(&key, r->method, r->mlen, r->target, r->tlen, r->auth, r->alen, sha);
	struct entry *e = table_find(s, key.data, key.len, fnv1a(key.data, key.len));
	if (!e) {
		s->misses++;
		miss_report(s, key.data, key.len);
		o = out_json(500, "Internal Server Error",
		             "{\"error\":{\"code\":\"replayMiss\",\"message\":\"no recorded exchange matches this request\"}}",
		             r->close);
		goto out;
	}
	struct reply *rep = &e->replies[e->next < e->n ? e->next : e->n - 1];
	if (e->next < e->n) e->next++;
	rep->served = true;
	o = xrealloc_or_die(NULL, sizeof *o);
	memset(o, 0, sizeof *o);
	o->data = rep->bytes;
	o->len = rep->len;
	o->drop = rep->drop;
	o->close_after = r->close;
out:
	free(key.data);
	return o;
}

/* Takes the complete requests at the start of c's input and schedules their
 * answers; answers 100 Continue to a request waiting for it. */
static void conn_requests(struct server *s, struct conn *c)
{
	struct sbuf body = { 0 };
	while (!c->closed && c->in.len) {
		struct req r;
		int h = req_head(c->in.data, c->in.len, &r);
		if (h == 0) break;
		if (h < 0 || (r.content_length > REPLAY_MAX_BODY)) {
			c->read_eof = true;   /* no more requests from this one */
			conn_events(s, c);
			schedule(s, c, out_json(400, "Bad Request", "{\"error\":{\"code\":\"badRequest\",\"message\":\"malformed request\"}}", true));
			c->in.len = 0;
			break;
		}
		size_t total;
		const char *bp = c->in.data + r.head_len;
		size_t avail = c->in.len - r.head_len, blen = 0;
		if (r.chunked) {
			long long used = chunked_body(bp, avail, &body);
			if (used < 0) {
				c->read_eof = true;
				conn_events(s, c);
				schedule(s, c, out_json(400, "Bad Request", "{\"error\":{\"code\":\"badRequest\",\"message\":\"malformed chunked body\"}}", true));
				c->in.len = 0;
				break;
			}
			if (used == 0) goto incomplete;
			total = r.head_len + (size_t)used;
			bp = body.data ? body.data : "";
			blen = body.len;
		} else {
			blen = r.content_length > 0 ? (size_t)r.content_length : 0;
			if (avail < blen) goto incomplete;
			total = r.head_len + blen;
		}
		struct out *o = answer(s, &r, bp, blen);
		c->continue_sent = false;
		if (r.close) {
			c->read_eof = true;
			conn_events(s, c);
		}
		memmove(c->in.data, c->in.data + total, c->in.len - total);
		c->in.len -= total;
		schedule(s, c, o);
		if (r.close) {
			c->in.len = 0;
			break;
		}
		continue;
	incomplete:
		if (r.expect_continue && !c->continue_sent) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			struct out *co = xrealloc_or_die(NULL, sizeof *co);
			memset(co, 0, sizeof *co);
			co->data = cont;
			co->len = sizeof cont - 1;
			c->continue_sent = true;
			conn_queue(s, c, co);
		}
		break;
	}
	free(body.data);
}

static void conn_read(struct server *s, struct conn *c)
{
	for (;;) {
		char buf[65536];
		ssize_t n = recv(c->fd, buf, sizeof buf, 0);
		if (n > 0) {
			sbuf_add(&c->in, buf, (size_t)n);
			if (c->in.len > (size_t)REPLAY_MAX_HEAD + REPLAY_MAX_BODY) {
				conn_close(s, c, true);
				return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
		if (n < 0) {
			conn_close(s, c, false);
			return;
		}
		c->read_eof = true;    /* the peer's FIN: answer what has come, then close */
		conn_events(s, c);
		break;
	}
	conn_requests(s, c);
	if (!c->closed && c->read_eof && !c->pending && !c->out_head) conn_close(s, c, false);
}

static void accept_all(struct server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "replay-graph: accept: %s\n", strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = xrealloc_or_die(NULL, sizeof *c);
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->next = s->conns;
		if (s->conns) s->conns->prev = c;
		s->conns = c;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) conn_close(s, c, false);
	}
}

/* ---------------------------------------------------------------------------------------- */
/* setup and main loop */

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	int rc = -1;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) goto out;
	FILE *f = fopen(tmp, "w");
	if (!f) goto out;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) goto out;
	rc = 0;
out:
	if (rc != 0) fprintf(stderr, "replay-graph: cannot write %s: %s\n", path, strerror(errno));
	return rc;
}

/* Opens the listening socket, the timer, the signal descriptor and epoll. */
static int server_open(struct server *s, const char *host, int port, const char *port_file)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t salen = sizeof sa;
	int one = 1, rc = -1;
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "replay-graph: --host %s is not an IPv4 address\n", host);
		goto out;
	}
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s->lfd, 1024) != 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &salen) != 0) {
		fprintf(stderr, "replay-graph: listen on %s:%d: %s\n", host, port, strerror(errno));
		goto out;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->sfd < 0 || s->tfd < 0 || s->ep < 0) {
		fprintf(stderr, "replay-graph: %s\n", strerror(errno));
		goto out;
	}
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.ptr = &tag_listen;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev) != 0) goto out;
	ev.data.ptr = &tag_timer;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->tfd, &ev) != 0) goto out;
	ev.data.ptr = &tag_signal;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &ev) != 0) goto out;
	if (port_file && write_port_file(port_file, ntohs(sa.sin_port)) != 0) goto out;
	rc = 0;
out:
	return rc;
}

static void server_close(struct server *s)
{
	while (s->pend_head) {
		struct pending *p = s->pend_head;
		s->pend_head = p->next;
		p->c->pending--;
		out_free(p->o);
		free(p);
	}
	s->pend_tail = NULL;
	for (struct conn *c = s->conns; c; c = c->next) conn_close(s, c, false);
	conns_sweep(s);
	table_free(s);
	if (s->ep >= 0) close(s->ep);
	if (s->lfd >= 0) close(s->lfd);
	if (s->tfd >= 0) close(s->tfd);
	if (s->sfd >= 0) close(s->sfd);
}

static void server_run(struct server *s)
{
	struct epoll_event evs[128];
	while (!s->stop) {
		int n = epoll_wait(s->ep, evs, 128, -1);
		if (n < 0) {
			if (errno == EINTR) continue;
			fprintf(stderr, "replay-graph: epoll_wait: %s\n", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			if (tag == &tag_listen) {
				accept_all(s);
			} else if (tag == &tag_timer) {
				pending_fire(s);
			} else if (tag == &tag_signal) {
				struct signalfd_siginfo si;
				while (read(s->sfd, &si, sizeof si) > 0) s->stop = true;
			} else {
				struct conn *c = tag;
				if (c->closed) continue;
				if (evs[i].events & EPOLLOUT) conn_flush(s, c);
				if (!c->closed && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) conn_read(s, c);
			}
		}
		conns_sweep(s);
	}
}

static int usage(void)
{
	fputs("usage: replay-graph [--host H] [--port N] [--port-file F] [--latency-ms MS] RECORD_FILE\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct server s = { .ep = -1, .lfd = -1, .tfd = -1, .sfd = -1 };
	const char *host = "127.0.0.1", *port_file = NULL, *record = NULL;
	int port = 0, rc = 2;
	double latency_ms = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *stop;
		if (!strcmp(a, "--host") && i + 1 < argc) {
			host = argv[++i];
		} else if (!strcmp(a, "--port") && i + 1 < argc) {
			long v = strtol(argv[++i], &stop, 10);
			if (*stop || v < 0 || v > 65535) return usage();
			port = (int)v;
		} else if (!strcmp(a, "--port-file") && i + 1 < argc) {
			port_file = argv[++i];
		} else if (!strcmp(a, "--latency-ms") && i + 1 < argc) {
			latency_ms = strtod(argv[++i], &stop);
			if (*stop || !(latency_ms >= 0) || latency_ms > 3.6e6) return usage();
		} else if (a[0] == '-' || record) {
			return usage();
		} else {
			record = a;
		}
	}
	if (!record) return usage();
	s.latency_ns = (uint64_t)(latency_ms * 1e6);
	s.nslots = 4099;
	s.slots = xrealloc_or_die(NULL, s.nslots * sizeof *s.slots);
	memset(s.slots, 0, s.nslots * sizeof *s.slots);
	if (records_load(&s, record) != 0) goto out;
	if (server_open(&s, host, port, port_file) != 0) goto out;
	fprintf(stderr, "replay-graph: %zu recorded responses for %zu requests, latency %g ms\n", s.nreplies,
	        s.nentries, latency_ms);
	server_run(&s);
	fprintf(stderr, "replay-graph: %" PRIu64 " requests, %" PRIu64 " misses\n", s.requests, s.misses);
	rc = 0;
out:
	server_close(&s);
	return rc;
}
