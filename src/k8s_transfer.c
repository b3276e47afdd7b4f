/*
 * k8s_transfer.c: sending a k8s client's request and judging the answer.
 *
 * A request (struct k8s_call) goes through attempts, each in three steps
 * kept apart so that the blocking loop here (k8s_run_request) and the
 * coroutines of client:map (k8s_map.c, over the curl multi interface) share
 * them: k8s_call_prepare sets a handle up from scratch, the caller performs
 * it, k8s_call_attempted and k8s_call_judge say what happened and what to do
 * next. libcurl's callbacks only append to C buffers in the transfer; no Lua
 * function runs while a transfer is in progress (Lua runs only between
 * attempts, when credentials are renewed).
 *
 * Retries follow client-go: 429, and 5xx with a Retry-After header, are
 * retried for every method (the server did not act on them); transport
 * failures only when the request cannot have reached the server, or for
 * GET and HEAD (and requests marked idempotent). Waits are capped
 * exponential backoff with jitter, at least Retry-After, bounded in number
 * and total time. A 429 says the server as a whole is busy: it delays every
 * attempt of the client (c->not_before), and halves the transfers a map may
 * have in flight (c->limit), once per round trip so that one burst of 429s
 * halves it once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "k8s_transfer.h"

#define BACKOFF_BASE 0.2      /* seconds: the first retry waits 0.1-0.2 s */
#define BACKOFF_CAP 10.0      /* the exponential part stops growing here */

/* ---- one transfer: prepare, perform ---- */

/* The body is refused here, as it arrives (after decompression, so a small
 * compressed answer cannot expand past the cap either): what was received
 * is wiped and freed at once, and curl ends the transfer. */
static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct k8s_xfer *x = ud;
	if (size * n > x->max_body - x->body.len) {
		k8s_wipe(&x->body.data, x->body.len);
		x->body.len = x->body.cap = 0;
		x->too_big = 1;
		return 0;
	}
	/* growing by doubling would overshoot the cap: grow to the cap at once */
	struct k8s_buf *b = &x->body;
	if ((b->len + size * n + 1 > b->cap && b->cap > x->max_body / 2 &&
	     k8s_buf_reserve(b, x->max_body + 1) != 0) ||
	    k8s_buf_append(b, p, size * n) != 0) {
		x->oom = 1;
		return 0;
	}
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct k8s_xfer *x = ud;
	/* Each response (a 100 Continue, a proxy's answer to CONNECT, the real
	 * one) starts with its status line: keep only the last one's headers. */
	if (size * n >= 5 && memcmp(p, "HTTP/", 5) == 0)
		x->head.len = 0;
	if (k8s_buf_append(&x->head, p, size * n) != 0) {
		x->oom = 1;
		return 0;
	}
	return size * n;
}

static int add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *l = curl_slist_append(*list, h);
	if (!l)
		return -1;
	*list = l;
	return 0;
}

#define SETOPT(h, opt, val)                                   \
	do {                                                      \
		if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK)  \
			return -1;                                        \
	} while (0)

/* Sets x up for req from scratch (a handle can serve any client and request).
 * Returns 0, or -1 when memory ran out. */
