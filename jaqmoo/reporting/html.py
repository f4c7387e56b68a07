"""``jaqmoo report``: one self-contained, offline HTML file for a run or a sweep.

The page embeds plotly's JavaScript (no CDN, no server), the report's own script and style
(``jaqmoo/reporting/static``) and the data as one JSON object (:mod:`jaqmoo.reporting.payload`).
It is written atomically (a temporary file renamed over the old one), so a browser reloading
it during a run never sees half a file.

Python API::

    from jaqmoo.reporting.html import write_report
    write_report("runs/quickstart")                       # -> runs/quickstart/report.html
    write_report("sweeps/quick", out="quick.html")        # a sweep: one panel per run
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from jaqmoo.errors import JaqmooError
from jaqmoo.reporting.breakdown import CostBreakdown, point_details
from jaqmoo.reporting.breakdown_store import read_breakdown, write_breakdown
from jaqmoo.reporting.payload import MAX_POINTS, run_payload
from jaqmoo.reporting.run import Run, load_run
from jaqmoo.safe_write import atomic_write_text
from jaqmoo.timeloop.design import design_name

REPORT_HTML = "report.html"
SWEEP_JSON = "sweep.json"
SLOW_WRITE_S = 10.0


def _static(name: str) -> str:
    return resources.files("jaqmoo.reporting").joinpath("static", name).read_text(encoding="utf-8")


def plotly_js() -> str:
    """plotly.js, minified, from the installed plotly package (embedded in every report)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:  # pragma: no cover - plotly is a dependency
        raise JaqmooError("jaqmoo report needs plotly: pip install plotly") from None
    return get_plotlyjs()


def warning_banner(payload: dict) -> str:
    """The accuracy warnings of every run of ``payload`` as an HTML banner (empty when none);
    written into the page itself, so that it shows even where scripts do not run."""
    items = []
    sweep = payload.get("kind") == "sweep"
    for run in payload.get("runs", []):
        for text in run.get("warnings") or ():
            who = f"<b>{html.escape(str(run.get('name', '')))}</b>: " if sweep else ""
            items.append(f"<li>{who}{html.escape(str(text))}</li>")
    if not items:
        return ""
    return ("<div id=\"accuracy-warnings\" class=\"banner\" role=\"alert\"><b>Warning: these results may be "
            "meaningless.</b> The accuracy set-up failed a sanity check (<code>jaqmoo run --strict</code> makes it "
            f"an error):<ul>{''.join(items)}</ul></div>\n")


def render_html(payload: dict) -> str:
    """The whole page for ``payload`` (a :func:`run_payload` or a sweep payload)."""
    data = embedded_json(payload)
    title = html.escape(str(payload.get("title", "jaqmoo report")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>\n<style>{_static('report.css')}</style>\n"
        f"<script>{plotly_js()}</script>\n</head><body>\n{warning_banner(payload)}{_static('report.html')}\n"
        f"<script id=\"jaqmoo-data\" type=\"application/json\">{data}</script>\n"
        f"<script>{_static('report.js')}</script>\n</body></html>\n"
    )


def embedded_json(payload: dict) -> str:
    """``payload`` as JSON safe inside an HTML ``<script>`` element: every ``<``, ``>`` and ``&`` is
    written as a ``\\u`` escape (JSON reads them back unchanged), so no data (a run named
    ``<!--<script>`` or ``</script>``) can end the element or open an HTML comment in it."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


@dataclass
class DetailCache:
    """Per-point details keyed by genome, and the run's cost breakdown (built once, only when a
    point's details are neither in memory nor stored in the run folder for its current content:
    :mod:`jaqmoo.reporting.breakdown_store`).

    A report rewritten after every generation reuses both, so only new front points are
    recomputed; :meth:`save` stores the last report's details for ``jaqmoo report``."""

    breakdown: CostBreakdown | None = None
    tried: bool = False
    unavailable: str = ""
    details: dict[str, dict] = field(default_factory=dict)
    stored_shapes: dict[str, dict] | None = None
    loaded: bool = False
    last_keys: list[str] = field(default_factory=list)

    def load(self, run_dir: Path) -> None:
        """Take the details ``jaqmoo run`` stored for this content of ``run_dir`` (once)."""
        if self.loaded:
            return
        self.loaded = True
        stored = read_breakdown(run_dir)
        if stored is not None:
            details, shapes = stored
            self.details = {**details, **self.details}
            self.stored_shapes = shapes

    def get(self, run: Run, rows: pd.DataFrame, recompute: bool = True) -> list[dict]:
        """The details of ``rows`` (recomputed per-layer costs unless ``recompute`` is False)."""
        self.load(run.dir)
        keys = [str(g) for g in rows["genes"]]
        todo = [i for i, k in enumerate(keys) if k not in self.details]
        if not recompute:  # the stored details where the run stored them, else only what the store holds
            rest = dict(zip([keys[i] for i in todo], point_details(
                rows.iloc[todo], run.layer_names, None, "per-layer costs not recomputed (--no-recompute)"), strict=True))
            return [self.details.get(k) or rest[k] for k in keys]
        if todo and not self.tried:
            self.tried = True
            try:
                self.breakdown = CostBreakdown.from_meta(run.meta, run.evaluations)
            except JaqmooError as exc:
                self.unavailable = str(exc)
        fresh = point_details(rows.iloc[todo], run.layer_names, self.breakdown, self.unavailable)
        for i, d in zip(todo, fresh, strict=True):
            self.details[keys[i]] = d
        self.last_keys = keys
        return [self.details[k] for k in keys]

    @property
    def shapes(self) -> dict[str, dict] | None:
        return self.breakdown.shapes if self.breakdown is not None else self.stored_shapes

    def save(self, run_dir: Path) -> Path | None:
        """Store the details of the last :meth:`get` (the report's points) in ``run_dir``, keyed by
        its content; None when there is nothing to store."""
        if not self.last_keys:
            return None
        return write_breakdown(run_dir, {k: self.details[k] for k in self.last_keys}, self.shapes)


