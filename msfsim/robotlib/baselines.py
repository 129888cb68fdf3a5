"""Baseline files: measured figures a suite compares its runs with, written by the baseline
keywords themselves in a recording run. Recording merges (the other entries of the file are
kept); a check refuses to compare figures measured on another board or with another compiler or
backend version, and says how to record afresh."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from robot.api import Failure

from msfsim import ROOT, __version__
from msfsim.fileio import write_atomic

from .arguments import truthy
from .figures import MEASURED_RAM, Figures

UPDATE_ENV = "MSFSIM_UPDATE_BASELINES"      # environment or Robot variable of a recording run
UPDATE_VARIABLE = f"--variable {UPDATE_ENV}:1"
UPDATE_COMMAND = "python scripts/update_baselines.py"   # msfsim's own suites (robot/), all at once
RECORD = (f"record it by running the suite with `{UPDATE_VARIABLE}` (or {UPDATE_ENV}=1 in the "
          f"environment) and commit the file once the run passes")
GENERATED_BY = f"msfsim.robotlib baseline keywords, recording run ({UPDATE_ENV}=1)"
BASELINE_FORMAT = 1


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


def recording_run(update: bool | None) -> bool:
    """A recording run: the library argument `update_baselines` (`update`), else the Robot
    variable ${MSFSIM_UPDATE_BASELINES} (`--variable MSFSIM_UPDATE_BASELINES:1`), else the
    environment variable of the same name."""
    if update is not None:
        return update
    try:
        from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
        try:
            value = BuiltIn().get_variable_value("${%s}" % UPDATE_ENV)
        except RobotNotRunningError:
            value = None
    except ImportError:  # pragma: no cover - robot is a dependency of this module
        value = None
    return truthy(value if value is not None else os.environ.get(UPDATE_ENV, ""))


def parse_baselines(path: Path) -> dict[str, Any]:
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


def read_baselines(path: Path) -> dict[str, Any]:
    """`parse_baselines`, its errors as test failures saying how to record the file."""
    try:
        return parse_baselines(path)
    except FileNotFoundError:
        raise Failure(f"{path}: no baseline file; {how_to_record(path)}") from None
    except ValueError as exc:
        raise Failure(f"{path}: {exc}; {how_to_record(path)}") from None


def record_baseline(path: Path, key: str, entry: dict[str, Any]) -> int:
    """Merge `entry` under `key` into the baseline file `path` (created if missing): the
    other entries are kept, the file is replaced atomically. Returns how many were kept."""
    try:
        data = parse_baselines(path)
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


def check_baseline(path: Path, key: str, entry: dict[str, Any], fig: Figures, what: str,
          fields: tuple[str, ...]) -> None:
    """`entry` (the figures `fig` of the plan `what`) equals the baseline `key` of `path` in
    `fields`, measured on the same board with the same compiler, backend and plan; a Failure
    stating both figures otherwise."""
    base = read_baselines(path)["entries"].get(key)
    if base is None:
        raise Failure(f"{path}: no baseline {key!r}; {how_to_record(path)}")
    if base.get("platform", entry["platform"]) != entry["platform"]:
        raise Failure(f"{path.name}[{key}] was recorded on {base['platform']}, this run is on "
                      f"{entry['platform']}: keep each board's baselines in a file (or under "
                      f"keys) of its own")
    stale = [f"{k} {base.get(k)!r} (this run: {entry[k]!r})"
             for k in ("compiler", "backend_version") if base.get(k) != entry[k]]
    if stale:
        raise Failure(f"{path.name}[{key}] was recorded with " + "; ".join(stale) +
                      f": counts are only comparable with the same compiler and backend; "
                      f"{how_to_record(path)}")
    if base.get("plan") != entry["plan"]:
        raise Failure(f"{path.name}[{key}]: the plan changed: baseline {base.get('plan')}, "
                      f"now {entry['plan']}; if intended, {how_to_record(path)}")
    errors = []
    for f in fields:
        want, got = base.get(f), entry[f]
        if want != got:
            if f == "measured_ram":
                errors.append(f"measured RAM: baseline {want:,} B (arena {base['arena']:,} + "
                              f"stack {base['stack']:,} + static {base['static']:,}), actual "
                              f"{fig.ram_text()}, {got - want:+,} B [{MEASURED_RAM}]")
            elif f == "flash_bytes":
                errors.append(f"flash: baseline {want:,} B, actual {got:,} B ({got - want:+,} B)"
                              if want is not None and got is not None else
                              f"flash: baseline {want}, actual {got}")
            else:
                errors.append(f"instructions: baseline {want:,}, actual {got:,} "
                              f"({got - want:+,}, {100.0 * (got - want) / want:+.2f} %)")
    if errors:
        raise Failure(f"{what}, {fig.backend} ({fig.compiler}) differs from baseline "
                      f"{path.name}[{key}]: " + "; ".join(errors))
