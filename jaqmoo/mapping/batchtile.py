"""BatchTile: one layer shape's tiling modes, encoded once, re-fitted to any PE array in one pass.

JAQ's BatchTile evaluates all tiling modes of a layer at once and re-uses them for every
hardware point of the search. Here a :class:`TileSet` holds the retained mappings of one
layer shape on one accelerator *family* (the same storage levels, keep/bypass rules and
mapspace constraints; any PE array size, buffer depth, word width, energy table and bit
width) together with their stage-A access counts, analyzed once. Re-fitting it to a
design (:func:`fit`) is a handful of array operations:

* **fan-out fit**: a mapping fits a PE array when, at every level, the product of its X
  (Y) spatial factors is at most the level's X (Y) fan-out -- a mask over the set;
* **link signature**: the access counts of a mapping depend on the PE array only through
  whether a level whose fan-out is split on both mesh axes is filled exactly along X
  (that decides which neighbour-forwarding links Timeloop models, see
  :mod:`jaqmoo.mapping.model`); rows whose signature differs from the one they were
  analyzed under are analyzed again (exact; none on the ``eyeriss`` template, whose Y
  fan-out level has no X fan-out);
* **dominance**: a row whose every stage-A count (reads, fills, updates, tiles, kept
  tensors, used instances, compute cycles) and spatial factor product is at least another
  row's can never cost less, fit where the other does not, or be faster, on any design of
  the family at any bits (stage B is monotone in each), so it is dropped once per set
  (:func:`dominated`); counts whose effect is not monotone must be equal;
* **capacity, bit-packing, energy, cycles**: stage B (:func:`jaqmoo.mapping.model.cost`)
  on the fitted rows, which also drops the mappings that overflow a buffer.

The result is exact for every mapping in the set (the model's own numbers); what the set
holds is decided by the searches that encoded it (:meth:`jaqmoo.mapping.mapper.Mapper.prepare`
on corner designs of a hardware search space).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from jaqmoo.mapping.mapping import MappingBatch, describe
from jaqmoo.mapping.mapspace import CapacityEnvelope, row_hash
from jaqmoo.mapping.model import Accesses, analyze
from jaqmoo.workload import Layer


def family_key(accel) -> tuple:
    """What a :class:`TileSet` may be shared across: everything but meshes, depths, widths, energies."""
    return (tuple((lvl.name, lvl.is_dummy, lvl.keep, lvl.bypass) for lvl in accel.levels),
            accel.compute.name, accel.constraints)


def fanout_products(batch: MappingBatch) -> np.ndarray:
    """int64 [M, L, 2]: per mapping and level, the product of its X and of its Y spatial factors."""
    return np.stack([batch.spatial_x.prod(axis=2), batch.spatial_y.prod(axis=2)], axis=2)


def fanout_caps(accel) -> np.ndarray:
    """int64 [L, 2]: the (X, Y) fan-out below every level of ``accel``."""
    return np.asarray(accel.fanouts, dtype=np.int64).reshape(accel.n_levels, 2)


def link_signature(fan: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """bool [M, L]: levels split on the Y mesh whose X split fills the X fan-out exactly.

    The only way the PE array enters stage A besides the fan-out check (the kernel's
    ``mesh_ok``): for a level with a Y split, neighbour links are modelled only when its X
    split fills the X mesh; a level without a Y split does not depend on the mesh at all.
    """
    return (fan[:, :, 1] > 1) & (fan[:, :, 0] == caps[None, :, 0])


MONOTONE_FIELDS: tuple[str, ...] = ("rfu", "tile_f", "keep", "used_f", "instances_f", "compute_instances_f",
                                     "compute_cycles_f")
"""Stage-A arrays stage B is non-decreasing in (more accesses, larger tiles, more kept tensors,
more utilized instances, more cycles never lower energy, cycles or feasibility)."""
IGNORED_FIELDS: tuple[str, ...] = ("fanout_ok", "fanout_fail_level", "partition_f")
"""Stage-A arrays stage B does not read (fan-out fit is compared through the factor products)."""


def dominance_matrix(acc: Accesses, fan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 [M, k] monotone columns and int64 [M] group ids (rows must share a group to compare).

    Every other (unknown) stage-A array must be equal between two rows for one to dominate
    the other, so a new count whose effect stage B does not make monotone stays exact.
    """
    n = len(acc)
    cols = [fan.reshape(n, -1).astype(np.float64)]
    exact = []
    for name, value in vars(acc).items():
        if not isinstance(value, np.ndarray) or name in IGNORED_FIELDS:
            continue
        (cols if name in MONOTONE_FIELDS else exact).append(value.reshape(n, -1).astype(np.float64))
    x = np.concatenate(cols, axis=1)
    x = x[:, x.min(axis=0) < x.max(axis=0)]  # constant columns decide nothing
    if exact:
        _, group = np.unique(np.concatenate(exact, axis=1), axis=0, return_inverse=True)
    else:
        group = np.zeros(n, dtype=np.int64)
    return x, group.reshape(-1)


