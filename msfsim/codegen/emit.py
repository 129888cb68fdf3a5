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

from msfsim import MsfsimError
from msfsim.codegen.cwriter import c_array, c_struct, c_struct_array, comment
from msfsim.fusion.block import Block
from msfsim.fusion.geometry import block_structure, pool_in_place
from msfsim.fusion.memplan import BlockPlan, block_plan, plan_layout
from msfsim.ir import Layer, Model, Op
from msfsim.names import check_c_text, shown

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
    out.append(c_struct_array("msf_tensor_desc", f"b{k}_tensors", tensors, one_line=True))
    layers = []
    if blk.config.scheme == "layer" and pool_in_place(model, blk.first, blk.last):
        out.append(_layer_params(model, model.layers[blk.first]))
        out.append(_layer_params(model, model.layers[blk.last]))
        layers.append(_conv_maxpool_desc(model, blk.first, slot))
        st = replace(st, spatial=(blk.first,), tail=())
    for li in () if layers else (*st.spatial, *st.tail):
        layer = model.layers[li]
        out.append(_layer_params(model, layer))
        ins = [slot[t] for t in layer.inputs] + [-1]
        layers.append({"op": _op(layer), "in0": ins[0], "in1": ins[1] if layer.op == Op.ADD else -1,
                       "out": slot[layer.output],
                       "kernel_h": layer.kernel[0], "kernel_w": layer.kernel[1],
                       "stride_h": layer.stride[0], "stride_w": layer.stride[1],
                       "pad_top": layer.pad[0], "pad_left": layer.pad[1],
                       "params": f"&l{li}_params"})
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


def _conv_maxpool_desc(model: Model, first: int, slot: dict[int, int]) -> dict:
    """One executor layer for conv `first` and the max pool after it; its region geometry is
    the composition of the two."""
    conv, pool = model.layers[first], model.layers[first + 1]
    ch, cw, _ = model.out_shape(conv)
    geo = {}
    for axis, (k, s, p) in enumerate((("kernel_h", "stride_h", "pad_top"),
                                      ("kernel_w", "stride_w", "pad_left"))):
        geo[k] = (pool.kernel[axis] - 1) * conv.stride[axis] + conv.kernel[axis]
        geo[s] = pool.stride[axis] * conv.stride[axis]
        geo[p] = pool.pad[axis] * conv.stride[axis] + conv.pad[axis]
    return {"op": "MSF_OP_CONV_MAXPOOL", "in0": slot[conv.inputs[0]], "in1": -1,
            "out": slot[pool.output], **geo, "params": f"&l{conv.index}_params",
            "pool": f"&l{pool.index}_params", "conv_out_h": ch, "conv_out_w": cw}


def _op(layer: Layer) -> str:
    if layer.op == Op.CONV:
        return "MSF_OP_CONV_1X1" if layer.kernel == (1, 1) else "MSF_OP_CONV"
    return {Op.DWCONV: "MSF_OP_DWCONV", Op.ADD: "MSF_OP_ADD", Op.MAXPOOL: "MSF_OP_MAXPOOL",
            Op.AVGPOOL: "MSF_OP_AVGPOOL", Op.GAP: "MSF_OP_GAP", Op.DENSE: "MSF_OP_DENSE"}[layer.op]


