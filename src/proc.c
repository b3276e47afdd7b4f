/*
 * proc.c: the 'proc' module, and proc_run for C callers (the k8s client runs
 * kubeconfig exec plugins with it). A command runs without a shell; its stdin
 * is fed and its output collected in one poll loop, so neither side can wait
 * on the other; every descriptor and every child is released on every path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "xcsreg.h"

#define PROC_DEFAULT_MAX_OUTPUT ((size_t)16 << 20)
/* What execvp uses when the environment has no PATH. */
#define PROC_DEFAULT_PATH "/bin:/usr/bin"
#define PROC_CHUNK 65536
/* Descriptors the child closes one by one when close_range is missing
 * (kernels before 5.11). */
#define PROC_MAX_FD_FALLBACK 65536
#define PROC_RESULT_MT "xcsreg.proc_result"
#define PROC_LOCK_MT "xcsreg.Lock"
#define PROC_PROCESS_MT "xcsreg.Process"
/* A line longer than this reaches proc.wait's caller in pieces, so that a
 * child writing no newline cannot grow our memory without bound. */
#define PROC_MAX_LINE 65536
/* How often proc.wait looks for a child that exited while something it
 * started still holds its output open. */
#define PROC_REAP_MS 200
#define PROC_MAX_WAIT 256 /* processes in one proc.wait */

/* ---- signals: SIGTERM, SIGINT, SIGHUP end a run cleanly ---- */

static volatile sig_atomic_t caught_signal;
/* A script that ends its own run (setup.lua --watch: finish the namespace in
 * hand, release its Lease, exit 0) takes the signals: they no longer stop
 * requests, and proc.signal() reports them. */
static volatile sig_atomic_t deferring, deferred_signal;

static void on_signal(int sig)
{
	if (deferring)
		deferred_signal = sig;
	else
		caught_signal = sig;
}

void proc_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* the second one of a kind ends the process at once */
	sa.sa_flags = SA_RESTART | SA_RESETHAND;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int proc_interrupted(void)
{
	return caught_signal;
}

const char *proc_signal_name(int sig)
{
	switch (sig) {
	case SIGTERM:
		return "SIGTERM";
	case SIGINT:
		return "SIGINT";
	case SIGHUP:
		return "SIGHUP";
	default:
		return "a signal";
	}
}

/* ---- the C API ---- */

struct outbuf {
	char *data;
	size_t len, cap;
};

/* Everything the child needs, prepared before fork: between fork and execve
 * the child may only make async-signal-safe calls (no malloc). */
struct child_plan {
	const char *const *argv;
	char *const *envp;
	const char *path;    /* the child's PATH */
	int std_fds[3];      /* become the child's 0, 1, 2; -1: keep ours */
	int err_fd;          /* CLOEXEC pipe on which a failed exec reports errno */
	int max_fd;          /* for the close loop when close_range is missing */
};

static size_t env_name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');
	return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Variables no child inherits (proc_hide_env): the ones a site file names
 * as a password source. Process-wide, as the secrets of log.c are. */
static char **hidden_env;
static size_t nhidden, hidden_cap;

int proc_hide_env(const char *name)
{
	for (size_t i = 0; i < nhidden; i++)
		if (strcmp(hidden_env[i], name) == 0)
			return 0;
	if (nhidden == hidden_cap) {
		size_t cap = hidden_cap ? 2 * hidden_cap : 8;
		char **p = realloc(hidden_env, cap * sizeof *p);
		if (!p)
			return -1;
		hidden_env = p;
		hidden_cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -1;
	hidden_env[nhidden++] = copy;
	return 0;
}

/* Whether a child must not inherit our variable entry ("NAME=VALUE"): one
 * named by proc_hide_env, or an XCSREG_* one whose value is a secret. */
static int is_hidden(const char *entry)
{
	size_t len = env_name_len(entry);
	for (size_t i = 0; i < nhidden; i++)
		if (strlen(hidden_env[i]) == len && memcmp(hidden_env[i], entry, len) == 0)
			return 1;
	if (strncmp(entry, "XCSREG_", 7) == 0 && entry[len] == '=')
		return log_is_secret(entry + len + 1, strlen(entry + len + 1));
	return 0;
}

/* The child's environment: ours (unless clear_env) minus the hidden
 * variables, with spec->env added or replacing entries of the same name. A malloc'd array of borrowed
 * pointers, NULL-terminated; NULL when out of memory. */
static char **child_env(const struct proc_spec *spec)
{
	size_t nbase = 0, nadd = 0;
	if (!spec->clear_env)
		while (environ[nbase])
			nbase++;
	if (spec->env)
		while (spec->env[nadd])
			nadd++;
	char **envp = malloc((nbase + nadd + 1) * sizeof *envp);
	if (!envp)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < nbase; i++)
		if (spec->keep_hidden_env || !is_hidden(environ[i]))
			envp[n++] = environ[i];
	for (size_t i = 0; i < nadd; i++) {
		const char *e = spec->env[i];
		size_t len = env_name_len(e);
		size_t j = 0;
		while (j < n && !(env_name_len(envp[j]) == len && memcmp(envp[j], e, len) == 0))
			j++;
		envp[j] = (char *)e;
		if (j == n)
			n++;
	}
	envp[n] = NULL;
	return envp;
}

