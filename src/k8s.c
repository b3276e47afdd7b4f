/*
 * k8s.c: the 'k8s' module, a Kubernetes API client for Lua scripts.
 *
 * A client is a userdata holding a curl easy handle for blocking requests
 * (one kept-alive connection, HTTP/2 where the server offers it), the
 * machinery of client:map (k8s_map.c: coroutines whose requests go out
 * concurrently), its configuration (kubeconfig.c) and its credentials
 * (k8s_auth.c). This file turns Lua calls into requests (URLs, bodies,
 * options), hands them to k8s_run_request (k8s_transfer.c: send, judge,
 * retry) or, inside a map, to k8s_map_request, and turns the outcome into
 * Lua values.
 *
 * Expected failures come back as nil, err where err is a table
 * {code, reason, message, details, status, retries} whose __tostring reads
 * like kubectl. Besides the API's reasons: "Config" (the configuration),
 * "Transport" (no answer), "InvalidResponse" (an answer past
 * max_response_bytes, or a 2xx that is not the JSON asked for). Misuse (bad
 * arguments, unknown options) raises.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "curl_lazy.h"
#include "k8s.h"

_Static_assert(offsetof(struct k8s_client, pool) == 0, "k8s_map.c finds the pool at the client's address");

#define CLIENT_MT "xcsreg.k8s.Client"
#define ERROR_MT "xcsreg.k8s.Error"
#define MAP_GUARD_MT "xcsreg.k8s.MapGuard"
#define WATCH_MT "xcsreg.k8s.Watch"

#define DEFAULT_CONCURRENCY 8 /* a map's requests in flight: gentle on a shared API server */
#define MAX_QUOTED 1024       /* bytes of a non-Status body quoted in an error */
#define MAX_TITLE 200         /* bytes of an HTML error page's title quoted in an error */
#define MAX_MEDIA_TYPE 100    /* bytes of a Content-Type quoted in an error */
/*
 * The default cap on a response body. The API server answers a LIST whole
 * unless asked for pages, so the cap must hold the largest LIST a script
 * makes: every Secret of a big cluster (20,000 of 2-10 KB, Helm release
 * Secrets of up to a few hundred KB among them: ~100-200 MB) or every pod
 * of a namespace of 10,000 pods (~100-150 MB). 256 MiB holds those; past
 * it an answer is broken or hostile, and refusing it keeps a run inside a
 * small container's memory. The max_response_bytes option changes it.
 */
#define DEFAULT_MAX_RESPONSE_BYTES ((size_t)256 << 20)
/* The default cap on one event of a watch: an object is at most etcd's
 * request limit (1.5 MiB), a Secret's JSON a third more than its bytes. */
#define DEFAULT_MAX_EVENT_BYTES ((size_t)4 << 20)
#define MAX_WAIT_FDS 64       /* descriptors client:wait watches besides the watches */

/* ---- responses to Lua values ---- */

/* Pushes s with every registered secret replaced by "***". */
static void push_redacted(lua_State *L, const char *s, size_t len)
{
	luaL_Buffer b;
	char *dst = luaL_buffinitsize(L, &b, 3 * len + 1);
	luaL_pushresultsize(&b, log_redact(s, len, dst, 3 * len + 1));
}

/* The response's media type (its Content-Type up to any ';'), or NULL. */
static const char *media_type(const struct k8s_xfer *x, size_t *len)
{
	const char *ct = k8s_header_value(&x->head, "content-type:", len);
	if (!ct)
		return NULL;
	const char *semi = memchr(ct, ';', *len);
	if (semi)
		*len = (size_t)(semi - ct);
	while (*len > 0 && (ct[*len - 1] == ' ' || ct[*len - 1] == '\t'))
		(*len)--;
	return *len ? ct : NULL;
}

static int is_json_response(const struct k8s_xfer *x)
{
	size_t len;
	const char *mt = media_type(x, &len);
	return mt && memmem(mt, len, "json", 4) != NULL;
}

/* Pushes the body as a string, or decoded when the server says it is JSON.
 * Returns 1, or 0 with nothing pushed and msg filled when a JSON answer
 * does not decode. An empty body is "". */
static int push_body(lua_State *L, const struct k8s_xfer *x, char *msg, size_t msgsz)
{
	if (x->body.len > 0 && is_json_response(x))
		return json_decode_push(L, x->body.data, x->body.len, msg, msgsz);
	lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len);
	return 1;
}

/* Adds the n bytes at s as one line of at most max bytes: white space and
 * control characters collapse into single spaces, none at either end; a
 * longer text is cut at a UTF-8 character boundary and ends in "...". */
static void add_one_line(luaL_Buffer *b, const char *s, size_t n, size_t max)
{
	size_t out = 0;
	int space = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= ' ' || ch == 0x7f) {
			space = out > 0;
			continue;
		}
		/* the rest of a line that would not fit, cut before a lead byte */
		if (out + space + 1 > max && (ch & 0xC0) != 0x80) {
			luaL_addstring(b, "...");
			return;
		}
		if (space) {
			luaL_addchar(b, ' ');
			out++;
			space = 0;
		}
		luaL_addchar(b, (char)ch);
		out++;
	}
}

/* The text of an HTML page's <title>, or NULL. */
static const char *html_title(const char *s, size_t n, size_t *len)
{
	const char *end = s + n;
	for (const char *p = s; (p = memchr(p, '<', (size_t)(end - p))) != NULL; p++) {
		if (end - p < 7 || strncasecmp(p, "<title", 6) != 0 || (p[6] != '>' && p[6] != ' '))
			continue;
		const char *t = memchr(p, '>', (size_t)(end - p));
		if (!t)
			return NULL;
		t++;
		const char *e = t;
		while (e < end && !(*e == '<' && end - e >= 7 && strncasecmp(e, "</title", 7) == 0))
			e++;
		*len = (size_t)(e - t);
		return t;
	}
	return NULL;
}

