#!/usr/bin/env bash
# Regenerates src/backend/c_system_names.txt: every identifier with an underscore that the
# system headers of the generated C declare (macros and names), so validation can refuse a
# spec name whose generated identifiers would collide with them.
#   SOCKGEN=path/to/sockgen   use this binary instead of `cargo run`
#   SOCKGEN_NAMES_OUT=-       print the list instead of writing the file
set -euo pipefail
cd "$(dirname "$0")/.."
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
render() {
    if [ -n "${SOCKGEN:-}" ]; then "$SOCKGEN" "$@"; else cargo run -q -- "$@"; fi
}
{
    echo '#define _GNU_SOURCE'
    render render specs/echo-tcp.yaml --lang c --model epoll | grep '^#include'
} > "$headers"
names() {
    {
        gcc -E -dM -x c "$headers" | awk '{print $2}' | sed 's/(.*//'
        gcc -E -x c "$headers" | grep -oE '\b[A-Za-z_][A-Za-z0-9_]*\b'
    } | grep '_' | grep -E '^[A-Za-z_][A-Za-z0-9_]*$' | LC_ALL=C sort -u
}
if [ "${SOCKGEN_NAMES_OUT:-}" = "-" ]; then
    names
else
    names > src/backend/c_system_names.txt
fi
