"""The one place a run's candidate evaluator is built.

``jaqmoo run`` (:mod:`jaqmoo.experiment.run`), the sweep (which runs experiments), the report's
per-layer breakdown of a stored run (:mod:`jaqmoo.reporting.breakdown`) and the benchmarks all
call :func:`build_evaluator` with the spec as plain data -- ``ExperimentSpec.to_dict()``, which
is also what a run folder's ``meta.json`` records under ``spec``. Every option the spec gives
the evaluator (the mapper's metric, the accumulator width, and any later one) is read here
from that one mapping, so a breakdown rebuilt from ``meta.json`` costs a point exactly as the
run did.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaqmoo.search.arch_genes import ArchEvaluator, ArchGenomeSpace
from jaqmoo.search.evaluation import JointEvaluator
from jaqmoo.workload import Workload


def evaluator_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluator's keyword options a spec (``ExperimentSpec.to_dict()`` / ``meta.json``'s
    ``spec``) sets: ``metric`` (``mapping.metric``) and ``accumulator_bits``
    (``quantization.accumulator_bits``)."""
    mapping = spec.get("mapping") or {}
    quantization = spec.get("quantization") or {}
    return {"metric": mapping.get("metric", "energy"), "accumulator_bits": quantization.get("accumulator_bits")}


def build_evaluator(spec: Mapping[str, Any], space: Any, template: Any, estimator: Any,
                    workload: Workload | None = None, cache_dir: str | Path | None = None) -> Any:
    """The evaluator of a search over ``space``: an
    :class:`~jaqmoo.search.arch_genes.ArchEvaluator` (costing each candidate's decoded
    sub-network) for an architecture genome, else a
    :class:`~jaqmoo.search.evaluation.JointEvaluator` of the fixed ``workload``.

    ``spec``: the plain spec (see the module doc); ``estimator``: the accuracy estimator (None:
    cost only, as the report's breakdown); ``cache_dir``: the mapper warm-up cache folder."""
    options = evaluator_options(spec)
    if isinstance(space, ArchGenomeSpace):
        return ArchEvaluator(space, template, estimator, cache_dir=cache_dir, **options)
    if workload is None:
        raise ValueError("build_evaluator: a fixed-network search needs its workload")
    return JointEvaluator(workload, template, estimator, space, cache_dir=cache_dir, **options)


__all__ = ["build_evaluator", "evaluator_options"]
