"""A model whose every name is hostile (C comment terminators, preprocessor lines, quotes,
`$(...)`, backticks, `../`, NUL, 10 kB) runs on the host, through a measured search and as an
emitted C project, and nothing it names is ever executed: the payloads would create a marker
file, and the marker must not exist. The corpus is generated here, not stored."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from msfsim import platforms
from msfsim.names import MAX_NAME, is_safe, safe_name

from onnx_models import residual_net

BOARD = "stm32f746"


def payloads(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f'c0 */ __attribute__((constructor)) static void p(void){{ system("touch {m}"); }} /* c0',
        f'x\n#include "/etc/passwd"\nint y;',
        'quote"and\'single',
        f"$(touch {m})",
        f"`touch {m}`",
        "../../../../tmp/escape",
        "nul\x00byte",
        "x" * 10_000,
        f"line\\\n*/ int z; /* ??/ {m}",
        "-rf --output=/etc",
    ]


def hostile_model(marker: Path) -> onnx.ModelProto:
    """residual_net with every node, tensor, initializer, graph name, doc string and metadata
    value replaced by a payload (made unique by a suffix)."""
    proto = residual_net()
    pay = payloads(marker)
    rename: dict[str, str] = {}

    def new(old: str) -> str:
        if old not in rename:
            rename[old] = f"{pay[len(rename) % len(pay)]}#{len(rename)}"
        return rename[old]

    g = proto.graph
    for t in list(g.initializer) + list(g.input) + list(g.output):
        t.name = new(t.name)
    for k, node in enumerate(g.node):
        node.input[:] = [new(x) if x else x for x in node.input]
        node.output[:] = [new(x) for x in node.output]
        node.name = pay[k % len(pay)]
        node.doc_string = pay[0]
    g.name = pay[0]
    g.doc_string = pay[1]
    proto.doc_string = pay[3]
    proto.producer_name = pay[4]
    onnx.helper.set_model_props(proto, {pay[0]: pay[3], "k": pay[1]})
    return proto


@pytest.fixture
def hostile(tmp_path):
    marker = tmp_path / "pwned"
    d = tmp_path / "models"
    d.mkdir()
    path = d / "$(touch pwned) `id` *.onnx"
    onnx.save(hostile_model(marker), path)
    return path, marker


def msfsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run([sys.executable, "-m", "msfsim", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600, check=False)


def test_safe_name_reduces_every_payload(tmp_path):
    names = [safe_name(p) for p in payloads(tmp_path / "m")]
    assert all(is_safe(n) and len(n) <= MAX_NAME for n in names)
    assert len(set(names)) == len(names)            # long names stay distinct (hashed)
    assert safe_name("conv1.weight-2") == "conv1.weight-2"  # safe names pass unchanged
    assert safe_name("../x").startswith("_")        # never '..', never hidden, never an option
    assert safe_name("-rf") == "rf" and safe_name("") == "unnamed"


def test_ir_holds_only_sanitised_names(hostile):
    from msfsim.importers.onnx import import_model
    path, _ = hostile
    model = import_model(path)
    assert is_safe(model.name)
    assert all(is_safe(t.name) for t in model.tensors)
    assert all(is_safe(layer.name) for layer in model.layers)


def test_c_writer_refuses_raw_text():
    from msfsim.codegen.cwriter import c_array, comment
    with pytest.raises(ValueError):
        comment("x */ int evil; /* y")
    with pytest.raises(ValueError):
        comment("a\n#include <x>")
    with pytest.raises(ValueError):
        c_array("int8_t", "a[1]; int evil", [1])
    assert comment("layer 3 (conv1.weight): conv") == "/* layer 3 (conv1.weight): conv */\n"


def test_host_run_executes_nothing(hostile, tmp_path):
    path, marker = hostile
    x = np.zeros((16, 16, 3), np.int8)
    np.save(tmp_path / "x.npy", x)
    r = msfsim("run", str(path), "--platform", BOARD, "--vanilla", "--backend", "host",
               "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "y.npy").shape == (1, 1, 10)
    assert not marker.exists() and not (tmp_path / "pwned").exists()


def test_measured_search_and_emitted_project(hostile, tmp_path):
    path, marker = hostile
    if shutil.which(platforms.load(BOARD).gcc) is None or shutil.which("make") is None:
        pytest.skip("arm-none-eabi-gcc or make not installed")
    proj = tmp_path / "proj"
    r = msfsim("search", str(path), "--platform", BOARD, "--cache", str(tmp_path / "cache"),
               "--jobs", "1", "--emit-c", str(proj), "--report", str(tmp_path / "report"),
               "-o", str(tmp_path / "plan.json"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert is_safe(result["model"])
    b = subprocess.run(["make", "-C", str(proj)], capture_output=True, text=True, timeout=300,
                       check=False)
    assert b.returncode == 0, b.stderr[-2000:]
    # no payload text reached any generated file, and no file name came from the model
    for f in [*proj.rglob("*"), *(tmp_path / "report").rglob("*")]:
        assert is_safe(f.name) or f.name.startswith("."), f
        if f.is_file() and f.suffix in {".c", ".h", ".md", ".html", ".json", ".svg", ""}:
            text = f.read_text(errors="replace")
            for raw in (str(marker), "(touch", "`touch", 'system("', '#include "/etc', "??/",
                        "../../../../tmp"):
                assert raw not in text, (f, raw)
    assert not marker.exists() and not (tmp_path / "pwned").exists()


def test_no_shell_anywhere():
    """No subprocess in msfsim goes through a shell."""
    root = Path(__file__).resolve().parents[1] / "msfsim"
    for f in root.rglob("*.py"):
        text = f.read_text()
        assert "shell=True" not in text and "os.system(" not in text, f
