"""Timeloop files out (``--timeloop DIR``): every shared reference run written back out is read
back by jaqmoo's readers as the same architecture, problem, constraints and mapping, in both
dialects; jaqmoo's written stats match the reference's own stats as ``jaqmoo timeloop check``
compares them; a 3-layer network at mixed bits exports, and ``timeloop check`` understands the
folders (before Timeloop ran: jaqmoo's stats; after: Timeloop's)."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.mapping.mapper import Mapper
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.timeloop.check import JAQMOO_STATS, check_reference, load_reference
from jaqmoo.timeloop.export import (
    LayerChoice,
    choices_of,
    export_network,
    write_layer,
    written_input,
)
from jaqmoo.timeloop.problem_out import DIALECTS
from jaqmoo.timeloop.stats import parse_stats
from jaqmoo.workload import DIMS, Layer, Workload

DATA = Path(__file__).parent / "data"
V04 = sorted(p for p in (DATA / "timeloop_reference").iterdir() if p.is_dir())
FORK = sorted(p for p in (DATA / "timeloop_quant").iterdir() if p.is_dir())
REFERENCES = [pytest.param(p, id=p.name) for p in V04 + FORK]


def _level_fields(level, leakage: bool = True) -> dict:
    skip = {"energy_source"} | (set() if leakage else {"leak_energy"})
    return {f.name: getattr(level, f.name) for f in dataclasses.fields(level) if f.name not in skip}


def _loop_nest(batch, lvl: int) -> list[tuple[str, int]]:
    """Level ``lvl``'s temporal loops with a factor > 1, innermost first."""
    return [(DIMS[d], int(batch.temporal[0, lvl, d])) for d in batch.perm[0, lvl] if batch.temporal[0, lvl, d] > 1]


def assert_same_input(ref, mapping, back, fork: bool) -> None:
    """The written files, read back (``back``), describe ``ref`` and ``mapping`` (the fork's: with
    the bit-widths, and no leakage, which the fork does not model)."""
    a, b = ref.accelerator, back.accelerator
    assert [_level_fields(x, not fork) for x in a.levels] == [_level_fields(x, not fork) for x in b.levels]
    assert _level_fields(a.compute, not fork) == _level_fields(b.compute, not fork)
    assert a.constraints == b.constraints and a.cycle_seconds == b.cycle_seconds
    assert ref.problem.dims == back.problem.dims
    for f in ("stride_h", "stride_w", "dilation_h", "dilation_w"):
        assert getattr(ref.problem, f) == getattr(back.problem, f)
    assert back.bits == (ref.bits if fork else None)
    m = back.mapping
    for f in ("temporal", "spatial_x", "spatial_y", "keep"):
        assert np.array_equal(getattr(mapping, f), getattr(m, f)), f
    assert all(_loop_nest(mapping, lvl) == _loop_nest(m, lvl) for lvl in range(a.n_levels))


def assert_stats_match(ours, theirs, rel_tol: float = 1e-3) -> None:
    """Two stats files as ``jaqmoo timeloop check`` compares: counts (and the fork's packing
    fields) equal, energies within ``rel_tol`` plus Timeloop's two printed decimals, cycles and
    computes equal."""
    assert ours.dialect == theirs.dialect
    assert (ours.cycles, ours.computes) == (theirs.cycles, theirs.computes)
    slack = 0.005 * theirs.computes / 1000.0
    fields = ("reads", "fills", "updates", "operands_per_word", "wasted_bits_per_word", "wasted_bits_storage")
    for name, level in theirs.levels.items():
        mine = ours.levels[name]
        for tensor, t in level.tensors.items():
            for f in fields + (("capacity",) if theirs.dialect == "fork" else ()):
                assert getattr(mine.tensors[tensor], f) == getattr(t, f), (name, tensor, f)
            if t.energy is not None:
                assert mine.tensors[tensor].energy == pytest.approx(t.energy, rel=rel_tol, abs=0.01)
        if level.fj_per_compute is not None:
            assert math.isclose(ours.level_energy_pj(name), theirs.level_energy_pj(name), rel_tol=rel_tol,
                                abs_tol=2 * slack), name
    assert ours.energy_pj == pytest.approx(theirs.energy_pj, rel=rel_tol, abs=2 * slack)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("folder", REFERENCES)
