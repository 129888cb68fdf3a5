"""Untrusted model files: external data, non-finite constants, absurd sizes, zero dimensions and
contradicting --input-shape are refused through the CLI with exit 2 and one error line naming the
file, node, tensor and size -- never a traceback, a numpy warning or a MemoryError.

Every model is built here with onnx.helper (no binary blobs)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from msfsim import MsfsimError
from msfsim.cli import main
from msfsim.importers.onnx import MAX_TENSOR_ELEMENTS, import_model

# Any warning (numpy's RuntimeWarning included) becomes an error, which the CLI would report as
# an internal error: the assertions below would then fail.
pytestmark = pytest.mark.filterwarnings("error")

SEARCH = ["search", None, "--platform", "stm32f746", "--cost", "analytic"]


def _f32(name: str, a) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def tiny(dims=(1, 3, 8, 8), w=None, b=None, conv_name="conv", conv_attrs=None, extra=(),
         extra_inits=(), out="out", qdq=False, w_scale=None) -> onnx.ModelProto:
    """input -> Conv 3x3 (3 -> 4 channels, pads 1) -> Relu -> out; variants through the args.

    qdq: the weights are int8 behind a DequantizeLinear with scale `w_scale` (per channel)."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (4, 3, 3, 3)) if w is None else w
    b = rng.normal(0, 0.1, 4) if b is None else b
    attrs = {"pads": [1, 1, 1, 1], **(conv_attrs or {})}
    inits = []
    nodes = []
    if qdq:
        q = np.clip(np.round(np.asarray(w) / 0.01), -127, 127).astype(np.int8)
        inits += [numpy_helper.from_array(q, "w_q"),
                  _f32("w_scale", np.full(4, 0.01) if w_scale is None else w_scale),
                  numpy_helper.from_array(np.zeros(4, np.int8), "w_zp")]
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"],
                                      axis=0, name="w_dq"))
    else:
        inits.append(_f32("w", w))
    inits += [_f32("b", b), *extra_inits]
    nodes += [helper.make_node("Conv", ["input", "w", "b"], ["c"], name=conv_name, **attrs),
              *extra,
              helper.make_node("Relu", [extra[-1].output[0] if extra else "c"], [out], name="relu")]
    g = helper.make_graph(nodes, "tiny",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    # the output's shape is left to the importer (declaring it would make the checker the judge)
    g.output[0].type.tensor_type.shape.SetInParent()
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def save(path, proto, external=False) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:  # as torch>=2.9 writes it: every initializer in MODEL.onnx.data beside it
        onnx.save(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(proto, path)
    return str(path)


def set_external(path, key: str, value: str, tensor: str = "w") -> None:
    """Rewrite one external_data entry of `tensor` in the saved model at `path`."""
    proto = onnx.load(path, load_external_data=False)
    t = next(i for i in proto.graph.initializer if i.name == tensor)
    entries = {e.key: e for e in t.external_data}
    if key in entries:
        entries[key].value = value
    else:
        e = t.external_data.add()
        e.key, e.value = key, value
    onnx.save(proto, path)


def run_cli(capsys, model, *extra) -> tuple[int, str, str]:
    argv = [str(model) if a is None else a for a in SEARCH] + list(extra)
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_refused(capsys, model, *needles, extra=(), code=2) -> str:
    rc, _, err = run_cli(capsys, model, *extra)
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("msfsim: error: "), line
    for bad in ("Traceback", "internal error", "RuntimeWarning", "MemoryError"):
        assert bad not in line, line
    for n in needles:
        assert n in line, line
    return line


def ir_arrays(model) -> list:
    return [(l.op, l.weight.tobytes() if l.weight is not None else None,
             l.bias.tobytes() if l.bias is not None else None,
             l.multiplier.tobytes() if l.multiplier is not None else None) for l in model.layers]


# ------------------------------------------------------------------ external data

def test_external_data_is_read_beside_the_model_from_any_cwd(tmp_path, monkeypatch, capsys):
    inline = save(tmp_path / "inline" / "m.onnx", tiny())
    ext = save(tmp_path / "ext" / "m.onnx", tiny(), external=True)
    assert os.path.exists(ext + ".data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    onnx.checker.check_model(ext)  # onnx's own checker, path form, accepts it
    assert ir_arrays(import_model(ext)) == ir_arrays(import_model(inline))
    rc_i, out_i, err_i = run_cli(capsys, inline)
    rc_e, out_e, err_e = run_cli(capsys, os.path.relpath(ext))
    assert (rc_i, err_i) == (0, "") and (rc_e, err_e) == (0, "")

    def plan(out: str) -> list[str]:  # the search's answer, without its timing
        return [ln for ln in out.splitlines() if "time:" not in ln and " s)" not in ln]
    assert plan(out_e) == plan(out_i)


def test_decoy_data_in_cwd_is_not_used(tmp_path, monkeypatch):
    inline = save(tmp_path / "inline" / "m.onnx", tiny())
    ext = save(tmp_path / "ext" / "m.onnx", tiny(), external=True)
    decoy_dir = tmp_path / "cwd"
    # a same-named model with other weights, its .data in the current directory
    save(decoy_dir / "m.onnx", tiny(w=np.ones((4, 3, 3, 3)), b=np.ones(4)), external=True)
    monkeypatch.chdir(decoy_dir)
    assert ir_arrays(import_model(ext)) == ir_arrays(import_model(inline))


def test_data_only_in_cwd_is_refused(tmp_path, monkeypatch, capsys):
    ext = save(tmp_path / "ext" / "m.onnx", tiny(), external=True)
    decoy_dir = tmp_path / "cwd"
    decoy_dir.mkdir()
    os.replace(ext + ".data", decoy_dir / "m.onnx.data")
    monkeypatch.chdir(decoy_dir)
    assert_refused(capsys, ext, "m.onnx: initializer 'w'", "'m.onnx.data'", "no such file")


@pytest.mark.parametrize("location,needle", [
    ("../x.data", "must not contain '..'"),
    ("sub/../../x.data", "must not contain '..'"),
    ("..\\x.data", "must not contain '..'"),
    ("ABSOLUTE", "must be relative to the model's folder"),
    ("C:\\x.data", "must be relative to the model's folder"),
    ("nope.data", "no such file beside the model"),
    ("", "names no location"),
])
def test_bad_external_locations_are_refused(tmp_path, capsys, location, needle):
    ext = save(tmp_path / "d" / "m.onnx", tiny(), external=True)
    data = ext + ".data"
    (tmp_path / "x.data").write_bytes(Path(data).read_bytes())  # a readable target outside
    if location == "ABSOLUTE":
        location = str(tmp_path / "x.data")
    set_external(ext, "location", location)
    line = assert_refused(capsys, ext, "initializer 'w'", needle)
    if location:
        assert repr(location)[:20] in line


def test_symlink_out_of_the_model_folder_is_refused(tmp_path, capsys):
    ext = save(tmp_path / "d" / "m.onnx", tiny(), external=True)
    outside = tmp_path / "outside.data"
    os.replace(ext + ".data", outside)
    os.symlink(outside, ext + ".data")
    assert_refused(capsys, ext, "initializer 'w'", "'m.onnx.data'", "leaves the model's folder")


def test_symlink_inside_the_model_folder_is_followed(tmp_path):
    ext = save(tmp_path / "d" / "m.onnx", tiny(), external=True)
    inline = save(tmp_path / "i" / "m.onnx", tiny())
    os.replace(ext + ".data", tmp_path / "d" / "real.data")
    os.symlink("real.data", ext + ".data")
    assert ir_arrays(import_model(ext)) == ir_arrays(import_model(inline))


def test_truncated_external_data_is_refused(tmp_path, capsys):
    ext = save(tmp_path / "d" / "m.onnx", tiny(), external=True)
    data = Path(ext + ".data").read_bytes()
    Path(ext + ".data").write_bytes(data[:100])  # 'w' needs 432 B from offset 0
    assert_refused(capsys, ext, "initializer 'w'", "'m.onnx.data'", "outside the file (100 B)")


@pytest.mark.parametrize("key,value,needle", [
    ("offset", "1000000", "outside the file"),
    ("length", "999999999999", "outside the file"),
    ("offset", "-4", "outside the file"),
    ("length", "16", "holds 16 B but dims [4, 3, 3, 3] of float32 need 432 B"),
    ("offset", "zero", "is not an integer"),
])
def test_external_offset_and_length_are_checked(tmp_path, capsys, key, value, needle):
    ext = save(tmp_path / "d" / "m.onnx", tiny(), external=True)
    set_external(ext, key, value)
    assert_refused(capsys, ext, "initializer 'w'", needle)


def test_proto_with_external_data_is_refused(tmp_path):
    """A ModelProto has no folder to resolve its external data against."""
    ext = save(tmp_path / "d" / "m.onnx", tiny(), external=True)
    with pytest.raises(MsfsimError, match="tensor 'w' is stored in an external file"):
        import_model(onnx.load(ext, load_external_data=False))


def test_checker_still_runs_on_models_with_external_data(tmp_path, capsys):
    proto = tiny()
    proto.graph.node[0].input[0] = "undefined_tensor"  # invalid graph
    ext = save(tmp_path / "d" / "m.onnx", proto, external=True)
    assert_refused(capsys, ext, "m.onnx: invalid ONNX model")


# ------------------------------------------------------------------ NaN / Inf / bad scales

def _with(a, idx, v):
    a = np.array(a, np.float64)
    a.flat[idx] = v
    return a


W = np.random.default_rng(0).normal(0, 0.3, (4, 3, 3, 3))


def _bn(var=(1.0, 1.0, 1.0, 1.0), mean=(0.0,) * 4):
    nodes = [helper.make_node("BatchNormalization", ["c", "g", "bb", "mean", "var"], ["bn"], name="bn")]
    inits = [_f32("g", np.ones(4)), _f32("bb", np.zeros(4)), _f32("mean", mean), _f32("var", var)]
    return dict(extra=nodes, extra_inits=inits)


def _clip(lo, hi):
    nodes = [helper.make_node("Clip", ["c", "lo", "hi"], ["cl"], name="clip")]
    return dict(extra=nodes, extra_inits=[_f32("lo", lo), _f32("hi", hi)])


@pytest.mark.parametrize("kwargs,needles", [
    (dict(w=_with(W, 5, np.nan)), ["node 'conv' (Conv, output 'c')", "initializer 'w' holds NaN"]),
    (dict(w=_with(W, 0, np.inf)), ["initializer 'w' holds Inf"]),
    (dict(b=[0, np.inf, 0, 0]), ["node 'conv'", "initializer 'b' holds Inf"]),
    (dict(b=[0, -np.inf, 0, 0], conv_name=""), ["node <unnamed> (Conv, output 'c')", "initializer 'b'"]),
    (_bn(var=(1, np.nan, 1, 1)),
     ["node 'bn' (BatchNormalization, output 'bn')", "initializer 'var' holds NaN"]),
    (_bn(mean=(0, 0, 0, np.inf)), ["node 'bn'", "initializer 'mean' holds Inf"]),
    (_bn(var=(1, -2, 1, 1)), ["node 'bn'", "variance 'var' + epsilon", "must be positive"]),
    (_clip(0.0, np.inf), ["node 'clip' (Clip, output 'cl')", "initializer 'hi' holds Inf"]),
    (_clip(np.nan, 6.0), ["node 'clip'", "initializer 'lo' holds NaN"]),
    (dict(extra=[helper.make_node("Constant", [], ["k"], value=_f32("kv", np.inf), name="k"),
                 helper.make_node("Clip", ["c", "", "k"], ["cl"], name="clip")]),
     ["node 'clip' (Clip, output 'cl')", "constant 'k' holds Inf"]),
    (dict(qdq=True, w_scale=[0.01, np.nan, 0.01, 0.01]),
     ["node 'w_dq' (DequantizeLinear, output 'w')", "initializer 'w_scale' holds NaN"]),
    (dict(qdq=True, w_scale=[0.01, 0.0, 0.01, 0.01]),
     ["node 'w_dq'", "scale 'w_scale' must be positive, got 0.0"]),
    (dict(qdq=True, w_scale=[0.01, 0.01, -0.5, 0.01]),
     ["node 'w_dq'", "scale 'w_scale' must be positive, got -0.5"]),
])
def test_non_finite_or_bad_constants_are_refused(tmp_path, capsys, kwargs, needles):
    p = save(tmp_path / "m.onnx", tiny(**kwargs))
    assert_refused(capsys, p, "m.onnx: ", *needles)


def _act_qdq(scale, zp):
    """A QuantizeLinear/DequantizeLinear pair on the conv output."""
    nodes = [helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q"),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cdq"], name="dq")]
    return dict(extra=nodes, extra_inits=[_f32("s", scale), zp])


@pytest.mark.parametrize("scale,zp,needles", [
    (0.0, numpy_helper.from_array(np.array(0, np.int8), "z"), ["node 'q' (QuantizeLinear, output 'cq')",
                                                               "scale 's' must be positive"]),
    (np.inf, numpy_helper.from_array(np.array(0, np.int8), "z"), ["node 'q'", "initializer 's' holds Inf"]),
    (np.nan, numpy_helper.from_array(np.array(0, np.int8), "z"), ["node 'q'", "initializer 's' holds NaN"]),
])
def test_bad_activation_quantisation_is_refused(tmp_path, capsys, scale, zp, needles):
    p = save(tmp_path / "m.onnx", tiny(**_act_qdq(scale, zp)))
    assert_refused(capsys, p, *needles)


def test_huge_finite_weights_do_not_warn(tmp_path, capsys):
    """Finite float32 weights whose float64 products overflow nothing still import; weights that
    overflow the calibration are refused by name, without a numpy warning."""
    p = save(tmp_path / "m.onnx", tiny(w=np.full((4, 3, 3, 3), 3e38), b=np.full(4, 3e38)))
    rc, _, err = run_cli(capsys, p)
    assert "Traceback" not in err and "RuntimeWarning" not in err and "internal error" not in err
    assert rc in (0, 2, 3), err


# ------------------------------------------------------------------ absurd sizes

@pytest.mark.parametrize("dims", [(1, 3, 100000, 100000), (1, 3, 4000, 4000)])
def test_huge_input_is_refused_at_once(tmp_path, dims):
    p = save(tmp_path / "big.onnx", tiny(dims=dims))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "msfsim", *[p if a is None else a for a in SEARCH]],
                       capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - t0
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    n = dims[1] * dims[2] * dims[3]
    assert "input 'input'" in lines[0] and f"1x3x{dims[2]}x{dims[3]}" in lines[0], lines[0]
    assert f"{n:,}" in lines[0], lines[0]
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr
    assert seconds < 10, seconds  # was a MemoryError after 20 s; ~1 s is interpreter start-up


