/* test_graph — the Graph client's pure parts: error bodies of every shape
 * in the reference examples, the permission named per endpoint, token
 * responses and AADSTS messages, base64url, the client-assertion JWT
 * (verified with OpenSSL: PS256 + x5t#S256 and RS256 + x5t), credential
 * loading errors, and the friendly SKU table. */
#include "t.h"
#include "graph/graph.h"
#include "http/http.h"
#include "util/config.h"
#include "util/log.h"
#include "util/skus.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- error bodies ------------------------------------------------------- */

/* A secret echoed by the server near the end of a long message: redacted
 * before the message is cut to struct graph_error's 512 bytes. */
TEST(graph_error_parse_redacts_before_it_cuts)
{
	log_secret_add("Xq7Q~entrasync.fake-demo-secret_0001");
	struct graph_error ge;
	char body[1400], pad[600];
	memset(pad, 'x', 495);
	pad[495] = '\0';
	snprintf(body, sizeof body, "{\"error\":{\"code\":\"BadRequest\",\"message\":\"%s Xq7Q~entrasync.fake-demo-secret_0001\"}}",
	         pad);
	CHECK_EQ_INT(graph_error_parse(400, body, strlen(body), &ge), 0);
	CHECK(!strstr(ge.message, "Xq7Q"));
	snprintf(body, sizeof body, "{\"error\":\"invalid_client\",\"error_description\":\"%s Xq7Q~entrasync.fake-demo-secret_0001\"}",
	         pad);
	CHECK_EQ_INT(graph_error_parse(401, body, strlen(body), &ge), 0);
	CHECK(!strstr(ge.message, "Xq7Q"));
	log_secrets_clear();
}

TEST(graph_error_parse_shapes)
{
	struct graph_error ge;
	/* error-sdk-design-badrequest.json: innerError with request-id */
	const char *a = "{\"error\":{\"code\":\"BadRequest\",\"message\":\"Resource not found for the segment 'mef'.\","
	                "\"innerError\":{\"date\":\"2021-07-02T01:40:19\",\"request-id\":\"1a0ffbc0-086f\","
	                "\"client-request-id\":\"225aed2b\"}}}";
	CHECK_EQ_INT(graph_error_parse(400, a, strlen(a), &ge), 0);
	CHECK_STR(ge.code, "BadRequest");
	CHECK_STR(ge.request_id, "1a0ffbc0-086f");
	CHECK_STR(ge.client_request_id, "225aed2b");
	CHECK_STR(ge.date, "2021-07-02T01:40:19");
	CHECK_EQ_INT(ge.status, 400);
	/* error-generic.json: requestId spelling */
	const char *b = "{\"error\":{\"code\":\"invalidRange\",\"message\":\"Uploaded fragment overlaps.\","
	                "\"innerError\":{\"requestId\":\"rid-2\",\"date\":\"date-time\"}}}";
	CHECK_EQ_INT(graph_error_parse(416, b, strlen(b), &ge), 0);
	CHECK_STR(ge.code, "invalidRange");
	CHECK_STR(ge.request_id, "rid-2");
	/* lower-case innererror with a nested, more specific code */
	const char *c = "{\"error\":{\"code\":\"badRequest\",\"message\":\"m\",\"innererror\":{\"code\":\"x\","
	                "\"innererror\":{\"code\":\"syncStateNotFound\"}}}}";
	CHECK_EQ_INT(graph_error_parse(400, c, strlen(c), &ge), 0);
	CHECK_STR(ge.inner_code, "syncStateNotFound");
	CHECK(graph_delta_needs_resync(&ge));
	/* error-429.json */
	const char *d = "{\"error\":{\"code\":\"TooManyRequests\",\"innerError\":{\"code\":\"429\",\"date\":\"2020\","
	                "\"message\":\"Please retry after\",\"request-id\":\"94fb\",\"status\":\"429\"},"
	                "\"message\":\"Please retry again later.\"}}";
	CHECK_EQ_INT(graph_error_parse(429, d, strlen(d), &ge), 0);
	CHECK_STR(ge.code, "TooManyRequests");
	CHECK_STR(ge.message, "Please retry again later.");
	CHECK(!graph_delta_needs_resync(&ge));
	/* token-error.json */
	const char *e = "{\"error\":\"invalid_scope\",\"error_description\":\"AADSTS70011: The provided value for the "
	                "input parameter 'scope' is not valid.\\r\\nTrace ID: 0000aaaa\\r\\nCorrelation ID: aaaa0000"
	                "\",\"error_codes\":[70011],\"timestamp\":\"YYYY-MM-DD HH:MM:SSZ\",\"trace_id\":\"0000aaaa\","
	                "\"correlation_id\":\"aaaa0000\"}";
	CHECK_EQ_INT(graph_error_parse(400, e, strlen(e), &ge), 0);
	CHECK_STR(ge.code, "invalid_scope");
	CHECK_EQ_INT(ge.aadsts, 70011);
	CHECK_STR(ge.request_id, "0000aaaa");
	CHECK(strstr(ge.message, "Trace ID") == NULL);  /* first line only */
	/* not an error body */
	CHECK(graph_error_parse(500, "<html>", 6, &ge) < 0);
	CHECK_EQ_INT(ge.status, 500);
	CHECK(graph_error_parse(502, NULL, 0, &ge) < 0);
	/* 410 means resync whatever the body */
	memset(&ge, 0, sizeof ge);
	ge.status = 410;
	CHECK(graph_delta_needs_resync(&ge));
	const char *f = "{\"error\":{\"code\":\"resyncRequired\",\"message\":\"reset\"}}";
	CHECK_EQ_INT(graph_error_parse(400, f, strlen(f), &ge), 0);
	CHECK(graph_delta_needs_resync(&ge));
}

