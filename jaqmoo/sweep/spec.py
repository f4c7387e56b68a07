"""Sweep specs (``problems/sweep-*.yaml``): a base experiment plus axes -> named runs.

Example (``problems/sweep-quick.yaml``)::

    name: sweep-quick
    base: quickstart.yaml              # a spec file (relative to this file) or an inline mapping
    axes:                              # the cross product of every axis
      model: [simple_cnn, mobilenet_v1]            # shorthand for model.name
      accelerator: [eyeriss, simba]                # shorthand for accelerator.template; a
                                                 # Timeloop folder: {timeloop: path/to/folder}
      seed: [0, 1]
      search.population: [16, 32]                  # any dotted key of the experiment spec
    # combinations: [{model: simple_cnn, accelerator: eyeriss}, ...]   # instead of the product
    set: {search.generations: 5}       # dotted keys applied to every run
    grid: {rows: model, cols: accelerator}
    accuracy_tolerance: 0.005          # best energy within 0.5 points of uniform 8-bit
    output: {dir: runs/sweep-quick}

Every run is validated as an ordinary experiment spec (``jaqmoo.experiment.spec``) during the
expansion, before anything runs. Runs that need the same supernet (same model, dataset,
training recipe and bits; not the seed, as for ``jaqmoo run``'s supernet identity: the first
run's seed trains it) share one supernet task; its checkpoint is ``accuracy.checkpoint`` of the base formatted with ``{model}``,
``{dataset}``, ``{seed}``, ``{width_mult}`` (an unformatted path shared by different
supernets is an error), else a file named by the supernet's identity hash in
``accuracy.cache_dir`` (shared with ``jaqmoo run`` of the same settings), else
``<sweep dir>/supernets/<key>.pt``.

Runs share their mapper warm-up (BatchTile tile sets per layer shape and hardware space,
:mod:`jaqmoo.mapping.cache`) through ``mapping.cache_dir``, by default
``<sweep dir>/mapper-cache``. The ``accelerator`` axis takes template names and Timeloop
architectures (``{timeloop: path}``, relative to the file that names it).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError, did_you_mean
from jaqmoo.experiment.fields import check_keys
from jaqmoo.experiment.spec import TOP_KEYS, ExperimentSpec, parse_spec
from jaqmoo.strict import contained_path, load_yaml_file, shown

#: axis shorthands -> dotted experiment-spec keys
SHORTHANDS: dict[str, str] = {"model": "model.name", "accelerator": "accelerator.template",
                              "dataset": "dataset.name"}
SWEEP_KEYS = ["name", "base", "axes", "combinations", "set", "grid", "accuracy_tolerance", "supernets", "output"]
DEFAULT_TOLERANCE = 0.005
SUPERNET_FIELDS = ("model", "dataset", "seed", "width_mult")


@dataclass(frozen=True)
class RunPlan:
    """One run of a sweep: its name, axis values, raw spec mapping and supernet key."""

    name: str
    values: dict[str, Any]
    spec: dict
    supernet: str

    def parsed(self, source: str) -> ExperimentSpec:
        """The validated experiment spec of this run."""
        return parse_spec(copy.deepcopy(self.spec), source=f"{source} [run {self.name}]")


@dataclass(frozen=True)
class SweepPlan:
    """An expanded sweep: runs in order, supernet checkpoints by key, presentation settings."""

    name: str
    source: str
    axes: tuple[str, ...]
    runs: tuple[RunPlan, ...]
    supernets: dict[str, str]
    grid: dict[str, str | None]
    accuracy_tolerance: float
    output_dir: str | None = None
    supernet_specs: dict[str, dict] = field(default_factory=dict)

    def run(self, name: str) -> RunPlan:
        for r in self.runs:
            if r.name == name:
                return r
        raise JaqmooError(f"sweep {self.name}: no run called {name!r}")

    def to_dict(self) -> dict:
        """The ``sweep.json`` form (see /work/notes/issue-10-layout.md)."""
        return {"name": self.name, "source": self.source, "axes": list(self.axes), "grid": dict(self.grid),
                "accuracy_tolerance": self.accuracy_tolerance,
                "runs": [{"name": r.name, "values": r.values, "supernet": r.supernet, "spec": r.spec}
                         for r in self.runs],
                "supernets": dict(self.supernets)}

    def describe(self) -> str:
        """The ``--dry-run`` listing: one line per run, then the shared supernets."""
        width = max((len(r.name) for r in self.runs), default=4)
        lines = [f"sweep {self.name}: {len(self.runs)} runs, {len(self.supernets)} supernet(s)"]
        for i, r in enumerate(self.runs, 1):
            vals = ", ".join(f"{k}={axis_label(v)}" for k, v in r.values.items())
            lines.append(f"  {i:3d}. {r.name:<{width}}  {vals}  supernet {r.supernet}")
        lines.append("supernets (trained once, shared by the runs above):")
        for key, path in self.supernets.items():
            users = sum(r.supernet == key for r in self.runs)
            lines.append(f"  {key}: {path} ({users} run{'s' if users != 1 else ''})")
        caches = [c for c in dict.fromkeys((r.spec.get("mapping") or {}).get("cache_dir") for r in self.runs) if c]
        if caches:
            lines.append("mapper warm-up cache (shared by runs on the same layers and hardware space): " + ", ".join(caches))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers


def _timeloop_name(value: Any) -> str | None:
    """``timeloop:<name>`` of an ``accelerator`` axis value ``{timeloop: PATH}``; None for others."""
    if isinstance(value, dict) and isinstance(value.get("timeloop"), str):
        from jaqmoo.timeloop.design import design_name

        return f"timeloop:{design_name(value['timeloop'])}"
    return None


def _anchored(key: str, value: Any, folder: Path | None) -> Any:
    """``value`` for dotted ``key`` with a relative ``accelerator.timeloop`` path made absolute
    against ``folder`` (the file the value was written in)."""
    key = SHORTHANDS.get(key, key)
    if folder is None:
        return value
    if key == "accelerator.timeloop" and isinstance(value, str):
        return str((folder / Path(value).expanduser()).resolve())
    if key in ("accelerator.template", "accelerator") and _timeloop_name(value) is not None:
        return {**value, "timeloop": _anchored("accelerator.timeloop", value["timeloop"], folder)}
    return value


def axis_label(value: Any) -> Any:
    """An axis value as a table cell or title: lists space-joined, a mapping with a name or
    template as ``"name key=value ..."`` (a Timeloop architecture as ``timeloop:<folder name>``,
    other mappings as compact JSON), scalars as they are."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        head = value.get("name", value.get("template", _timeloop_name(value)))
        if head is None:
            return json.dumps(value, sort_keys=True)
        rest = " ".join(f"{k}={axis_label(v)}" for k, v in sorted(value.items())
                        if k not in ("name", "template", "timeloop"))
        return f"{head} {rest}".strip()
    return value


