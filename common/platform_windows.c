/*
 * The platform layer on Windows. Paths are UTF-8 inside connhist and UTF-16
 * at every Win32 call. The database directory is created with an explicit
 * ACL (the equivalent of mode 0700 on POSIX): full control for SYSTEM and
 * the Administrators group, and, only when the creator is not elevated, for
 * the creating user, so that an unprivileged --db under the user's profile
 * stays usable by its owner. The ACL is protected: nothing is inherited
 * from %ProgramData%, which grants read to every user.
 */
#include "platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>
#include <ws2tcpip.h>
#include <sddl.h>
#include <shellapi.h>

#include "db.h"
#include "timeutil.h"
#include "win_text.h"
#include "win_user.h"

/* 100 ns ticks between 1601-01-01 (FILETIME) and 1970-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000LL

static char last_error[256];

static void keep_error(DWORD code)
{
    wchar_t buf[200];
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, buf,
                             sizeof buf / sizeof buf[0], NULL);
    while (n > 0 && (buf[n - 1] == L'\r' || buf[n - 1] == L'\n' || buf[n - 1] == L'.'))
        n--;
    char *text = n > 0 ? ch_utf8_from_wide(buf, (int)n) : NULL;
    snprintf(last_error, sizeof last_error, "%s (Windows error %lu)", text ? text : "error", (unsigned long)code);
    free(text);
}

char *ch_utf8_from_wide(const wchar_t *w, int len)
{
    if (w == NULL)
        return NULL;
    int n = WideCharToMultiByte(CP_UTF8, 0, w, len, NULL, 0, NULL, NULL);
    char *out = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (out == NULL)
        return NULL;
    if (n > 0)
        WideCharToMultiByte(CP_UTF8, 0, w, len, out, n, NULL, NULL);
    out[n > 0 ? n : 0] = '\0'; /* with len == -1 the NUL was converted too */
    return out;
}

wchar_t *ch_wide_from_utf8(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0)
        return NULL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (w != NULL)
        MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n);
    return w;
}

void ch_platform_init(int *argc, char ***argv)
{
    SetConsoleOutputCP(CP_UTF8);
    int n = 0;
    wchar_t **wargv = CommandLineToArgvW(GetCommandLineW(), &n);
    if (wargv == NULL)
        return;
    /* Kept for the life of the program, like the original argv. */
    char **args = calloc((size_t)n + 1, sizeof *args);
    for (int i = 0; args != NULL && i < n; i++) {
        args[i] = ch_utf8_from_wide(wargv[i], -1);
        if (args[i] == NULL) {
            LocalFree(wargv);
            return; /* out of memory: keep the ANSI argv */
        }
    }
    LocalFree(wargv);
    if (args == NULL)
        return;
    *argc = n;
    *argv = args;
}

