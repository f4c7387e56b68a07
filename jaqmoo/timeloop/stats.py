"""Parser for Timeloop's ``*.stats.txt`` (the model's and the mapper's summary output).

Extracted per storage level: cycles, leakage, and per tensor the utilized capacity and
instances, partition size and per-instance scalar reads / fills / updates; per compute
level: utilized instances, computes and cycles; the summary: cycles, utilization, total
computes and the ``fJ/Compute`` breakdown (from which per-level energies in pJ follow
exactly, even when Timeloop hides the per-tensor energy lines).

The Klhufek et al. mixed-precision fork's dialect is read too: its summary in ``pJ/Compute``
(stored here in fJ like the v0.4 one), per tensor ``Data operands per word``, ``Wasted bits
per word`` and ``Wasted bits per data storage due to fragmentation``; its counts are in packed
words. ``TimeloopStats.dialect`` says which dialect the file is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.strict import malformed_input, number
from jaqmoo.textfile import read_utf8

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
    "Data operands per word": "operands_per_word",
    "Wasted bits per word": "wasted_bits_per_word",
    "Wasted bits per data storage due to fragmentation": "wasted_bits_storage",
}
_SPEC_FIELDS = {
    "Vector access energy": "vector_access_energy",
    "Compute energy": "compute_energy",
    "Block size": "block_size",
    "Word bits": "word_bits",
    "Cluster size": "cluster_size",
    "Size": "size",
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
    operands_per_word: float | None = None
    """The fork's packing: values of this tensor per word of the level (None: plain Timeloop)."""
    wasted_bits_per_word: float | None = None
    wasted_bits_storage: float | None = None
    """Wasted bits of the tensor's whole tile due to fragmentation (the fork's report)."""


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
    vector_access_energy: float | None = None
    """SPECS: pJ per vector access (Timeloop prints the largest action's, 2 decimals)."""
    compute_energy: float | None = None
    """SPECS of a compute level: pJ per compute (2 decimals)."""
    energy: float | None = None
    """STATS of a compute level: its total energy (pJ)."""
    block_size: float | None = None
    word_bits: float | None = None
    cluster_size: float | None = None
    size: float | None = None


@dataclass
class TimeloopStats:
    levels: dict[str, LevelStats]
    cycles: int
    utilization: float
    computes: int
    fj_per_compute_total: float
    source: str
    dialect: str = "v0.4"
    """``v0.4`` (Timeloop 0.4: fJ/Compute, no packing report) or ``fork`` (the Klhufek et al.
    mixed-precision fork: pJ/Compute summary, per-tensor data operands per word)."""

    @property
    def energy_pj(self) -> float:
        """Total energy (pJ). The fork prints its summary in pJ/Compute with two decimals (up
        to 0.3 % off), so there the sum of the per-level energies is used instead."""
        if self.dialect == "fork":
            return sum(self.level_energy_pj(name) for name in self.levels)
        return self.fj_per_compute_total * self.computes / 1000.0

    def level_energy_pj(self, name: str) -> float:
        """A level's energy (pJ): its fJ/Compute share; in the fork dialect the sum of its
        per-tensor ``Energy (total)`` lines (or a compute level's own), which are exact."""
        lvl = self.levels[name]
        if self.dialect == "fork":
            if lvl.is_compute and lvl.energy is not None:
                return lvl.energy
            if all(t.energy is not None for t in lvl.tensors.values()):
                return sum(t.energy for t in lvl.tensors.values())
        return (lvl.fj_per_compute or 0.0) * self.computes / 1000.0


def _number(text: str) -> float | None:
    m = _NUM.match(text.strip())
    return float(number(m.group(0), "a stats.txt value", text=True)) if m else None  # finite, never inf


def parse_stats(source: str | Path) -> TimeloopStats:
    """Parse a ``*.stats.txt`` file (or its text when it contains newlines)."""
    if isinstance(source, Path) or "\n" not in str(source):
        path = Path(source)
        if not path.exists():
            raise JaqmooError(f"{path}: Timeloop stats file not found")
        text, label = read_utf8(path, "a Timeloop stats.txt file"), str(path)
    else:
        text, label = str(source), "<stats>"
    with malformed_input(label, "Timeloop stats file"):
        return _parse_stats_text(text, label)


def _parse_stats_text(text: str, label: str) -> TimeloopStats:

    levels: dict[str, LevelStats] = {}
    current: LevelStats | None = None
    tensor: TensorStats | None = None
    in_stats = False
    summary: dict[str, str] = {}
    fj: dict[str, float] = {}
    section = "levels"
    per_compute_scale = 1.0
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
            if line.startswith("fJ/Compute") or line.startswith("pJ/Compute"):
                section = "fj"
                per_compute_scale = 1000.0 if line.startswith("pJ") else 1.0
                continue
            m = re.match(r"^(\w[\w /()@]*?)\s*[:=]\s*(.+)$", line.strip())
            if m:
                summary[m.group(1).strip()] = m.group(2).strip()
            continue
        if section == "fj":
            m = re.match(r"^\s+(\S+)\s*=\s*([-\d.eE+]+)", line)
            if m:
                fj[m.group(1)] = float(number(m.group(2), f"{label}: {m.group(1)}", text=True)) * per_compute_scale
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
            if kv and kv.group(1) in _SPEC_FIELDS:
                setattr(current, _SPEC_FIELDS[kv.group(1)], _number(kv.group(2)))
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
        elif key == "Energy (total)" and tensor is None:
            current.energy = _number(value)

    for name, value in fj.items():
        if name in levels:
            levels[name].fj_per_compute = value
    try:
        cycles = number(summary["Cycles"], f"{label}: Cycles", lo=0, integer=True, text=True)
        util_text = summary["Utilization"]
        utilization = number(util_text.rstrip("%"), f"{label}: Utilization", lo=0, text=True) / (
            100.0 if util_text.endswith("%") else 1.0)
        computes = number(summary["Computes"], f"{label}: Computes", lo=0, integer=True, text=True)
        total = fj["Total"]
    except (KeyError, ValueError) as exc:
        raise JaqmooError(f"{label}: not a complete Timeloop stats file (missing {exc})") from exc
    packed = any(t.operands_per_word is not None for lvl in levels.values() for t in lvl.tensors.values())
    dialect = "fork" if packed or per_compute_scale != 1.0 else "v0.4"
    return TimeloopStats(levels, cycles, utilization, computes, total, label, dialect)
