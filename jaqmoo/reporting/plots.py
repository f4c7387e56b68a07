"""PNG plots of a run: the Pareto front (pairwise projections) and hypervolume per generation.

Everything here takes plain DataFrames (the evaluations, the front, the baselines), so the plots
know nothing of run directories or of the search.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from jaqmoo.objectives import COLUMN_OF, LABELS, minimised
from jaqmoo.safe_write import save_figure
from jaqmoo.search.indicators import non_dominated


def pyplot():
    """matplotlib.pyplot with a non-interactive backend unless one is already chosen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def pairs(objectives: list[str]) -> list[tuple[str, str]]:
    """Objective pairs to plot: accuracy against each other objective first, then the rest."""
    if len(objectives) == 1:
        return [(objectives[0], objectives[0])]
    combos = list(itertools.combinations(objectives, 2))
    # put accuracy on the y axis
    return [(b, a) if a == "accuracy" else (a, b) for a, b in combos]


def projected_front(front: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows of ``front`` non-dominated in the (x, y) projection, sorted by x."""
    if front.empty:
        return front
    cols = []
    for o in (x, y):
        v = pd.to_numeric(front[COLUMN_OF[o]], errors="coerce").to_numpy(dtype=float)
        cols.append(minimised(o, v))
    idx = non_dominated(np.stack(cols, axis=1))
    return front.iloc[idx].sort_values(COLUMN_OF[x])


def plot_front(evaluations: pd.DataFrame, front: pd.DataFrame, baselines: pd.DataFrame, objectives: list[str],
               path: str | Path, title: str = "") -> Path:
    """Scatter of every valid evaluation, the front highlighted, uniform-bit baselines marked.

    ``evaluations`` needs a ``valid`` column; ``baselines`` a ``baseline`` label column.
    """
    plt = pyplot()
    projections = pairs(objectives)
    n = len(projections)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    valid = evaluations[evaluations["valid"]]
    base = baselines
    for ax, (x, y) in zip(axes.ravel(), projections, strict=False):
        kx, ky = COLUMN_OF[x], COLUMN_OF[y]
        ax.scatter(valid[kx], valid[ky], s=8, c="0.75", label=f"evaluated ({len(valid)})")
        ax.scatter(front[kx], front[ky], s=18, c="tab:blue", zorder=3, label=f"Pareto front ({len(front)})")
        proj = projected_front(front, x, y)
        if len(proj) > 1:
            ax.step(proj[kx], proj[ky], where="post", lw=1, c="tab:blue", alpha=0.7)
        if "accuracy_rescored" in front and "accuracy" in (x, y) and front["accuracy_rescored"].notna().any():
            rx = front["accuracy_rescored"] if x == "accuracy" else front[kx]
            ry = front["accuracy_rescored"] if y == "accuracy" else front[ky]
            ax.scatter(rx, ry, marker="x", c="tab:green", s=20, label="front, re-scored by the supernet")
        for _, b in base.iterrows():
            ax.scatter([b[kx]], [b[ky]], marker="*", s=140, c="tab:red", edgecolors="k", zorder=5)
            ax.annotate(str(b["baseline"]).replace("uniform ", ""), (b[kx], b[ky]), textcoords="offset points",
                        xytext=(5, 5), fontsize=8, color="tab:red")
        if len(base):
            ax.scatter([], [], marker="*", s=140, c="tab:red", edgecolors="k", label="uniform-bit baselines")
        if x != "accuracy" and pd.to_numeric(valid[kx], errors="coerce").min() > 0:
            ax.set_xscale("log")
        ax.set_xlabel(LABELS[x])
        ax.set_ylabel(LABELS[y])
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{title}: {', '.join(objectives)}" if title else ", ".join(objectives))
    fig.tight_layout()
    try:
        return save_figure(fig, path, 110, "the front plot")
    finally:
        plt.close(fig)


def plot_hypervolume(history: pd.DataFrame, path: str | Path) -> Path:
    """Hypervolume of the current front after each generation."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(history["generation"], history["hypervolume"], "o-", ms=3)
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (this run's scale, see docs/columns.md)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return save_figure(fig, path, 110, "the hypervolume plot")
    finally:
        plt.close(fig)
