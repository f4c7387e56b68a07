"""Named registries, one way everywhere (torchvision's ``register_model`` / ``get_model`` style).

Each kind of plug-in has one :class:`Registry`, owned by the module that defines the kind:
models (:data:`jaqmoo.models.registry.MODELS`), elastic model families
(:data:`jaqmoo.models.elastic_space.FAMILIES`), accelerator templates
(:data:`jaqmoo.hardware.templates.base.TEMPLATES`), pymoo algorithms
(:data:`jaqmoo.search.algorithms.ALGORITHMS`), the seed papers' searchers
(:data:`jaqmoo.search.baselines.SEARCHERS`) and accuracy estimator kinds
(:data:`jaqmoo.experiment.estimators.ESTIMATORS`). An entry registers itself where it is defined::

    @MODELS.register("simple_cnn")
    def simple_cnn(num_classes, in_channels, small, width_mult): ...

    MODELS.lookup("simple_cnn")     # the entry; an unknown name is a JaqmooError listing the names

A registry is a read-only mapping (``name in MODELS``, ``list(MODELS)``, ``MODELS[name]``), so
adding a model, a template or an algorithm touches the one file that defines it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from jaqmoo.errors import JaqmooError, did_you_mean

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Entries of one kind by name, with aliases; :meth:`lookup` explains an unknown name.

    ``kind`` names the entries in messages (``"model"``); ``normalize`` maps a user's spelling
    to the registered one before the lookup (e.g. lower case, ``-`` -> ``_``); ``hint`` ends the
    message for an unknown name (e.g. what else the argument may be)."""

    def __init__(self, kind: str, normalize: Callable[[str], str] | None = None, hint: str = "") -> None:
        self.kind = kind
        self._normalize = normalize or (lambda name: name)
        self._hint = hint
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, entry: T | None = None, aliases: tuple[str, ...] = ()) -> Callable[[T], T] | T:
        """Register ``entry`` as ``name`` (and ``aliases``); without ``entry``, a decorator that does."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            return obj

        return add if entry is None else add(entry)

    def canonical(self, name: str) -> str | None:
        """The registered name ``name`` refers to (through normalisation and aliases), or None."""
        key = self._normalize(str(name))
        key = self._aliases.get(key, key)
        return key if key in self._entries else None

    def lookup(self, name: str) -> T:
        """The entry called ``name``; a :class:`~jaqmoo.errors.JaqmooError` naming the choices otherwise."""
        key = self.canonical(name)
        if key is None:
            names = list(self._entries)
            raise JaqmooError(f"unknown {self.kind} {name!r}; {did_you_mean(str(name), names)}"
                              f"choose one of: {', '.join(names)}{self._hint}")
        return self._entries[key]

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


__all__ = ["Registry"]
