"""Plan -> C: weights and kernel parameters as const data, block descriptors for the executor
(kernels_c/msf_executor.h), arena offsets from msfsim.fusion.memplan, and `msf_generated_run`.

The generated code has no per-model loops: it is data for the generic executor. Everything it
defines is `static` except the run function; the header (C and C++) declares that function and
gives the sizes, shapes and quantisation as macros. A plan generated with a prefix (`kws_`)
names its files and public symbols with it instead of `msf_` / `MSF_` (`kws_generated.h`,
`kws_generated_run`, `KWS_ARENA_BYTES`), so several plans link into one program; the kernel
library's `msf_*` symbols are shared. The C templates are in msfsim/codegen/templates/.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from msfsim import MsfsimError, ops
from msfsim.codegen.cwriter import c_array, c_struct, c_struct_array, comment, ident
from msfsim.fusion.block import Block
from msfsim.fusion.geometry import block_structure, pool_in_place
from msfsim.fusion.memplan import BlockPlan, block_plan, plan_layout
from msfsim.ir import Layer, Model
from msfsim.names import check_c_text, shown
from msfsim.ops.base import CArray, CDecl, CIf, CStruct, CTable
# Conv parameters, re-exported: msfsim.deploy and the tests use them from here.
from msfsim.ops.convbase import (ChannelParams, channel_params, wide_eligible,  # noqa: F401
                                 wide_weights)

SCHEME = {"layer": "MSF_SCHEME_LAYER", "recompute": "MSF_SCHEME_RECOMPUTE",
          "hcache": "MSF_SCHEME_HCACHE", "stream2d": "MSF_SCHEME_STREAM2D"}
BUF_KIND = {"input": "MSF_BUF_FULL", "skip": "MSF_BUF_FULL", "output": "MSF_BUF_FULL",
            "tensor": "MSF_BUF_FULL", "region": "MSF_BUF_REGION", "ring": "MSF_BUF_RING",
            "cache": "MSF_BUF_CACHE"}

DEFAULT_PREFIX = "msf_"
MAX_PREFIX = 32
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TEMPLATES = "templates"  # msfsim/codegen/templates/: package data


class InvalidPrefix(MsfsimError, ValueError):
    """A symbol prefix that is not the start of a C identifier (exit 2 from the CLI)."""


def check_prefix(prefix: object) -> str:
    """`prefix` if it can start the C identifiers of a generated plan: a letter or '_', then
    letters, digits or '_', at most MAX_PREFIX characters."""
    if not isinstance(prefix, str) or len(prefix) > MAX_PREFIX or not _PREFIX.fullmatch(prefix):
        raise InvalidPrefix(f"symbol prefix {shown(prefix)}: not a C identifier prefix (a letter "
                            f"or '_', then letters, digits or '_', at most {MAX_PREFIX} "
                            "characters; e.g. kws_)")
    if prefix != DEFAULT_PREFIX and prefix.lower().startswith(DEFAULT_PREFIX):
        raise InvalidPrefix(f"symbol prefix {shown(prefix)}: names starting with "
                            f"{DEFAULT_PREFIX} belong to msfsim's kernel library; choose "
                            "another prefix (e.g. kws_)")
    return prefix


class SourceTemplate(Template):
    """string.Template with `@name@` placeholders (as in kernels_c/runtime/link.ld.in): a
    template of C, a Makefile or Markdown reads like what it produces, `$` staying make's and
    the shell's. Any other `@` is text; a placeholder without a value raises KeyError."""
    delimiter = "@"
    flags = 0
    pattern = (r"@(?:(?P<escaped>(?!))|(?P<named>[A-Za-z][A-Za-z0-9_]*)@|(?P<braced>(?!))"
               r"|(?P<invalid>(?!)))")


@lru_cache(maxsize=None)
def template(name: str) -> SourceTemplate:
    """The template `name` of msfsim/codegen/templates/ (shipped inside the package)."""
    text = resources.files(__package__).joinpath(TEMPLATES).joinpath(name).read_text(
        encoding="utf-8")
    return SourceTemplate(text)


