/*
 * SHA-256 and HMAC-SHA-256 from the platform's own maintained library:
 * OpenSSL's libcrypto on Linux (platform_digest_openssl.c), Windows'
 * BCrypt in the .exe (platform_digest_windows.c). Nothing here is a hash of
 * our own: this is only the neutral interface the chain (recorder/chain.c)
 * and its verifier (query/verify.c) share.
 */
#ifndef CH_DIGEST_H
#define CH_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define CH_DIGEST_LEN 32
#define CH_DIGEST_KEY_MAX 1024

typedef struct ch_digest ch_digest;

/* A reusable hasher: HMAC-SHA-256 with key (keylen bytes) when key is not
 * NULL, plain SHA-256 otherwise. NULL when the library refuses. */
ch_digest *ch_digest_new(const unsigned char *key, size_t keylen);
void ch_digest_free(ch_digest *d);

/* One message in pieces: start, add any number of pieces, finish into out.
 * Each returns 0, or -1 when the library failed (out is then unusable). */
int ch_digest_start(ch_digest *d);
int ch_digest_add(ch_digest *d, const void *data, size_t n);
int ch_digest_finish(ch_digest *d, unsigned char out[CH_DIGEST_LEN]);

/* The whole message at once. */
int ch_digest_once(ch_digest *d, const void *data, size_t n, unsigned char out[CH_DIGEST_LEN]);

/* What the build hashes with, for --version and manifests ("OpenSSL 3.0.19"). */
const char *ch_digest_library(void);

#endif
