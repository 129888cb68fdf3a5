"""Command-line interface (DESIGN §7).

Exit codes: 0 ok; 2 bad input or usage; 3 no plan satisfies the constraints; 4 toolchain or
emulator missing or failed. Errors are one line on stderr; `--json` output is one object on stdout.
Numbers and paths are checked when a command starts, before any work (msfsim.fileio), so a typo
is refused in a second, not after a search of minutes, and nothing is left half-written.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import textwrap
from typing import Any, Sequence

from . import MsfsimError, ToolMissing, __version__, pipeline
from .fileio import (check_input_file, check_output_dir, check_output_file, read_json_file,
                     shown_path, write_atomic)

EXIT_OK, EXIT_USAGE, EXIT_NOPLAN, EXIT_TOOL = 0, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2), as for every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


MAX_SIZE = 1 << 40  # 1024G: no microcontroller comes near; a larger figure is a typo


def parse_size(text: str) -> int:
    """'65536', '64K', '0.5M' (K = 1024) -> bytes: a finite whole number of bytes >= 1."""
    t = text.strip().upper().removesuffix("B")
    mult = 1
    if t and t[-1] in "KMG":
        mult = 1024 ** ("KMG".index(t[-1]) + 1)
        t = t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (bytes, or e.g. 64K, 0.5M)") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be a finite number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be positive (at least 1 byte)")
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: larger than 1024G")
    return int(value)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def positive_int(text: str) -> int:
    """A whole number >= 1 (--jobs)."""
    try:
        v = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: a whole number >= 1") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def cores() -> int:
    return os.cpu_count() or 1


def load_model(spec: str, input_shape: str | None = None):
    """MODEL argument: a path to an .onnx file or zoo:NAME."""
    return pipeline.load_model(spec, input_shape)


def deployed(model, plat, args: argparse.Namespace):
    """The model as deployed on the board (msfsim.deploy): network input read in place or
    copied into the arena (--input-in-place / --input-in-arena; default from the board file),
    weights pre-widened where the board's DSP loops gain and its flash allows (--weights)."""
    return pipeline.deployed(model, plat, getattr(args, "input_in_place", None),
                             getattr(args, "weights", "auto"))


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj, indent=None, sort_keys=False))
    else:
        print(text)


# ---------------------------------------------------------------------- commands

def _check_plan(args: argparse.Namespace) -> None:
    """--plan: an existing, readable JSON object (its blocks are checked against the model
    later, by msfsim.plan)."""
    if getattr(args, "plan", None) is None:
        return
    data = read_json_file(args.plan, "--plan", "a JSON plan")
    if not isinstance(data, dict):
        raise MsfsimError(f"--plan {shown_path(args.plan)}: not a msfsim plan "
                          f"(expected a JSON object)")


def cmd_search(args: argparse.Namespace) -> int:
    if args.max_overhead is not None and args.objective != "ram":
        raise MsfsimError("--max-overhead goes with --objective ram (P1); use --max-ram with --objective latency")
    if args.objective == "latency" and args.max_ram is None:
        raise MsfsimError("--objective latency needs --max-ram SIZE (minimise latency under a RAM budget)")
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
    if args.jobs > cores():
        print(f"msfsim: --jobs {args.jobs} is more than the {cores()} cores here; using {cores()}",
              file=sys.stderr)
        args.jobs = cores()
    model = deployed(load_model(args.model, args.input_shape), plat, args)
    result = pipeline.search(model, plat, cost=args.cost, objective=args.objective,
                             max_overhead=args.max_overhead, max_ram=args.max_ram,
                             cost_model=args.cost_model, backend=args.backend, jobs=args.jobs,
                             cache_dir=args.cache, compiler=args.compiler)
    # The C project first: it is the output most likely to be refused (a proxy board, an
    # arena the board cannot hold), and then nothing else has been written either.
    if args.emit_c:
        pipeline.emit_project(model, plat, result, args.emit_c, args.prefix)
    if args.output:
        write_atomic(args.output, json.dumps(result.to_plan_json(), indent=1) + "\n")
    if args.report:
        pipeline.write_report(model, plat, result, args.report)
    _emit(args, result.to_json(), result.format_table())
    return EXIT_OK


