"""Reading a run directory: evaluations and fronts as DataFrames, exports, plots.

Python API::

    from jaqmoo.report import load_run        # (re-exported from jaqmoo.reporting.run)
    run = load_run("runs/quickstart")
    run.front                       # DataFrame: the Pareto front, readable columns
    run.evaluations                 # every evaluated individual (on_front flag included)
    run.history                     # hypervolume and best values per generation
    run.export(csv="front.csv", parquet="front.parquet", all=False)
    run.plot()                      # front.png (+ hypervolume.png) in the run directory

Columns: ``gen``/``idx`` (when it was evaluated), ``w.<layer>`` / ``a.<layer>`` (bits),
``map.<layer>`` (mapping summary), ``hw.<param>`` (hardware parameters), metrics
(``accuracy``, ``energy_pj``, ``latency_cycles``, ``latency_s``, ``edp_pj_cycles``, ``memory_bits``,
``weight_memory_bits``, ``activation_memory_bits``, ``area_mm2``), ``energy_pj.<level>`` (pJ per
storage level / compute), ``feasible``, ``valid`` (feasible and within the constraints),
``on_front`` and, when the front was re-scored, ``accuracy_rescored``.

When the front was re-scored (a predictor inside the loop, the supernet afterwards),
``on_front`` is the Pareto front under the re-scored accuracy among the re-scored
individuals, and ``on_search_front`` the front the search itself saw (predicted accuracy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from jaqmoo.errors import JaqmooError
from jaqmoo.objectives import COLUMN_OF, OBJECTIVES, minimised
from jaqmoo.reporting.columns import with_unit_names
from jaqmoo.safe_write import atomic_write_text, write_csv, write_parquet
from jaqmoo.search.indicators import non_dominated
from jaqmoo.search.store import HISTORY, ResultsStore

RESCORED = "rescored.json"
FRONT_PNG = "front.png"
HV_PNG = "hypervolume.png"


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records -> DataFrame with the genome as a compact string column and the columns under
    their output names (units in the names: :func:`~jaqmoo.reporting.columns.with_unit_names`)."""
    df = with_unit_names(pd.DataFrame.from_records(records))
    if df.empty:
        return df
    if "genes" in df:
        df["genes"] = [" ".join(map(str, g)) for g in df["genes"]]
    df["feasible"] = df["feasible"].fillna(False).astype(bool)
    return df


def accuracy_column(df: pd.DataFrame) -> str:
    """``accuracy_rescored`` when ``df`` holds re-scored accuracies (a predictor run), else ``accuracy``."""
    return "accuracy_rescored" if "accuracy_rescored" in df and df["accuracy_rescored"].notna().any() else "accuracy"


def objective_values(df: pd.DataFrame, objectives: list[str], accuracy_column: str = "accuracy") -> np.ndarray:
    """Objective matrix (minimisation) of ``df``'s rows."""
    cols = []
    for o in objectives:
        key = accuracy_column if o == "accuracy" else COLUMN_OF[o]
        v = pd.to_numeric(df[key], errors="coerce").to_numpy(dtype=float)
        cols.append(minimised(o, v))
    return np.stack(cols, axis=1) if cols else np.zeros((len(df), 0))