def _label(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ".".join(_label(v) for v in value)
    if isinstance(value, dict):
        return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:6]
    return str(value)


def _run_name(values: dict[str, Any]) -> str:
    parts = []
    for axis, v in values.items():
        if axis == "seed":
            parts.append(f"s{v}")
        elif axis in SHORTHANDS:
            tl = _timeloop_name(v)
            parts.append(tl.split(":", 1)[1] if tl else
                         _label(v if not isinstance(v, dict) else v.get("template", v.get("name", v))))
        else:
            parts.append(f"{axis.rsplit('.', 1)[-1]}={_label(v)}")
    name = re.sub(r"[^A-Za-z0-9_.=+-]", "_", "-".join(parts) or "run")
    return name if name.strip(".") else name.replace(".", "_")  # one plain folder name, never '.' or '..'


def set_dotted(data: dict, key: str, value: Any, where: str) -> None:
    """``data[a][b] = value`` for ``key == "a.b"``; the top key must be an experiment-spec key."""
    key = SHORTHANDS.get(key, key)
    parts = key.split(".")
    if parts[0] not in TOP_KEYS:
        raise JaqmooError(f"{where}: {key!r} is not an experiment spec key; {did_you_mean(parts[0], TOP_KEYS)}"
                          f"use a dotted key under one of: {', '.join(TOP_KEYS)} (or model / accelerator / dataset)")
    node = data
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise JaqmooError(f"{where}: cannot set {key!r}: {p!r} holds {shown(child)}, not a mapping")
        node = child
    last = parts[-1]
    if key == "accelerator.template":  # a template replaces a Timeloop architecture of the base
        node.pop("timeloop", None)
    if isinstance(value, dict) and key in SHORTHANDS.values():
        # a whole section given for a shorthand axis (e.g. accelerator: {template: simba, fixed: {...}})
        section = parts[0]
        data[section] = copy.deepcopy(value)
        return
    node[last] = copy.deepcopy(value)


def _load_base(base: Any, sweep_path: Path | None, src: str) -> dict:
    if isinstance(base, dict):
        base = copy.deepcopy(base)
        if "accelerator" in base:
            base["accelerator"] = _anchored("accelerator", base["accelerator"], sweep_path.parent if sweep_path else None)
        return base
    if not isinstance(base, str):
        raise JaqmooError(f"{src}: base: expected an experiment spec path or an inline mapping, got {shown(base)}")
    candidates = [Path(base)]
    if sweep_path is not None:
        candidates.insert(0, sweep_path.parent / base)
    for path in candidates:
        if path.is_file():
            data = load_yaml_file(path, "a YAML experiment spec")
            if not isinstance(data, dict):
                raise JaqmooError(f"{path}: expected an experiment spec mapping")
            if "accelerator" in data:  # its Timeloop path is relative to the base file
                data["accelerator"] = _anchored("accelerator", data["accelerator"], path.parent)
            return data
    raise JaqmooError(f"{src}: base: experiment spec {base!r} not found (looked next to the sweep file "
                      "and in the working directory)")


