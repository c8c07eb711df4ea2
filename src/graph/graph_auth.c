/* graph_auth — app-only tokens per customer tenant: the OAuth2 client
 * credentials grant against {authority}/{tenant}/oauth2/v2.0/token with a
 * client secret or a certificate-signed client assertion (PS256 + x5t#S256,
 * or RS256 + x5t), a memory-only token cache renewed before expiry, and the
 * identity platform's AADSTS errors turned into actionable messages. */
#include "graph/graph_internal.h"
#include "util/json_scan.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "util/log.h"

/* ---- small helpers -------------------------------------------------------- */

void graph_base64url(const unsigned char *data, size_t len, struct buf *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	buf_add(out, "", 0);  /* terminated even when len is 0 */
	buf_reserve(out, (len + 2) / 3 * 4 + 1);
	size_t i = 0;
	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
		char q[4] = { tab[v >> 18 & 63], tab[v >> 12 & 63], tab[v >> 6 & 63], tab[v & 63] };
		buf_add(out, q, 4);
	}
	if (len - i == 1) {
		unsigned v = (unsigned)data[i] << 16;
		char q[2] = { tab[v >> 18 & 63], tab[v >> 12 & 63] };
		buf_add(out, q, 2);
	} else if (len - i == 2) {
		unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8;
		char q[3] = { tab[v >> 18 & 63], tab[v >> 12 & 63], tab[v >> 6 & 63] };
		buf_add(out, q, 3);
	}
}

/* application/x-www-form-urlencoded value, appended to out. */
static void form_escape(const char *s, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			buf_addc(out, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			buf_add(out, e, 3);
		}
	}
}

/* The first OpenSSL error as text ("" when none); clears the queue. */
static const char *ssl_error(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();
	buf[0] = '\0';
	if (e) ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

/* ---- credentials ----------------------------------------------------------- */

/* A passphrase callback that refuses: encrypted keys are not supported. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

static int digest_b64(X509 *cert, const EVP_MD *md, char **out, struct err *err)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!X509_digest(cert, md, d, &n)) return err_set(err, "could not hash the certificate");
	struct buf b = { 0 };
	graph_base64url(d, n, &b);
	*out = buf_steal(&b);
	return 0;
}

/* The file begins like DER (an ASN.1 SEQUENCE: 0x30), as a PKCS#12 .pfx or a
 * .cer/.der export does, where PEM begins with text. */
static bool file_is_der(const char *path)
{
	unsigned char b = 0;
	FILE *f = fopen(path, "rb");
	if (!f) return false;
	bool der = fread(&b, 1, 1, f) == 1 && b == 0x30;
	fclose(f);
	return der;
}

/* How to make the PEM files entrasync reads from what Windows and Azure hand out. */
#define PFX_ADVICE "`openssl pkcs12 -in FILE -clcerts -nokeys -out app.crt.pem` and `openssl pkcs12 -in FILE " \
	"-nocerts -nodes -out app.key.pem` make the certificate and the key (a .cer: `openssl x509 -inform der -in " \
	"FILE -out app.crt.pem`)"

/* Why the file at graph.private_key gave no key, into err: empty, a DER
 * key (not PEM), a .pfx, a certificate in the key's place, an encrypted
 * key, or no key at all. */
static void key_file_wrong(const char *key_path, struct err *err)
{
	char *text = NULL;
	size_t len = 0;
	struct err rerr;
	(void)file_read(key_path, &text, &len, &rerr);
	if (text && len == 0) {
		err_set(err, "graph.private_key %s is empty", key_path);
	} else if (file_is_der(key_path)) {
		BIO *b = BIO_new_file(key_path, "rb");
		EVP_PKEY *k = b ? d2i_PrivateKey_bio(b, NULL) : NULL;
		if (k)
			err_set(err, "graph.private_key %s is a DER private key, not PEM: `openssl pkey -inform der -in %s -out "
			        "app.key.pem` makes the PEM one", key_path, key_path);
		else
			err_set(err, "graph.private_key %s is a binary file (a PKCS#12 .pfx), not PEM: " PFX_ADVICE, key_path);
		EVP_PKEY_free(k);
		BIO_free(b);
		ERR_clear_error();
	} else if (text && strstr(text, "-----BEGIN CERTIFICATE-----") && !strstr(text, "PRIVATE KEY-----")) {
		err_set(err, "graph.private_key %s holds a certificate, not a private key: name the key file there (and the "
		        "certificate in graph.certificate)", key_path);
	} else if (text && strstr(text, "ENCRYPTED")) {
		err_set(err, "graph.private_key %s is encrypted (a passphrase), which is not supported: `openssl pkey -in "
		        "%s -out app.key.pem` writes it without one", key_path, key_path);
	} else {
		err_set(err, "graph.private_key %s: no PEM private key in it", key_path);
	}
	if (text) explicit_bzero(text, len);   /* it may hold a key after all */
	free(text);
}

/* The certificate's notAfter as seconds since the epoch (UTC); -1 when unreadable. */
static double cert_not_after(const X509 *cert)
{
	struct tm tm;
	const ASN1_TIME *na = X509_get0_notAfter(cert);
	if (!na || ASN1_TIME_to_tm(na, &tm) != 1) return -1;
	return (double)timegm(&tm);
}

/* The certificate's notBefore as seconds since the epoch (UTC); -1 when unreadable. */
static double cert_not_before(const X509 *cert)
{
	struct tm tm;
	const ASN1_TIME *nb = X509_get0_notBefore(cert);
	if (!nb || ASN1_TIME_to_tm(nb, &tm) != 1) return -1;
	return (double)timegm(&tm);
}

/* A certificate made on a machine whose clock runs ahead is not refused for
 * its first minutes: Entra allows the same skew on its assertions. */
#define CERT_NOT_BEFORE_SLACK 300.0

/* The file at path opened for reading as a BIO; NULL with err naming it
 * as the config key what (graph.certificate, graph.private_key) and why. */
static BIO *pem_open(const char *what, const char *path, struct err *err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		err_set(err, "graph.%s %s: cannot open it (%s)", what, path, strerror(errno));
		return NULL;
	}
	BIO *bio = BIO_new_fp(f, BIO_CLOSE);
	if (!bio) {
		fclose(f);
		ERR_clear_error();
		err_set(err, "graph.%s %s: cannot open it (out of memory)", what, path);
	}
	return bio;
}

