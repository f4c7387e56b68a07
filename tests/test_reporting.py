"""The HTML report without a browser: payload contents, sampling, sweeps, per-generation rewrite,
per-layer costs recomputed for the front (checked against the stored totals)."""

from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from search_fakes import run_fake_search

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.report import load_run
from jaqmoo.reporting.breakdown import loop_nest
from jaqmoo.reporting.html import ReportWriter, build_payload, write_report


def dominated(run_payload: dict, column: str) -> np.ndarray:
    """A packed (base64 float32) column of the dominated points."""
    return np.frombuffer(base64.b64decode(run_payload["dominated"][column]), dtype="<f4")


def page_data(path) -> dict:
    """The JSON payload embedded in a written report."""
    text = path.read_text()
    m = re.search(r'<script id="jaqmoo-data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("fake") / "run"
    calls = []
    run_fake_search(path, on_generation=calls.append)
    assert [c["generation"] for c in calls] == [1, 2, 3, 4]  # the callback sees every generation
    return path


def test_loop_nest_from_mapping_summary():
    lines = loop_nest("DRAM[Q4 K2] glb[P4] Y[K2 S3] spad[R3] (gene 3->1)")
    assert lines[0] == "# DRAM" and lines[1] == "for q in range(4):" and lines[2] == "  for k in range(2):"
    assert "      parallel_for k in range(2):" in lines and "        parallel_for s in range(3):" in lines
    assert lines[-2].strip() == "mac()" and lines[-1] == "# (gene 3->1)"


def test_report_is_self_contained_and_matches_the_run(fake_run, tmp_path):
    out = write_report(fake_run, tmp_path / "r.html")
    text = out.read_text()
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=\"http", text)
    assert "Plotly" in text and len(text) > 1_000_000  # plotly.js embedded
    run = load_run(fake_run)
    data = page_data(out)
    r = data["runs"][0]
    assert data["kind"] == "run" and r["n_evaluations"] == len(run.evaluations) == 48
    assert len(r["front"]["accuracy"]) == len(run.front)
    assert r["front_csv"] == run.table().to_csv(index=False)
    assert r["baselines"]["labels"] == ["uniform 8-bit", "uniform 6-bit", "uniform 4-bit"]
    assert len(r["details"]) == len(run.front) + 3
    first = r["details"][0]
    assert [(lay["w"], lay["a"]) for lay in first["layers"]] == \
        [(run.front.iloc[0][f"w.{n}"], run.front.iloc[0][f"a.{n}"]) for n in run.layer_names]
    # the fake run records no model: the stored data is shown and the page says why
    assert not first["check"]["ok"] and "meta.json records no model" in first["check"]["why"]
    assert first["energy_by_level"]["DRAM"] == pytest.approx(run.front.iloc[0]["energy_pj.DRAM"])
    assert r["history"]["generation"] == [1, 2, 3, 4]
    assert not list(tmp_path.glob("*.tmp"))


def test_large_runs_sample_dominated_points_and_say_so(fake_run):
    run = load_run(fake_run)
    r = build_payload(fake_run, max_points=len(run.front) + 5)["runs"][0]
    assert len(r["front"]["accuracy"]) == len(run.front)  # the whole front is kept
    assert len(dominated(r, "accuracy")) == 5 < r["n_dominated"]
    assert any("random sample of 5" in n for n in r["notes"])
    full = build_payload(fake_run)["runs"][0]
    assert len(dominated(full, "accuracy")) == full["n_dominated"] and not any("sample" in n for n in full["notes"])
    # the packed float32 columns hold the dominated points' values
    run_dom = run.evaluations[run.evaluations["valid"] & ~run.evaluations["genes"].isin(run.front["genes"])]
    assert dominated(full, "energy_pj") == pytest.approx(run_dom["energy_pj"].to_numpy(), rel=1e-6)


def test_sweep_report_has_one_entry_per_run(fake_run, tmp_path):
    sweep = tmp_path / "sweep"
    runs = []
    for model, acc in (("a", "eyeriss"), ("b", "eyeriss"), ("a", "simba")):
        name = f"{model}-{acc}"
        shutil.copytree(fake_run, sweep / "runs" / name)
        runs.append({"name": name, "values": {"model": model, "accelerator": acc}})
    runs.append({"name": "b-simba", "values": {"model": "b", "accelerator": "simba"}})  # not started
    (sweep / "sweep.json").write_text(json.dumps({"name": "s", "axes": ["model", "accelerator"],
                                                  "grid": {"rows": "model", "cols": "accelerator"}, "runs": runs}))
    assert main(["report", str(sweep)]) == 0
    data = page_data(sweep / "report.html")
    assert data["kind"] == "sweep" and data["axes"] == ["model", "accelerator"]
    assert [r["name"] for r in data["runs"]] == ["a-eyeriss", "b-eyeriss", "a-simba", "b-simba"]
    assert data["runs"][1]["axes"] == {"model": "b", "accelerator": "eyeriss"}
    assert "error" in data["runs"][3] and "error" not in data["runs"][0]


