/*
 * yaml.c: the yaml module, over libyaml.
 *
 * yaml.decode builds Lua values straight from libyaml's parser events: the
 * first document only, plain scalars resolved with the YAML 1.2 core schema,
 * mappings and sequences marked with the json module's metatables and null
 * as json.null, so a kubeconfig read here is the value json would give.
 *
 * yaml.encode prints YAML the way `kubectl -o yaml` does. kubectl prints
 * with go-yaml v2 (through sigs.k8s.io/yaml), whose emitter is a port of
 * libyaml's: this file drives libyaml's emitter and adds go-yaml's own
 * choices (key order, which strings are quoted, how numbers look). Each of
 * them is asserted byte for byte against kubectl's output in test_yaml.lua
 * (quoting of "1:20", dates, "Off", folding at 80, go-yaml's key order):
 * the README promises yaml.encode prints as `kubectl -o yaml`, and setup.lua
 * --dry-run=client -o yaml is its user.
 */
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <yaml.h>

#include "xcsreg.h"

/* Deeper nesting is refused both ways (a cycle, when encoding). */
#define YAML_MAX_DEPTH 1000
/* Aliases expand to copies: past this many nodes a document is refused
 * rather than exhausting memory ("billion laughs"). */
#define YAML_MAX_NODES 1000000

#define TAG(name) "tag:yaml.org,2002:" name

#define PARSER_MT "xcsreg.yaml.Parser"
#define EMITTER_MT "xcsreg.yaml.Emitter"

/* ---- boxes: libyaml state owned by a userdata, so a raise cannot leak it ---- */

struct parser_box {
	yaml_parser_t parser;
	yaml_event_t event;   /* the current event */
	int parser_live, event_live;
};

struct emitter_box {
	yaml_emitter_t emitter;
	int emitter_live;
	char *out;            /* what the emitter wrote so far (malloc'd) */
	size_t len, cap;
};

static int parser_box_close(lua_State *L)
{
	struct parser_box *b = luaL_checkudata(L, 1, PARSER_MT);
	if (b->event_live) {
		yaml_event_delete(&b->event);
		b->event_live = 0;
	}
	if (b->parser_live) {
		yaml_parser_delete(&b->parser);
		b->parser_live = 0;
	}
	return 0;
}

static int emitter_box_close(lua_State *L)
{
	struct emitter_box *b = luaL_checkudata(L, 1, EMITTER_MT);
	if (b->emitter_live) {
		yaml_emitter_delete(&b->emitter);
		b->emitter_live = 0;
	}
	free(b->out);
	b->out = NULL;
	b->len = b->cap = 0;
	return 0;
}

