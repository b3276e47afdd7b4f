/*
 * xcsreg.h: what the C files of xcsreg share.
 *
 * Every Lua module lives in one file and exports only its luaopen_<name>.
 * The plain-C helpers below exist because another C file needs them too
 * (the k8s client needs JSON, base64, processes and logging). Each says who
 * owns what it returns and whether it may raise a Lua error.
 */
#ifndef XCSREG_H
#define XCSREG_H

#include <stddef.h>
#include <lua.h>

#define XCSREG_VERSION "0.1.0"

/* Exit codes, shared by the host and every shipped script. */
#define XCS_EXIT_OK 0
#define XCS_EXIT_FAIL 1    /* an operation failed */
#define XCS_EXIT_USAGE 2   /* usage or configuration error; nothing was changed */
#define XCS_EXIT_LOCKED 3  /* another run holds the lock */

/* ---- Lua modules (one file each) ---- */
int luaopen_base64(lua_State *L);
int luaopen_file(lua_State *L);
int luaopen_http(lua_State *L);
int luaopen_json(lua_State *L);
int luaopen_k8s(lua_State *L);
int luaopen_log(lua_State *L);
int luaopen_proc(lua_State *L);
int luaopen_site(lua_State *L);
int luaopen_yaml(lua_State *L);

/* ---- base64.c: RFC 4648, pure functions, never raise ---- */
#define B64_URL 1    /* '-' and '_' instead of '+' and '/' */
#define B64_NOPAD 2  /* encode: no '='; decode: padding optional */
size_t b64_encoded_len(size_t n, int flags);
/* Writes exactly b64_encoded_len(n, flags) bytes to dst (no NUL). */
void b64_encode(const unsigned char *src, size_t n, char *dst, int flags);
/* Room dst needs for decoding n bytes. */
size_t b64_decoded_maxlen(size_t n);
/* Decodes strictly: alphabet per flags, no whitespace, '=' only as padding,
 * padding required unless B64_NOPAD, unused trailing bits must be zero.
 * Returns the decoded length, or (size_t)-1 with *errpos = offset of the
 * first offending byte (n for a bad length). */
size_t b64_decode(const char *src, size_t n, unsigned char *dst, int flags,
                  size_t *errpos);

/* ---- json.c ---- */
/* The sentinel Lua sees as json.null (a light userdata). */
#define JSON_NULL ((void *)0)
/* Encodes the Lua value at idx as compact JSON with sorted keys and Go's
 * escaping, and pushes the string. Raises on values JSON cannot hold. */
void json_encode_push(lua_State *L, int idx);
/* Decodes text and pushes the value; returns 1. On bad input pushes
 * nothing, writes a message naming the position to msg, returns 0.
 * May raise only on memory errors (nothing of the caller's is leaked). */
int json_decode_push(lua_State *L, const char *text, size_t len,
                     char *msg, size_t msgsz);

/* ---- options.c: option tables of module functions; each raises on misuse,
 * as "bad argument #idx to 'f' (option 'key' ...)" ---- */
/* Raises naming the first key of the table at idx that is not in known. */
void opt_check_keys(lua_State *L, int idx, const char *const known[]);
/* Pushes field key of the table at idx; returns 1 if set, 0 if nil (nil
 * pushed); raises if it holds another type than type. */
int opt_field(lua_State *L, int idx, const char *key, int type);
/* Field key as a C string (no NUL inside), left on the stack; NULL if unset
 * (nil left on the stack). */
const char *opt_cstring(lua_State *L, int idx, const char *key);
/* These pop what they read. */
int opt_boolean(lua_State *L, int idx, const char *key);
double opt_seconds(lua_State *L, int idx, const char *key, double def); /* in (0, 1e6] */
size_t opt_size(lua_State *L, int idx, const char *key, size_t def);   /* > 0 */
lua_Integer opt_integer(lua_State *L, int idx, const char *key, lua_Integer def, lua_Integer min,
                        lua_Integer max);

/* ---- log.c: process-wide, shared by C and Lua ---- */
enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3, LOG_TRACE = 4 };
void log_set_level(int level);
int log_get_level(void);
void log_set_json(int on);
/* Registers a secret (copied): any later log line has it replaced by ***. */
void log_add_secret(const char *s, size_t len);
/* Writes one line to stderr if level is enabled; redacts registered secrets. */
void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Secrets shorter than this are redacted only where they are a whole word. */
#define LOG_SHORT_SECRET 8
/* Copies src into dst (size dstsz, NUL-terminated) with secrets redacted
 * and the userinfo of URLs (user:password before a host's @) replaced by
 * "***", as kubectl masks them; returns the length
 * written. 3 * len + 1 bytes always suffice. Redact before cutting a text
 * short: a cut secret no longer matches. */
size_t log_redact(const char *src, size_t len, char *dst, size_t dstsz);
/* How many of the first max bytes of s (which has more than max) to keep so
 * as not to cut a UTF-8 character. */
size_t log_cut(const char *s, size_t max);
/* Whether the len bytes at s are exactly a registered secret. */
int log_is_secret(const char *s, size_t len);
/* Frees the registered secrets (end of process, or between test states). */
void log_reset(void);

