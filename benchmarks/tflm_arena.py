"""msfsim's RAM for a .tflite model against TensorFlow Lite Micro's arena for the same file.

    PYTHONPATH=. python benchmarks/tflm_arena.py [--platform stm32f746] [--jobs 2] [MODEL ...]

MODEL is a .tflite file or zoo:NAME (exported to .tflite first, `msfsim zoo export`). Default:
the whole-network fixtures TensorFlow's converter wrote (tests/data/tflite) and four zoo models.
Per model it prints
- TFLM: the arena TFLM's interpreter allocates for the file (its recording allocator's total:
  activations, scratch and its persistent per-op data; stack not included), the figure a TFLM
  user sizes `tensor_arena` by (`msfsim.importers.tflite.arena`);
- msfsim layer by layer (`msfsim measure --vanilla`) and msfsim's min-RAM plan (`msfsim search`,
  measured): the firmware's arena, and its measured RAM = arena + stack high-water + static RAM,
  each run in the emulator and bit-exact with the host reference.
The arena columns compare like with like; measured RAM is what the board must hold.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ["dscnn", "lenet", "mbv2_block", "mbv3_small", "softmax_net"]
ZOO = ["dscnn-kws", "resnet8-r32", "mbv3-small-r96", "squeezenet-r96", "mbv2-w0.35-r144"]


def msfsim(*args: str) -> dict:
    p = subprocess.run([sys.executable, "-m", "msfsim", *args, "--json"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise SystemExit(f"msfsim {' '.join(args)}: exit {p.returncode}: "
                         f"{p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout)


def row(path: Path, platform: str, jobs: int) -> dict:
    from msfsim.importers.tflite.arena import tflm_arena_bytes
    van = msfsim("measure", str(path), "--platform", platform, "--vanilla")
    best = msfsim("search", str(path), "--platform", platform, "--jobs", str(jobs))
    fw = best["measurement"]["plan_firmware"]
    vm = van["measured"]
    ok = van["output_matches_reference"] and fw["output_matches_reference"]
    return {"model": path.stem, "tflm": tflm_arena_bytes(path),
            "lbl_arena": vm["arena"], "lbl_ram": vm["arena"] + vm["stack"] + vm["static"],
            "min_arena": fw["arena"], "min_ram": fw["arena"] + fw["stack"] + fw["static"],
            "min_instr": best["instructions"], "lbl_instr": van["instructions"], "exact": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    models = a.models or ([str(ROOT / "tests/data/tflite" / f"{f}.tflite") for f in FIXTURES]
                          + [f"zoo:{z}" for z in ZOO])
    print("| model | TFLM arena | msfsim layer by layer: arena / measured RAM | msfsim min-RAM "
          "plan: arena / measured RAM | instructions (layer by layer -> min RAM) | bit-exact |")
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            path = Path(m)
            if m.startswith("zoo:"):
                path = Path(tmp) / f"{m[4:]}.tflite"
                subprocess.run([sys.executable, "-m", "msfsim", "zoo", "export", m[4:], "-o",
                                str(path)], check=True, capture_output=True)
            r = row(path, a.platform, a.jobs)
            print(f"| {m if m.startswith('zoo:') else path.name} | {r['tflm']:,} B | "
                  f"{r['lbl_arena']:,} / {r['lbl_ram']:,} B | {r['min_arena']:,} / "
                  f"{r['min_ram']:,} B | {r['lbl_instr'] / 1e6:.2f} M -> "
                  f"{r['min_instr'] / 1e6:.2f} M | {'yes' if r['exact'] else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
