"""msfsim: measured multi-stage fusion planning of int8 CNNs for microcontrollers."""
from pathlib import Path

__version__ = "0.1.0"

# Repository-relative data (C kernels, board files) used by codegen, toolchain and platforms.
ROOT = Path(__file__).resolve().parent.parent
KERNELS_DIR = ROOT / "kernels_c"
PLATFORMS_DIR = ROOT / "platforms"


class MsfsimError(Exception):
    """A user-facing error: the CLI prints `str(exc)` on one line and exits with `exit_code`."""
    exit_code = 2


class UnsupportedModel(MsfsimError):
    """The model file is valid but uses something msfsim cannot handle."""


class ToolMissing(MsfsimError):
    """A compiler or emulator is missing or failed (exit 4)."""
    exit_code = 4


class NoPlan(MsfsimError):
    """No plan satisfies the constraints (exit 3)."""
    exit_code = 3
