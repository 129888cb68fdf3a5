"""1-D models (torch's Conv1d: an N x C x L input) as the 2-D models msfsim imports.

Every tensor of rank 3 (N x C x L) becomes N x C x 1 x L: msfsim's map of height 1, the same
values in the same order. The graph is rewritten before the import, node by node, where the
rank matters:
- Conv, MaxPool, AveragePool: kernel (1, k), strides, dilations and pads of height 1 / 0; a
  Conv's weights (O, I, k) -> (O, I, 1, k) (an initializer, or one behind a DequantizeLinear);
- Reduce* over L: over H and L (H is 1: the same values); Flatten, Concat, Softmax, Split,
  Slice, Gather: their axis moved past H; Pad: no padding of H;
- Reshape to rank 3: the shape constant with 1 for H; Unsqueeze inserting H / Squeeze removing
  it (torch's adaptive_avg_pool1d): Identity;
- a constant of rank 2 or 3 broadcast against a sequence (a per-channel (C, 1) scale): H
  inserted before its last axis.
Rank-agnostic ops (BatchNormalization, activations, GlobalAveragePool, Gemm on flat tensors...)
are unchanged; any other op reading a sequence is refused in one line. A graph whose ranks
ONNX's shape inference cannot give is left as it is (the importer refuses its rank-3 input).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from msfsim import UnsupportedModel
from msfsim.importers.onnx.load import node_label
from msfsim.importers.onnx.nodes import attrs

# ops that read a sequence without any axis or rank in their attributes
RANK_AGNOSTIC = {"BatchNormalization", "Relu", "Clip", "Sigmoid", "Tanh", "HardSigmoid",
                 "HardSwish", "LeakyRelu", "Elu", "Selu", "Softplus", "Softsign", "Mish", "Erf",
                 "Gelu", "Abs", "Neg", "Identity", "Dropout", "Cast", "GlobalAveragePool",
                 "GlobalMaxPool", "QuantizeLinear", "DequantizeLinear", "Shape"}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "PRelu"}
WINDOWED = {"Conv", "MaxPool", "AveragePool"}
REDUCE = {"ReduceMean", "ReduceMax"}
AXIS_ATTR = {"Concat", "Softmax", "Split", "Gather"}
H = 2  # the axis inserted into a sequence N x C x L
SMALL = 4096  # values of a tensor in a constant chain the rewrite evaluates


def _lift_axis(a: int, rank: int = 3) -> int:
    """Axis a of a sequence (N, C, L) in its lifted N x C x 1 x L."""
    a = a % rank
    return a + (a >= H)


def _lift_axes(axes: list[int]) -> list[int]:
    """Axes of a sequence (N, C, L), normalised, in its lifted N x C x 1 x L: L's with H."""
    return sorted([_lift_axis(a) for a in axes] + ([H] if H in axes else []))


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    for k, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[k]
            break
    node.attribute.append(helper.make_attribute(name, value))


