"""Mapper warm-up cache: what a run saves when another run already warmed up its layers.

Inner mapping pays a one-time warm-up (:meth:`jaqmoo.search.evaluation.JointEvaluator.prepare`:
full mapper searches of every layer shape on corner designs of the hardware space, encoded as
BatchTile sets). With ``mapping.cache_dir`` those sets are stored per layer shape, keyed by a
hash of everything that decides them (:mod:`jaqmoo.mapping.cache`), and the next run on the same
hardware space reads them. Measured in one run, same workload and genes:

* ``no cache``: ``prepare()`` without a cache (what every run paid before);
* ``cold``: ``prepare()`` with an empty cache folder (computes and writes the files);
* ``warm``: a fresh evaluator (new mapper, as in a new process) on the filled folder;
* equality: the warm evaluator's tile sets equal the no-cache ones row for row, and
  ``--candidates`` random candidates (hardware genes and per-layer bits) cost the same,
  mapping strings included.

Run: ``python benchmarks/mapper_cache.py`` (``--quick``: a small input). Last line:
``RESULT nocache_warmup_seconds=.. cold_warmup_seconds=.. warm_warmup_seconds=.. warmup_speedup=..
cache_megabytes=.. identical=1``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _evaluator(wl, template, space, cache_dir, max_pe_arrays):
    from jaqmoo.search.evaluation import JointEvaluator

    return JointEvaluator(wl, template, None, space, cache_dir=cache_dir, max_pe_arrays=max_pe_arrays)


def _same_tile_sets(a, b) -> bool:
    sa, sb = a.mapper._candidates, b.mapper._candidates
    if sa.keys() != sb.keys():
        return False
    for key, ta in sa.items():
        tb = sb[key]
        for name in ("temporal", "spatial_x", "spatial_y", "perm", "keep"):
            if not np.array_equal(getattr(ta.batch, name), getattr(tb.batch, name)):
                return False
        if not np.array_equal(ta.dominated, tb.dominated):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--input", default="3x224x224")
    ap.add_argument("--accelerator", default="eyeriss")
    ap.add_argument("--genes", default="pe_x,glb_depth", help="searched template parameters (comma-separated)")
    ap.add_argument("--max-pe-arrays", type=int, default=36)
    ap.add_argument("--candidates", type=int, default=20, help="random candidates costed by both evaluators")
    ap.add_argument("--cache-dir", default=None, help="cache folder (default: a fresh temporary folder)")
    ap.add_argument("--quick", action="store_true", help="3x32x32 input, 5 candidates (smoke run)")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "JAQMOO_THREADS"):
        os.environ.setdefault(var, "1")
    if args.quick:
        args.input, args.candidates = "3x32x32", 5

    from jaqmoo.hardware.templates import get_template
    from jaqmoo.mapping.mapper import Mapper
    from jaqmoo.mapping.model import analyze, cost
    from jaqmoo.models import model_workload
    from jaqmoo.quant.policy import SUPPORTED_BITS
    from jaqmoo.search.genome import GenomeSpace, HardwareGene
    from jaqmoo.workload import Layer, parse_input_shape

    wl = model_workload(args.model, parse_input_shape(args.input))
    template = get_template(args.accelerator)
    names = [n.strip() for n in args.genes.split(",") if n.strip()]
    genes = tuple(HardwareGene(p.name, p.choices, p.default) for p in (template.param(n) for n in names))
    space = GenomeSpace(tuple(layer.name for layer in wl.layers), SUPPORTED_BITS, SUPPORTED_BITS, hardware_genes=genes)
    print(f"{args.model} @ {args.input}: {len(wl.layers)} layers, {len(wl.unique_shapes())} distinct shapes; "
          f"{template.name}, genes {', '.join(f'{g.name} {list(g.choices)}' for g in genes) or 'none'}")
    tiny, base = Layer("tiny", "conv", K=4, C=4, P=4, Q=4, R=3, S=3), template.build()
    cost(analyze(tiny, base, Mapper().best(tiny, base, (8, 8, 8)).mapping), base, (8, 8, 8))  # kernels loaded

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.cache_dir or Path(tmp) / "mapper-cache")
        plain = _evaluator(wl, template, space, None, args.max_pe_arrays)
        nocache_s = plain.prepare()
        print(f"no cache: {nocache_s:.2f} s ({len(plain.corner_designs())} corner designs)")
        cold = _evaluator(wl, template, space, folder, args.max_pe_arrays)
        cold_s = cold.prepare()
        files = list(folder.rglob("*.tiles"))
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(f"cold cache: {cold_s:.2f} s (computed {cold.warmup_stats.computed} shapes, wrote {len(files)} "
              f"files, {megabytes:.2f} MB in {folder})")
        t = time.perf_counter()
        warm = _evaluator(wl, template, space, folder, args.max_pe_arrays)
        warm_s = warm.prepare()
        construct_s = time.perf_counter() - t - warm_s
        print(f"warm cache: {warm_s:.2f} s (read {warm.warmup_stats.loaded} shapes, computed "
              f"{warm.warmup_stats.computed}; evaluator construction {construct_s:.2f} s)")
        same = _same_tile_sets(plain, warm) and _same_tile_sets(plain, cold)
        rng = np.random.default_rng(0)
        xs = rng.integers(0, space.upper_bounds + 1, size=(args.candidates, space.n_var))
        for x in xs:
            cand = space.decode_one(x)
            a, b = plain.cost(cand), warm.cost(cand)
            same &= a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)
        print(f"tile sets and {args.candidates} candidates' costs identical with and without the cache: {same}")
    speedup = nocache_s / warm_s if warm_s > 0 else float("inf")
    print(f"RESULT nocache_warmup_seconds={nocache_s:.2f} cold_warmup_seconds={cold_s:.2f} "
          f"warm_warmup_seconds={warm_s:.3f} warmup_speedup={speedup:.1f} cache_megabytes={megabytes:.2f} "
          f"identical={int(same)}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
