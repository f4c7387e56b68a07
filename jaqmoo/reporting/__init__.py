"""Reporting, above the search: reading run folders, PNG plots, the interactive HTML report.

* :mod:`~jaqmoo.reporting.run` — a run folder as DataFrames (``load_run``; also importable
  as :mod:`jaqmoo.report`), front marking, CSV/Parquet export;
* :mod:`~jaqmoo.reporting.plots` — static PNG plots from plain DataFrames;
* :mod:`~jaqmoo.reporting.breakdown` — per-point details (per-layer bits, loop nests, energy
  per level and tensor recomputed with :mod:`jaqmoo.cost` for the points a report details);
* :mod:`~jaqmoo.reporting.payload` / :mod:`~jaqmoo.reporting.html` — ``jaqmoo report``: one
  self-contained offline HTML file (plotly embedded), rewritten after every generation.

The search knows nothing of this package: ``jaqmoo run`` hands the search a per-generation
callback (:class:`~jaqmoo.reporting.html.ReportWriter`).
"""
