/* config — the parts of the configuration that need no Lua: where the file
 * is, freeing it, the URL policy (https, or http to loopback only), tenant
 * id shape and "did you mean" suggestions. The loader is in lua_config.c. */
#include "util/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *config_locate(const char *explicit_path)
{
	if (explicit_path) return explicit_path;
	const char *env = getenv("ENTRASYNC_CONFIG");
	if (env && *env) return env;
	return "entrasync.lua";
}

void config_free(struct config *cfg)
{
	if (!cfg) return;
	free(cfg->path);
	free(cfg->dir);
	free(cfg->database);
	free(cfg->policy);
	free(cfg->graph.client_id);
	free(cfg->graph.client_secret);
	free(cfg->graph.certificate);
	free(cfg->graph.private_key);
	free(cfg->graph.jwt_alg);
	free(cfg->graph.authority);
	free(cfg->graph.endpoint);
	free(cfg->graph.ca_file);
	free(cfg->syncro.base_url);
	free(cfg->syncro.api_key);
	free(cfg->syncro.ca_file);
	for (size_t i = 0; i < cfg->ntenants; i++) {
		struct config_tenant *t = &cfg->tenants[i];
		free(t->id);
		free(t->name);
		free(t->syncro_customer);
		free(t->policy);
		free(t->billing_schedule);
	}
	free(cfg->tenants);
	free(cfg->csp_partner_tenant);
	free(cfg->actions.ticket_problem_type);
	free(cfg->actions.ticket_status_done);
	free(cfg->actions.ticket_status_failed);
	free(cfg->billing.schedule);
	free(cfg->alerts.problem_type);
	free(cfg->alerts.subject_prefix);
	memset(cfg, 0, sizeof *cfg);
}

/* Is host (without brackets or port) a loopback name or address? */
static int host_is_loopback(const char *host)
{
	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0) return 1;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return 0;
}

/* Copies the host of the authority part starting at p (after "//") into
 * host (cap bytes): userinfo and port dropped, IPv6 brackets removed.
 * Returns 0, or -1 when the authority is malformed. */
