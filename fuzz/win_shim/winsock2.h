/* Nothing: recorder/windows/iphlp_rows.c takes what it needs from iphlpapi.h (see there). */
