"""How a search's figures are named and compared: the memory conventions (DESIGN §3), F and the
instructions ratio, the convention a search compares plans in, and the deployment notes. One
wording, shared by the result tables, plan measurements and the faces."""
from __future__ import annotations

from typing import Mapping

INPUT_IN_PLACE_NOTE = ("network input read in place (flash or a sensor buffer), never copied into "
                       "the arena: act_io and measured RAM hold the network output only")


def deployment_lines(input_in_place: bool, wide_weights: tuple[int, ...]) -> list[str]:
    """Notes on how the model is deployed (msfsim.deploy), printed under the figures."""
    lines = [INPUT_IN_PLACE_NOTE] if input_in_place else []
    if wide_weights:
        lines.append(f"weights: {len(wide_weights)} layers stored pre-widened to int16 in flash "
                     f"for the DSP loops (--weights int8 to turn off); RAM and output unchanged")
    return lines


MEMORY_CONVENTION = (
    "memory: act = block buffers + block input + block output + live skip tensors, network "
    "input and output excluded (msf-CNN convention); act_io = the same with them counted; "
    "measured = emulator arena + stack high-water + static RAM")
MEASURED_ACT_CONVENTION = (
    "measured act = the act convention on measurements: the plan's worst block measured alone, "
    "arena + stack high-water minus the network input / output buffers it holds")
F_DEFINITION = "F = MACs / layer-by-layer MACs"
INSTRUCTIONS_RATIO = "x instr vs layer-by-layer"
INSTRUCTIONS_RATIO_DEFINITION = ("x instr = instructions / layer-by-layer instructions, each "
                                 "block measured alone")
RAM_CONVENTIONS = {"act": "act", "measured_act": "measured act"}


def ram_convention(cost: str) -> str:
    """The convention in which a search's plan, baselines and front are compared: the measured
    search's own RAM weight (`measured_act`), or the analytic `act`."""
    return "measured_act" if cost == "measured" else "act"


def point_basis(cost: str, measured: bool) -> str:
    """How a front point was obtained: `measured` (every block of its plan measured),
    `estimate` (a measured search's point with estimated blocks) or `analytic`."""
    if cost != "measured":
        return "analytic"
    return "measured" if measured else "estimate"


def describe_limits(cost: str, constraints: Mapping[str, float | None]) -> list[str]:
    """The search constraints, each named with the figure it bounds."""
    conv = RAM_CONVENTIONS[ram_convention(cost)]
    out = []
    if constraints.get("max_overhead") is not None:
        f = constraints["max_overhead"]
        out.append(f"instructions ratio <= {f:g} (--max-overhead; {INSTRUCTIONS_RATIO_DEFINITION})"
                   if cost == "measured" else f"F <= {f:g} (--max-overhead; {F_DEFINITION})")
    if constraints.get("max_ram") is not None:
        out.append(f"peak {conv} <= {int(constraints['max_ram']):,} B (--max-ram)")
    if constraints.get("sram") is not None:
        out.append(f"board SRAM {int(constraints['sram']):,} B (caps peak {conv})")
    return out
