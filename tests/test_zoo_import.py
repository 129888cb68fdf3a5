"""Every zoo model, float and QDQ, imports to the expected layer graph (issue: foundation)."""
import numpy as np
import onnx
import pytest

from msfsim import zoo
from msfsim.ir import Op
from msfsim.importers.onnx import import_model

MODELS = zoo.list_models()


def structure(m):
    return [(l.op, l.kernel, l.stride, l.pad, m.tensor(l.output).shape,
             tuple(m.tensor(t).shape for t in l.inputs)) for l in m.layers]


@pytest.mark.parametrize("name,layers", [(r[0], r[3]) for r in MODELS])
def test_export_import_layer_count_and_output_shape(tmp_path, name, layers):
    ort = pytest.importorskip("onnxruntime")
    p = tmp_path / f"{name}.onnx"
    zoo.export(name, p)
    m = import_model(p)
    assert len(m.layers) == layers
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.zeros([d if isinstance(d, int) else 1 for d in inp.shape], np.float32)
    y = sess.run(None, {inp.name: x})[0]
    assert int(np.prod(y.shape)) == int(np.prod(m.tensor(m.output).shape))
    assert m.tensor(m.output).shape[2] == y.shape[1]


@pytest.mark.parametrize("name", [r[0] for r in MODELS])
def test_float_and_qdq_import_to_the_same_structure(tmp_path, name):
    f = import_model(zoo.build_onnx(name), name=name)
    q = import_model(zoo.build_onnx(name, qdq=True), name=name)
    assert structure(f) == structure(q)


def test_published_proxies_have_the_published_layer_counts():
    counts = {r[0]: r[3] for r in MODELS}
    assert (counts["mbv2-w0.35-r144"], counts["mcunetv2-vww5-r80"], counts["mcunet-320kb-r176"]) == (53, 45, 54)


def test_real_nets_keep_their_residuals():
    m = zoo.load("mobilenetv2-w0.35-r144")
    assert any(l.op == Op.ADD for l in m.layers)
    assert m.layers[-1].op == Op.DENSE and any(l.op == Op.GAP for l in m.layers)
    r = zoo.load("resnet8-r32")
    # shortcut convs read a tensor other than the previous layer's output
    assert any(l.op == Op.CONV and l.inputs[0] != r.layers[l.index - 1].output for l in r.layers[1:])


def test_export_is_atomic_and_deterministic(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    zoo.export("lenet5-r28", a)
    zoo.export("lenet5-r28", b)
    assert a.read_bytes() == b.read_bytes()
    assert not list(tmp_path.glob(".*tmp*"))
    onnx.checker.check_model(onnx.load(a))