static const char *env_path(char *const *envp)
{
	for (; *envp; envp++)
		if (strncmp(*envp, "PATH=", 5) == 0)
			return *envp + 5;
	return PROC_DEFAULT_PATH;
}

static void report_errno_and_exit(int err_fd, int err) __attribute__((noreturn));
static void report_errno_and_exit(int err_fd, int err)
{
	ssize_t n;
	do
		n = write(err_fd, &err, sizeof err);
	while (n < 0 && errno == EINTR);
	_exit(127);
}

/* The PATH search of execvp, but in the child's PATH and never falling back
 * to /bin/sh for a file that is not an executable format. Returns the errno
 * to report: EACCES when some candidate was not executable, else the first
 * error that ends the search (ENOENT when nothing was found). */
static int exec_search(const struct child_plan *plan)
{
	const char *file = plan->argv[0];
	char *const *argv = (char *const *)plan->argv;
	if (strchr(file, '/')) {
		execve(file, argv, plan->envp);
		return errno;
	}
	char buf[PATH_MAX];
	size_t flen = strlen(file);
	int seen_eacces = 0;
	for (const char *p = plan->path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		const char *dir = dlen ? p : "."; /* an empty entry is the current directory */
		if (!dlen)
			dlen = 1;
		if (dlen + 1 + flen < sizeof buf) {
			memcpy(buf, dir, dlen);
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			execve(buf, argv, plan->envp);
			switch (errno) {
			case EACCES:
				seen_eacces = 1;
				break;
			case ENOENT:
			case ENOTDIR:
			case ENAMETOOLONG:
			case ELOOP:
				break;
			default:
				return errno;
			}
		}
		if (!*end)
			break;
		p = end;
	}
	return seen_eacces ? EACCES : ENOENT;
}

