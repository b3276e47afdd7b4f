/* The C entry points other modules use: json_encode_push and
 * json_decode_push keep the stack balanced, report failures through msg
 * without pushing, and truncate msg safely. */
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "unit.h"
#include "xcsreg.h"

int main(void)
{
	lua_State *L = luaL_newstate();
	char msg[80];

	lua_pushinteger(L, 7); /* something of the caller's below */
	static const char doc[] = "{\"b\":[1,2.5,null,\"x\\u0000y\"],\"a\":{}}";
	int ok = json_decode_push(L, doc, sizeof doc - 1, msg, sizeof msg);
	CHECK(ok == 1 && lua_gettop(L) == 2 && lua_istable(L, -1), "decode pushes exactly one value");
	json_encode_push(L, -1);
	size_t len;
	const char *text = lua_tolstring(L, -1, &len);
	static const char want[] = "{\"a\":{},\"b\":[1,2.5,null,\"x\\u0000y\"]}";
	CHECK_MEM(text, len, want, sizeof want - 1, "encode of a decoded value: sorted, markers kept");
	CHECK(lua_gettop(L) == 3, "encode pushes exactly one string");
	lua_settop(L, 1);

	ok = json_decode_push(L, "[1,\n x]", 7, msg, sizeof msg);
	CHECK(ok == 0 && lua_gettop(L) == 1, "bad input pushes nothing");
	CHECK(strcmp(msg, "invalid JSON at line 2, column 2 (byte 5)") == 0, "message names the position: %s", msg);

	char tiny[8];
	ok = json_decode_push(L, "x", 1, tiny, sizeof tiny);
	CHECK(ok == 0 && strcmp(tiny, "invalid") == 0, "a short msg buffer is truncated and terminated");

	/* not NUL-terminated: reading past len is an ASan error */
	char *exact = malloc(3);
	memcpy(exact, "[1]", 3);
	ok = json_decode_push(L, exact, 3, msg, sizeof msg);
	CHECK(ok == 1 && lua_rawlen(L, -1) == 1, "decode reads only len bytes");
	memcpy(exact, "[1,", 3);
	ok = json_decode_push(L, exact, 3, msg, sizeof msg);
	CHECK(ok == 0, "decode of a cut-short text reads only len bytes");
	free(exact);
	lua_settop(L, 1);

	CHECK(lua_tointeger(L, 1) == 7, "the caller's stack is untouched");
	lua_close(L);
	return unit_done();
}
