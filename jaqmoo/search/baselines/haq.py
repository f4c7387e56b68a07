"""``haq``: HAQ's reinforcement-learning search (Wang et al., CVPR 2019) in jaqmoo's harness.

One episode quantizes the network layer by layer: for every searched layer the DDPG agent
(:mod:`~jaqmoo.search.baselines.ddpg`) first picks the weight bits, then the activation
bits. Its state at each step is HAQ's

    (layer index k, depthwise flag, in channels, out channels, stride, kernel size,
     parameter count, input feature-map size, weight/activation flag, previous action)

with every column but the last min-max normalised over the network's steps. The continuous
action ``a`` in [0, 1] becomes the bit-width choice ``floor(a * n_choices)`` (HAQ's
``round(b_min - 0.5 + a (b_max - b_min + 1))`` for a contiguous range). At the end of the
episode the **action wall** enforces the resource budget: while the policy's latency /
energy / size (from jaqmoo's cost model and mapper on the fixed hardware) exceeds the
budget, the bits are lowered one step at a time, activation then weight, layer by layer from
the last layer back, re-checking after each layer. The walled policy is evaluated once
(accuracy from the same supernet / predictor as every other searcher, plus its full cost)
and stored; its reward ``0.1 * (accuracy - accuracy of the max-bit policy)`` goes to every
step of the episode (discount 1). After the warm-up episodes (uniform random actions) the
agent updates once per stored transition, as HAQ does.

HAQ optimises one budget at a time; to trace a front, the search budget is split evenly
over several budgets (``search.haq_budgets``: fractions of the max-bit policy's cost, by
default 0.4 .. 0.9), each with a freshly initialised agent. A budget below the cheapest
policy the bit choices allow is raised to that policy's cost (recorded in ``meta.json``).
The hardware is fixed (the template's defaults or ``accelerator.fixed``) and the mapper
picks every layer's mapping, as in HAQ's hardware-in-the-loop setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.objectives import METRIC_OF
from jaqmoo.search.baselines.ddpg import DDPGAgent, DDPGConfig
from jaqmoo.search.baselines.driver import EvaluationDriver
from jaqmoo.search.baselines.searcher import SEARCHERS, Searcher, common_first_population
from jaqmoo.search.genome import GenomeSpace
from jaqmoo.workload import Workload

STATE_FIELDS = ("layer", "depthwise", "c_in", "c_out", "stride", "kernel", "params", "feature_map", "is_weight",
                "prev_action")
REWARD_SCALE = 0.1  # HAQ: R = 0.1 * (acc_quant - acc_origin)
INFEASIBLE_REWARD = -REWARD_SCALE  # a policy no mapping fits: as bad as losing all accuracy
WARMUP = 20  # HAQ's warm-up episodes (fewer when a budget gets fewer than 100 episodes)


@dataclass(frozen=True)
class HaqSettings:
    """What the HAQ searcher needs besides the driver and the genome space."""

    resource: str = "energy"  # energy | latency | memory
    budgets: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    agent: DDPGConfig = DDPGConfig()


def raw_states(workload: Workload, space: GenomeSpace) -> np.ndarray:
    """HAQ's state rows (without the previous action), two per searched layer: weights, then activations."""
    names = tuple(layer.name for layer in workload.layers)
    if names != tuple(space.layer_names):
        raise JaqmooError("haq: the workload's layers do not match the search space's layers")
    rows = []
    for i in space.free_layers:
        L = workload.layers[i]
        base = [i, float(L.kind == "depthwise"), L.G * L.C, L.G * L.K, L.stride_h, L.R, L.weight_count,
                L.input_h * L.input_w]
        rows.append(base + [1.0])
        rows.append(base + [0.0])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(STATE_FIELDS) - 1)


def normalized_states(raw: np.ndarray) -> np.ndarray:
    """Min-max normalise every column to [0, 1] (a constant column becomes 0)."""
    lo, hi = raw.min(axis=0), raw.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return ((raw - lo) / span).astype(np.float32)


