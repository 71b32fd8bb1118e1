/*
 * The capabilities of this process (Linux): what the event source and the
 * DNS capture check before they try, so that a refusal is told as the
 * missing capability rather than as the kernel's EPERM.
 */
#ifndef CONNHIST_CAPS_H
#define CONNHIST_CAPS_H

#include <stdbool.h>

/* True when the effective capability set (CapEff of /proc/self/status)
 * holds capability number bit; false also when it cannot be read. */
bool ch_has_capability(int bit);

#endif
