"""int8 .tflite models (written by TensorFlow's TFLiteConverter, tests/data/tflite) imported into
msfsim and run three ways, each bit-exact with TensorFlow Lite Micro's interpreter (its
reference kernels) on seeded random int8 inputs: msfsim's numpy reference layer by layer, the
generated C (the kernels and the executor, built for the host) for the layer-by-layer plan and
for the min-RAM fused plan, and the avgpool kernel in its TFLite mode on partial regions."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msfsim import MsfsimError, UnsupportedModel, refmodel
from msfsim.importers.tflite import import_tflite, quant, tflm_arena_bytes
from msfsim.ir import Op
from msfsim.ops.fixedpoint import quantize_multiplier as onnx_quantize_multiplier
from msfsim.search.api import search_analytic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tflite_models as tm  # noqa: E402
from test_kernels import kl, rand_rect, run_region  # noqa: E402,F401  (kl: a fixture)

pytest.importorskip("tflite_micro")
ROOT = Path(__file__).resolve().parents[1]
TRIALS = 25


def inputs(model, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, model.tensor(model.input).shape, dtype=np.int8)
            for _ in range(n)]


def as_tflm(model, path: Path, ys: list[np.ndarray]) -> list[np.ndarray]:
    """msfsim's int8 outputs as TFLM reports them (dequantised for a float-out model)."""
    from tflite_micro.python.tflite_micro import runtime
    out_float = runtime.Interpreter.from_file(str(path)).get_output_details(0)["dtype"] == np.float32
    q = model.tensor(model.output).q
    return [tm.dequantize(y, q) if out_float else y.reshape(-1) for y in ys]


def tflm(model, path: Path, xs):
    return tm.tflm_outputs(path, xs, model.tensor(model.input).q, model.tensor(model.output).q)


@pytest.mark.parametrize("name", tm.FIXTURES)
def test_reference_bit_exact_with_tflm(name):
    path = tm.fixture(name)
    m = import_tflite(path)
    xs = inputs(m, TRIALS)
    want = tflm(m, path, xs)
    got = as_tflm(m, path, [refmodel.run(m, x) for x in xs])
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g.reshape(-1), w, err_msg=f"{name} input {i}")


@pytest.mark.parametrize("name", ["lenet", "mbv2_block", "dscnn"])
def test_generated_c_plans_bit_exact_with_tflm(name):
    """The C kernels through the executor on the host: layer by layer and the min-RAM plan."""
    tm.check_plans_with_tflm(name)


def test_emulated_cortex_m7_fused_plan_bit_exact_with_tflm(tmp_path):
    """One whole-plan firmware (min-RAM plan, DSP kernels) run in the unicorn Cortex-M7."""
    import json

    from msfsim import ToolMissing
    from msfsim.pipeline.runner import run
    pytest.importorskip("unicorn")
    path = tm.fixture("dscnn")
    m = import_tflite(path)
    [x] = inputs(m, 1, seed=11)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(search_analytic(m, "stm32f746").to_plan_json()))
    try:
        y = run(m, "stm32f746", x, plan=plan_file, backend="unicorn")
    except ToolMissing as exc:
        pytest.skip(str(exc))
    np.testing.assert_array_equal(y.reshape(-1), tflm(m, path, [x])[0])


def test_fixtures_cover_the_mapped_ops():
    ops = {n: [layer.op for layer in import_tflite(tm.fixture(n)).layers] for n in tm.FIXTURES}
    assert ops["lenet"] == [Op.CONV, Op.MAXPOOL, Op.CONV, Op.MAXPOOL, Op.DENSE, Op.DENSE]
    mb = import_tflite(tm.fixture("mbv2_block"))
    assert [layer.op for layer in mb.layers].count(Op.ADD) == 1 and Op.GAP in ops["mbv2_block"]
    # the file's PAD ((1, 0), (1, 0)) folded into the strided depthwise conv (VALID)
    assert [layer.pad for layer in mb.layers if layer.op == Op.DWCONV][1] == (1, 1, 0, 0)
    ds = import_tflite(tm.fixture("dscnn"))
    pools = [layer for layer in ds.layers if layer.op == Op.AVGPOOL]
    assert [p.multiplier for p in pools] == [None, None]  # TFLite's rounding division
    assert pools[0].pad == (1, 1, 1, 1)  # SAME: the divisor counts only taps inside
    assert ops["dscnn_float_io"] == ops["dscnn"]  # QUANTIZE / DEQUANTIZE are the edges
    assert ops["dscnn_uint8_io"] == ops["dscnn"]  # uint8 <-> int8 QUANTIZEs too


