"""Command-line interface (DESIGN §7).

Exit codes: 0 ok; 2 bad input or usage; 3 no plan satisfies the constraints; 4 toolchain or
emulator missing or failed. Errors are one line on stderr; `--json` output is one object on stdout.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import MsfsimError, ToolMissing, __version__
from .fileio import write_atomic

EXIT_OK, EXIT_USAGE, EXIT_NOPLAN, EXIT_TOOL = 0, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), as for every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_size(text: str) -> int:
    """'65536', '64K', '0.5M' (K = 1024) -> bytes."""
    t = text.strip().upper().removesuffix("B")
    mult = 1
    if t and t[-1] in "KMG":
        mult = 1024 ** ("KMG".index(t[-1]) + 1)
        t = t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (bytes, or e.g. 64K, 0.5M)") from None
    if value <= 0 or value != value:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be positive")
    return int(value)


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def _stage(module: str, what: str):
    """Import a pipeline stage; a stage not present in this build is reported as exit 4."""
    try:
        return importlib.import_module(f"msfsim.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("msfsim"):
            raise ToolMissing(f"{what} is not available in this build of msfsim "
                              f"(module msfsim.{module} missing)") from None
        raise ToolMissing(f"{what} needs the Python package {exc.name!r}: run `make setup` "
                          f"or `pip install {exc.name}`") from None


def load_model(spec: str, input_shape: str | None = None):
    """MODEL argument: a path to an .onnx file or zoo:NAME."""
    if spec.startswith("zoo:"):
        zoo = _stage("zoo", "the model zoo")
        name = spec[4:]
        if name not in zoo.NAMES:
            raise MsfsimError(f"unknown zoo model {name!r}; available: {', '.join(zoo.NAMES)}")
        if input_shape:
            raise MsfsimError("--input-shape applies to ONNX files, not to zoo models")
        return zoo.load(name)
    from .onnx_import import import_model
    return import_model(spec, input_shape=input_shape)


def deployed(model, plat, args: argparse.Namespace):
    """The model as deployed on the board (msfsim.deploy): network input read in place or
    copied into the arena (--input-in-place / --input-in-arena; default from the board file),
    weights pre-widened where the board's DSP loops gain and its flash allows (--weights)."""
    from .deploy import deploy
    return deploy(model, plat, getattr(args, "input_in_place", None),
                  wide=getattr(args, "weights", "auto") == "auto")


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj, indent=None, sort_keys=False))
    else:
        print(text)


# ---------------------------------------------------------------------- commands

def cmd_search(args: argparse.Namespace) -> int:
    if args.max_overhead is not None and args.objective != "ram":
        raise MsfsimError("--max-overhead goes with --objective ram (P1); use --max-ram with --objective latency")
    if args.objective == "latency" and args.max_ram is None:
        raise MsfsimError("--objective latency needs --max-ram SIZE (minimise latency under a RAM budget)")
    platforms = _stage("platforms", "board descriptions")
    plat = platforms.load(args.platform)
    model = deployed(load_model(args.model, args.input_shape), plat, args)
    if args.emit_c:  # refuse a foreign DIR before a search that may take minutes
        _stage("codegen.project", "C project emission").check_target(args.emit_c)
    if args.cost == "measured":
        api = _stage("search.measured", "the measured search")
        result = api.search_measured(model, plat, objective=args.objective,
                                     max_overhead=args.max_overhead, max_ram=args.max_ram,
                                     cost_model=args.cost_model, backend=args.backend,
                                     jobs=args.jobs, cache_dir=args.cache,
                                     compiler=args.compiler)
    else:
        api = _stage("search.api", "the analytic search")
        result = api.search_analytic(model, plat.name, objective=args.objective,
                                     max_overhead=args.max_overhead, max_ram=args.max_ram,
                                     cost_model=args.cost_model, sram_bytes=plat.sram.size)
    if args.output:
        write_atomic(args.output, json.dumps(result.to_plan_json(), indent=1) + "\n")
    if args.emit_c:
        _stage("codegen.project", "C project emission").emit_project(model, plat, result, args.emit_c)
    if args.report:
        _stage("report", "reports").write_report(model, plat, result, args.report)
    _emit(args, result.to_json(), result.format_table())
    return EXIT_OK


