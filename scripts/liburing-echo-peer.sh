#!/usr/bin/env bash
# Builds liburing's examples/echo-server.c (multishot accept and receive, a provided-buffer
# ring: the io_uring echo server to beat) from a liburing source tree, statically against that
# tree's own library, and prints the `--peer` argument that puts it in `sockgen bench`:
#
#   scripts/liburing-echo-peer.sh ~/src/liburing
#   cargo run --release -- bench specs/echo-tcp.yaml --model io_uring --peer "$(scripts/liburing-echo-peer.sh ~/src/liburing)"
#
# The example needs a liburing newer than Debian 12's 2.3 (it calls io_uring_setup_buf_ring),
# hence a source tree (git clone https://github.com/axboe/liburing) rather than liburing-dev.
set -euo pipefail
src="${1:?usage: $0 LIBURING_SOURCE_DIR}"
out="$(cd "$(dirname "$0")/.." && pwd)/target/bench-peers"
mkdir -p "$out"
if [ ! -f "$src/src/liburing.a" ]; then
    (cd "$src" && ./configure >/dev/null && make -C src -j2 >/dev/null)
fi
${CC:-cc} -O2 -D_GNU_SOURCE -I"$src/src/include" -o "$out/liburing-echo-server" \
    "$src/examples/echo-server.c" "$src/examples/helpers.c" "$src/src/liburing.a"
echo "liburing=$out/liburing-echo-server {port}"
