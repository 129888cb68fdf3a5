"""Figures published by msf-CNN: literature values, not measured here.

Source: Zhaolan Huang and Emmanuel Baccelli, "msf-CNN: Patch-based Multi-Stage Fusion with
Convolutional Neural Networks for TinyML", arXiv:2505.11483 (2025; NeurIPS 2025). Every figure
below is as that paper reports it, for its three models; `msfsim reproduce` shows them labelled
"published" beside its own (JSON `published.<model>.source`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SOURCE = ("Z. Huang, E. Baccelli: msf-CNN: Patch-based Multi-Stage Fusion with Convolutional "
          "Neural Networks for TinyML, arXiv:2505.11483 (2025)")
LATENCY_BOARD = "nucleo-f767zi"     # the STM32F767 (216 MHz) msf-CNN's latencies were taken on
KB = 1000  # the published MCUNetV2 / StreamNet figures are given in kB, read as 1,000 B


@dataclass(frozen=True)
class Published:
    """Figures published by msf-CNN for one model: literature values, not measured here."""
    vanilla_act: int           # layer-by-layer peak RAM, analytic (B)
    msfcnn_min_act: int        # msf-CNN's analytic minimum peak RAM at F = inf (B)
    msfcnn_overhead: float     # its compute overhead F at that minimum
    workspace: int             # the compiled workspace of that plan (B)
    mcunetv2_kb: int           # MCUNetV2 peak RAM (kB)
    streamnet_kb: int          # StreamNet peak RAM (kB)
    stm32f767_ms: float        # latency of the minimum-RAM plan on an STM32F767 at 216 MHz


PUBLISHED = {
    "mbv2-w0.35-r144": Published(194_400, 7_887, 1.68, 8_560, 63, 66, 1996.8),
    "mcunetv2-vww5-r80": Published(96_000, 12_000, 1.96, 15_368, 45, 44, 1723.0),
    "mcunet-320kb-r176": Published(309_760, 42_643, 2.69, 51_164, 215, 208, 19329.9),
}
# msf-CNN's minimum-RAM plans vs its own layer-by-layer build, range over the three models
PUBLISHED_SLOWDOWN = (2.5, 4.4)
PUBLISHED_NOTE = ("published: figures reported by msf-CNN (literature values, not measured "
                  "here); kB read as 1,000 B")


def published_json() -> dict[str, dict[str, Any]]:
    """The published figures as the JSON document carries them, each labelled as published."""
    return {k: {**asdict(v), "source": "published"} for k, v in PUBLISHED.items()}