int64_t ch_now_ms(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    int64_t t = (int64_t)((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime);
    return (t - FILETIME_UNIX_EPOCH) / 10000;
}

int64_t ch_mono_ms(void)
{
    return (int64_t)GetTickCount64();
}

enum ch_path_kind ch_path_kind(const char *path)
{
    wchar_t *w = ch_wide_from_utf8(path);
    if (w == NULL) {
        keep_error(ERROR_NO_UNICODE_TRANSLATION);
        return CH_PATH_ERROR;
    }
    DWORD attr = GetFileAttributesW(w);
    DWORD code = GetLastError();
    free(w);
    if (attr != INVALID_FILE_ATTRIBUTES)
        return attr & FILE_ATTRIBUTE_DIRECTORY ? CH_PATH_DIR : CH_PATH_FILE;
    keep_error(code);
    return code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND ? CH_PATH_MISSING : CH_PATH_ERROR;
}

int ch_path_is_foreign_link(const char *path)
{
    (void)path;
    return 0;
}

FILE *ch_fopen(const char *path, const char *mode)
{
    wchar_t *wpath = ch_wide_from_utf8(path), *wmode = ch_wide_from_utf8(mode);
    FILE *f = NULL;
    if (wpath != NULL && wmode != NULL)
        f = _wfopen(wpath, wmode);
    else
        errno = EINVAL; /* not UTF-8 */
    free(wpath);
    free(wmode);
    return f;
}

int ch_remove(const char *path)
{
    wchar_t *w = ch_wide_from_utf8(path);
    if (w == NULL) {
        errno = EINVAL;
        return -1;
    }
    int rc = _wremove(w);
    free(w);
    return rc;
}

int ch_path_readable(const char *path)
{
    wchar_t *w = ch_wide_from_utf8(path);
    if (w == NULL) {
        keep_error(ERROR_NO_UNICODE_TRANSLATION);
        return 0;
    }
    HANDLE h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD code = GetLastError();
    free(w);
    if (h == INVALID_HANDLE_VALUE) {
        keep_error(code);
        return 0;
    }
    CloseHandle(h);
    return 1;
}

/* True when this process runs elevated (or as SYSTEM). */
static int is_elevated(void)
{
    HANDLE token;
    TOKEN_ELEVATION e = {0};
    DWORD n = 0;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return 0;
    BOOL ok = GetTokenInformation(token, TokenElevation, &e, sizeof e, &n);
    CloseHandle(token);
    return ok && e.TokenIsElevated;
}

/* The private directory's security descriptor (see the top of this file). */
static PSECURITY_DESCRIPTOR private_dir_sd(void)
{
    wchar_t sddl[512] = L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";
    if (!is_elevated()) {
        wchar_t *sid = ch_process_user_sid(GetCurrentProcess());
        if (sid != NULL) {
            _snwprintf(sddl, sizeof sddl / sizeof sddl[0] - 1, L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;%ls)", sid);
            LocalFree(sid);
        }
    }
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
        return NULL;
    return sd;
}

int ch_make_private_dir(const char *dir)
{
    wchar_t *w = ch_wide_from_utf8(dir);
    if (w == NULL) {
        keep_error(ERROR_NO_UNICODE_TRANSLATION);
        return -1;
    }
    DWORD attr = GetFileAttributesW(w);
    if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY)) {
        free(w);
        return 0;
    }
    PSECURITY_DESCRIPTOR sd = private_dir_sd();
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    BOOL ok = sd != NULL && CreateDirectoryW(w, &sa);
    DWORD code = sd == NULL ? GetLastError() : ok ? 0 : GetLastError();
    LocalFree(sd);
    free(w);
    if (ok || code == ERROR_ALREADY_EXISTS)
        return 0;
    keep_error(code);
    return -1;
}

const char *ch_platform_error(void)
{
    return last_error;
}

int ch_is_path_sep(char c)
{
    return c == '/' || c == '\\';
}

size_t ch_path_root_len(const char *path)
{
    if (ch_is_path_sep(path[0]) && ch_is_path_sep(path[1])) {
        /* \\server\share\ : the share itself is never created. */
        size_t i = 2;
        for (int part = 0; part < 2 && path[i] != '\0'; part++) {
            while (path[i] != '\0' && !ch_is_path_sep(path[i]))
                i++;
            if (path[i] != '\0')
                i++;
        }
        return i;
    }
    if (path[0] != '\0' && path[1] == ':')
        return ch_is_path_sep(path[2]) ? 3 : 2;
    return ch_is_path_sep(path[0]) ? 1 : 0;
}

/* A UTF-8 copy of environment variable name; NULL when unset. */
static char *env_utf8(const wchar_t *name)
{
    wchar_t buf[CH_PATH_MAX];
    DWORD n = GetEnvironmentVariableW(name, buf, sizeof buf / sizeof buf[0]);
    if (n == 0 || n >= sizeof buf / sizeof buf[0])
        return NULL;
    return ch_utf8_from_wide(buf, (int)n);
}

