/*
 * libFuzzer target: a netlink receive buffer of sock_diag replies, as
 * recv() would leave it. The first byte picks TCP or UDP rows; the dump's
 * sequence number is taken from the first message so replies count. Runs
 * the buffer twice into one sample, as two recv() calls of a dump would;
 * then again into a sample with the tracker's hooks (consume and prefetch,
 * which parse the buffer in slices), which must give the same rows.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag_parse.h"

/* Hooks as the tracker's, keeping every row: prefetch checks only that it
 * is given what a slice can hold. */
static bool keep_row(void *ctx, const ch_sock *row)
{
    (void)ctx, (void)row;
    return false;
}

static void check_prefetch(void *ctx, const uint64_t *idents, size_t n)
{
    (void)ctx;
    if (n == 0 || n > 128 || idents == NULL)
        abort();
}

/* Parses the buffer twice into sample, as two receives; returns the last code. */
static int parse_twice(ch_diag_dump *d, const void *buf, size_t len, ch_sample *sample)
{
    int rc = CH_DIAG_MORE;
    for (int pass = 0; pass < 2; pass++) {
        rc = ch_diag_parse(d, buf, len, sample);
        if (rc != CH_DIAG_MORE && rc != CH_DIAG_DONE && rc != CH_DIAG_ERROR)
            abort();
        if (rc == CH_DIAG_ERROR && d->error <= 0)
            abort();
        if (rc != CH_DIAG_MORE)
            break;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    /* A heap copy of exactly len bytes: ASan sees any read past the end,
     * and malloc's alignment is what recv() into the sampler's buffer gives. */
    void *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, len);
    uint32_t seq = 0;
    if (len >= 12)
        memcpy(&seq, (const char *)buf + 8, sizeof seq); /* nlmsg_seq */
    ch_diag_dump d = {.seq = seq, .tcp = data[0] & 1}, d2 = d;
    ch_sample sample = {0}, sliced = {.consume = keep_row, .prefetch = check_prefetch};
    int rc = parse_twice(&d, buf, len, &sample);
    if (parse_twice(&d2, buf, len, &sliced) != rc || sliced.count != sample.count)
        abort();
    for (size_t i = 0; i < sample.count; i++) {
        ch_sock a = ch_sample_row(&sample, i), b = ch_sample_row(&sliced, i);
        if (!ch_sock_same(&a, &b))
            abort();
    }
    ch_sample_free(&sliced);
    for (size_t i = 0; i < sample.count; i++) {
        ch_sock row = ch_sample_row(&sample, i);
        const ch_sock *r = &row;
        if (r->state >= CH_ST_COUNT || (r->local.family != 4 && r->local.family != 6))
            abort();
    }
    if (sample.count > len / 16 * 2) /* every row costs a message header at least */
        abort();
    ch_sample_free(&sample);
    free(buf);
    return 0;
}
