"""The .tflite export (msfsim.exporters): every zoo model written as an int8 .tflite file, read
back by msfsim's .tflite importer with the IR's layers, and run by TFLM's interpreter (the
oracle, `tflite_micro`) bit for bit as msfsim's reference runs the imported model; the generated
C of the analytic min-RAM plan too, on two models. Real TFLiteConverter files (tests/data/tflite)
survive import -> export -> import with their multipliers. What TFLite cannot express is
refused with one line, and `msfsim zoo export NAME -o x.tflite` writes a file TFLM loads.

Every zoo model exports (squeezenet-r96's Fire branches are quantised as their concat, as
TFLiteConverter quantises them). Refused, below: an IR whose concat requantises (branches
calibrated apart, while TFLM's int8 CONCATENATION copies bytes), a table that is no TFLite
activation, a pool padded otherwise than SAME or VALID, a clamp on a global pooling.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from msfsim import UnsupportedModel, host, plan, refmodel, zoo
from msfsim.exporters import export_tflite, tflite_bytes
from msfsim.importers.tflite import import_tflite
from msfsim.ir import IRBuilder, Op, QParams, quantize_weights
from msfsim.search.api import search_analytic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tflite_models as tm  # noqa: E402

pytest.importorskip("tflite_micro")

# the layers whose multipliers the export keeps up to float32 scales (the folded hard sigmoid's
# conv, the pools and MEAN take TFLite's own arithmetic)
WEIGHTED = (Op.CONV, Op.DWCONV, Op.DENSE)


def structure(m):
    return [(la.op, la.kernel, la.stride, la.pad, m.out_shape(la),
             tuple(m.tensor(t).shape for t in la.inputs)) for la in m.layers]


inputs, tflm = tm.inputs, tm.tflm


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """zoo name -> (its .tflite file, msfsim's import of it), exported once."""
    d = tmp_path_factory.mktemp("tflite")
    cache: dict[str, tuple[Path, object]] = {}

    def get(name: str):
        if name not in cache:
            path = export_tflite(zoo.load(name), d / f"{name}.tflite")
            cache[name] = (path, import_tflite(path))
        return cache[name]
    return get


@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_model_exports_imports_and_runs_as_tflm(name, exported):
    ir = zoo.load(name)
    path, m = exported(name)
    assert structure(m) == structure(ir)
    xs = inputs(m, 3)
    for i, (x, want) in enumerate(zip(xs, tflm(m, path, xs))):
        np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), want, err_msg=f"{name} {i}")
    # the file is the IR's model up to float32 scales: the same multipliers to ~1e-7, and the
    # same output give or take rounding that ripples through deep linear chains
    folded = {ir.producer(la.inputs[0]) for la in ir.layers if la.activation == "hardsigmoid"}
    for a, b in zip(ir.layers, m.layers):
        if a.op in WEIGHTED:
            np.testing.assert_array_equal(a.weight, b.weight)
        if a.op in WEIGHTED and a.index not in folded:
            np.testing.assert_array_equal(a.shift, b.shift)
            rel = np.abs(a.multiplier.astype(np.int64) - b.multiplier) / a.multiplier
            assert rel.max() < 2.0 ** -21, (name, a.index)
    x = xs[1]
    diff = np.abs(refmodel.run(ir, x).astype(int) - refmodel.run(m, x).astype(int))
    assert diff.mean() <= 1.5 and diff.max() <= 16, (name, diff.mean(), diff.max())


@pytest.mark.parametrize("name", ["mbv3-small-r96", "squeezenet-r96"])
def test_generated_c_of_the_min_ram_plan_is_tflm(name, exported):
    """The analytic min-RAM plan of the exported model (squeeze-and-excite, folded hard
    sigmoid, hard-swish tables; Fire modules' concat) through the generated C on the host."""
    path, m = exported(name)
    blocks = plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json())
    assert len(blocks) < len(m.layers)
    xs = inputs(m, 2, seed=3)
    for x, want in zip(xs, tflm(m, path, xs)):
        y, _ = host.run_plan(m, blocks, x)
        np.testing.assert_array_equal(y.reshape(-1), want, err_msg=name)


# (sigmoid_net's swish, x * LOGISTIC(x), imports as one table, which no TFLite operator is)
@pytest.mark.parametrize("fixture", ["mbv3_small", "concat", "mbv2_block", "dscnn", "lenet",
                                     "subtract", "fomo"])
def test_converter_files_survive_import_export_import(fixture, tmp_path):
    """TFLiteConverter's own files (MUL by the constant 1/6 of Keras' hard_sigmoid, LOGISTIC,
    TANH, PAD, per-tensor FULLY_CONNECTED...) come back with their layers and tables, and
    their multipliers except per-tensor FC's, which the export writes per channel."""
    a = import_tflite(tm.fixture(fixture))
    path = export_tflite(a, tmp_path / "again.tflite")
    b = import_tflite(path)
    assert structure(b) == structure(a)
    for la, lb in zip(a.layers, b.layers):
        assert (la.act_min, la.act_max) == (lb.act_min, lb.act_max)
        if la.op == Op.LUT:
            np.testing.assert_array_equal(la.weight, lb.weight)
        if la.op in (Op.CONV, Op.DWCONV):
            np.testing.assert_array_equal(la.multiplier, lb.multiplier)
            np.testing.assert_array_equal(la.bias, lb.bias)
    xs = inputs(a, 2)
    for x, want in zip(xs, tflm(b, path, xs)):
        np.testing.assert_array_equal(refmodel.run(b, x).reshape(-1), want)
        np.testing.assert_array_equal(refmodel.run(a, x).reshape(-1), want)


