"""Experiment specs (``problems/*.yaml``): schema, defaults and validation.

A spec is read into plain frozen dataclasses (:class:`ExperimentSpec` and its sections).
Validation happens here, before any work starts: unknown keys (with "did you mean"
suggestions), wrong types, values out of range and impossible combinations each raise a
:class:`~jaqmoo.errors.JaqmooError` naming the file, the field and the fix. Checks that need
the hardware template or the model (hardware parameter names/choices, area budget below
the smallest configuration, fixed layers that do not exist) are done by
:func:`jaqmoo.experiment.prepare_experiment`, still before any training or search.

Example (``problems/quickstart.yaml``)::

    name: quickstart
    seed: 0
    model: {name: simple_cnn}
    dataset: {name: digits}
    accelerator: {template: eyeriss, search: [pe_x, glb_depth]}
    quantization: {weight_bits: [2, 3, 4, 5, 6, 8], act_bits: [4, 5, 6, 8]}
    # (optional: quantization.accumulator_bits: 24 -- partial-sum width; default the template's)
    mapping: {mode: inner, metric: energy}
    accuracy: {estimator: supernet, cache_dir: runs/cache,
               train: {epochs: 3}}
    objectives: [accuracy, energy, memory]
    constraints: {max_accuracy_drop: 0.05}
    search: {algorithm: nsga2, population: 24, generations: 10}
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.estimators import ESTIMATORS as ESTIMATOR_KINDS
from jaqmoo.experiment.fields import (
    bits_list,
    bits_pair,
    check_keys,
    choice,
    field_names,
    float_range,
    int_range,
    optional_path,
    section,
    typed,
)
from jaqmoo.models import MODELS, check_model_name
from jaqmoo.models.elastic_space import FAMILIES, family
from jaqmoo.objectives import NAMES as OBJECTIVE_NAMES
from jaqmoo.quant.policy import SUPPORTED_BITS
from jaqmoo.search.algorithms import ALGORITHM_NAMES, INITS
from jaqmoo.search.baselines import SEARCHERS
from jaqmoo.strict import load_yaml_text, shown
from jaqmoo.textfile import read_utf8

MAPPING_MODES = ("inner", "outer")
MAPPING_METRICS = ("energy", "edp", "cycles")
ESTIMATORS = tuple(ESTIMATOR_KINDS)  # jaqmoo.experiment.estimators
DATASETS = ("digits", "fashion-mnist", "cifar10", "imagefolder")
#: pymoo algorithms (jaqmoo.search.algorithms) and the seed papers' searchers (jaqmoo.search.baselines),
#: both selectable as search.algorithm
ALGORITHMS = ALGORITHM_NAMES
BASELINE_ALGORITHMS = tuple(SEARCHERS)
HAQ_RESOURCES = ("energy", "latency", "memory")
MAX_POPULATION = 100_000  # a population array is population x genes: checked before pymoo allocates it
MAX_GENERATIONS = 10_000_000


@dataclass(frozen=True)
class ModelSpec:
    """Which CNN to search: a built-in name, ``torchvision:<name>`` or ``package.module:callable``
    (:func:`jaqmoo.models.build_model`)."""

    name: str
    width_mult: float = 1.0
    checkpoint: str | None = None  # pretrained float weights (state_dict) to start the supernet from
    #: elastic architecture space (mobilenet_v2, mobilenet_v1): (("depth", (...)), ("expand", (...)), ("kernel", (...)));
    #: None = the fixed network. See :mod:`jaqmoo.models.elastic_mbv2`.
    elastic: tuple[tuple[str, tuple[int, ...]], ...] | None = None

    @property
    def elastic_dict(self) -> dict[str, list[int]] | None:
        """``model.elastic`` as a plain mapping (None for the fixed network)."""
        return None if self.elastic is None else {k: list(v) for k, v in self.elastic}


@dataclass(frozen=True)
class DatasetSpec:
    """Dataset for supernet training/evaluation (``jaqmoo.data.load_dataset``)."""

    name: str
    root: str | None = None
    input_size: int = 224  # image size for imagefolder (the other datasets have a fixed size)
    #: seed of the train/validation split: fixed, NOT the search seed, so runs with other search
    #: seeds that share a supernet never validate on images it trained on
    split_seed: int = 0


@dataclass(frozen=True)
class AcceleratorSpec:
    """Hardware template, parameters held fixed and parameters evolved by the search; or a
    Timeloop architecture (``timeloop``: an absolute path; fixed hardware, no template)."""

    template: str | None
    fixed: tuple[tuple[str, int], ...] = ()
    #: evolved parameters: (name, allowed values or () = all the template's choices)
    search: tuple[tuple[str, tuple[int, ...]], ...] = ()
    search_all: bool = False
    timeloop: str | None = None

    @property
    def label(self) -> str:
        """The template name, or ``timeloop:<folder name>``."""
        if self.timeloop is None:
            return str(self.template)
        from jaqmoo.timeloop.design import design_name

        return f"timeloop:{design_name(self.timeloop)}"


@dataclass(frozen=True)
class QuantizationSpec:
    """Bit-width choices per layer and layers held at fixed bits."""

    weight_bits: tuple[int, ...] = SUPPORTED_BITS
    act_bits: tuple[int, ...] = SUPPORTED_BITS
    #: layer name (or 'first' / 'last') -> (w, a) held fixed
    fixed_layers: tuple[tuple[str, tuple[int, int]], ...] = ()
    #: partial-sum width at every level still reducing outputs (None: the template's psum width)
    accumulator_bits: int | None = None


@dataclass(frozen=True)
class MappingSpec:
    """How mappings are chosen: by the mapper per layer (inner) or evolved (outer)."""

    mode: str = "inner"
    metric: str = "energy"
    candidates: int = 16  # outer mode: mapping candidates per layer the gene indexes into
    #: folder of the persistent mapper warm-up cache (jaqmoo.mapping.cache); None: the run
    #: folder's ``mapper-cache`` (a sweep's ``<sweep dir>/mapper-cache``); False: no cache
    cache_dir: str | bool | None = None


@dataclass(frozen=True)
class AccuracySpec:
    """Accuracy estimation: the CSQ supernet directly, or a predictor fitted on it."""

    estimator: str = "supernet"
    checkpoint: str | None = None  # supernet checkpoint: loaded if present, else trained and saved
    #: folder of supernets named by a hash of their identity (used when checkpoint is not given)
    cache_dir: str | None = None
    train: tuple[tuple[str, Any], ...] = ()  # keyword arguments of jaqmoo.quant.supernet.train_supernet
    val_images: int = 500
    predictor_samples: int = 200
    rescore_front: bool = True

    @property
    def train_kwargs(self) -> dict[str, Any]:
        return dict(self.train)


@dataclass(frozen=True)
class ConstraintSpec:
    """Feasibility constraints (``None`` = not constrained)."""

    min_accuracy: float | None = None
    max_accuracy_drop: float | None = None  # below the uniform 8-bit accuracy, as a fraction
    max_area_mm2: float | None = None


@dataclass(frozen=True)
class SearchSpec:
    """The evolutionary algorithm and its budget."""

    algorithm: str = "nsga2"
    population: int = 32
    generations: int = 20
    seed_bits: tuple[int, ...] = (8, 6, 4)
    batch_size: int = 16  # individuals evaluated (and flushed to the store) per batch
    #: the first population: each searcher's own, or one common to every searcher (spread | random)
    init: str = "own"
    #: haq only: the resource its action wall holds to, and the budgets (fractions of uniform 8-bit)
    haq_resource: str = "energy"
    haq_budgets: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class ExperimentSpec:
    """A whole validated experiment."""

    name: str
    model: ModelSpec
    dataset: DatasetSpec
    accelerator: AcceleratorSpec
    quantization: QuantizationSpec = QuantizationSpec()
    mapping: MappingSpec = MappingSpec()
    accuracy: AccuracySpec = AccuracySpec()
    objectives: tuple[str, ...] = ("accuracy", "energy")
    constraints: ConstraintSpec = ConstraintSpec()
    search: SearchSpec = SearchSpec()
    seed: int = 0
    output_dir: str | None = None
    source: str = "<dict>"  # file the spec came from (for messages)
    base_dir: str = "."  # relative paths in the spec are relative to the working directory

    def with_overrides(self, generations: int | None = None, population: int | None = None) -> ExperimentSpec:
        """A copy with the CLI's ``--generations`` / ``--pop`` applied (validated)."""
        search = self.search
        if generations is not None:
            search = replace(search, generations=int_range(generations, "--generations", 1, None, "command line"))
        if population is not None:
            search = replace(search, population=int_range(population, "--pop", 4, None, "command line"))
            _check_population(search, "command line")
        return replace(self, search=search)

    def to_dict(self) -> dict:
        """A plain-data form (written into the run directory as ``spec.yaml``)."""
        return _plain(self)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        if obj and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in obj):
            return {k: _plain(v) for k, v in obj}
        return [_plain(x) for x in obj]
    return obj


