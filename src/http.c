/*
 * http.c: the 'http' module, HTTP(S) requests over libcurl.
 *
 * One easy handle per Lua state (an upvalue of http.request), reset and
 * reused for every request, so that libcurl's connection cache lets repeated
 * requests to one host share a connection and its TLS session. libcurl's
 * callbacks only append to C buffers owned by the handle's userdata; the Lua
 * strings and tables are made once the transfer is over, so a Lua error can
 * neither cross libcurl nor leak what it holds.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "curl_lazy.h"
#include "xcsreg.h"

#define HTTP_HANDLE_MT "xcsreg.http"
#define HTTP_DEFAULT_TIMEOUT 30.0
#define HTTP_DEFAULT_CONNECT_TIMEOUT 10.0
/* What this module fetches (registry tokens, credential endpoints, a
 * registry's /v2/ answer) is kilobytes; 64 MiB leaves room for any of it
 * and for a large manifest while bounding what a broken or hostile server
 * can make a run hold. The max_body option changes it per request. */
#define HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)
#define HTTP_MAX_REDIRECTS 5L

struct buf {
	char *data;
	size_t len, cap;
};

struct http_handle {
	CURL *curl;                       /* made by the first request (libcurl loads then) */
	int closed;
	struct curl_slist *req_headers;   /* the current request's header lines */
	struct buf body;                  /* the response body */
	struct buf head;                  /* the final response's header lines */
	size_t max_body;                  /* cap on body, and on the header block */
	int too_big, no_memory;           /* why a callback stopped the transfer */
	char errbuf[CURL_ERROR_SIZE];
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
static size_t collect(struct http_handle *h, struct buf *b, const char *data, size_t n)
{
	if (b->len + n > h->max_body) {
		h->too_big = 1;
		return 0;
	}
	if (buf_append(b, data, n) < 0) {
		h->no_memory = 1;
		return 0;
	}
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct http_handle *h = ud;
	return collect(h, &h->body, data, size * nmemb);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud)
{
	struct http_handle *h = ud;
	size_t n = size * nitems;
	/* A status line starts a new block: after a 1xx or a followed redirect
	 * only the final response's headers are kept. */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
		h->head.len = 0;
	return collect(h, &h->head, data, n);
}

/* Frees the request's header list once the handle no longer points at it. */
static void free_req_headers(struct http_handle *h)
{
	if (h->req_headers) {
		if (h->curl)
			curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
		curl_slist_free_all(h->req_headers);
		h->req_headers = NULL;
	}
}

static int handle_close(lua_State *L)
{
	struct http_handle *h = luaL_checkudata(L, 1, HTTP_HANDLE_MT);
	h->closed = 1;
	free_req_headers(h);
	if (h->curl) {
		curl_easy_cleanup(h->curl);
		h->curl = NULL;
	}
	buf_free(&h->body);
	buf_free(&h->head);
	return 0;
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

/* Appends "Name: value" lines for the headers table at idx to
 * h->req_headers (owned by h, so a raise here leaks nothing). Returns
 * flags for the headers the caller gave that libcurl would otherwise add. */
#define HAS_CONTENT_TYPE 1
#define HAS_EXPECT 2
static int add_headers(lua_State *L, struct http_handle *h, int opts, int idx)
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
		if (curl_strequal(name, "Content-Type"))
			has |= HAS_CONTENT_TYPE;
		if (curl_strequal(name, "Expect"))
			has |= HAS_EXPECT;
		/* "Name;" is how libcurl is told to send a header with an empty value */
		const char *line = vlen ? lua_pushfstring(L, "%s: %s", name, value)
		                        : lua_pushfstring(L, "%s;", name);
		struct curl_slist *l = curl_slist_append(h->req_headers, line);
		if (!l)
			luaL_error(L, "not enough memory");
		h->req_headers = l;
		lua_pop(L, 2); /* ... key */
	}
	return has;
}

