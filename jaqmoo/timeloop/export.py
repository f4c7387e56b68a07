"""Timeloop files out: a network's layers, each with its chosen mapping, as Timeloop inputs plus
jaqmoo's own figures in Timeloop's stats format (``jaqmoo cost --timeloop DIR``, ``jaqmoo
export RUN --point K --timeloop DIR``).

``DIR`` gets one folder per layer (``00-<layer>``, ``01-<layer>``...) holding

* ``arch.yaml`` -- the architecture (:mod:`jaqmoo.timeloop.arch_out`);
* ``problem.yaml`` -- the layer (:mod:`jaqmoo.timeloop.problem_out`; the fork's ``bitwidths``
  under ``dialect="fork"``);
* ``constraints.yaml`` -- the accelerator's mapspace constraints (for ``timeloop-mapper``);
* ``map.yaml`` -- the chosen mapping (:mod:`jaqmoo.timeloop.mapping_out`);
* ``jaqmoo.ERT.yaml`` / ``jaqmoo.ART.yaml`` -- the per-action energies and areas jaqmoo used;
* ``jaqmoo.stats.txt`` -- jaqmoo's figures for those files (:mod:`jaqmoo.timeloop.stats_out`);

and ``README.md`` says how to run ``timeloop-model`` on each folder and compare with ``jaqmoo
timeloop check`` (which reads the folder with jaqmoo's readers and, once Timeloop has written
its ``timeloop-model.stats.txt`` there, compares with that rather than ``jaqmoo.stats.txt``).

The stats are computed from the files as written, read back: the layer at the problem's
bit-widths under the dialect's counting convention (``v0.4``: every tensor at each level's
word bits, Timeloop 0.4 knows no per-tensor bits; ``fork``: the fork's packing at the
``bitwidths``). The figures of jaqmoo's own convention (the search's and ``jaqmoo cost``'s:
bit-packing into physical words, partial sums at accumulator width, a bit-flexible MAC) are in
the README's table beside them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import Accelerator
from jaqmoo.mapping.mapping import MappingBatch, describe
from jaqmoo.mapping.model import Costs, evaluate
from jaqmoo.safe_write import atomic_write_text
from jaqmoo.timeloop.arch_out import architecture_dict, constraints_dict, energy_tables
from jaqmoo.timeloop.check import JAQMOO_STATS
from jaqmoo.timeloop.inputs import TimeloopInput, load_timeloop_input
from jaqmoo.timeloop.mapping_out import mapping_directives
from jaqmoo.timeloop.problem_out import check_dialect, dim_names, problem_dict
from jaqmoo.timeloop.readme_out import readme_text
from jaqmoo.timeloop.stats_out import stats_text
from jaqmoo.workload import Layer

INPUT_FILES = ("arch.yaml", "problem.yaml", "map.yaml", "jaqmoo.ERT.yaml", "jaqmoo.ART.yaml")
"""The files ``timeloop-model`` is given, in this order (``constraints.yaml`` is for the mapper)."""


@dataclass(frozen=True)
class LayerChoice:
    """One layer to export: its shape, bits (weight, input, output; None: the levels' word
    bits) and chosen mapping (a batch of one)."""

    layer: Layer
    bits: tuple[int, int, int] | None
    mapping: MappingBatch


@dataclass
class LayerExport:
    """What was written for one layer, and the figures of its stats file."""

    folder: Path
    layer: Layer
    bits: tuple[int, int, int] | None
    mapping: str
    """The mapping in one line, outermost level first."""
    costs: Costs
    """jaqmoo's costs of the written files (the stats file's figures)."""
    search_energy_pj: float
    """The layer's energy under jaqmoo's own convention (as ``jaqmoo cost`` and the search report it)."""
    search_cycles: int

    @property
    def feasible(self) -> bool:
        """The mapping fits every buffer at the written files' bits."""
        return bool(self.costs.feasible[0])


def folder_name(index: int, layer_name: str) -> str:
    """``03-features_3``: the layer's position and its name in file-name-safe characters."""
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '_', layer_name).strip('_') or 'layer'}"


def dump_yaml(path: Path, data: dict, header: str) -> Path:
    """Write ``data`` as plain YAML (no tags, no aliases) after a comment ``header``, atomically."""

    class _NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:
            return True

    text = yaml.dump(data, Dumper=_NoAliases, sort_keys=False, default_flow_style=False)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return atomic_write_text(path, comment + text, f"the Timeloop file {path.name} of")