def _layer_params(model: Model, layer: Layer) -> str:
    """const arrays and the kernel's parameter struct `l<index>_params`."""
    i = layer.index
    zp_in = model.tensor(layer.inputs[0]).q.zero_point
    zp_out = model.tensor(layer.output).q.zero_point
    h, w, c = model.out_shape(layer)
    ins = ", ".join("x".join(map(str, model.tensor(t).shape)) for t in layer.inputs)
    geo = (f" k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]}x{layer.stride[1]}"
           if layer.op in (Op.CONV, Op.DWCONV, Op.MAXPOOL, Op.AVGPOOL) else "")
    text = [comment(f"layer {i} ({layer.name}): {layer.op.value}{geo}, {ins} -> {h}x{w}x{c}")]
    common = {"input_offset": -zp_in, "output_offset": zp_out,
              "act_min": layer.act_min, "act_max": layer.act_max}
    if layer.op in (Op.CONV, Op.DWCONV, Op.DENSE):
        bias = layer.bias if layer.bias is not None else np.zeros(c, np.int32)
        text.append(c_array("int32_t", f"l{i}_bias", bias))
        text.append(c_array("int32_t", f"l{i}_multiplier", layer.multiplier))
        text.append(c_array("int32_t", f"l{i}_shift", layer.shift))
        arrays = {"weights": f"l{i}_weights", "bias": f"l{i}_bias",
                  "multiplier": f"l{i}_multiplier", "shift": f"l{i}_shift"}
        weights = c_array("int8_t", f"l{i}_weights", layer.weight)
    if layer.op in (Op.CONV, Op.DWCONV):
        ch = channel_params(model, layer)
        i32 = lambda v: "(-2147483647 - 1)" if v == -(1 << 31) else str(int(v))  # noqa: E731
        rows = ",\n".join(f"    {{{i32(k)}, {int(m)}, {int(r)}, {int(sh)}}}"
                           for k, m, r, sh in zip(ch.kernel_sum, layer.multiplier, ch.rounding,
                                                  ch.rshift))
        text.append(f"static const msf_channel_params l{i}_channels[{c}] = {{\n{rows}\n}};\n")
        fields = {"kernel_h": layer.kernel[0], "kernel_w": layer.kernel[1],
                  "stride_h": layer.stride[0], "stride_w": layer.stride[1],
                  "pad_top": layer.pad[0], "pad_left": layer.pad[1], **common, **arrays,
                  "channels": f"l{i}_channels", "fast_requant": int(ch.fast)}
        if i in model.wide_weights:
            if not _wide_ok(layer, ch.fast):
                raise ValueError(f"layer {i} ({layer.name}): its weights cannot be pre-widened")
            # DSP builds of a conv keep only the pre-widened copy (flash); a depthwise layer's
            # borders still read the int8 weights; builds without DSP use those alone
            conv = layer.op == Op.CONV
            wide = c_array("int16_t", f"l{i}_weights_s16", wide_weights(layer), align=4)
            text += ["#if MSF_DSP_ASM /* weights pre-widened for the DSP loops */\n", wide,
                     "" if conv else weights,
                     c_struct("msf_conv_params", f"l{i}_params",
                              {**fields, "weights": "NULL" if conv else f"l{i}_weights",
                               "weights_s16": f"l{i}_weights_s16"}),
                     "#else\n", weights, c_struct("msf_conv_params", f"l{i}_params", fields),
                     "#endif\n"]
        else:
            text += [weights, c_struct("msf_conv_params", f"l{i}_params", fields)]
    elif layer.op == Op.DENSE:
        text.append(weights)
        fields = {"in_size": model.tensor(layer.inputs[0]).size, "out_size": c, **common, **arrays}
        text.append(c_struct("msf_fc_params", f"l{i}_params", fields))
    elif layer.op in (Op.MAXPOOL, Op.AVGPOOL):
        mult, shift = (0, 0) if layer.multiplier is None else (layer.multiplier[0], layer.shift[0])
        fields = {"kernel_h": layer.kernel[0], "kernel_w": layer.kernel[1],
                  "stride_h": layer.stride[0], "stride_w": layer.stride[1],
                  "pad_top": layer.pad[0], "pad_left": layer.pad[1], **common,
                  "multiplier": int(mult), "shift": int(shift)}
        text.append(c_struct("msf_pool_params", f"l{i}_params", fields))
    elif layer.op == Op.ADD:
        m, s = layer.multiplier, layer.shift
        zp_b = model.tensor(layer.inputs[1]).q.zero_point
        fields = {"input1_offset": -zp_in, "input2_offset": -zp_b,
                  "left_shift": "MSF_ADD_LEFT_SHIFT",
                  "input1_mult": int(m[0]), "input1_shift": int(s[0]),
                  "input2_mult": int(m[1]), "input2_shift": int(s[1]),
                  "output_mult": int(m[2]), "output_shift": int(s[2]),
                  "output_offset": zp_out, "act_min": layer.act_min, "act_max": layer.act_max}
        text.append(c_struct("msf_add_params", f"l{i}_params", fields))
    elif layer.op == Op.GAP:
        fields = {"channels": c, **common,
                  "multiplier": int(layer.multiplier[0]), "shift": int(layer.shift[0])}
        text.append(c_struct("msf_gap_params", f"l{i}_params", fields))
    return "".join(text)


