"""Nothing lost, nothing mixed (issue 13), at the experiment level: resume compatibility of
specs, the run lock around run_experiment, supernet identity, validation before work."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import pytest
import yaml
from test_experiment import TINY, _spec

import jaqmoo.experiment.accuracy as accuracy_module
from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment import prepare_experiment, run_experiment
from jaqmoo.experiment.spec import load_spec, parse_spec
from jaqmoo.locking import FolderLock, LockHeld
from jaqmoo.quant.policy import QuantPolicy

# --------------------------------------------------------------------------- resume compatibility


@pytest.mark.parametrize("change, override, listed", [
    ({"quantization": {"weight_bits": [4, 6, 8], "act_bits": [4, 6, 8]}}, {}, ["quantization.weight_bits: [2, 4, 6, 8] -> [4, 6, 8]"]),
    ({"seed": 5}, {}, ["seed: 0 -> 5"]),
    ({}, {"population": 10}, ["search.population: 8 -> 10"]),
    ({"objectives": ["accuracy", "energy"]}, {}, ["objectives: ['accuracy', 'energy', 'memory'] -> ['accuracy', 'energy']"]),
])
def test_resume_with_a_changed_spec_is_refused_before_work(tmp_path, fake_accuracy, change, override, listed):
    out = tmp_path / "run"
    run_experiment(_spec(tmp_path), out=out, generations=1, progress=False)
    before = {f: (out / f).read_bytes() for f in ("spec.yaml", "meta.json", "evaluations.jsonl")}
    calls = fake_accuracy["n"]
    with pytest.raises(JaqmooError) as exc:
        run_experiment(_spec(tmp_path, **change), out=out, resume=True, generations=2, progress=False, **override)
    got = [line.strip() for line in str(exc.value).splitlines() if line.startswith("  ")]
    assert got == listed and "only search.generations" in str(exc.value)
    assert fake_accuracy["n"] == calls  # refused before any training / estimator setup
    assert {f: (out / f).read_bytes() for f in before} == before  # nothing overwritten


def test_resume_may_change_generations_and_meta_says_so(tmp_path, fake_accuracy):
    out = tmp_path / "run"
    run_experiment(_spec(tmp_path), out=out, generations=1, progress=False)
    run_experiment(_spec(tmp_path), out=out, resume=True, generations=2, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["settings"]["generations"] == 2 and meta["spec"]["search"]["generations"] == 2
    assert meta["resumes"][0]["from_generation"] == 1
    assert meta["settings"]["population"] == 8


def test_run_experiment_takes_the_run_lock(tmp_path, fake_accuracy):
    out = tmp_path / "run"
    with FolderLock(out):
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
            run_experiment(_spec(tmp_path), out=out, progress=False)
        assert main(["run", str(_spec(tmp_path)), "--out", str(out), "--quiet"]) == 2
    assert fake_accuracy["n"] == 0
    run_experiment(_spec(tmp_path), out=out, generations=1, progress=False)
    assert not (out / "run.lock").exists()


# --------------------------------------------------------------------------- supernet identity


def _splits():
    from jaqmoo.data import load_dataset

    return load_dataset("digits", seed=0)


def _save_supernet(spec, splits, path):
    from jaqmoo.quant.supernet import build_supernet

    cfg = accuracy_module.train_config(spec, splits, path, progress=False)
    net = build_supernet(cfg.model, splits.num_classes, splits.in_channels, splits.input_size, cfg.width_mult,
                         splits.name, cfg.bits, cfg.per_channel, cfg.csq_fraction, cfg.fixed_first_last)
    cfg_dict = asdict(cfg)
    cfg_dict["bits"] = list(cfg.bits)
    net.save(path, epoch=cfg.epochs + cfg.float_epochs, config=cfg_dict)


def _tiny(**changes):
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data.update(changes)
    return parse_spec(data, "tiny.yaml")


def test_a_supernet_for_another_network_is_refused_listing_the_keys(tmp_path):
    splits = _splits()
    ckpt = tmp_path / "sn.pt"
    full = _tiny(accuracy={"checkpoint": str(ckpt), "train": {"epochs": 1}})
    _save_supernet(full, splits, ckpt)
    net, _, trained = accuracy_module.obtain_supernet(full, splits, tmp_path / "unused.pt", progress=False)
    assert not trained and net.meta.width_mult == 1.0
    half = _tiny(model={"name": "simple_cnn", "width_mult": 0.5},
                 accuracy={"checkpoint": str(ckpt), "train": {"epochs": 2}})
    with pytest.raises(JaqmooError) as exc:
        accuracy_module.obtain_supernet(half, splits, tmp_path / "unused.pt", progress=False)
    listed = [line.strip() for line in str(exc.value).splitlines() if line.startswith("  ")]
    assert listed == ["width_mult: 1.0 -> 0.5", "recipe.epochs: 1 -> 2"]
    assert "accuracy.cache_dir" in str(exc.value)


def test_cache_file_names_derive_from_the_identity(tmp_path):
    splits = _splits()
    acc = {"cache_dir": str(tmp_path / "cache"), "train": {"epochs": 1}}
    base = accuracy_module.supernet_path(_tiny(accuracy=acc), splits, tmp_path / "d.pt")
    again = accuracy_module.supernet_path(_tiny(accuracy=acc, seed=4), splits, tmp_path / "d.pt")
    half = accuracy_module.supernet_path(_tiny(accuracy=acc, model={"name": "simple_cnn", "width_mult": 0.5}),
                                         splits, tmp_path / "d.pt")
    recipe = accuracy_module.supernet_path(_tiny(accuracy={**acc, "train": {"epochs": 2}}), splits, tmp_path / "d.pt")
    bits = accuracy_module.supernet_path(_tiny(accuracy=acc, quantization={"weight_bits": [4, 8], "act_bits": [4, 8]},
                                               search={"seed_bits": [8, 4], "population": 8}), splits, tmp_path / "d.pt")
    assert base.parent == tmp_path / "cache" and base.name.startswith("simple_cnn-digits-")
    assert base == again  # the search seed does not define the supernet
    assert len({base, half, recipe, bits}) == 4


# --------------------------------------------------------------------------- validation before work


@pytest.mark.parametrize("change, message", [
    ({"accuracy": {"checkpoint": "{tmp}"}}, "accuracy.checkpoint {tmp} is a folder"),
    ({"accuracy": {"checkpoint": "{tmp}/afile/sn.pt"}}, "checkpoint's folder {tmp}/afile is a file, not a folder"),
    ({"accuracy": {"cache_dir": "{tmp}/afile"}}, "accuracy.cache_dir {tmp}/afile is a file"),
    ({"accuracy": {"checkpoint": "{tmp}/a.pt", "cache_dir": "{tmp}"}}, "not both"),
    ({"output": {"dir": "{tmp}/afile"}}, "output folder (output.dir / --out) {tmp}/afile is a file"),
    ({"model": {"name": "simple_cnn", "checkpoint": "{tmp}"}}, "model.checkpoint {tmp} is a folder"),
    ({"accuracy": {"train": {"epochs": "five"}}}, "accuracy.train.epochs: expected an integer, got str 'five'"),
    ({"accuracy": {"train": {"lr": "fast"}}}, "accuracy.train.lr: expected a number"),
    ({"accuracy": {"train": {"distill": 1}}}, "accuracy.train.distill: expected true/false"),
    ({"accuracy": {"train": {"max_train": 2.5}}}, "accuracy.train.max_train: expected an integer or null"),
    ({"name": "../../escape"}, "would put the run outside runs/"),
    ({"output": {"dir": "runs/../../elsewhere"}}, "climbs out of its folder through '..'"),
])
def test_bad_paths_and_types_fail_before_any_work(tmp_path, change, message):
    (tmp_path / "afile").write_text("x")
    text = json.dumps(change).replace("{tmp}", str(tmp_path))
    with pytest.raises(JaqmooError) as exc:
        prepare_experiment(_spec(tmp_path, **json.loads(text)))
    assert message.replace("{tmp}", str(tmp_path)) in str(exc.value)


def test_explicit_out_may_point_anywhere(tmp_path):
    spec = _spec(tmp_path, name="../../escape", output={"dir": "../elsewhere"})
    assert prepare_experiment(spec, out=tmp_path / "x" / ".." / "y").out_dir == tmp_path / "x" / ".." / "y"


@pytest.mark.parametrize("data, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a UTF-8 text file"),
    (b"name: x\x00\x00\x00", "a binary file"),
    ("name: caf\u00e9\n".encode("latin-1"), "not a UTF-8 text file (byte 9 is 0xe9)"),
])
def test_binary_or_non_utf8_spec_files(tmp_path, data, message, capsys):
    path = tmp_path / "spec.yaml"
    path.write_bytes(data)
    with pytest.raises(JaqmooError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_spec(path)
    assert main(["run", str(path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("layers: {conv1: {w: 4, x: 4}}\ndefault: 8\n", r"layers.conv1: unknown keys \['x'\]"),
    ("layers: {conv1: {w: 4, ab: 4}}\ndefault: 8\n", "did you mean 'a'?"),
    ("defualt: 4/8\n", "did you mean 'default'?"),
    ("layers: {conv2: 4}\ndefault: 8\n", "did you mean 'conv1'?"),
])
def test_unknown_keys_in_bits_files(tmp_path, text, message):
    path = tmp_path / "bits.yaml"
    path.write_text(text)
    with pytest.raises(JaqmooError, match=message.replace("?", r"\?")):
        QuantPolicy.load(path, ["conv1", "fc"])


def test_the_validation_split_follows_dataset_split_seed_not_the_search_seed(tmp_path):
    """Runs with other search seeds share a supernet, so they must share its train/val split."""
    import torch

    a = prepare_experiment(_spec(tmp_path, seed=0), out=tmp_path / "a")
    b = prepare_experiment(_spec(tmp_path, seed=7), out=tmp_path / "b")
    assert torch.equal(a.splits.val.tensors[0], b.splits.val.tensors[0])
    c = prepare_experiment(_spec(tmp_path, seed=0, dataset={"name": "digits", "split_seed": 3}), out=tmp_path / "c")
    assert not torch.equal(a.splits.val.tensors[0], c.splits.val.tensors[0])
    ident_a = accuracy_module.expected_identity(a.spec, a.splits)
    ident_c = accuracy_module.expected_identity(c.spec, c.splits)
    assert ident_a["split_seed"] == 0 and ident_c["split_seed"] == 3
