/*
 * One-line messages to the user. A value echoed back in an error message
 * came from the command line and may hold anything, a newline included;
 * the message must still be one line on stderr, so a script or a log
 * collector reading it line by line sees one error, not two.
 */
#ifndef CH_MESSAGE_H
#define CH_MESSAGE_H

#include <stdarg.h>
#include <stdio.h>

/*
 * Prints prefix, then the formatted message, then a newline, to f. Control
 * characters in the message are written as \n, \r, \t or \xNN; other bytes
 * (non-UTF-8 ones included) go out as they came.
 */
void ch_vmessage(FILE *f, const char *prefix, const char *fmt, va_list ap);
void ch_message(FILE *f, const char *prefix, const char *fmt, ...);

#endif
