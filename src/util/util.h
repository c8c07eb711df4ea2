/* util — plumbing every layer uses: the error out-param, growable buffers,
 * checked allocation, small string and time helpers. Knows nothing above it. */
#ifndef ENTRASYNC_UTIL_H
#define ENTRASYNC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The error out-param of every fallible function: functions return 0 on
 * success and a negative value on failure, after filling *err (when err is
 * not NULL). Fixed size, so it never needs freeing. */
struct err {
	char msg[1024];
};

/* Formats into err->msg and returns -1, so callers can `return err_set(...)`. */
int err_set(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the existing message: "context: <old message>". Returns -1. */
int err_prefix(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that aborts the process on out-of-memory (there is no sane
 * recovery for a 100-byte malloc failing). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated after its len bytes.
 * Zero-initialised (`struct buf b = {0};`) is an empty buffer. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b);           /* len = 0, keeps memory */
void buf_free(struct buf *b);            /* frees, back to empty */
char *buf_steal(struct buf *b);          /* hands over data (never NULL), buffer becomes empty */

/* Strings */
bool str_starts(const char *s, const char *prefix);
bool str_ends(const char *s, const char *suffix);
bool str_ieq(const char *a, const char *b);          /* ASCII case-insensitive equality */
/* A 64-bit hash of s (FNV-1a) for hash tables keyed by strings; with
 * ascii_fold, of s with A-Z as a-z (keys compared with str_ieq). */
uint64_t str_hash(const char *s, bool ascii_fold);

/* An index of strings to positions (a hash table, open addressing, grown
 * as keys come): what a look-up by tenant id or by path uses when a config
 * lists thousands of tenants. Keys are borrowed (they must outlive the
 * index); with fold they are compared as str_ieq does. Zeroed = empty
 * (fold false); str_index_free frees its arrays. */
struct str_index {
	const char **keys;
	size_t *vals;
	size_t cap, n;
	bool fold;
};
#define STR_INDEX_NONE ((size_t)-1)
/* The value of key, or STR_INDEX_NONE. */
size_t str_index_get(const struct str_index *x, const char *key);
/* Sets the value of key (adding it when new). */
void str_index_put(struct str_index *x, const char *key, size_t val);
void str_index_free(struct str_index *x);
int fd_write_all(int fd, const void *data, size_t len); /* all of data, EINTR retried: 0, or -1 (errno) */
bool guid_at(const char *s);      /* s[0..36) is a GUID's text, 8-4-4-4-12 hex digits (s need not end there) */
bool str_is_guid(const char *s);  /* s is exactly a GUID's text */
bool str_utf8_valid(const char *s, size_t n);   /* strict: no overlongs, surrogates, nor above U+10FFFF */
/* The code point at *s (UTF-8; a byte that starts no valid sequence is
 * taken alone, as a value above U+10FFFF) in lower case, and *s moved past
 * it; 0 at the end. Case is folded for the letters of ASCII, Latin-1,
 * Latin Extended-A and Additional, Greek and Cyrillic (one to one: no
 * ß → ss). */
uint32_t utf8_fold_next(const char **s);
/* a and b are equal but for the case of those letters (utf8_fold_next). */
bool str_ieq_utf8(const char *a, const char *b);
/* Text from outside (a tenant's or a user's display name from Microsoft, an
 * error message) made safe for a terminal or a text table: every control
 * character (C0 with tab and newline, DEL, C1 = U+0080..U+009F) and every
 * byte that is not UTF-8 becomes '?', so the text can neither send escape
 * sequences to the terminal nor begin a line of its own. The one place
 * this is done: buf_add_term appends s (NULL: nothing); str_term_safe
 * returns a new string (NULL for NULL). */
void buf_add_term(struct buf *b, const char *s);
char *str_term_safe(const char *s);
/* The same for a message on one line (an error, a reason): its line breaks
 * become " | " and its tabs spaces instead of '?', and a Lua traceback
 * ("\nstack traceback:\n\tFRAME…") becomes " (traceback: FRAME; FRAME)"
 * with the frames of C functions left out. Returns a new string (NULL for
 * NULL). */
char *str_term_message(const char *s);
/* guid_at for s with at least 36 readable bytes (it reads them all, NULs
 * included): sixteen bytes a step with SSE2. For the member pages' ids. */
bool guid_at_36(const char *s);
/* A 128-bit digest of texts, to recognise a text seen before (not
 * cryptographic: for what Graph sends, not for what an attacker chooses).
 * text_digest_next folds data[0..n) into st (a chain over several texts:
 * start from TEXT_DIGEST_INIT); text_digest_hex writes it as 32 hex digits. */
#define TEXT_DIGEST_INIT { 0x243f6a8885a308d3u, 0x13198a2e03707344u }
void text_digest_next(uint64_t st[2], const void *data, size_t n);
void text_digest_hex(const uint64_t st[2], char out[33]);
size_t str_edit_distance(const char *a, const char *b); /* Levenshtein, for "did you mean" */
/* The text of a file is UTF-16 (a byte order mark FF FE or FE FF, or a NUL
 * among its first four bytes): what Windows Notepad's "Unicode" and Windows
 * PowerShell's Out-File write. Lua and JSON readers then fail on its first
 * byte with a message that does not say why; callers say it instead. */
bool text_is_utf16(const char *text, size_t len);

/* Files */
/* Reads a whole file into *out (NUL-terminated; *len without the NUL). */
int file_read(const char *path, char **out, size_t *len, struct err *err);

/* Time */
double time_now(void);        /* wall clock, seconds since the epoch, sub-second */
double time_mono(void);       /* monotonic seconds, for intervals and timers */
double time_thread_cpu(void);    /* CPU seconds the calling thread has used */
/* Parses an HTTP date (RFC 7231 IMF-fixdate, also RFC 850 and asctime forms).
 * Returns seconds since the epoch or -1. */
double time_parse_http_date(const char *s);
/* "2026-11-26T09:30:00Z" for t (UTC). buf must hold 21 bytes. */
void time_iso8601(double t, char *buf, size_t cap);
/* "2026-11-26": the UTC day of t. buf must hold 11 bytes. */
void time_day(double t, char *buf, size_t cap);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
