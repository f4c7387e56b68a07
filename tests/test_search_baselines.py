"""The seed papers' searchers (uniform, random, haq, bits-nsga2): their own mechanics, and that
they run in the harness (same store, resume, run folder) with a fake evaluator or the real
cost model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_fakes import FakeEvaluator, fake_space

from jaqmoo.errors import JaqmooError
from jaqmoo.report import load_run
from jaqmoo.search.baselines import searcher_space
from jaqmoo.search.baselines.bits_nsga2 import (
    LayerCrossover,
    LayerMutation,
    make_bits_nsga2,
    uniform_bits,
)
from jaqmoo.search.baselines.ddpg import DDPGAgent, DDPGConfig
from jaqmoo.search.baselines.haq import (
    STATE_FIELDS,
    action_to_index,
    action_wall,
    normalized_states,
    raw_states,
    split_budget,
)
from jaqmoo.search.problem import Constraints
from jaqmoo.search.session import SearchSettings, search_in_directory
from jaqmoo.search.store import ResultsStore
from jaqmoo.workload import Layer, Workload

OBJ = ("accuracy", "energy", "memory")


def _workload(n: int = 5) -> Workload:
    """Layers named like :func:`fake_space`'s: conv, depthwise, pointwise, strided conv, linear."""
    kinds = [
        dict(kind="conv", K=8, C=1, P=14, Q=14, R=3, S=3),
        dict(kind="depthwise", G=8, K=1, C=1, P=7, Q=7, R=3, S=3, stride_h=2, stride_w=2),
        dict(kind="conv", K=16, C=8, P=7, Q=7),
        dict(kind="conv", K=32, C=16, P=4, Q=4, R=3, S=3, stride_h=2, stride_w=2),
        dict(kind="linear", K=10, C=32),
    ]
    return Workload("fake", tuple(Layer(f"layer{i}", **kinds[i % len(kinds)]) for i in range(n)))


class ResourceEvaluator(FakeEvaluator):
    """The fake evaluator with the fake layers (HAQ needs the shapes) and a cost probe."""

    workload = _workload()

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__(fail_after)
        self.probes = 0

    def cost_value(self, cand, key):
        self.probes += 1
        w = np.asarray(cand.policy.weight_bits, float)
        a = np.asarray(cand.policy.act_bits, float)
        return float(np.sum(w * a * (1 + np.arange(len(w))))) * (1 + 4.0 / cand.hardware.get("pe", 8)) \
            if key == "energy_pj" else float(np.sum(w * 100) + np.max(a) * 50)


def _settings(algorithm: str, **kw) -> SearchSettings:
    base = dict(objectives=OBJ, constraints=Constraints(min_accuracy=0.5), algorithm=algorithm, population=10,
                generations=4, seed=1, batch_size=3)
    return SearchSettings(**{**base, **kw})


def _run(path, algorithm, evaluator=None, resume=False, **kw):
    evaluator = evaluator or ResourceEvaluator()
    return search_in_directory(path, algorithm, fake_space(), evaluator, _settings(algorithm, **kw), resume=resume,
                               progress=False)


# ----------------------------------------------------------------------------- uniform


def test_uniform_evaluates_every_uniform_policy_with_fixed_layers_kept(tmp_path):
    _run(tmp_path, "uniform")
    run = load_run(tmp_path)
    space = fake_space()
    ev = run.evaluations
    assert len(ev) == len(space.weight_choices) * len(space.act_choices)
    free = [space.layer_names[i] for i in space.free_layers]
    pairs = {(int(r[f"w.{free[0]}"]), int(r[f"a.{free[0]}"])) for _, r in ev.iterrows()}
    assert pairs == {(w, a) for w in space.weight_choices for a in space.act_choices}
    for _, r in ev.iterrows():
        assert len({int(r[f"w.{n}"]) for n in free}) == 1 and len({int(r[f"a.{n}"]) for n in free}) == 1
        assert (r["w.layer0"], r["a.layer0"]) == (8, 8)  # the fixed first layer
    base = run.baselines
    assert sorted(base["baseline"]) == sorted(f"uniform {b}-bit" for b in (4, 6, 8))
    for _, b in base.iterrows():
        bits = int(b["baseline"].split()[1].split("-")[0])
        assert b[f"w.{free[0]}"] == bits == b[f"a.{free[0]}"]
    assert len(run.history) == 2 and run.history["evaluations"].iloc[-1] == len(ev) == 18  # 10 per generation