static int prepare_transfer(struct k8s_conn *c, struct k8s_xfer *x, const struct k8s_req *req,
                            int pooled)
{
	CURL *h = x->curl;
	curl_easy_reset(h); /* keeps the connection cache: the connection is reused */
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	x->body.len = x->head.len = 0;
	x->max_body = c->max_response_bytes;
	x->oom = x->too_big = x->cut_by_deadline = 0;
	x->errbuf[0] = '\0';

	if (add_header(&x->headers, "Accept: application/json") != 0 ||
	    add_header(&x->headers, "Expect:") != 0 || /* no 100-continue round trip */
	    (c->cfg->host_header && add_header(&x->headers, c->cfg->host_header) != 0) ||
	    k8s_auth_header(c->creds, &x->headers) != 0)
		return -1;
	if (req->body) {
		char *ct = NULL;
		if (asprintf(&ct, "Content-Type: %s", req->content_type) < 0)
			return -1;
		int rc = add_header(&x->headers, ct);
		free(ct);
		if (rc != 0)
			return -1;
	}

	SETOPT(h, CURLOPT_URL, req->url);
	SETOPT(h, CURLOPT_HTTPHEADER, x->headers);
	SETOPT(h, CURLOPT_ERRORBUFFER, x->errbuf);
	SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(h, CURLOPT_WRITEDATA, x);
	SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(h, CURLOPT_HEADERDATA, x);
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	long timeout_ms = c->request_timeout_ms;
	if (c->deadline > 0) { /* no request outlives the client's deadline */
		double left_ms = (c->deadline - k8s_monotonic()) * 1000;
		x->cut_by_deadline = left_ms < (double)timeout_ms;
		if (x->cut_by_deadline)
			timeout_ms = left_ms > 1 ? (long)left_ms : 1;
	}
	SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	/* a Content-Length past the cap is refused before any of the body is read */
	SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response_bytes);
	SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(h, CURLOPT_USERAGENT, c->user_agent);
	SETOPT(h, CURLOPT_SHARE, c->share);
	if (pooled) /* wait for a connection that may multiplex rather than open one */
		SETOPT(h, CURLOPT_PIPEWAIT, 1L);
	else /* a blocking perform must not trim the pool a map has opened */
		SETOPT(h, CURLOPT_MAXCONNECTS, (long)c->pooled_handles + 1);
	if (!c->cfg->no_compression)
		SETOPT(h, CURLOPT_ACCEPT_ENCODING, "");
	if (c->cfg->proxy) {
		SETOPT(h, CURLOPT_PROXY, c->cfg->proxy);
		/* "" : every host, whatever NO_PROXY says (client-go's http.ProxyURL) */
		SETOPT(h, CURLOPT_NOPROXY, "");
	}
	if (c->cfg->connect_to)
		SETOPT(h, CURLOPT_CONNECT_TO, c->cfg->connect_to);

	if (c->cfg->insecure) {
		SETOPT(h, CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->cfg->ca) {
		/* the configured CA replaces the system's, as in client-go */
		struct curl_blob ca = {c->cfg->ca, c->cfg->ca_len, CURL_BLOB_COPY};
		SETOPT(h, CURLOPT_CAINFO_BLOB, &ca);
		SETOPT(h, CURLOPT_CAINFO, (char *)NULL);
		SETOPT(h, CURLOPT_CAPATH, (char *)NULL);
	}
	const char *cert, *key;
	size_t cert_len, key_len;
	k8s_auth_cert(c->creds, &cert, &cert_len, &key, &key_len);
	if (cert) {
		struct curl_blob cb = {(void *)cert, cert_len, CURL_BLOB_COPY};
		struct curl_blob kb = {(void *)key, key_len, CURL_BLOB_COPY};
		SETOPT(h, CURLOPT_SSLCERTTYPE, "PEM");
		SETOPT(h, CURLOPT_SSLCERT_BLOB, &cb);
		SETOPT(h, CURLOPT_SSLKEYTYPE, "PEM");
		SETOPT(h, CURLOPT_SSLKEY_BLOB, &kb);
	}

	if (strcmp(req->method, "HEAD") == 0)
		SETOPT(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "GET") != 0)
		SETOPT(h, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->body) {
		SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SETOPT(h, CURLOPT_POSTFIELDS, req->body);
	}
	return 0;
}

#define KEEP_BUFFER ((size_t)64 * 1024)

void k8s_xfer_trim(struct k8s_xfer *x)
{
	if (x->body.cap > KEEP_BUFFER) {
		k8s_wipe(&x->body.data, x->body.cap); /* may hold Secret data */
		x->body.len = x->body.cap = 0;
	}
}

const char *k8s_header_value(const struct k8s_buf *head, const char *name, size_t *len)
{
	const char *found = NULL;
	size_t nlen = strlen(name);
	if (!head->data)
		return NULL;
	for (const char *p = head->data, *end = p + head->len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		if ((size_t)(next - p) > nlen && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen, *ve = eol ? eol : end;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			found = v;
			*len = (size_t)(ve - v);
		}
		p = next;
	}
	return found;
}

/* Retry-After in seconds, as client-go reads it (an integer); -1 if none. */
static double retry_after(const struct k8s_buf *head)
{
	size_t len;
	const char *v = k8s_header_value(head, "retry-after:", &len);
	if (!v || len == 0 || len > 9)
		return -1;
	long s = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		s = s * 10 + (v[i] - '0');
	}
	return (double)s;
}

