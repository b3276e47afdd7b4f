/*
 * k8s_watch.h: WATCH streams of a k8s client (k8s_watch.c): long-lived
 * requests whose answer is a stream of JSON lines, driven together over
 * one curl multi handle so that a controller waits on all of them (and on
 * its own descriptors) at once. Above k8s_transfer (a watch's request is
 * prepared like any other: credentials, TLS, proxy), beside k8s_map (it
 * uses none of it), below the Lua binding (k8s.c).
 */
#ifndef K8S_WATCH_H
#define K8S_WATCH_H

#include "k8s_transfer.h"

struct k8s_watchset;

/* One watch: its own transfer; x.body holds what arrived and is unread. */
struct k8s_watch {
	struct k8s_xfer x;
	struct k8s_watchset *set;   /* NULL: not in flight (never started, ended or detached) */
	struct k8s_watch *next, *prev;
	size_t start;               /* offset in x.body of the first unread byte */
	size_t tail;                /* bytes after the last newline received */
	size_t max_event;           /* an event line longer than this ends the watch */
	long status;                /* the HTTP status, once known */
	int done;                   /* the transfer is over (result, status) */
	int paused;                 /* the unread bytes are at their cap: curl holds the rest */
	int too_big;                /* an event was longer than max_event */
	CURLcode result;
};

/* The watches of a client. */
struct k8s_watchset {
	CURLM *multi;               /* made with the first watch */
	struct k8s_watch *head;     /* those in flight */
	char *msg;                  /* the client's message buffer (k8s_util.h) */
};

/* Starts w (zeroed, or stopped) on url through c: prepared as any request
 * (k8s_call_prepare), then streaming into w. timeout_ms: curl's limit on
 * the whole transfer (0: none). Returns 0, or -1 with c->msg and
 * call->reason set. */
int k8s_watch_start(lua_State *L, struct k8s_conn *c, struct k8s_watchset *s,
                    struct k8s_watch *w, struct k8s_call *call, long timeout_ms);
/* The next complete event line of w (without its newline), or NULL.
 * Valid until k8s_watch_consume. */
const char *k8s_watch_line(const struct k8s_watch *w, size_t *len);
/* Marks the line of len bytes k8s_watch_line gave as read. */
void k8s_watch_consume(struct k8s_watch *w, size_t len);
/* Drives every watch of s: waits at most timeout_ms (less when a watch
 * has something unread) for data on them or for one of the extra
 * descriptors, then reads what came. Returns 0, or -1 (s->msg). */
int k8s_watchset_wait(struct k8s_watchset *s, long timeout_ms, struct curl_waitfd *extra,
                      unsigned nextra);
/* Ends w's transfer (if any) and frees what it holds; safe to call again. */
void k8s_watch_stop(struct k8s_watch *w);
/* Stops every watch of s and frees the multi handle. */
void k8s_watchset_free(struct k8s_watchset *s);

#endif