/* Pushes a zeroed box as a to-be-closed value; close serves __gc and __close. */
static void *push_box(lua_State *L, size_t size, const char *mt, lua_CFunction close)
{
	void *box = lua_newuserdatauv(L, size, 0);
	memset(box, 0, size);
	if (luaL_newmetatable(L, mt)) {
		lua_pushcfunction(L, close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, close);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	return box;
}

/* ---- scalars ---- */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The value of a digit in bases up to 16; 16 for anything else. */
static int digit_value(char c)
{
	if (is_digit(c))
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : 16;
}

static int equals(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(s, word, n) == 0;
}

/* The core schema spells its special values three ways. */
static int spelled(const char *s, size_t n, const char *lower, const char *title,
                   const char *upper)
{
	return equals(s, n, lower) || equals(s, n, title) || equals(s, n, upper);
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?: the core schema's
 * floats, and go-yaml's too (its yamlStyleFloat). */
static int is_float_syntax(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	size_t start = i;
	while (i < n && is_digit(s[i]))
		i++;
	size_t int_digits = i - start, frac_digits = 0;
	if (i < n && s[i] == '.') {
		start = ++i;
		while (i < n && is_digit(s[i]))
			i++;
		frac_digits = i - start;
	}
	if (int_digits == 0 && frac_digits == 0)
		return 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		start = i;
		while (i < n && is_digit(s[i]))
			i++;
		if (i == start)
			return 0;
	}
	return i == n;
}

/*
 * Writes x as Go's strconv.FormatFloat(x, 'g', -1, 64) does, with YAML's
 * names for infinities and NaN: what go-yaml prints for a float64. The
 * shortest digits that read back as x; exponent form below 1e-4 and from 1e6.
 */
static void format_go_float(double x, char *buf, size_t size)
{
	if (isnan(x)) {
		snprintf(buf, size, ".nan");
		return;
	}
	if (isinf(x)) {
		snprintf(buf, size, x > 0 ? ".inf" : "-.inf");
		return;
	}
	char e[40];
	int digits = 0; /* after the first */
	for (; digits < 17; digits++) {
		snprintf(e, sizeof e, "%.*e", digits, x);
		if (strtod(e, NULL) == x)
			break;
	}
	int exp = atoi(strchr(e, 'e') + 1);
	if (exp < -4 || exp >= 6)
		snprintf(buf, size, "%s", e);
	else
		snprintf(buf, size, "%.*f", digits > exp ? digits - exp : 0, x);
	/* os.setlocale may have changed the decimal point; YAML's is '.' */
	char *point = strchr(buf, localeconv()->decimal_point[0]);
	if (point)
		*point = '.';
}

/* The value of a numeral whose syntax is checked, read as Lua reads it
 * (whatever the locale's decimal point); NaN if Lua cannot. */
static double numeral_value(lua_State *L, const char *s)
{
	if (lua_stringtonumber(L, s) == 0)
		return NAN;
	double x = (double)lua_tonumber(L, -1);
	lua_pop(L, 1);
	return x;
}

/* ---- decoding ---- */

struct decoder {
	lua_State *L;
	struct parser_box *box;
	const char *text;          /* the input, to place reader errors */
	size_t len;
	int array_mt, object_mt;   /* stack indices of the marker metatables */
	int anchors;               /* stack index: anchor name -> value */
	int anchor_sizes;          /* stack index: name -> nodes in it, 0 while it is built */
	lua_Integer nodes;         /* nodes produced so far, alias copies included */
	char *msg;
	size_t msgsz;
};

/* Fills the message ("line L, column C: ...", 1-based) and returns 0. */
static int __attribute__((format(printf, 3, 4)))
fail_at(struct decoder *d, yaml_mark_t mark, const char *fmt, ...)
{
	int k = snprintf(d->msg, d->msgsz, "line %zu, column %zu: ", mark.line + 1,
	                 mark.column + 1);
	if (k < 0 || (size_t)k >= d->msgsz)
		return 0;
	va_list ap;
	va_start(ap, fmt);
	/* clang-tidy 14 flags any vsnprintf after va_start in all but the
	 * first file of a run (its va_list checker keeps state across files) */
	vsnprintf(d->msg + k, d->msgsz - (size_t)k, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
	return 0;
}

/* libyaml places reader errors (bad UTF-8, control characters) by byte
 * offset only; count the lines and characters before it. */
static yaml_mark_t mark_at_offset(const char *text, size_t len, size_t offset)
{
	yaml_mark_t mark = {offset, 0, 0};
	for (size_t i = 0; i < offset && i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\n' || (c == '\r' && (i + 1 == len || text[i + 1] != '\n'))) {
			mark.line++;
			mark.column = 0;
		} else if ((c & 0xC0) != 0x80) {
			mark.column++;
		}
	}
	return mark;
}

/* Replaces the current event by the next one. */
static int next_event(struct decoder *d)
{
	struct parser_box *b = d->box;
	if (b->event_live) {
		yaml_event_delete(&b->event);
		b->event_live = 0;
	}
	if (yaml_parser_parse(&b->parser, &b->event)) {
		b->event_live = 1;
		return 1;
	}
	yaml_parser_t *p = &b->parser;
	if (p->error == YAML_MEMORY_ERROR)
		return luaL_error(d->L, "not enough memory");
	yaml_mark_t mark = p->problem_mark;
	if (p->error == YAML_READER_ERROR)
		mark = mark_at_offset(d->text, d->len, p->problem_offset);
	return fail_at(d, mark, "%s", p->problem ? p->problem : "invalid YAML");
}

/* The pushers below take a scalar's text and push its value, or return 0
 * when the text is not of their kind. s is NUL-terminated (libyaml ends
 * every scalar with one), which strtod and lua_stringtonumber need. */

static int push_string(lua_State *L, const char *s, size_t n)
{
	lua_pushlstring(L, s, n);
	return 1;
}

static int push_null(lua_State *L, const char *s, size_t n)
{
	if (n != 0 && !equals(s, n, "~") && !spelled(s, n, "null", "Null", "NULL"))
		return 0;
	lua_pushlightuserdata(L, JSON_NULL);
	return 1;
}

static int push_bool(lua_State *L, const char *s, size_t n)
{
	if (spelled(s, n, "true", "True", "TRUE"))
		lua_pushboolean(L, 1);
	else if (spelled(s, n, "false", "False", "FALSE"))
		lua_pushboolean(L, 0);
	else
		return 0;
	return 1;
}

/*
 * [-+]?[0-9]+, 0o[0-7]+ or 0x[0-9a-fA-F]+; a float when it does not fit in
 * an integer. A hex or octal one past 64 bits is no number but a string, as
 * go-yaml reads it (and yaml.encode writes it plain).
 */
static int push_int(lua_State *L, const char *s, size_t n)
{
	int base = 10, neg = 0;
	size_t i = 0;
	if (n > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
		base = s[1] == 'o' ? 8 : 16;
		i = 2;
	} else if (n > 1 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return 0;
	uint64_t mag = 0;
	double approx = 0;
	int overflow = 0;
	for (; i < n; i++) {
		int digit = digit_value(s[i]);
		if (digit >= base)
			return 0;
		if (mag > (UINT64_MAX - (uint64_t)digit) / (uint64_t)base)
			overflow = 1;
		else
			mag = mag * (uint64_t)base + (uint64_t)digit;
		approx = approx * base + digit;
	}
	if (overflow && base != 10)
		return 0;
	if (overflow || mag > (uint64_t)LUA_MAXINTEGER + (uint64_t)neg)
		/* strtod reads decimal and hex integers exactly (no decimal
		 * point: any locale), but no octal */
		lua_pushnumber(L, base == 8 ? approx : strtod(s, NULL));
	else if (neg)
		lua_pushinteger(L, mag > (uint64_t)LUA_MAXINTEGER ? LUA_MININTEGER
		                                                   : -(lua_Integer)mag);
	else
		lua_pushinteger(L, (lua_Integer)mag);
	return 1;
}

static int push_float(lua_State *L, const char *s, size_t n)
{
	double x;
	size_t sign = n > 0 && (s[0] == '-' || s[0] == '+');
	if (spelled(s + sign, n - sign, ".inf", ".Inf", ".INF"))
		lua_pushnumber(L, s[0] == '-' ? -HUGE_VAL : HUGE_VAL);
	else if (spelled(s, n, ".nan", ".NaN", ".NAN"))
		lua_pushnumber(L, NAN);
	else if (is_float_syntax(s, n) && isfinite(x = numeral_value(L, s)))
		lua_pushnumber(L, x); /* past a double's range it stays a string, as in go-yaml */
	else
		return 0;
	return 1;
}

/* Base64 as YAML writes it: line breaks and spaces are not part of it. */
static int push_binary(lua_State *L, const char *s, size_t n)
{
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, n);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			p[m++] = s[i];
	luaL_pushresultsize(&b, m);                   /* base64 */
	const char *b64 = lua_tostring(L, -1);
	char *out = luaL_buffinitsize(L, &b, b64_decoded_maxlen(m));
	size_t errpos;
	size_t k = b64_decode(b64, m, (unsigned char *)out, 0, &errpos);
	luaL_pushresultsize(&b, k == (size_t)-1 ? 0 : k); /* base64 bytes */
	lua_remove(L, -2);                            /* bytes */
	if (k != (size_t)-1)
		return 1;
	lua_pop(L, 1);
	return 0;
}

/* A plain scalar without a tag: the core schema, else a string. */
static void push_plain(lua_State *L, const char *s, size_t n)
{
	if (!push_null(L, s, n) && !push_bool(L, s, n) && !push_int(L, s, n)
	    && !push_float(L, s, n))
		lua_pushlstring(L, s, n);
}

static const struct {
	const char *tag;
	int (*push)(lua_State *L, const char *s, size_t n);
} scalar_tags[] = {
	{TAG("binary"), push_binary},
	{TAG("bool"), push_bool},
	{TAG("float"), push_float},
	{TAG("int"), push_int},
	{TAG("null"), push_null},
	{TAG("str"), push_string},
	{"!", push_string}, /* "! 12": the non-specific tag, a string */
};

static int push_scalar(struct decoder *d, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	for (size_t i = 0; tag && i < sizeof scalar_tags / sizeof *scalar_tags; i++) {
		if (strcmp(tag, scalar_tags[i].tag) != 0)
			continue;
		if (scalar_tags[i].push(d->L, s, n))
			return 1;
		return fail_at(d, ev->start_mark, "invalid !!%s value", tag + strlen(TAG("")));
	}
	/* No tag, or one this module does not know: the value as written. */
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		push_plain(d->L, s, n);
	else
		lua_pushlstring(d->L, s, n);
	return 1;
}

/* Records the value on top of the stack as the anchor's. */
static void set_anchor(struct decoder *d, const char *name, lua_Integer size)
{
	lua_State *L = d->L;
	lua_pushvalue(L, -1);
	lua_setfield(L, d->anchors, name);
	lua_pushinteger(L, size);
	lua_setfield(L, d->anchor_sizes, name);
}

/* A collection's anchor is named at its start but has a value only at its
 * end: the name waits on the stack (nil when there is none), and an alias
 * to it in between is refused. */
static void begin_anchor(struct decoder *d, const yaml_char_t *name)
{
	lua_State *L = d->L;
	if (!name) {
		lua_pushnil(L);
		return;
	}
	lua_pushstring(L, (const char *)name);
	lua_pushinteger(L, 0);
	lua_setfield(L, d->anchor_sizes, (const char *)name);
}

/* Stack: name value -> value. */
static void end_anchor(struct decoder *d, lua_Integer first_node)
{
	lua_State *L = d->L;
	if (!lua_isnil(L, -2))
		set_anchor(d, lua_tostring(L, -2), d->nodes - first_node);
	lua_remove(L, -2);
}

static void push_marked_table(lua_State *L, int mt)
{
	lua_newtable(L);
	lua_pushvalue(L, mt);
	lua_setmetatable(L, -2);
}

static int is_marked(lua_State *L, int idx, int mt)
{
	if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
		return 0;
	int same = lua_rawequal(L, -1, mt);
	lua_pop(L, 1);
	return same;
}

static int too_deep(struct decoder *d, yaml_mark_t mark)
{
	return fail_at(d, mark, "nesting deeper than %d levels", YAML_MAX_DEPTH);
}

/* Replaces the value on top of the stack (at depth) by a deep copy. */
static int copy_value(struct decoder *d, int depth, yaml_mark_t mark)
{
	lua_State *L = d->L;
	if (!lua_istable(L, -1))
		return 1; /* the other values cannot change */
	if (depth >= YAML_MAX_DEPTH)
		return too_deep(d, mark);
	luaL_checkstack(L, 6, "YAML nested too deep");
	int src = lua_gettop(L);
	lua_newtable(L);                      /* src copy */
	if (lua_getmetatable(L, src))
		lua_setmetatable(L, src + 1);
	lua_pushnil(L);
	while (lua_next(L, src)) {            /* src copy key value */
		if (!copy_value(d, depth + 1, mark))
			return 0;
		lua_pushvalue(L, -2);
		lua_insert(L, -2);                /* src copy key key value */
		lua_rawset(L, src + 1);           /* src copy key */
	}
	lua_replace(L, src);                  /* copy */
	return 1;
}

static int parse_node(struct decoder *d, int depth);

static int parse_alias(struct decoder *d, int depth)
{
	lua_State *L = d->L;
	const yaml_event_t *ev = &d->box->event;
	const char *name = (const char *)ev->data.alias.anchor;
	int known;
	lua_getfield(L, d->anchor_sizes, name);
	lua_Integer size = lua_tointegerx(L, -1, &known);
	lua_pop(L, 1);
	if (!known)
		return fail_at(d, ev->start_mark, "undefined alias \"%s\"", name);
	if (size == 0)
		return fail_at(d, ev->start_mark, "alias \"%s\" is inside its own anchor", name);
	if (size > YAML_MAX_NODES - d->nodes)
		return fail_at(d, ev->start_mark,
		               "document too large (aliases expand to more than %d nodes)",
		               YAML_MAX_NODES);
	d->nodes += size;
	lua_getfield(L, d->anchors, name);
	return copy_value(d, depth, ev->start_mark);
}

static int parse_sequence(struct decoder *d, int depth)
{
	lua_State *L = d->L;
	const yaml_event_t *ev = &d->box->event;
	if (depth >= YAML_MAX_DEPTH)
		return too_deep(d, ev->start_mark);
	luaL_checkstack(L, 8, "YAML nested too deep");
	lua_Integer first_node = d->nodes++;
	begin_anchor(d, ev->data.sequence_start.anchor); /* anchor */
	push_marked_table(L, d->array_mt);              /* anchor seq */
	lua_Integer n = 0;
	for (;;) {
		if (!next_event(d))
			return 0;
		if (ev->type == YAML_SEQUENCE_END_EVENT)
			break;
		if (!parse_node(d, depth + 1))
			return 0;
		lua_rawseti(L, -2, ++n);
	}
	end_anchor(d, first_node);                      /* seq */
	return 1;
}

/* sigs.k8s.io/yaml makes every mapping key a string: `1: a` has key "1".
 * Replaces the key on top of the stack by its string. */
static int key_to_string(struct decoder *d, yaml_mark_t mark)
{
	lua_State *L = d->L;
	char buf[40];
	switch (lua_type(L, -1)) {
	case LUA_TSTRING:
		return 1;
	case LUA_TBOOLEAN:
		lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, -1))
			snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -1));
		else
			format_go_float(lua_tonumber(L, -1), buf, sizeof buf);
		lua_pushstring(L, buf);
		break;
	case LUA_TLIGHTUSERDATA:
		return fail_at(d, mark, "mapping key is null");
	default:
		return fail_at(d, mark, "mapping key is not a scalar");
	}
	lua_replace(L, -2);
	return 1;
}

