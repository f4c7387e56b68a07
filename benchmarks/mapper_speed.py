"""Mapper speed: hardware-search iterations as the search makes them (MobileNetV2 @224, eyeriss).

One *iteration* = one candidate of a joint hardware + quantization search, costed the way
the search costs it (:meth:`jaqmoo.search.evaluation.JointEvaluator.cost`: build the
accelerator, map every layer at its bits, total the network): a random draw of EVERY
searchable parameter of the template (PE array dims, buffer depths, word widths,
bandwidths) together with a random per-layer bit policy (weights and activations drawn
from the package's supported bits), all layers of the network.

Measured in one run, twice: from a **cold** tile-set cache (an empty ``--cache-dir``: the
warm-up searches every layer shape on the corner designs and writes the cache) and from the
**warm** cache it left (a new evaluator whose warm-up only loads the tile sets), the same draws:

* warm-up the search pays once: loading (or compiling) the numba model kernels, and
  :meth:`~jaqmoo.search.evaluation.JointEvaluator.prepare`, which searches every layer shape on
  the corner designs of the space (``--max-pe-arrays`` PE arrays at the loosest capacity with the
  smallest bits; a coarse grid of them at the tightest capacity with the largest bits and at
  lower-third capacity with the middle bits) and encodes the retained mappings as one BatchTile
  set per shape, pruned of dominated rows (:mod:`jaqmoo.mapping.batchtile`). The PE arrays are
  drawn from every choice of the template's PE genes, more than ``--max-pe-arrays`` (default 9
  of Eyeriss's 36), so most draws re-fit a tile set encoded for other arrays (counted);
* the headline: median seconds per iteration, and the amortised seconds per evaluation of a
  3,200-evaluation search including the warm-up (warm-up / 3200 + the mean over the run's
  ``--search-evals`` draws, default 3,200: the first visits of PE arrays the warm-up did not
  encode each pay one bounded search per layer shape, spread over that many draws), cold and
  warm (both runs make the same draws), on one thread, in wall seconds and in CPU seconds of this process (on a shared machine the CPU seconds
  are the better estimate of an idle machine's wall time);
* quality on EVERY feasible draw: the network energy against a fresh full search (a new
  :class:`~jaqmoo.mapping.mapper.Mapper`: sampling + refinement for every layer on exactly that
  hardware and those bits): mean and worst gap; the warm run must give the cold run's energies;
* mappings evaluated per second by the two-stage model on the backend the mapper uses (numba),
  on every core of the machine (the kernels' default thread count: the case a user's search
  hits) and on one thread, and on the numpy reference (one thread), same batches, same run;
* the machine's load average (1 min) at the start and the end: on a shared machine every
  timing is loaded by other work, so read them with it.

Run: ``python benchmarks/mapper_speed.py`` (``--quick`` for a smoke run). The last line is
``RESULT median_seconds_per_hw_iteration=.. amortized_seconds_per_eval_3200=..
median_seconds_per_hw_iteration_warm=.. amortized_seconds_per_eval_3200_warm=..
mean_seconds_per_hw_iteration=.. warmup_seconds=.. warmup_seconds_warm=..
mean_energy_gap_pct=.. worst_energy_gap_pct=.. gap_draws=.. refit_draws=..
mappings_per_second=.. mappings_per_second_1thread=.. threads=..
numpy_mappings_per_second=.. full_search_seconds=.. encode_budget=..
search_evals=.. median_cpu_seconds=.. amortized_cpu_seconds_3200=.. in_loop_search_seconds=..
load_start=.. load_end=..``.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
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


def model_throughput(layer, accel, mapper, seconds: float = 2.0, threads: int = 1) -> dict[str, float]:
    """Mappings/s of analyze+cost on 4000 sampled mappings of ``layer``: default backend (its kernels on
    ``threads`` threads, as ``JAQMOO_THREADS`` sets them) and the numpy reference (one thread)."""
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

    before = os.environ.get("JAQMOO_THREADS")
    os.environ["JAQMOO_THREADS"] = str(threads)
    try:
        acc = analyze(layer, accel, batch)
        out = {"full": rate(lambda: cost(analyze(layer, accel, batch), accel, (8, 8, 8)), seconds),
               "cost_only": rate(lambda: cost(acc, accel, (8, 8, 8)), seconds)}
    finally:
        if before is None:
            os.environ.pop("JAQMOO_THREADS")
        else:
            os.environ["JAQMOO_THREADS"] = before
    out["numpy"] = rate(lambda: cost(analyze(layer, accel, batch, backend="numpy"), accel, (8, 8, 8),
                                     backend="numpy"), seconds)
    out["n"] = len(batch)
    return out


def timed_run(label: str, wl, template, space, genomes, max_pe_arrays: int, cache_dir: str,
              encode_budget: int | None = None, extra=()) -> dict:
    """Warm-up + every draw of ``genomes`` and then of ``extra`` (timed only) through one fresh
    :class:`JointEvaluator` (cache at ``cache_dir``; ``encode_budget`` None: the evaluator's own)."""
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.mapping.model import analyze, cost, resolve_backend
    from jaqmoo.search.evaluation import JointEvaluator
    from jaqmoo.workload import Layer

    t, c = time.perf_counter(), time.process_time()
    tiny, base = Layer("tiny", "conv", K=4, C=4, P=4, Q=4, R=3, S=3), template.build()
    cost(analyze(tiny, base, Mapper().best(tiny, base, (8, 8, 8)).mapping), base, (8, 8, 8))
    kernel_s = time.perf_counter() - t
    evaluator = JointEvaluator(wl, template, None, space, max_pe_arrays=max_pe_arrays, cache_dir=cache_dir)
    if encode_budget is not None:
        evaluator.mapper.encode_budget = encode_budget
    corners = evaluator.corner_designs()
    pe_arrays = evaluator.pe_arrays()
    encode_s = evaluator.prepare()
    warmup_s = kernel_s + encode_s
    warmup_cpu = time.process_time() - c
    sizes = evaluator.mapper.retained_sizes()
    ws = evaluator.warmup_stats
    print(f"[{label}] warm-up: {kernel_s:.2f} s loading the {resolve_backend()} kernels + {encode_s:.2f} s "
          f"({ws.computed} shapes searched, {ws.loaded} loaded from the cache) on {len(corners)} corner designs "
          f"({len(pe_arrays)} PE arrays {[tuple(p.values()) for p in pe_arrays]} at the largest buffers) = "
          f"{warmup_s:.2f} s; tile-set size per shape: mean {np.mean(sizes):.0f}, max {max(sizes)}")
    encoded = {tuple(sorted(p.items())) for p in pe_arrays}
    pe_genes = tuple(pe_arrays[0]) if pe_arrays else ()
    searches_at_warmup = evaluator.mapper.stats.searches
    search_s_at_warmup = evaluator.mapper.stats.search_seconds
    gc.collect()  # the warm-up's garbage is not charged to the first iteration
    times, cpu, energies, refit = [], [], [], 0
    for i, x in enumerate(list(genomes) + list(extra)):
        cand = space.decode_one(x)
        t, c = time.perf_counter(), time.process_time()
        rec = evaluator.cost(cand)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        pe = tuple(sorted((g, cand.hardware[g]) for g in pe_genes))
        if i >= len(genomes):
            if (i + 1) % 200 == 0:
                print(f"  [{label}] {i + 1} draws: {sum(times):.1f} s ({sum(cpu):.1f} CPU s), "
                      f"{evaluator.mapper.stats.searches - searches_at_warmup} layer searches", flush=True)
            continue
        refit += pe not in encoded
        energies.append(rec["energy_pj"] if rec["feasible"] else float("nan"))
        hw = ", ".join(f"{k}={v}" for k, v in sorted(cand.hardware.items()))
        state = f"energy {rec['energy_pj'] * 1e-6:9.2f} uJ" if rec["feasible"] else f"infeasible ({rec['reason'][:60]})"
        print(f"  [{label}] draw {i}: {times[-1] * 1e3:7.1f} ms  {state}  "
              f"{'re-fit' if pe not in encoded else 'encoded'} PE array  [{hw}]")
    times_a = np.asarray(times)
    mean_s = float(np.mean(times_a))
    out = {"median": float(np.median(times_a)), "mean": mean_s, "median_cpu": float(np.median(cpu)),
           "mean_cpu": float(np.mean(cpu)), "warmup_cpu": warmup_cpu, "max": float(times_a.max()), "warmup": warmup_s,
           "amortized": warmup_s / SEARCH_EVALS + mean_s, "energies": energies, "refit": refit, "n": len(times),
           "amortized_cpu": warmup_cpu / SEARCH_EVALS + float(np.mean(cpu)),
           "searches": evaluator.mapper.stats.searches - searches_at_warmup, "evaluator": evaluator, "base": base,
           "search_s": evaluator.mapper.stats.search_seconds - search_s_at_warmup}
    print(f"[{label}] seconds per hardware-search iteration: median {out['median']:.4f}, mean {mean_s:.4f}, max "
          f"{out['max']:.4f} over {len(times)} draws ({refit} of the first {len(genomes)} on PE arrays the warm-up "
          f"did not encode); layer searches after the warm-up: {out['searches']} ({out['search_s']:.2f} s); "
          f"amortised over a {SEARCH_EVALS}-evaluation search: {warmup_s:.2f} / {SEARCH_EVALS} + {mean_s:.4f} = "
          f"{out['amortized']:.4f} s per evaluation; CPU seconds of this process: warm-up {warmup_cpu:.2f}, median "
          f"{out['median_cpu']:.4f}, mean {out['mean_cpu']:.4f}, amortised {out['amortized_cpu']:.4f}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--input", default="3x224x224")
    ap.add_argument("--accelerator", default="eyeriss")
    ap.add_argument("--iterations", type=int, default=40, help="random candidates timed")
    ap.add_argument("--max-pe-arrays", type=int, default=9,
                    help="PE arrays encoded in the warm-up (fewer than the template's PE choices: the re-fit runs)")
    ap.add_argument("--encode-budget", type=int, default=None,
                    help="Mapper.encode_budget: bounded search of a PE array new to a tile set (0: re-fit only; "
                         "default: the evaluator's)")
    ap.add_argument("--search-evals", type=int, default=SEARCH_EVALS,
                    help="draws of the cold run (the first --iterations also measure the gap): the amortised "
                         f"figure is the warm-up / {SEARCH_EVALS} + the mean over them")
    ap.add_argument("--cache-dir", default=None, help="tile-set cache folder (default: a new temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small input, few iterations (smoke run)")
    args = ap.parse_args(argv)
    _threads(1)
    load_start = os.getloadavg()[0]

    import torch

    torch.set_num_threads(1)
    from jaqmoo.cost import network_cost
    from jaqmoo.hardware.templates import get_template
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.mapping.model import resolve_backend
    from jaqmoo.mapping.model.threads import usable_cores
    from jaqmoo.models import model_workload
    from jaqmoo.quant.policy import SUPPORTED_BITS
    from jaqmoo.workload import parse_input_shape

    if args.quick:
        args.input, args.iterations, args.search_evals = "3x32x32", 6, 6
    wl = model_workload(args.model, parse_input_shape(args.input))
    template = get_template(args.accelerator)
    space = search_space(wl, template, SUPPORTED_BITS)
    print(f"{args.model} @ {args.input}: {len(wl.layers)} layers, {len(wl.unique_shapes())} distinct shapes, "
          f"{wl.macs / 1e6:.1f} M MACs; template {template.name}; genes: "
          f"{', '.join(f'{g.name} {list(g.choices)}' for g in space.hardware_genes)}; "
          f"bits per layer (weights, activations) from {list(SUPPORTED_BITS)}; load average {load_start:.2f} "
          f"(shared machine: timings are loaded)")
    genomes = random_genomes(space, args.iterations, args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or tmp
        extra = random_genomes(space, max(0, args.search_evals - len(genomes)), args.seed + 1000)
        cold = timed_run("cold", wl, template, space, genomes, args.max_pe_arrays, cache_dir, args.encode_budget, extra)
        warm = timed_run("warm", wl, template, space, genomes, args.max_pe_arrays, cache_dir, args.encode_budget,
                         extra)
    same = np.allclose(cold["energies"], warm["energies"], rtol=1e-12, equal_nan=True)
    print(f"warm-cache energies equal the cold run's: {same}")

    # ---- quality on every feasible draw: a fresh full search on the same hardware and bits
    gaps, full_s = [], []
    evaluator = cold["evaluator"]
    for i, (x, energy) in enumerate(zip(genomes, cold["energies"], strict=True)):
        if not np.isfinite(energy):
            continue
        cand = space.decode_one(x)
        t = time.perf_counter()
        fresh = network_cost(wl, evaluator.accelerator(dict(cand.hardware)), policy=cand.policy, mapper=Mapper(),
                             raise_on_infeasible=False)
        full_s.append(time.perf_counter() - t)
        if fresh.feasible:
            gaps.append(energy / fresh.energy_pj - 1)
            print(f"  draw {i}: re-fitted {energy * 1e-6:9.2f} uJ, fresh full search {fresh.energy_pj * 1e-6:9.2f} uJ "
                  f"({full_s[-1]:.2f} s), gap {gaps[-1] * 100:+.3f} %")
        else:
            print(f"  draw {i}: fresh full search infeasible: {fresh.reason[:60]}")
    gap_mean = float(np.mean(gaps) * 100) if gaps else float("nan")
    gap_worst = float(np.max(gaps) * 100) if gaps else float("nan")
    full_mean = float(np.mean(full_s)) if full_s else float("nan")
    print(f"energy vs a fresh full search on the same hardware and bits (every feasible draw: {len(gaps)} of "
          f"{len(genomes)}): mean gap {gap_mean:+.3f} %, worst {gap_worst:+.3f} % (negative: the re-fitted tile sets "
          f"beat the fresh search); one fresh full search takes {full_mean:.2f} s")

    # ---- throughput of the two-stage model, on the backend the mapper uses (and the numpy reference)
    layer = max(wl.layers, key=lambda layer: layer.macs)
    cores = usable_cores()
    one = model_throughput(layer, cold["base"], evaluator.mapper, threads=1)
    rates = model_throughput(layer, cold["base"], evaluator.mapper, threads=cores) if cores > 1 else one
    backend = resolve_backend()
    print(f"model throughput on {layer.name} ({rates['n']} mappings per batch): {backend} analyze+cost "
          f"{rates['full']:.3g} mappings/s on {cores} threads (the kernels' default on this {cores}-core machine), "
          f"{one['full']:.3g} on 1 thread; cost only {rates['cost_only']:.3g} / {one['cost_only']:.3g} mappings/s; "
          f"numpy reference analyze+cost {one['numpy']:.3g} mappings/s on 1 thread "
          f"({one['full'] / one['numpy']:.1f}x at equal threads)")
    load_end = os.getloadavg()[0]
    print(f"load average: {load_start:.2f} at the start, {load_end:.2f} at the end (2-core machine shared with "
          f"other work: every timing above is loaded)")
    print(f"RESULT median_seconds_per_hw_iteration={cold['median']:.4f} "
          f"amortized_seconds_per_eval_3200={cold['amortized']:.4f} "
          f"median_seconds_per_hw_iteration_warm={warm['median']:.4f} "
          f"amortized_seconds_per_eval_3200_warm={warm['amortized']:.4f} "
          f"mean_seconds_per_hw_iteration={cold['mean']:.4f} warmup_seconds={cold['warmup']:.2f} "
          f"warmup_seconds_warm={warm['warmup']:.2f} mean_energy_gap_pct={gap_mean:.3f} "
          f"worst_energy_gap_pct={gap_worst:.3f} gap_draws={len(gaps)} refit_draws={cold['refit']} "
          f"mappings_per_second={rates['full']:.0f} mappings_per_second_1thread={one['full']:.0f} "
          f"threads={cores} numpy_mappings_per_second={one['numpy']:.0f} "
          f"full_search_seconds={full_mean:.3f} encode_budget={evaluator.mapper.encode_budget} "
          f"search_evals={cold['n']} median_cpu_seconds={cold['median_cpu']:.4f} "
          f"amortized_cpu_seconds_3200={cold['amortized_cpu']:.4f} "
          f"in_loop_search_seconds={cold['search_s']:.2f} load_start={load_start:.2f} load_end={load_end:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
