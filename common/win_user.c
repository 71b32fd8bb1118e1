/*
 * The user of a Windows process, from its token (see win_user.h). Both
 * answers start from the same step: the SID in the token's TokenUser
 * information, which fits in a fixed buffer (a SID is at most
 * SECURITY_MAX_SID_SIZE bytes), so nothing is allocated to read it.
 */
#include "win_user.h"

#include <stdlib.h>

#include <sddl.h>

#include "win_text.h"

/* TokenUser information: the TOKEN_USER header and the SID it points into. */
typedef union {
    TOKEN_USER user;
    char raw[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
} token_user;

/* Reads the token user of process into info. 0, or -1 when the token cannot be opened or read. */
static int read_token_user(HANDLE process, token_user *info)
{
    HANDLE token;
    if (!OpenProcessToken(process, TOKEN_QUERY, &token))
        return -1;
    DWORD n = 0;
    BOOL ok = GetTokenInformation(token, TokenUser, info, sizeof *info, &n);
    CloseHandle(token);
    return ok ? 0 : -1;
}

wchar_t *ch_process_user_sid(HANDLE process)
{
    token_user info;
    wchar_t *text = NULL;
    if (read_token_user(process, &info) == 0 && !ConvertSidToStringSidW(info.user.User.Sid, &text))
        text = NULL;
    return text;
}

char *ch_process_user_name(HANDLE process)
{
    token_user info;
    if (read_token_user(process, &info) != 0)
        return NULL;
    wchar_t name[256], domain[256], full[520];
    DWORD nn = 256, dn = 256;
    SID_NAME_USE use;
    if (!LookupAccountSidW(NULL, info.user.User.Sid, name, &nn, domain, &dn, &use))
        return NULL;
    if (dn > 0)
        _snwprintf(full, sizeof full / sizeof full[0] - 1, L"%ls\\%ls", domain, name);
    else
        _snwprintf(full, sizeof full / sizeof full[0] - 1, L"%ls", name);
    full[sizeof full / sizeof full[0] - 1] = L'\0';
    return ch_utf8_from_wide(full, -1);
}
