"""The keyword library class: Robot keywords must be methods of one class (GLOBAL scope), so
the keywords live here and the work they share lives beside it (figures, baselines, commands).
It calls the pipeline only; a measurement's outcome becomes a failure through the one rule of
msfsim.measure.outcome.whole_plan_error, as on the command line."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from robot.api import Failure, SkipExecution, logger
from robot.api.deco import keyword, library

from msfsim import MsfsimError, __version__, pipeline
from msfsim.ir import Model
from msfsim.measure.outcome import whole_plan_error
from msfsim.search.result import MEMORY_CONVENTION

from .baselines import check_baseline, record_baseline, recording_run
from .commands import command_should_fail
from .arguments import opt_float, opt_size, parse_size, truthy
from .figures import MEASURED_RAM, CurrentPlan, Figures, backend_version

COSTS = ("measured", "analytic")
RAM_CONVENTIONS = ("measured", "act", "act_io")


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
        # None: decided per check (baselines.recording_run: Robot variable, else environment)
        self.update = None if update_baselines is None else truthy(update_baselines)
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
        f_max, r_max = opt_float(max_overhead), opt_size(max_ram)
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
        if fig.error is not None:
            raise Failure(fig.error)
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
        # what a failed outcome means is decided once, for every face (as `msfsim measure`)
        error = whole_plan_error(o, backend, plan.what)
        fig = Figures(o.status, o.detail, o.instructions, o.measured_ram, o.arena_peak,
                      o.stack_peak, o.static_ram, o.flash_bytes, compiler, backend,
                      backend_version(backend, plan.platform.name), o.cached,
                      None if error is None else str(error))
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
            if f.error is not None:
                raise Failure(f.error)
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
    def flash_should_match_baseline(self, baselines: str, key: str | None = None) -> None:
        """The last measured firmware's flash (text + data, from the ELF) equals the baseline
        entry: a kernel linked in or dropped shows here even when no count changes."""
        self._baseline_check(baselines, key, "flash_bytes")

    @keyword
    def measurement_should_match_baseline(self, baselines: str, key: str | None = None) -> None:
        """Instructions and measured RAM both equal the baseline entry."""
        self._baseline_check(baselines, key, "instructions", "measured_ram")

    def _baseline_key(self, key: str | None, fig: Figures) -> str:
        plan = self._need_plan()
        return key or f"{plan.model.name}/{plan.tag}/{fig.backend}"

    def _baseline_check(self, path_text: str, key: str | None, *fields: str) -> None:
        plan, fig = self._need_plan(), self._need_figures()
        path = Path(path_text)
        k = self._baseline_key(key, fig)
        entry = {"model": plan.model.name, "platform": plan.platform.name, "plan": plan.block_keys,
                 **fig.to_json()}
        if recording_run(self.update):
            kept = record_baseline(path, k, entry)
            logger.info(f"baseline {path.name}[{k}] recorded ({kept} other entries kept): {entry}")
            return
        check_baseline(path, k, entry, fig, plan.what, fields)
        logger.info(f"{plan.what}: equal to baseline {path.name}[{k}]: " +
                    ", ".join(f"{f} {entry[f]:,}" for f in fields))

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
        return command_should_fail(exit_code, message, *args)
