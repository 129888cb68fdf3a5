import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from msfsim import MsfsimError
from msfsim.ir import Op
from msfsim.importers.onnx import import_model, parse_input_shape

from onnx_models import residual_net


def save(tmp_path, model, name="m.onnx"):
    p = tmp_path / name
    onnx.save(model, p)
    return p


def test_folds_bn_activations_bias_and_flatten(tmp_path):
    m = import_model(save(tmp_path, residual_net()))
    assert [l.op for l in m.layers] == [Op.CONV, Op.DWCONV, Op.CONV, Op.ADD, Op.MAXPOOL, Op.DENSE]
    assert [l.activation for l in m.layers[:2]] == ["relu6", "relu"]
    conv1 = m.layers[0]
    q = m.tensor(conv1.output).q
    # ReLU6 clamps in the output's int8 domain: [zp, zp + 6/scale]
    assert conv1.act_min == max(-128, q.zero_point)
    assert conv1.act_max == min(127, q.zero_point + round(6.0 / q.scale))
    assert m.layers[3].inputs == (m.layers[2].output, conv1.output)  # residual reads the skip
    assert m.tensor(m.output).shape == (1, 1, 10)
    assert m.tensor(m.layers[4].output).q == m.tensor(m.layers[3].output).q  # max-pool keeps qparams
    assert m.layers[5].weight.shape == (10, 4 * 4 * 8)


def test_dense_weights_are_permuted_to_nhwc(tmp_path):
    """ONNX flattens NCHW; msfsim's dense weights must be reordered to NHWC columns."""
    proto = residual_net()
    m = import_model(save(tmp_path, proto))
    fc = next(i for i in proto.graph.initializer if i.name == "fc")
    w = onnx.numpy_helper.to_array(fc).T  # (10, C*H*W) in NCHW order
    c, h, wd = 8, 4, 4
    nhwc = w.reshape(10, c, h, wd).transpose(0, 2, 3, 1).reshape(10, -1)
    scale = np.abs(nhwc).max(axis=1) / 127
    expected = np.clip(np.round(nhwc / scale[:, None]), -127, 127).astype(np.int8)
    assert np.array_equal(m.layers[5].weight, expected)


def test_input_shape_option_fixes_dynamic_dims(tmp_path):
    proto = residual_net(input_dims=(1, 3, "H", "W"))
    p = save(tmp_path, proto)
    with pytest.raises(MsfsimError, match=r"dynamic or missing dimension H .*--input-shape"):
        import_model(p)
    m = import_model(p, input_shape="1x3x16x16")
    assert m.tensor(m.input).shape == (16, 16, 3)


def test_dynamic_batch_is_taken_as_one(tmp_path):
    m = import_model(save(tmp_path, residual_net(input_dims=("N", 3, 16, 16))))
    assert m.tensor(m.input).shape == (16, 16, 3)


@pytest.mark.parametrize("text,shape", [("1x3x144x144", (144, 144, 3)), ("3,32,32", (32, 32, 3))])
def test_parse_input_shape(text, shape):
    assert parse_input_shape(text) == shape


@pytest.mark.parametrize("bad", ["2x3x8x8", "3x8", "axb", "1x3x0x8"])
def test_parse_input_shape_rejects(bad):
    with pytest.raises(MsfsimError, match="--input-shape"):
        parse_input_shape(bad)


def test_missing_file(tmp_path):
    with pytest.raises(MsfsimError, match="no such file"):
        import_model(tmp_path / "nope.onnx")


def test_directory(tmp_path):
    with pytest.raises(MsfsimError, match="not a file"):
        import_model(tmp_path)


def test_not_onnx(tmp_path):
    p = tmp_path / "x.onnx"
    p.write_text("this is not a model\n" * 10)
    with pytest.raises(MsfsimError, match="not an ONNX model"):
        import_model(p)


def test_truncated(tmp_path):
    data = residual_net().SerializeToString()
    p = tmp_path / "t.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(MsfsimError, match="not an ONNX model or truncated|invalid ONNX model"):
        import_model(p)


def test_unsupported_op_names_node_and_lists_supported(tmp_path):
    proto = residual_net()
    for n in proto.graph.node:
        if n.name == "relu":
            n.op_type = "Round"
    with pytest.raises(MsfsimError) as e:
        import_model(save(tmp_path, proto))
    msg = str(e.value)
    assert "node 'relu'" in msg and "Round" in msg and "supported: " in msg and "Conv" in msg


def test_feature_vector_input_and_other_ranks(tmp_path):
    """An N x F input is a flat (1, F) vector (a MatMul on it: a dense layer); a batch of
    several vectors, or a 5-D input, is refused in one line."""
    w = onnx.numpy_helper.from_array(np.ones((16, 4), np.float32), "w")

    def mlp(dims):
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)
        g = helper.make_graph([helper.make_node("MatMul", ["input", "w"], ["out"])], "mlp", [x],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
                              [w])
        return save(tmp_path, helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))

    m = import_model(mlp([1, 16]))
    assert [la.op for la in m.layers] == [Op.DENSE] and m.tensor(m.input).shape == (1, 1, 16)
    with pytest.raises(MsfsimError, match="has batch 3; msfsim runs batch 1"):
        import_model(mlp([3, 16]))
    with pytest.raises(MsfsimError, match="5-D; msfsim needs a 4-D NCHW image input"):
        import_model(mlp([1, 1, 1, 1, 16]))


