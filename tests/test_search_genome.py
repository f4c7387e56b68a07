"""Genome encoding, the vectorized problem and the algorithms (fake evaluator)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_fakes import FakeEvaluator, fake_space

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.search.algorithms import ALGORITHM_NAMES, make_algorithm
from jaqmoo.search.genome import GenomeSpace, HardwareGene
from jaqmoo.search.problem import (
    PENALTY,
    Constraints,
    JointProblem,
    constraint_matrix,
    objective_matrix,
)
from jaqmoo.search.runner import run_search
from jaqmoo.search.store import ResultsStore


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_decode_encode_roundtrip(data):
    space = fake_space(n_layers=data.draw(st.integers(2, 7)), outer=data.draw(st.booleans()))
    x = np.array([data.draw(st.integers(0, int(u))) for u in space.upper_bounds])
    cand = space.decode_one(x)
    assert cand.policy.weight_bits[0] == 8 and cand.policy.act_bits[0] == 8  # fixed layer
    assert set(cand.policy.weight_bits[1:]) <= set(space.weight_choices)
    assert cand.hardware["glb"] == 64 and cand.hardware["pe"] in (2, 4, 8, 16)
    back = space.encode(cand.policy, cand.hardware, cand.mapping_genes)
    assert np.array_equal(back, x)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 20, allow_nan=False), min_size=11, max_size=11))
def test_clip_always_gives_valid_genes(values):
    space = fake_space(n_layers=5)  # 4 free layers * 2 + 1 hw gene = 9 ... plus nothing
    x = np.array(values[: space.n_var])
    g = space.clip(x)[0]
    assert np.all(g >= 0) and np.all(g <= space.upper_bounds)


def test_layout_and_seeds():
    space = fake_space(n_layers=4, outer=True)
    assert space.n_var == 2 * 3 + 4 + 1
    assert space.gene_names()[:2] == ["w.layer1", "a.layer1"] and space.gene_names()[-1] == "hw.pe"
    seeds = space.uniform_seeds([8, 4])
    c8, c4 = space.decode(seeds)
    assert c8.policy.weight_bits == (8, 8, 8, 8) and c4.policy.act_bits == (8, 4, 4, 4)
    assert c8.hardware["pe"] == 8  # the template default
    assert HardwareGene("x", (2, 4, 16), 5).default_index == 1  # nearest choice when default is not one
    with pytest.raises(JaqmooError, match="allowed values"):
        space.encode(QuantPolicy.uniform(space.layer_names, 7))
    with pytest.raises(JaqmooError, match="genes"):
        space.clip(np.zeros((1, 3)))


def test_problem_objectives_and_constraints():
    recs = [
        {"feasible": True, "accuracy": 0.9, "energy_pj": 10.0, "memory_bits": 5.0, "area_mm2": 1.0},
        {"feasible": False, "accuracy": 0.95, "energy_pj": float("nan"), "memory_bits": 4.0, "area_mm2": 1.0},
        {"feasible": True, "accuracy": 0.5, "energy_pj": 2.0, "memory_bits": 1.0, "area_mm2": 3.0},
    ]
    F = objective_matrix(recs, ["accuracy", "energy"])
    assert F[0].tolist() == pytest.approx([0.1, 10.0]) and np.all(F[1] == PENALTY)
    G = constraint_matrix(recs, Constraints(min_accuracy=0.8, max_area_mm2=2.0))
    assert (G[0] <= 0).all() and G[1, 0] > 0 and G[2, 1] > 0 and G[2, 2] > 0


def test_problem_is_vectorized_and_batched(tmp_path):
    space = fake_space()
    ev = FakeEvaluator()
    store = ResultsStore(tmp_path)
    store.create()
    problem = JointProblem(space, ev, ["accuracy", "energy"], Constraints(), store, batch_size=4)
    X = space.random(10, np.random.default_rng(0))
    out = problem.evaluate(X, return_as_dictionary=True, generation=1)
    assert out["F"].shape == (10, 2) and out["G"].shape == (10, 1)
    assert ev.calls == 3  # batches of 4, 4, 2
    assert [r["idx"] for r in store.read_records()] == list(range(10))


@pytest.mark.parametrize("name", ALGORITHM_NAMES)
def test_every_algorithm_runs_and_keeps_seeds(name, tmp_path):
    space = fake_space()
    store = ResultsStore(tmp_path)
    store.create()
    problem = JointProblem(space, FakeEvaluator(), ["accuracy", "energy", "memory"], Constraints(), store)
    seeds = space.uniform_seeds([8, 6, 4])
    algo = make_algorithm(name, 12, 3, seeds)
    out = run_search(problem, algo, store, generations=3, seed=0, progress=False)
    first = [r for r in store.read_records() if r["gen"] == 1]
    assert [r["genes"] for r in first[:3]] == seeds.tolist()
    assert len(out.history) == 3 and out.history[-1]["hypervolume"] > 0


def test_same_seed_same_result_other_seed_differs(tmp_path):
    def run(seed, sub):
        store = ResultsStore(tmp_path / sub)
        store.create()
        problem = JointProblem(fake_space(), FakeEvaluator(), ["accuracy", "energy"], Constraints(), store)
        run_search(problem, make_algorithm("nsga2", 10, 2), store, 3, seed, progress=False)
        return [r["genes"] for r in store.read_records()]

    first = run(5, "a")
    assert first == run(5, "b")
    assert first != run(6, "c")


def test_unknown_algorithm_and_empty_space():
    with pytest.raises(JaqmooError, match="nsga2"):
        make_algorithm("nsga4", 10, 2)
    space = GenomeSpace(("l0",), (8,), (8,), fixed_layers={0: (8, 8)})
    with pytest.raises(JaqmooError, match="no genes"):
        JointProblem(space, FakeEvaluator(), ["accuracy", "energy"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=20), st.integers(0, 25))
def test_outer_mapping_repair_picks_nearest_feasible(feasible, gene):
    from jaqmoo.search.mapping_genes import repair_index

    mask = np.array(feasible)
    j = repair_index(mask, gene)
    if not mask.any():
        assert j is None
        return
    assert mask[j]
    assert all(abs(j - gene) <= abs(k - gene) for k in np.flatnonzero(mask))
    if gene < len(mask) and mask[gene]:
        assert j == gene


def test_spread_first_population_spans_precision_levels_and_keeps_other_genes_uniform():
    from jaqmoo.search.algorithms import SeededIntegerSampling

    space = GenomeSpace(tuple(f"l{i}" for i in range(40)), (2, 3, 4, 5, 6, 7, 8), (2, 3, 4, 5, 6, 7, 8),
                        hardware_genes=(HardwareGene("pe_x", (4, 8, 12, 16), 8),))
    problem = JointProblem(space, FakeEvaluator(), ["accuracy", "energy"], Constraints())
    rng = np.random.default_rng(0)
    mask = space.level_genes
    assert mask.sum() == space.n_bit_genes == 80 and not mask[-1]
    spread = SeededIntegerSampling(None, mask)._do(problem, 400, random_state=rng)
    plain = SeededIntegerSampling(None)._do(problem, 400, random_state=np.random.default_rng(0))
    assert spread.min() >= 0 and (spread <= space.upper_bounds).all()
    # each genome's mean bit index: spread covers near-2-bit to near-8-bit policies, plain clusters at the middle
    spread_means, plain_means = spread[:, mask].mean(1), plain[:, mask].mean(1)
    assert spread_means.min() < 1.0 and spread_means.max() > 5.0
    assert plain_means.min() > 2.0 and plain_means.max() < 4.0
    # genes still vary within a genome, and the hardware gene takes every choice
    assert np.median(spread[:, mask].std(1)) > 0.5
    assert set(spread[:, -1]) == {0, 1, 2, 3}
