/*
 * The allocation-failure sweep: run Lua snippets that use every Lua-facing
 * C function, once for every allocation k, with the k-th allocation failing.
 * Each run must end in a Lua error or success (never a crash), lua_close must
 * give back every byte the Lua allocator handed out, and memory the modules
 * take from malloc must be freed too: LeakSanitizer (make test builds with
 * it) fails this program at exit otherwise.
 */
#include <signal.h>
#include <stdlib.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lualib.h>

#include "unit.h"
#include "xcsreg.h"

struct counting {
	size_t in_use;      /* bytes handed out and not yet freed */
	long allocations;   /* allocations so far */
	long fail_at;       /* the allocation that fails (1-based); 0: none */
	int failed;         /* an injected failure happened */
};

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct counting *c = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		c->in_use -= old;
		return NULL;
	}
	if (nsize > old && ++c->allocations == c->fail_at) {
		c->failed = 1;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p)
		c->in_use += nsize - old;
	return p;
}

static const luaL_Reg modules[] = {
    {"base64", luaopen_base64}, {"http", luaopen_http}, {"json", luaopen_json},
    {"k8s", luaopen_k8s},       {"log", luaopen_log},   {"proc", luaopen_proc},
    {"site", luaopen_site},     {"yaml", luaopen_yaml}, {NULL, NULL},
};