def cmd_measure(args: argparse.Namespace) -> int:
    platforms = _stage("platforms", "board descriptions")
    plat = platforms.load(args.platform)
    model = deployed(load_model(args.model, args.input_shape), plat, args)
    measure = _stage("measure_plan", "plan measurement")
    result = measure.measure_plan(model, plat, plan=args.plan, vanilla=args.vanilla,
                                  backend=args.backend, compiler=args.compiler)
    _emit(args, result.to_json(), result.format_table())
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np
    platforms = _stage("platforms", "board descriptions")
    plat = platforms.load(args.platform)
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
    runner = _stage("runner", "plan execution")
    y = runner.run(model, plat, x.reshape(want), plan=args.plan, backend=args.backend)
    tmp = Path(args.output).with_name(f".{Path(args.output).name}.{os.getpid()}.tmp.npy")
    np.save(tmp, y)
    os.replace(tmp, args.output)
    print(f"wrote {args.output}: int8 {'x'.join(map(str, y.shape))}", file=sys.stderr)
    return EXIT_OK


def cmd_zoo(args: argparse.Namespace) -> int:
    zoo = _stage("zoo", "the model zoo")
    if args.zoo_cmd == "list":
        rows = zoo.list_models()
        if args.json:
            print(json.dumps([dict(name=n, description=d, input=list(s), layers=k) for n, d, s, k in rows]))
        else:
            w = max(len(r[0]) for r in rows)
            for n, d, s, k in rows:
                print(f"{n:{w}s}  {'x'.join(map(str, s)):>9s}  {k:3d} layers  {d}")
        return EXIT_OK
    if args.name not in zoo.NAMES:
        raise MsfsimError(f"unknown zoo model {args.name!r}; available: {', '.join(zoo.NAMES)}")
    zoo.export(args.name, args.output, qdq=args.qdq)
    print(f"wrote {args.output} ({'QDQ int8' if args.qdq else 'float'})", file=sys.stderr)
    return EXIT_OK


def format_rows(rows: list[dict[str, str]]) -> str:
    """A plain text table of dict rows (same keys in every row)."""
    if not rows:
        return "(none)"
    keys = list(rows[0])
    width = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(width[k]) for k in keys).rstrip()]
    lines += ["  ".join(str(r.get(k, "")).ljust(width[k]) for k in keys).rstrip() for r in rows]
    return "\n".join(lines)


def cmd_platforms(args: argparse.Namespace) -> int:
    rows = _stage("platforms", "board descriptions").describe()
    print(json.dumps(rows) if args.json else format_rows(rows))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    rows = _stage("toolchain", "toolchain detection").doctor()
    print(json.dumps(rows) if args.json else format_rows(rows))
    missing = [r for r in rows if r.get("status") == "missing"]
    if missing and not args.json:
        print(f"\n{len(missing)} required tool(s) missing: install with the commands above "
              f"(or `make setup`)")
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    repro = _stage("reproduce", "the published-results reproduction")
    repro.reproduce(args.what, platforms=args.platform, out_dir=args.out)
    return EXIT_OK


