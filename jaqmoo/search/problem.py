"""The pymoo Problem: genomes in, objective and constraint matrices out.

:class:`JointProblem` is vectorized (``elementwise=False``): pymoo hands it a whole
generation, which it decodes (:class:`~jaqmoo.search.genome.GenomeSpace`), scores in batches
with a :class:`CandidateEvaluator` and records in the :class:`~jaqmoo.search.store.ResultsStore`
batch by batch, as it is evaluated. Individuals already evaluated before a kill (``pending``
records of the interrupted generation) are reused, never evaluated or stored twice.

Objectives are named (:data:`METRIC_OF`); pymoo minimises, so accuracy enters as the error
``1 - accuracy``. Constraints (``G <= 0`` is satisfied): feasibility (every layer has a
mapping that fits the buffers), minimum accuracy, area budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pymoo.core.problem import Problem

from jaqmoo.errors import JaqmooError
from jaqmoo.objectives import METRIC_OF, check_names, minimised
from jaqmoo.search.genome import Candidate, GenomeSpace
from jaqmoo.search.store import ResultsStore

#: objective value given to infeasible individuals (they are ranked by constraint violation)
PENALTY = 1e30


class CandidateEvaluator(Protocol):
    """Scores decoded candidates; one dict of metrics per candidate.

    Every dict has ``feasible`` (bool), ``reason`` (why not, or ""), ``accuracy`` (fraction)
    and the cost metrics ``energy_pj``, ``cycles``, ``latency_s``, ``edp``, ``memory_bits``,
    ``weight_memory_bits``, ``activation_memory_bits``, ``area_mm2`` (NaN when infeasible),
    plus any extra readable columns (per-layer mapping summaries, energy per level).
    """

    def evaluate(self, candidates: Sequence[Candidate]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Constraints:
    """Absolute constraint values (``None`` = unconstrained)."""

    min_accuracy: float | None = None
    max_area_mm2: float | None = None

    @property
    def names(self) -> list[str]:
        names = ["feasible"]
        if self.min_accuracy is not None:
            names.append("min_accuracy")
        if self.max_area_mm2 is not None:
            names.append("max_area")
        return names


def decoded_columns(space: GenomeSpace, cand: Candidate) -> dict[str, Any]:
    """Readable columns of a candidate: ``w.<layer>``, ``a.<layer>``, ``hw.<param>``."""
    cols: dict[str, Any] = {}
    for name, w, a in zip(cand.policy.layer_names, cand.policy.weight_bits, cand.policy.act_bits, strict=True):
        cols[f"w.{name}"] = w
        cols[f"a.{name}"] = a
    for k in sorted(cand.hardware):
        cols[f"hw.{k}"] = cand.hardware[k]
    if cand.mapping_genes is not None:
        for name, g in zip(space.layer_names, cand.mapping_genes, strict=True):
            cols[f"mapgene.{name}"] = g
    return cols


def objective_matrix(records: Sequence[dict], objectives: Sequence[str]) -> np.ndarray:
    """``F`` (to minimise) from records; infeasible or missing values get :data:`PENALTY`."""
    F = np.full((len(records), len(objectives)), PENALTY)
    for i, r in enumerate(records):
        if not r.get("feasible", False):
            continue
        for j, o in enumerate(objectives):
            v = r.get(METRIC_OF[o])
            if v is None or not np.isfinite(v):
                continue
            F[i, j] = minimised(o, v)
    return F


def constraint_matrix(records: Sequence[dict], constraints: Constraints) -> np.ndarray:
    """``G`` (``<= 0`` satisfied) from records."""
    G = np.zeros((len(records), len(constraints.names)))
    for i, r in enumerate(records):
        G[i, 0] = 0.0 if r.get("feasible", False) else 1.0
        j = 1
        if constraints.min_accuracy is not None:
            acc = r.get("accuracy")
            G[i, j] = constraints.min_accuracy - acc if acc is not None and np.isfinite(acc) else 1.0
            j += 1
        if constraints.max_area_mm2 is not None:
            area = r.get("area_mm2")
            G[i, j] = (area - constraints.max_area_mm2) / constraints.max_area_mm2 if area is not None and np.isfinite(area) else 1.0
    return G


class JointProblem(Problem):
    """Vectorized pymoo problem over a :class:`GenomeSpace` (see the module doc)."""

    def __init__(self, space: GenomeSpace, evaluator: CandidateEvaluator, objectives: Sequence[str],
                 constraints: Constraints = Constraints(), store: ResultsStore | None = None,
                 batch_size: int = 16, on_batch: Callable[[list[dict]], None] | None = None) -> None:
        check_names(objectives)
        if space.n_var == 0:
            raise JaqmooError("the search space has no genes: every layer is fixed and no hardware parameter is searched")
        super().__init__(n_var=space.n_var, n_obj=len(objectives), n_ieq_constr=len(constraints.names),
                         xl=np.zeros(space.n_var), xu=space.upper_bounds.astype(float), vtype=int,
                         requires_kwargs=True)
        self.space = space
        self.evaluator = evaluator
        self.objectives = tuple(objectives)
        self.constraints = constraints
        self.store = store
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.pending: dict[tuple[int, int], dict] = {}
        self.n_evaluated = 0  # evaluations actually computed (not reused)
        self.n_reused = 0

    def score(self, X: np.ndarray, generation: int = 0, first_idx: int = 0) -> list[dict]:
        """Decode, evaluate (or reuse) and store ``X`` batch by batch; one record per row.

        Row ``i`` is stored as individual ``first_idx + i`` of ``generation`` (searchers that
        evaluate one individual at a time, such as HAQ's agent, fill a generation in pieces).
        """
        Xi = self.space.clip(X)
        records: list[dict] = []
        for start in range(0, len(Xi), self.batch_size):
            rows = range(start, min(start + self.batch_size, len(Xi)))
            batch: dict[int, dict] = {}
            todo = []
            for i in rows:
                old = self.pending.pop((generation, first_idx + i), None)
                if old is not None and list(old["genes"]) == Xi[i].tolist():
                    batch[i] = old
                    self.n_reused += 1
                else:
                    todo.append(i)
            if todo:
                cands = [self.space.decode_one(Xi[i]) for i in todo]
                metrics = self.evaluator.evaluate(cands)
                if len(metrics) != len(cands):
                    raise RuntimeError(f"evaluator returned {len(metrics)} results for {len(cands)} candidates")
                for i, cand, m in zip(todo, cands, metrics, strict=True):
                    batch[i] = {"gen": generation, "idx": first_idx + i, "genes": Xi[i].tolist(),
                                **decoded_columns(self.space, cand), **m}
                self.n_evaluated += len(todo)
            ordered = [batch[i] for i in rows]
            if self.store is not None:
                self.store.append(ordered)
            if self.on_batch is not None:
                self.on_batch(ordered)
            records.extend(ordered)
        return records

    def _evaluate(self, X, out, *args, generation: int = 0, **kwargs):
        records = self.score(X, generation)
        out["F"] = objective_matrix(records, self.objectives)
        out["G"] = constraint_matrix(records, self.constraints)
