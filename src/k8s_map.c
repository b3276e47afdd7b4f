/*
 * k8s_map.c: client:map, a client's requests from coroutines, many in flight.
 *
 *   results = client:map(items, fn [, {concurrency = n}])
 *
 * calls fn(items[i]) for i = 1..#items, each call in a coroutine of its own,
 * at most n of them at a time (default: the client's concurrency, 8), and
 * returns results with results[i] = the first value fn(items[i]) returned.
 * Inside fn, a request on this client (get, list, create, replace, patch,
 * delete, request) does not block: it hands its transfer to the client's
 * curl multi handle and yields to the loop here, which drives the transfers
 * and resumes the coroutine when its answer is in, or when its retry's
 * backoff is over. To fn the request looks exactly like a blocking one.
 *
 *  - results follow the items' order, whatever order the answers came in;
 *    results[i] is nil when fn returned nothing or nil.
 *  - If fn raises, no further item is started; the coroutines already
 *    running finish (their requests may have reached the server: better to
 *    know how they ended), then map raises the first error as it was raised.
 *  - A 429 delays every request of the client until its Retry-After has
 *    passed, and halves the transfers this map keeps in flight, for the rest
 *    of the map (k8s_transfer.c).
 *  - client:close() inside fn: the requests pending in other coroutines
 *    raise "k8s client closed", no further item starts, and map raises
 *    "k8s client closed" unless every item had been started. The client's
 *    resources are freed when map returns.
 *  - Everything else blocks, as it would anywhere: requests on another
 *    client, proc.run, requests from a coroutine of fn's own or from where
 *    Lua cannot yield (a string.gsub callback, a metamethod called from C),
 *    which go out on the client's blocking handle. fn must not yield by
 *    itself (coroutine.yield): that is an error of its item.
 *  - Maps do not nest on one client.
 *
 * The transfers share one connection pool (a curl share handle, with TLS
 * sessions and DNS) with the client's blocking handle: where the server
 * speaks HTTP/2 they are multiplexed on one connection, else at most n
 * connections are opened. Everything C-owned here hangs off the client
 * (tasks are allocated before their curl handles); a map's run is a
 * to-be-closed userdata whose __close takes every transfer out of the multi
 * handle, so a Lua error anywhere in the loop leaves nothing in flight.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "k8s_map.h"

#define RUN_MT "xcsreg.k8s.MapRun"

/* Where a task is. A coroutine runs only while the loop resumes it. */
enum {
	T_FREE,  /* no coroutine */
	T_RUN,   /* fn's code, between requests */
	T_WAIT,  /* a request waits to be sent (backoff, 429 pause, limit) */
	T_SENT,  /* its transfer is in the multi handle, or over when done */
};

struct k8s_task {
	struct k8s_xfer x;
	struct k8s_call call;
	k8s_finish finish;        /* what the request function returns */
	lua_State *co;            /* the coroutine (anchored in the run's threads table) */
	int slot;                 /* index in c->tasks and in threads */
	int state;
	int done;                 /* T_SENT: the transfer is over, call.a says how */
	int aborted;              /* the client was closed while the request was pending */
	int yielded;              /* the coroutine's last yield was one of its requests */
	int resuming;             /* the loop, not someone else, resumed it */
	lua_Integer item;         /* index in items */
	unsigned long long id;    /* names the task to its continuation */
};

/* The to-be-closed userdata of a running map. */
struct map_run {
	struct k8s_pool *c;       /* NULL once ended */
};

/* The loop's state, on the C stack of k8s_map_run. */
struct loop {
	struct k8s_pool *c;
	int items, fn, results, threads, err; /* stack indices */
	lua_Integer n, next;      /* items, and the next to start */
	int concurrency;
	int alive;                /* coroutines started and not ended */
	int stop;                 /* start no more items */
	int failed;               /* the first error is at err */
	int aborted;              /* the client's close has been handled */
};

/* ---- tasks ---- */

void k8s_map_free(struct k8s_pool *c)
{
	for (int i = 0; i < c->ntasks; i++)
		if (c->tasks[i]->x.curl && c->multi)
			curl_multi_remove_handle(c->multi, c->tasks[i]->x.curl);
	if (c->multi) {
		curl_multi_cleanup(c->multi);
		c->multi = NULL;
	}
	for (int i = 0; i < c->ntasks; i++) {
		k8s_xfer_free(&c->tasks[i]->x);
		free(c->tasks[i]);
		c->tasks[i] = NULL;
	}
	c->ntasks = 0;
}

