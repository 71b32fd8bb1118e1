/* Nothing: recorder/iphlp_rows.c takes what it needs from iphlpapi.h (see there). */
