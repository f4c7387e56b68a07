"""Results store, checkpoints and resume of the search loop (with a fake evaluator)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from search_fakes import FakeEvaluator, fake_space

from jaqmoo.errors import JaqmooError
from jaqmoo.report import load_run
from jaqmoo.search.problem import Constraints
from jaqmoo.search.session import SearchSettings, search_in_directory
from jaqmoo.search.store import ResultsStore

SETTINGS = SearchSettings(objectives=("accuracy", "energy", "memory"), constraints=Constraints(min_accuracy=0.5),
                          population=12, generations=6, seed=3, batch_size=5)


def _run(path, evaluator, resume=False, settings=SETTINGS):
    return search_in_directory(path, "fake", fake_space(), evaluator, settings, resume=resume, progress=False)


def _strip(records):
    return [{k: v for k, v in r.items()} for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref")
    ev = FakeEvaluator()
    out = _run(path, ev)
    return path, out, ev


def test_every_individual_is_stored_once(reference):
    path, out, ev = reference
    records = ResultsStore(path).read_records()
    assert len(records) == ev.evaluated == out.n_evaluations
    keys = [(r["gen"], r["idx"]) for r in records]
    assert len(set(keys)) == len(keys)
    assert {r["gen"] for r in records} == set(range(1, SETTINGS.generations + 1))
    assert len(out.history) == SETTINGS.generations


@pytest.mark.parametrize("kill_after", [3, 17, 41, 50, 71])
def test_kill_and_resume_equals_uninterrupted(reference, tmp_path, kill_after):
    ref_path, ref_out, ref_ev = reference
    ev = FakeEvaluator(fail_after=kill_after)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, ev)
    stored_before = len(ResultsStore(tmp_path).read_records())
    assert stored_before <= kill_after
    resumed_ev = FakeEvaluator()
    out = _run(tmp_path, resumed_ev, resume=True)
    ref_records = ResultsStore(ref_path).read_records()
    records = ResultsStore(tmp_path).read_records()
    assert records == ref_records  # nothing lost, nothing duplicated, same order and values
    # only what was not flushed before the kill is evaluated again
    assert resumed_ev.evaluated + stored_before == ref_ev.evaluated
    assert np.array_equal(out.algorithm.opt.get("X"), ref_out.algorithm.opt.get("X"))
    assert np.array_equal(out.algorithm.opt.get("F"), ref_out.algorithm.opt.get("F"))
    assert load_run(tmp_path).front["genes"].tolist() == load_run(ref_path).front["genes"].tolist()


def test_torn_last_line_is_ignored(reference, tmp_path):
    ref_path, _, ref_ev = reference
    ev = FakeEvaluator(fail_after=30)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, ev)
    with open(ResultsStore(tmp_path).evaluations_path, "a") as fh:
        fh.write('{"gen": 3, "idx": 7, "genes": [1, 2')  # a write cut by the kill
    _run(tmp_path, FakeEvaluator(), resume=True)
    assert ResultsStore(tmp_path).read_records() == ResultsStore(ref_path).read_records()


def test_resume_extends_generations(reference, tmp_path):
    ref_path, _, _ = reference
    short = SearchSettings(**{**SETTINGS.__dict__, "generations": 3})
    _run(tmp_path, FakeEvaluator(), settings=short)
    _run(tmp_path, FakeEvaluator(), resume=True)
    assert ResultsStore(tmp_path).read_records() == ResultsStore(ref_path).read_records()


def test_fresh_run_refuses_to_overwrite(reference):
    path, _, _ = reference
    with pytest.raises(JaqmooError, match="--resume"):
        _run(path, FakeEvaluator())


def test_resume_without_run_is_an_error(tmp_path):
    with pytest.raises(JaqmooError, match="no run to resume"):
        _run(tmp_path / "none", FakeEvaluator(), resume=True)


def test_resume_with_other_objectives_is_an_error(reference, tmp_path):
    _run(tmp_path, FakeEvaluator(), settings=SearchSettings(**{**SETTINGS.__dict__, "generations": 1}))
    other = SearchSettings(**{**SETTINGS.__dict__, "objectives": ("accuracy", "energy")})
    with pytest.raises(JaqmooError, match="objectives"):
        _run(tmp_path, FakeEvaluator(), resume=True, settings=other)


def test_history_and_meta_written(reference):
    path, out, _ = reference
    meta = json.loads((path / "meta.json").read_text())
    assert meta["baselines"][0]["label"] == "uniform 8-bit"
    hist = (path / "history.csv").read_text().splitlines()
    assert hist[0].startswith("generation,evaluations,front_size,hypervolume")
    assert len(hist) == SETTINGS.generations + 1
    hv = [h["hypervolume"] for h in out.history]
    assert all(v >= 0 for v in hv) and hv[-1] > 0
