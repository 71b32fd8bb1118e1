/*
 * SHA-256 and HMAC-SHA-256 through OpenSSL's libcrypto, for the POSIX
 * build. A hasher keeps its context between messages: a digest context is
 * initialised again per message, an HMAC context keeps its key, so the
 * per-row cost is the hash itself.
 *
 * Plain SHA-256 goes through libcrypto's SHA256_Init/Update/Final, the
 * same implementation (and the same CPU instructions) as EVP's, without
 * EVP's providers: the first EVP fetch initialises the provider machinery
 * (every algorithm's name, the configuration file), 1.4 MiB of the
 * recorder's peak at its first tick (bench/README.md, branch mem5); a
 * recorder without a chain key never needs it. These
 * functions are deprecated in OpenSSL 3 but still built by default (Debian
 * included); HMAC keeps EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init and friends: see above */
#include "digest.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <stdlib.h>

struct ch_digest {
    SHA256_CTX sha; /* plain SHA-256 (no key): the low-level functions */
    EVP_MAC *mac;
    EVP_MAC_CTX *mac_ctx; /* HMAC: the key is set once */
};

ch_digest *ch_digest_new(const unsigned char *key, size_t keylen)
{
    ch_digest *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    if (key == NULL)
        return d;
    d->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    d->mac_ctx = d->mac != NULL ? EVP_MAC_CTX_new(d->mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (d->mac_ctx == NULL || EVP_MAC_init(d->mac_ctx, key, keylen, params) != 1) {
        ch_digest_free(d);
        return NULL;
    }
    return d;
}

void ch_digest_free(ch_digest *d)
{
    if (d == NULL)
        return;
    EVP_MAC_CTX_free(d->mac_ctx);
    EVP_MAC_free(d->mac);
    free(d);
}

int ch_digest_start(ch_digest *d)
{
    if (d->mac_ctx != NULL) /* the same key again */
        return EVP_MAC_init(d->mac_ctx, NULL, 0, NULL) == 1 ? 0 : -1;
    return SHA256_Init(&d->sha) == 1 ? 0 : -1;
}

int ch_digest_add(ch_digest *d, const void *data, size_t n)
{
    if (d->mac_ctx != NULL)
        return EVP_MAC_update(d->mac_ctx, data, n) == 1 ? 0 : -1;
    return SHA256_Update(&d->sha, data, n) == 1 ? 0 : -1;
}

int ch_digest_finish(ch_digest *d, unsigned char out[CH_DIGEST_LEN])
{
    if (d->mac_ctx != NULL) {
        size_t len = 0;
        return EVP_MAC_final(d->mac_ctx, out, &len, CH_DIGEST_LEN) == 1 && len == CH_DIGEST_LEN ? 0 : -1;
    }
    return SHA256_Final(out, &d->sha) == 1 ? 0 : -1;
}

int ch_digest_once(ch_digest *d, const void *data, size_t n, unsigned char out[CH_DIGEST_LEN])
{
    if (ch_digest_start(d) != 0 || ch_digest_add(d, data, n) != 0)
        return -1;
    return ch_digest_finish(d, out);
}

const char *ch_digest_library(void)
{
    return OPENSSL_VERSION_TEXT;
}