@dataclass(frozen=True)
class ChannelParams:
    """msf_channel_params of a conv layer: kernel sums fold the input offset into the bias; the
    constants of msf_requantize_fast are valid (`fast`) when every channel is in its range."""
    kernel_sum: np.ndarray
    rounding: np.ndarray
    rshift: np.ndarray
    fast: bool


def channel_params(model: Model, layer: Layer) -> ChannelParams:
    zp_in = model.tensor(layer.inputs[0]).q.zero_point
    zp_out = model.tensor(layer.output).q.zero_point
    c = model.out_shape(layer)[2]
    bias = layer.bias if layer.bias is not None else np.zeros(c, np.int32)
    axes = (1, 2, 3) if layer.op == Op.CONV else (0, 1)
    wt = layer.weight.astype(np.int64)
    ksum = bias.astype(np.int64) - zp_in * wt.sum(axis=axes)
    ksum = (ksum + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 arithmetic wraps in C too
    mult = layer.multiplier.astype(np.int64)
    e = -layer.shift.astype(np.int64)
    acc_bound = np.abs(ksum) + 128 * np.abs(wt).sum(axis=axes)
    fast = bool(np.all(mult >= 0) and np.all((e >= 1) & (e <= 22))
                and np.all(acc_bound < (1 << 30)) and -128 <= zp_out <= 127)
    rnd = ((1 << (e - 1)) + zp_out * (1 << e)) if fast else np.zeros_like(e)
    return ChannelParams(ksum, rnd, e if fast else np.zeros_like(e), fast)


def wide_eligible(model: Model, layer: Layer) -> bool:
    """Whether a layer's weights can be pre-widened (msf_conv_params.weights_s16): a conv whose
    every output takes the DSP loops (msf_conv_fast_output, k >= 4, Cout >= 4), or a 3x3
    depthwise conv with fast outputs and C >= 4."""
    if layer.op not in (Op.CONV, Op.DWCONV) or layer.weight is None:
        return False
    return _wide_ok(layer, channel_params(model, layer).fast)


def _wide_ok(layer: Layer, fast: bool) -> bool:
    """wide_eligible for a conv / depthwise layer whose ChannelParams.fast is `fast`."""
    if not fast or layer.act_min != -128 or layer.act_max != 127:
        return False
    if layer.op == Op.DWCONV:
        return layer.kernel == (3, 3) and layer.weight.shape[-1] >= 4
    return layer.weight[0].size >= 4 and layer.weight.shape[0] >= 4


def wide_weights(layer: Layer) -> np.ndarray:
    """A layer's pre-widened int16 weights in the kernels' order (msf_conv_params.weights_s16).
    Conv (Cout, ...) -> (Cout, 4 * ceil(k / 4)) rows, k = the rest of the shape: each group of
    four as w0 w2 w1 w3 (SXTB16's lane order), the k % 4 tail in order, zeros. Depthwise 3x3
    (3, 3, C) -> per group of four channels c..c+3 (c = 0, 4, ..., then C - 4 if C % 4) the
    nine taps as c c+2 c+1 c+3."""
    if layer.op == Op.DWCONV:
        w = layer.weight.reshape(9, -1).astype(np.int16)
        ch = w.shape[1]
        starts = list(range(0, ch - 3, 4)) + ([ch - 4] if ch % 4 else [])
        return np.stack([w[:, [c, c + 2, c + 1, c + 3]] for c in starts])
    w = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.int16)
    cout, k = w.shape
    body = k // 4 * 4
    out = np.zeros((cout, (k + 3) // 4 * 4), np.int16)
    out[:, :body] = w[:, :body].reshape(cout, -1, 4)[:, :, [0, 2, 1, 3]].reshape(cout, body)
    out[:, body:k] = w[:, body:]
    return out
