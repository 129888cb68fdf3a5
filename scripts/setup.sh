#!/usr/bin/env bash
# Installs what msfsim needs, idempotently: Debian's cross-compilers and QEMU (when we are root or
# have password-less sudo) and the Python packages in .venv. A second run with nothing to do takes
# about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="gcc-arm-none-eabi gcc-riscv64-unknown-elf gcc-xtensa-lx106 qemu-system-arm qemu-system-misc"
missing=()
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  fi
  if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null; then
    echo "setup: cannot apt-get install ${missing[*]} (not root, no sudo, or no apt);" \
         "continuing with what pip provides (unicorn backend; compilers: see 'msfsim doctor')" >&2
  else
    echo "setup: installing ${missing[*]} (Debian packages)" >&2
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
           --no-install-recommends "${missing[@]}" >/dev/null; }; then
      echo "setup: apt-get failed; continuing with what pip provides (see 'msfsim doctor')" >&2
    fi
  fi
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: msfsim needs Python >= 3.11 ($PY is $("$PY" --version 2>&1))" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.stamp-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test,plots,clang,dask]"  # clang, dask: so CI tests them
  rm -f .venv/.stamp-*
  touch "$stamp"
fi