def test_avgpool_tflite_mode_rounds_half_away_over_taps_inside():
    x = np.array([[[1], [2]], [[-1], [-2]]], np.int8)           # 2x2x1
    from msfsim.ops.pool import avgpool_tflite
    assert avgpool_tflite(x[:1], (1, 2), (1, 1), (0, 0, 0, 0)).ravel().tolist() == [2]    # 1.5
    assert avgpool_tflite(x[1:], (1, 2), (1, 1), (0, 0, 0, 0)).ravel().tolist() == [-2]   # -1.5
    # 2x2 window padded at the bottom-right corner: one tap inside (-2), not -2/4
    assert avgpool_tflite(x, (2, 2), (1, 1), (0, 0, 1, 1))[1, 1, 0] == -2


@pytest.mark.parametrize("seed", range(3))
def test_avgpool_tflite_kernel_regions(kl, seed):
    """msf_avg_pool_s8 with tflite_div on whole outputs and partial windows, as the executor
    calls it inside fused blocks."""
    from msfsim.ops.pool import avgpool_tflite
    ffi, lib = kl
    rng = np.random.default_rng(100 + seed)
    for _ in range(15):
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        pad = tuple(int(rng.integers(0, k[i % 2])) for i in range(4))
        shape = (int(rng.integers(max(k[0] - pad[0] - pad[2], 1) + 1, 12)),
                 int(rng.integers(max(k[1] - pad[1] - pad[3], 1) + 1, 12)),
                 int(rng.integers(1, 7)))
        lo = int(rng.integers(-128, 0))
        hi = int(rng.integers(lo + 1, 128))
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        try:
            want = avgpool_tflite(x, k, s, pad, lo, hi)
        except ValueError:  # a window with no tap inside: refused at import
            continue
        p = ffi.new("msf_pool_params *", dict(
            kernel_h=k[0], kernel_w=k[1], stride_h=s[0], stride_w=s[1], pad_top=pad[0],
            pad_left=pad[1], input_offset=77, output_offset=-9, act_min=lo, act_max=hi,
            multiplier=123, shift=-3, tflite_div=1))  # offsets / multiplier must be unused
        ho, wo = want.shape[:2]
        for partial, rect in [(False, (0, 0, ho, wo))] + [(True, rand_rect(rng, ho, wo))
                                                          for _ in range(3)]:
            got = run_region(ffi, lib, rng, "msf_avg_pool_s8", x, shape, k, s, pad, want.shape,
                             rect, p, partial, None)
            oy0, ox0, oh, ow = rect
            np.testing.assert_array_equal(got, want[oy0:oy0 + oh, ox0:ox0 + ow])


def test_mean_with_equal_qparams_takes_the_multiplier_path():
    """TFLM's reference MEAN requantises even when input and output qparams are equal (older
    releases divided the raw sum then): msfsim follows the installed interpreter."""
    data = bytearray(tm.fixture("mbv2_block").read_bytes())
    import tflite
    g = tflite.Model.GetRootAs(bytes(data), 0).Subgraphs(0)
    op = g.Operators(tm.op_index(data, "MEAN"))
    qin = g.Tensors(op.Inputs(0)).Quantization()
    tm.set_scale(data, op.Outputs(0), qin.Scale(0))
    tm.set_zero_point(data, op.Outputs(0), qin.ZeroPoint(0))
    path = Path(pytest.importorskip("tempfile").mkdtemp()) / "mean_same.tflite"
    path.write_bytes(data)
    m = import_tflite(path)
    xs = inputs(m, 10, seed=3)
    for x, w in zip(xs, tflm(m, path, xs)):
        np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), w)


