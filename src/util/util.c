/* util — error out-param, buffers, allocation, strings, files, time. */
#include "util/util.h"
#include "util/log.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The message is redacted (log_redact) before it is cut to the buffer's
 * size: a registered secret that a server echoed near the cut would
 * otherwise leave a fragment that no later redaction recognises. */
int err_set(struct err *err, const char *fmt, ...)
{
	if (err) {
		char *full = NULL;
		va_list ap;
		va_start(ap, fmt);
		int n = vasprintf(&full, fmt, ap);
		va_end(ap);
		if (n < 0) {
			snprintf(err->msg, sizeof err->msg, "(out of memory formatting an error)");
			return -1;
		}
		struct buf red = {0};
		log_redact(full, &red);
		snprintf(err->msg, sizeof err->msg, "%s", red.data ? red.data : "");
		buf_free(&red);
		free(full);
	}
	return -1;
}

int err_prefix(struct err *err, const char *fmt, ...)
{
	if (err) {
		char prefix[512], old[sizeof err->msg];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(prefix, sizeof prefix, fmt, ap);
		va_end(ap);
		memcpy(old, err->msg, sizeof old);
		struct buf b = {0};
		buf_printf(&b, "%s: %s", prefix, old);
		size_t n = b.len < sizeof err->msg - 1 ? b.len : sizeof err->msg - 1;
		memcpy(err->msg, b.data, n);
		err->msg[n] = '\0';
		buf_free(&b);
	}
	return -1;
}

static void oom(void)
{
	fputs("entrasync: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) oom();
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return buf_steal(&b);
}

void buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap) return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
}

void buf_add(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len) memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	char small[256];
	int n = vsnprintf(small, sizeof small, fmt, ap2);
	va_end(ap2);
	if (n < 0) return;
	if ((size_t)n < sizeof small) {
		buf_add(b, small, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data) b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *buf_steal(struct buf *b)
{
	char *p = b->data ? b->data : xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

bool str_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

bool str_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
	return *a == *b;
}

uint64_t str_hash(const char *s, bool ascii_fold)
{
	uint64_t h = 0xcbf29ce484222325u;   /* FNV-1a 64: offset basis, then the prime */
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned c = *p;
		if (ascii_fold && c >= 'A' && c <= 'Z') c += 32;
		h = (h ^ c) * 1099511628211u;
	}
	return h;
}

/* The slot of key in x (cap > 0): where it is, or the empty one where it goes. */
static size_t str_index_slot(const struct str_index *x, const char *key)
{
	size_t i = (size_t)str_hash(key, x->fold) & (x->cap - 1);
	while (x->keys[i] && !(x->fold ? str_ieq(x->keys[i], key) : strcmp(x->keys[i], key) == 0))
		i = (i + 1) & (x->cap - 1);
	return i;
}

size_t str_index_get(const struct str_index *x, const char *key)
{
	if (!x->cap) return STR_INDEX_NONE;
	size_t i = str_index_slot(x, key);
	return x->keys[i] ? x->vals[i] : STR_INDEX_NONE;
}

void str_index_put(struct str_index *x, const char *key, size_t val)
{
	if (2 * (x->n + 1) > x->cap) {   /* at most half full: rebuilt four times as big */
		struct str_index old = *x;
		x->cap = old.cap ? old.cap * 4 : 64;
		x->keys = xcalloc(x->cap, sizeof *x->keys);
		x->vals = xcalloc(x->cap, sizeof *x->vals);
		for (size_t k = 0; k < old.cap; k++) {
			if (!old.keys[k]) continue;
			size_t i = str_index_slot(x, old.keys[k]);
			x->keys[i] = old.keys[k];
			x->vals[i] = old.vals[k];
		}
		free(old.keys);
		free(old.vals);
	}
	size_t i = str_index_slot(x, key);
	if (!x->keys[i]) {
		x->keys[i] = key;
		x->n++;
	}
	x->vals[i] = val;
}

