#!/usr/bin/env python3
"""Regenerate the Robot Framework baselines (robot/baselines/*.json) with the installed toolchain.

    python scripts/update_baselines.py [SUITE ...]     # default: every suite under robot/

Runs the suites with MSFSIM_UPDATE_BASELINES=1: each baseline keyword then records the figures
it measured (instructions, arena, stack, static RAM, flash, the plan's blocks, compiler and
backend versions) instead of comparing them. Recording merges into a baseline file (entries
of other tests are kept); to drop the entries of removed tests, delete the file first and
regenerate every suite that records into it. A test records only after
its earlier checks passed (the plan measured bit-exact and fits the board), and the whole run
must pass before the files are worth committing. Exit status: Robot's (0 = every test passed or was skipped).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import robot

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    suites = argv or [str(ROOT / "robot")]
    os.environ["MSFSIM_UPDATE_BASELINES"] = "1"
    rc = robot.run(*suites, outputdir=str(ROOT / "build" / "robot-baselines"),
                   pythonpath=[str(ROOT)], loglevel="INFO", console="dotted")
    files = sorted((ROOT / "robot" / "baselines").glob("*.json"))
    print(f"\nbaselines ({'written' if rc == 0 else 'NOT usable: some tests failed'}):")
    for f in files:
        print(f"  {f.relative_to(ROOT)}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