def test_quantize_multiplier_is_tflms():
    """Ties round away from zero as std::round (msfsim's ONNX path keeps its own rounding)."""
    tie = (2 ** 30 + 0.5) / 2 ** 31  # mantissa * 2^31 ends in exactly .5
    assert quant.quantize_multiplier(tie) == (2 ** 30 + 1, 0)
    assert onnx_quantize_multiplier(tie) == (2 ** 30, 0)
    assert quant.quantize_multiplier(2.0 ** -40) == (0, 0)
    assert quant.quantize_multiplier(2.0 ** 40) == (2 ** 31 - 1, 30)
    assert quant.activation_range(quant.ACT_RELU6, 0.5, -3) == (-3, 9)
    assert quant.activation_range(quant.ACT_RELU_N1_TO_1, 0.4, 0) == (-3, 3)  # 2.5 -> 3


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "msfsim"), *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


def test_cli_search_accepts_tflite():
    r = cli("search", str(tm.fixture("dscnn")), "--platform", "stm32f746", "--cost", "analytic")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def test_cli_refuses_input_shape_for_tflite():
    r = cli("search", str(tm.fixture("dscnn")), "--platform", "stm32f746", "--cost", "analytic",
            "--input-shape", "1x1x49x10")
    assert r.returncode == 2
    assert "--input-shape" in r.stderr and "static" in r.stderr and "Traceback" not in r.stderr


def test_unsupported_op_names_op_index_and_tensor(tmp_path):
    data = bytearray(tm.fixture("concat").read_bytes())
    tm.set_builtin_code(data, tm.op_index(data, "CONCATENATION"), 25)  # SOFTMAX
    p = tmp_path / "softmax.tflite"
    p.write_bytes(data)
    r = cli("search", str(p), "--platform", "stm32f746", "--cost", "analytic")
    assert r.returncode == 2
    err = r.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "operator 2 (SOFTMAX, output 'unsupported_1/concatenate_1/concat')" in err


def test_unsupported_softmax(tmp_path):
    data = bytearray(tm.fixture("dscnn").read_bytes())
    k = tm.op_index(data, "AVERAGE_POOL_2D")
    tm.set_builtin_code(data, k, 25)  # SOFTMAX
    p = tmp_path / "sm.tflite"
    p.write_bytes(data)
    with pytest.raises(UnsupportedModel, match=rf"operator {k} \(SOFTMAX, output '.*AvgPool'\)"):
        import_tflite(p)


def test_float_tflite_is_refused():
    r = cli("search", str(tm.fixture("float32_unquantised")), "--platform", "stm32f746",
            "--cost", "analytic")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "float .tflite: quantise with TFLiteConverter full-integer" in r.stderr


@pytest.mark.parametrize("fixture,msg", [
    ("dscnn_float_io", "float .tflite: quantise with TFLiteConverter"),
    ("dscnn_uint8_io", r"input '[^']+' is UINT8 and not quantised to int8 by a QUANTIZE: "
                       r"msfsim runs int8 models")])
def test_edge_input_without_quantize_is_refused(tmp_path, fixture, msg):
    """A float or uint8 input no QUANTIZE reads is refused in one line, with the way out."""
    data = bytearray(tm.fixture(fixture).read_bytes())
    tm.set_builtin_code(data, tm.op_index(data, "QUANTIZE"), 6)  # QUANTIZE -> DEQUANTIZE
    p = tmp_path / "f.tflite"
    p.write_bytes(data)
    with pytest.raises(MsfsimError, match=msg) as e:
        import_tflite(p)
    assert "\n" not in str(e.value)


def test_tflm_arena_bytes():
    for name in ("lenet", "dscnn"):
        n = tflm_arena_bytes(tm.fixture(name))
        m = import_tflite(tm.fixture(name))
        # TFLM holds at least the largest layer's input and output at once
        biggest = max(m.tensor(layer.inputs[0]).size + m.tensor(layer.output).size
                      for layer in m.layers)
        assert isinstance(n, int) and n >= biggest, (name, n, biggest)
