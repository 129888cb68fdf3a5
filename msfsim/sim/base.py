"""The emulator backend interface and the Measurement every backend returns."""
from __future__ import annotations

import struct
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass

from msfsim import ToolMissing
from msfsim.platforms import Platform, Region
from msfsim.toolchain import ElfImage

STATUSES = ("ok", "fault", "timeout", "budget", "overflow")
DEFAULT_BUDGET = 20_000_000_000
DEFAULT_TIMEOUT_S = 600.0

# kernels_c/runtime/msf_runtime.h: msf_result_t, in order.
RESULT_FIELDS = ("magic", "status", "code", "phase", "stack_top", "stack_bottom", "stack_lowest",
                 "arena_peak", "arena_size", "output_addr", "output_bytes", "fault_pc", "fault_cause",
                 "instret_lo", "instret_hi")
RESULT_MAGIC = 0x4D534652
FATAL_MEMORY_GUARD = 48  # msf_runtime.h: MSF_FATAL_MEMORY_GUARD
GUEST_STATUS = {0: "running", 1: "ok", 2: "fatal", 3: "fault", 4: "overflow"}


class BackendUnavailable(ToolMissing):
    """The backend's emulator is not installed (message says how to install it)."""


@dataclass(frozen=True)
class Measurement:
    instructions: int | None   # retired between entering msf_bench_begin and msf_bench_end
    stack_peak: int | None     # bytes: stack top minus the lowest stack word written
    arena_peak: int | None     # bytes: arena high-water mark
    static_ram: int            # bytes: .data + .bss (arena storage and stack excluded)
    measured_ram: int | None   # arena_peak + stack_peak + static_ram
    output: bytes
    status: str                # ok | fault | timeout | budget | overflow
    detail: str
    backend: str
    compiler: str
    platform: str = ""
    # A second, independent count of the same interval where the emulated core implements it
    # exactly: RV32 minstret under QEMU with -icount shift=0 (see csr_instret). None elsewhere.
    csr_instructions: int | None = None


@dataclass(frozen=True)
class GuestResult:
    """msf_result as read back from the guest."""
    fields: dict[str, int]

    @classmethod
    def from_words(cls, words: bytes | list[int]) -> "GuestResult":
        if isinstance(words, (bytes, bytearray)):
            words = list(struct.unpack(f"<{len(RESULT_FIELDS)}I", bytes(words[:4 * len(RESULT_FIELDS)])))
        return cls(dict(zip(RESULT_FIELDS, words)))

    def __getitem__(self, k: str) -> int:
        return self.fields[k]

    @property
    def valid(self) -> bool:
        return self.fields.get("magic") == RESULT_MAGIC

    @property
    def csr_instret(self) -> int | None:
        """RV32: the minstret difference the markers stored (64-bit), once the end marker ran.

        Only a count where the emulator makes minstret count retired instructions: QEMU does
        with -icount shift=0; without it QEMU (and unicorn 2.1, built on QEMU 5) returns
        host time-stamp-counter ticks, which no backend may report as a check."""
        if self.fields.get("phase") != 2 or "instret_hi" not in self.fields:
            return None
        return self.fields["instret_lo"] | (self.fields["instret_hi"] << 32)


def result_size() -> int:
    return 4 * len(RESULT_FIELDS)


def make_measurement(*, instructions: int | None, result: GuestResult | None, output: bytes,
                     static_ram: int, backend: str, compiler: str, platform: Platform,
                     stop: str | None = None, stop_detail: str = "",
                     csr_instructions: int | None = None, image: ElfImage | None = None) -> Measurement:
    """One place that turns what a backend saw into a Measurement, so backends agree.

    `stop` is the host-side reason the run ended early (timeout, budget, fault seen by the
    emulator) and overrides what the guest reported. `csr_instructions` is passed only by a
    backend whose emulated instruction counter is exact (see GuestResult.csr_instret).
    `image` (the firmware) lets a guest-reported memory fault say whether it was a read or a
    write where the core's fault registers do not (Cortex-M, Xtensa).
    """
    label = platform.label
    if stop is not None:
        return Measurement(None, None, None, static_ram, None, b"", stop, stop_detail, backend, compiler, label)
    if result is None or not result.valid:
        return Measurement(None, None, None, static_ram, None, b"", "fault",
                           "no result record: the firmware did not reach its exit", backend, compiler, label)
    gs = GUEST_STATUS.get(result["status"], "running")
    stack = result["stack_top"] - result["stack_lowest"]
    arena = result["arena_peak"]
    if gs == "fatal":
        detail = f"msf_fatal({result['code']})"
        if result["code"] == FATAL_MEMORY_GUARD:
            detail += (": the startup's memory guard could not confine the firmware to the board's "
                       "flash and SRAM (the core has no MPU/PMP, or too few regions)")
        return Measurement(None, stack, arena, static_ram, None, b"", "fault", detail,
                           backend, compiler, label)
    if gs == "fault":
        return Measurement(None, None, None, static_ram, None, b"", "fault",
                           guest_fault_detail(platform, result, image), backend, compiler, label)
    if gs == "running" or instructions is None:
        return Measurement(None, None, None, static_ram, None, b"", "fault",
                           f"firmware exited without completing (guest status {gs})", backend, compiler, label)
    status = "overflow" if gs == "overflow" else "ok"
    detail = "stack reached the bottom of its region" if status == "overflow" else ""
    if platform.proxy:
        detail = (detail + "; " if detail else "") + f"proxy: measured on {platform.proxy_core}"
    if csr_instructions is not None and csr_instructions != instructions:
        detail = (detail + "; " if detail else "") + \
            f"cross-check failed: minstret {csr_instructions} != counted {instructions}"
    return Measurement(instructions, stack, arena, static_ram, arena + stack + static_ram, output,
                       status, detail, backend, compiler, label, csr_instructions)