def nondominated_ranks(df: pd.DataFrame, objectives: list[str], size: int) -> pd.DataFrame:
    """The valid rows (one per genome) of the best non-dominated ranks, rank by rank, until at
    least ``size`` rows are taken (all of them if there are fewer)."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    rows = df[df["valid"]].drop_duplicates("genes") if "genes" in df else df[df["valid"]]
    if rows.empty:
        return rows
    taken: list[int] = []
    for rank in NonDominatedSorting().do(objective_values(rows, objectives)):
        taken.extend(int(i) for i in rank)
        if len(taken) >= size:
            break
    return rows.iloc[taken]


def mark_front(df: pd.DataFrame, objectives: list[str], constraints: dict, accuracy_column: str = "accuracy") -> pd.DataFrame:
    """Add ``valid`` (feasible and within constraints) and ``on_front`` (non-dominated, unique genome)."""
    df = df.copy()
    valid = df["feasible"].to_numpy(dtype=bool).copy()
    acc = pd.to_numeric(df.get(accuracy_column), errors="coerce").to_numpy(dtype=float)
    if constraints.get("min_accuracy") is not None:
        valid &= acc >= constraints["min_accuracy"]
    if constraints.get("max_area_mm2") is not None and "area_mm2" in df:
        valid &= pd.to_numeric(df["area_mm2"], errors="coerce").to_numpy(dtype=float) <= constraints["max_area_mm2"]
    F = objective_values(df, objectives, accuracy_column)
    valid &= np.all(np.isfinite(F), axis=1)
    df["valid"] = valid
    on_front = np.zeros(len(df), dtype=bool)
    cand = np.flatnonzero(valid)
    if len(cand):
        # one row per genome (a genome can be evaluated again in a later generation)
        first = pd.Series(cand).groupby(df["genes"].to_numpy()[cand] if "genes" in df else cand).first().to_numpy()
        nd = first[non_dominated(F[first])]
        on_front[nd] = True
    df["on_front"] = on_front
    return df


@dataclass
class Run:
    """A loaded run directory (see the module doc)."""

    dir: Path
    meta: dict
    evaluations: pd.DataFrame
    history: pd.DataFrame

    @property
    def objectives(self) -> list[str]:
        return list(self.meta["objectives"])

    @property
    def front(self) -> pd.DataFrame:
        """The Pareto front, sorted by the first objective."""
        df = self.evaluations[self.evaluations["on_front"]] if len(self.evaluations) else self.evaluations
        if df.empty:
            return df
        key = COLUMN_OF[self.objectives[0]]
        df = df.sort_values(key, ascending=OBJECTIVES[self.objectives[0]] == "min", kind="stable").reset_index(drop=True)
        df.insert(0, "point", np.arange(len(df)))  # K of `jaqmoo export RUN --point K`
        return df

    @property
    def baselines(self) -> pd.DataFrame:
        """The uniform-bit seed individuals (``baseline`` column: e.g. ``uniform 8-bit``)."""
        rows = []
        for b in self.meta.get("baselines", []):
            hit = self.evaluations[(self.evaluations["gen"] == b["gen"]) & (self.evaluations["idx"] == b["idx"])]
            if len(hit):
                rows.append(hit.iloc[0].to_dict() | {"baseline": b["label"]})
        return pd.DataFrame(rows)

    @property
    def layer_names(self) -> list[str]:
        return list(self.meta.get("layer_names", []))

    def layers_table(self, row: pd.Series | int) -> pd.DataFrame:
        """Per-layer bits and mapping of one evaluated individual (a row or its evaluation index)."""
        if not isinstance(row, pd.Series):
            row = self.evaluations.iloc[int(row)]
        # an architecture search's point stores bits only for the layers its sub-network runs
        names = [n for n in self.layer_names if not (pd.isna(row.get(f"w.{n}")) and pd.isna(row.get(f"map.{n}")))]
        return pd.DataFrame({
            "layer": names,
            "weight_bits": [row.get(f"w.{n}") for n in names],
            "act_bits": [row.get(f"a.{n}") for n in names],
            "mapping": [row.get(f"map.{n}", "") for n in names],
        })

    def energy_by_level(self, row: pd.Series | int) -> pd.Series:
        """Energy (pJ) per storage level / compute of one evaluated individual."""
        if not isinstance(row, pd.Series):
            row = self.evaluations.iloc[int(row)]
        cols = [c for c in row.index if c.startswith("energy_pj.")]
        return pd.Series({c[len("energy_pj."):]: row[c] for c in cols}, name="energy_pj", dtype=float)

    # ------------------------------------------------------------------ outputs
    def table(self, all: bool = False) -> pd.DataFrame:
        """The front (or every evaluation with ``all``) with readable columns, genome last."""
        df = self.evaluations if all else self.front
        first = [c for c in ("point", "gen", "idx", "on_front", "valid", "feasible", "reason") if c in df]
        metrics = [c for c in ("accuracy", "accuracy_rescored", "energy_pj", "latency_cycles", "latency_s", "edp_pj_cycles",
                               "memory_bits",
                               "weight_memory_bits", "activation_memory_bits", "area_mm2") if c in df]
        hw = sorted(c for c in df if c.startswith("hw."))
        arch = architecture_columns(df.columns)
        if arch:  # an architecture search: one readable column, then depth/expand/kernel, MACs, parameters
            df = df.assign(architecture=architecture_strings(df))
            arch = ["architecture"] + arch
        per_layer = [c for n in self.layer_names for c in (f"w.{n}", f"a.{n}", f"map.{n}", f"mapgene.{n}") if c in df]
        levels = [c for c in df if c.startswith("energy_pj.")]
        used = set(first + metrics + hw + arch + per_layer + levels + ["genes"])
        rest = [c for c in df if c not in used]
        return df[first + metrics + hw + arch + levels + per_layer + rest + (["genes"] if "genes" in df else [])]

    def export(self, csv: str | Path | None = None, parquet: str | Path | None = None, all: bool = False) -> list[Path]:
        """Write the front (or all evaluations) as CSV and/or Parquet; returns the paths written."""
        if csv is None and parquet is None:
            raise JaqmooError("export: give --csv FILE and/or --parquet FILE")
        df = self.table(all)
        written = []
        if csv is not None:  # text cells a spreadsheet would run as formulas are escaped
            written.append(write_csv(df, csv, "the exported table"))
        if parquet is not None:
            Path(parquet).parent.mkdir(parents=True, exist_ok=True)
            out = df.copy()
            for c in out.columns:
                if out[c].dtype == object:
                    out[c] = out[c].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            written.append(write_parquet(out, parquet, "the exported table"))
        return written

    def front_point(self, k: int) -> pd.Series:
        """Front point ``k`` (the ``point`` column of front.csv and of the report's table)."""
        front = self.front
        if not len(front):
            raise JaqmooError(f"{self.dir}: the run has no front point yet")
        if not 0 <= k < len(front):
            raise JaqmooError(f"--point {k}: {self.dir} has front points 0..{len(front) - 1} (the point column "
                              "of front.csv)")
        return front.iloc[k]

    def point_file(self, k: int) -> dict:
        """The bits file of front point ``k`` (the ``point`` column): per-layer bits, its hardware
        and where it came from, in the format ``jaqmoo cost --bits-file`` and ``jaqmoo supernet eval
        --bits-file`` read (:mod:`jaqmoo.quant.policy`)."""
        row = self.front_point(k)
        layers = {}
        for n in self.layer_names:
            w, a = row.get(f"w.{n}"), row.get(f"a.{n}")
            if pd.isna(w) or pd.isna(a):
                raise JaqmooError(f"--point {k}: layer {n} does not run in this point's sub-network (an architecture "
                                  "search); a bits file describes a fixed network, so this point cannot be exported")
            layers[n] = {"w": int(w), "a": int(a)}
        hardware = {c[3:]: int(row[c]) for c in row.index if c.startswith("hw.") and pd.notna(row[c])}
        stored = {c: float(row[c]) for c in ("accuracy", "accuracy_rescored", "energy_pj", "latency_cycles", "memory_bits",
                                             "area_mm2") if c in row and pd.notna(row[c])}
        spec = self.meta.get("spec") or {}
        return {"layers": layers, "last_output_bits": 8, "hardware": hardware,
                "point": {"run": str(self.dir), "point": int(k), "gen": int(row["gen"]), "idx": int(row["idx"]),
                          "model": self.meta.get("model"), "width_mult": (spec.get("model") or {}).get("width_mult", 1.0),
                          "input_shape": self.meta.get("input_shape"), "num_classes": self.meta.get("num_classes"),
                          "accelerator": (spec.get("accelerator") or {}).get("timeloop") or self.meta.get("template"),
                          "accumulator_bits": (spec.get("quantization") or {}).get("accumulator_bits"),
                          "metric": (spec.get("mapping") or {}).get("metric", "energy"),
                          "supernet_checkpoint": self.meta.get("supernet_checkpoint"),
                          "val_images": (spec.get("accuracy") or {}).get("val_images"),
                          "seed": (self.meta.get("settings") or {}).get("seed"),
                          "split_seed": (spec.get("dataset") or {}).get("split_seed", 0),
                          "torch_threads": self.meta.get("torch_threads"),
                          **stored}}

    def point_header(self, k: int, path: str | Path) -> list[str]:
        """The comment lines heading point ``k``'s bits file at ``path``: where it came from and the
        two commands that read it back (``# costs: jaqmoo cost ...``, ``# accuracy: jaqmoo supernet eval ...``)."""
        p = self.point_file(k)["point"]
        shape = "x".join(str(v) for v in p["input_shape"] or ())
        cost = (f"jaqmoo cost --model {p['model']} --width-mult {p['width_mult']} --input {shape} --num-classes "
                f"{p['num_classes']} --accelerator {p['accelerator']} --metric {p['metric']}"
                + (f" --accumulator-bits {p['accumulator_bits']}" if p["accumulator_bits"] else "") + f" --bits-file {path}")
        head = [f"# front point {k} of {self.dir} (jaqmoo export --point {k}): bits per layer, hardware, stored figures",
                f"# costs: {cost}"]
        if p["supernet_checkpoint"]:
            head.append(f"# accuracy: jaqmoo supernet eval --checkpoint {p['supernet_checkpoint']} --bits-file {path} "
                        f"--images {p['val_images']} --seed {p['seed']} --split-seed {p['split_seed']}"
                        + (f" --threads {p['torch_threads']}" if p["torch_threads"] else ""))
        return head

    def export_point(self, k: int, path: str | Path) -> Path:
        """Write :meth:`point_file` to ``path`` as YAML, headed by the commands that read it back."""
        import yaml

        text = yaml.safe_dump(self.point_file(k), sort_keys=False)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(Path(path), "\n".join(self.point_header(k, path)) + "\n" + text, "the bits file")

    def plot(self, path: str | Path | None = None, hv_path: str | Path | None = None) -> list[Path]:
        """Front plot (2-D projections for 3+ objectives, baselines marked) and hypervolume plot."""
        from jaqmoo.reporting.plots import plot_front, plot_hypervolume

        path = Path(path) if path else self.dir / FRONT_PNG
        hv_path = Path(hv_path) if hv_path else self.dir / HV_PNG
        out = [plot_front(self.evaluations, self.front, self.baselines, self.objectives, path,
                          self.meta.get("name", self.dir.name))]
        if len(self.history):
            out.append(plot_hypervolume(self.history, hv_path))
        return out


ARCH_PREFIXES = ("depth_s", "expand_b", "kernel_b")


def architecture_columns(columns) -> list[str]:
    """An architecture search's columns among ``columns`` (``depth_s<i>``, ``expand_b<j>``,
    ``kernel_b<j>`` in index order, then ``macs``, ``params``); empty for a fixed-network run."""
    columns = [str(c) for c in columns]
    cols = []
    for prefix in ARCH_PREFIXES:
        found = [c for c in columns if c.startswith(prefix) and c[len(prefix):].isdigit()]
        cols += sorted(found, key=lambda c: int(c[len(prefix):]))
    return cols + [c for c in ("macs", "params") if c in columns] if cols else []


def architecture_strings(df: pd.DataFrame) -> list[str]:
    """Per row: ``depth 1-2-2-2-2-2-1 expand 1,6,3,... kernel 3,5,...`` (0: the block does not run)."""
    out = []
    groups = [(p, [c for c in architecture_columns(df.columns) if c.startswith(p)]) for p in ARCH_PREFIXES]
    values = {p: df[cols].to_numpy() for p, cols in groups if cols}
    sep = {"depth_s": "-", "expand_b": ",", "kernel_b": ","}
    for i in range(len(df)):
        out.append(" ".join(f"{p[:-2]} " + sep[p].join(_int_text(v) for v in values[p][i]) for p in values))
    return out


def _int_text(v) -> str:
    return "?" if v is None or (isinstance(v, float) and np.isnan(v)) else str(int(v))


def read_rescored(run_dir: str | Path) -> dict[str, float]:
    """The supernet re-scores of a run (``rescored.json``: genome string -> accuracy); empty if absent."""
    path = Path(run_dir) / RESCORED
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        return {str(k): float(v) for k, v in data.items()}
    except (ValueError, TypeError) as exc:
        raise JaqmooError(f"{path} is corrupt ({exc}); delete it and run `jaqmoo run SPEC --resume` "
                          "to re-score the front") from None


def load_run(run_dir: str | Path) -> Run:
    """Load a run directory written by ``jaqmoo run`` (complete or interrupted)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise JaqmooError(f"{run_dir} is a file, not a run directory; give the folder `jaqmoo run` wrote (--out)")
    if not run_dir.is_dir():
        raise JaqmooError(f"run directory {run_dir} does not exist; give the --out folder of `jaqmoo run`")
    store = ResultsStore(run_dir)
    meta = store.read_meta()
    records = store.read_records()  # validated: a damaged line is an error naming file, line and fix
    store.check_complete(records)
    df = records_frame(records)
    if df.empty:
        raise JaqmooError(f"{run_dir}: no evaluations stored yet; run `jaqmoo run SPEC --resume` to continue it")
    rescored_path = run_dir / RESCORED
    objectives, constraints = list(meta["objectives"]), meta.get("constraints", {})
    df = mark_front(df, objectives, constraints, "accuracy")
    if rescored_path.exists():
        rescored = read_rescored(run_dir)
        keys = df["genes"].to_numpy()
        df["accuracy_rescored"] = [rescored.get(k, np.nan) for k in keys]
        df["on_search_front"] = df["on_front"]
        df["on_front"] = mark_front(df, objectives, constraints, "accuracy_rescored")["on_front"].to_numpy()
    hist_path = run_dir / HISTORY
    history = pd.read_csv(hist_path) if hist_path.exists() else pd.DataFrame()
    return Run(run_dir, meta, df, history)
