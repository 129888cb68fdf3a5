"""softmax (msfsim.ops.softmax, kernel msf_softmax_s8): TensorFlow Lite Micro's int8 softmax.

(a) the numpy reference against TFLM's interpreter on one-operator .tflite files
(tests/tflite_models.softmax_model): random logits over many lengths, input scales, zero
points and betas, and the edge cases (all equal, one very large, N = 1, N = 1000, the capped
multiplier); where TFLM aborts (the sum of exps reaching 2^28) msfsim outputs -128 everywhere;
(b) the C kernel built for the host against the reference, and its tail hooks fed in pieces;
(c) the generated C: softmax alone, and as the last tail layer of fused blocks;
(d) what is refused, one line each; the ONNX lowering (float and QDQ models).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from msfsim import MsfsimError, UnsupportedModel, host, ops, plan, refmodel
from msfsim.fusion.block import LAYER, Block, BlockConfig
from msfsim.fusion.exact import block_cost
from msfsim.fusion.geometry import block_structure
from msfsim.importers.onnx import import_model
from msfsim.importers.tflite import import_tflite
from msfsim.ir import Op, QParams
from msfsim.ops import softmax as sm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_models as om  # noqa: E402
import tflite_models as tm  # noqa: E402
from test_executor import Net  # noqa: E402
from test_kernels import kl, window  # noqa: E402,F401  (kl: a fixture)

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ (a) TFLM oracle

class Oracle:
    """One SOFTMAX as a .tflite file: msfsim's import of it and TFLM's interpreter."""

    def __init__(self, tmp: Path, n: int, scale: float, zp: int = 0, beta: float = 1.0):
        pytest.importorskip("tflite_micro")
        from tflite_micro.python.tflite_micro import runtime
        self.n = n
        self.path = tmp / f"softmax_{n}_{scale:g}_{zp}_{beta:g}.tflite"
        self.path.write_bytes(tm.softmax_model(n, scale, zp, beta))
        self.model = import_tflite(self.path)
        layer = self.model.layers[0]
        self.mult, self.shift = int(layer.multiplier[0]), int(layer.shift[0])
        self.it = runtime.Interpreter.from_file(str(self.path))

    def aborts(self, x: np.ndarray) -> bool:
        return sm.sum_of_exps(x, self.mult, self.shift) >= sm.SUM_LIMIT

    def check(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.int8).reshape(1, 1, self.n)
        ours = refmodel.run(self.model, x).reshape(-1)
        if self.aborts(x):  # TFLITE_CHECK(exponent <= 31) in TFLM: nothing to compare with
            np.testing.assert_array_equal(ours, -128)
            return
        self.it.set_input(x.reshape(1, self.n), 0)
        self.it.invoke()
        want = np.array(self.it.get_output(0)).reshape(-1)
        np.testing.assert_array_equal(ours, want, err_msg=f"{self.path.name}: {x.ravel()[:16]}")


def test_random_logits_bit_exact_with_tflm(tmp_path):
    rng = np.random.default_rng(0)
    cases = 0
    for n in (2, 3, 10, 17, 100, 1000):
        for _ in range(4):
            scale = float(np.float32(10 ** rng.uniform(-3.5, 1.4)))
            beta = float(np.float32(rng.choice([1.0, float(rng.uniform(0.2, 3.0))])))
            o = Oracle(tmp_path, n, scale, int(rng.integers(-128, 128)), beta)
            for spread in (256, 32, 4):  # full range, then values close to each other
                x = rng.integers(-spread // 2, spread // 2, n) + int(rng.integers(-64, 64))
                o.check(np.clip(x, -128, 127))
                cases += 1
    assert cases == 72


@pytest.mark.parametrize("n", [1, 2, 10, 511, 1000])
def test_edge_cases_bit_exact_with_tflm(tmp_path, n):
    o = Oracle(tmp_path, n, 0.1)
    for v in (-128, 0, 127):
        o.check(np.full(n, v))                                  # all equal
    big = np.full(n, -128)
    big[n // 2] = 127                                           # one very large
    o.check(big)
    ramp = np.resize(np.arange(-128, 128), n)                   # every value
    o.check(ramp)
    o.check(ramp[::-1])
    if n == 1:  # one value: probability 1, i.e. 127 (1 - 1/256)
        assert refmodel.run(o.model, np.zeros((1, 1, 1), np.int8))[0, 0, 0] == 127


def test_every_scale_regime_bit_exact_with_tflm(tmp_path):
    """Tiny scales (every difference within diff_min), large ones (diff_min small), and an
    input scale so large that TFLM caps the multiplier at 2^31 - 1 (left shift 31, diff_min 0:
    only the maxima count)."""
    rng = np.random.default_rng(1)
    for scale in (2e-4, 0.004, 0.05, 0.5, 4.0, 30.0, 64.0, 1000.0):
        o = Oracle(tmp_path, 12, scale, 3)
        for _ in range(6):
            o.check(rng.integers(-128, 128, 12))
    capped = Oracle(tmp_path, 5, 64.0)
    assert (capped.mult, capped.shift) == (2**31 - 1, 31) and sm.diff_min(31) == 0
    x = np.array([3, 9, 9, -4, 8])
    capped.check(x)
    assert list(refmodel.run(capped.model, x.astype(np.int8).reshape(1, 1, 5)).ravel()) == \
        [-128, 0, 0, -128, -128]  # two maxima of 1/2 each


def test_tflm_aborts_where_msfsim_outputs_minus_128(tmp_path):
    """All 1000 values equal: the sum of exps is 1000 * 2^19 >= 2^28 and TFLM's output shift
    would be 32: its TFLITE_CHECK aborts the process. Every probability (1/1000) is below half
    an output step (1/512): msfsim's -128 is what the rounding gives."""
    o = Oracle(tmp_path, 1000, 0.1)
    x = np.zeros(1000, np.int8)
    assert o.aborts(x) and not o.aborts(np.resize(np.arange(-128, 128), 1000).astype(np.int8))
    o.check(x)
    code = ("import numpy as np\nfrom tflite_micro.python.tflite_micro import runtime\n"
            f"it = runtime.Interpreter.from_file({str(o.path)!r})\n"
            "it.set_input(np.zeros((1, 1000), np.int8), 0)\nit.invoke()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert r.returncode != 0


def test_parameters_are_tflms():
    """PreprocessSoftmaxScaling and CalculateInputRadius, worked by hand for scale 1/16:
    1/16 * 2^26 = 2^22 = 0.5 * 2^23 -> (2^30, 23); radius floor(31 * 2^26 / 2^23) = 248."""
    assert sm.softmax_scaling(1.0, 1 / 16) == (1 << 30, 23)
    assert sm.diff_min(23) == -248
    m, s = sm.softmax_scaling(1.0, 0.1)
    assert 1 << 30 <= m < 1 << 31 and m * 2.0 ** (s - 31) == pytest.approx(0.1 * 2**26)
    assert sm.softmax_scaling(2.0, 0.05) == sm.softmax_scaling(1.0, 0.1)
    with pytest.raises(ValueError, match="not above"):
        sm.softmax_scaling(1.0, 2.0**-27)


# ------------------------------------------------------------------ (b) the C kernel

def params(ffi, n: int, mult: int, shift: int):
    return ffi.new("msf_softmax_params *", dict(channels=n, input_mult=mult,
                                                input_left_shift=shift,
                                                diff_min=sm.diff_min(shift)))


def test_kernel_bit_exact_with_reference(kl):
    ffi, lib = kl
    rng = np.random.default_rng(2)
    for k in range(300):
        n = int(rng.choice([1, 2, 5, 16, 77, 300, 1000, 5000]))
        scale = float(10 ** rng.uniform(-4, 3.5))
        mult, shift = sm.softmax_scaling(float(rng.choice([1.0, rng.uniform(0.1, 4)])), scale)
        spread = int(rng.choice([256, 40, 3, 1]))
        x = np.clip(rng.integers(-spread // 2, spread // 2 + 1, n) + int(rng.integers(-80, 80)),
                    -128, 127).astype(np.int8)
        if k % 10 == 0:
            x[:] = x[0]  # all equal (for n >= 512: TFLM's abort, -128 everywhere)
        want = sm.softmax(x, mult, shift)
        out = np.zeros(n, np.int8)
        p = params(ffi, n, mult, shift)
        lib.msf_softmax_s8(ffi.from_buffer("int8_t[]", x), p, ffi.from_buffer("int8_t[]", out))
        np.testing.assert_array_equal(out, want, err_msg=f"n {n} scale {scale:g}")
        assert lib.msf_softmax_s8_get_buffer_size(p) == n


def test_tail_hooks_fed_in_pieces(kl):
    """The tail copies each fed rectangle to its flat position (from partial and ring
    windows), then computes the softmax of the whole."""
    ffi, lib = kl
    rng = np.random.default_rng(3)
    for _ in range(20):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 9)))
        x = rng.integers(-128, 128, shape).astype(np.int8)
        mult, shift = sm.softmax_scaling(1.0, float(rng.uniform(0.01, 0.3)))
        p = params(ffi, x.size, mult, shift)
        buf = np.zeros(x.size, np.int8)
        tile = (int(rng.integers(1, shape[0] + 1)), int(rng.integers(1, shape[1] + 1)))
        for y0 in range(0, shape[0], tile[0]):
            for x0 in range(0, shape[1], tile[1]):
                h, w = min(tile[0], shape[0] - y0), min(tile[1], shape[1] - x0)
                win = window(ffi, rng, x, shape, y0, x0, h, w, extra=int(rng.integers(0, 3)),
                             ring=h + 1 if rng.random() < 0.5 else 0)
                lib.msf_softmax_accumulate_s8(win.ptr, p, y0, x0, h, w,
                                              ffi.from_buffer("int8_t[]", buf))
        np.testing.assert_array_equal(buf, x.ravel())
        out = np.zeros(x.size, np.int8)
        lib.msf_softmax_finish_s8(p, ffi.from_buffer("int8_t[]", buf),
                                  ffi.from_buffer("int8_t[]", out))
        np.testing.assert_array_equal(out, sm.softmax(x, mult, shift).ravel())


