"""Population evaluation on a process pool gives the in-process evaluator's records."""

from __future__ import annotations

import math

import numpy as np
import pytest
from search_fakes import FakeAccuracy

from jaqmoo.experiment import prepare_experiment
from jaqmoo.experiment.caches import CachedEstimator
from jaqmoo.search.evaluators import build_evaluator
from jaqmoo.sweep.population import PoolEvaluator

SPEC = {
    "name": "tiny", "model": {"name": "simple_cnn"}, "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss", "search": {"pe_x": [8, 14]}},
    "quantization": {"weight_bits": [2, 4, 8], "act_bits": [4, 8]},
    "objectives": ["accuracy", "energy"], "search": {"population": 8, "generations": 1, "seed_bits": [8, 4]},
}


def _same(a: dict, b: dict) -> bool:
    """Equal records; ``map.*`` strings may name another of equally good mappings (the mapper
    breaks ties by what its cache saw before, and each worker's cache sees other candidates)."""
    return set(a) == set(b) and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) or k.startswith("map.")
        for k in a)


@pytest.mark.slow  # spawns two workers that import torch (seconds idle, minutes on a loaded machine)
def test_pool_evaluator_matches_in_process(tmp_path):
    prep = prepare_experiment(SPEC, out=tmp_path)
    space = prep.genome_space()

    def evaluator():
        return build_evaluator(prep.spec.to_dict(), space, prep.template, CachedEstimator(FakeAccuracy()), prep.workload)

    cands = space.decode(space.random(7, np.random.default_rng(0)))
    ref = evaluator().evaluate(cands)
    pooled = PoolEvaluator(evaluator(), workers=2)
    try:
        got = pooled.evaluate(cands)
        assert pooled.energy_source.startswith("built-in")  # attributes of the wrapped evaluator
    finally:
        pooled.close()
    assert len(got) == 7 and all(_same(a, b) for a, b in zip(ref, got, strict=True))
