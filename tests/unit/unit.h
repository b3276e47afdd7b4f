/* unit.h: the smallest test harness. Each check prints "ok - name" or
 * "not ok - name"; main returns unit_done(). tests/run counts the lines. */
#ifndef UNIT_H
#define UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_failed;

#define CHECK(cond, ...)                                                     \
	do {                                                                     \
		int ok_ = (cond) ? 1 : 0;                                            \
		printf("%s - ", ok_ ? "ok" : "not ok");                              \
		printf(__VA_ARGS__);                                                 \
		printf("\n");                                                        \
		if (!ok_) {                                                          \
			printf("#   %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
			unit_failed++;                                                   \
		}                                                                    \
	} while (0)

#define CHECK_MEM(got, got_len, want, want_len, ...)                         \
	CHECK((got_len) == (want_len) && memcmp((got), (want), (want_len)) == 0, \
	      __VA_ARGS__)

static inline int unit_done(void)
{
	fflush(stdout);
	return unit_failed ? 1 : 0;
}
#endif
