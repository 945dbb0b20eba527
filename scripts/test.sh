#!/usr/bin/env bash
# Install everything the test suite needs (venv, Python extras, Debian chromium, npm client) and run it.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  fi
fi

if [ -f tests/js/package.json ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi

exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
