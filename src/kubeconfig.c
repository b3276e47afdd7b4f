/*
 * kubeconfig.c: where a k8s client's configuration comes from, found the way
 * kubectl (client-go's clientcmd) finds it:
 *
 *   1. the kubeconfig option (that file only; it must exist), else the files
 *      in $KUBECONFIG (':'-separated, missing ones skipped), else ~/.kube/config;
 *      several files merge first-file-wins per named entry and for
 *      current-context; relative paths resolve against the directory of the
 *      file that defined the entry;
 *   2. when that yields no context to use: the in-cluster service account
 *      (KUBERNETES_SERVICE_HOST/PORT and the token file), from
 *      /var/run/secrets/kubernetes.io/serviceaccount, or the directory in the
 *      in_cluster_dir option or $XCSREG_IN_CLUSTER_DIR (for tests);
 *   3. else "no configuration".
 *
 * The YAML is decoded into Lua tables and read with the Lua API; what is kept
 * is copied into the client (C memory it owns). Messages name the file and
 * the entry at fault, never a credential.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "kubeconfig.h"

#define DEFAULT_IN_CLUSTER_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define EXEC_EXTENSION "client.authentication.k8s.io/exec"
#define EXEC_V1 "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

/* A named cluster, user or context, and the file it came from. The strings
 * and the table (at stack index tbl) stay on the Lua stack while it is used. */
struct entry {
	const char *kind; /* "cluster", "user", "context" */
	const char *name;
	const char *file, *dir;
	int tbl;
};