def lift(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its sequences made maps of height 1 (unchanged if its input is not a
    rank-3 tensor)."""
    g = proto.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 3:
        return proto
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    except Exception:  # not a consistent 1-D model (an image without its batch, say): the
        return proto   # importer refuses its rank-3 input
    dims: dict[str, list[int | None]] = {}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        if vi.type.tensor_type.HasField("shape"):
            dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None
                             for d in vi.type.tensor_type.shape.dim]
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    Lifter(out, dims, list(proto.opset_import)).run()
    return out


class Lifter:
    def __init__(self, proto: onnx.ModelProto, dims: dict[str, list[int | None]],
                 opsets: list[onnx.OperatorSetIdProto]):
        self.g = proto.graph
        self.opsets = opsets
        self.dims = dims
        self.rank = {name: len(d) for name, d in dims.items()}
        self.init = {i.name: i for i in self.g.initializer}
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.consts = {n.output[0]: n for n in self.g.node
                       if n.op_type == "Constant" and n.output}
        self.seq: set[str] = set()  # the activations of rank 3: lifted

    def fail(self, node: onnx.NodeProto, msg: str) -> UnsupportedModel:
        return UnsupportedModel(f"{node_label(node)}: {msg} (a 1-D model: msfsim reads its "
                                f"N x C x L sequences as N x C x 1 x L maps)")

    # -------------------------------------------------------------- constants
    def value(self, node: onnx.NodeProto, k: int) -> np.ndarray | None:
        """Input k's value when it is a constant: an initializer, a Constant, or computed from
        them alone (TorchScript's F.pad writes its pads as Concat / Reshape / Transpose / Cast
        of constants), by ONNX's reference evaluator; None when it depends on the input."""
        name = node.input[k] if k < len(node.input) else ""
        if name in self.init:
            return numpy_helper.to_array(self.init[name])
        if name in self.consts:
            v = attrs(self.consts[name]).get("value")
            return numpy_helper.to_array(v) if v is not None else None
        return self.computed(name) if name else None

    def computed(self, name: str, limit: int = 64) -> np.ndarray | None:
        """A tensor computed from constants only (at most `limit` nodes, each output of known
        shape and at most SMALL values: a model cannot make this allocate), else None."""
        needed: dict[int, onnx.NodeProto] = {}
        todo = [name]
        while todo:
            t = todo.pop()
            if not t or t in self.init:
                continue
            src = self.producer.get(t)
            if src is None or len(needed) >= limit:
                return None  # the graph input (or too long a chain)
            if id(src) not in needed:
                for o in src.output:
                    d = self.dims.get(o)
                    if d is None or None in d or int(np.prod(d, dtype=np.int64)) > SMALL:
                        return None
                needed[id(src)] = src
                todo.extend(src.input)
        order = [n for n in self.g.node if id(n) in needed]
        inits = sorted({i for n in order for i in n.input if i in self.init})
        sub = helper.make_graph(order, "constants", [], [helper.make_tensor_value_info(
            name, onnx.TensorProto.UNDEFINED, None)], [self.init[i] for i in inits])
        try:
            from onnx.reference import ReferenceEvaluator
            model = helper.make_model(sub, opset_imports=self.opsets)
            return np.asarray(ReferenceEvaluator(model).run(None, {})[0])
        except Exception:  # not computable here: the caller refuses the node
            return None

    def replace_input(self, node: onnx.NodeProto, k: int, value: np.ndarray) -> None:
        """Input k of node as a new initializer holding `value` (the old one may be shared)."""
        name = f"{node.input[k]}_lifted_{len(self.g.initializer)}"
        self.g.initializer.append(numpy_helper.from_array(value, name))
        node.input[k] = name

    def axes(self, node: onnx.NodeProto) -> tuple[list[int] | None, int | None]:
        """(the axes, the input index holding them or None for the attribute)."""
        a = attrs(node).get("axes")
        if a is not None:
            return [int(v) for v in a], None
        if len(node.input) > 1 and node.input[1]:
            v = self.value(node, 1)
            if v is None:
                raise self.fail(node, "axes must be a constant")
            return [int(x) for x in np.asarray(v).ravel()], 1
        return None, None

    def set_axes(self, node: onnx.NodeProto, axes: list[int], where: int | None) -> None:
        if where is None:
            _set_attr(node, "axes", axes)
        else:
            self.replace_input(node, where, np.array(axes, np.int64))

    # -------------------------------------------------------------- the rewrite
    def run(self) -> None:
        inp = next(i for i in self.g.input if i.name not in self.init)
        self.seq.add(inp.name)
        acts = {inp.name}  # what the input reaches
        inp.type.tensor_type.shape.dim.insert(H, onnx.TensorShapeProto.Dimension(dim_value=1))
        for node in self.g.node:
            if not any(i in acts for i in node.input if i):
                continue
            acts.update(node.output)
            if any(i in self.seq for i in node.input if i):
                self.node(node)
            elif any(self.rank.get(o) == 3 for o in node.output):
                self.becomes_sequence(node)
            for o in node.output:
                if self.rank.get(o) == 3:
                    self.seq.add(o)
        for o in self.g.output:
            if o.name in self.seq and o.type.tensor_type.HasField("shape"):
                o.type.tensor_type.shape.dim.insert(H, onnx.TensorShapeProto.Dimension(
                    dim_value=1))
        del self.g.value_info[:]

    def becomes_sequence(self, node: onnx.NodeProto) -> None:
        """A node making a sequence of a tensor that is not one: a Squeeze of the height of
        an N x C x 1 x L map is that map; a Reshape of a flat tensor gets H in its shape."""
        if node.op_type == "Squeeze":
            axes, _ = self.axes(node)
            if axes is not None and [a % 4 for a in axes] == [H]:
                self.identity(node)
                return
        elif node.op_type == "Reshape":
            self.reshape(node)
            return
        raise self.fail(node, f"a {node.op_type} making a sequence is not supported")

    def reshape(self, node: onnx.NodeProto) -> None:
        shape = self.value(node, 1)
        if shape is None:
            raise self.fail(node, "a Reshape to a sequence needs a constant shape")
        self.replace_input(node, 1, np.insert(np.asarray(shape, np.int64).ravel(), H, 1))

    def node(self, node: onnx.NodeProto) -> None:
        op = node.op_type
        if op in RANK_AGNOSTIC:
            return
        if op in WINDOWED:
            self.windowed(node)
        elif op in ELEMENTWISE:
            for k in range(len(node.input)):
                holder, j = self.constant_source(node, k)
                v = self.value(holder, j)
                if v is not None and v.ndim in (2, 3):
                    self.replace_input(holder, j, np.expand_dims(v, v.ndim - 1))
        elif op in REDUCE:
            self.reduce(node)
        elif op == "Flatten":  # (N, C, L) at axis a: H (size 1) joins either side alike
            a = attrs(node).get("axis")
            a = 1 if a is None else int(a) + 3 if int(a) < 0 else int(a)  # of rank 3
            _set_attr(node, "axis", a + (a == 3))
        elif op in AXIS_ATTR:
            a = attrs(node).get("axis")
            a = -1 if a is None and op == "Softmax" else (0 if a is None else int(a))
            _set_attr(node, "axis", _lift_axis(a, self.rank.get(node.input[0], 3)))
        elif op == "Slice":
            self.slice(node)
        elif op == "Pad":
            self.pad(node)
        elif op == "Reshape":
            if self.rank.get(node.output[0]) == 3:
                self.reshape(node)
        elif op == "Squeeze":  # of L (and N): of H and L
            axes, where = self.axes(node)
            norm = sorted({a % 3 for a in axes}) if axes is not None else []
            if H not in norm or 1 in norm:
                raise self.fail(node, f"a Squeeze of a sequence at axes {axes} is not "
                                      f"supported (only of its length)")
            self.set_axes(node, _lift_axes(norm), where)
        elif op == "Unsqueeze":
            axes, _ = self.axes(node)
            if axes is None or [a % 4 for a in axes] != [H]:
                raise self.fail(node, f"an Unsqueeze of a sequence at axes {axes} is not "
                                      f"supported (only of its height, axis 2)")
            self.identity(node)
        else:
            raise self.fail(node, f"{op} of a sequence is not supported")

    def identity(self, node: onnx.NodeProto) -> None:
        del node.input[1:]
        del node.attribute[:]
        node.op_type = "Identity"
        node.domain = ""

    def windowed(self, node: onnx.NodeProto) -> None:
        for name, fill in (("kernel_shape", 1), ("strides", 1), ("dilations", 1)):
            v = attrs(node).get(name)
            if v is not None:
                if len(v) != 1:
                    raise self.fail(node, f"{name} {list(v)} for a sequence")
                _set_attr(node, name, [fill, int(v[0])])
        p = attrs(node).get("pads")
        if p is not None:
            if len(p) != 2:
                raise self.fail(node, f"pads {list(p)} for a sequence")
            _set_attr(node, "pads", [0, int(p[0]), 0, int(p[1])])
        if node.op_type != "Conv":
            return
        holder, k = self.constant_source(node, 1)
        v = self.value(holder, k)
        if v is None or v.ndim != 3:
            raise self.fail(node, "the weights of a Conv of a sequence must be a constant of "
                                  "rank 3")
        self.replace_input(holder, k, np.expand_dims(v, H))

    def constant_source(self, node: onnx.NodeProto, k: int) -> tuple[onnx.NodeProto, int]:
        """Where input k's constant is held: (node, k), or the DequantizeLinear producing it
        and its input 0 (a QDQ model's int8 weights and constants)."""
        src = self.producer.get(node.input[k]) if k < len(node.input) else None
        if src is not None and src.op_type == "DequantizeLinear":
            return src, 0
        return node, k

    def reduce(self, node: onnx.NodeProto) -> None:
        axes, where = self.axes(node)
        if axes is None:
            return  # every axis: the same values
        norm = sorted({a % 3 for a in axes})
        keep = attrs(node).get("keepdims")
        if keep == 0 and H not in norm:
            raise self.fail(node, f"a reduction over axes {axes} without keepdims")
        self.set_axes(node, _lift_axes(norm), where)

    def slice(self, node: onnx.NodeProto) -> None:
        if len(node.input) < 4 or not node.input[3]:
            raise self.fail(node, "a Slice of a sequence needs its axes")
        axes = self.value(node, 3)
        if axes is None:
            raise self.fail(node, "axes must be a constant")
        self.replace_input(node, 3, np.array([_lift_axis(int(a)) for a in
                                              np.asarray(axes).ravel()], np.int64))

    def pad(self, node: onnx.NodeProto) -> None:
        pads = self.value(node, 1) if len(node.input) > 1 and node.input[1] else None
        if pads is None or np.asarray(pads).size != 6:
            raise self.fail(node, "a Pad of a sequence needs 6 constant pads")
        p = np.asarray(pads, np.int64).ravel()
        self.replace_input(node, 1, np.array([p[0], p[1], 0, p[2], p[3], p[4], 0, p[5]],
                                             np.int64))
