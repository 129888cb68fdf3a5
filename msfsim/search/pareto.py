"""Exact Pareto front of fusion plans over the fusion DAG (DESIGN §2).

Nodes are the cuts 0..N between layers; an edge u -> v is a block running layers u..v-1 with
some config (parallel edges: a MultiDiGraph). A path 0 -> N is a plan; its RAM is the maximum
over its edges (bottleneck) and its cost the sum. A label-setting DP in topological order keeps,
at every node, the non-dominated (ram, cost) labels with back-pointers, so the front at node N
is exact: no plan has both lower-or-equal RAM and cost than a front point unless it equals it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import networkx as nx
import numpy as np

from .. import NoPlan
from ..fusion.block import Block
from .weights import EdgeWeights


@dataclass(frozen=True)
class Plan:
    """A fusion setting: blocks covering layers 0..N-1 in order, with its bottleneck RAM and
    additive cost under the weights it was searched with."""
    blocks: tuple[Block, ...]
    ram: int
    cost: int


class Infeasible(NoPlan):
    """No plan satisfies a constraint; `constraint` names it and `best` is the best value any
    plan achieves for it (bytes for a RAM limit, overhead factor for an overhead limit)."""

    def __init__(self, constraint: str, limit: float, best: float, message: str):
        super().__init__(message)
        self.constraint, self.limit, self.best = constraint, limit, best


def cost_ratio(cost: float, vanilla_cost: float) -> float:
    """A plan's cost over layer by layer's (F for MACs, x instr for instructions). A model of
    elementwise layers only has no MACs: its plans all cost 0 = layer by layer, ratio 1."""
    if vanilla_cost:
        return cost / vanilla_cost
    return 1.0 if cost == 0 else float("inf")


def build_dag(n_layers: int, blocks: Iterable[Block], weights: EdgeWeights) -> nx.MultiDiGraph:
    """The fusion DAG: one edge per block that has a weight (ram, cost)."""
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(n_layers + 1))
    edges = []
    for b in blocks:
        w = weights(b)
        if w is not None:
            edges.append((b.first, b.last + 1, b.key, {"block": b, "ram": w[0], "cost": w[1]}))
    g.add_edges_from(edges)
    return g


def _nondominated(ram: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-optimal (min ram, min cost) points, sorted by ram ascending;
    of equal points only one is kept."""
    order = np.lexsort((cost, ram))
    c = cost[order]
    keep = np.empty(len(c), dtype=bool)
    keep[:1] = True
    keep[1:] = c[1:] < np.minimum.accumulate(c)[:-1]
    return order[keep]


def pareto_front(dag: nx.MultiDiGraph, source: int = 0, target: int | None = None) -> list[Plan]:
    """All Pareto-optimal plans from `source` to `target` (default: the last node), sorted by
    RAM ascending (so cost descending)."""
    target = max(dag.nodes) if target is None else target
    # Parallel edges: only the non-dominated ones can be on the front.
    by_target: dict[int, list[tuple[int, np.ndarray, np.ndarray, list[Block]]]] = {}
    for u, v in sorted({(u, v) for u, v in dag.edges()}):
        data = list(dag.get_edge_data(u, v).values())
        r = np.array([d["ram"] for d in data], dtype=np.int64)
        c = np.array([d["cost"] for d in data], dtype=np.int64)
        k = _nondominated(r, c)
        by_target.setdefault(v, []).append((u, r[k], c[k], [data[i]["block"] for i in k]))

    # labels[v] = (ram, cost, predecessor node, predecessor label, block) arrays / list
    labels: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Block]]] = {
        source: (np.zeros(1, np.int64), np.zeros(1, np.int64), np.full(1, -1), np.full(1, -1),
                 [None])}  # type: ignore[list-item]
    for v in range(source + 1, target + 1):
        rams, costs, preds, plabs, bidx = [], [], [], [], []
        flat: list[Block] = []  # candidate edge blocks of node v, indexed by bidx
        for u, er, ec, eb in by_target.get(v, ()):
            if u not in labels:
                continue
            lr, lc = labels[u][0], labels[u][1]
            nl, ne = len(lr), len(er)
            rams.append(np.maximum(lr[:, None], er[None, :]).ravel())
            costs.append((lc[:, None] + ec[None, :]).ravel())
            preds.append(np.full(nl * ne, u))
            plabs.append(np.repeat(np.arange(nl), ne))
            bidx.append(np.tile(np.arange(ne), nl) + len(flat))
            flat.extend(eb)
        if not rams:
            continue
        ram, cost = np.concatenate(rams), np.concatenate(costs)
        keep = _nondominated(ram, cost)
        labels[v] = (ram[keep], cost[keep], np.concatenate(preds)[keep],
                     np.concatenate(plabs)[keep], [flat[i] for i in np.concatenate(bidx)[keep]])
    if target not in labels:
        return []
    out = []
    ram, cost = labels[target][0], labels[target][1]
    for i in range(len(ram)):
        chain, v, li = [], target, i
        while v != source:
            _, _, pred, plab, blocks = labels[v]
            chain.append(blocks[li])
            v, li = int(pred[li]), int(plab[li])
        out.append(Plan(tuple(reversed(chain)), int(ram[i]), int(cost[i])))
    return out


def min_ram_plan(front: list[Plan], max_cost: float) -> Plan:
    """P1: the lowest-RAM plan whose cost is within `max_cost` (cheapest among equals)."""
    for p in front:
        if p.cost <= max_cost:
            return p
    raise LookupError


def min_cost_plan(front: list[Plan], max_ram: float) -> Plan:
    """P2: the cheapest plan whose RAM is within `max_ram`."""
    best = None
    for p in front:
        if p.ram > max_ram:
            break
        best = p
    if best is None:
        raise LookupError
    return best