def cmd_measure(args: argparse.Namespace) -> int:
    _check_plan(args)
    if args.cache:
        check_output_dir(args.cache, "--cache")
    plat = pipeline.load_platform(args.platform)
    model = deployed(load_model(args.model, args.input_shape), plat, args)
    result = pipeline.measure_plan(model, plat, plan=args.plan, vanilla=args.vanilla,
                                   backend=args.backend, compiler=args.compiler,
                                   cache_dir=args.cache)
    _emit(args, result.to_json(), result.format_table())
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np
    check_input_file(args.input, "--input")
    check_output_file(args.output, "--output")
    _check_plan(args)
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


def cmd_zoo(args: argparse.Namespace) -> int:
    if args.zoo_cmd == "list":
        rows = pipeline.zoo_models()
        if args.json:
            print(json.dumps([dict(name=n, description=d, input=list(s), layers=k) for n, d, s, k in rows]))
        else:
            shapes = ["x".join(map(str, s)) for _, _, s, _ in rows]
            wn = max(len(r[0]) for r in rows)
            ws = max(len(t) for t in shapes)
            wk = max(len(str(r[3])) for r in rows)
            for (n, d, _, k), shape in zip(rows, shapes):
                print(f"{n:{wn}s}  {shape:>{ws}s}  {k:{wk}d} layers  {d}")
        return EXIT_OK
    names = pipeline.zoo_names()
    if args.name not in names:
        raise MsfsimError(f"unknown zoo model {args.name!r}; available: {', '.join(names)}")
    check_output_file(args.output, "--output")
    pipeline.zoo_export(args.name, args.output, qdq=args.qdq)
    print(f"wrote {args.output} ({'QDQ int8' if args.qdq else 'float'})", file=sys.stderr)
    return EXIT_OK


def format_rows(rows: list[dict[str, str]], right: Sequence[str] = ()) -> str:
    """A plain text table of dict rows (same keys in every row); columns named in `right` are
    right-aligned (numbers)."""
    if not rows:
        return "(none)"
    keys = list(rows[0])
    width = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}

    def cell(k: str, v: Any) -> str:
        return str(v).rjust(width[k]) if k in right else str(v).ljust(width[k])
    lines = ["  ".join(cell(k, k) for k in keys).rstrip()]
    lines += ["  ".join(cell(k, r.get(k, "")) for k in keys).rstrip() for r in rows]
    return "\n".join(lines)


def cmd_platforms(args: argparse.Namespace) -> int:
    rows = pipeline.describe_platforms()
    print(json.dumps(rows) if args.json else format_rows(rows, right=("sram", "flash", "clock")))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    rows = pipeline.doctor()
    if args.json:
        print(json.dumps(rows))
    else:  # narrow: the install hint on its own line, only where something is missing
        print(format_rows([{"tool": r["tool"], "status": r["status"],
                            "detail": textwrap.shorten(r["detail"], 64, placeholder="...")}
                           for r in rows]))
        hints = [f"  {r['tool']}: {r['install']}" for r in rows if r["status"] != "ok"]
        if hints:
            print("\nto install:\n" + "\n".join(hints))
    missing = [r for r in rows if r.get("status") == "missing"]
    if missing and not args.json:
        print(f"\n{len(missing)} required tool(s) missing: install with the commands above "
              f"(or `make setup`)")
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "--out")
    from .reproduce import reproduce
    reproduce(args.what, platforms=args.platform, out_dir=args.out)
    return EXIT_OK


# ---------------------------------------------------------------------- info

def _quant(model, tid: int) -> dict[str, Any]:
    t = model.tensor(tid)
    return {"name": t.name, "dtype": "int8", "layout": "NHWC", "shape": [1, *t.shape],
            "scale": float(t.q.scale), "zero_point": int(t.q.zero_point)}