/* Every certificate in the PEM file at path, in the file's order, into
 * *certs (a new stack; other PEM blocks, a key, are passed over). -1 with
 * err naming the file when it cannot be opened or holds none (a binary
 * .pfx or .cer named as such). */
static int certs_read(const char *path, STACK_OF(X509) **certs, struct err *err)
{
	char sslbuf[256];
	*certs = sk_X509_new_null();
	BIO *bio = pem_open("certificate", path, err);
	if (!bio) return -1;
	X509 *cert;
	while ((cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) sk_X509_push(*certs, cert);
	BIO_free(bio);
	if (sk_X509_num(*certs) > 0) {
		ERR_clear_error();   /* the end of the file, or a damaged block after the certificates read */
		return 0;
	}
	if (file_is_der(path)) {
		ERR_clear_error();
		return err_set(err, "graph.certificate %s is a binary file (a PKCS#12 .pfx, or a DER .cer), not PEM: "
		               PFX_ADVICE, path);
	}
	return err_set(err, "graph.certificate %s: no PEM certificate in it (%s)", path, ssl_error(sslbuf, sizeof sslbuf));
}

/* 0 when cert (read from path) is valid now; else -1 with err saying it
 * expired or is not valid yet, and what to do. */
static int cert_check_dates(const X509 *cert, const char *path, struct err *err)
{
	double not_after = cert_not_after(cert);
	if (not_after >= 0 && not_after < time_now()) {
		char day[16];
		time_day(not_after, day, sizeof day);
		return err_set(err, "graph.certificate %s expired on %s: upload a new certificate to the app registration "
		               "(Certificates & secrets) and point graph.certificate and graph.private_key at it", path, day);
	}
	double not_before = cert_not_before(cert);
	if (not_before > time_now() + CERT_NOT_BEFORE_SLACK) {
		char day[32];
		time_iso8601(not_before, day, sizeof day);
		return err_set(err, "graph.certificate %s is not valid before %s: check the clock of this machine, or point "
		               "graph.certificate and graph.private_key at a certificate valid now", path, day);
	}
	return 0;
}

/* The certificate of certs whose public key is key's: of several (a
 * certificate renewed on the same key, both in the file), the first valid
 * now, else the first. NULL when none is. Borrowed from certs. */
static X509 *cert_for_key(STACK_OF(X509) *certs, EVP_PKEY *key)
{
	X509 *found = NULL;
	struct err not_now;
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *cert = sk_X509_value(certs, i);
		if (X509_check_private_key(cert, key) != 1) continue;
		if (cert_check_dates(cert, "", &not_now) == 0) {
			found = cert;
			break;
		}
		if (!found) found = cert;
	}
	ERR_clear_error();
	return found;
}

