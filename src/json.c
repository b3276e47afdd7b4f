/*
 * json.c: the 'json' module.
 *
 * Encoding writes Lua values straight to text, with sorted keys and Go's
 * encoding/json string escaping, so that what xcsreg writes is byte for byte
 * what kubectl writes. Decoding parses with cJSON, after a lexical pass that
 * rejects what cJSON would let through but JSON does not (control bytes as
 * whitespace or inside strings, "+1", "01", bad escapes); strings holding
 * \u0000, which cJSON's C strings cut short, are decoded from the text.
 * Arrays and objects carry the marker metatables of xcsreg.h, so [] and {}
 * survive a round trip.
 *
 * What each part is kept for (issue 11 asked; each is asserted by a test):
 *  - the encoder: kubectl's bytes (.dockerconfigjson, -o json), so that an
 *    unchanged Secret compares equal (test_dockerconfigjson.lua, test_json.lua);
 *  - the lexical pass: json.decode's documented "invalid JSON at line L,
 *    column C (byte N)" for what cJSON accepts ("01", "1.", "[1e]", bad
 *    escapes, control bytes, 1e400, depth: test_json.lua's dec_errors);
 *  - cJSON: the structure, and its error positions for structural faults
 *    ("{" at byte 0, "[1,]" at byte 3: the same table). A single-pass
 *    decoder replacing both would have to give those positions too.
 */
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>

#include "xcsreg.h"

/* Both ways, as cJSON's CJSON_NESTING_LIMIT: at most this many nested
 * arrays and objects. It also stops the encoder on a cycle. */
#define JSON_MAX_DEPTH 1000

#define TREE_MT "xcsreg.json.tree"

/* Pushes the marker metatable called name, creating it on first use so
 * that json and yaml share it whichever is loaded first. */
static void push_marker(lua_State *L, const char *name)
{
	luaL_newmetatable(L, name);
}

/* ---- Output: a growing buffer held in a userdata ----
 * The encoder pushes keys and values while it writes, so a luaL_Buffer
 * (which must stay at the top of the stack) does not fit. The bytes live in
 * a plain userdata at a fixed stack slot instead: an error anywhere leaves
 * nothing for anyone to free. */
struct out {
	lua_State *L;
	int slot;  /* stack index of the userdata holding p */
	char *p;
	size_t n, cap;
};

static void out_init(lua_State *L, struct out *o, size_t cap)
{
	o->L = L;
	o->p = lua_newuserdatauv(L, cap, 0);
	o->slot = lua_gettop(L);
	o->n = 0;
	o->cap = cap;
}

static void out_add(struct out *o, const void *s, size_t len)
{
	if (o->cap - o->n < len) {
		if (len > SIZE_MAX / 2 - o->n)
			luaL_error(o->L, "json.encode: output too large");
		size_t cap = 2 * o->cap > o->n + len ? 2 * o->cap : o->n + len;
		char *p = lua_newuserdatauv(o->L, cap, 0);
		memcpy(p, o->p, o->n);
		lua_replace(o->L, o->slot);
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->n, s, len);
	o->n += len;
}

static void out_char(struct out *o, char c) { out_add(o, &c, 1); }

/* Length of the UTF-8 sequence at s (len bytes available) when it is one
 * Go's utf8.DecodeRune accepts (no overlong forms, surrogates or values
 * past U+10FFFF), else 0. */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (len < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

/* Writes s as a JSON string escaped exactly as Go's encoding/json does
 * (HTML-safe, U+2028/U+2029 escaped, each invalid UTF-8 byte -> U+FFFD). */
static void write_string(struct out *o, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t raw = 0; /* start of the bytes not yet written */
	out_char(o, '"');
	for (size_t i = 0; i < len;) {
		char ctl[6]; /* \u00XX */
		const char *esc;
		size_t esc_len = 2, skip = 1;
		unsigned char c = s[i];
		if (c >= 0x80) {
			size_t k = utf8_sequence(s + i, len - i);
			if (k == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8) {
				esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
				esc_len = 6;
				skip = 3;
			} else if (k == 0) {
				esc = "\\ufffd";
				esc_len = 6;
			} else {
				i += k;
				continue;
			}
		} else if (c == '"') {
			esc = "\\\"";
		} else if (c == '\\') {
			esc = "\\\\";
		} else if (c == '\n') {
			esc = "\\n";
		} else if (c == '\r') {
			esc = "\\r";
		} else if (c == '\t') {
			esc = "\\t";
		} else if (c == '\b') {
			esc = "\\b";
		} else if (c == '\f') {
			esc = "\\f";
		} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			ctl[0] = '\\';
			ctl[1] = 'u';
			ctl[2] = ctl[3] = '0';
			ctl[4] = hex[c >> 4];
			ctl[5] = hex[c & 15];
			esc = ctl;
			esc_len = 6;
		} else {
			i++;
			continue;
		}
		out_add(o, s + raw, i - raw);
		out_add(o, esc, esc_len);
		i += skip;
		raw = i;
	}
	out_add(o, s + raw, len - raw);
	out_char(o, '"');
}