void str_index_free(struct str_index *x)
{
	free(x->keys);
	free(x->vals);
	*x = (struct str_index){ .fold = x->fold };
}

int fd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR) continue;
		if (w <= 0) return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The class of each byte for guid_at: 1 a hexadecimal digit, 2 a dash,
 * 0 anything else (the NUL included, so a short string stops there). */
static const unsigned char guid_class[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['-'] = 2,
};

/* Called for every member id of every group on every pull (100,000 per
 * pull of 100 tenants), hence a class table instead of isxdigit's locale
 * lookup per byte. */
bool guid_at(const char *s)
{
	static const unsigned char shape[36] = {
		1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	};
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < sizeof shape; i++)
		if (guid_class[u[i]] != shape[i]) return false;
	return true;
}

#if defined(__SSE2__)
/* The hexadecimal digits among x's sixteen bytes, as a bit mask. Bytes of
 * 0x80 and above are negative to the signed compares: never digits. */
static unsigned hex_mask16(__m128i x)
{
	__m128i lower = _mm_or_si128(x, _mm_set1_epi8(0x20));   /* 'A'-'F' -> 'a'-'f', digits unchanged */
	__m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
	__m128i alpha =
		_mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(lower, _mm_set1_epi8('f' + 1)));
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(digit, alpha));
}

/* Checks bytes [at, at+16) of s: the dashes where dashes (bits of dash)
 * must be, hexadecimal digits elsewhere. */
static bool guid_block(const char *s, size_t at, unsigned dash)
{
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + at));
	unsigned dashes = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('-')));
	return dashes == dash && hex_mask16(x) == (~dash & 0xffffu);
}

bool guid_at_36(const char *s)
{
	/* dashes at 8, 13, 18, 23: bytes 0-15, 16-31 and 20-35 (overlapping) */
	return guid_block(s, 0, (1u << 8) | (1u << 13)) && guid_block(s, 16, (1u << 2) | (1u << 7)) &&
	       guid_block(s, 20, 1u << 3);
}
#else
bool guid_at_36(const char *s)
{
	return guid_at(s);
}
#endif

bool str_is_guid(const char *s)
{
	return strnlen(s, 37) == 36 && guid_at(s);
}

bool text_is_utf16(const char *text, size_t len)
{
	const unsigned char *u = (const unsigned char *)text;
	if (len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF))) return true;
	for (size_t i = 0; i < len && i < 4; i++)
		if (u[i] == 0) return true;
	return false;
}

size_t str_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = xmalloc((lb + 1) * sizeof *row);
	for (size_t j = 0; j <= lb; j++) row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = (a[i - 1] == b[j - 1]) ? 0 : 1;
			size_t best = diag + cost;
			if (row[j] + 1 < best) best = row[j] + 1;
			if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	size_t d = row[lb];
	free(row);
	return d;
}