# ---------------------------------------------------------------- memory faults
# The firmware's memory guard (kernels_c/runtime: the Cortex-M MPU, the RV32 PMP, QEMU's RAM
# size for the lx106 proxy) and the unicorn backend's memory map (exactly the board's flash,
# read-only, and SRAM) make every access outside the board's memories fault. These describe
# such a fault the same way whichever backend saw it.

READ, WRITE, FETCH = "read", "write", "instruction fetch"
# Cortex-M CFSR bits (MMFSR, BFSR).
CFSR_IACCVIOL, CFSR_DACCVIOL, CFSR_MMARVALID = 1 << 0, 1 << 1, 1 << 7
CFSR_IBUSERR, CFSR_PRECISERR, CFSR_BFARVALID = 1 << 8, 1 << 9, 1 << 15
# RV32 mcause: instruction, load and store/AMO access faults (mtval holds the address).
RV_ACCESS_FAULTS = {1: FETCH, 5: READ, 7: WRITE}
# Xtensa EXCCAUSE of faults whose EXCVADDR holds the address (None: load or store, decoded).
XT_ACCESS_FAULTS = {2: FETCH, 3: None, 12: FETCH, 13: None, 14: FETCH, 15: None, 28: READ, 29: WRITE}


def _span(r: Region) -> str:
    size = f"{r.size >> 20} MB" if r.size % (1 << 20) == 0 else f"{r.size / 1024:g} KB"
    return f"{size} at 0x{r.origin:08x}..0x{r.origin + r.size - 1:08x}"


def memory_fault_detail(platform: Platform, access: str, address: int, pc: int | None = None,
                        cause: str = "") -> str:
    """'memory fault: read at 0x20050000 outside the board's SRAM (320 KB at ...) at pc=...'."""
    regions = {"flash": platform.link_flash, "SRAM": platform.link_sram}
    inside = [n for n, r in regions.items() if r.origin <= address < r.origin + r.size]
    if inside and inside[0] == "flash" and access == WRITE:
        where = f"to the board's flash (read-only, {_span(regions['flash'])})"
    elif inside:
        where = f"inside the board's {inside[0]} ({_span(regions[inside[0]])})"
    else:
        def distance(r: Region) -> int:
            return r.origin - address if address < r.origin else address - (r.origin + r.size) + 1
        near = min(regions, key=lambda n: distance(regions[n]))
        if distance(regions[near]) <= regions[near].size:
            where = f"outside the board's {near} ({_span(regions[near])})"
        else:
            where = ("outside the board's memories (flash " + _span(regions["flash"]) + ", SRAM "
                     + _span(regions["SRAM"]) + ")")
    text = f"memory fault: {access} at 0x{address:08x} {where}"
    if pc is not None:
        text += f" at pc=0x{pc:08x}"
    return text + (f" ({cause})" if cause else "")


def thumb_access(code: bytes) -> str | None:
    """READ or WRITE for a Thumb-2 load or store (its first 2-4 bytes), None otherwise."""
    if len(code) < 2:
        return None
    hw = int.from_bytes(code[:2], "little")
    load = bool(hw & (1 << 11))
    if hw >> 11 in (0x1D, 0x1E, 0x1F):  # 32-bit encodings
        # 1110100x: load/store multiple, dual, exclusive, table branch; 1111100x: load/store
        # single. In both, bit 20 of the instruction (bit 4 of the first halfword) is L.
        if hw & 0xFE00 in (0xE800, 0xF800):
            return READ if hw & 0x10 else WRITE
        return None
    if hw >> 11 == 0b01001:                                  # LDR (literal)
        return READ
    if hw >> 12 == 0b0101:                                   # register offset: STR/STRH/STRB, then loads
        return READ if (hw >> 9) & 7 >= 3 else WRITE
    if hw >> 13 == 0b011 or hw >> 12 in (0b1000, 0b1001, 0b1100):  # immediate, SP-relative, LDM/STM
        return READ if load else WRITE
    if hw & 0xFE00 == 0xB400:                                # PUSH
        return WRITE
    if hw & 0xFE00 == 0xBC00:                                # POP
        return READ
    return None


