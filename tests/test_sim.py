"""Backends against the runtime's test firmwares (tests/firmware/): agreement between
unicorn and QEMU, exact stack read-back, faults, budget, timeout, overflow, and the RV32
minstret cross-check."""
import importlib.util
import pickle
import random
import struct
import threading
import time
from pathlib import Path

import pytest

from msfsim import measure, platforms, refmodel, toolchain, zoo
from msfsim.codegen import generate_plan
from msfsim.pipeline import measurement_input, plan_blocks
from msfsim.sim import get_backend
from msfsim.sim.elf import ElfImage
from msfsim.sim import unicorn_backend
from msfsim.sim.qemu_backend import QemuBackend, minstret_read_offset
from msfsim.sim.unicorn_backend import UnicornBackend

FW = Path(__file__).parent / "firmware"
SOURCES = [FW / "test_block.c", FW / "msf_arena.c", toolchain.RUNTIME_DIR / "msf_main.c"]
BOARDS = platforms.available()


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MSFSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def build(name, **defines):
    return toolchain.compile_firmware(platforms.load(name), SOURCES, [FW], defines)


def backends_for(name):
    p = platforms.load(name)
    return [b for b in ("unicorn", "qemu") if get_backend(b).available(p)[0]]


@pytest.mark.parametrize("name", BOARDS)
def test_backends_agree_exactly(name):
    p = platforms.load(name)
    elf = build(name, MSF_TEST_ROUNDS=3)
    runs = [get_backend(b).run(elf, p, timeout_s=30) for b in backends_for(name)]
    assert runs and all(m.status == "ok" for m in runs), [m.detail for m in runs]
    first = runs[0]
    assert first.instructions > 3 * 256  # the mixing loop alone retires more than that
    assert first.arena_peak == 256 and first.static_ram == elf.static_ram > 0
    assert first.measured_ram == first.arena_peak + first.stack_peak + first.static_ram
    for m in runs[1:]:
        assert (m.instructions, m.stack_peak, m.arena_peak, m.static_ram, m.output) == \
               (first.instructions, first.stack_peak, first.arena_peak, first.static_ram, first.output)
    if p.proxy:
        assert all("proxy" in m.detail and "proxy" in m.platform for m in runs)


def test_instruction_count_scales_with_work():
    p = platforms.load("stm32f746")
    a, b = (UnicornBackend().run(build("stm32f746", MSF_TEST_ROUNDS=r), p) for r in (2, 3))
    per_round = b.instructions - a.instructions
    assert per_round >= 256 * 4  # >= 4 instructions per element per round
    c = UnicornBackend().run(build("stm32f746", MSF_TEST_ROUNDS=4), p)
    assert c.instructions - b.instructions == per_round  # same loop body: exactly linear


@pytest.mark.parametrize("name", ["stm32f746", "hifive1b", "esp32"])
def test_local_array_stack_use_reads_back_exactly(name):
    p = platforms.load(name)
    backend = get_backend(backends_for(name)[0])
    peaks = {}
    for words in (64, 600):
        m = backend.run(build(name, MSF_TEST_STACK_WORDS=words), p, timeout_s=30)
        assert m.status == "ok", m.detail
        array_addr = struct.unpack_from("<I", m.output, 4)[0]
        stack_top = p.link_sram.origin + p.sram.size
        assert m.stack_peak == stack_top - array_addr  # the array is the deepest thing written
        peaks[words] = m.stack_peak
    assert peaks[600] - peaks[64] == 4 * (600 - 64)


def _symbol(elf, name):
    return ElfImage(elf.path).address(name)


@pytest.mark.parametrize("name", BOARDS)
def test_fault_reported_with_pc_and_cause(name):
    p = platforms.load(name)
    elf = build(name, MSF_TEST_FAULT=1)
    site = _symbol(elf, "msf_test_fault_site")
    for b in backends_for(name):
        m = get_backend(b).run(elf, p, timeout_s=30)
        assert m.status == "fault" and f"pc=0x{site:08x}" in m.detail, (b, m.detail)
        assert m.instructions is None and m.measured_ram is None


def test_unmapped_access_is_a_fault_on_unicorn():
    p = platforms.load("stm32f746")
    end_of_sram = p.link_sram.origin + p.sram.size
    m = UnicornBackend().run(build("stm32f746", MSF_TEST_FAULT=2, MSF_TEST_UNMAPPED_ADDR=end_of_sram), p)
    assert m.status == "fault" and "UNMAPPED" in m.detail and "pc=0x" in m.detail


def test_msf_fatal_is_reported():
    p = platforms.load("hifive1b")
    for b in backends_for("hifive1b"):
        m = get_backend(b).run(build("hifive1b", MSF_TEST_FAULT=3), p, timeout_s=30)
        assert m.status == "fault" and m.detail == "msf_fatal(42)"


@pytest.mark.parametrize("name", ["stm32f746", "esp32c3", "esp32"])
def test_budget_enforced(name):
    p = platforms.load(name)
    elf = build(name, MSF_TEST_HANG=1)
    for b in backends_for(name):
        m = get_backend(b).run(elf, p, budget_instructions=2_000_000, timeout_s=30)
        assert m.status == "budget", (b, m.detail)