int file_read(const char *path, char **out, size_t *len, struct err *err)
{
	int rc = -1;
	struct buf b = {0};
	FILE *f = fopen(path, "rb");
	if (!f) {
		err_set(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, n);
	if (ferror(f)) {
		err_set(err, "%s: read error: %s", path, strerror(errno));
		goto out;
	}
	if (len) *len = b.len;
	*out = buf_steal(&b);
	rc = 0;
out:
	if (f) fclose(f);
	buf_free(&b);
	return rc;
}

double time_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double time_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double time_thread_cpu(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return time_mono();
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double time_parse_http_date(const char *s)
{
	static const char *const formats[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",      /* asctime */
	};
	for (size_t i = 0; i < ARRAY_LEN(formats); i++) {
		struct tm tm;
		memset(&tm, 0, sizeof tm);
		const char *end = strptime(s, formats[i], &tm);
		if (end && *end == '\0') return (double)timegm(&tm);
	}
	return -1;
}

void time_iso8601(double t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void time_day(double t, char *buf, size_t cap)
{
	char iso[32];
	time_iso8601(t, iso, sizeof iso);
	snprintf(buf, cap, "%.10s", iso);
}

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* MurmurHash3's 64-bit finaliser: a bijection that spreads every bit. */
static inline uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdu;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53u;
	k ^= k >> 33;
	return k;
}

/* Four 64-bit lanes, word i of the text folded into lane i % 4 by xor, an
 * odd multiply and a rotation. Each step is a bijection of its lane (for a
 * given word) and of its word (for a given lane), so two texts of one
 * length that differ in one word, or in words of one lane only, never share
 * a digest unless two changed words of a lane cancel out. ~0.6
 * instructions a byte (the lanes run side by side). */
void text_digest_next(uint64_t st[2], const void *data, size_t n)
{
	static const uint64_t mul[4] = { 0x9e3779b97f4a7c15u, 0xc2b2ae3d27d4eb4fu, 0x165667b19e3779f9u,
	                                 0xd6e8feb86659fd93u };
	const unsigned char *p = data;
	size_t len = n;
	/* the lanes in four variables, so that they stay in registers */
	uint64_t l0 = st[0], l1 = st[1], l2 = st[0] ^ 0xa0761d6478bd642fu, l3 = st[1] ^ 0xe7037ed1a0b428dbu;
	for (; n >= 32; p += 32, n -= 32) {
		uint64_t w0, w1, w2, w3;
		memcpy(&w0, p, 8);
		memcpy(&w1, p + 8, 8);
		memcpy(&w2, p + 16, 8);
		memcpy(&w3, p + 24, 8);
		l0 = rotl64((l0 ^ w0) * mul[0], 31);
		l1 = rotl64((l1 ^ w1) * mul[1], 31);
		l2 = rotl64((l2 ^ w2) * mul[2], 31);
		l3 = rotl64((l3 ^ w3) * mul[3], 31);
	}
	uint64_t lane[4] = { l0, l1, l2, l3 };
	for (int k = 0; n > 0; k++) {   /* the tail: whole words, then the last bytes zero-padded */
		uint64_t w = 0;
		size_t take = n < 8 ? n : 8;
		memcpy(&w, p, take);
		lane[k] = rotl64((lane[k] ^ w) * mul[k], 31);
		p += take;
		n -= take;
	}
	uint64_t a = fmix64(lane[0] ^ rotl64(lane[2], 17) ^ (uint64_t)len);
	uint64_t b = fmix64(lane[1] ^ rotl64(lane[3], 43) ^ a);
	st[0] = a;
	st[1] = b;
}

void text_digest_hex(const uint64_t st[2], char out[33])
{
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)st[0], (unsigned long long)st[1]);
}

/* The UTF-8 character at s (n > 0 bytes left): its length, with its code
 * point in *cp; 0 when the bytes are not one (strict: no overlongs, no
 * surrogates, nothing above U+10FFFF, no cut sequence). */
static size_t utf8_char(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	unsigned v, min;
	if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
	else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
	else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
	else return 0;
	if (len > n) return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80) return 0;
		v = (v << 6) | (s[k] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
	*cp = v;
	return len;
}

/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF. */
/* cp in lower case, for the scripts utf8_fold_next names. */
static uint32_t fold_code_point(uint32_t cp)
{
	if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;                  /* À..Þ */
	if (cp >= 0x100 && cp <= 0x17F) {                                            /* Latin Extended-A */
		if (cp == 0x130 || cp == 0x131 || cp == 0x138 || cp == 0x149 || cp == 0x17F) return cp;
		if (cp == 0x178) return 0xFF;                                            /* Ÿ */
		bool odd_upper = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
		return (cp & 1) == (odd_upper ? 1u : 0u) ? cp + 1 : cp;
	}
	if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 32;               /* Greek Α..Ϋ */
	if (cp == 0x386) return 0x3AC;
	if (cp >= 0x388 && cp <= 0x38A) return cp + 37;
	if (cp == 0x38C) return 0x3CC;
	if (cp == 0x38E || cp == 0x38F) return cp + 63;
	if (cp == 0x3C2) return 0x3C3;                                               /* final sigma */
	if (cp >= 0x410 && cp <= 0x42F) return cp + 32;                              /* Cyrillic А..Я */
	if (cp >= 0x400 && cp <= 0x40F) return cp + 80;                              /* Ѐ..Џ */
	if (((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF) || (cp >= 0x1E00 && cp <= 0x1E95) ||
	     (cp >= 0x1EA0 && cp <= 0x1EFF)) && (cp & 1) == 0)
		return cp + 1;
	return cp;
}