def dominated(acc: Accesses, fan: np.ndarray) -> np.ndarray:
    """bool [M]: rows another row dominates (ties: all but the first of equal rows)."""
    x, group = dominance_matrix(acc, fan)
    out = np.zeros(len(acc), dtype=bool)
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        order = idx[np.argsort(x[idx].sum(axis=1), kind="stable")]  # a dominator sorts first
        front: list[int] = []  # non-dominated so far (dominance is transitive: enough to check)
        for i in order:
            if front and (x[front] <= x[i]).all(axis=1).any():
                out[i] = True
            else:
                front.append(int(i))
    return out


def merge_dominance(acc: Accesses, fan: np.ndarray, old: np.ndarray) -> np.ndarray:
    """bool [M]: :func:`dominated` of a set whose first ``len(old)`` rows had dominance ``old``.

    Rows dominated before stay dominated (by transitivity, by a row kept now); only the new
    rows (the last ``M - len(old)``) are compared: each against the kept old rows and the other
    new rows, and each kept old row against the new rows. Ties keep the earlier row.
    """
    n_old = len(old)
    cand = np.concatenate([np.flatnonzero(~old), np.arange(n_old, len(acc))])
    x, group = dominance_matrix(take_rows(acc, cand), fan[cand])
    is_new = cand >= n_old
    out = np.concatenate([old, np.zeros(len(acc) - n_old, dtype=bool)])
    for g in np.unique(group[is_new]):
        members = np.flatnonzero(group == g)
        xg, newg = x[members], is_new[members]
        for j in np.flatnonzero(newg):  # can a member dominate new row j, or j dominate an old member?
            le = (xg <= xg[j]).all(axis=1)
            eq = le & (xg == xg[j]).all(axis=1)
            le[j] = False
            if (le & ~eq).any() or (eq & (np.arange(len(members)) < j)).any():
                out[cand[members[j]]] = True
            ge = (xg >= xg[j]).all(axis=1) & ~newg
            ge &= ~(xg == xg[j]).all(axis=1)  # strictly worse old rows
            out[cand[members[ge]]] = True
    return out


def take_rows(acc: Accesses, index) -> Accesses:
    """The mappings ``index`` of an :class:`Accesses` (every array field is per mapping)."""
    out = copy.copy(acc)
    for name, value in vars(acc).items():
        if isinstance(value, np.ndarray):
            setattr(out, name, value[index])
        elif isinstance(value, dict) and name.startswith("_"):
            setattr(out, name, {})  # private caches of full-size derived arrays
    return out


def _put_rows(acc: Accesses, index: np.ndarray, part: Accesses) -> None:
    """Overwrite rows ``index`` of ``acc`` (fresh arrays, from :func:`take_rows`) with ``part``."""
    for name, value in vars(acc).items():
        if isinstance(value, np.ndarray):
            value[index] = getattr(part, name)