def _combinations(d: dict, src: str) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    axes = d.get("axes")
    combos = d.get("combinations")
    if axes is None and combos is None:
        raise JaqmooError(f"{src}: give 'axes' (a mapping axis -> list of values) or 'combinations' "
                          "(a list of mappings axis -> value)")
    if axes is not None and combos is not None:
        raise JaqmooError(f"{src}: give 'axes' or 'combinations', not both")
    if axes is not None:
        if not isinstance(axes, dict) or not axes:
            raise JaqmooError(f"{src}: axes: expected a mapping such as {{model: [a, b], seed: [0, 1]}}")
        for k, v in axes.items():
            if not isinstance(v, list) or not v:
                raise JaqmooError(f"{src}: axes.{k}: expected a non-empty list of values")
        names = tuple(str(k) for k in axes)
        return names, [dict(zip(names, vals, strict=True)) for vals in itertools.product(*axes.values())]
    if not isinstance(combos, list) or not combos or not all(isinstance(c, dict) and c for c in combos):
        raise JaqmooError(f"{src}: combinations: expected a non-empty list of mappings axis -> value")
    names = tuple(dict.fromkeys(str(k) for c in combos for k in c))
    return names, [{str(k): v for k, v in c.items()} for c in combos]


def supernet_key(spec: ExperimentSpec) -> tuple[str, dict]:
    """Key and recipe of the supernet ``spec`` needs (runs with equal keys share it)."""
    from jaqmoo.experiment.accuracy import first_last_bits, supernet_bits

    recipe = {"model": [spec.model.name, spec.model.width_mult, spec.model.checkpoint],
              "dataset": [spec.dataset.name, spec.dataset.root, spec.dataset.input_size],
              "train": [[k, v] for k, v in spec.accuracy.train], "bits": list(supernet_bits(spec)),
              "first_last": first_last_bits(spec)}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{spec.model.name}-{spec.dataset.name}-{digest}", recipe


def _checkpoint_path(template: str | None, spec: ExperimentSpec, key: str, supernet_dir: str) -> str:
    if template is None:
        return str(Path(supernet_dir) / f"{key}.pt")
    fields = {"model": spec.model.name, "dataset": spec.dataset.name, "seed": spec.seed,
              "width_mult": spec.model.width_mult}
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise JaqmooError(f"accuracy.checkpoint {template!r}: unknown placeholder {exc}; use "
                          f"{', '.join('{' + f + '}' for f in SUPERNET_FIELDS)}") from None


# ----------------------------------------------------------------------------- expansion


