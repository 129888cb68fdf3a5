"""`msfsim search ... --emit-c DIR`: a self-contained C project for the board.

DIR gets the generated plan (weights in flash, the plan's arena layout), the kernels, executor
and arena, the board runtime, a linker script for the board's memories, a self-test `main.c`
that runs the plan on the measurement input and compares the output with the host reference,
a Makefile with the compiler and flags msfsim measures with, and a README. Building it needs
the cross-compiler and make only.

A symbol prefix (`prefix="kws_"`) names the generated files and public symbols (`kws_generated.h`,
`kws_generated_run`, `KWS_ARENA_BYTES`, ...; `msf_` by default), so plans of several models
link into one firmware.

The C, Makefile and README templates are files of msfsim/codegen/templates/ (`@name@`
placeholders, `msfsim.codegen.emit.template`). Every model-derived string written into them is
a name the IR has already sanitised (msfsim.names).

DIR is written atomically (built beside it, then renamed). A non-empty DIR that is not a
project emitted earlier (no marker file) is refused.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from msfsim import KERNELS_DIR, MsfsimError, __version__, refmodel
from msfsim.codegen.cwriter import c_array, comment
from msfsim.codegen.emit import (
    DEFAULT_PREFIX,
    GeneratedCode,
    InvalidPrefix,  # noqa: F401  (raised by emit_project; importable from here)
    check_prefix,
    generate_plan,
    template,
)
from msfsim.fusion.block import Block, BlockInfeasible
from msfsim.ir import Model
from msfsim.measure import measurement_input, output_digest
from msfsim.platforms import Platform
from msfsim.search.result import MEMORY_CONVENTION, SearchResult
from msfsim.toolchain import (
    COMMON_FLAGS,
    LINK_FLAGS,
    MIN_STACK_BYTES,
    RUNTIME_DIR,
    linker_script,
    runtime_sources,
)

MARKER = ".msfsim-project"
FIRMWARE = "firmware.elf"
# msf_result.code when the self-test output differs (arena codes are 1-2, executor 16).
CHECK_FATAL_CODE = 32

def check_target(out_dir: str | Path, platform: Platform | None = None,
                 prefix: str = DEFAULT_PREFIX) -> None:
    """What can be refused before a search: a bad prefix, a board msfsim cannot build firmware
    for, and DIR when it exists, is not empty and is not a project emitted by msfsim."""
    check_prefix(prefix)
    if platform is not None:
        _check_board(platform)
    out = Path(out_dir)
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise MsfsimError(f"--emit-c {out_dir}: exists and is not a directory")
    if any(out.iterdir()) and not _is_emitted(out):
        raise MsfsimError(f"--emit-c {out_dir}: directory is not empty and is not a project "
                          f"emitted by msfsim (no {MARKER}); choose another directory")


def _is_emitted(d: Path) -> bool:
    try:
        return json.loads((d / MARKER).read_text()).get("generator") == "msfsim"
    except (OSError, ValueError, AttributeError):
        return False


def emit_project(model: Model, platform: Platform, result: SearchResult,
                 out_dir: str | Path, prefix: str = DEFAULT_PREFIX) -> Path:
    """Write the C project of `result`'s plan for `platform` into `out_dir`; returns it.
    `prefix` names the generated files and public symbols (`<prefix>generated_run`,
    `<PREFIX>ARENA_BYTES`); a prefix that cannot start a C identifier raises InvalidPrefix
    (a ValueError and an MsfsimError) before anything is written."""
    check_target(out_dir, platform, prefix)
    if result.platform != platform.name:
        raise MsfsimError(f"--emit-c: the plan was searched for {result.platform}, "
                          f"not {platform.name}")
    blocks = [s.block for s in result.plan.blocks]
    x = measurement_input(model)
    try:
        code = generate_plan(model, blocks, x, prefix=prefix)
    except (BlockInfeasible, ValueError) as exc:
        raise MsfsimError(f"--emit-c: the plan cannot be generated as C: {exc}") from None
    _check_fits(model, platform, code)
    y = np.ascontiguousarray(refmodel.run(model, x), np.int8)
    files = _project_files(model, platform, result, blocks, code, y, output_digest(y))
    return _install(files, Path(out_dir))


# ----------------------------------------------------------------------------- checks

def _check_board(platform: Platform) -> None:
    if platform.proxy:
        raise MsfsimError(f"--emit-c: {platform.name} is only emulated through a proxy core "
                          f"({platform.proxy_core}); msfsim cannot build firmware for its "
                          f"{platform.core} core")
    missing = [s.name for s in runtime_sources(platform) if not s.is_file()]
    if missing or not platform.gcc.endswith("gcc"):
        raise MsfsimError(f"--emit-c: no firmware runtime for {platform.name} "
                          f"({platform.family}, {platform.gcc}"
                          + (f"; missing {', '.join(missing)}" if missing else "") + ")")


def _check_fits(model: Model, platform: Platform, code: GeneratedCode) -> None:
    """What certainly cannot link for the board is refused here rather than in `make`."""
    need = code.arena_bytes + MIN_STACK_BYTES
    if need > platform.sram.size:
        held = ("network output included, the input read in place" if model.input_in_place
                else "network input and output included")
        raise MsfsimError(f"--emit-c: the plan's arena ({code.arena_bytes:,} B, {held}) and "
                          f"the minimum stack ({MIN_STACK_BYTES} B) exceed the "
                          f"{platform.sram.size:,} B of SRAM of {platform.name}")
    const = _const_bytes(model) + code.input_bytes + code.output_bytes
    if const > platform.flash.size:
        raise MsfsimError(f"--emit-c: weights, sample input and expected output ({const:,} B) "
                          f"exceed the {platform.flash.size:,} B of flash of {platform.name}")


def _const_bytes(model: Model) -> int:
    """Weights and int32 per-channel parameters: a lower bound of the plan's flash."""
    n = 0
    for layer in model.layers:
        for arr in (layer.weight, layer.bias, layer.multiplier, layer.shift):
            if arr is not None:
                n += arr.size * (1 if arr is layer.weight else 4)
    return n


