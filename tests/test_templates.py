"""Accelerator templates: Timeloop dicts, defaults = reference designs, overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.templates import (
    TEMPLATES,
    HardwareParam,
    get_template,
    parse_overrides,
)
from jaqmoo.hardware.templates.simple import SPATIAL_PERMUTATION

REFERENCE = Path("/work/shared/reference/timeloop")
if not REFERENCE.is_dir():
    REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "timeloop"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(),
                                     reason="Timeloop reference folders not available")
DESIGNS = Path(__file__).parent / "data" / "designs"
FIXTURE_OF = {"simba": "simba_like", "weight_stationary": "simple_weight_stationary",
              "output_stationary": "simple_output_stationary"}


def _normalize(obj):
    """PyYAML reads ``1e-9`` as a string (YAML 1.1); compare numbers as numbers."""
    if isinstance(obj, dict):
        return {k: _normalize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_normalize(v) for v in obj]
    if isinstance(obj, str):
        try:
            return float(obj)
        except ValueError:
            return obj
    return obj


def _locals(tl: dict) -> dict[str, dict]:
    return {c["name"]: c for c in tl["architecture"]["subtree"][0]["local"]}


@needs_reference
def test_eyeriss_defaults_reproduce_the_reference_input_exactly():
    ref = yaml.safe_load((REFERENCE / "mapper-eyeriss-like-conv" /
                          "parsed-processed-input.yaml").read_text())
    ours = get_template("eyeriss").to_timeloop()
    assert _normalize(ours["architecture"]) == _normalize(ref["architecture"])
    assert ours["architecture_constraints"] == ref["architecture_constraints"]


@pytest.mark.parametrize("template", sorted(FIXTURE_OF))
def test_template_defaults_match_the_flattened_exercise_fixture(template):
    fixture = yaml.safe_load((DESIGNS / FIXTURE_OF[template] / "flattened.yaml").read_text())
    ours = get_template(template).to_timeloop()
    if template != "simba":  # documented deviation: output channels across the PE columns
        for target in fixture["architecture_constraints"]["targets"]:
            if target["target"] == "inter_PE_spatial" and target["type"] == "spatial":
                assert target["permutation"] == "NQPSRCM"
                target["permutation"] = SPATIAL_PERMUTATION
    assert ours["architecture_constraints"] == fixture["architecture_constraints"]
    mine, theirs = _locals(ours), _locals(fixture)
    assert list(mine) == list(theirs)
    for name, comp in theirs.items():
        assert mine[name]["class"] == comp["class"]
        assert mine[name].get("subclass") == comp.get("subclass")
        for key, value in comp["attributes"].items():
            assert mine[name]["attributes"][key] == value, (name, key)
        assert mine[name]["attributes"]["meshX"] == comp["attributes"].get("meshX", 1)
        assert mine[name]["attributes"]["meshY"] == comp["attributes"].get("meshY", 1)


def test_registry_and_aliases():
    assert set(TEMPLATES) == {"eyeriss", "simba", "weight_stationary", "output_stationary"}
    assert get_template("WS") is TEMPLATES["weight_stationary"]
    assert get_template("simba-like") is TEMPLATES["simba"]
    with pytest.raises(JaqmooError, match="unknown accelerator template 'tpu'.*eyeriss"):
        get_template("tpu")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_parameters_are_well_formed(name):
    template = TEMPLATES[name]
    defaults = template.defaults()
    assert list(defaults) == [p.name for p in template.params]
    for p in template.params:
        assert p.default in p.choices and p.doc
        assert all(c >= p.minimum for c in p.choices)
    genes = {p.name for p in template.searchable_params}
    assert {"pe_x", "pe_y"} <= genes and "technology" not in genes
    assert any("depth" in g for g in genes) and any("width" in g for g in genes)
    assert template.describe().count("\n") == len(template.params)
    # the extreme search choices, all at once, are buildable (a search may pick them)
    for pick in (0, -1):
        template.resolve(**{p.name: p.choices[pick] for p in template.searchable_params})
    # every search choice builds a valid dict on its own
    for p in template.searchable_params:
        for choice in p.choices:
            overrides = {p.name: choice}
            try:
                template.resolve(**overrides)
            except JaqmooError as err:  # only the width >= datawidth rule may refuse
                assert "smaller than" in str(err)
                continue
            template.to_timeloop(**overrides)


def test_eyeriss_overrides_change_mesh_depths_and_widths():
    tl = get_template("eyeriss").to_timeloop(pe_x=16, pe_y=8, glb_depth=32768,
                                             weights_spad_depth=256, psum_spad_width=32,
                                             dram_width=128, datawidth=16)
    comps = _locals(tl)
    assert "inter_PE_spatial[1..16]" in comps
    for spad in ("ifmap_spad", "weights_spad", "psum_spad"):
        attrs = comps[f"{spad}[1..128]"]["attributes"]
        assert (attrs["meshX"], attrs["meshY"]) == (16, 8)
    assert comps["mac[1..128]"]["attributes"]["multiplier_width"] == 16
    assert comps["shared_glb[1..1]"]["attributes"]["depth"] == 32768
    assert comps["weights_spad[1..128]"]["attributes"]["depth"] == 256
    assert comps["weights_spad[1..128]"]["attributes"]["datawidth"] == 16
    assert comps["psum_spad[1..128]"]["attributes"]["width"] == 32
    assert comps["DRAM[1..1]"]["attributes"]["width"] == 128
    # constraints (the dataflow) do not depend on the sizes
    assert tl["architecture_constraints"] == get_template("eyeriss").to_timeloop()[
        "architecture_constraints"]


def test_simba_lanes_and_macs_scale_the_inner_meshes():
    comps = _locals(get_template("simba").to_timeloop(pe_x=8, pe_y=2, lanes=8,
                                                      macs_per_lane=2))
    assert comps["PEInputBuffer[1..16]"]["attributes"]["meshY"] == 2
    assert comps["inter_distributed_buffers_spatial[1..16]"]["attributes"]["meshX"] == 8
    assert comps["PEWeightBuffer[1..128]"]["attributes"]["meshY"] == 16
    assert comps["PEAccuBuffer[1..128]"]["attributes"]["meshX"] == 8
    assert comps["mac[1..256]"]["attributes"]["meshY"] == 32


def test_stationarity_of_the_simple_templates():
    def kept(name):
        targets = get_template(name).to_timeloop()["architecture_constraints"]["targets"]
        return [t["keep"] for t in targets if t["target"] == "pe_spad" and "keep" in t][0]

    assert kept("weight_stationary") == ["Weights"]
    assert kept("output_stationary") == ["Outputs"]


@pytest.mark.parametrize("overrides, match", [
    ({"pe_x": 0}, r"pe_x=0 is impossible; allowed: an integer >= 1"),
    ({"glb_depth": -5}, r"glb_depth=-5 is impossible"),
    ({"weights_spad_depth": 0}, r"weights_spad_depth=0"),
    ({"weights_spad_width": 4}, r"weights_spad_width=4 is smaller than datawidth=8.*>= 8"),
    ({"psum_spad_width": 8}, r"psum_spad_width=8 is smaller than psum_datawidth=16"),
    ({"pe_z": 3}, r"unknown parameter 'pe_z'; valid parameters: pe_x, pe_y"),
    ({"pe_x": 2.5}, r"pe_x=2.5 is not an integer"),
    ({"pe_x": "many"}, r"pe_x='many' is not an integer"),
    ({"technology": 22}, r"technology=22 is not one of.*32, 40, 45, 65"),
])
def test_impossible_hardware_is_a_clear_error(overrides, match):
    with pytest.raises(JaqmooError, match=match):
        get_template("eyeriss").to_timeloop(**overrides)


def test_strict_validation_requires_a_search_choice():
    template = get_template("eyeriss")
    template.resolve(pe_x=13)  # physically fine
    with pytest.raises(JaqmooError, match=r"pe_x=13 is not one of .*allowed: one of 2, 4, 8"):
        template.resolve(strict=True, pe_x=13)
    assert template.resolve(strict=True, pe_x=16)["pe_x"] == 16
    assert template.resolve(pe_x="16")["pe_x"] == 16  # CLI strings


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_choices_generate_consistent_meshes(data):
    name = data.draw(st.sampled_from(sorted(TEMPLATES)))
    template = TEMPLATES[name]
    values = {p.name: data.draw(st.sampled_from(p.choices)) for p in template.searchable_params}
    try:
        tl = template.to_timeloop(**values)
    except JaqmooError as err:
        assert "smaller than" in str(err)
        return
    previous = (1, 1)
    for comp in tl["architecture"]["subtree"][0]["local"]:
        attrs = comp["attributes"]
        mesh = (attrs["meshX"], attrs["meshY"])
        count = int(comp["name"].rsplit("..", 1)[1].rstrip("]"))
        assert count == mesh[0] * mesh[1]
        assert mesh[0] % previous[0] == 0 and mesh[1] % previous[1] == 0
        previous = mesh


def test_hardware_param_rejects_inconsistent_definitions():
    with pytest.raises(ValueError):
        HardwareParam("x", 3, (1, 2, 4), "default not a choice")
    with pytest.raises(ValueError):
        HardwareParam("x", 2, (4, 2), "unsorted")


def test_parse_overrides():
    assert parse_overrides(["pe_x=16", " glb_depth = 8192 "]) == {"pe_x": 16, "glb_depth": 8192}
    assert parse_overrides(None) == {}
    with pytest.raises(JaqmooError, match="NAME=VALUE"):
        parse_overrides(["pe_x"])
    with pytest.raises(JaqmooError, match="not an integer"):
        parse_overrides(["pe_x=big"])
