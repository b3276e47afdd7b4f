/*
 * curl_lazy.c: libcurl, loaded when a script first needs it.
 *
 * Debian's libcurl4 (OpenSSL flavour) brings ~35 shared libraries with it
 * (LDAP, Kerberos, GnuTLS, SSH, RTMP...). Linked into the binary, loading
 * and relocating them took about 6 ms and 7 MiB of every run, most of the
 * start-up of a script that never opens a connection. So xcsreg does not
 * link libcurl: the functions below carry libcurl's public names and
 * signatures and forward to it; the first call of one that can start a use
 * of libcurl dlopen()s CURL_LAZY_SONAME, resolves every function xcsreg
 * uses and runs curl_global_init. http.c, k8s*.c and the tests are written
 * against <curl/curl.h> as usual and keep its compile-time checks of
 * curl_easy_setopt's argument types (disabled in this file only).
 *
 * These definitions must stay out of the executable's dynamic symbol table.
 * Were they exported (-rdynamic, or linking libcurl.so as well, which makes
 * ld export every symbol a linked library also defines), libcurl's own calls
 * of its public functions would bind to the forwarders. The Makefile links
 * neither; `nm -D xcsreg | grep curl_` lists only undefined symbols, if any.
 *
 * Until libcurl is loaded, functions that take one of its handles return
 * their failure value (or do nothing): no handle can exist yet. k8s.client
 * and http.request (not the require of k8s or http) call curl_lazy_load
 * first, so that a missing libcurl is a clear Lua error and the shipped
 * scripts' --help, usage errors and client dry runs never load it; other
 * callers (unit tests, fuzz harnesses) load it by their first call.
 * xcsreg is single-threaded, and so is this state.
 */
#define CURL_DISABLE_TYPECHECK /* the forwarders take what callers passed */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>

#include <curl/curl.h>

#include "curl_lazy.h"

/* Every libcurl function xcsreg calls (grep -ohE "\bcurl_[a-z_]+\(" src/). */
#define CURL_FUNCTIONS(X) \
	X(curl_easy_cleanup) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_pause) X(curl_easy_perform) \
	X(curl_easy_reset) X(curl_easy_setopt) X(curl_easy_strerror) X(curl_free) \
	X(curl_global_cleanup) X(curl_global_init) X(curl_multi_add_handle) \
	X(curl_multi_cleanup) X(curl_multi_info_read) X(curl_multi_init) \
	X(curl_multi_perform) X(curl_multi_poll) X(curl_multi_remove_handle) \
	X(curl_multi_setopt) X(curl_multi_strerror) X(curl_share_cleanup) \
	X(curl_share_init) X(curl_share_setopt) X(curl_slist_append) \
	X(curl_slist_free_all) X(curl_strequal) X(curl_url) X(curl_url_cleanup) \
	X(curl_url_get) X(curl_url_set) X(curl_version_info)

/* libcurl's functions, typed as <curl/curl.h> declares them. */
static struct {
#define MEMBER(f) __typeof__(f) *(f);
	CURL_FUNCTIONS(MEMBER)
#undef MEMBER
} real;

static void *library;       /* set once every function of real is resolved; never closed */
static int initialised;     /* we hold one curl_global_init */
static char failure[512];   /* why libcurl cannot be used, once that is known */

static const char not_loaded[] = CURL_LAZY_SONAME " is not loaded";

