/* log — levelled logging to stderr, human or JSON lines, and the one
 * redaction point: every line (and every error shown to a user) passes
 * through log_redact, which removes registered secrets and token shapes. */
#ifndef ENTRASYNC_LOG_H
#define ENTRASYNC_LOG_H

#include <stdio.h>
#include "util/util.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };
enum log_format { LOG_HUMAN, LOG_JSON };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format fmt);
void log_set_stream(FILE *f);           /* default stderr; tests capture it */
/* "error|warn|info|debug|trace" -> level; -1 when unknown. */
int log_level_parse(const char *s);

/* Registers a secret (client secret, API key, private key, access token)
 * so it never appears in a log line or a redacted message. Copies s;
 * strings shorter than 4 bytes are ignored. log_secrets_clear frees all. */
void log_secret_add(const char *s);
void log_secrets_clear(void);

/* Appends `in` to `out` with secrets and token shapes replaced by
 * "[REDACTED]": registered secrets, "Bearer <tok>", and the values of
 * client_secret=, client_assertion=, access_token, api_key, password. */
void log_redact(const char *in, struct buf *out);
/* In-place variant for fixed buffers (struct err messages). */
void log_redact_err(struct err *err);

void log_write(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(ev, ...) log_write(LOG_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_write(LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_write(LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) log_write(LOG_DEBUG, ev, __VA_ARGS__)

/* One HTTP exchange: service name, method, URL path (query kept, redacted),
 * status (0 = transport error), elapsed seconds, attempt number, and an
 * optional note (curl error, Retry-After). Level info for success, warn else. */
void log_http(const char *service, const char *method, const char *path, long status,
              double elapsed, int attempt, const char *note);

#endif
