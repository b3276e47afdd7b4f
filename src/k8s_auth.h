/*
 * k8s_auth.h: a k8s client's credentials (k8s_auth.c), filled by
 * kubeconfig.c and used by k8s_transfer.c at request time. Lowest layer
 * but k8s_util (k8s_util.h).
 */
#ifndef K8S_AUTH_H
#define K8S_AUTH_H

#include <curl/curl.h>

#include "k8s_util.h"
#include "xcsreg.h"

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

/* A client's credentials (all registered with log_add_secret); the client
 * owns the strings, k8s_creds_free frees them. */
struct k8s_creds {
	char *token;              /* kubeconfig token */
	char *token_file;         /* tokenFile or the in-cluster token: wins over token */
	char *file_token;         /* its last good contents */
	double file_token_at;     /* when they were read (monotonic seconds) */
	char *basic;              /* "Basic base64(user:pass)" */
	char *cert, *key;         /* client certificate and key (PEM) */
	size_t cert_len, key_len;
	struct k8s_exec *exec;
	char *msg;                /* the client's message buffer (k8s_util.h) */
};

/* Loads the token file now (the configuration must name a readable one). */
/* warn: secret_file.c's SECRET_WARN_* flags for this first read. */
#define K8S_MAX_TOKEN_FILE ((size_t)16 << 20)
int k8s_auth_load_token_file(struct k8s_creds *c, int warn);
/* Makes the credentials current before a request: re-reads a token file
 * older than a minute, runs the exec plugin when it has no valid answer.
 * Returns 0, or -1 with c->msg set. */
int k8s_auth_ready(lua_State *L, struct k8s_creds *c);
/* After a 401: forgets cached credentials and gets fresh ones. Returns 1 if
 * they changed (the request is worth sending again), 0 if not, -1 on error. */
int k8s_auth_renew(lua_State *L, struct k8s_creds *c);
/* Appends the Authorization header, if any, to *headers. Returns 0 or -1 (memory). */
int k8s_auth_header(struct k8s_creds *c, struct curl_slist **headers);
/* The client certificate and key to present, if any (exec answer first). */
void k8s_auth_cert(const struct k8s_creds *c, const char **cert, size_t *cert_len,
                   const char **key, size_t *key_len);
void k8s_exec_free(struct k8s_exec *e);
/* Wipes and frees everything c holds (not c itself, nor c->msg); safe to call again. */
void k8s_creds_free(struct k8s_creds *c);

#endif
