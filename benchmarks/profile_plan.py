"""Where a plan's instructions go: retired instructions per firmware function, or per layer.

    PYTHONPATH=. python benchmarks/profile_plan.py zoo:mbv2-w0.35-r144 --platform stm32f746 \
        [--plan plan.json | --vanilla] [--by-layer [--against-vanilla]]

Without --plan the analytic min-RAM plan is profiled. Runs the whole-plan firmware in unicorn
with a Python block hook that attributes each translated block's instructions to the function
containing it (about 30x slower than a measurement; the total equals the measured count).

--by-layer attributes them to layers instead: a function entered with a pointer to a layer's
parameter object (`l<N>_params` of the generated C) in an argument register starts that
layer's count, and everything up to the next such entry is the layer's, the executor's own
functions apart (msf_run_*, msf_needed_intervals, and msf_copy_s8: the hcache column shifts).
The table gives each layer's MACs in the plan (recomputed ones included), instructions and
instructions per MAC; --against-vanilla also profiles the layer-by-layer firmware and shows
what the same layer costs there: the per-MAC price of fusion (call overhead, short vectors,
borders), separated from recompute.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import re
import sys
import tempfile
from pathlib import Path

import unicorn

from msfsim import platforms, refmodel
from msfsim.cli import load_model
from msfsim.codegen.emit import generate_plan
from msfsim.deploy import deploy
from msfsim.fusion.exact import computed_pixels, macs_per_pixel
from msfsim.measure import build_firmware
from msfsim.pipeline import measurement_input, plan_blocks
from msfsim.plan import vanilla
from msfsim.search.api import search_analytic
from msfsim.sim import unicorn_backend as ub
from msfsim.sim.elf import ElfImage

EXECUTOR = ("msf_run_", "msf_needed", "msf_cache_", "msf_copy_s8", "msf_stack", "msf_finish")  # not a layer's
ARG_REGS = {"arm": [getattr(unicorn.arm_const, f"UC_ARM_REG_R{i}") for i in range(4)],  # by arch prefix
            "rv32": [getattr(unicorn.riscv_const, f"UC_RISCV_REG_A{i}") for i in range(4)]}


def profile(model, plat, blocks, by_layer: bool) -> tuple[collections.Counter, object, bool]:
    """Instructions per function (or per layer label), the measurement, and bit-exactness."""
    x = measurement_input(model)
    code = generate_plan(model, blocks, x)
    with tempfile.TemporaryDirectory() as d:
        code.write(Path(d))
        elf = build_firmware(plat, d)
    image = ElfImage(elf.path)
    funcs = sorted((v & ~1, n) for n, (v, s) in image.symbols.items()
                   if s > 0 and not n.startswith("$"))
    starts = [f[0] for f in funcs]
    entry = set(starts)
    params = sorted((v, v + s, int(n[1:-7])) for n, (v, s) in image.symbols.items()
                    if re.fullmatch(r"l\d+_params", n))
    p_starts = [q[0] for q in params]
    regs = next((r for arch, r in ARG_REGS.items() if plat.arch.startswith(arch)), None)
    if by_layer and regs is None:
        sys.exit(f"--by-layer: no argument registers known for arch {plat.arch}")
    hist: collections.Counter = collections.Counter()
    current: list = ["?"]
    base_hook = ub._PyCounter.hook

    def hook(self, uc, address, size, user):
        before = self.total
        base_hook(self, uc, address, size, user)
        k = bisect.bisect_right(starts, address) - 1
        name = funcs[k][1] if k >= 0 else "?"
        if by_layer:
            if address in entry:
                for r in regs:
                    v = uc.reg_read(r)
                    j = bisect.bisect_right(p_starts, v) - 1
                    if j >= 0 and v < params[j][1]:
                        current[0] = params[j][2]
                        break
            if not name.startswith(EXECUTOR):
                name = current[0]
        hist[name] += self.total - before

    ub._PyCounter.hook = hook
    try:
        m = ub.UnicornBackend(native=False).run(elf, plat, budget_instructions=10**10,
                                                timeout_s=3600)
    finally:
        ub._PyCounter.hook = base_hook
    return hist, m, m.output == refmodel.run(model, x).tobytes()


def layer_macs(model, blocks) -> dict[int, tuple[int, str]]:
    """Per layer: MACs the plan computes (recompute included) and its block's label."""
    out = {}
    for b in blocks:
        label = f"{b.first}-{b.last}:{b.config.scheme}" + (
            f":{b.config.tile[0]}x{b.config.tile[1]}" if b.config.scheme != "layer" else "")
        px = computed_pixels(model, b)
        for i in range(b.first, b.last + 1):
            layer = model.layers[i]
            n = px.get(i)  # tail layers (gap, dense) run once: the layer's own MACs
            macs = n * macs_per_pixel(model, layer) if n is not None else model.macs(layer)
            out[i] = (macs, label)
    return out


