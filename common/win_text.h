/*
 * Text at the Windows boundary. Windows speaks UTF-16; connhist stores,
 * prints and takes on its command line UTF-8 only. These conversions are
 * used by the Windows platform files and nowhere else.
 */
#ifndef CH_WIN_TEXT_H
#define CH_WIN_TEXT_H

#include <stddef.h>
#include <wchar.h>

/*
 * UTF-8 copy of the UTF-16 text w (len units, or -1 up to its NUL), in a
 * new malloc'd string; unpaired surrogates become U+FFFD. NULL when out of
 * memory or w is NULL.
 */
char *ch_utf8_from_wide(const wchar_t *w, int len);

/* UTF-16 copy of UTF-8 text s, malloc'd; NULL when s is not UTF-8 or out of memory. */
wchar_t *ch_wide_from_utf8(const char *s);

#endif
