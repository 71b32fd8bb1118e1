/*
 * SHA-256 and HMAC-SHA-256 through OpenSSL's libcrypto (EVP), for the POSIX
 * build. A hasher keeps its context between messages: a digest context is
 * initialised again per message, an HMAC context keeps its key, so the
 * per-row cost is the hash itself.
 */
#include "digest.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <stdlib.h>

struct ch_digest {
    EVP_MD *md;           /* fetched once: an implicit fetch per message takes locks */
    EVP_MD_CTX *md_ctx;   /* plain SHA-256 */
    EVP_MAC *mac;
    EVP_MAC_CTX *mac_ctx; /* HMAC: the key is set once */
};

ch_digest *ch_digest_new(const unsigned char *key, size_t keylen)
{
    ch_digest *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    if (key == NULL) {
        d->md = EVP_MD_fetch(NULL, "SHA256", NULL);
        d->md_ctx = d->md != NULL ? EVP_MD_CTX_new() : NULL;
        if (d->md_ctx == NULL) {
            ch_digest_free(d);
            return NULL;
        }
        return d;
    }
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
    EVP_MD_CTX_free(d->md_ctx);
    EVP_MD_free(d->md);
    EVP_MAC_CTX_free(d->mac_ctx);
    EVP_MAC_free(d->mac);
    free(d);
}

int ch_digest_start(ch_digest *d)
{
    if (d->mac_ctx != NULL) /* the same key again */
        return EVP_MAC_init(d->mac_ctx, NULL, 0, NULL) == 1 ? 0 : -1;
    return EVP_DigestInit_ex2(d->md_ctx, d->md, NULL) == 1 ? 0 : -1;
}

int ch_digest_add(ch_digest *d, const void *data, size_t n)
{
    if (d->mac_ctx != NULL)
        return EVP_MAC_update(d->mac_ctx, data, n) == 1 ? 0 : -1;
    return EVP_DigestUpdate(d->md_ctx, data, n) == 1 ? 0 : -1;
}

int ch_digest_finish(ch_digest *d, unsigned char out[CH_DIGEST_LEN])
{
    if (d->mac_ctx != NULL) {
        size_t len = 0;
        return EVP_MAC_final(d->mac_ctx, out, &len, CH_DIGEST_LEN) == 1 && len == CH_DIGEST_LEN ? 0 : -1;
    }
    unsigned int len = 0;
    return EVP_DigestFinal_ex(d->md_ctx, out, &len) == 1 && len == CH_DIGEST_LEN ? 0 : -1;
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