TEST(graph_permission_per_endpoint)
{
	CHECK_STR(graph_permission_for("/users/delta?$select=id"), "User.Read.All");
	CHECK_STR(graph_permission_for("https://graph.microsoft.com/v1.0/users/delta?$skiptoken=x"), "User.Read.All");
	CHECK_STR(graph_permission_for("/groups/abc/transitiveMembers?$select=id"), "GroupMember.Read.All");
	CHECK_STR(graph_permission_for("/subscribedSkus"), "Organization.Read.All");
	CHECK_STR(graph_permission_for("/organization"), "Organization.Read.All");
	CHECK_STR(graph_permission_for("/security/secureScores?$top=90"), "SecurityEvents.Read.All");
	CHECK_STR(graph_permission_for("/contracts"), "Directory.Read.All");
	CHECK(graph_permission_for("/usersx") == NULL);
	CHECK(graph_permission_for("/me") == NULL);
}

/* ---- tokens --------------------------------------------------------------- */

TEST(graph_token_parse_response)
{
	struct err err;
	char *tok = NULL;
	double ex = 0;
	const char *ok = "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"eyJ0eXAi.abc.def\"}";
	REQUIRE_OK(graph_token_parse(ok, strlen(ok), &tok, &ex, &err), &err);
	CHECK_STR(tok, "eyJ0eXAi.abc.def");
	CHECK(ex == 3599);
	free(tok);
	const char *str = "{\"token_type\":\"Bearer\",\"expires_in\":\"120\",\"access_token\":\"t\"}";
	REQUIRE_OK(graph_token_parse(str, strlen(str), &tok, &ex, &err), &err);
	CHECK(ex == 120);
	free(tok);
	const char *none = "{\"token_type\":\"Bearer\",\"expires_in\":3599}";
	CHECK(graph_token_parse(none, strlen(none), &tok, &ex, &err) < 0);
	CHECK_CONTAINS(err.msg, "access_token");
	CHECK(tok == NULL);
	const char *pop = "{\"token_type\":\"pop\",\"access_token\":\"t\"}";
	CHECK(graph_token_parse(pop, strlen(pop), &tok, &ex, &err) < 0);
	CHECK(graph_token_parse("not json", 8, &tok, &ex, &err) < 0);
}

TEST(graph_base64url_vectors)
{
	struct buf b = { 0 };
	graph_base64url((const unsigned char *)"", 0, &b);
	CHECK_STR(b.data ? b.data : "", "");
	buf_reset(&b);
	graph_base64url((const unsigned char *)"f", 1, &b);
	CHECK_STR(b.data, "Zg");
	buf_reset(&b);
	graph_base64url((const unsigned char *)"fo", 2, &b);
	CHECK_STR(b.data, "Zm8");
	buf_reset(&b);
	graph_base64url((const unsigned char *)"foo", 3, &b);
	CHECK_STR(b.data, "Zm9v");
	buf_reset(&b);
	const unsigned char bin[] = { 0xfb, 0xff, 0xfe };
	graph_base64url(bin, 3, &b);
	CHECK_STR(b.data, "-__-");
	buf_free(&b);
}

/* A client with a secret on a fresh engine (no network used). */
struct fixture {
	struct http_engine *e;
	struct graph_client *gc;
	struct config_graph cfg;
};