/*
 * Pushes "HTTP <code> from <server>: <what> (<media type>)[: <title or first
 * line>]" for an answer whose body is not what was expected, e.g. a proxy's
 * HTML error page. Only the body is quoted, never a header: some error pages
 * echo the request's, which carry the credentials.
 */
static void push_unexpected(lua_State *L, const struct k8s_client *c, const struct k8s_xfer *x,
                            long code, const char *what)
{
	size_t mlen = 0, tlen = 0;
	const char *mt = media_type(x, &mlen);
	const char *body = x->body.data ? x->body.data : "";
	const char *text = NULL;
	if (mt && mlen == 9 && strncasecmp(mt, "text/html", 9) == 0) {
		text = html_title(body, x->body.len, &tlen);
	} else if (mt && mlen >= 5 && strncasecmp(mt, "text/", 5) == 0) {
		text = body;
		const char *eol = memchr(body, '\n', x->body.len);
		tlen = eol ? (size_t)(eol - body) : x->body.len;
	}
	/* redacted whole before add_one_line cuts it: a cut secret would not match */
	int quoted = text && tlen > 0;
	if (quoted) {
		push_redacted(L, text, tlen);
		text = lua_tolstring(L, -1, &tlen);
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "HTTP %d from %s: %s (", (int)code, c->config.server, what);
	luaL_addvalue(&b);
	add_one_line(&b, mt ? mt : "no Content-Type", mt ? mlen : 15, MAX_MEDIA_TYPE);
	luaL_addchar(&b, ')');
	if (quoted) {
		luaL_addstring(&b, ": ");
		add_one_line(&b, text, tlen, MAX_TITLE);
	}
	luaL_pushresult(&b);
	size_t len;
	const char *m = lua_tolstring(L, -1, &len);
	push_redacted(L, m, len);
	lua_remove(L, -2);
	if (quoted)
		lua_remove(L, -2);
}

/* Pushes the error table {reason, message[, retries]} without a code. */
static int push_fail(lua_State *L, const struct k8s_client *c, const char *reason, int retries)
{
	lua_pushnil(L);
	lua_createtable(L, 0, 3);
	lua_pushstring(L, reason);
	lua_setfield(L, -2, "reason");
	push_redacted(L, c->msg, strlen(c->msg));
	lua_setfield(L, -2, "message");
	if (retries >= 0) {
		lua_pushinteger(L, retries);
		lua_setfield(L, -2, "retries");
	}
	luaL_setmetatable(L, ERROR_MT);
	return 2;
}

/* Pushes nil and the error for a 2xx answer that is not what a request
 * expects: {code, reason = "InvalidResponse", message (at the top), retries}. */
static int push_invalid(lua_State *L, const struct k8s_call *call)
{
	int message = lua_gettop(L);
	lua_pushnil(L);
	lua_createtable(L, 0, 4); /* message nil err */
	lua_pushinteger(L, call->a.status);
	lua_setfield(L, -2, "code");
	lua_pushliteral(L, "InvalidResponse");
	lua_setfield(L, -2, "reason");
	lua_pushvalue(L, message);
	lua_setfield(L, -2, "message");
	lua_pushinteger(L, call->retries);
	lua_setfield(L, -2, "retries");
	luaL_setmetatable(L, ERROR_MT);
	lua_remove(L, message); /* nil err */
	return 2;
}

/* The reason client-go gives a status that came without a Status body. */
static const char *reason_for_code(long code)
{
	static const struct {
		long code;
		const char *reason;
	} reasons[] = {
	    {400, "BadRequest"},       {401, "Unauthorized"},
	    {403, "Forbidden"},        {404, "NotFound"},
	    {405, "MethodNotAllowed"}, {406, "NotAcceptable"},
	    {409, "Conflict"},         {410, "Gone"},
	    {413, "RequestEntityTooLarge"}, {415, "UnsupportedMediaType"},
	    {422, "Invalid"},          {429, "TooManyRequests"},
	    {500, "InternalError"},    {503, "ServiceUnavailable"},
	    {504, "Timeout"},
	};
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].code == code)
			return reasons[i].reason;
	return "Unknown";
}

/* Whether the answer is plain text (the apiserver's own 429), or says nothing of its type. */
static int is_plain_text(const struct k8s_xfer *x)
{
	size_t len;
	const char *mt = media_type(x, &len);
	return !mt || (len == 10 && strncasecmp(mt, "text/plain", 10) == 0);
}

/* Pushes the error table for an HTTP error response in x. */
static void push_status_error(lua_State *L, const struct k8s_client *c, const struct k8s_xfer *x,
                              long code, int retries)
{
	char why[160];
	int broken = !push_body(L, x, why, sizeof why); /* a broken Status is still an error of this code */
	if (broken)
		lua_pushliteral(L, "");
	int body = lua_gettop(L);
	int is_status = lua_istable(L, body) && lua_getfield(L, body, "kind") == LUA_TSTRING &&
	                strcmp(lua_tostring(L, -1), "Status") == 0;
	lua_settop(L, body);
	lua_createtable(L, 0, 6); /* body err */
	int err = lua_gettop(L);
	lua_pushinteger(L, code);
	lua_setfield(L, err, "code");

	if (is_status && lua_getfield(L, body, "reason") == LUA_TSTRING && lua_rawlen(L, -1) > 0)
		lua_setfield(L, err, "reason");
	else {
		lua_pushstring(L, reason_for_code(code));
		lua_setfield(L, err, "reason");
	}
	lua_settop(L, err);

	size_t len;
	const char *m;
	if (is_status && lua_getfield(L, body, "message") == LUA_TSTRING) {
		m = lua_tolstring(L, -1, &len);
	} else if (lua_type(L, body) == LUA_TSTRING && is_plain_text(x)) {
		/* a plain-text answer (the apiserver's own 429): its first line */
		m = lua_tolstring(L, body, &len);
		while (len > 0 && (*m == ' ' || *m == '\t' || *m == '\r' || *m == '\n'))
			m++, len--;
		const char *eol = memchr(m, '\n', len);
		if (eol)
			len = (size_t)(eol - m);
		while (len > 0 && (m[len - 1] == ' ' || m[len - 1] == '\r' || m[len - 1] == '\t'))
			len--;
		/* redacted before it is cut */
		push_redacted(L, m, len);
		m = lua_tolstring(L, -1, &len);
		if (len > MAX_QUOTED)
			len = log_cut(m, MAX_QUOTED);
	} else if (lua_type(L, body) == LUA_TSTRING && x->body.len > 0 && !is_json_response(x)) {
		/* HTML, or another type: what it is, and its title */
		push_unexpected(L, c, x, code, "not a Kubernetes Status");
		m = lua_tolstring(L, -1, &len);
	} else if (broken) {
		m = lua_pushfstring(L, "HTTP %d from %s: %s", (int)code, c->config.server, why);
		len = strlen(m);
	} else {
		len = 0;
	}
	if (len == 0) {
		m = lua_pushfstring(L, "the server responded with HTTP status %d", (int)code);
		len = strlen(m);
	}
	push_redacted(L, m, len);
	lua_setfield(L, err, "message");
	lua_settop(L, err);

	if (is_status) {
		if (lua_getfield(L, body, "details") == LUA_TTABLE)
			lua_setfield(L, err, "details");
		lua_settop(L, err);
		lua_pushvalue(L, body);
		lua_setfield(L, err, "status");
	}
	lua_pushinteger(L, retries);
	lua_setfield(L, err, "retries");
	luaL_setmetatable(L, ERROR_MT);
	lua_remove(L, body); /* err */
}