/* ---- Encoding ---- */

/* One step from the value being encoded to its parent, for messages. */
struct path_step {
	const char *key; /* NULL for an array element; else anchored by its table */
	size_t len;
	lua_Integer index;
};

struct encoder {
	struct out out;
	int array_mt, object_mt; /* stack indices of the marker metatables */
	int indent;              /* spaces per level; -1: compact */
	int depth;               /* steps in path */
	struct path_step path[JSON_MAX_DEPTH];
};

static int is_identifier(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

/* Raises "json.encode: <what> at <path>"; the path is left out at the top
 * level. Keys that are not identifiers are shown as ["..."]; indices are
 * Lua's (1-based). */
static int encode_error(struct encoder *e, const char *what)
{
	lua_State *L = e->out.L;
	luaL_checkstack(L, 4, NULL);
	lua_pushfstring(L, "json.encode: %s", what);
	if (e->depth == 0)
		return lua_error(L);
	struct out path;
	out_init(L, &path, 64);
	for (int i = 0; i < e->depth; i++) {
		const struct path_step *step = &e->path[i];
		if (!step->key) {
			char num[48];
			int k = snprintf(num, sizeof num, "[" LUA_INTEGER_FMT "]", (LUAI_UACINT)step->index);
			out_add(&path, num, (size_t)k);
		} else if (is_identifier(step->key, step->len)) {
			out_char(&path, '.');
			out_add(&path, step->key, step->len);
		} else {
			out_char(&path, '[');
			write_string(&path, step->key, step->len);
			out_char(&path, ']');
		}
	}
	lua_pushliteral(L, " at ");
	lua_pushlstring(L, path.p, path.n);
	lua_remove(L, path.slot);
	lua_concat(L, 3);
	return lua_error(L);
}

static void write_number(struct encoder *e, int idx)
{
	lua_State *L = e->out.L;
	char buf[64];
	int k;
	if (lua_isinteger(L, idx)) {
		k = snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
		out_add(&e->out, buf, (size_t)k);
		return;
	}
	double x = (double)lua_tonumber(L, idx);
	if (isnan(x))
		encode_error(e, "cannot encode NaN");
	if (isinf(x))
		encode_error(e, x > 0 ? "cannot encode inf" : "cannot encode -inf");
	/* the shortest of these that reads back as the same double */
	for (int prec = 15;; prec++) {
		k = snprintf(buf, sizeof buf, "%.*g", prec, x);
		if (prec == 17 || strtod(buf, NULL) == x)
			break;
	}
	/* os.setlocale may have changed the decimal point; JSON's is '.' */
	char point = localeconv()->decimal_point[0];
	if (point != '.')
		for (int i = 0; i < k; i++)
			if (buf[i] == point)
				buf[i] = '.';
	out_add(&e->out, buf, (size_t)k);
}

static void encode_value(struct encoder *e, int idx);

/* A newline and the indentation of level (indented output only). */
static void write_newline(struct encoder *e, int level)
{
	if (e->indent < 0)
		return;
	out_char(&e->out, '\n');
	for (int i = 0; i < level * e->indent; i++)
		out_char(&e->out, ' ');
}

static void encode_array(struct encoder *e, int idx, lua_Integer n)
{
	lua_State *L = e->out.L;
	out_char(&e->out, '[');
	for (lua_Integer i = 1; i <= n; i++) {
		if (i > 1)
			out_char(&e->out, ',');
		write_newline(e, e->depth + 1);
		e->path[e->depth] = (struct path_step){NULL, 0, i};
		e->depth++;
		lua_rawgeti(L, idx, i);
		encode_value(e, lua_gettop(L));
		lua_pop(L, 1);
		e->depth--;
	}
	if (n > 0)
		write_newline(e, e->depth);
	out_char(&e->out, ']');
}

struct key {
	const char *s;
	size_t len;
};

static int compare_keys(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	if (c != 0)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

/* Writes the table at idx, whose n keys are all strings, keys sorted. */
static void encode_object(struct encoder *e, int idx, size_t n)
{
	lua_State *L = e->out.L;
	if (n == 0) {
		out_add(&e->out, "{}", 2);
		return;
	}
	/* The key strings stay alive as keys of the table at idx, which is on
	 * the stack and not changed while we write it. */
	struct key *keys = lua_newuserdatauv(L, n * sizeof *keys, 0);
	size_t count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		/* stack: ..., keys, key (a string: tolstring changes nothing) */
		keys[count].s = lua_tolstring(L, -1, &keys[count].len);
		count++;
	}
	qsort(keys, n, sizeof *keys, compare_keys);
	out_char(&e->out, '{');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			out_char(&e->out, ',');
		write_newline(e, e->depth + 1);
		write_string(&e->out, keys[i].s, keys[i].len);
		if (e->indent < 0)
			out_char(&e->out, ':');
		else
			out_add(&e->out, ": ", 2);
		e->path[e->depth] = (struct path_step){keys[i].s, keys[i].len, 0};
		e->depth++;
		lua_pushlstring(L, keys[i].s, keys[i].len);
		lua_rawget(L, idx);
		/* stack: ..., keys, value */
		encode_value(e, lua_gettop(L));
		lua_pop(L, 1);
		e->depth--;
	}
	write_newline(e, e->depth);
	out_char(&e->out, '}');
	lua_pop(L, 1); /* keys */
}

