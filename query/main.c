/*
 * connhist-query: read-only JSON reports over a connhist database. All the
 * work is in the connhist_query library (run.c) so tests can link it.
 */
#include "custody.h"
#include "platform.h"
#include "query.h"

int main(int argc, char **argv)
{
    ch_platform_init(&argc, &argv);
    if (custody_command(argc, argv) != NULL) /* verify and snapshot: custody.h */
        return custody_main(argc, argv);
    return chq_main(argc, argv);
}