/* graph.private_key, or the certificate's file when it holds the key too. */
static const char *key_path_of(const struct config_graph *cfg)
{
	return cfg->private_key && *cfg->private_key ? cfg->private_key : cfg->certificate;
}

double graph_certificate_not_after(const struct config_graph *cfg)
{
	double not_after = -1;
	STACK_OF(X509) *certs = NULL;
	struct err ignored;
	EVP_PKEY *key = NULL;
	if (!cfg->certificate || !*cfg->certificate || certs_read(cfg->certificate, &certs, &ignored) != 0) goto out;
	X509 *cert = sk_X509_value(certs, 0);
	if (sk_X509_num(certs) > 1) {   /* a chain: the certificate of the key, as graph_auth_load takes it */
		BIO *bio = BIO_new_file(key_path_of(cfg), "r");
		key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
		BIO_free(bio);
		cert = key ? cert_for_key(certs, key) : NULL;
	}
	if (cert) not_after = cert_not_after(cert);
out:
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
	return not_after;
}

/* Reads the certificate and key files of gc->cfg into gc (key, x5t,
 * x5t#S256, cert_not_after as soon as the certificate is known). A file of
 * several certificates (the app's with its chain, in any order) gives the
 * one whose public key is the private key's. -1 with err naming the file
 * and what to do when they cannot be used: unreadable, not PEM, expired or
 * not yet valid, the key encrypted, not RSA or not the certificate's (none
 * of a chain's). A file of one certificate is checked in the order its
 * messages always came: its dates before the key. */
static int auth_load_files(struct graph_client *gc, struct err *err)
{
	const struct config_graph *cfg = gc->cfg;
	const char *key_path = key_path_of(cfg);
	int rc = -1;
	STACK_OF(X509) *certs = NULL;
	if (certs_read(cfg->certificate, &certs, err) != 0) goto out;
	int ncerts = sk_X509_num(certs);
	X509 *cert = ncerts == 1 ? sk_X509_value(certs, 0) : NULL;
	if (cert) {
		gc->cert_not_after = cert_not_after(cert);
		if (cert_check_dates(cert, cfg->certificate, err) != 0) goto out;
	}
	BIO *bio = pem_open("private_key", key_path, err);
	if (!bio) goto out;
	struct stat kst;
	if (!gc->quiet && stat(key_path, &kst) == 0 && (kst.st_mode & 077))   /* a secret: its owner alone should read it */
		log_warn("graph", "graph.private_key %s can be read by other users (mode %04o): chmod 600 it (owned by the "
		         "user entrasync runs as)", key_path, (unsigned)(kst.st_mode & 07777));
	gc->key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!gc->key) {
		ERR_clear_error();
		key_file_wrong(key_path, err);
		goto out;
	}
	if (EVP_PKEY_base_id(gc->key) != EVP_PKEY_RSA) {
		err_set(err, "graph.private_key %s: not an RSA key (Entra certificate credentials use RSA)", key_path);
		goto out;
	}
	if (cert) {
		if (X509_check_private_key(cert, gc->key) != 1) {
			ERR_clear_error();
			err_set(err, "graph.private_key %s does not belong to graph.certificate %s", key_path, cfg->certificate);
			goto out;
		}
	} else {
		cert = cert_for_key(certs, gc->key);
		if (!cert) {
			err_set(err, "no certificate in graph.certificate %s (%d in it) matches the private key in "
			        "graph.private_key %s: the file must hold the certificate uploaded to the app registration, "
			        "and graph.private_key its key", cfg->certificate, ncerts, key_path);
			goto out;
		}
		gc->cert_not_after = cert_not_after(cert);
		if (cert_check_dates(cert, cfg->certificate, err) != 0) goto out;
	}
	if (digest_b64(cert, EVP_sha1(), &gc->x5t, err) || digest_b64(cert, EVP_sha256(), &gc->x5t_s256, err))
		goto out;
	rc = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	if (rc != 0) graph_auth_free(gc);
	return rc;
}

