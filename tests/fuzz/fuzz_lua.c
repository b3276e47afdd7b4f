/*
 * fuzz_lua: the harness for parsers written in Lua. Built once per target
 * with -DFUZZ_ENTRY="/path/to/tests/fuzz/NAME.lua" (scripts/fuzz does it).
 *
 * NAME.lua is run once at start-up in the shared state (fuzzlib.h: the
 * host's libraries and modules, a memory cap, an instruction budget) and
 * returns a function, called with each input as a string. That function
 * calls the parser and asserts what its API promises: a parser that
 * promises nil, message must not raise, and what it returns must have the
 * documented shape. Any error escaping the function is a finding, except
 * running out of memory or instructions (an input too big for the caps,
 * not a bug; a real hang still trips libFuzzer's -timeout).
 *
 * The global FUZZ_DIR names a private directory for the entry's files
 * (fuzz_tmpdir()).
 */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "fuzzlib.h"

#ifndef FUZZ_ENTRY
#error "build with -DFUZZ_ENTRY=\"path/to/entry.lua\" (see scripts/fuzz)"
#endif

static int entry = LUA_NOREF;
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	lua_State *L = fuzz_state();
	lua_pushstring(L, fuzz_tmpdir());
	lua_setglobal(L, "FUZZ_DIR");
	if (luaL_loadfilex(L, FUZZ_ENTRY, "t") != LUA_OK)
		fuzz_fail("%s", lua_tostring(L, -1));
	if (fuzz_pcall(L, 0, 1) != LUA_OK)
		fuzz_fail("%s: %s", FUZZ_ENTRY, lua_tostring(L, -1));
	if (!lua_isfunction(L, -1))
		fuzz_fail("%s must return a function", FUZZ_ENTRY);
	entry = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz_state();
	fuzz_begin();
	lua_rawgeti(L, LUA_REGISTRYINDEX, entry);
	lua_pushlstring(L, (const char *)data, size);
	int status = fuzz_pcall(L, 1, 0);
	if (status != LUA_OK && !fuzz_is_memory_error(L, status)) {
		const char *msg = lua_tostring(L, -1);
		if (!msg || !strstr(msg, "fuzz: instruction budget exhausted"))
			fuzz_fail("%s", msg ? msg : "(an error that is not a string)");
	}
	fuzz_end();
	return 0;
}