/* `<<: *base` (not quoted, not tagged) merges mappings into this one. */
static int is_merge_key(const yaml_event_t *ev)
{
	return ev->type == YAML_SCALAR_EVENT && !ev->data.scalar.tag
	       && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
	       && equals((const char *)ev->data.scalar.value, ev->data.scalar.length, "<<");
}

/* A merge's value: a mapping, or a sequence of mappings. */
static int is_merge_source(struct decoder *d, int idx)
{
	lua_State *L = d->L;
	idx = lua_absindex(L, idx);
	if (is_marked(L, idx, d->object_mt))
		return 1;
	if (!is_marked(L, idx, d->array_mt))
		return 0;
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, i);
		int ok = is_marked(L, -1, d->object_mt);
		lua_pop(L, 1);
		if (!ok)
			return 0;
	}
	return 1;
}

/* Copies into map the entries of src whose keys it does not have yet. */
static void merge_into(lua_State *L, int map, int src)
{
	lua_pushnil(L);
	while (lua_next(L, src)) {                /* key value */
		lua_pushvalue(L, -2);
		if (lua_rawget(L, map) == LUA_TNIL) { /* key value nil */
			lua_pop(L, 1);
			lua_pushvalue(L, -2);
			lua_pushvalue(L, -2);             /* key value key value */
			lua_rawset(L, map);
			lua_pop(L, 1);                    /* key */
		} else {
			lua_pop(L, 2);                    /* key */
		}
	}
}

