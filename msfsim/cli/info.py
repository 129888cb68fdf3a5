"""`msfsim info`, `zoo`, `platforms` and `doctor`: what msfsim knows, nothing measured."""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, Sequence

from .. import MsfsimError, pipeline
from ..fileio import check_output_file
from .common import EXIT_OK, emit, load_model

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
    # the -o suffix picks the format: .tflite an int8 TFLite model, anything else ONNX
    tflite = str(args.output).lower().endswith(".tflite")
    if tflite and args.qdq:
        raise MsfsimError("--qdq applies to ONNX exports; a .tflite export is always int8 "
                          "(full-integer, as TFLiteConverter writes it)")
    check_output_file(args.output, "--output")
    pipeline.zoo_export(args.name, args.output, qdq=args.qdq)
    kind = "int8 TFLite" if tflite else "QDQ int8 ONNX" if args.qdq else "float ONNX"
    print(f"wrote {args.output} ({kind})", file=sys.stderr)
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



def _quant(model, tid: int) -> dict[str, Any]:
    t = model.tensor(tid)
    return {"name": t.name, "dtype": "int8", "layout": "NHWC", "shape": [1, *t.shape],
            "scale": float(t.q.scale), "zero_point": int(t.q.zero_point)}


def model_info(model) -> dict[str, Any]:
    """What `msfsim info` prints: layers, totals and the network input / output quantisation."""
    from ..ir import Op
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
    emit(args, info, format_info(info))
    return EXIT_OK


