"""Timeloop v0.4 loader: flattened and hierarchical forms, ERT/ART, problem, mapping, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.ert import short_name
from jaqmoo.hardware.timeloop_fields import parse_factors, parse_permutation
from jaqmoo.hardware.timeloop_yaml import load_accelerator
from jaqmoo.mapping.model import evaluate
from jaqmoo.mapping.timeloop_map import parse_mapping
from jaqmoo.timeloop.inputs import load_timeloop_input

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "timeloop_reference"
SPATIAL_K = REFERENCE / "model-conv1d-oc-3level-spatial-k"
EYERISS = REFERENCE / "mapper-eyeriss-like-conv"
HIER_SPATIAL_K = DATA / "timeloop_hier" / "conv1d_oc_3level_spatial_k.yaml"


def _flat_input(folder: Path) -> dict:
    return yaml.safe_load((folder / "parsed-processed-input.yaml").read_text())


def test_hierarchical_translation_loads_to_the_same_accelerator():
    hier = load_timeloop_input(HIER_SPATIAL_K, ert=SPATIAL_K / "timeloop-model.ERT.yaml",
                               art=SPATIAL_K / "timeloop-model.ART_summary.yaml", name="x")
    flat = load_timeloop_input(SPATIAL_K, name="x")
    assert hier.accelerator == flat.accelerator
    assert hier.problem == flat.problem
    for field in ("temporal", "spatial_x", "spatial_y", "keep"):
        assert np.array_equal(getattr(hier.mapping, field), getattr(flat.mapping, field))
    a = evaluate(hier.problem, hier.accelerator, hier.mapping)
    b = evaluate(flat.problem, flat.accelerator, flat.mapping)
    assert np.array_equal(a.accesses.reads, b.accesses.reads)
    assert a.energy[0] == pytest.approx(b.energy[0])


def test_hierarchical_eyeriss_with_parallel_matches_flattened_reference():
    """The templates' hand-written hierarchical Eyeriss (containers with spatial fan-outs,
    spads in a !Parallel), given the reference's ERT/ART, loads to exactly the Accelerator of
    the flattened reference input."""
    hier = load_accelerator(DATA / "designs" / "eyeriss_like" / "arch.yaml", name="e",
                            ert=EYERISS / "timeloop-mapper.ERT.yaml", art=EYERISS / "timeloop-mapper.ART_summary.yaml")
    flat = load_accelerator(EYERISS, name="e")
    assert hier.levels == flat.levels and hier.compute == flat.compute
    assert set(hier.constraints) == set(flat.constraints)
    assert hier.fanouts == ((1, 1), (1, 1), (14, 1), (1, 12), (1, 1), (1, 1), (1, 1))


@pytest.mark.parametrize("design", ["simba_like", "simple_weight_stationary", "simple_output_stationary"])
def test_hierarchical_and_flattened_fixtures_agree(design):
    """Designs written both ways (tests/data/designs) load to the same levels and constraints
    (the constraints timeloopfe writes for dummy levels are implied and dropped)."""
    hier = load_accelerator(DATA / "designs" / design / "arch.yaml", name="d")
    flat = load_accelerator(DATA / "designs" / design / "flattened.yaml", name="d")
    assert hier.levels == flat.levels
    assert hier.fanouts == flat.fanouts and hier.compute == flat.compute
    assert set(hier.constraints) == set(flat.constraints)


def test_flattened_eyeriss_structure():
    tl = load_timeloop_input(EYERISS)
    acc = tl.accelerator
    assert [lvl.name for lvl in acc.levels] == [
        "DRAM", "shared_glb", "inter_PE_column_spatial", "inter_PE_spatial", "ifmap_spad",
        "weights_spad", "psum_spad"]
    glb = acc.levels[1]
    assert (glb.depth, glb.width, glb.datawidth, glb.block_size) == (16384, 64, 8, 8)
    assert glb.keep == ("Inputs", "Outputs") and glb.bypass == ("Weights",)
    assert glb.read_bandwidth == 16 and glb.read_energy == pytest.approx(18.183829)
    assert acc.levels[2].is_dummy and acc.levels[3].instances == 14
    assert acc.compute.operand_bits == 8 and acc.compute.instances == 168
    assert acc.energy_source.startswith("ERT ")
    layer = tl.problem
    assert (layer.K, layer.C, layer.P, layer.Q, layer.R, layer.S) == (32, 3, 112, 112, 3, 3)
    assert (layer.stride_h, layer.stride_w) == (2, 2)
    kinds = {c.type for c in acc.constraints}
    assert kinds == {"temporal", "spatial", "bypass"}
    spatial = [c for c in acc.constraints if c.type == "spatial" and c.target == "inter_PE_spatial"][0]
    assert spatial.split == 0 and dict(spatial.factors) == {"N": 1, "P": 1, "Q": 1, "R": 1}
    assert spatial.permutation[-1] == "K"  # Timeloop's M


def test_all_design_fixtures_load():
    for path in sorted((DATA / "designs").glob("*/*.yaml")):
        tl = load_timeloop_input(path)
        assert tl.accelerator.n_levels >= 2 and tl.problem is not None


def test_no_ert_means_zero_energy_and_says_so(tmp_path):
    data = _flat_input(SPATIAL_K)
    acc = load_accelerator(data)
    assert "no ERT" in acc.energy_source
    assert all(lvl.read_energy == 0 for lvl in acc.levels)


def test_short_names():
    assert short_name("system_top_level.DRAM[1..1]") == "DRAM"
    assert short_name("a.b.psum_spad[1..168]") == "psum_spad"
    assert short_name("mac") == "mac"


def test_factor_and_permutation_formats():
    assert parse_factors("R=1,P=16,K=2", "x", "f") == {"R": 1, "P": 16, "K": 2}
    assert parse_factors("C1 M8 R1", "x", "f") == {"C": 1, "K": 8, "R": 1}
    assert parse_factors(["N=1", "Q=14"], "x", "f") == {"N": 1, "Q": 14}
    assert parse_permutation("PRKC", "x", "p") == ["P", "R", "K", "C"]
    assert parse_permutation(["Q", "M"], "x", "p") == ["Q", "K"]
    with pytest.raises(JaqmooError, match="repeated"):
        parse_permutation("PP", "x", "p")
    with pytest.raises(JaqmooError, match="unknown problem dimension 'Z'"):
        parse_factors("Z=2", "x", "f")


# ----------------------------------------------------------------------------- bad input

def _write(tmp_path: Path, data: dict, name: str = "arch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _level(data: dict, name: str) -> dict:
    for elem in data["architecture"]["subtree"][0]["local"]:
        if elem["name"].startswith(name):
            return elem
    raise KeyError(name)


def test_missing_depth_names_field_and_file(tmp_path):
    data = _flat_input(SPATIAL_K)
    del _level(data, "GlobalBuffer")["attributes"]["depth"]
    path = _write(tmp_path, data)
    with pytest.raises(JaqmooError) as err:
        load_timeloop_input(path)
    assert "depth" in str(err.value) and str(path) in str(err.value) and "GlobalBuffer" in str(err.value)


def test_missing_datawidth_and_width(tmp_path):
    data = _flat_input(SPATIAL_K)
    del _level(data, "RegisterFile")["attributes"]["datawidth"]
    with pytest.raises(JaqmooError, match="datawidth"):
        load_timeloop_input(_write(tmp_path, data))
    data = _flat_input(SPATIAL_K)
    del _level(data, "RegisterFile")["attributes"]["width"]
    with pytest.raises(JaqmooError, match="width"):
        load_timeloop_input(_write(tmp_path, data))


def test_inconsistent_mesh(tmp_path):
    data = _flat_input(SPATIAL_K)
    _level(data, "GlobalBuffer")["attributes"]["meshX"] = 3
    with pytest.raises(JaqmooError, match="meshX"):
        load_timeloop_input(_write(tmp_path, data))


def test_bad_hierarchical_mesh(tmp_path):
    text = HIER_SPATIAL_K.read_text().replace("spatial: {meshX: 16}", "spatial: {meshX: 0}")
    path = tmp_path / "h.yaml"
    path.write_text(text)
    with pytest.raises(JaqmooError, match="meshX"):
        load_timeloop_input(path)


def test_missing_problem_instance_dim(tmp_path):
    data = _flat_input(SPATIAL_K)
    del data["problem"]["instance"]["K"]
    path = _write(tmp_path, data)
    with pytest.raises(JaqmooError) as err:
        load_timeloop_input(path)
    assert "problem.instance.K" in str(err.value) and str(path) in str(err.value)


def test_missing_problem_instance_section(tmp_path):
    data = _flat_input(SPATIAL_K)
    del data["problem"]["instance"]
    with pytest.raises(JaqmooError, match="problem.instance"):
        load_timeloop_input(_write(tmp_path, data))


def test_missing_architecture(tmp_path):
    data = _flat_input(SPATIAL_K)
    del data["architecture"]
    with pytest.raises(JaqmooError, match="'architecture'"):
        load_timeloop_input(_write(tmp_path, data))


def test_malformed_yaml_reports_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("architecture:\n  subtree: [\n    - name: x\n  oops: : :\n")
    with pytest.raises(JaqmooError) as err:
        load_timeloop_input(path)
    assert "malformed YAML" in str(err.value) and "line" in str(err.value) and str(path) in str(err.value)


def test_missing_file():
    with pytest.raises(JaqmooError, match="not found"):
        load_timeloop_input("/nonexistent/arch.yaml")


def test_bad_mapping_factors(tmp_path):
    tl = load_timeloop_input(SPATIAL_K)
    directives = [{"target": "GlobalBuffer", "type": "temporal", "factors": "C=5", "permutation": "C"}]
    with pytest.raises(JaqmooError, match="C=32"):
        parse_mapping(directives, tl.accelerator, tl.problem, "m.yaml")
    with pytest.raises(JaqmooError, match="no level 'Nowhere'"):
        parse_mapping([{"target": "Nowhere", "type": "temporal", "factors": "C=1"}],
                      tl.accelerator, tl.problem, "m.yaml")
    with pytest.raises(JaqmooError, match="unknown tensor"):
        parse_mapping([{"target": "GlobalBuffer", "type": "bypass", "bypass": ["Psums"]}],
                      tl.accelerator, tl.problem, "m.yaml")


def test_unknown_constraint_target(tmp_path):
    data = _flat_input(SPATIAL_K)
    data["architecture_constraints"] = {"targets": [{"target": "L9", "type": "temporal", "factors": "C=1"}]}
    with pytest.raises(JaqmooError, match="L9"):
        load_timeloop_input(_write(tmp_path, data))


def test_reference_folder_as_source_and_copy(tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(SPATIAL_K, folder)
    acc = load_accelerator(folder)
    assert acc.levels[2].read_energy == pytest.approx(43.353054)


def test_v03_nested_subtree_without_dummy_level_gives_the_same_counts():
    """The spatial-k reference written the v0.3 way (a replicated ``PE[0..15]`` subtree, no
    dummy level, word-bits/block-size attributes, the fan-out below MainMemory) gives the
    same per-level counts and energy as Timeloop's run of the flattened v0.4 input."""
    from jaqmoo.timeloop.check import compare
    from jaqmoo.timeloop.stats import parse_stats

    flat = _flat_input(SPATIAL_K)
    v03 = {
        "architecture": {"version": 0.3, "subtree": [{
            "name": "System_top_level", "attributes": {"technology": "40nm"},
            "local": [{"name": "MainMemory", "class": "DRAM", "attributes": {"word-bits": 8, "block-size": 32}}],
            "subtree": [{"name": "PE[0..15]", "local": [
                {"name": "GlobalBuffer", "class": "SRAM",
                 "attributes": {"depth": 32768, "word-bits": 8, "block-size": 8, "meshX": 16}},
                {"name": "RegisterFile", "class": "regfile",
                 "attributes": {"depth": 64, "word-bits": 8, "block-size": 1, "meshX": 16}},
                {"name": "MACC", "class": "intmac", "attributes": {"datawidth": 8, "meshX": 16}},
            ]}],
        }]},
        "problem": flat["problem"],
        "mapping": [
            {"target": "MainMemory", "type": "spatial", "factors": "K=16", "permutation": "K"},
            {"target": "GlobalBuffer", "type": "temporal", "factors": "R=3 P=1 K=2 C=32", "permutation": "RKC"},
            {"target": "RegisterFile", "type": "temporal", "factors": "P=16", "permutation": "P"},
        ],
    }
    tl = load_timeloop_input(v03, ert=SPATIAL_K / "timeloop-model.ERT.yaml")
    assert [lvl.name for lvl in tl.accelerator.levels] == ["MainMemory", "GlobalBuffer", "RegisterFile"]
    assert tl.accelerator.levels[1].instances == 16 and tl.accelerator.levels[1].block_size == 8
    costs = evaluate(tl.problem, tl.accelerator, tl.mapping)
    stats = parse_stats(SPATIAL_K / "timeloop-model.stats.txt")
    report = compare(tl, costs, stats, "v0.3", "")
    assert report.ok, report.text()


