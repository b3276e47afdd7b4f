/*
 * main.c: the xcsreg host. Parses the command line, opens a Lua state with
 * an allow-list of libraries, makes the C modules and the shipped Lua files
 * loadable with require, and runs a script under lua_pcall with a traceback.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <yaml.h>

#include "curl_lazy.h"
#include "xcsreg.h"

static const char usage_text[] =
    "usage: xcsreg [-q|-v...] [--lua-dir DIR] COMMAND [ARG...]\n"
    "\n"
    "commands:\n"
    "  run SCRIPT [ARG...]  run a Lua script: a path, or the name of a shipped\n"
    "                       script (see 'xcsreg scripts'); 'xcsreg run setup.lua --help'\n"
    "  scripts              list the shipped scripts\n"
    "  cat NAME             print a shipped script or module (to copy and change)\n"
    "  version              print the versions of xcsreg and its libraries\n"
    "  help                 print this help\n"
    "\n"
    "options:\n"
    "  -q, --quiet          log errors only\n"
    "  -v, --verbose        log more (repeat for debug and trace)\n"
    "  --log-format FORMAT  text (default) or json, on stderr\n"
    "  --lua-dir DIR        load shipped scripts and modules from DIR when a file\n"
    "                       is there (also $XCSREG_LUA_PATH); default: built in\n"
    "\n"
    "A SCRIPT containing '/' is a path ('./setup.lua' runs a local copy); a bare\n"
    "name is a shipped script, else a file in the current directory.\n"
    "\n"
    "exit codes: 0 success, 1 an operation failed, 2 usage or configuration\n"
    "error (nothing was changed), 3 another run holds the lock.\n";

/* Where edited copies of the shipped Lua files may be found (or NULL). */
static const char *lua_dir;

static const struct c_module {
	const char *name;
	lua_CFunction open;
} c_modules[] = {
    /* http and k8s load libcurl (curl_lazy.c) at their first request or
     * client, not when required: --help, usage errors and client dry runs
     * of the shipped scripts, which require them at once, never load it */
    {"base64", luaopen_base64},
    {"file", luaopen_file},
    {"http", luaopen_http},
    {"json", luaopen_json},
    {"k8s", luaopen_k8s},
    {"log", luaopen_log},
    {"proc", luaopen_proc},
    {"site", luaopen_site},
    {"yaml", luaopen_yaml},
    {NULL, NULL},
};

/* The standard libraries a script may use; 'debug' is left out on purpose. */
static const luaL_Reg std_libs[] = {
    {LUA_GNAME, luaopen_base},
    {LUA_LOADLIBNAME, luaopen_package},
    {LUA_COLIBNAME, luaopen_coroutine},
    {LUA_TABLIBNAME, luaopen_table},
    {LUA_IOLIBNAME, luaopen_io},
    {LUA_OSLIBNAME, luaopen_os},
    {LUA_STRLIBNAME, luaopen_string},
    {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},
    {NULL, NULL},
};

static const struct embedded_lua *find_embedded(const char *path)
{
	for (const struct embedded_lua *e = embedded_lua; e->path; e++)
		if (strcmp(e->path, path) == 0)
			return e;
	return NULL;
}

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Loads the shipped file at path (relative to lua/) and pushes the chunk:
 * the copy in lua_dir when there is one, else the built-in text. Returns
 * the lua_load status; on error the message is on the stack.
 */
static int load_shipped(lua_State *L, const char *path)
{
	if (lua_dir) {
		const char *file = lua_pushfstring(L, "%s/%s", lua_dir, path);
		if (is_file(file)) {
			int status = luaL_loadfilex(L, file, "t");
			lua_remove(L, -2);
			return status;
		}
		lua_pop(L, 1);
	}
	const struct embedded_lua *e = find_embedded(path);
	if (!e) {
		lua_pushfstring(L, "no shipped file %s", path);
		return LUA_ERRFILE;
	}
	const char *chunkname = lua_pushfstring(L, "@lua/%s", path);
	int status = e->bytecode && strcmp(embedded_lua_ident, lua_ident) == 0
	    ? luaL_loadbufferx(L, (const char *)e->bytecode, e->bytecode_len, chunkname, "b")
	    : luaL_loadbufferx(L, (const char *)e->text, e->len, chunkname, "t");
	lua_remove(L, -2);
	return status;
}

