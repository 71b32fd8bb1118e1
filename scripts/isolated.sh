#!/bin/sh
# sh scripts/isolated.sh COMMAND...: runs COMMAND in a network namespace of
# its own, with only the loopback interface, up.
#
# Every recorder a test starts records the sockets of its network namespace.
# In the machine's own namespace that is every socket of every other job on
# a shared machine (another suite's recorders, a benchmark holding 100,000
# connections), which each test recorder would dump, scan and write at every
# tick; in a namespace of its own a test sees its own sockets only, as on an
# idle machine. Processes are not isolated: /proc, owners and the kernel
# events still see the whole machine. Nothing inside can reach a network:
# what a test fetches (the ECS definitions, scripts/test.sh) is fetched
# before. Where a namespace cannot be made (not root, no unshare), COMMAND
# runs as it is, and this says so on stderr.
set -eu
if [ "$#" -eq 0 ]; then
    echo "usage: sh scripts/isolated.sh COMMAND..." >&2
    exit 2
fi
if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
    exec unshare -n sh -c 'ip link set lo up && exec "$@"' isolated "$@"
fi
echo "isolated.sh: no network namespace of its own (not root, or no unshare/ip): running in the machine's" >&2
exec "$@"