/* The mapping's own keys win over merged ones, earlier merged mappings
 * over later ones. */
static void apply_merge(struct decoder *d, int map, int merge)
{
	lua_State *L = d->L;
	if (is_marked(L, merge, d->object_mt)) {
		merge_into(L, map, merge);
		return;
	}
	lua_Integer n = (lua_Integer)lua_rawlen(L, merge);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, merge, i);
		merge_into(L, map, lua_gettop(L));
		lua_pop(L, 1);
	}
}

static int parse_mapping(struct decoder *d, int depth)
{
	lua_State *L = d->L;
	const yaml_event_t *ev = &d->box->event;
	if (depth >= YAML_MAX_DEPTH)
		return too_deep(d, ev->start_mark);
	luaL_checkstack(L, 8, "YAML nested too deep");
	lua_Integer first_node = d->nodes++;
	begin_anchor(d, ev->data.mapping_start.anchor); /* anchor */
	push_marked_table(L, d->object_mt);             /* anchor map */
	int map = lua_gettop(L);
	lua_pushnil(L);                                 /* anchor map merge */
	int merge = map + 1;
	for (;;) {
		if (!next_event(d))
			return 0;
		if (ev->type == YAML_MAPPING_END_EVENT)
			break;
		yaml_mark_t key_mark = ev->start_mark;
		if (is_merge_key(ev)) {
			d->nodes++;
			if (!lua_isnil(L, merge))
				return fail_at(d, key_mark, "duplicate key \"<<\"");
			if (!next_event(d))
				return 0;
			yaml_mark_t value_mark = ev->start_mark;
			if (!parse_node(d, depth + 1))  /* anchor map merge value */
				return 0;
			if (!is_merge_source(d, -1))
				return fail_at(d, value_mark,
				               "merge key value is not a mapping or a list of mappings");
			lua_replace(L, merge);          /* anchor map merge */
			continue;
		}
		if (!parse_node(d, depth + 1) || !key_to_string(d, key_mark))
			return 0;                       /* anchor map merge key */
		lua_pushvalue(L, -1);
		if (lua_rawget(L, map) != LUA_TNIL)
			return fail_at(d, key_mark, "duplicate key \"%s\"", lua_tostring(L, -2));
		lua_pop(L, 1);
		if (!next_event(d) || !parse_node(d, depth + 1))
			return 0;                       /* anchor map merge key value */
		lua_rawset(L, map);                 /* anchor map merge */
	}
	if (!lua_isnil(L, merge))
		apply_merge(d, map, merge);
	lua_pop(L, 1);                          /* anchor map */
	end_anchor(d, first_node);              /* map */
	return 1;
}

/* Pushes the value of the node the current event starts, reading up to
 * its last event; or returns 0 with the message filled. */
static int parse_node(struct decoder *d, int depth)
{
	const yaml_event_t *ev = &d->box->event;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (!push_scalar(d, ev))
			return 0;
		d->nodes++;
		if (ev->data.scalar.anchor)
			set_anchor(d, (const char *)ev->data.scalar.anchor, 1);
		return 1;
	case YAML_ALIAS_EVENT:
		return parse_alias(d, depth);
	case YAML_SEQUENCE_START_EVENT:
		return parse_sequence(d, depth);
	default: /* libyaml starts a node with one of these four events */
		return parse_mapping(d, depth);
	}
}

/* Pushes the first document's value (null for an empty stream). */
static int parse_document(struct decoder *d)
{
	if (!next_event(d))     /* stream start */
		return 0;
	if (!next_event(d))     /* document start, or stream end */
		return 0;
	if (d->box->event.type == YAML_STREAM_END_EVENT) {
		lua_pushlightuserdata(d->L, JSON_NULL);
		return 1;
	}
	/* The document's end is read too: the rest of it must be well-formed. */
	return next_event(d) && parse_node(d, 0) && next_event(d);
}

