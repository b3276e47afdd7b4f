/*
 * k8s.h: what the three files of the k8s module share.
 *
 *   k8s.c           the Lua module: clients, requests, errors
 *   k8s_transfer.c  sending a request, judging the answer, retrying
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
 * A client has one (one kept-alive connection); a pool of them driven by the
 * curl multi interface needs nothing more per transfer.
 */
struct k8s_xfer {
	CURL *curl;
	struct curl_slist *headers;    /* request headers, valid until the next prepare */
	struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO list (tls-server-name) */
	struct k8s_buf body, head;     /* response body and header lines */
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

struct k8s_client {
	struct k8s_xfer x;

	/* where to connect */
	char *server;             /* as configured, without a trailing '/' */
	char *url_base;           /* what request URLs start with (tls-server-name applied) */
	char *host_header;        /* "Host: ..." when url_base names another host */
	char *context, *namespace;
	char *ca;                 /* CA certificates (PEM) replacing the system ones */
	size_t ca_len;
	int insecure;             /* insecure-skip-tls-verify */
	char *proxy;              /* proxy-url in curl's spelling */
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

/* ---- k8s.c ---- */
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

/* ---- k8s_transfer.c ---- */
/* Sends req until it gets an answer worth returning, retrying as the
 * contract says. Returns 0 with *a describing the final response (any HTTP
 * status; its body and headers are in c->x), or -1 with c->msg set and
 * *reason "Transport" (no response) or "Config" (credentials could not be
 * had). *retries counts the extra attempts. Lua runs only between attempts. */
int k8s_run_request(lua_State *L, struct k8s_client *c, const struct k8s_req *req,
                    struct k8s_attempt *a, int *retries, const char **reason);
/* The value of the last header called name (lower case, with its ':') in
 * head, trimmed, and its length; NULL if absent. Points into head. */
const char *k8s_header_value(const struct k8s_buf *head, const char *name, size_t *len);

/* ---- kubeconfig.c ---- */
/* Fills c's connection settings and credentials from the configuration o
 * points at. Returns 0, or -1 with c->msg set. May raise on memory errors;
 * keeps the Lua stack balanced. */
int k8s_configure(lua_State *L, struct k8s_client *c, const struct k8s_options *o);

/* ---- k8s_auth.c ---- */
/* Loads the token file now (the configuration must name a readable one). */
int k8s_auth_load_token_file(struct k8s_client *c);
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
