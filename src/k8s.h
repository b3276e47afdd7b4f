/*
 * k8s.h: what the three files of the k8s module share.
 *
 *   k8s.c           the Lua module: clients, requests, errors
 *   k8s_transfer.c  sending a request, judging the answer, retrying
 *   k8s_map.c       client:map, requests from coroutines over the curl
 *                   multi interface, many in flight at once
 *   kubeconfig.c    where a client's configuration comes from (kubeconfig
 *                   files, in-cluster service account), into struct k8s_client
 *   k8s_auth.c      credentials at request time (token file, exec plugin)
 *
 * Everything C-owned hangs off the client userdata, which is allocated before
 * any of it is acquired and frees all of it in its __gc/__close: a Lua error
 * anywhere (out of memory included) leaks nothing. Functions that fail return
 * -1 after writing a message for the user to c->msg; nothing secret goes there.
 */
#ifndef K8S_H
#define K8S_H

#include <curl/curl.h>

#include "xcsreg.h"

/* A growing byte buffer, always NUL-terminated once data != NULL. */
struct k8s_buf {
	char *data;
	size_t len, cap;
};

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
	int oom;                       /* a callback could not store what it got */
	char errbuf[CURL_ERROR_SIZE];
};

/* An exec credential plugin (client.authentication.k8s.io) and its last answer. */
struct k8s_exec {
	char **argv;              /* command and args, NULL-terminated */
	char **env;               /* "NAME=VALUE" added to ours, KUBERNETES_EXEC_INFO last */
	char *command;            /* as written in the kubeconfig, for messages */
	char *api_version;
	char *install_hint;
	char *token;              /* the answer: a bearer token ... */
	char *cert, *key;         /* ... and/or a client certificate (PEM) */
	size_t cert_len, key_len;
	double expiry;            /* time(2) seconds; 0: valid until a 401 */
	int valid;
	struct proc_result out;   /* the plugin's output while it is decoded */
};

struct k8s_task; /* a coroutine of client:map (k8s_map.c) */
#define K8S_MAX_CONCURRENCY 100

struct k8s_client {
	struct k8s_xfer x;        /* blocking requests */
	CURLSH *share;            /* connections, TLS sessions and DNS of every handle */

	/* client:map (k8s_map.c); the tasks are allocated before their handles */
	CURLM *multi;
	struct k8s_task *tasks[K8S_MAX_CONCURRENCY];
	int ntasks;               /* tasks made so far */
	int concurrency;          /* coroutines of a map, unless it says otherwise */
	int limit;                /* transfers in flight allowed now (halved on 429) */
	int inflight;             /* transfers in the multi handle */
	int mapping;              /* a map is running: closing is deferred to its end */
	int closed;               /* closed by the script (resources may live on until then) */
	unsigned long long task_seq;
	double not_before;        /* monotonic: no attempt starts earlier (429 backoff) */
	double cut_at;            /* when limit was last halved */
	unsigned long cred_gen;   /* bumped when a 401 brought fresh credentials */

	/* where to connect */
	char *server;             /* as configured, without a trailing '/' */
	char *url_base;           /* what request URLs start with (tls-server-name applied) */
	char *host_header;        /* "Host: ..." when url_base names another host */
	char *context, *namespace;
	char *ca;                 /* CA certificates (PEM) replacing the system ones */
	size_t ca_len;
	int insecure;             /* insecure-skip-tls-verify */
	char *proxy;              /* proxy-url in curl's spelling */
	struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO list (tls-server-name) */
	int no_compression;

	/* credentials (all registered with log_add_secret) */
	char *token;              /* kubeconfig token */
	char *token_file;         /* tokenFile or the in-cluster token: wins over token */
	char *file_token;         /* its last good contents */
	double file_token_at;     /* when they were read (monotonic seconds) */
	char *basic;              /* "Basic base64(user:pass)" */
	char *cert, *key;         /* client certificate and key (PEM) */
	size_t cert_len, key_len;
	struct k8s_exec *exec;

	/* options */
	long connect_timeout_ms, request_timeout_ms;
	size_t max_response_bytes;
	int max_retries;
	double retry_max_time;
	char *user_agent;

	/* counters for client:stats() */
	long long requests, connections, retries;
	unsigned long long rng;   /* backoff jitter */

	char *scratch;            /* a file being decoded */
	char msg[2048];           /* the last error, for the user */
};

