/*
 * SHA-1 of one message, for the Community ID flow hash (community_id.h).
 * One interface, one file per platform: sha1_openssl.c (libcrypto, Linux)
 * and sha1_bcrypt.c (Windows CNG, a system DLL), so the Windows build needs
 * no OpenSSL. SHA-1 is used here as the Community ID specification fixes
 * it, for joining records, not for security.
 */
#ifndef CHQ_SHA1_H
#define CHQ_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_SIZE 20

/* The SHA-1 digest of the n bytes at data into out. Returns 0, or -1 when
 * the platform's hash is not available (out is then untouched). */
int sha1_digest(const void *data, size_t n, uint8_t out[SHA1_DIGEST_SIZE]);

#endif