def test_huge_input_shape_option_is_refused(tmp_path, capsys):
    p = save(tmp_path / "m.onnx", tiny(dims=(1, 3, "H", "W")))
    t0 = time.monotonic()
    assert_refused(capsys, p, "input 'input'", "1x3x100000x100000",
                   extra=("--input-shape", "1x3x100000x100000"))
    assert time.monotonic() - t0 < 5


def test_huge_intermediate_tensor_is_refused(tmp_path, capsys):
    """A 3 MB input expanded to 64 channels: the conv output (64 MB) is named."""
    w = np.zeros((64, 3, 1, 1))
    p = save(tmp_path / "m.onnx", tiny(dims=(1, 3, 1000, 1000), w=w, b=np.zeros(64),
                                       conv_attrs={"pads": [0, 0, 0, 0]}))
    assert_refused(capsys, p, "node 'conv' (Conv, output 'c')", "1x64x1000x1000", "64,000,000")


def test_calibration_beyond_the_host_bound_is_refused_before_allocating(tmp_path, capsys):
    """Tensors under the bound whose float calibration (im2col of a 5x5 conv over 64 channels,
    ~8 GiB) the host cannot afford: named, at once."""
    p = save(tmp_path / "m.onnx", tiny(dims=(1, 64, 400, 400), w=np.zeros((4, 64, 5, 5)),
                                       conv_attrs={"pads": [2, 2, 2, 2]}))
    t0 = time.monotonic()
    assert_refused(capsys, p, "node 'conv' (Conv, output 'c')", "GiB of host memory", "QDQ")
    assert time.monotonic() - t0 < 5