enum { UNMARKED, ARRAY, OBJECT };

static int marker_of(struct encoder *e, int idx)
{
	lua_State *L = e->out.L;
	if (!lua_getmetatable(L, idx))
		return UNMARKED;
	int kind = lua_rawequal(L, -1, e->array_mt)    ? ARRAY
	           : lua_rawequal(L, -1, e->object_mt) ? OBJECT
	                                               : UNMARKED;
	lua_pop(L, 1);
	return kind;
}

/* Tells an array from an object by its marker, else by its keys. */
static void encode_table(struct encoder *e, int idx)
{
	lua_State *L = e->out.L;
	if (e->depth >= JSON_MAX_DEPTH)
		luaL_error(L, "json.encode: nesting too deep");
	luaL_checkstack(L, 8, "json.encode: nesting too deep");
	int kind = marker_of(e, idx);
	size_t count = 0, strings = 0, positive = 0;
	lua_Integer max = 0;
	int other_type = LUA_TNONE; /* a key neither string nor integer */
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		/* stack: ..., key */
		count++;
		if (lua_type(L, -1) == LUA_TSTRING) {
			strings++;
		} else if (lua_isinteger(L, -1)) {
			lua_Integer k = lua_tointeger(L, -1);
			if (k > 0) {
				positive++;
				if (k > max)
					max = k;
			}
		} else if (other_type == LUA_TNONE) {
			other_type = lua_type(L, -1);
		}
	}
	/* distinct positive integer keys, as many as the largest: 1..n */
	int sequence = positive == count && (size_t)max == count;
	if (kind == ARRAY) {
		if (!sequence && count > 0)
			encode_error(e, "cannot encode an array with keys other than 1..n");
		encode_array(e, idx, max);
	} else if (kind == OBJECT || strings == count) {
		if (strings != count)
			encode_error(e, "cannot encode an object with non-string keys");
		encode_object(e, idx, count);
	} else if (sequence) {
		encode_array(e, idx, max);
	} else if (strings > 0) {
		encode_error(e, "cannot encode a table with mixed keys");
	} else if (other_type == LUA_TNONE) {
		encode_error(e, "cannot encode a sparse array");
	} else {
		encode_error(e, lua_pushfstring(L, "cannot encode a table with %s keys",
		                                lua_typename(L, other_type)));
	}
}

