"""QEMU backend: the firmware runs in qemu-system-* with a counting TCG plugin.

The plugin (qemu_plugin/msf_count.c) is built with the host gcc on first use and counts from
marker to marker; the firmware prints its result record and output through semihosting,
which this module parses. Every run is bounded by a timeout.

RV32 runs use `-icount shift=0` by default: minstret then counts retired instructions, and the
markers' minstret difference (markers_rv32.S) is a second, independent count of the same
interval, reported as `Measurement.csr_instructions`. It leaves the plugin's counts unchanged
and costs little on real firmware (about 1.0-1.5x the wall time of a CNN run, 2x on a tight
loop); `QemuBackend(icount=False)` or MSFSIM_QEMU_ICOUNT=0 turns it off.

Per core, the family file's `[backends.qemu]` gives the system binary and its Debian package,
the cpu, how semihosting is enabled (`chardev`: -semihosting-config with the console in a file;
`plain`: -semihosting) and how the ELF is loaded (`load`, with `@elf@` for its path), plus any
arguments after it (`args`); the board's adds the machine and, where needed, the RAM size. The
family's `[runtime] instret_csr = "minstret"` turns on the cross-check.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from msfsim import platforms
from msfsim.platforms import Platform
from msfsim.sim import register
from msfsim.sim.base import (DEFAULT_BUDGET, DEFAULT_TIMEOUT_S, Backend, GuestResult, Measurement,
                             make_measurement, tool_version)
from msfsim.toolchain import ElfImage, ToolchainError, cache_dir

PLUGIN_SRC = Path(__file__).with_name("qemu_plugin") / "msf_count.c"
PLUGIN_BUDGET_EXIT = 3  # the plugin's exit status when the budget is spent
ICOUNT_ENV = "MSFSIM_QEMU_ICOUNT"
# csrr rd, minstret (csrrs rd, 0xb02, x0), any rd.
CSRR_MINSTRET_MASK, CSRR_MINSTRET = 0xFFFFF07F, 0xB0202073
MARKER_SCAN_INSNS = 16


def plugin_path() -> Path:
    """The counting plugin, built on first use (cached by source hash)."""
    src = PLUGIN_SRC.read_bytes()
    tag = hashlib.sha256(src).hexdigest()[:16]
    out = cache_dir() / "native" / f"msf_count_{tag}.so"
    if out.is_file():
        return out
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise ToolchainError("the QEMU counting plugin needs a host C compiler: apt-get install gcc")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_so = Path(tmp) / out.name
        r = subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-o", str(tmp_so), str(PLUGIN_SRC)],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise ToolchainError(f"building the QEMU plugin failed: {r.stderr.strip()}")
        os.replace(tmp_so, out)
    return out


def qemu_command(platform: Platform, elf_path: str, plugin: Path, plugin_args: str,
                 console: Path, icount: bool = False) -> list[str]:
    cfg = platform.backend("qemu")
    cmd = [cfg["system"], "-M", cfg["machine"]]
    if icount:
        cmd += ["-icount", "shift=0"]  # one instruction per virtual ns: minstret is exact
    if cfg.get("cpu"):
        cmd += ["-cpu", cfg["cpu"]]
    if cfg.get("ram"):
        cmd += ["-m", cfg["ram"]]
    cmd += ["-nographic", "-monitor", "none", "-serial", "none",
            "-plugin", f"{plugin},{plugin_args}", "-d", "plugin"]
    return cmd + firmware_args(cfg, elf_path, console)


def firmware_args(cfg: dict, elf_path: str, console: Path | None = None) -> list[str]:
    """Semihosting, loading the ELF and what follows, as the family's [backends.qemu] says;
    `console` (a file) receives the semihosting console where the machine allows (`chardev`)."""
    if cfg.get("semihosting", "chardev") == "plain":
        args = ["-semihosting"]
    elif console is not None:
        args = ["-semihosting-config", "enable=on,target=native,chardev=msfcon",
                "-chardev", f"file,id=msfcon,path={console}"]
    else:
        args = ["-semihosting-config", "enable=on,target=native"]
    args += [a.replace("@elf@", elf_path) for a in cfg.get("load", ["-kernel", "@elf@"])]
    return args + list(cfg.get("args", ()))


def minstret_read_offset(image: ElfImage, address: int) -> int | None:
    """Instructions a marker at `address` retires before its `csrr minstret`, decoded from the
    ELF (None if it has none near its entry). The minstret difference counts from the begin
    marker's read to the end marker's, so the interval between the two entries is
    difference + offset(begin) - offset(end); markers_rv32.S puts both reads first (0 and 0)."""
    for seg in image.segments:
        lo = address - seg.vaddr
        if 0 <= lo < len(seg.data):
            code = seg.data[lo:lo + 4 * MARKER_SCAN_INSNS]
            break
    else:
        return None
    off = 0
    for n in range(MARKER_SCAN_INSNS):
        if off + 2 > len(code):
            return None
        if code[off] & 3 != 3:  # 16-bit compressed instruction
            off += 2
            continue
        if off + 4 > len(code):
            return None
        if int.from_bytes(code[off:off + 4], "little") & CSRR_MINSTRET_MASK == CSRR_MINSTRET:
            return n
        off += 4
    return None


def parse_console(text: str) -> tuple[GuestResult | None, bytes]:
    result, out = None, bytearray()
    for line in text.splitlines():
        if line.startswith("MSFR "):
            result = GuestResult.from_words([int(w, 16) for w in line.split()[1:]])
        elif line.startswith("MSFO "):
            out += bytes.fromhex(line[5:].strip())
    return result, bytes(out)


def _icount_default() -> bool:
    return os.environ.get(ICOUNT_ENV, "1").strip().lower() not in ("0", "no", "off", "false")


@register
class QemuBackend(Backend):
    name = "qemu"
    summary = "QEMU system emulation with a counting TCG plugin (Debian's QEMU 7.2)"
    order = 10

    def __init__(self, icount: bool | None = None):
        # None: on unless MSFSIM_QEMU_ICOUNT=0. Only RV32 has a counter to cross-check.
        self.icount = _icount_default() if icount is None else icount

    def cross_checks(self, platform: Platform) -> bool:
        """Whether runs on `platform` report minstret beside the plugin's count."""
        return self.icount and platform.family_info.instret_csr == "minstret"

    def available(self, platform: Platform) -> tuple[bool, str]:
        if "qemu" not in platform.backends:
            return False, f"no QEMU machine for {platform.name}"
        cfg = platform.backends["qemu"]
        system = cfg["system"]
        if shutil.which(system) is None:
            pkg = cfg.get("package", system)
            return False, f"{system} not found: apt-get install --no-install-recommends {pkg}"
        if shutil.which("gcc") is None and shutil.which("cc") is None:
            return False, "the counting plugin needs a host C compiler: apt-get install gcc"
        return True, ""

    def version(self, platform: Platform | None = None) -> str:
        system = platform.backend("qemu")["system"] if platform is not None else systems()[0][0]
        return tool_version([system, "--version"], "qemu (version unknown)")

    def doctor_rows(self) -> list[dict[str, str]]:
        return doctor_rows()

    def run(self, elf, platform: Platform, budget_instructions: int = DEFAULT_BUDGET,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Measurement:
        image, begin, end, common = self.prepare(elf, platform)
        check = self.cross_checks(platform)
        if check:
            offsets = minstret_read_offset(image, begin), minstret_read_offset(image, end)
            check = None not in offsets
        with tempfile.TemporaryDirectory(prefix="msfsim-qemu-") as tmp:
            counts, console = Path(tmp) / "counts.txt", Path(tmp) / "console.txt"
            args = f"begin={begin:#x},end={end:#x},out={counts}"
            if budget_instructions < DEFAULT_BUDGET:
                args += f",budget={budget_instructions}"
            cmd = qemu_command(platform, os.path.abspath(elf.path), plugin_path(), args, console, check)
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return make_measurement(instructions=None, result=None, output=b"", stop="timeout",
                                        stop_detail=f"no exit within {timeout_s:g} s", **common)
            plug = _parse_counts(counts)
            if plug.get("budget_hit"):
                return make_measurement(instructions=None, result=None, output=b"", stop="budget",
                                        stop_detail=f"instruction budget of {budget_instructions} exhausted",
                                        **common)
            text = console.read_text() if console.is_file() else r.stdout
            result, output = parse_console(text)
            if result is None:
                tail = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
                return make_measurement(instructions=None, result=None, output=b"", stop="fault",
                                        stop_detail=f"qemu: {tail}", **common)
            instructions = None
            if plug.get("begin", -1) >= 0 and plug.get("end", -1) >= 0 and plug["end"] >= plug["begin"]:
                instructions = plug["end"] - plug["begin"]
            csr = result.csr_instret if check else None
            if csr is not None:
                csr += offsets[0] - offsets[1]
            return make_measurement(instructions=instructions, result=result, output=output,
                                    csr_instructions=csr, **common)


_UNSET = (1 << 64) - 1


def _parse_counts(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition(" ")
        n = int(v)
        out[k] = -1 if n == _UNSET else n
    return out


def systems() -> list[tuple[str, str]]:
    """(qemu-system-* binary, Debian package) of every core family QEMU serves, by binary."""
    found: dict[str, str] = {}
    for name in platforms.families():
        cfg = platforms.family(name).backends.get("qemu")
        if cfg:
            found.setdefault(cfg["system"], cfg.get("package", cfg["system"]))
    return sorted(found.items())


def doctor_rows() -> list[dict[str, str]]:
    rows = []
    for system, pkg in systems():
        path = shutil.which(system)
        ver = ""
        if path:
            ver = subprocess.run([system, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.splitlines()[0]
        rows.append({"tool": system, "status": "ok" if path else "missing", "detail": ver,
                     "install": f"apt-get install --no-install-recommends {pkg}"})
    return rows
