/*
 * fuzz_status: what the k8s client makes of a server's answer: the Status
 * body of an error (reason, message, details), a plain-text or HTML error
 * body, a success body, and the response headers of client:request.
 *
 * A thread of this process serves HTTP/1.1 on 127.0.0.1, one connection
 * per request (Connection: close), answering with what the input says:
 *   byte 0        the status, an index into `statuses`
 *   up to "\n\n"  extra header lines, if the input has a blank line (framing
 *                 headers are dropped: the server sets Content-Length)
 *   the rest      the body; Content-Type is application/json unless given
 * and a client made once (retries = 0) sends client:get and client:request.
 *
 * Properties: neither raises (short of memory); get returns a value for a
 * 2xx, else nil and an error table with the HTTP code, a non-empty reason
 * and a string message (or reason "Transport" when curl refused the
 * answer, "InvalidResponse" when it is too big or claims to be JSON and is
 * not), and tostring(err) works; request returns status, body and a
 * table of string headers, or nil, err.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>

#include "fuzzlib.h"
#include "xcsreg.h"

static const int statuses[] = {200, 201, 204, 302, 400, 401, 403, 404, 409,
                               410, 418, 422, 429, 500, 503, 504};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *response;        /* the next answer, whole */
static size_t response_len;
static int listener;

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Answers every connection with the current response after reading the
 * request's head (GETs: no body). */
static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listener, NULL, NULL);
		if (fd < 0)
			continue;
		char req[8192];
		size_t got = 0;
		while (got < sizeof req - 1) {
			ssize_t r = read(fd, req + got, sizeof req - 1 - got);
			if (r <= 0)
				break;
			got += (size_t)r;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		pthread_mutex_lock(&lock);
		(void)write_all(fd, response, response_len);
		pthread_mutex_unlock(&lock);
		shutdown(fd, SHUT_WR);
		/* wait for the client to close, so no RST cuts the answer short */
		while (read(fd, req, sizeof req) > 0)
			;
		close(fd);
	}
	return NULL;
}

static int is_framing_header(const char *line, size_t n)
{
	static const char *const names[] = {"content-length:", "transfer-encoding:", "connection:"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		size_t k = strlen(names[i]);
		if (n >= k && strncasecmp(line, names[i], k) == 0)
			return 1;
	}
	return 0;
}

/* Builds the HTTP response the input describes. */
static void set_response(const uint8_t *data, size_t size)
{
	int status = statuses[size ? data[0] % (sizeof statuses / sizeof statuses[0]) : 0];
	const char *p = size ? (const char *)data + 1 : "", *end = size ? (const char *)data + size : p;
	const char *blank = memmem(p, (size_t)(end - p), "\n\n", 2);
	const char *body = blank ? blank + 2 : p;
	size_t body_len = (size_t)(end - body);
	char *out = malloc(64 + 2 * (size_t)(end - p) + 128);
	if (!out)
		fuzz_fail("out of memory");
	size_t n = (size_t)sprintf(out, "HTTP/1.1 %d Fuzz\r\nConnection: close\r\n", status);
	int has_type = 0;
	for (const char *line = p; blank && line < blank;) {
		const char *eol = memchr(line, '\n', (size_t)(blank - line));
		size_t len = (size_t)((eol ? eol : blank) - line);
		while (len > 0 && line[len - 1] == '\r')
			len--;
		/* a line without a name would be a folded or a broken header */
		const char *colon = memchr(line, ':', len);
		int usable = colon && colon > line && !memchr(line, '\r', len) && !is_framing_header(line, len);
		if (usable) {
			has_type |= len >= 13 && strncasecmp(line, "content-type:", 13) == 0;
			memcpy(out + n, line, len);
			n += len;
			memcpy(out + n, "\r\n", 2);
			n += 2;
		}
		line = eol ? eol + 1 : blank;
	}
	if (!has_type)
		n += (size_t)sprintf(out + n, "Content-Type: application/json\r\n");
	n += (size_t)sprintf(out + n, "Content-Length: %zu\r\n\r\n", body_len);
	memcpy(out + n, body, body_len);
	n += body_len;
	pthread_mutex_lock(&lock);
	free(response);
	response = out;
	response_len = n;
	pthread_mutex_unlock(&lock);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(listener, 16) != 0 || getsockname(listener, (struct sockaddr *)&a, &alen) != 0)
		fuzz_fail("cannot listen on 127.0.0.1");
	set_response(NULL, 0);
	pthread_t t;
	if (pthread_create(&t, NULL, serve, NULL) != 0)
		fuzz_fail("cannot start the server thread");
	pthread_detach(t);

	char config[512];
	snprintf(config, sizeof config,
	         "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
	         "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:%d'}}]\n"
	         "contexts: [{name: c, context: {cluster: k}}]\n",
	         ntohs(a.sin_port));
	const char *kubeconfig = fuzz_write_file("config", config, strlen(config));
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");

	lua_State *L = fuzz_state();
	fuzz_require(L, "k8s");
	lua_getfield(L, -1, "client");
	lua_createtable(L, 0, 3);
	lua_pushstring(L, kubeconfig);
	lua_setfield(L, -2, "kubeconfig");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "retries");
	lua_pushinteger(L, 5);
	lua_setfield(L, -2, "request_timeout");
	if (fuzz_pcall(L, 1, 2) != LUA_OK || !lua_isuserdata(L, -2))
		fuzz_fail("k8s.client: %s", luaL_tolstring(L, -1, NULL));
	lua_pop(L, 1);
	lua_setglobal(L, "client");
	lua_settop(L, 0);
	return 0;
}

