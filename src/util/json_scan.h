/* json_scan — reading a few top-level members of a JSON object straight
 * from its text, without building a tree and without allocating: the
 * planner's view of a mirrored user (accountEnabled, mail, ...) and of a
 * link's fields. Values are spans of the text; strings are decoded on
 * demand into the caller's buffer (never longer than their raw text).
 *
 * What is checked: the structure of everything scanned (numbers by the
 * JSON grammar, the literals, brackets, commas and colons, nesting up to
 * JSON_SCAN_DEPTH). Strings are found by their closing quote (memchr
 * speed); their escapes and characters are checked only when decoded
 * (json_scan_string). json_scan_members stops at the last member it looks
 * for, so text after it is not checked. Where the whole text must be valid
 * JSON, use a strict parser (the script layer's parser checks a user's
 * text before any policy code runs). */
#ifndef ENTRASYNC_JSON_SCAN_H
#define ENTRASYNC_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "util/util.h"

#define JSON_SCAN_DEPTH 64
#define JSON_SCAN_RECORD_KEYS 16     /* keys json_scan_each_record looks for, at most */

enum json_scan_type {
	JSON_SCAN_ABSENT,                /* no such member */
	JSON_SCAN_NULL, JSON_SCAN_FALSE, JSON_SCAN_TRUE,
	JSON_SCAN_NUMBER, JSON_SCAN_STRING, JSON_SCAN_ARRAY, JSON_SCAN_OBJECT,
};

/* A value: its type and raw text (a string's with its quotes; an array's
 * or object's with its brackets). Borrowed from the scanned text. */
struct json_scan_value {
	enum json_scan_type type;
	const char *text;
	size_t len;
};

/* Finds the members named keys[0..n) at the top level of the object in
 * json[0..len): out[i] gets the value of keys[i] (the first occurrence;
 * type JSON_SCAN_ABSENT when missing). Keys are compared after decoding
 * their escapes. Stops once every key was found. Returns 0, or -1 with err
 * ("invalid JSON at byte offset N") when the text is not an object or is
 * malformed up to where the scan stopped. */
int json_scan_members(const char *json, size_t len, const char *const *keys, size_t n,
                      struct json_scan_value *out, struct err *err);

/* Calls fn for every top-level member of the object in order: key is the
 * decoded name (NUL-terminated, borrowed for the call), or NULL for a name
 * it cannot hand over (longer than 255 bytes decoded), v its value. Checks the whole text (trailing
 * text after the object included). Returns 0, fn's first non-zero result,
 * or -1 with err for malformed text. */
int json_scan_each_member(const char *json, size_t len,
                          int (*fn)(void *ud, const char *key, const struct json_scan_value *v), void *ud,
                          struct err *err);

/* Calls fn for every element of the array in json[0..len) in order, with
 * its index. Checks the whole text (trailing text after the array
 * included), as json_scan_each_member. Returns 0, fn's first non-zero
 * result, or -1 with err for malformed text. */
int json_scan_each_element(const char *json, size_t len,
                           int (*fn)(void *ud, size_t i, const struct json_scan_value *v), void *ud,
                           struct err *err);
/* A reader of one key's values for json_scan_each_record: a parser that
 * knows their shape reads them in place, where skipping them first would
 * scan them twice. read is called at the value of keys[key] in element i,
 * with the element's values found before it (vals) and the text left;
 * it returns the bytes the value spans (its span in the record), or 0 to
 * have it skipped as usual (not its kind, or malformed: the scan then
 * checks it). */
struct json_scan_reader {
	size_t key;
	size_t (*read)(void *ud, size_t i, const struct json_scan_value *vals, const char *p, size_t left);
	void *ud;
};

/* In one pass over the text: for each element of the array that is the
 * member named key of the object in json[0..len), calls fn with the
 * element's members keys[0..n) (n <= JSON_SCAN_RECORD_KEYS) as
 * json_scan_members finds them (all absent for an element that is not an
 * object) and, in vals[n], the element itself; reader (may be NULL) reads
 * one key's values itself. *found: the member exists and is an array.
 * Checks the whole text (trailing text included), as json_scan_each_member.
 * Returns 0, fn's first non-zero result, or -1 with err for malformed text.
 * E.g. a Graph $batch answer's "responses", each part's id, status, headers
 * and body. */
int json_scan_each_record(const char *json, size_t len, const char *key, const char *const *keys, size_t n,
                          const struct json_scan_reader *reader,
                          int (*fn)(void *ud, size_t i, const struct json_scan_value *vals), void *ud, bool *found,
                          struct err *err);
/* The same, also reading the object's members also[0..n_also) other than
 * key into also_out (the first occurrence; JSON_SCAN_ABSENT when missing),
 * in the same pass: e.g. a page's "@odata.nextLink" beside its "value".
 * Those after a stop by fn are not read. */
int json_scan_each_record_also(const char *json, size_t len, const char *key, const char *const *keys, size_t n,
                               const struct json_scan_reader *reader,
                               int (*fn)(void *ud, size_t i, const struct json_scan_value *vals), void *ud,
                               bool *found, const char *const *also, size_t n_also, struct json_scan_value *also_out,
                               struct err *err);
/* Whether the strings of p[0..n), a value the scanner checked (its
 * structure, numbers and literals), are strict JSON too: every escape
 * valid, no raw control character. Then the text is fit to store as JSON
 * as it is. */
bool json_scan_strings_strict(const char *p, size_t n);
/* Decodes a JSON_SCAN_STRING value (escapes; \u with surrogate pairs to
 * UTF-8; a lone surrogate becomes U+FFFD) into out[cap], NUL-terminated.
 * Never writes more than v->len - 1 bytes with the NUL, so a buffer of
 * v->len bytes always suffices. Returns the decoded length, or -1 when v is
 * not a well-formed string or out is too small (out is then ""). */
long json_scan_string(const struct json_scan_value *v, char *out, size_t cap);

/* Decodes a string value into b (reset first, NUL-terminated, b->data
 * valid). Returns the decoded length or -1 (not a string). */
long json_scan_string_buf(const struct json_scan_value *v, struct buf *b);

/* The first byte at or after q that ends the plain run of a JSON string:
 * '"', '\\' or a control character (or e). Sixteen bytes a step with SSE2
 * (every x86-64 has it), then a byte at a time. (A SWAR version, eight bytes
 * a step, measured no better on Graph's short strings; SSE2 took a third off
 * the scanning.) Shared by every scanner of JSON text. */
static inline const char *json_scan_skip_plain(const char *q, const char *e)
{
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
	while (e - q >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
		                           _mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x));     /* x <= 0x1f */
		unsigned mask = (unsigned)_mm_movemask_epi8(hit);
		if (mask) return q + __builtin_ctz(mask);
		q += 16;
	}
#endif
	while (q < e && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
	return q;
}

#endif
