"""Reading Timeloop/Accelergy YAML, including the v0.4 ``!Container``-style tags.

Tagged nodes (``!Container``, ``!Component``, ``!Parallel``, ``!Hierarchical``,
``!Pipelined``, ``!Nothing``) become plain dicts with an extra ``"_tag"`` key; any other tag
is kept the same way so unknown extensions do not break loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.strict import load_yaml_file, number


class _TimeloopLoader(yaml.SafeLoader):
    """SafeLoader that turns every ``!Tag`` node into a dict/list carrying its tag."""


def _construct_tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    tag = "!" + tag_suffix
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
        out = dict(value)
        out["_tag"] = tag
        return out
    if isinstance(node, yaml.SequenceNode):
        return {"_tag": tag, "nodes": loader.construct_sequence(node, deep=True)}
    scalar = loader.construct_scalar(node)
    return {"_tag": tag, "value": scalar}


_TimeloopLoader.add_multi_constructor("!", _construct_tagged)


def load_yaml(source: str | Path | dict, what: str = "YAML") -> tuple[dict, str]:
    """Load ``source`` (a path or an already-parsed dict) -> ``(data, label)``.

    ``label`` names the file for error messages (``"<dict>"`` for dicts).
    """
    if isinstance(source, dict):
        return source, "<dict>"
    path = Path(source)
    if not path.exists():
        raise JaqmooError(f"{path}: {what} file not found")
    if path.is_dir():
        raise JaqmooError(f"{path}: is a directory, expected a {what} file")
    data = load_yaml_file(path, f"a {what} file", loader=_TimeloopLoader)
    if not isinstance(data, dict):
        raise JaqmooError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data, str(path)


def require(mapping: Any, key: str, label: str, field_path: str) -> Any:
    """``mapping[key]`` or a :class:`JaqmooError` naming the missing field and the file."""
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] is None:
        full = f"{field_path}.{key}" if field_path else key
        raise JaqmooError(f"{label}: missing required field {full!r}; add it")
    return mapping[key]


def as_number(value: Any, label: str, field_path: str, kind: type = float, lo: float | None = None) -> Any:
    """A YAML scalar (possibly a numeric string such as ``"1e-9"``) as a finite ``kind``, checked by
    :func:`jaqmoo.strict.number`: sizes, widths, counts and bandwidths of an architecture or problem
    are never negative, NaN or infinite; integers are at least 1 unless ``lo`` says otherwise."""
    lo = (1 if kind is int else 0) if lo is None else lo
    return number(value, f"{label}: {field_path}", lo=lo, integer=kind is int, text=True)
