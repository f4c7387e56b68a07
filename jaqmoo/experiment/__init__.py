"""An experiment spec -> a runnable search -> a finished run folder.

Modules, top-down:

* :mod:`~jaqmoo.experiment.run` -- :func:`run_experiment`: prepare, obtain the accuracy side,
  build the evaluator, search (resumable), re-score, export, plot and report;
* :mod:`~jaqmoo.experiment.prepare` -- :func:`prepare_experiment`: every check that needs no
  training (spec, hardware template, fixed layers, area budget, paths), the dataset and the
  network's workload;
* :mod:`~jaqmoo.experiment.accuracy` -- the supernet (load or train, identity-checked) and the
  predictor cache;
* :mod:`~jaqmoo.experiment.strategy` -- the model strategy: a fixed network or an elastic
  space, one interface (:class:`~jaqmoo.experiment.strategy.ModelStrategy`);
* :mod:`~jaqmoo.experiment.elastic` -- the elastic space's pieces (largest workload, pair
  sampling, joint genome); :mod:`~jaqmoo.experiment.caches` -- memoised estimators;
* :mod:`~jaqmoo.experiment.spec` / :mod:`~jaqmoo.experiment.fields` -- reading and validating
  ``problems/*.yaml``.

The evaluator itself is built by :func:`jaqmoo.search.evaluators.build_evaluator`, below the
report, so that the report's per-layer breakdown rebuilds exactly the run's evaluator.

Python API::

    from jaqmoo.experiment import run_experiment
    result = run_experiment("problems/quickstart.yaml", out="runs/qs", generations=5)
    result.run.front          # pandas DataFrame of the Pareto front
"""

from jaqmoo.experiment.prepare import (
    Prepared,
    check_paths,
    default_out_dir,
    mapper_cache_dir,
    prepare_experiment,
    validate_hardware,
)
from jaqmoo.experiment.run import ExperimentResult, run_experiment, write_outputs
from jaqmoo.experiment.spec import ExperimentSpec, coerce_spec, load_spec, parse_spec

__all__ = ["ExperimentResult", "ExperimentSpec", "Prepared", "check_paths", "coerce_spec", "default_out_dir",
           "load_spec", "mapper_cache_dir", "parse_spec", "prepare_experiment", "run_experiment", "validate_hardware",
           "write_outputs"]
