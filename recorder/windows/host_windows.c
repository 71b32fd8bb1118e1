/*
 * Host facts and process services on Windows.
 *
 * Boot identity: Windows counts boots in the registry value
 * HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\
 * PrefetchParameters\BootId. Where it is missing (Wine) the boot id is
 * unknown and reboots are not detected; a boot id guessed from the clock
 * could change without a reboot and close open lifetimes wrongly.
 *
 * Stopping: a console control handler turns Ctrl-C, Ctrl-Break, closing
 * the console, logoff and shutdown into the stop flag and wakes the loop's
 * sleep. For close, logoff and shutdown Windows ends the process as soon
 * as the handler returns, so the handler waits (a little under the 5 s
 * Windows allows) for ch_host_stop_done, i.e. for the last sample to be
 * committed and the run ended. Logoff is ignored when running as SYSTEM:
 * it is sent to every console process when any user logs off.
 */
#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "win_text.h"

#define CLOSE_WAIT_MS 4500

static volatile LONG stop_requested;
static HANDLE stop_event;  /* set on a stop request: ends ch_host_sleep_ms */
static HANDLE done_event;  /* set by ch_host_stop_done */
static int running_as_system;

void ch_host_name(char *out, size_t n)
{
    wchar_t buf[256];
    DWORD len = sizeof buf / sizeof buf[0];
    char *name = GetComputerNameExW(ComputerNameDnsHostname, buf, &len) ? ch_utf8_from_wide(buf, (int)len) : NULL;
    snprintf(out, n, "%s", name != NULL && *name != '\0' ? name : "unknown");
    free(name);
}

/* "Windows 10.0.19045": RtlGetVersion tells the truth where GetVersionEx
 * is subject to compatibility shims. */
void ch_host_os(char *out, size_t n)
{
    typedef LONG(WINAPI * get_version_fn)(OSVERSIONINFOW *);
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    get_version_fn get = (get_version_fn)(void (*)(void))(ntdll ? GetProcAddress(ntdll, "RtlGetVersion") : NULL);
    OSVERSIONINFOW v = {sizeof v, 0, 0, 0, 0, {0}};
    if (get != NULL && get(&v) == 0)
        snprintf(out, n, "Windows %lu.%lu.%lu", (unsigned long)v.dwMajorVersion, (unsigned long)v.dwMinorVersion,
                 (unsigned long)v.dwBuildNumber);
    else
        snprintf(out, n, "Windows");
}

int ch_host_boot_id(char *out, size_t n)
{
    DWORD id = 0, size = sizeof id;
    LONG rc = RegGetValueW(HKEY_LOCAL_MACHINE,
                           L"SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management\\PrefetchParameters",
                           L"BootId", RRF_RT_REG_DWORD, NULL, &id, &size);
    if (rc != ERROR_SUCCESS)
        return -1;
    snprintf(out, n, "bootid-%lu", (unsigned long)id);
    return 0;
}

bool ch_host_recorder_alive(int64_t pid)
{
    if (pid <= 0 || pid == (int64_t)GetCurrentProcessId())
        return false;
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (h == NULL)
        return GetLastError() == ERROR_ACCESS_DENIED; /* it exists; assume the worst */
    wchar_t path[32768];
    DWORD len = sizeof path / sizeof path[0], code = 0;
    bool alive = QueryFullProcessImageNameW(h, 0, path, &len) && GetExitCodeProcess(h, &code) && code == STILL_ACTIVE;
    CloseHandle(h);
    if (!alive)
        return false;
    const wchar_t *base = path;
    for (const wchar_t *p = path; *p; p++)
        if (*p == L'\\' || *p == L'/')
            base = p + 1;
    return _wcsicmp(base, L"connhist-record.exe") == 0;
}

int64_t ch_host_pid(void)
{
    return (int64_t)GetCurrentProcessId();
}

int64_t ch_host_uid(void)
{
    return -1;
}

/* New files inherit the database directory's ACL (platform_windows.c). */
void ch_host_private_files(void)
{
}

void ch_host_return_freed_memory(void)
{
}

static BOOL WINAPI on_console_event(DWORD type)
{
    if (type == CTRL_LOGOFF_EVENT && running_as_system)
        return TRUE;
    InterlockedExchange(&stop_requested, 1);
    SetEvent(stop_event);
    if (type == CTRL_CLOSE_EVENT || type == CTRL_LOGOFF_EVENT || type == CTRL_SHUTDOWN_EVENT)
        WaitForSingleObject(done_event, CLOSE_WAIT_MS);
    return TRUE;
}

static int is_local_system(void)
{
    HANDLE token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return 0;
    union {
        TOKEN_USER user;
        char raw[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
    } info;
    DWORD n = 0;
    int system = GetTokenInformation(token, TokenUser, &info, sizeof info, &n) &&
                 IsWellKnownSid(info.user.User.Sid, WinLocalSystemSid);
    CloseHandle(token);
    return system;
}

void ch_host_catch_stop(void)
{
    running_as_system = is_local_system();
    stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    done_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    SetConsoleCtrlHandler(on_console_event, TRUE);
}

bool ch_host_stop_requested(void)
{
    return InterlockedCompareExchange(&stop_requested, 0, 0) != 0;
}

void ch_host_stop_done(void)
{
    if (done_event != NULL)
        SetEvent(done_event);
}

void ch_host_sleep_ms(int64_t ms)
{
    if (ms <= 0 || ch_host_stop_requested())
        return;
    if (stop_event != NULL)
        WaitForSingleObject(stop_event, (DWORD)(ms > 0x7fffffff ? 0x7fffffff : ms));
    else
        Sleep((DWORD)ms);
}