static const char *resolve(void)
{
	void *dl = dlopen(CURL_LAZY_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		snprintf(failure, sizeof failure, "cannot load %s: %s (Debian: apt-get install libcurl4)",
		         CURL_LAZY_SONAME, dlerror());
		return failure;
	}
	const char *missing = NULL;
#define RESOLVE(f) \
	if (!missing && !(real.f = (__typeof__(f) *)dlsym(dl, #f))) \
		missing = #f;
	CURL_FUNCTIONS(RESOLVE)
#undef RESOLVE
	if (missing) {
		snprintf(failure, sizeof failure, "cannot use %s: it has no %s (libcurl too old?)",
		         CURL_LAZY_SONAME, missing);
		dlclose(dl);
		return failure;
	}
	library = dl;
	return NULL;
}

static const char *start(long flags)
{
	if (initialised)
		return NULL;
	if (failure[0])
		return failure;
	if (!library && resolve())
		return failure;
	CURLcode rc = real.curl_global_init(flags);
	if (rc != CURLE_OK) {
		snprintf(failure, sizeof failure, "cannot initialise %s: %s", CURL_LAZY_SONAME,
		         real.curl_easy_strerror(rc));
		return failure;
	}
	initialised = 1;
	return NULL;
}

const char *curl_lazy_load(void)
{
	return start(CURL_GLOBAL_DEFAULT);
}

/* For the functions that can begin a use of libcurl. */
static int ready(void)
{
	return initialised || start(CURL_GLOBAL_DEFAULT) == NULL;
}

/* ---- global state; one curl_global_init is held however often it is called ---- */

CURLcode curl_global_init(long flags)
{
	return start(flags) ? CURLE_FAILED_INIT : CURLE_OK;
}

void curl_global_cleanup(void)
{
	if (initialised) {
		real.curl_global_cleanup();
		initialised = 0;
	}
}

curl_version_info_data *curl_version_info(CURLversion age)
{
	return ready() ? real.curl_version_info(age) : NULL;
}

/* ---- functions that begin a use of libcurl: they load it ---- */

CURL *curl_easy_init(void)
{
	return ready() ? real.curl_easy_init() : NULL;
}

CURLM *curl_multi_init(void)
{
	return ready() ? real.curl_multi_init() : NULL;
}

CURLSH *curl_share_init(void)
{
	return ready() ? real.curl_share_init() : NULL;
}

CURLU *curl_url(void)
{
	return ready() ? real.curl_url() : NULL;
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return ready() ? real.curl_slist_append(list, s) : NULL;
}

int curl_strequal(const char *a, const char *b)
{
	return ready() ? real.curl_strequal(a, b) : 0;
}

const char *curl_easy_strerror(CURLcode rc)
{
	return ready() ? real.curl_easy_strerror(rc) : not_loaded;
}

const char *curl_multi_strerror(CURLMcode rc)
{
	return ready() ? real.curl_multi_strerror(rc) : not_loaded;
}

/* ---- functions of handles (or memory) libcurl gave: it is loaded ---- */

void curl_free(void *p)
{
	if (library)
		real.curl_free(p);
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (library)
		real.curl_slist_free_all(list);
}

void curl_easy_cleanup(CURL *h)
{
	if (library)
		real.curl_easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
	if (library)
		real.curl_easy_reset(h);
}

CURLcode curl_easy_pause(CURL *h, int bitmask)
{
	return library ? real.curl_easy_pause(h, bitmask) : CURLE_FAILED_INIT;
}

CURLcode curl_easy_perform(CURL *h)
{
	return library ? real.curl_easy_perform(h) : CURLE_FAILED_INIT;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	if (!library)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	void *out = va_arg(ap, void *);
	va_end(ap);
	return real.curl_easy_getinfo(h, info, out);
}

/*
 * The argument of a CURLOPT_* (and CURLMOPT_*) option has the type its
 * number's range says (CURLOPTTYPE_* in curl.h): libcurl reads it with
 * va_arg of that type, and so must we, to pass it on as the caller gave it.
 * Object pointers and blobs (struct curl_blob *) are both pointers.
 */
typedef void (*curl_callback)(void);

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	if (!library)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, opt);
	CURLcode rc;
	if (opt < CURLOPTTYPE_OBJECTPOINT) {
		long number = va_arg(ap, long);
		rc = real.curl_easy_setopt(h, opt, number);
	} else if (opt < CURLOPTTYPE_FUNCTIONPOINT || opt >= CURLOPTTYPE_BLOB) {
		void *object = va_arg(ap, void *);
		rc = real.curl_easy_setopt(h, opt, object);
	} else if (opt < CURLOPTTYPE_OFF_T) {
		curl_callback function = va_arg(ap, curl_callback);
		rc = real.curl_easy_setopt(h, opt, function);
	} else {
		curl_off_t offset = va_arg(ap, curl_off_t);
		rc = real.curl_easy_setopt(h, opt, offset);
	}
	va_end(ap);
	return rc;
}

CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
	if (!library)
		return CURLM_BAD_HANDLE;
	va_list ap;
	va_start(ap, opt);
	CURLMcode rc;
	if (opt < CURLOPTTYPE_OBJECTPOINT) {
		long number = va_arg(ap, long);
		rc = real.curl_multi_setopt(m, opt, number);
	} else if (opt < CURLOPTTYPE_FUNCTIONPOINT) {
		void *object = va_arg(ap, void *);
		rc = real.curl_multi_setopt(m, opt, object);
	} else if (opt < CURLOPTTYPE_OFF_T) {
		curl_callback function = va_arg(ap, curl_callback);
		rc = real.curl_multi_setopt(m, opt, function);
	} else {
		curl_off_t offset = va_arg(ap, curl_off_t);
		rc = real.curl_multi_setopt(m, opt, offset);
	}
	va_end(ap);
	return rc;
}