def test_folder_without_runs_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(JaqmooError, match="holds no run"):
        build_payload(tmp_path)
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_writer_never_breaks_the_search(tmp_path):
    writer = ReportWriter(tmp_path / "missing")
    with pytest.warns(UserWarning, match="could not write the report"):
        assert writer({"generation": 1}) is None
    assert writer.errors


def test_run_writes_the_report_with_recomputed_per_layer_costs(fake_accuracy, tmp_path, monkeypatch):
    """A real (fake-accuracy) `jaqmoo run`: report.html exists after the run, and the front's
    per-layer energy recomputed with jaqmoo.cost adds up to the stored totals."""
    import yaml
    from test_experiment import TINY

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    written = []
    real = write_report

    def spy(*args, **kwargs):
        written.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("jaqmoo.reporting.html.write_report", spy)
    assert main(["run", str(spec), "--out", str(tmp_path / "r"), "--generations", "2", "--pop", "6", "--quiet"]) == 0
    assert len(written) == 3  # after each of the 2 generations, and at the end
    r = page_data(tmp_path / "r" / "report.html")["runs"][0]
    front = pd.read_csv(tmp_path / "r" / "front.csv")
    assert len(r["front"]["accuracy"]) == len(front)
    assert [lay["shape"] for lay in r["layers"]][0] == "K16 P8 Q8 R3 S3"
    for i, det in enumerate(r["details"][: len(front)]):
        assert det["check"]["ok"], det["check"]
        total = sum(sum(lay["energy_by_level"].values()) for lay in det["layers"])
        assert total == pytest.approx(front.iloc[i]["energy_pj"], rel=1e-6)
        for lay in det["layers"]:
            assert lay["recomputed_mapping"] == front.iloc[i][f"map.{lay['name']}"]
            for level, tensors in lay["energy_by_tensor"].items():
                assert sum(tensors.values()) <= lay["energy_by_level"][level] * (1 + 1e-9) + 1e-9
        levels = pd.Series({k: sum(lay["energy_by_level"][k] for lay in det["layers"]) for k in det["energy_by_level"]})
        assert levels.to_dict() == pytest.approx(det["energy_by_level"], rel=1e-6)


def test_report_writer_throttles_only_slow_writes(fake_run, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    writer = ReportWriter(fake_run, out)
    assert writer() == out and writer() == out  # a quick write: every generation
    monkeypatch.setattr("jaqmoo.reporting.html.SLOW_WRITE_S", 0.0)  # now every write counts as slow
    assert writer() == out
    assert writer() is None  # skipped: within 4x the last write's time
    assert writer(force=True) == out  # the final write always happens


def test_breakdown_rebuilt_from_meta_keeps_the_runs_accumulator_bits(fake_accuracy, tmp_path, monkeypatch):
    """A run with a non-default ``quantization.accumulator_bits``: the report rebuilds the
    evaluator from meta.json (a fresh ``jaqmoo report``, not the run's own evaluator) and its
    per-layer energies add up to the stored totals. Without the option (the breakdown's old
    private copy of the evaluator set-up) the recomputed totals differ: the check can fail."""
    import copy

    import yaml
    from test_experiment import TINY

    from jaqmoo.reporting.breakdown import CostBreakdown

    spec = copy.deepcopy(TINY)
    spec.setdefault("quantization", {})["accumulator_bits"] = 8
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--generations", "2", "--pop", "6", "--quiet"]) == 0
    assert main(["report", str(tmp_path / "r"), "--out", str(tmp_path / "again.html")]) == 0
    r = page_data(tmp_path / "again.html")["runs"][0]
    front = pd.read_csv(tmp_path / "r" / "front.csv")
    assert len(front)
    for i, det in enumerate(r["details"][: len(front)]):
        assert det["check"]["ok"], det["check"]
        total = sum(sum(lay["energy_by_level"].values()) for lay in det["layers"])
        assert total == pytest.approx(front.iloc[i]["energy_pj"], rel=1e-6)

    run = load_run(tmp_path / "r")
    meta = copy.deepcopy(run.meta)
    meta["spec"]["quantization"]["accumulator_bits"] = None  # what the breakdown used to rebuild
    other = CostBreakdown.from_meta(meta, run.evaluations)
    checks = [other.detail(row, run.layer_names)["check"] for _, row in run.front.iterrows()]
    assert not all(c["ok"] for c in checks)
