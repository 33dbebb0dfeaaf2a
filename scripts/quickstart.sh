#!/usr/bin/env bash
# Quick start on a fresh Debian machine: install redis-server if missing, build runbook, start a
# local sandbox cluster shaped like the seed's (4 masters 6391/6393/6395/6397, each with a
# replica on the next port) holding 100k keys, check it, decommission 6397 as the seed does, and
# show the sandbox (6397 and 6398 marked removed). It keeps running; `runbook sandbox down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi
RUNBOOK=${RUNBOOK:-}
if [ -z "$RUNBOOK" ] && ! command -v cargo >/dev/null 2>&1; then
  # Debian's own rustc is older than the 1.89 that runbook's dependencies need.
  echo "quickstart: cargo is not installed; install Rust 1.89 or newer (https://rustup.rs), then run this again" >&2
  exit 1
fi
if [ -z "$RUNBOOK" ]; then
  echo "quickstart: building runbook (cargo build --release: a few minutes the first time)" >&2
  cargo build --release
  RUNBOOK=./target/release/runbook
fi
PORT=${RUNBOOK_BASE_PORT:-6391}
KEYS=${RUNBOOK_KEYS:-100000}

set -x
"$RUNBOOK" sandbox down
"$RUNBOOK" sandbox up --masters 4 --replicas 1 --base-port "$PORT" --keys "$KEYS"
"$RUNBOOK" check --cluster "127.0.0.1:$PORT"
"$RUNBOOK" run decommission --node "$((PORT + 6))" --cluster "127.0.0.1:$PORT" --yes
"$RUNBOOK" sandbox status
