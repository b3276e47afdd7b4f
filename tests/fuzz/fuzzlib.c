/*
 * fuzzlib.c: the Lua state the harnesses share (see fuzzlib.h). It is set
 * up as src/main.c sets up the host's: the same standard libraries, the C
 * modules and the shipped modules in package.preload.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lualib.h>

#include "fuzzlib.h"
#include "xcsreg.h"

struct limit {
	size_t in_use, cap; /* cap 0: none (during setup) */
};

static lua_State *state;
static struct limit limit;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct limit *l = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		l->in_use -= old;
		return NULL;
	}
	if (l->cap && nsize > old && l->in_use + (nsize - old) > l->cap)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (p)
		l->in_use = l->in_use - old + nsize;
	return p;
}

static const luaL_Reg c_modules[] = {
    {"base64", luaopen_base64}, {"http", luaopen_http}, {"json", luaopen_json},
    {"k8s", luaopen_k8s},       {"log", luaopen_log},   {"proc", luaopen_proc},
    {"site", luaopen_site},     {"yaml", luaopen_yaml}, {NULL, NULL},
};

/* The host's allow-list: no 'debug'. */
static const luaL_Reg std_libs[] = {
    {LUA_GNAME, luaopen_base},        {LUA_LOADLIBNAME, luaopen_package},
    {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
    {LUA_IOLIBNAME, luaopen_io},      {LUA_OSLIBNAME, luaopen_os},
    {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL},
};

/* package.preload loader of a shipped module; upvalue 1: its embedded_lua. */
static int load_embedded(lua_State *L)
{
	const struct embedded_lua *e = lua_touserdata(L, lua_upvalueindex(1));
	const char *chunkname = lua_pushfstring(L, "@lua/%s", e->path);
	if (luaL_loadbufferx(L, (const char *)e->text, e->len, chunkname, "t") != LUA_OK)
		return lua_error(L);
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
	return 1;
}

static int setup(lua_State *L)
{
	for (const luaL_Reg *lib = std_libs; lib->func; lib++) {
		luaL_requiref(L, lib->name, lib->func, 1);
		lua_pop(L, 1);
	}
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	int preload = lua_gettop(L);
	for (const luaL_Reg *m = c_modules; m->name; m++) {
		lua_pushcfunction(L, m->func);
		lua_setfield(L, preload, m->name);
	}
	for (const struct embedded_lua *e = embedded_lua; e->path; e++) {
		if (!e->module)
			continue;
		lua_pushlightuserdata(L, (void *)e);
		lua_pushcclosure(L, load_embedded, 1);
		lua_setfield(L, preload, e->module);
	}
	lua_settop(L, 0);
	return 0;
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static long budget;

static void count_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	budget -= 1000;
	if (budget < 0)
		luaL_error(L, "fuzz: instruction budget exhausted");
}

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

lua_State *fuzz_state(void)
{
	if (state)
		return state;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fuzz_fail("curl_global_init failed");
	log_set_level(LOG_ERROR); /* warnings about hostile input are expected */
	state = lua_newstate(limited_alloc, &limit);
	if (!state)
		fuzz_fail("cannot create a Lua state");
	lua_pushcfunction(state, setup);
	if (lua_pcall(state, 0, 0, 0) != LUA_OK)
		fuzz_fail("setup: %s", lua_tostring(state, -1));
	lua_sethook(state, count_hook, LUA_MASKCOUNT, 1000);
	return state;
}

void fuzz_begin(void)
{
	lua_State *L = fuzz_state();
	lua_settop(L, 0);
	limit.cap = limit.in_use + FUZZ_MEMORY_CAP;
	budget = FUZZ_INSTRUCTIONS;
}

void fuzz_end(void)
{
	lua_settop(state, 0);
	log_reset();
	limit.cap = 0;
	/* libFuzzer looks for leaks (a slow LeakSanitizer pass) after every
	 * input that did more mallocs than frees: collect what the input made */
	lua_gc(state, LUA_GCCOLLECT);
}

int fuzz_pcall(lua_State *L, int nargs, int nresults)
{
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	int status = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	return status;
}

void fuzz_require(lua_State *L, const char *name)
{
	lua_getglobal(L, "require");
	lua_pushstring(L, name);
	if (fuzz_pcall(L, 1, 1) != LUA_OK)
		fuzz_fail("require '%s': %s", name, lua_tostring(L, -1));
}

int fuzz_is_memory_error(lua_State *L, int status)
{
	const char *msg = lua_tostring(L, -1);
	return status == LUA_ERRMEM || (msg && strstr(msg, "not enough memory"));
}

int fuzz_known_gap(const char *msg, const char *prefix, const char *what)
{
	static const char *reported[16];
	if (!msg || strncmp(msg, prefix, strlen(prefix)) != 0)
		return 0;
	for (size_t i = 0; i < sizeof reported / sizeof reported[0]; i++) {
		if (reported[i] == what)
			break;
		if (!reported[i]) {
			reported[i] = what;
			fprintf(stderr, "fuzz: GAP: %s\n", what);
			break;
		}
	}
	return 1;
}

static char tmpdir[4096];

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	if (!d)
		return;
	struct dirent *e;
	char path[sizeof tmpdir + 256 + 2];
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

const char *fuzz_tmpdir(void)
{
	if (tmpdir[0])
		return tmpdir;
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/xcsreg-fuzz.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		fuzz_fail("cannot make a directory like %s", tmpdir);
	atexit(remove_tmpdir);
	return tmpdir;
}

const char *fuzz_write_file(const char *name, const void *data, size_t n)
{
	static char path[sizeof tmpdir + 256];
	snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0)
		fuzz_fail("cannot write %s", path);
	return path;
}
