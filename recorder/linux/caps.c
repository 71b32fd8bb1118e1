/* The capabilities of this process, from /proc/self/status (see caps.h). */
#include "caps.h"

#include <stdio.h>

bool ch_has_capability(int bit)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        return false;
    char line[256];
    unsigned long long caps = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    fclose(f);
    return (caps >> bit) & 1;
}
