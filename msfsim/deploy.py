"""How a model is deployed on a board: the choices that change instructions or RAM but never
the output.

- Network input read in place or copied into the arena (`Model.input_in_place`; board default
  `[deploy] input_in_place`, CLI `--input-in-place` / `--input-in-arena`).
- Pre-widened weights (`Model.wide_weights`): on cores with the DSP extension the pointwise,
  im2col and depthwise 3x3 loops multiply int16 lane pairs, and int8 weights cost two SXTB16
  per word on every use. Weights stored already widened (and in lane order) take one LDRD
  instead, at twice their flash (a depthwise layer keeps its int8 copy for the borders). Flash is the limit, so layers are widened in order of MACs per extra
  flash byte while an estimate of the firmware stays within the board's flash. RAM is
  unchanged: weights stay in flash.
"""
from __future__ import annotations

from . import NoPlan, ops
from .ir import Layer, Model
from .ops.convbase import wide_eligible, wide_weights
from .platforms import Platform

# Flash the estimate leaves for code, runtime, block descriptors and the linker's alignment
# (seen: 16-31 KB on the zoo's vanilla builds).
CODE_RESERVE = 64 * 1024
# Per output channel of a conv / depthwise / dense layer: bias, multiplier, shift, and
# msf_channel_params (conv and depthwise).
PER_CHANNEL_BYTES = 28


def has_dsp(plat: Platform) -> bool:
    """Boards whose file lists the "dsp" feature: cores with the DSP extension (the kernels'
    MSF_DSP_ASM builds; the compiler predefines the family's `dsp_macro` for them)."""
    return plat.has("dsp")


def flash_estimate(model: Model) -> int:
    """Bytes of flash a firmware of `model` needs with int8 weights (upper estimate)."""
    data = sum(layer.weight.size + PER_CHANNEL_BYTES * model.out_shape(layer)[2]
               for layer in model.layers if layer.weight is not None)
    return data + model.tensor(model.input).size + CODE_RESERVE


def weight_bytes(model: Model) -> int:
    """Flash the model's constant data takes as deployed (a lower bound of the firmware's
    flash): weights (int8, or int16 for pre-widened layers) and per-channel parameters."""
    return sum(layer.weight.size + PER_CHANNEL_BYTES * model.out_shape(layer)[2]
               + (wide_extra_bytes(layer) if layer.index in model.wide_weights else 0)
               for layer in model.layers if layer.weight is not None)


def check_flash(model: Model, plat: Platform) -> None:
    """NoPlan (exit 3) when the weights alone cannot fit the board's flash, whatever the plan."""
    need = weight_bytes(model)
    if need > plat.flash.size:
        raise NoPlan(f"{model.name}: its weights need {need:,} B of flash (int8 weights and "
                     f"per-channel parameters), {plat.name} has {plat.flash.size:,} B: no plan "
                     f"can fit this board")


def wide_extra_bytes(layer: Layer) -> int:
    """Flash a layer's weights take beyond int8 when pre-widened: a conv's int16 rows replace
    its int8 ones; a depthwise layer's are a copy beside them."""
    extra = wide_weights(layer).nbytes
    return extra if ops.get(layer.op).wide_keeps_int8 else extra - layer.weight.size


def wide_weight_layers(model: Model, plat: Platform) -> frozenset[int]:
    """Conv layers to pre-widen on `plat`: none without DSP; else the eligible ones with the
    most MACs per extra flash byte, while the firmware estimate fits the board's flash."""
    if not has_dsp(plat):
        return frozenset()
    room = plat.flash.size - flash_estimate(model)
    extra = {layer.index: wide_extra_bytes(layer)
             for layer in model.layers if wide_eligible(model, layer)}
    chosen = []
    for i in sorted(extra, key=lambda i: (-model.macs(model.layers[i]) / extra[i], i)):
        if extra[i] <= room:
            chosen.append(i)
            room -= extra[i]
    return frozenset(chosen)


def deploy(model: Model, plat: Platform, input_in_place: bool | None = None,
           wide: bool = True) -> Model:
    """`model` as deployed on `plat`: input in place (None: the board's default) and, unless
    `wide` is off, the board's pre-widened weights."""
    in_place = plat.input_in_place if input_in_place is None else input_in_place
    check_flash(model, plat)  # widening is chosen within the flash left, so it needs no check
    layers = wide_weight_layers(model, plat) if wide else frozenset()
    return model.with_input_in_place(in_place).with_wide_weights(layers)
