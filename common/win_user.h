/*
 * The user a Windows process runs as, read from its access token. The
 * platform layer needs it as a SID string (the creating user's entry in the
 * database directory's ACL), process attribution as a name (a socket
 * owner's DOMAIN\name). Used by Windows files only.
 */
#ifndef CH_WIN_USER_H
#define CH_WIN_USER_H

#include <wchar.h>

#include <windows.h>

/* The token user of process (a handle with PROCESS_QUERY_LIMITED_INFORMATION)
 * as "S-1-5-21-...", to LocalFree; NULL when it cannot be read. */
wchar_t *ch_process_user_sid(HANDLE process);

/* The token user of process as DOMAIN\name (name alone when the account has
 * no domain), a malloc'd UTF-8 string; NULL when it cannot be read or the
 * SID maps to no account. */
char *ch_process_user_name(HANDLE process);

#endif