/* CURLSHOPT_* are not typed by range: libcurl's share.c reads an int for
 * (UN)SHARE, a function for (UN)LOCKFUNC, a pointer for USERDATA. */
CURLSHcode curl_share_setopt(CURLSH *sh, CURLSHoption opt, ...)
{
	if (!library)
		return CURLSHE_INVALID;
	va_list ap;
	va_start(ap, opt);
	CURLSHcode rc = CURLSHE_BAD_OPTION;
	if (opt == CURLSHOPT_SHARE || opt == CURLSHOPT_UNSHARE) {
		int data = va_arg(ap, int);
		rc = real.curl_share_setopt(sh, opt, data);
	} else if (opt == CURLSHOPT_LOCKFUNC || opt == CURLSHOPT_UNLOCKFUNC) {
		curl_callback function = va_arg(ap, curl_callback);
		rc = real.curl_share_setopt(sh, opt, function);
	} else if (opt == CURLSHOPT_USERDATA) {
		void *object = va_arg(ap, void *);
		rc = real.curl_share_setopt(sh, opt, object);
	}
	va_end(ap);
	return rc;
}

CURLSHcode curl_share_cleanup(CURLSH *sh)
{
	return library ? real.curl_share_cleanup(sh) : CURLSHE_INVALID;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
	return library ? real.curl_multi_add_handle(m, h) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
	return library ? real.curl_multi_remove_handle(m, h) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_perform(CURLM *m, int *running)
{
	return library ? real.curl_multi_perform(m, running) : CURLM_BAD_HANDLE;
}

CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned int nextra,
                          int timeout_ms, int *numfds)
{
	return library ? real.curl_multi_poll(m, extra, nextra, timeout_ms, numfds)
	               : CURLM_BAD_HANDLE;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *queued)
{
	return library ? real.curl_multi_info_read(m, queued) : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
	return library ? real.curl_multi_cleanup(m) : CURLM_BAD_HANDLE;
}

void curl_url_cleanup(CURLU *u)
{
	if (library)
		real.curl_url_cleanup(u);
}

CURLUcode curl_url_get(CURLU *u, CURLUPart what, char **part, unsigned int flags)
{
	return library ? real.curl_url_get(u, what, part, flags) : CURLUE_BAD_HANDLE;
}

CURLUcode curl_url_set(CURLU *u, CURLUPart what, const char *part, unsigned int flags)
{
	return library ? real.curl_url_set(u, what, part, flags) : CURLUE_BAD_HANDLE;
}
