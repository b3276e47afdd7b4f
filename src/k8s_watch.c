/*
 * k8s_watch.c: WATCH streams over a client's watch multi handle.
 *
 * A watch is a GET with watch=1 whose 200 answer never ends by itself:
 * newline-delimited JSON events ({"type":...,"object":...}) until the
 * server's timeoutSeconds, a dropped connection, or an ERROR event (a 410
 * Gone once the resourceVersion was compacted). Every watch of a client is
 * in one multi handle of its own (not the client's share: a connection
 * multiplexing a watch must not be handed to the blocking handle), so
 * k8s_watchset_wait waits on all of them, and on the caller's descriptors
 * (a listening socket), with curl_multi_poll: no busy waiting.
 *
 * As everywhere in the client, libcurl's callbacks only append bytes to C
 * buffers; events become Lua values in k8s.c, one line at a time, after
 * the transfer has been driven. What is buffered is bounded: the unread
 * bytes of a watch reach at most 2 * max_event before its transfer is
 * paused (curl keeps the rest) until the script reads, and a line longer
 * than max_event ends the watch as an error, not as unbounded memory.
 * Watches carry Secret data: their buffers are wiped when freed.
 */
#include <stdlib.h>
#include <string.h>

#include "k8s_watch.h"

/* Bytes of a watch's buffer worth moving to its start before appending. */
#define COMPACT_MIN 4096

static size_t unread(const struct k8s_watch *w)
{
	return w->x.body.len - w->start;
}

static int has_line(const struct k8s_watch *w)
{
	return w->x.body.data && memchr(w->x.body.data + w->start, '\n', unread(w)) != NULL;
}

static size_t on_event_bytes(char *p, size_t size, size_t n, void *ud)
{
	struct k8s_watch *w = ud;
	struct k8s_buf *b = &w->x.body;
	size_t len = size * n;
	if (!w->status)
		curl_easy_getinfo(w->x.curl, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->start > 0 && (w->start >= COMPACT_MIN || w->start == b->len)) {
		memmove(b->data, b->data + w->start, b->len - w->start);
		b->len -= w->start;
		w->start = 0;
		b->data[b->len] = '\0';
	}
	if (b->len + len > 2 * w->max_event) {
		/* a complete line is waiting for the script: hold the rest back */
		if (has_line(w)) {
			w->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		w->too_big = 1;
		return 0;
	}
	if (k8s_buf_append(b, p, len) != 0) {
		w->x.oom = 1;
		return 0;
	}
	/* what follows the last newline is one event in the making */
	const char *nl = memrchr(p, '\n', len);
	w->tail = nl ? len - (size_t)(nl + 1 - p) : w->tail + len;
	if (w->tail > w->max_event) {
		w->too_big = 1;
		return 0;
	}
	return len;
}

int k8s_watch_start(lua_State *L, struct k8s_conn *c, struct k8s_watchset *s,
                    struct k8s_watch *w, struct k8s_call *call, long timeout_ms)
{
	if (!s->multi && !(s->multi = curl_multi_init()))
		return k8s_fail(s, "out of memory starting a watch");
	if (!w->x.curl && !(w->x.curl = curl_easy_init()))
		return k8s_fail(s, "out of memory starting a watch");
	if (k8s_call_prepare(L, c, call, &w->x, 1) != 0)
		return -1;
	CURL *h = w->x.curl;
	w->start = w->tail = 0;
	w->status = 0;
	w->done = w->paused = w->too_big = 0;
	if (curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_event_bytes) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, w) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PRIVATE, w) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SHARE, (CURLSH *)NULL) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
	    /* the stream's size is bounded per event, not as a whole */
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0) != CURLE_OK) {
		call->reason = "Transport";
		return k8s_fail(s, "out of memory starting a watch");
	}
	if (curl_multi_add_handle(s->multi, h) != CURLM_OK) {
		call->reason = "Transport";
		return k8s_fail(s, "cannot start a watch");
	}
	w->set = s;
	w->prev = NULL;
	w->next = s->head;
	if (s->head)
		s->head->prev = w;
	s->head = w;
	return 0;
}

const char *k8s_watch_line(const struct k8s_watch *w, size_t *len)
{
	if (!w->x.body.data || (w->status && (w->status < 200 || w->status > 299)))
		return NULL;
	const char *p = w->x.body.data + w->start;
	const char *nl = memchr(p, '\n', unread(w));
	if (!nl)
		return NULL;
	*len = (size_t)(nl - p);
	return p;
}

void k8s_watch_consume(struct k8s_watch *w, size_t len)
{
	w->start += len + 1;
	if (w->paused && unread(w) <= w->max_event) {
		w->paused = 0;
		/* may call on_event_bytes at once: it only appends */
		curl_easy_pause(w->x.curl, CURLPAUSE_CONT);
	}
}

/* Takes w out of the multi handle and the list. */
static void detach(struct k8s_watch *w)
{
	struct k8s_watchset *s = w->set;
	if (!s)
		return;
	curl_multi_remove_handle(s->multi, w->x.curl);
	if (w->prev)
		w->prev->next = w->next;
	else
		s->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->set = NULL;
}

/* Marks the watches whose transfer is over done; returns how many. */
static int collect_done(struct k8s_watchset *s)
{
	CURLMsg *m;
	int queued, ended = 0;
	while ((m = curl_multi_info_read(s->multi, &queued)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct k8s_watch *w = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
		if (!w)
			continue;
		CURLcode rc = m->data.result;
		w->result = w->x.oom ? CURLE_OUT_OF_MEMORY : rc;
		if (!w->status)
			curl_easy_getinfo(w->x.curl, CURLINFO_RESPONSE_CODE, &w->status);
		w->done = 1;
		detach(w);
		ended++;
	}
	return ended;
}

/* Whether the script has something to read without waiting. */
static int pending(const struct k8s_watchset *s, const struct k8s_watch *w)
{
	for (; w; w = w->next)
		if (has_line(w))
			return 1;
	return 0;
}

int k8s_watchset_wait(struct k8s_watchset *s, long timeout_ms, struct curl_waitfd *extra,
                      unsigned nextra)
{
	int running;
	if (!s->multi && !(s->multi = curl_multi_init()))
		return k8s_fail(s, "out of memory waiting on watches");
	CURLMcode mc = curl_multi_perform(s->multi, &running);
	if (mc == CURLM_OK) {
		/* a watch that ended here is off the list, but its last lines and
		 * its end are for the caller now: watch:next tells them without a wait */
		if (collect_done(s) > 0 || pending(s, s->head))
			timeout_ms = 0;
		mc = curl_multi_poll(s->multi, extra, nextra, timeout_ms > 0 ? (int)timeout_ms : 0, NULL);
	}
	if (mc == CURLM_OK)
		mc = curl_multi_perform(s->multi, &running);
	if (mc != CURLM_OK)
		return k8s_fail(s, "waiting on watches: %s", curl_multi_strerror(mc));
	collect_done(s);
	return 0;
}

void k8s_watch_stop(struct k8s_watch *w)
{
	detach(w);
	k8s_xfer_free(&w->x);
	w->start = 0;
}

void k8s_watchset_free(struct k8s_watchset *s)
{
	while (s->head)
		k8s_watch_stop(s->head);
	if (s->multi) {
		curl_multi_cleanup(s->multi);
		s->multi = NULL;
	}
}
