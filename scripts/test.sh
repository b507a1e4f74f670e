#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need from
# Debian's packages (Apache's htpasswd for interoperability tests, curl for the
# seed document's commands), runs every Rust test, then the end-to-end suite with
# real clients (tests/clients/run.sh installs its own prerequisites).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
  echo "installing test prerequisites: ${missing[*]}"
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo test --locked --all-targets
bash tests/clients/run.sh
