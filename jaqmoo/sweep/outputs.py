"""Sweep outputs: per-run summary, combined fronts, grid plot, and reading a sweep folder.

Folder layout (also in the ``jaqmoo sweep`` help)::

    DIR/sweep.json                 the expanded sweep (runs, axis values, specs, supernets)
    DIR/runs/<run>/                a `jaqmoo run` folder per run, plus sweep_run.json (status)
    DIR/summary.csv|.parquet       one row per run
    DIR/fronts.csv|.parquet        every run's front, axis values as columns
    DIR/grid.png                   fronts: rows x columns of two axes, other axes as series

Python API::

    from jaqmoo.sweep.outputs import load_sweep
    sweep = load_sweep("runs/sweep-quick")
    sweep.summary, sweep.fronts

The hypervolume of every run is computed in one normalisation for the whole sweep (per set
of objectives): objectives in minimisation form, scaled to [0, 1] between the best and the
worst value over all runs' fronts and uniform baselines, reference point 1.1 per objective;
``reference_point`` (in ``sweep.json``) gives that point in the objectives' own units.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jaqmoo.errors import JaqmooError
from jaqmoo.objectives import from_minimised
from jaqmoo.reporting.columns import with_unit_names
from jaqmoo.reporting.run import accuracy_column, load_run, objective_values
from jaqmoo.safe_write import atomic_write_text, write_csv, write_parquet
from jaqmoo.search.indicators import REFERENCE
from jaqmoo.sweep.plots import plot_grid
from jaqmoo.sweep.spec import axis_label

SWEEP_JSON = "sweep.json"
SUMMARY = "summary"
FRONTS = "fronts"
GRID_PNG = "grid.png"
RUNS = "runs"


def _status(marker: dict) -> str:
    """A run's status; a marker still saying ``running`` once the launch is over was interrupted."""
    status = marker.get("status", "pending")
    return "interrupted" if status == "running" else status


def _technology_nm(meta: dict) -> int | None:
    """The run's technology node: meta.json's (runs record it), else, for a folder written before
    they did, the template's (:func:`~jaqmoo.hardware.describe.technology_node`) or the one the
    energy source names."""
    if meta.get("technology_nm") is not None:
        return int(meta["technology_nm"])
    try:
        from jaqmoo.hardware.describe import technology_node
        from jaqmoo.hardware.templates import get_template

        return technology_node(get_template(meta.get("template", "")), meta.get("hardware_fixed"))
    except JaqmooError:
        m = re.search(r"(\d+)\s*nm", str(meta.get("energy_source", "")))
        return int(m.group(1)) if m else None


def _run_row(run: Any, tolerance: float) -> dict[str, Any]:
    """Figures of one finished run (hypervolume added later, in the common normalisation)."""
    front = run.front
    acc_col = accuracy_column(run.evaluations)
    base = run.baselines
    u8 = base[base["baseline"] == "uniform 8-bit"] if len(base) else base
    row: dict[str, Any] = {"evaluations": len(run.evaluations), "front_size": len(front)}
    if len(u8):
        u8acc = u8.iloc[0].get(acc_col)
        u8acc = u8.iloc[0]["accuracy"] if u8acc is None or pd.isna(u8acc) else u8acc
        row["uniform8_accuracy"] = float(u8acc)
        row["uniform8_energy_pj"] = float(u8.iloc[0]["energy_pj"])
        ok = front[pd.to_numeric(front[accuracy_column(front)], errors="coerce") >= row["uniform8_accuracy"] - tolerance] \
            if len(front) else front
        if len(ok):
            row["best_energy_pj"] = float(pd.to_numeric(ok["energy_pj"]).min())
            row["energy_ratio_vs_8bit"] = row["uniform8_energy_pj"] / row["best_energy_pj"]
    meta = run.meta
    row.update(energy_source=meta.get("energy_source"), technology_nm=_technology_nm(meta),
               template=meta.get("template"), objectives=";".join(meta.get("objectives", [])),
               warning="; ".join(meta.get("accuracy_warnings") or []))
    return row


def _objective_matrix(df: pd.DataFrame, objectives: list[str]) -> np.ndarray:

    return objective_values(df, objectives, accuracy_column(df))