int yaml_decode_push(lua_State *L, const char *text, size_t len, char *msg,
                     size_t msgsz)
{
	luaL_checkstack(L, 8, "YAML");
	int base = lua_gettop(L);
	struct parser_box *box = push_box(L, sizeof *box, PARSER_MT, parser_box_close);
	if (!yaml_parser_initialize(&box->parser))
		return luaL_error(L, "not enough memory");
	box->parser_live = 1;
	yaml_parser_set_input_string(&box->parser, (const unsigned char *)text, len);
	luaL_newmetatable(L, XCS_ARRAY_MT);
	luaL_newmetatable(L, XCS_OBJECT_MT);
	lua_newtable(L);
	lua_newtable(L);               /* box array_mt object_mt anchors sizes */
	struct decoder d = {
		.L = L, .box = box, .text = text, .len = len,
		.array_mt = base + 2, .object_mt = base + 3, .anchors = base + 4, .anchor_sizes = base + 5,
		.msg = msg, .msgsz = msgsz,
	};
	int ok = parse_document(&d);   /* box array_mt object_mt anchors sizes [value ...] */
	lua_closeslot(L, base + 1);
	if (ok)
		lua_replace(L, base + 1);  /* value ... */
	lua_settop(L, base + ok);
	return ok;
}

static int yaml_decode(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	char msg[512];
	if (yaml_decode_push(L, text, len, msg, sizeof msg))
		return 1;
	luaL_pushfail(L);
	lua_pushstring(L, msg);
	return 2;
}

/* ---- what go-yaml v2 does that libyaml's emitter does not ---- */

/* The code point at s[*i], advancing past it; -1 (advancing one byte) for
 * bytes that are not UTF-8, as Go reads them. */
static long decode_rune(const char *str, size_t n, size_t *i)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[*i];
	int len;
	long r, min;
	if (c < 0x80) {
		(*i)++;
		return c;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2, r = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3, r = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, r = c & 0x07, min = 0x10000;
	} else {
		(*i)++;
		return -1;
	}
	if (n - *i < (size_t)len) {
		(*i)++;
		return -1;
	}
	for (int k = 1; k < len; k++) {
		if ((s[*i + k] & 0xC0) != 0x80) {
			(*i)++;
			return -1;
		}
		r = (r << 6) | (s[*i + k] & 0x3F);
	}
	if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) {
		(*i)++;
		return -1;
	}
	*i += (size_t)len;
	return r;
}

static int is_utf8(const char *s, size_t n)
{
	for (size_t i = 0; i < n;)
		if (decode_rune(s, n, &i) < 0)
			return 0;
	return 1;
}

/* Go's unicode.IsLetter: exact for ASCII and Latin-1; above, the common
 * blocks of marks, punctuation, symbols and emoji are not letters and the
 * rest are. Kubernetes keys are ASCII: this only orders odd keys. */
static int go_is_letter(long r)
{
	static const long non_letters[][2] = {
		{0x80, 0xA9}, {0xAB, 0xB4}, {0xB6, 0xB9}, {0xBB, 0xBF}, {0xD7, 0xD7},
		{0xF7, 0xF7}, {0x300, 0x36F}, {0x2000, 0x2BFF}, {0x3000, 0x3004},
		{0x3007, 0x3030}, {0x3036, 0x303A}, {0x303D, 0x303F}, {0xD800, 0xF8FF},
		{0xFE00, 0xFE6F}, {0xFEFF, 0xFEFF}, {0xFF00, 0xFF20}, {0xFF3B, 0xFF40},
		{0xFF5B, 0xFF65}, {0xFFF0, 0xFFFF}, {0x1F000, 0x1FAFF}, {0xE0000, 0x10FFFF},
	};
	if (r < 0x80)
		return (r | 0x20) >= 'a' && (r | 0x20) <= 'z';
	for (size_t i = 0; i < sizeof non_letters / sizeof *non_letters; i++)
		if (r >= non_letters[i][0] && r <= non_letters[i][1])
			return 0;
	return 1;
}

/*
 * go-yaml's key order (keyList.Less in sorter.go), which kubectl's output
 * follows: rune by rune, letters after other characters, and runs of digits
 * compared by their value ("a9" before "a10").
 */
static int go_key_less(const char *a, size_t an, const char *b, size_t bn)
{
	size_t ai = 0, bi = 0;
	while (ai < an && bi < bn) {
		size_t at = ai, bt = bi;
		long ra = decode_rune(a, an, &ai), rb = decode_rune(b, bn, &bi);
		if (ra < 0)
			ra = 0xFFFD;
		if (rb < 0)
			rb = 0xFFFD;
		if (ra == rb)
			continue;
		int al = go_is_letter(ra), bl = go_is_letter(rb);
		if (al && bl)
			return ra < rb;
		if (al || bl)
			return bl;
		/* Values of the digit runs starting here, as Go's int64s (which
		 * wrap); 1 to begin with when the shared digits just before hold a
		 * non-zero (Go's own rule). */
		uint64_t av = 0, bv = 0;
		if (ra == '0' || rb == '0')
			for (size_t j = at; j > 0 && is_digit(a[j - 1]); j--)
				if (a[j - 1] != '0') {
					av = bv = 1;
					break;
				}
		size_t ae = at, be = bt;
		for (; ae < an && is_digit(a[ae]); ae++)
			av = av * 10 + (uint64_t)(a[ae] - '0');
		for (; be < bn && is_digit(b[be]); be++)
			bv = bv * 10 + (uint64_t)(b[be] - '0');
		if (av != bv)
			return (int64_t)av < (int64_t)bv;
		if (ae - at != be - bt)
			return ae - at < be - bt;
		return ra < rb;
	}
	return ai == an && bi < bn;
}

struct map_key {
	const char *s;
	size_t len;
	lua_Integer slot; /* where the key string is kept alive */
};

/*
 * Merge sort (tmp holds n keys). go-yaml's order is not transitive: "6-1"
 * < "21c7" < "2a29" < "6-1", and kubectl's output for such keys varies
 * from run to run with Go's map order. qsort needs a true order; this
 * sort takes any comparison and agrees with Go's whenever Go's is one.
 */
