/*
 * fuzz_json: json_decode_push on any bytes, and the round trip of what it
 * accepts.
 *
 * Properties (a violation aborts, so libFuzzer keeps the input):
 *   - decoding returns a value or a message naming a position ("... at line
 *     L, column C (byte B)"); it raises only when memory runs out;
 *   - whatever decodes, encodes (a decoded value is always representable);
 *   - the encoding decodes again, and from the second encoding on,
 *     encode . decode is the identity (compact and indented).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "fuzzlib.h"
#include "xcsreg.h"

static int is_position_message(const char *msg)
{
	return strstr(msg, " at line ") && strstr(msg, ", column ") && strstr(msg, " (byte ");
}

/* Decodes the string at idx, which must decode; pushes the value. */
static void must_decode(lua_State *L, int idx, const char *what)
{
	char msg[160];
	size_t len;
	const char *text = lua_tolstring(L, idx, &len);
	if (!json_decode_push(L, text, len, msg, sizeof msg))
		fuzz_fail("%s does not decode: %s\n%s", what, msg, text);
}

/* Fails unless the strings at a and b are equal. */
static void must_equal(lua_State *L, int a, int b, const char *what)
{
	size_t alen, blen;
	const char *as = lua_tolstring(L, a, &alen), *bs = lua_tolstring(L, b, &blen);
	if (alen != blen || memcmp(as, bs, alen) != 0)
		fuzz_fail("%s:\n%.*s\n%.*s", what, (int)alen, as, (int)blen, bs);
}

/* Runs in a protected call: 1 = the input (light userdata), 2 = its length. */
static int round_trip(lua_State *L)
{
	const char *text = lua_touserdata(L, 1);
	size_t len = (size_t)lua_tointeger(L, 2);
	char msg[160];
	if (!json_decode_push(L, text, len, msg, sizeof msg)) {
		if (!is_position_message(msg))
			fuzz_fail("decode: a message without a position: %s", msg);
		return 0;
	}
	/* Encoding raises on what JSON cannot hold: a decoded value must not be
	 * that, so a raise from here on is a finding (reported by the caller).
	 * The first encoding may differ from the second: invalid UTF-8 becomes
	 * \ufffd, which then decodes to a valid U+FFFD (as in Go). After that,
	 * encode . decode must be the identity. */
	json_encode_push(L, 3);         /* v1 e1 */
	must_decode(L, 4, "the encoding of a decoded value");
	json_encode_push(L, 5);         /* v1 e1 v2 e2 */
	must_decode(L, 6, "a second encoding");
	json_encode_push(L, 7);         /* v1 e1 v2 e2 v3 e3 */
	must_equal(L, 6, 8, "encode(decode(e)) differs from e");

	/* the indented form (json.encode(v, {indent = 2})) reads back the same */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "loaded");
	lua_getfield(L, -1, "json");
	lua_getfield(L, -1, "encode");
	lua_pushvalue(L, 5);
	lua_createtable(L, 0, 1);
	lua_pushinteger(L, 2);
	lua_setfield(L, -2, "indent");
	lua_call(L, 2, 1);
	int indented = lua_gettop(L);
	must_decode(L, indented, "the indented encoding");
	json_encode_push(L, -1);
	must_equal(L, 6, -1, "the indented encoding reads back as another value");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_state();
	static int loaded;
	if (!loaded) {
		fuzz_require(L, "json");
		lua_pop(L, 1);
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