static int fixture_open(struct fixture *f, const char *cert, const char *key, const char *alg, struct err *err)
{
	memset(f, 0, sizeof *f);
	f->cfg.client_id = (char *)(uintptr_t)"aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb";
	f->cfg.client_secret = cert ? NULL : (char *)(uintptr_t)"s3cr3t-value";
	f->cfg.certificate = (char *)(uintptr_t)cert;
	f->cfg.private_key = (char *)(uintptr_t)key;
	f->cfg.jwt_alg = (char *)(uintptr_t)alg;
	f->cfg.authority = (char *)(uintptr_t)"https://login.example.test/";
	f->cfg.endpoint = (char *)(uintptr_t)"https://graph.example.test";
	f->e = http_engine_new(NULL, err);
	if (!f->e) return -1;
	if (graph_client_new(&(struct graph_client_opts){ .cfg = &f->cfg, .engine = f->e }, &f->gc, err) != 0) {
		http_engine_free(f->e);
		f->e = NULL;
		return -1;
	}
	return 0;
}

static void fixture_close(struct fixture *f)
{
	graph_client_free(f->gc);
	http_engine_free(f->e);
}

TEST(graph_token_error_messages)
{
	struct fixture f;
	struct err err;
	REQUIRE_OK(fixture_open(&f, NULL, NULL, NULL, &err), &err);
	struct graph_error ge = { .status = 400, .aadsts = 700016 };
	snprintf(ge.code, sizeof ge.code, "unauthorized_client");
	snprintf(ge.request_id, sizeof ge.request_id, "trace-1");
	graph_token_error_message(f.gc, "contoso.onmicrosoft.com", &ge, &err);
	CHECK_CONTAINS(err.msg, "AADSTS700016");
	CHECK_CONTAINS(err.msg, "https://login.example.test/contoso.onmicrosoft.com/adminconsent?client_id="
	                        "aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb");
	CHECK_CONTAINS(err.msg, "trace id trace-1");
	ge.aadsts = 7000215;
	graph_token_error_message(f.gc, "t1", &ge, &err);
	CHECK_CONTAINS(err.msg, "graph.client_secret");
	CHECK_CONTAINS(err.msg, "Value, not its Secret ID");
	ge.aadsts = 7000222;
	graph_token_error_message(f.gc, "t1", &ge, &err);
	CHECK_CONTAINS(err.msg, "expired");
	ge.aadsts = 65001;
	graph_token_error_message(f.gc, "t1", &ge, &err);
	CHECK_CONTAINS(err.msg, "consent");
	CHECK_CONTAINS(err.msg, "/t1/adminconsent?client_id=");
	ge.aadsts = 90002;
	graph_token_error_message(f.gc, "nosuch.example", &ge, &err);
	CHECK_CONTAINS(err.msg, "no such tenant");
	CHECK_CONTAINS(err.msg, "nosuch.example");
	ge.aadsts = 12345;
	snprintf(ge.message, sizeof ge.message, "AADSTS12345: something");
	graph_token_error_message(f.gc, "t1", &ge, &err);
	CHECK_CONTAINS(err.msg, "AADSTS12345: something");
	CHECK_CONTAINS(err.msg, "HTTP 400");
	char *url = graph_admin_consent_url(f.gc, "t2");
	CHECK_STR(url, "https://login.example.test/t2/adminconsent?client_id=aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb");
	free(url);
	fixture_close(&f);
}

/* Tenants by id: one per id whatever its case, the same one each time,
 * over enough of them that the index is rebuilt a few times. */
TEST(graph_tenant_get_one_per_id)
{
	struct fixture f;
	struct err err;
	REQUIRE_OK(fixture_open(&f, NULL, NULL, NULL, &err), &err);
	struct graph_tenant *first[300];
	char id[64];
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof id, "Tenant-%03d.onmicrosoft.com", i);
		first[i] = graph_tenant_get(f.gc, id);
		REQUIRE(first[i] != NULL);
		CHECK_STR(graph_tenant_id(first[i]), id);
	}
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof id, "TENANT-%03d.ONMICROSOFT.COM", i);
		CHECK(graph_tenant_get(f.gc, id) == first[i]);
		snprintf(id, sizeof id, "tenant-%03d.onmicrosoft.com", i);
		CHECK(graph_tenant_get(f.gc, id) == first[i]);
	}
	for (int i = 1; i < 300; i++) CHECK(first[i] != first[i - 1]);
	fixture_close(&f);
}