static void encode_value(struct encoder *e, int idx)
{
	lua_State *L = e->out.L;
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx))
			out_add(&e->out, "true", 4);
		else
			out_add(&e->out, "false", 5);
		break;
	case LUA_TNUMBER:
		write_number(e, idx);
		break;
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		write_string(&e->out, s, len);
		break;
	}
	case LUA_TTABLE:
		encode_table(e, idx);
		break;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == JSON_NULL) {
			out_add(&e->out, "null", 4);
			break;
		}
		/* FALLTHROUGH */
	default:
		encode_error(e, lua_pushfstring(L, "cannot encode a %s value", luaL_typename(L, idx)));
	}
}

/* Pushes the JSON text of the value at idx; indent < 0: compact. */
static void encode_push(lua_State *L, int idx, int indent)
{
	idx = lua_absindex(L, idx);
	luaL_checkstack(L, 4, NULL);
	struct encoder e;
	e.indent = indent;
	e.depth = 0;
	push_marker(L, XCS_ARRAY_MT);
	e.array_mt = lua_gettop(L);
	push_marker(L, XCS_OBJECT_MT);
	e.object_mt = lua_gettop(L);
	out_init(L, &e.out, 256);
	encode_value(&e, idx);
	lua_pushlstring(L, e.out.p, e.out.n);
	/* stack: ..., array_mt, object_mt, bytes, text */
	lua_replace(L, e.array_mt);
	lua_settop(L, e.array_mt);
}

void json_encode_push(lua_State *L, int idx)
{
	encode_push(L, idx, -1);
}

/* ---- Decoding ---- */

enum lex_problem { LEX_OK, LEX_INVALID, LEX_DEEP, LEX_RANGE, LEX_NOMEM };

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The byte a one-letter escape (after '\\') stands for, or -1. */
static int unescape(unsigned char c)
{
	switch (c) {
	case '"': case '\\': case '/': return c;
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	default: return -1;
	}
}

/* Checks the string token starting at the '"' at s[*i]; advances *i past
 * it. Sets *has_nul if it holds \u0000. */
static enum lex_problem lex_string(const unsigned char *s, size_t len, size_t *i, int *has_nul)
{
	size_t p = *i + 1;
	for (;;) {
		if (p >= len) {
			*i = len;
			return LEX_INVALID;
		}
		if (s[p] == '"')
			break;
		if (s[p] < 0x20) {
			*i = p;
			return LEX_INVALID;
		}
		if (s[p] != '\\') {
			p++;
			continue;
		}
		if (p + 1 < len && unescape(s[p + 1]) >= 0) {
			p += 2;
			continue;
		}
		if (p + 1 >= len || s[p + 1] != 'u') {
			*i = p + 1;
			return LEX_INVALID;
		}
		for (size_t h = p + 2; h < p + 6; h++) {
			if (h >= len || !is_hex(s[h])) {
				*i = h;
				return LEX_INVALID;
			}
		}
		if (memcmp(s + p + 2, "0000", 4) == 0)
			*has_nul = 1;
		p += 6;
	}
	*i = p + 1;
	return LEX_OK;
}

/* Checks the number token at s[*i] against JSON's grammar; advances *i. */
static enum lex_problem lex_number(const unsigned char *s, size_t len, size_t *i)
{
	size_t p = *i;
	if (s[p] == '-')
		p++;
	if (p < len && s[p] == '0') {
		p++;
	} else if (p < len && is_digit(s[p])) {
		while (p < len && is_digit(s[p]))
			p++;
	} else {
		*i = p;
		return LEX_INVALID;
	}
	if (p < len && s[p] == '.') {
		p++;
		if (p >= len || !is_digit(s[p])) {
			*i = p;
			return LEX_INVALID;
		}
		while (p < len && is_digit(s[p]))
			p++;
	}
	if (p < len && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		if (p < len && (s[p] == '+' || s[p] == '-'))
			p++;
		if (p >= len || !is_digit(s[p])) {
			*i = p;
			return LEX_INVALID;
		}
		while (p < len && is_digit(s[p]))
			p++;
	}
	if (p < len && is_digit(s[p])) { /* "01" */
		*i = p;
		return LEX_INVALID;
	}
	/* Past the range of a double cJSON would store inf, which JSON cannot
	 * express; so would it for a token of any length. */
	size_t start = *i, n = p - start;
	*i = p;
	char small[64];
	char *num = n < sizeof small ? small : malloc(n + 1);
	if (!num)
		return LEX_NOMEM;
	char point = localeconv()->decimal_point[0];
	for (size_t k = 0; k < n; k++)
		num[k] = s[start + k] == '.' ? point : (char)s[start + k];
	num[n] = '\0';
	int inf = isinf(strtod(num, NULL));
	if (num != small)
		free(num);
	if (inf) {
		*i = start;
		return LEX_RANGE;
	}
	return LEX_OK;
}