static void exec_child(const struct child_plan *plan) __attribute__((noreturn));
static void exec_child(const struct child_plan *plan)
{
	/* The host ignores SIGPIPE, and ignored signals survive execve. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* First move every descriptor we keep above 2, so that installing one
	 * as 0, 1 or 2 cannot overwrite another (the host's own 0-2 may be
	 * closed, and then pipe() hands those numbers out). */
	int err_fd = fcntl(plan->err_fd, F_DUPFD_CLOEXEC, 3);
	if (err_fd < 0)
		_exit(127);
	int moved[3];
	for (int i = 0; i < 3; i++) {
		moved[i] = -1;
		if (plan->std_fds[i] >= 0 && (moved[i] = fcntl(plan->std_fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
			report_errno_and_exit(err_fd, errno);
	}
	for (int i = 0; i < 3; i++)
		if (moved[i] >= 0 && dup2(moved[i], i) < 0)
			report_errno_and_exit(err_fd, errno);
	/* Descriptors the host opened without O_CLOEXEC (Lua's io.open does)
	 * must not reach the command either. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
		for (int fd = 3; fd < plan->max_fd; fd++)
			if (fd != err_fd)
				close(fd);

	report_errno_and_exit(err_fd, exec_search(plan));
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Waits for pid until deadline (0: none). Returns 0 with *status set, 1 on
 * timeout (the child still runs), -1 with errno on error. */
static int wait_child(pid_t pid, double deadline, int *status)
{
	if (deadline <= 0) {
		while (waitpid(pid, status, 0) < 0)
			if (errno != EINTR)
				return -1;
		return 0;
	}
	/* Most children exit right after closing their output, so polling
	 * from 1 ms up to 50 ms costs little and needs no SIGCHLD handler. */
	long delay_ns = 1000000;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		double left = deadline - now_seconds();
		if (left <= 0)
			return 1;
		long ns = left < (double)delay_ns / 1e9 ? (long)(left * 1e9) + 1 : delay_ns;
		struct timespec ts = {0, ns};
		nanosleep(&ts, NULL);
		if (delay_ns < 50000000)
			delay_ns *= 2;
	}
}

/* Reads what fd has into b; closes fd at end of file. Returns 0, or -1 when
 * b would exceed max bytes or memory ran out (errno ENOMEM). */
static int drain(int *fd, struct outbuf *b, size_t max)
{
	if (b->cap - b->len < PROC_CHUNK) {
		size_t cap = b->cap ? 2 * b->cap : PROC_CHUNK;
		if (cap < b->len + PROC_CHUNK)
			cap = b->len + PROC_CHUNK;
		/* max + 1 bytes are enough to see that the output is too long */
		if (cap > max + PROC_CHUNK + 1)
			cap = max + PROC_CHUNK + 1;
		if (cap > b->cap) {
			char *p = realloc(b->data, cap);
			if (!p) {
				errno = ENOMEM;
				return -1;
			}
			b->data = p;
			b->cap = cap;
		}
	}
	/* keep one byte for the terminating NUL */
	ssize_t n = read(*fd, b->data + b->len, b->cap - b->len - 1);
	if (n > 0) {
		b->len += (size_t)n;
		if (b->len > max) {
			errno = EFBIG;
			return -1;
		}
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		close_fd(fd);
	}
	return 0;
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Writes the next piece of data to the nonblocking *fd, closing it once
 * all is written or the command stopped reading (EPIPE: that is its
 * business). */
static void feed_stdin(int *fd, const char *data, size_t len, size_t *off)
{
	size_t left = len - *off;
	ssize_t w = write(*fd, data + *off, left < PROC_CHUNK ? left : PROC_CHUNK);
	if (w > 0)
		*off += (size_t)w;
	if (*off == len || (w < 0 && errno != EAGAIN && errno != EINTR))
		close_fd(fd);
}

/* Gives b the NUL-terminated form proc_result promises; 0 or -1. */
static int finish_buffer(struct outbuf *b)
{
	if (!b->data && !(b->data = malloc(1)))
		return -1;
	b->data[b->len] = '\0';
	return 0;
}

/* Starts the command of spec: its stdin a pipe whose other end goes to
 * *in_w when spec->stdin_data is set (else /dev/null), its stdout a pipe
 * read from *out_r, its stderr one read from *err_r unless
 * spec->inherit_stderr. Returns the pid, or -1 with msg set; the caller
 * owns the descriptors it is given (all -1 on failure). */
static pid_t start_child(const struct proc_spec *spec, int *in_w, int *out_r, int *err_r, char *msg, size_t msgsz)
{
	const char *name = spec->argv[0];
	/* child ends: in_r, out_w, err_w, report_w */
	int in_r = -1, out_w = -1, err_w = -1, report_r = -1, report_w = -1, pipes[2];
	pid_t pid = -1;
	*in_w = *out_r = *err_r = -1;
	if (caught_signal) {
		snprintf(msg, msgsz, "%s not run: the run was interrupted by %s", name, proc_signal_name(caught_signal));
		return -1;
	}
	char **envp = child_env(spec);
	if (!envp) {
		errno = ENOMEM;
		goto sys_error;
	}
	if (spec->stdin_data) {
		if (pipe2(pipes, O_CLOEXEC) < 0)
			goto sys_error;
		in_r = pipes[0], *in_w = pipes[1];
	} else if ((in_r = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		goto sys_error;
	}
	if (pipe2(pipes, O_CLOEXEC) < 0)
		goto sys_error;
	*out_r = pipes[0], out_w = pipes[1];
	if (!spec->inherit_stderr) {
		if (pipe2(pipes, O_CLOEXEC) < 0)
			goto sys_error;
		*err_r = pipes[0], err_w = pipes[1];
	}
	if (pipe2(pipes, O_CLOEXEC) < 0)
		goto sys_error;
	report_r = pipes[0], report_w = pipes[1];

	struct rlimit rl;
	struct child_plan plan = {
	    .argv = spec->argv,
	    .envp = envp,
	    .path = env_path(envp),
	    .std_fds = {in_r, out_w, err_w},
	    .err_fd = report_w,
	    .max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < PROC_MAX_FD_FALLBACK
	                  ? (int)rl.rlim_cur : PROC_MAX_FD_FALLBACK,
	};
	pid = fork();
	if (pid < 0)
		goto sys_error;
	if (pid == 0)
		exec_child(&plan);
	free(envp);
	envp = NULL;
	close_fd(&in_r);
	close_fd(&out_w);
	close_fd(&err_w);
	close_fd(&report_w);

	/* End of file on the report pipe: execve succeeded and closed it. */
	int exec_errno;
	ssize_t n;
	do
		n = read(report_r, &exec_errno, sizeof exec_errno);
	while (n < 0 && errno == EINTR);
	close_fd(&report_r);
	if (n == (ssize_t)sizeof exec_errno) {
		if (exec_errno == ENOENT)
			snprintf(msg, msgsz, "executable not found: %s", name);
		else if (exec_errno == EACCES)
			snprintf(msg, msgsz, "permission denied: %s", name);
		else
			snprintf(msg, msgsz, "cannot run %s: %s", name, strerror(exec_errno));
		goto failed;
	}
	if ((*in_w >= 0 && set_nonblock(*in_w) < 0) || set_nonblock(*out_r) < 0 ||
	    (*err_r >= 0 && set_nonblock(*err_r) < 0))
		goto sys_error;
	return pid;

sys_error:
	snprintf(msg, msgsz, "cannot run %s: %s", name, strerror(errno));
failed:
	free(envp);
	close_fd(&in_r);
	close_fd(in_w);
	close_fd(out_r);
	close_fd(&out_w);
	close_fd(err_r);
	close_fd(&err_w);
	close_fd(&report_r);
	close_fd(&report_w);
	if (pid > 0) {
		int status;
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return -1;
}

int proc_run(const struct proc_spec *spec, struct proc_result *res, char *msg, size_t msgsz)
{
	const char *name = spec->argv[0];
	size_t max = spec->max_output ? spec->max_output : PROC_DEFAULT_MAX_OUTPUT;
	double deadline = spec->timeout > 0 ? now_seconds() + spec->timeout : 0;
	int in_w = -1, out_r = -1, err_r = -1;
	struct outbuf out = {0}, err = {0};
	int ret = -1, status = 0;

	memset(res, 0, sizeof *res);
	pid_t pid = start_child(spec, &in_w, &out_r, &err_r, msg, msgsz);
	if (pid < 0)
		return -1;
	size_t in_off = 0;
	if (in_w >= 0 && spec->stdin_len == 0)
		close_fd(&in_w);
	while (in_w >= 0 || out_r >= 0 || err_r >= 0) {
		struct pollfd pfd[3];
		int nfds = 0, wait_ms = -1;
		if (in_w >= 0)
			pfd[nfds++] = (struct pollfd){.fd = in_w, .events = POLLOUT};
		if (out_r >= 0)
			pfd[nfds++] = (struct pollfd){.fd = out_r, .events = POLLIN};
		if (err_r >= 0)
			pfd[nfds++] = (struct pollfd){.fd = err_r, .events = POLLIN};
		if (deadline > 0) {
			double left = deadline - now_seconds();
			if (left <= 0)
				goto timed_out;
			wait_ms = left > 3600 ? 3600000 : (int)(left * 1000) + 1;
		}
		int r = poll(pfd, (nfds_t)nfds, wait_ms);
		if (r < 0 && errno != EINTR)
			goto sys_error;
		for (int i = 0; r > 0 && i < nfds; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == in_w) {
				feed_stdin(&in_w, spec->stdin_data, spec->stdin_len, &in_off);
			} else {
				int is_out = pfd[i].fd == out_r;
				if (drain(is_out ? &out_r : &err_r, is_out ? &out : &err, max) >= 0)
					continue;
				if (errno != EFBIG)
					goto sys_error;
				snprintf(msg, msgsz, "%s of %s exceeds %zu bytes", is_out ? "standard output" : "standard error",
				         name, max);
				goto done;
			}
		}
	}

	int w = wait_child(pid, deadline, &status);
	if (w == 1)
		goto timed_out;
	pid = -1;
	if (w < 0)
		goto sys_error;
	if (finish_buffer(&out) < 0 || finish_buffer(&err) < 0) {
		errno = ENOMEM;
		goto sys_error;
	}
	res->status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	res->out = out.data, res->out_len = out.len;
	res->err = err.data, res->err_len = err.len;
	out.data = err.data = NULL;
	ret = 0;
	goto done;

timed_out:
	res->timed_out = 1;
	snprintf(msg, msgsz, "command timed out after %gs: %s", spec->timeout, name);
	goto done;
sys_error:
	snprintf(msg, msgsz, "cannot run %s: %s", name, strerror(errno));
done:
	close_fd(&in_w);
	close_fd(&out_r);
	close_fd(&err_r);
	if (pid > 0) {
		/* Only a child we gave up on is still unreaped here. */
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	free(out.data);
	free(err.data);
	return ret;
}

void proc_result_free(struct proc_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
	res->out_len = res->err_len = 0;
}

/* ---- the Lua module ---- */

static const char *const run_options[] = {
    "argv", "clear_env", "env", "max_output", "stderr", "stdin", "timeout", NULL,
};

static const char *opt_string(lua_State *L, int idx, const char *key, const char *def)
{
	const char *s = opt_field(L, idx, key, LUA_TSTRING) ? lua_tostring(L, -1) : def;
	lua_pop(L, 1);
	return s;
}

/* Copies the strings of the argv list at tbl into a userdata it pushes: a
 * NULL-terminated pointer array followed by the bytes. Returns the array. */
static const char **push_argv(lua_State *L, int opts, int tbl)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, tbl);
	if (n == 0)
		luaL_argerror(L, opts, "option 'argv' must be a non-empty list of strings");
	size_t bytes = 0;
	for (lua_Integer i = 1; i <= n; i++) {
		size_t len;
		if (lua_rawgeti(L, tbl, i) != LUA_TSTRING)
			luaL_argerror(L, opts, lua_pushfstring(L, "argv[%I] must be a string, got %s", i,
			                                      luaL_typename(L, -1)));
		const char *s = lua_tolstring(L, -1, &len);
		if (memchr(s, '\0', len))
			luaL_argerror(L, opts, lua_pushfstring(L, "argv[%I] contains a NUL byte", i));
		bytes += len + 1;
		lua_pop(L, 1);
	}
	const char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv + bytes, 0);
	char *p = (char *)(argv + n + 1);
	for (lua_Integer i = 1; i <= n; i++) {
		size_t len;
		lua_rawgeti(L, tbl, i);
		const char *s = lua_tolstring(L, -1, &len);
		memcpy(p, s, len + 1);
		argv[i - 1] = p;
		p += len + 1;
		lua_pop(L, 1);
	}
	argv[n] = NULL;
	return argv;
}

/* Like push_argv for the env table {NAME = VALUE} at tbl: "NAME=VALUE". */
static const char **push_env(lua_State *L, int opts, int tbl)
{
	size_t count = 0, bytes = 0;
	lua_pushnil(L);
	while (lua_next(L, tbl)) { /* ... key value */
		size_t klen, vlen;
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_argerror(L, opts, lua_pushfstring(L, "env: names must be strings, got %s",
			                                      luaL_typename(L, -2)));
		const char *k = lua_tolstring(L, -2, &klen);
		if (klen == 0 || memchr(k, '=', klen) || memchr(k, '\0', klen))
			luaL_argerror(L, opts, lua_pushfstring(L, "env: bad variable name '%s'", k));
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, opts, lua_pushfstring(L, "env.%s must be a string, got %s", k,
			                                      luaL_typename(L, -1)));
		const char *v = lua_tolstring(L, -1, &vlen);
		if (memchr(v, '\0', vlen))
			luaL_argerror(L, opts, lua_pushfstring(L, "env.%s contains a NUL byte", k));
		count++;
		bytes += klen + vlen + 2;
		lua_pop(L, 1);
	}
	const char **env = lua_newuserdatauv(L, (count + 1) * sizeof *env + bytes, 0);
	int box = lua_gettop(L);
	char *p = (char *)(env + count + 1);
	size_t i = 0;
	lua_pushnil(L);
	while (lua_next(L, tbl)) { /* ... box key value */
		size_t klen, vlen;
		const char *k = lua_tolstring(L, -2, &klen);
		const char *v = lua_tolstring(L, -1, &vlen);
		env[i++] = p;
		memcpy(p, k, klen);
		p[klen] = '=';
		memcpy(p + klen + 1, v, vlen + 1);
		p += klen + vlen + 2;
		lua_pop(L, 1);
	}
	env[i] = NULL;
	lua_settop(L, box);
	return env;
}

/* proc.run{argv = {...}, stdin =, env =, clear_env =, timeout =, max_output =,
 * stderr = "capture"|"inherit"} -> status, stdout, stderr | nil, message */
static int procl_run(lua_State *L)
{
	struct proc_spec spec = {0};
	luaL_checktype(L, 1, LUA_TTABLE);
	opt_check_keys(L, 1, run_options);

	if (!opt_field(L, 1, "argv", LUA_TTABLE))
		luaL_argerror(L, 1, "option 'argv' must be a non-empty list of strings");
	spec.argv = push_argv(L, 1, lua_gettop(L)); /* opts argv argv_box */
	if (opt_field(L, 1, "env", LUA_TTABLE))
		spec.env = push_env(L, 1, lua_gettop(L)); /* ... env env_box */
	if (opt_field(L, 1, "stdin", LUA_TSTRING))      /* ... stdin (kept: borrowed) */
		spec.stdin_data = lua_tolstring(L, -1, &spec.stdin_len);
	if (opt_field(L, 1, "clear_env", LUA_TBOOLEAN))
		spec.clear_env = lua_toboolean(L, -1);
	lua_pop(L, 1);
	spec.timeout = opt_seconds(L, 1, "timeout", 0);
	spec.max_output = opt_size(L, 1, "max_output", 0);
	const char *stderr_mode = opt_string(L, 1, "stderr", "capture");
	if (strcmp(stderr_mode, "inherit") == 0)
		spec.inherit_stderr = 1;
	else if (strcmp(stderr_mode, "capture") != 0)
		luaL_argerror(L, 1, lua_pushfstring(L, "option 'stderr': invalid value '%s'", stderr_mode));

	/* The result lives in a box so that a failing push cannot leak it. */
	struct proc_result *res = lua_newuserdatauv(L, sizeof *res, 0);
	memset(res, 0, sizeof *res);
	luaL_setmetatable(L, PROC_RESULT_MT);
	char msg[512];
	if (proc_run(&spec, res, msg, sizeof msg) != 0) {
		lua_pushnil(L);
		lua_pushstring(L, msg);
		return 2;
	}
	lua_pushinteger(L, res->status);
	lua_pushlstring(L, res->out, res->out_len);
	lua_pushlstring(L, res->err, res->err_len);
	proc_result_free(res);
	return 3;
}

static int result_close(lua_State *L)
{
	proc_result_free(luaL_checkudata(L, 1, PROC_RESULT_MT));
	return 0;
}

/* ---- proc.spawn, proc.wait: several commands at once, their output by line ---- */

struct line_stream {
	int fd; /* -1 at end of file */
	char *buf;
	size_t len, cap;
};

struct process {
	pid_t pid;           /* -1 once reaped */
	int status;          /* exit code or 128 + signal, once reaped */
	int reported;        /* proc.wait returned its exit */
	int signalled;       /* the signal the host caught was passed on to it */
	int in_fd;
	const char *in_data; /* the stdin string, kept alive by the user value */
	size_t in_len, in_off;
	struct line_stream out, err;
};

static void reap(struct process *p, int block)
{
	int status;
	pid_t r;
	do
		r = waitpid(p->pid, &status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == p->pid || r < 0) {
		p->status = r < 0 ? 127 : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
		p->pid = -1;
	}
}

/* Kills and reaps the child unless it was, closes its descriptors, frees
 * its buffers: __gc, __close and p:close(), so that no Lua error leaves a
 * zombie or a descriptor behind. */
static int process_close(lua_State *L)
{
	struct process *p = luaL_checkudata(L, 1, PROC_PROCESS_MT);
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		reap(p, 1);
	}
	close_fd(&p->in_fd);
	close_fd(&p->out.fd);
	close_fd(&p->err.fd);
	free(p->out.buf);
	free(p->err.buf);
	p->out.buf = p->err.buf = NULL;
	p->out.len = p->err.len = p->out.cap = p->err.cap = 0;
	p->reported = 1;
	return 0;
}

static const char *const spawn_options[] = {"argv", "clear_env", "env", "keep_hidden_env", "stdin", NULL};

/* proc.spawn{argv = {...}, stdin =, env =, clear_env =, keep_hidden_env =}
 * -> process | nil, message. The command runs as with proc.run, its stdout
 * and stderr read by proc.wait. */
static int procl_spawn(lua_State *L)
{
	struct proc_spec spec = {0};
	luaL_checktype(L, 1, LUA_TTABLE);
	opt_check_keys(L, 1, spawn_options);
	if (!opt_field(L, 1, "argv", LUA_TTABLE))
		luaL_argerror(L, 1, "option 'argv' must be a non-empty list of strings");
	spec.argv = push_argv(L, 1, lua_gettop(L));
	if (opt_field(L, 1, "env", LUA_TTABLE))
		spec.env = push_env(L, 1, lua_gettop(L));
	int stdin_idx = 0;
	if (opt_field(L, 1, "stdin", LUA_TSTRING)) {
		spec.stdin_data = lua_tolstring(L, -1, &spec.stdin_len);
		stdin_idx = lua_gettop(L);
	}
	spec.clear_env = opt_boolean(L, 1, "clear_env");
	spec.keep_hidden_env = opt_boolean(L, 1, "keep_hidden_env");

	/* the userdata exists before the child, so that a raise cannot leak it */
	struct process *p = lua_newuserdatauv(L, sizeof *p, 1);
	memset(p, 0, sizeof *p);
	p->pid = -1;
	p->in_fd = p->out.fd = p->err.fd = -1;
	p->reported = 1;
	luaL_setmetatable(L, PROC_PROCESS_MT);
	if (stdin_idx) {
		lua_pushvalue(L, stdin_idx);
		lua_setiuservalue(L, -2, 1);
		p->in_data = spec.stdin_data;
		p->in_len = spec.stdin_len;
	}
	char msg[512];
	pid_t pid = start_child(&spec, &p->in_fd, &p->out.fd, &p->err.fd, msg, sizeof msg);
	if (pid < 0) {
		lua_pushnil(L);
		lua_pushstring(L, msg);
		return 2;
	}
	p->pid = pid;
	p->reported = 0;
	if (p->in_fd >= 0 && p->in_len == 0)
		close_fd(&p->in_fd);
	return 1;
}

/* Pushes the next line of s (a partial one at end of file, or PROC_MAX_LINE
 * bytes of a longer one) and returns 1, or returns 0 when none is ready. */
static int next_line(lua_State *L, struct line_stream *s)
{
	if (s->len == 0)
		return 0;
	char *nl = memchr(s->buf, '\n', s->len);
	size_t n, skip;
	if (nl)
		n = (size_t)(nl - s->buf), skip = n + 1;
	else if (s->fd < 0 || s->len >= PROC_MAX_LINE)
		n = skip = s->len < PROC_MAX_LINE ? s->len : PROC_MAX_LINE;
	else
		return 0;
	lua_pushlstring(L, s->buf, n);
	memmove(s->buf, s->buf + skip, s->len - skip);
	s->len -= skip;
	return 1;
}

/* Reads what s's descriptor has, at most PROC_CHUNK bytes; closes it at end
 * of file or on error. Returns 0, or -1 when memory ran out. */
static int read_lines(struct line_stream *s)
{
	if (s->cap - s->len < PROC_CHUNK) {
		size_t cap = s->len + PROC_CHUNK;
		char *b = realloc(s->buf, cap);
		if (!b)
			return -1;
		s->buf = b;
		s->cap = cap;
	}
	ssize_t n = read(s->fd, s->buf + s->len, PROC_CHUNK);
	if (n > 0)
		s->len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		close_fd(&s->fd);
	return 0;
}

/* What proc.wait returns for p when it has something: pushes p, the kind
 * and the value, and returns 3; else 0. */
static int process_event(lua_State *L, int idx, struct process *p)
{
	static const char *const kinds[] = {"stdout", "stderr"};
	struct line_stream *streams[] = {&p->out, &p->err};
	for (int i = 0; i < 2; i++) {
		if (streams[i]->len == 0)
			continue;
		lua_pushvalue(L, idx);
		lua_pushstring(L, kinds[i]);
		if (next_line(L, streams[i]))
			return 3;
		lua_pop(L, 2);
	}
	if (p->pid > 0)
		reap(p, 0);
	if (p->pid > 0)
		return 0;
	/* Exited: what it wrote before is in the pipes; whatever a command it
	 * started may still write there is not its output. */
	for (int i = 0; i < 2; i++) {
		while (streams[i]->fd >= 0 && streams[i]->len < PROC_MAX_LINE) {
			size_t before = streams[i]->len;
			if (read_lines(streams[i]) < 0 || streams[i]->len == before)
				close_fd(&streams[i]->fd);
		}
		close_fd(&streams[i]->fd);
		if (streams[i]->len) {
			lua_pushvalue(L, idx);
			lua_pushstring(L, kinds[i]);
			next_line(L, streams[i]);
			return 3;
		}
	}
	close_fd(&p->in_fd);
	p->reported = 1;
	lua_pushvalue(L, idx);
	lua_pushliteral(L, "exit");
	lua_pushinteger(L, p->status);
	return 3;
}

/* proc.wait(processes [, timeout]) -> process, "stdout"|"stderr", line |
 * process, "exit", status | nil, "timeout" | nil (every one has exited).
 * Waits for the next line any of the processes writes (without its
 * newline), or for the exit of one whose output has all been returned; a
 * process's exit is returned once. Feeds their stdin meanwhile. Once the
 * host has caught SIGTERM, SIGINT or SIGHUP, passes it on to each. */
static int procl_wait(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	double timeout = luaL_optnumber(L, 2, -1);
	double deadline = timeout >= 0 ? now_seconds() + timeout : 0;
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	if (n > PROC_MAX_WAIT)
		return luaL_argerror(L, 1, lua_pushfstring(L, "more than %d processes", PROC_MAX_WAIT));
	luaL_checkstack(L, (int)n + 8, "too many processes");
	int base = lua_gettop(L);
	struct process *procs[PROC_MAX_WAIT];
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		procs[i - 1] = luaL_testudata(L, -1, PROC_PROCESS_MT);
		if (!procs[i - 1])
			return luaL_argerror(L, 1, lua_pushfstring(L, "item %I is not a process", i));
	}
	struct pollfd pfd[3 * PROC_MAX_WAIT];
	struct process *owner[3 * PROC_MAX_WAIT];
	for (;;) {
		int live = 0;
		for (lua_Integer i = 0; i < n; i++) {
			struct process *p = procs[i];
			if (p->reported)
				continue;
			if (caught_signal && !p->signalled && p->pid > 0) {
				kill(p->pid, caught_signal);
				p->signalled = 1;
			}
			int r = process_event(L, base + 1 + (int)i, p);
			if (r)
				return r;
			live++;
		}
		if (!live) {
			lua_pushnil(L);
			return 1;
		}
		nfds_t nfds = 0;
		for (lua_Integer i = 0; i < n; i++) {
			struct process *p = procs[i];
			if (p->reported)
				continue;
			if (p->in_fd >= 0)
				owner[nfds] = p, pfd[nfds++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
			if (p->out.fd >= 0)
				owner[nfds] = p, pfd[nfds++] = (struct pollfd){.fd = p->out.fd, .events = POLLIN};
			if (p->err.fd >= 0)
				owner[nfds] = p, pfd[nfds++] = (struct pollfd){.fd = p->err.fd, .events = POLLIN};
		}
		int wait_ms = PROC_REAP_MS;
		if (deadline > 0) {
			double left = deadline - now_seconds();
			if (left <= 0) {
				lua_pushnil(L);
				lua_pushliteral(L, "timeout");
				return 2;
			}
			if (left * 1000 < wait_ms)
				wait_ms = (int)(left * 1000) + 1;
		}
		int r = poll(pfd, nfds, wait_ms);
		if (r < 0 && errno != EINTR)
			return luaL_error(L, "proc.wait: poll: %s", strerror(errno));
		for (nfds_t i = 0; r > 0 && i < nfds; i++) {
			if (!pfd[i].revents)
				continue;
			struct process *p = owner[i];
			if (pfd[i].fd == p->in_fd)
				feed_stdin(&p->in_fd, p->in_data, p->in_len, &p->in_off);
			else if (read_lines(pfd[i].fd == p->out.fd ? &p->out : &p->err) < 0)
				return luaL_error(L, "not enough memory");
		}
	}
}

/* p:kill([signal]): "TERM" (default), "INT", "HUP" or "KILL" -> true |
 * false when it has exited already. */
static int process_kill(lua_State *L)
{
	struct process *p = luaL_checkudata(L, 1, PROC_PROCESS_MT);
	static const char *const names[] = {"TERM", "INT", "HUP", "KILL", NULL};
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGKILL};
	int sig = sigs[luaL_checkoption(L, 2, "TERM", names)];
	if (p->pid <= 0) {
		lua_pushboolean(L, 0);
		return 1;
	}
	kill(p->pid, sig);
	lua_pushboolean(L, 1);
	return 1;
}

