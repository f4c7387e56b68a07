"""A validated experiment spec -> a finished run directory.

Python API::

    from jaqmoo.experiment import run_experiment
    result = run_experiment("problems/quickstart.yaml", out="runs/qs", generations=5)
    result.run.front          # pandas DataFrame of the Pareto front

Steps, in order (everything that can be wrong with the spec fails in step 1, before any
training or search):

1. :func:`prepare_experiment`: validate the spec (:mod:`jaqmoo.search.spec`), the hardware
   template and its parameters, the fixed layers, the area budget against the smallest
   hardware the search can reach; load the dataset; build the model and its workload
   (with ``model.elastic``: the largest sub-network's, see :mod:`jaqmoo.search.elastic_run`;
   the search then evolves architecture genes too and costs each decoded sub-network).
2. Accuracy: load the supernet checkpoint named by ``accuracy.checkpoint`` (or train it and
   save it there); with ``estimator: predictor`` fit a predictor on supernet samples.
3. Resolve ``max_accuracy_drop`` against the uniform 8-bit accuracy.
4. Search (:func:`jaqmoo.search.session.search_in_directory`), resumable.
5. Re-score the front with the supernet (predictor runs), export ``front.csv``/``.parquet``,
   ``evaluations.csv``/``.parquet``, plot ``front.png`` and ``hypervolume.png``.

``report.html`` (:mod:`jaqmoo.reporting.html`) is rewritten after every generation through the
search's ``on_generation`` callback, and once more at the end.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.locking import FolderLock
from jaqmoo.reporting.run import RESCORED, Run, load_run, read_rescored
from jaqmoo.safe_write import atomic_write_text
from jaqmoo.search.baselines import searcher_space
from jaqmoo.search.compat import check_resume_spec
from jaqmoo.search.genome import GenomeSpace, HardwareGene
from jaqmoo.search.problem import Constraints
from jaqmoo.search.session import SearchSettings, search_in_directory
from jaqmoo.search.spec import ExperimentSpec, _suggest, coerce_spec
from jaqmoo.search.store import ResultsStore
from jaqmoo.strict import contained_path, load_yaml_file
from jaqmoo.workload import Workload, extract_workload


@dataclass
class Prepared:
    """Everything built from a spec before any training or search."""

    spec: ExperimentSpec
    out_dir: Path
    splits: Any  # jaqmoo.data.DatasetSplits
    workload: Workload
    layer_names: tuple[str, ...]
    template: Any  # jaqmoo.hardware.templates.Template
    hardware_genes: tuple[HardwareGene, ...]
    hardware_fixed: dict[str, int]
    fixed_layers: dict[int, tuple[int, int]]
    #: the architecture space of ``model.elastic`` (None: a fixed network); ``workload`` and
    #: ``layer_names`` are then its largest sub-network's
    elastic: Any = None

    def search_space(self, extra_fixed: dict[int, tuple[int, int]] | None = None) -> Any:
        """The genome the search evolves: :meth:`genome_space`, with architecture genes in
        front of it for an elastic search (:class:`~jaqmoo.search.arch_genes.ArchGenomeSpace`)."""
        space = searcher_space(self.spec.search.algorithm, self.genome_space(extra_fixed))
        if self.elastic is None:
            return space
        from jaqmoo.search.elastic_run import arch_genome

        return arch_genome(self.elastic, space, self.splits)

    def genome_space(self, extra_fixed: dict[int, tuple[int, int]] | None = None) -> GenomeSpace:
        q = self.spec.quantization
        fixed = dict(self.fixed_layers)
        for i, bits in (extra_fixed or {}).items():
            if i in fixed and fixed[i] != bits:
                raise JaqmooError(
                    f"{self.spec.source}: quantization.fixed_layers: layer {self.layer_names[i]!r} is fixed at "
                    f"{fixed[i][0]}/{fixed[i][1]} but the supernet checkpoint keeps it at {bits[0]}/{bits[1]}"
                )
            fixed[i] = bits
        return GenomeSpace(
            layer_names=self.layer_names,
            weight_choices=q.weight_bits,
            act_choices=q.act_bits,
            fixed_layers=fixed,
            hardware_genes=self.hardware_genes,
            hardware_fixed=self.hardware_fixed,
            mapping_mode=self.spec.mapping.mode,
            mapping_candidates=self.spec.mapping.candidates,
        )


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


def _hardware(spec: ExperimentSpec) -> tuple[Any, tuple[HardwareGene, ...], dict[str, int]]:
    from jaqmoo.hardware.templates import TEMPLATES, get_template

    src = spec.source
    acc = spec.accelerator
    if acc.timeloop is not None:  # fixed hardware read from a Timeloop input (no genes)
        from jaqmoo.timeloop.design import load_design

        return load_design(acc.timeloop, f"{src}: accelerator.timeloop"), (), {}
    if acc.template not in TEMPLATES:
        raise JaqmooError(f"{src}: accelerator.template: unknown template {acc.template!r}; "
                          f"{_suggest(acc.template, list(TEMPLATES))}choose one of: {', '.join(TEMPLATES)}")
    template = get_template(acc.template)
    names = list(template.param_names)
    fixed: dict[str, int] = {}
    for name, value in acc.fixed:
        if name not in names:
            raise JaqmooError(f"{src}: accelerator.fixed.{name}: {acc.template} has no parameter {name!r}; "
                              f"{_suggest(name, names)}its parameters: {', '.join(names)}")
        fixed[name] = template.param(name).check(value, False, acc.template)
    searched = [(p.name, ()) for p in template.searchable_params if p.name not in fixed] if acc.search_all else list(acc.search)
    genes = []
    for name, values in searched:
        if name not in names:
            raise JaqmooError(f"{src}: accelerator.search: {acc.template} has no parameter {name!r}; "
                              f"{_suggest(name, names)}its parameters: {', '.join(names)}")
        p = template.param(name)
        if not p.searchable:
            raise JaqmooError(f"{src}: accelerator.search: {name} describes the design point and is not searched; "
                              "set it under accelerator.fixed instead")
        choices = tuple(sorted({p.check(v, False, acc.template) for v in values})) if values else p.choices
        default = fixed.get(name, p.default)
        genes.append(HardwareGene(name, choices, default if default in choices else choices[0]))
    # every combination of the extreme choices must be buildable (word width >= datawidth ...)
    template.resolve(False, **fixed, **{g.name: g.choices[0] for g in genes})
    template.resolve(False, **fixed, **{g.name: g.choices[-1] for g in genes})
    return template, tuple(genes), fixed


def validate_hardware(spec: ExperimentSpec) -> None:
    """Check the spec's accelerator section against its template (no dataset or model needed)."""
    _hardware(spec)


