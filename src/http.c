/*
 * http.c: the 'http' module, HTTP(S) requests over libcurl.
 *
 *   http.request{url =, method =, headers =, body =, ...}
 *     -> status, headers, body, info | nil, message
 *   http.request_all(requests [, {concurrency = n}]) -> results
 *
 * http.request blocks on one easy handle per Lua state (an upvalue), reset
 * and reused for every request. http.request_all sends a list of such
 * requests at once over a curl multi handle, at most n (default 8) in
 * flight, and returns when all are over: results[i] is what
 * http.request(requests[i]) would have returned, packed as table.pack
 * packs it ({status, headers, body, info, n = 4} or {nil, message, n = 2}),
 * whatever order the answers came in. One transfer failing is its own
 * result only; a misused option in any request raises before anything is
 * sent. Where a server speaks HTTP/2 the transfers to it wait for one
 * connection and share it (CURLOPT_PIPEWAIT, CURLPIPE_MULTIPLEX); else at
 * most n connections are opened to a host (CURLMOPT_MAX_HOST_CONNECTIONS).
 *
 * Why a batch and not coroutines that yield in http.request, as k8s_map.c
 * does for the Kubernetes client: no Lua code runs while transfers are in
 * flight, so nothing can resume, abandon or re-enter a transfer halfway,
 * and this file has no scheduler to get right. A caller with coroutines
 * keeps them in Lua, on top: xcsreg.pull's checks yield their requests,
 * and each round of them goes out as one batch (every registry's
 * challenge, then every token, then every manifest). The price is that a
 * round lasts as long as its slowest request, which a few rounds afford.
 *
 * Both share one connection pool (a curl share handle: connections, TLS
 * sessions, DNS), so a connection opened by either serves the other.
 * libcurl's callbacks only append to C buffers owned by userdata; the Lua
 * strings and tables are made once a transfer is over, so a Lua error can
 * neither cross libcurl nor leak what it holds. A batch's transfers belong
 * to a to-be-closed userdata whose __close takes every one out of the multi
 * handle and frees it: an error or an out-of-memory while results are
 * being made leaves nothing in flight.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "curl_lazy.h"
#include "xcsreg.h"

#define HTTP_STATE_MT "xcsreg.http"
#define HTTP_BATCH_MT "xcsreg.http.Batch"
#define HTTP_DEFAULT_TIMEOUT 30.0
#define HTTP_DEFAULT_CONNECT_TIMEOUT 10.0
/* What this module fetches (registry tokens, credential endpoints, a
 * registry's /v2/ answer) is kilobytes; 64 MiB leaves room for any of it
 * and for a large manifest while bounding what a broken or hostile server
 * can make a run hold. The max_body option changes it per request. */
#define HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)
#define HTTP_MAX_REDIRECTS 5L
#define HTTP_DEFAULT_CONCURRENCY 8
#define HTTP_MAX_CONCURRENCY 64
/* Idle connections kept in the pool: a few hosts, each with up to
 * HTTP_MAX_CONCURRENCY HTTP/1.1 connections after a batch. libcurl's own
 * default for a blocking perform (5) would close a batch's connections. */
#define HTTP_POOL_CONNECTIONS (4L * HTTP_MAX_CONCURRENCY)

struct buf {
	char *data;
	size_t len, cap;
};

/* One transfer: an easy handle and what its callbacks collect. */
struct xfer {
	CURL *curl;
	struct curl_slist *req_headers;   /* the current request's header lines */
	struct buf body;                  /* the response body */
	struct buf head;                  /* the final response's header lines */
	size_t max_body;                  /* cap on body, and on the header block */
	int too_big, no_memory;           /* why a callback stopped the transfer */
	lua_Integer item;                 /* a batch's: index in its list, 0 when free */
	int in_multi;                     /* a batch's: added to the multi handle */
	char errbuf[CURL_ERROR_SIZE];
};

struct batch;

/* The module's state, an upvalue of its functions; created closed. */
struct http_state {
	struct xfer x;            /* http.request's */
	CURLSH *share;            /* the connection pool of x and every batch */
	CURLM *multi;             /* http.request_all's, kept between batches */
	struct batch *batch;      /* the batch in progress, if any */
	int closed;
};

/* A running http.request_all: n transfers, to-be-closed. */
struct batch {
	struct http_state *h;
	struct xfer *x;
	int n;
};

static void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int buf_append(struct buf *b, const char *data, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap - b->len < n)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return -1;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

