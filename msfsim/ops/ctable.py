"""kernels_c/msf_op_table.h from the op registry: the executor's op codes and dispatch.

Every `CKernel` of every op module becomes an `MSF_OP_*` code and the fragments the executor
(kernels_c/msf_executor.c) expands: the kernel call of each spatial op, the host MAC count, the
tail ops' init / feed / finish, which ops read the rectangle they write, and the includes of
the ops' own headers (`OpDef.c_header`). The header is checked in (the firmware and emitted
projects compile kernels_c as it is) and must equal what `render()` gives; `python -m msfsim.ops.ctable` rewrites it, `--check` fails when it is stale.
"""
from __future__ import annotations

import argparse
import sys

from msfsim import KERNELS_DIR, ops
from msfsim.ops.base import CKernel

HEADER = KERNELS_DIR / "msf_op_table.h"
INDENT = "    "


def _macro(signature: str, body: list[str]) -> list[str]:
    """`#define signature` and the body lines, each line but the last continued."""
    lines = [f"#define {signature}", *body]
    return [line + " \\" for line in lines[:-1]] + [lines[-1]]


def _block(code: str, indent: str) -> list[str]:
    return [indent + line if line else line for line in code.splitlines()]


def _chain(tails: list[CKernel], part: str) -> list[str]:
    """`if (l->op == A) { ... } else if ... else { last }`: the tail ops in value order."""
    if len(tails) == 1:
        return ["{", *_block(getattr(tails[0], part), INDENT), "}"]
    out: list[str] = []
    for k, t in enumerate(tails):
        if k == 0:
            out.append(f"if (l->op == {t.code}) {{")
        elif k < len(tails) - 1:
            out.append(f"}} else if (l->op == {t.code}) {{")
        else:
            out.append("} else {")
        out += _block(getattr(t, part), INDENT)
    return out + ["}"]


def render() -> str:
    kernels = ops.c_kernels()
    owner = {k.code: opdef.op.value for opdef in ops.REGISTRY.values() for k in opdef.c_kernels}
    spatial = [k for k in kernels if k.spatial]
    tails = [k for k in kernels if k.tail_init]
    same = [k.code for opdef in ops.REGISTRY.values() if opdef.elementwise
            for k in opdef.c_kernels]
    out = ["/* msf_op_table.h - the executor's op codes and dispatch (msf_executor.c).",
           " * Generated from msfsim.ops by `python -m msfsim.ops.ctable`: do not edit; each",
           " * op module's CKernel entries say what its codes run (tests/test_ops.py checks that",
           " * this file is current). */",
           "#ifndef MSF_OP_TABLE_H", "#define MSF_OP_TABLE_H", ""]
    headers = sorted({o.c_header for o in ops.REGISTRY.values() if o.c_header})
    if headers:
        out += ["/* The parameter structs and kernels of the ops with their own header. */",
                *(f'#include "{h}"' for h in headers), ""]
    out += ["/* msf_layer_desc.op */", "enum {"]
    width = max(len(f"{k.code} = {k.value},") for k in kernels) + 1
    for i, k in enumerate(kernels):
        item = f"{k.code} = {k.value}{',' if i < len(kernels) - 1 else ''}"
        out.append(f"{INDENT}{item.ljust(width)}/* {owner[k.code]}: {k.doc} */")
    out += ["};", "", f"#define MSF_OP_COUNT {len(kernels)}", "",
            "/* Ops that read, of every input, the rectangle they write (no window): one bit",
            " * test, so that the executor's interval walk stays small (its frame is stack). */",
            "#define MSF_OP_ELEMENTWISE(op) ((1u << (op)) & ("
            + (" | ".join(f"(1u << {c})" for c in same) or "0u") + "))", "",
            "/* msf_run_spatial: the kernel call of each spatial op, output rectangle",
            " * [oy, oy + oh) x [ox, ox + ow) into window `out` from windows `in` (and `in1`). */"]
    body: list[str] = []
    for k in spatial:
        body += [f"case {k.code}:", *_block(k.spatial, INDENT), f"{INDENT}break;"]
    out += _macro("MSF_OP_SPATIAL_CASES(l, in, in1, out, oy, ox, oh, ow, scratch)",
                  [INDENT + line for line in body]) + [""]
    out += ["/* Host builds counting MACs (MSF_EXEC_COUNT_MACS): the MACs of one kernel call. */"]
    body = []
    counted = [k for k in kernels if k.macs]
    for i, k in enumerate(counted):  # codes counting alike share their statement
        body.append(f"case {k.code}:")
        if i + 1 < len(counted) and counted[i + 1].macs == k.macs:
            continue
        first, *rest = k.macs.splitlines()
        body += [f"{INDENT}msf_exec_macs += {first}", *_block("\n".join(rest), 2 * INDENT)]
        body[-1] += ";"
        body.append(f"{INDENT}break;")
    out += _macro("MSF_OP_MACS_CASES(l, cin, cout, oy, ox, oh, ow)",
                  [INDENT + line for line in body]) + [""]
    out += ["/* Tail ops: start the accumulators, feed them the input rectangle",
            " * [y0, y0 + h) x [x0, x0 + w) of window `in`, write the (1, 1, C) output. */"]
    for part, sig in (("tail_init", "MSF_OP_TAIL_INIT(l, acc)"),
                      ("tail_feed", "MSF_OP_TAIL_FEED(l, in, y0, x0, h, w, acc)"),
                      ("tail_finish", "MSF_OP_TAIL_FINISH(l, acc, out)")):
        out += _macro(sig, [INDENT + line for line in _chain(tails, part)]) + [""]
    out += ["#endif /* MSF_OP_TABLE_H */", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m msfsim.ops.ctable",
                                 description="Write kernels_c/msf_op_table.h from msfsim.ops.")
    ap.add_argument("--check", action="store_true", help="fail if the header is not current")
    args = ap.parse_args(argv)
    text = render()
    current = HEADER.read_text() if HEADER.exists() else ""
    if args.check:
        if current != text:
            print(f"{HEADER} is stale: run python -m msfsim.ops.ctable", file=sys.stderr)
            return 1
        return 0
    if current != text:
        HEADER.write_text(text)
        print(f"wrote {HEADER}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
