"""The README.md of a Timeloop export folder: what each layer folder holds, how to run
``timeloop-model`` on it and compare with ``jaqmoo timeloop check``, and a table of jaqmoo's
figures per layer (see :mod:`jaqmoo.timeloop.export`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jaqmoo.hardware.spec import Accelerator
from jaqmoo.timeloop.check import JAQMOO_STATS

_DIALECT_TEXT = {
    "v0.4": ("Timeloop v0.4. Timeloop 0.4 has no per-tensor bit-widths: every tensor is stored at each level's "
             "word bits (`datawidth`), so `jaqmoo.stats.txt` counts the layer at those widths too. The point's own "
             "bits are in the table below; export with `--dialect fork` to give them to the Klhufek et al. "
             "mixed-precision fork."),
    "fork": ("the Klhufek et al. mixed-precision Timeloop fork (the seed paper's tool): "
             "the architecture in its `version: 0.3` keys (`word-bits`, `block-size`), the problem with its "
             "`bitwidths: {Inputs, Weights, Outputs}` extension, and `jaqmoo.stats.txt` in its stats dialect "
             "(packed words, data operands per word, `pJ/Compute`), counted under the fork's conventions "
             "(no leakage, so the ERT has no `leak` actions)."),
}


def _bits(bits: tuple[int, int, int] | None) -> str:
    return "word bits" if bits is None else "/".join(str(b) for b in bits)


def readme_text(layers: Sequence[Any], accel: Accelerator, dialect: str, title: str, source: str,
                input_files: Sequence[str]) -> str:
    """The README of an export (``layers``: :class:`jaqmoo.timeloop.export.LayerExport` items)."""
    files = " ".join(input_files)
    first = layers[0].folder.name
    lines = [f"# Timeloop export: {title}", ""]
    if source:
        lines += [f"Written by `{source}`.", ""]
    lines += [f"Dialect: {_DIALECT_TEXT[dialect]}", "",
              f"Accelerator `{accel.name}` ({len(accel.levels)} storage levels, {accel.compute.instances} MACs); "
              f"energies: {accel.energy_source or 'not recorded'}.", "",
              "## Files (one folder per layer)", "",
              "| file | what |", "| --- | --- |",
              "| `arch.yaml` | the architecture (flattened: every level with its instances, mesh and word bits) |",
              "| `problem.yaml` | the layer (`CNN-Layer` shape; jaqmoo's `K` is `M`; grouped layers add `G`) |",
              "| `map.yaml` | jaqmoo's chosen mapping: per level its temporal loops, the spatial fan-out below it and "
              "which tensors it keeps |",
              "| `constraints.yaml` | the accelerator's mapspace constraints (for `timeloop-mapper`) |",
              "| `jaqmoo.ERT.yaml`, `jaqmoo.ART.yaml` | the per-action energies (pJ) and areas (um^2) jaqmoo used; "
              "given with the inputs, Timeloop uses them instead of calling Accelergy |",
              f"| `{JAQMOO_STATS}` | jaqmoo's figures for these files in Timeloop's stats format |", "",
              "## Run Timeloop and compare", "",
              "In one layer's folder:", "", "```sh", f"cd {first}", f"timeloop-model {files}",
              "jaqmoo timeloop check .", "```", "",
              "`timeloop-model` writes `timeloop-model.stats.txt` beside the inputs; `jaqmoo timeloop check` then "
              "evaluates `map.yaml` on these files with jaqmoo's model and prints every level's reads, fills and "
              "updates, the energies and the cycles beside Timeloop's (exit status 1 on a mismatch). Before "
              f"Timeloop has run, it compares with `{JAQMOO_STATS}` instead. Every layer:", "", "```sh",
              "for d in */; do", f"  (cd \"$d\" && timeloop-model {files} > timeloop-model.log) && jaqmoo timeloop check \"$d\"",
              "done", "```", "",
              "`diff` of `jaqmoo.stats.txt` and `timeloop-model.stats.txt` shows the same figures by eye; "
              "`timeloop-mapper arch.yaml problem.yaml constraints.yaml jaqmoo.ERT.yaml` (with a `mapper:` "
              "section) searches the same constrained mapspace.", "",
              "## Layers", "",
              "Energy in uJ. *This export*: jaqmoo's figures for the files as written (the stats file); "
              "*jaqmoo*: the layer under jaqmoo's own convention, as `jaqmoo cost` and the search report it "
              "(bit-packing into physical words, partial sums at accumulator width, a bit-flexible MAC).", "",
              "| folder | layer | bits w/in/out | MACs | mapping | energy (this export) | cycles | utilization "
              "| energy (jaqmoo) | cycles (jaqmoo) |",
              "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for lx in layers:
        fits = "" if lx.feasible else " (does not fit at these bits)"
        lines.append(f"| `{lx.folder.name}` | {lx.layer.name.replace('|', '/')} | {_bits(lx.bits)} | {lx.layer.macs} | `{lx.mapping}` "
                     f"| {float(lx.costs.energy[0]) * 1e-6:.4f}{fits} | {int(lx.costs.cycles[0])} "
                     f"| {float(lx.costs.utilization[0]):.2%} | {lx.search_energy_pj * 1e-6:.4f} | {lx.search_cycles} |")
    unfit = [lx.layer.name for lx in layers if not lx.feasible]
    if unfit:
        lines += ["", f"Does not fit at the written bits: {', '.join(unfit)} (a mapping chosen at the point's bits "
                  "can overflow a buffer at the levels' wider word bits; Timeloop will reject it; use "
                  "`--dialect fork`)."]
    return "\n".join(lines) + "\n"


__all__ = ["readme_text"]