def expand_sweep(data: Any, source: str = "<sweep>", sweep_path: Path | None = None,
                 out_dir: str | Path | None = None) -> SweepPlan:
    """Validate a sweep mapping and expand it into runs (every run spec validated)."""
    from jaqmoo.experiment import validate_hardware

    src = source
    if not isinstance(data, dict):
        raise JaqmooError(f"{src}: expected a sweep mapping with 'base' and 'axes'")
    check_keys(data, SWEEP_KEYS, src)
    if "base" not in data:
        raise JaqmooError(f"{src}: 'base' is required: an experiment spec path (e.g. quickstart.yaml) or mapping")
    base = _load_base(data["base"], sweep_path, src)
    here = sweep_path.parent if sweep_path is not None else None
    for k, v in (data.get("set") or {}).items():
        set_dotted(base, str(k), _anchored(str(k), v, here), f"{src}: set")
    axes, combos = _combinations(data, src)
    output = data.get("output") or {}
    if not isinstance(output, dict):
        raise JaqmooError(f"{src}: output: expected a mapping such as {{dir: runs/my-sweep}}")
    check_keys(output, ["dir"], f"{src}: output")
    name = str(data.get("name") or (sweep_path.stem if sweep_path else "sweep"))
    if out_dir is None:  # `jaqmoo run`'s rule: without --out nothing leaves runs/ or output.dir's folder
        if output.get("dir"):
            contained_path(str(output["dir"]), f"{src}: output.dir", absolute_ok=True,
                           fix="give a path without '..', or pass --out DIR on the command line to write elsewhere")
        else:
            contained_path(name, f"{src}: name", absolute_ok=False, leaving="the run outside runs/", fix=(
                "it becomes the folder runs/<name>: use a plain name, set output.dir, or pass --out DIR"))
    out = str(out_dir or output.get("dir") or Path("runs") / name)
    supernet_dir = str(data.get("supernets") or Path(out) / "supernets")
    for section in ("accuracy", "mapping"):  # read below before each run's spec is validated
        if base.get(section) is not None and not isinstance(base[section], dict):
            raise JaqmooError(f"{src}: base {section}: expected a mapping of keys, got {shown(base[section])}")
    ckpt_template = (base.get("accuracy") or {}).get("checkpoint")
    if ckpt_template is not None and not isinstance(ckpt_template, str):
        raise JaqmooError(f"{src}: base accuracy.checkpoint: expected a file path, got {shown(ckpt_template)}")
    runs: list[RunPlan] = []
    supernets: dict[str, str] = {}
    supernet_specs: dict[str, dict] = {}
    by_path: dict[str, str] = {}
    for values in combos:
        run_name = _run_name(values)
        spec_data = copy.deepcopy(base)
        for axis, value in values.items():
            set_dotted(spec_data, axis, _anchored(axis, value, here), f"{src}: axes.{axis}")
        spec_data["name"] = f"{name}-{run_name}"
        spec_data.pop("output", None)
        if spec_data.get("mapping") is None:
            spec_data["mapping"] = {}
        mapping = spec_data["mapping"]
        if not isinstance(mapping, dict):
            raise JaqmooError(f"{src}: run {run_name}: mapping: expected a mapping of keys, got {shown(mapping)}")
        if "cache_dir" not in mapping:  # runs on the same hardware space share their mapper warm-up
            mapping["cache_dir"] = str(Path(out) / "mapper-cache")
        spec = parse_spec(copy.deepcopy(spec_data), source=f"{src} [run {run_name}]")
        validate_hardware(spec)
        key, _ = supernet_key(spec)
        if spec.accuracy.cache_dir is not None and ckpt_template is None:
            # accuracy.cache_dir: the file is named by the supernet's identity hash at run time
            supernets[key] = f"{spec.accuracy.cache_dir}/{spec.model.name}-{spec.dataset.name}-<identity hash>.pt"
        else:
            path = _checkpoint_path(ckpt_template, spec, key, supernet_dir)
            if by_path.setdefault(path, key) != key:
                raise JaqmooError(f"{src}: base accuracy.checkpoint {ckpt_template!r} would be shared by different "
                                  f"supernets ({by_path[path]} and {key}); put {{model}} / {{seed}} in it, use "
                                  "accuracy.cache_dir, or remove it to keep them in the sweep folder")
            if ckpt_template is not None:  # one task per file (a {seed} placeholder: one per seed)
                key = Path(path).stem
            spec_data.setdefault("accuracy", {})["checkpoint"] = path
            supernets[key] = path
        supernet_specs.setdefault(key, spec_data)
        if any(r.name == run_name for r in runs):
            raise JaqmooError(f"{src}: two combinations give the same run {run_name!r}; make them differ")
        runs.append(RunPlan(run_name, dict(values), spec_data, key))
    grid = _grid(data.get("grid"), axes, src)
    tol = data.get("accuracy_tolerance", DEFAULT_TOLERANCE)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol <= 1 or tol != tol:
        raise JaqmooError(f"{src}: accuracy_tolerance: expected a fraction in 0..1 (0.005 = half a point), got {shown(tol)}")
    return SweepPlan(name, src, axes, tuple(runs), supernets, grid, float(tol), out, supernet_specs)


def _grid(data: Any, axes: tuple[str, ...], src: str) -> dict[str, str | None]:
    default_rows = "model" if "model" in axes else (axes[0] if axes else None)
    rest = [a for a in axes if a != default_rows]
    default_cols = "accelerator" if "accelerator" in rest else (rest[0] if rest else None)
    grid = {"rows": default_rows, "cols": default_cols}
    if data is None:
        return grid
    if not isinstance(data, dict):
        raise JaqmooError(f"{src}: grid: expected a mapping such as {{rows: model, cols: accelerator}}")
    check_keys(data, ["rows", "cols"], f"{src}: grid")
    for k, v in data.items():
        if v is not None and v not in axes:
            raise JaqmooError(f"{src}: grid.{k}: {shown(v)} is not an axis; {did_you_mean(str(v)[:200], list(axes))}axes: {', '.join(axes)}")
        grid[k] = v
    return grid


def load_sweep_spec(path: str | Path, out_dir: str | Path | None = None) -> SweepPlan:
    """Read and expand a sweep spec file."""
    path = Path(path)
    if not path.is_file():
        raise JaqmooError(f"sweep spec {path} does not exist")
    data = load_yaml_file(path, "a YAML sweep spec")
    return expand_sweep(data, source=str(path), sweep_path=path, out_dir=out_dir)