TEST(graph_client_needs_a_credential)
{
	struct err err;
	struct config_graph cfg = { .client_id = (char *)(uintptr_t)"cid" };
	struct http_engine *e = http_engine_new(NULL, &err);
	REQUIRE(e);
	struct graph_client *gc = NULL;
	CHECK(graph_client_new(&(struct graph_client_opts){ .cfg = &cfg, .engine = e }, &gc, &err) < 0);
	CHECK_CONTAINS(err.msg, "graph.client_secret");
	CHECK(gc == NULL);
	http_engine_free(e);
}

/* ---- certificate JWT ------------------------------------------------------ */

/* Writes a self-signed RSA certificate and its key as PEM into dir. */
/* A self-signed RSA certificate valid from now + from to now + to (seconds),
 * and its key, as PEM files cert.pem and key.pem in dir. */
static int make_cert_valid(const char *dir, long from, long to, char *cert_path, char *key_path, size_t cap,
                           EVP_PKEY **pkey_out)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	if (!k) return -1;
	X509 *x = X509_new();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, k);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"entrasync-test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_sign(x, k, EVP_sha256());
	snprintf(cert_path, cap, "%s/cert.pem", dir);
	snprintf(key_path, cap, "%s/key.pem", dir);
	FILE *f = fopen(cert_path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key_path, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	*pkey_out = k;
	return 0;
}

static int make_cert(const char *dir, char *cert_path, char *key_path, size_t cap, EVP_PKEY **pkey_out)
{
	return make_cert_valid(dir, 0, 3600, cert_path, key_path, cap, pkey_out);
}

static int b64url_val(int c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '-') return 62;
	if (c == '_') return 63;
	return -1;
}

/* Decodes n chars of base64url into out (new, NUL-terminated); *len bytes. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *len)
{
	unsigned char *out = malloc(n * 3 / 4 + 4);
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)s[i]);
		if (v < 0) { free(out); return NULL; }
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	out[o] = 0;
	*len = o;
	return out;
}

static void check_jwt(const char *jwt, EVP_PKEY *pub, const char *cert_path, bool rs256)
{
	const char *d1 = strchr(jwt, '.');
	REQUIRE(d1);
	const char *d2 = strchr(d1 + 1, '.');
	REQUIRE(d2);
	CHECK(strchr(d2 + 1, '.') == NULL);
	CHECK(strchr(jwt, '=') == NULL && strchr(jwt, '+') == NULL && strchr(jwt, '/') == NULL);
	size_t hl, cl, sl;
	unsigned char *h = b64url_decode(jwt, (size_t)(d1 - jwt), &hl);
	unsigned char *c = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cl);
	unsigned char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
	REQUIRE(h && c && sig);
	cJSON *hj = cJSON_Parse((char *)h), *cj = cJSON_Parse((char *)c);
	REQUIRE(hj && cj);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(hj, "alg")), rs256 ? "RS256" : "PS256");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(hj, "typ")), "JWT");
	/* thumbprint of the certificate DER */
	FILE *f = fopen(cert_path, "r");
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdn = 0;
	X509_digest(x, rs256 ? EVP_sha1() : EVP_sha256(), md, &mdn);
	X509_free(x);
	struct buf want = { 0 };
	graph_base64url(md, mdn, &want);
	const char *thumb = cJSON_GetStringValue(cJSON_GetObjectItem(hj, rs256 ? "x5t" : "x5t#S256"));
	CHECK_STR(thumb, want.data);
	CHECK(cJSON_GetObjectItem(hj, rs256 ? "x5t#S256" : "x5t") == NULL);
	buf_free(&want);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cj, "aud")),
	          "https://login.example.test/contoso.onmicrosoft.com/oauth2/v2.0/token");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cj, "iss")), "aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cj, "sub")), "aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb");
	const char *jti = cJSON_GetStringValue(cJSON_GetObjectItem(cj, "jti"));
	CHECK(jti && strlen(jti) == 36 && jti[14] == '4');
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cj, "nbf")) == 1700000000);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cj, "exp")) == 1700000300);
	/* signature over "header.claims" */
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	CHECK(EVP_DigestVerifyInit(m, &pctx, EVP_sha256(), NULL, pub) == 1);
	if (!rs256) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
	}
	CHECK(EVP_DigestVerify(m, sig, sl, (const unsigned char *)jwt, (size_t)(d2 - jwt)) == 1);
	EVP_MD_CTX_free(m);
	/* and a PSS signature must not verify as PKCS#1 v1.5 (or vice versa) */
	m = EVP_MD_CTX_new();
	pctx = NULL;
	EVP_DigestVerifyInit(m, &pctx, EVP_sha256(), NULL, pub);
	if (rs256) EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
	CHECK(EVP_DigestVerify(m, sig, sl, (const unsigned char *)jwt, (size_t)(d2 - jwt)) != 1);
	EVP_MD_CTX_free(m);
	cJSON_Delete(hj);
	cJSON_Delete(cj);
	free(h);
	free(c);
	free(sig);
}

