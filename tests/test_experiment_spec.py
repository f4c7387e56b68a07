"""Validation of experiment specs: clear errors before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_helpers import with_key

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.spec import ExperimentSpec, load_spec, parse_spec

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"

BASE = {
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss", "search": ["pe_x"]},
    "objectives": ["accuracy", "energy"],
    "search": {"population": 8, "generations": 2},
}


def _with(path: str, value) -> dict:
    return with_key(BASE, path, value)


def test_base_spec_parses():
    spec = parse_spec(BASE, "t.yaml")
    assert isinstance(spec, ExperimentSpec)
    assert spec.search.population == 8 and spec.mapping.mode == "inner"
    assert spec.accelerator.search == (("pe_x", ()),)


# sweep-*.yaml are sweep specs, not experiment specs (tests/test_sweep_spec.py expands them), and so is
# the cost-only sweep zoo-cost.yaml (tests/test_zoo.py)
@pytest.mark.parametrize("path", sorted(p for p in PROBLEMS.glob("*.yaml")
                                        if not p.name.startswith("sweep-") and p.name != "zoo-cost.yaml"),
                         ids=lambda p: p.name)
def test_shipped_problems_are_valid(path):
    spec = load_spec(path)
    assert spec.name and spec.objectives[0] == "accuracy"


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("search.populaton", 8, "did you mean 'population'"),
        ("modle", {"name": "x"}, "did you mean 'model'"),
        ("search.population", "many", "expected int"),
        ("search.population", 2, "out of range"),
        ("search.generations", 0, "out of range"),
        ("search.population", True, "boolean"),
        ("search.algorithm", "nsga22", "did you mean 'nsga2'"),
        ("model.name", "mobilenetv2", "did you mean 'mobilenet_v2'"),
        ("dataset.name", "fashion_mnist", "did you mean 'fashion-mnist'"),
        ("quantization.weight_bits", [1, 4], "not supported"),
        ("quantization.weight_bits", [], "non-empty"),
        ("quantization.act_bits", [4, 4], "duplicate"),
        ("mapping.mode", "middle", "inner, outer"),
        ("mapping.candidates", 0, "out of range"),
        ("objectives", ["accuracy", "power"], "choose one of"),
        ("objectives", ["energy", "energy"], "twice"),
        ("constraints.min_accuracy", 1.5, "out of range"),
        ("constraints.max_area_mm2", 0, "out of range"),
        ("constraints.max_area_mm2", -3.0, "out of range"),
        ("accuracy.estimator", "oracle", "choose one of"),
        ("accuracy.val_images", 2, "out of range"),
        ("search.seed_bits", [8, 6, 4, 3, 2, 5, 7, 8, 4], "smaller than"),
        ("quantization.fixed_layers", {"first": "9/8"}, "out of range"),
        ("accelerator.search", 5, "expected a list"),
        ("model", "simple_cnn", "expected a mapping"),
    ],
)
def test_bad_specs_name_the_field(path, value, message):
    with pytest.raises(JaqmooError) as exc:
        parse_spec(_with(path, value), "bad.yaml")
    text = str(exc.value)
    assert "bad.yaml" in text
    assert message in text


def test_missing_sections_and_cross_checks():
    with pytest.raises(JaqmooError, match="'model' section is required"):
        parse_spec({k: v for k, v in BASE.items() if k != "model"}, "x.yaml")
    with pytest.raises(JaqmooError, match="min_accuracy or max_accuracy_drop"):
        parse_spec(_with("constraints", {"min_accuracy": 0.5, "max_accuracy_drop": 0.1}), "x.yaml")
    with pytest.raises(JaqmooError, match="seed is not in quantization"):
        parse_spec(_with("quantization.weight_bits", [2, 4]), "x.yaml")
    with pytest.raises(JaqmooError, match="area"):
        parse_spec(_with("accelerator", {"template": "eyeriss"}) | {"objectives": ["accuracy", "area"]}, "x.yaml")
    with pytest.raises(JaqmooError, match="both fixed and searched"):
        parse_spec(_with("accelerator", {"template": "eyeriss", "fixed": {"pe_x": 8}, "search": ["pe_x"]}), "x.yaml")
    with pytest.raises(JaqmooError, match="imagefolder"):
        parse_spec(_with("dataset", {"name": "imagefolder"}), "x.yaml")


def test_missing_file_suggests_close_name(tmp_path):
    (tmp_path / "quickstart.yaml").write_text("x: 1")
    with pytest.raises(JaqmooError, match="did you mean"):
        load_spec(tmp_path / "quikstart.yaml")
    (tmp_path / "broken.yaml").write_text("model: [unclosed")
    with pytest.raises(JaqmooError, match="not valid YAML"):
        load_spec(tmp_path / "broken.yaml")


def test_cli_overrides_are_validated():
    spec = parse_spec(BASE, "t.yaml")
    assert spec.with_overrides(generations=5, population=10).search.generations == 5
    with pytest.raises(JaqmooError, match="--pop"):
        spec.with_overrides(population=1)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["population", "generations", "batch_size", "algorithm", "typo"]),
                       st.one_of(st.integers(-5, 100), st.text(max_size=5), st.none(), st.booleans())))
def test_search_section_never_crashes_uncontrolled(section):
    try:
        spec = parse_spec({**BASE, "search": section}, "h.yaml")
    except JaqmooError:
        return
    assert spec.search.population >= 4 and spec.search.generations >= 1
