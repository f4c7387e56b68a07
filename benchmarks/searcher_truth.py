"""Accuracy the searchers did not grade, for ``compare_searchers.py``.

* :class:`HeldOut`: each run's front (its non-dominated points under the accuracy the search
  itself used: the supernet's re-score on the validation split) re-scored by the same supernet
  on the **test split**, which neither the predictor (fitted on validation images) nor the
  re-scoring ever saw. Accuracy depends on the bit policy only, so scores are cached by policy
  (``<out>/heldout.json``) and shared by every run and searcher.
* :func:`qat_truth`: a short quantization-aware fine-tune of a few policies from the supernet's
  weights (:class:`jaqmoo.quant.truth.ConvergedTruth` with a small, stated budget: the converged
  truth of "Prove the supernet" is not landed), evaluated on the test split, cached in
  ``/work/bench_cache`` by the truth's own content-hash keys.
* :func:`floored_hv`: hypervolume in a fixed normalisation (uniform 8-bit's cost = 1, accuracy
  as ``1 - accuracy``), counting only points at or above an accuracy floor.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.safe_write import atomic_write_text


def policy_key(row: pd.Series, layers: list[str]) -> str:
    """The bit policy of an evaluation row: ``w a`` per layer, in layer order."""
    return " ".join(f"{int(row[f'w.{n}'])} {int(row[f'a.{n}'])}" for n in layers)


def policy_of(key: str, layers: list[str]) -> QuantPolicy:
    """The :class:`QuantPolicy` of a :func:`policy_key`."""
    v = [int(t) for t in key.split()]
    return QuantPolicy(tuple(layers), tuple(v[0::2]), tuple(v[1::2]))


def floored_hv(points: pd.DataFrame, objectives: list[str], scale: list[float], acc_col: str,
               floor: float | None = None) -> float:
    """Hypervolume of ``points`` (objective / ``scale``, reference 1.1) counting only rows whose
    ``acc_col`` is at least ``floor`` (all rows when None)."""
    from jaqmoo.reporting.run import objective_values
    from jaqmoo.search.indicators import hypervolume

    rows = points[points[acc_col].notna()]
    if floor is not None:
        rows = rows[rows[acc_col] >= floor]
    if rows.empty:
        return 0.0
    return hypervolume(objective_values(rows, objectives, acc_col), scale)


def run_front(points: pd.DataFrame, objectives: list[str]) -> pd.DataFrame:
    """The non-dominated rows of ``points`` under the accuracy the search graded (column ``acc``)."""
    from jaqmoo.reporting.run import objective_values
    from jaqmoo.search.indicators import non_dominated

    if points.empty:
        return points
    return points.iloc[non_dominated(objective_values(points, objectives, "acc"))]


class HeldOut:
    """Supernet accuracy on the test split, by policy, cached in ``path``."""

    def __init__(self, supernet, splits, layers: list[str], path: Path) -> None:
        from jaqmoo.quant.estimators import EvalData, SupernetEstimator

        data = EvalData.from_splits(splits, n_val=len(splits.test), use_test=True, device="cpu")
        self.estimator = SupernetEstimator(supernet, data)
        self.n_images = len(data.images)
        self.layers = layers
        self.path = path
        self.scores: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}

    def score(self, keys: list[str]) -> dict[str, float]:
        """Held-out accuracy of every policy key (new ones estimated, then the cache written)."""
        todo = [k for k in dict.fromkeys(keys) if k not in self.scores]
        if todo:
            values = self.estimator.estimate([policy_of(k, self.layers) for k in todo])
            self.scores.update({k: float(v) for k, v in zip(todo, values, strict=True)})
            atomic_write_text(self.path, json.dumps(self.scores, indent=0), "held-out accuracies")
        return {k: self.scores[k] for k in keys}

    def rescore(self, front: pd.DataFrame) -> pd.DataFrame:
        """``front`` with ``policy`` and ``acc_heldout`` columns."""
        out = front.copy()
        out["policy"] = [policy_key(r, self.layers) for _, r in out.iterrows()]
        scores = self.score(list(out["policy"]))
        out["acc_heldout"] = [scores[k] for k in out["policy"]]
        return out


def qat_truth(checkpoint: Path, splits, layers: list[str], keys: list[str], steps: int, cache_dir: Path) -> dict:
    """Short-QAT test accuracy of each policy key (``steps`` optimizer steps, lr 1e-3 cosine,
    batch 128, from the supernet checkpoint with calibrated steps; cached by content hash)."""
    import torch

    from jaqmoo.quant.estimators import EvalData
    from jaqmoo.quant.truth import ConvergedTruth, TruthRecipe

    data = EvalData.from_splits(splits, n_val=len(splits.test), use_test=True, device="cpu")
    truth = ConvergedTruth(checkpoint, splits.train, data.images, data.labels, TruthRecipe(steps=steps),
                           cache_dir, device="cpu")
    with torch.random.fork_rng(devices=[]):
        return {k: float(truth.accuracy(policy_of(k, layers), seed=0)) for k in dict.fromkeys(keys)}


def qat_candidates(pooled: pd.DataFrame, acc8: float, within: float, n: int) -> list[str]:
    """The ``n`` lowest-energy distinct policies of ``pooled`` (a searcher's held-out re-scored
    fronts, seeds pooled) whose held-out accuracy is within ``within`` of uniform 8-bit's."""
    ok = pooled[pooled["acc_heldout"] >= acc8 - within].sort_values("energy_pj")
    return list(dict.fromkeys(ok["policy"]))[:n]