@dataclass(frozen=True)
class GeneratedCode:
    files: dict[str, str]
    arena_bytes: int
    input_bytes: int
    output_bytes: int
    inputs: tuple[int, ...]        # tensor ids concatenated in the input
    output: int                    # tensor id returned
    blocks: tuple[BlockPlan, ...] = field(default=())
    prefix: str = DEFAULT_PREFIX   # of the file names and public symbols (`msf_` by default)

    @property
    def header(self) -> str:
        """`<prefix>generated.h`: the API (run function, sizes, shapes, quantisation)."""
        return f"{self.prefix}generated.h"

    @property
    def source(self) -> str:
        """`<prefix>generated.c`: the plan's data and the run function."""
        return f"{self.prefix}generated.c"

    @property
    def input_source(self) -> str:
        """`<prefix>input.c`: the sample input, `const int8_t <prefix>input[]`."""
        return f"{self.prefix}input.c"

    def write(self, directory: str | Path) -> list[Path]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in self.files.items():
            p = d / name
            p.write_text(text)
            paths.append(p)
        return paths


def generate_plan(model: Model, blocks: list[Block], x: np.ndarray | None = None,
                  prefix: str = DEFAULT_PREFIX) -> GeneratedCode:
    """C for a whole plan: network input in, network output out. `prefix` replaces `msf_` in
    the file names and public symbols (`<prefix>generated_run`) and `MSF_` in the header's
    macros (`<PREFIX>ARENA_BYTES`), so plans with different prefixes link into one program."""
    check_prefix(prefix)
    layout = plan_layout(model, blocks)
    inputs = ((model.input, layout.input_offset),)
    return _generate(model, layout.blocks, layout.arena_bytes, inputs,
                     (model.output, layout.output_offset), x, f"plan of {len(blocks)} blocks",
                     prefix)


def generate_block(model: Model, block: Block, x: list[np.ndarray] | np.ndarray | None = None
                   ) -> GeneratedCode:
    """C for one block: its input tensors (concatenated, in BlockStructure.inputs order) in,
    its output out; live skip tensors are claimed too, so the arena holds what the block's
    RAM figure counts."""
    plan = block_plan(model, block)
    inputs = tuple((b.tensor, b.offset) for b in plan.buffers if b.kind == "input")
    out = next(b for b in plan.buffers if b.kind == "output")
    if isinstance(x, list):
        x = np.concatenate([np.asarray(a).ravel() for a in x])
    return _generate(model, (plan,), plan.arena_bytes, inputs, (out.tensor, out.offset), x,
                     f"block {block.key}")


def _io_macros(model: Model, inputs: tuple[tuple[int, int], ...], output: int,
               macro: str) -> str:
    """Shape (H, W, C) and quantisation of the input (when it is one tensor) and the output:
    real value = SCALE * (q - ZERO_POINT). Scales are double literals that read back exactly."""
    ios = [("INPUT", inputs[0][0])] if len(inputs) == 1 else []
    lines = ["/* Network input and output: NHWC int8, real = SCALE * (q - ZERO_POINT). */"
             if len(inputs) == 1 and inputs[0][0] == model.input and output == model.output
             else "/* Block input and output: NHWC int8, real = SCALE * (q - ZERO_POINT). */"]
    for role, tid in ios + [("OUTPUT", output)]:
        t = model.tensor(tid)
        for axis, n in zip("HWC", t.shape):
            lines.append(f"#define {macro}{role}_{axis} {int(n)}u")
        scale = float(t.q.scale)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"tensor {t.name}: scale {scale!r} is not a positive number")
        zp = int(t.q.zero_point)
        lines.append(f"#define {macro}{role}_SCALE {scale!r}")
        lines.append(f"#define {macro}{role}_ZERO_POINT {zp if zp >= 0 else f'({zp})'}")
    return "\n".join(lines) + "\n"


def _run_doc(in_place: bool, macro: str) -> str:
    if in_place:
        return (f"Runs the plan on `input` ({macro}INPUT_BYTES, NHWC int8), which is read in "
                "place: not\n * copied, it must stay valid and unchanged until the call "
                "returns. The caller has\n * initialised the arena; returns the output "
                f"({macro}OUTPUT_BYTES) inside the arena.")
    return (f"Copies `input` ({macro}INPUT_BYTES, NHWC int8) into the arena, which the caller "
            "has\n * initialised, runs the plan and returns the output "
            f"({macro}OUTPUT_BYTES) inside the arena.")


