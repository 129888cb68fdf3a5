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

The package: `library` (the keywords), `figures` (the current plan and its measured figures),
`baselines` (baseline files), `commands` (the command line run as a user does), `arguments`
(Robot's string arguments). The names below are its interface.
"""
from robot.api import Failure

from .arguments import parse_size
from .baselines import (BASELINE_FORMAT, GENERATED_BY, RECORD, UPDATE_COMMAND, UPDATE_ENV,
                        UPDATE_VARIABLE, how_to_record, read_baselines)
from .figures import MEASURED_RAM, CurrentPlan, Figures, backend_version
from .library import COSTS, RAM_CONVENTIONS, MsfsimLibrary

__all__ = ["Failure", "parse_size", "BASELINE_FORMAT", "GENERATED_BY", "RECORD", "UPDATE_COMMAND",
           "UPDATE_ENV", "UPDATE_VARIABLE", "how_to_record", "read_baselines", "MEASURED_RAM",
           "CurrentPlan", "Figures", "backend_version", "COSTS", "RAM_CONVENTIONS",
           "MsfsimLibrary"]
