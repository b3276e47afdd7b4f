/*
 * file.c: the 'file' module: files written and directories made where other
 * users may be, without following what they planted.
 *
 *   file.replace(path, data [, {mode = 0644}]) -> true | nil, message
 *       writes data to a new file in path's directory, created exclusively
 *       (O_CREAT|O_EXCL under a random name: a symlink or a file someone
 *       else made there is never opened), with exactly that mode, owned by
 *       the runner, flushed to disk, then renamed over path. A reader sees
 *       the old file or the new one, never half of one; nothing is left
 *       behind on failure. The temporary name starts with '.' and ends in
 *       random characters, so a collector that reads *.prom never reads it.
 *   file.private_dir(path) -> true | nil, message
 *       makes directory path (mode 0700) unless it exists, then checks that
 *       it is a directory (not a symlink), owned by this user and writable
 *       by no one else: a place for files no other user may replace or hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "xcsreg.h"

static const char *const replace_options[] = {"mode", NULL};

/* Writes all of data to fd: 0, or -1 with errno. */
static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_replace(lua_State *L)
{
	size_t plen, len;
	const char *path = luaL_checklstring(L, 1, &plen);
	const char *data = luaL_checklstring(L, 2, &len);
	lua_Integer mode = 0644;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		opt_check_keys(L, 3, replace_options);
		mode = opt_integer(L, 3, "mode", 0644, 0, 07777);
	}
	luaL_argcheck(L, plen > 0 && memchr(path, '\0', plen) == NULL && path[plen - 1] != '/', 1,
	              "must name a file");
	/* "DIR/.BASE.XXXXXX", DIR being path's directory (none: the current one),
	 * in a userdata: mkostemp writes into it (never into a Lua string) */
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = path + dlen;
	size_t blen = plen - dlen;
	char *tmp = lua_newuserdatauv(L, dlen + 1 + blen + 8, 0);
	memcpy(tmp, path, dlen);
	tmp[dlen] = '.';
	memcpy(tmp + dlen + 1, base, blen);
	memcpy(tmp + dlen + 1 + blen, ".XXXXXX", 8);
	int fd = mkostemp(tmp, O_CLOEXEC);
	int err = 0;
	const char *step = "create a temporary file for";
	if (fd < 0) {
		err = errno;
	} else {
		if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
			err = errno, step = "write";
		if (close(fd) != 0 && !err)
			err = errno, step = "write";
		if (!err && rename(tmp, path) != 0)
			err = errno, step = "rename a temporary file to";
		if (err)
			unlink(tmp);
	}
	if (err) {
		lua_pushnil(L);
		lua_pushfstring(L, "cannot %s %s: %s", step, path, strerror(err));
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int file_private_dir(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct stat st;
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		int err = errno;
		lua_pushnil(L);
		lua_pushfstring(L, "cannot make directory %s: %s", path, strerror(err));
		return 2;
	}
	const char *why = NULL;
	if (lstat(path, &st) != 0)
		why = strerror(errno);
	else if (S_ISLNK(st.st_mode))
		why = "it is a symbolic link";
	else if (!S_ISDIR(st.st_mode))
		why = "it is not a directory";
	else if (st.st_uid != geteuid())
		why = lua_pushfstring(L, "it is owned by uid %d, not by this user (uid %d)", (int)st.st_uid,
		                      (int)geteuid());
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		why = lua_pushfstring(L, "other users can write to it (mode %04o)", (int)(st.st_mode & 07777));
	if (why) {
		lua_pushnil(L);
		lua_pushfstring(L, "refusing directory %s: %s", path, why);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg file_funcs[] = {
    {"private_dir", file_private_dir},
    {"replace", file_replace},
    {NULL, NULL},
};

int luaopen_file(lua_State *L)
{
	luaL_newlib(L, file_funcs);
	return 1;
}
