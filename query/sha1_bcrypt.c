/*
 * SHA-1 from Windows CNG, bcrypt.dll (see sha1.h). The algorithm provider
 * is opened once and kept: opening it is the expensive part, and an export
 * hashes every lifetime. CreateHash/HashData/FinishHash rather than
 * BCryptHash, which needs Windows 10.
 */
#include "sha1.h"

#include <windows.h>
#include <bcrypt.h>

static BCRYPT_ALG_HANDLE provider;
static int provider_failed;

int sha1_digest(const void *data, size_t n, uint8_t out[SHA1_DIGEST_SIZE])
{
    if (provider == NULL && !provider_failed &&
        !BCRYPT_SUCCESS(BCryptOpenAlgorithmProvider(&provider, BCRYPT_SHA1_ALGORITHM, NULL, 0))) {
        provider = NULL;
        provider_failed = 1;
    }
    if (provider == NULL || n > ULONG_MAX)
        return -1;
    BCRYPT_HASH_HANDLE hash;
    if (!BCRYPT_SUCCESS(BCryptCreateHash(provider, &hash, NULL, 0, NULL, 0, 0)))
        return -1;
    int ok = BCRYPT_SUCCESS(BCryptHashData(hash, (PUCHAR)data, (ULONG)n, 0)) &&
             BCRYPT_SUCCESS(BCryptFinishHash(hash, out, SHA1_DIGEST_SIZE, 0));
    BCryptDestroyHash(hash);
    return ok ? 0 : -1;
}
