"""jaqmoo.registry.Registry and the registries built on it (one way everywhere)."""

from __future__ import annotations

import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.estimators import ESTIMATORS
from jaqmoo.experiment.spec import BASELINE_ALGORITHMS
from jaqmoo.hardware.templates import TEMPLATES
from jaqmoo.models import MODELS
from jaqmoo.models.elastic_space import FAMILIES
from jaqmoo.registry import Registry
from jaqmoo.search.algorithms import ALGORITHMS
from jaqmoo.search.baselines import SEARCHERS, Searcher, searcher_for


def test_register_lookup_aliases_and_normalisation():
    reg: Registry[int] = Registry("widget", normalize=lambda n: n.lower().replace("-", "_"), hint=" (or a file)")

    @reg.register("big_one", aliases=("big",))
    def big() -> int:
        return 1

    reg.register("small", 2)
    assert list(reg) == ["big_one", "small"] and len(reg) == 2 and "small" in reg and "SMALL" not in reg
    assert reg.lookup("Big-One") is big and reg.lookup("BIG") is big and reg.lookup("small") == 2
    assert reg.canonical("big") == "big_one" and reg.canonical("nope") is None
    with pytest.raises(JaqmooError, match=r"unknown widget 'smal'; did you mean 'small'\?.*big_one, small \(or a file\)"):
        reg.lookup("smal")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("small", 3)


def test_the_registries_hold_every_builtin_entry():
    assert set(MODELS) == {"mobilenet_v1", "mobilenet_v2", "resnet18", "mobilenet_v3_small", "simple_cnn"}
    assert list(TEMPLATES) == ["eyeriss", "simba", "weight_stationary", "output_stationary"]
    assert TEMPLATES.lookup("ws").name == "weight_stationary"
    assert list(FAMILIES) == ["mobilenet_v1", "mobilenet_v2"]
    assert FAMILIES.lookup("mobilenet_v1").max_depth == 6 and FAMILIES.lookup("mobilenet_v2").max_depth == 4
    assert list(ALGORITHMS) == ["nsga2", "nsga3", "unsga3", "smsemoa", "spea2", "rnsga2"]
    assert list(ESTIMATORS) == ["supernet", "predictor"]
    assert list(SEARCHERS) == ["uniform", "random", "haq", "bits-nsga2"]


def test_searchers_are_registered_entries_with_the_registry_error():
    assert all(isinstance(s, Searcher) for s in SEARCHERS.values())
    assert [n for n, s in SEARCHERS.items() if s.bits_only] == ["haq", "bits-nsga2"]
    assert [n for n, s in SEARCHERS.items() if s.drive is not None] == ["uniform", "random", "haq"]
    assert searcher_for("nsga2") is None and searcher_for("haq") is SEARCHERS["haq"]
    with pytest.raises(JaqmooError, match=r"unknown searcher 'haqq'; did you mean 'haq'\?.*bits-nsga2 "
                                          r"\(or a pymoo algorithm: nsga2, nsga3"):
        searcher_for("haqq")
    with pytest.raises(ValueError, match="exactly one of drive= and algorithm="):
        Searcher()


def test_spec_allows_every_registered_searcher():
    assert BASELINE_ALGORITHMS == tuple(SEARCHERS)