def _one_line_refusal(model, *needles: str) -> None:
    with pytest.raises(UnsupportedModel) as err:
        tflite_bytes(model)
    text = str(err.value)
    assert "\n" not in text and "cannot export to .tflite" in text, text
    for n in needles:
        assert n in text, text


def test_requantising_concat_is_refused(tmp_path):
    """Branches quantised apart (an ONNX model calibrated branch by branch): TFLM's int8
    CONCATENATION copies bytes, so the export refuses rather than change the model."""
    rng = np.random.default_rng(1)
    b = IRBuilder("branches", (6, 6, 3), QParams(0.02, 0))
    ys = []
    for q in (QParams(0.05, -10), QParams(0.03, 5)):
        w, s = quantize_weights(rng.normal(0, 0.3, (4, 1, 1, 3)), 0)
        ys.append(b.conv(b.input, w, s, None, q))
    b.concat(ys[0], ys[1], QParams(0.05, -10))
    m = b.build()
    assert m.layers[-1].multiplier.tolist()[0] == 0 and m.layers[-1].multiplier[1] != 0
    _one_line_refusal(m, "layer 2", "input 1", "CONCATENATION requires the same", "requantises")
    with pytest.raises(UnsupportedModel):
        export_tflite(m, tmp_path / "x.tflite")
    assert not list(tmp_path.iterdir())  # nothing written


def test_other_tables_clamps_and_pool_pads_are_refused():
    rng = np.random.default_rng(0)

    def net():
        b = IRBuilder("odd", (8, 8, 3), QParams(0.02, 0))
        w, s = quantize_weights(rng.normal(0, 0.3, (4, 3, 3, 3)), 0)
        return b, b.conv(b.input, w, s, None, QParams(0.05, -10), pad=(1, 1, 1, 1))

    b, x = net()
    b.lut(x, rng.integers(-128, 128, 256).astype(np.int8), QParams(0.02, 0))
    _one_line_refusal(b.build(), "layer 1", "'lut' table has no TFLite operator")
    b, x = net()
    b.pool(x, "max", (3, 3), (2, 2), pad=(1, 1, 1, 1))
    _one_line_refusal(b.build(), "neither TFLite's SAME nor VALID")
    b, x = net()
    b.gap(x, QParams(0.01, 0))
    m = b.build()
    layers = list(m.layers)
    layers[1] = replace(layers[1], act_min=-100)
    _one_line_refusal(replace(m, layers=tuple(layers)), "MEAN takes no fused activation")


def test_padding_neither_same_nor_valid_becomes_a_pad(exported):
    """PyTorch's symmetric pad at stride 2 on an even size: a PAD, then a VALID conv, which
    the importer folds back into the conv's padding."""
    ir = zoo.load("squeezenet-r96")
    assert ir.layers[0].pad == (1, 1, 1, 1)
    from msfsim.importers.tflite.read import read_tflite
    path, m = exported("squeezenet-r96")
    assert [op.name for op in read_tflite(path).ops][:3] == ["PAD", "CONV_2D", "MAX_POOL_2D"]
    assert m.layers[0].pad == (1, 1, 1, 1)


def test_cli_writes_a_tflite_file_tflm_loads(tmp_path):
    from msfsim.importers.tflite import tflm_arena_bytes
    out = tmp_path / "sub" / "lenet.tflite"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "msfsim", "zoo", "export", *map(str, args)],
                              capture_output=True, text=True, timeout=300)
    r = cli("lenet5-r28", "-o", out)
    assert r.returncode == 0 and "int8 TFLite" in r.stderr, r.stderr
    assert out.read_bytes()[4:8] == b"TFL3"
    assert (tflm_arena_bytes(out) or 0) > 0
    assert len(import_tflite(out).layers) == len(zoo.load("lenet5-r28").layers)
    r = cli("lenet5-r28", "-o", tmp_path / "q.tflite", "--qdq")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--qdq applies to ONNX" in r.stderr and not (tmp_path / "q.tflite").exists()


def test_a_merged_table_is_refused_in_one_line(tmp_path):
    """Keras' swish (x * LOGISTIC(x)) imports as one table of x, which no TFLite operator
    computes: the export says so, naming the layer, and writes nothing."""
    with pytest.raises(UnsupportedModel, match=r"layer 2 \(lut '[^']+'\): a 'x\*logistic' "
                                               r"table has no TFLite operator"):
        export_tflite(import_tflite(tm.fixture("sigmoid_net")), tmp_path / "x.tflite")
    assert not list(tmp_path.iterdir())
