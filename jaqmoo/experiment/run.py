"""A validated experiment spec -> a finished run directory.

Python API::

    from jaqmoo.experiment import run_experiment
    result = run_experiment("problems/quickstart.yaml", out="runs/qs", generations=5)
    result.run.front          # pandas DataFrame of the Pareto front

Steps, in order (everything that can be wrong with the spec fails in step 1, before any
training or search):

1. :func:`~jaqmoo.experiment.prepare.prepare_experiment`: validate the spec
   (:mod:`jaqmoo.experiment.spec`), the hardware template and its parameters, the fixed layers,
   the area budget against the smallest hardware the search can reach; load the dataset; build
   the model and its workload through the model strategy (:mod:`jaqmoo.experiment.strategy`;
   with ``model.elastic`` the largest sub-network's: the search then evolves architecture genes
   too and costs each decoded sub-network).
2. Accuracy: load the supernet checkpoint named by ``accuracy.checkpoint`` (or train it and
   save it there); with ``estimator: predictor`` fit a predictor on supernet samples.
3. Resolve ``max_accuracy_drop`` against the uniform 8-bit accuracy.
4. Search (:func:`jaqmoo.search.session.search_in_directory`) with the evaluator of
   :func:`jaqmoo.search.evaluators.build_evaluator` (the one builder; the report's breakdown
   rebuilds the same one from ``meta.json``), resumable.
5. Re-score the front with the supernet (predictor runs), export ``front.csv``/``.parquet``,
   ``evaluations.csv``/``.parquet``, plot ``front.png`` and ``hypervolume.png``.

``report.html`` (:mod:`jaqmoo.reporting.html`) is rewritten after every generation through the
search's ``on_generation`` callback, and once more at the end.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment import accuracy as accuracy_module
from jaqmoo.experiment.elastic import candidate_accuracy
from jaqmoo.experiment.prepare import Prepared, mapper_cache_dir, prepare_experiment
from jaqmoo.experiment.spec import ExperimentSpec
from jaqmoo.hardware.describe import describe_accelerator, technology_node
from jaqmoo.locking import FolderLock
from jaqmoo.progress import progress_bar
from jaqmoo.quant.sanity import accuracy_warnings, strict_error
from jaqmoo.reporting.breakdown import CostBreakdown
from jaqmoo.reporting.html import ReportWriter
from jaqmoo.reporting.run import RESCORED, Run, load_run, nondominated_ranks, read_rescored
from jaqmoo.safe_write import atomic_write_text
from jaqmoo.search.compat import check_resume_spec
from jaqmoo.search.evaluators import build_evaluator
from jaqmoo.search.problem import Constraints
from jaqmoo.search.session import SearchSettings, search_in_directory
from jaqmoo.search.store import ResultsStore
from jaqmoo.strict import load_yaml_file
from jaqmoo.tracing import not_costed_record


@dataclass
class ExperimentResult:
    """A finished (or resumed-and-finished) experiment."""

    run: Run
    out_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        front = self.run.front
        lines = [f"run directory: {self.out_dir}",
                 f"evaluations: {len(self.run.evaluations)}, front: {len(front)} points",
                 "time: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())]
        lines += [f"wrote {p}" for p in self.files]
        return "\n".join(lines)


def run_experiment(spec_or_path: ExperimentSpec | str | Path | dict, out: str | Path | None = None,
                   resume: bool = False, generations: int | None = None, population: int | None = None,
                   progress: bool = True, accuracy: Any = None, plots: bool = True, strict: bool = False,
                   echo: Callable[[str], None] | None = None) -> ExperimentResult:
    """Run (or ``resume``) the experiment; returns the loaded run and timings.

    The run folder is locked (:class:`jaqmoo.locking.FolderLock`) from before supernet
    training to the last export; a second writer gets :class:`jaqmoo.locking.LockHeld`.
    ``accuracy``: an :class:`~jaqmoo.experiment.accuracy.AccuracySetup` already obtained for this
    spec's model and data (runs that compare searchers share one supernet and predictor);
    by default it is loaded or trained from ``accuracy.checkpoint``. ``plots=False`` skips the
    PNGs (``jaqmoo plot RUN_DIR`` draws them later). ``echo``: where the start-up lines (the
    accelerator, its energy source) and warnings go (default: stderr). ``strict``: a
    meaningless accuracy set-up (:mod:`jaqmoo.quant.sanity`) is an error instead of a warning.
    """
    t0 = time.perf_counter()
    prep = prepare_experiment(spec_or_path, out, generations, population)
    echo = echo if echo is not None else _stderr
    for line in describe_accelerator(prep.template, prep.hardware_fixed, prep.hardware_genes, prep.spec.accelerator.label,
                                     prep.spec.quantization.accumulator_bits):
        echo(line)
    with FolderLock(prep.out_dir, what="run"):  # one writer per run folder, for the whole run
        return _run_locked(prep, resume, progress, t0, accuracy, plots, strict, echo)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _stored_spec(store: ResultsStore) -> dict | None:
    """The spec a run folder was started with (``meta.json``, else ``spec.yaml``)."""
    if store.meta_path.exists():
        return store.read_meta().get("spec")  # a damaged meta.json is an error saying the fix
    path = store.dir / "spec.yaml"
    if not path.is_file():
        return None
    try:
        data = load_yaml_file(path, "the run's spec.yaml")
    except JaqmooError as exc:
        raise JaqmooError(f"{path} is damaged ({exc}); resume cannot check the spec: restore it from "
                          "the original spec file") from None
    return data if isinstance(data, dict) else None


def _run_locked(prep: Prepared, resume: bool, progress: bool, t0: float, accuracy: Any = None,
                plots: bool = True, strict: bool = False, echo: Callable[[str], None] = print) -> ExperimentResult:
    spec = prep.spec
    seconds = {"prepare": time.perf_counter() - t0}
    store = ResultsStore(prep.out_dir)
    # a run killed before its first evaluation (e.g. during supernet training) has nothing to
    # continue: --resume then starts it (the supernet checkpoint resumes on its own)
    resume = resume and store.exists()
    if not resume and store.evaluations_path.exists():
        raise JaqmooError(f"{prep.out_dir} already holds a run; pass --resume to continue it or --out to choose another directory")
    if resume:  # before any training: the same search, and stored results intact
        stored = _stored_spec(store)
        if stored is not None:
            check_resume_spec(prep.out_dir, stored, spec.to_dict())
        store.read_records()
        store.load_checkpoint()  # an old pickled or damaged checkpoint stops here, not after training

    if accuracy is None:
        accuracy = accuracy_module.obtain_accuracy(spec, prep.splits, prep.layer_names, prep.out_dir / "supernet.pt", progress=progress)
        seconds.update(accuracy.seconds)
    # haq / bits-nsga2 search bits only (hardware at its defaults, mapper inside); model.elastic
    # puts architecture genes in front
    space = prep.search_space(accuracy.fixed_layers)

    min_acc = spec.constraints.min_accuracy
    has8 = 8 in space.weight_choices and 8 in space.act_choices
    # the uniform 8-bit policy (of the largest architecture in an elastic search)
    baseline_acc = candidate_accuracy(accuracy.search_estimator, space.decode_one(space.uniform_seeds([8])[0])) \
        if has8 else None
    # is the accuracy meaningful at all? (judged by the supernet, also when a predictor searches)
    checked = accuracy.search_estimator if accuracy.rescore_estimator is None else accuracy.rescore_estimator
    supernet_u8 = candidate_accuracy(checked, space.decode_one(space.uniform_seeds([8])[0])) if has8 else None
    warnings = accuracy_warnings(supernet_u8, prep.splits.num_classes, accuracy.meta.get("float_accuracy"))
    for text in warnings:
        echo(f"warning: {text}")
    if warnings and strict:
        raise strict_error(warnings, spec.source)
    if spec.constraints.max_accuracy_drop is not None:
        if baseline_acc is None:
            raise JaqmooError(f"{spec.source}: constraints.max_accuracy_drop needs 8 in quantization.weight_bits and act_bits")
        min_acc = baseline_acc - spec.constraints.max_accuracy_drop
    constraints = Constraints(min_accuracy=min_acc, max_area_mm2=spec.constraints.max_area_mm2)

    mapper_cache = mapper_cache_dir(spec, prep.out_dir)
    # elastic: the cost of each candidate's decoded sub-network (jaqmoo.search.arch_genes)
    evaluator = build_evaluator(spec.to_dict(), space, prep.template, accuracy.search_estimator, prep.workload,
                                cache_dir=mapper_cache)
    settings = SearchSettings(objectives=spec.objectives, constraints=constraints, algorithm=spec.search.algorithm,
                              population=spec.search.population, generations=spec.search.generations,
                              seed=spec.seed, seed_bits=spec.search.seed_bits, batch_size=spec.search.batch_size,
                              init=spec.search.init,
                              haq_resource=spec.search.haq_resource, haq_budgets=spec.search.haq_budgets)
    prep.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(prep.out_dir / "spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False), "the run's spec")
    t1 = time.perf_counter()
    meta_extra = {"model": spec.model.name, "dataset": spec.dataset.name, "template": spec.accelerator.label,
                  "technology_nm": technology_node(prep.template, prep.hardware_fixed),
                  "accuracy_estimator": spec.accuracy.estimator, "uniform8_accuracy": baseline_acc,
                  "energy_source": evaluator.energy_source, "input_shape": list(prep.splits.input_shape),
                  "num_classes": prep.splits.num_classes, "spec": spec.to_dict(), **accuracy.meta,
                  "supernet_uniform8_accuracy": supernet_u8, "accuracy_warnings": warnings,
                  # what the cost model leaves out of this network (jaqmoo.tracing)
                  "not_costed": not_costed_record(prep.workload.not_costed)}
    report = ReportWriter(prep.out_dir, breakdown=CostBreakdown.of(evaluator, space, prep.workload))
    search_in_directory(prep.out_dir, spec.name, space, evaluator, settings, resume=resume, progress=progress,
                        meta_extra=meta_extra, locked=True, on_generation=report)
    seconds["search"] = time.perf_counter() - t1
    if evaluator.warmup_seconds is not None:  # inner mapping's warm-up (part of search)
        seconds["mapper_warmup"] = evaluator.warmup_seconds

    run = load_run(prep.out_dir)
    if accuracy.rescore_estimator is not None and spec.accuracy.rescore_front:
        t2 = time.perf_counter()
        rescore_front(run, space, accuracy.rescore_estimator, 2 * spec.search.population, progress)
        seconds["rescore"] = time.perf_counter() - t2
        run = load_run(prep.out_dir)
    files = write_outputs(run, plots=plots)
    if (path := report(force=True)) is not None:
        files.append(path)
    seconds["reports"] = report.seconds  # report.html after every generation and at the end (part of search + total)
    seconds["total"] = time.perf_counter() - t0
    atomic_write_text(prep.out_dir / "timings.json", json.dumps(seconds, indent=1), "the run's timings")
    return ExperimentResult(run, prep.out_dir, seconds, files)


def rescore_front(run: Run, space: Any, estimator: Any, pool: int, progress: bool = True) -> None:
    """Score the baselines and the best predicted non-dominated ranks (at least ``pool``
    individuals, not only the predicted front: a predictor's errors move points across
    ranks) with the supernet; write ``rescored.json``. :func:`jaqmoo.report.load_run` then
    marks the front under the re-scored accuracy. Genomes already in ``rescored.json`` (a
    resumed or re-opened run) keep their score and are not estimated again."""
    rows = nondominated_ranks(run.evaluations, run.objectives, pool)
    base = run.baselines
    genes = list(dict.fromkeys(list(rows["genes"]) + (list(base["genes"]) if len(base) else [])))
    scores = read_rescored(run.dir)
    todo = [g for g in genes if g not in scores]
    for g in progress_bar(todo, desc="re-scoring the front (supernet)", disable=not progress, leave=False):
        scores[g] = candidate_accuracy(estimator, space.decode_one(np.array([int(v) for v in g.split()])))
    atomic_write_text(run.dir / RESCORED, json.dumps({g: scores[g] for g in genes}, indent=1), "the re-scored front")


def write_outputs(run: Run, plots: bool = True) -> list[Path]:
    """Front and all evaluations as CSV + Parquet, and the plots, in the run directory."""
    files = run.export(csv=run.dir / "front.csv", parquet=run.dir / "front.parquet")
    files += run.export(csv=run.dir / "evaluations.csv", parquet=run.dir / "evaluations.parquet", all=True)
    if plots:
        files += run.plot()
    return files
