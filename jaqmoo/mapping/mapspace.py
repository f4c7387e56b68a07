"""Mapspace enumeration (BatchTile): every constrained mapping of one layer, as arrays.

A mapping of a layer onto an accelerator assigns every problem dimension's size to
temporal loops at the storage levels and to spatial fan-outs (X and Y) below them, picks a
loop order per level and, where the hardware leaves it open, which tensors each level keeps.
This module enumerates those choices for one layer as plain integer arrays (the
:class:`~jaqmoo.mapping.mapping.MappingBatch` layout ``[M, L, 8]``), chunk by chunk, so the
analytical model can evaluate all of them in one vectorized pass.

What is enumerated
  * **Factor splits**: every ordered factorization of each dimension (prime exponents
    distributed over the slots the constraints leave free: one temporal slot per storage
    level, one spatial-X and one spatial-Y slot per fan-out). Fixed factors from the
    constraints are applied first. Groups (G) may go wherever K or C may.
  * **Loop orders**: only orders that differ in reuse. For a convolution every dimension
    but G is irrelevant to exactly one tensor (N, P, Q to Weights; K to Inputs; C, R, S to
    Outputs), and a level's reuse depends only on which of these groups the innermost
    non-unit loop belongs to, so each level gets one order per group present among its
    non-unit loops (``orders="reuse"``, <= 3 per level). ``orders="halo"`` also varies the
    innermost dimension inside that group (sliding-window reuse of Inputs). Unit loops
    never matter and are not varied. Constrained permutations are kept as given
    (a partial permutation fixes the innermost loops; the rest follow).
  * **Bypass**: tensors whose keep/bypass the constraints leave open get both choices.

What is pruned (all before any array of the full space exists)
  * spatial fit: the product of spatial factors on each axis of each fan-out must not
    exceed that axis' mesh size;
  * capacity: each bounded level's tile (the sum over the tensors it keeps, in words) must
    fit into a *capacity envelope* (:class:`CapacityEnvelope`): the largest depth and the
    most values per word of every hardware/bit-width combination requested so far (the
    mapper widens it when a request has larger buffers or fewer bits), so cached
    candidates stay valid for any smaller buffer or wider value; the exact feasibility
    check is the cost model's;
  * levels that keep no tensor (dummy levels used only for a fan-out) get no temporal loops
    unless a constraint asks for one (such loops would only duplicate the level above).

How it is searched (:class:`Mapspace`)
  * small spaces (at most ``exhaustive_limit`` factor splits before the joint checks) are
    enumerated exhaustively, unit by unit with the checks applied as soon as they can fail;
  * larger ones are *sampled*, stratified over the parallelizations: every spatial
    assignment that fits the fan-outs (and the utilization floor) is enumerated exactly,
    and temporal splits are drawn for each in turn, dimension by dimension, rejecting
    options whose tiles overflow the envelope. The mapper then refines the best samples by
    local search (:func:`neighbors`), so mappings outside the sample are reached too.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSOR_INDEX, TENSORS
from jaqmoo.workload import DIMS, Layer

N_DIMS = len(DIMS)
DIM_INDEX = {d: i for i, d in enumerate(DIMS)}
_N, _G, _K, _C, _P, _Q, _R, _S = range(N_DIMS)

#: The tensor each dimension is irrelevant to (-1: relevant to all, i.e. G).
IRRELEVANT_TO: tuple[int, ...] = (0, -1, 1, 2, 0, 0, 2, 2)
#: Canonical inner-to-outer order of the dimensions of each reuse group.
GROUP_DIMS: tuple[tuple[int, ...], ...] = ((_Q, _P, _N), (_K,), (_S, _R, _C))
#: Dimensions relevant to each tensor (Weights, Inputs, Outputs).
RELEVANT: tuple[frozenset[int], ...] = (
    frozenset({_G, _K, _C, _R, _S}),
    frozenset({_N, _G, _C, _P, _Q, _R, _S}),
    frozenset({_N, _G, _K, _P, _Q}),
)

#: Timeloop problem-dimension names -> jaqmoo's (conv2D: M is the output-channel dim).
TIMELOOP_DIMS = {"N": "N", "G": "G", "M": "K", "K": "K", "C": "C", "P": "P", "Q": "Q", "R": "R", "S": "S"}

FREE = 0  # marker for a factor the mapper may choose
AXIS_ANY, AXIS_X, AXIS_Y = 0, 1, 2
KEEP_FREE, KEEP_NO, KEEP_YES = -1, 0, 1


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class LevelRules:
    """What the constraints allow at one storage level and the fan-out below it.

    ``temporal``/``spatial``: per dimension, 0 = free, f >= 1 = fixed factor f.
    ``spatial_axis``: per dimension, 0 = X or Y, 1 = X only, 2 = Y only.
    ``permutation``: constrained innermost loops (dimension indices, inner to outer).
    ``keep``: per tensor, 1 keep, 0 bypass, -1 free.
    """

    temporal: tuple[int, ...] = (FREE,) * N_DIMS
    spatial: tuple[int, ...] = (FREE,) * N_DIMS
    spatial_axis: tuple[int, ...] = (AXIS_ANY,) * N_DIMS
    permutation: tuple[int, ...] = ()
    keep: tuple[int, ...] = (KEEP_FREE,) * 3


@dataclass(frozen=True)
class MapspaceSpec:
    """The mapspace structure of an accelerator: levels, fan-outs and constraint rules.

    Depends only on the topology (levels, meshes) and constraints, not on buffer depths,
    word widths or energies, so it (and everything derived from it) can be cached across a
    hardware search that changes only those.
    """

    level_names: tuple[str, ...]
    fanout_x: tuple[int, ...]
    fanout_y: tuple[int, ...]
    rules: tuple[LevelRules, ...]

    @property
    def n_levels(self) -> int:
        return len(self.level_names)

    def level_index(self, name: str) -> int:
        try:
            return self.level_names.index(name)
        except ValueError:
            raise JaqmooError(
                f"constraint target {name!r} is not a storage level; levels are {list(self.level_names)}"
            ) from None


@dataclass(frozen=True)
class CapacityEnvelope:
    """Per level: words available (None = unbounded) and values per word per tensor.

    Used only to prune the enumeration; it must be at least as permissive as every
    hardware/bit-width combination the candidates will be costed for.
    """

    words: tuple[float | None, ...]
    values_per_word: tuple[tuple[float, float, float], ...]

    def covers(self, other: CapacityEnvelope) -> bool:
        """True if every tile that fits ``other`` also fits this envelope."""
        for w_self, w_other, v_self, v_other in zip(
            self.words, other.words, self.values_per_word, other.values_per_word, strict=True
        ):
            if w_self is not None and (w_other is None or w_other > w_self):
                return False
            if any(b > a for a, b in zip(v_self, v_other, strict=True)):
                return False
        return True

    def union(self, other: CapacityEnvelope) -> CapacityEnvelope:
        """The smallest envelope covering both."""
        words = tuple(
            None if (a is None or b is None) else max(a, b)
            for a, b in zip(self.words, other.words, strict=True)
        )
        vpw = tuple(
            tuple(max(x, y) for x, y in zip(a, b, strict=True))
            for a, b in zip(self.values_per_word, other.values_per_word, strict=True)
        )
        return CapacityEnvelope(words, vpw)


def _parse_factors(text: object, where: str) -> dict[int, int]:
    """``"N=1,C=1"`` / ``"C1 M8"`` / ``["N=1", ...]`` -> {dim index: factor}."""
    if text is None:
        return {}
    items: list[str]
    if isinstance(text, list | tuple):
        items = [str(t) for t in text]
    else:
        items = str(text).replace(",", " ").split()
    out: dict[int, int] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            name, _, value = item.partition("=")
        else:
            name, value = item[0], item[1:]
        name = name.strip()
        if name not in TIMELOOP_DIMS or not value.strip().isdigit():
            raise JaqmooError(
                f"{where}: cannot read factor {item!r}; write factors as DIM=VALUE with DIM in "
                f"{sorted(TIMELOOP_DIMS)} (e.g. 'N=1,C=1')"
            )
        out[DIM_INDEX[TIMELOOP_DIMS[name]]] = int(value)
    return out


def _parse_permutation(text: object, where: str) -> tuple[int, ...]:
    if text is None:
        return ()
    seq = list(text) if isinstance(text, str) else [str(t) for t in text]
    out = []
    for ch in seq:
        ch = ch.strip()
        if not ch:
            continue
        if ch not in TIMELOOP_DIMS:
            raise JaqmooError(f"{where}: unknown dimension {ch!r} in permutation {text!r}")
        d = DIM_INDEX[TIMELOOP_DIMS[ch]]
        if d not in out:
            out.append(d)
    return tuple(out)


def _with_groups(values: dict[int, int], timeloop_dims: set[int]) -> dict[int, int]:
    """Give G the rule of K/C: fixed to 1 only where both K and C are fixed to 1."""
    if _G in values:
        return values
    if values.get(_K) == 1 and values.get(_C) == 1:
        return {**values, _G: 1}
    return values


def spec_from_constraints(
    level_names: Sequence[str],
    fanout_x: Sequence[int],
    fanout_y: Sequence[int],
    constraints: Sequence[dict] | None,
    level_keeps_nothing: Sequence[bool] | None = None,
    source: str = "constraints",
) -> MapspaceSpec:
    """Build a :class:`MapspaceSpec` from Timeloop v0.4 constraint entries.

    ``constraints`` is a list of dicts with ``target``, ``type`` (temporal, spatial,
    bypass/datatype) and ``factors``/``permutation``/``split``/``keep``/``bypass`` as in
    Timeloop's ``architecture_constraints.targets`` and ``mapspace_constraints``.
    """
    names = tuple(level_names)
    n_levels = len(names)
    temporal = [dict() for _ in range(n_levels)]
    spatial = [dict() for _ in range(n_levels)]
    axis = [dict() for _ in range(n_levels)]
    perms: list[tuple[int, ...]] = [() for _ in range(n_levels)]
    keeps = [[KEEP_FREE] * 3 for _ in range(n_levels)]
    keeps[0] = [KEEP_YES] * 3  # the outermost level (DRAM) holds everything
    timeloop_dims = set(range(N_DIMS)) - {_G}
    for i, entry in enumerate(constraints or ()):
        if not isinstance(entry, dict):
            raise JaqmooError(f"{source}[{i}]: expected a mapping with 'target' and 'type'")
        target = entry.get("target")
        kind = str(entry.get("type", "")).lower()
        where = f"{source}[{i}] (target {target}, type {kind})"
        if target is None:
            raise JaqmooError(f"{where}: missing 'target'")
        if target not in names:
            continue  # e.g. a constraint on the compute level or on a level we do not model
        lvl = names.index(target)
        if kind == "temporal":
            temporal[lvl].update(_parse_factors(entry.get("factors"), where))
            perms[lvl] = _parse_permutation(entry.get("permutation"), where) or perms[lvl]
        elif kind == "spatial":
            spatial[lvl].update(_parse_factors(entry.get("factors"), where))
            perm = _parse_permutation(entry.get("permutation"), where)
            split = entry.get("split")
            if split is not None and perm:
                split = int(split)
                for pos, d in enumerate(perm):
                    axis[lvl][d] = AXIS_X if pos < split else AXIS_Y
                if _G not in perm:  # G follows K (or C) onto the same axis
                    ref = _K if _K in perm else (_C if _C in perm else None)
                    if ref is not None:
                        axis[lvl][_G] = axis[lvl][ref]
        elif kind in ("bypass", "datatype", "dataspace"):
            for t in entry.get("keep") or ():
                if t not in TENSOR_INDEX:
                    raise JaqmooError(f"{where}: unknown tensor {t!r} in keep; use {list(TENSORS)}")
                keeps[lvl][TENSOR_INDEX[t]] = KEEP_YES
            for t in entry.get("bypass") or ():
                if t not in TENSOR_INDEX:
                    raise JaqmooError(f"{where}: unknown tensor {t!r} in bypass; use {list(TENSORS)}")
                keeps[lvl][TENSOR_INDEX[t]] = KEEP_NO
        elif kind in ("utilization", "parallelism", "max_overbooked_proportion"):
            continue  # mapper heuristics we do not need
        else:
            raise JaqmooError(f"{where}: unknown constraint type {kind!r}; use temporal, spatial or bypass")
    rules = []
    for lvl in range(n_levels):
        t_fixed = _with_groups(temporal[lvl], timeloop_dims)
        nothing_kept = all(k == KEEP_NO for k in keeps[lvl]) or (
            level_keeps_nothing is not None and level_keeps_nothing[lvl]
        )
        t = tuple(t_fixed.get(d, 1 if nothing_kept and lvl > 0 else FREE) for d in range(N_DIMS))
        s_fixed = _with_groups(spatial[lvl], timeloop_dims)
        s = tuple(s_fixed.get(d, FREE) for d in range(N_DIMS))
        perm = perms[lvl]
        if perm and _G not in perm and len(perm) >= len(timeloop_dims):
            # a full Timeloop permutation: put G just inside the innermost of K/C
            pos = min(perm.index(d) for d in (_K, _C) if d in perm)
            perm = perm[:pos] + (_G,) + perm[pos:]
        rules.append(
            LevelRules(
                temporal=t,
                spatial=s,
                spatial_axis=tuple(axis[lvl].get(d, AXIS_ANY) for d in range(N_DIMS)),
                permutation=perm,
                keep=tuple(keeps[lvl]),
            )
        )
    return MapspaceSpec(names, tuple(int(x) for x in fanout_x), tuple(int(y) for y in fanout_y), tuple(rules))


def for_layer(spec: MapspaceSpec, layer: Layer) -> MapspaceSpec:
    """``spec`` with the constraint factors ``layer`` cannot take freed, as Timeloop does.

    Timeloop ignores a fixed factor larger than the problem dimension (``factors: C=4`` on a
    layer with C = 3 leaves C free at that loop, with a warning); so does jaqmoo. A fixed
    factor that fits but does not divide the dimension is clamped to their gcd.
    """
    return _for_shape(spec, tuple(getattr(layer, name) for name in DIMS))


@functools.lru_cache(maxsize=1024)
def _for_shape(spec: MapspaceSpec, sizes: tuple[int, ...]) -> MapspaceSpec:
    def free_oversized(factors: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(FREE if f > sizes[d] else f for d, f in enumerate(factors))

    rules = tuple(dataclasses.replace(r, temporal=free_oversized(r.temporal), spatial=free_oversized(r.spatial))
                  for r in spec.rules)
    return spec if rules == spec.rules else dataclasses.replace(spec, rules=rules)


# --------------------------------------------------------------------------- factor options


def _prime_factors(n: int) -> list[tuple[int, int]]:
    out = []
    p = 2
    while p * p <= n:
        if n % p == 0:
            e = 0
            while n % p == 0:
                n //= p
                e += 1
            out.append((p, e))
        p += 1
    if n > 1:
        out.append((n, 1))
    return out


def prime_list(n: int) -> list[int]:
    """Prime factors of ``n`` with multiplicity, ascending (``12 -> [2, 2, 3]``)."""
    return [p for p, e in _prime_factors(n) for _ in range(e)]


def _compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    """All tuples of ``parts`` non-negative ints summing to ``total``."""
    if parts == 0:
        return [()] if total == 0 else []
    out = []
    for bars in itertools.combinations(range(total + parts - 1), parts - 1):
        prev = -1
        comp = []
        for b in bars:
            comp.append(b - prev - 1)
            prev = b
        comp.append(total + parts - 1 - prev - 1)
        out.append(tuple(comp))
    return out


def ordered_factorizations(n: int, parts: int) -> np.ndarray:
    """All ordered ways to write ``n`` as a product of ``parts`` positive ints, ``[k, parts]``."""
    if parts == 0:
        return np.ones((1 if n == 1 else 0, 0), dtype=np.int64)
    result = np.ones((1, parts), dtype=np.int64)
    for p, e in _prime_factors(n):
        comps = np.array(_compositions(e, parts), dtype=np.int64)
        powers = p**comps
        result = (result[:, None, :] * powers[None, :, :]).reshape(-1, parts)
    return result


@dataclass
class _Unit:
    """Options for one dimension (or a coupled pair P,R / Q,S) over all slots."""

    dims: tuple[int, ...]
    factors: np.ndarray  # [k, 3, L, 8] (1 outside self.dims); slot kind 0 temporal, 1 X, 2 Y
    spx: np.ndarray  # [k, L] spatial-X product of these dims at each fan-out
    spy: np.ndarray  # [k, L]
    tile: np.ndarray  # [k, 3, L] contribution to each tensor's tile (values) at each level


def _dim_slot_options(layer: Layer, spec: MapspaceSpec, d: int) -> np.ndarray:
    """``[k, 3, L]`` factor options of dimension ``d`` over (temporal, X, Y) x levels."""
    n_levels = spec.n_levels
    size = getattr(layer, DIMS[d])
    base = np.ones((3, n_levels), dtype=np.int64)
    free: list[tuple[int, int]] = []
    remaining = size
    for lvl, rule in enumerate(spec.rules):
        slots = [(0, rule.temporal[d])]
        if spec.fanout_x[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_X):
            slots.append((1, rule.spatial[d]))
        if spec.fanout_y[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_Y):
            slots.append((2, rule.spatial[d]))
        for kind, fixed in slots:
            if fixed == FREE:
                free.append((kind, lvl))
            elif fixed > 1:
                f = math.gcd(fixed, remaining)  # a fixed factor the dimension cannot take is clamped
                base[kind, lvl] = f
                remaining //= f
    if remaining > 1 and not free:
        raise JaqmooError(
            f"layer {layer.name!r}: the constraints leave no loop for dimension {DIMS[d]}={size} "
            f"at any level ({list(spec.level_names)}); free a factor of {DIMS[d]} somewhere"
        )
    facts = ordered_factorizations(remaining, len(free))
    options = np.repeat(base[None], len(facts), axis=0)
    for j, (kind, lvl) in enumerate(free):
        options[:, kind, lvl] *= facts[:, j]
    # a spatial factor can never exceed its axis
    fx = np.array(spec.fanout_x)[None, :]
    fy = np.array(spec.fanout_y)[None, :]
    ok = np.all(options[:, 1, :] <= fx, axis=1) & np.all(options[:, 2, :] <= fy, axis=1)
    return options[ok]


def _extents(opt: np.ndarray) -> np.ndarray:
    """Tile extent of a dimension at each level: product of all factors at and below it."""
    per_level = opt.prod(axis=1)  # [k, L]
    return np.flip(np.cumprod(np.flip(per_level, axis=1), axis=1), axis=1)


def _build_units(layer: Layer, spec: MapspaceSpec, envelope: CapacityEnvelope | None = None) -> list[_Unit]:
    n_levels = spec.n_levels
    forced = _forced_keep(spec)[None]
    opts = {d: _dim_slot_options(layer, spec, d) for d in range(N_DIMS)}
    units = []
    for dims in ((_N,), (_G,), (_K,), (_C,), (_P, _R), (_Q, _S)):
        if len(dims) == 1:
            (d,) = dims
            o = opts[d]
            k = len(o)
            factors = np.ones((k, 3, n_levels, N_DIMS), dtype=np.int64)
            factors[..., d] = o
            ext = _extents(o)
            tile = np.ones((k, 3, n_levels), dtype=np.float64)
            for t in range(3):
                if d in RELEVANT[t]:
                    tile[:, t, :] = ext
        else:
            outer, win = dims  # P with R (rows), Q with S (columns)
            oa, ob = opts[outer], opts[win]
            ia, ib = np.meshgrid(np.arange(len(oa)), np.arange(len(ob)), indexing="ij")
            ia, ib = ia.ravel(), ib.ravel()
            k = len(ia)
            factors = np.ones((k, 3, n_levels, N_DIMS), dtype=np.int64)
            factors[..., outer] = oa[ia]
            factors[..., win] = ob[ib]
            ea, eb = _extents(oa)[ia], _extents(ob)[ib]
            stride = layer.stride_h if outer == _P else layer.stride_w
            dil = layer.dilation_h if outer == _P else layer.dilation_w
            tile = np.ones((k, 3, n_levels), dtype=np.float64)
            tile[:, 0, :] = eb  # weights see R/S
            tile[:, 2, :] = ea  # outputs see P/Q
            tile[:, 1, :] = (ea - 1) * stride + (eb - 1) * dil + 1  # input window
            o = None
        spx = factors[:, 1].prod(axis=-1)
        spy = factors[:, 2].prod(axis=-1)
        alone_fits = _fits(tile, forced, envelope)  # exact: the other dims only add to a tile
        units.append(_Unit(dims, factors[alone_fits], spx[alone_fits], spy[alone_fits], tile[alone_fits]))
    # smallest first: the widest cartesian step comes last, in chunks
    units.sort(key=lambda u: len(u.factors))
    return units


# --------------------------------------------------------------------------- envelope


def _forced_keep(spec: MapspaceSpec) -> np.ndarray:
    """``[L, 3]`` 1.0 where a level must keep a tensor (used for pruning)."""
    return np.array([[1.0 if k == KEEP_YES else 0.0 for k in r.keep] for r in spec.rules])


def _fits(tiles: np.ndarray, keep: np.ndarray, env: CapacityEnvelope | None) -> np.ndarray:
    """tiles ``[n, 3, L]`` (values), keep ``[n or 1, L, 3]`` -> bool ``[n]``."""
    if env is None:
        return np.ones(len(tiles), dtype=bool)
    ok = np.ones(len(tiles), dtype=bool)
    for lvl, (words, vpw) in enumerate(zip(env.words, env.values_per_word, strict=True)):
        if words is None:
            continue
        need = np.zeros(len(tiles))
        for t in range(3):
            kt = keep[:, lvl, t]
            if not np.any(kt):
                continue
            need = need + kt * np.ceil(tiles[:, t, lvl] / max(vpw[t], 1e-12))
        ok &= need <= words
    return ok


# --------------------------------------------------------------------------- accelerator


def spec_from_accelerator(accel) -> MapspaceSpec:
    """The :class:`MapspaceSpec` of a :class:`~jaqmoo.hardware.spec.Accelerator`.

    Uses its fan-outs, its levels' forced keep/bypass and its ``constraints``
    (:class:`~jaqmoo.hardware.spec.MapConstraint`, dims in jaqmoo names).
    """
    entries: list[dict] = []
    for lvl in accel.levels:
        if lvl.keep or lvl.bypass or lvl.is_dummy:
            bypass = tuple(TENSORS) if lvl.is_dummy else lvl.bypass
            entries.append({"target": lvl.name, "type": "bypass", "keep": list(lvl.keep), "bypass": list(bypass)})
    for c in accel.constraints:
        entry: dict = {"target": c.target, "type": c.type}
        if c.factors:
            entry["factors"] = [f"{d}={v}" for d, v in c.factors]
        if c.permutation:
            entry["permutation"] = list(c.permutation)
        if c.split is not None:
            entry["split"] = c.split
        if c.keep:
            entry["keep"] = list(c.keep)
        if c.bypass:
            entry["bypass"] = list(c.bypass)
        entries.append(entry)
    fan = accel.fanouts
    return spec_from_constraints(
        [lvl.name for lvl in accel.levels], [f[0] for f in fan], [f[1] for f in fan], entries,
        level_keeps_nothing=[lvl.is_dummy for lvl in accel.levels], source=f"accelerator {accel.name!r} constraints",
    )


def envelope_for(accel, bits: tuple[int, int, int] | None) -> CapacityEnvelope:
    """Capacity envelope of ``accel`` for tensors at ``bits`` (None: each level's datawidth)."""
    words: list[float | None] = []
    vpw: list[tuple[float, float, float]] = []
    for lvl in accel.levels:
        if lvl.depth is None or lvl.is_dummy:
            words.append(None)
            vpw.append((1.0, 1.0, 1.0))
            continue
        words.append(float(lvl.effective_depth))
        b = bits if bits is not None else (lvl.datawidth,) * 3
        packed = (lvl.values_per_word(int(x), accel.convention) for x in b)
        vpw.append(tuple(float(v) if v >= 1 else 1e-9 for v in packed))
    return CapacityEnvelope(tuple(words), tuple(vpw))


# --------------------------------------------------------------------------- candidates


def _empty_batch(n_levels: int):
    from jaqmoo.mapping.mapping import MappingBatch

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
            if _G not in order:
                order.append(_G)
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


def tiles_of(batch, layer: Layer) -> np.ndarray:
    """``[M, 3, L]`` tile size in values of each tensor at each level (its own and inner loops)."""
    from jaqmoo.mapping.tensors import tile_size

    per_level = batch.temporal * batch.spatial_x * batch.spatial_y
    ext = np.flip(np.cumprod(np.flip(per_level, axis=1), axis=1), axis=1)  # [M, L, 8]
    return np.stack([tile_size(ext, t, layer) for t in range(3)], axis=1).astype(np.float64)


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
        ok &= _fits(tiles_of(batch, layer), batch.keep.astype(np.float64), envelope)
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
        self.units = _build_units(layer, spec, envelope)
        self._keeps = _keep_options(spec)
        self._keep_forced = _forced_keep(spec)[None]
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
                fit = _fits(ntiles, self._keep_forced, self.envelope)
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
            ok = _fits(ct, self._keep_forced, self.envelope).reshape(n, tries)
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
        from jaqmoo.mapping.mapping import MappingBatch

        if tiles is None:
            all_idx, all_tiles = self.factor_rows()
            rows = np.asarray(idx, dtype=np.int64)
            idx, tiles = all_idx[rows], all_tiles[rows]
        if len(idx) == 0:
            return _empty_batch(self.spec.n_levels)
        f = self._factors(idx)
        k = len(self._keeps)
        src = np.repeat(np.arange(len(idx)), k)
        keep = np.tile(self._keeps, (len(idx), 1, 1))
        if k > 1:  # free bypass choices: re-check capacity with the real keeps
            fit = _fits(tiles[src], keep.astype(np.float64), self.envelope)
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


# --------------------------------------------------------------------------- local search


def free_slots(layer: Layer, spec: MapspaceSpec) -> list[list[tuple[int, int]]]:
    """Per dim, the (kind, level) slots whose factor the mapper may change."""
    spec = for_layer(spec, layer)
    out = []
    for d in range(N_DIMS):
        slots = []
        for lvl, rule in enumerate(spec.rules):
            if rule.temporal[d] == FREE:
                slots.append((0, lvl))
            if spec.fanout_x[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_X) and rule.spatial[d] == FREE:
                slots.append((1, lvl))
            if spec.fanout_y[lvl] > 1 and rule.spatial_axis[d] in (AXIS_ANY, AXIS_Y) and rule.spatial[d] == FREE:
                slots.append((2, lvl))
        out.append(slots)
    return out


_HASH_MULT = np.random.default_rng(20240607).integers(1, 2**62, size=4096, dtype=np.int64) | 1


def row_hash(rows: np.ndarray) -> np.ndarray:
    """int64 [n]: a 64-bit hash of each integer row (wrap-around dot product with fixed odd keys)."""
    rows = rows.reshape(len(rows), -1).astype(np.int64)
    return rows @ _HASH_MULT[: rows.shape[1]]


def neighbors(batch, layer: Layer, spec: MapspaceSpec, envelope: CapacityEnvelope | None = None,
              halo: bool = False):
    """Every mapping one prime-factor move away from a mapping of ``batch`` (all loop orders).

    A move takes one prime factor ``p`` of a dimension from one free slot (a level's
    temporal loop or a fan-out axis) to another. Results respect the constraints, the
    fan-outs and the envelope; duplicates are removed.
    """
    from jaqmoo.mapping.mapping import MappingBatch

    if len(batch) == 0:
        return batch
    f = np.stack([batch.temporal, batch.spatial_x, batch.spatial_y], axis=1)  # [M, 3, L, 8]
    moved = []
    keeps = []
    for d, slots in enumerate(free_slots(layer, spec)):
        primes = [p for p, _ in _prime_factors(getattr(layer, DIMS[d]))]
        for (ka, la), (kb, lb) in itertools.permutations(slots, 2):
            for p in primes:
                can = f[:, ka, la, d] % p == 0
                if not can.any():
                    continue
                g = f[can].copy()
                g[:, ka, la, d] //= p
                g[:, kb, lb, d] *= p
                moved.append(g)
                keeps.append(batch.keep[can])
    if not moved:
        return _empty_batch(spec.n_levels)
    g = np.concatenate(moved)
    keep = np.concatenate(keeps)
    flat = np.concatenate([g.reshape(len(g), -1), keep.reshape(len(keep), -1)], axis=1)
    _, uniq = np.unique(row_hash(flat), return_index=True)
    g, keep = g[uniq], keep[uniq]
    rows, perm = expand_orders(g[:, 0], spec, halo)
    out = MappingBatch(g[rows, 0], g[rows, 1], g[rows, 2], perm, keep[rows])
    return out.take(satisfies(out, layer, spec, envelope))