def test_depthwise_problem_maps_channels_to_groups():
    """Timeloop's depthwise shape (C indexes weights, inputs and outputs; no M) is a jaqmoo
    grouped layer: C -> G with K = C = 1, also in the mapping's factors and permutations."""
    data = _flat_input(SPATIAL_K)
    data["problem"] = {
        "shape": {"name": "DepthwiseConv1D", "dimensions": ["C", "R", "P"],
                  "data_spaces": [{"name": "Weights", "projection": [[["C"]], [["R"]]]},
                                  {"name": "Inputs", "projection": [[["C"]], [["R"], ["P"]]]},
                                  {"name": "Outputs", "projection": [[["C"]], [["P"]]], "read_write": True}]},
        "instance": {"C": 32, "R": 3, "P": 16},
    }
    data["mapping"] = [
        {"target": "inter_PE_spatial", "type": "spatial", "factors": "C=16", "permutation": "C"},
        {"target": "GlobalBuffer", "type": "temporal", "factors": "C=2 R=3", "permutation": "RC"},
        {"target": "RegisterFile", "type": "temporal", "factors": "P=16", "permutation": "P"},
    ]
    tl = load_timeloop_input(data, ert=SPATIAL_K / "timeloop-model.ERT.yaml")
    layer = tl.problem
    assert (layer.kind, layer.G, layer.K, layer.C, layer.P, layer.R) == ("depthwise", 32, 1, 1, 16, 3)
    assert tl.dim_aliases["C"] == "G"
    g = 1  # DIMS index of G
    assert tl.mapping.spatial_x[0, 1, g] == 16 and tl.mapping.temporal[0, 2, g] == 2
    a = evaluate(layer, tl.accelerator, tl.mapping).accesses
    # per PE: 2 channels x 3 taps of weights; each channel's 18 inputs once; 32 outputs
    assert a.tile[0, 2].tolist() == [6, 36, 32]
    assert a.reads[0, 0].tolist() == [96, 576, 0] and a.updates[0, 0, 2] == 512


def test_ert_takes_the_most_expensive_argument_set():
    from jaqmoo.hardware.ert import load_tables

    ert = {"ERT": {"version": 0.3, "tables": [{"name": "sys.buf[1..4]", "actions": [
        {"name": "read", "arguments": {"address_delta": 0}, "energy": 1.0},
        {"name": "read", "arguments": {"address_delta": 1}, "energy": 3.0},
        {"name": "write", "energy": 2.0}]}]}}
    table = load_tables(ert)
    assert table.action("buf", "read") == 3.0 and table.action("buf", "write") == 2.0


def test_hardware_layer_knows_no_mappings():
    """Layering: reading an architecture imports nothing from jaqmoo.mapping or above."""
    import subprocess
    import sys

    code = ("import sys, jaqmoo.hardware.timeloop_yaml, jaqmoo.hardware.templates; "
            "bad = [m for m in sys.modules if m.startswith(('jaqmoo.mapping', 'jaqmoo.timeloop', 'jaqmoo.search'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
