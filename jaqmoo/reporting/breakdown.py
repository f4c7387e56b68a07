"""Per-point details of a run: per-layer bits, mappings as loop nests, energy per level and tensor.

The results store keeps, per evaluated individual, its per-layer bits (``w.<layer>``,
``a.<layer>``), each layer's mapping in one line (``map.<layer>``), the hardware parameters
(``hw.<param>``) and the network's energy per storage level (``energy_pj.<level>``); it does not
keep the per-layer energy per level and per tensor. :class:`CostBreakdown` recomputes those
with :mod:`jaqmoo.cost` for the few points a report details (the front and the baselines),
from what ``meta.json`` records (model, input shape, accelerator template, genome layout),
and checks the recomputed total energy against the stored one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jaqmoo.errors import JaqmooError

# a mapping summary token: ``LEVEL[K4 C2]`` (temporal) or ``X[...]`` / ``Y[...]`` (spatial)
_TOKEN = re.compile(r"([^\s\[\]]+)\[([^\]]*)\]")
_FACTOR = re.compile(r"([A-Z])(\d+)")
SPATIAL = ("X", "Y")


def loop_nest(mapping: str) -> list[str]:
    """A one-line mapping summary (outermost level first, e.g. ``DRAM[Q8] glb[P8] Y[S3] spad[R3]``)
    as indented loop-nest lines: ``for`` per temporal loop, ``parallel_for`` per spatial one."""
    text = str(mapping or "").strip()
    note = ""
    m = re.search(r"\s*(\(.*\))\s*$", text)
    if m:  # e.g. " (gene 3->1)" in outer mapping mode
        note, text = m.group(1), text[: m.start()]
    lines: list[str] = []
    depth = 0
    for name, body in _TOKEN.findall(text):
        factors = _FACTOR.findall(body)
        if name in SPATIAL:
            lines.append("  " * depth + f"# spatial fan-out {name}")
        else:
            lines.append("  " * depth + f"# {name}")
        for dim, n in factors:
            kind = "parallel_for" if name in SPATIAL else "for"
            lines.append("  " * depth + f"{kind} {dim.lower()} in range({n}):")
            depth += 1
    if not lines:
        lines.append(text or "(no loops)")
    else:
        lines.append("  " * depth + "mac()")
    if note:
        lines.append(f"# {note}")
    return lines


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def stored_detail(row: pd.Series, layer_names: list[str]) -> dict:
    """What the store itself holds for one point: per-layer bits and mappings, network energy
    per level, hardware parameters."""
    layers = []
    for n in layer_names:
        mapping = row.get(f"map.{n}", "")
        mapping = "" if mapping is None or (isinstance(mapping, float) and math.isnan(mapping)) else str(mapping)
        w, a = _jsonable(row.get(f"w.{n}")), _jsonable(row.get(f"a.{n}"))
        if w is None and a is None and not mapping:
            continue  # a layer of the largest network this point's architecture does not run
        layers.append({"name": n, "w": w, "a": a, "mapping": mapping, "loop_nest": loop_nest(mapping) if mapping else []})
    energy = {c[len("energy_pj."):]: _jsonable(row[c]) for c in row.index if c.startswith("energy_pj.")}
    hw = {c[len("hw."):]: _jsonable(row[c]) for c in row.index if c.startswith("hw.")}
    out = {"layers": layers, "energy_by_level": energy, "hardware": hw}
    arch = architecture_of(row)
    if arch:
        out["architecture"] = arch
    return out


def architecture_of(row: pd.Series) -> dict:
    """The chosen architecture of one point of an architecture search: ``depth`` per stage,
    ``expand`` and ``kernel`` per block (0: the block does not run), ``macs``, ``params``;
    empty for a fixed-network run."""
    from jaqmoo.reporting.run import ARCH_PREFIXES, architecture_columns

    cols = architecture_columns(row.index)
    out: dict = {p[:-2]: [_jsonable(row[c]) for c in cols if c.startswith(p)] for p in ARCH_PREFIXES}
    out = {k: v for k, v in out.items() if v}
    if out:
        out.update({k: _jsonable(row[k]) for k in ("macs", "params") if k in row.index})
    return out


@dataclass
class CostBreakdown:
    """Recomputes the per-layer cost of stored genomes (see the module doc).

    ``network_cost`` maps a genome (list of gene indices) to a :class:`~jaqmoo.cost.NetworkCost`;
    ``shapes`` gives each layer's kind and shape.
    """

    network_cost: Callable[[list[int]], Any]
    shapes: dict[str, dict]
    evaluator: Any = None
    """The run's evaluator (``accelerator(hardware)``, ``network_cost(candidate)``), when built by :meth:`of`."""
    space: Any = None
    """The run's genome space (``decode_one``), when built by :meth:`of`."""

    @classmethod
    def from_meta(cls, meta: dict, evaluations: pd.DataFrame) -> CostBreakdown:
        """Rebuild the run's workload, hardware template and cost evaluator from ``meta.json``
        (:func:`run_evaluator`)."""
        return cls.of(*run_evaluator(meta, evaluations))

    @classmethod
    def of(cls, evaluator: Any, space: Any, workload: Any) -> CostBreakdown:
        """The breakdown of a search's own :class:`~jaqmoo.search.evaluation.JointEvaluator`
        (``jaqmoo run`` passes it: the front points are cache hits of its mapper)."""
        from jaqmoo.cost import layer_shape

        shapes = {layer.name: {"kind": layer.kind, "shape": layer_shape(layer), "macs": int(layer.macs)}
                  for layer in workload.layers}
        return cls(lambda genes: evaluator.network_cost(space.decode_one(np.asarray(genes, dtype=int))), shapes,
                   evaluator, space)

    def detail(self, row: pd.Series, layer_names: list[str]) -> dict:
        """:func:`stored_detail` plus each layer's shape, energy per level and per tensor and
        cycles, recomputed; ``check`` compares the recomputed total energy with the stored one."""
        out = stored_detail(row, layer_names)
        for lay in out["layers"]:
            lay.update(self.shapes.get(lay["name"], {}))
        genes = [int(v) for v in str(row["genes"]).split()]
        cost = self.network_cost(genes)
        if not getattr(cost, "feasible", True):
            out["check"] = {"ok": False, "why": f"recomputed point is infeasible: {cost.reason}"}
            return out
        by_name = {lc.name: lc for lc in cost.layers}
        for lay in out["layers"]:
            lc = by_name.get(lay["name"])
            if lc is None:
                continue
            # the recomputed layer's own shape (an architecture search's layers change per point)
            lay.update({"kind": lc.kind, "shape": lc.shape, "macs": int(lc.macs)})
            lay["energy_by_level"] = {k: _jsonable(v) for k, v in lc.energy_by_level.items()}
            lay["energy_by_tensor"] = {lvl: {t: _jsonable(e) for t, e in d.items()} for lvl, d in lc.energy_by_tensor.items()}
            lay["cycles"] = int(lc.cycles)
            lay["utilization"] = _jsonable(lc.utilization)
            lay["recomputed_mapping"] = lc.mapping
        stored = float(row.get("energy_pj", float("nan")))
        why = ""
        if not (math.isfinite(stored) and math.isclose(cost.energy_pj, stored, rel_tol=1e-6)):
            why = "the recomputed total energy differs from the stored one"
        elif any(lay.get("recomputed_mapping", lay["mapping"]) != lay["mapping"] for lay in out["layers"]):
            why = "a recomputed mapping differs from the stored one"
        out["check"] = {"ok": not why, "energy_pj_stored": _jsonable(stored),
                        "energy_pj_recomputed": _jsonable(cost.energy_pj), "why": why}
        return out


