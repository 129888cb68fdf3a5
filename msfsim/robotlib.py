"""Robot Framework keyword library: msfsim regression checks for the project's and users' CI.

    *** Settings ***
    Library    msfsim.robotlib.MsfsimLibrary

    *** Test Cases ***
    KWS fits the board
        Load Model    zoo:dscnn-kws
        Search Plan    stm32f746    objective=ram    max_overhead=1.5
        Measure Plan    unicorn
        Plan Should Fit Board
        Peak RAM Should Be At Most    24K

One library instance serves the whole run (GLOBAL scope) and keeps one measurement cache for it,
so a firmware measured by one test (or by `Backends Should Agree`) is not measured again. Every
failure states both figures and, for RAM, the memory convention (DESIGN §3).

`Search Plan` searches as `msfsim search` does: on measured costs by default (candidate blocks
compiled and run on the emulator), or with `cost=analytic` on the exact analytic model (no
compiler needed for the search itself; much faster).

Baselines are JSON files of measured figures, one per suite, written by the baseline keywords
themselves in a recording run: `robot --variable MSFSIM_UPDATE_BASELINES:1 SUITE` (or the
environment variable MSFSIM_UPDATE_BASELINES=1, or the library argument `update_baselines=True`).
Recording merges: it updates the entries the run measured and keeps every other entry of the
file. Each entry records the board and the compiler and backend versions it was measured with; a
run on another board or with other versions fails and says so rather than comparing counts that
are not comparable.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from robot.api import Failure, SkipExecution, logger
from robot.api.deco import keyword, library

from . import ROOT, MsfsimError, __version__, pipeline
from .fileio import write_atomic
from .fusion.block import Block
from .ir import Model
from .platforms import Platform
from .search.result import MEMORY_CONVENTION

UPDATE_ENV = "MSFSIM_UPDATE_BASELINES"      # environment or Robot variable of a recording run
UPDATE_VARIABLE = f"--variable {UPDATE_ENV}:1"
UPDATE_COMMAND = "python scripts/update_baselines.py"   # msfsim's own suites (robot/), all at once
RECORD = (f"record it by running the suite with `{UPDATE_VARIABLE}` (or {UPDATE_ENV}=1 in the "
          f"environment) and commit the file once the run passes")
GENERATED_BY = f"msfsim.robotlib baseline keywords, recording run ({UPDATE_ENV}=1)"
BASELINE_FORMAT = 1
COSTS = ("measured", "analytic")
RAM_CONVENTIONS = ("measured", "act", "act_io")
MEASURED_RAM = "measured RAM = arena high-water + stack high-water + static .data/.bss"


def parse_size(text: str | int) -> int:
    """'65536', '64K', '0.5M' (K = 1024) -> bytes, as on the command line."""
    if isinstance(text, int):
        return text
    t = str(text).strip().upper().removesuffix("B")
    mult = 1
    if t and t[-1] in "KMG":
        mult, t = 1024 ** ("KMG".index(t[-1]) + 1), t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        raise ValueError(f"invalid size {text!r} (bytes, or e.g. 64K, 0.5M)") from None
    return int(value)


def _opt_float(v: Any) -> float | None:
    return None if v in (None, "", "None", "${None}") else float(v)


def _opt_size(v: Any) -> int | None:
    return None if v in (None, "", "None", "${None}") else parse_size(v)


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def how_to_record(path: str | os.PathLike) -> str:
    """How to (re-)record the baselines in `path`: the recording switch every suite has, and for
    msfsim's own suites (robot/baselines/) the script that re-records them all."""
    text = RECORD
    try:
        own = Path(path).resolve().is_relative_to((ROOT / "robot").resolve())
    except OSError:
        own = False
    if own:
        text += f"; msfsim's own suites all at once: `{UPDATE_COMMAND}`"
    return text


@lru_cache(maxsize=None)
def backend_version(backend: str, platform_name: str) -> str:
    """Version of the emulator that runs `platform_name` on `backend` (counts depend on it)."""
    if backend not in pipeline.backend_names():
        return backend
    return pipeline.backend_version(backend, pipeline.load_platform(platform_name))


