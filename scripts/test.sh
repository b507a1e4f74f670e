#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need from
# Debian's packages (Apache's htpasswd for interoperability tests, curl for the
# seed document's commands and early-answer tests, openssl for TLS clients that
# send odd server names, OpenLDAP's slapd and ldap-utils for the directory tests,
# Redis (redis-server, redis-cli) and HAProxy for the shared-state tests, MIT
# Kerberos (a KDC, its admin tools, kinit) and python3-gssapi for the Kerberos
# tests; Node.js with npm's oidc-provider and jose for the token tests
# (tests/oidc/setup.sh); the tests start their own servers; libkrb5-dev, clang and
# pkg-config to build the `kerberos` feature), runs every Rust test with that feature, the
# tests of a build without it (and Apache httpd with mod_auth_gssapi, the
# independent Kerberos acceptor), fuzzes the pre-authentication parsers for a
# bounded time (scripts/fuzz.sh), then the end-to-end suite with real clients
# (tests/clients/run.sh installs its own prerequisites).
set -euo pipefail
cd "$(dirname "$0")/.."

# A full disk shows up as a compiler crash deep in the build; say it first.
free_mb=$(df -Pm . | awk 'NR == 2 { print $4 }')
if [ "${free_mb:-0}" -lt 6144 ]; then
  echo "warning: ${free_mb} MB free here; a run from a fresh clone needs about 6 GB" >&2
fi

bash scripts/ensure-packages.sh htpasswd:apache2-utils curl:curl openssl:openssl \
  slapd:slapd ldapadd:ldap-utils redis-server:redis-server redis-cli:redis-tools \
  haproxy:haproxy krb5kdc:krb5-kdc kadmin.local:krb5-admin-server kinit:krb5-user \
  krb5-config:libkrb5-dev clang:clang pkg-config:pkg-config apache2:apache2
# libclang for bindgen (GSSAPI's bindings); Debian's python3 with its GSSAPI
# module, for the Kerberized Livy stand-in. (No command tells these apart.)
dpkg -s libclang-dev >/dev/null 2>&1 || bash scripts/ensure-packages.sh no-such-command:libclang-dev
/usr/bin/python3 -c 'import gssapi' 2>/dev/null \
  || bash scripts/ensure-packages.sh no-such-command:python3-gssapi
[ -e /usr/lib/apache2/modules/mod_auth_gssapi.so ] \
  || bash scripts/ensure-packages.sh no-such-command:libapache2-mod-auth-gssapi

# The token tests' OpenID provider (Node.js, oidc-provider, jose).
bash tests/oidc/setup.sh

# A fresh build gains nothing from incremental state but a gigabyte of disk (CI
# builds from a clean clone); CARGO_INCREMENTAL=1 keeps it for repeated local runs.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo test --locked --all-targets --features kerberos
# What a build without the feature says of a Kerberos section.
cargo test --locked --test cli
bash scripts/fuzz.sh
bash tests/clients/run.sh
