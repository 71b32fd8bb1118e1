/*
 * Names as they were resolved: the DNS answers this machine received, as
 * neutral facts (Linux, as root: a packet capture of port 53 on every
 * interface, loopback included, linux/names_pcap.c), so that a connection
 * can later be joined to the name that was asked for its remote address
 * (answers.h keeps them; connhist-query joins them to lifetimes).
 *
 * A fact is one record of a DNS response's answer section that matters for
 * the join: an address (A, AAAA) or an alias (CNAME), with the name the
 * client asked for, the name the record is for (the last name of a CNAME
 * chain for an address), its TTL, who answered (the resolver) and who asked
 * (the client's address and port), and when it was captured. Identical
 * facts read between two samples are counted in one (count).
 *
 * The source only reads and delivers; the store decides. Where there is no
 * source (not root, no capture permission, built without libpcap or ldns,
 * Windows), ch_names_open says why in one line for the run's notes, and the
 * recorder goes on without names. DNS over TLS or HTTPS is encrypted and
 * never seen. linux/names_pcap.c and names_none.c implement it.
 */
#ifndef CH_NAMES_H
#define CH_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CH_DNS_NAME_MAX 256 /* a presentation name without its final dot, NUL included */

enum { CH_DNS_A = 1, CH_DNS_CNAME = 5, CH_DNS_AAAA = 28 };

typedef struct {
    int64_t at;              /* first capture of this fact since the last take, ms UTC */
    int64_t last_at;         /* the latest, ms UTC */
    uint32_t count;          /* responses that carried it since the last take */
    uint16_t type;           /* CH_DNS_A, CH_DNS_AAAA or CH_DNS_CNAME */
    uint16_t qtype;          /* the question's type: 1 A, 28 AAAA, 65 HTTPS, 255 ANY, ... (any number) */
    uint8_t proto;           /* 17 (UDP) or 6 (TCP): how the response came */
    uint32_t ttl;            /* seconds, as the resolver gave it */
    ch_addr addr;            /* A, AAAA: the address; family 0 otherwise */
    ch_addr resolver;        /* who answered (the response's source) */
    ch_addr client;          /* who asked (the response's destination) */
    uint16_t client_port;
    char qname[CH_DNS_NAME_MAX];  /* the name the client asked for, lower case */
    char rname[CH_DNS_NAME_MAX];  /* the name this record is for */
    char target[CH_DNS_NAME_MAX]; /* CNAME: the name it points to; "" otherwise */
} ch_dns_answer;

typedef struct ch_names ch_names;

/* What this build has, in one line for --version. */
const char *ch_names_build(void);

/* Starts the capture. Returns NULL with the reason it is not available in
 * why (one line, no trailing period). */
ch_names *ch_names_open(char *why, size_t whyn);
void ch_names_close(ch_names *n);

/*
 * The facts read since the last take, oldest first, in a buffer that stays
 * valid until the next take or ch_names_close. Never blocks for long.
 */
const ch_dns_answer *ch_names_take(ch_names *n, size_t *count);

/* At the stop, before the last take: waits until what arrived so far has
 * been read (the kernel hands its ring over a block at a time, a little
 * late), so that the last take has it. */
void ch_names_settle(ch_names *n);

/* Answers lost since the capture was opened: the queue between two samples
 * was full, or the kernel's ring was (packets it dropped are counted as
 * one answer each). */
int64_t ch_names_dropped(const ch_names *n);

/* Why the capture stopped by itself (its thread failed), or NULL while it runs. */
const char *ch_names_failed(const ch_names *n);

#endif