def _fixed_layers(spec: ExperimentSpec, layer_names: tuple[str, ...]) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for key, bits in spec.quantization.fixed_layers:
        if key == "first":
            out[0] = bits
        elif key == "last":
            out[len(layer_names) - 1] = bits
        elif key in layer_names:
            out[layer_names.index(key)] = bits
        else:
            raise JaqmooError(
                f"{spec.source}: quantization.fixed_layers: {spec.model.name} has no layer {key!r}; "
                f"{_suggest(key, list(layer_names))}use 'first', 'last' or one of {list(layer_names)[:6]}..."
            )
    return out


def _check_area_budget(spec: ExperimentSpec, template: Any, genes: tuple[HardwareGene, ...], fixed: dict[str, int]) -> None:
    budget = spec.constraints.max_area_mm2
    if budget is None:
        return
    from jaqmoo.search.evaluation import accelerator_area_mm2

    smallest = {g.name: g.choices[0] for g in genes}
    area = accelerator_area_mm2(template.build(**fixed, **smallest))
    if area is not None and area > budget:
        raise JaqmooError(
            f"{spec.source}: constraints.max_area_mm2={budget} is impossible: the smallest hardware the search "
            f"can reach ({', '.join(f'{k}={v}' for k, v in smallest.items()) or 'the fixed design'}) already "
            f"takes {area:.4g} mm²; raise the budget or allow smaller parameter values"
        )


def mapper_cache_dir(spec: ExperimentSpec, out_dir: Path) -> Path | None:
    """The mapper warm-up cache folder of a run: ``mapping.cache_dir``, else ``out_dir/mapper-cache``
    (so ``--resume`` skips the warm-up); None when the spec turns it off (``cache_dir: false``)."""
    value = spec.mapping.cache_dir
    if value is False:
        return None
    return Path(value).expanduser() if isinstance(value, str) else out_dir / "mapper-cache"