def common_hypervolumes(runs: dict[str, Any]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Hypervolume of each run's front in one normalisation per objective set; the reference
    points in the objectives' units (keyed by ``;``-joined objectives)."""
    from pymoo.indicators.hv import HV

    groups: dict[tuple[str, ...], list[str]] = {}
    for name, run in runs.items():
        groups.setdefault(tuple(run.objectives), []).append(name)
    hv: dict[str, float] = {}
    refs: dict[str, dict[str, float]] = {}
    for objectives, names in groups.items():
        fronts = {n: _objective_matrix(runs[n].front, list(objectives)) if len(runs[n].front) else None for n in names}
        pool = [f for f in fronts.values() if f is not None]
        pool += [_objective_matrix(runs[n].baselines, list(objectives)) for n in names if len(runs[n].baselines)]
        allF = np.vstack(pool) if pool else np.zeros((0, len(objectives)))
        allF = allF[np.all(np.isfinite(allF), axis=1)]
        if not len(allF):
            continue
        lo, hi = allF.min(axis=0), allF.max(axis=0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        ref = lo + REFERENCE * span
        refs[";".join(objectives)] = {
            o: float(from_minimised(o, r)) for o, r in zip(objectives, ref, strict=True)}
        indicator = HV(ref_point=np.full(len(objectives), REFERENCE))
        for n, F in fronts.items():
            if F is None:
                hv[n] = 0.0
                continue
            Fn = (F[np.all(np.isfinite(F), axis=1)] - lo) / span
            Fn = Fn[np.all(Fn < REFERENCE, axis=1)]
            hv[n] = float(indicator(Fn)) if len(Fn) else 0.0
    return hv, refs


def _parquet(df: pd.DataFrame, path: Path) -> None:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    write_parquet(out, path)


def _axis_frame(sweep_dir: Path, plan: dict, all: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every finished run's front (or all evaluations) with run and axis columns first."""
    from jaqmoo.sweep.tasks import read_marker

    frames, loaded = [], {}
    for r in plan["runs"]:
        run_dir = sweep_dir / RUNS / r["name"]
        if (read_marker(run_dir) or {}).get("status") != "done":
            continue
        run = loaded[r["name"]] = load_run(run_dir)
        table = run.table(all)
        for a in reversed(list(plan["axes"])):
            table.insert(0, a, axis_label(r["values"].get(a)))
        table.insert(0, "run", r["name"])
        frames.append(table)
    return (pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()), loaded


def export_sweep(sweep_dir: str | Path, csv: str | Path | None = None, parquet: str | Path | None = None,
                 all: bool = False) -> list[Path]:
    """``jaqmoo export SWEEP_DIR``: the combined fronts (or every evaluation) of a sweep."""
    if csv is None and parquet is None:
        raise JaqmooError("export: give --csv FILE and/or --parquet FILE")
    sweep_dir = Path(sweep_dir)
    plan = load_sweep(sweep_dir).plan
    df, _ = _axis_frame(sweep_dir, plan, all)
    if df.empty:
        raise JaqmooError(f"{sweep_dir}: no finished run yet; run `jaqmoo sweep SPEC --out {sweep_dir} --resume`")
    written = []
    if csv is not None:
        write_csv(df, csv, "the exported table")
        written.append(Path(csv))
    if parquet is not None:
        _parquet(df, Path(parquet))
        written.append(Path(parquet))
    return written


def plot_sweep(sweep_dir: str | Path, path: str | Path | None = None) -> Path:
    """``jaqmoo plot SWEEP_DIR``: the grid plot (default ``SWEEP_DIR/grid.png``)."""

    sweep_dir = Path(sweep_dir)
    plan = load_sweep(sweep_dir).plan
    _, loaded = _axis_frame(sweep_dir, plan, False)
    if not loaded:
        raise JaqmooError(f"{sweep_dir}: no finished run to plot yet")
    return plot_grid(plan, loaded, Path(path) if path else sweep_dir / GRID_PNG)


def write_outputs(sweep_dir: str | Path, plan: dict) -> list[Path]:
    """Summary, combined fronts (CSV + Parquet) and the grid plot of a sweep folder; also
    stores the common reference point in ``sweep.json``. Runs that are not done appear in
    the summary with their status (and error) only."""
    from jaqmoo.sweep.tasks import read_marker

    sweep_dir = Path(sweep_dir)
    axes = list(plan["axes"])
    tol = float(plan.get("accuracy_tolerance", 0.005))
    combined, loaded = _axis_frame(sweep_dir, plan, False)
    rows = []
    for r in plan["runs"]:
        marker = read_marker(sweep_dir / RUNS / r["name"]) or {}
        row: dict[str, Any] = {"run": r["name"], **{a: axis_label(r["values"].get(a)) for a in axes},
                               "status": _status(marker), "error": marker.get("error"),
                               "wall_seconds": marker.get("wall_seconds"), "attempts": marker.get("attempts"),
                               "supernet": r.get("supernet")}
        if r["name"] in loaded:
            row.update(_run_row(loaded[r["name"]], tol))
        row["run_dir"] = f"{RUNS}/{r['name']}"
        rows.append(row)
    hv, refs = common_hypervolumes(loaded)
    for row in rows:
        row["hypervolume"] = hv.get(row["run"], np.nan)
    summary = pd.DataFrame(rows)
    first = ["run", *axes, "status", "warning", "hypervolume", "front_size", "best_energy_pj", "energy_ratio_vs_8bit",
             "uniform8_accuracy", "uniform8_energy_pj", "wall_seconds", "energy_source", "technology_nm"]
    summary = summary[[c for c in first if c in summary] + [c for c in summary if c not in first]]
    written = []
    write_csv(summary, sweep_dir / f"{SUMMARY}.csv")  # axis values are text: formula-escaped
    _parquet(summary, sweep_dir / f"{SUMMARY}.parquet")
    written += [sweep_dir / f"{SUMMARY}.csv", sweep_dir / f"{SUMMARY}.parquet"]
    if len(combined):
        write_csv(combined, sweep_dir / f"{FRONTS}.csv")
        _parquet(combined, sweep_dir / f"{FRONTS}.parquet")
        written += [sweep_dir / f"{FRONTS}.csv", sweep_dir / f"{FRONTS}.parquet"]
    if loaded:

        written.append(plot_grid(plan, loaded, sweep_dir / GRID_PNG))
    data = json.loads((sweep_dir / SWEEP_JSON).read_text())
    data["reference_point"] = refs
    atomic_write_text(sweep_dir / SWEEP_JSON, json.dumps(data, indent=1, default=str), "the sweep record")
    return written


@dataclass
class Sweep:
    """A sweep folder, read back."""

    dir: Path
    plan: dict
    summary: pd.DataFrame
    fronts: pd.DataFrame

    @property
    def runs(self) -> list[dict]:
        return list(self.plan["runs"])

    def run_dir(self, name: str) -> Path:
        return self.dir / RUNS / name


def is_sweep_dir(path: str | Path) -> bool:
    """True when ``path`` is a folder written by ``jaqmoo sweep``."""
    return (Path(path) / SWEEP_JSON).is_file()


def load_sweep(sweep_dir: str | Path) -> Sweep:
    """Read a sweep folder (``summary.csv`` and ``fronts.csv`` are re-derived when missing)."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_dir(sweep_dir):
        raise JaqmooError(f"{sweep_dir} is not a sweep folder (no {SWEEP_JSON}); give the --out folder of `jaqmoo sweep`")
    plan = json.loads((sweep_dir / SWEEP_JSON).read_text())
    if not (sweep_dir / f"{SUMMARY}.csv").is_file():
        write_outputs(sweep_dir, plan)
    summary = pd.read_csv(sweep_dir / f"{SUMMARY}.csv")
    fronts_path = sweep_dir / f"{FRONTS}.csv"
    # a fronts.csv written before the columns carried their units reads under today's names
    fronts = with_unit_names(pd.read_csv(fronts_path, low_memory=False)) if fronts_path.is_file() else pd.DataFrame()
    return Sweep(sweep_dir, plan, summary, fronts)
