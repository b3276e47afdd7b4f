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

/* The longest secret starting at p (within len bytes), or 0. */
static size_t secret_at(const char *p, size_t len)
{
	size_t best = 0;
	for (size_t i = 0; i < nsecrets; i++)
		if (secrets[i].len <= len && secrets[i].len > best &&
		    memcmp(p, secrets[i].s, secrets[i].len) == 0)
			best = secrets[i].len;
	return best;
}

size_t log_redact(const char *src, size_t len, char *dst, size_t dstsz)
{
	size_t o = 0;
	if (dstsz == 0)
		return 0;
	for (size_t i = 0; i < len && o + 1 < dstsz;) {
		size_t n = secret_at(src + i, len - i);
		if (n) {
			for (const char *r = "***"; *r && o + 1 < dstsz; r++)
				dst[o++] = *r;
			i += n;
		} else {
			dst[o++] = src[i++];
		}
	}
	dst[o] = '\0';
	return o;
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

/* log.redact(s): s with every registered secret replaced by "***". */
static int l_redact(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	luaL_Buffer b;
	char *dst = luaL_buffinitsize(L, &b, 3 * len + 1);
	luaL_pushresultsize(&b, log_redact(s, len, dst, 3 * len + 1));
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
	return 1;
}
