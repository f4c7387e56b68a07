"""Enumeration: the :class:`Mapspace` of one layer (every factor split that fits, or a
stratified sample of them), its loop orders and bypass choices expanded into mappings, and
the membership test (see :mod:`jaqmoo.mapping.mapspace`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.mapspace.constraints import (
    AXIS_X,
    AXIS_Y,
    D_G,
    GROUP_DIMS,
    IRRELEVANT_TO,
    KEEP_FREE,
    KEEP_YES,
    N_DIMS,
    CapacityEnvelope,
    MapspaceSpec,
    fits_envelope,
    for_layer,
    forced_keep,
)
from jaqmoo.mapping.mapspace.factorisation import build_units, row_hash, tiles_of
from jaqmoo.workload import Layer

# --------------------------------------------------------------------------- candidates


def empty_batch(n_levels: int) -> MappingBatch:
    """A batch of no mappings over ``n_levels`` levels."""
    z = np.zeros((0, n_levels, N_DIMS), dtype=np.int64)
    return MappingBatch(z, z.copy(), z.copy(), z.copy(), np.zeros((0, n_levels, 3), dtype=bool))


def _order_tables(spec: MapspaceSpec, halo: bool) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
    """Per level: candidate permutations and their (group, innermost dim) signature.

    Entry 0 (signature (-1, -1)) is the canonical order, used when no choice matters.
    """
    tables = []
    for rule in spec.rules:
        prefix = list(rule.permutation)

        def build(first_group: int, first_dim: int | None, prefix=prefix) -> list[int]:
            order = list(prefix)
            groups = [first_group] + [g for g in range(3) if g != first_group] if first_group >= 0 else [0, 1, 2]
            for g in groups:
                dims = list(GROUP_DIMS[g])
                if first_dim is not None and g == first_group:
                    dims.remove(first_dim)
                    dims.insert(0, first_dim)
                order += [d for d in dims if d not in order]
            if D_G not in order:
                order.append(D_G)
            return order

        perms, sigs = [build(-1, None)], [(-1, -1)]
        for g in range(3):
            for d in (GROUP_DIMS[g] if halo else (None,)):
                perms.append(build(g, d))
                sigs.append((g, -1 if d is None else d))
        tables.append((np.array(perms, dtype=np.int64), sigs))
    return tables


def expand_orders(temporal: np.ndarray, spec: MapspaceSpec, halo: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every reuse-distinct loop order for each row of ``temporal`` ``[n, L, 8]``.

    Returns the source row of each output and the permutations ``[M, L, 8]``.
    """
    rows = np.arange(len(temporal))
    choice = np.zeros((len(temporal), spec.n_levels), dtype=np.int64)
    tables = _order_tables(spec, halo)
    for lvl, rule in enumerate(spec.rules):
        _, sigs = tables[lvl]
        nonunit = temporal[rows, lvl] > 1
        prefix = list(rule.permutation)
        valid = np.zeros((len(rows), len(sigs)), dtype=bool)
        for j, (g, d) in enumerate(sigs):
            if g < 0:
                continue
            gd = [x for x in GROUP_DIMS[g] if x not in prefix]
            if d >= 0:
                if d in gd:
                    valid[:, j] = nonunit[:, d]
            elif gd:
                valid[:, j] = nonunit[:, gd].any(axis=1)
        if prefix:
            valid[nonunit[:, prefix].any(axis=1)] = False  # a constrained innermost loop decides
        # with fewer than two candidate signatures, the order cannot change reuse
        single = valid.sum(axis=1) < 2
        valid[single] = False
        valid[single, 0] = True
        r_idx, c_idx = np.nonzero(valid)
        rows, choice = rows[r_idx], choice[r_idx]
        choice[:, lvl] = c_idx
    perm = np.stack([tables[lvl][0][choice[:, lvl]] for lvl in range(spec.n_levels)], axis=1)
    return rows, perm


