"""Generated C: compiles freestanding for Cortex-M7 with -Wall -Werror, needs nothing beyond the
kernels, arena, executor and msf_fatal, and carries memplan's numbers."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from msfsim.codegen import generate_block, generate_plan
from msfsim.fusion.block import Block, BlockConfig
from msfsim.fusion.memplan import block_plan, plan_layout
from test_executor import FUSED, random_input, residual_net, tail_net

KERNELS_C = Path(__file__).resolve().parent.parent / "msfsim" / "kernels_c"
GCC = "arm-none-eabi-gcc"
CFLAGS = ["-mcpu=cortex-m7", "-mthumb", "-O2", "-ffreestanding", "-nostdlib", "-std=c99",
          "-Wall", "-Werror"]


def compile_objects(gen_dir: Path, out_dir: Path) -> list[Path]:
    sources = [gen_dir / "msf_generated.c", gen_dir / "msf_input.c", KERNELS_C / "msf_executor.c",
               KERNELS_C / "msf_arena.c", *sorted((KERNELS_C / "kernels").glob("*.c"))]
    objs = []
    for src in sources:
        obj = out_dir / (src.stem + ".o")
        subprocess.run([GCC, *CFLAGS, f"-I{KERNELS_C}", f"-I{gen_dir}", "-c", str(src), "-o",
                        str(obj)], check=True, capture_output=True, text=True)
        objs.append(obj)
    return objs


def undefined_symbols(objs: list[Path]) -> set[str]:
    nm = shutil.which("arm-none-eabi-nm")
    defined, undefined = set(), set()
    for obj in objs:
        for line in subprocess.run([nm, str(obj)], check=True, capture_output=True,
                                   text=True).stdout.splitlines():
            parts = line.split()
            (undefined if parts[-2] == "U" else defined).add(parts[-1])
    return undefined - defined


@pytest.mark.skipif(shutil.which(GCC) is None, reason="arm-none-eabi-gcc not installed")
def test_plan_compiles_freestanding_for_cortex_m7(tmp_path):
    m = residual_net()
    x = random_input(m, 3)
    code = generate_plan(m, FUSED["residual"], x)
    gen = tmp_path / "gen"
    code.write(gen)
    objs = compile_objects(gen, tmp_path)
    assert undefined_symbols(objs) == {"msf_fatal"}  # the runtime provides it


@pytest.mark.skipif(shutil.which(GCC) is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("scheme", ["stream2d", "hcache"])
def test_tail_block_compiles(tmp_path, scheme):
    m = tail_net()
    code = generate_block(m, Block(0, 3, BlockConfig((2, 2), scheme)))
    code.write(tmp_path / "gen")
    compile_objects(tmp_path / "gen", tmp_path)


def defines(header: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"#define (MSF_\w+) (\d+)u", header)}


def offsets_in(c_text: str, table: str) -> list[tuple[int, int]]:
    body = c_text.split(f"{table}[")[1].split("};")[0]
    return [(int(o), int(b)) for o, b in re.findall(r"\.offset = (\d+)u, \.bytes = (\d+)u", body)]


def test_plan_numbers_come_from_memplan():
    m = residual_net()
    blocks = FUSED["residual"]
    x = random_input(m, 3)
    code = generate_plan(m, blocks, x)
    layout = plan_layout(m, blocks)
    d = defines(code.files["msf_generated.h"])
    assert d["MSF_ARENA_BYTES"] == layout.arena_bytes
    assert d["MSF_INPUT_BYTES"] == x.size
    assert d["MSF_OUTPUT_BYTES"] == m.tensor(m.output).size
    assert d["MSF_N_BLOCKS"] == len(blocks)
    src = code.files["msf_generated.c"]
    for k, bp in enumerate(layout.blocks):
        expected = [(b.offset, b.size) for b in bp.buffers if b.tensor >= 0]
        assert offsets_in(src, f"b{k}_tensors") == expected
    values = re.findall(r"-?\d+", code.files["msf_input.c"].split("{", 1)[1])
    np.testing.assert_array_equal(np.array(values, int), x.ravel())


def test_block_input_is_every_tensor_it_reads():
    m = residual_net()
    block = Block(1, 4, BlockConfig((2, 2), "hcache"))  # reads x (layer 0) twice: conv and add
    code = generate_block(m, block)
    bp = block_plan(m, block)
    assert code.input_bytes == sum(m.tensor(b.tensor).size for b in bp.buffers if b.kind == "input")
    assert code.arena_bytes == bp.arena_bytes
    with pytest.raises(ValueError):
        generate_block(m, block, np.zeros(3, np.int8))


def test_prefix_renames_only_the_public_names():
    """A prefix renames the files, the run function and the header's macros; the plan's data
    is the same, all static, and the header is C++-ready and declares no firmware data."""
    m = residual_net()
    blocks = FUSED["residual"]
    x = random_input(m, 3)
    default = generate_plan(m, blocks, x)
    kws = generate_plan(m, blocks, x, prefix="kws_")
    assert sorted(default.files) == ["msf_generated.c", "msf_generated.h", "msf_input.c"]
    assert sorted(kws.files) == ["kws_generated.c", "kws_generated.h", "kws_input.c"]
    src = kws.files["kws_generated.c"]
    assert "const int8_t *kws_generated_run(const int8_t *input)" in src
    back = src.replace("kws_generated", "msf_generated").replace("KWS_", "MSF_")
    assert back == default.files["msf_generated.c"]
    header = kws.files["kws_generated.h"]
    assert "#ifndef KWS_GENERATED_H" in header and 'extern "C" {' in header
    assert "msf_" not in header and "MSF_" not in header and "extern const" not in header
    assert "const int8_t kws_input[KWS_INPUT_BYTES]" in kws.files["kws_input.c"]
    # Everything but the run function is static (two plans' data cannot clash).
    top = [line for line in src.splitlines() if re.match(r"[a-z]", line)]
    assert [line for line in top if not line.startswith("static ")] == [
        "const int8_t *kws_generated_run(const int8_t *input)"]


def test_header_quantisation_macros():
    m = residual_net()
    code = generate_plan(m, FUSED["residual"], prefix="net_")
    got = dict(re.findall(r"#define NET_(\w+) (\S+)", code.files["net_generated.h"]))
    for role, tid in (("INPUT", m.input), ("OUTPUT", m.output)):
        t = m.tensor(tid)
        assert float(got[f"{role}_SCALE"]) == t.q.scale
        assert int(got[f"{role}_ZERO_POINT"].strip("()")) == t.q.zero_point
        assert [int(got[f"{role}_{a}"].rstrip("u")) for a in "HWC"] == list(t.shape)


@pytest.mark.parametrize("prefix", ["", "1a", "a.b", "a-", "é", "x" * 33, "msf_x", 3])
def test_bad_prefix_raises(prefix):
    m = residual_net()
    with pytest.raises(ValueError, match="prefix"):
        generate_plan(m, FUSED["residual"], prefix=prefix)


def test_templates_ship_inside_the_package():
    """--emit-c's templates are package files under msfsim/codegen/templates/, every one of
    them used, and the `@name@` placeholders leave make's and the shell's `$` and `@` alone."""
    from msfsim.codegen import emit
    d = Path(emit.__file__).parent / emit.TEMPLATES
    names = sorted(p.name for p in d.iterdir())
    assert names == ["Makefile.in", "README.md.in", "main.c.in", "msf_generated.h.in",
                     "msf_generated_run.c.in"]
    t = emit.SourceTemplate("$@: $(OBJS)\n\t@mkdir -p $(@D) @x@ a@b.c")
    assert t.substitute(x="X") == "$@: $(OBJS)\n\t@mkdir -p $(@D) X a@b.c"
    with pytest.raises(KeyError):
        t.substitute()