/* package.preload loader for a shipped module; upvalue 1 is its path. */
static int load_shipped_module(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *path = lua_tostring(L, lua_upvalueindex(1));
	if (load_shipped(L, path) != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, name);
	lua_call(L, 1, 1);
	return 1;
}

/*
 * Makes every C module and every shipped module under lua/xcsreg/ loadable
 * with require, without running any of them: a run pays only for what it uses.
 */
static void register_modules(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (const struct c_module *m = c_modules; m->name; m++) {
		lua_pushcfunction(L, m->open);
		lua_setfield(L, -2, m->name);
	}
	for (const struct embedded_lua *e = embedded_lua; e->path; e++) {
		if (!e->module)
			continue;
		lua_pushstring(L, e->path);
		lua_pushcclosure(L, load_shipped_module, 1);
		lua_setfield(L, -2, e->module);
	}
	lua_pop(L, 1);
}

static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1; /* an error object that can print itself */
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Lines of a shipped script's leading comment: "-- name: what it does". */
static void print_description(const struct embedded_lua *e)
{
	const char *p = (const char *)e->text, *end = p + e->len;
	if (end - p > 3 && strncmp(p, "-- ", 3) == 0) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		p += 3;
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		size_t plen = strlen(e->path);
		if (n > plen + 2 && strncmp(p, e->path, plen) == 0 && p[plen] == ':')
			p += plen + 2, n -= plen + 2;
		printf("  %-24s %.*s\n", e->path, (int)n, p);
	} else {
		printf("  %s\n", e->path);
	}
}

static int cmd_scripts(void)
{
	printf("shipped scripts (xcsreg run NAME; xcsreg cat NAME to copy one):\n");
	for (const struct embedded_lua *e = embedded_lua; e->path; e++)
		if (!strchr(e->path, '/'))
			print_description(e);
	printf("modules they use (xcsreg cat xcsreg/NAME.lua):\n");
	for (const struct embedded_lua *e = embedded_lua; e->path; e++)
		if (strchr(e->path, '/'))
			printf("  %s\n", e->path);
	return XCS_EXIT_OK;
}

static int cmd_cat(const char *name)
{
	const struct embedded_lua *e = find_embedded(name);
	if (!e) {
		fprintf(stderr, "xcsreg: no shipped file named '%s' (see 'xcsreg scripts')\n", name);
		return XCS_EXIT_USAGE;
	}
	fwrite(e->text, 1, e->len, stdout);
	return XCS_EXIT_OK;
}

