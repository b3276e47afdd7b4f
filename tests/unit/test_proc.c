/* proc_run as the k8s client calls it: results, failures, the timed_out flag. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "xcsreg.h"

int main(void)
{
	struct proc_result res;
	char msg[256];
	signal(SIGPIPE, SIG_IGN); /* as the host does */

	const char *const echo_argv[] = {"sh", "-c", "printf %s \"$XCS_A\"; printf e >&2; exit 4", NULL};
	const char *const env[] = {"XCS_A=from env", NULL};
	struct proc_spec spec = {.argv = echo_argv, .env = env};
	int r = proc_run(&spec, &res, msg, sizeof msg);
	CHECK(r == 0, "a command that runs returns 0");
	CHECK(res.status == 4 && !res.timed_out, "exit status 4, not timed out");
	CHECK_MEM(res.out, res.out_len, "from env", 8, "stdout captured with env added");
	CHECK(res.out[res.out_len] == '\0', "stdout NUL-terminated");
	CHECK_MEM(res.err, res.err_len, "e", 1, "stderr captured");
	proc_result_free(&res);
	proc_result_free(&res);
	CHECK(res.out == NULL && res.err == NULL, "proc_result_free is idempotent");

	const char *const cat_argv[] = {"cat", NULL};
	spec = (struct proc_spec){.argv = cat_argv, .stdin_data = "a\0b", .stdin_len = 3};
	r = proc_run(&spec, &res, msg, sizeof msg);
	CHECK(r == 0 && res.status == 0, "cat runs");
	CHECK_MEM(res.out, res.out_len, "a\0b", 3, "stdin reaches the command, binary safe");
	CHECK(res.err != NULL && res.err_len == 0, "empty stderr is an empty string, not NULL");
	proc_result_free(&res);

	const char *const env_argv[] = {"env", NULL};
	spec = (struct proc_spec){.argv = env_argv, .env = env, .clear_env = 1};
	r = proc_run(&spec, &res, msg, sizeof msg);
	CHECK(r == 0, "env runs from the default PATH in an empty environment");
	CHECK_MEM(res.out, res.out_len, "XCS_A=from env\n", 15, "clear_env keeps only spec->env");
	proc_result_free(&res);

	const char *const sleep_argv[] = {"sleep", "5", NULL};
	spec = (struct proc_spec){.argv = sleep_argv, .timeout = 0.2};
	r = proc_run(&spec, &res, msg, sizeof msg);
	CHECK(r == -1 && res.timed_out, "timeout: -1 with timed_out set");
	CHECK(strcmp(msg, "command timed out after 0.2s: sleep") == 0, "timeout message: %s", msg);
	CHECK(res.out == NULL && res.err == NULL, "nothing to free after a failure");

	const char *const missing_argv[] = {"/nonexistent/xcsreg-plugin", NULL};
	spec = (struct proc_spec){.argv = missing_argv};
	r = proc_run(&spec, &res, msg, sizeof msg);
	CHECK(r == -1 && !res.timed_out, "not found: -1, not timed out");
	CHECK(strcmp(msg, "executable not found: /nonexistent/xcsreg-plugin") == 0, "not found message: %s", msg);

	const char *const yes_argv[] = {"yes", NULL};
	spec = (struct proc_spec){.argv = yes_argv, .max_output = 4096};
	r = proc_run(&spec, &res, msg, sizeof msg);
	CHECK(r == -1 && strcmp(msg, "standard output of yes exceeds 4096 bytes") == 0, "output cap: %s", msg);
	return unit_done();
}