/* ---- proc.c: run a command without a shell, never raise ---- */
struct proc_spec {
	const char *const *argv;   /* argv[0] is looked up in PATH if it has no '/' */
	const char *const *env;    /* NULL: inherit; else "NAME=VALUE" to add/replace */
	const char *stdin_data;    /* NULL: /dev/null */
	size_t stdin_len;
	double timeout;            /* seconds, <= 0: none */
	size_t max_output;         /* cap per stream in bytes, 0: 16 MiB */
	int inherit_stderr;        /* stderr goes to ours instead of being captured */
	int clear_env;             /* start from an empty environment, not ours */
	int keep_hidden_env;       /* inherit what proc_hide_env hides too: for a
	                            * child that is xcsreg itself, which reads its
	                            * own sources and hides them again */
};
struct proc_result {
	int status;         /* exit code, or 128+signal */
	int timed_out;      /* set when proc_run failed because of spec->timeout */
	char *out, *err;    /* malloc'd, NUL-terminated; free with proc_result_free */
	size_t out_len, err_len;
};
/* Returns 0 when the command ran (whatever its exit status), or -1 with
 * msg filled (e.g. "executable not found") and nothing to free. Expects
 * SIGPIPE to be ignored (the host does) so a child that does not read its
 * stdin cannot kill us. */
int proc_run(const struct proc_spec *spec, struct proc_result *res,
             char *msg, size_t msgsz);
/* Frees out and err; safe to call again. */
void proc_result_free(struct proc_result *res);
/* No child started by proc_run from now on inherits variable name (copied;
 * an XCSREG_* variable whose value is a registered secret is never
 * inherited either). Returns 0, or -1 when out of memory. */
int proc_hide_env(const char *name);
/* SIGTERM, SIGINT and SIGHUP (the first of each) only set a flag from now
 * on; the second ends the process as the default action does. Once one is
 * caught, proc_run starts no command and the k8s and http modules send no
 * new request, each failing with a message saying so: the work in hand ends,
 * the run reports what it did not do and writes its metrics, and the host
 * exits with 128 + the signal. */
void proc_catch_signals(void);
/* The signal caught, or 0. */
int proc_interrupted(void);
/* "SIGTERM", "SIGINT", "SIGHUP". */
const char *proc_signal_name(int sig);

/* ---- secret_file.c: files holding secrets, never raise ---- */
/* Warns (log) that the file path, holding secrets (what: "password file",
 * "kubeconfig"), can be read by other users: when its mode (st_mode) lets
 * everyone read it, or its group and the file is ours (owner: st_uid). */
void secret_file_warn_open(const char *what, const char *path, unsigned mode, unsigned owner);
#define SECRET_WARN_READABLE 1  /* warn when other users can read the file (secret_file_warn_open) */
#define SECRET_WARN_WRITABLE 2  /* warn when they can change it, or replace it in its directory */
struct stat;
/* Opens path read-only: a symlink as the last component only when root or
 * we made it, and only a regular file (checked with fstat after the open; a
 * FIFO is opened without waiting for a writer). Warns (log, naming the file
 * as what) per flags. Returns the fd, with *st filled; or -1 with msg
 * filled with the reason alone (e.g. "No such file or directory"). */
int secret_file_open(const char *what, const char *path, int flags, struct stat *st, char *msg, size_t msgsz);
/* Reads the whole file, opened as secret_file_open does, into *data
 * (malloc'd, NUL-terminated, *len bytes; the caller wipes and frees it).
 * A file of more than max bytes is refused ("larger than MAX bytes"), having
 * read at most max + 1. Returns 0, or -1 with msg filled (the reason alone). */
int secret_file_read(const char *what, const char *path, int flags, size_t max, char **data, size_t *len,
                     char *msg, size_t msgsz);

/* ---- yaml.c ---- */
/* Pushes the first YAML document in text as Lua values (json's markers and
 * json.null); returns 1, or 0 with msg filled (line and column). */
int yaml_decode_push(lua_State *L, const char *text, size_t len,
                     char *msg, size_t msgsz);

/* ---- lua_bundle.c (generated from lua/ by scripts/embed-lua) ---- */
struct embedded_lua {
	const char *path;           /* relative to lua/: "setup.lua", "xcsreg/secrets.lua" */
	const char *module;         /* what require names it ("xcsreg.secrets"); NULL for a script */
	const unsigned char *text;
	size_t len;
	const unsigned char *bytecode; /* the text compiled, debug info kept; NULL if not built */
	size_t bytecode_len;
};
extern const struct embedded_lua embedded_lua[];  /* ends with path == NULL */
/* lua_ident of the liblua that compiled the bytecode (NULL if none): the
 * bytecode is loaded only under that same liblua (lundump.c checks the
 * bytecode format's version, not the Lua release). */
extern const char *const embedded_lua_ident;

/* ---- main.c ---- */
/* Markers shared by json and yaml: tables decoded from JSON arrays/objects
 * carry these metatables (registry keys). */
#define XCS_ARRAY_MT "xcsreg.array"
#define XCS_OBJECT_MT "xcsreg.object"

#endif