static int cmd_version(void)
{
	printf("xcsreg %s\n", XCSREG_VERSION);
	printf("%s\n", LUA_RELEASE);
	const char *why = curl_lazy_load();
	if (why) {
		printf("libcurl: %s\n", why);
	} else {
		curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
		printf("libcurl %s (%s)\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
		curl_global_cleanup();
	}
	printf("cJSON %s\n", cJSON_Version());
	printf("libyaml %s\n", yaml_get_version_string());
	return XCS_EXIT_OK;
}

struct run_args {
	const char *script;
	int argc;       /* script arguments */
	char **argv;
	int host_argc;  /* what came before the script: the program, its options, "run" */
	char **host_argv;
};

/* Runs inside lua_pcall, so that every Lua error, out-of-memory included,
 * comes back to main as a status (the pattern of lua.c's pmain). */
static int run_protected(lua_State *L)
{
	struct run_args *ra = lua_touserdata(L, 1);
	luaL_checkversion(L);
	/* A new collection cycle when the heap reaches 1.5 times what the last
	 * one kept (Lua's default: twice). A rollout over 1000 namespaces holds a
	 * few MiB of LIST answers for its whole run while every namespace's work
	 * leaves garbage behind: this keeps its peak ~2 MiB lower for ~0.05 s of
	 * CPU (scripts/bench); short runs never reach a second cycle. */
	lua_gc(L, LUA_GCINC, 150, 0, 0);
	for (const luaL_Reg *lib = std_libs; lib->func; lib++) {
		luaL_requiref(L, lib->name, lib->func, 1);
		lua_pop(L, 1);
	}
	register_modules(L);

	/* arg, as the standalone lua sets it: arg[0] the script, arg[-1] back to
	 * arg[-N] what came before it ("run", the host's options, the program),
	 * so that a script can start the host again as it was started */
	lua_createtable(L, ra->argc, ra->host_argc + 1);
	for (int i = 0; i < ra->host_argc; i++) {
		lua_pushstring(L, ra->host_argv[i]);
		lua_rawseti(L, -2, i - ra->host_argc);
	}
	lua_pushstring(L, ra->script);
	lua_rawseti(L, -2, 0);
	for (int i = 0; i < ra->argc; i++) {
		lua_pushstring(L, ra->argv[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setglobal(L, "arg");

	const char *s = ra->script;
	int status;
	char *shipped = NULL;
	if (!strchr(s, '/')) {
		/* "setup" and "setup.lua" both name the shipped setup.lua */
		size_t n = strlen(s);
		const char *name = (n > 4 && strcmp(s + n - 4, ".lua") == 0)
		                       ? s : lua_pushfstring(L, "%s.lua", s);
		if (find_embedded(name))
			shipped = (char *)name;
	}
	if (shipped) {
		status = load_shipped(L, shipped);
	} else {
		struct stat st;
		const char *why = NULL;
		if (stat(s, &st) != 0)
			why = strerror(errno);
		else if (!S_ISREG(st.st_mode))
			why = "not a regular file";
		if (why) {
			lua_pushfstring(L, "cannot open %s: %s (give a path, or the name of a "
			                   "shipped script: see 'xcsreg scripts')", s, why);
			lua_pushinteger(L, XCS_EXIT_USAGE);
			return 2;
		}
		status = luaL_loadfilex(L, s, "t");
	}
	if (status != LUA_OK) {
		lua_pushinteger(L, XCS_EXIT_USAGE);
		return 2;
	}
	int chunk = lua_gettop(L);
	luaL_checkstack(L, ra->argc + 2, "too many arguments to script");
	for (int i = 0; i < ra->argc; i++)
		lua_pushstring(L, ra->argv[i]);
	lua_call(L, ra->argc, 1);
	/* A script may return its exit code; nil or true is success, false failure. */
	int code = XCS_EXIT_OK;
	if (lua_isinteger(L, chunk))
		code = (int)lua_tointeger(L, chunk);
	else if (lua_isboolean(L, chunk) && !lua_toboolean(L, chunk))
		code = XCS_EXIT_FAIL;
	lua_pushnil(L);
	lua_pushinteger(L, code);
	return 2;
}

static int cmd_run(int argc, char **argv, int host_argc, char **host_argv)
{
	if (argc < 1) {
		fprintf(stderr, "xcsreg: run needs a SCRIPT\n%s", usage_text);
		return XCS_EXIT_USAGE;
	}
	lua_State *L = luaL_newstate();
	if (!L) {
		fprintf(stderr, "xcsreg: cannot create Lua state: not enough memory\n");
		return XCS_EXIT_FAIL;
	}
	struct run_args ra = {argv[0], argc - 1, argv + 1, host_argc, host_argv};
	lua_pushcfunction(L, msghandler);
	lua_pushcfunction(L, run_protected);
	lua_pushlightuserdata(L, &ra);
	int status = lua_pcall(L, 1, 2, 1);
	int code;
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		char buf[8192];
		log_redact(msg ? msg : "(no message)", msg ? strlen(msg) : 12, buf, sizeof buf);
		fprintf(stderr, "xcsreg: %s\n", buf);
		code = XCS_EXIT_FAIL;
	} else {
		code = (int)lua_tointeger(L, -1);
		if (!lua_isnil(L, -2)) {
			const char *msg = lua_tostring(L, -2);
			fprintf(stderr, "xcsreg: %s\n", msg ? msg : "(no message)");
		}
	}
	lua_close(L);
	return code;
}

/*
 * A core dump of this process would hold every secret it read: passwords,
 * tokens, keys. None is written (RLIMIT_CORE 0, inherited by the commands we
 * run), and the process is not dumpable (no core even where the kernel's
 * suid_dumpable would write one, no ptrace attach by the same user, /proc
 * files such as environ readable by root only). XCSREG_ALLOW_CORE=1 keeps
 * both, to debug a crash.
 */
static void no_core_dumps(void)
{
	const char *allow = getenv("XCSREG_ALLOW_CORE");
	if (allow && strcmp(allow, "1") == 0)
		return;
	/* the soft limit: the hard one stays, so XCSREG_ALLOW_CORE=1 in a child can raise it again */
	struct rlimit rl = {0, 0};
	if (getrlimit(RLIMIT_CORE, &rl) == 0)
		rl.rlim_cur = 0;
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		fprintf(stderr, "xcsreg: warning: cannot disable core dumps: %s\n", strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fprintf(stderr, "xcsreg: warning: cannot make the process non-dumpable: %s\n", strerror(errno));
}

int main(int argc, char **argv)
{
	int level = LOG_INFO;
	int i = 1;
	no_core_dumps();
	lua_dir = getenv("XCSREG_LUA_PATH");
	if (lua_dir && !*lua_dir)
		lua_dir = NULL;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			level = LOG_ERROR;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			level = level < LOG_TRACE ? level + 1 : LOG_TRACE;
		} else if (strcmp(a, "-vv") == 0) {
			level = LOG_DEBUG;
		} else if (strcmp(a, "--log-format") == 0 && i + 1 < argc) {
			const char *f = argv[++i];
			if (strcmp(f, "json") != 0 && strcmp(f, "text") != 0) {
				fprintf(stderr, "xcsreg: --log-format must be text or json, not '%s'\n", f);
				return XCS_EXIT_USAGE;
			}
			log_set_json(strcmp(f, "json") == 0);
		} else if (strcmp(a, "--lua-dir") == 0 && i + 1 < argc) {
			lua_dir = argv[++i];
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return XCS_EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			return cmd_version();
		} else {
			fprintf(stderr, "xcsreg: unknown option '%s'\n%s", a, usage_text);
			return XCS_EXIT_USAGE;
		}
	}
	log_set_level(level);
	/* A helper that exits before reading its stdin must give us EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (i >= argc) {
		fputs(usage_text, stderr);
		return XCS_EXIT_USAGE;
	}
	const char *cmd = argv[i++];
	int code;
	if (strcmp(cmd, "run") == 0) {
		proc_catch_signals();
		code = cmd_run(argc - i, argv + i, i, argv);
		int sig = proc_interrupted();
		if (sig) {
			log_msg(LOG_ERROR, "interrupted by %s: exiting with status %d", proc_signal_name(sig), 128 + sig);
			code = 128 + sig;
		}
		curl_global_cleanup(); /* nothing to do unless the script loaded libcurl */
		log_reset();
	} else if (strcmp(cmd, "scripts") == 0) {
		code = cmd_scripts();
	} else if (strcmp(cmd, "cat") == 0 && i < argc) {
		code = cmd_cat(argv[i]);
	} else if (strcmp(cmd, "version") == 0) {
		code = cmd_version();
	} else if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		code = XCS_EXIT_OK;
	} else {
		fprintf(stderr, "xcsreg: unknown command '%s'\n%s", cmd, usage_text);
		code = XCS_EXIT_USAGE;
	}
	if (fflush(stdout) != 0 && code == XCS_EXIT_OK) {
		fprintf(stderr, "xcsreg: cannot write output: %s\n", strerror(errno));
		code = XCS_EXIT_FAIL;
	}
	return code;
}
