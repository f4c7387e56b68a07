"""Cost-only sweeps: ``jaqmoo cost`` over models x accelerators x bits, no supernet, no search.

A sweep spec with a ``cost:`` section instead of ``base:`` (``problems/zoo-cost.yaml``)::

    name: zoo-cost
    cost:                                # settings shared by every point (all optional)
      input: 3x224x224                   # CxHxW
      num_classes: 1000
      metric: energy                     # what each layer's mapper minimises: energy, edp, cycles
      set: {technology: 45}              # template parameters of every accelerator
    axes:                                # the cross product of the three axes
      model: [torchvision:resnet50, mobilenet_v2]
      accelerator: [eyeriss, simba]
      bits: [8, 4, 4/8]                  # uniform weight/activation bits (B or WBITS/ABITS)
    output: {dir: runs/zoo-cost}

Each point extracts the model's workload (:func:`jaqmoo.models.model_workload`) and maps every
layer onto the accelerator (:func:`jaqmoo.cost.network_cost`: the mapping searched per layer, as
``jaqmoo cost`` does). Outputs in the sweep folder: ``summary.csv`` (one row per point: layers,
MACs, energy, cycles, latency, EDP, packed memory, the not-costed operations, wall and CPU seconds) and
``layers.csv`` (every layer of every point with its mapping).
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.fields import check_keys
from jaqmoo.strict import contained_path, load_yaml_file, shown

COST_SWEEP_KEYS = ["name", "cost", "axes", "output"]
COST_KEYS = ["input", "num_classes", "metric", "set", "width_mult"]
COST_AXES = ("model", "accelerator", "bits")


@dataclass(frozen=True)
class CostSweepPlan:
    """An expanded cost sweep: its points (model, accelerator, bits) and shared settings."""

    name: str
    source: str
    points: tuple[dict[str, str], ...]
    settings: dict[str, Any] = field(default_factory=dict)
    output_dir: str = "runs/zoo-cost"

    def describe(self) -> str:
        """The ``--dry-run`` listing."""
        lines = [f"cost sweep {self.name}: {len(self.points)} points (input {self.settings['input']}, "
                 f"mapping by {self.settings['metric']})"]
        lines += [f"  {i:3d}. {p['model']} on {p['accelerator']} at {p['bits']} bits" for i, p in enumerate(self.points, 1)]
        return "\n".join(lines)


def is_cost_sweep(data: Any) -> bool:
    """Whether a sweep mapping is a cost-only sweep (it has a ``cost:`` section)."""
    return isinstance(data, dict) and "cost" in data


def _axis(axes: dict, key: str, src: str) -> list[str]:
    values = axes.get(key)
    if isinstance(values, str | int):
        values = [values]
    if not isinstance(values, list) or not values:
        raise JaqmooError(f"{src}: axes.{key}: expected a non-empty list (got {shown(values)})")
    return [str(v) for v in values]


def expand_cost_sweep(data: dict, source: str = "<sweep>", out_dir: str | Path | None = None) -> CostSweepPlan:
    """Validate a cost sweep mapping (models, accelerators, bits, settings) and list its points."""
    from jaqmoo.hardware.templates import load_accelerator_spec
    from jaqmoo.models import check_model_name
    from jaqmoo.quant.policy import parse_bits_spec
    from jaqmoo.workload import parse_input_shape

    src = source
    check_keys(data, COST_SWEEP_KEYS, src)
    cost = data.get("cost") or {}
    if not isinstance(cost, dict):
        raise JaqmooError(f"{src}: cost: expected a mapping of settings such as {{input: 3x224x224}}")
    check_keys(cost, COST_KEYS, f"{src}: cost")
    overrides = cost.get("set") or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                  for v in overrides.values()):
        raise JaqmooError(f"{src}: cost.set: expected template parameters with integer values, e.g. {{technology: 45}}")
    settings = {"input": str(cost.get("input", "3x224x224")), "num_classes": cost.get("num_classes", 1000),
                "metric": str(cost.get("metric", "energy")), "set": {str(k): int(v) for k, v in overrides.items()},
                "width_mult": float(cost.get("width_mult", 1.0))}
    parse_input_shape(settings["input"])
    if settings["metric"] not in ("energy", "edp", "cycles"):
        raise JaqmooError(f"{src}: cost.metric: choose energy, edp or cycles (got {shown(settings['metric'])})")
    if isinstance(settings["num_classes"], bool) or not isinstance(settings["num_classes"], int) \
            or settings["num_classes"] < 1:
        raise JaqmooError(f"{src}: cost.num_classes: expected a positive integer (got {shown(settings['num_classes'])})")
    axes = data.get("axes")
    if not isinstance(axes, dict):
        raise JaqmooError(f"{src}: axes: expected a mapping with {', '.join(COST_AXES)}")
    check_keys(axes, list(COST_AXES), f"{src}: axes")
    models = [check_model_name(m) for m in _axis(axes, "model", src)]
    accelerators = _axis(axes, "accelerator", src)
    for accel in accelerators:
        load_accelerator_spec(accel, **settings["set"])  # an unknown template or parameter fails here
    bits = _axis(axes, "bits", src)
    for b in bits:
        parse_bits_spec(b, f"{src}: axes.bits")
    name = str(data.get("name") or "cost-sweep")
    output = data.get("output") or {}
    if not isinstance(output, dict):
        raise JaqmooError(f"{src}: output: expected a mapping such as {{dir: runs/zoo-cost}}")
    check_keys(output, ["dir"], f"{src}: output")
    if out_dir is None:
        contained_path(str(output.get("dir") or name), f"{src}: output.dir", absolute_ok=True,
                       fix="give a path without '..', or pass --out DIR on the command line to write elsewhere")
    out = str(out_dir or output.get("dir") or Path("runs") / name)
    points = tuple({"model": m, "accelerator": a, "bits": b} for m, a, b in itertools.product(models, accelerators, bits))
    return CostSweepPlan(name, src, points, settings, out)


def load_cost_sweep(path: str | Path, out_dir: str | Path | None = None) -> CostSweepPlan | None:
    """The cost sweep in ``path``, or None when it is an experiment sweep (``base:``)."""
    data = load_yaml_file(path, "a YAML sweep spec")
    return expand_cost_sweep(data, str(path), out_dir) if is_cost_sweep(data) else None


def cost_point(model: str, accelerator: str, bits: str, settings: dict[str, Any],
               threads: int | None = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One point: ``(summary row, per-layer rows)``; a failure is a row with ``status=failed``."""
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import load_accelerator_spec
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.models import model_workload
    from jaqmoo.quant.policy import QuantPolicy, parse_bits_spec
    from jaqmoo.tracing import not_costed_record
    from jaqmoo.workload import parse_input_shape

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    row: dict[str, Any] = {"model": model, "accelerator": accelerator, "bits": bits}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        workload = model_workload(model, parse_input_shape(settings["input"]), int(settings["num_classes"]),
                                  float(settings.get("width_mult", 1.0)))
        t1 = time.perf_counter()
        w, a = parse_bits_spec(bits)
        policy = QuantPolicy.uniform([layer.name for layer in workload.layers], w, a)
        accel = load_accelerator_spec(accelerator, **settings.get("set", {}))
        result = network_cost(workload, accel, policy=policy, metric=settings["metric"],
                              mapper=Mapper(metric=settings["metric"]))
        row.update(status="done", layers=len(workload), macs=workload.macs, energy_uj=result.energy_uj,
                   cycles=result.cycles, latency_s=result.latency_s, edp=result.edp,
                   weight_kib_packed=result.weight_memory_bits / 8192,
                   activation_kib_packed=result.activation_memory_bits / 8192,
                   energy_source=result.energy_source, workload_seconds=t1 - t0,
                   mapping_seconds=time.perf_counter() - t1,
                   not_costed="; ".join(f"{c}: {v['ops']}" for c, v in not_costed_record(workload.not_costed).items()))
        layers = [{"model": model, "accelerator": accelerator, "bits": bits, **r}
                  for r in result.to_dataframe().to_dict("records")]
    except JaqmooError as exc:
        row.update(status="failed", error=str(exc)[:500])
        layers = []
    row["seconds"] = time.perf_counter() - t0
    row["cpu_seconds"] = time.process_time() - c0  # this process's CPU time: what wall time is on an idle core
    return row, layers


def run_cost_sweep(plan: CostSweepPlan, workers: int = 1, threads: int | None = 1) -> tuple[Any, list[Path]]:
    """Cost every point (on ``workers`` processes) and write ``summary.csv`` and ``layers.csv``."""
    import pandas as pd

    from jaqmoo.safe_write import write_csv

    if workers < 1:
        raise JaqmooError(f"--workers must be >= 1 (got {workers})")
    args = [(p["model"], p["accelerator"], p["bits"], plan.settings, threads) for p in plan.points]
    if workers == 1:
        results = [cost_point(*a) for a in args]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(cost_point, *zip(*args, strict=True)))
    summary = pd.DataFrame([row for row, _ in results])
    layers = pd.DataFrame([r for _, rows in results for r in rows])
    out = Path(plan.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [write_csv(summary, out / "summary.csv", "the cost sweep summary")]
    if not layers.empty:
        files.append(write_csv(layers, out / "layers.csv", "the cost sweep's per-layer table"))
    return summary, files


__all__ = ["CostSweepPlan", "cost_point", "expand_cost_sweep", "is_cost_sweep", "load_cost_sweep",
           "run_cost_sweep"]