/* What k8s.client's options say about where the configuration comes from. */
struct k8s_options {
	const char *kubeconfig, *context, *namespace, *in_cluster_dir;
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

/* What a request function pushes once its call is over: ok is 0 when an
 * answer came (in x, described by call->a), -1 on failure (c->msg,
 * call->reason). Returns the number of results. */
typedef int (*k8s_finish)(lua_State *L, struct k8s_client *c, const struct k8s_call *call,
                          const struct k8s_xfer *x, int ok);

/* ---- k8s.c ---- */
/* Frees everything c holds but the userdata itself; safe to call again.
 * No map may be running (its frames point into c). */
void k8s_client_free(struct k8s_client *c);
/* Sets c->msg like printf and returns -1. */
int k8s_fail(struct k8s_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* malloc'd copy of n bytes plus a NUL, or NULL. */
char *k8s_memdup(const char *s, size_t n);
/* Zero and free memory that held a secret (len bytes, or a string); *p = NULL. */
void k8s_wipe(char **p, size_t len);
void k8s_wipe_str(char **p);
/* Reads a whole file into a malloc'd, NUL-terminated buffer; returns 0, or
 * -1 with c->msg = "<what> <path>: <strerror>". */
int k8s_read_file(struct k8s_client *c, const char *what, const char *path,
                  char **data, size_t *len);
double k8s_monotonic(void);
/* Appends n bytes; returns 0, or -1 when memory runs out (b unchanged). */
int k8s_buf_append(struct k8s_buf *b, const char *p, size_t n);
/* Makes room for cap bytes in all; returns 0, or -1 (b unchanged). */
int k8s_buf_reserve(struct k8s_buf *b, size_t cap);
/* Wipes and frees x's body buffer when large: a transfer's buffers are
 * reused by its next request, but a big answer (a LIST of the cluster's
 * Secrets) is not kept once its caller has it. */
void k8s_xfer_trim(struct k8s_xfer *x);

/* ---- k8s_transfer.c ---- */
/* A call's steps, for the blocking loop below and for k8s_map.c. Lua runs
 * only in prepare (credentials) and judge (renewal after a 401). */
void k8s_call_init(struct k8s_client *c, struct k8s_call *call, const struct k8s_req *req);
/* Makes the credentials current and sets x up for the next attempt
 * (pooled: x is driven by c->multi). Returns 0, or -1 with c->msg and
 * call->reason set. */
int k8s_call_prepare(lua_State *L, struct k8s_client *c, struct k8s_call *call,
                     struct k8s_xfer *x, int pooled);
/* Records in call->a how the attempt on x ended (rc: curl's result). */
void k8s_call_attempted(struct k8s_client *c, struct k8s_call *call, const struct k8s_xfer *x,
                        CURLcode rc);
enum { K8S_DONE, K8S_FAILED, K8S_RETRY };
/* What to do after an attempt: K8S_DONE (an answer worth returning, any
 * HTTP status), K8S_FAILED (c->msg and call->reason set) or K8S_RETRY
 * (call->wake_at set; a 429 also delays the whole client, c->not_before). */
int k8s_call_judge(lua_State *L, struct k8s_client *c, struct k8s_call *call,
                   const struct k8s_xfer *x);
/* Runs the call on c->x, blocking, retrying as the contract says. Returns
 * 0 (answer in c->x) or -1 (c->msg, call->reason). */
int k8s_run_request(lua_State *L, struct k8s_client *c, struct k8s_call *call);
/* Sets up the share handle every transfer of c uses. 0, or -1 (memory). */
int k8s_share_init(struct k8s_client *c);
/* The value of the last header called name (lower case, with its ':') in
 * head, trimmed, and its length; NULL if absent. Points into head. */
const char *k8s_header_value(const struct k8s_buf *head, const char *name, size_t *len);

/* ---- k8s_map.c ---- */
/* client:map(items, fn, concurrency): runs fn(items[i]) in coroutines
 * (items at index items, fn at fn), pushes the results or raises. */
int k8s_map_run(lua_State *L, struct k8s_client *c, int items, int fn, int concurrency);
/* The map task L runs as, if L is a coroutine of a map of c and may yield. */
struct k8s_task *k8s_map_task(lua_State *L, struct k8s_client *c);
/* Sends call from task t's coroutine: yields until it is over, then
 * returns finish's results (the client must be at stack index 1). */
int k8s_map_request(lua_State *L, struct k8s_client *c, struct k8s_task *t,
                    const struct k8s_req *req, k8s_finish finish);
/* Frees what the map machinery holds (no map may be running). */
void k8s_map_free(struct k8s_client *c);

/* ---- kubeconfig.c ---- */
/* Fills c's connection settings and credentials from the configuration o
 * points at. Returns 0, or -1 with c->msg set. May raise on memory errors;
 * keeps the Lua stack balanced. */
int k8s_configure(lua_State *L, struct k8s_client *c, const struct k8s_options *o);

/* ---- k8s_auth.c ---- */
/* Loads the token file now (the configuration must name a readable one);
 * warn: secret_file.c's SECRET_WARN_* flags for this first read. */
#define K8S_MAX_TOKEN_FILE ((size_t)16 << 20)
int k8s_auth_load_token_file(struct k8s_client *c, int warn);
/* Makes the credentials current before a request: re-reads a token file
 * older than a minute, runs the exec plugin when it has no valid answer.
 * Returns 0, or -1 with c->msg set. */
int k8s_auth_ready(lua_State *L, struct k8s_client *c);
/* After a 401: forgets cached credentials and gets fresh ones. Returns 1 if
 * they changed (the request is worth sending again), 0 if not, -1 on error. */
int k8s_auth_renew(lua_State *L, struct k8s_client *c);
/* Appends the Authorization header, if any, to *headers. Returns 0 or -1 (memory). */
int k8s_auth_header(struct k8s_client *c, struct curl_slist **headers);
/* The client certificate and key to present, if any (exec answer first). */
void k8s_auth_cert(const struct k8s_client *c, const char **cert, size_t *cert_len,
                   const char **key, size_t *key_len);
void k8s_exec_free(struct k8s_exec *e);

#endif