@pytest.mark.parametrize("backend", ["unicorn", "qemu"])
def test_timeout_enforced(backend):
    p = platforms.load("hifive1b")
    m = get_backend(backend).run(build("hifive1b", MSF_TEST_HANG=1), p, timeout_s=1.0)
    assert m.status == "timeout"


@pytest.mark.parametrize("native", [True, False])
def test_unicorn_watchdog_stops_a_hang_and_goes_away(native):
    p = platforms.load("stm32f746")
    t = time.perf_counter()
    m = UnicornBackend(native=native).run(build("stm32f746", MSF_TEST_HANG=1), p,
                                          budget_instructions=10**15, timeout_s=0.5)
    assert m.status == "timeout" and m.instructions is None
    assert time.perf_counter() - t < 10  # stopped near the deadline, not at the budget
    assert not [th for th in threading.enumerate() if "watchdog" in th.name]


def test_unicorn_watchdog_does_not_delay_a_short_run():
    p = platforms.load("stm32f746")
    elf = build("stm32f746")
    t = time.perf_counter()
    assert UnicornBackend().run(elf, p, timeout_s=3600).status == "ok"
    assert time.perf_counter() - t < 60


@pytest.mark.parametrize("slots", [16, 64])
def test_native_hook_exact_when_block_cache_collides_or_fills(monkeypatch, slots):
    """A tiny cache forces probing past collisions and, once half full, uncached blocks."""
    p = platforms.load("stm32f746")
    elf = build("stm32f746", MSF_TEST_ROUNDS=3)
    ref = UnicornBackend(native=False).run(elf, p)
    monkeypatch.setattr(unicorn_backend, "HOOK_CACHE_SLOTS", slots)
    m = UnicornBackend().run(elf, p)
    assert m.status == ref.status == "ok"
    assert (m.instructions, m.output) == (ref.instructions, ref.output)


def test_stack_overflow_detected():
    p = platforms.load("hifive1b")
    m = UnicornBackend().run(build("hifive1b", MSF_TEST_STACK_WORDS=3900), p)  # ~15.6 KB of 16 KB
    assert m.status == "overflow"


def test_python_hook_matches_native_hook():
    p = platforms.load("nucleo-f412zg")
    elf = build("nucleo-f412zg")
    assert UnicornBackend(native=True).run(elf, p).instructions == \
           UnicornBackend(native=False).run(elf, p).instructions


def test_division_helpers_are_exact(tmp_path):
    """lx106 gets __divsi3 & co. from the runtime; every core must agree with Python."""
    rng = random.Random(7)
    pairs = [(rng.randint(-2**31, 2**31 - 1), rng.choice([1, -1, 3, -7, 255, 65537, 2**31 - 1, -2**31,
                                                          rng.randint(-2**31, 2**31 - 1) or 5]))
             for _ in range(32)]
    raw = b"".join(struct.pack("<ii", a, b) for a, b in pairs)
    (tmp_path / "test_div_input.inc").write_text(",".join(str(x) for x in struct.unpack(f"{len(raw)}b", raw)))
    expect = b""
    for a, b in pairs:
        if a == -2**31 and b == -1:
            continue
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        ua, ub = a & 0xFFFFFFFF, b & 0xFFFFFFFF
        prod = (a * b) & 0xFFFFFFFFFFFFFFFF
        expect += struct.pack("<6I", q & 0xFFFFFFFF, (a - q * b) & 0xFFFFFFFF, ua // ub, ua % ub,
                              prod & 0xFFFFFFFF, prod >> 32)
    assert len(expect) == 32 * 24  # no INT_MIN / -1 pair drawn
    defines = {"MSF_INPUT_BYTES": len(raw), "MSF_OUTPUT_BYTES": len(expect), "MSF_ARENA_BYTES": len(expect)}
    for name in ("esp32", "hifive1b"):
        p = platforms.load(name)
        elf = toolchain.compile_firmware(p, [FW / "test_div.c", FW / "msf_arena.c",
                                             toolchain.RUNTIME_DIR / "msf_main.c"], [tmp_path, FW], defines)
        m = get_backend(backends_for(name)[0]).run(elf, p, timeout_s=30)
        assert m.status == "ok" and m.output == expect, name


def test_measure_elf_is_picklable_and_pure():
    elf = build("esp32c3")
    args = pickle.loads(pickle.dumps((elf, platforms.load("esp32c3"), "unicorn")))
    assert measure.measure_elf(*args) == measure.measure_elf(elf, "esp32c3", "unicorn")


def test_renode_skips_with_reason():
    ok, why = get_backend("renode").available(platforms.load("stm32f746"))
    if not ok:
        pytest.skip(f"renode backend: {why}")
    m = get_backend("renode").run(build("stm32f746"), platforms.load("stm32f746"), timeout_s=60)
    u = UnicornBackend().run(build("stm32f746"), platforms.load("stm32f746"))
    assert (m.instructions, m.stack_peak, m.output) == (u.instructions, u.stack_peak, u.output)