int graph_auth_load(struct graph_client *gc, struct err *err)
{
	const struct config_graph *cfg = gc->cfg;
	bool have_secret = cfg->client_secret && *cfg->client_secret;
	bool have_cert = cfg->certificate && *cfg->certificate;
	if (!have_cert) {
		if (!have_secret)
			return err_set(err, "graph: set graph.client_secret, or graph.certificate and graph.private_key");
		return 0;
	}
	if (cfg->jwt_alg && *cfg->jwt_alg) {
		if (str_ieq(cfg->jwt_alg, "RS256")) gc->rs256 = true;
		else if (!str_ieq(cfg->jwt_alg, "PS256"))
			return err_set(err, "graph.jwt_alg '%s' is not supported: use \"PS256\" (default) or \"RS256\"",
			               cfg->jwt_alg);
	}
	struct err unusable;
	if (auth_load_files(gc, &unusable) != 0) {
		log_redact_err(&unusable);
		gc->credential_error = xstrdup(unusable.msg);
	}
	return 0;
}

int graph_credentials_check(const struct config_graph *cfg, unsigned flags, double *not_after, struct err *err)
{
	struct graph_client probe = { .cfg = cfg, .cert_not_after = -1, .quiet = flags & GRAPH_CRED_QUIET };
	int rc = graph_auth_load(&probe, err);
	if (rc == 0 && probe.credential_error) {
		err_set(err, "%s", probe.credential_error);
		rc = GRAPH_CRED_UNUSABLE;
	}
	if (not_after) *not_after = probe.cert_not_after;
	graph_auth_free(&probe);
	free(probe.credential_error);
	return rc;
}

void graph_auth_free(struct graph_client *gc)
{
	EVP_PKEY_free(gc->key);
	gc->key = NULL;
	free(gc->x5t);
	free(gc->x5t_s256);
	gc->x5t = gc->x5t_s256 = NULL;
}

/* ---- client assertion (JWT) ------------------------------------------------ */

static void uuid4(char out[37])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof b) != 1) {
		for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(rand() & 0xff);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
	         b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void b64_json(cJSON *j, struct buf *out)
{
	char *s = cJSON_PrintUnformatted(j);
	graph_base64url((const unsigned char *)s, strlen(s), out);
	cJSON_free(s);
}

int graph_client_assertion(const struct graph_client *gc, const char *tenant_id, double now, char **jwt,
                           struct err *err)
{
	*jwt = NULL;
	if (!gc->key) return err_set(err, "graph: no certificate configured for a client assertion");
	char sslbuf[256];
	int rc = -1;
	struct buf b = { 0 };
	unsigned char *sig = NULL;
	EVP_MD_CTX *md = NULL;

	cJSON *h = cJSON_CreateObject();
	cJSON_AddStringToObject(h, "alg", gc->rs256 ? "RS256" : "PS256");
	cJSON_AddStringToObject(h, "typ", "JWT");
	if (gc->rs256) cJSON_AddStringToObject(h, "x5t", gc->x5t);
	else cJSON_AddStringToObject(h, "x5t#S256", gc->x5t_s256);
	cJSON *c = cJSON_CreateObject();
	char *aud = xasprintf("%s/%s/oauth2/v2.0/token", gc->authority, tenant_id);
	char jti[37];
	uuid4(jti);
	double t = floor(now);
	cJSON_AddStringToObject(c, "aud", aud);
	cJSON_AddStringToObject(c, "iss", gc->client_id);
	cJSON_AddStringToObject(c, "sub", gc->client_id);
	cJSON_AddStringToObject(c, "jti", jti);
	cJSON_AddNumberToObject(c, "nbf", t);
	cJSON_AddNumberToObject(c, "iat", t);
	cJSON_AddNumberToObject(c, "exp", t + 300);
	free(aud);
	b64_json(h, &b);
	buf_addc(&b, '.');
	b64_json(c, &b);
	cJSON_Delete(h);
	cJSON_Delete(c);

	md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t siglen = 0;
	if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, gc->key) != 1) goto ssl_fail;
	if (!gc->rs256) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)
			goto ssl_fail;
	}
	if (EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)b.data, b.len) != 1) goto ssl_fail;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *)b.data, b.len) != 1) goto ssl_fail;
	buf_addc(&b, '.');
	graph_base64url(sig, siglen, &b);
	*jwt = buf_steal(&b);
	rc = 0;
	goto out;