static int process_pid(lua_State *L)
{
	struct process *p = luaL_checkudata(L, 1, PROC_PROCESS_MT);
	if (p->pid > 0)
		lua_pushinteger(L, p->pid);
	else
		lua_pushnil(L);
	return 1;
}

/* proc.clock() -> seconds on a clock no change of the date moves, for
 * timing the commands started */
static int procl_clock(lua_State *L)
{
	lua_pushnumber(L, now_seconds());
	return 1;
}

static const luaL_Reg process_methods[] = {
    {"close", process_close},
    {"kill", process_kill},
    {"pid", process_pid},
    {NULL, NULL},
};

/* ---- proc.lock: serialise runs (cron may start one before the last ends) ---- */

struct lock_handle {
	int fd; /* -1 once released */
};

static const char *const lock_options[] = {"timeout", NULL};

static int lock_release(lua_State *L)
{
	struct lock_handle *lk = luaL_checkudata(L, 1, PROC_LOCK_MT);
	if (lk->fd >= 0) {
		close(lk->fd); /* closing drops the flock */
		lk->fd = -1;
	}
	return 0;
}

/* The pid the holder wrote into the lock file, or 0. */
static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* proc.lock(path [, {timeout = seconds}]) -> lock | nil, message
 * An exclusive flock on path, waited for up to timeout seconds (default:
 * no wait). The lock is released by lock:unlock(), on <close>, on garbage
 * collection, or when the process ends, whichever comes first. */