def test_reference_written_back_is_the_same_input(folder, dialect, tmp_path):
    ref, mapping, _ = load_reference(folder)
    write_layer(tmp_path / "x", ref.accelerator, LayerChoice(ref.problem, ref.bits, mapping), dialect)
    back = written_input(tmp_path / "x", dialect)
    assert_same_input(ref, mapping, back, fork=dialect == "fork")


@pytest.mark.parametrize("folder", REFERENCES)
def test_reference_stats_written_back_match_timeloops(folder, tmp_path):
    """In the reference's own dialect: jaqmoo's written stats match Timeloop's; ``timeloop
    check`` on the export passes against jaqmoo's stats, then (Timeloop's stats copied in, as
    if the user ran ``timeloop-model`` there) against Timeloop's."""
    ref, mapping, stats = load_reference(folder)
    out = tmp_path / "x"
    write_layer(out, ref.accelerator, LayerChoice(ref.problem, ref.bits, mapping), stats.dialect)
    assert_stats_match(parse_stats(out / JAQMOO_STATS), stats)
    own = check_reference(out)
    assert own.ok and own.stats.endswith(JAQMOO_STATS), own.text()
    shutil.copy(stats.source, out / "timeloop-model.stats.txt")
    theirs = check_reference(out)
    assert theirs.ok and theirs.stats.endswith("timeloop-model.stats.txt"), theirs.text()


def _three_layers() -> Workload:
    return Workload("three", (
        Layer("conv", "conv", K=16, C=3, P=8, Q=8, R=3, S=3),
        Layer("dw", "depthwise", G=16, P=4, Q=4, R=3, S=3, stride_h=2, stride_w=2),
        Layer("fc", "linear", K=10, C=256),
    ))


@pytest.fixture(scope="module")
def three_layer_cost(eyeriss):
    from jaqmoo.cost import network_cost

    work = _three_layers()
    policy = QuantPolicy(tuple(layer.name for layer in work.layers), (8, 4, 2), (8, 6, 4))
    return work, policy, network_cost(work, eyeriss, policy=policy, mapper=Mapper(budget=300))


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.yaml"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_three_layer_network_at_mixed_bits(three_layer_cost, eyeriss, dialect, tmp_path):
    work, policy, cost = three_layer_cost
    assert cost.feasible
    out = tmp_path / "tl"
    written = export_network(out, eyeriss, choices_of(cost.layers), dialect, "three layers", "a test")
    assert [lx.folder.name for lx in written] == ["00-conv", "01-dw", "02-fc"]
    readme = (out / "README.md").read_text()
    assert "timeloop-model arch.yaml problem.yaml map.yaml jaqmoo.ERT.yaml jaqmoo.ART.yaml" in readme
    assert "jaqmoo timeloop check" in readme and "Written by `a test`" in readme
    for path in _yaml_files(out):  # data only: plain YAML, no tags, no aliases
        text = path.read_text()
        assert "!" not in text.replace("# ", "") and "&" not in text and "*" not in text
        assert isinstance(yaml.safe_load(text), dict)
    for i, (lx, lc, layer) in enumerate(zip(written, cost.layers, work.layers, strict=True)):
        back = written_input(lx.folder, dialect)
        assert back.problem.dims == layer.dims and back.problem.stride_h == layer.stride_h
        assert back.bits == (policy.tensor_bits(i) if dialect == "fork" else None)
        for f in ("temporal", "spatial_x", "spatial_y", "keep"):
            assert np.array_equal(getattr(back.mapping, f), getattr(lc.mapping_batch, f))
        assert lx.search_energy_pj == pytest.approx(lc.energy_pj, rel=1e-9)  # jaqmoo's own figure
        report = check_reference(lx.folder)
        assert report.ok, report.text()
        assert f"{lc.energy_pj * 1e-6:.4f}" in readme
    with pytest.raises(JaqmooError, match="check one layer's folder"):
        check_reference(out)
    if dialect == "fork":  # the fork's packing at the point's bits
        fc = parse_stats(out / "02-fc" / JAQMOO_STATS)
        assert fc.dialect == "fork"
        assert {t.operands_per_word for lvl in fc.levels.values() for t in lvl.tensors.values()} > {1.0}


