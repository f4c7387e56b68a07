"""Memoising wrappers of accuracy estimators: a policy (or an architecture + bits pair) the
search meets again is never estimated again.

:class:`CachedEstimator` answers ``estimate(policies)`` per (weight bits, activation bits);
:class:`PairCache` answers ``estimate_pairs([(arch, policy), ...])`` per phenotype;
:class:`NoGradPairs` runs an elastic supernet estimator without autograd.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaqmoo.models.elastic_space import ArchSpec, ElasticSpace
from jaqmoo.quant.policy import QuantPolicy


class CachedEstimator:
    """Memoises ``estimate(policies)`` per (weight bits, activation bits)."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.cache: dict[tuple, float] = {}
        self.calls = 0

    @staticmethod
    def key(policy: QuantPolicy) -> tuple:
        return (policy.weight_bits, policy.act_bits)

    def estimate(self, policies: Sequence[QuantPolicy]) -> np.ndarray:
        todo = []
        for p in policies:
            k = self.key(p)
            if k not in self.cache and k not in {self.key(q) for q in todo}:
                todo.append(p)
        if todo:
            values = np.asarray(self.estimator.estimate(todo), dtype=float).reshape(-1)
            if len(values) != len(todo):
                raise RuntimeError(f"accuracy estimator returned {len(values)} values for {len(todo)} policies")
            self.calls += len(todo)
            for p, v in zip(todo, values, strict=True):
                self.cache[self.key(p)] = float(v)
        return np.asarray([self.cache[self.key(p)] for p in policies], dtype=float)


class PairCache:
    """Memoises ``estimate_pairs`` per phenotype (canonical architecture, bits of the layers that run)."""

    def __init__(self, estimator: Any, space: ElasticSpace, active: Any) -> None:
        self.estimator = estimator
        self.space = space
        self.active = active  # arch -> names of the layers that run
        self.cache: dict[tuple, float] = {}
        self.calls = 0

    def key(self, arch: ArchSpec, policy: QuantPolicy) -> tuple:
        arch = self.space.canonical(arch)
        sub = policy.with_layers(self.active(arch), strict=False)
        return (arch.key, sub.weight_bits, sub.act_bits)

    def estimate_pairs(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray:
        keys = [self.key(a, p) for a, p in pairs]
        todo: dict[tuple, tuple[ArchSpec, QuantPolicy]] = {}
        for k, pair in zip(keys, pairs, strict=True):
            if k not in self.cache and k not in todo:
                todo[k] = pair
        if todo:
            values = np.asarray(self.estimator.estimate_pairs(list(todo.values())), dtype=float).reshape(-1)
            self.calls += len(todo)
            self.cache.update({k: float(v) for k, v in zip(todo, values, strict=True)})
        return np.asarray([self.cache[k] for k in keys], dtype=float)


class NoGradPairs:
    """An :class:`~jaqmoo.quant.elastic_estimators.ElasticSupernetEstimator` run without autograd."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def estimate_pairs(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.estimator.estimate_pairs(pairs)