/* Appends to b unless that would pass the cap; 0, or n to stop the transfer. */
static size_t collect(struct xfer *x, struct buf *b, const char *data, size_t n)
{
	if (b->len + n > x->max_body) {
		x->too_big = 1;
		return 0;
	}
	if (buf_append(b, data, n) < 0) {
		x->no_memory = 1;
		return 0;
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	return collect(x, &x->body, data, size * nmemb);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nitems;
	/* A status line starts a new block: after a 1xx or a followed redirect
	 * only the final response's headers are kept. */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
		x->head.len = 0;
	return collect(x, &x->head, data, n);
}

/* Frees the request's header list once the handle no longer points at it. */
static void free_req_headers(struct xfer *x)
{
	if (x->req_headers) {
		if (x->curl)
			curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
		curl_slist_free_all(x->req_headers);
		x->req_headers = NULL;
	}
}

/* Frees what the last response left (up to max_body bytes, not to be kept
 * until the next request). */
static void xfer_trim(struct xfer *x)
{
	buf_free(&x->body);
	buf_free(&x->head);
}

/* Frees everything of x; the handle must be out of any multi handle. */
static void xfer_free(struct xfer *x)
{
	free_req_headers(x);
	if (x->curl) {
		curl_easy_cleanup(x->curl);
		x->curl = NULL;
	}
	xfer_trim(x);
}

/* ---- the batch's and the module's lifetimes ---- */

/* __close and __gc of a batch: nothing of it stays in flight. */
static void batch_release(struct batch *b)
{
	if (!b->h)
		return;
	for (int i = 0; i < b->n; i++) {
		if (b->x[i].in_multi)
			curl_multi_remove_handle(b->h->multi, b->x[i].curl);
		b->x[i].in_multi = 0;
		xfer_free(&b->x[i]);
	}
	free(b->x);
	b->x = NULL;
	b->n = 0;
	b->h->batch = NULL;
	b->h = NULL;
}

static int batch_close(lua_State *L)
{
	batch_release(luaL_checkudata(L, 1, HTTP_BATCH_MT));
	return 0;
}

static int state_close(lua_State *L)
{
	struct http_state *h = luaL_checkudata(L, 1, HTTP_STATE_MT);
	h->closed = 1;
	if (h->batch)
		batch_release(h->batch);
	xfer_free(&h->x);
	if (h->multi) {
		curl_multi_cleanup(h->multi);
		h->multi = NULL;
	}
	if (h->share) { /* after every handle using it: closes the pooled connections */
		curl_share_cleanup(h->share);
		h->share = NULL;
	}
	return 0;
}

/* Loads libcurl and makes the connection pool, once; raises if it cannot. */
static void state_ready(lua_State *L, struct http_state *h)
{
	if (h->closed)
		luaL_error(L, "the http module's handle is closed");
	if (h->share)
		return;
	const char *why = curl_lazy_load(); /* the first request loads libcurl: requiring http does not */
	if (why)
		luaL_error(L, "module 'http' needs libcurl: %s", why);
	if (!(h->share = curl_share_init()))
		luaL_error(L, "cannot initialise libcurl");
	static const curl_lock_data shared[] = {CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_SSL_SESSION,
	                                        CURL_LOCK_DATA_DNS};
	for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++)
		if (curl_share_setopt(h->share, CURLSHOPT_SHARE, shared[i]) != CURLSHE_OK)
			luaL_error(L, "cannot initialise libcurl's connection pool");
}

/* ---- options ---- */

static const char *const request_options[] = {
    "aws_sigv4", "basic_auth", "body", "ca_file", "ca_pem", "connect_timeout", "follow_redirects",
    "headers", "insecure", "max_body", "method", "no_proxy", "timeout", "url", NULL,
};

/* A positive number of seconds as libcurl's milliseconds. */
static long opt_millis(lua_State *L, int idx, const char *key, double def)
{
	long ms = (long)(opt_seconds(L, idx, key, def) * 1000);
	return ms > 0 ? ms : 1;
}

/* RFC 9110 token characters: method and header names. */
static int is_token(const char *s, size_t len)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(extra, c))))
			return 0;
	}
	return 1;
}

/* Element i of the two-string list at idx (basic_auth), left on the stack. */
static const char *auth_part(lua_State *L, int opts, int idx, int i)
{
	size_t len;
	if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
		luaL_argerror(L, opts, lua_pushfstring(L, "basic_auth[%d] must be a string, got %s", i,
		                                      luaL_typename(L, -1)));
	const char *s = lua_tolstring(L, -1, &len);
	if (strlen(s) != len)
		luaL_argerror(L, opts, lua_pushfstring(L, "basic_auth[%d] contains a NUL byte", i));
	return s;
}

/* Checks the headers table at idx and, when x is given, appends its
 * "Name: value" lines to x->req_headers (owned by x, so a raise here leaks
 * nothing). Returns flags for the headers the caller gave that libcurl
 * would otherwise add. */