static void sort_keys(struct map_key *keys, struct map_key *tmp, size_t n)
{
	if (n < 2)
		return;
	size_t half = n / 2, i = 0, j = half, k = 0;
	sort_keys(keys, tmp, half);
	sort_keys(keys + half, tmp, n - half);
	while (i < half && j < n) {
		if (go_key_less(keys[j].s, keys[j].len, keys[i].s, keys[i].len))
			tmp[k++] = keys[j++];
		else
			tmp[k++] = keys[i++];
	}
	while (i < half)
		tmp[k++] = keys[i++];
	memcpy(keys, tmp, k * sizeof *keys); /* keys[j..n) are in place */
}

/* Go's getnum(s, false): one or two digits. */
static int go_getnum(const char *s, size_t n, size_t *i, int *v)
{
	if (*i >= n || !is_digit(s[*i]))
		return 0;
	*v = s[(*i)++] - '0';
	if (*i < n && is_digit(s[*i]))
		*v = *v * 10 + s[(*i)++] - '0';
	return 1;
}

/* Go's "Z07:00": Z, or a sign, hours, a colon and minutes. */
static int go_zone(const char *s, size_t n, size_t *i)
{
	const char *z = s + *i;
	if (*i < n && z[0] == 'Z') {
		(*i)++;
		return 1;
	}
	if (n - *i < 6 || (z[0] != '+' && z[0] != '-') || z[3] != ':' || !is_digit(z[1])
	    || !is_digit(z[2]) || !is_digit(z[4]) || !is_digit(z[5]))
		return 0;
	if ((z[1] - '0') * 10 + z[2] - '0' > 24 || (z[4] - '0') * 10 + z[5] - '0' > 60)
		return 0;
	*i += 6;
	return 1;
}

static int days_in(int month, int year)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
	return days[month - 1] + (month == 2 && leap);
}

/* Whether Go's time.Parse takes s in one of go-yaml's timestamp layouts:
 * "2006-1-2T15:4:5.999999999Z07:00" (or with 't'), "2006-1-2 15:4:5.999999999",
 * "2006-1-2". */
static int go_timestamp(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_digit(s[i]))
		i++;
	if (i != 4 || i == n || s[i] != '-')
		return 0;
	int year = atoi(s), month, day, hour, minute, second;
	i++;
	if (!go_getnum(s, n, &i, &month) || month < 1 || month > 12 || i == n || s[i++] != '-'
	    || !go_getnum(s, n, &i, &day))
		return 0;
	if (i < n) {
		char sep = s[i++];
		if (sep != 'T' && sep != 't' && sep != ' ')
			return 0;
		if (!go_getnum(s, n, &i, &hour) || hour > 23 || i == n || s[i++] != ':'
		    || !go_getnum(s, n, &i, &minute) || minute > 59 || i == n || s[i++] != ':'
		    || !go_getnum(s, n, &i, &second) || second > 59)
			return 0;
		if (i + 1 < n && (s[i] == '.' || s[i] == ',') && is_digit(s[i + 1]))
			for (i++; i < n && is_digit(s[i]); i++) {
			}
		if ((sep != ' ' && !go_zone(s, n, &i)) || i != n)
			return 0;
	}
	return day >= 1 && day <= days_in(month, year);
}

/* go-yaml's base60float: ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$ */
static int go_base60_float(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i == n || !is_digit(s[i]))
		return 0;
	while (i < n && (is_digit(s[i]) || s[i] == '_'))
		i++;
	int groups = 0;
	for (; i < n && s[i] == ':'; groups++) {
		i++;
		if (i + 1 < n && s[i] >= '0' && s[i] <= '5' && is_digit(s[i + 1]))
			i += 2;
		else if (i < n && is_digit(s[i]))
			i++;
		else
			return 0;
	}
	if (groups > 0 && i < n && s[i] == '.')
		for (i++; i < n && (is_digit(s[i]) || s[i] == '_'); i++) {
		}
	return groups > 0 && i == n;
}

/* strconv.ParseUint(s, base, 64); base 0 reads Go's prefixes. */
static int go_parse_uint(const char *s, size_t n, int base, uint64_t *v)
{
	if (n == 0)
		return 0;
	if (base == 0) {
		base = 10;
		if (s[0] == '0') {
			char prefix = n >= 3 ? (char)(s[1] | 0x20) : 0;
			size_t skip = prefix == 'b' || prefix == 'o' || prefix == 'x' ? 2 : 1;
			base = prefix == 'b' ? 2 : prefix == 'x' ? 16 : 8;
			s += skip;
			n -= skip;
		}
	}
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		int digit = digit_value(s[i]);
		if (digit >= base || *v > (UINT64_MAX - (uint64_t)digit) / (uint64_t)base)
			return 0;
		*v = *v * (uint64_t)base + (uint64_t)digit;
	}
	return 1;
}

/* strconv.ParseInt(s, base, 64) succeeds, or ParseUint does. */
static int go_parse_int(const char *s, size_t n, int base)
{
	uint64_t v;
	if (n > 0 && (s[0] == '+' || s[0] == '-')) /* only ParseInt takes a sign */
		return go_parse_uint(s + 1, n - 1, base, &v)
		       && v <= (uint64_t)INT64_MAX + (s[0] == '-');
	return go_parse_uint(s, n, base, &v);
}

/* One or more digits with single underscores between them (Go's syntax). */
static int go_digits(const char *s, size_t n, size_t *i)
{
	size_t j = *i;
	if (j == n || !is_digit(s[j]))
		return 0;
	while (j < n && (is_digit(s[j]) || (s[j] == '_' && j + 1 < n && is_digit(s[j + 1]))))
		j++;
	*i = j;
	return 1;
}

/* strconv.ParseFloat's syntax for a number starting with '.'. */
static int go_dot_float_syntax(const char *s, size_t n)
{
	size_t i = 1;
	if (!go_digits(s, n, &i))
		return 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!go_digits(s, n, &i))
			return 0;
	}
	return i == n;
}