def _innermost(perm: np.ndarray, temporal: np.ndarray) -> int:
    """The innermost non-unit loop's dimension of one level (-1 if every loop is 1)."""
    for d in perm:
        if temporal[d] > 1:
            return int(d)
    return -1


def _order_enumerated(batch, i: int, spec: MapspaceSpec, halo: bool) -> bool:
    """Mapping ``i``'s loop orders match, level by level, one :func:`expand_orders` gives."""
    temporal = batch.temporal[i]
    _, perms = expand_orders(temporal[None], spec, halo)
    for cand in perms:
        same = True
        for lvl in range(spec.n_levels):
            d_ref = _innermost(cand[lvl], temporal[lvl])
            d_map = _innermost(batch.perm[i, lvl], temporal[lvl])
            if d_ref == d_map:
                continue
            sigs_here = {tuple(p[lvl]) for p in perms}
            if len(sigs_here) == 1:  # one order enumerated: the order cannot change reuse here
                continue
            if halo or d_ref < 0 or d_map < 0 or IRRELEVANT_TO[d_ref] != IRRELEVANT_TO[d_map]:
                same = False
                break
        if same:
            return True
    return False


def _keep_options(spec: MapspaceSpec) -> np.ndarray:
    """``[k, L, 3]`` keep masks covering every free bypass choice."""
    base = np.array([[k == KEEP_YES for k in r.keep] for r in spec.rules], dtype=bool)
    free = [(lvl, t) for lvl, r in enumerate(spec.rules) for t, k in enumerate(r.keep) if k == KEEP_FREE]
    combos = list(itertools.product([False, True], repeat=len(free)))
    combos = np.array(combos, dtype=bool).reshape(len(combos), len(free))
    keeps = np.repeat(base[None], len(combos), axis=0)
    for j, (lvl, t) in enumerate(free):
        keeps[:, lvl, t] = combos[:, j]
    return keeps



def _perm_respected(perm: np.ndarray, temporal: np.ndarray, prefix: tuple[int, ...]) -> np.ndarray:
    """bool [M]: the non-unit loops of ``prefix`` are innermost, in ``prefix`` order.

    Loops of size 1 may sit anywhere (they change nothing), as in Timeloop's own output.
    """
    pos = np.argsort(perm, axis=1)  # [M, 8] position of each dim, 0 = innermost
    big = np.iinfo(np.int64).max
    nonunit = temporal > 1
    ok = np.ones(len(perm), dtype=bool)
    last = np.full(len(perm), -1, dtype=np.int64)
    for d in prefix:
        p = np.where(nonunit[:, d], pos[:, d], -1)
        ok &= ~nonunit[:, d] | (p > last)
        last = np.maximum(last, p)
    others = [d for d in range(N_DIMS) if d not in prefix]
    if others:
        first_other = np.where(nonunit[:, others], pos[:, others], big).min(axis=1)
        ok &= last < first_other
    return ok


def satisfies(batch, layer: Layer, spec: MapspaceSpec, envelope: CapacityEnvelope | None = None) -> np.ndarray:
    """bool ``[M]``: factors cover the layer, respect every constraint, fit the fan-outs (and envelope)."""
    spec = for_layer(spec, layer)
    ok = batch.covers(layer)
    fx = np.array(spec.fanout_x)[None, :]
    fy = np.array(spec.fanout_y)[None, :]
    ok &= np.all(batch.spatial_x.prod(axis=2) <= fx, axis=1) & np.all(batch.spatial_y.prod(axis=2) <= fy, axis=1)
    for lvl, rule in enumerate(spec.rules):
        for d in range(N_DIMS):
            if rule.temporal[d] == 1:
                ok &= batch.temporal[:, lvl, d] == 1
            if rule.spatial[d] == 1:
                ok &= batch.spatial[:, lvl, d] == 1
            if rule.spatial_axis[d] == AXIS_X:
                ok &= batch.spatial_y[:, lvl, d] == 1
            if rule.spatial_axis[d] == AXIS_Y:
                ok &= batch.spatial_x[:, lvl, d] == 1
        if rule.permutation:
            ok &= _perm_respected(batch.perm[:, lvl], batch.temporal[:, lvl], rule.permutation)
        for t, k in enumerate(rule.keep):
            if k != KEEP_FREE:
                ok &= batch.keep[:, lvl, t] == bool(k)
    if envelope is not None:
        ok &= fits_envelope(tiles_of(batch, layer), batch.keep.astype(np.float64), envelope)
    return ok


