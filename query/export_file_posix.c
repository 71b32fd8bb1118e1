/*
 * export_file.h on POSIX systems.
 */
#define _POSIX_C_SOURCE 200809L
#include "export_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

FILE *xf_open(const char *path, const char *mode)
{
    return fopen(path, mode);
}

int xf_sync(FILE *f)
{
    if (fflush(f) != 0)
        return -1;
    /* A pipe or terminal cannot be synced; what reached it is all there is. */
    return fsync(fileno(f)) == 0 || errno == EINVAL || errno == EROFS ? 0 : -1;
}

/* Syncs the directory holding path, so that a rename in it is durable. */
static void sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse it on a directory */
        close(fd);
    }
}

int xf_replace(const char *from, const char *to)
{
    if (rename(from, to) != 0)
        return -1;
    sync_dir(to);
    return 0;
}

int xf_truncate(FILE *f, int64_t size)
{
    return fflush(f) == 0 && ftruncate(fileno(f), (off_t)size) == 0 ? 0 : -1;
}

bool xf_still_at(FILE *f, const char *path)
{
    struct stat open_st, path_st;
    if (fstat(fileno(f), &open_st) != 0)
        return true;
    if (stat(path, &path_st) != 0)
        return errno != ENOENT;
    return open_st.st_dev == path_st.st_dev && open_st.st_ino == path_st.st_ino;
}

void xf_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
