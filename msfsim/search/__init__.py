"""Fusion-plan search over the fusion DAG: Pareto front, P1 / P2, baselines, results.

- `weights`, `pareto`, `api`, `baselines`: the search itself, on the edge weights it is given
- `estimate` (weights of unmeasured blocks learned from measured ones) and `refine` (which
  blocks of a front to measure next): what the measured search's rounds decide with
- `result` (JSON, plan files), `summary` (plan / front figures), `table` (text),
  `conventions` (how each figure is named): what a search returns
"""
from .api import search, search_analytic, select
from .pareto import Infeasible, Plan, build_dag, pareto_front
from .result import SearchResult
from .weights import EdgeWeights

__all__ = ["search", "search_analytic", "select", "Infeasible", "Plan", "build_dag",
           "pareto_front", "SearchResult", "EdgeWeights"]
