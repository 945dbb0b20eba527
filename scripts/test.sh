#!/usr/bin/env bash
# Install everything the test suite needs (venv, every extra, Debian chromium and PostgreSQL, the npm client),
# check the code's habits (ruff, mypy) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
  else
    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
  fi
}

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to the CPU build these machines keep on disk: an unpinned torch pulled in by the
# diffusion extra would resolve to a CUDA build of several GB.
.venv/bin/python -m pip install -q 'torch==2.13.0'
.venv/bin/python -m pip install -q -e '.[test,postgres,s3,ray,diffusion]'
# The extras' tests skip when their packages are missing; here they must run.
.venv/bin/python -c 'import torch, diffusers, transformers, ray, moto, boto3, psycopg, psycopg_pool'

if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
# Debian's PostgreSQL binaries (initdb, pg_ctl) for the PostgreSQL tests, which start their own cluster.
if ! command -v pg_config >/dev/null || [ ! -x "$(pg_config --bindir)/initdb" ]; then apt_install postgresql; fi
export KINEMA_REQUIRE_POSTGRES=1

if [ -f tests/js/package.json ]; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi

# The habits: lint, format and types (strict where pyproject.toml says) before the tests.
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/ruff format --check src tests benchmarks scripts
.venv/bin/mypy

exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
