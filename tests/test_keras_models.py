"""Whole Keras architectures as TensorFlow's converter writes them (tests/data/tflite,
scripts/make_tflite_fixtures.py; int8 in and out, per-channel weights, seeded weights and
representative data): keras.applications MobileNet (alpha 0.25), MobileNetV2 (alpha 0.2) and
MobileNetV3Small (alpha 0.2, with its Rescaling and Keras' hard_sigmoid ops), all 96x96x3 with a
softmax over 3 classes; MLPerf Tiny's ResNet-8 and an Inception-style CNN written in Keras; and
hard_sigmoid as Keras writes it (an ADD of a constant scalar with ReLU6 fused, a MUL by a
constant scalar) on the 256 int8 values; an ADD of a per-channel constant, refused.

Against TFLM's interpreter, bit for bit: msfsim's reference layer by layer; the generated C on
the host for the layer-by-layer plan and the analytic min-RAM plan; and `msfsim search
--json` measuring in the unicorn-emulated Cortex-M7 on the smallest of them (its whole-plan
firmware must reproduce the reference, which equals TFLM's output on the firmware's input).
The measured search runs in a child process started before the module's first test, beside
the host builds, with msfsim's cache as the CLI uses it (cold, it compiles and emulates about
50 blocks).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msfsim import UnsupportedModel, host, plan, refmodel
from msfsim.importers.tflite import import_tflite
from msfsim.ir import Op
from msfsim.measure import measurement_input
from msfsim.search.api import search_analytic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tflite_models as tm  # noqa: E402
from tflite_models import inputs, tflm  # noqa: E402

FIXTURES = tm.KERAS_FIXTURES
MEASURED = "inception"  # the smallest: fewest candidate blocks to compile and emulate
MEASURED_TEST = "test_measured_search_in_unicorn_bit_exact"


@pytest.fixture(scope="module", autouse=True)
def measured_search(request, tmp_path_factory):
    """`msfsim search MEASURED --platform stm32f746 --json` as users run it (msfsim's cache:
    a later run finds the measurements and the whole-plan firmware's result there), started
    before the first test when the measured test is selected; yields (process, stdout,
    stderr)."""
    if not any(item.name == MEASURED_TEST for item in request.session.items):
        yield None
        return
    d = tmp_path_factory.mktemp("measured")
    out = (d / "out.json").open("w+")
    err = (d / "err.txt").open("w+")
    p = subprocess.Popen([sys.executable, "-m", "msfsim", "search", str(tm.fixture(MEASURED)),
                          "--platform", "stm32f746", "--json"], stdout=out, stderr=err)
    yield p, out, err
    if p.poll() is None:
        p.kill()
        p.wait()
    out.close()
    err.close()


def count(model, op, activation=None) -> int:
    return sum(1 for la in model.layers
               if la.op == op and activation in (None, la.activation))


def test_fixtures_are_the_architectures():
    for name in FIXTURES:
        assert tm.fixture(name).stat().st_size < 400_000, name
    v1 = import_tflite(tm.fixture("mobilenet_v1"))
    assert (count(v1, Op.CONV), count(v1, Op.DWCONV), len(v1.layers)) == (15, 13, 30)
    # head: gap (keepdims) -> 1x1 conv on the 1x1 map -> Reshape (an alias) -> softmax
    assert [la.op for la in v1.layers[-3:]] == [Op.GAP, Op.CONV, Op.SOFTMAX]
    v2 = import_tflite(tm.fixture("mobilenet_v2"))
    # at alpha 0.2 the first block keeps 8 channels, so it has a residual ADD too
    assert (count(v2, Op.CONV), count(v2, Op.DWCONV), count(v2, Op.ADD)) == (35, 17, 11)
    assert [la.op for la in v2.layers[-3:]] == [Op.GAP, Op.DENSE, Op.SOFTMAX]
    v3 = import_tflite(tm.fixture("mobilenet_v3_small"))
    # Rescaling: a MUL by 1 / 127.5 and an ADD of -1, one table (the two composed);
    # hard_sigmoid's * 1/6 in the nine squeeze-and-excite blocks (the + 3 is folded into the
    # bias, ReLU6 into the conv)
    assert [(la.op, la.activation) for la in v3.layers[:2]] == [(Op.LUT, "mul+add"),
                                                                (Op.CONV, "none")]
    assert (count(v3, Op.LUT, "mul"), count(v3, Op.MUL), count(v3, Op.LUT, "hard_swish"),
            count(v3, Op.GAP), count(v3, Op.ADD)) == (9, 9, 19, 10, 6)
    assert v3.layers[-1].op == Op.SOFTMAX
    r8 = import_tflite(tm.fixture("resnet8"))
    assert [la.op for la in r8.layers].count(Op.ADD) == 3
    assert [la.op for la in r8.layers[-3:]] == [Op.AVGPOOL, Op.DENSE, Op.SOFTMAX]
    assert [la.stride for la in r8.layers if la.op == Op.CONV and la.kernel == (1, 1)] == \
        [(2, 2), (2, 2)]
    inc = import_tflite(tm.fixture("inception"))
    assert (count(inc, Op.CONCAT), count(inc, Op.MAXPOOL), count(inc, Op.CONV)) == (6, 3, 14)
    assert {la.kernel for la in inc.layers if la.op == Op.CONV} == {(1, 1), (3, 3), (5, 5)}


@pytest.mark.parametrize("name", FIXTURES + ["hard_sigmoid_table"])
def test_reference_bit_exact_with_tflm(name):
    """Three inputs, the first holding every int8 value (the whole table of hard_sigmoid)."""
    path = tm.fixture(name)
    m = import_tflite(path)
    xs = inputs(m, 3)
    want = tflm(m, path, xs)
    for i, (x, w) in enumerate(zip(xs, want)):
        np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), w, err_msg=f"{name} {i}")
    if name in FIXTURES:  # the output depends on the input
        assert any(not np.array_equal(want[0], w) for w in want[1:]), name


def test_hard_sigmoid_as_keras_writes_it():
    m = import_tflite(tm.fixture("hard_sigmoid_table"))
    # ADD 3 with ReLU6 fused, then MUL by 1/6: one table, the two composed
    assert [(la.op, la.activation) for la in m.layers] == [(Op.LUT, "add+mul")]
    table = m.layers[0].weight.astype(int)  # flat, rising, flat
    assert np.all(np.diff(table) >= 0) and table[0] == table[1] and table[-1] == table[-2]


@pytest.mark.parametrize("name", FIXTURES)
def test_generated_c_plans_bit_exact_with_tflm(name):
    """Layer by layer and the analytic min-RAM plan through the generated C on the host."""
    path = tm.fixture(name)
    m = import_tflite(path)
    x = inputs(m, 2, seed=5)[1]
    (want,) = tflm(m, path, [x])
    fused = plan.from_json(m, search_analytic(m, "stm32f746").to_plan_json())
    assert len(fused) < len(m.layers)
    for label, blocks in (("vanilla", plan.vanilla(m)), ("min-ram", fused)):
        y, _ = host.run_plan(m, blocks, x)
        np.testing.assert_array_equal(y.reshape(-1), want, err_msg=f"{name} {label}")


def test_measured_search_in_unicorn_bit_exact(measured_search):
    """The measured search exits 0; its whole-plan firmware ran in unicorn and matched the
    reference (the search fails otherwise), and the reference equals TFLM on that input."""
    p, out, err = measured_search
    rc = p.wait(timeout=600)
    err.seek(0)
    assert rc == 0, err.read()[-2000:]
    out.seek(0)
    j = json.loads(out.read())
    assert (j["cost"], j["backend"], j["platform"]) == ("measured", "unicorn", "stm32f746")
    meas = j["measurement"]
    assert meas["stats"]["measured"] + meas["stats"]["cache_hits"] > 0
    assert meas["plan_firmware"]["output_matches_reference"]
    assert j["peak_ram"]["measured"] == sum(meas["plan_firmware"][k]
                                            for k in ("arena", "stack", "static"))
    m = import_tflite(tm.fixture(MEASURED))
    assert j["layer_count"] == len(m.layers)
    x = measurement_input(m)
    (want,) = tflm(m, tm.fixture(MEASURED), [x])
    np.testing.assert_array_equal(refmodel.run(m, x).reshape(-1), want)