/* Sets c->msg to "<file>: <kind> \"<name>\": <printf fmt, ...>"; returns -1. */
static int __attribute__((format(printf, 3, 4)))
entry_fail(struct k8s_config *c, const struct entry *e, const char *fmt, ...)
{
	char what[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return k8s_fail(c, "%s: %s \"%s\": %s", e->file, e->kind, e->name, what);
}

/* A copy owned by the client; raises when memory runs out (the client's
 * __gc frees whatever was already copied). */
static char *dup_or_raise(lua_State *L, const char *s, size_t n)
{
	char *p = k8s_memdup(s, n);
	if (!p)
		(void)luaL_error(L, "not enough memory"); /* does not return */
	return p;
}

static char *dup_str(lua_State *L, const char *s)
{
	return dup_or_raise(L, s, strlen(s));
}

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Pushes field key of e's table; *out is the string, or NULL when the field
 * is absent or empty (as client-go treats ""). Fails on another type. */
static int get_string(lua_State *L, struct k8s_config *c, const struct entry *e, const char *key,
                      const char **out, size_t *len)
{
	size_t n = 0;
	int t = lua_getfield(L, e->tbl, key);
	*out = NULL;
	if (t == LUA_TSTRING)
		*out = lua_tolstring(L, -1, &n);
	else if (t != LUA_TNIL)
		return entry_fail(c, e, "%s must be a string", key);
	if (n == 0)
		*out = NULL;
	if (len)
		*len = n;
	return 0;
}

static int get_bool(lua_State *L, struct k8s_config *c, const struct entry *e, const char *key,
                    int *out)
{
	int t = lua_getfield(L, e->tbl, key);
	*out = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (t != LUA_TBOOLEAN && t != LUA_TNIL)
		return entry_fail(c, e, "%s must be true or false", key);
	return 0;
}

/* Pushes path resolved against e's file's directory, and returns it. */
static const char *push_resolved(lua_State *L, const struct entry *e, const char *path)
{
	if (path[0] == '/')
		lua_pushstring(L, path);
	else
		lua_pushfstring(L, "%s/%s", e->dir, path);
	return lua_tostring(L, -1);
}

/* Decodes base64 (line breaks ignored, as Go's decoder does) into a
 * malloc'd, NUL-terminated buffer. */
static int decode_base64(lua_State *L, struct k8s_config *c, const struct entry *e,
                         const char *key, const char *s, size_t n, char **out, size_t *outlen)
{
	char *clean = malloc(n + 1);
	char *dst = malloc(b64_decoded_maxlen(n) + 1);
	if (!clean || !dst) {
		free(clean);
		free(dst);
		return luaL_error(L, "not enough memory");
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\n' && s[i] != '\r')
			clean[m++] = s[i];
	size_t errpos;
	size_t len = b64_decode(clean, m, (unsigned char *)dst, 0, &errpos);
	k8s_wipe(&clean, n + 1);
	if (len == (size_t)-1) {
		k8s_wipe(&dst, b64_decoded_maxlen(n) + 1);
		return entry_fail(c, e, "%s is not valid base64 (at byte %zu)", key, errpos);
	}
	dst[len] = '\0';
	*out = dst;
	*outlen = len;
	return 0;
}

/* Loads PEM data from key-data (base64, wins) or key (a file path) into
 * *out. Returns 0 (also when neither is set), or -1. */
static int load_pem(lua_State *L, struct k8s_config *c, const struct entry *e,
                    const char *data_key, const char *file_key, char **out, size_t *len)
{
	const char *data, *file;
	size_t data_len;
	if (get_string(L, c, e, data_key, &data, &data_len) != 0 ||
	    get_string(L, c, e, file_key, &file, NULL) != 0)
		return -1;
	if (data)
		return decode_base64(L, c, e, data_key, data, data_len, out, len);
	if (!file)
		return 0;
	const char *path = push_resolved(L, e, file);
	if (strcmp(file_key, "client-key") != 0)
		return k8s_read_file(c, file_key, path, out, len);
	/* a private key: read as a secret (secret_file.c) */
	char why[256];
	if (secret_file_read(file_key, path, SECRET_WARN_READABLE | SECRET_WARN_WRITABLE, K8S_MAX_TOKEN_FILE, out, len,
	                     why, sizeof why) != 0)
		return k8s_fail(c, "%s %s: %s", file_key, path, why);
	return 0;
}

/* ---- reading and merging the files ---- */

/* Pushes the list of kubeconfig files to read, {path, ...}. */
static int push_file_list(lua_State *L, struct k8s_config *c, const struct k8s_options *o)
{
	lua_newtable(L);
	int list = lua_gettop(L);
	if (o->kubeconfig) {
		struct stat st;
		if (stat(o->kubeconfig, &st) != 0)
			return k8s_fail(c, "kubeconfig %s: %s", o->kubeconfig, strerror(errno));
		lua_pushstring(L, o->kubeconfig);
		lua_rawseti(L, list, 1);
		return 0;
	}
	const char *env = getenv("KUBECONFIG");
	if (env && *env) {
		lua_newtable(L); /* list seen */
		lua_Integer n = 0;
		for (const char *p = env; *p;) {
			const char *end = strchr(p, ':');
			size_t len = end ? (size_t)(end - p) : strlen(p);
			lua_pushlstring(L, p, len); /* list seen path */
			lua_pushvalue(L, -1);
			if (len > 0 && lua_rawget(L, -3) == LUA_TNIL && is_file(lua_tostring(L, -2))) {
				lua_pop(L, 1);
				lua_pushvalue(L, -1);
				lua_pushboolean(L, 1);
				lua_rawset(L, -4); /* seen[path] = true */
				lua_rawseti(L, list, ++n);
			} else {
				lua_settop(L, list + 1);
			}
			p += len;
			if (*p == ':')
				p++;
		}
		lua_pop(L, 1);
		return 0;
	}
	const char *home = getenv("HOME");
	if (home && *home) {
		const char *path = lua_pushfstring(L, "%s/.kube/config", home);
		if (is_file(path))
			lua_rawseti(L, list, 1);
		else
			lua_pop(L, 1);
	}
	return 0;
}

/* How client-go's v1 conversion names a list and its map, for its message. */
static const char *go_types(const char *list)
{
	return strcmp(list, "clusters") == 0 ? "*[]NamedCluster into *map[string]*api.Cluster"
	     : strcmp(list, "users") == 0    ? "*[]NamedAuthInfo into *map[string]*api.AuthInfo"
	                                     : "*[]NamedContext into *map[string]*api.Context";
}

/*
 * Merges the entries of the list `list` ("clusters") of the document at doc
 * into the map m[list]: name -> {v = the entry's `item` table, file, dir}.
 * An entry already there (from an earlier file) is left alone; a name twice
 * in one file refuses the file, as kubectl does (client-go's conversion).
 */
static int merge_list(lua_State *L, struct k8s_config *c, int m, int doc, const char *list,
                      const char *item, const char *path, int dir)
{
	int t = lua_getfield(L, doc, list); /* l */
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	if (t != LUA_TTABLE)
		return k8s_fail(c, "%s: %s must be a list", path, list);
	int l = lua_gettop(L);
	lua_getfield(L, m, list); /* l map */
	lua_newtable(L);          /* l map seen: the names of this file's list */
	int map = lua_gettop(L) - 1, seen = map + 1;
	for (lua_Integer i = 1; lua_rawgeti(L, l, i) != LUA_TNIL; i++) { /* l map seen e */
		if (!lua_istable(L, -1))
			return k8s_fail(c, "%s: %s[%d] must be a mapping", path, list, (int)(i - 1));
		if (lua_getfield(L, -1, "name") != LUA_TSTRING || lua_rawlen(L, -1) == 0)
			return k8s_fail(c, "%s: %s[%d] has no name", path, list, (int)(i - 1));
		lua_pushvalue(L, -1);
		if (lua_rawget(L, seen) != LUA_TNIL) /* its list is not quoted: it holds credentials */
			return k8s_fail(c, "kubeconfig %s: error converting %s: duplicate name \"%s\" in list",
			                path, go_types(list), lua_tostring(L, -2));
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_pushboolean(L, 1);
		lua_rawset(L, seen);
		lua_pushvalue(L, -1); /* l map seen e name name */
		if (lua_rawget(L, map) != LUA_TNIL) { /* the first file to set a name wins */
			lua_settop(L, seen);
			continue;
		}
		lua_pop(L, 1);
		lua_createtable(L, 0, 3); /* l map seen e name rec */
		t = lua_getfield(L, -3, item);
		if (t == LUA_TNIL) {
			lua_pop(L, 1);
			lua_newtable(L);
		} else if (t != LUA_TTABLE) {
			return k8s_fail(c, "%s: %s \"%s\": %s must be a mapping", path, item,
			                lua_tostring(L, -3), item);
		}
		lua_setfield(L, -2, "v");
		lua_pushstring(L, path);
		lua_setfield(L, -2, "file");
		lua_pushvalue(L, dir);
		lua_setfield(L, -2, "dir");
		lua_rawset(L, map); /* l map seen e */
		lua_settop(L, seen);
	}
	lua_settop(L, l - 1);
	return 0;
}

/* Whether the decoded YAML value at idx is a sequence (json's array marker). */
static int is_sequence(lua_State *L, int idx)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	luaL_getmetatable(L, XCS_ARRAY_MT);
	int seq = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return seq;
}

/* Reads one kubeconfig file into the merged view at m. */
static int load_file(lua_State *L, struct k8s_config *c, int m, const char *path)
{
	size_t len;
	if (k8s_read_file(c, "kubeconfig", path, &c->scratch, &len) != 0)
		return -1;
	char why[256];
	int ok = yaml_decode_push(L, c->scratch, len, why, sizeof why);
	k8s_wipe(&c->scratch, len);
	if (!ok)
		return k8s_fail(c, "kubeconfig %s: %s", path, why);
	int doc = lua_gettop(L);
	if (lua_isnil(L, doc)) /* an empty file */
		return 0;
	if (!lua_istable(L, doc) || is_sequence(L, doc))
		return k8s_fail(c, "kubeconfig %s: not a kubeconfig (a YAML mapping was expected)", path);
	const char *slash = strrchr(path, '/');
	if (!slash)
		lua_pushliteral(L, ".");
	else if (slash == path)
		lua_pushliteral(L, "/");
	else
		lua_pushlstring(L, path, (size_t)(slash - path));
	int dir = lua_gettop(L);
	if (merge_list(L, c, m, doc, "clusters", "cluster", path, dir) != 0 ||
	    merge_list(L, c, m, doc, "users", "user", path, dir) != 0 ||
	    merge_list(L, c, m, doc, "contexts", "context", path, dir) != 0)
		return -1;
	int t = lua_getfield(L, doc, "current-context");
	if (t != LUA_TNIL && t != LUA_TSTRING)
		return k8s_fail(c, "kubeconfig %s: current-context must be a string", path);
	if (t == LUA_TSTRING && lua_rawlen(L, -1) > 0 && lua_getfield(L, m, "current") == LUA_TNIL) {
		lua_pop(L, 1);
		lua_setfield(L, m, "current");
	}
	lua_settop(L, doc - 1);
	return 0;
}

/* Finds name in the map m[list]; pushes its record's parts and fills e. */
static int find_entry(lua_State *L, int m, const char *list, const char *kind, const char *name,
                      struct entry *e)
{
	lua_getfield(L, m, list);
	if (lua_getfield(L, -1, name) != LUA_TTABLE)
		return -1;
	int rec = lua_gettop(L);
	lua_getfield(L, rec, "file");
	e->file = lua_tostring(L, -1);
	lua_getfield(L, rec, "dir");
	e->dir = lua_tostring(L, -1);
	lua_getfield(L, rec, "v");
	e->tbl = lua_gettop(L);
	e->kind = kind;
	e->name = name;
	return 0;
}

/* Pushes the files of the list joined with ':', for messages. */
static const char *push_joined(lua_State *L, int files)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (lua_Integer i = 1; lua_rawgeti(L, files, i) == LUA_TSTRING; i++) {
		if (i > 1) {
			lua_pushliteral(L, ":");
			lua_insert(L, -2);
			lua_concat(L, 2);
		}
		luaL_addvalue(&b);
	}
	lua_pop(L, 1);
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}