#define HAS_CONTENT_TYPE 1
#define HAS_EXPECT 2
static int add_headers(lua_State *L, struct xfer *x, int opts, int idx)
{
	int has = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) { /* ... key value */
		size_t nlen, vlen;
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_argerror(L, opts, lua_pushfstring(L, "headers: names must be strings, got %s",
			                                      luaL_typename(L, -2)));
		const char *name = lua_tolstring(L, -2, &nlen);
		if (!is_token(name, nlen))
			luaL_argerror(L, opts, lua_pushfstring(L, "headers: bad header name '%s'", name));
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, opts, lua_pushfstring(L, "headers.%s must be a string, got %s", name,
			                                      luaL_typename(L, -1)));
		const char *value = lua_tolstring(L, -1, &vlen);
		if (strcspn(value, "\r\n") != vlen)
			luaL_argerror(L, opts, lua_pushfstring(L, "headers.%s contains a line break or NUL byte", name));
		if (!x) {
			lua_pop(L, 1);
			continue;
		}
		if (curl_strequal(name, "Content-Type"))
			has |= HAS_CONTENT_TYPE;
		if (curl_strequal(name, "Expect"))
			has |= HAS_EXPECT;
		/* "Name;" is how libcurl is told to send a header with an empty value */
		const char *line = vlen ? lua_pushfstring(L, "%s: %s", name, value)
		                        : lua_pushfstring(L, "%s;", name);
		struct curl_slist *l = curl_slist_append(x->req_headers, line);
		if (!l)
			luaL_error(L, "not enough memory");
		x->req_headers = l;
		lua_pop(L, 2); /* ... key */
	}
	return has;
}

static void add_header_line(lua_State *L, struct xfer *x, const char *line)
{
	struct curl_slist *l = curl_slist_append(x->req_headers, line);
	if (!l)
		luaL_error(L, "not enough memory");
	x->req_headers = l;
}

/* ---- results ---- */

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Pushes a table of the header lines in head: lower-case names, repeated
 * headers joined with ", " as RFC 9110 allows. */
static void push_headers(lua_State *L, const struct buf *head)
{
	lua_newtable(L);
	int tbl = lua_gettop(L);
	const char *p = head->data, *end = p + head->len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		const char *stop = eol ? eol : end;
		if (stop > p && stop[-1] == '\r')
			stop--;
		const char *colon = memchr(p, ':', (size_t)(stop - p));
		if (colon && colon > p && !(stop - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
			luaL_Buffer name;
			luaL_buffinit(L, &name);
			for (const char *c = p; c < colon; c++)
				luaL_addchar(&name, *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c);
			luaL_pushresult(&name); /* tbl name */
			const char *v = colon + 1, *vend = stop;
			while (v < vend && is_space(*v))
				v++;
			while (vend > v && is_space(vend[-1]))
				vend--;
			lua_pushvalue(L, -1);
			if (lua_rawget(L, tbl) == LUA_TSTRING) { /* tbl name earlier */
				lua_pushliteral(L, ", ");
				lua_pushlstring(L, v, (size_t)(vend - v));
				lua_concat(L, 3);
			} else {
				lua_pop(L, 1);
				lua_pushlstring(L, v, (size_t)(vend - v));
			}
			lua_rawset(L, tbl); /* tbl */
		}
		p = next;
	}
}


/* Reads the request options of the table at idx, raising on misuse, and
 * when x is given sets x's handle up to send it (made here if need be).
 * Leaves one value on the stack: the url. libcurl copies every string it
 * is given here (the body too: CURLOPT_COPYPOSTFIELDS), so nothing else
 * needs to stay alive until the transfer is over. */
