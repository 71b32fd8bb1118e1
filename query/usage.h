/*
 * The text of connhist-query --help, and the list of report names that
 * error messages quote.
 */
#ifndef CHQ_USAGE_H
#define CHQ_USAGE_H

#include <stdio.h>

void usage_print(FILE *f);

/* "connections, listeners, ..., coverage", from the report table. */
const char *usage_report_names(void);

#endif
