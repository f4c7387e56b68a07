"""Reading user-given text files (specs, policy files) with a clear error for binary data."""

from __future__ import annotations

from pathlib import Path

from jaqmoo.errors import JaqmooError


def read_utf8(path: str | Path, what: str) -> str:
    """The text of ``path``; a :class:`JaqmooError` naming the file if it is not UTF-8 text.

    ``what`` says what the file should be (e.g. "a YAML experiment spec").
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JaqmooError(f"{path}: not a UTF-8 text file (byte {exc.start} is 0x{raw[exc.start]:02x}); "
                          f"it should be {what}: save it as UTF-8 or give the right file") from None
    if "\x00" in text:
        raise JaqmooError(f"{path}: a binary file (it contains NUL bytes), not {what}; give the right file")
    return text
