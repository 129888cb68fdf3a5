"""`msfsim reproduce` and `msfsim sweep`: many searches and measurements as one batch."""
from __future__ import annotations

import argparse
import sys

from .. import MsfsimError, pipeline
from ..fileio import check_output_dir, shown_path
from .common import EXIT_OK, check_jobs, check_scheduler


def cmd_reproduce(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "--out")
    check_scheduler(args)
    check_jobs(args)
    from ..reproduce import reproduce
    reproduce(args.what, platforms=args.platform, out_dir=args.out, jobs=args.jobs,
              scheduler=args.scheduler)
    return EXIT_OK


def _list(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated values, in order, without blanks."""
    return [v.strip() for text in values or () for v in text.split(",") if v.strip()]


def cmd_sweep(args: argparse.Namespace) -> int:
    from .args import parse_size, positive_float
    platforms = _list(args.platform)
    if not platforms:
        raise MsfsimError("--platform needs at least one board (e.g. --platform stm32f746,hifive1b)")
    try:
        overheads = [positive_float(v) for v in _list(args.max_overhead)]
        rams = [parse_size(v) for v in _list(args.max_ram)]
    except argparse.ArgumentTypeError as exc:
        raise MsfsimError(f"sweep: {exc}") from None
    # Every check before any work: the boards, the output and cache dirs, the scheduler.
    for p in platforms:
        pipeline.load_platform(p)
    check_output_dir(args.out, "--out")
    if args.cache:
        check_output_dir(args.cache, "--cache")
    check_jobs(args)
    check_scheduler(args)
    from ..sweep import expand, sweep
    expand(args.model, platforms, args.objective, overheads, rams)  # bad combinations: exit 2
    command = " ".join(["msfsim", "sweep", *(sys.argv[1:] if sys.argv[1:2] == ["sweep"] else [])])
    doc = sweep(args.model, platforms, args.out, objective=args.objective,
                max_overheads=overheads, max_rams=rams, backend=args.backend,
                compiler=args.compiler, jobs=args.jobs, cache_dir=args.cache,
                scheduler=args.scheduler, command=command.strip())
    rows = doc["rows"]
    failed = [r for r in rows if r["status"] != "ok"]
    width = max(len(f"{r['model']} {r['platform']}") for r in rows) if rows else 0
    for r in rows:
        what = (f"{r['measured_ram']:,} B RAM, {r['instructions']:,} instructions, "
                f"{r['latency_ms_estimate']:.2f} ms (estimate), {r['n_blocks']} blocks"
                if r["status"] == "ok" else f"{r['status']}: {r['error']}")
        print(f"{r['model'] + ' ' + r['platform']:<{width}}  {r['constraint']:<18}  {what}")
    st = doc["stats"]
    print(f"msfsim: sweep: {len(rows)} rows ({len(failed)} failed), {st['measured']} firmware "
          f"built and run, {st['cache_hits']} from the cache, {doc['wall_seconds']:.1f} s; wrote "
          f"{shown_path(args.out)}/sweep.csv, sweep.json, index.html", file=sys.stderr)
    return EXIT_OK