/* Pushes the decoded 2xx body of an API method: obj, or nil, err when it
 * is not JSON. Returns the number of results. */
static int push_object(lua_State *L, const struct k8s_client *c, const struct k8s_call *call,
                       const struct k8s_xfer *x)
{
	char why[160];
	if (!is_json_response(x) || x->body.len == 0) {
		push_unexpected(L, c, x, call->a.status, x->body.len ? "not JSON" : "an empty answer");
		return push_invalid(L, call);
	}
	if (!push_body(L, x, why, sizeof why)) {
		lua_pushfstring(L, "HTTP %d from %s: %s", (int)call->a.status, c->config.server, why);
		return push_invalid(L, call);
	}
	return 1;
}

/* k8s_finish for the API methods: obj, or nil, err. */
static int finish_api(lua_State *L, struct k8s_pool *p, const struct k8s_call *call,
                      const struct k8s_xfer *x, int ok)
{
	struct k8s_client *c = (struct k8s_client *)p; /* its first member */
	/* the request's arguments and options are still on the stack */
	luaL_checkstack(L, LUA_MINSTACK, NULL);
	if (ok != 0)
		return push_fail(L, c, call->reason, call->retries);
	if (call->a.status >= 200 && call->a.status < 300)
		return push_object(L, c, call, x);
	lua_pushnil(L);
	push_status_error(L, c, x, call->a.status, call->retries);
	return 2;
}

/* Sends req and returns what finish pushes: blocking, or, from a coroutine
 * of a map of c, yielding until the answer is in. */
static int send_request(lua_State *L, struct k8s_client *c, const struct k8s_req *req,
                        k8s_finish finish)
{
	struct k8s_task *t = k8s_map_task(L, &c->pool);
	if (t)
		return k8s_map_request(L, &c->pool, t, req, finish);
	struct k8s_call call;
	k8s_call_init(&c->conn, &call, req);
	int ok = k8s_run_request(L, &c->conn, &call);
	int nres = finish(L, &c->pool, &call, &c->conn.x, ok);
	k8s_xfer_trim(&c->conn.x);
	return nres;
}

/* Pushes the response headers as {lower-case name = value}, repeated ones
 * joined with ", ". */
static void push_headers(lua_State *L, const struct k8s_buf *head)
{
	lua_newtable(L);
	int t = lua_gettop(L);
	const char *p = head->data, *end = p ? p + head->len : NULL;
	if (p) { /* skip the status line */
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		p = eol ? eol + 1 : end;
	}
	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end, *next = eol ? eol + 1 : end;
		const char *colon = memchr(p, ':', (size_t)(le - p));
		if (colon && colon > p) {
			luaL_Buffer b;
			luaL_buffinit(L, &b);
			for (const char *q = p; q < colon; q++)
				luaL_addchar(&b, (*q >= 'A' && *q <= 'Z') ? (char)(*q + 32) : *q);
			luaL_pushresult(&b); /* t name */
			const char *v = colon + 1;
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			while (le > v && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
				le--;
			lua_pushvalue(L, -1);
			if (lua_rawget(L, t) == LUA_TSTRING) { /* t name old */
				lua_pushliteral(L, ", ");
				lua_pushlstring(L, v, (size_t)(le - v));
				lua_concat(L, 3);
			} else {
				lua_pop(L, 1);
				lua_pushlstring(L, v, (size_t)(le - v));
			}
			lua_rawset(L, t); /* t */
		}
		p = next;
	}
}

/* ---- URLs ---- */

static int is_unreserved(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Adds s percent-encoded: everything but RFC 3986's unreserved characters. */
static void add_escaped(luaL_Buffer *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (is_unreserved(ch)) {
			luaL_addchar(b, (char)ch);
		} else {
			luaL_addchar(b, '%');
			luaL_addchar(b, hex[ch >> 4]);
			luaL_addchar(b, hex[ch & 15]);
		}
	}
}

/* What write requests add to the query. */
struct write_opts {
	int dry_run, force;
	const char *field_manager;    /* NULL: none sent (DELETE) */
	size_t field_manager_len;
};

/* Pushes s (the value at idx, converted as tostring would) percent-encoded. */
static void push_escaped(lua_State *L, int idx)
{
	size_t len;
	const char *s = luaL_tolstring(L, idx, &len);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	add_escaped(&b, s, len);
	luaL_pushresult(&b);
	lua_remove(L, -2);
}

/*
 * Pushes an array of the encoded "key=value" pairs of the query table at
 * index query, sorted by key as Go's url.Values.Encode does.
 */