ssl_fail:
	err_set(err, "could not sign the client assertion: %s", ssl_error(sslbuf, sizeof sslbuf));
out:
	EVP_MD_CTX_free(md);
	free(sig);
	buf_free(&b);
	return rc;
}

/* ---- token endpoint ------------------------------------------------------- */

/* Read from the text (json_scan): a cJSON tree of an Entra answer (a
 * 1.8 KB token) cost more than the rest of its handling. */
int graph_token_parse(const char *body, size_t len, char **token, double *expires_in, struct err *err)
{
	static const char *const keys[] = { "access_token", "expires_in", "token_type" };
	struct json_scan_value v[3];
	struct buf b = { 0 };
	int rc = -1;
	*token = NULL;
	*expires_in = 0;
	if (!body || !len || json_scan_members(body, len, keys, 3, v, err) != 0)
		return err_set(err, "the token endpoint sent no JSON");
	if (v[0].type != JSON_SCAN_STRING || json_scan_string_buf(&v[0], &b) <= 0) {
		err_set(err, "the token endpoint's answer has no access_token");
		goto out;
	}
	if (v[2].type == JSON_SCAN_STRING) {
		char type[32];
		if (json_scan_string(&v[2], type, sizeof type) < 0 || !str_ieq(type, "Bearer")) {
			err_set(err, "the token endpoint sent a '%.*s' token, not Bearer", v[2].len > 34 ? 32 : (int)v[2].len - 2,
			        v[2].text + 1);
			goto out;
		}
	}
	double e = 3599;
	if (v[1].type == JSON_SCAN_NUMBER || v[1].type == JSON_SCAN_STRING)   /* older endpoints send a string */
		e = strtod(v[1].text + (v[1].type == JSON_SCAN_STRING), NULL);
	if (!(e > 0)) e = 60;
	*token = buf_steal(&b);
	*expires_in = e;
	rc = 0;
out:
	if (b.data) OPENSSL_cleanse(b.data, b.cap);
	buf_free(&b);
	return rc;
}

int graph_token_error_message(const struct graph_client *gc, const char *tenant_id,
                              const struct graph_error *ge, struct err *err)
{
	char *url = graph_admin_consent_url(gc, tenant_id);
	char ref[200] = "";
	if (ge->request_id[0]) snprintf(ref, sizeof ref, " (trace id %s)", ge->request_id);
	const char *cid = gc->client_id;
	switch (ge->aadsts) {
	case 700016:
		err_set(err, "tenant %s: the app %s is not known in this tenant (AADSTS700016): it has not been "
		        "consented there, or the tenant id is wrong. A Global Administrator of the tenant must grant "
		        "admin consent: %s%s", tenant_id, cid, url, ref);
		break;
	case 7000215:
		err_set(err, "tenant %s: the client secret was refused (AADSTS7000215: invalid secret): check "
		        "graph.client_secret; it must be the secret's Value, not its Secret ID%s", tenant_id, ref);
		break;
	case 7000222:
		err_set(err, "tenant %s: the client secret has expired (AADSTS7000222): create a new secret for app "
		        "%s and put it in graph.client_secret%s", tenant_id, cid, ref);
		break;
	case 7000218:
		err_set(err, "tenant %s: no credential reached the token endpoint (AADSTS7000218): set "
		        "graph.client_secret, or graph.certificate and graph.private_key%s", tenant_id, ref);
		break;
	case 700027:
	case 50012:
		err_set(err, "tenant %s: the certificate was not accepted (AADSTS%ld): upload graph.certificate to "
		        "the app registration %s (Certificates & secrets), or check graph.jwt_alg (PS256, or RS256 "
		        "for older setups)%s", tenant_id, ge->aadsts, cid, ref);
		break;
	case 65001:
	case 90094:
		err_set(err, "tenant %s: consent for the app %s is missing (AADSTS%ld): a Global Administrator of "
		        "the tenant must grant admin consent: %s%s", tenant_id, cid, ge->aadsts, url, ref);
		break;
	case 90099:
		err_set(err, "tenant %s: the app %s is not authorized for partner delegated administration here "
		        "(AADSTS90099): grant admin consent in the customer tenant: %s%s", tenant_id, cid, url, ref);
		break;
	case 90002:
		err_set(err, "tenant %s: no such tenant (AADSTS90002): check the tenant id or domain in the config%s",
		        tenant_id, ref);
		break;
	case 500014:
		err_set(err, "tenant %s: Microsoft Graph's service principal is disabled in this tenant "
		        "(AADSTS500014): an administrator must enable it%s", tenant_id, ref);
		break;
	case 53003:
		err_set(err, "tenant %s: the token was blocked by Conditional Access (AADSTS53003): exclude the app "
		        "%s from the policy that blocks it%s", tenant_id, cid, ref);
		break;
	case 70011:
		err_set(err, "tenant %s: the scope was refused (AADSTS70011): graph.endpoint must be the Graph "
		        "resource, e.g. https://graph.microsoft.com%s", tenant_id, ref);
		break;
	default:
		err_set(err, "tenant %s: no token (HTTP %ld%s%s%s%s)%s", tenant_id, ge->status, ge->code[0] ? ", " : "",
		        ge->code, ge->message[0] ? ": " : "", ge->message, ref);
		break;
	}
	free(url);
	log_redact_err(err);
	return -1;
}

