/*
 * kubeconfig.h: where a k8s client connects, from kubeconfig files or the
 * in-cluster service account (kubeconfig.c). Above k8s_auth: configuring
 * fills the client's credentials (and loads a token file once, so that a
 * client with an unreadable one is refused when it is made).
 */
#ifndef KUBECONFIG_H
#define KUBECONFIG_H

#include <curl/curl.h>

#include "k8s_auth.h"

/* Where to connect; the client owns the strings, k8s_config_free frees them. */
struct k8s_config {
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
	char *scratch;            /* a file being decoded */
	struct k8s_creds *creds;  /* what the user entry says, filled in here */
	char *msg;                /* the client's message buffer (k8s_util.h) */
};

/* What k8s.client's options say about where the configuration comes from. */
struct k8s_options {
	const char *kubeconfig, *context, *namespace, *in_cluster_dir;
};

/* Fills c (and c->creds) from the configuration o points at. Returns 0, or
 * -1 with c->msg set. May raise on memory errors; keeps the Lua stack
 * balanced. */
int k8s_configure(lua_State *L, struct k8s_config *c, const struct k8s_options *o);
/* Frees everything c holds (not c itself, nor c->creds); safe to call again. */
void k8s_config_free(struct k8s_config *c);

#endif