static void push_query_pairs(lua_State *L, int query)
{
	lua_newtable(L);
	int pairs = lua_gettop(L);
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, query)) { /* pairs k v */
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_argerror(L, query, "query keys must be strings");
		int vt = lua_type(L, -1);
		if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
			luaL_argerror(L, query, lua_pushfstring(L,
			    "query value for '%s' must be a string, number or boolean", lua_tostring(L, -2)));
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, pairs, ++n); /* pairs k */
	}
	for (lua_Integer i = 2; i <= n; i++) { /* insertion sort of the keys */
		lua_rawgeti(L, pairs, i); /* pairs k */
		lua_Integer j = i - 1;
		for (; j >= 1; j--) {
			lua_rawgeti(L, pairs, j); /* pairs k kj */
			if (!lua_compare(L, -2, -1, LUA_OPLT)) {
				lua_pop(L, 1);
				break;
			}
			lua_rawseti(L, pairs, j + 1);
		}
		lua_rawseti(L, pairs, j + 1); /* pairs */
	}
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, pairs, i);   /* pairs k */
		push_escaped(L, -1);        /* pairs k ek */
		lua_pushliteral(L, "=");
		lua_pushvalue(L, -3);
		lua_rawget(L, query);       /* pairs k ek "=" v */
		push_escaped(L, -1);        /* pairs k ek "=" v ev */
		lua_remove(L, -2);
		lua_concat(L, 3);           /* pairs k "ek=ev" */
		lua_rawseti(L, pairs, i);
		lua_pop(L, 1);              /* pairs */
	}
}

/*
 * Pushes the URL for path (at index path) with the query table at index
 * query (0: none) and the write options (NULL: none); returns it.
 */
static const char *push_url(lua_State *L, struct k8s_client *c, int path, int query,
                            const struct write_opts *w)
{
	int pairs = 0;
	if (query) {
		push_query_pairs(L, query);
		pairs = lua_gettop(L);
	}
	size_t plen;
	const char *p = lua_tolstring(L, path, &plen);
	char sep = memchr(p, '?', plen) ? '&' : '?';
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, c->config.url_base);
	luaL_addlstring(&b, p, plen);
	for (lua_Integer i = 1; pairs && i <= (lua_Integer)lua_rawlen(L, pairs); i++) {
		luaL_addchar(&b, sep);
		sep = '&';
		lua_rawgeti(L, pairs, i);
		luaL_addvalue(&b);
	}
	if (w && w->dry_run) {
		luaL_addchar(&b, sep);
		luaL_addstring(&b, "dryRun=All");
		sep = '&';
	}
	if (w && w->field_manager) {
		luaL_addchar(&b, sep);
		luaL_addstring(&b, "fieldManager=");
		add_escaped(&b, w->field_manager, w->field_manager_len);
		sep = '&';
	}
	if (w && w->force) {
		luaL_addchar(&b, sep);
		luaL_addstring(&b, "force=true");
	}
	luaL_pushresult(&b);
	if (pairs)
		lua_remove(L, pairs);
	return lua_tostring(L, -1);
}

/* ---- option tables (read with options.c's readers) ---- */

/* A positive number of seconds as milliseconds (at least 1). */
static long opt_millis(lua_State *L, int idx, const char *key, double def)
{
	long ms = (long)(opt_seconds(L, idx, key, def) * 1000);
	return ms > 0 ? ms : 1;
}

static int opt_concurrency(lua_State *L, int idx, int def)
{
	return (int)opt_integer(L, idx, "concurrency", def, 1, K8S_MAX_CONCURRENCY);
}

/* Reads the write options at idx (none or nil: defaults). */
static void check_write_opts(lua_State *L, int idx, struct write_opts *w, int is_apply,
                             int is_delete)
{
	static const char *const names[] = {"dry_run", "field_manager", "force", NULL};
	static const char *const delete_names[] = {"dry_run", NULL};
	w->dry_run = w->force = 0;
	w->field_manager = is_delete ? NULL : "xcsreg";
	w->field_manager_len = w->field_manager ? strlen(w->field_manager) : 0;
	if (lua_isnoneornil(L, idx))
		return;
	luaL_checktype(L, idx, LUA_TTABLE);
	opt_check_keys(L, idx, is_delete ? delete_names : names);
	w->dry_run = opt_boolean(L, idx, "dry_run");
	if (is_delete)
		return;
	if (opt_field(L, idx, "field_manager", LUA_TSTRING)) { /* left on the stack: w points into it */
		w->field_manager = lua_tolstring(L, -1, &w->field_manager_len);
		luaL_argcheck(L, w->field_manager_len > 0, idx, "option 'field_manager' must not be empty");
	}
	w->force = opt_boolean(L, idx, "force");
	luaL_argcheck(L, is_apply || !w->force, idx, "option 'force' is only for apply patches");
}

/* ---- the client ---- */

/* Frees everything c holds but the userdata itself; safe to call again.
 * No map may be running (its frames point into c). */
static void k8s_client_free(struct k8s_client *c)
{
	k8s_watchset_free(&c->watches);
	k8s_map_free(&c->pool);  /* its handles use the share handle: first */
	k8s_conn_free(&c->conn);
	k8s_config_free(&c->config);
	k8s_creds_free(&c->creds);
}

static struct k8s_client *check_client(lua_State *L)
{
	struct k8s_client *c = luaL_checkudata(L, 1, CLIENT_MT);
	if (c->pool.closed || !c->conn.x.curl)
		luaL_error(L, "attempt to use a closed k8s client");
	return c;
}

/* Checks the path argument at idx: an absolute API path. */
static void check_path(lua_State *L, int idx)
{
	size_t len;
	const char *p = luaL_checklstring(L, idx, &len);
	luaL_argcheck(L, len > 0 && p[0] == '/', idx, "path must start with '/'");
}