/*
 * The lexical half of strict JSON, which cJSON does not check: JSON's four
 * whitespace bytes only, valid number, literal and string tokens, and the
 * nesting depth. The structure is left to cJSON. Returns LEX_OK, or the
 * first problem with *pos at its offset. Sets *has_nul if a string holds
 * \u0000.
 */
static enum lex_problem lex_check(const unsigned char *s, size_t len, size_t *pos, int *has_nul)
{
	static const char *const words[] = {"true", "false", "null"};
	size_t i = 0;
	int depth = 0;
	while (i < len) {
		enum lex_problem problem = LEX_OK;
		size_t at = i; /* where a problem is reported: the token's start */
		switch (s[i]) {
		case ' ': case '\t': case '\n': case '\r': case ',': case ':':
			i++;
			break;
		case '[': case '{':
			if (++depth > JSON_MAX_DEPTH)
				problem = LEX_DEEP;
			i++;
			break;
		case ']': case '}':
			depth--;
			i++;
			break;
		case '"':
			/* these two report the byte inside the token */
			problem = lex_string(s, len, &i, has_nul);
			at = i;
			break;
		case '-': case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
			problem = lex_number(s, len, &i);
			at = i;
			break;
		case 't': case 'f': case 'n': {
			const char *w = words[s[i] == 't' ? 0 : s[i] == 'f' ? 1 : 2];
			size_t wlen = strlen(w);
			if (len - i < wlen || memcmp(s + i, w, wlen) != 0)
				problem = LEX_INVALID;
			i += wlen;
			break;
		}
		default:
			problem = LEX_INVALID;
		}
		if (problem != LEX_OK) {
			*pos = at;
			return problem;
		}
	}
	return LEX_OK;
}

/* The parsed tree, owned by a userdata so that a memory error while
 * pushing Lua values cannot leak it. */
struct tree_box {
	cJSON *root;
};

static int tree_close(lua_State *L)
{
	struct tree_box *box = luaL_checkudata(L, 1, TREE_MT);
	cJSON_Delete(box->root);
	box->root = NULL;
	return 0;
}

struct pusher {
	lua_State *L;
	int array_mt, object_mt; /* stack indices of the marker metatables */
	/* When a string holds \u0000, cJSON's NUL-terminated copies are cut
	 * short: then every string is decoded again from the text, found by a
	 * cursor that moves in step with the tree (cJSON keeps members and
	 * elements in text order, and no other token contains a '"'). */
	int has_nul;
	const char *text;
	size_t len, cursor;
};

static unsigned hex4(const char *s)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)s[i];
		v = v << 4 | (is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Pushes the next string token of the text, which lex_check and cJSON
 * have both accepted (so its escapes and surrogate pairs are valid). */
static void push_string_from_text(struct pusher *p)
{
	const char *s = p->text;
	const char *quote = memchr(s + p->cursor, '"', p->len - p->cursor);
	size_t i = (size_t)(quote - s) + 1;
	luaL_Buffer b;
	luaL_buffinit(p->L, &b);
	while (s[i] != '"') {
		if (s[i] != '\\') {
			luaL_addchar(&b, s[i++]);
			continue;
		}
		if (s[i + 1] != 'u') {
			luaL_addchar(&b, (char)unescape((unsigned char)s[i + 1]));
			i += 2;
			continue;
		}
		unsigned long cp = hex4(s + i + 2);
		i += 6;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(s + i + 2) - 0xdc00);
			i += 6;
		}
		if (cp < 0x80) {
			luaL_addchar(&b, (char)cp);
		} else if (cp < 0x800) {
			luaL_addchar(&b, (char)(0xc0 | cp >> 6));
			luaL_addchar(&b, (char)(0x80 | (cp & 0x3f)));
		} else if (cp < 0x10000) {
			luaL_addchar(&b, (char)(0xe0 | cp >> 12));
			luaL_addchar(&b, (char)(0x80 | (cp >> 6 & 0x3f)));
			luaL_addchar(&b, (char)(0x80 | (cp & 0x3f)));
		} else {
			luaL_addchar(&b, (char)(0xf0 | cp >> 18));
			luaL_addchar(&b, (char)(0x80 | (cp >> 12 & 0x3f)));
			luaL_addchar(&b, (char)(0x80 | (cp >> 6 & 0x3f)));
			luaL_addchar(&b, (char)(0x80 | (cp & 0x3f)));
		}
	}
	p->cursor = i + 1;
	luaL_pushresult(&b);
}

