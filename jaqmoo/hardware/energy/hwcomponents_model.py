"""Energies and areas from the optional ``hwcomponents`` package (Accelergy's successor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.energy.builtin import dummy_estimate
from jaqmoo.hardware.energy.components import ComponentEstimate, component_kind, parse_technology

_HWC_NAMES = {"dram": "DRAM", "sram": "SRAM", "regfile": "regfile",
              "register": "aladdin_register", "intmac": "intmac"}
"""Generic component names tried when hwcomponents has no model for the design's class."""


def hwcomponents_available() -> bool:
    """True when the optional ``hwcomponents`` package (Python >= 3.12) is importable."""
    try:
        import hwcomponents  # noqa: F401
    except ImportError:
        return False
    return True


def _si_value(estimation: Any) -> float:
    return float(getattr(estimation, "value", estimation))


def hwcomponents_estimate(klass: str, attributes: Mapping[str, Any], *,
                          subclass: str | None = None, technology: Any = None,
                          cycle_seconds: float = 1e-9) -> ComponentEstimate | None:
    """Energies/area from ``hwcomponents`` (Accelergy's successor), or None when none of its
    installed models covers the component. hwcomponents works in SI units (J, m^2, W): they
    are converted to pJ per action, um^2 and pJ of leakage per cycle of ``cycle_seconds``.
    Raises JaqmooError when the package is not installed.
    """
    try:
        import hwcomponents
    except ImportError:
        raise JaqmooError("energy model 'hwcomponents': the package is not installed (it needs "
                          "Python >= 3.12); use the built-in tables or install it") from None
    kind = component_kind(klass, subclass)
    if kind == "dummy":
        return dummy_estimate()
    attrs = dict(attributes)
    node = parse_technology(attrs.get("technology")) or parse_technology(technology)
    if node is not None:
        attrs["technology"] = f"{node}nm"
    actions = ("compute",) if kind == "intmac" else ("read", "write")
    for name in dict.fromkeys((subclass or klass, _HWC_NAMES[kind])):
        try:
            energies = [(a, _si_value(hwcomponents.get_energy(name, attrs, a, {})) * 1e12)
                        for a in actions]
            area = _si_value(hwcomponents.get_area(name, attrs)) * 1e12
            leak = _si_value(hwcomponents.get_leak_power(name, attrs)) * cycle_seconds * 1e12
        except Exception:  # noqa: BLE001 - any model failure means "not covered"
            continue
        if kind != "intmac":
            energies.append(("update", energies[1][1]))
        energies.append(("leak", leak))
        return ComponentEstimate(kind, tuple(energies), area, node, f"hwcomponents ({name})")
    return None


__all__ = ["hwcomponents_available", "hwcomponents_estimate"]
