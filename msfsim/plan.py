"""Plan files: the `-o plan.json` of `msfsim search`, read back by `measure` and `run`.

A plan file is the search result JSON (DESIGN §7); only `model`, `layer_count` and `blocks`
(`layers`, `tile`, `scheme`) are needed to execute it. Everything is checked against the model so a
plan made for another model is refused with a clear message.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import MsfsimError
from .fusion.block import SCHEMES, Block, BlockConfig
from .ir import Model


def vanilla(model: Model) -> list[Block]:
    """Layer-by-layer execution."""
    return [Block(i, i) for i in range(len(model.layers))]


def check(model: Model, blocks: list[Block], source: str = "plan") -> list[Block]:
    n = len(model.layers)
    nxt = 0
    for b in blocks:
        if b.first != nxt or b.last < b.first:
            raise MsfsimError(f"{source}: blocks must cover layers 0..{n - 1} in order; "
                              f"block {b.first}-{b.last} follows layer {nxt - 1}")
        nxt = b.last + 1
    if nxt != n:
        raise MsfsimError(f"{source}: blocks cover layers 0..{nxt - 1}, the model has {n} layers")
    return blocks


def from_json(model: Model, data: dict, source: str = "plan") -> list[Block]:
    try:
        raw = data["blocks"]
        blocks = []
        for b in raw:
            first, last = (int(v) for v in b["layers"])
            tile = tuple(int(v) for v in b.get("tile", (1, 1)))
            scheme = b.get("scheme", "layer")
            if scheme not in SCHEMES or len(tile) != 2 or min(tile) < 1:
                raise MsfsimError(f"{source}: block {first}-{last} has an invalid scheme {scheme!r} "
                                  f"or tile {list(tile)}")
            blocks.append(Block(first, last, BlockConfig(tile, scheme)))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise MsfsimError(f"{source}: not a msfsim plan ({type(exc).__name__}: {exc})") from None
    made_for = data.get("model_fingerprint")
    if made_for is not None and made_for != model.fingerprint():
        raise MsfsimError(f"{source}: made for another model (fingerprint {str(made_for)[:16]!r}; "
                          f"{model.name} has {model.fingerprint()}): search this model again")
    count = data.get("layer_count")
    if count is not None and count != len(model.layers):
        raise MsfsimError(f"{source}: made for a model with {count} layers; "
                          f"{model.name} has {len(model.layers)}")
    return check(model, blocks, source)


def load(model: Model, path: str | Path) -> list[Block]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise MsfsimError(f"{p}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MsfsimError(f"{p}: not a JSON plan ({exc})") from None
    if not isinstance(data, dict):
        raise MsfsimError(f"{p}: not a msfsim plan (expected a JSON object)")
    return from_json(model, data, str(p))


def to_json(model: Model, blocks: list[Block]) -> dict:
    return {"model": model.name, "model_fingerprint": model.fingerprint(),
            "layer_count": len(model.layers),
            "blocks": [{"layers": [b.first, b.last], "tile": list(b.config.tile),
                        "scheme": b.config.scheme} for b in blocks]}