def run_evaluator(meta: dict, evaluations: pd.DataFrame) -> tuple[Any, Any, Any]:
    """``(evaluator, genome space, workload)`` of a run, rebuilt from ``meta.json`` through the one
    evaluator builder (the run's own options); the workload of an architecture search is its
    largest network. Raises :class:`JaqmooError` naming what is missing when the run does not
    record it (e.g. a search run with a custom evaluator)."""
    missing = [k for k in ("model", "template", "input_shape", "num_classes", "spec", "gene_names") if k not in meta]
    if missing:
        raise JaqmooError(f"meta.json records no {', '.join(missing)}: this run was not written by "
                          "`jaqmoo run`, so its per-layer costs cannot be recomputed")
    from jaqmoo.models import build_model
    from jaqmoo.search.evaluators import build_evaluator
    from jaqmoo.workload import extract_workload

    spec = meta["spec"]
    if spec.get("model", {}).get("elastic") is not None:
        return _elastic_evaluator(meta, evaluations)
    c, h, _ = (int(v) for v in meta["input_shape"])
    model = build_model(meta["model"], int(meta["num_classes"]), c, h, float(spec["model"].get("width_mult", 1.0)))
    workload = extract_workload(model, tuple(int(v) for v in meta["input_shape"]), name=meta["model"])
    space = space_from_meta(meta, evaluations)
    if [layer.name for layer in workload.layers] != list(space.layer_names):
        raise JaqmooError(f"the layers of {meta['model']} no longer match the run's layer_names; "
                          "the model code changed since the run")
    from jaqmoo.timeloop.design import accelerator_template

    section = spec.get("accelerator") or {}
    template = accelerator_template(section if section.get("timeloop") else {"template": meta["template"]})
    # the run's own evaluator options (mapping.metric, quantization.accumulator_bits ...)
    evaluator = build_evaluator(spec, space, template, None, workload)
    return evaluator, space, workload


