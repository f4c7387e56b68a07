"""A spec -> everything a search needs before any training: :func:`prepare_experiment`.

Everything that can be wrong with a spec fails here, before any training or search: the spec
itself (:mod:`jaqmoo.experiment.spec`), the hardware template and its parameters, the fixed
layers, the area budget against the smallest hardware the search can reach, the paths; then
the dataset is loaded and the model strategy (:mod:`jaqmoo.experiment.strategy`) builds the
network and workload the bits genome describes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError, did_you_mean
from jaqmoo.experiment.accuracy import check_train_options
from jaqmoo.experiment.spec import ExperimentSpec, coerce_spec
from jaqmoo.experiment.strategy import ElasticModel, FixedModel, model_strategy
from jaqmoo.search.baselines import searcher_space
from jaqmoo.search.genome import GenomeSpace, HardwareGene
from jaqmoo.strict import contained_path
from jaqmoo.workload import Workload, quantizable_layers


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
    #: the model strategy: a fixed network, or the elastic space of ``model.elastic`` (then
    #: ``workload`` and ``layer_names`` are its largest sub-network's)
    model: FixedModel | ElasticModel

    @property
    def elastic(self) -> Any:
        """The architecture space of ``model.elastic`` (None: a fixed network)."""
        return self.model.space

    def search_space(self, extra_fixed: dict[int, tuple[int, int]] | None = None) -> Any:
        """The genome the search evolves: :meth:`genome_space`, with architecture genes in
        front of it for an elastic search (:class:`~jaqmoo.search.arch_genes.ArchGenomeSpace`)."""
        return self.model.search_space(searcher_space(self.spec.search.algorithm, self.genome_space(extra_fixed)),
                                       self.splits)

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


def _hardware(spec: ExperimentSpec) -> tuple[Any, tuple[HardwareGene, ...], dict[str, int]]:
    from jaqmoo.hardware.templates import TEMPLATES, get_template

    src = spec.source
    acc = spec.accelerator
    if acc.timeloop is not None:  # fixed hardware read from a Timeloop input (no genes)
        from jaqmoo.timeloop.design import load_design

        return load_design(acc.timeloop, f"{src}: accelerator.timeloop"), (), {}
    if acc.template not in TEMPLATES:
        raise JaqmooError(f"{src}: accelerator.template: unknown template {acc.template!r}; "
                          f"{did_you_mean(acc.template, list(TEMPLATES))}choose one of: {', '.join(TEMPLATES)}")
    template = get_template(acc.template)
    names = list(template.param_names)
    fixed: dict[str, int] = {}
    for name, value in acc.fixed:
        if name not in names:
            raise JaqmooError(f"{src}: accelerator.fixed.{name}: {acc.template} has no parameter {name!r}; "
                              f"{did_you_mean(name, names)}its parameters: {', '.join(names)}")
        fixed[name] = template.param(name).check(value, False, acc.template)
    searched = [(p.name, ()) for p in template.searchable_params if p.name not in fixed] if acc.search_all else list(acc.search)
    genes = []
    for name, values in searched:
        if name not in names:
            raise JaqmooError(f"{src}: accelerator.search: {acc.template} has no parameter {name!r}; "
                              f"{did_you_mean(name, names)}its parameters: {', '.join(names)}")
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
                f"{did_you_mean(key, list(layer_names))}use 'first', 'last' or one of {list(layer_names)[:6]}..."
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

    spec = coerce_spec(spec_or_path).with_overrides(generations, population)
    template, genes, fixed = _hardware(spec)
    if spec.model.checkpoint is not None and not Path(spec.model.checkpoint).expanduser().is_file():
        state = "is a folder" if Path(spec.model.checkpoint).expanduser().is_dir() else "does not exist"
        raise JaqmooError(f"{spec.source}: model.checkpoint {spec.model.checkpoint} {state}; "
                          "give the path of a pretrained state_dict file or remove the key")
    splits = load_dataset(spec.dataset.name, root=spec.dataset.root, seed=spec.dataset.split_seed, input_size=spec.dataset.input_size)
    strategy = model_strategy(spec)
    model, workload = strategy.network(splits)  # elastic: the largest sub-network (the supernet's layers)
    layer_names = tuple(n for n, _ in quantizable_layers(model))
    if [layer.name for layer in workload.layers] != list(layer_names):
        raise JaqmooError(f"model {spec.model.name}: its workload layers do not line up with its quantizable layers")
    fixed_layers = _fixed_layers(spec, layer_names)
    check_train_options(spec)
    _check_area_budget(spec, template, genes, fixed)
    out_dir = Path(out) if out is not None else default_out_dir(spec)
    check_paths(spec, out_dir)
    return Prepared(spec, out_dir, splits, workload, layer_names, template, genes, fixed, fixed_layers, strategy)


