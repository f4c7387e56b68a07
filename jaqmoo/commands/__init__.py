"""Sub-commands of the ``jaqmoo`` CLI (one module each) and the options they share."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.strict import number


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads N``: torch CPU threads (on a machine shared with other jobs, 1 is often fastest)."""
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: one per core; on a busy machine 1 avoids thread thrashing)")


def set_threads(n: int | None) -> None:
    """Apply ``--threads`` (``None``: leave torch's default)."""
    if n is None:
        return
    if n < 1:
        raise JaqmooError(f"--threads must be >= 1 (got {n})")
    import torch

    torch.set_num_threads(n)


def number_arg(kind: type = float, lo: float = 0, hi: float | None = None) -> Callable[[str], Any]:
    """An argparse ``type``: a finite ``kind`` (int or float) in ``[lo, hi]`` (:func:`jaqmoo.strict.number`);
    a bad value is argparse's usage error naming the option, never a traceback or a silent NaN."""
    def parse(text: str) -> Any:
        try:
            return number(text, "the value", lo=lo, hi=hi, integer=kind is int, text=True)
        except JaqmooError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "integer" if kind is int else "number"  # argparse's "invalid integer value" wording
    return parse


def strict_numbers(parser: argparse.ArgumentParser) -> None:
    """Give every ``type=int`` / ``type=float`` option of ``parser`` and its sub-commands
    :func:`number_arg`: no CLI number of jaqmoo is negative, NaN, infinite or astronomically large."""
    for action in parser._actions:
        if action.type in (int, float):
            action.type = number_arg(action.type)
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                strict_numbers(sub)