/* ---- the cluster ---- */

/* Sets server and url_base; with tls-server-name, requests go to a URL
 * naming that host (so curl sends it as SNI and verifies the certificate
 * against it) while CURLOPT_CONNECT_TO sends them to the real server. */
static int set_server(lua_State *L, struct k8s_config *c, const struct entry *e,
                      const char *server, const char *tls_name)
{
	size_t n = strlen(server);
	while (n > 0 && server[n - 1] == '/')
		n--;
	int https = strncmp(server, "https://", 8) == 0;
	if (!https && strncmp(server, "http://", 7) != 0)
		return entry_fail(c, e, "server %s is not an https:// or http:// URL", server);
	c->server = dup_or_raise(L, server, n);
	if (!tls_name || !https) {
		c->url_base = dup_str(L, c->server);
		return 0;
	}
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *url = NULL, *given_port = NULL;
	char *connect_to = NULL, *host_header = NULL;
	int rc = -1;
	if (!u)
		goto done;
	if (curl_url_set(u, CURLUPART_URL, c->server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		rc = entry_fail(c, e, "server %s is not a valid URL", c->server);
		goto done;
	}
	if (curl_url_get(u, CURLUPART_PORT, &given_port, CURLU_NO_DEFAULT_PORT) != CURLUE_OK)
		given_port = NULL;
	if (curl_url_set(u, CURLUPART_HOST, tls_name, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		rc = entry_fail(c, e, "tls-server-name %s is not a valid host name", tls_name);
		goto done;
	}
	if (asprintf(&connect_to, "%s:%s:%s:%s", tls_name, port, host, port) < 0)
		connect_to = NULL;
	if (asprintf(&host_header, "Host: %s%s%s", host, given_port ? ":" : "",
	             given_port ? given_port : "") < 0)
		host_header = NULL;
	size_t ulen = strlen(url);
	while (ulen > 0 && url[ulen - 1] == '/')
		ulen--;
	c->url_base = k8s_memdup(url, ulen);
	c->host_header = host_header;
	if (connect_to)
		c->connect_to = curl_slist_append(NULL, connect_to);
	free(connect_to);
	rc = c->url_base && c->host_header && c->connect_to ? 0 : -2;
done:
	curl_free(host);
	curl_free(port);
	curl_free(given_port);
	curl_free(url);
	curl_url_cleanup(u);
	if (rc == -2 || !u)
		return luaL_error(L, "not enough memory");
	return rc;
}

static int use_cluster(lua_State *L, struct k8s_config *c, const struct entry *e)
{
	luaL_checkstack(L, LUA_MINSTACK, "k8s.client");
	const char *server, *ca_file, *ca_data, *tls_name, *proxy;
	int insecure;
	if (get_string(L, c, e, "server", &server, NULL) != 0 ||
	    get_string(L, c, e, "certificate-authority", &ca_file, NULL) != 0 ||
	    get_string(L, c, e, "certificate-authority-data", &ca_data, NULL) != 0 ||
	    get_string(L, c, e, "tls-server-name", &tls_name, NULL) != 0 ||
	    get_string(L, c, e, "proxy-url", &proxy, NULL) != 0 ||
	    get_bool(L, c, e, "insecure-skip-tls-verify", &insecure) != 0 ||
	    get_bool(L, c, e, "disable-compression", &c->no_compression) != 0)
		return -1;
	if (!server)
		return entry_fail(c, e, "no server found");
	if (insecure && (ca_file || ca_data))
		return entry_fail(c, e, "specifying a root certificates file with the insecure flag is not allowed");
	if (load_pem(L, c, e, "certificate-authority-data", "certificate-authority", &c->ca,
	             &c->ca_len) != 0)
		return -1;
	if (insecure) {
		c->insecure = 1;
		log_msg(LOG_WARN, "%s: cluster \"%s\": insecure-skip-tls-verify is set: the server's "
		        "certificate is not checked", e->file, e->name);
	}
	if (proxy) {
		if (strncmp(proxy, "http://", 7) == 0 || strncmp(proxy, "https://", 8) == 0) {
			c->proxy = dup_str(L, proxy);
		} else if (strncmp(proxy, "socks5://", 9) == 0) {
			/* Go's SOCKS5 dialer lets the proxy resolve host names: socks5h */
			c->proxy = dup_str(L, lua_pushfstring(L, "socks5h://%s", proxy + 9));
		} else {
			const char *colon = strstr(proxy, "://");
			return entry_fail(c, e, "proxy-url: unsupported scheme \"%.*s\", must be http, https, or socks5",
			                  colon ? (int)(colon - proxy) : 0, proxy);
		}
	}
	return set_server(L, c, e, server, tls_name);
}

/* ---- the user ---- */

/* Pushes spec.cluster of an ExecCredential (provideClusterInfo). */
static void push_exec_cluster(lua_State *L, struct k8s_config *c, const struct entry *cl)
{
	luaL_checkstack(L, LUA_MINSTACK, "k8s.client");
	static const char *const copied[] = {"tls-server-name", "proxy-url", NULL};
	lua_newtable(L);
	int t = lua_gettop(L);
	lua_pushstring(L, c->server);
	lua_setfield(L, t, "server");
	for (const char *const *k = copied; *k; k++) {
		if (lua_getfield(L, cl->tbl, *k) == LUA_TSTRING && lua_rawlen(L, -1) > 0)
			lua_setfield(L, t, *k);
		else
			lua_pop(L, 1);
	}
	if (c->insecure) {
		lua_pushboolean(L, 1);
		lua_setfield(L, t, "insecure-skip-tls-verify");
	}
	if (c->no_compression) {
		lua_pushboolean(L, 1);
		lua_setfield(L, t, "disable-compression");
	}
	if (c->ca) {
		luaL_Buffer b;
		size_t n = b64_encoded_len(c->ca_len, 0);
		char *dst = luaL_buffinitsize(L, &b, n);
		b64_encode((const unsigned char *)c->ca, c->ca_len, dst, 0);
		luaL_pushresultsize(&b, n);
		lua_setfield(L, t, "certificate-authority-data");
	}
	/* the cluster's exec extension is the plugin's spec.cluster.config */
	if (lua_getfield(L, cl->tbl, "extensions") == LUA_TTABLE) {
		int ext = lua_gettop(L);
		for (lua_Integer i = 1; lua_rawgeti(L, ext, i) == LUA_TTABLE; i++) {
			if (lua_getfield(L, -1, "name") == LUA_TSTRING &&
			    strcmp(lua_tostring(L, -1), EXEC_EXTENSION) == 0) {
				lua_getfield(L, -2, "extension");
				lua_setfield(L, t, "config");
			}
			lua_settop(L, ext);
		}
	}
	lua_settop(L, t);
}

/* lua_pcall'd: pushes the JSON of the value at 1. */
static int encode_exec_info(lua_State *L)
{
	json_encode_push(L, 1);
	return 1;
}

/* Sets c->creds->exec up from the user's exec mapping (at ex_tbl). The argv and env
 * arrays are calloc'd first and filled in order, so a raise half way leaves
 * NULL-terminated arrays that k8s_exec_free frees. */
static int use_exec(lua_State *L, struct k8s_config *c, const struct entry *u, int ex_tbl,
                    const struct entry *cl)
{
	luaL_checkstack(L, LUA_MINSTACK, "k8s.client");
	struct entry ex = *u;
	ex.tbl = ex_tbl;
	const char *api, *command, *hint, *mode;
	int provide;
	if (get_string(L, c, &ex, "apiVersion", &api, NULL) != 0 ||
	    get_string(L, c, &ex, "command", &command, NULL) != 0 ||
	    get_string(L, c, &ex, "installHint", &hint, NULL) != 0 ||
	    get_string(L, c, &ex, "interactiveMode", &mode, NULL) != 0 ||
	    get_bool(L, c, &ex, "provideClusterInfo", &provide) != 0)
		return -1;
	if (!api || (strcmp(api, EXEC_V1) != 0 && strcmp(api, EXEC_V1BETA1) != 0))
		return entry_fail(c, u, "exec plugin: invalid apiVersion \"%s\"", api ? api : "");
	if (!command)
		return entry_fail(c, u, "exec plugin: command must be specified");
	if (!mode && strcmp(api, EXEC_V1) == 0)
		return entry_fail(c, u, "interactiveMode must be specified to use exec authentication plugin");
	if (mode && strcmp(mode, "Always") == 0)
		return entry_fail(c, u, "exec plugin: interactiveMode Always needs a terminal, and xcsreg "
		                  "never gives exec plugins one (their stdin is /dev/null); use IfAvailable or Never");
	if (mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0)
		return entry_fail(c, u, "exec plugin: invalid interactiveMode \"%s\"", mode);

	int args = 0, env = 0;
	if (lua_getfield(L, ex_tbl, "args") == LUA_TTABLE)
		args = lua_gettop(L);
	else if (!lua_isnil(L, -1))
		return entry_fail(c, u, "exec plugin: args must be a list of strings");
	if (lua_getfield(L, ex_tbl, "env") == LUA_TTABLE)
		env = lua_gettop(L);
	else if (!lua_isnil(L, -1))
		return entry_fail(c, u, "exec plugin: env must be a list of {name, value}");
	size_t nargs = args ? lua_rawlen(L, args) : 0, nenv = env ? lua_rawlen(L, env) : 0;

	struct k8s_exec *e = calloc(1, sizeof *e);
	if (!e)
		return luaL_error(L, "not enough memory");
	c->creds->exec = e;
	e->argv = calloc(nargs + 2, sizeof *e->argv);
	e->env = calloc(nenv + 2, sizeof *e->env);
	if (!e->argv || !e->env)
		return luaL_error(L, "not enough memory");
	e->command = dup_str(L, command);
	e->api_version = dup_str(L, api);
	if (hint)
		e->install_hint = dup_str(L, hint);
	/* a command with a '/' is relative to the kubeconfig; a bare name is looked up in PATH */
	e->argv[0] = dup_str(L, strchr(command, '/') ? push_resolved(L, u, command) : command);
	for (size_t i = 0; i < nargs; i++) {
		if (lua_rawgeti(L, args, (lua_Integer)i + 1) != LUA_TSTRING)
			return entry_fail(c, u, "exec plugin: args[%zu] must be a string", i);
		e->argv[i + 1] = dup_str(L, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	for (size_t i = 0; i < nenv; i++) {
		lua_rawgeti(L, env, (lua_Integer)i + 1);
		if (!lua_istable(L, -1) || lua_getfield(L, -1, "name") != LUA_TSTRING ||
		    lua_rawlen(L, -1) == 0 || strchr(lua_tostring(L, -1), '=') ||
		    lua_getfield(L, -2, "value") != LUA_TSTRING)
			return entry_fail(c, u, "exec plugin: env[%zu] must have a name and a string value", i);
		e->env[i] = dup_str(L, lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1)));
		lua_pop(L, 4);
	}

	/* KUBERNETES_EXEC_INFO: always set, last so that it wins */
	lua_createtable(L, 0, 3); /* info */
	int info = lua_gettop(L);
	lua_pushstring(L, api);
	lua_setfield(L, info, "apiVersion");
	lua_pushliteral(L, "ExecCredential");
	lua_setfield(L, info, "kind");
	lua_createtable(L, 0, 2); /* info spec */
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "interactive");
	if (provide) {
		push_exec_cluster(L, c, cl);
		lua_setfield(L, -2, "cluster");
	}
	lua_setfield(L, info, "spec");
	/* the extension is YAML from the file, which JSON may not hold (.inf) */
	lua_pushcfunction(L, encode_exec_info);
	lua_pushvalue(L, info);
	int status = lua_pcall(L, 1, 1, 0); /* info json|message */
	if (status == LUA_ERRMEM)
		return lua_error(L);
	if (status != LUA_OK)
		return entry_fail(c, cl, "extension %s cannot be passed to the exec plugin: %s", EXEC_EXTENSION,
		                  lua_tostring(L, -1));
	e->env[nenv] = dup_str(L, lua_pushfstring(L, "KUBERNETES_EXEC_INFO=%s", lua_tostring(L, -1)));
	lua_settop(L, info - 1);
	return 0;
}

static int use_user(lua_State *L, struct k8s_config *c, const struct entry *u,
                    const struct entry *cl)
{
	luaL_checkstack(L, LUA_MINSTACK, "k8s.client");
	if (lua_getfield(L, u->tbl, "auth-provider") == LUA_TTABLE) {
		const char *name = lua_getfield(L, -1, "name") == LUA_TSTRING ? lua_tostring(L, -1) : "(unnamed)";
		return entry_fail(c, u, "auth-provider %s is not supported; use an exec plugin "
		                  "(client.authentication.k8s.io/v1)", name);
	}
	const char *token, *token_file, *username, *password, *cert, *cert_data, *key, *key_data;
	size_t token_len, password_len;
	if (get_string(L, c, u, "token", &token, &token_len) != 0 ||
	    get_string(L, c, u, "tokenFile", &token_file, NULL) != 0 ||
	    get_string(L, c, u, "username", &username, NULL) != 0 ||
	    get_string(L, c, u, "password", &password, &password_len) != 0 ||
	    get_string(L, c, u, "client-certificate", &cert, NULL) != 0 ||
	    get_string(L, c, u, "client-certificate-data", &cert_data, NULL) != 0 ||
	    get_string(L, c, u, "client-key", &key, NULL) != 0 ||
	    get_string(L, c, u, "client-key-data", &key_data, NULL) != 0)
		return -1;
	int exec = lua_getfield(L, u->tbl, "exec");
	if (exec != LUA_TNIL && exec != LUA_TTABLE)
		return entry_fail(c, u, "exec must be a mapping");
	exec = exec == LUA_TTABLE ? lua_gettop(L) : 0;

	/* client-go allows one of these at most; a client certificate can go with any */
	int has_token = token || token_file, has_basic = username || password;
	if (has_token + has_basic + (exec != 0) > 1)
		return entry_fail(c, u, "more than one authentication method found; found [%s%s%s], only one is allowed",
		                  has_token ? "token " : "", has_basic ? "basicAuth " : "",
		                  exec ? "exec" : "");
	if ((cert || cert_data) && !(key || key_data))
		return entry_fail(c, u, "client-key-data or client-key must be specified to use the clientCert authentication method");
	if ((key || key_data) && !(cert || cert_data))
		return entry_fail(c, u, "client-certificate-data or client-certificate must be specified to use the clientCert authentication method");

	/* as ssh of private keys, and helm of kubeconfigs: a warning, not a refusal */
	struct stat st;
	if ((token || password || key_data) && stat(u->file, &st) == 0)
		secret_file_warn_open("kubeconfig", u->file, (unsigned)st.st_mode, (unsigned)st.st_uid);

	if (strncmp(c->server, "http://", 7) == 0) {
		/* as client-go: credentials only go over TLS */
		if (has_token || has_basic || exec || cert || cert_data)
			log_msg(LOG_WARN, "%s: user \"%s\": the server %s is not https: no credentials are sent",
			        u->file, u->name, c->server);
		return 0;
	}
	if (key_data) /* the base64 form is key material too */
		log_add_secret(key_data, strlen(key_data));
	if (load_pem(L, c, u, "client-certificate-data", "client-certificate", &c->creds->cert, &c->creds->cert_len) != 0 ||
	    load_pem(L, c, u, "client-key-data", "client-key", &c->creds->key, &c->creds->key_len) != 0)
		return -1;
	if (c->creds->key)
		log_add_secret(c->creds->key, c->creds->key_len);
	if (token) {
		log_add_secret(token, token_len);
		c->creds->token = dup_or_raise(L, token, token_len);
	}
	if (token_file) {
		c->creds->token_file = dup_str(L, push_resolved(L, u, token_file));
		if (k8s_auth_load_token_file(c->creds, SECRET_WARN_READABLE | SECRET_WARN_WRITABLE) != 0) {
			char why[K8S_MSG_SIZE];
			memcpy(why, c->msg, sizeof why);
			return entry_fail(c, u, "%s", why);
		}
	}
	if (has_basic) {
		if (password)
			log_add_secret(password, password_len);
		const char *plain = lua_pushfstring(L, "%s:%s", username ? username : "", password ? password : "");
		size_t plen = lua_rawlen(L, -1), n = b64_encoded_len(plen, 0);
		c->creds->basic = malloc(n + 7);
		if (!c->creds->basic)
			return luaL_error(L, "not enough memory");
		memcpy(c->creds->basic, "Basic ", 6);
		b64_encode((const unsigned char *)plain, plen, c->creds->basic + 6, 0);
		c->creds->basic[n + 6] = '\0';
		log_add_secret(c->creds->basic + 6, n);
	}
	if (exec)
		return use_exec(L, c, u, exec, cl);
	return 0;
}

/* ---- a kubeconfig context ---- */

static int use_context(lua_State *L, struct k8s_config *c, const struct k8s_options *o, int m,
                       int files, const char *name)
{
	luaL_checkstack(L, LUA_MINSTACK, "k8s.client");
	struct entry ctx, cl, u;
	if (lua_rawlen(L, files) == 0)
		return k8s_fail(c, "context \"%s\" does not exist: no kubeconfig file was found", name);
	if (find_entry(L, m, "contexts", "context", name, &ctx) != 0)
		return k8s_fail(c, "%s: context \"%s\" does not exist", push_joined(L, files), name);
	const char *cluster, *user, *ns;
	if (get_string(L, c, &ctx, "cluster", &cluster, NULL) != 0 ||
	    get_string(L, c, &ctx, "user", &user, NULL) != 0 ||
	    get_string(L, c, &ctx, "namespace", &ns, NULL) != 0)
		return -1;
	if (!cluster)
		return entry_fail(c, &ctx, "no cluster is set");
	c->context = dup_str(L, name);
	c->namespace = dup_str(L, o->namespace ? o->namespace : ns ? ns : "default");
	if (find_entry(L, m, "clusters", "cluster", cluster, &cl) != 0)
		return entry_fail(c, &ctx, "cluster \"%s\" does not exist", cluster);
	if (use_cluster(L, c, &cl) != 0)
		return -1;
	if (!user)
		return 0;
	if (find_entry(L, m, "users", "user", user, &u) != 0)
		return entry_fail(c, &ctx, "user \"%s\" does not exist", user);
	return use_user(L, c, &u, &cl);
}

/* ---- in-cluster ---- */

static const char *in_cluster_dir(const struct k8s_options *o)
{
	const char *env = getenv("XCSREG_IN_CLUSTER_DIR");
	if (o->in_cluster_dir)
		return o->in_cluster_dir;
	return env && *env ? env : DEFAULT_IN_CLUSTER_DIR;
}

/* client-go's Possible(): the service variables are set and the token is
 * there. Sets *host and *port. */
static int in_cluster_possible(lua_State *L, const char *dir, const char **host, const char **port)
{
	*host = getenv("KUBERNETES_SERVICE_HOST");
	*port = getenv("KUBERNETES_SERVICE_PORT");
	if (!*host || !**host || !*port || !**port)
		return 0;
	int ok = is_file(lua_pushfstring(L, "%s/token", dir));
	lua_pop(L, 1);
	return ok;
}

static int use_in_cluster(lua_State *L, struct k8s_config *c, const struct k8s_options *o,
                          const char *dir, const char *host, const char *port)
{
	/* an IPv6 address needs brackets in a URL */
	c->server = dup_str(L, lua_pushfstring(L, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
	                                       host, port));
	c->url_base = dup_str(L, c->server);
	c->creds->token_file = dup_str(L, lua_pushfstring(L, "%s/token", dir));
	if (k8s_auth_load_token_file(c->creds, SECRET_WARN_WRITABLE) != 0) /* a projected token is 0644 */
		return -1;
	const char *ca = lua_pushfstring(L, "%s/ca.crt", dir);
	if (is_file(ca) && k8s_read_file(c, "in-cluster CA", ca, &c->ca, &c->ca_len) != 0)
		return -1;
	const char *ns = o->namespace ? o->namespace : getenv("POD_NAMESPACE");
	const char *ns_file = lua_pushfstring(L, "%s/namespace", dir);
	size_t len;
	if ((!ns || !*ns) && is_file(ns_file) &&
	    k8s_read_file(c, "in-cluster namespace", ns_file, &c->scratch, &len) == 0) {
		const char *s = c->scratch, *e = c->scratch + len;
		while (s < e && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
			e--;
		ns = lua_pushlstring(L, s, (size_t)(e - s));
		k8s_wipe(&c->scratch, len);
	}
	c->namespace = dup_str(L, ns && *ns ? ns : "default");
	return 0;
}

/* ---- entry point ---- */

static int configure(lua_State *L, struct k8s_config *c, const struct k8s_options *o)
{
	if (push_file_list(L, c, o) != 0)
		return -1;
	int files = lua_gettop(L);
	lua_createtable(L, 0, 4); /* files m */
	int m = lua_gettop(L);
	static const char *const lists[] = {"clusters", "users", "contexts"};
	for (int i = 0; i < 3; i++) {
		lua_newtable(L);
		lua_setfield(L, m, lists[i]);
	}
	lua_Integer nfiles = (lua_Integer)lua_rawlen(L, files);
	for (lua_Integer i = 1; i <= nfiles; i++) {
		lua_rawgeti(L, files, i);
		if (load_file(L, c, m, lua_tostring(L, -1)) != 0)
			return -1;
		lua_settop(L, m);
	}
	const char *name = o->context;
	if (!name && lua_getfield(L, m, "current") == LUA_TSTRING)
		name = lua_tostring(L, -1);
	if (!name) {
		const char *dir = in_cluster_dir(o), *host, *port;
		if (in_cluster_possible(L, dir, &host, &port))
			return use_in_cluster(L, c, o, dir, host, port);
		if (nfiles == 0)
			return k8s_fail(c, "no configuration: set KUBECONFIG, --kubeconfig, or run in a cluster");
		return k8s_fail(c, "%s: no current-context is set and no context was given",
		                push_joined(L, files));
	}
	return use_context(L, c, o, m, files, name);
}

int k8s_configure(lua_State *L, struct k8s_config *c, const struct k8s_options *o)
{
	int top = lua_gettop(L);
	luaL_checkstack(L, 40, "k8s.client");
	int rc = configure(L, c, o);
	lua_settop(L, top);
	return rc;
}

void k8s_config_free(struct k8s_config *c)
{
	curl_slist_free_all(c->connect_to);
	c->connect_to = NULL;
	char **strings[] = {&c->server, &c->url_base, &c->host_header, &c->context, &c->namespace,
	                    &c->ca, &c->proxy};
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
	k8s_wipe_str(&c->scratch);
}
