"""Throughput of the two-stage cost model (stage A ``analyze``, stage B ``cost``).

Random valid mappings (every dim's prime factors spread over the temporal loops of the
storage levels and the spatial fan-outs, fan-outs respected, forced keep/bypass respected,
random loop orders) of MobileNetV2 @224 layers on the Eyeriss-like reference accelerator
(tests/data/timeloop_reference/mapper-eyeriss-like-conv), timed in CPU seconds (best of
``--repeat``; the machine is shared, so wall-clock time would measure the neighbours).
Also times re-costing a few hundred retained mappings for every unique layer shape (what
a hardware-search iteration does with the cached stage-A results).

Usage: python benchmarks/model_speed.py [--mappings 100000] [--repeat 3]
Last line: ``RESULT analyze_mappings_per_second=.. cost_mappings_per_second=.. ...``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.mapping.mapspace import prime_list
from jaqmoo.mapping.model import analyze, cost, resolve_backend
from jaqmoo.timeloop.inputs import load_timeloop_input
from jaqmoo.workload import DIMS, Layer

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "timeloop_reference" / "mapper-eyeriss-like-conv"


def random_mappings(layer: Layer, accel, n: int, seed: int = 0) -> MappingBatch:
    """``n`` random mappings of ``layer`` that fit the fan-outs of ``accel``."""
    rng = np.random.default_rng(seed)
    n_lvl = accel.n_levels
    temporal_slots = [lvl for lvl in range(n_lvl) if not accel.levels[lvl].is_dummy]
    spatial_slots = [(lvl, axis) for lvl in range(n_lvl) for axis, f in enumerate(accel.fanout(lvl)) if f > 1]
    fanout = np.array([[f for f in accel.fanout(lvl)] for lvl in range(n_lvl)])  # [L, 2]
    batches, have = [], 0
    while have < n:
        m = 2 * (n - have) + 64
        t = np.ones((m, n_lvl, 8), dtype=np.int64)
        s = np.ones((2, m, n_lvl, 8), dtype=np.int64)
        for d, dim in enumerate(DIMS):
            for p in prime_list(getattr(layer, dim)):
                slot = rng.integers(0, len(temporal_slots) + len(spatial_slots), m)
                for j, lvl in enumerate(temporal_slots):
                    t[slot == j, lvl, d] *= p
                for j, (lvl, axis) in enumerate(spatial_slots):
                    s[axis, slot == len(temporal_slots) + j, lvl, d] *= p
        fits = (s.prod(axis=3) <= fanout.T[:, None, :]).all(axis=(0, 2))
        perm = np.argsort(rng.random((m, n_lvl, 8)), axis=2)
        keep = rng.random((m, n_lvl, 3)) < 0.5
        for lvl, level in enumerate(accel.levels):
            for ti, tensor in enumerate(("Weights", "Inputs", "Outputs")):
                if level.is_dummy or tensor in level.bypass:
                    keep[:, lvl, ti] = False
                elif tensor in level.keep or lvl == 0:
                    keep[:, lvl, ti] = True
        idx = np.flatnonzero(fits)[: n - have]
        batches.append(MappingBatch(t[idx], s[0, idx], s[1, idx], perm[idx], keep[idx]))
        have += len(idx)
    batch = MappingBatch.concat(batches)
    batch.check(layer)
    return batch


def best_cpu_seconds(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mappings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recost", type=int, default=300, help="retained mappings per layer shape")
    args = parser.parse_args()

    from jaqmoo.models import model_workload

    accel = load_timeloop_input(REFERENCE).accelerator
    workload = model_workload("mobilenet_v2", (3, 224, 224))
    shapes = [workload.layers[idx[0]] for idx in workload.unique_shapes().values()]
    pointwise = next(lay for lay in workload.layers if lay.R == 1 and lay.K * lay.C >= 24 * 144 and lay.P == 56)
    depthwise = next(lay for lay in workload.layers if lay.kind == "depthwise" and lay.P == 56)
    print(f"backend: {resolve_backend()} (JAQMOO_NO_NUMBA=1 for the numpy reference); CPU seconds of all threads")
    results = {}
    for tag, layer in (("pointwise", pointwise), ("depthwise", depthwise)):
        batch = random_mappings(layer, accel, args.mappings)
        t_a = best_cpu_seconds(lambda b=batch, lay=layer: analyze(lay, accel, b), args.repeat)
        acc = analyze(layer, accel, batch)
        t_c = best_cpu_seconds(lambda a=acc: cost(a, accel), args.repeat)
        t_b = best_cpu_seconds(lambda a=acc: cost(a, accel, (4, 4, 8)), args.repeat)
        results[tag] = (len(batch) / t_a, len(batch) / t_c, len(batch) / t_b)
        print(f"{tag:9s} {layer.name} ({layer.kind} K={layer.K} C={layer.C} G={layer.G} P={layer.P} "
              f"R={layer.R}): analyze {len(batch) / t_a:,.0f}/s, cost {len(batch) / t_c:,.0f}/s, "
              f"cost at 4/4/8 bits {len(batch) / t_b:,.0f}/s")

    # Re-costing cached stage-A results of every unique shape for new hardware parameters.
    cached = [analyze(lay, accel, random_mappings(lay, accel, args.recost, seed=i)) for i, lay in enumerate(shapes)]
    t_r = best_cpu_seconds(lambda: [cost(a, accel, (4, 4, 8)) for a in cached], args.repeat)
    print(f"re-cost {len(shapes)} unique MobileNetV2 shapes x {args.recost} mappings: {t_r:.4f} s")
    a_rate = min(r[0] for r in results.values())
    c_rate = min(r[1] for r in results.values())
    print(f"RESULT analyze_mappings_per_second={a_rate:.0f} cost_mappings_per_second={c_rate:.0f} "
          f"recost_all_shapes_seconds={t_r:.4f} unique_shapes={len(shapes)}")


if __name__ == "__main__":
    main()