/* Pushes the body argument at idx as a string: a table is encoded as JSON. */
static void push_body_arg(lua_State *L, int idx)
{
	if (lua_istable(L, idx)) {
		json_encode_push(L, idx);
	} else {
		luaL_argexpected(L, lua_type(L, idx) == LUA_TSTRING, idx, "table or JSON string");
		lua_pushvalue(L, idx);
	}
}

static int k8s_client_new(lua_State *L)
{
	static const char *const names[] = {
	    "concurrency", "connect_timeout", "context", "deadline", "in_cluster_dir", "kubeconfig",
	    "max_response_bytes", "namespace", "request_timeout", "retries", "retry_max_time",
	    "user_agent", NULL};
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	opt_check_keys(L, 1, names);
	struct k8s_options o = {0};
	o.kubeconfig = opt_cstring(L, 1, "kubeconfig");
	o.context = opt_cstring(L, 1, "context");
	o.namespace = opt_cstring(L, 1, "namespace");
	o.in_cluster_dir = opt_cstring(L, 1, "in_cluster_dir");
	const char *user_agent = opt_cstring(L, 1, "user_agent");
	if (!user_agent)
		user_agent = "xcsreg/" XCSREG_VERSION;
	long connect_ms = opt_millis(L, 1, "connect_timeout", 10);
	long request_ms = opt_millis(L, 1, "request_timeout", 30);
	int retries = (int)opt_integer(L, 1, "retries", 5, 0, 100);
	int concurrency = opt_concurrency(L, 1, DEFAULT_CONCURRENCY);
	double retry_max_time = opt_seconds(L, 1, "retry_max_time", 60);
	double deadline = opt_seconds(L, 1, "deadline", 0);
	size_t max_response_bytes = opt_size(L, 1, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES);
	/* the option values stay on the stack: o points into them */

	/* the first client loads libcurl: requiring k8s does not */
	const char *why = curl_lazy_load();
	if (why)
		return luaL_error(L, "module 'k8s' needs libcurl: %s", why);

	struct k8s_client *c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	luaL_setmetatable(L, CLIENT_MT);
	int ud = lua_gettop(L);
	/* the layers, each pointing at those below it and at the one message buffer */
	c->creds.msg = c->config.msg = c->conn.msg = c->pool.msg = c->watches.msg = c->msg;
	c->config.creds = &c->creds;
	c->conn.cfg = &c->config;
	c->conn.creds = &c->creds;
	c->pool.conn = &c->conn;
	c->conn.connect_timeout_ms = connect_ms;
	c->conn.request_timeout_ms = request_ms;
	c->conn.max_retries = retries;
	c->conn.max_response_bytes = max_response_bytes;
	c->conn.retry_max_time = retry_max_time;
	if (deadline > 0)
		c->conn.deadline = k8s_monotonic() + deadline;
	c->concurrency = c->conn.limit = concurrency;
	c->conn.rng = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)(uintptr_t)c ^
	         (unsigned long long)getpid() ^ 0x9E3779B97F4A7C15ULL;
	c->conn.user_agent = strdup(user_agent);
	c->conn.x.curl = curl_easy_init();
	if (!c->conn.user_agent || !c->conn.x.curl || k8s_share_init(&c->conn) != 0)
		return luaL_error(L, "not enough memory");
	if (k8s_configure(L, &c->config, &o) != 0)
		return push_fail(L, c, "Config", -1);
	lua_pushvalue(L, ud);
	return 1;
}

/* client:get(path [, query]) and client:list(path [, query]) */
static int client_get(lua_State *L)
{
	struct k8s_client *c = check_client(L);
	check_path(L, 2);
	int query = 0;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		query = 3;
	}
	struct k8s_req req = {.method = "GET", .idempotent = 1};
	req.url = push_url(L, c, 2, query, NULL);
	return send_request(L, c, &req, finish_api);
}

/* POST or PUT of the object at index 3 with the write options at 4. */
static int send_object(lua_State *L, const char *method)
{
	struct k8s_client *c = check_client(L);
	check_path(L, 2);
	luaL_checkany(L, 3);
	struct write_opts w;
	check_write_opts(L, 4, &w, 0, 0);
	struct k8s_req req = {.method = method, .content_type = "application/json"};
	push_body_arg(L, 3);
	req.body = lua_tolstring(L, -1, &req.body_len);
	req.url = push_url(L, c, 2, 0, &w);
	return send_request(L, c, &req, finish_api);
}

static int client_create(lua_State *L) { return send_object(L, "POST"); }
static int client_replace(lua_State *L) { return send_object(L, "PUT"); }

/* client:patch(path, patch, patch_type [, opts]) */
static int client_patch(lua_State *L)
{
	static const char *const types[] = {"merge", "strategic", "json", "apply", NULL};
	static const char *const content_types[] = {
	    "application/merge-patch+json", "application/strategic-merge-patch+json",
	    "application/json-patch+json", "application/apply-patch+yaml"};
	struct k8s_client *c = check_client(L);
	check_path(L, 2);
	luaL_checkany(L, 3);
	int type = luaL_checkoption(L, 4, NULL, types);
	struct write_opts w;
	check_write_opts(L, 5, &w, type == 3, 0);
	struct k8s_req req = {.method = "PATCH", .content_type = content_types[type]};
	push_body_arg(L, 3);
	req.body = lua_tolstring(L, -1, &req.body_len);
	req.url = push_url(L, c, 2, 0, &w);
	return send_request(L, c, &req, finish_api);
}

/* client:delete(path [, opts]) */
static int client_delete(lua_State *L)
{
	struct k8s_client *c = check_client(L);
	check_path(L, 2);
	struct write_opts w;
	check_write_opts(L, 3, &w, 0, 1);
	struct k8s_req req = {.method = "DELETE"};
	req.url = push_url(L, c, 2, 0, &w);
	return send_request(L, c, &req, finish_api);
}

