/*
 * fuzz_base64: b64_decode on any bytes, with each of the four flag sets.
 *
 * Properties: the decoded length fits in b64_decoded_maxlen(n) (dst is a
 * heap block of exactly that size, so ASan sees any overrun); a failure
 * names an offset within the input (n itself for a bad length); and as the
 * decoder is strict (no whitespace, zero trailing bits), what it accepts is
 * canonical: encoding the result gives the input back, with the padding the
 * input had (B64_NOPAD accepts both).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "xcsreg.h"

static void check(const char *src, size_t n, int flags)
{
	size_t max = b64_decoded_maxlen(n);
	unsigned char *dst = malloc(max ? max : 1);
	if (!dst)
		fuzz_fail("out of memory");
	size_t errpos = (size_t)-2;
	size_t len = b64_decode(src, n, dst, flags, &errpos);
	if (len == (size_t)-1) {
		if (errpos > n)
			fuzz_fail("flags %d: error offset %zu past the input (%zu bytes)", flags, errpos, n);
		free(dst);
		return;
	}
	if (len > max)
		fuzz_fail("flags %d: decoded %zu bytes, more than the %zu promised", flags, len, max);
	/* what the input would look like without padding, and with it */
	size_t unpadded = n;
	while (unpadded > 0 && src[unpadded - 1] == '=')
		unpadded--;
	int padded = unpadded != n;
	int enc_flags = padded ? flags & ~B64_NOPAD : flags | B64_NOPAD;
	size_t elen = b64_encoded_len(len, enc_flags);
	char *enc = malloc(elen ? elen : 1);
	if (!enc)
		fuzz_fail("out of memory");
	b64_encode(dst, len, enc, enc_flags);
	if (elen != n || memcmp(enc, src, n) != 0)
		fuzz_fail("flags %d: %zu bytes decoded to %zu, which encode to %zu other bytes",
		          flags, n, len, elen);
	free(enc);
	free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int flag_sets[] = {0, B64_URL, B64_NOPAD, B64_URL | B64_NOPAD};
	for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++)
		check((const char *)data, size, flag_sets[i]);
	return 0;
}
