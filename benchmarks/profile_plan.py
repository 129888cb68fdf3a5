"""Where a plan's instructions go: retired instructions per firmware function, per block.

    PYTHONPATH=. python benchmarks/profile_plan.py zoo:mbv2-w0.35-r144 --platform stm32f746 [--plan plan.json]

Without --plan the analytic min-RAM plan is profiled. Runs the whole-plan firmware in unicorn
with a Python block hook that attributes each translated block's instructions to the function
containing it (about 30x slower than a measurement; the total equals the measured count).
"""
from __future__ import annotations

import argparse
import bisect
import collections
import sys
import tempfile
from pathlib import Path

import unicorn

from msfsim import platforms, refmodel
from msfsim.cli import load_model
from msfsim.codegen.emit import generate_plan
from msfsim.deploy import deploy
from msfsim.measure import build_firmware
from msfsim.pipeline import measurement_input, plan_blocks
from msfsim.search.api import search_analytic
from msfsim.sim import unicorn_backend as ub
from msfsim.sim.elf import ElfImage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--plan", help="plan file (default: analytic min-RAM plan)")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    plat = platforms.load(a.platform)
    model = deploy(load_model(a.model), plat)  # as `msfsim search` deploys it
    blocks = (plan_blocks(model, a.plan) if a.plan
              else [s.block for s in search_analytic(model, plat.name).plan.blocks])
    x = measurement_input(model)
    code = generate_plan(model, blocks, x)
    with tempfile.TemporaryDirectory() as d:
        code.write(Path(d))
        elf = build_firmware(plat, d)
    image = ElfImage(elf.path)
    funcs = sorted((v & ~1, n) for n, (v, s) in image.symbols.items() if s > 0 and not n.startswith("$"))
    starts = [f[0] for f in funcs]
    hist: collections.Counter[str] = collections.Counter()
    base_hook = ub._PyCounter.hook

    def hook(self, uc, address, size, user):
        before = self.total
        base_hook(self, uc, address, size, user)
        k = bisect.bisect_right(starts, address) - 1
        hist[funcs[k][1] if k >= 0 else "?"] += self.total - before

    ub._PyCounter.hook = hook
    m = ub.UnicornBackend(native=False).run(elf, plat, budget_instructions=10**10, timeout_s=3600)
    total = sum(hist.values())
    print(f"{model.name} on {plat.name}: {len(blocks)} blocks, measured {m.instructions:,} "
          f"instructions (status {m.status}); whole run {total:,}")
    for name, n in hist.most_common(a.top):
        print(f"  {n:>14,}  {100 * n / total:5.1f} %  {name}")
    ok = m.output == refmodel.run(model, x).tobytes()
    print("output bit-exact with the host reference:", ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
