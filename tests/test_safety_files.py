"""Issue 28: nothing read back from a folder runs code; data-only checkpoints resume exactly;
old-format folders still open; full / read-only disks fail cleanly and leave nothing behind;
symlinks are replaced, CSV formulas escaped, report data escaped."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from search_fakes import FakeEvaluator, fake_space

from jaqmoo.cli import main
from jaqmoo.datafile import DataFileError, load_bundle, save_bundle
from jaqmoo.errors import JaqmooError
from jaqmoo.reporting.html import embedded_json, render_html, write_report
from jaqmoo.reporting.run import load_run
from jaqmoo.safe_write import (
    DiskWriteError,
    append_durable,
    atomic_write_text,
    escape_formulas,
    write_csv,
)
from jaqmoo.search.problem import Constraints
from jaqmoo.search.repair import repair_run
from jaqmoo.search.session import SearchSettings, search_in_directory
from jaqmoo.search.store import ResultsStore

SETTINGS = SearchSettings(objectives=("accuracy", "energy", "memory"), constraints=Constraints(min_accuracy=0.5),
                          population=10, generations=4, seed=5, batch_size=5)


class Payload:
    """Unpickling this creates ``marker`` (proof that a pickle was executed)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _run(path, evaluator=None, resume=False, settings=SETTINGS):
    return search_in_directory(path, "fake", fake_space(), evaluator or FakeEvaluator(), settings, resume=resume,
                               progress=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "run"
    _run(path)
    return path


def _no_temp_files(folder: Path) -> None:
    left = [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp")]
    assert not left, left


# ----------------------------------------------------------------------------- no code from data


def test_checkpoint_is_plain_data(reference):
    ckpt = reference / "checkpoint.npz"
    assert ckpt.is_file() and not (reference / "checkpoint.pkl").exists()
    with zipfile.ZipFile(ckpt) as zf:
        for name in zf.namelist():
            with zf.open(name) as fh:
                arr = np.lib.format.read_array(fh, allow_pickle=False)  # raises for any object array
                assert not arr.dtype.hasobject


def test_planted_pickle_checkpoint_is_never_loaded(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "checkpoint.npz").unlink()
    marker = tmp_path / "pwned"
    (run / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(JaqmooError, match=r"old pickled format.*jaqmoo repair"):
        _run(run, resume=True)
    report = repair_run(run)  # the command users run on damaged folders: moves it aside, unread
    assert report.checkpoint_moved_to is not None and report.checkpoint_moved_to.exists()
    assert "unread" in report.summary()
    out = _run(run, FakeEvaluator(), resume=True)  # replayed from the seed: every record reused
    assert ResultsStore(run).read_records() == ResultsStore(reference).read_records()
    assert out.n_evaluations == len(ResultsStore(reference).read_records())
    assert not marker.exists()


def test_npz_with_a_pickled_object_array_is_refused(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    marker = tmp_path / "pwned"
    arr = np.empty(1, dtype=object)
    arr[0] = Payload(marker)
    np.savez(run / "checkpoint.npz", evil=arr, __json__=np.frombuffer(b"{}", dtype=np.uint8))
    with pytest.raises(DataFileError, match="not a plain-data file"):
        ResultsStore(run).load_checkpoint()
    with pytest.raises(JaqmooError):
        _run(run, resume=True)
    assert repair_run(run).checkpoint_moved_to is not None  # set aside, unread; resume then replays
    assert not marker.exists()


@pytest.mark.parametrize("algorithm", ["nsga2", "nsga3", "unsga3", "smsemoa", "spea2", "rnsga2", "bits-nsga2"])
def test_kill_and_resume_with_data_checkpoints_equals_uninterrupted(tmp_path, algorithm):
    settings = SearchSettings(**{**SETTINGS.__dict__, "algorithm": algorithm})
    ref = _run(tmp_path / "ref", settings=settings)
    ev = FakeEvaluator(fail_after=23)  # killed inside generation 3
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", ev, settings=settings)
    assert (tmp_path / "cut" / "checkpoint.npz").exists()
    out = _run(tmp_path / "cut", FakeEvaluator(), resume=True, settings=settings)
    assert ResultsStore(tmp_path / "cut").read_records() == ResultsStore(tmp_path / "ref").read_records()
    assert np.array_equal(out.algorithm.opt.get("X"), ref.algorithm.opt.get("X"))
    assert load_run(tmp_path / "cut").front["genes"].tolist() == load_run(tmp_path / "ref").front["genes"].tolist()


def test_old_format_run_folder_opens_in_export_and_report(reference, tmp_path, capsys):
    run = tmp_path / "old"
    shutil.copytree(reference, run)
    (run / "checkpoint.npz").unlink()
    marker = tmp_path / "pwned"
    (run / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(marker)))
    (run / "predictor.pkl").write_bytes(pickle.dumps(Payload(marker)))
    assert main(["export", str(run), "--csv", str(tmp_path / "f.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "f.csv")) == len(load_run(reference).front)
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert main(["plot", str(run), "--out", str(tmp_path / "p.png")]) == 0
    assert not marker.exists()


def test_predictor_file_is_data_and_a_pickle_is_never_opened(tmp_path):
    from jaqmoo.experiment import accuracy
    from jaqmoo.quant.estimators import PredictorEstimator
    from jaqmoo.quant.policy import QuantPolicy

    names = ("a", "b", "c")
    rng = np.random.default_rng(0)
    pols = [QuantPolicy(names, tuple(rng.integers(2, 9, 3).tolist()), tuple(rng.integers(2, 9, 3).tolist()))
            for _ in range(30)]
    acc = [0.5 + 0.01 * sum(p.weight_bits) for p in pols]
    fitted = PredictorEstimator("monotone").fit(pols, acc)
    path = tmp_path / "predictor.npz"
    accuracy._save_predictor(path, {"k": 1}, fitted)
    back = accuracy._load_predictor(path, {"k": 1}, PredictorEstimator.from_data)
    assert np.allclose(back.estimate(pols), fitted.estimate(pols))
    assert accuracy._load_predictor(path, {"k": 2}, PredictorEstimator.from_data) is None  # stale key: refit
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(Payload(marker)))  # a pickle under the new name
    with pytest.warns(UserWarning, match="unusable predictor"):
        assert accuracy._load_predictor(path, {"k": 1}, PredictorEstimator.from_data) is None
    assert not marker.exists()


def test_mapper_cache_pickles_are_never_unpickled(tmp_path):
    import hashlib

    from jaqmoo.mapping.cache import CacheWarning, TileSetCache

    marker = tmp_path / "pwned"
    cache = TileSetCache(tmp_path / "cache")
    key = "ab" * 32
    payload = pickle.dumps(Payload(marker))
    for fmt in ("jaqmoo-tiles-1", "jaqmoo-tiles-2"):  # the old pickled format, and a pickle under the new name
        path = cache.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{fmt} {hashlib.sha256(payload).hexdigest()}\n".encode() + payload)  # a valid checksum
        with pytest.warns(CacheWarning, match="ignoring damaged file"):
            assert cache.load(key) is None
    assert not marker.exists()


def test_bundle_refuses_zip_bombs_and_non_bundles(tmp_path):
    save_bundle(tmp_path / "ok.npz", {"a": 1}, {"x": np.arange(3)})
    header, arrays = load_bundle(tmp_path / "ok.npz", "fix")
    assert header == {"a": 1} and arrays["x"].tolist() == [0, 1, 2]
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="damaged"):
        load_bundle(tmp_path / "bad.npz", "fix it")


# ----------------------------------------------------------------------------- full and read-only disks


def _failing(monkeypatch, code: int, after: int = 0, only: str | None = None):
    """Make the ``after``-th and later fsyncs of files (whose name contains ``only``) fail with ``code``."""
    real_fsync, calls = os.fsync, {"n": 0}

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if only is None or only in name:
            calls["n"] += 1
            if calls["n"] > after:
                raise OSError(code, os.strerror(code))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_atomic_write_failure_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch, code):
    target = tmp_path / "report.html"
    target.write_text("old")
    _failing(monkeypatch, code)
    with pytest.raises(DiskWriteError, match=r"cannot write the report .*No partial file"):
        atomic_write_text(target, "x" * 5_000_000, "the report")
    assert target.read_text() == "old"
    _no_temp_files(tmp_path)


def test_failed_append_cuts_the_torn_line_back(tmp_path, monkeypatch):
    path = tmp_path / "evaluations.jsonl"
    path.write_text('{"a": 1}\n')
    _failing(monkeypatch, errno.ENOSPC)
    with pytest.raises(DiskWriteError, match="disk is full"):
        append_durable(path, '{"b": 2}\n{"c": 3}\n', "the evaluations file")
    assert path.read_text() == '{"a": 1}\n'


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_disk_failure_mid_run_is_one_clear_message_and_resume_finishes(reference, tmp_path, monkeypatch, code):
    run = tmp_path / "run"
    _failing(monkeypatch, code, after=12, only=str(run))  # some generations get stored first
    with pytest.raises(JaqmooError) as err:
        _run(run)
    msg = str(err.value)
    assert "cannot write" in msg and "--resume" in msg and "nothing stored was lost" in msg
    assert not isinstance(err.value, DiskWriteError) or "--resume" in msg
    _no_temp_files(run)
    ResultsStore(run).read_records()  # no torn or damaged line
    monkeypatch.undo()
    _run(run, resume=True)
    assert ResultsStore(run).read_records() == ResultsStore(reference).read_records()


def test_cli_on_a_read_only_folder_gives_one_message(reference, tmp_path, monkeypatch, capsys):
    run = tmp_path / "ro"
    shutil.copytree(reference, run)
    real_replace = os.replace

    def no_writes(src, dst, *args, **kwargs):  # the folder turned read-only while the file was written
        if str(dst).startswith(str(run)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", no_writes)
    for argv in (["report", str(run)], ["plot", str(run)], ["export", str(run), "--csv", str(run / "f.csv")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("jaqmoo: error: cannot write") and "read-only" in err and "Traceback" not in err
    monkeypatch.undo()
    _no_temp_files(run)


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_real_full_and_read_only_tmpfs(reference, tmp_path, capsys):
    mnt = tmp_path / "mnt"
    if not _mount(mnt, "size=400k"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        shutil.copytree(reference, mnt / "done")
        (mnt / "filler").write_bytes(b"\0" * (400 * 1024 - sum(
            p.stat().st_size for p in (mnt / "done").rglob("*") if p.is_file()) - 24 * 1024))
        with pytest.raises(JaqmooError, match=r"disk is full.*--resume"):  # a run that fills the disk
            _run(mnt / "run", settings=SearchSettings(**{**SETTINGS.__dict__, "generations": 40}))
        _no_temp_files(mnt)
        ResultsStore(mnt / "run").read_records()
        assert main(["report", str(mnt / "done")]) == 2  # the report does not fit either
        assert "disk is full" in capsys.readouterr().err
        _no_temp_files(mnt)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        for argv in (["report", str(mnt / "done")], ["plot", str(mnt / "done")]):
            assert main(argv) == 2
            assert "read-only" in capsys.readouterr().err
        with pytest.raises(JaqmooError):
            _run(mnt / "done", resume=True)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ----------------------------------------------------------------------------- links, spreadsheets, HTML


def test_atomic_writes_replace_a_planted_symlink(reference, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "new-out"
    out.mkdir()
    (out / "front.csv").symlink_to(victim)
    load_run(reference).export(csv=out / "front.csv")
    assert victim.read_text() == "precious"
    assert not (out / "front.csv").is_symlink() and "genes" in (out / "front.csv").read_text()


def test_csv_text_cells_that_spreadsheets_run_are_escaped(tmp_path):
    df = pd.DataFrame({"axis": ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "plain", None],
                       "value": [-1.5, 2, 3, 4, 5, 6]})
    write_csv(df, tmp_path / "s.csv")
    back = pd.read_csv(tmp_path / "s.csv")
    assert back["axis"].tolist()[:5] == ["'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "plain"]
    assert back["value"].tolist() == [-1.5, 2, 3, 4, 5, 6]  # numbers untouched
    assert escape_formulas(pd.DataFrame({"=a": [1]})).columns.tolist() == ["'=a"]


def test_report_data_cannot_end_its_script_element():
    name = "<!--<script>x</script></script><!--"
    text = embedded_json({"title": name, "runs": [{"name": name, "note": "a & b > c"}]})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["runs"][0]["name"] == name


def test_report_of_a_run_with_a_hostile_name(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    meta = json.loads((run / "meta.json").read_text())
    meta["name"] = "<!--<script>"
    (run / "meta.json").write_text(json.dumps(meta))
    page = write_report(run, tmp_path / "r.html").read_text()
    data = page.split('<script id="jaqmoo-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and json.loads(data)["runs"][0]["name"] == "<!--<script>"
    assert page.index('id="jaqmoo-data"') < page.rindex("<script>")  # report.js still follows the data
    assert "&lt;!--&lt;script&gt;" in render_html({"title": "<!--<script>", "runs": []})  # the title is escaped


def test_crafted_supernet_checkpoint_is_refused_unexecuted(tmp_path):
    import torch

    from jaqmoo.quant.supernet import read_checkpoint

    marker = tmp_path / "pwned"
    path = tmp_path / "supernet.pt"
    torch.save({"format": "x", "evil": Payload(marker)}, path)  # torch.save pickles the payload
    with pytest.raises(JaqmooError, match="corrupted or not a jaqmoo supernet checkpoint"):
        read_checkpoint(path)
    assert not marker.exists()


def test_a_planted_lock_symlink_is_refused_not_written(tmp_path):
    from jaqmoo.locking import FolderLock

    victim = tmp_path / "victim"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.lock").symlink_to(victim)
    with pytest.raises(JaqmooError, match="symbolic link"):
        FolderLock(run).acquire()
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("tamper", ["type", "shape", "class", "attribute"])
def test_tampered_checkpoint_state_is_a_clear_error(reference, tmp_path, tamper):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    header, arrays = load_bundle(run / "checkpoint.npz", "fix")
    state = header["algorithm"]["state"]
    if tamper == "type":
        state["n_iter"] = {"v": "many"}
    elif tamper == "shape":
        key = state["pop"]["fields"]["_X"]["a"]
        arrays[key] = arrays[key][:, :2]
    elif tamper == "class":
        header["algorithm"]["class"] = "SomethingElse"
    else:
        state["evaluator.__class__"] = {"v": 1}
    save_bundle(run / "checkpoint.npz", header, arrays)
    with pytest.raises(JaqmooError, match="checkpoint"):
        _run(run, resume=True, settings=SearchSettings(**{**SETTINGS.__dict__, "generations": 6}))
