"""The data an HTML report carries: plain DataFrames of a run -> one JSON-ready dict.

Columnar arrays (one list per column) keep the page small and quick to parse; the dominated
points (most of a big run) travel as base64 float32 columns: 50,000 evaluations make ~6 MB. Beyond ``max_points`` valid evaluations the dominated ones are
sampled (every front point and baseline is kept) and the page says so.
"""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

from jaqmoo.objectives import COLUMN_OF, LABELS, OBJECTIVES

MAX_POINTS = 50_000
METRICS = ("accuracy", "accuracy_rescored", "energy_pj", "latency_cycles", "latency_s", "edp_pj_cycles", "memory_bits",
           "weight_memory_bits", "activation_memory_bits", "area_mm2")
TABLE_FIRST = ("point", "gen", "idx", "accuracy", "accuracy_rescored", "energy_pj", "latency_s", "edp_pj_cycles",
               "memory_bits",
               "area_mm2", "mean_w_bits", "mean_a_bits", "macs", "params")
#: an architecture search's sub-network size (jaqmoo.models.elastic_mbv2.arch_stats)
ARCH_METRICS = ("macs", "params")


def _values(values: np.ndarray, digits: int = 7) -> list:
    """A float column as a JSON-ready list (None for NaN / inf), rounded to at least ``digits``
    significant digits (one number of decimals per column, from its smallest magnitude: short
    JSON for 50,000 points, vectorized)."""
    finite = np.isfinite(values)
    nonzero = np.abs(values[finite & (values != 0)])
    if len(nonzero):
        decimals = int(np.clip(digits - 1 - np.floor(np.log10(nonzero.min())), 0, 15))
        values = np.round(values, decimals)
    out = values.tolist()
    for i in np.flatnonzero(~finite).tolist():
        out[i] = None
    return out


def packed(df: pd.DataFrame, cols: list[str]) -> dict[str, str]:
    """``{column: base64 of little-endian float32 values}`` (NaN for missing): the dominated
    points, 4 bytes a value instead of ~12 characters of JSON; the page decodes them into
    Float32Arrays, which plotly draws directly."""
    return {c: base64.b64encode(pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="<f4").tobytes()).decode("ascii")
            for c in cols if c in df}


def numeric_columns(df: pd.DataFrame, layer_names: list[str]) -> list[str]:
    """The columns a point can be coloured or plotted by: metrics, mean bits, hardware, generation."""
    cols = [c for c in METRICS if c in df]
    cols += ["mean_w_bits", "mean_a_bits"] if layer_names else []
    cols += [c for c in ARCH_METRICS if c in df]
    cols += sorted(c for c in df if c.startswith("hw."))
    cols += [c for c in df if c.startswith("energy_pj.")]
    cols += [c for c in ("gen",) if c in df]
    return cols


def with_mean_bits(df: pd.DataFrame, layer_names: list[str]) -> pd.DataFrame:
    """``df`` plus ``mean_w_bits`` / ``mean_a_bits`` (mean over the layers)."""
    if not layer_names or df.empty:
        return df
    df = df.copy()
    for kind, col in (("w", "mean_w_bits"), ("a", "mean_a_bits")):
        cols = [f"{kind}.{n}" for n in layer_names if f"{kind}.{n}" in df]
        df[col] = df[cols].apply(pd.to_numeric, errors="coerce").mean(axis=1) if cols else np.nan
    return df


def columnar(df: pd.DataFrame, cols: list[str]) -> dict[str, list]:
    """``{column: values}`` for the columns of ``df`` among ``cols``."""
    return {c: _values(pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)) for c in cols if c in df}


def sample_dominated(dominated: pd.DataFrame, room: int, seed: int = 0) -> pd.DataFrame:
    """At most ``room`` rows of ``dominated`` (a uniform random sample, original order kept)."""
    if len(dominated) <= room:
        return dominated
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(dominated), size=max(room, 0), replace=False))
    return dominated.iloc[keep]


def run_payload(name: str, meta: dict, evaluations: pd.DataFrame, front: pd.DataFrame, baselines: pd.DataFrame,
                history: pd.DataFrame, front_csv: str, table: pd.DataFrame,
                details: list[dict], shapes: dict[str, dict] | None = None,
                axes: dict | None = None, max_points: int = MAX_POINTS) -> dict:
    """Everything the page shows of one run (see the module doc).

    ``front`` and ``table`` are the front in the CSV's row order; ``details`` are the
    per-point details of the front rows, then of the baselines
    (:mod:`jaqmoo.reporting.breakdown`)."""
    layer_names = list(meta.get("layer_names", []))
    objectives = list(meta["objectives"])
    ev = with_mean_bits(evaluations, layer_names)
    front = with_mean_bits(front, layer_names)
    base = with_mean_bits(baselines, layer_names)
    cols = numeric_columns(ev, layer_names)
    valid = ev[ev["valid"]] if "valid" in ev else ev
    front_genes = set(front["genes"]) if "genes" in front else set()
    dominated = valid[~valid["genes"].isin(front_genes)] if "genes" in valid else valid[~valid["on_front"]]
    notes = []
    room = max_points - len(front)
    shown = sample_dominated(dominated, room)
    if len(shown) < len(dominated):
        notes.append(f"{len(valid):,} valid evaluations: the plots show all {len(front):,} front points and a random "
                     f"sample of {len(shown):,} of the {len(dominated):,} dominated points (kept under {max_points:,} "
                     "points so that the page stays responsive).")
    n_invalid = len(ev) - len(valid)
    if n_invalid:
        notes.append(f"{n_invalid:,} evaluations are infeasible or break a constraint and are not drawn.")
    if "accuracy_rescored" in front and front["accuracy_rescored"].notna().any():
        notes.append("The front is chosen under the supernet re-scored accuracy (accuracy_rescored); "
                     "accuracy is the estimate the search used.")
    table_cols = [c for c in TABLE_FIRST if c in front] + sorted(c for c in front if c.startswith("hw."))
    return {
        "name": name,
        "axes": axes or {},
        "meta": {k: meta.get(k) for k in ("model", "dataset", "template", "energy_source", "mapping_mode",
                                           "accuracy_estimator") if meta.get(k) is not None}
        | {"algorithm": meta.get("settings", {}).get("algorithm"),
           "population": meta.get("settings", {}).get("population"),
           "generations": meta.get("settings", {}).get("generations")},
        "objectives": objectives,
        "metric_of": {o: COLUMN_OF[o] for o in objectives},
        "sense": {o: OBJECTIVES[o] for o in objectives},
        "labels": {COLUMN_OF[o]: LABELS[o] for o in LABELS},
        "numeric": cols,
        "n_evaluations": len(ev),
        "n_valid": len(valid),
        "n_dominated": len(dominated),
        "dominated": packed(shown, cols),
        "front": columnar(front, cols),
        "front_table": {"columns": table_cols, "rows": columnar(front[table_cols], table_cols) if table_cols else {}},
        "baselines": {"labels": [str(v) for v in base["baseline"]] if len(base) else [], **columnar(base, cols)},
        "details": details,
        "layers": [{"name": n, **(shapes or {}).get(n, {})} for n in layer_names],
        "history": columnar(history, [c for c in ("generation", "evaluations", "hypervolume", "front_size") if c in history]),
        "front_csv": front_csv,
        "csv_columns": list(table.columns),
        "notes": notes,
        "warnings": [str(w) for w in meta.get("accuracy_warnings") or ()],
    }
