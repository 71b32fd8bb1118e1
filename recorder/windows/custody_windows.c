/*
 * The chain's anchors go to the Application event log (source
 * "connhist-record", event id 1, information; with no message file
 * registered, Event Viewer shows the line as the event's only string). A
 * key file must grant access to nobody but its owner, SYSTEM and the
 * Administrators: its DACL is read and every other allowed SID refused.
 */
#include <stdio.h>
#include <stdlib.h>

#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include "custody.h"
#include "win_text.h"

void ch_custody_log(const char *line)
{
    wchar_t *w = ch_wide_from_utf8(line);
    HANDLE src = w != NULL ? RegisterEventSourceW(NULL, L"connhist-record") : NULL;
    if (src != NULL) {
        LPCWSTR strings[1] = {w};
        ReportEventW(src, EVENTLOG_INFORMATION_TYPE, 0, 1, NULL, 1, 0, strings, NULL);
        DeregisterEventSource(src);
    }
    free(w);
}

/* The SID may hold a key: the file's owner, SYSTEM or the Administrators. */
static int trusted_sid(PSID sid, PSID owner)
{
    return EqualSid(sid, owner) || IsWellKnownSid(sid, WinLocalSystemSid) ||
           IsWellKnownSid(sid, WinBuiltinAdministratorsSid);
}

int ch_custody_key_private(const char *path, char *err, size_t errn)
{
    wchar_t *w = ch_wide_from_utf8(path);
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD rc = w != NULL ? GetNamedSecurityInfoW(w, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION |
                                                 DACL_SECURITY_INFORMATION, &owner, NULL, &dacl, NULL, &sd)
                         : ERROR_INVALID_NAME;
    free(w);
    if (rc != ERROR_SUCCESS) {
        snprintf(err, errn, "chain key file %s: cannot read its permissions (error %lu)", path, (unsigned long)rc);
        return -1;
    }
    int ok = dacl != NULL; /* no DACL: everyone has full access */
    for (DWORD i = 0; ok && i < dacl->AceCount; i++) {
        ACE_HEADER *ace;
        if (!GetAce(dacl, i, (LPVOID *)&ace))
            ok = 0;
        else if (ace->AceType == ACCESS_ALLOWED_ACE_TYPE)
            ok = trusted_sid((PSID)&((ACCESS_ALLOWED_ACE *)ace)->SidStart, owner);
    }
    LocalFree(sd);
    if (!ok) {
        snprintf(err, errn, "chain key file %s: others than its owner, SYSTEM and Administrators may read it"
                            " (expected: icacls \"%s\" /inheritance:r /grant:r Administrators:F)", path, path);
        return -1;
    }
    return 0;
}