/*
 * Whether go-yaml v2 would read s, written plain, as something other than a
 * string: its resolve() (the YAML 1.1 booleans y/n/yes/no/on/off too, Go's
 * integers, floats, timestamps) or its base-60 float check. kubectl
 * double-quotes such strings, and so does yaml.encode. s is NUL-terminated.
 */
static int go_reads_as_non_string(lua_State *L, const char *s, size_t n)
{
	static const char *const special[] = {
		"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"true", "True", "TRUE", "false", "False", "FALSE",
		"on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
		".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
		"+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
	};
	if (n == 0)
		return 1;
	for (size_t i = 0; i < sizeof special / sizeof *special; i++)
		if (equals(s, n, special[i]))
			return 1;
	if (s[0] != '.' && s[0] != '+' && s[0] != '-' && !is_digit(s[0]))
		return 0;
	if (go_timestamp(s, n) || go_base60_float(s, n))
		return 1;
	/* go-yaml drops every '_' before reading a number. */
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			luaL_addchar(&b, s[i]);
	luaL_pushresult(&b);                  /* plain */
	size_t m;
	const char *plain = lua_tolstring(L, -1, &m);
	int number;
	if (s[0] == '.')
		number = go_dot_float_syntax(s, n) && isfinite(numeral_value(L, plain));
	else
		number = go_parse_int(plain, m, 0)
		         || (is_float_syntax(plain, m) && isfinite(numeral_value(L, plain)))
		         || (m > 2 && memcmp(plain, "0b", 2) == 0 && go_parse_int(plain + 2, m - 2, 2));
	lua_pop(L, 1);
	return number;
}

/* ---- encoding ---- */

struct encoder {
	lua_State *L;
	struct emitter_box *box;
	int array_mt, object_mt; /* stack indices of the marker metatables */
};

/* libyaml's output handler: appends to the box's buffer (no Lua here). */
static int write_output(void *data, unsigned char *buffer, size_t size)
{
	struct emitter_box *b = data;
	if (size > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap - b->len < size) {
			if (cap > SIZE_MAX / 2)
				return 0;
			cap *= 2;
		}
		char *out = realloc(b->out, cap);
		if (!out)
			return 0;
		b->out = out;
		b->cap = cap;
	}
	memcpy(b->out + b->len, buffer, size);
	b->len += size;
	return 1;
}

/* Emits ev (libyaml frees its contents, whether or not this succeeds). */
static void emit(struct encoder *e, yaml_event_t *ev, int initialized)
{
	yaml_emitter_t *em = &e->box->emitter;
	if (!initialized)
		luaL_error(e->L, "not enough memory");
	if (yaml_emitter_emit(em, ev))
		return;
	if (em->error == YAML_EMITTER_ERROR) /* events libyaml refuses: a bug here */
		luaL_error(e->L, "yaml.encode: %s", em->problem);
	luaL_error(e->L, "not enough memory");
}

static void emit_scalar(struct encoder *e, const char *tag, const char *s, size_t n,
                        yaml_scalar_style_t style)
{
	yaml_event_t ev;
	if (n > INT_MAX) /* libyaml's limit */
		luaL_error(e->L, "yaml.encode: string too long");
	int implicit = tag == NULL;
	emit(e, &ev, yaml_scalar_event_initialize(&ev, NULL, (const yaml_char_t *)tag,
	                                          (const yaml_char_t *)s, (int)n, implicit,
	                                          implicit, style));
}

/* Bytes that are not UTF-8 cannot be YAML text: go-yaml writes them as
 * !!binary, base64 in lines of 70, and yaml.decode reads that back. */
static void encode_binary(struct encoder *e, const char *s, size_t n)
{
	lua_State *L = e->L;
	size_t len = b64_encoded_len(n, 0);
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, len);
	b64_encode((const unsigned char *)s, n, p, 0);
	luaL_pushresultsize(&b, len);             /* base64 */
	if (len >= 70) {
		const char *b64 = lua_tostring(L, -1);
		luaL_buffinit(L, &b);
		for (size_t i = 0; i < len; i += 70) {
			luaL_addlstring(&b, b64 + i, len - i < 70 ? len - i : 70);
			luaL_addchar(&b, '\n');
		}
		luaL_pushresult(&b);
		lua_remove(L, -2);                    /* base64-lines */
	}
	const char *text = lua_tolstring(L, -1, &len);
	emit_scalar(e, TAG("binary"), text, len,
	            memchr(text, '\n', len) ? YAML_LITERAL_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
	lua_pop(L, 1);
}

/* go-yaml's choice: a literal block when there is a line break, quotes
 * when the plain form would be read as another type, else plain; libyaml
 * falls back to quotes itself when the plain or block form cannot be used.
 * One change: a key << is quoted, which kubectl leaves plain and then
 * reads back as a merge key. s is NUL-terminated. */
static void encode_string(struct encoder *e, const char *s, size_t n, int is_key)
{
	yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
	if (!is_utf8(s, n)) {
		encode_binary(e, s, n);
		return;
	}
	if (memchr(s, '\n', n))
		style = YAML_LITERAL_SCALAR_STYLE;
	else if (go_reads_as_non_string(e->L, s, n) || (is_key && equals(s, n, "<<")))
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	emit_scalar(e, NULL, s, n, style);
}

static void encode_number(struct encoder *e, int idx)
{
	char buf[48];
	if (lua_isinteger(e->L, idx)) {
		snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(e->L, idx));
	} else {
		format_go_float(lua_tonumber(e->L, idx), buf, sizeof buf);
		/* Go has no integral floats here (JSON made them ints); keep a
		 * float a float when it is read back. */
		if (!strpbrk(buf, ".en"))
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ".0");
	}
	emit_scalar(e, NULL, buf, strlen(buf), YAML_PLAIN_SCALAR_STYLE);
}

/*
 * The json module's rules, and its words when a table fits none: a marker
 * says what a table is; else string keys make a mapping (an empty table
 * too), keys 1..n a sequence. Returns whether it is a sequence, and its
 * number of elements or keys in *count.
 */
