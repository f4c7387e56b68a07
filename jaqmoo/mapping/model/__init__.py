"""Vectorized Timeloop-v0.4-style analytical model, in two stages.

``analyze(layer, accel, batch) -> Accesses``
    Per mapping, level and tensor: tile sizes and reads / fills / updates per instance, in
    values. Depends only on the layer, the mappings and the level/fan-out structure.
``cost(accesses, accel, bits=None) -> Costs``
    Bit-packing into words, capacity feasibility, energy per level / tensor / action (+
    leakage, + MAC energy), cycles with bandwidth throttling, utilization. A few array ops
    on the cached :class:`Accesses`, so the mapper can re-cost for new hardware parameters
    or new bit-widths without re-analyzing.

The semantics and their constants live in :mod:`jaqmoo.mapping.model.semantics` (the result
types, the packing, the per-level hardware constants) and :mod:`jaqmoo.mapping.model.geometry`
(the per-layer constants of the analysis); two backends implement both stages beside each
other (``backend=``): :mod:`jaqmoo.mapping.model._numpy`, the vectorized reference (chunks of
mappings, one array pass per step), and :mod:`jaqmoo.mapping.model._numba`, compiled
per-mapping loops (the default when numba imports, several times faster, the same numbers:
``tests/test_model_kernel.py``). ``JAQMOO_NO_NUMBA=1`` forces numpy.

Semantics (what Timeloop 0.4's nest analysis computes, in closed form)
----------------------------------------------------------------------
*Fills* of a level's tile (per instance) come from the temporal loops of all outer levels.
Timeloop simulates each loop by its iteration #0 and one representative iteration #1
(weighted by ``n - 1``) and, between consecutive visits, re-fetches only the new part of the
tile when the tile moved by the same translation as the previous step (sliding-window reuse),
otherwise the whole tile. For the binary-counter visit sequence this yields::

    fills = n_visits * tile - W_eq * overlap(tile, T_first)

with ``T_first`` the translation of the innermost non-trivial loop above the level,
``overlap`` the size of the tile intersected with its copy moved by ``T_first`` (the whole
tile for an irrelevant loop: stationarity), and ``W_eq`` the summed weights
``(n_k - 1) * prod(outer n)`` of the loop steps whose translation equals ``T_first``.

*Reads* of a kept level are the fills of its kept child, summed over the distinct child
tiles of every fan-out in between (identical tiles are multicast, or spatially reduced for
Outputs) and over bypassed levels in between. The innermost level serves the MACs.

*Outputs* (read-modify-write): ``updates`` = what the children write back; ``reads =
updates - partition`` and ``fills = child-visible fills - partition`` (the first update of
each partial sum needs no read and no fill), where ``partition`` is the number of distinct
outputs an instance ever holds. The outermost level has no fills.

*Link transfers* (Timeloop forwards data between neighbouring PEs): when a child's new
delta equals what a mesh neighbour received on the previous visit (the diagonal input reuse
of row-stationary mappings; operands shared by MACs that did not change), the parent does
not send it again; the neighbours' extra reads and fills are charged to the child level.
Modelled for Weights and Inputs, for the innermost X and Y spatial loops, where the PEs'
loop indices match their mesh positions (the mapping fills the X mesh, or uses only one
mesh axis). Partial sums are not forwarded.

*Partial sums* (``Accesses.psum_f``): a level's Outputs are partial sums when a reduction loop
(C, R, S) with a factor > 1 lies outside the tile of the next inner level keeping Outputs (the
MACs if none): the level adds up unfinished sums. Stage B stores and moves them at the
accelerator's accumulator width; a level that only ever receives completed outputs holds
them at the output (next layer's activation) bits. Bit-packing applies to both.

*Clusters and leakage* (Timeloop v0.4): ``cluster_size`` instances share one ``width``-bit
word, so an instance's word is ``width / cluster_size`` bits (block size ``width /
(datawidth * cluster_size)``, capacity ``depth * block size``) and access energy is charged per
utilized cluster; every level leaks in each utilized instance on every cycle, whether or not
the mapping keeps a tensor there.

*Conventions* (``Accelerator.convention``, :data:`jaqmoo.hardware.spec.CONVENTIONS`): the
search uses ``jaqmoo`` (the above, Timeloop v0.4's counting). ``fork`` reproduces the
Klhufek et al. mixed-precision Timeloop fork: it also counts the first fill of every
partial-sum tile (Outputs ``fills`` without the ``- partition``), packs values within the
level's word-bits words (:meth:`~jaqmoo.hardware.spec.Level.values_per_word`), does not
scale the MAC energy with the bits, keeps partial sums at the Outputs bits and charges access
energy per utilized instance rather than per cluster.

Not modelled (none of the reference runs uses them): imperfect factorization, network
(wire) energy from an ERT ``wire`` entry, address-generation and adder energies (0 in
v0.4 ERTs), sparsity.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import Accelerator
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.model import _numpy
from jaqmoo.mapping.model.geometry import geometry_of
from jaqmoo.mapping.model.semantics import (
    BACKENDS,
    FIELDS,
    PSUM,
    Accesses,
    Costs,
    check_bits,
    empty_fields,
    hardware_constants,
    mac_energy_scale,
    values_per_word,
)
from jaqmoo.workload import DIMS, Layer


@functools.lru_cache(maxsize=1)
def _import_kernel():
    """The compiled backend module, or None when numba cannot be imported."""
    try:
        from jaqmoo.mapping.model import _numba
    except ImportError:
        return None
    return _numba


def resolve_backend(backend: str | None = None) -> str:
    """The backend ``analyze``/``cost`` use: ``backend``, or the default (see :data:`BACKENDS`)."""
    if backend is None:
        if os.environ.get("JAQMOO_NO_NUMBA", "") not in ("", "0"):
            return "numpy"
        return "numba" if _import_kernel() is not None else "numpy"
    if backend not in BACKENDS:
        raise JaqmooError(f"model backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    if backend == "numba" and _import_kernel() is None:
        raise JaqmooError("model backend 'numba' needs the numba package: pip install numba "
                          "(or use backend='numpy')")
    return backend


def analyze(layer: Layer, accel: Accelerator, batch: MappingBatch, backend: str | None = None) -> Accesses:
    """Access counts of every mapping in ``batch`` (see the module docstring).

    ``backend``: ``"numba"`` or ``"numpy"`` (None: :func:`resolve_backend`'s default); both
    give the same counts.
    """
    n_map, n_lvl = len(batch), batch.n_levels
    if n_lvl != accel.n_levels:
        raise JaqmooError(f"mapping batch has {n_lvl} levels but accelerator {accel.name!r} has "
                          f"{accel.n_levels}")
    geometry = geometry_of(layer, accel)
    if resolve_backend(backend) == "numba":
        fields = empty_fields(n_map, n_lvl)
        _import_kernel().analyze_into(batch, geometry.kernel_args, fields)
    else:
        chunks = [_numpy.analyze_chunk(geometry, batch, lo, min(lo + _numpy.CHUNK, n_map))
                  for lo in range(0, max(n_map, 1), _numpy.CHUNK)]
        fields = {f: np.concatenate([c[f] for c in chunks]) if len(chunks) > 1 else chunks[0][f] for f in FIELDS}
    if accel.convention == "fork":  # the fork also counts the first fill of each partial sum
        kept_out = fields["keep"][:, 1:, 2]
        fields["rfu"][:, 1:, 2, 1] += fields["partition_f"][:, 1:, 2] * kept_out
    return Accesses(layer=layer, level_names=tuple(lvl.name for lvl in accel.levels),
                    topology=accel.topology_key, macs=layer.macs, **fields)


def cost(accesses: Accesses, accel: Accelerator, bits: tuple[int, int, int] | None = None,
         backend: str | None = None) -> Costs:
    """Energy, cycles and feasibility of analyzed mappings on ``accel`` at ``bits``.

    ``bits=None`` stores every tensor at each level's own ``datawidth`` (Timeloop's
    behaviour). Otherwise a word of ``width`` bits packs ``floor(width / b)`` values of a
    ``b``-bit tensor; capacity, access energy and bandwidth are counted in packed words
    (per action, ``ceil(values / values_per_word)`` vector accesses, like Timeloop's
    block-size rounding). Outputs at levels that hold partial sums (``accesses.psum_f``) are
    stored and moved at the accelerator's accumulator bits instead of ``bits[2]``.

    Timeloop v0.4 semantics: an instance's word is ``width / cluster_size`` bits, and one
    vector access serves a whole cluster, so access energy is charged per utilized cluster
    (``min(utilized instances, instances / cluster_size)``, Timeloop's utilized clusters);
    every level leaks on every cycle in each utilized instance, whether or not the mapping
    keeps a tensor there. ``backend`` as for :func:`analyze`.
    """
    if accesses.topology != accel.topology_key:
        raise JaqmooError(f"accesses were analyzed for a different accelerator topology than "
                          f"{accel.name!r}; run analyze() again")
    bits = check_bits(bits)
    n_map, n_lvl = len(accesses), accel.n_levels
    compiled = resolve_backend(backend) == "numba"
    counts = np.int64 if compiled else np.float64  # the numpy path counts in floats, then converts
    out = {
        "tile_words": np.empty((n_map, n_lvl, 3), dtype=counts), "occupancy_words": np.empty((n_map, n_lvl), dtype=counts),
        "capacity_ok": np.empty(n_map, dtype=bool), "width_ok": np.empty(n_map, dtype=bool),
        "feasible": np.empty(n_map, dtype=bool), "fail_level": np.empty(n_map, dtype=np.int64),
        "energy_by_tensor": np.empty((n_map, n_lvl, 3)), "energy_by_action": np.empty((n_map, n_lvl, 3)),
        "leakage": np.empty((n_map, n_lvl)), "energy_by_level": np.empty((n_map, n_lvl)),
        "energy": np.empty(n_map), "cycles": np.empty(n_map, dtype=np.int64),
    }
    vpw = values_per_word(accel, bits)  # [L, 3]
    comp = accel.compute
    mac_scale = mac_energy_scale(accel, bits)
    mac_energy = np.full(n_map, accesses.macs * comp.energy * mac_scale)
    if compiled:  # the kernel adds the MAC energy itself
        _import_kernel().cost_into(accesses, vpw, hardware_constants(accel), accesses.macs * comp.energy * mac_scale, out)
    else:
        for lo in range(0, n_map, _numpy.COST_CHUNK):
            _numpy.cost_chunk(accesses, accel, vpw, slice(lo, min(lo + _numpy.COST_CHUNK, n_map)), out)
        out["energy"] += mac_energy
        out["tile_words"] = out["tile_words"].astype(np.int64)
        out["occupancy_words"] = out["occupancy_words"].astype(np.int64)
    utilization = accesses.macs / (out["cycles"] * float(comp.instances)) if n_map else np.zeros(0)
    return Costs(accesses=accesses, bits=bits, values_per_word=vpw, mac_energy=mac_energy,
                 utilization=utilization, depth_words=hardware_constants(accel)["depth"], **out)


def evaluate(layer: Layer, accel: Accelerator, batch: MappingBatch,
             bits: tuple[int, int, int] | None = None, backend: str | None = None) -> Costs:
    """``cost(analyze(layer, accel, batch), accel, bits)``."""
    return cost(analyze(layer, accel, batch, backend), accel, bits, backend)



__all__ = ["BACKENDS", "DIMS", "FIELDS", "PSUM", "Accesses", "Costs", "analyze", "check_bits", "cost", "evaluate",
           "mac_energy_scale", "resolve_backend", "values_per_word"]