def test_huge_padding_is_refused(tmp_path, capsys):
    p = save(tmp_path / "m.onnx", tiny(conv_attrs={"pads": [100000, 100000, 100000, 100000],
                                                   "strides": [100000, 100000]}))
    assert_refused(capsys, p, "node 'conv' (Conv, output 'c')", "padded input")


def test_zero_stride_is_refused(tmp_path, capsys):
    p = save(tmp_path / "m.onnx", tiny(conv_attrs={"strides": [0, 1]}))
    assert_refused(capsys, p, "node 'conv' (Conv, output 'c')", "strides [0, 1]")


def test_huge_initializer_is_refused_from_its_dims(tmp_path, capsys):
    """Declared dims far beyond the bound: refused before any conversion to numpy."""
    proto = tiny()
    w = proto.graph.initializer[0]
    assert w.name == "w"
    w.dims[:] = [100000, 3, 3, 3]  # under the bound, but its 432 B of data do not fill it
    p = tmp_path / "m.onnx"
    p.write_bytes(proto.SerializeToString())
    assert 100000 * 27 <= MAX_TENSOR_ELEMENTS
    assert_refused(capsys, p, "invalid ONNX model", "tensor name: w")  # onnx's checker says so
    w.dims[:] = [100000, 100000, 3, 3]
    p.write_bytes(proto.SerializeToString())
    assert_refused(capsys, p, "initializer 'w'", "90,000,000,000 elements")


