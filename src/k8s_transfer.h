/*
 * k8s_transfer.h: one request of a k8s client through its attempts: send,
 * judge the answer, retry (k8s_transfer.c). Above kubeconfig (where to
 * connect) and k8s_auth (the credentials each attempt carries).
 */
#ifndef K8S_TRANSFER_H
#define K8S_TRANSFER_H

#include <curl/curl.h>

#include "kubeconfig.h"

/*
 * One HTTP transfer slot: a curl easy handle and what its callbacks fill.
 * A client has one for blocking requests and one per coroutine of a
 * client:map; all of them share the client's connections and TLS sessions.
 */
struct k8s_xfer {
	CURL *curl;
	struct curl_slist *headers;    /* request headers, valid until the next prepare */
	struct k8s_buf body, head;     /* response body and header lines */
	size_t max_body;               /* the body is refused past this (c->max_response_bytes) */
	int too_big;                   /* ... and was: the body buffer is already freed */
	int cut_by_deadline;           /* its timeout is what was left of the client's deadline */
	int oom;                       /* a callback could not store what it got */
	char errbuf[CURL_ERROR_SIZE];
};

/* A client's connection: its blocking handle, the pool every handle shares,
 * the options and counters of its requests, and the 429 pacer. */
struct k8s_conn {
	struct k8s_xfer x;        /* blocking requests */
	CURLSH *share;            /* connections, TLS sessions and DNS of every handle */
	const struct k8s_config *cfg; /* where to connect */
	struct k8s_creds *creds;  /* what to present */

	/* options */
	long connect_timeout_ms, request_timeout_ms;
	size_t max_response_bytes;
	int max_retries;
	double retry_max_time;
	double deadline; /* k8s_monotonic() past which nothing is sent or retried; 0: none */
	char *user_agent;

	/* a 429 says the server is busy: every attempt waits, a map sends fewer */
	double not_before;        /* monotonic: no attempt starts earlier (429 backoff) */
	int limit;                /* transfers in flight a map may have now (halved on 429) */
	double cut_at;            /* when limit was last halved */
	int pooled_handles;       /* handles a map has made (k8s_map.c sets it) */
	unsigned long cred_gen;   /* bumped when a 401 brought fresh credentials */

	/* counters for client:stats() */
	long long requests, connections, retries;
	unsigned long long rng;   /* backoff jitter */
	char *msg;                /* the client's message buffer (k8s_util.h) */
};

/* What a request is; the strings stay on the Lua stack while it runs. */
struct k8s_req {
	const char *method;
	const char *url;
	const char *body;          /* NULL: no body */
	size_t body_len;
	const char *content_type;
	int idempotent;            /* may be sent again once it may have reached the server */
};

/* How one attempt ended. */
struct k8s_attempt {
	CURLcode code;
	long status;               /* the HTTP status; 0 when no response arrived */
	int sent;                  /* the request may have reached the server */
	double retry_after;        /* seconds; < 0: no usable Retry-After header */
};

/* One request through its attempts, blocking or from a map's coroutine. */
struct k8s_call {
	struct k8s_req req;
	struct k8s_attempt a;      /* the last attempt */
	double started;            /* monotonic */
	double wake_at;            /* the next attempt not before this */
	double sent_at;            /* when the last attempt was sent */
	int attempt;               /* retries after a failed attempt, for backoff */
	int renewed;               /* a 401 has renewed the credentials once */
	int retries;               /* extra attempts, for err.retries */
	unsigned long cred_gen;    /* c->cred_gen when the last attempt was sent */
	const char *reason;        /* on failure: "Transport", "Config" or "InvalidResponse" */
};

/* A call's steps, for the blocking loop below and for k8s_map.c. Lua runs
 * only in prepare (credentials) and judge (renewal after a 401). */
void k8s_call_init(struct k8s_conn *c, struct k8s_call *call, const struct k8s_req *req);
/* Makes the credentials current and sets x up for the next attempt
 * (pooled: x is driven by a map's multi handle). Returns 0, or -1 with
 * c->msg and call->reason set. */
int k8s_call_prepare(lua_State *L, struct k8s_conn *c, struct k8s_call *call,
                     struct k8s_xfer *x, int pooled);
/* Records in call->a how the attempt on x ended (rc: curl's result). */
void k8s_call_attempted(struct k8s_conn *c, struct k8s_call *call, const struct k8s_xfer *x,
                        CURLcode rc);
enum { K8S_DONE, K8S_FAILED, K8S_RETRY };
/* What to do after an attempt: K8S_DONE (an answer worth returning, any
 * HTTP status), K8S_FAILED (c->msg and call->reason set) or K8S_RETRY
 * (call->wake_at set; a 429 also delays the whole client, c->not_before). */
int k8s_call_judge(lua_State *L, struct k8s_conn *c, struct k8s_call *call,
                   const struct k8s_xfer *x);
/* Runs the call on c->x, blocking, retrying as the contract says. Returns
 * 0 (answer in c->x) or -1 (c->msg, call->reason). */
int k8s_run_request(lua_State *L, struct k8s_conn *c, struct k8s_call *call);
/* Sets up the share handle every transfer of c uses. 0, or -1 (memory). */
int k8s_share_init(struct k8s_conn *c);
/* The value of the last header called name (lower case, with its ':') in
 * head, trimmed, and its length; NULL if absent. Points into head. */
const char *k8s_header_value(const struct k8s_buf *head, const char *name, size_t *len);
/* Wipes and frees x's body buffer when large: a transfer's buffers are
 * reused by its next request, but a big answer (a LIST of the cluster's
 * Secrets) is not kept once its caller has it. */
void k8s_xfer_trim(struct k8s_xfer *x);
/* Frees x's easy handle (out of any multi handle first) and its buffers,
 * wiping what may hold Secret data or the Authorization header; safe to
 * call again. */
void k8s_xfer_free(struct k8s_xfer *x);
/* Frees the blocking handle and the share handle (after every other handle
 * using it is gone: a map's, k8s_map_free), and c's strings; safe to call again. */
void k8s_conn_free(struct k8s_conn *c);

#endif
