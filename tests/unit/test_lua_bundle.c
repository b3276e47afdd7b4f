/*
 * test_lua_bundle: the bytecode embedded beside each shipped Lua file
 * (scripts/embed-lua, scripts/lua-bytecode.c) is what that file's text
 * compiles to under the liblua the binary runs with, so that loading one
 * or the other (main.c) can never run different code; and the binary
 * records this liblua's ident, so that here the bytecode is what runs.
 */
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "unit.h"
#include "xcsreg.h"

struct dump {
	char *data;
	size_t len;
};

static int add_chunk(lua_State *L, const void *p, size_t size, void *ud)
{
	struct dump *d = ud;
	char *grown = realloc(d->data, d->len + size);
	if (!grown)
		return 1;
	memcpy(grown + d->len, p, size);
	d->data = grown;
	d->len += size;
	return 0;
}

int main(void)
{
	CHECK(embedded_lua_ident && strcmp(embedded_lua_ident, lua_ident) == 0,
	      "the bundle's bytecode was made by the liblua this runs with");
	lua_State *L = luaL_newstate();
	int files = 0, same = 0, loads = 0;
	for (const struct embedded_lua *e = embedded_lua; e->path; e++) {
		files++;
		const char *chunkname = lua_pushfstring(L, "@lua/%s", e->path);
		if (!e->bytecode || luaL_loadbufferx(L, (const char *)e->text, e->len, chunkname, "t") != LUA_OK) {
			printf("# %s: %s\n", e->path, e->bytecode ? lua_tostring(L, -1) : "no bytecode");
			lua_settop(L, 0);
			continue;
		}
		struct dump d = {0};
		if (lua_dump(L, add_chunk, &d, 0) == 0 && d.len == e->bytecode_len &&
		    memcmp(d.data, e->bytecode, d.len) == 0)
			same++;
		else
			printf("# %s: its bytecode is not its text's\n", e->path);
		free(d.data);
		if (luaL_loadbufferx(L, (const char *)e->bytecode, e->bytecode_len, chunkname, "b") == LUA_OK)
			loads++;
		lua_settop(L, 0);
	}
	CHECK(files > 30, "the bundle holds the shipped files (%d)", files);
	CHECK(same == files, "each file's bytecode is its text compiled (%d of %d)", same, files);
	CHECK(loads == files, "each file's bytecode loads as a binary chunk (%d of %d)", loads, files);
	lua_close(L);
	return unit_done();
}
