"""Hostile environments: a firmware is confined to the board's real flash and SRAM on every
backend. unicorn maps exactly those regions (flash read-only); on QEMU, whose machines map
far more (mps2: 4 MB at both origins; sifive_e: 512 MB of XIP flash; virt: all of -m), the
runtime's memory guard (Cortex-M MPU, RV32 PMP; the lx106 proxy: QEMU's RAM size) makes
every other access fault. A fault is a measurement error naming the access, the address and
the region it missed, and comes at once, not at the timeout."""
import dataclasses
import time
from pathlib import Path

import pytest

from msfsim import platforms, toolchain
from msfsim.platforms import Region
from msfsim.sim import get_backend
from msfsim.sim.base import thumb_access
from msfsim.sim.elf import ElfImage
from msfsim.sim.unicorn_backend import UnicornBackend, memory_map

FW = Path(__file__).parent / "firmware"
SOURCES = [FW / "test_bounds.c", FW / "msf_arena.c", toolchain.RUNTIME_DIR / "msf_main.c"]
LOAD, STORE, LOAD_STORE_BACK, CALL, PUSH_AT = 1, 2, 3, 4, 5  # test_bounds.c MSF_TEST_ACCESS
TIMEOUT_S = 60.0
FAST_S = 20.0  # a fault ends the run at once; only a hang would reach TIMEOUT_S

GUARDED = ["stm32f746", "nucleo-f767zi", "nucleo-f412zg", "hifive1b", "esp32c3"]  # MPU / PMP
CASES = [(name, backend) for name in GUARDED for backend in ("unicorn", "qemu")] + [("esp32", "qemu")]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MSFSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def build(platform, access=None, addr=None):
    defines = {} if access is None else {"MSF_TEST_ACCESS": access, "MSF_TEST_ADDR": hex(addr)}
    return toolchain.compile_firmware(platform, SOURCES, [FW], defines)


def backend_or_skip(name, platform):
    backend = get_backend(name)
    ok, why = backend.available(platform)
    if not ok:
        pytest.skip(f"{name} backend for {platform.name}: {why}")
    return backend


def run(backend, platform, elf):
    t = time.perf_counter()
    m = backend.run(elf, platform, timeout_s=TIMEOUT_S)
    return m, time.perf_counter() - t


def sram_end(p):
    return p.link_sram.origin + p.sram.size


def flash_end(p):
    return p.link_flash.origin + p.flash.size


def assert_memory_fault(m, elapsed, access, addr, region):
    assert m.status == "fault", (m.status, m.detail)
    assert m.detail.startswith("memory fault: "), m.detail
    assert f"{access} at 0x{addr:08x}" in m.detail, m.detail
    assert region in m.detail, m.detail
    assert m.instructions is None and m.measured_ram is None and m.output == b""
    assert elapsed < FAST_S, f"fault took {elapsed:.1f} s"


@pytest.mark.parametrize("name,backend", CASES)
@pytest.mark.parametrize("access,word", [(LOAD, "read"), (STORE, "write")])
def test_access_just_past_sram_end_faults(name, backend, access, word):
    p = platforms.load(name)
    b = backend_or_skip(backend, p)
    m, elapsed = run(b, p, build(p, access, sram_end(p)))
    assert_memory_fault(m, elapsed, word, sram_end(p), "outside the board's SRAM")


@pytest.mark.parametrize("name,backend", CASES)
def test_read_just_past_flash_end_faults(name, backend):
    p = platforms.load(name)
    b = backend_or_skip(backend, p)
    m, elapsed = run(b, p, build(p, LOAD, flash_end(p)))
    assert_memory_fault(m, elapsed, "read", flash_end(p), "outside the board's flash")


@pytest.mark.parametrize("name,backend", [(n, b) for n, b in CASES if n != "esp32"])
def test_write_into_flash_faults(name, backend):
    """Flash is read-only (the MPU region, the PMP entry, unicorn's mapping). Not on the lx106
    proxy: QEMU's sysrom is RAM and the core has no MPU."""
    p = platforms.load(name)
    b = backend_or_skip(backend, p)
    addr = flash_end(p) - 4
    m, elapsed = run(b, p, build(p, STORE, addr))
    assert_memory_fault(m, elapsed, "write", addr, "to the board's flash (read-only")


@pytest.mark.parametrize("name,backend", CASES)
def test_read_just_below_sram_faults(name, backend):
    p = platforms.load(name)
    b = backend_or_skip(backend, p)
    addr = p.link_sram.origin - 4
    m, elapsed = run(b, p, build(p, LOAD, addr))
    assert_memory_fault(m, elapsed, "read", addr, "outside the board's")


@pytest.mark.parametrize("name,backend", CASES)
def test_instruction_fetch_past_sram_faults(name, backend):
    p = platforms.load(name)
    b = backend_or_skip(backend, p)
    m, elapsed = run(b, p, build(p, CALL, sram_end(p)))
    assert_memory_fault(m, elapsed, "instruction fetch", sram_end(p), "outside the board's SRAM")
    assert f"pc=0x{sram_end(p):08x}" in m.detail


