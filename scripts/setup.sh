#!/usr/bin/env bash
# Installs what cachetop and its tests need: redis-server and memcached from the system's package
# manager when missing, then a virtualenv in .venv with the package and its dev extras.
# Idempotent: a second run with nothing changed does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v memcached >/dev/null 2>&1 || need+=(memcached)
# The agent's tests: a real Prometheus (and promtool) scraping agents and a redis_exporter.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-redis-exporter >/dev/null 2>&1 || need+=(prometheus-redis-exporter)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${need[*]} with apt-get" >&2
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    brew install $(printf '%s\n' "${need[@]/redis-server/redis}" | sed 's/^prometheus-redis-exporter$/redis_exporter/' | sort -u)
  else
    echo "setup: please install ${need[*]} (e.g. apt-get install redis-server memcached prometheus prometheus-redis-exporter)" >&2
    exit 1
  fi
fi
# Debian's packages start system daemons where an init system runs; cachetop's tests never use them.

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.cachetop-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