def _generate(model: Model, plans: tuple[BlockPlan, ...], arena_bytes: int,
              inputs: tuple[tuple[int, int], ...], output: tuple[int, int],
              x: np.ndarray | None, what: str, prefix: str = DEFAULT_PREFIX) -> GeneratedCode:
    macro = prefix.upper()
    names = GeneratedCode({}, 0, 0, 0, (), 0, prefix=prefix)
    in_sizes = [model.tensor(t).size for t, _ in inputs]
    out_bytes = model.tensor(output[0]).size
    in_place = bool(model.input_in_place and model.input in [t for t, _ in inputs])
    header = template("msf_generated.h.in").substitute(
        header=names.header, model=check_c_text(model.name), what=check_c_text(what),
        PREFIX=macro, prefix=prefix, arena_bytes=f"{arena_bytes}u",
        input_bytes=f"{sum(in_sizes)}u", output_bytes=f"{out_bytes}u", n_blocks=f"{len(plans)}u",
        in_place=int(in_place), io_macros=_io_macros(model, inputs, output[0], macro),
        run_doc=_run_doc(in_place, macro))
    parts = [comment(f'{names.source} - generated by msfsim for model "{model.name}": {what}.'),
             f'#include "{names.header}"\n#include "msf_arena.h"\n#include "msf_executor.h"\n\n']
    n_state = max(len([b for b in p.buffers if b.tensor >= 0]) for p in plans)
    parts.append(f"static msf_tensor_state msf_state[{n_state}];\n\n")
    descs = []
    for k, plan in enumerate(plans):
        text, desc = _block(model, plan, k)
        parts.append(text)
        descs.append(desc)
    parts.append(c_struct_array("msf_block_desc", "msf_blocks", descs) + "\n")
    parts.append(template("msf_generated_run.c.in").substitute(
        prefix=prefix, PREFIX=macro,
        input_offsets=c_array("uint32_t", "msf_input_offset", [o for _, o in inputs]),
        input_sizes=c_array("uint32_t", "msf_input_size", in_sizes),
        input_in_place=c_array("uint8_t", "msf_input_in_place",
                               [int(t == model.input and model.input_in_place) for t, _ in inputs]),
        n_inputs=f"{len(inputs)}u", output_offset=f"{output[1]}u"))
    data = np.zeros(sum(in_sizes), np.int8) if x is None else np.asarray(x, np.int8).ravel()
    if data.size != sum(in_sizes):
        raise ValueError(f"input has {data.size} bytes, the generated code expects {sum(in_sizes)}")
    note = "all-zero input" if x is None else "input tensors, NHWC int8, concatenated"
    # Not declared in the header: the sample input belongs to the firmware that runs it.
    input_c = (comment(f"{names.input_source} - generated by msfsim: {note}.")
               + f'#include "{names.header}"\n\n'
               + c_array("int8_t", f"{prefix}input", data, static=False,
                         size=f"{macro}INPUT_BYTES"))
    files = {names.header: header, names.source: "".join(parts), names.input_source: input_c}
    return GeneratedCode(files, arena_bytes, sum(in_sizes), out_bytes,
                         tuple(t for t, _ in inputs), output[0], plans, prefix)


