"""Built-in energy/area tables: anchors, closeness to the Timeloop reference ERTs, monotonicity."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware import energy
from jaqmoo.hardware import energy_tables as et
from jaqmoo.hardware.energy import anchors, architecture, builtin, components, hwcomponents_model

REFERENCE = Path("/work/shared/reference/timeloop")
if not REFERENCE.is_dir():  # the repo may carry a copy
    REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "timeloop"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(),
                                     reason="Timeloop reference folders not available")


def _ert(folder: Path) -> dict[str, dict[str, float]]:
    ert_file = next(folder.glob("*.ERT.yaml"))
    tables = yaml.safe_load(ert_file.read_text())["ERT"]["tables"]
    return {t["name"]: {a["name"]: float(a["energy"]) for a in t["actions"]} for t in tables}


def _relative_errors(folder: Path) -> dict[tuple[str, str], float]:
    arch = yaml.safe_load((folder / "parsed-processed-input.yaml").read_text())["architecture"]
    ours, _, _ = et.estimate_architecture(arch)
    ref = _ert(folder)
    errors = {}
    for table in ours["ERT"]["tables"]:
        for action in table["actions"]:
            expected = ref.get(table["name"], {}).get(action["name"])
            if expected:  # skip zero / missing actions (dummies, DRAM leak)
                errors[(table["name"], action["name"])] = action["energy"] / expected - 1
    return errors


@needs_reference
def test_eyeriss_builtin_energies_within_5_percent_of_reference_ert():
    errors = _relative_errors(REFERENCE / "mapper-eyeriss-like-conv")
    assert len(errors) == 21  # DRAM 3, glb 4, three spads x 4, mac 2
    worst = max(abs(e) for e in errors.values())
    assert worst < 0.05, {k: round(v, 4) for k, v in errors.items()}
    # the anchored components reproduce the ERT exactly
    for (name, _), err in errors.items():
        if "DRAM" in name or "shared_glb" in name or ".mac[" in name:
            assert abs(err) < 1e-6


@needs_reference
@pytest.mark.parametrize("folder", ["model-conv1d-1level", "model-conv1d-2level-ws",
                                    "model-conv1d-oc-3level",
                                    "model-conv1d-oc-3level-spatial-k"])
def test_40nm_tables_reproduce_model_references(folder):
    errors = _relative_errors(REFERENCE / folder)
    assert errors
    assert max(abs(e) for e in errors.values()) < 1e-6


@needs_reference
def test_builtin_names_match_reference_ert_names():
    folder = REFERENCE / "mapper-eyeriss-like-conv"
    arch = yaml.safe_load((folder / "parsed-processed-input.yaml").read_text())["architecture"]
    ours, art, source = et.estimate_architecture(arch)
    names = {t["name"] for t in ours["ERT"]["tables"]}
    assert set(_ert(folder)) <= names
    assert source == "built-in 32nm table"
    areas = {t["name"]: t["area"] for t in art["ART"]["tables"]}
    assert areas["system_top_level.inter_PE_spatial[1..14]"] == et.DUMMY_AREA_UM2
    assert areas["system_top_level.shared_glb[1..1]"] == pytest.approx(217363.36892)


def test_anchors_are_reproduced_exactly():
    for anchor in et.ANCHORS:
        if anchor.kind == "intmac":
            est = et.intmac_estimate(*anchor.size, anchor.node_nm)
        elif anchor.kind == "sram":
            est = et.sram_estimate(*anchor.size, anchor.node_nm)
        elif anchor.kind == "register":
            est = et.register_estimate(anchor.size[1], anchor.node_nm)
        else:
            est = et.regfile_estimate(*anchor.size, anchor.node_nm)
        for action, value in anchor.energies:
            assert est.energy(action) == pytest.approx(value, rel=1e-9), (anchor, action)
        if anchor.kind != "register":  # a register's area per bit is the regfile's
            assert est.area_um2 == pytest.approx(anchor.area_um2, rel=1e-9)


def test_65nm_is_45nm_scaled_by_node_squared():
    a45 = et.sram_estimate(4096, 64, 45)
    a65 = et.sram_estimate(4096, 64, 65)
    factor = (65 / 45) ** 2
    assert a65.energy("read") == pytest.approx(a45.energy("read") * factor)
    assert a65.area_um2 == pytest.approx(a45.area_um2 * factor)
    # the 40 nm MAC has no anchored leakage: it comes from 45 nm
    mac40 = et.intmac_estimate(8, 16, 40)
    assert mac40.energy("leak") == pytest.approx(0.0036 * (40 / 45) ** 2)


depths = st.integers(min_value=1, max_value=1 << 17)
widths = st.integers(min_value=1, max_value=1024)
nodes = st.sampled_from(et.SUPPORTED_NODES_NM)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["sram", "regfile"]), node=nodes, d1=depths, d2=depths,
       w1=widths, w2=widths)
def test_memories_are_monotone_in_depth_width_and_area(kind, node, d1, d2, w1, w2):
    fn = et.sram_estimate if kind == "sram" else et.regfile_estimate
    (d1, d2), (w1, w2) = sorted((d1, d2)), sorted((w1, w2))
    small, big = fn(d1, w1, node), fn(d2, w2, node)
    for action in ("read", "write", "update", "leak"):
        assert small.energy(action) <= big.energy(action) * (1 + 1e-12)
    assert small.area_um2 <= big.area_um2 * (1 + 1e-12)
    # sub-linear in depth: doubling the depth less than doubles the energy per access
    # (from 2 entries up: a single register has no address decode at all)
    d = max(d1, 2)
    assert fn(2 * d, w1, node).energy("read") < 2 * fn(d, w1, node).energy("read")
    # linear in width
    assert fn(d1, 2 * w1, node).energy("read") == pytest.approx(2 * small.energy("read"))


@settings(max_examples=40, deadline=None)
@given(node=nodes, m1=st.integers(1, 32), m2=st.integers(1, 32), a1=st.integers(1, 64),
       a2=st.integers(1, 64))
def test_intmac_monotone_in_operand_widths(node, m1, m2, a1, a2):
    (m1, m2), (a1, a2) = sorted((m1, m2)), sorted((a1, a2))
    small, big = et.intmac_estimate(m1, a1, node), et.intmac_estimate(m2, a2, node)
    assert small.energy("compute") <= big.energy("compute")
    assert small.area_um2 <= big.area_um2


def test_intmac_scales_quadratically_with_multiplier_width():
    e8 = et.intmac_estimate(8, 16, 45).energy("compute")
    e4 = et.intmac_estimate(4, 16, 45).energy("compute")
    assert e4 == pytest.approx(e8 * (0.8 / 4 + 0.2))


def test_dram_energy_per_bit_and_types():
    assert et.dram_estimate(64).energy("read") == 512.0
    assert et.dram_estimate(256, "LPDDR4").energy("write") == 2048.0
    assert et.dram_estimate(64, "HBM2").energy("read") < et.dram_estimate(64).energy("read")
    with pytest.raises(JaqmooError, match="DRAM type 'SDR'"):
        et.dram_estimate(64, "SDR")


@pytest.mark.parametrize("value, nm", [("45nm", 45), ("32 nm", 32), (40, 40), (65e-9, 65),
                                       ("SET ME", None), (-1, None), (None, None),
                                       ("must_specify", None)])
def test_parse_technology(value, nm):
    assert et.parse_technology(value) == nm


@pytest.mark.parametrize("klass, subclass, kind", [
    ("DRAM", None, "dram"), ("smartbuffer_SRAM", None, "sram"), ("SRAM", None, "sram"),
    ("smartbuffer_RF", None, "regfile"), ("regfile", None, "regfile"),
    ("storage", "smartbuffer_RF", "regfile"), ("storage", "aladdin_register", "regfile"),
    ("reg_storage", None, "regfile"), ("intmac", None, "intmac"),
    ("storage", "smartbuffer_RF", "regfile"),
    ("dummy_storage", None, "dummy")])
def test_component_kind(klass, subclass, kind):
    assert et.component_kind(klass, subclass) == kind


def test_unknown_class_and_node_are_clear_errors():
    with pytest.raises(JaqmooError, match="'fpmac'.*ERT"):
        et.component_kind("fpmac")
    with pytest.raises(JaqmooError, match="22nm.*32nm, 40nm, 45nm, 65nm"):
        et.sram_estimate(1024, 64, 22)
    with pytest.raises(JaqmooError, match="'depth'"):
        et.estimate_component("SRAM", {"width": 64, "technology": "45nm"})
    with pytest.raises(JaqmooError, match="'depth' = 0"):
        et.estimate_component("SRAM", {"depth": 0, "width": 64, "technology": "45nm"})


def test_component_technology_inheritance_and_default():
    own = et.estimate_component("SRAM", {"depth": 1024, "width": 64, "technology": "40nm"},
                                technology="65nm")
    assert own.node_nm == 40
    inherited = et.estimate_component("SRAM", {"depth": 1024, "width": 64}, technology="65nm")
    assert inherited.node_nm == 65
    assumed = et.estimate_component("SRAM", {"depth": 1024, "width": 64})
    assert assumed.node_nm == et.DEFAULT_NODE_NM and "assumed" in assumed.source
    mac = et.estimate_component("intmac", {"width": 8, "technology": "40nm"})
    assert mac.energy("compute") == pytest.approx(0.845)


def test_single_register_is_the_cheapest_regfile():
    for node in et.SUPPORTED_NODES_NM:
        reg = et.regfile_estimate(1, 64, node)
        assert reg.kind == "register"
        assert reg.energy("read") < et.regfile_estimate(2, 64, node).energy("read")
        assert reg.area_um2 < et.regfile_estimate(2, 64, node).area_um2
    assert et.regfile_estimate(1, 512, 45).energy("read") == pytest.approx(0.257632)


def test_architecture_without_technology_says_the_node_was_assumed():
    arch = {"subtree": [{"name": "top", "local": [
        {"name": "DRAM", "class": "DRAM", "attributes": {"width": 64}},
        {"name": "buf[1..1]", "class": "SRAM", "attributes": {"depth": 64, "width": 8}},
        {"name": "mac", "class": "intmac", "attributes": {"width": 8}}]}]}
    ert, art, source = et.estimate_architecture(arch)
    assert source == "built-in 45nm table (no technology given: 45nm assumed)"
    assert [t["name"] for t in ert["ERT"]["tables"]] == ["top.DRAM", "top.buf[1..1]", "top.mac"]


def test_the_old_energy_tables_path_re_exports_the_split_modules():
    homes = (anchors, architecture, builtin, components, hwcomponents_model)
    for name in et.__all__:
        assert any(getattr(m, name, None) is getattr(et, name) for m in homes), name
    assert energy.__doc__ and set(et.__all__) == {n for m in homes for n in m.__all__}