static int procl_lock(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	double timeout = 0;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		opt_check_keys(L, 2, lock_options);
		timeout = opt_seconds(L, 2, "timeout", 0);
	}
	/* the handle exists before the fd, so a raise cannot leak it */
	struct lock_handle *lk = lua_newuserdatauv(L, sizeof *lk, 0);
	lk->fd = -1;
	luaL_setmetatable(L, PROC_LOCK_MT);

	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int err = errno;
		lua_pushnil(L);
		lua_pushfstring(L, "cannot open lock file %s: %s", path, strerror(err));
		return 2;
	}
	lk->fd = fd;
	/* A lock file someone else owns is theirs to hold (a flock needs only
	 * read access), so that they could stop every run: refuse it. */
	struct stat st;
	const char *why = NULL;
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid())
		why = lua_pushfstring(L, "owned by uid %d, not by this user (uid %d): another user could hold it "
		                      "and stop every run; remove it, or give --lock a file of your own",
		                      (int)st.st_uid, (int)geteuid());
	if (why) {
		lua_pushnil(L);
		lua_pushfstring(L, "lock file %s is %s", path, why);
		close(fd);
		lk->fd = -1;
		return 2;
	}
	double deadline = now_seconds() + timeout;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		if (err != EWOULDBLOCK && err != EINTR) {
			close(fd); /* not lock_release: the handle is not argument 1 */
			lk->fd = -1;
			lua_pushnil(L);
			lua_pushfstring(L, "cannot lock %s: %s", path, strerror(err));
			return 2;
		}
		if (caught_signal) {
			close(fd);
			lk->fd = -1;
			lua_pushnil(L);
			lua_pushfstring(L, "interrupted by %s while waiting for lock %s", proc_signal_name(caught_signal), path);
			return 2;
		}
		if (now_seconds() >= deadline) {
			long holder = lock_holder(fd);
			lua_pop(L, 1);
			lua_pushnil(L);
			if (holder > 0)
				lua_pushfstring(L, "lock %s is held by another run (pid %d)", path, (int)holder);
			else
				lua_pushfstring(L, "lock %s is held by another run", path);
			/* the fd is closed by the handle's __gc; close it now all the same */
			close(fd);
			lk->fd = -1;
			return 2;
		}
		struct timespec pause = {0, 50000000L}; /* 50 ms */
		nanosleep(&pause, NULL);
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	/* Best effort: the pid only makes the message of a waiting run better. */
	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, pid, (size_t)n, 0);
	return 1;
}