static const char *request_setup(lua_State *L, int idx, struct http_state *h, struct xfer *x, int pooled)
{
	idx = lua_absindex(L, idx);
	int top = lua_gettop(L);
	luaL_checktype(L, idx, LUA_TTABLE);
	opt_check_keys(L, idx, request_options);
	const char *url = opt_cstring(L, idx, "url");
	if (!url)
		luaL_argerror(L, idx, "option 'url' is required");
	int url_idx = lua_gettop(L);
	const char *method = opt_cstring(L, idx, "method");
	if (!method)
		method = "GET";
	else if (!is_token(method, strlen(method)))
		luaL_argerror(L, idx, lua_pushfstring(L, "bad method '%s'", method));
	size_t body_len = 0;
	const char *body = NULL;
	if (opt_field(L, idx, "body", LUA_TSTRING))
		body = lua_tolstring(L, -1, &body_len);
	else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
		body = ""; /* sent with Content-Length: 0, which servers expect */
	int headers_idx = opt_field(L, idx, "headers", LUA_TTABLE) ? lua_gettop(L) : 0;
	long timeout_ms = opt_millis(L, idx, "timeout", HTTP_DEFAULT_TIMEOUT);
	long connect_ms = opt_millis(L, idx, "connect_timeout", HTTP_DEFAULT_CONNECT_TIMEOUT);
	const char *ca_file = opt_cstring(L, idx, "ca_file");
	struct curl_blob ca_pem = {NULL, 0, CURL_BLOB_COPY};
	if (opt_field(L, idx, "ca_pem", LUA_TSTRING))
		ca_pem.data = (void *)lua_tolstring(L, -1, &ca_pem.len);
	if (ca_file && ca_pem.data)
		luaL_argerror(L, idx, "give ca_file or ca_pem, not both");
	int insecure = opt_boolean(L, idx, "insecure");
	const char *user = NULL, *password = NULL;
	if (opt_field(L, idx, "basic_auth", LUA_TTABLE)) {
		int auth = lua_gettop(L);
		user = auth_part(L, idx, auth, 1);
		password = auth_part(L, idx, auth, 2);
	}
	const char *aws_sigv4 = opt_cstring(L, idx, "aws_sigv4");
	if (aws_sigv4 && !user)
		luaL_argerror(L, idx, "aws_sigv4 needs basic_auth = {access_key, secret_key}");
	size_t max_body = opt_size(L, idx, "max_body", HTTP_DEFAULT_MAX_BODY);
	int follow = opt_boolean(L, idx, "follow_redirects");
	int no_proxy = opt_boolean(L, idx, "no_proxy");
	if (!x) {
		if (headers_idx)
			add_headers(L, NULL, idx, headers_idx);
		goto done;
	}

	state_ready(L, h); /* only now: a misused option does not load libcurl */
	if (!x->curl && !(x->curl = curl_easy_init()))
		luaL_error(L, "not enough memory");
	CURL *c = x->curl;
	curl_easy_reset(c);
	free_req_headers(x);
	x->body.len = x->head.len = 0;
	x->max_body = max_body;
	x->too_big = x->no_memory = 0;
	x->errbuf[0] = '\0';
	int has = headers_idx ? add_headers(L, x, idx, headers_idx) : 0;
	/* libcurl would otherwise label any body a form, and wait for a
	 * 100 Continue before sending a large one. Not with SigV4: libcurl
	 * before 8.3 signs these header-removing lines too (curl #11664), and
	 * AWS refuses a signature over a header that was never sent. */
	if (body && !aws_sigv4) {
		if (!(has & HAS_CONTENT_TYPE))
			add_header_line(L, x, "Content-Type:");
		if (!(has & HAS_EXPECT))
			add_header_line(L, x, "Expect:");
	}

	curl_easy_setopt(c, CURLOPT_SHARE, h->share);
	if (pooled) /* wait for a connection that may multiplex rather than open one */
		curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L);
	else /* a blocking perform must not trim the pool a batch has opened */
		curl_easy_setopt(c, CURLOPT_MAXCONNECTS, HTTP_POOL_CONNECTIONS);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "xcsreg/" XCSREG_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->req_headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	/* a Content-Length past the cap is refused before any of the body is read */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		if (curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK)
			luaL_error(L, "not enough memory");
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
	if (ca_pem.data)
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca_pem);
	if (insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (user) {
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, password);
		if (aws_sigv4)
			curl_easy_setopt(c, CURLOPT_AWS_SIGV4, aws_sigv4);
		else
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	}
	/* a cloud metadata endpoint is link-local: a proxy would only see its tokens */
	if (no_proxy)
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (follow) {
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(c, CURLOPT_MAXREDIRS, HTTP_MAX_REDIRECTS);
		curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		/* credentials stay with the host they were given for */
		curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	}
done:
	lua_pushvalue(L, url_idx);
	lua_replace(L, top + 1);
	lua_settop(L, top + 1);
	return lua_tostring(L, top + 1);
}

/* Pushes what http.request returns for x's finished transfer of url:
 * status, headers, body, info (4), or nil, message (2). Raises when the
 * response could not be held in memory. */
static int push_result(lua_State *L, struct xfer *x, const char *url, CURLcode rc)
{
	free_req_headers(x);
	luaL_checkstack(L, 10, NULL);
	if (x->no_memory) {
		xfer_trim(x);
		return luaL_error(L, "not enough memory for the response from %s", url);
	}
	if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		xfer_trim(x);
		lua_pushnil(L);
		lua_pushfstring(L, "response from %s exceeds %I bytes", url, (lua_Integer)x->max_body);
		return 2;
	}
	if (rc != CURLE_OK) {
		xfer_trim(x);
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", url, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
		return 2;
	}
	long status = 0, connects = 0;
	curl_off_t micros = 0;
	char *effective_url = NULL;
	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->curl, CURLINFO_NUM_CONNECTS, &connects);
	curl_easy_getinfo(x->curl, CURLINFO_TOTAL_TIME_T, &micros);
	curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &effective_url);
	lua_pushinteger(L, status);
	push_headers(L, &x->head);
	lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len);
	lua_createtable(L, 0, 3); /* status headers body info */
	lua_pushinteger(L, connects);
	lua_setfield(L, -2, "connects");
	lua_pushnumber(L, (lua_Number)micros / 1e6);
	lua_setfield(L, -2, "time");
	lua_pushstring(L, effective_url ? effective_url : url);
	lua_setfield(L, -2, "effective_url");
	/* a large response should not stay allocated until the next request */
	xfer_trim(x);
	return 4;
}