def model_info(model) -> dict[str, Any]:
    """What `msfsim info` prints: layers, totals and the network input / output quantisation."""
    from .ir import Op
    windowed = (Op.CONV, Op.DWCONV, Op.MAXPOOL, Op.AVGPOOL)
    layers = []
    for layer in model.layers:
        layers.append({
            "index": layer.index, "name": layer.name, "op": layer.op.value,
            "activation": layer.activation,
            "kernel": list(layer.kernel) if layer.op in windowed else None,
            "stride": list(layer.stride) if layer.op in windowed else None,
            "inputs": [model.tensor(t).name for t in layer.inputs],
            "output_shape": list(model.out_shape(layer)),
            "macs": int(model.macs(layer)),
            "weight_bytes": 0 if layer.weight is None else int(layer.weight.nbytes),
            "bias_bytes": 0 if layer.bias is None else int(layer.bias.nbytes),
        })
    big = max(model.tensors, key=lambda t: t.size)
    return {
        "model": model.name,
        "input": _quant(model, model.input),
        "output": _quant(model, model.output),
        "layers": layers,
        "totals": {
            "layers": len(layers),
            "macs": sum(r["macs"] for r in layers),
            "weight_bytes": sum(r["weight_bytes"] for r in layers),
            "bias_bytes": sum(r["bias_bytes"] for r in layers),
            "largest_activation": {"name": big.name, "shape": list(big.shape), "bytes": big.size},
        },
    }


def _kernel_stride_text(r: dict[str, Any]) -> str:
    if r["kernel"] is None:
        return "global" if r["op"] == "gap" else "-"
    (kh, kw), (sh, sw) = r["kernel"], r["stride"]
    return f"{kh}x{kw} s{sh}" if sh == sw else f"{kh}x{kw} s{sh}x{sw}"