def test_two_outputs_cannot_be_scheduled(tmp_path):
    extra = [helper.make_node("Relu", ["a1"], ["side"], name="side")]
    outs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 10]),
            helper.make_tensor_value_info("side", TensorProto.FLOAT, [1, 8, 8, 8])]
    with pytest.raises(MsfsimError, match="2 graph outputs"):
        import_model(save(tmp_path, residual_net(extra_nodes=extra, outputs=outs)))


def test_activation_on_shared_tensor_is_a_table(tmp_path):
    """A Relu applied to a tensor that something else also reads cannot be folded: it is a
    table of its own (max(x, 0) on the dequantised input), and the layer before keeps no
    clamp."""
    from msfsim import refmodel
    proto = residual_net()
    # make the residual Add read the pre-activation dw output too: d1 now has two readers
    for n in proto.graph.node:
        if n.name == "res":
            n.input[1] = "d1"
    m = import_model(save(tmp_path, proto))
    relu = next(la for la in m.layers if la.name == "relu")
    assert relu.op == Op.LUT
    before = m.layers[relu.index - 1]
    assert before.op == Op.DWCONV and before.activation == "none"
    qi, qo = m.tensor(relu.inputs[0]).q, m.tensor(relu.output).q
    x = (np.arange(-128, 128) - qi.zero_point) * qi.scale
    want = np.clip(np.rint(np.maximum(x, 0) / qo.scale) + qo.zero_point, -128, 127)
    np.testing.assert_array_equal(relu.weight, want.astype(np.int8))
    xq = np.random.default_rng(0).integers(-128, 128, m.tensor(m.input).shape, dtype=np.int8)
    assert refmodel.run(m, xq).shape == m.tensor(m.output).shape


def _grouped(group, w_shape):
    proto = residual_net()
    for n in proto.graph.node:
        if n.name == "dw":
            for a in n.attribute:
                if a.name == "group":
                    a.i = group
    for i in proto.graph.initializer:
        if i.name == "wd":
            w = np.random.default_rng(3).normal(0, 0.3, w_shape).astype(np.float32)
            i.CopyFrom(onnx.numpy_helper.from_array(w, "wd"))
    return proto


def test_grouped_conv_is_a_block_diagonal_conv(tmp_path):
    m = import_model(save(tmp_path, _grouped(2, (8, 4, 3, 3))))
    conv = m.layers[1]
    assert conv.op == Op.CONV and conv.weight.shape == (8, 3, 3, 8)
    assert not np.any(conv.weight[:4, :, :, 4:]) and not np.any(conv.weight[4:, :, :, :4])
    assert np.all(np.abs(conv.weight[:4, :, :, :4]).max(axis=(1, 2, 3)) == 127)


def test_grouped_conv_that_does_not_split_is_rejected(tmp_path):
    with pytest.raises(MsfsimError, match=r"node 'dw' \(Conv, output 'd1'\): group=3 with 8 "
                                          r"input .* do not split into 3 groups"):
        import_model(save(tmp_path, _grouped(3, (8, 4, 3, 3))))


def test_float_model_matches_onnxruntime_within_quantisation(tmp_path):
    """The calibrated int8 IR, run in float through dequantised weights, tracks onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    p = save(tmp_path, residual_net())
    m = import_model(p)
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    ref = sess.run(None, {"input": x})[0].ravel()
    assert ref.shape == (10,) and m.tensor(m.output).shape == (1, 1, 10)
    q = m.tensor(m.output).q
    assert np.all(np.abs(ref) < 128 * q.scale * 2)  # calibrated range covers the real outputs


def ort_quantize(tmp_path, proto, shape):
    """QDQ model as onnxruntime's own quantiser writes it (real exporter output)."""
    q = pytest.importorskip("onnxruntime.quantization")
    src, dst = tmp_path / "f.onnx", tmp_path / "qdq.onnx"
    onnx.save(proto, src)

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": np.random.default_rng(i).uniform(-1, 1, shape).astype(np.float32)}
                            for i in range(4)])

        def get_next(self):
            return next(self.it, None)

    q.quantize_static(str(src), str(dst), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8)
    return dst


def test_qdq_from_onnxruntime_quantiser(tmp_path):
    """Unfolded BN between QDQ pairs, ReLU6 absorbed into the Q range, per-channel int8 weights."""
    p = ort_quantize(tmp_path, residual_net(), (1, 3, 16, 16))
    m = import_model(p)
    f = import_model(save(tmp_path, residual_net()))
    assert [l.op for l in m.layers] == [l.op for l in f.layers]
    assert [m.tensor(l.output).shape for l in m.layers] == [f.tensor(l.output).shape for l in f.layers]
    # qparams come from the model's QuantizeLinear nodes, not from msfsim's calibration
    qdq = onnx.load(p)
    zps = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer}
    q_nodes = {n.input[0]: n for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    a1 = next(t for t in m.tensors if t.name == "a1")
    assert a1.q.scale == pytest.approx(float(zps[q_nodes["a1"].input[1]]))
    assert a1.q.zero_point == int(zps[q_nodes["a1"].input[2]])
    # int8 weights are taken as stored (no re-quantisation) apart from BN's sign folding
    w_int = zps[next(n for n in qdq.graph.node if n.name == "pw").input[1].replace("_DequantizeLinear_Output", "_quantized")]
    assert np.array_equal(np.abs(m.layers[2].weight), np.abs(w_int.transpose(0, 2, 3, 1)))
