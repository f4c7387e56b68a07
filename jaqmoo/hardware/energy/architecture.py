"""A whole Timeloop architecture's ERT and ART (Accelergy format) from the built-in tables or
hwcomponents: walking the flattened (``subtree``) and hierarchical (``nodes``) forms."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.energy.anchors import DEFAULT_NODE_NM
from jaqmoo.hardware.energy.builtin import estimate_component
from jaqmoo.hardware.energy.components import parse_technology
from jaqmoo.hardware.energy.hwcomponents_model import hwcomponents_estimate

_INSTANCE_SUFFIX = re.compile(r"\[\s*\d+\s*\.\.\s*\d+\s*\]$")


def iter_flattened_components(architecture: Mapping[str, Any]):
    """Yield ``(path_name, class, subclass, attributes, inherited_technology)`` for every
    component of a flattened Timeloop v0.4 ``architecture`` (``subtree``/``local`` form).

    ``path_name`` is the Accelergy name, e.g. ``system_top_level.shared_glb[1..1]``.
    """

    def walk(node: Mapping[str, Any], prefix: str, tech: Any):
        attrs = node.get("attributes") or {}
        tech = attrs.get("technology", tech) if parse_technology(
            attrs.get("technology")) is not None else tech
        here = f"{prefix}{node['name']}." if "name" in node else prefix
        for comp in node.get("local") or []:
            yield (here + str(comp["name"]), str(comp.get("class", "")), comp.get("subclass"),
                   comp.get("attributes") or {}, tech)
        for sub in node.get("subtree") or []:
            yield from walk(sub, here, tech)

    for top in architecture.get("subtree") or []:
        yield from walk(top, "", None)


NETWORK_CLASSES: tuple[str, ...] = ("XY_NoC", "Legacy", "ReductionTree", "SimpleMulticast")
"""Hierarchical-form network components: not storage or compute, no table entry."""


def iter_hierarchical_components(architecture: Mapping[str, Any]):
    """Like :func:`iter_flattened_components` for the ``nodes:`` form (``!Container`` /
    ``!Component`` / ``!Parallel``, read as dicts carrying a ``_tag`` key). Containers pass
    their ``technology`` down; names are the components' own names.
    """

    def walk(nodes: Any, tech: Any):
        for node in nodes or []:
            if not isinstance(node, Mapping):
                continue
            tag = node.get("_tag", "!Component" if "class" in node else "!Container")
            if tag in ("!Parallel", "!Hierarchical", "!Pipelined"):
                yield from walk(node.get("nodes"), tech)
            elif tag == "!Container":
                attrs = node.get("attributes") or {}
                if parse_technology(attrs.get("technology")) is not None:
                    tech = attrs["technology"]
            elif tag == "!Component" and str(node.get("class", "")) not in NETWORK_CLASSES:
                yield (str(node.get("name", "")), str(node.get("class", "")),
                       node.get("subclass"), node.get("attributes") or {}, tech)

    yield from walk(architecture.get("nodes"), None)


ENERGY_MODELS: tuple[str, ...] = ("builtin", "hwcomponents")


def estimate_architecture(architecture: Mapping[str, Any], energy_model: str = "builtin",
                          cycle_seconds: float = 1e-9) -> tuple[dict, dict, str]:
    """ERT and ART (Accelergy format) for a v0.4 architecture (flattened ``subtree`` form or
    hierarchical ``nodes`` form), plus a source string such as ``built-in 32nm table``.

    The returned dicts look like ``timeloop-*.ERT.yaml`` / ``*.ART.yaml`` so they go through
    the same loader path as real Accelergy output. ``energy_model="hwcomponents"`` asks the
    optional hwcomponents package first and uses the built-in tables for the components it
    does not cover (the source string names both).
    """
    if energy_model not in ENERGY_MODELS:
        raise JaqmooError(f"energy model {energy_model!r}: use one of {', '.join(ENERGY_MODELS)}")
    components = (iter_hierarchical_components(architecture) if "nodes" in architecture
                  else iter_flattened_components(architecture))
    tables, areas, sources, from_hwc, from_tables = [], [], set(), [], []
    assumed = False
    for path, klass, subclass, attrs, tech in components:
        est = None
        if energy_model == "hwcomponents":
            est = hwcomponents_estimate(klass, attrs, subclass=subclass, technology=tech,
                                        cycle_seconds=cycle_seconds)
            if est is not None and est.kind != "dummy":
                from_hwc.append(base_component_name(path))
        if est is None:
            est = estimate_component(klass, attrs, subclass=subclass, technology=tech)
            if est.kind != "dummy":
                from_tables.append(base_component_name(path))
            if est.node_nm is not None:
                sources.add(f"{est.node_nm}nm")
            assumed = assumed or "assumed" in est.source
        tables.append({"name": path, "actions": [
            {"name": action, "arguments": {}, "energy": energy}
            for action, energy in est.energies]})
        areas.append({"name": path, "area": est.area_um2})
    nodes = ", ".join(sorted(sources)) or "no on-chip"
    note = f" (no technology given: {DEFAULT_NODE_NM}nm assumed)" if assumed else ""
    source = f"built-in {nodes} table{note}"
    if from_hwc:
        source = f"hwcomponents ({', '.join(from_hwc)})" + (
            f" + {source} ({', '.join(from_tables)})" if from_tables else "")
    return ({"ERT": {"version": "0.4", "tables": tables}},
            {"ART": {"version": "0.4", "tables": areas}}, source)


def base_component_name(path_name: str) -> str:
    """``system.PE.ifmap_spad[1..168]`` -> ``ifmap_spad``."""
    return _INSTANCE_SUFFIX.sub("", path_name).rsplit(".", 1)[-1]


__all__ = ["ENERGY_MODELS", "NETWORK_CLASSES", "base_component_name", "estimate_architecture",
           "iter_flattened_components", "iter_hierarchical_components"]
