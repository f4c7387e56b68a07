"""Helpers shared by the spec tests."""

from __future__ import annotations

from typing import Any

import yaml


def with_key(base: dict, path: str, value: Any) -> dict:
    """A deep copy of the spec ``base`` with the dotted key ``path`` (e.g. ``search.population``) set to ``value``."""
    data = yaml.safe_load(yaml.safe_dump(base))
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return data
