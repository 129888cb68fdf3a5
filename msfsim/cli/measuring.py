"""`msfsim search`, `msfsim measure` and `msfsim run`: a plan found, measured or run."""
from __future__ import annotations

import argparse
import io
import json
import sys

from .. import MsfsimError, pipeline
from ..fileio import check_input_file, check_output_dir, check_output_file, write_atomic
from .common import (EXIT_OK, check_jobs, check_plan, check_scheduler, deployed, emit,
                     load_model, session)


def cmd_search(args: argparse.Namespace) -> int:
    if args.max_overhead is not None and args.objective != "ram":
        raise MsfsimError("--max-overhead goes with --objective ram (P1); use --max-ram with --objective latency")
    if args.objective == "latency" and args.max_ram is None:
        raise MsfsimError("--objective latency needs --max-ram SIZE (minimise latency under a RAM budget)")
    if args.front and args.cost != "measured":
        raise MsfsimError("--front measures the Pareto front: it goes with --cost measured (an "
                          "analytic front has no estimates to measure)")
    # Every path before any work: a typo must not cost a search that may take minutes.
    plat = pipeline.load_platform(args.platform)
    if args.output:
        check_output_file(args.output, "--output")
    if args.report:
        check_output_dir(args.report, "--report")
    if args.cache:
        check_output_dir(args.cache, "--cache")
    if args.emit_c:
        check_output_dir(args.emit_c, "--emit-c")
        pipeline.check_emit_target(args.emit_c, plat, args.prefix)
    check_jobs(args)
    measured = args.cost == "measured"
    if measured:
        check_scheduler(args)
    model = deployed(load_model(args.model, args.input_shape), plat, args)
    with session(args, measured) as s:
        if args.front:  # the whole front measured (docs/front.md)
            result = pipeline.search_measured(model, plat, objective=args.objective,
                                              max_overhead=args.max_overhead,
                                              max_ram=args.max_ram, cost_model=args.cost_model,
                                              backend=args.backend, jobs=args.jobs,
                                              cache_dir=args.cache, compiler=args.compiler,
                                              session=s, front=True)
        else:
            result = pipeline.search(model, plat, cost=args.cost, objective=args.objective,
                                     max_overhead=args.max_overhead, max_ram=args.max_ram,
                                     cost_model=args.cost_model, backend=args.backend,
                                     jobs=args.jobs, cache_dir=args.cache,
                                     compiler=args.compiler, session=s)
    # The C project first: it is the output most likely to be refused (a proxy board, an
    # arena the board cannot hold), and then nothing else has been written either.
    if args.emit_c:
        pipeline.emit_project(model, plat, result, args.emit_c, args.prefix)
    if args.output:
        write_atomic(args.output, json.dumps(result.to_plan_json(), indent=1) + "\n")
    if args.report:
        pipeline.write_report(model, plat, result, args.report)
    obj, text = result.to_json(), result.format_table()
    tflm = pipeline.tflm_arena(args.model)
    if tflm is not None:  # the figure TFLM users size their arena with, for comparison
        obj["tflm_arena_bytes"] = tflm
        text += (f"\nTensorFlow Lite Micro would need an arena of {tflm:,} B (its interpreter's "
                 f"allocation total, layer by layer: activations, scratch and its own structures)")
    emit(args, obj, text)
    return EXIT_OK


def cmd_measure(args: argparse.Namespace) -> int:
    check_plan(args)
    if args.cache:
        check_output_dir(args.cache, "--cache")
    check_scheduler(args)
    plat = pipeline.load_platform(args.platform)
    model = deployed(load_model(args.model, args.input_shape), plat, args)
    remote = pipeline.scheduler_address(args.scheduler) is not None
    # One firmware: in this process, unless a cluster is to measure it.
    with session(args, remote, progress=False) as s:
        result = pipeline.measure_plan(model, plat, plan=args.plan, vanilla=args.vanilla,
                                       backend=args.backend, compiler=args.compiler,
                                       cache_dir=args.cache, session=s)
    emit(args, result.to_json(), result.format_table())
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np
    check_input_file(args.input, "--input")
    check_output_file(args.output, "--output")
    check_plan(args)
    plat = pipeline.load_platform(args.platform)
    model = deployed(load_model(args.model, args.input_shape), plat, args)
    try:
        x = np.load(args.input, allow_pickle=False)
    except FileNotFoundError:
        raise MsfsimError(f"{args.input}: no such file") from None
    except Exception as exc:
        raise MsfsimError(f"{args.input}: not a .npy array ({type(exc).__name__})") from None
    want = model.tensor(model.input).shape
    if x.dtype != np.int8:
        raise MsfsimError(f"{args.input}: dtype {x.dtype}, expected int8 (quantised NHWC input)")
    if x.shape not in (want, (1, *want)):
        raise MsfsimError(f"{args.input}: shape {x.shape}, expected {want} (H, W, C) or {(1, *want)}")
    y = pipeline.run(model, plat, x.reshape(want), plan=args.plan, backend=args.backend)
    buf = io.BytesIO()
    np.save(buf, y)
    write_atomic(args.output, buf.getvalue())
    print(f"wrote {args.output}: int8 {'x'.join(map(str, y.shape))}", file=sys.stderr)
    return EXIT_OK
