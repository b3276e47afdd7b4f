/*
 * fuzz_kubeconfig: k8s.client{kubeconfig = FILE} with the input as FILE,
 * which exercises the YAML decoder, the merge of clusters, users and
 * contexts, base64 of *-data fields, exec plugin settings (the plugin is
 * only run by a request, so never here) and tls-server-name URL surgery.
 *
 * The file lives in a private directory holding a token file, a CA file and
 * a client certificate and key, so relative paths in the input can name
 * something; the in-cluster fallback is off (no KUBERNETES_SERVICE_HOST).
 *
 * Properties: k8s.client returns a client or nil, err; it raises only when
 * memory runs out (a bad configuration is an expected failure: nil, err
 * with reason "Config" and a non-empty message); tostring works on both.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "fuzzlib.h"
#include "xcsreg.h"

static char path[4096];

static void write_file(const char *name, const char *text)
{
	fuzz_write_file(name, text, strlen(text));
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	snprintf(path, sizeof path, "%s/config", fuzz_tmpdir());
	write_file("token", "fake-token-for-fuzzing\n");
	write_file("ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	write_file("client.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	write_file("client.key", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	setenv("XCSREG_IN_CLUSTER_DIR", fuzz_tmpdir(), 1);
	lua_State *L = fuzz_state();
	fuzz_require(L, "k8s");
	lua_setglobal(L, "k8s");
	return 0;
}

static void check_result(lua_State *L, int nres)
{
	int first = lua_gettop(L) - nres + 1;
	if (lua_isuserdata(L, first)) {
		if (!luaL_testudata(L, first, "xcsreg.k8s.Client"))
			fuzz_fail("k8s.client returned another userdata");
		return;
	}
	if (!lua_isnil(L, first) || !lua_istable(L, first + 1))
		fuzz_fail("k8s.client returned neither a client nor nil, err");
	lua_getfield(L, first + 1, "reason");
	lua_getfield(L, first + 1, "message");
	if (!lua_isstring(L, -2) || strcmp(lua_tostring(L, -2), "Config") != 0)
		fuzz_fail("an error whose reason is not Config: %s", luaL_tolstring(L, -2, NULL));
	if (!lua_isstring(L, -1) || lua_rawlen(L, -1) == 0)
		fuzz_fail("an error without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_write_file("config", data, size);
	lua_State *L = fuzz_state();
	fuzz_begin();
	lua_getglobal(L, "k8s");
	lua_getfield(L, -1, "client");
	lua_createtable(L, 0, 2);
	lua_pushstring(L, path);
	lua_setfield(L, -2, "kubeconfig");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "retries");
	int status = fuzz_pcall(L, 1, 2);
	if (status != LUA_OK) {
		if (!fuzz_is_memory_error(L, status))
			fuzz_fail("k8s.client raised: %s", lua_tostring(L, -1));
	} else {
		check_result(L, 2);
		/* both a client and an error table print */
		lua_getglobal(L, "tostring");
		lua_pushvalue(L, lua_isnil(L, -3) ? -2 : -3);
		if (fuzz_pcall(L, 1, 1) != LUA_OK || !lua_isstring(L, -1))
			fuzz_fail("tostring of the result failed: %s", lua_tostring(L, -1));
	}
	fuzz_end();
	return 0;
}