TEST(graph_client_assertion_ps256_and_rs256)
{
	char cert[600], key[600];
	EVP_PKEY *k = NULL;
	REQUIRE(make_cert(t_tmpdir(), cert, key, sizeof cert, &k) == 0);
	struct err err;
	for (int rs = 0; rs < 2; rs++) {
		struct fixture f;
		REQUIRE_OK(fixture_open(&f, cert, key, rs ? "RS256" : NULL, &err), &err);
		char *jwt = NULL;
		REQUIRE_OK(graph_client_assertion(f.gc, "contoso.onmicrosoft.com", 1700000000.7, &jwt, &err), &err);
		check_jwt(jwt, k, cert, rs == 1);
		free(jwt);
		fixture_close(&f);
	}
	EVP_PKEY_free(k);
}

/* A certificate or key that cannot be used is no config error: the client
 * is made, and every tenant's token fails at once with the reason, no
 * request sent (so each tenant of a run fails with it, and the run is
 * recorded). Returns the token's failure in err: -1 when it failed so,
 * 0 when a token request went out (the credential was usable). */
static int token_refused_offline(const char *cert, const char *key, struct err *err)
{
	struct fixture f;
	if (fixture_open(&f, cert, key, NULL, err) != 0) {
		t_fail(__FILE__, __LINE__, "no client for an unusable certificate: %s", err->msg);
		return 0;
	}
	struct graph_tenant *t = graph_tenant_get(f.gc, "contoso.example");
	graph_tenant_token_start(t);
	struct graph_tenant_counters c;
	graph_tenant_counters(t, &c);
	const char *why = graph_tenant_token_error(t);
	int rc = why && c.token_requests == 0 ? -1 : 0;
	if (why) err_set(err, "%s", why);
	if (c.token_requests) {   /* a request in flight must end before the client goes */
		struct err ignored;
		http_run(f.e, &ignored);
	}
	fixture_close(&f);
	return rc;
}