# ---------------------------------------------------------------- RV32 minstret cross-check

HAS_ZIG = importlib.util.find_spec("ziglang") is not None


def _need_qemu(name):
    ok, why = QemuBackend().available(platforms.load(name))
    if not ok:
        pytest.skip(f"qemu: {why}")


def _lenet_firmware(name, tmp_path):
    """A real CNN firmware: zoo:lenet5-r28 layer by layer, and its host reference output."""
    model = zoo.load("lenet5-r28")
    x = measurement_input(model)
    generate_plan(model, plan_blocks(model, None), x).write(tmp_path)
    elf = measure.build_firmware(name, tmp_path)
    return elf, refmodel.run(model, x).tobytes()


@pytest.mark.parametrize("compiler", ["gcc", pytest.param("clang", marks=pytest.mark.skipif(
    not HAS_ZIG, reason="clang fallback not installed: pip install ziglang"))])
def test_markers_read_minstret_first(compiler):
    """The correction between marker entry and CSR read, derived from the code: both markers
    (markers_rv32.S) read minstret as their first instruction, whatever compiled the rest."""
    elf = toolchain.compile_firmware(platforms.load("hifive1b"), SOURCES, [FW], compiler=compiler)
    image = ElfImage(elf.path)
    assert minstret_read_offset(image, image.address("msf_bench_begin")) == 0
    assert minstret_read_offset(image, image.address("msf_bench_end")) == 0
    assert minstret_read_offset(image, image.address("msf_generated_run")) is None


@pytest.mark.parametrize("name", ["hifive1b", "esp32c3"])
@pytest.mark.parametrize("firmware", ["test_block", "lenet5", "test_block-clang"])
def test_minstret_equals_plugin_count(name, firmware, tmp_path):
    """Two independent counts of the same interval agree exactly: the TCG plugin's and the
    guest's own minstret under -icount shift=0."""
    _need_qemu(name)
    p = platforms.load(name)
    expect = None
    if firmware == "lenet5":
        elf, expect = _lenet_firmware(name, tmp_path)
    elif firmware == "test_block-clang":
        if not HAS_ZIG:
            pytest.skip("clang fallback not installed: pip install ziglang")
        elf = toolchain.compile_firmware(p, SOURCES, [FW], {"MSF_TEST_ROUNDS": 7}, compiler="clang")
    else:
        elf = build(name, MSF_TEST_ROUNDS=5)
    m = QemuBackend(icount=True).run(elf, p, timeout_s=60)
    assert m.status == "ok" and m.detail == "", m.detail
    assert m.csr_instructions is not None and m.instructions > 2000
    assert m.csr_instructions == m.instructions
    if expect is not None:
        assert m.output == expect
    u = UnicornBackend().run(elf, p)
    assert u.instructions == m.instructions
    # unicorn's minstret is host time-stamp ticks, not a count: it is never reported.
    assert u.csr_instructions is None


def test_icount_changes_no_count_and_can_be_turned_off(monkeypatch):
    _need_qemu("esp32c3")
    p = platforms.load("esp32c3")
    elf = build("esp32c3", MSF_TEST_ROUNDS=9)
    on = QemuBackend(icount=True).run(elf, p, timeout_s=30)
    off = QemuBackend(icount=False).run(elf, p, timeout_s=30)
    assert on.status == off.status == "ok"
    assert (on.instructions, on.stack_peak, on.output) == (off.instructions, off.stack_peak, off.output)
    assert on.csr_instructions == on.instructions and off.csr_instructions is None
    monkeypatch.setenv("MSFSIM_QEMU_ICOUNT", "0")
    assert QemuBackend().run(elf, p, timeout_s=30).csr_instructions is None


def test_cross_check_only_on_rv32():
    _need_qemu("stm32f746")
    p = platforms.load("stm32f746")
    m = QemuBackend(icount=True).run(build("stm32f746"), p, timeout_s=30)
    assert m.status == "ok" and m.csr_instructions is None


def test_cross_check_mismatch_is_reported():
    """A disagreement is never silent: make_measurement names both figures."""
    from msfsim.sim.base import RESULT_FIELDS, RESULT_MAGIC, GuestResult, make_measurement
    words = dict.fromkeys(RESULT_FIELDS, 0) | {"magic": RESULT_MAGIC, "status": 1, "phase": 2,
                                               "stack_top": 64, "stack_lowest": 32, "instret_lo": 5}
    result = GuestResult.from_words([words[f] for f in RESULT_FIELDS])
    assert result.csr_instret == 5
    assert GuestResult.from_words([(words | {"instret_hi": 3})[f] for f in RESULT_FIELDS]).csr_instret == 3 * 2**32 + 5
    assert GuestResult.from_words([(words | {"phase": 1})[f] for f in RESULT_FIELDS]).csr_instret is None
    m = make_measurement(instructions=6, result=result, output=b"", static_ram=0, backend="qemu",
                         compiler="gcc", platform=platforms.load("hifive1b"),
                         csr_instructions=result.csr_instret)
    assert m.status == "ok" and "cross-check failed: minstret 5 != counted 6" in m.detail
