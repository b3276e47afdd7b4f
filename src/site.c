/*
 * site.c: the 'site' module: running and reading what a site gives xcsreg,
 * within bounds.
 *
 *   site.run(fn, {instructions = n, memory = bytes, seconds = s, what = name})
 *       -> true, results... | false, err
 *       calls fn as pcall does, but once fn has run n Lua VM instructions it
 *       is stopped with the error "stopped after N instructions (an endless
 *       loop?)". A site file is data built by a little code: without a bound
 *       a loop in one would hang every run of setup.lua. With memory, fn may
 *       grow the heap by at most that many bytes ("used more than N MiB");
 *       with seconds, a fn still running after that long (stuck in a C call,
 *       such as string.find with a pathological pattern, that no hook can
 *       interrupt) ends the process: "error: NAME: still running after S s:
 *       stopped", exit 2. Nothing is half-written then: the workflow prepares
 *       everything a site file gives before its first write.
 *   site.read_secret(path, {max_bytes = n, what = "password file"})
 *       -> text | nil, message
 *       reads a whole file that holds a secret. A file past max_bytes is
 *       refused ("PATH is larger than N bytes"), having read at most n + 1
 *       bytes of it. A symlink that neither root nor this user made, and
 *       anything but a regular file (a FIFO would hang the run), are
 *       refused (secret_file_open). When other users may read the file,
 *       change it or replace it in its directory, a warning says so (as ssh
 *       does of private keys), naming it and its mode; the file is still
 *       read.
 *   site.where(fn) -> line
 *       the line where the Lua function fn is defined (nil for a C
 *       function): a hook that returns garbage is named by where it is,
 *       without giving scripts the debug library.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "xcsreg.h"

#define SCRATCH_MT "xcsreg.site.Scratch"
#define MAX_SECRET_FILE ((size_t)16 << 20) /* the largest max_bytes: any secret fits */

/* ---- site.run ---- */

/* Where the limit of the running site.run is kept (a count hook gets no upvalue). */
static const char instructions_key = 'i';

/* Raises "chunk:line: stopped after N instructions", naming where the
 * interrupted function was. */
static void on_count(lua_State *L, lua_Debug *ar)
{
	lua_getinfo(L, "Sl", ar);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &instructions_key);
	lua_Integer n = lua_tointeger(L, -1);
	lua_pop(L, 1);
	lua_pushfstring(L, "%s:%d: stopped after %I instructions (an endless loop?)", ar->short_src,
	                ar->currentline, (LUA_INTEGER)n);
	/* from now on every instruction raises, so a pcall inside fn cannot carry on */
	lua_sethook(L, on_count, LUA_MASKCOUNT, 1);
	lua_error(L);
}

/* The heap growth of a running site.run: its allocator wraps the state's. */
struct growth {
	lua_Alloc f;
	void *ud;
	long long grown, max;
	int hit;
};

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct growth *g = ud;
	size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
	if (nsize > old && g->grown + (long long)(nsize - old) > g->max) {
		g->hit = 1;
		return NULL;
	}
	void *p = g->f(g->ud, ptr, osize, nsize);
	if (p || nsize == 0)
		g->grown += (long long)nsize - (long long)old;
	return p;
}

/* The message of the wall-time stop, made before the timer is armed: the
 * handler may only write(2) and _exit(2). */
static char timeout_message[512];
static size_t timeout_message_len;

static void on_alarm(int sig)
{
	(void)sig;
	ssize_t r = write(STDERR_FILENO, timeout_message, timeout_message_len);
	(void)r;
	_exit(XCS_EXIT_USAGE);
}

