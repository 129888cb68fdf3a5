import dataclasses
import os
from pathlib import Path

import pytest

from msfsim import platforms, toolchain

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
    # The same firmware fits a board with more SRAM.
    toolchain.compile_firmware(platforms.load("esp32c3"), SOURCES, [FW], {"MSF_TEST_STATIC_BYTES": 20000})


def test_missing_compiler_says_how_to_install():
    p = dataclasses.replace(platforms.load("stm32f746"), gcc="no-such-cross-gcc", clang_target="")
    with pytest.raises(toolchain.ToolchainError, match="apt-get install"):
        toolchain.compile_firmware(p, SOURCES, [FW])


def test_linker_script_uses_board_sizes():
    text = toolchain.linker_script(platforms.load("hifive1b"))
    assert "ORIGIN = 0x80000000, LENGTH = 0x4000" in text
    assert "ORIGIN = 0x20010000, LENGTH = 0x3f0000" in text


def test_doctor_lists_every_cross_compiler_and_emulator():
    tools = {r["tool"]: r for r in toolchain.doctor()}
    for t in ("arm-none-eabi-gcc", "riscv64-unknown-elf-gcc", "xtensa-lx106-elf-gcc",
              "qemu-system-arm", "unicorn", "renode"):
        assert t in tools and tools[t]["install"]
