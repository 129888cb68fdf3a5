"""Emulation speed: instructions per second of each backend on each board, on a long integer
loop (tests/firmware/test_block.c). Run: PYTHONPATH=. python benchmarks/emulators.py [ROUNDS]

Both wall-clock and CPU speeds are printed: on a shared machine the wall-clock figure swings
with the other load, while CPU time (this process and the emulator processes it waited for)
is what the backend itself costs."""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from msfsim import platforms, toolchain
from msfsim.sim import get_backend
from msfsim.sim.unicorn_backend import UnicornBackend

FW = Path(__file__).resolve().parent.parent / "tests" / "firmware"
SOURCES = [FW / "test_block.c", FW / "msf_arena.c", toolchain.RUNTIME_DIR / "msf_main.c"]
PYTHON_HOOK_ROUNDS = 2_000  # the Python fallback runs at a few M instr/s: keep its run short


def _cpu_seconds() -> float:
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def main(rounds: int = 100_000) -> None:
    print(f"{'board':28} {'backend':22} {'instructions':>14} {'wall s':>7} {'M instr/s':>10} "
          f"{'CPU s':>7} {'M instr/s CPU':>14}")
    for p in platforms.all_platforms():
        elf = toolchain.compile_firmware(p, SOURCES, [FW], {"MSF_TEST_ROUNDS": rounds})
        runs = [(b, get_backend(b)) for b in ("unicorn", "qemu") if get_backend(b).available(p)[0]]
        if p.backends.get("unicorn"):
            runs.insert(1, ("unicorn (python hook)", UnicornBackend(native=False)))
        for label, backend in runs:
            target = elf
            if "python" in label and rounds > PYTHON_HOOK_ROUNDS:
                target = toolchain.compile_firmware(p, SOURCES, [FW], {"MSF_TEST_ROUNDS": PYTHON_HOOK_ROUNDS})
            wall, cpu = time.perf_counter(), _cpu_seconds()
            m = backend.run(target, p, timeout_s=600)
            wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
            n = m.instructions or 0
            speeds = (f"{n / wall / 1e6:10.1f} {cpu:7.2f} {n / cpu / 1e6:14.1f}" if n and cpu > 0
                      else f"{'-':>10} {cpu:7.2f} {'-':>14}")
            print(f"{p.label:28} {label:22} {n:14,d} {wall:7.2f} {speeds}  {m.status}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