# ----------------------------------------------------------------------------- random


@pytest.mark.parametrize("population,generations", [(10, 4), (7, 3), (3, 2)])
def test_random_spends_exactly_the_budget(tmp_path, population, generations):
    ev = ResourceEvaluator()
    out = _run(tmp_path, "random", ev, population=population, generations=generations)
    records = ResultsStore(tmp_path).read_records()
    budget = population * generations
    assert len(records) == ev.evaluated == out.n_evaluations == budget
    assert [(r["gen"], r["idx"]) for r in records] == [(n // population + 1, n % population) for n in range(budget)]
    X = np.array([r["genes"] for r in records])
    space = fake_space()
    assert (X >= 0).all() and (X <= space.upper_bounds).all()
    seeds = space.uniform_seeds((8, 6, 4))[:budget]
    assert np.array_equal(X[: len(seeds)], seeds)
    assert len(np.unique(X[:, -1])) > 1  # the hardware gene is searched too
    assert len(load_run(tmp_path).history) == generations


def test_random_kill_and_resume_equals_uninterrupted(tmp_path):
    ref = tmp_path / "ref"
    _run(ref, "random")
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", "random", ResourceEvaluator(fail_after=23))
    stored = len(ResultsStore(tmp_path / "b").read_records())
    assert stored == 23  # batches of 3 within generations of 10: 3+3+3+1, 3+3+3+1, 3 flushed
    again = ResourceEvaluator()
    _run(tmp_path / "b", "random", again, resume=True)
    assert ResultsStore(tmp_path / "b").read_records() == ResultsStore(ref).read_records()
    assert again.evaluated == 40 - stored  # nothing stored is evaluated again


def test_resume_with_another_seed_is_refused(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "random", ResourceEvaluator(fail_after=23))
    with pytest.raises(JaqmooError, match="settings.seed"):
        _run(tmp_path, "random", resume=True, seed=2)


def test_a_replay_that_asks_for_other_individuals_is_refused(tmp_path):
    from jaqmoo.search.baselines.driver import EvaluationDriver
    from jaqmoo.search.problem import JointProblem

    _run(tmp_path, "random")
    space = fake_space()
    store = ResultsStore(tmp_path)
    problem = JointProblem(space, ResourceEvaluator(), OBJ, Constraints(min_accuracy=0.5), store, 3)
    driver = EvaluationDriver(problem, store, 10, 40, resume=True, progress=False)
    stored = np.array([r["genes"] for r in store.read_records()[:10]])
    driver.evaluate(stored)  # the same individuals: reused, nothing evaluated or stored twice
    assert problem.n_reused == 10 and problem.n_evaluated == 0
    with pytest.raises(JaqmooError, match="another individual"):
        driver.evaluate(np.zeros((1, space.n_var), dtype=int))  # stored: a uniform seed
    assert len(store.read_records()) == 40


# ----------------------------------------------------------------------------- haq: state


def test_haq_state_matches_the_layer():
    wl = _workload()
    space = fake_space()
    raw = raw_states(wl, space)
    assert raw.shape == (2 * len(space.free_layers), len(STATE_FIELDS) - 1)
    for j, i in enumerate(space.free_layers):
        L = wl.layers[i]
        for step, is_weight in ((2 * j, 1.0), (2 * j + 1, 0.0)):
            row = dict(zip(STATE_FIELDS, raw[step], strict=False))
            assert row["layer"] == i and row["is_weight"] == is_weight
            assert row["depthwise"] == float(L.kind == "depthwise")
            assert row["c_in"] == L.G * L.C and row["c_out"] == L.G * L.K
            assert row["stride"] == L.stride_h and row["kernel"] == L.R
            assert row["params"] == L.weight_count and row["feature_map"] == L.input_h * L.input_w
    # the depthwise layer: 8 in, 8 out channels, 72 weights, 15x15 input
    dw = dict(zip(STATE_FIELDS, raw[0], strict=False))  # layer1 is the first searched layer
    assert (dw["depthwise"], dw["c_in"], dw["c_out"], dw["params"], dw["feature_map"]) == (1.0, 8, 8, 72, 225)
    norm = normalized_states(raw)
    assert norm.min() >= 0 and norm.max() <= 1
    assert np.allclose(norm[:, 0], (raw[:, 0] - 1) / 3)  # layer index, min-max over layers 1..4


def test_haq_state_rejects_another_network():
    with pytest.raises(JaqmooError, match="do not match"):
        raw_states(_workload(4), fake_space())


@given(st.floats(0, 1), st.integers(1, 9))
def test_action_maps_to_a_valid_index_monotonically(a, n):
    i = action_to_index(a, n)
    assert 0 <= i < n
    assert action_to_index(min(a + 0.2, 1.0), n) >= i


# ----------------------------------------------------------------------------- haq: action wall


def _additive_resource(weights):
    def f(x):
        return float(np.sum(weights * (x[0::2] + 1) * (x[1::2] + 1)))
    return f


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_action_wall_always_ends_within_budget(data):
    n = data.draw(st.integers(1, 12))
    uw = data.draw(st.integers(1, 6))
    ua = data.draw(st.integers(1, 6))
    x = np.array([data.draw(st.integers(0, u)) for _ in range(n) for u in (uw, ua)])
    weights = np.array(data.draw(st.lists(st.floats(0.1, 10), min_size=n, max_size=n)))
    f = _additive_resource(weights)
    lowest = f(np.zeros_like(x))
    budget = data.draw(st.floats(lowest, max(f(x), lowest) * 1.5))
    out, value, queries = action_wall(x, n, f, budget)
    assert value == f(out) <= budget
    assert (out <= x).all() and (out >= 0).all()  # bits are only lowered
    if f(x) <= budget:
        assert np.array_equal(out, x) and queries == 1


def test_action_wall_refuses_an_unreachable_budget():
    f = _additive_resource(np.ones(3))
    with pytest.raises(JaqmooError, match="above the budget"):
        action_wall(np.array([2, 2, 2, 2, 2, 2]), 3, f, 2.9)


def test_action_wall_lowers_from_the_last_layer():
    f = _additive_resource(np.ones(3))  # (w+1)(a+1) per layer
    out, value, _ = action_wall(np.array([2, 2, 2, 2, 2, 2]), 3, f, 23.0)  # 27 -> lower the last layer once
    assert out.tolist() == [2, 2, 2, 2, 1, 1] and value == 22.0


# ----------------------------------------------------------------------------- haq: agent and search


def test_ddpg_explores_in_range_with_decaying_noise_and_updates_its_networks():
    agent = DDPGAgent(4, seed=0, config=DDPGConfig(batch_size=8))
    s = np.full(4, 0.5, np.float32)
    acts = [agent.act(s, ep, warmup=2) for ep in range(30)]
    assert all(0.0 <= a <= 1.0 for a in acts)
    assert agent.delta(2, 2) == 0.5 and agent.delta(12, 2) == pytest.approx(0.5 * 0.99 ** 10)
    before = [p.detach().clone() for p in agent.actor.parameters()]
    target_before = [p.detach().clone() for p in agent.actor_target.parameters()]
    for k in range(20):
        agent.observe(s, k / 20, k / 20, s, True)
    agent.update()
    assert agent.updates == 1 and agent.moving_average is not None
    assert any(not np.allclose(a, b.detach()) for a, b in zip(before, agent.actor.parameters(), strict=True))
    moved = [(b - t).abs().max().item() for b, t in zip(target_before, agent.actor_target.parameters(), strict=True)]
    assert max(moved) > 0  # soft update of the target network


def _toy_episodes(learn: bool, episodes: int = 60, warmup: int = 5, seed: int = 0) -> np.ndarray:
    """Rewards of ``episodes`` HAQ-style episodes (one action per step, the episode's one reward
    given to every step, discount 1) on a toy task whose best action differs per step: the DDPG
    agent (``learn``) or a uniformly random policy, same seed."""
    target = np.array([0.2, 0.8, 0.3, 0.7])
    n = len(target)
    states = np.eye(n, dtype=np.float32)
    rng = np.random.default_rng(seed)
    agent = DDPGAgent(n + 1, seed=seed, config=DDPGConfig(hidden=(32, 32), lr_actor=1e-3, batch_size=16,
                                                           replay_size=2000))
    rewards = []
    for ep in range(episodes):
        s, actions, traj = np.append(states[0], 0.0).astype(np.float32), [], []
        for t in range(n):
            a = agent.act(s, ep, warmup) if learn else float(rng.uniform())
            s1 = np.append(states[t + 1] if t < n - 1 else np.zeros(n), a).astype(np.float32)
            traj.append((s, a, s1, t == n - 1))
            actions.append(a)
            s = s1
        reward = -float(np.mean(np.abs(np.array(actions) - target)))
        rewards.append(reward)
        for step in traj:
            agent.observe(step[0], step[1], reward, step[2], step[3])
            if learn and ep >= warmup:
                agent.update()
    return np.array(rewards)


def test_ddpg_learns_its_reward_improves_over_a_random_policy():
    agent, random_policy = _toy_episodes(learn=True), _toy_episodes(learn=False)
    # measured with seed 0: the agent's last 15 episodes average -0.22, the random policy's -0.33,
    # the agent's warm-up (uniform random actions) -0.34
    assert agent[-15:].mean() > random_policy[-15:].mean() + 0.05
    assert agent[-15:].mean() > agent[:5].mean() + 0.05


def test_haq_episodes_stay_within_their_budgets(tmp_path):
    ev = ResourceEvaluator()
    out = _run(tmp_path, "haq", ev, population=10, generations=4, haq_budgets=(0.5, 0.8))
    run = load_run(tmp_path)
    info = run.meta["search_info"]
    assert out.n_evaluations == 40 == len(run.evaluations)
    assert run.meta["gene_names"] == [g for g in fake_space().gene_names() if not g.startswith("hw.")]
    assert sum(info["episodes"]) == 39 and info["cost_queries"] >= 39
    ref = run.evaluations.iloc[0]
    assert run.baselines["baseline"].tolist() == ["uniform 8-bit"]
    energies = run.evaluations["energy_pj"].to_numpy()[1:]
    first = info["episodes"][0]
    assert (energies[:first] <= info["budgets"][0] + 1e-9).all()
    assert (energies[first:] <= info["budgets"][1] + 1e-9).all()
    assert info["budgets"][0] == pytest.approx(0.5 * ref["energy_pj"])
    assert info["agent_updates"] > 0


def test_haq_kill_and_resume_replays_to_the_same_records(tmp_path):
    _run(tmp_path / "ref", "haq", population=6, generations=3, haq_budgets=(0.6,))
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", "haq", ResourceEvaluator(fail_after=8), population=6, generations=3, haq_budgets=(0.6,))
    _run(tmp_path / "b", "haq", resume=True, population=6, generations=3, haq_budgets=(0.6,))
    assert ResultsStore(tmp_path / "b").read_records() == ResultsStore(tmp_path / "ref").read_records()


# ----------------------------------------------------------------------------- bits-nsga2


def _parents(n_matings: int, n_layers: int, value: int) -> np.ndarray:
    return np.full((2, n_matings, 2 * n_layers), value, dtype=int)


def test_bits_nsga2_crossover_takes_each_layer_from_a_parent_and_resets_5_percent():
    rng = np.random.default_rng(0)
    n_m, n_l = 400, 50
    X = rng.integers(0, 3, size=(2, n_m, 2 * n_l))  # indices 0..2; upper (reset) is (5, 4)
    out = LayerCrossover(n_l, (5, 4))._do(None, X, random_state=rng)
    assert out.shape == (1, n_m, 2 * n_l)  # one child per mating, as Klhufek et al.'s crossover
    child = out[0].reshape(n_m, n_l, 2)
    pairs_in = X.reshape(2, n_m, n_l, 2)
    reset = np.all(child == (5, 4), axis=-1)
    sigma = np.sqrt(0.05 * 0.95 / reset.size)
    assert abs(reset.mean() - 0.05) < 4 * sigma  # 5 % of the layers are reset to 8 bits
    from_a = np.all(child == pairs_in[0], axis=-1)
    from_b = np.all(child == pairs_in[1], axis=-1)
    assert np.all(from_a | from_b | reset)  # every other layer is a parent's (w, a) pair, unsplit
    differ = ~reset & ~np.all(pairs_in[0] == pairs_in[1], -1)
    assert 0.45 < from_a[differ].mean() < 0.55  # each parent equally likely


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 6), st.integers(1, 20))
def test_bits_nsga2_operators_keep_bits_in_range(seed, uw, ua, n_l):
    rng = np.random.default_rng(seed)
    X = np.stack([rng.integers(0, uw + 1, size=(30, n_l)), rng.integers(0, ua + 1, size=(30, n_l))], -1)
    X = X.reshape(30, 2 * n_l)
    parents = np.stack([X[:15], X[15:]])
    kids = LayerCrossover(n_l, (uw, ua))._do(None, parents, random_state=rng).reshape(15, 2 * n_l)
    mutated = LayerMutation(n_l, (uw, ua), prob=0.5)._do(None, kids, random_state=rng)
    for M in (kids, mutated):
        assert (M >= 0).all() and (M[:, 0::2] <= uw).all() and (M[:, 1::2] <= ua).all()


