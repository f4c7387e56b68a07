"""Test-only fake evaluator for the search layer (a smooth, deterministic stand-in)."""

from __future__ import annotations

import numpy as np

from jaqmoo.search.genome import GenomeSpace, HardwareGene


class FakeEvaluator:
    """Accuracy rises with bits; energy/memory fall with them; a ``fail_at`` call raises."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.evaluated = 0
        self.fail_after = fail_after

    def evaluate(self, candidates):
        out = []
        for c in candidates:
            if self.fail_after is not None and self.evaluated >= self.fail_after:
                raise KeyboardInterrupt("simulated kill")
            self.evaluated += 1
            w = np.asarray(c.policy.weight_bits, float)
            a = np.asarray(c.policy.act_bits, float)
            pe = c.hardware.get("pe", 8)
            acc = 0.9 - 0.02 * np.sum(np.exp(-(w - 2)) + 0.5 * np.exp(-(a - 2))) / len(w)
            energy = float(np.sum(w * a * (1 + np.arange(len(w))))) * (1 + 4.0 / pe)
            mem = float(np.sum(w * 100) + np.max(a) * 50)
            feasible = not (pe == 2 and w.max() == 8 and a.max() == 8)
            out.append({
                "feasible": feasible, "reason": "" if feasible else "buffer overflow",
                "accuracy": float(acc), "energy_pj": energy if feasible else float("nan"),
                "cycles": 1000.0 / pe, "latency_s": 1e-6 / pe, "edp": energy / pe,
                "memory_bits": mem, "weight_memory_bits": float(np.sum(w * 100)),
                "activation_memory_bits": float(np.max(a) * 50), "area_mm2": 0.1 * pe,
                **{f"map.{n}": f"DRAM[K{pe}] buf[C{int(b)}]" for n, b in zip(c.policy.layer_names, w, strict=True)},
                "energy.DRAM": energy * 0.6, "energy.buf": energy * 0.3, "energy.MAC": energy * 0.1,
            })
        self.calls += 1
        return out


def fake_space(n_layers: int = 5, outer: bool = False) -> GenomeSpace:
    return GenomeSpace(
        layer_names=tuple(f"layer{i}" for i in range(n_layers)),
        weight_choices=(2, 3, 4, 5, 6, 8),
        act_choices=(4, 6, 8),
        fixed_layers={0: (8, 8)},
        hardware_genes=(HardwareGene("pe", (2, 4, 8, 16), 8),),
        hardware_fixed={"glb": 64},
        mapping_mode="outer" if outer else "inner",
        mapping_candidates=4,
    )


class FakeAccuracy:
    """Test-only accuracy estimator: higher bits, higher accuracy (no supernet needed)."""

    def __init__(self) -> None:
        self.calls = 0

    def estimate(self, policies):
        self.calls += len(policies)
        out = []
        for p in policies:
            w = np.asarray(p.weight_bits, float)
            a = np.asarray(p.act_bits, float)
            out.append(0.95 - 0.1 * float(np.mean(np.exp(-(w - 2) / 1.5) + 0.5 * np.exp(-(a - 2) / 1.5))))
        return np.asarray(out)


def fake_accuracy_setup(spec, splits, layer_names, default_checkpoint, progress=True):
    """Drop-in for :func:`jaqmoo.experiment.accuracy.obtain_accuracy` (no training)."""
    from jaqmoo.experiment.accuracy import AccuracySetup
    from jaqmoo.experiment.caches import CachedEstimator

    rescore = CachedEstimator(FakeAccuracy()) if spec.accuracy.estimator == "predictor" else None
    return AccuracySetup(CachedEstimator(FakeAccuracy()), rescore, {}, {"fake_accuracy": 0.0}, {})


def fake_run_settings(**changes):
    """The fake search runs' settings (accuracy, energy, memory; 4 generations of 12), with ``changes``."""
    from jaqmoo.search.problem import Constraints
    from jaqmoo.search.session import SearchSettings

    base = {"objectives": ("accuracy", "energy", "memory"), "constraints": Constraints(min_accuracy=0.86),
            "population": 12, "generations": 4, "seed": 1, "batch_size": 6}
    return SearchSettings(**{**base, **changes})


FAKE_RUN_SETTINGS = fake_run_settings()


def run_fake_search(path, settings=FAKE_RUN_SETTINGS, name: str = "fake", **kwargs):
    """A finished search with :class:`FakeEvaluator` over :func:`fake_space` in ``path``."""
    from jaqmoo.search.session import search_in_directory

    return search_in_directory(path, name, fake_space(), FakeEvaluator(), settings, progress=False, **kwargs)
