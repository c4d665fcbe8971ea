#!/usr/bin/env bash
# Install everything registry_insights needs on a fresh Debian machine (run as root):
# Debian's docker-registry (CNCF Distribution, for the demo and the tests), skopeo and chromium
# (independent client and headless browser used by tests), then this package with its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The active python3 gets the package (a virtualenv, if one is active). Debian's own Python is
# "externally managed" (PEP 668): with no virtualenv active, install beside its packages anyway,
# as root on a machine set up for this (activate a virtualenv first to keep it apart).
pip_args=(-q --disable-pip-version-check)
if [ -z "${VIRTUAL_ENV:-}" ] && python3 -c 'import sys, sysconfig, pathlib; \
    sys.exit(0 if (pathlib.Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").exists() \
    else 1)'; then
  pip_args+=(--break-system-packages)
fi
command -v pip3 >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-pip python3-venv >/dev/null
}
python3 -m pip install "${pip_args[@]}" -e ".[test]"
