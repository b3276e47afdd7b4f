/*
 * curl_lazy.h: libcurl is loaded (dlopen) on first use, not at start-up.
 *
 * src/curl_lazy.c defines libcurl's functions under their own names, so the
 * rest of xcsreg uses <curl/curl.h> as usual; the first call loads
 * libcurl.so.4 and runs curl_global_init. See curl_lazy.c for why.
 */
#ifndef CURL_LAZY_H
#define CURL_LAZY_H

/* The file dlopen()ed: libcurl4's soname on Debian (libcurl4-openssl). */
#define CURL_LAZY_SONAME "libcurl.so.4"

/* Loads and initialises libcurl if not done yet. Returns NULL when it is
 * ready, else why not (static storage, names CURL_LAZY_SONAME and gives
 * dlerror()'s reason); a failure is final for the process. Never raises. */
const char *curl_lazy_load(void);

#endif
