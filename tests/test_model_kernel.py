"""The compiled (numba) backend of the cost model equals the numpy reference.

Stage A (``analyze``): every access count, tile, partition, instance count and flag is
EXACTLY equal; stage B (``cost``): integer results exactly, energies to 1e-12 relative.
Checked on random mappings (any factor split over every level and fan-out, including
fan-out overflows, random loop orders, spatial orders and bypasses) of many layer shapes on
the four templates and on every Timeloop reference accelerator, on mapper-built batches (each
factor split followed by its loop orders, which the kernel's reuse of factor-dependent
quantities relies on) and on the reference mappings themselves.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.templates import get_template
from jaqmoo.mapping import mapspace as ms
from jaqmoo.mapping.mapper import Mapper
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.model import FIELDS, Accesses, Costs, analyze, cost, resolve_backend
from jaqmoo.mapping.model import _numba as kernel
from jaqmoo.models import model_workload
from jaqmoo.timeloop.check import load_reference
from jaqmoo.workload import DIMS, Layer

REFERENCE = Path(__file__).parent / "data" / "timeloop_reference"
FOLDERS = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())
TEMPLATES = ("eyeriss", "simba", "weight_stationary", "output_stationary")
BITS = ((8, 8, 8), (4, 6, 8), (2, 3, 5), None, (16, 16, 16))


def _layers() -> list[Layer]:
    """Pointwise, depthwise, strided, 3x3, dilated, grouped and linear shapes."""
    wl = model_workload("mobilenet_v2", (3, 32, 32))
    picked = {layer.shape_key: layer for layer in wl.layers}
    out = list(picked.values())[:12]
    out += [Layer("dilated", "conv", 1, 1, 6, 4, 5, 7, 3, 3, stride_h=2, stride_w=1, dilation_h=2, dilation_w=3),
            Layer("grouped", "grouped", 2, 4, 3, 2, 4, 4, 3, 1, stride_h=1, stride_w=2),
            Layer("fc", "linear", 1, 1, 10, 64, 1, 1, 1, 1)]
    return out


LAYERS = _layers()


def random_batch(layer: Layer, accel, n: int, seed: int, spatial_perm: bool = False) -> MappingBatch:
    """``n`` random mappings: each prime factor of each dim on a random temporal loop or
    fan-out (fan-outs may overflow), random loop orders and bypasses (level 0 keeps all)."""
    rng = np.random.default_rng(seed)
    n_lvl = accel.n_levels
    temporal = np.ones((n, n_lvl, 8), dtype=np.int64)
    spatial = np.ones((2, n, n_lvl, 8), dtype=np.int64)
    fan_slots = [(lvl, axis) for lvl in range(n_lvl) for axis, f in enumerate(accel.fanout(lvl)) if f > 1]
    for d, dim in enumerate(DIMS):
        for p in ms.prime_list(getattr(layer, dim)):
            slot = rng.integers(0, n_lvl + len(fan_slots), n)
            for lvl in range(n_lvl):
                temporal[slot == lvl, lvl, d] *= p
            for j, (lvl, axis) in enumerate(fan_slots):
                spatial[axis, slot == n_lvl + j, lvl, d] *= p
    perm = rng.permuted(np.broadcast_to(np.arange(8), (n, n_lvl, 8)), axis=2)
    keep = rng.random((n, n_lvl, 3)) < 0.6
    keep[:, 0] = True
    sp = rng.permuted(np.broadcast_to(np.arange(8), (n, n_lvl, 8)), axis=2) if spatial_perm else None
    return MappingBatch(temporal, spatial[0], spatial[1], perm, keep, sp)


def mapper_batch(layer: Layer, accel, n: int, seed: int = 0) -> MappingBatch:
    """A batch as the mapper builds it (factor splits expanded into loop orders and bypasses)."""
    space = ms.Mapspace(layer, Mapper().spec(accel), ms.envelope_for(accel, (8, 8, 8)))
    return space.materialize(*space.sample(n, seed=seed))


def assert_same_accesses(a: Accesses, b: Accesses) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), f"{name}: {np.argwhere(x != y)[:5].tolist()}"


def assert_same_costs(a: Costs, b: Costs) -> None:
    for f in dataclasses.fields(Costs):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if not isinstance(x, np.ndarray):
            continue
        assert x.dtype == y.dtype and x.shape == y.shape, f.name
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=0, err_msg=f.name)
        else:
            assert np.array_equal(x, y), f"{f.name}: {np.argwhere(x != y)[:5].tolist()}"


def assert_backends_agree(layer: Layer, accel, batch: MappingBatch, bits_options=BITS) -> None:
    ref = analyze(layer, accel, batch, backend="numpy")
    fast = analyze(layer, accel, batch, backend="numba")
    assert_same_accesses(ref, fast)
    for bits in bits_options:
        assert_same_costs(cost(ref, accel, bits, backend="numpy"), cost(ref, accel, bits, backend="numba"))


def with_bandwidths(accel):
    """``accel`` with read, write and shared bandwidth limits on every non-dummy level."""
    levels = tuple(lvl if lvl.is_dummy else dataclasses.replace(
        lvl, read_bandwidth=4.0 + i, write_bandwidth=3.0, shared_bandwidth=5.0 + i) for i, lvl in enumerate(accel.levels))
    return dataclasses.replace(accel, levels=levels)


def test_default_backend_is_numba(monkeypatch):
    monkeypatch.delenv("JAQMOO_NO_NUMBA", raising=False)
    assert resolve_backend() == "numba"
    monkeypatch.setenv("JAQMOO_NO_NUMBA", "1")
    assert resolve_backend() == "numpy"
    with pytest.raises(JaqmooError, match="backend"):
        resolve_backend("cuda")


def test_numpy_fallback_without_numba(monkeypatch):
    """Without an importable numba the model runs on numpy; asking for numba says how to fix it."""
    import jaqmoo.mapping.model as model

    monkeypatch.delenv("JAQMOO_NO_NUMBA", raising=False)
    monkeypatch.setattr(model, "_import_kernel", lambda: None)
    assert resolve_backend() == "numpy"
    with pytest.raises(JaqmooError, match="pip install numba"):
        resolve_backend("numba")
    layer, accel = LAYERS[0], get_template("eyeriss").build()
    batch = random_batch(layer, accel, 8, seed=1)
    assert_same_accesses(analyze(layer, accel, batch), analyze(layer, accel, batch, backend="numpy"))


@pytest.mark.parametrize("template", TEMPLATES)
def test_random_mappings_on_templates(template):
    accel = get_template(template).build()
    for i, layer in enumerate(LAYERS):
        batch = random_batch(layer, accel, 64, seed=i, spatial_perm=i % 2 == 1)
        assert_backends_agree(layer, accel, batch)


@pytest.mark.parametrize("template", TEMPLATES)
def test_mapper_batches_on_templates(template):
    accel = get_template(template).build()
    for layer in LAYERS[:6]:
        batch = mapper_batch(layer, accel, 40)
        assert_backends_agree(layer, accel, batch)
        shuffled = batch.take(np.random.default_rng(0).permutation(len(batch)))
        assert_same_accesses(analyze(layer, accel, shuffled, backend="numpy"),
                             analyze(layer, accel, shuffled, backend="numba"))


@pytest.mark.parametrize("folder", FOLDERS)
def test_reference_folders(folder):
    tl, mapping, _ = load_reference(REFERENCE / folder)
    accel, layer = tl.accelerator, tl.problem
    assert_backends_agree(layer, accel, mapping)
    batch = MappingBatch.concat([mapping, random_batch(layer, accel, 200, seed=len(folder))])
    assert_backends_agree(layer, accel, batch)
    assert_backends_agree(layer, with_bandwidths(accel), batch, bits_options=((8, 8, 8), None))


def test_bandwidth_limits_and_tiny_buffers():
    accel = with_bandwidths(get_template("eyeriss").build(glb_depth=64))
    for i, layer in enumerate(LAYERS[:5]):
        assert_backends_agree(layer, accel, random_batch(layer, accel, 100, seed=100 + i))


def test_threads_give_the_same_result(monkeypatch):
    layer = LAYERS[3]
    accel = get_template("eyeriss").build()
    batch = MappingBatch.concat([random_batch(layer, accel, kernel.PARALLEL_MIN + 37, seed=5),
                                 mapper_batch(layer, accel, 50)])
    results = []
    for threads in ("1", "3"):
        monkeypatch.setenv("JAQMOO_THREADS", threads)
        acc = analyze(layer, accel, batch, backend="numba")
        results.append((acc, cost(acc, accel, (8, 8, 8), backend="numba")))
    assert_same_accesses(results[0][0], results[1][0])
    for f in dataclasses.fields(Costs):
        x = getattr(results[0][1], f.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, getattr(results[1][1], f.name)), f.name
    monkeypatch.setenv("JAQMOO_THREADS", "zero")
    with pytest.raises(JaqmooError, match="JAQMOO_THREADS"):
        kernel.n_threads()


def test_empty_batch():
    layer = LAYERS[0]
    accel = get_template("simba").build()
    batch = random_batch(layer, accel, 3, seed=0).take(np.zeros(0, dtype=np.int64))
    assert_backends_agree(layer, accel, batch, bits_options=((8, 8, 8),))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEMPLATES), st.sampled_from(range(len(LAYERS))), st.integers(0, 2**32 - 1),
       st.booleans(), st.sampled_from(BITS))
def test_random_batches_property(template, layer_index, seed, spatial_perm, bits):
    accel = get_template(template).build()
    layer = LAYERS[layer_index]
    assert_backends_agree(layer, accel, random_batch(layer, accel, 16, seed, spatial_perm), bits_options=(bits,))


def test_kernel_threads_default_to_the_usable_cores(monkeypatch):
    from jaqmoo.mapping.model.threads import usable_cores

    monkeypatch.delenv("JAQMOO_THREADS", raising=False)
    assert kernel.n_threads() == usable_cores() >= 1
    monkeypatch.setenv("JAQMOO_THREADS", "3")
    assert kernel.n_threads() == 3
