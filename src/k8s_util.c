/*
 * k8s_util.c: the helpers every layer of the k8s client uses (k8s_util.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_util.h"
#include "xcsreg.h"

#define MAX_FILE_SIZE (16 << 20)

int k8s_fail_msg(char *msg, const char *fmt, ...)
{
	/* redacted before it is cut to fit msg: a cut secret would not match */
	va_list ap;
	va_start(ap, fmt);
	char *full = NULL;
	int n = vasprintf(&full, fmt, ap);
	va_end(ap);
	if (n < 0) {
		snprintf(msg, K8S_MSG_SIZE, "out of memory");
		return -1;
	}
	char *red = malloc(3 * (size_t)n + 1);
	if (red) {
		size_t len = log_redact(full, (size_t)n, red, 3 * (size_t)n + 1);
		if (len >= K8S_MSG_SIZE)
			len = log_cut(red, K8S_MSG_SIZE - 1);
		memcpy(msg, red, len);
		msg[len] = '\0';
		explicit_bzero(red, 3 * (size_t)n + 1);
		free(red);
	} else {
		snprintf(msg, K8S_MSG_SIZE, "out of memory");
	}
	explicit_bzero(full, (size_t)n);
	free(full);
	return -1;
}

char *k8s_memdup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void k8s_wipe(char **p, size_t len)
{
	if (*p) {
		explicit_bzero(*p, len);
		free(*p);
		*p = NULL;
	}
}

void k8s_wipe_str(char **p)
{
	k8s_wipe(p, *p ? strlen(*p) : 0);
}

double k8s_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int k8s_buf_reserve(struct k8s_buf *b, size_t cap)
{
	if (b->data && cap <= b->cap)
		return 0;
	char *q = realloc(b->data, cap);
	if (!q)
		return -1;
	b->data = q;
	b->cap = cap;
	return 0;
}

int k8s_buf_append(struct k8s_buf *b, const char *p, size_t n)
{
	if (n > SIZE_MAX / 2 - b->len)
		return -1;
	if (!b->data || b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (k8s_buf_reserve(b, cap) != 0)
			return -1;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int k8s_read_file_msg(char *msg, const char *what, const char *path, char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return k8s_fail_msg(msg, "%s %s: %s", what, path, strerror(errno));
	struct k8s_buf b = {0};
	char chunk[8192];
	size_t n;
	int err = 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > MAX_FILE_SIZE) {
			err = EFBIG;
			break;
		}
		if (k8s_buf_append(&b, chunk, n) != 0) {
			err = ENOMEM;
			break;
		}
	}
	if (!err && ferror(f))
		err = errno ? errno : EIO;
	fclose(f);
	explicit_bzero(chunk, sizeof chunk); /* it may have held a key or a token */
	if (!err && k8s_buf_append(&b, "", 0) != 0)
		err = ENOMEM;
	if (err) {
		k8s_wipe(&b.data, b.cap);
		return k8s_fail_msg(msg, "%s %s: %s", what, path, strerror(err));
	}
	*data = b.data;
	*len = b.len;
	return 0;
}
