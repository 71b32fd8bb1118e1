/*
 * connhist-query: read-only JSON reports over a connhist database. All the
 * work is in the connhist_query library (run.c) so tests can link it.
 */
#include "platform.h"
#include "query.h"

int main(int argc, char **argv)
{
    ch_platform_init(&argc, &argv);
    return chq_main(argc, argv);
}
