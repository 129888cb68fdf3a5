"""A tiny writer for readable C: arrays, designated initialisers, comments.

It is the only way msfsim writes generated C, and it writes nothing unchecked: identifiers must
be C identifiers and comment text must pass `msfsim.names.check_c_text`, so a raw string from a
model file (which the IR never holds: `msfsim.names.safe_name`) cannot reach the compiler.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

import numpy as np

from msfsim.names import check_c_text

PER_LINE = 16
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def ident(name: str) -> str:
    """`name` if it is a C identifier msfsim may declare; anything else is a bug upstream."""
    if not _IDENT.fullmatch(name):
        raise ValueError(f"refusing to declare {name[:40]!r} in generated C: not a C identifier")
    return name


def c_array(ctype: str, name: str, values: np.ndarray | Iterable[int], static: bool = True,
            size: str | None = None, align: int | None = None) -> str:
    """`static const ctype name[N] = {...};` with PER_LINE values per line; `align` bytes
    (GCC/clang attribute) where word loads need more than the type's alignment."""
    vals = np.asarray(list(values) if not isinstance(values, np.ndarray) else values).ravel()
    items = [str(int(v)) for v in vals.tolist()]
    if ctype == "int32_t":  # INT32_MIN is not a valid literal on its own
        items = ["(-2147483647 - 1)" if v == "-2147483648" else v for v in items]
    lines = [", ".join(items[i:i + PER_LINE]) for i in range(0, len(items), PER_LINE)]
    body = ",\n    ".join(lines) if lines else "0"
    prefix = "static const" if static else "const"
    attr = f" __attribute__((aligned({align})))" if align else ""
    return f"{prefix} {ident(ctype)} {ident(name)}[{size or len(items) or 1}]{attr} = {{\n    {body}\n}};\n"


def c_init(fields: Mapping[str, object], indent: str = "    ") -> str:
    """A designated initialiser `{ .a = 1, .b = x }` over several lines."""
    inner = ",\n".join(f"{indent}    .{k} = {v}" for k, v in fields.items())
    return "{\n" + inner + "\n" + indent + "}"


def c_struct(ctype: str, name: str, fields: Mapping[str, object]) -> str:
    return f"static const {ident(ctype)} {ident(name)} = {c_init(fields, '')};\n"


def c_init_line(fields: Mapping[str, object]) -> str:
    """A designated initialiser on one line (descriptor tables)."""
    return "{ " + ", ".join(f".{k} = {v}" for k, v in fields.items()) + " }"


def c_struct_array(ctype: str, name: str, rows: list[Mapping[str, object]],
                   const: bool = True, one_line: bool = False) -> str:
    body = ",\n".join("    " + (c_init_line(r) if one_line else c_init(r)) for r in rows)
    qual = "static const" if const else "static"
    return f"{qual} {ident(ctype)} {ident(name)}[{len(rows)}] = {{\n{body}\n}};\n"


def comment(text: str) -> str:
    return f"/* {check_c_text(text)} */\n"
