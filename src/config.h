/* config — the runtime configuration (a trusted Lua file, see README):
 * plain C data, filled by the loader in src/lua_config.c (the scripting
 * layer, since only it includes lua.h) and read by every other layer.
 * All strings are owned by the struct and freed by config_free. Secrets
 * (client_secret, private_key, api_key) are registered with log_secret_add
 * as soon as they are read. */
#ifndef ENTRASYNC_CONFIG_H
#define ENTRASYNC_CONFIG_H

#include <stddef.h>
#include "util.h"

struct config_graph {
	char *client_id;
	char *client_secret;      /* or certificate + private_key */
	char *certificate;        /* PEM file path (resolved) */
	char *private_key;        /* PEM file path (resolved) */
	char *jwt_alg;            /* "PS256" (default) or "RS256" */
	char *authority;          /* default https://login.microsoftonline.com */
	char *endpoint;           /* default https://graph.microsoft.com */
	char *ca_file;            /* extra trust anchor (resolved path) or NULL */
};

struct config_syncro {
	char *base_url;           /* https://SUB.syncromsp.com/api/v1 (from subdomain too) */
	char *api_key;
	double requests_per_minute; /* default 180 */
	char *ca_file;
};

struct config_tenant {
	char *id;                 /* GUID or domain */
	char *name;               /* display name, may be NULL */
	long long syncro_customer_id;  /* 0 when mapped by name */
	char *syncro_customer;    /* business_name, or NULL */
	char *policy;             /* resolved path; defaults to config.policy */
	int line;                 /* line of this entry in the config file */
};

struct config_limits {
	long long instructions;   /* per policy call; default 10,000,000 */
	size_t memory_bytes;      /* per Lua state; default 64 MiB */
};

struct config {
	char *path;               /* the config file, as given */
	char *dir;                /* its folder; relative paths resolve here */
	char *database;           /* resolved; default state/entrasync.db */
	char *policy;             /* resolved default policy path, or NULL */
	struct config_graph graph;
	struct config_syncro syncro;
	struct config_tenant *tenants;
	size_t ntenants;
	char *csp_partner_tenant; /* NULL when unset */
	struct config_limits limits;
};

/* Where the config is: explicit path, else $ENTRASYNC_CONFIG, else
 * ./entrasync.lua. Returns a pointer to a static or argument string. */
const char *config_locate(const char *explicit_path);

/* Loads and validates the config file at path into *cfg (zeroed first).
 * Errors name the file and line ("entrasync.lua:12: unknown key 'tenant'
 * in the top level (did you mean 'tenants'?)"). Implemented in lua_config.c. */
int config_load(const char *path, struct config *cfg, struct err *err);
void config_free(struct config *cfg);

/* true when url is https://, or http:// to a loopback host
 * (127.0.0.0/8, ::1, localhost). Else fills err naming the key. */
int config_check_url(const char *key, const char *url, struct err *err);

#endif