static int setup_and_run(lua_State *L)
{
	const char *code = lua_touserdata(L, 1);
	luaL_openlibs(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (const luaL_Reg *m = modules; m->name; m++) {
		lua_pushcfunction(L, m->func);
		lua_setfield(L, -2, m->name);
	}
	lua_pop(L, 1);
	if (luaL_loadstring(L, code) != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 0);
	return 0;
}

/* Returns the status of one run with the fail_at-th allocation failing. */
static int run_once(const char *code, struct counting *c, char *msg, size_t msgsz)
{
	lua_State *L = lua_newstate(counting_alloc, c);
	if (!L)
		return LUA_ERRMEM;
	lua_pushcfunction(L, setup_and_run);
	lua_pushlightuserdata(L, (void *)code);
	int status = lua_pcall(L, 1, 0, 0);
	if (status != LUA_OK && msg)
		snprintf(msg, msgsz, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
	lua_close(L);
	return status;
}

static void sweep(const char *name, const char *code)
{
	char msg[512] = "";
	struct counting c = {0};
	int status = run_once(code, &c, msg, sizeof msg);
	CHECK(status == LUA_OK, "%s runs without injected failures", name);
	if (status != LUA_OK) {
		printf("#   %s\n", msg);
		return;
	}
	long total = c.allocations;
	int leaked = 0, ok_after_fail = 0;
	for (long k = 1; k <= total; k++) {
		struct counting f = {.fail_at = k};
		int st = run_once(code, &f, NULL, 0);
		if (f.in_use != 0)
			leaked++;
		if (st == LUA_OK && f.failed)
			ok_after_fail++; /* a failure absorbed and reported as nil, msg is fine */
	}
	CHECK(leaked == 0, "%s: %ld allocation failures, Lua memory all returned (%d leaked)",
	      name, total, leaked);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the host does: a child may not read its stdin */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	sweep("log", "local log = require 'log'\n"
	             "log.secret('s3cr3t-value')\n"
	             "assert(log.redact('a s3cr3t-value b') == 'a *** b')\n"
	             "log.level('error'); log.info('x %d', 1); log.warn('w'); log.debug('d')\n"
	             "assert(not log.enabled('trace') and log.format() == 'text')\n");
	sweep("json", "local json = require 'json'\n"
	              "local s = json.encode({a = {1, 2.5, json.null, true}, b = json.array{}, "
	              "c = json.object{}, d = 'x<y\\0z'}, {indent = 2})\n"
	              "local v = json.decode(s); assert(v.a[2] == 2.5)\n"
	              "assert(json.decode('[1,') == nil)\n"
	              "assert(not pcall(json.encode, {1, x = 2}))\n"
	              "assert(json.kind(v.b) == 'array' and json.kind(v.c) == 'object')\n");
	sweep("base64", "local b = require 'base64'\n"
	                "local e = b.encode(string.rep('\\255', 100), {url = true, pad = false})\n"
	                "assert(b.decode(e, {url = true, pad = false}) == string.rep('\\255', 100))\n"
	                "assert(b.decode('!!!!') == nil)\n");
	sweep("proc", "local proc = require 'proc'\n"
	              "local st, out = proc.run{argv = {'cat'}, stdin = 'abc', env = {X = 'y'}}\n"
	              "assert(st == 0 and out == 'abc')\n"
	              "assert(proc.run{argv = {'/nonexistent/cmd'}} == nil)\n"
	              "assert(not pcall(proc.run, {argv = {}}))\n"
	              "local path = os.tmpname()\n"
	              "local lock = assert(proc.lock(path, {timeout = 1}))\n"
	              "lock:unlock(); os.remove(path)\n"
	              "local p = assert(proc.spawn{argv = {'cat'}, stdin = 'abc\\nd'})\n"
	              "local q, kind, line = proc.wait({p}, 10)\n"
	              "assert(q == p and kind == 'stdout' and line == 'abc')\n"
	              "p:close()\n");
	sweep("http", "local http = require 'http'\n"
	              "local ok, err = http.request{url = 'http://127.0.0.1:1/', connect_timeout = 1,\n"
	              "  headers = {['X-A'] = 'b'}, method = 'POST', body = 'x'}\n"
	              "assert(ok == nil and err)\n"
	              "assert(not pcall(http.request, {url = 'http://x', bogus = 1}))\n");
	sweep("http.request_all", "local http = require 'http'\n"
	              "local r = http.request_all({{url = 'http://127.0.0.1:1/a', connect_timeout = 1},\n"
	              "  {url = 'http://127.0.0.1:1/b', method = 'POST', body = 'x', headers = {['X-A'] = 'b'}},\n"
	              "  {url = 'http://127.0.0.1:1/c', basic_auth = {'u', 'p'}}}, {concurrency = 2})\n"
	              "assert(r[1][1] == nil and r[2].n == 2 and r[3][2])\n"
	              "assert(not pcall(http.request_all, {{url = 'http://x'}, {bogus = 1}}))\n");
	sweep("yaml", "local yaml = require 'yaml'\n"
	              "local v = assert(yaml.decode('a: &x {b: [1, 2.5, ~, !!binary aGk=]}\\nc:\\n  <<: *x\\n  d: *x\\n'))\n"
	              "assert(yaml.decode('a: 1\\na: 2') == nil)\n"
	              "v.e = '\\255'; v.f = '1_000'\n"
	              "assert(yaml.encode(v))\n");
	sweep("site", "local site = require 'site'\n"
	              "assert(site.run(function(a) return a .. 'b' end, {instructions = 1000}, 'a'))\n"
	              "local ok, err = site.run(function() while true do end end, {instructions = 1000})\n"
	              "assert(not ok and err:find('stopped after 1000'))\n"
	              "local path = os.tmpname()\n"
	              "local f = io.open(path, 'w'); f:write('fake-allocfail-pw'); f:close()\n"
	              "local ok2 = site.read_secret(path, {max_bytes = 64, what = 'password file'})\n"
	              "local big = site.read_secret(path, {max_bytes = 4, what = 'password file'})\n"
	              "os.remove(path)\n"
	              "assert(ok2 == 'fake-allocfail-pw' and big == nil)\n");
	/* a client of a server that refuses connections: every request path
	 * up to the transport error, blocking and in a map */
	sweep("k8s client", "local k8s = require 'k8s'\n"
	                    "local path = os.tmpname()\n"
	                    "local f = io.open(path, 'w')\n"
	                    "f:write('apiVersion: v1\\nkind: Config\\ncurrent-context: c\\n'\n"
	                    "  .. 'contexts: [{name: c, context: {cluster: k, user: u, namespace: ns}}]\\n'\n"
	                    "  .. 'clusters: [{name: k, cluster: {server: \\'https://127.0.0.1:1\\'}}]\\n'\n"
	                    "  .. 'users: [{name: u, user: {token: fake-allocfail-token}}]\\n')\n"
	                    "f:close()\n"
	                    "local c = k8s.client{kubeconfig = path, retries = 0, connect_timeout = 1}\n"
	                    "os.remove(path)\n"
	                    "if not c then return end\n"
	                    "assert(c:get('/api/v1/namespaces/ns') == nil)\n"
	                    "assert(c:create('/api/v1/namespaces/ns/secrets', {metadata = {name = 'x'}}) == nil)\n"
	                    "assert(c:list('/api/v1/namespaces/ns/secrets', {labelSelector = 'a=b'}) == nil)\n"
	                    "assert(c:replace('/api/v1/namespaces/ns/secrets/x', {metadata = {name = 'x'}}) == nil)\n"
	                    "assert(c:patch('/api/v1/namespaces/ns/serviceaccounts/default', {a = 1}, 'merge') == nil)\n"
	                    "assert(c:delete('/api/v1/namespaces/ns/secrets/x', {dry_run = true}) == nil)\n"
	                    "assert(c:request{method = 'GET', path = '/version'} == nil)\n"
	                    "local r = c:map({1, 2}, function(i) local v, e = c:get('/api/v1/namespaces/ns'); return e and i end)\n"
	                    "assert(#r == 2)\n"
	                    "assert(c:stats().requests >= 9)\n"
	                    "c:close()\n");
	sweep("k8s", "local k8s = require 'k8s'\n"
	             "assert(k8s.path('/api/v1/namespaces/%s/secrets/%s', 'a b', 'x/y'))\n"
	             "local c, err = k8s.client{kubeconfig = '/nonexistent/kubeconfig'}\n"
	             "assert(c == nil and tostring(err):find('nonexistent'))\n"
	             "assert(not pcall(k8s.client, {bogus = 1}))\n");
	log_reset();
	curl_global_cleanup();
	return unit_done();
}
