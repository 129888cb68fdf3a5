"""What the commands share: exit codes, the model and deployment arguments, output as text or
JSON, the core count, and where a command's measurements run (`session`: the local pool, or the
Dask cluster of --scheduler / $MSFSIM_SCHEDULER)."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any, Iterator

from .. import MsfsimError, pipeline
from ..fileio import read_json_file, shown_path

EXIT_OK, EXIT_USAGE, EXIT_NOPLAN, EXIT_TOOL = 0, 2, 3, 4


def cores() -> int:
    return os.cpu_count() or 1


def load_model(spec: str, input_shape: str | None = None):
    """MODEL argument: a path to an .onnx file or zoo:NAME."""
    return pipeline.load_model(spec, input_shape)


def deployed(model, plat, args: argparse.Namespace):
    """The model as deployed on the board (msfsim.deploy): network input read in place or
    copied into the arena (--input-in-place / --input-in-arena; default from the board file),
    weights pre-widened where the board's DSP loops gain and its flash allows (--weights)."""
    return pipeline.deployed(model, plat, getattr(args, "input_in_place", None),
                             getattr(args, "weights", "auto"))


def emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj, indent=None, sort_keys=False))
    else:
        print(text)


def check_plan(args: argparse.Namespace) -> None:
    """--plan: an existing, readable JSON object (its blocks are checked against the model
    later, by msfsim.plan)."""
    if getattr(args, "plan", None) is None:
        return
    data = read_json_file(args.plan, "--plan", "a JSON plan")
    if not isinstance(data, dict):
        raise MsfsimError(f"--plan {shown_path(args.plan)}: not a msfsim plan "
                          f"(expected a JSON object)")


def check_jobs(args: argparse.Namespace) -> None:
    """--jobs above the cores here is reduced, with a note (a cluster takes any number)."""
    if getattr(args, "jobs", None) is not None and args.jobs > cores():
        print(f"msfsim: --jobs {args.jobs} is more than the {cores()} cores here; using "
              f"{cores()}", file=sys.stderr)
        args.jobs = cores()


def check_scheduler(args: argparse.Namespace) -> None:
    """--scheduler (or $MSFSIM_SCHEDULER): a well-formed address (exit 2) and Dask installed
    (exit 4), checked before any work; connecting comes when measuring starts."""
    pipeline.check_scheduler(getattr(args, "scheduler", None))


@contextlib.contextmanager
def session(args: argparse.Namespace, measured: bool = True,
            progress: bool | None = None) -> Iterator[Any]:
    """The measurements of this command (None when it measures nothing): the local pool of
    --jobs, or the Dask cluster of --scheduler / $MSFSIM_SCHEDULER."""
    if not measured:
        yield None
        return
    with pipeline.open_session(getattr(args, "cache", None), getattr(args, "jobs", None),
                               progress, getattr(args, "scheduler", None)) as s:
        yield s