static int url_host(const char *p, char *host, size_t cap)
{
	size_t alen = strcspn(p, "/?#");
	const char *at = memrchr(p, '@', alen);
	if (at) {
		alen -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	size_t hlen;
	if (alen > 0 && *p == '[') {
		const char *close = memchr(p, ']', alen);
		if (!close) return -1;
		const char *after = close + 1;
		if (after < p + alen && *after != ':') return -1;
		p++;
		hlen = (size_t)(close - p);
	} else {
		const char *colon = memchr(p, ':', alen);
		hlen = colon ? (size_t)(colon - p) : alen;
	}
	if (hlen == 0 || hlen >= cap) return -1;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	return 0;
}

int config_check_url(const char *key, const char *url, struct err *err)
{
	for (const char *c = url; *c; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
			return err_set(err, "%s '%s' contains a space or control character", key, url);
	int https = strncasecmp(url, "https://", 8) == 0;
	int http = strncasecmp(url, "http://", 7) == 0;
	if (!https && !http)
		return err_set(err, "%s '%s' must start with https:// (http:// is allowed only for a loopback "
		               "host: 127.0.0.0/8, ::1, localhost)", key, url);
	char host[256];
	if (url_host(url + (https ? 8 : 7), host, sizeof host) != 0)
		return err_set(err, "%s '%s' has no valid host", key, url);
	if (http && !host_is_loopback(host))
		return err_set(err, "%s '%s' uses plain http:// to '%s', which is not a loopback host; use https:// "
		               "(http:// is allowed only for 127.0.0.0/8, ::1 and localhost)", key, url, host);
	if (strpbrk(url, "?#"))
		return err_set(err, "%s '%s' has a query or fragment ('?' or '#'): give the base address only (entrasync "
		               "adds the paths and queries)", key, url);
	const char *auth = url + (https ? 8 : 7), *end = auth + strcspn(auth, "/");
	const char *at = memrchr(auth, '@', (size_t)(end - auth));
	if (at) auth = at + 1;   /* user:password@ is not a port */
	const char *close = memchr(auth, ']', (size_t)(end - auth));
	const char *colon = memchr(close ? close : auth, ':', (size_t)(end - (close ? close : auth)));
	if (colon) {
		long port = 0;
		const char *d = colon + 1;
		for (; d < end && isdigit((unsigned char)*d) && port <= 65535; d++) port = port * 10 + (*d - '0');
		if (d != end || port < 1 || port > 65535)
			return err_set(err, "%s '%s' has a port that is not a number from 1 to 65535", key, url);
	}
	return 0;
}

static int is_domain(const char *s)
{
	size_t total = strlen(s), labels = 0;
	if (total == 0 || total > 253) return 0;
	while (*s) {
		size_t n = 0;
		while (isalnum((unsigned char)s[n]) || s[n] == '-') n++;
		if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-') return 0;
		labels++;
		s += n;
		if (*s == '.') {
			s++;
			if (!*s) return 0;
		} else if (*s) {
			return 0;
		}
	}
	return labels >= 2;
}

int config_is_tenant_id(const char *s)
{
	return str_is_guid(s) || is_domain(s);
}

void config_tenant_id_fold(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

static const char *skip_dashes(const char *s)
{
	while (*s == '-') s++;
	return s;
}

const char *config_nearest(const char *given, const char *const *valid)
{
	const char *best = NULL, *prefix = NULL;
	size_t best_d = 3;
	const char *g = skip_dashes(given);
	size_t gl = strlen(g);
	for (size_t i = 0; valid[i]; i++) {
		size_t d = str_edit_distance(given, valid[i]);
		if (d < best_d && d < strlen(given)) {
			best = valid[i];
			best_d = d;
		}
		const char *v = skip_dashes(valid[i]);
		size_t vl = strlen(v);
		if (!prefix && gl >= 2 && vl > gl && strncmp(v, g, gl) == 0) prefix = valid[i];
		if (!prefix && vl >= 3 && gl > vl && strncmp(g, v, vl) == 0) prefix = valid[i];
	}
	return best ? best : prefix;
}

const char *config_tenant_nearest(const struct config *cfg, const char *given)
{
	/* each name and id in lower case (NULL-terminated for config_nearest),
	 * beside the configured text it came from */
	size_t n = 0;
	char **folded = xcalloc(2 * cfg->ntenants + 1, sizeof *folded);
	const char **orig = xcalloc(2 * cfg->ntenants + 1, sizeof *orig);
	for (size_t i = 0; i < cfg->ntenants; i++) {
		const char *both[2] = { cfg->tenants[i].name, cfg->tenants[i].id };
		for (int k = 0; k < 2; k++) {
			if (!both[k]) continue;
			folded[n] = xstrdup(both[k]);
			config_tenant_id_fold(folded[n]);
			orig[n++] = both[k];
		}
	}
	char *g = xstrdup(given);
	config_tenant_id_fold(g);
	const char *near = config_nearest(g, (const char *const *)folded);
	const char *out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (folded[i] == near) out = orig[i];
		free(folded[i]);
	}
	free(folded);
	free(orig);
	free(g);
	return out;
}

void config_tenant_unknown_hint(const struct config *cfg, const char *given, struct buf *out)
{
	const char *near = config_tenant_nearest(cfg, given);
	if (near) {
		buf_printf(out, "(did you mean '%s'?)", near);
		return;
	}
	if (!cfg->ntenants) {
		buf_printf(out, "(no tenants are configured)");
		return;
	}
	buf_printf(out, "(configured: ");
	size_t shown = cfg->ntenants < 10 ? cfg->ntenants : 10;
	for (size_t i = 0; i < shown; i++)
		buf_printf(out, "%s%s", i ? ", " : "", cfg->tenants[i].name ? cfg->tenants[i].name : cfg->tenants[i].id);
	if (cfg->ntenants > shown) buf_printf(out, " and %zu more: entrasync tenants lists them", cfg->ntenants - shown);
	buf_printf(out, ")");
}
