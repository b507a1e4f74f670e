#!/usr/bin/env bash
# Installs Debian packages for the commands that are missing.
#   bash scripts/ensure-packages.sh COMMAND:PACKAGE [COMMAND:PACKAGE ...]
# installs PACKAGE when COMMAND is not on the PATH (as root, or with sudo).
set -euo pipefail
missing=()
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
((${#missing[@]})) || exit 0
echo "installing: ${missing[*]}"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
# slapd would ask for a directory of its own on install: the tests write their own
# configuration, so it is told to make none.
if [[ " ${missing[*]} " == *" slapd "* ]]; then
  echo 'slapd slapd/no_configuration boolean true' | "${as_root[@]}" debconf-set-selections
fi
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
