#!/usr/bin/env bash
# Installs what the token tests' OpenID provider needs: Node.js (20 or later;
# Debian's nodejs and npm when the machine has no node) and the packages pinned
# in package-lock.json (oidc-provider, jose), into tests/oidc/node_modules.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null && command -v npm >/dev/null \
  || bash ../../scripts/ensure-packages.sh node:nodejs npm:npm
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "node $(node --version) is too old for oidc-provider: the token tests need Node.js 20 or later" >&2
  exit 1
fi
stamp=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules/oidc-provider ] || [ "$(cat node_modules/.stamp 2>/dev/null)" != "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$stamp" > node_modules/.stamp
fi