/* t's request is over: what its request function returns. */
static int task_finish(lua_State *L, struct k8s_pool *c, struct k8s_task *t, int ok)
{
	t->state = T_RUN;
	int nres = t->finish(L, c, &t->call, &t->x, ok);
	k8s_xfer_trim(&t->x);
	return nres;
}

/* Makes the multi handle and n tasks with their handles; raises on memory. */
static int ensure_tasks(lua_State *L, struct k8s_pool *c, int n)
{
	if (!c->multi) {
		if (!(c->multi = curl_multi_init()))
			return luaL_error(L, "not enough memory");
		curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	}
	for (; c->ntasks < n; c->ntasks++) {
		struct k8s_task *t = calloc(1, sizeof *t);
		if (!t)
			return luaL_error(L, "not enough memory");
		t->slot = c->ntasks;
		c->tasks[c->ntasks] = t;
	}
	c->conn->pooled_handles = c->ntasks;
	for (int i = 0; i < n; i++)
		if (!c->tasks[i]->x.curl && !(c->tasks[i]->x.curl = curl_easy_init()))
			return luaL_error(L, "not enough memory");
	/* the pool: one connection per coroutine where HTTP/2 cannot multiplex */
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->ntasks + 1);
	return 0;
}

struct k8s_task *k8s_map_task(lua_State *L, struct k8s_pool *c)
{
	if (!c->mapping || !lua_isyieldable(L))
		return NULL;
	for (int i = 0; i < c->ntasks; i++)
		if (c->tasks[i]->co == L && c->tasks[i]->state == T_RUN)
			return c->tasks[i];
	return NULL;
}

/* ---- a request, in its coroutine ---- */

static int task_continue(lua_State *L, int status, lua_KContext ctx);

static int task_yield(lua_State *L, struct k8s_task *t)
{
	t->yielded = 1;
	return lua_yieldk(L, 0, (lua_KContext)t->id, task_continue);
}

/* Moves t's request on as far as it can go now; yields, or returns what
 * the request function returns. */
static int task_step(lua_State *L, struct k8s_pool *c, struct k8s_task *t)
{
	for (;;) {
		if (t->aborted) {
			t->state = T_RUN;
			return luaL_error(L, "k8s client closed");
		}
		if (t->state == T_SENT) {
			int r = k8s_call_judge(L, c->conn, &t->call, &t->x);
			if (r != K8S_RETRY)
				return task_finish(L, c, t, r == K8S_DONE ? 0 : -1);
			t->state = T_WAIT;
		}
		double now = k8s_monotonic();
		if (now < t->call.wake_at || now < c->conn->not_before || c->inflight >= c->conn->limit)
			return task_yield(L, t);
		if (k8s_call_prepare(L, c->conn, &t->call, &t->x, 1) != 0)
			return task_finish(L, c, t, -1);
		curl_easy_setopt(t->x.curl, CURLOPT_PRIVATE, (void *)t);
		if (curl_multi_add_handle(c->multi, t->x.curl) != CURLM_OK) {
			k8s_fail(c, "%s: out of memory starting the request", c->conn->cfg->server);
			t->call.reason = "Transport";
			return task_finish(L, c, t, -1);
		}
		c->inflight++;
		t->state = T_SENT;
		t->done = 0;
		return task_yield(L, t);
	}
}

/* The task a continuation belongs to, if it is still that coroutine's. */
static struct k8s_task *find_task(struct k8s_pool *c, lua_State *L, lua_KContext id)
{
	for (int i = 0; c && i < c->ntasks; i++)
		if (c->tasks[i]->co == L && c->tasks[i]->id == (unsigned long long)id)
			return c->tasks[i];
	return NULL;
}

static int task_continue(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	/* every request function has the client at index 1, which begins with its pool */
	struct k8s_task *t = find_task(lua_touserdata(L, 1), L, ctx);
	if (!t)
		return luaL_error(L, "k8s client: the request was abandoned when its client:map ended");
	if (!t->resuming) /* someone else resumed the coroutine: keep waiting */
		return task_yield(L, t);
	return task_step(L, lua_touserdata(L, 1), t);
}

