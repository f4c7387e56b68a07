"""Parser for Timeloop's ``*.stats.txt`` (the model's and the mapper's summary output).

Extracted per storage level: cycles, leakage, and per tensor the utilized capacity and
instances, partition size and per-instance scalar reads / fills / updates; per compute
level: utilized instances, computes and cycles; the summary: cycles, utilization, total
computes and the ``fJ/Compute`` breakdown (from which per-level energies in pJ follow
exactly, even when Timeloop hides the per-tensor energy lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError

_TENSOR_HEADER = re.compile(r"^    (\w+):\s*$")
_KV = re.compile(r"^\s*([A-Za-z][^:]*?)\s*:\s*(.*?)\s*$")
_NUM = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?")

_TENSOR_FIELDS = {
    "Utilized capacity": "capacity",
    "Utilized instances (max)": "instances",
    "Partition size": "partition",
    "Scalar reads (per-instance)": "reads",
    "Scalar fills (per-instance)": "fills",
    "Scalar updates (per-instance)": "updates",
    "Energy (total)": "energy",
}


@dataclass
class TensorStats:
    capacity: float = 0.0
    instances: float = 0.0
    partition: float = 0.0
    reads: float = 0.0
    fills: float = 0.0
    updates: float = 0.0
    energy: float | None = None


@dataclass
class LevelStats:
    name: str
    is_compute: bool = False
    cycles: float | None = None
    leakage: float | None = None
    utilized_instances: float | None = None
    computes: float | None = None
    tensors: dict[str, TensorStats] = field(default_factory=dict)
    fj_per_compute: float | None = None
    """The level's share of the summary's fJ/Compute (access energy + leakage)."""


@dataclass
class TimeloopStats:
    levels: dict[str, LevelStats]
    cycles: int
    utilization: float
    computes: int
    fj_per_compute_total: float
    source: str

    @property
    def energy_pj(self) -> float:
        return self.fj_per_compute_total * self.computes / 1000.0

    def level_energy_pj(self, name: str) -> float:
        lvl = self.levels[name]
        return (lvl.fj_per_compute or 0.0) * self.computes / 1000.0


def _number(text: str) -> float | None:
    m = _NUM.match(text.strip())
    return float(m.group(0)) if m else None


def parse_stats(source: str | Path) -> TimeloopStats:
    """Parse a ``*.stats.txt`` file (or its text when it contains newlines)."""
    if isinstance(source, Path) or "\n" not in str(source):
        path = Path(source)
        if not path.exists():
            raise JaqmooError(f"{path}: Timeloop stats file not found")
        text, label = path.read_text(), str(path)
    else:
        text, label = str(source), "<stats>"

    levels: dict[str, LevelStats] = {}
    current: LevelStats | None = None
    tensor: TensorStats | None = None
    in_stats = False
    summary: dict[str, str] = {}
    fj: dict[str, float] = {}
    section = "levels"
    for line in text.splitlines():
        if line.startswith("=== ") and line.rstrip().endswith("==="):
            name = line.strip("= \n")
            if section == "levels":
                current = LevelStats(name)
                levels[name] = current
                tensor, in_stats = None, False
            continue
        if line.startswith("Networks") or line.startswith("Operational Intensity"):
            section = "tail"
            current = None
            continue
        if line.startswith("Summary Stats"):
            section = "summary"
            continue
        if section == "summary":
            if line.startswith("fJ/Compute"):
                section = "fj"
                continue
            m = re.match(r"^(\w[\w /()@]*?)\s*[:=]\s*(.+)$", line.strip())
            if m:
                summary[m.group(1).strip()] = m.group(2).strip()
            continue
        if section == "fj":
            m = re.match(r"^\s+(\S+)\s*=\s*([-\d.eE+]+)", line)
            if m:
                fj[m.group(1)] = float(m.group(2))
            continue
        if current is None or section != "levels":
            continue
        if line.strip() == "STATS":
            in_stats = True
            continue
        if line.strip() in ("SPECS", "MAPPING"):
            in_stats = False
            continue
        kv = _KV.match(line)
        if not in_stats:
            if kv and kv.group(1) == "Leakage energy (total)":
                current.leakage = _number(kv.group(2))
            if kv and kv.group(1) == "Compute energy":
                current.is_compute = True
            continue
        th = _TENSOR_HEADER.match(line)
        if th:
            tensor = TensorStats()
            current.tensors[th.group(1)] = tensor
            continue
        if not kv:
            continue
        key, value = kv.group(1), kv.group(2)
        if tensor is not None and key in _TENSOR_FIELDS:
            setattr(tensor, _TENSOR_FIELDS[key], _number(value))
        elif key == "Cycles":
            current.cycles = _number(value)
        elif key == "Utilized instances":
            current.utilized_instances = _number(value)
        elif key == "Computes (total)":
            current.computes = _number(value)

    for name, value in fj.items():
        if name in levels:
            levels[name].fj_per_compute = value
    try:
        cycles = int(float(summary["Cycles"]))
        utilization = float(summary["Utilization"].rstrip("%")) / 100.0
        computes = int(float(summary["Computes"]))
        total = fj["Total"]
    except (KeyError, ValueError) as exc:
        raise JaqmooError(f"{label}: not a complete Timeloop stats file (missing {exc})") from exc
    return TimeloopStats(levels, cycles, utilization, computes, total, label)
