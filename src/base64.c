/*
 * base64.c: the 'base64' module and the RFC 4648 codec behind it.
 *
 * Decoding is strict on purpose: a Secret's data or a kubeconfig's
 * certificate that is not exactly valid base64 is a sign of corruption, and
 * silently skipping a byte or ignoring trailing bits would hand back
 * different bytes than the writer meant.
 */
#include <string.h>

#include <lauxlib.h>

#include "xcsreg.h"

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n, int flags)
{
	size_t tail = n % 3;
	/* written without 4 * ((n + 2) / 3) so that no step can overflow */
	size_t len = n / 3 * 4;
	if (tail)
		len += (flags & B64_NOPAD) ? tail + 1 : 4;
	return len;
}

void b64_encode(const unsigned char *src, size_t n, char *dst, int flags)
{
	const char *abc = (flags & B64_URL) ? url_alphabet : std_alphabet;
	size_t i = 0;
	for (; n - i >= 3; i += 3) {
		unsigned long v = (unsigned long)src[i] << 16 | (unsigned long)src[i + 1] << 8 | src[i + 2];
		*dst++ = abc[v >> 18 & 63];
		*dst++ = abc[v >> 12 & 63];
		*dst++ = abc[v >> 6 & 63];
		*dst++ = abc[v & 63];
	}
	if (n - i == 0)
		return;
	unsigned long v = (unsigned long)src[i] << 16;
	if (n - i == 2)
		v |= (unsigned long)src[i + 1] << 8;
	*dst++ = abc[v >> 18 & 63];
	*dst++ = abc[v >> 12 & 63];
	if (n - i == 2)
		*dst++ = abc[v >> 6 & 63];
	else if (!(flags & B64_NOPAD))
		*dst++ = '=';
	if (!(flags & B64_NOPAD))
		*dst = '=';
}

size_t b64_decoded_maxlen(size_t n)
{
	/* a partial group of k characters holds k - 1 bytes */
	return n / 4 * 3 + n % 4;
}

/* The value of character c in the alphabet, or -1. */
static int b64_value(unsigned char c, int flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (flags & B64_URL)
		return c == '-' ? 62 : c == '_' ? 63 : -1;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

size_t b64_decode(const char *src, size_t n, unsigned char *dst, int flags,
                  size_t *errpos)
{
	const unsigned char *s = (const unsigned char *)src;
	/* Checked in the order of the bytes, so that the offset reported is
	 * the first one that makes the input invalid: a stray character, or
	 * the first '=' when data follows it. */
	size_t m = n; /* the data characters: up to the first '=' */
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=') {
			if (m == n)
				m = i;
		} else if (b64_value(s[i], flags) < 0) {
			*errpos = i;
			return (size_t)-1;
		} else if (m != n) {
			*errpos = m;
			return (size_t)-1;
		}
	}
	size_t pad = n - m;
	size_t tail = m % 4;
	if (tail == 1) {
		/* one character cannot hold a byte, whatever follows */
		*errpos = n;
		return (size_t)-1;
	}
	/* the bits of the last character that no output byte uses */
	int unused = tail == 2 ? 0x0f : tail == 3 ? 0x03 : 0;
	if (unused && (b64_value(s[m - 1], flags) & unused)) {
		*errpos = m - 1;
		return (size_t)-1;
	}
	size_t want_pad = tail ? 4 - tail : 0;
	if (pad > want_pad) {
		*errpos = m + want_pad;
		return (size_t)-1;
	}
	if (pad < want_pad && (pad > 0 || !(flags & B64_NOPAD))) {
		*errpos = n; /* padding missing or cut short */
		return (size_t)-1;
	}

	size_t o = 0, i = 0;
	for (; m - i >= 4; i += 4) {
		unsigned long v = (unsigned long)b64_value(s[i], flags) << 18 |
		                  (unsigned long)b64_value(s[i + 1], flags) << 12 |
		                  (unsigned long)b64_value(s[i + 2], flags) << 6 |
		                  (unsigned long)b64_value(s[i + 3], flags);
		dst[o++] = (unsigned char)(v >> 16);
		dst[o++] = (unsigned char)(v >> 8);
		dst[o++] = (unsigned char)v;
	}
	if (tail) {
		unsigned long v = (unsigned long)b64_value(s[i], flags) << 18 |
		                  (unsigned long)b64_value(s[i + 1], flags) << 12;
		if (tail == 3)
			v |= (unsigned long)b64_value(s[i + 2], flags) << 6;
		dst[o++] = (unsigned char)(v >> 16);
		if (tail == 3)
			dst[o++] = (unsigned char)(v >> 8);
	}
	return o;
}

/* ---- Lua side ---- */

/* Reads the options table at index 2 into B64_* flags. */
static int check_options(lua_State *L)
{
	int flags = 0;
	if (lua_isnoneornil(L, 2))
		return flags;
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		/* stack: opts, ..., key, value */
		size_t len = 0;
		const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
		int flag;
		if (name && len == 3 && memcmp(name, "url", 3) == 0)
			flag = B64_URL;
		else if (name && len == 3 && memcmp(name, "pad", 3) == 0)
			flag = B64_NOPAD;
		else
			return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'",
			                                           luaL_tolstring(L, -2, NULL)));
		if (!lua_isboolean(L, -1))
			return luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' must be a boolean", name));
		int on = lua_toboolean(L, -1);
		if (flag == B64_NOPAD)
			on = !on;
		if (on)
			flags |= flag;
		lua_pop(L, 1);
	}
	return flags;
}

/* base64.encode(s [, {url = false, pad = true}]) -> string */
static int b64lib_encode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	int flags = check_options(L);
	size_t len = b64_encoded_len(n, flags);
	luaL_Buffer b;
	char *dst = luaL_buffinitsize(L, &b, len);
	b64_encode((const unsigned char *)s, n, dst, flags);
	luaL_pushresultsize(&b, len);
	return 1;
}

/* base64.decode(s [, {url = false, pad = true}]) -> string | nil, message
 * pad = false makes the padding optional. */
static int b64lib_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	int flags = check_options(L);
	size_t errpos;
	luaL_Buffer b;
	unsigned char *dst = (unsigned char *)luaL_buffinitsize(L, &b, b64_decoded_maxlen(n));
	size_t len = b64_decode(s, n, dst, flags, &errpos);
	if (len == (size_t)-1) {
		luaL_pushresultsize(&b, 0);
		lua_pushnil(L);
		if (errpos == n)
			lua_pushliteral(L, "invalid base64 length");
		else
			lua_pushfstring(L, "invalid base64 at byte %I", (lua_Integer)errpos);
		return 2;
	}
	luaL_pushresultsize(&b, len);
	return 1;
}

static const luaL_Reg b64_funcs[] = {
    {"decode", b64lib_decode},
    {"encode", b64lib_encode},
    {NULL, NULL},
};

int luaopen_base64(lua_State *L)
{
	luaL_newlib(L, b64_funcs);
	return 1;
}
