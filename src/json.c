/* json.c: placeholder until the module lands. */
#include <lauxlib.h>
#include "xcsreg.h"

int luaopen_json(lua_State *L)
{
	lua_newtable(L);
	return 1;
}
