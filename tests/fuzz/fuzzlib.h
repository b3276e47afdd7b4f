/*
 * fuzzlib.h: what the libFuzzer harnesses of tests/fuzz share.
 *
 * One Lua state per process, made once, with the modules a script of the
 * host can require (the C modules and the shipped lua/xcsreg files, from
 * lua_bundle.c), the host's allow-list of standard libraries, a memory cap
 * and an instruction budget, so that a hostile input ends in a Lua error
 * instead of an endless loop or the fuzzer's RSS limit.
 *
 * A harness calls fuzz_begin() at the start of each input and fuzz_end()
 * after it: that resets the stack, the log module's secrets and, now and
 * then, collects garbage. A property that does not hold is reported with
 * fuzz_fail(), which prints the message and aborts, so libFuzzer saves the
 * input as a crash.
 */
#ifndef FUZZLIB_H
#define FUZZLIB_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/* Bytes the Lua state may hold beyond what it held after setup. */
#define FUZZ_MEMORY_CAP ((size_t)128 << 20)
/* VM instructions one protected call may run (checked every 1000). */
#define FUZZ_INSTRUCTIONS 20000000L

/* The state, made on first use (curl_global_init included); never NULL. */
lua_State *fuzz_state(void);
/* Starts an input: empty stack, fresh budget. */
void fuzz_begin(void);
/* Ends an input: empty stack, no registered secrets, garbage collected
 * (so that mallocs and frees balance and libFuzzer's leak check stays
 * quiet unless something did leak). */
void fuzz_end(void);
/* lua_pcall with a traceback handler and the instruction budget; the
 * message (with traceback) is left on the stack on error. */
int fuzz_pcall(lua_State *L, int nargs, int nresults);
/* Calls require(name) and leaves the module on the stack; aborts on error. */
void fuzz_require(lua_State *L, const char *name);
/* A private directory under $TMPDIR (default /tmp), made on first use;
 * it and the files in it are removed at exit (not after a crash: then
 * scripts/fuzz, which points TMPDIR into build/fuzz/, removes them). */
const char *fuzz_tmpdir(void);
/* Writes n bytes to the file name in fuzz_tmpdir(); returns its path
 * (static storage, overwritten by the next call). Aborts on failure. */
const char *fuzz_write_file(const char *name, const void *data, size_t n);
/* Prints "fuzz: <message>" to stderr and aborts. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Whether msg starts with prefix, a finding already reported and not yet
 * fixed (a GAP): the first time, prints "fuzz: GAP: <what>" to stderr, which
 * scripts/fuzz shows. Each use names the fix it waits for; remove it once
 * that fix is in. */
int fuzz_known_gap(const char *msg, const char *prefix, const char *what);
/* Whether the error message on top of the stack is Lua's out-of-memory one
 * (the memory cap was hit: an input that is too big, not a bug). */
int fuzz_is_memory_error(lua_State *L, int status);

#endif
