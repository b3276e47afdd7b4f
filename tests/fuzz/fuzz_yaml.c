/*
 * fuzz_yaml: yaml_decode_push on any bytes (the kubeconfig reader's
 * parser), and the round trip of what it accepts through yaml.encode.
 *
 * Properties: decoding returns a value or a message naming the place
 * ("line L, column C"); it raises only when memory runs out; whatever
 * decodes, encodes; the encoding decodes to an equal value (integers stay
 * integers, markers stay, NaN equals NaN). Encodings are not compared
 * byte for byte: the key order copied from go-yaml is not transitive
 * ("2no" < "1999" < "2602" < "2no"), so, as in go-yaml, the order of such
 * keys depends on the order the table yields them. Depth, alias and size
 * limits must end in a message, never a crash or a hang (libFuzzer's
 * -timeout and RSS limit).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "fuzzlib.h"
#include "xcsreg.h"

/* Whether two decoded values are equal; a function kept in the registry. */
static const char equal_code[] =
    "local function equal(a, b)\n"
    "  if a ~= a and b ~= b then return true end -- NaN\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then\n"
    "    return a == b and math.type(a) == math.type(b)\n"
    "  end\n"
    "  if getmetatable(a) ~= getmetatable(b) then return false end\n"
    "  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return equal\n";
static int equal_ref = LUA_NOREF;

/* Pushes yaml.encode(value at idx). */
static void encode(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_getfield(L, -1, "yaml");
	lua_getfield(L, -1, "encode");
	lua_remove(L, -2);
	lua_remove(L, -2);
	lua_pushvalue(L, idx);
	lua_call(L, 1, 1);
}

static void must_decode(lua_State *L, int idx, const char *what)
{
	char msg[512];
	size_t len;
	const char *text = lua_tolstring(L, idx, &len);
	if (!yaml_decode_push(L, text, len, msg, sizeof msg))
		fuzz_fail("%s does not decode: %s\n%s", what, msg, text);
}

/* Runs in a protected call: 1 = the input (light userdata), 2 = its length. */
static int round_trip(lua_State *L)
{
	const char *text = lua_touserdata(L, 1);
	size_t len = (size_t)lua_tointeger(L, 2);
	char msg[512];
	if (!yaml_decode_push(L, text, len, msg, sizeof msg)) {
		if (!strstr(msg, "line ") || !strstr(msg, "column "))
			fuzz_fail("decode: a message without a place: %s", msg);
		return 0;
	}
	encode(L, 3);                   /* v1 e1 */
	must_decode(L, 4, "the encoding of a decoded value");
	lua_rawgeti(L, LUA_REGISTRYINDEX, equal_ref);
	lua_pushvalue(L, 3);
	lua_pushvalue(L, 5);
	lua_call(L, 2, 1);
	if (!lua_toboolean(L, -1))
		fuzz_fail("decode(encode(v)) is not v:\n%.*s\n---\n%s", (int)len, text, lua_tostring(L, 4));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_state();
	static int loaded;
	if (!loaded) {
		fuzz_require(L, "yaml");
		lua_pop(L, 1);
		if (luaL_loadstring(L, equal_code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
			fuzz_fail("equal: %s", lua_tostring(L, -1));
		equal_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		loaded = 1;
	}
	fuzz_begin();
	lua_pushcfunction(L, round_trip);
	lua_pushlightuserdata(L, (void *)data);
	lua_pushinteger(L, (lua_Integer)size);
	int status = fuzz_pcall(L, 2, 0);
	if (status != LUA_OK && !fuzz_is_memory_error(L, status))
		fuzz_fail("raised: %s", lua_tostring(L, -1));
	fuzz_end();
	return 0;
}
