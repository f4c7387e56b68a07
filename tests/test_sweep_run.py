"""Executing sweeps: the dependency loop, lost workers, locks, and (slow) the acceptance runs:
local pool vs Dask LocalCluster give identical fronts; SIGKILL + --resume finishes only what
was missing; a raising run is reported while the others complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sweep_helpers
import yaml

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.locking import FolderLock
from jaqmoo.sweep import expand_sweep, load_sweep, run_sweep
from jaqmoo.sweep.executor import LocalPool, Task, run_graph

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "name": "tiny",
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss", "fixed": {"technology": 45}},
    "quantization": {"weight_bits": [2, 4, 8], "act_bits": [4, 8]},
    "accuracy": {"estimator": "supernet", "train": {"epochs": 1, "batch_size": 64, "n_random": 1}, "val_images": 100},
    "objectives": ["accuracy", "energy"],
    "constraints": {"max_accuracy_drop": 0.3},
    "search": {"population": 8, "generations": 2, "seed_bits": [8, 4], "batch_size": 8},
}


def _sweep_data(cache: Path, **changes) -> dict:
    base = yaml.safe_load(yaml.safe_dump(BASE))
    base["accuracy"]["checkpoint"] = str(cache / "{model}-s{seed}.pt")
    data = {"name": "t", "base": base,
            "axes": {"model": ["simple_cnn", {"name": "mobilenet_v1", "width_mult": 0.25}],
                     "accelerator": ["eyeriss", "simba"], "seed": [0, 1]}}
    data.update(changes)
    return data


# ----------------------------------------------------------------------------- fast


def test_dependencies_and_a_lost_worker_is_retried(tmp_path):
    flag = tmp_path / "crashed"
    tasks = [Task("a", sweep_helpers.crash_once, (str(flag), 1)),
             Task("b", sweep_helpers.record, ("done", 2), deps=("a",)),
             Task("c", sweep_helpers.record, ("failed", 3)),
             Task("d", sweep_helpers.record, ("done", 4), deps=("c",))]
    events = []
    pool = LocalPool(1)
    try:
        results = run_graph(tasks, pool, on_start=lambda t, n: events.append((t.key, n)))
    finally:
        pool.close()
    assert flag.exists()
    assert results["a"] == {"status": "done", "value": 1, "attempts": 2}  # the worker died once: re-run
    assert results["b"]["status"] == "done" and results["b"]["value"] == 2
    assert results["c"]["status"] == "failed"
    assert results["d"]["status"] == "failed" and "not run: c failed" in results["d"]["error"]
    assert ("a", 2) in events and "d" not in [k for k, _ in events]  # d was never submitted
    assert events.index(("a", 2)) < events.index(("b", 1))  # b waited for a


def test_second_sweep_into_a_locked_folder_is_refused(tmp_path):
    plan = expand_sweep(_sweep_data(tmp_path / "cache"), out_dir=tmp_path / "sw")
    with FolderLock(tmp_path / "sw", "sweep.lock", what="sweep"):
        with pytest.raises(JaqmooError, match=r"sw is in use: another sweep is writing it \(.*pid \d+"):
            run_sweep(plan, workers=1, progress=False, echo=lambda s: None)
    assert not (tmp_path / "sw" / "sweep.json").exists()  # nothing written by the refused launch
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(plan.to_dict()))
    with pytest.raises(JaqmooError, match="already holds a sweep; pass --resume"):
        run_sweep(plan, workers=1, progress=False, echo=lambda s: None)


# ----------------------------------------------------------------------------- slow (acceptance)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("supernets")


@pytest.mark.slow
def test_local_pool_and_dask_local_cluster_give_identical_results(tmp_path, cache):
    from distributed import LocalCluster

    plan_pool = expand_sweep(_sweep_data(cache), out_dir=tmp_path / "pool")
    out = run_sweep(plan_pool, workers=2, progress=False, echo=lambda s: None)
    assert not out.failed and len(out.results) == 8 + 4  # 8 runs and 4 supernets (2 models x 2 seeds)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        plan_dask = expand_sweep(_sweep_data(cache), out_dir=tmp_path / "dask")
        out = run_sweep(plan_dask, scheduler=cluster.scheduler_address, progress=False, echo=lambda s: None)
    assert not out.failed
    a, b = load_sweep(tmp_path / "pool"), load_sweep(tmp_path / "dask")
    assert len(a.fronts) >= 8 and set(a.fronts["run"]) == {r["name"] for r in a.runs}
    assert {"model", "accelerator", "seed", "accuracy", "energy_pj"} <= set(a.fronts.columns)
    pd.testing.assert_frame_equal(a.fronts, b.fronts)
    assert (tmp_path / "pool" / "fronts.csv").read_bytes() == (tmp_path / "dask" / "fronts.csv").read_bytes()
    s = a.summary
    assert (s["status"] == "done").all() and (s["hypervolume"] > 0).all()
    assert (s["technology_nm"] == 45).all() and s["energy_source"].str.contains("45nm").all()
    cols = ["run", "hypervolume", "front_size", "best_energy_pj", "uniform8_accuracy"]
    pd.testing.assert_frame_equal(s[cols], b.summary[cols])
    assert (tmp_path / "pool" / "grid.png").stat().st_size > 10_000
    launch = json.loads((tmp_path / "dask" / "sweep.json").read_text())["launches"][-1]
    assert launch["executor"].startswith("Dask cluster at tcp://") and launch["ran"] == 8


def _markers(sweep_dir: Path) -> dict[str, dict]:
    out = {}
    for p in sorted((sweep_dir / "runs").glob("*/sweep_run.json")):
        out[p.parent.name] = json.loads(p.read_text())
    return out


@pytest.mark.slow
def test_sigkill_then_resume_runs_only_what_was_missing_and_a_raising_run_is_reported(tmp_path, cache):
    combos = [{"accelerator": a, "seed": s} for a in ("eyeriss", "simba") for s in (0, 1)]
    combos.append({"accelerator": "simba", "seed": 0, "constraints.max_area_mm2": 1e-9})  # raises in the run
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump(_sweep_data(cache, axes=None, combinations=combos), sort_keys=False))
    out = tmp_path / "sw"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "jaqmoo.cli", "sweep", str(spec), "--out", str(out),
                             "--workers", "1", "--quiet"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while time.time() < deadline:
        done = [n for n, m in _markers(out).items() if m.get("status") == "done"] if out.exists() else []
        if done:
            break
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    before = _markers(out)
    finished = {n: m for n, m in before.items() if m.get("status") == "done"}
    assert 1 <= len(finished) < 5
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--resume", "--quiet"]) == 1  # 1 failure
    after = _markers(out)
    for name, m in finished.items():  # untouched: not run again
        assert after[name] == m
    bad = "simba-s0-max_area_mm2=1e-09"
    assert after[bad]["status"] == "failed" and "max_area_mm2" in after[bad]["error"]
    assert all(m["status"] == "done" for n, m in after.items() if n != bad) and len(after) == 5
    launches = json.loads((out / "sweep.json").read_text())["launches"]
    assert len(launches) == 1  # the killed launch never got to record itself
    assert launches[0]["skipped"] == len(finished) and launches[0]["ran"] == 5 - len(finished)
    summary = load_sweep(out).summary.set_index("run")
    assert summary.loc[bad, "status"] == "failed" and "max_area_mm2" in summary.loc[bad, "error"]
    assert (summary.drop(index=bad)["front_size"] > 0).all()


def test_run_task_records_done_skips_it_after_and_records_a_failure(fake_accuracy, tmp_path, monkeypatch):

    from jaqmoo.sweep.tasks import read_marker, run_task

    spec = yaml.safe_load(yaml.safe_dump(BASE))
    first = run_task("ok", spec, "test", str(tmp_path / "ok"), threads=1)
    assert first["status"] == "done" and first["attempts"] == 1 and first["front_size"] >= 1
    assert read_marker(tmp_path / "ok") == json.loads(json.dumps(first))
    assert (tmp_path / "ok" / "front.csv").is_file() and not (tmp_path / "ok" / ".sweep-run.lock").exists()
    again = run_task("ok", spec, "test", str(tmp_path / "ok"), threads=1)
    assert again["skipped"] and again["finished_at"] == first["finished_at"]  # not run twice
    spec["constraints"] = {"max_area_mm2": 1e-9}
    bad = run_task("bad", spec, "test", str(tmp_path / "bad"), threads=1)
    assert bad["status"] == "failed" and "max_area_mm2" in bad["error"] and "Traceback" in bad["traceback"]
    assert read_marker(tmp_path / "bad")["status"] == "failed"