# ---------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="msfsim", description="Measured multi-stage fusion planning of int8 CNNs for MCUs.")
    p.add_argument("--version", action="version", version=f"msfsim {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("model", metavar="MODEL", help="path to an .onnx file, or zoo:NAME")
        sp.add_argument("--platform", required=True, metavar="P", help="board (see `msfsim platforms`)")
        sp.add_argument("--input-shape", metavar="1xCxHxW", help="input shape for models without a static one")
        io = sp.add_mutually_exclusive_group()
        io.add_argument("--input-in-place", dest="input_in_place", action="store_true", default=None,
                        help="read the network input where it lies (flash, a sensor buffer), not "
                             "from a copy in the arena (default: the board's setting)")
        io.add_argument("--input-in-arena", dest="input_in_place", action="store_false",
                        help="copy the network input into the arena first")
        sp.add_argument("--weights", choices=["auto", "int8"], default="auto",
                        help="auto: on DSP cores, store weights pre-widened to int16 where the "
                             "board's flash allows (fewer instructions, same RAM and output); "
                             "int8: all weights int8 (least flash)")

    s = sub.add_parser("search", help="find the fusion plan with the least RAM or latency")
    model_args(s)
    s.add_argument("--objective", choices=["ram", "latency"], default="ram")
    s.add_argument("--max-overhead", type=positive_float, metavar="F",
                   help="P1: compute may grow at most F times over layer-by-layer")
    s.add_argument("--max-ram", type=parse_size, metavar="SIZE", help="P2: RAM budget (bytes, 64K, 0.5M)")
    s.add_argument("--cost", choices=["measured", "analytic"], default="measured")
    s.add_argument("--cost-model", choices=["exact", "msfcnn"], default="exact")
    s.add_argument("--backend", choices=["unicorn", "qemu", "renode"], default="unicorn")
    s.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N")
    s.add_argument("--compiler", choices=["gcc", "clang"], default=None,
                   help="cross-compiler of the measured firmware: Debian's gcc (default) or clang "
                        "from the ziglang wheel; counts compare only within one compiler")
    s.add_argument("--cache", metavar="DIR")
    s.add_argument("-o", "--output", metavar="plan.json")
    s.add_argument("--emit-c", metavar="DIR")
    s.add_argument("--report", metavar="DIR")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    m = sub.add_parser("measure", help="build a plan into one firmware and measure it in an emulator")
    model_args(m)
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--plan", metavar="plan.json")
    g.add_argument("--vanilla", action="store_true", help="layer-by-layer execution")
    m.add_argument("--backend", choices=["unicorn", "qemu", "renode"], default="unicorn")
    m.add_argument("--compiler", choices=["gcc", "clang"], default=None,
                   help="cross-compiler: Debian's gcc (default) or clang from the ziglang wheel")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_measure)

    r = sub.add_parser("run", help="run a plan on an int8 NHWC input")
    model_args(r)
    g = r.add_mutually_exclusive_group()
    g.add_argument("--plan", metavar="plan.json")
    g.add_argument("--vanilla", action="store_true")
    r.add_argument("--backend", choices=["host", "unicorn", "qemu", "renode"], required=True)
    r.add_argument("--input", required=True, metavar="in.npy")
    r.add_argument("--output", required=True, metavar="out.npy")
    r.set_defaults(func=cmd_run)

    z = sub.add_parser("zoo", help="bundled models")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True, parser_class=_Parser)
    zl = zsub.add_parser("list")
    zl.add_argument("--json", action="store_true")
    ze = zsub.add_parser("export")
    ze.add_argument("name")
    ze.add_argument("-o", "--output", required=True, metavar="FILE.onnx")
    ze.add_argument("--qdq", action="store_true", help="QDQ int8 instead of float")
    z.set_defaults(func=cmd_zoo)

    pl = sub.add_parser("platforms", help="boards, and the compilers and backends available for each")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_platforms)

    d = sub.add_parser("doctor", help="what is installed, what is missing, how to install it")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_doctor)

    rp = sub.add_parser("reproduce", help="board-free reproduction of published tables")
    rp.add_argument("what", choices=["msf-cnn"])
    rp.add_argument("--platform", action="append", metavar="P")
    rp.add_argument("--out", default="reproduce-msf-cnn", metavar="DIR")
    rp.set_defaults(func=cmd_reproduce)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MsfsimError as exc:
        print(f"msfsim: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("msfsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("MSFSIM_DEBUG"):
            raise
        print(f"msfsim: internal error: {type(exc).__name__}: {exc} "
              f"(set MSFSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
