"""Keyword arguments as Robot passes them (strings, `${None}`): sizes, optional numbers, flags."""
from __future__ import annotations

from typing import Any


def parse_size(text: str | int) -> int:
    """'65536', '64K', '0.5M' (K = 1024) -> bytes, as on the command line."""
    if isinstance(text, int):
        return text
    t = str(text).strip().upper().removesuffix("B")
    mult = 1
    if t and t[-1] in "KMG":
        mult, t = 1024 ** ("KMG".index(t[-1]) + 1), t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise ValueError(f"invalid size {text!r} (bytes, or e.g. 64K, 0.5M)") from None
    return int(value)


def opt_float(v: Any) -> float | None:
    return None if v in (None, "", "None", "${None}") else float(v)


def opt_size(v: Any) -> int | None:
    return None if v in (None, "", "None", "${None}") else parse_size(v)


def truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")