static int push_not_sent(lua_State *L, const char *url)
{
	lua_pushnil(L);
	lua_pushfstring(L, "%s: not sent: the run was interrupted by %s", url, proc_signal_name(proc_interrupted()));
	return 2;
}

/* http.request{url =, method =, headers =, body =, ...}
 *   -> status, headers, body, info | nil, message */
static int http_request(lua_State *L)
{
	struct http_state *h = lua_touserdata(L, lua_upvalueindex(1));
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *url = request_setup(L, 1, h, &h->x, 0);
	if (proc_interrupted()) {
		free_req_headers(&h->x);
		return push_not_sent(L, url);
	}
	CURLcode rc = curl_easy_perform(h->x.curl);
	return push_result(L, &h->x, url, rc);
}

/* ---- http.request_all ---- */

/* Packs the n values on the stack top as table.pack would, into results[item]. */
static void store_result(lua_State *L, int results, lua_Integer item, int n)
{
	lua_createtable(L, n, 1);
	lua_insert(L, -(n + 1));
	for (int i = n; i >= 1; i--)
		lua_rawseti(L, -(i + 1), i);
	lua_pushinteger(L, n);
	lua_setfield(L, -2, "n");
	lua_rawseti(L, results, item);
}

/* Starts request number item on the free transfer x, or stores its result
 * when it cannot be sent. */
static void start(lua_State *L, struct batch *b, struct xfer *x, int list, int urls, int results, lua_Integer item)
{
	lua_geti(L, list, item);
	const char *url = request_setup(L, -1, b->h, x, 1); /* ... request url */
	lua_pushvalue(L, -1);
	lua_rawseti(L, urls, item);
	if (proc_interrupted()) {
		store_result(L, results, item, push_not_sent(L, url));
		lua_pop(L, 2);
		return;
	}
	if (curl_multi_add_handle(b->h->multi, x->curl) != CURLM_OK) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: out of memory starting the request", url);
		store_result(L, results, item, 2);
		lua_pop(L, 2);
		return;
	}
	curl_easy_setopt(x->curl, CURLOPT_PRIVATE, (void *)x);
	x->in_multi = 1;
	x->item = item;
	lua_pop(L, 2);
}

/* Takes the finished transfers out of the multi handle, stores their
 * results; returns how many finished. */
static int finish(lua_State *L, struct batch *b, int urls, int results)
{
	int running, queued, done = 0;
	CURLMcode mc = curl_multi_perform(b->h->multi, &running);
	if (mc != CURLM_OK)
		luaL_error(L, "http.request_all: %s", curl_multi_strerror(mc));
	CURLMsg *m;
	while ((m = curl_multi_info_read(b->h->multi, &queued))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURLcode rc = m->data.result;
		void *p = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
		struct xfer *x = p;
		curl_multi_remove_handle(b->h->multi, x->curl);
		x->in_multi = 0;
		lua_Integer item = x->item;
		x->item = 0;
		lua_rawgeti(L, urls, item);
		int n = push_result(L, x, lua_tostring(L, -1), rc); /* ... url values */
		store_result(L, results, item, n);
		lua_pop(L, 1);
		done++;
	}
	return done;
}

static const char *const batch_options[] = {"concurrency", NULL};

/* check_request(request): raises as http.request would for its options. */
static int check_request(lua_State *L)
{
	request_setup(L, 1, lua_touserdata(L, lua_upvalueindex(1)), NULL, 1);
	return 0;
}

/* Checks requests[i], raising "bad argument #1 to 'request_all'
 * (requests[i]: what http.request would say)" for a misused option. */
static void check_item(lua_State *L, struct http_state *h, lua_Integer i)
{
	lua_pushlightuserdata(L, h);
	lua_pushcclosure(L, check_request, 1);
	if (lua_geti(L, 1, i) != LUA_TTABLE)
		luaL_argerror(L, 1, lua_pushfstring(L, "requests[%I] must be a table, got %s", (LUA_INTEGER)i,
		                                    luaL_typename(L, -1)));
	int status = lua_pcall(L, 1, 0, 0);
	if (status == LUA_OK)
		return;
	if (status != LUA_ERRRUN || lua_type(L, -1) != LUA_TSTRING)
		lua_error(L);
	/* luaL_argerror's words, for the function called from here: */
	static const char prefix[] = "bad argument #1 to '?' (";
	size_t len;
	const char *msg = lua_tolstring(L, -1, &len);
	if (len > sizeof prefix && strncmp(msg, prefix, sizeof prefix - 1) == 0 && msg[len - 1] == ')') {
		lua_pushlstring(L, msg + sizeof prefix - 1, len - sizeof prefix);
		msg = lua_tostring(L, -1);
	}
	luaL_argerror(L, 1, lua_pushfstring(L, "requests[%I]: %s", (LUA_INTEGER)i, msg));
}