@dataclass(frozen=True)
class CurrentPlan:
    """The plan the keywords act on: its board, blocks and a tag naming how it was made."""
    model: Model
    platform: Platform
    blocks: tuple[Block, ...]
    tag: str                    # e.g. "ram,F<=1.5", "vanilla", a plan file stem
    act: int | None = None
    act_io: int | None = None

    @property
    def block_keys(self) -> list[str]:
        return [b.key for b in self.blocks]

    @property
    def what(self) -> str:
        return f"{self.model.name} plan {self.tag} on {self.platform.label}"


@dataclass(frozen=True)
class Figures:
    """A plan measured as one firmware (the `measure_plan.Outcome` plus what it ran on)."""
    status: str
    detail: str
    instructions: int | None
    measured_ram: int | None
    arena: int | None
    stack: int | None
    static: int | None
    flash_bytes: int | None
    compiler: str
    backend: str
    backend_version: str
    cached: bool

    def ram_text(self, ram: int | None = None) -> str:
        return (f"{self.measured_ram if ram is None else ram:,} B (arena {self.arena:,} + stack "
                f"{self.stack:,} + static {self.static:,})")

    def to_json(self) -> dict[str, Any]:
        return {"instructions": self.instructions, "measured_ram": self.measured_ram,
                "arena": self.arena, "stack": self.stack, "static": self.static,
                "flash_bytes": self.flash_bytes, "compiler": self.compiler,
                "backend": self.backend, "backend_version": self.backend_version}