@pytest.mark.parametrize("name,backend", CASES)
def test_stack_pointer_outside_sram_is_reported_not_hung(name, backend):
    """A push through a stack pointer past the end of SRAM: the fault handler itself must not
    fault again on that stack (a Cortex-M lockup would last until the timeout)."""
    p = platforms.load(name)
    b = backend_or_skip(backend, p)
    m, elapsed = run(b, p, build(p, PUSH_AT, sram_end(p) + 64))
    assert_memory_fault(m, elapsed, "", sram_end(p) + 60, "outside the board's SRAM")


@pytest.mark.parametrize("name", GUARDED + ["esp32"])
def test_last_valid_words_work_and_backends_agree(name):
    """The last word of SRAM (the top of the stack: loaded and stored back) and the last word
    of flash (loaded) are the board's own: no fault, same result on every backend."""
    p = platforms.load(name)
    backends = [get_backend(b) for b in ("unicorn", "qemu") if get_backend(b).available(p)[0]]
    if not backends:
        pytest.skip(f"no backend for {name} here")
    for access, addr in ((LOAD_STORE_BACK, sram_end(p) - 4), (LOAD, flash_end(p) - 4), (None, None)):
        elf = build(p, access, addr)
        runs = [b.run(elf, p, timeout_s=TIMEOUT_S) for b in backends]
        assert all(m.status == "ok" for m in runs), [(m.backend, m.detail) for m in runs]
        first = runs[0]
        for m in runs[1:]:
            assert (m.instructions, m.stack_peak, m.arena_peak, m.output) == \
                   (first.instructions, first.stack_peak, first.arena_peak, first.output), m.backend
        if access == LOAD:
            assert first.output[:4] == b"\0\0\0\0"  # erased flash past the image reads as zeros


def test_unicorn_maps_exactly_the_board():
    for p in platforms.all_platforms():
        if not UnicornBackend().available(p)[0]:
            continue
        import unicorn
        regions = memory_map(p)
        assert [r for r, _ in regions] == [p.link_flash, p.link_sram]
        assert [r.size for r, _ in regions] == [p.flash.size, p.sram.size]
        assert regions[0][1] & unicorn.UC_PROT_WRITE == 0 and regions[1][1] == unicorn.UC_PROT_ALL


def test_unicorn_refuses_a_board_it_cannot_map_exactly():
    p = dataclasses.replace(platforms.load("stm32f746"), sram=Region(0x20000000, 0x50000 - 32))
    ok, why = UnicornBackend().available(p)
    assert not ok and "SRAM" in why and "pages" in why


def test_guard_failure_is_a_clear_error_on_qemu():
    """SRAM of 320 KB - 32 B needs more MPU regions than the core has: the startup stops with
    msf_fatal(48), reported as such, before any measurement."""
    p = dataclasses.replace(platforms.load("stm32f746"), sram=Region(0x20000000, 0x50000 - 32))
    b = backend_or_skip("qemu", p)
    m, elapsed = run(b, p, build(p))
    assert m.status == "fault" and m.detail.startswith("msf_fatal(48): the startup's memory guard"), m.detail
    assert elapsed < FAST_S


@pytest.mark.parametrize("name", ["stm32f746", "hifive1b"])
def test_guard_is_outside_the_measured_interval(name):
    """msf_memory_guard runs before msf_bench_begin: its code is not between the markers."""
    p = platforms.load(name)
    elf = build(p)
    image = ElfImage(elf.path)
    b = backend_or_skip("qemu", p)
    plain = b.run(elf, p, timeout_s=TIMEOUT_S)
    u = UnicornBackend().run(elf, p, timeout_s=TIMEOUT_S)  # skips the guard: same count
    assert plain.status == u.status == "ok" and plain.instructions == u.instructions
    assert image.address("msf_memory_guard") not in (image.address("msf_bench_begin"),
                                                     image.address("msf_bench_end"))


def test_linker_script_exports_the_board_regions_and_checks_granules():
    text = toolchain.linker_script(platforms.load("stm32f746"))
    for sym in ("__msf_flash_start", "__msf_flash_end", "__msf_sram_start", "__msf_sram_end"):
        assert sym in text
    assert "ASSERT(ORIGIN(SRAM) % 32 == 0" in text
    # ld stops with the ASSERT's message (toolchain._diagnose shows only ld's last line today).
    p = dataclasses.replace(platforms.load("stm32f746"), sram=Region(0x20000000, 0x50000 - 4))
    with pytest.raises(toolchain.ToolchainError, match="build for stm32f746 failed"):
        build(p)


@pytest.mark.parametrize("code,kind", [
    ("0168", "read"),       # ldr r1, [r0]
    ("0160", "write"),      # str r1, [r0]
    ("01b4", "write"),      # push {r0}
    ("01bc", "read"),       # pop {r0}
    ("0198", "read"),       # ldr r0, [sp, #4]
    ("d0f80000", "read"),   # ldr.w r0, [r0]
    ("c0f80010", "write"),  # str.w r1, [r0]
    ("d0e90023", "read"),   # ldrd r2, r3, [r0]
    ("00bf", None),         # nop
])
def test_thumb_access_decoding(code, kind):
    assert thumb_access(bytes.fromhex(code)) == kind