def format_info(info: dict[str, Any]) -> str:
    def hwc(shape: Sequence[int]) -> str:
        return "x".join(map(str, shape))

    rows = [{"#": str(r["index"]), "layer": r["name"],
             "op": r["op"] + (f"+{r['activation']}" if r["activation"] != "none" else ""),
             "kernel/stride": _kernel_stride_text(r), "output HxWxC": hwc(r["output_shape"]),
             "MACs": f"{r['macs']:,}", "weight B": f"{r['weight_bytes']:,}"}
            for r in info["layers"]]
    t = info["totals"]
    big = t["largest_activation"]
    lines = [f"model {info['model']}", "",
             format_rows(rows, right=("#", "MACs", "weight B")), "",
             f"totals: {t['layers']} layers, {t['macs']:,} MACs, weights {t['weight_bytes']:,} B "
             f"(int8) + biases {t['bias_bytes']:,} B (int32), largest activation "
             f"{big['name']} {hwc(big['shape'])} = {big['bytes']:,} B"]
    for key, how in (("input", "quantise: q = clamp(round(x / scale) + zero_point, -128, 127)"),
                     ("output", "dequantise: x = scale * (q - zero_point)")):
        q = info[key]
        lines.append(f"{key + ':':7s} {q['name']} {q['dtype']} {q['layout']} {hwc(q['shape'])}, "
                     f"scale {q['scale']:.9g}, zero point {q['zero_point']}; {how}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    info = model_info(load_model(args.model, args.input_shape))
    _emit(args, info, format_info(info))
    return EXIT_OK


# ---------------------------------------------------------------------- parser

class _Help(argparse.RawDescriptionHelpFormatter):
    """Examples in epilogs keep their lines."""


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="msfsim", formatter_class=_Help,
                description="Measured multi-stage fusion planning of int8 CNNs for MCUs.",
                epilog="MODEL is a path to an .onnx file or zoo:NAME (`msfsim zoo list`). Sizes "
                       "accept bytes or 64K / 0.5M (K = 1024).\nExit codes: 0 ok; 2 bad input or "
                       "usage; 3 no plan satisfies the constraints; 4 a compiler, emulator or "
                       "stage is missing.")
    p.add_argument("--version", action="version", version=f"msfsim {__version__}",
                   help="print msfsim's version and exit")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser, metavar="COMMAND")

    def add(parent, name: str, help: str, *examples: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                                 formatter_class=_Help,
                                 epilog=_examples(*examples) if examples else None)

    def json_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of text (default: text)")

    def model_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("model", metavar="MODEL", help="path to an .onnx file, or zoo:NAME")
        sp.add_argument("--input-shape", metavar="1xCxHxW",
                        help="input shape for ONNX models without a static one (default: the "
                             "model's own)")

    def model_args(sp: argparse.ArgumentParser) -> None:
        model_arg(sp)
        sp.add_argument("--platform", required=True, metavar="P",
                        help="board (required; see `msfsim platforms`)")
        io_ = sp.add_mutually_exclusive_group()
        io_.add_argument("--input-in-place", dest="input_in_place", action="store_true", default=None,
                         help="read the network input where it lies (flash, a sensor buffer), not "
                              "from a copy in the arena (default: the board's setting)")
        io_.add_argument("--input-in-arena", dest="input_in_place", action="store_false",
                         help="copy the network input into the arena first (default: the "
                              "board's setting)")
        sp.add_argument("--weights", choices=["auto", "int8"], default="auto",
                        help="auto: on DSP cores, store weights pre-widened to int16 where the "
                             "board's flash allows (fewer instructions, same RAM and output); "
                             "int8: all weights int8, least flash (default: %(default)s)")

    def compiler_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--compiler", choices=["gcc", "clang"], default=None,
                        help="cross-compiler of the measured firmware: Debian's gcc or clang "
                             "from the ziglang wheel; counts compare only within one compiler "
                             "(default: gcc)")

    def backend_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--backend", choices=pipeline.backend_names(),
                        default=pipeline.default_backend(),
                        help="emulator that runs the firmware (default: %(default)s)")

    s = add(sub, "search", "find the fusion plan with the least RAM or latency",
            "msfsim search zoo:lenet5-r28 --platform stm32f746 --cost analytic",
            "msfsim search model.onnx --platform stm32f746 --max-overhead 1.1 -o plan.json --report out/",
            "msfsim search zoo:mbv2-w0.35-r144 --platform stm32f746 --objective latency --max-ram 64K")
    model_args(s)
    s.add_argument("--objective", choices=["ram", "latency"], default="ram",
                   help="ram: least peak RAM (under --max-overhead); latency: fewest "
                        "instructions under --max-ram (default: %(default)s)")
    s.add_argument("--max-overhead", type=positive_float, metavar="F",
                   help="with --objective ram: the cost may grow at most F times over "
                        "layer-by-layer: MACs with --cost analytic, instructions of the blocks "
                        "measured alone with --cost measured; a finite number > 0 (default: no "
                        "limit)")
    s.add_argument("--max-ram", type=parse_size, metavar="SIZE",
                   help="RAM budget: bytes, or e.g. 64K, 0.5M; required by --objective latency "
                        "(default: the board's SRAM)")
    s.add_argument("--cost", choices=["measured", "analytic"], default="measured",
                   help="measured: compile and emulate candidate blocks; analytic: cost model "
                        "only, no compiler or emulator (default: %(default)s)")
    s.add_argument("--cost-model", choices=["exact", "msfcnn"], default="exact",
                   help="analytic model of the blocks: msfsim's exact buffer plan, or msf-CNN's "
                        "own formulas (default: %(default)s)")
    backend_arg(s)
    s.add_argument("--jobs", type=positive_int, default=cores(), metavar="N",
                   help="parallel compile and emulation jobs, at least 1; more than the cores "
                        "here is reduced to the core count, with a note on stderr (default: the "
                        "number of cores, %(default)s)")
    compiler_arg(s)
    s.add_argument("--cache", metavar="DIR",
                   help="measurement and build cache directory (default: $MSFSIM_CACHE, else "
                        "~/.cache/msfsim)")
    s.add_argument("-o", "--output", metavar="plan.json",
                   help="write the chosen plan to this JSON file (default: not written)")
    s.add_argument("--emit-c", metavar="DIR",
                   help="write a self-contained C project of the plan for the board into DIR, "
                        "new, empty or emitted before (default: none)")
    s.add_argument("--prefix", metavar="PREFIX", default="msf_",
                   help="symbol prefix of the --emit-c project: <prefix>generated_run, "
                        "<PREFIX>ARENA_BYTES, ... so several models link into one firmware "
                        "(default: msf_)")
    s.add_argument("--report", metavar="DIR",
                   help="write an HTML report with plots and result.json into DIR (default: none)")
    json_arg(s)
    s.set_defaults(func=cmd_search)

    m = add(sub, "measure", "build a plan into one firmware and measure it in an emulator",
            "msfsim measure zoo:lenet5-r28 --platform stm32f746 --vanilla",
            "msfsim measure zoo:mbv2-w0.35-r144 --platform stm32f746 --plan plan.json --json",
            "msfsim measure model.onnx --platform hifive1b --plan plan.json --backend qemu")
    model_args(m)
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--plan", metavar="plan.json",
                   help="plan file written by `msfsim search -o` (this or --vanilla is required)")
    g.add_argument("--vanilla", action="store_true",
                   help="layer-by-layer execution instead of a plan")
    backend_arg(m)
    compiler_arg(m)
    m.add_argument("--cache", metavar="DIR",
                   help="measurement and build cache directory (default: $MSFSIM_CACHE, else "
                        "~/.cache/msfsim)")
    json_arg(m)
    m.set_defaults(func=cmd_measure)

    r = add(sub, "run", "run a plan on an int8 NHWC input",
            "msfsim run zoo:lenet5-r28 --platform stm32f746 --backend host --input x.npy --output y.npy",
            "msfsim run model.onnx --platform stm32f746 --plan plan.json --backend unicorn "
            "--input x.npy --output y.npy",
            "(x.npy: int8, HxWxC or 1xHxWxC, quantised with the scale and zero point that "
            "`msfsim info MODEL` prints)")
    model_args(r)
    g = r.add_mutually_exclusive_group()
    g.add_argument("--plan", metavar="plan.json",
                   help="plan file written by `msfsim search -o` (default: layer by layer)")
    g.add_argument("--vanilla", action="store_true",
                   help="layer-by-layer execution (the default when --plan is not given)")
    r.add_argument("--backend", required=True,
                   choices=["host", *pipeline.backend_names()],
                   help="host: the C kernels built for this machine; otherwise the emulator "
                        "that runs the board's firmware (required)")
    r.add_argument("--input", required=True, metavar="in.npy",
                   help="int8 NHWC input array, .npy (required)")
    r.add_argument("--output", required=True, metavar="out.npy",
                   help="where to write the int8 output array, .npy (required)")
    r.set_defaults(func=cmd_run)

    i = add(sub, "info", "show a model's layers, MACs, weights and input / output quantisation",
            "msfsim info zoo:lenet5-r28",
            "msfsim info model.onnx --json")
    model_arg(i)
    json_arg(i)
    i.set_defaults(func=cmd_info)

    z = add(sub, "zoo", "bundled models")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True, parser_class=_Parser, metavar="COMMAND")
    zl = add(zsub, "list", "list the bundled models with their input shapes and layer counts")
    json_arg(zl)
    ze = add(zsub, "export", "write a bundled model as an ONNX file",
             "msfsim zoo export lenet5-r28 -o lenet5.onnx",
             "msfsim zoo export mobilenetv2-w0.35-r144 -o mbv2.onnx --qdq")
    ze.add_argument("name", metavar="NAME", help="bundled model (see `msfsim zoo list`)")
    ze.add_argument("-o", "--output", required=True, metavar="FILE.onnx",
                    help="ONNX file to write (required)")
    ze.add_argument("--qdq", action="store_true",
                    help="QDQ int8 instead of float (default: float)")
    z.set_defaults(func=cmd_zoo)

    pl = add(sub, "platforms", "boards, and the compilers and backends available for each")
    json_arg(pl)
    pl.set_defaults(func=cmd_platforms)

    d = add(sub, "doctor", "what is installed, what is missing, how to install it")
    json_arg(d)
    d.set_defaults(func=cmd_doctor)

    rp = add(sub, "reproduce", "board-free reproduction of published tables",
             "msfsim reproduce msf-cnn",
             "msfsim reproduce msf-cnn --platform stm32f746 --platform hifive1b --out results/")
    rp.add_argument("what", choices=["msf-cnn"], help="what to reproduce: msf-cnn (the msf-CNN "
                    "paper's comparison)")
    rp.add_argument("--platform", action="append", metavar="P",
                    help="board to run on; repeat for several (default: stm32f746, "
                         "nucleo-f767zi, hifive1b, esp32c3)")
    rp.add_argument("--out", default="reproduce-msf-cnn", metavar="DIR",
                    help="directory for the Markdown, JSON and plots (default: %(default)s)")
    rp.set_defaults(func=cmd_reproduce)
    return p


def missing_package(exc: ModuleNotFoundError) -> ToolMissing:
    """A Python package msfsim needs for this command is not installed (exit 4)."""
    name = (exc.name or str(exc)).split(".")[0]
    if name == "msfsim":
        return ToolMissing(f"this build of msfsim is incomplete (module {exc.name} missing): "
                           f"reinstall msfsim")
    return ToolMissing(f"this command needs the Python package {name!r}: run `make setup` "
                       f"or `pip install {name}`")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        print(f"msfsim: error: {missing_package(exc)}", file=sys.stderr)
        return EXIT_TOOL
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