def test_bits_nsga2_mutation_redraws_the_weight_or_the_activation_bits_of_one_layer_of_10_percent():
    rng = np.random.default_rng(1)
    n, n_l = 20000, 20
    X = rng.integers(0, 4, size=(n, 2 * n_l))
    M = LayerMutation(n_l, (6, 6))._do(None, X, random_state=rng)
    changed_genes = (M != X).sum(axis=1)
    assert set(np.unique(changed_genes)) <= {0, 1}  # one of W / A, never both
    w_changed = (M != X)[:, 0::2].any(axis=1).mean()
    a_changed = (M != X)[:, 1::2].any(axis=1).mean()
    # a redraw is uniform over the 7 choices, so 6/7 of the mutated individuals change
    expected = 0.10 * 6 / 7 / 2
    for share in (w_changed, a_changed):
        assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


def test_bits_nsga2_run_is_seeded_with_uniform_policies_and_fixes_the_hardware(tmp_path):
    _run(tmp_path, "bits-nsga2", population=12, generations=3)
    run = load_run(tmp_path)
    space = searcher_space("bits-nsga2", fake_space())
    assert not space.hardware_genes and space.hardware_fixed == {"glb": 64, "pe": 8}
    assert run.meta["gene_names"] == space.gene_names()
    assert (run.evaluations["hw.pe"] == 8).all()
    bits = uniform_bits(space)
    assert bits == [4, 6, 8]
    gen1 = run.evaluations[run.evaluations["gen"] == 1]
    seeds = space.uniform_seeds(bits)
    # Klhufek et al.'s first population is the uniform ladder alone; offspring follow
    assert [list(map(int, g.split())) for g in gen1["genes"][: len(bits)]] == seeds.tolist()
    assert len(run.evaluations) == len(bits) + 12 * 2
    assert sorted(run.baselines["baseline"]) == sorted(f"uniform {b}-bit" for b in bits)
    assert len(run.history) == 3
    alg = make_bits_nsga2(space, 12)
    assert isinstance(alg.mating.crossover, LayerCrossover) and isinstance(alg.mating.mutation, LayerMutation)
    assert type(alg.mating.selection).__name__ == "RandomSelection"  # parents drawn at random


