/*
 * fuzz_azure_token.c - a token endpoint's answer (origin/azure_identity.c,
 * us_azure_token_parse): JSON from Entra ID or IMDS, untrusted.  Properties:
 * a token accepted is terminated, shorter than the buffer, printable with
 * no space (it goes into an Authorization header), and its lifetime is at
 * most a day; a refused answer leaves nothing behind.
 */
#include "origin/azure_identity.h"
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char token[256];
    uint64_t ttl = 0;
    size_t n, i;

    fz_quiet();
    memset(token, 0x55, sizeof(token));
    if (us_azure_token_parse((const char *)data, size, token, sizeof(token), &ttl) !=
        UCACHE_OK) {
        return 0;
    }
    FZ_CHECK(memchr(token, '\0', sizeof(token)) != NULL);
    n = strlen(token);
    FZ_CHECK(n > 0);
    for (i = 0; i < n; i++) {
        FZ_CHECK(isgraph((unsigned char)token[i]));
    }
    FZ_CHECK(ttl <= 24 * 3600);
    return 0;
}
