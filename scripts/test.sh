#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need from
# Debian's packages (Apache's htpasswd for interoperability tests, curl for the
# seed document's commands), runs every Rust test, then the end-to-end suite with
# real clients (tests/clients/run.sh installs its own prerequisites).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-packages.sh htpasswd:apache2-utils curl:curl

cargo test --locked --all-targets
bash tests/clients/run.sh
