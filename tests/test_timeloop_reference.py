"""The cost model against real Timeloop runs (tests/data/timeloop_reference).

Every folder: our per-level/tensor reads, fills and updates equal Timeloop's, energy per
level and in total within 1 %, cycles equal. Also the CLI and the failure path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from jaqmoo.cli import main
from jaqmoo.hardware.spec import TENSORS
from jaqmoo.mapping.model import evaluate
from jaqmoo.timeloop.check import check_reference, load_reference

pytestmark = pytest.mark.usefixtures("model_backend")  # both backends (tests/conftest.py)

REFERENCE = Path(__file__).parent / "data" / "timeloop_reference"
FOLDERS = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())


def test_all_reference_folders_present():
    assert len(FOLDERS) == 10
    assert sum(f.startswith("model-") for f in FOLDERS) == 9


@pytest.mark.parametrize("folder", FOLDERS)
def test_reference_matches_timeloop(folder):
    report = check_reference(REFERENCE / folder)
    assert report.ok, report.text()
    compared = [r for r in report.rows if r.quantity in ("reads", "fills", "updates")]
    assert compared and all(r.theirs is not None for r in compared)
    assert report.cycles == report.reference_cycles
    assert report.energy_pj == pytest.approx(report.reference_energy_pj, rel=1e-3)
    assert report.utilization == pytest.approx(report.reference_utilization, abs=5e-3)


@pytest.mark.parametrize("folder", FOLDERS)
def test_capacity_and_output_partitions_match(folder):
    """Utilized capacity of every stored tensor and the Outputs' partition sizes."""
    tl, mapping, stats = load_reference(REFERENCE / folder)
    acc = evaluate(tl.problem, tl.accelerator, mapping).accesses
    for lvl, name in enumerate(acc.level_names):
        for t, tensor in enumerate(TENSORS):
            ref = stats.levels.get(name).tensors.get(tensor) if name in stats.levels else None
            if ref is None:
                assert not acc.keep[0, lvl, t]
                continue
            assert acc.tile[0, lvl, t] == ref.capacity
            assert acc.instances[0, lvl] == ref.instances
            if tensor == "Outputs":
                assert acc.partition[0, lvl, t] == ref.partition


def test_eyeriss_reference_numbers():
    report = check_reference(REFERENCE / "mapper-eyeriss-like-conv")
    assert report.ok
    assert report.energy_pj / 1e6 == pytest.approx(59.28, abs=0.005)
    assert report.cycles == 86016
    assert report.utilization == pytest.approx(0.75)


def test_check_fails_on_a_different_mapping(tmp_path):
    """The check must be able to fail: evaluate another mapping against the same stats."""
    folder = tmp_path / "ref"
    shutil.copytree(REFERENCE / "model-conv1d-oc-2level-tiled", folder)
    data = (folder / "parsed-processed-input.yaml").read_text()
    changed = data.replace("factors: R=1,P=16,K=16", "factors: R=1,P=16,K=8").replace(
        "factors: R=3,P=1,K=2", "factors: R=3,P=1,K=4")
    assert changed != data
    (folder / "parsed-processed-input.yaml").write_text(changed)
    report = check_reference(folder)
    assert not report.ok
    assert any(r.quantity == "reads" for r in report.failures)
    assert main(["timeloop", "check", str(folder)]) == 1


def test_cli_check_passes(capsys):
    assert main(["timeloop", "check", str(REFERENCE / "mapper-eyeriss-like-conv")]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "psum_spad" in out and "86016" in out


def test_cli_missing_stats_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "ref"
    shutil.copytree(REFERENCE / "model-conv1d-1level", folder)
    (folder / "timeloop-model.stats.txt").unlink()
    assert main(["timeloop", "check", str(folder)]) == 2
    assert "stats.txt" in capsys.readouterr().err


def test_map_txt_and_input_mapping_agree():
    """The printed loop nest parses to the same mapping as the input's mapping section."""
    from jaqmoo.mapping.timeloop_map import parse_map_txt

    for folder in FOLDERS:
        if not folder.startswith("model-"):
            continue
        tl, mapping, _ = load_reference(REFERENCE / folder)
        text = next((REFERENCE / folder).glob("*.map.txt")).read_text()
        parsed = parse_map_txt(text, tl.accelerator, tl.problem)
        a = evaluate(tl.problem, tl.accelerator, mapping).accesses
        b = evaluate(tl.problem, tl.accelerator, parsed).accesses
        for field in ("reads", "fills", "updates"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), folder


@pytest.mark.slow
def test_cli_search_beats_timeloop(capsys):
    assert main(["timeloop", "check", "--search", str(REFERENCE / "mapper-eyeriss-like-conv")]) == 0
    assert "PASS" in capsys.readouterr().out
