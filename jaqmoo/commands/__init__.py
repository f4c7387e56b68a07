"""Sub-commands of the ``jaqmoo`` CLI (one module each) and the options they share."""

from __future__ import annotations

import argparse

from jaqmoo.errors import JaqmooError


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
