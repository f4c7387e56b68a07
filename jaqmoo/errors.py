"""The one exception type jaqmoo raises for bad input.

Every user-facing error (malformed YAML, unknown model, impossible hardware, bits out of
range, corrupt checkpoint...) is a :class:`JaqmooError` whose message names the field
(and file, where there is one) and says how to fix it. The CLI prints the message and
exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class JaqmooError(Exception):
    """A user-facing error: the message names the cause and the fix."""


def where(path: object | None, field: str | None = None) -> str:
    """Format a location prefix such as ``"arch.yaml: architecture.subtree[0].depth: "``."""
    parts = [str(p) for p in (path, field) if p]
    return ": ".join(parts) + (": " if parts else "")


def did_you_mean(key: str, allowed: Sequence[str]) -> str:
    """``"did you mean 'epochs'? "`` for the closest allowed name, or ``""``."""
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""
