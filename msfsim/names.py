"""The one sanitiser for strings that come from a model file.

A model file is untrusted input. Its node, tensor, initializer and graph names, its doc strings
and metadata, and its file name may hold anything: C comment terminators, newlines, `$(...)`,
NUL, `../`, or ten kilobytes. Nothing of that may reach generated C, a Makefile, a linker
script, a file name, a shell or a baseline file. So every such string either is dropped or
passes `safe_name`, which keeps `[A-Za-z0-9_.-]` and caps the length. The IR (`msfsim.ir`)
runs every name it stores through it, so stages downstream of the importers never see a raw
model string; the C writer (`msfsim.codegen.cwriter`) checks what it writes with `check_c_text`.

Error messages may quote a raw name so the user can find the node: `shown` makes that quote
one line and short.
"""
from __future__ import annotations

import hashlib
import re

MAX_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# What generated C comments may contain besides safe names.
_C_TEXT = re.compile(r"[ -~]*")


class SafeName(str):
    """A string that passed `safe_name`: 1 to MAX_NAME characters of [A-Za-z0-9_.-], not
    starting with '.' or '-' (no hidden files, no options, no '..')."""

    __slots__ = ()


def safe_name(raw: object, fallback: str = "unnamed") -> SafeName:
    """`raw` reduced to a safe identifier. Unsafe characters become '_'; a name longer than
    MAX_NAME keeps its head and gets a hash of the whole, so distinct long names stay distinct."""
    if isinstance(raw, SafeName):
        return raw
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    s = _UNSAFE.sub("_", text).lstrip(".-")
    if len(s) > MAX_NAME or (s != text and len(text) > MAX_NAME):
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        s = f"{s[:MAX_NAME - 11]}_{digest}"
    if not s:
        s = fallback
    assert _SAFE.fullmatch(s) and len(s) <= MAX_NAME, s
    return SafeName(s)


def is_safe(text: str) -> bool:
    return isinstance(text, str) and len(text) <= MAX_NAME and bool(_SAFE.fullmatch(text))


def check_c_text(text: str) -> str:
    """`text` if it may stand in a C comment msfsim writes: printable ASCII, one line, no
    comment delimiters, backslashes or trigraphs. Anything else is a bug upstream (a raw model
    string got through), so it raises."""
    bad = ("*/", "/*", "\\", "??")
    if not _C_TEXT.fullmatch(text) or any(b in text for b in bad):
        raise ValueError(f"refusing to write unsanitised text into generated C: {shown(text)}")
    return text


def shown(raw: object, limit: int = 60) -> str:
    """A raw name quoted for a one-line error message: escapes control characters (repr) and
    cuts it to `limit` characters."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 4] + "...'"