# ------------------------------------------------------------------ (c) generated C

def classifier(seed: int = 0):
    """conv -> gap -> dense -> softmax, and a valid 3x3 conv whose 1x1 map a softmax reads."""
    n = Net("cls", (9, 7, 3), seed)
    x = n.conv(n.b.input, 6, 3, 2)                                       # 0 conv
    x = n.b.gap(x, n.q())                                                # 1 gap
    x = n.dense(x, 7)                                                    # 2 dense
    x = ops.get(Op.SOFTMAX).build(n.b, x)                                # 3 softmax
    y = n.conv(n.b.input, 9, 3, 3, act="none", pad=(0, 0, 0, 2))         # 4 conv: 3x3 map
    y = n.conv(y, 12, 3, 1, act="none", pad=(0, 0, 0, 0))                # 5 conv: 1x1 map
    y = ops.get(Op.SOFTMAX).build(n.b, y, beta=0.7)                      # 6 softmax
    n.b.concat(x, y, QParams(1 / 256, -128))                             # 7 both outputs
    return n.build()


def test_softmax_fuses_as_a_tail_and_runs_alone():
    """Each layer alone, then a plan fusing gap, dense and softmax as the tail of the conv's
    block, and a softmax reading a conv's 1x1 map as its tail (test_ops checks the arena of
    such blocks against the exact cost model)."""
    from msfsim.fusion import space
    m = classifier()
    x = np.random.default_rng(4).integers(-128, 128, (9, 7, 3)).astype(np.int8)
    want = refmodel.run(m, x)
    fused = [Block(0, 3, BlockConfig((2, 2), "hcache")),
             Block(4, 6, BlockConfig((1, 1), "recompute")), Block(7, 7, LAYER)]
    for blk in fused:
        assert space.why_not(m, blk) is None, blk.key
        assert block_cost(m, blk).act_io > 0
    assert block_structure(m, 0, 3).tail == (1, 2, 3)
    for blocks in (plan.vanilla(m), fused):
        out, _ = host.run_plan(m, blocks, x)
        np.testing.assert_array_equal(out, want)
    assert "must start with a spatial" in space.range_reason(m, 2, 3)
    # the softmax keeps a copy of its input: C bytes beside the dense's accumulators
    assert ops.get(Op.SOFTMAX).tail_acc(m, m.layers[3]) == 7