def split_summary(model, hist, macs, ref, ref_macs) -> str:
    """The plan's instructions split into: the layer-by-layer kernels' own, recomputed MACs
    priced at the layer-by-layer rate of their layer, fused calls' extra cost per MAC, and the
    executor (every function that is not a layer's)."""
    own = recompute = excess = 0.0
    for i in range(len(model.layers)):
        n, rn = macs[i][0], ref_macs[i][0]
        rate = ref[i] / rn if rn else 0.0
        own += ref[i]
        recompute += (n - rn) * rate
        excess += hist[i] - ref[i] - (n - rn) * rate
    executor = sum(v for k, v in hist.items() if isinstance(k, str))
    plan_macs = sum(m for m, _ in macs.values())
    lbl_macs = sum(m for m, _ in ref_macs.values())
    return (f"MACs: plan {plan_macs:,}, layer by layer {lbl_macs:,} "
            f"({plan_macs - lbl_macs:,} recomputed)\n"
            f"split: layer-by-layer kernels {own:,.0f} + recomputed MACs at their layer's "
            f"layer-by-layer rate {recompute:,.0f} + fused calls' extra per MAC {excess:,.0f} "
            f"+ executor and runtime {executor:,} = {own + recompute + excess + executor:,.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--plan", help="plan file (default: analytic min-RAM plan)")
    ap.add_argument("--vanilla", action="store_true", help="profile the layer-by-layer plan")
    ap.add_argument("--top", type=int, default=15, help="functions shown (default 15)")
    ap.add_argument("--by-layer", action="store_true", help="a table per layer, not per function")
    ap.add_argument("--against-vanilla", action="store_true",
                    help="with --by-layer: the same layers in the layer-by-layer firmware beside")
    a = ap.parse_args()
    plat = platforms.load(a.platform)
    model = deploy(load_model(a.model), plat)  # as `msfsim search` deploys it
    blocks = (plan_blocks(model, a.plan) if a.plan else vanilla(model) if a.vanilla
              else [s.block for s in search_analytic(model, plat.name).plan.blocks])
    hist, m, ok = profile(model, plat, blocks, a.by_layer)
    total = sum(hist.values())
    print(f"{model.name} on {plat.name}: {len(blocks)} blocks, measured {m.instructions:,} "
          f"instructions (status {m.status}); whole run {total:,}")
    if not a.by_layer:
        for name, n in hist.most_common(a.top):
            print(f"  {n:>14,}  {100 * n / total:5.1f} %  {name}")
    else:
        ref = None
        if a.against_vanilla:
            ref_blocks = vanilla(model)
            ref, rm, rok = profile(model, plat, ref_blocks, True)
            ok = ok and rok
            ref_macs = layer_macs(model, ref_blocks)
            print(f"layer by layer: measured {rm.instructions:,} instructions")
        macs = layer_macs(model, blocks)
        head = f"{'layer':>5} {'op':<8} {'block':<22} {'MACs':>11} {'instructions':>13} {'/MAC':>6}"
        print(head + ("   lbl MACs  lbl instr  lbl /MAC  x /MAC" if ref else ""))
        for i, layer in enumerate(model.layers):
            n, label = macs[i]
            row = f"{i:>5} {layer.op.value:<8} {label:<22} {n:>11,} {hist[i]:>13,} "
            row += f"{hist[i] / n:>6.2f}" if n else f"{'':>6}"
            if ref:
                rn = ref_macs[i][0]
                row += f" {rn:>10,} {ref[i]:>10,}"
                if n and rn and ref[i]:
                    row += f" {ref[i] / rn:>9.2f} {hist[i] / n / (ref[i] / rn):>7.2f}"
            print(row)
        for name in sorted(k for k in hist if isinstance(k, str)):
            extra = f"   lbl {ref[name]:,}" if ref else ""
            print(f"  {name:<28} {hist[name]:>13,}{extra}")
        if ref:
            print(split_summary(model, hist, macs, ref, ref_macs))
    print("output bit-exact with the host reference:", ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
