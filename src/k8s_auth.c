/*
 * k8s_auth.c: a k8s client's credentials at request time.
 *
 * Static ones (token, basic auth, client certificate) are set once by
 * kubeconfig.c. Two kinds change while a client lives:
 *  - a token file (kubeconfig tokenFile, the in-cluster service account token,
 *    which the kubelet rotates) is re-read at most once a minute, and after a
 *    401; if it cannot be read the last good token is kept (client-go's
 *    cached file token source);
 *  - an exec plugin (client.authentication.k8s.io/v1 or v1beta1) is run when
 *    there is no answer yet, when its answer has expired, and after a 401.
 *    It runs without a shell, with stdin from /dev/null (never interactive),
 *    its stderr going to ours, and KUBERNETES_EXEC_INFO set.
 * Every token, password and key is registered with log_add_secret.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "k8s_auth.h"

#define TOKEN_FILE_PERIOD 60.0  /* seconds a token file is trusted before re-reading */
#define EXEC_TIMEOUT 60.0       /* seconds an exec plugin may take */

/* ---- token files ---- */

/* Reads the token file. Returns 1 if the token changed, 0 if not, -1 (c->msg
 * set) if the file cannot be read or is empty. */
static int read_token_file(struct k8s_creds *c, int warn)
{
	char *data, why[256];
	size_t len;
	/* a secret: no symlink another user made, no FIFO (secret_file.c) */
	if (secret_file_read("tokenFile", c->token_file, warn, K8S_MAX_TOKEN_FILE, &data, &len, why, sizeof why) != 0)
		return k8s_fail(c, "tokenFile %s: %s", c->token_file, why);
	size_t start = 0, end = len;
	while (start < end && isspace((unsigned char)data[start]))
		start++;
	while (end > start && isspace((unsigned char)data[end - 1]))
		end--;
	if (start == end) {
		k8s_wipe(&data, len);
		return k8s_fail(c, "read empty token from file %s", c->token_file);
	}
	memmove(data, data + start, end - start);
	explicit_bzero(data + (end - start), len - (end - start));
	data[end - start] = '\0';
	log_add_secret(data, end - start);
	int changed = !c->file_token || strcmp(c->file_token, data) != 0;
	k8s_wipe_str(&c->file_token);
	c->file_token = data;
	c->file_token_at = k8s_monotonic();
	return changed;
}

int k8s_auth_load_token_file(struct k8s_creds *c, int warn)
{
	return read_token_file(c, warn) < 0 ? -1 : 0;
}

/* A token file that cannot be read now: keep the last good token. */
static void keep_old_token(struct k8s_creds *c)
{
	log_msg(LOG_WARN, "%s; using the token read before", c->msg);
	c->file_token_at = k8s_monotonic();
}

/* ---- exec plugins ---- */

void k8s_exec_free(struct k8s_exec *e)
{
	for (char **p = e->argv; p && *p; p++)
		free(*p);
	free(e->argv);
	e->argv = NULL;
	for (char **p = e->env; p && *p; p++)
		free(*p);
	free(e->env);
	e->env = NULL;
	free(e->command);
	free(e->api_version);
	free(e->install_hint);
	free(e->cert);
	e->command = e->api_version = e->install_hint = e->cert = NULL;
	k8s_wipe_str(&e->token);
	k8s_wipe(&e->key, e->key_len);
	if (e->out.out)
		explicit_bzero(e->out.out, e->out.out_len);
	proc_result_free(&e->out);
	memset(&e->out, 0, sizeof e->out);
}

/* Frees the plugin's output, which holds the credential in clear. */
static void wipe_output(struct k8s_exec *e)
{
	if (e->out.out)
		explicit_bzero(e->out.out, e->out.out_len);
	proc_result_free(&e->out);
	memset(&e->out, 0, sizeof e->out);
}

/* Parses an RFC 3339 time ("2006-01-02T15:04:05Z", fractions and offsets
 * allowed) into time(2) seconds. */
