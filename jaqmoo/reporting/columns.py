"""The column dictionary: every column jaqmoo writes to ``front.csv`` / ``evaluations.csv``
(and their Parquet twins), ``history.csv``, a sweep's ``fronts.csv`` and ``summary.csv``, with its unit and
meaning. One table, read by ``jaqmoo columns`` (and ``--markdown``, which writes
``docs/columns.md``), checked by a test against the columns of real run folders.

Costs are per inference of one input (batch 1) on the accelerator; accuracies are fractions
in [0, 1] (0.951 = 95.1 %), top-1 on the supernet's validation images.

Every cost column carries its unit in its name. The results store (``evaluations.jsonl``) keeps
the cost model's record keys; :func:`with_unit_names` gives the columns their output names
(``cycles`` -> ``latency_cycles``, ``edp`` -> ``edp_pj_cycles``, ``energy.<level>`` ->
``energy_pj.<level>``), for a fresh run and for files written before the rename alike
(a sweep's old ``fronts.csv``), so old run folders open, export, plot and resume unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

#: which file a column appears in
RUN = "front.csv, evaluations.csv"
SWEEP_FRONTS = "fronts.csv (sweep)"
SWEEP_SUMMARY = "summary.csv (sweep)"
HISTORY = "history.csv"


#: record key (and the column name of files written before the rename) -> output column
RENAMED: dict[str, str] = {"cycles": "latency_cycles", "edp": "edp_pj_cycles"}
#: record key prefix -> output column prefix
RENAMED_PREFIXES: dict[str, str] = {"energy.": "energy_pj."}


def unit_name(name: str) -> str:
    """The output column of record key (or old column name) ``name``; other names unchanged."""
    if name in RENAMED:
        return RENAMED[name]
    for old, new in RENAMED_PREFIXES.items():
        if name.startswith(old):
            return new + name[len(old):]
    return name


def with_unit_names(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its columns under their output names (:func:`unit_name`)."""
    names = {c: unit_name(str(c)) for c in df.columns}
    return df.rename(columns=names) if any(k != v for k, v in names.items()) else df


@dataclass(frozen=True)
class Column:
    """One column (or a family: ``<layer>``, ``<level>`` ... stand for any name)."""

    name: str
    unit: str
    meaning: str
    files: str = RUN

    @property
    def pattern(self) -> re.Pattern:
        """A regex matching the column names this entry describes."""
        parts = re.split(r"(<[a-z]+>)", self.name)
        return re.compile("".join(".+" if p.startswith("<") else re.escape(p) for p in parts if p) + r"\Z")


