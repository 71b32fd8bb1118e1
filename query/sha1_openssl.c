/*
 * SHA-1 from OpenSSL's libcrypto (see sha1.h). The one-shot SHA1() of
 * OpenSSL 3 looks the algorithm up again on every call, under a lock, which
 * costs more than hashing 40 bytes; the algorithm and a context are fetched
 * once here and kept for the life of the process.
 */
#include "sha1.h"

#include <openssl/evp.h>

static EVP_MD *sha1;
static EVP_MD_CTX *ctx;

int sha1_digest(const void *data, size_t n, uint8_t out[SHA1_DIGEST_SIZE])
{
    if (sha1 == NULL && (sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL)
        return -1;
    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
        return -1;
    unsigned int len = 0;
    if (EVP_DigestInit_ex2(ctx, sha1, NULL) != 1 || EVP_DigestUpdate(ctx, data, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != SHA1_DIGEST_SIZE)
        return -1;
    return 0;
}
