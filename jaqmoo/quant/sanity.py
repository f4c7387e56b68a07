"""Is a run's accuracy meaningful? Checks made right after the accuracy set-up.

A front whose accuracies sit near chance, or whose uniform 8-bit accuracy is far below what
the float network reached, measures the supernet's failure to train, not the trade-off
between bits and hardware cost: its energy ratios "vs 8-bit" are noise. :func:`accuracy_warnings`
says so in words; ``jaqmoo run`` prints them, stores them in ``meta.json`` (``accuracy_warnings``),
a sweep's ``summary.csv`` has them in its ``warning`` column, the report shows them as a banner,
and ``jaqmoo run --strict`` stops instead (:class:`MeaninglessAccuracy`).
"""

from __future__ import annotations

from collections.abc import Sequence

from jaqmoo.errors import JaqmooError

#: uniform 8-bit accuracy within this of chance (1 / classes) is meaningless (fraction: 10 points)
CHANCE_MARGIN = 0.10
#: uniform 8-bit accuracy more than this below the float network's (fraction: 5 points)
FLOAT_GAP = 0.05


class MeaninglessAccuracy(JaqmooError):
    """``--strict``: the accuracy set-up produced a supernet whose results would mean nothing."""


def float_phase_accuracy(history: Sequence[dict] | None) -> float | None:
    """The float network's validation accuracy at the end of a supernet's float phase (the
    last ``phase: float`` epoch of its training history that recorded ``acc_float``); None when
    the recipe had no float phase (or the checkpoint predates the record)."""
    value = None
    for record in history or ():
        if isinstance(record, dict) and record.get("phase") == "float" and record.get("acc_float") is not None:
            value = float(record["acc_float"])
    return value


def accuracy_warnings(uniform_accuracy: float | None, num_classes: int, float_accuracy: float | None = None,
                      bits_label: str = "uniform 8-bit") -> list[str]:
    """Plain-language warnings about a run's accuracy (empty when it looks meaningful).

    ``uniform_accuracy``: the supernet's accuracy at ``bits_label`` (a fraction; None: not
    measured, nothing to say); ``num_classes``: the dataset's classes (chance = 1 / classes);
    ``float_accuracy``: the float network's, where the recipe had a float phase."""
    if uniform_accuracy is None or num_classes < 1:
        return []
    chance = 1.0 / num_classes
    out = []
    if uniform_accuracy < chance + CHANCE_MARGIN:
        out.append(f"{bits_label} accuracy {uniform_accuracy:.3f} is within {CHANCE_MARGIN:.2f} of chance "
                   f"({chance:.3f} on {num_classes} classes; accuracies are fractions 0-1): the supernet has not "
                   "learned the task, "
                   "so this run's fronts and energy ratios are noise; train longer (accuracy.train: float_epochs, "
                   "epochs), on more images, or check the dataset")
    if float_accuracy is not None and uniform_accuracy < float_accuracy - FLOAT_GAP:
        out.append(f"{bits_label} accuracy {uniform_accuracy:.3f} is {float_accuracy - uniform_accuracy:.3f} "
                   f"below the float network's {float_accuracy:.3f} (more than {FLOAT_GAP:.2f}): "
                   "the quantized training has not converged, so accuracy losses on the front mix quantization "
                   "with under-training; raise accuracy.train.epochs")
    return out


def strict_error(warnings: Sequence[str], source: str) -> MeaninglessAccuracy:
    """The ``--strict`` error for ``warnings`` (raised before the search starts)."""
    return MeaninglessAccuracy(f"{source}: --strict: the accuracy set-up gives meaningless results:\n  - "
                               + "\n  - ".join(warnings)
                               + "\nNothing was searched; fix the recipe, or run without --strict to search anyway "
                                 "(the warning is then kept in meta.json and the report)")
