"""The msf-CNN proxies (DESIGN §2): linear conv chains with the published layer shapes of three
networks, to compare msfsim's RAM and overhead figures with the published ones."""
from __future__ import annotations

from typing import Callable

from .graph import OUTPUT, Activation, GraphBuilder

# Published proxies (DESIGN §2). Entries: ("conv", cout, k, s) | ("dw", k, s) |
# ("mb", cin, cout, e, s, k) with MB = conv1x1 to cin*e -> dw kxk stride s -> conv1x1 to cout.
def _mb(cin: int, cout: int, e: int, s: int, k: int, n: int = 1) -> list[tuple]:
    return [("mb", cin, cout, e, s, k)] * n


PROXY_SPECS: dict[str, tuple[int, list[tuple]]] = {
    "mbv2-w0.35-r144": (144, [
        ("conv", 11, 3, 2), *_mb(11, 5, 1, 1, 3), *_mb(5, 8, 6, 2, 3), *_mb(8, 8, 6, 1, 3),
        *_mb(8, 11, 6, 2, 3), *_mb(11, 11, 6, 1, 3, 2), *_mb(11, 22, 6, 2, 3),
        *_mb(22, 22, 6, 1, 3, 3), *_mb(22, 33, 6, 1, 3), *_mb(33, 33, 6, 1, 3, 2),
        *_mb(33, 56, 6, 2, 3), *_mb(56, 56, 6, 1, 3, 2), *_mb(56, 112, 6, 1, 3),
        ("conv", 448, 1, 1)]),
    # MB(40,48) expands by 6, as in msf-CNN's own model definition: with e=1 the published RAM
    # figures still match but the published overhead (F = 1.96 at 12,000 B) does not.
    "mcunetv2-vww5-r80": (80, [
        ("conv", 16, 3, 2), ("dw", 3, 1), ("conv", 8, 1, 1), *_mb(8, 16, 6, 2, 3),
        *_mb(16, 16, 3, 1, 3, 2), *_mb(16, 24, 3, 2, 7), *_mb(24, 24, 6, 1, 3),
        *_mb(24, 24, 5, 1, 5), *_mb(24, 40, 6, 2, 7), *_mb(40, 40, 6, 1, 7), *_mb(40, 48, 6, 1, 3),
        *_mb(48, 48, 4, 1, 3), *_mb(48, 96, 5, 2, 5), *_mb(96, 96, 5, 1, 3), *_mb(96, 96, 4, 1, 3),
        *_mb(96, 160, 3, 1, 7)]),
    "mcunet-320kb-r176": (176, [
        ("conv", 16, 3, 2), ("dw", 3, 1), ("conv", 8, 1, 1), *_mb(8, 16, 3, 2, 7),
        *_mb(16, 16, 5, 1, 3), *_mb(16, 16, 5, 1, 7), *_mb(16, 16, 4, 1, 5), *_mb(16, 24, 5, 2, 5),
        *_mb(24, 24, 5, 1, 5, 2), *_mb(24, 40, 5, 2, 3), *_mb(40, 40, 6, 1, 7),
        *_mb(40, 40, 4, 1, 5), *_mb(40, 48, 5, 1, 5), *_mb(48, 48, 5, 1, 7), *_mb(48, 48, 5, 1, 3),
        *_mb(48, 96, 6, 2, 3), *_mb(96, 96, 5, 1, 7), *_mb(96, 96, 4, 1, 3),
        *_mb(96, 160, 5, 1, 7)]),
}


def proxy_chain(g: GraphBuilder, res: int, spec: list[tuple]) -> Activation:
    """A linear chain (bias, no activation, no skip) with the published shapes."""
    steps: list[tuple[str, int, int, int, int]] = []  # (name, cout, k, stride, groups)
    for i, item in enumerate(spec):
        kind = item[0]
        if kind == "conv":
            steps.append((f"layer{i}", item[1], item[2], item[3], 1))
        elif kind == "dw":
            steps.append((f"layer{i}.dw", -1, item[1], item[2], 0))
        else:
            _, cin, cout, e, s, k = item
            steps += [(f"mb{i}.expand", cin * e, 1, 1, 1), (f"mb{i}.dw", -1, k, s, 0),
                      (f"mb{i}.project", cout, 1, 1, 1)]
    x = g.image(3, res, res)
    for n, (name, cout, k, s, groups) in enumerate(steps):
        if groups == 0:  # depthwise: as many outputs as inputs
            cout, groups = x.c, x.c
        x = g.conv(x, name, cout, k, stride=s, groups=groups,
                   out=OUTPUT if n == len(steps) - 1 else None)
    return x


def proxy_builder(name: str) -> Callable[[GraphBuilder], Activation]:
    res, spec = PROXY_SPECS[name]
    return lambda g: proxy_chain(g, res, spec)