/* k8s_finish for client:request: status, body, headers, or nil, err. */
static int finish_request(lua_State *L, struct k8s_pool *p, const struct k8s_call *call,
                          const struct k8s_xfer *x, int ok)
{
	struct k8s_client *c = (struct k8s_client *)p; /* its first member */
	luaL_checkstack(L, LUA_MINSTACK, NULL); /* as in finish_api */
	if (ok != 0)
		return push_fail(L, c, call->reason, call->retries);
	char why[160];
	if (!push_body(L, x, why, sizeof why)) {
		if (call->a.status < 200 || call->a.status >= 300) {
			/* an error page labelled JSON: the caller judges it by its status */
			lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len);
		} else {
			lua_pushfstring(L, "HTTP %d from %s: %s", (int)call->a.status, c->config.server, why);
			return push_invalid(L, call);
		}
	}
	lua_pushinteger(L, call->a.status);
	lua_insert(L, -2);
	push_headers(L, &x->head);
	return 3;
}

/* client:request{method=, path=, query=, body=, content_type=, idempotent=}
 * -> status, body, headers | nil, err */
static int client_request(lua_State *L)
{
	static const char *const names[] = {"body", "content_type", "idempotent", "method", "path",
	                                    "query", NULL};
	struct k8s_client *c = check_client(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	opt_check_keys(L, 2, names);
	struct k8s_req req = {0};
	req.method = opt_cstring(L, 2, "method");
	if (!req.method)
		return luaL_argerror(L, 2, "option 'method' is required");
	int token = req.method[0] != '\0';
	for (const char *m = req.method; *m; m++)
		token = token && *m >= 'A' && *m <= 'Z';
	luaL_argcheck(L, token, 2, "option 'method' must be an upper-case HTTP method");
	if (!opt_field(L, 2, "path", LUA_TSTRING))
		luaL_argerror(L, 2, "option 'path' is required");
	int path = lua_gettop(L);
	luaL_argcheck(L, lua_tostring(L, path)[0] == '/', 2, "option 'path' must start with '/'");
	int query = opt_field(L, 2, "query", LUA_TTABLE) ? lua_gettop(L) : 0;
	req.idempotent = strcmp(req.method, "GET") == 0 || strcmp(req.method, "HEAD") == 0;
	if (opt_field(L, 2, "idempotent", LUA_TBOOLEAN))
		req.idempotent = lua_toboolean(L, -1);
	req.content_type = opt_cstring(L, 2, "content_type");
	if (!req.content_type)
		req.content_type = "application/json";
	luaL_argcheck(L, !strpbrk(req.content_type, "\r\n"), 2, "option 'content_type' has a line break");
	int bt = lua_getfield(L, 2, "body");
	if (bt == LUA_TTABLE)
		json_encode_push(L, -1);
	else if (bt != LUA_TNIL && bt != LUA_TSTRING)
		luaL_argerror(L, 2, lua_pushfstring(L, "option 'body' must be a table or a string, not %s",
		                                    luaL_typename(L, -1)));
	if (bt != LUA_TNIL)
		req.body = lua_tolstring(L, -1, &req.body_len);
	req.url = push_url(L, c, path, query, NULL);
	return send_request(L, c, &req, finish_request);
}

static int client_stats(lua_State *L)
{
	struct k8s_client *c = luaL_checkudata(L, 1, CLIENT_MT);
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, (lua_Integer)c->conn.requests);
	lua_setfield(L, -2, "requests");
	lua_pushinteger(L, (lua_Integer)c->conn.connections);
	lua_setfield(L, -2, "connections");
	lua_pushinteger(L, (lua_Integer)c->conn.retries);
	lua_setfield(L, -2, "retries");
	return 1;
}

/* client:close(), __close and __gc. Inside a map the resources live on
 * until the map ends (its frames use them); the client counts as closed at
 * once: requests pending in the map raise "k8s client closed". */
static int client_close(lua_State *L)
{
	struct k8s_client *c = luaL_checkudata(L, 1, CLIENT_MT);
	c->pool.closed = 1;
	if (!c->pool.mapping)
		k8s_client_free(c);
	return 0;
}

/* What client:map marks to be closed once the map has ended. */
struct map_guard {
	struct k8s_client *c;
};

