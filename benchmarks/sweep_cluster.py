"""The same sweep on one local worker and on a loopback Dask cluster of N workers.

    PYTHONPATH=. python benchmarks/sweep_cluster.py [--model zoo:lenet5-r28 ...]
        [--platform stm32f746 ...] [--workers 2]

Both runs start cold: each has its own temporary measurement cache, and the cluster's workers
build into their own temporary cache root (MSFSIM_CACHE), so neither run reuses a build or a
measurement of the other. Printed for each: wall time, firmware built and run (jobs) and jobs
per second; then the ratio local / cluster of the wall times. Starting the cluster is not
counted in its wall time (it is printed apart). On a machine with fewer cores than workers, or
busy with other work, the cluster cannot be faster: the figures say what was measured here.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from msfsim.sweep import sweep


def run(models: list[str], platforms: list[str], cache: Path, out: Path, **kw) -> tuple[float, int]:
    t0 = time.perf_counter()
    doc = sweep(models, platforms, out, cache_dir=cache, progress=False, reports=False, **kw)
    wall = time.perf_counter() - t0
    bad = [r for r in doc["rows"] if r["status"] != "ok"]
    if bad:
        print(f"  note: {len(bad)} rows failed: {bad[0]['status']}: {bad[0]['error']}")
    return wall, doc["stats"]["measured"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", help="MODEL (repeat; default zoo:lenet5-r28)")
    ap.add_argument("--platform", action="append", help="board (repeat; default stm32f746)")
    ap.add_argument("--workers", type=int, default=2, help="cluster workers (default 2)")
    a = ap.parse_args()
    models = a.model or ["zoo:lenet5-r28"]
    plats = a.platform or ["stm32f746"]
    print(f"sweep: {', '.join(models)} x {', '.join(plats)}; {os.cpu_count()} cores here")
    with tempfile.TemporaryDirectory(prefix="msfsim-bench-") as tmp:
        d = Path(tmp)
        wall1, jobs1 = run(models, plats, d / "local-cache", d / "local-out", jobs=1)
        print(f"local, 1 worker:      {wall1:8.1f} s  {jobs1:5d} jobs  {jobs1 / wall1:6.2f} jobs/s")

        from distributed import Client, LocalCluster
        os.environ["MSFSIM_CACHE"] = str(d / "worker-cache")  # the workers' own, cold
        t0 = time.perf_counter()
        with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=":0") as lc, \
                Client(lc, set_as_default=False):
            print(f"(cluster of {a.workers} started in {time.perf_counter() - t0:.1f} s)")
            wall2, jobs2 = run(models, plats, d / "client-cache", d / "cluster-out",
                               scheduler=lc.scheduler_address)
        print(f"cluster, {a.workers} workers:  {wall2:8.1f} s  {jobs2:5d} jobs  "
              f"{jobs2 / wall2:6.2f} jobs/s")
        print(f"ratio (local wall / cluster wall): {wall1 / wall2:.2f}x")


if __name__ == "__main__":
    main()
