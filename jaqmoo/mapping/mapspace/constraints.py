"""Constraints of the mapspace: the per-level rules (fixed factors, spatial axes, loop-order
prefixes, keep/bypass), read from Timeloop constraint entries or an accelerator, and the
capacity envelope that prunes tiles (see :mod:`jaqmoo.mapping.mapspace`)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSOR_INDEX, TENSORS
from jaqmoo.workload import DIMS, Layer

N_DIMS = len(DIMS)
DIM_INDEX = {d: i for i, d in enumerate(DIMS)}
D_N, D_G, D_K, D_C, D_P, D_Q, D_R, D_S = range(N_DIMS)

#: The tensor each dimension is irrelevant to (-1: relevant to all, i.e. G).
IRRELEVANT_TO: tuple[int, ...] = (0, -1, 1, 2, 0, 0, 2, 2)
#: Canonical inner-to-outer order of the dimensions of each reuse group.
GROUP_DIMS: tuple[tuple[int, ...], ...] = ((D_Q, D_P, D_N), (D_K,), (D_S, D_R, D_C))
#: Dimensions relevant to each tensor (Weights, Inputs, Outputs).
RELEVANT: tuple[frozenset[int], ...] = (
    frozenset({D_G, D_K, D_C, D_R, D_S}),
    frozenset({D_N, D_G, D_C, D_P, D_Q, D_R, D_S}),
    frozenset({D_N, D_G, D_K, D_P, D_Q}),
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
    if D_G in values:
        return values
    if values.get(D_K) == 1 and values.get(D_C) == 1:
        return {**values, D_G: 1}
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
    timeloop_dims = set(range(N_DIMS)) - {D_G}
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
                if D_G not in perm:  # G follows K (or C) onto the same axis
                    ref = D_K if D_K in perm else (D_C if D_C in perm else None)
                    if ref is not None:
                        axis[lvl][D_G] = axis[lvl][ref]
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
        if perm and D_G not in perm and len(perm) >= len(timeloop_dims):
            # a full Timeloop permutation: put G just inside the innermost of K/C
            pos = min(perm.index(d) for d in (D_K, D_C) if d in perm)
            perm = perm[:pos] + (D_G,) + perm[pos:]
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



# --------------------------------------------------------------------------- envelope


def forced_keep(spec: MapspaceSpec) -> np.ndarray:
    """``[L, 3]`` 1.0 where a level must keep a tensor (used for pruning)."""
    return np.array([[1.0 if k == KEEP_YES else 0.0 for k in r.keep] for r in spec.rules])


def fits_envelope(tiles: np.ndarray, keep: np.ndarray, env: CapacityEnvelope | None) -> np.ndarray:
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