# ----------------------------------------------------------------------------- files

def _project_files(model: Model, platform: Platform, result: SearchResult, blocks: list[Block],
                   code: GeneratedCode, y: np.ndarray, digest: str) -> dict[str, str | bytes]:
    prefix = code.prefix
    expected = f"app/{prefix}expected.c"
    files: dict[str, str | bytes] = {}
    for name in (code.header, code.source):
        files[f"model/{name}"] = code.files[name]
    files[f"app/{code.input_source}"] = code.files[code.input_source]
    files[expected] = (
        comment(f"{prefix}expected.c - generated by msfsim: output of the host reference "
                f"(msfsim.refmodel) on app/{code.input_source}, NHWC int8, sha256 {digest}.")
        + f'#include "{code.header}"\n\n'
        + c_array("int8_t", f"{prefix}expected_output", y, static=False,
                  size=f"{prefix.upper()}OUTPUT_BYTES"))
    files["app/main.c"] = _main_c(prefix)
    for src in sorted(KERNELS_DIR.glob("*.[ch]")):
        files[f"lib/{src.name}"] = src.read_bytes()
    for src in sorted((KERNELS_DIR / "kernels").glob("*.c")):
        files[f"lib/kernels/{src.name}"] = src.read_bytes()
    runtime = runtime_sources(platform)
    for src in [*runtime, *sorted(RUNTIME_DIR.glob("*.h"))]:
        files[f"runtime/{src.name}"] = src.read_bytes()
    files["link.ld"] = _linker_script(platform)
    # Same order as msfsim's measurement firmware: plan, library, main, runtime.
    lib = sorted(p for p in files if p.startswith("lib/") and p.endswith(".c"))
    sources = ([f"model/{code.source}", f"app/{code.input_source}", expected]
               + [p for p in lib if p.count("/") == 1] + [p for p in lib if p.count("/") == 2]
               + ["app/main.c"] + [f"runtime/{s.name}" for s in runtime])
    files["Makefile"] = _makefile(model, platform, sources)
    files["plan.json"] = json.dumps(result.to_plan_json(), indent=1) + "\n"
    files["README.md"] = _readme(model, platform, result, blocks, code, digest)
    files[MARKER] = json.dumps({"generator": "msfsim", "version": __version__,
                                "model": model.name, "platform": platform.name,
                                "prefix": prefix}) + "\n"
    return files


def _main_c(prefix: str) -> str:
    """The self-test main. msf_measured_run.h, shared with msfsim's measurement firmware, calls
    the plan by its default names: another prefix gets aliases (the same machine code)."""
    macro = prefix.upper()
    aliases = "" if prefix == DEFAULT_PREFIX else (
        "/* msf_measured_run.h, shared with msfsim's measurement firmware, names the plan's API\n"
        " * with the default prefix. */\n"
        f"#define msf_generated_run {prefix}generated_run\n"
        f"#define MSF_ARENA_BYTES {macro}ARENA_BYTES\n"
        f"#define MSF_OUTPUT_BYTES {macro}OUTPUT_BYTES\n")
    return template("main.c.in").substitute(prefix=prefix, PREFIX=macro, aliases=aliases,
                                            code=CHECK_FATAL_CODE)


