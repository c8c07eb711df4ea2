/* log — levelled logging and the one redaction point (see log.h). */
#include "util/log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_HUMAN;
static FILE *g_stream;
static char **g_secrets;
static size_t g_nsecrets;

void log_set_level(enum log_level level) { g_level = level; }
enum log_level log_get_level(void) { return g_level; }
void log_set_format(enum log_format fmt) { g_format = fmt; }
void log_set_stream(FILE *f) { g_stream = f; }

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_LEN(level_names); i++)
		if (strcmp(s, level_names[i]) == 0) return (int)i;
	return -1;
}

void log_secret_add(const char *s)
{
	if (!s || strlen(s) < 4) return;
	for (size_t i = 0; i < g_nsecrets; i++)
		if (strcmp(g_secrets[i], s) == 0) return;
	g_secrets = xrealloc(g_secrets, (g_nsecrets + 1) * sizeof *g_secrets);
	g_secrets[g_nsecrets++] = xstrdup(s);
}

void log_secrets_clear(void)
{
	for (size_t i = 0; i < g_nsecrets; i++) {
		memset(g_secrets[i], 0, strlen(g_secrets[i]));
		free(g_secrets[i]);
	}
	free(g_secrets);
	g_secrets = NULL;
	g_nsecrets = 0;
}

/* Keys whose value is a secret wherever they appear: in a form body
 * (key=value&), a header (Key: value) or JSON ("key":"value"). */
static const char *const secret_keys[] = {
	"client_secret", "client_assertion", "access_token", "refresh_token",
	"api_key", "apikey", "password", "private_key",
};

static bool is_token_char(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("-._~+/=%", c) != NULL);   /* strchr finds the NUL */
}

/* Length of the secret-shaped value starting at p (after "key" and its
 * separator), stopping at a delimiter of form, JSON or header syntax. */
static size_t value_len(const char *p, bool quoted)
{
	size_t n = 0;
	if (quoted) {
		while (p[n] && p[n] != '"') {
			if (p[n] == '\\' && p[n + 1]) n++;
			n++;
		}
		return n;
	}
	while (p[n] && p[n] != '&' && p[n] != '"' && p[n] != ',' && p[n] != ' ' && p[n] != '\n' && p[n] != '\r') n++;
	return n;
}

/* If a secret key starts at s (case-insensitive), returns the number of
 * bytes up to the start of its value and sets *quoted; else 0. */
static size_t match_secret_key(const char *s, bool *quoted)
{
	for (size_t i = 0; i < ARRAY_LEN(secret_keys); i++) {
		size_t kl = strlen(secret_keys[i]);
		if (strncasecmp(s, secret_keys[i], kl) != 0) continue;
		const char *p = s + kl;
		if (*p == '"') p++;                       /* JSON key close quote */
		while (*p == ' ') p++;
		if (*p != '=' && *p != ':') continue;
		p++;
		while (*p == ' ') p++;
		*quoted = (*p == '"');
		if (*quoted) p++;
		return (size_t)(p - s);
	}
	return 0;
}

void log_redact(const char *in, struct buf *out)
{
	const char *p = in;
	while (*p) {
		/* registered secrets, longest-first is unnecessary: any hit is replaced */
		bool hit = false;
		for (size_t i = 0; i < g_nsecrets; i++) {
			size_t l = strlen(g_secrets[i]);
			if (strncmp(p, g_secrets[i], l) == 0) {
				buf_adds(out, "[REDACTED]");
				p += l;
				hit = true;
				break;
			}
		}
		if (hit) continue;
		if (strncasecmp(p, "Bearer ", 7) == 0 && is_token_char(p[7])) {
			buf_adds(out, "Bearer [REDACTED]");
			p += 7;
			while (is_token_char(*p)) p++;
			continue;
		}
		bool quoted = false;
		size_t kl = (p == in || !isalnum((unsigned char)p[-1])) ? match_secret_key(p, &quoted) : 0;
		if (kl) {
			size_t vl = value_len(p + kl, quoted);
			buf_add(out, p, kl);
			if (vl) buf_adds(out, "[REDACTED]");
			p += kl + vl;
			continue;
		}
		buf_addc(out, *p++);
	}
}

void log_redact_err(struct err *err)
{
	struct buf b = {0};
	log_redact(err->msg, &b);
	size_t n = b.len < sizeof err->msg - 1 ? b.len : sizeof err->msg - 1;
	if (n) memcpy(err->msg, b.data, n);
	err->msg[n] = '\0';
	buf_free(&b);
}

static void json_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': buf_adds(b, "\\\""); break;
		case '\\': buf_adds(b, "\\\\"); break;
		case '\n': buf_adds(b, "\\n"); break;
		case '\r': buf_adds(b, "\\r"); break;
		case '\t': buf_adds(b, "\\t"); break;
		default:
			if (c < 0x20) buf_printf(b, "\\u%04x", c);
			else buf_addc(b, (char)c);
		}
	}
}

static void emit(enum log_level level, const char *event, const char *msg, const char *json_extra)
{
	FILE *f = g_stream ? g_stream : stderr;
	struct buf clean = {0}, line = {0};
	log_redact(msg, &clean);
	char ts[32];
	double now = time_now();
	if (g_format == LOG_JSON) {
		time_iso8601(now, ts, sizeof ts);
		buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"", ts, level_names[level]);
		json_escape(&line, event ? event : "");
		buf_adds(&line, "\",\"msg\":\"");
		json_escape(&line, clean.data ? clean.data : "");
		buf_addc(&line, '"');
		if (json_extra) buf_adds(&line, json_extra);
		buf_adds(&line, "}\n");
	} else {
		time_iso8601(now, ts, sizeof ts);
		buf_printf(&line, "%s %-5s %s%s%s\n", isatty(fileno(f)) ? ts + 11 : ts, level_names[level],
		           event ? event : "", event ? " " : "", clean.data ? clean.data : "");
	}
	fwrite(line.data, 1, line.len, f);
	fflush(f);
	buf_free(&clean);
	buf_free(&line);
}

void log_write(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level > g_level) return;
	struct buf msg = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	emit(level, event, msg.data ? msg.data : "", NULL);
	buf_free(&msg);
}

void log_http(const char *service, const char *method, const char *path, long status,
              double elapsed, int attempt, const char *note)
{
	enum log_level level = (status >= 200 && status < 400) ? LOG_DEBUG : LOG_WARN;
	if (level > g_level) return;
	struct buf msg = {0}, extra = {0}, cpath = {0};
	log_redact(path, &cpath);
	buf_printf(&msg, "%s %s %s -> %ld in %.0f ms (attempt %d)%s%s", service, method, cpath.data, status,
	           elapsed * 1000.0, attempt, note ? ": " : "", note ? note : "");
	if (g_format == LOG_JSON) {
		buf_adds(&extra, ",\"service\":\"");
		json_escape(&extra, service);
		buf_adds(&extra, "\",\"method\":\"");
		json_escape(&extra, method);
		buf_adds(&extra, "\",\"path\":\"");
		json_escape(&extra, cpath.data);
		buf_printf(&extra, "\",\"status\":%ld,\"ms\":%.1f,\"attempt\":%d", status, elapsed * 1000.0, attempt);
	}
	emit(level, "http", msg.data, extra.len ? extra.data : NULL);
	buf_free(&msg);
	buf_free(&extra);
	buf_free(&cpath);
}
