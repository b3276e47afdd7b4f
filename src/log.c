/*
 * log.c: the 'log' module. Leveled lines on stderr, as text or JSON, with
 * every value registered as secret replaced by "***" in whatever is
 * written. The state is process-wide because C code (the k8s client, the
 * host's last-resort error printer) logs through it too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "xcsreg.h"

static int log_level = LOG_INFO;
static int log_json;

struct secret {
	char *s;
	size_t len;
};
static struct secret *secrets;
static size_t nsecrets, secrets_cap;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace", NULL};

void log_set_level(int level) { log_level = level; }
int log_get_level(void) { return log_level; }
void log_set_json(int on) { log_json = on; }

void log_add_secret(const char *s, size_t len)
{
	if (len == 0)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (secrets[i].len == len && memcmp(secrets[i].s, s, len) == 0)
			return;
	if (nsecrets == secrets_cap) {
		size_t cap = secrets_cap ? 2 * secrets_cap : 8;
		struct secret *p = realloc(secrets, cap * sizeof *p);
		if (!p)
			abort(); /* cannot promise redaction any more: do not go on */
		secrets = p;
		secrets_cap = cap;
	}
	char *copy = malloc(len);
	if (!copy)
		abort();
	memcpy(copy, s, len);
	secrets[nsecrets].s = copy;
	secrets[nsecrets].len = len;
	nsecrets++;
}

int log_is_secret(const char *s, size_t len)
{
	for (size_t i = 0; i < nsecrets; i++)
		if (secrets[i].len == len && memcmp(secrets[i].s, s, len) == 0)
			return 1;
	return 0;
}

void log_reset(void)
{
	for (size_t i = 0; i < nsecrets; i++) {
		memset(secrets[i].s, 0, secrets[i].len);
		free(secrets[i].s);
	}
	free(secrets);
	secrets = NULL;
	nsecrets = secrets_cap = 0;
}

static int is_word_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c >= 0x80;
}

/* The longest secret starting at src[i] (within len bytes), or 0. A secret
 * shorter than LOG_SHORT_SECRET only counts as a whole word: a password "p"
 * must not turn "expand" into "ex***and", which garbles every message and
 * tells the password to whoever reads them. */
static size_t secret_at(const char *src, size_t i, size_t len)
{
	const char *p = src + i;
	size_t best = 0;
	for (size_t k = 0; k < nsecrets; k++) {
		size_t n = secrets[k].len;
		if (n > len - i || n <= best || memcmp(p, secrets[k].s, n) != 0)
			continue;
		if (n < LOG_SHORT_SECRET) {
			const unsigned char *sec = (const unsigned char *)secrets[k].s;
			if (i > 0 && is_word_byte((unsigned char)src[i - 1]) && is_word_byte(sec[0]))
				continue;
			if (i + n < len && is_word_byte((unsigned char)src[i + n]) && is_word_byte(sec[n - 1]))
				continue;
		}
		best = n;
	}
	return best;
}

/* At src[i] == ':' of "scheme://": the length of the URL's userinfo and its
 * '@' after the "//" (0 if none). Its authority ends at '/', '?', '#', white
 * space or a quote; the userinfo is what precedes its last '@'. */
static size_t userinfo_at(const char *src, size_t i, size_t len)
{
	if (len - i < 4 || src[i] != ':' || src[i + 1] != '/' || src[i + 2] != '/' || i == 0 ||
	    !is_word_byte((unsigned char)src[i - 1]))
		return 0;
	size_t start = i + 3, at = 0;
	for (size_t j = start; j < len && !strchr("/?#\"'<> \t\r\n", src[j]); j++)
		if (src[j] == '@')
			at = j;
	return at > start ? at - start : 0;
}

size_t log_redact(const char *src, size_t len, char *dst, size_t dstsz)
{
	size_t o = 0;
	if (dstsz == 0)
		return 0;
	for (size_t i = 0; i < len && o + 1 < dstsz;) {
		size_t n = secret_at(src, i, len), u;
		if (n) {
			for (const char *r = "***"; *r && o + 1 < dstsz; r++)
				dst[o++] = *r;
			i += n;
		} else if ((u = userinfo_at(src, i, len)) > 0) {
			/* "scheme://user:password@host" becomes "scheme://" "***@host" */
			for (const char *r = "://***"; *r && o + 1 < dstsz; r++)
				dst[o++] = *r;
			i += 3 + u;
		} else {
			dst[o++] = src[i++];
		}
	}
	dst[o] = '\0';
	return o;
}

