"""What every energy source shares: the per-component estimate and reading a Timeloop
component's class and technology node."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jaqmoo.errors import JaqmooError


@dataclass(frozen=True)
class ComponentEstimate:
    """Per-action energies (pJ; ``leak`` per cycle) and area of one component instance."""

    kind: str
    energies: tuple[tuple[str, float], ...]
    area_um2: float
    node_nm: int | None
    source: str

    def energy(self, action: str) -> float:
        """Energy of ``action`` in pJ (0.0 for an action the component does not have)."""
        return dict(self.energies).get(action, 0.0)

    def as_dict(self) -> dict[str, float]:
        """``{action: pJ}``."""
        return dict(self.energies)


# --------------------------------------------------------------------------- parsing helpers


def parse_technology(value: Any) -> int | None:
    """Technology node in nm from ``"45nm"``, ``"45 nm"``, ``45``, ``45e-9``; None if unset.

    Timeloop files use placeholders (``"SET ME"``, ``"must_specify"``, ``-1`` on dummies):
    they mean "not given here" and return None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value <= 0:
            return None
        nm = value * 1e9 if value < 1e-3 else value
        return int(round(nm))
    text = str(value).strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(nm)?", text)
    if m:
        return int(round(float(m.group(1))))
    m = re.fullmatch(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", text)
    if m:
        return parse_technology(float(m.group(1)))
    return None


def component_kind(klass: str, subclass: str | None = None) -> str:
    """Map a Timeloop/Accelergy component class onto a table kind (see ``KINDS``).

    ``class: storage`` with a ``subclass`` (the v0.3 style still found in v0.4 dumps) uses the
    subclass. Raises JaqmooError for a class no table covers.
    """
    name = (subclass if str(klass).lower() == "storage" and subclass else klass) or ""
    low = str(name).lower()
    if low == "dram" or low.endswith("dram"):
        return "dram"
    if "dummy" in low:
        return "dummy"
    if "sram" in low:
        return "sram"
    if low == "reg_storage" or "regfile" in low or "register" in low or re.search(
            r"(^|_)rf($|_)", low):
        return "regfile"
    if low in ("intmac", "mac", "lmac") or low.endswith("intmac"):
        return "intmac"
    raise JaqmooError(
        f"component class {name!r}: no built-in energy table for it (built-in kinds: DRAM, "
        "SRAM/smartbuffer_SRAM, regfile/smartbuffer_RF/reg_storage/aladdin_register, intmac, "
        "dummy_storage); "
        "give an Accelergy ERT/ART for this design or use one of those classes")


__all__ = ["ComponentEstimate", "component_kind", "parse_technology"]
