"""Old home of the measurement engine and of `msfsim measure`: now msfsim.measure (jobs, cache,
executors, Measurer) and msfsim.pipeline.plan (a plan's firmware, `measure_plan`). Importing
this module gives a view of both; setting a name on it (a test's monkeypatch) sets it where
that name is defined and used, so that patches keep reaching the engine.
"""
from __future__ import annotations

import sys
import types

from msfsim.measure import cache as _cache
from msfsim.measure import executor as _executor
from msfsim.measure import jobs as _jobs
from msfsim.measure import measurer as _measurer
from msfsim.measure import outcome as _outcome
from msfsim.measure.executor import _worker_init  # noqa: F401
from msfsim.measure.jobs import *  # noqa: F401,F403
from msfsim.measure.jobs import _ROW  # noqa: F401
from msfsim.measure.measurer import *  # noqa: F401,F403
from msfsim.measure.measurer import _bar_class  # noqa: F401
from msfsim.measure.outcome import *  # noqa: F401,F403
from msfsim.pipeline import plan as _plan
from msfsim.pipeline.plan import *  # noqa: F401,F403

_HOMES = (_jobs, _executor, _measurer, _outcome, _cache, _plan)


class _Forwarding(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        for home in _HOMES:
            if name in vars(home):
                setattr(home, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Forwarding