def _elastic_evaluator(meta: dict, evaluations: pd.DataFrame) -> tuple[Any, Any, Any]:
    """:func:`run_evaluator` of an architecture search: its genome and sub-network costs from ``meta.json``."""
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.models.elastic_space import space_of_model
    from jaqmoo.search.arch_genes import ArchGenomeSpace
    from jaqmoo.search.evaluators import build_evaluator

    spec = meta["spec"]
    space = space_of_model(spec["model"])
    c, h, _ = (int(v) for v in meta["input_shape"])
    names = tuple(meta["layer_names"])
    # fixed layers from meta.json (a fixed layer may not run in the first stored point)
    stored = meta.get("space", {}).get("fixed_layers", {})
    fixed = {names.index(n): (int(b[0]), int(b[1])) for n, b in stored.items() if n in names}
    bits = _genome_space(meta, names, fixed)
    genome = ArchGenomeSpace(space, bits, int(meta["num_classes"]), c, h)
    if genome.gene_names() != list(meta["gene_names"]):
        raise JaqmooError("meta.json's gene_names do not match the architecture genome rebuilt from its spec")
    evaluator = build_evaluator(spec, genome, get_template(meta["template"]), None)
    return evaluator, genome, evaluator.workload(space.largest())


def space_from_meta(meta: dict, evaluations: pd.DataFrame):
    """The run's :class:`~jaqmoo.search.genome.GenomeSpace`, from ``meta.json`` (genome layout,
    hardware genes, the spec's bit choices); fixed layers take their bits from the records."""
    layer_names = tuple(meta["layer_names"])
    genes = set(meta["gene_names"])
    first = evaluations.iloc[0]
    fixed = {i: (int(first[f"w.{n}"]), int(first[f"a.{n}"])) for i, n in enumerate(layer_names) if f"w.{n}" not in genes}
    space = _genome_space(meta, layer_names, fixed)
    if space.gene_names() != list(meta["gene_names"]):
        raise JaqmooError("meta.json's gene_names do not match the genome layout rebuilt from its spec")
    return space


def _genome_space(meta: dict, layer_names: tuple[str, ...], fixed: dict[int, tuple[int, int]]):
    """The bits + mapping + hardware :class:`~jaqmoo.search.genome.GenomeSpace` ``meta.json`` describes."""
    from jaqmoo.search.genome import GenomeSpace, HardwareGene

    spec = meta["spec"]
    q = spec["quantization"]
    return GenomeSpace(
        layer_names=layer_names, weight_choices=tuple(q["weight_bits"]), act_choices=tuple(q["act_bits"]),
        fixed_layers=fixed,
        hardware_genes=tuple(HardwareGene(g["name"], tuple(g["choices"]), g["default"]) for g in meta["hardware_genes"]),
        hardware_fixed=dict(meta.get("hardware_fixed", {})), mapping_mode=meta.get("mapping_mode", "inner"),
        mapping_candidates=int(spec.get("mapping", {}).get("candidates", 1)),
    )


def point_details(rows: pd.DataFrame, layer_names: list[str], breakdown: CostBreakdown | None,
                  unavailable: str = "") -> list[dict]:
    """One detail dict per row (recomputed when ``breakdown`` is given, else the stored data
    with ``check.why`` = ``unavailable``)."""
    out = []
    for _, row in rows.iterrows():
        if breakdown is None:
            d = stored_detail(row, layer_names)
            d["check"] = {"ok": False, "why": unavailable}
        else:
            try:
                d = breakdown.detail(row, layer_names)
            except JaqmooError as exc:
                d = stored_detail(row, layer_names)
                d["check"] = {"ok": False, "why": str(exc)}
        out.append(d)
    return out
