"""The persistent mapper warm-up cache (jaqmoo.mapping.cache): same results, shared, robust."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment import run_experiment
from jaqmoo.experiment.spec import parse_spec
from jaqmoo.hardware.templates import get_template
from jaqmoo.mapping import cache as mcache
from jaqmoo.mapping.mapper import Mapper, shape_key
from jaqmoo.search.evaluation import JointEvaluator
from jaqmoo.search.genome import GenomeSpace, HardwareGene
from jaqmoo.workload import Layer, Workload

SMALL = Layer("small", "conv", K=16, C=8, P=8, Q=8, R=3, S=3)
DEPTHWISE = Layer("dw", "depthwise", G=16, P=8, Q=8, R=3, S=3)
SMALL_AGAIN = Layer("small2", "conv", K=16, C=8, P=8, Q=8, R=3, S=3)  # a repeated shape
FC = Layer("fc", "linear", K=10, C=64)
FAST = dict(budget=200, refine_rounds=3)
GENES = (HardwareGene("pe_x", (8, 14), 14), HardwareGene("glb_depth", (4096, 16384), 16384))


def _evaluator(cache_dir=None, layers=(SMALL, DEPTHWISE, SMALL_AGAIN, FC), genes=GENES, **mapper_kw):
    wl = Workload("net", tuple(layers))
    space = GenomeSpace(tuple(layer.name for layer in layers), (4, 8), (4, 8), hardware_genes=genes)
    ev = JointEvaluator(wl, get_template("eyeriss"), None, space, cache_dir=cache_dir, max_pe_arrays=4)
    ev.mapper = Mapper(**{**FAST, **mapper_kw})
    return ev, space


def _costs(ev, space, n=10):
    rng = np.random.default_rng(3)
    xs = rng.integers(0, space.upper_bounds + 1, size=(n, space.n_var))
    return [ev.cost(space.decode_one(x)) for x in xs]


def _same(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            va, vb = ra[k], rb[k]
            assert va == vb or (isinstance(va, float) and np.isnan(va) and np.isnan(vb)), k


def test_cached_warmup_is_identical_and_skips_the_searches(tmp_path):
    plain, space = _evaluator()
    plain.prepare()
    assert plain.warmup_stats.computed == 3 and plain.mapper.stats.searches > 0  # three distinct shapes
    want = _costs(plain, space)

    cold, _ = _evaluator(tmp_path / "c")
    got_cold = _costs(cold, space)
    assert (cold.warmup_stats.loaded, cold.warmup_stats.computed) == (0, 3)
    assert len(list((tmp_path / "c").rglob("*.tiles"))) == 3
    assert not list((tmp_path / "c").rglob("*.tmp")) and not list((tmp_path / "c").glob("*.lock"))

    warm, _ = _evaluator(tmp_path / "c")
    warm.prepare()
    assert (warm.warmup_stats.loaded, warm.warmup_stats.computed) == (3, 0)
    assert warm.mapper.stats.searches == 0
    got_warm = _costs(warm, space)
    _same(got_cold, want)
    _same(got_warm, want)
    assert any(r["feasible"] for r in want)


def test_other_network_reuses_the_shapes_it_shares(tmp_path):
    ev, space = _evaluator(tmp_path, layers=(SMALL, FC))
    _costs(ev, space, 2)
    other, space2 = _evaluator(tmp_path, layers=(DEPTHWISE, SMALL, FC))
    got = _costs(other, space2, 4)
    assert (other.warmup_stats.loaded, other.warmup_stats.computed) == (2, 1)
    plain, _ = _evaluator(layers=(DEPTHWISE, SMALL, FC))
    _same(got, _costs(plain, space2, 4))


def test_key_follows_everything_that_decides_the_tile_sets(tmp_path):
    ev, _ = _evaluator()
    corners = [(ev.accelerator(d), b) for d, b in ev.corner_designs()]
    key = mcache.shape_cache_key(("s",), corners, "energy", ev.mapper)
    assert key == mcache.shape_cache_key(("s",), list(corners), "energy", Mapper(**FAST))
    assert key != mcache.shape_cache_key(("s2",), corners, "energy", ev.mapper)
    assert key != mcache.shape_cache_key(("s",), corners, "edp", ev.mapper)
    assert key != mcache.shape_cache_key(("s",), corners[:-1], "energy", ev.mapper)
    assert key != mcache.shape_cache_key(("s",), corners[::-1], "energy", ev.mapper)
    assert key != mcache.shape_cache_key(("s",), corners, "energy", Mapper(**{**FAST, "budget": 201}))
    bits = [(a, (8, 8, 8)) for a, _ in corners]
    assert key != mcache.shape_cache_key(("s",), bits, "energy", ev.mapper)
    acc8 = [(a.with_accumulator_bits(20, "test"), b) for a, b in corners]
    assert key != mcache.shape_cache_key(("s",), acc8, "energy", ev.mapper)
    other_genes = (HardwareGene("pe_x", (8, 14), 14), HardwareGene("glb_depth", (8192, 16384), 16384))
    ev2, _ = _evaluator(genes=other_genes)
    corners2 = [(ev2.accelerator(d), b) for d, b in ev2.corner_designs()]
    assert key != mcache.shape_cache_key(("s",), corners2, "energy", ev.mapper)


def test_keys_are_the_same_in_another_process(tmp_path):
    """Keys depend on content only (no hash seed, no object ids): other processes find the files."""
    import os
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'tests'); import test_mapper_cache as t; from jaqmoo.mapping import cache; "
            "ev, _ = t._evaluator(); print(cache.corners_digest([(ev.accelerator(d), b) for d, b in "
            "ev.corner_designs()], 'energy', ev.mapper))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).parent.parent).stdout.split()[-1]
    ev, _ = _evaluator()
    assert out == mcache.corners_digest([(ev.accelerator(d), b) for d, b in ev.corner_designs()], "energy", ev.mapper)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "other_key"])
def test_damaged_files_are_ignored_with_a_warning_and_rewritten(tmp_path, damage):
    plain, space = _evaluator()
    want = _costs(plain, space)
    first, _ = _evaluator(tmp_path)
    _costs(first, space, 1)
    files = sorted(tmp_path.rglob("*.tiles"))
    victim = files[0]
    raw = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        i = len(raw) - 100
        victim.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
    elif damage == "garbage":
        victim.write_bytes(b"not a cache file")
    else:  # a valid file stored under another key's name
        victim.write_bytes(files[1].read_bytes())
    again, _ = _evaluator(tmp_path)
    with pytest.warns(mcache.CacheWarning, match="damaged"):
        got = _costs(again, space)
    assert (again.warmup_stats.loaded, again.warmup_stats.computed) == (2, 1)
    _same(got, want)
    assert victim.read_bytes() == raw  # recomputed and rewritten, byte for byte


def test_unwritable_cache_folder_warns_and_still_computes(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ev, space = _evaluator(blocker / "cache")
    plain, _ = _evaluator()
    with pytest.warns(mcache.CacheWarning, match="cannot"):
        got = _costs(ev, space, 3)
    _same(got, _costs(plain, space, 3))


def test_a_second_warmup_waits_for_the_first_then_reads_it(tmp_path):
    """Runs needing one warm-up compute it once: the other waits on its lock, then loads it."""
    ev, _ = _evaluator(tmp_path)
    layers = ev.workload.layers
    corners = [(ev.accelerator(d), b) for d, b in ev.corner_designs()]
    keys = sorted({mcache.shape_cache_key(shape_key(layer), corners, "energy", ev.mapper) for layer in layers})
    lock = mcache._warmup_lock(mcache.TileSetCache(tmp_path), keys)
    lock.acquire()  # "another run" is warming up these shapes
    waiter, _ = _evaluator(tmp_path)
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("seconds", waiter.prepare()))
    thread.start()
    time.sleep(1.5)
    assert thread.is_alive() and not done  # waiting on the lock
    mcache.warm_up(ev.mapper, layers, corners, "energy", None)  # the holder computes...
    assert mcache.store_tile_sets(mcache.TileSetCache(tmp_path), ev.mapper, layers, corners, "energy") == 3
    lock.release()  # ...stores and releases
    thread.join(60)
    assert not thread.is_alive()
    stats = waiter.warmup_stats
    assert (stats.loaded, stats.computed) == (3, 0) and stats.waited_seconds >= 1.0
    assert waiter.mapper.stats.searches == 0


TINY_RUN = {
    "name": "tiny",
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss", "search": {"pe_x": [8, 14], "glb_depth": [4096, 16384]}},
    "quantization": {"weight_bits": [4, 6, 8], "act_bits": [4, 6, 8]},
    "objectives": ["accuracy", "energy", "memory"],
    "search": {"population": 8, "generations": 2, "batch_size": 4},
}


@pytest.fixture
def counted_warmups(fake_accuracy, monkeypatch):
    """Fake accuracy (no training); counts the warm-up computations (not the cache reads)."""
    calls = []
    real = mcache._compute
    monkeypatch.setattr(mcache, "_compute", lambda mapper, layers, *a: (calls.append(len(layers)), real(mapper, layers, *a)))
    return calls


def _run_spec(tmp_path, cache_dir):
    data = json.loads(json.dumps(TINY_RUN))
    if cache_dir is not None:
        data["mapping"] = {"cache_dir": cache_dir}
    path = tmp_path / f"spec-{len(list(tmp_path.glob('spec-*')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_jaqmoo_run_twice_shares_the_warmup_and_writes_identical_csvs(tmp_path, counted_warmups):
    shared = str(tmp_path / "cache")
    run_experiment(_run_spec(tmp_path, shared), out=tmp_path / "a", progress=False, plots=False)
    assert sum(counted_warmups) == 5  # simple_cnn's distinct layer shapes, searched once
    n_files = len(list((tmp_path / "cache").rglob("*.tiles")))
    assert n_files == 5
    counted_warmups.clear()
    run_experiment(_run_spec(tmp_path, shared), out=tmp_path / "b", progress=False, plots=False)
    assert counted_warmups == []  # the second run read the warm-up
    run_experiment(_run_spec(tmp_path, False), out=tmp_path / "c", progress=False, plots=False)
    assert sum(counted_warmups) == 5 and not (tmp_path / "c" / "mapper-cache").exists()
    for name in ("front.csv", "evaluations.csv"):
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes(), name
    assert "mapper_warmup" in json.loads((tmp_path / "b" / "timings.json").read_text())


def test_resume_reads_the_run_folders_own_cache(tmp_path, counted_warmups):
    spec = _run_spec(tmp_path, None)  # default: <run dir>/mapper-cache
    run_experiment(spec, out=tmp_path / "r", progress=False, plots=False)
    assert sum(counted_warmups) == 5 and len(list((tmp_path / "r" / "mapper-cache").rglob("*.tiles"))) == 5
    counted_warmups.clear()
    run_experiment(spec, out=tmp_path / "r", resume=True, generations=3, progress=False, plots=False)
    assert counted_warmups == []


def test_bad_cache_dir_names_the_field(tmp_path):
    with pytest.raises(JaqmooError, match=r"mapping\.cache_dir must be a folder path .* false"):
        parse_spec({**TINY_RUN, "mapping": {"cache_dir": True}})
    with pytest.raises(JaqmooError, match=r"mapping\.cache_dir"):
        parse_spec({**TINY_RUN, "mapping": {"cache_dir": 3}})