class Mapspace:
    """The constrained, pruned mapspace of one layer on one topology.

    Factor splits are handled as compact option indices (one per dimension unit); full
    mappings (loop orders and free bypass choices expanded) are materialized on demand.
    :meth:`factor_rows` enumerates every split that fits; :meth:`sample` draws a subset
    without enumerating the rest (exhaustive when the space is small).

    Args:
        layer: the layer.
        spec: the accelerator's :class:`MapspaceSpec`.
        envelope: capacity envelope to prune with (None: no capacity pruning).
        orders: ``"reuse"`` (one order per innermost reuse group) or ``"halo"`` (also vary
            the innermost dimension of that group).
        min_utilization: drop factor splits that use fewer than this fraction of the most
            PEs any split of this layer uses (0 keeps all).
    """

    def __init__(self, layer: Layer, spec: MapspaceSpec, envelope: CapacityEnvelope | None = None,
                 orders: str = "reuse", min_utilization: float = 0.0, max_rows: int = 1 << 20) -> None:
        if orders not in ("reuse", "halo"):
            raise JaqmooError(f"orders must be 'reuse' or 'halo' (got {orders!r})")
        self.layer = layer
        self.spec = spec = for_layer(spec, layer)
        self.envelope = envelope
        self.halo = orders == "halo"
        self.min_utilization = float(min_utilization)
        self.max_rows = max_rows
        self.units = build_units(layer, spec, envelope)
        self._keeps = _keep_options(spec)
        self._keep_forced = forced_keep(spec)[None]
        self._fx = np.array(spec.fanout_x)[None, :]
        self._fy = np.array(spec.fanout_y)[None, :]
        self.n_pruned_spatial = 0
        self.n_pruned_capacity = 0
        self.n_pruned_utilization = 0
        self._rows: tuple[np.ndarray, np.ndarray] | None = None
        self._configs: tuple[np.ndarray, list] | None = None

    @property
    def unpruned_size(self) -> int:
        """Factor splits before the joint fan-out/capacity checks (product of option counts)."""
        return math.prod(len(u.factors) for u in self.units)

    # -- factor enumeration -------------------------------------------------
    def _factor_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        n_levels = self.spec.n_levels
        start = (np.zeros((1, 0), dtype=np.int32), np.ones((1, n_levels), dtype=np.int64),
                 np.ones((1, n_levels), dtype=np.int64), np.ones((1, 3, n_levels), dtype=np.float64))
        if any(len(u.factors) == 0 for u in self.units):
            return

        def expand(state, ui):
            idx, spx, spy, tiles = state
            if ui == len(self.units):
                yield idx, tiles, (spx * spy).prod(axis=1)
                return
            unit = self.units[ui]
            k = len(unit.factors)
            step = max(1, self.max_rows // max(k, 1))
            for s in range(0, len(idx), step):
                sl = slice(s, s + step)
                n = len(idx[sl])
                base = np.repeat(np.arange(n), k)
                opt = np.tile(np.arange(k), n)
                nspx = spx[sl][base] * unit.spx[opt]
                nspy = spy[sl][base] * unit.spy[opt]
                ok = np.all(nspx <= self._fx, axis=1) & np.all(nspy <= self._fy, axis=1)
                self.n_pruned_spatial += int((~ok).sum())
                base, opt, nspx, nspy = base[ok], opt[ok], nspx[ok], nspy[ok]
                ntiles = tiles[sl][base] * unit.tile[opt]
                fit = fits_envelope(ntiles, self._keep_forced, self.envelope)
                self.n_pruned_capacity += int((~fit).sum())
                if not fit.any():
                    continue
                nidx = np.concatenate([idx[sl][base], opt[:, None].astype(np.int32)], axis=1)[fit]
                yield from expand((nidx, nspx[fit], nspy[fit], ntiles[fit]), ui + 1)

        yield from expand(start, 0)

    def _floor(self, idx: np.ndarray, tiles: np.ndarray, pes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.min_utilization > 0 and len(pes):
            keep = pes >= self.min_utilization * pes.max()
            self.n_pruned_utilization += int((~keep).sum())
            return idx[keep], tiles[keep]
        return idx, tiles

    def factor_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every factor split that fits: option indices ``[n, units]`` and tiles ``[n, 3, L]``."""
        if self._rows is None:
            parts = list(self._factor_chunks())
            if parts:
                self._rows = self._floor(np.concatenate([p[0] for p in parts]),
                                         np.concatenate([p[1] for p in parts]),
                                         np.concatenate([p[2] for p in parts]))
            else:
                self._rows = (np.zeros((0, len(self.units)), dtype=np.int32), np.zeros((0, 3, self.spec.n_levels)))
        return self._rows

    def __len__(self) -> int:
        """Number of factor splits that fit (enumerates them)."""
        return len(self.factor_rows()[0])

    def sample(self, budget: int, seed: int = 0, exhaustive_limit: int = 200_000,
               max_draws: int | None = None, tries: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """At most ``budget`` distinct factor splits that fit, ``(idx, tiles)``.

        If the unpruned space has at most ``exhaustive_limit`` splits they are enumerated
        and, if more than ``budget`` fit, a uniform sample is drawn. Otherwise splits are
        drawn stratified over the parallelizations: every spatial assignment that fits the
        fan-outs and the utilization floor is enumerated, and the draws cycle through them;
        for each, the temporal splits are built one dimension at a time, each drawing
        ``tries`` options (with that spatial part) and keeping the first whose tiles still
        fit the envelope. Draws continue until ``budget`` distinct splits were found or
        ``max_draws`` (default: 40 x budget) were started.
        """
        rng = np.random.default_rng(seed)
        if self.unpruned_size <= exhaustive_limit:
            idx, tiles = self.factor_rows()
            if len(idx) > budget:
                sel = np.sort(rng.choice(len(idx), size=budget, replace=False))
                idx, tiles = idx[sel], tiles[sel]
            return idx, tiles
        if any(len(u.factors) == 0 for u in self.units):
            return np.zeros((0, len(self.units)), dtype=np.int32), np.zeros((0, 3, self.spec.n_levels))
        found_idx = np.zeros((0, len(self.units)), dtype=np.int32)
        found_tiles = np.zeros((0, 3, self.spec.n_levels))
        found_pes = np.zeros(0, dtype=np.int64)
        radix = np.cumprod([1] + [len(u.factors) for u in self.units[:-1]]).astype(np.int64)
        drawn = 0

        def passing() -> int:
            if self.min_utilization <= 0 or not len(found_pes):
                return len(found_pes)
            return int((found_pes >= self.min_utilization * found_pes.max()).sum())

        rows = max(2 * budget, 1024)
        max_draws = 20 * rows if max_draws is None else max_draws
        while passing() < budget and drawn < max_draws:
            idx, tiles, pes = self._draw(rng, rows, tries)
            drawn += rows
            found_idx = np.concatenate([found_idx, idx])
            found_tiles = np.concatenate([found_tiles, tiles])
            found_pes = np.concatenate([found_pes, pes])
            _, first = np.unique(found_idx.astype(np.int64) @ radix, return_index=True)  # exact mixed-radix key
            first = np.sort(first)  # keep draw order: truncation keeps a random subset
            found_idx, found_tiles, found_pes = found_idx[first], found_tiles[first], found_pes[first]
        if not len(found_idx):
            return found_idx, found_tiles
        idx, tiles = self._floor(found_idx, found_tiles, found_pes)
        return idx[:budget], tiles[:budget]

    def _spatial_configs(self, limit: int = 50_000) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """Every way to parallelize the layer that fits the fan-outs and the utilization floor.

        Returns the configurations as spatial-signature indices ``[n, units]`` and, per unit,
        (option indices sorted by signature, start, count) to draw temporal splits from.
        """
        if self._configs is not None:
            return self._configs
        n_levels = self.spec.n_levels
        per_unit = []
        sig_sp = []
        for unit in self.units:
            sp = unit.factors[:, 1:].reshape(len(unit.factors), -1)
            _, sig, inverse = np.unique(row_hash(sp), return_index=True, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            counts = np.bincount(inverse, minlength=len(sig))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            per_unit.append((order, starts, counts))
            sig_sp.append((unit.spx[sig], unit.spy[sig]))
        cfg = np.zeros((1, 0), dtype=np.int64)
        spx = np.ones((1, n_levels), dtype=np.int64)
        spy = np.ones((1, n_levels), dtype=np.int64)
        for u in range(len(self.units)):
            ux, uy = sig_sp[u]
            k = len(ux)
            base = np.repeat(np.arange(len(cfg)), k)
            opt = np.tile(np.arange(k), len(cfg))
            nx, ny = spx[base] * ux[opt], spy[base] * uy[opt]
            ok = np.all(nx <= self._fx, axis=1) & np.all(ny <= self._fy, axis=1)
            cfg = np.concatenate([cfg[base[ok]], opt[ok, None]], axis=1)
            spx, spy = nx[ok], ny[ok]
        pes = (spx * spy).prod(axis=1)
        if self.min_utilization > 0 and len(pes):
            keep = pes >= self.min_utilization * pes.max()
            cfg, pes = cfg[keep], pes[keep]
        if len(cfg) > limit:  # keep the most parallel ones
            cfg = cfg[np.argsort(-pes, kind="stable")[:limit]]
        self._configs = (cfg, per_unit)
        return self._configs

    def _draw(self, rng: np.random.Generator, rows: int, tries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``rows`` random factor splits, stratified over the parallelizations (see :meth:`sample`)."""
        cfg, per_unit = self._spatial_configs()
        n_levels = self.spec.n_levels
        if not len(cfg):
            return (np.zeros((0, len(self.units)), dtype=np.int32), np.zeros((0, 3, n_levels)),
                    np.zeros(0, dtype=np.int64))
        pick_cfg = cfg[rng.permutation(np.arange(rows) % len(cfg))]
        idx = np.zeros((rows, len(self.units)), dtype=np.int32)
        spx = np.ones((rows, n_levels), dtype=np.int64)
        spy = np.ones_like(spx)
        tiles = np.ones((rows, 3, n_levels))
        for u, unit in enumerate(self.units):
            order, starts, counts = per_unit[u]
            n = len(idx)
            sig = np.repeat(pick_cfg[:, u], tries)
            c = order[starts[sig] + (rng.random(n * tries) * counts[sig]).astype(np.int64)]
            base = np.repeat(np.arange(n), tries)
            ct = tiles[base] * unit.tile[c]
            ok = fits_envelope(ct, self._keep_forced, self.envelope).reshape(n, tries)
            alive = ok.any(axis=1)
            pick = (np.arange(n) * tries + np.argmax(ok, axis=1))[alive]
            idx, pick_cfg = idx[alive], pick_cfg[alive]
            idx[:, u] = c[pick]
            spx, spy, tiles = spx[base[pick]] * unit.spx[c[pick]], spy[base[pick]] * unit.spy[c[pick]], ct[pick]
            if not len(idx):
                break
        return idx, tiles, (spx * spy).prod(axis=1)

    def max_pes(self) -> int:
        """The most PEs (product of all spatial factors) any factor split of the layer uses."""
        cfg, per_unit = self._spatial_configs()
        if not len(cfg):
            return 0
        pes = np.ones(len(cfg), dtype=np.int64)
        for u, unit in enumerate(self.units):
            order, starts, _ = per_unit[u]
            rep = order[starts[cfg[:, u]]]  # one option with that spatial signature
            pes *= unit.spx[rep].prod(axis=1) * unit.spy[rep].prod(axis=1)
        return int(pes.max())

    def exclusions(self, batch) -> list[str]:
        """Per mapping of ``batch``: ``""`` if it is a point of this mapspace, else why not.

        A point: it respects every constraint, fits the fan-outs and the capacity envelope
        (:func:`satisfies`), uses at least ``min_utilization`` of :meth:`max_pes`, and its loop
        order at every level is reuse-equivalent to one :func:`expand_orders` enumerates for
        its factors (same innermost non-unit loop group, and dimension with ``orders="halo"``;
        the order of the outer loops, and any order where at most one group is non-unit, does
        not change the model's counts)."""
        ok = satisfies(batch, self.layer, self.spec, self.envelope)
        base = satisfies(batch, self.layer, self.spec, None)
        floor = self.min_utilization * self.max_pes()
        pes = (batch.spatial_x.prod(axis=2) * batch.spatial_y.prod(axis=2)).prod(axis=1)
        out = []
        for i in range(len(batch)):
            if not base[i]:
                out.append("violates a constraint or exceeds a fan-out")
            elif not ok[i]:
                out.append("a tile exceeds the capacity envelope")
            elif pes[i] < floor:
                out.append(f"uses {int(pes[i])} PEs, under the utilization floor "
                           f"{self.min_utilization:g} x {self.max_pes()}")
            elif not _order_enumerated(batch, i, self.spec, self.halo):
                out.append("its loop order is not reuse-equivalent to an enumerated one")
            else:
                out.append("")
        return out

    def sample_rows(self, budget: int, seed: int = 0) -> np.ndarray:
        """Row numbers of a uniform sample of :meth:`factor_rows` (enumerates the whole space;
        :meth:`sample` is much faster on large spaces)."""
        n = len(self)
        if n <= budget:
            return np.arange(n)
        return np.sort(np.random.default_rng(seed).choice(n, size=budget, replace=False))

    # -- materialization ----------------------------------------------------
    def _factors(self, idx: np.ndarray) -> np.ndarray:
        out = np.ones((len(idx), 3, self.spec.n_levels, N_DIMS), dtype=np.int64)
        for u, unit in enumerate(self.units):
            dims = list(unit.dims)
            out[..., dims] = unit.factors[idx[:, u]][..., dims]
        return out

    def materialize(self, idx: np.ndarray, tiles: np.ndarray | None = None):
        """Full mappings (every loop order / free bypass choice) of factor splits.

        ``materialize(*space.sample(...))`` takes the ``(idx, tiles)`` of :meth:`sample`;
        ``materialize(rows)`` takes row numbers of :meth:`factor_rows` (see :meth:`sample_rows`).
        """
        if tiles is None:
            all_idx, all_tiles = self.factor_rows()
            rows = np.asarray(idx, dtype=np.int64)
            idx, tiles = all_idx[rows], all_tiles[rows]
        if len(idx) == 0:
            return empty_batch(self.spec.n_levels)
        f = self._factors(idx)
        k = len(self._keeps)
        src = np.repeat(np.arange(len(idx)), k)
        keep = np.tile(self._keeps, (len(idx), 1, 1))
        if k > 1:  # free bypass choices: re-check capacity with the real keeps
            fit = fits_envelope(tiles[src], keep.astype(np.float64), self.envelope)
            src, keep = src[fit], keep[fit]
        orows, perm = expand_orders(f[src, 0], self.spec, self.halo)
        src = src[orows]
        return MappingBatch(f[src, 0], f[src, 1], f[src, 2], perm, keep[orows])

    def chunks(self, chunk_rows: int = 1 << 14) -> Iterator:
        """The whole mapspace as :class:`MappingBatch` chunks (``chunk_rows`` factor splits each)."""
        idx, tiles = self.factor_rows()
        for s in range(0, len(idx), chunk_rows):
            batch = self.materialize(idx[s:s + chunk_rows], tiles[s:s + chunk_rows])
            if len(batch):
                yield batch
