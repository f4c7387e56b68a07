"""Nothing lost, nothing mixed (issue 13): damaged result files, repair, two writers, resume checks.

Fault injection on a search with the fake evaluator: corrupt one line, truncate, delete,
two concurrent writers (multiprocessing), a stale lock, a changed spec on resume, and a chain
of kills at random points (a fast in-process chain; a slow one with real SIGKILLs).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import time

import numpy as np
import pytest
from search_fakes import FakeEvaluator, fake_space

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.locking import FolderLock, LockHeld
from jaqmoo.report import load_run
from jaqmoo.search.problem import Constraints
from jaqmoo.search.repair import repair_run
from jaqmoo.search.session import SearchSettings, search_in_directory
from jaqmoo.search.store import QUARANTINE_PREFIX, DamagedRunError, ResultsStore

SETTINGS = SearchSettings(objectives=("accuracy", "energy", "memory"), constraints=Constraints(min_accuracy=0.5),
                          population=12, generations=6, seed=3, batch_size=5)
FORK = multiprocessing.get_context("fork")


def _run(path, evaluator=None, resume=False, settings=SETTINGS):
    return search_in_directory(path, "fake", fake_space(), evaluator or FakeEvaluator(), settings, resume=resume,
                               progress=False)


def _keys(records):
    return [(r["gen"], r["idx"]) for r in records]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref")
    _run(path)
    return path, ResultsStore(path).read_records()


def _copy_run(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _lines(path):
    return (path / "evaluations.jsonl").read_text().splitlines(keepends=True)


# --------------------------------------------------------------------------- damaged records


def test_records_carry_a_checksum_and_read_back_unchanged(reference):
    path, records = reference
    raw = _lines(path)
    assert all('"_crc": "' in line for line in raw)
    assert all("_crc" not in r for r in records)
    assert len(records) == 72 and len(set(_keys(records))) == 72


def test_one_corrupt_line_stops_resume_export_and_load_without_touching_the_file(reference, tmp_path):
    ref_path, ref_records = reference
    run = _copy_run(ref_path, tmp_path / "run")
    lines = _lines(run)
    lines[9] = lines[9].replace('"accuracy": 0.', '"accuracy": 1.')  # valid JSON, altered value
    (run / "evaluations.jsonl").write_text("".join(lines))
    before = (run / "evaluations.jsonl").read_bytes()
    for action in (lambda: ResultsStore(run).read_records(), lambda: load_run(run),
                   lambda: _run(run, resume=True)):
        with pytest.raises(DamagedRunError) as exc:
            action()
        msg = str(exc.value)
        assert "evaluations.jsonl: line 10" in msg and "checksum" in msg and f"jaqmoo repair {run}" in msg
    assert main(["export", str(run), "--all", "--csv", str(tmp_path / "all.csv")]) == 2
    assert not (tmp_path / "all.csv").exists()
    assert (run / "evaluations.jsonl").read_bytes() == before  # nothing rewritten


def test_repair_quarantines_the_bad_line_keeps_the_rest_and_resume_restores_it(reference, tmp_path, capsys):
    ref_path, ref_records = reference
    run = _copy_run(ref_path, tmp_path / "run")
    lines = _lines(run)
    bad = lines[20]
    lines[20] = bad[: len(bad) // 2] + "\n"  # broken JSON in the middle of the file
    (run / "evaluations.jsonl").write_text("".join(lines))
    assert main(["repair", str(run)]) == 0
    out = capsys.readouterr().out
    assert "kept 71 intact records" in out and "1 evaluated individuals are missing" in out
    quarantine = list(run.glob(QUARANTINE_PREFIX + "*"))
    assert len(quarantine) == 1
    entry = json.loads(quarantine[0].read_text())
    assert entry["line"] == 21 and entry["text"] == lines[20].rstrip("\n")
    assert len(ResultsStore(run).read_records()) == 71  # every intact record, also those after line 21
    ev = FakeEvaluator()
    _run(run, ev, resume=True)
    assert ev.evaluated == 1  # only the quarantined individual is evaluated again
    assert ResultsStore(run).read_records() == ref_records


@pytest.mark.parametrize("damage", ["truncate", "delete", "delete_checkpoint"])
def test_lost_records_are_detected_and_resume_re_derives_them(reference, tmp_path, damage):
    ref_path, ref_records = reference
    run = _copy_run(ref_path, tmp_path / "run")
    ev_file = run / "evaluations.jsonl"
    if damage == "truncate":
        data = ev_file.read_bytes()
        ev_file.write_bytes(data[: len(data) // 2])  # cut mid-line: looks like a torn write
        with pytest.raises(DamagedRunError, match="history.csv says 72"):
            load_run(run)
    elif damage == "delete":
        ev_file.unlink()
        with pytest.raises(DamagedRunError, match="is missing"):
            load_run(run)
    else:
        (run / "checkpoint.npz").unlink()
    held = len(ResultsStore(run).read_records())
    ev = FakeEvaluator()
    _run(run, ev, resume=True)
    records = ResultsStore(run).read_records()
    assert records == ref_records  # same records, same order, no duplicates
    assert ev.evaluated == 72 - held  # the stored ones are reused
    assert load_run(run).front["genes"].tolist() == load_run(ref_path).front["genes"].tolist()


def test_resume_never_rewrites_with_fewer_records(reference, tmp_path, monkeypatch):
    ref_path, _ = reference
    run = _copy_run(ref_path, tmp_path / "run")
    store = ResultsStore(run)
    with pytest.raises(JaqmooError, match="refusing to replace 72 records by 10"):
        store.rewrite(store.read_records()[:10])
    sizes = []
    original = ResultsStore.rewrite

    def spy(self, records):
        sizes.append((len(self.read_records()), len(records)))
        return original(self, records)

    monkeypatch.setattr(ResultsStore, "rewrite", spy)
    short = SearchSettings(**{**SETTINGS.__dict__, "generations": 8})
    _run(run, resume=True, settings=short)
    assert all(new >= held for held, new in sizes)
    assert len(ResultsStore(run).read_records()) == 96


def test_damaged_meta_json_is_a_clear_error_and_repair_moves_it_aside(reference, tmp_path):
    ref_path, ref_records = reference
    run = _copy_run(ref_path, tmp_path / "run")
    meta = (run / "meta.json").read_text()
    (run / "meta.json").write_text(meta[: len(meta) // 2])
    for argv in (["export", str(run), "--csv", str(tmp_path / "f.csv")], ["plot", str(run)]):
        with pytest.raises(DamagedRunError, match="meta.json is damaged.*jaqmoo repair"):
            load_run(run)
        assert main(argv) == 2
    report = repair_run(run)
    assert report.meta_moved_to is not None and report.meta_moved_to.read_text() == meta[: len(meta) // 2]
    _run(run, resume=True)  # rewrites meta.json
    assert load_run(run).meta["objectives"] == list(SETTINGS.objectives)
    assert ResultsStore(run).read_records() == ref_records


def test_plot_given_a_file_says_so(reference, capsys):
    path, _ = reference
    assert main(["plot", str(path / "meta.json")]) == 2
    assert "is a file, not a run directory" in capsys.readouterr().err


# --------------------------------------------------------------------------- one writer


def _slow_search(path, started):
    class Slow(FakeEvaluator):
        def evaluate(self, candidates):
            started.set()
            time.sleep(0.05)
            return super().evaluate(candidates)

    _run(path, Slow())


def test_second_writer_is_refused_with_pid_and_host(reference, tmp_path):
    _, ref_records = reference
    started = FORK.Event()
    proc = FORK.Process(target=_slow_search, args=(tmp_path, started))
    proc.start()
    try:
        assert started.wait(60)
        with pytest.raises(LockHeld) as exc:
            _run(tmp_path, resume=True)
        msg = str(exc.value)
        assert f"pid {proc.pid} on host {socket.gethostname()}" in msg and "run.lock" in msg
        assert exc.value.holder["pid"] == proc.pid
    finally:
        proc.join(120)
    assert proc.exitcode == 0
    records = ResultsStore(tmp_path).read_records()
    assert records == ref_records  # the refused writer added nothing
    assert not (tmp_path / "run.lock").exists()  # released at the end


def _hold_lock(path, ready):
    lock = FolderLock(path).acquire()
    ready.set()
    time.sleep(600)
    lock.release()


def test_stale_lock_of_a_killed_holder_is_taken_over(tmp_path):
    ready = FORK.Event()
    proc = FORK.Process(target=_hold_lock, args=(tmp_path, ready))
    proc.start()
    assert ready.wait(60)
    with pytest.raises(LockHeld, match=f"pid {proc.pid}"):
        FolderLock(tmp_path).acquire()
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    assert (tmp_path / "run.lock").exists()  # left behind by the killed holder
    with FolderLock(tmp_path) as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == proc.pid
    _run(tmp_path)  # and a run can use the folder


def test_lock_in_one_process_excludes_a_second_object(tmp_path):
    with FolderLock(tmp_path, "sweep.lock", what="sweep"):
        with pytest.raises(LockHeld, match="another sweep"):
            FolderLock(tmp_path, "sweep.lock", what="sweep").acquire()
        FolderLock(tmp_path).acquire().release()  # another name is another lock


# --------------------------------------------------------------------------- resume compatibility


@pytest.mark.parametrize("change, key", [
    ({"population": 20}, "settings.population: 12 -> 20"),
    ({"seed": 4}, "settings.seed: 3 -> 4"),
    ({"algorithm": "spea2"}, "settings.algorithm: 'nsga2' -> 'spea2'"),
    ({"constraints": Constraints(min_accuracy=0.6)}, "constraints.min_accuracy: 0.5 -> 0.6"),
])
def test_resume_refuses_changed_settings_listing_the_keys(reference, tmp_path, change, key):
    ref_path, ref_records = reference
    run = _copy_run(ref_path, tmp_path / "run")
    meta_before = (run / "meta.json").read_bytes()
    changed = SearchSettings(**{**SETTINGS.__dict__, "generations": 8, **change})
    with pytest.raises(JaqmooError) as exc:
        _run(run, resume=True, settings=changed)
    listed = [line.strip() for line in str(exc.value).splitlines() if line.startswith("  ")]
    assert listed == [key]  # exactly the changed key; generations may change
    assert (run / "meta.json").read_bytes() == meta_before
    assert ResultsStore(run).read_records() == ref_records


def test_resume_refuses_a_changed_search_space(reference, tmp_path):
    from dataclasses import replace

    ref_path, _ = reference
    run = _copy_run(ref_path, tmp_path / "run")
    narrow = replace(fake_space(), weight_choices=(4, 6, 8))
    with pytest.raises(JaqmooError, match=r"space.weight_choices: \[2, 3, 4, 5, 6, 8\] -> \[4, 6, 8\]"):
        search_in_directory(run, "fake", narrow, FakeEvaluator(), SETTINGS, resume=True, progress=False)


def test_resume_records_what_the_search_used(reference, tmp_path):
    ref_path, _ = reference
    run = _copy_run(ref_path, tmp_path / "run")
    _run(run, resume=True, settings=SearchSettings(**{**SETTINGS.__dict__, "generations": 7}))
    meta = json.loads((run / "meta.json").read_text())
    assert meta["settings"]["generations"] == 7 and meta["settings"]["population"] == 12
    assert meta["resumes"][-1]["from_generation"] == 6 and meta["resumes"][-1]["generations"] == 7


# --------------------------------------------------------------------------- kill anywhere, resume


def test_chain_of_kills_at_random_points_equals_uninterrupted(reference, tmp_path):
    _, ref_records = reference
    rng = np.random.default_rng(13)
    kills = sorted(rng.choice(np.arange(1, 72), size=12, replace=False).tolist())
    done, resumed, n_kills = 0, False, 0
    for k in kills:  # each run dies after evaluating (k - done) more individuals
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path, FakeEvaluator(fail_after=k - done), resume=resumed)
        n_kills += 1
        resumed = True
        stored = ResultsStore(tmp_path).read_records()
        assert len(set(_keys(stored))) == len(stored)  # never a duplicate
        done = len(stored)
    _run(tmp_path, resume=True)
    assert n_kills >= 10
    assert ResultsStore(tmp_path).read_records() == ref_records


def _search_child(path, resume):
    class Slow(FakeEvaluator):
        def evaluate(self, candidates):
            time.sleep(0.01 * len(candidates))
            return super().evaluate(candidates)

    _run(path, Slow(), resume=resume)


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(reference, tmp_path):
    _, ref_records = reference
    rng = np.random.default_rng(7)
    resume, kills = False, 0
    for _ in range(60):
        proc = FORK.Process(target=_search_child, args=(tmp_path, resume))
        proc.start()
        proc.join(float(rng.uniform(0.05, 1.0)))
        if proc.exitcode is None:
            os.kill(proc.pid, signal.SIGKILL)  # anywhere: mid-evaluation, mid-append, mid-checkpoint
            proc.join()
            kills += 1
        else:
            assert proc.exitcode == 0
            if kills >= 10:
                break
            # finished before enough kills: start again on a fresh folder
            for f in tmp_path.iterdir():
                f.unlink()
            resume = False
            continue
        resume = ResultsStore(tmp_path).exists()
        stored = ResultsStore(tmp_path).read_records()
        assert len(set(_keys(stored))) == len(stored)
    assert kills >= 10
    assert ResultsStore(tmp_path).read_records() == ref_records


def test_a_different_record_under_a_stored_key_is_an_error_not_a_duplicate(tmp_path):
    store = ResultsStore(tmp_path)
    store.create()
    rec = {"gen": 1, "idx": 0, "genes": [1, 2], "accuracy": 0.5}
    store.append([rec])
    store.append([rec])  # the same record handed back on resume: written once
    with pytest.raises(JaqmooError, match="gen 1 idx 0 is already stored with other values"):
        ResultsStore(tmp_path).append([{**rec, "accuracy": 0.6}])
    assert ResultsStore(tmp_path).read_records() == [rec]
