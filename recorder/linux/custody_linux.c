/*
 * The chain's anchors go to syslog (journald keeps them under the
 * identifier connhist-record, facility daemon); a key file must be a
 * regular file owned by root or by the recorder's user, with no permission
 * for group or others.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "custody.h"

void ch_custody_log(const char *line)
{
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
