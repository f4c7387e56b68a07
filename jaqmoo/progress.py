"""Progress output that suits where it goes.

On a terminal, :func:`progress_bar` is a tqdm bar that redraws in place. When the output is not
a terminal (a batch job's log, ``> run.log``), redraws would pile up as thousands of frames, so
the bar prints nothing, except a bar made with ``lines=True`` (one per generation, per run,
...), which prints one plain line per step instead::

    search: 3/10 gen (evals=60, hv=0.4821)

Per-epoch lines of supernet training are printed by the training loop itself (``tqdm.write``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm.auto import tqdm


def is_terminal(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: stderr, where tqdm draws) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False


class LineProgress:
    """The not-a-terminal stand-in for a tqdm bar: one line per :meth:`update` (same methods
    as the parts of tqdm's interface jaqmoo uses)."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, disable: bool = False, stream: TextIO | None = None,
                 **_: Any) -> None:
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.n, self.disable = desc, unit, initial, disable
        self.stream = stream
        self.postfix = ""
        self.start = time.monotonic()

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable:
            return
        count = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        tail = f" ({self.postfix})" if self.postfix else ""
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"{self.desc}: {count} {self.unit}{tail} [{time.monotonic() - self.start:.0f} s]", file=stream,
              flush=True)

    def refresh(self) -> None:
        """Nothing to redraw."""

    def close(self) -> None:
        """Nothing to clear."""

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(iterable: Iterable | None = None, *, lines: bool = False, disable: bool = False,
                 **kwargs: Any) -> Any:
    """A tqdm bar on a terminal; otherwise one line per step (``lines=True``) or silence.

    ``kwargs`` are tqdm's (``total``, ``desc``, ``unit``, ``initial``, ``leave``, ...)."""
    if disable or is_terminal():
        return tqdm(iterable, disable=disable, **kwargs)
    if lines:
        return LineProgress(iterable, **kwargs)
    return tqdm(iterable, disable=True, **kwargs)
