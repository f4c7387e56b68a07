"""Mapper speed: hardware-search iterations as the search makes them (MobileNetV2 @224, eyeriss).

One *iteration* = one candidate of a joint hardware + quantization search, costed the way
the search costs it (:meth:`jaqmoo.search.evaluation.JointEvaluator.cost`: build the
accelerator, map every layer at its bits, total the network): a random draw of EVERY
searchable parameter of the template (PE array dims, buffer depths, word widths,
bandwidths) together with a random per-layer bit policy (weights and activations drawn
from the package's supported bits), all layers of the network.

Measured in one run:

* warm-up the search pays once, timed separately: loading (or compiling) the numba model
  kernels, and :meth:`~jaqmoo.search.evaluation.JointEvaluator.prepare`, which searches every
  layer shape on the corner designs of the space (every PE array at the loosest capacity with
  the smallest bits; a coarse grid of them at the tightest capacity with the largest bits and
  at lower-third capacity with the middle bits) and encodes the
  retained mappings as one BatchTile set per shape, pruned of dominated rows
  (:mod:`jaqmoo.mapping.batchtile`);
* seconds per iteration (median and mean over ``--iterations`` random candidates), and the
  amortized seconds per evaluation of a 3,200-evaluation search (warm-up / 3200 + mean);
* quality: each feasible iteration's network energy against a fresh full search (a new
  :class:`~jaqmoo.mapping.mapper.Mapper`: sampling + refinement for every layer on exactly
  that hardware and those bits) for ``--check`` of them: mean and worst gap, and the time
  one such full search takes (what an iteration cost before BatchTile);
* mappings evaluated per second by the two-stage model on the backend the mapper uses
  (numba) and on the numpy reference, same batches, same run.

Run: ``python benchmarks/mapper_speed.py`` (``--quick`` for a smoke run). The last line is
``RESULT median_seconds_per_hw_iteration=.. mean_seconds_per_hw_iteration=.. warmup_seconds=..
amortized_seconds_per_eval_3200=.. mean_energy_gap_pct=.. worst_energy_gap_pct=..
mappings_per_second=.. ...``.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np

SEARCH_EVALS = 3200


def _threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "JAQMOO_THREADS"):
        os.environ.setdefault(var, str(n))


def search_space(workload, template, bits):
    """A GenomeSpace with every searchable template parameter as a gene and free per-layer bits."""
    from jaqmoo.search.genome import GenomeSpace, HardwareGene

    genes = tuple(HardwareGene(p.name, p.choices, p.default) for p in template.searchable_params)
    return GenomeSpace(layer_names=tuple(layer.name for layer in workload.layers), weight_choices=bits,
                       act_choices=bits, hardware_genes=genes)


def random_genomes(space, n: int, seed: int) -> np.ndarray:
    """int [n, genes]: every gene drawn uniformly from its choices."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, space.upper_bounds + 1, size=(n, space.n_var))


