"""Run directory: append-only results store and per-generation checkpoints.

Layout of a run directory::

    spec.yaml            the validated experiment spec
    meta.json            genome layout, objective names, hypervolume normalisation, baselines
    evaluations.jsonl    one JSON object per evaluated individual, appended and fsync'ed per
                         batch, in evaluation order (keys: gen, idx, genes, then metrics)
    checkpoint.pkl       the algorithm (with its random generator) after the last completed
                         generation, replaced atomically
    history.csv          hypervolume and best value per objective after each generation

A kill at any point leaves at most one partially written line at the end of
``evaluations.jsonl``; :meth:`ResultsStore.read_records` ignores it and
:meth:`ResultsStore.prepare_resume` rewrites the file to the records of the completed
generations, returning the already evaluated individuals of the interrupted generation so
that the resumed run reuses them instead of evaluating them again.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jaqmoo.errors import JaqmooError

EVALUATIONS = "evaluations.jsonl"
CHECKPOINT = "checkpoint.pkl"
META = "meta.json"
HISTORY = "history.csv"
SPEC = "spec.yaml"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class Checkpoint:
    """What a checkpoint holds: the algorithm after ``generation`` plus the run's history."""

    generation: int
    algorithm: Any
    history: list[dict]
    n_evaluations: int
    hv_scale: list[float] | None = None  # per-objective normalisation of the hypervolume


class ResultsStore:
    """Reads and writes one run directory (see the module doc)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)

    # ------------------------------------------------------------------ files
    @property
    def evaluations_path(self) -> Path:
        return self.dir / EVALUATIONS

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / CHECKPOINT

    def exists(self) -> bool:
        return self.evaluations_path.exists() or self.checkpoint_path.exists()

    def create(self, overwrite: bool = False) -> None:
        """Start a fresh run directory (refusing to clobber a previous run unless ``overwrite``)."""
        if self.exists() and not overwrite:
            raise JaqmooError(
                f"{self.dir} already holds a run; pass --resume to continue it or --out to choose another directory"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in (EVALUATIONS, CHECKPOINT, HISTORY):
            (self.dir / name).unlink(missing_ok=True)
        self.evaluations_path.touch()

    # ------------------------------------------------------------------ records
    def append(self, records: Iterable[dict]) -> None:
        """Append records and force them to disk (one call per evaluated batch)."""
        lines = "".join(json.dumps(_jsonable(r), allow_nan=False) + "\n" for r in records)
        if not lines:
            return
        with open(self.evaluations_path, "a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())

    def read_records(self) -> list[dict]:
        """Every complete record in evaluation order (a torn last line is ignored)."""
        if not self.evaluations_path.exists():
            return []
        records = []
        with open(self.evaluations_path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # torn write at a kill
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return records

    def rewrite(self, records: list[dict]) -> None:
        """Atomically replace the evaluations file with ``records``."""
        data = "".join(json.dumps(_jsonable(r), allow_nan=False) + "\n" for r in records)
        _atomic_write(self.evaluations_path, data.encode())

    # ------------------------------------------------------------------ metadata
    def write_meta(self, meta: dict) -> None:
        _atomic_write(self.dir / META, json.dumps(_jsonable(meta), indent=1).encode())

    def read_meta(self) -> dict:
        path = self.dir / META
        if not path.exists():
            raise JaqmooError(f"{self.dir} is not a jaqmoo run directory (no {META}); give the folder `jaqmoo run` wrote")
        return json.loads(path.read_text())

    def write_history(self, history: list[dict]) -> None:
        if not history:
            return
        keys = list(history[0])
        lines = [",".join(keys)] + [",".join(str(h.get(k, "")) for k in keys) for h in history]
        _atomic_write(self.dir / HISTORY, ("\n".join(lines) + "\n").encode())

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Pickle the algorithm (its problem detached: it is rebuilt on resume) atomically."""
        algorithm = checkpoint.algorithm
        problem = algorithm.problem
        algorithm.problem = None
        try:
            blob = pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            algorithm.problem = problem
        _atomic_write(self.checkpoint_path, blob)

    def load_checkpoint(self) -> Checkpoint | None:
        if not self.checkpoint_path.exists():
            return None
        try:
            with open(self.checkpoint_path, "rb") as fh:
                return pickle.load(fh)
        except Exception as exc:  # corrupt or from an incompatible version
            raise JaqmooError(f"{self.checkpoint_path}: cannot read the checkpoint ({exc}); start a new run without --resume") from exc

    def prepare_resume(self) -> tuple[Checkpoint | None, dict[tuple[int, int], dict]]:
        """Load the checkpoint and split stored records into completed / interrupted generation.

        The evaluations file is rewritten to hold only generations up to the checkpoint; the
        records of the next (interrupted) generation are returned keyed by ``(gen, idx)`` so
        they can be reused (and appended again, in order) when that generation is re-run.
        """
        checkpoint = self.load_checkpoint()
        done = checkpoint.generation if checkpoint else 0
        records = self.read_records()
        kept = [r for r in records if r["gen"] <= done]
        pending = {(r["gen"], r["idx"]): r for r in records if r["gen"] == done + 1}
        self.rewrite(kept)
        return checkpoint, pending