/* client:map(items, fn [, {concurrency = n}]) -> results; see k8s_map.c. */
static int client_map(lua_State *L)
{
	static const char *const names[] = {"concurrency", NULL};
	struct k8s_client *c = check_client(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	int concurrency = c->concurrency;
	if (!lua_isnoneornil(L, 4)) {
		luaL_checktype(L, 4, LUA_TTABLE);
		opt_check_keys(L, 4, names);
		concurrency = opt_concurrency(L, 4, concurrency);
	}
	if (c->pool.mapping)
		return luaL_error(L, "client:map is already running on this client");
	lua_settop(L, 3);
	struct map_guard *guard = lua_newuserdatauv(L, sizeof *guard, 0);
	guard->c = c;
	luaL_setmetatable(L, MAP_GUARD_MT);
	lua_toclose(L, -1); /* closed after the map's own run, when it returns or raises */
	return k8s_map_run(L, &c->pool, 2, 3, concurrency);
}

/* __close of client:map's guard: a client closed inside the map is freed
 * once the map has ended (k8s_map.c leaves that to its caller). */
static int map_guard_close(lua_State *L)
{
	struct k8s_client *c = ((struct map_guard *)luaL_checkudata(L, 1, MAP_GUARD_MT))->c;
	if (c->pool.closed && !c->pool.mapping)
		k8s_client_free(c);
	return 0;
}

static int client_tostring(lua_State *L)
{
	struct k8s_client *c = luaL_checkudata(L, 1, CLIENT_MT);
	if (!c->pool.closed && c->conn.x.curl)
		lua_pushfstring(L, "k8s client (%s)", c->config.server ? c->config.server : "?");
	else
		lua_pushliteral(L, "k8s client (closed)");
	return 1;
}

/* Methods first (upvalue 1), then the fields namespace, server, context. */
static int client_index(lua_State *L)
{
	struct k8s_client *c = luaL_checkudata(L, 1, CLIENT_MT);
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	const char *k = lua_tostring(L, 2);
	if (k && !c->pool.closed && c->conn.x.curl) {
		if (strcmp(k, "concurrency") == 0) {
			lua_pushinteger(L, c->concurrency);
			return 1;
		}
		const char *v = strcmp(k, "namespace") == 0 ? c->config.namespace
		              : strcmp(k, "server") == 0    ? c->config.server
		              : strcmp(k, "context") == 0   ? c->config.context
		                                            : NULL;
		if (v) {
			lua_pushstring(L, v);
			return 1;
		}
	}
	lua_pushnil(L);
	return 1;
}

/* ---- watches ---- */

/* A watch's userdata; its user value is its client, kept alive by it. */
struct watch_ud {
	struct k8s_watch w;
	struct k8s_client *c;
	int closed;
};

/* client:watch(path [, query [, {max_event_bytes = n}]]) -> watch | nil, err.
 * The query is a LIST's (resourceVersion, allowWatchBookmarks,
 * timeoutSeconds, labelSelector, fieldSelector...) plus watch=1. */
static int client_watch(lua_State *L)
{
	static const char *const names[] = {"max_event_bytes", NULL};
	struct k8s_client *c = check_client(L);
	check_path(L, 2);
	lua_settop(L, 4);
	lua_newtable(L); /* 5: the query sent */
	int query = 5;
	double timeout_s = 0;
	if (!lua_isnil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, query);
		}
		if (lua_getfield(L, 3, "timeoutSeconds") != LUA_TNIL) {
			int isnum;
			timeout_s = lua_tonumberx(L, -1, &isnum);
			/* a week at most: the apiserver's own bound is far below, and curl's backstop is a long */
			luaL_argcheck(L, isnum && timeout_s > 0 && timeout_s <= 7 * 86400, 3,
			              "timeoutSeconds must be a positive number of seconds, at most a week");
		}
		lua_pop(L, 1);
	}
	lua_pushliteral(L, "1");
	lua_setfield(L, query, "watch");
	size_t max_event = DEFAULT_MAX_EVENT_BYTES;
	if (!lua_isnil(L, 4)) {
		luaL_checktype(L, 4, LUA_TTABLE);
		opt_check_keys(L, 4, names);
		max_event = opt_size(L, 4, "max_event_bytes", DEFAULT_MAX_EVENT_BYTES);
	}
	struct k8s_req req = {.method = "GET", .idempotent = 1};
	req.url = push_url(L, c, 2, query, NULL);
	struct watch_ud *u = lua_newuserdatauv(L, sizeof *u, 1);
	memset(u, 0, sizeof *u);
	luaL_setmetatable(L, WATCH_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	u->c = c;
	u->w.max_event = max_event;
	/* the server ends the watch at timeoutSeconds; curl's limit is a backstop */
	long timeout_ms = timeout_s > 0 ? (long)(timeout_s * 1000) + c->conn.request_timeout_ms : 0;
	struct k8s_call call;
	k8s_call_init(&c->conn, &call, &req);
	if (k8s_watch_start(L, &c->conn, &c->watches, &u->w, &call, timeout_ms) != 0) {
		k8s_watch_stop(&u->w);
		u->closed = 1;
		return push_fail(L, c, call.reason ? call.reason : "Transport", -1);
	}
	return 1;
}

static struct watch_ud *check_watch(lua_State *L)
{
	struct watch_ud *u = luaL_checkudata(L, 1, WATCH_MT);
	if (u->closed)
		luaL_error(L, "attempt to use a closed watch");
	if (u->c->pool.closed)
		luaL_error(L, "attempt to use a watch of a closed k8s client");
	return u;
}

/* Pushes false and the error that ended w, or false alone after a clean end. */
static int push_watch_end(lua_State *L, struct watch_ud *u)
{
	struct k8s_watch *w = &u->w;
	struct k8s_client *c = u->c;
	lua_pushboolean(L, 0);
	if (w->too_big) {
		k8s_fail(c, "%s: a watch event is larger than max_event_bytes (%zu bytes)", c->config.server,
		         w->max_event);
		push_fail(L, c, "InvalidResponse", -1);
	} else if (w->result != CURLE_OK) {
		const char *why = w->x.errbuf[0] ? w->x.errbuf : curl_easy_strerror(w->result);
		if (w->result == CURLE_OUT_OF_MEMORY)
			why = "out of memory receiving the watch";
		k8s_fail(c, "%s: watch: %s", c->config.server, why);
		push_fail(L, c, "Transport", -1);
	} else if (w->status < 200 || w->status > 299) {
		lua_pushnil(L);
		push_status_error(L, c, &w->x, w->status, 0);
	} else {
		return 1;
	}
	lua_remove(L, -2); /* the nil of push_fail */
	return 2;
}

/* watch:next() -> event {type=, object=} | nil (none yet) | false [, err]
 * (the watch is over: err is nil when the server ended it cleanly, e.g.
 * at timeoutSeconds; an ERROR event is an event, not an end). */
static int watch_next(lua_State *L)
{
	struct watch_ud *u = check_watch(L);
	struct k8s_watch *w = &u->w;
	size_t len;
	const char *line;
	while ((line = k8s_watch_line(w, &len)) != NULL) {
		if (len == 0 || (len == 1 && line[0] == '\r')) {
			k8s_watch_consume(w, len);
			continue;
		}
		char why[160] = "an event that is not a JSON object"; /* json_decode_push's own on a syntax error */
		int ok = json_decode_push(L, line, len, why, sizeof why);
		k8s_watch_consume(w, len);
		if (ok && lua_istable(L, -1)) {
			int t = lua_getfield(L, -1, "type");
			lua_pop(L, 1);
			if (t == LUA_TSTRING)
				return 1;
			snprintf(why, sizeof why, "an event without a type");
		}
		k8s_watch_stop(w);
		w->done = 1;
		lua_pushboolean(L, 0);
		k8s_fail(u->c, "%s: watch: %s", u->c->config.server, why);
		push_fail(L, u->c, "InvalidResponse", -1);
		lua_remove(L, -2);
		return 2;
	}
	if (!w->done) {
		lua_pushnil(L);
		return 1;
	}
	return push_watch_end(L, u);
}