/* http.request_all(requests [, {concurrency = n}]) -> results */
static int http_request_all(lua_State *L)
{
	struct http_state *h = lua_touserdata(L, lua_upvalueindex(1));
	luaL_checktype(L, 1, LUA_TTABLE);
	int concurrency = HTTP_DEFAULT_CONCURRENCY;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		opt_check_keys(L, 2, batch_options);
		concurrency = (int)opt_integer(L, 2, "concurrency", HTTP_DEFAULT_CONCURRENCY, 1, HTTP_MAX_CONCURRENCY);
	}
	if (h->closed)
		return luaL_error(L, "the http module's handle is closed");
	if (h->batch) /* only a finalizer run by the collector mid-batch could get here */
		return luaL_error(L, "http.request_all: a batch is already running");
	lua_settop(L, 2);
	lua_Integer total = luaL_len(L, 1);
	/* every request is checked before any is sent */
	for (lua_Integer i = 1; i <= total; i++)
		check_item(L, h, i);
	int n = total < concurrency ? (int)total : concurrency;
	lua_createtable(L, total > 0 && total < INT_MAX ? (int)total : 0, 0);
	int results = lua_gettop(L);
	if (total == 0)
		return 1;
	lua_createtable(L, (int)(total < INT_MAX ? total : 0), 0);
	int urls = lua_gettop(L);
	/* the batch is owned (closed) before anything is acquired */
	struct batch *b = lua_newuserdatauv(L, sizeof *b, 0);
	memset(b, 0, sizeof *b);
	luaL_setmetatable(L, HTTP_BATCH_MT);
	lua_toclose(L, -1);
	state_ready(L, h);
	if (!h->multi) {
		if (!(h->multi = curl_multi_init()))
			return luaL_error(L, "not enough memory");
		curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
		curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, HTTP_POOL_CONNECTIONS);
	}
	/* where HTTP/2 cannot multiplex: one connection per transfer in flight, at most */
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n);
	if (!(b->x = calloc((size_t)n, sizeof *b->x)))
		return luaL_error(L, "not enough memory");
	b->n = n;
	b->h = h;
	h->batch = b;

	lua_Integer next = 1;
	int inflight = 0;
	while (next <= total || inflight > 0) {
		for (int i = 0; i < n && next <= total; i++) {
			if (b->x[i].in_multi)
				continue;
			start(L, b, &b->x[i], 1, urls, results, next++);
			if (b->x[i].in_multi)
				inflight++;
		}
		if (inflight == 0)
			continue;
		inflight -= finish(L, b, urls, results);
		if (inflight > 0) {
			CURLMcode mc = curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
			if (mc != CURLM_OK)
				return luaL_error(L, "http.request_all: %s", curl_multi_strerror(mc));
		}
	}
	lua_pushvalue(L, results);
	return 1;
}


/* ---- http.listen: a minimal responder for /healthz and /metrics ---- */

/*
 * A server answers GET requests for a script's own loop (setup.lua --watch),
 * never blocking it: server:fds() are the descriptors to wait on (the
 * k8s client's client:wait takes them as integers, so k8s never calls
 * into http), server:serve(handler) accepts what is pending, reads what
 * has arrived and answers each complete request with handler(method,
 * path) -> status, content_type, body. Bounded: at most MAX_CONNS
 * connections, MAX_REQUEST bytes of request head, CONN_IDLE_MS to send
 * it; HTTP/1.x only, every answer ends its connection (Connection: close).
 */
#define HTTP_SERVER_MT "xcsreg.http.Server"
#define MAX_CONNS 16
#define MAX_REQUEST 8192
#define MAX_CONTENT_TYPE 100  /* bytes of a handler's content type; longer ones are text/plain */
#define CONN_IDLE_MS 5000

struct http_conn {
	int fd;                  /* -1: free */
	int draining;            /* answered: what else the client sends is read and dropped until it closes */
	size_t len;
	struct timespec since;
	char req[MAX_REQUEST];
};

struct http_server {
	int fd;                  /* -1: closed */
	int port;
	int accept_paused;       /* no free slot, or accept failed: fds() leaves fd out (it would stay readable) */
	struct http_conn conns[MAX_CONNS];
};

static long ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void conn_close(struct http_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->draining = 0;
}

