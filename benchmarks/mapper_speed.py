"""Mapper speed: MobileNetV2 @224 on the eyeriss template with a per-layer mapper search.

Measures, in one run:

* cold: a fresh :class:`~jaqmoo.mapping.mapper.Mapper` maps every layer (31 distinct
  shapes of 53 layers): enumeration/sampling, vectorized evaluation, refinement;
* warm: the same network again with the same mapper (every shape served from the cache);
* seconds per hardware-search iteration: new eyeriss parameters (buffer depths and word
  widths drawn from the template's choices), every layer re-costed; the mean over
  ``--iterations`` random parameter sets, after a one-time warm-up
  (:meth:`~jaqmoo.mapping.mapper.Mapper.prepare` on corner designs: the largest and the
  smallest buffers/words and ``--corners`` random ones -- what a hardware search does once
  so that its cached candidate sets cover the parameter space);
* quality of those iterations: network energy from the re-costed candidates vs a fresh
  full search on the same hardware, for ``--check`` of the parameter sets;
* mappings evaluated per second: the full two-stage model (analyze + cost) on batches of
  a layer's mapspace, on the backend the mapper uses (numba when it imports, see
  :func:`jaqmoo.mapping.model.resolve_backend`), and the cost-only stage B on cached
  accesses; the numpy reference backend is timed in the same run for comparison.

Run: ``python benchmarks/mapper_speed.py`` (add ``--quick`` for a smoke run). The last
line is ``RESULT cold_network_seconds=.. warm_network_seconds=.. seconds_per_hw_iteration=..
mappings_per_second=..``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np


def _threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--input", default="3x224x224")
    ap.add_argument("--accelerator", default="eyeriss")
    ap.add_argument("--iterations", type=int, default=10, help="random hardware parameter sets")
    ap.add_argument("--check", type=int, default=3, help="parameter sets also searched cold (quality check)")
    ap.add_argument("--corners", type=int, default=2, help="random corner designs in the warm-up (plus max and min)")
    ap.add_argument("--budget", type=int, default=None, help="mapper budget (factor splits per layer)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small input, few iterations (smoke run)")
    args = ap.parse_args(argv)
    _threads(1)

    import torch

    torch.set_num_threads(1)
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.mapping import mapspace as ms
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.mapping.model import analyze, cost, resolve_backend
    from jaqmoo.workload import model_workload, parse_input_shape

    if args.quick:
        args.input, args.iterations, args.check = "3x32x32", 3, 1
    shape = parse_input_shape(args.input)
    wl = model_workload(args.model, shape)
    template = get_template(args.accelerator)
    base = template.build()
    kw = {} if args.budget is None else {"budget": args.budget}
    print(f"{args.model} @ {args.input}: {len(wl.layers)} layers, {len(wl.unique_shapes())} distinct shapes, "
          f"{wl.macs / 1e6:.1f} M MACs; accelerator {base.name} ({base.energy_source})")

    # ---- cold and warm network (cold includes loading, or the first time compiling, the model kernels)
    mapper = Mapper(**kw)
    t = time.perf_counter()
    cold = network_cost(wl, base, bits=(8, 8, 8), mapper=mapper)
    cold_s = time.perf_counter() - t
    t = time.perf_counter()
    warm = network_cost(wl, base, bits=(8, 8, 8), mapper=mapper)
    warm_s = time.perf_counter() - t
    assert warm.energy_pj == cold.energy_pj
    print(f"cold network: {cold_s:.2f} s ({mapper.stats.evaluated} mappings evaluated, "
          f"{mapper.stats.evaluated / max(mapper.stats.search_seconds, 1e-9):.0f} mappings/s inside searches); "
          f"energy {cold.energy_pj * 1e-6:.2f} uJ, cycles {cold.cycles}")
    print(f"warm network (cache): {warm_s * 1e3:.2f} ms")

    # ---- hardware-search iterations: buffer depths and word widths from the template's choices
    names = [p.name for p in template.params]
    varied = [n for n in names if n.endswith("_depth") or n.endswith("_width")]
    choices = {p.name: p.choices for p in template.params if p.name in varied}
    rng = np.random.default_rng(args.seed)
    corners = [{n: max(choices[n]) for n in varied}, {n: min(choices[n]) for n in varied}]
    corners += [{n: int(rng.choice(choices[n])) for n in varied} for _ in range(args.corners)]
    t = time.perf_counter()
    mapper.prepare(wl.layers, [template.build(**c) for c in corners], bits=(8, 8, 8))
    reserve_s = time.perf_counter() - t
    print(f"one-time warm-up on {len(corners)} corner designs (varying {', '.join(varied)}): {reserve_s:.2f} s; "
          f"retained candidates per shape: {np.mean(mapper.retained_sizes()):.0f}")
    # The warm-up leaves a large heap behind; collect it now so that one full (generation-2)
    # garbage collection of it, a one-time cost of the set-up, is not charged to whichever
    # iteration it happens to fall in (timeit disables the collector for the same reason).
    gc.collect()
    rng = np.random.default_rng(args.seed + 1)
    times, gaps, searches_before = [], [], mapper.stats.searches
    for i in range(args.iterations):
        params = {n: int(rng.choice(choices[n])) for n in varied}
        try:
            accel = template.build(**params)
        except Exception as exc:  # an impossible combination (e.g. width < datawidth)
            print(f"  skip {params}: {exc}")
            continue
        t = time.perf_counter()
        res = network_cost(wl, accel, bits=(8, 8, 8), mapper=mapper, raise_on_infeasible=False)
        times.append(time.perf_counter() - t)
        line = f"  iteration {i}: {times[-1] * 1e3:.1f} ms, energy {res.energy_pj * 1e-6:.2f} uJ"
        if i < args.check and res.feasible:
            fresh = network_cost(wl, accel, bits=(8, 8, 8), mapper=Mapper(**kw), raise_on_infeasible=False)
            if fresh.feasible:
                gaps.append(res.energy_pj / fresh.energy_pj - 1)
                line += f" (fresh full search: {fresh.energy_pj * 1e-6:.2f} uJ, gap {gaps[-1] * 100:+.2f} %)"
        print(line)
    per_iter = float(np.mean(times)) if times else float("nan")
    full_searches = mapper.stats.searches - searches_before
    print(f"seconds per hardware iteration: {per_iter:.4f} (mean of {len(times)}; {full_searches} layer "
          f"searches had to rerun)")
    if gaps:
        print(f"energy of re-costed candidates vs fresh search: mean gap {np.mean(gaps) * 100:+.2f} %")

    # ---- throughput of the two-stage model, on the backend the mapper uses (and the numpy reference)
    layer = max(wl.layers, key=lambda layer: layer.macs)
    spec = mapper.spec(base)
    space = ms.Mapspace(layer, spec, ms.envelope_for(base, (8, 8, 8)))
    batch = space.materialize(*space.sample(4000, seed=1))

    def rate(fn, seconds: float) -> float:
        """Mappings per second of ``fn()`` (one batch per call), over ``seconds`` of wall time."""
        n_eval, t = 0, time.perf_counter()
        while time.perf_counter() - t < seconds:
            fn()
            n_eval += len(batch)
        return n_eval / (time.perf_counter() - t)

    backend = resolve_backend()
    full_rate = rate(lambda: cost(analyze(layer, base, batch), base, (8, 8, 8)), 3.0)
    acc = analyze(layer, base, batch)
    cost_rate = rate(lambda: cost(acc, base, (8, 8, 8)), 2.0)
    numpy_rate = rate(lambda: cost(analyze(layer, base, batch, backend="numpy"), base, (8, 8, 8), backend="numpy"), 2.0)
    threads = ""
    if backend == "numba":
        from jaqmoo.mapping.kernel import n_threads

        threads = f", {n_threads()} threads"
    print(f"model throughput on {layer.name} ({len(batch)} mappings per batch), {backend} backend{threads}: "
          f"analyze+cost {full_rate:.3g} mappings/s, cost only {cost_rate:.3g} mappings/s; numpy reference "
          f"analyze+cost {numpy_rate:.3g} mappings/s ({full_rate / numpy_rate:.1f}x)")
    print(f"targets: <= 0.15 s per hardware iteration: {'met' if per_iter <= 0.15 else 'NOT met'}; "
          f">= 1e6 mappings/s (analyze+cost): {'met' if full_rate >= 1e6 else 'NOT met'}")
    print(f"RESULT cold_network_seconds={cold_s:.3f} warm_network_seconds={warm_s:.5f} "
          f"seconds_per_hw_iteration={per_iter:.4f} mappings_per_second={full_rate:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
