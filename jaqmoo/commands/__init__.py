"""Sub-commands of the ``jaqmoo`` CLI (one module each) and the options they share."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.strict import number

THREADS_HELP = ("torch CPU threads per process (default: the cores not already busy, i.e. the cores minus the "
                "1-minute load average, divided among the processes the command starts, at least 1; meta.json "
                "records the count used)")


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads N``: torch CPU threads per process; one default rule for every command
    (:func:`default_threads`)."""
    p.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)


def default_threads(processes: int = 1) -> int:
    """The ``--threads`` default: the cores not already busy (cores minus the 1-minute load
    average, rounded) divided among ``processes``, at least 1. Threads beyond the idle cores
    thrash: the quickstart's supernet training took 280 s with 2 threads on 2 busy cores, 16 s
    with 1 (docs/benchmarks/quickstart.md)."""
    cores = os.cpu_count() or 1
    try:
        busy = round(os.getloadavg()[0])
    except OSError:  # no load average on this platform
        busy = 0
    return max(1, (cores - busy) // max(1, processes))


def resolve_threads(n: int | None, processes: int = 1) -> int:
    """``--threads`` checked (>= 1), or its default for ``processes`` processes."""
    if n is None:
        return default_threads(processes)
    if n < 1:
        raise JaqmooError(f"--threads must be >= 1 (got {n})")
    return n


def set_threads(n: int | None) -> None:
    """Apply ``--threads`` to this process (``None``: :func:`default_threads`)."""
    import torch

    torch.set_num_threads(resolve_threads(n))


def add_quiet_option(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress output."""
    p.add_argument("--quiet", action="store_true",
                   help="no progress output (bars on a terminal, one line per epoch / generation otherwise)")


def add_timeloop_options(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--timeloop DIR`` and ``--dialect``: write Timeloop files (:mod:`jaqmoo.timeloop.export`)."""
    p.add_argument("--timeloop", metavar="DIR", help=help_text + " (DIR must be new or empty)")
    p.add_argument("--dialect", default="v0.4", choices=("v0.4", "fork"),
                   help="with --timeloop: Timeloop v0.4 inputs (default; no per-tensor bits), or the Klhufek et "
                        "al. mixed-precision fork's (its per-tensor `bitwidths`, v0.3 architecture keys)")


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
