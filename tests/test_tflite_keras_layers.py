"""Keras layers the TFLite converter writes as constant arithmetic, and Conv1D models.

- keras.layers.Normalization (SUB and MUL of per-channel constants), a BatchNormalization the
  converter cannot fold (after an Add: MUL and ADD of per-channel constants), PReLU (PRELU, an
  alpha per channel or one), ReLU(max_value) (MINIMUM by a constant): tables of TFLM's own
  arithmetic, one per channel where the constant differs per channel (msf_lut_channels_s8);
- GlobalMaxPooling2D / 1D (REDUCE_MAX): a max pool of the whole map;
- a grouped Conv2D: the dense conv with block-diagonal weights; ZeroPadding2D before
  MaxPooling2D of a ReLU's output (DenseNet's stem): the pool's own padding;
- Conv1D models: the (1, W, C) sequence is msfsim's (1, W, C) map, the converter's reshapes
  to (1, 1, W, C) around each CONV_2D the same bytes; causal padding (a PAD before that
  RESHAPE) folds into the conv; a Dense on every step is a 1x1 conv;
- SUB of two activations (keras.layers.Subtract): sub (msf_elementwise_sub_s8);
- channel selections of activations (STRIDED_SLICE x[..., a:b], SPLIT, SPLIT_V): a 1x1 conv
  with one weight 1 per output channel, requantised by exactly 1 (the bytes TFLM copies);
- SOFTMAX over the channels of every pixel of a map (a FOMO detector's head): softmax_map;
- a RESHAPE of the network input before any layer (TFLM's micro_speech: (1, 1960) as
  (49, 40, 1)) gives the input that shape.

Real TFLiteConverter output (tests/data/tflite, scripts/make_tflite_fixtures.py) against TFLM's
interpreter bit for bit, and one-operator files fed every int8 value in every channel.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from msfsim import UnsupportedModel, refmodel
from msfsim.importers.tflite import import_tflite
from msfsim.ir import Op

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tflite_models as tm  # noqa: E402

FIXTURES = ["keras_normalization", "prelu_net", "conv1d_kws", "per_channel_add",
            "grouped_pad_pool", "micro_speech", "tcn", "subtract", "channel_split", "fomo"]


def layers(name: str) -> list[tuple[Op, str, tuple | None]]:
    m = import_tflite(tm.fixture(name))
    return [(la.op, la.activation, None if la.weight is None else la.weight.shape)
            for la in m.layers]


def test_fixtures_have_the_layers():
    # Normalization's SUB and MUL compose into one table per channel; BatchNormalization
    # after the Add is MUL and ADD (ReLU fused), one table per channel
    assert layers("keras_normalization") == [
        (Op.LUT, "sub+mul", (3, 256)), (Op.CONV, "none", (8, 3, 3, 3)),
        (Op.CONV, "none", (8, 1, 1, 3)), (Op.ADD, "none", None), (Op.LUT, "mul+add", (8, 256)),
        (Op.GAP, "none", None), (Op.DENSE, "none", (4, 8))]
    got = layers("prelu_net")
    assert got[1] == (Op.LUT, "prelu", (8, 256))      # an alpha per channel
    assert got[3] == (Op.LUT, "prelu", (256,))        # one alpha
    assert got[5] == (Op.LUT, "minimum+relu", (256,))  # ReLU(max_value=4)
    assert got[6][0] == Op.MAXPOOL                    # GlobalMaxPooling2D
    m = import_tflite(tm.fixture("conv1d_kws"))
    assert m.tensor(m.input).shape == (1, 49, 10)
    assert [la.op for la in m.layers] == [Op.CONV, Op.MAXPOOL, Op.CONV, Op.GAP, Op.MAXPOOL,
                                          Op.CONCAT, Op.DENSE]
    assert m.layers[0].kernel == (1, 3) and m.layers[1].kernel == (1, 2)
    assert m.layers[4].kernel == (1, 22)  # the max over the frames
    assert layers("per_channel_add") == [(Op.MAXPOOL, "none", None), (Op.LUT, "add", (4, 256)),
                                         (Op.CONV, "none", (4, 1, 1, 4))]
    m = import_tflite(tm.fixture("micro_speech"))
    assert m.tensor(m.input).shape == (49, 40, 1)  # the file's input is (1, 1960)
    assert [la.op for la in m.layers] == [Op.DWCONV, Op.DENSE]
    m = import_tflite(tm.fixture("tcn"))
    assert m.tensor(m.input).shape == (1, 64, 6)
    # causal: the dilated kernels (1, 3), (1, 5), (1, 9) padded on the left only
    assert [(la.kernel, la.pad) for la in m.layers[:3]] == [
        ((1, 3), (0, 2, 0, 0)), ((1, 5), (0, 4, 0, 0)), ((1, 9), (0, 8, 0, 0))]
    assert m.layers[3].op == Op.CONV and m.layers[3].kernel == (1, 1)  # Dense on every step
    m = import_tflite(tm.fixture("channel_split"))
    selections = [la for la in m.layers if la.op == Op.CONV and la.kernel == (1, 1)
                  and set(np.unique(la.weight)) == {0, 1} and (la.weight == 1).sum(axis=(1, 2, 3)).max() == 1]
    assert len(selections) == 5  # SPLIT's two parts, SPLIT_V's two, the slice
    assert all(np.all(la.multiplier == 1 << 30) and np.all(la.shift == 1) for la in selections)
    m = import_tflite(tm.fixture("fomo"))
    assert m.layers[-1].op == Op.SOFTMAX_MAP and m.tensor(m.output).shape == (4, 4, 3)
    m = import_tflite(tm.fixture("grouped_pad_pool"))
    assert [la.op for la in m.layers] == [Op.CONV, Op.MAXPOOL, Op.CONV, Op.CONV, Op.GAP, Op.DENSE]
    assert m.layers[1].pad == (1, 1, 1, 1) and m.layers[1].kernel == (3, 3)  # the PAD's
    for la, per in ((m.layers[2], 4), (m.layers[3], 3)):  # groups=2: block-diagonal weights
        w = la.weight  # (Cout, kh, kw, Cin)
        assert w.shape[3] == 8
        for o in range(w.shape[0]):
            g = o // per
            assert not np.any(np.delete(w[o], np.s_[g * 4:(g + 1) * 4], axis=2))


@pytest.mark.parametrize("name", FIXTURES)
def test_reference_bit_exact_with_tflm(name):
    tm.check_reference_with_tflm(name)


@pytest.mark.parametrize("name", FIXTURES)
def test_generated_c_plans_bit_exact_with_tflm(name):
    """Layer by layer and the analytic min-RAM plan through the generated C on the host (the
    tables per channel inside fused blocks)."""
    tm.check_plans_with_tflm(name)


def every_value(c: int) -> np.ndarray:
    """(1, 16, 16, c): each channel holds every int8 value, in a different order."""
    x = np.arange(-128, 128, dtype=np.int8)
    return np.stack([np.roll(x, 37 * k) for k in range(c)], axis=-1).reshape(1, 16, 16, c)


def tflm_run(path: Path, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_file(str(path))
    it.set_input(x, 0)
    it.invoke()
    return np.array(it.get_output(0)).reshape(-1)


ACT = {"none": 0, "relu": 1, "relu6": 3}


@pytest.mark.parametrize("op", ["SUB", "ADD", "MUL"])
def test_constant_arithmetic_is_tflm_bit_exact(tmp_path, op):
    """ADD / SUB / MUL of an activation and an int8 constant, one value or one per channel,
    the constant first or second, with and without a fused activation, over random
    quantisations: msfsim's tables against TFLM's kernel on every input value per channel."""
    pytest.importorskip("tflite_micro")
    rng = np.random.default_rng({"SUB": 1, "ADD": 2, "MUL": 3}[op])
    options = {"SUB": "SubOptions", "ADD": "AddOptions", "MUL": "MulOptions"}[op]
    c = 4
    x = every_value(c)
    distinct = []
    for k in range(8):
        in_q = (float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
        out_q = (float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
        shape = [[1], [c], [1, 1, 1, c], [1, 1, c]][k % 4]
        values = rng.integers(-128, 128, shape).astype(np.int8)
        const = (values, float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)), k % 2 == 1)
        act = ["none", "relu", "relu6", "none"][k % 4]
        p = tmp_path / f"{op}{k}.tflite"
        p.write_bytes(tm.one_op_model(op, [1, 16, 16, c], in_q, out_q,
                                      (options, {"FusedActivationFunction": ACT[act]}),
                                      const=const))
        m = import_tflite(p)
        assert [la.op for la in m.layers] == [Op.LUT]
        want = tflm_run(p, x)
        np.testing.assert_array_equal(refmodel.run(m, x[0]).reshape(-1), want,
                                      err_msg=f"{op} {k}: {in_q} {const} -> {out_q} {act}")
        distinct.append(len(set(want.tolist())))
    assert sum(n > 8 for n in distinct) >= 5, distinct  # not all saturated


def test_prelu_is_tflm_bit_exact(tmp_path):
    """PRELU with alphas negative, zero and above 1, one per channel or one in all, over
    random quantisations: every input value per channel against TFLM's kernel."""
    pytest.importorskip("tflite_micro")
    rng = np.random.default_rng(4)
    c = 5
    x = every_value(c)
    for k in range(8):
        in_q = (float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
        out_q = (float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
        shape = [[1, 1, c], [c], [1, 1, 1], [16, 16, c]][k % 4]
        per_channel = rng.integers(-128, 128, shape[-1]).astype(np.int8)
        values = np.broadcast_to(per_channel, shape).copy()
        alpha = (values, float(rng.uniform(0.002, 0.02)), int(rng.integers(-20, 20)), False)
        p = tmp_path / f"prelu{k}.tflite"
        p.write_bytes(tm.one_op_model("PRELU", [1, 16, 16, c], in_q, out_q, const=alpha))
        m = import_tflite(p)
        assert [la.op for la in m.layers] == [Op.LUT]
        np.testing.assert_array_equal(refmodel.run(m, x[0]).reshape(-1), tflm_run(p, x),
                                      err_msg=f"PRELU {k}: {in_q} {alpha} -> {out_q}")


@pytest.mark.parametrize("op", ["MINIMUM", "MAXIMUM"])
def test_minimum_maximum_by_a_constant_are_tflm_bit_exact(tmp_path, op):
    pytest.importorskip("tflite_micro")
    q = (0.03, -5)
    x = every_value(3)
    for first, values in ((False, np.array([40], np.int8)), (True, np.array([-7, 0, 90], np.int8))):
        p = tmp_path / f"{op}{first}.tflite"
        p.write_bytes(tm.one_op_model(op, [1, 16, 16, 3], q, q, const=(values, *q, first)))
        m = import_tflite(p)
        assert [la.op for la in m.layers] == [Op.LUT]
        np.testing.assert_array_equal(refmodel.run(m, x[0]).reshape(-1), tflm_run(p, x))


def test_sub_of_two_activations_over_quantisations(tmp_path):
    """The subtract fixture with its SUB's operands and output requantised at random (the
    convolutions before follow): msfsim's reference against TFLM on random inputs."""
    pytest.importorskip("tflite_micro")
    rng = np.random.default_rng(9)
    base = tm.fixture("subtract").read_bytes()
    g = tm._model(bytearray(base)).Subgraphs(0)
    sub = tm.op_index(bytearray(base), "SUB")
    tensors = [g.Operators(sub).Inputs(0), g.Operators(sub).Inputs(1), g.Operators(sub).Outputs(0)]
    for k in range(16):
        data = bytearray(base)
        for t in tensors:
            tm.set_scale(data, t, float(rng.uniform(0.002, 0.05)))
            tm.set_zero_point(data, t, int(rng.integers(-100, 100)))
        p = tmp_path / f"sub{k}.tflite"
        p.write_bytes(data)
        m = import_tflite(p)
        assert [la.op for la in m.layers].count(Op.SUB) == 1
        xs = tm.inputs(m, 4, seed=k)
        for x, want in zip(xs, tm.tflm(m, p, xs)):
            np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), want, err_msg=str(k))


