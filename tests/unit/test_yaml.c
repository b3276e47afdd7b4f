/* yaml_decode_push, the entry point the k8s client reads kubeconfig files
 * with: one value pushed on success and nothing on failure, the message
 * placed and truncated safely, only len bytes read, json's markers used
 * with no module loaded. Then an out-of-memory sweep of decode and encode:
 * each run fails the k-th Lua allocation; libyaml's parser, events and
 * emitter (malloc'd) must still be freed, which LeakSanitizer (make test)
 * and valgrind check at exit. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "unit.h"
#include "xcsreg.h"

static int has_metatable(lua_State *L, int idx, const char *name)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	luaL_getmetatable(L, name);
	int same = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return same;
}

static void contract(void)
{
	lua_State *L = luaL_newstate();
	char msg[80];

	lua_pushinteger(L, 7); /* something of the caller's below */
	static const char doc[] = "b: [1, 2.5, ~, 'x']\na: {}\n";
	int ok = yaml_decode_push(L, doc, sizeof doc - 1, msg, sizeof msg);
	CHECK(ok == 1 && lua_gettop(L) == 2 && lua_istable(L, -1), "decode pushes exactly one value");
	CHECK(has_metatable(L, -1, XCS_OBJECT_MT), "a mapping has the object marker");
	lua_getfield(L, -1, "b");
	CHECK(has_metatable(L, -1, XCS_ARRAY_MT) && lua_rawlen(L, -1) == 4,
	      "a sequence has the array marker");
	lua_rawgeti(L, -1, 3);
	CHECK(lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == JSON_NULL, "~ is json.null");
	lua_settop(L, 1);

	ok = yaml_decode_push(L, "a: 1\na: 2", 9, msg, sizeof msg);
	CHECK(ok == 0 && lua_gettop(L) == 1, "bad input pushes nothing");
	CHECK(strcmp(msg, "line 2, column 1: duplicate key \"a\"") == 0, "the message places it: %s", msg);

	char tiny[8];
	ok = yaml_decode_push(L, "a: b: c", 7, tiny, sizeof tiny);
	CHECK(ok == 0 && strcmp(tiny, "line 1,") == 0, "a short msg buffer is truncated and terminated");

	/* not NUL-terminated: reading past len is an ASan error */
	char *exact = malloc(5);
	memcpy(exact, "a: 12", 5);
	ok = yaml_decode_push(L, exact, 4, msg, sizeof msg);
	lua_getfield(L, -1, "a");
	CHECK(ok == 1 && lua_tointeger(L, -1) == 1, "decode reads only len bytes");
	lua_settop(L, 1);
	memcpy(exact, "a: \xff!", 5);
	ok = yaml_decode_push(L, exact, 4, msg, sizeof msg);
	CHECK(ok == 0 && strcmp(msg, "line 1, column 4: invalid leading UTF-8 octet") == 0,
	      "a reader error is placed within len bytes: %s", msg);
	free(exact);

	CHECK(lua_gettop(L) == 1 && lua_tointeger(L, 1) == 7, "the caller's stack is untouched");
	lua_close(L);
}

struct counting {
	size_t in_use;    /* bytes handed out and not yet freed */
	long allocations; /* allocations so far */
	long fail_at;     /* the allocation that fails (1-based); 0: none */
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
	if (nsize > old && ++c->allocations == c->fail_at)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (p)
		c->in_use += nsize - old;
	return p;
}

static const char sweep_doc[] =
    "base: &b {x: [1, 2.5, ~], y: !!binary aGVsbG8=, z: 'text'}\n"
    "item:\n  <<: *b\n  copy: *b\n  list: [a, {b: c}, 0x1F]\n"
    "bad: [1, 2, *nope]\n";

/* Decodes sweep_doc, which fails at its last line after building the
 * rest; then its good part, and encodes that with values of every kind. */
static int decode_and_encode(lua_State *L)
{
	char msg[80];
	if (yaml_decode_push(L, sweep_doc, sizeof sweep_doc - 1, msg, sizeof msg))
		return luaL_error(L, "the sweep document should not decode");
	size_t good = (size_t)(strstr(sweep_doc, "bad:") - sweep_doc);
	if (!yaml_decode_push(L, sweep_doc, good, msg, sizeof msg))
		return luaL_error(L, "%s", msg);
	lua_pushlstring(L, "\xff\xfe", 2);
	lua_setfield(L, 1, "raw");           /* !!binary */
	lua_pushliteral(L, "1_000");
	lua_setfield(L, 1, "quoted");        /* go-yaml's number check */
	lua_pushnumber(L, 0.1);
	lua_setfield(L, 1, "float");
	luaL_requiref(L, "yaml", luaopen_yaml, 0);
	lua_getfield(L, -1, "encode");
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);                   /* decoded yaml text */
	return 0;
}

static int run(struct counting *c)
{
	lua_State *L = lua_newstate(counting_alloc, c);
	if (!L)
		return LUA_ERRMEM;
	lua_pushcfunction(L, decode_and_encode);
	int status = lua_pcall(L, 0, 0, 0);
	lua_close(L);
	return status;
}

static void sweep(void)
{
	struct counting c = {0};
	CHECK(run(&c) == LUA_OK, "decode and encode run without injected failures");
	long total = c.allocations;
	int leaked = 0;
	for (long k = 1; k <= total; k++) {
		struct counting f = {.fail_at = k};
		run(&f);
		if (f.in_use != 0)
			leaked++;
	}
	CHECK(leaked == 0, "%ld allocation failures, Lua memory all returned (%d leaked)", total,
	      leaked);
}

int main(void)
{
	contract();
	sweep();
	return unit_done();
}
