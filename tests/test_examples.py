"""Every example under examples/ runs as shipped and passes: what a user copies must work.

Each example directory holding Robot suites is run as a user runs it (`robot DIR`, in a
subprocess, with the library from this checkout), with its output in a temporary directory and
never in recording mode; the example's own files must be left exactly as they were.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("robot")
from robot.api import ExecutionResult  # noqa: E402

from msfsim import ROOT  # noqa: E402
from msfsim.robotlib import UPDATE_ENV  # noqa: E402

EXAMPLES = sorted(d for d in (ROOT / "examples").iterdir()
                  if d.is_dir() and any(d.rglob("*.robot")))


def _digests(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def test_there_are_examples():
    assert EXAMPLES, "no example with a Robot suite under examples/"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda d: d.name)
def test_example_passes_as_shipped(example: Path, tmp_path: Path):
    before = _digests(example)
    env = {k: v for k, v in os.environ.items() if k != UPDATE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "robot", "--outputdir", str(tmp_path), "--log", "NONE",
           "--report", "NONE", "--consolecolors", "off", str(example)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=1800)
    result = ExecutionResult(str(tmp_path / "output.xml"))
    tests = []

    def visit(suite) -> None:
        tests.extend(suite.tests)
        for s in suite.suites:
            visit(s)
    visit(result.suite)
    failed = [f"{t.name}: {t.status}: {t.message}" for t in tests if t.status != "PASS"]
    assert tests and not failed and r.returncode == 0, (
        f"{example.name} (exit {r.returncode}):\n" + "\n".join(failed) + "\n"
        + r.stdout[-3000:] + r.stderr[-3000:])
    # a check run writes nothing into the example (no baseline recorded, no file left)
    assert _digests(example) == before
