"""A persistent, content-addressed store of the mapper's warm-up (BatchTile tile sets).

The expensive per-layer work of inner mapping is the warm-up
(:meth:`jaqmoo.search.evaluation.JointEvaluator.prepare`): full mapper searches of every
layer shape on corner designs of the hardware space, merged into one
:class:`~jaqmoo.mapping.batchtile.TileSet` per (shape, accelerator family). Every later
candidate is a re-fit of those sets. A layer shape's sets depend only on

* the shape (every :class:`~jaqmoo.workload.Layer` field but the name),
* the corner designs searched, in order: each corner's whole :class:`Accelerator` (levels,
  meshes, depths, word widths, energies, constraints, accumulator bits...) and bits,
* the metric and the mapper's settings (budget, utilization floor, refinement, orders, seed),
* the model backend (numba or numpy) and numpy's version,
* the cost model's code (a hash of the ``jaqmoo.mapping`` and ``jaqmoo.hardware.spec``
  sources and the package version),

and not on the other shapes of the network (:meth:`Mapper.prepare` searches each shape
independently). So each shape's sets are stored under the SHA-256 of exactly those inputs:
two runs, two sweeps or two models that warm up the same shape on the same hardware space
share one file, and anything that could change the sets changes the key.

Files (``<cache_dir>/<key[:2]>/<key>.tiles``): a header line with the format and the SHA-256
of the payload, then the payload: a compressed NumPy ``.npz`` of plain data
(:func:`jaqmoo.datafile.encode_tree` of ``{"key", "sets": {family: TileSet}}``, the tile sets
without their memo tables: integer and float arrays, tuples, strings), read with
``allow_pickle=False`` and rebuilt only into the cost model's own dataclasses (through their
constructors). Nothing in a cache file can run code, so a cache folder may be shared between
users; the checksum only detects damage. They are written to a temporary file and
``os.replace``-d into place, so a reader never sees half a file and two writers of one key
(whose contents are identical) simply leave one of them. A file that does not verify
(truncated, bit-flipped, another format, another key, the old pickled ``jaqmoo-tiles-1``
format, which is never unpickled) is ignored with a warning and recomputed, never used.

:func:`warm_up` is the read-through entry point: it loads what is there, and computes the
missing shapes while holding a per-warm-up lock in the folder, so concurrent runs that need
the same warm-up (the runs of a sweep) compute it once; the others wait and then read it.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaqmoo.datafile import bundle_bytes, decode_tree, encode_tree, load_bundle_bytes
from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import MapConstraint
from jaqmoo.mapping.batchtile import TileSet
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.mapspace import CapacityEnvelope
from jaqmoo.mapping.model import Accesses
from jaqmoo.safe_write import atomic_write
from jaqmoo.workload import Layer

FORMAT = "jaqmoo-tiles-2"
OLD_FORMATS = ("jaqmoo-tiles-1",)  # zlib-compressed pickles: never loaded
DATA_CLASSES: dict[str, type] = {"TileSet": TileSet, "MappingBatch": MappingBatch, "Accesses": Accesses,
                                 "CapacityEnvelope": CapacityEnvelope, "Layer": Layer, "MapConstraint": MapConstraint}
"""The only classes a cache file is rebuilt into."""
SUFFIX = ".tiles"
_CODE_MODULES = ("jaqmoo.mapping.batchtile", "jaqmoo.mapping.mapper", "jaqmoo.mapping.mapping",
                 "jaqmoo.mapping.mapspace", "jaqmoo.mapping.mapspace.constraints",
                 "jaqmoo.mapping.mapspace.factorisation", "jaqmoo.mapping.mapspace.enumeration",
                 "jaqmoo.mapping.mapspace.neighbours", "jaqmoo.mapping.model", "jaqmoo.mapping.model.semantics",
                 "jaqmoo.mapping.model.geometry", "jaqmoo.mapping.model._numpy", "jaqmoo.mapping.model._numba",
                 "jaqmoo.mapping.tensors", "jaqmoo.hardware.spec", "jaqmoo.workload")
MAPPER_SETTINGS = ("budget", "min_utilization", "refine_top", "refine_rounds", "keep_top", "orders",
                   "chunk_rows", "seed")
"""The :class:`~jaqmoo.mapping.mapper.Mapper` fields a search's result depends on."""


