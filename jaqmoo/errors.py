"""The one exception type jaqmoo raises for bad input.

Every user-facing error (malformed YAML, unknown model, impossible hardware, bits out of
range, corrupt checkpoint...) is a :class:`JaqmooError` whose message names the field
(and file, where there is one) and says how to fix it. The CLI prints the message and
exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class JaqmooError(Exception):
    """A user-facing error: the message names the cause and the fix."""


def where(path: object | None, field: str | None = None) -> str:
    """Format a location prefix such as ``"arch.yaml: architecture.subtree[0].depth: "``."""
    parts = [str(p) for p in (path, field) if p]
    return ": ".join(parts) + (": " if parts else "")
