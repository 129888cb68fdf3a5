"""The command line as a user meets it: `msfsim ARGS` in a subprocess, which must fail cleanly
(the expected exit code, one `msfsim: error:` line, no traceback)."""
from __future__ import annotations

import os
import subprocess
import sys

from robot.api import Failure, logger

from msfsim import ROOT


def command_should_fail(exit_code: int, message: str, *args: str) -> str:
    """Run `msfsim ARGS`; expect `exit_code` and a single-line `msfsim: error:` on stderr
    containing `message`, without a traceback. Returns that line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("MSFSIM_DEBUG", None)
    cmd = [sys.executable, "-m", "msfsim", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    shown = f"`msfsim {' '.join(args)}`"
    if r.returncode != int(exit_code):
        raise Failure(f"{shown}: exit code {r.returncode}, expected {exit_code}; "
                      f"stderr: {r.stderr.strip()[-600:]!r}")
    if "Traceback" in r.stderr or len(lines) != 1 or not lines[0].startswith("msfsim: error:"):
        raise Failure(f"{shown}: expected one `msfsim: error:` line on stderr, got "
                      f"{r.stderr.strip()[-600:]!r}")
    if message and message.lower() not in lines[0].lower():
        raise Failure(f"{shown}: error {lines[0]!r} does not mention {message!r}")
    logger.info(f"{shown} -> exit {r.returncode}: {lines[0]}")
    return lines[0]
