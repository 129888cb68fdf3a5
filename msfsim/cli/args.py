"""The argument parser of every command (DESIGN §7): options with their help, examples in each
command's --help, and the number and size types that refuse a typo at once (exit 2)."""
from __future__ import annotations

import argparse
import math

from .. import __version__, pipeline
from .batch import cmd_reproduce, cmd_sweep
from .common import EXIT_USAGE, cores
from .info import cmd_doctor, cmd_info, cmd_platforms, cmd_zoo
from .measuring import cmd_measure, cmd_run, cmd_search


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

    def scheduler_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="measure on the Dask cluster of this scheduler (needs "
                             "msfsim[dask]; see docs/dask.md) (default: $MSFSIM_SCHEDULER, "
                             "else the local process pool)")

    def cache_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--cache", metavar="DIR",
                        help="measurement and build cache directory (default: $MSFSIM_CACHE, "
                             "else ~/.cache/msfsim)")

    def jobs_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--jobs", type=positive_int, default=cores(), metavar="N",
                        help="parallel compile and emulation jobs, at least 1; more than the "
                             "cores here is reduced to the core count, with a note on stderr "
                             "(unused with --scheduler) (default: the number of cores, "
                             "%(default)s)")

    def backend_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--backend", choices=pipeline.backend_names(),
                        default=pipeline.default_backend(),
                        help="emulator that runs the firmware (default: %(default)s)")

    s = add(sub, "search", "find the fusion plan with the least RAM or latency",
            "msfsim search zoo:lenet5-r28 --platform stm32f746 --cost analytic",
            "msfsim search model.onnx --platform stm32f746 --front -o plan.json --report out/",
            "msfsim search zoo:lenet5-r28 --platform stm32f746 --scheduler tcp://10.0.0.5:8786")
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
    s.add_argument("--front", action="store_true",
                   help="measure the whole Pareto front, from the least RAM to layer by layer: "
                        "the search goes on until every block of every front plan is measured "
                        "(a bounded number of rounds), and every front plan is built and run as "
                        "one firmware; takes longer (see docs/front.md) (default: measure the "
                        "chosen plan, the plans near it and the baselines; other front points "
                        "are marked as estimates)")
    s.add_argument("--cost-model", choices=["exact", "msfcnn"], default="exact",
                   help="analytic model of the blocks: msfsim's exact buffer plan, or msf-CNN's "
                        "own formulas (default: %(default)s)")
    backend_arg(s)
    jobs_arg(s)
    scheduler_arg(s)
    compiler_arg(s)
    cache_arg(s)
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
            "msfsim measure zoo:lenet5-r28 --platform stm32f746 --vanilla --scheduler tcp://10.0.0.5:8786")
    model_args(m)
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--plan", metavar="plan.json",
                   help="plan file written by `msfsim search -o` (this or --vanilla is required)")
    g.add_argument("--vanilla", action="store_true",
                   help="layer-by-layer execution instead of a plan")
    backend_arg(m)
    compiler_arg(m)
    cache_arg(m)
    scheduler_arg(m)
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
             "msfsim reproduce msf-cnn --platform stm32f746 --platform hifive1b --out results/",
             "msfsim reproduce msf-cnn --scheduler tcp://10.0.0.5:8786 --out results/")
    rp.add_argument("what", choices=["msf-cnn"], help="what to reproduce: msf-cnn (the msf-CNN "
                    "paper's comparison)")
    rp.add_argument("--platform", action="append", metavar="P",
                    help="board to run on; repeat for several (default: stm32f746, "
                         "nucleo-f767zi, hifive1b, esp32c3)")
    rp.add_argument("--out", default="reproduce-msf-cnn", metavar="DIR",
                    help="directory for the Markdown, JSON and plots (default: %(default)s)")
    jobs_arg(rp)
    scheduler_arg(rp)
    rp.set_defaults(func=cmd_reproduce)

    sw = add(sub, "sweep", "measured searches of many models x boards (x constraints) as one "
             "batch: one cache, one progress bar, a table and a report per row",
             "msfsim sweep zoo:lenet5-r28 zoo:resnet8-r32 --platform stm32f746,hifive1b --out sweep/",
             "msfsim sweep model.onnx --platform stm32f746 --max-overhead 1.1,1.5 --out sweep/",
             "msfsim sweep zoo:mcunet-res-r96 --platform stm32f746,nucleo-f767zi --objective "
             "latency --max-ram 96K --scheduler tcp://10.0.0.5:8786 --out sweep/")
    sw.add_argument("model", nargs="+", metavar="MODEL",
                    help="models: paths to .onnx files, or zoo:NAME; one that cannot be "
                         "imported is a row with its error")
    sw.add_argument("--platform", required=True, action="append", metavar="P1,P2",
                    help="boards, comma-separated or repeated (required; see `msfsim "
                         "platforms`)")
    sw.add_argument("--objective", choices=["ram", "latency"], default="ram",
                    help="ram: least peak RAM (under --max-overhead); latency: fewest "
                         "instructions under --max-ram (default: %(default)s)")
    sw.add_argument("--max-overhead", action="append", metavar="F1,F2",
                    help="with --objective ram: instruction overhead bounds, one search each "
                         "(comma-separated or repeated) (default: no limit)")
    sw.add_argument("--max-ram", action="append", metavar="SIZE1,SIZE2",
                    help="RAM budgets (bytes, or e.g. 64K), one search each; required by "
                         "--objective latency (default: each board's SRAM)")
    sw.add_argument("--out", required=True, metavar="DIR",
                    help="directory for sweep.csv, sweep.json, index.html and reports/ "
                         "(required)")
    backend_arg(sw)
    compiler_arg(sw)
    jobs_arg(sw)
    scheduler_arg(sw)
    cache_arg(sw)
    sw.set_defaults(func=cmd_sweep)
    return p


