#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need from
# Debian's packages (Apache's htpasswd for interoperability tests, curl for the
# seed document's commands and early-answer tests, openssl for TLS clients that
# send odd server names, OpenLDAP's slapd and ldap-utils for the directory tests,
# Redis (redis-server, redis-cli) and HAProxy for the shared-state tests; the tests start
# their own servers), runs every Rust test, fuzzes the pre-authentication
# parsers for a bounded time (scripts/fuzz.sh), then the end-to-end suite with
# real clients (tests/clients/run.sh installs its own prerequisites).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-packages.sh htpasswd:apache2-utils curl:curl openssl:openssl \
  slapd:slapd ldapadd:ldap-utils redis-server:redis-server redis-cli:redis-tools \
  haproxy:haproxy

cargo test --locked --all-targets
bash scripts/fuzz.sh
bash tests/clients/run.sh