TEST(graph_client_certificate_errors)
{
	char cert[600], key[600], cert2[600], key2[600];
	EVP_PKEY *k = NULL, *k2 = NULL;
	REQUIRE(make_cert(t_tmpdir(), cert, key, sizeof cert, &k) == 0);
	REQUIRE(make_cert(t_tmpdir(), cert2, key2, sizeof cert2, &k2) == 0);
	struct fixture f;
	struct err err;
	CHECK(token_refused_offline(cert, key2, &err) < 0);
	CHECK_CONTAINS(err.msg, "tenant contoso.example: graph.private_key");
	CHECK_CONTAINS(err.msg, "does not belong to graph.certificate");
	CHECK(fixture_open(&f, cert, key, "HS256", &err) < 0);   /* the config itself is wrong: no client */
	CHECK_CONTAINS(err.msg, "graph.jwt_alg");
	CHECK(token_refused_offline(key, key, &err) < 0);  /* a key is not a certificate */
	CHECK_CONTAINS(err.msg, "no PEM certificate");
	CHECK(token_refused_offline(cert, cert, &err) < 0);  /* a certificate is not a key */
	CHECK_CONTAINS(err.msg, "holds a certificate, not a private key: name the key file there");
	CHECK(token_refused_offline("/nonexistent/cert.pem", key, &err) < 0);
	CHECK_CONTAINS(err.msg, "graph.certificate /nonexistent/cert.pem: cannot open it");
	/* an encrypted key is refused with the way out */
	char enc[700];
	snprintf(enc, sizeof enc, "%s/enc.pem", t_tmpdir());
	FILE *fp = fopen(enc, "w");
	PEM_write_PrivateKey(fp, k, EVP_aes_128_cbc(), (const unsigned char *)"pw", 2, NULL, NULL);
	fclose(fp);
	CHECK(token_refused_offline(cert, enc, &err) < 0);
	CHECK_CONTAINS(err.msg, "is encrypted (a passphrase), which is not supported: `openssl pkey -in");
	/* an empty key file says so */
	char empty[700];
	snprintf(empty, sizeof empty, "%s/empty.pem", t_tmpdir());
	fp = fopen(empty, "w");
	fclose(fp);
	CHECK(token_refused_offline(cert, empty, &err) < 0);
	CHECK_CONTAINS(err.msg, "graph.private_key");
	CHECK_CONTAINS(err.msg, "is empty");
	/* key and certificate in one file work */
	char both[700];
	snprintf(both, sizeof both, "%s/both.pem", t_tmpdir());
	char *a = NULL, *b = NULL;
	size_t al, bl;
	REQUIRE_OK(file_read(cert, &a, &al, &err), &err);
	REQUIRE_OK(file_read(key, &b, &bl, &err), &err);
	fp = fopen(both, "w");
	fwrite(b, 1, bl, fp);
	fwrite(a, 1, al, fp);
	fclose(fp);
	free(a);
	free(b);
	CHECK_OK(fixture_open(&f, both, NULL, NULL, &err), &err);
	if (f.gc) fixture_close(&f);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

/* What `entrasync check` reads: an expired certificate is refused with the
 * way out, one about to expire passes with its date, and binary files (.pfx,
 * .cer) are named as such with the commands that make PEM of them. */
TEST(graph_credentials_check_for_check)
{
	char cert[600], key[600], der[700];
	EVP_PKEY *k = NULL;
	struct err err;
	double not_after = 0;
	char id[] = "aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb", secret[] = "s";
	struct config_graph g = { .client_id = id, .client_secret = secret };
	CHECK_OK(graph_credentials_check(&g, 0, &not_after, &err), &err);       /* a client secret: nothing to read */
	CHECK(not_after == -1);
	g.client_secret = NULL;
	REQUIRE(make_cert_valid(t_tmpdir(), -2 * 86400, -86400, cert, key, sizeof cert, &k) == 0);
	g.certificate = cert;
	g.private_key = key;
	CHECK(graph_credentials_check(&g, 0, &not_after, &err) == GRAPH_CRED_UNUSABLE);
	CHECK_CONTAINS(err.msg, "expired on ");
	CHECK_CONTAINS(err.msg, "upload a new certificate to the app registration");
	/* its notAfter is still told (the metrics keep the expiry gauge) */
	CHECK(fabs(not_after - (time_now() - 86400.0)) < 120);
	CHECK(fabs(graph_certificate_not_after(&g) - (time_now() - 86400.0)) < 120);
	/* a client is made for it, whose tokens fail with the reason */
	CHECK(token_refused_offline(cert, key, &err) < 0);
	CHECK_CONTAINS(err.msg, "expired on ");
	EVP_PKEY_free(k);
	/* not valid yet (beyond a few minutes of clock skew) */
	REQUIRE(make_cert_valid(t_tmpdir(), 2 * 86400, 5 * 86400, cert, key, sizeof cert, &k) == 0);
	CHECK(graph_credentials_check(&g, 0, &not_after, &err) < 0);
	CHECK_CONTAINS(err.msg, "is not valid before ");
	CHECK(token_refused_offline(cert, key, &err) < 0);
	CHECK_CONTAINS(err.msg, "is not valid before ");
	EVP_PKEY_free(k);
	REQUIRE(make_cert_valid(t_tmpdir(), 60, 5 * 86400, cert, key, sizeof cert, &k) == 0);
	CHECK_OK(graph_credentials_check(&g, 0, &not_after, &err), &err);   /* a minute ahead: clock skew */
	EVP_PKEY_free(k);
	g.certificate = (char *)(uintptr_t)"/nonexistent/cert.pem";
	CHECK(graph_certificate_not_after(&g) == -1);
	g.certificate = cert;
	REQUIRE(make_cert_valid(t_tmpdir(), 0, 5 * 86400, cert, key, sizeof cert, &k) == 0);
	CHECK_OK(graph_credentials_check(&g, 0, &not_after, &err), &err);
	CHECK(fabs(not_after - (time_now() + 5 * 86400.0)) < 120);
	/* the certificate as DER, then the key as DER */
	snprintf(der, sizeof der, "%s/cert.der", t_tmpdir());
	FILE *f = fopen(cert, "r");
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	f = fopen(der, "wb");
	i2d_X509_fp(f, x);
	fclose(f);
	X509_free(x);
	g.certificate = der;
	CHECK(graph_credentials_check(&g, 0, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "graph.certificate");
	CHECK_CONTAINS(err.msg, "is a binary file (a PKCS#12 .pfx, or a DER .cer), not PEM");
	CHECK_CONTAINS(err.msg, "openssl pkcs12 -in FILE -clcerts -nokeys");
	g.certificate = cert;
	snprintf(der, sizeof der, "%s/key.der", t_tmpdir());
	f = fopen(der, "wb");
	i2d_PrivateKey_fp(f, k);
	fclose(f);
	g.private_key = der;
	CHECK(graph_credentials_check(&g, 0, NULL, &err) < 0);
	CHECK_CONTAINS(err.msg, "graph.private_key");
	CHECK_CONTAINS(err.msg, "is a DER private key, not PEM: `openssl pkey -inform der -in");
	EVP_PKEY_free(k);
}

/* An RSA certificate named cn, valid from now + from to now + to (seconds),
 * for *key (a new key when NULL), signed by issuer with issuer_key, or
 * self-signed when issuer is NULL. */
static X509 *cert_new(const char *cn, long from, long to, X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY **key)
{
	if (!*key) *key = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0xffffff) + 2);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, *key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_sign(x, issuer ? issuer_key : *key, EVP_sha256());
	return x;
}

