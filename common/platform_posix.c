/*
 * The platform layer on Linux and other POSIX systems: clock_gettime,
 * stat/access/mkdir, the XDG state directory, inet_ntop/inet_pton (which
 * give the canonical RFC 5952 forms).
 */
#define _POSIX_C_SOURCE 200809L
#include "platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <pwd.h>
#include <sys/socket.h>

#include "db.h"
#include "timeutil.h"

static int last_errno;

void ch_platform_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}

int64_t ch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ch_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum ch_path_kind ch_path_kind(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        last_errno = errno;
        return errno == ENOENT ? CH_PATH_MISSING : CH_PATH_ERROR;
    }
    return S_ISDIR(st.st_mode) ? CH_PATH_DIR : S_ISREG(st.st_mode) ? CH_PATH_FILE : CH_PATH_OTHER;
}

int ch_path_is_foreign_link(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid != geteuid() && st.st_uid != 0;
}

FILE *ch_fopen(const char *path, const char *mode)
{
    return fopen(path, mode);
}

int ch_remove(const char *path)
{
    return remove(path);
}

int ch_path_readable(const char *path)
{
    if (access(path, R_OK) == 0)
        return 1;
    last_errno = errno;
    return 0;
}

int ch_make_private_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    last_errno = errno;
    return -1;
}

const char *ch_platform_error(void)
{
    return strerror(last_errno);
}

int ch_is_path_sep(char c)
{
    return c == '/';
}

size_t ch_path_root_len(const char *path)
{
    return path[0] == '/' ? 1 : 0;
}

/* /var/lib for root, else $XDG_STATE_HOME (default ~/.local/state). */
int ch_platform_default_db(char *out, size_t n, char *err)
{
    int len;
    if (geteuid() == 0) {
        len = snprintf(out, n, "/var/lib/connhist/connhist.db");
    } else {
        const char *xdg = getenv("XDG_STATE_HOME");
        if (xdg != NULL && xdg[0] == '/') {
            len = snprintf(out, n, "%s/connhist/connhist.db", xdg);
        } else {
            const char *home = getenv("HOME");
            if (home == NULL || home[0] != '/') {
                struct passwd *pw = getpwuid(geteuid());
                home = pw != NULL ? pw->pw_dir : NULL;
            }
            if (home == NULL) {
                snprintf(err, CH_ERR_MAX, "no home directory for the default database: pass --db PATH or set CONNHIST_DB");
                return -1;
            }
            len = snprintf(out, n, "%s/.local/state/connhist/connhist.db", home);
        }
    }
    if (len < 0 || (size_t)len >= n) {
        snprintf(err, CH_ERR_MAX, "default database path is too long: pass --db PATH");
        return -1;
    }
    return 0;
}

int ch_platform_ntop(int family, const uint8_t *bytes, char *out, size_t n)
{
    return inet_ntop(family == 6 ? AF_INET6 : AF_INET, bytes, out, (socklen_t)n) != NULL ? 0 : -1;
}

int ch_platform_pton(int family, const char *text, uint8_t *bytes)
{
    return inet_pton(family == 6 ? AF_INET6 : AF_INET, text, bytes) == 1 ? 0 : -1;
}

int ch_file_identity(const char *path, ch_file_id *out)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        last_errno = errno;
        return -1;
    }
    out->volume = (uint64_t)st.st_dev;
    out->file = (uint64_t)st.st_ino;
    return 0;
}

void ch_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Appends a copy of name to *names (*n of them, room for *cap). 0 or -1. */
static int add_name(char ***names, size_t *n, size_t *cap, const char *name)
{
    if (*n == *cap) {
        size_t more = *cap ? 2 * *cap : 16;
        char **grown = realloc(*names, more * sizeof *grown);
        if (grown == NULL)
            return -1;
        *names = grown;
        *cap = more;
    }
    (*names)[*n] = strdup(name);
    if ((*names)[*n] == NULL)
        return -1;
    ++*n;
    return 0;
}

int ch_list_dir(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        last_errno = errno;
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (add_name(names, n, &cap, e->d_name) != 0) {
            errno = ENOMEM;
            break;
        }
    }
    last_errno = errno; /* readdir leaves errno alone at the end of the directory */
    closedir(d);
    if (last_errno != 0) {
        ch_free_names(*names, *n);
        *names = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}