static void push_string(struct pusher *p, const char *s)
{
	if (p->has_nul)
		push_string_from_text(p);
	else
		lua_pushstring(p->L, s);
}

/* Pushes item, and frees from the tree each member or element pushed: the
 * Lua values of a large LIST then take the place of its tree instead of
 * adding to it. The tree stays whole for tree_close if a push raises. */
static void push_item(struct pusher *p, cJSON *item, int depth)
{
	lua_State *L = p->L;
	luaL_checkstack(L, 4, "JSON nesting too deep");
	if (cJSON_IsString(item)) {
		push_string(p, item->valuestring);
	} else if (cJSON_IsNumber(item)) {
		double d = item->valuedouble;
		lua_Integer i;
		/* integral and exact in a double: an integer, as Go's int64 fields */
		if (fabs(d) < 0x1p53 && d == floor(d) && lua_numbertointeger(d, &i))
			lua_pushinteger(L, i);
		else
			lua_pushnumber(L, (lua_Number)d);
	} else if (cJSON_IsBool(item)) {
		lua_pushboolean(L, cJSON_IsTrue(item));
	} else if (cJSON_IsNull(item)) {
		lua_pushlightuserdata(L, JSON_NULL);
	} else {
		int is_array = cJSON_IsArray(item);
		int n = 0;
		if (depth >= JSON_MAX_DEPTH)
			luaL_error(L, "JSON nesting too deep");
		for (const cJSON *c = item->child; c && n < INT_MAX; c = c->next)
			n++;
		lua_createtable(L, is_array ? n : 0, is_array ? 0 : n);
		lua_pushvalue(L, is_array ? p->array_mt : p->object_mt);
		lua_setmetatable(L, -2);
		lua_Integer index = 1;
		for (cJSON *c; (c = item->child) != NULL;) {
			if (is_array) {
				push_item(p, c, depth + 1);
				lua_rawseti(L, -2, index++);
			} else {
				/* stack: ..., table, key, value */
				push_string(p, c->string);
				push_item(p, c, depth + 1);
				lua_rawset(L, -3);
			}
			item->child = c->next;
			c->next = NULL;
			cJSON_Delete(c);
		}
	}
}