static int site_run(lua_State *L)
{
	static const char *const names[] = {"instructions", "memory", "seconds", "what", NULL};
	luaL_checktype(L, 1, LUA_TFUNCTION);
	luaL_checktype(L, 2, LUA_TTABLE);
	opt_check_keys(L, 2, names);
	lua_Integer n = opt_integer(L, 2, "instructions", 0, 1, INT32_MAX);
	luaL_argcheck(L, n > 0, 2, "option 'instructions' is required");
	lua_Integer memory = opt_integer(L, 2, "memory", 0, 1, (lua_Integer)1 << 40);
	lua_Integer seconds = opt_integer(L, 2, "seconds", 0, 1, 86400);
	const char *what = opt_cstring(L, 2, "what");
	/* A run inside another (a hook called while a script runs under its own
	 * limit) never lengthens the outer one: the sooner limit stands. */
	struct itimerval outer;
	getitimer(ITIMER_REAL, &outer);
	int outer_on = outer.it_value.tv_sec > 0 || outer.it_value.tv_usec > 0;
	if (seconds > 0 && outer_on && outer.it_value.tv_sec < seconds)
		seconds = 0;
	struct timespec armed_at;
	clock_gettime(CLOCK_MONOTONIC, &armed_at);
	if (seconds > 0) {
		int len = snprintf(timeout_message, sizeof timeout_message,
		                   "error: %s: still running after %lld s: stopped (nothing was written)\n",
		                   what ? what : "the site file", (long long)seconds);
		timeout_message_len = len < 0 ? 0 : (size_t)len < sizeof timeout_message ? (size_t)len
		                                                                   : sizeof timeout_message - 1;
	}
	lua_remove(L, 2); /* fn args... */

	/* Nested runs: the inner one's allocator wraps the outer one's, and the
	 * outer timer is put back when the inner run ends. */
	struct growth g = {0};
	if (memory > 0) {
		g.f = lua_getallocf(L, &g.ud);
		g.max = memory;
		lua_setallocf(L, limited_alloc, &g);
	}
	struct sigaction sa = {0}, old_sa;
	struct itimerval timer = {{0, 0}, {(time_t)seconds, 0}}, old_timer;
	if (seconds > 0) {
		sa.sa_handler = on_alarm;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, &old_sa);
		setitimer(ITIMER_REAL, &timer, &old_timer);
	}

	/* a site.run inside fn (nested) puts the outer limit back when it returns */
	lua_Hook old_hook = lua_gethook(L);
	int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &instructions_key); /* fn args... old_n */
	lua_insert(L, 1);
	lua_pushinteger(L, n);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &instructions_key);

	lua_sethook(L, on_count, LUA_MASKCOUNT, (int)n);
	int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0); /* old_n results... | old_n err */
	lua_sethook(L, old_hook, old_mask, old_count);
	if (seconds > 0) {
		if (outer_on) { /* the outer limit, less the time this run took */
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long long left_us = (long long)old_timer.it_value.tv_sec * 1000000 + old_timer.it_value.tv_usec -
			                    ((long long)(now.tv_sec - armed_at.tv_sec) * 1000000 +
			                     (now.tv_nsec - armed_at.tv_nsec) / 1000);
			if (left_us < 1)
				left_us = 1;
			old_timer.it_value.tv_sec = (time_t)(left_us / 1000000);
			old_timer.it_value.tv_usec = (suseconds_t)(left_us % 1000000);
		}
		setitimer(ITIMER_REAL, &old_timer, NULL);
		sigaction(SIGALRM, &old_sa, NULL);
	}
	if (memory > 0) {
		lua_setallocf(L, g.f, g.ud);
		if (status == LUA_ERRMEM && g.hit) {
			lua_pop(L, 1);
			lua_pushfstring(L, "used more than %d MiB of memory: stopped", (int)(memory >> 20));
		}
	}
	luaL_checkstack(L, 2, NULL); /* the results may have taken every free slot */

	lua_pushvalue(L, 1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &instructions_key);
	lua_pushboolean(L, status == LUA_OK);
	lua_replace(L, 1); /* ok results... | false err */
	return lua_gettop(L);
}

/* ---- site.read_secret ---- */

/* Scratch memory for a secret: a userdata wiped when it is collected, so
 * that a raise between reading and returning neither leaks nor leaves the
 * secret in freed memory. */
struct scratch {
	size_t size;
	char data[];
};

static int scratch_gc(lua_State *L)
{
	struct scratch *s = luaL_checkudata(L, 1, SCRATCH_MT);
	explicit_bzero(s->data, s->size);
	return 0;
}

static struct scratch *push_scratch(lua_State *L, size_t size)
{
	struct scratch *s = lua_newuserdatauv(L, sizeof *s + size, 0);
	s->size = size;
	if (luaL_newmetatable(L, SCRATCH_MT)) {
		lua_pushcfunction(L, scratch_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return s;
}

/* Reads up to max bytes of path into buf: the count, or -1 with msg filled
 * (the reason). Opened as secret_file_open does (no symlink another user
 * made, only a regular file), which warns as it says. No Lua call while the
 * file is open. */
static ssize_t read_bounded(const char *what, const char *path, char *buf, size_t max, char *msg, size_t msgsz)
{
	struct stat st;
	int fd = secret_file_open(what, path, SECRET_WARN_READABLE | SECRET_WARN_WRITABLE, &st, msg, msgsz);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n < max) {
		ssize_t r = read(fd, buf + n, max - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(msg, msgsz, "%s", strerror(errno));
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	return (ssize_t)n;
}

static int site_read_secret(lua_State *L)
{
	static const char *const names[] = {"max_bytes", "what", NULL};
	const char *path = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	opt_check_keys(L, 2, names);
	size_t max = opt_size(L, 2, "max_bytes", 0);
	luaL_argcheck(L, max > 0 && max <= MAX_SECRET_FILE, 2,
	              lua_pushfstring(L, "option 'max_bytes' must be from 1 to %d", (int)MAX_SECRET_FILE));
	const char *what = opt_cstring(L, 2, "what");
	if (!what)
		what = "file";

	/* one byte more than allowed tells a file that is too large */
	struct scratch *s = push_scratch(L, max + 1);
	char msg[256];
	ssize_t n = read_bounded(what, path, s->data, max + 1, msg, sizeof msg);
	if (n < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "cannot read %s: %s", path, msg);
		return 2;
	}
	if ((size_t)n > max) {
		explicit_bzero(s->data, s->size);
		lua_pushnil(L);
		lua_pushfstring(L, "%s is larger than %I bytes", path, (LUA_INTEGER)max);
		return 2;
	}
	lua_pushlstring(L, s->data, (size_t)n);
	explicit_bzero(s->data, (size_t)n);
	return 1;
}

static int site_where(lua_State *L)
{
	lua_Debug ar;
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_pushvalue(L, 1);
	lua_getinfo(L, ">S", &ar);
	if (ar.linedefined <= 0)
		return 0;
	lua_pushinteger(L, ar.linedefined);
	return 1;
}

static const luaL_Reg site_funcs[] = {
    {"read_secret", site_read_secret},
    {"run", site_run},
    {"where", site_where},
    {NULL, NULL},
};

int luaopen_site(lua_State *L)
{
	luaL_newlib(L, site_funcs);
	return 1;
}