static void server_free(struct http_server *s)
{
	for (int i = 0; i < MAX_CONNS; i++)
		conn_close(&s->conns[i]);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static int server_close(lua_State *L)
{
	server_free(luaL_checkudata(L, 1, HTTP_SERVER_MT));
	return 0;
}

static struct http_server *check_server(lua_State *L)
{
	struct http_server *s = luaL_checkudata(L, 1, HTTP_SERVER_MT);
	if (s->fd < 0)
		luaL_error(L, "attempt to use a closed http server");
	return s;
}

/* http.listen("HOST:PORT") -> server | nil, message. HOST is an IP address
 * ([...] for IPv6); PORT 0 picks a free one (server.port). */
static int http_listen(lua_State *L)
{
	size_t len;
	const char *addr = luaL_checklstring(L, 1, &len);
	const char *colon = memrchr(addr, ':', len);
	if (!colon || colon == addr || colon[1] == '\0') {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: not an address: give HOST:PORT, e.g. 127.0.0.1:8080", addr);
		return 2;
	}
	const char *host = addr;
	size_t hlen = (size_t)(colon - addr);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
		host++, hlen -= 2;
	char hbuf[64];
	if (hlen >= sizeof hbuf) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: not an IP address", addr);
		return 2;
	}
	memcpy(hbuf, host, hlen);
	hbuf[hlen] = '\0';
	struct http_server *s = lua_newuserdatauv(L, sizeof *s, 0);
	s->fd = -1;
	s->accept_paused = 0;
	for (int i = 0; i < MAX_CONNS; i++)
		s->conns[i].fd = -1, s->conns[i].len = 0, s->conns[i].draining = 0;
	luaL_setmetatable(L, HTTP_SERVER_MT);
	struct addrinfo hints = {0}, *ai = NULL;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(hbuf, colon + 1, &hints, &ai);
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: not an IP address and port: %s", addr, gai_strerror(rc));
		return 2;
	}
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(s->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s->fd, MAX_CONNS) != 0) {
		int e = errno;
		freeaddrinfo(ai);
		server_free(s);
		lua_pushnil(L);
		lua_pushfstring(L, "cannot listen on %s: %s", addr, strerror(e));
		return 2;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(s->fd, (struct sockaddr *)&ss, &sl) == 0)
		s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                         : ((struct sockaddr_in *)&ss)->sin_port);
	return 1;
}

/* server:fds() -> the descriptors to wait on for reading. */
static int server_fds(lua_State *L)
{
	struct http_server *s = check_server(L);
	lua_createtable(L, MAX_CONNS + 1, 0);
	lua_Integer n = 0;
	if (!s->accept_paused) {
		lua_pushinteger(L, s->fd);
		lua_rawseti(L, -2, ++n);
	}
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd >= 0) {
			lua_pushinteger(L, s->conns[i].fd);
			lua_rawseti(L, -2, ++n);
		}
	return 1;
}

/* Sends a whole small answer; a client that does not take it loses it. */
static void send_answer(struct http_conn *c, int status, const char *reason, const char *ctype,
                        const char *body, size_t blen)
{
	char head[128 + MAX_CONTENT_TYPE]; /* answer() keeps ctype within MAX_CONTENT_TYPE */
	int n = snprintf(head, sizeof head,
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
	                 status, reason, ctype, blen);
	if (n < 0 || (size_t)n >= sizeof head)
		return;
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, blen}};
	struct msghdr m = {0};
	m.msg_iov = iov;
	m.msg_iovlen = blen ? 2 : 1;
	size_t left = (size_t)n + blen;
	while (left > 0) {
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		left -= (size_t)w;
		while (m.msg_iovlen > 0 && (size_t)w >= m.msg_iov[0].iov_len) {
			w -= (ssize_t)m.msg_iov[0].iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen > 0) {
			m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + w;
			m.msg_iov[0].iov_len -= (size_t)w;
		}
	}
	/* closing with unread request bytes would reset the connection, and the
	 * client could lose the answer: end our side, drain theirs */
	shutdown(c->fd, SHUT_WR);
	c->draining = 1;
	clock_gettime(CLOCK_MONOTONIC, &c->since);
}

static const char *status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

/* Answers c's complete request with the handler at index 2. Returns 0, or
 * -1 when the handler raised (its error on the stack, c answered 500). */
static int answer(lua_State *L, struct http_conn *c)
{
	static const char text[] = "text/plain; charset=utf-8";
	char *sp1 = memchr(c->req, ' ', c->len);
	char *sp2 = sp1 ? memchr(sp1 + 1, ' ', c->len - (size_t)(sp1 + 1 - c->req)) : NULL;
	char *eol = memchr(c->req, '\r', c->len);
	if (!sp1 || !sp2 || !eol || sp2 > eol || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/') {
		send_answer(c, 400, status_reason(400), text, "bad request\n", 12);
		return 0;
	}
	size_t mlen = (size_t)(sp1 - c->req);
	if (!((mlen == 3 && memcmp(c->req, "GET", 3) == 0) || (mlen == 4 && memcmp(c->req, "HEAD", 4) == 0))) {
		send_answer(c, 405, status_reason(405), text, "only GET\n", 9);
		return 0;
	}
	int head_only = mlen == 4;
	char *path = sp1 + 1, *q = memchr(path, '?', (size_t)(sp2 - path));
	lua_pushvalue(L, 2);
	lua_pushlstring(L, c->req, mlen);
	lua_pushlstring(L, path, (size_t)((q ? q : sp2) - path));
	if (lua_pcall(L, 2, 3, 0) != LUA_OK) {
		send_answer(c, 500, status_reason(500), text, "internal error\n", 15);
		return -1;
	}
	/* Checked without raising: a raise here would leave c unanswered, and
	 * its request would run the handler again at every serve. */
	int is_int = 1;
	lua_Integer code = lua_isnil(L, -3) ? 200 : lua_tointegerx(L, -3, &is_int);
	const char *ctype = lua_isnil(L, -2) ? text : lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
	size_t blen = 0;
	const char *body = lua_isnil(L, -1) ? "" : lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &blen) : NULL;
	if ((!lua_isnil(L, -3) && !is_int) || !ctype || !body) {
		send_answer(c, 500, status_reason(500), text, "internal error\n", 15);
		lua_pushliteral(L, "http server: the handler must return [status (integer), content type (string), body (string)]");
		return -1;
	}
	int status = code < 100 || code > 599 ? 500 : (int)code;
	if (strpbrk(ctype, "\r\n") || strlen(ctype) > MAX_CONTENT_TYPE)
		ctype = text;
	send_answer(c, status, status_reason(status), ctype, body, head_only ? 0 : blen);
	lua_pop(L, 3);
	return 0;
}

