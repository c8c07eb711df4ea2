/* snapshot — accepted config and policy texts in a sealed memfd (see
 * snapshot.h). The serialised form:
 *   "entrasync-snapshot 1\n"
 *   then per file: "<path length> <text length>\n" <path> <text> "\n"
 *   then "end\n". */
#include "util/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_MAGIC "entrasync-snapshot 1\n"
#define SNAPSHOT_END "end\n"
#define SNAPSHOT_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

void snapshot_add(struct snapshot *s, const char *path, const char *text, size_t len)
{
	struct snapshot_file *f = NULL;
	for (size_t i = 0; i < s->n && !f; i++)
		if (strcmp(s->files[i].path, path) == 0) f = &s->files[i];
	if (!f) {
		s->files = xrealloc(s->files, (s->n + 1) * sizeof *s->files);
		f = &s->files[s->n++];
		f->path = xstrdup(path);
	} else {
		free(f->text);
	}
	f->text = xmalloc(len + 1);
	memcpy(f->text, text, len);
	f->text[len] = '\0';
	f->len = len;
}

const struct snapshot_file *snapshot_get(const struct snapshot *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->files[i].path, path) == 0) return &s->files[i];
	return NULL;
}

void snapshot_free(struct snapshot *s)
{
	if (!s) return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->files[i].path);
		free(s->files[i].text);
	}
	free(s->files);
	memset(s, 0, sizeof *s);
}

int snapshot_seal(const struct snapshot *s, int *fd, struct err *err)
{
	struct buf b = {0};
	int rc = -1;
	*fd = memfd_create("entrasync-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*fd < 0) return err_set(err, "snapshot: memfd_create: %s", strerror(errno));
	buf_adds(&b, SNAPSHOT_MAGIC);
	for (size_t i = 0; i < s->n; i++) {
		const struct snapshot_file *f = &s->files[i];
		buf_printf(&b, "%zu %zu\n", strlen(f->path), f->len);
		buf_adds(&b, f->path);
		buf_add(&b, f->text, f->len);
		buf_addc(&b, '\n');
	}
	buf_adds(&b, SNAPSHOT_END);
	if (fd_write_all(*fd, b.data, b.len) != 0) {
		err_set(err, "snapshot: write: %s", strerror(errno));
		goto out;
	}
	if (fcntl(*fd, F_ADD_SEALS, SNAPSHOT_SEALS) != 0) {
		err_set(err, "snapshot: sealing: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	if (rc != 0) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

/* Parses "N M\n" at *p (before end); advances *p past the newline. */
static int parse_header(const char **p, const char *end, size_t *a, size_t *b)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl || nl - *p > 60) return -1;
	char line[64];
	memcpy(line, *p, (size_t)(nl - *p));
	line[nl - *p] = '\0';
	char *q;
	errno = 0;
	uintmax_t x = strtoumax(line, &q, 10);
	if (q == line || *q != ' ') return -1;
	char *r;
	uintmax_t y = strtoumax(q + 1, &r, 10);
	if (r == q + 1 || *r != '\0' || errno || x > SIZE_MAX || y > SIZE_MAX) return -1;
	*a = (size_t)x;
	*b = (size_t)y;
	*p = nl + 1;
	return 0;
}

/* Parses the serialised form in data (len bytes) into s. */
static int parse(const char *data, size_t len, struct snapshot *s, struct err *err)
{
	const char *p = data, *end = data + len;
	size_t ml = strlen(SNAPSHOT_MAGIC);
	if (len < ml || memcmp(p, SNAPSHOT_MAGIC, ml) != 0) return err_set(err, "not an entrasync snapshot");
	p += ml;
	for (;;) {
		size_t el = strlen(SNAPSHOT_END);
		if ((size_t)(end - p) == el && memcmp(p, SNAPSHOT_END, el) == 0) return 0;
		size_t plen, tlen;
		if (parse_header(&p, end, &plen, &tlen) != 0) return err_set(err, "bad entry header at byte %td", p - data);
		if (plen == 0 || plen > (size_t)(end - p) || tlen >= (size_t)(end - p) - plen || p[plen + tlen] != '\n')
			return err_set(err, "entry at byte %td runs past the end", p - data);
		char *path = xstrndup(p, plen);
		if (strlen(path) != plen) {
			free(path);
			return err_set(err, "a path holds a NUL byte");
		}
		snapshot_add(s, path, p + plen, tlen);
		free(path);
		p += plen + tlen + 1;
	}
}

int snapshot_read_fd(int fd, struct snapshot *s, struct err *err)
{
	memset(s, 0, sizeof *s);
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) return err_set(err, "fd %d: %s", fd, strerror(errno));
	if ((seals & SNAPSHOT_SEALS) != SNAPSHOT_SEALS) return err_set(err, "fd %d is not sealed", fd);
	struct stat st;
	if (fstat(fd, &st) != 0) return err_set(err, "fd %d: %s", fd, strerror(errno));
	size_t len = (size_t)st.st_size;
	char *data = xmalloc(len + 1);
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, data + got, len - got, (off_t)got);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			free(data);
			return err_set(err, "fd %d: read: %s", fd, n < 0 ? strerror(errno) : "short");
		}
		got += (size_t)n;
	}
	int rc = parse(data, len, s, err);
	free(data);
	if (rc != 0) snapshot_free(s);
	return rc;
}

/* ---- this process's snapshot ------------------------------------------ */

static struct {
	bool loaded;           /* the environment was looked at */
	bool have;             /* a snapshot is in use */
	struct snapshot snap;
	char error[sizeof ((struct err *)0)->msg + 128];   /* set when the variable names no usable snapshot */
} g_snap;

static void process_snapshot_load(void)
{
	if (g_snap.loaded) return;
	g_snap.loaded = true;
	const char *v = getenv(SNAPSHOT_ENV);
	if (!v || !*v) return;
	g_snap.have = true;
	char *end;
	long fd = strtol(v, &end, 10);
	struct err err;
	if (*end || fd < 0 || fd > INT32_MAX) {
		snprintf(g_snap.error, sizeof g_snap.error, "%s='%s' is not a file descriptor", SNAPSHOT_ENV, v);
		return;
	}
	if (snapshot_read_fd((int)fd, &g_snap.snap, &err) != 0) {
		snprintf(g_snap.error, sizeof g_snap.error, "the daemon's snapshot (%s=%ld): %s", SNAPSHOT_ENV, fd, err.msg);
		return;
	}
	close((int)fd);
}

int snapshot_file_read(const char *path, char **out, size_t *len, struct err *err)
{
	process_snapshot_load();
	if (!g_snap.have) return file_read(path, out, len, err);
	if (g_snap.error[0]) return err_set(err, "%s: %s", path, g_snap.error);
	const struct snapshot_file *f = snapshot_get(&g_snap.snap, path);
	if (!f) return file_read(path, out, len, err);
	*out = xmalloc(f->len + 1);
	memcpy(*out, f->text, f->len + 1);
	if (len) *len = f->len;
	return 0;
}

bool snapshot_has(const char *path)
{
	process_snapshot_load();
	return g_snap.have && !g_snap.error[0] && snapshot_get(&g_snap.snap, path) != NULL;
}
