"""The emulator backend interface and the Measurement every backend returns."""
from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass

from msfsim import ToolMissing
from msfsim.platforms import Platform
from msfsim.sim.elf import ElfImage

STATUSES = ("ok", "fault", "timeout", "budget", "overflow")
DEFAULT_BUDGET = 20_000_000_000
DEFAULT_TIMEOUT_S = 600.0

# kernels_c/runtime/msf_runtime.h: msf_result_t, in order.
RESULT_FIELDS = ("magic", "status", "code", "phase", "stack_top", "stack_bottom", "stack_lowest",
                 "arena_peak", "arena_size", "output_addr", "output_bytes", "fault_pc", "fault_cause",
                 "instret_lo", "instret_hi")
RESULT_MAGIC = 0x4D534652
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
                     csr_instructions: int | None = None) -> Measurement:
    """One place that turns what a backend saw into a Measurement, so backends agree.

    `stop` is the host-side reason the run ended early (timeout, budget, fault seen by the
    emulator) and overrides what the guest reported. `csr_instructions` is passed only by a
    backend whose emulated instruction counter is exact (see GuestResult.csr_instret).
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
        return Measurement(None, stack, arena, static_ram, None, b"", "fault",
                           f"msf_fatal({result['code']})", backend, compiler, label)
    if gs == "fault":
        return Measurement(None, None, None, static_ram, None, b"", "fault",
                           f"cpu exception at pc=0x{result['fault_pc']:08x} cause=0x{result['fault_cause']:x}",
                           backend, compiler, label)
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


class Backend(ABC):
    name: str = ""

    @abstractmethod
    def available(self, platform: Platform) -> tuple[bool, str]:
        """(usable for this board here?, why not / install hint)."""

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
                                       compiler=elf.compiler, platform=platform)


def markers(image: ElfImage) -> tuple[int, int]:
    return image.address("msf_bench_begin"), image.address("msf_bench_end")