int k8s_map_request(lua_State *L, struct k8s_pool *c, struct k8s_task *t,
                    const struct k8s_req *req, k8s_finish finish)
{
	k8s_call_init(c->conn, &t->call, req);
	t->finish = finish;
	t->state = T_WAIT;
	return task_step(L, c, t);
}

/* ---- the loop ---- */

/* Takes the error at the top of L: the first one is kept, others logged. */
static void record_error(lua_State *L, struct loop *lp, lua_Integer item)
{
	lp->stop = 1;
	if (!lp->failed) {
		lua_replace(L, lp->err);
		lp->failed = 1;
		return;
	}
	log_msg(LOG_DEBUG, "client:map: item %lld also failed: %s", (long long)item,
	        luaL_tolstring(L, -1, NULL));
	lua_pop(L, 2);
}

static void end_task(lua_State *L, struct loop *lp, struct k8s_task *t, int clean)
{
	if (!clean) { /* run the __close of its pending to-be-closed variables */
#if LUA_VERSION_RELEASE_NUM >= 50406
		lua_closethread(t->co, L);
#else
		lua_resetthread(t->co);
#endif
	}
	lua_pushnil(L);
	lua_rawseti(L, lp->threads, t->slot + 1);
	t->co = NULL;
	t->state = T_FREE;
	lp->alive--;
}

/* Resumes t's coroutine with nargs values on its stack, and deals with how it stops. */
static void resume_task(lua_State *L, struct loop *lp, struct k8s_task *t, int nargs)
{
	lua_State *co = t->co;
	int nres;
	t->yielded = 0;
	t->resuming = 1;
	int status = lua_resume(co, L, nargs, &nres);
	t->resuming = 0;
	if (status == LUA_YIELD && t->yielded)
		return; /* a request waits */
	if (status == LUA_OK) {
		if (nres > 0) {
			lua_pop(co, nres - 1);
			lua_xmove(co, L, 1);
			lua_rawseti(L, lp->results, t->item);
		}
	} else if (status == LUA_YIELD) {
		lua_pop(co, nres);
		lua_pushliteral(L, "attempt to yield from a function run by client:map");
		record_error(L, lp, t->item);
	} else {
		lua_xmove(co, L, 1);
		record_error(L, lp, t->item);
	}
	end_task(L, lp, t, status == LUA_OK);
}

static void start_task(lua_State *L, struct loop *lp, struct k8s_task *t)
{
	lua_State *co = lua_newthread(L);   /* ... co */
	lua_rawseti(L, lp->threads, t->slot + 1);
	t->co = co;
	t->id = ++lp->c->task_seq;
	t->item = lp->next++;
	t->state = T_RUN;
	t->done = t->aborted = 0;
	lp->alive++;
	lua_pushvalue(L, lp->fn);
	lua_geti(L, lp->items, t->item);    /* ... fn item */
	lua_xmove(L, co, 2);
	resume_task(L, lp, t, 1);
}

static int task_ready(const struct k8s_pool *c, const struct k8s_task *t, double now)
{
	if (t->state == T_SENT)
		return t->done;
	if (t->state == T_WAIT)
		return t->aborted || (now >= t->call.wake_at && now >= c->conn->not_before &&
		                      c->inflight < c->conn->limit);
	return 0;
}

/* Takes finished transfers out of the multi handle; their tasks are ready. */
static void collect(lua_State *L, struct k8s_pool *c)
{
	int running, queued;
	CURLMcode mc = curl_multi_perform(c->multi, &running);
	if (mc != CURLM_OK)
		luaL_error(L, "k8s client: %s", curl_multi_strerror(mc));
	CURLMsg *m;
	while ((m = curl_multi_info_read(c->multi, &queued))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *h = m->easy_handle;
		CURLcode rc = m->data.result;
		void *p = NULL;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, &p);
		struct k8s_task *t = p;
		k8s_call_attempted(c->conn, &t->call, &t->x, rc);
		curl_multi_remove_handle(c->multi, h);
		c->inflight--;
		t->done = 1;
	}
}

/* After client:close() from inside fn: stops every pending transfer; the
 * tasks raise "k8s client closed" when resumed. */