/* The resource is Graph itself: {endpoint}/.default, which for the
 * national clouds is their Graph (https://graph.microsoft.us, ...). A
 * loopback http:// endpoint is a local stand-in for Graph (a proxy, the
 * test fake), so tokens are asked for Microsoft Graph's own resource. */
char *graph_scope(const struct graph_client *gc)
{
	if (str_starts(gc->endpoint, "http://"))
		return xstrdup("https://graph.microsoft.com/.default");
	return xasprintf("%s/.default", gc->endpoint);
}

bool graph_token_valid(const struct graph_tenant *t)
{
	return t->token && time_mono() < t->token_renew_at;
}

void graph_token_invalidate(struct graph_tenant *t)
{
	free(t->auth_header);
	t->auth_header = NULL;
	t->token = NULL;
	t->token_renew_at = 0;
}

/* Sends the waiting calls (token obtained) or fails them (token refused). */
static void flush_waiting(struct graph_tenant *t)
{
	struct graph_call *list = t->waiting;
	t->waiting = t->waiting_tail = NULL;
	while (list) {
		struct graph_call *c = list;
		list = c->next;
		c->next = NULL;
		if (t->token_error) graph_call_fail(c, t->token_error);
		else graph_call_send(c);
	}
}

#define TOKEN_TRANSIENT_RETRIES 2

