"""Renode backend (optional): drives a user's Renode through its XML-RPC robot server.

Renode is not installable from PyPI or Debian, so this backend is untested here; it is
available only when a `renode` executable is found (or named by MSFSIM_RENODE). It builds a
platform description from the board file (same addresses and sizes the firmware is linked
for), logs `cpu.ExecutedInstructions` from hooks on the two markers, pauses in `msf_finish`
and reads the result record from guest memory (DESIGN §8).

Renode answers an access to an unmapped address with a log line, not a fault: the firmware's
own memory guard (the Cortex-M MPU or the RV32 PMP, set up before main) makes such an access,
or a write to flash, fault, and its handler reports it as on QEMU (base.guest_fault_detail).

Per core, the family file's `[backends.renode]` gives the `cpu` line of the platform description
(and any `extra` peripheral line, e.g. the Cortex-M NVIC); no Renode platform of msfsim's exists
for a family without that table (Xtensa).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import xmlrpc.client
from pathlib import Path

from msfsim.platforms import Platform
from msfsim.sim import register
from msfsim.sim.base import (DEFAULT_BUDGET, DEFAULT_TIMEOUT_S, Backend, GuestResult, Measurement,
                             RESULT_FIELDS, make_measurement, tool_version)

INSTALL_HINT = "Renode is not installed: get it from https://renode.io (or set MSFSIM_RENODE)"
SERVER_START_S = 60.0


def renode_executable() -> str | None:
    return os.environ.get("MSFSIM_RENODE") or shutil.which("renode")


def platform_repl(platform: Platform) -> str:
    cfg = platform.backend("renode")
    lines = [
        f"flash: Memory.MappedMemory @ sysbus {platform.link_flash.origin:#x}",
        f"    size: {platform.flash.size:#x}",
        f"sram: Memory.MappedMemory @ sysbus {platform.link_sram.origin:#x}",
        f"    size: {platform.sram.size:#x}",
        f"cpu: {cfg['cpu']}",
    ]
    if cfg.get("extra"):
        lines.append(cfg["extra"])
    return "\n".join(lines) + "\n"


class _Robot:
    def __init__(self, port: int):
        self.proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")

    def kw(self, name: str, *args: str):
        r = self.proxy.run_keyword(name, list(args))
        if r.get("status") != "PASS":
            raise RuntimeError(f"renode {name}{list(args)}: {r.get('error')}")
        return r.get("return")

    def cmd(self, command: str):
        return self.kw("ExecuteCommand", command)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@register
class RenodeBackend(Backend):
    name = "renode"
    summary = "a user's Renode, driven through its XML-RPC robot server (untested here)"
    order = 20
    tested = False

    def available(self, platform: Platform) -> tuple[bool, str]:
        if "renode" not in platform.backends:
            return False, f"no Renode platform for {platform.name}"
        if renode_executable() is None:
            return False, INSTALL_HINT
        return True, ""

    def version(self, platform: Platform | None = None) -> str:
        return tool_version([renode_executable() or "renode", "--version"], "renode (version unknown)")

    def doctor_rows(self) -> list[dict[str, str]]:
        return doctor_rows()

    def run(self, elf, platform: Platform, budget_instructions: int = DEFAULT_BUDGET,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Measurement:
        image, begin, end, common = self.prepare(elf, platform)
        port = _free_port()
        proc = subprocess.Popen([renode_executable(), "--disable-gui", "--hide-log", "--plain",
                                 "--robot-server-port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            robot = _Robot(port)
            _wait_server(robot, proc)
            repl = Path(elf.path).with_suffix(".repl")
            repl.write_text(platform_repl(platform))
            robot.cmd('mach create "dut"')
            robot.cmd(f"machine LoadPlatformDescription @{repl.resolve()}")
            robot.cmd(f"sysbus LoadELF @{Path(elf.path).resolve()}")
            robot.cmd("numbersMode Decimal")
            robot.kw("CreateLogTester", f"timeout={timeout_s}")
            log = "self.Log(LogLevel.Warning, 'MSF_{0} %d' % self.ExecutedInstructions)"
            robot.cmd(f'cpu AddHook {begin} "{log.format("BEGIN")}"')
            robot.cmd(f'cpu AddHook {end} "{log.format("END")}"')
            robot.cmd(f'cpu AddHook {image.address("msf_finish")} '
                      f'"{log.format("FINISH")}; machine.PauseAndRequestEmulationPause()"')
            robot.kw("StartEmulation")
            counts = {}
            for tag in ("BEGIN", "END", "FINISH"):
                try:
                    line = robot.kw("WaitForLogEntry", f"MSF_{tag}", f"timeout={timeout_s}")
                except RuntimeError as e:
                    return make_measurement(instructions=None, result=None, output=b"", stop="timeout",
                                            stop_detail=str(e), **common)
                counts[tag] = int(str(line).rsplit(" ", 1)[-1])
            if counts["FINISH"] > budget_instructions:
                return make_measurement(instructions=None, result=None, output=b"", stop="budget",
                                        stop_detail=f"instruction budget of {budget_instructions} exhausted",
                                        **common)
            base = image.address("msf_result")
            words = [int(robot.cmd(f"sysbus ReadDoubleWord {base + 4 * i}")) for i in range(len(RESULT_FIELDS))]
            result = GuestResult.from_words(words)
            output = b""
            if result.valid and result["output_bytes"]:
                output = bytes(int(robot.cmd(f"sysbus ReadByte {result['output_addr'] + i}"))
                               for i in range(result["output_bytes"]))
            return make_measurement(instructions=counts["END"] - counts["BEGIN"], result=result,
                                    output=output, **common)
        finally:
            try:
                xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/").stop_remote_server()
            except (OSError, xmlrpc.client.Error):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_server(robot: _Robot, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"renode exited with status {proc.returncode} before its robot server started")
        try:
            robot.proxy.get_keyword_names()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("renode's robot server did not start")


def doctor_rows() -> list[dict[str, str]]:
    exe = renode_executable()
    return [{"tool": "renode", "status": "ok" if exe else "optional, missing",
             "detail": exe or "optional backend (untested here)", "install": INSTALL_HINT}]
