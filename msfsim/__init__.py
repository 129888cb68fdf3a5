"""msfsim: measured multi-stage fusion planning of int8 CNNs for microcontrollers."""
from pathlib import Path

__version__ = "0.1.0"

# Package data (shipped in the wheel): the C kernels and runtime, and the board files. Every
# module finds them here and nowhere else.
PACKAGE_DIR = Path(__file__).resolve().parent
KERNELS_DIR = PACKAGE_DIR / "kernels_c"
PLATFORMS_DIR = PACKAGE_DIR / "boards"
# The folder msfsim is imported from (a checkout, or site-packages).
ROOT = PACKAGE_DIR.parent


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
