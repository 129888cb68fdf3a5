import dataclasses
import importlib.util
import os
from pathlib import Path

import pytest

from msfsim import NoPlan, cache, platforms, toolchain
from msfsim.toolchain import ElfImage

FW = Path(__file__).parent / "firmware"
SOURCES = [FW / "test_block.c", FW / "msf_arena.c", toolchain.RUNTIME_DIR / "msf_main.c"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MSFSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_build_is_cached_by_content():
    p = platforms.load("stm32f746")
    a = toolchain.compile_firmware(p, SOURCES, [FW])
    mtime = os.stat(a.path).st_mtime_ns
    b = toolchain.compile_firmware(p, SOURCES, [FW])
    assert a == b and os.stat(b.path).st_mtime_ns == mtime
    c = toolchain.compile_firmware(p, SOURCES, [FW], {"MSF_TEST_ROUNDS": 5})
    assert c.key != a.key
    assert "arm-none-eabi-gcc" in a.compiler and "12." in a.compiler


def test_compile_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void)\n{\n    return undeclared_thing;\n}\n")
    with pytest.raises(toolchain.ToolchainError) as e:
        toolchain.compile_firmware(platforms.load("hifive1b"), [bad], with_runtime=False)
    assert f"{bad}:3" in str(e.value) and "undeclared_thing" in str(e.value)


def test_too_large_for_hifive1b_fails_at_link_time():
    with pytest.raises(toolchain.LinkOverflowError) as e:
        toolchain.compile_firmware(platforms.load("hifive1b"), SOURCES, [FW], {"MSF_TEST_STATIC_BYTES": 20000})
    assert e.value.region == "SRAM" and e.value.overflow > 0
    assert "hifive1b" in str(e.value) and "SRAM" in str(e.value) and f"{e.value.overflow} bytes" in str(e.value)
    # Nothing fits the board: exit 3, as for any plan that does not fit (not 2, not 4).
    assert isinstance(e.value, NoPlan) and e.value.exit_code == 3
    # The same firmware fits a board with more SRAM.
    toolchain.compile_firmware(platforms.load("esp32c3"), SOURCES, [FW], {"MSF_TEST_STATIC_BYTES": 20000})


@pytest.mark.parametrize("stderr, region, n", [
    ("ld: fw.elf section `.bss' will not fit in region `SRAM'\n"
     "ld: region `SRAM' overflowed by 3616 bytes\ncollect2: error: ld returned 1 exit status\n",
     "SRAM", 3616),
    ("ld.lld: error: section '.bss' will not fit in region 'SRAM': overflowed by 3616 bytes\n",
     "SRAM", 3616),
    ("ld: region `FLASH' overflowed by 10 bytes\nld: region `SRAM' overflowed by 7 bytes\n",
     "FLASH", 10),
])
def test_link_overflow_names_region_and_bytes(stderr, region, n):
    """GNU ld's and lld's words for a firmware too large: exit 3 with the region and bytes."""
    e = toolchain.errors.diagnose(stderr, platforms.load("hifive1b"))
    assert isinstance(e, toolchain.LinkOverflowError) and e.exit_code == 3
    assert (e.region, e.overflow) == (region, n)
    assert f"{region} (" in str(e) and f"overflowed by {n} bytes" in str(e)


def _whole(elf: str) -> bool:
    p = Path(elf)
    want = p.with_name(p.name + ".sha256").read_text().split()[0]
    import hashlib
    return hashlib.sha256(p.read_bytes()).hexdigest() == want