def _block(model: Model, plan: BlockPlan, k: int) -> tuple[str, dict]:
    blk = plan.block
    st = block_structure(model, blk.first, blk.last)
    tbufs = [b for b in plan.buffers if b.tensor >= 0]
    slot = {b.tensor: i for i, b in enumerate(tbufs)}
    out = [comment(f"block {k}: layers {blk.first}..{blk.last}, {blk.config.scheme}, "
                   f"tile {plan.tile[0]}x{plan.tile[1]}")]
    tensors = []
    for b in tbufs:
        h, w, c = model.tensor(b.tensor).shape
        in_place = b.tensor == model.input and model.input_in_place
        tensors.append({"h": h, "w": w, "c": c,
                        "kind": "MSF_BUF_EXTERN" if in_place else BUF_KIND[b.kind],
                        "offset": f"{b.offset}u", "bytes": f"{b.size}u",
                        "rows": b.rows, "cols": b.cols, "col0": b.col0})
    layers = []
    if blk.config.scheme == "layer" and pool_in_place(model, blk.first, blk.last):
        out.append(_layer_params(model, model.layers[blk.first]))
        out.append(_layer_params(model, model.layers[blk.last]))
        layers.append(_pool_fusion_desc(model, blk.first, slot))
        st = replace(st, spatial=(blk.first,), tail=())
    for li in () if layers else (*st.spatial, *st.tail):
        layer = model.layers[li]
        out.append(_layer_params(model, layer))
        ins = [slot[t] for t in layer.inputs] + [-1]
        layers.append({"op": ops.get(layer.op).c_op(layer), "in0": ins[0], "in1": ins[1],
                       "out": slot[layer.output],
                       "kernel_h": layer.kernel[0], "kernel_w": layer.kernel[1],
                       "stride_h": layer.stride[0], "stride_w": layer.stride[1],
                       "pad_top": layer.pad[0], "pad_left": layer.pad[1],
                       "params": f"&l{li}_params"})
    # hcache drops a cache column once the tensor's last reader has moved past it
    for slot_i, t in enumerate(tensors):
        readers = [j for j, d in enumerate(layers[:len(st.spatial)])
                   if slot_i in (d["in0"], d["in1"])]
        t["last_reader"] = max(readers, default=-1)
    out.append(c_struct_array("msf_tensor_desc", f"b{k}_tensors", tensors, one_line=True))
    out.append(c_struct_array("msf_layer_desc", f"b{k}_layers", layers, one_line=True) + "\n")
    scratch, acc = plan.get("scratch"), plan.get("acc")
    desc = {"scheme": SCHEME[blk.config.scheme], "tile_h": plan.tile[0], "tile_w": plan.tile[1],
            "tensors": f"b{k}_tensors", "n_tensors": len(tensors),
            "layers": f"b{k}_layers", "n_spatial": len(st.spatial), "n_tail": len(st.tail),
            "scratch_offset": f"{scratch.offset if scratch else 0}u",
            "scratch_bytes": f"{scratch.size if scratch else 0}u",
            "acc_offset": f"{acc.offset if acc else 0}u",
            "acc_bytes": f"{acc.size if acc else 0}u", "state": "msf_state"}
    return "".join(out), desc


def _pool_fusion_desc(model: Model, first: int, slot: dict[int, int]) -> dict:
    """One executor layer for layer `first` and the pool folded into its kernel."""
    prod, pool = model.layers[first], model.layers[first + 1]
    opdef = ops.get(prod.op)
    return {"op": opdef.pool_fusion().code, "in0": slot[prod.inputs[0]], "in1": -1,
            "out": slot[pool.output], **opdef.pool_fusion_desc(model, prod, pool)}


def _layer_params(model: Model, layer: Layer) -> str:
    """A comment, then the const arrays and the kernel's parameter struct `l<index>_params`
    that the layer's op declares."""
    h, w, c = model.out_shape(layer)
    ins = ", ".join("x".join(map(str, model.tensor(t).shape)) for t in layer.inputs)
    opdef = ops.get(layer.op)
    geo = (f" k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]}x{layer.stride[1]}"
           if opdef.windowed else "")
    head = comment(f"layer {layer.index} ({layer.name}): {layer.op.value}{geo}, {ins} -> "
                   f"{h}x{w}x{c}")
    return head + "".join(_decl(d) for d in opdef.c_params(model, layer))


def _decl(d: CDecl) -> str:
    """C text of one declaration of an op's parameters."""
    if isinstance(d, CArray):
        return c_array(d.ctype, d.name, d.values, align=d.align)
    if isinstance(d, CStruct):
        return c_struct(d.ctype, d.name, d.fields)
    if isinstance(d, CTable):
        rows = ",\n".join("    {" + ", ".join(r) + "}" for r in d.rows)
        return f"static const {ident(d.ctype)} {ident(d.name)}[{len(d.rows)}] = {{\n{rows}\n}};\n"
    if isinstance(d, CIf):
        return (f"#if {ident(d.cond)} /* {check_c_text(d.comment)} */\n"
                + "".join(_decl(x) for x in d.then) + "#else\n"
                + "".join(_decl(x) for x in d.otherwise) + "#endif\n")
    raise TypeError(f"not a C declaration: {d!r}")