# ----------------------------------------------------------------------------- sections


def _model(data: Any, src: str) -> ModelSpec:
    d = section(data, f"{src}: model")
    check_keys(d, field_names(ModelSpec), f"{src}: model")
    if "name" not in d:
        raise JaqmooError(f"{src}: model.name is required; choose one of: {', '.join(sorted(MODELS))}")
    name = typed(d["name"], str, f"{src}: model.name")
    try:
        name = check_model_name(name)
    except JaqmooError as exc:
        raise JaqmooError(f"{src}: model.name: {exc}") from None
    checkpoint = optional_path(d.get("checkpoint"), "model.checkpoint", src)
    return ModelSpec(
        name=name,
        width_mult=float_range(d.get("width_mult", 1.0), "model.width_mult", 0.0, 4.0, src, lo_open=True),
        checkpoint=checkpoint,
        elastic=_elastic(d["elastic"], name, checkpoint, src) if d.get("elastic") is not None else None,
    )


ELASTIC_KEYS = ("depth", "expand", "kernel")


def _elastic(data: Any, model: str, checkpoint: str | None, src: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``model.elastic``: ``{depth: [...], expand: [...], kernel: [...]}`` (each key optional,
    defaults the family's: 2/3/4, 3/4/6, 3/5/7 for mobilenet_v2; 1/2/4/6, 1, 3/5/7 for
    mobilenet_v1, whose blocks have no expand layer), validated; sorted unique choices per key."""
    if model not in FAMILIES:
        raise JaqmooError(f"{src}: model.elastic: model {model!r} has no elastic architecture space; only "
                          f"{', '.join(FAMILIES)} have one. Set model.name to one of them or remove model.elastic")
    if checkpoint is not None:
        raise JaqmooError(f"{src}: model.checkpoint cannot start an elastic supernet (its largest network has other "
                          "weight shapes); remove model.checkpoint or model.elastic")
    d = section(data, f"{src}: model.elastic")
    check_keys(d, list(ELASTIC_KEYS), f"{src}: model.elastic")
    fam = family(model)
    defaults = fam.defaults
    top_expand = 8 if fam.has_expand else 1
    limits = {"depth": (1, fam.max_depth, f"{model}'s stages have at most {fam.max_depth} blocks"),
              "expand": (1, top_expand, "an expand ratio of 1..8 (MobileNetV2 uses 6)"),
              "kernel": (1, 9, "an odd depthwise kernel of 1..9 (e.g. 3, 5, 7)")}
    out = []
    for key in ELASTIC_KEYS:
        value = d.get(key, list(defaults[key]))
        if not isinstance(value, list) or not value:
            raise JaqmooError(f"{src}: model.elastic.{key}: expected a non-empty list of integers such as "
                              f"{list(defaults[key])} (got {value!r})")
        lo, hi, what = limits[key]
        if key == "expand" and not fam.has_expand and value != [1]:
            raise JaqmooError(f"{src}: model.elastic.expand: {model}'s depthwise-separable blocks have no expand "
                              f"layer (got {value!r}); remove model.elastic.expand or give [1]")
        vals = tuple(int_range(v, f"model.elastic.{key}[{i}]", lo, hi, src) for i, v in enumerate(value))
        if key == "kernel" and any(k % 2 == 0 for k in vals):
            raise JaqmooError(f"{src}: model.elastic.kernel: {list(vals)} has an even kernel; use {what}")
        if len(set(vals)) != len(vals):
            raise JaqmooError(f"{src}: model.elastic.{key}: {list(vals)} lists a choice twice")
        out.append((key, tuple(sorted(vals))))
    return tuple(out)


def _dataset(data: Any, src: str) -> DatasetSpec:
    d = section(data, f"{src}: dataset")
    check_keys(d, field_names(DatasetSpec), f"{src}: dataset")
    if "name" not in d:
        raise JaqmooError(f"{src}: dataset.name is required; choose one of: {', '.join(DATASETS)}")
    name = choice(d["name"], "dataset.name", DATASETS, src)
    root = optional_path(d.get("root"), "dataset.root", src)
    if name == "imagefolder" and root is None:
        raise JaqmooError(f"{src}: dataset.root is required for imagefolder (a folder with train/ and val/)")
    size = int_range(d.get("input_size", 224), "dataset.input_size", 8, 1024, src)
    split_seed = int_range(d.get("split_seed", 0), "dataset.split_seed", 0, 2**31 - 1, src)
    return DatasetSpec(name=name, root=root, input_size=size, split_seed=split_seed)


def _timeloop_accelerator(d: dict, src: str, base_dir: str | Path) -> AcceleratorSpec:
    """``accelerator: {timeloop: PATH}``: fixed hardware read from a Timeloop input (PATH relative
    to the spec's folder)."""
    if d.get("template") is not None:
        raise JaqmooError(f"{src}: accelerator: give template (a parameterised design) or timeloop (a Timeloop "
                          "architecture folder or file), not both")
    for key in ("search", "fixed"):
        if d.get(key) not in (None, [], {}):
            raise JaqmooError(f"{src}: accelerator.{key}: a Timeloop architecture (accelerator.timeloop) is fixed "
                              "hardware with no parameters to fix or search; remove accelerator."
                              f"{key}, or use a template (eyeriss, simba...) to search hardware")
    raw = d["timeloop"]
    if not isinstance(raw, str) or not raw.strip():
        raise JaqmooError(f"{src}: accelerator.timeloop: expected the path of a Timeloop architecture folder or "
                          f"YAML file, got {shown(raw)}")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    if not path.exists():
        raise JaqmooError(f"{src}: accelerator.timeloop: {path} does not exist (relative paths are read from the "
                          "spec file's folder); give a Timeloop architecture folder or YAML file")
    return AcceleratorSpec(None, timeloop=str(path.resolve()))


def _accelerator(data: Any, src: str, base_dir: str | Path = ".") -> AcceleratorSpec:
    d = section(data, f"{src}: accelerator")
    check_keys(d, ["template", "fixed", "search", "timeloop"], f"{src}: accelerator")
    if d.get("timeloop") is not None:
        return _timeloop_accelerator(d, src, base_dir)
    if d.get("template") is None:
        raise JaqmooError(f"{src}: accelerator.template (e.g. eyeriss or simba) or accelerator.timeloop (a Timeloop "
                          "architecture folder or file) is required")
    template = typed(d["template"], str, f"{src}: accelerator.template")
    fixed = section(d.get("fixed"), f"{src}: accelerator.fixed")
    fixed_items = []
    for k, v in fixed.items():
        fixed_items.append((str(k), typed(v, int, f"{src}: accelerator.fixed.{k}")))
    search = d.get("search", [])
    search_all = False
    items: list[tuple[str, tuple[int, ...]]] = []
    if search == "all":
        search_all = True
    elif isinstance(search, list):
        for i, k in enumerate(search):
            items.append((typed(k, str, f"{src}: accelerator.search[{i}]"), ()))
    elif isinstance(search, dict):
        for k, v in search.items():
            if v is None:
                items.append((str(k), ()))
                continue
            if not isinstance(v, list) or not v:
                raise JaqmooError(f"{src}: accelerator.search.{k}: expected a non-empty list of values (or null for all)")
            items.append((str(k), tuple(typed(x, int, f"{src}: accelerator.search.{k}") for x in v)))
    elif search is not None:
        raise JaqmooError(f"{src}: accelerator.search: expected a list of parameter names, a mapping name -> values, or 'all'")
    clash = {k for k, _ in items} & {k for k, _ in fixed_items}
    if clash:
        raise JaqmooError(f"{src}: accelerator: {sorted(clash)} are both fixed and searched; keep each in one place")
    return AcceleratorSpec(template, tuple(fixed_items), tuple(items), search_all)


def _quantization(data: Any, src: str) -> QuantizationSpec:
    d = section(data, f"{src}: quantization")
    check_keys(d, field_names(QuantizationSpec), f"{src}: quantization")
    fixed = section(d.get("fixed_layers"), f"{src}: quantization.fixed_layers")
    return QuantizationSpec(
        weight_bits=bits_list(d["weight_bits"], "quantization.weight_bits", src) if "weight_bits" in d else SUPPORTED_BITS,
        act_bits=bits_list(d["act_bits"], "quantization.act_bits", src) if "act_bits" in d else SUPPORTED_BITS,
        fixed_layers=tuple((str(k), bits_pair(v, f"quantization.fixed_layers.{k}", src)) for k, v in fixed.items()),
        accumulator_bits=_accumulator_bits(d.get("accumulator_bits"), src),
    )


def _accumulator_bits(value: Any, src: str) -> int | None:
    """``quantization.accumulator_bits``: None, or an integer width in 1..64."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise JaqmooError(f"{src}: quantization.accumulator_bits must be an integer in 1..64 (the partial-sum "
                          f"width, e.g. 16 or 24; omit it for the template's psum width), got {shown(value)}")
    return value


def _mapping(data: Any, src: str) -> MappingSpec:
    d = section(data, f"{src}: mapping")
    check_keys(d, field_names(MappingSpec), f"{src}: mapping")
    return MappingSpec(
        mode=choice(d.get("mode", "inner"), "mapping.mode", MAPPING_MODES, src),
        metric=choice(d.get("metric", "energy"), "mapping.metric", MAPPING_METRICS, src),
        candidates=int_range(d.get("candidates", 16), "mapping.candidates", 1, 4096, src),
        cache_dir=_cache_dir(d.get("cache_dir"), src),
    )


def _cache_dir(value: Any, src: str) -> str | bool | None:
    """``mapping.cache_dir``: a folder, false (no cache) or unset (the default folder)."""
    if value is None or value is False:
        return value
    if isinstance(value, str) and value.strip():
        return value
    raise JaqmooError(f"{src}: mapping.cache_dir must be a folder path (shared by runs that warm up the same "
                      f"layers on the same hardware), false to turn the cache off, or left out for the run "
                      f"folder's mapper-cache; got {shown(value)}")


def _accuracy(data: Any, src: str) -> AccuracySpec:
    d = section(data, f"{src}: accuracy")
    check_keys(d, field_names(AccuracySpec), f"{src}: accuracy")
    train = section(d.get("train"), f"{src}: accuracy.train")
    rescore = d.get("rescore_front", True)
    return AccuracySpec(
        estimator=choice(d.get("estimator", "supernet"), "accuracy.estimator", ESTIMATORS, src),
        checkpoint=optional_path(d.get("checkpoint"), "accuracy.checkpoint", src),
        cache_dir=optional_path(d.get("cache_dir"), "accuracy.cache_dir", src),
        train=tuple(sorted((str(k), v) for k, v in train.items())),
        val_images=int_range(d.get("val_images", 500), "accuracy.val_images", 10, None, src),
        predictor_samples=int_range(d.get("predictor_samples", 200), "accuracy.predictor_samples", 8, None, src),
        rescore_front=typed(rescore, bool, f"{src}: accuracy.rescore_front"),
    )


def _objectives(data: Any, src: str) -> tuple[str, ...]:
    if data is None:
        return ("accuracy", "energy")
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list) or not data:
        raise JaqmooError(f"{src}: objectives: expected a non-empty list such as [accuracy, energy, memory]")
    out = tuple(choice(o, f"objectives[{i}]", OBJECTIVE_NAMES, src) for i, o in enumerate(data))
    if len(set(out)) != len(out):
        raise JaqmooError(f"{src}: objectives: {list(out)} lists an objective twice")
    return out


def _constraints(data: Any, src: str) -> ConstraintSpec:
    d = section(data, f"{src}: constraints")
    check_keys(d, field_names(ConstraintSpec), f"{src}: constraints")

    def opt(key: str, lo: float, hi: float | None, lo_open: bool) -> float | None:
        v = d.get(key)
        return None if v is None else float_range(v, f"constraints.{key}", lo, hi, src, lo_open)

    c = ConstraintSpec(
        min_accuracy=opt("min_accuracy", 0.0, 1.0, False),
        max_accuracy_drop=opt("max_accuracy_drop", 0.0, 1.0, False),
        max_area_mm2=opt("max_area_mm2", 0.0, None, True),
    )
    return c


def _check_population(s: SearchSpec, src: str) -> None:
    if s.population < len(s.seed_bits):
        raise JaqmooError(
            f"{src}: search.population ({s.population}) is smaller than the {len(s.seed_bits)} seed policies "
            f"{list(s.seed_bits)}; raise the population or shorten search.seed_bits"
        )


def _budgets(value: Any, src: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise JaqmooError(f"{src}: search.haq_budgets: expected a non-empty list of fractions of the uniform "
                          "8-bit cost such as [0.4, 0.6, 0.8]")
    out = tuple(float_range(v, f"search.haq_budgets[{i}]", 0.0, 1.0, src, lo_open=True) for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise JaqmooError(f"{src}: search.haq_budgets: {list(value)} lists a budget twice")
    return tuple(sorted(out))


def _search(data: Any, src: str) -> SearchSpec:
    d = section(data, f"{src}: search")
    check_keys(d, field_names(SearchSpec), f"{src}: search")
    seeds = d.get("seed_bits", [8, 6, 4])
    if not isinstance(seeds, list):
        raise JaqmooError(f"{src}: search.seed_bits: expected a list of uniform bit-widths such as [8, 6, 4]")
    s = SearchSpec(
        algorithm=choice(d.get("algorithm", "nsga2"), "search.algorithm", ALGORITHMS + BASELINE_ALGORITHMS, src),
        population=int_range(d.get("population", 32), "search.population", 4, MAX_POPULATION, src),
        generations=int_range(d.get("generations", 20), "search.generations", 1, MAX_GENERATIONS, src),
        seed_bits=tuple(int_range(b, f"search.seed_bits[{i}]", 2, 8, src) for i, b in enumerate(seeds)),
        batch_size=int_range(d.get("batch_size", 16), "search.batch_size", 1, None, src),
        init=choice(d.get("init", "own"), "search.init", INITS, src),
        haq_resource=choice(d.get("haq_resource", "energy"), "search.haq_resource", HAQ_RESOURCES, src),
        haq_budgets=_budgets(d.get("haq_budgets", list(SearchSpec.haq_budgets)), src),
    )
    _check_population(s, src)
    return s


TOP_KEYS = ["name", "seed", "model", "dataset", "accelerator", "quantization", "mapping", "accuracy",
            "objectives", "constraints", "search", "output"]


def parse_spec(data: Any, source: str = "<dict>", base_dir: str | Path = ".") -> ExperimentSpec:
    """Validate a parsed YAML document and return an :class:`ExperimentSpec`."""
    src = source
    d = section(data, src)
    check_keys(d, TOP_KEYS, src)
    for required in ("model", "dataset", "accelerator"):
        if required not in d:
            raise JaqmooError(f"{src}: the '{required}' section is required")
    out = section(d.get("output"), f"{src}: output")
    check_keys(out, ["dir"], f"{src}: output")
    default_name = Path(source).stem if source not in ("<dict>", "") else "experiment"
    spec = ExperimentSpec(
        name=str(typed(d.get("name", default_name), str, f"{src}: name")),
        model=_model(d["model"], src),
        dataset=_dataset(d["dataset"], src),
        accelerator=_accelerator(d["accelerator"], src, base_dir),
        quantization=_quantization(d.get("quantization"), src),
        mapping=_mapping(d.get("mapping"), src),
        accuracy=_accuracy(d.get("accuracy"), src),
        objectives=_objectives(d.get("objectives"), src),
        constraints=_constraints(d.get("constraints"), src),
        search=_search(d.get("search"), src),
        seed=int_range(d.get("seed", 0), "seed", 0, 2**32 - 1, src),
        output_dir=optional_path(out.get("dir"), "output.dir", src),
        source=src,
        base_dir=str(base_dir),
    )
    _cross_checks(spec)
    return spec


def _cross_checks(spec: ExperimentSpec) -> None:
    src = spec.source
    objs = spec.objectives
    if len(objs) == 1 and spec.search.algorithm not in ("nsga2",) + BASELINE_ALGORITHMS:
        raise JaqmooError(f"{src}: search.algorithm {spec.search.algorithm} needs >= 2 objectives; add one to 'objectives'")
    for b in spec.search.seed_bits:
        if b not in spec.quantization.weight_bits or b not in spec.quantization.act_bits:
            raise JaqmooError(
                f"{src}: search.seed_bits: the uniform {b}-bit seed is not in quantization.weight_bits "
                f"{list(spec.quantization.weight_bits)} / act_bits {list(spec.quantization.act_bits)}; add it or drop the seed"
            )
    if spec.accuracy.checkpoint is not None and spec.accuracy.cache_dir is not None:
        raise JaqmooError(f"{src}: accuracy: give checkpoint (one file) or cache_dir (a folder of hash-named "
                          "supernets), not both")
    if spec.accuracy.estimator == "predictor" and spec.accuracy.predictor_samples < 8:
        raise JaqmooError(f"{src}: accuracy.predictor_samples must be >= 8 to fit a predictor")
    c = spec.constraints
    if c.min_accuracy is not None and c.max_accuracy_drop is not None:
        raise JaqmooError(f"{src}: constraints: give min_accuracy or max_accuracy_drop, not both")
    if spec.model.elastic is not None:
        _elastic_cross_checks(spec)
    if "area" in objs and not (spec.accelerator.search or spec.accelerator.search_all):
        raise JaqmooError(
            f"{src}: objectives: 'area' cannot change when no hardware parameter is searched; "
            "add parameters to accelerator.search or drop the objective"
        )


def _elastic_cross_checks(spec: ExperimentSpec) -> None:
    """What an elastic (architecture) search cannot combine with."""
    src = spec.source
    if spec.mapping.mode != "inner":
        raise JaqmooError(f"{src}: mapping.mode: 'outer' mapping genes index per-layer candidate lists, which change "
                          "with the architecture; use mapping.mode: inner with model.elastic")
    if spec.search.algorithm in BASELINE_ALGORITHMS:
        raise JaqmooError(f"{src}: search.algorithm: {spec.search.algorithm} searches a fixed network's bits; with "
                          f"model.elastic choose one of: {', '.join(ALGORITHMS)}")
    seeds = 2 * len(spec.search.seed_bits)  # the largest and the smallest architecture at each seed bit-width
    if spec.search.population < seeds:
        raise JaqmooError(f"{src}: search.population ({spec.search.population}) is smaller than the {seeds} seeds of "
                          f"an elastic search (largest and smallest architecture at each of {list(spec.search.seed_bits)} "
                          "bits); raise the population or shorten search.seed_bits")


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a spec file (relative paths inside resolve against the working directory,
    but for ``accelerator.timeloop``, read from the spec file's folder)."""
    path = Path(path)
    if path.is_dir():
        raise JaqmooError(f"experiment spec {path} is a folder; give a spec file such as problems/quickstart.yaml")
    if not path.is_file():
        hint = ""
        folder = path.parent if str(path.parent) else Path(".")
        if folder.is_dir():
            names = [p.name for p in folder.glob("*.yaml")]
            close = difflib.get_close_matches(path.name, names, n=1)
            hint = f"; did you mean {str(folder / close[0])!r}?" if close else ""
        raise JaqmooError(f"experiment spec {path} does not exist{hint}")
    data = load_yaml_text(read_utf8(path, "a YAML experiment spec"), str(path))
    return parse_spec(data, source=str(path), base_dir=path.parent)


def coerce_spec(spec_or_path: ExperimentSpec | str | Path | Mapping) -> ExperimentSpec:
    """Accept a spec object, a path to a YAML file or an already-parsed mapping."""
    if isinstance(spec_or_path, ExperimentSpec):
        return spec_or_path
    if isinstance(spec_or_path, Mapping):
        return parse_spec(dict(spec_or_path))
    return load_spec(spec_or_path)