static void describe_position(char *msg, size_t msgsz, const char *what,
                              const char *text, size_t pos)
{
	size_t line = 1, line_start = 0;
	for (size_t i = 0; i < pos; i++) {
		if (text[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	snprintf(msg, msgsz, "%s at line %zu, column %zu (byte %zu)", what, line,
	         pos - line_start + 1, pos);
}

int json_decode_push(lua_State *L, const char *text, size_t len, char *msg, size_t msgsz)
{
	luaL_checkstack(L, 6, NULL);
	size_t pos = len;
	int has_nul = 0;
	enum lex_problem problem = lex_check((const unsigned char *)text, len, &pos, &has_nul);

	struct tree_box *box = lua_newuserdatauv(L, sizeof *box, 0);
	box->root = NULL;
	if (luaL_newmetatable(L, TREE_MT)) {
		lua_pushcfunction(L, tree_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, tree_close);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	int base = lua_gettop(L);
	/* stack: ..., box */

	const char *end = NULL;
	box->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	size_t cjson_pos = len; /* where cJSON found a problem; len: none */
	if (!box->root) {
		cjson_pos = (size_t)(end - text);
	} else {
		/* trailing whitespace only */
		size_t i = (size_t)(end - text);
		while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
			i++;
		if (i < len)
			cjson_pos = i;
	}
	if (!box->root || cjson_pos < len || problem != LEX_OK) {
		/* each pass stops at its first problem: report the earlier one */
		const char *what = "invalid JSON";
		if (problem != LEX_OK && pos <= cjson_pos) {
			if (problem == LEX_DEEP)
				what = "JSON nesting too deep";
			else if (problem == LEX_RANGE)
				what = "JSON number out of range";
			else if (problem == LEX_NOMEM)
				what = "not enough memory to check a JSON number";
		} else {
			pos = cjson_pos;
		}
		describe_position(msg, msgsz, what, text, pos);
		cJSON_Delete(box->root);
		box->root = NULL;
		lua_settop(L, base - 1);
		return 0;
	}

	push_marker(L, XCS_ARRAY_MT);
	push_marker(L, XCS_OBJECT_MT);
	struct pusher p = {L, base + 1, base + 2, has_nul, text, len, 0};
	push_item(&p, box->root, 0);
	/* stack: ..., box, array_mt, object_mt, value */
	cJSON_Delete(box->root);
	box->root = NULL;
	lua_replace(L, base);
	lua_settop(L, base);
	return 1;
}

/* ---- Lua side ---- */

/* json.encode(value [, {indent = n}]) -> string */
static int jsonlib_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	int indent = -1;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 2)) {
			/* stack: value, opts, key, option */
			size_t klen = 0;
			const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
			if (!key || klen != 6 || memcmp(key, "indent", 6) != 0)
				return luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'",
				                                           luaL_tolstring(L, -2, NULL)));
			lua_Integer n = 0;
			if (!lua_isinteger(L, -1) || (n = lua_tointeger(L, -1)) < 0 || n > 8)
				return luaL_argerror(L, 2, "option 'indent' must be an integer from 0 to 8");
			indent = (int)n;
			lua_pop(L, 1);
		}
	}
	lua_settop(L, 1);
	encode_push(L, 1, indent);
	return 1;
}

/* json.decode(s) -> value | nil, message */
static int jsonlib_decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	char msg[160];
	if (json_decode_push(L, s, len, msg, sizeof msg))
		return 1;
	lua_pushnil(L);
	lua_pushstring(L, msg);
	return 2;
}

/* Sets the marker called name on the table at 1 (a new one if none). */
static int set_marker(lua_State *L, const char *name)
{
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	push_marker(L, name);
	if (lua_getmetatable(L, 1)) {
		/* stack: t, marker, current */
		if (!lua_rawequal(L, -1, -2))
			return luaL_argerror(L, 1, "table already has a metatable");
		lua_pop(L, 1);
	}
	lua_setmetatable(L, 1);
	return 1;
}

/* json.array([t]) -> t, marked to encode as a JSON array */
static int jsonlib_array(lua_State *L) { return set_marker(L, XCS_ARRAY_MT); }

/* json.object([t]) -> t, marked to encode as a JSON object */
static int jsonlib_object(lua_State *L) { return set_marker(L, XCS_OBJECT_MT); }

/* json.kind(v) -> "array" | "object" | nil */
static int jsonlib_kind(lua_State *L)
{
	luaL_checkany(L, 1);
	if (!lua_istable(L, 1) || !lua_getmetatable(L, 1)) {
		lua_pushnil(L);
		return 1;
	}
	push_marker(L, XCS_ARRAY_MT);
	push_marker(L, XCS_OBJECT_MT);
	/* stack: v, mt, array_mt, object_mt */
	if (lua_rawequal(L, 2, 3))
		lua_pushliteral(L, "array");
	else if (lua_rawequal(L, 2, 4))
		lua_pushliteral(L, "object");
	else
		lua_pushnil(L);
	return 1;
}

static const luaL_Reg json_funcs[] = {
    {"array", jsonlib_array},
    {"decode", jsonlib_decode},
    {"encode", jsonlib_encode},
    {"kind", jsonlib_kind},
    {"object", jsonlib_object},
    {NULL, NULL},
};

int luaopen_json(lua_State *L)
{
	luaL_newlib(L, json_funcs);
	lua_pushlightuserdata(L, JSON_NULL);
	lua_setfield(L, -2, "null");
	return 1;
}
