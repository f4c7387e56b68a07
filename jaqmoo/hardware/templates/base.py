"""Parameterised accelerator templates: parameters, validation and Timeloop v0.4 dict helpers.

A :class:`Template` turns a set of integer hardware parameters (PE mesh, buffer depths,
word widths...) into a Timeloop v0.4 input dict -- the flattened ``architecture``
(``subtree``/``local``, as in ``parsed-processed-input.yaml``) plus the
``architecture_constraints`` that pin the template's dataflow -- and from there, through
the same loader as any Timeloop file, into an ``Accelerator`` whose energies come from the
built-in tables (:mod:`jaqmoo.hardware.energy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.templates.build import build_cached
from jaqmoo.registry import Registry
from jaqmoo.strict import MAX_INT, shown
from jaqmoo.strict import number as strict_number

# Attributes Timeloop's front end adds to every storage level of a flattened dump.
_STORAGE_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("has_power_gating", False),
    ("n_banks", 2),
    ("cluster_size", 1),
    ("reduction_supported", True),
    ("multiple_buffering", 1),
    ("min_utilization", 0),
    ("allow_overbooking", False),
)
REQUIRED_STORAGE_ACTIONS: tuple[str, ...] = ("leak", "write", "read", "update")


@dataclass(frozen=True)
class HardwareParam:
    """One integer hardware parameter of a template.

    ``choices`` are the discrete values a hardware search may pick (always containing
    ``default``); ``minimum`` is the smallest physically meaningful value, accepted
    outside ``choices`` unless validation is strict. ``searchable=False`` marks parameters
    that describe the design point rather than a trade-off (technology node, reference
    datawidths): the search keeps them at their default.
    """

    name: str
    default: int
    choices: tuple[int, ...]
    doc: str
    minimum: int = 1
    searchable: bool = True
    discrete: bool = False
    """Only ``choices`` are valid even when validation is not strict (e.g. technology)."""

    def __post_init__(self) -> None:
        if self.default not in self.choices:
            raise ValueError(f"{self.name}: default {self.default} not in choices {self.choices}")
        if tuple(sorted(set(self.choices))) != self.choices:
            raise ValueError(f"{self.name}: choices must be sorted and unique")
        if self.choices[0] < self.minimum:
            raise ValueError(f"{self.name}: choice below the minimum {self.minimum}")

    def allowed(self, strict: bool) -> str:
        """Human-readable allowed range, for error messages."""
        if strict or self.discrete:
            return "one of " + ", ".join(str(c) for c in self.choices)
        return f"an integer >= {self.minimum} (search choices: " + ", ".join(
            str(c) for c in self.choices) + ")"

    def check(self, value: Any, strict: bool = False, template: str = "") -> int:
        """Validated integer value; JaqmooError naming the parameter and its range otherwise."""
        where = f"template {template!r}: " if template else ""
        try:  # finite, integral and of a sane size (strict.MAX_INT), whatever the source
            number = strict_number(value, self.name, integer=True, text=isinstance(value, str))
        except JaqmooError:
            raise JaqmooError(f"{where}parameter {self.name}={shown(value)} is not an integer (finite, at most "
                              f"{MAX_INT}); allowed: {self.allowed(strict)}") from None
        if number < self.minimum:
            raise JaqmooError(f"{where}parameter {self.name}={number} is impossible; "
                              f"allowed: {self.allowed(strict)}")
        if (strict or self.discrete) and number not in self.choices:
            raise JaqmooError(f"{where}parameter {self.name}={number} is not one of the "
                              f"template's choices; allowed: {self.allowed(True)}")
        return number


def pow2_choices(default: int, low: int, high: int, *extra: int) -> tuple[int, ...]:
    """Powers of two in ``[low, high]`` plus ``default`` (and ``extra``), sorted."""
    values = {default, *extra}
    p = 1
    while p <= high:
        if p >= low:
            values.add(p)
        p *= 2
    return tuple(sorted(values))


Generator = Callable[[Mapping[str, int]], dict]
WidthRule = tuple[str, str]
"""``(width_param, datawidth_param)``: a word must hold at least one value."""


@dataclass(frozen=True)
class Template:
    """A parameterised accelerator design.

    ``generator`` maps resolved parameter values to a Timeloop v0.4 input dict;
    ``width_rules`` list the (word width, datawidth) parameter pairs that must satisfy
    width >= datawidth.
    """

    name: str
    params: tuple[HardwareParam, ...]
    generator: Generator = field(repr=False)
    doc: str = ""
    width_rules: tuple[WidthRule, ...] = ()
    accumulator_param: str | None = None
    """The parameter holding the design's partial-sum width (the built Accelerator's
    ``accumulator_bits``); None: partial sums at each level's datawidth."""

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"template {self.name}: duplicate parameter names")
        for rule in self.width_rules:
            for n in rule:
                if n not in names:
                    raise ValueError(f"template {self.name}: width rule names unknown {n}")
        if self.accumulator_param is not None and self.accumulator_param not in names:
            raise ValueError(f"template {self.name}: unknown accumulator parameter {self.accumulator_param}")

    # ------------------------------------------------------------------ parameters
    def param(self, name: str) -> HardwareParam:
        """The parameter called ``name`` (JaqmooError listing the valid names if unknown)."""
        for p in self.params:
            if p.name == name:
                return p
        raise JaqmooError(f"template {self.name!r}: unknown parameter {name!r}; valid "
                          f"parameters: {', '.join(p.name for p in self.params)}")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def searchable_params(self) -> tuple[HardwareParam, ...]:
        """The parameters a hardware search should evolve (genes)."""
        return tuple(p for p in self.params if p.searchable)

    def defaults(self) -> dict[str, int]:
        """``{name: default}`` for every parameter."""
        return {p.name: p.default for p in self.params}

    def resolve(self, strict: bool = False, **overrides: Any) -> dict[str, int]:
        """Defaults updated with validated ``overrides``.

        Raises JaqmooError for an unknown name, a non-integer, a value below the parameter's
        minimum (mesh 0, depth 0...), a value outside ``choices`` when ``strict``, or a word
        width smaller than its datawidth.
        """
        values = self.defaults()
        for name, value in overrides.items():
            values[name] = self.param(name).check(value, strict, self.name)
        for width_name, data_name in self.width_rules:
            if values[width_name] < values[data_name]:
                raise JaqmooError(
                    f"template {self.name!r}: parameter {width_name}={values[width_name]} is "
                    f"smaller than {data_name}={values[data_name]}: a word must hold at least "
                    f"one value; allowed: {width_name} >= {values[data_name]} (or lower "
                    f"{data_name})")
        return values

    # ------------------------------------------------------------------ outputs
    def to_timeloop(self, strict: bool = False, **overrides: Any) -> dict:
        """Timeloop v0.4 input dict (``architecture`` + ``architecture_constraints``)."""
        return self.generator(self.resolve(strict, **overrides))

    def build(self, strict: bool = False, energy_model: str = "builtin", **overrides: Any):
        """The ``Accelerator`` for these parameters, energies from the built-in tables
        (``energy_model="hwcomponents"``: from the optional hwcomponents package where it has
        a model, the built-in tables elsewhere).

        Validated like :meth:`resolve`. Results are memoised per parameter set (the
        ``Accelerator`` is immutable), so a hardware search revisiting a point pays nothing.
        """
        values = self.resolve(strict, **overrides)
        return build_cached(self, tuple(sorted(values.items())), energy_model)

    def describe(self) -> str:
        """A table of the parameters, defaults and choices (for ``--help``-style output)."""
        lines = [f"{self.name}: {self.doc}".rstrip(": ")]
        for p in self.params:
            flag = "" if p.searchable else " (fixed in search)"
            lines.append(f"  {p.name:24s} default {p.default:<7d} choices "
                         f"{','.join(map(str, p.choices))}{flag}  {p.doc}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- v0.4 dict builders


def _template_key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


#: every accelerator template by name; each template's module registers its own
#: (:mod:`.eyeriss`, :mod:`.simba`, :mod:`.simple`)
TEMPLATES: Registry[Template] = Registry("accelerator template", normalize=_template_key,
                                         hint=" (or give a Timeloop YAML file / folder)")


def instances_name(name: str, mesh_x: int, mesh_y: int) -> str:
    """Timeloop's flattened name ``name[1..N]`` with N = mesh_x * mesh_y."""
    return f"{name}[1..{mesh_x * mesh_y}]"


def storage(name: str, klass: str, mesh_x: int, mesh_y: int, attributes: Mapping[str, Any],
            *, technology: Any = None, subclass: str | None = None,
            power_gated_at: Any = None) -> dict:
    """A flattened storage level with Timeloop's default attributes filled in."""
    attrs: dict[str, Any] = dict(attributes)
    for key, value in _STORAGE_DEFAULTS:
        attrs.setdefault(key, value)
    attrs["meshX"] = mesh_x
    attrs["meshY"] = mesh_y
    attrs["power_gated_at"] = power_gated_at
    if technology is not None:
        attrs["technology"] = technology
    node: dict[str, Any] = {"name": instances_name(name, mesh_x, mesh_y), "class": klass}
    if subclass is not None:
        node["subclass"] = subclass
    node["attributes"] = attrs
    node["required_actions"] = list(REQUIRED_STORAGE_ACTIONS)
    node["enabled"] = True
    return node


def dummy(name: str, mesh_x: int, mesh_y: int, power_gated_at: Any = None) -> dict:
    """A ``dummy_storage`` level: holds nothing, only hosts a spatial fan-out."""
    node = storage(name, "dummy_storage", mesh_x, mesh_y,
                   {"width": 1, "depth": 1, "datawidth": 1, "technology": -1},
                   power_gated_at=power_gated_at)
    del node["required_actions"]
    return node


def compute(name: str, klass: str, mesh_x: int, mesh_y: int, attributes: Mapping[str, Any],
            *, technology: Any = None, power_gated_at: Any = None) -> dict:
    """A flattened compute unit (``intmac``)."""
    attrs = dict(attributes)
    attrs.setdefault("has_power_gating", False)
    attrs["meshX"] = mesh_x
    attrs["meshY"] = mesh_y
    attrs["power_gated_at"] = power_gated_at
    if technology is not None:
        attrs["technology"] = technology
    return {"name": instances_name(name, mesh_x, mesh_y), "class": klass, "attributes": attrs,
            "required_actions": ["compute"], "enabled": True}


def architecture(top_name: str, top_attributes: Mapping[str, Any],
                 local: Iterable[dict]) -> dict:
    """The flattened ``architecture`` section (one top-level subtree)."""
    attrs = {"version": "0.4", **top_attributes}
    return {"version": "0.4", "subtree": [
        {"name": top_name, "attributes": attrs, "local": list(local)}]}


def temporal(target: str, permutation: str | None = None, factors: str | None = None) -> dict:
    """A temporal constraint target."""
    out: dict[str, Any] = {"type": "temporal", "target": target}
    if permutation is not None:
        out["permutation"] = permutation
    if factors is not None:
        out["factors"] = factors
    return out


def spatial(target: str, permutation: str, factors: str, split: int | None = None) -> dict:
    """A spatial constraint target (``split``: the first ``split`` dims go to X)."""
    out: dict[str, Any] = {"type": "spatial", "target": target, "permutation": permutation,
                           "factors": factors}
    if split is not None:
        out["split"] = split
    return out


def dataspace(target: str, keep: Iterable[str] = (), bypass: Iterable[str] = (),
              type_name: str = "dataspace") -> dict:
    """A keep/bypass constraint (``type: bypass`` in older dumps, ``dataspace`` in newer)."""
    out: dict[str, Any] = {"type": type_name, "target": target}
    if keep:
        out["keep"] = list(keep)
    if bypass:
        out["bypass"] = list(bypass)
    return out


def fanout_only(target: str, type_name: str = "dataspace") -> list[dict]:
    """Constraints of a dummy level: no temporal loops, nothing kept."""
    return [temporal(target, "CMRSNPQ", "C=1,M=1,R=1,S=1,N=1,P=1,Q=1"),
            dataspace(target, bypass=("Weights", "Inputs", "Outputs"), type_name=type_name)]


def timeloop_input(arch: dict, targets: list[dict]) -> dict:
    """The input dict handed to the loader."""
    return {"architecture": arch, "architecture_constraints": {"targets": targets}}