uint32_t utf8_fold_next(const char **s)
{
	const unsigned char *p = (const unsigned char *)*s;
	uint32_t c = p[0];
	if (!c) return 0;
	*s += 1;
	if (c < 0x80) return fold_code_point(c);
	size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
	if (!len || !str_utf8_valid((const char *)p, strnlen((const char *)p, len)))
		return 0x110000 + c;     /* a stray byte: itself, beyond every code point */
	uint32_t cp = c & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
	for (size_t k = 1; k < len; k++) cp = (cp << 6) | (p[k] & 0x3Fu);
	*s += len - 1;
	return fold_code_point(cp);
}

bool str_ieq_utf8(const char *a, const char *b)
{
	for (;;) {
		uint32_t x = utf8_fold_next(&a), y = utf8_fold_next(&b);
		if (x != y) return false;
		if (!x) return true;
	}
}

bool str_utf8_valid(const char *text, size_t n)
{
	const unsigned char *s = (const unsigned char *)text;
	unsigned cp;
	for (size_t i = 0, len; i < n; i += len)
		if ((len = utf8_char(s + i, n - i, &cp)) == 0) return false;
	return true;
}

void buf_add_term(struct buf *b, const char *text)
{
	if (!text) return;
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);
	for (size_t i = 0; i < n;) {
		unsigned cp;
		size_t len = utf8_char(s + i, n - i, &cp);
		if (len == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
			buf_addc(b, '?');       /* a control character, or a byte that is not UTF-8 */
			i += len ? len : 1;
			continue;
		}
		buf_add(b, s + i, len);
		i += len;
	}
}

char *str_term_safe(const char *s)
{
	if (!s) return NULL;
	struct buf b = { 0 };
	buf_add_term(&b, s);
	return buf_steal(&b);
}

/* buf_add_term of s[0..n) with line breaks as " | " and tabs as spaces. */
static void add_term_lines(struct buf *b, const char *s, size_t n)
{
	char *one = xstrndup(s, n);
	for (char *p = one; *p; p++) {
		if (*p == '\t') *p = ' ';
		if (*p == '\r') *p = ' ';
	}
	char *line = one, *nl;
	while ((nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		buf_add_term(b, line);
		buf_adds(b, " | ");
		line = nl + 1;
	}
	buf_add_term(b, line);
	free(one);
}

char *str_term_message(const char *s)
{
	if (!s) return NULL;
	static const char head[] = "\nstack traceback:\n";
	struct buf b = { 0 };
	const char *tb = strstr(s, head);
	add_term_lines(&b, s, tb ? (size_t)(tb - s) : strlen(s));
	if (tb) {
		int frames = 0;
		for (const char *f = tb + sizeof head - 1; *f;) {
			while (*f == '\t' || *f == ' ') f++;
			size_t n = strcspn(f, "\n");
			if (n && strncmp(f, "[C]", 3) != 0) {   /* a Lua frame: file:line: in … */
				buf_adds(&b, frames++ ? "; " : " (traceback: ");
				add_term_lines(&b, f, n);
			}
			f += n;
			if (*f) f++;
		}
		if (frames) buf_addc(&b, ')');
	}
	return buf_steal(&b);
}