COLUMNS: tuple[Column, ...] = (
    # --- where an individual comes from
    Column("point", "-", "front.csv: the point's number K on the front (0 = best first objective); "
                         "`jaqmoo export RUN --point K --bits-file F` exports it, the report's table shows it",
           f"front.csv, {SWEEP_FRONTS}"),
    Column("gen", "-", "generation in which the individual was evaluated (1 = the first population, which holds "
                       "the uniform-bit seeds)"),
    Column("idx", "-", "its index within that generation; (gen, idx) names an individual in evaluations.jsonl"),
    Column("on_front", "true/false", "on the Pareto front of the valid individuals (under accuracy_rescored when "
                                     "the front was re-scored)"),
    Column("on_search_front", "true/false", "on the front the search itself saw (predicted accuracy); only when "
                                            "the front was re-scored"),
    Column("valid", "true/false", "feasible and within the spec's constraints (accuracy, area)"),
    Column("feasible", "true/false", "every layer found a mapping that fits the buffers (and word widths)"),
    Column("reason", "text", "why an individual is infeasible (empty when feasible)"),
    # --- objectives and metrics
    Column("accuracy", "fraction 0-1", "top-1 accuracy from the search's estimator (the supernet, or the "
                                       "predictor when accuracy.estimator is predictor)"),
    Column("accuracy_rescored", "fraction 0-1", "the supernet's accuracy of a predictor run's best individuals, "
                                                "measured after the search (empty for the others)"),
    Column("energy_pj", "pJ", "energy of one inference on the accelerator (sum of energy_pj.<level>)"),
    Column("latency_cycles", "cycles", "latency of one inference in accelerator clock cycles (the max over compute and "
                               "each level's bandwidth, summed over layers)"),
    Column("latency_s", "s", "latency_cycles times the accelerator's cycle time (1 ns for the templates)"),
    Column("edp_pj_cycles", "pJ x cycles", "energy-delay product: energy_pj x latency_cycles (objective edp)"),
    Column("memory_bits", "bit", "the memory objective: weight_memory_bits + activation_memory_bits"),
    Column("weight_memory_bits", "bit", "all weights at their bits, bit-packed into the weight level's words"),
    Column("activation_memory_bits", "bit", "peak activation storage: the largest (input + output) of a layer "
                                            "at its bits, bit-packed"),
    Column("area_mm2", "mm²", "accelerator area from the energy/area tables (empty when they carry none)"),
    Column("mean_w_bits", "bit", "mean weight bits over the layers (report only)"),
    Column("mean_a_bits", "bit", "mean activation bits over the layers (report only)"),
    # --- hardware, energy per level, per layer
    Column("hw.pe_x", "PEs", "PE columns of the array (mesh X)"),
    Column("hw.pe_y", "PEs", "PEs per column of the array (mesh Y)"),
    Column("hw.technology", "nm", "technology node of the energy tables"),
    Column("hw.<level>_depth", "words", "depth of a storage level (global buffer, scratchpad...) in words of "
                                        "hw.<level>_width bits"),
    Column("hw.<level>_width", "bit", "word width of a storage level (or of DRAM accesses)"),
    Column("hw.<level>_bandwidth", "words/cycle", "read/write bandwidth of a storage level"),
    Column("hw.datawidth", "bit", "the design's bits per weight / activation value (the 8-bit baseline)"),
    Column("hw.psum_datawidth", "bit", "bits per partial sum at the levels still reducing outputs"),
    Column("hw.<param>", "the parameter's (see `jaqmoo cost --help` / template docs)",
           "a hardware parameter of the individual's accelerator: searched genes and held-fixed values, e.g. "
           "hw.pe_x (PEs per row), hw.glb_depth (global-buffer words), hw.<level>_depth (words of that level)"),
    Column("energy_pj.<level>", "pJ", "energy of one inference spent in one storage level (reads, fills, updates, "
                                   "leakage) or in compute (mac)"),
    Column("w.<layer>", "bit", "weight bits of a layer"),
    Column("a.<layer>", "bit", "activation (input) bits of a layer"),
    Column("map.<layer>", "text", "the layer's mapping, outermost level first: LEVEL[temporal factors] and "
                                  "X[...] / Y[...] spatial fan-out, e.g. DRAM[Q8] shared_glb[P8] Y[S3]"),
    Column("mapgene.<layer>", "index", "outer mapping mode: index of the layer's mapping in its candidate list"),
    # --- architecture search (model.elastic)
    Column("architecture", "text", "an elastic search's sub-network in one line: depth per stage, expand ratio "
                                   "and kernel per block (0 = the block does not run)"),
    Column("depth_s<i>", "blocks", "blocks run in stage i"),
    Column("expand_b<j>", "ratio", "expand ratio of block j (0 = the block does not run)"),
    Column("kernel_b<j>", "pixels", "depthwise kernel size of block j (0 = the block does not run)"),
    Column("macs", "MAC", "multiply-accumulates of one inference of the sub-network"),
    Column("params", "-", "parameters (weights) of the sub-network"),
    # --- the genome
    Column("genes", "indices", "the genome, space-separated: each gene is an index into its choices; "
                               "architecture genes, then weight and activation bits per free layer (not held by "
                               "quantization.fixed_layers), mapping genes, hardware genes; meta.json's gene_names "
                               "names them"),
    # --- history.csv: one row per generation
    Column("generation", "-", "the generation just completed", HISTORY),
    Column("front_size", "points", "individuals on the valid front after it (summary.csv: on the run's final front)",
           f"{HISTORY}, {SWEEP_SUMMARY}"),
    Column("hypervolume", "-", "history.csv: hypervolume of the valid front in the run's own scale (each objective "
                               "in minimisation form divided by its largest value in the first generation, "
                               "reference point 1.1 per objective; can exceed 1; compares generations of one run). "
                               "summary.csv: the run's final front in the sweep's one normalisation (objectives "
                               "min-max scaled over every run's front and baselines, reference point 1.1; compares "
                               "the runs of one sweep). The two are not comparable with each other",
           f"{HISTORY}, {SWEEP_SUMMARY}"),
    Column("best_<objective>", "the objective's (accuracy fraction 0-1, energy pJ, latency s, memory bit, "
                               "edp pJ x cycles, area mm²)", "best value of that objective on the front so far",
           HISTORY),
    # --- sweep: combined fronts
    Column("run", "text", "the run's name (its folder is runs/<run>)", f"{SWEEP_FRONTS}, {SWEEP_SUMMARY}"),
    Column("<axis>", "the axis'", "the value of each sweep axis (model, accelerator, seed or a dotted spec key)",
           f"{SWEEP_FRONTS}, {SWEEP_SUMMARY}"),
    # --- sweep summary
    Column("status", "text", "done, failed, interrupted or pending", SWEEP_SUMMARY),
    Column("error", "text", "a failed run's error (its traceback is in runs/<run>/sweep_run.json)", SWEEP_SUMMARY),
    Column("warning", "text", "the run's accuracy warnings (meaningless accuracy, see meta.json's "
                              "accuracy_warnings); empty when none", SWEEP_SUMMARY),
    Column("evaluations", "individuals", "individuals evaluated (history.csv: so far; summary.csv: by the run)",
           f"{HISTORY}, {SWEEP_SUMMARY}"),
    Column("uniform8_accuracy", "fraction 0-1", "accuracy of uniform 8-bit (re-scored when the front was)",
           SWEEP_SUMMARY),
    Column("uniform8_energy_pj", "pJ", "energy of one inference at uniform 8 bits, default hardware", SWEEP_SUMMARY),
    Column("best_energy_pj", "pJ", "lowest front energy among points within accuracy_tolerance of uniform 8-bit",
           SWEEP_SUMMARY),
    Column("energy_ratio_vs_8bit", "x", "uniform8_energy_pj / best_energy_pj (empty when no point qualifies)",
           SWEEP_SUMMARY),
    Column("wall_seconds", "s", "the run's wall time", SWEEP_SUMMARY),
    Column("attempts", "-", "how many times the run was started (a lost worker's run is resumed)", SWEEP_SUMMARY),
    Column("supernet", "text", "the key of the supernet the run used (runs sharing it trained it once)",
           SWEEP_SUMMARY),
    Column("energy_source", "text", "where per-action energies come from: a built-in table (and its node) or an "
                                    "Accelergy ERT file", SWEEP_SUMMARY),
    Column("technology_nm", "nm", "technology node of the energy tables", SWEEP_SUMMARY),
    Column("template", "text", "accelerator template, or timeloop:<folder>", SWEEP_SUMMARY),
    Column("objectives", "text", "the run's objectives, ;-separated", SWEEP_SUMMARY),
    Column("run_dir", "path", "the run's folder, relative to the sweep folder", SWEEP_SUMMARY),
)


