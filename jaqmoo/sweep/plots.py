"""The sweep grid plot: one panel per (row axis value, column axis value), accuracy against
the run's first cost objective, one series per remaining axis combination, the uniform-bit
baselines of every run marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from jaqmoo.objectives import COLUMN_OF, LABELS
from jaqmoo.reporting.plots import projected_front, pyplot
from jaqmoo.reporting.run import accuracy_column
from jaqmoo.safe_write import save_figure
from jaqmoo.sweep.spec import axis_label


def _cost_objective(run: Any) -> str:
    return next((o for o in run.objectives if o != "accuracy"), "energy")


def plot_grid(plan: dict, runs: dict[str, Any], path: str | Path) -> Path:
    """Write the grid PNG of the finished ``runs`` (name -> loaded Run) of ``plan``."""
    plt = pyplot()
    grid = plan.get("grid") or {}
    rows_axis, cols_axis = grid.get("rows"), grid.get("cols")
    series_axes = [a for a in plan["axes"] if a not in (rows_axis, cols_axis)]
    entries = [r for r in plan["runs"] if r["name"] in runs]

    def values(axis: str | None) -> list:
        if axis is None:
            return [None]
        return list(dict.fromkeys(str(axis_label(r["values"].get(axis))) for r in entries))

    row_vals, col_vals = values(rows_axis), values(cols_axis)
    fig, axes = plt.subplots(len(row_vals), len(col_vals), figsize=(4.6 * len(col_vals), 3.8 * len(row_vals)),
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    series_keys = list(dict.fromkeys(
        ", ".join(f"{a}={axis_label(r['values'].get(a))}" for a in series_axes) for r in entries))
    for i, rv in enumerate(row_vals):
        for j, cv in enumerate(col_vals):
            ax = axes[i][j]
            cell = [r for r in entries
                    if (rows_axis is None or str(axis_label(r["values"].get(rows_axis))) == rv)
                    and (cols_axis is None or str(axis_label(r["values"].get(cols_axis))) == cv)]
            title = " / ".join(str(v) for v in (rv, cv) if v is not None)
            ax.set_title(title or plan.get("name", ""), fontsize=10)
            if not cell:
                ax.text(0.5, 0.5, "no finished run", ha="center", va="center", transform=ax.transAxes)
                continue
            for r in cell:
                run = runs[r["name"]]
                x = _cost_objective(run)
                kx = COLUMN_OF[x]
                key = ", ".join(f"{a}={axis_label(r['values'].get(a))}" for a in series_axes)
                color = colors[series_keys.index(key) % len(colors)]
                front = run.front.copy()
                acc = accuracy_column(front) if len(front) else "accuracy"
                front["accuracy"] = pd.to_numeric(front[acc], errors="coerce") if len(front) else front.get("accuracy")
                proj = projected_front(front, x, "accuracy")
                ax.step(proj[kx], proj["accuracy"], where="post", c=color, lw=1.2, marker="o", ms=3,
                        label=f"{key or r['name']} ({len(front)})")
                base = run.baselines
                if len(base):
                    bacc = base[accuracy_column(base)].fillna(base["accuracy"])
                    ax.scatter(base[kx], bacc, marker="*", s=90, color=color, edgecolors="k", zorder=5)
                    for (_, b), a in zip(base.iterrows(), bacc, strict=True):
                        ax.annotate(str(b["baseline"]).replace("uniform ", ""), (b[kx], a), textcoords="offset points",
                                    xytext=(4, 3), fontsize=6)
                ax.set_xlabel(LABELS.get(x, x))
                ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
            ax.set_ylabel("accuracy")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"sweep {plan.get('name', '')}: fronts (stars: uniform-bit baselines)")
    fig.tight_layout()
    try:
        return save_figure(fig, path, 100, "the sweep grid plot")
    finally:
        plt.close(fig)