static int is_sequence(struct encoder *e, int idx, size_t *count)
{
	lua_State *L = e->L;
	size_t n = 0, strings = 0, positive = 0;
	lua_Integer max = 0;
	int other = LUA_TNONE; /* the type of a key neither string nor integer */
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);     /* key */
		n++;
		if (lua_type(L, -1) == LUA_TSTRING) {
			strings++;
		} else if (lua_isinteger(L, -1)) {
			if (lua_tointeger(L, -1) > 0) {
				positive++;
				max = lua_tointeger(L, -1) > max ? lua_tointeger(L, -1) : max;
			}
		} else if (other == LUA_TNONE) {
			other = lua_type(L, -1);
		}
	}
	*count = n;
	/* distinct positive integer keys, as many as the largest: 1..n */
	int sequence = positive == n && (size_t)max == n;
	if (is_marked(L, idx, e->array_mt)) {
		if (!sequence)
			luaL_error(L, "yaml.encode: cannot encode an array with keys other than 1..n");
		return 1;
	}
	if (is_marked(L, idx, e->object_mt) || strings == n) {
		if (strings != n)
			luaL_error(L, "yaml.encode: cannot encode an object with non-string keys");
		return 0;
	}
	if (sequence)
		return 1;
	if (strings > 0)
		luaL_error(L, "yaml.encode: cannot encode a table with mixed keys");
	if (other == LUA_TNONE)
		luaL_error(L, "yaml.encode: cannot encode a sparse array");
	return luaL_error(L, "yaml.encode: cannot encode a table with %s keys",
	                  lua_typename(L, other));
}

static void encode_value(struct encoder *e, int idx, int depth);

static void encode_sequence(struct encoder *e, int idx, size_t n, int depth)
{
	lua_State *L = e->L;
	yaml_event_t ev;
	emit(e, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	                                                  YAML_BLOCK_SEQUENCE_STYLE));
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, (lua_Integer)i);
		encode_value(e, lua_gettop(L), depth + 1);
		lua_pop(L, 1);
	}
	emit(e, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void encode_mapping(struct encoder *e, int idx, size_t n, int depth)
{
	lua_State *L = e->L;
	yaml_event_t ev;
	/* twice n keys: the second half is the sort's scratch space */
	struct map_key *keys = lua_newuserdatauv(L, 2 * n * sizeof *keys, 0); /* keys */
	lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);                       /* keys names */
	int names = lua_gettop(L);
	size_t k = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {                /* keys names key value */
		lua_pop(L, 1);
		keys[k].s = lua_tolstring(L, -1, &keys[k].len); /* a string: no conversion */
		keys[k].slot = (lua_Integer)k + 1;
		lua_pushvalue(L, -1);
		lua_rawseti(L, names, keys[k].slot); /* the names table keeps keys[k].s alive */
		k++;
	}
	sort_keys(keys, keys + n, n);
	emit(e, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	                                                 YAML_BLOCK_MAPPING_STYLE));
	for (size_t i = 0; i < n; i++) {
		encode_string(e, keys[i].s, keys[i].len, 1);
		lua_rawgeti(L, names, keys[i].slot);
		lua_rawget(L, idx);                  /* keys names value */
		encode_value(e, lua_gettop(L), depth + 1);
		lua_pop(L, 1);
	}
	emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
	lua_pop(L, 2);
}

static void encode_value(struct encoder *e, int idx, int depth)
{
	lua_State *L = e->L;
	size_t len;
	const char *s;
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		s = lua_toboolean(L, idx) ? "true" : "false";
		emit_scalar(e, NULL, s, strlen(s), YAML_PLAIN_SCALAR_STYLE);
		return;
	case LUA_TNUMBER:
		encode_number(e, idx);
		return;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		encode_string(e, s, len, 0);
		return;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) != JSON_NULL)
			break;
		emit_scalar(e, NULL, "null", 4, YAML_PLAIN_SCALAR_STYLE);
		return;
	case LUA_TTABLE:
		if (depth >= YAML_MAX_DEPTH)
			luaL_error(L, "yaml.encode: nesting too deep");
		luaL_checkstack(L, 8, "yaml.encode: nesting too deep");
		size_t n;
		if (is_sequence(e, idx, &n))
			encode_sequence(e, idx, n, depth);
		else
			encode_mapping(e, idx, n, depth);
		return;
	default:
		break;
	}
	luaL_error(L, "yaml.encode: cannot encode a %s value", luaL_typename(L, idx));
}

static int yaml_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	struct emitter_box *box = push_box(L, sizeof *box, EMITTER_MT, emitter_box_close);
	luaL_newmetatable(L, XCS_ARRAY_MT);
	luaL_newmetatable(L, XCS_OBJECT_MT);  /* value box array_mt object_mt */
	struct encoder e = {.L = L, .box = box, .array_mt = 3, .object_mt = 4};
	if (!yaml_emitter_initialize(&box->emitter))
		return luaL_error(L, "not enough memory");
	box->emitter_live = 1;
	yaml_emitter_set_output(&box->emitter, write_output, box);
	yaml_emitter_set_unicode(&box->emitter, 1);
	yaml_event_t ev;
	emit(&e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	emit(&e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
	encode_value(&e, 1, 0);
	emit(&e, &ev, yaml_document_end_event_initialize(&ev, 1));
	/* libyaml 0.2.5 ends a document holding a keep-chomped block scalar
	 * (|+) with "..."; go-yaml, ported from an older libyaml, does not. */
	box->emitter.open_ended = 0;
	emit(&e, &ev, yaml_stream_end_event_initialize(&ev));
	lua_pushlstring(L, box->out, box->len);
	return 1;
}

static const luaL_Reg yaml_funcs[] = {
	{"decode", yaml_decode},
	{"encode", yaml_encode},
	{NULL, NULL},
};

int luaopen_yaml(lua_State *L)
{
	luaL_newlib(L, yaml_funcs);
	return 1;
}