_ORIGIN = {"FLASH": "MSF_FLASH_ORIGIN", "SRAM": "MSF_SRAM_ORIGIN"}


def _linker_script(platform: Platform) -> str:
    """msfsim's linker script for the board, whose origins `make FLASH_ORIGIN=...` can move
    (ld takes a --defsym symbol in MEMORY when the expression tests DEFINED)."""
    text = linker_script(platform)
    for region, sym in _ORIGIN.items():
        text, n = re.subn(rf"(\b{region} \([a-z]+\) : ORIGIN = )(0x[0-9a-fA-F]+)",
                          rf"\1DEFINED({sym}) ? {sym} : \2", text)
        if n != 1:
            raise RuntimeError(f"linker script template: no single {region} region to relocate")
    return text


def _qemu(platform: Platform) -> tuple[str, str]:
    """(QEMU binary, its arguments) running the self-test with semihosting on the console;
    no arguments when no QEMU machine models the board. The machine, cpu and how the firmware
    is loaded come from the board's and its family's [backends.qemu], as for measurements."""
    from msfsim.sim.qemu_backend import firmware_args

    cfg = platform.backends.get("qemu")
    if not cfg:
        return "qemu-system-none", ""
    args = ["-M", cfg["machine"]] + (["-cpu", cfg["cpu"]] if cfg.get("cpu") else [])
    args += ["-m", cfg["ram"]] if cfg.get("ram") else []
    args += ["-nographic", "-monitor", "none", "-serial", "none"]
    args += firmware_args(cfg, FIRMWARE)
    return cfg["system"], " ".join(args)


def _makefile(model: Model, platform: Platform, sources: list[str]) -> str:
    qemu_system, qemu_args = _qemu(platform)
    return template("Makefile.in").substitute(
        version=__version__, model=model.name, board=platform.board, firmware=FIRMWARE,
        cross=platform.gcc[:-len("gcc")], qemu_system=qemu_system, qemu_args=qemu_args,
        arch_flags=" ".join(platform.gcc_flags), cflags=" ".join(COMMON_FLAGS),
        ldflags=" ".join(LINK_FLAGS), sources=" \\\n".join(f"  {s}" for s in sources))


