/*
 * The Community ID flow hash, version 1 (the specification of Corelight's
 * community-id-spec): one string per flow, the same whichever end computes
 * it, so that a lifetime recorded on a host joins Zeek's conn.log,
 * Suricata's alerts and other sensors' records of the same connection.
 */
#ifndef CHQ_COMMUNITY_ID_H
#define CHQ_COMMUNITY_ID_H

#include <stdint.h>

#include "addr.h"

/* "1:" and the base64 of a SHA-1 digest (28 characters), and the NUL. */
#define COMMUNITY_ID_TEXT 31

/*
 * The Community ID of the flow between (a, a_port) and (b, b_port) over IP
 * protocol proto (one with ports: 6 TCP, 17 UDP, 132 SCTP), with the seed
 * (0 unless the sensors agreed on another), into out. Both addresses must
 * be of one family: an IPv4 peer of a dual-stack socket is given as IPv4
 * (the caller unmaps ::ffff:a.b.c.d), as a sensor on the wire sees it.
 * Returns 0, or -1 (families differ, or no SHA-1 on this platform).
 */
int community_id_v1(uint16_t seed, uint8_t proto, const ch_addr *a, uint16_t a_port, const ch_addr *b,
                    uint16_t b_port, char out[COMMUNITY_ID_TEXT]);

#endif