def test_bits_nsga2_kill_and_resume_equals_uninterrupted(tmp_path):
    _run(tmp_path / "ref", "bits-nsga2", population=12, generations=3)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", "bits-nsga2", ResourceEvaluator(fail_after=20), population=12, generations=3)
    _run(tmp_path / "b", "bits-nsga2", resume=True, population=12, generations=3)
    assert ResultsStore(tmp_path / "b").read_records() == ResultsStore(tmp_path / "ref").read_records()


@pytest.mark.parametrize("init", ["spread", "random"])
def test_first_population_is_the_same_bit_policies_for_the_joint_and_the_bits_only_space(init):
    from jaqmoo.search.algorithms import first_population

    joint = fake_space()
    bits = searcher_space("bits-nsga2", joint)
    A = first_population(joint, 20, seed=3, init=init, seed_bits=(8, 6, 4))
    B = first_population(bits, 20, seed=3, init=init, seed_bits=(8, 6, 4))
    nb = joint.n_bit_genes
    assert A.shape == (20, joint.n_var) and B.shape == (20, bits.n_var)
    assert np.array_equal(A[:, :nb], B[:, :nb])
    assert np.array_equal(A[:3], joint.uniform_seeds((8, 6, 4)))  # the seeds first
    assert (A >= 0).all() and (A <= joint.upper_bounds).all()
    assert not np.array_equal(A, first_population(joint, 20, seed=4, init=init, seed_bits=(8, 6, 4)))
    with pytest.raises(JaqmooError, match="own"):
        first_population(joint, 20, seed=3, init="own")


