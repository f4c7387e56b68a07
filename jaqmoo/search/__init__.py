"""Joint search of per-layer bits, mappings and hardware parameters (pymoo).

Specs, the accuracy side and the model strategies live above, in :mod:`jaqmoo.experiment`.

Modules, in data-flow order:

* :mod:`~jaqmoo.search.genome` — genome <-> :class:`~jaqmoo.search.genome.Candidate`;
* :mod:`~jaqmoo.search.evaluation` — accuracy + cost model (inner mapper mode);
* :mod:`~jaqmoo.search.evaluators` — the one evaluator builder (run, sweep, report, benchmarks);
* :mod:`~jaqmoo.search.mapping_genes` — outer mapping mode (evolved mapping genes, repair);
* :mod:`~jaqmoo.search.problem` — the vectorized pymoo Problem (objectives, constraints);
* :mod:`~jaqmoo.search.algorithms` — NSGA-II (default), NSGA-III, ... by name, seeded;
* :mod:`~jaqmoo.search.baselines` — the seed papers' searchers (``uniform``, ``random``,
  ``haq``, ``bits-nsga2``) in the same harness, selected by ``search.algorithm``;
* :mod:`~jaqmoo.search.runner` / :mod:`~jaqmoo.search.session` — generation loop, progress,
  checkpoint / resume; :mod:`~jaqmoo.search.store` — the append-only results store;
* :mod:`~jaqmoo.search.indicators` — hypervolume, non-dominance (plots and reports live in
  :mod:`jaqmoo.reporting`, above the search).

The user-facing entry points are :func:`jaqmoo.experiment.run_experiment` and
:func:`jaqmoo.reporting.run.load_run` (CLI: ``jaqmoo run | export | plot | report``).
"""
