"""Command-line interface (DESIGN §7).

Exit codes: 0 ok; 2 bad input or usage; 3 no plan satisfies the constraints; 4 toolchain or
emulator missing or failed. Errors are one line on stderr; `--json` output is one object on stdout.
Numbers and paths are checked when a command starts, before any work (msfsim.fileio), so a typo
is refused in a second, not after a search of minutes, and nothing is left half-written.

Modules: `args` (the parser), `common` (what the commands share: exit codes, the model and
deployment arguments, where measurements run), `measuring` (search, measure, run), `info`
(info, zoo, platforms, doctor) and `batch` (reproduce, sweep).
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from .. import MsfsimError, ToolMissing
from .args import build_parser, parse_size, positive_float, positive_int
from .common import EXIT_NOPLAN, EXIT_OK, EXIT_TOOL, EXIT_USAGE, cores, deployed, load_model
from .info import format_info, format_rows, model_info

__all__ = ["EXIT_NOPLAN", "EXIT_OK", "EXIT_TOOL", "EXIT_USAGE", "build_parser", "cores",
           "deployed", "format_info", "format_rows", "load_model", "main", "missing_package",
           "model_info", "parse_size", "positive_float", "positive_int"]


def missing_package(exc: ModuleNotFoundError) -> ToolMissing:
    """A Python package msfsim needs for this command is not installed (exit 4)."""
    name = (exc.name or str(exc)).split(".")[0]
    if name == "msfsim":
        return ToolMissing(f"this build of msfsim is incomplete (module {exc.name} missing): "
                           f"reinstall msfsim")
    return ToolMissing(f"this command needs the Python package {name!r}: run `make setup` "
                       f"or `pip install {name}`")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        print(f"msfsim: error: {missing_package(exc)}", file=sys.stderr)
        return EXIT_TOOL
    except MsfsimError as exc:
        print(f"msfsim: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("msfsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("MSFSIM_DEBUG"):
            raise
        print(f"msfsim: internal error: {type(exc).__name__}: {exc} "
              f"(set MSFSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
