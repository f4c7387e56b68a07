"""Compatibility module: the run reader moved to :mod:`jaqmoo.reporting.run`.

``from jaqmoo.report import load_run`` (the README's Python API) keeps working.
"""

from jaqmoo.reporting.run import (
    FRONT_PNG,
    HV_PNG,
    RESCORED,
    Run,
    load_run,
    mark_front,
    nondominated_ranks,
    objective_values,
    read_rescored,
    records_frame,
)

__all__ = ["FRONT_PNG", "HV_PNG", "RESCORED", "Run", "load_run", "mark_front", "nondominated_ranks",
           "objective_values", "read_rescored", "records_frame"]