void k8s_call_attempted(struct k8s_conn *c, struct k8s_call *call, const struct k8s_xfer *x,
                        CURLcode rc)
{
	struct k8s_attempt *a = &call->a;
	long connects = 0, status = 0, sent = 0;
	curl_easy_getinfo(x->curl, CURLINFO_NUM_CONNECTS, &connects);
	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	/* bytes of request headers written: 0 means the server cannot have seen it */
	curl_easy_getinfo(x->curl, CURLINFO_REQUEST_SIZE, &sent);
	c->connections += connects;
	a->code = x->oom ? CURLE_OUT_OF_MEMORY : x->too_big ? CURLE_FILESIZE_EXCEEDED : rc;
	a->status = a->code == CURLE_OK ? status : 0;
	a->sent = sent > 0;
	a->retry_after = a->status ? retry_after(&x->head) : -1;
}

/* ---- judging an attempt ---- */

static int is_certificate_problem(CURLcode code)
{
	return code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
	       code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_ISSUER_ERROR ||
	       code == CURLE_SSL_PINNEDPUBKEYNOTMATCH || code == CURLE_SSL_INVALIDCERTSTATUS;
}

/* Failures that may go away by themselves (a certificate problem will not). */
static int is_transient(CURLcode code)
{
	switch (code) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_PROXY:
		return 1;
	default:
		return 0;
	}
}

