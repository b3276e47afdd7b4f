/*
 * secret_file.c: opening and reading the files that hold secrets (password
 * files, a kubeconfig's tokenFile and client keys, the in-cluster token),
 * shared by the site and k8s modules.
 *
 * Such a file may sit in a directory that a less trusted user can write to.
 * A symlink planted there would make the run read whatever it points to (a
 * root-only file, copied into a Secret and sent to a registry), and a FIFO
 * or a device would hang it. So: the last component is opened with
 * O_NOFOLLOW; a symlink is followed only when root or this user made it (a
 * Kubernetes Secret volume is made of root's symlinks to ..data/); what is
 * opened must be a regular file (fstat, after the open: no race); and, as
 * ssh does, a warning says when other users can read the file, change it,
 * or replace it in its directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xcsreg.h"

static const char *file_kind(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

void secret_file_warn_open(const char *what, const char *path, unsigned mode, unsigned owner)
{
	/* A group may be there to let us read a file of someone else's (a
	 * Kubernetes Secret volume of mode 0440 with the pod's fsGroup): as ssh,
	 * only the files we own must keep their group out. */
	if ((mode & S_IROTH) || ((mode & S_IRGRP) && owner == (unsigned)geteuid()))
		log_msg(LOG_WARN, "%s %s can be read by other users (mode %04o): chmod 600 %s", what, path,
		        mode & 07777, path);
}

/* Warns when someone else may write to path, or replace it in its directory. */
static void warn_writable(const char *what, const char *path, const struct stat *st)
{
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		log_msg(LOG_WARN, "%s %s can be changed by other users (mode %04o): chmod 600 %s", what, path,
		        (unsigned)(st->st_mode & 07777), path);
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	struct stat ds;
	/* In a sticky directory (/tmp) only the file's owner may replace it. */
	if (dir && stat(dir, &ds) == 0 && (ds.st_mode & (S_IWGRP | S_IWOTH)) && !(ds.st_mode & S_ISVTX))
		log_msg(LOG_WARN, "%s %s is in a directory other users can write to (%s, mode %04o): they can "
		        "replace it; move it, or chmod go-w %s", what, path, dir, (unsigned)(ds.st_mode & 07777), dir);
	free(dir);
}

int secret_file_open(const char *what, const char *path, int flags, struct stat *st, char *msg, size_t msgsz)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP) {
		struct stat ls;
		if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode)) {
			if (ls.st_uid != 0 && ls.st_uid != geteuid()) {
				snprintf(msg, msgsz, "it is a symbolic link made by uid %u (not root, not this user): "
				         "refusing to follow it", (unsigned)ls.st_uid);
				return -1;
			}
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		} else {
			errno = ELOOP;
		}
	}
	if (fd < 0) {
		snprintf(msg, msgsz, "%s", strerror(errno));
		return -1;
	}
	const char *why = NULL;
	if (fstat(fd, st) != 0)
		why = strerror(errno);
	else if (S_ISDIR(st->st_mode))
		why = strerror(EISDIR);
	else if (!S_ISREG(st->st_mode))
		why = file_kind(st->st_mode);
	if (!why && fcntl(fd, F_SETFL, 0) != 0)
		why = strerror(errno);
	if (why) {
		snprintf(msg, msgsz, "%s%s", why, S_ISDIR(st->st_mode) || S_ISREG(st->st_mode) ? ""
		         : ", not a regular file: refused (it could hang the run)");
		close(fd);
		return -1;
	}
	if (flags & SECRET_WARN_READABLE)
		secret_file_warn_open(what, path, (unsigned)st->st_mode, (unsigned)st->st_uid);
	if (flags & SECRET_WARN_WRITABLE)
		warn_writable(what, path, st);
	return fd;
}

int secret_file_read(const char *what, const char *path, int flags, size_t max, char **data, size_t *len,
                     char *msg, size_t msgsz)
{
	struct stat st;
	int fd = secret_file_open(what, path, flags, &st, msg, msgsz);
	if (fd < 0)
		return -1;
	/* max + 1 bytes tell a file that is too large, and 1 more is for the NUL */
	size_t cap = max + 2 < 4096 ? max + 2 : 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		snprintf(msg, msgsz, "%s", strerror(ENOMEM));
		return -1;
	}
	int err = 0;
	for (;;) {
		if (cap - n < 2 && cap < max + 2) {
			size_t ncap = 2 * cap < max + 2 ? 2 * cap : max + 2;
			char *p = malloc(ncap);
			if (!p) {
				err = ENOMEM;
				break;
			}
			memcpy(p, buf, n);
			explicit_bzero(buf, cap);
			free(buf);
			buf = p;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			err = EFBIG;
			break;
		}
	}
	close(fd);
	if (err) {
		explicit_bzero(buf, cap);
		free(buf);
		if (err == EFBIG)
			snprintf(msg, msgsz, "larger than %zu bytes", max);
		else
			snprintf(msg, msgsz, "%s", strerror(err));
		return -1;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}
