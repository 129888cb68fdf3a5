"""Analytic search time per zoo model and cost model, and what the richer space buys.

For every zoo model and cost model (exact, msfcnn) it prints the candidate count, the time to
evaluate the block costs, the time to build the DAG and compute the exact Pareto front plus
P1 (min RAM, F unconstrained) and P2 (min MACs within the vanilla peak), and the front size.
Then, under the same `exact` cost model, it compares the front of the full space (all tiles x
recompute | hcache | stream2d) with the front restricted to msf-CNN's space (1x1 H-cache
blocks): at every overhead F of the restricted front, the lowest RAM each reaches.

    PYTHONPATH=. python benchmarks/search_time.py [MODEL ...]
"""
from __future__ import annotations

import sys
import time

from msfsim import zoo
from msfsim.fusion.block import BlockConfig
from msfsim.fusion.space import candidate_blocks
from msfsim.ir import Model
from msfsim.search import baselines as bl
from msfsim.search.api import cost_model_of, select
from msfsim.search.pareto import Plan, build_dag, pareto_front
from msfsim.search.weights import EdgeWeights

HCACHE_1x1 = BlockConfig((1, 1), "hcache")


def timed_search(model: Model, cost_model: str) -> tuple[EdgeWeights, list[Plan], Plan]:
    fn, space = cost_model_of(cost_model)
    w = EdgeWeights(model, fn)
    t0 = time.perf_counter()
    blocks = space(model)
    for b in blocks:
        w(b)
    t1 = time.perf_counter()
    vanilla = bl.vanilla(model, w)
    front = pareto_front(build_dag(len(model.layers), blocks, w))
    p1 = select(front, vanilla.cost, "ram", None, None)
    p2 = select(front, vanilla.cost, "latency", None, vanilla.ram)
    t2 = time.perf_counter()
    print(f"  {cost_model:<7} {len(blocks):>6} blocks ({len(w.rejected):>5} rejected)  "
          f"costs {t1 - t0:6.3f} s  DAG+front+P1/P2 {t2 - t1:6.3f} s  front {len(front):>3}  "
          f"P1 {p1.ram:>8,} B F {p1.cost / vanilla.cost:5.3f}  "
          f"P2 {p2.ram:>8,} B F {p2.cost / vanilla.cost:5.3f}  vanilla {vanilla.ram:,} B")
    return w, front, vanilla


def compare_spaces(model: Model, w: EdgeWeights, full: list[Plan], vanilla: Plan) -> None:
    """Full space vs msf-CNN's 1x1 H-cache space, both under the weights `w`."""
    restricted = [b for b in candidate_blocks(model, schemes=("hcache",))
                  if b.first == b.last or b.config in (HCACHE_1x1,) or b.config.scheme == "layer"]
    small = pareto_front(build_dag(len(model.layers), restricted, w))
    if not small:
        print("  1x1-hcache space: no complete plan under exact costs")
        return
    better = 0
    print(f"  full front {len(full)} points vs 1x1-hcache front {len(small)} points "
          f"(min RAM {full[0].ram:,} B vs {small[0].ram:,} B)")
    for p in small:
        f = p.cost / vanilla.cost
        q = select(full, vanilla.cost, "ram", f, None)
        gain = p.ram - q.ram
        better += gain > 0
        mark = f"{gain:>8,} B less ({100 * gain / p.ram:4.1f} %)" if gain > 0 else "   equal"
        print(f"    F <= {f:6.3f}: 1x1-hcache {p.ram:>9,} B  full {q.ram:>9,} B  {mark}")
    print(f"  full space strictly better at {better} of {len(small)} overhead levels")


def main(names: list[str]) -> None:
    for name in names or [e.name for e in zoo.list_models()]:
        model = zoo.load(name)
        print(f"{name}: {len(model.layers)} layers, {model.total_macs:,} MACs")
        results = {}
        for cm in ("exact", "msfcnn"):
            try:
                results[cm] = timed_search(model, cm)
            except Exception as exc:  # a cost model may not cover a model: say so, go on
                print(f"  {cm:<7} failed: {type(exc).__name__}: {exc}")
        if "exact" in results:
            compare_spaces(model, *results["exact"])


if __name__ == "__main__":
    main(sys.argv[1:])