static const luaL_Reg lock_methods[] = {
    {"unlock", lock_release},
    {NULL, NULL},
};

/* proc.hide_env(name, ...): no command started from now on inherits these
 * variables (those a site file names as password sources: a command, a
 * credential helper or an exec plugin has no business with another
 * registry's password). An explicit env option still sets them. */
static int procl_hide_env(lua_State *L)
{
	int n = lua_gettop(L);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *name = luaL_checklstring(L, i, &len);
		luaL_argcheck(L, len > 0 && !memchr(name, '=', len) && !memchr(name, '\0', len), i, "not a variable name");
	}
	for (int i = 1; i <= n; i++)
		if (proc_hide_env(lua_tostring(L, i)) != 0)
			return luaL_error(L, "not enough memory");
	return 0;
}

/* proc.defer_signals(): from now on SIGTERM, SIGINT and SIGHUP do not end
 * the run (no request is refused, the exit status is the script's); the
 * script asks proc.signal() and ends by itself. A second one of a kind
 * still ends the process at once. */
static int procl_defer_signals(lua_State *L)
{
	deferring = 1;
	if (caught_signal && !deferred_signal)
		deferred_signal = caught_signal;
	return 0;
}

/* proc.signal(): the name of the signal that asked a deferring script to
 * end ("SIGTERM"), or nil. */
