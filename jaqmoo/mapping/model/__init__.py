"""Vectorized Timeloop-v0.4-style analytical model, in two stages (public entry points).

``analyze(layer, accel, batch) -> Accesses`` (per mapping, level and tensor: tiles and reads /
fills / updates per instance, in values) and ``cost(accesses, accel, bits=None) -> Costs``
(bit-packing, capacity, energy, cycles), ``evaluate`` = both. What they compute -- the
semantics, the fork's conventions and every constant both backends share -- is written down
once in :mod:`jaqmoo.mapping.model.semantics` (with :mod:`jaqmoo.mapping.model.geometry`, the
per-layer constants). The two backends sit beside each other: :mod:`jaqmoo.mapping.model._numpy`
(the vectorized reference) and :mod:`jaqmoo.mapping.model._numba` (compiled per-mapping loops,
the default when numba imports; ``JAQMOO_NO_NUMBA=1`` forces numpy); this module picks one
(``backend=``) and applies what does not depend on it.
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