class CacheWarning(UserWarning):
    """A cache file could not be read or written; the work is done (or kept) without it."""


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the package version and the sources of the cost model and mapper."""
    import importlib

    import jaqmoo

    h = hashlib.sha256(f"{FORMAT} {jaqmoo.__version__}".encode())
    for name in _CODE_MODULES:
        module = importlib.import_module(name)
        h.update(name.encode())
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def corners_digest(corners: Sequence[tuple[Any, tuple[int, int, int] | None]], metric: str, mapper: Any) -> str:
    """A hash of what every shape of one warm-up shares: the code, the corner designs (whole
    accelerators and bits, in order), the metric and the mapper's settings."""
    import numpy

    from jaqmoo.mapping.model import resolve_backend

    h = hashlib.sha256(code_fingerprint().encode())
    h.update(repr(("backend", resolve_backend(), numpy.__version__, "metric", metric)).encode())
    h.update(repr(tuple((name, getattr(mapper, name)) for name in MAPPER_SETTINGS)).encode())
    for accel, bits in corners:
        h.update(repr(("corner", accel, bits)).encode())
    return h.hexdigest()


def shape_cache_key(shape: tuple, corners: Sequence[tuple[Any, tuple[int, int, int] | None]] | str, metric: str = "",
                    mapper: Any = None) -> str:
    """The key of one layer shape's warm-up: a hash of everything that decides its tile sets
    (``corners`` may be their :func:`corners_digest`, computed once for all shapes)."""
    digest = corners if isinstance(corners, str) else corners_digest(corners, metric, mapper)
    return hashlib.sha256(repr((digest, "shape", shape)).encode()).hexdigest()