def _readme(model: Model, platform: Platform, result: SearchResult, blocks: list[Block],
            code: GeneratedCode, digest: str) -> str:
    p = result.plan
    measured = result.cost == "measured" and p.instructions is not None
    fw = getattr(result, "measurement", {}).get("plan_firmware", {})
    tin, tout = model.tensor(model.input), model.tensor(model.output)
    rows = [f"| {k} | {s.block.first}–{s.block.last} | {s.block.config.tile[0]}×"
            f"{s.block.config.tile[1]} | {s.block.config.scheme} | {_fmt(s.act)} | "
            f"{_fmt(s.act_io)} | {_fmt(s.measured)} | {_fmt(s.instructions)} | {_fmt(s.macs)} |"
            for k, s in enumerate(p.blocks)]
    if measured:
        figures = (f"Measured as one firmware ({result.backend}, {result.compiler}): "
                   f"{_fmt(p.instructions)} instructions, RAM {_fmt(p.measured)} B = arena "
                   f"{_fmt(fw.get('arena'))} + stack {_fmt(fw.get('stack'))} + static "
                   f"{_fmt(fw.get('static'))}, flash {_fmt(p.flash_bytes)} B; latency estimate "
                   f"{_fmt(p.latency_ms)} ms at {platform.clock_hz / 1e6:g} MHz (instructions / "
                   "clock). Per-block `measured` and `instructions` are those of a firmware "
                   "running that block alone.")
        stack = (f"the plan's firmware used {_fmt(fw.get('stack'))} B in the emulator "
                 "(measured high-water); leave headroom for your own call depth and interrupts.")
    else:
        figures = ("The search was analytic: no figure here is measured. `msfsim measure "
                   f"{_model_arg(model)} --platform {platform.name} --plan plan.json` builds "
                   "and measures this plan in an emulator.")
        stack = ("not measured (analytic search); the linker script keeps at least "
                 f"{MIN_STACK_BYTES} B.")
    moved = [(name, own) for name, own, link in
             (("FLASH", platform.flash.origin, platform.link_flash.origin),
              ("SRAM", platform.sram.origin, platform.link_sram.origin)) if own != link]
    if not moved:
        origins = ", which are the board's own."
    else:
        origins = ("; the board's own map differs: `make clean && make "
                   + " ".join(f"{n}_ORIGIN=0x{o:08x}" for n, o in moved) + "` links there.")
    prefix, macro = code.prefix, code.prefix.upper()
    run = f"`{prefix}generated_run`"
    if model.input_in_place:
        arena_holds = (
            "It holds every activation buffer of the plan and the output, not the network input: "
            f"{run} reads the input in place (see below), so its {code.input_bytes:,} B lie "
            "where your input already is (flash, or a sensor buffer outside the arena).")
        input_use = (
            f"This plan reads the network input in place (`{macro}INPUT_IN_PLACE` = 1): {run} "
            "never copies it into the arena but reads it where it lies throughout the run, so "
            "`input` must stay valid and unchanged until the call returns, and must not be "
            "inside `arena`.")
    else:
        arena_holds = ("It holds every activation buffer of the plan, the network input "
                       f"(copied in by {run}) and the output.")
        input_use = (
            f"{run} first copies the network input into the arena (`{macro}INPUT_IN_PLACE` = 0): "
            "`input` may lie anywhere, flash included, and is not read after the copy.")
    arena_holds = textwrap.fill(arena_holds, 96, initial_indent="  ", subsequent_indent="  ",
                                break_on_hyphens=False)[2:]
    input_use = textwrap.fill(input_use, 96, break_on_hyphens=False)
    return template("README.md.in").substitute(
        prefix=prefix, PREFIX=macro, arena_holds=arena_holds, input_use=input_use,
        model=model.name, board=platform.board, version=__version__,
        n_layers=len(model.layers), n_blocks=len(blocks), core=platform.core,
        sram=_size(platform.sram.size), flash=_size(platform.flash.size),
        mhz=f"{platform.clock_hz / 1e6:g}", cost=result.cost, cost_model=result.cost_model,
        objective=result.objective,
        how=f", {result.backend}, {result.compiler}" if result.cost == "measured" else "",
        rows="\n".join(rows), act=_fmt(p.act), act_io=_fmt(p.act_io), macs=_fmt(p.macs),
        overhead=f"{p.overhead:.3f}",
        overhead_unit=("MACs; the blocks, measured alone, retire "
                       f"{p.instructions_ratio:.3f} x the instructions of layer-by-layer"
                       if result.cost == "measured" and p.instructions_ratio else "MACs"),
        figures=figures, convention=MEMORY_CONVENTION.removeprefix("memory: "),
        arena=f"{code.arena_bytes:,}", stack=stack, weights=f"{_const_bytes(model):,}",
        qemu=_qemu(platform)[0], gcc=platform.gcc, cross=platform.gcc[:-len("gcc")],
        flags=" ".join((*platform.gcc_flags, *COMMON_FLAGS)), ldflags=" ".join(LINK_FLAGS),
        in_shape=_shape(tin.shape), out_shape=_shape(tout.shape),
        in_bytes=f"{code.input_bytes:,}", out_bytes=f"{code.output_bytes:,}",
        in_scale=f"{tin.q.scale:.6g}", in_zp=tin.q.zero_point,
        out_scale=f"{tout.q.scale:.6g}", out_zp=tout.q.zero_point,
        digest=digest, check_code=CHECK_FATAL_CODE, flash_bytes=f"{platform.flash.size:,}",
        sram_bytes=f"{platform.sram.size:,}", link_flash=f"0x{platform.link_flash.origin:08x}",
        link_sram=f"0x{platform.link_sram.origin:08x}", origins=origins, marker=MARKER)


def _fmt(n: float | None) -> str:
    if n is None:
        return "–"
    return f"{n:,}" if isinstance(n, int) else f"{n:,.2f}"


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _model_arg(model: Model) -> str:
    from msfsim import zoo
    return f"zoo:{model.name}" if model.name in zoo.NAMES else "MODEL.onnx"


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n % (1 << 20) == 0 else f"{n >> 10:,} KB"


# ----------------------------------------------------------------------------- install

def _install(files: dict[str, Any], out: Path) -> Path:
    """Write `files` into a temporary directory beside `out`, then rename it to `out`; a
    previous emitted project is replaced only once the new one is complete."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise MsfsimError(f"--emit-c {out}: cannot create the project: {exc}") from None
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
        for d in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            d.chmod(0o755)  # mkdtemp's 0700 would stay on the project
        if out.is_dir() and any(out.iterdir()):
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)  # rename(2) replaces an empty directory
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise MsfsimError(f"--emit-c {out}: cannot write the project: {exc}") from None
        raise
    return out