static void abort_pending(struct k8s_pool *c, int n)
{
	for (int i = 0; i < n; i++) {
		struct k8s_task *t = c->tasks[i];
		if (t->state == T_SENT && !t->done) {
			curl_multi_remove_handle(c->multi, t->x.curl);
			c->inflight--;
			t->done = 1;
		}
		if (t->state == T_SENT || t->state == T_WAIT)
			t->aborted = 1;
	}
}

/* Waits for a transfer to progress or the next task's time to come. */
static void wait_for_work(lua_State *L, struct k8s_pool *c, int n)
{
	double now = k8s_monotonic(), wake = now + 1.0;
	for (int i = 0; i < n; i++) {
		const struct k8s_task *t = c->tasks[i];
		if (t->state != T_WAIT || c->inflight >= c->conn->limit)
			continue;
		double w = t->call.wake_at > c->conn->not_before ? t->call.wake_at : c->conn->not_before;
		if (w < wake)
			wake = w;
	}
	int ms = wake > now ? (int)((wake - now) * 1000) + 1 : 0;
	if (c->inflight > 0) {
		CURLMcode mc = curl_multi_poll(c->multi, NULL, 0, ms, NULL);
		if (mc != CURLM_OK)
			luaL_error(L, "k8s client: %s", curl_multi_strerror(mc));
	} else if (ms > 0) {
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

static void run_loop(lua_State *L, struct loop *lp)
{
	struct k8s_pool *c = lp->c;
	for (;;) {
		int progressed = 0;
		if (c->closed && !lp->aborted) {
			abort_pending(c, lp->concurrency);
			lp->aborted = lp->stop = 1;
		}
		if (c->inflight > 0)
			collect(L, c);
		for (int i = 0; i < lp->concurrency && !lp->stop && lp->next <= lp->n; i++) {
			if (c->tasks[i]->state == T_FREE) {
				start_task(L, lp, c->tasks[i]);
				progressed = 1;
			}
		}
		for (int i = 0; i < lp->concurrency; i++) {
			if (task_ready(c, c->tasks[i], k8s_monotonic())) {
				resume_task(L, lp, c->tasks[i], 0);
				progressed = 1;
			}
		}
		if (lp->alive == 0 && (lp->stop || lp->next > lp->n))
			return;
		if (!progressed)
			wait_for_work(L, c, lp->concurrency);
	}
}

/* __close and __gc of a map's run: nothing of it stays in flight. */
static int run_end(lua_State *L)
{
	struct map_run *run = luaL_checkudata(L, 1, RUN_MT);
	struct k8s_pool *c = run->c;
	if (!c)
		return 0;
	run->c = NULL;
	for (int i = 0; i < c->ntasks; i++) {
		struct k8s_task *t = c->tasks[i];
		if (t->state == T_SENT && !t->done)
			curl_multi_remove_handle(c->multi, t->x.curl);
		t->state = T_FREE;
		t->co = NULL;
	}
	c->inflight = 0;
	c->mapping = 0; /* if c->closed, the binding frees the client now */
	return 0;
}

int k8s_map_run(lua_State *L, struct k8s_pool *c, int items, int fn, int concurrency)
{
	struct loop lp = {.c = c, .items = items, .fn = fn, .next = 1, .concurrency = concurrency};
	lp.n = luaL_len(L, items);
	luaL_checkstack(L, 8, NULL);
	lua_createtable(L, lp.n > 0 && lp.n < INT_MAX ? (int)lp.n : 0, 0);
	lp.results = lua_gettop(L);
	lua_createtable(L, concurrency, 0);
	lp.threads = lua_gettop(L);
	lua_pushnil(L);
	lp.err = lua_gettop(L);
	struct map_run *run = lua_newuserdatauv(L, sizeof *run, 0);
	run->c = NULL;
	if (luaL_newmetatable(L, RUN_MT)) {
		lua_pushcfunction(L, run_end);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, run_end);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
	ensure_tasks(L, c, concurrency);
	run->c = c;
	c->mapping = 1;
	c->conn->limit = concurrency;
	c->conn->cut_at = 0;
	run_loop(L, &lp);
	if (lp.failed) {
		lua_pushvalue(L, lp.err);
		return lua_error(L);
	}
	if (c->closed && lp.next <= lp.n)
		return luaL_error(L, "k8s client closed");
	lua_pushvalue(L, lp.results);
	return 1;
}