static void add_header_line(lua_State *L, struct http_handle *h, const char *line)
{
	struct curl_slist *l = curl_slist_append(h->req_headers, line);
	if (!l)
		luaL_error(L, "not enough memory");
	h->req_headers = l;
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

/* http.request{url =, method =, headers =, body =, ...}
 *   -> status, headers, body, info | nil, message */
static int http_request(lua_State *L)
{
	struct http_handle *h = lua_touserdata(L, lua_upvalueindex(1));
	luaL_checktype(L, 1, LUA_TTABLE);
	opt_check_keys(L, 1, request_options);
	if (h->closed)
		return luaL_error(L, "the http module's handle is closed");

	/* Every option is checked before the handle is touched. Strings stay on
	 * the stack until the transfer is over: libcurl copies most of them,
	 * but not the body. */
	const char *url = opt_cstring(L, 1, "url");
	if (!url)
		luaL_argerror(L, 1, "option 'url' is required");
	const char *method = opt_cstring(L, 1, "method");
	if (!method)
		method = "GET";
	else if (!is_token(method, strlen(method)))
		luaL_argerror(L, 1, lua_pushfstring(L, "bad method '%s'", method));
	size_t body_len = 0;
	const char *body = NULL;
	if (opt_field(L, 1, "body", LUA_TSTRING))
		body = lua_tolstring(L, -1, &body_len);
	else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
		body = ""; /* sent with Content-Length: 0, which servers expect */
	int headers_idx = opt_field(L, 1, "headers", LUA_TTABLE) ? lua_gettop(L) : 0;
	long timeout_ms = opt_millis(L, 1, "timeout", HTTP_DEFAULT_TIMEOUT);
	long connect_ms = opt_millis(L, 1, "connect_timeout", HTTP_DEFAULT_CONNECT_TIMEOUT);
	const char *ca_file = opt_cstring(L, 1, "ca_file");
	struct curl_blob ca_pem = {NULL, 0, CURL_BLOB_COPY};
	if (opt_field(L, 1, "ca_pem", LUA_TSTRING))
		ca_pem.data = (void *)lua_tolstring(L, -1, &ca_pem.len);
	if (ca_file && ca_pem.data)
		luaL_argerror(L, 1, "give ca_file or ca_pem, not both");
	int insecure = opt_boolean(L, 1, "insecure");
	const char *user = NULL, *password = NULL;
	if (opt_field(L, 1, "basic_auth", LUA_TTABLE)) {
		int auth = lua_gettop(L);
		user = auth_part(L, 1, auth, 1);
		password = auth_part(L, 1, auth, 2);
	}
	const char *aws_sigv4 = opt_cstring(L, 1, "aws_sigv4");
	if (aws_sigv4 && !user)
		luaL_argerror(L, 1, "aws_sigv4 needs basic_auth = {access_key, secret_key}");
	size_t max_body = opt_size(L, 1, "max_body", HTTP_DEFAULT_MAX_BODY);
	int follow = opt_boolean(L, 1, "follow_redirects");
	int no_proxy = opt_boolean(L, 1, "no_proxy");

	if (proc_interrupted()) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: not sent: the run was interrupted by %s", url, proc_signal_name(proc_interrupted()));
		return 2;
	}
	if (!h->curl) { /* the first request loads libcurl: requiring http does not */
		const char *why = curl_lazy_load();
		if (why)
			return luaL_error(L, "module 'http' needs libcurl: %s", why);
		if (!(h->curl = curl_easy_init()))
			return luaL_error(L, "cannot initialise libcurl");
	}
	CURL *c = h->curl;
	curl_easy_reset(c); /* keeps the connection cache */
	free_req_headers(h);
	h->body.len = h->head.len = 0;
	h->max_body = max_body;
	h->too_big = h->no_memory = 0;
	h->errbuf[0] = '\0';
	int has = headers_idx ? add_headers(L, h, 1, headers_idx) : 0;
	/* libcurl would otherwise label any body a form, and wait for a
	 * 100 Continue before sending a large one. Not with SigV4: libcurl
	 * before 8.3 signs these header-removing lines too (curl #11664), and
	 * AWS refuses a signature over a header that was never sent. */
	if (body && !aws_sigv4) {
		if (!(has & HAS_CONTENT_TYPE))
			add_header_line(L, h, "Content-Type:");
		if (!(has & HAS_EXPECT))
			add_header_line(L, h, "Expect:");
	}

	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "xcsreg/" XCSREG_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->req_headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	/* a Content-Length past the cap is refused before any of the body is read */
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
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

	CURLcode rc = curl_easy_perform(c);
	free_req_headers(h);
	if (h->no_memory)
		return luaL_error(L, "not enough memory for the response from %s", url);
	if (h->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		buf_free(&h->body); /* up to max_body bytes, not to be kept until the next request */
		buf_free(&h->head);
		lua_pushnil(L);
		lua_pushfstring(L, "response from %s exceeds %I bytes", url, (lua_Integer)max_body);
		return 2;
	}
	if (rc != CURLE_OK) {
		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s", url, h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		return 2;
	}

	/* the options are still on the stack (a dozen slots) */
	luaL_checkstack(L, 10, NULL);
	long status = 0, connects = 0;
	curl_off_t micros = 0;
	char *effective_url = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &micros);
	curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective_url);
	lua_pushinteger(L, status);
	push_headers(L, &h->head);
	lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
	lua_createtable(L, 0, 3); /* status headers body info */
	lua_pushinteger(L, connects);
	lua_setfield(L, -2, "connects");
	lua_pushnumber(L, (lua_Number)micros / 1e6);
	lua_setfield(L, -2, "time");
	lua_pushstring(L, effective_url ? effective_url : url);
	lua_setfield(L, -2, "effective_url");
	/* a large response should not stay allocated until the next request */
	buf_free(&h->body);
	buf_free(&h->head);
	return 4;
}

static const luaL_Reg http_funcs[] = {
    {"request", http_request},
    {NULL, NULL},
};

int luaopen_http(lua_State *L)
{
	luaL_newlibtable(L, http_funcs);
	/* The userdata exists (closed) before the handle does, so that it is
	 * never without an owner. */
	struct http_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
	memset(h, 0, sizeof *h);
	if (luaL_newmetatable(L, HTTP_HANDLE_MT)) {
		lua_pushcfunction(L, handle_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, handle_close);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	luaL_setfuncs(L, http_funcs, 1); /* module */
	return 1;
}
