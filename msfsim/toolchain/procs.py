"""Running the compilers so that nothing outlives an interrupt: each tool runs in a process
group of its own, killed whole (driver, cc1, as, ld) when the caller is interrupted or times out;
a measurement worker leads a group itself and keeps its tools in it (`tools_in_caller_group`),
so that killing the worker's group ends its compilers too."""
from __future__ import annotations

import os
import signal
import subprocess
from typing import Sequence

_TOOLS_OWN_GROUP = True


def tools_in_caller_group() -> None:
    """Run tools in this process's group (a pool worker that leads one: killing the group
    ends the worker and its compilers together)."""
    global _TOOLS_OWN_GROUP
    _TOOLS_OWN_GROUP = False


def run_tool(cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
    """`subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)`, except that a
    timeout or an interrupt (Ctrl-C, SIGTERM) kills the tool with every process it started."""
    own = _TOOLS_OWN_GROUP and os.name == "posix"
    p = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         **({"process_group": 0} if own else {}))
    try:
        out, err = p.communicate(timeout=timeout)
    except BaseException:
        kill_descendants(p.pid)
        try:
            if own:
                os.killpg(p.pid, signal.SIGKILL)
            else:
                p.kill()
        except OSError:
            pass
        p.communicate()
        raise
    return subprocess.CompletedProcess(list(cmd), p.returncode, out, err)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return out


def kill_descendants(pid: int) -> None:
    """SIGKILL every descendant of `pid` (Linux: found in /proc; elsewhere none). Each is
    stopped (SIGSTOP) before its children are listed, so none starts another one unseen."""
    todo = _children(pid)
    seen: set[int] = set()
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.add(c)
        try:
            os.kill(c, signal.SIGSTOP)
        except OSError:
            continue
        todo += _children(c)
    for c in seen:
        try:
            os.kill(c, signal.SIGKILL)
        except OSError:
            pass
