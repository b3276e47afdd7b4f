/*
 * k8s.h: the k8s Lua module's client (k8s.c), the top of the k8s stack:
 *
 *   k8s_util.c      buffers, wiping, files, messages            k8s_util.h
 *   k8s_auth.c      credentials at request time (token file,
 *                   exec plugin): struct k8s_creds               k8s_auth.h
 *   kubeconfig.c    where to connect (kubeconfig files, in-cluster
 *                   service account): struct k8s_config         kubeconfig.h
 *   k8s_transfer.c  sending a request, judging the answer,
 *                   retrying: struct k8s_conn                   k8s_transfer.h
 *   k8s_map.c       client:map, requests from coroutines over the
 *                   curl multi interface: struct k8s_pool       k8s_map.h
 *   k8s_watch.c     WATCH streams, waited on together with the
 *                   caller's descriptors: struct k8s_watchset  k8s_watch.h
 *   k8s.c           the Lua module: clients, requests, errors    k8s.h
 *
 * Each file includes only the headers below it and calls only into the
 * layers below it (src/layers, checked on the objects by scripts/check-layers).
 *
 * Everything C-owned hangs off the client userdata, which is allocated before
 * any of it is acquired and frees all of it in its __gc/__close: a Lua error
 * anywhere (out of memory included) leaks nothing. Functions that fail return
 * -1 after writing a message for the user to msg; nothing secret goes there.
 */
#ifndef K8S_H
#define K8S_H

#include "k8s_map.h"
#include "k8s_watch.h"

struct k8s_client {
	struct k8s_pool pool;     /* first: k8s_map.c finds it at the userdata's address */
	struct k8s_conn conn;
	struct k8s_config config;
	struct k8s_creds creds;
	struct k8s_watchset watches;
	int concurrency;          /* coroutines of a map, unless it says otherwise */
	char msg[K8S_MSG_SIZE];   /* the last error, for the user; every layer's msg */
};

#endif
