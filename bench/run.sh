#!/usr/bin/env bash
# Benchmark livy-gateway against nginx, HAProxy and Caddy (see the README's
# "Benchmark" section). Installs the peers and load generators from Debian,
# builds the gateway and the bench helpers in release mode, and writes
# bench/results/{results,quick}.{md,json,png}.
#
#   bash bench/run.sh           # full run: 3 repetitions, ~30 minutes
#   bash bench/run.sh --quick   # smoke run: seconds per figure, one repetition
#
# The table and chart can be written again from a run's saved figures, without
# measuring: bench/.venv/bin/python bench/bench.py --report bench/results/results.json
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-packages.sh nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk \
  h2load:nghttp2-client htpasswd:apache2-utils curl:curl taskset:util-linux \
  slapd:slapd ldapadd:ldap-utils redis-server:redis-server redis-cli:redis-tools
# Debian starts the peers as services where an init system runs; the benchmark
# starts its own instances.
for svc in nginx haproxy caddy slapd; do
  (systemctl stop "$svc" || service "$svc" stop) >/dev/null 2>&1 || true
done

if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q --disable-pip-version-check matplotlib==3.9.2
fi

cargo build --release --locked --bin livy-gateway --example bench_upstream --example bench_conns

# Each side of the 10,000-connection figure needs 10,000+ descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec bench/.venv/bin/python bench/bench.py \
  --gateway target/release/livy-gateway \
  --upstream target/release/examples/bench_upstream \
  --conns-bin target/release/examples/bench_conns "$@"
