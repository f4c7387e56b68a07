"""Reading runs back: fronts, exports (CSV/Parquet), plots, CLI export/plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from search_fakes import fake_run_settings, fake_space, run_fake_search

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.report import load_run, mark_front, nondominated_ranks
from jaqmoo.search.problem import Constraints


@pytest.fixture(scope="module")
def run_dir(fake_run_dir):
    return fake_run_dir  # read only here (conftest.py)


def test_front_is_non_dominated_and_valid(run_dir):
    run = load_run(run_dir)
    front = run.front
    assert len(front) > 1 and front["valid"].all() and front["feasible"].all()
    assert (front["accuracy"] >= 0.86).all()
    F = np.stack([1 - front["accuracy"], front["energy_pj"], front["memory_bits"]], axis=1)
    for i in range(len(F)):
        dominated = np.all(F <= F[i], axis=1) & np.any(F < F[i], axis=1)
        assert not dominated.any()
    # every valid evaluation not on the front is dominated by (or equal to) a front point
    valid = run.evaluations[run.evaluations["valid"] & ~run.evaluations["on_front"]]
    Fv = np.stack([1 - valid["accuracy"], valid["energy_pj"], valid["memory_bits"]], axis=1)
    for row in Fv:
        assert np.any(np.all(F <= row, axis=1))


def test_baselines_and_tables(run_dir):
    run = load_run(run_dir)
    base = run.baselines
    assert list(base["baseline"]) == ["uniform 8-bit", "uniform 6-bit", "uniform 4-bit"]
    assert base.iloc[0]["w.layer1"] == 8 and base.iloc[2]["a.layer3"] == 4
    layers = run.layers_table(run.front.iloc[0])
    assert list(layers.columns) == ["layer", "weight_bits", "act_bits", "mapping"]
    assert len(layers) == 5 and layers["mapping"].str.startswith("DRAM").all()
    energy = run.energy_by_level(run.front.iloc[0])
    assert set(energy.index) == {"DRAM", "buf", "MAC"}
    assert energy.sum() == pytest.approx(run.front.iloc[0]["energy_pj"])


def test_export_csv_parquet_roundtrip(run_dir, tmp_path):
    run = load_run(run_dir)
    paths = run.export(csv=tmp_path / "f.csv", parquet=tmp_path / "f.parquet")
    csv = pd.read_csv(paths[0])
    pq = pd.read_parquet(paths[1])
    assert len(csv) == len(pq) == len(run.front)
    for col in ("accuracy", "energy_pj", "memory_bits", "hw.pe", "hw.glb", "w.layer2", "a.layer2", "map.layer2",
                "energy_pj.DRAM", "on_front", "genes"):
        assert col in csv.columns
    assert csv["on_front"].all()
    all_rows = pd.read_csv(run.export(csv=tmp_path / "all.csv", all=True)[0])
    assert len(all_rows) == len(run.evaluations) and not all_rows["on_front"].all()
    with pytest.raises(JaqmooError, match="--csv"):
        run.export()


def test_plots_written(run_dir, tmp_path):
    run = load_run(run_dir)
    paths = run.plot(tmp_path / "front.png", tmp_path / "hv.png")
    for p in paths:
        assert p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG"


def test_cli_export_and_plot(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--csv", str(tmp_path / "front.csv"), "--parquet",
                 str(tmp_path / "front.parquet"), "--all"]) == 0
    assert (tmp_path / "front.csv").exists() and (tmp_path / "front.parquet").exists()
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").exists()
    assert main(["export", str(tmp_path / "nope"), "--csv", "x.csv"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_mark_front_dedupes_genomes():
    df = pd.DataFrame({"genes": ["1 2", "1 2", "3 4"], "feasible": [True, True, True],
                       "accuracy": [0.9, 0.9, 0.8], "energy_pj": [10.0, 10.0, 5.0]})
    out = mark_front(df, ["accuracy", "energy"], {})
    assert out["on_front"].tolist() == [True, False, True]
    out = mark_front(df, ["accuracy", "energy"], {"min_accuracy": 0.85})
    assert out["valid"].tolist() == [True, True, False]


def test_rescored_front_replaces_the_predicted_one(tmp_path):
    import json
    import shutil

    src = tmp_path / "src"
    run_fake_search(src, fake_run_settings(constraints=Constraints(), generations=3, seed=2))
    run = load_run(src)
    pool = nondominated_ranks(run.evaluations, run.objectives, 20)
    assert len(pool) >= min(20, run.evaluations["genes"].nunique()) and pool["valid"].all()
    assert set(run.front["genes"]) <= set(pool["genes"])  # rank 0 comes first
    # the re-scoring reverses the predicted order of accuracy: the front must follow it
    rescored = {g: 1.0 - a for g, a in zip(pool["genes"], pool["accuracy"], strict=True)}
    dst = tmp_path / "dst"
    shutil.copytree(src, dst)
    (dst / "rescored.json").write_text(json.dumps(rescored))
    again = load_run(dst)
    front = again.front
    assert front["accuracy_rescored"].notna().all() and set(front["genes"]) <= set(rescored)
    assert again.evaluations["on_search_front"].sum() == len(run.front)
    F = np.stack([1 - front["accuracy_rescored"], front["energy_pj"], front["memory_bits"]], axis=1)
    for i in range(len(F)):
        assert not (np.all(F <= F[i], axis=1) & np.any(F < F[i], axis=1)).any()


class CountingEstimator:
    """Accuracy = mean weight bits / 10; counts the policies it scores."""

    def __init__(self) -> None:
        self.scored = 0

    def estimate(self, policies):
        self.scored += len(policies)
        return np.array([np.mean(p.weight_bits) / 10 for p in policies])


def test_rescoring_reuses_stored_scores_and_rejects_a_corrupt_file(tmp_path):
    from jaqmoo.experiment.run import rescore_front

    run_fake_search(tmp_path, fake_run_settings(objectives=("accuracy", "energy"), constraints=Constraints(),
                                                population=8, generations=2, seed=3, batch_size=4))
    run, est = load_run(tmp_path), CountingEstimator()
    rescore_front(run, fake_space(), est, 8)
    first = est.scored
    assert first >= 8 and load_run(tmp_path).evaluations["accuracy_rescored"].notna().sum() == first
    rescore_front(load_run(tmp_path), fake_space(), est, 8)  # a re-opened run: nothing new to score
    assert est.scored == first
    (tmp_path / "rescored.json").write_text("{not json")
    with pytest.raises(JaqmooError, match="rescored.json is corrupt.*delete it"):
        load_run(tmp_path)