/* Writes the certificates (NULL-terminated), in that order, as one PEM file
 * NAME in the test's scratch folder; its path into path. */
static void pem_write_certs(const char *name, X509 *const *certs, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", t_tmpdir(), name);
	FILE *f = fopen(path, "w");
	for (size_t i = 0; certs[i]; i++) PEM_write_X509(f, certs[i]);
	fclose(f);
}

/* Writes key as the PEM file NAME (mode 0600) in the test's scratch folder;
 * its path into path. */
static void pem_write_key(const char *name, EVP_PKEY *key, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", t_tmpdir(), name);
	FILE *f = fopen(path, "w");
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	chmod(path, 0600);
}

/* A certificate file holding a chain (the app's certificate with its CA,
 * in either order, as exports make them): the certificate of the private
 * key is the one signed with and thumbprinted, and its dates (not the
 * CA's) are the ones checked and told; a chain with no certificate of the
 * key says so, naming both files. */
TEST(graph_certificate_chain_takes_the_keys_certificate)
{
	EVP_PKEY *ca_key = NULL, *leaf_key = NULL, *other_key = NULL, *old_key = NULL;
	X509 *ca = cert_new("entrasync test CA", 0, 100 * 86400L, NULL, NULL, &ca_key);
	X509 *leaf = cert_new("entrasync app", 0, 5 * 86400L, ca, ca_key, &leaf_key);
	X509 *other = cert_new("another app", 0, 100 * 86400L, NULL, NULL, &other_key);
	X509 *old = cert_new("entrasync app", -3 * 86400L, -86400L, ca, ca_key, &leaf_key);  /* the key's, expired */
	X509 *expired = cert_new("expired app", -3 * 86400L, -86400L, ca, ca_key, &old_key);
	char leaf_pem[700], key[700], ca_first[700], leaf_first[700], none[700], renewed[700], exp_chain[700],
	     exp_key[700];
	pem_write_certs("leaf.pem", (X509 *const[]){ leaf, NULL }, leaf_pem, sizeof leaf_pem);
	pem_write_certs("ca_first.pem", (X509 *const[]){ ca, leaf, NULL }, ca_first, sizeof ca_first);
	pem_write_certs("leaf_first.pem", (X509 *const[]){ leaf, ca, NULL }, leaf_first, sizeof leaf_first);
	pem_write_certs("none.pem", (X509 *const[]){ ca, other, NULL }, none, sizeof none);
	pem_write_certs("renewed.pem", (X509 *const[]){ ca, old, leaf, NULL }, renewed, sizeof renewed);
	pem_write_certs("expired.pem", (X509 *const[]){ ca, expired, NULL }, exp_chain, sizeof exp_chain);
	pem_write_key("leaf.key", leaf_key, key, sizeof key);
	pem_write_key("expired.key", old_key, exp_key, sizeof exp_key);
	struct err err;
	double not_after = 0, leaf_after = time_now() + 5 * 86400.0;
	char id[] = "aaaaaaaa-1111-2222-3333-bbbbbbbbbbbb";
	struct config_graph g = { .client_id = id, .certificate = ca_first, .private_key = key };
	/* the CA first: the leaf's thumbprint (x5t#S256, and x5t for RS256) and signature */
	const char *const files[] = { ca_first, leaf_first, renewed };
	for (size_t i = 0; i < 3; i++)
		for (int rs = 0; rs < 2; rs++) {
			struct fixture fx;
			REQUIRE_OK(fixture_open(&fx, files[i], key, rs ? "RS256" : NULL, &err), &err);
			char *jwt = NULL;
			CHECK_OK(graph_client_assertion(fx.gc, "contoso.onmicrosoft.com", 1700000000.7, &jwt, &err), &err);
			if (jwt) check_jwt(jwt, leaf_key, leaf_pem, rs == 1);
			free(jwt);
			fixture_close(&fx);
		}
	/* its dates are the leaf's, for check, status, the metrics and the warnings */
	CHECK_OK(graph_credentials_check(&g, 0, &not_after, &err), &err);
	CHECK(fabs(not_after - leaf_after) < 120);
	CHECK(fabs(graph_certificate_not_after(&g) - leaf_after) < 120);
	g.certificate = renewed;   /* the key's expired certificate before its renewal: the valid one */
	CHECK_OK(graph_credentials_check(&g, 0, &not_after, &err), &err);
	CHECK(fabs(not_after - leaf_after) < 120);
	/* no certificate of the key in the file */
	g.certificate = none;
	CHECK(graph_credentials_check(&g, 0, &not_after, &err) == GRAPH_CRED_UNUSABLE);
	CHECK_CONTAINS(err.msg, "no certificate in graph.certificate ");
	CHECK_CONTAINS(err.msg, "none.pem (2 in it) matches the private key in graph.private_key ");
	CHECK_CONTAINS(err.msg, "leaf.key: the file must hold the certificate uploaded to the app registration");
	CHECK(not_after == -1);
	CHECK(graph_certificate_not_after(&g) == -1);
	CHECK(token_refused_offline(none, key, &err) < 0);
	CHECK_CONTAINS(err.msg, "no certificate in graph.certificate ");
	/* the key's certificate expired, the CA before it valid: expired, on the key's certificate's day */
	g.certificate = exp_chain;
	g.private_key = exp_key;
	CHECK(graph_credentials_check(&g, 0, &not_after, &err) == GRAPH_CRED_UNUSABLE);
	char day[16], want[64];
	time_day(time_now() - 86400.0, day, sizeof day);
	snprintf(want, sizeof want, "expired.pem expired on %s", day);
	CHECK_CONTAINS(err.msg, want);
	CHECK(fabs(not_after - (time_now() - 86400.0)) < 120);
	CHECK(fabs(graph_certificate_not_after(&g) - (time_now() - 86400.0)) < 120);
	X509 *all[] = { ca, leaf, other, old, expired };
	for (size_t i = 0; i < 5; i++) X509_free(all[i]);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(old_key);
}

