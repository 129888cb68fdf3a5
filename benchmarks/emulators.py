"""Emulation speed: instructions per second of each backend on each board, on a long integer
loop (tests/firmware/test_block.c). Run: PYTHONPATH=. python benchmarks/emulators.py [ROUNDS]"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from msfsim import platforms, toolchain
from msfsim.sim import get_backend
from msfsim.sim.unicorn_backend import UnicornBackend

FW = Path(__file__).resolve().parent.parent / "tests" / "firmware"
SOURCES = [FW / "test_block.c", FW / "msf_arena.c", toolchain.RUNTIME_DIR / "msf_main.c"]


def main(rounds: int = 100_000) -> None:
    print(f"{'board':28} {'backend':22} {'instructions':>14} {'seconds':>8} {'M instr/s':>10}")
    for p in platforms.all_platforms():
        elf = toolchain.compile_firmware(p, SOURCES, [FW], {"MSF_TEST_ROUNDS": rounds})
        runs = [(b, get_backend(b)) for b in ("unicorn", "qemu") if get_backend(b).available(p)[0]]
        if p.backends.get("unicorn"):
            runs.insert(1, ("unicorn (python hook)", UnicornBackend(native=False)))
        for label, backend in runs:
            if "python" in label and rounds > 2_000:  # ~6 M/s: keep the fallback's run short
                small = toolchain.compile_firmware(p, SOURCES, [FW], {"MSF_TEST_ROUNDS": 2_000})
                t = time.perf_counter(); m = backend.run(small, p, timeout_s=600); dt = time.perf_counter() - t
            else:
                t = time.perf_counter(); m = backend.run(elf, p, timeout_s=600); dt = time.perf_counter() - t
            speed = f"{m.instructions / dt / 1e6:10.1f}" if m.instructions else "         -"
            print(f"{p.label:28} {label:22} {m.instructions or 0:14,d} {dt:8.2f} {speed}  {m.status}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
