/*
 * SHA-256 and HMAC-SHA-256 through Windows' BCrypt (CNG), for the .exe.
 * The algorithm is opened once per hasher; the hash object is reusable
 * (BCRYPT_HASH_REUSABLE_FLAG, Windows 8 and later): BCryptFinishHash leaves
 * it ready for the next message with the same key.
 */
#include "digest.h"

#include <windows.h>
#include <bcrypt.h>
#include <stdlib.h>

struct ch_digest {
    BCRYPT_ALG_HANDLE alg;
    BCRYPT_HASH_HANDLE hash;
};

ch_digest *ch_digest_new(const unsigned char *key, size_t keylen)
{
    ch_digest *d = calloc(1, sizeof *d);
    if (d == NULL || keylen > CH_DIGEST_KEY_MAX)
        goto fail;
    ULONG flags = BCRYPT_HASH_REUSABLE_FLAG | (key != NULL ? BCRYPT_ALG_HANDLE_HMAC_FLAG : 0);
    if (!BCRYPT_SUCCESS(BCryptOpenAlgorithmProvider(&d->alg, BCRYPT_SHA256_ALGORITHM, NULL, flags)))
        goto fail;
    if (!BCRYPT_SUCCESS(BCryptCreateHash(d->alg, &d->hash, NULL, 0, (PUCHAR)key, (ULONG)keylen,
                                         BCRYPT_HASH_REUSABLE_FLAG)))
        goto fail;
    return d;
fail:
    ch_digest_free(d);
    return NULL;
}

void ch_digest_free(ch_digest *d)
{
    if (d == NULL)
        return;
    if (d->hash != NULL)
        BCryptDestroyHash(d->hash);
    if (d->alg != NULL)
        BCryptCloseAlgorithmProvider(d->alg, 0);
    free(d);
}

int ch_digest_start(ch_digest *d)
{
    (void)d; /* a reusable hash starts over after every finish */
    return 0;
}

int ch_digest_add(ch_digest *d, const void *data, size_t n)
{
    return BCRYPT_SUCCESS(BCryptHashData(d->hash, (PUCHAR)data, (ULONG)n, 0)) ? 0 : -1;
}

int ch_digest_finish(ch_digest *d, unsigned char out[CH_DIGEST_LEN])
{
    return BCRYPT_SUCCESS(BCryptFinishHash(d->hash, out, CH_DIGEST_LEN, 0)) ? 0 : -1;
}

int ch_digest_once(ch_digest *d, const void *data, size_t n, unsigned char out[CH_DIGEST_LEN])
{
    if (ch_digest_add(d, data, n) != 0)
        return -1;
    return ch_digest_finish(d, out);
}

const char *ch_digest_library(void)
{
    return "Windows BCrypt (CNG)";
}
