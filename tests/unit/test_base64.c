/* The pure base64 functions: RFC 4648 vectors, both alphabets, padding
 * rules, and every class of input the strict decoder rejects. */
#include <stdlib.h>

#include "unit.h"
#include "xcsreg.h"

static void check_encode(const char *in, int flags, const char *want)
{
	size_t n = strlen(in), len = b64_encoded_len(n, flags);
	char out[64];
	memset(out, '#', sizeof out);
	b64_encode((const unsigned char *)in, n, out, flags);
	CHECK_MEM(out, len, want, strlen(want), "encode(\"%s\", %d) = \"%s\"", in, flags, want);
	CHECK(out[len] == '#', "encode(\"%s\", %d) writes exactly %zu bytes", in, flags, len);
}

static void check_decode(const char *in, int flags, const char *want)
{
	size_t n = strlen(in), errpos = 12345;
	unsigned char out[64];
	size_t len = b64_decode(in, n, out, flags, &errpos);
	CHECK_MEM(out, len, want, strlen(want), "decode(\"%s\", %d) = \"%s\"", in, flags, want);
	CHECK(len <= b64_decoded_maxlen(n), "decode(\"%s\") fits in b64_decoded_maxlen", in);
}

static void check_reject(const char *in, int flags, size_t want_pos, const char *why)
{
	size_t errpos = 12345;
	unsigned char out[64];
	size_t len = b64_decode(in, strlen(in), out, flags, &errpos);
	/* named by why: the input may hold a newline */
	CHECK(len == (size_t)-1 && errpos == want_pos, "decode rejects %s at %zu", why, want_pos);
	if (len != (size_t)-1 || errpos != want_pos)
		printf("#   returned %zu, errpos %zu\n", len, errpos);
}

int main(void)
{
	/* RFC 4648 section 10 */
	static const char *const rfc[][2] = {
	    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	static const char *const rfc_nopad[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
		check_encode(rfc[i][0], 0, rfc[i][1]);
		check_decode(rfc[i][1], 0, rfc[i][0]);
		check_encode(rfc[i][0], B64_NOPAD, rfc_nopad[i]);
		/* B64_NOPAD makes padding optional: both forms decode */
		check_decode(rfc_nopad[i], B64_NOPAD, rfc[i][0]);
		check_decode(rfc[i][1], B64_NOPAD, rfc[i][0]);
	}
	CHECK(b64_encoded_len(0, 0) == 0 && b64_encoded_len(1, 0) == 4 && b64_encoded_len(3, 0) == 4 &&
	          b64_encoded_len(4, 0) == 8,
	      "encoded length with padding");
	CHECK(b64_encoded_len(1, B64_NOPAD) == 2 && b64_encoded_len(2, B64_NOPAD) == 3 &&
	          b64_encoded_len(3, B64_NOPAD) == 4,
	      "encoded length without padding");

	/* 0xfb 0xff 0xfe uses both characters that differ between alphabets */
	check_encode("\xfb\xff\xfe", 0, "+//+");
	check_encode("\xfb\xff\xfe", B64_URL, "-__-");
	check_decode("+//+", 0, "\xfb\xff\xfe");
	check_decode("-__-", B64_URL, "\xfb\xff\xfe");
	check_decode("-_8", B64_URL | B64_NOPAD, "\xfb\xff");
	check_reject("-__-", 0, 0, "URL alphabet in standard mode");
	check_reject("+//+", B64_URL, 0, "standard alphabet in URL mode");
	check_reject("ab/-", 0, 3, "mixed alphabets");

	check_reject("Zm9v!A==", 0, 4, "bad character");
	check_reject("Zm9v YQ==", 0, 4, "whitespace");
	check_reject("Zm9v\nYQ==", 0, 4, "newline");
	check_reject("Zm9vYQ==\n", 0, 8, "trailing newline");
	check_reject("Zg==Zg==", 0, 2, "'=' in the middle");
	check_reject("Z=g=", 0, 1, "'=' inside a group");
	check_reject("Zg=!", 0, 3, "bad character after '='");
	check_reject("=", 0, 0, "lone '='");
	check_reject("====", 0, 0, "only padding");
	check_reject("Zm9v=", 0, 4, "padding after a full group");
	check_reject("Zg===", 0, 4, "one '=' too many");
	check_reject("Zm8==", 0, 4, "two '=' where one belongs");
	check_reject("Zm8==", B64_NOPAD, 4, "two '=' where one belongs, padding optional");
	check_reject("Zg", 0, 2, "padding missing");
	check_reject("Zm8", 0, 3, "padding missing after three characters");
	check_reject("Zg=", 0, 3, "padding cut short");
	check_reject("Zg=", B64_NOPAD, 3, "padding cut short, padding optional");
	check_reject("Z", B64_NOPAD, 1, "one character cannot be a byte");
	check_reject("Zm9vY", B64_NOPAD, 5, "a group of one character");
	check_reject("Zm9vY===", 0, 8, "a group of one character, padded");
	check_reject("Zh==", 0, 1, "non-zero unused bits after one byte");
	check_reject("Zh", B64_NOPAD, 1, "non-zero unused bits, unpadded");
	check_reject("Zm9=", 0, 2, "non-zero unused bits after two bytes");
	check_reject("Zm9vYh==", 0, 5, "non-zero unused bits in a later group");
	check_decode("Zm8=", 0, "fo");

	/* every byte value, at every alignment */
	unsigned char all[256], back[256];
	char enc[400];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	int ok = 1;
	for (int flags = 0; flags < 4; flags++) {
		for (size_t n = 253; n <= 256; n++) {
			size_t len = b64_encoded_len(n, flags), errpos;
			b64_encode(all, n, enc, flags);
			size_t got = b64_decode(enc, len, back, flags, &errpos);
			if (got != n || memcmp(all, back, n) != 0)
				ok = 0;
		}
	}
	CHECK(ok, "bytes 0..255 round trip with every flag and length mod 3");

	CHECK(b64_decoded_maxlen(0) == 0 && b64_decoded_maxlen(3) >= 2 && b64_decoded_maxlen(4) >= 3 &&
	          b64_decoded_maxlen(7) >= 5,
	      "decoded_maxlen covers partial groups");
	return unit_done();
}
