#!/usr/bin/env bash
# End-to-end suite with real clients (curl, pylivy, sparkmagic, Airflow's LivyHook,
# a browser) against the gateway in front of livy-sim. Installs what it needs:
# Debian's curl, Chromium (driven by Playwright) with a font, and Kerberos headers
# (sparkmagic depends on requests-kerberos, whose gssapi module compiles against
# them; the gateway's `kerberos` feature too, with clang for its bindings), an MIT
# KDC, kinit and Debian's python3-gssapi (the Kerberized Livy stand-in) for the
# Kerberos tests, and virtualenvs with pinned client versions under .venv/
# (rebuilt when a requirements file changes): the clients, Playwright, Airflow,
# and dbt-spark-livy on Python 3.10.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

bash scripts/ensure-packages.sh curl:curl krb5-config:libkrb5-dev gcc:gcc clang:clang \
  pkg-config:pkg-config krb5kdc:krb5-kdc kadmin.local:krb5-admin-server kinit:krb5-user \
  chromium:chromium
dpkg -s libclang-dev >/dev/null 2>&1 || bash scripts/ensure-packages.sh no-such-command:libclang-dev
# A font for Chromium to lay pages out with (only recommended by its package).
dpkg -s fonts-liberation >/dev/null 2>&1 || bash scripts/ensure-packages.sh no-such-command:fonts-liberation
# Debian's python3 with its GSSAPI module, for the Kerberized Livy stand-in.
/usr/bin/python3 -c 'import gssapi' 2>/dev/null \
  || bash scripts/ensure-packages.sh no-such-command:python3-gssapi

python=${PYTHON:-python3}
venv() { # venv DIR REQUIREMENTS
  local dir=$1 req=$2 stamp
  stamp=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "creating $dir from $req"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install --disable-pip-version-check -q --upgrade pip
    "$dir/bin/pip" install --disable-pip-version-check -q -r "$req"
    echo "$stamp" > "$dir/.stamp"
  fi
}
venv "$root/.venv/clients" tests/clients/requirements.txt
venv "$root/.venv/airflow" tests/clients/requirements-airflow.txt
# dbt-spark-livy's dbt-core 1.3 needs Python 3.10: the machine's own, if it has
# one (on PATH or under pyenv); test_dbt.py says it is skipped otherwise.
python310=""
for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 python3.10; do
  if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    python310=$candidate
    break
  fi
done
if [ -n "$python310" ]; then
  python=$python310 venv "$root/.venv/dbt" tests/clients/requirements-dbt.txt
else
  echo "no Python 3.10 on this machine: the dbt tests will be skipped"
fi

cargo build --locked --bins --features kerberos
export LIVY_GATEWAY_BIN="$root/target/debug/livy-gateway"
export LIVY_SIM_BIN="$root/target/debug/livy-sim"

"$root/.venv/clients/bin/python" -m pytest -q -rs -p no:cacheprovider tests/clients \
  --ignore=tests/clients/test_airflow.py
"$root/.venv/airflow/bin/python" -m pytest -q -p no:cacheprovider tests/clients/test_airflow.py