@dataclass
class TileSet:
    """Retained mappings of one layer shape on one accelerator family, analyzed once."""

    envelope: CapacityEnvelope
    """Union of the capacity envelopes the encoding searches pruned with."""
    batch: MappingBatch
    accesses: Accesses
    """Stage-A counts of ``batch`` under the topology ``caps`` belongs to."""
    caps: np.ndarray
    """int64 [L, 2]: fan-outs of the design ``accesses`` was analyzed on."""
    topologies: set = field(default_factory=set)
    """``Accelerator.topology_key`` of every design a full search encoded into this set."""
    level_names: tuple[str, ...] = ()
    """Names the mapping descriptions use."""
    fan: np.ndarray = field(init=False, repr=False)
    _fitted: dict = field(default_factory=dict, repr=False)
    _described: dict = field(default_factory=dict, repr=False)
    _dominated: np.ndarray | None = field(default=None, repr=False)
    _keys: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.fan = fanout_products(self.batch)

    def __len__(self) -> int:
        return len(self.batch)

    def describe(self, row: int) -> str:
        """The one-line description of mapping ``row`` (cached: a tile set's rows never change)."""
        text = self._described.get(row)
        if text is None:
            text = self._described[row] = describe(self.batch, row, self.level_names)
        return text

    @classmethod
    def encode(cls, layer: Layer, accel, batch: MappingBatch, envelope: CapacityEnvelope,
               previous: TileSet | None = None) -> TileSet:
        """A set holding ``batch`` (and ``previous``'s rows), analyzed on ``accel``."""
        topologies = {accel.topology_key}
        if previous is not None:
            batch = MappingBatch.concat([previous.batch, batch])
            _, first = np.unique(row_keys(batch), return_index=True)
            batch = batch.take(np.sort(first))
            envelope = previous.envelope.union(envelope)
            topologies |= previous.topologies
        return cls(envelope, batch, analyze(layer, accel, batch), fanout_caps(accel), topologies,
                   tuple(lvl.name for lvl in accel.levels))

    def merged(self, layer: Layer, accel, batch: MappingBatch, envelope: CapacityEnvelope) -> TileSet:
        """This set plus the rows of ``batch`` (searched on ``accel``) it lacks, built incrementally.

        Same rows and counts as :meth:`encode` with ``previous=self``, without re-analyzing the
        set: only the new rows are analyzed (on ``accel``, whose counts equal those on this set's
        topology when their link signatures agree; else the whole set is encoded again), appended
        after the old ones (whose indices, descriptions and dominance stay valid), and only they
        are compared for dominance against the rows this set kept (:func:`merge_dominance`).
        """
        keys = row_keys(batch)
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)
        first = first[~np.isin(keys[first], self.keys)]
        topologies = self.topologies | {accel.topology_key}
        envelope = self.envelope.union(envelope)
        if len(first) == 0:
            return dataclasses.replace(self, envelope=envelope, topologies=topologies,
                                       _fitted={}, _described=self._described, _dominated=self._dominated)
        batch = batch.take(first)
        fan = fanout_products(batch)
        if (link_signature(fan, fanout_caps(accel)) != link_signature(fan, self.caps)).any():
            return TileSet.encode(layer, accel, batch, envelope, previous=self)
        new = analyze(layer, accel, batch)
        bad = (fan > self.caps[None]).any(axis=2)  # fan-out fit on this set's topology
        new.fanout_ok = ~bad.any(axis=1)
        new.fanout_fail_level = np.where(new.fanout_ok, -1, bad.argmax(axis=1)).astype(np.int64)
        acc = copy.copy(self.accesses)
        for name, value in vars(self.accesses).items():
            if isinstance(value, np.ndarray):
                setattr(acc, name, np.concatenate([value, getattr(new, name)]))
            elif isinstance(value, dict) and name.startswith("_"):
                setattr(acc, name, {})
        out = TileSet(envelope, MappingBatch.concat([self.batch, batch]), acc, self.caps, topologies,
                      self.level_names, _described=self._described)
        if self._dominated is not None:
            out._dominated = merge_dominance(out.accesses, out.fan, self._dominated)
        return out

    @property
    def keys(self) -> np.ndarray:
        """int64 [M]: :func:`row_keys` of the set's mappings (computed once)."""
        if self._keys is None:
            self._keys = row_keys(self.batch)
        return self._keys

    def fit(self, layer: Layer, accel, max_fitted: int = 64) -> tuple[np.ndarray, MappingBatch, Accesses]:
        """The rows that fit ``accel``'s PE array, their mappings and their exact stage-A counts
        (:meth:`fit_rows`, with the mappings taken out of the set)."""
        rows, acc = self.fit_rows(layer, accel, max_fitted)
        return rows, self.batch.take(rows), acc

    def fit_rows(self, layer: Layer, accel, max_fitted: int = 64) -> tuple[np.ndarray, Accesses]:
        """The rows that fit ``accel``'s PE array and their exact stage-A counts.

        Cached per topology (``max_fitted`` most recent): a hardware search revisits PE arrays.
        The mappings are not copied (``self.batch.take(rows[i])`` gives one): a re-fit only
        needs their counts.
        """
        key = accel.topology_key
        hit = self._fitted.pop(key, None)
        if hit is None:
            hit = self._fit(layer, accel)
        self._fitted[key] = hit  # most recent last
        while len(self._fitted) > max_fitted:
            self._fitted.pop(next(iter(self._fitted)))
        return hit

    @property
    def dominated(self) -> np.ndarray:
        """bool [M]: rows another row of the set dominates (:func:`dominated`, computed once)."""
        if self._dominated is None:
            self._dominated = dominated(self.accesses, self.fan)
        return self._dominated

    def _fit(self, layer: Layer, accel) -> tuple[np.ndarray, Accesses]:
        caps = fanout_caps(accel)
        fits = (self.fan <= caps[None]).all(axis=(1, 2))
        stale = (link_signature(self.fan, self.caps) != link_signature(self.fan, caps)).any(axis=1) & fits
        if not stale.any():  # the reference counts hold for every fitting row: so does dominance
            fits &= ~self.dominated
        rows = np.flatnonzero(fits)
        acc = take_rows(self.accesses, rows)
        if accel.topology_key != self.accesses.topology:
            n = len(rows)
            acc = dataclasses.replace(acc, topology=accel.topology_key, fanout_ok=np.ones(n, dtype=bool),
                                      fanout_fail_level=np.full(n, -1, dtype=np.int64))
            patch = np.flatnonzero(stale[rows])
            if len(patch):
                _put_rows(acc, patch, analyze(layer, accel, self.batch.take(rows[patch])))
        return rows, acc


@dataclass(frozen=True)
class RowView:
    """Rows ``rows`` of ``batch`` without copying them: :meth:`take` copies only what it selects."""

    batch: MappingBatch
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, index) -> MappingBatch:
        """The sub-batch of the viewed rows selected by ``index`` (as ``MappingBatch.take``)."""
        return self.batch.take(self.rows[index])


def row_keys(batch: MappingBatch) -> np.ndarray:
    """int64 [M]: a hash of every mapping (factors, order, keeps)."""
    return row_hash(np.concatenate([
        batch.temporal.reshape(len(batch), -1), batch.spatial_x.reshape(len(batch), -1),
        batch.spatial_y.reshape(len(batch), -1), batch.perm.reshape(len(batch), -1),
        batch.keep.reshape(len(batch), -1),
    ], axis=1))


__all__ = ["IGNORED_FIELDS", "MONOTONE_FIELDS", "RowView", "TileSet", "dominance_matrix", "dominated", "merge_dominance", "family_key", "fanout_caps", "fanout_products", "link_signature", "row_keys", "take_rows"]