/* A number in [0, 1) from a xorshift64* generator (jitter needs no more). */
static double next_random(struct k8s_conn *c)
{
	unsigned long long x = c->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return (double)((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* Capped exponential backoff with "equal jitter": half of it fixed, half random. */
static double backoff(struct k8s_conn *c, int attempt)
{
	double d = BACKOFF_BASE;
	for (int i = 0; i < attempt && d < BACKOFF_CAP; i++)
		d *= 2;
	if (d > BACKOFF_CAP)
		d = BACKOFF_CAP;
	return d / 2 + d / 2 * next_random(c);
}

/* Seconds to wait before sending the call again after its last attempt,
 * or -1 to stop. */
static double retry_delay(struct k8s_conn *c, const struct k8s_call *call, double now)
{
	const struct k8s_attempt *a = &call->a;
	int again;
	if (a->status == 0)
		again = is_transient(a->code) && (!a->sent || call->req.idempotent);
	else /* as client-go: the server did not act on these */
		again = a->status == 429 || (a->status >= 500 && a->retry_after >= 0);
	if (!again || call->attempt >= c->max_retries)
		return -1;
	double d = backoff(c, call->attempt);
	if (a->retry_after > d)
		d = a->retry_after;
	if (now - call->started + d > c->retry_max_time)
		return -1;
	if (c->deadline > 0 && now + d >= c->deadline)
		return -1;
	return d;
}

static void sleep_until(double when)
{
	double s = when - k8s_monotonic();
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* c->msg for a transfer that got no (usable) response. */
static void transport_message(struct k8s_conn *c, const struct k8s_xfer *x,
                              const struct k8s_attempt *a)
{
	if (a->code == CURLE_FILESIZE_EXCEEDED) {
		k8s_fail(c, "%s: the response is larger than max_response_bytes (%zu bytes)", c->cfg->server,
		         c->max_response_bytes);
		return;
	}
	const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(a->code);
	if (a->code == CURLE_OUT_OF_MEMORY)
		why = "out of memory receiving the response";
	k8s_fail(c, "%s: %s%s", c->cfg->server, why,
	         is_certificate_problem(a->code) && !strstr(why, "certificate")
	             ? " (the server's certificate could not be verified)" : "");
}

void k8s_call_init(struct k8s_conn *c, struct k8s_call *call, const struct k8s_req *req)
{
	memset(call, 0, sizeof *call);
	call->req = *req;
	call->started = call->wake_at = k8s_monotonic();
	c->requests++;
}

int k8s_call_prepare(lua_State *L, struct k8s_conn *c, struct k8s_call *call,
                     struct k8s_xfer *x, int pooled)
{
	int sig = proc_interrupted();
	if (sig) {
		/* the run is ending: nothing new goes out (what is in flight finishes) */
		k8s_fail(c, "%s %s: not sent: the run was interrupted by %s", call->req.method, call->req.url,
		         proc_signal_name(sig));
		call->reason = "Interrupted";
		return -1;
	}
	if (c->deadline > 0 && k8s_monotonic() >= c->deadline) {
		k8s_fail(c, "%s %s: not sent: the client's deadline has passed", call->req.method, call->req.url);
		call->reason = "Deadline";
		return -1;
	}
	if (k8s_auth_ready(L, c->creds) != 0) {
		call->reason = "Config";
		return -1;
	}
	if (prepare_transfer(c, x, &call->req, pooled) != 0) {
		k8s_fail(c, "%s: out of memory preparing the request", c->cfg->server);
		call->reason = "Transport";
		return -1;
	}
	call->cred_gen = c->cred_gen;
	call->sent_at = k8s_monotonic();
	return 0;
}

int k8s_call_judge(lua_State *L, struct k8s_conn *c, struct k8s_call *call,
                   const struct k8s_xfer *x)
{
	const struct k8s_attempt *a = &call->a;
	const struct k8s_req *req = &call->req;
	double now = k8s_monotonic();
	log_msg(LOG_TRACE, "%s %s -> %ld", req->method, req->url, a->status);
	if (a->status == 401 && !call->renewed) {
		/* The server rejected the credential before doing anything: if a
		 * fresher one can be had (or another request has had one since
		 * this one was sent), the request is safe to repeat. */
		call->renewed = 1;
		int r = call->cred_gen != c->cred_gen ? 1 : k8s_auth_renew(L, c->creds);
		if (r < 0) {
			call->reason = "Config";
			return K8S_FAILED;
		}
		if (r > 0) {
			if (call->cred_gen == c->cred_gen)
				c->cred_gen++;
			call->retries++;
			c->retries++;
			call->wake_at = now;
			return K8S_RETRY;
		}
	}
	double d = retry_delay(c, call, now);
	if (d < 0) {
		/* curl's timer may fire a little before our clock says the deadline is past */
		if (a->status == 0 && c->deadline > 0 &&
		    (now >= c->deadline || (x->cut_by_deadline && a->code == CURLE_OPERATION_TIMEDOUT))) {
			k8s_fail(c, "%s %s: not finished: the client's deadline has passed", req->method, req->url);
			call->reason = "Deadline";
			return K8S_FAILED;
		}
		if (a->status == 0) {
			transport_message(c, x, a);
			call->reason = a->code == CURLE_FILESIZE_EXCEEDED ? "InvalidResponse" : "Transport";
			return K8S_FAILED;
		}
		return K8S_DONE;
	}
	if (a->status)
		log_msg(LOG_DEBUG, "%s %s: HTTP %ld; retrying in %.1f s", req->method, req->url,
		        a->status, d);
	else
		log_msg(LOG_DEBUG, "%s %s: %s; retrying in %.1f s", req->method, req->url,
		        x->errbuf[0] ? x->errbuf : curl_easy_strerror(a->code), d);
	if (a->status == 429) {
		if (now + d > c->not_before)
			c->not_before = now + d;
		if (call->sent_at >= c->cut_at) {
			c->limit = c->limit > 1 ? c->limit / 2 : 1;
			c->cut_at = now;
		}
	}
	call->wake_at = now + d;
	call->attempt++;
	call->retries++;
	c->retries++;
	return K8S_RETRY;
}

int k8s_run_request(lua_State *L, struct k8s_conn *c, struct k8s_call *call)
{
	for (;;) {
		sleep_until(call->wake_at > c->not_before ? call->wake_at : c->not_before);
		if (k8s_call_prepare(L, c, call, &c->x, 0) != 0)
			return -1;
		k8s_call_attempted(c, call, &c->x, curl_easy_perform(c->x.curl));
		switch (k8s_call_judge(L, c, call, &c->x)) {
		case K8S_DONE:
			return 0;
		case K8S_FAILED:
			return -1;
		default:
			break;
		}
	}
}

int k8s_share_init(struct k8s_conn *c)
{
	c->share = curl_share_init();
	if (!c->share)
		return -1;
	static const curl_lock_data shared[] = {CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_SSL_SESSION,
	                                        CURL_LOCK_DATA_DNS};
	for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++)
		if (curl_share_setopt(c->share, CURLSHOPT_SHARE, shared[i]) != CURLSHE_OK)
			return -1;
	return 0;
}

void k8s_xfer_free(struct k8s_xfer *x)
{
	if (x->curl) {
		curl_easy_cleanup(x->curl);
		x->curl = NULL;
	}
	curl_slist_free_all(x->headers); /* may hold the Authorization header */
	x->headers = NULL;
	k8s_wipe(&x->body.data, x->body.cap); /* may hold Secret data */
	x->body.len = x->body.cap = 0;
	free(x->head.data);
	x->head.data = NULL;
	x->head.len = x->head.cap = 0;
}

void k8s_conn_free(struct k8s_conn *c)
{
	k8s_xfer_free(&c->x);
	if (c->share) { /* after every handle using it: closes the pooled connections */
		curl_share_cleanup(c->share);
		c->share = NULL;
	}
	free(c->user_agent);
	c->user_agent = NULL;
}
