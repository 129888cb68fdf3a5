#!/usr/bin/env bash
# Builds msfsim's wheel, installs it into a fresh venv outside the checkout and uses it there as
# a user would: boards, doctor, a measured search, and an emitted C project built with make.
# Proves that everything msfsim needs at run time ships inside the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$PWD"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/msfsim-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "check_wheel: building the wheel" >&2
quiet() { "$@" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; exit 1; }; }
quiet "$SRC/.venv/bin/python" -m pip wheel -q --no-deps -w "$WORK/dist" "$SRC"
WHEEL="$(ls "$WORK"/dist/msfsim-*.whl)"
"$PY" -m venv "$WORK/venv"
quiet "$WORK/venv/bin/python" -m pip install -q --upgrade pip
quiet "$WORK/venv/bin/python" -m pip install -q "$WHEEL"
cd "$WORK"                          # nowhere near the checkout
export MSFSIM_CACHE="$WORK/cache"
M="$WORK/venv/bin/msfsim"

"$WORK/venv/bin/python" - "$SRC" <<'EOF'
import sys, msfsim, pathlib
src = pathlib.Path(sys.argv[1]).resolve()
where = pathlib.Path(msfsim.__file__).resolve()
assert src not in where.parents, f"msfsim imported from the checkout: {where}"
print(f"check_wheel: msfsim {msfsim.__version__} from {where.parent}", file=sys.stderr)
EOF
"$M" platforms | grep -q stm32f746
"$M" doctor >"$WORK/doctor.txt"
if grep -q "package data" "$WORK/doctor.txt" && grep "package data" "$WORK/doctor.txt" | grep -qv " ok"; then
  cat "$WORK/doctor.txt" >&2; echo "check_wheel: doctor reports missing package data" >&2; exit 1
fi
"$M" search zoo:lenet5-r28 --platform stm32f746 --jobs 2 --json --emit-c "$WORK/proj" >"$WORK/result.json"
"$WORK/venv/bin/python" - "$WORK/result.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cost"] == "measured" and r["instructions"], r
print(f"check_wheel: measured search ok: {r['instructions']:,} instructions, "
      f"measured RAM {r['peak_ram']['measured']:,} B", file=sys.stderr)
EOF
make -s -C "$WORK/proj" >/dev/null
test -s "$WORK/proj/firmware.elf"
if command -v qemu-system-arm >/dev/null; then
  (cd "$WORK/proj" && make -s qemu) | tail -1 | grep -q PASS
fi
echo "check_wheel: the wheel works outside the checkout (platforms, doctor, measured search, --emit-c + make)" >&2