/* The checks, in Lua: what the API promises the scripts. */
static const char check_code[] =
    "local status = ...\n"
    "-- no usable answer: curl refused it, or (once the client checks) it is\n"
    "-- too big or not the JSON it claims to be\n"
    "local unusable = { Transport = true, InvalidResponse = true }\n"
    "local obj, err = client:get('/api/v1/namespaces/x/secrets/y')\n"
    "if status >= 200 and status < 300 then\n"
    "  if obj == nil and not unusable[err.reason] then error('a 2xx gave nil: ' .. tostring(err)) end\n"
    "else\n"
    "  assert(obj == nil, 'an error status gave a value')\n"
    "  assert(type(err) == 'table', 'the error is not a table')\n"
    "  if not unusable[err.reason] then\n"
    "    assert(err.code == status, 'the error code is not the status')\n"
    "    assert(type(err.reason) == 'string' and err.reason ~= '', 'no reason')\n"
    "    assert(type(err.message) == 'string' and err.message ~= '', 'no message')\n"
    "    assert(err.details == nil or type(err.details) == 'table', 'details is not a table')\n"
    "  end\n"
    "  assert(type(tostring(err)) == 'string')\n"
    "end\n"
    "local st, body, headers = client:request{method = 'GET', path = '/x'}\n"
    "if st then\n"
    "  assert(st == status, 'request: another status')\n"
    "  assert(body ~= nil, 'request: no body')\n"
    "  for k, v in pairs(headers) do\n"
    "    assert(type(k) == 'string' and type(v) == 'string', 'request: a header is not a string')\n"
    "  end\n"
    "else\n"
    "  assert(type(body) == 'table' and unusable[body.reason], 'request: not a transport error')\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int checks = LUA_NOREF;
	lua_State *L = fuzz_state();
	if (checks == LUA_NOREF) {
		if (luaL_loadbufferx(L, check_code, sizeof check_code - 1, "=checks", "t") != LUA_OK)
			fuzz_fail("checks: %s", lua_tostring(L, -1));
		checks = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	set_response(data, size);
	fuzz_begin();
	lua_rawgeti(L, LUA_REGISTRYINDEX, checks);
	lua_pushinteger(L, statuses[size ? data[0] % (sizeof statuses / sizeof statuses[0]) : 0]);
	int status = fuzz_pcall(L, 1, 0);
	if (status != LUA_OK && !fuzz_is_memory_error(L, status))
		fuzz_fail("%s", lua_tostring(L, -1));
	fuzz_end();
	return 0;
}
