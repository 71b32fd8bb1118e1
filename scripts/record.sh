#!/bin/sh
# Quick start: installs what is missing, builds, and records to the default
# database (see README.md) until Ctrl-C. Extra arguments go to connhist-record.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build >/dev/null
exec build/recorder/connhist-record "$@"