def default_out_dir(spec: ExperimentSpec) -> Path:
    """``output.dir`` or ``runs/<name>``, refusing a ``..`` (or absolute name) that leaves that folder.

    An explicit ``--out`` (the ``out`` argument) is taken as given and never comes here.
    """
    if spec.output_dir:
        return contained_path(spec.output_dir, f"{spec.source}: output.dir", absolute_ok=True,
                              fix="give a path without '..', or pass --out DIR on the command line to write elsewhere")
    return Path("runs") / contained_path(
        spec.name, f"{spec.source}: name", absolute_ok=False, leaving="the run outside runs/",
        fix="it becomes the folder runs/<name>: use a plain name such as 'quickstart-w05', set output.dir, or pass --out DIR")


def _check_writable_folder(path: Path, what: str) -> None:
    """``path`` is a folder (or can be created as one) that this process may write."""
    if path.exists() and not path.is_dir():
        raise JaqmooError(f"{what} {path} is a file, not a folder; give a folder path")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise JaqmooError(f"{what} {path}: {probe} is a file, so the folder cannot be created; give another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise JaqmooError(f"{what} {path}: {probe} is not writable by this user; choose a writable location")


def check_paths(spec: ExperimentSpec, out_dir: Path) -> None:
    """Every path of the spec is of the right kind (file vs folder) and writable where it is written."""
    src = spec.source
    _check_writable_folder(out_dir, "output folder (output.dir / --out)")
    if spec.accuracy.checkpoint is not None:
        p = Path(spec.accuracy.checkpoint).expanduser()
        if p.is_dir():
            raise JaqmooError(f"{src}: accuracy.checkpoint {p} is a folder; give a file path such as {p / 'supernet.pt'}, "
                              f"or set accuracy.cache_dir: {p} to keep hash-named supernets there")
        if not p.is_file():  # it will be trained and written there
            _check_writable_folder(p.parent, f"{src}: accuracy.checkpoint's folder")
        elif not os.access(p, os.R_OK):
            raise JaqmooError(f"{src}: accuracy.checkpoint {p} is not readable by this user")
    if spec.accuracy.cache_dir is not None:
        _check_writable_folder(Path(spec.accuracy.cache_dir).expanduser(), f"{src}: accuracy.cache_dir")
    if isinstance(spec.mapping.cache_dir, str):
        _check_writable_folder(Path(spec.mapping.cache_dir).expanduser(), f"{src}: mapping.cache_dir")
    if spec.dataset.root is not None:
        p = Path(spec.dataset.root).expanduser()
        if p.exists() and not p.is_dir():
            raise JaqmooError(f"{src}: dataset.root {p} is a file; give the dataset's folder")


def prepare_experiment(spec_or_path: ExperimentSpec | str | Path | dict, out: str | Path | None = None,
                       generations: int | None = None, population: int | None = None) -> Prepared:
    """Validate everything and build the dataset, model workload and hardware space."""
    from jaqmoo.data import load_dataset
    from jaqmoo.models import build_model
    from jaqmoo.search.accuracy import check_train_options
    from jaqmoo.search.elastic_run import elastic_space
    from jaqmoo.workload import quantizable_layers

    spec = coerce_spec(spec_or_path).with_overrides(generations, population)
    template, genes, fixed = _hardware(spec)
    if spec.model.checkpoint is not None and not Path(spec.model.checkpoint).expanduser().is_file():
        state = "is a folder" if Path(spec.model.checkpoint).expanduser().is_dir() else "does not exist"
        raise JaqmooError(f"{spec.source}: model.checkpoint {spec.model.checkpoint} {state}; "
                          "give the path of a pretrained state_dict file or remove the key")
    splits = load_dataset(spec.dataset.name, root=spec.dataset.root, seed=spec.dataset.split_seed, input_size=spec.dataset.input_size)
    space = elastic_space(spec)
    if space is None:
        model = build_model(spec.model.name, splits.num_classes, splits.in_channels, splits.input_size, spec.model.width_mult)
        workload = extract_workload(model, splits.input_shape, name=spec.model.name)
    else:  # the largest sub-network: its layers are the supernet's and the bits genome's
        from jaqmoo.models.elastic_mbv2 import build_largest
        from jaqmoo.search.elastic_run import largest_workload

        model = build_largest(space, splits.num_classes, splits.in_channels, splits.input_size)
        workload = largest_workload(space, splits)
    layer_names = tuple(n for n, _ in quantizable_layers(model))
    if [layer.name for layer in workload.layers] != list(layer_names):
        raise JaqmooError(f"model {spec.model.name}: its workload layers do not line up with its quantizable layers")
    fixed_layers = _fixed_layers(spec, layer_names)
    check_train_options(spec)
    _check_area_budget(spec, template, genes, fixed)
    out_dir = Path(out) if out is not None else default_out_dir(spec)
    check_paths(spec, out_dir)
    return Prepared(spec, out_dir, splits, workload, layer_names, template, genes, fixed, fixed_layers, space)


def run_experiment(spec_or_path: ExperimentSpec | str | Path | dict, out: str | Path | None = None,
                   resume: bool = False, generations: int | None = None, population: int | None = None,
                   progress: bool = True, accuracy: Any = None, plots: bool = True) -> ExperimentResult:
    """Run (or ``resume``) the experiment; returns the loaded run and timings.

    The run folder is locked (:class:`jaqmoo.locking.FolderLock`) from before supernet
    training to the last export; a second writer gets :class:`jaqmoo.locking.LockHeld`.
    ``accuracy``: an :class:`~jaqmoo.search.accuracy.AccuracySetup` already obtained for this
    spec's model and data (runs that compare searchers share one supernet and predictor);
    by default it is loaded or trained from ``accuracy.checkpoint``. ``plots=False`` skips the
    PNGs (``jaqmoo plot RUN_DIR`` draws them later).
    """
    t0 = time.perf_counter()
    prep = prepare_experiment(spec_or_path, out, generations, population)
    with FolderLock(prep.out_dir, what="run"):  # one writer per run folder, for the whole run
        return _run_locked(prep, resume, progress, t0, accuracy, plots)


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
                plots: bool = True) -> ExperimentResult:
    from jaqmoo.search.accuracy import obtain_accuracy
    from jaqmoo.search.elastic_run import candidate_accuracy
    from jaqmoo.search.evaluation import JointEvaluator

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
        accuracy = obtain_accuracy(spec, prep.splits, prep.layer_names, prep.out_dir / "supernet.pt", progress=progress)
        seconds.update(accuracy.seconds)
    # haq / bits-nsga2 search bits only (hardware at its defaults, mapper inside); model.elastic
    # puts architecture genes in front
    space = prep.search_space(accuracy.fixed_layers)

    min_acc = spec.constraints.min_accuracy
    baseline_acc = None
    if spec.constraints.max_accuracy_drop is not None or spec.accuracy.estimator == "predictor":
        # the uniform 8-bit policy (of the largest architecture in an elastic search)
        baseline_acc = candidate_accuracy(accuracy.search_estimator, space.decode_one(space.uniform_seeds([8])[0])) \
            if 8 in space.weight_choices and 8 in space.act_choices else None
    if spec.constraints.max_accuracy_drop is not None:
        if baseline_acc is None:
            raise JaqmooError(f"{spec.source}: constraints.max_accuracy_drop needs 8 in quantization.weight_bits and act_bits")
        min_acc = baseline_acc - spec.constraints.max_accuracy_drop
    constraints = Constraints(min_accuracy=min_acc, max_area_mm2=spec.constraints.max_area_mm2)

    mapper_cache = mapper_cache_dir(spec, prep.out_dir)
    if prep.elastic is None:
        evaluator = JointEvaluator(prep.workload, prep.template, accuracy.search_estimator, space,
                                   metric=spec.mapping.metric, accumulator_bits=spec.quantization.accumulator_bits,
                                   cache_dir=mapper_cache)
    else:  # the cost of each candidate's decoded sub-network (jaqmoo.search.arch_genes)
        from jaqmoo.search.arch_genes import ArchEvaluator

        evaluator = ArchEvaluator(space, prep.template, accuracy.search_estimator, metric=spec.mapping.metric,
                                  accumulator_bits=spec.quantization.accumulator_bits, cache_dir=mapper_cache)
    settings = SearchSettings(objectives=spec.objectives, constraints=constraints, algorithm=spec.search.algorithm,
                              population=spec.search.population, generations=spec.search.generations,
                              seed=spec.seed, seed_bits=spec.search.seed_bits, batch_size=spec.search.batch_size,
                              haq_resource=spec.search.haq_resource, haq_budgets=spec.search.haq_budgets)
    prep.out_dir.mkdir(parents=True, exist_ok=True)
    import yaml

    atomic_write_text(prep.out_dir / "spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False), "the run's spec")
    t1 = time.perf_counter()
    meta_extra = {"model": spec.model.name, "dataset": spec.dataset.name, "template": spec.accelerator.label,
                  "technology_nm": getattr(prep.template, "technology_nm", None),
                  "accuracy_estimator": spec.accuracy.estimator, "uniform8_accuracy": baseline_acc,
                  "energy_source": evaluator.energy_source, "input_shape": list(prep.splits.input_shape),
                  "num_classes": prep.splits.num_classes, "spec": spec.to_dict(), **accuracy.meta}
    from jaqmoo.reporting.breakdown import CostBreakdown
    from jaqmoo.reporting.html import ReportWriter

    report = ReportWriter(prep.out_dir, breakdown=CostBreakdown.of(evaluator, space, prep.workload))
    search_in_directory(prep.out_dir, spec.name, space, evaluator, settings, resume=resume, progress=progress,
                        meta_extra=meta_extra, locked=True, on_generation=report)
    seconds["search"] = time.perf_counter() - t1
    if evaluator.warmup_seconds is not None:  # inner mapping's warm-up (part of search)
        seconds["mapper_warmup"] = evaluator.warmup_seconds

    run = load_run(prep.out_dir)
    if accuracy.rescore_estimator is not None and spec.accuracy.rescore_front:
        t2 = time.perf_counter()
        _rescore_front(run, space, accuracy.rescore_estimator, 2 * spec.search.population, progress)
        seconds["rescore"] = time.perf_counter() - t2
        run = load_run(prep.out_dir)
    files = write_outputs(run, plots=plots)
    if (path := report(force=True)) is not None:
        files.append(path)
    seconds["reports"] = report.seconds  # report.html after every generation and at the end (part of search + total)
    seconds["total"] = time.perf_counter() - t0
    atomic_write_text(prep.out_dir / "timings.json", json.dumps(seconds, indent=1), "the run's timings")
    return ExperimentResult(run, prep.out_dir, seconds, files)


def _rescore_front(run: Run, space: Any, estimator: Any, pool: int, progress: bool = True) -> None:
    """Score the baselines and the best predicted non-dominated ranks (at least ``pool``
    individuals, not only the predicted front: a predictor's errors move points across
    ranks) with the supernet; write ``rescored.json``. :func:`jaqmoo.report.load_run` then
    marks the front under the re-scored accuracy. Genomes already in ``rescored.json`` (a
    resumed or re-opened run) keep their score and are not estimated again."""
    import numpy as np
    from tqdm.auto import tqdm

    from jaqmoo.reporting.run import nondominated_ranks
    from jaqmoo.search.elastic_run import candidate_accuracy

    rows = nondominated_ranks(run.evaluations, run.objectives, pool)
    base = run.baselines
    genes = list(dict.fromkeys(list(rows["genes"]) + (list(base["genes"]) if len(base) else [])))
    scores = read_rescored(run.dir)
    todo = [g for g in genes if g not in scores]
    for g in tqdm(todo, desc="re-scoring the front (supernet)", disable=not progress, leave=False):
        scores[g] = candidate_accuracy(estimator, space.decode_one(np.array([int(v) for v in g.split()])))
    atomic_write_text(run.dir / RESCORED, json.dumps({g: scores[g] for g in genes}, indent=1), "the re-scored front")


def write_outputs(run: Run, plots: bool = True) -> list[Path]:
    """Front and all evaluations as CSV + Parquet, and the plots, in the run directory."""
    files = run.export(csv=run.dir / "front.csv", parquet=run.dir / "front.parquet")
    files += run.export(csv=run.dir / "evaluations.csv", parquet=run.dir / "evaluations.parquet", all=True)
    if plots:
        files += run.plot()
    return files