size_t log_cut(const char *s, size_t max)
{
	/* back to the start of the character that would be cut */
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

static void write_line(int level, const char *msg, size_t len)
{
	/* a one-byte secret becomes three bytes */
	char *buf = malloc(3 * len + 1);
	if (!buf)
		return;
	log_redact(msg, len, buf, 3 * len + 1);
	if (log_json) {
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
		for (const unsigned char *p = (const unsigned char *)buf; *p; p++) {
			if (*p == '"' || *p == '\\')
				fprintf(stderr, "\\%c", *p);
			else if (*p < 0x20)
				fprintf(stderr, "\\u%04x", *p);
			else
				fputc(*p, stderr);
		}
		fputs("\"}\n", stderr);
	} else {
		static const char *const prefix[] = {"error: ", "warning: ", "", "debug: ", "trace: "};
		fprintf(stderr, "%s%s\n", prefix[level], buf);
	}
	free(buf);
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	write_line(level, msg, (size_t)n);
	free(msg);
}

/* ---- Lua side ---- */

/* log.LEVEL(fmt, ...): string.format when there are arguments. */
static int log_at(lua_State *L, int level)
{
	if (level > log_level)
		return 0;
	if (lua_gettop(L) > 1) {
		luaL_checkstring(L, 1);
		luaL_getmetafield(L, 1, "__index"); /* the string library */
		lua_getfield(L, -1, "format");
		lua_insert(L, 1);
		lua_pop(L, 1);
		lua_call(L, lua_gettop(L) - 1, 1);
	}
	size_t len;
	const char *msg = luaL_tolstring(L, 1, &len);
	write_line(level, msg, len);
	return 0;
}

static int l_error(lua_State *L) { return log_at(L, LOG_ERROR); }
static int l_warn(lua_State *L) { return log_at(L, LOG_WARN); }
static int l_info(lua_State *L) { return log_at(L, LOG_INFO); }
static int l_debug(lua_State *L) { return log_at(L, LOG_DEBUG); }
static int l_trace(lua_State *L) { return log_at(L, LOG_TRACE); }

/* log.level([name]): returns the level in force, after setting it if given. */
static int l_level(lua_State *L)
{
	if (!lua_isnoneornil(L, 1))
		log_level = luaL_checkoption(L, 1, NULL, level_names);
	lua_pushstring(L, level_names[log_level]);
	return 1;
}

/* log.enabled(name): whether a line at that level would be written. */
static int l_enabled(lua_State *L)
{
	lua_pushboolean(L, luaL_checkoption(L, 1, NULL, level_names) <= log_level);
	return 1;
}

/* log.format([name]): "text" or "json". */
static int l_format(lua_State *L)
{
	static const char *const formats[] = {"text", "json", NULL};
	if (!lua_isnoneornil(L, 1))
		log_json = luaL_checkoption(L, 1, NULL, formats);
	lua_pushstring(L, formats[log_json]);
	return 1;
}

/* log.secret(value, ...): never write these values; returns the first. */
static int l_secret(lua_State *L)
{
	int n = lua_gettop(L);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = luaL_checklstring(L, i, &len);
		log_add_secret(s, len);
	}
	lua_settop(L, 1);
	return 1;
}

/* log.redact(s [, max]): s with every registered secret replaced by "***"
 * (and URL passwords masked); with max, the result is then cut to at most
 * max bytes and "..." (at a UTF-8 character boundary). Redacting first is
 * what keeps a cut secret, no longer equal to itself, out of messages. */
static int l_redact(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	lua_Integer max = luaL_optinteger(L, 2, -1);
	luaL_argcheck(L, max == -1 || max > 0, 2, "must be a positive number of bytes");
	luaL_Buffer b;
	char *dst = luaL_buffinitsize(L, &b, 3 * len + 1);
	size_t n = log_redact(s, len, dst, 3 * len + 1);
	if (max > 0 && n > (size_t)max) {
		n = log_cut(dst, (size_t)max);
		luaL_pushresultsize(&b, n);
		lua_pushliteral(L, "...");
		lua_concat(L, 2);
		return 1;
	}
	luaL_pushresultsize(&b, n);
	return 1;
}

static const luaL_Reg log_funcs[] = {
    {"debug", l_debug},
    {"enabled", l_enabled},
    {"error", l_error},
    {"format", l_format},
    {"info", l_info},
    {"level", l_level},
    {"redact", l_redact},
    {"secret", l_secret},
    {"trace", l_trace},
    {"warn", l_warn},
    {NULL, NULL},
};

int luaopen_log(lua_State *L)
{
	luaL_newlib(L, log_funcs);
	/* secrets shorter than this are only hidden where they are a whole word */
	lua_pushinteger(L, LOG_SHORT_SECRET);
	lua_setfield(L, -2, "SHORT_SECRET");
	return 1;
}