def test_export_refuses_a_used_folder_and_bad_input(three_layer_cost, eyeriss, tmp_path):
    _, _, cost = three_layer_cost
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(JaqmooError, match="new or empty"):
        export_network(tmp_path, eyeriss, choices_of(cost.layers))
    with pytest.raises(JaqmooError, match="dialect"):
        export_network(tmp_path / "new", eyeriss, choices_of(cost.layers), dialect="v0.5")
    bare = dataclasses.replace(cost.layers[0], mapping_batch=None)
    with pytest.raises(JaqmooError, match="no mapping"):
        choices_of([bare])


def test_cost_command_writes_timeloop_files(tmp_path):
    """``jaqmoo cost --timeloop DIR --dialect fork`` at mixed bits: every layer folder checks."""
    from jaqmoo.cli import main

    bits = tmp_path / "bits.yaml"
    bits.write_text("layers:\n  features.0: {w: 8, a: 8}\n  features.3: {w: 4, a: 6}\n  features.6: {w: 2, a: 4}\n"
                    "default: 6/8\n")
    out = tmp_path / "tl"
    assert main(["cost", "--model", "simple_cnn", "--input", "1x8x8", "--num-classes", "10", "--budget", "200",
                 "--bits-file", str(bits), "--timeloop", str(out), "--dialect", "fork", "--quiet"]) == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in folders][:3] == ["00-features_0", "01-features_3", "02-features_6"]
    assert written_input(folders[1], "fork").bits == (4, 6, 4)  # features.3's output: features.6's input bits
    assert all(check_reference(p).ok for p in folders)
    assert "--bits-file" in (out / "README.md").read_text()


def test_export_point_needs_a_run_that_records_its_model(fake_run_dir, tmp_path, capsys):
    """The fake-evaluator run records no model: the export says so instead of guessing."""
    from jaqmoo.cli import main

    assert main(["export", str(fake_run_dir), "--point", "0", "--timeloop", str(tmp_path / "tl")]) != 0
    assert "meta.json records no model" in capsys.readouterr().err
    assert main(["export", str(fake_run_dir), "--timeloop", str(tmp_path / "tl")]) != 0
    assert "--point K goes with" in capsys.readouterr().err
    assert not (tmp_path / "tl").exists()


def test_export_point_writes_the_points_layers(fake_accuracy, tmp_path):
    """A small real run (the fake accuracy, simple_cnn on Eyeriss): ``jaqmoo export RUN --point K
    --timeloop DIR`` writes the point's layers with the mappings the run chose."""
    from test_experiment import TINY

    from jaqmoo.cli import main
    from jaqmoo.report import load_run

    spec = tmp_path / "spec.yaml"  # the hardware fixed: a quick mapper warm-up
    spec.write_text(yaml.safe_dump({**TINY, "accelerator": {"template": "eyeriss"}}))
    assert main(["run", str(spec), "--out", str(tmp_path / "r"), "--generations", "1", "--pop", "4", "--quiet"]) == 0
    run = load_run(tmp_path / "r")
    k = len(run.front) - 1
    row = run.front_point(k)
    out = tmp_path / "tl"
    assert main(["export", str(tmp_path / "r"), "--point", str(k), "--timeloop", str(out), "--dialect", "fork"]) == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == len(run.layer_names)
    readme = (out / "README.md").read_text()
    total = 0.0
    for folder, name in zip(folders, run.layer_names, strict=True):
        back = written_input(folder, "fork")
        w, a = int(row[f"w.{name}"]), int(row[f"a.{name}"])
        assert back.bits[:2] == (w, a)
        assert check_reference(folder).ok
        total += float(readme.split(f"| `{folder.name}` |")[1].split("|")[7])  # energy (jaqmoo)
    assert total == pytest.approx(row["energy_pj"] * 1e-6, abs=1e-4 * len(folders))  # the run's own figure
