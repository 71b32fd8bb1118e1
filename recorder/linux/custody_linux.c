/*
 * The chain's anchors go to syslog (journald keeps them under the
 * identifier connhist-record, facility daemon); a key file must be a
 * regular file owned by root or by the recorder's user, with no permission
 * for group or others.
 *
 * $CONNHIST_CHAIN_SYSLOG=PATH sends them to the syslog socket at PATH
 * instead of /dev/log (a daemon listening elsewhere, a chroot, or a test's
 * own receiver), in the same format: "<PRI>TIMESTAMP TAG[PID]: MESSAGE".
 */
#define _GNU_SOURCE /* localtime_r */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "custody.h"

/* One datagram to the syslog socket at path; nothing when it cannot. */
static void log_to(const char *path, const char *line)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    char stamp[32], msg[2048];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", localtime_r(&now, &tm));
    int n = snprintf(msg, sizeof msg, "<%d>%s connhist-record[%ld]: %s", LOG_DAEMON | LOG_NOTICE, stamp,
                     (long)getpid(), line);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (n > 0)
        sendto(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, 0, (struct sockaddr *)&sa, sizeof sa);
    close(fd);
}

void ch_custody_log(const char *line)
{
    const char *path = getenv("CONNHIST_CHAIN_SYSLOG");
    if (path != NULL && *path != '\0') {
        log_to(path, line);
        return;
    }
    openlog("connhist-record", LOG_PID, LOG_DAEMON);
    syslog(LOG_NOTICE, "%s", line);
    closelog();
}

int ch_custody_key_private(const char *path, char *err, size_t errn)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errn, "chain key file %s: cannot be read (expected a file of 16 to 1024 bytes)", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errn, "chain key file %s: not a regular file", path);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errn, "chain key file %s: owned by uid %u (expected root or uid %u)", path,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errn, "chain key file %s: mode %03o lets others read or write it (expected 0600 or 0400: chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 0777), path);
        return -1;
    }
    return 0;
}
