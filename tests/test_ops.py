"""The op registry (msfsim.ops): every IR op has a module, and what each op module says (shape,
int8 reference, MACs, scratch, ONNX lowering, float evaluation, C dispatch) is what the rest of
the pipeline (IR, refmodel, fusion cost model, generated C, executor, importer) does."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from msfsim import ROOT, ops, refmodel
from msfsim.codegen import generate_block
from msfsim.fusion.block import LAYER, Block, BlockConfig
from msfsim.fusion.exact import block_cost
from msfsim.fusion.geometry import block_structure
from msfsim.fusion.memplan import align, block_plan
from msfsim.importers.onnx import SUPPORTED_OPS, import_model
from msfsim.importers.onnx.calibrate import float_layer
from msfsim.importers.onnx.walk import Importer
from msfsim.ir import Model, Op
from msfsim.ops import ctable
from test_executor import Net, random_input, run_counting


def all_ops_net(seed: int = 0) -> Model:
    """One layer of every op: conv 3x3, dwconv, conv 1x1, add, sub, lut (a table per
    channel), mul, concat, softmax over a map, max and avg pool, gap, dense, softmax."""
    n = Net("all_ops", (9, 8, 3), seed)
    x = n.conv(n.b.input, 6, 3, 1)                                      # 0 conv 3x3
    y = n.conv(x, 0, 3, 1, dw=True)                                     # 1 dwconv
    y = n.conv(y, 6, 1, act="none")                                     # 2 conv 1x1
    x = n.add(y, x)                                                     # 3 add
    x = ops.get(Op.SUB).build(n.b, x, y, n.q())                         # 4 sub
    table = np.random.default_rng(seed).integers(-128, 128, (6, 256)).astype(np.int8)
    y = n.b.lut(x, table, n.q())                                        # 5 lut
    x = n.b.mul(y, x, n.q())                                            # 6 mul
    x = n.b.concat(x, y, n.q())                                         # 7 concat
    x = ops.get(Op.SOFTMAX_MAP).build(n.b, x)                           # 8 softmax_map
    x = n.b.pool(x, "max", (2, 2), (2, 2))                              # 9 maxpool
    x = n.b.pool(x, "avg", (3, 3), (1, 1), (1, 1, 1, 1), out_q=n.q())   # 10 avgpool
    x = n.b.gap(x, n.q())                                               # 11 gap
    x = n.dense(x, 5)                                                   # 12 dense
    ops.get(Op.SOFTMAX).build(n.b, x)                                   # 13 softmax
    return n.b.build(merge=False)  # the mul of x and table(x) stays a mul


def all_ops_onnx(seed: int = 0) -> onnx.ModelProto:
    """The same ops as an ONNX float graph (with the idioms that fold into them)."""
    rng = np.random.default_rng(seed)
    f32 = lambda name, a: numpy_helper.from_array(np.asarray(a, np.float32), name)  # noqa: E731
    inits = [f32("w1", rng.normal(0, 0.3, (6, 3, 3, 3))), f32("b1", rng.normal(0, 0.1, 6)),
             f32("wd", rng.normal(0, 0.3, (6, 1, 3, 3))), f32("w2", rng.normal(0, 0.3, (6, 6, 1, 1))),
             f32("fc", rng.normal(0, 0.3, (5, 12))), f32("fcb", rng.normal(0, 0.1, 5))]
    mk = helper.make_node
    nodes = [mk("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv"),
             mk("Relu", ["c1"], ["r1"], name="relu"),
             mk("Conv", ["r1", "wd"], ["d1"], group=6, pads=[1, 1, 1, 1], name="dw"),
             mk("Conv", ["d1", "w2"], ["p1"], name="pw"),
             mk("Add", ["p1", "r1"], ["a1"], name="add"),
             mk("HardSwish", ["a1"], ["hs"], name="hardswish"),
             mk("HardSigmoid", ["hs"], ["hsg"], alpha=0.25, name="hardsigmoid"),
             mk("Mul", ["hsg", "r1"], ["ml"], name="mul"),  # not x * f(x): a mul, no table
             mk("Concat", ["ml", "hs"], ["cc"], axis=1, name="concat"),
             mk("Sigmoid", ["cc"], ["sg"], name="sigmoid"),
             mk("MaxPool", ["sg"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="maxpool"),
             mk("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                count_include_pad=1, name="avgpool"),
             mk("GlobalAveragePool", ["ap"], ["g"], name="gap"),
             mk("Flatten", ["g"], ["f"], name="flatten"),
             mk("Gemm", ["f", "fc", "fcb"], ["out"], transB=1, name="dense")]
    g = helper.make_graph(nodes, "all_ops",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 9, 8])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)


# ------------------------------------------------------------------ the registry itself

def test_every_ir_op_has_an_op_module():
    assert set(ops.REGISTRY) == set(Op)
    for op, opdef in ops.REGISTRY.items():
        assert opdef.op is op and ops.get(op) is opdef
        assert type(opdef).__module__.startswith("msfsim.ops."), op
        assert opdef.spatial != opdef.tail, f"{op.value}: spatial or tail, exactly one"
        assert not (opdef.windowed or opdef.elementwise or opdef.folds_in_place) or opdef.spatial
        assert not opdef.follows_tail or opdef.tail
        assert opdef.c_kernels, f"{op.value} has no executor op code"


def test_op_modules_are_discovered():
    """Every module of msfsim.ops but the helpers registers an op (no import list to edit)."""
    import pkgutil
    modules = {m.name for m in pkgutil.iter_modules(ops.__path__)}
    assert ops.HELPERS <= modules
    assert {type(o).__module__.rsplit(".", 1)[1] for o in ops.REGISTRY.values()} == \
        modules - ops.HELPERS


def test_executor_table_is_generated_from_the_registry():
    assert ctable.HEADER.read_text() == ctable.render(), \
        "kernels_c/msf_op_table.h is stale: run python -m msfsim.ops.ctable"
    kernels = ops.c_kernels()
    assert len({k.value for k in kernels}) == len({k.code for k in kernels}) == len(kernels)
    for opdef in ops.REGISTRY.values():
        for k in opdef.c_kernels:
            if opdef.tail:
                assert k.tail_init and k.tail_feed and k.tail_finish and not k.spatial, k.code
            else:
                assert k.spatial and not k.tail_init, k.code
    assert ctable.main(["--check"]) == 0


def test_onnx_lowerings_are_unique_and_supported():
    lowered = ops.onnx_lowerings()
    assert set(lowered) <= set(SUPPORTED_OPS)
    assert len(SUPPORTED_OPS) == len(set(SUPPORTED_OPS))


def test_importing_every_op():
    model = import_model(all_ops_onnx())
    assert [layer.op for layer in model.layers] == [
        Op.CONV, Op.DWCONV, Op.CONV, Op.ADD, Op.LUT, Op.LUT, Op.MUL, Op.CONCAT, Op.LUT,
        Op.MAXPOOL, Op.AVGPOOL, Op.GAP, Op.DENSE]


def test_refmodel_keeps_its_op_functions():
    assert refmodel.conv is ops.conv.conv and refmodel.dwconv is ops.dwconv.dwconv
    assert refmodel.maxpool is ops.pool.maxpool and refmodel.avgpool is ops.pool.avgpool
    assert refmodel.gap is ops.gap.gap and refmodel.dense is ops.dense.dense
    assert refmodel.add is ops.add.add
    assert refmodel.lut is ops.lut.lut and refmodel.mul is ops.mul.mul
    assert refmodel.concat is ops.concat.concat
    with pytest.raises(AttributeError):
        refmodel.no_such_op  # noqa: B018


@pytest.mark.parametrize("first", ["msfsim.ops", "msfsim.importers.onnx", "msfsim.ir",
                                   "msfsim.refmodel", "msfsim.fusion.exact", "msfsim.codegen",
                                   "msfsim.importers.tflite"])
def test_any_import_order_works(first):
    code = (f"import {first}\nimport msfsim.ir as ir, msfsim.ops as ops\n"
            "assert set(ops.REGISTRY) == set(ir.Op)\n"
            "from msfsim.importers.onnx import import_model, calibrate, SUPPORTED_OPS\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ------------------------------------------------------------------ what each op says = the pipeline

@pytest.fixture(scope="module")
def net():
    model = all_ops_net(1)
    return model, refmodel.run_layers(model, random_input(model, 2))


def test_the_random_model_has_every_op(net):
    model, _ = net
    assert {layer.op for layer in model.layers} == set(Op)
    codes = {ops.get(layer.op).c_op(layer) for layer in model.layers}
    assert {"MSF_OP_CONV_1X1", "MSF_OP_LUT_CHANNELS"} <= codes


@pytest.mark.parametrize("index", range(14))
def test_shape_reference_and_macs_agree_with_the_pipeline(net, index):
    model, values = net
    layer = model.layers[index]
    opdef = ops.get(layer.op)
    ins = [values[t] for t in layer.inputs]
    # shape rule = the IR's shape of the layer output
    assert opdef.out_shape(layer, [model.tensor(t).shape for t in layer.inputs]) == \
        model.out_shape(layer)
    # int8 reference = refmodel's layer-by-layer run = the C kernel through the executor
    ref = opdef.reference(model, layer, ins)
    np.testing.assert_array_equal(ref, values[layer.output])
    block = Block(index, index, LAYER)
    block_inputs = block_structure(model, index, index).inputs
    out, high_water, macs = run_counting(generate_block(model, block),
                                         np.concatenate([values[t].ravel() for t in block_inputs]))
    np.testing.assert_array_equal(out.reshape(ref.shape), ref)
    # MACs = the IR's = the exact cost model's = what the kernels ran
    cost = block_cost(model, block)
    assert opdef.macs(model, layer) == model.macs(layer) == cost.macs == macs
    assert high_water == cost.act_io
    # scratch and accumulators = the buffers the memory plan gives the layer
    plan = block_plan(model, block)
    scratch, acc = plan.get("scratch"), plan.get("acc")
    assert (scratch.size if scratch else 0) == align(opdef.scratch(model, layer))
    assert (acc.size if acc else 0) == (align(opdef.tail_acc(model, layer)) if opdef.tail else 0)
    # the executor op code is one of the op's
    assert opdef.c_op(layer) in {k.code for k in opdef.c_kernels}
    assert layer.is_spatial == opdef.spatial


def test_fused_blocks_of_every_op_agree(net):
    """conv .. gap .. dense .. softmax fused (hcache), and the spatial part alone (stream2d)."""
    model, values = net
    for block in (Block(0, 13, BlockConfig((2, 2), "hcache")),
                  Block(0, 10, BlockConfig((1, 3), "stream2d"))):
        out, high_water, macs = run_counting(generate_block(model, block),
                                             values[model.input].ravel())
        want = values[model.layers[block.last].output]
        np.testing.assert_array_equal(out.reshape(want.shape), want, err_msg=block.key)
        cost = block_cost(model, block)
        assert (macs, high_water) == (cost.macs, cost.act_io), block.key


def test_float_evaluation_matches_onnxruntime():
    """Each op's float_eval (calibration) computes what the ONNX graph computes."""
    ort = pytest.importorskip("onnxruntime")
    proto = all_ops_onnx(3)
    x = np.random.default_rng(4).uniform(-1, 1, (1, 3, 9, 8)).astype(np.float32)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"input": x})[0]
    im = Importer(proto, "all_ops", None)
    im.run()
    env = {im.canon(im.input_name): x.transpose(0, 2, 3, 1).astype(np.float64)}
    for layer in im.layers:
        env[layer.output] = float_layer(layer, [env[im.canon(i)] for i in layer.inputs])
    got = env[im.layers[-1].output].reshape(1, -1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