def written_input(folder: Path, dialect: str) -> TimeloopInput:
    """The folder's files read back by jaqmoo's readers, under the dialect's counting convention."""
    tl = load_timeloop_input(folder)
    if dialect == "fork":
        tl = dataclasses.replace(tl, accelerator=dataclasses.replace(tl.accelerator, convention="fork"))
    return tl


def write_layer(folder: str | Path, accel: Accelerator, choice: LayerChoice, dialect: str = "v0.4",
                header: str = "") -> LayerExport:
    """Write one layer's Timeloop folder (see the module doc) and return its figures."""
    check_dialect(dialect)
    folder = Path(folder)
    layer, bits, batch = choice.layer, choice.bits, choice.mapping
    if len(batch) != 1:
        raise JaqmooError(f"layer {layer.name!r}: give one mapping to export (got {len(batch)})")
    batch.check(layer)
    names = dim_names(layer)
    head = header or f"layer {layer.name}"
    ert, art = energy_tables(accel, leakage=dialect != "fork")
    dump_yaml(folder / "arch.yaml", {"architecture": architecture_dict(accel, dialect)}, head)
    dump_yaml(folder / "problem.yaml", {"problem": problem_dict(layer, bits, dialect)}, head)
    dump_yaml(folder / "constraints.yaml", constraints_dict(accel, names, dialect), head)
    dump_yaml(folder / "map.yaml", {"mapping": mapping_directives(batch, accel, names, 0, dialect, layer.name)}, head)
    dump_yaml(folder / "jaqmoo.ERT.yaml", ert, head + "\nper-action energies (pJ) jaqmoo used: " + accel.energy_source)
    dump_yaml(folder / "jaqmoo.ART.yaml", art, head)
    tl = written_input(folder, dialect)
    if tl.mapping is None or tl.problem is None:
        raise JaqmooError(f"{folder}: the written files did not read back as a problem with a mapping")
    costs = evaluate(tl.problem, tl.accelerator, tl.mapping, tl.bits)
    atomic_write_text(folder / JAQMOO_STATS, stats_text(tl.accelerator, costs, dialect,
                                                        f"{head}: jaqmoo's figures for these files"),
                      "jaqmoo's stats of")
    own = evaluate(layer, accel, batch, bits)
    return LayerExport(folder, layer, bits, describe(batch, 0, tuple(lvl.name for lvl in accel.levels)), costs,
                       float(own.energy[0]), int(own.cycles[0]))


def choices_of(layer_costs: Sequence[Any]) -> list[LayerChoice]:
    """The :class:`LayerChoice` of every layer of a :class:`~jaqmoo.cost.NetworkCost`'s ``layers``
    (each keeps its layer and its chosen mapping)."""
    out = []
    for lc in layer_costs:
        if getattr(lc, "problem", None) is None or getattr(lc, "mapping_batch", None) is None:
            raise JaqmooError(f"layer {lc.name!r}: its cost keeps no mapping to export")
        out.append(LayerChoice(lc.problem, lc.bits, lc.mapping_batch))
    return out


def export_network(out_dir: str | Path, accel: Accelerator, choices: Sequence[LayerChoice], dialect: str = "v0.4",
                   title: str = "", source: str = "") -> list[LayerExport]:
    """Write every layer of ``choices`` into ``out_dir`` (new or empty) and its README.

    ``title`` heads the README and every file; ``source`` is the command or run it came from."""
    check_dialect(dialect)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise JaqmooError(f"--timeloop {out}: not a new or empty folder; give a new one (or remove the old export)")
    if not choices:
        raise JaqmooError("--timeloop: nothing to export (the network has no costed layer)")
    title = title or f"{len(choices)} layers on {accel.name}"
    written = [write_layer(out / folder_name(i, c.layer.name), accel, c, dialect, f"{title}: layer {c.layer.name}")
               for i, c in enumerate(choices)]
    atomic_write_text(out / "README.md", readme_text(written, accel, dialect, title, source, INPUT_FILES),
                      "the export's README")
    return written


__all__ = ["INPUT_FILES", "LayerChoice", "choices_of", "LayerExport", "dump_yaml", "export_network", "folder_name", "write_layer",
           "written_input"]