/* ---- SKUs ------------------------------------------------------------------ */

TEST(graph_skus_table)
{
	CHECK_EQ_INT(skus_table_len, 619);
	for (size_t i = 1; i < skus_table_len; i++) CHECK(strcmp(skus_table[i - 1].sku_id, skus_table[i].sku_id) < 0);
	const struct sku_info *s = skus_find("C7DF2760-2C81-4EF7-B578-5B5392B571DF ");
	REQUIRE(s);
	CHECK_STR(s->part_number, "ENTERPRISEPREMIUM");
	CHECK_STR(s->name, "Office 365 E5");
	/* String_Id with a trailing NBSP, tab and space in the CSV */
	CHECK(skus_find_part("MCOCAP_FACULTY") != NULL);
	CHECK(skus_find_part("RIGHTSMANAGEMENT_CE_GOV") != NULL);
	CHECK(skus_find_part("AAD_PREMIUM_USGOV_GCCHIGH") != NULL);
	CHECK(skus_find_part("MCOCAP_FACULTY\xc2\xa0") != NULL);
	for (size_t i = 0; i < skus_table_len; i++) {
		const char *p = skus_table[i].part_number;
		size_t n = strlen(p);
		CHECK(n > 0 && p[n - 1] != ' ' && p[n - 1] != '\t' && (unsigned char)p[n - 1] != 0xa0);
	}
	/* several display names: the first (current) one */
	s = skus_find("4b74a65c-8b4a-4fc8-9f6b-5177ed11ddfa");
	REQUIRE(s);
	CHECK_STR(s->name, "Microsoft Copilot Studio User License");
	/* fallbacks */
	CHECK_STR(skus_friendly_name("00000000-0000-0000-0000-000000000000", "CONTOSO_SPECIAL"), "CONTOSO_SPECIAL");
	CHECK_STR(skus_friendly_name(NULL, "ENTERPRISEPREMIUM"), "Office 365 E5");
	CHECK_STR(skus_friendly_name("c7df2760-2c81-4ef7-b578-5b5392b571df", "WRONG"), "Office 365 E5");
	CHECK_STR(skus_friendly_name("abc", NULL), "abc");
	CHECK_STR(skus_friendly_name(NULL, NULL), "unknown SKU");
	CHECK(skus_find(NULL) == NULL);
	CHECK(skus_find("0123456789012345678901234567890123456789012345678901234567890123456789") == NULL);
}
