/*
 * k8s_map.h: client:map, a client's requests from coroutines, many in
 * flight over the curl multi interface (k8s_map.c). Above k8s_transfer,
 * below the Lua binding (k8s.c).
 */
#ifndef K8S_MAP_H
#define K8S_MAP_H

#include "k8s_transfer.h"

struct k8s_task; /* a coroutine of client:map */
#define K8S_MAX_CONCURRENCY 100

/* A client's map machinery; the tasks are allocated before their handles.
 * The request functions have their client at stack index 1: the client's
 * userdata must begin with its struct k8s_pool (k8s.h asserts it). */
struct k8s_pool {
	struct k8s_conn *conn;    /* the connection every task's transfer goes through */
	CURLM *multi;
	struct k8s_task *tasks[K8S_MAX_CONCURRENCY];
	int ntasks;               /* tasks made so far */
	int inflight;             /* transfers in the multi handle */
	int mapping;              /* a map is running: closing is deferred to its end */
	int closed;               /* closed by the script (resources may live on until then) */
	unsigned long long task_seq;
	char *msg;                /* the client's message buffer (k8s_util.h) */
};

/* What a request function pushes once its call is over: ok is 0 when an
 * answer came (in x, described by call->a), -1 on failure (the message,
 * call->reason). Returns the number of results. */
typedef int (*k8s_finish)(lua_State *L, struct k8s_pool *p, const struct k8s_call *call,
                          const struct k8s_xfer *x, int ok);

/* client:map(items, fn, concurrency): runs fn(items[i]) in coroutines
 * (items at index items, fn at fn), pushes the results or raises. When the
 * script closed the client meanwhile (p->closed), the caller frees it once
 * this returns or raises (p->mapping is 0 by then). */
int k8s_map_run(lua_State *L, struct k8s_pool *p, int items, int fn, int concurrency);
/* The map task L runs as, if L is a coroutine of a map of p and may yield. */
struct k8s_task *k8s_map_task(lua_State *L, struct k8s_pool *p);
/* Sends call from task t's coroutine: yields until it is over, then
 * returns finish's results (the client must be at stack index 1). */
int k8s_map_request(lua_State *L, struct k8s_pool *p, struct k8s_task *t,
                    const struct k8s_req *req, k8s_finish finish);
/* Frees what the map machinery holds (no map may be running). */
void k8s_map_free(struct k8s_pool *p);

#endif
