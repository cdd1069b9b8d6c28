#!/usr/bin/env bash
# The README's test command: installs everything the tests need, then runs pytest (arguments go to
# pytest). .ci/run calls it unchanged, inside a fresh virtual environment: the full suite.
# `bash tests/run.sh --fast` is the fast tier: every test but those marked slow, on two workers (under 2 minutes).
# The report test opens reports in Debian's chromium, a system package pip cannot install: it is
# installed with apt-get where this user may (root, or password-less sudo). Elsewhere the browser
# test fails with a message naming the package to install; it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e '.[dev]'
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    sudo=(none)
  fi
  if [ "${sudo[*]:-}" != none ]; then
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
  else
    echo "tests/run.sh: Debian's chromium is missing and installing it needs root; the browser test will fail until 'apt-get install chromium'" >&2
  fi
fi
if [ "${1:-}" = "--fast" ]; then
  shift
  # two workers (pytest-xdist): the fast tier is CPU-bound and this machine has two cores
  exec python3 -m pytest -m "not slow" -n 2 --dist loadscope "$@"
fi
# the full suite on two workers too: a module's tests stay on one worker, in order
exec python3 -m pytest -n 2 --dist loadscope "$@"
