"""jaqmoo: joint search of per-layer quantization, dataflow mapping and accelerator
hardware parameters for CNNs, with pymoo NSGA-II producing Pareto fronts."""

from jaqmoo.errors import JaqmooError

__all__ = ["JaqmooError"]
__version__ = "0.1.0"
