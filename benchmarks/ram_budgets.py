"""Measured act and instructions of the fastest plan at each RAM budget, per model: the
min-RAM plan, `--objective latency --max-ram B` for each budget, and layer by layer.

    python benchmarks/ram_budgets.py [--models ...] [--budgets 10K 12K ...] [--platform stm32f746]
                                     [--jobs N] [--cache DIR]

Every row is one `msfsim search ... --json` run through the command line of whichever msfsim
is importable (run with PYTHONPATH=<another checkout> to measure another version the same
way); each plan was built and run as one firmware. Budgets below the model's min-RAM measured
act are not searched (nothing can fit). RAM is measured act (arena + stack of the plan's worst
block, network I/O excluded); "x lbl" is the ratio of instructions to layer by layer as the
same search measured it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from msfsim.cli.args import parse_size

PUBLISHED = ("mbv2-w0.35-r144", "mcunetv2-vww5-r80", "mcunet-320kb-r176")
BUDGETS = ("10K", "12K", "16K", "24K", "32K", "48K", "64K", "96K", "128K")


def search(model: str, platform: str, jobs: int, cache: str, extra: list[str]) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "msfsim", "search", f"zoo:{model}", "--platform", platform,
           "--jobs", str(jobs), "--cache", cache, "--json", *extra]
    t0 = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["(no message)"])[-1]
        return {"error": f"exit {run.returncode}: {last}"}, seconds
    return json.loads(run.stdout), seconds


def row(label: str, r: dict, seconds: float, lbl: int) -> str:
    if "error" in r:
        return f"  {label:<9} {r['error']}"
    exact = r["measurement"]["plan_firmware"].get("output_matches_reference")
    return (f"  {label:<9} {r['peak_ram']['measured_act']:>9,} B {r['instructions']:>14,} "
            f"{r['instructions'] / lbl:6.2f}  {len(r['blocks']):>3} blocks  "
            f"{'bit-exact' if exact else 'NOT BIT-EXACT'}  {seconds:7.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(PUBLISHED))
    ap.add_argument("--budgets", nargs="*", default=list(BUDGETS),
                    help="--max-ram budgets to search (none: the min-RAM plan and layer by layer only)")
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--cache", help="cache directory (default: a fresh one, so the first search is cold)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="msfsim-budgets-") as tmp:
        cache = args.cache or tmp
        for model in args.models:
            r, seconds = search(model, args.platform, args.jobs, cache, ["--objective", "ram"])
            print(f"{model} on {args.platform} (measured act | instructions | x lbl):", flush=True)
            if "error" in r:
                print(row("min RAM", r, seconds, 1), flush=True)
                continue
            lbl = r["baselines"]["vanilla"]["instructions"]
            print(row("min RAM", r, seconds, lbl), flush=True)
            for budget in args.budgets:
                if parse_size(budget) < r["peak_ram"]["measured_act"]:
                    print(f"  {budget:<9} below the min-RAM plan: not searched", flush=True)
                    continue
                rb, seconds = search(model, args.platform, args.jobs, cache,
                                     ["--objective", "latency", "--max-ram", budget])
                print(row(budget, rb, seconds, lbl), flush=True)
            v = r["baselines"]["vanilla"]
            print(f"  {'lbl':<9} {v['peak_ram']['measured_act']:>9,} B {lbl:>14,} "
                  f"{1.0:6.2f}  {len(v['blocks']):>3} blocks", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