# ------------------------------------------------------------------ (d) refusals, ONNX

def test_refusals_are_one_line(tmp_path):
    cases = [(dict(n=10, in_scale=2.0**-28), r"not above 2\^-26"),
             (dict(n=10, in_scale=0.1, out_scale=1 / 255), "requires scale 1/256"),
             (dict(n=10, in_scale=0.1, out_zp=0), "requires scale 1/256")]
    for k, (kw, msg) in enumerate(cases):
        p = tmp_path / f"bad{k}.tflite"
        p.write_bytes(tm.softmax_model(**kw))
        with pytest.raises(UnsupportedModel, match=msg) as exc:
            import_tflite(p)
        assert "\n" not in str(exc.value) and "operator 0 (SOFTMAX, output 'probs')" in \
            str(exc.value)
    ok = tmp_path / "map.tflite"
    ok.write_bytes(tm.softmax_model(6, 0.1, map_1x1=True))
    assert import_tflite(ok).layers[0].op == Op.SOFTMAX


def test_softmax_over_every_pixel_of_a_map_is_tflm(tmp_path):
    """SOFTMAX of a 2x3 map (a FOMO head's): softmax_map, every pixel's channels as TFLM."""
    pytest.importorskip("tflite_micro")
    p = tmp_path / "pixels.tflite"
    p.write_bytes(tm.softmax_model(6, 0.1, map_1x1=True, hw=(2, 3)))
    m = import_tflite(p)
    assert [la.op for la in m.layers] == [Op.SOFTMAX_MAP]
    xs = tm.inputs(m, 5)
    for x, want in zip(xs, tm.tflm(m, p, xs)):
        np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), want)