static int procl_signal(lua_State *L)
{
	int sig = deferred_signal;
	if (!sig)
		return 0;
	lua_pushstring(L, proc_signal_name(sig));
	return 1;
}

/* proc.time(): the wall clock in seconds since the epoch, to the
 * microsecond (a Lease's MicroTime); timers use proc.clock. */
static int procl_time(lua_State *L)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long micros = ts.tv_nsec / 1000; /* MicroTime: whole microseconds */
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)micros / 1e6);
	return 1;
}

/* proc.identity(): "HOSTNAME_PID", the default holder of a Lease (as
 * client-go's examples make it: hostname plus a unique suffix). */
static int procl_identity(lua_State *L)
{
	char host[256];
	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	lua_pushfstring(L, "%s_%d", host, (int)getpid());
	return 1;
}

static const luaL_Reg proc_funcs[] = {
    {"clock", procl_clock},
    {"defer_signals", procl_defer_signals},
    {"hide_env", procl_hide_env},
    {"identity", procl_identity},
    {"lock", procl_lock},
    {"run", procl_run},
    {"signal", procl_signal},
    {"spawn", procl_spawn},
    {"time", procl_time},
    {"wait", procl_wait},
    {NULL, NULL},
};

int luaopen_proc(lua_State *L)
{
	luaL_newmetatable(L, PROC_RESULT_MT);
	lua_pushcfunction(L, result_close);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, result_close);
	lua_setfield(L, -2, "__close");
	lua_pop(L, 1);
	luaL_newmetatable(L, PROC_LOCK_MT);
	lua_pushcfunction(L, lock_release);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, lock_release);
	lua_setfield(L, -2, "__close");
	luaL_newlib(L, lock_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, PROC_PROCESS_MT);
	lua_pushcfunction(L, process_close);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, process_close);
	lua_setfield(L, -2, "__close");
	luaL_newlib(L, process_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, proc_funcs);
	/* proc.EXIT: the host's exit codes, so that scripts and cron agree with it */
	static const struct { const char *name; int code; } exits[] = {
	    {"OK", XCS_EXIT_OK}, {"FAILED", XCS_EXIT_FAIL}, {"USAGE", XCS_EXIT_USAGE}, {"LOCKED", XCS_EXIT_LOCKED},
	};
	lua_createtable(L, 0, (int)(sizeof exits / sizeof exits[0]));
	for (size_t i = 0; i < sizeof exits / sizeof exits[0]; i++) {
		lua_pushinteger(L, exits[i].code);
		lua_setfield(L, -2, exits[i].name);
	}
	lua_setfield(L, -2, "EXIT");
	return 1;
}