static void token_done(struct http_response *resp, void *ctx)
{
	struct graph_tenant *t = ctx;
	struct graph_client *gc = t->gc;
	struct err err;
	t->token_pending = false;
	if (resp->error == HTTP_ERR_NONE && resp->status == 200) {
		char *tok = NULL;
		double expires_in = 0;
		if (graph_token_parse(resp->body.data, resp->body.len, &tok, &expires_in, &err) == 0) {
			log_secret_add(tok);
			static const char prefix[] = "Authorization: Bearer ";
			size_t len = strlen(tok);
			free(t->auth_header);
			t->auth_header = xmalloc(sizeof prefix + len);
			memcpy(t->auth_header, prefix, sizeof prefix - 1);
			memcpy(t->auth_header + sizeof prefix - 1, tok, len + 1);
			t->token = t->auth_header + sizeof prefix - 1;
			explicit_bzero(tok, len);
			free(tok);
			/* renew 5 minutes early (a tenth of the lifetime for short ones) */
			double margin = expires_in >= 600 ? 300 : expires_in / 10;
			t->token_renew_at = time_mono() + expires_in - margin;
			t->token_transient = 0;
			t->token_gen++;
			log_debug("graph.token", "tenant %s: token for %.0f s", t->id, expires_in);
			flush_waiting(t);
			return;
		}
		err_prefix(&err, "tenant %s", t->id);
	} else if (resp->error != HTTP_ERR_NONE) {
		err_set(&err, "tenant %s: no answer from the token endpoint %s: %s", t->id, gc->authority,
		        resp->error_text);
	} else {
		struct graph_error ge;
		int parsed = graph_error_parse(resp->status, resp->body.data, resp->body.len, &ge);
		/* the identity platform's own transient error comes as a 400 (the
		 * HTTP core retries by status only): asked again, after 1 s then 2 s
		 * (the login lane held, as for a Retry-After) */
		if (parsed == 0 && !strcmp(ge.code, "temporarily_unavailable") && t->token_transient < TOKEN_TRANSIENT_RETRIES) {
			t->token_transient++;
			log_info("graph.token", "tenant %s: the token endpoint is temporarily unavailable (AADSTS%ld): asking "
			         "again in %d s", t->id, ge.aadsts, t->token_transient);
			http_lane_hold(http_service_default_lane(gc->login), t->token_transient);
			graph_token_request(t);
			return;
		}
		if (parsed == 0) {
			graph_token_error_message(gc, t->id, &ge, &err);
			t->token_needs_consent = ge.aadsts == 700016 || ge.aadsts == 65001 || ge.aadsts == 90094 ||
			                         ge.aadsts == 90099;
		} else
			err_set(&err, "tenant %s: the token endpoint answered HTTP %ld without an error body", t->id,
			        resp->status);
	}
	log_redact_err(&err);
	free(t->token_error);
	t->token_error = xstrdup(err.msg);
	log_debug("graph.token", "%s", err.msg);  /* the pull reports it per tenant */
	flush_waiting(t);
}

void graph_token_request(struct graph_tenant *t)
{
	if (t->token_pending) return;
	struct graph_client *gc = t->gc;
	struct buf body = { 0 };
	struct err err;
	if (gc->credential_error) {   /* nothing to sign in with: no request */
		free(t->token_error);
		t->token_error = xasprintf("tenant %s: %s", t->id, gc->credential_error);
		flush_waiting(t);
		return;
	}
	buf_adds(&body, "client_id=");
	form_escape(gc->client_id, &body);
	buf_adds(&body, "&scope=");
	char *scope = graph_scope(gc);
	form_escape(scope, &body);
	free(scope);
	buf_adds(&body, "&grant_type=client_credentials");
	if (gc->key) {
		char *jwt = NULL;
		if (graph_client_assertion(gc, t->id, time_now(), &jwt, &err) != 0) {
			buf_free(&body);
			free(t->token_error);
			t->token_error = xasprintf("tenant %s: %s", t->id, err.msg);
			flush_waiting(t);
			return;
		}
		buf_adds(&body, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
		                "&client_assertion=");
		buf_adds(&body, jwt);  /* base64url and dots: nothing to escape */
		free(jwt);
	} else {
		buf_adds(&body, "&client_secret=");
		form_escape(gc->cfg->client_secret, &body);
	}
	char *path = xasprintf("/%s/oauth2/v2.0/token", t->id);
	/* A token answer is about 1.5 KB: compressing it saves no round trip
	 * (it fits the first TCP window either way) and inflating it costs a
	 * zlib state (~40 KB zeroed) per tenant per run. */
	static const char *const token_headers[] = { "Accept-Encoding: identity", NULL };
	t->token_pending = true;
	t->counters.token_requests++;
	int rc = http_submit(gc->login, &(struct http_request){
		.method = "POST", .url = path, .headers = token_headers, .body = body.data, .body_len = body.len,
		.content_type = "application/x-www-form-urlencoded",
		.idempotent = HTTP_IDEMPOTENT_YES, .on_done = token_done, .ctx = t }, &err);
	free(path);
	if (body.data) explicit_bzero(body.data, body.len);  /* held the secret or assertion */
	buf_free(&body);
	if (rc != 0) {
		t->token_pending = false;
		free(t->token_error);
		t->token_error = xasprintf("tenant %s: %s", t->id, err.msg);
		flush_waiting(t);
	}
}

void graph_tenant_token_start(struct graph_tenant *t)
{
	if (!graph_token_valid(t) && !t->token_error) graph_token_request(t);
}
