/*
 * The /proc/net/{tcp,tcp6,udp,udp6} reader: the fallback sampler where
 * netlink sock_diag is refused. These files give no socket cookie, so rows
 * are identified by inode (and TIME_WAIT rows, which have none, by their
 * addresses).
 */
#ifndef CH_PROCNET_H
#define CH_PROCNET_H

#include "sample.h"

/*
 * Parses one line of a /proc/net table of the given protocol (CH_TCP or
 * CH_UDP) and family (4 or 6) into out. Returns 1 for a socket row, 0 for
 * the header line, -1 for a malformed line.
 */
int ch_procnet_parse_line(const char *line, int proto, int family, ch_sock *out);

/*
 * Reads dir/tcp, dir/tcp6, dir/udp, dir/udp6 (dir is normally "/proc/net")
 * into out. A missing table (no IPv6 in the kernel) is skipped. Returns 0,
 * or -1 with a message in err when no table could be read or a line is
 * malformed.
 */
int ch_procnet_read(const char *dir, ch_sample *out, char *err, size_t errn);

#endif