def describe_column(name: str, columns: tuple[Column, ...] = COLUMNS) -> Column | None:
    """The dictionary entry of column ``name`` (exact names before families); None if unknown."""
    for col in columns:
        if "<" not in col.name and col.name == name:
            return col
    for col in columns:
        if "<" in col.name and col.name != "<axis>" and col.pattern.match(name):
            return col
    return None


def unknown_columns(names: list[str], axes: tuple[str, ...] = ()) -> list[str]:
    """The names among ``names`` that the dictionary does not describe (``axes``: a sweep's axis
    columns, described by the ``<axis>`` entry)."""
    return [n for n in names if n not in axes and describe_column(n) is None]


def columns_text() -> str:
    """The dictionary as an aligned plain-text table (``jaqmoo columns``)."""
    width = max(len(c.name) for c in COLUMNS)
    uwidth = min(28, max(len(c.unit) for c in COLUMNS))
    lines = [f"{'column':{width}s}  {'unit':{uwidth}s}  meaning [files]"]
    for c in COLUMNS:
        lines.append(f"{c.name:{width}s}  {c.unit:{uwidth}s}  {c.meaning} [{c.files}]")
    return "\n".join(lines)


def columns_markdown() -> str:
    """The dictionary as the Markdown page ``docs/columns.md``."""
    head = ("# Output columns\n\n"
            "Generated from `jaqmoo/reporting/columns.py` by `jaqmoo columns --markdown > docs/columns.md`; "
            "a test checks that every column of a real `front.csv` is listed here.\n\n"
            "Costs are per inference of one input (batch 1) on the accelerator. Accuracies are fractions in "
            "[0, 1] (0.951 = 95.1 %), top-1 on the supernet's validation images. `<layer>`, `<level>`, "
            "`<param>`, `<axis>`, `<i>`, `<j>` stand for any name or number.\n\n")
    rows = ["| column | unit | meaning | files |", "| --- | --- | --- | --- |"]
    for c in COLUMNS:
        rows.append(f"| `{c.name}` | {c.unit} | {c.meaning.replace('|', '/')} | {c.files} |")
    return head + "\n".join(rows) + "\n"