def test_external_data_of_huge_declared_size_is_refused(tmp_path, capsys):
    ext = save(tmp_path / "d" / "m.onnx", tiny(), external=True)
    proto = onnx.load(ext, load_external_data=False)
    t = next(i for i in proto.graph.initializer if i.name == "w")
    t.dims[:] = [40000, 40000, 3, 3]
    onnx.save(proto, ext)
    assert_refused(capsys, ext, "initializer 'w'", "14,400,000,000 elements")


# ------------------------------------------------------------------ zero dimensions and --input-shape

@pytest.mark.parametrize("dims,needle", [
    ((1, 3, 0, 8), "dimension 2 (H) of input 'input' has size 0"),
    ((1, 0, 8, 8), "dimension 1 (C) of input 'input' has size 0"),
    ((0, 3, 8, 8), "dimension 0 (N) of input 'input' has size 0"),
])
def test_zero_input_dimension_is_named(tmp_path, capsys, dims, needle):
    p = save(tmp_path / "m.onnx", tiny(dims=dims))
    line = assert_refused(capsys, p, needle)
    assert "dynamic" not in line


def test_zero_channel_weights_are_named(tmp_path, capsys):
    p = save(tmp_path / "m.onnx", tiny(w=np.zeros((0, 3, 3, 3)), b=np.zeros(0)))
    line = assert_refused(capsys, p, "node 'conv' (Conv, output 'c')", "dimension 1 (C)", "has size 0")
    assert "dynamic" not in line