static int watch_close(lua_State *L)
{
	struct watch_ud *u = luaL_checkudata(L, 1, WATCH_MT);
	k8s_watch_stop(&u->w);
	u->closed = 1;
	return 0;
}

/* client:wait(timeout_s [, fds]) -> the descriptors of fds that can be
 * read (a list, maybe empty). Waits at most timeout_s for any watch of the
 * client to have something to read (watch:next), or for one of fds (file
 * descriptors, integers) to be readable; a signal ends it early. */
static int client_wait(lua_State *L)
{
	struct k8s_client *c = check_client(L);
	double timeout = luaL_checknumber(L, 2);
	luaL_argcheck(L, timeout >= 0 && timeout <= 86400, 2, "timeout must be 0 to 86400 seconds");
	struct curl_waitfd fds[MAX_WAIT_FDS];
	unsigned n = 0;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_Integer len = luaL_len(L, 3);
		luaL_argcheck(L, len <= MAX_WAIT_FDS, 3, "too many descriptors");
		for (lua_Integer i = 1; i <= len; i++) {
			lua_rawgeti(L, 3, i);
			int isnum;
			lua_Integer fd = lua_tointegerx(L, -1, &isnum);
			luaL_argcheck(L, isnum && fd >= 0 && fd < 1 << 30, 3, "descriptors must be integers");
			lua_pop(L, 1);
			fds[n].fd = (curl_socket_t)fd;
			fds[n].events = CURL_WAIT_POLLIN;
			fds[n].revents = 0;
			n++;
		}
	}
	if (k8s_watchset_wait(&c->watches, (long)(timeout * 1000), fds, n) != 0)
		return luaL_error(L, "%s", c->msg);
	lua_createtable(L, (int)n, 0);
	lua_Integer k = 0;
	for (unsigned i = 0; i < n; i++)
		if (fds[i].revents) {
			lua_pushinteger(L, fds[i].fd);
			lua_rawseti(L, -2, ++k);
		}
	return 1;
}

static const luaL_Reg watch_methods[] = {
    {"close", watch_close},
    {"next", watch_next},
    {NULL, NULL},
};

/* ---- errors ---- */

static int error_tostring(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "code");    /* 2 */
	lua_getfield(L, 1, "reason");  /* 3 */
	lua_getfield(L, 1, "message"); /* 4 */
	lua_getfield(L, 1, "retries"); /* 5 */
	const char *reason = lua_tostring(L, 3);
	const char *message = lua_tostring(L, 4);
	if (!message)
		message = "";
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	if (!lua_isnil(L, 2)) {
		if (reason && *reason)
			lua_pushfstring(L, "Error from server (%s): %s", reason, message);
		else
			lua_pushfstring(L, "Error from server: %s", message);
	} else if (reason && strcmp(reason, "Transport") == 0) {
		lua_pushfstring(L, "Unable to connect to the server: %s", message);
	} else {
		lua_pushstring(L, message);
	}
	luaL_addvalue(&b);
	lua_Integer retries = lua_tointeger(L, 5);
	if (retries > 0) {
		lua_pushfstring(L, " (after %d %s)", (int)retries, retries == 1 ? "retry" : "retries");
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	return 1;
}

/* ---- k8s.path ---- */

/* k8s.path(fmt, ...): string.format with only %s (and %%), each argument
 * percent-encoded as one path segment. */
static int k8s_path(lua_State *L)
{
	size_t flen;
	const char *fmt = luaL_checklstring(L, 1, &flen);
	int n = lua_gettop(L), arg = 1;
	/* check every argument before the buffer takes stack slots */
	for (size_t i = 0; i < flen; i++) {
		if (fmt[i] != '%')
			continue;
		if (i + 1 < flen && fmt[i + 1] == 's') {
			size_t len;
			const char *s = luaL_checklstring(L, ++arg, &len);
			luaL_argcheck(L, len > 0 && !(len == 1 && s[0] == '.') &&
			                     !(len == 2 && s[0] == '.' && s[1] == '.'),
			              arg, "not a valid path segment");
		} else if (i + 1 >= flen || fmt[i + 1] != '%') {
			return luaL_error(L, "bad format for k8s.path: only %%s and %%%% are allowed");
		}
		i++;
	}
	if (arg < n)
		return luaL_argerror(L, arg + 1, "not used by the format");
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	arg = 1;
	for (size_t i = 0; i < flen; i++) {
		if (fmt[i] != '%') {
			luaL_addchar(&b, fmt[i]);
		} else if (fmt[++i] == '%') {
			luaL_addchar(&b, '%');
		} else {
			size_t len;
			const char *s = lua_tolstring(L, ++arg, &len);
			add_escaped(&b, s, len);
		}
	}
	luaL_pushresult(&b);
	return 1;
}

static const luaL_Reg client_methods[] = {
    {"close", client_close},
    {"create", client_create},
    {"delete", client_delete},
    {"get", client_get},
    {"list", client_get},
    {"map", client_map},
    {"patch", client_patch},
    {"replace", client_replace},
    {"request", client_request},
    {"stats", client_stats},
    {"wait", client_wait},
    {"watch", client_watch},
    {NULL, NULL},
};

static const luaL_Reg k8s_funcs[] = {
    {"client", k8s_client_new},
    {"path", k8s_path},
    {NULL, NULL},
};

int luaopen_k8s(lua_State *L)
{
	if (luaL_newmetatable(L, ERROR_MT)) {
		lua_pushcfunction(L, error_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, CLIENT_MT)) {
		luaL_newlib(L, client_methods);
		lua_pushcclosure(L, client_index, 1);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, client_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, client_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, client_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, WATCH_MT)) {
		luaL_newlib(L, watch_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, watch_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, watch_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, MAP_GUARD_MT)) {
		lua_pushcfunction(L, map_guard_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	luaL_newlib(L, k8s_funcs);
	return 1;
}
