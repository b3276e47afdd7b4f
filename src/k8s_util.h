/*
 * k8s_util.h: what every layer of the k8s client uses, and nothing else.
 *
 * The k8s client is a stack of layers, each using only those below it
 * (src/layers; scripts/check-layers checks the objects):
 *
 *   k8s_util.c      byte buffers, wiping, files, messages (this header)
 *   k8s_auth.c      struct k8s_creds: credentials at request time
 *   kubeconfig.c    struct k8s_config: where to connect, filling the creds
 *   k8s_transfer.c  struct k8s_conn: one request through its attempts
 *   k8s_map.c       struct k8s_pool: client:map, many requests in flight
 *   k8s.c           struct k8s_client (all of the above): the Lua module
 *
 * Each layer's struct has a `msg` pointer to the client's one message
 * buffer (K8S_MSG_SIZE bytes): functions that fail return -1 after writing
 * a message for the user there with k8s_fail; nothing secret goes there.
 */
#ifndef K8S_UTIL_H
#define K8S_UTIL_H

#include <stddef.h>

#define K8S_MSG_SIZE 2048

/* A growing byte buffer, always NUL-terminated once data != NULL. */
struct k8s_buf {
	char *data;
	size_t len, cap;
};

/* Sets msg (K8S_MSG_SIZE bytes) like printf and returns -1. */
int k8s_fail_msg(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* k8s_fail(s, fmt, ...): the same for any layer's struct s (its s->msg). */
#define k8s_fail(s, ...) k8s_fail_msg((s)->msg, __VA_ARGS__)
/* malloc'd copy of n bytes plus a NUL, or NULL. */
char *k8s_memdup(const char *s, size_t n);
/* Zero and free memory that held a secret (len bytes, or a string); *p = NULL. */
void k8s_wipe(char **p, size_t len);
void k8s_wipe_str(char **p);
/* Reads a whole file into a malloc'd, NUL-terminated buffer; returns 0, or
 * -1 with msg = "<what> <path>: <strerror>". */
int k8s_read_file_msg(char *msg, const char *what, const char *path, char **data, size_t *len);
/* k8s_read_file(s, what, path, data, len): the same into s->msg. */
#define k8s_read_file(s, ...) k8s_read_file_msg((s)->msg, __VA_ARGS__)
double k8s_monotonic(void);
/* Appends n bytes; returns 0, or -1 when memory runs out (b unchanged). */
int k8s_buf_append(struct k8s_buf *b, const char *p, size_t n);
/* Makes room for cap bytes in all; returns 0, or -1 (b unchanged). */
int k8s_buf_reserve(struct k8s_buf *b, size_t cap);

#endif