def test_input_shape_contradicting_a_static_shape_is_refused(tmp_path, capsys):
    p = save(tmp_path / "m.onnx", tiny(dims=(1, 3, 8, 8)))
    assert_refused(capsys, p, "--input-shape 1x3x16x16", "1x3x8x8", "input 'input'",
                   extra=("--input-shape", "1x3x16x16"))
    assert_refused(capsys, p, "--input-shape 1x4x8x8", "1x3x8x8", extra=("--input-shape", "1x4x8x8"))


def test_input_shape_matching_or_filling_dynamic_dims_is_applied(tmp_path, capsys):
    static = save(tmp_path / "s.onnx", tiny(dims=(1, 3, 8, 8)))
    assert run_cli(capsys, static, "--input-shape", "1x3x8x8")[0] == 0
    dynamic = save(tmp_path / "d.onnx", tiny(dims=("N", 3, "H", "W")))
    assert import_model(dynamic, input_shape="1x3x12x10").tensor(0).shape == (12, 10, 3)
    assert run_cli(capsys, dynamic, "--input-shape", "1x3x12x10")[0] == 0
    batch2 = save(tmp_path / "b.onnx", tiny(dims=(2, 3, 8, 8)))  # the batch may be overridden
    assert import_model(batch2, input_shape="1x3x8x8").tensor(0).shape == (8, 8, 3)


# ------------------------------------------------------------------ names from the model

def test_hostile_names_are_quoted_short_on_one_line(tmp_path, capsys):
    evil = "evil\n*/ $(rm -rf ~)\x00" + "x" * 10000
    p = save(tmp_path / "m.onnx", tiny(w=_with(W, 1, np.nan), conv_name=evil))
    line = assert_refused(capsys, p, "node 'evil\\n*/ $(rm", "output 'c'", "initializer 'w' holds NaN")
    assert len(line) < 600 and "\x00" not in line


def test_unnamed_unsupported_node_names_its_output(tmp_path, capsys):
    proto = tiny()
    proto.graph.node[-1].op_type = "Sin"
    proto.graph.node[-1].name = ""
    p = save(tmp_path / "m.onnx", proto)
    assert_refused(capsys, p, "unsupported op 'Sin'", "output 'out'")


def test_library_raises_msfsim_error(tmp_path):
    with pytest.raises(MsfsimError, match="initializer 'w' holds NaN"):
        import_model(save(tmp_path / "m.onnx", tiny(w=_with(W, 3, np.nan))))
