#!/usr/bin/env bash
# Installs what the tests need (idempotently) and runs the whole suite: unit, snapshot,
# compile-and-run proof on loopback, CLI, clippy and rustfmt.
#
#   scripts/test.sh          the full proof tier, as CI runs it
#   scripts/test.sh --fast   the fast tier for every change: unit, snapshots, diagnostics, CLI,
#                            and one verify per target (see CONTRIBUTING.md for both durations)
set -euo pipefail
cd "$(dirname "$0")/.."

tier=full
case "${1:-}" in
    "") ;;
    --fast) tier=fast ;;
    *)
        echo "usage: scripts/test.sh [--fast]" >&2
        exit 2
        ;;
esac

# Debian packages the proof uses: a C toolchain and make for generated projects (and musl, to
# build them against a C library without glibc's extensions), liburing for
# io_uring servers, MinGW-w64 and Wine to build and run Winsock servers, iperf3 for bench, and
# clients sockgen did not write for the example protocols (redis-cli and redis-benchmark,
# curl, ab), and echo servers sockgen did not write for the generated clients (socat, ncat).
packages=(gcc make libc6-dev musl-tools liburing-dev gcc-mingw-w64-x86-64 wine wine64 iperf3 redis-tools curl apache2-utils socat ncat)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust 1.85 or newer (rustup.rs)" >&2
    exit 1
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true

# Two cores: bound build and test parallelism.
export CARGO_BUILD_JOBS=2
export CARGO_TERM_COLOR=never
# Snapshots are never rewritten here: a change must be reviewed and committed.
export INSTA_UPDATE=no

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo build --no-default-features --lib   # the build.rs configuration, without clap
if [ "$tier" = fast ]; then
    cargo test --lib
    cargo test --test snapshots --test hostile_specs --test fuzz --test analyze --test cli -- --test-threads=2
    # One server and one client spec in every (lang, model): the tests named `[fast]`.
    cargo test --test verify -- '[fast]' --test-threads=2
else
    cargo test -- --test-threads=2
fi
