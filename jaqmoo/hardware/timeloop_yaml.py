"""Timeloop architectures -> :class:`~jaqmoo.hardware.spec.Accelerator`.

Only the architecture (and its mapspace constraints) is read here; the reader that combines a
Timeloop input's architecture, problem and mapping is :mod:`jaqmoo.timeloop.inputs`, above
both the hardware and the mapping layers.

Two architecture layouts are read:

* the flattened one (``architecture: subtree: [{name, attributes, local: [...],
  subtree: [...]}]``, as in ``parsed-processed-input.yaml``), where each element's name
  carries its instance range (``GlobalBuffer[1..16]``) and its attributes ``meshX``/``meshY``;
* the hierarchical one (``architecture: nodes: [!Container ..., !Component ...,
  !Parallel ...]``), where a container with a spatial fan-out (``spatial: {meshX: 14}``)
  multiplies the instances of everything below it and, like timeloopfe, becomes a dummy
  level ``inter_<name>_spatial`` that hosts the fan-out and the container's constraints.

The innermost element is the compute. Per-action energies come from an Accelergy ERT
(``*.ERT.yaml`` next to the input, or given explicitly), areas from an ART; without one
the energies are 0 and ``energy_source`` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.ert import EnergyTable, find_sibling, load_tables, short_name
from jaqmoo.hardware.spec import TENSORS, Accelerator, Compute, Level, MapConstraint
from jaqmoo.hardware.timeloop_fields import parse_factors, parse_permutation, tensor_list
from jaqmoo.hardware.yaml_io import as_number, load_yaml, require
from jaqmoo.strict import malformed_input, number

_RANGE = re.compile(r"\[(\d+)\.\.(\d+)\]$")
_COMPUTE_HINTS = ("mac", "compute", "alu", "multiplier")
_NETWORK_CLASSES = ("XY_NoC", "Legacy", "ReductionTree", "SimpleMulticast")


@dataclass
class _Element:
    """One architecture element before it becomes a Level/Compute."""

    name: str
    cls: str
    attributes: dict
    instances: int
    mesh_x: int
    mesh_y: int
    constraints: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------- flattened form

def _range_count(name: str) -> tuple[str, int]:
    m = _RANGE.search(name)
    if not m:
        return name, 1
    lo, hi = int(m.group(1)), int(m.group(2))
    return name[: m.start()], hi - lo + 1


def _flattened_elements(tree: list, label: str, inherited: dict, outer: int, path: str) -> list[_Element]:
    out: list[_Element] = []
    for i, sub in enumerate(tree):
        where = f"{path}[{i}]"
        if not isinstance(sub, dict):
            raise JaqmooError(f"{label}: {where} must be a mapping")
        sub_name, sub_count = _range_count(str(sub.get("name", f"subtree{i}")))
        attrs = {**inherited, **(sub.get("attributes") or {})}
        for j, elem in enumerate(sub.get("local") or []):
            ewhere = f"{where}.local[{j}]"
            name = require(elem, "name", label, ewhere)
            base, count = _range_count(str(name))
            eattrs = {**attrs, **(elem.get("attributes") or {})}
            instances = eattrs.get("instances")
            instances = count * outer * sub_count if instances is None else as_number(
                instances, label, f"{ewhere}.attributes.instances", int)
            mesh_x, mesh_y = _mesh(eattrs, instances, label, ewhere)
            out.append(_Element(base, str(elem.get("class", "")), eattrs, instances, mesh_x, mesh_y))
        out += _flattened_elements(sub.get("subtree") or [], label, attrs, outer * sub_count, where + ".subtree")
    return out


def _mesh(attrs: dict, instances: int, label: str, where: str) -> tuple[int, int]:
    mx, my = attrs.get("meshX"), attrs.get("meshY")
    mx = None if mx is None else as_number(mx, label, f"{where}.attributes.meshX", int)
    my = None if my is None else as_number(my, label, f"{where}.attributes.meshY", int)
    if mx is None and my is None:
        return instances, 1
    if mx is None:
        mx = instances // my
    if my is None:
        my = instances // mx
    if mx * my != instances:
        raise JaqmooError(f"{label}: {where}: meshX*meshY ({mx}*{my}) != instances ({instances})")
    return mx, my


# -------------------------------------------------------------------- hierarchical form

def _hierarchical_elements(nodes: list, label: str) -> list[_Element]:
    out: list[_Element] = []
    state = {"mx": 1, "my": 1, "attrs": {}, "first": True}

    def walk(items: list, path: str) -> None:
        for i, node in enumerate(items):
            where = f"{path}[{i}]"
            if not isinstance(node, dict):
                raise JaqmooError(f"{label}: {where} must be a mapping")
            tag = node.get("_tag", "!Component" if "class" in node else "!Container")
            if tag in ("!Parallel", "!Hierarchical", "!Pipelined"):
                walk(node.get("nodes") or [], where + ".nodes")
                continue
            if tag == "!Nothing":
                continue
            spatial = node.get("spatial") or {}
            sx = as_number(spatial.get("meshX", 1), label, f"{where}.spatial.meshX", int)
            sy = as_number(spatial.get("meshY", 1), label, f"{where}.spatial.meshY", int)
            if sx < 1 or sy < 1:
                raise JaqmooError(f"{label}: {where}.spatial: meshX/meshY must be >= 1")
            name = str(require(node, "name", label, where))
            constraints = _node_constraints(node.get("constraints"), name)
            if tag == "!Container":
                state["attrs"] = {**state["attrs"], **(node.get("attributes") or {})}
                if sx * sy > 1 or (constraints and not state["first"]):
                    dummy = f"inter_{name}_spatial"
                    inst = state["mx"] * state["my"]
                    out.append(_Element(dummy, "dummy_storage", {"width": 1, "depth": 1, "datawidth": 1},
                                        inst, state["mx"], state["my"],
                                        [dict(c, target=dummy) for c in constraints]))
                state["mx"] *= sx
                state["my"] *= sy
                state["first"] = False
                continue
            cls = str(node.get("class", ""))
            if cls in _NETWORK_CLASSES:
                continue
            state["mx"] *= sx
            state["my"] *= sy
            attrs = {**state["attrs"], **(node.get("attributes") or {})}
            out.append(_Element(name, cls, attrs, state["mx"] * state["my"], state["mx"], state["my"], constraints))
            state["first"] = False

    walk(nodes, "architecture.nodes")
    return out


def _node_constraints(spec: Any, target: str) -> list[dict]:
    """Per-node ``constraints: {dataspace, temporal, spatial}`` -> flattened directives."""
    if not isinstance(spec, dict):
        return []
    out = []
    ds = spec.get("dataspace")
    if isinstance(ds, dict) and (ds.get("keep") is not None or ds.get("bypass") is not None):
        out.append({"target": target, "type": "bypass", "keep": ds.get("keep") or [],
                    "bypass": ds.get("bypass") or []})
    for kind in ("temporal", "spatial"):
        c = spec.get(kind)
        if isinstance(c, dict) and c:
            out.append({"target": target, "type": kind, **{k: v for k, v in c.items() if k != "_tag"}})
    return out


# ----------------------------------------------------------------------- level building

def _first(attrs: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if attrs.get(k) is not None:
            return attrs[k]
    return None


def _looks_like_storage(elem: _Element) -> bool:
    cls = elem.cls.lower()
    if any(h in cls for h in _COMPUTE_HINTS):
        return False
    return elem.attributes.get("depth") is not None or any(s in cls for s in ("dram", "sram", "regfile", "buffer"))


def _action(acts: dict[str, float], names: tuple[str, ...], default: float) -> float:
    """Energy of the first of ``names`` the ERT lists (Timeloop's action-name fallbacks)."""
    for n in names:
        if n in acts:
            return acts[n]
    return default


def _energies(table: EnergyTable, name: str) -> tuple[dict[str, float], bool]:
    acts = table.energy.get(name)
    return (acts or {}), acts is not None


def _make_level(elem: _Element, table: EnergyTable, label: str, keep: tuple, bypass: tuple) -> Level:
    a = elem.attributes
    where = f"architecture element {elem.name!r}"
    if elem.cls == "dummy_storage":
        return Level(elem.name, elem.cls, elem.instances, elem.mesh_x, elem.mesh_y, None, 1, 1,
                     area=table.area.get(elem.name, 0.0), energy_source="dummy")
    datawidth = _first(a, ("word-bits", "word_bits", "word_width", "datawidth"))  # Timeloop's order
    if datawidth is None:
        raise JaqmooError(f"{label}: {where}: missing required field 'attributes.datawidth' "
                          f"(bits per value); add it")
    datawidth = as_number(datawidth, label, f"{where}.datawidth", int)
    cluster = _first(a, ("cluster_size", "cluster-size"))
    cluster = 1 if cluster is None else as_number(cluster, label, f"{where}.cluster_size", int)
    width = _first(a, ("width", "memory_width"))
    if width is None and a.get("block-size") is not None:
        width = datawidth * cluster * as_number(a["block-size"], label, f"{where}.block-size", int)
    if width is None and a.get("word-bits") is not None:  # v0.3: block-size defaults to 1
        width = datawidth * cluster
    if width is None:
        raise JaqmooError(f"{label}: {where}: missing required field 'attributes.width' "
                          f"(bits per word); add it")
    width = as_number(width, label, f"{where}.width", int)
    depth = _first(a, ("depth", "memory_depth"))
    if depth is None and a.get("entries") is not None:
        depth = -(-as_number(a["entries"], label, f"{where}.entries", int) // max(1, width // (datawidth * cluster)))
    if depth is None and a.get("sizeKB") is not None:
        depth = int(as_number(a["sizeKB"], label, f"{where}.sizeKB") * 8192 // width)
    is_dram = "dram" in elem.cls.lower() or str(a.get("technology", "")).upper() == "DRAM"
    if depth is None and not is_dram:
        raise JaqmooError(f"{label}: {where}: missing required field 'attributes.depth' "
                          f"(words per instance); add it (only DRAM may omit it)")
    depth = None if depth is None else as_number(depth, label, f"{where}.depth", int)

    def bw(*keys: str) -> float | None:
        v = _first(a, keys)
        return None if v is None else as_number(v, label, f"{where}.{keys[0]}")

    read_bw, write_bw = bw("read_bandwidth"), bw("write_bandwidth")
    if a.get("bandwidth") is not None and read_bw is None and write_bw is None:
        read_bw = write_bw = as_number(a["bandwidth"], label, f"{where}.bandwidth") / 2
    acts, found = _energies(table, elem.name)
    read_e = _action(acts, ("read", "random_read"), 0.0)
    write_e = _action(acts, ("write", "random_fill", "fill"), 0.0)
    update_e = _action(acts, ("update", "random_update"), write_e)
    source = table.energy_source if found else "none (no ERT entry)"
    return Level(
        name=elem.name, cls=elem.cls, instances=elem.instances, mesh_x=elem.mesh_x, mesh_y=elem.mesh_y,
        depth=depth, width=width, datawidth=datawidth, keep=keep, bypass=bypass,
        read_bandwidth=read_bw, write_bandwidth=write_bw, shared_bandwidth=bw("shared_bandwidth"),
        multiple_buffering=as_number(a.get("multiple_buffering", 1), label, f"{where}.multiple_buffering"),
        read_energy=read_e, write_energy=write_e, update_energy=update_e, leak_energy=acts.get("leak", 0.0),
        area=table.area.get(elem.name, 0.0), energy_source=source, cluster_size=cluster,
    )


def _make_compute(elem: _Element, table: EnergyTable, label: str) -> Compute:
    a = elem.attributes
    acts, found = _energies(table, elem.name)
    energy = acts.get("compute", acts.get("mac_random", acts.get("mac", 0.0)))
    bits = _first(a, ("multiplier_width", "datawidth", "width", "word-bits"))
    bits = 8 if bits is None else as_number(bits, label, f"compute {elem.name!r} width", int)
    return Compute(elem.name, elem.cls, elem.instances, elem.mesh_x, elem.mesh_y, energy,
                   operand_bits=bits, leak_energy=acts.get("leak", 0.0), area=table.area.get(elem.name, 0.0),
                   energy_source=table.energy_source if found else "none (no ERT entry)")


# ---------------------------------------------------------------------- constraints

def _collect_flat_constraints(data: dict) -> list[dict]:
    out = []
    for key in ("architecture_constraints", "mapspace_constraints", "constraints"):
        section = data.get(key)
        if isinstance(section, dict):
            section = section.get("targets") or []
        if isinstance(section, list):
            out += [c for c in section if isinstance(c, dict)]
    mapspace = data.get("mapspace")
    if isinstance(mapspace, dict) and isinstance(mapspace.get("constraints"), dict | list):
        section = mapspace["constraints"]
        section = section.get("targets", []) if isinstance(section, dict) else section
        out += [c for c in section if isinstance(c, dict)]
    return out


def _to_map_constraint(c: dict, label: str, index: int) -> MapConstraint:
    where = f"constraint[{index}] ({c.get('target')})"
    kind = str(c.get("type", "")).lower()
    if kind in ("datatype", "dataspace"):
        kind = "bypass"
    if kind not in ("temporal", "spatial", "bypass"):
        raise JaqmooError(f"{label}: {where}: type {c.get('type')!r} is not temporal, spatial or bypass")
    factors = parse_factors(c.get("factors"), label, where + ".factors", allow_zero=True)
    perm = parse_permutation(c.get("permutation"), label, where + ".permutation") if c.get("permutation") else None
    split = c.get("split")
    return MapConstraint(
        target=str(require(c, "target", label, f"constraint[{index}]")), type=kind,
        factors=tuple(sorted(factors.items())), permutation=tuple(perm) if perm else None,
        split=None if split is None else int(split),
        keep=tuple(tensor_list(c.get("keep"), label, where + ".keep")),
        bypass=tuple(tensor_list(c.get("bypass"), label, where + ".bypass")),
    )


def _drop_implied_dummy_constraints(constraints: tuple[MapConstraint, ...], dummies: set[str]) -> tuple:
    """Drop what timeloopfe writes for every dummy level (no temporal loops, keeps nothing):
    it is implied by the level being a dummy, so both input forms give the same Accelerator."""
    def implied(c: MapConstraint) -> bool:
        if c.target not in dummies:
            return False
        if c.type == "bypass":
            return not c.keep and set(c.bypass) == set(TENSORS)
        return c.type == "temporal" and all(v == 1 for _, v in c.factors)
    return tuple(c for c in constraints if not implied(c))


# --------------------------------------------------------------------------- entry points

def _architecture_elements(data: dict, label: str) -> list[_Element]:
    arch = require(data, "architecture", label, "")
    if not isinstance(arch, dict):
        raise JaqmooError(f"{label}: 'architecture' must be a mapping")
    if arch.get("nodes") is not None:
        elems = _hierarchical_elements(arch["nodes"], label)
    elif arch.get("subtree") is not None:
        elems = _flattened_elements(arch["subtree"], label, {}, 1, "architecture.subtree")
    else:
        raise JaqmooError(f"{label}: architecture needs 'subtree' (flattened form) or 'nodes' "
                          f"(hierarchical !Container/!Component form)")
    if len(elems) < 2:
        raise JaqmooError(f"{label}: the architecture needs at least one storage level and a compute unit")
    return elems


def _cycle_seconds(data: dict, elems: list[_Element]) -> float:
    for e in elems:
        v = e.attributes.get("global_cycle_seconds")
        if v is not None:
            return float(number(v, f"{e.name}.attributes.global_cycle_seconds", lo=0.0, lo_open=True, text=True))
    return 1e-9


def _resolve_tables(source: Any, data: dict, ert: Any, art: Any, energy_source: str | None) -> EnergyTable:
    directory = Path(source).parent if not isinstance(source, dict) else None
    if ert is None and directory is not None:
        ert = find_sibling(directory, "ERT")
    if art is None and directory is not None:
        art = find_sibling(directory, "ART")
    if ert is None and isinstance(data.get("ERT"), dict):
        ert = {"ERT": data["ERT"]}
    table = load_tables(ert, art, energy_source)
    if ert is None:
        table.energy_source = energy_source or "none (no ERT given; all energies are 0)"
    return table


def accelerator_from_data(data: dict, label: str, source: Any = None, ert: str | Path | dict | None = None,
                          art: str | Path | dict | None = None, energy_source: str | None = None,
                          name: str | None = None) -> Accelerator:
    """The :class:`Accelerator` of an already-loaded Timeloop input (``architecture`` plus its
    constraint sections). ``source`` (the file the data came from) locates sibling ERT/ART files;
    ``ert``/``art`` override them; ``energy_source`` overrides the provenance string."""
    elems = _architecture_elements(data, label)
    table = _resolve_tables(source if source is not None else data, data, ert, art, energy_source)

    raw_constraints = _collect_flat_constraints(data)
    for e in elems:
        raw_constraints += e.constraints
    constraints = tuple(_to_map_constraint(c, label, i) for i, c in enumerate(raw_constraints))

    *storage, compute_elem = elems
    constraints = _drop_implied_dummy_constraints(constraints, {e.name for e in storage if e.cls == "dummy_storage"})
    if _looks_like_storage(compute_elem):
        raise JaqmooError(f"{label}: the innermost element {compute_elem.name!r} must be the compute unit")
    levels = []
    names = {e.name for e in storage}
    for c in constraints:
        if c.target not in names:
            raise JaqmooError(f"{label}: constraint target {c.target!r} is not a storage level "
                              f"(levels: {', '.join(e.name for e in storage)})")
    for e in storage:
        keep = tuple(t for t in TENSORS if any(c.target == e.name and c.type == "bypass" and t in c.keep
                                                for c in constraints))
        bypass = tuple(t for t in TENSORS if any(c.target == e.name and c.type == "bypass" and t in c.bypass
                                                  for c in constraints))
        levels.append(_make_level(e, table, label, keep, bypass))
    compute = _make_compute(compute_elem, table, label)
    arch_name = name or (Path(label).parent.name if label != "<dict>" else "accelerator")
    return Accelerator(arch_name, tuple(levels), compute, constraints, _cycle_seconds(data, elems),
                       table.energy_source)


def load_accelerator(source: str | Path | dict, ert: str | Path | dict | None = None,
                     art: str | Path | dict | None = None, energy_source: str | None = None,
                     name: str | None = None) -> Accelerator:
    """The :class:`Accelerator` of a Timeloop input (a file, a folder holding one, or a dict).

    ``ert``/``art`` override the ``*.ERT.yaml``/``*.ART*.yaml`` found next to the input;
    ``energy_source`` overrides the provenance string (templates pass "built-in ... table").
    """
    if not isinstance(source, dict) and Path(source).is_dir():
        source = find_input_file(Path(source))
    data, label = load_yaml(source, "Timeloop input")
    with malformed_input(label, "Timeloop architecture"):
        return accelerator_from_data(data, label, source, ert, art, energy_source, name)


def find_input_file(directory: Path) -> Path:
    """The Timeloop input of a folder: ``parsed-processed-input.yaml``, else the one YAML
    with an ``architecture:`` key."""
    preferred = directory / "parsed-processed-input.yaml"
    if preferred.exists():
        return preferred
    candidates = []
    for p in sorted(directory.glob("*.yaml")):
        if any(k in p.name for k in ("ERT", "ART", ".map.")):
            continue
        try:
            head = p.read_text()
        except OSError:
            continue
        if re.search(r"^architecture\s*:", head, re.M):
            candidates.append(p)
    if len(candidates) != 1:
        raise JaqmooError(f"{directory}: expected parsed-processed-input.yaml or exactly one YAML with an "
                          f"'architecture:' section (found {len(candidates)})")
    return candidates[0]


__all__ = ["accelerator_from_data", "load_accelerator", "find_input_file", "short_name"]