def payload_of_run(run: Run, cache: DetailCache | None = None, axes: dict | None = None,
                   max_points: int = MAX_POINTS, recompute: bool = True) -> dict:
    """The payload of one loaded run (see :func:`jaqmoo.reporting.payload.run_payload`)."""
    cache = cache if cache is not None else DetailCache()
    table = run.table()
    front, baselines = run.front, run.baselines
    rows = pd.concat([front, baselines], ignore_index=True)
    details = cache.get(run, rows, recompute) if len(rows) else []
    return run_payload(run.meta.get("name", run.dir.name), run.meta, run.evaluations, front, baselines,
                       run.history, table.to_csv(index=False), table, details,
                       shapes=cache.shapes, axes=axes, max_points=max_points)


def sweep_runs(sweep_dir: Path) -> tuple[dict, list[tuple[str, Path, dict]]]:
    """``(sweep.json, [(run name, run folder, axis values)])`` of a sweep folder; without a
    ``sweep.json``, every sub-folder holding a ``meta.json`` is a run (axes: model, template,
    dataset and seed where they differ)."""
    manifest = sweep_dir / SWEEP_JSON
    if manifest.is_file():
        try:
            sweep = json.loads(manifest.read_text())
            runs = [(str(r["name"]), sweep_dir / "runs" / str(r["name"]),
                     {k: axis_text(v) for k, v in dict(r.get("values", {})).items()}) for r in sweep["runs"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise JaqmooError(f"{manifest} is corrupt ({exc}); re-run `jaqmoo sweep SPEC --resume` to rewrite it") from None
        return sweep, runs
    found = sorted(p.parent for p in sweep_dir.glob("**/meta.json") if len(p.relative_to(sweep_dir).parts) <= 4)
    if not found:
        raise JaqmooError(f"{sweep_dir} holds no run (no meta.json) and no {SWEEP_JSON}: give a folder written by "
                          "`jaqmoo run` or `jaqmoo sweep`")
    metas = {p: json.loads((p / "meta.json").read_text()) for p in found}
    keys = ("model", "template", "dataset")
    values = {p: {k: m.get(k) for k in keys} | {"seed": m.get("settings", {}).get("seed")} for p, m in metas.items()}
    varying = [k for k in (*keys, "seed") if len({str(v[k]) for v in values.values()}) > 1] or ["run"]
    runs = [(str(p.relative_to(sweep_dir)), p, {k: (axis_text(values[p].get(k)) if k != "run"
                                                    else str(p.relative_to(sweep_dir))) for k in varying})
            for p in found]
    return {"name": sweep_dir.name, "axes": varying}, runs


def axis_text(value: Any) -> Any:
    """An axis value as a panel title shows it: a model or accelerator given as a mapping becomes
    ``"name key=value ..."`` (``{timeloop: PATH}``: ``timeloop:<folder>``), a list is space-joined,
    a scalar stays as it is (the same text as a sweep's ``summary.csv``)."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(axis_text(v)) for v in value)
    if isinstance(value, dict):
        if isinstance(value.get("timeloop"), str) and len(value) == 1:
            return f"timeloop:{design_name(value['timeloop'])}"
        head = value.get("name", value.get("template"))
        rest = " ".join(f"{k}={axis_text(v)}" for k, v in sorted(value.items()) if k not in ("name", "template"))
        return f"{head} {rest}".strip() if head is not None else json.dumps(value, sort_keys=True)
    return value


def _sweep_hypervolumes(sweep_dir: Path) -> dict[str, float]:
    """Each run's hypervolume in the sweep's one normalisation (``summary.csv``), when written."""
    path = sweep_dir / "summary.csv"
    if not path.is_file():
        return {}
    try:
        summary = pd.read_csv(path)
    except (ValueError, OSError):
        return {}
    if "run" not in summary or "hypervolume" not in summary:
        return {}
    return {str(r): float(h) for r, h in zip(summary["run"], summary["hypervolume"], strict=True) if pd.notna(h)}


def sweep_payload(sweep_dir: Path, max_points: int = MAX_POINTS, recompute: bool = True) -> dict:
    """The payload of a sweep: one entry per run (``error`` set for a run with nothing to show)."""
    sweep, runs = sweep_runs(sweep_dir)
    per_run = max(2_000, max_points // max(len(runs), 1))
    sweep_hv = _sweep_hypervolumes(sweep_dir)
    entries = []
    for name, path, axes in runs:
        try:
            run = load_run(path)
            entries.append(payload_of_run(run, axes=axes, max_points=per_run, recompute=recompute)
                           | {"name": name, "sweep_hypervolume": sweep_hv.get(name)})
        except JaqmooError as exc:
            status = _sweep_status(path)
            entries.append({"name": name, "axes": axes, "error": status or str(exc)})
    axes = list(sweep.get("axes") or sorted({k for _, _, a in runs for k in a}))
    grid = sweep.get("grid") or {}
    return {"kind": "sweep", "title": f"jaqmoo sweep {sweep.get('name', sweep_dir.name)}", "axes": axes,
            "grid": {"rows": grid.get("rows") or (axes[0] if axes else None),
                     "cols": grid.get("cols") or (axes[1] if len(axes) > 1 else None)},
            "runs": entries}


def _sweep_status(run_dir: Path) -> str:
    path = run_dir / "sweep_run.json"
    try:
        info = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return ""
    if info.get("status") == "failed":
        return f"run failed: {info.get('error', '')}"
    return ""


def is_run_dir(path: Path) -> bool:
    return (path / "meta.json").is_file()


def build_payload(target: str | Path, max_points: int = MAX_POINTS, cache: DetailCache | None = None,
                  recompute: bool = True) -> dict:
    """The payload of a run folder or a sweep folder."""
    target = Path(target)
    if not target.is_dir():
        raise JaqmooError(f"{target} does not exist; give a run folder (`jaqmoo run --out`) or a sweep folder")
    if is_run_dir(target):
        run = load_run(target)
        entry = payload_of_run(run, cache, max_points=max_points, recompute=recompute)
        return {"kind": "run", "title": f"jaqmoo report {entry['name']}", "axes": [], "grid": {}, "runs": [entry]}
    return sweep_payload(target, max_points, recompute)


def write_report(target: str | Path, out: str | Path | None = None, max_points: int = MAX_POINTS,
                 cache: DetailCache | None = None, recompute: bool = True) -> Path:
    """Write the HTML report of a run or sweep folder (default: ``report.html`` inside it)."""
    target = Path(target)
    payload = build_payload(target, max_points, cache, recompute)
    return atomic_write_text(Path(out) if out is not None else target / REPORT_HTML, render_html(payload),
                             "the report")


class ReportWriter:
    """A search's per-generation callback that rewrites the run's report (see
    :func:`jaqmoo.search.runner.run_search`); a report that cannot be written is a warning,
    never a reason to lose the search. ``breakdown``: recompute per-layer costs with the
    search's own evaluator (else one is rebuilt from ``meta.json`` on the first write)."""

    def __init__(self, run_dir: str | Path, out: str | Path | None = None, budget: float = 0.2,
                 breakdown: CostBreakdown | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.out = out
        self.cache = DetailCache(breakdown, tried=breakdown is not None)
        self.errors: list[str] = []
        self.budget = budget
        self.seconds = 0.0  # spent writing reports
        self._next = 0.0

    def __call__(self, row: dict | None = None, force: bool = False) -> Path | None:
        """Rewrite the report. When a write takes more than ``SLOW_WRITE_S`` (runs of tens of
        thousands of evaluations), the generations that end within ``(1 / budget - 1)`` x that
        time are skipped, so that reports cost at most ~``budget`` of the search's time;
        ``force`` (the final write) always writes."""
        now = time.monotonic()
        if not force and now < self._next:
            return None
        try:
            path = write_report(self.run_dir, self.out, cache=self.cache)
            if force:  # the run's last report: its details, for `jaqmoo report` (keyed by the run's content)
                self.cache.save(self.run_dir)
            took = time.monotonic() - now
            self.seconds += took
            self._next = time.monotonic() + took * (1.0 / self.budget - 1.0) if took > SLOW_WRITE_S else 0.0
            return path
        except (JaqmooError, OSError, ValueError) as exc:
            import warnings

            self.errors.append(str(exc))
            warnings.warn(f"could not write the report of {self.run_dir}: {exc}", stacklevel=2)
            return None