/* server:serve(handler) -> the number of requests answered. Never waits. */
static int server_serve(lua_State *L)
{
	struct http_server *s = check_server(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	s->accept_paused = 0;
	for (;;) { /* accept what is pending, while there is room */
		int slot = -1;
		for (int i = 0; i < MAX_CONNS && slot < 0; i++)
			if (s->conns[i].fd < 0)
				slot = i;
		if (slot < 0) {
			s->accept_paused = 1; /* until a serve finds a slot free */
			break;
		}
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			s->accept_paused = errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR; /* EMFILE, ... */
			break;
		}
		s->conns[slot].fd = fd;
		s->conns[slot].len = 0;
		clock_gettime(CLOCK_MONOTONIC, &s->conns[slot].since);
	}
	lua_Integer answered = 0;
	for (int i = 0; i < MAX_CONNS; i++) {
		struct http_conn *c = &s->conns[i];
		if (c->fd < 0)
			continue;
		ssize_t r = 0;
		if (c->draining) {
			char sink[4096];
			int reads = 0; /* a client that keeps sending must not hold serve */
			while (reads++ < 16 && ((r = read(c->fd, sink, sizeof sink)) > 0 || (r < 0 && errno == EINTR)))
				;
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || ms_since(&c->since) > CONN_IDLE_MS)
				conn_close(c);
			continue;
		}
		while (c->len < MAX_REQUEST &&
		       ((r = read(c->fd, c->req + c->len, MAX_REQUEST - c->len)) > 0 || (r < 0 && errno == EINTR)))
			if (r > 0)
				c->len += (size_t)r;
		if (memmem(c->req, c->len, "\r\n\r\n", 4) || memmem(c->req, c->len, "\n\n", 2)) {
			if (answer(L, c) != 0)
				return lua_error(L);
			answered++;
		} else if (c->len >= MAX_REQUEST) {
			send_answer(c, 431, status_reason(431), "text/plain; charset=utf-8", "request too large\n", 18);
			answered++;
		} else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
		           ms_since(&c->since) > CONN_IDLE_MS) {
			conn_close(c); /* gone, broken, or too slow */
		}
	}
	lua_pushinteger(L, answered);
	return 1;
}

static int server_index(lua_State *L)
{
	struct http_server *s = luaL_checkudata(L, 1, HTTP_SERVER_MT);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "port") == 0) {
		lua_pushinteger(L, s->port);
		return 1;
	}
	lua_getmetatable(L, 1);
	lua_getfield(L, -1, "methods");
	lua_getfield(L, -1, k);
	return 1;
}

static const luaL_Reg server_methods[] = {
    {"close", server_close},
    {"fds", server_fds},
    {"serve", server_serve},
    {NULL, NULL},
};

static const luaL_Reg http_funcs[] = {
    {"listen", http_listen},
    {"request", http_request},
    {"request_all", http_request_all},
    {NULL, NULL},
};

int luaopen_http(lua_State *L)
{
	if (luaL_newmetatable(L, HTTP_BATCH_MT)) {
		lua_pushcfunction(L, batch_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, batch_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	luaL_newlibtable(L, http_funcs);
	/* The userdata exists (closed) before the handles do, so that they are
	 * never without an owner. */
	struct http_state *h = lua_newuserdatauv(L, sizeof *h, 0);
	memset(h, 0, sizeof *h);
	if (luaL_newmetatable(L, HTTP_STATE_MT)) {
		lua_pushcfunction(L, state_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, state_close);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	luaL_setfuncs(L, http_funcs, 1); /* module */
	if (luaL_newmetatable(L, HTTP_SERVER_MT)) {
		luaL_newlib(L, server_methods);
		lua_setfield(L, -2, "methods");
		lua_pushcfunction(L, server_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, server_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, server_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	return 1;
}
