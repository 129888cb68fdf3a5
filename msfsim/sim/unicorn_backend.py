"""unicorn backend: exact instruction counts from a block hook, on the board's real memory map.

The counting hook is native C built with cffi on first use (see benchmarks/emulators.py for its
speed); a Python block hook with the same algorithm is the fallback when no host C compiler is
available. Semihosting is handled by a code hook on the runtime's single trap instruction. The
wall-clock timeout is a sleeping watchdog thread, not unicorn's polling `emu_start(timeout=)`.

Memory: exactly the board's flash (read and execute only) and SRAM are mapped, so any other
access, or a write to flash, stops the run as a memory fault naming the access and the
address. That map is unicorn's memory guard: the firmware's own (`msf_memory_guard`, run before
main) is skipped here. unicorn models no Cortex-M System Control Space, so the MPU's registers
do not exist, and on RV32 it applies the PMP but cannot deliver the fault to the guest's trap
handler (it stops with an anonymous UC_ERR_EXCEPTION), so neither would say more than the map.
The guard runs before the begin marker: counts are the same either way.

Per core, the family file's `[backends.unicorn]` names the unicorn architecture (`arch`, a key
of ARCHES: how the engine is opened, its registers, the instruction-length rule the counter
uses, the semihosting trap) and the CPU model (`cpu`, a unicorn constant such as
UC_CPU_ARM_CORTEX_M7). A family without that table (Xtensa) is not served.
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from pathlib import Path

from dataclasses import dataclass

from msfsim.platforms import Platform, Region
from msfsim.sim import register
from msfsim.sim.base import (DEFAULT_BUDGET, DEFAULT_TIMEOUT_S, FETCH, READ, WRITE, Backend, GuestResult,
                             Measurement, make_measurement, markers, memory_fault_detail, result_size)
from msfsim.toolchain import ElfError, ElfImage, cache_dir

SYS_WRITE0, SYS_EXIT = 0x04, 0x18
PAGE = 0x1000
HOOK_CACHE_SLOTS = 1 << 16
WATCHDOG_RETRY_S = 0.01
ISA = {"arm": 0, "riscv32": 1}   # uc_count.c: how instruction lengths are decoded
UNSET = (1 << 64) - 1
_HOOK_SRC = Path(__file__).with_name("uc_count.c")
_CDEF = """
typedef struct msf_block_slot {
    uint64_t key;
    uint32_t count, reserved;
} msf_block_slot;
typedef struct msf_counter {
    uint64_t total, begin_at, end_at, budget, begin_addr, end_addr;
    int32_t isa, over_budget;
    void *uc, *emu_stop, *mem_read;
    const uint8_t *code;
    uint64_t code_base, code_size;
    msf_block_slot *slots;
    uint32_t mask, used;
    uint64_t last_block;
} msf_counter;
void msf_uc_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data);
"""

_native_lock = threading.Lock()
_native = None


def _import_unicorn():
    try:
        import unicorn
        from unicorn.unicorn_py3.unicorn import uclib
    except ImportError as e:
        raise ImportError("unicorn is not installed: pip install unicorn") from e
    return unicorn, uclib


def native_hook():
    """The cffi-built counting hook module, or None if it cannot be built here."""
    global _native
    with _native_lock:
        if _native is None:
            try:
                _native = _build_native()
            except Exception as e:  # no host compiler or cffi: Python fallback
                _native = False
                print(f"msfsim: native unicorn hook unavailable ({e}); using the Python hook",
                      file=sys.stderr)
        return _native or None


def _build_native():
    import cffi

    src = _HOOK_SRC.read_text()
    tag = hashlib.sha256((src + _CDEF + sys.version).encode()).hexdigest()[:16]
    name = f"_msf_uc_count_{tag}"
    out_dir = cache_dir() / "native"
    out_dir.mkdir(parents=True, exist_ok=True)
    found = list(out_dir.glob(f"{name}.*.so")) + list(out_dir.glob(f"{name}.so"))
    if not found:
        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        ffi.set_source(name, src, extra_compile_args=["-O2"])
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            built = Path(ffi.compile(tmpdir=tmp, verbose=False))
            final = out_dir / built.name
            os.replace(built, final)
            found = [final]
    spec = importlib.util.spec_from_file_location(name, found[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _PyCounter:
    """Same algorithm as uc_count.c, in Python (≈ 30× slower)."""

    def __init__(self, isa: int, begin: int, end: int, budget: int, code: bytes, code_base: int):
        self.total, self.begin_at, self.end_at = 0, UNSET, UNSET
        self.isa, self.begin, self.end, self.budget = isa, begin, end, budget
        self.code, self.code_base, self.cache = code, code_base, {}
        self.over_budget = 0
        self.last_block = 0

    def count(self, data: bytes) -> int:
        n = off = 0
        while off + 2 <= len(data):
            hw = data[off] | (data[off + 1] << 8)
            if self.isa == 0:
                off += 4 if (hw >> 11) in (0x1D, 0x1E, 0x1F) else 2
            else:
                off += 2 if (hw & 3) != 3 else 4
            n += 1
        return n

    def hook(self, uc, address: int, size: int, _user) -> None:
        self.last_block = address
        n = self.cache.get((address, size))
        if n is None:
            lo = address - self.code_base
            data = self.code[lo:lo + size] if 0 <= lo and lo + size <= len(self.code) else bytes(uc.mem_read(address, size))
            n = self.cache[(address, size)] = self.count(data)
        if address == self.begin and self.begin_at == UNSET:
            self.begin_at = self.total
        elif address == self.end and self.end_at == UNSET:
            self.end_at = self.total
        self.total += n
        if self.total > self.budget and not self.over_budget:
            self.over_budget = 1
            uc.emu_stop()


def memory_map(platform: Platform) -> list[tuple[Region, int]]:
    """What unicorn maps, and nothing else: the board's real memories at the addresses the
    firmware is linked for, flash read and execute only (the loader's mem_write is not
    subject to that), SRAM read, write and execute."""
    unicorn, _ = _import_unicorn()
    return [(platform.link_flash, unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC),
            (platform.link_sram, unicorn.UC_PROT_ALL)]


@dataclass(frozen=True)
class Arch:
    """How unicorn runs one instruction set (a family's `[backends.unicorn] arch`)."""
    uc_arch: str                 # unicorn.UC_ARCH_*
    uc_mode: tuple[str, ...]     # unicorn.UC_MODE_* (or-ed)
    consts: str                  # unicorn.<consts> module: CPU models and registers
    pc: str
    sp: str
    arg0: str                    # semihosting operation and its argument
    arg1: str
    ret: str                     # return address register (the memory guard is skipped to it)
    isa: int                     # ISA: instruction lengths for the counter
    thumb: bool                  # code addresses carry the Thumb bit
    trap_size: int               # bytes of the semihosting trap instruction
    reset_lr: int | None = None  # LR at reset, as the emulators set it (ARMv7-M: 0xFFFFFFFF)
    stop_at: int = 0xFFFFFFFF    # emulation end address (never reached: the firmware exits)


ARCHES = {
    "arm": Arch("UC_ARCH_ARM", ("UC_MODE_THUMB", "UC_MODE_MCLASS"), "arm_const",
                "UC_ARM_REG_PC", "UC_ARM_REG_SP", "UC_ARM_REG_R0", "UC_ARM_REG_R1", "UC_ARM_REG_LR",
                ISA["arm"], thumb=True, trap_size=2, reset_lr=0xFFFFFFFF, stop_at=0xFFFFFFFE),
    "riscv32": Arch("UC_ARCH_RISCV", ("UC_MODE_RISCV32",), "riscv_const",
                    "UC_RISCV_REG_PC", "UC_RISCV_REG_SP", "UC_RISCV_REG_A0", "UC_RISCV_REG_A1",
                    "UC_RISCV_REG_RA", ISA["riscv32"], thumb=False, trap_size=4),
}


@register
class UnicornBackend(Backend):
    name = "unicorn"
    summary = "unicorn engine in-process: exact counts from a native block hook (pip only)"
    order = 0

    def __init__(self, native: bool = True):
        self.native = native

    def available(self, platform: Platform) -> tuple[bool, str]:
        if "unicorn" not in platform.backends:
            return False, f"unicorn has no model of the {platform.proxy_core or platform.core} core"
        arch = platform.backends["unicorn"].get("arch")
        if arch not in ARCHES:
            return False, (f"{platform.name}: [backends.unicorn] arch {arch!r} is not one of "
                           f"{', '.join(ARCHES)}")
        for name, region in (("flash", platform.link_flash), ("SRAM", platform.link_sram)):
            if region.origin % PAGE or region.size % PAGE:
                return False, (f"unicorn maps whole {PAGE}-byte pages and {platform.name}'s {name} "
                               f"(0x{region.size:x} bytes at 0x{region.origin:x}) is not made of them")
        try:
            _import_unicorn()
        except ImportError as e:
            return False, str(e)
        return True, ""

    def version(self, platform: Platform | None = None) -> str:
        import unicorn
        return f"unicorn {unicorn.__version__}"

    def doctor_rows(self) -> list[dict[str, str]]:
        try:
            import unicorn
            rows = [{"tool": "unicorn", "status": "ok", "detail": unicorn.__version__,
                     "install": "pip install unicorn"}]
            native = native_hook() is not None
        except ImportError:
            rows = [{"tool": "unicorn", "status": "missing", "detail": "default backend",
                     "install": "pip install unicorn"}]
            native = False
        rows.append({"tool": "unicorn native hook (cffi + host gcc)", "status": "ok" if native else "missing",
                     "detail": "exact counting in native code; without it a much slower Python hook",
                     "install": "pip install cffi; apt-get install gcc"})
        return rows

    def run(self, elf, platform: Platform, budget_instructions: int = DEFAULT_BUDGET,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Measurement:
        unicorn, uclib = _import_unicorn()

        ok, why = self.available(platform)
        if not ok:
            raise RuntimeError(why)
        cfg = platform.backend("unicorn")
        arch = ARCHES[cfg["arch"]]
        consts = importlib.import_module(f"unicorn.{arch.consts}")
        mode = 0
        for m in arch.uc_mode:
            mode |= getattr(unicorn, m)
        uc = unicorn.Uc(getattr(unicorn, arch.uc_arch), mode)
        uc.ctl_set_cpu_model(getattr(consts, cfg["cpu"]))
        pc_reg, sp_reg, a0, a1 = (getattr(consts, r) for r in (arch.pc, arch.sp, arch.arg0, arch.arg1))
        thumb = 1 if arch.thumb else 0
        image = ElfImage(elf.path)

        for region, perms in memory_map(platform):  # page multiples: see available()
            uc.mem_map(region.origin, region.size, perms)
        for seg in image.segments:
            if seg.data:
                uc.mem_write(seg.paddr, seg.data)
        flash = platform.link_flash
        code = bytes(uc.mem_read(flash.origin, min(flash.size, max(
            (s.paddr + len(s.data) for s in image.segments if s.data), default=flash.origin) - flash.origin)))

        begin, end = markers(image)
        isa = arch.isa
        keepalive: list = []
        native = native_hook() if self.native else None
        if native is not None:
            ffi, lib = native.ffi, native.lib
            c = ffi.new("msf_counter *")
            slots = ffi.new("msf_block_slot[]", HOOK_CACHE_SLOTS)
            code_buf = ffi.from_buffer(code)
            c.total, c.begin_at, c.end_at, c.budget = 0, UNSET, UNSET, budget_instructions
            c.begin_addr, c.end_addr, c.isa = begin, end, isa
            c.uc = ffi.cast("void *", uc._uch.value)
            c.emu_stop = ffi.cast("void *", ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value)
            c.mem_read = ffi.cast("void *", ctypes.cast(uclib.uc_mem_read, ctypes.c_void_p).value)
            c.code, c.code_base, c.code_size = code_buf, flash.origin, len(code)
            c.slots, c.mask = slots, HOOK_CACHE_SLOTS - 1
            keepalive += [c, slots, code_buf]
            hh = ctypes.c_size_t()
            fn = int(ffi.cast("uintptr_t", ffi.addressof(lib, "msf_uc_block_hook")))
            err = uclib.uc_hook_add(uc._uch, ctypes.byref(hh), unicorn.UC_HOOK_BLOCK, ctypes.c_void_p(fn),
                                    ctypes.c_void_p(int(ffi.cast("uintptr_t", c))), 1, 0)
            if err:
                raise unicorn.UcError(err)
            counter = c
        else:
            counter = _PyCounter(isa, begin, end, budget_instructions, code, flash.origin)
            uc.hook_add(unicorn.UC_HOOK_BLOCK, counter.hook)

        exited: list[int] = []
        trap = image.address("msf_semihost_trap")
        step = arch.trap_size

        def semihost(uc_, address, size, _user):
            op = uc_.reg_read(a0)
            if op == SYS_EXIT:
                exited.append(uc_.reg_read(a1))
                uc_.emu_stop()
                return
            uc_.reg_write(a0, 0)  # SYS_WRITE0 and others: the host reads memory instead
            uc_.reg_write(pc_reg, (address + step) | thumb)

        uc.hook_add(unicorn.UC_HOOK_CODE, semihost, begin=trap, end=trap)

        try:
            guard = image.address("msf_memory_guard")
        except ElfError:
            guard = None
        if guard is not None:
            lr = getattr(consts, arch.ret)

            def skip_guard(uc_, address, size, _user):  # return at once: the map is the guard
                uc_.reg_write(pc_reg, uc_.reg_read(lr))

            uc.hook_add(unicorn.UC_HOOK_CODE, skip_guard, begin=guard, end=guard)

        bad_access: list[tuple[str, int]] = []
        kinds = {unicorn.UC_MEM_READ_UNMAPPED: READ, unicorn.UC_MEM_READ_PROT: READ,
                 unicorn.UC_MEM_WRITE_UNMAPPED: WRITE, unicorn.UC_MEM_WRITE_PROT: WRITE,
                 unicorn.UC_MEM_FETCH_UNMAPPED: FETCH, unicorn.UC_MEM_FETCH_PROT: FETCH}

        def invalid_access(uc_, access, address, size, value, _user):
            if not bad_access:
                bad_access.append((kinds.get(access, "access"), address))
            return False  # not handled: the run stops with unicorn's error

        uc.hook_add(unicorn.UC_HOOK_MEM_INVALID, invalid_access)

        sp = platform.link_sram.origin + platform.sram.size
        uc.reg_write(sp_reg, sp)
        if arch.reset_lr is not None:
            uc.reg_write(getattr(consts, arch.ret), arch.reset_lr)  # ARMv7-M reset value, as in QEMU
        entry = image.entry
        stop, stop_detail = None, ""
        try:
            with _Watchdog(uclib, uc._uch, timeout_s):
                uc.emu_start(entry | thumb, arch.stop_at)
        except unicorn.UcError as e:
            pc, cause = uc.reg_read(pc_reg), ""
            if arch.isa == ISA["riscv32"] and e.errno == unicorn.UC_ERR_EXCEPTION:
                # unicorn leaves PC past a trapping RV32 instruction: walk the last block.
                pc = _previous_rv_insn(uc, int(counter.last_block), pc)
            if bad_access and e.errno in (unicorn.UC_ERR_READ_UNMAPPED, unicorn.UC_ERR_WRITE_UNMAPPED,
                                          unicorn.UC_ERR_FETCH_UNMAPPED, unicorn.UC_ERR_READ_PROT,
                                          unicorn.UC_ERR_WRITE_PROT, unicorn.UC_ERR_FETCH_PROT):
                access, address = bad_access[0]
                stop, stop_detail = "fault", memory_fault_detail(platform, access, address, pc, str(e))
            else:
                stop, stop_detail = "fault", f"{e} at pc=0x{pc:08x}{cause}"
        if stop is None and counter.over_budget:
            stop, stop_detail = "budget", f"instruction budget of {budget_instructions} exhausted"
        elif stop is None and not exited:
            stop, stop_detail = "timeout", f"no exit within {timeout_s:g} s"

        result = GuestResult.from_words(bytes(uc.mem_read(image.address("msf_result"), result_size())))
        instructions = None
        if counter.begin_at != UNSET and counter.end_at != UNSET:
            instructions = int(counter.end_at - counter.begin_at)
        output = b""
        if stop is None and result.valid and result["output_bytes"]:
            output = bytes(uc.mem_read(result["output_addr"], result["output_bytes"]))
        return make_measurement(instructions=instructions, result=result, output=output,
                                static_ram=_static_ram(image), backend=self.name + ("" if native else " (python hook)"),
                                compiler=elf.compiler, platform=platform, stop=stop, stop_detail=stop_detail,
                                image=image)


class _Watchdog:
    """Stops the emulation once `timeout_s` of wall time has passed, from a thread that sleeps
    until the deadline.

    unicorn's own `emu_start(timeout=...)` polls from a helper thread that sleeps for microseconds
    at a time (≈ 10 000 wake-ups per second of emulation under strace); that poller costs ≈ 20 %
    of a second core, slows the emulating thread by ≈ 10 %, and on a loaded machine competes
    with it for a core."""

    def __init__(self, uclib, handle, timeout_s: float):
        self._stop = lambda: uclib.uc_emu_stop(handle)
        self._timeout_s = timeout_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="msfsim-unicorn-watchdog", daemon=True)

    def _run(self) -> None:
        if self._done.wait(self._timeout_s):
            return
        # A stop request that lands before unicorn has started is dropped: repeat it.
        while True:
            self._stop()
            if self._done.wait(WATCHDOG_RETRY_S):
                return

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()  # no stop request may reach the engine after this


def _previous_rv_insn(uc, block: int, next_pc: int) -> int:
    """The instruction that ends at `next_pc`, decoding lengths from the block start."""
    if not block or not 0 < next_pc - block <= 8192:
        return next_pc
    data = bytes(uc.mem_read(block, next_pc - block))
    off = prev = 0
    while off < len(data):
        prev = off
        off += 2 if (data[off] & 3) != 3 else 4
    return block + prev if off == len(data) else next_pc


def _static_ram(image: ElfImage) -> int:
    return sum(image.sections[n].size for n in (".data", ".bss") if n in image.sections)
