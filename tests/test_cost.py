"""Network cost (jaqmoo.cost) and the ``jaqmoo cost`` CLI."""

from __future__ import annotations

import math

import pytest

from jaqmoo.cli import main
from jaqmoo.cost import network_cost, packed_bits
from jaqmoo.errors import JaqmooError
from jaqmoo.mapping.mapper import Mapper
from jaqmoo.models import model_workload
from jaqmoo.quant.policy import QuantPolicy

FAST = dict(budget=300, refine_rounds=3)


@pytest.fixture(scope="module")
def workload():
    return model_workload("simple_cnn", (1, 8, 8), num_classes=10)


def test_network_cost_totals_are_layer_sums(eyeriss, workload):
    nc = network_cost(workload, eyeriss, bits=(8, 8, 8), mapper=Mapper(**FAST))
    assert nc.feasible and len(nc.layers) == len(workload.layers)
    assert nc.energy_pj == pytest.approx(sum(lc.energy_pj for lc in nc.layers))
    assert nc.cycles == sum(lc.cycles for lc in nc.layers)
    assert nc.latency_s == pytest.approx(nc.cycles * eyeriss.cycle_seconds)
    assert nc.edp == pytest.approx(nc.energy_pj * nc.cycles)
    assert nc.weight_memory_bits == sum(lc.weight_bits_packed for lc in nc.layers)
    assert nc.activation_memory_bits == max(lc.input_bits_packed + lc.output_bits_packed for lc in nc.layers)
    assert nc.memory_bits == nc.weight_memory_bits + nc.activation_memory_bits
    assert nc.area_mm2 == pytest.approx(eyeriss.area_um2 * 1e-6)
    assert "built-in" in nc.energy_source
    for lc in nc.layers:
        assert sum(lc.energy_by_level.values()) == pytest.approx(lc.energy_pj, rel=1e-9)
        assert 0 < lc.utilization <= 1
    df = nc.to_dataframe()
    assert list(df["layer"]) == [layer.name for layer in workload.layers]
    assert "mapping" in df.columns and df["energy_uj"].sum() == pytest.approx(nc.energy_pj * 1e-6)


def test_lower_bits_pack_tighter_and_cost_less(eyeriss, workload):
    mapper = Mapper(**FAST)
    names = [layer.name for layer in workload.layers]
    e8 = network_cost(workload, eyeriss, QuantPolicy.uniform(names, 8, 8), mapper=mapper)
    e4 = network_cost(workload, eyeriss, QuantPolicy.uniform(names, 4, 4), mapper=mapper)
    assert e4.weight_memory_bits < e8.weight_memory_bits
    assert e4.activation_memory_bits < e8.activation_memory_bits
    assert e4.energy_pj < e8.energy_pj
    mixed = QuantPolicy(tuple(names), (2,) + (8,) * (len(names) - 1), (8,) * len(names))
    em = network_cost(workload, eyeriss, mixed, mapper=mapper)
    assert em.layers[0].bits == (2, 8, 8)
    assert em.weight_memory_bits < e8.weight_memory_bits


def test_packed_bits():
    assert packed_bits(10, 8, 64) == 2 * 64  # 8 values per word
    assert packed_bits(10, 3, 64) == 64  # 21 values per word
    assert packed_bits(10, 5, 16) == 4 * 16  # 3 values per word
    assert packed_bits(3, 32, 16) == 3 * 32


def test_infeasible_network_is_reported_not_raised(eyeriss, workload):
    too_wide = (32, 32, 32)
    with pytest.raises(JaqmooError, match="wider than a word"):
        network_cost(workload, eyeriss, bits=too_wide, mapper=Mapper(**FAST))
    nc = network_cost(workload, eyeriss, bits=too_wide, mapper=Mapper(**FAST), raise_on_infeasible=False)
    assert not nc.feasible and "wider than a word" in nc.reason
    assert math.isinf(nc.energy_pj)
    assert "INFEASIBLE" in nc.summary()


def test_bad_arguments(eyeriss, workload):
    with pytest.raises(JaqmooError, match="metric"):
        network_cost(workload, eyeriss, metric="watts")
    with pytest.raises(JaqmooError, match="bits"):
        network_cost(workload, eyeriss, bits=(8, 8))
    wrong = QuantPolicy.uniform(["x"], 8, 8)
    with pytest.raises(JaqmooError, match="policy"):
        network_cost(workload, eyeriss, wrong)


def test_cli_cost_simple_cnn(tmp_path, capsys):
    out = tmp_path / "layers.csv"
    rc = main(["cost", "--model", "simple_cnn", "--input", "1x8x8", "--accelerator", "eyeriss", "--bits", "4/8",
               "--num-classes", "10", "--budget", "200", "--csv", str(out), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "energy" in text and "features.0" in text and "weights" in text
    import pandas as pd

    df = pd.read_csv(out)
    assert len(df) == 5 and (df["w_bits"] == 4).all() and (df["in_bits"] == 8).all()


def test_cli_cost_mobilenet_v2_small_input(tmp_path, capsys):
    bits = tmp_path / "bits.yaml"
    bits.write_text("default: 8/8\nlayers:\n  features.0.0: {w: 4, a: 8}\n")
    rc = main(["cost", "--model", "mobilenet_v2", "--input", "1x28x28", "--accelerator", "eyeriss",
               "--bits-file", str(bits), "--num-classes", "10", "--budget", "100", "--metric", "edp",
               "--quiet", "--set", "glb_depth=8192"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "features.0.0" in text and "classifier.1" in text and "best by edp" in text


def test_cli_cost_bad_input(capsys):
    assert main(["cost", "--model", "simple_cnn", "--input", "8x8", "--quiet"]) == 2
    assert "--input" in capsys.readouterr().err
    assert main(["cost", "--model", "simple_cnn", "--input", "1x8x8", "--set", "pe_x=0", "--quiet"]) == 2
