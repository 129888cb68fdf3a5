"""How well msfsim.search.estimate predicts blocks it has not measured: leave-one-out over the
fused blocks a measured search measured.

    PYTHONPATH=. python benchmarks/estimate_error.py [zoo:mbv2-w0.35-r144] [--platform stm32f746]
        [--no-front] [--jobs 2] [--cache DIR]

Runs the measured search (with --front unless --no-front; from the cache when it is warm), then
for every fused block it measured re-fits the estimator on all the other measured blocks and
compares the block's estimate with its measurement. Prints, over those blocks: the median and
90th percentile of |log(estimate / measured)| instructions error as a percentage, the bias
(geometric mean of estimate / measured - 1), and the median absolute error of the estimated
measured act in bytes. Layer blocks (scheme "layer") are the estimator's inputs, not estimates.
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from msfsim import platforms
from msfsim.cli import load_model
from msfsim.deploy import deploy
from msfsim.fusion import exact
from msfsim.fusion.block import Block, BlockConfig
from msfsim.pipeline import search_measured
from msfsim.search.estimate import BlockEstimates
from msfsim.search.weights import EdgeWeights


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="zoo:mbv2-w0.35-r144")
    ap.add_argument("--platform", default="stm32f746")
    ap.add_argument("--no-front", action="store_true", help="a plain measured search")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", help="measurement cache directory (default: msfsim's)")
    a = ap.parse_args()
    plat = platforms.load(a.platform)
    model = deploy(load_model(a.model), plat)  # as `msfsim search` deploys it
    r = search_measured(model, plat.name, jobs=a.jobs, front=not a.no_front,
                        **({"cache_dir": a.cache} if a.cache else {}))
    measured = {Block(d["layers"][0], d["layers"][1], BlockConfig(tuple(d["tile"]), d["scheme"])):
                (d["measured_act"], d["instructions"]) for d in r.measurement["blocks"]}
    analytic = EdgeWeights(model, exact.block_cost)  # the exact cost model, as the search
    log_err, ram_err = [], []
    for b, (ram, ins) in measured.items():
        if b.config.scheme == "layer" or (cost := analytic.block_cost(b)) is None:
            continue
        others = {k: v for k, v in measured.items() if k != b}
        est_ram, est_ins = BlockEstimates(model, others, analytic)(b, cost)
        log_err.append(math.log(est_ins / ins))
        ram_err.append(abs(est_ram - ram))
    if not log_err:
        print("no fused block was measured")
        return 1
    e = np.abs(log_err)
    print(f"{model.name} on {plat.name}: {len(measured)} blocks measured, leave-one-out over "
          f"{len(log_err)} fused blocks")
    print(f"  instructions: median error {100 * (math.exp(np.median(e)) - 1):.1f} %, p90 "
          f"{100 * (math.exp(np.percentile(e, 90)) - 1):.1f} %, bias "
          f"{100 * (math.exp(np.mean(log_err)) - 1):+.1f} %")
    print(f"  measured act: median error {np.median(ram_err):.0f} B, max {max(ram_err)} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