def xtensa_access(code: bytes) -> str | None:
    """READ or WRITE for an Xtensa load or store (L32R, LSAI group, L32I.N / S32I.N)."""
    if len(code) < 2:
        return None
    op0 = code[0] & 0xF
    if op0 in (1, 8):                  # L32R, L32I.N
        return READ
    if op0 == 9:                       # S32I.N
        return WRITE
    if op0 == 2:                       # LSAI: r field picks the operation
        r = code[1] >> 4
        if r in (0, 1, 2, 9, 11):      # L8UI L16UI L32I L16SI L32AI
            return READ
        if r in (4, 5, 6, 14, 15):     # S8I S16I S32I S32C1I S32RI
            return WRITE
    return None


def _cortex_m_fault(cause: int, pc: int, addr: int, code: bytes) -> tuple[str | None, int, str]:
    access: str | None = None
    if cause & (CFSR_IACCVIOL | CFSR_IBUSERR):
        access, addr = FETCH, pc
    elif (cause & CFSR_DACCVIOL and cause & CFSR_MMARVALID) or \
            (cause & CFSR_PRECISERR and cause & CFSR_BFARVALID):
        access = thumb_access(code) or "access"
    name = "MemManage" if cause & 0xFF else "BusFault"
    return access, addr, f"{name}, CFSR 0x{cause:x}"


def _rv32_fault(cause: int, pc: int, addr: int, code: bytes) -> tuple[str | None, int, str]:
    return RV_ACCESS_FAULTS.get(cause), addr, f"mcause {cause}"


def _xtensa_fault(cause: int, pc: int, addr: int, code: bytes) -> tuple[str | None, int, str]:
    if cause not in XT_ACCESS_FAULTS:
        return None, addr, ""
    return XT_ACCESS_FAULTS[cause] or xtensa_access(code) or "access", addr, f"EXCCAUSE {cause}"


# A family file's `faults`: how msf_fault's (pc, cause, address) read on that core, as
# (access or None, faulting address, note naming the cause register).
FAULT_DECODERS = {"cortex-m": _cortex_m_fault, "rv32": _rv32_fault, "xtensa": _xtensa_fault}


def guest_fault_detail(platform: Platform, result: "GuestResult", image: ElfImage | None = None) -> str:
    """What the firmware's fault handler reported (msf_fault: pc, cause register, address),
    as a memory fault where the cause is one (decoded as the board's family file says), else
    as the raw exception."""
    pc, cause, addr = result["fault_pc"], result["fault_cause"], result["code"]
    raw = f"cpu exception at pc=0x{pc:08x} cause=0x{cause:x}"
    decode = FAULT_DECODERS.get(platform.family_info.faults)
    if decode is None:
        return raw
    code = image.read(pc, 4) if image is not None else b""
    access, addr, note = decode(cause, pc, addr, code)
    if access is None:
        return raw
    return memory_fault_detail(platform, access, addr, pc, note)


def tool_version(cmd: list[str], fallback: str) -> str:
    """The first line `cmd` (e.g. `qemu-system-arm --version`) prints, or `fallback`."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return fallback
    return out.strip().splitlines()[0] if out.strip() else fallback


class Backend(ABC):
    """An emulator that runs msfsim firmware (see msfsim.sim for what a backend file defines)."""
    name: str = ""        # --backend NAME; its settings are the boards' [backends.NAME] tables
    summary: str = ""     # one line: what it is
    order: int = 100      # place in listings (CLI choices, doctor, platforms)
    tested: bool = True   # False: shipped, but not exercised where msfsim is developed

    def serves(self, platform: Platform) -> bool:
        """Whether it models the board's core: the board (or its family) has `[backends.NAME]`."""
        return self.name in platform.backends

    @abstractmethod
    def available(self, platform: Platform) -> tuple[bool, str]:
        """(usable for this board here?, why not / install hint)."""

    def version(self, platform: Platform | None = None) -> str:
        """The emulator's version, recorded beside every count (counts depend on it)."""
        return self.name

    def doctor_rows(self) -> list[dict[str, str]]:
        """`msfsim doctor` rows: {"tool", "status" (ok | missing | optional, missing),
        "detail", "install"}."""
        return []

    @abstractmethod
    def run(self, elf, platform: Platform, budget_instructions: int = DEFAULT_BUDGET,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Measurement:
        """Run a firmware built by msfsim.toolchain and measure it."""

    def prepare(self, elf, platform: Platform) -> tuple[ElfImage, int, int, dict]:
        """Checks and facts every backend needs before a run: the ELF image, the two marker
        addresses and the fields common to all its measurements."""
        ok, why = self.available(platform)
        if not ok:
            raise BackendUnavailable(why)
        image = ElfImage(elf.path)
        begin, end = markers(image)
        static_ram = sum(image.sections[n].size for n in (".data", ".bss") if n in image.sections)
        return image, begin, end, dict(static_ram=static_ram, backend=self.name,
                                       compiler=elf.compiler, platform=platform, image=image)


def markers(image: ElfImage) -> tuple[int, int]:
    return image.address("msf_bench_begin"), image.address("msf_bench_end")
