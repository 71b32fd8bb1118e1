/*
 * export_file.h on Windows: UTF-8 paths become UTF-16 at this boundary.
 */
#include "export_file.h"

#include <io.h>
#include <stdlib.h>
#include <windows.h>

#include "win_text.h"

FILE *xf_open(const char *path, const char *mode)
{
    wchar_t *wpath = ch_wide_from_utf8(path), *wmode = ch_wide_from_utf8(mode);
    FILE *f = wpath != NULL && wmode != NULL ? _wfopen(wpath, wmode) : NULL;
    free(wpath);
    free(wmode);
    return f;
}

int xf_sync(FILE *f)
{
    if (fflush(f) != 0)
        return -1;
    /* A pipe or console cannot be committed; what reached it is all there is. */
    return _commit(_fileno(f)) == 0 || GetFileType((HANDLE)_get_osfhandle(_fileno(f))) != FILE_TYPE_DISK ? 0 : -1;
}

int xf_replace(const char *from, const char *to)
{
    wchar_t *wfrom = ch_wide_from_utf8(from), *wto = ch_wide_from_utf8(to);
    BOOL ok = wfrom != NULL && wto != NULL &&
              MoveFileExW(wfrom, wto, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
    free(wfrom);
    free(wto);
    return ok ? 0 : -1;
}

int xf_truncate(FILE *f, int64_t size)
{
    return fflush(f) == 0 && _chsize_s(_fileno(f), size) == 0 ? 0 : -1;
}

bool xf_still_at(FILE *f, const char *path)
{
    (void)f, (void)path;
    return true; /* an open file cannot be renamed away on Windows unless shared for deletion */
}

void xf_sleep_ms(int ms)
{
    Sleep((DWORD)ms);
}
