"""msfsim's int8 arithmetic against onnxruntime on QDQ models.

onnxruntime requantises in float32 with round-half-to-even; msfsim (like CMSIS-NN and TFLite
Micro) uses Q31 fixed-point multipliers. Given the same int8 input, every layer therefore agrees
exactly or differs by 1 LSB on a few elements. End to end the differences compound, so the
comparison is made layer by layer on onnxruntime's own int8 intermediates.
"""
import numpy as np
import onnx
import pytest

from msfsim import refmodel, zoo
from msfsim.importers.onnx import import_model

ort = pytest.importorskip("onnxruntime")


def ort_intermediates(proto, model, xq):
    """onnxruntime's int8 value of every IR tensor (the QuantizeLinear output that carries it)."""
    qname = {n.input[0]: n.output[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    p = onnx.ModelProto()
    p.CopyFrom(proto)
    for t in model.tensors:
        p.graph.output.append(onnx.helper.make_tensor_value_info(qname[t.name], onnx.TensorProto.INT8, None))
    sess = ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
    tin = model.tensor(model.input)
    xf = ((xq.astype(np.float32) - tin.q.zero_point) * tin.q.scale).transpose(2, 0, 1)[None]
    res = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": xf})))
    out = {}
    for t in model.tensors:
        a = res[qname[t.name]]
        out[t.id] = a[0].transpose(1, 2, 0) if a.ndim == 4 else a.reshape(t.shape)
    return out


@pytest.mark.parametrize("name", ["lenet5-r28", "resnet8-r32", "dscnn-kws", "vww-mbv1-0.25-r96",
                                  "mcunet-res-r96", "mobilenetv2-w0.35-r144", "mcunetv2-vww5-r80"])
def test_each_layer_within_one_lsb_of_onnxruntime(name):
    proto = zoo.build_onnx(name, qdq=True)
    m = import_model(proto, name=name)
    xq = np.random.default_rng(0).integers(-128, 128, m.tensor(m.input).shape, dtype=np.int8)
    vals = ort_intermediates(proto, m, xq)
    assert np.array_equal(vals[m.input], xq)
    worst, differing, total = 0, 0, 0
    for layer in m.layers:
        ours = refmodel.run_layer(m, layer, vals).astype(np.int32)
        d = np.abs(ours - vals[layer.output].astype(np.int32))
        worst = max(worst, int(d.max()))
        differing += int((d > 0).sum())
        total += d.size
    assert worst <= 1, f"{name}: a layer differs from onnxruntime by {worst} LSB"
    assert differing / total < 0.02, f"{name}: {differing}/{total} elements differ by 1 LSB"
