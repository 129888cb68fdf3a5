"""The tensor arena TensorFlow Lite Micro itself would need for a model, for comparison with
msfsim's plans. Asks the TFLM Python interpreter (the optional `tflite_micro` package) in a
child process: its RecordingMicroAllocator prints the figure from C, and a crash of the
interpreter must not take msfsim down."""
from __future__ import annotations

import os
import re
import subprocess
import sys

_CHILD = r"""
import os, sys
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2]))
sys.stdout.flush()
it.print_allocations()
"""
ARENA_PROBE_BYTES = 16 << 20  # the arena the probe interpreter gets (it reports what it used)
_TOTAL = re.compile(rb"Arena allocation total (\d+) bytes")


def tflm_arena_bytes(path: str | os.PathLike, timeout: float = 120.0) -> int | None:
    """Bytes of tensor arena TFLM's interpreter allocates for the model at `path` (its
    RecordingMicroAllocator's total: activations, scratch and TFLM's own persistent
    structures), or None when tflite_micro is not installed or cannot load the model.
    Import the model with msfsim first: only files msfsim accepted should reach TFLM."""
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return None
    try:
        r = subprocess.run([sys.executable, "-c", _CHILD, os.fspath(path),
                            str(ARENA_PROBE_BYTES)], capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _TOTAL.search(r.stdout + r.stderr) if r.returncode == 0 else None
    return int(m.group(1)) if m else None
