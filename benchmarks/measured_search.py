"""Cold and warm measured search of the published models; prints the chosen plans' measured
and analytic figures side by side.

    python benchmarks/measured_search.py [--jobs N] [--platform stm32f746] [--models ...]
                                         [--max-overhead 1.1] [--cache DIR]

Cold = empty measurement cache and empty firmware (ELF) cache, in a fresh directory unless
--cache is given; warm = the same search again on the caches the cold run filled.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PUBLISHED = ("mbv2-w0.35-r144", "mcunetv2-vww5-r80", "mcunet-320kb-r176")


def row(label: str, r, seconds: float) -> str:
    p, fw = r.plan, r.measurement["plan_firmware"]
    st = r.measurement["stats"]
    return (f"  {label:<5} {seconds:8.1f} s | act {p.act:>8,} B  act_io {p.act_io:>8,} B | measured "
            f"{p.measured:>8,} B = arena {fw['arena']:,} + stack {fw['stack']:,} + static "
            f"{fw['static']:,} | {p.instructions:>13,} instr ({p.latency_ms:,.1f} ms est.) "
            f"F {p.overhead:.3f} | {len(p.blocks)} blocks | {st['measured']} built+run, "
            f"{st['cache_hits']} cached, {len(r.measurement['dropped'])} dropped")


def compare(a, r) -> str:
    """How far the analytic figures of the analytic choice were from what was measured, and
    whether measuring changed the choice."""
    p, act = r.plan, r.measurement["measured_act"]
    ab = [b.block for b in a.plan.blocks]
    mb = [b.block for b in p.blocks]
    same = sum(1 for b in mb if b in ab)
    changed = "no" if ab == mb else f"yes ({len(mb) - same} of {len(mb)} blocks differ)"
    return (f"        analytic -> measured: act {a.plan.act:,} -> {act['bytes']:,} B "
            f"({act['bytes'] / a.plan.act - 1:+.1%}; worst block {act['block']}: arena "
            f"{act['arena']:,} + stack {act['stack']:,} - network I/O {act['network_io']:,}); "
            f"act_io {a.plan.act_io:,} -> measured RAM {p.measured:,} B; "
            f"{a.plan.macs:,} MACs -> {p.instructions:,} instructions "
            f"({p.instructions / p.macs:.2f} per MAC of the measured plan); plan changed: {changed}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--backend", default="unicorn")
    ap.add_argument("--models", nargs="+", default=list(PUBLISHED))
    ap.add_argument("--max-overhead", type=float, action="append", default=None,
                    help="also run P1 at these F limits (default: 1.1)")
    ap.add_argument("--cache", help="cache directory (default: a fresh one, so the first run is cold)")
    ap.add_argument("--weights", choices=["auto", "int8"], default="auto",
                    help="deployment of the weights, as `msfsim search --weights`")
    args = ap.parse_args(argv)
    limits = args.max_overhead if args.max_overhead is not None else [1.1]

    root = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="msfsim-bench-"))
    os.environ["MSFSIM_CACHE"] = str(root)  # firmware builds cached (and cold) here too
    from msfsim import platforms, zoo
    from msfsim.deploy import deploy
    from msfsim.search.api import search_analytic
    from msfsim.pipeline import search_measured

    print(f"measured search on {args.platform} ({args.backend}), {args.jobs} jobs, cache {root}")
    for name in args.models:
        # deployed as `msfsim search` deploys it (input copied into the arena: this board's default)
        model = deploy(zoo.load(name), platforms.load(args.platform), wide=args.weights == "auto")
        a = search_analytic(model, args.platform)
        print(f"{name}: {len(model.layers)} layers, {model.total_macs:,} MACs; analytic (exact) "
              f"min-RAM plan: act {a.plan.act:,} B, act_io {a.plan.act_io:,} B, "
              f"{a.plan.macs:,} MACs, F {a.plan.overhead:.3f}; vanilla act "
              f"{a.baselines['vanilla'].act:,} B")
        for label, kw in [("min-RAM", {}), *[(f"F<={f:g}", {"max_overhead": f}) for f in limits]]:
            print(f" {label}:")
            for run in ("cold", "warm"):
                t0 = time.perf_counter()
                r = search_measured(model, args.platform, backend=args.backend, jobs=args.jobs,
                                    cache_dir=root / "measurements", **kw)
                print(row(run, r, time.perf_counter() - t0), flush=True)
            print(compare(search_analytic(model, args.platform, **kw), r), flush=True)
            van = r.baselines["vanilla"]
            print(f"        vanilla measured {van.measured:,} B, {van.instructions:,} instr; "
                  f"compiler {r.compiler}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