def test_what_stays_refused(tmp_path):
    """One line each, naming the operator and what is not supported."""
    with pytest.raises(UnsupportedModel, match=r"\(DEQUANTIZE, output '[^']+'\): a DEQUANTIZE "
                                               r"inside the graph: the converter left ELU in "
                                               r"float32"):
        import_tflite(tm.fixture("elu_float"))
    with pytest.raises(UnsupportedModel, match=r"\(STRIDED_SLICE, output '[^']+'\): slices "
                                               r"axis 1 .*along the channels only \(Cropping2D "
                                               r"is not supported\)"):
        import_tflite(tm.fixture("cropping"))
    # no ReLU before the padded max pool: a padded zero could be a window's max
    with pytest.raises(UnsupportedModel, match=r"\(MAX_POOL_2D, output '[^']+'\): a PAD before "
                                               r"a pool is supported only before a MAX_POOL_2D "
                                               r"of values at or above the zero point"):
        import_tflite(tm.fixture("pad_before_pool"))
    q = (0.05, 0)
    cases = [  # (op, constant, the error)
        ("PRELU", np.arange(16 * 16 * 2, dtype=np.int64).reshape(16, 16, 2) % 100,
         r"PRELU.*constant operand 'c' of shape \[16, 16, 2\]: only one value, or one per "
         r"channel \(2\) broadcast over H and W"),
        ("ADD", np.arange(3, dtype=np.int8), r"ADD.*shape \[3\].*one per channel \(2\)"),
        ("MAXIMUM", np.array([4], np.int8), r"MAXIMUM.*operands and output quantised "
                                            r"differently"),
    ]
    for k, (op, values, msg) in enumerate(cases):
        p = tmp_path / f"bad{k}.tflite"
        out_q = (0.1, 0) if op == "MAXIMUM" else q
        p.write_bytes(tm.one_op_model(op, [1, 16, 16, 2], q, out_q,
                                      const=(values.astype(np.int8), 0.1, 0, False)))
        with pytest.raises(UnsupportedModel, match=msg) as e:
            import_tflite(p)
        assert "\n" not in str(e.value)


def test_a_table_per_channel_does_not_export_to_tflite(tmp_path):
    """msfsim's .tflite exporter writes ops TFLite has; a table per channel is none (one line,
    nothing written)."""
    from msfsim import MsfsimError
    from msfsim.exporters import tflite_bytes
    m = import_tflite(tm.fixture("per_channel_add"))
    with pytest.raises(MsfsimError, match="a table per channel") as e:
        tflite_bytes(m)
    assert "\n" not in str(e.value)