static int parse_rfc3339(const char *s, double *out)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n == 0)
		return -1;
	const char *p = s + n;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om, m = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
			return -1;
		offset = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
	                .tm_hour = h, .tm_min = mi, .tm_sec = sec};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (double)(t - offset);
	return 0;
}

/* Pushes field key of the table at t if it is a non-empty string; returns
 * it (NULL otherwise, with the value still pushed). */
static const char *field_string(lua_State *L, int t, const char *key, size_t *len)
{
	*len = 0;
	if (lua_getfield(L, t, key) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
		return NULL;
	return lua_tolstring(L, -1, len);
}

static int same(const char *a, size_t alen, const char *b, size_t blen)
{
	return (!a && !b) || (a && b && alen == blen && memcmp(a, b, alen) == 0);
}

/* Takes the plugin's answer (the decoded ExecCredential at v). Returns 1 if
 * the credential changed, 0 if not, -1 on a bad answer. */
static int take_answer(lua_State *L, struct k8s_creds *c, int v)
{
	struct k8s_exec *e = c->exec;
	if (!lua_istable(L, v))
		return k8s_fail(c, "exec plugin %s: its output is not an ExecCredential", e->command);
	size_t len, token_len, cert_len, key_len;
	const char *api = field_string(L, v, "apiVersion", &len);
	if (!api || strcmp(api, e->api_version) != 0)
		return k8s_fail(c, "exec plugin %s is configured to use API version %s, plugin returned version %s",
		                e->command, e->api_version, api ? api : "(none)");
	if (lua_getfield(L, v, "status") != LUA_TTABLE)
		return k8s_fail(c, "exec plugin %s didn't return a status field", e->command);
	int st = lua_gettop(L);
	const char *token = field_string(L, st, "token", &token_len);
	const char *cert = field_string(L, st, "clientCertificateData", &cert_len);
	const char *key = field_string(L, st, "clientKeyData", &key_len);
	if (token)
		log_add_secret(token, token_len);
	if (key)
		log_add_secret(key, key_len);
	if (!cert != !key)
		return k8s_fail(c, "exec plugin %s returned only certificate or key, not both", e->command);
	if (!token && !cert)
		return k8s_fail(c, "exec plugin %s didn't return a token or cert/key pair", e->command);
	double expiry = 0;
	const char *exp = field_string(L, st, "expirationTimestamp", &len);
	if (exp && parse_rfc3339(exp, &expiry) != 0)
		return k8s_fail(c, "exec plugin %s returned an invalid expirationTimestamp \"%s\"",
		                e->command, exp);

	int changed = !same(token, token_len, e->token, e->token ? strlen(e->token) : 0) ||
	              !same(cert, cert_len, e->cert, e->cert_len) ||
	              !same(key, key_len, e->key, e->key_len);
	k8s_wipe_str(&e->token);
	k8s_wipe(&e->key, e->key_len);
	free(e->cert);
	e->cert = NULL;
	e->cert_len = e->key_len = 0;
	if (token && !(e->token = k8s_memdup(token, token_len)))
		return luaL_error(L, "not enough memory");
	if (cert) {
		e->cert = k8s_memdup(cert, cert_len);
		e->key = k8s_memdup(key, key_len);
		if (!e->cert || !e->key)
			return luaL_error(L, "not enough memory");
		e->cert_len = cert_len;
		e->key_len = key_len;
	}
	e->expiry = expiry;
	e->valid = 1;
	return changed;
}

/* Runs the plugin and takes its answer: 1 changed, 0 same, -1 error. */
static int run_exec(lua_State *L, struct k8s_creds *c)
{
	struct k8s_exec *e = c->exec;
	struct proc_spec spec = {
	    .argv = (const char *const *)e->argv,
	    .env = (const char *const *)e->env,
	    .timeout = EXEC_TIMEOUT,
	    .inherit_stderr = 1,
	};
	char why[256];
	e->valid = 0;
	wipe_output(e);
	if (proc_run(&spec, &e->out, why, sizeof why) != 0) {
		int timed_out = e->out.timed_out;
		wipe_output(e);
		if (timed_out)
			return k8s_fail(c, "exec plugin %s did not finish within %.0f s", e->command, EXEC_TIMEOUT);
		return k8s_fail(c, "exec plugin %s: %s%s%s", e->command, why,
		                e->install_hint ? "\n" : "", e->install_hint ? e->install_hint : "");
	}
	if (e->out.status != 0) {
		int status = e->out.status;
		wipe_output(e);
		return k8s_fail(c, "exec plugin %s failed with exit code %d", e->command, status);
	}
	/* called from a request, with its arguments and options on the stack */
	luaL_checkstack(L, 10, NULL);
	int top = lua_gettop(L);
	const char *out = e->out.out ? e->out.out : "";
	size_t i = 0;
	while (i < e->out.out_len && isspace((unsigned char)out[i]))
		i++;
	int ok = i < e->out.out_len && out[i] == '{'
	             ? json_decode_push(L, out, e->out.out_len, why, sizeof why)
	             : yaml_decode_push(L, out, e->out.out_len, why, sizeof why);
	wipe_output(e);
	if (!ok)
		return k8s_fail(c, "exec plugin %s: cannot decode its output: %s", e->command, why);
	int rc = take_answer(L, c, top + 1);
	lua_settop(L, top);
	return rc;
}

static int exec_answer_valid(const struct k8s_exec *e)
{
	return e->valid && (e->expiry == 0 || (double)time(NULL) < e->expiry);
}

/* ---- what k8s.c uses ---- */

int k8s_auth_ready(lua_State *L, struct k8s_creds *c)
{
	if (c->token_file && k8s_monotonic() - c->file_token_at >= TOKEN_FILE_PERIOD &&
	    read_token_file(c, 0) < 0)
		keep_old_token(c);
	if (c->exec && !exec_answer_valid(c->exec))
		return run_exec(L, c) < 0 ? -1 : 0;
	return 0;
}

int k8s_auth_renew(lua_State *L, struct k8s_creds *c)
{
	if (c->exec)
		return run_exec(L, c);
	if (c->token_file) {
		int r = read_token_file(c, 0);
		if (r < 0) {
			keep_old_token(c);
			return 0;
		}
		return r;
	}
	return 0;
}

int k8s_auth_header(struct k8s_creds *c, struct curl_slist **headers)
{
	const char *token = c->exec ? c->exec->token : c->file_token ? c->file_token : c->token;
	char *h = NULL;
	int n;
	if (token)
		n = asprintf(&h, "Authorization: Bearer %s", token);
	else if (c->basic)
		n = asprintf(&h, "Authorization: %s", c->basic);
	else
		return 0;
	if (n < 0)
		return -1;
	struct curl_slist *l = curl_slist_append(*headers, h);
	k8s_wipe(&h, (size_t)n);
	if (!l)
		return -1;
	*headers = l;
	return 0;
}

void k8s_auth_cert(const struct k8s_creds *c, const char **cert, size_t *cert_len,
                   const char **key, size_t *key_len)
{
	const struct k8s_exec *e = c->exec;
	if (e && e->cert) {
		*cert = e->cert, *cert_len = e->cert_len;
		*key = e->key, *key_len = e->key_len;
	} else {
		*cert = c->cert, *cert_len = c->cert_len;
		*key = c->key, *key_len = c->key_len;
	}
}

void k8s_creds_free(struct k8s_creds *c)
{
	free(c->token_file);
	free(c->cert);
	c->token_file = c->cert = NULL;
	k8s_wipe_str(&c->token);
	k8s_wipe_str(&c->file_token);
	k8s_wipe_str(&c->basic);
	k8s_wipe(&c->key, c->key_len);
	if (c->exec) {
		k8s_exec_free(c->exec);
		free(c->exec);
		c->exec = NULL;
	}
}