@pytest.mark.parametrize("damage", ["truncated", "empty", "no-digest", "bad-digest"])
def test_damaged_cached_elf_is_rebuilt(tmp_path, damage):
    p = platforms.load("stm32f746")
    a = toolchain.compile_firmware(p, SOURCES, [FW], cache_dir=tmp_path)
    elf, digest = Path(a.path), Path(a.path + ".sha256")
    whole = elf.read_bytes()
    assert _whole(a.path)
    if damage == "truncated":
        os.truncate(elf, len(whole) // 2)
    elif damage == "empty":
        os.truncate(elf, 0)
    elif damage == "no-digest":
        digest.unlink()
    else:
        digest.write_text("0" * 64 + "\n")
    mtime = os.stat(elf).st_mtime_ns
    b = toolchain.compile_firmware(p, SOURCES, [FW], cache_dir=tmp_path)
    # Rebuilt (gcc names a temporary object in the symbol table: not the same bytes).
    assert b == a and _whole(b.path) and len(elf.read_bytes()) == len(whole)
    assert os.stat(elf).st_mtime_ns != mtime
    assert not list(elf.parent.glob(".*"))  # no temporary build dir left


def test_builds_go_under_the_given_cache_dir(tmp_path):
    p = platforms.load("stm32f746")
    a = toolchain.compile_firmware(p, SOURCES, [FW], cache_dir=tmp_path / "one")
    assert Path(a.path).parent == tmp_path / "one" / "elf" / p.name
    with toolchain.using_cache_dir(tmp_path / "two"):
        b = toolchain.compile_firmware(p, SOURCES, [FW])
        assert toolchain.cache_dir() == tmp_path / "two"
    assert Path(b.path).parent == tmp_path / "two" / "elf" / p.name and a.key == b.key
    # Without either: the one default rule of msfsim.cache.
    assert toolchain.cache_dir() == cache.default_dir()


def test_cache_key_does_not_depend_on_where_the_sources_are(tmp_path):
    """A cache moved or copied elsewhere (generated sources under it) still hits."""
    import shutil
    p = platforms.load("stm32f746")
    keys = set()
    for where in ("a", "zz/b"):
        d = tmp_path / where
        shutil.copytree(FW, d)
        keys.add(toolchain.compile_firmware(p, [d / "test_block.c", d / "msf_arena.c",
                                                toolchain.RUNTIME_DIR / "msf_main.c"], [d],
                                            cache_dir=tmp_path / "c").key)
    assert len(keys) == 1


def test_failed_build_leaves_no_temporary_dir(tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int f(void) { return nope; }\n")
    with pytest.raises(toolchain.ToolchainError):
        toolchain.compile_firmware(platforms.load("stm32f746"), [bad], with_runtime=False,
                                   cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c").rglob(".*"))


def test_unusable_cache_dir_is_exit_2(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(cache.CacheDirError) as e:
        toolchain.compile_firmware(platforms.load("stm32f746"), SOURCES, [FW], cache_dir=tmp_path / "f")
    assert e.value.exit_code == 2 and "--cache" in str(e.value)


def test_missing_compiler_says_how_to_install():
    p = dataclasses.replace(platforms.load("stm32f746"), gcc="no-such-cross-gcc", clang_target="")
    with pytest.raises(toolchain.ToolchainError, match="apt-get install"):
        toolchain.compile_firmware(p, SOURCES, [FW])


def test_linker_script_uses_board_sizes():
    text = toolchain.linker_script(platforms.load("hifive1b"))
    assert "ORIGIN = 0x80000000, LENGTH = 0x4000" in text
    assert "ORIGIN = 0x20010000, LENGTH = 0x3f0000" in text


def test_doctor_lists_every_cross_compiler_and_emulator():
    from msfsim.sim import inventory
    tools = {r["tool"]: r for r in inventory.doctor()}
    for t in ("arm-none-eabi-gcc", "riscv64-unknown-elf-gcc", "xtensa-lx106-elf-gcc",
              "qemu-system-arm", "unicorn", "renode"):
        assert t in tools and tools[t]["install"]


# ---------------------------------------------------------------- clang (ziglang) fallback

needs_zig = pytest.mark.skipif(importlib.util.find_spec("ziglang") is None,
                               reason="clang fallback not installed: pip install ziglang")


def test_zig_target_translation():
    """zig cc wants zig's names: arch-os-abi triples, CPUs with underscores, -march as CPU."""
    assert toolchain.zig_target_flags(platforms.load("stm32f746")) == [
        "-target", "thumb-freestanding-eabi", "-mcpu=cortex_m7", "-mthumb", "-mfloat-abi=soft"]
    assert toolchain.zig_target_flags(platforms.load("nucleo-f412zg"))[2] == "-mcpu=cortex_m4"
    assert toolchain.zig_target_flags(platforms.load("hifive1b")) == [
        "-target", "riscv32-freestanding-none", "-mcpu=generic_rv32+m+a+c+zicsr+zifencei", "-mabi=ilp32"]
    assert "-mcpu=generic_rv32+m+c+zicsr+zifencei" in toolchain.zig_target_flags(platforms.load("esp32c3"))
    with pytest.raises(toolchain.ToolchainError, match="rv32gqx"):
        toolchain.compilers.zig_riscv_cpu("rv32gqx")


def test_compiler_selection_by_short_name():
    p = platforms.load("hifive1b")
    assert toolchain.select_compiler(p, "gcc").name == p.gcc
    if importlib.util.find_spec("ziglang") is not None:
        assert toolchain.select_compiler(p, "clang").name == "clang (ziglang)"
        assert toolchain.select_compiler(p, "clang (ziglang)").kind == "zig"
    else:
        with pytest.raises(toolchain.ToolchainError, match="pip install ziglang"):
            toolchain.select_compiler(p, "clang")
    with pytest.raises(toolchain.ToolchainError, match="choose gcc"):
        toolchain.select_compiler(platforms.load("esp32"), "clang")  # no clang target for Xtensa


@needs_zig
@pytest.mark.parametrize("board", ["stm32f746", "hifive1b", "esp32c3"])
def test_clang_builds_a_freestanding_firmware(board):
    p = platforms.load(board)
    gcc = toolchain.compile_firmware(p, SOURCES, [FW])
    clang = toolchain.compile_firmware(p, SOURCES, [FW], compiler="clang")
    assert clang.compiler.startswith("clang (ziglang) ") and "(zig " in clang.compiler
    assert clang.key != gcc.key and clang.path != gcc.path
    image = ElfImage(clang.path)
    assert image.entry & ~1 == image.address(p.family_info.entry)  # not zig's default _start
    assert not any(n.startswith(".debug") for n in image.sections)  # compiler_rt's DWARF dropped
    assert p.link_flash.origin <= image.address("msf_bench_begin") < p.link_flash.origin + p.flash.size


@needs_zig
def test_clang_cache_key_includes_its_version(monkeypatch):
    p = platforms.load("hifive1b")
    a = toolchain.compile_firmware(p, SOURCES, [FW], compiler="clang")
    monkeypatch.setattr(toolchain.compilers, "zig_version", lambda: "0.0.1 (zig 0.0.1)")
    b = toolchain.compile_firmware(p, SOURCES, [FW], compiler="clang")
    assert a.key != b.key and b.compiler == "clang (ziglang) 0.0.1 (zig 0.0.1)"


@needs_zig
@pytest.mark.parametrize("board", ["stm32f746", "hifive1b"])
def test_clang_lenet5_is_bit_exact(board, tmp_path):
    """A whole CNN built by clang runs bit-exact with the host reference. Its instruction count
    differs from gcc's: counts are only comparable within one compiler."""
    from msfsim import refmodel, zoo
    from msfsim.measure import Measurer
    from msfsim.pipeline import measurement_input, plan_blocks, plan_item

    model = zoo.load("lenet5-r28")
    blocks = plan_blocks(model, None)
    x = measurement_input(model)
    item = plan_item(model, blocks, x, refmodel.run(model, x))
    runs = {}
    for cc in ("gcc", "clang"):
        with Measurer(board, "unicorn", jobs=1, cache_dir=tmp_path / "m", compiler=cc, progress=False) as m:
            runs[cc] = m.measure([item])["plan"]
        assert runs[cc].status == "ok", runs[cc].cause  # "mismatch" if not bit-exact
        assert runs[cc].instructions > model.total_macs  # at least one instruction per MAC
    assert runs["clang"].compiler.startswith("clang (ziglang) ")
    assert runs["gcc"].compiler.startswith(platforms.load(board).gcc)


def test_cli_measure_with_clang_names_the_compiler(capsys):
    import json

    from msfsim import cli
    from msfsim.toolchain import select_compiler
    from msfsim.platforms import load
    try:
        if not select_compiler(load("stm32f746"), "clang").available:
            raise toolchain.ToolchainError("unavailable")
    except toolchain.ToolchainError:
        pytest.skip("clang fallback not installed: pip install ziglang")
    assert cli.main(["measure", "zoo:lenet5-r28", "--platform", "stm32f746", "--vanilla",
                     "--compiler", "clang", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["compiler"].startswith("clang (ziglang)") and js["output_matches_reference"]
