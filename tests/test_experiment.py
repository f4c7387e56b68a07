"""Experiments end to end: spec -> prepared run -> search with the real cost model -> outputs.

Accuracy comes from a test-only fake estimator here (the supernet path is exercised by the
slow test at the bottom), so these tests take seconds.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment import prepare_experiment, run_experiment
from jaqmoo.report import load_run
from jaqmoo.search.store import ResultsStore

TINY = {
    "name": "tiny",
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss", "search": {"pe_x": [8, 14], "glb_depth": [4096, 16384, 65536]}},
    "quantization": {"weight_bits": [2, 4, 6, 8], "act_bits": [4, 6, 8]},
    "objectives": ["accuracy", "energy", "memory"],
    "constraints": {"max_accuracy_drop": 0.2},
    "search": {"population": 8, "generations": 3, "batch_size": 4},
}


def _spec(tmp_path, **changes):
    data = yaml.safe_load(yaml.safe_dump(TINY))
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_writes_front_csv_parquet_png(tmp_path, fake_accuracy):
    result = run_experiment(_spec(tmp_path), out=tmp_path / "run", progress=False)
    out = tmp_path / "run"
    for name in ("front.csv", "front.parquet", "evaluations.csv", "evaluations.parquet", "front.png",
                 "hypervolume.png", "history.csv", "meta.json", "spec.yaml"):
        assert (out / name).exists(), name
    front = pd.read_csv(out / "front.csv")
    assert len(front) >= 2 and front["feasible"].all()
    assert {"w.features.0", "a.classifier", "map.features.3", "hw.pe_x", "hw.glb_depth", "energy_pj.DRAM"} <= set(front.columns)
    assert front["map.features.3"].str.contains("DRAM").all()
    run = load_run(out)
    assert len(run.evaluations) == 8 * 3 and len(run.history) == 3
    base8 = run.baselines.iloc[0]
    assert base8["baseline"] == "uniform 8-bit" and base8["hw.pe_x"] == 14  # template default
    # the energy per level adds up to the total
    assert run.energy_by_level(base8).sum() == pytest.approx(base8["energy_pj"], rel=1e-9)
    assert result.run.meta["energy_source"].startswith("built-in")
    assert "front:" in result.summary()


def test_outer_mode_runs_and_is_comparable(tmp_path, fake_accuracy):
    spec = _spec(tmp_path, mapping={"mode": "outer", "candidates": 8})
    run_experiment(spec, out=tmp_path / "outer", progress=False)
    run = load_run(tmp_path / "outer")
    assert any(c.startswith("mapgene.") for c in run.evaluations.columns)
    inner = run_experiment(_spec(tmp_path), out=tmp_path / "inner", progress=False).run
    # the same seeds (uniform 8-bit, default hardware): the inner mapper is at least as good
    e_outer = run.baselines.iloc[0]["energy_pj"]
    e_inner = inner.baselines.iloc[0]["energy_pj"]
    assert e_inner <= e_outer * 1.0001
    assert e_outer < 3 * e_inner


def test_resume_after_kill_matches_uninterrupted(tmp_path, fake_accuracy, monkeypatch):
    from jaqmoo.search import evaluation

    spec = _spec(tmp_path)
    run_experiment(spec, out=tmp_path / "ref", progress=False)
    original = evaluation.JointEvaluator.evaluate
    calls = {"n": 0}

    def dying(self, candidates):
        calls["n"] += 1
        if calls["n"] == 4:  # generation 2, second batch
            raise KeyboardInterrupt
        return original(self, candidates)

    monkeypatch.setattr(evaluation.JointEvaluator, "evaluate", dying)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, out=tmp_path / "killed", progress=False)
    assert len(ResultsStore(tmp_path / "killed").read_records()) == 12
    monkeypatch.setattr(evaluation.JointEvaluator, "evaluate", original)
    with pytest.raises(JaqmooError, match="--resume"):
        run_experiment(spec, out=tmp_path / "killed", progress=False)
    run_experiment(spec, out=tmp_path / "killed", resume=True, progress=False)
    ref = ResultsStore(tmp_path / "ref").read_records()
    got = ResultsStore(tmp_path / "killed").read_records()
    assert got == ref
    assert pd.read_csv(tmp_path / "killed" / "front.csv")["genes"].tolist() == \
        pd.read_csv(tmp_path / "ref" / "front.csv")["genes"].tolist()


def test_cli_run_export_plot(tmp_path, fake_accuracy, capsys):
    spec = _spec(tmp_path)
    assert main(["run", str(spec), "--out", str(tmp_path / "r"), "--generations", "2", "--pop", "6", "--quiet"]) == 0
    assert "front:" in capsys.readouterr().out
    assert len(load_run(tmp_path / "r").evaluations) == 12
    assert main(["run", str(spec), "--out", str(tmp_path / "r"), "--generations", "3", "--pop", "6",
                 "--resume", "--quiet"]) == 0
    assert len(load_run(tmp_path / "r").evaluations) == 18
    assert main(["export", str(tmp_path / "r"), "--csv", str(tmp_path / "f.csv")]) == 0
    assert main(["plot", str(tmp_path / "r")]) == 0


@pytest.mark.parametrize("change, message", [
    ({"accelerator": {"template": "eyerris"}}, "did you mean 'eyeriss'"),
    ({"accelerator": {"template": "eyeriss", "search": ["pe_z"]}}, "did you mean 'pe_"),
    ({"accelerator": {"template": "eyeriss", "search": ["technology"]}}, "not searched"),
    ({"accelerator": {"template": "eyeriss", "fixed": {"pe_x": 0}}}, "pe_x"),
    ({"accelerator": {"template": "eyeriss", "fixed": {"glb_width": 4}}}, "glb_width"),
    ({"quantization": {"fixed_layers": {"features.99": "8/8"}}}, "has no layer"),
    ({"constraints": {"max_area_mm2": 0.001}}, "impossible"),
    ({"accuracy": {"train": {"epoch": 3}}}, "did you mean 'epochs'"),
    ({"accuracy": {"train": {"lr": -1.0}}}, "lr"),
    ({"model": {"name": "simple_cnn", "checkpoint": "/nonexistent/w.pt"}}, "does not exist"),
])
def test_prepare_rejects_bad_specs_before_work(tmp_path, change, message):
    with pytest.raises(JaqmooError) as exc:
        prepare_experiment(_spec(tmp_path, **change))
    assert message in str(exc.value)


def test_cli_bad_spec_exits_2(tmp_path, capsys):
    assert main(["run", str(_spec(tmp_path, search={"populaton": 8}))]) == 2
    assert "did you mean 'population'" in capsys.readouterr().err


@pytest.mark.slow
def test_quickstart_style_run_with_real_supernet(tmp_path):
    """The whole path with a (briefly trained) supernet, as `jaqmoo run` does it."""
    spec = _spec(tmp_path, accuracy={"estimator": "predictor", "predictor_samples": 12,
                                     "checkpoint": str(tmp_path / "sn.pt"), "train": {"epochs": 1}},
                 search={"population": 6, "generations": 2})
    result = run_experiment(spec, out=tmp_path / "run", progress=False)
    assert (tmp_path / "sn.pt").exists()
    front = result.run.front
    assert "accuracy_rescored" in front.columns and front["accuracy_rescored"].notna().all()
    assert result.seconds["supernet_train"] > 0
    assert (tmp_path / "run" / "predictor.npz").exists()  # --resume reuses the fitted predictor
    resumed = run_experiment(spec, out=tmp_path / "run", resume=True, generations=3, progress=False)
    assert len(resumed.run.evaluations) == 18 and "supernet_load" in resumed.seconds