def softmax_onnx(axis: int | None, flat: bool = True, qdq: tuple[float, int] | None = None):
    """Conv (and Flatten) -> Softmax, float or with a QuantizeLinear / DequantizeLinear pair
    after the Softmax."""
    rng = np.random.default_rng(5)
    mk = helper.make_node
    nodes = [mk("Conv", ["input", "w"], ["c"], name="conv")]
    src = "c"
    if flat:
        nodes.append(mk("Flatten", ["c"], ["f"], name="flat"))
        src = "f"
    nodes.append(mk("Softmax", [src], ["sm"], name="softmax",
                    **({} if axis is None else {"axis": axis})))
    inits = [om._init("w", rng.normal(0, 0.5, (6, 2, 3, 3)))]
    out = "sm"
    if qdq:
        inits += [om._init("s", np.array(qdq[0])),
                  helper.make_tensor("z", TensorProto.INT8, [], [qdq[1]])]
        nodes += [mk("QuantizeLinear", ["sm", "s", "z"], ["q"], name="q"),
                  mk("DequantizeLinear", ["q", "s", "z"], ["out"], name="dq")]
        out = "out"
    g = helper.make_graph(nodes, "sm", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, [1, 2, 3, 3])], [helper.make_tensor_value_info(
            out, TensorProto.FLOAT, [1, 6] if flat else [1, 6, 1, 1])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_onnx_softmax_takes_tflites_output_quantisation():
    for axis, flat in ((None, True), (1, True), (-1, True), (1, False)):
        m = import_model(softmax_onnx(axis, flat), name="sm")
        assert [layer.op for layer in m.layers] == [Op.CONV, Op.SOFTMAX]
        assert m.tensor(m.output).q == QParams(1 / 256, -128)
        x = np.random.default_rng(6).integers(-128, 128, (3, 3, 2)).astype(np.int8)
        y = refmodel.run(m, x)
        probs = (y.astype(np.int64) + 128) / 256
        assert abs(probs.sum() - 1) < 6 / 256  # at most half a step off per value
    out, _ = host.run_plan(m, [Block(0, 1, BlockConfig((1, 1), "recompute"))], x)
    np.testing.assert_array_equal(out, y)
    m = import_model(softmax_onnx(None, True, qdq=(1 / 256, -128)), name="sm")
    assert m.layers[-1].op == Op.SOFTMAX
    with pytest.raises(MsfsimError, match="needs 1/256 and -128"):
        import_model(softmax_onnx(None, True, qdq=(1 / 255, -128)), name="sm")
    for axis, flat in ((None, False), (-1, False), (0, True)):
        with pytest.raises(UnsupportedModel, match="axis"):
            import_model(softmax_onnx(axis, flat), name="sm")


def test_onnx_float_evaluation_is_softmax():
    layer = ops.FloatLayer(Op.SOFTMAX, "s", ["x"], "y", (1, 1, 4), attrs={"beta": 2.0})
    x = np.array([1.0, 2.0, 0.5, -1.0]).reshape(1, 1, 1, 4)
    e = np.exp(2 * x)
    np.testing.assert_allclose(ops.get(Op.SOFTMAX).float_eval(layer, [x]), e / e.sum())


def test_onnx_softmax_over_the_channels_of_a_map():
    """Conv (padded) -> Softmax(axis=1) on a 3x3 map: softmax_map; within 2 LSB of
    onnxruntime's float softmax (it reads the conv's int8 output); the whole net as one fused
    block bit-exact with the reference."""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(8)
    mk = helper.make_node
    g = helper.make_graph(
        [mk("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         mk("Softmax", ["c"], ["sm"], axis=1, name="softmax")], "sm",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("sm", TensorProto.FLOAT, [1, 5, 3, 3])],
        [om._init("w", rng.normal(0, 0.8, (5, 2, 3, 3)))])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    m = import_model(proto, name="sm")
    assert [la.op for la in m.layers] == [Op.CONV, Op.SOFTMAX_MAP]
    tin, tout = m.tensor(m.input), m.tensor(m.output)
    xq = rng.integers(-128, 128, tin.shape, dtype=np.int8)
    xf = ((xq.astype(np.float32) - tin.q.zero_point) * tin.q.scale).transpose(2, 0, 1)[None]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": xf})[0][0].transpose(1, 2, 0)
    got = (refmodel.run(m, xq).astype(np.float64) - tout.q.zero_point) * tout.q.scale
    assert np.abs(got - want).max() <= 2 * tout.q.scale + 1e-6
    out, _ = host.run_block(m, Block(0, 1, BlockConfig((1, 1), "stream2d")), [xq])
    np.testing.assert_array_equal(out, refmodel.run(m, xq))