/* %ProgramData%\connhist when elevated, else %LOCALAPPDATA%\connhist. */
int ch_platform_default_db(char *out, size_t n, char *err)
{
    const wchar_t *var = is_elevated() ? L"ProgramData" : L"LOCALAPPDATA";
    char *base = env_utf8(var);
    if (base == NULL) {
        snprintf(err, CH_ERR_MAX, "%%%ls%% is not set, so there is no default database: pass --db PATH or set CONNHIST_DB", var);
        return -1;
    }
    int len = snprintf(out, n, "%s\\connhist\\connhist.db", base);
    free(base);
    if (len < 0 || (size_t)len >= n) {
        snprintf(err, CH_ERR_MAX, "default database path is too long: pass --db PATH");
        return -1;
    }
    return 0;
}

/* inet_ntop and inet_pton live in Winsock, which wants WSAStartup first. */
static void winsock_once(void)
{
    static int started;
    if (!started) {
        WSADATA wsa;
        started = WSAStartup(MAKEWORD(2, 2), &wsa) == 0;
    }
}

int ch_platform_ntop(int family, const uint8_t *bytes, char *out, size_t n)
{
    winsock_once();
    return inet_ntop(family == 6 ? AF_INET6 : AF_INET, bytes, out, n) != NULL ? 0 : -1;
}

int ch_platform_pton(int family, const char *text, uint8_t *bytes)
{
    winsock_once();
    return inet_pton(family == 6 ? AF_INET6 : AF_INET, text, bytes) == 1 ? 0 : -1;
}

int ch_file_identity(const char *path, ch_file_id *out)
{
    wchar_t *w = ch_wide_from_utf8(path);
    if (w == NULL) {
        keep_error(ERROR_NO_UNICODE_TRANSLATION);
        return -1;
    }
    /* BACKUP_SEMANTICS: a directory opens too; no access is asked for. */
    HANDLE h = CreateFileW(w, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                           FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(w);
    BY_HANDLE_FILE_INFORMATION info;
    if (h == INVALID_HANDLE_VALUE || !GetFileInformationByHandle(h, &info)) {
        keep_error(GetLastError());
        if (h != INVALID_HANDLE_VALUE)
            CloseHandle(h);
        return -1;
    }
    CloseHandle(h);
    out->volume = info.dwVolumeSerialNumber;
    out->file = (uint64_t)info.nFileIndexHigh << 32 | info.nFileIndexLow;
    return 0;
}

void ch_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Appends name (UTF-8, taken over) to *names (*n of them, room for *cap). 0 or -1. */
static int add_name(char ***names, size_t *n, size_t *cap, char *name)
{
    if (name == NULL)
        return -1;
    if (*n == *cap) {
        size_t more = *cap ? 2 * *cap : 16;
        char **grown = realloc(*names, more * sizeof *grown);
        if (grown == NULL) {
            free(name);
            return -1;
        }
        *names = grown;
        *cap = more;
    }
    (*names)[(*n)++] = name;
    return 0;
}

int ch_list_dir(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    size_t len = strlen(dir);
    char *pattern = malloc(len + 3);
    if (pattern == NULL) {
        keep_error(ERROR_NOT_ENOUGH_MEMORY);
        return -1;
    }
    snprintf(pattern, len + 3, "%s\\*", dir);
    wchar_t *w = ch_wide_from_utf8(pattern);
    free(pattern);
    if (w == NULL) {
        keep_error(ERROR_NO_UNICODE_TRANSLATION);
        return -1;
    }
    WIN32_FIND_DATAW found;
    HANDLE h = FindFirstFileW(w, &found);
    free(w);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD code = GetLastError();
        keep_error(code);
        return code == ERROR_FILE_NOT_FOUND ? 0 : -1; /* an empty directory has no entries at all */
    }
    size_t cap = 0;
    DWORD code = 0;
    do {
        if (wcscmp(found.cFileName, L".") == 0 || wcscmp(found.cFileName, L"..") == 0)
            continue;
        if (add_name(names, n, &cap, ch_utf8_from_wide(found.cFileName, -1)) != 0) {
            code = ERROR_NOT_ENOUGH_MEMORY;
            break;
        }
    } while (FindNextFileW(h, &found));
    if (code == 0)
        code = GetLastError(); /* ERROR_NO_MORE_FILES at the end */
    FindClose(h);
    if (code != ERROR_NO_MORE_FILES) {
        keep_error(code);
        ch_free_names(*names, *n);
        *names = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}