def action_to_index(action: float, n_choices: int) -> int:
    """Continuous action in [0, 1] -> index into ``n_choices`` bit-widths (HAQ's linear mapping)."""
    return int(min(max(int(np.floor(float(action) * n_choices)), 0), n_choices - 1))


def action_wall(x: np.ndarray, n_free: int, resource: Callable[[np.ndarray], float],
                budget: float) -> tuple[np.ndarray, float, int]:
    """Lower bits until ``resource(x) <= budget`` (HAQ's wall); returns (genome, value, cost queries).

    The bit genes are the first ``2 * n_free`` genes (weight, activation per layer, indices in
    ascending bit order). Raises :class:`JaqmooError` when even the lowest bits exceed the budget.
    """
    x = np.array(x, dtype=int)
    value = resource(x)
    queries = 1
    while value > budget:
        if not np.any(x[: 2 * n_free] > 0):
            raise JaqmooError(f"haq: the lowest bits cost {value:.6g}, above the budget {budget:.6g}; "
                              "raise search.haq_budgets or allow lower bit-widths")
        for j in reversed(range(n_free)):
            lowered = False
            for g in (2 * j + 1, 2 * j):  # activation, then weight
                if x[g] > 0:
                    x[g] -= 1
                    lowered = True
            if lowered:
                value = resource(x)
                queries += 1
                if value <= budget:
                    break
    return x, value, queries


def resource_function(evaluator, space: GenomeSpace, resource: str) -> Callable[[np.ndarray], float]:
    """genome -> the resource from the evaluator's cost model (``cost_value`` when it has one),
    each distinct genome costed once (the wall probes the same lowered policies again and again)."""
    key = METRIC_OF[resource]
    probe = getattr(evaluator, "cost_value", None)
    known: dict[bytes, float] = {}  # the cost model is deterministic: a genome is costed once per run

    def value(x: np.ndarray) -> float:
        tag = np.asarray(x, dtype=np.int64).tobytes()
        if tag in known:
            return known[tag]
        cand = space.decode_one(x)
        if probe is not None:
            v = float(probe(cand, key))
        else:
            rec = evaluator.evaluate([cand])[0]
            r = rec.get(key)
            v = float(r) if rec.get("feasible") and r is not None and np.isfinite(r) else float("inf")
        known[tag] = v
        return v

    return value


