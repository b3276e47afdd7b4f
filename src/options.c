/*
 * options.c: reading the option tables that module functions take, e.g.
 * proc.run{argv = ..., timeout = ...}. Like luaL_check*, each raises a
 * "bad argument" error naming the option when it is misused, so every
 * module words these errors the same way.
 */
#include <string.h>

#include <lauxlib.h>

#include "xcsreg.h"

void opt_check_keys(lua_State *L, int idx, const char *const known[])
{
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		int ok = 0;
		if (lua_type(L, -1) == LUA_TSTRING) {
			const char *key = lua_tostring(L, -1);
			for (int i = 0; known[i] && !ok; i++)
				ok = strcmp(key, known[i]) == 0;
		}
		if (!ok) {
			/* a copy, so lua_next's key is not converted in place */
			luaL_tolstring(L, -1, NULL);
			luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", lua_tostring(L, -1)));
		}
	}
}

int opt_field(lua_State *L, int idx, const char *key, int type)
{
	int t = lua_getfield(L, idx, key);
	if (t == LUA_TNIL)
		return 0;
	if (t != type)
		luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a %s, not %s", key,
		                                      lua_typename(L, type), luaL_typename(L, -1)));
	return 1;
}

const char *opt_cstring(lua_State *L, int idx, const char *key)
{
	if (!opt_field(L, idx, key, LUA_TSTRING))
		return NULL;
	size_t len;
	const char *s = lua_tolstring(L, -1, &len);
	if (strlen(s) != len)
		luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' contains a NUL byte", key));
	return s;
}

int opt_boolean(lua_State *L, int idx, const char *key)
{
	int v = opt_field(L, idx, key, LUA_TBOOLEAN) && lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

double opt_seconds(lua_State *L, int idx, const char *key, double def)
{
	double v = def;
	if (opt_field(L, idx, key, LUA_TNUMBER)) {
		v = lua_tonumber(L, -1);
		if (!(v > 0 && v <= 1e6))
			luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a positive number of seconds", key));
	}
	lua_pop(L, 1);
	return v;
}

size_t opt_size(lua_State *L, int idx, const char *key, size_t def)
{
	size_t v = def;
	if (opt_field(L, idx, key, LUA_TNUMBER)) {
		int isint;
		lua_Integer i = lua_tointegerx(L, -1, &isint);
		if (!isint || i <= 0)
			luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a positive integer", key));
		v = (size_t)i;
	}
	lua_pop(L, 1);
	return v;
}

lua_Integer opt_integer(lua_State *L, int idx, const char *key, lua_Integer def, lua_Integer min,
                        lua_Integer max)
{
	lua_Integer v = def;
	if (opt_field(L, idx, key, LUA_TNUMBER)) {
		int isint;
		v = lua_tointegerx(L, -1, &isint);
		if (!isint || v < min || v > max)
			luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be an integer from %I to %I", key,
			                                      (LUA_INTEGER)min, (LUA_INTEGER)max));
	}
	lua_pop(L, 1);
	return v;
}