@library(scope="GLOBAL", auto_keywords=False)
class MsfsimLibrary:
    """msfsim keywords: load a model, search and measure a plan, check it against the board,
    a RAM budget, recorded baselines, the reference output and a second emulator."""

    ROBOT_LIBRARY_SCOPE = "GLOBAL"
    ROBOT_LIBRARY_VERSION = __version__

    def __init__(self, cache_dir: str | None = None, update_baselines: bool | str | None = None):
        # A fresh cache per run by default: a regression run measures today's firmware.
        self._tmp = None if cache_dir else tempfile.TemporaryDirectory(prefix="msfsim-robot-")
        self.cache_dir = Path(cache_dir) if cache_dir else Path(self._tmp.name)
        # None: decided per check, by the environment or the Robot variable (see _recording)
        self.update = None if update_baselines is None else _truthy(update_baselines)
        self._model: Model | None = None
        self._plan: CurrentPlan | None = None
        self._figures: dict[tuple, Figures] = {}
        self._last: Figures | None = None

    # ------------------------------------------------------------------ model and plan

    @keyword
    def load_model(self, model: str) -> str:
        """Load `zoo:NAME` or an ONNX file as the current model; returns its name."""
        try:
            self._model = pipeline.load_model(model)
        except MsfsimError as exc:
            raise Failure(str(exc) if model.startswith("zoo:") else
                          f"cannot load {model}: {exc}") from None
        self._plan = None
        self._last = None
        logger.info(f"{self._model.name}: {len(self._model.layers)} layers, "
                    f"{self._model.total_macs:,} MACs")
        return self._model.name

    @keyword
    def search_plan(self, platform: str, objective: str = "ram", max_overhead: Any = None,
                    max_ram: Any = None, cost: str = "measured", cost_model: str = "exact",
                    backend: str = "unicorn") -> dict[str, Any]:
        """Search the current model's plan for `platform` (P1: objective=ram with max_overhead;
        P2: objective=latency with max_ram); the board's SRAM caps the RAM. Returns the search
        JSON (DESIGN §7).

        `cost=measured` (the default, as `msfsim search`): candidate blocks are compiled and run
        on `backend`, and the overhead bound counts measured instructions. `cost=analytic`: the
        exact analytic model ranks the plans (MACs and allocated bytes; fast, nothing compiled).
        The plan's tag (in baseline keys) names the cost unless it is analytic."""
        if cost not in COSTS:
            raise Failure(f"unknown cost {cost!r}; use one of {', '.join(COSTS)}")
        plat = pipeline.load_platform(platform)
        model = pipeline.deployed(self._need_model(), plat)
        f_max, r_max = _opt_float(max_overhead), _opt_size(max_ram)
        try:
            result = pipeline.search(model, plat, cost=cost, objective=objective,
                                     max_overhead=f_max, max_ram=r_max, cost_model=cost_model,
                                     backend=backend, cache_dir=self.cache_dir, progress=False)
        except MsfsimError as exc:
            raise Failure(f"{model.name} on {plat.label}: {exc}") from None
        parts = [objective] + ([f"F<={f_max:g}"] if f_max is not None else []) \
            + ([f"RAM<={r_max}"] if r_max is not None else []) + ([cost] if cost != "analytic" else [])
        p = result.plan
        self._set_plan(CurrentPlan(model, plat, tuple(b.block for b in p.blocks), ",".join(parts),
                                   p.act, p.act_io))
        logger.info(result.format_table())
        return result.to_json()

    @keyword
    def use_vanilla_plan(self, platform: str) -> None:
        """Make layer-by-layer execution the current plan on `platform`."""
        plat = pipeline.load_platform(platform)
        model = pipeline.deployed(self._need_model(), plat)
        blocks = pipeline.plan_blocks(model, None)
        act, act_io = pipeline.plan_peaks(model, blocks)
        self._set_plan(CurrentPlan(model, plat, tuple(blocks), "vanilla", act, act_io))

    @keyword
    def use_plan_file(self, path: str, platform: str) -> None:
        """Make the blocks of a plan file (`msfsim search -o plan.json`) the current plan."""
        plat = pipeline.load_platform(platform)
        model = pipeline.deployed(self._need_model(), plat)
        try:
            blocks = pipeline.plan_blocks(model, path)
        except MsfsimError as exc:
            raise Failure(str(exc)) from None
        self._set_plan(CurrentPlan(model, plat, tuple(blocks), Path(path).stem))

    def _set_plan(self, plan: CurrentPlan) -> None:
        self._plan, self._last = plan, None
        logger.info(f"plan {plan.tag}: {' '.join(plan.block_keys)}")

    def _need_model(self) -> Model:
        if self._model is None:
            raise Failure("no model loaded: use `Load Model` first")
        return self._model

    def _need_plan(self) -> CurrentPlan:
        if self._plan is None:
            raise Failure("no plan: use `Search Plan`, `Use Vanilla Plan` or `Use Plan File` first")
        return self._plan

    # ------------------------------------------------------------------ measuring

    @keyword
    def require_backend(self, backend: str, platform: str) -> None:
        """Skip the test (or, in a suite setup, the suite) when `backend` cannot run `platform`
        here, with the reason (e.g. Renode not installed)."""
        names = pipeline.backend_names()
        if backend not in names:
            raise Failure(f"unknown backend {backend!r}; choose one of {', '.join(names)}")
        try:
            ok, why = pipeline.backend_available(backend, pipeline.load_platform(platform))
        except ValueError as exc:
            ok, why = False, str(exc)
        if not ok:
            raise SkipExecution(f"backend {backend} unavailable for {platform}: {why}")

    @keyword
    def measure_plan(self, backend: str = "unicorn") -> dict[str, Any]:
        """Build the current plan into one firmware, run it on `backend` and keep its figures
        (cached for the run). Fails when the firmware faults, does not fit or computes another
        output than the host reference. Returns the figures."""
        fig = self._measure(backend)
        if fig.status != "ok":
            plan = self._need_plan()
            raise Failure(f"{plan.what}, {backend}: {fig.status}: {fig.detail}")
        self._last = fig
        logger.info(f"{self._need_plan().what}, {backend} ({fig.backend_version}, {fig.compiler}): "
                    f"{fig.instructions:,} instructions, {MEASURED_RAM}: {fig.ram_text()}, flash "
                    f"{fig.flash_bytes:,} B{' [cached]' if fig.cached else ''}")
        return fig.to_json()

    def _measure(self, backend: str) -> Figures:
        plan = self._need_plan()
        key = (plan.model.name, id(plan.model), plan.platform.name, plan.blocks, backend)
        if key in self._figures:
            return self._figures[key]
        try:
            o, compiler = pipeline.measure_blocks(plan.model, plan.platform, list(plan.blocks),
                                                  backend, self.cache_dir)
        except MsfsimError as exc:
            raise Failure(f"{plan.what}: cannot measure on {backend}: {exc}") from None
        fig = Figures(o.status, o.detail, o.instructions, o.measured_ram, o.arena_peak,
                      o.stack_peak, o.static_ram, o.flash_bytes, compiler, backend,
                      backend_version(backend, plan.platform.name), o.cached)
        self._figures[key] = fig
        return fig

    def _need_figures(self) -> Figures:
        if self._last is None:
            raise Failure("no measurement of the current plan: use `Measure Plan` first")
        return self._last

    # ------------------------------------------------------------------ checks

    @keyword
    def plan_should_fit_board(self) -> None:
        """The last measured firmware fits the board: measured RAM <= SRAM, flash <= flash."""
        plan, fig = self._need_plan(), self._need_figures()
        p = plan.platform
        errors = []
        if fig.measured_ram > p.sram.size:
            errors.append(f"{MEASURED_RAM}: {fig.ram_text()} > SRAM {p.sram.size:,} B")
        if fig.flash_bytes is not None and fig.flash_bytes > p.flash.size:
            errors.append(f"flash {fig.flash_bytes:,} B > board flash {p.flash.size:,} B")
        if errors:
            raise Failure(f"{plan.what} ({fig.backend}) does not fit: " + "; ".join(errors))
        logger.info(f"{plan.what}: RAM {fig.measured_ram:,} / {p.sram.size:,} B, flash "
                    f"{fig.flash_bytes:,} / {p.flash.size:,} B")

    @keyword
    def peak_ram_should_be_at_most(self, limit: str, convention: str = "measured") -> int:
        """Peak RAM of the current plan <= `limit` (bytes, or 64K / 0.5M). `convention`:
        measured (emulator, needs `Measure Plan`), act or act_io (analytic, from the search).
        Returns the peak."""
        plan = self._need_plan()
        cap = parse_size(limit)
        if convention == "measured":
            fig = self._need_figures()
            peak, shown = fig.measured_ram, fig.ram_text()
            note = f"{MEASURED_RAM}, on {fig.backend}"
        elif convention in ("act", "act_io"):
            peak = plan.act if convention == "act" else plan.act_io
            if peak is None:
                raise Failure(f"the plan {plan.tag} has no analytic {convention}: use `Search Plan`")
            shown, note = f"{peak:,} B", MEMORY_CONVENTION
        else:
            raise Failure(f"unknown memory convention {convention!r}; use one of {RAM_CONVENTIONS}")
        if peak > cap:
            raise Failure(f"{plan.what}: peak RAM ({convention}) {shown} exceeds the budget "
                          f"{cap:,} B by {peak - cap:,} B [{note}]")
        logger.info(f"{plan.what}: peak RAM ({convention}) {shown} <= {cap:,} B")
        return peak

    @keyword
    def outputs_should_be_bit_exact(self, backend: str = "unicorn") -> None:
        """Run the current plan on `backend` (an emulator or `host`) on the measurement input and
        compare every output byte with the reference model (msfsim.refmodel)."""
        plan = self._need_plan()
        x = pipeline.measurement_input(plan.model)
        expect = np.asarray(pipeline.reference_output(plan.model, x), np.int8)
        with tempfile.TemporaryDirectory(prefix="msfsim-robot-plan-") as d:
            path = Path(d) / "plan.json"
            path.write_text(json.dumps(pipeline.plan_json(plan.model, list(plan.blocks))))
            try:
                got = pipeline.run(plan.model, plan.platform, x, plan=path, backend=backend)
            except MsfsimError as exc:
                raise Failure(f"{plan.what}: running on {backend} failed: {exc}") from None
        got, expect = got.reshape(-1), expect.reshape(-1)
        if got.size != expect.size:
            raise Failure(f"{plan.what}, {backend}: {got.size} output bytes, reference has {expect.size}")
        diff = np.flatnonzero(got != expect)
        if diff.size:
            i = int(diff[0])
            raise Failure(f"{plan.what}, {backend}: {diff.size} of {expect.size} output bytes differ "
                          f"from the reference; first at index {i}: expected {int(expect[i])}, "
                          f"got {int(got[i])} (max |diff| "
                          f"{int(np.abs(got.astype(np.int16) - expect.astype(np.int16)).max())})")
        logger.info(f"{plan.what}, {backend}: {expect.size} output bytes bit-exact")

    @keyword
    def backends_should_agree(self, first: str = "unicorn", second: str = "qemu") -> None:
        """The current plan's firmware gives the same instructions, stack, arena, static RAM and
        output on both backends."""
        plan = self._need_plan()
        a, b = self._measure(first), self._measure(second)
        for f in (a, b):
            if f.status != "ok":
                raise Failure(f"{plan.what}, {f.backend}: {f.status}: {f.detail}")
        fields = ("instructions", "measured_ram", "arena", "stack", "static")
        diffs = [f"{k}: {first} {getattr(a, k):,} vs {second} {getattr(b, k):,}"
                 for k in fields if getattr(a, k) != getattr(b, k)]
        if diffs:
            raise Failure(f"{plan.what}: backends disagree ({a.backend_version} vs "
                          f"{b.backend_version}): " + "; ".join(diffs) + f" [{MEASURED_RAM}]")
        logger.info(f"{plan.what}: {first} and {second} agree: {a.instructions:,} instructions, "
                    f"RAM {a.ram_text()}, outputs bit-exact with the reference on both")

    @keyword
    def measurement_should_be_proxy_estimate(self) -> None:
        """The current board is a proxy and its figures say so (e.g. esp32 measured on lx106)."""
        plan, fig = self._need_plan(), self._need_figures()
        p = plan.platform
        if not p.proxy or "proxy" not in p.label or "proxy" not in fig.detail:
            raise Failure(f"{p.name}: expected proxy labelling; board label {p.label!r}, "
                          f"measurement note {fig.detail!r}")
        logger.info(f"{p.label}: {fig.detail}")

    # ------------------------------------------------------------------ baselines

    @keyword
    def instructions_should_match_baseline(self, baselines: str, key: str | None = None) -> None:
        """The last measured instruction count equals the baseline entry `key` (default
        MODEL/PLAN-TAG/BACKEND) of the JSON file `baselines`."""
        self._baseline_check(baselines, key, "instructions")

    @keyword
    def measured_ram_should_match_baseline(self, baselines: str, key: str | None = None) -> None:
        """The last measured RAM (arena + stack + static) equals the baseline entry."""
        self._baseline_check(baselines, key, "measured_ram")

    @keyword
    def measurement_should_match_baseline(self, baselines: str, key: str | None = None) -> None:
        """Instructions and measured RAM both equal the baseline entry."""
        self._baseline_check(baselines, key, "instructions", "measured_ram")

    def _baseline_key(self, key: str | None, fig: Figures) -> str:
        plan = self._need_plan()
        return key or f"{plan.model.name}/{plan.tag}/{fig.backend}"

    def _baseline_check(self, baselines: str, key: str | None, *fields: str) -> None:
        plan, fig = self._need_plan(), self._need_figures()
        path = Path(baselines)
        k = self._baseline_key(key, fig)
        entry = {"model": plan.model.name, "platform": plan.platform.name, "plan": plan.block_keys,
                 **fig.to_json()}
        if self._recording():
            kept = self._record(path, k, entry)
            logger.info(f"baseline {path.name}[{k}] recorded ({kept} other entries kept): {entry}")
            return
        data = _read_baselines(path)
        base = data["entries"].get(k)
        if base is None:
            raise Failure(f"{path}: no baseline {k!r}; {how_to_record(path)}")
        if base.get("platform", entry["platform"]) != entry["platform"]:
            raise Failure(f"{path.name}[{k}] was recorded on {base['platform']}, this run is on "
                          f"{entry['platform']}: keep each board's baselines in a file (or under "
                          f"keys) of its own")
        stale = [f"{what} {base.get(what)!r} (this run: {entry[what]!r})"
                 for what in ("compiler", "backend_version") if base.get(what) != entry[what]]
        if stale:
            raise Failure(f"{path.name}[{k}] was recorded with " + "; ".join(stale) +
                          f": counts are only comparable with the same compiler and backend; "
                          f"{how_to_record(path)}")
        if base.get("plan") != entry["plan"]:
            raise Failure(f"{path.name}[{k}]: the plan changed: baseline {base.get('plan')}, "
                          f"now {entry['plan']}; if intended, {how_to_record(path)}")
        errors = []
        for f in fields:
            want, got = base.get(f), entry[f]
            if want != got:
                if f == "measured_ram":
                    errors.append(f"measured RAM: baseline {want:,} B (arena {base['arena']:,} + "
                                  f"stack {base['stack']:,} + static {base['static']:,}), actual "
                                  f"{fig.ram_text()}, {got - want:+,} B [{MEASURED_RAM}]")
                else:
                    errors.append(f"instructions: baseline {want:,}, actual {got:,} "
                                  f"({got - want:+,}, {100.0 * (got - want) / want:+.2f} %)")
        if errors:
            raise Failure(f"{plan.what}, {fig.backend} ({fig.compiler}) differs from baseline "
                          f"{path.name}[{k}]: " + "; ".join(errors))
        logger.info(f"{plan.what}: equal to baseline {path.name}[{k}]: " +
                    ", ".join(f"{f} {entry[f]:,}" for f in fields))

    def _recording(self) -> bool:
        """A recording run: the library argument `update_baselines`, else the Robot variable
        ${MSFSIM_UPDATE_BASELINES} (`--variable MSFSIM_UPDATE_BASELINES:1`), else the
        environment variable of the same name."""
        if self.update is not None:
            return self.update
        try:
            from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
            try:
                value = BuiltIn().get_variable_value("${%s}" % UPDATE_ENV)
            except RobotNotRunningError:
                value = None
        except ImportError:  # pragma: no cover - robot is a dependency of this module
            value = None
        return _truthy(value if value is not None else os.environ.get(UPDATE_ENV, ""))

    def _record(self, path: Path, key: str, entry: dict[str, Any]) -> int:
        """Merge `entry` under `key` into the baseline file `path` (created if missing): the
        other entries are kept, the file is replaced atomically. Returns how many were kept."""
        try:
            data = _parse_baselines(path)
        except FileNotFoundError:
            data = {"entries": {}}
        except ValueError as exc:  # never drop what a file holds: the user decides
            raise Failure(f"cannot record into {path}: {exc}; move it away to record "
                          f"afresh") from None
        entries = {**data["entries"], key: entry}
        data = {**data, "format": BASELINE_FORMAT, "generated_by": GENERATED_BY,
                "msfsim": __version__, "entries": dict(sorted(entries.items()))}
        write_atomic(path, json.dumps(data, indent=1) + "\n")
        return len(entries) - 1

    # ------------------------------------------------------------------ the command line

    @keyword
    def model_should_be_rejected(self, model: str, message: str = "", platform: str = "stm32f746",
                                 exit_code: int = 2) -> str:
        """`msfsim search MODEL` refuses the model: exit code 2 (bad input), one error line on
        stderr containing `message`, no traceback. Returns the error line."""
        return self.command_should_fail(exit_code, message, "search", model, "--platform",
                                        platform, "--cost", "analytic")

    @keyword
    def search_should_find_no_plan(self, model: str, platform: str, *options: str,
                                   message: str = "") -> str:
        """`msfsim search MODEL --platform P [options]` exits 3 (no plan satisfies the
        constraints) with one error line containing `message`."""
        return self.command_should_fail(3, message, "search", model, "--platform", platform,
                                        "--cost", "analytic", *options)

    @keyword
    def command_should_fail(self, exit_code: int, message: str, *args: str) -> str:
        """Run `msfsim ARGS`; expect `exit_code` and a single-line `msfsim: error:` on stderr
        containing `message`, without a traceback. Returns that line."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        env.pop("MSFSIM_DEBUG", None)
        cmd = [sys.executable, "-m", "msfsim", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        shown = f"`msfsim {' '.join(args)}`"
        if r.returncode != int(exit_code):
            raise Failure(f"{shown}: exit code {r.returncode}, expected {exit_code}; "
                          f"stderr: {r.stderr.strip()[-600:]!r}")
        if "Traceback" in r.stderr or len(lines) != 1 or not lines[0].startswith("msfsim: error:"):
            raise Failure(f"{shown}: expected one `msfsim: error:` line on stderr, got "
                          f"{r.stderr.strip()[-600:]!r}")
        if message and message.lower() not in lines[0].lower():
            raise Failure(f"{shown}: error {lines[0]!r} does not mention {message!r}")
        logger.info(f"{shown} -> exit {r.returncode}: {lines[0]}")
        return lines[0]


def _parse_baselines(path: Path) -> dict[str, Any]:
    """The baseline file's contents; FileNotFoundError when there is none, ValueError (saying
    what is wrong) when it is not a baseline file of this format."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ValueError(f"not a baseline file ({exc})") from None
    if (not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT
            or not isinstance(data.get("entries"), dict)):
        raise ValueError("unknown baseline format")
    return data


def _read_baselines(path: Path) -> dict[str, Any]:
    try:
        return _parse_baselines(path)
    except FileNotFoundError:
        raise Failure(f"{path}: no baseline file; {how_to_record(path)}") from None
    except ValueError as exc:
        raise Failure(f"{path}: {exc}; {how_to_record(path)}") from None