def split_budget(total: int, parts: int) -> list[int]:
    """``total`` episodes over ``parts`` budgets, as evenly as possible (earlier budgets get the rest)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _first_records(driver: EvaluationDriver, x_ref: np.ndarray, first: np.ndarray | None) -> dict:
    """Evaluate the common first population (when given) and the max-bit reference policy
    (once: it is usually among the first population's seeds); returns the reference's record."""
    if first is not None and len(first):
        records = driver.evaluate(np.asarray(first)[: driver.remaining])
        for x, rec in zip(first, records, strict=False):
            if np.array_equal(x, x_ref):
                return rec
    return driver.evaluate(x_ref[None])[0]


def run_haq(driver: EvaluationDriver, space: GenomeSpace, evaluator, workload: Workload, settings: HaqSettings,
            seed: int, first: np.ndarray | None = None) -> dict:
    """Spend the driver's budget on HAQ episodes over the budgets (after the common ``first``
    population, when given); returns what ``meta.json`` records."""
    if space.n_mapping_genes or space.hardware_genes:
        raise JaqmooError("haq searches bits only: give it a space without mapping or hardware genes "
                          "(jaqmoo.search.baselines.searcher_space)")
    states = normalized_states(raw_states(workload, space))
    n_free = len(space.free_layers)
    if n_free == 0:
        raise JaqmooError("haq: every layer is fixed; there are no bits to search")
    resource = resource_function(evaluator, space, settings.resource)
    x_ref = space.uniform_genome(max(space.weight_choices), max(space.act_choices))
    ref = _first_records(driver, x_ref, first)
    key = METRIC_OF[settings.resource]
    if not ref.get("feasible") or ref.get(key) is None or not np.isfinite(ref[key]):
        raise JaqmooError(f"haq: the max-bit policy is infeasible on this hardware ({ref.get('reason')}); "
                          "its cost is the reference the budgets are fractions of")
    acc_ref, cost_ref = float(ref["accuracy"]), float(ref[key])
    x_min = x_ref.copy()
    x_min[: 2 * n_free] = 0
    cost_min = resource(x_min)
    # budgets below the cheapest policy are raised to it (and merged: one agent per distinct budget)
    budgets = sorted({max(f * cost_ref, cost_min) for f in settings.budgets})
    info = {"resource": settings.resource, "reference_cost": cost_ref, "lowest_cost": cost_min,
            "budget_fractions": list(settings.budgets), "budgets": budgets,
            "raised_budgets": [f for f in settings.budgets if f * cost_ref < cost_min],
            "episodes": [], "warmup": [], "cost_queries": 0, "agent_updates": 0}
    agent_config = replace(settings.agent, replay_size=128 * len(states))  # HAQ: rmsize 128 per step
    for b, (budget, episodes) in enumerate(zip(budgets, split_budget(driver.remaining, len(budgets)), strict=True)):
        warmup = min(WARMUP, max(1, episodes // 5))
        agent = DDPGAgent(states.shape[1] + 1, seed=seed * 1009 + b, config=agent_config)
        for ep in range(episodes):
            x, traj = _episode(agent, states, space, x_ref, ep, warmup)
            x, _, queries = action_wall(x, n_free, resource, budget)
            rec = driver.evaluate(x[None])[0]
            reward = REWARD_SCALE * (float(rec["accuracy"]) - acc_ref) if rec.get("feasible") else INFEASIBLE_REWARD
            for s, a, s1, done in traj:
                agent.observe(s, a, reward, s1, done)
                if ep >= warmup:
                    agent.update()
            info["cost_queries"] += queries
        info["episodes"].append(episodes)
        info["warmup"].append(warmup)
        info["agent_updates"] += agent.updates
    return info


def _episode(agent: DDPGAgent, states: np.ndarray, space: GenomeSpace, x_ref: np.ndarray, ep: int,
             warmup: int) -> tuple[np.ndarray, list[tuple[np.ndarray, float, np.ndarray, bool]]]:
    """One pass over the layers: the genome the agent's actions give and its transitions."""
    x = x_ref.copy()
    n_steps = len(states)
    traj: list[tuple[np.ndarray, float, np.ndarray, bool]] = []
    prev = 0.0
    s = np.append(states[0], prev).astype(np.float32)
    for t in range(n_steps):
        a = agent.act(s, ep, warmup)
        n_choices = len(space.weight_choices) if t % 2 == 0 else len(space.act_choices)
        x[t] = action_to_index(a, n_choices)  # gene t: weight (even) / activation (odd) of free layer t // 2
        done = t == n_steps - 1
        s1 = np.append(states[t + 1] if not done else np.zeros_like(states[0]), a).astype(np.float32)
        traj.append((s, a, s1, done))
        s = s1
    return x, traj


__all__: Sequence[str] = ["HaqSettings", "action_wall", "raw_states", "normalized_states", "run_haq", "STATE_FIELDS"]


def _drive(driver: EvaluationDriver, space: GenomeSpace, settings: Any, evaluator: Any, workload: Any) -> dict:
    if workload is None:
        raise JaqmooError("haq needs the network's layer shapes: pass workload= (or an evaluator with .workload)")
    return run_haq(driver, space, evaluator, workload, HaqSettings(settings.haq_resource, tuple(settings.haq_budgets)),
                   settings.seed, common_first_population(space, settings))


def max_bit_baseline(space: GenomeSpace, population: int, seed_bits: Sequence[int]) -> list[dict]:
    """HAQ stores its max-bit reference policy first: the run's only uniform baseline (when w == a)."""
    w, a = max(space.weight_choices), max(space.act_choices)
    return [{"label": f"uniform {w}-bit", "bits": w, "gen": 1, "idx": 0}] if w == a else []


SEARCHERS.register("haq", Searcher(drive=_drive, bits_only=True, baselines=max_bit_baseline))