def test_spread_first_population_spans_the_precision_levels_and_random_clusters_in_the_middle():
    from jaqmoo.search.algorithms import first_population

    space = fake_space()
    nb = space.n_bit_genes
    means = {init: (first_population(space, 400, 0, init)[:, :nb] / space.upper_bounds[:nb]).mean(axis=1)
             for init in ("spread", "random")}
    assert means["spread"].std() > 2 * means["random"].std()


def test_split_budget():
    assert split_budget(10, 3) == [4, 3, 3] and sum(split_budget(3199, 6)) == 3199


def test_meta_records_search_info_for_driven_searchers(tmp_path):
    _run(tmp_path, "random")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["search_info"]["evaluations"] == 40 and meta["settings"]["algorithm"] == "random"


# ----------------------------------------------------------------------------- comparison benchmark


def test_compare_searchers_smoke(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    import pandas as pd

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_searchers.py"
    spec = importlib.util.spec_from_file_location("compare_searchers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--out", str(tmp_path), "--jobs", "1", "--searchers", "uniform", "random", "haq",
                        "bits-nsga2", "jaqmoo"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("RESULT init=spread best_baseline=")
    result = dict(kv.split("=") for kv in lines[-1].split()[1:])
    table = pd.read_csv(tmp_path / "spread" / "compare_searchers.csv")
    assert set(table["searcher"]) == {"uniform", "random", "haq", "bits-nsga2", "jaqmoo"}
    assert set(table["seed"]) == {0, 1}
    for name, rows in table.groupby("searcher"):
        key = name.replace("-", "_")
        for col, prefix in (("hv", "hv"), ("hv_heldout", "hv_heldout")):  # RESULT = the table's mean and std
            assert float(result[f"{prefix}_{key}_mean"]) == pytest.approx(rows[col].mean(), abs=1e-4)
            assert float(result[f"{prefix}_{key}_std"]) == pytest.approx(rows[col].std(ddof=1), abs=1e-4, nan_ok=True)
    assert result["best_baseline"] in module.BASELINES
    p = float(result["p_jaqmoo_vs_best_baseline"])
    assert np.isnan(p) or 0.25 <= p <= 1.0  # two seeds: p is 1/4, 3/4 or 1
    budgeted = table[table["searcher"] != "uniform"]
    assert budgeted["evaluations"].between(15, 16).all()  # the same budget (NSGA-II may drop a duplicate)
    # every searcher's first generation is the same population (bits; seeds paired)
    first = {}
    for name in ("random", "haq", "bits-nsga2", "jaqmoo"):
        run = load_run(tmp_path / "spread" / f"{name}-s1")
        gen1 = run.evaluations[run.evaluations["gen"] == 1]
        first[name] = sorted(" ".join(str(int(r[c])) for c in gen1.columns if c[:2] in ("w.", "a."))
                             for _, r in gen1.iterrows())
    assert first["random"] == first["haq"] == first["bits-nsga2"] == first["jaqmoo"]
    assert load_run(tmp_path / "spread" / "haq-s1").meta["settings"]["init"] == "spread"


def test_floored_hypervolume_against_a_hand_computed_value():
    import sys
    from pathlib import Path

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from searcher_truth import floored_hv

    points = pd.DataFrame({"acc": [0.9, 0.7], "energy_pj": [20.0, 10.0]})
    # minimised (0.1, 20) and (0.3, 10) over scale (0.5, 40): (0.2, 0.5), (0.6, 0.25) -> 0.54 + 0.425 - 0.3
    assert floored_hv(points, ["accuracy", "energy"], [0.5, 40.0], "acc") == pytest.approx(0.665)
    # the floor drops the 70 % point: only the first box is left
    assert floored_hv(points, ["accuracy", "energy"], [0.5, 40.0], "acc", floor=0.8) == pytest.approx(0.54)
    assert floored_hv(points, ["accuracy", "energy"], [0.5, 40.0], "acc", floor=0.95) == 0.0


# ----------------------------------------------------------------------------- spec and CLI


@pytest.mark.parametrize("algorithm", ["uniform", "random", "haq", "bits-nsga2"])
def test_each_searcher_runs_from_a_spec_and_its_folder_exports_and_plots(fake_accuracy, tmp_path, monkeypatch, algorithm):
    import yaml
    from test_experiment import TINY

    from jaqmoo.cli import main

    data = yaml.safe_load(yaml.safe_dump(TINY))
    data["search"].update({"algorithm": algorithm, "population": 6, "generations": 2, "haq_budgets": [0.6]})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    assert main(["run", str(spec), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    run = load_run(tmp_path / "r")
    assert run.meta["settings"]["algorithm"] == algorithm
    n = len(run.evaluations)
    if algorithm == "bits-nsga2":  # Klhufek et al.'s first population: the uniform ladder alone, then 6 offspring
        assert n == len(run.baselines) + 6
    else:
        assert n == (4 * 3 if algorithm == "uniform" else 12)
    assert "uniform 8-bit" in set(run.baselines["baseline"])
    if algorithm in ("haq", "bits-nsga2"):  # bits only: the hardware stays at the template's defaults
        assert (run.evaluations["hw.pe_x"] == 14).all() and (run.evaluations["hw.glb_depth"] == 16384).all()
        assert not any(g.startswith("hw.") for g in run.meta["gene_names"])
    else:
        assert any(g.startswith("hw.") for g in run.meta["gene_names"])
    assert main(["export", str(tmp_path / "r"), "--csv", str(tmp_path / "f.csv"), "--all"]) == 0
    assert len((tmp_path / "f.csv").read_text().splitlines()) == n + 1
    assert main(["plot", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "front.png").exists()


@pytest.mark.parametrize("change,message", [
    ({"algorithm": "hak"}, "did you mean 'haq'"),
    ({"haq_resource": "power"}, "search.haq_resource"),
    ({"haq_budgets": [0.5, 1.5]}, "haq_budgets\\[1\\]"),
    ({"haq_budgets": []}, "haq_budgets"),
    ({"haq_budgets": [0.5, 0.5]}, "twice"),
])
def test_searcher_options_are_validated(change, message):
    from jaqmoo.experiment.spec import parse_spec

    data = {"model": {"name": "simple_cnn"}, "dataset": {"name": "digits"}, "accelerator": {"template": "eyeriss"},
            "search": change}
    with pytest.raises(JaqmooError, match=message):
        parse_spec(data)