@dataclass
class TileSetCache:
    """The files of one cache folder (see the module doc)."""

    folder: Path

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).expanduser()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{SUFFIX}"

    def load(self, key: str) -> dict | None:
        """``{family: TileSet}`` stored under ``key``; None when absent or not trustworthy (warned)."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            warnings.warn(f"mapper cache: cannot read {path} ({exc}); recomputing it", CacheWarning, stacklevel=2)
            return None
        head, sep, payload = raw.partition(b"\n")
        try:
            if head.split(b" ")[0].decode("ascii", "replace") in OLD_FORMATS:
                raise ValueError("the old pickled format, which is never loaded (delete the file)")
            if not sep or head.decode("ascii") != f"{FORMAT} {hashlib.sha256(payload).hexdigest()}":
                raise ValueError("header or checksum does not match the content")
            header, arrays = load_bundle_bytes(payload, str(path), "it is recomputed")
            data = decode_tree(header.get("tree"), arrays, DATA_CLASSES)
            if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("sets"), dict):
                raise ValueError("it holds another entry")
            if not all(isinstance(ts, TileSet) for ts in data["sets"].values()):
                raise ValueError("it holds something else than tile sets")
        except Exception as exc:  # noqa: BLE001 - any damage means: do not use it
            warnings.warn(f"mapper cache: ignoring damaged file {path} ({type(exc).__name__}: {exc}); "
                          "recomputing it", CacheWarning, stacklevel=2)
            return None
        return data["sets"]

    def store(self, key: str, sets: dict) -> bool:
        """Write ``sets`` under ``key`` atomically; False (warned) when the folder is not writable."""
        path = self.path(key)
        tree, arrays = encode_tree({"key": key, "sets": {fam: _stripped(ts) for fam, ts in sets.items()}},
                                   DATA_CLASSES)
        payload = bundle_bytes({"tree": tree}, arrays, compress=True)
        try:  # readers see the old file or the whole new one; equal keys, equal content
            atomic_write(path, f"{FORMAT} {hashlib.sha256(payload).hexdigest()}\n".encode("ascii") + payload,
                         "a mapper cache file")
        except (OSError, JaqmooError) as exc:
            warnings.warn(f"mapper cache: cannot write {path} ({exc}); continuing without storing it",
                          CacheWarning, stacklevel=2)
            return False
        return True


def _stripped(ts: Any) -> Any:
    """A copy of a tile set without its memo tables (fits, descriptions, derived access arrays):
    everything they hold is recomputed on demand from what is kept."""
    import copy

    out = copy.copy(ts)
    out._fitted, out._described = {}, {}
    out.accesses = copy.copy(ts.accesses)
    for name, value in vars(ts.accesses).items():
        if isinstance(value, dict) and name.startswith("_"):
            setattr(out.accesses, name, {})
    return out


@dataclass
class WarmupStats:
    """What :func:`warm_up` did (for the run's timings and the tests)."""

    shapes: int = 0
    loaded: int = 0
    computed: int = 0
    waited_seconds: float = 0.0


def warm_up(mapper: Any, layers: Sequence[Any], corners: Sequence[tuple[Any, tuple[int, int, int] | None]],
            metric: str, cache: TileSetCache | None) -> WarmupStats:
    """Fill ``mapper``'s tile sets for ``layers`` on ``corners``, through ``cache`` when given.

    Equivalent to ``mapper.prepare(layers, [accel], bits)`` for every corner in order (what
    :meth:`JointEvaluator.prepare` does without a cache): the mapper ends in the same state.
    """
    import time

    from jaqmoo.mapping.mapper import shape_key

    shapes = {shape_key(layer): layer for layer in layers}
    stats = WarmupStats(shapes=len(shapes))
    if cache is None:
        _compute(mapper, list(shapes.values()), corners, metric)
        stats.computed = len(shapes)
        return stats
    digest = corners_digest(corners, metric, mapper)
    keys = {s: shape_cache_key(s, digest) for s in shapes}

    def load_missing(todo: dict) -> dict:
        left = {}
        for s, layer in todo.items():
            sets = cache.load(keys[s])
            if sets is None:
                left[s] = layer
                continue
            for fam, ts in sets.items():
                mapper.install_tile_set(layer, fam, ts)
            stats.loaded += 1
        return left

    missing = load_missing(shapes)
    if not missing:
        return stats
    lock = _warmup_lock(cache, sorted(keys[s] for s in missing))
    t0 = time.perf_counter()
    held = lock is not None and _acquire(lock)
    stats.waited_seconds = time.perf_counter() - t0
    try:
        if held:
            missing = load_missing(missing)  # a concurrent run may have written them meanwhile
        _compute(mapper, list(missing.values()), corners, metric)
        stats.computed = len(missing)
        store_tile_sets(cache, mapper, list(missing.values()), corners, metric)
    finally:
        if held:
            lock.release()
    return stats


def store_tile_sets(cache: TileSetCache, mapper: Any, layers: Sequence[Any],
                    corners: Sequence[tuple[Any, tuple[int, int, int] | None]], metric: str) -> int:
    """Write ``mapper``'s tile sets of ``layers`` (warmed up on ``corners``); files written.

    Stops at the first file that cannot be written (one warning, not one per shape).
    """
    from jaqmoo.mapping.batchtile import family_key
    from jaqmoo.mapping.mapper import shape_key

    families = list(dict.fromkeys(family_key(accel) for accel, _ in corners))
    digest = corners_digest(corners, metric, mapper)
    written = 0
    for s, layer in {shape_key(layer): layer for layer in layers}.items():
        sets = {fam: ts for fam in families if (ts := mapper.tile_set(layer, fam)) is not None}
        for ts in sets.values():
            _ = ts.dominated  # the dominance pruning, computed once here and stored with the set
        if not cache.store(shape_cache_key(s, digest), sets):
            break
        written += 1
    return written


def _compute(mapper: Any, layers: list, corners: Sequence, metric: str) -> None:
    for accel, bits in corners:
        mapper.prepare(layers, [accel], bits=bits, metric=metric)


def _warmup_lock(cache: TileSetCache, keys: list[str]) -> Any:
    """The lock of one warm-up (named by its missing shapes' keys); None when the folder cannot hold it."""
    from jaqmoo.locking import FolderLock

    name = hashlib.sha256(" ".join(keys).encode()).hexdigest()[:24] + ".lock"
    try:
        cache.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        warnings.warn(f"mapper cache: cannot create {cache.folder} ({exc}); warming up without it",
                      CacheWarning, stacklevel=3)
        return None
    return FolderLock(cache.folder, name, what="mapper warm-up")


def _acquire(lock: Any) -> bool:
    """Hold ``lock``, waiting while another process computes the same warm-up."""
    from jaqmoo.locking import wait_for_lock

    try:
        wait_for_lock(lock)
    except (OSError, JaqmooError) as exc:
        warnings.warn(f"mapper cache: cannot lock {lock.path} ({exc}); warming up without waiting",
                      CacheWarning, stacklevel=3)
        return False
    return True


__all__ = ["CacheWarning", "MAPPER_SETTINGS", "TileSetCache", "WarmupStats", "code_fingerprint", "corners_digest",
           "shape_cache_key", "store_tile_sets", "warm_up"]