def model_throughput(layer, accel, mapper, seconds: float = 2.0) -> dict[str, float]:
    """Mappings/s of analyze+cost on 4000 sampled mappings of ``layer``: default backend and numpy."""
    from jaqmoo.mapping import mapspace as ms
    from jaqmoo.mapping.model import analyze, cost

    space = ms.Mapspace(layer, mapper.spec(accel), ms.envelope_for(accel, (8, 8, 8)))
    batch = space.materialize(*space.sample(4000, seed=1))

    def rate(fn, budget: float) -> float:
        n_eval, t = 0, time.perf_counter()
        while time.perf_counter() - t < budget:
            fn()
            n_eval += len(batch)
        return n_eval / (time.perf_counter() - t)

    acc = analyze(layer, accel, batch)
    return {
        "full": rate(lambda: cost(analyze(layer, accel, batch), accel, (8, 8, 8)), seconds),
        "cost_only": rate(lambda: cost(acc, accel, (8, 8, 8)), seconds),
        "numpy": rate(lambda: cost(analyze(layer, accel, batch, backend="numpy"), accel, (8, 8, 8),
                                   backend="numpy"), seconds),
        "n": len(batch),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--input", default="3x224x224")
    ap.add_argument("--accelerator", default="eyeriss")
    ap.add_argument("--iterations", type=int, default=40, help="random candidates timed")
    ap.add_argument("--check", type=int, default=10, help="feasible candidates also searched fresh (quality)")
    ap.add_argument("--max-pe-arrays", type=int, default=36, help="PE arrays encoded in the warm-up (at most)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small input, few iterations (smoke run)")
    args = ap.parse_args(argv)
    _threads(1)

    import torch

    torch.set_num_threads(1)
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.mapping.model import analyze, cost, resolve_backend
    from jaqmoo.models import model_workload
    from jaqmoo.quant.policy import SUPPORTED_BITS
    from jaqmoo.search.evaluation import JointEvaluator
    from jaqmoo.workload import Layer, parse_input_shape

    if args.quick:
        args.input, args.iterations, args.check = "3x32x32", 6, 2
    wl = model_workload(args.model, parse_input_shape(args.input))
    template = get_template(args.accelerator)
    space = search_space(wl, template, SUPPORTED_BITS)
    print(f"{args.model} @ {args.input}: {len(wl.layers)} layers, {len(wl.unique_shapes())} distinct shapes, "
          f"{wl.macs / 1e6:.1f} M MACs; template {template.name}; genes: "
          f"{', '.join(f'{g.name} {list(g.choices)}' for g in space.hardware_genes)}; "
          f"bits per layer (weights, activations) from {list(SUPPORTED_BITS)}")

    # ---- warm-up, once per search: kernels (numba: load or compile), then the BatchTile encoding
    backend = resolve_backend()
    t = time.perf_counter()
    tiny, base = Layer("tiny", "conv", K=4, C=4, P=4, Q=4, R=3, S=3), template.build()
    cost(analyze(tiny, base, Mapper().best(tiny, base, (8, 8, 8)).mapping), base, (8, 8, 8))
    kernel_s = time.perf_counter() - t
    evaluator = JointEvaluator(wl, template, None, space, max_pe_arrays=args.max_pe_arrays)
    corners = evaluator.corner_designs()
    pe_arrays = evaluator.pe_arrays()
    encode_s = evaluator.prepare()
    warmup_s = kernel_s + encode_s
    sizes = evaluator.mapper.retained_sizes()
    kept = [int((~t.dominated).sum()) for t in evaluator.mapper.tile_sets()]
    print(f"warm-up: {kernel_s:.2f} s loading the {backend} kernels + {encode_s:.2f} s encoding "
          f"{len(sizes)} shapes on {len(corners)} corner designs ({len(pe_arrays)} PE arrays "
          f"{[tuple(p.values()) for p in pe_arrays]} at the largest buffers and {evaluator.min_bits} bits, "
          f"{len(corners) - len(pe_arrays)} at smaller buffers and up to {evaluator.max_bits} bits) = {warmup_s:.2f} s; "
          f"tile-set size per shape: mean "
          f"{np.mean(sizes):.0f}, max {max(sizes)}, not dominated: mean {np.mean(kept):.0f}")
    searches_at_warmup = evaluator.mapper.stats.searches
    gc.collect()  # the warm-up's garbage is not charged to the first iteration

    # ---- iterations: random hardware (every searchable parameter) + random per-layer bits
    times, gaps, full_s, infeasible = [], [], [], 0
    for i, x in enumerate(random_genomes(space, args.iterations, args.seed + 1)):
        cand = space.decode_one(x)
        t = time.perf_counter()
        rec = evaluator.cost(cand)
        times.append(time.perf_counter() - t)
        hw = ", ".join(f"{k}={v}" for k, v in sorted(cand.hardware.items()))
        line = f"  iteration {i}: {times[-1] * 1e3:7.1f} ms"
        if not rec["feasible"]:
            infeasible += 1
            print(f"{line}  infeasible ({rec['reason'][:90]})")
            continue
        line += f"  energy {rec['energy_pj'] * 1e-6:9.2f} uJ"
        if len(gaps) < args.check:
            accel = evaluator.accelerator(dict(cand.hardware))
            t = time.perf_counter()
            fresh = network_cost(wl, accel, policy=cand.policy, mapper=Mapper(), raise_on_infeasible=False)
            full_s.append(time.perf_counter() - t)
            if fresh.feasible:
                gaps.append(rec["energy_pj"] / fresh.energy_pj - 1)
                line += (f"  fresh full search {fresh.energy_pj * 1e-6:9.2f} uJ ({full_s[-1]:.2f} s), "
                         f"gap {gaps[-1] * 100:+.3f} %")
            else:
                line += f"  fresh full search infeasible: {fresh.reason[:60]}"
        print(f"{line}  [{hw}]")
    times_a = np.asarray(times)
    median_s, mean_s = float(np.median(times_a)), float(np.mean(times_a))
    amortized = warmup_s / SEARCH_EVALS + mean_s
    print(f"seconds per hardware-search iteration: median {median_s:.4f}, mean {mean_s:.4f}, max "
          f"{times_a.max():.4f} over {len(times)} random candidates ({infeasible} infeasible: they stop at the "
          f"first layer that fits no buffer); layer searches after the warm-up: "
          f"{evaluator.mapper.stats.searches - searches_at_warmup}")
    print(f"amortized over a {SEARCH_EVALS}-evaluation search: {warmup_s:.2f} / {SEARCH_EVALS} + {mean_s:.4f} = "
          f"{amortized:.4f} s per evaluation")
    gap_mean = float(np.mean(gaps) * 100) if gaps else float("nan")
    gap_worst = float(np.max(gaps) * 100) if gaps else float("nan")
    full_mean = float(np.mean(full_s)) if full_s else float("nan")
    print(f"energy vs a fresh full search on the same hardware and bits ({len(gaps)} candidates): mean gap "
          f"{gap_mean:+.3f} %, worst {gap_worst:+.3f} % (negative: the re-fitted tile sets beat the fresh search); "
          f"one fresh full search takes {full_mean:.2f} s")

    # ---- throughput of the two-stage model, on the backend the mapper uses (and the numpy reference)
    layer = max(wl.layers, key=lambda layer: layer.macs)
    rates = model_throughput(layer, base, evaluator.mapper)
    print(f"model throughput on {layer.name} ({rates['n']} mappings per batch): {backend} analyze+cost "
          f"{rates['full']:.3g} mappings/s, cost only {rates['cost_only']:.3g} mappings/s; numpy reference "
          f"analyze+cost {rates['numpy']:.3g} mappings/s ({rates['full'] / rates['numpy']:.1f}x)")
    print(f"targets: median <= 0.15 s per iteration: {'met' if median_s <= 0.15 else 'NOT met'}; mean energy "
          f"within 1 % of a fresh full search: {'met' if abs(gap_mean) <= 1 else 'NOT met'}")
    print(f"RESULT median_seconds_per_hw_iteration={median_s:.4f} mean_seconds_per_hw_iteration={mean_s:.4f} "
          f"warmup_seconds={warmup_s:.2f} amortized_seconds_per_eval_3200={amortized:.4f} "
          f"mean_energy_gap_pct={gap_mean:.3f} worst_energy_gap_pct={gap_worst:.3f} "
          f"mappings_per_second={rates['full']:.0f} numpy_mappings_per_second={rates['numpy']:.0f} "
          f"full_search_seconds={full_mean:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
